/*  rst_limiter — per-pixel token buckets with FIFO queues, and the limiter node.

    Role: issue 3 §2. Meta counts every event of a pixel; a pixel sending
    faster than Meta (or the seller) allows gets throttled. Every event of a
    pixel reaches the same limiter instance (the enricher routes by
    rst_shard_of (pixel_id, n_limiters)), so the limit holds with several
    instances. Limiter i feeds batcher i only.

    The bucket of one pixel: `rate` tokens a second up to a burst of one
    second of rate (≥ 1 token); an event leaves its queue when a token is
    there. Rates: pixels.rate_per_s (PostgreSQL; the smallest when two
    owners registered the same pixel id), else topology default_rate.

    States of one pixel:

        STEADY (rate = configured) --THROTTLED outcome--> PAUSED
          ^                                                 | rate = max(1, rate/2), tokens = 0,
          |                                                 | for wait_ms (Meta's hint, else 1 s)
          |                                                 v
          +--rate reaches configured-- RECOVERING <--pause over--+
                                       (+10% of rate, at least +1/s, per calm
                                        second; another THROTTLED → PAUSED)

    Queues: FIFO per pixel; a priority event (Purchase) goes to the front,
    behind earlier priority events, and still takes a token (Meta counts it
    too). Pixels take turns, so a paused or slow pixel never delays another
    one. event_ids currently queued are kept in a hash set: a replay of an
    event still waiting here is dropped (counted). Nothing is ever dropped
    otherwise: when a pixel holds queue_max events (or all pixels
    queue_total_max), further events of it are refused and counted, and a
    warning is logged once per episode; a refused event was never
    acknowledged, so the front's journal replays it later.

    Node sockets (topology [limiter]):
      in        PULL, bound: "enriched" maps back to back from the enrichers.
      out       PUSH to entry INSTANCE of `out` (batcher i), ZMQ_IMMEDIATE;
                up to S_RELEASE_CHUNK released maps per message. Events
                are released only while the socket can take them; a send
                that still fails puts them back at the front of their
                queues with their tokens, so nothing is lost here.
      outcomes  SUB to every sender's outcomes; THROTTLED slows its pixel.
    Metrics: queued events (total, per pixel for the top 5 in the
    heartbeat file), current rates, throttle events, released, duplicates,
    refused.

    Caveats: queues are memory: a limiter killed with events queued loses
    them, and the front's journal replays them after replay_after seconds
    (so a long queue must not outlive replay_after by much: raise
    replay_after when pixels have low rates). Replays of events already
    released are not caught here (the sender de-duplicates).
*/
#include "rst_limiter.h"
#include "rst_clock.h"
#include "rst_log.h"
#include "rst_metrics.h"
#include "rst_pgwatch.h"
#include "rst_pipeline.h"
#include "rst_shard.h"
#include "rst_zsock.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

//  --------------------------------------------------------------------------
//  Core

typedef struct s_pixel_t s_pixel_t;

#define S_UNSEEN INT64_MIN      //  last_ms of a pixel no event touched yet

typedef struct s_item_t {
    struct s_item_t *next;      //  in the pixel's queue
    struct s_item_t *hnext;     //  in the dedup bucket
    uint64_t hash;              //  of the event id
    char *data;                 //  the packed map (owned)
    size_t len;
    int priority;
    size_t id_len;
    char id[RST_LIMITER_ID_MAX + 1];
} s_item_t;

struct s_pixel_t {
    s_pixel_t *hnext;           //  in the pixel table
    uint64_t hash;
    size_t id_len;
    char id[RST_LIMITER_ID_MAX + 1];
    double configured;          //  ≤ 0: the default
    double rate;                //  current tokens per second
    double tokens;
    int64_t last_ms;            //  last refill
    int64_t paused_until;       //  no release before this
    int64_t calm_since;         //  start of the current calm second (speed-up)
    s_item_t *head, *tail;
    s_item_t *last_prio;        //  last priority item at the front, or NULL
    size_t depth;
    int active;                 //  in self->active
    int warned;                 //  "huge queue" logged in this episode
};

struct rst_limiter_t {
    double default_rate;
    size_t queue_max, total_max;
    s_pixel_t **ptable;         //  pixel hash table (chained)
    size_t pbuckets;
    s_pixel_t **pixels;         //  every pixel (for resets and top-N)
    size_t npixels, pcap;
    s_pixel_t **active;         //  pixels with queued events (turn order)
    size_t nactive, acap, cursor;
    s_item_t **itable;          //  queued event ids
    size_t ibuckets;
    size_t total;
    uint64_t throttles;
};

rst_limiter_t *
rst_limiter_new (double default_rate, size_t queue_max, size_t total_max)
{
    rst_limiter_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->default_rate = default_rate > 0 ? default_rate : RST_LIMITER_RATE_DEFAULT;
    self->queue_max = queue_max ? queue_max : RST_LIMITER_QUEUE_MAX;
    self->total_max = total_max ? total_max : RST_LIMITER_TOTAL_MAX;
    self->pbuckets = 256;
    self->ibuckets = 1024;
    self->ptable = calloc (self->pbuckets, sizeof *self->ptable);
    self->itable = calloc (self->ibuckets, sizeof *self->itable);
    if (!self->ptable || !self->itable)
        rst_limiter_destroy (&self);
    return self;
}

void
rst_limiter_destroy (rst_limiter_t **self_p)
{
    assert (self_p);
    rst_limiter_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->npixels; i++) {
        s_item_t *it = self->pixels[i]->head;
        while (it) {
            s_item_t *next = it->next;
            free (it->data);
            free (it);
            it = next;
        }
        free (self->pixels[i]);
    }
    free (self->pixels);
    free (self->active);
    free (self->ptable);
    free (self->itable);
    free (self);
    *self_p = NULL;
}

static double
s_configured (const rst_limiter_t *self, const s_pixel_t *p)
{
    return p->configured > 0 ? p->configured : self->default_rate;
}

//  Finds PIXEL; with CREATE makes it (full bucket). NULL when absent or no memory.
static s_pixel_t *
s_pixel (rst_limiter_t *self, const char *id, size_t len, int create, int64_t now_ms)
{
    if (len > RST_LIMITER_ID_MAX)
        len = RST_LIMITER_ID_MAX;
    uint64_t h = rst_shard_hash (id, len);
    for (s_pixel_t *p = self->ptable[h & (self->pbuckets - 1)]; p; p = p->hnext)
        if (p->hash == h && p->id_len == len && !memcmp (p->id, id, len))
            return p;
    if (!create)
        return NULL;
    if (self->npixels == self->pcap) {
        size_t cap = self->pcap ? 2 * self->pcap : 64;
        s_pixel_t **grown = realloc (self->pixels, cap * sizeof *grown);
        if (!grown)
            return NULL;
        self->pixels = grown;
        self->pcap = cap;
    }
    s_pixel_t *p = calloc (1, sizeof *p);
    if (!p)
        return NULL;
    p->hash = h;
    p->id_len = len;
    memcpy (p->id, id, len);
    p->rate = s_configured (self, p);
    p->tokens = p->rate >= 1 ? p->rate : 1;
    p->last_ms = p->calm_since = now_ms;
    size_t b = h & (self->pbuckets - 1);
    p->hnext = self->ptable[b];
    self->ptable[b] = p;
    self->pixels[self->npixels++] = p;
    return p;
}

//  Brings P's bucket and rate up to NOW_MS.
static void
s_refill (rst_limiter_t *self, s_pixel_t *p, int64_t now_ms)
{
    double cfg = s_configured (self, p);
    if (p->last_ms == S_UNSEEN) {
        //  Made by set_rate before any event: the bucket starts full now.
        p->rate = cfg;
        p->tokens = cfg >= 1 ? cfg : 1;
        p->last_ms = p->calm_since = now_ms;
    }
    if (p->rate > cfg)
        p->rate = cfg;
    if (now_ms < p->paused_until) {
        p->tokens = 0;
        p->last_ms = now_ms;
        p->calm_since = p->paused_until;
        return;
    }
    if (p->rate < cfg) {
        //  Recovering: +10% (at least +1/s) per calm second since the pause.
        int steps = 0;
        while (now_ms - p->calm_since >= 1000 && p->rate < cfg && steps++ < 1000) {
            double up = p->rate * RST_LIMITER_SPEEDUP;
            p->rate += up < 1 ? 1 : up;
            p->calm_since += 1000;
        }
        if (p->rate > cfg)
            p->rate = cfg;
    }
    if (p->rate >= cfg)
        p->calm_since = now_ms;
    if (now_ms > p->last_ms) {
        p->tokens += (double) (now_ms - p->last_ms) * p->rate / 1000.0;
        p->last_ms = now_ms;
    }
    double burst = p->rate >= 1 ? p->rate : 1;
    if (p->tokens > burst)
        p->tokens = burst;
}

void
rst_limiter_set_rate (rst_limiter_t *self, const char *pixel, size_t len, double rate)
{
    assert (self);
    s_pixel_t *p = s_pixel (self, pixel, len, 1, S_UNSEEN);
    if (!p)
        return;
    p->configured = rate > 0 ? rate : 0;
    //  Below the old rate: at once. Above: climbs there (RECOVERING).
    double cfg = s_configured (self, p);
    if (p->rate > cfg)
        p->rate = cfg;
}

void
rst_limiter_reset_rates (rst_limiter_t *self)
{
    assert (self);
    for (size_t i = 0; i < self->npixels; i++)
        self->pixels[i]->configured = 0;
}

static s_item_t **
s_id_slot (rst_limiter_t *self, const char *id, size_t len, uint64_t h)
{
    s_item_t **slot = &self->itable[h & (self->ibuckets - 1)];
    while (*slot && !((*slot)->hash == h && (*slot)->id_len == len && !memcmp ((*slot)->id, id, len)))
        slot = &(*slot)->hnext;
    return slot;
}

static void
s_id_grow (rst_limiter_t *self)
{
    size_t n = self->ibuckets * 2;
    s_item_t **table = calloc (n, sizeof *table);
    if (!table)
        return;     //  longer chains, still correct
    for (size_t b = 0; b < self->ibuckets; b++) {
        s_item_t *it = self->itable[b];
        while (it) {
            s_item_t *next = it->hnext;
            it->hnext = table[it->hash & (n - 1)];
            table[it->hash & (n - 1)] = it;
            it = next;
        }
    }
    free (self->itable);
    self->itable = table;
    self->ibuckets = n;
}

static int
s_activate (rst_limiter_t *self, s_pixel_t *p)
{
    if (p->active)
        return 0;
    if (self->nactive == self->acap) {
        size_t cap = self->acap ? 2 * self->acap : 64;
        s_pixel_t **grown = realloc (self->active, cap * sizeof *grown);
        if (!grown)
            return -1;
        self->active = grown;
        self->acap = cap;
    }
    self->active[self->nactive++] = p;
    p->active = 1;
    return 0;
}

//  Links IT into P's queue: a priority item behind the earlier ones at the
//  front, any other at the back; AT_HEAD puts it first (unrelease).
static void
s_link (s_pixel_t *p, s_item_t *it, int at_head)
{
    if (at_head || (it->priority && !p->last_prio)) {
        it->next = p->head;
        p->head = it;
        if (!p->tail)
            p->tail = it;
        if (it->priority && !p->last_prio)
            p->last_prio = it;
    }
    else if (it->priority) {
        it->next = p->last_prio->next;
        p->last_prio->next = it;
        if (p->tail == p->last_prio)
            p->tail = it;
        p->last_prio = it;
    }
    else {
        it->next = NULL;
        if (p->tail)
            p->tail->next = it;
        else
            p->head = it;
        p->tail = it;
    }
    p->depth++;
}

int
rst_limiter_add (rst_limiter_t *self, const char *pixel, size_t pixel_len, const char *event_id,
                 size_t id_len, int priority, const char *data, size_t len, int64_t now_ms)
{
    assert (self);
    if (id_len > RST_LIMITER_ID_MAX)
        id_len = RST_LIMITER_ID_MAX;
    uint64_t h = rst_shard_hash (event_id, id_len);
    s_item_t **slot = s_id_slot (self, event_id, id_len, h);
    if (*slot)
        return RST_LIMITER_DUPLICATE;
    s_pixel_t *p = s_pixel (self, pixel, pixel_len, 1, now_ms);
    if (!p)
        return -1;
    if (p->depth >= self->queue_max || self->total >= self->total_max)
        return RST_LIMITER_FULL;
    s_item_t *it = calloc (1, sizeof *it);
    char *copy = malloc (len ? len : 1);
    if (!it || !copy || s_activate (self, p)) {
        free (it);
        free (copy);
        return -1;
    }
    memcpy (copy, data, len);
    it->data = copy;
    it->len = len;
    it->priority = priority ? 1 : 0;
    it->hash = h;
    it->id_len = id_len;
    memcpy (it->id, event_id, id_len);
    s_refill (self, p, now_ms);     //  tokens accrued while idle count from now
    s_link (p, it, 0);
    *slot = it;
    self->total++;
    if (self->total > 2 * self->ibuckets)
        s_id_grow (self);
    return RST_LIMITER_QUEUED;
}

int
rst_limiter_next (rst_limiter_t *self, int64_t now_ms, rst_limiter_item_t *item)
{
    assert (self);
    assert (item);
    size_t tried = 0;
    while (self->nactive > 0 && tried < self->nactive) {
        if (self->cursor >= self->nactive)
            self->cursor = 0;
        s_pixel_t *p = self->active[self->cursor];
        if (p->depth == 0) {
            //  Empty: leave the turn order (swap with the last one).
            p->active = 0;
            p->warned = 0;
            self->active[self->cursor] = self->active[--self->nactive];
            continue;
        }
        s_refill (self, p, now_ms);
        if (now_ms < p->paused_until || p->tokens < 1) {
            self->cursor++;
            tried++;
            continue;
        }
        s_item_t *it = p->head;
        p->head = it->next;
        if (!p->head)
            p->tail = NULL;
        if (p->last_prio == it)
            p->last_prio = NULL;
        p->depth--;
        p->tokens -= 1;
        self->total--;
        *s_id_slot (self, it->id, it->id_len, it->hash) = it->hnext;
        item->data = it->data;
        item->len = it->len;
        item->priority = it->priority;
        memcpy (item->pixel, p->id, p->id_len);
        item->pixel[p->id_len] = 0;
        memcpy (item->event_id, it->id, it->id_len);
        item->event_id[it->id_len] = 0;
        free (it);
        self->cursor++;     //  next pixel's turn
        return 1;
    }
    return 0;
}

void
rst_limiter_unrelease (rst_limiter_t *self, rst_limiter_item_t *item)
{
    assert (self);
    assert (item && item->data);
    s_pixel_t *p = s_pixel (self, item->pixel, strlen (item->pixel), 1, S_UNSEEN);
    s_item_t *it = calloc (1, sizeof *it);
    if (!p || !it || s_activate (self, p)) {
        //  Out of memory: the event is lost here; never acked, so replayed.
        free (it);
        free (item->data);
        item->data = NULL;
        return;
    }
    it->data = item->data;
    it->len = item->len;
    it->priority = item->priority;
    it->id_len = strlen (item->event_id);
    memcpy (it->id, item->event_id, it->id_len);
    it->hash = rst_shard_hash (it->id, it->id_len);
    s_item_t **slot = s_id_slot (self, it->id, it->id_len, it->hash);
    if (*slot) {
        //  The same id was queued meanwhile (a replay): keep one.
        free (it->data);
        free (it);
        item->data = NULL;
        return;
    }
    s_link (p, it, 1);
    if (it->priority && p->last_prio == NULL)
        p->last_prio = it;
    *slot = it;
    self->total++;
    p->tokens += 1;
    item->data = NULL;
}

int64_t
rst_limiter_wait_ms (rst_limiter_t *self, int64_t now_ms)
{
    assert (self);
    int64_t best = -1;
    for (size_t i = 0; i < self->nactive; i++) {
        s_pixel_t *p = self->active[i];
        if (p->depth == 0)
            continue;
        s_refill (self, p, now_ms);
        int64_t wait;
        if (now_ms < p->paused_until)
            wait = p->paused_until - now_ms;
        else if (p->tokens >= 1)
            wait = 0;
        else
            wait = (int64_t) ceil ((1 - p->tokens) * 1000.0 / (p->rate > 0 ? p->rate : 1));
        if (best < 0 || wait < best)
            best = wait;
    }
    return best;
}

void
rst_limiter_throttled (rst_limiter_t *self, const char *pixel, size_t len, int64_t wait_ms,
                       int64_t now_ms)
{
    assert (self);
    s_pixel_t *p = s_pixel (self, pixel, len, 1, now_ms);
    if (!p)
        return;
    s_refill (self, p, now_ms);
    p->rate = p->rate / 2 < RST_LIMITER_RATE_MIN ? RST_LIMITER_RATE_MIN : p->rate / 2;
    int64_t until = now_ms + (wait_ms > 0 ? wait_ms : RST_LIMITER_BACKOFF_MS);
    if (until > p->paused_until)
        p->paused_until = until;
    p->tokens = 0;
    p->last_ms = now_ms;
    p->calm_since = p->paused_until;
    self->throttles++;
}

double
rst_limiter_rate (rst_limiter_t *self, const char *pixel, size_t len, int64_t now_ms)
{
    assert (self);
    s_pixel_t *p = s_pixel (self, pixel, len, 0, now_ms);
    if (!p)
        return self->default_rate;
    s_refill (self, p, now_ms);
    return now_ms < p->paused_until ? 0 : p->rate;
}

size_t
rst_limiter_depth (const rst_limiter_t *self, const char *pixel, size_t len)
{
    assert (self);
    s_pixel_t *p = s_pixel ((rst_limiter_t *) self, pixel, len, 0, 0);
    return p ? p->depth : 0;
}

size_t
rst_limiter_total (const rst_limiter_t *self)
{
    assert (self);
    return self->total;
}

uint64_t
rst_limiter_throttles (const rst_limiter_t *self)
{
    assert (self);
    return self->throttles;
}

size_t
rst_limiter_top (rst_limiter_t *self, size_t n, const char **pixels, size_t *depths,
                 double *rates, int64_t now_ms)
{
    assert (self);
    size_t k = 0;
    for (size_t i = 0; i < self->nactive; i++) {
        s_pixel_t *p = self->active[i];
        if (p->depth == 0)
            continue;
        size_t at = k < n ? k++ : n;
        if (at == n && (n == 0 || p->depth <= depths[n - 1]))
            continue;
        if (at == n)
            at = n - 1;
        while (at > 0 && depths[at - 1] < p->depth) {
            pixels[at] = pixels[at - 1];
            depths[at] = depths[at - 1];
            at--;
        }
        pixels[at] = p->id;
        depths[at] = p->depth;
    }
    for (size_t i = 0; i < k; i++)
        rates[i] = rst_limiter_rate (self, pixels[i], strlen (pixels[i]), now_ms);
    return k;
}

//  Warns once per episode when a queue passes a tenth of its cap. Returns
//  1 when it did.
static int
s_check_huge (rst_limiter_t *self, const char *pixel, size_t len)
{
    s_pixel_t *p = s_pixel (self, pixel, len, 0, 0);
    if (!p || p->warned || p->depth < self->queue_max / 10)
        return 0;
    p->warned = 1;
    return 1;
}

//  --------------------------------------------------------------------------
//  The node

#define S_CLS               "limiter"
#define S_IN_HWM            10000
#define S_OUT_HWM           1000        //  messages of up to S_RELEASE_CHUNK events
#define S_LINGER_MS         1000
#define S_DRAIN_MAX         64
#define S_HEARTBEAT_MS      1000
#define S_RELEASE_CHUNK     256
#define S_TOP_N             5
#define S_MAX_SENDERS       RST_TOPOLOGY_MAX_ENDPOINTS

typedef struct {
    size_t count;
    struct {
        char pixel[RST_LIMITER_ID_MAX + 1];
        double rate;
    } *rows;
} s_rates_t;

struct rst_limiter_node_t {
    const rst_config_t *cfg;        //  borrowed
    const rst_topology_t *topo;     //  borrowed
    int instance;
    rst_limiter_t *core;            //  owned
    void *zmq_ctx;                  //  owned
    void *in;                       //  PULL, bound
    void *out;                      //  PUSH to batcher INSTANCE
    void *outcomes;                 //  SUB to every sender
    rst_pgwatch_t *watch;           //  owned; loads s_rates_t
    char in_ep[1024], out_ep[1024], outcomes_ep[1024];
    double default_rate;
    long queue_max, total_max;
    msgpack_sbuffer outbuf;         //  one message of released events
    rst_limiter_item_t *chunk;      //  S_RELEASE_CHUNK released items (for unrelease)
    rst_metrics_t *metrics;
    int m_in, m_bad, m_auto, m_dup, m_full, m_released, m_throttles, m_outcomes, m_queued,
        m_pixels, m_refresh, m_push_wait, m_deepest;
    int64_t next_heartbeat_ms, next_top_log_ms;
};

static void
s_rates_free (void *snapshot)
{
    s_rates_t *r = snapshot;
    if (!r)
        return;
    free (r->rows);
    free (r);
}

static void *
s_rates_load (PGconn *conn, char *err, size_t errlen)
{
    PGresult *res = PQexec (conn, "SELECT pixel_id, min(rate_per_s) FROM pixels "
                                  "WHERE rate_per_s IS NOT NULL GROUP BY pixel_id");
    if (PQresultStatus (res) != PGRES_TUPLES_OK) {
        snprintf (err, errlen, "loading pixel rates: libpq: %s",
                  strtok (PQerrorMessage (conn), "\n"));
        PQclear (res);
        return NULL;
    }
    int n = PQntuples (res);
    s_rates_t *r = calloc (1, sizeof *r);
    if (r && n > 0)
        r->rows = calloc ((size_t) n, sizeof *r->rows);
    if (!r || (n > 0 && !r->rows)) {
        snprintf (err, errlen, "loading pixel rates: out of memory");
        s_rates_free (r);
        PQclear (res);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        snprintf (r->rows[i].pixel, sizeof r->rows[i].pixel, "%s", PQgetvalue (res, i, 0));
        r->rows[i].rate = atof (PQgetvalue (res, i, 1));
    }
    r->count = (size_t) n;
    PQclear (res);
    return r;
}

static void
s_node_metrics (rst_limiter_node_t *self)
{
    rst_metrics_t *m = self->metrics;
    self->m_in = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_limiter_events_total",
                                  "Enriched events received.", NULL, 0);
    self->m_bad = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_limiter_decode_failures_total",
                                   "Malformed maps dropped.", NULL, 0);
    self->m_auto = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_limiter_automated_total",
                                    "Automated events received by mistake and dropped.", NULL, 0);
    self->m_dup = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_limiter_duplicates_total",
                                   "Replays of an event still queued, dropped.", NULL, 0);
    self->m_full = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_limiter_refused_total",
                                    "Events refused because a queue cap was reached (the journal "
                                    "replays them).", NULL, 0);
    self->m_released = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_limiter_released_total",
                                        "Events released to the batcher.", NULL, 0);
    self->m_throttles = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_limiter_throttle_events_total",
                                         "THROTTLED outcomes applied (rate halved, pixel paused).",
                                         NULL, 0);
    self->m_outcomes = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_limiter_outcomes_total",
                                        "Outcomes received from the senders.", NULL, 0);
    self->m_queued = rst_metrics_add (m, RST_METRIC_GAUGE, "rastro_limiter_queued_events",
                                      "Events waiting for a token, all pixels.", NULL, 0);
    self->m_deepest = rst_metrics_add (m, RST_METRIC_GAUGE, "rastro_limiter_deepest_queue_events",
                                       "Events waiting in the deepest pixel queue.", NULL, 0);
    self->m_pixels = rst_metrics_add (m, RST_METRIC_GAUGE, "rastro_limiter_pixels_with_rate",
                                      "Pixels with their own rate (pixels.rate_per_s).", NULL, 0);
    self->m_refresh = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_limiter_cache_refreshes_total",
                                       "Pixel rates loaded from PostgreSQL.", NULL, 0);
    self->m_push_wait = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_limiter_push_blocked_total",
                                         "Times the batcher could not take released events "
                                         "(kept queued).", NULL, 0);
}

static void
s_node_heartbeat (rst_limiter_node_t *self, int force)
{
    int64_t now = rst_clock_mono_ms ();
    if (!force && now < self->next_heartbeat_ms)
        return;
    self->next_heartbeat_ms = now + S_HEARTBEAT_MS;
    const char *pixels[S_TOP_N];
    size_t depths[S_TOP_N];
    double rates[S_TOP_N];
    size_t n = rst_limiter_top (self->core, S_TOP_N, pixels, depths, rates, now);
    rst_metrics_set (self->metrics, self->m_queued, (double) rst_limiter_total (self->core));
    rst_metrics_set (self->metrics, self->m_deepest, n ? (double) depths[0] : 0);
    char *text = rst_metrics_render (self->metrics);
    //  Per-pixel lines for the deepest queues (labels the registry cannot hold).
    size_t extra_cap = 512 + n * 256;
    size_t base = text ? strlen (text) : 0;
    char *all = malloc (base + extra_cap);
    if (all) {
        size_t at = 0;
        if (text)
            memcpy (all, text, base), at = base;
        at += (size_t) snprintf (all + at, extra_cap, "# HELP rastro_limiter_pixel_queue_events "
                                 "Queued events of the %d deepest pixel queues.\n"
                                 "# TYPE rastro_limiter_pixel_queue_events gauge\n", S_TOP_N);
        for (size_t i = 0; i < n; i++)
            at += (size_t) snprintf (all + at, base + extra_cap - at,
                                     "rastro_limiter_pixel_queue_events{pixel=\"%s\"} %zu\n"
                                     "rastro_limiter_pixel_rate{pixel=\"%s\"} %.1f\n",
                                     pixels[i], depths[i], pixels[i], rates[i]);
    }
    if (rst_heartbeat_write (self->cfg->data_dir, S_CLS, self->instance,
                             all ? all : text ? text : ""))
        rst_debug (S_CLS, "cannot write the heartbeat file under %s/run", self->cfg->data_dir);
    if (n && depths[0] >= 1000 && now >= self->next_top_log_ms) {
        self->next_top_log_ms = now + 10000;
        rst_info (S_CLS, "deepest queue: pixel %s, %zu events at %.1f/s", pixels[0], depths[0],
                  rates[0]);
    }
    free (all);
    free (text);
}

rst_limiter_node_t *
rst_limiter_node_new (const rst_config_t *cfg, const rst_topology_t *topo, int instance,
                      char *err, size_t errlen)
{
    assert (cfg && topo);
    rst_limiter_node_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, errlen, "limiter: out of memory");
        return NULL;
    }
    self->cfg = cfg;
    self->topo = topo;
    self->instance = instance;
    msgpack_sbuffer_init (&self->outbuf);
    long rate = rst_topology_get_long (topo, S_CLS, instance, "default_rate",
                                       RST_LIMITER_RATE_DEFAULT);
    self->queue_max = rst_topology_get_long (topo, S_CLS, instance, "queue_max",
                                             RST_LIMITER_QUEUE_MAX);
    self->total_max = rst_topology_get_long (topo, S_CLS, instance, "queue_total_max",
                                             RST_LIMITER_TOTAL_MAX);
    if (rate < 1 || rate > 1000000 || self->queue_max < 1 || self->total_max < 1) {
        snprintf (err, errlen, "topology: [limiter] default_rate must be 1..1000000 and "
                               "queue_max, queue_total_max positive");
        goto fail;
    }
    self->default_rate = (double) rate;
    self->core = rst_limiter_new (self->default_rate, (size_t) self->queue_max,
                                  (size_t) self->total_max);
    self->chunk = calloc (S_RELEASE_CHUNK, sizeof *self->chunk);
    self->metrics = rst_metrics_new ();
    if (!self->core || !self->chunk || !self->metrics) {
        snprintf (err, errlen, "limiter: out of memory");
        goto fail;
    }
    s_node_metrics (self);
    rst_topology_get (topo, S_CLS, instance, "in", self->in_ep, sizeof self->in_ep);
    rst_topology_get (topo, S_CLS, instance, "outcomes", self->outcomes_ep,
                      sizeof self->outcomes_ep);

    self->zmq_ctx = zmq_ctx_new ();
    if (!self->zmq_ctx) {
        snprintf (err, errlen, "limiter: libzmq: zmq_ctx_new: %s", zmq_strerror (zmq_errno ()));
        goto fail;
    }
    self->in = rst_zsock_new (self->zmq_ctx, ZMQ_PULL, S_IN_HWM, S_LINGER_MS, 0);
    self->out = rst_zsock_new (self->zmq_ctx, ZMQ_PUSH, S_OUT_HWM, S_LINGER_MS,
                               RST_ZSOCK_IMMEDIATE);
    self->outcomes = rst_zsock_new (self->zmq_ctx, ZMQ_SUB, RST_ZSOCK_NO_HWM, S_LINGER_MS, 0);
    if (!self->in || !self->out || !self->outcomes) {
        snprintf (err, errlen, "limiter: libzmq: socket: %s", zmq_strerror (zmq_errno ()));
        goto fail;
    }
    zmq_setsockopt (self->outcomes, ZMQ_SUBSCRIBE, "", 0);
    if (rst_topology_attach (topo, self->in, S_CLS, instance, "in", err, errlen))
        goto fail;
    char *eps[RST_TOPOLOGY_MAX_ENDPOINTS];
    int n = rst_topology_endpoints (topo, S_CLS, instance, "out", eps, RST_TOPOLOGY_MAX_ENDPOINTS,
                                    err, errlen);
    if (n < 0)
        goto fail;
    if (instance >= n) {
        snprintf (err, errlen, "topology: [limiter] out has %d endpoints; limiter %d feeds batcher "
                               "%d (the instance counts of [limiter] and [batcher] must match)",
                  n, instance, instance);
        rst_topology_endpoints_free (eps, n);
        goto fail;
    }
    snprintf (self->out_ep, sizeof self->out_ep, "%s", eps[instance]);
    rst_topology_endpoints_free (eps, n);
    const char *ep = self->out_ep;
    if (ep[0] == '@' ? zmq_bind (self->out, ep + 1) : zmq_connect (self->out, ep + 1)) {
        snprintf (err, errlen, "limiter: libzmq cannot attach %s: %s", ep, zmq_strerror (zmq_errno ()));
        goto fail;
    }
    if (self->outcomes_ep[0]
        && rst_topology_attach (topo, self->outcomes, S_CLS, instance, "outcomes", err, errlen))
        goto fail;
    self->watch = rst_pgwatch_new (self->zmq_ctx, cfg->database_url, "rastro_config", S_CLS,
                                   s_rates_load, s_rates_free, err, errlen);
    if (!self->watch)
        goto fail;
    return self;
fail:
    rst_limiter_node_destroy (&self);
    return NULL;
}

void
rst_limiter_node_destroy (rst_limiter_node_t **self_p)
{
    assert (self_p);
    rst_limiter_node_t *self = *self_p;
    if (!self)
        return;
    if (self->core && rst_limiter_total (self->core))
        rst_warn (S_CLS, "%zu events still queued at exit; their journals will replay them",
                  rst_limiter_total (self->core));
    rst_pgwatch_destroy (&self->watch);
    if (self->in)
        zmq_close (self->in);
    if (self->out)
        zmq_close (self->out);
    if (self->outcomes)
        zmq_close (self->outcomes);
    if (self->zmq_ctx)
        zmq_ctx_term (self->zmq_ctx);
    rst_limiter_destroy (&self->core);
    rst_metrics_destroy (&self->metrics);
    msgpack_sbuffer_destroy (&self->outbuf);
    free (self->chunk);
    free (self);
    *self_p = NULL;
}

void
rst_limiter_node_print (const rst_limiter_node_t *self)
{
    assert (self);
    rst_info (S_CLS, "instance = %d", self->instance);
    rst_info (S_CLS, "in = %s (PULL)", self->in_ep);
    rst_info (S_CLS, "out = %s (PUSH; batcher %d)", self->out_ep, self->instance);
    rst_info (S_CLS, "outcomes = %s (SUB; throttling feedback)",
              self->outcomes_ep[0] ? self->outcomes_ep : "(none)");
    rst_info (S_CLS, "default_rate = %.0f events/s per pixel (burst: 1 s of rate)",
              self->default_rate);
    rst_info (S_CLS, "queue_max = %ld per pixel, queue_total_max = %ld", self->queue_max,
              self->total_max);
}

static void
s_take_rates (rst_limiter_node_t *self)
{
    s_rates_t *r;
    while ((r = rst_pgwatch_take (self->watch))) {
        rst_limiter_reset_rates (self->core);
        for (size_t i = 0; i < r->count; i++)
            rst_limiter_set_rate (self->core, r->rows[i].pixel, strlen (r->rows[i].pixel),
                                  r->rows[i].rate);
        rst_metrics_set (self->metrics, self->m_pixels, (double) r->count);
        rst_metrics_inc (self->metrics, self->m_refresh, 1);
        rst_info (S_CLS, "pixel rates loaded: %zu pixels with their own rate", r->count);
        s_rates_free (r);
    }
}

static void
s_handle_in (rst_limiter_node_t *self, const char *data, size_t len)
{
    int64_t now = rst_clock_mono_ms ();
    size_t offset = 0;
    while (offset < len) {
        size_t start = offset;
        char err[256];
        rst_enriched_t *e = rst_enriched_decode (data, len, &offset, err, sizeof err);
        if (!e) {
            rst_metrics_inc (self->metrics, self->m_bad, 1);
            rst_debug (S_CLS, "dropped a malformed map: %s", err);
            continue;
        }
        rst_metrics_inc (self->metrics, self->m_in, 1);
        if (e->automated) {
            rst_metrics_inc (self->metrics, self->m_auto, 1);
            rst_enriched_destroy (&e);
            continue;
        }
        int rc = rst_limiter_add (self->core, e->pixel_id.ptr, e->pixel_id.len, e->event_id.ptr,
                                  e->event_id.len, e->priority, data + start, offset - start, now);
        if (rc == RST_LIMITER_DUPLICATE)
            rst_metrics_inc (self->metrics, self->m_dup, 1);
        else if (rc != RST_LIMITER_QUEUED) {
            rst_metrics_inc (self->metrics, self->m_full, 1);
            rst_debug (S_CLS, "event %s of pixel %s refused (%s)", e->event_id.ptr,
                       e->pixel_id.ptr, rc < 0 ? "out of memory" : "queue full");
        }
        if (s_check_huge (self->core, e->pixel_id.ptr, e->pixel_id.len))
            rst_warn (S_CLS, "pixel %s: %zu events queued (cap %ld): Meta or its rate holds it "
                      "back", e->pixel_id.ptr,
                      rst_limiter_depth (self->core, e->pixel_id.ptr, e->pixel_id.len),
                      self->queue_max);
        rst_enriched_destroy (&e);
    }
}

static void
s_handle_outcome (rst_limiter_node_t *self, const char *data, size_t len)
{
    char err[256];
    rst_outcome_t *o = rst_outcome_decode (data, len, err, sizeof err);
    if (!o) {
        rst_metrics_inc (self->metrics, self->m_bad, 1);
        rst_debug (S_CLS, "dropped a malformed outcome: %s", err);
        return;
    }
    rst_metrics_inc (self->metrics, self->m_outcomes, 1);
    if (o->kind == RST_OUTCOME_THROTTLED) {
        int64_t now = rst_clock_mono_ms ();
        rst_limiter_throttled (self->core, o->pixel_id.ptr, o->pixel_id.len, o->wait_ms, now);
        rst_metrics_inc (self->metrics, self->m_throttles, 1);
        rst_info (S_CLS, "pixel %s throttled by Meta: rate now %.1f/s, paused %lld ms",
                  o->pixel_id.ptr,
                  rst_limiter_rate (self->core, o->pixel_id.ptr, o->pixel_id.len,
                                    now + (o->wait_ms > 0 ? o->wait_ms : RST_LIMITER_BACKOFF_MS)),
                  (long long) (o->wait_ms > 0 ? o->wait_ms : RST_LIMITER_BACKOFF_MS));
    }
    rst_outcome_destroy (&o);
}

//  Releases what the buckets allow while the batcher takes it.
static void
s_release (rst_limiter_node_t *self)
{
    int64_t now = rst_clock_mono_ms ();
    while (1) {
        int events = 0;
        size_t sz = sizeof events;
        if (zmq_getsockopt (self->out, ZMQ_EVENTS, &events, &sz) || !(events & ZMQ_POLLOUT)) {
            if (rst_limiter_wait_ms (self->core, now) == 0)
                rst_metrics_inc (self->metrics, self->m_push_wait, 1);
            return;
        }
        size_t n = 0;
        msgpack_sbuffer_clear (&self->outbuf);
        while (n < S_RELEASE_CHUNK && rst_limiter_next (self->core, now, &self->chunk[n])) {
            msgpack_sbuffer_write (&self->outbuf, self->chunk[n].data, self->chunk[n].len);
            n++;
        }
        if (n == 0)
            return;
        if (zmq_send (self->out, self->outbuf.data, self->outbuf.size, ZMQ_DONTWAIT) < 0) {
            rst_metrics_inc (self->metrics, self->m_push_wait, 1);
            while (n > 0)
                rst_limiter_unrelease (self->core, &self->chunk[--n]);
            return;
        }
        rst_metrics_inc (self->metrics, self->m_released, (double) n);
        for (size_t i = 0; i < n; i++) {
            free (self->chunk[i].data);
            self->chunk[i].data = NULL;
        }
    }
}

int
rst_limiter_node_run (rst_limiter_node_t *self, volatile sig_atomic_t *stop)
{
    assert (self);
    rst_info (S_CLS, "limiting events");
    zmq_msg_t msg;
    zmq_msg_init (&msg);
    int rc = 0;
    while (!*stop) {
        int64_t now = rst_clock_mono_ms ();
        int64_t wait = self->next_heartbeat_ms - now;
        int64_t due = rst_limiter_wait_ms (self->core, now);
        int blocked = 0;
        if (due == 0) {
            int events = 0;
            size_t sz = sizeof events;
            zmq_getsockopt (self->out, ZMQ_EVENTS, &events, &sz);
            blocked = !(events & ZMQ_POLLOUT);
        }
        if (due >= 0 && due < wait)
            wait = blocked ? 10 : due;      //  batcher absent: look again soon
        if (wait < 0)
            wait = 0;
        zmq_pollitem_t items[] = {
            {self->in, 0, ZMQ_POLLIN, 0},
            {self->outcomes, 0, ZMQ_POLLIN, 0},
            {rst_pgwatch_socket (self->watch), 0, ZMQ_POLLIN, 0},
        };
        if (zmq_poll (items, 3, wait > 1000 ? 1000 : (long) wait) < 0) {
            if (zmq_errno () == EINTR)
                continue;
            rst_error (S_CLS, "libzmq: zmq_poll: %s", zmq_strerror (zmq_errno ()));
            rc = -1;
            break;
        }
        if (items[2].revents & ZMQ_POLLIN)
            s_take_rates (self);
        for (int n = 0; n < S_DRAIN_MAX && (items[1].revents & ZMQ_POLLIN); n++) {
            if (zmq_msg_recv (&msg, self->outcomes, ZMQ_DONTWAIT) < 0)
                break;
            s_handle_outcome (self, zmq_msg_data (&msg), zmq_msg_size (&msg));
        }
        for (int n = 0; n < S_DRAIN_MAX && (items[0].revents & ZMQ_POLLIN); n++) {
            if (zmq_msg_recv (&msg, self->in, ZMQ_DONTWAIT) < 0)
                break;
            s_handle_in (self, zmq_msg_data (&msg), zmq_msg_size (&msg));
        }
        s_release (self);
        s_node_heartbeat (self, 0);
    }
    zmq_msg_close (&msg);
    s_node_heartbeat (self, 1);
    return rc;
}
