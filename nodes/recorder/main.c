/*  rastro-recorder — stores journaled clicks in PostgreSQL, acks the journals.

    A thin main (STYLE.md §1): rst_node reads the arguments, the config and
    the topology; this runs the rst_recorder actor until SIGINT/SIGTERM and
    tears it down. Everything the node does, and the guarantees it keeps,
    are described in lib/rst_recorder.c; the messages in schemas/events.md.
*/
#include "rst_log.h"
#include "rst_node.h"
#include "rst_recorder.h"

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
        &node, "recorder",
        "Stores every click the fronts journaled in PostgreSQL's `clicks` table, in\n"
        "batches (topology [recorder] batch_max, batch_ms), and acknowledges each event\n"
        "to the journal it came from once its batch committed.",
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
    rst_recorder_t *recorder = rst_recorder_new (&node.cfg, node.topo, node.instance, err,
                                                 sizeof err);
    if (!recorder) {
        rst_error ("recorder", "%s", err);
        rst_node_finish (&node);
        return 1;
    }
    rst_recorder_print (recorder);
    rc = rst_recorder_run (recorder, &s_stop) ? 1 : 0;
    rst_recorder_destroy (&recorder);
    rst_node_finish (&node);
    rst_info ("recorder", "stopped");
    return rc;
}
