/*  rastro-limiter — per-pixel token buckets between the enrichers and a batcher.

    A thin main (STYLE.md §1): rst_node reads the arguments, the config and
    the topology; this runs the rst_limiter node until SIGINT/SIGTERM and
    tears it down. What the node does and the guarantees it keeps are in
    lib/rst_limiter.c; the messages in schemas/pipeline.md.
*/
#include "rst_limiter.h"
#include "rst_log.h"
#include "rst_node.h"

#include <signal.h>
#include <string.h>

static volatile sig_atomic_t s_stop = 0;

static void
s_on_signal (int sig)
{
    (void) sig;
    s_stop = 1;
}

int
main (int argc, char **argv)
{
    rst_node_t node;
    int rc = rst_node_start (
        &node, "limiter",
        "Holds every event of a pixel until that pixel's token bucket allows it:\n"
        "pixels.rate_per_s events a second (else [limiter] default_rate), bursts of one\n"
        "second of rate. Events over the rate wait in a FIFO per pixel (Purchase at its\n"
        "front) and are never dropped; THROTTLED outcomes from the senders halve a\n"
        "pixel's rate and pause it, and the rate climbs back while Meta stays calm.\n"
        "Limiter i releases to batcher i.",
        argc, argv);
    if (rc != RST_NODE_RUN)
        return rc;

    struct sigaction sa;
    memset (&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;        //  no SA_RESTART: zmq_poll returns EINTR
    sigaction (SIGINT, &sa, NULL);
    sigaction (SIGTERM, &sa, NULL);
    signal (SIGPIPE, SIG_IGN);

    char err[1024];
    rst_limiter_node_t *limiter = rst_limiter_node_new (&node.cfg, node.topo, node.instance, err,
                                                 sizeof err);
    if (!limiter) {
        rst_error ("limiter", "%s", err);
        rst_node_finish (&node);
        return 1;
    }
    rst_limiter_node_print (limiter);
    rc = rst_limiter_node_run (limiter, &s_stop) ? 1 : 0;
    rst_limiter_node_destroy (&limiter);
    rst_node_finish (&node);
    rst_info ("limiter", "stopped");
    return rc;
}
