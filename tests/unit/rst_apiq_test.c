/*  rst_apiq_test — the analytics API's pieces: dates, block covers, cursors,
    and the handlers against a real PostgreSQL.

    The first test is the tour: a 366-day range is read as a few aligned
    blocks of 4^L days that cover it exactly. Then: every cover of every
    range of up to 400 days within four years is exact, aligned, in order
    and short; strict date parsing (and the formatter agrees with gmtime
    for every day from 1970 to 2200); cursors round-trip and malformed
    ones are refused.

    The handler tests need RASTRO_TEST_SERVER (a libpq conninfo without
    dbname, exported by scripts/test; without it they are skipped): a fresh
    database with every migration, two sellers' hourly rows written with
    the aggregator's INSERT ... ON CONFLICT shape (so the rollup triggers of
    008 and 009 run), spend, then /summary, /by-bot, /utm, /daily, /hourly's
    31-day cap and /leads are called
    directly and their JSON checked, including 404 for the other seller's
    bot and 400 for bad parameters. (tests/integration/test_api_analytics.sh
    checks every route over HTTP.) Last, rst_db_exec_prepared, which every
    handler's statements go through.
*/
#include "rst_apiq.h"
#include "rst_db.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

// ---------------------------------------------------------------------------
//  Pure functions

//  Checks that LVL/START (N blocks) cover [FROM, TO] exactly, in order, aligned.
static void
s_check_cover (int32_t from, int32_t to, const int16_t *lvl, const int32_t *start, size_t n)
{
    assert_true (n > 0);
    int32_t next = from;
    for (size_t i = 0; i < n; i++) {
        assert_true (lvl[i] >= 0 && lvl[i] <= RST_APIQ_MAX_LEVEL);
        int32_t size = 1 << (2 * lvl[i]);
        assert_int_equal (start[i], next);
        assert_int_equal (start[i] % size, 0);
        next = start[i] + size;
    }
    assert_int_equal (next, to + 1);
}

static void
test_tour (void **state)
{
    (void) state;
    //  2025-06-02 .. 2026-06-02 is 366 days.
    int32_t from, to;
    assert_int_equal (rst_apiq_parse_date ("2025-06-02", &from), 0);
    assert_int_equal (rst_apiq_parse_date ("2026-06-02", &to), 0);
    assert_int_equal (to - from + 1, 366);
    int16_t lvl[RST_APIQ_MAX_BLOCKS];
    int32_t start[RST_APIQ_MAX_BLOCKS];
    size_t n = rst_apiq_cover (from, to, lvl, start, RST_APIQ_MAX_BLOCKS);
    s_check_cover (from, to, lvl, start, n);
    assert_true (n <= 26);          //  instead of 366 day rows
    //  One day is one level-0 block; an aligned 256-day run is one block.
    assert_int_equal (rst_apiq_cover (from, from, lvl, start, RST_APIQ_MAX_BLOCKS), 1);
    assert_int_equal (lvl[0], 0);
    assert_int_equal (rst_apiq_cover (256 * 80, 256 * 81 - 1, lvl, start, RST_APIQ_MAX_BLOCKS), 1);
    assert_int_equal (lvl[0], 4);
    //  Not enough room, or a reversed range: 0.
    assert_int_equal (rst_apiq_cover (from, to, lvl, start, 3), 0);
    assert_int_equal (rst_apiq_cover (to, from, lvl, start, RST_APIQ_MAX_BLOCKS), 0);
}

static void
test_cover_every_range (void **state)
{
    (void) state;
    int16_t lvl[RST_APIQ_MAX_BLOCKS];
    int32_t start[RST_APIQ_MAX_BLOCKS];
    size_t worst = 0;
    for (int32_t from = 20000; from < 20000 + 4 * 365; from += 3)
        for (int32_t len = 1; len <= 400; len += (len < 40 ? 1 : 7)) {
            size_t n = rst_apiq_cover (from, from + len - 1, lvl, start, RST_APIQ_MAX_BLOCKS);
            s_check_cover (from, from + len - 1, lvl, start, n);
            worst = n > worst ? n : worst;
        }
    assert_true (worst <= 27);
}

static void
test_dates (void **state)
{
    (void) state;
    int32_t d;
    assert_int_equal (rst_apiq_parse_date ("1970-01-01", &d), 0);
    assert_int_equal (d, 0);
    assert_int_equal (rst_apiq_parse_date ("2024-02-29", &d), 0);
    assert_int_equal (rst_apiq_parse_date ("2000-02-29", &d), 0);
    assert_int_equal (rst_apiq_parse_date ("9999-12-31", &d), 0);
    const char *bad[] = {"2023-02-29", "1900-02-29", "2026-02-30", "2026-04-31", "2026-13-01",
                         "2026-00-10", "2026-01-00", "2026-1-01", "2026-01-1", "20260101",
                         "2026-01-01 ", " 2026-01-01", "2026-01-01x", "1969-12-31", "2026/01/01",
                         "+026-01-01", "2026-0a-01", "", "2026-01-32", NULL};
    for (int i = 0; bad[i]; i++)
        assert_int_equal (rst_apiq_parse_date (bad[i], &d), -1);
    assert_int_equal (rst_apiq_parse_date (NULL, &d), -1);

    //  The formatter and parser agree with gmtime for every day to 2200.
    for (int32_t day = 0; day < 84000; day++) {
        time_t t = (time_t) day * 86400;
        struct tm tm;
        assert_non_null (gmtime_r (&t, &tm));
        char want[32], got[11];
        snprintf (want, sizeof want, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
        rst_apiq_format_date (day, got);
        assert_string_equal (got, want);
        assert_int_equal (rst_apiq_parse_date (want, &d), 0);
        assert_int_equal (d, day);
    }
}

static void
test_cursor (void **state)
{
    (void) state;
    char c[RST_APIQ_CURSOR_MAX + 1];
    int64_t us, id;
    rst_apiq_cursor_encode (1773144000123456, 42, c);
    assert_int_equal (rst_apiq_cursor_decode (c, &us, &id), 0);
    assert_true (us == 1773144000123456 && id == 42);
    rst_apiq_cursor_encode (999999999999999999, 999999999999999999, c);
    assert_true (strlen (c) <= RST_APIQ_CURSOR_MAX);
    assert_int_equal (rst_apiq_cursor_decode (c, &us, &id), 0);
    assert_true (us == 999999999999999999 && id == 999999999999999999);
    //  Upper-case hex is the same cursor.
    assert_int_equal (rst_apiq_cursor_decode ("313A32", &us, &id), 0);
    assert_true (us == 1 && id == 2);

    //  hex of: "1:0" (id 0), "12" (no colon), "-1:2", "1:2x", ":2", "1:", "1::2",
    //  19 digits, and raw garbage.
    const char *bad[] = {"313a30", "3132", "2d313a32", "313a3278", "3a32", "313a", "313a3a32",
                         "31313131313131313131313131313131313131313a32", "zz", "313", "",
                         "313a32" "00", NULL};
    for (int i = 0; bad[i]; i++)
        assert_int_equal (rst_apiq_cursor_decode (bad[i], &us, &id), -1);
    char longer[RST_APIQ_CURSOR_MAX + 3];
    memset (longer, '3', sizeof longer - 1);
    longer[sizeof longer - 1] = 0;
    assert_int_equal (rst_apiq_cursor_decode (longer, &us, &id), -1);
    assert_int_equal (rst_apiq_cursor_decode (NULL, &us, &id), -1);
}

// ---------------------------------------------------------------------------
//  Handlers against PostgreSQL

typedef struct {
    char dbname[64];
    PGconn *admin;
    PGconn *pg;
    char a[24], b[24];      //  the two sellers' ids
} s_fixture_t;

static void
s_exec (PGconn *pg, const char *sql)
{
    PGresult *res = PQexec (pg, sql);
    if (PQresultStatus (res) != PGRES_COMMAND_OK && PQresultStatus (res) != PGRES_TUPLES_OK)
        fail_msg ("%s: %s", sql, PQerrorMessage (pg));
    PQclear (res);
}

static int
s_setup (void **state)
{
    const char *server = getenv ("RASTRO_TEST_SERVER");
    s_fixture_t *f = calloc (1, sizeof *f);
    assert_non_null (f);
    *state = f;
    if (!server || !server[0])
        return 0;
    static int seq;
    snprintf (f->dbname, sizeof f->dbname, "rst_apiq_%d_%d", (int) getpid (), ++seq);
    char conninfo[1200], sql[256];
    snprintf (conninfo, sizeof conninfo, "%s dbname=postgres", server);
    f->admin = PQconnectdb (conninfo);
    if (PQstatus (f->admin) != CONNECTION_OK)
        fail_msg ("RASTRO_TEST_SERVER: %s", PQerrorMessage (f->admin));
    snprintf (sql, sizeof sql, "CREATE DATABASE %s", f->dbname);
    s_exec (f->admin, sql);
    snprintf (conninfo, sizeof conninfo, "%s dbname=%s", server, f->dbname);
    f->pg = PQconnectdb (conninfo);
    if (PQstatus (f->pg) != CONNECTION_OK)
        fail_msg ("%s", PQerrorMessage (f->pg));
    char err[1024];
    if (rst_db_migrate (f->pg, err, sizeof err) < 0)
        fail_msg ("migrate: %s", err);
    s_exec (f->pg, "SET client_min_messages = warning");
    s_exec (f->pg,
        "INSERT INTO users (id, email, password_hash) VALUES (1, 'a@x.io', 'x'), (2, 'b@x.io', 'x');"
        "INSERT INTO pixels (id, owner_id, pixel_id, token_enc) VALUES (1, 1, '1', '\\x00'), (2, 2, '2', '\\x00');"
        "INSERT INTO bots (id, owner_id, telegram_id, username, token_enc) VALUES"
        " (11, 1, 11, 'bot_eleven', '\\x00'), (12, 1, 12, 'bot_twelve', '\\x00'), (21, 2, 21, 'bot_other', '\\x00');"
        "INSERT INTO pools (id, owner_id, slug, pixel_ref) VALUES (5, 1, 'p5', 1), (6, 2, 'p6', 2);"
        "INSERT INTO ad_accounts (id, owner_id, account_id, token_enc) VALUES (7, 1, '7', '\\x00');"
        "INSERT INTO campaign_spend (ad_account_ref, owner_id, day, campaign_id, campaign_name,"
        "                            utm_campaign, pool_id, spend_cents)"
        " VALUES (7, 1, '2026-03-10', 'c', 'c', 'spring', 5, 4000);"
        "INSERT INTO manual_spend (owner_id, pool_id, day, amount_cents) VALUES (1, 5, '2026-03-11', 1000);");
    const char *agg =
        "INSERT INTO analytics_hourly AS h (owner_id, day, hour, pool_id, bot_id, utm_source, utm_campaign,"
        "  clicks, automated_clicks, starts, checkouts, purchases, revenue_cents) VALUES %s"
        " ON CONFLICT (owner_id, day, hour, pool_id, bot_id, utm_source, utm_campaign) DO UPDATE SET"
        "  clicks = h.clicks + EXCLUDED.clicks, automated_clicks = h.automated_clicks + EXCLUDED.automated_clicks,"
        "  starts = h.starts + EXCLUDED.starts, checkouts = h.checkouts + EXCLUDED.checkouts,"
        "  purchases = h.purchases + EXCLUDED.purchases, revenue_cents = h.revenue_cents + EXCLUDED.revenue_cents";
    const char *batches[] = {
        "(1, '2026-03-10', 8, 5, 11, 'fb', 'spring', 10, 1, 4, 2, 1, 9700),"
        "(2, '2026-03-10', 8, 6, 21, 'fb', 'spring', 500, 0, 0, 0, 0, 0)",
        "(1, '2026-03-10', 8, 5, 11, 'fb', 'spring', 2, 0, 1, 0, 0, 0),"
        "(1, '2026-03-11', 20, 5, 12, 'ig', '', 6, 0, 3, 1, 1, 4700)",
        NULL};
    for (int i = 0; batches[i]; i++) {
        char q[2048];
        snprintf (q, sizeof q, agg, batches[i]);
        s_exec (f->pg, q);
    }
    snprintf (f->a, sizeof f->a, "1");
    snprintf (f->b, sizeof f->b, "2");
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *f = *state;
    if (f->pg)
        PQfinish (f->pg);
    if (f->admin) {
        char sql[256];
        snprintf (sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", f->dbname);
        PQclear (PQexec (f->admin, sql));
        PQfinish (f->admin);
    }
    free (f);
    return 0;
}

//  Calls the route PATTERN as OWNER with QUERY; returns the status, sets
//  *JSON_P to the answer as printed and parsed again (the caller frees it).
static int
s_call (s_fixture_t *f, int64_t owner, const char *pattern, int64_t id, const char *query,
        cJSON **json_p)
{
    const rst_api_route_t *route = NULL;
    for (const rst_api_route_t *r = rst_apiq_routes; r->method; r++)
        if (!strcmp (r->pattern, pattern))
            route = r;
    assert_non_null (route);
    rst_api_req_t req = {.method = "GET", .path = pattern, .query = query, .content_type = "",
                         .client_ip = "127.0.0.1", .user_agent = "", .owner_id = owner,
                         .timezone = "America/Sao_Paulo"};
    if (id) {
        req.ids[0] = id;
        req.nids = 1;
    }
    rst_api_res_t res = {0};
    assert_int_equal (route->fn (&req, f->pg, &res), 0);
    assert_non_null (res.json);
    assert_int_equal (PQtransactionStatus (f->pg), PQTRANS_IDLE);
    //  What the client gets: the printed text (numbers are raw JSON values), parsed.
    char *text = cJSON_PrintUnformatted (res.json);
    assert_non_null (text);
    *json_p = cJSON_Parse (text);
    if (!*json_p)
        fail_msg ("%s?%s: not JSON: %s", pattern, query, text);
    free (text);
    cJSON_Delete (res.json);
    return res.status ? res.status : 200;
}

static double
s_num (const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive (o, key);
    assert_true (cJSON_IsNumber (v));
    return v->valuedouble;
}

static void
test_handlers (void **state)
{
    s_fixture_t *f = *state;
    if (!f->pg)
        skip ();
    const char *range = "range=custom&from=2026-03-10&to=2026-03-11";
    cJSON *j;

    //  /summary: both days, seller 1 only; spend 4000 + 1000.
    assert_int_equal (s_call (f, 1, "/summary", 0, range, &j), 200);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive (j, "metrics");
    assert_true (s_num (m, "clicks") == 18 && s_num (m, "automated_clicks") == 1);
    assert_true (s_num (m, "starts") == 8 && s_num (m, "checkouts") == 3);
    assert_true (s_num (m, "purchases") == 2 && s_num (m, "revenue_cents") == 14400);
    assert_true (s_num (m, "spend_cents") == 5000 && s_num (m, "profit_cents") == 9400);
    assert_true (s_num (m, "roi") == 1.88);
    cJSON_Delete (j);

    //  One bot: spend cannot be attributed.
    assert_int_equal (s_call (f, 1, "/summary", 0, "range=custom&from=2026-03-10&to=2026-03-10&bot=11", &j), 200);
    m = cJSON_GetObjectItemCaseSensitive (j, "metrics");
    assert_true (s_num (m, "clicks") == 12 && s_num (m, "starts") == 5);
    assert_true (cJSON_IsNull (cJSON_GetObjectItemCaseSensitive (m, "spend_cents")));
    assert_true (cJSON_IsNull (cJSON_GetObjectItemCaseSensitive (m, "roi")));
    cJSON_Delete (j);

    //  The other seller's bot and pool: 404, like a missing one.
    assert_int_equal (s_call (f, 1, "/summary", 0, "bot=21", &j), 404);
    cJSON_Delete (j);
    assert_int_equal (s_call (f, 1, "/by-bot", 0, "range=custom&from=2026-03-10&to=2026-03-10", &j), 200);
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive (j, "rows");
    assert_int_equal (cJSON_GetArraySize (rows), 2);
    assert_true (s_num (cJSON_GetArrayItem (rows, 0), "bot_id") == 11);
    assert_true (s_num (cJSON_GetArrayItem (rows, 1), "clicks") == 0);
    cJSON_Delete (j);
    assert_int_equal (s_call (f, 2, "/summary", 0, "pool=5", &j), 404);
    cJSON_Delete (j);
    assert_int_equal (s_call (f, 2, "/summary", 0, range, &j), 200);
    assert_true (s_num (cJSON_GetObjectItemCaseSensitive (j, "metrics"), "clicks") == 500);
    cJSON_Delete (j);

    //  /utm by campaign: spring has Meta's 4000; "" has no spend (roi null).
    assert_int_equal (s_call (f, 1, "/utm", 0, range, &j), 200);
    rows = cJSON_GetObjectItemCaseSensitive (j, "rows");
    assert_int_equal (cJSON_GetArraySize (rows), 2);
    const cJSON *r0 = cJSON_GetArrayItem (rows, 0), *r1 = cJSON_GetArrayItem (rows, 1);
    assert_string_equal (cJSON_GetObjectItemCaseSensitive (r0, "key")->valuestring, "spring");
    assert_true (s_num (r0, "spend_cents") == 4000 && s_num (r0, "roi") == 1.425);
    assert_string_equal (cJSON_GetObjectItemCaseSensitive (r1, "key")->valuestring, "");
    assert_true (cJSON_IsNull (cJSON_GetObjectItemCaseSensitive (r1, "roi")));
    cJSON_Delete (j);

    //  /daily: one row per day (spend per day), by bot from the cumulative sums
    //  (spend null); /hourly takes at most 31 days and names /daily beyond.
    assert_int_equal (s_call (f, 1, "/daily", 0, range, &j), 200);
    rows = cJSON_GetObjectItemCaseSensitive (j, "rows");
    assert_int_equal (cJSON_GetArraySize (rows), 2);
    r0 = cJSON_GetArrayItem (rows, 0), r1 = cJSON_GetArrayItem (rows, 1);
    assert_string_equal (cJSON_GetObjectItemCaseSensitive (r0, "day")->valuestring, "2026-03-10");
    assert_true (s_num (r0, "clicks") == 12 && s_num (r0, "revenue_cents") == 9700);
    assert_true (s_num (r0, "spend_cents") == 4000 && s_num (r1, "spend_cents") == 1000);
    assert_true (s_num (r1, "clicks") == 6 && s_num (r1, "purchases") == 1);
    cJSON_Delete (j);
    assert_int_equal (s_call (f, 1, "/daily", 0, "range=custom&from=2026-03-11&to=2026-03-11&bot=12", &j), 200);
    rows = cJSON_GetObjectItemCaseSensitive (j, "rows");
    assert_int_equal (cJSON_GetArraySize (rows), 1);
    r0 = cJSON_GetArrayItem (rows, 0);
    assert_true (s_num (r0, "clicks") == 6 && s_num (r0, "starts") == 3);
    assert_true (cJSON_IsNull (cJSON_GetObjectItemCaseSensitive (r0, "spend_cents")));
    cJSON_Delete (j);
    assert_int_equal (s_call (f, 1, "/by-bot", 0, "range=custom&from=2026-03-11&to=2026-03-11", &j), 200);
    rows = cJSON_GetObjectItemCaseSensitive (j, "rows");
    assert_true (s_num (cJSON_GetArrayItem (rows, 0), "clicks") == 0);
    assert_true (s_num (cJSON_GetArrayItem (rows, 1), "clicks") == 6);
    cJSON_Delete (j);
    assert_int_equal (s_call (f, 1, "/hourly", 0, "range=custom&from=2026-03-01&to=2026-03-31", &j), 200);
    cJSON_Delete (j);
    assert_int_equal (s_call (f, 1, "/hourly", 0, "range=custom&from=2026-03-01&to=2026-04-01", &j), 400);
    assert_non_null (strstr (cJSON_GetObjectItemCaseSensitive (j, "error")->valuestring, "/daily"));
    cJSON_Delete (j);

    //  Bad parameters: 400 with a reason.
    const char *bad[] = {"range=1y", "range=custom&from=2026-03-11&to=2026-03-10",
                         "range=custom&from=2025-01-01&to=2026-01-02", "from=2026-02-29&to=2026-03-01",
                         "bot=x", "pool=%zz", NULL};
    for (int i = 0; bad[i]; i++) {
        assert_int_equal (s_call (f, 1, "/summary", 0, bad[i], &j), 400);
        assert_true (cJSON_IsString (cJSON_GetObjectItemCaseSensitive (j, "error")));
        cJSON_Delete (j);
    }
    assert_int_equal (s_call (f, 1, "/leads", 0, "cursor=31", &j), 400);
    cJSON_Delete (j);
    assert_int_equal (s_call (f, 1, "/leads", 0, "", &j), 200);
    assert_int_equal (cJSON_GetArraySize (cJSON_GetObjectItemCaseSensitive (j, "items")), 0);
    assert_true (cJSON_IsNull (cJSON_GetObjectItemCaseSensitive (j, "next_cursor")));
    cJSON_Delete (j);
    assert_int_equal (s_call (f, 1, "/payments/:id", 5, "", &j), 404);
    cJSON_Delete (j);
}

//  rst_db_exec_prepared (every analytics statement goes through it):
//  prepared at the first call, reused after, prepared again on a connection
//  that was reset; a bad statement comes back as PostgreSQL's error.
static void
test_prepared_statements (void **state)
{
    s_fixture_t *f = *state;
    if (!f->pg)
        skip ();
    const char *sql = "SELECT $1::int + 1";
    const char *one[] = {"41"};
    for (int round = 0; round < 2; round++) {
        PGresult *r = rst_db_exec_prepared (f->pg, "t_plus_one", sql, 1, NULL, one, NULL, NULL);
        assert_int_equal (PQresultStatus (r), PGRES_TUPLES_OK);
        assert_string_equal (PQgetvalue (r, 0, 0), "42");
        PQclear (r);
        r = PQexec (f->pg, "SELECT count(*) FROM pg_prepared_statements WHERE name = 't_plus_one'");
        assert_string_equal (PQgetvalue (r, 0, 0), "1");
        PQclear (r);
        //  A new session has no prepared statements: the next round prepares again.
        PQreset (f->pg);
        assert_int_equal (PQstatus (f->pg), CONNECTION_OK);
    }
    PGresult *r = rst_db_exec_prepared (f->pg, "t_bad", "SELECT nope FROM nowhere", 0, NULL, NULL,
                                        NULL, NULL);
    assert_int_equal (PQresultStatus (r), PGRES_FATAL_ERROR);
    assert_string_equal (PQresultErrorField (r, PG_DIAG_SQLSTATE), "42P01");
    PQclear (r);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_tour),
        cmocka_unit_test (test_cover_every_range),
        cmocka_unit_test (test_dates),
        cmocka_unit_test (test_cursor),
        cmocka_unit_test_setup_teardown (test_handlers, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_prepared_statements, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
