/*  rst_node — the start-up every node binary shares.

    `rastro-<name> [--topology FILE] [--instance N] [--help]`: parses those
    arguments, loads rst_config and the topology, checks that the instance
    exists in the topology's [<name>] section, and prints the effective
    config (STYLE.md §13). The node's own main then starts its actor.

    Most nodes' actors have the same four methods (new, print, run until a
    stop flag is set, destroy); for them the whole main is rst_node_main
    with an RST_NODE_ACTOR table. It stops the actor on SIGINT/SIGTERM
    (handlers without SA_RESTART, so that zmq_poll returns EINTR) and
    ignores SIGPIPE. The front has its own main (signals taken with
    sigtimedwait, heartbeat written by main).
*/
#ifndef RST_NODE_H
#define RST_NODE_H

#include "rst_config.h"
#include "rst_topology.h"

#include <signal.h>
#include <stddef.h>

#define RST_NODE_RUN (-1)   //  rst_node_start: go on and run the node

typedef struct {
    const char *name;       //  node kind, e.g. "front" (borrowed)
    rst_config_t cfg;       //  effective config (topology_file is the one loaded)
    rst_topology_t *topo;   //  owned; freed by rst_node_finish
    int instance;           //  this process's instance of [name]
} rst_node_t;

//  Fills SELF from ARGV. ABOUT is the node's description for --help (printed
//  after the usage line). Returns RST_NODE_RUN, or the exit status the caller
//  must return: 0 after --help, 2 for bad arguments, 1 when the config or the
//  topology cannot be loaded (the reason is logged).
int rst_node_start (rst_node_t *self, const char *name, const char *about, int argc, char **argv);

//  Frees what rst_node_start loaded. Safe to call twice.
void rst_node_finish (rst_node_t *self);

//  An actor as rst_node_main drives it; declare one with RST_NODE_ACTOR.
typedef struct {
    //  Returns a new actor, or NULL with a reason in ERR. CFG and TOPO
    //  outlive it.
    void *(*new_fn) (const rst_config_t *cfg, const rst_topology_t *topo, int instance,
                     char *err, size_t errlen);
    void (*print_fn) (const void *actor);                           //  effective settings
    int (*run_fn) (void *actor, volatile sig_atomic_t *stop);       //  0, or -1 on failure
    void (*destroy_fn) (void *actor);                               //  frees the actor
} rst_node_actor_t;

//  Defines NAME, a static rst_node_actor_t for the class PREFIX (type
//  PREFIX_t, methods PREFIX_new, PREFIX_print, PREFIX_run and
//  PREFIX_destroy with the usual signatures), through typed wrappers.
#define RST_NODE_ACTOR(name, prefix)                                                           \
    static void *name##_new (const rst_config_t *cfg, const rst_topology_t *topo, int instance, \
                             char *err, size_t errlen)                                          \
    {                                                                                           \
        return prefix##_new (cfg, topo, instance, err, errlen);                                 \
    }                                                                                           \
    static void name##_print (const void *actor) { prefix##_print (actor); }                    \
    static int name##_run (void *actor, volatile sig_atomic_t *stop)                            \
    {                                                                                           \
        return prefix##_run (actor, stop);                                                      \
    }                                                                                           \
    static void name##_destroy (void *actor)                                                    \
    {                                                                                           \
        prefix##_t *self = actor;                                                               \
        prefix##_destroy (&self);                                                               \
    }                                                                                           \
    static const rst_node_actor_t name = {name##_new, name##_print, name##_run, name##_destroy}

//  The whole main of a node binary: rst_node_start (NAME, ABOUT, ARGC,
//  ARGV), then ACTOR's new, print and run until SIGINT or SIGTERM, then
//  destroy and rst_node_finish. Returns the process exit status: that of
//  rst_node_start when it does not run the node, 1 when the actor cannot
//  be built (the reason is logged) or its run failed, else 0.
int rst_node_main (const char *name, const char *about, const rst_node_actor_t *actor, int argc,
                   char **argv);

#endif
