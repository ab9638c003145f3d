/*  rst_batcher — per-(owner, pixel) batches for the senders, and the batcher node.

    Role: issue 3 §3. Meta takes at most 1,000 events per request and one
    request per pixel; the batcher groups the events its limiter releases
    by (owner_id, pixel_id) (one pixel id registered by two owners has two
    tokens, so two request streams) and hands each batch to the sender
    that owns the pixel: rst_shard_of (pixel_id, n_senders), so a pixel's
    spool, retries and throttling live in one sender.

    States of one (owner, pixel) group:

        EMPTY --event--> FILLING --batch_max events--> flush "full"
                           |  \--flush_ms after its oldest event--> flush "timer"
                           |
        any --priority event (Purchase)--> its priority lane is flushed at
              once: one batch of every pending priority event of the group
              ("priority"), ahead of any normal batch.
        SIGTERM: everything pending is flushed ("drain"), sent once.

    Node sockets (topology [batcher]):
      in        PULL, bound: "enriched" maps from limiter i.
      senders   one PUSH per endpoint (entry j = sender j), connected,
                ZMQ_IMMEDIATE; one "batch" map per message, ZMQ_DONTWAIT.
                A batch a sender cannot take (absent or full) is kept in a
                retry queue (per sender, in order; later batches for that
                sender queue behind it) and sent again every S_RETRY_MS.
                When S_RETRY_MAX batches wait, `in` is not read any more,
                so the limiter keeps its events and the enricher's pushes
                fail in turn: memory stays bounded, nothing is dropped
                here (the front's journal holds what the pipeline refuses).
    Metrics: batches sent, batch size histogram, flush reasons, push
    failures, retry queue length, pending events.

    Caveats: batches are memory; a batcher killed with batches pending
    loses them and the front's journal replays them (replay_after).
*/
#include "rst_batcher.h"
#include "rst_clock.h"
#include "rst_log.h"
#include "rst_meta.h"
#include "rst_metrics.h"
#include "rst_shard.h"
#include "rst_zsock.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

//  --------------------------------------------------------------------------
//  Core

typedef struct {
    char *buf;                  //  event_id \0 src \0 capi \0 (owned)
    size_t id_len, src_len, capi_len;
    uint64_t seq;
    int64_t time_ms;
} s_event_t;

typedef struct {
    s_event_t *ev;
    size_t count, cap;
    int64_t first_ms;           //  when the oldest event arrived
} s_lane_t;

typedef struct {
    int64_t owner_id;
    char pixel[RST_EVENT_SHORT_MAX + 1];
    size_t pixel_len;
    s_lane_t normal, prio;
} s_group_t;

struct rst_batcher_t {
    size_t batch_max;
    int64_t flush_ms;
    s_group_t *groups;          //  every group seen (few: one per pixel)
    size_t ngroups, gcap;
    size_t pending;
};

const char *
rst_batcher_reason_name (rst_batcher_reason_t reason)
{
    switch (reason) {
    case RST_BATCHER_FULL: return "full";
    case RST_BATCHER_TIMER: return "timer";
    case RST_BATCHER_PRIORITY: return "priority";
    case RST_BATCHER_DRAIN: return "drain";
    }
    return "unknown";
}

rst_batcher_t *
rst_batcher_new (size_t batch_max, int64_t flush_ms)
{
    if (batch_max < 1 || batch_max > RST_META_MAX_EVENTS || flush_ms < 0)
        return NULL;
    rst_batcher_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->batch_max = batch_max;
    self->flush_ms = flush_ms;
    return self;
}

static void
s_lane_free (s_lane_t *lane)
{
    for (size_t i = 0; i < lane->count; i++)
        free (lane->ev[i].buf);
    free (lane->ev);
    memset (lane, 0, sizeof *lane);
}

void
rst_batcher_destroy (rst_batcher_t **self_p)
{
    assert (self_p);
    rst_batcher_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->ngroups; i++) {
        s_lane_free (&self->groups[i].normal);
        s_lane_free (&self->groups[i].prio);
    }
    free (self->groups);
    free (self);
    *self_p = NULL;
}

static s_group_t *
s_group (rst_batcher_t *self, int64_t owner, rst_str_t pixel)
{
    for (size_t i = 0; i < self->ngroups; i++) {
        s_group_t *g = &self->groups[i];
        if (g->owner_id == owner && g->pixel_len == pixel.len
            && !memcmp (g->pixel, pixel.ptr, pixel.len))
            return g;
    }
    if (pixel.len > RST_EVENT_SHORT_MAX)
        return NULL;
    if (self->ngroups == self->gcap) {
        size_t cap = self->gcap ? 2 * self->gcap : 16;
        s_group_t *grown = realloc (self->groups, cap * sizeof *grown);
        if (!grown)
            return NULL;
        self->groups = grown;
        self->gcap = cap;
    }
    s_group_t *g = &self->groups[self->ngroups++];
    memset (g, 0, sizeof *g);
    g->owner_id = owner;
    memcpy (g->pixel, pixel.ptr, pixel.len);
    g->pixel_len = pixel.len;
    return g;
}

int
rst_batcher_add (rst_batcher_t *self, const rst_enriched_t *e, int64_t now_ms)
{
    assert (self && e);
    if (e->automated || !e->capi.len)
        return -1;
    s_group_t *g = s_group (self, e->owner_id, e->pixel_id);
    if (!g)
        return -1;
    s_lane_t *lane = e->priority ? &g->prio : &g->normal;
    if (lane->count == lane->cap) {
        size_t cap = lane->cap ? 2 * lane->cap : 64;
        s_event_t *grown = realloc (lane->ev, cap * sizeof *grown);
        if (!grown)
            return -1;
        lane->ev = grown;
        lane->cap = cap;
    }
    size_t need = e->event_id.len + e->src.len + e->capi.len + 3;
    char *buf = malloc (need);
    if (!buf)
        return -1;
    s_event_t *ev = &lane->ev[lane->count];
    ev->buf = buf;
    ev->id_len = e->event_id.len;
    ev->src_len = e->src.len;
    ev->capi_len = e->capi.len;
    memcpy (buf, e->event_id.ptr, ev->id_len);
    buf[ev->id_len] = 0;
    memcpy (buf + ev->id_len + 1, e->src.ptr, ev->src_len);
    buf[ev->id_len + 1 + ev->src_len] = 0;
    memcpy (buf + ev->id_len + ev->src_len + 2, e->capi.ptr, ev->capi_len);
    buf[need - 1] = 0;
    ev->seq = e->seq;
    ev->time_ms = e->time_ms;
    if (lane->count++ == 0)
        lane->first_ms = now_ms;
    self->pending++;
    return 0;
}

//  Moves the first N events of LANE into a new batch of G. NULL: no memory.
static rst_batch_t *
s_cut (rst_batcher_t *self, s_group_t *g, s_lane_t *lane, size_t n, int priority, int64_t now_ms,
       int64_t wall_ms)
{
    size_t room = g->pixel_len + 1;
    for (size_t i = 0; i < n; i++)
        room += lane->ev[i].id_len + lane->ev[i].src_len + lane->ev[i].capi_len + 3;
    size_t head = n * sizeof (rst_batch_item_t);
    rst_batch_t *b = calloc (1, sizeof *b);
    char *arena = malloc (head + room);
    if (!b || !arena) {
        free (b);
        free (arena);
        return NULL;
    }
    b->arena = arena;
    b->items = (rst_batch_item_t *) arena;
    b->count = n;
    b->owner_id = g->owner_id;
    b->priority = priority;
    b->created_ms = wall_ms;
    char *at = arena + head;
    memcpy (at, g->pixel, g->pixel_len);
    at[g->pixel_len] = 0;
    b->pixel_id = (rst_str_t){at, g->pixel_len};
    at += g->pixel_len + 1;
    for (size_t i = 0; i < n; i++) {
        s_event_t *ev = &lane->ev[i];
        size_t len = ev->id_len + ev->src_len + ev->capi_len + 3;
        memcpy (at, ev->buf, len);
        b->items[i] = (rst_batch_item_t){
            .event_id = {at, ev->id_len},
            .src = {at + ev->id_len + 1, ev->src_len},
            .seq = ev->seq,
            .time_ms = ev->time_ms,
            .capi = {at + ev->id_len + ev->src_len + 2, ev->capi_len},
        };
        at += len;
        free (ev->buf);
    }
    memmove (lane->ev, lane->ev + n, (lane->count - n) * sizeof *lane->ev);
    lane->count -= n;
    self->pending -= n;
    //  What remains waits from now: its own arrival times are not kept, and
    //  a full batch leaves at most a fresh partial one behind.
    lane->first_ms = now_ms;
    return b;
}

rst_batch_t *
rst_batcher_take (rst_batcher_t *self, int64_t now_ms, int64_t wall_ms, int drain,
                  rst_batcher_reason_t *reason)
{
    assert (self && reason);
    for (size_t i = 0; i < self->ngroups; i++) {
        s_group_t *g = &self->groups[i];
        if (g->prio.count) {
            size_t n = g->prio.count < self->batch_max ? g->prio.count : self->batch_max;
            *reason = RST_BATCHER_PRIORITY;
            return s_cut (self, g, &g->prio, n, 1, now_ms, wall_ms);
        }
    }
    for (size_t i = 0; i < self->ngroups; i++) {
        s_group_t *g = &self->groups[i];
        if (g->normal.count >= self->batch_max) {
            *reason = RST_BATCHER_FULL;
            return s_cut (self, g, &g->normal, self->batch_max, 0, now_ms, wall_ms);
        }
    }
    for (size_t i = 0; i < self->ngroups; i++) {
        s_group_t *g = &self->groups[i];
        if (g->normal.count && (drain || now_ms - g->normal.first_ms >= self->flush_ms)) {
            *reason = drain ? RST_BATCHER_DRAIN : RST_BATCHER_TIMER;
            return s_cut (self, g, &g->normal, g->normal.count, 0, now_ms, wall_ms);
        }
    }
    return NULL;
}

int64_t
rst_batcher_wait_ms (const rst_batcher_t *self, int64_t now_ms)
{
    assert (self);
    int64_t best = -1;
    for (size_t i = 0; i < self->ngroups; i++) {
        const s_group_t *g = &self->groups[i];
        if (g->prio.count || g->normal.count >= self->batch_max)
            return 0;
        if (g->normal.count) {
            int64_t due = g->normal.first_ms + self->flush_ms - now_ms;
            if (due < 0)
                due = 0;
            if (best < 0 || due < best)
                best = due;
        }
    }
    return best;
}

size_t
rst_batcher_pending (const rst_batcher_t *self)
{
    assert (self);
    return self->pending;
}

//  --------------------------------------------------------------------------
//  The node

#define S_CLS           "batcher"
#define S_MAX_SENDERS   RST_TOPOLOGY_MAX_ENDPOINTS
#define S_IN_HWM        1000
#define S_OUT_HWM       100         //  batches (up to 1,000 events each)
#define S_LINGER_MS     1000
#define S_DRAIN_MAX     64
#define S_HEARTBEAT_MS  1000
#define S_RETRY_MS      100
#define S_RETRY_MAX     256         //  batches waiting for a sender, in all

typedef struct s_retry_t {
    struct s_retry_t *next;
    size_t events;
    int priority;
    size_t len;
    char data[];                //  the packed batch
} s_retry_t;

struct rst_batcher_node_t {
    const rst_config_t *cfg;
    const rst_topology_t *topo;
    int instance;
    rst_batcher_t *core;
    void *zmq_ctx;
    void *in;
    void *senders[S_MAX_SENDERS];
    char *sender_eps[S_MAX_SENDERS];
    int nsenders;
    s_retry_t *retry_head[S_MAX_SENDERS], *retry_tail[S_MAX_SENDERS];
    size_t nretry;
    int64_t next_retry_ms;
    char in_ep[1024];
    long batch_max, flush_ms;
    msgpack_sbuffer buf;
    rst_metrics_t *metrics;
    int m_in, m_bad, m_batches, m_events, m_size, m_reason[4], m_push_fail, m_retry, m_pending,
        m_latency;
    int64_t next_heartbeat_ms;
};

static const double s_size_bounds[] = {1, 10, 50, 100, 250, 500, 750, 999, 1000};
static const double s_wait_bounds[] = {0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5};

static void
s_node_metrics (rst_batcher_node_t *self)
{
    rst_metrics_t *m = self->metrics;
    self->m_in = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_batcher_events_total",
                                  "Enriched events received from the limiter.", NULL, 0);
    self->m_bad = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_batcher_decode_failures_total",
                                   "Malformed or automated maps dropped.", NULL, 0);
    self->m_batches = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_batcher_batches_total",
                                       "Batches handed to a sender.", NULL, 0);
    self->m_events = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_batcher_batched_events_total",
                                      "Events in the batches handed to a sender.", NULL, 0);
    self->m_size = rst_metrics_add (m, RST_METRIC_HISTOGRAM, "rastro_batcher_batch_size_events",
                                    "Events per batch.", s_size_bounds,
                                    sizeof s_size_bounds / sizeof s_size_bounds[0]);
    for (int r = 0; r < 4; r++) {
        char name[96];
        snprintf (name, sizeof name, "rastro_batcher_flushes_total{reason=\"%s\"}",
                  rst_batcher_reason_name ((rst_batcher_reason_t) r));
        self->m_reason[r] = rst_metrics_add (m, RST_METRIC_COUNTER, name,
                                             "Batches closed, by reason.", NULL, 0);
    }
    self->m_push_fail = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_batcher_push_failures_total",
                                         "Sends a sender could not take (the batch is retried).",
                                         NULL, 0);
    self->m_retry = rst_metrics_add (m, RST_METRIC_GAUGE, "rastro_batcher_retry_batches",
                                     "Batches waiting for their sender.", NULL, 0);
    self->m_pending = rst_metrics_add (m, RST_METRIC_GAUGE, "rastro_batcher_pending_events",
                                       "Events in open batches.", NULL, 0);
    self->m_latency = rst_metrics_add (m, RST_METRIC_HISTOGRAM, "rastro_batcher_event_age_seconds",
                                       "Age of a batch's oldest event when it is handed over "
                                       "(event time to sender, wall clocks).", s_wait_bounds,
                                       sizeof s_wait_bounds / sizeof s_wait_bounds[0]);
}

static void
s_node_heartbeat (rst_batcher_node_t *self, int force)
{
    int64_t now = rst_clock_mono_ms ();
    if (!force && now < self->next_heartbeat_ms)
        return;
    self->next_heartbeat_ms = now + S_HEARTBEAT_MS;
    rst_metrics_set (self->metrics, self->m_retry, (double) self->nretry);
    rst_metrics_set (self->metrics, self->m_pending, (double) rst_batcher_pending (self->core));
    rst_metrics_heartbeat (self->metrics, self->cfg->data_dir, S_CLS, self->instance);
}

rst_batcher_node_t *
rst_batcher_node_new (const rst_config_t *cfg, const rst_topology_t *topo, int instance,
                      char *err, size_t errlen)
{
    assert (cfg && topo);
    rst_batcher_node_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, errlen, "batcher: out of memory");
        return NULL;
    }
    self->cfg = cfg;
    self->topo = topo;
    self->instance = instance;
    msgpack_sbuffer_init (&self->buf);
    self->batch_max = rst_topology_get_long (topo, S_CLS, instance, "batch_max", RST_META_MAX_EVENTS);
    self->flush_ms = rst_topology_get_long (topo, S_CLS, instance, "flush_ms",
                                            RST_BATCHER_FLUSH_MS_DEFAULT);
    if (self->batch_max < 1 || self->batch_max > RST_META_MAX_EVENTS) {
        snprintf (err, errlen, "topology: [batcher] batch_max must be 1..%d, not %ld",
                  RST_META_MAX_EVENTS, self->batch_max);
        goto fail;
    }
    if (self->flush_ms < 0 || self->flush_ms > RST_BATCHER_FLUSH_MS_MAX) {
        snprintf (err, errlen, "topology: [batcher] flush_ms must be 0..%d, not %ld",
                  RST_BATCHER_FLUSH_MS_MAX, self->flush_ms);
        goto fail;
    }
    self->core = rst_batcher_new ((size_t) self->batch_max, self->flush_ms);
    self->metrics = rst_metrics_new ();
    if (!self->core || !self->metrics) {
        snprintf (err, errlen, "batcher: out of memory");
        goto fail;
    }
    s_node_metrics (self);
    rst_topology_get (topo, S_CLS, instance, "in", self->in_ep, sizeof self->in_ep);
    self->zmq_ctx = zmq_ctx_new ();
    if (!self->zmq_ctx) {
        snprintf (err, errlen, "batcher: libzmq: zmq_ctx_new: %s", zmq_strerror (zmq_errno ()));
        goto fail;
    }
    self->in = rst_zsock_new (self->zmq_ctx, ZMQ_PULL, S_IN_HWM, S_LINGER_MS, 0);
    if (!self->in) {
        snprintf (err, errlen, "batcher: libzmq: socket: %s", zmq_strerror (zmq_errno ()));
        goto fail;
    }
    if (rst_topology_attach (topo, self->in, S_CLS, instance, "in", err, errlen))
        goto fail;
    int n = rst_zsock_each (self->zmq_ctx, topo, S_CLS, instance, "senders", ZMQ_PUSH, S_OUT_HWM,
                            S_LINGER_MS, RST_ZSOCK_IMMEDIATE, self->senders, self->sender_eps,
                            S_MAX_SENDERS, err, errlen);
    if (n < 0)
        goto fail;
    self->nsenders = n;
    return self;
fail:
    rst_batcher_node_destroy (&self);
    return NULL;
}

void
rst_batcher_node_destroy (rst_batcher_node_t **self_p)
{
    assert (self_p);
    rst_batcher_node_t *self = *self_p;
    if (!self)
        return;
    size_t lost = self->core ? rst_batcher_pending (self->core) : 0;
    for (int i = 0; i < self->nsenders; i++) {
        for (s_retry_t *r = self->retry_head[i], *next; r; r = next) {
            next = r->next;
            lost += r->events;
            free (r);
        }
        if (self->senders[i])
            zmq_close (self->senders[i]);
    }
    if (lost)
        rst_warn (S_CLS, "%zu events not handed to a sender at exit; their journals will replay "
                  "them", lost);
    rst_topology_endpoints_free (self->sender_eps, self->nsenders);
    if (self->in)
        zmq_close (self->in);
    if (self->zmq_ctx)
        zmq_ctx_term (self->zmq_ctx);
    rst_batcher_destroy (&self->core);
    rst_metrics_destroy (&self->metrics);
    msgpack_sbuffer_destroy (&self->buf);
    free (self);
    *self_p = NULL;
}

void
rst_batcher_node_print (const rst_batcher_node_t *self)
{
    assert (self);
    rst_info (S_CLS, "instance = %d", self->instance);
    rst_info (S_CLS, "in = %s (PULL; from limiter %d)", self->in_ep, self->instance);
    for (int i = 0; i < self->nsenders; i++)
        rst_info (S_CLS, "senders[%d] = %s (PUSH; pixels with rst_shard_of (pixel, %d) = %d)", i,
                  self->sender_eps[i], self->nsenders, i);
    rst_info (S_CLS, "batch_max = %ld", self->batch_max);
    rst_info (S_CLS, "flush_ms = %ld", self->flush_ms);
}

//  Sends the retry queue of sender I in order. Returns 1 when it is empty.
static int
s_flush_retries (rst_batcher_node_t *self, int i)
{
    while (self->retry_head[i]) {
        s_retry_t *r = self->retry_head[i];
        if (zmq_send (self->senders[i], r->data, r->len, ZMQ_DONTWAIT) < 0)
            return 0;
        rst_metrics_inc (self->metrics, self->m_batches, 1);
        rst_metrics_inc (self->metrics, self->m_events, (double) r->events);
        rst_metrics_observe (self->metrics, self->m_size, (double) r->events);
        self->retry_head[i] = r->next;
        if (!r->next)
            self->retry_tail[i] = NULL;
        self->nretry--;
        free (r);
    }
    return 1;
}

//  Packs and sends (or queues for retry) batch B. Takes ownership of *B_P.
static void
s_ship (rst_batcher_node_t *self, rst_batch_t **b_p, rst_batcher_reason_t reason)
{
    rst_batch_t *b = *b_p;
    rst_metrics_inc (self->metrics, self->m_reason[reason], 1);
    msgpack_sbuffer_clear (&self->buf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &self->buf, msgpack_sbuffer_write);
    if (rst_batch_pack (b, &pk)) {
        //  Every item passed rst_enriched_decode's checks: cannot happen.
        rst_error (S_CLS, "a batch of pixel %s breaks the schema; dropped (the journal replays "
                   "it)", b->pixel_id.ptr);
        rst_batch_destroy (b_p);
        return;
    }
    int64_t oldest = b->items[0].time_ms;
    for (size_t k = 1; k < b->count; k++)
        if (b->items[k].time_ms < oldest)
            oldest = b->items[k].time_ms;
    double age = (double) (rst_clock_wall_ms () - oldest) / 1000.0;
    rst_metrics_observe (self->metrics, self->m_latency, age > 0 ? age : 0);
    size_t events = b->count;
    int priority = b->priority;
    int i = self->nsenders ? (int) rst_shard_of (b->pixel_id.ptr, b->pixel_id.len,
                                                 (size_t) self->nsenders)
                           : -1;
    rst_batch_destroy (b_p);
    if (i < 0) {
        rst_metrics_inc (self->metrics, self->m_push_fail, 1);
        return;
    }
    if (!self->retry_head[i]
        && zmq_send (self->senders[i], self->buf.data, self->buf.size, ZMQ_DONTWAIT) >= 0) {
        rst_metrics_inc (self->metrics, self->m_batches, 1);
        rst_metrics_inc (self->metrics, self->m_events, (double) events);
        rst_metrics_observe (self->metrics, self->m_size, (double) events);
        return;
    }
    rst_metrics_inc (self->metrics, self->m_push_fail, 1);
    s_retry_t *r = malloc (sizeof *r + self->buf.size);
    if (!r) {
        rst_error (S_CLS, "out of memory keeping a batch of %zu events; dropped (the journal "
                   "replays them)", events);
        return;
    }
    r->next = NULL;
    r->events = events;
    r->priority = priority;
    r->len = self->buf.size;
    memcpy (r->data, self->buf.data, self->buf.size);
    if (self->retry_tail[i])
        self->retry_tail[i]->next = r;
    else
        self->retry_head[i] = r;
    self->retry_tail[i] = r;
    if (self->nretry++ == 0)
        rst_warn (S_CLS, "sender %s cannot take batches; keeping them and retrying every %d ms",
                  self->sender_eps[i], S_RETRY_MS);
    self->next_retry_ms = rst_clock_mono_ms () + S_RETRY_MS;
}

static void
s_handle_in (rst_batcher_node_t *self, const char *data, size_t len)
{
    int64_t now = rst_clock_mono_ms ();
    size_t offset = 0;
    while (offset < len) {
        char err[256];
        rst_enriched_t *e = rst_enriched_decode (data, len, &offset, err, sizeof err);
        if (!e) {
            rst_metrics_inc (self->metrics, self->m_bad, 1);
            rst_debug (S_CLS, "dropped a malformed map: %s", err);
            continue;
        }
        if (rst_batcher_add (self->core, e, now))
            rst_metrics_inc (self->metrics, self->m_bad, 1);
        else
            rst_metrics_inc (self->metrics, self->m_in, 1);
        rst_enriched_destroy (&e);
    }
}

static void
s_flush_due (rst_batcher_node_t *self, int drain)
{
    rst_batcher_reason_t reason;
    rst_batch_t *b;
    while ((b = rst_batcher_take (self->core, rst_clock_mono_ms (), rst_clock_wall_ms (), drain,
                                  &reason)))
        s_ship (self, &b, reason);
}

int
rst_batcher_node_run (rst_batcher_node_t *self, volatile sig_atomic_t *stop)
{
    assert (self);
    rst_info (S_CLS, "batching events");
    zmq_msg_t msg;
    zmq_msg_init (&msg);
    int rc = 0;
    while (!*stop) {
        int64_t now = rst_clock_mono_ms ();
        int64_t wait = self->next_heartbeat_ms - now;
        int64_t due = rst_batcher_wait_ms (self->core, now);
        if (due >= 0 && due < wait)
            wait = due;
        if (self->nretry && self->next_retry_ms - now < wait)
            wait = self->next_retry_ms - now;
        if (wait < 0)
            wait = 0;
        //  Too many batches waiting for senders: stop reading (backpressure).
        int reading = self->nretry < S_RETRY_MAX;
        zmq_pollitem_t items[] = {{self->in, 0, reading ? ZMQ_POLLIN : 0, 0}};
        if (zmq_poll (items, 1, wait > 1000 ? 1000 : (long) wait) < 0) {
            if (zmq_errno () == EINTR)
                continue;
            rst_error (S_CLS, "libzmq: zmq_poll: %s", zmq_strerror (zmq_errno ()));
            rc = -1;
            break;
        }
        for (int n = 0; n < S_DRAIN_MAX && (items[0].revents & ZMQ_POLLIN); n++) {
            if (zmq_msg_recv (&msg, self->in, ZMQ_DONTWAIT) < 0)
                break;
            s_handle_in (self, zmq_msg_data (&msg), zmq_msg_size (&msg));
            //  The priority lane leaves at once, even inside a burst.
            if (rst_batcher_wait_ms (self->core, rst_clock_mono_ms ()) == 0)
                s_flush_due (self, 0);
        }
        if (self->nretry && rst_clock_mono_ms () >= self->next_retry_ms) {
            int all = 1;
            for (int i = 0; i < self->nsenders; i++)
                all &= s_flush_retries (self, i);
            if (all && self->nretry == 0)
                rst_info (S_CLS, "senders take batches again");
            self->next_retry_ms = rst_clock_mono_ms () + S_RETRY_MS;
        }
        s_flush_due (self, 0);
        s_node_heartbeat (self, 0);
    }
    //  Shutdown: what is already queued on `in`, then everything, sent once.
    while (zmq_msg_recv (&msg, self->in, ZMQ_DONTWAIT) >= 0)
        s_handle_in (self, zmq_msg_data (&msg), zmq_msg_size (&msg));
    s_flush_due (self, 1);
    for (int i = 0; i < self->nsenders; i++)
        s_flush_retries (self, i);
    zmq_msg_close (&msg);
    s_node_heartbeat (self, 1);
    return rc;
}
