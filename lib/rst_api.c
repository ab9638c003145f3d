/*  rst_api — the JSON API's machinery: router, helpers, h2o glue and the
    API worker pool (see rst_api.h for the contract with route modules and
    rst_api_server.h for the life of a request).

    A job owns a copy of everything a handler may read (one malloc'd block
    of NUL-terminated strings) and, once a worker is done, the answer (JSON
    text, Set-Cookie, Retry-After, Allow). Ownership of a job moves: loop
    thread → queue → one worker → the loop's receiver → freed by the loop.
    The request and its link object are touched only by the loop thread:

        rst_api_handle:  job->req = req; link (in req->pool)->job = job
        req disposed:    link->job ? link->job->req = NULL          (orphaned)
        rst_api_receive: job->req ? (link->job = NULL, answer) : drop; free

    Checks, in order: path (404) and method (405) on the loop thread (a
    pure table lookup), then on the worker: database (503 + Retry-After),
    session (401) unless RST_API_PUBLIC, CSRF token on writes (403), then
    the handler. A handler failure is a 500; a handler that lost the
    database connection is a 503.

    Two lanes, each a bounded queue with its own workers:

        general  RASTRO_API_THREADS workers, RST_API_QUEUE_MAX jobs
        login    one worker, RST_API_LOGIN_QUEUE_MAX jobs: the routes whose
                 handler checks a password (rst_auth_route_is_slow), so that
                 argon2id (~50-100 ms each) never occupies the general
                 workers; concurrent logins wait their turn.

    One mutex guards both queues, the stop flag and the metrics registry;
    it is held for a few instructions at a time (never across a query).
*/
#include "rst_api_server.h"
#include "rst_auth.h"
#include "rst_click.h"
#include "rst_clock.h"
#include "rst_db.h"
#include "rst_log.h"
#include "rst_metrics.h"
#include "rst_netaddr.h"
#include "rst_utf8.h"

#include <assert.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define S_RECONNECT_MS   1000       //  at most one connection attempt per worker and second
#define S_MAX_UA         512        //  User-Agent bytes kept
#define S_MAX_TOKEN      256        //  cookie / CSRF header bytes kept (longer: ignored)
#define S_MAX_CTYPE      256
#define S_MAX_HOST       255
#define S_STATEMENT_TIMEOUT "SET statement_timeout = '10s'"
#define S_DEFAULT_TZ     "America/Sao_Paulo"

//  Every route table, in lookup order.
static const rst_api_route_t *const s_tables[] = {rst_auth_routes, rst_apiq_routes,
                                                  rst_spend_routes, rst_apiadmin_routes};
#define S_NTABLES (sizeof s_tables / sizeof s_tables[0])

static const int s_statuses[] = {200, 201, 204, 400, 401, 403, 404, 405,
                                 409, 413, 414, 415, 429, 500, 503};
#define S_NSTATUSES ((int) (sizeof s_statuses / sizeof s_statuses[0]))
static const double s_latency_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                          0.05,   0.1,   0.25,   0.5,   1,    2.5};

typedef struct s_job s_job_t;

//  In req->pool: tells the job when its request is disposed.
typedef struct {
    s_job_t *job;               //  NULL once the job was answered or dropped
} s_link_t;

struct s_job {
    h2o_multithread_message_t super;        //  posted back to `receiver`
    h2o_multithread_receiver_t *receiver;   //  the owning loop's
    h2o_req_t *req;             //  NULL when the client went away (loop thread only)
    s_link_t *link;             //  in req->pool (loop thread only)
    rst_api_t *api;
    uint64_t queued_ns;         //  when the loop queued it
    const rst_api_route_t *route;   //  matched on the loop thread
    rst_api_req_t in;           //  strings point into `data`
    char *data;                 //  one block holding every string of `in`
    size_t data_len;
    //  The answer, filled by the worker.
    int status;
    char *body;                 //  JSON text (malloc'd) or NULL
    size_t body_len;
    char *set_cookie;           //  malloc'd or NULL
    int retry_after;
};

//  A bounded FIFO of jobs and the condition its workers wait on.
typedef struct {
    const char *name;           //  "general", "login": for the log
    s_job_t **queue;            //  ring buffer of `cap`
    size_t cap, head, count;
    pthread_cond_t wake;        //  a job was queued, or stop
    int depth_id;               //  its queue-depth gauge
} s_lane_t;

#define S_LANE_GENERAL 0
#define S_LANE_LOGIN   1
#define S_LANES        2

typedef struct {
    rst_api_t *api;
    s_lane_t *lane;             //  where this worker takes jobs
    size_t index;
    pthread_t tid;
    int started;
    PGconn *db;                 //  this worker's connection, or NULL
    int generic_plans;          //  db is in plan_cache_mode = force_generic_plan
    int64_t failed_ms;          //  last failed connection attempt (monotonic), 0 if none
} s_worker_t;

typedef struct {
    int status[S_NSTATUSES];
    int status_other;
    int latency, queue_depth, login_queue_depth, busy;
} s_metric_ids_t;

struct rst_api_t {
    const rst_config_t *cfg;    //  borrowed
    rst_cidr_list_t trusted;    //  proxies whose X-Forwarded-* is believed
    pthread_mutex_t lock;       //  guards everything below
    s_lane_t lanes[S_LANES];
    int stopping;               //  rst_api_stop was called
    int busy;                   //  workers inside a job
    rst_metrics_t *metrics;
    s_metric_ids_t ids;
    size_t nworkers;
    s_worker_t *workers;
};

// ---------------------------------------------------------------------------
//  Helpers for handlers

int
rst_api_error (rst_api_res_t *res, int status, const char *msg)
{
    res->status = status;
    cJSON_Delete (res->json);
    res->json = cJSON_CreateObject ();
    if (res->json)
        cJSON_AddStringToObject (res->json, "error", msg);
    return 0;
}

int
rst_api_ok (rst_api_res_t *res, cJSON *json)
{
    if (!json)
        return -1;
    cJSON_Delete (res->json);
    res->status = 200;
    res->json = json;
    return 0;
}

typedef struct {
    const char *key;
    char *out;
    size_t outlen;
    int rc;                     //  1 found, 0 absent, -1 bad
} s_query_find_t;

static int
s_on_query_pair (void *arg, const char *key, size_t key_len, const char *value, size_t value_len)
{
    s_query_find_t *q = arg;
    char name[128];
    int n = rst_url_decode (key, key_len, name, sizeof name);
    if (n < 0 || (size_t) n != strlen (q->key) || memcmp (name, q->key, (size_t) n))
        return 0;
    int len = q->outlen > 0 ? rst_url_decode (value, value_len, q->out, q->outlen - 1) : -1;
    if (len < 0 || rst_utf8_chars (q->out, (size_t) len) < 0) {
        if (q->outlen > 0)
            q->out[0] = 0;
        q->rc = -1;
    }
    else {
        q->out[len] = 0;
        q->rc = 1;
    }
    return 1;   //  the first occurrence decides
}

int
rst_api_query (const rst_api_req_t *req, const char *key, char *out, size_t outlen)
{
    if (outlen > 0)
        out[0] = 0;
    if (!req->query || !*req->query)
        return 0;
    s_query_find_t q = {key, out, outlen, 0};
    rst_query_each (req->query, strlen (req->query), s_on_query_pair, &q);
    return q.rc;
}

cJSON *
rst_api_body_object (const rst_api_req_t *req, rst_api_res_t *res)
{
    if (!req->body || req->body_len == 0) {
        rst_api_error (res, 400, "empty body: a JSON object is expected");
        return NULL;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts (req->body, req->body_len, &end, 0);
    if (!root) {
        rst_api_error (res, 400, "body is not JSON");
        return NULL;
    }
    for (const char *c = end; c && c < req->body + req->body_len; c++)
        if (*c != ' ' && *c != '\t' && *c != '\r' && *c != '\n') {
            cJSON_Delete (root);
            rst_api_error (res, 400, "bytes after the JSON value");
            return NULL;
        }
    if (!cJSON_IsObject (root)) {
        cJSON_Delete (root);
        rst_api_error (res, 400, "body must be a JSON object");
        return NULL;
    }
    return root;
}

// ---------------------------------------------------------------------------
//  Router

int
rst_api_pattern_match (const char *pattern, const char *path, int64_t *ids, size_t *nids)
{
    const char *p = pattern, *s = path;
    *nids = 0;
    if (*p != '/' || *s != '/')
        return 0;
    while (*p && *s) {
        if (*p != '/' || *s != '/')
            return 0;
        p++, s++;
        size_t plen = strcspn (p, "/"), slen = strcspn (s, "/");
        if (plen == 3 && !memcmp (p, ":id", 3)) {
            if (slen == 0 || slen > 18 || s[0] == '0' || *nids >= RST_API_MAX_IDS)
                return 0;
            int64_t v = 0;
            for (size_t i = 0; i < slen; i++) {
                if (s[i] < '0' || s[i] > '9')
                    return 0;
                v = v * 10 + (s[i] - '0');
            }
            ids[(*nids)++] = v;
        }
        else if (plen != slen || memcmp (p, s, plen))
            return 0;
        p += plen, s += slen;
    }
    return !*p && !*s;
}

const rst_api_route_t *
rst_api_match (const char *method, const char *path, int64_t *ids, size_t *nids, int *status,
               char *allow, size_t allowlen)
{
    const char *want = strcmp (method, "HEAD") ? method : "GET";
    int path_found = 0;
    if (allow && allowlen)
        allow[0] = 0;
    int64_t tmp[RST_API_MAX_IDS];
    size_t ntmp;
    for (size_t t = 0; t < S_NTABLES; t++)
        for (const rst_api_route_t *r = s_tables[t]; r->method; r++) {
            if (!rst_api_pattern_match (r->pattern, path, tmp, &ntmp))
                continue;
            if (!strcmp (r->method, want)) {
                memcpy (ids, tmp, sizeof tmp);
                *nids = ntmp;
                *status = 200;
                return r;
            }
            path_found = 1;
            if (allow && allowlen && !strstr (allow, r->method)) {
                size_t n = strlen (allow);
                snprintf (allow + n, allowlen - n, "%s%s", n ? ", " : "", r->method);
            }
        }
    *nids = 0;
    *status = path_found ? 405 : 404;
    return NULL;
}

static int
s_is_write (const char *method)
{
    return strcmp (method, "GET") && strcmp (method, "HEAD");
}

void
rst_api_list_routes (FILE *out)
{
    for (size_t t = 0; t < S_NTABLES; t++)
        for (const rst_api_route_t *r = s_tables[t]; r->method; r++)
            fprintf (out, "%s %s%s %s\n", r->method, RST_API_PREFIX, r->pattern,
                     (r->flags & RST_API_PUBLIC) ? "public"
                     : s_is_write (r->method)    ? "session,csrf"
                                                 : "session");
}

int
rst_api_cookie (const char *header, size_t len, const char **value, size_t *value_len)
{
    return rst_cookie_find (header, len, RST_API_COOKIE, value, value_len);
}

// ---------------------------------------------------------------------------
//  Answers (loop thread)

static h2o_generator_t s_no_body = {NULL, NULL};

static const char *
s_reason (int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Unknown";
    }
}

//  Sends the answer on REQ. BODY (JSON text, may be NULL) and the header
//  values are copied into the request's pool.
static void
s_send (h2o_req_t *req, int status, const char *body, size_t body_len, const char *set_cookie,
        int retry_after, const char *allow)
{
    h2o_mem_pool_t *pool = &req->pool;
    req->res.status = status;
    req->res.reason = s_reason (status);
    h2o_add_header (pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT ("no-store"));
    h2o_add_header_by_str (pool, &req->res.headers, H2O_STRLIT ("x-content-type-options"), 0,
                           NULL, H2O_STRLIT ("nosniff"));
    if (set_cookie) {
        h2o_iovec_t v = h2o_strdup (pool, set_cookie, SIZE_MAX);
        h2o_add_header (pool, &req->res.headers, H2O_TOKEN_SET_COOKIE, NULL, v.base, v.len);
    }
    if (retry_after > 0) {
        char *v = h2o_mem_alloc_pool (pool, 16);
        int n = snprintf (v, 16, "%d", retry_after);
        h2o_add_header (pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, v, (size_t) n);
    }
    if (allow && *allow) {
        h2o_iovec_t v = h2o_strdup (pool, allow, SIZE_MAX);
        h2o_add_header (pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, v.base, v.len);
    }
    if (body) {
        h2o_add_header (pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                        H2O_STRLIT ("application/json; charset=utf-8"));
        req->res.content_length = body_len;     //  keep-alive (c-toolchain.md pitfall 4)
        h2o_send_inline (req, body, body_len);
        return;
    }
    req->res.content_length = 0;
    h2o_start_response (req, &s_no_body);
    h2o_send (req, NULL, 0, H2O_SEND_STATE_FINAL);
}

//  Counts one answer of STATUS that took SECONDS. Takes the lock.
static void
s_count (rst_api_t *self, int status, double seconds)
{
    pthread_mutex_lock (&self->lock);
    int id = self->ids.status_other;
    for (int i = 0; i < S_NSTATUSES; i++)
        if (s_statuses[i] == status)
            id = self->ids.status[i];
    rst_metrics_inc (self->metrics, id, 1);
    if (seconds >= 0)
        rst_metrics_observe (self->metrics, self->ids.latency, seconds);
    pthread_mutex_unlock (&self->lock);
}

//  Answers REQ at once with {"error": MSG} (MSG needs no JSON escaping).
static int
s_send_error_now (rst_api_t *self, h2o_req_t *req, int status, const char *msg, int retry_after)
{
    char body[160];
    int n = snprintf (body, sizeof body, "{\"error\":\"%s\"}", msg);
    s_count (self, status, -1);
    s_send (req, status, body, (size_t) n, NULL, retry_after, NULL);
    return 0;
}

// ---------------------------------------------------------------------------
//  Jobs

static void
s_job_free (s_job_t **job_p)
{
    s_job_t *job = *job_p;
    if (!job)
        return;
    if (job->data) {
        sodium_memzero (job->data, job->data_len);      //  bodies may hold passwords
        free (job->data);
    }
    free (job->body);
    free (job->set_cookie);
    free (job);
    *job_p = NULL;
}

static void
s_on_link_dispose (void *p)
{
    s_link_t *link = p;
    if (link->job)
        link->job->req = NULL;      //  orphaned: dropped when it comes back
}

//  Returns the value of header TOKEN, or NULL.
static const h2o_iovec_t *
s_header (h2o_req_t *req, const h2o_token_t *token)
{
    ssize_t i = h2o_find_header (&req->headers, token, -1);
    return i < 0 ? NULL : &req->headers.entries[i].value;
}

//  Appends LEN bytes of S (NUL-terminated) at *AT in the job's block.
static const char *
s_put (char **at, const char *s, size_t len)
{
    char *start = *at;
    if (len)
        memcpy (start, s, len);
    start[len] = 0;
    *at += len + 1;
    return start;
}

//  Builds the job for REQ: every field copied. Returns NULL when out of memory.
static s_job_t *
s_job_new (rst_api_t *self, h2o_req_t *req)
{
    size_t route_len = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    size_t prefix = sizeof RST_API_PREFIX - 1;
    const char *path = req->path.base + prefix;
    size_t path_len = route_len - prefix;
    const char *query = req->query_at != SIZE_MAX ? req->path.base + req->query_at + 1 : "";
    size_t query_len = req->query_at != SIZE_MAX ? req->path.len - req->query_at - 1 : 0;
    size_t body_len = req->entity.base ? req->entity.len : 0;

    const h2o_iovec_t *ctype = s_header (req, H2O_TOKEN_CONTENT_TYPE);
    size_t ctype_len = ctype && ctype->len <= S_MAX_CTYPE ? ctype->len : 0;
    const h2o_iovec_t *ua = s_header (req, H2O_TOKEN_USER_AGENT);
    size_t ua_len = ua ? (ua->len < S_MAX_UA ? ua->len : S_MAX_UA) : 0;
    size_t host_len = req->authority.len <= S_MAX_HOST ? req->authority.len : 0;
    ssize_t ci = h2o_find_header_by_str (&req->headers, H2O_STRLIT ("x-csrf-token"), -1);
    const h2o_iovec_t *csrf = ci >= 0 ? &req->headers.entries[ci].value : NULL;
    if (csrf && csrf->len > S_MAX_TOKEN)
        csrf = NULL;
    //  The session cookie: the first rastro_session in any Cookie header.
    const char *token = NULL;
    size_t token_len = 0;
    for (ssize_t i = -1; (i = h2o_find_header (&req->headers, H2O_TOKEN_COOKIE, i)) >= 0;) {
        const h2o_iovec_t *v = &req->headers.entries[i].value;
        if (rst_api_cookie (v->base, v->len, &token, &token_len))
            break;
        token = NULL;
    }
    if (token && token_len > S_MAX_TOKEN)
        token = NULL;

    //  Client address and scheme, believing X-Forwarded-* from trusted proxies only.
    char ip[RST_NETADDR_TEXT_MAX] = "0.0.0.0";
    struct sockaddr_storage peer;
    int secure = req->scheme == &H2O_URL_SCHEME_HTTPS;
    if (req->conn->callbacks->get_peername (req->conn, (struct sockaddr *) &peer)) {
        const h2o_iovec_t *xff = s_header (req, H2O_TOKEN_X_FORWARDED_FOR);
        if (rst_client_address (&self->trusted, (struct sockaddr *) &peer, xff ? xff->base : NULL,
                                xff ? xff->len : 0, ip, sizeof ip))
            snprintf (ip, sizeof ip, "0.0.0.0");
        if (!secure && rst_cidr_list_contains (&self->trusted, (struct sockaddr *) &peer)) {
            ssize_t i = h2o_find_header_by_str (&req->headers, H2O_STRLIT ("x-forwarded-proto"), -1);
            secure = i >= 0 && h2o_lcstris (req->headers.entries[i].value.base,
                                            req->headers.entries[i].value.len, H2O_STRLIT ("https"));
        }
    }

    s_job_t *job = calloc (1, sizeof *job);
    if (!job)
        return NULL;
    job->data_len = req->method.len + path_len + query_len + body_len + ctype_len + strlen (ip)
                    + ua_len + 1 + (token ? token_len : 0) + (csrf ? csrf->len : 0) + host_len + 16;
    job->data = malloc (job->data_len);
    if (!job->data) {
        free (job);
        return NULL;
    }
    char *at = job->data;
    rst_api_req_t *in = &job->in;
    in->method = s_put (&at, req->method.base, req->method.len);
    in->path = s_put (&at, path, path_len);
    in->query = s_put (&at, query, query_len);
    in->body = body_len ? s_put (&at, req->entity.base, body_len) : NULL;
    in->body_len = body_len;
    in->content_type = s_put (&at, ctype ? ctype->base : "", ctype_len);
    in->client_ip = s_put (&at, ip, strlen (ip));
    char *ua_text = at;
    at += ua_len + 1;
    rst_utf8_clean (ua ? ua->base : "", ua_len, ua_text);
    in->user_agent = ua_text;
    in->session_token = token ? s_put (&at, token, token_len) : NULL;
    in->csrf_header = csrf ? s_put (&at, csrf->base, csrf->len) : NULL;
    in->host = s_put (&at, req->authority.base, host_len);
    in->secure = secure;
    in->timezone = S_DEFAULT_TZ;
    assert ((size_t) (at - job->data) <= job->data_len);
    job->api = self;
    job->req = req;
    job->queued_ns = rst_clock_mono_ns ();
    return job;
}

int
rst_api_handle (rst_api_t *self, h2o_req_t *req, h2o_multithread_receiver_t *receiver)
{
    size_t route_len = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    size_t prefix = sizeof RST_API_PREFIX - 1;
    if (route_len <= prefix || memcmp (req->path.base, RST_API_PREFIX "/", prefix + 1))
        return s_send_error_now (self, req, 404, "not found", 0);
    if (req->path.len > RST_API_MAX_PATH)
        return s_send_error_now (self, req, 414, "URL too long", 0);
    if (memchr (req->path.base, 0, req->path.len))
        return s_send_error_now (self, req, 400, "bad URL", 0);
    if (req->entity.base && req->entity.len > RST_API_MAX_BODY)
        return s_send_error_now (self, req, 413, "request body too large", 0);
    s_job_t *job = s_job_new (self, req);
    if (!job)
        return s_send_error_now (self, req, 503, "out of memory", RST_API_RETRY_BUSY);
    job->receiver = receiver;
    int status;
    char allow[64];
    job->route = rst_api_match (job->in.method, job->in.path, job->in.ids, &job->in.nids, &status,
                                allow, sizeof allow);
    if (!job->route) {
        s_job_free (&job);
        s_count (self, status, -1);
        const char *body = status == 404 ? "{\"error\":\"not found\"}"
                                         : "{\"error\":\"method not allowed\"}";
        s_send (req, status, body, strlen (body), NULL, 0, allow);
        return 0;
    }
    s_lane_t *lane = &self->lanes[rst_auth_route_is_slow (job->route) ? S_LANE_LOGIN : S_LANE_GENERAL];
    //  The link is set before the job leaves this thread; afterwards the
    //  worker never touches req or link, the loop thread alone does.
    s_link_t *link = h2o_mem_alloc_shared (&req->pool, sizeof *link, s_on_link_dispose);
    link->job = job;
    job->link = link;

    pthread_mutex_lock (&self->lock);
    int refused = self->stopping ? 1 : lane->count == lane->cap ? 2 : 0;
    if (!refused) {
        lane->queue[(lane->head + lane->count) % lane->cap] = job;
        lane->count++;
        rst_metrics_set (self->metrics, lane->depth_id, (double) lane->count);
        pthread_cond_signal (&lane->wake);
    }
    pthread_mutex_unlock (&self->lock);
    if (refused) {
        link->job = NULL;
        s_job_free (&job);
        return s_send_error_now (self, req, 503, refused == 1 ? "shutting down" : "busy, try again",
                                 RST_API_RETRY_BUSY);
    }
    return 0;
}

void
rst_api_receive (h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    while (!h2o_linklist_is_empty (messages)) {
        h2o_multithread_message_t *msg
            = H2O_STRUCT_FROM_MEMBER (h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink (&msg->link);
        s_job_t *job = (s_job_t *) msg;
        if (job->req) {
            job->link->job = NULL;
            s_send (job->req, job->status, job->body, job->body_len, job->set_cookie,
                    job->retry_after, NULL);
        }
        s_job_free (&job);
    }
}

// ---------------------------------------------------------------------------
//  Workers

//  Sets JOB's answer to STATUS with {"error": MSG}.
static void
s_job_error (s_job_t *job, int status, const char *msg, int retry_after)
{
    rst_api_res_t res = {0};
    rst_api_error (&res, status, msg);
    free (job->body);
    job->body = res.json ? cJSON_PrintUnformatted (res.json) : NULL;
    job->body_len = job->body ? strlen (job->body) : 0;
    cJSON_Delete (res.json);
    job->status = status;
    job->retry_after = retry_after;
}

//  Counts JOB's answer and posts it back to its loop. The job is the loop's now.
static void
s_job_post (s_job_t *job)
{
    s_count (job->api, job->status, (double) (rst_clock_mono_ns () - job->queued_ns) / 1e9);
    h2o_multithread_send_message (job->receiver, &job->super);
}

//  Returns the worker's connection, (re)connecting at most once per
//  S_RECONNECT_MS, or NULL when the database is unavailable.
static PGconn *
s_db (s_worker_t *w)
{
    if (w->db && PQstatus (w->db) == CONNECTION_OK)
        return w->db;
    if (w->db) {
        PQfinish (w->db);
        w->db = NULL;
    }
    int64_t now = rst_clock_mono_ms ();
    if (w->failed_ms && now - w->failed_ms < S_RECONNECT_MS)
        return NULL;
    char err[512];
    w->db = rst_db_connect (w->api->cfg, err, sizeof err);
    if (w->db && rst_db_exec (w->db, S_STATEMENT_TIMEOUT, err, sizeof err)) {
        PQfinish (w->db);
        w->db = NULL;
    }
    if (!w->db) {
        if (!w->failed_ms)
            rst_warn ("api", "worker %zu: database unavailable (answering 503): %s", w->index, err);
        w->failed_ms = now;
        return NULL;
    }
    if (w->failed_ms)
        rst_info ("api", "worker %zu: database connection is back", w->index);
    w->failed_ms = 0;
    w->generic_plans = 0;
    return w->db;
}

//  Drops a connection that broke, so the next s_db reconnects at once.
static void
s_db_lost (s_worker_t *w)
{
    PQfinish (w->db);
    w->db = NULL;
    w->failed_ms = 0;
}

static void
s_process (s_worker_t *w, s_job_t *job)
{
    rst_api_req_t *in = &job->in;
    const rst_api_route_t *route = job->route;
    PGconn *db = s_db (w);
    if (!db) {
        s_job_error (job, 503, "database unavailable", RST_API_RETRY_DB);
        return;
    }
    //  Session (also on public routes, when a cookie came: owner_id).
    char tz[64] = S_DEFAULT_TZ, csrf[128] = "", err[512] = "";
    int live = 0;
    if (in->session_token) {
        int64_t user_id = 0;
        live = rst_auth_session_lookup (db, in->session_token, &user_id, tz, sizeof tz, csrf,
                                        sizeof csrf, err, sizeof err);
        if (live < 0 && PQstatus (db) != CONNECTION_OK) {
            //  The connection died while idle: one more try on a fresh one.
            s_db_lost (w);
            db = s_db (w);
            if (db)
                live = rst_auth_session_lookup (db, in->session_token, &user_id, tz, sizeof tz,
                                                csrf, sizeof csrf, err, sizeof err);
        }
        if (live < 0 && !(route->flags & RST_API_PUBLIC)) {
            rst_warn ("api", "session lookup failed: %s", err);
            if (db && PQstatus (db) != CONNECTION_OK)
                s_db_lost (w);
            s_job_error (job, 503, "database unavailable", RST_API_RETRY_DB);
            return;
        }
        if (live == 1)
            in->owner_id = user_id;
        else
            tz[0] = 0;
        if (!db) {
            s_job_error (job, 503, "database unavailable", RST_API_RETRY_DB);
            return;
        }
    }
    in->timezone = tz[0] ? tz : S_DEFAULT_TZ;
    if (!(route->flags & RST_API_PUBLIC)) {
        if (live != 1) {
            s_job_error (job, 401, "login required", 0);
            return;
        }
        if (s_is_write (in->method)) {
            size_t n = strlen (csrf);
            if (!in->csrf_header || !n || strlen (in->csrf_header) != n
                || sodium_memcmp (in->csrf_header, csrf, n)) {
                sodium_memzero (csrf, sizeof csrf);
                s_job_error (job, 403, "csrf", 0);
                return;
            }
        }
    }
    sodium_memzero (csrf, sizeof csrf);

    int generic = (route->flags & RST_API_GENERIC_PLANS) != 0;
    if (generic != w->generic_plans) {
        if (rst_db_exec (db, generic ? "SET plan_cache_mode = force_generic_plan"
                                     : "RESET plan_cache_mode", err, sizeof err)) {
            rst_warn ("api", "cannot set plan_cache_mode: %s", err);
            if (PQstatus (db) != CONNECTION_OK)
                s_db_lost (w);
            s_job_error (job, 503, "database unavailable", RST_API_RETRY_DB);
            return;
        }
        w->generic_plans = generic;
    }

    rst_api_res_t res = {0};
    int rc = route->fn (in, db, &res);
    if (PQstatus (db) != CONNECTION_OK) {
        rst_warn ("api", "%s %s: the database connection broke; answered 503", in->method,
                  route->pattern);
        s_db_lost (w);
        cJSON_Delete (res.json);
        free (res.set_cookie);
        s_job_error (job, 503, "database unavailable", RST_API_RETRY_DB);
        return;
    }
    if (PQtransactionStatus (db) != PQTRANS_IDLE) {
        rst_error ("api", "%s %s left a transaction open: rolled back", in->method, route->pattern);
        PQclear (PQexec (db, "ROLLBACK"));
    }
    if (rc < 0) {
        rst_error ("api", "%s %s: handler failed; answered 500", in->method, route->pattern);
        cJSON_Delete (res.json);
        free (res.set_cookie);
        s_job_error (job, 500, "internal error", 0);
        return;
    }
    job->status = res.status ? res.status : 200;
    job->set_cookie = res.set_cookie;
    job->retry_after = res.retry_after;
    if (res.json && job->status != 204) {
        job->body = cJSON_PrintUnformatted (res.json);
        if (!job->body) {
            free (job->set_cookie);
            job->set_cookie = NULL;
            s_job_error (job, 500, "internal error", 0);
        }
        else
            job->body_len = strlen (job->body);
    }
    cJSON_Delete (res.json);
}

static void *
s_worker_main (void *arg)
{
    s_worker_t *w = arg;
    rst_api_t *self = w->api;
    s_lane_t *lane = w->lane;
    for (;;) {
        pthread_mutex_lock (&self->lock);
        while (!lane->count && !self->stopping)
            pthread_cond_wait (&lane->wake, &self->lock);
        if (self->stopping) {
            pthread_mutex_unlock (&self->lock);
            break;
        }
        s_job_t *job = lane->queue[lane->head];
        lane->head = (lane->head + 1) % lane->cap;
        lane->count--;
        self->busy++;
        rst_metrics_set (self->metrics, lane->depth_id, (double) lane->count);
        rst_metrics_set (self->metrics, self->ids.busy, (double) self->busy);
        pthread_mutex_unlock (&self->lock);

        s_process (w, job);

        pthread_mutex_lock (&self->lock);
        self->busy--;
        rst_metrics_set (self->metrics, self->ids.busy, (double) self->busy);
        pthread_mutex_unlock (&self->lock);
        s_job_post (job);
    }
    if (w->db)
        PQfinish (w->db);
    w->db = NULL;
    return NULL;
}

// ---------------------------------------------------------------------------
//  Lifecycle

static void
s_declare_metrics (rst_metrics_t *m, s_metric_ids_t *ids)
{
    static const char *h = "API answers by status.";
    char name[96];
    for (int i = 0; i < S_NSTATUSES; i++) {
        snprintf (name, sizeof name, "rastro_api_requests_total{status=\"%d\"}", s_statuses[i]);
        ids->status[i] = rst_metrics_add (m, RST_METRIC_COUNTER, name, h, NULL, 0);
    }
    ids->status_other = rst_metrics_add (m, RST_METRIC_COUNTER,
                                         "rastro_api_requests_total{status=\"other\"}", h, NULL, 0);
    ids->latency = rst_metrics_add (m, RST_METRIC_HISTOGRAM, "rastro_api_duration_seconds",
                                    "Time from an API request being queued to its answer being ready.",
                                    s_latency_bounds, sizeof s_latency_bounds / sizeof (double));
    ids->queue_depth = rst_metrics_add (m, RST_METRIC_GAUGE, "rastro_api_queue_depth{lane=\"general\"}",
                                        "API requests waiting for a worker.", NULL, 0);
    ids->login_queue_depth = rst_metrics_add (m, RST_METRIC_GAUGE,
                                              "rastro_api_queue_depth{lane=\"login\"}",
                                              "API requests waiting for a worker.", NULL, 0);
    ids->busy = rst_metrics_add (m, RST_METRIC_GAUGE, "rastro_api_workers_busy",
                                 "API workers inside a request.", NULL, 0);
}

rst_api_t *
rst_api_new (const rst_config_t *cfg, int nthreads, char *err, size_t errlen)
{
    assert (cfg);
    rst_api_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, errlen, "out of memory");
        return NULL;
    }
    self->cfg = cfg;
    pthread_mutex_init (&self->lock, NULL);
    static const char *names[S_LANES] = {"general", "login"};
    static const size_t caps[S_LANES] = {RST_API_QUEUE_MAX, RST_API_LOGIN_QUEUE_MAX};
    for (int l = 0; l < S_LANES; l++) {
        s_lane_t *lane = &self->lanes[l];
        lane->name = names[l];
        lane->cap = caps[l];
        pthread_cond_init (&lane->wake, NULL);
        lane->queue = calloc (lane->cap, sizeof *lane->queue);
        if (!lane->queue) {
            snprintf (err, errlen, "out of memory");
            goto fail;
        }
    }
    if (rst_cidr_list_parse (&self->trusted, cfg->trusted_proxies, err, errlen))
        goto fail;
    self->metrics = rst_metrics_new ();
    if (!self->metrics) {
        snprintf (err, errlen, "out of memory");
        goto fail;
    }
    s_declare_metrics (self->metrics, &self->ids);
    self->lanes[S_LANE_GENERAL].depth_id = self->ids.queue_depth;
    self->lanes[S_LANE_LOGIN].depth_id = self->ids.login_queue_depth;
    rst_auth_configure (cfg);
    //  The general workers, then the login lane's one.
    self->nworkers = (nthreads > 0 ? (size_t) nthreads : 1) + 1;
    self->workers = calloc (self->nworkers, sizeof *self->workers);
    if (!self->workers) {
        snprintf (err, errlen, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < self->nworkers; i++) {
        s_worker_t *w = &self->workers[i];
        w->api = self;
        w->index = i;
        w->lane = &self->lanes[i + 1 < self->nworkers ? S_LANE_GENERAL : S_LANE_LOGIN];
        if (pthread_create (&w->tid, NULL, s_worker_main, w)) {
            snprintf (err, errlen, "pthread_create failed");
            goto fail;
        }
        w->started = 1;
    }
    return self;
fail:
    rst_api_destroy (&self);
    return NULL;
}

void
rst_api_stop (rst_api_t *self)
{
    if (!self)
        return;
    pthread_mutex_lock (&self->lock);
    self->stopping = 1;
    for (int l = 0; l < S_LANES; l++)
        pthread_cond_broadcast (&self->lanes[l].wake);
    pthread_mutex_unlock (&self->lock);
    for (size_t i = 0; self->workers && i < self->nworkers; i++)
        if (self->workers[i].started) {
            pthread_join (self->workers[i].tid, NULL);
            self->workers[i].started = 0;
        }
    //  Whatever is still queued goes back to its loop as a 503.
    for (;;) {
        pthread_mutex_lock (&self->lock);
        s_job_t *job = NULL;
        for (int l = 0; l < S_LANES && !job; l++) {
            s_lane_t *lane = &self->lanes[l];
            if (lane->count) {
                job = lane->queue[lane->head];
                lane->head = (lane->head + 1) % lane->cap;
                lane->count--;
            }
        }
        pthread_mutex_unlock (&self->lock);
        if (!job)
            break;
        s_job_error (job, 503, "shutting down", RST_API_RETRY_BUSY);
        s_job_post (job);
    }
}

void
rst_api_destroy (rst_api_t **self_p)
{
    rst_api_t *self = *self_p;
    if (!self)
        return;
    rst_api_stop (self);
    free (self->workers);
    rst_metrics_destroy (&self->metrics);
    for (int l = 0; l < S_LANES; l++) {
        free (self->lanes[l].queue);
        pthread_cond_destroy (&self->lanes[l].wake);
    }
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

char *
rst_api_render_metrics (rst_api_t *self)
{
    pthread_mutex_lock (&self->lock);
    char *text = rst_metrics_render (self->metrics);
    pthread_mutex_unlock (&self->lock);
    return text;
}
