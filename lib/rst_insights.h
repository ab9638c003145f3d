/*  rst_insights — a client of Meta's Marketing API Insights: spend per
    campaign and day (reference/meta-capi.md §7, §8; issue 5 §2).

    One call, rst_insights_fetch, reads an ad account's spend over a range
    of days:

        GET {RASTRO_META_GRAPH_URL}/{version}/act_<id>/insights
            ?level=campaign&fields=campaign_id,campaign_name,spend,account_currency
            &time_range={"since":"YYYY-MM-DD","until":"YYYY-MM-DD"}&time_increment=1
            &limit=<page size>
        Authorization: Bearer <token>

    and follows paging.next (at most RST_INSIGHTS_MAX_PAGES pages, each on
    the same scheme, host and port as the base URL, so the token never goes
    anywhere else). The token travels in a header, never in a URL we build,
    so URLs can be logged; Meta's own next links may carry it, and are never
    logged.

    The pure parts are public so that they are unit-tested and fuzzed on
    canned bytes: the spend string ("12.34" → 1234 centavos, exactly, no
    floating point), a page of rows, the four usage headers (the highest
    percentage and Meta's wait hint) and the Graph error classification
    (190 token → permanent; 4/17/32/613/80000-80014 → throttled; 5xx,
    transport errors, is_transient → retry later; others → rejected).
    A reply that does not parse is MALFORMED and none of its rows is kept.
*/
#ifndef RST_INSIGHTS_H
#define RST_INSIGHTS_H

#include <stddef.h>
#include <stdint.h>

#define RST_INSIGHTS_MAX_PAGES     100          //  pages followed per fetch
#define RST_INSIGHTS_PAGE_LIMIT    500          //  rows asked per page (limit=)
#define RST_INSIGHTS_MAX_REPLY     (8 << 20)    //  bytes of one page
#define RST_INSIGHTS_MAX_ROWS      100000       //  rows of one fetch
#define RST_INSIGHTS_ID_MAX        32           //  digits of an account or campaign id
#define RST_INSIGHTS_NAME_MAX      1024         //  bytes of a campaign name kept (cut at a
                                                //  character boundary)
#define RST_INSIGHTS_MAX_CENTS     INT64_C (100000000000000)   //  10^14: R$ 10^12
#define RST_INSIGHTS_THROTTLE_PCT  100          //  usage at which Meta blocks the calls

//  One row of the report: one campaign's spend on one day.
typedef struct {
    char day[11];                               //  date_start, YYYY-MM-DD (= date_stop)
    char campaign_id[RST_INSIGHTS_ID_MAX + 1];  //  digits
    char campaign_name[RST_INSIGHTS_NAME_MAX + 1];
    int64_t spend_cents;                        //  spend × 100, exact
    char currency[8];                           //  account_currency, "" when absent
} rst_insights_row_t;

//  What the usage headers said (the highest over the headers seen).
typedef struct {
    int pct;                //  highest utilisation percentage (0..100), -1 when no header
    int64_t regain_s;       //  estimated_time_to_regain_access (minutes → s), or the
                            //  reset_time_duration of a usage at 100; 0 when none
} rst_insights_usage_t;

typedef enum {
    RST_INSIGHTS_OK,            //  the whole report was read
    RST_INSIGHTS_RETRY,         //  transport error, 5xx, 1/2, is_transient: try later
    RST_INSIGHTS_THROTTLED,     //  rate limited (4, 17, 32, 341, 613, 80000-80014) or a
                                //  usage header at 100: no call before wait_s
    RST_INSIGHTS_TOKEN,         //  190: the token is invalid or expired (permanent)
    RST_INSIGHTS_REJECTED,      //  another permanent Graph error (100, 10, 200-299, ...)
    RST_INSIGHTS_MALFORMED,     //  a reply that does not parse (nothing kept)
} rst_insights_status_t;

//  The outcome of a call.
typedef struct {
    rst_insights_status_t status;
    long http_status;           //  of the last reply, 0 when none came
    int code, subcode;          //  Graph error, 0 when none
    rst_insights_usage_t usage; //  highest over the pages read
    int64_t wait_s;             //  THROTTLED: seconds before calling again (Meta's hint, else
                                //  RST_INSIGHTS_DEFAULT_WAIT_S)
    int pages;                  //  pages read
    char fbtrace_id[64];
    char message[512];          //  why (Meta's message or ours); never the token
} rst_insights_result_t;

#define RST_INSIGHTS_DEFAULT_WAIT_S 300     //  throttled without a hint (Limited tier block)

//  A report: rows read from every page of one fetch.
typedef struct {
    rst_insights_row_t *rows;   //  owned; rst_insights_report_destroy frees
    size_t count, cap;
} rst_insights_report_t;

//  Frees REPORT's rows and empties it (it may be reused). Safe on an empty one.
void rst_insights_report_destroy (rst_insights_report_t *report);

//  --------------------------------------------------------------------------
//  Pure parsing (no I/O)

//  Parses a money amount in major units as Meta writes spend ("12.34",
//  "0.5", "7", "1234.567") into centavos in *CENTS (OUT), exactly: digits,
//  an optional '.' (or ',' when COMMA_OK) and up to MAX_DECIMALS digits
//  after it; digits past the second round half up. No sign, exponent,
//  spaces or empty parts ("", ".", "1.", ".5" are refused). Returns 0, or
//  -1 when S is not such an amount or exceeds RST_INSIGHTS_MAX_CENTS.
int rst_insights_cents (const char *s, int max_decimals, int comma_ok, int64_t *cents);

//  1 if S is a valid calendar date written YYYY-MM-DD (years 2000 to
//  2199), else 0.
int rst_insights_is_day (const char *s);

//  Folds the usage header NAME (any case; others are ignored) with value
//  VALUE (LEN bytes, JSON) into *USAGE: X-Business-Use-Case-Usage
//  (call_count, total_cputime, total_time, estimated_time_to_regain_access in
//  minutes), X-App-Usage (call_count, total_cputime, total_time),
//  X-Ad-Account-Usage (acc_id_util_pct, reset_time_duration in seconds) and
//  X-FB-Ads-Insights-Throttle (app_id_util_pct, acc_id_util_pct). Numbers may
//  be JSON numbers or numeric strings; percentages are clamped to 0..100.
//  Returns 1 when the header was a usage header that parsed, 0 when it is
//  another header, -1 when a usage header did not parse (*USAGE unchanged).
//  Initialise USAGE with rst_insights_usage_init.
int rst_insights_usage_header (const char *name, const char *value, size_t len,
                               rst_insights_usage_t *usage);
void rst_insights_usage_init (rst_insights_usage_t *usage);

//  Parses one page of an Insights reply (a 2xx body of LEN bytes) and adds
//  its rows to REPORT, each of which must lie within SINCE..UNTIL (strings
//  YYYY-MM-DD; NULL: no check). *NEXT_P (OUT) gets a new copy of
//  paging.next (the caller frees) or NULL on the last page. Returns 0, or
//  -1 with a reason in ERR (no data array, a row without campaign_id, a bad
//  spend or date, too many rows, out of memory); then REPORT may hold part
//  of the page: discard it.
int rst_insights_parse_page (const char *body, size_t len, const char *since, const char *until,
                             rst_insights_report_t *report, char **next_p, char *err,
                             size_t errlen);

//  Classifies a reply that is not a good page: HTTP_STATUS (0 when none
//  came), CURL_ERROR (the transport's reason, NULL when a reply came) and
//  BODY (LEN bytes, may be NULL or garbage) into OUT's status, code,
//  subcode, fbtrace_id and message (OUT's usage is left as it is; a usage at
//  100 makes a retry THROTTLED). wait_s is set for THROTTLED.
void rst_insights_classify (long http_status, const char *curl_error, const char *body,
                            size_t len, rst_insights_result_t *out);

//  A short name for STATUS ("ok", "retry", "throttled", "token", "rejected",
//  "malformed").
const char *rst_insights_status_name (rst_insights_status_t status);

//  --------------------------------------------------------------------------
//  The client

typedef struct rst_insights_t rst_insights_t;

//  A client of the Graph API at BASE_URL (http:// or https://; e.g.
//  RASTRO_META_GRAPH_URL) in VERSION ("v25.0"), with TIMEOUT_MS per page.
//  Returns a new client the caller owns (one thread at a time), or NULL
//  with a reason in ERR.
rst_insights_t *rst_insights_new (const char *base_url, const char *version, long timeout_ms,
                                  char *err, size_t errlen);
void rst_insights_destroy (rst_insights_t **self_p);

//  Called about once a second while a page is in transfer (libcurl's
//  progress callback), with ARG: returns non-zero to abort the fetch (it
//  ends as RETRY, "aborted"). Lets a node write its heartbeat and honour a
//  stop request during a slow fetch. FN NULL: none (the default).
typedef int (rst_insights_progress_fn) (void *arg);
void rst_insights_set_progress (rst_insights_t *self, rst_insights_progress_fn *fn, void *arg);

//  Reads the spend of ad account ACCOUNT_ID (digits, without "act_") per
//  campaign and day from SINCE to UNTIL (YYYY-MM-DD, inclusive) with TOKEN
//  (borrowed; never logged nor copied into RESULT), following paging.next
//  up to RST_INSIGHTS_MAX_PAGES pages. REPORT (empty on entry) gets every
//  row; RESULT (OUT) the outcome and the usage headers. Returns 0 when
//  RESULT->status is RST_INSIGHTS_OK, else -1 (REPORT is emptied: nothing
//  of a failed fetch is kept). A usage header at 100 before the last page
//  stops the fetch as THROTTLED.
int rst_insights_fetch (rst_insights_t *self, const char *account_id, const char *token,
                        const char *since, const char *until, rst_insights_report_t *report,
                        rst_insights_result_t *result);

#endif
