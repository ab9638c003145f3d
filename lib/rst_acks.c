/*  rst_acks — acknowledgements back to the journals events came from.

    See rst_acks.h for the routing rules. Each endpoint i has its socket,
    its endpoint string (for logs), its owner (node, instance) from the
    topology and a queue of seqs added since the last flush (grown by
    doubling, kept between flushes so that a steady load allocates
    nothing).

    Failure handling: a src that routes nowhere is bad input from another
    node (or a topology that does not list its journal): counted as failed,
    never asserted. A send that libzmq refuses (HWM reached, and with
    RST_ZSOCK_IMMEDIATE no peer connected) is counted and logged at debug
    level; the journal replays the event after its replay_after.
*/
#include "rst_acks.h"
#include "rst_event.h"
#include "rst_log.h"
#include "rst_zsock.h"

#include <assert.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define S_MAX_ENDPOINTS     RST_TOPOLOGY_MAX_ENDPOINTS
#define S_INSTANCE_DIGITS   6       //  longest instance number accepted in a src
#define S_QUEUE_MIN         256     //  first allocation of a queue, in seqs

typedef struct {
    uint64_t *seqs;                 //  queued since the last flush (grown)
    size_t count, cap;
} s_queue_t;

struct rst_acks_t {
    char cls[RST_TOPOLOGY_NAME_MAX];        //  log class (the owning node)
    char key[RST_TOPOLOGY_NAME_MAX];        //  topology key, for the config print
    int count;                              //  endpoints
    void *socks[S_MAX_ENDPOINTS];           //  PUSH per endpoint
    char *endpoints[S_MAX_ENDPOINTS];       //  "@..." or ">..." (owned, rst_topology)
    rst_topology_owner_t owners[S_MAX_ENDPOINTS];   //  whose journal each one is
    s_queue_t queues[S_MAX_ENDPOINTS];      //  rst_acks_add, per endpoint
    size_t add_failed;                      //  seqs rst_acks_add could not queue
    msgpack_sbuffer buf;                    //  scratch: one packed ack message
};

rst_acks_t *
rst_acks_new (void *zmq_ctx, const rst_topology_t *topo, const char *node, int instance,
              const char *key, unsigned flags, char *err, size_t errlen)
{
    assert (zmq_ctx);
    assert (topo);
    assert (node);
    assert (key);
    rst_acks_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, errlen, "%s: out of memory", node);
        return NULL;
    }
    snprintf (self->cls, sizeof self->cls, "%s", node);
    snprintf (self->key, sizeof self->key, "%s", key);
    msgpack_sbuffer_init (&self->buf);
    int count = rst_zsock_each (zmq_ctx, topo, node, instance, key, ZMQ_PUSH, RST_ACKS_HWM,
                                RST_ACKS_LINGER_MS, flags, self->socks, self->endpoints,
                                S_MAX_ENDPOINTS, err, errlen);
    if (count < 0)
        goto fail;
    self->count = count;
    if (rst_topology_endpoint_owners (topo, node, instance, key, self->owners, S_MAX_ENDPOINTS,
                                      err, errlen) != count)
        goto fail;
    return self;
fail:
    rst_acks_destroy (&self);
    return NULL;
}

void
rst_acks_destroy (rst_acks_t **self_p)
{
    assert (self_p);
    rst_acks_t *self = *self_p;
    if (!self)
        return;
    for (int i = 0; i < self->count; i++) {
        if (self->socks[i])
            zmq_close (self->socks[i]);
        free (self->queues[i].seqs);
    }
    rst_topology_endpoints_free (self->endpoints, self->count);
    msgpack_sbuffer_destroy (&self->buf);
    free (self);
    *self_p = NULL;
}

int
rst_acks_count (const rst_acks_t *self)
{
    assert (self);
    return self->count;
}

void
rst_acks_print (const rst_acks_t *self, const char *what, const char *note)
{
    assert (self);
    for (int i = 0; i < self->count; i++) {
        const rst_topology_owner_t *o = &self->owners[i];
        rst_info (self->cls, "%s[%d] = %s (PUSH; %s from %s.%d%s)", self->key, i,
                  self->endpoints[i], what, o->node[0] ? o->node : "<node>",
                  o->node[0] ? o->instance : i, note);
    }
}

int
rst_acks_route (const rst_acks_t *self, const char *src, size_t src_len)
{
    assert (self);
    const char *dot = src ? memchr (src, '.', src_len) : NULL;
    if (!dot)
        return -1;
    size_t node_len = (size_t) (dot - src);
    const char *p = dot + 1, *end = src + src_len;
    if (p == end || end - p > S_INSTANCE_DIGITS)
        return -1;
    int instance = 0;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        instance = instance * 10 + (*p - '0');
    }
    for (int i = 0; i < self->count; i++) {
        const rst_topology_owner_t *o = &self->owners[i];
        if (o->instance == instance && strlen (o->node) == node_len
            && !memcmp (o->node, src, node_len))
            return i;
    }
    //  A literal endpoint takes the instance number of its position.
    if (instance < self->count && !self->owners[instance].node[0])
        return instance;
    return -1;
}

//  Sends SEQS[0..COUNT) with STAGE on endpoint I and adds to TALLY.
static void
s_send (rst_acks_t *self, int i, unsigned stage, const uint64_t *seqs, size_t count,
        rst_acks_tally_t *tally)
{
    for (size_t from = 0; from < count; from += RST_ACK_MAX_SEQS) {
        size_t chunk = count - from < RST_ACK_MAX_SEQS ? count - from : RST_ACK_MAX_SEQS;
        msgpack_sbuffer_clear (&self->buf);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &self->buf, msgpack_sbuffer_write);
        int rc = rst_ack_pack (&pk, stage, seqs + from, chunk);
        assert (rc == 0);
        if (zmq_send (self->socks[i], self->buf.data, self->buf.size, ZMQ_DONTWAIT) < 0) {
            tally->failed += chunk;
            rst_debug (self->cls, "ack of %zu seqs to %s: libzmq: %s", chunk,
                       self->endpoints[i], zmq_strerror (zmq_errno ()));
        }
        else
            tally->sent += chunk;
    }
}

rst_acks_tally_t
rst_acks_send (rst_acks_t *self, const char *src, size_t src_len, unsigned stage,
               const uint64_t *seqs, size_t count)
{
    assert (self);
    rst_acks_tally_t tally = {0, 0};
    int i = rst_acks_route (self, src, src_len);
    if (i < 0)
        tally.failed = count;
    else
        s_send (self, i, stage, seqs, count, &tally);
    return tally;
}

int
rst_acks_add (rst_acks_t *self, const char *src, size_t src_len, uint64_t seq)
{
    assert (self);
    int i = rst_acks_route (self, src, src_len);
    if (i < 0) {
        self->add_failed++;
        return -1;
    }
    s_queue_t *q = &self->queues[i];
    if (q->count == q->cap) {
        size_t cap = q->cap ? 2 * q->cap : S_QUEUE_MIN;
        uint64_t *grown = realloc (q->seqs, cap * sizeof *grown);
        if (!grown) {
            self->add_failed++;     //  replayed by its journal, acked then
            return 0;
        }
        q->seqs = grown;
        q->cap = cap;
    }
    q->seqs[q->count++] = seq;
    return 0;
}

rst_acks_tally_t
rst_acks_flush (rst_acks_t *self, unsigned stage)
{
    assert (self);
    rst_acks_tally_t tally = {0, self->add_failed};
    self->add_failed = 0;
    for (int i = 0; i < self->count; i++) {
        s_queue_t *q = &self->queues[i];
        if (q->count)
            s_send (self, i, stage, q->seqs, q->count, &tally);
        q->count = 0;
    }
    return tally;
}
