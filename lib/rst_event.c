/*  rst_event — the funnel event and its msgpack codec.

    Role: every event travels between nodes as one msgpack map (schema in
    schemas/events.md, version RST_EVENT_SCHEMA_VERSION). The front packs a
    click with rst_event_pack, journals the bytes and pushes them; the
    recorder (and later the enricher) decodes them with rst_event_decode. A
    ZeroMQ message holds one or more maps back to back, so the decoder works
    on (data, len, *offset) and advances the offset.

    Guarantees of the decoder (it is fed untrusted bytes and is fuzzed):
      - it never reads outside [data, data + len) and never asserts on input;
      - before msgpack-c sees a byte, rst_mpcheck_measure walks the object's
        structure without allocating and checks that every declared length
        and count fits in the bytes that are really there, so a 5-byte "array of four
        billion elements" is rejected as truncated instead of making msgpack-c
        reserve gigabytes; objects over RST_EVENT_MAX_BYTES are rejected
        (and skipped, so the next event of the message is still read);
      - every key's type, length, character set and range is checked; the
        fields a type requires must all be present; unknown keys are ignored
        (forward compatibility) but an unknown "v" or "type" is rejected;
      - a decoded event owns its strings: they are copied into one arena
        allocation, each followed by a NUL byte (so ptr may also be used as
        a C string; an embedded NUL can only occur in free-text fields), and
        an empty present string has a non-NULL ptr.

    The packer applies the same checks (s_check) before writing a byte, so
    whatever rst_event_pack accepts, rst_event_decode accepts too: a caller
    learns about an over-long id when it builds the event, not downstream.
*/
#include "rst_event.h"
#include "rst_mpcheck.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  --------------------------------------------------------------------------
//  The field table drives decoding, packing and checking alike.

typedef enum {
    S_KIND_VERSION,         //  "v": positive integer, must be the schema version
    S_KIND_TYPE,            //  "type": str, a known type name
    S_KIND_STR,             //  str (nil = absent for optional fields)
    S_KIND_I64,             //  integer in [min, max]
    S_KIND_OPT_I64,         //  optional integer in [min, max]; RST_EVENT_NONE (or nil) = absent
    S_KIND_U64,             //  unsigned integer >= 1
    S_KIND_UTM,             //  map str -> str, at most RST_EVENT_MAX_UTM entries
} s_kind_t;

typedef enum {
    S_CHARS_ANY,            //  any bytes (free text: ua, url, referer, ...)
    S_CHARS_PRINTABLE,      //  ASCII 0x21..0x7e (event_id, src, pixel_id, ...)
    S_CHARS_TOKEN,          //  [A-Za-z0-9_-] (click_id: the Telegram start parameter)
    S_CHARS_LETTERS,        //  [A-Za-z] (currency)
} s_chars_t;

typedef enum {
    S_F_V,
    S_F_TYPE,
    S_F_EVENT_ID,
    S_F_SRC,
    S_F_SEQ,
    S_F_TIME_MS,
    S_F_OWNER_ID,
    S_F_POOL_ID,
    S_F_BOT_ID,
    S_F_PIXEL_ID,
    S_F_CLICK_ID,
    S_F_POOL_SLUG,
    S_F_BOT,
    S_F_IP,
    S_F_UA,
    S_F_URL,
    S_F_REFERER,
    S_F_FBCLID,
    S_F_FBC,
    S_F_FBP,
    S_F_UTM,
    S_F_LEAD_ID,
    S_F_TG_USER_ID,
    S_F_OFFER_ID,
    S_F_OFFER_NAME,
    S_F_VALUE_CENTS,
    S_F_CURRENCY,
    S_F_ORDER_ID,
    S_F_COUNT
} s_field_id_t;

typedef struct {
    const char *key;        //  msgpack key (schemas/events.md)
    s_kind_t kind;
    size_t offset;          //  of the member in rst_event_t
    size_t min_len;         //  strings: shortest allowed when present
    size_t max_len;         //  strings: longest allowed (0 = only the event limit)
    s_chars_t chars;        //  strings: allowed bytes
    int64_t min;            //  I64: smallest allowed value
    int64_t max;            //  I64: largest allowed value
} s_field_t;

#define S_OFF(member) offsetof (rst_event_t, member)

static const s_field_t s_fields[S_F_COUNT] = {
    [S_F_V]        = {"v", S_KIND_VERSION, 0, 0, 0, S_CHARS_ANY, 0, 0},
    [S_F_TYPE]     = {"type", S_KIND_TYPE, 0, 0, 0, S_CHARS_ANY, 0, 0},
    [S_F_EVENT_ID] = {"event_id", S_KIND_STR, S_OFF (event_id), 1, RST_EVENT_ID_MAX,
                      S_CHARS_PRINTABLE, 0, 0},
    [S_F_SRC]      = {"src", S_KIND_STR, S_OFF (src), 1, RST_EVENT_SHORT_MAX,
                      S_CHARS_PRINTABLE, 0, 0},
    [S_F_SEQ]      = {"seq", S_KIND_U64, S_OFF (seq), 0, 0, S_CHARS_ANY, 0, 0},
    [S_F_TIME_MS]  = {"time_ms", S_KIND_I64, S_OFF (time_ms), 0, 0, S_CHARS_ANY, 1,
                      RST_EVENT_TIME_MS_MAX},
    [S_F_OWNER_ID] = {"owner_id", S_KIND_I64, S_OFF (owner_id), 0, 0, S_CHARS_ANY, 1,
                      INT64_MAX},
    //  pool_id may be 0 for a chat event (an organic lead); s_check wants >= 1 for a click.
    [S_F_POOL_ID]  = {"pool_id", S_KIND_I64, S_OFF (pool_id), 0, 0, S_CHARS_ANY, 0, INT64_MAX},
    [S_F_BOT_ID]   = {"bot_id", S_KIND_I64, S_OFF (bot_id), 0, 0, S_CHARS_ANY, 1, INT64_MAX},
    [S_F_PIXEL_ID] = {"pixel_id", S_KIND_STR, S_OFF (pixel_id), 1, RST_EVENT_SHORT_MAX,
                      S_CHARS_PRINTABLE, 0, 0},
    [S_F_CLICK_ID] = {"click_id", S_KIND_STR, S_OFF (click_id), 1, RST_EVENT_ID_MAX,
                      S_CHARS_TOKEN, 0, 0},
    [S_F_POOL_SLUG] = {"pool_slug", S_KIND_STR, S_OFF (pool_slug), 0, RST_EVENT_SHORT_MAX,
                       S_CHARS_ANY, 0, 0},
    [S_F_BOT]      = {"bot", S_KIND_STR, S_OFF (bot_username), 0, RST_EVENT_SHORT_MAX,
                      S_CHARS_ANY, 0, 0},
    [S_F_IP]       = {"ip", S_KIND_STR, S_OFF (ip), 0, 0, S_CHARS_ANY, 0, 0},
    [S_F_UA]       = {"ua", S_KIND_STR, S_OFF (user_agent), 0, 0, S_CHARS_ANY, 0, 0},
    [S_F_URL]      = {"url", S_KIND_STR, S_OFF (url), 0, 0, S_CHARS_ANY, 0, 0},
    [S_F_REFERER]  = {"referer", S_KIND_STR, S_OFF (referer), 0, 0, S_CHARS_ANY, 0, 0},
    [S_F_FBCLID]   = {"fbclid", S_KIND_STR, S_OFF (fbclid), 0, 0, S_CHARS_ANY, 0, 0},
    [S_F_FBC]      = {"fbc", S_KIND_STR, S_OFF (fbc), 0, 0, S_CHARS_ANY, 0, 0},
    [S_F_FBP]      = {"fbp", S_KIND_STR, S_OFF (fbp), 0, 0, S_CHARS_ANY, 0, 0},
    [S_F_UTM]      = {"utm", S_KIND_UTM, 0, 0, 0, S_CHARS_ANY, 0, 0},
    [S_F_LEAD_ID]  = {"lead_id", S_KIND_OPT_I64, S_OFF (lead_id), 0, 0, S_CHARS_ANY, 1,
                      INT64_MAX},
    [S_F_TG_USER_ID] = {"tg_user_id", S_KIND_OPT_I64, S_OFF (tg_user_id), 0, 0, S_CHARS_ANY, 1,
                        INT64_MAX},
    [S_F_OFFER_ID] = {"offer_id", S_KIND_STR, S_OFF (offer_id), 0, RST_EVENT_OFFER_MAX,
                      S_CHARS_ANY, 0, 0},
    [S_F_OFFER_NAME] = {"offer_name", S_KIND_STR, S_OFF (offer_name), 0, 0, S_CHARS_ANY, 0, 0},
    [S_F_VALUE_CENTS] = {"value_cents", S_KIND_OPT_I64, S_OFF (value_cents), 0, 0, S_CHARS_ANY,
                         0, INT64_MAX},
    [S_F_CURRENCY] = {"currency", S_KIND_STR, S_OFF (currency), RST_EVENT_CURRENCY_LEN,
                      RST_EVENT_CURRENCY_LEN, S_CHARS_LETTERS, 0, 0},
    [S_F_ORDER_ID] = {"order_id", S_KIND_STR, S_OFF (order_id), 1, RST_EVENT_OFFER_MAX,
                      S_CHARS_ANY, 0, 0},
};

#define S_BIT(f) (1u << (f))

//  Fields every event needs, whatever its type.
#define S_REQUIRED_ALL (S_BIT (S_F_V) | S_BIT (S_F_TYPE) | S_BIT (S_F_EVENT_ID))

//  Fields a click needs (schemas/events.md, "click").
#define S_REQUIRED_CLICK                                                                        \
    (S_REQUIRED_ALL | S_BIT (S_F_SRC) | S_BIT (S_F_SEQ) | S_BIT (S_F_TIME_MS)                   \
     | S_BIT (S_F_OWNER_ID) | S_BIT (S_F_POOL_ID) | S_BIT (S_F_BOT_ID) | S_BIT (S_F_PIXEL_ID)   \
     | S_BIT (S_F_CLICK_ID) | S_BIT (S_F_IP) | S_BIT (S_F_UA) | S_BIT (S_F_URL))

//  Fields every chat event needs (start, checkout, payment). click_id is
//  optional (absent for an organic lead), but s_check wants click_id or
//  tg_user_id: a chat event must name its lead.
#define S_REQUIRED_CHAT                                                                         \
    (S_REQUIRED_ALL | S_BIT (S_F_SRC) | S_BIT (S_F_SEQ) | S_BIT (S_F_TIME_MS)                   \
     | S_BIT (S_F_OWNER_ID) | S_BIT (S_F_POOL_ID) | S_BIT (S_F_BOT_ID) | S_BIT (S_F_PIXEL_ID))

static unsigned
s_required (rst_event_type_t type)
{
    switch (type) {
    case RST_EVENT_CLICK:
        return S_REQUIRED_CLICK;
    case RST_EVENT_START:
        return S_REQUIRED_CHAT;
    case RST_EVENT_CHECKOUT:
        return S_REQUIRED_CHAT | S_BIT (S_F_VALUE_CENTS);
    case RST_EVENT_PAYMENT:
        return S_REQUIRED_CHAT | S_BIT (S_F_VALUE_CENTS) | S_BIT (S_F_ORDER_ID);
    }
    return S_REQUIRED_ALL;
}

static rst_str_t *
s_str_member (rst_event_t *event, const s_field_t *f)
{
    return (rst_str_t *) ((char *) event + f->offset);
}

static const rst_str_t *
s_str_member_const (const rst_event_t *event, const s_field_t *f)
{
    return (const rst_str_t *) ((const char *) event + f->offset);
}

static int64_t *
s_i64_member (rst_event_t *event, const s_field_t *f)
{
    return (int64_t *) ((char *) event + f->offset);
}

static void
s_err (char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (err, errlen, fmt, ap);
    va_end (ap);
}

//  --------------------------------------------------------------------------
//  Shared checks (packer and decoder)

//  Returns 0 if every byte of S is allowed by CHARS, else -1.
static int
s_check_chars (rst_str_t s, s_chars_t chars)
{
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char) s.ptr[i];
        if (chars == S_CHARS_PRINTABLE && (c < 0x21 || c > 0x7e))
            return -1;
        if (chars == S_CHARS_TOKEN
            && !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
                 || c == '_' || c == '-'))
            return -1;
        if (chars == S_CHARS_LETTERS && !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')))
            return -1;
    }
    return 0;
}

//  Checks a present string value against field F. Returns 0 or -1 (reason in ERR).
static int
s_check_str (const s_field_t *f, rst_str_t s, char *err, size_t errlen)
{
    if (s.len < f->min_len) {
        s_err (err, errlen, "%s: empty", f->key);
        return -1;
    }
    if (f->max_len && s.len > f->max_len) {
        s_err (err, errlen, "%s: too long (%zu > %zu bytes)", f->key, s.len, f->max_len);
        return -1;
    }
    if (s_check_chars (s, f->chars)) {
        s_err (err, errlen, "%s: invalid character", f->key);
        return -1;
    }
    return 0;
}

//  Checks a whole event (built or decoded): the type is known, the fields the
//  type requires are there, every present field is within its limits.
//  SEEN, when non-NULL, is the decoder's mask of keys found in the map (the
//  integers have no "absent" value of their own). Returns 0 or -1 (ERR).
static int
s_check (const rst_event_t *self, const unsigned *seen, char *err, size_t errlen)
{
    if (self->version != RST_EVENT_SCHEMA_VERSION) {
        s_err (err, errlen, "unsupported schema version %u", self->version);
        return -1;
    }
    if (self->type != RST_EVENT_CLICK && !rst_event_is_chat (self->type)) {
        s_err (err, errlen, "unknown event type %d", (int) self->type);
        return -1;
    }
    unsigned required = s_required (self->type);
    for (int id = 0; id < S_F_COUNT; id++) {
        const s_field_t *f = &s_fields[id];
        int is_required = (required & S_BIT (id)) != 0;
        int present;
        switch (f->kind) {
        case S_KIND_STR: {
            rst_str_t s = *s_str_member_const (self, f);
            present = s.ptr != NULL;
            if (present && s_check_str (f, s, err, errlen))
                return -1;
            break;
        }
        case S_KIND_I64: {
            //  A built event has no "absent" integer: 0 counts as missing
            //  where 0 is out of range (and as present where it is allowed).
            int64_t v = *(const int64_t *) ((const char *) self + f->offset);
            present = seen ? (*seen & S_BIT (id)) != 0 : (v != 0 || f->min <= 0);
            if (present && (v < f->min || v > f->max)) {
                s_err (err, errlen, "%s: out of range (%lld)", f->key, (long long) v);
                return -1;
            }
            break;
        }
        case S_KIND_OPT_I64: {
            int64_t v = *(const int64_t *) ((const char *) self + f->offset);
            present = v != RST_EVENT_NONE;
            if (present && (v < f->min || v > f->max)) {
                s_err (err, errlen, "%s: out of range (%lld)", f->key, (long long) v);
                return -1;
            }
            break;
        }
        case S_KIND_U64:
            present = self->seq != 0;
            if (seen && (*seen & S_BIT (id)) && !present) {
                s_err (err, errlen, "%s: out of range (0)", f->key);
                return -1;
            }
            break;
        case S_KIND_UTM:
            present = self->utm_count > 0;
            if (self->utm_count > RST_EVENT_MAX_UTM) {
                s_err (err, errlen, "utm: too many entries (%zu > %d)", self->utm_count,
                       RST_EVENT_MAX_UTM);
                return -1;
            }
            for (size_t i = 0; i < self->utm_count; i++) {
                const rst_kv_t *kv = &self->utm[i];
                if (!kv->key.ptr || kv->key.len == 0 || kv->key.len > RST_EVENT_SHORT_MAX
                    || !kv->value.ptr) {
                    s_err (err, errlen, "utm: bad entry %zu (key 1..%d bytes, value required)",
                           i, RST_EVENT_SHORT_MAX);
                    return -1;
                }
            }
            break;
        default:
            present = 1;    //  v and type were checked above
            break;
        }
        if (is_required && !present) {
            s_err (err, errlen, "%s: missing required field %s", rst_event_type_name (self->type),
                   f->key);
            return -1;
        }
    }
    if (self->type == RST_EVENT_CLICK && self->pool_id < 1) {
        s_err (err, errlen, "pool_id: out of range (%lld)", (long long) self->pool_id);
        return -1;
    }
    if (rst_event_is_chat (self->type) && !self->click_id.ptr
        && self->tg_user_id == RST_EVENT_NONE) {
        s_err (err, errlen, "%s: missing required field click_id (or tg_user_id)",
               rst_event_type_name (self->type));
        return -1;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Public: building and packing

void
rst_event_init (rst_event_t *self)
{
    assert (self);
    memset (self, 0, sizeof *self);
    self->version = RST_EVENT_SCHEMA_VERSION;
    self->lead_id = self->tg_user_id = self->value_cents = RST_EVENT_NONE;
}

rst_str_t
rst_str (const char *cstr)
{
    rst_str_t s = {cstr, cstr ? strlen (cstr) : 0};
    return s;
}

const char *
rst_event_type_name (rst_event_type_t type)
{
    switch (type) {
    case RST_EVENT_CLICK:
        return "click";
    case RST_EVENT_START:
        return "start";
    case RST_EVENT_CHECKOUT:
        return "checkout";
    case RST_EVENT_PAYMENT:
        return "payment";
    }
    return "unknown";
}

int
rst_event_is_chat (rst_event_type_t type)
{
    return type == RST_EVENT_START || type == RST_EVENT_CHECKOUT || type == RST_EVENT_PAYMENT;
}

static void
s_pack_str (msgpack_packer *pk, const char *ptr, size_t len)
{
    msgpack_pack_str_with_body (pk, ptr, len);
}

static void
s_pack_key (msgpack_packer *pk, const char *key)
{
    s_pack_str (pk, key, strlen (key));
}

//  A msgpack write callback that only counts bytes (to measure an event).
static int
s_count_write (void *data, const char *buf, size_t len)
{
    (void) buf;
    *(size_t *) data += len;
    return 0;
}

//  Writes the map. Assumes s_check passed.
static void
s_pack_map (const rst_event_t *self, msgpack_packer *pk)
{
    size_t n = 0;
    for (int id = 0; id < S_F_COUNT; id++) {
        const s_field_t *f = &s_fields[id];
        if (f->kind == S_KIND_STR)
            n += s_str_member_const (self, f)->ptr != NULL;
        else if (f->kind == S_KIND_UTM)
            n += self->utm_count > 0;
        else if (f->kind == S_KIND_OPT_I64)
            n += *(const int64_t *) ((const char *) self + f->offset) != RST_EVENT_NONE;
        else
            n++;
    }
    msgpack_pack_map (pk, n);
    for (int id = 0; id < S_F_COUNT; id++) {
        const s_field_t *f = &s_fields[id];
        switch (f->kind) {
        case S_KIND_VERSION:
            s_pack_key (pk, f->key);
            msgpack_pack_uint32 (pk, self->version);
            break;
        case S_KIND_TYPE:
            s_pack_key (pk, f->key);
            s_pack_key (pk, rst_event_type_name (self->type));
            break;
        case S_KIND_STR: {
            const rst_str_t *s = s_str_member_const (self, f);
            if (s->ptr) {
                s_pack_key (pk, f->key);
                s_pack_str (pk, s->ptr, s->len);
            }
            break;
        }
        case S_KIND_I64:
            s_pack_key (pk, f->key);
            msgpack_pack_int64 (pk, *(const int64_t *) ((const char *) self + f->offset));
            break;
        case S_KIND_OPT_I64: {
            int64_t v = *(const int64_t *) ((const char *) self + f->offset);
            if (v != RST_EVENT_NONE) {
                s_pack_key (pk, f->key);
                msgpack_pack_int64 (pk, v);
            }
            break;
        }
        case S_KIND_U64:
            s_pack_key (pk, f->key);
            msgpack_pack_uint64 (pk, self->seq);
            break;
        case S_KIND_UTM:
            if (self->utm_count) {
                s_pack_key (pk, f->key);
                msgpack_pack_map (pk, self->utm_count);
                for (size_t i = 0; i < self->utm_count; i++) {
                    s_pack_str (pk, self->utm[i].key.ptr, self->utm[i].key.len);
                    s_pack_str (pk, self->utm[i].value.ptr, self->utm[i].value.len);
                }
            }
            break;
        }
    }
}

int
rst_event_pack (const rst_event_t *self, msgpack_packer *pk)
{
    assert (self);
    assert (pk);
    char err[128];
    if (s_check (self, NULL, err, sizeof err))
        return -1;
    //  Measure first, so an event the decoder would refuse as too large is
    //  refused here and nothing half-written reaches PK.
    size_t size = 0;
    msgpack_packer counter;
    msgpack_packer_init (&counter, &size, s_count_write);
    s_pack_map (self, &counter);
    if (size > RST_EVENT_MAX_BYTES)
        return -1;
    s_pack_map (self, pk);
    return 0;
}

//  --------------------------------------------------------------------------
//  Decoding, step 2: the map's keys into an event whose strings still point
//  into msgpack-c's object; step 3 copies them into the arena.

static int
s_key_is (const msgpack_object *key, const char *name)
{
    size_t n = strlen (name);
    return key->via.str.size == n && memcmp (key->via.str.ptr, name, n) == 0;
}

static int
s_wrong_type (const s_field_t *f, const msgpack_object *val, const char *want, char *err,
              size_t errlen)
{
    s_err (err, errlen, "%s: wrong type %s (want %s)", f->key, rst_mpcheck_type_name (val->type),
           want);
    return -1;
}

//  Reads one value into EVENT. Returns 0 or -1 (ERR).
static int
s_read_field (rst_event_t *event, const s_field_t *f, const msgpack_object *val, char *err,
              size_t errlen)
{
    switch (f->kind) {
    case S_KIND_VERSION:
        if (val->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
            return s_wrong_type (f, val, "positive int", err, errlen);
        if (val->via.u64 != RST_EVENT_SCHEMA_VERSION) {
            s_err (err, errlen, "unsupported schema version %llu",
                   (unsigned long long) val->via.u64);
            return -1;
        }
        event->version = (uint32_t) val->via.u64;
        return 0;
    case S_KIND_TYPE:
        if (val->type != MSGPACK_OBJECT_STR)
            return s_wrong_type (f, val, "str", err, errlen);
        if (s_key_is (val, "click"))
            event->type = RST_EVENT_CLICK;
        else if (s_key_is (val, "start"))
            event->type = RST_EVENT_START;
        else if (s_key_is (val, "checkout"))
            event->type = RST_EVENT_CHECKOUT;
        else if (s_key_is (val, "payment"))
            event->type = RST_EVENT_PAYMENT;
        else {
            s_err (err, errlen, "type: unknown event type (%zu bytes)", (size_t) val->via.str.size);
            return -1;
        }
        return 0;
    case S_KIND_STR:
        if (val->type == MSGPACK_OBJECT_NIL)
            return 0;   //  absent
        if (val->type != MSGPACK_OBJECT_STR)
            return s_wrong_type (f, val, "str", err, errlen);
        else {
            rst_str_t s = {val->via.str.ptr, val->via.str.size};
            if (!s.ptr)
                s.ptr = "";     //  msgpack-c may give NULL for a zero-length str
            if (s_check_str (f, s, err, errlen))
                return -1;
            *s_str_member (event, f) = s;
        }
        return 0;
    case S_KIND_OPT_I64:
    case S_KIND_I64: {
        if (f->kind == S_KIND_OPT_I64 && val->type == MSGPACK_OBJECT_NIL)
            return 0;   //  absent (the member stays RST_EVENT_NONE)
        int64_t v;
        if (val->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
            if (val->via.u64 > (uint64_t) INT64_MAX) {
                s_err (err, errlen, "%s: out of range", f->key);
                return -1;
            }
            v = (int64_t) val->via.u64;
        }
        else if (val->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
            v = val->via.i64;
        else
            return s_wrong_type (f, val, "int", err, errlen);
        if (v < f->min || v > f->max) {
            s_err (err, errlen, "%s: out of range (%lld)", f->key, (long long) v);
            return -1;
        }
        *s_i64_member (event, f) = v;
        return 0;
    }
    case S_KIND_U64:
        if (val->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
            return s_wrong_type (f, val, "positive int", err, errlen);
        if (val->via.u64 == 0) {
            s_err (err, errlen, "%s: out of range (0)", f->key);
            return -1;
        }
        event->seq = val->via.u64;
        return 0;
    case S_KIND_UTM:
        if (val->type == MSGPACK_OBJECT_NIL)
            return 0;
        if (val->type != MSGPACK_OBJECT_MAP)
            return s_wrong_type (f, val, "map", err, errlen);
        if (val->via.map.size > RST_EVENT_MAX_UTM) {
            s_err (err, errlen, "utm: too many entries (%u > %d)", val->via.map.size,
                   RST_EVENT_MAX_UTM);
            return -1;
        }
        for (uint32_t i = 0; i < val->via.map.size; i++) {
            const msgpack_object *k = &val->via.map.ptr[i].key;
            const msgpack_object *v = &val->via.map.ptr[i].val;
            if (k->type != MSGPACK_OBJECT_STR || v->type != MSGPACK_OBJECT_STR) {
                s_err (err, errlen, "utm: entry %u is not str -> str", i);
                return -1;
            }
            if (k->via.str.size == 0 || k->via.str.size > RST_EVENT_SHORT_MAX) {
                s_err (err, errlen, "utm: key %u must be 1..%d bytes", i, RST_EVENT_SHORT_MAX);
                return -1;
            }
            rst_kv_t *kv = &event->utm[i];
            kv->key.ptr = k->via.str.ptr;
            kv->key.len = k->via.str.size;
            kv->value.ptr = v->via.str.ptr ? v->via.str.ptr : "";
            kv->value.len = v->via.str.size;
        }
        event->utm_count = val->via.map.size;
        return 0;
    }
    return -1;
}

//  Returns the event's string members and utm strings as a list of pointers
//  into EVENT (at most S_F_COUNT + 2 * RST_EVENT_MAX_UTM), so that the arena
//  copy can treat them alike.
static size_t
s_all_strings (rst_event_t *event, rst_str_t **out)
{
    size_t n = 0;
    for (int id = 0; id < S_F_COUNT; id++)
        if (s_fields[id].kind == S_KIND_STR)
            out[n++] = s_str_member (event, &s_fields[id]);
    for (size_t i = 0; i < event->utm_count; i++) {
        out[n++] = &event->utm[i].key;
        out[n++] = &event->utm[i].value;
    }
    return n;
}

//  Copies every present string of EVENT into one new arena and points the
//  views at it. Returns 0 or -1 (out of memory).
static int
s_own_strings (rst_event_t *event)
{
    rst_str_t *list[S_F_COUNT + 2 * RST_EVENT_MAX_UTM];
    size_t n = s_all_strings (event, list);
    size_t total = 1;
    for (size_t i = 0; i < n; i++)
        if (list[i]->ptr)
            total += list[i]->len + 1;
    char *arena = malloc (total);
    if (!arena)
        return -1;
    char *at = arena;
    for (size_t i = 0; i < n; i++) {
        if (!list[i]->ptr)
            continue;
        if (list[i]->len)
            memcpy (at, list[i]->ptr, list[i]->len);
        at[list[i]->len] = 0;
        list[i]->ptr = at;
        at += list[i]->len + 1;
    }
    *at = 0;
    event->arena = arena;
    return 0;
}

//  Fills EVENT from the map OBJ. Returns 0 or -1 (ERR).
static int
s_from_map (rst_event_t *event, const msgpack_object *obj, char *err, size_t errlen)
{
    if (obj->type != MSGPACK_OBJECT_MAP) {
        s_err (err, errlen, "not a map (%s)", rst_mpcheck_type_name (obj->type));
        return -1;
    }
    const msgpack_object_map *map = &obj->via.map;
    unsigned seen = 0;

    //  The version first: nothing else means anything under another schema.
    for (uint32_t i = 0; i < map->size; i++) {
        const msgpack_object *key = &map->ptr[i].key;
        if (key->type == MSGPACK_OBJECT_STR && s_key_is (key, "v")) {
            if (s_read_field (event, &s_fields[S_F_V], &map->ptr[i].val, err, errlen))
                return -1;
            seen |= S_BIT (S_F_V);
            break;
        }
    }
    if (!(seen & S_BIT (S_F_V))) {
        s_err (err, errlen, "missing schema version \"v\"");
        return -1;
    }
    for (uint32_t i = 0; i < map->size; i++) {
        const msgpack_object *key = &map->ptr[i].key;
        if (key->type != MSGPACK_OBJECT_STR) {
            s_err (err, errlen, "key %u is not a str (%s)", i, rst_mpcheck_type_name (key->type));
            return -1;
        }
        int id;
        for (id = 0; id < S_F_COUNT; id++)
            if (s_key_is (key, s_fields[id].key))
                break;
        if (id == S_F_COUNT)
            continue;   //  unknown key: a newer writer's field, ignored
        if (id == S_F_V) {
            if (map->ptr[i].val.type != MSGPACK_OBJECT_POSITIVE_INTEGER
                || map->ptr[i].val.via.u64 != event->version) {
                s_err (err, errlen, "duplicate key v");
                return -1;
            }
            continue;
        }
        if (seen & S_BIT (id)) {
            s_err (err, errlen, "duplicate key %s", s_fields[id].key);
            return -1;
        }
        if (s_read_field (event, &s_fields[id], &map->ptr[i].val, err, errlen))
            return -1;
        seen |= S_BIT (id);
    }
    if (!(seen & S_BIT (S_F_TYPE))) {
        s_err (err, errlen, "missing required field type");
        return -1;
    }
    return s_check (event, &seen, err, errlen);
}

rst_event_t *
rst_event_decode (const char *data, size_t len, size_t *offset, char *err, size_t errlen)
{
    assert (offset);
    assert (data || len == 0);
    if (err && errlen)
        err[0] = 0;
    if (*offset >= len) {
        s_err (err, errlen, "truncated: no data");
        *offset = len;
        return NULL;
    }
    const unsigned char *start = (const unsigned char *) data + *offset;
    size_t left = len - *offset;
    size_t size = 0;
    rst_mpcheck_t m = rst_mpcheck_measure (start, left, &size);
    if (m != RST_MPCHECK_OK) {
        s_err (err, errlen, "%s", rst_mpcheck_reason (m));
        *offset = len;      //  no object boundary to resume from
        return NULL;
    }
    //  From here on the object's extent is known: whatever is wrong with it,
    //  the caller may go on with the next one.
    *offset += size;
    if (size > RST_EVENT_MAX_BYTES) {
        s_err (err, errlen, "event too large (%zu > %d bytes)", size, RST_EVENT_MAX_BYTES);
        return NULL;
    }
    rst_event_t *self = calloc (1, sizeof *self);
    if (!self) {
        s_err (err, errlen, "out of memory");
        return NULL;
    }
    self->lead_id = self->tg_user_id = self->value_cents = RST_EVENT_NONE;
    msgpack_unpacked up;
    msgpack_unpacked_init (&up);
    size_t used = 0;
    msgpack_unpack_return rc = msgpack_unpack_next (&up, (const char *) start, size, &used);
    if (rc != MSGPACK_UNPACK_SUCCESS || used != size) {
        //  Deeper nesting than msgpack-c's parser stack, or out of memory.
        s_err (err, errlen, "msgpack-c could not unpack the event (%d)", (int) rc);
        goto fail;
    }
    if (s_from_map (self, &up.data, err, errlen))
        goto fail;
    if (s_own_strings (self)) {
        s_err (err, errlen, "out of memory");
        goto fail;
    }
    msgpack_unpacked_destroy (&up);
    return self;
fail:
    msgpack_unpacked_destroy (&up);
    free (self);
    return NULL;
}

void
rst_event_destroy (rst_event_t **self_p)
{
    assert (self_p);
    rst_event_t *self = *self_p;
    if (!self)
        return;
    free (self->arena);
    free (self);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------
//  Acknowledgements

int
rst_ack_pack (msgpack_packer *pk, unsigned stage, const uint64_t *seqs, size_t count)
{
    assert (pk);
    if (stage == 0 || (stage & (stage - 1)) || count < 1 || count > RST_ACK_MAX_SEQS || !seqs)
        return -1;
    msgpack_pack_map (pk, 3);
    s_pack_key (pk, "v");
    msgpack_pack_uint32 (pk, RST_EVENT_SCHEMA_VERSION);
    s_pack_key (pk, "stage");
    msgpack_pack_uint32 (pk, stage);
    s_pack_key (pk, "seqs");
    msgpack_pack_array (pk, count);
    for (size_t i = 0; i < count; i++)
        msgpack_pack_uint64 (pk, seqs[i]);
    return 0;
}

int
rst_ack_decode (const char *data, size_t len, unsigned *stage, uint64_t *seqs, size_t max,
                char *err, size_t errlen)
{
    assert (stage);
    assert (seqs || max == 0);
    size_t size = 0;
    if (!data || len == 0 || rst_mpcheck_measure (data, len, &size) != RST_MPCHECK_OK) {
        s_err (err, errlen, "ack: truncated or malformed msgpack data");
        return -1;
    }
    if (size != len) {
        s_err (err, errlen, "ack: %zu bytes after the map", len - size);
        return -1;
    }
    if (size > RST_EVENT_MAX_BYTES) {
        s_err (err, errlen, "ack: too large (%zu bytes)", size);
        return -1;
    }
    msgpack_unpacked up;
    msgpack_unpacked_init (&up);
    int count = -1;
    int have_v = 0, have_stage = 0, have_seqs = 0;
    size_t used = 0;
    if (msgpack_unpack_next (&up, data, len, &used) != MSGPACK_UNPACK_SUCCESS || used != len) {
        s_err (err, errlen, "ack: msgpack-c could not unpack it");
        goto done;
    }
    if (up.data.type != MSGPACK_OBJECT_MAP) {
        s_err (err, errlen, "ack: not a map (%s)", rst_mpcheck_type_name (up.data.type));
        goto done;
    }
    const msgpack_object_map *map = &up.data.via.map;
    size_t n = 0;
    for (uint32_t i = 0; i < map->size; i++) {
        const msgpack_object *key = &map->ptr[i].key;
        const msgpack_object *val = &map->ptr[i].val;
        if (key->type != MSGPACK_OBJECT_STR) {
            s_err (err, errlen, "ack: key %u is not a str", i);
            goto done;
        }
        if (s_key_is (key, "v")) {
            if (val->type != MSGPACK_OBJECT_POSITIVE_INTEGER
                || val->via.u64 != RST_EVENT_SCHEMA_VERSION) {
                s_err (err, errlen, "ack: unsupported schema version");
                goto done;
            }
            have_v = 1;
        }
        else if (s_key_is (key, "stage")) {
            if (val->type != MSGPACK_OBJECT_POSITIVE_INTEGER || val->via.u64 == 0
                || val->via.u64 > 0x80000000u || (val->via.u64 & (val->via.u64 - 1))) {
                s_err (err, errlen, "ack: stage must be a power of two (an ack bit)");
                goto done;
            }
            *stage = (unsigned) val->via.u64;
            have_stage = 1;
        }
        else if (s_key_is (key, "seqs")) {
            if (val->type != MSGPACK_OBJECT_ARRAY) {
                s_err (err, errlen, "ack: seqs: wrong type %s (want array)",
                       rst_mpcheck_type_name (val->type));
                goto done;
            }
            if (val->via.array.size > max) {
                s_err (err, errlen, "ack: too many seqs (%u > %zu)", val->via.array.size, max);
                goto done;
            }
            for (uint32_t j = 0; j < val->via.array.size; j++) {
                const msgpack_object *s = &val->via.array.ptr[j];
                if (s->type != MSGPACK_OBJECT_POSITIVE_INTEGER || s->via.u64 == 0) {
                    s_err (err, errlen, "ack: seqs[%u] is not a positive int", j);
                    goto done;
                }
                seqs[j] = s->via.u64;
            }
            n = val->via.array.size;
            have_seqs = 1;
        }
        //  other keys: ignored (forward compatibility)
    }
    if (!have_v || !have_stage || !have_seqs) {
        s_err (err, errlen, "ack: missing %s", !have_v ? "v" : !have_stage ? "stage" : "seqs");
        goto done;
    }
    count = (int) n;
done:
    msgpack_unpacked_destroy (&up);
    return count;
}
