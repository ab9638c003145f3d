/*  rst_meta — Meta Conversions API payloads and replies (reference/meta-capi.md).

    Three jobs, all pure (no I/O), so they are unit-tested against the
    reference's vectors:
      1. user_data: normalise and hash (SHA-256, lowercase hex) the keys Meta
         wants hashed; never hash IP, user agent, fbc or fbp;
      2. build one event object as JSON text (what goes into "data": [...]),
         and a request body from several of them;
      3. classify a reply (HTTP status, body, headers, transport error) into
         accepted / retry later / never retry, with Meta's wait hints, per the
         reference's retry table.
*/
#ifndef RST_META_H
#define RST_META_H

#include <stddef.h>
#include <stdint.h>

#define RST_META_HASH_HEX   65      //  64 hex digits + NUL
#define RST_META_MAX_EVENTS 1000    //  per request (Meta's limit)
#define RST_META_MAX_AGE_S  (7 * 24 * 3600)

typedef enum {
    RST_META_EM,            //  email: trim, lowercase
    RST_META_PH,            //  phone: digits only, country code required (BR default 55)
    RST_META_FN,            //  first name: lowercase, no punctuation or spaces, UTF-8 kept
    RST_META_LN,            //  last name: same
    RST_META_GE,            //  gender: m / f
    RST_META_DB,            //  date of birth: YYYYMMDD
    RST_META_CT,            //  city: lowercase, letters only
    RST_META_ST,            //  state: lowercase, letters only (BR: UF, "sp")
    RST_META_ZP,            //  postal code: lowercase, no spaces or dashes
    RST_META_COUNTRY,       //  ISO 3166-1 alpha-2, lowercase
    RST_META_EXTERNAL_ID,   //  as is (trimmed)
} rst_meta_key_t;

//  SHA-256 of LEN bytes as lowercase hex into OUT.
void rst_meta_sha256_hex (const void *data, size_t len, char out[RST_META_HASH_HEX]);

//  Normalises VALUE for KEY into OUT. Returns the length, or -1 when nothing
//  usable is left (e.g. a phone without digits) or OUT is too small.
int rst_meta_normalize (rst_meta_key_t key, const char *value, char *out, size_t outlen);

//  Normalises and hashes VALUE for KEY into OUT. A VALUE that already is 64
//  lowercase hex digits is taken as hashed upstream and copied (never hashed
//  twice). Returns 0, or -1 when the value normalises to nothing.
int rst_meta_hash (rst_meta_key_t key, const char *value, char out[RST_META_HASH_HEX]);

//  One event for the Conversions API. Strings may be NULL (absent). Raw
//  values of hashed keys are normalised and hashed by rst_meta_event_json.
typedef struct {
    const char *event_name;         //  "PageView", "ViewContent", "InitiateCheckout", "Purchase"
    int64_t event_time;             //  Unix seconds when the action happened
    const char *event_id;
    const char *action_source;      //  "website" (redirect) or "chat" (bot)
    const char *event_source_url;   //  required for website
    //  user_data, not hashed
    const char *client_ip_address;
    const char *client_user_agent;  //  required for website
    const char *fbc;
    const char *fbp;
    //  user_data, raw values (hashed here)
    const char *external_id;        //  the lead's stable id (rastro uses the click id)
    const char *em, *ph, *fn, *ln, *ct, *st, *zp, *country;
    //  custom_data
    int has_value;
    double value;                   //  major units (reais)
    const char *currency;           //  "BRL"
    const char *content_id;         //  → content_ids [id], contents [{id, quantity 1, item_price}]
    const char *content_name;
    const char *order_id;
} rst_meta_event_t;

//  Builds EV as one JSON object (no trailing newline). Returns a new
//  NUL-terminated string the caller frees, or NULL with the reason in ERR
//  (a required field missing for the action source).
char *rst_meta_event_json (const rst_meta_event_t *ev, char *err, size_t errlen);

//  Builds a request body {"data":[E1,E2,...],"partner_agent":"rastro"[,"test_event_code":C]}
//  from COUNT event objects (JSON texts as rst_meta_event_json made them).
//  TEST_EVENT_CODE may be NULL. Returns a new string (length in *LEN) or NULL.
char *rst_meta_body (const char *const *events, size_t count, const char *test_event_code,
                     size_t *len);

typedef enum {
    RST_META_ACCEPTED,      //  2xx with events_received
    RST_META_RETRY,         //  transient: try again later (backoff, honour wait_ms)
    RST_META_REJECTED,      //  permanent: dead-letter (after splitting, see split)
} rst_meta_verdict_t;

typedef struct {
    rst_meta_verdict_t verdict;
    int throttled;          //  RETRY because of rate limits (4, 17, 32, 341, 613, 80000–80014):
                            //  slow this pixel down
    int split;              //  REJECTED for one bad event (code 100): split the batch
                            //  and resend the parts; a batch of one is dead-lettered
    int64_t wait_ms;        //  Meta's hint (estimated_time_to_regain_access, Retry-After), 0 = none
    long http_status;       //  0 when there was no HTTP answer
    int code, subcode;      //  Meta's error code and subcode, 0 when none
    int events_received;    //  on ACCEPTED
    char fbtrace_id[64];
    char message[512];      //  Meta's message, or the transport error; never the token
} rst_meta_result_t;

//  Classifies one reply. CURL_ERROR is the libcurl error text (NULL when the
//  request got an HTTP answer). BODY may be malformed: a 2xx without a valid
//  events_received is a RETRY, never ACCEPTED. USAGE_HEADER is the value of
//  X-Business-Use-Case-Usage (or NULL). RETRY_AFTER is the Retry-After
//  header's value (or NULL).
void rst_meta_classify (long http_status, const char *curl_error, const char *body, size_t len,
                        const char *usage_header, const char *retry_after,
                        rst_meta_result_t *out);

#endif
