/*  rst_gateway_impl — private parts shared by rst_gateway.c and the adapters.

    Not for users of rst_gateway.h. An adapter (lib/rst_gw_<kind>.c) fills
    one rst_gw_ops_t: its name, the credential fields it needs, the
    environment variable and default of its base URL, where its charge
    objects keep id, status, amount, code and expiry (rst_gw_fields_t),
    and its functions (create, webhook parse, webhook auth; read and the
    authenticated call only when the common ones do not fit). rst_gateway.c
    keeps the registry (one line per adapter), validates every argument
    once, and offers the helpers below: one HTTP call with timeouts and
    error classification, the create/read sequence (call, unwrap, read the
    charge object), JSON field access, amounts, ids, times, and webhook
    body/header/query lookup. So an adapter holds only what is its
    gateway's own: URLs, request bodies, field names, units, status words,
    webhook formats and authentication.

    Error classification of rst_gw_http (the whole module follows it):
        timeout, connection error, HTTP 5xx, HTTP 429   -> RST_GW_TRANSIENT
        HTTP 404                                        -> RST_GW_NOT_FOUND
        other HTTP 4xx, 1xx/3xx, a reply that is not
        JSON, a reply larger than RST_GW_REPLY_MAX       -> RST_GW_PERMANENT
    Adapters turn NOT_FOUND into PERMANENT outside reads, and treat a 2xx
    reply without the fields they need as PERMANENT ("malformed reply").

    Secrets: every message that leaves an adapter passes through
    rst_gw_scrub, which masks every credential string (and the cached
    SyncPay access token) should a gateway ever echo one back.
*/
#ifndef RST_GATEWAY_IMPL_H
#define RST_GATEWAY_IMPL_H

#include "rst_gateway.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stdint.h>

#define RST_GW_REPLY_MAX          (1024 * 1024)   //  bytes; a QR PNG in base64 fits easily
#define RST_GW_CONNECT_TIMEOUT_MS 5000
#define RST_GW_FIELD_MAX          512             //  longest credential string
#define RST_GW_AMOUNT_MAX_CENTS   INT64_C (10000000000000)  //  R$ 100 billion: beyond is a bug
#define RST_GW_IDEMPOTENCY_MAX    256

//  An HTTP reply. JSON is the parsed body (owned) or NULL.
typedef struct {
    long http_status;               //  0 when no reply arrived
    cJSON *json;
} rst_gw_reply_t;

//  A gateway's status word and what it means. A table ends with {NULL}.
typedef struct {
    const char *word;               //  as the gateway writes it (compared ignoring case)
    rst_charge_status_t status;
} rst_gw_status_t;

//  Where a gateway's charge object (a reply to a create or a read) keeps
//  what rst_charge_t needs. Member lists end with NULL; the first member
//  present wins (for the code: the first non-empty string). A member may be
//  a dotted path down nested objects ("pix_details.emv"). The status is
//  always the member "status".
typedef struct {
    const char *noun;                   //  "payment", "transaction": for messages
    const char *const *id;              //  the charge id
    int id_optional;                    //  1: a read's reply may leave the id out
    const char *const *amount;          //  the amount; may be absent
    int amount_in_cents;                //  1: centavos (integer); 0: reais
    const char *const *code;            //  the PIX copy-and-paste code
    const char *expiry;                 //  the expiry time, or NULL when there is none
    const rst_gw_status_t *statuses;    //  the status words
} rst_gw_fields_t;

typedef struct {
    const char *name;               //  "mercadopago", as in the database
    const char *title;              //  "Mercado Pago", for messages
    const char *url_env;            //  RASTRO_GATEWAY_<KIND>_URL
    const char *default_url;        //  the production API
    const char *const *required;    //  credential string fields, NULL-terminated
    const char *secret_field;       //  credential holding the webhook secret, or NULL
    const char *bearer;             //  credential sent as "Authorization: Bearer", or NULL
                                    //  when CALL authenticates
    const char *read_path;          //  a charge is read with GET <read_path><id>
    const rst_gw_fields_t *fields;  //  its charge objects (rst_gw_charge_parse)

    //  Optional extra credential checks (after the required fields passed);
    //  ROOT is a parsed object. 0 or -1 with ERR (field names only).
    int (*check) (const cJSON *root, char *err, size_t errlen);
    //  Creates a charge; CHARGE is zeroed, REQ is validated.
    rst_gw_result_t (*create) (rst_gateway_t *self, const rst_charge_request_t *req,
                               rst_charge_t *charge, char *err, size_t errlen);
    //  Reads a charge; CHARGE is zeroed, CHARGE_ID passed rst_gw_id_is_valid.
    //  May be NULL: rst_gw_charge_read.
    rst_gw_result_t (*read) (rst_gateway_t *self, const char *charge_id, rst_charge_t *charge,
                             char *err, size_t errlen);
    //  One authenticated call, as rst_gw_http (same contract) but the adapter
    //  authenticates. May be NULL: rst_gw_http with the BEARER credential.
    rst_gw_result_t (*call) (rst_gateway_t *self, const char *method, const char *path,
                             const char *idempotency_key, const cJSON *body,
                             rst_gw_reply_t *reply, char *err, size_t errlen);
    //  The charge object of a 2xx reply (READ: 1 on a read, 0 on a create),
    //  borrowed from JSON; NULL when the reply says there is no such charge.
    //  May be NULL: the reply is the charge object.
    const cJSON *(*unwrap) (const cJSON *json, int read);
    //  Parses a webhook whose body fits RST_GW_WEBHOOK_MAX_BODY; NOTICE is zeroed.
    rst_gw_webhook_kind_t (*webhook_parse) (const rst_gw_webhook_t *wh, rst_gw_notice_t *notice,
                                            char *err, size_t errlen);
    //  Authenticates; SECRET may be NULL (the adapter decides what that means).
    int (*webhook_auth) (const rst_gw_webhook_t *wh, const rst_gw_notice_t *notice,
                         const char *secret, char *err, size_t errlen);
    //  Frees adapter state kept in the gateway (e.g. a cached token). May be NULL.
    void (*forget) (rst_gateway_t *self);
} rst_gw_ops_t;

extern const rst_gw_ops_t rst_gw_mercadopago_ops;
extern const rst_gw_ops_t rst_gw_pushinpay_ops;
extern const rst_gw_ops_t rst_gw_syncpay_ops;

struct rst_gateway_t {
    rst_gw_kind_t kind;
    const rst_gw_ops_t *ops;        //  the adapter
    cJSON *credentials;             //  parsed credentials (strings wiped on destroy)
    char *base_url;                 //  no trailing slash
    CURL *curl;                     //  easy handle reused across calls
    long timeout_ms;                //  whole-call timeout
    char curl_error[CURL_ERROR_SIZE];
    //  SyncPay: cached bearer token (wiped when dropped) and its expiry (Unix s).
    char *token;
    int64_t token_expires_at;
};

//  Frees REPLY's JSON and zeroes it. Safe on NULL and to repeat.
void rst_gw_reply_clear (rst_gw_reply_t *reply);

//  One call: METHOD ("GET" or "POST") on base_url + PATH, with "Authorization:
//  Bearer BEARER" when BEARER is set, "X-Idempotency-Key" when IDEMPOTENCY_KEY
//  is set, and BODY as application/json when set. Classifies as described
//  above; *REPLY (OUT) holds the status and parsed JSON whatever the result
//  (so an adapter may look at a 401). ERR is scrubbed.
rst_gw_result_t rst_gw_http (rst_gateway_t *self, const char *method, const char *path,
                             const char *bearer, const char *idempotency_key, const cJSON *body,
                             rst_gw_reply_t *reply, char *err, size_t errlen);

//  The create/read sequence: one call (ops->call, else rst_gw_http with the
//  bearer credential and IDEMPOTENCY_KEY), then the charge object of a 2xx
//  reply (ops->unwrap) read into CHARGE by rst_gw_charge_parse. ASKED_ID is
//  the id a read asked for, NULL on a create (the code is then required).
//  BODY stays the caller's. Returns as rst_gw_http, NOT_FOUND when unwrap
//  found no charge, or as rst_gw_charge_parse; ERR says why.
rst_gw_result_t rst_gw_charge_call (rst_gateway_t *self, const char *method, const char *path,
                                    const char *idempotency_key, const cJSON *body,
                                    const char *asked_id, rst_charge_t *charge, char *err,
                                    size_t errlen);

//  A read: rst_gw_charge_call with GET ops->read_path + CHARGE_ID.
rst_gw_result_t rst_gw_charge_read (rst_gateway_t *self, const char *charge_id,
                                    rst_charge_t *charge, char *err, size_t errlen);

//  Fills CHARGE from OBJ, a charge object described by ops->fields: the id
//  (on a read whose gateway may leave it out, ASKED_ID), the status and its
//  word, the amount (-1 when absent), the code (a copy; required when
//  REQUIRE_CODE) and the expiry (0 when absent or unreadable). On a read
//  (ASKED_ID set) an id in OBJ must be ASKED_ID. Returns RST_GW_OK,
//  RST_GW_PERMANENT for a malformed object, RST_GW_TRANSIENT when memory ran
//  out; ERR says why. On failure CHARGE holds no code (it is copied last).
rst_gw_result_t rst_gw_charge_parse (const rst_gateway_t *self, const cJSON *obj,
                                     const char *asked_id, int require_code,
                                     rst_charge_t *charge, char *err, size_t errlen);

//  Copies CODE into CHARGE->pix_code. RST_GW_OK, or RST_GW_TRANSIENT with
//  "out of memory".
rst_gw_result_t rst_gw_charge_code (rst_charge_t *charge, const char *code, char *err,
                                    size_t errlen);

//  What WORD means in TABLE (ignoring case); RST_CHARGE_UNKNOWN when it is
//  not there or WORD is NULL.
rst_charge_status_t rst_gw_status_of (const rst_gw_status_t *table, const char *word);

//  Masks every credential value (and the cached token) found in BUF with "***".
void rst_gw_scrub (const rst_gateway_t *self, char *buf, size_t buflen);

//  A credential string field (borrowed from SELF), or NULL when absent.
const char *rst_gw_cred (const rst_gateway_t *self, const char *name);

//  The string value of OBJ.NAME (borrowed), or NULL.
const char *rst_gw_json_str (const cJSON *obj, const char *name);

//  Copies an id (a JSON string, or a JSON integer written in decimal) into
//  OUT (RST_GW_CHARGE_ID_MAX). Returns 0, or -1 if absent or invalid
//  (rst_gw_id_is_valid).
int rst_gw_json_id (const cJSON *item, char *out);

//  1 if ID (LEN bytes) is 1..RST_GW_CHARGE_ID_MAX-1 bytes of [A-Za-z0-9._-]
//  (safe in a URL path and a log line), else 0.
int rst_gw_id_is_valid (const char *id, size_t len);

//  Writes CENTS (0 ≤ cents ≤ RST_GW_AMOUNT_MAX_CENTS) as reais with two
//  decimals ("19.90") into BUF. Integer arithmetic only. Returns 0 or -1.
int rst_gw_cents_to_reais (int64_t cents, char *buf, size_t buflen);

//  Adds NAME: CENTS in reais to OBJ as a JSON number written from integers
//  (19.90, never through a double). Returns the new item, or NULL when
//  memory ran out or CENTS is out of range (rst_gateway_create refused
//  those already).
cJSON *rst_gw_add_reais (cJSON *obj, const char *name, int64_t cents);

//  The charge's description for the gateway: REQ's, or "PIX" when it has none.
const char *rst_gw_description (const rst_charge_request_t *req);

//  Parses reais text ("19.9", "19.90", "19", " 19.90") into *CENTS (OUT).
//  At most two decimals (more are accepted only when they are zeros), no
//  sign, no exponent. Returns 0 or -1.
int rst_gw_reais_parse (const char *text, int64_t *cents);

//  An amount in reais from a JSON number or string into *CENTS (OUT). A
//  number is rounded to the nearest centavo and refused unless it was within
//  a thousandth of one (19.9 -> 1990; 19.999 -> -1). Returns 0 or -1.
int rst_gw_json_reais (const cJSON *item, int64_t *cents);

//  An amount in centavos from a JSON integer or digit string. Returns 0 or -1.
int rst_gw_json_cents (const cJSON *item, int64_t *cents);

//  Copies the gateway's status word into CHARGE->status_text (printable
//  ASCII, truncated) and returns it.
const char *rst_gw_status_text (rst_charge_t *charge, const char *word);

//  Parses "YYYY-MM-DD[T ]HH:MM:SS[.fff][Z|±HH:MM|±HHMM]" (no zone = UTC) into
//  Unix seconds. Returns 0 or -1.
int rst_gw_time_parse (const char *text, int64_t *unix_s);

//  WH's body parsed as a JSON object (the caller's: cJSON_Delete), or NULL
//  with "<Title> webhook: empty body" or "...: body is not a JSON object" in ERR.
cJSON *rst_gw_webhook_json (const rst_gw_webhook_t *wh, char *err, size_t errlen);

//  Header NAME (lower case) of WH, case-insensitively: its value (borrowed,
//  *LEN set) or NULL.
const char *rst_gw_header (const rst_gw_webhook_t *wh, const char *name, size_t *len);

//  Looks KEY up in a query or form-urlencoded string (percent and '+'
//  decoded). Returns 1 and the decoded value in OUT, 0 when absent, -1 when
//  the value does not fit in OUTLEN or is badly encoded.
int rst_gw_form_get (const char *query, size_t query_len, const char *key, char *out,
                     size_t outlen);

//  Copies printable ASCII of WORD into NOTICE->status_hint (truncated).
void rst_gw_notice_hint (rst_gw_notice_t *notice, const char *word);

#endif
