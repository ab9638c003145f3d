/*  rst_keeper — see rst_keeper.h.

    The thread's loop:

        poll(acks, sync_ms)
          ├─ ack messages → rst_journal_ack (one write txn per drained burst)
          ├─ every sync_ms → rst_journal_sync
          └─ every second → replay step, journal stats, publish metrics

    Ack frontier: downstream stages ack roughly in sequence order, so an
    unacknowledged entry older than replay_after whose sequence is below the
    highest one acked (for every required bit) was most likely lost (a node
    died with it in memory) and is replayed; one above it is most likely still
    queued behind a slow stage (say PostgreSQL is slow) and is replayed only
    after S_LAGGING_FACTOR × replay_after, so that an overloaded pipeline is
    not fed duplicates on top of its backlog.

    Replay pass state: `pass_cursor` is the last sequence pushed in the
    current pass; a pass starts every replay_after seconds and walks the
    journal from the beginning, pushing entries born before (now -
    replay_after) in slices of S_REPLAY_SLICE per second, until it reaches
    young entries or the PUSH pipe is full. Downstream de-duplicates by
    event_id, so replaying an entry whose ack is merely late is harmless.
*/
#include "rst_keeper.h"
#include "rst_clock.h"
#include "rst_event.h"
#include "rst_log.h"
#include "rst_zsock.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define S_REPLAY_SLICE     20000    //  entries pushed per second at most, per pass step
#define S_LAGGING_FACTOR   6        //  see "ack frontier" in the banner
#define S_ACKS_PER_TXN     8192     //  seqs applied per ack transaction at most
#define S_SOCKET_HWM       100000
#define S_LINGER_MS        500

struct rst_keeper_t {
    rst_journal_t *journal;         //  borrowed
    const char *metric_prefix;      //  borrowed (rst_keeper_keys_t)
    void *acks;                     //  PULL, bound
    void *push;                     //  PUSH to the events endpoints (replays)
    pthread_t thread;
    int thread_started;
    atomic_int stop;
    int sync_ms;                    //  fsync interval
    int64_t replay_after_ms;
    int64_t started_ms;             //  entries born before this are from a previous run
    uint64_t pass_cursor;           //  see the banner
    int pass_active;
    int64_t next_pass_ms;
    uint64_t max_acked[8];          //  highest seq acked per ack bit (index = bit number)
    rst_metrics_t *metrics;         //  owned by the thread
    rst_metrics_t *published;       //  copy for readers, under `lock`
    pthread_mutex_t lock;
    int m_acks, m_acked, m_ack_bad, m_replayed, m_replay_full, m_depth, m_oldest, m_sync,
        m_sync_fail;
    uint64_t seqs[S_ACKS_PER_TXN];  //  scratch for one ack transaction
};

const rst_keeper_keys_t rst_keeper_default_keys
    = {"acks", "events", "sync_ms", "replay_after", "rastro_journal"};

//  Declares metric PREFIX_SUFFIX. Returns its index.
static int
s_add (rst_keeper_t *self, rst_metric_kind_t kind, const char *suffix, const char *help)
{
    char name[128];
    snprintf (name, sizeof name, "%s_%s", self->metric_prefix, suffix);
    return rst_metrics_add (self->metrics, kind, name, help, NULL, 0);
}

static void
s_declare (rst_keeper_t *self)
{
    self->m_acks = s_add (self, RST_METRIC_COUNTER, "ack_messages_total",
                          "Ack messages received from downstream stages.");
    self->m_acked = s_add (self, RST_METRIC_COUNTER, "acked_total",
                           "Journal entries fully acknowledged and deleted.");
    self->m_ack_bad = s_add (self, RST_METRIC_COUNTER, "ack_rejected_total",
                             "Malformed ack messages dropped.");
    self->m_replayed = s_add (self, RST_METRIC_COUNTER, "replayed_total",
                              "Unacknowledged entries pushed again.");
    self->m_replay_full = s_add (self, RST_METRIC_COUNTER, "replay_blocked_total",
                                 "Replay passes cut short because downstream was full or absent.");
    self->m_depth = s_add (self, RST_METRIC_GAUGE, "depth",
                           "Journal entries waiting for acknowledgement.");
    self->m_oldest = s_add (self, RST_METRIC_GAUGE, "oldest_age_seconds",
                            "Age of the oldest unacknowledged entry.");
    self->m_sync = s_add (self, RST_METRIC_COUNTER, "syncs_total",
                          "Journal sync passes (an fsync only when something was committed).");
    self->m_sync_fail = s_add (self, RST_METRIC_COUNTER, "sync_failures_total",
                               "Journal fsyncs that failed.");
}

//  Drains the acks socket; applies acks of one stage per transaction.
static void
s_drain_acks (rst_keeper_t *self)
{
    for (;;) {
        size_t n = 0;
        unsigned stage = 0;
        zmq_msg_t msg;
        zmq_msg_init (&msg);
        while (n + RST_ACK_MAX_SEQS <= S_ACKS_PER_TXN) {
            if (zmq_msg_recv (&msg, self->acks, ZMQ_DONTWAIT) < 0)
                break;
            rst_metrics_inc (self->metrics, self->m_acks, 1);
            size_t before = n;
            unsigned s = 0;
            char err[128];
            int got = rst_ack_decode (zmq_msg_data (&msg), zmq_msg_size (&msg), &s, self->seqs + n,
                                      S_ACKS_PER_TXN - n, err, sizeof err);
            if (got < 0) {
                rst_metrics_inc (self->metrics, self->m_ack_bad, 1);
                rst_debug ("keeper", "ack dropped: %s", err);
                continue;
            }
            n += (size_t) got;
            for (size_t k = before; k < n; k++)
                for (int b = 0; b < 8; b++)
                    if ((s & (1u << b)) && self->seqs[k] > self->max_acked[b])
                        self->max_acked[b] = self->seqs[k];
            if (stage && s != stage) {
                //  Different stage: apply what we have, then start over with this one.
                int deleted = rst_journal_ack (self->journal, self->seqs, before, stage);
                if (deleted > 0)
                    rst_metrics_inc (self->metrics, self->m_acked, deleted);
                memmove (self->seqs, self->seqs + before, (n - before) * sizeof (uint64_t));
                n -= before;
            }
            stage = s;
        }
        zmq_msg_close (&msg);
        if (n == 0)
            return;
        int deleted = rst_journal_ack (self->journal, self->seqs, n, stage);
        if (deleted < 0)
            rst_warn ("keeper", "applying %zu acks failed (lmdb); the entries will be replayed", n);
        else
            rst_metrics_inc (self->metrics, self->m_acked, deleted);
        if (n + RST_ACK_MAX_SEQS <= S_ACKS_PER_TXN)
            return;     //  the socket ran dry before the scratch filled up
    }
}

//  The ack frontier: the lowest, over the required ack bits, of the highest
//  sequence acked for that bit; 0 while some bit was never acked in this run.
static uint64_t
s_frontier (const rst_keeper_t *self)
{
    unsigned required = rst_journal_required_acks (self->journal);
    uint64_t frontier = UINT64_MAX;
    for (int b = 0; b < 8; b++)
        if ((required & (1u << b)) && self->max_acked[b] < frontier)
            frontier = self->max_acked[b];
    return frontier == UINT64_MAX ? 0 : frontier;
}

typedef struct {
    rst_keeper_t *self;
    uint64_t last;      //  last seq pushed
    int blocked;        //  the PUSH pipe refused a message
    int lagging;        //  stopped at entries still in flight behind the frontier
    uint64_t frontier;  //  s_frontier at the start of the step
    int64_t lag_before; //  entries past the frontier born before this are replayed anyway
} s_replay_t;

static int
s_replay_one (void *arg, uint64_t seq, int64_t born_ms, const void *data, size_t len)
{
    s_replay_t *r = arg;
    //  Past the frontier, downstream is most likely still working on the
    //  entry (it acked older ones, not this one yet): leave it unless it is
    //  very old. Sequences and birth times rise together, so stop here.
    if (r->frontier && seq > r->frontier && born_ms > r->lag_before) {
        r->lagging = 1;
        return 1;
    }
    if (zmq_send (r->self->push, data, len, ZMQ_DONTWAIT) < 0) {
        r->blocked = 1;
        return 1;
    }
    rst_metrics_inc (r->self->metrics, r->self->m_replayed, 1);
    r->last = seq;
    return 0;
}

static void
s_replay_step (rst_keeper_t *self, int64_t now)
{
    if (!self->pass_active && now >= self->next_pass_ms) {
        self->pass_active = 1;
        self->pass_cursor = 0;
        self->next_pass_ms = now + self->replay_after_ms;
    }
    if (!self->pass_active)
        return;
    //  The first pass after start pushes whatever a previous run left behind.
    int64_t born_before = now - self->replay_after_ms;
    if (born_before < self->started_ms && self->pass_cursor == 0)
        born_before = self->started_ms - 1;
    s_replay_t r = {self, self->pass_cursor, 0, 0, s_frontier (self),
                    now - S_LAGGING_FACTOR * self->replay_after_ms};
    int visited = rst_journal_scan (self->journal, self->pass_cursor, born_before, S_REPLAY_SLICE,
                                    s_replay_one, &r);
    self->pass_cursor = r.last;
    if (r.blocked)
        rst_metrics_inc (self->metrics, self->m_replay_full, 1);
    if (visited < 0 || r.blocked || r.lagging || visited < S_REPLAY_SLICE)
        self->pass_active = 0;
}

static void
s_measure (rst_keeper_t *self, int64_t now)
{
    uint64_t depth = 0;
    int64_t oldest = 0;
    if (rst_journal_stats (self->journal, &depth, &oldest) == 0) {
        rst_metrics_set (self->metrics, self->m_depth, (double) depth);
        rst_metrics_set (self->metrics, self->m_oldest,
                         depth && oldest ? (double) (now - oldest) / 1000.0 : 0);
    }
    pthread_mutex_lock (&self->lock);
    rst_metrics_copy (self->published, self->metrics);
    pthread_mutex_unlock (&self->lock);
}

static void *
s_keeper_main (void *arg)
{
    rst_keeper_t *self = arg;
    int64_t next_sync = rst_clock_wall_ms () + self->sync_ms;
    int64_t next_second = rst_clock_wall_ms ();
    while (!atomic_load (&self->stop)) {
        zmq_pollitem_t item = {self->acks, 0, ZMQ_POLLIN, 0};
        int64_t now = rst_clock_wall_ms ();
        long wait = (long) (next_sync - now);
        if (wait < 0)
            wait = 0;
        if (zmq_poll (&item, 1, wait) < 0 && errno != EINTR) {
            rst_error ("keeper", "zmq_poll: %s", zmq_strerror (errno));
            break;
        }
        if (item.revents & ZMQ_POLLIN)
            s_drain_acks (self);
        now = rst_clock_wall_ms ();
        if (now >= next_sync) {
            rst_metrics_inc (self->metrics,
                             rst_journal_sync (self->journal) ? self->m_sync_fail : self->m_sync, 1);
            next_sync = now + self->sync_ms;
        }
        if (now >= next_second) {
            s_replay_step (self, now);
            s_measure (self, now);
            next_second = now + 1000;
        }
    }
    s_drain_acks (self);
    rst_journal_sync (self->journal);
    s_measure (self, rst_clock_wall_ms ());
    return NULL;
}

rst_keeper_t *
rst_keeper_new (rst_journal_t *journal, void *zmq_ctx, const rst_topology_t *topo,
                const char *node, int instance, char *err, size_t errlen)
{
    return rst_keeper_new_keys (journal, zmq_ctx, topo, node, instance, &rst_keeper_default_keys,
                                err, errlen);
}

rst_keeper_t *
rst_keeper_new_keys (rst_journal_t *journal, void *zmq_ctx, const rst_topology_t *topo,
                     const char *node, int instance, const rst_keeper_keys_t *keys, char *err,
                     size_t errlen)
{
    rst_keeper_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init (&self->lock, NULL);
    self->journal = journal;
    self->metric_prefix = keys->metric_prefix;
    self->sync_ms = (int) rst_topology_get_long (topo, node, instance, keys->sync_ms, 10);
    if (self->sync_ms < 1)
        self->sync_ms = 1;
    self->replay_after_ms = 1000 * rst_topology_get_long (topo, node, instance, keys->replay_after, 5);
    if (self->replay_after_ms < 1000)
        self->replay_after_ms = 1000;
    self->started_ms = rst_clock_wall_ms ();
    self->next_pass_ms = self->started_ms;
    self->metrics = rst_metrics_new ();
    self->published = rst_metrics_new ();
    if (!self->metrics || !self->published) {
        snprintf (err, errlen, "out of memory");
        goto fail;
    }
    s_declare (self);
    rst_metrics_copy (self->published, self->metrics);
    self->acks = rst_zsock_new (zmq_ctx, ZMQ_PULL, S_SOCKET_HWM, S_LINGER_MS, 0);
    self->push = rst_zsock_new (zmq_ctx, ZMQ_PUSH, S_SOCKET_HWM, S_LINGER_MS, RST_ZSOCK_IMMEDIATE);
    if (!self->acks || !self->push) {
        snprintf (err, errlen, "zmq_socket: %s", zmq_strerror (errno));
        goto fail;
    }
    if (rst_topology_attach (topo, self->acks, node, instance, keys->acks, err, errlen)
        || rst_topology_attach (topo, self->push, node, instance, keys->events, err, errlen))
        goto fail;
    if (pthread_create (&self->thread, NULL, s_keeper_main, self)) {
        snprintf (err, errlen, "pthread_create failed");
        goto fail;
    }
    self->thread_started = 1;
    return self;
fail:
    rst_keeper_destroy (&self);
    return NULL;
}

void
rst_keeper_destroy (rst_keeper_t **self_p)
{
    rst_keeper_t *self = *self_p;
    if (!self)
        return;
    if (self->thread_started) {
        atomic_store (&self->stop, 1);
        pthread_join (self->thread, NULL);
    }
    if (self->acks)
        zmq_close (self->acks);
    if (self->push)
        zmq_close (self->push);
    rst_metrics_destroy (&self->metrics);
    rst_metrics_destroy (&self->published);
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

char *
rst_keeper_render_metrics (rst_keeper_t *self)
{
    pthread_mutex_lock (&self->lock);
    char *text = rst_metrics_render (self->published);
    pthread_mutex_unlock (&self->lock);
    return text;
}
