/*  rst_front — see rst_front.h.

    Life of a click inside one HTTP thread:

        on_go ──validate, pick bot, build event──► parked[] ──zero timeout──► s_flush
        s_flush: txn_begin ─► for each: stamp seq, pack, txn_put ─► commit
                 ├─ ok:     302 to each, then one zmq_send(DONTWAIT) of the packed batch
                 └─ failed: 503 to each (nothing was accepted)

    Inbound webhooks take the same road through a second lane:

        on_telegram / on_webhook ──authenticate, validate──► inbox_parked[] ──► s_flush
        s_flush: the same group commit into the inbox journal, durable (fsync)
                 ├─ ok:     200 to each, then one zmq_send(DONTWAIT) to inbox_out
                 └─ failed: 503 + Retry-After to each

    A lane (s_lane_t) is one journal, its PUSH socket and its packed batch;
    s_lane_commit and s_lane_push are the shared part of both flushes.

    h2o runs the zero-timeout entries at the end of the loop iteration in
    which the requests arrived, so a parked request cannot be torn down
    before it is answered. Request bodies live in the request's pool, so a
    parked webhook's body stays valid until it is answered.
*/
#include "rst_front.h"
#include "rst_api_server.h"
#include "rst_click.h"
#include "rst_clock.h"
#include "rst_event.h"
#include "rst_gateway.h"
#include "rst_inbox.h"
#include "rst_journal.h"
#include "rst_keeper.h"
#include "rst_log.h"
#include "rst_metrics.h"
#include "rst_netaddr.h"
#include "rst_pgwatch.h"
#include "rst_snapshot.h"
#include "rst_zsock.h"

#include "h2o.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <sodium.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define S_MAX_URL          4096     //  path + query, bytes
#define S_MAX_HEADER_VALUE 4096
#define S_MAX_HEADERS      100
#define S_PUSH_HWM         100000
#define S_PUSH_LINGER_MS   500
#define S_RETRY_STARTING   "5"      //  Retry-After while pools are not loaded yet
#define S_RETRY_NO_BOT     "30"     //  Retry-After when a pool has no usable bot
#define S_RETRY_JOURNAL    "5"      //  Retry-After when the journal refused a write
#define S_RETRY_NO_INBOX   "60"     //  Retry-After when the topology has no inbox journal
#define S_MAX_ENTITY       (2 * RST_INBOX_MAX_BODY)  //  h2o refuses larger bodies itself (413)
#define S_TG_SECRET_MAX    256      //  Telegram's secret_token is 1-256 characters
#define S_TG_USERNAME_MAX  32
#define S_WARN_EVERY_MS    1000     //  at most one forged-webhook warning per thread and second

//  Webhook kinds in the metrics: Telegram, then one per gateway kind.
#define S_WH_TELEGRAM 0
#define S_WH_KINDS    (1 + RST_GW_KINDS)
static const int s_wh_statuses[] = {200, 400, 401, 405, 413, 503};
#define S_WH_STATUSES ((int) (sizeof s_wh_statuses / sizeof s_wh_statuses[0]))

//  The inbox journal's keeper reads these keys of [front] (topology/local.ini).
static const rst_keeper_keys_t s_inbox_keys
    = {"inbox_acks", "inbox_out", "sync_ms", "replay_after", "rastro_inbox_journal"};

static const double s_latency_bounds[] = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                          0.005,   0.01,   0.025,   0.05,   0.1,   0.5};
static const double s_commit_bounds[] = {0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
                                         0.001,   0.0025,   0.005,   0.01,   0.05,   0.25};
static const double s_webhook_bounds[] = {0.00025, 0.0005, 0.001, 0.002, 0.003, 0.004, 0.005,
                                          0.0075,  0.01,   0.025, 0.05,  0.1,   0.5};

//  A click waiting for the end of the loop iteration.
typedef struct {
    h2o_req_t *req;
    rst_event_t event;          //  strings live in req->pool
    h2o_iovec_t location;       //  in req->pool
    uint64_t started_ns;
    int rejected;               //  the event could not be packed (schema limits)
} s_parked_t;

//  A webhook waiting for the end of the loop iteration.
typedef struct {
    h2o_req_t *req;
    rst_inbox_msg_t msg;        //  body and query point into the request
    int kind;                   //  S_WH_TELEGRAM or 1 + rst_gw_kind_t
    uint64_t started_ns;
    int rejected;               //  the message could not be packed (schema limits)
} s_inbox_parked_t;

typedef struct {
    h2o_multithread_message_t super;
    rst_snapshot_t *snapshot;   //  owned by the message until installed
} s_snapshot_msg_t;

//  Metric indexes of one lane (see s_lane_t).
typedef struct {
    int commit, commits, commit_fail, pushed, push_fail;
} s_lane_ids_t;

//  Metric indexes, the same in every thread's registry.
typedef struct {
    int req_302, req_400, req_401, req_404, req_405, req_413, req_503, req_200, latency, clicks,
        fbclid_bad, snapshot_pools;
    s_lane_ids_t click_lane, inbox_lane;
    int webhooks[S_WH_KINDS][S_WH_STATUSES];    //  rastro_front_webhooks_total{kind,status}
    int webhook_404;                            //  {kind="other",status="404"}
    int webhook_latency[2];                     //  telegram, gateway
    int webhooks_journaled;
} s_metric_ids_t;

//  One journal a thread writes to once per loop iteration (group commit),
//  and the PUSH socket its entries go to next.
typedef struct {
    rst_journal_t *journal;     //  the front's (borrowed)
    int durable;                //  fsync before answering (strict mode)
    const char *what;           //  "clicks", "webhooks": for the log
    void *push;                 //  PUSH to the lane's downstream endpoints (owned)
    msgpack_sbuffer out;        //  entries packed in this iteration
    const s_lane_ids_t *ids;    //  in front->ids
} s_lane_t;

typedef struct s_thread s_thread_t;

struct rst_front_t {
    const rst_config_t *cfg;            //  borrowed
    int instance;
    char src[32];                       //  "front.<instance>", stamped on every event
    rst_cidr_list_t trusted;            //  RASTRO_TRUSTED_PROXIES
    h2o_globalconf_t h2o_config;
    rst_journal_t *journal;
    void *zmq_ctx;
    rst_keeper_t *keeper;
    rst_journal_t *inbox;               //  webhooks' journal (strict mode), NULL if not configured
    rst_keeper_t *inbox_keeper;         //  looks after `inbox`
    const rst_topology_t *topo;         //  borrowed
    size_t nthreads;
    s_thread_t *threads;
    rst_pgwatch_t *watch;               //  snapshot thread: loads pools, calls s_distribute
    atomic_int stop;
    atomic_int snapshot_loaded;         //  1 after the first successful load
    s_metric_ids_t ids;
    rst_api_t *api;                     //  /api/v1: the API worker pool
    int has_web;                        //  cfg->web_dir exists: served at /
};

struct s_thread {
    rst_front_t *front;
    size_t index;
    pthread_t tid;
    int started;
    int listen_fd;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    h2o_socket_t *listener;
    h2o_multithread_receiver_t snapshot_receiver;
    h2o_multithread_receiver_t wake_receiver;
    h2o_multithread_receiver_t api_receiver;   //  answers from the API workers
    rst_snapshot_t *snapshot;           //  this thread's copy; NULL before the first load
    s_lane_t clicks;                    //  journal, events endpoints
    s_lane_t inbox;                     //  inbox journal, inbox_out endpoints (push NULL if none)
    s_parked_t *parked;
    size_t nparked, parked_cap;
    s_inbox_parked_t *inbox_parked;
    size_t ninbox, inbox_cap;
    int64_t last_warn_ms;               //  last forged-webhook warning (rate limit)
    size_t warns_dropped;               //  warnings not logged since
    h2o_timeout_entry_t flush_entry;
    h2o_timeout_t second_timeout;
    h2o_timeout_entry_t second_entry;
    unsigned char random[4000];         //  random bytes for click ids, drawn in bulk
    size_t random_used;                 //  bytes of `random` already handed out
    rst_metrics_t *metrics;             //  this thread's registry
    rst_metrics_t *published;           //  copy for readers, under `lock`
    pthread_mutex_t lock;
    pthread_barrier_t *ready;           //  signalled once the loop is set up
};

//  Declares the commit and push metrics of a lane, named PREFIX_... .
static void
s_declare_lane (rst_metrics_t *m, s_lane_ids_t *ids, const char *journal, const char *push,
                const char *what)
{
    char name[128], help[160];
    snprintf (name, sizeof name, "%s_commit_seconds", journal);
    snprintf (help, sizeof help, "Duration of one %s journal group commit.", what);
    ids->commit = rst_metrics_add (m, RST_METRIC_HISTOGRAM, name, help, s_commit_bounds,
                                   sizeof s_commit_bounds / sizeof (double));
    snprintf (name, sizeof name, "%s_commits_total", journal);
    snprintf (help, sizeof help, "%s journal group commits.", what);
    ids->commits = rst_metrics_add (m, RST_METRIC_COUNTER, name, help, NULL, 0);
    snprintf (name, sizeof name, "%s_commit_failures_total", journal);
    snprintf (help, sizeof help, "%s journal commits that failed (answered 503).", what);
    ids->commit_fail = rst_metrics_add (m, RST_METRIC_COUNTER, name, help, NULL, 0);
    snprintf (name, sizeof name, "%s_messages_total", push);
    snprintf (help, sizeof help, "%s batches pushed downstream.", what);
    ids->pushed = rst_metrics_add (m, RST_METRIC_COUNTER, name, help, NULL, 0);
    snprintf (name, sizeof name, "%s_failures_total", push);
    snprintf (help, sizeof help,
              "%s batches not pushed (downstream absent or full); kept in the journal.", what);
    ids->push_fail = rst_metrics_add (m, RST_METRIC_COUNTER, name, help, NULL, 0);
}

//  "telegram", "mercadopago", ... for webhook kind K.
static const char *
s_wh_kind_name (int k)
{
    return k == S_WH_TELEGRAM ? "telegram" : rst_gateway_kind_name ((rst_gw_kind_t) (k - 1));
}

static void
s_declare_metrics (rst_metrics_t *m, s_metric_ids_t *ids)
{
    static const char *h = "HTTP responses by status.";
    ids->req_200 = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_http_requests_total{status=\"200\"}", h, NULL, 0);
    ids->req_302 = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_http_requests_total{status=\"302\"}", h, NULL, 0);
    ids->req_400 = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_http_requests_total{status=\"400\"}", h, NULL, 0);
    ids->req_401 = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_http_requests_total{status=\"401\"}", h, NULL, 0);
    ids->req_404 = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_http_requests_total{status=\"404\"}", h, NULL, 0);
    ids->req_405 = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_http_requests_total{status=\"405\"}", h, NULL, 0);
    ids->req_413 = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_http_requests_total{status=\"413\"}", h, NULL, 0);
    ids->req_503 = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_http_requests_total{status=\"503\"}", h, NULL, 0);
    ids->latency = rst_metrics_add (m, RST_METRIC_HISTOGRAM, "rastro_redirect_duration_seconds",
                                    "Time from a /go/ request to its answer (journal commit included).",
                                    s_latency_bounds, sizeof s_latency_bounds / sizeof (double));
    ids->clicks = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_clicks_total",
                                   "Clicks journaled and redirected.", NULL, 0);
    s_declare_lane (m, &ids->click_lane, "rastro_journal", "rastro_push", "Click");
    ids->fbclid_bad = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_fbclid_rejected_total",
                                       "fbclid parameters dropped as malformed.", NULL, 0);
    ids->snapshot_pools = rst_metrics_add (m, RST_METRIC_GAUGE, "rastro_snapshot_pools",
                                           "Pools in the in-memory snapshot.", NULL, 0);
    //  Webhooks.
    static const char *hw = "Inbound webhook answers by kind and status.";
    char name[128];
    for (int k = 0; k < S_WH_KINDS; k++)
        for (int i = 0; i < S_WH_STATUSES; i++) {
            snprintf (name, sizeof name, "rastro_front_webhooks_total{kind=\"%s\",status=\"%d\"}",
                      s_wh_kind_name (k), s_wh_statuses[i]);
            ids->webhooks[k][i] = rst_metrics_add (m, RST_METRIC_COUNTER, name, hw, NULL, 0);
        }
    ids->webhook_404 = rst_metrics_add (m, RST_METRIC_COUNTER,
                                        "rastro_front_webhooks_total{kind=\"other\",status=\"404\"}",
                                        hw, NULL, 0);
    static const char *hl = "Time from a webhook request to its 200 (durable journal commit included).";
    ids->webhook_latency[0] = rst_metrics_add (m, RST_METRIC_HISTOGRAM,
                                               "rastro_front_webhook_duration_seconds{kind=\"telegram\"}",
                                               hl, s_webhook_bounds,
                                               sizeof s_webhook_bounds / sizeof (double));
    ids->webhook_latency[1] = rst_metrics_add (m, RST_METRIC_HISTOGRAM,
                                               "rastro_front_webhook_duration_seconds{kind=\"gateway\"}",
                                               hl, s_webhook_bounds,
                                               sizeof s_webhook_bounds / sizeof (double));
    ids->webhooks_journaled = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_inbox_entries_total",
                                               "Webhooks journaled in the inbox and answered 200.",
                                               NULL, 0);
    s_declare_lane (m, &ids->inbox_lane, "rastro_inbox_journal", "rastro_inbox_push", "Inbox");
}

// ---------------------------------------------------------------------------
//  Responses

static void
s_respond (h2o_req_t *req, int status, const char *reason, const char *body, const char *type,
           const char *retry_after)
{
    req->res.status = status;
    req->res.reason = reason;
    h2o_add_header (&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, type, strlen (type));
    h2o_add_header (&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                    H2O_STRLIT ("no-store"));
    if (retry_after)
        h2o_add_header (&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, retry_after,
                        strlen (retry_after));
    size_t len = strlen (body);
    req->res.content_length = len;      //  keep-alive needs it (c-toolchain.md pitfall 4)
    h2o_send_inline (req, body, len);
}

static int
s_bad_request (s_thread_t *t, h2o_req_t *req, const char *reason)
{
    rst_metrics_inc (t->metrics, t->front->ids.req_400, 1);
    char *body = h2o_mem_alloc_pool (&req->pool, strlen (reason) + 16);
    sprintf (body, "bad request: %s\n", reason);
    s_respond (req, 400, "Bad Request", body, "text/plain; charset=utf-8", NULL);
    return 0;
}

static const char s_not_found_html[]
    = "<!doctype html><html lang=\"pt-BR\"><head><meta charset=\"utf-8\"><title>Link não "
      "encontrado</title><meta name=\"viewport\" content=\"width=device-width\"></head><body "
      "style=\"font-family:sans-serif;text-align:center;padding:3em\"><h1>Link não encontrado</h1>"
      "<p>Este link não existe ou foi desativado.</p><p lang=\"en\">This link does not exist or "
      "was disabled.</p></body></html>\n";

// ---------------------------------------------------------------------------
//  The click

//  Returns the value of header TOKEN or NULL.
static const h2o_iovec_t *
s_header (h2o_req_t *req, const h2o_token_t *token)
{
    ssize_t i = h2o_find_header (&req->headers, token, -1);
    return i < 0 ? NULL : &req->headers.entries[i].value;
}

//  Copies LEN bytes into the request pool as clean UTF-8 (see rst_utf8_clean).
static rst_str_t
s_clean_copy (h2o_req_t *req, const char *s, size_t len)
{
    char *out = h2o_mem_alloc_pool (&req->pool, len + 1);
    rst_utf8_clean (s, len, out);
    return (rst_str_t) {out, len};
}

typedef struct {
    s_thread_t *thread;
    h2o_req_t *req;
    rst_event_t *event;
} s_query_ctx_t;

static int
s_on_query_pair (void *arg, const char *key, size_t key_len, const char *value, size_t value_len)
{
    s_query_ctx_t *q = arg;
    rst_event_t *ev = q->event;
    if (key_len == 6 && !memcmp (key, "fbclid", 6)) {
        char decoded[RST_FBCLID_MAX + 1];
        int n = rst_url_decode (value, value_len, decoded, sizeof decoded);
        if (n > 0 && rst_fbclid_is_valid (decoded, (size_t) n) && !ev->fbclid.len) {
            char *fbclid = h2o_mem_alloc_pool (&q->req->pool, (size_t) n);
            memcpy (fbclid, decoded, (size_t) n);
            ev->fbclid = (rst_str_t) {fbclid, (size_t) n};
            char *fbc = h2o_mem_alloc_pool (&q->req->pool, RST_FBC_MAX);
            int len = rst_fbc_build (fbc, RST_FBC_MAX, ev->time_ms, fbclid, (size_t) n);
            if (len > 0)
                ev->fbc = (rst_str_t) {fbc, (size_t) len};
        }
        else if (!ev->fbclid.len)
            rst_metrics_inc (q->thread->metrics, q->thread->front->ids.fbclid_bad, 1);
        return 0;
    }
    if (key_len > 4 && key_len <= RST_UTM_KEY_MAX && !memcmp (key, "utm_", 4)
        && ev->utm_count < RST_EVENT_MAX_UTM) {
        char kbuf[RST_UTM_KEY_MAX], vbuf[RST_UTM_VALUE_MAX];
        int kn = rst_url_decode (key, key_len, kbuf, sizeof kbuf);
        int vn = rst_url_decode (value, value_len, vbuf, sizeof vbuf);
        if (kn <= 4 || vn < 0)
            return 0;       //  undecodable or over-long: dropped, the redirect still happens
        for (size_t i = 0; i < ev->utm_count; i++)
            if (ev->utm[i].key.len == (size_t) kn && !memcmp (ev->utm[i].key.ptr, kbuf, (size_t) kn))
                return 0;   //  first occurrence wins
        ev->utm[ev->utm_count].key = s_clean_copy (q->req, kbuf, (size_t) kn);
        ev->utm[ev->utm_count].value = s_clean_copy (q->req, vbuf, (size_t) vn);
        ev->utm_count++;
    }
    return 0;
}

static void
s_link_flush (s_thread_t *t);

static int
on_go (h2o_handler_t *handler, h2o_req_t *req)
{
    s_thread_t *t = H2O_STRUCT_FROM_MEMBER (s_thread_t, ctx, req->conn->ctx);
    rst_front_t *front = t->front;
    uint64_t started = rst_clock_mono_ns ();

    if (!h2o_memis (req->method.base, req->method.len, H2O_STRLIT ("GET"))
        && !h2o_memis (req->method.base, req->method.len, H2O_STRLIT ("HEAD"))) {
        rst_metrics_inc (t->metrics, front->ids.req_405, 1);
        h2o_add_header (&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT ("GET, HEAD"));
        s_respond (req, 405, "Method Not Allowed", "method not allowed\n", "text/plain; charset=utf-8", NULL);
        return 0;
    }
    //  Raw path: "/go/<slug>[?query]". The slug is checked on the raw bytes,
    //  so a percent-encoded slug is refused rather than decoded.
    if (req->path.len > S_MAX_URL)
        return s_bad_request (t, req, "URL too long");
    if (req->headers.size > S_MAX_HEADERS)
        return s_bad_request (t, req, "too many headers");
    for (size_t i = 0; i < req->headers.size; i++)
        if (req->headers.entries[i].value.len > S_MAX_HEADER_VALUE)
            return s_bad_request (t, req, "header too long");
    const char *path = req->path.base;
    size_t path_len = req->path.len;
    const char *query = memchr (path, '?', path_len);
    size_t query_len = query ? path_len - (size_t) (query - path) - 1 : 0;
    size_t route_len = query ? (size_t) (query - path) : path_len;
    if (route_len < 4 || memcmp (path, "/go/", 4))
        return s_bad_request (t, req, "bad path");
    const char *slug = path + 4;
    size_t slug_len = route_len - 4;
    if (slug_len > 0 && slug[slug_len - 1] == '/')
        slug_len--;         //  tolerate one trailing slash
    if (slug_len > RST_SLUG_MAX)
        return s_bad_request (t, req, "slug too long");
    if (!rst_click_token_is_valid (slug, slug_len))
        return s_bad_request (t, req, "slug must be 1-64 characters of A-Z a-z 0-9 _ -");

    if (!t->snapshot) {
        rst_metrics_inc (t->metrics, front->ids.req_503, 1);
        s_respond (req, 503, "Service Unavailable", "starting, try again in a few seconds\n",
                   "text/plain; charset=utf-8", S_RETRY_STARTING);
        return 0;
    }
    rst_snapshot_pool_t *pool = rst_snapshot_find (t->snapshot, slug, slug_len);
    if (!pool || !pool->enabled) {
        rst_metrics_inc (t->metrics, front->ids.req_404, 1);
        s_respond (req, 404, "Not Found", s_not_found_html, "text/html; charset=utf-8", NULL);
        return 0;
    }
    const rst_snapshot_bot_t *bot = rst_snapshot_pick (pool);
    if (!bot) {
        rst_metrics_inc (t->metrics, front->ids.req_503, 1);
        s_respond (req, 503, "Service Unavailable", "no bot available right now, try again soon\n",
                   "text/plain; charset=utf-8", S_RETRY_NO_BOT);
        return 0;
    }

    //  Park the click for the group commit at the end of this iteration.
    if (t->nparked == t->parked_cap) {
        size_t cap = t->parked_cap ? t->parked_cap * 2 : 256;
        s_parked_t *parked = realloc (t->parked, cap * sizeof *parked);
        if (!parked) {
            rst_metrics_inc (t->metrics, front->ids.req_503, 1);
            s_respond (req, 503, "Service Unavailable", "out of memory\n", "text/plain", S_RETRY_JOURNAL);
            return 0;
        }
        t->parked = parked;
        t->parked_cap = cap;
    }
    s_parked_t *p = &t->parked[t->nparked];
    p->req = req;
    p->started_ns = started;
    p->rejected = 0;
    rst_event_t *ev = &p->event;
    rst_event_init (ev);
    ev->type = RST_EVENT_CLICK;
    ev->time_ms = rst_clock_wall_ms ();
    ev->owner_id = pool->owner_id;
    ev->pool_id = pool->id;
    ev->bot_id = bot->id;
    ev->src = rst_str (front->src);
    ev->pixel_id = (rst_str_t) {h2o_mem_alloc_pool (&req->pool, strlen (pool->pixel_id)), strlen (pool->pixel_id)};
    memcpy ((char *) ev->pixel_id.ptr, pool->pixel_id, ev->pixel_id.len);
    ev->pool_slug = (rst_str_t) {h2o_mem_alloc_pool (&req->pool, slug_len), slug_len};
    memcpy ((char *) ev->pool_slug.ptr, slug, slug_len);
    size_t ulen = strlen (bot->username);
    ev->bot_username = (rst_str_t) {h2o_mem_alloc_pool (&req->pool, ulen), ulen};
    memcpy ((char *) ev->bot_username.ptr, bot->username, ulen);

    char *click_id = h2o_mem_alloc_pool (&req->pool, RST_CLICK_ID_LEN + 1);
    if (t->random_used + RST_CLICK_ID_RANDOM > sizeof t->random) {
        randombytes_buf (t->random, sizeof t->random);
        t->random_used = 0;
    }
    rst_click_id_from (ev->time_ms, t->random + t->random_used, click_id);
    sodium_memzero (t->random + t->random_used, RST_CLICK_ID_RANDOM);   //  each byte serves once
    t->random_used += RST_CLICK_ID_RANDOM;
    ev->click_id = (rst_str_t) {click_id, RST_CLICK_ID_LEN};
    char *event_id = h2o_mem_alloc_pool (&req->pool, RST_CLICK_ID_LEN + 4);
    memcpy (event_id, "pv-", 3);
    memcpy (event_id + 3, click_id, RST_CLICK_ID_LEN + 1);
    ev->event_id = (rst_str_t) {event_id, RST_CLICK_ID_LEN + 3};

    //  Client address (X-Forwarded-For only from trusted proxies).
    struct sockaddr_storage peer;
    char *ip = h2o_mem_alloc_pool (&req->pool, RST_NETADDR_TEXT_MAX);
    const h2o_iovec_t *xff = s_header (req, H2O_TOKEN_X_FORWARDED_FOR);
    if (!req->conn->callbacks->get_peername (req->conn, (struct sockaddr *) &peer)
        || rst_client_address (&front->trusted, (struct sockaddr *) &peer, xff ? xff->base : NULL,
                               xff ? xff->len : 0, ip, RST_NETADDR_TEXT_MAX))
        snprintf (ip, RST_NETADDR_TEXT_MAX, "0.0.0.0");
    ev->ip = rst_str (ip);
    const h2o_iovec_t *ua = s_header (req, H2O_TOKEN_USER_AGENT);
    ev->user_agent = ua ? s_clean_copy (req, ua->base, ua->len) : (rst_str_t) {"", 0};
    const h2o_iovec_t *referer = s_header (req, H2O_TOKEN_REFERER);
    if (referer)
        ev->referer = s_clean_copy (req, referer->base, referer->len);

    //  Full URL as the visitor asked for it (scheme from a trusted proxy).
    const char *scheme = "http";
    if (req->scheme == &H2O_URL_SCHEME_HTTPS)
        scheme = "https";
    else if (xff && rst_cidr_list_contains (&front->trusted, (struct sockaddr *) &peer)) {
        ssize_t i = h2o_find_header_by_str (&req->headers, H2O_STRLIT ("x-forwarded-proto"), -1);
        if (i >= 0 && h2o_memis (req->headers.entries[i].value.base, req->headers.entries[i].value.len,
                                 H2O_STRLIT ("https")))
            scheme = "https";
    }
    size_t url_len = strlen (scheme) + 3 + req->authority.len + req->path.len;
    char *url = h2o_mem_alloc_pool (&req->pool, url_len + 1);
    snprintf (url, url_len + 1, "%s://%.*s%.*s", scheme, (int) req->authority.len,
              req->authority.base, (int) req->path.len, req->path.base);
    ev->url = s_clean_copy (req, url, url_len);

    if (query) {
        s_query_ctx_t q = {t, req, ev};
        rst_query_each (query + 1, query_len, s_on_query_pair, &q);
    }
    const h2o_iovec_t *cookie = s_header (req, H2O_TOKEN_COOKIE);
    const char *fbp;
    size_t fbp_len;
    if (cookie && rst_cookie_find (cookie->base, cookie->len, "_fbp", &fbp, &fbp_len)
        && rst_fbp_is_valid (fbp, fbp_len))
        ev->fbp = (rst_str_t) {fbp, fbp_len};

    size_t loc_len = sizeof "https://t.me/?start=" - 1 + ulen + RST_CLICK_ID_LEN;
    char *loc = h2o_mem_alloc_pool (&req->pool, loc_len + 1);
    snprintf (loc, loc_len + 1, "https://t.me/%s?start=%s", bot->username, click_id);
    p->location = h2o_iovec_init (loc, loc_len);
    t->nparked++;
    s_link_flush (t);
    return 0;
}

//  Generator of bodiless responses (nothing to pull, nothing to stop).
static h2o_generator_t s_no_body = {NULL, NULL};

// ---------------------------------------------------------------------------
//  Lanes: the group commit shared by clicks and webhooks

//  Packs item I of a lane's batch with sequence number SEQ into PK. Returns
//  0, or -1 to refuse the item (it writes nothing and gets no sequence).
typedef int (s_pack_fn) (void *arg, size_t i, uint64_t seq, msgpack_packer *pk);

//  Packs COUNT items with PACK and writes them all in one transaction of
//  LANE's journal (fsynced when the lane is durable). Returns 1 when the
//  transaction committed (every item not refused is kept; the packed batch
//  waits in lane->out for s_lane_push), 0 when it did not (nothing is kept).
static int
s_lane_commit (s_thread_t *t, s_lane_t *lane, size_t count, s_pack_fn *pack, void *arg)
{
    uint64_t begin = rst_clock_mono_ns ();
    msgpack_sbuffer_clear (&lane->out);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &lane->out, msgpack_sbuffer_write);
    rst_journal_txn_t txn;
    int ok = rst_journal_txn_begin (lane->journal, &txn) == 0;
    for (size_t i = 0; ok && i < count; i++) {
        uint64_t seq = rst_journal_txn_next_seq (&txn);
        size_t from = lane->out.size;
        if (pack (arg, i, seq, &pk)) {
            lane->out.size = from;
            continue;
        }
        ok = rst_journal_txn_put (&txn, lane->out.data + from, lane->out.size - from) == seq;
    }
    if (ok)
        ok = rst_journal_txn_commit (&txn, lane->durable) == 0;
    else
        rst_journal_txn_abort (&txn);
    rst_metrics_observe (t->metrics, lane->ids->commit, (double) (rst_clock_mono_ns () - begin) / 1e9);
    rst_metrics_inc (t->metrics, ok ? lane->ids->commits : lane->ids->commit_fail, 1);
    if (!ok) {
        rst_error ("front", "journal write of %zu %s failed; answered 503", count, lane->what);
        msgpack_sbuffer_clear (&lane->out);
    }
    return ok;
}

//  Pushes what s_lane_commit packed downstream in one message and empties
//  the batch. Never blocks: with no peer (IMMEDIATE) or a full pipe it
//  fails at once and the lane's keeper replays from the journal.
static void
s_lane_push (s_thread_t *t, s_lane_t *lane)
{
    if (lane->out.size > 0) {
        if (zmq_send (lane->push, lane->out.data, lane->out.size, ZMQ_DONTWAIT) < 0)
            rst_metrics_inc (t->metrics, lane->ids->push_fail, 1);
        else
            rst_metrics_inc (t->metrics, lane->ids->pushed, 1);
    }
    msgpack_sbuffer_clear (&lane->out);
}

static int
s_pack_click (void *arg, size_t i, uint64_t seq, msgpack_packer *pk)
{
    s_parked_t *p = &((s_thread_t *) arg)->parked[i];
    p->event.seq = seq;
    if (rst_event_pack (&p->event, pk)) {
        //  Outside the event schema's limits: refuse this click alone.
        p->rejected = 1;
        return -1;
    }
    return 0;
}

//  Group commit of every parked click; see the banner.
static void
s_flush_clicks (s_thread_t *t)
{
    rst_front_t *front = t->front;
    if (t->nparked == 0)
        return;
    int ok = s_lane_commit (t, &t->clicks, t->nparked, s_pack_click, t);
    for (size_t i = 0; i < t->nparked; i++) {
        s_parked_t *p = &t->parked[i];
        h2o_req_t *req = p->req;
        if (p->rejected) {
            s_bad_request (t, req, "request fields exceed the event schema's limits");
            continue;
        }
        if (!ok) {
            rst_metrics_inc (t->metrics, front->ids.req_503, 1);
            s_respond (req, 503, "Service Unavailable", "could not record the click, try again\n",
                       "text/plain; charset=utf-8", S_RETRY_JOURNAL);
            continue;
        }
        req->res.status = 302;
        req->res.reason = "Found";
        h2o_add_header (&req->pool, &req->res.headers, H2O_TOKEN_LOCATION, NULL, p->location.base,
                        p->location.len);
        h2o_add_header (&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                        H2O_STRLIT ("no-store"));
        req->res.content_length = 0;
        //  No body at all: h2o_send_inline (req, "", 0) would queue an empty
        //  iovec that h2o 2.2.5 writes in a second loop iteration (one more
        //  writev and two epoll_ctl per redirect).
        h2o_start_response (req, &s_no_body);
        h2o_send (req, NULL, 0, H2O_SEND_STATE_FINAL);
        rst_metrics_inc (t->metrics, front->ids.req_302, 1);
        rst_metrics_inc (t->metrics, front->ids.clicks, 1);
        rst_metrics_observe (t->metrics, front->ids.latency, (double) (rst_clock_mono_ns () - p->started_ns) / 1e9);
    }
    t->nparked = 0;
    if (ok)
        s_lane_push (t, &t->clicks);
}

static void
s_webhook_answer (s_thread_t *t, h2o_req_t *req, int kind, int status, const char *body,
                  const char *retry_after);

static int
s_pack_inbox (void *arg, size_t i, uint64_t seq, msgpack_packer *pk)
{
    s_inbox_parked_t *p = &((s_thread_t *) arg)->inbox_parked[i];
    p->msg.seq = seq;
    if (rst_inbox_pack (&p->msg, pk)) {
        p->rejected = 1;
        return -1;
    }
    return 0;
}

//  Group commit of every parked webhook, fsynced before any is answered.
static void
s_flush_inbox (s_thread_t *t)
{
    rst_front_t *front = t->front;
    if (t->ninbox == 0)
        return;
    int ok = s_lane_commit (t, &t->inbox, t->ninbox, s_pack_inbox, t);
    for (size_t i = 0; i < t->ninbox; i++) {
        s_inbox_parked_t *p = &t->inbox_parked[i];
        if (p->rejected)
            s_webhook_answer (t, p->req, p->kind, 400,
                              "bad request: fields exceed the inbox schema's limits\n", NULL);
        else if (!ok)
            s_webhook_answer (t, p->req, p->kind, 503, "could not record the webhook, try again\n",
                              S_RETRY_JOURNAL);
        else {
            //  Telegram: an empty 200 (a body could be taken for a Bot API
            //  call); gateways: "ok".
            s_webhook_answer (t, p->req, p->kind, 200, p->kind == S_WH_TELEGRAM ? "" : "ok\n", NULL);
            rst_metrics_inc (t->metrics, front->ids.webhooks_journaled, 1);
            rst_metrics_observe (t->metrics, front->ids.webhook_latency[p->kind != S_WH_TELEGRAM],
                                 (double) (rst_clock_mono_ns () - p->started_ns) / 1e9);
        }
    }
    t->ninbox = 0;
    if (ok)
        s_lane_push (t, &t->inbox);
}

//  Runs at the end of the loop iteration: clicks first (no fsync), then webhooks.
static void
s_flush (h2o_timeout_entry_t *entry)
{
    s_thread_t *t = H2O_STRUCT_FROM_MEMBER (s_thread_t, flush_entry, entry);
    s_flush_clicks (t);
    s_flush_inbox (t);
}

static void
s_link_flush (s_thread_t *t)
{
    if (!h2o_timeout_is_linked (&t->flush_entry))
        h2o_timeout_link (t->ctx.loop, &t->ctx.zero_timeout, &t->flush_entry);
}

// ---------------------------------------------------------------------------
//  Webhooks: POST /telegram/<bot> and POST /webhook/<gateway>

//  Answers a webhook with STATUS (one of s_wh_statuses, or 404) and BODY
//  ("" = no body), counting it per kind and status.
static void
s_webhook_answer (s_thread_t *t, h2o_req_t *req, int kind, int status, const char *body,
                  const char *retry_after)
{
    const s_metric_ids_t *ids = &t->front->ids;
    const char *reason = "OK";
    int req_id = ids->req_200;
    switch (status) {
    case 400: reason = "Bad Request"; req_id = ids->req_400; break;
    case 401: reason = "Unauthorized"; req_id = ids->req_401; break;
    case 404: reason = "Not Found"; req_id = ids->req_404; break;
    case 405: reason = "Method Not Allowed"; req_id = ids->req_405; break;
    case 413: reason = "Payload Too Large"; req_id = ids->req_413; break;
    case 503: reason = "Service Unavailable"; req_id = ids->req_503; break;
    default: break;
    }
    rst_metrics_inc (t->metrics, req_id, 1);
    if (status == 404)
        rst_metrics_inc (t->metrics, ids->webhook_404, 1);
    for (int i = 0; i < S_WH_STATUSES; i++)
        if (s_wh_statuses[i] == status && kind >= 0 && kind < S_WH_KINDS)
            rst_metrics_inc (t->metrics, ids->webhooks[kind][i], 1);
    if (status == 405)
        h2o_add_header (&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT ("POST"));
    if (*body) {
        s_respond (req, status, reason, body, "text/plain; charset=utf-8", retry_after);
        return;
    }
    req->res.status = status;
    req->res.reason = reason;
    req->res.content_length = 0;
    h2o_start_response (req, &s_no_body);
    h2o_send (req, NULL, 0, H2O_SEND_STATE_FINAL);
}

//  The checks every webhook passes first: the inbox is configured, the
//  method is POST, the body fits MAX_BODY, the snapshot is loaded, the URL
//  fits. Returns 1 when the request was answered, else 0.
static int
s_webhook_refused (s_thread_t *t, h2o_req_t *req, int kind, size_t max_body)
{
    if (!t->front->inbox) {
        s_webhook_answer (t, req, kind, 503, "webhooks not configured\n", S_RETRY_NO_INBOX);
        return 1;
    }
    if (!h2o_memis (req->method.base, req->method.len, H2O_STRLIT ("POST"))) {
        s_webhook_answer (t, req, kind, 405, "method not allowed\n", NULL);
        return 1;
    }
    if (req->entity.len > max_body) {
        s_webhook_answer (t, req, kind, 413, "request body too large\n", NULL);
        return 1;
    }
    if (!t->snapshot) {
        s_webhook_answer (t, req, kind, 503, "starting, try again in a few seconds\n", S_RETRY_STARTING);
        return 1;
    }
    if (req->path.len > S_MAX_URL || req->headers.size > S_MAX_HEADERS) {
        s_webhook_answer (t, req, kind, 400, "bad request: URL too long or too many headers\n", NULL);
        return 1;
    }
    return 0;
}

//  Parks a webhook for the group commit at the end of this iteration.
//  Returns the parked entry with its common fields set, or NULL (out of memory).
static s_inbox_parked_t *
s_inbox_park (s_thread_t *t, h2o_req_t *req, int kind, rst_inbox_type_t type, uint64_t started)
{
    if (t->ninbox == t->inbox_cap) {
        size_t cap = t->inbox_cap ? t->inbox_cap * 2 : 64;
        s_inbox_parked_t *list = realloc (t->inbox_parked, cap * sizeof *list);
        if (!list)
            return NULL;
        t->inbox_parked = list;
        t->inbox_cap = cap;
    }
    s_inbox_parked_t *p = &t->inbox_parked[t->ninbox++];
    memset (p, 0, sizeof *p);
    p->req = req;
    p->kind = kind;
    p->started_ns = started;
    p->msg.type = type;
    snprintf (p->msg.src, sizeof p->msg.src, "%s", t->front->src);
    p->msg.time_ms = rst_clock_wall_ms ();
    p->msg.body = req->entity.base;
    p->msg.body_len = req->entity.base ? req->entity.len : 0;
    s_link_flush (t);
    return p;
}

//  The path's last segment after PREFIX (raw bytes, query excluded) into
//  *NAME / *LEN.
static void
s_path_tail (h2o_req_t *req, size_t prefix_len, const char **name, size_t *len)
{
    size_t route = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    *name = req->path.base + prefix_len;
    *len = route > prefix_len ? route - prefix_len : 0;
}

//  Checks a Telegram update body: a JSON object with an integer update_id
//  ≥ 0. Returns NULL and the id in *UPDATE_ID, or the reason it is refused.
static const char *
s_tg_update_id (const char *body, size_t len, int64_t *update_id)
{
    if (!body || len == 0)
        return "empty body";
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts (body, len, &end, 0);
    if (!root)
        return "body is not JSON";
    const char *why = NULL;
    for (const char *c = end; c && c < body + len && !why; c++)
        if (*c != ' ' && *c != '\t' && *c != '\r' && *c != '\n')
            why = "bytes after the JSON value";
    const cJSON *id = cJSON_GetObjectItemCaseSensitive (root, "update_id");
    if (why)
        ;
    else if (!cJSON_IsObject (root))
        why = "body is not a JSON object";
    else if (!cJSON_IsNumber (id))
        why = "update_id missing or not a number";
    else if (id->valuedouble < 0 || id->valuedouble > 9007199254740991.0
             || id->valuedouble != (double) (int64_t) id->valuedouble)
        why = "update_id must be an integer >= 0";
    else
        *update_id = (int64_t) id->valuedouble;
    cJSON_Delete (root);
    return why;
}

static int
on_telegram (h2o_handler_t *handler, h2o_req_t *req)
{
    s_thread_t *t = H2O_STRUCT_FROM_MEMBER (s_thread_t, ctx, req->conn->ctx);
    uint64_t started = rst_clock_mono_ns ();
    if (s_webhook_refused (t, req, S_WH_TELEGRAM, RST_INBOX_MAX_BODY))
        return 0;

    //  Authentication first, with the same work whatever fails: an unknown
    //  bot, a bot in polling mode, a missing or wrong secret all hash the
    //  header and compare 32 bytes in constant time, and all get the same 401.
    const char *name;
    size_t name_len;
    s_path_tail (req, sizeof "/telegram/" - 1, &name, &name_len);
    const rst_snapshot_webhook_bot_t *bot = NULL;
    if (name_len <= S_TG_USERNAME_MAX && rst_click_token_is_valid (name, name_len)
        && !memchr (name, '-', name_len))
        bot = rst_snapshot_find_webhook_bot (t->snapshot, name, name_len);
    ssize_t h = h2o_find_header_by_str (&req->headers, H2O_STRLIT ("x-telegram-bot-api-secret-token"), -1);
    const h2o_iovec_t *secret = h >= 0 ? &req->headers.entries[h].value : NULL;
    static const unsigned char s_no_bot[crypto_hash_sha256_BYTES] = {0};
    unsigned char got[crypto_hash_sha256_BYTES];
    crypto_hash_sha256 (got, (const unsigned char *) (secret ? secret->base : ""),
                        secret ? secret->len : 0);
    int match = sodium_memcmp (got, bot ? bot->secret_hash : s_no_bot, sizeof got) == 0;
    sodium_memzero (got, sizeof got);
    if (!bot || !secret || secret->len == 0 || secret->len > S_TG_SECRET_MAX || !match) {
        s_webhook_answer (t, req, S_WH_TELEGRAM, 401, "unauthorized\n", NULL);
        return 0;
    }
    int64_t update_id = 0;
    const char *why = s_tg_update_id (req->entity.base, req->entity.len, &update_id);
    if (why) {
        char *body = h2o_mem_alloc_pool (&req->pool, strlen (why) + 16);
        sprintf (body, "bad request: %s\n", why);
        s_webhook_answer (t, req, S_WH_TELEGRAM, 400, body, NULL);
        return 0;
    }
    s_inbox_parked_t *p = s_inbox_park (t, req, S_WH_TELEGRAM, RST_INBOX_TG_UPDATE, started);
    if (!p) {
        s_webhook_answer (t, req, S_WH_TELEGRAM, 503, "out of memory\n", S_RETRY_JOURNAL);
        return 0;
    }
    p->msg.bot_id = bot->id;
    p->msg.update_id = update_id;
    return 0;
}

//  Logs a refused gateway webhook, at most once per S_WARN_EVERY_MS per
//  thread (a flood of forgeries must not flood the log). Never logs the
//  signature or a secret.
static void
s_warn_forged (s_thread_t *t, const char *gateway, size_t accounts)
{
    int64_t now = rst_clock_mono_ms ();
    if (t->last_warn_ms && now - t->last_warn_ms < S_WARN_EVERY_MS) {
        t->warns_dropped++;
        return;
    }
    rst_warn ("front", "%s webhook refused: invalid signature (%zu account%s tried; %zu similar "
              "warnings dropped)", gateway, accounts, accounts == 1 ? "" : "s", t->warns_dropped);
    t->last_warn_ms = now;
    t->warns_dropped = 0;
}

static int
on_webhook (h2o_handler_t *handler, h2o_req_t *req)
{
    s_thread_t *t = H2O_STRUCT_FROM_MEMBER (s_thread_t, ctx, req->conn->ctx);
    uint64_t started = rst_clock_mono_ns ();
    const char *name;
    size_t name_len;
    s_path_tail (req, sizeof "/webhook/" - 1, &name, &name_len);
    char gateway[RST_INBOX_GATEWAY_MAX + 1];
    int gw = -1;
    if (name_len > 0 && name_len < sizeof gateway) {
        memcpy (gateway, name, name_len);
        gateway[name_len] = 0;
        gw = rst_gateway_kind_parse (gateway);
    }
    if (gw < 0) {
        s_webhook_answer (t, req, -1, 404, "unknown gateway\n", NULL);
        return 0;
    }
    int kind = 1 + gw;
    if (s_webhook_refused (t, req, kind, RST_GW_WEBHOOK_MAX_BODY))
        return 0;

    //  The request as rst_gateway sees it: lower-case header names.
    rst_gw_header_t *headers = h2o_mem_alloc_pool (&req->pool, (req->headers.size + 1) * sizeof *headers);
    for (size_t i = 0; i < req->headers.size; i++) {
        const h2o_header_t *src = &req->headers.entries[i];
        char *lower = h2o_mem_alloc_pool (&req->pool, src->name->len + 1);
        for (size_t c = 0; c < src->name->len; c++)
            lower[c] = h2o_tolower (src->name->base[c]);
        headers[i] = (rst_gw_header_t) {lower, src->name->len, src->value.base, src->value.len};
    }
    rst_gw_webhook_t wh = {.kind = (rst_gw_kind_t) gw,
                           .headers = headers,
                           .nheaders = req->headers.size,
                           .body = req->entity.base ? req->entity.base : "",
                           .body_len = req->entity.base ? req->entity.len : 0,
                           .now_s = rst_clock_wall_ms () / 1000};
    if (req->query_at != SIZE_MAX) {
        wh.query = req->path.base + req->query_at + 1;
        wh.query_len = req->path.len - req->query_at - 1;
    }
    const h2o_iovec_t *type = s_header (req, H2O_TOKEN_CONTENT_TYPE);
    if (type) {
        wh.content_type = type->base;
        wh.content_type_len = type->len;
    }
    rst_gw_notice_t notice;
    char err[256] = "";
    rst_gw_webhook_kind_t what = rst_gateway_webhook_parse (&wh, &notice, err, sizeof err);
    if (what == RST_GW_WEBHOOK_BAD) {
        char *body = h2o_mem_alloc_pool (&req->pool, strlen (err) + 16);
        sprintf (body, "bad request: %s\n", err);
        s_webhook_answer (t, req, kind, 400, body, NULL);
        return 0;
    }
    if (what == RST_GW_WEBHOOK_IGNORED) {
        s_webhook_answer (t, req, kind, 200, "ok\n", NULL);
        return 0;
    }
    //  Authentic when one account of this gateway accepts it (SyncPay has
    //  no secret: any SyncPay account does; the bots node re-reads the
    //  charge by id anyway, which is the real check).
    size_t tried = 0;
    int authentic = 0;
    for (size_t i = 0; i < rst_snapshot_gateway_count (t->snapshot) && !authentic; i++) {
        const rst_snapshot_gateway_t *account = rst_snapshot_gateway (t->snapshot, i);
        if (account->kind != gw || (!account->secret && gw != RST_GW_SYNCPAY))
            continue;
        tried++;
        authentic = rst_gateway_webhook_auth (&wh, &notice, account->secret, err, sizeof err) == 0;
    }
    if (!authentic) {
        s_warn_forged (t, gateway, tried);
        s_webhook_answer (t, req, kind, 401, "invalid signature\n", NULL);
        return 0;
    }
    s_inbox_parked_t *p = s_inbox_park (t, req, kind, RST_INBOX_GW_WEBHOOK, started);
    if (!p) {
        s_webhook_answer (t, req, kind, 503, "out of memory\n", S_RETRY_JOURNAL);
        return 0;
    }
    snprintf (p->msg.gateway, sizeof p->msg.gateway, "%s", gateway);
    snprintf (p->msg.charge_id, sizeof p->msg.charge_id, "%s", notice.charge_id);
    p->msg.query = wh.query;
    p->msg.query_len = wh.query_len;
    return 0;
}

// ---------------------------------------------------------------------------
//  /healthz and /metrics

static int
on_healthz (h2o_handler_t *handler, h2o_req_t *req)
{
    s_thread_t *t = H2O_STRUCT_FROM_MEMBER (s_thread_t, ctx, req->conn->ctx);
    if (!t->snapshot) {
        rst_metrics_inc (t->metrics, t->front->ids.req_503, 1);
        s_respond (req, 503, "Service Unavailable", "starting: pools not loaded yet\n", "text/plain", "1");
        return 0;
    }
    rst_metrics_inc (t->metrics, t->front->ids.req_200, 1);
    s_respond (req, 200, "OK", "ok\n", "text/plain", NULL);
    return 0;
}

//  Renders every thread's published metrics and the keepers'. Returns a new
//  string the caller frees, or NULL.
static char *
s_render_metrics (rst_front_t *front)
{
    rst_metrics_t **copies = calloc (front->nthreads, sizeof *copies);
    char *threads_text = NULL, *keeper_text = NULL, *inbox_text = NULL, *api_text = NULL,
         *text = NULL;
    if (!copies)
        return NULL;
    for (size_t i = 0; i < front->nthreads; i++) {
        copies[i] = rst_metrics_new ();
        if (!copies[i])
            goto done;
        pthread_mutex_lock (&front->threads[i].lock);
        rst_metrics_copy (copies[i], front->threads[i].published);
        pthread_mutex_unlock (&front->threads[i].lock);
    }
    threads_text = rst_metrics_render_many (copies, front->nthreads);
    keeper_text = rst_keeper_render_metrics (front->keeper);
    inbox_text = front->inbox_keeper ? rst_keeper_render_metrics (front->inbox_keeper) : strdup ("");
    api_text = front->api ? rst_api_render_metrics (front->api) : strdup ("");
    if (threads_text && keeper_text && inbox_text && api_text) {
        size_t a = strlen (threads_text), b = strlen (keeper_text), c = strlen (inbox_text),
               d = strlen (api_text);
        text = malloc (a + b + c + d + 1);
        if (text) {
            memcpy (text, threads_text, a);
            memcpy (text + a, keeper_text, b);
            memcpy (text + a + b, inbox_text, c);
            memcpy (text + a + b + c, api_text, d + 1);
        }
    }
done:
    for (size_t i = 0; i < front->nthreads; i++)
        rst_metrics_destroy (&copies[i]);
    free (copies);
    free (threads_text);
    free (keeper_text);
    free (inbox_text);
    free (api_text);
    return text;
}

static int
on_metrics (h2o_handler_t *handler, h2o_req_t *req)
{
    s_thread_t *t = H2O_STRUCT_FROM_MEMBER (s_thread_t, ctx, req->conn->ctx);
    char *text = s_render_metrics (t->front);
    if (!text) {
        s_respond (req, 503, "Service Unavailable", "out of memory\n", "text/plain", "1");
        return 0;
    }
    size_t len = strlen (text);
    char *body = h2o_mem_alloc_pool (&req->pool, len + 1);
    memcpy (body, text, len + 1);
    free (text);
    rst_metrics_inc (t->metrics, t->front->ids.req_200, 1);
    s_respond (req, 200, "OK", body, "text/plain; version=0.0.4", NULL);
    return 0;
}

// ---------------------------------------------------------------------------
//  /api/ and the dashboard

static int
on_api (h2o_handler_t *handler, h2o_req_t *req)
{
    s_thread_t *t = H2O_STRUCT_FROM_MEMBER (s_thread_t, ctx, req->conn->ctx);
    return rst_api_handle (t->front->api, req, &t->api_receiver);
}

//  / when the dashboard was not built.
static int
on_no_dashboard (h2o_handler_t *handler, h2o_req_t *req)
{
    s_respond (req, 404, "Not Found",
               "The dashboard is not built: run scripts/setup (or set RASTRO_WEB_DIR).\n",
               "text/plain; charset=utf-8", NULL);
    return 0;
}

//  Security headers of every answer under / (static files and their 404s).
static h2o_iovec_t s_hdr_nosniff = {H2O_STRLIT ("x-content-type-options")};
static h2o_iovec_t s_hdr_frame = {H2O_STRLIT ("x-frame-options")};
static h2o_iovec_t s_hdr_referrer = {H2O_STRLIT ("referrer-policy")};
static h2o_iovec_t s_hdr_csp = {H2O_STRLIT ("content-security-policy")};
static h2o_iovec_t s_hdr_cache = {H2O_STRLIT ("cache-control")};
static h2o_headers_command_t s_web_headers[] = {
    {H2O_HEADERS_CMD_SET, &s_hdr_nosniff, {H2O_STRLIT ("nosniff")}},
    {H2O_HEADERS_CMD_SET, &s_hdr_frame, {H2O_STRLIT ("DENY")}},
    {H2O_HEADERS_CMD_SET, &s_hdr_referrer, {H2O_STRLIT ("same-origin")}},
    //  Alpine.js evaluates its attribute expressions: 'unsafe-eval'.
    {H2O_HEADERS_CMD_SET, &s_hdr_csp,
     {H2O_STRLIT ("default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' "
                  "'unsafe-inline'; img-src 'self' data:; connect-src 'self' ws: wss:; "
                  "frame-ancestors 'none'")}},
    //  Revalidate (ETag / Last-Modified): a rebuilt dashboard shows at once.
    {H2O_HEADERS_CMD_SETIFEMPTY, &s_hdr_cache, {H2O_STRLIT ("no-cache")}},
    {H2O_HEADERS_CMD_NULL, NULL, {NULL, 0}},
};

// ---------------------------------------------------------------------------
//  HTTP threads

static void
s_on_snapshot (h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    s_thread_t *t = H2O_STRUCT_FROM_MEMBER (s_thread_t, snapshot_receiver, receiver);
    while (!h2o_linklist_is_empty (messages)) {
        h2o_multithread_message_t *msg
            = H2O_STRUCT_FROM_MEMBER (h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink (&msg->link);
        s_snapshot_msg_t *m = (s_snapshot_msg_t *) msg;
        rst_snapshot_carry_state (m->snapshot, t->snapshot);
        rst_snapshot_destroy (&t->snapshot);
        t->snapshot = m->snapshot;
        rst_metrics_set (t->metrics, t->front->ids.snapshot_pools,
                         (double) rst_snapshot_pool_count (t->snapshot));
        free (m);
    }
}

static void
s_on_wake (h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    //  Pure wake-up (NULL messages); the loop re-checks front->stop.
}

static void
s_on_second (h2o_timeout_entry_t *entry)
{
    s_thread_t *t = H2O_STRUCT_FROM_MEMBER (s_thread_t, second_entry, entry);
    pthread_mutex_lock (&t->lock);
    rst_metrics_copy (t->published, t->metrics);
    pthread_mutex_unlock (&t->lock);
    h2o_timeout_link (t->ctx.loop, &t->second_timeout, &t->second_entry);
}

static void
s_on_accept (h2o_socket_t *listener, const char *err)
{
    if (err)
        return;
    s_thread_t *t = listener->data;
    for (int i = 0; i < 16; i++) {
        h2o_socket_t *sock = h2o_evloop_socket_accept (listener);
        if (!sock)
            break;
        h2o_accept (&t->accept_ctx, sock);
    }
}

static void *
s_http_main (void *arg)
{
    s_thread_t *t = arg;
    rst_front_t *front = t->front;
    h2o_context_init (&t->ctx, h2o_evloop_create (), &front->h2o_config);
    h2o_multithread_register_receiver (t->ctx.queue, &t->snapshot_receiver, s_on_snapshot);
    h2o_multithread_register_receiver (t->ctx.queue, &t->wake_receiver, s_on_wake);
    h2o_multithread_register_receiver (t->ctx.queue, &t->api_receiver, rst_api_receive);
    t->accept_ctx.ctx = &t->ctx;
    t->accept_ctx.hosts = front->h2o_config.hosts;
    t->flush_entry.cb = s_flush;
    h2o_timeout_init (t->ctx.loop, &t->second_timeout, 1000);
    t->second_entry.cb = s_on_second;
    h2o_timeout_link (t->ctx.loop, &t->second_timeout, &t->second_entry);
    t->listener = h2o_evloop_socket_create (t->ctx.loop, t->listen_fd, H2O_SOCKET_FLAG_DONT_READ);
    t->listener->data = t;
    h2o_socket_read_start (t->listener, s_on_accept);
    pthread_barrier_wait (t->ready);

    while (!atomic_load (&front->stop))
        h2o_evloop_run (t->ctx.loop, INT32_MAX);

    h2o_socket_read_stop (t->listener);
    h2o_socket_close (t->listener);
    t->listen_fd = -1;
    h2o_context_request_shutdown (&t->ctx);
    for (int i = 0; i < 5; i++)
        h2o_evloop_run (t->ctx.loop, 10);
    //  request_shutdown arms HTTP/2's GOAWAY timer on one_sec_timeout, which
    //  h2o_context_dispose insists is empty.
    if (h2o_timeout_is_linked (&t->ctx.http2._graceful_shutdown_timeout))
        h2o_timeout_unlink (&t->ctx.http2._graceful_shutdown_timeout);
    if (h2o_timeout_is_linked (&t->second_entry))
        h2o_timeout_unlink (&t->second_entry);
    h2o_timeout_dispose (t->ctx.loop, &t->second_timeout);
    if (h2o_timeout_is_linked (&t->flush_entry))
        h2o_timeout_unlink (&t->flush_entry);
    //  The snapshot thread has stopped (rst_front_destroy joins it first), so
    //  nobody appends to the receiver any more: free what is still queued.
    if (!h2o_linklist_is_empty (&t->snapshot_receiver._messages))
        s_on_snapshot (&t->snapshot_receiver, &t->snapshot_receiver._messages);
    h2o_multithread_unregister_receiver (t->ctx.queue, &t->snapshot_receiver);
    h2o_multithread_unregister_receiver (t->ctx.queue, &t->wake_receiver);
    //  The API workers were stopped before the loops (rst_front_destroy):
    //  answer what they posted last.
    if (!h2o_linklist_is_empty (&t->api_receiver._messages))
        rst_api_receive (&t->api_receiver, &t->api_receiver._messages);
    h2o_multithread_unregister_receiver (t->ctx.queue, &t->api_receiver);
    return NULL;
}

// ---------------------------------------------------------------------------
//  Snapshot thread

//  Sends every HTTP thread its own copy of SNAPSHOT. Returns 0 or -1.
static int
s_distribute (rst_front_t *front, const rst_snapshot_t *snapshot)
{
    for (size_t i = 0; i < front->nthreads; i++) {
        s_snapshot_msg_t *msg = calloc (1, sizeof *msg);
        if (!msg || !(msg->snapshot = rst_snapshot_clone (snapshot))) {
            free (msg);
            return -1;
        }
        h2o_multithread_send_message (&front->threads[i].snapshot_receiver, &msg->super);
    }
    atomic_store (&front->snapshot_loaded, 1);
    return 0;
}

//  rst_pgwatch callbacks, on the snapshot thread.
static void *
s_snapshot_load (PGconn *conn, char *err, size_t errlen)
{
    return rst_snapshot_load (conn, err, errlen);
}

static void
s_snapshot_free (void *snapshot)
{
    rst_snapshot_t *snap = snapshot;
    rst_snapshot_destroy (&snap);
}

//  Takes a fresh snapshot: a copy for each HTTP thread, then frees it.
static int
s_snapshot_sink (void *snapshot, void *arg)
{
    rst_front_t *front = arg;
    rst_snapshot_t *snap = snapshot;
    char err[512];
    int unopened = rst_snapshot_open_gateways (snap, front->cfg->master_key_file, err, sizeof err);
    if (unopened < 0)
        rst_warn ("snapshot", "gateway webhooks cannot be authenticated: %s", err);
    else if (unopened > 0)
        rst_warn ("snapshot", "%d gateway account%s with credentials that cannot be opened "
                  "(another master key?): their webhooks will be refused",
                  unopened, unopened == 1 ? "" : "s");
    if (s_distribute (front, snap))
        rst_error ("snapshot", "out of memory distributing pools");
    rst_debug ("snapshot", "loaded %zu pools, %zu webhook bots, %zu gateway accounts",
               rst_snapshot_pool_count (snap), rst_snapshot_webhook_bot_count (snap),
               rst_snapshot_gateway_count (snap));
    rst_snapshot_destroy (&snap);
    return 0;
}

// ---------------------------------------------------------------------------
//  Lifecycle

rst_front_t *
rst_front_new (const rst_config_t *cfg, const rst_topology_t *topo, int instance, char *err,
               size_t errlen)
{
    rst_front_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, errlen, "out of memory");
        return NULL;
    }
    self->cfg = cfg;
    self->topo = topo;
    self->instance = instance;
    snprintf (self->src, sizeof self->src, "front.%d", instance);
    h2o_config_init (&self->h2o_config);
    if (rst_cidr_list_parse (&self->trusted, cfg->trusted_proxies, err, errlen))
        goto fail;
    self->h2o_config.server_name = h2o_iovec_init (H2O_STRLIT ("rastro"));
    //  Bodies are buffered before a handler runs: h2o answers 413 itself
    //  beyond this; the webhook handlers apply their own, smaller limits.
    self->h2o_config.max_request_entity_size = S_MAX_ENTITY;
    h2o_hostconf_t *host = h2o_config_register_host (&self->h2o_config,
                                                      h2o_iovec_init (H2O_STRLIT ("default")), 65535);
    h2o_pathconf_t *pc = h2o_config_register_path (host, "/go/", 0);
    h2o_create_handler (pc, sizeof (h2o_handler_t))->on_req = on_go;
    pc = h2o_config_register_path (host, "/telegram/", 0);
    h2o_create_handler (pc, sizeof (h2o_handler_t))->on_req = on_telegram;
    pc = h2o_config_register_path (host, "/webhook/", 0);
    h2o_create_handler (pc, sizeof (h2o_handler_t))->on_req = on_webhook;
    pc = h2o_config_register_path (host, "/healthz", 0);
    h2o_create_handler (pc, sizeof (h2o_handler_t))->on_req = on_healthz;
    pc = h2o_config_register_path (host, "/metrics", 0);
    h2o_create_handler (pc, sizeof (h2o_handler_t))->on_req = on_metrics;
    pc = h2o_config_register_path (host, "/api/", 0);
    h2o_create_handler (pc, sizeof (h2o_handler_t))->on_req = on_api;
    //  The dashboard's static files, last: the first registered prefix wins.
    struct stat web;
    self->has_web = stat (cfg->web_dir, &web) == 0 && S_ISDIR (web.st_mode);
    pc = h2o_config_register_path (host, "/", 0);
    if (self->has_web)
        h2o_file_register (pc, cfg->web_dir, NULL, NULL, 0);
    else {
        h2o_create_handler (pc, sizeof (h2o_handler_t))->on_req = on_no_dashboard;
        rst_warn ("front", "web_dir %s does not exist: / answers 404 (run scripts/setup)",
                  cfg->web_dir);
    }
    h2o_headers_register (pc, s_web_headers);
    self->api = rst_api_new (cfg, cfg->api_threads, err, errlen);
    if (!self->api)
        goto fail;

    char journal_dir[PATH_MAX];
    if (rst_topology_get (topo, "front", instance, "journal", journal_dir, sizeof journal_dir)) {
        snprintf (err, errlen, "topology: [front] has no journal directory");
        goto fail;
    }
    char acks[64] = "stored";
    rst_topology_get (topo, "front", instance, "required_acks", acks, sizeof acks);
    unsigned required = rst_journal_acks_parse (acks);
    if (!required) {
        snprintf (err, errlen, "topology: [front] required_acks = %s: use stored, meta or both", acks);
        goto fail;
    }
    self->journal = rst_journal_new (journal_dir, required, 0, err, errlen);
    if (!self->journal)
        goto fail;
    self->zmq_ctx = zmq_ctx_new ();
    if (!self->zmq_ctx) {
        snprintf (err, errlen, "zmq_ctx_new: %s", zmq_strerror (errno));
        goto fail;
    }
    self->keeper = rst_keeper_new (self->journal, self->zmq_ctx, topo, "front", instance, err, errlen);
    if (!self->keeper)
        goto fail;
    //  Webhooks: a second journal in strict mode, when the topology has one.
    char inbox_dir[PATH_MAX];
    if (rst_topology_get (topo, "front", instance, "inbox", inbox_dir, sizeof inbox_dir) == 0) {
        self->inbox = rst_journal_new (inbox_dir, RST_JOURNAL_ACK_STORED, 0, err, errlen);
        if (!self->inbox)
            goto fail;
        self->inbox_keeper = rst_keeper_new_keys (self->inbox, self->zmq_ctx, topo, "front",
                                                  instance, &s_inbox_keys, err, errlen);
        if (!self->inbox_keeper)
            goto fail;
        rst_info ("front", "inbox = %s (webhooks, fsynced before 200; acked by \"stored\")",
                  inbox_dir);
    }
    else
        rst_warn ("front", "topology: [front] has no inbox: POST /telegram/ and /webhook/ answer 503");

    self->nthreads = (size_t) cfg->http_threads;
    self->threads = calloc (self->nthreads, sizeof *self->threads);
    if (!self->threads) {
        snprintf (err, errlen, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < self->nthreads; i++) {
        s_thread_t *t = &self->threads[i];
        t->front = self;
        t->index = i;
        t->listen_fd = -1;
        t->random_used = sizeof t->random;     //  drawn at the first click
        pthread_mutex_init (&t->lock, NULL);
        t->clicks = (s_lane_t) {self->journal, 0, "clicks", NULL, {0}, &self->ids.click_lane};
        t->inbox = (s_lane_t) {self->inbox, 1, "webhooks", NULL, {0}, &self->ids.inbox_lane};
        msgpack_sbuffer_init (&t->clicks.out);
        msgpack_sbuffer_init (&t->inbox.out);
        t->metrics = rst_metrics_new ();
        t->published = rst_metrics_new ();
        if (!t->metrics || !t->published) {
            snprintf (err, errlen, "out of memory");
            goto fail;
        }
        s_declare_metrics (t->metrics, &self->ids);
        rst_metrics_copy (t->published, t->metrics);
        t->clicks.push = rst_zsock_new (self->zmq_ctx, ZMQ_PUSH, S_PUSH_HWM, S_PUSH_LINGER_MS,
                                        RST_ZSOCK_IMMEDIATE);
        if (!t->clicks.push) {
            snprintf (err, errlen, "zmq_socket: %s", zmq_strerror (errno));
            goto fail;
        }
        if (rst_topology_attach (topo, t->clicks.push, "front", instance, "events", err, errlen))
            goto fail;
        if (self->inbox) {
            t->inbox.push = rst_zsock_new (self->zmq_ctx, ZMQ_PUSH, S_PUSH_HWM, S_PUSH_LINGER_MS,
                                           RST_ZSOCK_IMMEDIATE);
            if (!t->inbox.push) {
                snprintf (err, errlen, "zmq_socket: %s", zmq_strerror (errno));
                goto fail;
            }
            if (rst_topology_attach (topo, t->inbox.push, "front", instance, "inbox_out", err,
                                     errlen))
                goto fail;
        }
        t->listen_fd = rst_tcp_listen (cfg->http_port, 1, 4096, "RASTRO_HTTP_PORT", err, errlen);
        if (t->listen_fd < 0)
            goto fail;
    }
    self->watch = rst_pgwatch_new_sink (cfg->database_url, "rastro_config", "snapshot",
                                        s_snapshot_load, s_snapshot_free, s_snapshot_sink, self,
                                        err, errlen);
    if (!self->watch)
        goto fail;
    pthread_barrier_t ready;
    pthread_barrier_init (&ready, NULL, (unsigned) self->nthreads + 1);
    for (size_t i = 0; i < self->nthreads; i++) {
        s_thread_t *t = &self->threads[i];
        t->ready = &ready;
        if (pthread_create (&t->tid, NULL, s_http_main, t)) {
            //  Cannot unwind a half-started barrier cleanly: this is fatal.
            rst_error ("front", "pthread_create failed");
            abort ();
        }
        t->started = 1;
    }
    pthread_barrier_wait (&ready);
    pthread_barrier_destroy (&ready);
    return self;
fail:
    rst_front_destroy (&self);
    return NULL;
}

void
rst_front_destroy (rst_front_t **self_p)
{
    rst_front_t *self = *self_p;
    if (!self)
        return;
    //  The snapshot thread and the API workers send to the HTTP threads:
    //  stop them while the loops still run (a loop that sees `stop` exits
    //  and unregisters its receivers). Queued API requests are answered 503.
    rst_pgwatch_destroy (&self->watch);
    rst_api_stop (self->api);
    atomic_store (&self->stop, 1);
    for (size_t i = 0; self->threads && i < self->nthreads; i++)
        if (self->threads[i].started)
            h2o_multithread_send_message (&self->threads[i].wake_receiver, NULL);
    for (size_t i = 0; self->threads && i < self->nthreads; i++) {
        s_thread_t *t = &self->threads[i];
        if (t->started)
            pthread_join (t->tid, NULL);
    }
    for (size_t i = 0; self->threads && i < self->nthreads; i++) {
        s_thread_t *t = &self->threads[i];
        if (t->started) {
            h2o_context_dispose (&t->ctx);
            h2o_evloop_destroy (t->ctx.loop);
        }
        if (t->listen_fd >= 0)
            close (t->listen_fd);
        if (t->clicks.push)
            zmq_close (t->clicks.push);
        if (t->inbox.push)
            zmq_close (t->inbox.push);
        rst_snapshot_destroy (&t->snapshot);
        msgpack_sbuffer_destroy (&t->clicks.out);
        msgpack_sbuffer_destroy (&t->inbox.out);
        free (t->parked);
        free (t->inbox_parked);
        rst_metrics_destroy (&t->metrics);
        rst_metrics_destroy (&t->published);
        pthread_mutex_destroy (&t->lock);
    }
    free (self->threads);
    rst_api_destroy (&self->api);
    rst_keeper_destroy (&self->inbox_keeper);
    rst_keeper_destroy (&self->keeper);
    if (self->zmq_ctx)
        zmq_ctx_term (self->zmq_ctx);
    rst_journal_destroy (&self->inbox);
    rst_journal_destroy (&self->journal);
    h2o_config_dispose (&self->h2o_config);
    free (self);
    *self_p = NULL;
}

int
rst_front_heartbeat (rst_front_t *self)
{
    char *text = s_render_metrics (self);
    if (!text)
        return -1;
    int rc = rst_heartbeat_write (self->cfg->data_dir, "front", self->instance, text);
    free (text);
    return rc;
}
