/*  rst_snapshot_test — lookup and bot rotation (exact proportions), bots in
    webhook mode (case-insensitive lookup), gateway webhook secrets opened
    with the master key, copies and wiping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "rst_gateway.h"
#include "rst_secret.h"
#include "rst_snapshot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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


static void
test_webhook_bots (void **state)
{
    rst_snapshot_t *snap = rst_snapshot_new_empty ();
    unsigned char hash[32];
    for (int i = 0; i < 300; i++) {
        char name[33];
        snprintf (name, sizeof name, "Hook_Bot_%d", i);
        memset (hash, i, sizeof hash);
        assert_int_equal (rst_snapshot_add_webhook_bot (snap, 1000 + i, name, hash), 0);
    }
    assert_int_equal (rst_snapshot_webhook_bot_count (snap), 300);
    //  Telegram usernames are case-insensitive.
    const rst_snapshot_webhook_bot_t *bot = rst_snapshot_find_webhook_bot (snap, "hook_bot_7", 10);
    assert_non_null (bot);
    assert_int_equal (bot->id, 1007);
    assert_string_equal (bot->username, "hook_bot_7");
    assert_int_equal (bot->secret_hash[0], 7);
    assert_ptr_equal (rst_snapshot_find_webhook_bot (snap, "HOOK_BOT_7", 10), bot);
    assert_ptr_equal (rst_snapshot_find_webhook_bot (snap, "Hook_Bot_7xyz", 10), bot);
    assert_null (rst_snapshot_find_webhook_bot (snap, "hook_bot_", 9));
    assert_null (rst_snapshot_find_webhook_bot (snap, "hook_bot_70000", 14));
    assert_null (rst_snapshot_find_webhook_bot (snap, "", 0));
    char long_name[40];
    memset (long_name, 'a', sizeof long_name);
    assert_null (rst_snapshot_find_webhook_bot (snap, long_name, sizeof long_name));
    assert_int_equal (rst_snapshot_add_webhook_bot (snap, 1, "", hash), -1);
    //  A copy finds them too; pools are unaffected.
    rst_snapshot_t *copy = rst_snapshot_clone (snap);
    assert_non_null (copy);
    bot = rst_snapshot_find_webhook_bot (copy, "hook_bot_299", 12);
    assert_non_null (bot);
    assert_int_equal (bot->id, 1299);
    assert_int_equal (rst_snapshot_pool_count (copy), 0);
    rst_snapshot_destroy (&snap);
    rst_snapshot_destroy (&copy);
    assert_null (copy);
}

//  Seals JSON under KEY and adds it as an account of KIND.
static void
s_add_sealed (rst_snapshot_t *snap, rst_secret_t *key, int kind, const char *json)
{
    size_t len = 0;
    unsigned char *sealed = rst_secret_seal (key, json, strlen (json), &len);
    assert_non_null (sealed);
    assert_int_equal (rst_snapshot_add_gateway (snap, kind, sealed, len), 0);
    free (sealed);
}

static void
test_gateway_secrets (void **state)
{
    char dir[] = "/tmp/rst_snapshot_test.XXXXXX";
    assert_non_null (mkdtemp (dir));
    char key_file[128], other_file[128];
    snprintf (key_file, sizeof key_file, "%s/master.key", dir);
    snprintf (other_file, sizeof other_file, "%s/other.key", dir);
    char err[256];
    rst_secret_t *key = rst_secret_new (key_file, 1, err, sizeof err);
    rst_secret_t *other = rst_secret_new (other_file, 1, err, sizeof err);
    assert_non_null (key);
    assert_non_null (other);

    rst_snapshot_t *snap = rst_snapshot_new_empty ();
    s_add_sealed (snap, key, RST_GW_MERCADOPAGO, "{\"access_token\":\"APP-1\",\"webhook_secret\":\"mp-secret\"}");
    s_add_sealed (snap, key, RST_GW_PUSHINPAY, "{\"token\":\"pp-1\",\"webhook_token\":\"pp-hook\"}");
    s_add_sealed (snap, key, RST_GW_SYNCPAY, "{\"client_id\":\"c\",\"client_secret\":\"s\"}");
    s_add_sealed (snap, other, RST_GW_MERCADOPAGO, "{\"access_token\":\"APP-2\",\"webhook_secret\":\"x\"}");
    assert_int_equal (rst_snapshot_gateway_count (snap), 4);
    assert_non_null (rst_snapshot_gateway (snap, 0)->sealed);
    assert_null (rst_snapshot_gateway (snap, 0)->secret);

    //  A copy before opening carries the sealed bytes; without the key file nothing opens.
    rst_snapshot_t *unopened = rst_snapshot_clone (snap);
    assert_non_null (unopened);
    assert_int_equal (rst_snapshot_open_gateways (unopened, "/nonexistent/master.key", err, sizeof err), -1);
    for (size_t i = 0; i < 4; i++) {
        assert_null (rst_snapshot_gateway (unopened, i)->secret);
        assert_null (rst_snapshot_gateway (unopened, i)->sealed);
    }
    rst_snapshot_destroy (&unopened);

    //  With it: one account was sealed under another key.
    assert_int_equal (rst_snapshot_open_gateways (snap, key_file, err, sizeof err), 1);
    assert_string_equal (rst_snapshot_gateway (snap, 0)->secret, "mp-secret");
    assert_int_equal (rst_snapshot_gateway (snap, 0)->kind, RST_GW_MERCADOPAGO);
    assert_string_equal (rst_snapshot_gateway (snap, 1)->secret, "pp-hook");
    assert_null (rst_snapshot_gateway (snap, 2)->secret);      //  SyncPay has none
    assert_null (rst_snapshot_gateway (snap, 3)->secret);
    for (size_t i = 0; i < 4; i++)
        assert_null (rst_snapshot_gateway (snap, i)->sealed);
    //  Opening again is a no-op; a copy carries the secrets.
    assert_int_equal (rst_snapshot_open_gateways (snap, "/nonexistent/master.key", err, sizeof err), 0);
    rst_snapshot_t *copy = rst_snapshot_clone (snap);
    assert_non_null (copy);
    assert_string_equal (rst_snapshot_gateway (copy, 1)->secret, "pp-hook");
    assert_ptr_not_equal (rst_snapshot_gateway (copy, 1)->secret, rst_snapshot_gateway (snap, 1)->secret);
    rst_snapshot_destroy (&copy);
    rst_snapshot_destroy (&snap);

    //  No accounts: the key file is not even needed.
    rst_snapshot_t *empty = rst_snapshot_new_empty ();
    assert_int_equal (rst_snapshot_open_gateways (empty, "/nonexistent/master.key", err, sizeof err), 0);
    rst_snapshot_destroy (&empty);

    rst_secret_destroy (&key);
    rst_secret_destroy (&other);
    unlink (key_file);
    unlink (other_file);
    rmdir (dir);
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
        cmocka_unit_test (test_webhook_bots),
        cmocka_unit_test (test_gateway_secrets),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
