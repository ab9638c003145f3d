/*  rst_emitter_test — the bots node's event journal: an emitted event is
    stamped (src, seq), kept across a reopen until acknowledged, and pushed;
    an event the schema refuses is neither kept nor pushed; acks delete.
*/
#include "rst_emitter.h"
#include "rst_event.h"
#include "rst_journal.h"
#include "rst_topology.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

typedef struct {
    char dir[64];
    char file[PATH_MAX];
    char data[PATH_MAX];
    void *ctx;
    void *pull;                 //  stands in for the recorder
    rst_topology_t *topo;
    rst_emitter_t *em;          //  destroyed by the teardown, even after a failed check
} s_fixture_t;

static int
s_setup (void **state)
{
    s_fixture_t *f = calloc (1, sizeof *f);
    assert_non_null (f);
    strcpy (f->dir, "/tmp/rst_emitter_test.XXXXXX");
    assert_non_null (mkdtemp (f->dir));
    snprintf (f->file, sizeof f->file, "%s/topology.ini", f->dir);
    snprintf (f->data, sizeof f->data, "%s/data", f->dir);
    FILE *file = fopen (f->file, "w");
    assert_non_null (file);
    fprintf (file, "[bots]\n"
                   "journal = {data}/bots-{i}/journal\n"
                   "acks = @ipc://%s/acks.sock\n"
                   "required_acks = stored\n"
                   "events = >ipc://%s/in.sock\n"
                   "replay_after = 1\n",
             f->dir, f->dir);
    fclose (file);
    char err[512] = "";
    f->topo = rst_topology_load (f->file, f->data, err, sizeof err);
    if (!f->topo)
        fail_msg ("%s", err);
    f->ctx = zmq_ctx_new ();
    f->pull = zmq_socket (f->ctx, ZMQ_PULL);
    char ep[PATH_MAX];
    snprintf (ep, sizeof ep, "ipc://%s/in.sock", f->dir);
    assert_int_equal (zmq_bind (f->pull, ep), 0);
    int timeout = 5000;
    zmq_setsockopt (f->pull, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *f = *state;
    rst_emitter_destroy (&f->em);
    zmq_close (f->pull);
    zmq_ctx_term (f->ctx);
    rst_topology_destroy (&f->topo);
    char cmd[PATH_MAX + 16];
    snprintf (cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal (system (cmd), 0);
    free (f);
    return 0;
}

static void
s_payment (rst_event_t *ev, const char *event_id, const char *order_id)
{
    rst_event_init (ev);
    ev->type = RST_EVENT_PAYMENT;
    ev->event_id = rst_str (event_id);
    ev->time_ms = 1764386400123;
    ev->owner_id = 1;
    ev->pool_id = 0;
    ev->bot_id = 3;
    ev->pixel_id = rst_str ("123456789");
    ev->tg_user_id = 555;
    ev->value_cents = 9700;
    if (order_id)
        ev->order_id = rst_str (order_id);
}

//  Receives until the event EVENT_ID arrives (the first push may be lost
//  while the PUSH socket is still connecting: the keeper replays it after
//  replay_after, 1 s here) and returns it decoded (the caller destroys it).
//  Other events received meanwhile (replays) are dropped.
static rst_event_t *
s_receive (s_fixture_t *f, const char *event_id)
{
    for (int i = 0; i < 20; i++) {
        char buf[RST_EVENT_MAX_BYTES];
        int n = zmq_recv (f->pull, buf, sizeof buf, 0);
        if (n <= 0)
            continue;       //  timed out: wait for the replay
        size_t offset = 0;
        char err[256] = "";
        while (offset < (size_t) n) {
            rst_event_t *ev = rst_event_decode (buf, (size_t) n, &offset, err, sizeof err);
            if (!ev)
                fail_msg ("%s", err);
            if (ev->event_id.len == strlen (event_id)
                && !memcmp (ev->event_id.ptr, event_id, ev->event_id.len))
                return ev;
            rst_event_destroy (&ev);
        }
    }
    fail_msg ("%s never arrived", event_id);
    return NULL;
}

static void
test_emit_keeps_and_pushes (void **state)
{
    s_fixture_t *f = *state;
    char err[512] = "";
    f->em = rst_emitter_new (f->ctx, f->topo, "bots", 0, err, sizeof err);
    rst_emitter_t *em = f->em;
    if (!em)
        fail_msg ("%s", err);
    rst_event_t ev;
    s_payment (&ev, "pur-1", "charge-1");
    assert_int_equal (rst_emitter_emit (em, &ev, err, sizeof err), 0);
    s_payment (&ev, "pur-2", "charge-2");
    assert_int_equal (rst_emitter_emit (em, &ev, err, sizeof err), 0);
    //  A payment without order_id is outside the schema: refused, not kept.
    s_payment (&ev, "pur-3", NULL);
    assert_int_equal (rst_emitter_emit (em, &ev, err, sizeof err), -1);
    assert_non_null (strstr (err, "pur-3"));
    assert_int_equal (rst_emitter_count (em), 2);

    rst_event_t *got = s_receive (f, "pur-1");
    assert_int_equal (got->type, RST_EVENT_PAYMENT);
    assert_memory_equal (got->event_id.ptr, "pur-1", 5);
    assert_memory_equal (got->src.ptr, "bots.0", 6);
    assert_int_equal (got->seq, 1);
    assert_int_equal (got->value_cents, 9700);
    rst_event_destroy (&got);
    got = s_receive (f, "pur-2");
    assert_int_equal (got->seq, 2);
    rst_event_destroy (&got);
    rst_emitter_destroy (&f->em);
    assert_null (f->em);

    //  Both are still in the journal (nothing acknowledged them).
    char dir[PATH_MAX + 32];
    snprintf (dir, sizeof dir, "%s/bots-0/journal", f->data);
    rst_journal_t *j = rst_journal_new (dir, RST_JOURNAL_ACK_STORED, 0, err, sizeof err);
    if (!j)
        fail_msg ("%s", err);
    uint64_t depth = 0;
    int64_t oldest = 0;
    assert_int_equal (rst_journal_stats (j, &depth, &oldest), 0);
    assert_int_equal (depth, 2);
    uint64_t seqs[] = {1};
    assert_int_equal (rst_journal_ack (j, seqs, 1, RST_JOURNAL_ACK_STORED), 1);
    assert_int_equal (rst_journal_stats (j, &depth, &oldest), 0);
    assert_int_equal (depth, 1);
    rst_journal_destroy (&j);

    //  Reopened, the emitter carries on after the last sequence number, and
    //  its keeper pushes what the previous run left (pur-2) again.
    f->em = rst_emitter_new (f->ctx, f->topo, "bots", 0, err, sizeof err);
    assert_non_null (f->em);
    s_payment (&ev, "pur-4", "charge-4");
    assert_int_equal (rst_emitter_emit (f->em, &ev, err, sizeof err), 0);
    got = s_receive (f, "pur-4");
    assert_int_equal (got->seq, 3);
    rst_event_destroy (&got);
    got = s_receive (f, "pur-2");
    assert_int_equal (got->seq, 2);
    rst_event_destroy (&got);
}

static void
test_bad_topology (void **state)
{
    s_fixture_t *f = *state;
    char err[512] = "";
    //  No [front] section: no journal key.
    rst_emitter_t *em = rst_emitter_new (f->ctx, f->topo, "front", 0, err, sizeof err);
    assert_null (em);
    assert_non_null (strstr (err, "journal"));
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_emit_keeps_and_pushes, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_bad_topology, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
