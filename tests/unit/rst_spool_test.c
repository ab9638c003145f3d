/*  rst_spool_test — the sender's LMDB spool: add, dedupe, accept, retry
    state, split, dead letters, prune, reopen and a full map.

    The first test is the tutorial: spool a batch, read it back, record a
    failed attempt, get it accepted, and see a replay of its events dropped.
*/
#define _GNU_SOURCE     //  nftw
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <ftw.h>

#include <cmocka.h>

#include "rst_spool.h"

#define S_MAP_SIZE (16u << 20)

typedef struct {
    char dir[256];
} s_fixture_t;

static int
s_rm (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st, (void) flag, (void) ftw;
    return remove (path);
}

static int
s_setup (void **state)
{
    s_fixture_t *fx = calloc (1, sizeof *fx);
    snprintf (fx->dir, sizeof fx->dir, "/tmp/rst_spool_test.XXXXXX");
    if (!mkdtemp (fx->dir))
        return -1;
    strcat (fx->dir, "/spool");
    *state = fx;
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *fx = *state;
    *strrchr (fx->dir, '/') = 0;
    nftw (fx->dir, s_rm, 8, FTW_DEPTH | FTW_PHYS);
    free (fx);
    return 0;
}

static rst_spool_t *
s_open (s_fixture_t *fx, size_t map, size_t max)
{
    char err[256];
    rst_spool_t *s = rst_spool_new (fx->dir, map, max, err, sizeof err);
    if (!s)
        fail_msg ("rst_spool_new: %s", err);
    return s;
}

//  A batch of COUNT events "<prefix>-<i>" for pixel 123 (static storage
//  owned by the caller's S_BATCH_T).
typedef struct {
    rst_batch_t batch;
    rst_batch_item_t items[64];
    char ids[64][32];
    char capi[64][64];
} s_batch_t;

static const rst_batch_t *
s_make (s_batch_t *b, const char *prefix, size_t first, size_t count)
{
    memset (b, 0, sizeof *b);
    assert_true (count <= 64);
    b->batch.owner_id = 7;
    b->batch.pixel_id = rst_str ("123");
    b->batch.created_ms = 1000;
    b->batch.count = count;
    b->batch.items = b->items;
    for (size_t i = 0; i < count; i++) {
        snprintf (b->ids[i], sizeof b->ids[i], "%s-%zu", prefix, first + i);
        snprintf (b->capi[i], sizeof b->capi[i], "{\"event_id\":\"%s\"}", b->ids[i]);
        b->items[i].event_id = rst_str (b->ids[i]);
        b->items[i].src = rst_str ("front.0");
        b->items[i].seq = 100 + first + i;
        b->items[i].time_ms = 5000 + (int64_t) (first + i);
        b->items[i].capi = rst_str (b->capi[i]);
    }
    return &b->batch;
}

static void
s_expect_stats (rst_spool_t *s, uint64_t batches, uint64_t events, uint64_t done)
{
    uint64_t b, e, d;
    int64_t oldest;
    assert_int_equal (rst_spool_stats (s, &b, &e, &d, &oldest), 0);
    assert_int_equal (b, batches);
    assert_int_equal (e, events);
    assert_int_equal (d, done);
    if (batches)
        assert_true (oldest > 0);
}

static void
test_tutorial (void **state)
{
    s_fixture_t *fx = *state;
    rst_spool_t *spool = s_open (fx, S_MAP_SIZE, 0);
    //  1. Spool one batch of three events (durable when add returns 0).
    s_batch_t b;
    const rst_batch_t *batches[] = {s_make (&b, "tut", 0, 3)};
    unsigned char verdicts[3];
    uint64_t id;
    assert_int_equal (rst_spool_add (spool, batches, 1, 0, verdicts, &id), 0);
    assert_true (id > 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal (verdicts[i], RST_SPOOL_KEPT);
    //  2. Read it back: the events, in order, with their acks' seq.
    rst_spool_batch_t *got = rst_spool_get (spool, id);
    assert_non_null (got);
    assert_int_equal (got->count, 3);
    assert_string_equal (got->head.pixel_id, "123");
    assert_int_equal (got->head.owner_id, 7);
    assert_int_equal (got->head.oldest_ms, 5000);
    assert_string_equal (got->items[2].event_id.ptr, "tut-2");
    assert_string_equal (got->items[2].capi.ptr, "{\"event_id\":\"tut-2\"}");
    assert_int_equal (got->items[2].seq, 102);
    assert_string_equal (got->items[0].src.ptr, "front.0");
    rst_spool_batch_destroy (&got);
    assert_null (got);
    //  3. A failed POST: the retry state is kept.
    assert_int_equal (rst_spool_reschedule (spool, id, 1, 123456), 0);
    got = rst_spool_get (spool, id);
    assert_int_equal (got->head.attempts, 1);
    assert_int_equal (got->head.next_ms, 123456);
    rst_spool_batch_destroy (&got);
    //  4. Meta accepted it: the batch goes, its ids are done.
    assert_int_equal (rst_spool_accept (spool, id, 1000000), 0);
    s_expect_stats (spool, 0, 0, 3);
    int accepted = 0;
    assert_int_equal (rst_spool_is_done (spool, "tut-1", &accepted), 1);
    assert_true (accepted);
    //  5. The journal replays them: dropped (and the sender acks them again).
    assert_int_equal (rst_spool_add (spool, batches, 1, 0, verdicts, &id), 0);
    assert_int_equal (id, 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal (verdicts[i], RST_SPOOL_DUP_DONE);
    rst_spool_destroy (&spool);
    assert_null (spool);
    rst_spool_destroy (&spool);
}

static void
test_dedupe (void **state)
{
    s_fixture_t *fx = *state;
    rst_spool_t *spool = s_open (fx, S_MAP_SIZE, 0);
    s_batch_t a, b, c;
    s_make (&a, "d", 0, 4);
    s_make (&b, "d", 2, 4);                 //  d-2, d-3 overlap a
    s_make (&c, "d", 10, 3);
    c.items[2].event_id = rst_str ("d-10"); //  twice in one batch
    c.items[1].event_id = rst_str ("");     //  unusable
    const rst_batch_t *batches[] = {&a.batch, &b.batch, &c.batch};
    unsigned char v[11];
    uint64_t ids[3];
    assert_int_equal (rst_spool_add (spool, batches, 3, 0, v, ids), 0);
    unsigned char expect[] = {0, 0, 0, 0, RST_SPOOL_DUP_BATCH, RST_SPOOL_DUP_BATCH, 0, 0,
                              0, RST_SPOOL_BAD, RST_SPOOL_DUP_BATCH};
    assert_memory_equal (v, expect, sizeof expect);
    assert_true (ids[0] && ids[1] && ids[2] && ids[0] < ids[1] && ids[1] < ids[2]);
    s_expect_stats (spool, 3, 7, 0);
    //  Pending ids come again later: dropped.
    uint64_t id;
    assert_int_equal (rst_spool_add (spool, batches, 1, 0, v, &id), 0);
    assert_int_equal (id, 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal (v[i], RST_SPOOL_DUP_PENDING);
    rst_spool_destroy (&spool);
}

//  Collects heads during a scan.
typedef struct {
    uint64_t ids[16];
    rst_spool_head_t heads[16];
    size_t n;
} s_heads_t;

static int
s_collect (void *arg, const rst_spool_head_t *head)
{
    s_heads_t *h = arg;
    h->ids[h->n] = head->id;
    h->heads[h->n++] = *head;
    return h->n == 16;
}

static void
test_reopen (void **state)
{
    s_fixture_t *fx = *state;
    rst_spool_t *spool = s_open (fx, S_MAP_SIZE, 0);
    s_batch_t a, b;
    const rst_batch_t *batches[] = {s_make (&a, "r", 0, 5), s_make (&b, "r", 5, 5)};
    unsigned char v[10];
    uint64_t ids[2];
    assert_int_equal (rst_spool_add (spool, batches, 2, 0, v, ids), 0);
    assert_int_equal (rst_spool_reschedule (spool, ids[1], 4, 777), 0);
    assert_int_equal (rst_spool_accept (spool, ids[0], 1000), 0);
    rst_spool_destroy (&spool);

    //  After a restart: the pending batch with its retry state, the done set,
    //  and new ids above the old ones.
    spool = s_open (fx, S_MAP_SIZE, 0);
    s_heads_t h = {0};
    assert_int_equal (rst_spool_scan (spool, s_collect, &h), 1);
    assert_int_equal (h.ids[0], ids[1]);
    assert_int_equal (h.heads[0].attempts, 4);
    assert_int_equal (h.heads[0].next_ms, 777);
    assert_int_equal (h.heads[0].count, 5);
    assert_int_equal (h.heads[0].state, RST_SPOOL_PENDING);
    assert_int_equal (rst_spool_is_done (spool, "r-0", NULL), 1);
    assert_int_equal (rst_spool_is_done (spool, "r-5", NULL), 0);
    s_batch_t c;
    const rst_batch_t *more[] = {s_make (&c, "r", 3, 5)};      //  r-3..r-7: all dups
    uint64_t id;
    assert_int_equal (rst_spool_add (spool, more, 1, 0, v, &id), 0);
    assert_int_equal (id, 0);
    assert_int_equal (v[0], RST_SPOOL_DUP_DONE);
    assert_int_equal (v[2], RST_SPOOL_DUP_PENDING);
    const rst_batch_t *fresh[] = {s_make (&c, "r", 100, 1)};
    assert_int_equal (rst_spool_add (spool, fresh, 1, 0, v, &id), 0);
    assert_true (id > ids[1]);
    rst_spool_destroy (&spool);
}

static void
test_split_and_dead (void **state)
{
    s_fixture_t *fx = *state;
    rst_spool_t *spool = s_open (fx, S_MAP_SIZE, 0);
    s_batch_t a;
    const rst_batch_t *batches[] = {s_make (&a, "s", 0, 10)};
    unsigned char v[10];
    uint64_t id;
    assert_int_equal (rst_spool_add (spool, batches, 1, 0, v, &id), 0);
    assert_int_equal (rst_spool_reschedule (spool, id, 3, 999), 0);
    //  Binary split: [0,5) and [5,10), fresh retry state, same event ids.
    unsigned char part[10] = {0, 0, 0, 0, 0, 1, 1, 1, 1, 1};
    uint64_t halves[2];
    assert_int_equal (rst_spool_split (spool, id, part, halves), 0);
    assert_null (rst_spool_get (spool, id));
    rst_spool_batch_t *lo = rst_spool_get (spool, halves[0]);
    rst_spool_batch_t *hi = rst_spool_get (spool, halves[1]);
    assert_int_equal (lo->count, 5);
    assert_int_equal (hi->count, 5);
    assert_int_equal (lo->head.attempts, 0);
    assert_int_equal (lo->head.next_ms, 0);
    assert_string_equal (hi->items[0].event_id.ptr, "s-5");
    assert_int_equal (hi->head.oldest_ms, 5005);
    assert_int_equal (hi->items[4].seq, 109);
    rst_spool_batch_destroy (&lo);
    rst_spool_batch_destroy (&hi);
    s_expect_stats (spool, 2, 10, 0);
    //  One side empty: its id is 0.
    unsigned char all[5] = {1, 1, 1, 1, 1};
    uint64_t again[2];
    assert_int_equal (rst_spool_split (spool, halves[1], all, again), 0);
    assert_int_equal (again[0], 0);
    assert_true (again[1] > halves[1]);
    //  Dead: kept (its ids still pending) until removed.
    rst_spool_dead_t why = {.reason = "token", .http_status = 400, .code = 190, .subcode = 463,
                            .fbtrace_id = "B9s", .message = "expired"};
    assert_int_equal (rst_spool_mark_dead (spool, halves[0], &why), 0);
    s_heads_t h = {0};
    rst_spool_scan (spool, s_collect, &h);
    assert_int_equal (h.n, 2);
    assert_int_equal (h.heads[0].state, RST_SPOOL_DEAD);
    assert_string_equal (h.heads[0].dead.reason, "token");
    assert_int_equal (h.heads[0].dead.code, 190);
    assert_string_equal (h.heads[0].dead.fbtrace_id, "B9s");
    const rst_batch_t *replay[] = {s_make (&a, "s", 0, 1)};
    assert_int_equal (rst_spool_add (spool, replay, 1, 0, v, &id), 0);
    assert_int_equal (v[0], RST_SPOOL_DUP_PENDING);
    assert_int_equal (rst_spool_remove (spool, halves[0], 2000), 0);
    int accepted = 1;
    assert_int_equal (rst_spool_is_done (spool, "s-0", &accepted), 1);
    assert_false (accepted);
    //  A dead-lettered id is a dup, unless it is a dlq replay.
    assert_int_equal (rst_spool_add (spool, replay, 1, 0, v, &id), 0);
    assert_int_equal (v[0], RST_SPOOL_DUP_DONE);
    assert_int_equal (rst_spool_add (spool, replay, 1, RST_SPOOL_REPLAY, v, &id), 0);
    assert_int_equal (v[0], RST_SPOOL_KEPT);
    assert_int_equal (rst_spool_is_done (spool, "s-0", NULL), 0);
    //  Accepted ids never come back, replay or not.
    assert_int_equal (rst_spool_accept (spool, id, 3000), 0);
    assert_int_equal (rst_spool_add (spool, replay, 1, RST_SPOOL_REPLAY, v, &id), 0);
    assert_int_equal (v[0], RST_SPOOL_DUP_DONE);
    rst_spool_destroy (&spool);
}

static void
test_prune (void **state)
{
    s_fixture_t *fx = *state;
    rst_spool_t *spool = s_open (fx, S_MAP_SIZE, 0);
    s_batch_t a, b;
    const rst_batch_t *b1[] = {s_make (&a, "p", 0, 3)};
    const rst_batch_t *b2[] = {s_make (&b, "p", 3, 3)};
    unsigned char v[3];
    uint64_t id1, id2;
    assert_int_equal (rst_spool_add (spool, b1, 1, 0, v, &id1), 0);
    assert_int_equal (rst_spool_add (spool, b2, 1, 0, v, &id2), 0);
    assert_int_equal (rst_spool_accept (spool, id1, 1000), 0);
    assert_int_equal (rst_spool_accept (spool, id2, 5000), 0);
    s_expect_stats (spool, 0, 0, 6);
    assert_int_equal (rst_spool_prune (spool, 1000, 100), 0);   //  strictly before
    assert_int_equal (rst_spool_prune (spool, 4000, 2), 2);     //  bounded by max
    assert_int_equal (rst_spool_prune (spool, 4000, 100), 1);
    s_expect_stats (spool, 0, 0, 3);
    assert_int_equal (rst_spool_is_done (spool, "p-0", NULL), 0);
    assert_int_equal (rst_spool_is_done (spool, "p-3", NULL), 1);
    assert_int_equal (rst_spool_prune (spool, INT64_MAX, 100), 3);
    s_expect_stats (spool, 0, 0, 0);
    rst_spool_destroy (&spool);
}

static void
test_full_map (void **state)
{
    s_fixture_t *fx = *state;
    //  A map that cannot grow: adds fail cleanly once it is full, nothing
    //  half-written, and space freed by accept is usable again.
    size_t map = 256u << 10;
    rst_spool_t *spool = s_open (fx, map, map);
    static char big[4000];
    memset (big, 'x', sizeof big - 1);
    s_batch_t b;
    unsigned char v[64];
    uint64_t id, first = 0;
    int added = 0, failed = 0;
    for (int round = 0; round < 200 && !failed; round++) {
        const rst_batch_t *batches[] = {s_make (&b, "f", (size_t) round * 8, 8)};
        for (int i = 0; i < 8; i++)
            b.items[i].capi = rst_str (big);
        if (rst_spool_add (spool, batches, 1, 0, v, &id) == 0) {
            added++;
            if (!first)
                first = id;
        }
        else {
            failed = 1;
            assert_non_null (strstr (rst_spool_error (spool), "full"));
        }
    }
    assert_true (failed);
    assert_true (added > 2);
    uint64_t batches_n, events_n;
    rst_spool_stats (spool, &batches_n, &events_n, NULL, NULL);
    assert_int_equal (batches_n, (uint64_t) added);
    assert_int_equal (events_n, (uint64_t) added * 8);
    //  Free the first batches; a small add works again.
    for (uint64_t i = first; i < first + 3; i++)
        assert_int_equal (rst_spool_accept (spool, i, 1000), 0);
    const rst_batch_t *small[] = {s_make (&b, "after", 0, 1)};
    assert_int_equal (rst_spool_add (spool, small, 1, 0, v, &id), 0);
    rst_spool_destroy (&spool);

    //  A map that may grow: the same load goes through.
    *strrchr (fx->dir, '/') = 0;
    strcat (fx->dir, "/spool2");
    spool = s_open (fx, map, 64u << 20);
    for (int round = 0; round < 100; round++) {
        const rst_batch_t *batches[] = {s_make (&b, "g", (size_t) round * 8, 8)};
        for (int i = 0; i < 8; i++)
            b.items[i].capi = rst_str (big);
        assert_int_equal (rst_spool_add (spool, batches, 1, 0, v, &id), 0);
    }
    rst_spool_destroy (&spool);
    //  Reopened with the default first size, the grown file still opens.
    spool = s_open (fx, map, map);
    rst_spool_stats (spool, &batches_n, NULL, NULL, NULL);
    assert_int_equal (batches_n, 100);
    rst_spool_destroy (&spool);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_tutorial, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_dedupe, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_reopen, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_split_and_dead, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_prune, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_full_map, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
