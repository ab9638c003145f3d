/*  rst_gateway — the registry of PIX gateway adapters and their common helpers.

    rst_gateway.h is the public face; each gateway is one adapter file
    (rst_gw_<kind>.c) filling an rst_gw_ops_t (rst_gateway_impl.h). This file
    holds the registry below (adding a gateway = one line here plus one
    file), checks every argument once before an adapter sees it, and offers
    the helpers the adapters share:

        rst_gw_http         one libcurl call (connect + whole-call timeouts,
                            reply capped at RST_GW_REPLY_MAX, JSON parsed)
                            and the error classification of the module;
                            the libcurl plumbing itself is rst_http's
        charges             the create/read sequence: call, unwrap, read
                            the charge object by the adapter's field table
        amounts             centavos <-> reais in integer arithmetic
        ids, times, JSON    small validators and parsers
        webhooks            header and query/form lookup

    Guarantees: nothing here logs or returns a credential value; errors
    pass through rst_gw_scrub. Webhook functions are pure and thread-safe;
    a gateway object belongs to one thread at a time.
*/
#include "rst_gateway_impl.h"

#include "rst_click.h"
#include "rst_http.h"

#include <assert.h>
#include <ctype.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

//  The registry, indexed by rst_gw_kind_t.
static const rst_gw_ops_t *const s_registry[RST_GW_KINDS] = {
    [RST_GW_MERCADOPAGO] = &rst_gw_mercadopago_ops,
    [RST_GW_PUSHINPAY] = &rst_gw_pushinpay_ops,
    [RST_GW_SYNCPAY] = &rst_gw_syncpay_ops,
};

static const rst_gw_ops_t *
s_ops (rst_gw_kind_t kind)
{
    if ((int) kind < 0 || kind >= RST_GW_KINDS)
        return NULL;
    return s_registry[kind];
}

const char *
rst_gateway_kind_name (rst_gw_kind_t kind)
{
    const rst_gw_ops_t *ops = s_ops (kind);
    return ops ? ops->name : "unknown";
}

int
rst_gateway_kind_parse (const char *name)
{
    if (!name)
        return -1;
    for (int k = 0; k < RST_GW_KINDS; k++)
        if (!strcmp (name, s_registry[k]->name))
            return k;
    return -1;
}

// ---------------------------------------------------------------------------
//  Credentials

//  0 if S is a credential string we accept: 1..RST_GW_FIELD_MAX bytes, no
//  control characters. Else -1 with a reason naming FIELD only.
static int
s_check_string (const char *field, const cJSON *item, char *err, size_t errlen)
{
    if (!cJSON_IsString (item) || !item->valuestring) {
        snprintf (err, errlen, "credential \"%s\" must be a string", field);
        return -1;
    }
    size_t len = strlen (item->valuestring);
    if (len == 0) {
        snprintf (err, errlen, "credential \"%s\" is empty", field);
        return -1;
    }
    if (len > RST_GW_FIELD_MAX) {
        snprintf (err, errlen, "credential \"%s\" is longer than %d bytes", field,
                  RST_GW_FIELD_MAX);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) item->valuestring[i];
        if (c < 0x20 || c == 0x7f) {
            snprintf (err, errlen, "credential \"%s\" contains a control character", field);
            return -1;
        }
    }
    return 0;
}

//  Parses and checks credentials; returns the parsed object or NULL with ERR.
static cJSON *
s_credentials_parse (const rst_gw_ops_t *ops, const char *json, char *err, size_t errlen)
{
    if (!json || !*json) {
        snprintf (err, errlen, "%s credentials are empty", ops->title);
        return NULL;
    }
    cJSON *root = cJSON_Parse (json);
    if (!cJSON_IsObject (root)) {
        snprintf (err, errlen, "%s credentials must be a JSON object", ops->title);
        cJSON_Delete (root);
        return NULL;
    }
    for (const char *const *f = ops->required; *f; f++) {
        const cJSON *item = cJSON_GetObjectItemCaseSensitive (root, *f);
        if (!item) {
            snprintf (err, errlen, "%s credentials lack \"%s\"", ops->title, *f);
            goto fail;
        }
        if (s_check_string (*f, item, err, errlen))
            goto fail;
    }
    if (ops->check && ops->check (root, err, errlen))
        goto fail;
    return root;

fail:
    cJSON_Delete (root);
    return NULL;
}

//  Wipes every string value of the list starting at NODE, recursively.
static void
s_json_wipe (cJSON *node)
{
    for (cJSON *c = node; c; c = c->next) {
        if (c->valuestring)
            sodium_memzero (c->valuestring, strlen (c->valuestring));
        if (c->child)
            s_json_wipe (c->child);
    }
}

//  Wipes every string of ROOT and deletes it. Safe on NULL.
static void
s_json_wipe_delete (cJSON *root)
{
    if (!root)
        return;
    if (root->valuestring)
        sodium_memzero (root->valuestring, strlen (root->valuestring));
    s_json_wipe (root->child);
    cJSON_Delete (root);
}

int
rst_gateway_credentials_check (rst_gw_kind_t kind, const char *json, char *err, size_t errlen)
{
    const rst_gw_ops_t *ops = s_ops (kind);
    if (!ops) {
        snprintf (err, errlen, "unknown gateway kind %d", (int) kind);
        return -1;
    }
    cJSON *root = s_credentials_parse (ops, json, err, errlen);
    if (!root)
        return -1;
    s_json_wipe_delete (root);
    return 0;
}

char *
rst_gateway_webhook_secret (rst_gw_kind_t kind, const char *credentials_json)
{
    const rst_gw_ops_t *ops = s_ops (kind);
    if (!ops || !ops->secret_field || !credentials_json)
        return NULL;
    cJSON *root = cJSON_Parse (credentials_json);
    const char *value = rst_gw_json_str (root, ops->secret_field);
    char *secret = value && *value ? strdup (value) : NULL;
    s_json_wipe_delete (root);
    return secret;
}

// ---------------------------------------------------------------------------
//  The gateway object

rst_gateway_t *
rst_gateway_new (rst_gw_kind_t kind, const char *credentials_json, const char *base_url,
                 char *err, size_t errlen)
{
    const rst_gw_ops_t *ops = s_ops (kind);
    if (!ops) {
        snprintf (err, errlen, "unknown gateway kind %d", (int) kind);
        return NULL;
    }
    if (!base_url || !*base_url)
        base_url = getenv (ops->url_env);
    if (!base_url || !*base_url)
        base_url = ops->default_url;
    rst_gateway_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, errlen, "out of memory");
        return NULL;
    }
    self->kind = kind;
    self->ops = ops;
    self->timeout_ms = RST_GW_TIMEOUT_MS;
    if (rst_http_client_init (ops->title, base_url, ops->url_env, &self->base_url, &self->curl,
                              err, errlen))
        goto fail;
    self->credentials = s_credentials_parse (ops, credentials_json, err, errlen);
    if (!self->credentials)
        goto fail;
    return self;

fail:
    rst_gateway_destroy (&self);
    return NULL;
}

void
rst_gateway_destroy (rst_gateway_t **self_p)
{
    assert (self_p);
    rst_gateway_t *self = *self_p;
    if (!self)
        return;
    if (self->ops && self->ops->forget)
        self->ops->forget (self);
    if (self->token) {
        sodium_memzero (self->token, strlen (self->token));
        free (self->token);
    }
    if (self->curl)
        curl_easy_cleanup (self->curl);
    s_json_wipe_delete (self->credentials);
    free (self->base_url);
    free (self);
    *self_p = NULL;
}

rst_gw_kind_t
rst_gateway_kind (const rst_gateway_t *self)
{
    assert (self);
    return self->kind;
}

void
rst_gateway_set_timeout (rst_gateway_t *self, long timeout_ms)
{
    assert (self);
    self->timeout_ms = timeout_ms > 0 ? timeout_ms : RST_GW_TIMEOUT_MS;
}

void
rst_charge_clear (rst_charge_t *charge)
{
    if (!charge)
        return;
    free (charge->pix_code);
    memset (charge, 0, sizeof *charge);
}

//  1 if S is 1..MAX printable ASCII characters (safe in an HTTP header).
static int
s_is_header_safe (const char *s, size_t max)
{
    if (!s || !*s)
        return 0;
    size_t len = strlen (s);
    if (len > max)
        return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char) s[i] < 0x20 || (unsigned char) s[i] >= 0x7f)
            return 0;
    return 1;
}

rst_gw_result_t
rst_gateway_create (rst_gateway_t *self, const rst_charge_request_t *req, rst_charge_t *charge,
                    char *err, size_t errlen)
{
    assert (self && req && charge);
    memset (charge, 0, sizeof *charge);
    if (req->amount_cents <= 0 || req->amount_cents > RST_GW_AMOUNT_MAX_CENTS) {
        snprintf (err, errlen, "%s: amount of %lld centavos is out of range", self->ops->title,
                  (long long) req->amount_cents);
        return RST_GW_PERMANENT;
    }
    if (!s_is_header_safe (req->idempotency_key, RST_GW_IDEMPOTENCY_MAX)) {
        snprintf (err, errlen, "%s: the idempotency key must be 1..%d printable characters",
                  self->ops->title, RST_GW_IDEMPOTENCY_MAX);
        return RST_GW_PERMANENT;
    }
    if (req->webhook_url && *req->webhook_url && !rst_http_url_is_http (req->webhook_url)) {
        snprintf (err, errlen, "%s: the webhook URL must start with http:// or https://",
                  self->ops->title);
        return RST_GW_PERMANENT;
    }
    if (req->expires_in_s < 0) {
        snprintf (err, errlen, "%s: negative expiry", self->ops->title);
        return RST_GW_PERMANENT;
    }
    rst_gw_result_t rc = self->ops->create (self, req, charge, err, errlen);
    if (rc == RST_GW_NOT_FOUND)
        rc = RST_GW_PERMANENT;      //  404 on a create is a wrong URL, not a missing charge
    if (rc != RST_GW_OK)
        rst_charge_clear (charge);
    return rc;
}

rst_gw_result_t
rst_gateway_read (rst_gateway_t *self, const char *charge_id, rst_charge_t *charge, char *err,
                  size_t errlen)
{
    assert (self && charge);
    memset (charge, 0, sizeof *charge);
    if (!charge_id || !rst_gw_id_is_valid (charge_id, strlen (charge_id))) {
        snprintf (err, errlen, "%s: invalid charge id", self->ops->title);
        return RST_GW_PERMANENT;
    }
    rst_gw_result_t rc = self->ops->read ? self->ops->read (self, charge_id, charge, err, errlen)
                                         : rst_gw_charge_read (self, charge_id, charge, err, errlen);
    if (rc != RST_GW_OK)
        rst_charge_clear (charge);
    return rc;
}

// ---------------------------------------------------------------------------
//  HTTP

void
rst_gw_reply_clear (rst_gw_reply_t *reply)
{
    if (!reply)
        return;
    cJSON_Delete (reply->json);
    memset (reply, 0, sizeof *reply);
}

//  The gateway's own error text from an error reply (message, error,
//  description...), made printable and short, into OUT; "" when none.
static void
s_reply_message (const cJSON *json, char *out, size_t outlen)
{
    out[0] = 0;
    static const char *const fields[] = {"message", "error_description", "error", "description",
                                         NULL};
    const char *msg = NULL;
    for (int i = 0; fields[i] && !msg; i++)
        msg = rst_gw_json_str (json, fields[i]);
    if (!msg)
        return;
    size_t o = 0;
    for (size_t i = 0; msg[i] && o + 1 < outlen && o < 160; i++) {
        unsigned char c = (unsigned char) msg[i];
        out[o++] = (c < 0x20 || c == 0x7f) ? ' ' : (char) c;
    }
    out[o] = 0;
}

static int
s_curl_is_permanent (CURLcode cc)
{
    return cc == CURLE_UNSUPPORTED_PROTOCOL || cc == CURLE_URL_MALFORMAT
           || cc == CURLE_BAD_FUNCTION_ARGUMENT;
}

rst_gw_result_t
rst_gw_http (rst_gateway_t *self, const char *method, const char *path, const char *bearer,
             const char *idempotency_key, const cJSON *body, rst_gw_reply_t *reply, char *out_err,
             size_t out_errlen)
{
    //  Messages are built here in full, scrubbed, then copied out: a secret
    //  cut in half by truncation would escape the scrub.
    char err[1024] = "";
    const size_t errlen = sizeof err;
    assert (self && method && path && reply);
    memset (reply, 0, sizeof *reply);
    rst_gw_result_t rc = RST_GW_PERMANENT;
    char *url = NULL, *payload = NULL, *auth = NULL, *idem = NULL;
    struct curl_slist *headers = NULL;
    rst_http_buf_t buf;
    rst_http_buf_init (&buf, RST_GW_REPLY_MAX);
    const char *title = self->ops->title;

    size_t url_len = strlen (self->base_url) + strlen (path) + 1;
    url = malloc (url_len);
    if (!url) {
        snprintf (err, errlen, "out of memory");
        goto done;
    }
    snprintf (url, url_len, "%s%s", self->base_url, path);

    CURL *curl = self->curl;
    long connect_ms = RST_GW_CONNECT_TIMEOUT_MS;
    if (connect_ms > self->timeout_ms)
        connect_ms = self->timeout_ms;
    if (rst_http_easy_setup (curl, url, self->curl_error, connect_ms, self->timeout_ms, &buf)) {
        snprintf (err, errlen, "out of memory");
        goto done;
    }

    struct curl_slist *more;
#define S_HEADER(text)                                                                         \
    do {                                                                                       \
        more = curl_slist_append (headers, (text));                                            \
        if (!more) {                                                                           \
            snprintf (err, errlen, "out of memory");                                           \
            goto done;                                                                         \
        }                                                                                      \
        headers = more;                                                                        \
    } while (0)

    S_HEADER ("Accept: application/json");
    if (bearer) {
        size_t len = strlen (bearer) + 32;
        auth = malloc (len);
        if (!auth) {
            snprintf (err, errlen, "out of memory");
            goto done;
        }
        snprintf (auth, len, "Authorization: Bearer %s", bearer);
        S_HEADER (auth);
    }
    if (idempotency_key) {
        size_t len = strlen (idempotency_key) + 32;
        idem = malloc (len);
        if (!idem) {
            snprintf (err, errlen, "out of memory");
            goto done;
        }
        snprintf (idem, len, "X-Idempotency-Key: %s", idempotency_key);
        S_HEADER (idem);
    }
    if (body) {
        payload = cJSON_PrintUnformatted (body);
        if (!payload) {
            snprintf (err, errlen, "out of memory");
            goto done;
        }
        S_HEADER ("Content-Type: application/json");
        curl_easy_setopt (curl, CURLOPT_POSTFIELDS, payload);
        curl_easy_setopt (curl, CURLOPT_POSTFIELDSIZE, (long) strlen (payload));
    }
    else if (!strcmp (method, "POST")) {
        curl_easy_setopt (curl, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt (curl, CURLOPT_POSTFIELDSIZE, 0L);
    }
    else
        curl_easy_setopt (curl, CURLOPT_HTTPGET, 1L);
#undef S_HEADER
    curl_easy_setopt (curl, CURLOPT_HTTPHEADER, headers);

    char failure[CURL_ERROR_SIZE + 32];
    CURLcode cc = rst_http_perform (curl, &buf, self->curl_error, &reply->http_status, failure,
                                    sizeof failure);
    if (cc != CURLE_OK) {
        snprintf (err, errlen, "%s %s %s: %s", title, method, path, failure);
        rc = buf.too_big || s_curl_is_permanent (cc) ? RST_GW_PERMANENT : RST_GW_TRANSIENT;
        goto done;
    }
    long st = reply->http_status;
    reply->json = buf.data ? cJSON_ParseWithLength (buf.data, buf.len) : NULL;
    if (st >= 200 && st < 300) {
        if (!reply->json) {
            snprintf (err, errlen, "%s %s %s: malformed reply (HTTP %ld, not JSON)", title,
                      method, path, st);
            rc = RST_GW_PERMANENT;
            goto done;
        }
        rc = RST_GW_OK;
        goto done;
    }
    char msg[200];
    s_reply_message (reply->json, msg, sizeof msg);
    if (st == 401 || st == 403)
        snprintf (err, errlen, "%s %s %s: HTTP %ld: the gateway refused the credentials%s%s",
                  title, method, path, st, msg[0] ? ": " : "", msg);
    else
        snprintf (err, errlen, "%s %s %s: HTTP %ld%s%s", title, method, path, st,
                  msg[0] ? ": " : "", msg);
    if (st >= 500 || st == 429)
        rc = RST_GW_TRANSIENT;
    else if (st == 404)
        rc = RST_GW_NOT_FOUND;
    else
        rc = RST_GW_PERMANENT;

done:
    if (rc != RST_GW_OK) {
        rst_gw_scrub (self, err, errlen);
        if (out_err && out_errlen)
            snprintf (out_err, out_errlen, "%s", err);
    }
    curl_slist_free_all (headers);
    if (auth) {
        sodium_memzero (auth, strlen (auth));
        free (auth);
    }
    free (idem);
    if (payload) {
        sodium_memzero (payload, strlen (payload));   //  SyncPay's token request holds a secret
        free (payload);
    }
    rst_http_buf_destroy (&buf);
    free (url);
    return rc;
}

//  Masks every occurrence of SECRET in BUF with "***". A secret shorter
//  than 4 bytes is left alone: the mask must be shorter than what it hides.
static void
s_mask (char *buf, size_t buflen, const char *secret)
{
    if (secret && strlen (secret) >= 4)
        rst_http_mask (buf, buflen, secret, "***");
}

void
rst_gw_scrub (const rst_gateway_t *self, char *buf, size_t buflen)
{
    if (!self || !buf || !buflen)
        return;
    buf[buflen - 1] = 0;
    const cJSON *c;
    cJSON_ArrayForEach (c, self->credentials) {
        if (cJSON_IsString (c))
            s_mask (buf, buflen, c->valuestring);
    }
    s_mask (buf, buflen, self->token);
}

// ---------------------------------------------------------------------------
//  Charges: the create/read sequence and the charge object

//  The member at PATH ("a.b.c": down nested objects) of OBJ, or NULL.
static const cJSON *
s_path (const cJSON *obj, const char *path)
{
    char name[64];
    for (;;) {
        const char *dot = strchr (path, '.');
        size_t len = dot ? (size_t) (dot - path) : strlen (path);
        if (!cJSON_IsObject (obj) || len >= sizeof name)
            return NULL;
        memcpy (name, path, len);
        name[len] = 0;
        obj = cJSON_GetObjectItemCaseSensitive (obj, name);
        if (!dot)
            return obj;
        path = dot + 1;
    }
}

//  The first of PATHS (NULL-terminated) present in OBJ, or NULL.
static const cJSON *
s_first (const cJSON *obj, const char *const *paths)
{
    const cJSON *item = NULL;
    for (; paths && *paths && !item; paths++)
        item = s_path (obj, *paths);
    return item;
}

//  The string at PATH in OBJ (borrowed), or NULL.
static const char *
s_path_str (const cJSON *obj, const char *path)
{
    const cJSON *item = s_path (obj, path);
    return cJSON_IsString (item) ? item->valuestring : NULL;
}

rst_charge_status_t
rst_gw_status_of (const rst_gw_status_t *table, const char *word)
{
    for (; word && table->word; table++)
        if (!strcasecmp (word, table->word))
            return table->status;
    return RST_CHARGE_UNKNOWN;
}

rst_gw_result_t
rst_gw_charge_code (rst_charge_t *charge, const char *code, char *err, size_t errlen)
{
    charge->pix_code = strdup (code);
    if (!charge->pix_code) {
        snprintf (err, errlen, "out of memory");
        return RST_GW_TRANSIENT;
    }
    return RST_GW_OK;
}

rst_gw_result_t
rst_gw_charge_parse (const rst_gateway_t *self, const cJSON *obj, const char *asked_id,
                     int require_code, rst_charge_t *charge, char *err, size_t errlen)
{
    const char *title = self->ops->title;
    const rst_gw_fields_t *f = self->ops->fields;
    const cJSON *id = s_first (obj, f->id);
    if (asked_id && f->id_optional)
        snprintf (charge->id, sizeof charge->id, "%s", asked_id);
    else if (rst_gw_json_id (id, charge->id)) {
        snprintf (err, errlen, "%s: malformed reply (no %s id)", title, f->noun);
        return RST_GW_PERMANENT;
    }
    const char *status = rst_gw_json_str (obj, "status");
    if (!status) {
        snprintf (err, errlen, "%s: malformed reply (%s %s has no status)", title, f->noun,
                  charge->id);
        return RST_GW_PERMANENT;
    }
    char got[RST_GW_CHARGE_ID_MAX];
    if (asked_id && id && (rst_gw_json_id (id, got) || strcmp (got, asked_id))) {
        snprintf (err, errlen, "%s: asked for %s %s, got another", title, f->noun, asked_id);
        return RST_GW_PERMANENT;
    }
    charge->status = rst_gw_status_of (f->statuses, status);
    rst_gw_status_text (charge, status);

    charge->amount_cents = -1;
    const cJSON *amount = s_first (obj, f->amount);
    if (amount
        && (f->amount_in_cents ? rst_gw_json_cents (amount, &charge->amount_cents)
                               : rst_gw_json_reais (amount, &charge->amount_cents))) {
        snprintf (err, errlen, "%s: malformed reply (%s %s %s)", title, f->noun, charge->id,
                  amount->string ? amount->string : "amount");
        return RST_GW_PERMANENT;
    }

    const char *code = NULL;
    for (const char *const *p = f->code; p && *p && !(code && *code); p++)
        code = s_path_str (obj, *p);
    if (code && *code) {
        rst_gw_result_t rc = rst_gw_charge_code (charge, code, err, errlen);
        if (rc != RST_GW_OK)
            return rc;
    }
    else if (require_code) {
        snprintf (err, errlen, "%s: malformed reply (%s %s has no qr_code)", title, f->noun,
                  charge->id);
        return RST_GW_PERMANENT;
    }

    const char *exp = f->expiry ? s_path_str (obj, f->expiry) : NULL;
    if (exp && rst_gw_time_parse (exp, &charge->expires_at))
        charge->expires_at = 0;
    return RST_GW_OK;
}

rst_gw_result_t
rst_gw_charge_call (rst_gateway_t *self, const char *method, const char *path,
                    const char *idempotency_key, const cJSON *body, const char *asked_id,
                    rst_charge_t *charge, char *err, size_t errlen)
{
    const rst_gw_ops_t *ops = self->ops;
    rst_gw_reply_t reply;
    rst_gw_result_t rc
        = ops->call ? ops->call (self, method, path, idempotency_key, body, &reply, err, errlen)
                    : rst_gw_http (self, method, path, rst_gw_cred (self, ops->bearer),
                                   idempotency_key, body, &reply, err, errlen);
    if (rc == RST_GW_OK) {
        const cJSON *obj = ops->unwrap ? ops->unwrap (reply.json, asked_id != NULL) : reply.json;
        if (obj)
            rc = rst_gw_charge_parse (self, obj, asked_id, !asked_id, charge, err, errlen);
        else {
            snprintf (err, errlen, "%s: %s %s not found", ops->title, ops->fields->noun,
                      asked_id ? asked_id : "");
            rc = RST_GW_NOT_FOUND;
        }
    }
    rst_gw_reply_clear (&reply);
    return rc;
}

rst_gw_result_t
rst_gw_charge_read (rst_gateway_t *self, const char *charge_id, rst_charge_t *charge, char *err,
                    size_t errlen)
{
    char path[64 + RST_GW_CHARGE_ID_MAX];
    snprintf (path, sizeof path, "%s%s", self->ops->read_path, charge_id);
    return rst_gw_charge_call (self, "GET", path, NULL, NULL, charge_id, charge, err, errlen);
}

// ---------------------------------------------------------------------------
//  JSON, ids, amounts, times

const char *
rst_gw_cred (const rst_gateway_t *self, const char *name)
{
    return rst_gw_json_str (self->credentials, name);
}

const char *
rst_gw_json_str (const cJSON *obj, const char *name)
{
    if (!cJSON_IsObject (obj))
        return NULL;
    const cJSON *item = cJSON_GetObjectItemCaseSensitive (obj, name);
    return cJSON_IsString (item) ? item->valuestring : NULL;
}

int
rst_gw_id_is_valid (const char *id, size_t len)
{
    if (!id || len == 0 || len >= RST_GW_CHARGE_ID_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) id[i];
        if (!(isalnum (c) || c == '-' || c == '_' || c == '.') || c >= 0x80)
            return 0;
    }
    //  "." and ".." would change a URL path.
    if ((len == 1 && id[0] == '.') || (len == 2 && id[0] == '.' && id[1] == '.'))
        return 0;
    return 1;
}

int
rst_gw_json_id (const cJSON *item, char *out)
{
    out[0] = 0;
    if (cJSON_IsString (item) && item->valuestring) {
        size_t len = strlen (item->valuestring);
        if (!rst_gw_id_is_valid (item->valuestring, len))
            return -1;
        memcpy (out, item->valuestring, len + 1);
        return 0;
    }
    if (cJSON_IsNumber (item)) {
        double v = item->valuedouble;
        //  Integers up to 2^53 are exact in a double; MP ids are far below.
        if (!isfinite (v) || v < 1 || v > 9007199254740992.0 || v != floor (v))
            return -1;
        snprintf (out, RST_GW_CHARGE_ID_MAX, "%lld", (long long) v);
        return 0;
    }
    return -1;
}

int
rst_gw_cents_to_reais (int64_t cents, char *buf, size_t buflen)
{
    if (cents < 0 || cents > RST_GW_AMOUNT_MAX_CENTS || !buf)
        return -1;
    int n = snprintf (buf, buflen, "%lld.%02lld", (long long) (cents / 100),
                      (long long) (cents % 100));
    return n > 0 && (size_t) n < buflen ? 0 : -1;
}

cJSON *
rst_gw_add_reais (cJSON *obj, const char *name, int64_t cents)
{
    char amount[32];
    if (rst_gw_cents_to_reais (cents, amount, sizeof amount))
        return NULL;
    return cJSON_AddRawToObject (obj, name, amount);
}

const char *
rst_gw_description (const rst_charge_request_t *req)
{
    return req->description && *req->description ? req->description : "PIX";
}

int
rst_gw_reais_parse (const char *text, int64_t *cents)
{
    if (!text || !cents)
        return -1;
    const char *s = text;
    while (*s == ' ' || *s == '\t')
        s++;
    int64_t whole = 0;
    int digits = 0;
    while (*s >= '0' && *s <= '9') {
        whole = whole * 10 + (*s - '0');
        if (whole > RST_GW_AMOUNT_MAX_CENTS / 100)
            return -1;
        s++;
        digits++;
    }
    int64_t frac = 0;
    int fdigits = 0;
    if (*s == '.') {
        s++;
        while (*s >= '0' && *s <= '9') {
            if (fdigits < 2)
                frac = frac * 10 + (*s - '0');
            else if (*s != '0')
                return -1;          //  a fraction of a centavo
            fdigits++;
            s++;
        }
        if (fdigits == 0)
            return -1;
    }
    if (digits == 0)
        return -1;
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s)
        return -1;
    if (fdigits == 1)
        frac *= 10;
    *cents = whole * 100 + frac;
    return 0;
}

int
rst_gw_json_reais (const cJSON *item, int64_t *cents)
{
    if (cJSON_IsString (item) && item->valuestring)
        return rst_gw_reais_parse (item->valuestring, cents);
    if (!cJSON_IsNumber (item))
        return -1;
    double v = item->valuedouble;
    if (!isfinite (v) || v < 0 || v > (double) (RST_GW_AMOUNT_MAX_CENTS / 100))
        return -1;
    double c = v * 100.0;
    double r = nearbyint (c);
    if (fabs (c - r) > 0.001)
        return -1;
    *cents = (int64_t) r;
    return 0;
}

int
rst_gw_json_cents (const cJSON *item, int64_t *cents)
{
    if (cJSON_IsString (item) && item->valuestring) {
        const char *s = item->valuestring;
        if (!*s)
            return -1;
        int64_t v = 0;
        for (; *s; s++) {
            if (*s < '0' || *s > '9')
                return -1;
            v = v * 10 + (*s - '0');
            if (v > RST_GW_AMOUNT_MAX_CENTS)
                return -1;
        }
        *cents = v;
        return 0;
    }
    if (!cJSON_IsNumber (item))
        return -1;
    double v = item->valuedouble;
    if (!isfinite (v) || v < 0 || v > (double) RST_GW_AMOUNT_MAX_CENTS || v != floor (v))
        return -1;
    *cents = (int64_t) v;
    return 0;
}

//  Copies printable ASCII of WORD into OUT (OUTLEN bytes), truncated.
static void
s_copy_word (char *out, size_t outlen, const char *word)
{
    size_t o = 0;
    for (size_t i = 0; word && word[i] && o + 1 < outlen; i++) {
        unsigned char c = (unsigned char) word[i];
        if (c >= 0x20 && c < 0x7f)
            out[o++] = (char) c;
    }
    out[o] = 0;
}

const char *
rst_gw_status_text (rst_charge_t *charge, const char *word)
{
    s_copy_word (charge->status_text, sizeof charge->status_text, word);
    return charge->status_text;
}

void
rst_gw_notice_hint (rst_gw_notice_t *notice, const char *word)
{
    s_copy_word (notice->status_hint, sizeof notice->status_hint, word);
}

//  Reads exactly N digits at *S into *OUT; advances *S. 0 or -1.
static int
s_digits (const char **s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*s)[i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *s += n;
    *out = v;
    return 0;
}

//  Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
static int64_t
s_days_from_civil (int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int
rst_gw_time_parse (const char *text, int64_t *unix_s)
{
    if (!text || !unix_s)
        return -1;
    const char *s = text;
    int y, mo, d, h, mi, se;
    if (s_digits (&s, 4, &y) || *s++ != '-' || s_digits (&s, 2, &mo) || *s++ != '-'
        || s_digits (&s, 2, &d))
        return -1;
    if (*s != 'T' && *s != ' ')
        return -1;
    s++;
    if (s_digits (&s, 2, &h) || *s++ != ':' || s_digits (&s, 2, &mi) || *s++ != ':'
        || s_digits (&s, 2, &se))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
        return -1;
    if (*s == '.') {
        s++;
        if (*s < '0' || *s > '9')
            return -1;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    int offset = 0;
    if (*s == 'Z' || *s == 'z')
        s++;
    else if (*s == '+' || *s == '-') {
        int sign = *s == '-' ? -1 : 1;
        s++;
        int oh, om;
        if (s_digits (&s, 2, &oh))
            return -1;
        if (*s == ':')
            s++;
        if (s_digits (&s, 2, &om) || oh > 23 || om > 59)
            return -1;
        offset = sign * (oh * 3600 + om * 60);
    }
    if (*s)
        return -1;
    *unix_s = s_days_from_civil (y, mo, d) * 86400 + h * 3600 + mi * 60 + se - offset;
    return 0;
}

// ---------------------------------------------------------------------------
//  Webhooks

const char *
rst_gw_header (const rst_gw_webhook_t *wh, const char *name, size_t *len)
{
    size_t nlen = strlen (name);
    if (!wh->headers)
        return NULL;
    for (size_t i = 0; i < wh->nheaders; i++) {
        const rst_gw_header_t *h = &wh->headers[i];
        if (h->name && h->name_len == nlen && !strncasecmp (h->name, name, nlen)
            && (h->value || h->value_len == 0)) {
            *len = h->value_len;
            return h->value ? h->value : "";
        }
    }
    return NULL;
}

//  Percent-decodes S[0..LEN) ('+' = space, rst_url_decode) into OUT as a
//  string. Returns the decoded length, or -1 if it does not fit OUTLEN (with
//  the NUL, OUTLEN ≥ 1), is badly encoded or holds a NUL.
static long
s_decode (const char *s, size_t len, char *out, size_t outlen)
{
    int n = rst_url_decode (s, len, out, outlen - 1);
    if (n < 0 || memchr (out, 0, (size_t) n))
        return -1;                  //  an embedded NUL is never legitimate here
    out[n] = 0;
    return n;
}

int
rst_gw_form_get (const char *query, size_t query_len, const char *key, char *out, size_t outlen)
{
    if (!query || !outlen)
        return 0;
    size_t i = 0;
    while (i < query_len) {
        size_t start = i;
        while (i < query_len && query[i] != '&')
            i++;
        size_t end = i;             //  one "k=v" pair in [start, end)
        i++;
        size_t eq = start;
        while (eq < end && query[eq] != '=')
            eq++;
        char name[64];
        if (s_decode (query + start, eq - start, name, sizeof name) < 0)
            continue;               //  a long or odd key is not the one we look for
        if (strcmp (name, key))
            continue;
        if (eq >= end) {
            out[0] = 0;
            return 1;
        }
        return s_decode (query + eq + 1, end - eq - 1, out, outlen) < 0 ? -1 : 1;
    }
    return 0;
}

cJSON *
rst_gw_webhook_json (const rst_gw_webhook_t *wh, char *err, size_t errlen)
{
    const rst_gw_ops_t *ops = s_ops (wh->kind);
    const char *title = ops ? ops->title : "gateway";
    if (!wh->body_len) {
        snprintf (err, errlen, "%s webhook: empty body", title);
        return NULL;
    }
    cJSON *root = cJSON_ParseWithLength (wh->body, wh->body_len);
    if (!cJSON_IsObject (root)) {
        snprintf (err, errlen, "%s webhook: body is not a JSON object", title);
        cJSON_Delete (root);
        return NULL;
    }
    return root;
}

rst_gw_webhook_kind_t
rst_gateway_webhook_parse (const rst_gw_webhook_t *wh, rst_gw_notice_t *notice, char *err,
                           size_t errlen)
{
    assert (wh && notice);
    memset (notice, 0, sizeof *notice);
    const rst_gw_ops_t *ops = s_ops (wh->kind);
    if (!ops) {
        snprintf (err, errlen, "unknown gateway kind %d", (int) wh->kind);
        return RST_GW_WEBHOOK_BAD;
    }
    if (wh->body_len > RST_GW_WEBHOOK_MAX_BODY) {
        snprintf (err, errlen, "%s webhook: body larger than %d bytes", ops->title,
                  RST_GW_WEBHOOK_MAX_BODY);
        return RST_GW_WEBHOOK_BAD;
    }
    if (wh->body_len && !wh->body) {
        snprintf (err, errlen, "%s webhook: no body", ops->title);
        return RST_GW_WEBHOOK_BAD;
    }
    rst_gw_webhook_kind_t kind = ops->webhook_parse (wh, notice, err, errlen);
    if (kind != RST_GW_WEBHOOK_CHARGE)
        notice->charge_id[0] = 0;
    return kind;
}

int
rst_gateway_webhook_auth (const rst_gw_webhook_t *wh, const rst_gw_notice_t *notice,
                          const char *secret, char *err, size_t errlen)
{
    assert (wh && notice);
    const rst_gw_ops_t *ops = s_ops (wh->kind);
    if (!ops) {
        snprintf (err, errlen, "unknown gateway kind %d", (int) wh->kind);
        return -1;
    }
    return ops->webhook_auth (wh, notice, secret, err, errlen);
}
