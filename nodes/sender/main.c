/*  rastro-sender — delivers batches to Meta's Conversions API.

    A thin main (STYLE.md §1): rst_node reads the arguments, the config and
    the topology; this runs the rst_sender actor until SIGINT/SIGTERM and
    tears it down. What the node does, the states of a batch and the
    guarantees it keeps are described in lib/rst_sender.c and lib/rst_spool.c.
*/
#include "rst_log.h"
#include "rst_node.h"
#include "rst_sender.h"

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
        &node, "sender",
        "Posts the batchers' batches to Meta's Conversions API\n"
        "(RASTRO_META_GRAPH_URL/RASTRO_META_API_VERSION/<pixel>/events). Every batch\n"
        "stays in an LMDB spool (topology [sender] spool) until Meta accepted it or it\n"
        "was dead-lettered; transient failures are retried with backoff, permanent ones\n"
        "go to dead_letters (`rastro dlq`). Settings: [sender] timeout_ms, max_inflight,\n"
        "pixel_inflight, backoff_min_ms, backoff_max_ms, spool_max_mb.",
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
    rst_sender_t *sender = rst_sender_new (&node.cfg, node.topo, node.instance, err, sizeof err);
    if (!sender) {
        rst_error ("sender", "%s", err);
        rst_node_finish (&node);
        return 1;
    }
    rst_sender_print (sender);
    rc = rst_sender_run (sender, &s_stop) ? 1 : 0;
    rst_sender_destroy (&sender);
    rst_node_finish (&node);
    rst_info ("sender", "stopped");
    return rc;
}
