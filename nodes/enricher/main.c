/*  rastro-enricher — raw funnel events in, Meta events out.

    A thin main (STYLE.md §1): rst_node reads the arguments, the config and
    the topology; this runs the rst_enricher actor until SIGINT/SIGTERM and
    tears it down. What the node does and the guarantees it keeps are in
    lib/rst_enricher.c; the messages in schemas/events.md (in) and
    schemas/pipeline.md (out).
*/
#include "rst_enricher.h"
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
        &node, "enricher",
        "Turns the raw events the recorders forward into Meta events: joins them with\n"
        "their pool and pixel (cached, refreshed on NOTIFY rastro_config), classifies\n"
        "automated traffic (crawlers, link previews, tools, headless browsers, empty\n"
        "user agents, more than [enricher] ip_rate_per_min requests a minute from one\n"
        "address), publishes every enriched event on `pub`, acknowledges automated ones\n"
        "to their journal (stage meta) and pushes the others to the limiter that owns\n"
        "their pixel. A push to an absent or full limiter is dropped and counted; the\n"
        "front's journal replays the event after [front] replay_after seconds.",
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
    rst_enricher_t *enricher = rst_enricher_new (&node.cfg, node.topo, node.instance, err,
                                                 sizeof err);
    if (!enricher) {
        rst_error ("enricher", "%s", err);
        rst_node_finish (&node);
        return 1;
    }
    rst_enricher_print (enricher);
    rc = rst_enricher_run (enricher, &s_stop) ? 1 : 0;
    rst_enricher_destroy (&enricher);
    rst_node_finish (&node);
    rst_info ("enricher", "stopped");
    return rc;
}
