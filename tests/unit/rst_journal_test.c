/*  rst_journal_test — the LMDB journal: group commit, acks, scan, stats, reopen.

    The first test is the tutorial: open a journal, write two events in one
    transaction, read them back with scan, acknowledge them, see them go.
    Every test works in its own temporary directory.
*/
#define _GNU_SOURCE     //  nftw
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>
#include <ftw.h>

#include <cmocka.h>

#include "rst_journal.h"

#define S_MAP_SIZE (64u << 20)      //  64 MiB is plenty for a test

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
    snprintf (fx->dir, sizeof fx->dir, "/tmp/rst_journal_test.XXXXXX");
    if (!mkdtemp (fx->dir))
        return -1;
    //  A subdirectory that does not exist yet: the journal creates it.
    strcat (fx->dir, "/journal");
    *state = fx;
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *fx = *state;
    char *slash = strrchr (fx->dir, '/');
    *slash = 0;
    nftw (fx->dir, s_rm, 8, FTW_DEPTH | FTW_PHYS);
    free (fx);
    return 0;
}

static rst_journal_t *
s_open (s_fixture_t *fx, unsigned required)
{
    char err[256];
    rst_journal_t *j = rst_journal_new (fx->dir, required, S_MAP_SIZE, err, sizeof err);
    if (!j)
        fail_msg ("rst_journal_new: %s", err);
    return j;
}

//  Collects what scan visits.
typedef struct {
    uint64_t seqs[64];
    char data[64][32];
    size_t count;
    size_t stop_after;      //  return 1 after this many (0 = never)
} s_seen_t;

static int
s_collect (void *arg, uint64_t seq, int64_t born_ms, const void *data, size_t len)
{
    s_seen_t *seen = arg;
    assert_true (born_ms > 0);
    assert_true (seen->count < 64);
    seen->seqs[seen->count] = seq;
    snprintf (seen->data[seen->count], sizeof seen->data[0], "%.*s", (int) len,
              (const char *) data);
    seen->count++;
    return seen->stop_after && seen->count >= seen->stop_after;
}

//  Writes COUNT entries "<prefix><i>" in one transaction; returns the first seq.
static uint64_t
s_put_many (rst_journal_t *j, const char *prefix, int count)
{
    rst_journal_txn_t txn;
    assert_int_equal (rst_journal_txn_begin (j, &txn), 0);
    uint64_t first = rst_journal_txn_next_seq (&txn);
    for (int i = 0; i < count; i++) {
        char buf[32];
        int n = snprintf (buf, sizeof buf, "%s%d", prefix, i);
        assert_int_equal (rst_journal_txn_put (&txn, buf, (size_t) n), first + (uint64_t) i);
    }
    assert_int_equal (rst_journal_txn_commit (&txn, 0), 0);
    return first;
}

static void
test_put_commit_scan_ack (void **state)
{
    s_fixture_t *fx = *state;
    //  1. Open (creating the directory); entries go once the recorder acked.
    rst_journal_t *j = s_open (fx, RST_JOURNAL_ACK_STORED);

    //  2. One write transaction = one group commit. The front asks for the
    //     next sequence first so that it can stamp it into the event.
    rst_journal_txn_t txn;
    assert_int_equal (rst_journal_txn_begin (j, &txn), 0);
    assert_int_equal (rst_journal_txn_next_seq (&txn), 1);
    assert_int_equal (rst_journal_txn_put (&txn, "click-a", 7), 1);
    assert_int_equal (rst_journal_txn_next_seq (&txn), 2);
    assert_int_equal (rst_journal_txn_put (&txn, "click-b", 7), 2);
    assert_int_equal (rst_journal_txn_commit (&txn, 1), 0);    //  durable: fsynced

    //  3. Scan shows them oldest first, with their bytes.
    s_seen_t seen = {0};
    assert_int_equal (rst_journal_scan (j, 0, INT64_MAX, 100, s_collect, &seen), 2);
    assert_int_equal (seen.seqs[0], 1);
    assert_string_equal (seen.data[0], "click-a");
    assert_string_equal (seen.data[1], "click-b");

    //  4. The recorder's ack deletes them.
    uint64_t acked[] = {1, 2};
    assert_int_equal (rst_journal_ack (j, acked, 2, RST_JOURNAL_ACK_STORED), 2);
    uint64_t depth = 99;
    int64_t oldest = 99;
    assert_int_equal (rst_journal_stats (j, &depth, &oldest), 0);
    assert_int_equal (depth, 0);
    assert_int_equal (oldest, 0);
    rst_journal_destroy (&j);
    assert_null (j);
    rst_journal_destroy (&j);
}

static void
test_scan_order_and_limits (void **state)
{
    s_fixture_t *fx = *state;
    rst_journal_t *j = s_open (fx, RST_JOURNAL_ACK_STORED);
    s_put_many (j, "a", 3);     //  1..3
    s_put_many (j, "b", 3);     //  4..6

    s_seen_t seen = {0};
    assert_int_equal (rst_journal_scan (j, 0, INT64_MAX, 100, s_collect, &seen), 6);
    for (size_t i = 0; i < 6; i++)
        assert_int_equal (seen.seqs[i], i + 1);
    assert_string_equal (seen.data[3], "b0");

    //  AFTER_SEQ and MAX page through the journal.
    memset (&seen, 0, sizeof seen);
    assert_int_equal (rst_journal_scan (j, 2, INT64_MAX, 2, s_collect, &seen), 2);
    assert_int_equal (seen.seqs[0], 3);
    assert_int_equal (seen.seqs[1], 4);

    //  The callback stops the scan by returning 1.
    memset (&seen, 0, sizeof seen);
    seen.stop_after = 1;
    assert_int_equal (rst_journal_scan (j, 0, INT64_MAX, 100, s_collect, &seen), 1);

    //  BORN_BEFORE_MS: entries born later are not offered again yet.
    memset (&seen, 0, sizeof seen);
    assert_int_equal (rst_journal_scan (j, 0, 1000, 100, s_collect, &seen), 0);
    assert_int_equal (rst_journal_scan (j, UINT64_MAX, INT64_MAX, 100, s_collect, &seen), 0);
    rst_journal_destroy (&j);
}

static void
test_partial_ack_mask (void **state)
{
    s_fixture_t *fx = *state;
    //  Later issues require two stages: stored (bit 0) and accepted by Meta (bit 1).
    rst_journal_t *j = s_open (fx, 0x03);
    s_put_many (j, "e", 2);
    uint64_t one[] = {1};
    assert_int_equal (rst_journal_ack (j, one, 1, 0x01), 0);   //  half done: kept
    assert_int_equal (rst_journal_ack (j, one, 1, 0x01), 0);   //  repeated: still kept
    uint64_t depth;
    assert_int_equal (rst_journal_stats (j, &depth, NULL), 0);
    assert_int_equal (depth, 2);
    s_seen_t seen = {0};
    assert_int_equal (rst_journal_scan (j, 0, INT64_MAX, 100, s_collect, &seen), 2);
    assert_string_equal (seen.data[0], "e0");   //  the event bytes are intact
    assert_int_equal (rst_journal_ack (j, one, 1, 0x02), 1);   //  both bits: deleted
    assert_int_equal (rst_journal_stats (j, &depth, NULL), 0);
    assert_int_equal (depth, 1);
    //  One ack carrying both bits at once deletes too.
    uint64_t two[] = {2};
    assert_int_equal (rst_journal_ack (j, two, 1, 0x03), 1);
    rst_journal_destroy (&j);
}

static void
test_unknown_seq_ack_ignored (void **state)
{
    s_fixture_t *fx = *state;
    rst_journal_t *j = s_open (fx, RST_JOURNAL_ACK_STORED);
    s_put_many (j, "e", 2);
    uint64_t seqs[] = {0, 7, 1, 1, UINT64_MAX};   //  forged, unknown, twice, huge
    assert_int_equal (rst_journal_ack (j, seqs, 5, RST_JOURNAL_ACK_STORED), 1);
    assert_int_equal (rst_journal_ack (j, seqs, 5, RST_JOURNAL_ACK_STORED), 0);
    assert_int_equal (rst_journal_ack (j, seqs, 0, RST_JOURNAL_ACK_STORED), 0);
    uint64_t depth;
    assert_int_equal (rst_journal_stats (j, &depth, NULL), 0);
    assert_int_equal (depth, 1);
    rst_journal_destroy (&j);
}

static void
test_stats (void **state)
{
    s_fixture_t *fx = *state;
    rst_journal_t *j = s_open (fx, RST_JOURNAL_ACK_STORED);
    uint64_t depth = 1;
    int64_t oldest = 1;
    assert_int_equal (rst_journal_stats (j, &depth, &oldest), 0);
    assert_int_equal (depth, 0);
    assert_int_equal (oldest, 0);

    rst_journal_txn_t txn;
    assert_int_equal (rst_journal_txn_begin (j, &txn), 0);
    int64_t born = txn.born_ms;
    rst_journal_txn_put (&txn, "x", 1);
    rst_journal_txn_put (&txn, "", 0);      //  an empty entry is allowed
    assert_int_equal (rst_journal_txn_commit (&txn, 0), 0);
    usleep (5000);
    s_put_many (j, "late", 3);
    assert_int_equal (rst_journal_stats (j, &depth, &oldest), 0);
    assert_int_equal (depth, 5);
    assert_int_equal (oldest, born);

    //  Ack the oldest: "oldest" moves to the next entry's birth.
    uint64_t first[] = {1, 2};
    assert_int_equal (rst_journal_ack (j, first, 2, RST_JOURNAL_ACK_STORED), 2);
    assert_int_equal (rst_journal_stats (j, &depth, &oldest), 0);
    assert_int_equal (depth, 3);
    assert_true (oldest > born);
    assert_int_equal (rst_journal_sync (j), 0);
    rst_journal_destroy (&j);
}

static void
test_reopen_keeps_data_and_sequence (void **state)
{
    s_fixture_t *fx = *state;
    rst_journal_t *j = s_open (fx, RST_JOURNAL_ACK_STORED);
    s_put_many (j, "keep", 3);              //  1..3
    uint64_t all[] = {1, 2, 3};
    rst_journal_destroy (&j);

    j = s_open (fx, RST_JOURNAL_ACK_STORED);
    s_seen_t seen = {0};
    assert_int_equal (rst_journal_scan (j, 0, INT64_MAX, 100, s_collect, &seen), 3);
    assert_string_equal (seen.data[2], "keep2");
    //  Empty the journal, reopen: the sequence continues, never reused (a
    //  late ack for seq 1 must not delete a newer entry).
    assert_int_equal (rst_journal_ack (j, all, 3, RST_JOURNAL_ACK_STORED), 3);
    rst_journal_destroy (&j);

    j = s_open (fx, RST_JOURNAL_ACK_STORED);
    assert_int_equal (s_put_many (j, "next", 1), 4);
    rst_journal_destroy (&j);
}

static void
test_abort_keeps_nothing (void **state)
{
    s_fixture_t *fx = *state;
    rst_journal_t *j = s_open (fx, RST_JOURNAL_ACK_STORED);
    rst_journal_txn_t txn;
    assert_int_equal (rst_journal_txn_begin (j, &txn), 0);
    assert_int_equal (rst_journal_txn_put (&txn, "gone", 4), 1);
    assert_int_equal (rst_journal_txn_put (&txn, "gone", 4), 2);
    rst_journal_txn_abort (&txn);
    rst_journal_txn_abort (&txn);           //  safe to repeat
    uint64_t depth;
    assert_int_equal (rst_journal_stats (j, &depth, NULL), 0);
    assert_int_equal (depth, 0);
    //  Nothing was accepted, so the sequence numbers are free again.
    assert_int_equal (s_put_many (j, "kept", 1), 1);
    //  An empty transaction commits fine and changes nothing.
    assert_int_equal (rst_journal_txn_begin (j, &txn), 0);
    assert_int_equal (rst_journal_txn_commit (&txn, 0), 0);
    assert_int_equal (rst_journal_stats (j, &depth, NULL), 0);
    assert_int_equal (depth, 1);
    rst_journal_destroy (&j);
}

#define S_THREADS      2
#define S_TXNS         200
#define S_PER_TXN      5

typedef struct {
    rst_journal_t *journal;
    int id;
    uint64_t seqs[S_TXNS * S_PER_TXN];  //  OUT: what this thread got
} s_writer_t;

static void *
s_writer (void *arg)
{
    s_writer_t *w = arg;
    size_t n = 0;
    for (int t = 0; t < S_TXNS; t++) {
        rst_journal_txn_t txn;
        if (rst_journal_txn_begin (w->journal, &txn))
            return NULL;
        for (int i = 0; i < S_PER_TXN; i++) {
            char buf[32];
            int len = snprintf (buf, sizeof buf, "t%d-%d", w->id, t * S_PER_TXN + i);
            w->seqs[n++] = rst_journal_txn_put (&txn, buf, (size_t) len);
        }
        if (rst_journal_txn_commit (&txn, 0))
            return NULL;
    }
    return w;
}

static int
s_cmp_u64 (const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y ? -1 : x > y;
}

static void
test_two_threads_get_unique_increasing_seqs (void **state)
{
    s_fixture_t *fx = *state;
    rst_journal_t *j = s_open (fx, RST_JOURNAL_ACK_STORED);
    static s_writer_t w[S_THREADS];
    pthread_t th[S_THREADS];
    for (int i = 0; i < S_THREADS; i++) {
        w[i].journal = j;
        w[i].id = i;
        assert_int_equal (pthread_create (&th[i], NULL, s_writer, &w[i]), 0);
    }
    for (int i = 0; i < S_THREADS; i++) {
        void *ret;
        pthread_join (th[i], &ret);
        assert_ptr_equal (ret, &w[i]);
        //  Increasing within each thread.
        for (size_t k = 1; k < S_TXNS * S_PER_TXN; k++)
            assert_true (w[i].seqs[k] > w[i].seqs[k - 1]);
    }
    //  Unique across threads, and together exactly 1..N.
    size_t total = S_THREADS * S_TXNS * S_PER_TXN;
    uint64_t *all = malloc (total * sizeof *all);
    for (int i = 0; i < S_THREADS; i++)
        memcpy (all + i * S_TXNS * S_PER_TXN, w[i].seqs, sizeof w[i].seqs);
    qsort (all, total, sizeof *all, s_cmp_u64);
    for (size_t k = 0; k < total; k++)
        assert_int_equal (all[k], k + 1);
    uint64_t depth;
    assert_int_equal (rst_journal_stats (j, &depth, NULL), 0);
    assert_int_equal (depth, total);
    free (all);
    rst_journal_destroy (&j);
}

static void
test_bad_directory (void **state)
{
    (void) state;
    char err[256] = "";
    rst_journal_t *j = rst_journal_new ("/proc/rastro-no/journal", RST_JOURNAL_ACK_STORED,
                                        S_MAP_SIZE, err, sizeof err);
    assert_null (j);
    assert_non_null (strstr (err, "journal:"));
}

static void
test_acks_parse (void **state)
{
    (void) state;
    assert_int_equal (rst_journal_acks_parse ("stored"), RST_JOURNAL_ACK_STORED);
    assert_int_equal (rst_journal_acks_parse ("stored, meta"),
                      RST_JOURNAL_ACK_STORED | RST_JOURNAL_ACK_META);
    assert_int_equal (rst_journal_acks_parse ("meta"), RST_JOURNAL_ACK_META);
    assert_int_equal (rst_journal_acks_parse (""), 0);
    assert_int_equal (rst_journal_acks_parse ("stored,sent"), 0);
    assert_int_equal (rst_journal_acks_parse ("storedx"), 0);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_acks_parse),
        cmocka_unit_test_setup_teardown (test_put_commit_scan_ack, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_scan_order_and_limits, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_partial_ack_mask, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_unknown_seq_ack_ignored, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_stats, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_reopen_keeps_data_and_sequence, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_abort_keeps_nothing, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_two_threads_get_unique_increasing_seqs, s_setup,
                                         s_teardown),
        cmocka_unit_test (test_bad_directory),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
