/*  rastro-recorder — stores journaled clicks in PostgreSQL, acks the journals.

    Usage: rastro-recorder --topology FILE --instance N

    A thin main (STYLE.md §1): reads rst_config and the topology, prints the
    effective settings, runs the rst_recorder actor until SIGINT/SIGTERM and
    tears it down. Everything the node does, and the guarantees it keeps,
    are described in lib/rst_recorder.c; the messages in schemas/events.md.
*/
#include "rst_config.h"
#include "rst_log.h"
#include "rst_recorder.h"
#include "rst_topology.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t s_stop = 0;

static void
s_on_signal (int sig)
{
    (void) sig;
    s_stop = 1;
}

static void
s_usage (FILE *out)
{
    fprintf (out,
             "usage: rastro-recorder [--topology FILE] [--instance N] [--help]\n"
             "\n"
             "Stores every click the fronts journaled in PostgreSQL's `clicks` table,\n"
             "in batches (topology [recorder] batch_max, batch_ms), and acknowledges each\n"
             "event to the journal it came from once its batch committed. Normally started\n"
             "by `rastro up`.\n"
             "\n"
             "  --topology FILE  topology file (default: RASTRO_TOPOLOGY or topology/local.ini)\n"
             "  --instance N     which [recorder] instance this is (default 0)\n"
             "  --help           this text\n"
             "\n"
             "Environment: RASTRO_DATA_DIR, RASTRO_DATABASE_URL, RASTRO_CONFIG,\n"
             "RASTRO_LOG_LEVEL (see README.md). Stops cleanly on SIGINT/SIGTERM.\n");
}

int
main (int argc, char **argv)
{
    const char *topology_file = NULL;
    int instance = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp (argv[i], "--help") || !strcmp (argv[i], "-h")) {
            s_usage (stdout);
            return 0;
        }
        else if (!strcmp (argv[i], "--topology") && i + 1 < argc)
            topology_file = argv[++i];
        else if (!strcmp (argv[i], "--instance") && i + 1 < argc) {
            char *end;
            long v = strtol (argv[++i], &end, 10);
            if (*end || end == argv[i] || v < 0 || v > 1000) {
                fprintf (stderr, "rastro-recorder: --instance wants a number 0..1000, not '%s'\n",
                         argv[i]);
                return 2;
            }
            instance = (int) v;
        }
        else {
            fprintf (stderr, "rastro-recorder: unknown or incomplete argument '%s' (try --help)\n",
                     argv[i]);
            return 2;
        }
    }

    struct sigaction sa;
    memset (&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;        //  no SA_RESTART: zmq_poll returns EINTR
    sigaction (SIGINT, &sa, NULL);
    sigaction (SIGTERM, &sa, NULL);
    signal (SIGPIPE, SIG_IGN);

    char err[1024];
    rst_config_t cfg;
    if (rst_config_load (&cfg, err, sizeof err)) {
        rst_error ("recorder", "config: %s", err);
        return 1;
    }
    if (topology_file)     //  so that the effective config printed below is the truth
        snprintf (cfg.topology_file, sizeof cfg.topology_file, "%s", topology_file);
    topology_file = cfg.topology_file;
    rst_topology_t *topo = rst_topology_load (topology_file, cfg.data_dir, err, sizeof err);
    if (!topo) {
        rst_error ("recorder", "topology: %s", err);
        return 1;
    }
    int rc = 1;
    if (instance >= rst_topology_instances (topo, "recorder")) {
        rst_error ("recorder", "topology %s has %d [recorder] instance(s); --instance %d is "
                   "not one of them", topology_file, rst_topology_instances (topo, "recorder"),
                   instance);
        goto done_topo;
    }
    rst_config_print (&cfg, "recorder");
    rst_info ("recorder", "topology = %s", topology_file);
    rst_recorder_t *recorder = rst_recorder_new (&cfg, topo, instance, err, sizeof err);
    if (!recorder) {
        rst_error ("recorder", "%s", err);
        goto done_topo;
    }
    rst_recorder_print (recorder);
    rc = rst_recorder_run (recorder, &s_stop) ? 1 : 0;
    rst_recorder_destroy (&recorder);
    rst_info ("recorder", "stopped");
done_topo:
    rst_topology_destroy (&topo);
    return rc;
}
