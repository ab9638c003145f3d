/*  rst_acks — acknowledgements back to the journals events came from.

    Every journaled event carries `src`, "<node>.<instance>" of the journal
    that wrote it (schemas/events.md). A stage that is done with an event
    (the recorder once it is stored, the sender once it is spooled, the
    enricher for automated traffic) sends its seq back to that journal in an
    ack map (rst_ack_pack, at most RST_ACK_MAX_SEQS seqs a message).

    rst_acks holds one PUSH socket per endpoint of a topology key (usually
    `acks`), connected (or bound, for an `@` endpoint), HWM
    RST_ACKS_HWM and LINGER RST_ACKS_LINGER_MS. The key may list several
    references, one per kind of journaling node:

        acks = front.acks, bots.acks

    An event is routed by its src to the endpoint whose owner
    (rst_topology_endpoint_owners) is that node and instance. A literal
    endpoint (`>ipc://...`, no reference) has no owner; it takes the events
    of any node whose instance number is its position in the list, which is
    how a single literal endpoint or a list of them always worked.

    Two ways to send: rst_acks_send for seqs that all come from one src, or
    rst_acks_add for each event then rst_acks_flush, which groups the seqs
    per journal. Sends never block (ZMQ_DONTWAIT): an ack that cannot be
    sent is counted as failed and the journal replays its event, which the
    stages take again idempotently. The owner keeps its own metrics from
    the tallies returned. One thread only (STYLE.md §5).
*/
#ifndef RST_ACKS_H
#define RST_ACKS_H

#include "rst_topology.h"

#include <stddef.h>
#include <stdint.h>

#define RST_ACKS_HWM        10000   //  messages queued per journal
#define RST_ACKS_LINGER_MS  1000    //  bounded: never hang in zmq_ctx_term

typedef struct rst_acks_t rst_acks_t;

//  How many seqs a send or flush acknowledged, and how many it could not
//  (no socket for their src, a failed send, out of memory).
typedef struct {
    size_t sent;
    size_t failed;
} rst_acks_tally_t;

//  Opens one PUSH per endpoint of KEY in the topology section of NODE,
//  instance INSTANCE, on ZMQ_CTX (borrowed; must outlive the acks). FLAGS
//  are rst_zsock flags (RST_ZSOCK_IMMEDIATE or 0). NODE also names the log
//  class. Returns a new rst_acks the caller owns, or NULL with a reason in
//  ERR (KEY absent or not endpoints, a socket that cannot attach).
rst_acks_t *rst_acks_new (void *zmq_ctx, const rst_topology_t *topo, const char *node,
                          int instance, const char *key, unsigned flags, char *err,
                          size_t errlen);

//  Closes the sockets, frees the acks and sets *SELF_P to NULL. Seqs added
//  but not flushed are dropped (their journals replay them). Safe on NULL.
void rst_acks_destroy (rst_acks_t **self_p);

//  Number of endpoints (journals that can be acked).
int rst_acks_count (const rst_acks_t *self);

//  Logs one line per endpoint: "<key>[i] = <endpoint> (PUSH; WHAT from
//  <node>.<instance>NOTE)". NOTE may be "".
void rst_acks_print (const rst_acks_t *self, const char *what, const char *note);

//  Index of the endpoint that acks events from SRC[0..SRC_LEN), or -1 when
//  no endpoint does (a malformed src, a node or instance not in the key).
int rst_acks_route (const rst_acks_t *self, const char *src, size_t src_len);

//  Sends SEQS[0..COUNT) with STAGE to the journal of SRC, RST_ACK_MAX_SEQS
//  per message. Returns the tally: all COUNT failed when SRC has no
//  endpoint.
rst_acks_tally_t rst_acks_send (rst_acks_t *self, const char *src, size_t src_len,
                                unsigned stage, const uint64_t *seqs, size_t count);

//  Queues SEQ for the journal of SRC until the next rst_acks_flush. Returns
//  0, or -1 when SRC has no endpoint (the seq is counted as failed in the
//  next flush; the caller may log the event). Out of memory also counts
//  the seq as failed, but returns 0.
int rst_acks_add (rst_acks_t *self, const char *src, size_t src_len, uint64_t seq);

//  Sends every queued seq with STAGE, one group per journal, and empties
//  the queues. Returns the tally, failures of rst_acks_add included.
rst_acks_tally_t rst_acks_flush (rst_acks_t *self, unsigned stage);

#endif
