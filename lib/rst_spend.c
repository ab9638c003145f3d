/*  rst_spend — the JSON API's spend routes (issue 5 §2, schemas/openapi.yaml).

        GET /spend          spend rows over a range (range=today|yesterday|7d|30d|
                            custom&from=&to=, days in the user's time zone): Meta's
                            per campaign (with the pool its clicks went to) and the
                            manual one per pool, from the view spend_daily
        PUT /spend/manual   {pool_id, day, amount_cents}: the manual spend of one of
                            the user's pools on a day (0 clears it); another's pool 404
        GET /adaccounts     the user's ad accounts with their sync state (never the
                            token: only whether Meta refused it)

    Every statement is scoped to req->owner_id. Handlers follow rst_api.h:
    validation failures answer 400 with a short reason, a PostgreSQL failure
    returns -1 (rst_api answers 500) after logging PostgreSQL's message.
*/
#include "rst_api.h"
#include "rst_insights.h"
#include "rst_log.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_CLS            "api"
#define S_RANGE_MAX_DAYS 366        //  a custom range, both ends included
#define S_ID_MAX         9007199254740991.0     //  2^53 - 1: exact in a JSON number
#define S_TS(col)                                                                              \
    "to_char (" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

//  Runs SQL with NPARAMS text parameters, expecting rows (or a command when
//  TUPLES is 0). Returns the result (the caller's) or NULL after logging.
static PGresult *
s_query (PGconn *db, const char *what, const char *sql, int nparams, const char *const *params,
         int tuples)
{
    PGresult *r = PQexecParams (db, sql, nparams, NULL, params, NULL, NULL, 0);
    if (PQresultStatus (r) != (tuples ? PGRES_TUPLES_OK : PGRES_COMMAND_OK)) {
        char why[512];
        snprintf (why, sizeof why, "%s", PQerrorMessage (db));
        why[strcspn (why, "\n")] = 0;
        rst_error (S_CLS, "%s: PostgreSQL: %s", what, why);
        PQclear (r);
        return NULL;
    }
    return r;
}

static const char *
s_timezone (const rst_api_req_t *req)
{
    return req->timezone && *req->timezone ? req->timezone : "America/Sao_Paulo";
}

//  The range of REQ's query into FROM and TO (YYYY-MM-DD, the user's days).
//  Returns 0 when the range is good, 1 when it is not (RES is set to the
//  400 answer), -1 on a PostgreSQL failure (logged).
static int
s_range (const rst_api_req_t *req, PGconn *db, rst_api_res_t *res, char from[11], char to[11])
{
    char range[16], f[16], t[16];
    int rc = rst_api_query (req, "range", range, sizeof range);
    if (rc < 0)
        return rst_api_error (res, 400, "bad range"), 1;
    if (rc == 0)
        snprintf (range, sizeof range, "today");
    if (strcmp (range, "today") && strcmp (range, "yesterday") && strcmp (range, "7d")
        && strcmp (range, "30d") && strcmp (range, "custom"))
        return rst_api_error (res, 400, "range must be today, yesterday, 7d, 30d or custom"), 1;
    int custom = !strcmp (range, "custom");
    if (custom) {
        if (rst_api_query (req, "from", f, sizeof f) != 1 || !rst_insights_is_day (f)
            || rst_api_query (req, "to", t, sizeof t) != 1 || !rst_insights_is_day (t))
            return rst_api_error (res, 400, "custom range needs from and to (YYYY-MM-DD)"), 1;
        if (strcmp (f, t) > 0)
            return rst_api_error (res, 400, "from is after to"), 1;
    }
    char max[16];
    snprintf (max, sizeof max, "%d", S_RANGE_MAX_DAYS - 1);
    const char *params[] = {s_timezone (req), range, custom ? f : NULL, custom ? t : NULL, max};
    PGresult *r = s_query (
        db, "spend range",
        "SELECT (CASE $2 WHEN 'today' THEN d WHEN 'yesterday' THEN d - 1 WHEN '7d' THEN d - 6"
        "   WHEN '30d' THEN d - 29 ELSE $3::date END)::text,"
        " (CASE $2 WHEN 'yesterday' THEN d - 1 WHEN 'custom' THEN $4::date ELSE d END)::text,"
        " $2 <> 'custom' OR $4::date - $3::date <= $5::int"
        " FROM (SELECT (now () AT TIME ZONE rastro_timezone ($1))::date AS d) x",
        5, params, 1);
    if (!r)
        return -1;
    int ok = !strcmp (PQgetvalue (r, 0, 2), "t");
    snprintf (from, 11, "%s", PQgetvalue (r, 0, 0));
    snprintf (to, 11, "%s", PQgetvalue (r, 0, 1));
    PQclear (r);
    if (!ok)
        return rst_api_error (res, 400, "a custom range is at most 366 days"), 1;
    return 0;
}

//  GET /spend
static int
s_get_spend (const rst_api_req_t *req, PGconn *db, rst_api_res_t *res)
{
    char from[11], to[11];
    int rc = s_range (req, db, res, from, to);
    if (rc)
        return rc > 0 ? 0 : -1;
    char owner[24];
    snprintf (owner, sizeof owner, "%" PRId64, req->owner_id);
    const char *params[] = {owner, from, to};
    PGresult *r = s_query (db, "GET /spend",
                           "SELECT day::text, pool_id, utm_campaign, source,"
                           " sum (amount_cents)::bigint FROM spend_daily"
                           " WHERE owner_id = $1 AND day BETWEEN $2::date AND $3::date"
                           " GROUP BY 1, 2, 3, 4 ORDER BY 1, 4, 2, 3",
                           3, params, 1);
    if (!r)
        return -1;
    cJSON *root = cJSON_CreateObject ();
    cJSON *range = cJSON_AddObjectToObject (root, "range");
    cJSON *rows = cJSON_AddArrayToObject (root, "rows");
    int64_t total = 0;
    int failed = !root || !range || !rows;
    if (!failed) {
        failed |= !cJSON_AddStringToObject (range, "from", from);
        failed |= !cJSON_AddStringToObject (range, "to", to);
        failed |= !cJSON_AddStringToObject (range, "timezone", s_timezone (req));
    }
    for (int i = 0; !failed && i < PQntuples (r); i++) {
        int64_t cents = strtoll (PQgetvalue (r, i, 4), NULL, 10);
        total += cents;
        cJSON *row = cJSON_CreateObject ();
        if (!row || !cJSON_AddItemToArray (rows, row)) {
            cJSON_Delete (row);
            failed = 1;
            break;
        }
        failed |= !cJSON_AddStringToObject (row, "day", PQgetvalue (r, i, 0));
        failed |= !cJSON_AddNumberToObject (row, "pool_id",
                                            (double) strtoll (PQgetvalue (r, i, 1), NULL, 10));
        failed |= !cJSON_AddStringToObject (row, "utm_campaign", PQgetvalue (r, i, 2));
        failed |= !cJSON_AddStringToObject (row, "source", PQgetvalue (r, i, 3));
        failed |= !cJSON_AddNumberToObject (row, "amount_cents", (double) cents);
    }
    PQclear (r);
    if (!failed)
        failed |= !cJSON_AddNumberToObject (root, "total_cents", (double) total);
    if (failed) {
        cJSON_Delete (root);
        rst_error (S_CLS, "GET /spend: out of memory");
        return -1;
    }
    return rst_api_ok (res, root);
}

//  A JSON integer from MIN to MAX into *OUT. Returns 1, or 0 when ITEM is
//  not a number, not whole, or out of range.
static int
s_int (const cJSON *item, double min, double max, int64_t *out)
{
    if (!cJSON_IsNumber (item))
        return 0;
    double v = item->valuedouble;
    if (!isfinite (v) || v != floor (v) || v < min || v > max)
        return 0;
    *out = (int64_t) v;
    return 1;
}

//  PUT /spend/manual {pool_id, day, amount_cents}
static int
s_put_manual (const rst_api_req_t *req, PGconn *db, rst_api_res_t *res)
{
    cJSON *body = rst_api_body_object (req, res);
    if (!body)
        return 0;
    int64_t pool, cents;
    const cJSON *day = cJSON_GetObjectItemCaseSensitive (body, "day");
    if (!s_int (cJSON_GetObjectItemCaseSensitive (body, "pool_id"), 1, S_ID_MAX, &pool)) {
        cJSON_Delete (body);
        return rst_api_error (res, 400, "pool_id must be a positive integer");
    }
    if (!cJSON_IsString (day) || !rst_insights_is_day (day->valuestring)) {
        cJSON_Delete (body);
        return rst_api_error (res, 400, "day must be a date (YYYY-MM-DD)");
    }
    if (!s_int (cJSON_GetObjectItemCaseSensitive (body, "amount_cents"), 0,
                (double) RST_INSIGHTS_MAX_CENTS, &cents)) {
        cJSON_Delete (body);
        return rst_api_error (res, 400, "amount_cents must be an integer from 0 (clears the day)");
    }
    char owner[24], pool_s[24], cents_s[24], day_s[11];
    snprintf (owner, sizeof owner, "%" PRId64, req->owner_id);
    snprintf (pool_s, sizeof pool_s, "%" PRId64, pool);
    snprintf (cents_s, sizeof cents_s, "%" PRId64, cents);
    snprintf (day_s, sizeof day_s, "%s", day->valuestring);
    cJSON_Delete (body);
    const char *params[] = {owner, pool_s, day_s, cents_s};
    PGresult *r = s_query (
        db, "PUT /spend/manual",
        "WITH p AS (SELECT id FROM pools WHERE id = $2 AND owner_id = $1),"
        " del AS (DELETE FROM manual_spend m USING p WHERE $4::bigint = 0"
        "   AND m.owner_id = $1 AND m.pool_id = p.id AND m.day = $3::date),"
        " ins AS (INSERT INTO manual_spend (owner_id, pool_id, day, amount_cents)"
        "   SELECT $1, p.id, $3::date, $4::bigint FROM p WHERE $4::bigint > 0"
        "   ON CONFLICT (owner_id, pool_id, day) DO UPDATE"
        "    SET amount_cents = EXCLUDED.amount_cents, updated_at = now ())"
        " SELECT count (*) FROM p",
        4, params, 1);
    if (!r)
        return -1;
    int found = strcmp (PQgetvalue (r, 0, 0), "0") != 0;
    PQclear (r);
    if (!found)
        return rst_api_error (res, 404, "not found");
    cJSON *root = cJSON_CreateObject ();
    if (!root || !cJSON_AddNumberToObject (root, "pool_id", (double) pool)
        || !cJSON_AddStringToObject (root, "day", day_s)
        || !cJSON_AddNumberToObject (root, "amount_cents", (double) cents)) {
        cJSON_Delete (root);
        return -1;
    }
    return rst_api_ok (res, root);
}

//  GET /adaccounts
static int
s_get_adaccounts (const rst_api_req_t *req, PGconn *db, rst_api_res_t *res)
{
    char owner[24];
    snprintf (owner, sizeof owner, "%" PRId64, req->owner_id);
    const char *params[] = {owner};
    PGresult *r = s_query (db, "GET /adaccounts",
                           "SELECT id, account_id, campaign_key, enabled, currency,"
                           " " S_TS ("last_sync_at") ", last_error, usage_pct,"
                           " CASE WHEN throttled_until > now () THEN " S_TS ("throttled_until")
                           " END, token_invalid"
                           " FROM ad_accounts WHERE owner_id = $1 ORDER BY id",
                           1, params, 1);
    if (!r)
        return -1;
    cJSON *root = cJSON_CreateObject ();
    cJSON *rows = cJSON_AddArrayToObject (root, "rows");
    int failed = !root || !rows;
    for (int i = 0; !failed && i < PQntuples (r); i++) {
        cJSON *row = cJSON_CreateObject ();
        if (!row || !cJSON_AddItemToArray (rows, row)) {
            cJSON_Delete (row);
            failed = 1;
            break;
        }
#define S_TEXT_OR_NULL(key, col)                                                               \
    (PQgetisnull (r, i, col) ? cJSON_AddNullToObject (row, key)                                \
                             : cJSON_AddStringToObject (row, key, PQgetvalue (r, i, col)))
        failed |= !cJSON_AddNumberToObject (row, "id",
                                            (double) strtoll (PQgetvalue (r, i, 0), NULL, 10));
        failed |= !cJSON_AddStringToObject (row, "account_id", PQgetvalue (r, i, 1));
        failed |= !cJSON_AddStringToObject (row, "campaign_key", PQgetvalue (r, i, 2));
        failed |= !cJSON_AddBoolToObject (row, "enabled", PQgetvalue (r, i, 3)[0] == 't');
        failed |= !S_TEXT_OR_NULL ("currency", 4);
        failed |= !S_TEXT_OR_NULL ("last_sync_at", 5);
        failed |= !S_TEXT_OR_NULL ("last_error", 6);
        if (PQgetisnull (r, i, 7))
            failed |= !cJSON_AddNullToObject (row, "usage_pct");
        else
            failed |= !cJSON_AddNumberToObject (row, "usage_pct", atoi (PQgetvalue (r, i, 7)));
        failed |= !S_TEXT_OR_NULL ("throttled_until", 8);
        failed |= !cJSON_AddStringToObject (row, "token",
                                            PQgetvalue (r, i, 9)[0] == 't' ? "refused" : "set");
#undef S_TEXT_OR_NULL
    }
    PQclear (r);
    if (failed) {
        cJSON_Delete (root);
        rst_error (S_CLS, "GET /adaccounts: out of memory");
        return -1;
    }
    return rst_api_ok (res, root);
}

const rst_api_route_t rst_spend_routes[] = {
    {"GET", "/spend", s_get_spend, 0},
    {"PUT", "/spend/manual", s_put_manual, 0},
    {"GET", "/adaccounts", s_get_adaccounts, 0},
    {NULL, NULL, NULL, 0},
};
