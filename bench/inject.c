/*  inject — pushes synthetic clicks at a recorder and counts its acks.

    Usage: bench_inject --push ENDPOINT --acks ENDPOINT [--count N] [--first-seq S]
                        [--src front.0] [--run NAME] [--per-message K] [--rate R]
                        [--replay-ms MS] [--timeout S] [--dup] [--bad]

    Plays the part of one front instance for tests and load runs: builds N
    click events with ids derived from RUN and the sequence number
    (click_id "<run>-<seq>", event_id "e-<run>-<seq>"), packs K of them per
    ZeroMQ message, PUSHes them (connect) to ENDPOINT, and binds a PULL on the
    acks ENDPOINT. It keeps the unacknowledged ones like the journal does:
    every REPLAY-MS it pushes again what is still unacknowledged, so a
    recorder killed mid-stream and restarted still gets every event. With
    --dup each message is sent twice; with --bad a malformed map is put in
    the middle of every message (the recorder must drop it, and keep the
    rest). Exits 0 when every seq was acknowledged, 1 on timeout. Prints
    "acked A of N, pushed P messages, R replays, D duplicate acks, B bad acks,
    F foreign acks, E s" (foreign: seqs outside this run, e.g. late acks of an
    earlier run on the same endpoint; ignored like a journal ignores them).
*/
#include "rst_event.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define S_MAX_EVENTS 10000000

static int64_t
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t
s_wall_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef struct {
    const char *push_ep, *acks_ep, *src, *run;
    long count, per_message, rate, replay_ms, timeout_s;
    uint64_t first_seq;
    int dup, bad;
} s_opts_t;

//  Packs click SEQ into PK.
static void
s_pack_click (const s_opts_t *o, uint64_t seq, msgpack_packer *pk)
{
    char click_id[64], event_id[64], url[160];
    snprintf (click_id, sizeof click_id, "%s-%llu", o->run, (unsigned long long) seq);
    snprintf (event_id, sizeof event_id, "e-%s-%llu", o->run, (unsigned long long) seq);
    snprintf (url, sizeof url, "http://127.0.0.1/go/bench?utm_source=inject&utm_campaign=%s",
              o->run);
    rst_event_t ev;
    rst_event_init (&ev);
    ev.type = RST_EVENT_CLICK;
    ev.event_id = rst_str (event_id);
    ev.src = rst_str (o->src);
    ev.seq = seq;
    ev.time_ms = s_wall_ms ();
    ev.owner_id = 1;
    ev.pool_id = 1;
    ev.bot_id = 1;
    ev.pixel_id = rst_str ("1234567890");
    ev.click_id = rst_str (click_id);
    ev.pool_slug = rst_str ("bench");
    ev.bot_username = rst_str ("bench_bot");
    ev.ip = rst_str ("198.51.100.7");
    ev.user_agent = rst_str ("bench_inject/1 \xff (not UTF-8)");
    ev.url = rst_str (url);
    ev.utm_count = 3;
    ev.utm[0].key = rst_str ("utm_source");
    ev.utm[0].value = rst_str ("inject");
    ev.utm[1].key = rst_str ("utm_campaign");
    ev.utm[1].value = rst_str (o->run);
    ev.utm[2].key = rst_str ("utm_x\"q");
    ev.utm[2].value = rst_str ("a\\b\n");
    if (rst_event_pack (&ev, pk)) {
        fprintf (stderr, "inject: cannot pack seq %llu (run name too long?)\n",
                 (unsigned long long) seq);
        exit (2);
    }
}

static int
s_send (void *push, const msgpack_sbuffer *sb)
{
    for (;;) {
        if (zmq_send (push, sb->data, sb->size, 0) >= 0)
            return 0;
        if (zmq_errno () != EINTR)
            return -1;
    }
}

//  Pushes the events in [from, to) whose ack is missing, PER_MESSAGE a message.
static long
s_push_range (const s_opts_t *o, void *push, const unsigned char *acked, long from, long to,
              msgpack_sbuffer *sb)
{
    long messages = 0;
    msgpack_packer pk;
    msgpack_packer_init (&pk, sb, msgpack_sbuffer_write);
    long i = from;
    while (i < to) {
        msgpack_sbuffer_clear (sb);
        long in_message = 0;
        for (; i < to && in_message < o->per_message; i++) {
            if (acked[i])
                continue;
            s_pack_click (o, o->first_seq + (uint64_t) i, &pk);
            in_message++;
            if (o->bad && in_message == 1) {
                msgpack_pack_map (&pk, 1);  //  a map without "v": dropped by the recorder
                msgpack_pack_str_with_body (&pk, "junk", 4);
                msgpack_pack_nil (&pk);
            }
        }
        if (!in_message)
            break;
        if (s_send (push, sb) || (o->dup && s_send (push, sb))) {
            fprintf (stderr, "inject: send: %s\n", zmq_strerror (zmq_errno ()));
            exit (2);
        }
        messages++;
    }
    return messages;
}

int
main (int argc, char **argv)
{
    s_opts_t o = {NULL, NULL, "front.0", "run", 1000, 50, 0, 2000, 60, 1, 0, 0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp (a, "--dup"))
            o.dup = 1;
        else if (!strcmp (a, "--bad"))
            o.bad = 1;
        else if (!v) {
            fprintf (stderr, "inject: %s needs a value (see the banner of bench/inject.c)\n", a);
            return 2;
        }
        else if (!strcmp (a, "--push"))
            o.push_ep = argv[++i];
        else if (!strcmp (a, "--acks"))
            o.acks_ep = argv[++i];
        else if (!strcmp (a, "--src"))
            o.src = argv[++i];
        else if (!strcmp (a, "--run"))
            o.run = argv[++i];
        else if (!strcmp (a, "--count"))
            o.count = atol (argv[++i]);
        else if (!strcmp (a, "--first-seq"))
            o.first_seq = strtoull (argv[++i], NULL, 10);
        else if (!strcmp (a, "--per-message"))
            o.per_message = atol (argv[++i]);
        else if (!strcmp (a, "--rate"))
            o.rate = atol (argv[++i]);
        else if (!strcmp (a, "--replay-ms"))
            o.replay_ms = atol (argv[++i]);
        else if (!strcmp (a, "--timeout"))
            o.timeout_s = atol (argv[++i]);
        else {
            fprintf (stderr, "inject: unknown option %s\n", a);
            return 2;
        }
    }
    if (!o.push_ep || !o.acks_ep || o.count < 1 || o.count > S_MAX_EVENTS || o.per_message < 1
        || o.first_seq < 1) {
        fprintf (stderr, "usage: bench_inject --push EP --acks EP [--count N] [--first-seq S] "
                         "[--src front.0] [--run NAME] [--per-message K] [--rate R] "
                         "[--replay-ms MS] [--timeout S] [--dup] [--bad]\n");
        return 2;
    }
    signal (SIGPIPE, SIG_IGN);
    void *ctx = zmq_ctx_new ();
    void *push = zmq_socket (ctx, ZMQ_PUSH);
    void *pull = zmq_socket (ctx, ZMQ_PULL);
    int linger = 0, hwm = 100000;
    zmq_setsockopt (push, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt (pull, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt (push, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt (pull, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (zmq_bind (pull, o.acks_ep) || zmq_connect (push, o.push_ep)) {
        fprintf (stderr, "inject: %s: %s\n", o.acks_ep, zmq_strerror (zmq_errno ()));
        return 2;
    }
    unsigned char *acked = calloc ((size_t) o.count, 1);
    uint64_t *seqs = malloc (RST_ACK_MAX_SEQS * sizeof *seqs);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);

    int64_t start = s_now_ms (), deadline = start + o.timeout_s * 1000;
    int64_t next_replay = start + o.replay_ms;
    long sent_upto = 0, nacked = 0, messages = 0, replays = 0, dup_acks = 0, bad_acks = 0,
         foreign_acks = 0;
    while (nacked < o.count && s_now_ms () < deadline) {
        //  Fresh events: all at once, or RATE a second.
        long due = o.count;
        if (o.rate > 0) {
            due = (long) ((s_now_ms () - start) * o.rate / 1000) + 1;
            if (due > o.count)
                due = o.count;
        }
        if (due > sent_upto) {
            messages += s_push_range (&o, push, acked, sent_upto, due, &sb);
            sent_upto = due;
        }
        //  What the journal would replay.
        if (s_now_ms () >= next_replay) {
            for (long i = 0; i < sent_upto; i++)
                replays += !acked[i];
            messages += s_push_range (&o, push, acked, 0, sent_upto, &sb);
            next_replay = s_now_ms () + o.replay_ms;
        }
        zmq_pollitem_t item = {pull, 0, ZMQ_POLLIN, 0};
        if (zmq_poll (&item, 1, 10) <= 0)
            continue;
        zmq_msg_t msg;
        zmq_msg_init (&msg);
        while (zmq_msg_recv (&msg, pull, ZMQ_DONTWAIT) >= 0) {
            unsigned stage;
            char err[128];
            int n = rst_ack_decode (zmq_msg_data (&msg), zmq_msg_size (&msg), &stage, seqs,
                                    RST_ACK_MAX_SEQS, err, sizeof err);
            if (n < 0 || stage != RST_ACK_STAGE_STORED) {
                fprintf (stderr, "inject: bad ack: %s\n", n < 0 ? err : "wrong stage");
                bad_acks++;
                continue;
            }
            for (int k = 0; k < n; k++) {
                if (seqs[k] < o.first_seq || seqs[k] - o.first_seq >= (uint64_t) o.count) {
                    foreign_acks++;     //  late acks of an earlier run: ignored, as a journal does
                    continue;
                }
                size_t idx = (size_t) (seqs[k] - o.first_seq);
                if (acked[idx])
                    dup_acks++;
                else {
                    acked[idx] = 1;
                    nacked++;
                }
            }
        }
        zmq_msg_close (&msg);
    }
    double secs = (double) (s_now_ms () - start) / 1000.0;
    printf ("acked %ld of %ld, pushed %ld messages, %ld replays, %ld duplicate acks, "
            "%ld bad acks, %ld foreign acks, %.2f s\n", nacked, o.count, messages, replays,
            dup_acks, bad_acks, foreign_acks, secs);
    msgpack_sbuffer_destroy (&sb);
    free (seqs);
    free (acked);
    zmq_close (push);
    zmq_close (pull);
    zmq_ctx_term (ctx);
    return nacked == o.count && bad_acks == 0 ? 0 : 1;
}
