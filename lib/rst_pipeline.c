/*  rst_pipeline — codec of the Meta delivery pipeline's messages.

    Role: the enricher, limiter, batcher and sender exchange three kinds of
    msgpack maps (schemas/pipeline.md is the source of truth): "enriched"
    (one funnel event ready for Meta), "batch" (up to 1,000 of them for one
    owner and pixel) and "outcome" (what a sender learnt: accepted, dead-
    lettered, throttled). This file packs and decodes them.

    Guarantees (the same as rst_event's, whose approach this copies):
      - the decoders never read outside [data, data + len) and never assert
        on input; rst_mpcheck_measure (shared with rst_event) walks an
        object's structure without allocating and checks every declared
        length and count against the bytes that are really there before
        msgpack-c sees them, and objects over the
        kind's byte limit are refused (and skipped, for "enriched" streams);
      - one checker per kind (s_check_enriched, s_check_batch,
        s_check_outcome) runs on the packer's input and on the decoder's
        result alike, so whatever a pack accepts, its decoder accepts;
      - `capi` (the Meta event object) must be exactly one JSON object of
        valid UTF-8 text (s_json_is_object, a non-allocating validator): a
        malformed object would make Meta refuse a whole batch of 1,000;
      - a decoded message owns its strings: one arena allocation holds them
        (and a batch's item array), each string followed by a NUL byte, and
        every string of a decoded message has a non-NULL ptr (absent = "").
      - unknown keys are ignored (forward compatibility); an unknown "v",
        "kind" or outcome, a non-string key and a known key twice are not.
*/
#include "rst_pipeline.h"
#include "rst_meta.h"
#include "rst_mpcheck.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_TYPE_MAX      32      //  bytes of `type` ("click", "payment", ...)
#define S_NAME_MAX      64      //  bytes of event_name, automated_reason
#define S_JSON_DEPTH    32      //  nesting accepted in `capi`

//  --------------------------------------------------------------------------
//  Small helpers

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

typedef enum {
    S_CHARS_ANY,            //  any bytes
    S_CHARS_PRINTABLE,      //  ASCII 0x21..0x7e
    S_CHARS_TOKEN,          //  [A-Za-z0-9_-]
} s_chars_t;

//  Checks string S named NAME: MIN..MAX bytes of CHARS. Returns 0 or -1 (ERR).
static int
s_check_str (const char *name, rst_str_t s, size_t min, size_t max, s_chars_t chars, char *err,
             size_t errlen)
{
    if (!s.ptr && s.len) {
        s_err (err, errlen, "%s: NULL string with a length", name);
        return -1;
    }
    if (s.len < min) {
        s_err (err, errlen, "%s: %s", name, s.len ? "too short" : "missing or empty");
        return -1;
    }
    if (s.len > max) {
        s_err (err, errlen, "%s: too long (%zu > %zu bytes)", name, s.len, max);
        return -1;
    }
    for (size_t i = 0; i < s.len && chars != S_CHARS_ANY; i++) {
        unsigned char c = (unsigned char) s.ptr[i];
        int ok = chars == S_CHARS_PRINTABLE
                     ? c >= 0x21 && c <= 0x7e
                     : (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
                           || c == '_' || c == '-';
        if (!ok) {
            s_err (err, errlen, "%s: invalid character at byte %zu", name, i);
            return -1;
        }
    }
    return 0;
}

static int
s_check_range (const char *name, int64_t v, int64_t min, int64_t max, char *err, size_t errlen)
{
    if (v < min || v > max) {
        s_err (err, errlen, "%s: out of range (%lld)", name, (long long) v);
        return -1;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  JSON validation of `capi` (RFC 8259), without allocating. Strings must be
//  valid UTF-8 (no overlong forms, no surrogates), with no raw control bytes.

typedef struct {
    const unsigned char *p, *end;
    int depth;
} s_json_t;

static void
s_json_ws (s_json_t *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

//  Length of the well-formed UTF-8 sequence at P (END bounds it), or 0.
static size_t
s_utf8_len (const unsigned char *p, const unsigned char *end)
{
    unsigned char c = p[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0)
            lo = 0xa0;
        if (c == 0xed)
            hi = 0x9f;      //  no surrogates
    }
    else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0)
            lo = 0x90;
        if (c == 0xf4)
            hi = 0x8f;
    }
    else
        return 0;
    if ((size_t) (end - p) < n)
        return 0;
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    return n;
}

static int
s_is_hex (unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int
s_json_string (s_json_t *j)
{
    j->p++;     //  the opening quote
    while (j->p < j->end) {
        unsigned char c = *j->p;
        if (c == '"') {
            j->p++;
            return 0;
        }
        if (c < 0x20)
            return -1;
        if (c == '\\') {
            if (j->end - j->p < 2)
                return -1;
            unsigned char e = j->p[1];
            if (e == 'u') {
                if (j->end - j->p < 6 || !s_is_hex (j->p[2]) || !s_is_hex (j->p[3])
                    || !s_is_hex (j->p[4]) || !s_is_hex (j->p[5]))
                    return -1;
                j->p += 6;
            }
            else if (strchr ("\"\\/bfnrt", e) && e)
                j->p += 2;
            else
                return -1;
            continue;
        }
        size_t n = s_utf8_len (j->p, j->end);
        if (!n)
            return -1;
        j->p += n;
    }
    return -1;
}

static int
s_json_number (s_json_t *j)
{
    const unsigned char *p = j->p, *end = j->end;
    if (p < end && *p == '-')
        p++;
    if (p >= end)
        return -1;
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9')
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    else
        return -1;
    if (p < end && *p == '.') {
        p++;
        if (p >= end || *p < '0' || *p > '9')
            return -1;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p >= end || *p < '0' || *p > '9')
            return -1;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    j->p = p;
    return 0;
}

static int
s_json_literal (s_json_t *j, const char *word)
{
    size_t n = strlen (word);
    if ((size_t) (j->end - j->p) < n || memcmp (j->p, word, n))
        return -1;
    j->p += n;
    return 0;
}

static int s_json_value (s_json_t *j);

//  An object or array (OPEN is '{' or '[').
static int
s_json_container (s_json_t *j, unsigned char open)
{
    unsigned char close = open == '{' ? '}' : ']';
    if (++j->depth > S_JSON_DEPTH)
        return -1;
    j->p++;
    s_json_ws (j);
    if (j->p < j->end && *j->p == close) {
        j->p++;
        j->depth--;
        return 0;
    }
    while (1) {
        if (open == '{') {
            s_json_ws (j);
            if (j->p >= j->end || *j->p != '"' || s_json_string (j))
                return -1;
            s_json_ws (j);
            if (j->p >= j->end || *j->p != ':')
                return -1;
            j->p++;
        }
        if (s_json_value (j))
            return -1;
        s_json_ws (j);
        if (j->p >= j->end)
            return -1;
        if (*j->p == ',') {
            j->p++;
            continue;
        }
        if (*j->p != close)
            return -1;
        j->p++;
        j->depth--;
        return 0;
    }
}

static int
s_json_value (s_json_t *j)
{
    s_json_ws (j);
    if (j->p >= j->end)
        return -1;
    switch (*j->p) {
    case '{':
    case '[':
        return s_json_container (j, *j->p);
    case '"':
        return s_json_string (j);
    case 't':
        return s_json_literal (j, "true");
    case 'f':
        return s_json_literal (j, "false");
    case 'n':
        return s_json_literal (j, "null");
    default:
        return s_json_number (j);
    }
}

int
rst_pipeline_json_is_object (const char *text, size_t len)
{
    if (!text || !len)
        return 0;
    s_json_t j = {(const unsigned char *) text, (const unsigned char *) text + len, 0};
    s_json_ws (&j);
    if (j.p >= j.end || *j.p != '{' || s_json_value (&j))
        return 0;
    s_json_ws (&j);
    return j.p == j.end;
}

static int
s_check_capi (const char *name, rst_str_t capi, int required, char *err, size_t errlen)
{
    if (s_check_str (name, capi, required ? 1 : 0, RST_PIPELINE_CAPI_MAX, S_CHARS_ANY, err, errlen))
        return -1;
    if (capi.len && !rst_pipeline_json_is_object (capi.ptr, capi.len)) {
        s_err (err, errlen, "%s: not one JSON object of valid UTF-8", name);
        return -1;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  The checks, shared by packers and decoders

static int
s_check_enriched (const rst_enriched_t *e, char *err, size_t errlen)
{
    if (s_check_str ("event_id", e->event_id, 1, RST_EVENT_ID_MAX, S_CHARS_PRINTABLE, err, errlen)
        || s_check_str ("src", e->src, 1, RST_EVENT_SHORT_MAX, S_CHARS_PRINTABLE, err, errlen)
        || s_check_str ("type", e->type, 1, S_TYPE_MAX, S_CHARS_TOKEN, err, errlen)
        || s_check_str ("event_name", e->event_name, 1, S_NAME_MAX, S_CHARS_PRINTABLE, err, errlen)
        || s_check_str ("pixel_id", e->pixel_id, 1, RST_EVENT_SHORT_MAX, S_CHARS_PRINTABLE, err,
                        errlen)
        || s_check_str ("utm_source", e->utm_source, 0, RST_PIPELINE_DIM_MAX, S_CHARS_ANY, err,
                        errlen)
        || s_check_str ("utm_campaign", e->utm_campaign, 0, RST_PIPELINE_DIM_MAX, S_CHARS_ANY, err,
                        errlen)
        || s_check_range ("time_ms", e->time_ms, 1, RST_EVENT_TIME_MS_MAX, err, errlen)
        || s_check_range ("owner_id", e->owner_id, 1, INT64_MAX, err, errlen)
        || s_check_range ("pool_id", e->pool_id, 0, INT64_MAX, err, errlen)
        || s_check_range ("bot_id", e->bot_id, 0, INT64_MAX, err, errlen)
        || s_check_range ("value_cents", e->value_cents, 0, INT64_MAX, err, errlen)
        || s_check_range ("automated", e->automated, 0, 1, err, errlen)
        || s_check_range ("priority", e->priority, 0, 1, err, errlen))
        return -1;
    if (e->seq == 0) {
        s_err (err, errlen, "seq: out of range (0)");
        return -1;
    }
    if (e->automated) {
        if (s_check_str ("automated_reason", e->automated_reason, 1, S_NAME_MAX,
                         S_CHARS_PRINTABLE, err, errlen))
            return -1;
    }
    else if (e->automated_reason.len) {
        s_err (err, errlen, "automated_reason: set on an event that is not automated");
        return -1;
    }
    //  An event for Meta needs its object; automated traffic may leave it out.
    return s_check_capi ("capi", e->capi, !e->automated, err, errlen);
}

static int
s_check_item (const rst_batch_item_t *it, size_t i, char *err, size_t errlen)
{
    char name[48];
    snprintf (name, sizeof name, "items[%zu]", i);
    char why[160];
    why[0] = 0;
    int rc = s_check_str ("event_id", it->event_id, 1, RST_EVENT_ID_MAX, S_CHARS_PRINTABLE, why,
                          sizeof why)
             || s_check_str ("src", it->src, 1, RST_EVENT_SHORT_MAX, S_CHARS_PRINTABLE, why,
                             sizeof why)
             || s_check_range ("time_ms", it->time_ms, 1, RST_EVENT_TIME_MS_MAX, why, sizeof why)
             || s_check_capi ("capi", it->capi, 1, why, sizeof why);
    if (!rc && it->seq == 0) {
        snprintf (why, sizeof why, "seq: out of range (0)");
        rc = 1;
    }
    if (rc) {
        s_err (err, errlen, "%s.%s", name, why);
        return -1;
    }
    return 0;
}

static int
s_check_batch (const rst_batch_t *b, char *err, size_t errlen)
{
    if (s_check_range ("owner_id", b->owner_id, 1, INT64_MAX, err, errlen)
        || s_check_str ("pixel_id", b->pixel_id, 1, RST_EVENT_SHORT_MAX, S_CHARS_PRINTABLE, err,
                        errlen)
        || s_check_range ("priority", b->priority, 0, 1, err, errlen)
        || s_check_range ("created_ms", b->created_ms, 0, RST_EVENT_TIME_MS_MAX, err, errlen))
        return -1;
    if (b->count < 1 || b->count > RST_META_MAX_EVENTS || !b->items) {
        s_err (err, errlen, "items: %zu events (want 1..%d)", b->count, RST_META_MAX_EVENTS);
        return -1;
    }
    for (size_t i = 0; i < b->count; i++)
        if (s_check_item (&b->items[i], i, err, errlen))
            return -1;
    return 0;
}

static int
s_check_outcome (const rst_outcome_t *o, char *err, size_t errlen)
{
    if (o->kind != RST_OUTCOME_ACCEPTED && o->kind != RST_OUTCOME_DEAD
        && o->kind != RST_OUTCOME_THROTTLED) {
        s_err (err, errlen, "outcome: unknown kind %d", (int) o->kind);
        return -1;
    }
    if (s_check_str ("pixel_id", o->pixel_id, 1, RST_EVENT_SHORT_MAX, S_CHARS_PRINTABLE, err,
                     errlen)
        || s_check_range ("wait_ms", o->wait_ms, 0, RST_PIPELINE_WAIT_MS_MAX, err, errlen)
        || s_check_range ("latency_ms", o->latency_ms, 0, RST_EVENT_TIME_MS_MAX, err, errlen))
        return -1;
    if (o->count > RST_PIPELINE_MAX_IDS || (o->count && !o->event_ids)) {
        s_err (err, errlen, "event_ids: %zu ids (want 0..%d)", o->count, RST_PIPELINE_MAX_IDS);
        return -1;
    }
    for (size_t i = 0; i < o->count; i++) {
        char name[32];
        snprintf (name, sizeof name, "event_ids[%zu]", i);
        if (s_check_str (name, o->event_ids[i], 1, RST_EVENT_ID_MAX, S_CHARS_PRINTABLE, err,
                         errlen))
            return -1;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Packing

static void
s_pack_str (msgpack_packer *pk, const char *s, size_t len)
{
    msgpack_pack_str_with_body (pk, s ? s : "", len);
}

static void
s_pack_key (msgpack_packer *pk, const char *key)
{
    s_pack_str (pk, key, strlen (key));
}

static void
s_pack_kv_str (msgpack_packer *pk, const char *key, rst_str_t v)
{
    s_pack_key (pk, key);
    s_pack_str (pk, v.ptr, v.len);
}

static void
s_pack_kv_i64 (msgpack_packer *pk, const char *key, int64_t v)
{
    s_pack_key (pk, key);
    msgpack_pack_int64 (pk, v);
}

static void
s_pack_kv_bool (msgpack_packer *pk, const char *key, int v)
{
    s_pack_key (pk, key);
    if (v)
        msgpack_pack_true (pk);
    else
        msgpack_pack_false (pk);
}

static void
s_pack_enriched_map (const rst_enriched_t *e, msgpack_packer *pk)
{
    msgpack_pack_map (pk, 19);
    s_pack_key (pk, "v");
    msgpack_pack_uint32 (pk, RST_PIPELINE_VERSION);
    s_pack_kv_str (pk, "kind", rst_str ("enriched"));
    s_pack_kv_str (pk, "event_id", e->event_id);
    s_pack_kv_str (pk, "src", e->src);
    s_pack_key (pk, "seq");
    msgpack_pack_uint64 (pk, e->seq);
    s_pack_kv_str (pk, "type", e->type);
    s_pack_kv_str (pk, "event_name", e->event_name);
    s_pack_kv_i64 (pk, "time_ms", e->time_ms);
    s_pack_kv_i64 (pk, "owner_id", e->owner_id);
    s_pack_kv_i64 (pk, "pool_id", e->pool_id);
    s_pack_kv_i64 (pk, "bot_id", e->bot_id);
    s_pack_kv_str (pk, "pixel_id", e->pixel_id);
    s_pack_kv_bool (pk, "automated", e->automated);
    s_pack_kv_str (pk, "automated_reason", e->automated_reason);
    s_pack_kv_bool (pk, "priority", e->priority);
    s_pack_kv_i64 (pk, "value_cents", e->value_cents);
    s_pack_kv_str (pk, "utm_source", e->utm_source);
    s_pack_kv_str (pk, "utm_campaign", e->utm_campaign);
    s_pack_kv_str (pk, "capi", e->capi);
}

int
rst_enriched_pack (const rst_enriched_t *self, msgpack_packer *pk)
{
    assert (self);
    assert (pk);
    if (s_check_enriched (self, NULL, 0))
        return -1;
    //  The checks bound every field, so a valid event is always far below
    //  RST_PIPELINE_ENRICHED_MAX_BYTES: no measuring pass is needed.
    s_pack_enriched_map (self, pk);
    return 0;
}

static void
s_pack_batch_map (const rst_batch_t *b, msgpack_packer *pk)
{
    msgpack_pack_map (pk, 7);
    s_pack_key (pk, "v");
    msgpack_pack_uint32 (pk, RST_PIPELINE_VERSION);
    s_pack_kv_str (pk, "kind", rst_str ("batch"));
    s_pack_kv_i64 (pk, "owner_id", b->owner_id);
    s_pack_kv_str (pk, "pixel_id", b->pixel_id);
    s_pack_kv_bool (pk, "priority", b->priority);
    s_pack_kv_i64 (pk, "created_ms", b->created_ms);
    s_pack_key (pk, "items");
    msgpack_pack_array (pk, b->count);
    for (size_t i = 0; i < b->count; i++) {
        const rst_batch_item_t *it = &b->items[i];
        msgpack_pack_map (pk, 5);
        s_pack_kv_str (pk, "event_id", it->event_id);
        s_pack_kv_str (pk, "src", it->src);
        s_pack_key (pk, "seq");
        msgpack_pack_uint64 (pk, it->seq);
        s_pack_kv_i64 (pk, "time_ms", it->time_ms);
        s_pack_kv_str (pk, "capi", it->capi);
    }
}

int
rst_batch_pack (const rst_batch_t *self, msgpack_packer *pk)
{
    assert (self);
    assert (pk);
    if (s_check_batch (self, NULL, 0))
        return -1;
    s_pack_batch_map (self, pk);
    return 0;
}

static const char *
s_outcome_name (rst_outcome_kind_t kind)
{
    switch (kind) {
    case RST_OUTCOME_ACCEPTED: return "accepted";
    case RST_OUTCOME_DEAD: return "dead";
    case RST_OUTCOME_THROTTLED: return "throttled";
    }
    return "unknown";
}

const char *
rst_outcome_kind_name (rst_outcome_kind_t kind)
{
    return s_outcome_name (kind);
}

int
rst_outcome_pack (const rst_outcome_t *self, msgpack_packer *pk)
{
    assert (self);
    assert (pk);
    if (s_check_outcome (self, NULL, 0))
        return -1;
    msgpack_pack_map (pk, 7);
    s_pack_key (pk, "v");
    msgpack_pack_uint32 (pk, RST_PIPELINE_VERSION);
    s_pack_kv_str (pk, "kind", rst_str ("outcome"));
    s_pack_kv_str (pk, "outcome", rst_str (s_outcome_name (self->kind)));
    s_pack_kv_str (pk, "pixel_id", self->pixel_id);
    s_pack_kv_i64 (pk, "wait_ms", self->wait_ms);
    s_pack_kv_i64 (pk, "latency_ms", self->latency_ms);
    s_pack_key (pk, "event_ids");
    msgpack_pack_array (pk, self->count);
    for (size_t i = 0; i < self->count; i++)
        s_pack_str (pk, self->event_ids[i].ptr, self->event_ids[i].len);
    return 0;
}

//  Measures and unpacks the object at DATA[0..LEN) into UP. *SIZE (OUT) is
//  the object's size when it could be measured, else 0. Returns 0, or -1
//  with the reason in ERR (UP must still be destroyed by the caller).
static int
s_unpack (const char *data, size_t len, size_t max, msgpack_unpacked *up, size_t *size,
          const char *what, char *err, size_t errlen)
{
    *size = 0;
    rst_mpcheck_t m = rst_mpcheck_measure (data, len, size);
    if (m != RST_MPCHECK_OK) {
        *size = 0;
        s_err (err, errlen, "%s: %s", what, rst_mpcheck_reason (m));
        return -1;
    }
    if (*size > max) {
        s_err (err, errlen, "%s: too large (%zu > %zu bytes)", what, *size, max);
        return -1;
    }
    size_t used = 0;
    if (msgpack_unpack_next (up, data, *size, &used) != MSGPACK_UNPACK_SUCCESS || used != *size) {
        s_err (err, errlen, "%s: msgpack-c could not unpack it", what);
        return -1;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Decoding, step 2: a map's keys into slots that point at the members of
//  the message being decoded (strings still point into msgpack-c's object).

typedef enum {
    S_V_STR,                //  rst_str_t (nil = absent)
    S_V_I64,                //  int64_t, any msgpack integer encoding
    S_V_U64,                //  uint64_t, positive
    S_V_BOOL,               //  int 0/1 from a msgpack bool
    S_V_OBJ,                //  const msgpack_object * (arrays, the outcome name)
} s_vtype_t;

typedef struct {
    const char *key;
    s_vtype_t type;
    void *dst;
    int required;
    int seen;               //  set by s_read_map
} s_slot_t;

static int
s_key_is (const msgpack_object *key, const char *name)
{
    size_t n = strlen (name);
    return key->via.str.size == n && (n == 0 || memcmp (key->via.str.ptr, name, n) == 0);
}

static int
s_str_is (rst_str_t s, const char *name)
{
    size_t n = strlen (name);
    return s.len == n && (n == 0 || memcmp (s.ptr, name, n) == 0);
}

static int
s_read_value (s_slot_t *slot, const msgpack_object *val, char *err, size_t errlen)
{
    const char *want = "?";
    switch (slot->type) {
    case S_V_STR:
        if (val->type == MSGPACK_OBJECT_NIL)
            return 0;
        if (val->type != MSGPACK_OBJECT_STR) {
            want = "str";
            break;
        }
        *(rst_str_t *) slot->dst
            = (rst_str_t){val->via.str.ptr ? val->via.str.ptr : "", val->via.str.size};
        slot->seen = 1;
        return 0;
    case S_V_I64:
        if (val->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
            if (val->via.u64 > (uint64_t) INT64_MAX) {
                s_err (err, errlen, "%s: out of range", slot->key);
                return -1;
            }
            *(int64_t *) slot->dst = (int64_t) val->via.u64;
        }
        else if (val->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
            *(int64_t *) slot->dst = val->via.i64;
        else {
            want = "int";
            break;
        }
        slot->seen = 1;
        return 0;
    case S_V_U64:
        if (val->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
            want = "positive int";
            break;
        }
        *(uint64_t *) slot->dst = val->via.u64;
        slot->seen = 1;
        return 0;
    case S_V_BOOL:
        if (val->type != MSGPACK_OBJECT_BOOLEAN) {
            want = "bool";
            break;
        }
        *(int *) slot->dst = val->via.boolean ? 1 : 0;
        slot->seen = 1;
        return 0;
    case S_V_OBJ:
        if (val->type == MSGPACK_OBJECT_NIL)
            return 0;
        *(const msgpack_object **) slot->dst = val;
        slot->seen = 1;
        return 0;
    }
    s_err (err, errlen, "%s: wrong type %s (want %s)", slot->key, rst_mpcheck_type_name (val->type),
           want);
    return -1;
}

//  Reads the map OBJ into SLOTS[0..N). KIND, when not NULL, is the message
//  kind the map must declare with "v" = RST_PIPELINE_VERSION and "kind".
//  Returns 0 or -1 (ERR): not a map, a non-str key, a known key twice, a
//  wrong type, a required key missing (nil counts as missing).
static int
s_read_map (const msgpack_object *obj, const char *kind, s_slot_t *slots, size_t n, char *err,
            size_t errlen)
{
    if (obj->type != MSGPACK_OBJECT_MAP) {
        s_err (err, errlen, "not a map (%s)", rst_mpcheck_type_name (obj->type));
        return -1;
    }
    const msgpack_object_map *map = &obj->via.map;
    int have_v = 0, have_kind = 0;
    for (uint32_t i = 0; i < map->size; i++) {
        const msgpack_object *key = &map->ptr[i].key;
        const msgpack_object *val = &map->ptr[i].val;
        if (key->type != MSGPACK_OBJECT_STR) {
            s_err (err, errlen, "key %u is not a str (%s)", i, rst_mpcheck_type_name (key->type));
            return -1;
        }
        if (kind && s_key_is (key, "v")) {
            if (have_v++) {
                s_err (err, errlen, "duplicate key v");
                return -1;
            }
            if (val->type != MSGPACK_OBJECT_POSITIVE_INTEGER
                || val->via.u64 != RST_PIPELINE_VERSION) {
                s_err (err, errlen, "unsupported version (want v = %d)", RST_PIPELINE_VERSION);
                return -1;
            }
            continue;
        }
        if (kind && s_key_is (key, "kind")) {
            if (have_kind++) {
                s_err (err, errlen, "duplicate key kind");
                return -1;
            }
            if (val->type != MSGPACK_OBJECT_STR || !s_key_is (val, kind)) {
                s_err (err, errlen, "kind: not \"%s\"", kind);
                return -1;
            }
            continue;
        }
        size_t s;
        for (s = 0; s < n; s++)
            if (s_key_is (key, slots[s].key))
                break;
        if (s == n)
            continue;   //  unknown key: a newer writer's field, ignored
        if (slots[s].seen) {
            s_err (err, errlen, "duplicate key %s", slots[s].key);
            return -1;
        }
        if (s_read_value (&slots[s], val, err, errlen))
            return -1;
        slots[s].seen = 1;  //  nil too: a second nil is still a duplicate
    }
    if (kind && !have_v) {
        s_err (err, errlen, "missing version \"v\"");
        return -1;
    }
    if (kind && !have_kind) {
        s_err (err, errlen, "missing \"kind\"");
        return -1;
    }
    for (size_t s = 0; s < n; s++) {
        if (!slots[s].required)
            continue;
        //  A required key must be there and not nil: re-check by type.
        int present = slots[s].seen;
        if (present && slots[s].type == S_V_STR)
            present = ((rst_str_t *) slots[s].dst)->ptr != NULL;
        if (present && slots[s].type == S_V_OBJ)
            present = *(const msgpack_object **) slots[s].dst != NULL;
        if (!present) {
            s_err (err, errlen, "missing required key %s", slots[s].key);
            return -1;
        }
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Decoding, step 3: copy the strings into one arena

static size_t
s_str_room (rst_str_t *const *list, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += list[i]->len + 1;
    return total;
}

//  Copies *S to *AT (NUL-terminated), points *S at the copy, advances *AT.
static void
s_str_move (rst_str_t *s, char **at)
{
    if (s->len)
        memcpy (*at, s->ptr, s->len);
    (*at)[s->len] = 0;
    s->ptr = *at;
    *at += s->len + 1;
}

//  --------------------------------------------------------------------------
//  enriched

#define S_ENRICHED_STRS 9

static size_t
s_enriched_strs (rst_enriched_t *e, rst_str_t **out)
{
    rst_str_t *list[S_ENRICHED_STRS] = {&e->event_id,         &e->src,        &e->type,
                                        &e->event_name,       &e->pixel_id,   &e->automated_reason,
                                        &e->utm_source,       &e->utm_campaign, &e->capi};
    memcpy (out, list, sizeof list);
    return S_ENRICHED_STRS;
}

rst_enriched_t *
rst_enriched_decode (const char *data, size_t len, size_t *offset, char *err, size_t errlen)
{
    assert (offset);
    assert (data || len == 0);
    if (err && errlen)
        err[0] = 0;
    if (*offset >= len) {
        s_err (err, errlen, "enriched: truncated: no data");
        *offset = len;
        return NULL;
    }
    rst_enriched_t *self = calloc (1, sizeof *self);
    msgpack_unpacked up;
    msgpack_unpacked_init (&up);
    size_t size = 0;
    if (!self) {
        s_err (err, errlen, "enriched: out of memory");
        //  Skip the object if it can be measured, so the caller goes on.
        if (rst_mpcheck_measure (data + *offset, len - *offset, &size)
            == RST_MPCHECK_OK)
            *offset += size;
        else
            *offset = len;
        goto fail;
    }
    int rc = s_unpack (data + *offset, len - *offset, RST_PIPELINE_ENRICHED_MAX_BYTES, &up, &size,
                       "enriched", err, errlen);
    //  Once the object's extent is known the caller may go on with the next
    //  one, whatever is wrong with this one; otherwise the message ends here.
    *offset = size ? *offset + size : len;
    if (rc)
        goto fail;

    rst_str_t *strs[S_ENRICHED_STRS];
    size_t nstrs = s_enriched_strs (self, strs);
    for (size_t i = 0; i < nstrs; i++)
        *strs[i] = (rst_str_t){"", 0};
    s_slot_t slots[] = {
        {"event_id", S_V_STR, &self->event_id, 1, 0},
        {"src", S_V_STR, &self->src, 1, 0},
        {"seq", S_V_U64, &self->seq, 1, 0},
        {"type", S_V_STR, &self->type, 1, 0},
        {"event_name", S_V_STR, &self->event_name, 1, 0},
        {"time_ms", S_V_I64, &self->time_ms, 1, 0},
        {"owner_id", S_V_I64, &self->owner_id, 1, 0},
        {"pool_id", S_V_I64, &self->pool_id, 0, 0},
        {"bot_id", S_V_I64, &self->bot_id, 0, 0},
        {"pixel_id", S_V_STR, &self->pixel_id, 1, 0},
        {"automated", S_V_BOOL, &self->automated, 0, 0},
        {"automated_reason", S_V_STR, &self->automated_reason, 0, 0},
        {"priority", S_V_BOOL, &self->priority, 0, 0},
        {"value_cents", S_V_I64, &self->value_cents, 0, 0},
        {"utm_source", S_V_STR, &self->utm_source, 0, 0},
        {"utm_campaign", S_V_STR, &self->utm_campaign, 0, 0},
        {"capi", S_V_STR, &self->capi, 0, 0},
    };
    char why[200];
    why[0] = 0;
    if (s_read_map (&up.data, "enriched", slots, sizeof slots / sizeof slots[0], why, sizeof why)
        || s_check_enriched (self, why, sizeof why)) {
        s_err (err, errlen, "enriched: %s", why);
        goto fail;
    }
    char *arena = malloc (s_str_room (strs, nstrs));
    if (!arena) {
        s_err (err, errlen, "enriched: out of memory");
        goto fail;
    }
    self->arena = arena;
    for (size_t i = 0; i < nstrs; i++)
        s_str_move (strs[i], &arena);
    msgpack_unpacked_destroy (&up);
    return self;
fail:
    msgpack_unpacked_destroy (&up);
    free (self);
    return NULL;
}

void
rst_enriched_destroy (rst_enriched_t **self_p)
{
    assert (self_p);
    rst_enriched_t *self = *self_p;
    if (!self)
        return;
    free (self->arena);
    free (self);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------
//  batch

//  Reads the items array ARR into ITEMS (COUNT of them, zeroed). Returns 0
//  or -1 (ERR).
static int
s_read_items (const msgpack_object *arr, rst_batch_item_t *items, char *err, size_t errlen)
{
    for (uint32_t i = 0; i < arr->via.array.size; i++) {
        rst_batch_item_t *it = &items[i];
        it->event_id = it->src = it->capi = (rst_str_t){"", 0};
        s_slot_t slots[] = {
            {"event_id", S_V_STR, &it->event_id, 1, 0},
            {"src", S_V_STR, &it->src, 1, 0},
            {"seq", S_V_U64, &it->seq, 1, 0},
            {"time_ms", S_V_I64, &it->time_ms, 1, 0},
            {"capi", S_V_STR, &it->capi, 1, 0},
        };
        char why[160];
        if (s_read_map (&arr->via.array.ptr[i], NULL, slots, sizeof slots / sizeof slots[0], why,
                        sizeof why)) {
            s_err (err, errlen, "items[%u]: %s", i, why);
            return -1;
        }
    }
    return 0;
}

rst_batch_t *
rst_batch_decode (const char *data, size_t len, char *err, size_t errlen)
{
    assert (data || len == 0);
    if (err && errlen)
        err[0] = 0;
    if (len == 0) {
        s_err (err, errlen, "batch: truncated: no data");
        return NULL;
    }
    rst_batch_t *self = calloc (1, sizeof *self);
    rst_batch_item_t *items = NULL;
    msgpack_unpacked up;
    msgpack_unpacked_init (&up);
    if (!self) {
        s_err (err, errlen, "batch: out of memory");
        goto fail;
    }
    size_t size = 0;
    if (s_unpack (data, len, RST_PIPELINE_BATCH_MAX_BYTES, &up, &size, "batch", err, errlen))
        goto fail;
    if (size != len) {
        s_err (err, errlen, "batch: %zu bytes after the map", len - size);
        goto fail;
    }
    const msgpack_object *arr = NULL;
    self->pixel_id = (rst_str_t){"", 0};
    s_slot_t slots[] = {
        {"owner_id", S_V_I64, &self->owner_id, 1, 0},
        {"pixel_id", S_V_STR, &self->pixel_id, 1, 0},
        {"priority", S_V_BOOL, &self->priority, 0, 0},
        {"created_ms", S_V_I64, &self->created_ms, 0, 0},
        {"items", S_V_OBJ, &arr, 1, 0},
    };
    char why[200];
    why[0] = 0;
    if (s_read_map (&up.data, "batch", slots, sizeof slots / sizeof slots[0], why, sizeof why))
        goto bad;
    if (arr->type != MSGPACK_OBJECT_ARRAY) {
        snprintf (why, sizeof why, "items: wrong type %s (want array)",
                  rst_mpcheck_type_name (arr->type));
        goto bad;
    }
    if (arr->via.array.size < 1 || arr->via.array.size > RST_META_MAX_EVENTS) {
        snprintf (why, sizeof why, "items: %u events (want 1..%d)", arr->via.array.size,
                  RST_META_MAX_EVENTS);
        goto bad;
    }
    self->count = arr->via.array.size;
    items = calloc (self->count, sizeof *items);
    if (!items) {
        snprintf (why, sizeof why, "out of memory");
        goto bad;
    }
    self->items = items;
    if (s_read_items (arr, items, why, sizeof why) || s_check_batch (self, why, sizeof why))
        goto bad;

    //  One arena: the item array, then every string.
    size_t room = self->pixel_id.len + 1;
    for (size_t i = 0; i < self->count; i++)
        room += items[i].event_id.len + items[i].src.len + items[i].capi.len + 3;
    size_t head = self->count * sizeof *items;
    char *arena = malloc (head + room);
    if (!arena) {
        snprintf (why, sizeof why, "out of memory");
        goto bad;
    }
    memcpy (arena, items, head);
    free (items);
    items = NULL;
    self->items = (rst_batch_item_t *) arena;
    self->arena = arena;
    char *at = arena + head;
    s_str_move (&self->pixel_id, &at);
    for (size_t i = 0; i < self->count; i++) {
        s_str_move (&self->items[i].event_id, &at);
        s_str_move (&self->items[i].src, &at);
        s_str_move (&self->items[i].capi, &at);
    }
    msgpack_unpacked_destroy (&up);
    return self;
bad:
    s_err (err, errlen, "batch: %s", why);
fail:
    msgpack_unpacked_destroy (&up);
    free (items);
    free (self);
    return NULL;
}

void
rst_batch_destroy (rst_batch_t **self_p)
{
    assert (self_p);
    rst_batch_t *self = *self_p;
    if (!self)
        return;
    free (self->arena);
    free (self);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------
//  outcome

rst_outcome_t *
rst_outcome_decode (const char *data, size_t len, char *err, size_t errlen)
{
    assert (data || len == 0);
    if (err && errlen)
        err[0] = 0;
    if (len == 0) {
        s_err (err, errlen, "outcome: truncated: no data");
        return NULL;
    }
    rst_outcome_t *self = calloc (1, sizeof *self);
    msgpack_unpacked up;
    msgpack_unpacked_init (&up);
    if (!self) {
        s_err (err, errlen, "outcome: out of memory");
        goto fail;
    }
    size_t size = 0;
    if (s_unpack (data, len, RST_PIPELINE_OUTCOME_MAX_BYTES, &up, &size, "outcome", err, errlen))
        goto fail;
    if (size != len) {
        s_err (err, errlen, "outcome: %zu bytes after the map", len - size);
        goto fail;
    }
    rst_str_t name = {"", 0};
    const msgpack_object *ids = NULL;
    self->pixel_id = (rst_str_t){"", 0};
    s_slot_t slots[] = {
        {"outcome", S_V_STR, &name, 1, 0},
        {"pixel_id", S_V_STR, &self->pixel_id, 1, 0},
        {"wait_ms", S_V_I64, &self->wait_ms, 0, 0},
        {"latency_ms", S_V_I64, &self->latency_ms, 0, 0},
        {"event_ids", S_V_OBJ, &ids, 0, 0},
    };
    char why[200];
    why[0] = 0;
    if (s_read_map (&up.data, "outcome", slots, sizeof slots / sizeof slots[0], why, sizeof why))
        goto bad;
    if (s_str_is (name, "accepted"))
        self->kind = RST_OUTCOME_ACCEPTED;
    else if (s_str_is (name, "dead"))
        self->kind = RST_OUTCOME_DEAD;
    else if (s_str_is (name, "throttled"))
        self->kind = RST_OUTCOME_THROTTLED;
    else {
        snprintf (why, sizeof why, "outcome: unknown (%zu bytes)", name.len);
        goto bad;
    }
    if (ids && ids->type != MSGPACK_OBJECT_ARRAY) {
        snprintf (why, sizeof why, "event_ids: wrong type %s (want array)",
                  rst_mpcheck_type_name (ids->type));
        goto bad;
    }
    if (ids && ids->via.array.size > RST_PIPELINE_MAX_IDS) {
        snprintf (why, sizeof why, "event_ids: %u ids (want 0..%d)", ids->via.array.size,
                  RST_PIPELINE_MAX_IDS);
        goto bad;
    }
    size_t count = ids ? ids->via.array.size : 0;
    size_t room = self->pixel_id.len + 1;
    for (size_t i = 0; i < count; i++) {
        const msgpack_object *id = &ids->via.array.ptr[i];
        if (id->type != MSGPACK_OBJECT_STR) {
            snprintf (why, sizeof why, "event_ids[%zu]: wrong type %s (want str)", i,
                      rst_mpcheck_type_name (id->type));
            goto bad;
        }
        room += id->via.str.size + 1;
    }
    size_t head = count * sizeof (rst_str_t);
    char *arena = malloc (head + room);
    if (!arena) {
        snprintf (why, sizeof why, "out of memory");
        goto bad;
    }
    self->arena = arena;
    self->event_ids = count ? (rst_str_t *) arena : NULL;
    self->count = count;
    for (size_t i = 0; i < count; i++) {
        const msgpack_object *id = &ids->via.array.ptr[i];
        self->event_ids[i] = (rst_str_t){id->via.str.ptr ? id->via.str.ptr : "", id->via.str.size};
    }
    if (s_check_outcome (self, why, sizeof why))
        goto bad;
    char *at = arena + head;
    s_str_move (&self->pixel_id, &at);
    for (size_t i = 0; i < count; i++)
        s_str_move (&self->event_ids[i], &at);
    msgpack_unpacked_destroy (&up);
    return self;
bad:
    s_err (err, errlen, "outcome: %s", why);
fail:
    msgpack_unpacked_destroy (&up);
    if (self)
        free (self->arena);
    free (self);
    return NULL;
}

void
rst_outcome_destroy (rst_outcome_t **self_p)
{
    assert (self_p);
    rst_outcome_t *self = *self_p;
    if (!self)
        return;
    free (self->arena);
    free (self);
    *self_p = NULL;
}
