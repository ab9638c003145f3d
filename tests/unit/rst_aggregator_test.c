/*  rst_aggregator_test — the aggregator's pure parts: the batch
    (rst_aggbatch), the sequence-gap hint (rst_aggseq) and the checks of
    the [aggregator] topology section (rst_aggregator_new).

    The first test is the tour: events go into a batch, which renders the
    two array literals the counting statement takes. The others test the
    batch's boundaries (exactly batch_max, empty and NUL ids, quoting),
    the gap hint (in order, jumps, late and replayed events, a full table
    of journals) and the settings an aggregator refuses. The statements
    themselves run against PostgreSQL in rst_aggregator_store_test.
*/
#include "rst_aggbatch.h"
#include "rst_aggregator.h"
#include "rst_aggseq.h"
#include "rst_topology.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
test_tour (void **state)
{
    (void) state;
    //  A batch of three: ids are copied, flags and times kept.
    rst_aggbatch_t *batch = rst_aggbatch_new (3);
    assert_non_null (batch);
    assert_int_equal (rst_aggbatch_count (batch), 0);
    assert_int_equal (rst_aggbatch_newest_ms (batch), 0);
    char id[16];
    strcpy (id, "pv-abc");
    assert_int_equal (rst_aggbatch_add (batch, id, strlen (id), 0, 1767225600123), 0);
    strcpy (id, "zzz");             //  the batch kept its own copy
    assert_int_equal (rst_aggbatch_add (batch, "pay-\"x\\y", 8, 0, 1767225601000), 0);
    assert_false (rst_aggbatch_is_full (batch));
    assert_int_equal (rst_aggbatch_add (batch, "bot-1", 5, 1, 1767225500000), 0);
    assert_true (rst_aggbatch_is_full (batch));
    assert_int_equal (rst_aggbatch_count (batch), 3);
    assert_int_equal (rst_aggbatch_newest_ms (batch), 1767225601000);

    //  Rendered as PostgreSQL array literals: text[] and boolean[].
    const char *ids, *flags;
    assert_int_equal (rst_aggbatch_params (batch, &ids, &flags), 0);
    assert_string_equal (ids, "{\"pv-abc\",\"pay-\\\"x\\\\y\",\"bot-1\"}");
    assert_string_equal (flags, "{f,f,t}");

    //  Full: a fourth is refused, nothing changes.
    assert_int_equal (rst_aggbatch_add (batch, "more", 4, 0, 1), -1);
    assert_int_equal (rst_aggbatch_count (batch), 3);

    //  Cleared: empty literals, room again.
    rst_aggbatch_clear (batch);
    assert_int_equal (rst_aggbatch_count (batch), 0);
    assert_int_equal (rst_aggbatch_params (batch, &ids, &flags), 0);
    assert_string_equal (ids, "{}");
    assert_string_equal (flags, "{}");
    assert_int_equal (rst_aggbatch_add (batch, "again", 5, 0, 7), 0);
    assert_int_equal (rst_aggbatch_newest_ms (batch), 7);
    rst_aggbatch_destroy (&batch);
    assert_null (batch);
    rst_aggbatch_destroy (&batch);      //  safe to repeat
}

static void
test_batch_boundaries (void **state)
{
    (void) state;
    assert_null (rst_aggbatch_new (0));
    assert_null (rst_aggbatch_new (RST_AGGBATCH_MAX_LIMIT + 1));

    //  Exactly 1,000 events (the default batch_max), the 1,001st refused.
    rst_aggbatch_t *batch = rst_aggbatch_new (1000);
    assert_non_null (batch);
    assert_int_equal (rst_aggbatch_max (batch), 1000);
    char id[32];
    for (int i = 0; i < 1000; i++) {
        int n = snprintf (id, sizeof id, "ev-%04d", i);
        assert_int_equal (rst_aggbatch_add (batch, id, (size_t) n, i % 2, i), 0);
    }
    assert_true (rst_aggbatch_is_full (batch));
    assert_int_equal (rst_aggbatch_add (batch, "ev-1000", 7, 0, 0), -1);
    const char *ids, *flags;
    assert_int_equal (rst_aggbatch_params (batch, &ids, &flags), 0);
    assert_int_equal (strlen (ids), 2 + 1000 * 9 + 999);   //  braces, "ev-NNNN", commas
    assert_int_equal (strncmp (ids, "{\"ev-0000\",\"ev-0001\",", 21), 0);
    assert_string_equal (ids + strlen (ids) - 10, "\"ev-0999\"}");
    assert_int_equal (strlen (flags), 2 + 1000 + 999);
    assert_int_equal (strncmp (flags, "{f,t,f,t", 8), 0);
    rst_aggbatch_clear (batch);

    //  Ids that cannot be counted are refused, not truncated.
    assert_int_equal (rst_aggbatch_add (batch, "", 0, 0, 0), -1);
    assert_int_equal (rst_aggbatch_add (batch, NULL, 3, 0, 0), -1);
    assert_int_equal (rst_aggbatch_add (batch, "a\0b", 3, 0, 0), -1);
    assert_int_equal (rst_aggbatch_count (batch), 0);

    //  A long id (longer than a wire event id: catch-up ids come from the
    //  tables) makes the buffers grow.
    char big[5000];
    memset (big, '{', sizeof big);
    assert_int_equal (rst_aggbatch_add (batch, big, sizeof big, 0, 0), 0);
    assert_int_equal (rst_aggbatch_params (batch, &ids, &flags), 0);
    assert_int_equal (strlen (ids), sizeof big + 4);
    rst_aggbatch_destroy (&batch);
}

static void
test_quote (void **state)
{
    (void) state;
    char out[64];
    size_t n = rst_aggbatch_quote ("a\"b\\c,{d}", 9, out);
    out[n] = 0;
    assert_string_equal (out, "\"a\\\"b\\\\c,{d}\"");
    n = rst_aggbatch_quote ("NULL", 4, out);       //  quoted: the string, not SQL NULL
    out[n] = 0;
    assert_string_equal (out, "\"NULL\"");
    n = rst_aggbatch_quote ("\"\"", 2, out);       //  the worst case: 2 * len + 2
    assert_int_equal (n, 6);
}

static void
test_seq_hint (void **state)
{
    (void) state;
    rst_aggseq_t *seqs = rst_aggseq_new ();
    assert_non_null (seqs);
    //  The first event of a journal: nothing to compare with.
    assert_int_equal (rst_aggseq_note (seqs, "front.0", 7, 41), 0);
    assert_int_equal (rst_aggseq_note (seqs, "front.0", 7, 42), 0);
    //  43 and 44 never came: two skipped.
    assert_int_equal (rst_aggseq_note (seqs, "front.0", 7, 45), 2);
    //  They arrive late (another path), or a replay: no gap.
    assert_int_equal (rst_aggseq_note (seqs, "front.0", 7, 43), 0);
    assert_int_equal (rst_aggseq_note (seqs, "front.0", 7, 45), 0);
    assert_int_equal (rst_aggseq_note (seqs, "front.0", 7, 46), 0);
    //  Journals are independent.
    assert_int_equal (rst_aggseq_note (seqs, "bots.0", 6, 1000), 0);
    assert_int_equal (rst_aggseq_note (seqs, "bots.0", 6, 1001), 0);
    assert_int_equal (rst_aggseq_note (seqs, "front.0", 7, 48), 1);
    //  A name that is not a journal is ignored.
    assert_int_equal (rst_aggseq_note (seqs, "", 0, 5), 0);
    char long_src[RST_AGGSEQ_SRC_MAX + 1];
    memset (long_src, 'x', sizeof long_src);
    assert_int_equal (rst_aggseq_note (seqs, long_src, sizeof long_src, 5), 0);
    assert_int_equal (rst_aggseq_note (seqs, long_src, sizeof long_src, 9), 0);
    rst_aggseq_destroy (&seqs);
    assert_null (seqs);
}

static void
test_seq_table_full (void **state)
{
    (void) state;
    rst_aggseq_t *seqs = rst_aggseq_new ();
    assert_non_null (seqs);
    char src[32];
    //  RST_AGGSEQ_SOURCES journals fit; front.0 is kept busy.
    assert_int_equal (rst_aggseq_note (seqs, "front.0", 7, 1), 0);
    for (int i = 1; i < RST_AGGSEQ_SOURCES; i++) {
        int n = snprintf (src, sizeof src, "j.%d", i);
        assert_int_equal (rst_aggseq_note (seqs, src, (size_t) n, 10), 0);
        assert_int_equal (rst_aggseq_note (seqs, "front.0", 7, (uint64_t) i + 1), 0);
    }
    //  All tracked: a jump on j.1 is seen.
    assert_int_equal (rst_aggseq_note (seqs, "j.1", 3, 13), 2);
    //  One more journal replaces the least recently seen (j.2), not front.0.
    assert_int_equal (rst_aggseq_note (seqs, "new.0", 5, 100), 0);
    assert_int_equal (rst_aggseq_note (seqs, "front.0", 7, RST_AGGSEQ_SOURCES + 2), 1);
    //  j.2 was forgotten: it starts again without a gap.
    assert_int_equal (rst_aggseq_note (seqs, "j.2", 3, 50), 0);
    assert_int_equal (rst_aggseq_note (seqs, "new.0", 5, 102), 1);
    rst_aggseq_destroy (&seqs);
}

//  Writes TEXT as the topology FILE.
static void
s_write (const char *file, const char *text)
{
    FILE *f = fopen (file, "w");
    assert_non_null (f);
    fputs (text, f);
    fclose (f);
}

static void
test_settings (void **state)
{
    (void) state;
    char dir[] = "/tmp/rst_aggregator_test.XXXXXX";
    assert_non_null (mkdtemp (dir));
    char file[PATH_MAX];
    snprintf (file, sizeof file, "%s/topology.ini", dir);
    rst_config_t cfg;
    memset (&cfg, 0, sizeof cfg);
    snprintf (cfg.data_dir, sizeof cfg.data_dir, "%s", dir);
    //  No PostgreSQL there: the aggregator starts anyway and retries.
    snprintf (cfg.database_url, sizeof cfg.database_url,
              "host=%s/nothing port=1 connect_timeout=1", dir);

    struct {
        const char *section;    //  the [aggregator] section
        const char *error;      //  expected in ERR, NULL = accepted
    } cases[] = {
        {"sub = enricher.pub\n", NULL},
        {"sub = enricher.pub\nbatch_max = 10000\nbatch_ms = 0\ncatchup_grace_s = 0\n", NULL},
        {"batch_ms = 200\n", "has no `sub`"},
        {"sub = enricher.pub\nbatch_max = 0\n", "batch_max must be 1..10000, not 0"},
        {"sub = enricher.pub\nbatch_max = 10001\n", "batch_max must be 1..10000"},
        {"sub = enricher.pub\nbatch_ms = -1\n", "batch_ms must be 0..60000"},
        {"sub = enricher.pub\ncatchup_s = 0\n", "catchup_s must be 1..86400"},
        {"sub = enricher.pub\ncatchup_window_s = 59\n", "catchup_window_s must be 60..1728000"},
        {"sub = enricher.pub\nretention_days = 2\ncatchup_window_s = 86401\n",
         "catchup_window_s must be 60..86400"},
        {"sub = enricher.pub\nretention_days = 1\n", "retention_days must be 2..3650"},
        {"sub = enricher.pub\ncatchup_grace_s = 3601\n", "catchup_grace_s must be 0..3600"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[1024];
        snprintf (text, sizeof text,
                  "[enricher]\npub = @ipc://{data}/run/enricher-{i}-pub.sock\n"
                  "[aggregator]\n%s", cases[i].section);
        s_write (file, text);
        char err[512] = "";
        rst_topology_t *topo = rst_topology_load (file, dir, err, sizeof err);
        if (!topo)
            fail_msg ("case %zu: %s", i, err);
        rst_aggregator_t *agg = rst_aggregator_new (&cfg, topo, 0, err, sizeof err);
        if (cases[i].error) {
            assert_null (agg);
            if (!strstr (err, cases[i].error))
                fail_msg ("case %zu: expected '%s' in '%s'", i, cases[i].error, err);
        }
        else {
            if (!agg)
                fail_msg ("case %zu: %s", i, err);
            rst_aggregator_print (agg);
            rst_aggregator_destroy (&agg);
            assert_null (agg);
        }
        rst_topology_destroy (&topo);
    }
    char cmd[PATH_MAX + 16];
    snprintf (cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal (system (cmd), 0);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_tour),
        cmocka_unit_test (test_batch_boundaries),
        cmocka_unit_test (test_quote),
        cmocka_unit_test (test_seq_hint),
        cmocka_unit_test (test_seq_table_full),
        cmocka_unit_test (test_settings),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
