/*  rst_apiq — the analytics read routes of the JSON API (see rst_apiq.h).

    Every handler does the same three steps:

        parse     the query string, strictly (400 with the reason)
        context   one round trip: the owner's effective time zone, today
                  in it, and whether the pool / bot filter is the owner's
                  (404 when not); then the range's days and block cover
        answer    one or two parameterised statements (explicit parameter
                  types, so every statement takes the same parameter list;
                  prepared once per connection and run with generic plans,
                  see s_exec_prepared), JSON built with cJSON

    Parameters of the analytics statements, always the same seven:
        $1 owner_id   $2 block levels (int2[])   $3 block starts (int4[])
        $4 pool (NULL = any)   $5 bot (NULL = any)   $6 from   $7 to (dates)

    Money and counts are bigint in PostgreSQL and whole numbers in JSON,
    written as raw JSON values (cJSON_CreateRaw: exact, and much cheaper to
    print than cJSON numbers). Rates and ROI are rounded to 4 decimals.
*/
#define _GNU_SOURCE         //  qsort_r
#include "rst_apiq.h"
#include "rst_db.h"
#include "rst_log.h"

#include <assert.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

//  PostgreSQL type oids (pg_type.h is not part of libpq's public headers).
#define S_INT8     20
#define S_INT4     23
#define S_TEXT     25
#define S_DATE     1082
#define S_TSTZ     1184
#define S_INT2ARR  1005
#define S_INT4ARR  1007

#define S_NPARAMS  7
#define S_ID_TEXT  24       //  a bigint as decimal text, with NUL
#define S_TZ_MAX   64

// ---------------------------------------------------------------------------
//  Dates, covers and cursors (pure)

//  Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
static int32_t
s_days_from_civil (int y, int m, int d)
{
    y -= m <= 2;
    int era = (y >= 0 ? y : y - 399) / 400;
    int yoe = y - era * 400;
    int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int
s_days_in_month (int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return days[m - 1];
}

int
rst_apiq_parse_date (const char *s, int32_t *day_p)
{
    if (!s || strlen (s) != 10 || s[4] != '-' || s[7] != '-')
        return -1;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
            return -1;
    int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    int m = (s[5] - '0') * 10 + (s[6] - '0');
    int d = (s[8] - '0') * 10 + (s[9] - '0');
    if (y < 1970 || m < 1 || m > 12 || d < 1 || d > s_days_in_month (y, m))
        return -1;
    *day_p = s_days_from_civil (y, m, d);
    return 0;
}

void
rst_apiq_format_date (int32_t day, char out[11])
{
    int z = day + 719468;
    int era = (z >= 0 ? z : z - 146096) / 146097;
    int doe = z - era * 146097;
    int yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int y = yoe + era * 400;
    int doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int mp = (5 * doy + 2) / 153;
    int d = doy - (153 * mp + 2) / 5 + 1;
    int m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;
    unsigned uy = (unsigned) y % 10000, um = (unsigned) m % 100, ud = (unsigned) d % 100;
    snprintf (out, 11, "%04u-%02u-%02u", uy, um, ud);
}

size_t
rst_apiq_cover (int32_t from, int32_t to, int16_t *lvl, int32_t *start, size_t max)
{
    if (from < 0 || from > to)
        return 0;
    size_t n = 0;
    int64_t cur = from;
    while (cur <= to) {
        int level = RST_APIQ_MAX_LEVEL;
        while (level > 0) {
            int64_t size = (int64_t) 1 << (2 * level);
            if (cur % size == 0 && cur + size - 1 <= to)
                break;
            level--;
        }
        if (n == max)
            return 0;
        lvl[n] = (int16_t) level;
        start[n] = (int32_t) cur;
        n++;
        cur += (int64_t) 1 << (2 * level);
    }
    return n;
}

void
rst_apiq_cursor_encode (int64_t created_us, int64_t id, char *out)
{
    char plain[48];
    int len = snprintf (plain, sizeof plain, "%" PRId64 ":%" PRId64, created_us, id);
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < len; i++) {
        out[2 * i] = hex[(unsigned char) plain[i] >> 4];
        out[2 * i + 1] = hex[(unsigned char) plain[i] & 15];
    }
    out[2 * len] = 0;
}

static int
s_hex (char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

//  Parses 1..18 decimal digits at *S_P (advancing it) into *V_P. 0 or -1.
static int
s_digits (const char **s_p, int64_t *v_p)
{
    const char *s = *s_p;
    int64_t v = 0;
    int n = 0;
    while (*s >= '0' && *s <= '9') {
        if (++n > 18)
            return -1;
        v = v * 10 + (*s++ - '0');
    }
    if (n == 0)
        return -1;
    *s_p = s;
    *v_p = v;
    return 0;
}

int
rst_apiq_cursor_decode (const char *s, int64_t *created_us_p, int64_t *id_p)
{
    size_t len = s ? strlen (s) : 0;
    if (len == 0 || len % 2 || len > RST_APIQ_CURSOR_MAX)
        return -1;
    char plain[RST_APIQ_CURSOR_MAX / 2 + 1];
    for (size_t i = 0; i < len / 2; i++) {
        int hi = s_hex (s[2 * i]), lo = s_hex (s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        plain[i] = (char) (hi * 16 + lo);
        if (plain[i] != ':' && (plain[i] < '0' || plain[i] > '9'))
            return -1;
    }
    plain[len / 2] = 0;
    const char *p = plain;
    int64_t us, id;
    if (s_digits (&p, &us) || *p++ != ':' || s_digits (&p, &id) || *p || id < 1)
        return -1;
    *created_us_p = us;
    *id_p = id;
    return 0;
}

// ---------------------------------------------------------------------------
//  Parsing requests

//  Parses a strict decimal id (1..18 digits, no sign) ≥ MIN. 0 or -1.
static int
s_parse_id (const char *s, int64_t min, int64_t *v_p)
{
    int64_t v;
    if (s_digits (&s, &v) || *s || v < min)
        return -1;
    *v_p = v;
    return 0;
}

enum {
    S_RANGE = 1 << 0,       //  the route takes range/from/to
    S_POOL = 1 << 1,        //  the route takes ?pool=
    S_BOT = 1 << 2,         //  the route takes ?bot=
};

//  What a request is about, once parsed and checked.
typedef struct {
    char tz[S_TZ_MAX];                       //  the effective time zone
    int32_t from, to;                        //  days since 1970-01-01, inclusive
    char from_s[11], to_s[11];               //  the same as YYYY-MM-DD
    bool has_pool, has_bot;
    char pool_s[S_ID_TEXT], bot_s[S_ID_TEXT];//  the filters as text
    char owner_s[S_ID_TEXT];
    char lvls[RST_APIQ_MAX_BLOCKS * 3 + 3];  //  "{0,4,...}"
    char starts[RST_APIQ_MAX_BLOCKS * 12 + 3];
} s_ctx_t;

//  Runs the statement NAME (SQL, prepared on this connection on first use)
//  with the given text parameters. Returns the result (the caller PQclears
//  it), or NULL after logging PostgreSQL's message.
static PGresult *
s_run (PGconn *db, const char *what, const char *name, const char *sql, int n, const Oid *types,
       const char *const *values)
{
    PGresult *r = rst_db_exec_prepared (db, name, sql, n, types, values, NULL, NULL);
    if (PQresultStatus (r) != PGRES_TUPLES_OK) {
        rst_error ("apiq", "%s: PostgreSQL: %s", what, PQresultErrorMessage (r));
        PQclear (r);
        return NULL;
    }
    return r;
}

//  s_run for a static statement SQL, named after its address. The routes
//  other than the two lists run with generic plans only
//  (RST_API_GENERIC_PLANS): planning costs more than running most of their
//  statements, and with the block arrays known, a custom plan of a short
//  range looks cheaper, so in PostgreSQL's default mode it would plan every
//  call anew. /leads and /payments keep the default: a generic plan cannot
//  see their LIMIT and picks a plan for a tenth of the table.
static PGresult *
s_exec_prepared (PGconn *db, const char *what, const char *sql, int n, const Oid *types,
                 const char *const *values)
{
    char name[32];
    snprintf (name, sizeof name, "rst_apiq_%p", (const void *) sql);
    return s_run (db, what, name, sql, n, types, values);
}

static int64_t
s_int (const PGresult *r, int row, int col)
{
    return strtoll (PQgetvalue (r, row, col), NULL, 10);
}

//  Parses the range and filters FLAGS allows, resolves them against the
//  database. Returns 0 (CTX filled), 1 when RES holds a 400/404 answer, or
//  -1 (internal error, logged).
static int
s_context (const rst_api_req_t *req, PGconn *db, rst_api_res_t *res, unsigned flags, s_ctx_t *ctx)
{
    memset (ctx, 0, sizeof *ctx);
    snprintf (ctx->owner_s, sizeof ctx->owner_s, "%" PRId64, req->owner_id);
    char range[16], from[16], to[16], id[S_ID_TEXT];
    int kind = 0;           //  0 today, 1 yesterday, 7, 30, -1 custom
    if (flags & S_RANGE) {
        int rc = rst_api_query (req, "range", range, sizeof range);
        int rf = rst_api_query (req, "from", from, sizeof from);
        int rt = rst_api_query (req, "to", to, sizeof to);
        if (rc < 0)
            return rst_api_error (res, 400, "bad range: today, yesterday, 7d, 30d or custom"), 1;
        if (rc == 0)
            kind = (rf || rt) ? -1 : 0;
        else if (!strcmp (range, "today"))
            kind = 0;
        else if (!strcmp (range, "yesterday"))
            kind = 1;
        else if (!strcmp (range, "7d"))
            kind = 7;
        else if (!strcmp (range, "30d"))
            kind = 30;
        else if (!strcmp (range, "custom"))
            kind = -1;
        else
            return rst_api_error (res, 400, "bad range: today, yesterday, 7d, 30d or custom"), 1;
        if (kind != -1 && (rf || rt))
            return rst_api_error (res, 400, "from and to need range=custom"), 1;
        if (kind == -1) {
            if (rf != 1 || rt != 1)
                return rst_api_error (res, 400, "range=custom needs from and to (YYYY-MM-DD)"), 1;
            if (rst_apiq_parse_date (from, &ctx->from))
                return rst_api_error (res, 400, "bad from: a date YYYY-MM-DD"), 1;
            if (rst_apiq_parse_date (to, &ctx->to))
                return rst_api_error (res, 400, "bad to: a date YYYY-MM-DD"), 1;
            if (ctx->from > ctx->to)
                return rst_api_error (res, 400, "from is after to"), 1;
            if (ctx->to - ctx->from + 1 > RST_APIQ_MAX_DAYS)
                return rst_api_error (res, 400, "range longer than 366 days"), 1;
        }
    }
    if (flags & S_POOL) {
        int rc = rst_api_query (req, "pool", id, sizeof id);
        int64_t v;
        if (rc < 0 || (rc == 1 && s_parse_id (id, 0, &v)))
            return rst_api_error (res, 400, "bad pool: an id"), 1;
        if (rc == 1) {
            ctx->has_pool = true;
            snprintf (ctx->pool_s, sizeof ctx->pool_s, "%" PRId64, v);
        }
    }
    if (flags & S_BOT) {
        int rc = rst_api_query (req, "bot", id, sizeof id);
        int64_t v;
        if (rc < 0 || (rc == 1 && s_parse_id (id, 1, &v)))
            return rst_api_error (res, 400, "bad bot: an id"), 1;
        if (rc == 1) {
            ctx->has_bot = true;
            snprintf (ctx->bot_s, sizeof ctx->bot_s, "%" PRId64, v);
        }
    }

    static const char *sql =
        "SELECT z.tz, (now () AT TIME ZONE z.tz)::date - DATE '1970-01-01',"
        "       ($2::bigint IS NULL OR $2 = 0"
        "        OR EXISTS (SELECT 1 FROM pools WHERE id = $2 AND owner_id = $4)),"
        "       ($3::bigint IS NULL"
        "        OR EXISTS (SELECT 1 FROM bots WHERE id = $3 AND owner_id = $4))"
        "  FROM (SELECT rastro_timezone ($1) AS tz OFFSET 0) z";   //  once
    static const Oid types[] = {S_TEXT, S_INT8, S_INT8, S_INT8};
    const char *values[] = {req->timezone ? req->timezone : "", ctx->has_pool ? ctx->pool_s : NULL,
                            ctx->has_bot ? ctx->bot_s : NULL, ctx->owner_s};
    PGresult *r = s_exec_prepared (db, "context", sql, 4, types, values);
    if (!r)
        return -1;
    snprintf (ctx->tz, sizeof ctx->tz, "%s", PQgetvalue (r, 0, 0));
    int32_t today = (int32_t) s_int (r, 0, 1);
    bool pool_ok = PQgetvalue (r, 0, 2)[0] == 't';
    bool bot_ok = PQgetvalue (r, 0, 3)[0] == 't';
    PQclear (r);
    if (!pool_ok)
        return rst_api_error (res, 404, "pool not found"), 1;
    if (!bot_ok)
        return rst_api_error (res, 404, "bot not found"), 1;
    if (!(flags & S_RANGE))
        return 0;

    if (kind == 0)
        ctx->from = ctx->to = today;
    else if (kind == 1)
        ctx->from = ctx->to = today - 1;
    else if (kind > 0) {
        ctx->to = today;
        ctx->from = today - (kind - 1);
    }
    rst_apiq_format_date (ctx->from, ctx->from_s);
    rst_apiq_format_date (ctx->to, ctx->to_s);

    int16_t lvl[RST_APIQ_MAX_BLOCKS];
    int32_t start[RST_APIQ_MAX_BLOCKS];
    size_t n = rst_apiq_cover (ctx->from, ctx->to, lvl, start, RST_APIQ_MAX_BLOCKS);
    assert (n > 0);     //  ranges are ≤ 366 days, dates ≥ 1970
    size_t a = 0, b = 0;
    ctx->lvls[a++] = '{';
    ctx->starts[b++] = '{';
    for (size_t i = 0; i < n; i++) {
        a += (size_t) snprintf (ctx->lvls + a, sizeof ctx->lvls - a, "%s%d", i ? "," : "", lvl[i]);
        b += (size_t) snprintf (ctx->starts + b, sizeof ctx->starts - b, "%s%" PRId32, i ? "," : "",
                                start[i]);
    }
    snprintf (ctx->lvls + a, sizeof ctx->lvls - a, "}");
    snprintf (ctx->starts + b, sizeof ctx->starts - b, "}");
    return 0;
}

//  Runs one analytics statement with the seven standard parameters.
static PGresult *
s_exec_ctx (PGconn *db, const char *what, const char *sql, const s_ctx_t *ctx)
{
    static const Oid types[S_NPARAMS] = {S_INT8, S_INT2ARR, S_INT4ARR, S_INT8, S_INT8, S_DATE, S_DATE};
    const char *values[S_NPARAMS] = {ctx->owner_s, ctx->lvls, ctx->starts,
                                     ctx->has_pool ? ctx->pool_s : NULL,
                                     ctx->has_bot ? ctx->bot_s : NULL, ctx->from_s, ctx->to_s};
    return s_exec_prepared (db, what, sql, S_NPARAMS, types, values);
}

// ---------------------------------------------------------------------------
//  JSON

//  Whether a cJSON allocation failed while building an answer.
typedef struct {
    bool oom;
} s_json_t;

static void
s_put (s_json_t *j, cJSON *obj, const char *key, cJSON *item)
{
    if (!item || !obj || !cJSON_AddItemToObjectCS (obj, key, item)) {
        cJSON_Delete (item);
        j->oom = true;
    }
}

static void
s_num (s_json_t *j, cJSON *obj, const char *key, double v)
{
    s_put (j, obj, key, cJSON_CreateNumber (v));
}

//  A whole number, as a raw JSON value: cJSON would print a number with
//  snprintf + sscanf round-trip checks, the bulk of the time of a 500-row answer.
static void
s_whole (s_json_t *j, cJSON *obj, const char *key, int64_t v)
{
    char text[S_ID_TEXT];
    snprintf (text, sizeof text, "%" PRId64, v);
    s_put (j, obj, key, cJSON_CreateRaw (text));
}

//  Column COL of row ROW, a PostgreSQL integer (its text is a JSON number), raw.
static void
s_whole_col (s_json_t *j, cJSON *obj, const char *key, const PGresult *r, int row, int col)
{
    s_put (j, obj, key, cJSON_CreateRaw (PQgetvalue (r, row, col)));
}

static void
s_null (s_json_t *j, cJSON *obj, const char *key)
{
    s_put (j, obj, key, cJSON_CreateNull ());
}

//  Column COL of row ROW as a string, or null when SQL NULL.
static void
s_text (s_json_t *j, cJSON *obj, const char *key, const PGresult *r, int row, int col)
{
    if (PQgetisnull (r, row, col))
        s_null (j, obj, key);
    else
        s_put (j, obj, key, cJSON_CreateString (PQgetvalue (r, row, col)));
}

static void
s_bool (s_json_t *j, cJSON *obj, const char *key, const PGresult *r, int row, int col)
{
    s_put (j, obj, key, cJSON_CreateBool (PQgetvalue (r, row, col)[0] == 't'));
}

static void
s_int_col (s_json_t *j, cJSON *obj, const char *key, const PGresult *r, int row, int col)
{
    if (PQgetisnull (r, row, col))
        s_null (j, obj, key);
    else
        s_whole_col (j, obj, key, r, row, col);
}

static cJSON *
s_array (s_json_t *j, cJSON *obj, const char *key)
{
    cJSON *a = cJSON_CreateArray ();
    s_put (j, obj, key, a);
    return j->oom ? NULL : a;
}

static cJSON *
s_object_in (s_json_t *j, cJSON *array)
{
    cJSON *o = cJSON_CreateObject ();
    if (!o || !array || !cJSON_AddItemToArray (array, o)) {
        cJSON_Delete (o);
        j->oom = true;
        return NULL;
    }
    return o;
}

//  X rounded to 4 decimals.
static double
s_round4 (double x)
{
    double y = x * 10000.0;
    y = y >= 0 ? (double) (int64_t) (y + 0.5) : -(double) (int64_t) (-y + 0.5);
    return y / 10000.0;
}

static void
s_rate (s_json_t *j, cJSON *obj, const char *key, int64_t num, int64_t den)
{
    if (den == 0)
        s_null (j, obj, key);
    else
        s_num (j, obj, key, s_round4 ((double) num / (double) den));
}

//  The metrics of one row, range or key.
typedef struct {
    int64_t clicks, automated_clicks, starts, checkouts, purchases, revenue_cents;
    int64_t spend_cents;
    bool has_spend;         //  false: spend cannot be attributed (null)
} s_metrics_t;

//  Reads six metric columns from COL on, then the spend at COL + 6 when
//  WITH_SPEND (NULL there = no spend row, i.e. 0).
static void
s_metrics_read (const PGresult *r, int row, int col, bool with_spend, s_metrics_t *m)
{
    m->clicks = s_int (r, row, col);
    m->automated_clicks = s_int (r, row, col + 1);
    m->starts = s_int (r, row, col + 2);
    m->checkouts = s_int (r, row, col + 3);
    m->purchases = s_int (r, row, col + 4);
    m->revenue_cents = s_int (r, row, col + 5);
    m->has_spend = with_spend;
    m->spend_cents = with_spend && !PQgetisnull (r, row, col + 6) ? s_int (r, row, col + 6) : 0;
}

static void
s_metrics_json (s_json_t *j, cJSON *o, const s_metrics_t *m)
{
    s_whole (j, o, "clicks", m->clicks);
    s_whole (j, o, "automated_clicks", m->automated_clicks);
    s_whole (j, o, "starts", m->starts);
    s_whole (j, o, "checkouts", m->checkouts);
    s_whole (j, o, "purchases", m->purchases);
    s_whole (j, o, "revenue_cents", m->revenue_cents);
    if (!m->has_spend) {
        s_null (j, o, "spend_cents");
        s_null (j, o, "profit_cents");
        s_null (j, o, "roi");
        return;
    }
    s_whole (j, o, "spend_cents", m->spend_cents);
    s_whole (j, o, "profit_cents", m->revenue_cents - m->spend_cents);
    if (m->spend_cents == 0)
        s_null (j, o, "roi");
    else
        s_num (j, o, "roi", s_round4 ((double) m->revenue_cents / (double) m->spend_cents - 1.0));
}

//  A new answer object with "range": {from, to, timezone}.
static cJSON *
s_answer (s_json_t *j, const s_ctx_t *ctx)
{
    cJSON *root = cJSON_CreateObject ();
    if (!root) {
        j->oom = true;
        return NULL;
    }
    cJSON *range = cJSON_CreateObject ();
    s_put (j, root, "range", range);
    if (!j->oom) {
        s_put (j, range, "from", cJSON_CreateString (ctx->from_s));
        s_put (j, range, "to", cJSON_CreateString (ctx->to_s));
        s_put (j, range, "timezone", cJSON_CreateString (ctx->tz));
    }
    return root;
}

//  Hands ROOT to RES, or frees it and fails when building it ran out of memory.
static int
s_finish (s_json_t *j, cJSON *root, rst_api_res_t *res)
{
    if (j->oom || !root) {
        cJSON_Delete (root);
        rst_error ("apiq", "out of memory building an answer");
        return -1;
    }
    return rst_api_ok (res, root);
}

//  Long arrays (/hourly's rows, /by-bot's) are written as JSON text
//  directly and handed to cJSON as one raw value: building and printing
//  thousands of cJSON objects costs more than the query.
typedef struct {
    char *data;             //  NUL-terminated, owned
    size_t len, cap;
    bool oom;
} s_buf_t;

static void
s_buf_put (s_buf_t *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *data = realloc (b->data, cap);
        if (!data) {
            b->oom = true;
            return;
        }
        b->data = data;
        b->cap = cap;
    }
    memcpy (b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = 0;
}

//  LIT must be a string literal (its size is taken).
#define s_buf_lit(b, lit) s_buf_put ((b), "" lit, sizeof (lit) - 1)

static void
s_buf_str (s_buf_t *b, const char *s)
{
    s_buf_put (b, s, strlen (s));
}

//  S as a JSON string (quotes, backslashes and control characters escaped;
//  the database holds UTF-8).
static void
s_buf_json_string (s_buf_t *b, const char *s)
{
    s_buf_lit (b, "\"");
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char) *s;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        s_buf_put (b, run, (size_t) (s - run));
        char esc[8];
        snprintf (esc, sizeof esc, "\\u%04x", c);
        s_buf_str (b, esc);
        run = s + 1;
    }
    s_buf_put (b, run, (size_t) (s - run));
    s_buf_lit (b, "\"");
}

//  Puts B's text into OBJ under KEY as a raw JSON value; frees B's buffer.
static void
s_buf_finish (s_json_t *j, cJSON *obj, const char *key, s_buf_t *b)
{
    if (b->oom || !b->data)
        j->oom = true;
    else
        s_put (j, obj, key, cJSON_CreateRaw (b->data));
    free (b->data);
    b->data = NULL;
}

// ---------------------------------------------------------------------------
//  SQL

#define S_SUMS(t)                                                                        \
    "COALESCE (sum (" t ".clicks), 0)::bigint AS clicks,"                                \
    " COALESCE (sum (" t ".automated_clicks), 0)::bigint AS automated_clicks,"           \
    " COALESCE (sum (" t ".starts), 0)::bigint AS starts,"                               \
    " COALESCE (sum (" t ".checkouts), 0)::bigint AS checkouts,"                         \
    " COALESCE (sum (" t ".purchases), 0)::bigint AS purchases,"                         \
    " COALESCE (sum (" t ".revenue_cents), 0)::bigint AS revenue_cents"

//  The six sums of a LEFT JOINed m, 0 where it has no row.
#define S_M_SUMS                                                                         \
    "COALESCE (m.clicks, 0), COALESCE (m.automated_clicks, 0), COALESCE (m.starts, 0),"  \
    " COALESCE (m.checkouts, 0), COALESCE (m.purchases, 0), COALESCE (m.revenue_cents, 0)"

#define S_BLOCKS "WITH b AS (SELECT * FROM unnest ($2::smallint[], $3::int[]) AS b (lvl, start)) "

#define S_SPEND_SUM                                                                  \
    "(SELECT COALESCE (sum (s.amount_cents), 0)::bigint FROM spend_daily s"          \
    "  WHERE s.owner_id = $1 AND s.day BETWEEN $6 AND $7"                            \
    "    AND ($4::bigint IS NULL OR s.pool_id = $4))"

//  Totals over the range, all pools or one (spend known).
static const char *s_sql_totals_pool =
    S_BLOCKS
    "SELECT " S_SUMS ("r") ", " S_SPEND_SUM
    "  FROM b JOIN analytics_roll_pool r ON r.owner_id = $1 AND r.lvl = b.lvl AND r.start = b.start"
    " WHERE ($4::bigint IS NULL OR r.pool_id = $4)";

//  Totals of one bot (in one pool or all), spend unknown.
static const char *s_sql_totals_bot =
    S_BLOCKS
    "SELECT " S_SUMS ("r") ", NULL::bigint"
    "  FROM b JOIN analytics_roll_bot r ON r.owner_id = $1 AND r.lvl = b.lvl AND r.start = b.start"
    "   AND r.bot_id = $5"
    " WHERE ($4::bigint IS NULL OR r.pool_id = $4)";

//  Loads the range's totals for CTX's filters into M. 0 or -1.
static int
s_totals (PGconn *db, const s_ctx_t *ctx, s_metrics_t *m)
{
    PGresult *r = s_exec_ctx (db, "totals", ctx->has_bot ? s_sql_totals_bot : s_sql_totals_pool, ctx);
    if (!r)
        return -1;
    s_metrics_read (r, 0, 0, !ctx->has_bot, m);
    PQclear (r);
    return 0;
}

// ---------------------------------------------------------------------------
//  Handlers

static int
s_summary (const rst_api_req_t *req, PGconn *db, rst_api_res_t *res)
{
    s_ctx_t ctx;
    int rc = s_context (req, db, res, S_RANGE | S_POOL | S_BOT, &ctx);
    if (rc)
        return rc > 0 ? 0 : -1;
    s_metrics_t m;
    if (s_totals (db, &ctx, &m))
        return -1;
    s_json_t j = {false};
    cJSON *root = s_answer (&j, &ctx);
    cJSON *metrics = cJSON_CreateObject ();
    s_put (&j, root, "metrics", metrics);
    if (!j.oom)
        s_metrics_json (&j, metrics, &m);
    return s_finish (&j, root, res);
}

static int
s_funnel (const rst_api_req_t *req, PGconn *db, rst_api_res_t *res)
{
    s_ctx_t ctx;
    int rc = s_context (req, db, res, S_RANGE | S_POOL | S_BOT, &ctx);
    if (rc)
        return rc > 0 ? 0 : -1;
    s_metrics_t m;
    if (s_totals (db, &ctx, &m))
        return -1;
    s_json_t j = {false};
    cJSON *root = s_answer (&j, &ctx);
    cJSON *steps = s_array (&j, root, "steps");
    const char *names[] = {"click", "start", "checkout", "purchase"};
    int64_t counts[] = {m.clicks, m.starts, m.checkouts, m.purchases};
    for (int i = 0; i < 4 && !j.oom; i++) {
        cJSON *step = s_object_in (&j, steps);
        if (!step)
            break;
        s_put (&j, step, "step", cJSON_CreateString (names[i]));
        s_whole (&j, step, "count", counts[i]);
        if (i == 0)
            s_null (&j, step, "rate");
        else
            s_rate (&j, step, "rate", counts[i], counts[i - 1]);
    }
    s_rate (&j, root, "overall_rate", m.purchases, m.clicks);
    return s_finish (&j, root, res);
}

#define S_HOUR_COLS                                                                    \
    "day - DATE '1970-01-01', hour, clicks, automated_clicks, starts, checkouts,"      \
    " purchases, revenue_cents"

static const char *s_sql_hourly_owner =
    "SELECT " S_HOUR_COLS " FROM analytics_hour_owner"
    " WHERE owner_id = $1 AND day BETWEEN $6 AND $7"
    " ORDER BY day, hour";

static const char *s_sql_hourly_pool =
    "SELECT " S_HOUR_COLS " FROM analytics_hour_pool"
    " WHERE owner_id = $1 AND pool_id = $4 AND day BETWEEN $6 AND $7"
    " ORDER BY day, hour";

static const char *s_sql_hourly_bot =
    "SELECT day - DATE '1970-01-01', hour, " S_SUMS ("h")
    "  FROM analytics_hour_bot h"
    " WHERE owner_id = $1 AND bot_id = $5 AND day BETWEEN $6 AND $7"
    "   AND ($4::bigint IS NULL OR pool_id = $4)"
    " GROUP BY day, hour ORDER BY day, hour";

static const char *s_sql_spend_by_day =
    "SELECT s.day - DATE '1970-01-01', sum (s.amount_cents)::bigint FROM spend_daily s"
    " WHERE s.owner_id = $1 AND s.day BETWEEN $6 AND $7 AND ($4::bigint IS NULL OR s.pool_id = $4)"
    " GROUP BY 1 ORDER BY 1";

static int
s_hourly (const rst_api_req_t *req, PGconn *db, rst_api_res_t *res)
{
    s_ctx_t ctx;
    int rc = s_context (req, db, res, S_RANGE | S_POOL | S_BOT, &ctx);
    if (rc)
        return rc > 0 ? 0 : -1;
    if (ctx.to - ctx.from + 1 > RST_APIQ_HOURLY_MAX_DAYS)
        return rst_api_error (res, 400, "range longer than 31 days: /hourly is by hour; "
                                        "use /daily for longer ranges");
    const char *sql = ctx.has_bot ? s_sql_hourly_bot
                    : ctx.has_pool ? s_sql_hourly_pool : s_sql_hourly_owner;
    PGresult *r = s_exec_ctx (db, "hourly", sql, &ctx);
    if (!r)
        return -1;
    PGresult *spend = NULL;
    if (!ctx.has_bot && !(spend = s_exec_ctx (db, "hourly spend", s_sql_spend_by_day, &ctx))) {
        PQclear (r);
        return -1;
    }
    s_json_t j = {false};
    cJSON *root = s_answer (&j, &ctx);
    int n = PQntuples (r);
    static const char *keys[] = {"\"hour\":", ",\"clicks\":", ",\"automated_clicks\":",
                                 ",\"starts\":", ",\"checkouts\":", ",\"purchases\":",
                                 ",\"revenue_cents\":"};
    char day[11];
    s_buf_t b = {NULL, 0, 0, false};
    s_buf_lit (&b, "[");
    for (int i = 0; i < n; i++) {
        rst_apiq_format_date ((int32_t) s_int (r, i, 0), day);
        s_buf_str (&b, i ? ",{\"day\":\"" : "{\"day\":\"");
        s_buf_put (&b, day, 10);
        s_buf_lit (&b, "\",");
        for (int k = 0; k < 7; k++) {
            s_buf_str (&b, keys[k]);
            s_buf_str (&b, PQgetvalue (r, i, 1 + k));     //  integers: JSON numbers as they are
        }
        s_buf_lit (&b, "}");
    }
    s_buf_lit (&b, "]");
    s_buf_finish (&j, root, "rows", &b);
    //  By bot, spend cannot be attributed: no days.
    cJSON *days = s_array (&j, root, "spend_by_day");
    for (int i = 0; spend && i < PQntuples (spend) && !j.oom; i++) {
        cJSON *row = s_object_in (&j, days);
        if (!row)
            break;
        rst_apiq_format_date ((int32_t) s_int (spend, i, 0), day);
        s_put (&j, row, "day", cJSON_CreateString (day));
        s_whole_col (&j, row, "spend_cents", spend, i, 1);
    }
    PQclear (r);
    PQclear (spend);
    return s_finish (&j, root, res);
}

//  /daily: one row per day with activity (or spend), from the day rollups.
#define S_NONZERO(t)                                                                   \
    "(sum (" t ".clicks) <> 0 OR sum (" t ".automated_clicks) <> 0 OR sum (" t ".starts) <> 0"   \
    " OR sum (" t ".checkouts) <> 0 OR sum (" t ".purchases) <> 0 OR sum (" t ".revenue_cents) <> 0)"

//  All pools (analytics_day_owner) or one (the level-0 blocks of
//  analytics_roll_pool), plus spend.
//  The spend per day: spend_day (009_api_speed.sql, the sums of spend_daily
//  per owner and day, pool -1, or per pool and day).
#define S_DAILY_SPEND                                                                          \
    "), s AS ("                                                                                \
    "  SELECT s.day - DATE '1970-01-01' AS d, s.amount_cents AS spend FROM spend_day s"        \
    "   WHERE s.owner_id = $1 AND s.pool_id = COALESCE ($4::bigint, -1)"                       \
    "     AND s.day BETWEEN $6 AND $7 AND s.amount_cents <> 0"                                 \
    ") "                                                                                       \
    "SELECT COALESCE (m.d, s.d), " S_M_SUMS ", COALESCE (s.spend, 0)"                          \
    "  FROM m FULL JOIN s ON s.d = m.d ORDER BY 1"

static const char *s_sql_daily_owner =
    "WITH m AS ("
    "  SELECT r.day - DATE '1970-01-01' AS d, " S_SUMS ("r")
    "    FROM analytics_day_owner r"
    "   WHERE r.owner_id = $1 AND r.day BETWEEN $6 AND $7"
    "   GROUP BY r.day HAVING " S_NONZERO ("r")
    S_DAILY_SPEND;

static const char *s_sql_daily_pool =
    "WITH m AS ("
    "  SELECT r.start AS d, " S_SUMS ("r")
    "    FROM analytics_roll_pool r"
    "   WHERE r.owner_id = $1 AND r.pool_id = $4 AND r.lvl = 0"
    "     AND r.start BETWEEN $6 - DATE '1970-01-01' AND $7 - DATE '1970-01-01'"
    "   GROUP BY r.start HAVING " S_NONZERO ("r")
    S_DAILY_SPEND;

//  One bot (all its pools): the differences of its cumulative sums
//  (analytics_cum_bot), from the latest row before the range on.
#define S_LAG(c) c " - lag (" c ", 1, 0::bigint) OVER w AS " c
static const char *s_sql_daily_bot =
    "WITH c AS ("
    "  SELECT day, clicks, automated_clicks, starts, checkouts, purchases, revenue_cents"
    "    FROM analytics_cum_bot WHERE owner_id = $1 AND bot_id = $5 AND day BETWEEN $6 AND $7"
    "  UNION ALL"
    "  (SELECT day, clicks, automated_clicks, starts, checkouts, purchases, revenue_cents"
    "     FROM analytics_cum_bot WHERE owner_id = $1 AND bot_id = $5 AND day < $6"
    "    ORDER BY day DESC LIMIT 1)"
    "), d AS ("
    "  SELECT day, " S_LAG ("clicks") ", " S_LAG ("automated_clicks") ", " S_LAG ("starts") ","
    "         " S_LAG ("checkouts") ", " S_LAG ("purchases") ", " S_LAG ("revenue_cents")
    "    FROM c WINDOW w AS (ORDER BY day)"
    ") "
    "SELECT day - DATE '1970-01-01', clicks, automated_clicks, starts, checkouts, purchases,"
    "       revenue_cents, NULL::bigint"
    "  FROM d WHERE day >= $6"
    "   AND (clicks <> 0 OR automated_clicks <> 0 OR starts <> 0 OR checkouts <> 0"
    "        OR purchases <> 0 OR revenue_cents <> 0)"
    " ORDER BY day";

//  One bot in one pool: the level-0 blocks of analytics_roll_bot.
static const char *s_sql_daily_bot_pool =
    "SELECT r.start, " S_SUMS ("r") ", NULL::bigint"
    "  FROM analytics_roll_bot r"
    " WHERE r.owner_id = $1 AND r.bot_id = $5 AND r.pool_id = $4 AND r.lvl = 0"
    "   AND r.start BETWEEN $6 - DATE '1970-01-01' AND $7 - DATE '1970-01-01'"
    " GROUP BY r.start HAVING " S_NONZERO ("r") " ORDER BY r.start";

static int
s_daily (const rst_api_req_t *req, PGconn *db, rst_api_res_t *res)
{
    s_ctx_t ctx;
    int rc = s_context (req, db, res, S_RANGE | S_POOL | S_BOT, &ctx);
    if (rc)
        return rc > 0 ? 0 : -1;
    const char *sql = ctx.has_bot ? (ctx.has_pool ? s_sql_daily_bot_pool : s_sql_daily_bot)
                    : ctx.has_pool ? s_sql_daily_pool : s_sql_daily_owner;
    PGresult *r = s_exec_ctx (db, "daily", sql, &ctx);
    if (!r)
        return -1;
    s_json_t j = {false};
    cJSON *root = s_answer (&j, &ctx);
    static const char *keys[] = {",\"clicks\":", ",\"automated_clicks\":", ",\"starts\":",
                                 ",\"checkouts\":", ",\"purchases\":", ",\"revenue_cents\":",
                                 ",\"spend_cents\":"};
    char day[11];
    s_buf_t b = {NULL, 0, 0, false};
    s_buf_lit (&b, "[");
    for (int i = 0; i < PQntuples (r); i++) {
        rst_apiq_format_date ((int32_t) s_int (r, i, 0), day);
        s_buf_str (&b, i ? ",{\"day\":\"" : "{\"day\":\"");
        s_buf_put (&b, day, 10);
        s_buf_lit (&b, "\"");
        for (int k = 0; k < 7; k++) {
            s_buf_str (&b, keys[k]);
            //  By bot, spend cannot be attributed: null.
            s_buf_str (&b, PQgetisnull (r, i, 1 + k) ? "null" : PQgetvalue (r, i, 1 + k));
        }
        s_buf_lit (&b, "}");
    }
    s_buf_lit (&b, "]");
    s_buf_finish (&j, root, "rows", &b);
    PQclear (r);
    return s_finish (&j, root, res);
}

//  By campaign: every key with activity or Meta spend in the range.
static const char *s_sql_utm_campaign =
    S_BLOCKS ", m AS ("
    "  SELECT r.utm_campaign AS key, " S_SUMS ("r")
    "    FROM b JOIN analytics_roll_utm r ON r.owner_id = $1 AND r.lvl = b.lvl AND r.start = b.start"
    "   WHERE ($4::bigint IS NULL OR r.pool_id = $4)"
    "   GROUP BY r.utm_campaign"
    "), s AS ("
    "  SELECT s.utm_campaign AS key, sum (s.amount_cents)::bigint AS spend FROM spend_daily s"
    "   WHERE s.owner_id = $1 AND s.source = 'meta' AND s.day BETWEEN $6 AND $7"
    "     AND ($4::bigint IS NULL OR s.pool_id = $4)"
    "   GROUP BY s.utm_campaign"
    ") "
    "SELECT COALESCE (m.key, s.key), " S_M_SUMS ", COALESCE (s.spend, 0)"
    "  FROM m FULL JOIN s ON s.key = m.key";

static const char *s_sql_utm_source =
    S_BLOCKS
    "SELECT r.utm_source, " S_SUMS ("r") ", NULL::bigint"
    "  FROM b JOIN analytics_roll_utm r ON r.owner_id = $1 AND r.lvl = b.lvl AND r.start = b.start"
    " WHERE ($4::bigint IS NULL OR r.pool_id = $4)"
    " GROUP BY r.utm_source";

typedef struct {
    const char *key;        //  borrowed from the PGresult
    s_metrics_t m;
} s_utm_row_t;

enum { S_SORT_KEY, S_SORT_CLICKS, S_SORT_STARTS, S_SORT_CHECKOUTS, S_SORT_PURCHASES,
       S_SORT_REVENUE, S_SORT_SPEND, S_SORT_PROFIT, S_SORT_ROI };

static const char *s_sort_names[] = {"key", "clicks", "starts", "checkouts", "purchases",
                                     "revenue_cents", "spend_cents", "profit_cents", "roi", NULL};

typedef struct {
    int by;                 //  S_SORT_*
    bool desc;
} s_sort_t;

//  The value sorted on; false when it is null (sorted last either way).
static bool
s_sort_value (const s_utm_row_t *row, int by, double *v)
{
    const s_metrics_t *m = &row->m;
    switch (by) {
    case S_SORT_CLICKS:    *v = (double) m->clicks; return true;
    case S_SORT_STARTS:    *v = (double) m->starts; return true;
    case S_SORT_CHECKOUTS: *v = (double) m->checkouts; return true;
    case S_SORT_PURCHASES: *v = (double) m->purchases; return true;
    case S_SORT_REVENUE:   *v = (double) m->revenue_cents; return true;
    case S_SORT_SPEND:     *v = (double) m->spend_cents; return m->has_spend;
    case S_SORT_PROFIT:    *v = (double) (m->revenue_cents - m->spend_cents); return m->has_spend;
    default:
        if (!m->has_spend || m->spend_cents == 0)
            return false;
        *v = (double) m->revenue_cents / (double) m->spend_cents;
        return true;
    }
}

static int
s_utm_compare (const void *a_, const void *b_, void *arg)
{
    const s_utm_row_t *a = a_, *b = b_;
    const s_sort_t *sort = arg;
    int c = 0;
    if (sort->by == S_SORT_KEY)
        c = strcmp (a->key, b->key);
    else {
        double va = 0, vb = 0;
        bool ha = s_sort_value (a, sort->by, &va), hb = s_sort_value (b, sort->by, &vb);
        if (ha != hb)
            return ha ? -1 : 1;             //  nulls last, in both orders
        c = (va > vb) - (va < vb);
    }
    if (sort->desc)
        c = -c;
    return c ? c : strcmp (a->key, b->key);
}

static int
s_utm (const rst_api_req_t *req, PGconn *db, rst_api_res_t *res)
{
    char group[16], sort_s[16], order[8];
    int rg = rst_api_query (req, "group", group, sizeof group);
    bool by_campaign = rg == 0 || (rg == 1 && !strcmp (group, "campaign"));
    if (rg < 0 || (rg == 1 && !by_campaign && strcmp (group, "source")))
        return rst_api_error (res, 400, "bad group: campaign or source");
    s_sort_t sort = {S_SORT_REVENUE, true};
    int rs = rst_api_query (req, "sort", sort_s, sizeof sort_s);
    if (rs < 0)
        return rst_api_error (res, 400, "bad sort");
    if (rs == 1) {
        int k = 0;
        while (s_sort_names[k] && strcmp (s_sort_names[k], sort_s))
            k++;
        if (!s_sort_names[k])
            return rst_api_error (res, 400, "bad sort: key, clicks, starts, checkouts, purchases, "
                                            "revenue_cents, spend_cents, profit_cents or roi");
        sort.by = k;
    }
    int ro = rst_api_query (req, "order", order, sizeof order);
    if (ro < 0 || (ro == 1 && strcmp (order, "asc") && strcmp (order, "desc")))
        return rst_api_error (res, 400, "bad order: asc or desc");
    if (ro == 1)
        sort.desc = !strcmp (order, "desc");

    s_ctx_t ctx;
    int rc = s_context (req, db, res, S_RANGE | S_POOL, &ctx);
    if (rc)
        return rc > 0 ? 0 : -1;
    PGresult *r = s_exec_ctx (db, "utm", by_campaign ? s_sql_utm_campaign : s_sql_utm_source, &ctx);
    if (!r)
        return -1;
    int n = PQntuples (r);
    s_utm_row_t *rows = calloc ((size_t) n + 1, sizeof *rows);
    if (!rows) {
        PQclear (r);
        rst_error ("apiq", "out of memory");
        return -1;
    }
    for (int i = 0; i < n; i++) {
        rows[i].key = PQgetvalue (r, i, 0);
        s_metrics_read (r, i, 1, by_campaign, &rows[i].m);
    }
    qsort_r (rows, (size_t) n, sizeof *rows, s_utm_compare, &sort);

    s_json_t j = {false};
    cJSON *root = s_answer (&j, &ctx);
    s_put (&j, root, "group", cJSON_CreateString (by_campaign ? "campaign" : "source"));
    cJSON *items = s_array (&j, root, "rows");
    for (int i = 0; i < n && !j.oom; i++) {
        cJSON *o = s_object_in (&j, items);
        if (!o)
            break;
        s_put (&j, o, "key", cJSON_CreateString (rows[i].key));
        s_metrics_json (&j, o, &rows[i].m);
    }
    free (rows);
    PQclear (r);
    return s_finish (&j, root, res);
}

//  Each bot's sums over [from, to] from its cumulative sums (dense rows per
//  day and bot, and each bot's last row: 009_api_speed.sql): cum(to) −
//  cum(from − 1), where cum(X) is the last row's when X is on or after its
//  day, else the row at X, else 0 (before the bot's first day). Two runs of
//  ~one row per bot, and the owner's last rows: no per-bot probes.
#define S_CUM_AT(r, x, c) "COALESCE (CASE WHEN l.day <= " x " THEN l." c " END, " r "." c ", 0)"
#define S_CUM_DIFF(c) S_CUM_AT ("hi", "$7", c) " - " S_CUM_AT ("lo", "$6 - 1", c)
static const char *s_sql_by_bot =
    "SELECT x.id, x.username, " S_CUM_DIFF ("clicks") ", " S_CUM_DIFF ("automated_clicks") ","
    "       " S_CUM_DIFF ("starts") ", " S_CUM_DIFF ("checkouts") ", " S_CUM_DIFF ("purchases") ","
    "       " S_CUM_DIFF ("revenue_cents")
    "  FROM bots x"
    "  LEFT JOIN analytics_cum_bot_last l ON l.owner_id = $1 AND l.bot_id = x.id"
    "  LEFT JOIN analytics_cum_bot hi ON hi.owner_id = $1 AND hi.day = $7 AND hi.bot_id = x.id"
    "  LEFT JOIN analytics_cum_bot lo ON lo.owner_id = $1 AND lo.day = $6 - 1 AND lo.bot_id = x.id"
    " WHERE x.owner_id = $1 ORDER BY x.id";

static int
s_by_bot (const rst_api_req_t *req, PGconn *db, rst_api_res_t *res)
{
    s_ctx_t ctx;
    int rc = s_context (req, db, res, S_RANGE, &ctx);
    if (rc)
        return rc > 0 ? 0 : -1;
    PGresult *r = s_exec_ctx (db, "by-bot", s_sql_by_bot, &ctx);
    if (!r)
        return -1;
    s_json_t j = {false};
    cJSON *root = s_answer (&j, &ctx);
    static const char *keys[] = {",\"clicks\":", ",\"automated_clicks\":", ",\"starts\":",
                                 ",\"checkouts\":", ",\"purchases\":", ",\"revenue_cents\":"};
    s_buf_t b = {NULL, 0, 0, false};
    s_buf_lit (&b, "[");
    for (int i = 0; i < PQntuples (r); i++) {
        s_buf_str (&b, i ? ",{\"bot_id\":" : "{\"bot_id\":");
        s_buf_str (&b, PQgetvalue (r, i, 0));
        s_buf_lit (&b, ",\"username\":");
        s_buf_json_string (&b, PQgetvalue (r, i, 1));
        for (int k = 0; k < 6; k++) {
            s_buf_str (&b, keys[k]);
            s_buf_str (&b, PQgetvalue (r, i, 2 + k));
        }
        //  Spend is not attributed to bots.
        s_buf_lit (&b, ",\"spend_cents\":null,\"profit_cents\":null,\"roi\":null}");
    }
    s_buf_lit (&b, "]");
    s_buf_finish (&j, root, "rows", &b);
    PQclear (r);
    return s_finish (&j, root, res);
}

static const char *s_sql_by_pool =
    S_BLOCKS ", m AS ("
    "  SELECT r.pool_id, " S_SUMS ("r")
    "    FROM b JOIN analytics_roll_pool r ON r.owner_id = $1 AND r.lvl = b.lvl AND r.start = b.start"
    "   GROUP BY r.pool_id"
    "), s AS ("
    "  SELECT s.pool_id, sum (s.amount_cents)::bigint AS spend FROM spend_daily s"
    "   WHERE s.owner_id = $1 AND s.day BETWEEN $6 AND $7"
    "   GROUP BY s.pool_id"
    "), p AS ("
    "  SELECT 0::bigint AS id, ''::text AS slug"
    "  UNION ALL SELECT id, slug FROM pools WHERE owner_id = $1"
    ") "
    "SELECT p.id, p.slug, " S_M_SUMS ", COALESCE (s.spend, 0)"
    "  FROM p LEFT JOIN m ON m.pool_id = p.id LEFT JOIN s ON s.pool_id = p.id"
    " ORDER BY p.id";

static int
s_by_pool (const rst_api_req_t *req, PGconn *db, rst_api_res_t *res)
{
    s_ctx_t ctx;
    int rc = s_context (req, db, res, S_RANGE, &ctx);
    if (rc)
        return rc > 0 ? 0 : -1;
    PGresult *r = s_exec_ctx (db, "by-pool", s_sql_by_pool, &ctx);
    if (!r)
        return -1;
    s_json_t j = {false};
    cJSON *root = s_answer (&j, &ctx);
    cJSON *rows = s_array (&j, root, "rows");
    for (int i = 0; i < PQntuples (r) && !j.oom; i++) {
        cJSON *o = s_object_in (&j, rows);
        if (!o)
            break;
        s_metrics_t m;
        s_metrics_read (r, i, 2, true, &m);
        s_whole_col (&j, o, "pool_id", r, i, 0);
        s_text (&j, o, "slug", r, i, 1);
        s_metrics_json (&j, o, &m);
    }
    PQclear (r);
    return s_finish (&j, root, res);
}

// ---------------------------------------------------------------------------
//  Lists: leads and payments

#define S_TIME(x) "to_char ((" x ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
#define S_MICROS(x) "(extract (epoch FROM " x ") * 1000000)::bigint"

//  Lead columns: 0 id, 1 bot_id, 2 bot_username, 3 pool_id, 4 first_name,
//  5 username, 6 utm_source, 7 utm_campaign, 8 created_at, 9 paid, 10 µs.
//  (The page is chosen first and `paid` looked up for its rows only: in one
//  query level the planner would hash every paid payment instead.)
#define S_LEAD_COLS                                                                     \
    "l.id, l.bot_id, b.username, l.pool_id, l.first_name, l.username, l.utm_source,"    \
    " l.utm_campaign, " S_TIME ("l.created_at") ","                                     \
    " EXISTS (SELECT 1 FROM payments p WHERE p.lead_id = l.id AND p.status = 'paid'),"  \
    " " S_MICROS ("l.created_at")

//  The lists' statements, one per combination of filters (the filters
//  absent are left out of the text rather than written "$n IS NULL OR
//  ...", so that every variant has a good generic plan and is prepared once
//  per connection). Parameters: $1 owner, $2 pool, $3 bot, $4 $5 the cursor
//  (created_at, id), $6 limit, $7 payment status; those of absent filters
//  are unused. The "%s" takes s_list_filters' text. Planned per call (see
//  s_exec_prepared).
static const char *s_sql_leads =
    "SELECT " S_LEAD_COLS
    "  FROM (SELECT * FROM leads l WHERE l.owner_id = $1%s"
    "         ORDER BY l.created_at DESC, l.id DESC LIMIT $6) l"
    "  JOIN bots b ON b.id = l.bot_id"
    " ORDER BY l.created_at DESC, l.id DESC";

//  Payment columns: 0 id, 1 lead_id, 2 bot_id, 3 bot_username, 4 offer_id,
//  5 offer_name, 6 gateway, 7 status, 8 amount_cents, 9 created_at,
//  10 paid_at, 11 delivery_status, 12 µs.
#define S_PAYMENT_COLS                                                                     \
    "p.id, p.lead_id, p.bot_id, b.username, p.offer_id, o.name, p.gateway, p.status,"      \
    " p.amount_cents, " S_TIME ("p.created_at") ", " S_TIME ("p.paid_at") ","              \
    " p.delivery_status, " S_MICROS ("p.created_at")

static const char *s_sql_payments =
    "SELECT " S_PAYMENT_COLS
    "  FROM (SELECT p.* FROM payments p WHERE p.owner_id = $1%s"
    "         ORDER BY p.created_at DESC, p.id DESC LIMIT $6) p"
    "  JOIN bots b ON b.id = p.bot_id JOIN offers o ON o.id = p.offer_id"
    " ORDER BY p.created_at DESC, p.id DESC";

enum { S_F_POOL = 1, S_F_BOT = 2, S_F_CURSOR = 4, S_F_STATUS = 8 };

//  The conditions of the filters in MASK on table alias T, into OUT (of
//  S_FILTERS_MAX bytes: room for all four).
#define S_FILTERS_MAX 160
static void
s_list_filters (char t, unsigned mask, char *out)
{
    int n = 0;
    out[0] = 0;
    if (mask & S_F_POOL)
        n += snprintf (out + n, S_FILTERS_MAX - (size_t) n, " AND %c.pool_id = $2", t);
    if (mask & S_F_BOT)
        n += snprintf (out + n, S_FILTERS_MAX - (size_t) n, " AND %c.bot_id = $3", t);
    if (mask & S_F_CURSOR)
        n += snprintf (out + n, S_FILTERS_MAX - (size_t) n, " AND (%c.created_at, %c.id) < ($4, $5)",
                       t, t);
    if (mask & S_F_STATUS)
        snprintf (out + n, S_FILTERS_MAX - (size_t) n, " AND %c.status = $7", t);
}

static void
s_lead_json (s_json_t *j, cJSON *o, const PGresult *r, int i)
{
    s_int_col (j, o, "id", r, i, 0);
    s_int_col (j, o, "bot_id", r, i, 1);
    s_text (j, o, "bot_username", r, i, 2);
    s_int_col (j, o, "pool_id", r, i, 3);
    s_text (j, o, "first_name", r, i, 4);
    s_text (j, o, "username", r, i, 5);
    s_text (j, o, "utm_source", r, i, 6);
    s_text (j, o, "utm_campaign", r, i, 7);
    s_text (j, o, "created_at", r, i, 8);
    s_bool (j, o, "paid", r, i, 9);
}

static void
s_payment_json (s_json_t *j, cJSON *o, const PGresult *r, int i)
{
    s_int_col (j, o, "id", r, i, 0);
    s_int_col (j, o, "lead_id", r, i, 1);
    s_int_col (j, o, "bot_id", r, i, 2);
    s_text (j, o, "bot_username", r, i, 3);
    s_int_col (j, o, "offer_id", r, i, 4);
    s_text (j, o, "offer_name", r, i, 5);
    s_text (j, o, "gateway", r, i, 6);
    s_text (j, o, "status", r, i, 7);
    s_int_col (j, o, "amount_cents", r, i, 8);
    s_text (j, o, "created_at", r, i, 9);
    s_text (j, o, "paid_at", r, i, 10);
    s_text (j, o, "delivery_status", r, i, 11);
}

//  The page parameters of a list. Returns 0, or 1 when RES holds a 400.
static int
s_page_params (const rst_api_req_t *req, rst_api_res_t *res, char *limit_s, size_t limit_len,
               char *ts, size_t ts_len, char *id_s, size_t id_len, bool *has_cursor)
{
    char v[RST_APIQ_CURSOR_MAX + 2];
    int64_t limit = RST_APIQ_LIMIT_DEFAULT;
    int rc = rst_api_query (req, "limit", v, sizeof v);
    if (rc < 0 || (rc == 1 && (s_parse_id (v, 1, &limit) || limit > RST_APIQ_LIMIT_MAX)))
        return rst_api_error (res, 400, "bad limit: 1 to 200"), 1;
    snprintf (limit_s, limit_len, "%" PRId64, limit + 1);   //  one more: is there a next page?
    *has_cursor = false;
    rc = rst_api_query (req, "cursor", v, sizeof v);
    if (rc == 0)
        return 0;
    int64_t us, id;
    if (rc < 0 || rst_apiq_cursor_decode (v, &us, &id))
        return rst_api_error (res, 400, "bad cursor"), 1;
    time_t secs = (time_t) (us / 1000000);
    struct tm tm;
    if (!gmtime_r (&secs, &tm) || tm.tm_year + 1900 > 9999)
        return rst_api_error (res, 400, "bad cursor"), 1;
    snprintf (ts, ts_len, "%04d-%02d-%02d %02d:%02d:%02d.%06d+00", tm.tm_year + 1900,
              tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int) (us % 1000000));
    snprintf (id_s, id_len, "%" PRId64, id);
    *has_cursor = true;
    return 0;
}

//  Shared by /leads and /payments: filters, page, statement, items.
static int
s_list (const rst_api_req_t *req, PGconn *db, rst_api_res_t *res, bool payments)
{
    char status[16];
    bool has_status = false;
    if (payments) {
        static const char *statuses[] = {"creating", "pending", "paid", "expired", "failed",
                                         "refunded", NULL};
        int rc = rst_api_query (req, "status", status, sizeof status);
        int k = 0;
        while (rc == 1 && statuses[k] && strcmp (statuses[k], status))
            k++;
        if (rc < 0 || (rc == 1 && !statuses[k]))
            return rst_api_error (res, 400, "bad status: creating, pending, paid, expired, failed "
                                            "or refunded");
        has_status = rc == 1;
    }
    char limit[S_ID_TEXT], ts[48], cursor_id[S_ID_TEXT];
    bool has_cursor;
    if (s_page_params (req, res, limit, sizeof limit, ts, sizeof ts, cursor_id, sizeof cursor_id,
                       &has_cursor))
        return 0;
    s_ctx_t ctx;
    int rc = s_context (req, db, res, S_POOL | S_BOT, &ctx);
    if (rc)
        return rc > 0 ? 0 : -1;

    static const Oid types[] = {S_INT8, S_INT8, S_INT8, S_TSTZ, S_INT8, S_INT4, S_TEXT};
    const char *values[] = {ctx.owner_s, ctx.has_pool ? ctx.pool_s : NULL,
                            ctx.has_bot ? ctx.bot_s : NULL, has_cursor ? ts : NULL,
                            has_cursor ? cursor_id : NULL, limit, has_status ? status : NULL};
    unsigned mask = (ctx.has_pool ? S_F_POOL : 0) | (ctx.has_bot ? S_F_BOT : 0)
                  | (has_cursor ? S_F_CURSOR : 0) | (has_status ? S_F_STATUS : 0);
    char filters[S_FILTERS_MAX], sql[2048], name[32];
    s_list_filters (payments ? 'p' : 'l', mask, filters);
    int len = snprintf (sql, sizeof sql, payments ? s_sql_payments : s_sql_leads, filters);
    assert (len > 0 && (size_t) len < sizeof sql);
    (void) len;
    snprintf (name, sizeof name, "rst_apiq_%s_%u", payments ? "payments" : "leads", mask);
    PGresult *r = s_run (db, payments ? "payments" : "leads", name, sql, payments ? 7 : 6, types,
                         values);
    if (!r)
        return -1;
    int want = atoi (limit) - 1;
    int n = PQntuples (r);
    int shown = n > want ? want : n;
    int us_col = payments ? 12 : 10;

    s_json_t j = {false};
    cJSON *root = cJSON_CreateObject ();
    cJSON *items = s_array (&j, root, "items");
    for (int i = 0; i < shown && !j.oom; i++) {
        cJSON *o = s_object_in (&j, items);
        if (!o)
            break;
        if (payments)
            s_payment_json (&j, o, r, i);
        else
            s_lead_json (&j, o, r, i);
    }
    if (n > want && shown > 0) {
        char cursor[RST_APIQ_CURSOR_MAX + 1];
        rst_apiq_cursor_encode (s_int (r, shown - 1, us_col), s_int (r, shown - 1, 0), cursor);
        s_put (&j, root, "next_cursor", cJSON_CreateString (cursor));
    }
    else
        s_null (&j, root, "next_cursor");
    PQclear (r);
    return s_finish (&j, root, res);
}

static int
s_leads (const rst_api_req_t *req, PGconn *db, rst_api_res_t *res)
{
    return s_list (req, db, res, false);
}

static int
s_payments (const rst_api_req_t *req, PGconn *db, rst_api_res_t *res)
{
    return s_list (req, db, res, true);
}

static int
s_lead (const rst_api_req_t *req, PGconn *db, rst_api_res_t *res)
{
    assert (req->nids == 1);
    char owner[S_ID_TEXT], id[S_ID_TEXT];
    snprintf (owner, sizeof owner, "%" PRId64, req->owner_id);
    snprintf (id, sizeof id, "%" PRId64, req->ids[0]);
    static const Oid types[] = {S_INT8, S_INT8};
    const char *values[] = {owner, id};
    static const char *sql_lead =
        "SELECT " S_LEAD_COLS ", l.last_name, l.language_code, l.utm_medium, l.utm_content,"
        "       l.utm_term, l.click_id, l.starts, " S_TIME ("l.updated_at")
        "  FROM leads l JOIN bots b ON b.id = l.bot_id"
        " WHERE l.owner_id = $1 AND l.id = $2";
    PGresult *r = s_exec_prepared (db, "lead", sql_lead, 2, types, values);
    if (!r)
        return -1;
    if (PQntuples (r) == 0) {
        PQclear (r);
        return rst_api_error (res, 404, "lead not found");
    }
    static const char *sql_payments =
        "SELECT " S_PAYMENT_COLS
        "  FROM payments p JOIN bots b ON b.id = p.bot_id JOIN offers o ON o.id = p.offer_id"
        " WHERE p.owner_id = $1 AND p.lead_id = $2"
        " ORDER BY p.created_at DESC, p.id DESC";
    PGresult *p = s_exec_prepared (db, "lead payments", sql_payments, 2, types, values);
    if (!p) {
        PQclear (r);
        return -1;
    }
    s_json_t j = {false};
    cJSON *root = cJSON_CreateObject ();
    cJSON *lead = cJSON_CreateObject ();
    s_put (&j, root, "lead", lead);
    if (!j.oom) {
        s_lead_json (&j, lead, r, 0);
        s_text (&j, lead, "last_name", r, 0, 11);
        s_text (&j, lead, "language_code", r, 0, 12);
        s_text (&j, lead, "utm_medium", r, 0, 13);
        s_text (&j, lead, "utm_content", r, 0, 14);
        s_text (&j, lead, "utm_term", r, 0, 15);
        s_text (&j, lead, "click_id", r, 0, 16);
        s_int_col (&j, lead, "starts", r, 0, 17);
        s_text (&j, lead, "updated_at", r, 0, 18);
    }
    cJSON *items = s_array (&j, root, "payments");
    for (int i = 0; i < PQntuples (p) && !j.oom; i++) {
        cJSON *o = s_object_in (&j, items);
        if (o)
            s_payment_json (&j, o, p, i);
    }
    PQclear (r);
    PQclear (p);
    return s_finish (&j, root, res);
}

static int
s_payment (const rst_api_req_t *req, PGconn *db, rst_api_res_t *res)
{
    assert (req->nids == 1);
    char owner[S_ID_TEXT], id[S_ID_TEXT];
    snprintf (owner, sizeof owner, "%" PRId64, req->owner_id);
    snprintf (id, sizeof id, "%" PRId64, req->ids[0]);
    static const Oid types[] = {S_INT8, S_INT8};
    const char *values[] = {owner, id};
    static const char *sql =
        "SELECT " S_PAYMENT_COLS ", " S_TIME ("p.expires_at") ", " S_TIME ("p.delivered_at") ","
        "       " S_TIME ("p.joined_at") ", p.delivery_attempts, l.first_name, l.username, l.pool_id"
        "  FROM payments p JOIN bots b ON b.id = p.bot_id JOIN offers o ON o.id = p.offer_id"
        "  JOIN leads l ON l.id = p.lead_id"
        " WHERE p.owner_id = $1 AND p.id = $2";
    PGresult *r = s_exec_prepared (db, "payment", sql, 2, types, values);
    if (!r)
        return -1;
    if (PQntuples (r) == 0) {
        PQclear (r);
        return rst_api_error (res, 404, "payment not found");
    }
    s_json_t j = {false};
    cJSON *root = cJSON_CreateObject ();
    cJSON *o = cJSON_CreateObject ();
    s_put (&j, root, "payment", o);
    if (!j.oom) {
        s_payment_json (&j, o, r, 0);
        s_text (&j, o, "expires_at", r, 0, 13);
        s_text (&j, o, "delivered_at", r, 0, 14);
        s_text (&j, o, "joined_at", r, 0, 15);
        s_int_col (&j, o, "delivery_attempts", r, 0, 16);
        s_text (&j, o, "lead_first_name", r, 0, 17);
        s_text (&j, o, "lead_username", r, 0, 18);
        s_int_col (&j, o, "pool_id", r, 0, 19);
    }
    PQclear (r);
    return s_finish (&j, root, res);
}

const rst_api_route_t rst_apiq_routes[] = {
    {"GET", "/summary", s_summary, RST_API_GENERIC_PLANS},
    {"GET", "/funnel", s_funnel, RST_API_GENERIC_PLANS},
    {"GET", "/hourly", s_hourly, RST_API_GENERIC_PLANS},
    {"GET", "/daily", s_daily, RST_API_GENERIC_PLANS},
    {"GET", "/utm", s_utm, RST_API_GENERIC_PLANS},
    {"GET", "/by-bot", s_by_bot, RST_API_GENERIC_PLANS},
    {"GET", "/by-pool", s_by_pool, RST_API_GENERIC_PLANS},
    {"GET", "/leads", s_leads, 0},
    {"GET", "/leads/:id", s_lead, RST_API_GENERIC_PLANS},
    {"GET", "/payments", s_payments, 0},
    {"GET", "/payments/:id", s_payment, RST_API_GENERIC_PLANS},
    {NULL, NULL, NULL, 0},
};
