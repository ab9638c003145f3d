/*  rst_pipeline_test — the pipeline codec: enriched, batch, outcome.

    The first test is the tutorial: build an enriched click, pack it, decode
    it, compare. Then one test per malformed case, for each kind: what a
    broken or hostile peer could send is refused with a reason, the decoder
    knows where the next enriched event starts, and every pack refuses what
    its decoder refuses (so a bad message is caught where it is built).

    `rst_pipeline_test --write-seeds DIR` writes the fuzz seeds of
    tests/fuzz/corpus/fuzz_pipeline/ instead of running the tests.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rst_meta.h"
#include "rst_pipeline.h"

static const char *s_capi
    = "{\"event_name\":\"PageView\",\"event_time\":1767225600,\"event_id\":\"ev-1\","
      "\"action_source\":\"website\",\"event_source_url\":\"https://go.example.com/go/x\","
      "\"user_data\":{\"client_ip_address\":\"2804:14c::1\",\"client_user_agent\":\"Mozilla/5.0\","
      "\"fbc\":\"fb.1.1767225600123.IwAR2F4\",\"external_id\":"
      "[\"0f1e0b5d5e0c8a7e4f7ab0c3f1b6f8e2f6a1a7c0b9f4c4a3d2e1f0a9b8c7d6e5\"]}}";

//  An enriched click as the enricher builds it (strings borrowed).
static void
s_sample (rst_enriched_t *e)
{
    memset (e, 0, sizeof *e);
    e->event_id = rst_str ("ev-1");
    e->src = rst_str ("front.0");
    e->seq = 42;
    e->type = rst_str ("click");
    e->event_name = rst_str ("PageView");
    e->time_ms = 1767225600123;
    e->owner_id = 1;
    e->pool_id = 7;
    e->bot_id = 3;
    e->pixel_id = rst_str ("123456789012345");
    e->utm_source = rst_str ("fb");
    e->utm_campaign = rst_str ("black friday");
    e->capi = rst_str (s_capi);
}

static int
s_str_eq (rst_str_t a, const char *b)
{
    return a.ptr && a.len == strlen (b) && memcmp (a.ptr, b, a.len) == 0 && a.ptr[a.len] == 0;
}

static int
s_pack_enriched (const rst_enriched_t *e, msgpack_sbuffer *sb)
{
    msgpack_sbuffer_clear (sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, sb, msgpack_sbuffer_write);
    return rst_enriched_pack (e, &pk);
}

//  Re-packs the map in BUF with key KEY's value replaced by what FN packs
//  (FN NULL: the key is left out); EXTRA_KEY (if any) is added with EXTRA_FN's
//  value. Lets a test write maps the packer would refuse to write.
typedef void (*s_value_fn) (msgpack_packer *pk);

static void
s_repack (const char *buf, size_t len, const char *key, s_value_fn fn, const char *extra_key,
          s_value_fn extra_fn, msgpack_sbuffer *out)
{
    msgpack_unpacked up;
    msgpack_unpacked_init (&up);
    size_t off = 0;
    assert_int_equal (msgpack_unpack_next (&up, buf, len, &off), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal (up.data.type, MSGPACK_OBJECT_MAP);
    const msgpack_object_map *map = &up.data.via.map;
    msgpack_sbuffer_clear (out);
    msgpack_packer pk;
    msgpack_packer_init (&pk, out, msgpack_sbuffer_write);
    uint32_t n = 0;
    for (uint32_t i = 0; i < map->size; i++) {
        int is_key = key && map->ptr[i].key.via.str.size == strlen (key)
                     && !memcmp (map->ptr[i].key.via.str.ptr, key, strlen (key));
        n += !is_key || fn;
    }
    msgpack_pack_map (&pk, n + (extra_key ? 1 : 0));
    for (uint32_t i = 0; i < map->size; i++) {
        int is_key = key && map->ptr[i].key.via.str.size == strlen (key)
                     && !memcmp (map->ptr[i].key.via.str.ptr, key, strlen (key));
        if (is_key && !fn)
            continue;
        msgpack_pack_object (&pk, map->ptr[i].key);
        if (is_key)
            fn (&pk);
        else
            msgpack_pack_object (&pk, map->ptr[i].val);
    }
    if (extra_key) {
        msgpack_pack_str_with_body (&pk, extra_key, strlen (extra_key));
        extra_fn (&pk);
    }
    msgpack_unpacked_destroy (&up);
}

static void s_v_str_float (msgpack_packer *pk) { msgpack_pack_double (pk, 1.5); }
static void s_v_nil (msgpack_packer *pk) { msgpack_pack_nil (pk); }
static void s_v_two (msgpack_packer *pk) { msgpack_pack_uint32 (pk, 2); }
static void s_v_zero (msgpack_packer *pk) { msgpack_pack_uint32 (pk, 0); }
static void s_v_neg (msgpack_packer *pk) { msgpack_pack_int64 (pk, -5); }
static void s_v_int1 (msgpack_packer *pk) { msgpack_pack_uint32 (pk, 1); }
static void s_v_batch_kind (msgpack_packer *pk) { msgpack_pack_str_with_body (pk, "batch", 5); }
static void s_v_future (msgpack_packer *pk)
{
    msgpack_pack_array (pk, 2);
    msgpack_pack_str_with_body (pk, "later", 5);
    msgpack_pack_map (pk, 0);
}
static void s_v_bad_json (msgpack_packer *pk)
{
    msgpack_pack_str_with_body (pk, "{\"a\":1,}", 8);
}
static void s_v_long_id (msgpack_packer *pk)
{
    char id[65];
    memset (id, 'x', sizeof id);
    msgpack_pack_str_with_body (pk, id, sizeof id);
}

//  Expects BUF to be refused with a reason that contains WHAT.
static void
s_expect_refused (const char *buf, size_t len, const char *what)
{
    size_t off = 0;
    char err[256] = "";
    rst_enriched_t *e = rst_enriched_decode (buf, len, &off, err, sizeof err);
    if (e)
        fail_msg ("decoded a map that should be refused (%s)", what);
    if (!strstr (err, what))
        fail_msg ("reason \"%s\" does not mention \"%s\"", err, what);
    assert_int_equal (off, len);
}

//  --------------------------------------------------------------------------

static void
test_enriched_round_trip (void **state)
{
    (void) state;
    //  1. The enricher fills an rst_enriched_t with views of its own strings.
    rst_enriched_t in;
    s_sample (&in);
    //  2. Packs it: one msgpack map (several may share a ZeroMQ message).
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    assert_int_equal (s_pack_enriched (&in, &sb), 0);
    assert_true (sb.size < RST_PIPELINE_ENRICHED_MAX_BYTES);
    //  3. The limiter decodes it; the offset moves past the map.
    size_t off = 0;
    char err[256];
    rst_enriched_t *out = rst_enriched_decode (sb.data, sb.size, &off, err, sizeof err);
    assert_non_null (out);
    assert_int_equal (off, sb.size);
    //  4. Every field came through; strings are NUL-terminated and owned.
    assert_true (s_str_eq (out->event_id, "ev-1"));
    assert_true (s_str_eq (out->src, "front.0"));
    assert_int_equal (out->seq, 42);
    assert_true (s_str_eq (out->type, "click"));
    assert_true (s_str_eq (out->event_name, "PageView"));
    assert_int_equal (out->time_ms, 1767225600123);
    assert_int_equal (out->owner_id, 1);
    assert_int_equal (out->pool_id, 7);
    assert_int_equal (out->bot_id, 3);
    assert_true (s_str_eq (out->pixel_id, "123456789012345"));
    assert_int_equal (out->automated, 0);
    assert_true (s_str_eq (out->automated_reason, ""));
    assert_int_equal (out->priority, 0);
    assert_int_equal (out->value_cents, 0);
    assert_true (s_str_eq (out->utm_source, "fb"));
    assert_true (s_str_eq (out->utm_campaign, "black friday"));
    assert_true (s_str_eq (out->capi, s_capi));
    assert_ptr_not_equal (out->capi.ptr, s_capi);
    assert_non_null (out->arena);
    rst_enriched_destroy (&out);
    assert_null (out);
    rst_enriched_destroy (&out);    //  safe to repeat
    msgpack_sbuffer_destroy (&sb);
}

static void
test_enriched_automated_and_priority (void **state)
{
    (void) state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    rst_enriched_t e;
    s_sample (&e);
    //  Automated traffic needs a reason and may leave out the Meta object.
    e.automated = 1;
    assert_int_equal (s_pack_enriched (&e, &sb), -1);
    e.automated_reason = rst_str ("crawler-ua");
    e.capi = rst_str (NULL);
    assert_int_equal (s_pack_enriched (&e, &sb), 0);
    size_t off = 0;
    char err[256];
    rst_enriched_t *out = rst_enriched_decode (sb.data, sb.size, &off, err, sizeof err);
    assert_non_null (out);
    assert_int_equal (out->automated, 1);
    assert_true (s_str_eq (out->automated_reason, "crawler-ua"));
    assert_true (s_str_eq (out->capi, ""));
    rst_enriched_destroy (&out);
    //  A reason on a human event, or no Meta object on a human event: refused.
    s_sample (&e);
    e.automated_reason = rst_str ("crawler-ua");
    assert_int_equal (s_pack_enriched (&e, &sb), -1);
    s_sample (&e);
    e.capi = rst_str ("");
    assert_int_equal (s_pack_enriched (&e, &sb), -1);
    //  Purchase: priority lane, value in centavos.
    s_sample (&e);
    e.priority = 1;
    e.value_cents = 9790;
    e.event_name = rst_str ("Purchase");
    e.type = rst_str ("payment");
    assert_int_equal (s_pack_enriched (&e, &sb), 0);
    off = 0;
    out = rst_enriched_decode (sb.data, sb.size, &off, err, sizeof err);
    assert_non_null (out);
    assert_int_equal (out->priority, 1);
    assert_int_equal (out->value_cents, 9790);
    rst_enriched_destroy (&out);
    e.value_cents = -1;
    assert_int_equal (s_pack_enriched (&e, &sb), -1);
    e.value_cents = 0;
    e.priority = 2;
    assert_int_equal (s_pack_enriched (&e, &sb), -1);
    msgpack_sbuffer_destroy (&sb);
}

static void
test_enriched_pack_refuses_bad_fields (void **state)
{
    (void) state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    rst_enriched_t e;
    char longid[RST_EVENT_ID_MAX + 2];
    memset (longid, 'a', sizeof longid - 1);
    longid[sizeof longid - 1] = 0;
    char dim[RST_PIPELINE_DIM_MAX + 2];
    memset (dim, 'u', sizeof dim - 1);
    dim[sizeof dim - 1] = 0;

    s_sample (&e); e.event_id = rst_str (longid);
    assert_int_equal (s_pack_enriched (&e, &sb), -1);
    s_sample (&e); e.event_id = rst_str ("has space");
    assert_int_equal (s_pack_enriched (&e, &sb), -1);
    s_sample (&e); e.src = rst_str (NULL);
    assert_int_equal (s_pack_enriched (&e, &sb), -1);
    s_sample (&e); e.seq = 0;
    assert_int_equal (s_pack_enriched (&e, &sb), -1);
    s_sample (&e); e.type = rst_str ("cl.ick");
    assert_int_equal (s_pack_enriched (&e, &sb), -1);
    s_sample (&e); e.time_ms = 0;
    assert_int_equal (s_pack_enriched (&e, &sb), -1);
    s_sample (&e); e.time_ms = RST_EVENT_TIME_MS_MAX + 1;
    assert_int_equal (s_pack_enriched (&e, &sb), -1);
    s_sample (&e); e.owner_id = 0;
    assert_int_equal (s_pack_enriched (&e, &sb), -1);
    s_sample (&e); e.pool_id = -1;
    assert_int_equal (s_pack_enriched (&e, &sb), -1);
    s_sample (&e); e.pixel_id = rst_str ("");
    assert_int_equal (s_pack_enriched (&e, &sb), -1);
    s_sample (&e); e.utm_campaign = rst_str (dim);
    assert_int_equal (s_pack_enriched (&e, &sb), -1);
    dim[RST_PIPELINE_DIM_MAX] = 0;      //  exactly the limit: fine
    s_sample (&e); e.utm_campaign = rst_str (dim);
    assert_int_equal (s_pack_enriched (&e, &sb), 0);
    s_sample (&e); e.capi = rst_str ("{\"a\":1");
    assert_int_equal (s_pack_enriched (&e, &sb), -1);
    msgpack_sbuffer_destroy (&sb);
}

static void
test_capi_json_validation (void **state)
{
    (void) state;
    const char *good[] = {
        "{}", " { } ", "{\"a\":[1,-2.5e+3,0.1,true,false,null,{\"b\":\"\\u00e9\\n\"}]}",
        "{\"name\":\"Curso B\xc3\xa1sico\"}", "{\"x\":\"\xf0\x9f\x98\x80\"}",
        "{\"a\":\"\\\"\\\\\\/\\b\\f\\r\\t\"}", "{\"a\":0}", "{\"a\":-0.0E5}",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (!rst_pipeline_json_is_object (good[i], strlen (good[i])))
            fail_msg ("refused valid JSON %s", good[i]);
    const char *bad[] = {
        "",          "[]",           "\"s\"",          "{",            "{\"a\"}",
        "{\"a\":}",  "{\"a\":1,}",   "{a:1}",          "{\"a\":01}",   "{\"a\":1.}",
        "{\"a\":.5}", "{\"a\":1e}",  "{\"a\":tru}",    "{} {}",        "{\"a\":\"\x01\"}",
        "{\"a\":\"\\x\"}", "{\"a\":\"\\u12G4\"}", "{\"a\":\"\xff\"}", "{\"a\":\"\xc0\xaf\"}",
        "{\"a\":\"\xed\xa0\x80\"}", "{\"a\":\"\xe2\x82\"}", "{\"a\":[1 2]}", "{\"a\":1}x",
        "{\"a\":-}", "{\"a\":\"unterminated}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (rst_pipeline_json_is_object (bad[i], strlen (bad[i])))
            fail_msg ("accepted invalid JSON #%zu %s", i, bad[i]);
    //  An embedded NUL is not JSON.
    assert_false (rst_pipeline_json_is_object ("{\"a\":\"\0\"}", 9));
    //  Nesting: 32 levels pass, 33 do not (no unbounded recursion on input).
    char deep[240];
    size_t n = 0;
    for (int i = 0; i < 31; i++)
        n += (size_t) sprintf (deep + n, "{\"a\":");
    n += (size_t) sprintf (deep + n, "{}");
    for (int i = 0; i < 31; i++)
        deep[n++] = '}';
    assert_true (rst_pipeline_json_is_object (deep, n));
    char deeper[260] = "{\"a\":";
    memcpy (deeper + 5, deep, n);
    deeper[5 + n] = '}';
    assert_false (rst_pipeline_json_is_object (deeper, n + 6));
    assert_false (rst_pipeline_json_is_object (NULL, 0));
}

static void
test_enriched_malformed (void **state)
{
    (void) state;
    msgpack_sbuffer sb, bad;
    msgpack_sbuffer_init (&sb);
    msgpack_sbuffer_init (&bad);
    rst_enriched_t e;
    s_sample (&e);
    assert_int_equal (s_pack_enriched (&e, &sb), 0);

    //  Truncated at every length: refused, offset at the end (no resync).
    for (size_t cut = 0; cut < sb.size; cut++) {
        size_t off = 0;
        char err[256] = "";
        rst_enriched_t *out = rst_enriched_decode (sb.data, cut, &off, err, sizeof err);
        assert_null (out);
        assert_int_equal (off, cut);
        assert_true (err[0] != 0);
    }
    //  Not a map.
    s_expect_refused ("\x93\x01\x02\x03", 4, "not a map");
    //  0xc1 is no msgpack type.
    s_expect_refused ("\xc1", 1, "malformed");
    //  A huge declared array in a few bytes: truncated, no allocation.
    s_expect_refused ("\xdd\xff\xff\xff\xff", 5, "truncated");

    struct {
        const char *key;
        s_value_fn fn;
        const char *what;
    } cases[] = {
        {"v", s_v_two, "unsupported version"},
        {"v", NULL, "missing version"},
        {"kind", s_v_batch_kind, "kind"},
        {"kind", NULL, "missing \"kind\""},
        {"event_id", s_v_nil, "event_id: missing"},
        {"event_id", NULL, "missing required key event_id"},
        {"event_id", s_v_long_id, "event_id: too long"},
        {"seq", s_v_zero, "seq: out of range"},
        {"seq", s_v_neg, "seq: wrong type"},
        {"time_ms", s_v_str_float, "time_ms: wrong type float"},
        {"owner_id", s_v_zero, "owner_id: out of range"},
        {"pixel_id", s_v_int1, "pixel_id: wrong type int"},
        {"automated", s_v_int1, "automated: wrong type int (want bool)"},
        {"capi", s_v_bad_json, "capi: not one JSON object"},
        {"capi", NULL, "capi: missing"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        s_repack (sb.data, sb.size, cases[i].key, cases[i].fn, NULL, NULL, &bad);
        s_expect_refused (bad.data, bad.size, cases[i].what);
    }
    //  A known key twice.
    s_repack (sb.data, sb.size, NULL, NULL, "seq", s_v_int1, &bad);
    s_expect_refused (bad.data, bad.size, "duplicate key seq");
    s_repack (sb.data, sb.size, NULL, NULL, "v", s_v_int1, &bad);
    s_expect_refused (bad.data, bad.size, "duplicate key v");

    //  An unknown key is ignored (a newer writer's field).
    s_repack (sb.data, sb.size, NULL, NULL, "added_later", s_v_future, &bad);
    size_t off = 0;
    char err[256];
    rst_enriched_t *out = rst_enriched_decode (bad.data, bad.size, &off, err, sizeof err);
    assert_non_null (out);
    rst_enriched_destroy (&out);
    //  Optional keys may be left out or nil.
    s_repack (sb.data, sb.size, "utm_source", NULL, NULL, NULL, &bad);
    s_repack (bad.data, bad.size, "pool_id", NULL, NULL, NULL, &sb);
    s_repack (sb.data, sb.size, "automated_reason", s_v_nil, NULL, NULL, &bad);
    off = 0;
    out = rst_enriched_decode (bad.data, bad.size, &off, err, sizeof err);
    assert_non_null (out);
    assert_true (s_str_eq (out->utm_source, ""));
    assert_true (s_str_eq (out->automated_reason, ""));
    assert_int_equal (out->pool_id, 0);
    rst_enriched_destroy (&out);
    msgpack_sbuffer_destroy (&sb);
    msgpack_sbuffer_destroy (&bad);
}

static void
test_enriched_stream_with_bad_one (void **state)
{
    (void) state;
    msgpack_sbuffer sb, tmp;
    msgpack_sbuffer_init (&sb);
    msgpack_sbuffer_init (&tmp);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    rst_enriched_t e;
    s_sample (&e);
    assert_int_equal (rst_enriched_pack (&e, &pk), 0);
    //  A well-formed map that is not a valid event, in the middle.
    assert_int_equal (s_pack_enriched (&e, &tmp), 0);
    msgpack_sbuffer bad;
    msgpack_sbuffer_init (&bad);
    s_repack (tmp.data, tmp.size, "v", s_v_two, NULL, NULL, &bad);
    msgpack_sbuffer_write (&sb, bad.data, bad.size);
    e.seq = 43;
    e.event_id = rst_str ("ev-2");
    assert_int_equal (rst_enriched_pack (&e, &pk), 0);

    size_t off = 0, good = 0, refused = 0;
    while (off < sb.size) {
        char err[256];
        size_t before = off;
        rst_enriched_t *out = rst_enriched_decode (sb.data, sb.size, &off, err, sizeof err);
        assert_true (off > before);
        if (out) {
            good++;
            assert_int_equal (out->seq, good == 1 ? 42 : 43);
            rst_enriched_destroy (&out);
        }
        else
            refused++;
    }
    assert_int_equal (good, 2);
    assert_int_equal (refused, 1);
    msgpack_sbuffer_destroy (&sb);
    msgpack_sbuffer_destroy (&tmp);
    msgpack_sbuffer_destroy (&bad);
}

//  The Meta object of batch items (the fuzz seeds use a short one: the
//  replay driver keeps 512 bytes of a seed).
static const char *s_batch_capi = NULL;

//  Packs a batch of COUNT items for pixel "111" into SB. Returns pack's result.
static int
s_pack_batch (size_t count, int priority, msgpack_sbuffer *sb)
{
    if (!s_batch_capi)
        s_batch_capi = s_capi;
    rst_batch_item_t *items = calloc (count ? count : 1, sizeof *items);
    char (*ids)[32] = calloc (count ? count : 1, 32);
    for (size_t i = 0; i < count; i++) {
        snprintf (ids[i], 32, "ev-%zu", i);
        items[i].event_id = rst_str (ids[i]);
        items[i].src = rst_str (i % 2 ? "front.1" : "front.0");
        items[i].seq = i + 1;
        items[i].time_ms = 1767225600000 + (int64_t) i;
        items[i].capi = rst_str (s_batch_capi);
    }
    rst_batch_t b = {.owner_id = 9,
                     .pixel_id = rst_str ("111"),
                     .priority = priority,
                     .created_ms = 1767225601000,
                     .count = count,
                     .items = items};
    msgpack_sbuffer_clear (sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, sb, msgpack_sbuffer_write);
    int rc = rst_batch_pack (&b, &pk);
    free (items);
    free (ids);
    return rc;
}

static void
test_batch_round_trip_and_limits (void **state)
{
    (void) state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    char err[256];
    //  Exactly 1,000 events: Meta's limit, accepted both ways.
    assert_int_equal (s_pack_batch (RST_META_MAX_EVENTS, 0, &sb), 0);
    rst_batch_t *b = rst_batch_decode (sb.data, sb.size, err, sizeof err);
    assert_non_null (b);
    assert_int_equal (b->count, RST_META_MAX_EVENTS);
    assert_int_equal (b->owner_id, 9);
    assert_true (s_str_eq (b->pixel_id, "111"));
    assert_int_equal (b->priority, 0);
    assert_int_equal (b->created_ms, 1767225601000);
    assert_true (s_str_eq (b->items[999].event_id, "ev-999"));
    assert_true (s_str_eq (b->items[999].src, "front.1"));
    assert_int_equal (b->items[999].seq, 1000);
    assert_int_equal (b->items[999].time_ms, 1767225600999);
    assert_true (s_str_eq (b->items[0].capi, s_capi));
    rst_batch_destroy (&b);
    assert_null (b);
    //  1,001 and 0: refused by pack.
    assert_int_equal (s_pack_batch (RST_META_MAX_EVENTS + 1, 0, &sb), -1);
    assert_int_equal (sb.size, 0);
    assert_int_equal (s_pack_batch (0, 0, &sb), -1);
    //  Priority batch of one.
    assert_int_equal (s_pack_batch (1, 1, &sb), 0);
    b = rst_batch_decode (sb.data, sb.size, err, sizeof err);
    assert_non_null (b);
    assert_int_equal (b->priority, 1);
    assert_int_equal (b->count, 1);
    rst_batch_destroy (&b);
    //  Trailing bytes, truncation, the wrong kind: refused.
    msgpack_sbuffer_write (&sb, "\x01", 1);
    assert_null (rst_batch_decode (sb.data, sb.size, err, sizeof err));
    assert_non_null (strstr (err, "after the map"));
    for (size_t cut = 0; cut < sb.size - 1; cut++)
        assert_null (rst_batch_decode (sb.data, cut, err, sizeof err));
    rst_enriched_t e;
    s_sample (&e);
    msgpack_sbuffer enr;
    msgpack_sbuffer_init (&enr);
    assert_int_equal (s_pack_enriched (&e, &enr), 0);
    assert_null (rst_batch_decode (enr.data, enr.size, err, sizeof err));
    assert_non_null (strstr (err, "kind"));
    msgpack_sbuffer_destroy (&enr);
    msgpack_sbuffer_destroy (&sb);
}

static void s_v_items_empty (msgpack_packer *pk) { msgpack_pack_array (pk, 0); }
static void s_v_items_bad_item (msgpack_packer *pk)
{
    msgpack_pack_array (pk, 1);
    msgpack_pack_map (pk, 4);
    msgpack_pack_str_with_body (pk, "event_id", 8);
    msgpack_pack_str_with_body (pk, "e", 1);
    msgpack_pack_str_with_body (pk, "src", 3);
    msgpack_pack_str_with_body (pk, "front.0", 7);
    msgpack_pack_str_with_body (pk, "seq", 3);
    msgpack_pack_uint32 (pk, 1);
    msgpack_pack_str_with_body (pk, "time_ms", 7);
    msgpack_pack_uint32 (pk, 1);
}
static void s_v_items_map (msgpack_packer *pk) { msgpack_pack_map (pk, 0); }

static void
test_batch_malformed (void **state)
{
    (void) state;
    msgpack_sbuffer sb, bad;
    msgpack_sbuffer_init (&sb);
    msgpack_sbuffer_init (&bad);
    assert_int_equal (s_pack_batch (3, 0, &sb), 0);
    struct {
        const char *key;
        s_value_fn fn;
        const char *what;
    } cases[] = {
        {"items", s_v_items_empty, "items: 0 events"},
        {"items", s_v_items_bad_item, "items[0]: missing required key capi"},
        {"items", s_v_items_map, "items: wrong type map"},
        {"items", NULL, "missing required key items"},
        {"owner_id", s_v_zero, "owner_id: out of range"},
        {"pixel_id", s_v_nil, "pixel_id: missing"},
        {"v", s_v_two, "unsupported version"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        s_repack (sb.data, sb.size, cases[i].key, cases[i].fn, NULL, NULL, &bad);
        char err[256] = "";
        rst_batch_t *b = rst_batch_decode (bad.data, bad.size, err, sizeof err);
        if (b)
            fail_msg ("decoded a batch that should be refused (%s)", cases[i].what);
        if (!strstr (err, cases[i].what))
            fail_msg ("reason \"%s\" does not mention \"%s\"", err, cases[i].what);
    }
    msgpack_sbuffer_destroy (&sb);
    msgpack_sbuffer_destroy (&bad);
}

static void
test_outcome_round_trip_and_limits (void **state)
{
    (void) state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    char err[256];
    rst_str_t ids[] = {rst_str ("ev-1"), rst_str ("ev-2")};
    rst_outcome_t o = {.kind = RST_OUTCOME_ACCEPTED,
                       .pixel_id = rst_str ("111"),
                       .latency_ms = 850,
                       .count = 2,
                       .event_ids = ids};
    assert_int_equal (rst_outcome_pack (&o, &pk), 0);
    rst_outcome_t *out = rst_outcome_decode (sb.data, sb.size, err, sizeof err);
    assert_non_null (out);
    assert_int_equal (out->kind, RST_OUTCOME_ACCEPTED);
    assert_true (s_str_eq (out->pixel_id, "111"));
    assert_int_equal (out->latency_ms, 850);
    assert_int_equal (out->count, 2);
    assert_true (s_str_eq (out->event_ids[1], "ev-2"));
    rst_outcome_destroy (&out);
    assert_null (out);

    //  Throttled, no ids, with Meta's wait hint.
    msgpack_sbuffer_clear (&sb);
    rst_outcome_t t = {.kind = RST_OUTCOME_THROTTLED, .pixel_id = rst_str ("111"),
                       .wait_ms = 60000};
    assert_int_equal (rst_outcome_pack (&t, &pk), 0);
    out = rst_outcome_decode (sb.data, sb.size, err, sizeof err);
    assert_non_null (out);
    assert_int_equal (out->kind, RST_OUTCOME_THROTTLED);
    assert_int_equal (out->wait_ms, 60000);
    assert_int_equal (out->count, 0);
    rst_outcome_destroy (&out);
    assert_string_equal (rst_outcome_kind_name (RST_OUTCOME_DEAD), "dead");

    //  What pack refuses.
    msgpack_sbuffer_clear (&sb);
    t.kind = 7;
    assert_int_equal (rst_outcome_pack (&t, &pk), -1);
    t.kind = RST_OUTCOME_THROTTLED;
    t.wait_ms = -1;
    assert_int_equal (rst_outcome_pack (&t, &pk), -1);
    t.wait_ms = RST_PIPELINE_WAIT_MS_MAX + 1;
    assert_int_equal (rst_outcome_pack (&t, &pk), -1);
    o.count = RST_PIPELINE_MAX_IDS + 1;
    assert_int_equal (rst_outcome_pack (&o, &pk), -1);
    o.count = 2;
    ids[1] = rst_str ("");
    assert_int_equal (rst_outcome_pack (&o, &pk), -1);
    assert_int_equal (sb.size, 0);

    //  What decode refuses.
    o.count = 1;
    assert_int_equal (rst_outcome_pack (&o, &pk), 0);
    msgpack_sbuffer bad;
    msgpack_sbuffer_init (&bad);
    s_repack (sb.data, sb.size, "outcome", s_v_batch_kind, NULL, NULL, &bad);
    assert_null (rst_outcome_decode (bad.data, bad.size, err, sizeof err));
    assert_non_null (strstr (err, "outcome: unknown"));
    s_repack (sb.data, sb.size, "event_ids", s_v_items_map, NULL, NULL, &bad);
    assert_null (rst_outcome_decode (bad.data, bad.size, err, sizeof err));
    assert_non_null (strstr (err, "event_ids: wrong type"));
    s_repack (sb.data, sb.size, "wait_ms", s_v_neg, NULL, NULL, &bad);
    assert_null (rst_outcome_decode (bad.data, bad.size, err, sizeof err));
    assert_non_null (strstr (err, "wait_ms: out of range"));
    assert_null (rst_outcome_decode (sb.data, sb.size - 1, err, sizeof err));
    msgpack_sbuffer_destroy (&bad);
    msgpack_sbuffer_destroy (&sb);
}

//  --------------------------------------------------------------------------
//  Fuzz seeds

static int
s_write_file (const char *dir, const char *name, const char *data, size_t len)
{
    char path[4096];
    snprintf (path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen (path, "wb");
    if (!f)
        return -1;
    int rc = fwrite (data, 1, len, f) == len ? 0 : -1;
    return fclose (f) || rc ? -1 : 0;
}

static int
s_write_seeds (const char *dir)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    int rc = 0;
    const char *short_capi = "{\"event_name\":\"PageView\",\"n\":[1,-2.5e3,true,null],"
                             "\"s\":\"\\u00e9\"}";
    rst_enriched_t e;
    s_sample (&e);
    e.capi = rst_str (short_capi);
    s_batch_capi = short_capi;
    rst_enriched_pack (&e, &pk);
    rc |= s_write_file (dir, "enriched", sb.data, sb.size);
    e.automated = 1;
    e.automated_reason = rst_str ("crawler-ua");
    e.capi = rst_str (NULL);
    e.seq = 43;
    rst_enriched_pack (&e, &pk);
    rc |= s_write_file (dir, "enriched_two", sb.data, sb.size);
    msgpack_sbuffer_clear (&sb);
    s_pack_batch (2, 1, &sb);
    rc |= s_write_file (dir, "batch", sb.data, sb.size);
    msgpack_sbuffer_clear (&sb);
    rst_str_t ids[] = {rst_str ("ev-1"), rst_str ("ev-2")};
    rst_outcome_t o = {.kind = RST_OUTCOME_DEAD, .pixel_id = rst_str ("111"), .count = 2,
                       .event_ids = ids};
    rst_outcome_pack (&o, &pk);
    rc |= s_write_file (dir, "outcome_dead", sb.data, sb.size);
    msgpack_sbuffer_clear (&sb);
    rst_outcome_t t = {.kind = RST_OUTCOME_THROTTLED, .pixel_id = rst_str ("111"),
                       .wait_ms = 1500};
    rst_outcome_pack (&t, &pk);
    rc |= s_write_file (dir, "outcome_throttled", sb.data, sb.size);
    msgpack_sbuffer_destroy (&sb);
    return rc ? 1 : 0;
}

int
main (int argc, char **argv)
{
    if (argc == 3 && !strcmp (argv[1], "--write-seeds"))
        return s_write_seeds (argv[2]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_enriched_round_trip),
        cmocka_unit_test (test_enriched_automated_and_priority),
        cmocka_unit_test (test_enriched_pack_refuses_bad_fields),
        cmocka_unit_test (test_capi_json_validation),
        cmocka_unit_test (test_enriched_malformed),
        cmocka_unit_test (test_enriched_stream_with_bad_one),
        cmocka_unit_test (test_batch_round_trip_and_limits),
        cmocka_unit_test (test_batch_malformed),
        cmocka_unit_test (test_outcome_round_trip_and_limits),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
