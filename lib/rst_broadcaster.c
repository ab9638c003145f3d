/*  rst_broadcaster — the live feed over WebSocket (see rst_broadcaster.h,
    schemas/websocket.md).

    Threads (STYLE.md §5: nothing shared but messages):

      loop      the node's main thread: one h2o evloop owns the listener,
                every WebSocket, every client's and owner's state, the
                timers and the metrics. It never waits for PostgreSQL.
      db        one thread with one PGconn: LISTENs on rastro_analytics
                (the aggregator's pg_notify, sent at the commit of each
                batch that added counts, payload = the owner ids) and on
                rastro_sessions (rst_auth's logout, payload = the user id),
                and runs the loop's jobs one at a time: session lookups,
                session re-checks, ownership checks, reads of owners'
                numbers for today.

      loop → db  a pointer to a job, written to a pipe (non-blocking; a
                 full pipe means the database is far behind: the job fails
                 at once). Closing the pipe stops the thread.
      db → loop  the same job back, filled, with h2o_multithread_send_message
                 (c-toolchain.md pitfalls 6, 7); notifications and
                 PostgreSQL's up/down come the same way as jobs the db
                 thread made. One thread and one receiver keep the replies
                 in order, so an owner's numbers never go back in time.

    Why no session cache: a lookup is one indexed row, done once per
    upgrade, and an in-memory copy would have to learn about logouts. The
    upgrade request simply waits for the db thread's answer; if the client
    goes away meanwhile, h2o disposes the request and a hook in its memory
    pool tells the pending lookup to drop the answer.

    Sessions that end: each client keeps the SHA-256 of its session's
    token (what sessions.token_hash holds; never the token). The db thread
    is asked which of a set of hashes are still live (one query, = ANY)
    every refresh_s for every client, after PostgreSQL comes back, and for
    a user's clients when rastro_sessions names the user (POST /logout
    notifies in the statement that deletes the session). The clients whose
    sessions are gone get a close frame with code 4001 (RST_BROADCASTER_
    CLOSE_SESSION_ENDED) and S_CLOSE_WAIT_MS to answer it, as any server
    close. A session never comes back once gone, so a hash found dead
    closes every client holding it, including one that was not in the
    question. So a logout closes its feeds within a moment, an expiry or a
    row deleted by other means within refresh_s; while PostgreSQL is away,
    open feeds stay open (nothing can be checked).

    Upgrade (GET /ws): HTTP/2 → 400 (h2o_upgrade_to_websocket asserts on
    it, pitfall 6); no or a malformed WebSocket handshake → 400; an Origin
    that is neither RASTRO_PUBLIC_URL's origin nor the Host's host → 403;
    too many clients → 503; no rastro_session cookie, or one that is not a
    live session → 401; PostgreSQL away → 503. Else 101 and a client.

    Owners: the numbers of every owner with a client, as the last read
    left them (rst_bcast_day_t). An owner is re-read, once for all its
    clients, when a notification names it, every refresh_s (the safety net
    for a lost notification, and how the day changes at midnight), when a
    client subscribes (so its snapshot is fresh), and after PostgreSQL comes
    back. At most one read per owner is in flight; a change noticed
    meanwhile asks for one more read when it returns.

    Clients:

        UPGRADING --101 written--> OPEN --subscribe--> CHECKING (ids owned?
          one in flight; a newer subscribe waits, replacing an older one)
          --reply--> SUBSCRIBED: errors for ids not owned, then a snapshot
        SUBSCRIBED --owner re-read--> dirty --push--> SUBSCRIBED
        any open --session ended--> closing (close 4001 queued; freed when
          the peer answers or after S_CLOSE_WAIT_MS)
        any --closed by the peer, error, stuck--> freed (once no job of it
          is in flight)

      A push renders only what changed since the last message (rst_bcast)
      and goes out when (a) at least push_ms passed since the previous push
      and (b) the client's outgoing queue is empty (nothing queued in wslay,
      no socket write in flight). Otherwise the client stays dirty and the
      tick (every push_ms) tries again: a slow client gets the newest state
      once it drains, skipped pushes are counted, and it never holds up
      anyone else (the loop never blocks on a socket). A client that stays
      busy for stuck_s, or whose queue exceeds max_queue_kb, is closed
      (counted as a drop). A ping goes to each idle client every ping_s:
      h2o has no timeout after the upgrade, and a dead peer shows up as a
      write error or as stuck.

    Caveats: the owner's time zone is read with its numbers, so a change
    of users.timezone applies at the next read; the counts themselves
    follow analytics_hourly's rules (rst_aggstore). A feed's session is
    re-checked, not slid: an open feed does not keep its session alive
    (the dashboard's API calls do), so a feed can end at the session's
    expiry while the page is open.
*/
#include "rst_broadcaster.h"
#include "rst_auth.h"
#include "rst_bcast.h"
#include "rst_clock.h"
#include "rst_db.h"
#include "rst_log.h"
#include "rst_metrics.h"
#include "rst_netaddr.h"

#include "h2o.h"
#include "h2o/websocket.h"

#include <sodium.h>

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_CLS              "broadcaster"
#define S_TOKEN_MAX        256      //  longest session cookie value looked up
#define S_HEARTBEAT_MS     1000
#define S_CLOSE_WAIT_MS    5000     //  after our close frame, wait this long for the peer's
#define S_MAX_BAD_MESSAGES 20       //  malformed messages before a client is closed
#define S_DB_BACKOFF_MIN   200
#define S_DB_BACKOFF_MAX   5000
#define S_CHANGED_MAX      4096     //  owner ids in one "changed" message
#define S_ORIGIN_MAX       512
#define S_HASH_LEN         crypto_hash_sha256_BYTES  //  a session's token_hash
#define S_ENDED_REASON     "session ended"

// ---------------------------------------------------------------------------
//  Jobs: loop → db → loop

typedef enum {
    S_JOB_AUTH,         //  loop → db: look a session up
    S_JOB_SUBSCRIBE,    //  loop → db: which ids are the owner's; the owner's day
    S_JOB_REFRESH,      //  loop → db: the days of some owners
    S_JOB_CHANGED,      //  db → loop: notified owner ids (in owners)
    S_JOB_PG,           //  db → loop: PostgreSQL up (pg_up = 1) or lost
    S_JOB_SESSIONS,     //  loop → db: which of some session hashes are live
    S_JOB_LOGOUT,       //  db → loop: users who logged out (in owners)
} s_job_kind_t;

typedef struct s_pending_t s_pending_t;
typedef struct s_client_t s_client_t;

typedef struct {
    h2o_multithread_message_t super;    //  first: the job is the message
    s_job_kind_t kind;
    int failed;                         //  db: the database could not answer
    //  S_JOB_AUTH
    s_pending_t *pending;               //  the upgrade waiting (loop's; opaque to db)
    char token[S_TOKEN_MAX + 1];        //  the cookie value; wiped once looked up
    int auth;                           //  db: 1 live session, 0 none
    int64_t user_id;                    //  db: the session's user
    unsigned char session_hash[S_HASH_LEN]; //  db: SHA-256 of the token, when live
    //  S_JOB_SUBSCRIBE
    s_client_t *client;                 //  loop's; opaque to db
    int64_t owner_id;
    rst_bcast_sub_t want;               //  what the client asked for
    rst_bcast_sub_t owned;              //  db: the part of it that is the owner's
    //  S_JOB_REFRESH / S_JOB_CHANGED
    int64_t *owners;                    //  owned
    size_t nowners;
    //  results of SUBSCRIBE and REFRESH
    rst_bcast_day_t **days;             //  owned, each owned
    size_t ndays;
    int pg_up;                          //  S_JOB_PG
    //  S_JOB_SESSIONS
    unsigned char (*hashes)[S_HASH_LEN];    //  owned: the session hashes asked about
    unsigned char *live;                //  owned; db: live[i] = 1 when hashes[i] is live
    size_t nhashes;
} s_job_t;

static void
s_job_destroy (s_job_t **job_p)
{
    s_job_t *job = *job_p;
    if (!job)
        return;
    sodium_memzero (job->token, sizeof job->token);
    rst_bcast_sub_clear (&job->want);
    rst_bcast_sub_clear (&job->owned);
    free (job->owners);
    for (size_t i = 0; i < job->ndays; i++)
        rst_bcast_day_destroy (&job->days[i]);
    free (job->days);
    free (job->hashes);
    free (job->live);
    free (job);
    *job_p = NULL;
}

// ---------------------------------------------------------------------------
//  Loop-side state

//  An owner whose numbers some client watches.
typedef struct {
    h2o_linklist_t link;        //  in self->owners
    int64_t owner_id;
    rst_bcast_day_t *day;       //  owned; NULL until the first read
    h2o_linklist_t clients;     //  s_client_t.owner_link
    size_t nclients;
    int inflight;               //  a read of it is queued at the db thread
    int wanted;                 //  changed while a read was in flight: read again
    int check_sessions;         //  s_check_sessions' mark (only while it runs)
} s_owner_t;

//  An upgrade waiting for its session lookup. HOLDER lives in the
//  request's pool: h2o disposing the request clears PENDING->req.
typedef struct {
    s_pending_t *pending;
} s_holder_t;

struct s_pending_t {
    h2o_linklist_t link;        //  in self->pendings
    h2o_req_t *req;             //  NULL once h2o disposed the request
    s_holder_t *holder;         //  NULL once h2o disposed the request
};

struct s_client_t {
    rst_broadcaster_t *self;
    h2o_linklist_t link;        //  in self->clients (while open)
    h2o_linklist_t owner_link;  //  in owner->clients (while open)
    h2o_websocket_conn_t *conn; //  NULL once closed
    s_owner_t *owner;           //  the logged-in user's numbers; NULL once closed
    int64_t user_id;
    unsigned char session_hash[S_HASH_LEN];   //  SHA-256 of its session's token (not the token)
    rst_bcast_view_t view;      //  what it was sent
    int dirty;                  //  the owner's numbers moved since the last push
    int full;                   //  next push is a snapshot (fresh subscription)
    int sub_inflight;           //  a subscribe job is at the db thread
    rst_bcast_sub_t next_sub;   //  the newest subscribe received meanwhile
    int has_next_sub;
    int closing;                //  our close frame is queued
    int64_t close_deadline_ms;
    int64_t last_push_ms;
    int64_t last_ping_ms;
    int64_t busy_since_ms;      //  0 = its queue drained at the last look
    int bad_messages;
    int depth;                  //  > 0 while inside h2o_websocket_proceed
};

struct rst_broadcaster_t {
    const rst_config_t *cfg;    //  borrowed
    int instance;
    int port;
    int push_ms, ping_s, refresh_s, stuck_s, max_queue_kb, max_clients, max_ids, sndbuf_kb;
    char public_origin[S_ORIGIN_MAX];   //  scheme://host[:port] of RASTRO_PUBLIC_URL, lower case

    h2o_globalconf_t h2o_config;
    int h2o_config_ready;
    h2o_context_t ctx;
    int ctx_ready;
    h2o_accept_ctx_t accept_ctx;
    int listen_fd;
    h2o_socket_t *listener;
    h2o_multithread_receiver_t receiver;    //  db → loop
    h2o_timeout_t tick_timeout;             //  every push_ms
    h2o_timeout_entry_t tick_entry;

    int job_r, job_w;           //  loop → db pipe
    pthread_t db_thread;
    int db_started;

    h2o_linklist_t clients;     //  s_client_t.link
    size_t nclients;
    h2o_linklist_t owners;      //  s_owner_t.link
    size_t nowners;
    h2o_linklist_t pendings;    //  s_pending_t.link
    size_t npendings;
    int pg_up;
    int64_t next_heartbeat_ms, next_refresh_ms;

    rst_metrics_t *metrics;     //  the loop's
    int m_sessions_ended;       //  clients closed because their session ended
    int m_clients, m_owners, m_connections, m_refused_auth, m_refused_origin, m_refused_busy,
        m_refused_bad, m_snapshots, m_updates, m_slow_skips, m_drops, m_bad_messages,
        m_notifications, m_reads, m_db_errors, m_pg_up;
};

typedef struct {
    h2o_handler_t super;
    rst_broadcaster_t *self;
} s_handler_t;

// ---------------------------------------------------------------------------
//  Settings

static int
s_setting (const rst_topology_t *topo, int instance, const char *key, long def, long min,
           long max, int *out, char *err, size_t errlen)
{
    long v = rst_topology_get_long (topo, S_CLS, instance, key, def);
    if (v < min || v > max) {
        snprintf (err, errlen, "topology: [broadcaster] %s must be %ld..%ld, not %ld", key, min,
                  max, v);
        return -1;
    }
    *out = (int) v;
    return 0;
}

//  The origin (scheme://authority, lower case) of URL into OUT; "" when
//  URL has no "://".
static void
s_origin_of (const char *url, char *out, size_t outlen)
{
    out[0] = 0;
    const char *sep = strstr (url, "://");
    if (!sep)
        return;
    const char *end = strchr (sep + 3, '/');
    size_t len = end ? (size_t) (end - url) : strlen (url);
    if (len >= outlen)
        return;
    for (size_t i = 0; i < len; i++)
        out[i] = (char) tolower ((unsigned char) url[i]);
    out[len] = 0;
}

//  The host part of AUTHORITY (no port, no brackets kept for IPv6) into
//  OUT, lower case. Returns 0, or -1 when it does not fit or is empty.
static int
s_host_of (const char *authority, size_t len, char *out, size_t outlen)
{
    const char *p = authority, *end = authority + len;
    const char *host_end;
    if (p < end && *p == '[') {
        host_end = memchr (p, ']', len);
        if (!host_end)
            return -1;
        host_end++;
    }
    else {
        host_end = memchr (p, ':', len);
        if (!host_end)
            host_end = end;
    }
    size_t n = (size_t) (host_end - p);
    if (n == 0 || n >= outlen)
        return -1;
    for (size_t i = 0; i < n; i++)
        out[i] = (char) tolower ((unsigned char) p[i]);
    out[n] = 0;
    return 0;
}

//  1 when the Origin header ORIGIN is acceptable: the public origin, or
//  the same host name as the request's Host (the feed has its own port).
static int
s_origin_ok (const rst_broadcaster_t *self, const char *origin, size_t len, const char *host,
             size_t host_len)
{
    char o[S_ORIGIN_MAX];
    if (len == 0 || len >= sizeof o)
        return 0;
    for (size_t i = 0; i < len; i++)
        o[i] = (char) tolower ((unsigned char) origin[i]);
    o[len] = 0;
    if (self->public_origin[0] && !strcmp (o, self->public_origin))
        return 1;
    const char *sep = strstr (o, "://");
    if (!sep || (strncmp (o, "http://", 7) && strncmp (o, "https://", 8)))
        return 0;
    char oh[S_ORIGIN_MAX], hh[S_ORIGIN_MAX];
    const char *auth = sep + 3;
    if (strchr (auth, '/'))
        return 0;
    if (s_host_of (auth, strlen (auth), oh, sizeof oh) || !host
        || s_host_of (host, host_len, hh, sizeof hh))
        return 0;
    return !strcmp (oh, hh);
}

// ---------------------------------------------------------------------------
//  Database thread

static const char *s_bots_sql =
    "SELECT id FROM bots WHERE owner_id = $1::bigint AND id = ANY ($2::bigint[]) ORDER BY id";

static const char *s_pools_sql =
    "SELECT id FROM pools WHERE owner_id = $1::bigint AND id = ANY ($2::bigint[]) ORDER BY id";

//  Today (owner's zone) per owner: the total, per bot, per pool.
static const char *s_days_sql =
    "WITH o AS ("
    "  SELECT u.id, (now () AT TIME ZONE rastro_timezone (u.timezone))::date AS day"
    "    FROM users u WHERE u.id = ANY ($1::bigint[])"
    ") "
    "SELECT o.id, to_char (o.day, 'YYYY-MM-DD'), GROUPING (h.bot_id, h.pool_id), h.bot_id, h.pool_id,"
    "       COALESCE (sum (h.clicks), 0), COALESCE (sum (h.automated_clicks), 0),"
    "       COALESCE (sum (h.starts), 0), COALESCE (sum (h.checkouts), 0),"
    "       COALESCE (sum (h.purchases), 0), COALESCE (sum (h.revenue_cents), 0)"
    "  FROM o LEFT JOIN analytics_hourly h ON h.owner_id = o.id AND h.day = o.day"
    " GROUP BY GROUPING SETS ((o.id, o.day), (o.id, o.day, h.bot_id), (o.id, o.day, h.pool_id))"
    " ORDER BY 1, 3, 4, 5";

//  Which of the session hashes $1 (hex text) are live.
static const char *s_sessions_sql =
    "SELECT encode (token_hash, 'hex') FROM sessions"
    " WHERE token_hash = ANY (ARRAY (SELECT decode (h, 'hex') FROM unnest ($1::text[]) h))"
    "   AND expires_at > now ()";

typedef struct {
    rst_broadcaster_t *self;
    PGconn *pg;
} s_db_t;

//  "{1,2,3}" for IDS into a new string, or NULL.
static char *
s_array_text (const int64_t *ids, size_t n)
{
    size_t cap = 3 + n * 21;
    char *s = malloc (cap);
    if (!s)
        return NULL;
    size_t len = 0;
    s[len++] = '{';
    for (size_t i = 0; i < n; i++)
        len += (size_t) snprintf (s + len, cap - len, "%s%" PRId64, i ? "," : "", ids[i]);
    s[len++] = '}';
    s[len] = 0;
    return s;
}

static PGresult *
s_query (s_db_t *db, const char *sql, int n, const char *const *values, const int *lengths,
         const int *formats)
{
    PGresult *res = PQexecParams (db->pg, sql, n, NULL, values, lengths, formats, 0);
    if (PQresultStatus (res) == PGRES_TUPLES_OK)
        return res;
    char msg[512];
    snprintf (msg, sizeof msg, "%s", res ? PQresultErrorMessage (res) : PQerrorMessage (db->pg));
    for (char *c = msg; *c; c++)
        if (*c == '\n')
            *c = ' ';
    rst_warn (S_CLS, "libpq: %s", msg);
    PQclear (res);
    return NULL;
}

static int64_t
s_i64 (PGresult *res, int row, int col)
{
    return PQgetisnull (res, row, col) ? 0 : strtoll (PQgetvalue (res, row, col), NULL, 10);
}

//  Reads the days of OWNERS into JOB->days. Returns 0 or -1.
static int
s_db_days (s_db_t *db, const int64_t *owners, size_t n, s_job_t *job)
{
    if (n == 0)
        return 0;
    char *arr = s_array_text (owners, n);
    if (!arr)
        return -1;
    const char *values[] = {arr};
    PGresult *res = s_query (db, s_days_sql, 1, values, NULL, NULL);
    free (arr);
    if (!res)
        return -1;
    int rows = PQntuples (res);
    job->days = calloc (n, sizeof *job->days);
    if (!job->days) {
        PQclear (res);
        return -1;
    }
    rst_bcast_day_t *cur = NULL;
    int rc = 0;
    for (int r = 0; r < rows && rc == 0; r++) {
        int64_t owner = s_i64 (res, r, 0);
        const char *day = PQgetvalue (res, r, 1);
        if (strlen (day) != 10) {
            rc = -1;
            break;
        }
        if (!cur || cur->owner_id != owner) {
            if (job->ndays == n) {
                rc = -1;        //  more owners than asked for: impossible
                break;
            }
            cur = rst_bcast_day_new (owner, day);
            if (!cur) {
                rc = -1;
                break;
            }
            job->days[job->ndays++] = cur;
        }
        rst_bcast_metrics_t m = {s_i64 (res, r, 5), s_i64 (res, r, 6), s_i64 (res, r, 7),
                                 s_i64 (res, r, 8), s_i64 (res, r, 9), s_i64 (res, r, 10)};
        int grouping = (int) s_i64 (res, r, 2);
        if (grouping == 3)
            cur->total = m;
        else if (grouping == 1 && !PQgetisnull (res, r, 3))
            rc = rst_bcast_day_add_bot (cur, s_i64 (res, r, 3), &m);
        else if (grouping == 2 && !PQgetisnull (res, r, 4))
            rc = rst_bcast_day_add_pool (cur, s_i64 (res, r, 4), &m);
    }
    PQclear (res);
    return rc;
}

//  Which of IDS belong to OWNER (SQL is s_bots_sql or s_pools_sql).
static int
s_db_owned (s_db_t *db, const char *sql, int64_t owner, const int64_t *ids, size_t n,
            int64_t **out, size_t *nout)
{
    *out = NULL;
    *nout = 0;
    if (n == 0)
        return 0;
    char owner_text[24];
    snprintf (owner_text, sizeof owner_text, "%" PRId64, owner);
    char *arr = s_array_text (ids, n);
    if (!arr)
        return -1;
    const char *values[] = {owner_text, arr};
    PGresult *res = s_query (db, sql, 2, values, NULL, NULL);
    free (arr);
    if (!res)
        return -1;
    int rows = PQntuples (res);
    *out = calloc ((size_t) rows + 1, sizeof **out);
    if (!*out) {
        PQclear (res);
        return -1;
    }
    for (int r = 0; r < rows; r++)
        (*out)[(*nout)++] = s_i64 (res, r, 0);
    PQclear (res);
    return 0;
}

//  Looks the session of TOKEN up (rst_auth: only its SHA-256 is stored; a
//  live session's expiry slides as for the API). Returns 1 (live; *USER_ID
//  set), 0 or -1.
static int
s_db_session (s_db_t *db, const char *token, int64_t *user_id)
{
    char err[256];
    int rc = rst_auth_session_lookup (db->pg, token, user_id, NULL, 0, NULL, 0, err, sizeof err);
    if (rc < 0)
        rst_warn (S_CLS, "session lookup: %s", err);
    return rc;
}

//  Sets JOB->live[i] for each of JOB->hashes that is a live session.
//  Returns 0 or -1.
static int
s_db_live_sessions (s_db_t *db, s_job_t *job)
{
    if (job->nhashes == 0)
        return 0;
    size_t cap = 3 + job->nhashes * (2 * S_HASH_LEN + 1);
    char *arr = malloc (cap);
    if (!arr)
        return -1;
    size_t len = 0;
    arr[len++] = '{';
    for (size_t i = 0; i < job->nhashes; i++) {
        if (i)
            arr[len++] = ',';
        sodium_bin2hex (arr + len, cap - len, job->hashes[i], S_HASH_LEN);
        len += 2 * S_HASH_LEN;
    }
    arr[len++] = '}';
    arr[len] = 0;
    const char *values[] = {arr};
    PGresult *res = s_query (db, s_sessions_sql, 1, values, NULL, NULL);
    free (arr);
    if (!res)
        return -1;
    for (int r = 0; r < PQntuples (res); r++) {
        unsigned char hash[S_HASH_LEN];
        size_t n = 0;
        const char *hex = PQgetvalue (res, r, 0);
        if (sodium_hex2bin (hash, sizeof hash, hex, strlen (hex), NULL, &n, NULL) || n != S_HASH_LEN)
            continue;
        for (size_t i = 0; i < job->nhashes; i++)
            if (!memcmp (job->hashes[i], hash, S_HASH_LEN))
                job->live[i] = 1;
    }
    PQclear (res);
    return 0;
}

static void
s_db_reply (s_db_t *db, s_job_t *job)
{
    h2o_multithread_send_message (&db->self->receiver, &job->super);
}

static void
s_db_send_pg (s_db_t *db, int up)
{
    s_job_t *job = calloc (1, sizeof *job);
    if (!job)
        return;
    job->kind = S_JOB_PG;
    job->pg_up = up;
    s_db_reply (db, job);
}

static void
s_db_lost (s_db_t *db)
{
    if (!db->pg)
        return;
    rst_warn (S_CLS, "PostgreSQL connection lost: %s", PQerrorMessage (db->pg));
    PQfinish (db->pg);
    db->pg = NULL;
    s_db_send_pg (db, 0);
}

//  Forwards the notifications received so far as one CHANGED job (the
//  rastro_analytics ones) and one LOGOUT job (the rastro_sessions ones).
static void
s_db_notifies (s_db_t *db)
{
    s_job_t *jobs[2] = {NULL, NULL};    //  CHANGED, LOGOUT
    PGnotify *n;
    while (db->pg && (n = PQnotifies (db->pg))) {
        int k = !strcmp (n->relname, RST_BROADCASTER_SESSIONS_CHANNEL);
        s_job_t *job = jobs[k];
        if (!job && (job = calloc (1, sizeof *job))) {
            job->kind = k ? S_JOB_LOGOUT : S_JOB_CHANGED;
            job->owners = calloc (S_CHANGED_MAX, sizeof *job->owners);
            if (!job->owners)
                s_job_destroy (&job);
            jobs[k] = job;
        }
        //  Payload: owner (user) ids separated by commas (rst_aggstore,
        //  rst_auth). Anything else is ignored; the periodic refresh and
        //  session check cover it.
        const char *p = n->extra ? n->extra : "";
        while (job && *p && job->nowners < S_CHANGED_MAX) {
            char *end;
            long long v = strtoll (p, &end, 10);
            if (end == p)
                break;
            if (v > 0)
                job->owners[job->nowners++] = (int64_t) v;
            p = *end == ',' ? end + 1 : end;
            if (*end && *end != ',')
                break;
        }
        PQfreemem (n);
    }
    for (int k = 0; k < 2; k++)
        if (jobs[k])
            s_db_reply (db, jobs[k]);
}

static void
s_db_run_job (s_db_t *db, s_job_t *job)
{
    int rc = -1;
    if (db->pg) {
        switch (job->kind) {
        case S_JOB_AUTH:
            rc = s_db_session (db, job->token, &job->user_id);
            job->auth = rc == 1;
            if (job->auth)      //  as rst_auth stores it: SHA-256 of the cookie value
                crypto_hash_sha256 (job->session_hash, (const unsigned char *) job->token,
                                    strlen (job->token));
            break;
        case S_JOB_SESSIONS:
            rc = s_db_live_sessions (db, job);
            break;
        case S_JOB_SUBSCRIBE:
            rc = s_db_owned (db, s_bots_sql, job->owner_id, job->want.bots, job->want.nbots,
                             &job->owned.bots, &job->owned.nbots);
            if (rc == 0)
                rc = s_db_owned (db, s_pools_sql, job->owner_id, job->want.pools,
                                 job->want.npools, &job->owned.pools, &job->owned.npools);
            if (rc == 0)
                rc = s_db_days (db, &job->owner_id, 1, job);
            break;
        case S_JOB_REFRESH:
            rc = s_db_days (db, job->owners, job->nowners, job);
            break;
        default:
            assert (0);
        }
    }
    sodium_memzero (job->token, sizeof job->token);
    job->failed = rc < 0;
    if (rc < 0 && db->pg && PQstatus (db->pg) != CONNECTION_OK)
        s_db_lost (db);
    s_db_reply (db, job);
    s_db_notifies (db);
}

static void
s_db_connect (s_db_t *db)
{
    char err[512];
    db->pg = rst_db_connect (db->self->cfg, err, sizeof err);
    if (!db->pg) {
        rst_warn (S_CLS, "PostgreSQL: %s", err);
        return;
    }
    if (rst_db_exec (db->pg, "LISTEN " RST_BROADCASTER_CHANNEL, err, sizeof err)
        || rst_db_exec (db->pg, "LISTEN " RST_BROADCASTER_SESSIONS_CHANNEL, err, sizeof err)) {
        rst_warn (S_CLS, "PostgreSQL: LISTEN: %s", err);
        PQfinish (db->pg);
        db->pg = NULL;
        return;
    }
    rst_info (S_CLS, "PostgreSQL connected, listening on %s and %s", RST_BROADCASTER_CHANNEL,
              RST_BROADCASTER_SESSIONS_CHANNEL);
    s_db_send_pg (db, 1);
}

static void *
s_db_main (void *arg)
{
    s_db_t db = {.self = arg, .pg = NULL};
    int backoff = S_DB_BACKOFF_MIN;
    int64_t next_connect = 0;
    unsigned char buf[64 * sizeof (s_job_t *)];
    size_t have = 0;
    for (;;) {
        int64_t now = rst_clock_mono_ms ();
        if (!db.pg && now >= next_connect) {
            s_db_connect (&db);
            if (db.pg)
                backoff = S_DB_BACKOFF_MIN;
            else {
                next_connect = now + backoff;
                backoff = backoff * 2 > S_DB_BACKOFF_MAX ? S_DB_BACKOFF_MAX : backoff * 2;
            }
        }
        struct pollfd fds[2] = {{.fd = db.self->job_r, .events = POLLIN},
                                {.fd = db.pg ? PQsocket (db.pg) : -1, .events = POLLIN}};
        int timeout = -1;
        if (!db.pg) {
            int64_t wait = next_connect - rst_clock_mono_ms ();
            timeout = wait < 0 ? 0 : (int) wait;
        }
        if (poll (fds, 2, timeout) < 0) {
            if (errno == EINTR)
                continue;
            rst_error (S_CLS, "poll: %s", strerror (errno));
            break;
        }
        if (db.pg && (fds[1].revents & (POLLIN | POLLERR | POLLHUP))) {
            if (!PQconsumeInput (db.pg))
                s_db_lost (&db);
            else
                s_db_notifies (&db);
        }
        if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = read (db.self->job_r, buf + have, sizeof buf - have);
            if (n == 0)
                break;          //  the loop closed the pipe: stop
            if (n < 0) {
                if (errno == EINTR || errno == EAGAIN)
                    continue;
                rst_error (S_CLS, "read: %s", strerror (errno));
                break;
            }
            have += (size_t) n;
            size_t used = 0;
            while (have - used >= sizeof (s_job_t *)) {
                s_job_t *job;
                memcpy (&job, buf + used, sizeof job);
                used += sizeof job;
                s_db_run_job (&db, job);
            }
            memmove (buf, buf + used, have - used);
            have -= used;
        }
    }
    if (db.pg)
        PQfinish (db.pg);
    return NULL;
}

// ---------------------------------------------------------------------------
//  Loop: helpers

//  Hands JOB to the db thread. Returns 0, or -1 (the pipe is full or
//  closed: the caller still owns JOB).
static int
s_submit (rst_broadcaster_t *self, s_job_t *job)
{
    ssize_t n = write (self->job_w, &job, sizeof job);
    if (n == (ssize_t) sizeof job)
        return 0;
    rst_metrics_inc (self->metrics, self->m_db_errors, 1);
    return -1;
}

static void
s_respond (h2o_req_t *req, int status, const char *reason, const char *body)
{
    req->res.status = status;
    req->res.reason = reason;
    h2o_add_header (&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                    H2O_STRLIT ("application/json; charset=utf-8"));
    h2o_add_header (&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                    H2O_STRLIT ("no-store"));
    size_t len = strlen (body);
    req->res.content_length = len;      //  keep-alive needs it (c-toolchain.md pitfall 4)
    h2o_send_inline (req, body, len);
}

static s_owner_t *
s_owner_find (rst_broadcaster_t *self, int64_t owner_id)
{
    for (h2o_linklist_t *l = self->owners.next; l != &self->owners; l = l->next) {
        s_owner_t *o = H2O_STRUCT_FROM_MEMBER (s_owner_t, link, l);
        if (o->owner_id == owner_id)
            return o;
    }
    return NULL;
}

static s_owner_t *
s_owner_get (rst_broadcaster_t *self, int64_t owner_id)
{
    s_owner_t *o = s_owner_find (self, owner_id);
    if (o)
        return o;
    o = calloc (1, sizeof *o);
    if (!o)
        return NULL;
    o->owner_id = owner_id;
    h2o_linklist_init_anchor (&o->clients);
    h2o_linklist_insert (&self->owners, &o->link);
    self->nowners++;
    return o;
}

static void
s_owner_free (rst_broadcaster_t *self, s_owner_t *o)
{
    h2o_linklist_unlink (&o->link);
    self->nowners--;
    rst_bcast_day_destroy (&o->day);
    free (o);
}

//  Queues TEXT (LEN bytes) as a text frame. Returns 0 or -1 (no memory).
static int
s_queue_text (s_client_t *c, const char *text, size_t len)
{
    struct wslay_event_msg msg = {WSLAY_TEXT_FRAME, (const uint8_t *) text, len};
    return wslay_event_queue_msg (c->conn->ws_ctx, &msg) ? -1 : 0;
}

static void
s_queue_error (s_client_t *c, const char *reason, const char *kind, int64_t id)
{
    size_t len;
    char *text = rst_bcast_error_json (reason, kind, id, &len);
    if (text)
        s_queue_text (c, text, len);
    free (text);
}

//  1 when C's outgoing queue is not empty: wslay holds frames, or h2o is
//  writing (it takes one frame at a time, pitfall 6).
static int
s_is_busy (const s_client_t *c)
{
    return !c->conn->sock || h2o_socket_is_writing (c->conn->sock)
           || wslay_event_get_queued_msg_count (c->conn->ws_ctx) > 0;
}

//  Frees C once it is closed, no job of it is in flight and no
//  h2o_websocket_proceed of ours is running on it.
static void
s_client_release (s_client_t *c)
{
    if (c->conn || c->sub_inflight || c->depth)
        return;
    rst_bcast_view_clear (&c->view);
    rst_bcast_sub_clear (&c->next_sub);
    free (c);
}

//  Detaches C from its owner and the client list, closes the WebSocket
//  (never from inside C's message callback) and releases C.
static void
s_client_close_now (s_client_t *c)
{
    rst_broadcaster_t *self = c->self;
    if (c->conn) {
        h2o_websocket_close (c->conn);
        c->conn = NULL;
        h2o_linklist_unlink (&c->link);
        self->nclients--;
        rst_metrics_set (self->metrics, self->m_clients, (double) self->nclients);
        if (c->owner) {
            h2o_linklist_unlink (&c->owner_link);
            c->owner->nclients--;
            c->owner = NULL;
        }
    }
    s_client_release (c);
}

//  Lets h2o send what was queued for C. C may be freed on return when
//  the connection failed: returns -1 then (do not touch C), else 0.
static int
s_client_proceed (s_client_t *c)
{
    if (!c->conn || !c->conn->sock)
        return 0;               //  the 101 is not written yet: h2o proceeds then
    c->depth++;
    h2o_websocket_proceed (c->conn);
    c->depth--;
    if (!c->conn) {
        s_client_release (c);
        return -1;
    }
    return 0;
}

//  Pushes what C needs when allowed (see the file comment). FORCE skips
//  the push_ms spacing and the busy check (a subscribe's snapshot).
//  Returns as s_client_proceed.
static int
s_client_flush (s_client_t *c, int force, int64_t now)
{
    rst_broadcaster_t *self = c->self;
    if (!c->conn || c->closing || !c->dirty || !c->view.has_sub || !c->owner || !c->owner->day)
        return 0;
    //  FORCE (a subscribe's answer: one in flight per client) queues behind
    //  whatever is queued; the tick's max_queue_kb check still bounds it.
    if (!force && s_is_busy (c)) {
        if (!c->busy_since_ms)
            c->busy_since_ms = now;
        rst_metrics_inc (self->metrics, self->m_slow_skips, 1);
        return 0;
    }
    if (!force)
        c->busy_since_ms = 0;
    if (!force && now - c->last_push_ms < self->push_ms)
        return 0;               //  the tick comes back for it
    char *text;
    size_t len;
    int rc = rst_bcast_view_render (&c->view, c->owner->day, c->full, &text, &len);
    if (rc < 0)
        return 0;               //  no memory: stays dirty, tried again at the tick
    c->dirty = 0;
    c->full = 0;
    if (rc == 0)
        return 0;
    int snapshot = !strncmp (text, "{\"type\":\"snapshot\"", 18);
    int queued = s_queue_text (c, text, len);
    free (text);
    if (queued) {
        s_client_close_now (c);
        return -1;
    }
    c->last_push_ms = now;
    rst_metrics_inc (self->metrics, snapshot ? self->m_snapshots : self->m_updates, 1);
    return s_client_proceed (c);
}

// ---------------------------------------------------------------------------
//  Loop: owners' numbers

//  Asks the db thread for the days of the owners in IDS that are watched
//  and not being read (a read in flight is asked to repeat instead).
static void
s_request_days (rst_broadcaster_t *self, const int64_t *ids, size_t n)
{
    s_job_t *job = calloc (1, sizeof *job);
    if (!job || !(job->owners = calloc (n + 1, sizeof *job->owners))) {
        free (job);
        return;
    }
    job->kind = S_JOB_REFRESH;
    for (size_t i = 0; i < n; i++) {
        s_owner_t *o = s_owner_find (self, ids[i]);
        if (!o || !o->nclients)
            continue;
        if (o->inflight) {
            o->wanted = 1;
            continue;
        }
        o->inflight = 1;
        job->owners[job->nowners++] = o->owner_id;
    }
    if (job->nowners == 0 || s_submit (self, job)) {
        for (size_t i = 0; i < job->nowners; i++) {
            s_owner_t *o = s_owner_find (self, job->owners[i]);
            if (o)
                o->inflight = 0;
        }
        s_job_destroy (&job);
    }
}

static void
s_refresh_all (rst_broadcaster_t *self)
{
    if (!self->nowners)
        return;
    int64_t *ids = calloc (self->nowners, sizeof *ids);
    if (!ids)
        return;
    size_t n = 0;
    for (h2o_linklist_t *l = self->owners.next; l != &self->owners && n < self->nowners;
         l = l->next)
        ids[n++] = H2O_STRUCT_FROM_MEMBER (s_owner_t, link, l)->owner_id;
    s_request_days (self, ids, n);
    free (ids);
}

//  Takes *DAY_P as its owner's numbers and pushes to the owner's clients.
static void
s_apply_day (rst_broadcaster_t *self, rst_bcast_day_t **day_p)
{
    rst_bcast_day_t *day = *day_p;
    *day_p = NULL;
    s_owner_t *o = s_owner_find (self, day->owner_id);
    if (!o) {
        rst_bcast_day_destroy (&day);
        return;
    }
    rst_metrics_inc (self->metrics, self->m_reads, 1);
    rst_bcast_day_destroy (&o->day);
    o->day = day;
    int64_t now = rst_clock_mono_ms ();
    h2o_linklist_t *l = o->clients.next;
    while (l != &o->clients) {
        s_client_t *c = H2O_STRUCT_FROM_MEMBER (s_client_t, owner_link, l);
        l = l->next;            //  C may go away in the flush
        c->dirty = 1;
        s_client_flush (c, 0, now);
    }
}

// ---------------------------------------------------------------------------
//  Loop: sessions that end

//  Closes C's feed with the "session ended" close code (never called from
//  C's message callback). C may be freed on return.
static void
s_client_end_session (s_client_t *c, int64_t now)
{
    rst_broadcaster_t *self = c->self;
    rst_info (S_CLS, "closing a client of user %" PRId64 ": its session ended", c->user_id);
    rst_metrics_inc (self->metrics, self->m_sessions_ended, 1);
    wslay_event_queue_close (c->conn->ws_ctx, RST_BROADCASTER_CLOSE_SESSION_ENDED,
                             (const uint8_t *) S_ENDED_REASON, sizeof S_ENDED_REASON - 1);
    c->closing = 1;
    c->close_deadline_ms = now + S_CLOSE_WAIT_MS;
    s_client_proceed (c);
}

//  1 when C is open and not closing: its session is worth checking.
static int
s_client_is_live (const s_client_t *c)
{
    return c->conn && !c->closing;
}

//  Asks the db thread which sessions of the clients of the users in OWNERS
//  (every client when OWNERS is NULL) are still live; s_on_sessions closes
//  the others. Failures are left to the next periodic check.
static void
s_check_sessions (rst_broadcaster_t *self, const int64_t *owners, size_t n)
{
    for (size_t i = 0; owners && i < n; i++) {
        s_owner_t *o = s_owner_find (self, owners[i]);
        if (o)
            o->check_sessions = 1;
    }
    size_t count = 0;
    for (h2o_linklist_t *l = self->clients.next; l != &self->clients; l = l->next) {
        s_client_t *c = H2O_STRUCT_FROM_MEMBER (s_client_t, link, l);
        if (s_client_is_live (c) && (!owners || (c->owner && c->owner->check_sessions)))
            count++;
    }
    s_job_t *job = count ? calloc (1, sizeof *job) : NULL;
    if (job) {
        job->kind = S_JOB_SESSIONS;
        job->hashes = calloc (count, sizeof *job->hashes);
        job->live = calloc (count, 1);
    }
    if (job && job->hashes && job->live) {
        for (h2o_linklist_t *l = self->clients.next; l != &self->clients && job->nhashes < count;
             l = l->next) {
            s_client_t *c = H2O_STRUCT_FROM_MEMBER (s_client_t, link, l);
            if (s_client_is_live (c) && (!owners || (c->owner && c->owner->check_sessions)))
                memcpy (job->hashes[job->nhashes++], c->session_hash, S_HASH_LEN);
        }
        if (s_submit (self, job) == 0)
            job = NULL;
    }
    s_job_destroy (&job);
    for (size_t i = 0; owners && i < n; i++) {
        s_owner_t *o = s_owner_find (self, owners[i]);
        if (o)
            o->check_sessions = 0;
    }
}

static int
s_hash_cmp (const void *a, const void *b)
{
    return memcmp (a, b, S_HASH_LEN);
}

//  The db thread's answer to s_check_sessions: closes every client whose
//  session was found gone (a session never comes back, so this holds for
//  clients that were not in the question too).
static void
s_on_sessions (rst_broadcaster_t *self, s_job_t *job)
{
    if (job->failed) {
        rst_metrics_inc (self->metrics, self->m_db_errors, 1);
        return;
    }
    //  The dead hashes, sorted, at the front of JOB->hashes.
    size_t ndead = 0;
    for (size_t i = 0; i < job->nhashes; i++)
        if (!job->live[i])
            memmove (job->hashes[ndead++], job->hashes[i], S_HASH_LEN);
    if (ndead == 0)
        return;
    qsort (job->hashes, ndead, S_HASH_LEN, s_hash_cmp);
    int64_t now = rst_clock_mono_ms ();
    h2o_linklist_t *l = self->clients.next;
    while (l != &self->clients) {
        s_client_t *c = H2O_STRUCT_FROM_MEMBER (s_client_t, link, l);
        l = l->next;            //  C may go away below
        if (s_client_is_live (c) && bsearch (c->session_hash, job->hashes, ndead, S_HASH_LEN,
                                             s_hash_cmp))
            s_client_end_session (c, now);
    }
}

// ---------------------------------------------------------------------------
//  Loop: replies from the db thread

static void s_client_subscribe (s_client_t *c, rst_bcast_sub_t *sub);

static void
s_on_auth (rst_broadcaster_t *self, s_job_t *job);

//  Asks again for the owners that changed while they were being read.
static void
s_request_wanted (rst_broadcaster_t *self)
{
    int64_t again[64];
    size_t n = 0;
    for (h2o_linklist_t *l = self->owners.next; l != &self->owners; l = l->next) {
        s_owner_t *o = H2O_STRUCT_FROM_MEMBER (s_owner_t, link, l);
        if (o->wanted && !o->inflight && n < sizeof again / sizeof again[0]) {
            o->wanted = 0;
            again[n++] = o->owner_id;
        }
    }
    if (n)
        s_request_days (self, again, n);
}

static void
s_on_subscribed (rst_broadcaster_t *self, s_job_t *job)
{
    s_client_t *c = job->client;
    c->sub_inflight = 0;
    c->depth++;                 //  pinned: pushes below may close it
    if (c->conn && job->failed) {
        rst_metrics_inc (self->metrics, self->m_db_errors, 1);
        s_queue_error (c, "unavailable", NULL, 0);
    }
    else if (c->conn) {
        //  The owner's numbers first: they are fresh, for every client of it.
        for (size_t i = 0; i < job->ndays; i++)
            s_apply_day (self, &job->days[i]);
        if (c->conn) {
            for (size_t i = 0; i < job->want.nbots; i++)
                if (!rst_bcast_has_id (job->owned.bots, job->owned.nbots, job->want.bots[i]))
                    s_queue_error (c, "not found", "bot", job->want.bots[i]);
            for (size_t i = 0; i < job->want.npools; i++)
                if (!rst_bcast_has_id (job->owned.pools, job->owned.npools, job->want.pools[i]))
                    s_queue_error (c, "not found", "pool", job->want.pools[i]);
            if (rst_bcast_view_subscribe (&c->view, &job->owned) == 0) {
                c->dirty = 1;
                c->full = 1;
            }
        }
    }
    if (c->conn && c->has_next_sub) {
        rst_bcast_sub_t next = c->next_sub;
        memset (&c->next_sub, 0, sizeof c->next_sub);
        c->has_next_sub = 0;
        s_client_subscribe (c, &next);
    }
    if (c->conn && s_client_flush (c, 1, rst_clock_mono_ms ()) == 0 && c->conn)
        s_client_proceed (c);   //  the errors, when there was no snapshot
    c->depth--;
    s_client_release (c);
}

static void
s_on_message (h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    rst_broadcaster_t *self = H2O_STRUCT_FROM_MEMBER (rst_broadcaster_t, receiver, receiver);
    while (!h2o_linklist_is_empty (messages)) {
        h2o_multithread_message_t *msg
            = H2O_STRUCT_FROM_MEMBER (h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink (&msg->link);
        s_job_t *job = (s_job_t *) msg;
        switch (job->kind) {
        case S_JOB_AUTH:
            s_on_auth (self, job);
            break;
        case S_JOB_SUBSCRIBE:
            s_on_subscribed (self, job);
            break;
        case S_JOB_REFRESH:
            if (job->failed)
                rst_metrics_inc (self->metrics, self->m_db_errors, 1);
            for (size_t i = 0; i < job->nowners; i++) {
                s_owner_t *o = s_owner_find (self, job->owners[i]);
                if (o)
                    o->inflight = 0;
            }
            for (size_t i = 0; i < job->ndays; i++)
                s_apply_day (self, &job->days[i]);
            s_request_wanted (self);
            break;
        case S_JOB_CHANGED:
            rst_metrics_inc (self->metrics, self->m_notifications, 1);
            s_request_days (self, job->owners, job->nowners);
            break;
        case S_JOB_PG:
            self->pg_up = job->pg_up;
            rst_metrics_set (self->metrics, self->m_pg_up, job->pg_up);
            if (job->pg_up) {
                s_refresh_all (self);   //  notifications may have been missed
                s_check_sessions (self, NULL, 0);
            }
            break;
        case S_JOB_SESSIONS:
            s_on_sessions (self, job);
            break;
        case S_JOB_LOGOUT:
            for (size_t i = 0; i < job->nowners; i++)
                rst_info (S_CLS, "user %" PRId64 " logged out: checking its clients' sessions",
                          job->owners[i]);
            s_check_sessions (self, job->owners, job->nowners);
            break;
        }
        s_job_destroy (&job);
    }
}

// ---------------------------------------------------------------------------
//  Loop: WebSocket clients

static void
s_client_subscribe (s_client_t *c, rst_bcast_sub_t *sub)
{
    if (c->sub_inflight) {      //  one at a time; the newest waits
        rst_bcast_sub_move (&c->next_sub, sub);
        c->has_next_sub = 1;
        return;
    }
    s_job_t *job = calloc (1, sizeof *job);
    if (!job) {
        rst_bcast_sub_clear (sub);
        s_queue_error (c, "unavailable", NULL, 0);
        return;
    }
    job->kind = S_JOB_SUBSCRIBE;
    job->client = c;
    job->owner_id = c->user_id;
    rst_bcast_sub_move (&job->want, sub);
    if (s_submit (c->self, job)) {
        s_job_destroy (&job);
        s_queue_error (c, "unavailable", NULL, 0);
        return;
    }
    c->sub_inflight = 1;
}

//  h2o's callback for C's connection (runs inside h2o_websocket_proceed:
//  queue frames, never close the connection here).
static void
s_on_ws (h2o_websocket_conn_t *conn, const struct wslay_event_on_msg_recv_arg *arg)
{
    s_client_t *c = conn->data;
    rst_broadcaster_t *self = c->self;
    if (!arg) {                 //  closed, or an error: the one place h2o lets us free
        s_client_close_now (c);
        return;
    }
    if (wslay_is_ctrl_frame (arg->opcode) || c->closing)
        return;                 //  wslay answers pings and closes itself
    char err[64];
    rst_bcast_sub_t sub;
    int rc = -1;
    if (arg->opcode != WSLAY_TEXT_FRAME)
        snprintf (err, sizeof err, "text frames only");
    else
        rc = rst_bcast_parse ((const char *) arg->msg, arg->msg_length, (size_t) self->max_ids,
                              &sub, err, sizeof err);
    if (rc != RST_BCAST_SUBSCRIBE) {
        rst_metrics_inc (self->metrics, self->m_bad_messages, 1);
        if (++c->bad_messages > S_MAX_BAD_MESSAGES) {
            wslay_event_queue_close (conn->ws_ctx, 1008, (const uint8_t *) "too many bad messages",
                                     21);
            c->closing = 1;
            c->close_deadline_ms = rst_clock_mono_ms () + S_CLOSE_WAIT_MS;
            return;
        }
        s_queue_error (c, err, NULL, 0);
        return;
    }
    s_client_subscribe (c, &sub);
}

static void
s_upgrade (rst_broadcaster_t *self, h2o_req_t *req, int64_t user_id,
           const unsigned char session_hash[S_HASH_LEN])
{
    const char *key;
    if (h2o_is_websocket_handshake (req, &key) || !key) {
        s_respond (req, 400, "Bad Request", "{\"error\":\"websocket handshake expected\"}");
        return;
    }
    s_client_t *c = calloc (1, sizeof *c);
    s_owner_t *o = c ? s_owner_get (self, user_id) : NULL;
    if (!o) {
        free (c);
        s_respond (req, 503, "Service Unavailable", "{\"error\":\"no memory\"}");
        return;
    }
    c->self = self;
    c->user_id = user_id;
    memcpy (c->session_hash, session_hash, S_HASH_LEN);
    c->owner = o;
    rst_bcast_view_init (&c->view);
    int64_t now = rst_clock_mono_ms ();
    c->last_ping_ms = now;
    c->last_push_ms = now - self->push_ms;
    h2o_linklist_insert (&o->clients, &c->owner_link);
    o->nclients++;
    h2o_linklist_insert (&self->clients, &c->link);
    self->nclients++;
    rst_metrics_set (self->metrics, self->m_clients, (double) self->nclients);
    rst_metrics_inc (self->metrics, self->m_connections, 1);
    c->conn = h2o_upgrade_to_websocket (req, key, c, s_on_ws);
    wslay_event_config_set_max_recv_msg_length (c->conn->ws_ctx, RST_BCAST_MAX_MSG);
    rst_debug (S_CLS, "client of user %" PRId64 " connected (%zu clients)", user_id,
               self->nclients);
}

static void
s_on_auth (rst_broadcaster_t *self, s_job_t *job)
{
    s_pending_t *p = job->pending;
    h2o_linklist_unlink (&p->link);
    self->npendings--;
    h2o_req_t *req = p->req;
    if (p->holder)
        p->holder->pending = NULL;
    free (p);
    if (!req)
        return;                 //  the client went away meanwhile
    if (job->failed) {
        rst_metrics_inc (self->metrics, self->m_db_errors, 1);
        s_respond (req, 503, "Service Unavailable", "{\"error\":\"unavailable\"}");
    }
    else if (!job->auth) {
        rst_metrics_inc (self->metrics, self->m_refused_auth, 1);
        s_respond (req, 401, "Unauthorized", "{\"error\":\"login required\"}");
    }
    else
        s_upgrade (self, req, job->user_id, job->session_hash);
}

//  h2o disposes a request whose lookup may still be pending.
static void
s_on_req_dispose (void *mem)
{
    s_holder_t *h = mem;
    if (h->pending) {
        h->pending->req = NULL;
        h->pending->holder = NULL;
    }
}

//  Copies the rastro_session cookie's (RST_API_COOKIE) value into OUT. Returns 1, 0 when
//  absent, -1 when malformed (too long, odd characters).
static int
s_session_cookie (h2o_req_t *req, char *out, size_t outlen)
{
    ssize_t i = -1;
    while ((i = h2o_find_header (&req->headers, H2O_TOKEN_COOKIE, i)) != -1) {
        const h2o_iovec_t *v = &req->headers.entries[i].value;
        //  Finds name=value among "a=1; b=2" pairs.
        const char *p = v->base, *end = v->base + v->len;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == ';'))
                p++;
            const char *pair = p;
            while (p < end && *p != ';')
                p++;
            const char *eq = memchr (pair, '=', (size_t) (p - pair));
            if (!eq)
                continue;
            size_t nlen = (size_t) (eq - pair);
            while (nlen > 0 && pair[nlen - 1] == ' ')
                nlen--;
            if (nlen != strlen (RST_API_COOKIE) || memcmp (pair, RST_API_COOKIE, nlen))
                continue;
            const char *val = eq + 1;
            size_t vlen = (size_t) (p - val);
            while (vlen > 0 && val[vlen - 1] == ' ')
                vlen--;
            if (vlen >= 2 && val[0] == '"' && val[vlen - 1] == '"') {
                val++;
                vlen -= 2;
            }
            if (vlen == 0 || vlen >= outlen)
                return -1;
            for (size_t k = 0; k < vlen; k++)
                if ((unsigned char) val[k] <= 0x20 || (unsigned char) val[k] >= 0x7f
                    || val[k] == '"' || val[k] == '\\' || val[k] == ',')
                    return -1;
            memcpy (out, val, vlen);
            out[vlen] = 0;
            return 1;
        }
    }
    return 0;
}

static int
s_on_req_ws (h2o_handler_t *handler, h2o_req_t *req)
{
    rst_broadcaster_t *self = ((s_handler_t *) handler)->self;
    if (req->version >= 0x200) {        //  h2o_upgrade_to_websocket asserts on HTTP/2
        rst_metrics_inc (self->metrics, self->m_refused_bad, 1);
        s_respond (req, 400, "Bad Request", "{\"error\":\"websocket needs HTTP/1.1\"}");
        return 0;
    }
    const char *key;
    if (h2o_is_websocket_handshake (req, &key) || !key) {
        rst_metrics_inc (self->metrics, self->m_refused_bad, 1);
        s_respond (req, 400, "Bad Request", "{\"error\":\"websocket handshake expected\"}");
        return 0;
    }
    ssize_t oi = h2o_find_header_by_str (&req->headers, H2O_STRLIT ("origin"), -1);
    if (oi != -1) {
        const h2o_iovec_t *o = &req->headers.entries[oi].value;
        if (!s_origin_ok (self, o->base, o->len, req->authority.base, req->authority.len)) {
            rst_metrics_inc (self->metrics, self->m_refused_origin, 1);
            s_respond (req, 403, "Forbidden", "{\"error\":\"origin not allowed\"}");
            return 0;
        }
    }
    if (self->nclients + self->npendings >= (size_t) self->max_clients) {
        rst_metrics_inc (self->metrics, self->m_refused_busy, 1);
        s_respond (req, 503, "Service Unavailable", "{\"error\":\"too many clients\"}");
        return 0;
    }
    s_job_t *job = calloc (1, sizeof *job);
    if (!job) {
        s_respond (req, 503, "Service Unavailable", "{\"error\":\"no memory\"}");
        return 0;
    }
    job->kind = S_JOB_AUTH;
    if (s_session_cookie (req, job->token, sizeof job->token) != 1) {
        s_job_destroy (&job);
        rst_metrics_inc (self->metrics, self->m_refused_auth, 1);
        s_respond (req, 401, "Unauthorized", "{\"error\":\"login required\"}");
        return 0;
    }
    s_pending_t *p = calloc (1, sizeof *p);
    if (!p) {
        s_job_destroy (&job);
        s_respond (req, 503, "Service Unavailable", "{\"error\":\"no memory\"}");
        return 0;
    }
    job->pending = p;
    if (s_submit (self, job)) {
        free (p);
        s_job_destroy (&job);
        s_respond (req, 503, "Service Unavailable", "{\"error\":\"unavailable\"}");
        return 0;
    }
    p->req = req;
    p->holder = h2o_mem_alloc_shared (&req->pool, sizeof *p->holder, s_on_req_dispose);
    p->holder->pending = p;
    h2o_linklist_insert (&self->pendings, &p->link);
    self->npendings++;
    return 0;
}

static int
s_on_req_healthz (h2o_handler_t *handler, h2o_req_t *req)
{
    rst_broadcaster_t *self = ((s_handler_t *) handler)->self;
    s_respond (req, self->pg_up ? 200 : 503, self->pg_up ? "OK" : "Service Unavailable",
               self->pg_up ? "{\"status\":\"ok\"}" : "{\"status\":\"postgres down\"}");
    return 0;
}

// ---------------------------------------------------------------------------
//  Loop: the tick (every push_ms)

static void
s_on_tick (h2o_timeout_entry_t *entry)
{
    rst_broadcaster_t *self = H2O_STRUCT_FROM_MEMBER (rst_broadcaster_t, tick_entry, entry);
    int64_t now = rst_clock_mono_ms ();
    size_t max_queue = (size_t) self->max_queue_kb * 1024;
    h2o_linklist_t *l = self->clients.next;
    while (l != &self->clients) {
        s_client_t *c = H2O_STRUCT_FROM_MEMBER (s_client_t, link, l);
        l = l->next;            //  C may be freed below
        if (!c->conn->sock)
            continue;           //  the 101 is still being written
        if (!c->closing && wslay_event_get_close_sent (c->conn->ws_ctx)) {
            //  wslay closed it (a protocol error, a frame too big): the
            //  peer has S_CLOSE_WAIT_MS to answer before we hang up.
            c->closing = 1;
            c->close_deadline_ms = now + S_CLOSE_WAIT_MS;
        }
        if (c->closing) {
            if (now >= c->close_deadline_ms)
                s_client_close_now (c);
            continue;
        }
        int busy = s_is_busy (c);
        if (busy && !c->busy_since_ms)
            c->busy_since_ms = now;
        else if (!busy)
            c->busy_since_ms = 0;
        if ((busy && now - c->busy_since_ms > (int64_t) self->stuck_s * 1000)
            || wslay_event_get_queued_msg_length (c->conn->ws_ctx) > max_queue) {
            rst_info (S_CLS, "closing a stuck client of user %" PRId64 " (not reading)",
                      c->user_id);
            rst_metrics_inc (self->metrics, self->m_drops, 1);
            s_client_close_now (c);
            continue;
        }
        if (c->dirty) {
            if (s_client_flush (c, 0, now) < 0)
                continue;
        }
        else if (!busy && now - c->last_ping_ms >= (int64_t) self->ping_s * 1000) {
            c->last_ping_ms = now;
            struct wslay_event_msg ping = {WSLAY_PING, (const uint8_t *) "", 0};
            if (wslay_event_queue_msg (c->conn->ws_ctx, &ping) == 0)
                s_client_proceed (c);
        }
    }
    if (now >= self->next_refresh_ms) {
        self->next_refresh_ms = now + (int64_t) self->refresh_s * 1000;
        //  Owners nobody watches any more go first.
        h2o_linklist_t *ol = self->owners.next;
        while (ol != &self->owners) {
            s_owner_t *o = H2O_STRUCT_FROM_MEMBER (s_owner_t, link, ol);
            ol = ol->next;
            if (!o->nclients && !o->inflight)
                s_owner_free (self, o);
        }
        s_refresh_all (self);
        s_check_sessions (self, NULL, 0);
    }
    if (now >= self->next_heartbeat_ms) {
        self->next_heartbeat_ms = now + S_HEARTBEAT_MS;
        rst_metrics_set (self->metrics, self->m_owners, (double) self->nowners);
        rst_metrics_heartbeat (self->metrics, self->cfg->data_dir, S_CLS, self->instance);
    }
    h2o_timeout_link (self->ctx.loop, &self->tick_timeout, &self->tick_entry);
}

static void
s_on_accept (h2o_socket_t *listener, const char *err)
{
    if (err)
        return;
    rst_broadcaster_t *self = listener->data;
    for (int i = 0; i < 16; i++) {
        h2o_socket_t *sock = h2o_evloop_socket_accept (listener);
        if (!sock)
            break;
        h2o_accept (&self->accept_ctx, sock);
    }
}

// ---------------------------------------------------------------------------
//  Life cycle

static void
s_metrics_init (rst_broadcaster_t *self)
{
    rst_metrics_t *m = self->metrics;
    self->m_clients = rst_metrics_add (m, RST_METRIC_GAUGE, "rastro_broadcaster_clients",
                                       "WebSocket clients connected", NULL, 0);
    self->m_owners = rst_metrics_add (m, RST_METRIC_GAUGE, "rastro_broadcaster_owners",
                                      "owners whose numbers are watched", NULL, 0);
    self->m_connections = rst_metrics_add (m, RST_METRIC_COUNTER,
                                           "rastro_broadcaster_connections_total",
                                           "WebSocket upgrades accepted", NULL, 0);
    self->m_refused_auth = rst_metrics_add (m, RST_METRIC_COUNTER,
                                            "rastro_broadcaster_refused_total{reason=\"auth\"}",
                                            "upgrades refused", NULL, 0);
    self->m_refused_origin = rst_metrics_add (
        m, RST_METRIC_COUNTER, "rastro_broadcaster_refused_total{reason=\"origin\"}",
        "upgrades refused", NULL, 0);
    self->m_refused_busy = rst_metrics_add (m, RST_METRIC_COUNTER,
                                            "rastro_broadcaster_refused_total{reason=\"busy\"}",
                                            "upgrades refused", NULL, 0);
    self->m_refused_bad = rst_metrics_add (m, RST_METRIC_COUNTER,
                                           "rastro_broadcaster_refused_total{reason=\"bad\"}",
                                           "upgrades refused", NULL, 0);
    self->m_snapshots = rst_metrics_add (m, RST_METRIC_COUNTER,
                                         "rastro_broadcaster_pushes_total{kind=\"snapshot\"}",
                                         "messages pushed to clients", NULL, 0);
    self->m_updates = rst_metrics_add (m, RST_METRIC_COUNTER,
                                       "rastro_broadcaster_pushes_total{kind=\"update\"}",
                                       "messages pushed to clients", NULL, 0);
    self->m_slow_skips = rst_metrics_add (m, RST_METRIC_COUNTER,
                                          "rastro_broadcaster_slow_skips_total",
                                          "pushes put off because the client's queue was busy",
                                          NULL, 0);
    self->m_drops = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_broadcaster_drops_total",
                                     "clients closed for not reading (stuck or queue too long)",
                                     NULL, 0);
    self->m_bad_messages = rst_metrics_add (m, RST_METRIC_COUNTER,
                                            "rastro_broadcaster_bad_messages_total",
                                            "malformed client messages", NULL, 0);
    self->m_notifications = rst_metrics_add (m, RST_METRIC_COUNTER,
                                             "rastro_broadcaster_notifications_total",
                                             "batches of rastro_analytics notifications", NULL, 0);
    self->m_reads = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_broadcaster_reads_total",
                                     "owners' days read from PostgreSQL", NULL, 0);
    self->m_db_errors = rst_metrics_add (m, RST_METRIC_COUNTER,
                                         "rastro_broadcaster_db_errors_total",
                                         "jobs the database thread could not do", NULL, 0);
    self->m_sessions_ended = rst_metrics_add (m, RST_METRIC_COUNTER,
                                              "rastro_broadcaster_sessions_ended_total",
                                              "clients closed because their session ended",
                                              NULL, 0);
    self->m_pg_up = rst_metrics_add (m, RST_METRIC_GAUGE, "rastro_broadcaster_postgres_up",
                                     "1 while the database thread is connected", NULL, 0);
}

rst_broadcaster_t *
rst_broadcaster_new (const rst_config_t *cfg, const rst_topology_t *topo, int instance,
                     char *err, size_t errlen)
{
    assert (cfg && topo);
    if (sodium_init () < 0) {
        snprintf (err, errlen, "libsodium: sodium_init failed");
        return NULL;
    }
    rst_broadcaster_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, errlen, "no memory");
        return NULL;
    }
    self->cfg = cfg;
    self->instance = instance;
    self->listen_fd = self->job_r = self->job_w = -1;
    h2o_linklist_init_anchor (&self->clients);
    h2o_linklist_init_anchor (&self->owners);
    h2o_linklist_init_anchor (&self->pendings);

    self->port = cfg->ws_port > 0 ? cfg->ws_port : RST_BROADCASTER_PORT_DEFAULT;
    if (s_setting (topo, instance, "push_ms", RST_BROADCASTER_PUSH_MS_DEFAULT, 10, 10000,
                   &self->push_ms, err, errlen)
        || s_setting (topo, instance, "ping_s", RST_BROADCASTER_PING_S_DEFAULT, 1, 3600,
                      &self->ping_s, err, errlen)
        || s_setting (topo, instance, "refresh_s", RST_BROADCASTER_REFRESH_S_DEFAULT, 1, 3600,
                      &self->refresh_s, err, errlen)
        || s_setting (topo, instance, "stuck_s", RST_BROADCASTER_STUCK_S_DEFAULT, 1, 3600,
                      &self->stuck_s, err, errlen)
        || s_setting (topo, instance, "max_queue_kb", RST_BROADCASTER_QUEUE_KB_DEFAULT, 16,
                      1024 * 1024, &self->max_queue_kb, err, errlen)
        || s_setting (topo, instance, "max_clients", RST_BROADCASTER_MAX_CLIENTS_DEFAULT, 1,
                      1000000, &self->max_clients, err, errlen)
        || s_setting (topo, instance, "max_ids", RST_BROADCASTER_MAX_IDS_DEFAULT, 1, 100000,
                      &self->max_ids, err, errlen)
        || s_setting (topo, instance, "sndbuf_kb", RST_BROADCASTER_SNDBUF_KB_DEFAULT, 4,
                      64 * 1024, &self->sndbuf_kb, err, errlen))
        goto fail;
    s_origin_of (cfg->public_url, self->public_origin, sizeof self->public_origin);

    self->metrics = rst_metrics_new ();
    if (!self->metrics) {
        snprintf (err, errlen, "no memory");
        goto fail;
    }
    s_metrics_init (self);

    int fds[2];
    if (pipe (fds)) {
        snprintf (err, errlen, "pipe: %s", strerror (errno));
        goto fail;
    }
    self->job_r = fds[0];
    self->job_w = fds[1];
    fcntl (self->job_r, F_SETFD, FD_CLOEXEC);
    fcntl (self->job_w, F_SETFD, FD_CLOEXEC);
    fcntl (self->job_w, F_SETFL, fcntl (self->job_w, F_GETFL) | O_NONBLOCK);

    self->listen_fd = rst_tcp_listen (self->port, 0, 1024, "RASTRO_WS_PORT", err, errlen);
    if (self->listen_fd < 0)
        goto fail;
    //  Accepted sockets inherit it: a fixed kernel send buffer per client
    //  (no autotuning to megabytes), so a client that does not read shows
    //  up as busy after sndbuf_kb, not after the kernel's maximum.
    int sndbuf = self->sndbuf_kb * 1024;
    setsockopt (self->listen_fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);

    h2o_config_init (&self->h2o_config);
    self->h2o_config_ready = 1;
    self->h2o_config.server_name = h2o_iovec_init (H2O_STRLIT ("rastro"));
    self->h2o_config.max_request_entity_size = 4096;   //  an upgrade has no body
    h2o_hostconf_t *host = h2o_config_register_host (&self->h2o_config,
                                                      h2o_iovec_init (H2O_STRLIT ("default")), 65535);
    h2o_pathconf_t *pc = h2o_config_register_path (host, "/ws", 0);
    s_handler_t *h = (s_handler_t *) h2o_create_handler (pc, sizeof (s_handler_t));
    h->super.on_req = s_on_req_ws;
    h->self = self;
    pc = h2o_config_register_path (host, "/healthz", 0);
    h = (s_handler_t *) h2o_create_handler (pc, sizeof (s_handler_t));
    h->super.on_req = s_on_req_healthz;
    h->self = self;

    //  Everything registered: now the context (pitfall 3).
    h2o_context_init (&self->ctx, h2o_evloop_create (), &self->h2o_config);
    self->ctx_ready = 1;
    h2o_multithread_register_receiver (self->ctx.queue, &self->receiver, s_on_message);
    self->accept_ctx.ctx = &self->ctx;
    self->accept_ctx.hosts = self->h2o_config.hosts;
    h2o_timeout_init (self->ctx.loop, &self->tick_timeout, (uint64_t) self->push_ms);
    self->tick_entry.cb = s_on_tick;
    self->listener = h2o_evloop_socket_create (self->ctx.loop, self->listen_fd,
                                               H2O_SOCKET_FLAG_DONT_READ);
    self->listen_fd = -1;       //  the socket owns it now
    self->listener->data = self;
    return self;
fail:
    rst_broadcaster_destroy (&self);
    return NULL;
}

void
rst_broadcaster_print (const rst_broadcaster_t *self)
{
    rst_info (S_CLS, "port = %d (RASTRO_WS_PORT; ws://<host>:%d/ws)", self->port, self->port);
    rst_info (S_CLS, "allowed origins = %s and the Host header's host",
              self->public_origin[0] ? self->public_origin : "(none from RASTRO_PUBLIC_URL)");
    rst_info (S_CLS, "push_ms = %d, ping_s = %d, refresh_s = %d, stuck_s = %d", self->push_ms,
              self->ping_s, self->refresh_s, self->stuck_s);
    rst_info (S_CLS, "max_queue_kb = %d, max_clients = %d, max_ids = %d, sndbuf_kb = %d",
              self->max_queue_kb, self->max_clients, self->max_ids, self->sndbuf_kb);
    rst_info (S_CLS, "changes: LISTEN %s; logouts: LISTEN %s (sessions re-checked every %d s)",
              RST_BROADCASTER_CHANNEL, RST_BROADCASTER_SESSIONS_CHANNEL, self->refresh_s);
}

int
rst_broadcaster_run (rst_broadcaster_t *self, volatile sig_atomic_t *stop)
{
    assert (self && stop);
    //  Signals go to this thread (its epoll_wait returns EINTR), not the db's.
    sigset_t block, old;
    sigemptyset (&block);
    sigaddset (&block, SIGINT);
    sigaddset (&block, SIGTERM);
    pthread_sigmask (SIG_BLOCK, &block, &old);
    int rc = pthread_create (&self->db_thread, NULL, s_db_main, self);
    pthread_sigmask (SIG_SETMASK, &old, NULL);
    if (rc) {
        rst_error (S_CLS, "cannot start the database thread: %s", strerror (rc));
        return -1;
    }
    self->db_started = 1;
    h2o_socket_read_start (self->listener, s_on_accept);
    int64_t now = rst_clock_mono_ms ();
    self->next_refresh_ms = now + (int64_t) self->refresh_s * 1000;
    self->next_heartbeat_ms = now;
    h2o_timeout_link (self->ctx.loop, &self->tick_timeout, &self->tick_entry);
    rst_info (S_CLS, "listening on port %d", self->port);
    while (!*stop)
        h2o_evloop_run (self->ctx.loop, 1000);
    rst_info (S_CLS, "stopping: closing %zu client(s)", self->nclients);
    return 0;
}

void
rst_broadcaster_destroy (rst_broadcaster_t **self_p)
{
    rst_broadcaster_t *self = *self_p;
    if (!self)
        return;
    //  The db thread first: closing the pipe ends it; its last replies
    //  are then freed from the receiver below.
    if (self->job_w >= 0)
        close (self->job_w);
    self->job_w = -1;
    if (self->db_started)
        pthread_join (self->db_thread, NULL);
    if (self->ctx_ready) {
        if (self->listener) {
            h2o_socket_read_stop (self->listener);
            h2o_socket_close (self->listener);
        }
        //  Upgrades still waiting for a lookup: answer them.
        while (!h2o_linklist_is_empty (&self->pendings)) {
            s_pending_t *p = H2O_STRUCT_FROM_MEMBER (s_pending_t, link, self->pendings.next);
            h2o_linklist_unlink (&p->link);
            self->npendings--;
            if (p->holder)
                p->holder->pending = NULL;
            if (p->req)
                s_respond (p->req, 503, "Service Unavailable", "{\"error\":\"stopping\"}");
            free (p);           //  its job, if still in the receiver, is only freed below
        }
        //  Replies still queued (jobs point at pendings and clients: the
        //  pendings list is empty now, so an AUTH reply must not touch it).
        while (!h2o_linklist_is_empty (&self->receiver._messages)) {
            h2o_multithread_message_t *msg = H2O_STRUCT_FROM_MEMBER (
                h2o_multithread_message_t, link, self->receiver._messages.next);
            h2o_linklist_unlink (&msg->link);
            s_job_t *job = (s_job_t *) msg;
            if (job->kind == S_JOB_SUBSCRIBE) {
                job->client->sub_inflight = 0;
                s_client_release (job->client);
            }
            s_job_destroy (&job);
        }
        while (!h2o_linklist_is_empty (&self->clients)) {
            s_client_t *c = H2O_STRUCT_FROM_MEMBER (s_client_t, link, self->clients.next);
            c->sub_inflight = 0;
            s_client_close_now (c);
        }
        while (!h2o_linklist_is_empty (&self->owners))
            s_owner_free (self, H2O_STRUCT_FROM_MEMBER (s_owner_t, link, self->owners.next));
        h2o_context_request_shutdown (&self->ctx);
        for (int i = 0; i < 5; i++)
            h2o_evloop_run (self->ctx.loop, 10);
        if (h2o_timeout_is_linked (&self->ctx.http2._graceful_shutdown_timeout))
            h2o_timeout_unlink (&self->ctx.http2._graceful_shutdown_timeout);
        if (h2o_timeout_is_linked (&self->tick_entry))
            h2o_timeout_unlink (&self->tick_entry);
        h2o_timeout_dispose (self->ctx.loop, &self->tick_timeout);
        h2o_multithread_unregister_receiver (self->ctx.queue, &self->receiver);
        h2o_context_dispose (&self->ctx);
        h2o_evloop_destroy (self->ctx.loop);
    }
    if (self->h2o_config_ready)
        h2o_config_dispose (&self->h2o_config);
    if (self->listen_fd >= 0)
        close (self->listen_fd);
    if (self->job_r >= 0)
        close (self->job_r);
    rst_metrics_destroy (&self->metrics);
    free (self);
    *self_p = NULL;
}
