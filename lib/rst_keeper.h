/*  rst_keeper — the thread that looks after a node's journal.

    A node that journals events (the front; later the bots node) starts one
    keeper next to its writers, per journal (the front has a second one for
    its inbox journal, with other topology keys: rst_keeper_new_keys). The
    keeper:
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

//  Which topology keys of the node's section a keeper reads, and the prefix
//  of its metric names (so that two keepers in one node render apart).
typedef struct {
    const char *acks;           //  PULL endpoint of the acks, e.g. "acks"
    const char *events;         //  where replays are pushed, e.g. "events"
    const char *sync_ms;        //  fsync interval in ms (absent = 10), e.g. "sync_ms"
    const char *replay_after;   //  seconds before a replay (absent = 5), e.g. "replay_after"
    const char *metric_prefix;  //  e.g. "rastro_journal" → rastro_journal_depth, ...
} rst_keeper_keys_t;

//  The keys of a node's main journal: acks, events, sync_ms, replay_after,
//  metrics rastro_journal_*.
extern const rst_keeper_keys_t rst_keeper_default_keys;

//  Starts the keeper thread for NODE instance INSTANCE of TOPO, looking after
//  JOURNAL (borrowed: it must outlive the keeper), with the default keys.
//  ZMQ_CTX is the process's libzmq context. Returns a new keeper the caller
//  owns, or NULL with a reason in ERR (e.g. the acks endpoint cannot be
//  bound).
rst_keeper_t *rst_keeper_new (rst_journal_t *journal, void *zmq_ctx, const rst_topology_t *topo,
                              const char *node, int instance, char *err, size_t errlen);

//  Like rst_keeper_new, with the topology keys and metric prefix of KEYS
//  (borrowed: its strings must outlive the keeper), e.g. the front's inbox
//  journal: {"inbox_acks", "inbox_out", "sync_ms", "replay_after",
//  "rastro_inbox_journal"}.
rst_keeper_t *rst_keeper_new_keys (rst_journal_t *journal, void *zmq_ctx,
                                   const rst_topology_t *topo, const char *node, int instance,
                                   const rst_keeper_keys_t *keys, char *err, size_t errlen);

//  Stops the thread (a final journal sync included) and frees the keeper;
//  *SELF_P becomes NULL. Safe on NULL.
void rst_keeper_destroy (rst_keeper_t **self_p);

//  Renders the keeper's latest published metrics. Returns a new string the
//  caller frees, or NULL. Thread-safe.
char *rst_keeper_render_metrics (rst_keeper_t *self);

#endif
