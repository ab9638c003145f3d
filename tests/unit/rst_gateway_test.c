/*  rst_gateway_test — the gateway module's pure parts: webhooks, credentials, amounts.

    A gateway webhook is only a hint (telegram-and-pix.md §2): the front
    parses it to learn which charge it is about, authenticates it with the
    account's secret, and the bots node then re-reads that charge. These
    tests pin the parsing and authentication of all three gateways with
    known-answer vectors (HMAC-SHA256 values computed independently with
    Python's hmac module when this file was written), the credentials check
    (whose messages never repeat a secret), the centavos <-> reais
    conversions, and how each adapter's field table reads the charge
    objects of create and read replies. The HTTP side is rst_gateway_http_test.c, against
    tests/fakes/fake_gateways.py.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "rst_gateway.h"
#include "rst_gateway_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOW 1767225600              //  2026-01-01T00:00:00Z
#define MP_SECRET "mp-webhook-secret-1"
#define MP_REQ_ID "bb56a2f1-6aae-46ac-982e-9dcd3581d08e"
//  python3: hmac.new(b"mp-webhook-secret-1", MANIFEST, hashlib.sha256).hexdigest()
//  "id:123456789;request-id:bb56a2f1-6aae-46ac-982e-9dcd3581d08e;ts:1767225600;"
#define MP_V1_FULL "0e36a0046efd4bbabb55a11759ef18ae70e54b48f1aa049e2172e8389d96c561"
//  "id:123456789;ts:1767225600;"
#define MP_V1_NO_REQID "d23d1a8f1119c14d2db9c8250529690d8190888b825da25a9fcf71afdf3cece6"
//  "request-id:req-1;ts:1767225600;"
#define MP_V1_NO_ID "bc6d31c777346fe1ed2038a3a6685e133af54bcb64f666a2594b63958f3bf94d"
//  "id:123456789;request-id:req-1;ts:1767225600123;"
#define MP_V1_MS "ccc70e206eea9bf03781f46564ef7e317f38c26bf8827846ef29b88b62ea247f"
//  "id:abc123def;request-id:req-1;ts:1767225600;"
#define MP_V1_LOWER "0495034f0ed90c4545f53149c5bf6fa67a3f4e37030e6fffbcd3d9abcae30df3"

#define MP_BODY                                                                                \
    "{\"action\":\"payment.updated\",\"api_version\":\"v1\",\"data\":{\"id\":\"123456789\"},"  \
    "\"date_created\":\"2026-01-01T00:00:00Z\",\"id\":12345,\"live_mode\":true,"               \
    "\"type\":\"payment\",\"user_id\":44444}"

//  A webhook under construction: up to 4 headers.
typedef struct {
    rst_gw_webhook_t wh;
    rst_gw_header_t headers[4];
} s_hook_t;

static void
s_hook (s_hook_t *h, rst_gw_kind_t kind, const char *query, const char *body)
{
    memset (h, 0, sizeof *h);
    h->wh.kind = kind;
    h->wh.query = query;
    h->wh.query_len = query ? strlen (query) : 0;
    h->wh.body = body;
    h->wh.body_len = body ? strlen (body) : 0;
    h->wh.headers = h->headers;
    h->wh.now_s = NOW;
}

static void
s_header (s_hook_t *h, const char *name, const char *value)
{
    assert_true (h->wh.nheaders < 4);
    rst_gw_header_t *hd = &h->headers[h->wh.nheaders++];
    hd->name = name;
    hd->name_len = strlen (name);
    hd->value = value;
    hd->value_len = strlen (value);
}

//  Parses and authenticates; returns the auth result (-2 when the parse was not CHARGE).
static int
s_verify (s_hook_t *h, const char *secret, char *err, size_t errlen)
{
    rst_gw_notice_t notice;
    if (rst_gateway_webhook_parse (&h->wh, &notice, err, errlen) != RST_GW_WEBHOOK_CHARGE)
        return -2;
    return rst_gateway_webhook_auth (&h->wh, &notice, secret, err, errlen);
}

//  The tour: a Mercado Pago payment notification, as MP sends it, is parsed
//  to the payment id and authenticated with the account's webhook secret.
static void
test_mercadopago_tour (void **state)
{
    (void) state;
    s_hook_t h;
    s_hook (&h, RST_GW_MERCADOPAGO, "data.id=123456789&type=payment", MP_BODY);
    s_header (&h, "x-signature", "ts=1767225600,v1=" MP_V1_FULL);
    s_header (&h, "x-request-id", MP_REQ_ID);

    rst_gw_notice_t notice;
    char err[256] = "";
    assert_int_equal (rst_gateway_webhook_parse (&h.wh, &notice, err, sizeof err),
                      RST_GW_WEBHOOK_CHARGE);
    assert_string_equal (notice.charge_id, "123456789");
    assert_string_equal (notice.status_hint, "payment.updated");   //  MP sends no status
    assert_int_equal (rst_gateway_webhook_auth (&h.wh, &notice, MP_SECRET, err, sizeof err), 0);

    //  The secret comes from the account's credentials.
    char *secret = rst_gateway_webhook_secret (
        RST_GW_MERCADOPAGO, "{\"access_token\":\"APP_USR-1\",\"webhook_secret\":\"" MP_SECRET "\"}");
    assert_non_null (secret);
    assert_string_equal (secret, MP_SECRET);
    assert_int_equal (rst_gateway_webhook_auth (&h.wh, &notice, secret, err, sizeof err), 0);
    free (secret);

    //  Another account's secret does not authenticate it.
    err[0] = 0;
    assert_int_equal (rst_gateway_webhook_auth (&h.wh, &notice, "another-secret", err, sizeof err),
                      -1);
    assert_non_null (strstr (err, "does not match"));
}

static void
test_kind_names (void **state)
{
    (void) state;
    for (int k = 0; k < RST_GW_KINDS; k++)
        assert_int_equal (rst_gateway_kind_parse (rst_gateway_kind_name (k)), k);
    assert_string_equal (rst_gateway_kind_name (RST_GW_MERCADOPAGO), "mercadopago");
    assert_string_equal (rst_gateway_kind_name (RST_GW_PUSHINPAY), "pushinpay");
    assert_string_equal (rst_gateway_kind_name (RST_GW_SYNCPAY), "syncpay");
    assert_int_equal (rst_gateway_kind_parse ("MercadoPago"), -1);
    assert_int_equal (rst_gateway_kind_parse ("asaas"), -1);
    assert_int_equal (rst_gateway_kind_parse (""), -1);
    assert_int_equal (rst_gateway_kind_parse (NULL), -1);
    assert_string_equal (rst_gateway_kind_name ((rst_gw_kind_t) 7), "unknown");
}

static void
test_mercadopago_signature_forms (void **state)
{
    (void) state;
    char err[256];
    s_hook_t h;

    //  Parts in the other order, with spaces.
    s_hook (&h, RST_GW_MERCADOPAGO, "data.id=123456789&type=payment", MP_BODY);
    s_header (&h, "X-Signature", " v1=" MP_V1_FULL " , ts=1767225600 ");
    s_header (&h, "x-request-id", MP_REQ_ID);
    assert_int_equal (s_verify (&h, MP_SECRET, err, sizeof err), 0);

    //  Uppercase hex is the same signature.
    char upper[] = "ts=1767225600,v1=" MP_V1_FULL;
    for (char *c = upper; *c; c++)
        if (*c >= 'a' && *c <= 'f')
            *c = (char) (*c - 'a' + 'A');
    s_hook (&h, RST_GW_MERCADOPAGO, "data.id=123456789&type=payment", MP_BODY);
    s_header (&h, "x-signature", upper);
    s_header (&h, "x-request-id", MP_REQ_ID);
    assert_int_equal (s_verify (&h, MP_SECRET, err, sizeof err), 0);

    //  No x-request-id: its part is dropped from the manifest.
    s_hook (&h, RST_GW_MERCADOPAGO, "data.id=123456789&type=payment", MP_BODY);
    s_header (&h, "x-signature", "ts=1767225600,v1=" MP_V1_NO_REQID);
    assert_int_equal (s_verify (&h, MP_SECRET, err, sizeof err), 0);
    //  ...and the full signature no longer matches.
    s_hook (&h, RST_GW_MERCADOPAGO, "data.id=123456789&type=payment", MP_BODY);
    s_header (&h, "x-signature", "ts=1767225600,v1=" MP_V1_FULL);
    assert_int_equal (s_verify (&h, MP_SECRET, err, sizeof err), -1);

    //  No data.id in the query (the id comes from the body): "id:" is dropped.
    s_hook (&h, RST_GW_MERCADOPAGO, "type=payment", MP_BODY);
    s_header (&h, "x-signature", "ts=1767225600,v1=" MP_V1_NO_ID);
    s_header (&h, "x-request-id", "req-1");
    assert_int_equal (s_verify (&h, MP_SECRET, err, sizeof err), 0);

    //  A millisecond timestamp is used as written in the manifest, and is fresh.
    s_hook (&h, RST_GW_MERCADOPAGO, "data.id=123456789&type=payment", MP_BODY);
    s_header (&h, "x-signature", "ts=1767225600123,v1=" MP_V1_MS);
    s_header (&h, "x-request-id", "req-1");
    assert_int_equal (s_verify (&h, MP_SECRET, err, sizeof err), 0);

    //  An alphanumeric data.id is lowercased in the manifest (auth alone:
    //  a payment id is numeric, so the parse would refuse it).
    s_hook (&h, RST_GW_MERCADOPAGO, "data.id=ABC123Def&type=payment", NULL);
    s_header (&h, "x-signature", "ts=1767225600,v1=" MP_V1_LOWER);
    s_header (&h, "x-request-id", "req-1");
    rst_gw_notice_t notice;
    memset (&notice, 0, sizeof notice);
    assert_int_equal (rst_gateway_webhook_auth (&h.wh, &notice, MP_SECRET, err, sizeof err), 0);
}

static void
test_mercadopago_signature_refused (void **state)
{
    (void) state;
    static const struct {
        const char *signature;      //  NULL = no header
        int64_t now;
        const char *says;
    } cases[] = {
        {"ts=1767225600,v1=" MP_V1_FULL, NOW + RST_GW_WEBHOOK_MAX_SKEW + 1, "away from now"},
        {"ts=1767225600,v1=" MP_V1_FULL, NOW - RST_GW_WEBHOOK_MAX_SKEW - 1, "away from now"},
        //  forged: one digit changed
        {"ts=1767225600,v1=1e36a0046efd4bbabb55a11759ef18ae70e54b48f1aa049e2172e8389d96c561", NOW,
         "does not match"},
        //  replayed with another timestamp
        {"ts=1767225601,v1=" MP_V1_FULL, NOW, "does not match"},
        {NULL, NOW, "no x-signature"},
        {"", NOW, "lacks ts or v1"},
        {"v1=" MP_V1_FULL, NOW, "lacks ts or v1"},
        {"ts=1767225600", NOW, "lacks ts or v1"},
        {"ts=1767225600,v1=" MP_V1_FULL ",ts=1767225600", NOW, "two ts"},
        {"ts=1767225600,v1=abc,v1=" MP_V1_FULL, NOW, "two v1"},
        {"ts=1767225600,v1=zz36a0046efd4bbabb55a11759ef18ae70e54b48f1aa049e2172e8389d96c561", NOW,
         "hex"},
        {"ts=1767225600,v1=" MP_V1_FULL "00", NOW, "hex"},
        {"ts=-1767225600,v1=" MP_V1_FULL, NOW, "bad ts"},
        {"ts=17672256001234567,v1=" MP_V1_FULL, NOW, "bad ts"},
        {"ts=,v1=" MP_V1_FULL, NOW, "bad ts"},
        {NULL, 0, NULL},
    };
    for (int i = 0; cases[i].says; i++) {
        s_hook_t h;
        s_hook (&h, RST_GW_MERCADOPAGO, "data.id=123456789&type=payment", MP_BODY);
        h.wh.now_s = cases[i].now;
        if (cases[i].signature)
            s_header (&h, "x-signature", cases[i].signature);
        s_header (&h, "x-request-id", MP_REQ_ID);
        char err[256] = "";
        if (s_verify (&h, MP_SECRET, err, sizeof err) != -1 || !strstr (err, cases[i].says)) {
            print_error ("case %d: '%s' -> '%s'\n", i,
                         cases[i].signature ? cases[i].signature : "(none)", err);
            fail ();
        }
    }
    //  No secret configured: never authentic.
    s_hook_t h;
    s_hook (&h, RST_GW_MERCADOPAGO, "data.id=123456789&type=payment", MP_BODY);
    s_header (&h, "x-signature", "ts=1767225600,v1=" MP_V1_FULL);
    s_header (&h, "x-request-id", MP_REQ_ID);
    char err[256];
    assert_int_equal (s_verify (&h, NULL, err, sizeof err), -1);
    assert_int_equal (s_verify (&h, "", err, sizeof err), -1);
    //  A different data.id in the query than signed.
    s_hook (&h, RST_GW_MERCADOPAGO, "data.id=123456780&type=payment", NULL);
    s_header (&h, "x-signature", "ts=1767225600,v1=" MP_V1_FULL);
    s_header (&h, "x-request-id", MP_REQ_ID);
    assert_int_equal (s_verify (&h, MP_SECRET, err, sizeof err), -1);
}

static void
test_mercadopago_parse (void **state)
{
    (void) state;
    static const struct {
        const char *query;
        const char *body;
        rst_gw_webhook_kind_t kind;
        const char *id;             //  for CHARGE
    } cases[] = {
        {"data.id=123456789&type=payment", MP_BODY, RST_GW_WEBHOOK_CHARGE, "123456789"},
        {"data.id=123456789&type=payment", NULL, RST_GW_WEBHOOK_CHARGE, "123456789"},
        {"type=payment&data.id=123456789", "", RST_GW_WEBHOOK_CHARGE, "123456789"},
        {"data%2Eid=12345%36789&type=payment", NULL, RST_GW_WEBHOOK_CHARGE, "123456789"},
        {NULL, MP_BODY, RST_GW_WEBHOOK_CHARGE, "123456789"},
        {NULL, "{\"type\":\"payment\",\"data\":{\"id\":987}}", RST_GW_WEBHOOK_CHARGE, "987"},
        {"id=555&topic=payment", NULL, RST_GW_WEBHOOK_CHARGE, "555"},       //  old IPN
        {"data.id=1&type=merchant_order", NULL, RST_GW_WEBHOOK_IGNORED, NULL},
        {"id=1&topic=merchant_order", NULL, RST_GW_WEBHOOK_IGNORED, NULL},
        {NULL, "{\"type\":\"subscription_preapproval\",\"data\":{\"id\":\"x\"}}",
         RST_GW_WEBHOOK_IGNORED, NULL},
        {"data.id=123456789", NULL, RST_GW_WEBHOOK_BAD, NULL},             //  no type
        {"type=payment", NULL, RST_GW_WEBHOOK_BAD, NULL},                  //  no id
        {"data.id=123456789&type=payment", "{not json", RST_GW_WEBHOOK_BAD, NULL},
        {"data.id=123456789&type=payment", "[1,2]", RST_GW_WEBHOOK_BAD, NULL},
        {"data.id=123456789&type=payment", "{\"type\":\"payment\",\"data\":{\"id\":\"1\"}}",
         RST_GW_WEBHOOK_BAD, NULL},                                        //  ids disagree
        {"data.id=1&type=payment", "{\"type\":\"point\"}", RST_GW_WEBHOOK_BAD, NULL},
        {"data.id=12a&type=payment", NULL, RST_GW_WEBHOOK_BAD, NULL},
        {"data.id=../1&type=payment", NULL, RST_GW_WEBHOOK_BAD, NULL},
        {"data.id=12345678901234567890&type=payment", NULL, RST_GW_WEBHOOK_BAD, NULL},
        {"data.id=%zz&type=payment", NULL, RST_GW_WEBHOOK_BAD, NULL},
        {"data.id=1%00&type=payment", NULL, RST_GW_WEBHOOK_BAD, NULL},
        {"data.id=1&type=payment", "{\"type\":\"payment\",\"data\":{\"id\":-4}}",
         RST_GW_WEBHOOK_BAD, NULL},
        {NULL, NULL, 0, NULL},
    };
    for (int i = 0; cases[i].query || cases[i].body; i++) {
        s_hook_t h;
        s_hook (&h, RST_GW_MERCADOPAGO, cases[i].query, cases[i].body);
        rst_gw_notice_t notice;
        char err[256] = "";
        rst_gw_webhook_kind_t kind = rst_gateway_webhook_parse (&h.wh, &notice, err, sizeof err);
        if (kind != cases[i].kind) {
            print_error ("case %d: kind %d, expected %d (%s)\n", i, kind, cases[i].kind, err);
            fail ();
        }
        if (kind == RST_GW_WEBHOOK_CHARGE)
            assert_string_equal (notice.charge_id, cases[i].id);
        else
            assert_string_equal (notice.charge_id, "");
        if (kind == RST_GW_WEBHOOK_BAD)
            assert_true (err[0] != 0);
    }
}

static void
test_body_limit (void **state)
{
    (void) state;
    size_t n = RST_GW_WEBHOOK_MAX_BODY + 1;
    char *body = malloc (n + 1);
    assert_non_null (body);
    memset (body, ' ', n);
    memcpy (body, "{\"id\":\"a\"", 9);
    body[n - 1] = '}';
    body[n] = 0;
    for (int k = 0; k < RST_GW_KINDS; k++) {
        s_hook_t h;
        s_hook (&h, k, "data.id=1&type=payment", body);
        rst_gw_notice_t notice;
        char err[256] = "";
        assert_int_equal (rst_gateway_webhook_parse (&h.wh, &notice, err, sizeof err),
                          RST_GW_WEBHOOK_BAD);
        assert_non_null (strstr (err, "larger"));
        //  One byte less is fine for the JSON gateways.
        h.wh.body_len = n - 1;
        body[n - 2] = '}';
        if (k != RST_GW_MERCADOPAGO)
            assert_int_equal (rst_gateway_webhook_parse (&h.wh, &notice, err, sizeof err),
                              RST_GW_WEBHOOK_CHARGE);
        body[n - 2] = ' ';
    }
    free (body);
}

#define PP_TOKEN "pp-webhook-token-XYZ"

static void
test_pushinpay (void **state)
{
    (void) state;
    char err[256];
    rst_gw_notice_t notice;
    s_hook_t h;

    //  JSON body, as PushinPay posts it.
    const char *json = "{\"id\":\"9c29870c-9f69-4bb6-90d3-2dce9453bb45\",\"status\":\"paid\","
                       "\"value\":1990,\"end_to_end_id\":\"E0000\",\"payer_name\":\"Ana\"}";
    s_hook (&h, RST_GW_PUSHINPAY, NULL, json);
    h.wh.content_type = "application/json";
    h.wh.content_type_len = 16;
    s_header (&h, "x-pushinpay-token", PP_TOKEN);
    assert_int_equal (rst_gateway_webhook_parse (&h.wh, &notice, err, sizeof err),
                      RST_GW_WEBHOOK_CHARGE);
    assert_string_equal (notice.charge_id, "9c29870c-9f69-4bb6-90d3-2dce9453bb45");
    assert_string_equal (notice.status_hint, "paid");
    assert_int_equal (rst_gateway_webhook_auth (&h.wh, &notice, PP_TOKEN, err, sizeof err), 0);

    char *secret = rst_gateway_webhook_secret (
        RST_GW_PUSHINPAY, "{\"token\":\"t\",\"webhook_token\":\"" PP_TOKEN "\"}");
    assert_string_equal (secret, PP_TOKEN);
    free (secret);

    //  Wrong, prefix, longer, case-changed or missing tokens are refused.
    static const char *wrong[] = {"pp-webhook-token-XYz", "pp-webhook-token-XY",
                                  "pp-webhook-token-XYZ ", "PP-WEBHOOK-TOKEN-XYZ", "", NULL};
    for (int i = 0; wrong[i]; i++) {
        s_hook (&h, RST_GW_PUSHINPAY, NULL, json);
        s_header (&h, "x-pushinpay-token", wrong[i]);
        assert_int_equal (s_verify (&h, PP_TOKEN, err, sizeof err), -1);
    }
    s_hook (&h, RST_GW_PUSHINPAY, NULL, json);
    assert_int_equal (s_verify (&h, PP_TOKEN, err, sizeof err), -1);
    assert_non_null (strstr (err, "no x-pushinpay-token"));
    s_hook (&h, RST_GW_PUSHINPAY, NULL, json);
    s_header (&h, "x-pushinpay-token", PP_TOKEN);
    assert_int_equal (s_verify (&h, NULL, err, sizeof err), -1);

    //  Form-urlencoded, by Content-Type and by sniffing.
    const char *form = "id=9C29870C-9F69&status=paid&value=1990&payer_name=Ana+Maria";
    s_hook (&h, RST_GW_PUSHINPAY, NULL, form);
    h.wh.content_type = "application/x-www-form-urlencoded; charset=UTF-8";
    h.wh.content_type_len = strlen (h.wh.content_type);
    s_header (&h, "x-pushinpay-token", PP_TOKEN);
    assert_int_equal (s_verify (&h, PP_TOKEN, err, sizeof err), 0);
    s_hook (&h, RST_GW_PUSHINPAY, NULL, form);
    assert_int_equal (rst_gateway_webhook_parse (&h.wh, &notice, err, sizeof err),
                      RST_GW_WEBHOOK_CHARGE);
    assert_string_equal (notice.charge_id, "9C29870C-9F69");
    assert_string_equal (notice.status_hint, "paid");

    static const char *bad[] = {"", "status=paid", "id=", "id=a/b", "id=%",
                                "{\"status\":\"paid\"}", "{\"id\":\"\"}", "{\"id\":{}}",
                                "{\"id\":\"a\"", " [\"id\"]", NULL};
    for (int i = 0; bad[i]; i++) {
        s_hook (&h, RST_GW_PUSHINPAY, NULL, bad[i]);
        err[0] = 0;
        if (rst_gateway_webhook_parse (&h.wh, &notice, err, sizeof err) != RST_GW_WEBHOOK_BAD) {
            print_error ("bad[%d] '%s' was accepted\n", i, bad[i]);
            fail ();
        }
        assert_true (err[0] != 0);
    }
}

static void
test_syncpay (void **state)
{
    (void) state;
    char err[256];
    rst_gw_notice_t notice;
    s_hook_t h;
    static const struct {
        const char *body;
        const char *id;             //  NULL = BAD
        const char *hint;
    } cases[] = {
        {"{\"data\":{\"id\":\"b1a2c3d4-0000-4000-8000-000000000001\",\"status\":\"completed\","
         "\"amount\":19.9,\"final_amount\":19.5,\"client\":{\"name\":\"Ana\"}}}",
         "b1a2c3d4-0000-4000-8000-000000000001", "completed"},
        {"{\"identifier\":\"abc-123\",\"status\":\"pending\"}", "abc-123", "pending"},
        {"{\"data\":{\"identifier\":\"abc-124\"}}", "abc-124", ""},
        {"{\"data\":{\"id\":42,\"status\":\"med\"}}", "42", "med"},
        {"{\"data\":{\"status\":\"completed\"}}", NULL, NULL},
        {"{\"identifier\":\"a b\"}", NULL, NULL},
        {"{\"identifier\":\"\"}", NULL, NULL},
        {"identifier=abc", NULL, NULL},
        {"[]", NULL, NULL},
        {"", NULL, NULL},
        {NULL, NULL, NULL},
    };
    for (int i = 0; cases[i].body; i++) {
        s_hook (&h, RST_GW_SYNCPAY, NULL, cases[i].body);
        rst_gw_webhook_kind_t kind = rst_gateway_webhook_parse (&h.wh, &notice, err, sizeof err);
        if (!cases[i].id) {
            assert_int_equal (kind, RST_GW_WEBHOOK_BAD);
            continue;
        }
        assert_int_equal (kind, RST_GW_WEBHOOK_CHARGE);
        assert_string_equal (notice.charge_id, cases[i].id);
        assert_string_equal (notice.status_hint, cases[i].hint);
        //  No authentication exists: always 0 (the charge is re-read).
        assert_int_equal (rst_gateway_webhook_auth (&h.wh, &notice, NULL, err, sizeof err), 0);
    }
    assert_null (rst_gateway_webhook_secret (RST_GW_SYNCPAY,
                                             "{\"client_id\":\"a\",\"client_secret\":\"b\"}"));
}

static void
test_credentials (void **state)
{
    (void) state;
    static const struct {
        rst_gw_kind_t kind;
        const char *json;
        const char *says;           //  NULL = valid
    } cases[] = {
        {RST_GW_MERCADOPAGO, "{\"access_token\":\"APP_USR-123\",\"webhook_secret\":\"wsk\"}", NULL},
        {RST_GW_MERCADOPAGO,
         "{\"access_token\":\"APP_USR-123\",\"webhook_secret\":\"wsk\",\"payer_email\":\"a@b.c\"}",
         NULL},
        {RST_GW_PUSHINPAY, "{\"token\":\"123|abc\",\"webhook_token\":\"wt\"}", NULL},
        {RST_GW_SYNCPAY, "{\"client_id\":\"id-1\",\"client_secret\":\"SECRET-VALUE-7\"}", NULL},
        {RST_GW_SYNCPAY,
         "{\"client_id\":\"id-1\",\"client_secret\":\"s\",\"client\":{\"name\":\"Ana\",\"cpf\":"
         "\"12345678909\",\"email\":\"a@b.c\",\"phone\":\"11999999999\"}}",
         NULL},
        {RST_GW_MERCADOPAGO, "{\"access_token\":\"SECRET-VALUE-7\"}", "\"webhook_secret\""},
        {RST_GW_MERCADOPAGO, "{\"access_token\":\"\",\"webhook_secret\":\"w\"}", "empty"},
        {RST_GW_MERCADOPAGO, "{\"access_token\":42,\"webhook_secret\":\"w\"}", "string"},
        {RST_GW_MERCADOPAGO, "{\"access_token\":\"SECRET-VALUE-7\\n\",\"webhook_secret\":\"w\"}",
         "control"},
        {RST_GW_MERCADOPAGO,
         "{\"access_token\":\"SECRET-VALUE-7\",\"webhook_secret\":\"w\",\"payer_email\":\"nope\"}",
         "payer_email"},
        {RST_GW_PUSHINPAY, "{\"token\":\"SECRET-VALUE-7\"}", "\"webhook_token\""},
        {RST_GW_PUSHINPAY, "[\"SECRET-VALUE-7\"]", "JSON object"},
        {RST_GW_PUSHINPAY, "{\"token\":\"SECRET-VALUE-7\"", "JSON object"},
        {RST_GW_PUSHINPAY, "", "empty"},
        {RST_GW_SYNCPAY, "{\"client_secret\":\"SECRET-VALUE-7\"}", "\"client_id\""},
        {RST_GW_SYNCPAY,
         "{\"client_id\":\"a\",\"client_secret\":\"SECRET-VALUE-7\",\"client\":{\"name\":\"A\","
         "\"cpf\":\"123\",\"email\":\"e\",\"phone\":\"p\"}}",
         "client.cpf"},
        {RST_GW_SYNCPAY, "{\"client_id\":\"a\",\"client_secret\":\"SECRET-VALUE-7\",\"client\":1}",
         "\"client\""},
        {0, NULL, NULL},
    };
    for (int i = 0; cases[i].json; i++) {
        char err[256] = "";
        int rc = rst_gateway_credentials_check (cases[i].kind, cases[i].json, err, sizeof err);
        if (!cases[i].says) {
            if (rc != 0) {
                print_error ("case %d refused: %s\n", i, err);
                fail ();
            }
            continue;
        }
        if (rc != -1 || !strstr (err, cases[i].says)) {
            print_error ("case %d: rc %d, '%s' (expected '%s')\n", i, rc, err, cases[i].says);
            fail ();
        }
        assert_null (strstr (err, "SECRET-VALUE"));
    }
    //  A too long value, named but not shown.
    char json[1200];
    char big[RST_GW_FIELD_MAX + 2];
    memset (big, 'S', sizeof big - 1);
    big[sizeof big - 1] = 0;
    snprintf (json, sizeof json, "{\"token\":\"%s\",\"webhook_token\":\"w\"}", big);
    char err[256] = "";
    assert_int_equal (rst_gateway_credentials_check (RST_GW_PUSHINPAY, json, err, sizeof err), -1);
    assert_non_null (strstr (err, "\"token\""));
    assert_null (strstr (err, "SSSS"));
    assert_int_equal (rst_gateway_credentials_check ((rst_gw_kind_t) 9, "{}", err, sizeof err),
                      -1);
    assert_int_equal (rst_gateway_credentials_check (RST_GW_PUSHINPAY, NULL, err, sizeof err), -1);

    assert_null (rst_gateway_webhook_secret (RST_GW_MERCADOPAGO, "not json"));
    assert_null (rst_gateway_webhook_secret (RST_GW_MERCADOPAGO, "{\"access_token\":\"a\"}"));
    assert_null (rst_gateway_webhook_secret (RST_GW_MERCADOPAGO, NULL));

    //  rst_gateway_new checks the same way, and never echoes a secret.
    err[0] = 0;
    rst_gateway_t *gw = rst_gateway_new (RST_GW_SYNCPAY, "{\"client_secret\":\"SECRET-VALUE-7\"}",
                                         "http://127.0.0.1:1", err, sizeof err);
    assert_null (gw);
    assert_non_null (strstr (err, "client_id"));
    assert_null (strstr (err, "SECRET-VALUE"));
    gw = rst_gateway_new (RST_GW_PUSHINPAY, "{\"token\":\"t\",\"webhook_token\":\"w\"}",
                          "ftp://x", err, sizeof err);
    assert_null (gw);
    assert_non_null (strstr (err, "http"));
}

//  Arguments are checked before any request (the URL points nowhere).
static void
test_request_checks (void **state)
{
    (void) state;
    char err[256];
    rst_gateway_t *gw
        = rst_gateway_new (RST_GW_MERCADOPAGO,
                           "{\"access_token\":\"SECRET-VALUE-7\",\"webhook_secret\":\"w\"}",
                           "http://127.0.0.1:1/", err, sizeof err);
    assert_non_null (gw);
    assert_int_equal (rst_gateway_kind (gw), RST_GW_MERCADOPAGO);
    rst_charge_t charge;
    rst_charge_request_t req = {.amount_cents = 1990, .description = "Curso",
                                .reference = "42", .idempotency_key = NULL};
    assert_int_equal (rst_gateway_create (gw, &req, &charge, err, sizeof err), RST_GW_PERMANENT);
    assert_non_null (strstr (err, "idempotency"));
    req.idempotency_key = "key\r\nX-Evil: 1";
    assert_int_equal (rst_gateway_create (gw, &req, &charge, err, sizeof err), RST_GW_PERMANENT);
    req.idempotency_key = "k-1";
    req.amount_cents = 0;
    assert_int_equal (rst_gateway_create (gw, &req, &charge, err, sizeof err), RST_GW_PERMANENT);
    req.amount_cents = 1990;
    req.webhook_url = "javascript:alert(1)";
    assert_int_equal (rst_gateway_create (gw, &req, &charge, err, sizeof err), RST_GW_PERMANENT);
    req.webhook_url = NULL;

    static const char *bad_ids[] = {"", "..", "1/2", "1?x=2", "1 2", "abc", NULL};
    for (int i = 0; bad_ids[i]; i++) {
        assert_int_equal (rst_gateway_read (gw, bad_ids[i], &charge, err, sizeof err),
                          RST_GW_PERMANENT);
        assert_null (charge.pix_code);
    }
    assert_int_equal (rst_gateway_read (gw, NULL, &charge, err, sizeof err), RST_GW_PERMANENT);

    //  Nobody listens on port 1: a connection error is transient, and the
    //  message names the gateway without the token.
    rst_gateway_set_timeout (gw, 2000);
    err[0] = 0;
    assert_int_equal (rst_gateway_create (gw, &req, &charge, err, sizeof err), RST_GW_TRANSIENT);
    assert_non_null (strstr (err, "Mercado Pago"));
    assert_null (strstr (err, "SECRET-VALUE"));
    assert_int_equal (rst_gateway_read (gw, "123", &charge, err, sizeof err), RST_GW_TRANSIENT);

    //  Should a gateway ever echo a credential, it is masked.
    char msg[128] = "HTTP 400: token SECRET-VALUE-7 is invalid (SECRET-VALUE-7)";
    rst_gw_scrub (gw, msg, sizeof msg);
    assert_string_equal (msg, "HTTP 400: token *** is invalid (***)");
    rst_gateway_destroy (&gw);
    assert_null (gw);
    rst_gateway_destroy (&gw);

    //  The base URL comes from the environment when not given.
    setenv ("RASTRO_GATEWAY_PUSHINPAY_URL", "gopher://x", 1);
    gw = rst_gateway_new (RST_GW_PUSHINPAY, "{\"token\":\"t\",\"webhook_token\":\"w\"}", NULL,
                          err, sizeof err);
    assert_null (gw);
    assert_non_null (strstr (err, "RASTRO_GATEWAY_PUSHINPAY_URL"));
    unsetenv ("RASTRO_GATEWAY_PUSHINPAY_URL");
    gw = rst_gateway_new (RST_GW_PUSHINPAY, "{\"token\":\"t\",\"webhook_token\":\"w\"}", NULL,
                          err, sizeof err);
    assert_non_null (gw);
    rst_gateway_destroy (&gw);

    rst_charge_t zero = {0};
    rst_charge_clear (&zero);
    rst_charge_clear (NULL);
}

#define MP_PAYMENT(id, status, amount, extra)                                                  \
    "{\"id\":" id ",\"status\":\"" status "\",\"transaction_amount\":" amount                  \
    ",\"point_of_interaction\":{\"transaction_data\":{\"qr_code\":\"00020126MP\"}}" extra "}"

//  Charge objects as the gateways answer them, read by each adapter's field
//  table (rst_gw_charge_parse): ids, statuses, units, nested codes, expiry,
//  and the refusals (with the words the message must hold).
static void
test_charge_objects (void **state)
{
    (void) state;
    static const char *const creds[RST_GW_KINDS] = {
        [RST_GW_MERCADOPAGO] = "{\"access_token\":\"a\",\"webhook_secret\":\"w\"}",
        [RST_GW_PUSHINPAY] = "{\"token\":\"t\",\"webhook_token\":\"w\"}",
        [RST_GW_SYNCPAY] = "{\"client_id\":\"c\",\"client_secret\":\"s\"}",
    };
    static const struct {
        rst_gw_kind_t kind;
        const char *json;
        const char *asked;          //  the id a read asked for; NULL: a create (code required)
        rst_gw_result_t rc;
        const char *id;             //  OK: the charge's id; else words of the message
        rst_charge_status_t status;
        int64_t cents;
        const char *code;           //  NULL: none
        int64_t expires_at;
    } cases[] = {
        //  Mercado Pago: reais, the code three objects down, a local expiry time.
        {RST_GW_MERCADOPAGO,
         MP_PAYMENT ("1310000001", "pending", "19.9",
                     ",\"date_of_expiration\":\"2024-01-01T12:00:00.000-03:00\""),
         NULL, RST_GW_OK, "1310000001", RST_CHARGE_PENDING, 1990, "00020126MP", 1704121200},
        {RST_GW_MERCADOPAGO, MP_PAYMENT ("1310000001", "APPROVED", "\"5\"", ""), "1310000001",
         RST_GW_OK, "1310000001", RST_CHARGE_PAID, 500, "00020126MP", 0},
        {RST_GW_MERCADOPAGO, MP_PAYMENT ("7", "in_mediation", "1", ",\"date_of_expiration\":\"x\""),
         "7", RST_GW_OK, "7", RST_CHARGE_REFUNDED, 100, "00020126MP", 0},
        {RST_GW_MERCADOPAGO, MP_PAYMENT ("7", "weird", "1", ""), "7", RST_GW_OK, "7",
         RST_CHARGE_UNKNOWN, 100, "00020126MP", 0},
        {RST_GW_MERCADOPAGO, "{\"id\":7,\"status\":\"expired\"}", "7", RST_GW_OK, "7",
         RST_CHARGE_EXPIRED, -1, NULL, 0},
        {RST_GW_MERCADOPAGO, "{\"id\":7,\"status\":\"pending\"}", NULL, RST_GW_PERMANENT,
         "payment 7 has no qr_code", 0, 0, NULL, 0},
        {RST_GW_MERCADOPAGO, MP_PAYMENT ("8", "approved", "1", ""), "7", RST_GW_PERMANENT,
         "asked for payment 7, got another", 0, 0, NULL, 0},
        {RST_GW_MERCADOPAGO, MP_PAYMENT ("7", "approved", "19.999", ""), "7", RST_GW_PERMANENT,
         "payment 7 transaction_amount", 0, 0, NULL, 0},
        {RST_GW_MERCADOPAGO, "{\"status\":\"approved\"}", "7", RST_GW_PERMANENT,
         "no payment id", 0, 0, NULL, 0},
        {RST_GW_MERCADOPAGO, "[{\"id\":7}]", NULL, RST_GW_PERMANENT, "no payment id", 0, 0, NULL,
         0},
        {RST_GW_MERCADOPAGO, "{\"id\":7,\"status\":3}", "7", RST_GW_PERMANENT,
         "payment 7 has no status", 0, 0, NULL, 0},
        //  PushinPay: centavos; the code is qr_code, else pix_details.emv.
        {RST_GW_PUSHINPAY,
         "{\"id\":\"9c29870c\",\"status\":\"created\",\"value\":1990,\"qr_code\":\"\","
         "\"pix_details\":{\"emv\":\"00020126PP\",\"expiration_date\":\"2024-01-01 15:00:00\"}}",
         NULL, RST_GW_OK, "9c29870c", RST_CHARGE_PENDING, 1990, "00020126PP", 1704121200},
        {RST_GW_PUSHINPAY, "{\"id\":\"9c\",\"status\":\"paid\",\"value\":\"50\",\"qr_code\":\"Q\"}",
         "9c", RST_GW_OK, "9c", RST_CHARGE_PAID, 50, "Q", 0},
        {RST_GW_PUSHINPAY, "{\"id\":\"9c\",\"status\":\"paid\",\"value\":19.9}", "9c",
         RST_GW_PERMANENT, "transaction 9c value", 0, 0, NULL, 0},
        {RST_GW_PUSHINPAY, "{\"id\":\"a/b\",\"status\":\"paid\"}", "9c", RST_GW_PERMANENT,
         "no transaction id", 0, 0, NULL, 0},
        //  SyncPay: reais; a read's reply may leave the identifier out.
        {RST_GW_SYNCPAY, "{\"status\":\"completed\",\"amount\":\"25.90\",\"pix_code\":\"S\"}",
         "abc-1", RST_GW_OK, "abc-1", RST_CHARGE_PAID, 2590, "S", 0},
        {RST_GW_SYNCPAY, "{\"identifier\":\"abc-1\",\"status\":\"med\",\"final_amount\":19.5}",
         "abc-1", RST_GW_OK, "abc-1", RST_CHARGE_REFUNDED, 1950, NULL, 0},
        {RST_GW_SYNCPAY, "{\"id\":\"abc-2\",\"status\":\"pending\"}", "abc-1",
         RST_GW_PERMANENT, "asked for transaction abc-1, got another", 0, 0, NULL, 0},
        {RST_GW_SYNCPAY, "{\"identifier\":\"a b\",\"status\":\"pending\"}", "abc-1",
         RST_GW_PERMANENT, "got another", 0, 0, NULL, 0},
        {RST_GW_SYNCPAY, "{\"identifier\":\"abc-1\"}", "abc-1", RST_GW_PERMANENT,
         "transaction abc-1 has no status", 0, 0, NULL, 0},
        {RST_GW_SYNCPAY, "{\"status\":\"failed\",\"amount\":-1}", "abc-1", RST_GW_PERMANENT,
         "transaction abc-1 amount", 0, 0, NULL, 0},
    };
    rst_gateway_t *gw[RST_GW_KINDS];
    char err[256];
    for (int k = 0; k < RST_GW_KINDS; k++) {
        gw[k] = rst_gateway_new (k, creds[k], "http://127.0.0.1:1", err, sizeof err);
        assert_non_null (gw[k]);
    }
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *obj = cJSON_Parse (cases[i].json);
        assert_non_null (obj);
        rst_charge_t charge = {0};
        err[0] = 0;
        rst_gw_result_t rc = rst_gw_charge_parse (gw[cases[i].kind], obj, cases[i].asked,
                                                  cases[i].asked == NULL, &charge, err, sizeof err);
        if (rc != cases[i].rc || (rc != RST_GW_OK && !strstr (err, cases[i].id))) {
            print_error ("case %zu: rc %d, expected %d (%s)\n", i, rc, cases[i].rc, err);
            fail ();
        }
        if (rc == RST_GW_OK) {
            assert_string_equal (charge.id, cases[i].id);
            assert_int_equal (charge.status, cases[i].status);
            assert_int_equal (charge.amount_cents, cases[i].cents);
            assert_int_equal (charge.expires_at, cases[i].expires_at);
            if (cases[i].code)
                assert_string_equal (charge.pix_code, cases[i].code);
            else
                assert_null (charge.pix_code);
            //  The gateway's own word, as it wrote it.
            const cJSON *status = cJSON_GetObjectItemCaseSensitive (obj, "status");
            assert_string_equal (charge.status_text, status->valuestring);
        }
        rst_charge_clear (&charge);
        cJSON_Delete (obj);
    }
    for (int k = 0; k < RST_GW_KINDS; k++)
        rst_gateway_destroy (&gw[k]);

    static const rst_gw_status_t table[] = {{"paid", RST_CHARGE_PAID}, {NULL, 0}};
    assert_int_equal (rst_gw_status_of (table, "PAID"), RST_CHARGE_PAID);
    assert_int_equal (rst_gw_status_of (table, "paid "), RST_CHARGE_UNKNOWN);
    assert_int_equal (rst_gw_status_of (table, NULL), RST_CHARGE_UNKNOWN);
}

//  A JSON text and the centavos it must read as (-1: refused).
typedef struct {
    const char *json;
    int64_t cents;
} s_json_amount_t;

//  Runs READ (rst_gw_json_reais or rst_gw_json_cents) over CASES (ending with {NULL}).
static void
s_check_json_amounts (int (*read) (const cJSON *, int64_t *), const s_json_amount_t *cases)
{
    for (int i = 0; cases[i].json; i++) {
        cJSON *item = cJSON_Parse (cases[i].json);
        int64_t cents = -7;
        int rc = read (item, &cents);
        if (cases[i].cents < 0)
            assert_int_equal (rc, -1);
        else {
            assert_int_equal (rc, 0);
            assert_int_equal (cents, cases[i].cents);
        }
        cJSON_Delete (item);
    }
}

static void
test_amounts (void **state)
{
    (void) state;
    static const struct {
        int64_t cents;
        const char *text;
    } out[] = {
        {1990, "19.90"}, {5, "0.05"}, {0, "0.00"}, {100, "1.00"}, {50, "0.50"},
        {1999, "19.99"}, {10000000, "100000.00"}, {RST_GW_AMOUNT_MAX_CENTS, "100000000000.00"},
        {-1, NULL},
    };
    for (int i = 0; out[i].text; i++) {
        char buf[32];
        assert_int_equal (rst_gw_cents_to_reais (out[i].cents, buf, sizeof buf), 0);
        assert_string_equal (buf, out[i].text);
        int64_t back = -1;
        assert_int_equal (rst_gw_reais_parse (buf, &back), 0);
        assert_int_equal (back, out[i].cents);
    }
    char buf[8];
    assert_int_equal (rst_gw_cents_to_reais (-1, buf, sizeof buf), -1);
    assert_int_equal (rst_gw_cents_to_reais (RST_GW_AMOUNT_MAX_CENTS + 1, buf, sizeof buf), -1);
    assert_int_equal (rst_gw_cents_to_reais (123456789, buf, 4), -1);    //  does not fit

    //  Into a request body: a JSON number with both decimals, never through a double.
    cJSON *body = cJSON_CreateObject ();
    assert_non_null (rst_gw_add_reais (body, "amount", 1990));
    assert_null (rst_gw_add_reais (body, "bad", -5));
    char *text = cJSON_PrintUnformatted (body);
    assert_string_equal (text, "{\"amount\":19.90}");
    cJSON_free (text);
    cJSON_Delete (body);
    rst_charge_request_t req = {.description = ""};
    assert_string_equal (rst_gw_description (&req), "PIX");
    req.description = "Curso";
    assert_string_equal (rst_gw_description (&req), "Curso");

    static const struct {
        const char *text;
        int64_t cents;              //  -1 = refused
    } in[] = {
        {"19.9", 1990}, {"19.90", 1990}, {"19", 1900}, {"0.05", 5}, {" 19.90 ", 1990},
        {"19.900", 1990}, {"0.1", 10}, {"19.999", -1}, {"19.901", -1}, {"-1", -1},
        {"1e2", -1}, {"", -1}, {".", -1}, {"19.", -1}, {".5", -1}, {"1,50", -1},
        {"19.9x", -1}, {"99999999999999999999", -1}, {NULL, 0},
    };
    for (int i = 0; in[i].text; i++) {
        int64_t cents = -7;
        int rc = rst_gw_reais_parse (in[i].text, &cents);
        if (in[i].cents < 0) {
            if (rc != -1) {
                print_error ("'%s' accepted as %lld\n", in[i].text, (long long) cents);
                fail ();
            }
        }
        else {
            assert_int_equal (rc, 0);
            assert_int_equal (cents, in[i].cents);
        }
    }

    //  JSON numbers: 19.9 is 19.899999... as a double; it must still be 1990.
    static const s_json_amount_t nums[] = {
        {"19.9", 1990}, {"0.29", 29}, {"1.15", 115}, {"4.35", 435}, {"1005.1", 100510},
        {"19", 1900}, {"0", 0}, {"\"19.9\"", 1990}, {"19.999", -1}, {"-0.5", -1},
        {"1e300", -1}, {"true", -1}, {"null", -1}, {"\"abc\"", -1}, {NULL, 0},
    };
    s_check_json_amounts (rst_gw_json_reais, nums);
    //  Every centavo amount up to R$ 1000 survives cents -> double reais -> cents.
    for (int64_t c = 0; c <= 100000; c++) {
        cJSON *item = cJSON_CreateNumber ((double) c / 100.0);
        int64_t back = -1;
        assert_int_equal (rst_gw_json_reais (item, &back), 0);
        assert_int_equal (back, c);
        cJSON_Delete (item);
    }

    static const s_json_amount_t ints[] = {
        {"1990", 1990}, {"\"1990\"", 1990}, {"50", 50}, {"19.9", -1}, {"-5", -1},
        {"\"19.90\"", -1}, {"\"\"", -1}, {"{}", -1}, {NULL, 0},
    };
    s_check_json_amounts (rst_gw_json_cents, ints);
}

static void
test_helpers (void **state)
{
    (void) state;
    int64_t t = 0;
    assert_int_equal (rst_gw_time_parse ("2024-01-01T12:00:00.000-03:00", &t), 0);
    assert_int_equal (t, 1704121200);
    assert_int_equal (rst_gw_time_parse ("2024-01-01T15:00:00Z", &t), 0);
    assert_int_equal (t, 1704121200);
    assert_int_equal (rst_gw_time_parse ("2024-01-01 15:00:00", &t), 0);
    assert_int_equal (t, 1704121200);
    assert_int_equal (rst_gw_time_parse ("2024-01-01T18:30:00+0330", &t), 0);
    assert_int_equal (t, 1704121200);
    assert_int_equal (rst_gw_time_parse ("2024-02-29T00:00:00Z", &t), 0);
    assert_int_equal (t, 1709164800);
    static const char *bad_times[] = {"", "2024-01-01", "2024-13-01T00:00:00Z",
                                      "2024-01-01T24:00:00Z", "2024-01-01T00:00:00X",
                                      "2024-01-01T00:00:00.Z", "2024-01-01T00:00:00+3", NULL};
    for (int i = 0; bad_times[i]; i++)
        assert_int_equal (rst_gw_time_parse (bad_times[i], &t), -1);

    char out[8];
    const char *q = "a=1&b=x%20y+z&empty=&flag&long=123456789";
    assert_int_equal (rst_gw_form_get (q, strlen (q), "a", out, sizeof out), 1);
    assert_string_equal (out, "1");
    assert_int_equal (rst_gw_form_get (q, strlen (q), "b", out, sizeof out), 1);
    assert_string_equal (out, "x y z");
    assert_int_equal (rst_gw_form_get (q, strlen (q), "empty", out, sizeof out), 1);
    assert_string_equal (out, "");
    assert_int_equal (rst_gw_form_get (q, strlen (q), "flag", out, sizeof out), 1);
    assert_int_equal (rst_gw_form_get (q, strlen (q), "long", out, sizeof out), -1);
    assert_int_equal (rst_gw_form_get (q, strlen (q), "c", out, sizeof out), 0);
    assert_int_equal (rst_gw_form_get (q, 3, "b", out, sizeof out), 0);    //  length respected
    assert_int_equal (rst_gw_form_get (NULL, 0, "a", out, sizeof out), 0);

    assert_true (rst_gw_id_is_valid ("9c29870c-9f69-4bb6", 18));
    assert_true (rst_gw_id_is_valid ("a.b_c", 5));
    assert_false (rst_gw_id_is_valid ("..", 2));
    assert_false (rst_gw_id_is_valid ("a/b", 3));
    assert_false (rst_gw_id_is_valid ("\xc3\xa9", 2));
    char big[RST_GW_CHARGE_ID_MAX + 1];
    memset (big, 'a', sizeof big);
    assert_true (rst_gw_id_is_valid (big, RST_GW_CHARGE_ID_MAX - 1));
    assert_false (rst_gw_id_is_valid (big, RST_GW_CHARGE_ID_MAX));
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_mercadopago_tour),
        cmocka_unit_test (test_kind_names),
        cmocka_unit_test (test_mercadopago_signature_forms),
        cmocka_unit_test (test_mercadopago_signature_refused),
        cmocka_unit_test (test_mercadopago_parse),
        cmocka_unit_test (test_body_limit),
        cmocka_unit_test (test_pushinpay),
        cmocka_unit_test (test_syncpay),
        cmocka_unit_test (test_credentials),
        cmocka_unit_test (test_request_checks),
        cmocka_unit_test (test_charge_objects),
        cmocka_unit_test (test_amounts),
        cmocka_unit_test (test_helpers),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
