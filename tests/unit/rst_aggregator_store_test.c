/*  rst_aggregator_store_test — the aggregator's statements (rst_aggstore)
    against a real PostgreSQL.

    Needs RASTRO_TEST_SERVER (a libpq conninfo without dbname, exported by
    scripts/test); without it every test is skipped. Each test gets a fresh
    database with every migration applied, and drops it afterwards.

    The first test is the tour: a click and its lead's start, checkout and
    payment are counted by the stream path into one hourly row (the chat
    events take the click's UTMs); the same batch again adds nothing. The
    others check: hours in the owner's time zone across DST changes
    (New York 2024, Sao Paulo 2018) and the fallback for an unknown zone or
    owner; the automated verdict (and duplicates with differing verdicts in
    one batch); unmatched and too-old events; the catch-up (anti-join,
    user-agent verdicts, the grace period, chunks that share one stored_at,
    the watermark); the purge (and that a purged id is never counted
    again); that a rolled-back count counts nothing; and how failures are
    classified (refused data vs. retry).
*/
#include "rst_aggbatch.h"
#include "rst_aggstore.h"
#include "rst_db.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_FOREVER 36500     //  retention (days) for tests on fixed dates

typedef struct {
    char server[1024];      //  RASTRO_TEST_SERVER
    char dbname[64];
    PGconn *admin;          //  to the postgres database (create, drop)
    PGconn *pg;             //  to the test's database
} s_fixture_t;

static void
s_admin_exec (PGconn *admin, const char *sql)
{
    PGresult *res = PQexec (admin, sql);
    if (PQresultStatus (res) != PGRES_COMMAND_OK)
        fail_msg ("%s: %s", sql, PQerrorMessage (admin));
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
    snprintf (f->server, sizeof f->server, "%s", server);
    snprintf (f->dbname, sizeof f->dbname, "rst_aggstore_%d_%d", (int) getpid (), ++seq);
    char conninfo[1200];
    snprintf (conninfo, sizeof conninfo, "%s dbname=postgres", server);
    f->admin = PQconnectdb (conninfo);
    if (PQstatus (f->admin) != CONNECTION_OK)
        fail_msg ("RASTRO_TEST_SERVER: %s", PQerrorMessage (f->admin));
    char sql[256];
    snprintf (sql, sizeof sql, "CREATE DATABASE %s", f->dbname);
    s_admin_exec (f->admin, sql);
    snprintf (conninfo, sizeof conninfo, "%s dbname=%s", server, f->dbname);
    f->pg = PQconnectdb (conninfo);
    if (PQstatus (f->pg) != CONNECTION_OK)
        fail_msg ("%s", PQerrorMessage (f->pg));
    char err[1024];
    if (rst_db_migrate (f->pg, err, sizeof err) < 0)
        fail_msg ("migrate: %s", err);
    PQclear (PQexec (f->pg, "SET client_min_messages = warning"));
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
        s_admin_exec (f->admin, sql);
        PQfinish (f->admin);
    }
    free (f);
    return 0;
}

//  The fixture, or skips the test when there is no PostgreSQL.
static s_fixture_t *
s_fixture (void **state)
{
    s_fixture_t *f = *state;
    if (!f->pg)
        skip ();
    return f;
}

//  Runs SQL (formatted), which must succeed.
static void
s_sql (PGconn *pg, const char *fmt, ...)
{
    char sql[4096];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (sql, sizeof sql, fmt, ap);
    va_end (ap);
    PGresult *res = PQexec (pg, sql);
    if (PQresultStatus (res) != PGRES_COMMAND_OK && PQresultStatus (res) != PGRES_TUPLES_OK)
        fail_msg ("%s: %s", sql, PQerrorMessage (pg));
    PQclear (res);
}

//  The single value SQL (formatted) returns, as text in OUT ("" for NULL,
//  "(none)" for no row; rows are joined with ';' and columns with '|').
static const char *
s_value (PGconn *pg, char *out, size_t outlen, const char *fmt, ...)
{
    char sql[4096];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (sql, sizeof sql, fmt, ap);
    va_end (ap);
    PGresult *res = PQexec (pg, sql);
    if (PQresultStatus (res) != PGRES_TUPLES_OK)
        fail_msg ("%s: %s", sql, PQerrorMessage (pg));
    out[0] = 0;
    if (PQntuples (res) == 0)
        snprintf (out, outlen, "(none)");
    for (int r = 0; r < PQntuples (res); r++)
        for (int c = 0; c < PQnfields (res); c++) {
            size_t used = strlen (out);
            snprintf (out + used, outlen - used, "%s%s", r && !c ? ";" : c ? "|" : "",
                      PQgetvalue (res, r, c));
        }
    PQclear (res);
    return out;
}

//  A user with time zone TZ (NULL: the column's default). Returns its id.
static long
s_user (PGconn *pg, const char *email, const char *tz)
{
    char sql[512], out[64];
    if (tz)
        snprintf (sql, sizeof sql, "INSERT INTO users (email, password_hash, timezone) "
                  "VALUES ('%s', 'x', '%s') RETURNING id", email, tz);
    else
        snprintf (sql, sizeof sql, "INSERT INTO users (email, password_hash) "
                  "VALUES ('%s', 'x') RETURNING id", email);
    return strtol (s_value (pg, out, sizeof out, "%s", sql), NULL, 10);
}

//  A stored click: event id pv-<CLICK>, at AT, stored at STORED (SQL
//  expressions), user agent UA, UTMs (NULL = none).
static void
s_click (PGconn *pg, const char *click, long owner, long pool, long bot, const char *at,
         const char *stored, const char *ua, const char *source, const char *campaign)
{
    char src[300], camp[300];
    snprintf (src, sizeof src, source ? "'%s'" : "NULL", source);
    snprintf (camp, sizeof camp, campaign ? "'%s'" : "NULL", campaign);
    s_sql (pg, "INSERT INTO clicks (click_id, event_id, owner_id, pool_id, bot_id, pixel_id, "
           "clicked_at, ip, user_agent, url, utm_source, utm_campaign, source, stored_at) "
           "VALUES ('%s', 'pv-%s', %ld, %ld, %ld, '1', %s, '203.0.113.9', '%s', "
           "'https://x/go/p', %s, %s, 'front.0', %s)",
           click, click, owner, pool, bot, at, ua, src, camp, stored);
}

//  A stored chat event EVENT_ID of TYPE for click CLICK (NULL: organic).
static void
s_chat (PGconn *pg, const char *event_id, const char *type, const char *click, long owner,
        long pool, long bot, long value, const char *at, const char *stored)
{
    char cl[128], val[32];
    snprintf (cl, sizeof cl, click ? "'%s'" : "NULL", click);
    snprintf (val, sizeof val, value >= 0 ? "%ld" : "NULL", value);
    s_sql (pg, "INSERT INTO funnel_events (event_id, type, owner_id, pool_id, bot_id, pixel_id, "
           "click_id, tg_user_id, value_cents, happened_at, source, stored_at) "
           "VALUES ('%s', '%s', %ld, %ld, %ld, '1', %s, 555, %s, %s, 'bots.0', %s)",
           event_id, type, owner, pool, bot, cl, val, at, stored);
}

//  Counts the events named in the space-separated IDS (a trailing '!'
//  marks one automated) via VIA, expecting RST_AGGSTORE_OK.
static rst_aggstore_tally_t
s_count (PGconn *pg, const char *ids, const char *via, int retention_days)
{
    rst_aggbatch_t *batch = rst_aggbatch_new (100);
    assert_non_null (batch);
    char copy[2048];
    snprintf (copy, sizeof copy, "%s", ids);
    for (char *tok = strtok (copy, " "); tok; tok = strtok (NULL, " ")) {
        size_t len = strlen (tok);
        int automated = tok[len - 1] == '!';
        assert_int_equal (rst_aggbatch_add (batch, tok, len - (size_t) automated, automated, 1),
                          0);
    }
    const char *lit_ids, *lit_flags;
    assert_int_equal (rst_aggbatch_params (batch, &lit_ids, &lit_flags), 0);
    rst_aggstore_tally_t tally;
    char err[1024];
    int rc = rst_aggstore_count (pg, lit_ids, lit_flags, via, retention_days, &tally, err,
                                 sizeof err);
    if (rc != RST_AGGSTORE_OK)
        fail_msg ("count: %s", err);
    rst_aggbatch_destroy (&batch);
    return tally;
}

#define S_HOURLY                                                                               \
    "SELECT day, hour, pool_id, bot_id, utm_source, utm_campaign, clicks, automated_clicks, " \
    "starts, checkouts, purchases, revenue_cents FROM analytics_hourly"

static void
test_tour (void **state)
{
    s_fixture_t *f = s_fixture (state);
    PGconn *pg = f->pg;
    char out[2048];
    long ana = s_user (pg, "ana@example.com", NULL);        //  America/Sao_Paulo
    //  A click at 12:30 UTC (09:30 in Sao Paulo) and its lead's funnel.
    s_click (pg, "c1", ana, 7, 3, "'2026-01-15 12:30:00+00'", "now ()", "Mozilla/5.0 (iPhone)",
             "fb", "black friday");
    s_chat (pg, "vc-c1", "start", "c1", ana, 7, 3, -1, "'2026-01-15 12:31:00+00'", "now ()");
    s_chat (pg, "ic-c1", "checkout", "c1", ana, 7, 3, 9790, "'2026-01-15 12:32:00+00'", "now ()");
    s_chat (pg, "pay-c1", "payment", "c1", ana, 7, 3, 9790, "'2026-01-15 12:40:00+00'", "now ()");

    rst_aggstore_tally_t t = s_count (pg, "pv-c1 vc-c1 ic-c1 pay-c1", RST_AGGSTORE_VIA_STREAM,
                                      S_FOREVER);
    assert_int_equal (t.input, 4);
    assert_int_equal (t.counted, 4);
    assert_int_equal (t.duplicates, 0);
    assert_int_equal (t.unmatched, 0);
    assert_int_equal (t.hours, 1);
    //  One hourly row: the chat events carry the click's UTMs.
    assert_string_equal (s_value (pg, out, sizeof out, S_HOURLY " WHERE owner_id = %ld", ana),
                         "2026-01-15|9|7|3|fb|black friday|1|0|1|1|1|9790");
    assert_string_equal (s_value (pg, out, sizeof out,
                                  "SELECT string_agg (event_id || ':' || day || ':' || via, ',' "
                                  "ORDER BY event_id) FROM analytics_counted"),
                         "ic-c1:2026-01-15:stream,pay-c1:2026-01-15:stream,"
                         "pv-c1:2026-01-15:stream,vc-c1:2026-01-15:stream");

    //  The same events again (a replay), by either path: nothing added.
    t = s_count (pg, "pay-c1 pv-c1 vc-c1 ic-c1", RST_AGGSTORE_VIA_STREAM, S_FOREVER);
    assert_int_equal (t.counted, 0);
    assert_int_equal (t.duplicates, 4);
    assert_int_equal (t.hours, 0);
    t = s_count (pg, "pay-c1", RST_AGGSTORE_VIA_CATCHUP, S_FOREVER);
    assert_int_equal (t.duplicates, 1);
    assert_string_equal (s_value (pg, out, sizeof out, S_HOURLY " WHERE owner_id = %ld", ana),
                         "2026-01-15|9|7|3|fb|black friday|1|0|1|1|1|9790");

    //  An organic payment (pool 0, no click): no UTMs. The same id twice in
    //  one batch counts once.
    s_chat (pg, "pay-org", "payment", NULL, ana, 0, 3, 1990, "'2026-01-15 12:50:00+00'", "now ()");
    t = s_count (pg, "pay-org pay-org", RST_AGGSTORE_VIA_STREAM, S_FOREVER);
    assert_int_equal (t.input, 1);
    assert_int_equal (t.counted, 1);
    assert_string_equal (s_value (pg, out, sizeof out, S_HOURLY " WHERE pool_id = 0"),
                         "2026-01-15|9|0|3|||0|0|0|0|1|1990");
}

static void
test_time_zones (void **state)
{
    s_fixture_t *f = s_fixture (state);
    PGconn *pg = f->pg;
    char out[2048];
    long ny = s_user (pg, "ny@example.com", "America/New_York");
    long sp = s_user (pg, "sp@example.com", "America/Sao_Paulo");
    long bad = s_user (pg, "bad@example.com", "Mars/Olympus_Mons");
    //  New York, 2024-11-03: 01:00-01:59 happens twice (EDT, then EST).
    s_click (pg, "ny1", ny, 1, 1, "'2024-11-03 05:30:00+00'", "now ()", "Mozilla/5.0", NULL, NULL);
    s_click (pg, "ny2", ny, 1, 1, "'2024-11-03 06:30:00+00'", "now ()", "Mozilla/5.0", NULL, NULL);
    //  New York, 2024-03-10: 02:00-02:59 does not exist.
    s_click (pg, "ny3", ny, 1, 1, "'2024-03-10 06:59:00+00'", "now ()", "Mozilla/5.0", NULL, NULL);
    s_click (pg, "ny4", ny, 1, 1, "'2024-03-10 07:00:00+00'", "now ()", "Mozilla/5.0", NULL, NULL);
    //  Sao Paulo, 2018-11-04: clocks went from 00:00 to 01:00 (its last DST).
    s_click (pg, "sp1", sp, 2, 2, "'2018-11-04 02:30:00+00'", "now ()", "Mozilla/5.0", NULL, NULL);
    s_click (pg, "sp2", sp, 2, 2, "'2018-11-04 03:30:00+00'", "now ()", "Mozilla/5.0", NULL, NULL);
    //  An unknown zone, and an owner without a users row: Sao Paulo (UTC-3 in 2026).
    s_click (pg, "bad1", bad, 3, 3, "'2026-06-01 02:00:00+00'", "now ()", "Mozilla/5.0", NULL,
             NULL);
    s_click (pg, "gone1", 999999, 4, 4, "'2026-06-01 02:00:00+00'", "now ()", "Mozilla/5.0", NULL,
             NULL);
    rst_aggstore_tally_t t = s_count (pg, "pv-ny1 pv-ny2 pv-ny3 pv-ny4 pv-sp1 pv-sp2 pv-bad1 "
                                      "pv-gone1", RST_AGGSTORE_VIA_STREAM, S_FOREVER);
    assert_int_equal (t.counted, 8);
    assert_string_equal (s_value (pg, out, sizeof out,
                                  "SELECT day || ' ' || hour || ' ' || clicks FROM "
                                  "analytics_hourly WHERE owner_id = %ld ORDER BY day, hour", ny),
                         "2024-03-10 1 1;2024-03-10 3 1;2024-11-03 1 2");
    assert_string_equal (s_value (pg, out, sizeof out,
                                  "SELECT day || ' ' || hour FROM analytics_hourly "
                                  "WHERE owner_id = %ld ORDER BY day, hour", sp),
                         "2018-11-03 23;2018-11-04 1");
    assert_string_equal (s_value (pg, out, sizeof out,
                                  "SELECT day || ' ' || hour FROM analytics_hourly "
                                  "WHERE owner_id IN (%ld, 999999) ORDER BY owner_id", bad),
                         "2026-05-31 23;2026-05-31 23");
    //  counted.day is the same local day.
    assert_string_equal (s_value (pg, out, sizeof out, "SELECT day FROM analytics_counted WHERE "
                                  "event_id = 'pv-sp1'"), "2018-11-03");
}

static void
test_automated_and_unmatched (void **state)
{
    s_fixture_t *f = s_fixture (state);
    PGconn *pg = f->pg;
    char out[2048];
    long ana = s_user (pg, "ana@example.com", NULL);
    s_click (pg, "h1", ana, 1, 1, "'2026-01-15 12:00:00+00'", "now ()", "Mozilla/5.0", "ig", "c");
    s_click (pg, "a1", ana, 1, 1, "'2026-01-15 12:01:00+00'", "now ()", "Mozilla/5.0", "ig", "c");
    s_click (pg, "a2", ana, 1, 1, "'2026-01-15 12:02:00+00'", "now ()", "Mozilla/5.0", "ig", "c");
    //  The stream's verdict wins (here the per-IP rate: the user agent looks
    //  human); one id twice with two verdicts counts once, as automated.
    rst_aggstore_tally_t t = s_count (pg, "pv-h1 pv-a1! pv-a2 pv-a2! nope-1 nope-2",
                                      RST_AGGSTORE_VIA_STREAM, S_FOREVER);
    assert_int_equal (t.input, 5);
    assert_int_equal (t.unmatched, 2);
    assert_int_equal (t.counted, 3);
    assert_string_equal (s_value (pg, out, sizeof out, "SELECT clicks, automated_clicks FROM "
                                  "analytics_hourly"), "1|2");
    //  Unmatched ids are not marked counted: a later catch-up may count them.
    assert_string_equal (s_value (pg, out, sizeof out, "SELECT count (*) FROM analytics_counted "
                                  "WHERE event_id LIKE 'nope%%'"), "0");

    //  Older than the retention: not counted, not marked.
    s_click (pg, "old", ana, 1, 1, "now () - interval '41 days'", "now ()", "Mozilla/5.0", NULL,
             NULL);
    s_click (pg, "new", ana, 1, 1, "now () - interval '39 days'", "now ()", "Mozilla/5.0", NULL,
             NULL);
    t = s_count (pg, "pv-old pv-new", RST_AGGSTORE_VIA_STREAM, 40);
    assert_int_equal (t.too_old, 1);
    assert_int_equal (t.counted, 1);
    assert_string_equal (s_value (pg, out, sizeof out, "SELECT string_agg (event_id, ',') FROM "
                                  "analytics_counted WHERE event_id IN ('pv-old', 'pv-new')"),
                         "pv-new");
}

//  Runs a whole catch-up pass with chunks of CHUNK events; returns the
//  events it counted and sets *CHUNKS to the number of non-empty chunks.
static long
s_pass (PGconn *pg, int window_s, int grace_s, size_t chunk, int retention_days, int *first,
        int *chunks)
{
    rst_aggbatch_t *batch = rst_aggbatch_new (chunk);
    assert_non_null (batch);
    rst_aggstore_pass_t pass;
    char err[1024];
    if (rst_aggstore_pass_begin (pg, window_s, grace_s, &pass, err, sizeof err))
        fail_msg ("pass_begin: %s", err);
    if (first)
        *first = pass.first;
    long counted = 0;
    *chunks = 0;
    for (int guard = 0; guard < 1000; guard++) {
        if (rst_aggstore_pass_next (pg, &pass, batch, retention_days, err, sizeof err))
            fail_msg ("pass_next: %s", err);
        if (rst_aggbatch_count (batch)) {
            (*chunks)++;
            const char *ids, *flags;
            assert_int_equal (rst_aggbatch_params (batch, &ids, &flags), 0);
            rst_aggstore_tally_t t;
            if (rst_aggstore_count (pg, ids, flags, RST_AGGSTORE_VIA_CATCHUP, retention_days, &t,
                                    err, sizeof err))
                fail_msg ("count: %s", err);
            counted += t.counted;
        }
        if (pass.table >= 2)
            break;
    }
    assert_int_equal (pass.table, 2);
    if (rst_aggstore_pass_end (pg, &pass, err, sizeof err))
        fail_msg ("pass_end: %s", err);
    rst_aggbatch_destroy (&batch);
    return counted;
}

static void
test_catchup (void **state)
{
    s_fixture_t *f = s_fixture (state);
    PGconn *pg = f->pg;
    char out[2048];
    long ana = s_user (pg, "ana@example.com", NULL);
    const char *hour_ago = "now () - interval '1 hour'";
    //  Stored an hour ago: the stream delivered k1, not the others.
    s_click (pg, "k1", ana, 1, 1, hour_ago, hour_ago, "Mozilla/5.0 (iPhone)", "fb", "x");
    s_click (pg, "k2", ana, 1, 1, hour_ago, hour_ago, "Mozilla/5.0 (iPhone)", "fb", "x");
    s_click (pg, "k3", ana, 1, 1, hour_ago, hour_ago,
             "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "fb", "x");
    s_click (pg, "k4", ana, 1, 1, hour_ago, hour_ago, "", "fb", "x");
    s_click (pg, "k5", ana, 1, 1, hour_ago, hour_ago, "curl/8.0.1", "fb", "x");
    s_chat (pg, "vc-k2", "start", "k2", ana, 1, 1, -1, hour_ago, hour_ago);
    s_chat (pg, "pay-k2", "payment", "k2", ana, 1, 1, 4990, hour_ago, hour_ago);
    //  Stored just now: within the grace period, left to the stream.
    s_click (pg, "k6", ana, 1, 1, "now ()", "now ()", "Mozilla/5.0 (iPhone)", "fb", "x");
    rst_aggstore_tally_t t = s_count (pg, "pv-k1", RST_AGGSTORE_VIA_STREAM, 40);
    assert_int_equal (t.counted, 1);

    int first, chunks;
    assert_int_equal (s_pass (pg, 3600, 60, 100, 40, &first, &chunks), 6);
    assert_true (first);
    //  User agents decide: a crawler, an empty one and a tool are automated.
    assert_string_equal (s_value (pg, out, sizeof out,
                                  "SELECT sum (clicks), sum (automated_clicks), sum (starts), "
                                  "sum (purchases), sum (revenue_cents) FROM analytics_hourly"),
                         "2|3|1|1|4990");
    assert_string_equal (s_value (pg, out, sizeof out, "SELECT via, count (*) FROM "
                                  "analytics_counted GROUP BY via ORDER BY via"),
                         "catchup|6;stream|1");
    //  The watermark: the next pass looks back from it, and finds nothing
    //  (k6 is still within the grace period).
    assert_int_equal (s_pass (pg, 3600, 60, 100, 40, &first, &chunks), 0);
    assert_false (first);
    //  Without grace, k6 is found.
    assert_int_equal (s_pass (pg, 3600, 0, 100, 40, &first, &chunks), 1);
    assert_int_equal (s_pass (pg, 3600, 0, 100, 40, &first, &chunks), 0);

    //  Hourly totals equal a recount from the durable record.
    assert_string_equal (s_value (pg, out, sizeof out,
                                  "SELECT (SELECT count (*) FROM clicks), "
                                  "(SELECT sum (clicks + automated_clicks) FROM analytics_hourly)"),
                         "6|6");
}

static void
test_catchup_chunks_and_window (void **state)
{
    s_fixture_t *f = s_fixture (state);
    PGconn *pg = f->pg;
    char out[256];
    long ana = s_user (pg, "ana@example.com", NULL);
    //  Seven clicks stored by one recorder transaction (one stored_at),
    //  found in chunks of two.
    char stored[128], at[64];
    s_value (pg, at, sizeof at, "SELECT (now () - interval '10 minutes')::text");
    snprintf (stored, sizeof stored, "'%s'::timestamptz", at);
    for (int i = 0; i < 7; i++) {
        char click[16];
        snprintf (click, sizeof click, "t%d", i);
        s_click (pg, click, ana, 1, 1, stored, stored, "Mozilla/5.0", NULL, NULL);
    }
    s_chat (pg, "vc-t0", "start", "t0", ana, 1, 1, -1, "now ()", "now () - interval '5 minutes'");
    int first, chunks;
    assert_int_equal (s_pass (pg, 3600, 0, 2, 40, &first, &chunks), 8);
    assert_int_equal (chunks, 5);       //  2 + 2 + 2 + 1 clicks, then 1 start
    assert_string_equal (s_value (pg, out, sizeof out, "SELECT count (*) FROM analytics_counted"),
                         "8");
    //  A row stored before the watermark minus the window is not looked at
    //  again (the window bounds every periodic pass).
    s_click (pg, "late", ana, 1, 1, "now ()", "now () - interval '2 hours'", "Mozilla/5.0", NULL,
             NULL);
    assert_int_equal (s_pass (pg, 3600, 0, 100, 40, &first, &chunks), 0);
    //  ... but it is within a longer window.
    assert_int_equal (s_pass (pg, 3 * 3600, 0, 100, 40, &first, &chunks), 1);
}

static void
test_purge (void **state)
{
    s_fixture_t *f = s_fixture (state);
    PGconn *pg = f->pg;
    char out[256];
    long ana = s_user (pg, "ana@example.com", "UTC");
    s_click (pg, "p-old", ana, 1, 1, "now () - interval '45 days'", "now ()", "Mozilla/5.0",
             NULL, NULL);
    s_click (pg, "p-new", ana, 1, 1, "now () - interval '1 day'", "now ()", "Mozilla/5.0", NULL,
             NULL);
    //  Counted while the retention was longer.
    assert_int_equal (s_count (pg, "pv-p-old pv-p-new", RST_AGGSTORE_VIA_STREAM, 60).counted, 2);
    long deleted;
    char err[512];
    //  40 days (+ 2 of margin): the 45-day-old id goes, the other stays.
    assert_int_equal (rst_aggstore_purge (pg, 40, 10000, &deleted, err, sizeof err), 0);
    assert_int_equal (deleted, 1);
    assert_string_equal (s_value (pg, out, sizeof out, "SELECT string_agg (event_id, ',') FROM "
                                  "analytics_counted"), "pv-p-new");
    //  The purged event comes again (a late replay): too old, not counted twice.
    rst_aggstore_tally_t t = s_count (pg, "pv-p-old pv-p-new", RST_AGGSTORE_VIA_STREAM, 40);
    assert_int_equal (t.too_old, 1);
    assert_int_equal (t.duplicates, 1);
    assert_int_equal (t.counted, 0);
    int first, chunks;
    assert_int_equal (s_pass (pg, 3600, 0, 100, 40, &first, &chunks), 0);
    assert_string_equal (s_value (pg, out, sizeof out, "SELECT sum (clicks) FROM "
                                  "analytics_hourly"), "2");
    //  Nothing more to purge.
    assert_int_equal (rst_aggstore_purge (pg, 40, 10000, &deleted, err, sizeof err), 0);
    assert_int_equal (deleted, 0);
}

static void
test_one_transaction (void **state)
{
    s_fixture_t *f = s_fixture (state);
    PGconn *pg = f->pg;
    char out[256];
    long ana = s_user (pg, "ana@example.com", NULL);
    s_click (pg, "r1", ana, 1, 1, "now ()", "now ()", "Mozilla/5.0", NULL, NULL);
    //  A count whose transaction never commits (the aggregator killed
    //  before COMMIT) leaves neither a counted id nor an hourly row.
    s_sql (pg, "BEGIN");
    assert_int_equal (s_count (pg, "pv-r1", RST_AGGSTORE_VIA_STREAM, 40).counted, 1);
    s_sql (pg, "ROLLBACK");
    assert_string_equal (s_value (pg, out, sizeof out, "SELECT (SELECT count (*) FROM "
                                  "analytics_counted), (SELECT count (*) FROM analytics_hourly)"),
                         "0|0");
    //  So the retry counts it, once.
    assert_int_equal (s_count (pg, "pv-r1", RST_AGGSTORE_VIA_STREAM, 40).counted, 1);
    assert_int_equal (s_count (pg, "pv-r1", RST_AGGSTORE_VIA_STREAM, 40).counted, 0);
    assert_string_equal (s_value (pg, out, sizeof out, "SELECT clicks FROM analytics_hourly"), "1");
}

static void
test_failures (void **state)
{
    s_fixture_t *f = s_fixture (state);
    rst_aggstore_tally_t t;
    char err[1024] = "";
    //  Data PostgreSQL refuses: retrying would not help.
    assert_int_equal (rst_aggstore_count (f->pg, "{\"unclosed", "{t}", RST_AGGSTORE_VIA_STREAM,
                                          40, &t, err, sizeof err),
                      RST_AGGSTORE_REFUSED);
    assert_non_null (strstr (err, "22P02"));
    assert_null (strchr (err, '\n'));
    //  A database without the tables (not migrated yet): retry later.
    char conninfo[1200];
    snprintf (conninfo, sizeof conninfo, "%s dbname=postgres", f->server);
    PGconn *bare = PQconnectdb (conninfo);
    assert_int_equal (PQstatus (bare), CONNECTION_OK);
    assert_int_equal (rst_aggstore_count (bare, "{\"a\"}", "{f}", RST_AGGSTORE_VIA_STREAM, 40, &t,
                                          err, sizeof err),
                      RST_AGGSTORE_RETRY);
    assert_non_null (strstr (err, "42P01"));
    rst_aggstore_pass_t pass;
    assert_int_equal (rst_aggstore_pass_begin (bare, 3600, 10, &pass, err, sizeof err),
                      RST_AGGSTORE_RETRY);
    PQfinish (bare);
    //  An empty batch is fine and counts nothing.
    assert_int_equal (rst_aggstore_count (f->pg, "{}", "{}", RST_AGGSTORE_VIA_STREAM, 40, &t, err,
                                          sizeof err),
                      RST_AGGSTORE_OK);
    assert_int_equal (t.input, 0);
    assert_int_equal (t.counted, 0);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_tour, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_time_zones, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_automated_and_unmatched, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_catchup, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_catchup_chunks_and_window, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_purge, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_one_transaction, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_failures, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
