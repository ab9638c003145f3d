/*  rst_node — see rst_node.h.
*/
#include "rst_node.h"
#include "rst_log.h"

#include <assert.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_INSTANCE_MAX 1000
#define S_ERR_MAX      1024

//  The interrupt flag (STYLE.md §5: the one mutable global allowed).
static volatile sig_atomic_t s_stop = 0;

static void
s_on_signal (int sig)
{
    (void) sig;
    s_stop = 1;
}

static void
s_usage (FILE *out, const char *name, const char *about)
{
    fprintf (out,
             "usage: rastro-%s [--topology FILE] [--instance N] [--help]\n\n%s\n\n"
             "  --topology FILE  topology file (default: RASTRO_TOPOLOGY or topology/local.ini)\n"
             "  --instance N     which [%s] instance of the topology this is (default 0)\n"
             "  --help           this text\n\n"
             "Normally started by `rastro up`. Environment: RASTRO_DATA_DIR,\n"
             "RASTRO_DATABASE_URL, RASTRO_CONFIG, RASTRO_LOG_LEVEL and the others in\n"
             "README.md. Stops cleanly on SIGINT/SIGTERM.\n",
             name, about, name);
}

int
rst_node_start (rst_node_t *self, const char *name, const char *about, int argc, char **argv)
{
    memset (self, 0, sizeof *self);
    self->name = name;
    const char *topology = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp (argv[i], "--help") || !strcmp (argv[i], "-h")) {
            s_usage (stdout, name, about);
            return 0;
        }
        else if (!strcmp (argv[i], "--topology") && i + 1 < argc)
            topology = argv[++i];
        else if (!strcmp (argv[i], "--instance") && i + 1 < argc) {
            char *end;
            long v = strtol (argv[++i], &end, 10);
            if (*end || end == argv[i] || v < 0 || v > S_INSTANCE_MAX) {
                fprintf (stderr, "rastro-%s: --instance wants a number 0..%d, not '%s'\n", name,
                         S_INSTANCE_MAX, argv[i]);
                return 2;
            }
            self->instance = (int) v;
        }
        else {
            fprintf (stderr, "rastro-%s: unknown or incomplete argument '%s' (try --help)\n",
                     name, argv[i]);
            return 2;
        }
    }
    char err[1024];
    if (rst_config_load (&self->cfg, err, sizeof err)) {
        rst_error (name, "config: %s", err);
        return 1;
    }
    if (topology)       //  so that the effective config printed below is the truth
        snprintf (self->cfg.topology_file, sizeof self->cfg.topology_file, "%s", topology);
    self->topo = rst_topology_load (self->cfg.topology_file, self->cfg.data_dir, err, sizeof err);
    if (!self->topo) {
        rst_error (name, "topology: %s", err);
        return 1;
    }
    int instances = rst_topology_instances (self->topo, name);
    if (self->instance >= instances) {
        rst_error (name, "topology %s has %d [%s] instance(s); --instance %d is not one of them",
                   self->cfg.topology_file, instances, name, self->instance);
        rst_node_finish (self);
        return 2;
    }
    rst_info (name, "instance %d starting", self->instance);
    rst_config_print (&self->cfg, name);
    return RST_NODE_RUN;
}

void
rst_node_finish (rst_node_t *self)
{
    rst_topology_destroy (&self->topo);
}

int
rst_node_main (const char *name, const char *about, const rst_node_actor_t *actor, int argc,
               char **argv)
{
    assert (actor);
    rst_node_t node;
    int rc = rst_node_start (&node, name, about, argc, argv);
    if (rc != RST_NODE_RUN)
        return rc;

    struct sigaction sa;
    memset (&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;        //  no SA_RESTART: zmq_poll returns EINTR
    sigaction (SIGINT, &sa, NULL);
    sigaction (SIGTERM, &sa, NULL);
    signal (SIGPIPE, SIG_IGN);

    char err[S_ERR_MAX];
    void *self = actor->new_fn (&node.cfg, node.topo, node.instance, err, sizeof err);
    if (!self) {
        rst_error (name, "%s", err);
        rst_node_finish (&node);
        return 1;
    }
    actor->print_fn (self);
    rc = actor->run_fn (self, &s_stop) ? 1 : 0;
    actor->destroy_fn (self);
    rst_node_finish (&node);
    rst_info (name, "stopped");
    return rc;
}
