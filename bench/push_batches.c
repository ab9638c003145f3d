/*  push_batches — pushes rst_batch messages at a sender and counts its acks.

    Usage: bench_push_batches --push ENDPOINT --acks ENDPOINT --pixel ID
                              [--owner N] [--run NAME] [--count N] [--per-batch K]
                              [--first-seq S] [--src front.0] [--replay-ms MS]
                              [--timeout S] [--dup] [--bad I] [--old I] [--rate B]

    Plays the part of a batcher plus the journal behind it, for tests and
    load runs: builds COUNT events "<run>-<i>" (i from 0; sequence numbers
    from S), alternately a website PageView and a chat ViewContent, as Meta
    event JSON (rst_meta_event_json), K per batch for pixel ID, PUSHes the
    batches (connect) to ENDPOINT and binds a PULL on the acks ENDPOINT.
    Like a journal, every REPLAY-MS it pushes again the events still not
    acknowledged (stage "meta"), so a sender killed mid-stream still gets
    every event. --dup sends every batch twice; --bad I makes event I
    invalid for Meta (a malformed fbc); --old I makes event I eight days
    old; --rate B caps the batches per second. Exits 0 when every sequence
    number was acknowledged, 1 on timeout. Prints "acked A of N, pushed P
    batches, R replays, D duplicate acks, E s".
*/
#include "rst_event.h"
#include "rst_journal.h"
#include "rst_meta.h"
#include "rst_pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

static int64_t
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef struct {
    const char *push_ep, *acks_ep, *src, *run, *pixel;
    long count, per_batch, replay_ms, timeout_s, bad, old, rate;
    long long owner;
    uint64_t first_seq;
    int dup;
} s_opts_t;

typedef struct {
    char id[64];
    char *capi;
    int64_t time_ms;
} s_event_t;

static int
s_build (const s_opts_t *o, long i, s_event_t *ev)
{
    snprintf (ev->id, sizeof ev->id, "%s-%ld", o->run, i);
    int64_t now = (int64_t) time (NULL);
    ev->time_ms = (now - 2) * 1000;
    if (i == o->old)
        ev->time_ms -= 8LL * 24 * 3600 * 1000;
    char click[64], url[160], fbc[96];
    snprintf (click, sizeof click, "c_%s_%ld", o->run, i);
    snprintf (url, sizeof url, "https://go.example.com/go/curso?fbclid=IwAR%ld", i);
    snprintf (fbc, sizeof fbc, i == o->bad ? "fb.x.bad" : "fb.1.1767225600123.IwAR%ld", i);
    rst_meta_event_t m = {.event_time = ev->time_ms / 1000, .event_id = ev->id,
                          .external_id = click, .fbc = fbc, .country = "br"};
    if (i % 2 == 0) {
        m.event_name = "PageView";
        m.action_source = "website";
        m.event_source_url = url;
        m.client_user_agent = "Mozilla/5.0 (Linux; Android 14) push_batches";
        m.client_ip_address = "2804:14c:65a1:4000::1";
    }
    else {
        m.event_name = "ViewContent";
        m.action_source = "chat";
        m.content_id = "curso-basico";
    }
    char err[128];
    ev->capi = rst_meta_event_json (&m, err, sizeof err);
    if (!ev->capi)
        fprintf (stderr, "push_batches: event %ld: %s\n", i, err);
    return ev->capi ? 0 : -1;
}

//  Pushes the events [from, from+n) that are not yet acked as one batch.
static int
s_push (const s_opts_t *o, void *push, s_event_t *evs, const unsigned char *acked, long from,
        long n, msgpack_sbuffer *buf)
{
    rst_batch_item_t items[RST_META_MAX_EVENTS];
    size_t k = 0;
    for (long i = from; i < from + n && i < o->count; i++) {
        if (acked[i])
            continue;
        items[k].event_id = rst_str (evs[i].id);
        items[k].src = rst_str (o->src);
        items[k].seq = o->first_seq + (uint64_t) i;
        items[k].time_ms = evs[i].time_ms;
        items[k].capi = rst_str (evs[i].capi);
        k++;
    }
    if (!k)
        return 0;
    rst_batch_t b = {.owner_id = o->owner, .pixel_id = rst_str (o->pixel), .priority = 0,
                     .created_ms = (int64_t) time (NULL) * 1000, .count = k, .items = items};
    msgpack_sbuffer_clear (buf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, buf, msgpack_sbuffer_write);
    if (rst_batch_pack (&b, &pk)) {
        fprintf (stderr, "push_batches: rst_batch_pack refused a batch\n");
        return -1;
    }
    for (int copy = 0; copy < (o->dup ? 2 : 1); copy++)
        if (zmq_send (push, buf->data, buf->size, 0) < 0)
            return -1;
    return 1;
}

int
main (int argc, char **argv)
{
    s_opts_t o = {.src = "front.0", .run = "run", .count = 100, .per_batch = 50,
                  .replay_ms = 3000, .timeout_s = 60, .bad = -1, .old = -1, .owner = 1,
                  .first_seq = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp (a, "--dup")) {
            o.dup = 1;
            continue;
        }
        if (!v) {
            fprintf (stderr, "push_batches: %s needs a value (see the banner of bench/push_batches.c)\n", a);
            return 2;
        }
        i++;
        if (!strcmp (a, "--push")) o.push_ep = v;
        else if (!strcmp (a, "--acks")) o.acks_ep = v;
        else if (!strcmp (a, "--pixel")) o.pixel = v;
        else if (!strcmp (a, "--owner")) o.owner = atoll (v);
        else if (!strcmp (a, "--run")) o.run = v;
        else if (!strcmp (a, "--src")) o.src = v;
        else if (!strcmp (a, "--count")) o.count = atol (v);
        else if (!strcmp (a, "--per-batch")) o.per_batch = atol (v);
        else if (!strcmp (a, "--first-seq")) o.first_seq = strtoull (v, NULL, 10);
        else if (!strcmp (a, "--replay-ms")) o.replay_ms = atol (v);
        else if (!strcmp (a, "--timeout")) o.timeout_s = atol (v);
        else if (!strcmp (a, "--bad")) o.bad = atol (v);
        else if (!strcmp (a, "--old")) o.old = atol (v);
        else if (!strcmp (a, "--rate")) o.rate = atol (v);
        else {
            fprintf (stderr, "push_batches: unknown option %s\n", a);
            return 2;
        }
    }
    if (!o.push_ep || !o.acks_ep || !o.pixel || o.count < 1 || o.per_batch < 1
        || o.per_batch > RST_META_MAX_EVENTS) {
        fprintf (stderr, "push_batches: needs --push, --acks, --pixel; 1 <= --per-batch <= 1000\n");
        return 2;
    }
    s_event_t *evs = calloc ((size_t) o.count, sizeof *evs);
    unsigned char *acked = calloc ((size_t) o.count, 1);
    for (long i = 0; i < o.count; i++)
        if (s_build (&o, i, &evs[i]))
            return 1;
    void *ctx = zmq_ctx_new ();
    void *push = zmq_socket (ctx, ZMQ_PUSH);
    void *acks = zmq_socket (ctx, ZMQ_PULL);
    int linger = 1000;
    zmq_setsockopt (push, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt (acks, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_connect (push, o.push_ep) || zmq_bind (acks, o.acks_ep)) {
        fprintf (stderr, "push_batches: libzmq: %s\n", zmq_strerror (zmq_errno ()));
        return 1;
    }
    msgpack_sbuffer buf;
    msgpack_sbuffer_init (&buf);
    int64_t start = s_now_ms (), deadline = start + o.timeout_s * 1000, next_replay = 0;
    long batches = 0, replays = 0, dup_acks = 0, n_acked = 0;
    long next = 0;      //  first event not pushed yet
    int rc = 1;
    while (s_now_ms () < deadline) {
        //  First pass, at --rate batches per second at most.
        while (next < o.count) {
            if (o.rate > 0 && batches * 1000 > o.rate * (s_now_ms () - start))
                break;
            if (s_push (&o, push, evs, acked, next, o.per_batch, &buf) < 0)
                goto out;
            batches++;
            next += o.per_batch;
        }
        if (next >= o.count && next_replay == 0)
            next_replay = s_now_ms () + o.replay_ms;
        zmq_pollitem_t item = {acks, 0, ZMQ_POLLIN, 0};
        if (zmq_poll (&item, 1, 20) > 0) {
            char data[65536];
            int len;
            while ((len = zmq_recv (acks, data, sizeof data, ZMQ_DONTWAIT)) >= 0) {
                uint64_t seqs[RST_ACK_MAX_SEQS];
                unsigned stage;
                char err[128];
                int n = rst_ack_decode (data, (size_t) len, &stage, seqs, RST_ACK_MAX_SEQS, err,
                                        sizeof err);
                if (n < 0 || stage != RST_JOURNAL_ACK_META)
                    continue;
                for (int k = 0; k < n; k++) {
                    if (seqs[k] < o.first_seq || seqs[k] >= o.first_seq + (uint64_t) o.count)
                        continue;
                    long i = (long) (seqs[k] - o.first_seq);
                    if (acked[i])
                        dup_acks++;
                    else {
                        acked[i] = 1;
                        n_acked++;
                    }
                }
            }
        }
        if (n_acked == o.count) {
            rc = 0;
            break;
        }
        if (next_replay && s_now_ms () >= next_replay) {
            for (long i = 0; i < o.count; i += o.per_batch)
                if (s_push (&o, push, evs, acked, i, o.per_batch, &buf) > 0)
                    replays++;
            next_replay = s_now_ms () + o.replay_ms;
        }
    }
out:
    printf ("acked %ld of %ld, pushed %ld batches, %ld replays, %ld duplicate acks, %.1f s\n",
            n_acked, o.count, batches, replays, dup_acks, (double) (s_now_ms () - start) / 1000.0);
    msgpack_sbuffer_destroy (&buf);
    zmq_close (push);
    zmq_close (acks);
    zmq_ctx_term (ctx);
    for (long i = 0; i < o.count; i++)
        free (evs[i].capi);
    free (evs);
    free (acked);
    return rc;
}
