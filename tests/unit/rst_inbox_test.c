/*  rst_inbox_test — the inbox message codec (schemas/inbox.md).

    Round trips of both types, several maps in one message, every limit both
    ways, and one test per malformed case the decoder must refuse.
    `rst_inbox_test --write-seeds DIR` writes the fuzz seeds of
    tests/fuzz/corpus/fuzz_inbox/ instead of running the tests.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "rst_inbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char s_update[] = "{\"update_id\":815000001,\"message\":{\"message_id\":5,"
                               "\"text\":\"/start c_Zk3xQ9pL2aBc\"}}";
static const char s_mp_body[] = "{\"action\":\"payment.updated\",\"data\":{\"id\":\"123456\"},"
                                "\"type\":\"payment\"}";
static const char s_mp_query[] = "data.id=123456&type=payment";

static rst_inbox_msg_t
s_tg (void)
{
    rst_inbox_msg_t msg = {.type = RST_INBOX_TG_UPDATE, .seq = 42, .time_ms = 1764386400123,
                           .bot_id = 3, .update_id = 815000001, .body = s_update,
                           .body_len = sizeof s_update - 1};
    snprintf (msg.src, sizeof msg.src, "front.0");
    return msg;
}

static rst_inbox_msg_t
s_gw (void)
{
    rst_inbox_msg_t msg = {.type = RST_INBOX_GW_WEBHOOK, .seq = 43, .time_ms = 1764386400456,
                           .body = s_mp_body, .body_len = sizeof s_mp_body - 1,
                           .query = s_mp_query, .query_len = sizeof s_mp_query - 1};
    snprintf (msg.src, sizeof msg.src, "front.1");
    snprintf (msg.gateway, sizeof msg.gateway, "mercadopago");
    snprintf (msg.charge_id, sizeof msg.charge_id, "123456");
    return msg;
}

//  Packs MSG into SB (cleared first). Returns rst_inbox_pack's result.
static int
s_pack (msgpack_sbuffer *sb, const rst_inbox_msg_t *msg)
{
    msgpack_sbuffer_clear (sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, sb, msgpack_sbuffer_write);
    return rst_inbox_pack (msg, &pk);
}

//  Decodes the one map of DATA. Returns rst_inbox_decode's result.
static int
s_decode1 (const char *data, size_t len, rst_inbox_msg_t *out)
{
    size_t offset = 0;
    int rc = rst_inbox_decode (data, len, &offset, out);
    if (rc != -2)
        assert_int_equal (offset, len);
    return rc;
}

//  A tour: a Telegram update packed, journaled as bytes, decoded on the
//  bots node's side; the body is not copied but points into the message.
static void
test_tg_update_round_trip (void **state)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    rst_inbox_msg_t in = s_tg ();
    assert_int_equal (s_pack (&sb, &in), 0);

    rst_inbox_msg_t out;
    assert_int_equal (s_decode1 (sb.data, sb.size, &out), 0);
    assert_int_equal (out.type, RST_INBOX_TG_UPDATE);
    assert_string_equal (out.src, "front.0");
    assert_int_equal (out.seq, 42);
    assert_int_equal (out.time_ms, 1764386400123);
    assert_int_equal (out.bot_id, 3);
    assert_int_equal (out.update_id, 815000001);
    assert_int_equal (out.body_len, sizeof s_update - 1);
    assert_memory_equal (out.body, s_update, out.body_len);
    assert_true (out.body > sb.data && out.body < sb.data + sb.size);
    assert_null (out.query);
    assert_string_equal (out.gateway, "");
    assert_string_equal (rst_inbox_type_name (out.type), "tg_update");
    msgpack_sbuffer_destroy (&sb);
}

static void
test_gw_webhook_round_trip (void **state)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    rst_inbox_msg_t in = s_gw ();
    assert_int_equal (s_pack (&sb, &in), 0);
    rst_inbox_msg_t out;
    assert_int_equal (s_decode1 (sb.data, sb.size, &out), 0);
    assert_int_equal (out.type, RST_INBOX_GW_WEBHOOK);
    assert_string_equal (out.src, "front.1");
    assert_int_equal (out.seq, 43);
    assert_string_equal (out.gateway, "mercadopago");
    assert_string_equal (out.charge_id, "123456");
    assert_int_equal (out.body_len, sizeof s_mp_body - 1);
    assert_memory_equal (out.body, s_mp_body, out.body_len);
    assert_int_equal (out.query_len, sizeof s_mp_query - 1);
    assert_memory_equal (out.query, s_mp_query, out.query_len);
    assert_int_equal (out.bot_id, 0);

    //  Without a query, and with an empty body (both allowed).
    in.query = NULL;
    in.body = NULL;
    in.body_len = 0;
    assert_int_equal (s_pack (&sb, &in), 0);
    assert_int_equal (s_decode1 (sb.data, sb.size, &out), 0);
    assert_null (out.query);
    assert_non_null (out.body);
    assert_int_equal (out.body_len, 0);
    //  An empty query is not an absent one.
    in.query = "";
    in.query_len = 0;
    assert_int_equal (s_pack (&sb, &in), 0);
    assert_int_equal (s_decode1 (sb.data, sb.size, &out), 0);
    assert_non_null (out.query);
    assert_int_equal (out.query_len, 0);
    msgpack_sbuffer_destroy (&sb);
}

//  Maps back to back; an invalid one in the middle is skipped, garbage stops.
static void
test_several_per_message (void **state)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    rst_inbox_msg_t tg = s_tg (), gw = s_gw ();
    assert_int_equal (rst_inbox_pack (&tg, &pk), 0);
    msgpack_pack_map (&pk, 1);                  //  valid msgpack, not an inbox message
    msgpack_pack_str_with_body (&pk, "v", 1);
    msgpack_pack_uint8 (&pk, 1);
    assert_int_equal (rst_inbox_pack (&gw, &pk), 0);
    msgpack_sbuffer_write (&sb, "\xc1\x00", 2);  //  0xc1 is never msgpack

    size_t offset = 0;
    rst_inbox_msg_t out;
    assert_int_equal (rst_inbox_decode (sb.data, sb.size, &offset, &out), 0);
    assert_int_equal (out.type, RST_INBOX_TG_UPDATE);
    assert_int_equal (rst_inbox_decode (sb.data, sb.size, &offset, &out), -1);
    assert_int_equal (rst_inbox_decode (sb.data, sb.size, &offset, &out), 0);
    assert_int_equal (out.type, RST_INBOX_GW_WEBHOOK);
    assert_true (offset < sb.size);
    assert_int_equal (rst_inbox_decode (sb.data, sb.size, &offset, &out), -2);
    assert_int_equal (offset, sb.size);
    assert_int_equal (rst_inbox_decode (sb.data, sb.size, &offset, &out), -2);
    //  Truncated: a declared length past the end.
    offset = 0;
    assert_int_equal (rst_inbox_decode (sb.data, 10, &offset, &out), -2);
    assert_int_equal (offset, 10);
    msgpack_sbuffer_destroy (&sb);
}

static void
test_body_limit_both_ways (void **state)
{
    char *big = calloc (1, RST_INBOX_MAX_BODY + 1);
    assert_non_null (big);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    rst_inbox_msg_t in = s_tg (), out;
    in.body = big;
    in.body_len = RST_INBOX_MAX_BODY;
    assert_int_equal (s_pack (&sb, &in), 0);
    assert_int_equal (s_decode1 (sb.data, sb.size, &out), 0);
    assert_int_equal (out.body_len, RST_INBOX_MAX_BODY);
    in.body_len = RST_INBOX_MAX_BODY + 1;
    assert_int_equal (s_pack (&sb, &in), -1);
    assert_int_equal (sb.size, 0);              //  nothing written

    //  Built by hand, the decoder refuses it too.
    msgpack_sbuffer_clear (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 7);
    msgpack_pack_str_with_body (&pk, "v", 1), msgpack_pack_uint8 (&pk, 1);
    msgpack_pack_str_with_body (&pk, "type", 4), msgpack_pack_str_with_body (&pk, "tg_update", 9);
    msgpack_pack_str_with_body (&pk, "src", 3), msgpack_pack_str_with_body (&pk, "front.0", 7);
    msgpack_pack_str_with_body (&pk, "seq", 3), msgpack_pack_uint8 (&pk, 1);
    msgpack_pack_str_with_body (&pk, "time_ms", 7), msgpack_pack_uint8 (&pk, 1);
    msgpack_pack_str_with_body (&pk, "bot_id", 6), msgpack_pack_uint8 (&pk, 1);
    msgpack_pack_str_with_body (&pk, "body", 4);
    msgpack_pack_bin_with_body (&pk, big, RST_INBOX_MAX_BODY + 1);
    size_t offset = 0;
    assert_int_equal (rst_inbox_decode (sb.data, sb.size, &offset, &out), -1);
    assert_int_equal (offset, sb.size);         //  skipped, not stuck
    msgpack_sbuffer_destroy (&sb);
    free (big);
}

static void
test_pack_refuses_invalid (void **state)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    rst_inbox_msg_t m;

    m = s_tg (), m.type = 3;
    assert_int_equal (s_pack (&sb, &m), -1);
    m = s_tg (), m.seq = 0;
    assert_int_equal (s_pack (&sb, &m), -1);
    m = s_tg (), m.time_ms = 0;
    assert_int_equal (s_pack (&sb, &m), -1);
    m = s_tg (), m.time_ms = RST_INBOX_TIME_MS_MAX + 1;
    assert_int_equal (s_pack (&sb, &m), -1);
    m = s_tg (), m.bot_id = 0;
    assert_int_equal (s_pack (&sb, &m), -1);
    m = s_tg (), m.update_id = -1;
    assert_int_equal (s_pack (&sb, &m), -1);
    m = s_tg (), m.src[0] = 0;
    assert_int_equal (s_pack (&sb, &m), -1);
    m = s_tg (), snprintf (m.src, sizeof m.src, "front 0");
    assert_int_equal (s_pack (&sb, &m), -1);
    m = s_tg (), m.body = NULL;
    assert_int_equal (s_pack (&sb, &m), -1);
    m = s_tg (), m.update_id = 0;               //  0 is a valid update_id
    assert_int_equal (s_pack (&sb, &m), 0);

    m = s_gw (), m.gateway[0] = 0;
    assert_int_equal (s_pack (&sb, &m), -1);
    m = s_gw (), snprintf (m.gateway, sizeof m.gateway, "MercadoPago");
    assert_int_equal (s_pack (&sb, &m), -1);
    m = s_gw (), m.charge_id[0] = 0;
    assert_int_equal (s_pack (&sb, &m), -1);
    m = s_gw (), snprintf (m.charge_id, sizeof m.charge_id, "12 34");
    assert_int_equal (s_pack (&sb, &m), -1);
    m = s_gw (), m.query_len = RST_INBOX_MAX_QUERY + 1;
    assert_int_equal (s_pack (&sb, &m), -1);
    m = s_gw (), memset (m.charge_id, 'x', RST_INBOX_CHARGE_MAX), m.charge_id[RST_INBOX_CHARGE_MAX] = 0;
    assert_int_equal (s_pack (&sb, &m), 0);     //  exactly the longest charge id
    msgpack_sbuffer_destroy (&sb);
}

typedef void (s_value_fn) (msgpack_packer *pk);

//  Packs a valid tg_update by hand into SB, except that the value of KEY
//  (when not NULL) is written by VALUE, or KEY is left out when VALUE is
//  NULL; then EXTRA (when not NULL) adds EXTRA_N more pairs.
static void
s_hand (msgpack_sbuffer *sb, const char *key, s_value_fn *value, size_t extra_n, s_value_fn *extra)
{
    static const char *keys[] = {"v", "type", "src", "seq", "time_ms", "bot_id", "update_id", "body"};
    msgpack_sbuffer_clear (sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, sb, msgpack_sbuffer_write);
    int skip = key && !value;
    msgpack_pack_map (&pk, 8 - (size_t) skip + extra_n);
    for (size_t i = 0; i < 8; i++) {
        int this_key = key && !strcmp (keys[i], key);
        if (this_key && skip)
            continue;
        msgpack_pack_str_with_body (&pk, keys[i], strlen (keys[i]));
        if (this_key) {
            value (&pk);
            continue;
        }
        switch (i) {
        case 0: msgpack_pack_uint8 (&pk, 1); break;
        case 1: msgpack_pack_str_with_body (&pk, "tg_update", 9); break;
        case 2: msgpack_pack_str_with_body (&pk, "front.0", 7); break;
        case 3: msgpack_pack_uint8 (&pk, 9); break;
        case 4: msgpack_pack_uint64 (&pk, 1764386400123ull); break;
        case 5: msgpack_pack_uint8 (&pk, 3); break;
        case 6: msgpack_pack_uint8 (&pk, 7); break;
        case 7: msgpack_pack_bin_with_body (&pk, "{}", 2); break;
        }
    }
    if (extra)
        extra (&pk);
}

static void s_extra_unknown (msgpack_packer *pk)
{
    msgpack_pack_str_with_body (pk, "later", 5);
    msgpack_pack_array (pk, 2), msgpack_pack_nil (pk), msgpack_pack_true (pk);
}
static void s_extra_dup_seq (msgpack_packer *pk)
{
    msgpack_pack_str_with_body (pk, "seq", 3), msgpack_pack_uint8 (pk, 10);
}
static void s_extra_dup_v (msgpack_packer *pk)
{
    msgpack_pack_str_with_body (pk, "v", 1), msgpack_pack_uint8 (pk, 1);
}
static void s_extra_int_key (msgpack_packer *pk)
{
    msgpack_pack_uint8 (pk, 1), msgpack_pack_uint8 (pk, 1);
}
static void s_extra_gateway (msgpack_packer *pk)
{
    msgpack_pack_str_with_body (pk, "gateway", 7), msgpack_pack_str_with_body (pk, "syncpay", 7);
    msgpack_pack_str_with_body (pk, "query", 5), msgpack_pack_str_with_body (pk, "a=1", 3);
}

static void
test_decoder_keys (void **state)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    rst_inbox_msg_t out;
    //  The hand-built map is valid; unknown keys and the other type's keys are ignored.
    s_hand (&sb, NULL, NULL, 0, NULL);
    assert_int_equal (s_decode1 (sb.data, sb.size, &out), 0);
    assert_int_equal (out.update_id, 7);
    s_hand (&sb, NULL, NULL, 1, s_extra_unknown);
    assert_int_equal (s_decode1 (sb.data, sb.size, &out), 0);
    s_hand (&sb, NULL, NULL, 2, s_extra_gateway);
    assert_int_equal (s_decode1 (sb.data, sb.size, &out), 0);
    assert_null (out.query);
    assert_string_equal (out.gateway, "");
    //  Every required key, left out in turn.
    static const char *required[] = {"v", "type", "src", "seq", "time_ms", "bot_id", "update_id", "body"};
    for (size_t i = 0; i < 8; i++) {
        s_hand (&sb, required[i], NULL, 0, NULL);
        assert_int_equal (s_decode1 (sb.data, sb.size, &out), -1);
    }
    s_hand (&sb, NULL, NULL, 1, s_extra_dup_seq);
    assert_int_equal (s_decode1 (sb.data, sb.size, &out), -1);
    s_hand (&sb, NULL, NULL, 1, s_extra_dup_v);
    assert_int_equal (s_decode1 (sb.data, sb.size, &out), -1);
    s_hand (&sb, NULL, NULL, 1, s_extra_int_key);
    assert_int_equal (s_decode1 (sb.data, sb.size, &out), -1);
    msgpack_sbuffer_destroy (&sb);
}

static void s_v2 (msgpack_packer *pk) { msgpack_pack_uint8 (pk, 2); }
static void s_type_other (msgpack_packer *pk) { msgpack_pack_str_with_body (pk, "click", 5); }
static void s_str_body (msgpack_packer *pk) { msgpack_pack_str_with_body (pk, "{}", 2); }
static void s_float (msgpack_packer *pk) { msgpack_pack_double (pk, 3.0); }
static void s_negative (msgpack_packer *pk) { msgpack_pack_int8 (pk, -1); }
static void s_zero (msgpack_packer *pk) { msgpack_pack_uint8 (pk, 0); }
static void s_huge (msgpack_packer *pk) { msgpack_pack_uint64 (pk, UINT64_MAX); }
static void s_nil (msgpack_packer *pk) { msgpack_pack_nil (pk); }
static void s_long_src (msgpack_packer *pk)
{
    char src[RST_INBOX_SRC_MAX + 1];
    memset (src, 'f', sizeof src);
    msgpack_pack_str_with_body (pk, src, sizeof src);
}
static void s_space_src (msgpack_packer *pk) { msgpack_pack_str_with_body (pk, "front 0", 7); }

static void
test_decoder_values (void **state)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    rst_inbox_msg_t out;
    struct {
        const char *key;
        void (*value) (msgpack_packer *);
    } bad[] = {
        {"v", s_v2},         {"v", s_nil},           {"type", s_type_other}, {"type", s_zero},
        {"src", s_long_src}, {"src", s_space_src},   {"src", s_zero},        {"seq", s_zero},
        {"seq", s_negative}, {"seq", s_float},       {"time_ms", s_zero},    {"time_ms", s_huge},
        {"bot_id", s_zero},  {"bot_id", s_negative}, {"update_id", s_negative},
        {"update_id", s_huge}, {"update_id", s_float}, {"body", s_str_body},  {"body", s_nil},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s_hand (&sb, bad[i].key, bad[i].value, 0, NULL);
        assert_int_equal (s_decode1 (sb.data, sb.size, &out), -1);
        assert_int_equal (out.type, 0);         //  OUT is zeroed on failure
    }
    s_hand (&sb, "update_id", s_zero, 0, NULL);
    assert_int_equal (s_decode1 (sb.data, sb.size, &out), 0);
    //  Not a map at all.
    msgpack_sbuffer_clear (&sb);
    msgpack_sbuffer_write (&sb, "\x93\x01\x02\x03", 4);
    assert_int_equal (s_decode1 (sb.data, sb.size, &out), -1);
    msgpack_sbuffer_destroy (&sb);
}

//  Writes SB's bytes to DIR/NAME. Returns 0 or -1.
static int
s_write_file (const char *dir, const char *name, const msgpack_sbuffer *sb)
{
    char path[4096];
    snprintf (path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen (path, "wb");
    if (!f)
        return -1;
    int rc = fwrite (sb->data, 1, sb->size, f) == sb->size ? 0 : -1;
    return fclose (f) || rc ? -1 : 0;
}

//  Writes the fuzz seeds; returns the exit status.
static int
s_write_seeds (const char *dir)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    rst_inbox_msg_t tg = s_tg (), gw = s_gw (), tg2 = s_tg (), gw_bare = s_gw ();
    tg2.seq = 44;
    gw_bare.query = NULL;
    int rc = 0;
    rc |= s_pack (&sb, &tg) || s_write_file (dir, "tg_update", &sb);
    rc |= s_pack (&sb, &gw) || s_write_file (dir, "gw_webhook", &sb);
    rc |= s_pack (&sb, &gw_bare) || s_write_file (dir, "gw_no_query", &sb);
    s_hand (&sb, NULL, NULL, 1, s_extra_unknown);
    rc |= s_write_file (dir, "tg_unknown_key", &sb);
    msgpack_sbuffer_clear (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    rc |= rst_inbox_pack (&tg, &pk) || rst_inbox_pack (&gw, &pk) || rst_inbox_pack (&tg2, &pk);
    rc |= s_write_file (dir, "message_three", &sb);
    msgpack_sbuffer_destroy (&sb);
    return rc ? 1 : 0;
}

int
main (int argc, char **argv)
{
    if (argc == 3 && !strcmp (argv[1], "--write-seeds"))
        return s_write_seeds (argv[2]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_tg_update_round_trip),
        cmocka_unit_test (test_gw_webhook_round_trip),
        cmocka_unit_test (test_several_per_message),
        cmocka_unit_test (test_body_limit_both_ways),
        cmocka_unit_test (test_pack_refuses_invalid),
        cmocka_unit_test (test_decoder_keys),
        cmocka_unit_test (test_decoder_values),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
