/*  rst_event_test — the event codec: round trip, then one test per malformed case.

    The first test is the tutorial: build a click, pack it, decode it, compare.
    The others feed the decoder what a broken or hostile peer could send and
    check that it refuses, says why, and knows where the next event starts.

    `rst_event_test --write-seeds DIR` writes the fuzz seeds of
    tests/fuzz/corpus/fuzz_event/ instead of running the tests.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rst_event.h"

//  A click as the front builds it (strings borrowed from string literals).
static void
s_sample_click (rst_event_t *ev)
{
    rst_event_init (ev);
    ev->type = RST_EVENT_CLICK;
    ev->event_id = rst_str ("ev-0001");
    ev->src = rst_str ("front.0");
    ev->seq = 42;
    ev->time_ms = 1764386400123;
    ev->owner_id = 1;
    ev->pool_id = 7;
    ev->bot_id = 3;
    ev->pixel_id = rst_str ("123456789012345");
    ev->click_id = rst_str ("Ab3_x-9QzLmN0pRsTuVwXy12");
    ev->pool_slug = rst_str ("promo");
    ev->bot_username = rst_str ("promo_bot");
    ev->ip = rst_str ("203.0.113.9");
    ev->user_agent = rst_str ("Mozilla/5.0 (iPhone)");
    ev->url = rst_str ("https://go.example.com/go/promo?utm_source=fb&fbclid=IwAR1");
    ev->fbclid = rst_str ("IwAR1");
    ev->fbc = rst_str ("fb.1.1764386400123.IwAR1");
    ev->utm_count = 2;
    ev->utm[0].key = rst_str ("utm_source");
    ev->utm[0].value = rst_str ("fb");
    ev->utm[1].key = rst_str ("utm_campaign");
    ev->utm[1].value = rst_str ("black friday");
}

static int
s_str_eq (rst_str_t a, rst_str_t b)
{
    if ((a.ptr == NULL) != (b.ptr == NULL))
        return 0;
    return a.len == b.len && (a.len == 0 || memcmp (a.ptr, b.ptr, a.len) == 0);
}

//  Decodes BUF[0..LEN) expecting failure; checks ERR mentions WHAT. Returns the offset.
static size_t
s_expect_reject (const char *buf, size_t len, const char *what)
{
    size_t off = 0;
    char err[160] = "";
    rst_event_t *ev = rst_event_decode (buf, len, &off, err, sizeof err);
    if (ev) {
        rst_event_destroy (&ev);
        fail_msg ("decoder accepted input that should fail with '%s'", what);
    }
    if (!strstr (err, what))
        fail_msg ("error '%s' does not mention '%s'", err, what);
    return off;
}

//  --------------------------------------------------------------------------
//  Raw map writer: the sample click key by key, with one key left out,
//  replaced, or one extra key added, to make each malformed case.

typedef void (s_value_fn) (msgpack_packer *pk);

typedef struct {
    const char *omit;           //  key to leave out
    const char *replace;        //  key whose value REPLACE_FN writes
    s_value_fn *replace_fn;
    const char *extra;          //  key to add, value written by EXTRA_FN
    s_value_fn *extra_fn;
} s_raw_t;

static void
s_key (msgpack_packer *pk, const char *k)
{
    msgpack_pack_str_with_body (pk, k, strlen (k));
}

static void s_v_str_x (msgpack_packer *pk) { s_key (pk, "x"); }
static void s_v_int_5 (msgpack_packer *pk) { msgpack_pack_int (pk, 5); }
static void s_v_int_2 (msgpack_packer *pk) { msgpack_pack_int (pk, 2); }
static void s_v_neg (msgpack_packer *pk) { msgpack_pack_int (pk, -4); }
static void s_v_zero (msgpack_packer *pk) { msgpack_pack_int (pk, 0); }
static void s_v_nil (msgpack_packer *pk) { msgpack_pack_nil (pk); }
static void s_v_true (msgpack_packer *pk) { msgpack_pack_true (pk); }
static void s_v_float (msgpack_packer *pk) { msgpack_pack_double (pk, 1.5); }
static void s_v_bin (msgpack_packer *pk) { msgpack_pack_bin_with_body (pk, "ab", 2); }
static void s_v_array (msgpack_packer *pk) { msgpack_pack_array (pk, 1); msgpack_pack_int (pk, 1); }
static void s_v_u64_max (msgpack_packer *pk) { msgpack_pack_uint64 (pk, UINT64_MAX); }
static void s_v_future (msgpack_packer *pk) { s_key (pk, "purchase_v9"); }
static void s_v_id65 (msgpack_packer *pk)
{
    char s[66];
    memset (s, 'a', 65);
    s[65] = 0;
    s_key (pk, s);
}
static void s_v_id64 (msgpack_packer *pk)
{
    char s[65];
    memset (s, 'a', 64);
    s[64] = 0;
    s_key (pk, s);
}
static void s_v_id_space (msgpack_packer *pk) { s_key (pk, "abc def"); }
static void s_v_utm17 (msgpack_packer *pk)
{
    msgpack_pack_map (pk, 17);
    for (int i = 0; i < 17; i++) {
        char k[24];
        snprintf (k, sizeof k, "utm_k%d", i);
        s_key (pk, k);
        s_key (pk, "v");
    }
}
static void s_v_utm16 (msgpack_packer *pk)
{
    msgpack_pack_map (pk, 16);
    for (int i = 0; i < 16; i++) {
        char k[24];
        snprintf (k, sizeof k, "utm_k%d", i);
        s_key (pk, k);
        s_key (pk, "v");
    }
}
static void s_v_utm_int (msgpack_packer *pk)
{
    msgpack_pack_map (pk, 1);
    s_key (pk, "utm_source");
    msgpack_pack_int (pk, 3);
}
static void s_v_future_obj (msgpack_packer *pk)
{
    msgpack_pack_map (pk, 1);
    s_key (pk, "deep");
    msgpack_pack_array (pk, 2);
    msgpack_pack_int (pk, 1);
    msgpack_pack_nil (pk);
}

static const char *s_raw_keys[] = {"v",        "type",     "event_id", "src",     "seq",
                                   "time_ms",  "owner_id", "pool_id",  "bot_id",  "pixel_id",
                                   "click_id", "ip",       "ua",       "url",     "utm"};

static void
s_raw_default (msgpack_packer *pk, const char *k)
{
    if (!strcmp (k, "v"))
        msgpack_pack_int (pk, 1);
    else if (!strcmp (k, "type"))
        s_key (pk, "click");
    else if (!strcmp (k, "seq") || !strcmp (k, "owner_id") || !strcmp (k, "pool_id")
             || !strcmp (k, "bot_id"))
        msgpack_pack_int (pk, 9);
    else if (!strcmp (k, "time_ms"))
        msgpack_pack_int64 (pk, 1764386400123);
    else if (!strcmp (k, "pixel_id"))
        s_key (pk, "1234");
    else if (!strcmp (k, "src"))
        s_key (pk, "front.0");
    else if (!strcmp (k, "utm")) {
        msgpack_pack_map (pk, 1);
        s_key (pk, "utm_source");
        s_key (pk, "ig");
    }
    else
        s_key (pk, "value-1");
}

static void
s_pack_raw (msgpack_packer *pk, const s_raw_t *raw)
{
    size_t nkeys = sizeof s_raw_keys / sizeof s_raw_keys[0];
    size_t n = nkeys - (raw->omit ? 1 : 0) + (raw->extra ? 1 : 0);
    msgpack_pack_map (pk, n);
    for (size_t i = 0; i < nkeys; i++) {
        const char *k = s_raw_keys[i];
        if (raw->omit && !strcmp (k, raw->omit))
            continue;
        s_key (pk, k);
        if (raw->replace && !strcmp (k, raw->replace))
            raw->replace_fn (pk);
        else
            s_raw_default (pk, k);
    }
    if (raw->extra) {
        s_key (pk, raw->extra);
        raw->extra_fn (pk);
    }
}

//  Packs RAW and checks the decoder refuses it with WHAT in the reason, and
//  skips exactly the map (the message can go on).
static void
s_raw_rejected (s_raw_t raw, const char *what)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    s_pack_raw (&pk, &raw);
    size_t off = s_expect_reject (sb.data, sb.size, what);
    assert_int_equal (off, sb.size);
    msgpack_sbuffer_destroy (&sb);
}

//  Packs RAW and returns the decoded event (must decode).
static rst_event_t *
s_raw_accepted (s_raw_t raw)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    s_pack_raw (&pk, &raw);
    size_t off = 0;
    char err[160] = "";
    rst_event_t *ev = rst_event_decode (sb.data, sb.size, &off, err, sizeof err);
    if (!ev)
        fail_msg ("decoder refused: %s", err);
    assert_int_equal (off, sb.size);
    msgpack_sbuffer_destroy (&sb);
    return ev;
}

//  --------------------------------------------------------------------------
//  The tutorial: build, pack, decode, compare.

static void
test_click_round_trip (void **state)
{
    (void) state;
    //  1. The front builds a click; strings are views of its own memory.
    rst_event_t click;
    s_sample_click (&click);

    //  2. It packs it into a buffer (one msgpack map) ...
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    assert_int_equal (rst_event_pack (&click, &pk), 0);

    //  3. ... and a downstream node decodes it. OFFSET moves past the map.
    size_t offset = 0;
    char err[128];
    rst_event_t *ev = rst_event_decode (sb.data, sb.size, &offset, err, sizeof err);
    assert_non_null (ev);
    assert_int_equal (offset, sb.size);

    //  4. Every field survived; strings now live in the event's own arena.
    assert_int_equal (ev->version, RST_EVENT_SCHEMA_VERSION);
    assert_int_equal (ev->type, RST_EVENT_CLICK);
    assert_true (s_str_eq (ev->event_id, click.event_id));
    assert_true (s_str_eq (ev->src, click.src));
    assert_int_equal (ev->seq, 42);
    assert_int_equal (ev->time_ms, 1764386400123);
    assert_int_equal (ev->owner_id, 1);
    assert_int_equal (ev->pool_id, 7);
    assert_int_equal (ev->bot_id, 3);
    assert_true (s_str_eq (ev->pixel_id, click.pixel_id));
    assert_true (s_str_eq (ev->click_id, click.click_id));
    assert_true (s_str_eq (ev->pool_slug, click.pool_slug));
    assert_true (s_str_eq (ev->bot_username, click.bot_username));
    assert_true (s_str_eq (ev->ip, click.ip));
    assert_true (s_str_eq (ev->user_agent, click.user_agent));
    assert_true (s_str_eq (ev->url, click.url));
    assert_true (s_str_eq (ev->fbclid, click.fbclid));
    assert_true (s_str_eq (ev->fbc, click.fbc));
    assert_null (ev->referer.ptr);      //  absent stays absent
    assert_null (ev->fbp.ptr);
    assert_int_equal (ev->utm_count, 2);
    assert_true (s_str_eq (ev->utm[1].key, click.utm[1].key));
    assert_true (s_str_eq (ev->utm[1].value, click.utm[1].value));
    assert_non_null (ev->arena);
    assert_string_equal (ev->click_id.ptr, "Ab3_x-9QzLmN0pRsTuVwXy12");  //  NUL-terminated
    assert_true (ev->click_id.ptr != click.click_id.ptr);

    //  5. The event owns its memory; destroy frees it and clears the pointer.
    rst_event_destroy (&ev);
    assert_null (ev);
    rst_event_destroy (&ev);            //  safe to repeat
    msgpack_sbuffer_destroy (&sb);
    assert_string_equal (rst_event_type_name (RST_EVENT_CLICK), "click");
}

static void
test_empty_and_nil_optionals (void **state)
{
    (void) state;
    //  An empty User-Agent is present (ptr non-NULL, len 0), not missing.
    rst_event_t click;
    s_sample_click (&click);
    click.user_agent = rst_str ("");
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    assert_int_equal (rst_event_pack (&click, &pk), 0);
    size_t off = 0;
    rst_event_t *ev = rst_event_decode (sb.data, sb.size, &off, NULL, 0);
    assert_non_null (ev);
    assert_non_null (ev->user_agent.ptr);
    assert_int_equal (ev->user_agent.len, 0);
    rst_event_destroy (&ev);
    msgpack_sbuffer_destroy (&sb);

    //  nil for an optional string means absent; nil for a required one is missing.
    ev = s_raw_accepted ((s_raw_t){.extra = "referer", .extra_fn = s_v_nil});
    assert_null (ev->referer.ptr);
    rst_event_destroy (&ev);
    s_raw_rejected ((s_raw_t){.replace = "ua", .replace_fn = s_v_nil}, "missing required field ua");
}

static void
test_unknown_keys_are_ignored (void **state)
{
    (void) state;
    rst_event_t *ev = s_raw_accepted ((s_raw_t){.extra = "added_in_v1_5", .extra_fn = s_v_future_obj});
    assert_int_equal (ev->seq, 9);
    assert_int_equal (ev->utm_count, 1);
    rst_event_destroy (&ev);
}

static void
test_truncated (void **state)
{
    (void) state;
    rst_event_t click;
    s_sample_click (&click);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    assert_int_equal (rst_event_pack (&click, &pk), 0);
    //  Every proper prefix is truncated, and nothing after it can be trusted.
    for (size_t n = 1; n < sb.size; n++) {
        size_t off = s_expect_reject (sb.data, n, "truncated");
        assert_int_equal (off, n);
    }
    //  Nothing at all.
    size_t off = 0;
    assert_null (rst_event_decode (sb.data, 0, &off, NULL, 0));
    assert_int_equal (off, 0);
    msgpack_sbuffer_destroy (&sb);

    //  A 5-byte array32 header claiming four billion elements must not make
    //  anyone allocate: it is simply truncated.
    const char huge_array[] = {(char) 0xdd, (char) 0xff, (char) 0xff, (char) 0xff, (char) 0xff};
    s_expect_reject (huge_array, sizeof huge_array, "truncated");
    const char huge_map[] = {(char) 0xdf, (char) 0x7f, (char) 0xff, (char) 0xff, (char) 0xff, 0};
    s_expect_reject (huge_map, sizeof huge_map, "truncated");
    const char huge_str[] = {(char) 0xdb, (char) 0xff, (char) 0xff, (char) 0xff, (char) 0xf0, 'a'};
    s_expect_reject (huge_str, sizeof huge_str, "truncated");
    const char never_used[] = {(char) 0xc1};
    s_expect_reject (never_used, sizeof never_used, "malformed");
}

static void
test_not_a_map (void **state)
{
    (void) state;
    //  [1, 2] followed by a valid click: the array is refused, but skipped
    //  exactly, so the click after it is still read.
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array (&pk, 2);
    msgpack_pack_int (&pk, 1);
    msgpack_pack_int (&pk, 2);
    size_t array_end = sb.size;
    rst_event_t click;
    s_sample_click (&click);
    assert_int_equal (rst_event_pack (&click, &pk), 0);

    size_t off = 0;
    char err[128];
    assert_null (rst_event_decode (sb.data, sb.size, &off, err, sizeof err));
    assert_non_null (strstr (err, "not a map"));
    assert_int_equal (off, array_end);
    rst_event_t *ev = rst_event_decode (sb.data, sb.size, &off, err, sizeof err);
    assert_non_null (ev);
    assert_int_equal (off, sb.size);
    rst_event_destroy (&ev);
    msgpack_sbuffer_destroy (&sb);

    //  A bare string and a nil are not events either.
    const char fixstr[] = {(char) 0xa1, 'x'};
    assert_int_equal (s_expect_reject (fixstr, sizeof fixstr, "not a map"), sizeof fixstr);
    const char nil[] = {(char) 0xc0};
    s_expect_reject (nil, sizeof nil, "not a map");
}

static void
test_wrong_version (void **state)
{
    (void) state;
    s_raw_rejected ((s_raw_t){.replace = "v", .replace_fn = s_v_int_2},
                    "unsupported schema version 2");
    s_raw_rejected ((s_raw_t){.replace = "v", .replace_fn = s_v_str_x}, "v: wrong type str");
    s_raw_rejected ((s_raw_t){.replace = "v", .replace_fn = s_v_zero},
                    "unsupported schema version 0");
    s_raw_rejected ((s_raw_t){.omit = "v"}, "missing schema version");
    s_raw_rejected ((s_raw_t){.replace = "type", .replace_fn = s_v_future}, "unknown event type");
}

static void
test_wrong_types (void **state)
{
    (void) state;
    s_raw_rejected ((s_raw_t){.replace = "event_id", .replace_fn = s_v_int_5},
                    "event_id: wrong type int");
    s_raw_rejected ((s_raw_t){.replace = "click_id", .replace_fn = s_v_bin},
                    "click_id: wrong type bin");
    s_raw_rejected ((s_raw_t){.replace = "seq", .replace_fn = s_v_str_x}, "seq: wrong type str");
    s_raw_rejected ((s_raw_t){.replace = "seq", .replace_fn = s_v_neg}, "seq: wrong type int");
    s_raw_rejected ((s_raw_t){.replace = "seq", .replace_fn = s_v_zero}, "seq: out of range");
    s_raw_rejected ((s_raw_t){.replace = "time_ms", .replace_fn = s_v_float},
                    "time_ms: wrong type float");
    s_raw_rejected ((s_raw_t){.replace = "time_ms", .replace_fn = s_v_u64_max},
                    "time_ms: out of range");
    s_raw_rejected ((s_raw_t){.replace = "owner_id", .replace_fn = s_v_true},
                    "owner_id: wrong type bool");
    s_raw_rejected ((s_raw_t){.replace = "pool_id", .replace_fn = s_v_neg},
                    "pool_id: out of range");
    s_raw_rejected ((s_raw_t){.replace = "utm", .replace_fn = s_v_array},
                    "utm: wrong type array");
    s_raw_rejected ((s_raw_t){.replace = "utm", .replace_fn = s_v_utm_int}, "not str -> str");
    s_raw_rejected ((s_raw_t){.replace = "ua", .replace_fn = s_v_array}, "ua: wrong type array");
    s_raw_rejected ((s_raw_t){.extra = "src", .extra_fn = s_v_str_x}, "duplicate key src");

    //  A key that is not a string.
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 2);
    s_key (&pk, "v");
    msgpack_pack_int (&pk, 1);
    msgpack_pack_int (&pk, 7);
    msgpack_pack_int (&pk, 7);
    s_expect_reject (sb.data, sb.size, "key 1 is not a str");
    msgpack_sbuffer_destroy (&sb);
}

static void
test_overlong_ids (void **state)
{
    (void) state;
    rst_event_t *ev = s_raw_accepted ((s_raw_t){.replace = "event_id", .replace_fn = s_v_id64});
    assert_int_equal (ev->event_id.len, 64);
    rst_event_destroy (&ev);
    s_raw_rejected ((s_raw_t){.replace = "event_id", .replace_fn = s_v_id65},
                    "event_id: too long (65 > 64");
    s_raw_rejected ((s_raw_t){.replace = "click_id", .replace_fn = s_v_id65},
                    "click_id: too long (65 > 64");
    s_raw_rejected ((s_raw_t){.replace = "click_id", .replace_fn = s_v_id_space},
                    "click_id: invalid character");
    s_raw_rejected ((s_raw_t){.replace = "event_id", .replace_fn = s_v_id_space},
                    "event_id: invalid character");

    //  The packer refuses the same events, writing nothing.
    char long_id[RST_EVENT_ID_MAX + 2];
    memset (long_id, 'x', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = 0;
    rst_event_t click;
    s_sample_click (&click);
    click.click_id = rst_str (long_id);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    assert_int_equal (rst_event_pack (&click, &pk), -1);
    assert_int_equal (sb.size, 0);

    //  An event over RST_EVENT_MAX_BYTES: refused by the packer; refused by
    //  the decoder too, which still skips it exactly.
    size_t big = RST_EVENT_MAX_BYTES + 10;
    char *ua = malloc (big + 1);
    assert_non_null (ua);
    memset (ua, 'u', big);
    ua[big] = 0;
    s_sample_click (&click);
    click.user_agent = rst_str (ua);
    assert_int_equal (rst_event_pack (&click, &pk), -1);
    assert_int_equal (sb.size, 0);
    msgpack_pack_map (&pk, 2);
    s_key (&pk, "v");
    msgpack_pack_int (&pk, 1);
    s_key (&pk, "ua");
    s_key (&pk, ua);
    size_t off = s_expect_reject (sb.data, sb.size, "too large");
    assert_int_equal (off, sb.size);
    free (ua);
    msgpack_sbuffer_destroy (&sb);
}

static void
test_too_many_utm (void **state)
{
    (void) state;
    rst_event_t *ev = s_raw_accepted ((s_raw_t){.replace = "utm", .replace_fn = s_v_utm16});
    assert_int_equal (ev->utm_count, RST_EVENT_MAX_UTM);
    assert_string_equal (ev->utm[15].key.ptr, "utm_k15");
    rst_event_destroy (&ev);
    s_raw_rejected ((s_raw_t){.replace = "utm", .replace_fn = s_v_utm17},
                    "utm: too many entries (17 > 16)");
    rst_event_t click;
    s_sample_click (&click);
    click.utm_count = RST_EVENT_MAX_UTM + 1;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    assert_int_equal (rst_event_pack (&click, &pk), -1);
    msgpack_sbuffer_destroy (&sb);
}

static void
test_missing_required_field (void **state)
{
    (void) state;
    const char *required[] = {"type",     "event_id", "src",      "seq", "time_ms",
                              "owner_id", "pool_id",  "bot_id",   "pixel_id",
                              "click_id", "ip",       "ua",       "url"};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        char what[64];
        snprintf (what, sizeof what, "missing required field %s", required[i]);
        s_raw_rejected ((s_raw_t){.omit = required[i]}, what);
    }
    //  utm is optional.
    rst_event_t *ev = s_raw_accepted ((s_raw_t){.omit = "utm"});
    assert_int_equal (ev->utm_count, 0);
    rst_event_destroy (&ev);

    //  The packer refuses a click without a click_id (a bug in the caller).
    rst_event_t click;
    s_sample_click (&click);
    click.click_id = rst_str (NULL);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    assert_int_equal (rst_event_pack (&click, &pk), -1);
    s_sample_click (&click);
    click.seq = 0;
    assert_int_equal (rst_event_pack (&click, &pk), -1);
    assert_int_equal (sb.size, 0);
    msgpack_sbuffer_destroy (&sb);
}

//  --------------------------------------------------------------------------
//  Chat events (start, checkout, payment): the bots node and the payment
//  webhooks build them; the pipeline carries them to Meta.

//  A chat event of TYPE for the lead of s_sample_click's click.
static void
s_sample_chat (rst_event_t *ev, rst_event_type_t type)
{
    rst_event_init (ev);
    ev->type = type;
    ev->event_id = rst_str (type == RST_EVENT_START      ? "st-0001"
                            : type == RST_EVENT_CHECKOUT ? "co-0001"
                                                         : "pay-0001");
    ev->src = rst_str ("bots.0");
    ev->seq = 7;
    ev->time_ms = 1764386460123;
    ev->owner_id = 1;
    ev->pool_id = 7;
    ev->bot_id = 3;
    ev->pixel_id = rst_str ("123456789012345");
    ev->click_id = rst_str ("Ab3_x-9QzLmN0pRsTuVwXy12");
    ev->lead_id = 55;
    ev->tg_user_id = 777000111;
    if (type != RST_EVENT_START) {
        ev->offer_id = rst_str ("curso-1");
        ev->offer_name = rst_str ("Curso Completo");
        ev->value_cents = 4990;
        ev->currency = rst_str ("BRL");
    }
    if (type == RST_EVENT_PAYMENT)
        ev->order_id = rst_str ("pix-000123");
}

//  Packs EV, decodes it, checks every chat field survived. Returns the
//  decoded event (the caller destroys it).
static rst_event_t *
s_chat_round_trip (const rst_event_t *ev)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    assert_int_equal (rst_event_pack (ev, &pk), 0);
    size_t off = 0;
    char err[160] = "";
    rst_event_t *back = rst_event_decode (sb.data, sb.size, &off, err, sizeof err);
    if (!back)
        fail_msg ("decoder refused a packed %s: %s", rst_event_type_name (ev->type), err);
    assert_int_equal (off, sb.size);
    msgpack_sbuffer_destroy (&sb);
    assert_int_equal (back->type, ev->type);
    assert_true (s_str_eq (back->event_id, ev->event_id));
    assert_true (s_str_eq (back->src, ev->src));
    assert_true (back->seq == ev->seq);
    assert_true (back->time_ms == ev->time_ms);
    assert_true (back->owner_id == ev->owner_id);
    assert_true (back->pool_id == ev->pool_id);
    assert_true (back->bot_id == ev->bot_id);
    assert_true (s_str_eq (back->pixel_id, ev->pixel_id));
    assert_true (s_str_eq (back->click_id, ev->click_id));
    assert_true (back->lead_id == ev->lead_id);
    assert_true (back->tg_user_id == ev->tg_user_id);
    assert_true (s_str_eq (back->offer_id, ev->offer_id));
    assert_true (s_str_eq (back->offer_name, ev->offer_name));
    assert_true (back->value_cents == ev->value_cents);
    assert_true (s_str_eq (back->currency, ev->currency));
    assert_true (s_str_eq (back->order_id, ev->order_id));
    //  Click-only fields stay absent.
    assert_null (back->ip.ptr);
    assert_null (back->user_agent.ptr);
    assert_null (back->url.ptr);
    return back;
}

static void
test_chat_round_trip (void **state)
{
    (void) state;
    rst_event_type_t types[] = {RST_EVENT_START, RST_EVENT_CHECKOUT, RST_EVENT_PAYMENT};
    const char *names[] = {"start", "checkout", "payment"};
    for (size_t i = 0; i < 3; i++) {
        rst_event_t ev;
        s_sample_chat (&ev, types[i]);
        assert_true (rst_event_is_chat (types[i]));
        assert_string_equal (rst_event_type_name (types[i]), names[i]);
        rst_event_t *back = s_chat_round_trip (&ev);
        rst_event_destroy (&back);
    }
    assert_false (rst_event_is_chat (RST_EVENT_CLICK));

    //  A start with no optional key at all: the optional integers stay NONE.
    rst_event_t ev;
    s_sample_chat (&ev, RST_EVENT_START);
    ev.lead_id = ev.tg_user_id = RST_EVENT_NONE;
    rst_event_t *back = s_chat_round_trip (&ev);
    assert_true (back->lead_id == RST_EVENT_NONE);
    assert_true (back->value_cents == RST_EVENT_NONE);
    assert_null (back->currency.ptr);
    rst_event_destroy (&back);

    //  An organic lead: pool 0, no click_id, named by its Telegram user id.
    s_sample_chat (&ev, RST_EVENT_PAYMENT);
    ev.pool_id = 0;
    ev.click_id = rst_str (NULL);
    ev.value_cents = 0;     //  a free offer is still a value
    back = s_chat_round_trip (&ev);
    assert_true (back->pool_id == 0);
    assert_true (back->value_cents == 0);
    rst_event_destroy (&back);
}

//  Packs a chat map of TYPE key by key, leaving out OMIT (may be NULL) and
//  replacing the value of REPLACE by REPLACE_FN.
static void
s_pack_chat_raw (msgpack_packer *pk, const char *type, const char *omit, const char *replace,
                 s_value_fn *replace_fn)
{
    const char *keys[] = {"v",        "type",     "event_id", "src",      "seq",
                          "time_ms",  "owner_id", "pool_id",  "bot_id",   "pixel_id",
                          "click_id", "value_cents", "order_id", "currency"};
    size_t nkeys = sizeof keys / sizeof keys[0];
    msgpack_pack_map (pk, nkeys - (omit ? 1 : 0));
    for (size_t i = 0; i < nkeys; i++) {
        const char *k = keys[i];
        if (omit && !strcmp (k, omit))
            continue;
        s_key (pk, k);
        if (replace && !strcmp (k, replace))
            replace_fn (pk);
        else if (!strcmp (k, "type"))
            s_key (pk, type);
        else if (!strcmp (k, "value_cents"))
            msgpack_pack_int (pk, 4990);
        else if (!strcmp (k, "currency"))
            s_key (pk, "BRL");
        else if (!strcmp (k, "order_id"))
            s_key (pk, "pix-1");
        else
            s_raw_default (pk, k);
    }
}

static void
s_chat_rejected (const char *type, const char *omit, const char *replace, s_value_fn *fn,
                 const char *what)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    s_pack_chat_raw (&pk, type, omit, replace, fn);
    size_t off = s_expect_reject (sb.data, sb.size, what);
    assert_int_equal (off, sb.size);
    msgpack_sbuffer_destroy (&sb);
}

static void s_v_cur_digits (msgpack_packer *pk) { s_key (pk, "R$1"); }
static void s_v_cur_long (msgpack_packer *pk) { s_key (pk, "BRLX"); }

static void
test_chat_missing_required_field (void **state)
{
    (void) state;
    const char *types[] = {"start", "checkout", "payment"};
    const char *common[] = {"event_id", "src",    "seq",     "time_ms",
                            "owner_id", "pool_id", "bot_id", "pixel_id"};
    for (size_t t = 0; t < 3; t++) {
        //  The full raw map decodes, whatever the type (unused keys are fine).
        msgpack_sbuffer sb;
        msgpack_sbuffer_init (&sb);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
        s_pack_chat_raw (&pk, types[t], NULL, NULL, NULL);
        size_t off = 0;
        char err[160] = "";
        rst_event_t *ev = rst_event_decode (sb.data, sb.size, &off, err, sizeof err);
        if (!ev)
            fail_msg ("%s refused: %s", types[t], err);
        rst_event_destroy (&ev);
        //  ip, ua and url are click-only: no chat map above has them.
        //  click_id is optional when the lead is organic... but then a
        //  tg_user_id must name the lead.
        msgpack_sbuffer_clear (&sb);
        s_pack_chat_raw (&pk, types[t], "click_id", NULL, NULL);
        s_expect_reject (sb.data, sb.size, "missing required field click_id (or tg_user_id)");
        msgpack_sbuffer_destroy (&sb);
        for (size_t i = 0; i < sizeof common / sizeof common[0]; i++) {
            char what[64];
            snprintf (what, sizeof what, "missing required field %s", common[i]);
            s_chat_rejected (types[t], common[i], NULL, NULL, what);
        }
    }
    s_chat_rejected ("checkout", "value_cents", NULL, NULL,
                     "checkout: missing required field value_cents");
    s_chat_rejected ("payment", "value_cents", NULL, NULL,
                     "payment: missing required field value_cents");
    s_chat_rejected ("payment", "order_id", NULL, NULL, "payment: missing required field order_id");
    //  Ranges and formats of the new keys.
    s_chat_rejected ("payment", NULL, "value_cents", s_v_neg, "value_cents: out of range");
    s_chat_rejected ("payment", NULL, "value_cents", s_v_float, "value_cents: wrong type");
    s_chat_rejected ("payment", NULL, "value_cents", s_v_nil,
                     "missing required field value_cents");
    s_chat_rejected ("payment", NULL, "order_id", s_v_id65, "order_id: too long (65 > 64");
    s_chat_rejected ("payment", NULL, "currency", s_v_cur_digits, "currency: invalid character");
    s_chat_rejected ("payment", NULL, "currency", s_v_cur_long, "currency: too long");
    s_chat_rejected ("start", NULL, "pool_id", s_v_neg, "pool_id: out of range");
    s_chat_rejected ("purchase", NULL, NULL, NULL, "unknown event type");
    //  pool_id 0 is an organic chat event, but never a click.
    s_raw_rejected ((s_raw_t){.replace = "pool_id", .replace_fn = s_v_zero},
                    "pool_id: out of range (0)");

    //  The packer refuses the same, writing nothing.
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    rst_event_t ev;
    s_sample_chat (&ev, RST_EVENT_PAYMENT);
    ev.order_id = rst_str (NULL);
    assert_int_equal (rst_event_pack (&ev, &pk), -1);
    s_sample_chat (&ev, RST_EVENT_CHECKOUT);
    ev.value_cents = RST_EVENT_NONE;
    assert_int_equal (rst_event_pack (&ev, &pk), -1);
    s_sample_chat (&ev, RST_EVENT_CHECKOUT);
    ev.value_cents = -5;
    assert_int_equal (rst_event_pack (&ev, &pk), -1);
    s_sample_chat (&ev, RST_EVENT_START);
    ev.click_id = rst_str (NULL);
    ev.tg_user_id = RST_EVENT_NONE;
    assert_int_equal (rst_event_pack (&ev, &pk), -1);
    s_sample_chat (&ev, RST_EVENT_START);
    ev.bot_id = 0;
    assert_int_equal (rst_event_pack (&ev, &pk), -1);
    s_sample_chat (&ev, RST_EVENT_START);
    ev.lead_id = 0;
    assert_int_equal (rst_event_pack (&ev, &pk), -1);
    rst_event_t click;
    s_sample_click (&click);
    click.pool_id = 0;
    assert_int_equal (rst_event_pack (&click, &pk), -1);
    assert_int_equal (sb.size, 0);
    msgpack_sbuffer_destroy (&sb);
}

static void
test_multi_event_message_with_bad_one (void **state)
{
    (void) state;
    //  One ZeroMQ message: click A, a v=2 map, click C. The bad one in the
    //  middle is dropped; A and C come through.
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    rst_event_t click;
    s_sample_click (&click);
    click.seq = 1;
    assert_int_equal (rst_event_pack (&click, &pk), 0);
    s_pack_raw (&pk, &(s_raw_t){.replace = "v", .replace_fn = s_v_int_2});
    click.seq = 3;
    assert_int_equal (rst_event_pack (&click, &pk), 0);

    uint64_t got[3];
    size_t ngot = 0, nbad = 0, off = 0;
    while (off < sb.size) {
        char err[128];
        rst_event_t *ev = rst_event_decode (sb.data, sb.size, &off, err, sizeof err);
        if (!ev) {
            nbad++;
            continue;
        }
        got[ngot++] = ev->seq;
        rst_event_destroy (&ev);
    }
    assert_int_equal (ngot, 2);
    assert_int_equal (nbad, 1);
    assert_int_equal (got[0], 1);
    assert_int_equal (got[1], 3);

    //  A truncated tail ends the loop at once: the offset jumps to the end.
    off = 0;
    size_t cut = sb.size - 3;
    rst_event_t *ev = rst_event_decode (sb.data, cut, &off, NULL, 0);
    assert_non_null (ev);
    rst_event_destroy (&ev);
    assert_null (rst_event_decode (sb.data, cut, &off, NULL, 0));   //  v=2 map
    assert_null (rst_event_decode (sb.data, cut, &off, NULL, 0));   //  truncated C
    assert_int_equal (off, cut);
    msgpack_sbuffer_destroy (&sb);
}

static void
test_ack_round_trip_and_bad_acks (void **state)
{
    (void) state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    uint64_t seqs[] = {5, 6, 900000000000ull};
    assert_int_equal (rst_ack_pack (&pk, RST_ACK_STAGE_STORED, seqs, 3), 0);
    unsigned stage = 0;
    uint64_t out[8];
    char err[128];
    assert_int_equal (rst_ack_decode (sb.data, sb.size, &stage, out, 8, err, sizeof err), 3);
    assert_int_equal (stage, 1);
    assert_int_equal (out[2], 900000000000ull);
    //  More seqs than the caller has room for, a truncated copy, trailing bytes.
    assert_int_equal (rst_ack_decode (sb.data, sb.size, &stage, out, 2, err, sizeof err), -1);
    assert_int_equal (rst_ack_decode (sb.data, sb.size - 1, &stage, out, 8, err, sizeof err), -1);
    msgpack_pack_nil (&pk);
    assert_int_equal (rst_ack_decode (sb.data, sb.size, &stage, out, 8, err, sizeof err), -1);
    msgpack_sbuffer_clear (&sb);
    //  Bad arguments to the packer.
    assert_int_equal (rst_ack_pack (&pk, 0, seqs, 3), -1);
    assert_int_equal (rst_ack_pack (&pk, 3, seqs, 3), -1);    //  not one bit
    assert_int_equal (rst_ack_pack (&pk, 1, seqs, 0), -1);
    assert_int_equal (rst_ack_pack (&pk, 1, seqs, RST_ACK_MAX_SEQS + 1), -1);
    assert_int_equal (sb.size, 0);
    //  An event is not an ack.
    rst_event_t click;
    s_sample_click (&click);
    assert_int_equal (rst_event_pack (&click, &pk), 0);
    assert_int_equal (rst_ack_decode (sb.data, sb.size, &stage, out, 8, err, sizeof err), -1);
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
    size_t n = fwrite (data, 1, len, f);
    fclose (f);
    return n == len ? 0 : -1;
}

static int
s_write_seeds (const char *dir)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    rst_event_t click;
    int rc = 0;

    s_sample_click (&click);
    rst_event_pack (&click, &pk);
    rc |= s_write_file (dir, "click_full", sb.data, sb.size);
    msgpack_sbuffer_clear (&sb);

    s_sample_click (&click);
    click.utm_count = 0;
    click.fbc = click.fbclid = click.pool_slug = click.bot_username = rst_str (NULL);
    click.referer = rst_str ("https://l.instagram.com/");
    click.fbp = rst_str ("fb.1.1764386400000.987654321");
    rst_event_pack (&click, &pk);
    rc |= s_write_file (dir, "click_minimal", sb.data, sb.size);

    click.seq = 43;     //  a three-event message, the way the front batches them
    rst_event_pack (&click, &pk);
    s_pack_raw (&pk, &(s_raw_t){.replace = "utm", .replace_fn = s_v_utm16});
    rc |= s_write_file (dir, "message_three", sb.data, sb.size);
    msgpack_sbuffer_clear (&sb);

    s_pack_raw (&pk, &(s_raw_t){.extra = "added_later", .extra_fn = s_v_future_obj});
    rc |= s_write_file (dir, "click_unknown_key", sb.data, sb.size);
    msgpack_sbuffer_clear (&sb);

    //  Small enough that the fuzz driver mutates whole messages (it keeps
    //  512 bytes of each seed).
    rst_event_init (&click);
    click.type = RST_EVENT_CLICK;
    click.event_id = rst_str ("e1");
    click.src = rst_str ("front.0");
    click.seq = 1;
    click.time_ms = 1;
    click.owner_id = click.pool_id = click.bot_id = 1;
    click.pixel_id = rst_str ("1");
    click.click_id = rst_str ("c1");
    click.ip = rst_str ("::1");
    click.user_agent = rst_str ("");
    click.url = rst_str ("/go/a");
    click.utm_count = 1;
    click.utm[0].key = rst_str ("utm_source");
    click.utm[0].value = rst_str ("x");
    rst_event_pack (&click, &pk);
    rc |= s_write_file (dir, "click_small", sb.data, sb.size);
    click.seq = 2;
    rst_event_pack (&click, &pk);
    rc |= s_write_file (dir, "message_two_small", sb.data, sb.size);
    msgpack_sbuffer_clear (&sb);

    //  Chat events: one per type, and an organic payment.
    static const struct {
        rst_event_type_t type;
        const char *name;
    } chats[] = {{RST_EVENT_START, "start"},
                 {RST_EVENT_CHECKOUT, "checkout"},
                 {RST_EVENT_PAYMENT, "payment"}};
    for (size_t i = 0; i < sizeof chats / sizeof chats[0]; i++) {
        rst_event_t chat;
        s_sample_chat (&chat, chats[i].type);
        rst_event_pack (&chat, &pk);
        rc |= s_write_file (dir, chats[i].name, sb.data, sb.size);
        msgpack_sbuffer_clear (&sb);
    }
    rst_event_t organic;
    s_sample_chat (&organic, RST_EVENT_PAYMENT);
    organic.pool_id = 0;
    organic.click_id = rst_str (NULL);
    organic.currency = rst_str (NULL);
    rst_event_pack (&organic, &pk);
    rc |= s_write_file (dir, "payment_organic", sb.data, sb.size);
    msgpack_sbuffer_clear (&sb);

    uint64_t seqs[] = {1, 2, 3};
    rst_ack_pack (&pk, 1, seqs, 3);
    rc |= s_write_file (dir, "ack", sb.data, sb.size);
    msgpack_sbuffer_destroy (&sb);
    return rc ? 1 : 0;
}

int
main (int argc, char **argv)
{
    if (argc == 3 && !strcmp (argv[1], "--write-seeds"))
        return s_write_seeds (argv[2]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_click_round_trip),
        cmocka_unit_test (test_empty_and_nil_optionals),
        cmocka_unit_test (test_unknown_keys_are_ignored),
        cmocka_unit_test (test_truncated),
        cmocka_unit_test (test_not_a_map),
        cmocka_unit_test (test_wrong_version),
        cmocka_unit_test (test_wrong_types),
        cmocka_unit_test (test_overlong_ids),
        cmocka_unit_test (test_too_many_utm),
        cmocka_unit_test (test_missing_required_field),
        cmocka_unit_test (test_chat_round_trip),
        cmocka_unit_test (test_chat_missing_required_field),
        cmocka_unit_test (test_multi_event_message_with_bad_one),
        cmocka_unit_test (test_ack_round_trip_and_bad_acks),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
