/*  rst_api_server — the server side of rst_api (lib/rst_api.c): the h2o
    glue, the API worker pool and the router, for the front.

    rst_api.h is what route modules see (no h2o in it); this header is what
    the front and the tests see. Life of one /api/v1 request:

        loop thread                      API worker thread (one PGconn each)
        rst_api_handle ─copy, route─► job ─lane queue (bounded)─► session,
             │                                   CSRF, handler, JSON text
             │◄──── h2o_multithread_send_message ◄────┘
        rst_api_receive: answer the request (or drop the job if the client
        went away: a shared object in req->pool marks the job orphaned when
        the request is disposed; only the loop thread touches the request)

    A job always comes back to its loop thread, which alone frees it.
    When the queue is full, or the pool is stopping, the loop answers 503
    at once. A worker without a database connection reconnects at most once
    a second and answers 503 + Retry-After meanwhile.

    Shutdown order (the front's): rst_api_stop while the loops still run
    (every queued job is answered 503 and posted back, workers joined),
    then stop the loops (each drains its receiver with rst_api_receive),
    then rst_api_destroy.
*/
#ifndef RST_API_SERVER_H
#define RST_API_SERVER_H

#include "rst_api.h"
#include "rst_config.h"

#include "h2o.h"

#include <stdio.h>

#define RST_API_PREFIX      "/api/v1"
#define RST_API_QUEUE_MAX   256     //  jobs waiting for a general worker; more: 503 at once
#define RST_API_LOGIN_QUEUE_MAX 32  //  logins waiting for the login worker; more: 503 at once
#define RST_API_MAX_PATH    2048    //  path + query bytes; longer: 414
#define RST_API_RETRY_DB    2       //  Retry-After (s) when the database is unavailable
#define RST_API_RETRY_BUSY  1       //  Retry-After (s) when the queue is full

typedef struct rst_api_t rst_api_t;

//  Starts NTHREADS (≥ 1) general API workers plus one login worker (for
//  the routes rst_auth_route_is_slow picks: argon2id never occupies the
//  general workers), each with its own connection to CFG's database (made
//  lazily), and hands CFG to rst_auth (rst_auth_configure). CFG is borrowed and
//  must outlive the pool. Returns a new pool the caller owns, or NULL with
//  a reason in ERR.
rst_api_t *rst_api_new (const rst_config_t *cfg, int nthreads, char *err, size_t errlen);

//  Stops the workers: from now on rst_api_handle answers 503 at once;
//  queued jobs are answered 503 and posted back; joins the threads. The
//  loops that own requests must still run or drain their receivers later
//  (rst_api_receive). Safe to call twice, and on NULL.
void rst_api_stop (rst_api_t *self);

//  Stops (if not yet done) and frees the pool; sets *SELF_P to NULL. Every
//  receiver that got jobs must have been drained first. Safe on NULL.
void rst_api_destroy (rst_api_t **self_p);

//  The /api/ handler of a loop thread: answers REQ at once (404 outside
//  /api/v1/ or no such route, 405 + Allow, 400 NUL in the URL, 413, 414,
//  503 + Retry-After when its lane is full or the pool stops) or queues it
//  on its lane; the
//  answer comes back through RECEIVER, which the loop registered on its
//  context's queue with rst_api_receive as callback. Always returns 0.
int rst_api_handle (rst_api_t *self, h2o_req_t *req, h2o_multithread_receiver_t *receiver);

//  h2o_multithread receiver callback: answers every finished job in
//  MESSAGES (or drops it when its client went away) and frees it. Call it
//  on the loop thread, also to drain the receiver at shutdown.
void rst_api_receive (h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages);

//  The pool's metrics (rastro_api_requests_total{status}, queue depth,
//  latency) as Prometheus text. Returns a new string the caller frees, or
//  NULL (out of memory). Any thread.
char *rst_api_render_metrics (rst_api_t *self);

// ---------------------------------------------------------------------------
//  Pure parts, for tests

//  Finds the route for METHOD ("HEAD" is routed as GET) and PATH (below
//  /api/v1, no query). Fills IDS (RST_API_MAX_IDS) and *NIDS with the :id
//  captures. Returns the route, or NULL with *STATUS set to 404 (no route
//  has that path) or 405 (some do, not with that method; then ALLOW, when
//  not NULL, gets the allowed methods, e.g. "GET, POST", in ALLOWLEN bytes).
const rst_api_route_t *rst_api_match (const char *method, const char *path, int64_t *ids,
                                      size_t *nids, int *status, char *allow, size_t allowlen);

//  1 if PATH (NUL-terminated) matches PATTERN, filling IDS/NIDS; else 0.
//  An :id is 1-18 decimal digits, no leading zero, value ≥ 1.
int rst_api_pattern_match (const char *pattern, const char *path, int64_t *ids, size_t *nids);

//  Writes every route as one "METHOD PATTERN FLAGS" line to OUT, where
//  PATTERN includes /api/v1 and FLAGS is "public" or "session" (with
//  ",csrf" for writes that need the token), e.g.
//  "POST /api/v1/pools/:id/bots session,csrf".
void rst_api_list_routes (FILE *out);

//  Extracts the rastro_session cookie's value from a Cookie header value
//  (HEADER, LEN bytes). Returns 1 and points *VALUE/*VALUE_LEN into HEADER,
//  or 0 when absent.
int rst_api_cookie (const char *header, size_t len, const char **value, size_t *value_len);

#endif
