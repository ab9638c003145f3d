/*  rst_node — the start-up every node binary shares.

    `rastro-<name> [--topology FILE] [--instance N] [--help]`: parses those
    arguments, loads rst_config and the topology, checks that the instance
    exists in the topology's [<name>] section, and prints the effective
    config (STYLE.md §13). The node's own main then starts its actor.
*/
#ifndef RST_NODE_H
#define RST_NODE_H

#include "rst_config.h"
#include "rst_topology.h"

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

#endif
