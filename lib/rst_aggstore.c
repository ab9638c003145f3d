/*  rst_aggstore — the aggregator's statements (see rst_aggstore.h and
    schemas/sql/005_analytics.sql).

    Why the dimensions come from the durable record, even for an event
    that arrived by the stream: the recorder forwards an event only after
    its row committed, so the row is always there; a chat event on the
    stream has no UTMs (the raw chat event carries none), while its lead's
    click in `clicks` has them; and the stream and the catch-up must put an
    event in the same hourly row, byte for byte, whichever counts it. The
    stream contributes what only it knows: that the event exists *now*, and
    the enricher's verdict on automated traffic (including the per-IP rate).

    The count statement is one WITH query, so one transaction whether or
    not the caller opened one. Its steps:

        input   the ids and flags, de-duplicated (an id flagged automated
                once is automated)
        src     their rows in clicks and funnel_events (+ the lead's click)
        zones   each owner's time zone, checked once per owner
                (rastro_timezone: unknown names fall back to Sao Paulo)
        keyed   the local time, the key, the retention filter; an id found
                in both tables (never in practice) counts as the click
        fresh   INSERT INTO analytics_counted ... ON CONFLICT DO NOTHING
                RETURNING event_id: the ids counted for the first time
        added   the fresh ones, grouped by key, added to analytics_hourly
                (ON CONFLICT ... DO UPDATE SET x = x + EXCLUDED.x)
        owners  the owners whose rows moved: pg_notify ('rastro_analytics',
                '<id>,<id>,...') at most 300 ids a notification, which
                PostgreSQL delivers at the commit (and never on a rollback);
                the broadcaster LISTENs and pushes the new numbers live

    Rows are written in key order (ids sorted, keys sorted), so two
    aggregators counting at once queue on each other's rows rather than
    deadlock (one instance is the usual setup; a deadlock would still only
    be a RETRY).
*/
#include "rst_aggstore.h"
#include "rst_traffic.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_INT_TEXT 24

static const char *s_count_sql =
    "WITH input AS MATERIALIZED ("
    "  SELECT DISTINCT ON (event_id) event_id, automated"
    "    FROM unnest ($1::text[], $2::boolean[]) AS i (event_id, automated)"
    "   WHERE event_id IS NOT NULL"
    "   ORDER BY event_id, automated DESC"
    "), src AS MATERIALIZED ("
    "  SELECT i.event_id, 'click'::text AS type, c.owner_id, c.pool_id, c.bot_id,"
    "         c.clicked_at AS at, c.utm_source, c.utm_campaign, 0::bigint AS value_cents,"
    "         COALESCE (i.automated, false) AS automated"
    "    FROM input i JOIN clicks c ON c.event_id = i.event_id"
    "  UNION ALL"
    "  SELECT i.event_id, f.type, f.owner_id, f.pool_id, f.bot_id, f.happened_at,"
    "         k.utm_source, k.utm_campaign, COALESCE (f.value_cents, 0), false"
    "    FROM input i JOIN funnel_events f ON f.event_id = i.event_id"
    "    LEFT JOIN clicks k ON k.click_id = f.click_id"
    "), zones AS MATERIALIZED ("
    "  SELECT o.owner_id, rastro_timezone (u.timezone) AS tz"
    "    FROM (SELECT DISTINCT owner_id FROM src) o LEFT JOIN users u ON u.id = o.owner_id"
    "), keyed AS MATERIALIZED ("
    "  SELECT DISTINCT ON (s.event_id) s.event_id, s.type, s.owner_id, s.pool_id, s.bot_id,"
    "         s.at AT TIME ZONE z.tz AS local_at,"
    "         left (COALESCE (s.utm_source, ''), 256) AS utm_source,"
    "         left (COALESCE (s.utm_campaign, ''), 256) AS utm_campaign,"
    "         s.value_cents, s.automated"
    "    FROM src s JOIN zones z ON z.owner_id = s.owner_id"
    "   WHERE s.at >= now () - make_interval (days => $4::int)"
    "   ORDER BY s.event_id, s.type = 'click' DESC"
    "), fresh AS ("
    "  INSERT INTO analytics_counted (event_id, day, via)"
    "  SELECT event_id, local_at::date, $3 FROM keyed ORDER BY event_id"
    "  ON CONFLICT (event_id) DO NOTHING"
    "  RETURNING event_id"
    "), added AS ("
    "  INSERT INTO analytics_hourly AS h (owner_id, day, hour, pool_id, bot_id, utm_source,"
    "         utm_campaign, clicks, automated_clicks, starts, checkouts, purchases, revenue_cents)"
    "  SELECT k.owner_id, k.local_at::date, extract (hour FROM k.local_at)::smallint,"
    "         k.pool_id, k.bot_id, k.utm_source, k.utm_campaign,"
    "         count (*) FILTER (WHERE k.type = 'click' AND NOT k.automated),"
    "         count (*) FILTER (WHERE k.type = 'click' AND k.automated),"
    "         count (*) FILTER (WHERE k.type = 'start'),"
    "         count (*) FILTER (WHERE k.type = 'checkout'),"
    "         count (*) FILTER (WHERE k.type = 'payment'),"
    "         COALESCE (sum (k.value_cents) FILTER (WHERE k.type = 'payment'), 0)"
    "    FROM keyed k JOIN fresh f ON f.event_id = k.event_id"
    "   GROUP BY 1, 2, 3, 4, 5, 6, 7"
    "   ORDER BY 1, 2, 3, 4, 5, 6, 7"
    "  ON CONFLICT (owner_id, day, hour, pool_id, bot_id, utm_source, utm_campaign) DO UPDATE SET"
    "         clicks = h.clicks + EXCLUDED.clicks,"
    "         automated_clicks = h.automated_clicks + EXCLUDED.automated_clicks,"
    "         starts = h.starts + EXCLUDED.starts,"
    "         checkouts = h.checkouts + EXCLUDED.checkouts,"
    "         purchases = h.purchases + EXCLUDED.purchases,"
    "         revenue_cents = h.revenue_cents + EXCLUDED.revenue_cents,"
    "         updated_at = now ()"
    "  RETURNING h.owner_id"
    "), owners AS ("
    "  SELECT DISTINCT owner_id FROM added"
    ") "
    "SELECT (SELECT count (*) FROM input), (SELECT count (DISTINCT event_id) FROM src),"
    "       (SELECT count (*) FROM keyed), (SELECT count (*) FROM fresh),"
    "       (SELECT count (*) FROM added),"
    //  The live feed (rst_broadcaster): one notification per 300 owners
    //  whose rows moved, payload "id,id,...", delivered at the commit.
    "       (SELECT count (pg_notify ('rastro_analytics', ids)) FROM ("
    "          SELECT string_agg (owner_id::text, ',' ORDER BY owner_id) AS ids"
    "            FROM (SELECT owner_id, (row_number () OVER (ORDER BY owner_id) - 1) / 300 AS g"
    "                    FROM owners) n"
    "           GROUP BY g) c)";

static const char *s_begin_sql =
    "SELECT COALESCE ((SELECT caught_up_to - make_interval (secs => $1::int)"
    "                    FROM analytics_catchup WHERE id = 1), '-infinity'::timestamptz)::text,"
    "       (now () - make_interval (secs => $2::int))::text,"
    "       NOT EXISTS (SELECT 1 FROM analytics_catchup WHERE id = 1)";

//  The uncounted rows of one table, by stored_at from the cursor. The
//  anti-join skips what was counted, including the rows of the previous
//  chunk that share the cursor's stored_at (one recorder batch shares one).
static const char *s_next_sql[2] = {
    "SELECT c.event_id, c.user_agent, c.stored_at::text,"
    "       (extract (epoch FROM c.clicked_at) * 1000)::bigint"
    "  FROM clicks c"
    " WHERE c.stored_at >= $1::timestamptz AND c.stored_at < $2::timestamptz"
    "   AND c.clicked_at >= now () - make_interval (days => $3::int)"
    "   AND NOT EXISTS (SELECT 1 FROM analytics_counted k WHERE k.event_id = c.event_id)"
    " ORDER BY c.stored_at LIMIT $4::int",
    "SELECT f.event_id, NULL, f.stored_at::text,"
    "       (extract (epoch FROM f.happened_at) * 1000)::bigint"
    "  FROM funnel_events f"
    " WHERE f.stored_at >= $1::timestamptz AND f.stored_at < $2::timestamptz"
    "   AND f.happened_at >= now () - make_interval (days => $3::int)"
    "   AND NOT EXISTS (SELECT 1 FROM analytics_counted k WHERE k.event_id = f.event_id)"
    " ORDER BY f.stored_at LIMIT $4::int",
};

static const char *s_end_sql =
    "INSERT INTO analytics_catchup (id, caught_up_to) VALUES (1, $1::timestamptz)"
    " ON CONFLICT (id) DO UPDATE SET"
    "   caught_up_to = GREATEST (analytics_catchup.caught_up_to, EXCLUDED.caught_up_to),"
    "   updated_at = now ()";

static const char *s_purge_sql =
    "WITH old AS ("
    "  SELECT event_id FROM analytics_counted"
    "   WHERE day < (now () AT TIME ZONE 'UTC' - make_interval (days => $1::int + 2))::date"
    "   LIMIT $2::int) "
    "DELETE FROM analytics_counted c USING old WHERE c.event_id = old.event_id";

//  Runs SQL; on success returns the result (the caller clears it) with
//  STATUS as expected, else NULL with *RC set and the reason in ERR.
static PGresult *
s_exec (PGconn *pg, const char *sql, int n, const char *const *values, ExecStatusType status,
        int *rc, char *err, size_t errlen)
{
    PGresult *res = PQexecParams (pg, sql, n, NULL, values, NULL, NULL, 0);
    if (res && PQresultStatus (res) == status) {
        *rc = RST_AGGSTORE_OK;
        return res;
    }
    const char *state = res ? PQresultErrorField (res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorMessage (res) : "";
    if (!msg || !msg[0])
        msg = PQerrorMessage (pg);
    snprintf (err, errlen, "libpq: %s%s%s", state ? state : "", state ? " " : "", msg);
    for (char *c = err; *c; c++)
        if (*c == '\n')
            *c = ' ';
    //  Class 22 (data exception) and 23 (integrity): the data, not the
    //  server. Everything else (connection, locks, a missing table) may pass.
    int data = state && strlen (state) == 5
               && (!strncmp (state, "22", 2) || !strncmp (state, "23", 2));
    *rc = data && PQstatus (pg) == CONNECTION_OK ? RST_AGGSTORE_REFUSED : RST_AGGSTORE_RETRY;
    PQclear (res);
    return NULL;
}

static long
s_long (PGresult *res, int row, int col)
{
    return PQgetisnull (res, row, col) ? 0 : strtol (PQgetvalue (res, row, col), NULL, 10);
}

int
rst_aggstore_count (PGconn *pg, const char *ids, const char *flags, const char *via,
                    int retention_days, rst_aggstore_tally_t *tally, char *err, size_t errlen)
{
    assert (pg);
    assert (ids && flags && via && tally);
    memset (tally, 0, sizeof *tally);
    char days[S_INT_TEXT];
    snprintf (days, sizeof days, "%d", retention_days);
    const char *values[] = {ids, flags, via, days};
    int rc;
    PGresult *res = s_exec (pg, s_count_sql, 4, values, PGRES_TUPLES_OK, &rc, err, errlen);
    if (!res)
        return rc;
    if (PQntuples (res) != 1 || PQnfields (res) != 6) {
        snprintf (err, errlen, "count: unexpected result shape");
        PQclear (res);
        return RST_AGGSTORE_RETRY;
    }
    long input = s_long (res, 0, 0), matched = s_long (res, 0, 1), keyed = s_long (res, 0, 2);
    tally->input = input;
    tally->unmatched = input - matched;
    tally->too_old = matched - keyed;
    tally->counted = s_long (res, 0, 3);
    tally->duplicates = keyed - tally->counted;
    tally->hours = s_long (res, 0, 4);
    PQclear (res);
    return RST_AGGSTORE_OK;
}

int
rst_aggstore_pass_begin (PGconn *pg, int window_s, int grace_s, rst_aggstore_pass_t *pass,
                         char *err, size_t errlen)
{
    assert (pg);
    assert (pass);
    memset (pass, 0, sizeof *pass);
    char window[S_INT_TEXT], grace[S_INT_TEXT];
    snprintf (window, sizeof window, "%d", window_s);
    snprintf (grace, sizeof grace, "%d", grace_s);
    const char *values[] = {window, grace};
    int rc;
    PGresult *res = s_exec (pg, s_begin_sql, 2, values, PGRES_TUPLES_OK, &rc, err, errlen);
    if (!res)
        return rc;
    if (PQntuples (res) != 1 || PQgetisnull (res, 0, 0) || PQgetisnull (res, 0, 1)
        || strlen (PQgetvalue (res, 0, 0)) >= sizeof pass->from
        || strlen (PQgetvalue (res, 0, 1)) >= sizeof pass->until) {
        snprintf (err, errlen, "catch-up: unexpected watermark");
        PQclear (res);
        return RST_AGGSTORE_RETRY;
    }
    snprintf (pass->from, sizeof pass->from, "%s", PQgetvalue (res, 0, 0));
    snprintf (pass->until, sizeof pass->until, "%s", PQgetvalue (res, 0, 1));
    snprintf (pass->cursor, sizeof pass->cursor, "%s", pass->from);
    pass->first = !strcmp (PQgetvalue (res, 0, 2), "t");
    pass->table = 0;
    PQclear (res);
    return RST_AGGSTORE_OK;
}

int
rst_aggstore_pass_next (PGconn *pg, rst_aggstore_pass_t *pass, rst_aggbatch_t *batch,
                        int retention_days, char *err, size_t errlen)
{
    assert (pg);
    assert (pass && batch);
    rst_aggbatch_clear (batch);
    while (pass->table < 2) {
        size_t limit = rst_aggbatch_max (batch);
        char days[S_INT_TEXT], lim[S_INT_TEXT];
        snprintf (days, sizeof days, "%d", retention_days);
        snprintf (lim, sizeof lim, "%zu", limit);
        const char *values[] = {pass->cursor, pass->until, days, lim};
        int rc;
        PGresult *res = s_exec (pg, s_next_sql[pass->table], 4, values, PGRES_TUPLES_OK, &rc, err,
                                errlen);
        if (!res)
            return rc;
        int n = PQntuples (res);
        for (int i = 0; i < n; i++) {
            const char *id = PQgetvalue (res, i, 0);
            int automated = 0;
            if (pass->table == 0) {
                const char *ua = PQgetvalue (res, i, 1);
                automated = rst_traffic_ua_reason (ua, (size_t) PQgetlength (res, i, 1)) != NULL;
            }
            int64_t at = strtoll (PQgetvalue (res, i, 3), NULL, 10);
            //  Cannot fail: at most LIMIT rows, ids are non-empty text.
            if (rst_aggbatch_add (batch, id, strlen (id), automated, at))
                break;
        }
        if (n > 0) {
            const char *last = PQgetvalue (res, n - 1, 2);
            if (strlen (last) < sizeof pass->cursor)
                snprintf (pass->cursor, sizeof pass->cursor, "%s", last);
        }
        PQclear (res);
        if ((size_t) n >= limit)
            return RST_AGGSTORE_OK;     //  more may follow in this table
        pass->table++;
        snprintf (pass->cursor, sizeof pass->cursor, "%s", pass->from);
        if (n > 0)
            return RST_AGGSTORE_OK;
    }
    return RST_AGGSTORE_OK;
}

int
rst_aggstore_pass_end (PGconn *pg, const rst_aggstore_pass_t *pass, char *err, size_t errlen)
{
    assert (pg);
    assert (pass);
    const char *values[] = {pass->until};
    int rc;
    PGresult *res = s_exec (pg, s_end_sql, 1, values, PGRES_COMMAND_OK, &rc, err, errlen);
    PQclear (res);
    return rc;
}

int
rst_aggstore_purge (PGconn *pg, int retention_days, long max_rows, long *deleted, char *err,
                    size_t errlen)
{
    assert (pg);
    assert (deleted);
    *deleted = 0;
    char days[S_INT_TEXT], lim[S_INT_TEXT];
    snprintf (days, sizeof days, "%d", retention_days);
    snprintf (lim, sizeof lim, "%ld", max_rows);
    const char *values[] = {days, lim};
    int rc;
    PGresult *res = s_exec (pg, s_purge_sql, 2, values, PGRES_COMMAND_OK, &rc, err, errlen);
    if (!res)
        return rc;
    *deleted = strtol (PQcmdTuples (res), NULL, 10);
    PQclear (res);
    return RST_AGGSTORE_OK;
}
