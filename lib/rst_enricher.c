/*  rst_enricher — turns raw funnel events into Meta events.

    Role: the first stage of the Meta delivery pipeline (ARCHITECTURE.md,
    issue 3 §1). Every raw event the recorders forward is decoded, checked
    against the pool/pixel cache, classified (people or automated traffic),
    mapped to its Meta event and published; events for Meta go on towards
    the limiter that owns their pixel.

    Sockets (topology [enricher]):
      in        PULL, bound. Messages of one or more raw events back to back
                (schemas/events.md); a malformed map is counted, logged
                (at most S_BAD_LOGS_PER_S a second) and dropped.
      pub       PUB, bound. One message per input message, holding every
                enriched event of it ("enriched" maps back to back,
                schemas/pipeline.md), automated traffic included: the
                aggregator and the broadcaster subscribe. A PUB drops
                silently for a subscriber that is slow (c-toolchain §5);
                analytics de-duplicates by event_id and is rebuilt from
                PostgreSQL, so that is acceptable there.
      limiters  one PUSH per endpoint (entry i = limiter instance i),
                connected, ZMQ_IMMEDIATE, sent with ZMQ_DONTWAIT. An event
                for Meta goes to limiter rst_shard_of (pixel_id,
                n_limiters), so every event of a pixel meets the same
                token bucket. A push that fails (limiter absent or full) is
                counted and DROPPED: no meta ack is sent for it, so the
                front's journal replays it after its replay_after seconds
                (topology [front]) and it comes through here again.
      acks      one PUSH per journal (rst_acks: references such as
                front.acks, events routed by their src "<node>.<i>"), like
                the recorder, but ZMQ_IMMEDIATE. Automated events are acked at once with
                stage RST_JOURNAL_ACK_META: they will never reach Meta, so
                the journal must not wait for (or replay towards) a sender.
                A failed ack is counted; the entry is replayed and acked
                again (classification is repeated, see the caveats).

    Mapping of a click (reference/meta-capi.md §4, §5):
        event_name PageView, action_source website, event_time =
        time_ms / 1000 (seconds, when the click happened), event_id = the
        event's, event_source_url = the click's url, user_data:
        client_user_agent, client_ip_address, fbc and fbp unhashed,
        external_id = SHA-256 of the click_id (hashed by rst_meta, so one
        stable external_id per lead: chat-side events of the same lead will
        carry the same click's fbc and external_id). Text is made valid
        UTF-8 first (each bad byte becomes U+FFFD), or Meta would refuse
        the whole batch.

    Chat events (start → ViewContent, checkout → InitiateCheckout,
    payment → Purchase with priority and value_cents): action_source
    `chat`, never classified by user agent or IP (they have neither);
    user_data external_id = the lead's click_id, hashed exactly as for the
    click's PageView (byte-identical), or "tg:<tg_user_id>" for an organic
    lead; fbc = the click's, looked up in PostgreSQL (SELECT fbc FROM
    clicks WHERE click_id = $1, own connection, opened on the first chat
    event) through a direct-mapped cache of S_FBC_SLOTS clicks; a click
    not found (or stored without fbc) is sent without fbc and not cached;
    country = "br" (hashed). custom_data (reference §6): value =
    value_cents / 100 in reais, currency (default BRL, upper case),
    content_ids/contents from offer_id, content_name (offer_name, cut to
    RST_PIPELINE_DIM_MAX bytes), order_id. When PostgreSQL cannot answer
    the lookup, the event is not enriched (logged, counted, not acked):
    the journal replays it later, with its fbc.

    Cache: pools → (owner, pixel), loaded by an rst_pgwatch thread on
    start, on NOTIFY rastro_config and every minute. The event already
    carries owner_id, pool_id and pixel_id (the front's snapshot at click
    time), so the event's values win: a pool that is unknown or whose
    owner or pixel changed since is counted (rastro_enricher_join_mismatch
    _total) and the event goes on. An accepted click is never dropped for
    a cache problem.

    Loop and states:

        WAITING --message on in--> ENRICHING (each event: decode, join,
          ^                          classify, build, pack) --> SENDING
          |                          (pub; one message per limiter; acks)
          +-------------------------------------+
        any state --snapshot ready--> swap the cache (old one freed)
        every second: heartbeat file with the metrics

    Caveats: an event whose Meta object cannot be built (a click without
    url or user agent that is not automated) is marked automated with
    reason "invalid", logged and acked: it can never be a valid Meta event
    (it belongs in the dead-letter store, which the sender owns: missing).
    The IP-rate rule counts a replayed event again, so a replay may be
    classified differently from the first pass; both outcomes are safe
    (Meta de-duplicates by event_id, the sender never posts an accepted
    event_id twice).
*/
#include "rst_enricher.h"
#include "rst_acks.h"
#include "rst_clock.h"
#include "rst_db.h"
#include "rst_event.h"
#include "rst_journal.h"
#include "rst_log.h"
#include "rst_meta.h"
#include "rst_metrics.h"
#include "rst_pgwatch.h"
#include "rst_pipeline.h"
#include "rst_shard.h"
#include "rst_traffic.h"
#include "rst_zsock.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define S_CLS               "enricher"
#define S_MAX_PEERS         RST_TOPOLOGY_MAX_ENDPOINTS
#define S_IN_HWM            10000
#define S_OUT_HWM           10000
#define S_PUB_HWM           100000
#define S_LINGER_MS         1000
#define S_DRAIN_MAX         64
#define S_HEARTBEAT_MS      1000
#define S_BAD_LOGS_PER_S    10
#define S_REASON_INVALID    "invalid"
#define S_FBC_SLOTS         4096        //  click_id → fbc lookups kept (direct-mapped)
#define S_CHAT_COUNTRY      "br"        //  user_data.country of every chat event
#define S_FBC_SQL           "SELECT fbc FROM clicks WHERE click_id = $1"

//  Reasons, in the order of their metrics (rastro_enricher_automated_total{reason=...}).
static const char *s_reasons[] = {
    RST_TRAFFIC_EMPTY_UA, RST_TRAFFIC_PREVIEW_UA,  RST_TRAFFIC_CRAWLER_UA, RST_TRAFFIC_TOOL_UA,
    RST_TRAFFIC_HEADLESS_UA, RST_TRAFFIC_BOT_UA, RST_TRAFFIC_IP_RATE,    S_REASON_INVALID,
};
#define S_NREASONS (sizeof s_reasons / sizeof s_reasons[0])

//  --------------------------------------------------------------------------
//  The pool cache

typedef struct {
    int64_t pool_id;
    int64_t owner_id;
    char pixel_id[RST_EVENT_SHORT_MAX + 1];
} s_pool_t;

typedef struct {
    size_t count;
    s_pool_t *pools;                //  sorted by pool_id
} s_cache_t;

static void
s_cache_free (void *snapshot)
{
    s_cache_t *cache = snapshot;
    if (!cache)
        return;
    free (cache->pools);
    free (cache);
}

static void *
s_cache_load (PGconn *conn, char *err, size_t errlen)
{
    PGresult *res = PQexec (conn, "SELECT p.id, p.owner_id, x.pixel_id FROM pools p "
                                  "JOIN pixels x ON x.id = p.pixel_ref ORDER BY p.id");
    if (PQresultStatus (res) != PGRES_TUPLES_OK) {
        snprintf (err, errlen, "loading pools: libpq: %s", strtok (PQerrorMessage (conn), "\n"));
        PQclear (res);
        return NULL;
    }
    s_cache_t *cache = calloc (1, sizeof *cache);
    int n = PQntuples (res);
    if (cache && n > 0)
        cache->pools = calloc ((size_t) n, sizeof *cache->pools);
    if (!cache || (n > 0 && !cache->pools)) {
        snprintf (err, errlen, "loading pools: out of memory");
        s_cache_free (cache);
        PQclear (res);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        s_pool_t *p = &cache->pools[cache->count++];
        p->pool_id = strtoll (PQgetvalue (res, i, 0), NULL, 10);
        p->owner_id = strtoll (PQgetvalue (res, i, 1), NULL, 10);
        snprintf (p->pixel_id, sizeof p->pixel_id, "%s", PQgetvalue (res, i, 2));
    }
    PQclear (res);
    return cache;
}

static const s_pool_t *
s_cache_find (const s_cache_t *cache, int64_t pool_id)
{
    if (!cache)
        return NULL;
    size_t lo = 0, hi = cache->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cache->pools[mid].pool_id < pool_id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < cache->count && cache->pools[lo].pool_id == pool_id ? &cache->pools[lo] : NULL;
}

//  --------------------------------------------------------------------------
//  The fbc cache: click_id → the click's fbc, for chat events

typedef struct {
    char click_id[RST_EVENT_ID_MAX + 1];    //  "" = empty slot
    char *fbc;                              //  owned; "" = the click has no fbc
} s_fbc_slot_t;

//  --------------------------------------------------------------------------
//  The enricher

struct rst_enricher_t {
    const rst_config_t *cfg;        //  borrowed
    const rst_topology_t *topo;     //  borrowed
    int instance;
    void *zmq_ctx;                  //  owned
    void *in;                       //  PULL, bound
    void *pub;                      //  PUB, bound
    void *limiters[S_MAX_PEERS];    //  PUSH per limiter instance, connected
    char *limiter_eps[S_MAX_PEERS]; //  owned (rst_topology_endpoints)
    int nlimiters;
    rst_acks_t *acks;               //  PUSH per journal (topology `acks`), ZMQ_IMMEDIATE
    char in_ep[1024], pub_ep[1024]; //  raw topology values, for the config print
    int ip_rate_per_min;
    long ip_slots;

    rst_pgwatch_t *watch;           //  owned; loads s_cache_t
    s_cache_t *cache;               //  owned; NULL until the first load
    rst_traffic_t *traffic;         //  owned

    msgpack_sbuffer pubbuf;         //  one PUB message being built
    msgpack_sbuffer limbuf[S_MAX_PEERS];    //  one message per limiter being built
    size_t limcount[S_MAX_PEERS];   //  events in limbuf[i]
    char *text;                     //  scratch: cleaned strings of one event
    size_t text_cap;
    PGconn *pg;                     //  owned; fbc lookups; NULL until needed or after a failure
    int pg_down;                    //  inside a lookup failure episode (logged once)
    s_fbc_slot_t *fbc_cache;        //  owned; S_FBC_SLOTS slots, allocated on first use

    rst_metrics_t *metrics;         //  owned by the loop's thread
    int m_in, m_bad, m_enriched, m_human, m_automated[S_NREASONS], m_pushed, m_push_fail,
        m_acks, m_ack_fail, m_refresh, m_pools, m_mismatch, m_published, m_chat,
        m_fbc_hit, m_fbc_miss, m_fbc_fail;
    int64_t next_heartbeat_ms;
    rst_log_budget_t bad_logs;      //  rate limit of decode-failure logs
};

static void
s_metrics_declare (rst_enricher_t *self)
{
    rst_metrics_t *m = self->metrics;
    self->m_in = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_enricher_events_total",
                                  "Raw events received and decoded.", NULL, 0);
    self->m_bad = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_enricher_decode_failures_total",
                                   "Malformed raw events dropped (counted, logged).", NULL, 0);
    self->m_enriched = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_enricher_enriched_total",
                                        "Events enriched and published (automated included).",
                                        NULL, 0);
    self->m_human = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_enricher_for_meta_total",
                                     "Enriched events bound for Meta (not automated).", NULL, 0);
    for (size_t i = 0; i < S_NREASONS; i++) {
        char name[128];
        snprintf (name, sizeof name, "rastro_enricher_automated_total{reason=\"%s\"}",
                  s_reasons[i]);
        self->m_automated[i] = rst_metrics_add (
            m, RST_METRIC_COUNTER, name,
            "Events classified as automated traffic (kept out of Meta), by reason.", NULL, 0);
    }
    self->m_pushed = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_enricher_pushed_total",
                                      "Events pushed to a limiter.", NULL, 0);
    self->m_push_fail = rst_metrics_add (
        m, RST_METRIC_COUNTER, "rastro_enricher_push_failures_total",
        "Events dropped because their limiter was absent or full (the journal replays them).",
        NULL, 0);
    self->m_published = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_enricher_pub_messages_total",
                                         "Messages published on pub.", NULL, 0);
    self->m_acks = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_enricher_acks_sent_total",
                                    "Automated events acknowledged (stage meta) to their journal.",
                                    NULL, 0);
    self->m_ack_fail = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_enricher_ack_failures_total",
                                        "Automated events whose ack could not be sent.", NULL, 0);
    self->m_refresh = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_enricher_cache_refreshes_total",
                                       "Pool caches loaded from PostgreSQL.", NULL, 0);
    self->m_pools = rst_metrics_add (m, RST_METRIC_GAUGE, "rastro_enricher_cache_pools",
                                     "Pools in the cache.", NULL, 0);
    self->m_chat = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_enricher_chat_events_total",
                                    "Chat events (start, checkout, payment) enriched.", NULL, 0);
    self->m_fbc_hit = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_enricher_fbc_cache_hits_total",
                                       "Chat events whose click fbc came from the cache.", NULL, 0);
    self->m_fbc_miss = rst_metrics_add (
        m, RST_METRIC_COUNTER, "rastro_enricher_fbc_click_missing_total",
        "Chat events whose click is not in PostgreSQL (sent without fbc).", NULL, 0);
    self->m_fbc_fail = rst_metrics_add (
        m, RST_METRIC_COUNTER, "rastro_enricher_fbc_lookup_failures_total",
        "Chat events not enriched because the fbc lookup failed (the journal replays them).",
        NULL, 0);
    self->m_mismatch = rst_metrics_add (
        m, RST_METRIC_COUNTER, "rastro_enricher_join_mismatch_total",
        "Events whose pool is unknown or whose owner/pixel differ from the cache (kept).", NULL, 0);
}

static void
s_heartbeat (rst_enricher_t *self, int force)
{
    int64_t now = rst_clock_mono_ms ();
    if (!force && now < self->next_heartbeat_ms)
        return;
    self->next_heartbeat_ms = now + S_HEARTBEAT_MS;
    rst_metrics_set (self->metrics, self->m_pools, self->cache ? (double) self->cache->count : 0);
    rst_metrics_heartbeat (self->metrics, self->cfg->data_dir, S_CLS, self->instance);
}

rst_enricher_t *
rst_enricher_new (const rst_config_t *cfg, const rst_topology_t *topo, int instance, char *err,
                  size_t errlen)
{
    assert (cfg);
    assert (topo);
    rst_enricher_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, errlen, "enricher: out of memory");
        return NULL;
    }
    self->cfg = cfg;
    self->topo = topo;
    self->instance = instance;
    msgpack_sbuffer_init (&self->pubbuf);
    for (int i = 0; i < S_MAX_PEERS; i++)
        msgpack_sbuffer_init (&self->limbuf[i]);

    long rate = rst_topology_get_long (topo, S_CLS, instance, "ip_rate_per_min",
                                       RST_TRAFFIC_RATE_DEFAULT);
    long slots = rst_topology_get_long (topo, S_CLS, instance, "ip_slots",
                                        RST_TRAFFIC_SLOTS_DEFAULT);
    if (rate < 0 || rate > 1000000) {
        snprintf (err, errlen, "topology: [enricher] ip_rate_per_min must be 0..1000000 (0 = off), "
                               "not %ld", rate);
        goto fail;
    }
    if (slots < 16 || slots > (1L << 24)) {
        snprintf (err, errlen, "topology: [enricher] ip_slots must be 16..16777216, not %ld", slots);
        goto fail;
    }
    self->ip_rate_per_min = (int) rate;
    self->ip_slots = slots;
    self->traffic = rst_traffic_new ((int) rate, (size_t) slots);
    self->metrics = rst_metrics_new ();
    if (!self->traffic || !self->metrics) {
        snprintf (err, errlen, "enricher: out of memory");
        goto fail;
    }
    s_metrics_declare (self);
    if (rst_topology_get (topo, S_CLS, instance, "in", self->in_ep, sizeof self->in_ep))
        snprintf (self->in_ep, sizeof self->in_ep, "(none)");
    if (rst_topology_get (topo, S_CLS, instance, "pub", self->pub_ep, sizeof self->pub_ep))
        snprintf (self->pub_ep, sizeof self->pub_ep, "(none)");

    self->zmq_ctx = zmq_ctx_new ();
    if (!self->zmq_ctx) {
        snprintf (err, errlen, "enricher: libzmq: zmq_ctx_new: %s", zmq_strerror (zmq_errno ()));
        goto fail;
    }
    self->in = rst_zsock_new (self->zmq_ctx, ZMQ_PULL, S_IN_HWM, S_LINGER_MS, 0);
    self->pub = rst_zsock_new (self->zmq_ctx, ZMQ_PUB, S_PUB_HWM, S_LINGER_MS, 0);
    if (!self->in || !self->pub) {
        snprintf (err, errlen, "enricher: libzmq: socket: %s", zmq_strerror (zmq_errno ()));
        goto fail;
    }
    if (rst_topology_attach (topo, self->in, S_CLS, instance, "in", err, errlen)
        || rst_topology_attach (topo, self->pub, S_CLS, instance, "pub", err, errlen))
        goto fail;
    self->nlimiters = rst_zsock_each (self->zmq_ctx, topo, S_CLS, instance, "limiters", ZMQ_PUSH,
                                      S_OUT_HWM, S_LINGER_MS, RST_ZSOCK_IMMEDIATE, self->limiters,
                                      self->limiter_eps, S_MAX_PEERS, err, errlen);
    if (self->nlimiters < 0) {
        self->nlimiters = 0;
        goto fail;
    }
    self->acks = rst_acks_new (self->zmq_ctx, topo, S_CLS, instance, "acks", RST_ZSOCK_IMMEDIATE,
                               err, errlen);
    if (!self->acks)
        goto fail;
    self->watch = rst_pgwatch_new (self->zmq_ctx, cfg->database_url, "rastro_config", S_CLS,
                                   s_cache_load, s_cache_free, err, errlen);
    if (!self->watch)
        goto fail;
    return self;
fail:
    rst_enricher_destroy (&self);
    return NULL;
}

void
rst_enricher_destroy (rst_enricher_t **self_p)
{
    assert (self_p);
    rst_enricher_t *self = *self_p;
    if (!self)
        return;
    rst_pgwatch_destroy (&self->watch);
    s_cache_free (self->cache);
    for (int i = 0; i < self->nlimiters; i++)
        if (self->limiters[i])
            zmq_close (self->limiters[i]);
    rst_topology_endpoints_free (self->limiter_eps, self->nlimiters);
    rst_acks_destroy (&self->acks);
    if (self->in)
        zmq_close (self->in);
    if (self->pub)
        zmq_close (self->pub);
    if (self->zmq_ctx)
        zmq_ctx_term (self->zmq_ctx);
    rst_traffic_destroy (&self->traffic);
    rst_metrics_destroy (&self->metrics);
    msgpack_sbuffer_destroy (&self->pubbuf);
    for (int i = 0; i < S_MAX_PEERS; i++)
        msgpack_sbuffer_destroy (&self->limbuf[i]);
    free (self->text);
    if (self->fbc_cache)
        for (size_t i = 0; i < S_FBC_SLOTS; i++)
            free (self->fbc_cache[i].fbc);
    free (self->fbc_cache);
    if (self->pg)
        PQfinish (self->pg);
    free (self);
    *self_p = NULL;
}

void
rst_enricher_print (const rst_enricher_t *self)
{
    assert (self);
    rst_info (S_CLS, "instance = %d", self->instance);
    rst_info (S_CLS, "in = %s (PULL)", self->in_ep);
    rst_info (S_CLS, "pub = %s (PUB: every enriched event, automated included)", self->pub_ep);
    for (int i = 0; i < self->nlimiters; i++)
        rst_info (S_CLS, "limiters[%d] = %s (PUSH; pixels with rst_shard_of (pixel, %d) = %d)", i,
                  self->limiter_eps[i], self->nlimiters, i);
    rst_acks_print (self->acks, "automated events", ", stage meta");
    rst_info (S_CLS, "ip_rate_per_min = %d%s", self->ip_rate_per_min,
              self->ip_rate_per_min ? "" : " (off)");
    rst_info (S_CLS, "ip_slots = %ld", self->ip_slots);
    rst_info (S_CLS, "a push to an absent or full limiter is dropped; the front's journal "
                     "replays it after [front] replay_after seconds without a meta ack");
}

//  --------------------------------------------------------------------------
//  Text

//  Copies SRC[0..LEN) to DST as valid UTF-8 without NUL bytes; each byte
//  that does not start a well-formed sequence becomes U+FFFD. DST needs
//  3 * LEN + 1 bytes. Returns the length written (DST is NUL-terminated).
static size_t
s_clean_utf8 (const char *src, size_t len, char *dst)
{
    const unsigned char *s = (const unsigned char *) src;
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        unsigned char c = s[i];
        size_t k = 0;
        if (c >= 0x01 && c < 0x80)
            k = 1;
        else if (c >= 0xc2 && c <= 0xdf)
            k = 2;
        else if (c >= 0xe0 && c <= 0xef)
            k = 3;
        else if (c >= 0xf0 && c <= 0xf4)
            k = 4;
        int ok = k > 0 && i + k <= len;
        for (size_t j = 1; ok && j < k; j++)
            ok = (s[i + j] & 0xc0) == 0x80;
        if (ok && k == 3) {
            ok = !(c == 0xe0 && s[i + 1] < 0xa0) && !(c == 0xed && s[i + 1] > 0x9f);
        }
        if (ok && k == 4)
            ok = !(c == 0xf0 && s[i + 1] < 0x90) && !(c == 0xf4 && s[i + 1] > 0x8f);
        if (ok) {
            memcpy (dst + n, s + i, k);
            n += k;
            i += k;
        }
        else {
            memcpy (dst + n, "\xef\xbf\xbd", 3);
            n += 3;
            i++;
        }
    }
    dst[n] = 0;
    return n;
}

//  Cuts the valid UTF-8 string S (LEN bytes) to at most MAX bytes at a
//  character boundary. Returns the new length.
static size_t
s_cut_utf8 (char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t n = max;
    while (n > 0 && ((unsigned char) s[n] & 0xc0) == 0x80)
        n--;
    s[n] = 0;
    return n;
}

//  The value of utm parameter KEY of EV, or an absent string.
static rst_str_t
s_utm (const rst_event_t *ev, const char *key)
{
    size_t n = strlen (key);
    for (size_t i = 0; i < ev->utm_count; i++)
        if (ev->utm[i].key.len == n && !memcmp (ev->utm[i].key.ptr, key, n))
            return ev->utm[i].value;
    return rst_str (NULL);
}

//  --------------------------------------------------------------------------
//  Enriching one event

typedef enum { S_CLEAN_UA, S_CLEAN_URL, S_CLEAN_IP, S_CLEAN_FBC, S_CLEAN_FBP, S_CLEAN_SOURCE,
               S_CLEAN_CAMPAIGN, S_CLEAN_EVENT_ID, S_CLEAN_CLICK_ID, S_CLEAN_OFFER_ID,
               S_CLEAN_OFFER_NAME, S_CLEAN_ORDER_ID, S_CLEAN_COUNT } s_clean_t;

//  Makes every text EV needs valid UTF-8 in self->text; OUT[k] points at
//  clean string k (NUL-terminated), LENS[k] is its length. Returns 0 or -1.
static int
s_clean_all (rst_enricher_t *self, const rst_event_t *ev, char **out, size_t *lens)
{
    rst_str_t in[S_CLEAN_COUNT] = {
        ev->user_agent, ev->url, ev->ip, ev->fbc, ev->fbp, s_utm (ev, "utm_source"),
        s_utm (ev, "utm_campaign"), ev->event_id, ev->click_id, ev->offer_id, ev->offer_name,
        ev->order_id,
    };
    size_t need = 0;
    for (int k = 0; k < S_CLEAN_COUNT; k++)
        need += 3 * in[k].len + 1;
    if (need > self->text_cap) {
        char *grown = realloc (self->text, need);
        if (!grown)
            return -1;
        self->text = grown;
        self->text_cap = need;
    }
    char *at = self->text;
    for (int k = 0; k < S_CLEAN_COUNT; k++) {
        out[k] = at;
        lens[k] = s_clean_utf8 (in[k].ptr ? in[k].ptr : "", in[k].len, at);
        at += lens[k] + 1;
    }
    lens[S_CLEAN_SOURCE] = s_cut_utf8 (out[S_CLEAN_SOURCE], lens[S_CLEAN_SOURCE],
                                       RST_PIPELINE_DIM_MAX);
    lens[S_CLEAN_CAMPAIGN] = s_cut_utf8 (out[S_CLEAN_CAMPAIGN], lens[S_CLEAN_CAMPAIGN],
                                         RST_PIPELINE_DIM_MAX);
    lens[S_CLEAN_OFFER_NAME] = s_cut_utf8 (out[S_CLEAN_OFFER_NAME], lens[S_CLEAN_OFFER_NAME],
                                           RST_PIPELINE_DIM_MAX);
    return 0;
}

static int
s_reason_index (const char *reason)
{
    for (size_t i = 0; i < S_NREASONS; i++)
        if (!strcmp (reason, s_reasons[i]))
            return (int) i;
    return (int) S_NREASONS - 1;
}

//  Queues EV's seq for a meta ack, sent with the rest of the message's.
static void
s_ack_later (rst_enricher_t *self, const rst_event_t *ev)
{
    if (rst_acks_add (self->acks, ev->src.ptr, ev->src.len, ev->seq))
        rst_warn (S_CLS, "event %s: source %.*s has no ack endpoint in the topology",
                  ev->event_id.ptr, (int) ev->src.len, ev->src.ptr);
}

//  Checks EV against the cache; counts a mismatch (the event's values win).
static void
s_join (rst_enricher_t *self, const rst_event_t *ev)
{
    if (!self->cache)
        return;     //  not loaded yet: nothing to compare with
    const s_pool_t *pool = s_cache_find (self->cache, ev->pool_id);
    if (pool && pool->owner_id == ev->owner_id && strlen (pool->pixel_id) == ev->pixel_id.len
        && !memcmp (pool->pixel_id, ev->pixel_id.ptr, ev->pixel_id.len))
        return;
    rst_metrics_inc (self->metrics, self->m_mismatch, 1);
    rst_debug (S_CLS, "event %s: pool %" PRId64 " %s in the cache; keeping the event's owner and "
               "pixel", ev->event_id.ptr, ev->pool_id, pool ? "differs" : "is not");
}

//  Meta's name for EV's type.
static const char *
s_event_name (const rst_event_t *ev)
{
    switch (ev->type) {
    case RST_EVENT_START:
        return "ViewContent";
    case RST_EVENT_CHECKOUT:
        return "InitiateCheckout";
    case RST_EVENT_PAYMENT:
        return "Purchase";
    default:
        return "PageView";
    }
}

//  Finds the fbc of click CLICK_ID (a token, NUL-terminated): from the
//  cache, else from PostgreSQL. Sets *FBC to a string borrowed from the
//  cache (valid until the next lookup), or to NULL when the click is not
//  stored or has no fbc. Returns 0, or -1 when PostgreSQL could not answer
//  (logged once per episode, counted).
static int
s_lookup_fbc (rst_enricher_t *self, const char *click_id, const char **fbc)
{
    *fbc = NULL;
    size_t len = strlen (click_id);
    if (!self->fbc_cache && !(self->fbc_cache = calloc (S_FBC_SLOTS, sizeof *self->fbc_cache))) {
        rst_error (S_CLS, "out of memory allocating the fbc cache");
        rst_metrics_inc (self->metrics, self->m_fbc_fail, 1);
        return -1;
    }
    s_fbc_slot_t *slot = &self->fbc_cache[rst_shard_of (click_id, len, S_FBC_SLOTS)];
    if (slot->fbc && !strcmp (slot->click_id, click_id)) {
        rst_metrics_inc (self->metrics, self->m_fbc_hit, 1);
        *fbc = slot->fbc[0] ? slot->fbc : NULL;
        return 0;
    }
    char why[512] = "";
    if (!self->pg)
        self->pg = rst_db_connect (self->cfg, why, sizeof why);
    PGresult *res = NULL;
    if (self->pg) {
        const char *params[] = {click_id};
        res = PQexecParams (self->pg, S_FBC_SQL, 1, NULL, params, NULL, NULL, 0);
        if (PQresultStatus (res) != PGRES_TUPLES_OK) {
            snprintf (why, sizeof why, "libpq: %s", PQerrorMessage (self->pg));
            PQclear (res);
            res = NULL;
            if (PQstatus (self->pg) != CONNECTION_OK) {
                PQfinish (self->pg);
                self->pg = NULL;
            }
        }
    }
    if (!res) {
        rst_metrics_inc (self->metrics, self->m_fbc_fail, 1);
        for (char *c = why; *c; c++)
            if (*c == '\n')
                *c = ' ';
        if (!self->pg_down)
            rst_error (S_CLS, "PostgreSQL: fbc lookup: %s; chat events are not enriched (the "
                       "journals replay them) until it answers", why);
        self->pg_down = 1;
        return -1;
    }
    if (self->pg_down)
        rst_info (S_CLS, "PostgreSQL answers fbc lookups again");
    self->pg_down = 0;
    if (PQntuples (res) == 0) {
        //  Not stored (yet): not cached, a later event of the lead looks again.
        rst_metrics_inc (self->metrics, self->m_fbc_miss, 1);
        PQclear (res);
        return 0;
    }
    const char *found = PQgetisnull (res, 0, 0) ? "" : PQgetvalue (res, 0, 0);
    char *copy = strdup (found);
    PQclear (res);
    if (!copy)
        return 0;   //  out of memory: sent without fbc rather than not at all
    free (slot->fbc);
    slot->fbc = copy;
    memcpy (slot->click_id, click_id, len + 1);
    *fbc = copy[0] ? copy : NULL;
    return 0;
}

//  Builds the Meta object of the chat event EV (CLEAN: its cleaned strings)
//  into *CAPI (new string, the caller frees; NULL with the reason in WHY
//  when it cannot be built). Returns 0, or -1 when the fbc lookup failed
//  (the event must not be sent now).
static int
s_chat_capi (rst_enricher_t *self, const rst_event_t *ev, char **clean, const size_t *lens,
             char **capi, char *why, size_t whylen)
{
    *capi = NULL;
    const char *fbc = NULL;
    char external_id[32 + RST_EVENT_ID_MAX];
    if (ev->click_id.ptr) {
        if (s_lookup_fbc (self, clean[S_CLEAN_CLICK_ID], &fbc))
            return -1;
        snprintf (external_id, sizeof external_id, "%s", clean[S_CLEAN_CLICK_ID]);
    }
    else    //  organic lead: the decoder guarantees a tg_user_id
        snprintf (external_id, sizeof external_id, "tg:%" PRId64, ev->tg_user_id);
    char currency[RST_EVENT_CURRENCY_LEN + 1];
    const char *cur = ev->currency.ptr ? ev->currency.ptr : RST_EVENT_CURRENCY_DEFAULT;
    for (size_t i = 0; i < RST_EVENT_CURRENCY_LEN; i++)
        currency[i] = (char) (cur[i] >= 'a' && cur[i] <= 'z' ? cur[i] - 32 : cur[i]);
    currency[RST_EVENT_CURRENCY_LEN] = 0;
    int has_value = ev->value_cents != RST_EVENT_NONE;
    rst_meta_event_t m = {
        .event_name = s_event_name (ev),
        .event_time = ev->time_ms / 1000,
        .event_id = clean[S_CLEAN_EVENT_ID],
        .action_source = "chat",
        .fbc = fbc,
        .external_id = external_id,
        .country = S_CHAT_COUNTRY,
        .has_value = has_value,
        .value = has_value ? (double) ev->value_cents / 100.0 : 0,
        .currency = has_value || ev->currency.ptr ? currency : NULL,
        .content_id = lens[S_CLEAN_OFFER_ID] ? clean[S_CLEAN_OFFER_ID] : NULL,
        .content_name = lens[S_CLEAN_OFFER_NAME] ? clean[S_CLEAN_OFFER_NAME] : NULL,
        .order_id = lens[S_CLEAN_ORDER_ID] ? clean[S_CLEAN_ORDER_ID] : NULL,
    };
    *capi = rst_meta_event_json (&m, why, whylen);
    return 0;
}

//  Enriches EV: packs it on pub, and on its limiter's message or the ack
//  list. Returns 0, or -1 when it could not be enriched (logged, counted;
//  not acked, so the journal replays it).
static int
s_enrich (rst_enricher_t *self, const rst_event_t *ev)
{
    char *clean[S_CLEAN_COUNT];
    size_t lens[S_CLEAN_COUNT];
    if (s_clean_all (self, ev, clean, lens)) {
        rst_error (S_CLS, "out of memory enriching %s", ev->event_id.ptr);
        return -1;
    }
    int chat = rst_event_is_chat (ev->type);
    if (!chat || ev->pool_id > 0)
        s_join (self, ev);      //  an organic lead has no pool to compare with
    //  Chat events have no user agent or IP: never classified as automated.
    const char *reason = chat ? NULL
                              : rst_traffic_classify (self->traffic, ev->user_agent.ptr,
                                                      ev->user_agent.len, ev->ip.ptr, ev->ip.len,
                                                      ev->time_ms);
    char *capi = NULL;
    char why[256] = "";
    if (chat) {
        if (s_chat_capi (self, ev, clean, lens, &capi, why, sizeof why))
            return -1;      //  PostgreSQL down: not enriched, not acked; replayed later
        rst_metrics_inc (self->metrics, self->m_chat, 1);
    }
    else if (!reason) {
        rst_meta_event_t m = {
            .event_name = "PageView",
            .event_time = ev->time_ms / 1000,
            .event_id = clean[S_CLEAN_EVENT_ID],
            .action_source = "website",
            .event_source_url = lens[S_CLEAN_URL] ? clean[S_CLEAN_URL] : NULL,
            .client_ip_address = lens[S_CLEAN_IP] ? clean[S_CLEAN_IP] : NULL,
            .client_user_agent = lens[S_CLEAN_UA] ? clean[S_CLEAN_UA] : NULL,
            .fbc = lens[S_CLEAN_FBC] ? clean[S_CLEAN_FBC] : NULL,
            .fbp = lens[S_CLEAN_FBP] ? clean[S_CLEAN_FBP] : NULL,
            .external_id = clean[S_CLEAN_CLICK_ID],
        };
        capi = rst_meta_event_json (&m, why, sizeof why);
    }
    if (!reason) {
        if (!capi || strlen (capi) > RST_PIPELINE_CAPI_MAX) {
            rst_error (S_CLS, "event %s from %.*s: no Meta event can be built (%s); counted as "
                       "automated (invalid) and acked",
                       ev->event_id.ptr, (int) ev->src.len, ev->src.ptr,
                       capi ? "object too large" : why);
            free (capi);
            capi = NULL;
            reason = S_REASON_INVALID;
        }
    }
    rst_enriched_t e = {
        .event_id = ev->event_id,
        .src = ev->src,
        .seq = ev->seq,
        .type = rst_str (rst_event_type_name (ev->type)),
        .event_name = rst_str (s_event_name (ev)),
        .time_ms = ev->time_ms,
        .owner_id = ev->owner_id,
        .pool_id = ev->pool_id,
        .bot_id = ev->bot_id,
        .pixel_id = ev->pixel_id,
        .automated = reason != NULL,
        .automated_reason = rst_str (reason),
        .priority = ev->type == RST_EVENT_PAYMENT,
        .value_cents = ev->type == RST_EVENT_PAYMENT ? ev->value_cents : 0,
        .utm_source = (rst_str_t){clean[S_CLEAN_SOURCE], lens[S_CLEAN_SOURCE]},
        .utm_campaign = (rst_str_t){clean[S_CLEAN_CAMPAIGN], lens[S_CLEAN_CAMPAIGN]},
        .capi = rst_str (capi),
    };
    msgpack_packer pk;
    msgpack_packer_init (&pk, &self->pubbuf, msgpack_sbuffer_write);
    if (rst_enriched_pack (&e, &pk)) {
        //  Cannot happen for a decoded event (its fields are within the
        //  same limits): a bug, but not worth a crash of the pipeline.
        rst_error (S_CLS, "event %s: the enriched event breaks the schema; not sent",
                   ev->event_id.ptr);
        free (capi);
        return -1;
    }
    rst_metrics_inc (self->metrics, self->m_enriched, 1);
    if (reason) {
        rst_metrics_inc (self->metrics, self->m_automated[s_reason_index (reason)], 1);
        s_ack_later (self, ev);
    }
    else {
        rst_metrics_inc (self->metrics, self->m_human, 1);
        if (self->nlimiters > 0) {
            size_t i = rst_shard_of (ev->pixel_id.ptr, ev->pixel_id.len, (size_t) self->nlimiters);
            msgpack_packer lp;
            msgpack_packer_init (&lp, &self->limbuf[i], msgpack_sbuffer_write);
            rst_enriched_pack (&e, &lp);
            self->limcount[i]++;
        }
        else
            rst_metrics_inc (self->metrics, self->m_push_fail, 1);
    }
    free (capi);
    return 0;
}

//  Sends what the message produced: pub, one message per limiter, acks.
static void
s_send_all (rst_enricher_t *self)
{
    if (self->pubbuf.size) {
        if (zmq_send (self->pub, self->pubbuf.data, self->pubbuf.size, ZMQ_DONTWAIT) >= 0)
            rst_metrics_inc (self->metrics, self->m_published, 1);
        msgpack_sbuffer_clear (&self->pubbuf);
    }
    for (int i = 0; i < self->nlimiters; i++) {
        if (!self->limcount[i])
            continue;
        if (zmq_send (self->limiters[i], self->limbuf[i].data, self->limbuf[i].size, ZMQ_DONTWAIT)
            < 0) {
            rst_metrics_inc (self->metrics, self->m_push_fail, (double) self->limcount[i]);
            rst_debug (S_CLS, "push of %zu events to %s: libzmq: %s", self->limcount[i],
                       self->limiter_eps[i], zmq_strerror (zmq_errno ()));
        }
        else
            rst_metrics_inc (self->metrics, self->m_pushed, (double) self->limcount[i]);
        msgpack_sbuffer_clear (&self->limbuf[i]);
        self->limcount[i] = 0;
    }
    rst_acks_tally_t tally = rst_acks_flush (self->acks, RST_JOURNAL_ACK_META);
    if (tally.sent)
        rst_metrics_inc (self->metrics, self->m_acks, (double) tally.sent);
    if (tally.failed)
        rst_metrics_inc (self->metrics, self->m_ack_fail, (double) tally.failed);
}

static void
s_bad_event (rst_enricher_t *self, const char *why)
{
    rst_metrics_inc (self->metrics, self->m_bad, 1);
    int refused;
    int log = rst_log_budget (&self->bad_logs, S_BAD_LOGS_PER_S, rst_clock_mono_ms (), &refused);
    if (refused)
        rst_warn (S_CLS, "%d more malformed events were dropped without a log line", refused);
    if (log)
        rst_warn (S_CLS, "dropped a malformed event: %s", why);
}

static void
s_handle_message (rst_enricher_t *self, const char *data, size_t len)
{
    size_t offset = 0;
    while (offset < len) {
        char err[256];
        rst_event_t *ev = rst_event_decode (data, len, &offset, err, sizeof err);
        if (!ev) {
            s_bad_event (self, err);
            continue;
        }
        rst_metrics_inc (self->metrics, self->m_in, 1);
        s_enrich (self, ev);
        rst_event_destroy (&ev);
    }
    s_send_all (self);
}

static void
s_take_cache (rst_enricher_t *self)
{
    s_cache_t *fresh;
    while ((fresh = rst_pgwatch_take (self->watch))) {
        if (!self->cache)
            rst_info (S_CLS, "pool cache loaded: %zu pools", fresh->count);
        else
            rst_debug (S_CLS, "pool cache reloaded: %zu pools", fresh->count);
        s_cache_free (self->cache);
        self->cache = fresh;
        rst_metrics_inc (self->metrics, self->m_refresh, 1);
    }
}

int
rst_enricher_run (rst_enricher_t *self, volatile sig_atomic_t *stop)
{
    assert (self);
    rst_info (S_CLS, "enriching events");
    zmq_msg_t msg;
    zmq_msg_init (&msg);
    int rc = 0;
    while (!*stop) {
        zmq_pollitem_t items[] = {
            {self->in, 0, ZMQ_POLLIN, 0},
            {rst_pgwatch_socket (self->watch), 0, ZMQ_POLLIN, 0},
        };
        int64_t wait = self->next_heartbeat_ms - rst_clock_mono_ms ();
        if (zmq_poll (items, 2, wait < 0 ? 0 : wait > 1000 ? 1000 : (long) wait) < 0) {
            if (zmq_errno () == EINTR)
                continue;
            rst_error (S_CLS, "libzmq: zmq_poll: %s", zmq_strerror (zmq_errno ()));
            rc = -1;
            break;
        }
        if (items[1].revents & ZMQ_POLLIN)
            s_take_cache (self);
        for (int n = 0; n < S_DRAIN_MAX && (items[0].revents & ZMQ_POLLIN); n++) {
            if (zmq_msg_recv (&msg, self->in, ZMQ_DONTWAIT) < 0)
                break;
            s_handle_message (self, zmq_msg_data (&msg), zmq_msg_size (&msg));
        }
        s_heartbeat (self, 0);
    }
    zmq_msg_close (&msg);
    s_heartbeat (self, 1);
    return rc;
}
