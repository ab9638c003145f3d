/*  rst_gw_mercadopago — the Mercado Pago adapter (Payments API, PIX).

    Create: POST /v1/payments with "Authorization: Bearer <access_token>" and
    "X-Idempotency-Key: <key>" (required by MP; the same key on every retry
    of a charge makes MP answer with the same payment). Body:
        {"transaction_amount": 19.90, "payment_method_id": "pix",
         "description", "external_reference", "notification_url",
         "date_of_expiration": "yyyy-MM-ddTHH:mm:ss.000-03:00",
         "payer": {"email"}}
    The amount is written from centavos as decimal text (never through a
    double). payer.email is the credential "payer_email" when set, else
    RST_GW_MP_DEFAULT_EMAIL (MP refuses invalid domains, so the default is a
    real-looking domain). The reply (201) carries id (int64), status,
    transaction_amount, point_of_interaction.transaction_data.qr_code (the
    copy-and-paste code) and date_of_expiration.

    Read: GET /v1/payments/<id>. Statuses: pending, in_process, authorized
    -> pending; approved -> paid; cancelled, expired -> expired; rejected ->
    failed; refunded, charged_back, in_mediation (a dispute, treated like a
    chargeback as SyncPay's "med") -> refunded.

    Webhook: POST <notification_url>?data.id=<id>&type=payment with body
    {"action":"payment.updated","data":{"id":"<id>"},"type":"payment",...}
    (no status or amount). The old IPN form ?id=<id>&topic=payment is read
    too. A type/topic other than "payment" is ignored. Authentication:
    header x-signature "ts=<ts>,v1=<hex>" (parts in any order, spaces
    tolerated) and x-request-id; v1 = hex HMAC-SHA256(webhook_secret,
    "id:<data.id lowercased>;request-id:<x-request-id>;ts:<ts>;") with absent
    parts dropped; ts (seconds, or milliseconds when > 1e11) must be within
    RST_GW_WEBHOOK_MAX_SKEW of now.
*/
#include "rst_gateway_impl.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RST_GW_MP_DEFAULT_EMAIL "pix@rastro.app"
#define RST_GW_MP_TZ_OFFSET_S   (-3 * 3600)     //  Brasília, as date_of_expiration is written
#define RST_GW_MP_ID_DIGITS_MAX 19              //  an int64
#define RST_GW_MP_SIGNATURE_MAX 512             //  longest x-signature header we read
#define RST_GW_MP_REQUEST_ID_MAX 256

static const rst_gw_status_t s_statuses[] = {
    {"pending", RST_CHARGE_PENDING},
    {"in_process", RST_CHARGE_PENDING},
    {"authorized", RST_CHARGE_PENDING},
    {"approved", RST_CHARGE_PAID},
    {"cancelled", RST_CHARGE_EXPIRED},
    {"expired", RST_CHARGE_EXPIRED},
    {"rejected", RST_CHARGE_FAILED},
    {"refunded", RST_CHARGE_REFUNDED},
    {"charged_back", RST_CHARGE_REFUNDED},
    {"in_mediation", RST_CHARGE_REFUNDED},
    {NULL, RST_CHARGE_UNKNOWN},
};

//  A payment object, as a create and a read answer it.
static const rst_gw_fields_t s_fields = {
    .noun = "payment",
    .id = (const char *const[]) {"id", NULL},
    .amount = (const char *const[]) {"transaction_amount", NULL},
    .amount_in_cents = 0,
    .code = (const char *const[]) {"point_of_interaction.transaction_data.qr_code", NULL},
    .expiry = "date_of_expiration",
    .statuses = s_statuses,
};

//  1 if S[0..LEN) is 1..19 decimal digits (an MP payment id).
static int
s_is_payment_id (const char *s, size_t len)
{
    if (len == 0 || len > RST_GW_MP_ID_DIGITS_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

static int
s_check (const cJSON *root, char *err, size_t errlen)
{
    const cJSON *email = cJSON_GetObjectItemCaseSensitive (root, "payer_email");
    if (!email)
        return 0;
    const char *e = cJSON_IsString (email) ? email->valuestring : NULL;
    if (!e || !*e || strlen (e) > 254 || !strchr (e, '@') || strpbrk (e, " \t\r\n\"")) {
        snprintf (err, errlen, "credential \"payer_email\" must be an e-mail address");
        return -1;
    }
    return 0;
}

static rst_gw_result_t
s_create (rst_gateway_t *self, const rst_charge_request_t *req, rst_charge_t *charge, char *err,
          size_t errlen)
{
    cJSON *body = cJSON_CreateObject ();
    cJSON *payer = cJSON_AddObjectToObject (body, "payer");
    const char *email = rst_gw_cred (self, "payer_email");
    int ok = payer && rst_gw_add_reais (body, "transaction_amount", req->amount_cents)
             && cJSON_AddStringToObject (body, "payment_method_id", "pix")
             && cJSON_AddStringToObject (body, "description", rst_gw_description (req))
             && cJSON_AddStringToObject (payer, "email", email ? email : RST_GW_MP_DEFAULT_EMAIL);
    if (ok && req->reference && *req->reference)
        ok = cJSON_AddStringToObject (body, "external_reference", req->reference) != NULL;
    if (ok && req->webhook_url && *req->webhook_url)
        ok = cJSON_AddStringToObject (body, "notification_url", req->webhook_url) != NULL;
    if (ok && req->expires_in_s > 0) {
        time_t at = time (NULL) + req->expires_in_s + RST_GW_MP_TZ_OFFSET_S;
        struct tm tm;
        char when[40];
        ok = gmtime_r (&at, &tm)
             && strftime (when, sizeof when, "%Y-%m-%dT%H:%M:%S.000-03:00", &tm) > 0
             && cJSON_AddStringToObject (body, "date_of_expiration", when);
    }
    if (!ok) {
        cJSON_Delete (body);
        snprintf (err, errlen, "out of memory");
        return RST_GW_TRANSIENT;
    }
    rst_gw_result_t rc = rst_gw_charge_call (self, "POST", "/v1/payments", req->idempotency_key,
                                             body, NULL, charge, err, errlen);
    cJSON_Delete (body);
    return rc;
}

static rst_gw_result_t
s_read (rst_gateway_t *self, const char *charge_id, rst_charge_t *charge, char *err,
        size_t errlen)
{
    if (!s_is_payment_id (charge_id, strlen (charge_id))) {
        snprintf (err, errlen, "Mercado Pago: a payment id is a number");
        return RST_GW_PERMANENT;
    }
    return rst_gw_charge_read (self, charge_id, charge, err, errlen);
}

// ---------------------------------------------------------------------------
//  Webhooks

static rst_gw_webhook_kind_t
s_webhook_parse (const rst_gw_webhook_t *wh, rst_gw_notice_t *notice, char *err, size_t errlen)
{
    char qtype[64] = "", qid[RST_GW_CHARGE_ID_MAX] = "";
    int has_qtype = 0, has_qid = 0;
    const char *q = wh->query;
    size_t qlen = q ? wh->query_len : 0;

    int r = rst_gw_form_get (q, qlen, "type", qtype, sizeof qtype);
    if (r == 0)
        r = rst_gw_form_get (q, qlen, "topic", qtype, sizeof qtype);
    if (r < 0) {
        snprintf (err, errlen, "Mercado Pago webhook: bad type in the query");
        return RST_GW_WEBHOOK_BAD;
    }
    has_qtype = r == 1;
    r = rst_gw_form_get (q, qlen, "data.id", qid, sizeof qid);
    if (r == 0 && has_qtype)        //  old IPN: ?id=<id>&topic=payment
        r = rst_gw_form_get (q, qlen, "id", qid, sizeof qid);
    if (r < 0) {
        snprintf (err, errlen, "Mercado Pago webhook: bad data.id in the query");
        return RST_GW_WEBHOOK_BAD;
    }
    has_qid = r == 1;

    cJSON *root = NULL;
    const char *btype = NULL;
    char bid[RST_GW_CHARGE_ID_MAX] = "";
    int has_bid = 0;
    if (wh->body_len) {
        root = rst_gw_webhook_json (wh, err, errlen);
        if (!root)
            return RST_GW_WEBHOOK_BAD;
        btype = rst_gw_json_str (root, "type");
        if (!btype)
            btype = rst_gw_json_str (root, "topic");
        const cJSON *data = cJSON_GetObjectItemCaseSensitive (root, "data");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive (data, "id");
        if (id) {
            if (rst_gw_json_id (id, bid)) {
                snprintf (err, errlen, "Mercado Pago webhook: bad data.id in the body");
                cJSON_Delete (root);
                return RST_GW_WEBHOOK_BAD;
            }
            has_bid = 1;
        }
    }

    rst_gw_webhook_kind_t kind = RST_GW_WEBHOOK_BAD;
    const char *type = has_qtype ? qtype : btype;
    if (!type) {
        snprintf (err, errlen, "Mercado Pago webhook: no type or topic");
        goto done;
    }
    if (has_qtype && btype && strcmp (qtype, btype)) {
        snprintf (err, errlen, "Mercado Pago webhook: the query and the body disagree on the type");
        goto done;
    }
    if (strcmp (type, "payment")) {
        kind = RST_GW_WEBHOOK_IGNORED;
        goto done;
    }
    if (has_qid && has_bid && strcmp (qid, bid)) {
        snprintf (err, errlen, "Mercado Pago webhook: the query and the body disagree on data.id");
        goto done;
    }
    const char *id = has_qid ? qid : has_bid ? bid : NULL;
    if (!id) {
        snprintf (err, errlen, "Mercado Pago webhook: no data.id");
        goto done;
    }
    if (!s_is_payment_id (id, strlen (id))) {
        snprintf (err, errlen, "Mercado Pago webhook: data.id is not a payment id");
        goto done;
    }
    snprintf (notice->charge_id, sizeof notice->charge_id, "%s", id);
    const char *action = rst_gw_json_str (root, "action");
    if (action)
        rst_gw_notice_hint (notice, action);
    kind = RST_GW_WEBHOOK_CHARGE;

done:
    cJSON_Delete (root);
    return kind;
}

//  Trims spaces and tabs around S[0..*LEN); returns the new start.
static const char *
s_trim (const char *s, size_t *len)
{
    while (*len && (*s == ' ' || *s == '\t')) {
        s++;
        (*len)--;
    }
    while (*len && (s[*len - 1] == ' ' || s[*len - 1] == '\t'))
        (*len)--;
    return s;
}

static int
s_webhook_auth (const rst_gw_webhook_t *wh, const rst_gw_notice_t *notice, const char *secret,
                char *err, size_t errlen)
{
    (void) notice;
    if (!secret || !*secret) {
        snprintf (err, errlen, "Mercado Pago webhook: no webhook secret configured");
        return -1;
    }
    size_t sig_len = 0;
    const char *sig = rst_gw_header (wh, "x-signature", &sig_len);
    if (!sig) {
        snprintf (err, errlen, "Mercado Pago webhook: no x-signature header");
        return -1;
    }
    if (sig_len > RST_GW_MP_SIGNATURE_MAX) {
        snprintf (err, errlen, "Mercado Pago webhook: x-signature too long");
        return -1;
    }
    //  "ts=<ts>,v1=<hex>", parts in any order.
    const char *ts = NULL, *v1 = NULL;
    size_t ts_len = 0, v1_len = 0;
    size_t i = 0;
    while (i < sig_len) {
        size_t start = i;
        while (i < sig_len && sig[i] != ',')
            i++;
        size_t part_len = i - start;
        const char *part = s_trim (sig + start, &part_len);
        i++;
        const char *eq = memchr (part, '=', part_len);
        if (!eq)
            continue;
        size_t key_len = (size_t) (eq - part);
        const char *key = s_trim (part, &key_len);
        size_t val_len = part_len - (size_t) (eq - part) - 1;
        const char *val = s_trim (eq + 1, &val_len);
        if (key_len == 2 && !memcmp (key, "ts", 2)) {
            if (ts) {
                snprintf (err, errlen, "Mercado Pago webhook: x-signature has two ts");
                return -1;
            }
            ts = val;
            ts_len = val_len;
        }
        else if (key_len == 2 && !memcmp (key, "v1", 2)) {
            if (v1) {
                snprintf (err, errlen, "Mercado Pago webhook: x-signature has two v1");
                return -1;
            }
            v1 = val;
            v1_len = val_len;
        }
    }
    if (!ts || !v1) {
        snprintf (err, errlen, "Mercado Pago webhook: x-signature lacks ts or v1");
        return -1;
    }
    if (ts_len == 0 || ts_len > 13) {
        snprintf (err, errlen, "Mercado Pago webhook: bad ts in x-signature");
        return -1;
    }
    int64_t when = 0;
    for (size_t k = 0; k < ts_len; k++) {
        if (ts[k] < '0' || ts[k] > '9') {
            snprintf (err, errlen, "Mercado Pago webhook: bad ts in x-signature");
            return -1;
        }
        when = when * 10 + (ts[k] - '0');
    }
    if (when > INT64_C (100000000000))
        when /= 1000;               //  milliseconds
    int64_t skew = wh->now_s - when;
    if (skew < -RST_GW_WEBHOOK_MAX_SKEW || skew > RST_GW_WEBHOOK_MAX_SKEW) {
        snprintf (err, errlen, "Mercado Pago webhook: signature timestamp is %lld s away from now",
                  (long long) skew);
        return -1;
    }
    unsigned char given[crypto_auth_hmacsha256_BYTES];
    size_t given_len = 0;
    if (v1_len != 2 * sizeof given
        || sodium_hex2bin (given, sizeof given, v1, v1_len, NULL, &given_len, NULL)
        || given_len != sizeof given) {
        snprintf (err, errlen, "Mercado Pago webhook: v1 is not 64 hex digits");
        return -1;
    }

    //  The manifest, with absent parts dropped.
    char manifest[RST_GW_CHARGE_ID_MAX + RST_GW_MP_REQUEST_ID_MAX + 64];
    size_t m = 0;
    char qid[RST_GW_CHARGE_ID_MAX];
    int r = rst_gw_form_get (wh->query, wh->query ? wh->query_len : 0, "data.id", qid, sizeof qid);
    if (r < 0) {
        snprintf (err, errlen, "Mercado Pago webhook: bad data.id in the query");
        return -1;
    }
    if (r == 1) {
        for (char *c = qid; *c; c++)
            if (*c >= 'A' && *c <= 'Z')
                *c = (char) (*c - 'A' + 'a');
        m += (size_t) snprintf (manifest + m, sizeof manifest - m, "id:%s;", qid);
    }
    size_t rid_len = 0;
    const char *rid = rst_gw_header (wh, "x-request-id", &rid_len);
    if (rid) {
        if (rid_len > RST_GW_MP_REQUEST_ID_MAX) {
            snprintf (err, errlen, "Mercado Pago webhook: x-request-id too long");
            return -1;
        }
        m += (size_t) snprintf (manifest + m, sizeof manifest - m, "request-id:%.*s;",
                                (int) rid_len, rid);
    }
    m += (size_t) snprintf (manifest + m, sizeof manifest - m, "ts:%.*s;", (int) ts_len, ts);

    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init (&st, (const unsigned char *) secret, strlen (secret));
    crypto_auth_hmacsha256_update (&st, (const unsigned char *) manifest, m);
    crypto_auth_hmacsha256_final (&st, mac);
    sodium_memzero (&st, sizeof st);
    if (sodium_memcmp (mac, given, sizeof mac)) {
        snprintf (err, errlen, "Mercado Pago webhook: x-signature does not match");
        return -1;
    }
    return 0;
}

static const char *const s_required[] = {"access_token", "webhook_secret", NULL};

const rst_gw_ops_t rst_gw_mercadopago_ops = {
    .name = "mercadopago",
    .title = "Mercado Pago",
    .url_env = "RASTRO_GATEWAY_MERCADOPAGO_URL",
    .default_url = "https://api.mercadopago.com",
    .required = s_required,
    .secret_field = "webhook_secret",
    .bearer = "access_token",
    .read_path = "/v1/payments/",
    .fields = &s_fields,
    .check = s_check,
    .create = s_create,
    .read = s_read,
    .webhook_parse = s_webhook_parse,
    .webhook_auth = s_webhook_auth,
};
