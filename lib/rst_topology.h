/*  rst_topology — which nodes run, how many of each, and their endpoints.

    The topology is data (STYLE.md §13): an INI file (topology/local.ini is
    the single-host default) with one section per node kind:

        [front]
        instances = 1
        journal   = {data}/front-{i}/journal       ; {data} = RASTRO_DATA_DIR, {i} = instance
        acks      = @ipc://{data}/run/front-{i}-acks.sock
        events    = recorder.in                    ; reference: connect to every recorder's `in`

        [recorder]
        instances = 1
        in        = @ipc://{data}/run/recorder-{i}-in.sock
        acks      = front.acks

    Values: `{data}` and `{i}` are expanded. An endpoint starting with `@` is
    bound by this node; `>` (or no prefix) is connected to. A value of the form
    `<node>.<key>` that names another section's key is a reference: it
    expands to that key's value for every instance of that node, with `@`
    turned into a connect. Moving from ipc:// on one host to tcp:// across
    hosts is a change of this file only (bind tcp endpoints on a host name or
    address that resolves on the binding host, never `*`, so that the same
    string can be connected to).

    Instances are numbered from 0 to instances - 1 (`instances` absent = 1).
    A value may be a comma-separated list of endpoints and references. Any
    value of the form `word.word` is a reference (a file name must then be
    written `./name.ext`); a reference must name a single endpoint, not
    another reference. An optional `command` key replaces the node's binary
    in `rastro up` (see nodes/rastro/cmd_up.c).

    A node started as `rastro-<node> --topology FILE --instance N` reads its
    own section. The supervisor (`rastro up`) starts `instances` copies of
    every section whose node has a binary. Loaded once, read-only afterwards.
*/
#ifndef RST_TOPOLOGY_H
#define RST_TOPOLOGY_H

#include <stddef.h>

typedef struct rst_topology_t rst_topology_t;

#define RST_TOPOLOGY_MAX_ENDPOINTS 64   //  max endpoints one reference expands to
#define RST_TOPOLOGY_NAME_MAX      64   //  section and key names, NUL included

//  Which node instance an endpoint belongs to (rst_topology_endpoint_owners).
typedef struct {
    char node[RST_TOPOLOGY_NAME_MAX];   //  node kind, e.g. "front"; "" for a literal endpoint
    int instance;                       //  that node's instance; -1 for a literal endpoint
} rst_topology_owner_t;

//  Loads FILE, expanding {data} to DATA_DIR. Returns a new topology the
//  caller owns, or NULL with "file:line: reason" in ERR (syntax error,
//  instances not a positive number, a reference to an unknown node or key).
rst_topology_t *rst_topology_load (const char *file, const char *data_dir, char *err,
                                   size_t errlen);

//  Frees the topology and sets *SELF_P to NULL. Safe on NULL.
void rst_topology_destroy (rst_topology_t **self_p);

//  Number of node sections, in file order.
size_t rst_topology_node_count (const rst_topology_t *self);

//  Name of node section INDEX (borrowed; valid while SELF lives).
const char *rst_topology_node_name (const rst_topology_t *self, size_t index);

//  Instance count of NODE, or 0 if there is no such section.
int rst_topology_instances (const rst_topology_t *self, const char *node);

//  Value of KEY for instance INSTANCE of NODE with {data} and {i} expanded,
//  into OUT. References are NOT expanded here. Returns 0, or -1 if absent
//  (or too long for OUT).
int rst_topology_get (const rst_topology_t *self, const char *node, int instance,
                      const char *key, char *out, size_t outlen);

//  Integer value of KEY, or DEFAULT_VALUE when absent or not a number.
long rst_topology_get_long (const rst_topology_t *self, const char *node, int instance,
                            const char *key, long default_value);

//  Endpoints of KEY for INSTANCE of NODE, ready for ZeroMQ: each entry is
//  "@<endpoint>" (bind) or ">" followed by the endpoint (connect). A reference
//  expands to one connect entry per instance of the node it names. Writes up
//  to MAX pointers to strings into OUT that the caller frees with
//  rst_topology_endpoints_free. Returns the count (>= 1), or -1 with a
//  reason in ERR.
int rst_topology_endpoints (const rst_topology_t *self, const char *node, int instance,
                            const char *key, char **out, size_t max, char *err, size_t errlen);
void rst_topology_endpoints_free (char **list, int count);

//  Owners of the endpoints of KEY, in the order rst_topology_endpoints
//  returns them: an endpoint that a reference `<node>.<key>` expanded to
//  belongs to <node> instance j (the j-th endpoint of that reference); an
//  endpoint written literally belongs to no node ("", -1). Writes up to MAX
//  entries into OUT. Returns the count (the same as rst_topology_endpoints),
//  or -1 with a reason in ERR.
int rst_topology_endpoint_owners (const rst_topology_t *self, const char *node, int instance,
                                  const char *key, rst_topology_owner_t *out, size_t max,
                                  char *err, size_t errlen);

//  Binds or connects SOCKET (a libzmq socket) to every endpoint of KEY as
//  rst_topology_endpoints returns them, creating the directory of an ipc://
//  endpoint that is bound. Returns 0, or -1 with a reason in ERR.
int rst_topology_attach (const rst_topology_t *self, void *socket, const char *node, int instance,
                         const char *key, char *err, size_t errlen);

#endif
