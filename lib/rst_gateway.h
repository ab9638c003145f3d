/*  rst_gateway — PIX payment gateways behind one interface.

    One rst_gateway_t is one seller's account at one gateway (kind +
    credentials + base URL + one CURL easy handle): create a charge, read a
    charge. Webhook parsing and authentication are pure functions (no
    network), used by the front before it journals a webhook.

    Adapters (reference/telegram-and-pix.md §2): Mercado Pago, PushinPay,
    SyncPay, one file each (rst_gw_<kind>.c) behind the private ops table of
    rst_gateway_impl.h; a fourth gateway is one new file plus one line in
    the registry of rst_gateway.c.

    Base URLs: RASTRO_GATEWAY_MERCADOPAGO_URL (https://api.mercadopago.com),
    RASTRO_GATEWAY_PUSHINPAY_URL (https://api.pushinpay.com.br),
    RASTRO_GATEWAY_SYNCPAY_URL (https://api.syncpayments.com.br).

    Amounts are always integer centavos here; adapters convert to the
    gateway's unit (reais with two decimals, or centavos).

    Credentials (a JSON object, stored sealed, never logged or put into an
    error message):
        mercadopago  {"access_token", "webhook_secret"}   (+ optional "payer_email")
        pushinpay    {"token", "webhook_token"}
        syncpay      {"client_id", "client_secret"}       (+ optional "client": {name, cpf, email, phone})

    Threads: an rst_gateway_t is used by one thread at a time; the webhook
    functions are thread-safe.
*/
#ifndef RST_GATEWAY_H
#define RST_GATEWAY_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    RST_GW_MERCADOPAGO = 0,
    RST_GW_PUSHINPAY = 1,
    RST_GW_SYNCPAY = 2,
    RST_GW_KINDS                    //  count
} rst_gw_kind_t;

#define RST_GW_CHARGE_ID_MAX 128    //  buffer size; longer ids are refused
#define RST_GW_TIMEOUT_MS    10000  //  per call

//  "mercadopago", "pushinpay", "syncpay".
const char *rst_gateway_kind_name (rst_gw_kind_t kind);
//  Parses a kind name (exact, lower case). Returns the kind or -1.
int rst_gateway_kind_parse (const char *name);

//  Checks a credentials JSON text for KIND: valid JSON object, required
//  string fields present, non-empty, at most 512 bytes each, no control
//  characters. Returns 0, or -1 with a one-line reason naming the field (never
//  its value) in ERR.
int rst_gateway_credentials_check (rst_gw_kind_t kind, const char *json, char *err, size_t errlen);

//  The secret a webhook of this account is authenticated with, from its
//  credentials: Mercado Pago "webhook_secret", PushinPay "webhook_token";
//  NULL for SyncPay (no authentication) or bad JSON. A new string the caller
//  frees with rst_secret_free-like care (sodium_memzero then free), or NULL.
char *rst_gateway_webhook_secret (rst_gw_kind_t kind, const char *credentials_json);

//  What a charge is, in rastro's words.
typedef enum {
    RST_CHARGE_PENDING = 0,         //  MP pending/in_process/authorized; PushinPay created; SyncPay pending
    RST_CHARGE_PAID,                //  MP approved; PushinPay paid; SyncPay completed
    RST_CHARGE_EXPIRED,             //  cancelled / canceled / expired
    RST_CHARGE_FAILED,              //  rejected / failed
    RST_CHARGE_REFUNDED,            //  refunded / charged_back / med
    RST_CHARGE_UNKNOWN              //  a status word this adapter does not know
} rst_charge_status_t;

typedef struct {
    char id[RST_GW_CHARGE_ID_MAX];  //  the gateway's charge id (MP: decimal int64 as text)
    rst_charge_status_t status;
    char status_text[32];           //  the gateway's own word, for logs
    int64_t amount_cents;           //  -1 when the reply had no amount
    char *pix_code;                 //  copy-and-paste BR Code (malloc'd) or NULL
    int64_t expires_at;             //  Unix seconds, 0 when unknown
} rst_charge_t;

//  Frees CHARGE's pix_code and zeroes it. Safe on a zeroed charge.
void rst_charge_clear (rst_charge_t *charge);

typedef struct {
    int64_t amount_cents;           //  ≥ 50
    const char *description;        //  the offer's name
    const char *reference;          //  rastro's payment id as text (MP external_reference)
    const char *idempotency_key;    //  the same on every retry of this charge
    const char *webhook_url;        //  full URL of the front's POST /webhook/<kind>, or NULL
    int expires_in_s;               //  wanted lifetime (MP date_of_expiration); 0 = gateway default
} rst_charge_request_t;

//  How a call ended.
typedef enum {
    RST_GW_OK = 0,
    RST_GW_TRANSIENT,               //  timeout, connection error, 5xx, 429: retry later
    RST_GW_PERMANENT,               //  4xx validation, bad credentials, malformed reply
    RST_GW_NOT_FOUND                //  read: the gateway does not know this id
} rst_gw_result_t;

typedef struct rst_gateway_t rst_gateway_t;

//  Opens an account of KIND with CREDENTIALS_JSON (copied, wiped on
//  destroy). BASE_URL NULL = the environment variable, else the default.
//  Returns a new gateway the caller owns, or NULL with a reason in ERR.
rst_gateway_t *rst_gateway_new (rst_gw_kind_t kind, const char *credentials_json,
                                const char *base_url, char *err, size_t errlen);
void rst_gateway_destroy (rst_gateway_t **self_p);
rst_gw_kind_t rst_gateway_kind (const rst_gateway_t *self);

//  Sets the whole-call timeout of later calls (default RST_GW_TIMEOUT_MS;
//  tests use a short one). TIMEOUT_MS ≤ 0 restores the default.
void rst_gateway_set_timeout (rst_gateway_t *self, long timeout_ms);

//  Creates a PIX charge. *CHARGE (OUT) is zeroed first (clear it before
//  reusing it). On RST_GW_OK it holds the id, status (pending), amount,
//  pix_code (CRC-checked by the caller) and expiry. Otherwise ERR says why in
//  one line (no secrets). REQ->idempotency_key is required (1..256 printable
//  characters); amount_cents must be positive (each gateway enforces its own
//  minimum, e.g. PushinPay's 50 -> RST_GW_PERMANENT).
rst_gw_result_t rst_gateway_create (rst_gateway_t *self, const rst_charge_request_t *req,
                                    rst_charge_t *charge, char *err, size_t errlen);

//  Reads a charge by its gateway id (the only thing trusted about a payment).
//  *CHARGE (OUT) is zeroed first. RST_GW_NOT_FOUND when the gateway does not
//  know the id; an id that is not 1..127 characters of [A-Za-z0-9._-] is
//  RST_GW_PERMANENT without a request.
rst_gw_result_t rst_gateway_read (rst_gateway_t *self, const char *charge_id,
                                  rst_charge_t *charge, char *err, size_t errlen);

// ---------------------------------------------------------------------------
//  Webhooks (pure)

typedef struct {
    const char *name;               //  lower case
    size_t name_len;
    const char *value;
    size_t value_len;
} rst_gw_header_t;

typedef struct {
    rst_gw_kind_t kind;
    const char *query;              //  the request's query string without '?', or NULL
    size_t query_len;
    const rst_gw_header_t *headers;
    size_t nheaders;
    const char *content_type;       //  may be NULL
    size_t content_type_len;
    const char *body;
    size_t body_len;
    int64_t now_s;                  //  for timestamp freshness
} rst_gw_webhook_t;

#define RST_GW_WEBHOOK_MAX_BODY  65536
#define RST_GW_WEBHOOK_MAX_SKEW  900    //  seconds a Mercado Pago signature stays fresh

typedef enum {
    RST_GW_WEBHOOK_CHARGE = 0,      //  about a charge: NOTICE->charge_id is set
    RST_GW_WEBHOOK_IGNORED,         //  well-formed but not about a charge (e.g. MP type != payment)
    RST_GW_WEBHOOK_BAD              //  malformed: answer 400
} rst_gw_webhook_kind_t;

typedef struct {
    char charge_id[RST_GW_CHARGE_ID_MAX];
    char status_hint[32];           //  the status the body claims, if any (never trusted)
} rst_gw_notice_t;

//  Parses a webhook: Mercado Pago data.id from the query (or body), PushinPay
//  JSON or form body "id", SyncPay data.id / identifier. Returns the kind
//  of webhook; for RST_GW_WEBHOOK_BAD a one-line reason is in ERR.
rst_gw_webhook_kind_t rst_gateway_webhook_parse (const rst_gw_webhook_t *wh, rst_gw_notice_t *notice,
                                                 char *err, size_t errlen);

//  Authenticates a parsed webhook with one account's SECRET
//  (rst_gateway_webhook_secret): Mercado Pago's x-signature HMAC-SHA256 over
//  the manifest plus ts freshness; PushinPay's x-pushinpay-token header;
//  SyncPay has none (always 0; the charge is re-read anyway). Comparisons
//  are constant-time. A NULL or empty SECRET never authenticates Mercado
//  Pago or PushinPay. May be called whatever the parse returned (it reads
//  the request again). Returns 0 when authentic, else -1 with ERR.
int rst_gateway_webhook_auth (const rst_gw_webhook_t *wh, const rst_gw_notice_t *notice,
                              const char *secret, char *err, size_t errlen);

#endif
