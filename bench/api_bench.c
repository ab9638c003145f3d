/*  api_bench — latency of the analytics API's handlers (lib/rst_apiq.c), SQL + JSON.

    Calls each route's handler directly with a PGconn, as an API worker
    does (plan_cache_mode set as the route's flags say), and serialises the answer (cJSON_PrintUnformatted, what rst_api
    sends), so the figures leave out only the HTTP glue. Run by bench/api.sh
    against the data set of bench/api_gen.sql:

        bench_api_bench --db CONNINFO [--email bench@rastro.local]
                        [--iterations 300] [--warmup 30] [--only TEXT]

    For every case (route × range × filter) it prints one markdown table row:
    p50, p99 and max in milliseconds over ITERATIONS calls after WARMUP, the
    mean CPU time per call of this process and of its PostgreSQL backend
    (/proc/PID/stat, clock ticks: the work itself, whatever else the machine
    runs meanwhile), and the size of the answer. The custom 366-day case uses the range (ending
    within the data's year) whose block cover is the longest, the worst case
    of the rollups. --only runs the cases whose label contains TEXT. Exits 1 when a handler fails or answers anything but 200.
*/
#include "rst_apiq.h"

#include <libpq-fe.h>
#include <inttypes.h>
#include <sys/resource.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    const char *label;
    const char *pattern;    //  the route
    char path[64];
    char query[256];
    int64_t id;             //  the :id, if any
} s_case_t;

static double
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec * 1e3 + (double) ts.tv_nsec / 1e6;
}

//  CPU seconds used so far by this process (user + system).
static double
s_self_cpu (void)
{
    struct rusage ru;
    getrusage (RUSAGE_SELF, &ru);
    return (double) ru.ru_utime.tv_sec + (double) ru.ru_utime.tv_usec / 1e6
         + (double) ru.ru_stime.tv_sec + (double) ru.ru_stime.tv_usec / 1e6;
}

//  CPU seconds used so far by the PostgreSQL backend PID (utime + stime of
//  /proc/PID/stat), or -1 when unreadable.
static double
s_backend_cpu (int pid)
{
    char path[64], line[1024];
    snprintf (path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen (path, "r");
    if (!f)
        return -1;
    size_t n = fread (line, 1, sizeof line - 1, f);
    fclose (f);
    line[n] = 0;
    char *p = strrchr (line, ')');
    unsigned long ut = 0, st = 0;
    if (!p || sscanf (p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double) (ut + st) / (double) sysconf (_SC_CLK_TCK);
}

static int
s_cmp_double (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return (x > y) - (x < y);
}

static const rst_api_route_t *
s_route (const char *pattern)
{
    for (const rst_api_route_t *r = rst_apiq_routes; r->method; r++)
        if (!strcmp (r->pattern, pattern))
            return r;
    return NULL;
}

static char *
s_scalar (PGconn *db, const char *sql)
{
    PGresult *r = PQexec (db, sql);
    if (PQresultStatus (r) != PGRES_TUPLES_OK || PQntuples (r) < 1) {
        fprintf (stderr, "api_bench: %s: %s", sql, PQerrorMessage (db));
        exit (1);
    }
    char *v = strdup (PQgetvalue (r, 0, 0));
    PQclear (r);
    return v;
}

int
main (int argc, char **argv)
{
    const char *conninfo = NULL, *email = "bench@rastro.local", *only = NULL;
    int iterations = 300, warmup = 30;
    for (int i = 1; i < argc; i++) {
        if (!strcmp (argv[i], "--db") && i + 1 < argc)
            conninfo = argv[++i];
        else if (!strcmp (argv[i], "--email") && i + 1 < argc)
            email = argv[++i];
        else if (!strcmp (argv[i], "--iterations") && i + 1 < argc)
            iterations = atoi (argv[++i]);
        else if (!strcmp (argv[i], "--warmup") && i + 1 < argc)
            warmup = atoi (argv[++i]);
        else if (!strcmp (argv[i], "--only") && i + 1 < argc)
            only = argv[++i];
        else {
            fprintf (stderr, "usage: %s --db CONNINFO [--email E] [--iterations N] [--warmup N]"
                     " [--only TEXT]\n",
                     argv[0]);
            return 2;
        }
    }
    if (!conninfo || iterations < 1 || warmup < 0) {
        fprintf (stderr, "api_bench: --db CONNINFO is required\n");
        return 2;
    }
    PGconn *db = PQconnectdb (conninfo);
    if (PQstatus (db) != CONNECTION_OK) {
        fprintf (stderr, "api_bench: %s", PQerrorMessage (db));
        return 1;
    }
    char sql[512];
    char esc[128];
    PQescapeStringConn (db, esc, email, strlen (email) < 60 ? strlen (email) : 60, NULL);
    snprintf (sql, sizeof sql, "SELECT id FROM users WHERE email = '%s'", esc);
    char *owner_s = s_scalar (db, sql);
    int64_t owner = strtoll (owner_s, NULL, 10);
    snprintf (sql, sizeof sql, "SELECT timezone FROM users WHERE id = %" PRId64, owner);
    char *tz = s_scalar (db, sql);
    snprintf (sql, sizeof sql, "SELECT min (id) FROM bots WHERE owner_id = %" PRId64, owner);
    char *bot = s_scalar (db, sql);
    snprintf (sql, sizeof sql, "SELECT min (id) FROM pools WHERE owner_id = %" PRId64, owner);
    char *pool = s_scalar (db, sql);
    snprintf (sql, sizeof sql, "SELECT (now () AT TIME ZONE rastro_timezone ('%s'))::date - DATE '1970-01-01'", tz);
    char *today_s = s_scalar (db, sql);
    int32_t today = (int32_t) atoi (today_s);
    snprintf (sql, sizeof sql,
              "SELECT (extract (epoch FROM created_at) * 1000000)::bigint || ' ' || id FROM leads"
              " WHERE owner_id = %" PRId64 " ORDER BY created_at DESC, id DESC OFFSET 150000 LIMIT 1",
              owner);
    char *mid = s_scalar (db, sql);
    int64_t mid_us = 0, mid_id = 0;
    sscanf (mid, "%" SCNd64 " %" SCNd64, &mid_us, &mid_id);
    char cursor[RST_APIQ_CURSOR_MAX + 1];
    rst_apiq_cursor_encode (mid_us, mid_id, cursor);
    snprintf (sql, sizeof sql, "SELECT max (id) FROM leads WHERE owner_id = %" PRId64, owner);
    char *lead = s_scalar (db, sql);
    snprintf (sql, sizeof sql, "SELECT max (id) FROM payments WHERE owner_id = %" PRId64, owner);
    char *payment = s_scalar (db, sql);

    //  The 366-day range (within the data's year and the 365 days before)
    //  with the longest block cover.
    int16_t lvl[RST_APIQ_MAX_BLOCKS];
    int32_t start[RST_APIQ_MAX_BLOCKS];
    int32_t worst_to = today;
    size_t worst = 0;
    for (int32_t to = today; to > today - 366; to--) {
        size_t n = rst_apiq_cover (to - 365, to, lvl, start, RST_APIQ_MAX_BLOCKS);
        if (n > worst)
            worst = n, worst_to = to;
    }
    size_t n30 = 0;
    for (int32_t to = today; to > today - 366; to--) {
        size_t n = rst_apiq_cover (to - 29, to, lvl, start, RST_APIQ_MAX_BLOCKS);
        n30 = n > n30 ? n : n30;
    }
    char y_from[11], y_to[11], year[64];
    rst_apiq_format_date (worst_to - 365, y_from);
    rst_apiq_format_date (worst_to, y_to);
    snprintf (year, sizeof year, "range=custom&from=%s&to=%s", y_from, y_to);
    //  /hourly's longest range: the 31 days up to today.
    char m_from[11], m_to[11], month31[64];
    rst_apiq_format_date (today - 30, m_from);
    rst_apiq_format_date (today, m_to);
    snprintf (month31, sizeof month31, "range=custom&from=%s&to=%s", m_from, m_to);
    printf ("366-day worst-case range %s..%s: %zu blocks (the longest cover of any 30-day range: %zu)\n\n",
            y_from, y_to, worst, n30);

    s_case_t cases[64];
    size_t ncases = 0;
#define CASE(label_, pattern_, query_, ...)                                                    \
    do {                                                                                     \
        s_case_t *c = &cases[ncases++];                                                      \
        memset (c, 0, sizeof *c);                                                            \
        c->label = label_;                                                                   \
        c->pattern = pattern_;                                                               \
        snprintf (c->path, sizeof c->path, "%s", pattern_);                                  \
        snprintf (c->query, sizeof c->query, query_, __VA_ARGS__);                           \
    } while (0)
    CASE ("summary today", "/summary", "%s", "range=today");
    CASE ("summary 7d", "/summary", "%s", "range=7d");
    CASE ("summary 30d", "/summary", "%s", "range=30d");
    CASE ("summary 366d", "/summary", "%s", year);
    CASE ("summary 366d pool", "/summary", "%s&pool=%s", year, pool);
    CASE ("summary 366d bot", "/summary", "%s&bot=%s", year, bot);
    CASE ("funnel 30d", "/funnel", "%s", "range=30d");
    CASE ("funnel 366d bot", "/funnel", "%s&bot=%s", year, bot);
    CASE ("hourly today", "/hourly", "%s", "range=today");
    CASE ("hourly 30d", "/hourly", "%s", "range=30d");
    CASE ("hourly 30d bot", "/hourly", "%s&bot=%s", "range=30d", bot);
    CASE ("hourly 30d pool", "/hourly", "%s&pool=%s", "range=30d", pool);
    CASE ("hourly 31d", "/hourly", "%s", month31);
    CASE ("hourly 31d bot", "/hourly", "%s&bot=%s", month31, bot);
    CASE ("daily 30d", "/daily", "%s", "range=30d");
    CASE ("daily 366d", "/daily", "%s", year);
    CASE ("daily 366d pool", "/daily", "%s&pool=%s", year, pool);
    CASE ("daily 366d bot", "/daily", "%s&bot=%s", year, bot);
    CASE ("daily 366d bot pool", "/daily", "%s&bot=%s&pool=%s", year, bot, pool);
    CASE ("utm campaign 30d", "/utm", "%s", "range=30d");
    CASE ("utm campaign 366d", "/utm", "%s", year);
    CASE ("utm source 366d pool", "/utm", "%s&group=source&pool=%s", year, pool);
    CASE ("by-bot today", "/by-bot", "%s", "range=today");
    CASE ("by-bot 30d", "/by-bot", "%s", "range=30d");
    CASE ("by-bot 366d", "/by-bot", "%s", year);
    CASE ("by-pool 30d", "/by-pool", "%s", "range=30d");
    CASE ("by-pool 366d", "/by-pool", "%s", year);
    CASE ("leads first page", "/leads", "%s", "limit=50");
    CASE ("leads mid cursor", "/leads", "limit=50&cursor=%s", cursor);
    CASE ("leads bot 200", "/leads", "limit=200&bot=%s", bot);
    CASE ("payments first page", "/payments", "%s", "limit=50");
    CASE ("payments paid pool", "/payments", "status=paid&pool=%s", pool);
    CASE ("payments pool", "/payments", "limit=50&pool=%s", pool);
    CASE ("lead detail", "/leads/:id", "%s", "");
    cases[ncases - 1].id = strtoll (lead, NULL, 10);
    snprintf (cases[ncases - 1].path, sizeof cases[ncases - 1].path, "/leads/%s", lead);
    CASE ("payment detail", "/payments/:id", "%s", "");
    cases[ncases - 1].id = strtoll (payment, NULL, 10);
    snprintf (cases[ncases - 1].path, sizeof cases[ncases - 1].path, "/payments/%s", payment);

    printf ("| case | p50 ms | p99 ms | max ms | CPU ms/call (client + PostgreSQL) | answer bytes |\n"
            "|---|---:|---:|---:|---:|---:|\n");
    int backend = PQbackendPID (db);
    double *ms = calloc ((size_t) iterations, sizeof *ms);
    int failed = 0;
    for (size_t k = 0; k < ncases; k++) {
        s_case_t *c = &cases[k];
        if (only && !strstr (c->label, only))
            continue;
        const rst_api_route_t *route = s_route (c->pattern);
        if (!route) {
            fprintf (stderr, "api_bench: no route %s\n", c->pattern);
            return 1;
        }
        rst_api_req_t req = {.method = "GET", .path = c->path, .query = c->query, .content_type = "",
                             .client_ip = "127.0.0.1", .user_agent = "", .owner_id = owner,
                             .timezone = tz};
        if (c->id) {
            req.ids[0] = c->id;
            req.nids = 1;
        }
        //  As the API worker does for the route (RST_API_GENERIC_PLANS).
        PQclear (PQexec (db, (route->flags & RST_API_GENERIC_PLANS)
                                 ? "SET plan_cache_mode = force_generic_plan"
                                 : "RESET plan_cache_mode"));
        size_t bytes = 0;
        double cpu0 = 0, pg0 = 0;
        for (int i = 0; i < warmup + iterations; i++) {
            if (i == warmup) {
                cpu0 = s_self_cpu ();
                pg0 = s_backend_cpu (backend);
            }
            rst_api_res_t res = {0};
            double t0 = s_now_ms ();
            int rc = route->fn (&req, db, &res);
            char *text = res.json ? cJSON_PrintUnformatted (res.json) : NULL;
            double t1 = s_now_ms ();
            if (rc || (res.status && res.status != 200) || !text) {
                fprintf (stderr, "api_bench: %s?%s: rc %d status %d %s\n", c->path, c->query, rc,
                         res.status, text ? text : "");
                failed = 1;
                free (text);
                cJSON_Delete (res.json);
                break;
            }
            bytes = strlen (text);
            free (text);
            cJSON_Delete (res.json);
            free (res.set_cookie);
            if (i >= warmup)
                ms[i - warmup] = t1 - t0;
        }
        if (failed)
            break;
        double cpu = s_self_cpu () - cpu0, pg1 = s_backend_cpu (backend);
        double pg = pg0 >= 0 && pg1 >= 0 ? pg1 - pg0 : 0;
        qsort (ms, (size_t) iterations, sizeof *ms, s_cmp_double);
        size_t p99 = ((size_t) iterations * 99 + 99) / 100;
        printf ("| %s | %.2f | %.2f | %.2f | %.2f + %.2f | %zu |\n", c->label, ms[iterations / 2],
                ms[p99 > 0 ? p99 - 1 : 0], ms[iterations - 1], cpu * 1e3 / iterations,
                pg * 1e3 / iterations, bytes);
        fflush (stdout);
    }
    free (ms);
    free (owner_s), free (tz), free (bot), free (pool), free (today_s), free (mid), free (lead),
        free (payment);
    PQfinish (db);
    return failed;
}
