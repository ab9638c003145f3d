/*  rst_limiter_test — per-pixel token buckets, FIFO queues, throttling.

    Time is injected (NOW_MS arguments): no sleeps. First the tutorial: a
    pixel at 50 events/s gets its burst of 50 at once, then one event every
    20 ms. Then: an empty bucket, priority to the front, de-duplication of
    queued replays, a throttled pixel never delaying another one, recovery,
    caps, and unrelease keeping the order.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rst_limiter.h"

#define T0 1000000

static int
s_add (rst_limiter_t *l, const char *pixel, const char *id, int priority, int64_t now)
{
    return rst_limiter_add (l, pixel, strlen (pixel), id, strlen (id), priority, id, strlen (id),
                            now);
}

//  Releases everything allowed at NOW; counts per pixel "a" and "b".
static int
s_drain (rst_limiter_t *l, int64_t now, int *a, int *b, char *last_id)
{
    int n = 0;
    rst_limiter_item_t it;
    while (rst_limiter_next (l, now, &it)) {
        if (a && !strcmp (it.pixel, "a"))
            (*a)++;
        if (b && !strcmp (it.pixel, "b"))
            (*b)++;
        if (last_id)
            strcpy (last_id, it.event_id);
        free (it.data);
        n++;
    }
    return n;
}

static void
test_tutorial_rate_50 (void **state)
{
    (void) state;
    rst_limiter_t *l = rst_limiter_new (1000, 0, 0);
    rst_limiter_set_rate (l, "a", 1, 50);
    char id[32];
    for (int i = 0; i < 200; i++) {
        snprintf (id, sizeof id, "e%d", i);
        assert_int_equal (s_add (l, "a", id, 0, T0), RST_LIMITER_QUEUED);
    }
    //  A full bucket: one second of rate at once, in order.
    char last[80] = "";
    assert_int_equal (s_drain (l, T0, NULL, NULL, last), 50);
    assert_string_equal (last, "e49");
    //  Empty bucket: nothing more now, the next token in 20 ms.
    assert_int_equal (s_drain (l, T0, NULL, NULL, NULL), 0);
    assert_int_equal (rst_limiter_wait_ms (l, T0), 20);
    assert_int_equal (s_drain (l, T0 + 19, NULL, NULL, NULL), 0);
    assert_int_equal (s_drain (l, T0 + 20, NULL, NULL, NULL), 1);
    //  150 left at 50/s: 3 more seconds.
    int total = 51;
    for (int64_t t = T0 + 40; t <= T0 + 3000; t += 20)
        total += s_drain (l, t, NULL, NULL, NULL);
    assert_int_equal (total, 200);
    assert_int_equal (rst_limiter_total (l), 0);
    assert_int_equal (rst_limiter_wait_ms (l, T0 + 3000), -1);
    rst_limiter_destroy (&l);
    assert_null (l);
}

static void
test_priority_front_and_dedup (void **state)
{
    (void) state;
    rst_limiter_t *l = rst_limiter_new (1, 0, 0);   //  1/s: one at a time
    assert_int_equal (s_add (l, "a", "n1", 0, T0), RST_LIMITER_QUEUED);
    assert_int_equal (s_add (l, "a", "n2", 0, T0), RST_LIMITER_QUEUED);
    assert_int_equal (s_add (l, "a", "p1", 1, T0), RST_LIMITER_QUEUED);
    assert_int_equal (s_add (l, "a", "p2", 1, T0), RST_LIMITER_QUEUED);
    assert_int_equal (s_add (l, "a", "n1", 0, T0), RST_LIMITER_DUPLICATE);
    assert_int_equal (s_add (l, "a", "p1", 1, T0), RST_LIMITER_DUPLICATE);
    const char *order[] = {"p1", "p2", "n1", "n2"};
    for (int i = 0; i < 4; i++) {
        rst_limiter_item_t it;
        assert_int_equal (rst_limiter_next (l, T0 + i * 1000, &it), 1);
        assert_string_equal (it.event_id, order[i]);
        assert_int_equal (it.priority, i < 2);
        free (it.data);
        //  Released: the same id may come again (a later replay).
        if (i == 0)
            assert_int_equal (s_add (l, "a", "p1", 0, T0), RST_LIMITER_QUEUED),
                assert_int_equal (rst_limiter_next (l, T0 + 500, &it), 0);
    }
    rst_limiter_item_t it;
    assert_int_equal (rst_limiter_next (l, T0 + 4000, &it), 1);
    assert_string_equal (it.event_id, "p1");
    free (it.data);
    rst_limiter_destroy (&l);
}

static void
test_throttle_slows_only_that_pixel (void **state)
{
    (void) state;
    rst_limiter_t *l = rst_limiter_new (100, 0, 0);
    char id[32];
    for (int i = 0; i < 1000; i++) {
        snprintf (id, sizeof id, "a%d", i);
        s_add (l, "a", id, 0, T0);
        snprintf (id, sizeof id, "b%d", i);
        s_add (l, "b", id, 0, T0);
    }
    int a = 0, b = 0;
    s_drain (l, T0, &a, &b, NULL);
    assert_int_equal (a, 100);
    assert_int_equal (b, 100);
    //  Meta throttles "a", asking for 2 s.
    rst_limiter_throttled (l, "a", 1, 2000, T0);
    assert_true (rst_limiter_rate (l, "a", 1, T0) == 0);
    assert_int_equal (rst_limiter_throttles (l), 1);
    a = b = 0;
    for (int64_t t = T0 + 10; t <= T0 + 2000; t += 10)
        s_drain (l, t, &a, &b, NULL);
    assert_int_equal (a, 0);                //  paused
    assert_true (b >= 199 && b <= 200);     //  unaffected: 100/s for 2 s
    //  After the pause: half the rate (50/s), climbing 10% per calm second.
    assert_true (rst_limiter_rate (l, "a", 1, T0 + 2000) == 50);
    a = 0;
    for (int64_t t = T0 + 2010; t <= T0 + 3000; t += 10)
        s_drain (l, t, &a, NULL, NULL);
    assert_true (a >= 49 && a <= 51);
    assert_true (rst_limiter_rate (l, "a", 1, T0 + 3000) > 50);
    assert_true (rst_limiter_rate (l, "a", 1, T0 + 30000) == 100);
    //  Without a hint: the default backoff; never below 1/s.
    for (int i = 0; i < 20; i++)
        rst_limiter_throttled (l, "a", 1, 0, T0 + 40000);
    assert_true (rst_limiter_rate (l, "a", 1, T0 + 40000 + RST_LIMITER_BACKOFF_MS) == 1);
    //  Top-N sees both queues.
    const char *px[2];
    size_t depths[2];
    double rates[2];
    assert_int_equal (rst_limiter_top (l, 2, px, depths, rates, T0 + 40000), 2);
    assert_true (depths[0] >= depths[1]);
    rst_limiter_destroy (&l);
}

static void
test_caps_and_unrelease (void **state)
{
    (void) state;
    rst_limiter_t *l = rst_limiter_new (10, 3, 5);
    assert_int_equal (s_add (l, "a", "1", 0, T0), RST_LIMITER_QUEUED);
    assert_int_equal (s_add (l, "a", "2", 0, T0), RST_LIMITER_QUEUED);
    assert_int_equal (s_add (l, "a", "3", 0, T0), RST_LIMITER_QUEUED);
    assert_int_equal (s_add (l, "a", "4", 0, T0), RST_LIMITER_FULL);     //  pixel cap
    assert_int_equal (s_add (l, "b", "5", 0, T0), RST_LIMITER_QUEUED);
    assert_int_equal (s_add (l, "b", "6", 0, T0), RST_LIMITER_QUEUED);
    assert_int_equal (s_add (l, "c", "7", 0, T0), RST_LIMITER_FULL);     //  total cap
    //  Release two of "a", give them back (a push failed): order kept.
    rst_limiter_item_t it[4];
    int n = 0;
    while (n < 4 && rst_limiter_next (l, T0, &it[n]))
        n++;
    assert_int_equal (n, 4);
    while (n > 0)
        rst_limiter_unrelease (l, &it[--n]);
    assert_int_equal (rst_limiter_total (l), 5);
    assert_int_equal (rst_limiter_depth (l, "a", 1), 3);
    char last[80];
    int a = 0;
    s_drain (l, T0, &a, NULL, last);
    assert_int_equal (a, 3);
    assert_int_equal (rst_limiter_total (l), 0);
    rst_limiter_destroy (&l);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_tutorial_rate_50),
        cmocka_unit_test (test_priority_front_and_dedup),
        cmocka_unit_test (test_throttle_slows_only_that_pixel),
        cmocka_unit_test (test_caps_and_unrelease),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
