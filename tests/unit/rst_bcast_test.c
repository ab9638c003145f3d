/*  rst_bcast_test — the broadcaster's protocol (rst_bcast): parsing a
    client's subscribe, and what a client is sent as an owner's numbers
    move.

    The first test is the tour: a subscription is parsed, the first render
    is a snapshot of every subscribed entry, a change renders an update
    holding only what moved, no change renders nothing, several changes
    between two renders coalesce into one update with the newest absolute
    values, and a new day renders a snapshot. The others test the parser's
    refusals one by one, the caps, and the error messages.
*/
#include "rst_bcast.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
s_parse (const char *text, size_t max_ids, rst_bcast_sub_t *sub, char *err)
{
    return rst_bcast_parse (text, strlen (text), max_ids, sub, err, 64);
}

static rst_bcast_day_t *
s_day (const char *date, int64_t bot1_clicks, int64_t pool3_revenue)
{
    rst_bcast_day_t *day = rst_bcast_day_new (7, date);
    assert_non_null (day);
    rst_bcast_metrics_t b1 = {.clicks = bot1_clicks, .starts = 1};
    rst_bcast_metrics_t b9 = {.clicks = 100};
    rst_bcast_metrics_t p3 = {.purchases = 1, .revenue_cents = pool3_revenue};
    assert_int_equal (rst_bcast_day_add_bot (day, 1, &b1), 0);
    assert_int_equal (rst_bcast_day_add_bot (day, 9, &b9), 0);
    assert_int_equal (rst_bcast_day_add_pool (day, 3, &p3), 0);
    day->total.clicks = bot1_clicks + 100;
    day->total.revenue_cents = pool3_revenue;
    return day;
}

static void
test_tour (void **state)
{
    (void) state;
    rst_bcast_sub_t sub;
    char err[64];
    assert_int_equal (s_parse ("{\"type\":\"subscribe\",\"bots\":[2,1,1],\"pools\":[3]}", 10, &sub,
                               err),
                      RST_BCAST_SUBSCRIBE);
    assert_int_equal (sub.nbots, 2);        //  sorted, duplicates merged
    assert_int_equal (sub.bots[0], 1);
    assert_int_equal (sub.bots[1], 2);
    assert_int_equal (sub.npools, 1);

    rst_bcast_view_t view;
    rst_bcast_view_init (&view);
    assert_int_equal (rst_bcast_view_subscribe (&view, &sub), 0);
    assert_null (sub.bots);

    //  First render: a snapshot of everything subscribed; bot 2 has no row: zeros.
    rst_bcast_day_t *day = s_day ("2026-03-04", 5, 9700);
    char *text;
    size_t len;
    assert_int_equal (rst_bcast_view_render (&view, day, 0, &text, &len), 1);
    assert_string_equal (
        text,
        "{\"type\":\"snapshot\",\"seq\":1,\"day\":\"2026-03-04\","
        "\"total\":{\"clicks\":105,\"automated_clicks\":0,\"starts\":0,\"checkouts\":0,"
        "\"purchases\":0,\"revenue_cents\":9700},"
        "\"bots\":{\"1\":{\"clicks\":5,\"automated_clicks\":0,\"starts\":1,\"checkouts\":0,"
        "\"purchases\":0,\"revenue_cents\":0},"
        "\"2\":{\"clicks\":0,\"automated_clicks\":0,\"starts\":0,\"checkouts\":0,"
        "\"purchases\":0,\"revenue_cents\":0}},"
        "\"pools\":{\"3\":{\"clicks\":0,\"automated_clicks\":0,\"starts\":0,\"checkouts\":0,"
        "\"purchases\":1,\"revenue_cents\":9700}}}");
    assert_int_equal (len, strlen (text));
    free (text);

    //  Same numbers: nothing to send.
    assert_int_equal (rst_bcast_view_render (&view, day, 0, &text, &len), 0);
    assert_null (text);
    rst_bcast_day_destroy (&day);

    //  Two changes before the next render: one update, newest values, only what moved.
    day = s_day ("2026-03-04", 6, 9700);
    rst_bcast_day_destroy (&day);
    day = s_day ("2026-03-04", 8, 9700);
    assert_int_equal (rst_bcast_view_render (&view, day, 0, &text, &len), 1);
    assert_string_equal (
        text,
        "{\"type\":\"update\",\"seq\":2,\"day\":\"2026-03-04\","
        "\"total\":{\"clicks\":108,\"automated_clicks\":0,\"starts\":0,\"checkouts\":0,"
        "\"purchases\":0,\"revenue_cents\":9700},"
        "\"bots\":{\"1\":{\"clicks\":8,\"automated_clicks\":0,\"starts\":1,\"checkouts\":0,"
        "\"purchases\":0,\"revenue_cents\":0}},\"pools\":{}}");
    free (text);
    rst_bcast_day_destroy (&day);

    //  A new day: a snapshot again.
    day = s_day ("2026-03-05", 0, 0);
    assert_int_equal (rst_bcast_view_render (&view, day, 0, &text, &len), 1);
    assert_non_null (strstr (text, "\"type\":\"snapshot\",\"seq\":3,\"day\":\"2026-03-05\""));
    free (text);
    //  FULL forces one even when nothing moved.
    assert_int_equal (rst_bcast_view_render (&view, day, 1, &text, &len), 1);
    assert_non_null (strstr (text, "\"type\":\"snapshot\",\"seq\":4"));
    free (text);
    rst_bcast_day_destroy (&day);
    rst_bcast_view_clear (&view);
}

static void
test_refusals (void **state)
{
    (void) state;
    struct {
        const char *text;
        const char *reason;
    } cases[] = {
        {"", "empty message"},
        {"not json", "bad json"},
        {"[1]", "not an object"},
        {"{}", "no type"},
        {"{\"type\":1}", "no type"},
        {"{\"type\":\"unsubscribe\"}", "unknown type"},
        {"{\"type\":\"subscribe\",\"bots\":{}}", "bad bots"},
        {"{\"type\":\"subscribe\",\"bots\":[0]}", "bad bots"},
        {"{\"type\":\"subscribe\",\"bots\":[-3]}", "bad bots"},
        {"{\"type\":\"subscribe\",\"bots\":[2.5]}", "bad bots"},
        {"{\"type\":\"subscribe\",\"bots\":[\"4\"]}", "bad bots"},
        {"{\"type\":\"subscribe\",\"bots\":[true]}", "bad bots"},
        {"{\"type\":\"subscribe\",\"pools\":[9007199254740992]}", "bad pools"},
        {"{\"type\":\"subscribe\",\"pools\":[1e400]}", "bad pools"},
        {"{\"type\":\"subscribe\",\"bots\":[1,2,3,4]}", "too many ids"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rst_bcast_sub_t sub;
        char err[64] = "";
        int rc = s_parse (cases[i].text, 3, &sub, err);
        if (rc != -1 || strcmp (err, cases[i].reason))
            fail_msg ("%s: rc %d, reason '%s', expected '%s'", cases[i].text, rc, err,
                      cases[i].reason);
        assert_null (sub.bots);
        assert_null (sub.pools);
    }
    //  Not NUL-terminated input is fine (the length rules).
    rst_bcast_sub_t sub;
    char err[64];
    const char *text = "{\"type\":\"subscribe\",\"bots\":[4]}GARBAGE";
    assert_int_equal (rst_bcast_parse (text, strlen (text) - 7, 3, &sub, err, sizeof err),
                      RST_BCAST_SUBSCRIBE);
    assert_int_equal (sub.nbots, 1);
    rst_bcast_sub_clear (&sub);
}

static void
test_caps_and_lookups (void **state)
{
    (void) state;
    //  Exactly MAX_IDS distinct ids pass, also when written with duplicates.
    rst_bcast_sub_t sub;
    char err[64];
    assert_int_equal (
        s_parse ("{\"type\":\"subscribe\",\"bots\":[3,1,2,3,2,1],\"pools\":null}", 3, &sub, err),
        RST_BCAST_SUBSCRIBE);
    assert_int_equal (sub.nbots, 3);
    assert_int_equal (sub.npools, 0);
    assert_true (rst_bcast_has_id (sub.bots, sub.nbots, 2));
    assert_false (rst_bcast_has_id (sub.bots, sub.nbots, 4));
    rst_bcast_sub_clear (&sub);
    rst_bcast_sub_clear (&sub);             //  twice is fine

    rst_bcast_day_t *day = rst_bcast_day_new (1, "2026-01-01");
    rst_bcast_metrics_t m = {.clicks = 1};
    assert_int_equal (rst_bcast_day_add_bot (day, 10, &m), 0);
    assert_int_equal (rst_bcast_day_add_bot (day, 5, &m), 0);  //  out of order: ignored
    assert_int_equal (day->nbots, 1);
    for (int64_t id = 11; id < 100; id++)
        assert_int_equal (rst_bcast_day_add_bot (day, id, &m), 0);
    assert_non_null (rst_bcast_day_bot (day, 50));
    assert_null (rst_bcast_day_bot (day, 5));
    assert_null (rst_bcast_day_pool (day, 50));
    rst_bcast_day_destroy (&day);
    assert_null (day);
    rst_bcast_day_destroy (&day);

    //  A view without a subscription renders nothing.
    rst_bcast_view_t view;
    rst_bcast_view_init (&view);
    day = rst_bcast_day_new (1, "2026-01-01");
    char *text;
    size_t len;
    assert_int_equal (rst_bcast_view_render (&view, day, 1, &text, &len), 0);
    rst_bcast_day_destroy (&day);
    rst_bcast_view_clear (&view);
}

static void
test_errors (void **state)
{
    (void) state;
    size_t len;
    char *text = rst_bcast_error_json ("not found", "bot", 7, &len);
    assert_string_equal (text, "{\"type\":\"error\",\"error\":\"not found\",\"bot\":7}");
    assert_int_equal (len, strlen (text));
    free (text);
    text = rst_bcast_error_json ("not found", "pool", 3, &len);
    assert_string_equal (text, "{\"type\":\"error\",\"error\":\"not found\",\"pool\":3}");
    free (text);
    text = rst_bcast_error_json ("bad json", NULL, 0, &len);
    assert_string_equal (text, "{\"type\":\"error\",\"error\":\"bad json\"}");
    free (text);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_tour),
        cmocka_unit_test (test_refusals),
        cmocka_unit_test (test_caps_and_lookups),
        cmocka_unit_test (test_errors),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
