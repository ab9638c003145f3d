/*  rst_sender — posts batches to Meta's Conversions API from an LMDB spool.

    Role: the last stage of ARCHITECTURE.md's pipeline and the owner of
    "accepted means kept" and "never twice" on the Meta side. The rules:
      - ack an event to its journal only after the spool transaction that
        holds it committed (fsynced); duplicates (already spooled, already
        accepted, already dead-lettered) are dropped and acked too;
      - a batch leaves the spool only when Meta accepted it (2xx with
        events_received) or its events are committed in dead_letters;
      - an event_id Meta accepted is never posted again (the spool's done set,
        8 days).

    Sockets:
      in        PULL, bound: one "batch" map per message (rst_batch_decode).
      acks      one PUSH per journal (topology `acks`, e.g. front.acks: entry i
                is front i's ack endpoint); {"v":1,"stage":2,"seqs":[...]},
                ZMQ_DONTWAIT; a failed send is counted (the journal replays,
                the spool drops the duplicate, and it is acked again).
      outcomes  PUB, bound: "outcome" maps (accepted, dead, throttled) for the
                limiters (slow a throttled pixel down), aggregator, health.

    One batch, in the spool (rst_spool.c) and here:

        received ──spool+ack──► PENDING ──due, pixel not paused──► IN FLIGHT
                                  ▲  ▲                                 │
              retry: attempts+1,  │  │ split (code 100, > 1 event):    │
              next = now + backoff│  │ two halves, same event_ids      │
              (jitter, ≥ Meta's   │  └─────────────────────────────────┤
              wait hint)          └──────── transient (5xx, timeout, ──┤
                                            throttled, malformed 2xx)  │
                 (gone) ◄── accepted (2xx, events_received) ───────────┤
                                                                       │
        DEAD ◄── permanent (190, 100 on one event, 10, 200-299, 2635 …)┘
         │   ◄── too old: events past Meta's 7 days are cut off before posting
         └── rows committed in dead_letters (retried while PostgreSQL is down)
             ──► (gone), outcome "dead"

    Pixels: every batch belongs to one (owner, pixel). A pixel has a
    next-allowed time (set by throttling codes with Meta's wait hint, and by
    consecutive transient failures with backoff), a cap on POSTs in flight
    (pixel_inflight), and a cached token. A paused pixel is skipped while the
    loop keeps serving the others: nothing ever sleeps.

    Tokens: read from pixels.token_enc (sealed, rst_secret) on first use,
    opened only in memory, wiped when dropped; the cache is dropped on NOTIFY
    rastro_config. The token travels in the JSON body (never in the URL, so
    that libcurl errors cannot show it) and is scrubbed from any text we log
    or store. Bodies holding it are wiped after the POST.

    dlq replay: on NOTIFY rastro_dlq (and every S_REPLAY_POLL_MS) rows of
    dead_letters with replay_requested_at and no replayed_at, whose pixel this
    instance owns (rst_shard_of over the sender instances), are spooled again
    with their original event_ids (RST_SPOOL_REPLAY) and marked replayed_at.

    Loop: one thread; zmq_poll over `in`, the PostgreSQL socket (NOTIFY) and
    libcurl's sockets (CURLMOPT_SOCKETFUNCTION / TIMERFUNCTION), at most
    S_TICK_MS between passes. Shutdown: stop reading `in`, start nothing new,
    give in-flight POSTs up to timeout_ms to finish, abandon the rest (they
    stay in the spool and are posted again after a restart; Meta de-duplicates
    by event_id if the abandoned POST did reach it).
    Caveat: a POST that timed out may still have been accepted by Meta; the
    retry carries the same event_ids, which Meta de-duplicates (reference §3).
*/
#define _GNU_SOURCE
#include "rst_sender.h"
#include "rst_acks.h"
#include "rst_clock.h"
#include "rst_db.h"
#include "rst_event.h"
#include "rst_journal.h"
#include "rst_log.h"
#include "rst_meta.h"
#include "rst_metrics.h"
#include "rst_pipeline.h"
#include "rst_secret.h"
#include "rst_shard.h"
#include "rst_spool.h"
#include "rst_zsock.h"

#include <assert.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <msgpack.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define S_CLS               "sender"
#define S_IN_HWM            1000        //  batches (up to 1000 events each)
#define S_OUT_HWM           10000
#define S_LINGER_MS         1000
#define S_DRAIN_MAX         32          //  batches spooled in one transaction at most
#define S_TICK_MS           50          //  longest poll wait
#define S_HEARTBEAT_MS      1000
#define S_MAX_SOCKETS       512         //  libcurl sockets polled at most
#define S_RESP_MAX          65536       //  reply bytes kept
#define S_TOO_OLD_MARGIN_MS 60000       //  cut events this close to Meta's 7 days
#define S_PG_RETRY_MS       2000        //  PostgreSQL reconnect / dead-letter retry
#define S_TOKEN_RETRY_MS    30000       //  a pixel whose token cannot be used
#define S_REPLAY_POLL_MS    30000       //  dlq replay safety net (NOTIFY is the fast path)
#define S_REPLAY_ROWS       5000
#define S_PRUNE_MS          (3600 * 1000)
#define S_PRUNE_MAX         100000
#define S_PIXEL_METRICS     12          //  pixels with their own labels; the rest "other"
#define S_MB                (1024ull * 1024ull)

static const double s_latency_bounds[] = {0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600};

typedef enum { S_TOKEN_UNKNOWN, S_TOKEN_OK, S_TOKEN_MISSING, S_TOKEN_UNUSABLE } s_token_state_t;

typedef struct {
    int64_t owner_id;
    char pixel_id[RST_EVENT_SHORT_MAX + 1];
    s_token_state_t token_state;
    char *token;                //  plaintext (rst_secret_open), wiped by rst_secret_free
    char *test_event_code;      //  NULL when none
    int64_t token_retry_ms;     //  mono: when an unusable token is tried again
    int64_t next_ms;            //  mono: no POST before this (throttled / failing)
    int fail_streak;            //  consecutive transient failures
    int inflight;
    int m_sent, m_accepted, m_failed;   //  metric indexes (labelled)
} s_pixel_t;

typedef struct {
    uint64_t id;                //  spool id
    size_t pixel;               //  index into pixels
    rst_spool_state_t state;
    uint32_t attempts;
    int64_t next_ms;            //  wall: not before this
    uint32_t count;
    int priority;
    int inflight;
} s_entry_t;

typedef struct {
    CURL *easy;
    uint64_t id;
    size_t pixel;
    uint32_t count;
    char *body;                 //  holds the token: wiped and freed
    size_t body_len;
    char *resp;
    size_t resp_len;
    char usage[2048];           //  X-Business-Use-Case-Usage
    char retry_after[64];
    char errbuf[CURL_ERROR_SIZE];
    struct curl_slist *headers;
    int64_t started_ms;         //  mono
} s_req_t;

typedef struct {
    curl_socket_t fd;
    int what;                   //  CURL_POLL_IN / OUT / INOUT
} s_sock_t;

struct rst_sender_t {
    const rst_config_t *cfg;            //  borrowed
    const rst_topology_t *topo;         //  borrowed
    int instance;
    int instances;                      //  sender instances (dlq replay sharding)
    rst_spool_t *spool;                 //  owned
    char spool_dir[4096];
    void *zmq_ctx;
    void *in;                           //  PULL, bound
    void *outcomes;                     //  PUB, bound
    rst_acks_t *acks;                   //  PUSH per journal (topology `acks`)
    msgpack_sbuffer buf;                //  scratch for outcomes
    long timeout_ms, max_inflight, pixel_inflight, backoff_min_ms, backoff_max_ms, spool_max_mb;

    CURLM *multi;
    s_sock_t socks[S_MAX_SOCKETS];
    size_t sock_count;
    int64_t curl_deadline_ms;           //  mono, -1 = none
    s_req_t **reqs;                     //  max_inflight slots (NULL = free)
    int inflight;

    s_pixel_t *pixels;
    size_t pixel_count, pixel_cap;
    s_entry_t *entries;                 //  in spool id order
    size_t entry_count, entry_cap;

    PGconn *pg;                         //  NULL while disconnected
    int pg_down;                        //  inside a failure episode (logged once)
    int64_t pg_retry_ms;                //  mono
    rst_secret_t *secret;               //  NULL until the key file could be read
    int replay_wanted;                  //  a NOTIFY rastro_dlq arrived
    int64_t next_replay_ms, next_prune_ms, next_dead_ms, next_heartbeat_ms;

    rst_metrics_t *metrics;
    int m_batches_in, m_events_in, m_dups, m_bad, m_spool_fail, m_acks, m_ack_fail, m_posts,
        m_retries, m_throttled, m_splits, m_dead, m_too_old, m_inflight, m_spool_batches,
        m_spool_events, m_spool_oldest, m_done_ids, m_latency, m_pg_up, m_replayed,
        m_other_sent, m_other_accepted, m_other_failed;
    int labelled_pixels;
};

//  --------------------------------------------------------------------------
//  Small helpers

//  Replaces every occurrence of TOKEN in TEXT by "***" (in place).
static void
s_scrub (char *text, const char *token)
{
    if (!text || !token || strlen (token) < 4)
        return;
    size_t tl = strlen (token);
    char *hit;
    while ((hit = strstr (text, token))) {
        memcpy (hit, "***", 3);
        memmove (hit + 3, hit + tl, strlen (hit + tl) + 1);
    }
}

//  Exponential backoff for the N-th failure (1, 2, ...), with full jitter
//  over the upper half: [d/2, d].
static int64_t
s_backoff (const rst_sender_t *self, int n)
{
    int64_t d = self->backoff_min_ms;
    for (int i = 1; i < n && d < self->backoff_max_ms; i++)
        d *= 2;
    if (d > self->backoff_max_ms)
        d = self->backoff_max_ms;
    int64_t half = d / 2;
    return half + (half > 0 ? (int64_t) randombytes_uniform ((uint32_t) (half + 1)) : 0);
}

static s_entry_t *
s_entry (rst_sender_t *self, uint64_t id)
{
    for (size_t i = 0; i < self->entry_count; i++)
        if (self->entries[i].id == id)
            return &self->entries[i];
    return NULL;
}

static void
s_entry_remove (rst_sender_t *self, uint64_t id)
{
    for (size_t i = 0; i < self->entry_count; i++)
        if (self->entries[i].id == id) {
            memmove (&self->entries[i], &self->entries[i + 1],
                     (self->entry_count - i - 1) * sizeof *self->entries);
            self->entry_count--;
            return;
        }
}

static int
s_entry_add (rst_sender_t *self, const rst_spool_head_t *head, size_t pixel)
{
    if (self->entry_count == self->entry_cap) {
        size_t cap = self->entry_cap ? self->entry_cap * 2 : 256;
        s_entry_t *p = realloc (self->entries, cap * sizeof *p);
        if (!p)
            return -1;
        self->entries = p;
        self->entry_cap = cap;
    }
    //  Keep id order (new ids are the largest, but be safe).
    size_t at = self->entry_count;
    while (at > 0 && self->entries[at - 1].id > head->id)
        at--;
    memmove (&self->entries[at + 1], &self->entries[at],
             (self->entry_count - at) * sizeof *self->entries);
    self->entries[at] = (s_entry_t) {head->id, pixel, head->state, head->attempts, head->next_ms,
                                     head->count, head->priority, 0};
    self->entry_count++;
    return 0;
}

//  Index of pixel (OWNER, PIXEL_ID), created when new; (size_t) -1 on no memory.
static size_t
s_pixel (rst_sender_t *self, int64_t owner, const char *pixel_id)
{
    for (size_t i = 0; i < self->pixel_count; i++)
        if (self->pixels[i].owner_id == owner && !strcmp (self->pixels[i].pixel_id, pixel_id))
            return i;
    if (self->pixel_count == self->pixel_cap) {
        size_t cap = self->pixel_cap ? self->pixel_cap * 2 : 16;
        s_pixel_t *p = realloc (self->pixels, cap * sizeof *p);
        if (!p)
            return (size_t) -1;
        self->pixels = p;
        self->pixel_cap = cap;
    }
    s_pixel_t *px = &self->pixels[self->pixel_count];
    memset (px, 0, sizeof *px);
    px->owner_id = owner;
    snprintf (px->pixel_id, sizeof px->pixel_id, "%s", pixel_id);
    if (self->labelled_pixels < S_PIXEL_METRICS) {
        char name[160];
        snprintf (name, sizeof name, "rastro_sender_events_sent_total{pixel=\"%s\"}", pixel_id);
        px->m_sent = rst_metrics_add (self->metrics, RST_METRIC_COUNTER, name,
                                      "Events posted to Meta (attempts), per pixel.", NULL, 0);
        snprintf (name, sizeof name, "rastro_sender_events_accepted_total{pixel=\"%s\"}", pixel_id);
        px->m_accepted = rst_metrics_add (self->metrics, RST_METRIC_COUNTER, name,
                                          "Events Meta accepted, per pixel.", NULL, 0);
        snprintf (name, sizeof name, "rastro_sender_events_failed_total{pixel=\"%s\"}", pixel_id);
        px->m_failed = rst_metrics_add (self->metrics, RST_METRIC_COUNTER, name,
                                        "Events dead-lettered, per pixel.", NULL, 0);
        self->labelled_pixels++;
    }
    else {
        px->m_sent = self->m_other_sent;
        px->m_accepted = self->m_other_accepted;
        px->m_failed = self->m_other_failed;
    }
    return self->pixel_count++;
}

static void
s_pixel_forget_token (s_pixel_t *px)
{
    rst_secret_free (px->token);
    px->token = NULL;
    free (px->test_event_code);
    px->test_event_code = NULL;
    px->token_state = S_TOKEN_UNKNOWN;
}

//  --------------------------------------------------------------------------
//  Acks and outcomes

//  Acks every event of BATCH except those marked in SKIP (may be NULL).
static void
s_ack_batch (rst_sender_t *self, const rst_batch_t *batch, const unsigned char *skip)
{
    size_t count = batch->count < RST_META_MAX_EVENTS ? batch->count : RST_META_MAX_EVENTS;
    for (size_t i = 0; i < count; i++) {
        const rst_batch_item_t *it = &batch->items[i];
        if ((skip && skip[i]) || !it->src.len || !it->seq)
            continue;
        if (rst_acks_add (self->acks, it->src.ptr, it->src.len, it->seq))
            rst_warn (S_CLS, "event %.*s: source %.*s has no ack endpoint in the topology",
                      (int) it->event_id.len, it->event_id.ptr, (int) it->src.len, it->src.ptr);
    }
    rst_acks_tally_t tally = rst_acks_flush (self->acks, RST_JOURNAL_ACK_META);
    if (tally.sent)
        rst_metrics_inc (self->metrics, self->m_acks, (double) tally.sent);
    if (tally.failed)
        rst_metrics_inc (self->metrics, self->m_ack_fail, (double) tally.failed);
}

//  Publishes an outcome about PIXEL for the ids of B (may be NULL).
static void
s_publish (rst_sender_t *self, rst_outcome_kind_t kind, const char *pixel_id,
           const rst_spool_batch_t *b, int64_t wait_ms, int64_t latency_ms)
{
    rst_outcome_t out;
    memset (&out, 0, sizeof out);
    out.kind = kind;
    out.pixel_id = rst_str (pixel_id);
    out.wait_ms = wait_ms < 0 ? 0 : wait_ms > RST_PIPELINE_WAIT_MS_MAX ? RST_PIPELINE_WAIT_MS_MAX
                                                                       : wait_ms;
    out.latency_ms = latency_ms < 0 ? 0 : latency_ms;
    rst_str_t ids[RST_PIPELINE_MAX_IDS];
    if (b) {
        out.count = b->count < RST_PIPELINE_MAX_IDS ? b->count : RST_PIPELINE_MAX_IDS;
        for (size_t i = 0; i < out.count; i++)
            ids[i] = b->items[i].event_id;
        out.event_ids = ids;
    }
    msgpack_sbuffer_clear (&self->buf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &self->buf, msgpack_sbuffer_write);
    if (rst_outcome_pack (&out, &pk)) {
        rst_warn (S_CLS, "could not pack a %s outcome for pixel %s", rst_outcome_kind_name (kind),
                  pixel_id);
        return;
    }
    zmq_send (self->outcomes, self->buf.data, self->buf.size, ZMQ_DONTWAIT);
}

//  --------------------------------------------------------------------------
//  PostgreSQL: connection, tokens

static void
s_pg_failed (rst_sender_t *self, const char *what, const char *why)
{
    if (!self->pg_down)
        rst_error (S_CLS, "PostgreSQL: %s: %s; dead letters and new tokens wait until it is back",
                   what, why);
    self->pg_down = 1;
    self->pg_retry_ms = rst_clock_mono_ms () + S_PG_RETRY_MS;
    if (self->pg && PQstatus (self->pg) != CONNECTION_OK) {
        PQfinish (self->pg);
        self->pg = NULL;
    }
}

//  Connects (and LISTENs) when disconnected and due. Returns 0 when connected.
static int
s_pg (rst_sender_t *self)
{
    if (self->pg && PQstatus (self->pg) == CONNECTION_OK)
        return 0;
    if (self->pg) {
        PQfinish (self->pg);
        self->pg = NULL;
    }
    if (rst_clock_mono_ms () < self->pg_retry_ms)
        return -1;
    char why[512];
    self->pg = rst_db_connect (self->cfg, why, sizeof why);
    if (!self->pg) {
        s_pg_failed (self, "connect", why);
        return -1;
    }
    if (rst_db_exec (self->pg, "LISTEN rastro_config; LISTEN rastro_dlq", why, sizeof why)) {
        s_pg_failed (self, "LISTEN", why);
        return -1;
    }
    if (self->pg_down)
        rst_info (S_CLS, "PostgreSQL is back");
    self->pg_down = 0;
    PQsetnonblocking (self->pg, 0);
    //  Whatever changed while we were away: reload tokens, look for replays.
    for (size_t i = 0; i < self->pixel_count; i++)
        if (!self->pixels[i].inflight)
            s_pixel_forget_token (&self->pixels[i]);
    self->replay_wanted = 1;
    return 0;
}

//  Reads NOTIFYs: rastro_config drops the token cache, rastro_dlq asks for a
//  replay pass.
static void
s_pg_notifies (rst_sender_t *self)
{
    if (!self->pg)
        return;
    if (!PQconsumeInput (self->pg)) {
        s_pg_failed (self, "connection", PQerrorMessage (self->pg));
        return;
    }
    PGnotify *n;
    while ((n = PQnotifies (self->pg))) {
        if (!strcmp (n->relname, "rastro_config")) {
            for (size_t i = 0; i < self->pixel_count; i++)
                if (!self->pixels[i].inflight)
                    s_pixel_forget_token (&self->pixels[i]);
                else
                    self->pixels[i].token_state = S_TOKEN_UNKNOWN;  //  reloaded after the POST
            rst_debug (S_CLS, "pixels changed: tokens will be reloaded");
        }
        else if (!strcmp (n->relname, "rastro_dlq"))
            self->replay_wanted = 1;
        PQfreemem (n);
    }
}

//  Loads the token of pixel PX. Returns 0 when usable, 1 when the pixel
//  must wait (PostgreSQL down, token unusable), 2 when there is no such
//  pixel (its batches are dead-lettered).
static int
s_token (rst_sender_t *self, s_pixel_t *px)
{
    if (px->token_state == S_TOKEN_OK && px->token)
        return 0;
    if (px->token_state == S_TOKEN_UNUSABLE && rst_clock_mono_ms () < px->token_retry_ms)
        return 1;
    if (s_pg (self))
        return 1;
    s_pixel_forget_token (px);
    char owner[24];
    snprintf (owner, sizeof owner, "%" PRId64, px->owner_id);
    const char *params[] = {owner, px->pixel_id};
    PGresult *res = PQexecParams (self->pg,
                                  "SELECT token_enc, test_event_code FROM pixels "
                                  "WHERE owner_id = $1 AND pixel_id = $2",
                                  2, NULL, params, NULL, NULL, 1);
    if (PQresultStatus (res) != PGRES_TUPLES_OK) {
        s_pg_failed (self, "read pixel token", PQerrorMessage (self->pg));
        PQclear (res);
        return 1;
    }
    if (PQntuples (res) == 0) {
        PQclear (res);
        px->token_state = S_TOKEN_MISSING;
        return 2;
    }
    if (!self->secret) {
        char err[512];
        self->secret = rst_secret_new (self->cfg->master_key_file, 0, err, sizeof err);
        if (!self->secret)
            rst_error (S_CLS, "cannot read the master key: %s", err);
    }
    char *token = self->secret ? rst_secret_open (self->secret,
                                                  (const unsigned char *) PQgetvalue (res, 0, 0),
                                                  (size_t) PQgetlength (res, 0, 0))
                               : NULL;
    //  A token goes into a JSON string as is: refuse what would need escaping.
    int clean = token && *token;
    for (const char *c = token; clean && *c; c++)
        clean = (unsigned char) *c > 0x20 && *c != '"' && *c != '\\' && (unsigned char) *c < 0x7f;
    if (!clean) {
        rst_secret_free (token);
        PQclear (res);
        px->token_state = S_TOKEN_UNUSABLE;
        px->token_retry_ms = rst_clock_mono_ms () + S_TOKEN_RETRY_MS;
        rst_error (S_CLS, "pixel %s: its token cannot be opened with the master key (or is not "
                   "a token); its events wait (re-add the pixel's token)", px->pixel_id);
        return 1;
    }
    px->token = token;
    if (!PQgetisnull (res, 0, 1) && PQgetlength (res, 0, 1) > 0)
        px->test_event_code = strdup (PQgetvalue (res, 0, 1));
    px->token_state = S_TOKEN_OK;
    PQclear (res);
    return 0;
}

//  --------------------------------------------------------------------------
//  Dead letters

//  Writes the events of dead batch E to dead_letters in one transaction.
//  Returns 0, or -1 (PostgreSQL down or refused; retried later).
static int
s_write_dead (rst_sender_t *self, const rst_spool_batch_t *b)
{
    if (s_pg (self))
        return -1;
    char why[512];
    if (rst_db_exec (self->pg, "BEGIN", why, sizeof why)) {
        s_pg_failed (self, "BEGIN", why);
        return -1;
    }
    const rst_spool_dead_t *d = &b->head.dead;
    char owner[24], status[24], code[24], subcode[24], time_ms[24];
    snprintf (owner, sizeof owner, "%" PRId64, b->head.owner_id);
    snprintf (status, sizeof status, "%ld", d->http_status);
    snprintf (code, sizeof code, "%d", d->code);
    snprintf (subcode, sizeof subcode, "%d", d->subcode);
    for (size_t i = 0; i < b->count; i++) {
        const rst_batch_item_t *it = &b->items[i];
        char name[128] = "";
        cJSON *root = cJSON_ParseWithLength (it->capi.ptr, it->capi.len);
        cJSON *en = root ? cJSON_GetObjectItemCaseSensitive (root, "event_name") : NULL;
        if (cJSON_IsString (en))
            snprintf (name, sizeof name, "%s", en->valuestring);
        int is_object = cJSON_IsObject (root);
        cJSON_Delete (root);
        snprintf (time_ms, sizeof time_ms, "%" PRId64, it->time_ms);
        const char *params[] = {owner, b->head.pixel_id, it->event_id.ptr, name[0] ? name : NULL,
                                time_ms, it->capi.ptr, d->reason[0] ? d->reason : "rejected",
                                d->http_status ? status : NULL, d->code ? code : NULL,
                                d->subcode ? subcode : NULL, d->message[0] ? d->message : NULL,
                                d->fbtrace_id[0] ? d->fbtrace_id : NULL,
                                it->src.len ? it->src.ptr : NULL, is_object ? "t" : "f"};
        PGresult *res = PQexecParams (
            self->pg,
            "INSERT INTO dead_letters (owner_id, pixel_id, event_id, event_name, event_time, "
            "payload, reason, http_status, error_code, error_subcode, error_message, fbtrace_id, "
            "source) VALUES ($1, $2, $3, $4, to_timestamp($5::bigint / 1000.0), "
            "CASE WHEN $14::boolean THEN $6::json ELSE to_json($6::text) END, $7, $8, $9, $10, "
            "$11, $12, $13) ON CONFLICT DO NOTHING",
            14, NULL, params, NULL, NULL, 0);
        if (PQresultStatus (res) != PGRES_COMMAND_OK) {
            snprintf (why, sizeof why, "%s", PQerrorMessage (self->pg));
            PQclear (res);
            PGresult *rb = PQexec (self->pg, "ROLLBACK");
            PQclear (rb);
            for (char *c = why; *c; c++)
                if (*c == '\n')
                    *c = ' ';
            s_pg_failed (self, "insert dead letters", why);
            return -1;
        }
        PQclear (res);
    }
    if (rst_db_exec (self->pg, "COMMIT", why, sizeof why)) {
        s_pg_failed (self, "COMMIT dead letters", why);
        return -1;
    }
    return 0;
}

//  Moves every DEAD batch to dead_letters (when PostgreSQL answers).
static void
s_flush_dead (rst_sender_t *self)
{
    int64_t now = rst_clock_mono_ms ();
    if (now < self->next_dead_ms)
        return;
    for (size_t i = 0; i < self->entry_count;) {
        s_entry_t *e = &self->entries[i];
        if (e->state != RST_SPOOL_DEAD || e->inflight) {
            i++;
            continue;
        }
        uint64_t id = e->id;
        rst_spool_batch_t *b = rst_spool_get (self->spool, id);
        if (!b) {
            rst_error (S_CLS, "%s", rst_spool_error (self->spool));
            i++;
            continue;
        }
        if (s_write_dead (self, b)) {
            rst_spool_batch_destroy (&b);
            self->next_dead_ms = now + S_PG_RETRY_MS;
            return;
        }
        if (rst_spool_remove (self->spool, id, rst_clock_wall_ms ())) {
            //  Rows are in; the batch stays DEAD and is written again (ON
            //  CONFLICT DO NOTHING) on the next pass.
            rst_error (S_CLS, "%s", rst_spool_error (self->spool));
            rst_spool_batch_destroy (&b);
            self->next_dead_ms = now + S_PG_RETRY_MS;
            return;
        }
        s_pixel_t *px = &self->pixels[e->pixel];
        rst_metrics_inc (self->metrics, px->m_failed, (double) b->count);
        rst_metrics_inc (self->metrics, self->m_dead, (double) b->count);
        rst_info (S_CLS, "pixel %s: %zu events dead-lettered (%s)", px->pixel_id, b->count,
                  b->head.dead.reason);
        s_publish (self, RST_OUTCOME_DEAD, px->pixel_id, b, 0, 0);
        rst_spool_batch_destroy (&b);
        s_entry_remove (self, id);
    }
}

//  Marks batch E dead with the given reason (written to PostgreSQL by s_flush_dead).
static void
s_kill (rst_sender_t *self, s_entry_t *e, const char *reason, const rst_meta_result_t *r)
{
    rst_spool_dead_t why;
    memset (&why, 0, sizeof why);
    snprintf (why.reason, sizeof why.reason, "%s", reason);
    if (r) {
        why.http_status = r->http_status;
        why.code = r->code;
        why.subcode = r->subcode;
        snprintf (why.fbtrace_id, sizeof why.fbtrace_id, "%s", r->fbtrace_id);
        snprintf (why.message, sizeof why.message, "%s", r->message);
    }
    if (rst_spool_mark_dead (self->spool, e->id, &why)) {
        rst_error (S_CLS, "%s", rst_spool_error (self->spool));
        e->next_ms = rst_clock_wall_ms () + S_PG_RETRY_MS;
        return;
    }
    e->state = RST_SPOOL_DEAD;
    self->next_dead_ms = 0;
}

static const char *
s_reason (const rst_meta_result_t *r)
{
    if (r->code == 190 || r->code == 102)
        return "token";
    if (r->code == 100 && r->subcode == 2804003)
        return "too-old";
    if (r->code == 100 && r->subcode == 33)
        return "pixel-access";
    if (r->code == 100)
        return "invalid-parameter";
    if (r->code == 10 || (r->code >= 200 && r->code <= 299) || r->code == 3)
        return "permission";
    if (r->code == 2635)
        return "deprecated-version";
    if (r->code == 105)
        return "too-many-params";
    return "rejected";
}

//  --------------------------------------------------------------------------
//  libcurl

static size_t
s_on_body (char *data, size_t size, size_t n, void *arg)
{
    s_req_t *req = arg;
    size_t len = size * n;
    size_t room = S_RESP_MAX - req->resp_len;
    size_t take = len < room ? len : room;
    if (take) {
        char *p = realloc (req->resp, req->resp_len + take + 1);
        if (!p)
            return 0;
        req->resp = p;
        memcpy (req->resp + req->resp_len, data, take);
        req->resp_len += take;
        req->resp[req->resp_len] = 0;
    }
    return len;
}

//  Keeps the two headers that carry Meta's wait hints.
static size_t
s_on_header (char *data, size_t size, size_t n, void *arg)
{
    s_req_t *req = arg;
    size_t len = size * n;
    static const char usage[] = "x-business-use-case-usage:";
    static const char after[] = "retry-after:";
    char *dst = NULL;
    size_t dstlen = 0, skip = 0;
    if (len > sizeof usage - 1 && !strncasecmp (data, usage, sizeof usage - 1))
        dst = req->usage, dstlen = sizeof req->usage, skip = sizeof usage - 1;
    else if (len > sizeof after - 1 && !strncasecmp (data, after, sizeof after - 1))
        dst = req->retry_after, dstlen = sizeof req->retry_after, skip = sizeof after - 1;
    if (dst) {
        size_t vlen = len - skip;
        const char *v = data + skip;
        while (vlen && (*v == ' ' || *v == '\t'))
            v++, vlen--;
        while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' '))
            vlen--;
        if (vlen >= dstlen)
            vlen = dstlen - 1;
        memcpy (dst, v, vlen);
        dst[vlen] = 0;
    }
    return len;
}

static int
s_on_socket (CURL *easy, curl_socket_t fd, int what, void *arg, void *sockp)
{
    (void) easy, (void) sockp;
    rst_sender_t *self = arg;
    for (size_t i = 0; i < self->sock_count; i++)
        if (self->socks[i].fd == fd) {
            if (what == CURL_POLL_REMOVE)
                self->socks[i] = self->socks[--self->sock_count];
            else
                self->socks[i].what = what;
            return 0;
        }
    if (what != CURL_POLL_REMOVE && self->sock_count < S_MAX_SOCKETS)
        self->socks[self->sock_count++] = (s_sock_t) {fd, what};
    return 0;
}

static int
s_on_timer (CURLM *multi, long timeout_ms, void *arg)
{
    (void) multi;
    rst_sender_t *self = arg;
    self->curl_deadline_ms = timeout_ms < 0 ? -1 : rst_clock_mono_ms () + timeout_ms;
    return 0;
}

static void
s_req_free (s_req_t *req)
{
    if (!req)
        return;
    if (req->easy)
        curl_easy_cleanup (req->easy);
    curl_slist_free_all (req->headers);
    if (req->body) {
        sodium_memzero (req->body, req->body_len);
        free (req->body);
    }
    free (req->resp);
    free (req);
}

//  --------------------------------------------------------------------------
//  Posting

//  Cuts the events of E that are too old for Meta into a dead batch.
//  Returns 1 when E was replaced (the caller looks again), 0 when nothing
//  is too old.
static int
s_cut_too_old (rst_sender_t *self, s_entry_t *e, const rst_spool_batch_t *b)
{
    int64_t cutoff = rst_clock_wall_ms () - (int64_t) RST_META_MAX_AGE_S * 1000 + S_TOO_OLD_MARGIN_MS;
    unsigned char part[RST_META_MAX_EVENTS];
    size_t old = 0;
    for (size_t i = 0; i < b->count && i < RST_META_MAX_EVENTS; i++) {
        part[i] = b->items[i].time_ms < cutoff;
        old += part[i];
    }
    if (!old)
        return 0;
    rst_meta_result_t r;
    memset (&r, 0, sizeof r);
    snprintf (r.message, sizeof r.message,
              "event_time older than Meta's 7 days: not posted (rastro cut it off)");
    rst_metrics_inc (self->metrics, self->m_too_old, (double) old);
    if (old == b->count) {
        s_kill (self, e, "too-old", &r);
        return 1;
    }
    uint64_t ids[2];
    size_t pixel = e->pixel;
    if (rst_spool_split (self->spool, e->id, part, ids)) {
        rst_error (S_CLS, "%s", rst_spool_error (self->spool));
        return 1;
    }
    rst_spool_head_t head = b->head;
    s_entry_remove (self, b->head.id);
    for (int p = 0; p < 2; p++) {
        head.id = ids[p];
        head.state = RST_SPOOL_PENDING;
        head.attempts = 0;
        head.next_ms = 0;
        head.count = (uint32_t) (p ? old : b->count - old);
        s_entry_add (self, &head, pixel);
    }
    s_kill (self, s_entry (self, ids[1]), "too-old", &r);
    return 1;
}

//  Starts the POST of entry E. Returns 0 when started (or when E changed
//  state instead: dead, split), -1 when the pixel must wait.
static int
s_post (rst_sender_t *self, s_entry_t *e)
{
    s_pixel_t *px = &self->pixels[e->pixel];
    int t = s_token (self, px);
    if (t == 1) {
        px->next_ms = rst_clock_mono_ms () + S_PG_RETRY_MS;
        return -1;
    }
    if (t == 2) {
        rst_meta_result_t r;
        memset (&r, 0, sizeof r);
        snprintf (r.message, sizeof r.message, "no pixel %s for owner %" PRId64 " in rastro",
                  px->pixel_id, px->owner_id);
        rst_warn (S_CLS, "%s: dead-lettering its batch", r.message);
        s_kill (self, e, "unknown-pixel", &r);
        return 0;
    }
    rst_spool_batch_t *b = rst_spool_get (self->spool, e->id);
    if (!b) {
        rst_error (S_CLS, "batch %" PRIu64 ": %s", e->id, rst_spool_error (self->spool));
        e->next_ms = rst_clock_wall_ms () + S_PG_RETRY_MS;
        return 0;
    }
    if (s_cut_too_old (self, e, b)) {
        rst_spool_batch_destroy (&b);
        return 0;
    }
    const char *texts[RST_META_MAX_EVENTS];
    size_t n = b->count < RST_META_MAX_EVENTS ? b->count : RST_META_MAX_EVENTS;
    for (size_t i = 0; i < n; i++)
        texts[i] = b->items[i].capi.ptr;
    size_t len = 0;
    char *body = rst_meta_body (texts, n, px->test_event_code, &len);
    rst_spool_batch_destroy (&b);
    s_req_t *req = calloc (1, sizeof *req);
    size_t tl = strlen (px->token);
    if (req && body)
        req->body = malloc (len + tl + 32);
    if (!req || !body || !req->body) {
        free (body);
        s_req_free (req);
        rst_error (S_CLS, "out of memory building a request");
        return -1;
    }
    //  {"access_token":"…", + the rest of the body after its '{'.
    int head = snprintf (req->body, tl + 32, "{\"access_token\":\"%s\",", px->token);
    memcpy (req->body + head, body + 1, len);     //  includes the NUL
    req->body_len = (size_t) head + len - 1;
    free (body);

    char url[RST_URL_MAX + 128];
    snprintf (url, sizeof url, "%s/%s/%s/events", self->cfg->meta_graph_url,
              self->cfg->meta_api_version, px->pixel_id);
    req->easy = curl_easy_init ();
    req->headers = curl_slist_append (NULL, "Content-Type: application/json");
    if (!req->easy || !req->headers) {
        s_req_free (req);
        return -1;
    }
    req->id = e->id;
    req->pixel = e->pixel;
    req->count = e->count;
    req->started_ms = rst_clock_mono_ms ();
    CURL *c = req->easy;
    curl_easy_setopt (c, CURLOPT_URL, url);
    curl_easy_setopt (c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (c, CURLOPT_POST, 1L);
    curl_easy_setopt (c, CURLOPT_POSTFIELDS, req->body);
    curl_easy_setopt (c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) req->body_len);
    curl_easy_setopt (c, CURLOPT_HTTPHEADER, req->headers);
    curl_easy_setopt (c, CURLOPT_TIMEOUT_MS, self->timeout_ms);
    curl_easy_setopt (c, CURLOPT_CONNECTTIMEOUT_MS, self->timeout_ms);
    curl_easy_setopt (c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt (c, CURLOPT_USERAGENT, "rastro-sender/1");
    curl_easy_setopt (c, CURLOPT_WRITEFUNCTION, s_on_body);
    curl_easy_setopt (c, CURLOPT_WRITEDATA, req);
    curl_easy_setopt (c, CURLOPT_HEADERFUNCTION, s_on_header);
    curl_easy_setopt (c, CURLOPT_HEADERDATA, req);
    curl_easy_setopt (c, CURLOPT_ERRORBUFFER, req->errbuf);
    curl_easy_setopt (c, CURLOPT_PRIVATE, req);
    //  No "Expect: 100-continue" round trip for large bodies.
    req->headers = curl_slist_append (req->headers, "Expect:");
    curl_easy_setopt (c, CURLOPT_HTTPHEADER, req->headers);
    CURLMcode mc = curl_multi_add_handle (self->multi, c);
    if (mc != CURLM_OK) {
        rst_error (S_CLS, "libcurl: add handle: %s", curl_multi_strerror (mc));
        s_req_free (req);
        return -1;
    }
    for (long i = 0; i < self->max_inflight; i++)
        if (!self->reqs[i]) {
            self->reqs[i] = req;
            break;
        }
    e->inflight = 1;
    px->inflight++;
    self->inflight++;
    rst_metrics_inc (self->metrics, px->m_sent, (double) e->count);
    rst_metrics_inc (self->metrics, self->m_posts, 1);
    return 0;
}

//  Starts POSTs while there is room: priority batches first, oldest first.
//  s_post may add, split or remove entries (the array can move), so each
//  round looks for the first eligible entry again; GUARD bounds the rounds.
static void
s_dispatch (rst_sender_t *self)
{
    for (int guard = 0; guard < 1024 && self->inflight < self->max_inflight; guard++) {
        int64_t now_wall = rst_clock_wall_ms (), now = rst_clock_mono_ms ();
        s_entry_t *pick = NULL;
        for (int lane = 1; lane >= 0 && !pick; lane--)
            for (size_t i = 0; i < self->entry_count; i++) {
                s_entry_t *e = &self->entries[i];
                if (e->inflight || e->state != RST_SPOOL_PENDING || (e->priority != 0) != lane
                    || e->next_ms > now_wall)
                    continue;
                s_pixel_t *px = &self->pixels[e->pixel];
                if (px->next_ms > now || px->inflight >= self->pixel_inflight)
                    continue;
                pick = e;
                break;
            }
        if (!pick)
            return;
        s_post (self, pick);
    }
}

//  Handles one finished POST.
static void
s_done (rst_sender_t *self, s_req_t *req, CURLcode result)
{
    s_pixel_t *px = &self->pixels[req->pixel];
    px->inflight--;
    self->inflight--;
    long status = 0;
    curl_easy_getinfo (req->easy, CURLINFO_RESPONSE_CODE, &status);
    char cerr[CURL_ERROR_SIZE + 64];
    if (result != CURLE_OK)
        snprintf (cerr, sizeof cerr, "libcurl: %s", req->errbuf[0] ? req->errbuf
                                                                   : curl_easy_strerror (result));
    rst_meta_result_t r;
    rst_meta_classify (status, result != CURLE_OK ? cerr : NULL, req->resp, req->resp_len,
                       req->usage[0] ? req->usage : NULL,
                       req->retry_after[0] ? req->retry_after : NULL, &r);
    s_scrub (r.message, px->token);
    s_entry_t *e = s_entry (self, req->id);
    if (!e)
        return;             //  cannot happen: entries in flight are not removed
    e->inflight = 0;
    int64_t now = rst_clock_mono_ms (), wall = rst_clock_wall_ms ();

    if (r.verdict == RST_META_ACCEPTED) {
        rst_spool_batch_t *b = rst_spool_get (self->spool, e->id);
        if (rst_spool_accept (self->spool, e->id, wall)) {
            //  Meta has them; if the spool cannot record it we would post
            //  them again. Keep retrying the record, never the POST.
            rst_error (S_CLS, "Meta accepted batch %" PRIu64 " but %s", e->id,
                       rst_spool_error (self->spool));
            rst_spool_batch_destroy (&b);
            e->state = RST_SPOOL_DEAD;      //  parked: not posted again in this run
            return;
        }
        if (px->fail_streak)
            rst_info (S_CLS, "pixel %s: Meta accepts again", px->pixel_id);
        px->fail_streak = 0;
        if ((uint32_t) r.events_received != req->count)
            rst_warn (S_CLS, "pixel %s: Meta counted %d events of %u (fbtrace_id %s)",
                      px->pixel_id, r.events_received, req->count, r.fbtrace_id);
        int64_t oldest = 0;
        if (b) {
            for (size_t i = 0; i < b->count; i++) {
                int64_t lat = wall - b->items[i].time_ms;
                rst_metrics_observe (self->metrics, self->m_latency, lat > 0 ? lat / 1000.0 : 0);
                if (lat > oldest)
                    oldest = lat;
            }
            s_publish (self, RST_OUTCOME_ACCEPTED, px->pixel_id, b, 0, oldest);
        }
        rst_metrics_inc (self->metrics, px->m_accepted, (double) req->count);
        rst_debug (S_CLS, "pixel %s: %u events accepted in %" PRId64 " ms", px->pixel_id,
                   req->count, now - req->started_ms);
        rst_spool_batch_destroy (&b);
        s_entry_remove (self, req->id);
        return;
    }
    if (r.verdict == RST_META_RETRY) {
        e->attempts++;
        int64_t delay = s_backoff (self, (int) e->attempts);
        if (r.wait_ms > delay)
            delay = r.wait_ms;
        e->next_ms = wall + delay;
        if (rst_spool_reschedule (self->spool, e->id, e->attempts, e->next_ms))
            rst_error (S_CLS, "%s", rst_spool_error (self->spool));
        rst_metrics_inc (self->metrics, self->m_retries, 1);
        px->fail_streak++;
        int64_t pause = r.throttled ? (r.wait_ms > 0 ? r.wait_ms : s_backoff (self, px->fail_streak))
                                    : s_backoff (self, px->fail_streak);
        if (px->next_ms < now + pause)
            px->next_ms = now + pause;
        if (r.throttled) {
            rst_metrics_inc (self->metrics, self->m_throttled, 1);
            s_publish (self, RST_OUTCOME_THROTTLED, px->pixel_id, NULL, pause, 0);
        }
        if (px->fail_streak == 1 || r.throttled)
            rst_warn (S_CLS, "pixel %s: %s (HTTP %ld, code %d/%d, fbtrace_id %s): retrying in "
                      "%" PRId64 " ms", px->pixel_id, r.message, r.http_status, r.code, r.subcode,
                      r.fbtrace_id[0] ? r.fbtrace_id : "-", pause);
        else
            rst_debug (S_CLS, "pixel %s: %s: attempt %u, next in %" PRId64 " ms", px->pixel_id,
                       r.message, e->attempts, delay);
        return;
    }
    //  REJECTED.
    if (r.code == 190 || r.code == 102)
        px->token_state = S_TOKEN_UNKNOWN;      //  reload: someone may fix it
    if (r.split && e->count > 1) {
        unsigned char part[RST_META_MAX_EVENTS];
        for (uint32_t i = 0; i < e->count && i < RST_META_MAX_EVENTS; i++)
            part[i] = i >= e->count / 2;
        uint64_t ids[2];
        rst_spool_head_t head;
        memset (&head, 0, sizeof head);
        head.priority = e->priority;
        uint32_t count = e->count;
        size_t pixel = e->pixel;
        if (rst_spool_split (self->spool, e->id, part, ids)) {
            rst_error (S_CLS, "%s", rst_spool_error (self->spool));
            e->next_ms = wall + S_PG_RETRY_MS;
            return;
        }
        rst_metrics_inc (self->metrics, self->m_splits, 1);
        rst_info (S_CLS, "pixel %s: Meta refused a batch of %u for one event (%s, fbtrace_id "
                  "%s): split in two", px->pixel_id, count, r.message, r.fbtrace_id);
        s_entry_remove (self, req->id);
        for (int p = 0; p < 2; p++) {
            head.id = ids[p];
            head.state = RST_SPOOL_PENDING;
            head.count = p ? count - count / 2 : count / 2;
            if (ids[p])
                s_entry_add (self, &head, pixel);
        }
        return;
    }
    rst_warn (S_CLS, "pixel %s: Meta refused %u events for good: %s (HTTP %ld, code %d/%d, "
              "fbtrace_id %s)", px->pixel_id, e->count, r.message, r.http_status, r.code,
              r.subcode, r.fbtrace_id[0] ? r.fbtrace_id : "-");
    s_kill (self, e, s_reason (&r), &r);
}

//  Collects finished transfers.
static void
s_reap (rst_sender_t *self)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read (self->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        s_req_t *req = NULL;
        curl_easy_getinfo (msg->easy_handle, CURLINFO_PRIVATE, (char **) &req);
        CURLcode result = msg->data.result;
        curl_multi_remove_handle (self->multi, msg->easy_handle);
        for (long i = 0; i < self->max_inflight; i++)
            if (self->reqs[i] == req)
                self->reqs[i] = NULL;
        s_done (self, req, result);
        s_req_free (req);
    }
}

//  --------------------------------------------------------------------------
//  Receiving batches

static void
s_take (rst_sender_t *self, rst_batch_t **batches, size_t n)
{
    if (!n)
        return;
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += batches[i]->count;
    unsigned char *verdicts = calloc (total ? total : 1, 1);
    uint64_t *ids = calloc (n, sizeof *ids);
    if (!verdicts || !ids) {
        rst_error (S_CLS, "out of memory spooling %zu batches (not acked: they are replayed)", n);
        goto done;
    }
    if (rst_spool_add (self->spool, (const rst_batch_t *const *) batches, n, 0, verdicts, ids)) {
        rst_metrics_inc (self->metrics, self->m_spool_fail, (double) n);
        rst_error (S_CLS, "%s; %zu events not acked (their journals replay them)",
                   rst_spool_error (self->spool), total);
        goto done;
    }
    size_t v = 0;
    for (size_t i = 0; i < n; i++) {
        rst_batch_t *b = batches[i];
        unsigned char skip[RST_META_MAX_EVENTS] = {0};
        for (size_t j = 0; j < b->count; j++, v++) {
            if (verdicts[v] == RST_SPOOL_BAD) {
                skip[j < RST_META_MAX_EVENTS ? j : 0] = 1;
                rst_metrics_inc (self->metrics, self->m_bad, 1);
            }
            else if (verdicts[v] != RST_SPOOL_KEPT)
                rst_metrics_inc (self->metrics, self->m_dups, 1);
        }
        s_ack_batch (self, b, skip);
        if (!ids[i])
            continue;
        char pixel[RST_EVENT_SHORT_MAX + 1];
        snprintf (pixel, sizeof pixel, "%.*s", (int) b->pixel_id.len, b->pixel_id.ptr);
        size_t p = s_pixel (self, b->owner_id, pixel);
        rst_spool_head_t head;
        memset (&head, 0, sizeof head);
        head.id = ids[i];
        head.state = RST_SPOOL_PENDING;
        head.priority = b->priority;
        head.count = 0;
        for (size_t j = 0; j < b->count; j++)
            head.count += verdicts[v - b->count + j] == RST_SPOOL_KEPT;
        if (p == (size_t) -1 || s_entry_add (self, &head, p))
            rst_error (S_CLS, "out of memory: batch %" PRIu64 " waits for a restart", ids[i]);
    }
done:
    free (verdicts);
    free (ids);
}

//  Reads up to S_DRAIN_MAX batches and spools them in one transaction.
static int
s_drain (rst_sender_t *self)
{
    rst_batch_t *batches[S_DRAIN_MAX];
    size_t n = 0;
    zmq_msg_t msg;
    zmq_msg_init (&msg);
    int rc = 0;
    while (n < S_DRAIN_MAX) {
        if (zmq_msg_recv (&msg, self->in, ZMQ_DONTWAIT) < 0) {
            if (zmq_errno () != EAGAIN && zmq_errno () != EINTR) {
                rst_error (S_CLS, "libzmq: receive: %s", zmq_strerror (zmq_errno ()));
                rc = -1;
            }
            break;
        }
        char why[256];
        rst_batch_t *b = rst_batch_decode (zmq_msg_data (&msg), zmq_msg_size (&msg), why,
                                           sizeof why);
        if (!b) {
            rst_metrics_inc (self->metrics, self->m_bad, 1);
            rst_warn (S_CLS, "dropped a malformed batch: %s", why);
            continue;
        }
        rst_metrics_inc (self->metrics, self->m_batches_in, 1);
        rst_metrics_inc (self->metrics, self->m_events_in, (double) b->count);
        batches[n++] = b;
    }
    zmq_msg_close (&msg);
    s_take (self, batches, n);
    for (size_t i = 0; i < n; i++)
        rst_batch_destroy (&batches[i]);
    return rc < 0 ? -1 : (int) n;
}

//  --------------------------------------------------------------------------
//  dlq replay

static void
s_replay (rst_sender_t *self)
{
    int64_t now = rst_clock_mono_ms ();
    if (!self->replay_wanted && now < self->next_replay_ms)
        return;
    if (s_pg (self))
        return;
    self->replay_wanted = 0;
    self->next_replay_ms = now + S_REPLAY_POLL_MS;
    char limit[16];
    snprintf (limit, sizeof limit, "%d", S_REPLAY_ROWS);
    const char *params[] = {limit};
    PGresult *res = PQexecParams (
        self->pg,
        "SELECT id, owner_id, pixel_id, event_id, payload::text, "
        "coalesce((extract(epoch FROM event_time) * 1000)::bigint, 0) FROM dead_letters "
        "WHERE replay_requested_at IS NOT NULL AND replayed_at IS NULL "
        "ORDER BY owner_id, pixel_id, id LIMIT $1::int",
        1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus (res) != PGRES_TUPLES_OK) {
        s_pg_failed (self, "read replays", PQerrorMessage (self->pg));
        PQclear (res);
        return;
    }
    int rows = PQntuples (res);
    rst_batch_item_t *items = calloc (rows ? (size_t) rows : 1, sizeof *items);
    char *done_ids = malloc ((size_t) rows * 24 + 3);
    if (!items || !done_ids) {
        free (items);
        free (done_ids);
        PQclear (res);
        return;
    }
    size_t dl = 0, replayed = 0;
    done_ids[dl++] = '{';
    int r = 0;
    while (r < rows) {
        //  One batch: consecutive rows of one (owner, pixel) this instance owns.
        const char *pixel = PQgetvalue (res, r, 2);
        const char *owner = PQgetvalue (res, r, 1);
        int end = r;
        while (end < rows && !strcmp (PQgetvalue (res, end, 2), pixel)
               && !strcmp (PQgetvalue (res, end, 1), owner) && end - r < RST_META_MAX_EVENTS)
            end++;
        if (rst_shard_of (pixel, strlen (pixel), (size_t) self->instances)
            != (size_t) self->instance) {
            r = end;
            continue;
        }
        rst_batch_t batch;
        memset (&batch, 0, sizeof batch);
        batch.owner_id = strtoll (owner, NULL, 10);
        batch.pixel_id = rst_str (pixel);
        batch.created_ms = rst_clock_wall_ms ();
        batch.items = items + r;
        batch.count = (size_t) (end - r);
        for (int i = r; i < end; i++) {
            items[i].event_id = rst_str (PQgetvalue (res, i, 3));
            items[i].capi = rst_str (PQgetvalue (res, i, 4));
            items[i].time_ms = strtoll (PQgetvalue (res, i, 5), NULL, 10);
        }
        const rst_batch_t *one[] = {&batch};
        unsigned char verdicts[RST_META_MAX_EVENTS];
        uint64_t id = 0;
        if (rst_spool_add (self->spool, one, 1, RST_SPOOL_REPLAY, verdicts, &id)) {
            rst_error (S_CLS, "dlq replay: %s", rst_spool_error (self->spool));
            break;
        }
        if (id) {
            rst_spool_head_t head;
            memset (&head, 0, sizeof head);
            head.id = id;
            head.state = RST_SPOOL_PENDING;
            for (size_t j = 0; j < batch.count; j++)
                head.count += verdicts[j] == RST_SPOOL_KEPT;
            size_t p = s_pixel (self, batch.owner_id, pixel);
            if (p != (size_t) -1) {
                s_entry_add (self, &head, p);
                s_pixel_forget_token (&self->pixels[p]);    //  the fix may be a new token
            }
        }
        for (int i = r; i < end; i++) {
            const char *rid = PQgetvalue (res, i, 0);
            dl += (size_t) sprintf (done_ids + dl, "%s%s", dl > 1 ? "," : "", rid);
            replayed++;
        }
        r = end;
    }
    done_ids[dl++] = '}';
    done_ids[dl] = 0;
    if (replayed) {
        const char *up[] = {done_ids};
        PGresult *u = PQexecParams (self->pg,
                                    "UPDATE dead_letters SET replayed_at = now() "
                                    "WHERE id = ANY($1::bigint[])",
                                    1, NULL, up, NULL, NULL, 0);
        if (PQresultStatus (u) != PGRES_COMMAND_OK)
            s_pg_failed (self, "mark replayed", PQerrorMessage (self->pg));
        else {
            rst_info (S_CLS, "dlq: %zu dead letters taken back into the spool", replayed);
            rst_metrics_inc (self->metrics, self->m_replayed, (double) replayed);
        }
        PQclear (u);
    }
    free (items);
    free (done_ids);
    PQclear (res);
}

//  --------------------------------------------------------------------------
//  Metrics and heartbeat

static void
s_metrics_declare (rst_sender_t *self)
{
    rst_metrics_t *m = self->metrics;
#define S_C(field, name, help) self->field = rst_metrics_add (m, RST_METRIC_COUNTER, name, help, NULL, 0)
#define S_G(field, name, help) self->field = rst_metrics_add (m, RST_METRIC_GAUGE, name, help, NULL, 0)
    S_C (m_batches_in, "rastro_sender_batches_received_total", "Batches received and decoded.");
    S_C (m_events_in, "rastro_sender_events_received_total", "Events in the batches received.");
    S_C (m_dups, "rastro_sender_duplicates_total",
         "Events dropped as already spooled, accepted or dead-lettered (still acked).");
    S_C (m_bad, "rastro_sender_malformed_total", "Malformed batches or events dropped.");
    S_C (m_spool_fail, "rastro_sender_spool_failures_total",
         "Batches that could not be spooled (not acked; replayed by the journals).");
    S_C (m_acks, "rastro_sender_acks_sent_total", "Sequence numbers acknowledged to journals.");
    S_C (m_ack_fail, "rastro_sender_ack_failures_total", "Acks that could not be sent.");
    S_C (m_posts, "rastro_sender_posts_total", "POSTs started.");
    S_C (m_retries, "rastro_sender_retries_total", "POSTs that failed transiently (retried).");
    S_C (m_throttled, "rastro_sender_throttled_total", "Replies with a throttling code.");
    S_C (m_splits, "rastro_sender_splits_total", "Batches split after a one-bad-event refusal.");
    S_C (m_dead, "rastro_sender_dead_letters_total", "Events written to dead_letters.");
    S_C (m_too_old, "rastro_sender_too_old_total", "Events cut off as older than Meta's 7 days.");
    S_C (m_replayed, "rastro_sender_dlq_replayed_total", "Dead letters taken back by dlq replay.");
    S_G (m_inflight, "rastro_sender_inflight", "POSTs in flight.");
    S_G (m_spool_batches, "rastro_sender_spool_batches", "Batches in the spool.");
    S_G (m_spool_events, "rastro_sender_spool_events", "Events in the spool.");
    S_G (m_spool_oldest, "rastro_sender_spool_oldest_seconds", "Age of the oldest spooled batch.");
    S_G (m_done_ids, "rastro_sender_done_ids", "Accepted/dead-lettered event_ids remembered.");
    S_G (m_pg_up, "rastro_sender_postgres_up", "1 when PostgreSQL answers.");
    S_C (m_other_sent, "rastro_sender_events_sent_total{pixel=\"other\"}",
         "Events posted to Meta (attempts), per pixel.");
    S_C (m_other_accepted, "rastro_sender_events_accepted_total{pixel=\"other\"}",
         "Events Meta accepted, per pixel.");
    S_C (m_other_failed, "rastro_sender_events_failed_total{pixel=\"other\"}",
         "Events dead-lettered, per pixel.");
#undef S_C
#undef S_G
    self->m_latency = rst_metrics_add (m, RST_METRIC_HISTOGRAM, "rastro_sender_delivery_seconds",
                                       "Event born (action time) to accepted by Meta.",
                                       s_latency_bounds,
                                       sizeof s_latency_bounds / sizeof s_latency_bounds[0]);
}

static void
s_heartbeat (rst_sender_t *self, int force)
{
    int64_t now = rst_clock_mono_ms ();
    if (!force && now < self->next_heartbeat_ms)
        return;
    self->next_heartbeat_ms = now + S_HEARTBEAT_MS;
    uint64_t batches = 0, events = 0, done = 0;
    int64_t oldest = 0;
    if (rst_spool_stats (self->spool, &batches, &events, &done, &oldest) == 0) {
        rst_metrics_set (self->metrics, self->m_spool_batches, (double) batches);
        rst_metrics_set (self->metrics, self->m_spool_events, (double) events);
        rst_metrics_set (self->metrics, self->m_done_ids, (double) done);
        rst_metrics_set (self->metrics, self->m_spool_oldest,
                         oldest ? (double) (rst_clock_wall_ms () - oldest) / 1000.0 : 0);
    }
    rst_metrics_set (self->metrics, self->m_inflight, self->inflight);
    rst_metrics_set (self->metrics, self->m_pg_up, self->pg && !self->pg_down ? 1 : 0);
    rst_metrics_heartbeat (self->metrics, self->cfg->data_dir, S_CLS, self->instance);
}

//  --------------------------------------------------------------------------
//  Construction

static int
s_load_visit (void *arg, const rst_spool_head_t *head)
{
    rst_sender_t *self = arg;
    size_t p = s_pixel (self, head->owner_id, head->pixel_id);
    if (p == (size_t) -1 || s_entry_add (self, head, p))
        return 1;
    return 0;
}

static long
s_long (const rst_topology_t *topo, int instance, const char *key, long def, long min, long max,
        char *err, size_t errlen, int *bad)
{
    long v = rst_topology_get_long (topo, S_CLS, instance, key, def);
    if (v < min || v > max) {
        snprintf (err, errlen, "topology: [sender] %s must be %ld..%ld, not %ld", key, min, max, v);
        *bad = 1;
    }
    return v;
}

rst_sender_t *
rst_sender_new (const rst_config_t *cfg, const rst_topology_t *topo, int instance, char *err,
                size_t errlen)
{
    assert (cfg);
    assert (topo);
    rst_sender_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, errlen, "sender: out of memory");
        return NULL;
    }
    self->cfg = cfg;
    self->topo = topo;
    self->instance = instance;
    self->instances = rst_topology_instances (topo, S_CLS);
    if (self->instances < 1)
        self->instances = 1;
    self->curl_deadline_ms = -1;
    msgpack_sbuffer_init (&self->buf);
    if (curl_global_init (CURL_GLOBAL_DEFAULT) != CURLE_OK || sodium_init () < 0) {
        snprintf (err, errlen, "sender: libcurl or libsodium failed to initialise");
        free (self);
        return NULL;
    }
    int bad = 0;
    self->timeout_ms = s_long (topo, instance, "timeout_ms", RST_SENDER_TIMEOUT_MS_DEFAULT, 100,
                               120000, err, errlen, &bad);
    self->max_inflight = s_long (topo, instance, "max_inflight", RST_SENDER_MAX_INFLIGHT_DEFAULT,
                                 1, 256, err, errlen, &bad);
    self->pixel_inflight = s_long (topo, instance, "pixel_inflight",
                                   RST_SENDER_PIXEL_INFLIGHT_DEFAULT, 1, 256, err, errlen, &bad);
    self->backoff_min_ms = s_long (topo, instance, "backoff_min_ms",
                                   RST_SENDER_BACKOFF_MIN_MS_DEFAULT, 10, 600000, err, errlen, &bad);
    self->backoff_max_ms = s_long (topo, instance, "backoff_max_ms",
                                   RST_SENDER_BACKOFF_MAX_MS_DEFAULT, self->backoff_min_ms,
                                   24 * 3600 * 1000L, err, errlen, &bad);
    self->spool_max_mb = s_long (topo, instance, "spool_max_mb", RST_SENDER_SPOOL_MAX_MB_DEFAULT,
                                 16, 16L << 20, err, errlen, &bad);
    if (bad)
        goto fail;
    self->metrics = rst_metrics_new ();
    self->reqs = calloc ((size_t) self->max_inflight, sizeof *self->reqs);
    if (!self->metrics || !self->reqs) {
        snprintf (err, errlen, "sender: out of memory");
        goto fail;
    }
    s_metrics_declare (self);

    if (rst_topology_get (topo, S_CLS, instance, "spool", self->spool_dir, sizeof self->spool_dir)) {
        snprintf (err, errlen, "topology: [sender] needs spool = <directory>");
        goto fail;
    }
    size_t max = (size_t) self->spool_max_mb * S_MB;
    size_t first = RST_SPOOL_MAP_SIZE_DEFAULT < max ? RST_SPOOL_MAP_SIZE_DEFAULT : max;
    self->spool = rst_spool_new (self->spool_dir, first, max, err, errlen);
    if (!self->spool)
        goto fail;
    if (rst_spool_scan (self->spool, s_load_visit, self) < 0) {
        snprintf (err, errlen, "%s", rst_spool_error (self->spool));
        goto fail;
    }

    self->multi = curl_multi_init ();
    if (!self->multi) {
        snprintf (err, errlen, "sender: libcurl: curl_multi_init failed");
        goto fail;
    }
    curl_multi_setopt (self->multi, CURLMOPT_SOCKETFUNCTION, s_on_socket);
    curl_multi_setopt (self->multi, CURLMOPT_SOCKETDATA, self);
    curl_multi_setopt (self->multi, CURLMOPT_TIMERFUNCTION, s_on_timer);
    curl_multi_setopt (self->multi, CURLMOPT_TIMERDATA, self);
    curl_multi_setopt (self->multi, CURLMOPT_MAX_HOST_CONNECTIONS, self->max_inflight);
    curl_multi_setopt (self->multi, CURLMOPT_MAXCONNECTS, self->max_inflight);

    self->zmq_ctx = zmq_ctx_new ();
    if (!self->zmq_ctx) {
        snprintf (err, errlen, "sender: libzmq: zmq_ctx_new: %s", zmq_strerror (zmq_errno ()));
        goto fail;
    }
    self->in = rst_zsock_new (self->zmq_ctx, ZMQ_PULL, S_IN_HWM, S_LINGER_MS, 0);
    self->outcomes = rst_zsock_new (self->zmq_ctx, ZMQ_PUB, S_OUT_HWM, S_LINGER_MS, 0);
    if (!self->in || !self->outcomes) {
        snprintf (err, errlen, "sender: libzmq: socket: %s", zmq_strerror (zmq_errno ()));
        goto fail;
    }
    if (rst_topology_attach (topo, self->in, S_CLS, instance, "in", err, errlen)
        || rst_topology_attach (topo, self->outcomes, S_CLS, instance, "outcomes", err, errlen))
        goto fail;
    self->acks = rst_acks_new (self->zmq_ctx, topo, S_CLS, instance, "acks", 0, err, errlen);
    if (!self->acks)
        goto fail;
    char why[512];
    self->pg = rst_db_connect (cfg, why, sizeof why);
    if (!self->pg)
        s_pg_failed (self, "connect", why);
    else if (rst_db_exec (self->pg, "LISTEN rastro_config; LISTEN rastro_dlq", why, sizeof why))
        s_pg_failed (self, "LISTEN", why);
    self->replay_wanted = 1;
    self->next_dead_ms = 0;
    return self;
fail:
    rst_sender_destroy (&self);
    return NULL;
}

void
rst_sender_destroy (rst_sender_t **self_p)
{
    assert (self_p);
    rst_sender_t *self = *self_p;
    if (!self)
        return;
    if (self->reqs)
        for (long i = 0; i < self->max_inflight; i++)
            if (self->reqs[i]) {
                curl_multi_remove_handle (self->multi, self->reqs[i]->easy);
                s_req_free (self->reqs[i]);
            }
    if (self->multi)
        curl_multi_cleanup (self->multi);
    for (size_t i = 0; i < self->pixel_count; i++)
        s_pixel_forget_token (&self->pixels[i]);
    if (self->pg)
        PQfinish (self->pg);
    rst_secret_destroy (&self->secret);
    rst_acks_destroy (&self->acks);
    if (self->in)
        zmq_close (self->in);
    if (self->outcomes)
        zmq_close (self->outcomes);
    if (self->zmq_ctx)
        zmq_ctx_term (self->zmq_ctx);
    rst_spool_destroy (&self->spool);
    rst_metrics_destroy (&self->metrics);
    msgpack_sbuffer_destroy (&self->buf);
    free (self->reqs);
    free (self->pixels);
    free (self->entries);
    free (self);
    curl_global_cleanup ();
    *self_p = NULL;
}

void
rst_sender_print (const rst_sender_t *self)
{
    assert (self);
    char v[1024];
    rst_info (S_CLS, "instance = %d of %d", self->instance, self->instances);
    if (!rst_topology_get (self->topo, S_CLS, self->instance, "in", v, sizeof v))
        rst_info (S_CLS, "in = %s (PULL)", v);
    if (!rst_topology_get (self->topo, S_CLS, self->instance, "outcomes", v, sizeof v))
        rst_info (S_CLS, "outcomes = %s (PUB)", v);
    rst_acks_print (self->acks, "events", "");
    rst_info (S_CLS, "spool = %s (%zu batches waiting)", self->spool_dir, self->entry_count);
    rst_info (S_CLS, "meta = %s/%s/<pixel>/events", self->cfg->meta_graph_url,
              self->cfg->meta_api_version);
    rst_info (S_CLS, "timeout_ms = %ld", self->timeout_ms);
    rst_info (S_CLS, "max_inflight = %ld", self->max_inflight);
    rst_info (S_CLS, "pixel_inflight = %ld", self->pixel_inflight);
    rst_info (S_CLS, "backoff_min_ms = %ld", self->backoff_min_ms);
    rst_info (S_CLS, "backoff_max_ms = %ld", self->backoff_max_ms);
    rst_info (S_CLS, "spool_max_mb = %ld", self->spool_max_mb);
}

//  --------------------------------------------------------------------------
//  The loop

//  One poll + the work it made due. ACCEPTING: read `in`.
static int
s_step (rst_sender_t *self, int accepting, int dispatching)
{
    zmq_pollitem_t items[S_MAX_SOCKETS + 2];
    size_t n = 0, first_curl;
    if (accepting)
        items[n++] = (zmq_pollitem_t) {self->in, 0, ZMQ_POLLIN, 0};
    int pg_index = -1;
    if (self->pg && PQsocket (self->pg) >= 0) {
        pg_index = (int) n;
        items[n++] = (zmq_pollitem_t) {NULL, PQsocket (self->pg), ZMQ_POLLIN, 0};
    }
    first_curl = n;
    for (size_t i = 0; i < self->sock_count; i++) {
        short ev = 0;
        if (self->socks[i].what & CURL_POLL_IN)
            ev |= ZMQ_POLLIN;
        if (self->socks[i].what & CURL_POLL_OUT)
            ev |= ZMQ_POLLOUT;
        items[n++] = (zmq_pollitem_t) {NULL, self->socks[i].fd, ev, 0};
    }
    int64_t now = rst_clock_mono_ms ();
    long timeout = S_TICK_MS;
    if (self->curl_deadline_ms >= 0) {
        int64_t left = self->curl_deadline_ms - now;
        if (left < timeout)
            timeout = left > 0 ? (long) left : 0;
    }
    int rc = zmq_poll (items, (int) n, timeout);
    if (rc < 0) {
        if (zmq_errno () == EINTR)
            return 0;
        rst_error (S_CLS, "libzmq: poll: %s", zmq_strerror (zmq_errno ()));
        return -1;
    }
    int running;
    for (size_t i = first_curl; i < n; i++) {
        if (!items[i].revents)
            continue;
        int flags = 0;
        if (items[i].revents & ZMQ_POLLIN)
            flags |= CURL_CSELECT_IN;
        if (items[i].revents & ZMQ_POLLOUT)
            flags |= CURL_CSELECT_OUT;
        if (items[i].revents & ZMQ_POLLERR)
            flags |= CURL_CSELECT_ERR;
        curl_multi_socket_action (self->multi, items[i].fd, flags, &running);
    }
    if (self->curl_deadline_ms >= 0 && rst_clock_mono_ms () >= self->curl_deadline_ms) {
        self->curl_deadline_ms = -1;
        curl_multi_socket_action (self->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    }
    s_reap (self);
    if (pg_index >= 0 && (items[pg_index].revents & ZMQ_POLLIN))
        s_pg_notifies (self);
    if (accepting && (items[0].revents & ZMQ_POLLIN))
        while (s_drain (self) == S_DRAIN_MAX)
            ;
    if (dispatching) {
        s_flush_dead (self);
        s_replay (self);
        s_dispatch (self);
        if (self->inflight) {
            //  Let libcurl start the new transfers now rather than at its timer.
            curl_multi_socket_action (self->multi, CURL_SOCKET_TIMEOUT, 0, &running);
            s_reap (self);
        }
        if (rst_clock_mono_ms () >= self->next_prune_ms) {
            self->next_prune_ms = rst_clock_mono_ms () + S_PRUNE_MS;
            int pruned = rst_spool_prune (self->spool, rst_clock_wall_ms () - RST_SPOOL_DONE_KEEP_MS,
                                          S_PRUNE_MAX);
            if (pruned > 0)
                rst_info (S_CLS, "forgot %d event_ids done more than 8 days ago", pruned);
        }
    }
    s_heartbeat (self, 0);
    return 0;
}

int
rst_sender_run (rst_sender_t *self, volatile sig_atomic_t *stop)
{
    assert (self);
    assert (stop);
    rst_info (S_CLS, "sending to Meta (%zu batches in the spool)%s", self->entry_count,
              self->pg ? "" : " (PostgreSQL not reachable yet)");
    s_heartbeat (self, 1);
    int rc = 0;
    while (!*stop)
        if (s_step (self, 1, 1)) {
            rc = -1;
            break;
        }
    if (self->inflight)
        rst_info (S_CLS, "stopping: waiting up to %ld ms for %d POSTs in flight",
                  self->timeout_ms, self->inflight);
    int64_t until = rst_clock_mono_ms () + self->timeout_ms;
    while (rc == 0 && self->inflight && rst_clock_mono_ms () < until)
        if (s_step (self, 0, 0))
            break;
    if (self->inflight)
        rst_info (S_CLS, "abandoning %d POSTs; their batches stay in the spool", self->inflight);
    s_flush_dead (self);
    s_heartbeat (self, 1);
    return rc;
}
