/*  rst_emitter — see rst_emitter.h. */
#include "rst_emitter.h"
#include "rst_journal.h"
#include "rst_keeper.h"
#include "rst_zsock.h"

#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define S_PUSH_HWM       10000
#define S_PUSH_LINGER_MS 500
#define S_MAX_PEERS      16

struct rst_emitter_t {
    pthread_mutex_t lock;           //  guards everything below
    char src[RST_EVENT_SHORT_MAX + 1];
    rst_journal_t *journal;
    rst_keeper_t *keeper;
    void *push[S_MAX_PEERS];        //  one PUSH per recorder (round-robin by seq)
    char *push_eps[S_MAX_PEERS];
    int npush;
    msgpack_sbuffer buf;
    unsigned long emitted;
};

rst_emitter_t *
rst_emitter_new (void *zmq_ctx, const rst_topology_t *topo, const char *node, int instance,
                 char *err, size_t errlen)
{
    assert (zmq_ctx && topo && node);
    rst_emitter_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, errlen, "%s: out of memory", node);
        return NULL;
    }
    pthread_mutex_init (&self->lock, NULL);
    msgpack_sbuffer_init (&self->buf);
    snprintf (self->src, sizeof self->src, "%s.%d", node, instance);

    char dir[1024], acks[256];
    if (rst_topology_get (topo, node, instance, "journal", dir, sizeof dir)) {
        snprintf (err, errlen, "topology: [%s] needs `journal` (a directory)", node);
        goto fail;
    }
    if (rst_topology_get (topo, node, instance, "required_acks", acks, sizeof acks))
        snprintf (acks, sizeof acks, "stored, meta");
    unsigned mask = rst_journal_acks_parse (acks);
    if (!mask) {
        snprintf (err, errlen, "topology: [%s] required_acks: unknown ack in \"%s\" "
                               "(use stored, meta)", node, acks);
        goto fail;
    }
    self->journal = rst_journal_new (dir, mask, 0, err, errlen);
    if (!self->journal)
        goto fail;
    self->keeper = rst_keeper_new (self->journal, zmq_ctx, topo, node, instance, err, errlen);
    if (!self->keeper)
        goto fail;
    self->npush = rst_zsock_each (zmq_ctx, topo, node, instance, "events", ZMQ_PUSH, S_PUSH_HWM,
                                  S_PUSH_LINGER_MS, RST_ZSOCK_IMMEDIATE, self->push,
                                  self->push_eps, S_MAX_PEERS, err, errlen);
    if (self->npush < 0) {
        self->npush = 0;
        goto fail;
    }
    return self;
fail:
    rst_emitter_destroy (&self);
    return NULL;
}

void
rst_emitter_destroy (rst_emitter_t **self_p)
{
    assert (self_p);
    rst_emitter_t *self = *self_p;
    if (!self)
        return;
    for (int i = 0; i < self->npush; i++)
        if (self->push[i])
            zmq_close (self->push[i]);
    rst_topology_endpoints_free (self->push_eps, self->npush);
    rst_keeper_destroy (&self->keeper);
    rst_journal_destroy (&self->journal);
    msgpack_sbuffer_destroy (&self->buf);
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

int
rst_emitter_emit (rst_emitter_t *self, rst_event_t *event, char *err, size_t errlen)
{
    assert (self && event);
    pthread_mutex_lock (&self->lock);
    event->src = rst_str (self->src);
    msgpack_sbuffer_clear (&self->buf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &self->buf, msgpack_sbuffer_write);
    rst_journal_txn_t txn;
    int rc = -1;
    if (rst_journal_txn_begin (self->journal, &txn)) {
        snprintf (err, errlen, "journal: cannot begin a write transaction");
        goto done;
    }
    event->seq = rst_journal_txn_next_seq (&txn);
    if (rst_event_pack (event, &pk)) {
        rst_journal_txn_abort (&txn);
        snprintf (err, errlen, "event %.*s is outside the event schema's limits",
                  (int) event->event_id.len, event->event_id.ptr);
        goto done;
    }
    if (rst_journal_txn_put (&txn, self->buf.data, self->buf.size) != event->seq) {
        rst_journal_txn_abort (&txn);
        snprintf (err, errlen, "journal: write failed (disk full?)");
        goto done;
    }
    if (rst_journal_txn_commit (&txn, 1)) {
        snprintf (err, errlen, "journal: commit failed (disk full?)");
        goto done;
    }
    rc = 0;
    self->emitted++;
    //  Never blocks: without a recorder the keeper replays it later.
    if (self->npush > 0)
        zmq_send (self->push[event->seq % (uint64_t) self->npush], self->buf.data, self->buf.size,
                  ZMQ_DONTWAIT);
done:
    pthread_mutex_unlock (&self->lock);
    return rc;
}

unsigned long
rst_emitter_count (rst_emitter_t *self)
{
    pthread_mutex_lock (&self->lock);
    unsigned long n = self->emitted;
    pthread_mutex_unlock (&self->lock);
    return n;
}

char *
rst_emitter_render_metrics (rst_emitter_t *self)
{
    return rst_keeper_render_metrics (self->keeper);
}
