/*  pipe_sink — a stand-in sender for tests of the enricher → limiter → batcher path.

    Usage: bench_pipe_sink --pull EP [--sub EP] [--pub EP] [--items]

    Binds a PULL on EP (the [sender] `in` of a test topology), decodes every
    batch (schemas/pipeline.md) and prints one line per batch, flushed:
        B <wall_ms> <owner_id> <pixel_id> <priority> <count>
    and with --items one line per event after it:
        I <pixel_id> <event_id> <time_ms> <capi JSON>
    A message that is not a valid batch prints "X <reason>". With --sub it
    also connects a SUB (all topics) to an enricher's `pub` and prints one
    line per enriched event:
        E <event_id> <pixel_id> <automated 0|1> <reason or -> <event_name>
    With --pub it binds a PUB (the [sender] `outcomes`) and reads commands
    on stdin, one per line:
        throttle <pixel_id> <wait_ms>   publish a THROTTLED outcome
    Runs until SIGINT/SIGTERM (the end of stdin only stops reading it).
*/
#include "rst_clock.h"
#include "rst_pipeline.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

static volatile sig_atomic_t s_stop = 0;

static void
s_on_signal (int sig)
{
    (void) sig;
    s_stop = 1;
}

static void
s_batch (const char *data, size_t len, int items)
{
    char err[256];
    rst_batch_t *b = rst_batch_decode (data, len, err, sizeof err);
    if (!b) {
        printf ("X %s\n", err);
        return;
    }
    printf ("B %lld %lld %s %d %zu\n", (long long) rst_clock_wall_ms (), (long long) b->owner_id,
            b->pixel_id.ptr, b->priority, b->count);
    for (size_t i = 0; items && i < b->count; i++)
        printf ("I %s %s %lld %s\n", b->pixel_id.ptr, b->items[i].event_id.ptr,
                (long long) b->items[i].time_ms, b->items[i].capi.ptr);
    rst_batch_destroy (&b);
}

static void
s_enriched (const char *data, size_t len)
{
    size_t off = 0;
    while (off < len) {
        char err[256];
        rst_enriched_t *e = rst_enriched_decode (data, len, &off, err, sizeof err);
        if (!e) {
            printf ("X %s\n", err);
            continue;
        }
        printf ("E %s %s %d %s %s\n", e->event_id.ptr, e->pixel_id.ptr, e->automated,
                e->automated ? e->automated_reason.ptr : "-", e->event_name.ptr);
        rst_enriched_destroy (&e);
    }
}

static void
s_command (void *pub, const char *line)
{
    char pixel[80];
    long long wait = 0;
    if (sscanf (line, "throttle %79s %lld", pixel, &wait) != 2) {
        fprintf (stderr, "pipe_sink: unknown command: %s", line);
        return;
    }
    rst_outcome_t o = {.kind = RST_OUTCOME_THROTTLED, .pixel_id = rst_str (pixel), .wait_ms = wait};
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    if (rst_outcome_pack (&o, &pk) == 0 && zmq_send (pub, sb.data, sb.size, 0) >= 0)
        printf ("T %lld %s %lld\n", (long long) rst_clock_wall_ms (), pixel, wait);
    msgpack_sbuffer_destroy (&sb);
}

int
main (int argc, char **argv)
{
    const char *pull_ep = NULL, *sub_ep = NULL, *pub_ep = NULL;
    int items = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp (argv[i], "--items"))
            items = 1;
        else if (i + 1 < argc && !strcmp (argv[i], "--pull"))
            pull_ep = argv[++i];
        else if (i + 1 < argc && !strcmp (argv[i], "--sub"))
            sub_ep = argv[++i];
        else if (i + 1 < argc && !strcmp (argv[i], "--pub"))
            pub_ep = argv[++i];
        else {
            fprintf (stderr, "usage: bench_pipe_sink --pull EP [--sub EP] [--pub EP] [--items]\n");
            return 2;
        }
    }
    if (!pull_ep) {
        fprintf (stderr, "usage: bench_pipe_sink --pull EP [--sub EP] [--pub EP] [--items]\n");
        return 2;
    }
    setvbuf (stdout, NULL, _IOLBF, 0);
    struct sigaction sa;
    memset (&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigaction (SIGINT, &sa, NULL);
    sigaction (SIGTERM, &sa, NULL);

    void *ctx = zmq_ctx_new ();
    int linger = 0, hwm = 100000;
    void *pull = zmq_socket (ctx, ZMQ_PULL);
    zmq_setsockopt (pull, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt (pull, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_bind (pull, pull_ep)) {
        fprintf (stderr, "pipe_sink: bind %s: %s\n", pull_ep, zmq_strerror (zmq_errno ()));
        return 1;
    }
    void *sub = NULL, *pub = NULL;
    if (sub_ep) {
        sub = zmq_socket (ctx, ZMQ_SUB);
        zmq_setsockopt (sub, ZMQ_RCVHWM, &hwm, sizeof hwm);
        zmq_setsockopt (sub, ZMQ_LINGER, &linger, sizeof linger);
        zmq_setsockopt (sub, ZMQ_SUBSCRIBE, "", 0);
        zmq_connect (sub, sub_ep);
    }
    if (pub_ep) {
        pub = zmq_socket (ctx, ZMQ_PUB);
        zmq_setsockopt (pub, ZMQ_LINGER, &linger, sizeof linger);
        if (zmq_bind (pub, pub_ep)) {
            fprintf (stderr, "pipe_sink: bind %s: %s\n", pub_ep, zmq_strerror (zmq_errno ()));
            return 1;
        }
    }
    printf ("R ready\n");
    int stdin_open = pub != NULL;
    char line[512];
    size_t have = 0;
    zmq_msg_t msg;
    zmq_msg_init (&msg);
    while (!s_stop) {
        zmq_pollitem_t it[3] = {{pull, 0, ZMQ_POLLIN, 0}, {sub, 0, ZMQ_POLLIN, 0},
                                {NULL, 0, ZMQ_POLLIN, 0}};
        int n = 1;
        if (sub)
            it[n++] = (zmq_pollitem_t){sub, 0, ZMQ_POLLIN, 0};
        if (stdin_open)
            it[n++] = (zmq_pollitem_t){NULL, 0, ZMQ_POLLIN, 0};
        if (zmq_poll (it, n, 200) < 0)
            continue;
        while (zmq_msg_recv (&msg, pull, ZMQ_DONTWAIT) >= 0)
            s_batch (zmq_msg_data (&msg), zmq_msg_size (&msg), items);
        while (sub && zmq_msg_recv (&msg, sub, ZMQ_DONTWAIT) >= 0)
            s_enriched (zmq_msg_data (&msg), zmq_msg_size (&msg));
        if (stdin_open && (it[n - 1].revents & ZMQ_POLLIN)) {
            ssize_t r = read (0, line + have, sizeof line - 1 - have);
            if (r <= 0)
                stdin_open = 0;
            else {
                have += (size_t) r;
                line[have] = 0;
                char *nl;
                while ((nl = strchr (line, '\n'))) {
                    *nl = 0;
                    s_command (pub, line);
                    memmove (line, nl + 1, have - (size_t) (nl + 1 - line) + 1);
                    have -= (size_t) (nl + 1 - line);
                }
                if (have == sizeof line - 1)
                    have = 0;
            }
        }
    }
    zmq_msg_close (&msg);
    zmq_close (pull);
    if (sub)
        zmq_close (sub);
    if (pub)
        zmq_close (pub);
    zmq_ctx_term (ctx);
    return 0;
}
