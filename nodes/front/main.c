/*  rastro-front — the public HTTP node (redirects, health, metrics).

    Usage: rastro-front --topology FILE --instance N
    Reads rst_config (RASTRO_* environment) and its [front] section of the
    topology, prints the effective config, runs rst_front until SIGINT or
    SIGTERM, and writes its heartbeat file once a second.
*/
#include "rst_config.h"
#include "rst_front.h"
#include "rst_log.h"
#include "rst_topology.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void
s_usage (FILE *out)
{
    fprintf (out, "usage: rastro-front [--topology FILE] [--instance N]\n"
                  "Serves GET /go/<slug> (302 to the pool's Telegram bot, click journaled first),\n"
                  "/healthz and /metrics on RASTRO_HTTP_PORT (default 8080). Normally started by\n"
                  "`rastro up`; see README.md for every RASTRO_* variable.\n");
}

int
main (int argc, char **argv)
{
    const char *topology = NULL;
    int instance = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp (argv[i], "--help") || !strcmp (argv[i], "-h")) {
            s_usage (stdout);
            return 0;
        }
        else if (!strcmp (argv[i], "--topology") && i + 1 < argc)
            topology = argv[++i];
        else if (!strcmp (argv[i], "--instance") && i + 1 < argc)
            instance = atoi (argv[++i]);
        else {
            fprintf (stderr, "rastro-front: unknown argument '%s'\n", argv[i]);
            s_usage (stderr);
            return 2;
        }
    }
    signal (SIGPIPE, SIG_IGN);
    //  Every thread inherits this mask; only sigtimedwait below takes the signals.
    sigset_t stop_signals;
    sigemptyset (&stop_signals);
    sigaddset (&stop_signals, SIGINT);
    sigaddset (&stop_signals, SIGTERM);
    pthread_sigmask (SIG_BLOCK, &stop_signals, NULL);

    rst_config_t cfg;
    char err[1024];
    if (rst_config_load (&cfg, err, sizeof err)) {
        rst_error ("front", "%s", err);
        return 1;
    }
    if (topology)          //  so that the effective config printed below is the truth
        snprintf (cfg.topology_file, sizeof cfg.topology_file, "%s", topology);
    rst_topology_t *topo = rst_topology_load (cfg.topology_file, cfg.data_dir, err, sizeof err);
    if (!topo) {
        rst_error ("front", "%s", err);
        return 1;
    }
    if (instance < 0 || instance >= rst_topology_instances (topo, "front")) {
        rst_error ("front", "instance %d is not in the topology's [front] section", instance);
        rst_topology_destroy (&topo);
        return 2;
    }
    rst_info ("front", "instance %d starting", instance);
    rst_config_print (&cfg, "front");
    rst_front_t *front = rst_front_new (&cfg, topo, instance, err, sizeof err);
    if (!front) {
        rst_error ("front", "%s", err);
        rst_topology_destroy (&topo);
        return 1;
    }
    rst_info ("front", "listening on port %d with %d threads", cfg.http_port, cfg.http_threads);
    for (;;) {
        struct timespec second = {1, 0};
        int sig = sigtimedwait (&stop_signals, NULL, &second);
        if (sig == SIGINT || sig == SIGTERM) {
            rst_info ("front", "%s received, stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
            break;
        }
        if (rst_front_heartbeat (front))
            rst_warn ("front", "cannot write the heartbeat file under %s/run", cfg.data_dir);
    }
    rst_front_destroy (&front);
    rst_topology_destroy (&topo);
    rst_info ("front", "stopped");
    return 0;
}
