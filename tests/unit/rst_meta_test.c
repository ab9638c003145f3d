/*  rst_meta_test — normalisation, hashing, payloads and reply classification
    against reference/meta-capi.md.

    The first test is the tutorial: hash an email the way Meta wants it,
    build one Purchase event, wrap it in a request body, and classify
    Meta's answer.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "rst_meta.h"

#define H_JOHN  "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f"
#define H_US_PH "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176"
#define H_VALERY "08e1996b5dd49e62a4b4c010d44e4345592a863bb9f8e3976219bac29417149c"
#define H_BR    "885036a0da3dff3c3e05bc79bf49382b12bc5098514ed57ce0875aba1aa2c40d"
#define H_BR_PH "029c7290f14c4516673508635f0519db95f7daf42057fd0e4ad1de84c5408a66"

static void
test_tutorial (void **state)
{
    (void) state;
    //  1. Hash a customer's email: trimmed, lowercased, SHA-256 hex.
    char hex[RST_META_HASH_HEX];
    assert_int_equal (rst_meta_hash (RST_META_EM, "  John_Smith@Gmail.com ", hex), 0);
    assert_string_equal (hex, H_JOHN);

    //  2. One Purchase from a Telegram bot (action_source "chat").
    rst_meta_event_t ev = {
        .event_name = "Purchase", .event_time = time (NULL) - 60, .event_id = "pay-100234",
        .action_source = "chat", .external_id = "c_Zk3xQ9pL2aBc",
        .fbc = "fb.1.1767225600123.IwAR2F4-dbP0l7Mn1IawQQ", .ph = "+55 (11) 98765-4321",
        .country = "BR", .has_value = 1, .value = 97.9, .currency = "BRL",
        .content_id = "curso-basico", .order_id = "100234"};
    char err[128];
    char *json = rst_meta_event_json (&ev, err, sizeof err);
    assert_non_null (json);

    //  3. A request body holds up to 1000 of them.
    const char *events[] = {json};
    size_t len = 0;
    char *body = rst_meta_body (events, 1, "TEST12345", &len);
    assert_non_null (body);
    assert_int_equal (len, strlen (body));
    cJSON *root = cJSON_Parse (body);
    assert_non_null (root);
    assert_string_equal (cJSON_GetObjectItem (root, "test_event_code")->valuestring, "TEST12345");
    cJSON *e0 = cJSON_GetArrayItem (cJSON_GetObjectItem (root, "data"), 0);
    cJSON *ud = cJSON_GetObjectItem (e0, "user_data");
    assert_string_equal (cJSON_GetArrayItem (cJSON_GetObjectItem (ud, "ph"), 0)->valuestring,
                         H_BR_PH);
    assert_string_equal (cJSON_GetArrayItem (cJSON_GetObjectItem (ud, "country"), 0)->valuestring,
                         H_BR);
    cJSON_Delete (root);

    //  4. Meta's answer decides what happens to the batch.
    const char *reply = "{\"events_received\":1,\"messages\":[],\"fbtrace_id\":\"AQx7Rk2pZ1\"}";
    rst_meta_result_t r;
    rst_meta_classify (200, NULL, reply, strlen (reply), NULL, NULL, &r);
    assert_int_equal (r.verdict, RST_META_ACCEPTED);
    assert_int_equal (r.events_received, 1);
    assert_string_equal (r.fbtrace_id, "AQx7Rk2pZ1");
    free (body);
    free (json);
}

static void
s_expect_hash (rst_meta_key_t key, const char *value, const char *hex)
{
    char out[RST_META_HASH_HEX];
    assert_int_equal (rst_meta_hash (key, value, out), 0);
    assert_string_equal (out, hex);
}

static void
s_expect_norm (rst_meta_key_t key, const char *value, const char *norm)
{
    char out[128];
    int n = rst_meta_normalize (key, value, out, sizeof out);
    if (!norm) {
        assert_int_equal (n, -1);
        return;
    }
    assert_int_equal (n, (int) strlen (norm));
    assert_string_equal (out, norm);
}

static void
test_reference_vectors (void **state)
{
    (void) state;
    s_expect_hash (RST_META_EM, "john_smith@gmail.com", H_JOHN);
    s_expect_hash (RST_META_PH, "16505551212", H_US_PH);
    s_expect_hash (RST_META_PH, "+1 (650) 555-1212", H_US_PH);
    s_expect_hash (RST_META_FN, "valéry", H_VALERY);
    s_expect_hash (RST_META_FN, "Valéry", H_VALERY);
    s_expect_hash (RST_META_LN, " VALÉRY ", H_VALERY);
    s_expect_hash (RST_META_COUNTRY, "br", H_BR);
    s_expect_hash (RST_META_COUNTRY, "BR", H_BR);
    s_expect_hash (RST_META_PH, "5511987654321", H_BR_PH);
    s_expect_norm (RST_META_PH, "+55 (11) 98765-4321", "5511987654321");
    char hex[RST_META_HASH_HEX];
    rst_meta_sha256_hex ("br", 2, hex);
    assert_string_equal (hex, H_BR);
}

static void
test_normalisation (void **state)
{
    (void) state;
    //  Phones: country code required; a Brazilian number without it gets 55.
    s_expect_norm (RST_META_PH, "(11) 98765-4321", "5511987654321");
    s_expect_norm (RST_META_PH, "011 98765-4321", "5511987654321");
    s_expect_norm (RST_META_PH, "(11) 3456-7890", "551134567890");
    s_expect_norm (RST_META_PH, "0055 11 98765 4321", "5511987654321");
    s_expect_norm (RST_META_PH, "+1 650 555 1212", "16505551212");
    s_expect_norm (RST_META_PH, "no digits", NULL);
    s_expect_norm (RST_META_EM, "   ", NULL);
    s_expect_norm (RST_META_CT, "São Paulo", "saopaulo");
    s_expect_norm (RST_META_CT, "Rio de Janeiro 2", "riodejaneiro");
    s_expect_norm (RST_META_ST, "SP", "sp");
    s_expect_norm (RST_META_FN, "Mary-Jane O'Neil", "maryjaneoneil");
    s_expect_norm (RST_META_FN, "JOÃO", "joão");
    s_expect_norm (RST_META_ZP, "01310-100", "01310100");
    s_expect_norm (RST_META_ZP, "94025-1234", "94025");
    s_expect_norm (RST_META_ZP, "M1 1AE", "m11ae");
    s_expect_norm (RST_META_GE, "Female", "f");
    s_expect_norm (RST_META_GE, "M", "m");
    s_expect_norm (RST_META_GE, "x", NULL);
    s_expect_norm (RST_META_DB, "2/16/1997", "19970216");
    s_expect_norm (RST_META_DB, "16/02/1997", "19970216");
    s_expect_norm (RST_META_DB, "1997-02-16", "19970216");
    s_expect_norm (RST_META_DB, "19970216", "19970216");
    s_expect_norm (RST_META_DB, "1997-02-30", NULL);
    s_expect_norm (RST_META_COUNTRY, "Brazil", NULL);
    s_expect_norm (RST_META_EXTERNAL_ID, " c_Zk3 ", "c_Zk3");
    char tiny[4];
    assert_int_equal (rst_meta_normalize (RST_META_EM, "long@example.com", tiny, sizeof tiny), -1);
}

static void
test_never_hash_twice (void **state)
{
    (void) state;
    //  A 64-hex value was hashed upstream: copied (lowercased), not rehashed.
    s_expect_hash (RST_META_EM, H_JOHN, H_JOHN);
    char upper[65];
    for (int i = 0; i < 64; i++)
        upper[i] = (char) (H_JOHN[i] >= 'a' ? H_JOHN[i] - 32 : H_JOHN[i]);
    upper[64] = 0;
    s_expect_hash (RST_META_EXTERNAL_ID, upper, H_JOHN);
    //  63 hex digits is not a hash: it is hashed.
    char out[RST_META_HASH_HEX];
    assert_int_equal (rst_meta_hash (RST_META_EXTERNAL_ID, H_JOHN + 1, out), 0);
    assert_string_not_equal (out, H_JOHN + 1);
    assert_int_equal (rst_meta_hash (RST_META_PH, "---", out), -1);
}

//  Parses JSON or fails the test.
static cJSON *
s_parse (const char *json)
{
    cJSON *root = cJSON_Parse (json);
    assert_non_null (root);
    return root;
}

static void
test_website_event (void **state)
{
    (void) state;
    char err[128];
    int64_t now = time (NULL);
    rst_meta_event_t ev = {.event_name = "PageView", .event_time = now - 5,
                           .event_id = "pv-1", .action_source = "website",
                           .client_user_agent = "Mozilla/5.0 (Linux; Android 14)",
                           .client_ip_address = "2804:14c:65a1:4000::1",
                           .fbc = "fb.1.1767225600123.IwAR2F4-dbP0l7Mn1IawQQ",
                           .fbp = "fb.1.1596403881668.1116446470",
                           .external_id = "c_Zk3xQ9pL2aBc"};
    //  website requires event_source_url and client_user_agent.
    assert_null (rst_meta_event_json (&ev, err, sizeof err));
    assert_non_null (strstr (err, "event_source_url"));
    ev.event_source_url = "https://go.example.com/go/curso?fbclid=IwAR2F4-dbP0l7Mn1IawQQ";
    const char *ua = ev.client_user_agent;
    ev.client_user_agent = NULL;
    assert_null (rst_meta_event_json (&ev, err, sizeof err));
    ev.client_user_agent = ua;
    char *json = rst_meta_event_json (&ev, err, sizeof err);
    assert_non_null (json);
    cJSON *root = s_parse (json);
    assert_int_equal ((int64_t) cJSON_GetObjectItem (root, "event_time")->valuedouble, now - 5);
    assert_string_equal (cJSON_GetObjectItem (root, "action_source")->valuestring, "website");
    cJSON *ud = cJSON_GetObjectItem (root, "user_data");
    //  IP, UA, fbc, fbp are passed as they are, never hashed.
    assert_string_equal (cJSON_GetObjectItem (ud, "client_ip_address")->valuestring,
                         "2804:14c:65a1:4000::1");
    assert_string_equal (cJSON_GetObjectItem (ud, "client_user_agent")->valuestring, ua);
    assert_string_equal (cJSON_GetObjectItem (ud, "fbc")->valuestring,
                         "fb.1.1767225600123.IwAR2F4-dbP0l7Mn1IawQQ");
    assert_string_equal (cJSON_GetObjectItem (ud, "fbp")->valuestring,
                         "fb.1.1596403881668.1116446470");
    char ext[RST_META_HASH_HEX];
    rst_meta_sha256_hex ("c_Zk3xQ9pL2aBc", 14, ext);
    assert_string_equal (cJSON_GetArrayItem (cJSON_GetObjectItem (ud, "external_id"), 0)->valuestring,
                         ext);
    assert_null (cJSON_GetObjectItem (root, "custom_data"));
    cJSON_Delete (root);
    free (json);
}

static void
test_chat_and_purchase (void **state)
{
    (void) state;
    char err[128];
    //  chat needs nothing beyond action_source.
    rst_meta_event_t ev = {.event_name = "ViewContent", .event_time = time (NULL),
                           .event_id = "vc-1", .action_source = "chat"};
    char *json = rst_meta_event_json (&ev, err, sizeof err);
    assert_non_null (json);
    free (json);
    //  Purchase needs value and currency.
    ev.event_name = "Purchase";
    assert_null (rst_meta_event_json (&ev, err, sizeof err));
    ev.has_value = 1;
    ev.value = 97.9;
    assert_null (rst_meta_event_json (&ev, err, sizeof err));
    ev.currency = "BRL";
    ev.content_id = "curso-basico";
    ev.content_name = "Curso Básico";
    ev.order_id = "100234";
    json = rst_meta_event_json (&ev, err, sizeof err);
    assert_non_null (json);
    cJSON *root = s_parse (json);
    cJSON *cd = cJSON_GetObjectItem (root, "custom_data");
    assert_true (cJSON_GetObjectItem (cd, "value")->valuedouble == 97.9);
    assert_non_null (strstr (json, "\"value\":97.9"));
    assert_string_equal (cJSON_GetObjectItem (cd, "currency")->valuestring, "BRL");
    assert_string_equal (cJSON_GetObjectItem (cd, "order_id")->valuestring, "100234");
    assert_string_equal (cJSON_GetObjectItem (cd, "content_type")->valuestring, "product");
    assert_string_equal (cJSON_GetArrayItem (cJSON_GetObjectItem (cd, "content_ids"), 0)->valuestring,
                         "curso-basico");
    cJSON *c0 = cJSON_GetArrayItem (cJSON_GetObjectItem (cd, "contents"), 0);
    assert_string_equal (cJSON_GetObjectItem (c0, "id")->valuestring, "curso-basico");
    assert_int_equal (cJSON_GetObjectItem (c0, "quantity")->valueint, 1);
    assert_true (cJSON_GetObjectItem (c0, "item_price")->valuedouble == 97.9);
    cJSON_Delete (root);
    free (json);
    //  Unknown action_source, missing ids, future times clamped.
    ev.action_source = "telegram";
    assert_null (rst_meta_event_json (&ev, err, sizeof err));
    ev.action_source = "chat";
    ev.event_id = NULL;
    assert_null (rst_meta_event_json (&ev, err, sizeof err));
    ev.event_id = "x";
    ev.event_time = time (NULL) + 3600;
    json = rst_meta_event_json (&ev, err, sizeof err);
    root = s_parse (json);
    assert_true (cJSON_GetObjectItem (root, "event_time")->valuedouble <= (double) time (NULL));
    cJSON_Delete (root);
    free (json);
}

static void
test_body (void **state)
{
    (void) state;
    const char *events[] = {"{\"a\":1}", "{\"b\":2}"};
    size_t len;
    char *body = rst_meta_body (events, 2, NULL, &len);
    assert_string_equal (body, "{\"data\":[{\"a\":1},{\"b\":2}],\"partner_agent\":\"rastro\"}");
    free (body);
    body = rst_meta_body (events, 1, "T\"X", &len);
    assert_string_equal (body,
                         "{\"data\":[{\"a\":1}],\"partner_agent\":\"rastro\",\"test_event_code\":\"T\\\"X\"}");
    free (body);
    assert_null (rst_meta_body (events, 0, NULL, &len));
    assert_null (rst_meta_body (events, RST_META_MAX_EVENTS + 1, NULL, &len));
}

//  Classifies an error reply with CODE/SUBCODE at HTTP STATUS.
static void
s_error (long status, int code, int subcode, const char *extra, rst_meta_result_t *r)
{
    char body[512];
    snprintf (body, sizeof body,
              "{\"error\":{\"message\":\"m\",\"type\":\"OAuthException\",\"code\":%d,"
              "\"error_subcode\":%d%s,\"fbtrace_id\":\"TR%d\"}}",
              code, subcode, extra ? extra : "", code);
    rst_meta_classify (status, NULL, body, strlen (body), NULL, NULL, r);
    assert_int_equal (r->code, code);
    assert_int_equal (r->subcode, subcode);
    char trace[32];
    snprintf (trace, sizeof trace, "TR%d", code);
    assert_string_equal (r->fbtrace_id, trace);
}

static void
test_classify_table (void **state)
{
    (void) state;
    rst_meta_result_t r;
    //  Retry column.
    rst_meta_classify (0, "Timeout was reached", NULL, 0, NULL, NULL, &r);
    assert_int_equal (r.verdict, RST_META_RETRY);
    assert_int_equal (r.http_status, 0);
    assert_non_null (strstr (r.message, "Timeout"));
    rst_meta_classify (0, "Connection refused", NULL, 0, NULL, NULL, &r);
    assert_int_equal (r.verdict, RST_META_RETRY);
    rst_meta_classify (503, NULL, "<html>bad gateway</html>", 24, NULL, NULL, &r);
    assert_int_equal (r.verdict, RST_META_RETRY);
    assert_false (r.throttled);
    s_error (500, 1, 0, NULL, &r);
    assert_int_equal (r.verdict, RST_META_RETRY);
    s_error (503, 2, 0, NULL, &r);
    assert_int_equal (r.verdict, RST_META_RETRY);
    s_error (400, 999, 0, ",\"is_transient\":true", &r);
    assert_int_equal (r.verdict, RST_META_RETRY);
    int throttles[] = {4, 17, 32, 341, 613, 80000, 80004, 80014, 368};
    for (size_t i = 0; i < sizeof throttles / sizeof throttles[0]; i++) {
        s_error (400, throttles[i], throttles[i] == 17 ? 2446079 : 0, NULL, &r);
        assert_int_equal (r.verdict, RST_META_RETRY);
        assert_true (r.throttled);
    }
    s_error (400, 368, 0, NULL, &r);
    assert_true (r.wait_ms >= 3600 * 1000);
    s_error (400, 613, 1487632, NULL, &r);
    assert_true (r.wait_ms >= 3600 * 1000);
    //  Never-retry column.
    s_error (400, 100, 2804003, NULL, &r);
    assert_int_equal (r.verdict, RST_META_REJECTED);
    assert_true (r.split);
    s_error (400, 100, 33, NULL, &r);
    assert_int_equal (r.verdict, RST_META_REJECTED);
    assert_false (r.split);
    int permanent[] = {190, 102, 3, 10, 200, 250, 299, 2635, 105};
    for (size_t i = 0; i < sizeof permanent / sizeof permanent[0]; i++) {
        s_error (400, permanent[i], permanent[i] == 190 ? 463 : 0, NULL, &r);
        assert_int_equal (r.verdict, RST_META_REJECTED);
        assert_false (r.split);
        assert_false (r.throttled);
    }
    //  80015 is outside the BUC range: an unknown 4xx code is permanent.
    s_error (400, 80015, 0, NULL, &r);
    assert_int_equal (r.verdict, RST_META_REJECTED);
    s_error (500, 12345, 0, NULL, &r);
    assert_int_equal (r.verdict, RST_META_RETRY);
    //  The reference's own bodies.
    const char *token = "{\"error\":{\"message\":\"Error validating access token: Session has "
                        "expired on Tuesday, 01-Sep-26 10:00:00 PDT.\",\"type\":\"OAuthException\","
                        "\"code\":190,\"error_subcode\":463,\"fbtrace_id\":\"B9sLm0qT4\"}}";
    rst_meta_classify (400, NULL, token, strlen (token), NULL, NULL, &r);
    assert_int_equal (r.verdict, RST_META_REJECTED);
    assert_string_equal (r.fbtrace_id, "B9sLm0qT4");
    assert_non_null (strstr (r.message, "access token"));
    const char *old = "{\"error\":{\"message\":\"Invalid parameter\",\"type\":\"OAuthException\","
                      "\"code\":100,\"error_subcode\":2804003,\"is_transient\":false,"
                      "\"error_user_title\":\"Event Timestamp Too Old\",\"error_user_msg\":"
                      "\"within 7 days\",\"fbtrace_id\":\"D1kQz5\"}}";
    rst_meta_classify (400, NULL, old, strlen (old), NULL, NULL, &r);
    assert_int_equal (r.verdict, RST_META_REJECTED);
    assert_true (r.split);
    assert_non_null (strstr (r.message, "within 7 days"));
}

static void
test_classify_malformed (void **state)
{
    (void) state;
    rst_meta_result_t r;
    const char *cases[] = {"", "not json", "[]", "{}", "{\"events_received\":\"1\"}",
                           "{\"events_received\":", "null"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rst_meta_classify (200, NULL, cases[i], strlen (cases[i]), NULL, NULL, &r);
        assert_int_equal (r.verdict, RST_META_RETRY);
    }
    rst_meta_classify (200, NULL, NULL, 0, NULL, NULL, &r);
    assert_int_equal (r.verdict, RST_META_RETRY);
    //  Error bodies that are not Meta's: retried, never rejected for good.
    rst_meta_classify (400, NULL, "{\"error\":\"x\"}", 13, NULL, NULL, &r);
    assert_int_equal (r.verdict, RST_META_RETRY);
    rst_meta_classify (429, NULL, "slow down", 9, NULL, "7", &r);
    assert_int_equal (r.verdict, RST_META_RETRY);
    assert_true (r.throttled);
    assert_int_equal (r.wait_ms, 7000);
    //  A body with the length given (not NUL-terminated).
    const char *ok = "{\"events_received\":3}garbage";
    rst_meta_classify (200, NULL, ok, 21, NULL, NULL, &r);
    assert_int_equal (r.verdict, RST_META_ACCEPTED);
    assert_int_equal (r.events_received, 3);
}

static void
test_wait_hints (void **state)
{
    (void) state;
    rst_meta_result_t r;
    const char *body = "{\"error\":{\"message\":\"(#80004) too many calls\",\"code\":80004,"
                       "\"error_subcode\":2446079,\"fbtrace_id\":\"C3\"}}";
    const char *usage = "{\"1234\":[{\"type\":\"ads_management\",\"call_count\":100,"
                        "\"total_cputime\":10,\"total_time\":10,"
                        "\"estimated_time_to_regain_access\":2},{\"type\":\"custom_audience\","
                        "\"estimated_time_to_regain_access\":5}]}";
    rst_meta_classify (400, NULL, body, strlen (body), usage, NULL, &r);
    assert_int_equal (r.verdict, RST_META_RETRY);
    assert_true (r.throttled);
    assert_int_equal (r.wait_ms, 5 * 60000);
    //  Retry-After wins when longer; garbage hints are ignored.
    rst_meta_classify (400, NULL, body, strlen (body), usage, "600", &r);
    assert_int_equal (r.wait_ms, 600000);
    rst_meta_classify (400, NULL, body, strlen (body), "{not json", "soon", &r);
    assert_int_equal (r.wait_ms, 0);
    rst_meta_classify (400, NULL, body, strlen (body), "{\"1\":[{\"estimated_time_to_regain_access\":0}]}",
                       "-3", &r);
    assert_int_equal (r.wait_ms, 0);
    //  Hints are capped at a day.
    rst_meta_classify (400, NULL, body, strlen (body), NULL, "999999999", &r);
    assert_int_equal (r.wait_ms, 24 * 3600 * 1000LL);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_tutorial),          cmocka_unit_test (test_reference_vectors),
        cmocka_unit_test (test_normalisation),     cmocka_unit_test (test_never_hash_twice),
        cmocka_unit_test (test_website_event),     cmocka_unit_test (test_chat_and_purchase),
        cmocka_unit_test (test_body),              cmocka_unit_test (test_classify_table),
        cmocka_unit_test (test_classify_malformed), cmocka_unit_test (test_wait_hints),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
