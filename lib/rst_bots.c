/*  rst_bots — see rst_bots.h.

    Intake rules (what makes "accepted means kept" hold for updates):
      - a polled batch is stored (INSERT ... ON CONFLICT DO NOTHING) before
        the poller asks for the next one, whose offset confirms the batch
        to Telegram; if storing fails, the same batch is fetched again;
      - a webhook update or payment webhook from a front is acked to the
        front's inbox journal only after PostgreSQL has it; otherwise the
        front replays it.
    Only rows that were new are handed to a worker; a crash in between is
    covered by the sweep over unhandled updates whose lease ran out.
*/
#include "rst_bots.h"
#include "rst_acks.h"
#include "rst_botreg.h"
#include "rst_clock.h"
#include "rst_emitter.h"
#include "rst_funnel.h"
#include "rst_inbox.h"
#include "rst_journal.h"
#include "rst_log.h"
#include "rst_metrics.h"
#include "rst_secret.h"
#include "rst_tgpoll.h"
#include "rst_tgrate.h"
#include "rst_tgupdate.h"
#include "rst_zsock.h"

#include <assert.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <zmq.h>

#define S_CLS             "bots"
#define S_MAX_WORKERS     64
#define S_IN_HWM          10000
#define S_LINGER_MS       500
#define S_RELOAD_S        30        //  registry reload even without NOTIFY
#define S_HEARTBEAT_MS    1000
#define S_QUEUE_MAX       100000    //  jobs per worker; beyond, the sweeps pick them up later

typedef enum { S_JOB_UPDATE = 1, S_JOB_CONFIRM, S_JOB_DELIVER } s_job_kind_t;

typedef struct {
    s_job_kind_t kind;
    int64_t a, b;                   //  update: bot_id, update_id; payment: payment_id
    const char *why;                //  static string
} s_job_t;

typedef struct {
    rst_bots_t *bots;
    int index;
    pthread_t tid;
    int started;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    s_job_t *jobs;                  //  ring
    size_t head, count, cap;
    rst_funnel_t *funnel;
} s_worker_t;

struct rst_bots_t {
    const rst_config_t *cfg;
    const rst_topology_t *topo;
    int instance;
    int nworkers;
    int reconcile_s;
    int poll_timeout_s;
    atomic_int stop;
    void *zmq_ctx;
    rst_emitter_t *emitter;
    rst_funnel_env_t env;
    rst_botreg_t *registry;
    rst_secret_t *secret;           //  NULL until the master key exists
    s_worker_t workers[S_MAX_WORKERS];
    pthread_t config_tid, poller_tid, intake_tid;
    int config_started, poller_started, intake_started;
    atomic_int registry_loaded;
    char in_ep[256];
    //  counters of the intake and poller threads
    atomic_ulong polled, webhooks_in, gw_in, gw_unknown, inbox_bad, acks_failed, store_failed,
        dispatched, dropped, poll_errors, unauthorized;
    atomic_long polling_bots;
    rst_metrics_t *metrics;         //  main thread only
    int m[40];
};

// ---------------------------------------------------------------------------
//  Worker queues

static uint64_t
s_mix (uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

//  Queues JOB on the worker chosen by KEY. Returns 0, or -1 when the queue
//  is full (the job is left to the sweeps).
static int
s_dispatch (rst_bots_t *self, uint64_t key, s_job_t job)
{
    s_worker_t *w = &self->workers[s_mix (key) % (uint64_t) self->nworkers];
    pthread_mutex_lock (&w->lock);
    if (w->count == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 256;
        s_job_t *jobs = cap <= S_QUEUE_MAX ? malloc (cap * sizeof *jobs) : NULL;
        if (!jobs) {
            pthread_mutex_unlock (&w->lock);
            atomic_fetch_add (&self->dropped, 1);
            return -1;
        }
        for (size_t i = 0; i < w->count; i++)
            jobs[i] = w->jobs[(w->head + i) % w->cap];
        free (w->jobs);
        w->jobs = jobs;
        w->cap = cap;
        w->head = 0;
    }
    w->jobs[(w->head + w->count) % w->cap] = job;
    w->count++;
    pthread_cond_signal (&w->cond);
    pthread_mutex_unlock (&w->lock);
    atomic_fetch_add (&self->dispatched, 1);
    return 0;
}

static void
s_dispatch_update (rst_bots_t *self, int64_t bot_id, int64_t update_id, int64_t chat_id)
{
    s_dispatch (self, (uint64_t) bot_id * 1000003u ^ (uint64_t) chat_id,
                (s_job_t){S_JOB_UPDATE, bot_id, update_id, NULL});
}

static void
s_dispatch_payment (rst_bots_t *self, s_job_kind_t kind, int64_t payment_id, const char *why)
{
    s_dispatch (self, (uint64_t) payment_id, (s_job_t){kind, payment_id, 0, why});
}

static void *
s_worker_main (void *arg)
{
    s_worker_t *w = arg;
    rst_bots_t *self = w->bots;
    while (!atomic_load (&self->stop)) {
        pthread_mutex_lock (&w->lock);
        while (w->count == 0 && !atomic_load (&self->stop)) {
            struct timespec until;
            clock_gettime (CLOCK_REALTIME, &until);
            until.tv_nsec += 200 * 1000000L;
            if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait (&w->cond, &w->lock, &until);
        }
        if (w->count == 0) {
            pthread_mutex_unlock (&w->lock);
            break;
        }
        s_job_t job = w->jobs[w->head];
        w->head = (w->head + 1) % w->cap;
        w->count--;
        pthread_mutex_unlock (&w->lock);
        if (!w->funnel) {
            char err[512];
            w->funnel = rst_funnel_new (&self->env, err, sizeof err);
            if (!w->funnel) {
                rst_error (S_CLS, "worker %d: %s (the job waits for the next sweep)", w->index, err);
                struct timespec ts = {1, 0};
                nanosleep (&ts, NULL);
                continue;
            }
        }
        if (job.kind == S_JOB_UPDATE)
            rst_funnel_update (w->funnel, job.a, job.b);
        else if (job.kind == S_JOB_CONFIRM)
            rst_funnel_confirm (w->funnel, job.a, job.why);
        else
            rst_funnel_deliver (w->funnel, job.a);
    }
    return NULL;
}

// ---------------------------------------------------------------------------
//  Storing updates

//  The chat an update is about (0 when none), to keep one chat in order.
static int64_t
s_chat_of (const cJSON *update)
{
    static const char *paths[][3] = {{"message", "chat", "id"},
                                     {"callback_query", "message", "chat"},
                                     {"chat_member", "chat", "id"}};
    for (size_t i = 0; i < 3; i++) {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive (update, paths[i][0]);
        n = cJSON_GetObjectItemCaseSensitive (n, paths[i][1]);
        n = cJSON_GetObjectItemCaseSensitive (n, paths[i][2]);
        if (i == 1)
            n = cJSON_GetObjectItemCaseSensitive (n, "id");
        if (cJSON_IsNumber (n))
            return (int64_t) n->valuedouble;
    }
    return 0;
}

//  Stores UPDATES (a cJSON array) of BOT_ID; dispatches the new ones.
//  Returns 0 when every update is in the table, -1 otherwise.
static int
s_store_updates (rst_bots_t *self, PGconn *db, int64_t bot_id, const cJSON *updates,
                 const char *via)
{
    char *text = cJSON_PrintUnformatted (updates);
    if (!text)
        return -1;
    char b[24];
    snprintf (b, sizeof b, "%" PRId64, bot_id);
    const char *params[] = {b, text, via};
    //  One statement per batch; ON CONFLICT drops redeliveries.
    PGresult *res = PQexecParams (
        db,
        "INSERT INTO tg_updates (bot_id, update_id, body, via) "
        "SELECT $1, (u->>'update_id')::bigint, u, $3 FROM jsonb_array_elements($2::jsonb) u "
        "WHERE jsonb_typeof(u->'update_id') = 'number' "
        "ON CONFLICT (bot_id, update_id) DO NOTHING RETURNING update_id",
        3, NULL, params, NULL, NULL, 0);
    free (text);
    if (PQresultStatus (res) != PGRES_TUPLES_OK) {
        rst_error (S_CLS, "storing updates of bot %" PRId64 ": %s", bot_id, PQerrorMessage (db));
        PQclear (res);
        atomic_fetch_add (&self->store_failed, 1);
        return -1;
    }
    for (int r = 0; r < PQntuples (res); r++) {
        int64_t update_id = strtoll (PQgetvalue (res, r, 0), NULL, 10);
        int64_t chat = 0;
        const cJSON *u;
        cJSON_ArrayForEach (u, updates) {
            const cJSON *id = cJSON_GetObjectItemCaseSensitive (u, "update_id");
            if (cJSON_IsNumber (id) && (int64_t) id->valuedouble == update_id) {
                chat = s_chat_of (u);
                break;
            }
        }
        s_dispatch_update (self, bot_id, update_id, chat);
    }
    PQclear (res);
    return 0;
}

static PGconn *
s_connect (rst_bots_t *self, const char *who)
{
    PGconn *db = PQconnectdb (self->cfg->database_url);
    if (PQstatus (db) != CONNECTION_OK) {
        rst_warn (S_CLS, "%s: PostgreSQL: %s", who, PQerrorMessage (db));
        PQfinish (db);
        return NULL;
    }
    return db;
}

static void
s_nap (rst_bots_t *self, int ms)
{
    for (int i = 0; i < ms / 50 && !atomic_load (&self->stop); i++) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep (&ts, NULL);
    }
}

// ---------------------------------------------------------------------------
//  Config thread

static int
s_reload (rst_bots_t *self, PGconn *db)
{
    if (!self->secret) {
        char err[512];
        self->secret = rst_secret_new (self->cfg->master_key_file, 0, err, sizeof err);
        if (!self->secret)
            rst_debug (S_CLS, "master key: %s", err);
    }
    char err[512];
    int n = rst_botreg_reload (self->registry, db, self->secret, err, sizeof err);
    if (n < 0)
        rst_error (S_CLS, "%s", err);
    else if (!atomic_exchange (&self->registry_loaded, 1))
        rst_info (S_CLS, "%d bots loaded", n);
    return n;
}

static void *
s_config_main (void *arg)
{
    rst_bots_t *self = arg;
    PGconn *db = NULL;
    int64_t next_reload = 0, last_reload = 0;
    while (!atomic_load (&self->stop)) {
        if (!db) {
            db = s_connect (self, "config");
            PGresult *res = db ? PQexec (db, "LISTEN rastro_config") : NULL;
            int listening = res && PQresultStatus (res) == PGRES_COMMAND_OK;
            PQclear (res);
            if (!listening) {
                if (db)
                    PQfinish (db);
                db = NULL;
                s_nap (self, 1000);
                continue;
            }
            next_reload = 0;
        }
        int64_t now = rst_clock_mono_ms ();
        if (now >= next_reload) {
            if (s_reload (self, db) < 0 && PQstatus (db) == CONNECTION_BAD) {
                PQfinish (db);
                db = NULL;
                continue;
            }
            last_reload = now;
            next_reload = now + S_RELOAD_S * 1000;
        }
        struct pollfd pfd = {.fd = PQsocket (db), .events = POLLIN};
        if (poll (&pfd, 1, 250) > 0) {
            if (!PQconsumeInput (db)) {
                PQfinish (db);
                db = NULL;
                continue;
            }
            PGnotify *n;
            int changed = 0;
            while ((n = PQnotifies (db))) {
                changed = 1;
                PQfreemem (n);
            }
            //  At once, but at most one reload a second however many
            //  changes arrive.
            if (changed && next_reload > last_reload + 1000)
                next_reload = last_reload + 1000;
        }
    }
    if (db)
        PQfinish (db);
    return NULL;
}

// ---------------------------------------------------------------------------
//  Poller thread

typedef struct {
    rst_bots_t *self;
    PGconn *db;
} s_poll_ctx_t;

static int
s_on_updates (void *arg, int64_t bot_id, const cJSON *updates, int64_t *next_offset_out)
{
    s_poll_ctx_t *ctx = arg;
    (void) next_offset_out;
    if (!ctx->db)
        ctx->db = s_connect (ctx->self, "poller");
    if (!ctx->db)
        return -1;
    int n = cJSON_GetArraySize (updates);
    if (n == 0)
        return 0;
    if (s_store_updates (ctx->self, ctx->db, bot_id, updates, "polling")) {
        if (PQstatus (ctx->db) == CONNECTION_BAD) {
            PQfinish (ctx->db);
            ctx->db = NULL;
        }
        return -1;
    }
    atomic_fetch_add (&ctx->self->polled, (unsigned long) n);
    //  The offset Telegram will be asked for next, kept for a restart.
    int64_t max = -1;
    const cJSON *u;
    cJSON_ArrayForEach (u, updates) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive (u, "update_id");
        if (cJSON_IsNumber (id) && (int64_t) id->valuedouble > max)
            max = (int64_t) id->valuedouble;
    }
    if (max >= 0) {
        char b[24], off[24];
        snprintf (b, sizeof b, "%" PRId64, bot_id);
        snprintf (off, sizeof off, "%" PRId64, max + 1);
        const char *params[] = {b, off};
        PQclear (PQexecParams (ctx->db,
                               "UPDATE bots SET poll_offset = $2 WHERE id = $1 AND poll_offset < $2",
                               2, NULL, params, NULL, NULL, 0));
    }
    return 0;
}

static void
s_on_poll_error (void *arg, int64_t bot_id, const rst_telegram_status_t *status, const char *err)
{
    s_poll_ctx_t *ctx = arg;
    atomic_fetch_add (&ctx->self->poll_errors, 1);
    if (status && (status->http_status == 401 || status->error_code == 401)) {
        //  The token was revoked: out of the rotation until someone fixes it.
        atomic_fetch_add (&ctx->self->unauthorized, 1);
        if (!ctx->db)
            ctx->db = s_connect (ctx->self, "poller");
        char b[24];
        snprintf (b, sizeof b, "%" PRId64, bot_id);
        const char *params[] = {b};
        PGresult *res = ctx->db ? PQexecParams (ctx->db,
                                                "UPDATE bots SET healthy = false WHERE id = $1",
                                                1, NULL, params, NULL, NULL, 0)
                                : NULL;
        if (res && PQresultStatus (res) == PGRES_COMMAND_OK)
            rst_error (S_CLS, "bot %" PRId64 ": Telegram refuses its token (401); marked "
                       "unhealthy (re-add the bot with a new token)", bot_id);
        else
            rst_error (S_CLS, "bot %" PRId64 ": Telegram refuses its token (401); could not mark "
                       "it unhealthy: %s", bot_id,
                       ctx->db ? PQerrorMessage (ctx->db) : "no database connection");
        PQclear (res);
    }
    else
        rst_warn (S_CLS, "bot %" PRId64 ": getUpdates: %s", bot_id, err ? err : "failed");
}

static void *
s_poller_main (void *arg)
{
    rst_bots_t *self = arg;
    char err[512];
    rst_tgpoll_t *poll = rst_tgpoll_new (self->cfg->telegram_api_url, self->poll_timeout_s, err,
                                         sizeof err);
    if (!poll) {
        rst_error (S_CLS, "poller: %s", err);
        return NULL;
    }
    s_poll_ctx_t ctx = {self, NULL};
    uint64_t synced = 0;
    int64_t *known = NULL;
    int nknown = 0;
    while (!atomic_load (&self->stop)) {
        uint64_t version = rst_botreg_version (self->registry);
        if (version != synced && atomic_load (&self->registry_loaded)) {
            rst_bot_t *list = NULL;
            int n = rst_botreg_polling (self->registry, &list);
            if (n >= 0) {
                //  Bots no longer polled go; the others are (re)set, which
                //  keeps a running poll's offset when the token is the same.
                for (int i = 0; i < nknown; i++) {
                    int still = 0;
                    for (int j = 0; j < n && !still; j++)
                        still = list[j].id == known[i];
                    if (!still)
                        rst_tgpoll_remove_bot (poll, known[i]);
                }
                int64_t *ids = malloc ((size_t) (n ? n : 1) * sizeof *ids);
                for (int j = 0; j < n; j++) {
                    if (rst_tgpoll_set_bot (poll, list[j].id, list[j].token, list[j].poll_offset))
                        rst_error (S_CLS, "poller: cannot add bot @%s", list[j].username);
                    if (ids)
                        ids[j] = list[j].id;
                    rst_bot_clear (&list[j]);
                }
                free (known);
                known = ids;
                nknown = ids ? n : 0;
                free (list);
                synced = version;
                atomic_store (&self->polling_bots, (long) rst_tgpoll_count (poll));
            }
        }
        if (rst_tgpoll_count (poll) == 0) {
            s_nap (self, 250);
            continue;
        }
        if (rst_tgpoll_run (poll, 250, s_on_updates, s_on_poll_error, &ctx) < 0)
            s_nap (self, 250);
    }
    free (known);
    rst_tgpoll_destroy (&poll);
    if (ctx.db)
        PQfinish (ctx.db);
    return NULL;
}

// ---------------------------------------------------------------------------
//  Intake thread (what the fronts journaled)

//  Handles one inbox message. Returns 0 when it may be acked.
static int
s_intake_one (rst_bots_t *self, PGconn *db, const rst_inbox_msg_t *msg)
{
    if (msg->type == RST_INBOX_TG_UPDATE) {
        atomic_fetch_add (&self->webhooks_in, 1);
        cJSON *update = cJSON_ParseWithLength (msg->body, msg->body_len);
        cJSON *array = cJSON_CreateArray ();
        if (!update || !array || !cJSON_IsObject (update)) {
            cJSON_Delete (update);
            cJSON_Delete (array);
            atomic_fetch_add (&self->inbox_bad, 1);
            rst_warn (S_CLS, "a webhook update of bot %" PRId64 " is not a JSON object; dropped",
                      msg->bot_id);
            return 0;
        }
        cJSON_AddItemToArray (array, update);
        int rc = s_store_updates (self, db, msg->bot_id, array, "webhook");
        cJSON_Delete (array);
        return rc;
    }
    atomic_fetch_add (&self->gw_in, 1);
    const char *params[] = {msg->gateway, msg->charge_id};
    PGresult *res = PQexecParams (db,
                                  "UPDATE payments SET notified_at = now() "
                                  "WHERE gateway = $1 AND charge_id = $2 RETURNING id, status",
                                  2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus (res) != PGRES_TUPLES_OK) {
        rst_error (S_CLS, "payment webhook: %s", PQerrorMessage (db));
        PQclear (res);
        atomic_fetch_add (&self->store_failed, 1);
        return -1;
    }
    if (PQntuples (res) == 0) {
        atomic_fetch_add (&self->gw_unknown, 1);
        rst_warn (S_CLS, "%s webhook for unknown charge %.64s: nothing changed", msg->gateway,
                  msg->charge_id);
    }
    else if (!strcmp (PQgetvalue (res, 0, 1), "pending"))
        s_dispatch_payment (self, S_JOB_CONFIRM, strtoll (PQgetvalue (res, 0, 0), NULL, 10),
                            "webhook");
    else
        rst_info (S_CLS, "%s webhook for charge %.64s, already %s: nothing changed", msg->gateway,
                  msg->charge_id, PQgetvalue (res, 0, 1));
    PQclear (res);
    return 0;
}

static void *
s_intake_main (void *arg)
{
    rst_bots_t *self = arg;
    char err[512];
    void *in = rst_zsock_new (self->zmq_ctx, ZMQ_PULL, S_IN_HWM, S_LINGER_MS, 0);
    rst_acks_t *acks = NULL;
    if (!in || rst_topology_attach (self->topo, in, S_CLS, self->instance, "in", err, sizeof err)) {
        rst_error (S_CLS, "intake: %s", in ? err : zmq_strerror (zmq_errno ()));
        goto done;
    }
    acks = rst_acks_new (self->zmq_ctx, self->topo, S_CLS, self->instance, "inbox_acks",
                         RST_ZSOCK_IMMEDIATE, err, sizeof err);
    if (!acks)
        rst_warn (S_CLS, "intake: no inbox_acks (%s): fronts will replay what they sent", err);
    PGconn *db = NULL;
    zmq_msg_t zmsg;
    zmq_msg_init (&zmsg);
    while (!atomic_load (&self->stop)) {
        zmq_pollitem_t item = {in, 0, ZMQ_POLLIN, 0};
        if (zmq_poll (&item, 1, 250) <= 0)
            continue;
        if (zmq_msg_recv (&zmsg, in, ZMQ_DONTWAIT) < 0)
            continue;
        if (!db && !(db = s_connect (self, "intake"))) {
            //  Not acked: the fronts replay it once PostgreSQL is back.
            s_nap (self, 1000);
            continue;
        }
        const char *data = zmq_msg_data (&zmsg);
        size_t len = zmq_msg_size (&zmsg), offset = 0;
        while (offset < len) {
            rst_inbox_msg_t msg;
            int rc = rst_inbox_decode (data, len, &offset, &msg);
            if (rc == -2) {
                atomic_fetch_add (&self->inbox_bad, 1);
                break;
            }
            if (rc == -1) {
                atomic_fetch_add (&self->inbox_bad, 1);
                continue;
            }
            if (s_intake_one (self, db, &msg) == 0) {
                if (acks && rst_acks_add (acks, msg.src, strlen (msg.src), msg.seq))
                    atomic_fetch_add (&self->acks_failed, 1);
            }
            else if (PQstatus (db) == CONNECTION_BAD) {
                PQfinish (db);
                db = NULL;
                break;
            }
        }
        if (acks) {
            rst_acks_tally_t t = rst_acks_flush (acks, RST_JOURNAL_ACK_STORED);
            atomic_fetch_add (&self->acks_failed, t.failed);
        }
    }
    zmq_msg_close (&zmsg);
    if (db)
        PQfinish (db);
done:
    rst_acks_destroy (&acks);
    if (in)
        zmq_close (in);
    return NULL;
}

// ---------------------------------------------------------------------------
//  Sweeps (main thread)

static void
s_sweep (rst_bots_t *self, PGconn *db)
{
    char interval[24];
    snprintf (interval, sizeof interval, "%d", self->reconcile_s);
    const char *params[] = {interval};
    //  The reconciler: pending charges not checked for a while, newest first
    //  (a lost webhook is most likely about a recent charge). Charges of the
    //  last hour are re-read every pass, older ones every 10 minutes, and none
    //  once an hour past their expiry (a late webhook still confirms one), so
    //  a seller's unpaid charges do not turn into a stream of gateway reads.
    PGresult *res = PQexecParams (
        db,
        "SELECT id FROM payments WHERE status = 'pending' AND charge_id IS NOT NULL "
        "  AND created_at > now() - interval '2 days' "
        "  AND (expires_at IS NULL OR expires_at > now() - interval '1 hour') "
        "  AND (checked_at IS NULL OR checked_at < now() - make_interval(secs => "
        "       CASE WHEN created_at > now() - interval '1 hour' THEN $1::int ELSE 600 END)) "
        "ORDER BY created_at DESC LIMIT 500",
        1, NULL, params, NULL, NULL, 0);
    for (int r = 0; PQresultStatus (res) == PGRES_TUPLES_OK && r < PQntuples (res); r++)
        s_dispatch_payment (self, S_JOB_CONFIRM, strtoll (PQgetvalue (res, r, 0), NULL, 10),
                            "reconciler");
    PQclear (res);
    //  Deliveries to retry, backing off with the attempts made.
    res = PQexec (db, "SELECT id FROM payments WHERE delivery_status = 'pending' "
                      "  AND paid_at < now() - make_interval(secs => 5 * delivery_attempts * delivery_attempts) "
                      "ORDER BY id LIMIT 500");
    for (int r = 0; PQresultStatus (res) == PGRES_TUPLES_OK && r < PQntuples (res); r++)
        s_dispatch_payment (self, S_JOB_DELIVER, strtoll (PQgetvalue (res, r, 0), NULL, 10), NULL);
    PQclear (res);
    //  Updates nobody finished (a crash, a queue that was full, a retry due).
    res = PQexec (db, "SELECT bot_id, update_id, "
                      "  COALESCE((body #>> '{message,chat,id}'), (body #>> '{callback_query,message,chat,id}'), "
                      "           (body #>> '{chat_member,chat,id}'), '0') "
                      "FROM tg_updates WHERE handled_at IS NULL "
                      "  AND (lease_until IS NULL AND received_at < now() - interval '10 seconds' "
                      "       OR lease_until < now()) "
                      "ORDER BY received_at LIMIT 1000");
    for (int r = 0; PQresultStatus (res) == PGRES_TUPLES_OK && r < PQntuples (res); r++)
        s_dispatch_update (self, strtoll (PQgetvalue (res, r, 0), NULL, 10),
                           strtoll (PQgetvalue (res, r, 1), NULL, 10),
                           strtoll (PQgetvalue (res, r, 2), NULL, 10));
    PQclear (res);
    PQclear (PQexec (db, "DELETE FROM tg_updates WHERE handled_at < now() - interval '48 hours'"));
}

// ---------------------------------------------------------------------------
//  Metrics

enum { M_POLLED, M_WEBHOOKS, M_GW, M_GW_UNKNOWN, M_INBOX_BAD, M_ACK_FAIL, M_STORE_FAIL,
       M_DISPATCHED, M_DROPPED, M_POLL_ERR, M_UNAUTH, M_POLLING, M_BOTS, M_UPDATES, M_UPDATE_FAIL,
       M_STARTS, M_ORGANIC, M_CHECKOUTS, M_CHECKOUT_FAIL, M_REUSED, M_PURCHASES, M_MISMATCH,
       M_DELIVERIES, M_DELIVERY_FAIL, M_JOINS, M_TG_CALLS, M_TG_ERR, M_TG_429, M_EVENTS,
       M_EVENTS_FAIL, M_QUEUED, M__COUNT };

static void
s_metrics_declare (rst_bots_t *self)
{
    static const struct {
        int id, gauge;
        const char *name, *help;
    } defs[] = {
        {M_POLLED, 0, "rastro_bots_updates_polled_total", "Updates received by long polling."},
        {M_WEBHOOKS, 0, "rastro_bots_updates_webhook_total", "Updates received through a front's webhook."},
        {M_GW, 0, "rastro_bots_payment_webhooks_total", "Payment webhooks received from the fronts."},
        {M_GW_UNKNOWN, 0, "rastro_bots_payment_webhooks_unknown_total", "Payment webhooks about charges rastro does not know."},
        {M_INBOX_BAD, 0, "rastro_bots_inbox_bad_total", "Inbox messages that could not be decoded."},
        {M_ACK_FAIL, 0, "rastro_bots_inbox_ack_failures_total", "Inbox acks that could not be sent (the front replays)."},
        {M_STORE_FAIL, 0, "rastro_bots_store_failures_total", "Failed writes of updates or payment notes."},
        {M_DISPATCHED, 0, "rastro_bots_jobs_total", "Jobs handed to workers."},
        {M_DROPPED, 0, "rastro_bots_jobs_dropped_total", "Jobs not queued (queue full; the sweeps retry them)."},
        {M_POLL_ERR, 0, "rastro_bots_poll_errors_total", "Failed getUpdates calls."},
        {M_UNAUTH, 0, "rastro_bots_unauthorized_total", "getUpdates refused with 401 (revoked token)."},
        {M_POLLING, 1, "rastro_bots_polling", "Bots being long-polled."},
        {M_BOTS, 1, "rastro_bots_loaded", "Bots in the registry."},
        {M_UPDATES, 0, "rastro_bots_updates_handled_total", "Updates handled."},
        {M_UPDATE_FAIL, 0, "rastro_bots_update_failures_total", "Update handling attempts that failed."},
        {M_STARTS, 0, "rastro_bots_starts_total", "/start with a known click."},
        {M_ORGANIC, 0, "rastro_bots_organic_starts_total", "/start without a known click (organic leads)."},
        {M_CHECKOUTS, 0, "rastro_bots_checkouts_total", "PIX charges created."},
        {M_CHECKOUT_FAIL, 0, "rastro_bots_checkout_failures_total", "PIX charges that could not be created."},
        {M_REUSED, 0, "rastro_bots_charges_reused_total", "Taps answered with an open charge (double taps)."},
        {M_PURCHASES, 0, "rastro_bots_purchases_total", "Payments moved to paid (Purchase emitted)."},
        {M_MISMATCH, 0, "rastro_bots_amount_mismatches_total", "Paid charges whose amount differed (not accepted)."},
        {M_DELIVERIES, 0, "rastro_bots_deliveries_total", "Accesses delivered."},
        {M_DELIVERY_FAIL, 0, "rastro_bots_delivery_failures_total", "Failed delivery attempts."},
        {M_JOINS, 0, "rastro_bots_joins_total", "Buyers who joined through their invite link."},
        {M_TG_CALLS, 0, "rastro_bots_telegram_calls_total", "Telegram Bot API calls made by workers."},
        {M_TG_ERR, 0, "rastro_bots_telegram_errors_total", "Telegram calls that failed."},
        {M_TG_429, 0, "rastro_bots_telegram_throttled_total", "Telegram 429 answers (waited out)."},
        {M_EVENTS, 0, "rastro_bots_events_total", "Funnel events journaled (start, checkout, payment)."},
        {M_EVENTS_FAIL, 0, "rastro_bots_events_failed_total", "Funnel events the journal refused."},
        {M_QUEUED, 1, "rastro_bots_jobs_queued", "Jobs waiting in worker queues."},
    };
    for (size_t i = 0; i < sizeof defs / sizeof defs[0]; i++)
        self->m[defs[i].id] = rst_metrics_add (self->metrics,
                                               defs[i].gauge ? RST_METRIC_GAUGE : RST_METRIC_COUNTER,
                                               defs[i].name, defs[i].help, NULL, 0);
}

static void
s_metrics_publish (rst_bots_t *self)
{
    rst_funnel_stats_t *s = &self->env.stats;
    const struct {
        int id;
        double value;
    } values[] = {
        {M_POLLED, (double) atomic_load (&self->polled)},
        {M_WEBHOOKS, (double) atomic_load (&self->webhooks_in)},
        {M_GW, (double) atomic_load (&self->gw_in)},
        {M_GW_UNKNOWN, (double) atomic_load (&self->gw_unknown)},
        {M_INBOX_BAD, (double) atomic_load (&self->inbox_bad)},
        {M_ACK_FAIL, (double) atomic_load (&self->acks_failed)},
        {M_STORE_FAIL, (double) atomic_load (&self->store_failed)},
        {M_DISPATCHED, (double) atomic_load (&self->dispatched)},
        {M_DROPPED, (double) atomic_load (&self->dropped)},
        {M_POLL_ERR, (double) atomic_load (&self->poll_errors)},
        {M_UNAUTH, (double) atomic_load (&self->unauthorized)},
        {M_POLLING, (double) atomic_load (&self->polling_bots)},
        {M_BOTS, (double) rst_botreg_count (self->registry)},
        {M_UPDATES, (double) atomic_load (&s->updates)},
        {M_UPDATE_FAIL, (double) atomic_load (&s->update_failures)},
        {M_STARTS, (double) atomic_load (&s->starts)},
        {M_ORGANIC, (double) atomic_load (&s->organic)},
        {M_CHECKOUTS, (double) atomic_load (&s->checkouts)},
        {M_CHECKOUT_FAIL, (double) atomic_load (&s->checkout_failures)},
        {M_REUSED, (double) atomic_load (&s->reused_charges)},
        {M_PURCHASES, (double) atomic_load (&s->purchases)},
        {M_MISMATCH, (double) atomic_load (&s->amount_mismatches)},
        {M_DELIVERIES, (double) atomic_load (&s->deliveries)},
        {M_DELIVERY_FAIL, (double) atomic_load (&s->delivery_failures)},
        {M_JOINS, (double) atomic_load (&s->joins)},
        {M_TG_CALLS, (double) atomic_load (&s->tg_calls)},
        {M_TG_ERR, (double) atomic_load (&s->tg_errors)},
        {M_TG_429, (double) atomic_load (&s->tg_throttled)},
        {M_EVENTS, (double) rst_emitter_count (self->emitter)},
        {M_EVENTS_FAIL, (double) atomic_load (&s->events_failed)},
    };
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++)
        rst_metrics_set (self->metrics, self->m[values[i].id], values[i].value);
    size_t queued = 0;
    for (int i = 0; i < self->nworkers; i++) {
        pthread_mutex_lock (&self->workers[i].lock);
        queued += self->workers[i].count;
        pthread_mutex_unlock (&self->workers[i].lock);
    }
    rst_metrics_set (self->metrics, self->m[M_QUEUED], (double) queued);
    //  The node's own metrics, then its journal's (depth, oldest entry,
    //  replays: rastro_journal_*), in one heartbeat file.
    char *mine = rst_metrics_render (self->metrics);
    char *journal = rst_emitter_render_metrics (self->emitter);
    size_t n = (mine ? strlen (mine) : 0) + (journal ? strlen (journal) : 0) + 1;
    char *text = malloc (n);
    if (text) {
        snprintf (text, n, "%s%s", mine ? mine : "", journal ? journal : "");
        if (rst_heartbeat_write (self->cfg->data_dir, S_CLS, self->instance, text))
            rst_debug (S_CLS, "heartbeat not written");
    }
    free (text);
    free (mine);
    free (journal);
}

// ---------------------------------------------------------------------------
//  Lifecycle

rst_bots_t *
rst_bots_new (const rst_config_t *cfg, const rst_topology_t *topo, int instance, char *err,
              size_t errlen)
{
    assert (cfg && topo);
    rst_bots_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, errlen, "bots: out of memory");
        return NULL;
    }
    self->cfg = cfg;
    self->topo = topo;
    self->instance = instance;
    long workers = rst_topology_get_long (topo, S_CLS, instance, "workers", 4);
    long reconcile = rst_topology_get_long (topo, S_CLS, instance, "reconcile_s", 30);
    long poll_timeout = rst_topology_get_long (topo, S_CLS, instance, "poll_timeout_s", 25);
    long lease = rst_topology_get_long (topo, S_CLS, instance, "lease_s", RST_FUNNEL_LEASE_S);
    if (workers < 1 || workers > S_MAX_WORKERS) {
        snprintf (err, errlen, "topology: [bots] workers must be 1..%d, not %ld", S_MAX_WORKERS, workers);
        free (self);
        return NULL;
    }
    if (reconcile < 1 || reconcile > 3600) {
        snprintf (err, errlen, "topology: [bots] reconcile_s must be 1..3600, not %ld", reconcile);
        free (self);
        return NULL;
    }
    if (poll_timeout < 0 || poll_timeout > 50) {
        snprintf (err, errlen, "topology: [bots] poll_timeout_s must be 0..50, not %ld", poll_timeout);
        free (self);
        return NULL;
    }
    //  One long poll holds one connection per bot: 1,000 bots need more
    //  descriptors than the usual soft limit of 1,024.
    struct rlimit files;
    if (getrlimit (RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
        files.rlim_cur = files.rlim_max;
        if (setrlimit (RLIMIT_NOFILE, &files))
            rst_warn (S_CLS, "cannot raise the open files limit: %s", strerror (errno));
    }
    if (lease < 2 || lease > 3600) {
        snprintf (err, errlen, "topology: [bots] lease_s must be 2..3600, not %ld", lease);
        free (self);
        return NULL;
    }
    self->nworkers = (int) workers;
    self->reconcile_s = (int) reconcile;
    self->poll_timeout_s = (int) poll_timeout;
    if (rst_topology_get (topo, S_CLS, instance, "in", self->in_ep, sizeof self->in_ep))
        snprintf (self->in_ep, sizeof self->in_ep, "(none)");
    for (int i = 0; i < self->nworkers; i++) {
        pthread_mutex_init (&self->workers[i].lock, NULL);
        pthread_cond_init (&self->workers[i].cond, NULL);
        self->workers[i].bots = self;
        self->workers[i].index = i;
    }
    pthread_mutex_init (&self->env.rate_lock, NULL);
    self->metrics = rst_metrics_new ();
    self->registry = rst_botreg_new ();
    self->env.rate = rst_tgrate_new (25, 25, 1, 3);
    if (!self->metrics || !self->registry || !self->env.rate) {
        snprintf (err, errlen, "bots: out of memory");
        goto fail;
    }
    s_metrics_declare (self);
    self->zmq_ctx = zmq_ctx_new ();
    if (!self->zmq_ctx) {
        snprintf (err, errlen, "bots: libzmq: %s", zmq_strerror (zmq_errno ()));
        goto fail;
    }
    self->emitter = rst_emitter_new (self->zmq_ctx, topo, S_CLS, instance, err, errlen);
    if (!self->emitter)
        goto fail;
    self->env.cfg = cfg;
    self->env.registry = self->registry;
    self->env.emitter = self->emitter;
    self->env.stop = &self->stop;
    self->env.lease_s = (int) lease;
    return self;
fail:
    rst_bots_destroy (&self);
    return NULL;
}

void
rst_bots_print (const rst_bots_t *self)
{
    rst_info (S_CLS, "in = %s (Telegram webhook updates and payment webhooks from the fronts)",
              self->in_ep);
    rst_info (S_CLS, "workers = %d, reconcile_s = %d, poll_timeout_s = %d, lease_s = %d",
              self->nworkers, self->reconcile_s, self->poll_timeout_s, self->env.lease_s);
    rst_info (S_CLS, "public_url = %s (gateways' notification URLs: <public_url>/webhook/<gateway>)",
              self->cfg->public_url);
}

static void
s_stop_threads (rst_bots_t *self)
{
    atomic_store (&self->stop, 1);
    for (int i = 0; i < self->nworkers; i++) {
        s_worker_t *w = &self->workers[i];
        pthread_mutex_lock (&w->lock);
        pthread_cond_broadcast (&w->cond);
        pthread_mutex_unlock (&w->lock);
    }
    if (self->intake_started)
        pthread_join (self->intake_tid, NULL);
    if (self->poller_started)
        pthread_join (self->poller_tid, NULL);
    if (self->config_started)
        pthread_join (self->config_tid, NULL);
    for (int i = 0; i < self->nworkers; i++)
        if (self->workers[i].started) {
            pthread_join (self->workers[i].tid, NULL);
            self->workers[i].started = 0;
        }
    self->intake_started = self->poller_started = self->config_started = 0;
}

int
rst_bots_run (rst_bots_t *self, volatile sig_atomic_t *stop)
{
    assert (self);
    if (pthread_create (&self->config_tid, NULL, s_config_main, self) == 0)
        self->config_started = 1;
    for (int i = 0; i < self->nworkers; i++)
        if (pthread_create (&self->workers[i].tid, NULL, s_worker_main, &self->workers[i]) == 0)
            self->workers[i].started = 1;
    if (pthread_create (&self->poller_tid, NULL, s_poller_main, self) == 0)
        self->poller_started = 1;
    if (pthread_create (&self->intake_tid, NULL, s_intake_main, self) == 0)
        self->intake_started = 1;
    if (!self->config_started || !self->poller_started || !self->intake_started) {
        rst_error (S_CLS, "cannot start threads: %s", strerror (errno));
        s_stop_threads (self);
        return -1;
    }
    PGconn *db = NULL;
    int64_t next_sweep = rst_clock_mono_ms () + 2000, next_beat = 0;
    while (!*stop) {
        int64_t now = rst_clock_mono_ms ();
        if (now >= next_beat) {
            s_metrics_publish (self);
            next_beat = now + S_HEARTBEAT_MS;
        }
        if (now >= next_sweep && atomic_load (&self->registry_loaded)) {
            if (!db)
                db = s_connect (self, "sweeps");
            if (db) {
                s_sweep (self, db);
                if (PQstatus (db) == CONNECTION_BAD) {
                    PQfinish (db);
                    db = NULL;
                }
            }
            next_sweep = now + (int64_t) self->reconcile_s * 1000;
        }
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep (&ts, NULL);
    }
    if (db)
        PQfinish (db);
    s_stop_threads (self);
    s_metrics_publish (self);
    return 0;
}

void
rst_bots_destroy (rst_bots_t **self_p)
{
    assert (self_p);
    rst_bots_t *self = *self_p;
    if (!self)
        return;
    s_stop_threads (self);
    for (int i = 0; i < self->nworkers; i++) {
        rst_funnel_destroy (&self->workers[i].funnel);
        free (self->workers[i].jobs);
        pthread_mutex_destroy (&self->workers[i].lock);
        pthread_cond_destroy (&self->workers[i].cond);
    }
    rst_emitter_destroy (&self->emitter);
    if (self->zmq_ctx)
        zmq_ctx_term (self->zmq_ctx);
    rst_tgrate_destroy (&self->env.rate);
    pthread_mutex_destroy (&self->env.rate_lock);
    rst_botreg_destroy (&self->registry);
    rst_secret_destroy (&self->secret);
    rst_metrics_destroy (&self->metrics);
    free (self);
    *self_p = NULL;
}
