/*  rst_api — the JSON API (/api/v1/...) served by the front's HTTP threads.

    The front's event loops never wait for PostgreSQL. An API request is
    copied out of h2o (method, path, query, cookies, body ≤ RST_API_MAX_BODY)
    into a job, queued to a small pool of API worker threads (each with its
    own PGconn), and the worker's answer is posted back to the loop that owns
    the request with h2o_multithread_send_message. A request whose client
    went away meanwhile is dropped when its answer arrives.

    Routing: every module that serves API routes exports one table of
    rst_api_route_t, terminated by an all-zero entry, listed in rst_api.c:

        rst_auth_routes      login, logout, me                (lib/rst_auth.c)
        rst_apiq_routes      analytics reads                  (lib/rst_apiq.c)
        rst_spend_routes     ad accounts, spend               (lib/rst_spend.c)
        rst_apiadmin_routes  pools, bots, offers, pixels, dlq (lib/rst_apiadmin.c)

    A pattern is a path below /api/v1 whose segments are literals or ":id"
    (a positive decimal bigint, captured in order into req->ids); a request
    whose method does not match any route for a matching path gets 405, no
    matching path 404.

    Access: unless a route is RST_API_PUBLIC, the request must carry a live
    session cookie (401 {"error":"login required"} otherwise) and
    req->owner_id is the logged-in user. Every handler scopes every read and
    write to req->owner_id; an id that is not the owner's answers 404 exactly
    like an id that does not exist. Methods other than GET/HEAD need the
    session's CSRF token in the X-CSRF-Token header (403 {"error":"csrf"}),
    RST_API_PUBLIC routes excepted (login: which requires
    Content-Type: application/json, so a cross-site form cannot post it).

    Answers are JSON (Content-Type: application/json; charset=utf-8,
    Cache-Control: no-store). Errors are {"error": "<short reason>"}.
*/
#ifndef RST_API_H
#define RST_API_H

#include <cjson/cJSON.h>
#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#define RST_API_MAX_BODY   (64 * 1024)   //  bigger bodies: 413
#define RST_API_MAX_IDS    4
#define RST_API_COOKIE     "rastro_session"

typedef struct {
    const char *method;          //  "GET", "POST", "PUT", "PATCH", "DELETE"
    const char *path;            //  below /api/v1, no query: e.g. "/bots/12/leads"
    const char *query;           //  raw query string without '?', "" when none
    const char *body;            //  request body (not NUL-terminated), may be NULL
    size_t body_len;
    const char *content_type;    //  "" when none
    const char *client_ip;       //  the client's address (after trusted proxies)
    const char *user_agent;      //  "" when none
    const char *session_token;   //  the rastro_session cookie's value, or NULL
    const char *csrf_header;     //  X-CSRF-Token, or NULL
    int secure;                  //  1 over TLS or behind a trusted proxy that said https
    int64_t owner_id;            //  logged-in user (0 on public routes without session)
    const char *timezone;        //  the owner's time zone ("America/Sao_Paulo" default)
    int64_t ids[RST_API_MAX_IDS];//  ":id" captures, in order
    size_t nids;
    const char *host;            //  the Host header (authority), "" when none
} rst_api_req_t;

//  What a handler fills. rst_api owns and frees everything in it.
typedef struct {
    int status;                  //  HTTP status; 200 when left 0
    cJSON *json;                 //  body; NULL = no body (e.g. 204)
    char *set_cookie;            //  one Set-Cookie header value (malloc'd), or NULL
    int retry_after;             //  > 0: Retry-After header, seconds (429, 503)
} rst_api_res_t;

//  A handler runs on an API worker thread with that thread's connection DB
//  (never NULL, in autocommit; leave it idle, no open transaction). It fills
//  RES and returns 0; -1 means "internal error": rst_api answers 500
//  {"error":"internal error"} and logs ERR-free context itself (the handler
//  logs its own details, never a secret).
typedef int (rst_api_fn) (const rst_api_req_t *req, PGconn *db, rst_api_res_t *res);

enum {
    RST_API_PUBLIC = 1 << 0,     //  no session needed, no CSRF check
    //  The handler's statements run with plan_cache_mode = force_generic_plan
    //  (prepared statements planned once, never again per call); without
    //  it, PostgreSQL's default. The worker switches its connection only
    //  when the route before on it differed.
    RST_API_GENERIC_PLANS = 1 << 1,
};

typedef struct {
    const char *method;          //  NULL ends a table
    const char *pattern;         //  e.g. "/bots/:id/leads"
    rst_api_fn *fn;
    unsigned flags;
} rst_api_route_t;

// ---------------------------------------------------------------------------
//  Helpers for handlers (any thread)

//  Sets RES to STATUS with {"error": MSG}. Returns 0 (so handlers can
//  `return rst_api_error (res, 404, "not found");`).
int rst_api_error (rst_api_res_t *res, int status, const char *msg);

//  Sets RES to 200 with JSON (taking ownership of it). Returns 0, or -1
//  when JSON is NULL (out of memory).
int rst_api_ok (rst_api_res_t *res, cJSON *json);

//  Finds KEY in REQ's query string and URL-decodes its value into OUT
//  (NUL-terminated). Returns 1 when found, 0 when absent, -1 when the value
//  does not fit OUTLEN or is not valid percent-encoding / UTF-8.
int rst_api_query (const rst_api_req_t *req, const char *key, char *out, size_t outlen);

//  Parses REQ's body as a JSON object. Returns a new cJSON the caller frees,
//  or NULL after setting RES to 400 with a reason (not JSON, not an object,
//  empty body).
cJSON *rst_api_body_object (const rst_api_req_t *req, rst_api_res_t *res);

//  Route tables (each module's; terminated by {NULL}).
extern const rst_api_route_t rst_auth_routes[];
extern const rst_api_route_t rst_apiq_routes[];
extern const rst_api_route_t rst_spend_routes[];
extern const rst_api_route_t rst_apiadmin_routes[];

#endif
