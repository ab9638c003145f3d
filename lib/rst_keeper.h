/*  rst_keeper — the thread that looks after a node's journal.

    A node that journals events (the front; later the bots node) starts one
    keeper next to its writers. The keeper:
      - binds the node's `acks` endpoint (PULL) and applies acknowledgements
        from downstream stages to the journal (rst_journal_ack);
      - fsyncs the journal every `sync_ms` (default 10 ms), which bounds what
        a machine crash can lose;
      - replays: entries not acknowledged `replay_after` seconds after they
        were born are pushed again on its own PUSH socket connected to the
        node's `events` endpoints (at most once per replay_after per entry,
        oldest first, never blocking: a full pipe ends the pass); at start,
        everything a previous run left behind is pushed at once;
      - measures the journal (depth, age of the oldest entry) and publishes
        its metrics once a second.

    Ack message (schemas/events.md, decoded by rst_ack_decode): a msgpack map
    {"v":1, "stage":<ack bit>, "seqs":[<seq>, ...]}. Malformed acks are
    counted and dropped.
*/
#ifndef RST_KEEPER_H
#define RST_KEEPER_H

#include "rst_journal.h"
#include "rst_metrics.h"
#include "rst_topology.h"

typedef struct rst_keeper_t rst_keeper_t;

//  Starts the keeper thread for NODE instance INSTANCE of TOPO, looking after
//  JOURNAL (borrowed: it must outlive the keeper). ZMQ_CTX is the process's
//  libzmq context. Returns a new keeper the caller owns, or NULL with a
//  reason in ERR (e.g. the acks endpoint cannot be bound).
rst_keeper_t *rst_keeper_new (rst_journal_t *journal, void *zmq_ctx, const rst_topology_t *topo,
                              const char *node, int instance, char *err, size_t errlen);

//  Stops the thread (a final journal sync included) and frees the keeper;
//  *SELF_P becomes NULL. Safe on NULL.
void rst_keeper_destroy (rst_keeper_t **self_p);

//  Renders the keeper's latest published metrics. Returns a new string the
//  caller frees, or NULL. Thread-safe.
char *rst_keeper_render_metrics (rst_keeper_t *self);

#endif
