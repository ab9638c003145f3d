/*  rst_snapshot_test — lookup and bot rotation (exact proportions). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "rst_snapshot.h"

#include <stdio.h>
#include <string.h>

static rst_snapshot_t *
s_build (rst_strategy_t strategy, const int *weights, size_t n)
{
    rst_snapshot_t *snap = rst_snapshot_new_empty ();
    rst_snapshot_pool_t pool = {.id = 7, .owner_id = 1, .strategy = strategy, .enabled = 1};
    snprintf (pool.slug, sizeof pool.slug, "curso");
    snprintf (pool.pixel_id, sizeof pool.pixel_id, "123");
    rst_snapshot_bot_t bots[8];
    memset (bots, 0, sizeof bots);
    for (size_t i = 0; i < n; i++) {
        bots[i].id = (int64_t) i + 1;
        snprintf (bots[i].username, sizeof bots[i].username, "bot_%zu", i);
        bots[i].weight = weights[i];
        bots[i].usable = 1;
    }
    assert_int_equal (rst_snapshot_add_pool (snap, &pool, bots, n), 0);
    return snap;
}

//  A tour: find a pool by slug and pick its bots in turn.
static void
test_tour (void **state)
{
    int w[] = {1, 1, 1};
    rst_snapshot_t *snap = s_build (RST_STRATEGY_ROUND_ROBIN, w, 3);
    rst_snapshot_pool_t *pool = rst_snapshot_find (snap, "curso", 5);
    assert_non_null (pool);
    assert_null (rst_snapshot_find (snap, "curs", 4));
    assert_null (rst_snapshot_find (snap, "cursos", 6));
    assert_int_equal (rst_snapshot_pick (pool)->id, 1);
    assert_int_equal (rst_snapshot_pick (pool)->id, 2);
    assert_int_equal (rst_snapshot_pick (pool)->id, 3);
    assert_int_equal (rst_snapshot_pick (pool)->id, 1);
    rst_snapshot_destroy (&snap);
    assert_null (snap);
}

static void
test_weighted_exact_proportions (void **state)
{
    int w[] = {5, 3, 1, 1};
    rst_snapshot_t *snap = s_build (RST_STRATEGY_WEIGHTED, w, 4);
    rst_snapshot_pool_t *pool = rst_snapshot_find (snap, "curso", 5);
    //  Every window of sum(weights) = 10 picks holds each bot exactly weight times.
    for (int window = 0; window < 100; window++) {
        int counts[4] = {0};
        for (int i = 0; i < 10; i++)
            counts[rst_snapshot_pick (pool)->id - 1]++;
        for (int b = 0; b < 4; b++)
            assert_int_equal (counts[b], w[b]);
    }
    rst_snapshot_destroy (&snap);
}

static void
test_unusable_bots_are_skipped (void **state)
{
    int w[] = {2, 1};
    rst_snapshot_t *snap = s_build (RST_STRATEGY_WEIGHTED, w, 2);
    rst_snapshot_pool_t *pool = rst_snapshot_find (snap, "curso", 5);
    pool->bots[0].usable = 0;
    for (int i = 0; i < 10; i++)
        assert_int_equal (rst_snapshot_pick (pool)->id, 2);
    pool->bots[1].usable = 0;
    assert_null (rst_snapshot_pick (pool));
    pool->strategy = RST_STRATEGY_ROUND_ROBIN;
    assert_null (rst_snapshot_pick (pool));
    pool->bots[1].usable = 1;
    assert_int_equal (rst_snapshot_pick (pool)->id, 2);
    assert_int_equal (rst_snapshot_pick (pool)->id, 2);
    rst_snapshot_destroy (&snap);
}

static void
test_clone_carries_rotation (void **state)
{
    int w[] = {1, 1, 1};
    rst_snapshot_t *old = s_build (RST_STRATEGY_ROUND_ROBIN, w, 3);
    rst_snapshot_pool_t *pool = rst_snapshot_find (old, "curso", 5);
    assert_int_equal (rst_snapshot_pick (pool)->id, 1);
    rst_snapshot_t *fresh = rst_snapshot_clone (old);
    assert_non_null (fresh);
    rst_snapshot_pool_t *fresh_pool = rst_snapshot_find (fresh, "curso", 5);
    fresh_pool->next = 0;
    rst_snapshot_carry_state (fresh, old);
    assert_int_equal (rst_snapshot_pick (fresh_pool)->id, 2);
    rst_snapshot_destroy (&old);
    assert_int_equal (rst_snapshot_pick (fresh_pool)->id, 3);
    rst_snapshot_destroy (&fresh);
}

static void
test_many_pools (void **state)
{
    rst_snapshot_t *snap = rst_snapshot_new_empty ();
    rst_snapshot_bot_t bot = {.id = 1, .weight = 1, .usable = 1};
    snprintf (bot.username, sizeof bot.username, "bot_x");
    for (int i = 0; i < 5000; i++) {
        rst_snapshot_pool_t pool = {.id = i + 1, .enabled = 1};
        snprintf (pool.slug, sizeof pool.slug, "pool-%d", i);
        assert_int_equal (rst_snapshot_add_pool (snap, &pool, &bot, 1), 0);
    }
    assert_int_equal (rst_snapshot_pool_count (snap), 5000);
    char slug[32];
    for (int i = 0; i < 5000; i += 7) {
        int n = snprintf (slug, sizeof slug, "pool-%d", i);
        rst_snapshot_pool_t *pool = rst_snapshot_find (snap, slug, (size_t) n);
        assert_non_null (pool);
        assert_int_equal (pool->id, i + 1);
        assert_string_equal (rst_snapshot_pick (pool)->username, "bot_x");
    }
    rst_snapshot_destroy (&snap);
}

static void
test_empty_snapshot (void **state)
{
    rst_snapshot_t *empty = rst_snapshot_new_empty ();
    assert_null (rst_snapshot_find (empty, "curso", 5));
    rst_snapshot_t *copy = rst_snapshot_clone (empty);
    assert_non_null (copy);
    assert_int_equal (rst_snapshot_pool_count (copy), 0);
    rst_snapshot_carry_state (copy, empty);
    rst_snapshot_destroy (&copy);
    rst_snapshot_destroy (&empty);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_tour),
        cmocka_unit_test (test_weighted_exact_proportions),
        cmocka_unit_test (test_unusable_bots_are_skipped),
        cmocka_unit_test (test_clone_carries_rotation),
        cmocka_unit_test (test_many_pools),
        cmocka_unit_test (test_empty_snapshot),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
