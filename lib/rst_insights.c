/*  rst_insights — a client of Meta's Marketing API Insights (spend per
    campaign and day). See rst_insights.h for the request and the rules.

    A fetch, page by page:

        URL (ours, built from the base) --GET--> reply
          2xx and a page that parses  --> rows added; paging.next?
                next on our base URL  --> GET it (≤ RST_INSIGHTS_MAX_PAGES)
                next elsewhere        --> MALFORMED (the token stays home)
                none                  --> OK
                usage header at 100 and a next page --> THROTTLED (calls made
                                         while blocked prolong the block)
          2xx with an error object, or any other status --> classified
          2xx that does not parse     --> MALFORMED

    Any outcome but OK empties the report: the caller stores all of a
    fetch or none of it.

    Secrets: the token goes in the Authorization header (libcurl's bearer
    option), never in a URL we build. Meta's next links may carry an
    access_token of their own: they are never logged nor put in a message.
    Every message that leaves is masked for the token anyway (Meta echoes
    parameters in some errors).
*/
#include "rst_insights.h"
#include "rst_http.h"
#include "rst_log.h"

#include <assert.h>
#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define S_CLS          "insights"
#define S_CONNECT_MS   5000
#define S_NAME_MAX     64       //  longest header name looked at
#define S_URL_MAX      4096
#define S_MAX_DECIMALS 9        //  digits after the point Meta may write in spend
#define S_BLOCKED_WAIT_S 3600   //  code 368 (blocked): a long wait

struct rst_insights_t {
    char *base;                 //  base URL without trailing '/' (owned)
    char version[32];           //  "v25.0"
    long timeout_ms;            //  per page
    CURL *curl;                 //  owned; one request at a time
    rst_http_buf_t buf;         //  reply body
    rst_insights_usage_t page_usage;    //  usage headers of the reply being read
    int bad_usage;              //  a usage header did not parse (logged once per page)
    rst_insights_progress_fn *progress;     //  or NULL
    void *progress_arg;
};

//  --------------------------------------------------------------------------
//  Money and dates

int
rst_insights_cents (const char *s, int max_decimals, int comma_ok, int64_t *cents)
{
    if (!s || !cents || max_decimals < 0)
        return -1;
    const char *p = s;
    int64_t units = 0;
    int digits = 0;
    while (*p >= '0' && *p <= '9') {
        units = units * 10 + (*p - '0');
        if (units > RST_INSIGHTS_MAX_CENTS / 100)
            return -1;
        digits++;
        p++;
    }
    if (digits == 0)
        return -1;
    int64_t frac = 0;
    int round_up = 0;
    if (*p == '.' || (comma_ok && *p == ',')) {
        p++;
        int n = 0;
        while (*p >= '0' && *p <= '9') {
            if (n < 2)
                frac = frac * 10 + (*p - '0');
            else if (n == 2)
                round_up = *p >= '5';
            n++;
            p++;
            if (n > max_decimals)
                return -1;
        }
        if (n == 0)
            return -1;
        if (n == 1)
            frac *= 10;
    }
    if (*p)
        return -1;
    int64_t total = units * 100 + frac + round_up;
    if (total > RST_INSIGHTS_MAX_CENTS)
        return -1;
    *cents = total;
    return 0;
}

int
rst_insights_is_day (const char *s)
{
    if (!s || strlen (s) != 10 || s[4] != '-' || s[7] != '-')
        return 0;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && !(s[i] >= '0' && s[i] <= '9'))
            return 0;
    int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    int m = (s[5] - '0') * 10 + (s[6] - '0');
    int d = (s[8] - '0') * 10 + (s[9] - '0');
    if (y < 2000 || y > 2199 || m < 1 || m > 12 || d < 1)
        return 0;
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return d <= mdays[m - 1] + (m == 2 && leap);
}

//  --------------------------------------------------------------------------
//  Usage headers

void
rst_insights_usage_init (rst_insights_usage_t *usage)
{
    usage->pct = -1;
    usage->regain_s = 0;
}

//  A number that Meta wrote as a JSON number or a numeric string. Returns 1
//  with *OUT set, else 0.
static int
s_number (const cJSON *item, double *out)
{
    if (cJSON_IsNumber (item)) {
        *out = item->valuedouble;
        return isfinite (*out);
    }
    if (cJSON_IsString (item) && item->valuestring[0]) {
        char *end;
        double v = strtod (item->valuestring, &end);
        if (*end || !isfinite (v))
            return 0;
        *out = v;
        return 1;
    }
    return 0;
}

//  Folds the percentage KEY of OBJ into *PCT (the highest). Returns the value
//  seen, -1 when absent.
static double
s_fold_pct (const cJSON *obj, const char *key, int *pct)
{
    double v;
    if (!s_number (cJSON_GetObjectItemCaseSensitive (obj, key), &v))
        return -1;
    int p = v <= 0 ? 0 : v >= 100 ? 100 : (int) ceil (v);
    if (p > *pct)
        *pct = p;
    return v;
}

static void
s_fold_regain (int64_t seconds, int64_t *regain)
{
    if (seconds > 0 && seconds > *regain)
        *regain = seconds > 7 * 86400 ? 7 * 86400 : seconds;
}

int
rst_insights_usage_header (const char *name, const char *value, size_t len,
                           rst_insights_usage_t *usage)
{
    enum { BUC, APP, ACCOUNT, THROTTLE } kind;
    if (!strcasecmp (name, "x-business-use-case-usage"))
        kind = BUC;
    else if (!strcasecmp (name, "x-app-usage"))
        kind = APP;
    else if (!strcasecmp (name, "x-ad-account-usage"))
        kind = ACCOUNT;
    else if (!strcasecmp (name, "x-fb-ads-insights-throttle"))
        kind = THROTTLE;
    else
        return 0;
    cJSON *root = value ? cJSON_ParseWithLength (value, len) : NULL;
    if (!cJSON_IsObject (root)) {
        cJSON_Delete (root);
        return -1;
    }
    rst_insights_usage_t u = *usage;
    int pct = u.pct;
    double v;
    switch (kind) {
    case BUC: {
        //  {"<business or account id>": [{"type": ..., "call_count": %, ...}, ...], ...}
        const cJSON *per_id;
        cJSON_ArrayForEach (per_id, root) {
            if (!cJSON_IsArray (per_id))
                goto bad;
            const cJSON *entry;
            cJSON_ArrayForEach (entry, per_id) {
                if (!cJSON_IsObject (entry))
                    goto bad;
                s_fold_pct (entry, "call_count", &pct);
                s_fold_pct (entry, "total_cputime", &pct);
                s_fold_pct (entry, "total_time", &pct);
                if (s_number (cJSON_GetObjectItemCaseSensitive (entry,
                                                                "estimated_time_to_regain_access"),
                              &v) && v > 0)
                    s_fold_regain ((int64_t) ceil (v) * 60, &u.regain_s);
            }
        }
        break;
    }
    case APP:
        s_fold_pct (root, "call_count", &pct);
        s_fold_pct (root, "total_cputime", &pct);
        s_fold_pct (root, "total_time", &pct);
        break;
    case ACCOUNT: {
        double acc = s_fold_pct (root, "acc_id_util_pct", &pct);
        if (acc >= RST_INSIGHTS_THROTTLE_PCT
            && s_number (cJSON_GetObjectItemCaseSensitive (root, "reset_time_duration"), &v)
            && v > 0)
            s_fold_regain ((int64_t) ceil (v), &u.regain_s);
        break;
    }
    case THROTTLE:
        s_fold_pct (root, "app_id_util_pct", &pct);
        s_fold_pct (root, "acc_id_util_pct", &pct);
        break;
    }
    cJSON_Delete (root);
    u.pct = pct;
    *usage = u;
    return 1;
bad:
    cJSON_Delete (root);
    return -1;
}

//  --------------------------------------------------------------------------
//  Pages

void
rst_insights_report_destroy (rst_insights_report_t *report)
{
    if (!report)
        return;
    free (report->rows);
    report->rows = NULL;
    report->count = report->cap = 0;
}

//  Copies the UTF-8 text SRC into DST (DSTLEN bytes), cut at a character
//  boundary when it does not fit.
static void
s_copy_cut (char *dst, size_t dstlen, const char *src)
{
    size_t n = strlen (src);
    if (n >= dstlen) {
        n = dstlen - 1;
        while (n > 0 && ((unsigned char) src[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy (dst, src, n);
    dst[n] = 0;
}

static int
s_is_digits (const char *s, size_t max)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (s[n] < '0' || s[n] > '9')
            return 0;
    return n >= 1 && n <= max;
}

static const char *
s_string (const cJSON *obj, const char *key)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive (obj, key);
    return cJSON_IsString (item) ? item->valuestring : NULL;
}

//  Parses row I of the page into ROW. Returns 0, or -1 with ERR.
static int
s_parse_row (const cJSON *item, size_t i, const char *since, const char *until,
             rst_insights_row_t *row, char *err, size_t errlen)
{
    memset (row, 0, sizeof *row);
    if (!cJSON_IsObject (item)) {
        snprintf (err, errlen, "data[%zu] is not an object", i);
        return -1;
    }
    const char *id = s_string (item, "campaign_id");
    if (!id || !s_is_digits (id, RST_INSIGHTS_ID_MAX)) {
        snprintf (err, errlen, "data[%zu]: campaign_id missing or not 1 to %d digits", i,
                  RST_INSIGHTS_ID_MAX);
        return -1;
    }
    snprintf (row->campaign_id, sizeof row->campaign_id, "%s", id);
    const cJSON *name = cJSON_GetObjectItemCaseSensitive (item, "campaign_name");
    if (name && !cJSON_IsString (name)) {
        snprintf (err, errlen, "data[%zu]: campaign_name is not a string", i);
        return -1;
    }
    s_copy_cut (row->campaign_name, sizeof row->campaign_name, name ? name->valuestring : "");
    const char *spend = s_string (item, "spend");
    if (!spend) {
        snprintf (err, errlen, "data[%zu]: spend missing or not a string", i);
        return -1;
    }
    if (rst_insights_cents (spend, S_MAX_DECIMALS, 0, &row->spend_cents)) {
        snprintf (err, errlen, "data[%zu]: spend is not an amount (\"%.40s\")", i, spend);
        return -1;
    }
    const char *start = s_string (item, "date_start");
    const char *stop = s_string (item, "date_stop");
    if (!rst_insights_is_day (start)) {
        snprintf (err, errlen, "data[%zu]: date_start missing or not a date", i);
        return -1;
    }
    if (stop && strcmp (stop, start)) {
        snprintf (err, errlen, "data[%zu]: date_stop %.10s differs from date_start %s (not "
                  "daily rows)", i, stop, start);
        return -1;
    }
    if ((since && strcmp (start, since) < 0) || (until && strcmp (start, until) > 0)) {
        snprintf (err, errlen, "data[%zu]: day %s is outside the range asked for", i, start);
        return -1;
    }
    memcpy (row->day, start, 11);
    const cJSON *cur = cJSON_GetObjectItemCaseSensitive (item, "account_currency");
    if (cur) {
        int ok = cJSON_IsString (cur) && strlen (cur->valuestring) == 3;
        for (int k = 0; ok && k < 3; k++)
            ok = isupper ((unsigned char) cur->valuestring[k]);
        if (!ok) {
            snprintf (err, errlen, "data[%zu]: account_currency is not a currency code", i);
            return -1;
        }
        memcpy (row->currency, cur->valuestring, 4);
    }
    return 0;
}

int
rst_insights_parse_page (const char *body, size_t len, const char *since, const char *until,
                         rst_insights_report_t *report, char **next_p, char *err, size_t errlen)
{
    *next_p = NULL;
    cJSON *root = body ? cJSON_ParseWithLength (body, len) : NULL;
    if (!cJSON_IsObject (root)) {
        snprintf (err, errlen, "the reply is not a JSON object");
        cJSON_Delete (root);
        return -1;
    }
    int rc = -1;
    const cJSON *data = cJSON_GetObjectItemCaseSensitive (root, "data");
    if (!cJSON_IsArray (data)) {
        snprintf (err, errlen, "%s", cJSON_GetObjectItemCaseSensitive (root, "error")
                                          ? "the reply is a Graph error"
                                          : "the reply has no data array");
        goto done;
    }
    size_t i = 0;
    const cJSON *item;
    cJSON_ArrayForEach (item, data) {
        if (report->count >= RST_INSIGHTS_MAX_ROWS) {
            snprintf (err, errlen, "more than %d rows", RST_INSIGHTS_MAX_ROWS);
            goto done;
        }
        if (report->count == report->cap) {
            size_t cap = report->cap ? report->cap * 2 : 64;
            rst_insights_row_t *rows = realloc (report->rows, cap * sizeof *rows);
            if (!rows) {
                snprintf (err, errlen, "out of memory");
                goto done;
            }
            report->rows = rows;
            report->cap = cap;
        }
        if (s_parse_row (item, i++, since, until, &report->rows[report->count], err, errlen))
            goto done;
        report->count++;
    }
    const cJSON *paging = cJSON_GetObjectItemCaseSensitive (root, "paging");
    if (paging && !cJSON_IsObject (paging)) {
        snprintf (err, errlen, "paging is not an object");
        goto done;
    }
    const cJSON *next = paging ? cJSON_GetObjectItemCaseSensitive (paging, "next") : NULL;
    if (next && !cJSON_IsNull (next)) {
        if (!cJSON_IsString (next) || !rst_http_url_is_http (next->valuestring)
            || strlen (next->valuestring) >= S_URL_MAX) {
            snprintf (err, errlen, "paging.next is not an http(s) URL");
            goto done;
        }
        *next_p = strdup (next->valuestring);
        if (!*next_p) {
            snprintf (err, errlen, "out of memory");
            goto done;
        }
    }
    rc = 0;
done:
    cJSON_Delete (root);
    return rc;
}

//  --------------------------------------------------------------------------
//  Errors

const char *
rst_insights_status_name (rst_insights_status_t status)
{
    switch (status) {
    case RST_INSIGHTS_OK: return "ok";
    case RST_INSIGHTS_RETRY: return "retry";
    case RST_INSIGHTS_THROTTLED: return "throttled";
    case RST_INSIGHTS_TOKEN: return "token";
    case RST_INSIGHTS_REJECTED: return "rejected";
    case RST_INSIGHTS_MALFORMED: return "malformed";
    }
    return "?";
}

static int
s_is_throttle_code (int code)
{
    return code == 4 || code == 17 || code == 32 || code == 341 || code == 613
        || (code >= 80000 && code <= 80014);
}

//  The wait of a throttled account: Meta's hint, else the default.
static int64_t
s_wait (const rst_insights_result_t *out)
{
    return out->usage.regain_s > 0 ? out->usage.regain_s : RST_INSIGHTS_DEFAULT_WAIT_S;
}

//  Copies a message for OUT: printable ASCII and UTF-8 kept, control
//  characters made spaces.
static void
s_message (rst_insights_result_t *out, const char *fmt, const char *a, const char *b)
{
    snprintf (out->message, sizeof out->message, fmt, a, b);
    for (char *c = out->message; *c; c++)
        if ((unsigned char) *c < 0x20 || *c == 0x7f)
            *c = ' ';
}

void
rst_insights_classify (long http_status, const char *curl_error, const char *body, size_t len,
                       rst_insights_result_t *out)
{
    out->http_status = http_status;
    out->code = out->subcode = 0;
    out->fbtrace_id[0] = 0;
    out->wait_s = 0;
    if (curl_error) {
        out->status = RST_INSIGHTS_RETRY;
        s_message (out, "Meta did not answer: %.400s%s", curl_error, "");
        goto usage;
    }
    cJSON *root = body && len ? cJSON_ParseWithLength (body, len) : NULL;
    const cJSON *error = cJSON_IsObject (root) ? cJSON_GetObjectItemCaseSensitive (root, "error")
                                               : NULL;
    if (!cJSON_IsObject (error)) {
        cJSON_Delete (root);
        char st[32];
        snprintf (st, sizeof st, "%ld", http_status);
        if (http_status >= 500 || http_status == 408) {
            out->status = RST_INSIGHTS_RETRY;
            s_message (out, "Meta answered HTTP %s%s", st, "");
        }
        else if (http_status == 429) {
            out->status = RST_INSIGHTS_THROTTLED;
            s_message (out, "Meta answered HTTP %s (too many requests)%s", st, "");
        }
        else {
            out->status = RST_INSIGHTS_MALFORMED;
            s_message (out, "Meta answered HTTP %s without a Graph error%s", st,
                       root ? "" : " (not JSON)");
        }
        goto usage;
    }
    double v;
    if (s_number (cJSON_GetObjectItemCaseSensitive (error, "code"), &v) && v >= 0 && v < 1e9)
        out->code = (int) v;
    if (s_number (cJSON_GetObjectItemCaseSensitive (error, "error_subcode"), &v) && v >= 0
        && v < 1e9)
        out->subcode = (int) v;
    const char *trace = s_string (error, "fbtrace_id");
    if (trace)
        s_copy_cut (out->fbtrace_id, sizeof out->fbtrace_id, trace);
    for (char *c = out->fbtrace_id; *c; c++)
        if (!isalnum ((unsigned char) *c) && *c != '_' && *c != '-')
            *c = '_';
    const char *msg = s_string (error, "message");
    char code[48];
    snprintf (code, sizeof code, "%d/%d", out->code, out->subcode);
    s_message (out, "Meta error %s: %.400s", code, msg ? msg : "(no message)");
    const cJSON *transient = cJSON_GetObjectItemCaseSensitive (error, "is_transient");
    if (out->code == 190 || out->code == 102)
        out->status = RST_INSIGHTS_TOKEN;
    else if (s_is_throttle_code (out->code) || http_status == 429)
        out->status = RST_INSIGHTS_THROTTLED;
    else if (out->code == 368) {
        out->status = RST_INSIGHTS_THROTTLED;
        if (out->usage.regain_s < S_BLOCKED_WAIT_S)
            out->usage.regain_s = S_BLOCKED_WAIT_S;
    }
    else if (out->code == 1 || out->code == 2 || cJSON_IsTrue (transient) || http_status >= 500)
        out->status = RST_INSIGHTS_RETRY;
    else
        out->status = RST_INSIGHTS_REJECTED;
    cJSON_Delete (root);
usage:
    if (out->status == RST_INSIGHTS_RETRY && out->usage.pct >= RST_INSIGHTS_THROTTLE_PCT)
        out->status = RST_INSIGHTS_THROTTLED;
    if (out->status == RST_INSIGHTS_THROTTLED)
        out->wait_s = s_wait (out);
}

//  --------------------------------------------------------------------------
//  The client

rst_insights_t *
rst_insights_new (const char *base_url, const char *version, long timeout_ms, char *err,
                  size_t errlen)
{
    if (!version || !*version || strlen (version) >= 32 || strchr (version, '/')
        || strchr (version, '?')) {
        snprintf (err, errlen, "Meta API version '%s' is not like v25.0 (check "
                  "RASTRO_META_API_VERSION)", version ? version : "");
        return NULL;
    }
    rst_insights_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, errlen, "out of memory");
        return NULL;
    }
    if (rst_http_client_init ("Meta Graph", base_url, "RASTRO_META_GRAPH_URL", &self->base,
                              &self->curl, err, errlen)) {
        free (self);
        return NULL;
    }
    snprintf (self->version, sizeof self->version, "%s", version);
    self->timeout_ms = timeout_ms > 0 ? timeout_ms : 30000;
    rst_http_buf_init (&self->buf, RST_INSIGHTS_MAX_REPLY);
    return self;
}

void
rst_insights_destroy (rst_insights_t **self_p)
{
    assert (self_p);
    rst_insights_t *self = *self_p;
    if (!self)
        return;
    if (self->curl)
        curl_easy_cleanup (self->curl);
    rst_http_buf_destroy (&self->buf);
    free (self->base);
    free (self);
    *self_p = NULL;
}

//  CURLOPT_HEADERFUNCTION: folds the usage headers of the reply.
static size_t
s_on_header (char *data, size_t size, size_t n, void *arg)
{
    rst_insights_t *self = arg;
    size_t len = size * n;
    const char *colon = memchr (data, ':', len);
    if (!colon || (size_t) (colon - data) >= S_NAME_MAX)
        return len;
    char name[S_NAME_MAX];
    memcpy (name, data, (size_t) (colon - data));
    name[colon - data] = 0;
    const char *value = colon + 1;
    const char *end = data + len;
    while (value < end && (*value == ' ' || *value == '\t'))
        value++;
    while (end > value && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    if (rst_insights_usage_header (name, value, (size_t) (end - value), &self->page_usage) < 0)
        self->bad_usage = 1;
    return len;
}

void
rst_insights_set_progress (rst_insights_t *self, rst_insights_progress_fn *fn, void *arg)
{
    assert (self);
    self->progress = fn;
    self->progress_arg = arg;
}

//  CURLOPT_XFERINFOFUNCTION: the caller's progress function.
static int
s_on_progress (void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
               curl_off_t ulnow)
{
    rst_insights_t *self = arg;
    return self->progress ? self->progress (self->progress_arg) : 0;
}

//  GETs URL with TOKEN. Returns the libcurl result; *STATUS and WHY as
//  rst_http_perform.
static CURLcode
s_get (rst_insights_t *self, const char *url, const char *token, long *status, char *why,
       size_t whylen)
{
    char errbuf[CURL_ERROR_SIZE];
    rst_http_buf_rewind (&self->buf, RST_INSIGHTS_MAX_REPLY / 8);
    rst_insights_usage_init (&self->page_usage);
    self->bad_usage = 0;
    if (rst_http_easy_setup (self->curl, url, errbuf, S_CONNECT_MS, self->timeout_ms,
                             &self->buf)) {
        snprintf (why, whylen, "libcurl: cannot take the URL");
        *status = 0;
        return CURLE_OUT_OF_MEMORY;
    }
    curl_easy_setopt (self->curl, CURLOPT_HTTPAUTH, CURLAUTH_BEARER);
    curl_easy_setopt (self->curl, CURLOPT_XOAUTH2_BEARER, token);
    curl_easy_setopt (self->curl, CURLOPT_HEADERFUNCTION, s_on_header);
    curl_easy_setopt (self->curl, CURLOPT_HEADERDATA, self);
    curl_easy_setopt (self->curl, CURLOPT_ACCEPT_ENCODING, "");
    if (self->progress) {
        curl_easy_setopt (self->curl, CURLOPT_XFERINFOFUNCTION, s_on_progress);
        curl_easy_setopt (self->curl, CURLOPT_XFERINFODATA, self);
        curl_easy_setopt (self->curl, CURLOPT_NOPROGRESS, 0L);
    }
    CURLcode cc = rst_http_perform (self->curl, &self->buf, errbuf, status, why, whylen);
    //  libcurl keeps its copy of the token until the next reset: drop it now.
    curl_easy_setopt (self->curl, CURLOPT_XOAUTH2_BEARER, NULL);
    return cc;
}

static void
s_fold_usage (rst_insights_usage_t *into, const rst_insights_usage_t *page)
{
    if (page->pct > into->pct)
        into->pct = page->pct;
    if (page->regain_s > into->regain_s)
        into->regain_s = page->regain_s;
}

int
rst_insights_fetch (rst_insights_t *self, const char *account_id, const char *token,
                    const char *since, const char *until, rst_insights_report_t *report,
                    rst_insights_result_t *result)
{
    assert (self);
    assert (report);
    assert (result);
    memset (result, 0, sizeof *result);
    rst_insights_usage_init (&result->usage);
    rst_insights_report_destroy (report);
    result->status = RST_INSIGHTS_MALFORMED;
    if (!account_id || !s_is_digits (account_id, RST_INSIGHTS_ID_MAX) || !token || !*token
        || !rst_insights_is_day (since) || !rst_insights_is_day (until)
        || strcmp (since, until) > 0) {
        result->status = RST_INSIGHTS_REJECTED;
        snprintf (result->message, sizeof result->message,
                  "bad request: account id, token or day range");
        return -1;
    }
    char *url = malloc (S_URL_MAX);
    if (!url) {
        result->status = RST_INSIGHTS_RETRY;
        snprintf (result->message, sizeof result->message, "out of memory");
        return -1;
    }
    //  fields=campaign_id,campaign_name,spend,account_currency and
    //  time_range={"since":"...","until":"..."}, percent-encoded.
    snprintf (url, S_URL_MAX,
              "%s/%s/act_%s/insights?level=campaign"
              "&fields=campaign_id%%2Ccampaign_name%%2Cspend%%2Caccount_currency"
              "&time_range=%%7B%%22since%%22%%3A%%22%s%%22%%2C%%22until%%22%%3A%%22%s%%22%%7D"
              "&time_increment=1&limit=%d",
              self->base, self->version, account_id, since, until, RST_INSIGHTS_PAGE_LIMIT);
    size_t baselen = strlen (self->base);
    int rc = -1;
    while (1) {
        if (result->pages >= RST_INSIGHTS_MAX_PAGES) {
            result->status = RST_INSIGHTS_MALFORMED;
            snprintf (result->message, sizeof result->message,
                      "the report has more than %d pages", RST_INSIGHTS_MAX_PAGES);
            break;
        }
        long status = 0;
        char why[512];
        CURLcode cc = s_get (self, url, token, &status, why, sizeof why);
        result->pages++;
        s_fold_usage (&result->usage, &self->page_usage);
        if (self->bad_usage)
            rst_warn (S_CLS, "act_%s: a usage header did not parse (ignored)", account_id);
        if (cc != CURLE_OK) {
            rst_insights_classify (0, why, NULL, 0, result);
            break;
        }
        if (status < 200 || status > 299) {
            rst_insights_classify (status, NULL, self->buf.data, self->buf.len, result);
            break;
        }
        char *next = NULL;
        char perr[256];
        if (rst_insights_parse_page (self->buf.data, self->buf.len, since, until, report, &next,
                                     perr, sizeof perr)) {
            rst_insights_classify (status, NULL, self->buf.data, self->buf.len, result);
            if (result->status == RST_INSIGHTS_MALFORMED || result->code == 0) {
                result->status = RST_INSIGHTS_MALFORMED;
                result->wait_s = 0;
                snprintf (result->message, sizeof result->message,
                          "malformed Insights reply: %s", perr);
            }
            break;
        }
        result->http_status = status;
        if (!next) {
            result->status = RST_INSIGHTS_OK;
            rc = 0;
            break;
        }
        //  The next page: on our own base URL only (the token goes with it).
        if (strncmp (next, self->base, baselen) || next[baselen] != '/') {
            free (next);
            result->status = RST_INSIGHTS_MALFORMED;
            snprintf (result->message, sizeof result->message,
                      "malformed Insights reply: paging.next is not on %s", self->base);
            break;
        }
        if (self->page_usage.pct >= RST_INSIGHTS_THROTTLE_PCT) {
            free (next);
            result->status = RST_INSIGHTS_THROTTLED;
            result->wait_s = s_wait (result);
            snprintf (result->message, sizeof result->message,
                      "usage at %d%%: stopped before page %d", self->page_usage.pct,
                      result->pages + 1);
            break;
        }
        snprintf (url, S_URL_MAX, "%s", next);
        free (next);
    }
    if (rc)
        rst_insights_report_destroy (report);
    rst_http_mask (result->message, sizeof result->message, token, "***");
    //  The URL may hold a token from Meta's next link.
    memset (url, 0, S_URL_MAX);
    free (url);
    return rc;
}
