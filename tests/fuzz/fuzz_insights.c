/*  fuzz_insights — Meta Insights replies against arbitrary bytes.

    Treats the input as what Meta could send: a page body (parsed for a
    range and without one), a usage header value (each of the four names),
    an error body (classified with a few statuses), and a spend string.
    Checks the parsers' promises: a parsed row is complete (a valid day in
    the range, campaign_id digits, spend within 0..RST_INSIGHTS_MAX_CENTS,
    the name NUL-terminated within its limit), a next link is http(s), a
    usage percentage is -1..100 and a wait is never negative, a failed page
    leaves no next link. AddressSanitizer and UBSan do the rest. Seeds:
    tests/fuzz/corpus/fuzz_insights/.
*/
#include "rst_insights.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define S_CHECK(cond)                                                                          \
    do {                                                                                       \
        if (!(cond))                                                                           \
            abort ();                                                                          \
    } while (0)

static void
s_page (const char *data, size_t size, const char *since, const char *until)
{
    rst_insights_report_t rep = {0};
    char *next = (char *) 1;
    char err[256];
    int rc = rst_insights_parse_page (data, size, since, until, &rep, &next, err, sizeof err);
    if (rc == 0) {
        S_CHECK (!next || !strncmp (next, "http://", 7) || !strncmp (next, "https://", 8));
        for (size_t i = 0; i < rep.count; i++) {
            const rst_insights_row_t *row = &rep.rows[i];
            S_CHECK (rst_insights_is_day (row->day));
            S_CHECK (!since || strcmp (row->day, since) >= 0);
            S_CHECK (!until || strcmp (row->day, until) <= 0);
            size_t n = strlen (row->campaign_id);
            S_CHECK (n >= 1 && n <= RST_INSIGHTS_ID_MAX);
            for (size_t k = 0; k < n; k++)
                S_CHECK (row->campaign_id[k] >= '0' && row->campaign_id[k] <= '9');
            S_CHECK (row->spend_cents >= 0 && row->spend_cents <= RST_INSIGHTS_MAX_CENTS);
            S_CHECK (strlen (row->campaign_name) <= RST_INSIGHTS_NAME_MAX);
            S_CHECK (strlen (row->currency) == 0 || strlen (row->currency) == 3);
        }
    }
    else
        S_CHECK (next == NULL && err[0]);
    free (next == (char *) 1 ? NULL : next);
    rst_insights_report_destroy (&rep);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    const char *text = (const char *) data;
    s_page (text, size, "2026-08-01", "2026-08-31");
    s_page (text, size, NULL, NULL);

    static const char *names[] = {"X-Business-Use-Case-Usage", "X-App-Usage",
                                  "X-Ad-Account-Usage", "X-FB-Ads-Insights-Throttle"};
    rst_insights_usage_t u;
    rst_insights_usage_init (&u);
    for (size_t i = 0; i < 4; i++) {
        int rc = rst_insights_usage_header (names[i], text, size, &u);
        S_CHECK (rc == 1 || rc == -1);
        S_CHECK (u.pct >= -1 && u.pct <= 100);
        S_CHECK (u.regain_s >= 0);
    }

    static const long statuses[] = {200, 400, 429, 500};
    for (size_t i = 0; i < 4; i++) {
        rst_insights_result_t r;
        memset (&r, 0, sizeof r);
        r.usage = u;
        rst_insights_classify (statuses[i], NULL, text, size, &r);
        S_CHECK (r.status != RST_INSIGHTS_OK);
        S_CHECK (memchr (r.message, 0, sizeof r.message) && r.message[0]);
        S_CHECK (memchr (r.fbtrace_id, 0, sizeof r.fbtrace_id));
        S_CHECK (r.status != RST_INSIGHTS_THROTTLED || r.wait_s > 0);
        for (const char *c = r.message; *c; c++)
            S_CHECK ((unsigned char) *c >= 0x20 && *c != 0x7f);
    }

    char *copy = malloc (size + 1);
    if (!copy)
        return 0;
    memcpy (copy, data, size);
    copy[size] = 0;
    int64_t cents = -7;
    if (rst_insights_cents (copy, 9, 1, &cents) == 0)
        S_CHECK (cents >= 0 && cents <= RST_INSIGHTS_MAX_CENTS);
    else
        S_CHECK (cents == -7);
    (void) rst_insights_is_day (copy);
    free (copy);
    return 0;
}
