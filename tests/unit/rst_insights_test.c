/*  rst_insights_test — Meta Insights: spend strings, pages, usage headers,
    Graph errors (canned bytes), and the client against tests/fakes/fake_meta.py
    (paging, the token in a header, throttling, malformed replies).

    The first test is the tutorial: a page of Meta's reply becomes rows in
    centavos, and the usage headers say how close the account is to its limit.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rst_insights.h"
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"   //  the Telegram helpers go unused
#include "tg_fake.h"                                  //  (fake_meta is started below)
#pragma GCC diagnostic pop

static void
test_tutorial (void **state)
{
    (void) state;
    //  1. One page of GET /act_<id>/insights?level=campaign&time_increment=1.
    const char *page =
        "{\"data\":[{\"campaign_id\":\"120210000000001\",\"campaign_name\":\"Curso | Frio\","
        "\"spend\":\"12.34\",\"account_currency\":\"BRL\",\"date_start\":\"2026-08-01\","
        "\"date_stop\":\"2026-08-01\"},{\"campaign_id\":\"120210000000002\","
        "\"campaign_name\":\"Remarketing\",\"spend\":\"0.5\",\"account_currency\":\"BRL\","
        "\"date_start\":\"2026-08-02\",\"date_stop\":\"2026-08-02\"}],"
        "\"paging\":{\"cursors\":{\"before\":\"MAZDZD\",\"after\":\"MQZDZD\"},"
        "\"next\":\"https://graph.facebook.com/v25.0/act_1/insights?after=MQZDZD\"}}";
    rst_insights_report_t rep = {0};
    char *next = NULL, err[256];
    assert_int_equal (rst_insights_parse_page (page, strlen (page), "2026-08-01", "2026-08-07",
                                               &rep, &next, err, sizeof err), 0);
    assert_int_equal (rep.count, 2);
    assert_string_equal (rep.rows[0].day, "2026-08-01");
    assert_string_equal (rep.rows[0].campaign_id, "120210000000001");
    assert_string_equal (rep.rows[0].campaign_name, "Curso | Frio");
    assert_int_equal (rep.rows[0].spend_cents, 1234);       //  exactly, no floating point
    assert_int_equal (rep.rows[1].spend_cents, 50);
    assert_string_equal (rep.rows[1].currency, "BRL");
    //  2. More rows follow at paging.next.
    assert_non_null (next);
    assert_string_equal (next, "https://graph.facebook.com/v25.0/act_1/insights?after=MQZDZD");
    free (next);
    rst_insights_report_destroy (&rep);

    //  3. The usage headers: the highest percentage wins; Meta's wait hint is
    //  in minutes.
    rst_insights_usage_t u;
    rst_insights_usage_init (&u);
    const char *buc = "{\"1\":[{\"type\":\"ads_insights\",\"call_count\":28,\"total_cputime\":"
                      "91,\"total_time\":40,\"estimated_time_to_regain_access\":0}]}";
    const char *app = "{\"call_count\":12,\"total_cputime\":3,\"total_time\":5}";
    assert_int_equal (rst_insights_usage_header ("X-Business-Use-Case-Usage", buc, strlen (buc),
                                                 &u), 1);
    assert_int_equal (rst_insights_usage_header ("x-app-usage", app, strlen (app), &u), 1);
    assert_int_equal (u.pct, 91);
    assert_int_equal (u.regain_s, 0);
}

static void
test_cents (void **state)
{
    (void) state;
    struct {
        const char *s;
        int64_t cents;
    } good[] = {
        {"12.34", 1234}, {"0", 0},        {"0.00", 0},     {"7", 700},        {"0.5", 50},
        {"0.05", 5},     {"0.01", 1},     {"1234.567", 123457},              {"1.234", 123},
        {"1.235", 124},  {"0.004", 0},    {"0.005", 1},    {"99.999", 10000}, {"007.10", 710},
        {"19999999.99", 1999999999},      {"1000000000000", INT64_C (100000000000000)},
        {"123456789012.99", INT64_C (12345678901299)},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int64_t c = -1;
        if (rst_insights_cents (good[i].s, 9, 0, &c) != 0 || c != good[i].cents)
            fail_msg ("'%s': got %lld, want %lld", good[i].s, (long long) c,
                      (long long) good[i].cents);
    }
    const char *bad[] = {"",      ".",     "1.",     ".5",    "-1",        "+1",  "1e3",
                         " 1",    "1 ",    "1,5",    "1.2.3", "12.34abc",  "NaN", "inf",
                         "0x10",  "1000000000000.01", "99999999999999999999", "1.0000000001"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t c = 42;
        if (rst_insights_cents (bad[i], 9, 0, &c) != -1 || c != 42)
            fail_msg ("'%s' was accepted", bad[i]);
    }
    int64_t c;
    assert_int_equal (rst_insights_cents (NULL, 9, 0, &c), -1);
    //  Typed by a person: a comma is a decimal point; two decimals at most.
    assert_int_equal (rst_insights_cents ("123,45", 2, 1, &c), 0);
    assert_int_equal (c, 12345);
    assert_int_equal (rst_insights_cents ("123.45", 2, 1, &c), 0);
    assert_int_equal (c, 12345);
    assert_int_equal (rst_insights_cents ("1.234", 2, 1, &c), -1);
}

static void
test_days (void **state)
{
    (void) state;
    assert_true (rst_insights_is_day ("2026-08-01"));
    assert_true (rst_insights_is_day ("2028-02-29"));
    assert_true (rst_insights_is_day ("2000-02-29"));
    assert_false (rst_insights_is_day ("2100-02-29"));
    assert_false (rst_insights_is_day ("2026-02-29"));
    assert_false (rst_insights_is_day ("2026-04-31"));
    assert_false (rst_insights_is_day ("2026-13-01"));
    assert_false (rst_insights_is_day ("2026-00-10"));
    assert_false (rst_insights_is_day ("2026-1-01"));
    assert_false (rst_insights_is_day ("2026-01-01 "));
    assert_false (rst_insights_is_day ("1999-12-31"));
    assert_false (rst_insights_is_day ("2026/01/01"));
    assert_false (rst_insights_is_day (""));
    assert_false (rst_insights_is_day (NULL));
}

static int
s_header (const char *name, const char *value, rst_insights_usage_t *u)
{
    return rst_insights_usage_header (name, value, strlen (value), u);
}

static void
test_usage_headers (void **state)
{
    (void) state;
    rst_insights_usage_t u;
    //  Each header alone.
    rst_insights_usage_init (&u);
    assert_int_equal (u.pct, -1);
    assert_int_equal (s_header ("X-Ad-Account-Usage",
                                "{\"acc_id_util_pct\":9.5,\"reset_time_duration\":120}", &u), 1);
    assert_int_equal (u.pct, 10);                   //  rounded up
    assert_int_equal (u.regain_s, 0);               //  not at 100: no wait
    rst_insights_usage_init (&u);
    assert_int_equal (s_header ("X-Ad-Account-Usage",
                                "{\"acc_id_util_pct\":100,\"reset_time_duration\":120}", &u), 1);
    assert_int_equal (u.pct, 100);
    assert_int_equal (u.regain_s, 120);
    rst_insights_usage_init (&u);
    assert_int_equal (s_header ("X-FB-Ads-Insights-Throttle",
                                "{\"app_id_util_pct\":\"93\",\"acc_id_util_pct\":7}", &u), 1);
    assert_int_equal (u.pct, 93);                   //  numeric strings too
    rst_insights_usage_init (&u);
    assert_int_equal (s_header ("x-business-use-case-usage",
                                "{\"1\":[{\"type\":\"ads_management\",\"call_count\":5},"
                                "{\"type\":\"ads_insights\",\"call_count\":100,"
                                "\"estimated_time_to_regain_access\":3}],"
                                "\"2\":[{\"type\":\"custom_audience\",\"total_time\":150}]}",
                                &u), 1);
    assert_int_equal (u.pct, 100);                  //  150 is clamped
    assert_int_equal (u.regain_s, 180);             //  3 minutes
    //  Folding keeps the highest of everything seen.
    assert_int_equal (s_header ("X-App-Usage", "{\"call_count\":1}", &u), 1);
    assert_int_equal (u.pct, 100);
    assert_int_equal (u.regain_s, 180);
    //  Other headers are not usage headers; broken ones change nothing.
    rst_insights_usage_init (&u);
    assert_int_equal (s_header ("Content-Type", "application/json", &u), 0);
    assert_int_equal (s_header ("X-App-Usage", "not json", &u), -1);
    assert_int_equal (s_header ("X-App-Usage", "[1,2]", &u), -1);
    assert_int_equal (s_header ("X-Business-Use-Case-Usage", "{\"1\":{\"call_count\":99}}", &u),
                      -1);
    assert_int_equal (s_header ("X-Business-Use-Case-Usage", "{\"1\":[7]}", &u), -1);
    assert_int_equal (u.pct, -1);
    assert_int_equal (s_header ("X-App-Usage", "{\"call_count\":-5,\"total_time\":\"x\"}", &u), 1);
    assert_int_equal (u.pct, 0);
    assert_int_equal (rst_insights_usage_header ("X-App-Usage", NULL, 0, &u), -1);
}

//  Parses BODY for 2026-08-01..2026-08-07; returns the rc and the error in ERR.
static int
s_parse (const char *body, char *err, size_t errlen, size_t *rows)
{
    rst_insights_report_t rep = {0};
    char *next = NULL;
    int rc = rst_insights_parse_page (body, strlen (body), "2026-08-01", "2026-08-07", &rep,
                                      &next, err, errlen);
    if (rows)
        *rows = rep.count;
    free (next);
    rst_insights_report_destroy (&rep);
    return rc;
}

#define S_ROW(fields) "{\"data\":[{" fields "}]}"
#define S_OK_ROW "\"campaign_id\":\"9\",\"spend\":\"1.00\",\"date_start\":\"2026-08-03\""

static void
test_page_errors (void **state)
{
    (void) state;
    char err[256];
    size_t rows;
    //  What a good page may leave out: name, currency, date_stop, paging.
    assert_int_equal (s_parse (S_ROW (S_OK_ROW), err, sizeof err, &rows), 0);
    assert_int_equal (rows, 1);
    assert_int_equal (s_parse ("{\"data\":[]}", err, sizeof err, &rows), 0);
    assert_int_equal (rows, 0);
    assert_int_equal (s_parse ("{\"data\":[],\"paging\":{\"next\":null}}", err, sizeof err, NULL),
                      0);
    struct {
        const char *body;
        const char *why;
    } bad[] = {
        {"", "not a JSON object"},
        {"<html>OK</html>", "not a JSON object"},
        {"[]", "not a JSON object"},
        {"{}", "no data array"},
        {"{\"data\":{}}", "no data array"},
        {"{\"error\":{\"code\":190}}", "Graph error"},
        {"{\"data\":[1]}", "not an object"},
        {S_ROW ("\"spend\":\"1.00\",\"date_start\":\"2026-08-03\""), "campaign_id"},
        {S_ROW ("\"campaign_id\":9,\"spend\":\"1.00\",\"date_start\":\"2026-08-03\""),
         "campaign_id"},
        {S_ROW ("\"campaign_id\":\"12a\",\"spend\":\"1.00\",\"date_start\":\"2026-08-03\""),
         "campaign_id"},
        {S_ROW ("\"campaign_id\":\"9\",\"spend\":1.5,\"date_start\":\"2026-08-03\""), "spend"},
        {S_ROW ("\"campaign_id\":\"9\",\"spend\":\"-1.00\",\"date_start\":\"2026-08-03\""),
         "not an amount"},
        {S_ROW ("\"campaign_id\":\"9\",\"spend\":\"1.00\""), "date_start"},
        {S_ROW ("\"campaign_id\":\"9\",\"spend\":\"1.00\",\"date_start\":\"2026-08-32\""),
         "date_start"},
        {S_ROW ("\"campaign_id\":\"9\",\"spend\":\"1.00\",\"date_start\":\"2026-07-31\""),
         "outside"},
        {S_ROW ("\"campaign_id\":\"9\",\"spend\":\"1.00\",\"date_start\":\"2026-08-08\""),
         "outside"},
        {S_ROW (S_OK_ROW ",\"date_stop\":\"2026-08-04\""), "not daily"},
        {S_ROW (S_OK_ROW ",\"campaign_name\":7"), "campaign_name"},
        {S_ROW (S_OK_ROW ",\"account_currency\":\"reais\""), "currency"},
        {"{\"data\":[],\"paging\":{\"next\":\"ftp://x/y\"}}", "paging.next"},
        {"{\"data\":[],\"paging\":{\"next\":5}}", "paging.next"},
        {"{\"data\":[],\"paging\":[]}", "paging"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        if (s_parse (bad[i].body, err, sizeof err, NULL) != -1)
            fail_msg ("accepted: %s", bad[i].body);
        if (!strstr (err, bad[i].why))
            fail_msg ("%s: error '%s' does not say '%s'", bad[i].body, err, bad[i].why);
    }
}

static void
test_long_name (void **state)
{
    (void) state;
    //  A name longer than RST_INSIGHTS_NAME_MAX is cut at a character boundary.
    size_t n = RST_INSIGHTS_NAME_MAX + 40;
    char *name = malloc (n + 1);
    for (size_t i = 0; i + 1 < n; i += 2)
        memcpy (name + i, "\xc3\xa9", 2);      //  "é" × n/2
    name[n] = 0;
    char *body = malloc (n + 200);
    snprintf (body, n + 200, S_ROW (S_OK_ROW ",\"campaign_name\":\"%s\""), name);
    rst_insights_report_t rep = {0};
    char *next = NULL, err[256];
    assert_int_equal (rst_insights_parse_page (body, strlen (body), NULL, NULL, &rep, &next, err,
                                               sizeof err), 0);
    size_t len = strlen (rep.rows[0].campaign_name);
    assert_true (len <= RST_INSIGHTS_NAME_MAX);
    assert_true (len >= RST_INSIGHTS_NAME_MAX - 1);
    assert_int_equal (len % 2, 0);                 //  no half character
    rst_insights_report_destroy (&rep);
    free (body);
    free (name);
}

static rst_insights_result_t
s_classify (long status, const char *curl_error, const char *body, int usage_pct, int64_t regain)
{
    rst_insights_result_t r;
    memset (&r, 0, sizeof r);
    r.usage.pct = usage_pct;
    r.usage.regain_s = regain;
    rst_insights_classify (status, curl_error, body, body ? strlen (body) : 0, &r);
    return r;
}

static void
test_classify (void **state)
{
    (void) state;
    rst_insights_result_t r;
    r = s_classify (400, NULL, "{\"error\":{\"message\":\"Error validating access token: Session "
                    "has expired on Tuesday, 01-Sep-26 10:00:00 PDT.\",\"type\":\"OAuthException\","
                    "\"code\":190,\"error_subcode\":463,\"fbtrace_id\":\"B9sLm0qT4\"}}", -1, 0);
    assert_int_equal (r.status, RST_INSIGHTS_TOKEN);
    assert_int_equal (r.code, 190);
    assert_int_equal (r.subcode, 463);
    assert_string_equal (r.fbtrace_id, "B9sLm0qT4");
    assert_non_null (strstr (r.message, "190/463"));
    assert_non_null (strstr (r.message, "Session has expired"));

    //  Throttling: the wait is Meta's hint, else the default.
    const char *user_limit = "{\"error\":{\"message\":\"(#17) User request limit reached\","
                             "\"type\":\"OAuthException\",\"code\":17,\"error_subcode\":2446079,"
                             "\"fbtrace_id\":\"C3vNp8wK2\"}}";
    r = s_classify (400, NULL, user_limit, 100, 600);
    assert_int_equal (r.status, RST_INSIGHTS_THROTTLED);
    assert_int_equal (r.wait_s, 600);
    r = s_classify (400, NULL, user_limit, -1, 0);
    assert_int_equal (r.status, RST_INSIGHTS_THROTTLED);
    assert_int_equal (r.wait_s, RST_INSIGHTS_DEFAULT_WAIT_S);
    int throttles[] = {4, 17, 32, 341, 613, 80000, 80004, 80014};
    for (size_t i = 0; i < sizeof throttles / sizeof throttles[0]; i++) {
        char body[128];
        snprintf (body, sizeof body, "{\"error\":{\"code\":%d,\"message\":\"x\"}}", throttles[i]);
        r = s_classify (400, NULL, body, -1, 0);
        if (r.status != RST_INSIGHTS_THROTTLED)
            fail_msg ("code %d is not throttling", throttles[i]);
    }
    r = s_classify (400, NULL, "{\"error\":{\"code\":80015,\"message\":\"x\"}}", -1, 0);
    assert_int_equal (r.status, RST_INSIGHTS_REJECTED);
    r = s_classify (400, NULL, "{\"error\":{\"code\":368,\"message\":\"blocked\"}}", -1, 0);
    assert_int_equal (r.status, RST_INSIGHTS_THROTTLED);
    assert_true (r.wait_s >= 3600);

    //  Transient and permanent.
    r = s_classify (500, NULL, "{\"error\":{\"code\":2,\"message\":\"down\",\"is_transient\":true}}",
                    -1, 0);
    assert_int_equal (r.status, RST_INSIGHTS_RETRY);
    r = s_classify (400, NULL, "{\"error\":{\"code\":1,\"message\":\"unknown\"}}", -1, 0);
    assert_int_equal (r.status, RST_INSIGHTS_RETRY);
    r = s_classify (400, NULL, "{\"error\":{\"code\":100,\"error_subcode\":33,\"message\":\"no\"}}",
                    -1, 0);
    assert_int_equal (r.status, RST_INSIGHTS_REJECTED);
    r = s_classify (403, NULL, "{\"error\":{\"code\":200,\"message\":\"permission\"}}", -1, 0);
    assert_int_equal (r.status, RST_INSIGHTS_REJECTED);
    r = s_classify (502, NULL, "<html>Bad gateway</html>", -1, 0);
    assert_int_equal (r.status, RST_INSIGHTS_RETRY);
    r = s_classify (429, NULL, NULL, -1, 0);
    assert_int_equal (r.status, RST_INSIGHTS_THROTTLED);
    r = s_classify (404, NULL, "<html>Not found</html>", -1, 0);
    assert_int_equal (r.status, RST_INSIGHTS_MALFORMED);
    r = s_classify (0, "libcurl: Connection refused", NULL, -1, 0);
    assert_int_equal (r.status, RST_INSIGHTS_RETRY);
    assert_non_null (strstr (r.message, "Connection refused"));
    //  A retry while the usage is at 100 is throttling: no call until the regain time.
    r = s_classify (503, NULL, NULL, 100, 240);
    assert_int_equal (r.status, RST_INSIGHTS_THROTTLED);
    assert_int_equal (r.wait_s, 240);
    //  Control characters never reach a log line.
    r = s_classify (400, NULL, "{\"error\":{\"code\":100,\"message\":\"a\\nb\\u0007c\"}}", -1, 0);
    assert_null (strchr (r.message, '\n'));
    assert_null (strchr (r.message, '\a'));
}

//  --------------------------------------------------------------------------
//  Against the fake

#define S_TOKEN   "EAAB-insights-test-token-1"
#define S_ACCOUNT "424242"

static int
s_meta_start (tg_fake_t *fake)
{
    memset (fake, 0, sizeof *fake);
    curl_global_init (CURL_GLOBAL_DEFAULT);
    char script[PATH_MAX];
    const char *src = getenv ("RASTRO_SOURCE_DIR");
    if (src)
        snprintf (script, sizeof script, "%s/tests/fakes/fake_meta.py", src);
    else {
        snprintf (script, sizeof script, "%s", __FILE__);
        char *tail = strstr (script, "tests/unit/");
        if (!tail)
            return -1;
        snprintf (tail, sizeof script - (size_t) (tail - script), "tests/fakes/fake_meta.py");
    }
    fake->port = tg_fake_free_port ();
    snprintf (fake->url, sizeof fake->url, "http://127.0.0.1:%d", fake->port);
    char port[16];
    snprintf (port, sizeof port, "%d", fake->port);
    fflush (NULL);
    fake->pid = fork ();
    if (fake->pid < 0)
        return -1;
    if (fake->pid == 0) {
        prctl (PR_SET_PDEATHSIG, SIGTERM);
        execlp ("python3", "python3", script, "--port", port, "--quiet", (char *) NULL);
        _exit (127);
    }
    for (int i = 0; i < 300; i++) {
        if (tg_fake_http (fake, "GET", "/_fake/health", NULL, NULL) == 200)
            return 0;
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep (&ts, NULL);
    }
    return -1;
}

static int
s_setup (void **state)
{
    tg_fake_t *fake = calloc (1, sizeof *fake);
    if (!fake || s_meta_start (fake)) {
        free (fake);
        return -1;
    }
    *state = fake;
    return 0;
}

static int
s_teardown (void **state)
{
    tg_fake_t *fake = *state;
    tg_fake_stop (fake);
    free (fake);
    return 0;
}

//  The fake's Insights calls for the account, as JSON (the caller's).
static cJSON *
s_calls (tg_fake_t *fake)
{
    cJSON *calls = tg_fake_get_json (fake, "/_fake/insights/calls?account=" S_ACCOUNT);
    assert_non_null (calls);
    return calls;
}

static void
s_reset (tg_fake_t *fake, int page_size, int usage_pct)
{
    char body[1024];
    snprintf (body, sizeof body,
              "{\"reset\":true,\"account\":\"" S_ACCOUNT "\",\"token\":\"" S_TOKEN "\","
              "\"page_size\":%d,\"usage_pct\":%d,\"rows\":["
              "{\"day\":\"2026-08-01\",\"campaign_id\":\"11\",\"campaign_name\":\"A\",\"spend\":\"12.34\"},"
              "{\"day\":\"2026-08-01\",\"campaign_id\":\"12\",\"campaign_name\":\"B\",\"spend\":\"0.01\"},"
              "{\"day\":\"2026-08-02\",\"campaign_id\":\"11\",\"campaign_name\":\"A\",\"spend\":\"100\"},"
              "{\"day\":\"2026-08-03\",\"campaign_id\":\"11\",\"campaign_name\":\"A\",\"spend\":\"7.5\"},"
              "{\"day\":\"2026-08-09\",\"campaign_id\":\"11\",\"campaign_name\":\"A\",\"spend\":\"1\"}]}",
              page_size, usage_pct);
    assert_int_equal (tg_fake_post (fake, "/_fake/insights", body), 200);
}

static void
s_fault (tg_fake_t *fake, const char *fault)
{
    char body[512];
    snprintf (body, sizeof body, "{\"account\":\"" S_ACCOUNT "\",\"faults\":[%s]}", fault);
    assert_int_equal (tg_fake_post (fake, "/_fake/insights", body), 200);
}

static void
test_fetch_pages (void **state)
{
    tg_fake_t *fake = *state;
    s_reset (fake, 2, 42);
    char err[256];
    rst_insights_t *client = rst_insights_new (fake->url, "v25.0", 5000, err, sizeof err);
    assert_non_null (client);
    rst_insights_report_t rep = {0};
    rst_insights_result_t r;
    //  4 rows in range, 2 per page: 2 pages, paging.next followed.
    assert_int_equal (rst_insights_fetch (client, S_ACCOUNT, S_TOKEN, "2026-08-01", "2026-08-07",
                                          &rep, &r), 0);
    assert_int_equal (r.status, RST_INSIGHTS_OK);
    assert_int_equal (r.pages, 2);
    assert_int_equal (r.usage.pct, 42);
    assert_int_equal (rep.count, 4);
    int64_t total = 0;
    for (size_t i = 0; i < rep.count; i++)
        total += rep.rows[i].spend_cents;
    assert_int_equal (total, 1234 + 1 + 10000 + 750);
    assert_string_equal (rep.rows[3].day, "2026-08-03");
    rst_insights_report_destroy (&rep);
    //  The token went in the Authorization header, and it was the right one.
    cJSON *calls = s_calls (fake);
    assert_int_equal (cJSON_GetArraySize (calls), 2);
    cJSON *call;
    cJSON_ArrayForEach (call, calls) {
        assert_string_equal (cJSON_GetObjectItem (call, "auth")->valuestring, "header");
        assert_true (cJSON_IsTrue (cJSON_GetObjectItem (call, "token_ok")));
        assert_string_equal (cJSON_GetObjectItem (call, "since")->valuestring, "2026-08-01");
    }
    assert_string_equal (cJSON_GetObjectItem (cJSON_GetArrayItem (calls, 1), "after")->valuestring,
                         "2");
    cJSON_Delete (calls);

    //  A wrong token: TOKEN, and the message never holds the token.
    assert_int_equal (rst_insights_fetch (client, S_ACCOUNT, "EAAB-wrong-token", "2026-08-01",
                                          "2026-08-07", &rep, &r), -1);
    assert_int_equal (r.status, RST_INSIGHTS_TOKEN);
    assert_int_equal (r.code, 190);
    assert_null (strstr (r.message, "EAAB"));
    assert_int_equal (rep.count, 0);
    //  An account the fake does not know: REJECTED (100/33).
    assert_int_equal (rst_insights_fetch (client, "999", S_TOKEN, "2026-08-01", "2026-08-07",
                                          &rep, &r), -1);
    assert_int_equal (r.status, RST_INSIGHTS_REJECTED);
    assert_int_equal (r.subcode, 33);
    //  Bad arguments never reach the network.
    assert_int_equal (rst_insights_fetch (client, "act_1", S_TOKEN, "2026-08-01", "2026-08-07",
                                          &rep, &r), -1);
    assert_int_equal (rst_insights_fetch (client, S_ACCOUNT, S_TOKEN, "2026-08-07", "2026-08-01",
                                          &rep, &r), -1);
    rst_insights_destroy (&client);
    assert_null (client);
}

static void
test_fetch_failures (void **state)
{
    tg_fake_t *fake = *state;
    char err[256];
    rst_insights_t *client = rst_insights_new (fake->url, "v25.0", 5000, err, sizeof err);
    assert_non_null (client);
    rst_insights_report_t rep = {0};
    rst_insights_result_t r;
#define S_FETCH() rst_insights_fetch (client, S_ACCOUNT, S_TOKEN, "2026-08-01", "2026-08-07", \
                                      &rep, &r)

    //  Throttled (BUC 80004): Meta's regain time, 2 minutes.
    s_reset (fake, 2, 10);
    s_fault (fake, "{\"kind\":\"throttle\",\"code\":80004,\"wait_minutes\":2}");
    assert_int_equal (S_FETCH (), -1);
    assert_int_equal (r.status, RST_INSIGHTS_THROTTLED);
    assert_int_equal (r.code, 80004);
    assert_int_equal (r.usage.pct, 100);
    assert_int_equal (r.wait_s, 120);

    //  A malformed page 2: nothing is kept, not even page 1's rows.
    s_reset (fake, 2, 10);
    assert_int_equal (S_FETCH (), 0);               //  page 1 of the next fetch is fine ...
    s_fault (fake, "{\"kind\":\"malformed\"}");
    assert_int_equal (S_FETCH (), -1);
    assert_int_equal (r.status, RST_INSIGHTS_MALFORMED);
    assert_int_equal (rep.count, 0);
    s_fault (fake, "{\"kind\":\"bad_row\"}");
    assert_int_equal (S_FETCH (), -1);
    assert_int_equal (r.status, RST_INSIGHTS_MALFORMED);
    assert_non_null (strstr (r.message, "spend"));
    assert_int_equal (rep.count, 0);

    //  HTTP 500: retry later.
    s_fault (fake, "{\"kind\":\"status\",\"status\":500}");
    assert_int_equal (S_FETCH (), -1);
    assert_int_equal (r.status, RST_INSIGHTS_RETRY);
    assert_int_equal (r.http_status, 500);

    //  A next link to another host is never followed (the token stays home).
    s_reset (fake, 2, 10);
    s_fault (fake, "{\"kind\":\"foreign_next\"}");
    assert_int_equal (S_FETCH (), -1);
    assert_int_equal (r.status, RST_INSIGHTS_MALFORMED);
    assert_non_null (strstr (r.message, "paging.next"));
    cJSON *calls = s_calls (fake);
    assert_int_equal (cJSON_GetArraySize (calls), 1);
    cJSON_Delete (calls);

    //  Usage at 100 with more pages to read: stop, throttled.
    s_reset (fake, 2, 100);
    assert_int_equal (S_FETCH (), -1);
    assert_int_equal (r.status, RST_INSIGHTS_THROTTLED);
    assert_int_equal (r.pages, 1);
    assert_int_equal (rep.count, 0);
    //  ... but a report that fits in one page is complete: OK, usage 100.
    s_reset (fake, 10, 100);
    assert_int_equal (S_FETCH (), 0);
    assert_int_equal (rep.count, 4);
    assert_int_equal (r.usage.pct, 100);
    rst_insights_report_destroy (&rep);

    //  Nobody listening: retry.
    rst_insights_destroy (&client);
    char url[64];
    snprintf (url, sizeof url, "http://127.0.0.1:%d", tg_fake_free_port ());
    client = rst_insights_new (url, "v25.0", 2000, err, sizeof err);
    assert_int_equal (S_FETCH (), -1);
    assert_int_equal (r.status, RST_INSIGHTS_RETRY);
    rst_insights_destroy (&client);
#undef S_FETCH
}

static void
test_new_errors (void **state)
{
    (void) state;
    char err[256];
    assert_null (rst_insights_new ("ftp://x", "v25.0", 1000, err, sizeof err));
    assert_non_null (strstr (err, "RASTRO_META_GRAPH_URL"));
    assert_null (rst_insights_new ("http://127.0.0.1:1", "v25.0/../x", 1000, err, sizeof err));
    assert_null (rst_insights_new ("http://127.0.0.1:1", "", 1000, err, sizeof err));
}

int
main (void)
{
    const struct CMUnitTest pure[] = {
        cmocka_unit_test (test_tutorial),     cmocka_unit_test (test_cents),
        cmocka_unit_test (test_days),         cmocka_unit_test (test_usage_headers),
        cmocka_unit_test (test_page_errors),  cmocka_unit_test (test_long_name),
        cmocka_unit_test (test_classify),     cmocka_unit_test (test_new_errors),
    };
    const struct CMUnitTest live[] = {
        cmocka_unit_test (test_fetch_pages),
        cmocka_unit_test (test_fetch_failures),
    };
    int failed = cmocka_run_group_tests_name ("pure", pure, NULL, NULL);
    failed += cmocka_run_group_tests_name ("fake_meta", live, s_setup, s_teardown);
    return failed;
}
