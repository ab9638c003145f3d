/*  rst_gw_pushinpay — the PushinPay adapter (amounts in centavos).

    Create: POST /api/pix/cashIn with "Authorization: Bearer <token>", body
    {"value": <centavos>, "webhook_url": <url>} (PushinPay's minimum is 50
    centavos; it answers 422 below, which is RST_GW_PERMANENT). The reply
    carries id (a UUID), qr_code (the copy-and-paste code), qr_code_base64
    (with a data: prefix; unused, rastro renders its own QR), status
    "created" and value. No expiry parameter exists.

    Read: GET /api/transactions/<id>; an unknown id answers `[]` (or 404),
    both RST_GW_NOT_FOUND. Statuses: created -> pending; paid -> paid;
    canceled / cancelled / expired -> expired. The code is qr_code or
    pix_details.emv, the expiry pix_details.expiration_date.

    Webhook: POST to webhook_url with the transaction's fields (id, status,
    value, end_to_end_id, payer...) as JSON or form-urlencoded (picked by
    Content-Type, else by the first byte). Authentication is a shared token
    only: header x-pushinpay-token must equal the credential
    "webhook_token". Both are hashed with SHA-256 and the digests compared
    with sodium_memcmp, so neither the content nor the length leaks.
*/
#include "rst_gateway_impl.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const rst_gw_status_t s_statuses[] = {
    {"created", RST_CHARGE_PENDING},
    {"paid", RST_CHARGE_PAID},
    {"canceled", RST_CHARGE_EXPIRED},
    {"cancelled", RST_CHARGE_EXPIRED},
    {"expired", RST_CHARGE_EXPIRED},
    {NULL, RST_CHARGE_UNKNOWN},
};

//  A transaction object, as a create and a read answer it.
static const rst_gw_fields_t s_fields = {
    .noun = "transaction",
    .id = (const char *const[]) {"id", NULL},
    .amount = (const char *const[]) {"value", NULL},
    .amount_in_cents = 1,
    .code = (const char *const[]) {"qr_code", "pix_details.emv", NULL},
    .expiry = "pix_details.expiration_date",
    .statuses = s_statuses,
};

//  A read's transaction: `[]` is PushinPay's "no such transaction" (NULL).
static const cJSON *
s_unwrap (const cJSON *json, int read)
{
    return read && cJSON_IsArray (json) ? cJSON_GetArrayItem (json, 0) : json;
}

static rst_gw_result_t
s_create (rst_gateway_t *self, const rst_charge_request_t *req, rst_charge_t *charge, char *err,
          size_t errlen)
{
    cJSON *body = cJSON_CreateObject ();
    int ok = cJSON_AddNumberToObject (body, "value", (double) req->amount_cents) != NULL;
    if (ok && req->webhook_url && *req->webhook_url)
        ok = cJSON_AddStringToObject (body, "webhook_url", req->webhook_url) != NULL;
    if (!ok) {
        cJSON_Delete (body);
        snprintf (err, errlen, "out of memory");
        return RST_GW_TRANSIENT;
    }
    rst_gw_result_t rc = rst_gw_charge_call (self, "POST", "/api/pix/cashIn", NULL, body, NULL,
                                             charge, err, errlen);
    cJSON_Delete (body);
    return rc;
}

// ---------------------------------------------------------------------------
//  Webhooks

//  1 if the webhook body is JSON (by Content-Type, else by its first byte).
static int
s_body_is_json (const rst_gw_webhook_t *wh)
{
    if (wh->content_type && wh->content_type_len) {
        char ct[128];
        size_t n = wh->content_type_len < sizeof ct - 1 ? wh->content_type_len : sizeof ct - 1;
        for (size_t i = 0; i < n; i++) {
            char c = wh->content_type[i];
            ct[i] = (char) (c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
        }
        ct[n] = 0;
        if (strstr (ct, "json"))
            return 1;
        if (strstr (ct, "x-www-form-urlencoded"))
            return 0;
    }
    for (size_t i = 0; i < wh->body_len; i++) {
        char c = wh->body[i];
        if (c != ' ' && c != '\t' && c != '\r' && c != '\n')
            return c == '{';
    }
    return 0;
}

static rst_gw_webhook_kind_t
s_webhook_parse (const rst_gw_webhook_t *wh, rst_gw_notice_t *notice, char *err, size_t errlen)
{
    if (!wh->body_len || s_body_is_json (wh)) {
        cJSON *root = rst_gw_webhook_json (wh, err, errlen);    //  also refuses an empty body
        if (!root)
            return RST_GW_WEBHOOK_BAD;
        if (rst_gw_json_id (cJSON_GetObjectItemCaseSensitive (root, "id"), notice->charge_id)) {
            snprintf (err, errlen, "PushinPay webhook: no valid \"id\"");
            cJSON_Delete (root);
            return RST_GW_WEBHOOK_BAD;
        }
        const char *status = rst_gw_json_str (root, "status");
        if (status)
            rst_gw_notice_hint (notice, status);
        cJSON_Delete (root);
        return RST_GW_WEBHOOK_CHARGE;
    }
    char id[RST_GW_CHARGE_ID_MAX];
    int r = rst_gw_form_get (wh->body, wh->body_len, "id", id, sizeof id);
    if (r != 1 || !rst_gw_id_is_valid (id, strlen (id))) {
        snprintf (err, errlen, "PushinPay webhook: no valid \"id\" in the form");
        return RST_GW_WEBHOOK_BAD;
    }
    memcpy (notice->charge_id, id, strlen (id) + 1);
    char status[32];
    if (rst_gw_form_get (wh->body, wh->body_len, "status", status, sizeof status) == 1)
        rst_gw_notice_hint (notice, status);
    return RST_GW_WEBHOOK_CHARGE;
}

static int
s_webhook_auth (const rst_gw_webhook_t *wh, const rst_gw_notice_t *notice, const char *secret,
                char *err, size_t errlen)
{
    (void) notice;
    if (!secret || !*secret) {
        snprintf (err, errlen, "PushinPay webhook: no webhook token configured");
        return -1;
    }
    size_t len = 0;
    const char *token = rst_gw_header (wh, "x-pushinpay-token", &len);
    if (!token || !len) {
        snprintf (err, errlen, "PushinPay webhook: no x-pushinpay-token header");
        return -1;
    }
    unsigned char want[crypto_hash_sha256_BYTES], got[crypto_hash_sha256_BYTES];
    crypto_hash_sha256 (want, (const unsigned char *) secret, strlen (secret));
    crypto_hash_sha256 (got, (const unsigned char *) token, len);
    int differ = sodium_memcmp (want, got, sizeof want);
    sodium_memzero (want, sizeof want);
    if (differ) {
        snprintf (err, errlen, "PushinPay webhook: x-pushinpay-token does not match");
        return -1;
    }
    return 0;
}

static const char *const s_required[] = {"token", "webhook_token", NULL};

const rst_gw_ops_t rst_gw_pushinpay_ops = {
    .name = "pushinpay",
    .title = "PushinPay",
    .url_env = "RASTRO_GATEWAY_PUSHINPAY_URL",
    .default_url = "https://api.pushinpay.com.br",
    .required = s_required,
    .secret_field = "webhook_token",
    .bearer = "token",
    .read_path = "/api/transactions/",
    .fields = &s_fields,
    .unwrap = s_unwrap,
    .create = s_create,
    .webhook_parse = s_webhook_parse,
    .webhook_auth = s_webhook_auth,
};
