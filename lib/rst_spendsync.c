/*  rst_spendsync — ad spend per campaign and day, kept from Meta's Insights.

    Role: issue 5 §2. The seller's ROI needs what they spent: Meta's
    Insights API gives it per campaign and day (rst_insights); this actor
    keeps campaign_spend (schemas/sql/007_spend.sql) up to date for every
    enabled ad account, with the account's own token (sealed in
    ad_accounts.token_enc, opened with the master key in memory only for the
    fetch, then wiped). No sockets: it talks to PostgreSQL and to Meta.

    Schedule, per account (the state is in ad_accounts, so a restart
    resumes it; days are the owner's, users.timezone):

        added ──due──► BACKFILL: today - backfill_days + 1 .. today
                          │ stored: backfilled_at, closed_through = yesterday
                          ▼
        ┌──► REFRESH: today only, every today_every_s (× slow_factor while
        │       │      the usage headers say ≥ slow_pct)
        │       │ a day ended (closed_through < yesterday)
        │       ▼
        │    CLOSE: closed_through + 1 .. today, once (so a past day is read
        └────────  again once after it ended, with its final spend)

    Instances: each reads the accounts whose id modulo the [optimizer]
    instance count is its instance number (one is plenty: a fetch is a few
    calls every few minutes per account).

    An account is due when enabled, its token not refused, next_sync_at
    passed (or NULL) and throttled_until passed (or NULL). Outcomes:

        ok         rows of the fetched days replaced (one transaction:
                   DELETE the days, INSERT the rows, UPDATE the account);
                   last_error cleared; usage at 100 → throttled_until
        throttled  (4/17/32/341/613/80000-80014, HTTP 429, usage at 100 before
                   the last page) throttled_until = now + Meta's
                   estimated_time_to_regain_access (else 300 s): no call at
                   all before it (calls made while blocked prolong the block)
        token      (190, 102, or a token that cannot be opened) token_invalid:
                   no call until `rastro adaccount set --token-file` (or the
                   API) stores a new token; last_error says so
        retry,     (transport, 5xx, a reply that does not parse) nothing
        malformed  stored; next_sync_at = now + retry_s × 2^failures (≤ 1 h)
        rejected   (100, permissions, ...) next_sync_at = now + 1 h

    Pools: a campaign's utm_campaign is its id or its name (first 256
    characters, as the aggregator keeps UTMs: left ($6, 256) below), per ad_accounts.campaign_key;
    its pool on a day is the pool whose clicks carried that utm_campaign that
    day (analytics_hourly, most people's clicks, the lowest pool id on a
    tie), 0 when none did. Resolved when the row is stored: today's rows are
    re-resolved at every refresh; a past day keeps what it had when it was
    fetched last.

    Caveats: Meta reports days in the ad account's time zone; rastro asks for
    the owner's days, so the two should agree (they do for a Brazilian seller
    on America/Sao_Paulo). Spend is read in major units of the account's
    currency and stored × 100 (centavos for BRL); currency is kept in
    ad_accounts.currency. A stop request aborts a fetch in transfer
    (nothing of it is stored; the account stays due), and the heartbeat
    goes on during a slow fetch (rst_insights' progress callback).
*/
#include "rst_spendsync.h"
#include "rst_clock.h"
#include "rst_db.h"
#include "rst_http.h"
#include "rst_insights.h"
#include "rst_log.h"
#include "rst_metrics.h"
#include "rst_secret.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_CLS             "optimizer"
#define S_HEARTBEAT_MS    1000
#define S_BACKOFF_MIN_MS  500
#define S_BACKOFF_MAX_MS  10000
#define S_RETRY_MAX_S     3600
#define S_STR_(x)         #x
#define S_STR(x)          S_STR_ (x)

//  The statuses counted apart (rst_insights_status_t order).
#define S_STATUSES        6

struct rst_spendsync_t {
    const rst_config_t *cfg;        //  borrowed
    int instance;
    int instances;                  //  of [optimizer]: account ids are shared out modulo this

    long poll_ms;                   //  settings ([optimizer])
    long today_every_s;
    long backfill_days;
    long slow_pct;
    long slow_factor;
    long retry_s;
    long timeout_ms;

    rst_insights_t *insights;       //  owned: the Graph client
    rst_secret_t *secret;           //  master key, opened on first need
    int secret_failed;              //  logged once

    PGconn *pg;                     //  NULL while disconnected
    int pg_down;                    //  inside a failure episode (logged once)
    int backoff_ms;
    int64_t pg_next_ms;             //  no PostgreSQL work before this

    volatile sig_atomic_t *stop;    //  the run's stop flag (progress callback), or NULL
    int64_t next_poll_ms;
    int64_t next_heartbeat_ms;
    rst_metrics_t *metrics;         //  owned by the loop's thread
    int m_fetches[S_STATUSES], m_rows, m_pages, m_usage, m_due, m_pg_errors, m_pg_up;
};

//  One due account, as read for a fetch.
typedef struct {
    char ref[24];                   //  ad_accounts.id
    char owner_id[24];
    char account_id[RST_INSIGHTS_ID_MAX + 1];
    char campaign_key[8];           //  "id" or "name"
    char since[11], until[11];      //  the days to fetch
    char closes[11];                //  closed_through after it, "" = unchanged
    int failures;
    unsigned char *sealed;          //  token_enc (PQunescapeBytea; PQfreemem)
    size_t sealed_len;
} s_account_t;

//  --------------------------------------------------------------------------
//  Metrics and heartbeat

static void
s_metrics_declare (rst_spendsync_t *self)
{
    rst_metrics_t *m = self->metrics;
    for (int s = 0; s < S_STATUSES; s++) {
        char name[128];
        snprintf (name, sizeof name, "rastro_optimizer_spend_fetches_total{result=\"%s\"}",
                  rst_insights_status_name ((rst_insights_status_t) s));
        self->m_fetches[s] = rst_metrics_add (m, RST_METRIC_COUNTER, name,
                                              "Insights fetches of ad accounts, by outcome.",
                                              NULL, 0);
    }
    self->m_rows = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_optimizer_spend_rows_total",
                                    "Campaign/day spend rows stored.", NULL, 0);
    self->m_pages = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_optimizer_insights_pages_total",
                                     "Insights pages read (calls made to Meta).", NULL, 0);
    self->m_usage = rst_metrics_add (m, RST_METRIC_GAUGE, "rastro_optimizer_usage_pct",
                                     "Highest usage header percentage of the last fetch.", NULL,
                                     0);
    self->m_due = rst_metrics_add (m, RST_METRIC_GAUGE, "rastro_optimizer_accounts_due",
                                   "Ad accounts found due at the last poll.", NULL, 0);
    self->m_pg_errors = rst_metrics_add (m, RST_METRIC_COUNTER, "rastro_optimizer_pg_errors_total",
                                         "Failed PostgreSQL connects and statements.", NULL, 0);
    self->m_pg_up = rst_metrics_add (m, RST_METRIC_GAUGE, "rastro_optimizer_postgres_up",
                                     "1 when the last PostgreSQL operation succeeded.", NULL, 0);
}

static void
s_heartbeat (rst_spendsync_t *self, int force)
{
    int64_t now = rst_clock_mono_ms ();
    if (!force && now < self->next_heartbeat_ms)
        return;
    self->next_heartbeat_ms = now + S_HEARTBEAT_MS;
    rst_metrics_set (self->metrics, self->m_pg_up, self->pg && !self->pg_down ? 1 : 0);
    rst_metrics_heartbeat (self->metrics, self->cfg->data_dir, S_CLS, self->instance);
}

//  rst_insights' progress callback: the heartbeat keeps coming during a
//  slow fetch, and a stop request aborts it.
static int
s_on_progress (void *arg)
{
    rst_spendsync_t *self = arg;
    s_heartbeat (self, 0);
    return self->stop && *self->stop;
}

//  --------------------------------------------------------------------------
//  Construction

static int
s_setting (const rst_topology_t *topo, int instance, const char *key, long def, long min,
           long max, long *out, char *err, size_t errlen)
{
    long v = rst_topology_get_long (topo, S_CLS, instance, key, def);
    if (v < min || v > max) {
        snprintf (err, errlen, "topology: [optimizer] %s must be %ld..%ld, not %ld", key, min, max,
                  v);
        return -1;
    }
    *out = v;
    return 0;
}

rst_spendsync_t *
rst_spendsync_new (const rst_config_t *cfg, const rst_topology_t *topo, int instance, char *err,
                   size_t errlen)
{
    assert (cfg);
    assert (topo);
    rst_spendsync_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, errlen, "optimizer: out of memory");
        return NULL;
    }
    self->cfg = cfg;
    self->instance = instance;
    self->instances = rst_topology_instances (topo, S_CLS);
    if (self->instances < 1)
        self->instances = 1;
    self->backoff_ms = S_BACKOFF_MIN_MS;
    if (s_setting (topo, instance, "poll_ms", RST_SPENDSYNC_POLL_MS_DEFAULT, 50, 3600000,
                   &self->poll_ms, err, errlen)
        || s_setting (topo, instance, "today_every_s", RST_SPENDSYNC_TODAY_EVERY_S_DEFAULT, 1,
                      86400, &self->today_every_s, err, errlen)
        || s_setting (topo, instance, "backfill_days", RST_SPENDSYNC_BACKFILL_DAYS_DEFAULT, 1, 90,
                      &self->backfill_days, err, errlen)
        || s_setting (topo, instance, "slow_pct", RST_SPENDSYNC_SLOW_PCT_DEFAULT, 1, 100,
                      &self->slow_pct, err, errlen)
        || s_setting (topo, instance, "slow_factor", RST_SPENDSYNC_SLOW_FACTOR_DEFAULT, 1, 100,
                      &self->slow_factor, err, errlen)
        || s_setting (topo, instance, "retry_s", RST_SPENDSYNC_RETRY_S_DEFAULT, 1, S_RETRY_MAX_S,
                      &self->retry_s, err, errlen)
        || s_setting (topo, instance, "timeout_ms", RST_SPENDSYNC_TIMEOUT_MS_DEFAULT, 100, 600000,
                      &self->timeout_ms, err, errlen))
        goto fail;
    char why[512];
    self->insights = rst_insights_new (cfg->meta_graph_url, cfg->meta_api_version,
                                       self->timeout_ms, why, sizeof why);
    if (!self->insights) {
        snprintf (err, errlen, "optimizer: %s", why);
        goto fail;
    }
    rst_insights_set_progress (self->insights, s_on_progress, self);
    self->metrics = rst_metrics_new ();
    if (!self->metrics) {
        snprintf (err, errlen, "optimizer: out of memory");
        goto fail;
    }
    s_metrics_declare (self);
    self->pg = rst_db_connect (cfg, why, sizeof why);
    if (!self->pg) {
        rst_error (S_CLS, "PostgreSQL: %s; retrying", why);
        self->pg_down = 1;
        rst_metrics_inc (self->metrics, self->m_pg_errors, 1);
    }
    return self;
fail:
    rst_spendsync_destroy (&self);
    return NULL;
}

void
rst_spendsync_destroy (rst_spendsync_t **self_p)
{
    assert (self_p);
    rst_spendsync_t *self = *self_p;
    if (!self)
        return;
    if (self->pg)
        PQfinish (self->pg);
    rst_insights_destroy (&self->insights);
    rst_secret_destroy (&self->secret);
    rst_metrics_destroy (&self->metrics);
    free (self);
    *self_p = NULL;
}

void
rst_spendsync_print (const rst_spendsync_t *self)
{
    assert (self);
    rst_info (S_CLS, "instance = %d of %d (reads the ad accounts whose id %% %d = %d)",
              self->instance, self->instances, self->instances, self->instance);
    rst_info (S_CLS, "spend: Insights at %s/%s", self->cfg->meta_graph_url,
              self->cfg->meta_api_version);
    rst_info (S_CLS, "poll_ms = %ld (due ad accounts looked for)", self->poll_ms);
    rst_info (S_CLS, "today_every_s = %ld (today's spend refreshed)", self->today_every_s);
    rst_info (S_CLS, "backfill_days = %ld (fetched when an account is added)",
              self->backfill_days);
    rst_info (S_CLS, "slow_pct = %ld, slow_factor = %ld (usage at slow_pct: refresh slower)",
              self->slow_pct, self->slow_factor);
    rst_info (S_CLS, "retry_s = %ld (first wait after a failed fetch; doubles up to %d)",
              self->retry_s, S_RETRY_MAX_S);
    rst_info (S_CLS, "timeout_ms = %ld (per Insights page)", self->timeout_ms);
}

//  --------------------------------------------------------------------------
//  PostgreSQL

static void
s_pg_failed (rst_spendsync_t *self, const char *what, const char *why)
{
    rst_metrics_inc (self->metrics, self->m_pg_errors, 1);
    if (!self->pg_down)
        rst_error (S_CLS, "PostgreSQL: %s: %s; retrying with backoff", what, why);
    else
        rst_debug (S_CLS, "PostgreSQL: %s: %s", what, why);
    self->pg_down = 1;
    if (self->pg && PQstatus (self->pg) != CONNECTION_OK) {
        PQfinish (self->pg);
        self->pg = NULL;
    }
    self->pg_next_ms = rst_clock_mono_ms () + self->backoff_ms;
    self->backoff_ms = self->backoff_ms * 2 > S_BACKOFF_MAX_MS ? S_BACKOFF_MAX_MS
                                                                : self->backoff_ms * 2;
}

static void
s_pg_ok (rst_spendsync_t *self)
{
    if (self->pg_down)
        rst_info (S_CLS, "PostgreSQL is back");
    self->pg_down = 0;
    self->backoff_ms = S_BACKOFF_MIN_MS;
}

static int
s_pg_ready (rst_spendsync_t *self)
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

//  Runs SQL with NPARAMS text parameters; expects EXPECT. Returns the result
//  (the caller's) or NULL after s_pg_failed.
static PGresult *
s_exec (rst_spendsync_t *self, const char *what, const char *sql, int nparams,
        const char *const *params, ExecStatusType expect)
{
    PGresult *res = PQexecParams (self->pg, sql, nparams, NULL, params, NULL, NULL, 0);
    if (PQresultStatus (res) != expect) {
        char why[512];
        snprintf (why, sizeof why, "%s", PQerrorMessage (self->pg));
        why[strcspn (why, "\n")] = 0;
        PQclear (res);
        s_pg_failed (self, what, why);
        return NULL;
    }
    return res;
}

static void
s_rollback (rst_spendsync_t *self)
{
    if (self->pg && PQtransactionStatus (self->pg) != PQTRANS_IDLE)
        PQclear (PQexec (self->pg, "ROLLBACK"));
}

//  --------------------------------------------------------------------------
//  Storing a fetch

//  The account's state after a failed fetch: last_error, and what keeps it
//  from being called (token_invalid, throttled_until or next_sync_at).
static void
s_store_failure (rst_spendsync_t *self, const s_account_t *acc, const rst_insights_result_t *r)
{
    char usage[16] = "", wait[24] = "", retry[24] = "", token[2] = "f";
    const char *usage_p = NULL, *wait_p = NULL, *retry_p = NULL;
    if (r->usage.pct >= 0) {
        snprintf (usage, sizeof usage, "%d", r->usage.pct);
        usage_p = usage;
    }
    switch (r->status) {
    case RST_INSIGHTS_THROTTLED:
        snprintf (wait, sizeof wait, "%" PRId64, r->wait_s > 0 ? r->wait_s
                                                             : RST_INSIGHTS_DEFAULT_WAIT_S);
        wait_p = wait;
        break;
    case RST_INSIGHTS_TOKEN:
        token[0] = 't';
        break;
    case RST_INSIGHTS_REJECTED:
        snprintf (retry, sizeof retry, "%d", RST_SPENDSYNC_REJECTED_WAIT_S);
        retry_p = retry;
        break;
    default: {
        long s = self->retry_s;
        for (int i = 0; i < acc->failures && s < S_RETRY_MAX_S; i++)
            s *= 2;
        snprintf (retry, sizeof retry, "%ld", s > S_RETRY_MAX_S ? S_RETRY_MAX_S : s);
        retry_p = retry;
    }
    }
    char msg[1024];
    if (r->status == RST_INSIGHTS_TOKEN)
        snprintf (msg, sizeof msg, "%s: the token was refused; store a new one with `rastro "
                  "adaccount set %s --token-file F`", r->message, acc->account_id);
    else if (r->status == RST_INSIGHTS_THROTTLED)
        snprintf (msg, sizeof msg, "throttled by Meta for %s s: %s", wait, r->message);
    else
        snprintf (msg, sizeof msg, "%s", r->message);
    const char *params[] = {acc->ref, msg, usage_p, wait_p, token, retry_p};
    PGresult *res = s_exec (self, "record a failed fetch",
                            "UPDATE ad_accounts SET last_error = $2,"
                            " usage_pct = coalesce($3::int, usage_pct),"
                            " throttled_until = CASE WHEN $4::int IS NULL THEN throttled_until"
                            "   ELSE now() + $4::int * interval '1 second' END,"
                            " token_invalid = token_invalid OR $5::boolean,"
                            " failures = failures + 1,"
                            " next_sync_at = CASE WHEN $6::int IS NULL THEN next_sync_at"
                            "   ELSE now() + $6::int * interval '1 second' END"
                            " WHERE id = $1",
                            6, params, PGRES_COMMAND_OK);
    if (res) {
        s_pg_ok (self);
        PQclear (res);
    }
}

//  Stores REPORT for ACC in one transaction: the fetched days' rows are
//  replaced, the account's state updated. Returns 0, or -1 (rolled back;
//  the account stays due).
static int
s_store_report (rst_spendsync_t *self, const s_account_t *acc, const rst_insights_report_t *rep,
                const rst_insights_result_t *r)
{
    PGresult *res = s_exec (self, "BEGIN", "BEGIN", 0, NULL, PGRES_COMMAND_OK);
    if (!res)
        return -1;
    PQclear (res);
    //  The account may have been removed, or its campaign key changed (which
    //  makes every row wrong): then this fetch is dropped.
    const char *lock_params[] = {acc->ref, acc->campaign_key};
    res = s_exec (self, "lock the ad account",
                  "SELECT 1 FROM ad_accounts WHERE id = $1 AND campaign_key = $2 AND enabled"
                  " AND NOT token_invalid FOR UPDATE",
                  2, lock_params, PGRES_TUPLES_OK);
    if (!res)
        goto fail;
    int present = PQntuples (res) == 1;
    PQclear (res);
    if (!present) {
        rst_info (S_CLS, "act_%s changed while it was fetched (removed, disabled, new token or "
                  "campaign key): fetch dropped", acc->account_id);
        s_rollback (self);
        return 0;
    }
    const char *del_params[] = {acc->ref, acc->since, acc->until};
    res = s_exec (self, "replace spend rows",
                  "DELETE FROM campaign_spend WHERE ad_account_ref = $1"
                  " AND day BETWEEN $2::date AND $3::date",
                  3, del_params, PGRES_COMMAND_OK);
    if (!res)
        goto fail;
    PQclear (res);
    const char *currency = NULL;
    int by_name = !strcmp (acc->campaign_key, "name");
    for (size_t i = 0; i < rep->count; i++) {
        const rst_insights_row_t *row = &rep->rows[i];
        char cents[24];
        snprintf (cents, sizeof cents, "%" PRId64, row->spend_cents);
        if (row->currency[0])
            currency = row->currency;
        const char *params[] = {acc->ref, acc->owner_id, row->day, row->campaign_id,
                                row->campaign_name,
                                by_name ? row->campaign_name : row->campaign_id, cents};
        res = s_exec (self, "store a spend row",
                      "INSERT INTO campaign_spend (ad_account_ref, owner_id, day, campaign_id,"
                      "  campaign_name, utm_campaign, pool_id, spend_cents)"
                      " VALUES ($1, $2, $3::date, $4, $5, left ($6, 256),"
                      "  coalesce ((SELECT h.pool_id FROM analytics_hourly h"
                      "    WHERE h.owner_id = $2 AND h.day = $3::date"
                      "      AND h.utm_campaign = left ($6, 256) AND h.pool_id <> 0"
                      "    GROUP BY h.pool_id HAVING sum (h.clicks) > 0"
                      "    ORDER BY sum (h.clicks) DESC, h.pool_id LIMIT 1), 0),"
                      "  $7::bigint)"
                      " ON CONFLICT (ad_account_ref, day, campaign_id) DO UPDATE SET"
                      "  campaign_name = EXCLUDED.campaign_name,"
                      "  utm_campaign = EXCLUDED.utm_campaign, pool_id = EXCLUDED.pool_id,"
                      "  spend_cents = EXCLUDED.spend_cents, fetched_at = now ()",
                      7, params, PGRES_COMMAND_OK);
        if (!res)
            goto fail;
        PQclear (res);
    }
    //  Next refresh: today_every_s, slower while the usage is high; a usage
    //  at 100 blocks every call until Meta's regain time.
    char usage[16] = "", next[24], wait[24] = "";
    const char *usage_p = NULL, *wait_p = NULL;
    if (r->usage.pct >= 0) {
        snprintf (usage, sizeof usage, "%d", r->usage.pct);
        usage_p = usage;
    }
    long every = self->today_every_s;
    if (r->usage.pct >= self->slow_pct)
        every *= self->slow_factor;
    snprintf (next, sizeof next, "%ld", every);
    if (r->usage.pct >= RST_INSIGHTS_THROTTLE_PCT) {
        snprintf (wait, sizeof wait, "%" PRId64,
                  r->usage.regain_s > 0 ? r->usage.regain_s : (int64_t) RST_INSIGHTS_DEFAULT_WAIT_S);
        wait_p = wait;
    }
    const char *params[] = {acc->ref, usage_p, currency, acc->closes[0] ? acc->closes : NULL,
                            next, wait_p};
    res = s_exec (self, "update the ad account",
                  "UPDATE ad_accounts SET last_sync_at = now (), last_error = NULL, failures = 0,"
                  " usage_pct = $2::int, currency = coalesce ($3, currency),"
                  " backfilled_at = coalesce (backfilled_at, now ()),"
                  " closed_through = CASE WHEN $4::date IS NULL THEN closed_through"
                  "   ELSE greatest (coalesce (closed_through, $4::date), $4::date) END,"
                  " next_sync_at = now () + $5::int * interval '1 second',"
                  " throttled_until = CASE WHEN $6::int IS NULL THEN NULL"
                  "   ELSE now () + $6::int * interval '1 second' END"
                  " WHERE id = $1",
                  6, params, PGRES_COMMAND_OK);
    if (!res)
        goto fail;
    PQclear (res);
    res = s_exec (self, "COMMIT", "COMMIT", 0, NULL, PGRES_COMMAND_OK);
    if (!res)
        goto fail;
    PQclear (res);
    s_pg_ok (self);
    rst_metrics_inc (self->metrics, self->m_rows, (double) rep->count);
    return 0;
fail:
    s_rollback (self);
    return -1;
}

//  --------------------------------------------------------------------------
//  Fetching

//  Opens ACC's token. Returns the plaintext (rst_secret_free) or NULL: the
//  master key is missing (logged; retried) or the token cannot be opened
//  (*BAD_TOKEN set).
static char *
s_open_token (rst_spendsync_t *self, const s_account_t *acc, int *bad_token)
{
    *bad_token = 0;
    if (!self->secret) {
        char err[512];
        self->secret = rst_secret_new (self->cfg->master_key_file, 0, err, sizeof err);
        if (!self->secret) {
            if (!self->secret_failed)
                rst_error (S_CLS, "cannot read the master key: %s (ad accounts wait)", err);
            self->secret_failed = 1;
            return NULL;
        }
        self->secret_failed = 0;
    }
    char *token = rst_secret_open (self->secret, acc->sealed, acc->sealed_len);
    int clean = token && *token;
    for (const char *c = token; clean && *c; c++)
        clean = (unsigned char) *c > 0x20 && (unsigned char) *c < 0x7f;
    if (!clean) {
        rst_secret_free (token);
        *bad_token = 1;
        return NULL;
    }
    return token;
}

static void
s_sync_account (rst_spendsync_t *self, const s_account_t *acc)
{
    rst_insights_result_t r;
    rst_insights_report_t rep = {0};
    int bad_token;
    char *token = s_open_token (self, acc, &bad_token);
    if (!token) {
        if (!bad_token)
            return;
        memset (&r, 0, sizeof r);
        rst_insights_usage_init (&r.usage);
        r.status = RST_INSIGHTS_TOKEN;
        snprintf (r.message, sizeof r.message, "the stored token cannot be opened with the "
                  "master key");
        rst_error (S_CLS, "act_%s: %s", acc->account_id, r.message);
        rst_metrics_inc (self->metrics, self->m_fetches[r.status], 1);
        s_store_failure (self, acc, &r);
        return;
    }
    uint64_t t0 = rst_clock_mono_ns ();
    int rc = rst_insights_fetch (self->insights, acc->account_id, token, acc->since, acc->until,
                                 &rep, &r);
    rst_secret_free (token);
    rst_metrics_inc (self->metrics, self->m_fetches[r.status], 1);
    rst_metrics_inc (self->metrics, self->m_pages, r.pages);
    if (r.usage.pct >= 0)
        rst_metrics_set (self->metrics, self->m_usage, r.usage.pct);
    double secs = (double) (rst_clock_mono_ns () - t0) / 1e9;
    if (rc == 0) {
        if (s_store_report (self, acc, &rep, &r) == 0)
            rst_info (S_CLS, "act_%s: %zu rows for %s..%s (%d pages, usage %d%%, %.2f s)",
                      acc->account_id, rep.count, acc->since, acc->until, r.pages, r.usage.pct,
                      secs);
    }
    else if (self->stop && *self->stop)
        rst_info (S_CLS, "act_%s: fetch aborted by the stop request", acc->account_id);
    else {
        if (r.status == RST_INSIGHTS_RETRY || r.status == RST_INSIGHTS_THROTTLED)
            rst_warn (S_CLS, "act_%s: %s: %s%s%s", acc->account_id,
                      rst_insights_status_name (r.status), r.message,
                      r.fbtrace_id[0] ? " fbtrace_id " : "", r.fbtrace_id);
        else
            rst_error (S_CLS, "act_%s: %s: %s%s%s", acc->account_id,
                       rst_insights_status_name (r.status), r.message,
                       r.fbtrace_id[0] ? " fbtrace_id " : "", r.fbtrace_id);
        s_store_failure (self, acc, &r);
    }
    rst_insights_report_destroy (&rep);
}

static void
s_copy (char *dst, size_t len, PGresult *res, int row, int col)
{
    snprintf (dst, len, "%s", PQgetisnull (res, row, col) ? "" : PQgetvalue (res, row, col));
}

int
rst_spendsync_poll (rst_spendsync_t *self, volatile sig_atomic_t *stop)
{
    assert (self);
    self->stop = stop;
    if (!s_pg_ready (self))
        return -1;
    char days[16], mod[16], rem[16];
    snprintf (days, sizeof days, "%ld", self->backfill_days);
    snprintf (mod, sizeof mod, "%d", self->instances);
    snprintf (rem, sizeof rem, "%d", self->instance);
    const char *params[] = {days, mod, rem};
    //  Spend of the last days still tied to no pool: its campaign's clicks
    //  may have come since it was fetched (typically the first fetch of a
    //  new account or of a new day). Cheap, so every poll; the refresh of
    //  today re-decides the others.
    PGresult *res = s_exec (
        self, "tie recent spend to pools",
        "UPDATE campaign_spend c SET pool_id = r.pool_id"
        "  FROM (SELECT s.ad_account_ref, s.day, s.campaign_id,"
        "          (SELECT h.pool_id FROM analytics_hourly h"
        "            WHERE h.owner_id = s.owner_id AND h.day = s.day"
        "              AND h.utm_campaign = s.utm_campaign AND h.pool_id <> 0"
        "            GROUP BY h.pool_id HAVING sum (h.clicks) > 0"
        "            ORDER BY sum (h.clicks) DESC, h.pool_id LIMIT 1) AS pool_id"
        "          FROM campaign_spend s"
        "         WHERE s.pool_id = 0 AND s.day >= current_date - 2"
        "           AND s.ad_account_ref % $1::int = $2::int) r"
        " WHERE c.ad_account_ref = r.ad_account_ref AND c.day = r.day"
        "   AND c.campaign_id = r.campaign_id AND r.pool_id IS NOT NULL",
        2, params + 1, PGRES_COMMAND_OK);
    if (!res)
        return -1;
    PQclear (res);
    //  For each due account: the days to fetch. BACKFILL the first time,
    //  CLOSE when a day ended since the last close, else REFRESH today.
    res = s_exec (
        self, "read due ad accounts",
        "WITH a AS ("
        "  SELECT a.*, (now () AT TIME ZONE rastro_timezone (u.timezone))::date AS today"
        "    FROM ad_accounts a JOIN users u ON u.id = a.owner_id"
        "   WHERE a.enabled AND NOT a.token_invalid AND a.id % $2::int = $3::int"
        "     AND (a.next_sync_at IS NULL OR a.next_sync_at <= now ())"
        "     AND (a.throttled_until IS NULL OR a.throttled_until <= now ()))"
        " SELECT id, owner_id, account_id, campaign_key, failures, token_enc,"
        "  (CASE WHEN backfilled_at IS NULL THEN today - ($1::int - 1)"
        "        WHEN closed_through IS NULL OR closed_through < today - 1"
        "          THEN greatest (coalesce (closed_through + 1, today - 1), today - ($1::int - 1))"
        "        ELSE today END)::text AS since,"
        "  today::text AS until,"
        "  CASE WHEN backfilled_at IS NULL OR closed_through IS NULL OR closed_through < today - 1"
        "       THEN (today - 1)::text END AS closes"
        " FROM a ORDER BY next_sync_at NULLS FIRST, id LIMIT " S_STR (RST_SPENDSYNC_BATCH),
        3, params, PGRES_TUPLES_OK);
    if (!res)
        return -1;
    s_pg_ok (self);
    int n = PQntuples (res);
    rst_metrics_set (self->metrics, self->m_due, n);
    int done = 0;
    for (int i = 0; i < n && !(stop && *stop); i++) {
        s_account_t acc;
        memset (&acc, 0, sizeof acc);
        s_copy (acc.ref, sizeof acc.ref, res, i, 0);
        s_copy (acc.owner_id, sizeof acc.owner_id, res, i, 1);
        s_copy (acc.account_id, sizeof acc.account_id, res, i, 2);
        s_copy (acc.campaign_key, sizeof acc.campaign_key, res, i, 3);
        acc.failures = atoi (PQgetvalue (res, i, 4));
        s_copy (acc.since, sizeof acc.since, res, i, 6);
        s_copy (acc.until, sizeof acc.until, res, i, 7);
        s_copy (acc.closes, sizeof acc.closes, res, i, 8);
        acc.sealed = PQunescapeBytea ((const unsigned char *) PQgetvalue (res, i, 5),
                                      &acc.sealed_len);
        if (!acc.sealed) {
            rst_error (S_CLS, "act_%s: out of memory reading its token", acc.account_id);
            continue;
        }
        s_sync_account (self, &acc);
        PQfreemem (acc.sealed);
        done++;
        s_heartbeat (self, 0);
        if (!self->pg)
            break;
    }
    PQclear (res);
    return done;
}

//  --------------------------------------------------------------------------
//  The loop

int
rst_spendsync_run (rst_spendsync_t *self, volatile sig_atomic_t *stop)
{
    assert (self);
    rst_info (S_CLS, "keeping campaign_spend from Meta's Insights");
    while (!*stop) {
        int64_t now = rst_clock_mono_ms ();
        if (now >= self->next_poll_ms) {
            rst_spendsync_poll (self, stop);
            self->next_poll_ms = rst_clock_mono_ms () + self->poll_ms;
        }
        s_heartbeat (self, 0);
        now = rst_clock_mono_ms ();
        int64_t wake = self->next_poll_ms < self->next_heartbeat_ms ? self->next_poll_ms
                                                                     : self->next_heartbeat_ms;
        int64_t wait = wake - now;
        if (wait <= 0)
            continue;
        struct timespec ts = {wait / 1000, (long) (wait % 1000) * 1000000L};
        nanosleep (&ts, NULL);          //  a signal ends it early (EINTR): *stop is checked
    }
    s_heartbeat (self, 1);
    return 0;
}
