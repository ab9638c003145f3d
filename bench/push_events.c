/*  push_events — pushes synthetic clicks (or enriched events) into the Meta pipeline.

    Usage: bench_push_events --push EP [--acks EP --expect-acks N --timeout S]
                             [--run NAME] [--count N] [--first-seq S] [--src front.0]
                             [--pixel P] [--owner O] [--pool ID] [--ua UA] [--ip IP]
                             [--spread-ip] [--per-message K] [--enriched] [--priority]

    Plays a front (raw click events, schemas/events.md) towards an
    enricher's `in`, or with --enriched a limiter (enriched events,
    schemas/pipeline.md; --priority marks them Purchase events for the
    priority lane) towards a limiter's or batcher's `in`. Ids derive from
    RUN and the sequence number: click_id "<run>-<seq>", event_id
    "e-<run>-<seq>"; url https://go.example.com/go/promo?fbclid=IwAR_<run>
    and fbc fb.1.<time_ms>.IwAR_<run>. --ua "" sends an empty user agent;
    --spread-ip gives every event its own address (10.x.y.z) so the IP-rate
    rule stays quiet. With --acks it binds a PULL there and waits until N
    sequence numbers were acknowledged with stage meta (2); it prints
    "pushed P acked A" and exits 0 when A ≥ N, 1 on timeout.
*/
#include "rst_clock.h"
#include "rst_event.h"
#include "rst_meta.h"
#include "rst_pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

int
main (int argc, char **argv)
{
    const char *push_ep = NULL, *acks_ep = NULL, *run = "run", *src = "front.0", *pixel = "111";
    const char *ua = "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like "
                     "Gecko) Chrome/124.0.0.0 Mobile Safari/537.36";
    const char *ip = "203.0.113.9";
    long count = 10, per_message = 10, expect = 0, timeout = 30, owner = 1, pool = 1;
    unsigned long long first_seq = 1;
    int spread = 0, enriched = 0, priority = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp (a, "--spread-ip"))
            spread = 1;
        else if (!strcmp (a, "--enriched"))
            enriched = 1;
        else if (!strcmp (a, "--priority"))
            priority = 1;
        else if (!v)
            goto usage;
        else if (!strcmp (a, "--push"))
            push_ep = v, i++;
        else if (!strcmp (a, "--acks"))
            acks_ep = v, i++;
        else if (!strcmp (a, "--run"))
            run = v, i++;
        else if (!strcmp (a, "--src"))
            src = v, i++;
        else if (!strcmp (a, "--pixel"))
            pixel = v, i++;
        else if (!strcmp (a, "--ua"))
            ua = v, i++;
        else if (!strcmp (a, "--ip"))
            ip = v, i++;
        else if (!strcmp (a, "--count"))
            count = atol (v), i++;
        else if (!strcmp (a, "--per-message"))
            per_message = atol (v), i++;
        else if (!strcmp (a, "--expect-acks"))
            expect = atol (v), i++;
        else if (!strcmp (a, "--timeout"))
            timeout = atol (v), i++;
        else if (!strcmp (a, "--owner"))
            owner = atol (v), i++;
        else if (!strcmp (a, "--pool"))
            pool = atol (v), i++;
        else if (!strcmp (a, "--first-seq"))
            first_seq = strtoull (v, NULL, 10), i++;
        else
            goto usage;
    }
    if (!push_ep || count < 0 || per_message < 1)
        goto usage;

    void *ctx = zmq_ctx_new ();
    int linger = 2000;
    void *push = zmq_socket (ctx, ZMQ_PUSH);
    zmq_setsockopt (push, ZMQ_LINGER, &linger, sizeof linger);
    void *acks = NULL;
    if (acks_ep) {
        acks = zmq_socket (ctx, ZMQ_PULL);
        zmq_setsockopt (acks, ZMQ_LINGER, &linger, sizeof linger);
        if (zmq_bind (acks, acks_ep)) {
            fprintf (stderr, "push_events: bind %s: %s\n", acks_ep, zmq_strerror (zmq_errno ()));
            return 1;
        }
    }
    if (zmq_connect (push, push_ep)) {
        fprintf (stderr, "push_events: connect %s: %s\n", push_ep, zmq_strerror (zmq_errno ()));
        return 1;
    }
    struct timespec settle = {0, 200 * 1000000L};   //  let the connections complete
    nanosleep (&settle, NULL);

    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    long pushed = 0;
    for (long n = 0; n < count; n++) {
        unsigned long long seq = first_seq + (unsigned long long) n;
        char click_id[64], event_id[64], url[160], fbc[128], ipbuf[64];
        int64_t now = rst_clock_wall_ms ();
        snprintf (click_id, sizeof click_id, "%s-%llu", run, seq);
        snprintf (event_id, sizeof event_id, "e-%s-%llu", run, seq);
        snprintf (url, sizeof url, "https://go.example.com/go/promo?utm_source=fb&fbclid=IwAR_%s",
                  run);
        snprintf (fbc, sizeof fbc, "fb.1.%lld.IwAR_%s", (long long) now, run);
        snprintf (ipbuf, sizeof ipbuf, "10.%llu.%llu.%llu", (seq >> 16) & 255, (seq >> 8) & 255,
                  seq & 255);
        int rc;
        if (enriched) {
            rst_meta_event_t m = {
                .event_name = priority ? "Purchase" : "PageView", .event_time = now / 1000,
                .event_id = event_id, .action_source = priority ? "chat" : "website",
                .event_source_url = url, .client_user_agent = ua, .fbc = fbc,
                .external_id = click_id, .has_value = priority, .value = 97.9,
                .currency = priority ? "BRL" : NULL,
            };
            char err[256];
            char *capi = rst_meta_event_json (&m, err, sizeof err);
            if (!capi) {
                fprintf (stderr, "push_events: rst_meta_event_json: %s\n", err);
                return 1;
            }
            rst_enriched_t e = {
                .event_id = rst_str (event_id), .src = rst_str (src), .seq = seq,
                .type = rst_str (priority ? "payment" : "click"),
                .event_name = rst_str (priority ? "Purchase" : "PageView"), .time_ms = now,
                .owner_id = owner, .pool_id = pool, .bot_id = 1, .pixel_id = rst_str (pixel),
                .priority = priority, .value_cents = priority ? 9790 : 0, .capi = rst_str (capi),
            };
            rc = rst_enriched_pack (&e, &pk);
            free (capi);
        }
        else {
            rst_event_t ev;
            rst_event_init (&ev);
            ev.type = RST_EVENT_CLICK;
            ev.event_id = rst_str (event_id);
            ev.src = rst_str (src);
            ev.seq = seq;
            ev.time_ms = now;
            ev.owner_id = owner;
            ev.pool_id = pool;
            ev.bot_id = 1;
            ev.pixel_id = rst_str (pixel);
            ev.click_id = rst_str (click_id);
            ev.ip = rst_str (spread ? ipbuf : ip);
            ev.user_agent = rst_str (ua);
            ev.url = rst_str (url);
            ev.fbclid = rst_str ("IwAR_x");
            ev.fbc = rst_str (fbc);
            ev.utm_count = 1;
            ev.utm[0].key = rst_str ("utm_source");
            ev.utm[0].value = rst_str ("fb");
            rc = rst_event_pack (&ev, &pk);
        }
        if (rc) {
            fprintf (stderr, "push_events: event %s does not pack\n", event_id);
            return 1;
        }
        if ((n + 1) % per_message == 0 || n + 1 == count) {
            zmq_send (push, sb.data, sb.size, 0);
            msgpack_sbuffer_clear (&sb);
            pushed = n + 1;
        }
    }
    long acked = 0;
    int64_t deadline = rst_clock_mono_ms () + timeout * 1000;
    while (acks && acked < expect && rst_clock_mono_ms () < deadline) {
        zmq_pollitem_t it = {acks, 0, ZMQ_POLLIN, 0};
        if (zmq_poll (&it, 1, 100) <= 0)
            continue;
        char buf[65536];
        int n = zmq_recv (acks, buf, sizeof buf, 0);
        unsigned stage = 0;
        uint64_t seqs[RST_ACK_MAX_SEQS];
        int k = n > 0 ? rst_ack_decode (buf, (size_t) (n > (int) sizeof buf ? (int) sizeof buf : n),
                                        &stage, seqs, RST_ACK_MAX_SEQS, NULL, 0)
                      : -1;
        if (k > 0 && stage == 2)
            acked += k;
    }
    printf ("pushed %ld acked %ld\n", pushed, acked);
    msgpack_sbuffer_destroy (&sb);
    zmq_close (push);
    if (acks)
        zmq_close (acks);
    zmq_ctx_term (ctx);
    return acked >= expect ? 0 : 1;
usage:
    fprintf (stderr, "usage: bench_push_events --push EP [--acks EP --expect-acks N --timeout S] "
                     "[--run NAME] [--count N] [--first-seq S] [--src front.0] [--pixel P] "
                     "[--owner O] [--pool ID] [--ua UA] [--ip IP] [--spread-ip] "
                     "[--per-message K] [--enriched] [--priority]\n");
    return 2;
}
