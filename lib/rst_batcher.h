/*  rst_batcher — per-(owner, pixel) batches for the senders, and the batcher node.

    The core (rst_batcher_t) is pure: events in, batches out, time passed
    in, so "exactly 1,000 → flush", the flush timer and the priority lane
    are unit-tested without sleeping. The node (rst_batcher_node_t) wraps
    it with topology [batcher]'s sockets: PULL `in` from its limiter, one
    PUSH per endpoint of `senders` (batch → sender rst_shard_of (pixel_id,
    n_senders)). States and caveats: rst_batcher.c.
*/
#ifndef RST_BATCHER_H
#define RST_BATCHER_H

#include "rst_config.h"
#include "rst_pipeline.h"
#include "rst_topology.h"

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#define RST_BATCHER_FLUSH_MS_DEFAULT 1000   //  longest wait of a partial batch
#define RST_BATCHER_FLUSH_MS_MAX     1000   //  issue 3 §3: at most 1 s

typedef enum {
    RST_BATCHER_FULL = 0,       //  batch_max events
    RST_BATCHER_TIMER = 1,      //  flush_ms since its oldest event
    RST_BATCHER_PRIORITY = 2,   //  the priority lane (Purchase)
    RST_BATCHER_DRAIN = 3,      //  shutdown: everything pending
} rst_batcher_reason_t;

//  Name of a flush reason ("full", "timer", "priority", "drain").
const char *rst_batcher_reason_name (rst_batcher_reason_t reason);

typedef struct rst_batcher_t rst_batcher_t;

//  Returns a new batcher the caller owns: batches of at most BATCH_MAX
//  (1..RST_META_MAX_EVENTS) events, partial ones flushed FLUSH_MS after
//  their oldest event. NULL on bad arguments or no memory.
rst_batcher_t *rst_batcher_new (size_t batch_max, int64_t flush_ms);
void rst_batcher_destroy (rst_batcher_t **self_p);

//  Adds event E (its strings are copied) at NOW_MS: to the priority lane
//  of its (owner, pixel) when E->priority, else to its normal batch.
//  Returns 0, or -1 when out of memory or E is automated (never batched).
int rst_batcher_add (rst_batcher_t *self, const rst_enriched_t *e, int64_t now_ms);

//  Takes the next batch that is due at NOW_MS (priority lanes first, then
//  full batches, then expired timers; with DRAIN, anything pending).
//  Returns a new batch the caller owns (rst_batch_destroy; created_ms =
//  WALL_MS) with its reason in *REASON (OUT), or NULL when none is due.
rst_batch_t *rst_batcher_take (rst_batcher_t *self, int64_t now_ms, int64_t wall_ms, int drain,
                               rst_batcher_reason_t *reason);

//  Milliseconds from NOW_MS until a batch is due (0 = now), or -1 when
//  nothing is pending.
int64_t rst_batcher_wait_ms (const rst_batcher_t *self, int64_t now_ms);

//  Events pending in all batches.
size_t rst_batcher_pending (const rst_batcher_t *self);

//  --------------------------------------------------------------------------
//  The node

typedef struct rst_batcher_node_t rst_batcher_node_t;

//  Builds batcher INSTANCE from topology [batcher]: binds `in`, connects
//  one PUSH per endpoint of `senders`, reads batch_max and flush_ms. CFG and
//  TOPO are borrowed. Returns a new node or NULL with a reason in ERR.
rst_batcher_node_t *rst_batcher_node_new (const rst_config_t *cfg, const rst_topology_t *topo,
                                          int instance, char *err, size_t errlen);
void rst_batcher_node_destroy (rst_batcher_node_t **self_p);
void rst_batcher_node_print (const rst_batcher_node_t *self);

//  Runs until *STOP, then tries once to send what is pending. Returns 0, or
//  -1 on a failure of ZeroMQ itself.
int rst_batcher_node_run (rst_batcher_node_t *self, volatile sig_atomic_t *stop);

#endif
