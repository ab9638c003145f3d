/*  rst_batcher_test — batches per (owner, pixel), time injected.

    First the tutorial: 1,000 events of one pixel make exactly one full
    batch, at once. Then: 999 wait for the timer; the timer flushes a
    partial batch after flush_ms; a Purchase leaves at once through the
    priority lane, ahead of the normal batch; owners and pixels never mix;
    drain empties everything.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "rst_batcher.h"

#define T0 5000

static void
s_add (rst_batcher_t *b, int64_t owner, const char *pixel, int i, int priority, int64_t now)
{
    char id[32];
    snprintf (id, sizeof id, "ev-%s-%d", pixel, i);
    rst_enriched_t e = {
        .event_id = rst_str (id), .src = rst_str ("front.0"), .seq = (uint64_t) i + 1,
        .type = rst_str ("click"), .event_name = rst_str ("PageView"), .time_ms = 1767225600000,
        .owner_id = owner, .pixel_id = rst_str (pixel), .priority = priority,
        .capi = rst_str ("{\"event_name\":\"PageView\"}"),
    };
    assert_int_equal (rst_batcher_add (b, &e, now), 0);
}

static void
test_exactly_1000_flushes (void **state)
{
    (void) state;
    rst_batcher_t *b = rst_batcher_new (1000, 1000);
    rst_batcher_reason_t why;
    for (int i = 0; i < 999; i++)
        s_add (b, 1, "111", i, 0, T0);
    assert_null (rst_batcher_take (b, T0, 0, 0, &why));       //  999: not yet
    assert_int_equal (rst_batcher_wait_ms (b, T0), 1000);
    s_add (b, 1, "111", 999, 0, T0);
    rst_batch_t *batch = rst_batcher_take (b, T0, 42, 0, &why);
    assert_non_null (batch);
    assert_int_equal (why, RST_BATCHER_FULL);
    assert_int_equal (batch->count, 1000);
    assert_int_equal (batch->owner_id, 1);
    assert_int_equal (batch->created_ms, 42);
    assert_string_equal (batch->pixel_id.ptr, "111");
    assert_string_equal (batch->items[999].event_id.ptr, "ev-111-999");
    assert_int_equal (batch->items[999].seq, 1000);
    assert_string_equal (batch->items[0].src.ptr, "front.0");
    //  The batch packs (the codec agrees it is valid).
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    assert_int_equal (rst_batch_pack (batch, &pk), 0);
    msgpack_sbuffer_destroy (&sb);
    rst_batch_destroy (&batch);
    assert_int_equal (rst_batcher_pending (b), 0);
    assert_int_equal (rst_batcher_wait_ms (b, T0), -1);
    //  1,001: one full batch and one left for the timer.
    for (int i = 0; i < 1001; i++)
        s_add (b, 1, "111", i, 0, T0);
    batch = rst_batcher_take (b, T0, 0, 0, &why);
    assert_int_equal (batch->count, 1000);
    rst_batch_destroy (&batch);
    assert_null (rst_batcher_take (b, T0, 0, 0, &why));
    assert_int_equal (rst_batcher_pending (b), 1);
    rst_batcher_destroy (&b);
    assert_null (b);
}

static void
test_timer_flush (void **state)
{
    (void) state;
    rst_batcher_t *b = rst_batcher_new (1000, 1000);
    rst_batcher_reason_t why;
    s_add (b, 1, "111", 0, 0, T0);
    s_add (b, 1, "111", 1, 0, T0 + 500);
    assert_null (rst_batcher_take (b, T0 + 999, 0, 0, &why));
    assert_int_equal (rst_batcher_wait_ms (b, T0 + 999), 1);
    rst_batch_t *batch = rst_batcher_take (b, T0 + 1000, 0, 0, &why);
    assert_non_null (batch);
    assert_int_equal (why, RST_BATCHER_TIMER);
    assert_int_equal (batch->count, 2);
    rst_batch_destroy (&batch);
    rst_batcher_destroy (&b);
}

static void
test_priority_lane_and_groups (void **state)
{
    (void) state;
    rst_batcher_t *b = rst_batcher_new (1000, 1000);
    rst_batcher_reason_t why;
    for (int i = 0; i < 10; i++)
        s_add (b, 1, "111", i, 0, T0);
    s_add (b, 2, "111", 0, 0, T0);      //  same pixel, another owner
    s_add (b, 1, "222", 0, 0, T0);
    s_add (b, 1, "111", 100, 1, T0);    //  Purchase
    s_add (b, 1, "111", 101, 1, T0);
    assert_int_equal (rst_batcher_wait_ms (b, T0), 0);
    rst_batch_t *batch = rst_batcher_take (b, T0, 0, 0, &why);
    assert_int_equal (why, RST_BATCHER_PRIORITY);
    assert_int_equal (batch->priority, 1);
    assert_int_equal (batch->count, 2);
    assert_string_equal (batch->items[0].event_id.ptr, "ev-111-100");
    rst_batch_destroy (&batch);
    assert_null (rst_batcher_take (b, T0 + 10, 0, 0, &why));
    //  Drain: three groups, three batches, never mixed.
    size_t total = 0;
    int batches = 0;
    while ((batch = rst_batcher_take (b, T0 + 10, 0, 1, &why))) {
        assert_int_equal (why, RST_BATCHER_DRAIN);
        for (size_t i = 0; i < batch->count; i++)
            assert_non_null (strstr (batch->items[i].event_id.ptr, batch->pixel_id.ptr));
        total += batch->count;
        batches++;
        rst_batch_destroy (&batch);
    }
    assert_int_equal (batches, 3);
    assert_int_equal (total, 12);
    //  Automated events are never batched; bad settings are refused.
    rst_enriched_t e = {.automated = 1, .pixel_id = rst_str ("111")};
    assert_int_equal (rst_batcher_add (b, &e, T0), -1);
    assert_null (rst_batcher_new (1001, 1000));
    assert_null (rst_batcher_new (0, 1000));
    assert_string_equal (rst_batcher_reason_name (RST_BATCHER_PRIORITY), "priority");
    rst_batcher_destroy (&b);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_exactly_1000_flushes),
        cmocka_unit_test (test_timer_flush),
        cmocka_unit_test (test_priority_lane_and_groups),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
