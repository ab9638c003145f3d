/*  rst_front — see rst_front.h.

    Life of a click inside one HTTP thread:

        on_go ──validate, pick bot, build event──► parked[] ──zero timeout──► s_flush
        s_flush: txn_begin ─► for each: stamp seq, pack, txn_put ─► commit
                 ├─ ok:     302 to each, then one zmq_send(DONTWAIT) of the packed batch
                 └─ failed: 503 to each (nothing was accepted)

    h2o runs the zero-timeout entries at the end of the loop iteration in
    which the requests arrived, so a parked request cannot be torn down
    before it is answered.
*/
#include "rst_front.h"
#include "rst_click.h"
#include "rst_clock.h"
#include "rst_event.h"
#include "rst_journal.h"
#include "rst_keeper.h"
#include "rst_log.h"
#include "rst_metrics.h"
#include "rst_netaddr.h"
#include "rst_pgwatch.h"
#include "rst_snapshot.h"
#include "rst_zsock.h"

#include "h2o.h"

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

static const double s_latency_bounds[] = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                          0.005,   0.01,   0.025,   0.05,   0.1,   0.5};
static const double s_commit_bounds[] = {0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
                                         0.001,   0.0025,   0.005,   0.01,   0.05,   0.25};

//  A click waiting for the end of the loop iteration.
typedef struct {
    h2o_req_t *req;
    rst_event_t event;          //  strings live in req->pool
    h2o_iovec_t location;       //  in req->pool
    uint64_t started_ns;
    int rejected;               //  the event could not be packed (schema limits)
} s_parked_t;

typedef struct {
    h2o_multithread_message_t super;
    rst_snapshot_t *snapshot;   //  owned by the message until installed
} s_snapshot_msg_t;

//  Metric indexes, the same in every thread's registry.
typedef struct {
    int req_302, req_400, req_404, req_405, req_503, req_200, latency, clicks, commit, commits,
        commit_fail, pushed, push_fail, fbclid_bad, snapshot_pools;
} s_metric_ids_t;

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
    const rst_topology_t *topo;         //  borrowed
    size_t nthreads;
    s_thread_t *threads;
    rst_pgwatch_t *watch;               //  snapshot thread: loads pools, calls s_distribute
    atomic_int stop;
    atomic_int snapshot_loaded;         //  1 after the first successful load
    s_metric_ids_t ids;
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
    rst_snapshot_t *snapshot;           //  this thread's copy; NULL before the first load
    void *push;                         //  PUSH to the events endpoints
    msgpack_sbuffer out;                //  packed events of this iteration
    s_parked_t *parked;
    size_t nparked, parked_cap;
    h2o_timeout_entry_t flush_entry;
    h2o_timeout_t second_timeout;
    h2o_timeout_entry_t second_entry;
    unsigned char random[4096];         //  random bytes for click ids, drawn in bulk
    size_t random_used;                 //  bytes of `random` already handed out
    rst_metrics_t *metrics;             //  this thread's registry
    rst_metrics_t *published;           //  copy for readers, under `lock`
    pthread_mutex_t lock;
    pthread_barrier_t *ready;           //  signalled once the loop is set up
};

static void
s_declare_metrics (rst_metrics_t *m, s_metric_ids_t *ids)
{
    static const char *h = "HTTP responses by status.";
    ids->req_200 = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_http_requests_total{status=\"200\"}", h, NULL, 0);
    ids->req_302 = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_http_requests_total{status=\"302\"}", h, NULL, 0);
    ids->req_400 = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_http_requests_total{status=\"400\"}", h, NULL, 0);
    ids->req_404 = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_http_requests_total{status=\"404\"}", h, NULL, 0);
    ids->req_405 = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_http_requests_total{status=\"405\"}", h, NULL, 0);
    ids->req_503 = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_http_requests_total{status=\"503\"}", h, NULL, 0);
    ids->latency = rst_metrics_add (m, RST_METRIC_HISTOGRAM, "rastro_redirect_duration_seconds",
                                    "Time from a /go/ request to its answer (journal commit included).",
                                    s_latency_bounds, sizeof s_latency_bounds / sizeof (double));
    ids->clicks = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_clicks_total",
                                   "Clicks journaled and redirected.", NULL, 0);
    ids->commit = rst_metrics_add (m, RST_METRIC_HISTOGRAM, "rastro_journal_commit_seconds",
                                   "Duration of one journal group commit.", s_commit_bounds,
                                   sizeof s_commit_bounds / sizeof (double));
    ids->commits = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_journal_commits_total",
                                    "Journal group commits.", NULL, 0);
    ids->commit_fail = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_journal_commit_failures_total",
                                        "Journal commits that failed (clicks answered 503).", NULL, 0);
    ids->pushed = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_push_messages_total",
                                   "Batches pushed downstream.", NULL, 0);
    ids->push_fail = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_push_failures_total",
                                      "Batches not pushed (downstream absent or full); kept in the journal.",
                                      NULL, 0);
    ids->fbclid_bad = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_fbclid_rejected_total",
                                       "fbclid parameters dropped as malformed.", NULL, 0);
    ids->snapshot_pools = rst_metrics_add (m, RST_METRIC_GAUGE, "rastro_snapshot_pools",
                                           "Pools in the in-memory snapshot.", NULL, 0);
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
    if (t->random_used + 16 > sizeof t->random) {
        randombytes_buf (t->random, sizeof t->random);
        t->random_used = 0;
    }
    rst_click_id_from (t->random + t->random_used, click_id);
    sodium_memzero (t->random + t->random_used, 16);    //  each byte serves once
    t->random_used += 16;
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

//  Group commit of every parked click; see the banner.
static void
s_flush (h2o_timeout_entry_t *entry)
{
    s_thread_t *t = H2O_STRUCT_FROM_MEMBER (s_thread_t, flush_entry, entry);
    rst_front_t *front = t->front;
    if (t->nparked == 0)
        return;
    uint64_t begin = rst_clock_mono_ns ();
    msgpack_sbuffer_clear (&t->out);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &t->out, msgpack_sbuffer_write);
    rst_journal_txn_t txn;
    int ok = rst_journal_txn_begin (front->journal, &txn) == 0;
    for (size_t i = 0; ok && i < t->nparked; i++) {
        rst_event_t *ev = &t->parked[i].event;
        ev->seq = rst_journal_txn_next_seq (&txn);
        size_t from = t->out.size;
        if (rst_event_pack (ev, &pk)) {
            //  Outside the event schema's limits: refuse this click alone.
            t->parked[i].rejected = 1;
            continue;
        }
        ok = rst_journal_txn_put (&txn, t->out.data + from, t->out.size - from) == ev->seq;
    }
    if (ok)
        ok = rst_journal_txn_commit (&txn, 0) == 0;
    else
        rst_journal_txn_abort (&txn);
    uint64_t committed = rst_clock_mono_ns ();
    rst_metrics_observe (t->metrics, front->ids.commit, (double) (committed - begin) / 1e9);
    rst_metrics_inc (t->metrics, ok ? front->ids.commits : front->ids.commit_fail, 1);
    if (!ok)
        rst_error ("front", "journal write of %zu clicks failed; answered 503", t->nparked);

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
    if (ok && t->out.size > 0) {
        //  Never blocks: with no peer (IMMEDIATE) or a full pipe it fails at
        //  once and the keeper replays from the journal.
        if (zmq_send (t->push, t->out.data, t->out.size, ZMQ_DONTWAIT) < 0)
            rst_metrics_inc (t->metrics, front->ids.push_fail, 1);
        else
            rst_metrics_inc (t->metrics, front->ids.pushed, 1);
    }
    msgpack_sbuffer_clear (&t->out);
}

static void
s_link_flush (s_thread_t *t)
{
    if (!h2o_timeout_is_linked (&t->flush_entry))
        h2o_timeout_link (t->ctx.loop, &t->ctx.zero_timeout, &t->flush_entry);
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

//  Renders every thread's published metrics and the keeper's. Returns a new
//  string the caller frees, or NULL.
static char *
s_render_metrics (rst_front_t *front)
{
    rst_metrics_t **copies = calloc (front->nthreads, sizeof *copies);
    char *threads_text = NULL, *keeper_text = NULL, *text = NULL;
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
    if (threads_text && keeper_text) {
        size_t a = strlen (threads_text), b = strlen (keeper_text);
        text = malloc (a + b + 1);
        if (text) {
            memcpy (text, threads_text, a);
            memcpy (text + a, keeper_text, b + 1);
        }
    }
done:
    for (size_t i = 0; i < front->nthreads; i++)
        rst_metrics_destroy (&copies[i]);
    free (copies);
    free (threads_text);
    free (keeper_text);
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
    return NULL;
}

//  Opens a SO_REUSEPORT listener on PORT (IPv6 dual-stack, else IPv4).
//  Returns the fd or -1 with a reason in ERR.
static int
s_listen (int port, char *err, size_t errlen)
{
    int one = 1, zero = 0;
    int fd = socket (AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
        struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons ((uint16_t) port),
                                  .sin6_addr = in6addr_any};
        setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        setsockopt (fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
        setsockopt (fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
        if (bind (fd, (struct sockaddr *) &a6, sizeof a6) == 0 && listen (fd, 4096) == 0)
            return fd;
        close (fd);
    }
    fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf (err, errlen, "socket: %s", strerror (errno));
        return -1;
    }
    struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_port = htons ((uint16_t) port),
                             .sin_addr.s_addr = htonl (INADDR_ANY)};
    setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt (fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (bind (fd, (struct sockaddr *) &a4, sizeof a4) || listen (fd, 4096)) {
        snprintf (err, errlen, "cannot listen on port %d: %s (set RASTRO_HTTP_PORT)", port,
                  strerror (errno));
        close (fd);
        return -1;
    }
    return fd;
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
    if (s_distribute (front, snap))
        rst_error ("snapshot", "out of memory distributing pools");
    rst_debug ("snapshot", "loaded %zu pools", rst_snapshot_pool_count (snap));
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
    h2o_hostconf_t *host = h2o_config_register_host (&self->h2o_config,
                                                      h2o_iovec_init (H2O_STRLIT ("default")), 65535);
    h2o_pathconf_t *pc = h2o_config_register_path (host, "/go/", 0);
    h2o_create_handler (pc, sizeof (h2o_handler_t))->on_req = on_go;
    pc = h2o_config_register_path (host, "/healthz", 0);
    h2o_create_handler (pc, sizeof (h2o_handler_t))->on_req = on_healthz;
    pc = h2o_config_register_path (host, "/metrics", 0);
    h2o_create_handler (pc, sizeof (h2o_handler_t))->on_req = on_metrics;

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
        msgpack_sbuffer_init (&t->out);
        t->metrics = rst_metrics_new ();
        t->published = rst_metrics_new ();
        if (!t->metrics || !t->published) {
            snprintf (err, errlen, "out of memory");
            goto fail;
        }
        s_declare_metrics (t->metrics, &self->ids);
        rst_metrics_copy (t->published, t->metrics);
        t->push = rst_zsock_new (self->zmq_ctx, ZMQ_PUSH, S_PUSH_HWM, S_PUSH_LINGER_MS,
                                 RST_ZSOCK_IMMEDIATE);
        if (!t->push) {
            snprintf (err, errlen, "zmq_socket: %s", zmq_strerror (errno));
            goto fail;
        }
        if (rst_topology_attach (topo, t->push, "front", instance, "events", err, errlen))
            goto fail;
        t->listen_fd = s_listen (cfg->http_port, err, errlen);
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
    atomic_store (&self->stop, 1);
    //  The snapshot thread sends to the HTTP threads: stop it first.
    rst_pgwatch_destroy (&self->watch);
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
        if (t->push)
            zmq_close (t->push);
        rst_snapshot_destroy (&t->snapshot);
        msgpack_sbuffer_destroy (&t->out);
        free (t->parked);
        rst_metrics_destroy (&t->metrics);
        rst_metrics_destroy (&t->published);
        pthread_mutex_destroy (&t->lock);
    }
    free (self->threads);
    rst_keeper_destroy (&self->keeper);
    if (self->zmq_ctx)
        zmq_ctx_term (self->zmq_ctx);
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
