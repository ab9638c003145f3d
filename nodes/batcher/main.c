/*  rastro-batcher — per-pixel batches of up to 1,000 events for the senders.

    A thin main (STYLE.md §1): rst_node reads the arguments, the config and
    the topology; this runs the rst_batcher node until SIGINT/SIGTERM and
    tears it down. What the node does and the guarantees it keeps are in
    lib/rst_batcher.c; the messages in schemas/pipeline.md.
*/
#include "rst_batcher.h"
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
        &node, "batcher",
        "Groups the events its limiter releases by (owner, pixel) into batches of at\n"
        "most [batcher] batch_max events (Meta's limit: 1,000), closed after flush_ms\n"
        "(at most 1 s); Purchase events leave at once through a priority lane. Each\n"
        "batch goes to sender rst_shard_of (pixel, senders); a batch a sender cannot\n"
        "take is kept and retried.",
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
    rst_batcher_node_t *batcher = rst_batcher_node_new (&node.cfg, node.topo, node.instance, err,
                                                 sizeof err);
    if (!batcher) {
        rst_error ("batcher", "%s", err);
        rst_node_finish (&node);
        return 1;
    }
    rst_batcher_node_print (batcher);
    rc = rst_batcher_node_run (batcher, &s_stop) ? 1 : 0;
    rst_batcher_node_destroy (&batcher);
    rst_node_finish (&node);
    rst_info ("batcher", "stopped");
    return rc;
}
