/*  rst_gw_syncpay — the SyncPay (SyncPayments) adapter (amounts in reais).

    Every call carries a bearer token from
        POST /api/partner/v1/auth-token {"client_id","client_secret"}
            -> {"access_token", "expires_in" (s, ≈3600)}
    The token is cached in the gateway object until shortly before it
    expires (RST_GW_SYNCPAY_TOKEN_MARGIN_S); a 401 on a call drops it,
    fetches a new one and retries that call once:

        no token --auth-token--> cached --expires / 401--> dropped --> ...

    Create: POST /api/partner/v1/cash-in {"amount": 19.90, "description",
    "webhook_url", "client": {name, cpf, email, phone}} -> {"message",
    "pix_code", "identifier"} (no status, amount or QR image). The client
    is the credential "client" object when set, else a fixed placeholder
    buyer (RST_GW_SYNCPAY_PLACEHOLDER_*; a CPF with valid check digits):
    rastro does not know who will pay a PIX before it is paid.

    Read: GET /api/partner/v1/transaction/<identifier> -> {status, amount,
    pix_code} (also accepted wrapped in "data"). Statuses: pending ->
    pending; completed -> paid; failed -> failed; refunded, med (a PIX
    dispute) -> refunded; expired / canceled -> expired.

    Webhook: JSON, the newer nested {"data": {"id", "status", "amount", ...}}
    or the older flat {"identifier", "status"}. SyncPay documents no webhook
    authentication: rst_gateway_webhook_auth always accepts and the caller
    re-reads the charge by id, which is the real check.
*/
#include "rst_gateway_impl.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RST_GW_SYNCPAY_TOKEN_MARGIN_S 60        //  refresh this long before expiry
#define RST_GW_SYNCPAY_TOKEN_DEFAULT_S 3600     //  when expires_in is missing
#define RST_GW_SYNCPAY_TOKEN_MAX 4096

#define RST_GW_SYNCPAY_PLACEHOLDER_NAME  "Cliente Rastro"
#define RST_GW_SYNCPAY_PLACEHOLDER_CPF   "12345678909"
#define RST_GW_SYNCPAY_PLACEHOLDER_EMAIL "pix@rastro.app"
#define RST_GW_SYNCPAY_PLACEHOLDER_PHONE "11999999999"

static const rst_gw_status_t s_statuses[] = {
    {"pending", RST_CHARGE_PENDING},
    {"completed", RST_CHARGE_PAID},
    {"failed", RST_CHARGE_FAILED},
    {"refunded", RST_CHARGE_REFUNDED},
    {"med", RST_CHARGE_REFUNDED},
    {"expired", RST_CHARGE_EXPIRED},
    {"canceled", RST_CHARGE_EXPIRED},
    {"cancelled", RST_CHARGE_EXPIRED},
    {NULL, RST_CHARGE_UNKNOWN},
};

//  A transaction as a read answers it; it may leave its identifier out.
static const rst_gw_fields_t s_fields = {
    .noun = "transaction",
    .id = (const char *const[]) {"identifier", "id", NULL},
    .id_optional = 1,
    .amount = (const char *const[]) {"amount", "final_amount", NULL},
    .amount_in_cents = 0,
    .code = (const char *const[]) {"pix_code", NULL},
    .expiry = NULL,
    .statuses = s_statuses,
};

//  The optional "client" credential: an object of short strings; cpf is 11 digits.
static int
s_check (const cJSON *root, char *err, size_t errlen)
{
    const cJSON *client = cJSON_GetObjectItemCaseSensitive (root, "client");
    if (!client)
        return 0;
    if (!cJSON_IsObject (client)) {
        snprintf (err, errlen, "credential \"client\" must be an object {name, cpf, email, phone}");
        return -1;
    }
    static const char *const fields[] = {"name", "cpf", "email", "phone", NULL};
    for (int i = 0; fields[i]; i++) {
        const cJSON *item = cJSON_GetObjectItemCaseSensitive (client, fields[i]);
        const char *s = cJSON_IsString (item) ? item->valuestring : NULL;
        int ok = s && *s && strlen (s) <= 128;
        for (size_t k = 0; ok && s[k]; k++)
            if ((unsigned char) s[k] < 0x20 || s[k] == 0x7f)
                ok = 0;
        if (ok && !strcmp (fields[i], "cpf")) {
            ok = strlen (s) == 11;
            for (size_t k = 0; ok && s[k]; k++)
                ok = s[k] >= '0' && s[k] <= '9';
        }
        if (!ok) {
            snprintf (err, errlen, "credential \"client.%s\" is missing or invalid%s", fields[i],
                      !strcmp (fields[i], "cpf") ? " (11 digits)" : "");
            return -1;
        }
    }
    return 0;
}

static void
s_forget (rst_gateway_t *self)
{
    if (self->token) {
        sodium_memzero (self->token, strlen (self->token));
        free (self->token);
        self->token = NULL;
    }
    self->token_expires_at = 0;
}

//  Makes sure SELF holds a valid token. RST_GW_OK or why not.
static rst_gw_result_t
s_token (rst_gateway_t *self, char *err, size_t errlen)
{
    int64_t now = (int64_t) time (NULL);
    if (self->token && now < self->token_expires_at)
        return RST_GW_OK;
    s_forget (self);
    cJSON *body = cJSON_CreateObject ();
    if (!cJSON_AddStringToObject (body, "client_id", rst_gw_cred (self, "client_id"))
        || !cJSON_AddStringToObject (body, "client_secret", rst_gw_cred (self, "client_secret"))) {
        cJSON_Delete (body);
        snprintf (err, errlen, "out of memory");
        return RST_GW_TRANSIENT;
    }
    rst_gw_reply_t reply;
    rst_gw_result_t rc = rst_gw_http (self, "POST", "/api/partner/v1/auth-token", NULL, NULL,
                                      body, &reply, err, errlen);
    //  The body held client_secret: wipe it before freeing.
    cJSON *secret = cJSON_GetObjectItemCaseSensitive (body, "client_secret");
    if (secret && secret->valuestring)
        sodium_memzero (secret->valuestring, strlen (secret->valuestring));
    cJSON_Delete (body);
    if (rc == RST_GW_NOT_FOUND)
        rc = RST_GW_PERMANENT;
    if (rc != RST_GW_OK)
        goto done;
    const char *token = rst_gw_json_str (reply.json, "access_token");
    int ok = token && *token && strlen (token) <= RST_GW_SYNCPAY_TOKEN_MAX;
    for (size_t i = 0; ok && token[i]; i++)
        if ((unsigned char) token[i] < 0x21 || (unsigned char) token[i] >= 0x7f)
            ok = 0;                 //  it goes into a header
    if (!ok) {
        snprintf (err, errlen, "SyncPay auth-token: malformed reply (no usable access_token)");
        rc = RST_GW_PERMANENT;
        goto done;
    }
    self->token = strdup (token);
    if (!self->token) {
        snprintf (err, errlen, "out of memory");
        rc = RST_GW_TRANSIENT;
        goto done;
    }
    int64_t ttl = RST_GW_SYNCPAY_TOKEN_DEFAULT_S;
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive (reply.json, "expires_in");
    if (cJSON_IsNumber (exp) && exp->valuedouble >= 1 && exp->valuedouble < 366.0 * 86400)
        ttl = (int64_t) exp->valuedouble;
    ttl = ttl > 2 * RST_GW_SYNCPAY_TOKEN_MARGIN_S ? ttl - RST_GW_SYNCPAY_TOKEN_MARGIN_S : ttl / 2;
    self->token_expires_at = now + ttl;

done:
    {
        cJSON *t = cJSON_GetObjectItemCaseSensitive (reply.json, "access_token");
        if (t && t->valuestring)
            sodium_memzero (t->valuestring, strlen (t->valuestring));
    }
    rst_gw_reply_clear (&reply);
    return rc;
}

//  One authenticated call; on 401 the token is renewed and the call retried once.
static rst_gw_result_t
s_call (rst_gateway_t *self, const char *method, const char *path, const char *idempotency_key,
        const cJSON *body, rst_gw_reply_t *reply, char *err, size_t errlen)
{
    memset (reply, 0, sizeof *reply);
    for (int attempt = 0; attempt < 2; attempt++) {
        rst_gw_result_t rc = s_token (self, err, errlen);
        if (rc != RST_GW_OK)
            return rc;
        rc = rst_gw_http (self, method, path, self->token, idempotency_key, body, reply, err,
                          errlen);
        if (reply->http_status != 401 || attempt == 1)
            return rc;
        rst_gw_reply_clear (reply);
        s_forget (self);            //  expired or revoked early: fetch another
    }
    return RST_GW_PERMANENT;        //  not reached
}

//  The transaction object of a reply: the reply itself or its "data".
static const cJSON *
s_unwrap (const cJSON *json, int read)
{
    (void) read;
    const cJSON *data = cJSON_GetObjectItemCaseSensitive (json, "data");
    return cJSON_IsObject (data) ? data : json;
}

static rst_gw_result_t
s_create (rst_gateway_t *self, const rst_charge_request_t *req, rst_charge_t *charge, char *err,
          size_t errlen)
{
    cJSON *body = cJSON_CreateObject ();
    const cJSON *given = cJSON_GetObjectItemCaseSensitive (self->credentials, "client");
    cJSON *client = NULL;
    if (cJSON_IsObject (given))
        client = cJSON_Duplicate (given, 1);
    else {
        client = cJSON_CreateObject ();
        if (client
            && (!cJSON_AddStringToObject (client, "name", RST_GW_SYNCPAY_PLACEHOLDER_NAME)
                || !cJSON_AddStringToObject (client, "cpf", RST_GW_SYNCPAY_PLACEHOLDER_CPF)
                || !cJSON_AddStringToObject (client, "email", RST_GW_SYNCPAY_PLACEHOLDER_EMAIL)
                || !cJSON_AddStringToObject (client, "phone", RST_GW_SYNCPAY_PLACEHOLDER_PHONE))) {
            cJSON_Delete (client);
            client = NULL;
        }
    }
    int ok = body && client && rst_gw_add_reais (body, "amount", req->amount_cents)
             && cJSON_AddStringToObject (body, "description", rst_gw_description (req));
    if (ok && req->webhook_url && *req->webhook_url)
        ok = cJSON_AddStringToObject (body, "webhook_url", req->webhook_url) != NULL;
    if (ok) {
        ok = cJSON_AddItemToObject (body, "client", client);
        if (ok)
            client = NULL;
    }
    cJSON_Delete (client);
    if (!ok) {
        cJSON_Delete (body);
        snprintf (err, errlen, "out of memory");
        return RST_GW_TRANSIENT;
    }
    rst_gw_reply_t reply;
    rst_gw_result_t rc = s_call (self, "POST", "/api/partner/v1/cash-in", NULL, body, &reply, err,
                                 errlen);
    cJSON_Delete (body);
    if (rc != RST_GW_OK)
        goto done;
    //  The reply carries no status or amount: the charge is pending, for the amount asked.
    const cJSON *tx = s_unwrap (reply.json, 0);
    const char *code = rst_gw_json_str (tx, "pix_code");
    if (!cJSON_IsObject (tx)
        || rst_gw_json_id (cJSON_GetObjectItemCaseSensitive (tx, "identifier"), charge->id)
        || !code || !*code) {
        snprintf (err, errlen, "SyncPay cash-in: malformed reply (no identifier or pix_code)");
        rc = RST_GW_PERMANENT;
        goto done;
    }
    rc = rst_gw_charge_code (charge, code, err, errlen);
    if (rc != RST_GW_OK)
        goto done;
    charge->status = RST_CHARGE_PENDING;
    rst_gw_status_text (charge, "pending");
    charge->amount_cents = req->amount_cents;

done:
    rst_gw_reply_clear (&reply);
    return rc;
}

// ---------------------------------------------------------------------------
//  Webhooks

static rst_gw_webhook_kind_t
s_webhook_parse (const rst_gw_webhook_t *wh, rst_gw_notice_t *notice, char *err, size_t errlen)
{
    cJSON *root = rst_gw_webhook_json (wh, err, errlen);
    if (!root)
        return RST_GW_WEBHOOK_BAD;
    rst_gw_webhook_kind_t kind = RST_GW_WEBHOOK_BAD;
    const cJSON *data = cJSON_GetObjectItemCaseSensitive (root, "data");
    const cJSON *tx = cJSON_IsObject (data) ? data : root;     //  new nested or old flat
    const cJSON *id = cJSON_GetObjectItemCaseSensitive (tx, "id");
    if (!id)
        id = cJSON_GetObjectItemCaseSensitive (tx, "identifier");
    if (!id || rst_gw_json_id (id, notice->charge_id)) {
        snprintf (err, errlen, "SyncPay webhook: no valid data.id or identifier");
        goto done;
    }
    const char *status = rst_gw_json_str (tx, "status");
    if (status)
        rst_gw_notice_hint (notice, status);
    kind = RST_GW_WEBHOOK_CHARGE;

done:
    cJSON_Delete (root);
    return kind;
}

static int
s_webhook_auth (const rst_gw_webhook_t *wh, const rst_gw_notice_t *notice, const char *secret,
                char *err, size_t errlen)
{
    (void) wh;
    (void) notice;
    (void) secret;
    (void) err;
    (void) errlen;
    return 0;                       //  nothing to check: the charge is re-read by id
}

static const char *const s_required[] = {"client_id", "client_secret", NULL};

const rst_gw_ops_t rst_gw_syncpay_ops = {
    .name = "syncpay",
    .title = "SyncPay",
    .url_env = "RASTRO_GATEWAY_SYNCPAY_URL",
    .default_url = "https://api.syncpayments.com.br",
    .required = s_required,
    .secret_field = NULL,
    .bearer = NULL,
    .read_path = "/api/partner/v1/transaction/",
    .fields = &s_fields,
    .check = s_check,
    .call = s_call,
    .unwrap = s_unwrap,
    .create = s_create,
    .webhook_parse = s_webhook_parse,
    .webhook_auth = s_webhook_auth,
    .forget = s_forget,
};
