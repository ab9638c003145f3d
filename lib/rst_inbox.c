/*  rst_inbox — see rst_inbox.h and schemas/inbox.md.

    Decoding in three steps, like rst_event: rst_mpcheck_measure finds the
    object's extent without trusting a byte of it; msgpack-c unpacks that
    extent (str and bin objects point into DATA, so a 1 MiB body is never
    copied); the map's keys are read into the message and s_check applies
    the same limits the packer applies.
*/
#include "rst_inbox.h"
#include "rst_mpcheck.h"

#include <assert.h>
#include <string.h>

//  Keys the decoder knows; a bit each in the "seen" mask.
enum {
    S_K_V,
    S_K_TYPE,
    S_K_SRC,
    S_K_SEQ,
    S_K_TIME_MS,
    S_K_BOT_ID,
    S_K_UPDATE_ID,
    S_K_GATEWAY,
    S_K_CHARGE_ID,
    S_K_BODY,
    S_K_QUERY,
    S_K_COUNT
};
static const char *s_keys[S_K_COUNT] = {"v",       "type",    "src",       "seq",
                                        "time_ms", "bot_id",  "update_id", "gateway",
                                        "charge_id", "body",  "query"};
#define S_BIT(k) (1u << (k))

const char *
rst_inbox_type_name (rst_inbox_type_t type)
{
    return type == RST_INBOX_TG_UPDATE    ? "tg_update"
           : type == RST_INBOX_GW_WEBHOOK ? "gw_webhook"
                                          : "?";
}

//  1 if S[0..LEN) is LEN bytes of printable ASCII (0x21–0x7e).
static int
s_is_printable (const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char) s[i] < 0x21 || (unsigned char) s[i] > 0x7e)
            return 0;
    return 1;
}

//  1 if S[0..LEN) is a gateway kind name: lower-case letters, digits, '_'.
static int
s_is_kind_name (const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return 0;
    return 1;
}

//  Checks a whole message (built or decoded). Returns 0 or -1.
static int
s_check (const rst_inbox_msg_t *msg)
{
    if (msg->type != RST_INBOX_TG_UPDATE && msg->type != RST_INBOX_GW_WEBHOOK)
        return -1;
    size_t src_len = strnlen (msg->src, sizeof msg->src);
    if (src_len == 0 || src_len > RST_INBOX_SRC_MAX || !s_is_printable (msg->src, src_len))
        return -1;
    if (msg->seq == 0 || msg->time_ms < 1 || msg->time_ms > RST_INBOX_TIME_MS_MAX)
        return -1;
    if (msg->body_len > RST_INBOX_MAX_BODY || (msg->body_len && !msg->body))
        return -1;
    if (msg->type == RST_INBOX_TG_UPDATE)
        return msg->bot_id >= 1 && msg->update_id >= 0 ? 0 : -1;
    size_t gw_len = strnlen (msg->gateway, sizeof msg->gateway);
    size_t charge_len = strnlen (msg->charge_id, sizeof msg->charge_id);
    if (gw_len == 0 || gw_len > RST_INBOX_GATEWAY_MAX || !s_is_kind_name (msg->gateway, gw_len))
        return -1;
    if (charge_len == 0 || charge_len > RST_INBOX_CHARGE_MAX
        || !s_is_printable (msg->charge_id, charge_len))
        return -1;
    if (msg->query && msg->query_len > RST_INBOX_MAX_QUERY)
        return -1;
    return 0;
}

static void
s_pack_key (msgpack_packer *pk, const char *key)
{
    msgpack_pack_str_with_body (pk, key, strlen (key));
}

static void
s_pack_cstr (msgpack_packer *pk, const char *key, const char *value)
{
    s_pack_key (pk, key);
    msgpack_pack_str_with_body (pk, value, strlen (value));
}

int
rst_inbox_pack (const rst_inbox_msg_t *msg, msgpack_packer *pk)
{
    assert (msg && pk);
    if (s_check (msg))
        return -1;
    int gw = msg->type == RST_INBOX_GW_WEBHOOK;
    size_t n = 5 + 2 + 1 + (gw && msg->query ? 1 : 0);
    msgpack_pack_map (pk, n);
    s_pack_key (pk, "v");
    msgpack_pack_uint32 (pk, RST_INBOX_VERSION);
    s_pack_cstr (pk, "type", rst_inbox_type_name (msg->type));
    s_pack_cstr (pk, "src", msg->src);
    s_pack_key (pk, "seq");
    msgpack_pack_uint64 (pk, msg->seq);
    s_pack_key (pk, "time_ms");
    msgpack_pack_int64 (pk, msg->time_ms);
    if (gw) {
        s_pack_cstr (pk, "gateway", msg->gateway);
        s_pack_cstr (pk, "charge_id", msg->charge_id);
    }
    else {
        s_pack_key (pk, "bot_id");
        msgpack_pack_int64 (pk, msg->bot_id);
        s_pack_key (pk, "update_id");
        msgpack_pack_int64 (pk, msg->update_id);
    }
    s_pack_key (pk, "body");
    msgpack_pack_bin_with_body (pk, msg->body_len ? msg->body : "", msg->body_len);
    if (gw && msg->query) {
        s_pack_key (pk, "query");
        msgpack_pack_str_with_body (pk, msg->query_len ? msg->query : "", msg->query_len);
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Decoding

static int
s_key_is (const msgpack_object *key, const char *name)
{
    size_t n = strlen (name);
    return key->via.str.size == n && memcmp (key->via.str.ptr, name, n) == 0;
}

//  Reads an int in [MIN, MAX] into *OUT. Returns 0 or -1.
static int
s_read_int (const msgpack_object *val, int64_t min, int64_t max, int64_t *out)
{
    int64_t v;
    if (val->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (val->via.u64 > (uint64_t) INT64_MAX)
            return -1;
        v = (int64_t) val->via.u64;
    }
    else if (val->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        v = val->via.i64;
    else
        return -1;
    if (v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

//  Copies a str object into OUT (SIZE bytes, NUL included). Returns 0, or
//  -1 when it is not a str, or is empty or too long.
static int
s_read_cstr (const msgpack_object *val, char *out, size_t size)
{
    if (val->type != MSGPACK_OBJECT_STR || val->via.str.size == 0
        || val->via.str.size >= size)
        return -1;
    memcpy (out, val->via.str.ptr, val->via.str.size);
    out[val->via.str.size] = 0;
    return 0;
}

//  Reads the value of key K into OUT. Returns 0 or -1.
static int
s_read_value (rst_inbox_msg_t *out, int k, const msgpack_object *val)
{
    switch (k) {
    case S_K_V:
        return val->type == MSGPACK_OBJECT_POSITIVE_INTEGER && val->via.u64 == RST_INBOX_VERSION
                   ? 0
                   : -1;
    case S_K_TYPE:
        if (val->type != MSGPACK_OBJECT_STR)
            return -1;
        if (s_key_is (val, "tg_update"))
            out->type = RST_INBOX_TG_UPDATE;
        else if (s_key_is (val, "gw_webhook"))
            out->type = RST_INBOX_GW_WEBHOOK;
        else
            return -1;
        return 0;
    case S_K_SRC:
        return s_read_cstr (val, out->src, sizeof out->src);
    case S_K_SEQ:
        if (val->type != MSGPACK_OBJECT_POSITIVE_INTEGER || val->via.u64 == 0)
            return -1;
        out->seq = val->via.u64;
        return 0;
    case S_K_TIME_MS:
        return s_read_int (val, 1, RST_INBOX_TIME_MS_MAX, &out->time_ms);
    case S_K_BOT_ID:
        return s_read_int (val, 1, INT64_MAX, &out->bot_id);
    case S_K_UPDATE_ID:
        return s_read_int (val, 0, INT64_MAX, &out->update_id);
    case S_K_GATEWAY:
        return s_read_cstr (val, out->gateway, sizeof out->gateway);
    case S_K_CHARGE_ID:
        return s_read_cstr (val, out->charge_id, sizeof out->charge_id);
    case S_K_BODY:
        if (val->type != MSGPACK_OBJECT_BIN || val->via.bin.size > RST_INBOX_MAX_BODY)
            return -1;
        out->body = val->via.bin.ptr;
        out->body_len = val->via.bin.size;
        return 0;
    case S_K_QUERY:
        if (val->type == MSGPACK_OBJECT_NIL)
            return 0;   //  absent
        if (val->type != MSGPACK_OBJECT_STR || val->via.str.size > RST_INBOX_MAX_QUERY)
            return -1;
        out->query = val->via.str.ptr;
        out->query_len = val->via.str.size;
        return 0;
    }
    return -1;
}

//  Fills OUT from the map OBJ. Returns 0 or -1.
static int
s_from_map (rst_inbox_msg_t *out, const msgpack_object *obj, const char *empty)
{
    if (obj->type != MSGPACK_OBJECT_MAP)
        return -1;
    const msgpack_object_map *map = &obj->via.map;
    unsigned seen = 0;
    //  The version first: nothing else means anything under another schema.
    uint32_t v;
    for (v = 0; v < map->size; v++)
        if (map->ptr[v].key.type == MSGPACK_OBJECT_STR && s_key_is (&map->ptr[v].key, "v"))
            break;
    if (v == map->size || s_read_value (out, S_K_V, &map->ptr[v].val))
        return -1;
    for (uint32_t i = 0; i < map->size; i++) {
        const msgpack_object *key = &map->ptr[i].key;
        if (key->type != MSGPACK_OBJECT_STR)
            return -1;
        int k;
        for (k = 0; k < S_K_COUNT; k++)
            if (s_key_is (key, s_keys[k]))
                break;
        if (k == S_K_COUNT)
            continue;   //  a newer writer's key: ignored
        if ((seen & S_BIT (k)) || s_read_value (out, k, &map->ptr[i].val))
            return -1;
        seen |= S_BIT (k);
    }
    unsigned common = S_BIT (S_K_V) | S_BIT (S_K_TYPE) | S_BIT (S_K_SRC) | S_BIT (S_K_SEQ)
                      | S_BIT (S_K_TIME_MS) | S_BIT (S_K_BODY);
    if ((seen & common) != common)
        return -1;
    unsigned need = out->type == RST_INBOX_TG_UPDATE ? S_BIT (S_K_BOT_ID) | S_BIT (S_K_UPDATE_ID)
                                                     : S_BIT (S_K_GATEWAY) | S_BIT (S_K_CHARGE_ID);
    if ((seen & need) != need)
        return -1;
    if (out->type == RST_INBOX_TG_UPDATE) {
        //  Keys of the other type mean nothing here.
        out->query = NULL;
        out->query_len = 0;
        out->gateway[0] = out->charge_id[0] = 0;
    }
    else
        out->bot_id = out->update_id = 0;
    if (!out->body)
        out->body = empty;      //  msgpack-c may give NULL for an empty bin
    if (out->query && !out->query_len)
        out->query = empty;
    return s_check (out);
}

int
rst_inbox_decode (const char *data, size_t len, size_t *offset, rst_inbox_msg_t *out)
{
    assert (offset && out);
    assert (data || len == 0);
    memset (out, 0, sizeof *out);
    if (*offset >= len) {
        *offset = len;
        return -2;
    }
    const char *start = data + *offset;
    size_t size = 0;
    if (rst_mpcheck_measure (start, len - *offset, &size) != RST_MPCHECK_OK) {
        *offset = len;      //  no object boundary to resume from
        return -2;
    }
    *offset += size;
    if (size > RST_INBOX_MAX_BYTES)
        return -1;
    msgpack_unpacked up;
    msgpack_unpacked_init (&up);
    size_t used = 0;
    int rc = -1;
    if (msgpack_unpack_next (&up, start, size, &used) == MSGPACK_UNPACK_SUCCESS && used == size)
        rc = s_from_map (out, &up.data, start);
    msgpack_unpacked_destroy (&up);
    if (rc) {
        memset (out, 0, sizeof *out);
        return -1;
    }
    return 0;
}
