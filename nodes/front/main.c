/*  rastro-front — the public HTTP node (redirects, inbound webhooks, health, metrics).

    A thin main (STYLE.md §1): rst_node reads the arguments, the config and
    the topology; this runs rst_front until SIGINT or SIGTERM and writes the
    node's heartbeat file once a second. The signals are blocked in every
    thread and taken here with sigtimedwait.
*/
#include "rst_api_server.h"
#include "rst_front.h"
#include "rst_log.h"
#include "rst_node.h"

#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int
main (int argc, char **argv)
{
    //  --list-routes: every API route as "METHOD PATTERN FLAGS", for tests.
    for (int i = 1; i < argc; i++)
        if (!strcmp (argv[i], "--list-routes")) {
            rst_api_list_routes (stdout);
            return 0;
        }
    rst_node_t node;
    int rc = rst_node_start (
        &node, "front",
        "Serves GET /go/<slug> (302 to the pool's Telegram bot, the click journaled first),\n"
        "POST /telegram/<bot> (Telegram updates) and POST /webhook/<gateway> (PIX payment\n"
        "notices: mercadopago, pushinpay, syncpay), both authenticated and fsynced into the\n"
        "inbox journal before the 200, then handed to the bots node; /healthz and /metrics;\n"
        "on RASTRO_HTTP_PORT (default 8080) with RASTRO_HTTP_THREADS event loops (default:\n"
        "half the cores). The dashboard's JSON API under /api/v1 (RASTRO_API_THREADS workers)\n"
        "and its static files at / (RASTRO_WEB_DIR).\n\n"
        "  --list-routes    print every API route as \"METHOD PATTERN FLAGS\" and exit\n"
        "                   (FLAGS: public, session, or session,csrf)",
        argc, argv);
    if (rc != RST_NODE_RUN)
        return rc;

    //  API answers of 100 KB and more are built, copied and freed on every
    //  request: keep such blocks on the heap and the freed memory mapped,
    //  instead of glibc's default of mmap/munmap (or trimming) around them,
    //  whose page faults cost more than building the answer (bench/api.sh).
    mallopt (M_MMAP_THRESHOLD, 4 * 1024 * 1024);
    mallopt (M_TRIM_THRESHOLD, 32 * 1024 * 1024);
    signal (SIGPIPE, SIG_IGN);
    //  Every thread inherits this mask; only sigtimedwait below takes the signals.
    sigset_t stop_signals;
    sigemptyset (&stop_signals);
    sigaddset (&stop_signals, SIGINT);
    sigaddset (&stop_signals, SIGTERM);
    pthread_sigmask (SIG_BLOCK, &stop_signals, NULL);

    char err[1024];
    rst_front_t *front = rst_front_new (&node.cfg, node.topo, node.instance, err, sizeof err);
    if (!front) {
        rst_error ("front", "%s", err);
        rst_node_finish (&node);
        return 1;
    }
    rst_info ("front", "listening on port %d with %d threads", node.cfg.http_port,
              node.cfg.http_threads);
    for (;;) {
        struct timespec second = {1, 0};
        int sig = sigtimedwait (&stop_signals, NULL, &second);
        if (sig == SIGINT || sig == SIGTERM) {
            rst_info ("front", "%s received, stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
            break;
        }
        if (rst_front_heartbeat (front))
            rst_warn ("front", "cannot write the heartbeat file under %s/run", node.cfg.data_dir);
    }
    rst_front_destroy (&front);
    rst_node_finish (&node);
    rst_info ("front", "stopped");
    return 0;
}
