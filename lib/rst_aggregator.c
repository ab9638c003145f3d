/*  rst_aggregator — hourly funnel aggregates, counted exactly once.

    Role: issue 5 §1. The seller's numbers (clicks, automated clicks,
    starts, checkouts, purchases, revenue per owner, pool, bot, local day
    and hour, utm_source and utm_campaign) live in analytics_hourly
    (schemas/sql/005_analytics.sql); this actor keeps them, live and exact.

    Sockets (topology [aggregator]):
      sub   SUB (every topic), connected to every endpoint of `sub`
            (`enricher.pub`: each enricher's PUB). Messages are "enriched"
            maps back to back (schemas/pipeline.md), automated traffic
            included; a malformed map is counted, logged (at most
            S_BAD_LOGS_PER_S a second) and dropped. RCVHWM S_SUB_HWM
            messages. No socket of its own: nothing connects to it.

    Exactly once (the statements are in rst_aggstore.c):
      - a batch is counted by ONE statement: the ids go into
        analytics_counted ON CONFLICT DO NOTHING RETURNING event_id, and
        only the returned ones are added to analytics_hourly. A crash before
        the commit counts nothing; after it, the ids are known. So replays
        (the journals resend until every stage acked, and the recorder
        forwards replays too), a restart with a batch in hand, and the
        stream meeting the catch-up never count an event twice;
      - the stream is the fast path, not the truth. A PUB drops silently
        for a lagging subscriber, and nothing is published to a subscriber
        that is down or reconnecting. A catch-up pass counts from the
        durable record (clicks and funnel_events, written by the recorder
        BEFORE it forwards an event) every event not yet counted that was
        stored since the watermark minus a look-back (everything on the
        first start) and at least catchup_grace_s ago (so that the stream,
        which carries the enricher's verdict, normally comes first). It
        runs on start, every catchup_s, and soon after a gap is suspected.
        The look-back is catchup_window_s for the pass on start and then
        every catchup_window_s / S_FULL_PER_WINDOW (the full audit of the
        last hour by default); the passes in between look back only
        S_RECENT_LOOKBACK_S beyond the watermark (rows committed late),
        since the anti-join over a whole window costs about a second per
        million events stored in it. What it finds is the gap signal: counted in
        rastro_aggregator_counted_total{via="catchup"}, logged, and a pass
        after the first that finds anything counts in
        rastro_aggregator_gaps_total;
      - gap suspicions: the stream has no sequence number of its own; the
        events' journal `seq` jumping ahead (rst_aggseq, a hint only),
        stream events dropped while PostgreSQL was away, and stream events
        not (yet) found in the durable record each bring the next pass
        forward to catchup_grace_s + 1 s from now.

    Dimensions come from the durable record for both paths (rst_aggstore.c
    says why), the automated verdict from the stream when the event came
    that way (user agent or per-IP rate), else from the user-agent rules
    of rst_traffic (the per-IP rate is only known from the stream).

    Loop and states:

        IDLE --event--> FILLING --batch_max events, or batch_ms after the
          ^                        first one--> COUNTING (one statement)
          |                                          |
          +------------- committed: batch cleared ---+
                                                     |
        COUNTING --connection lost, lock, missing table--> BACKOFF (the
          batch is kept; 100 ms doubling to 5 s; logged once per episode;
          stream events beyond a full batch are dropped and counted, and
          suspect a gap) --PostgreSQL answers--> COUNTING
        COUNTING --PostgreSQL refused the data--> the batch is dropped
          (logged, counted); the catch-up will meet those events again

        catch-up (interleaved with the stream, one chunk per iteration):
        WAITING --due--> BEGIN (watermark, clock) --> CHUNK (up to
          batch_max uncounted events, classified, counted like a batch)
          --chunk after chunk--> END (watermark = pass start - grace)
          --> WAITING (catchup_s)
        any failure: the pass is dropped and begins again when due.

        every hour: purge counted ids older than retention_days (+ 2 days),
        S_PURGE_CHUNK rows a statement.
        every second: heartbeat file with the metrics.

    Caveats: an event the stream delivered while PostgreSQL could not be
    written and that was dropped (batch full) is counted by the catch-up
    with the user-agent verdict only. A row that commits more than
    S_RECENT_LOOKBACK_S after its stored_at (a recorder statement that long)
    and that the stream lost waits for the next full-window pass; one that
    commits more than catchup_window_s late is never found by the
    catch-up. Events older than retention_days are never counted. The
    per-IP-rate class of automated traffic is only known from the stream.
*/
#include "rst_aggregator.h"
#include "rst_aggbatch.h"
#include "rst_aggseq.h"
#include "rst_aggstore.h"
#include "rst_clock.h"
#include "rst_db.h"
#include "rst_log.h"
#include "rst_metrics.h"
#include "rst_pipeline.h"
#include "rst_zsock.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define S_CLS               "aggregator"
#define S_SUB_HWM           100000      //  messages queued from the enrichers
#define S_LINGER_MS         0           //  a SUB never has anything to send
#define S_DRAIN_MAX         64          //  messages read per poll wake-up
#define S_HEARTBEAT_MS      1000
#define S_BACKOFF_MIN_MS    100
#define S_BACKOFF_MAX_MS    5000
#define S_BAD_LOGS_PER_S    10
#define S_PURGE_FIRST_MS    60000       //  first purge a minute after the start
#define S_PURGE_EVERY_MS    3600000     //  then every hour
#define S_PURGE_CHUNK       10000       //  counted ids deleted per statement
#define S_GAP_EXTRA_MS      1000        //  a suspected gap: catch-up at grace + this
#define S_RECENT_LOOKBACK_S 60          //  look-back of the frequent passes beyond the watermark
#define S_FULL_PER_WINDOW   6           //  full-window passes per catchup_window_s

static const double s_latency_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                          0.1,   0.25,   0.5,   1,    2.5,   5};

struct rst_aggregator_t {
    const rst_config_t *cfg;        //  borrowed
    const rst_topology_t *topo;     //  borrowed
    int instance;
    void *zmq_ctx;                  //  owned
    void *sub;                      //  SUB, connected to every enricher's pub
    char sub_ep[1024];              //  raw topology value, for the config print

    int batch_ms;                   //  settings (topology [aggregator])
    size_t batch_max;
    int catchup_s, window_s, grace_s, retention_days;

    rst_aggbatch_t *batch;          //  stream events waiting to be counted
    int64_t deadline_ms;            //  batch_ms after the batch's first event
    rst_aggbatch_t *chunk;          //  the catch-up chunk being counted
    rst_aggseq_t *seqs;             //  journal seq per src (gap hints)

    PGconn *pg;                     //  NULL while disconnected
    int pg_down;                    //  inside a failure episode (logged once)
    int64_t pg_down_since_ms;
    int pg_attempts;                //  failed attempts in this episode
    int backoff_ms;
    int64_t pg_next_ms;             //  no PostgreSQL work before this (backoff)

    int in_pass;                    //  a catch-up pass is under way
    rst_aggstore_pass_t pass;
    const char *pass_why;           //  why the pass (or the next one) runs
    long pass_found;                //  events the current pass counted
    int64_t pass_started_ms;
    int64_t next_catchup_ms;        //  when the next pass begins
    int64_t next_full_ms;           //  when a pass looks back catchup_window_s again
    int64_t next_purge_ms;

    rst_metrics_t *metrics;         //  owned by the loop's thread
    int m_in, m_bad, m_stream, m_catchup, m_dups, m_unmatched, m_too_old, m_dropped, m_seq_gaps,
        m_passes, m_gaps, m_last_found, m_latency, m_lag, m_pending, m_pg_errors, m_pg_up,
        m_purged;
    int64_t next_heartbeat_ms;
    rst_log_budget_t bad_logs;      //  rate limit of decode-failure logs
};

//  --------------------------------------------------------------------------
//  Metrics and heartbeat

static void
s_metrics_declare (rst_aggregator_t *self)
{
    rst_metrics_t *m = self->metrics;
    size_t nb = sizeof s_latency_bounds / sizeof s_latency_bounds[0];
    self->m_in = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_aggregator_events_total",
                                  "Enriched events received on the stream.", NULL, 0);
    self->m_bad = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_aggregator_decode_failures_total",
                                   "Malformed stream messages dropped (counted, logged).", NULL, 0);
    self->m_stream = rst_metrics_add (m, RST_METRIC_COUNTER,
                                      "rastro_aggregator_counted_total{via=\"stream\"}",
                                      "Events counted into analytics_hourly, by the path that "
                                      "counted them first (catchup = missed by the stream).",
                                      NULL, 0);
    self->m_catchup = rst_metrics_add (m, RST_METRIC_COUNTER,
                                       "rastro_aggregator_counted_total{via=\"catchup\"}",
                                       "Events counted into analytics_hourly, by the path that "
                                       "counted them first (catchup = missed by the stream).",
                                       NULL, 0);
    self->m_dups = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_aggregator_duplicates_total",
                                    "Events already counted (replays, or counted by the other "
                                    "path): skipped.", NULL, 0);
    self->m_unmatched = rst_metrics_add (m, RST_METRIC_COUNTER,
                                         "rastro_aggregator_unmatched_total",
                                         "Stream events not found in the durable record (left "
                                         "to the catch-up).", NULL, 0);
    self->m_too_old = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_aggregator_too_old_total",
                                       "Events older than retention_days: not counted.", NULL, 0);
    self->m_dropped = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_aggregator_dropped_total",
                                       "Stream events dropped (PostgreSQL away and the batch "
                                       "full, or refused): left to the catch-up.", NULL, 0);
    self->m_seq_gaps = rst_metrics_add (m, RST_METRIC_COUNTER,
                                        "rastro_aggregator_sequence_gaps_total",
                                        "Journal sequence numbers skipped on the stream (a hint "
                                        "of lost messages; may also be reordering).", NULL, 0);
    self->m_passes = rst_metrics_add (m, RST_METRIC_COUNTER,
                                      "rastro_aggregator_catchup_passes_total",
                                      "Catch-up passes completed.", NULL, 0);
    self->m_gaps = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_aggregator_gaps_total",
                                    "Catch-up passes (after the start-up one) that found events "
                                    "the stream had not delivered.", NULL, 0);
    self->m_last_found = rst_metrics_add (m, RST_METRIC_GAUGE,
                                          "rastro_aggregator_catchup_last_found",
                                          "Events the last completed catch-up pass counted.",
                                          NULL, 0);
    self->m_latency = rst_metrics_add (m, RST_METRIC_HISTOGRAM, "rastro_aggregator_batch_seconds",
                                       "Duration of one counting statement (commit included).",
                                       s_latency_bounds, nb);
    self->m_lag = rst_metrics_add (m, RST_METRIC_GAUGE, "rastro_aggregator_lag_seconds",
                                   "Wall time from the newest event of the last stream batch to "
                                   "its counting.", NULL, 0);
    self->m_pending = rst_metrics_add (m, RST_METRIC_GAUGE, "rastro_aggregator_batch_events",
                                       "Stream events waiting to be counted.", NULL, 0);
    self->m_pg_errors = rst_metrics_add (m, RST_METRIC_COUNTER,
                                         "rastro_aggregator_pg_errors_total",
                                         "Failed PostgreSQL connects and statements.", NULL, 0);
    self->m_pg_up = rst_metrics_add (m, RST_METRIC_GAUGE, "rastro_aggregator_postgres_up",
                                     "1 when the last PostgreSQL operation succeeded.", NULL, 0);
    self->m_purged = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_aggregator_purged_total",
                                      "Counted ids deleted after retention_days.", NULL, 0);
}

static void
s_heartbeat (rst_aggregator_t *self, int force)
{
    int64_t now = rst_clock_mono_ms ();
    if (!force && now < self->next_heartbeat_ms)
        return;
    self->next_heartbeat_ms = now + S_HEARTBEAT_MS;
    rst_metrics_set (self->metrics, self->m_pending, (double) rst_aggbatch_count (self->batch));
    rst_metrics_set (self->metrics, self->m_pg_up, self->pg && !self->pg_down ? 1 : 0);
    rst_metrics_heartbeat (self->metrics, self->cfg->data_dir, S_CLS, self->instance);
}

//  --------------------------------------------------------------------------
//  Construction

//  Reads KEY of [aggregator] into *OUT, checked against MIN..MAX.
static int
s_setting (const rst_topology_t *topo, int instance, const char *key, long def, long min,
           long max, int *out, char *err, size_t errlen)
{
    long v = rst_topology_get_long (topo, S_CLS, instance, key, def);
    if (v < min || v > max) {
        snprintf (err, errlen, "topology: [aggregator] %s must be %ld..%ld, not %ld", key, min,
                  max, v);
        return -1;
    }
    *out = (int) v;
    return 0;
}

rst_aggregator_t *
rst_aggregator_new (const rst_config_t *cfg, const rst_topology_t *topo, int instance,
                    char *err, size_t errlen)
{
    assert (cfg);
    assert (topo);
    rst_aggregator_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, errlen, "aggregator: out of memory");
        return NULL;
    }
    self->cfg = cfg;
    self->topo = topo;
    self->instance = instance;
    self->backoff_ms = S_BACKOFF_MIN_MS;
    self->pass_why = "start";

    int bmax;
    if (s_setting (topo, instance, "batch_ms", RST_AGGREGATOR_BATCH_MS_DEFAULT, 0, 60000,
                   &self->batch_ms, err, errlen)
        || s_setting (topo, instance, "batch_max", RST_AGGREGATOR_BATCH_MAX_DEFAULT, 1,
                      RST_AGGREGATOR_BATCH_MAX_LIMIT, &bmax, err, errlen)
        || s_setting (topo, instance, "catchup_s", RST_AGGREGATOR_CATCHUP_S_DEFAULT, 1, 86400,
                      &self->catchup_s, err, errlen)
        || s_setting (topo, instance, "catchup_grace_s", RST_AGGREGATOR_CATCHUP_GRACE_S_DEFAULT,
                      0, 3600, &self->grace_s, err, errlen)
        || s_setting (topo, instance, "retention_days", RST_AGGREGATOR_RETENTION_DAYS_DEFAULT, 2,
                      3650, &self->retention_days, err, errlen)
        || s_setting (topo, instance, "catchup_window_s", RST_AGGREGATOR_CATCHUP_WINDOW_S_DEFAULT,
                      60, self->retention_days * 86400L / 2, &self->window_s, err, errlen))
        goto fail;
    self->batch_max = (size_t) bmax;
    if (rst_topology_get (topo, S_CLS, instance, "sub", self->sub_ep, sizeof self->sub_ep)) {
        snprintf (err, errlen, "topology: [aggregator] has no `sub` (e.g. sub = enricher.pub)");
        goto fail;
    }

    self->batch = rst_aggbatch_new (self->batch_max);
    self->chunk = rst_aggbatch_new (self->batch_max);
    self->seqs = rst_aggseq_new ();
    self->metrics = rst_metrics_new ();
    if (!self->batch || !self->chunk || !self->seqs || !self->metrics) {
        snprintf (err, errlen, "aggregator: out of memory");
        goto fail;
    }
    s_metrics_declare (self);

    self->zmq_ctx = zmq_ctx_new ();
    if (!self->zmq_ctx) {
        snprintf (err, errlen, "aggregator: libzmq: zmq_ctx_new: %s", zmq_strerror (zmq_errno ()));
        goto fail;
    }
    self->sub = rst_zsock_new (self->zmq_ctx, ZMQ_SUB, S_SUB_HWM, S_LINGER_MS, 0);
    if (!self->sub || zmq_setsockopt (self->sub, ZMQ_SUBSCRIBE, "", 0)) {
        snprintf (err, errlen, "aggregator: libzmq: socket: %s", zmq_strerror (zmq_errno ()));
        goto fail;
    }
    if (rst_topology_attach (topo, self->sub, S_CLS, instance, "sub", err, errlen))
        goto fail;

    char why[512];
    self->pg = rst_db_connect (cfg, why, sizeof why);
    if (!self->pg) {
        rst_error (S_CLS, "%s; retrying (the catch-up will count what the stream brings meanwhile)",
                   why);
        self->pg_down = 1;
        self->pg_down_since_ms = rst_clock_mono_ms ();
        rst_metrics_inc (self->metrics, self->m_pg_errors, 1);
    }
    int64_t now = rst_clock_mono_ms ();
    self->next_catchup_ms = now;        //  a pass on start
    self->next_purge_ms = now + S_PURGE_FIRST_MS;
    return self;
fail:
    rst_aggregator_destroy (&self);
    return NULL;
}

void
rst_aggregator_destroy (rst_aggregator_t **self_p)
{
    assert (self_p);
    rst_aggregator_t *self = *self_p;
    if (!self)
        return;
    if (self->batch && rst_aggbatch_count (self->batch))
        rst_warn (S_CLS, "%zu stream events not counted at exit; the catch-up will count them",
                  rst_aggbatch_count (self->batch));
    if (self->pg)
        PQfinish (self->pg);
    if (self->sub)
        zmq_close (self->sub);
    if (self->zmq_ctx)
        zmq_ctx_term (self->zmq_ctx);
    rst_aggbatch_destroy (&self->batch);
    rst_aggbatch_destroy (&self->chunk);
    rst_aggseq_destroy (&self->seqs);
    rst_metrics_destroy (&self->metrics);
    free (self);
    *self_p = NULL;
}

void
rst_aggregator_print (const rst_aggregator_t *self)
{
    assert (self);
    rst_info (S_CLS, "instance = %d", self->instance);
    char *eps[RST_TOPOLOGY_MAX_ENDPOINTS];
    char err[256];
    int n = rst_topology_endpoints (self->topo, S_CLS, self->instance, "sub", eps,
                                    RST_TOPOLOGY_MAX_ENDPOINTS, err, sizeof err);
    rst_info (S_CLS, "sub = %s (SUB, every topic: enriched events)", self->sub_ep);
    for (int i = 0; i < n; i++)
        rst_info (S_CLS, "sub[%d] = %s", i, eps[i]);
    if (n > 0)
        rst_topology_endpoints_free (eps, n);
    rst_info (S_CLS, "batch_ms = %d", self->batch_ms);
    rst_info (S_CLS, "batch_max = %zu", self->batch_max);
    rst_info (S_CLS, "catchup_s = %d (catch-up from clicks and funnel_events)", self->catchup_s);
    rst_info (S_CLS, "catchup_window_s = %d", self->window_s);
    rst_info (S_CLS, "catchup_grace_s = %d", self->grace_s);
    rst_info (S_CLS, "retention_days = %d (older events are not counted)", self->retention_days);
}

//  --------------------------------------------------------------------------
//  PostgreSQL

//  Notes a failure: counted every time, logged once per episode; waits
//  a backoff before the next attempt; drops a broken connection.
static void
s_pg_failed (rst_aggregator_t *self, const char *what, const char *why)
{
    rst_metrics_inc (self->metrics, self->m_pg_errors, 1);
    self->pg_attempts++;
    int64_t now = rst_clock_mono_ms ();
    if (!self->pg_down) {
        self->pg_down = 1;
        self->pg_down_since_ms = now;
        rst_error (S_CLS, "PostgreSQL: %s: %s; retrying with backoff (%zu stream events kept)",
                   what, why, rst_aggbatch_count (self->batch));
    }
    else
        rst_debug (S_CLS, "PostgreSQL: %s: %s", what, why);
    if (self->pg && PQstatus (self->pg) != CONNECTION_OK) {
        PQfinish (self->pg);
        self->pg = NULL;
    }
    self->pg_next_ms = now + self->backoff_ms;
    self->backoff_ms = self->backoff_ms * 2 > S_BACKOFF_MAX_MS ? S_BACKOFF_MAX_MS
                                                                : self->backoff_ms * 2;
}

static void
s_pg_ok (rst_aggregator_t *self)
{
    if (self->pg_down)
        rst_info (S_CLS, "PostgreSQL is back after %.1f s and %d failed attempts",
                  (double) (rst_clock_mono_ms () - self->pg_down_since_ms) / 1000.0,
                  self->pg_attempts);
    self->pg_down = 0;
    self->pg_attempts = 0;
    self->backoff_ms = S_BACKOFF_MIN_MS;
}

//  1 when PostgreSQL work may be done now (connecting if needed), else 0.
static int
s_pg_ready (rst_aggregator_t *self)
{
    if (rst_clock_mono_ms () < self->pg_next_ms)
        return 0;
    if (self->pg)
        return 1;
    char why[512];
    self->pg = rst_db_connect (self->cfg, why, sizeof why);
    if (!self->pg) {
        s_pg_failed (self, "connect", why);
        return 0;
    }
    return 1;
}

//  Brings the next catch-up pass forward: a gap is suspected (WHY).
static void
s_suspect_gap (rst_aggregator_t *self, const char *why)
{
    int64_t at = rst_clock_mono_ms () + self->grace_s * 1000L + S_GAP_EXTRA_MS;
    if (!self->in_pass && at < self->next_catchup_ms) {
        self->next_catchup_ms = at;
        self->pass_why = why;
        rst_debug (S_CLS, "gap suspected (%s): catch-up in %d s", why, self->grace_s + 1);
    }
}

//  Counts BATCH with VIA. Returns the rst_aggstore code; on success fills
//  *TALLY and updates the metrics.
static int
s_count (rst_aggregator_t *self, rst_aggbatch_t *batch, const char *via,
         rst_aggstore_tally_t *tally)
{
    const char *ids, *flags;
    char why[512];
    if (rst_aggbatch_params (batch, &ids, &flags)) {
        rst_error (S_CLS, "counting %zu events: out of memory", rst_aggbatch_count (batch));
        self->pg_next_ms = rst_clock_mono_ms () + S_BACKOFF_MAX_MS;
        return RST_AGGSTORE_RETRY;
    }
    uint64_t t0 = rst_clock_mono_ns ();
    int rc = rst_aggstore_count (self->pg, ids, flags, via, self->retention_days, tally, why,
                                 sizeof why);
    if (rc != RST_AGGSTORE_OK) {
        if (rc == RST_AGGSTORE_REFUSED)
            rst_error (S_CLS, "PostgreSQL refused a batch of %zu events (%s): %s; dropped, the "
                       "catch-up meets them again", rst_aggbatch_count (batch), via, why);
        else
            s_pg_failed (self, "counting", why);
        return rc;
    }
    s_pg_ok (self);
    rst_metrics_observe (self->metrics, self->m_latency,
                         (double) (rst_clock_mono_ns () - t0) / 1e9);
    int stream = !strcmp (via, RST_AGGSTORE_VIA_STREAM);
    rst_metrics_inc (self->metrics, stream ? self->m_stream : self->m_catchup,
                     (double) tally->counted);
    rst_metrics_inc (self->metrics, self->m_dups, (double) tally->duplicates);
    rst_metrics_inc (self->metrics, self->m_too_old, (double) tally->too_old);
    if (stream)
        rst_metrics_inc (self->metrics, self->m_unmatched, (double) tally->unmatched);
    return rc;
}

//  Counts the stream batch if PostgreSQL can be written. Keeps it when
//  PostgreSQL is away; drops it when PostgreSQL refuses it.
static void
s_flush (rst_aggregator_t *self)
{
    size_t n = rst_aggbatch_count (self->batch);
    if (n == 0 || !s_pg_ready (self))
        return;
    rst_aggstore_tally_t tally;
    int rc = s_count (self, self->batch, RST_AGGSTORE_VIA_STREAM, &tally);
    if (rc == RST_AGGSTORE_RETRY)
        return;
    if (rc == RST_AGGSTORE_REFUSED) {
        rst_metrics_inc (self->metrics, self->m_dropped, (double) n);
        s_suspect_gap (self, "a batch was refused");
    }
    else {
        int64_t newest = rst_aggbatch_newest_ms (self->batch);
        double lag = (double) (rst_clock_wall_ms () - newest) / 1000.0;
        rst_metrics_set (self->metrics, self->m_lag, lag > 0 ? lag : 0);
        if (tally.unmatched) {
            rst_debug (S_CLS, "%ld stream events not in the durable record yet", tally.unmatched);
            s_suspect_gap (self, "stream events not in the durable record");
        }
    }
    rst_aggbatch_clear (self->batch);
    self->deadline_ms = 0;
}

//  --------------------------------------------------------------------------
//  The stream

static void
s_bad_message (rst_aggregator_t *self, const char *why)
{
    rst_metrics_inc (self->metrics, self->m_bad, 1);
    int refused;
    int log = rst_log_budget (&self->bad_logs, S_BAD_LOGS_PER_S, rst_clock_mono_ms (), &refused);
    if (refused)
        rst_warn (S_CLS, "%d more malformed enriched events were dropped without a log line",
                  refused);
    if (log)
        rst_warn (S_CLS, "dropped a malformed enriched event: %s", why);
}

static void
s_on_event (rst_aggregator_t *self, const rst_enriched_t *ev)
{
    rst_metrics_inc (self->metrics, self->m_in, 1);
    uint64_t skipped = rst_aggseq_note (self->seqs, ev->src.ptr, ev->src.len, ev->seq);
    if (skipped) {
        rst_metrics_inc (self->metrics, self->m_seq_gaps, (double) skipped);
        s_suspect_gap (self, "a journal sequence number jumped");
    }
    if (rst_aggbatch_is_full (self->batch))
        s_flush (self);
    if (rst_aggbatch_add (self->batch, ev->event_id.ptr, ev->event_id.len, ev->automated,
                          ev->time_ms)) {
        //  PostgreSQL is away and the batch is full: the catch-up will
        //  count this one from the durable record.
        rst_metrics_inc (self->metrics, self->m_dropped, 1);
        s_suspect_gap (self, "stream events were dropped");
        return;
    }
    if (rst_aggbatch_count (self->batch) == 1)
        self->deadline_ms = rst_clock_mono_ms () + self->batch_ms;
    if (rst_aggbatch_is_full (self->batch))
        s_flush (self);
}

static void
s_handle_message (rst_aggregator_t *self, const char *data, size_t len)
{
    size_t offset = 0;
    while (offset < len) {
        char err[256];
        rst_enriched_t *ev = rst_enriched_decode (data, len, &offset, err, sizeof err);
        if (!ev) {
            s_bad_message (self, err);
            continue;
        }
        s_on_event (self, ev);
        rst_enriched_destroy (&ev);
    }
}

//  --------------------------------------------------------------------------
//  Catch-up and purge

//  Abandons the pass in hand after a failure; the next begins when due.
static void
s_pass_abandon (rst_aggregator_t *self, const char *what, const char *why)
{
    self->in_pass = 0;
    s_pg_failed (self, what, why);
    if (self->next_catchup_ms < self->pg_next_ms)
        self->next_catchup_ms = self->pg_next_ms;
}

static void
s_pass_done (rst_aggregator_t *self)
{
    char why[512];
    int rc = rst_aggstore_pass_end (self->pg, &self->pass, why, sizeof why);
    if (rc != RST_AGGSTORE_OK) {
        s_pass_abandon (self, "catch-up watermark", why);
        return;
    }
    s_pg_ok (self);
    double secs = (double) (rst_clock_mono_ms () - self->pass_started_ms) / 1000.0;
    rst_metrics_inc (self->metrics, self->m_passes, 1);
    rst_metrics_set (self->metrics, self->m_last_found, (double) self->pass_found);
    int on_start = !strcmp (self->pass_why, "start");
    if (on_start)
        rst_info (S_CLS, "catch-up on start: %ld events counted from the durable record (%s) "
                  "in %.1f s", self->pass_found,
                  self->pass.first ? "first start: everything" : "since the watermark", secs);
    else if (self->pass_found > 0) {
        rst_metrics_inc (self->metrics, self->m_gaps, 1);
        rst_warn (S_CLS, "catch-up (%s) counted %ld events the stream had not delivered (lost "
                  "PUB messages, a stream late by more than %d s, or events not enriched)",
                  self->pass_why, self->pass_found, self->grace_s);
    }
    else
        rst_debug (S_CLS, "catch-up (%s): nothing missed (%.2f s)", self->pass_why, secs);
    self->in_pass = 0;
    self->pass_why = "periodic";
    self->next_catchup_ms = rst_clock_mono_ms () + self->catchup_s * 1000L;
}

//  Does one step of the catch-up when it is due: begin a pass, or count
//  its next chunk, or end it.
static void
s_catchup_step (rst_aggregator_t *self)
{
    if (!self->in_pass && rst_clock_mono_ms () < self->next_catchup_ms)
        return;
    //  The stream's verdicts first: what it holds is counted before the
    //  catch-up could take the same events with the user-agent verdict.
    s_flush (self);
    if (rst_aggbatch_count (self->batch) || !s_pg_ready (self))
        return;
    char why[512];
    if (!self->in_pass) {
        int64_t now = rst_clock_mono_ms ();
        int full = now >= self->next_full_ms;
        int lookback = full ? self->window_s : S_RECENT_LOOKBACK_S;
        int rc = rst_aggstore_pass_begin (self->pg, lookback, self->grace_s, &self->pass, why,
                                          sizeof why);
        if (rc != RST_AGGSTORE_OK) {
            s_pass_abandon (self, "catch-up", why);
            return;
        }
        self->in_pass = 1;
        self->pass_found = 0;
        if (full)
            self->next_full_ms = now + self->window_s * 1000L / S_FULL_PER_WINDOW;
        self->pass_started_ms = rst_clock_mono_ms ();
        rst_debug (S_CLS, "catch-up (%s): stored from %s until %s", self->pass_why,
                   self->pass.from, self->pass.until);
    }
    int rc = rst_aggstore_pass_next (self->pg, &self->pass, self->chunk, self->retention_days,
                                     why, sizeof why);
    if (rc != RST_AGGSTORE_OK) {
        s_pass_abandon (self, "catch-up", why);
        return;
    }
    size_t n = rst_aggbatch_count (self->chunk);
    if (n == 0) {
        if (self->pass.table >= 2)
            s_pass_done (self);
        return;
    }
    rst_aggstore_tally_t tally;
    rc = s_count (self, self->chunk, RST_AGGSTORE_VIA_CATCHUP, &tally);
    if (rc != RST_AGGSTORE_OK) {
        self->in_pass = 0;
        if (self->next_catchup_ms < self->pg_next_ms)
            self->next_catchup_ms = self->pg_next_ms;
        if (rc == RST_AGGSTORE_REFUSED)     //  not worth hammering: wait a period
            self->next_catchup_ms = rst_clock_mono_ms () + self->catchup_s * 1000L;
        return;
    }
    self->pass_found += tally.counted;
    if (tally.counted + tally.duplicates + tally.too_old == 0) {
        //  The anti-join returned rows the count could not place: the same
        //  rows would come back forever. Not expected; stop this pass.
        rst_warn (S_CLS, "catch-up: %zu events found but none could be counted; pass stopped",
                  n);
        self->in_pass = 0;
        self->next_catchup_ms = rst_clock_mono_ms () + self->catchup_s * 1000L;
    }
    else if (self->pass.table >= 2)
        s_pass_done (self);
}

static void
s_purge_step (rst_aggregator_t *self)
{
    if (self->in_pass || rst_clock_mono_ms () < self->next_purge_ms || !s_pg_ready (self))
        return;
    long deleted = 0;
    char why[512];
    int rc = rst_aggstore_purge (self->pg, self->retention_days, S_PURGE_CHUNK, &deleted, why,
                                 sizeof why);
    if (rc != RST_AGGSTORE_OK) {
        s_pg_failed (self, "purge", why);
        self->next_purge_ms = rst_clock_mono_ms () + S_PURGE_EVERY_MS / 60;
        return;
    }
    s_pg_ok (self);
    rst_metrics_inc (self->metrics, self->m_purged, (double) deleted);
    if (deleted)
        rst_info (S_CLS, "purged %ld counted ids older than %d days", deleted,
                  self->retention_days);
    //  A full chunk: more are waiting; go on at the next iteration.
    self->next_purge_ms = rst_clock_mono_ms () + (deleted >= S_PURGE_CHUNK ? 0 : S_PURGE_EVERY_MS);
}

//  --------------------------------------------------------------------------
//  The loop

//  Milliseconds zmq_poll may wait before something is due.
static long
s_wait_ms (const rst_aggregator_t *self)
{
    int64_t now = rst_clock_mono_ms ();
    int64_t pg_at = self->pg_next_ms > now ? self->pg_next_ms : now;
    int64_t wake = self->next_heartbeat_ms;
#define S_AT_LEAST(t) ((t) > pg_at ? (t) : pg_at)
    if (rst_aggbatch_count (self->batch) && S_AT_LEAST (self->deadline_ms) < wake)
        wake = S_AT_LEAST (self->deadline_ms);
    int64_t catchup = self->in_pass ? pg_at : S_AT_LEAST (self->next_catchup_ms);
    if (catchup < wake)
        wake = catchup;
    if (S_AT_LEAST (self->next_purge_ms) < wake)
        wake = S_AT_LEAST (self->next_purge_ms);
#undef S_AT_LEAST
    int64_t wait = wake - now;
    return wait < 0 ? 0 : wait > 1000 ? 1000 : (long) wait;
}

int
rst_aggregator_run (rst_aggregator_t *self, volatile sig_atomic_t *stop)
{
    assert (self);
    rst_info (S_CLS, "counting enriched events into analytics_hourly");
    zmq_msg_t msg;
    zmq_msg_init (&msg);
    int rc = 0;
    while (!*stop) {
        zmq_pollitem_t items[] = {{self->sub, 0, ZMQ_POLLIN, 0}};
        if (zmq_poll (items, 1, s_wait_ms (self)) < 0) {
            if (zmq_errno () == EINTR)
                continue;
            rst_error (S_CLS, "libzmq: zmq_poll: %s", zmq_strerror (zmq_errno ()));
            rc = -1;
            break;
        }
        for (int n = 0; n < S_DRAIN_MAX && (items[0].revents & ZMQ_POLLIN); n++) {
            if (zmq_msg_recv (&msg, self->sub, ZMQ_DONTWAIT) < 0)
                break;
            s_handle_message (self, zmq_msg_data (&msg), zmq_msg_size (&msg));
        }
        if (rst_aggbatch_count (self->batch) && rst_clock_mono_ms () >= self->deadline_ms)
            s_flush (self);
        s_catchup_step (self);
        s_purge_step (self);
        s_heartbeat (self, 0);
    }
    zmq_msg_close (&msg);
    //  Shutdown: count what is in hand if PostgreSQL answers at once.
    if (rst_aggbatch_count (self->batch)) {
        self->pg_next_ms = 0;
        s_flush (self);
    }
    s_heartbeat (self, 1);
    return rc;
}
