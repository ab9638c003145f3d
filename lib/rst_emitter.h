/*  rst_emitter — where the bots node's funnel events are born.

    The chat events (start → ViewContent, checkout → InitiateCheckout,
    payment → Purchase; schemas/events.md) are written to the bots node's own
    LMDB journal in strict mode (fsynced before rst_emitter_emit returns),
    then pushed to the recorders (`events` of the node's topology section,
    never blocking). A keeper thread (rst_keeper) applies the acks of the
    recorder and the Meta path and replays what is not acknowledged, exactly
    as for the front's clicks. Event ids are chosen by the caller and
    deterministic (e.g. "pur-<payment id>"), so emitting the same action twice
    after a crash is harmless: every stage de-duplicates by event_id.

    Thread-safe: the bots node's workers share one emitter (a mutex around
    the journal write and the PUSH socket).
*/
#ifndef RST_EMITTER_H
#define RST_EMITTER_H

#include "rst_event.h"
#include "rst_topology.h"

typedef struct rst_emitter_t rst_emitter_t;

//  Opens the journal (topology key `journal` of NODE/INSTANCE, required
//  acks `required_acks`), starts its keeper and connects the PUSH socket to
//  `events`. ZMQ_CTX is borrowed and must outlive the emitter. Returns a new
//  emitter the caller owns, or NULL with a reason in ERR.
rst_emitter_t *rst_emitter_new (void *zmq_ctx, const rst_topology_t *topo, const char *node,
                                int instance, char *err, size_t errlen);

//  Stops the keeper, closes the journal and the socket, sets *SELF_P to NULL.
void rst_emitter_destroy (rst_emitter_t **self_p);

//  Stamps EVENT's src and seq, journals it durably and pushes it. The
//  caller fills everything else (rst_event_init first). Returns 0 when the
//  event is kept, or -1 with a reason in ERR (nothing was kept: the caller
//  must not act as if it was).
int rst_emitter_emit (rst_emitter_t *self, rst_event_t *event, char *err, size_t errlen);

//  Events emitted so far, and the keeper's metrics text (a new string the
//  caller frees, or NULL).
unsigned long rst_emitter_count (rst_emitter_t *self);
char *rst_emitter_render_metrics (rst_emitter_t *self);

#endif
