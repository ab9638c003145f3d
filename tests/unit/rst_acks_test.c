/*  rst_acks_test — routing acks back to the journals, on real sockets.

    The first test is the tour: a recorder whose `acks` lists two kinds of
    journaling node (two fronts and one bots node) adds seqs from all three,
    flushes, and each journal's PULL socket (bound on ipc://, as a front
    binds it) receives exactly its own seqs with the stage given. The
    others check rst_acks_send's chunking at RST_ACK_MAX_SEQS, the sources
    that route nowhere, literal endpoints (inproc://) taken by position,
    and a send that fails because no journal is there (ZMQ_IMMEDIATE).
*/
#include "rst_acks.h"
#include "rst_event.h"
#include "rst_journal.h"
#include "rst_zsock.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define S_RECV_TIMEOUT_MS 2000

typedef struct {
    char dir[64];               //  temporary directory of the test
    char file[PATH_MAX];        //  topology file inside it
    void *ctx;                  //  one context for every socket of a test
    rst_topology_t *topo;       //  loaded by s_load
} s_fixture_t;

static int
s_setup (void **state)
{
    s_fixture_t *f = calloc (1, sizeof *f);
    assert_non_null (f);
    strcpy (f->dir, "/tmp/rst_acks_test.XXXXXX");
    assert_non_null (mkdtemp (f->dir));
    snprintf (f->file, sizeof f->file, "%s/topology.ini", f->dir);
    f->ctx = zmq_ctx_new ();
    assert_non_null (f->ctx);
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *f = *state;
    rst_topology_destroy (&f->topo);
    zmq_ctx_term (f->ctx);
    char cmd[PATH_MAX + 16];
    snprintf (cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal (system (cmd), 0);
    free (f);
    return 0;
}

//  Writes TEXT as the topology file and loads it ({data} = the test dir).
static void
s_load (s_fixture_t *f, const char *text)
{
    FILE *file = fopen (f->file, "w");
    assert_non_null (file);
    fputs (text, file);
    fclose (file);
    char err[512] = "";
    f->topo = rst_topology_load (f->file, f->dir, err, sizeof err);
    if (!f->topo)
        fail_msg ("topology: %s", err);
}

//  A journal's side: a PULL bound on ENDPOINT.
static void *
s_journal (s_fixture_t *f, const char *endpoint)
{
    void *sock = rst_zsock_new (f->ctx, ZMQ_PULL, 1000, 0, 0);
    assert_non_null (sock);
    int timeout = S_RECV_TIMEOUT_MS;
    zmq_setsockopt (sock, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    assert_int_equal (zmq_bind (sock, endpoint), 0);
    return sock;
}

//  Receives one ack message on SOCK; expects STAGE and SEQS[0..COUNT).
static void
s_expect_ack (void *sock, unsigned stage, const uint64_t *seqs, size_t count)
{
    char buf[16384];
    int len = zmq_recv (sock, buf, sizeof buf, 0);
    assert_true (len > 0);
    unsigned got_stage = 0;
    uint64_t got[RST_ACK_MAX_SEQS];
    char err[256];
    int n = rst_ack_decode (buf, (size_t) len, &got_stage, got, RST_ACK_MAX_SEQS, err, sizeof err);
    assert_int_equal (n, (int) count);
    assert_int_equal (got_stage, stage);
    for (size_t i = 0; i < count; i++)
        assert_int_equal (got[i], seqs[i]);
}

//  Expects nothing more on SOCK.
static void
s_expect_nothing (void *sock)
{
    char buf[64];
    assert_int_equal (zmq_recv (sock, buf, sizeof buf, ZMQ_DONTWAIT), -1);
}

static const char *s_two_kinds =
    "[front]\n"
    "instances = 2\n"
    "acks      = @ipc://{data}/front-{i}-acks.sock\n"
    "\n"
    "[bots]\n"
    "acks      = @ipc://{data}/bots-{i}-acks.sock\n"
    "\n"
    "[recorder]\n"
    "acks      = front.acks, bots.acks\n";

static void
test_tour (void **state)
{
    s_fixture_t *f = *state;
    s_load (f, s_two_kinds);

    //  Each journal binds its ack endpoint, as the front's keeper does.
    char ep[PATH_MAX + 16];
    void *journal[3];
    const char *names[3] = {"front-0", "front-1", "bots-0"};
    for (int i = 0; i < 3; i++) {
        snprintf (ep, sizeof ep, "ipc://%s/%s-acks.sock", f->dir, names[i]);
        journal[i] = s_journal (f, ep);
    }

    //  The recorder connects one PUSH per endpoint of its `acks` key.
    char err[512] = "";
    rst_acks_t *acks = rst_acks_new (f->ctx, f->topo, "recorder", 0, "acks", 0, err, sizeof err);
    if (!acks)
        fail_msg ("rst_acks_new: %s", err);
    assert_int_equal (rst_acks_count (acks), 3);
    rst_acks_print (acks, "events", "");

    //  Events name their journal in src: "<node>.<instance>".
    assert_int_equal (rst_acks_route (acks, "front.0", 7), 0);
    assert_int_equal (rst_acks_route (acks, "front.1", 7), 1);
    assert_int_equal (rst_acks_route (acks, "bots.0", 6), 2);

    //  Add seqs as events are done, flush once: one message per journal.
    assert_int_equal (rst_acks_add (acks, "front.1", 7, 11), 0);
    assert_int_equal (rst_acks_add (acks, "bots.0", 6, 21), 0);
    assert_int_equal (rst_acks_add (acks, "front.1", 7, 12), 0);
    assert_int_equal (rst_acks_add (acks, "front.0", 7, 1), 0);
    rst_acks_tally_t tally = rst_acks_flush (acks, RST_ACK_STAGE_STORED);
    assert_int_equal (tally.sent, 4);
    assert_int_equal (tally.failed, 0);
    s_expect_ack (journal[0], RST_ACK_STAGE_STORED, (uint64_t[]){1}, 1);
    s_expect_ack (journal[1], RST_ACK_STAGE_STORED, (uint64_t[]){11, 12}, 2);
    s_expect_ack (journal[2], RST_ACK_STAGE_STORED, (uint64_t[]){21}, 1);

    //  A flush with nothing queued sends nothing.
    tally = rst_acks_flush (acks, RST_JOURNAL_ACK_META);
    assert_int_equal (tally.sent, 0);
    assert_int_equal (tally.failed, 0);

    //  rst_acks_send: seqs of one src, another stage.
    tally = rst_acks_send (acks, "bots.0", 6, RST_JOURNAL_ACK_META, (uint64_t[]){5, 6, 7}, 3);
    assert_int_equal (tally.sent, 3);
    s_expect_ack (journal[2], RST_JOURNAL_ACK_META, (uint64_t[]){5, 6, 7}, 3);
    for (int i = 0; i < 3; i++)
        s_expect_nothing (journal[i]);

    rst_acks_destroy (&acks);
    assert_null (acks);
    rst_acks_destroy (&acks);
    for (int i = 0; i < 3; i++)
        zmq_close (journal[i]);
}

static void
test_chunks_of_max_seqs (void **state)
{
    s_fixture_t *f = *state;
    s_load (f, s_two_kinds);
    char ep[PATH_MAX + 16];
    snprintf (ep, sizeof ep, "ipc://%s/front-0-acks.sock", f->dir);
    void *journal = s_journal (f, ep);
    char err[512] = "";
    rst_acks_t *acks = rst_acks_new (f->ctx, f->topo, "recorder", 0, "acks", 0, err, sizeof err);
    assert_non_null (acks);

    //  2 * RST_ACK_MAX_SEQS + 1 seqs: three messages, the last of one seq.
    size_t count = 2 * RST_ACK_MAX_SEQS + 1;
    uint64_t *seqs = calloc (count, sizeof *seqs);
    assert_non_null (seqs);
    for (size_t i = 0; i < count; i++)
        seqs[i] = i + 1;
    rst_acks_tally_t tally = rst_acks_send (acks, "front.0", 7, RST_ACK_STAGE_STORED, seqs, count);
    assert_int_equal (tally.sent, count);
    assert_int_equal (tally.failed, 0);
    s_expect_ack (journal, RST_ACK_STAGE_STORED, seqs, RST_ACK_MAX_SEQS);
    s_expect_ack (journal, RST_ACK_STAGE_STORED, seqs + RST_ACK_MAX_SEQS, RST_ACK_MAX_SEQS);
    s_expect_ack (journal, RST_ACK_STAGE_STORED, seqs + 2 * RST_ACK_MAX_SEQS, 1);

    //  The same through add and flush (the queue grows past its first size).
    for (size_t i = 0; i < count; i++)
        assert_int_equal (rst_acks_add (acks, "front.0", 7, seqs[i]), 0);
    tally = rst_acks_flush (acks, RST_ACK_STAGE_STORED);
    assert_int_equal (tally.sent, count);
    s_expect_ack (journal, RST_ACK_STAGE_STORED, seqs, RST_ACK_MAX_SEQS);
    s_expect_ack (journal, RST_ACK_STAGE_STORED, seqs + RST_ACK_MAX_SEQS, RST_ACK_MAX_SEQS);
    s_expect_ack (journal, RST_ACK_STAGE_STORED, seqs + 2 * RST_ACK_MAX_SEQS, 1);
    s_expect_nothing (journal);
    free (seqs);
    rst_acks_destroy (&acks);
    zmq_close (journal);
}

static void
test_sources_that_route_nowhere (void **state)
{
    s_fixture_t *f = *state;
    s_load (f, s_two_kinds);
    char err[512] = "";
    rst_acks_t *acks = rst_acks_new (f->ctx, f->topo, "recorder", 0, "acks", 0, err, sizeof err);
    assert_non_null (acks);
    const char *bad[] = {"front.2", "bots.1",  "nobody.0",  "front",   "front.", ".0",
                         "front.x", "front.1x", "front.-1", "front.1234567", "fron.0", "fronts.0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (rst_acks_route (acks, bad[i], strlen (bad[i])) != -1)
            fail_msg ("'%s' should route nowhere", bad[i]);
    assert_int_equal (rst_acks_route (acks, NULL, 0), -1);
    //  Only the length given counts: "front.0" out of "front.01".
    assert_int_equal (rst_acks_route (acks, "front.01", 7), 0);

    //  Both ways of sending count them as failed; nothing is sent.
    rst_acks_tally_t tally = rst_acks_send (acks, "nobody.0", 8, RST_ACK_STAGE_STORED,
                                            (uint64_t[]){1, 2}, 2);
    assert_int_equal (tally.sent, 0);
    assert_int_equal (tally.failed, 2);
    assert_int_equal (rst_acks_add (acks, "front.7", 7, 3), -1);
    assert_int_equal (rst_acks_add (acks, "bots.9", 6, 4), -1);
    tally = rst_acks_flush (acks, RST_ACK_STAGE_STORED);
    assert_int_equal (tally.sent, 0);
    assert_int_equal (tally.failed, 2);
    tally = rst_acks_flush (acks, RST_ACK_STAGE_STORED);     //  counted once
    assert_int_equal (tally.failed, 0);
    rst_acks_destroy (&acks);
}

static void
test_literal_endpoints_by_position (void **state)
{
    s_fixture_t *f = *state;
    s_load (f, "[sender]\n"
               "acks = >inproc://journal-0, >inproc://journal-1\n");
    void *journal[2] = {s_journal (f, "inproc://journal-0"), s_journal (f, "inproc://journal-1")};
    char err[512] = "";
    rst_acks_t *acks = rst_acks_new (f->ctx, f->topo, "sender", 0, "acks", 0, err, sizeof err);
    if (!acks)
        fail_msg ("rst_acks_new: %s", err);
    rst_acks_print (acks, "events", ", stage meta");
    //  No owner: any node's instance i goes to endpoint i.
    assert_int_equal (rst_acks_route (acks, "front.1", 7), 1);
    assert_int_equal (rst_acks_route (acks, "bots.0", 6), 0);
    assert_int_equal (rst_acks_route (acks, "front.2", 7), -1);
    rst_acks_tally_t tally = rst_acks_send (acks, "front.1", 7, RST_JOURNAL_ACK_META,
                                            (uint64_t[]){9}, 1);
    assert_int_equal (tally.sent, 1);
    s_expect_ack (journal[1], RST_JOURNAL_ACK_META, (uint64_t[]){9}, 1);
    s_expect_nothing (journal[0]);
    rst_acks_destroy (&acks);
    zmq_close (journal[0]);
    zmq_close (journal[1]);
}

static void
test_absent_journal_with_immediate (void **state)
{
    s_fixture_t *f = *state;
    s_load (f, s_two_kinds);
    //  Nobody binds front-0's endpoint: with ZMQ_IMMEDIATE the send fails
    //  at once (counted), without it the ack waits in the queue.
    char err[512] = "";
    rst_acks_t *acks = rst_acks_new (f->ctx, f->topo, "recorder", 0, "acks", RST_ZSOCK_IMMEDIATE,
                                     err, sizeof err);
    assert_non_null (acks);
    rst_acks_tally_t tally = rst_acks_send (acks, "front.0", 7, RST_ACK_STAGE_STORED,
                                            (uint64_t[]){1, 2, 3}, 3);
    assert_int_equal (tally.sent, 0);
    assert_int_equal (tally.failed, 3);
    rst_acks_destroy (&acks);

    acks = rst_acks_new (f->ctx, f->topo, "recorder", 0, "acks", 0, err, sizeof err);
    assert_non_null (acks);
    tally = rst_acks_send (acks, "front.0", 7, RST_ACK_STAGE_STORED, (uint64_t[]){1, 2, 3}, 3);
    assert_int_equal (tally.sent, 3);
    assert_int_equal (tally.failed, 0);
    rst_acks_destroy (&acks);
}

static void
test_bad_key (void **state)
{
    s_fixture_t *f = *state;
    s_load (f, s_two_kinds);
    char err[512] = "";
    assert_null (rst_acks_new (f->ctx, f->topo, "recorder", 0, "nosuch", 0, err, sizeof err));
    assert_non_null (strstr (err, "no 'nosuch' key"));
    assert_null (rst_acks_new (f->ctx, f->topo, "recorder", 1, "acks", 0, err, sizeof err));
    assert_non_null (strstr (err, "instance"));
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_tour, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_chunks_of_max_seqs, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_sources_that_route_nowhere, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_literal_endpoints_by_position, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_absent_journal_with_immediate, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_bad_key, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
