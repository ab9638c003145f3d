/*  rst_apiadmin — the dashboard's management routes: pixels, bots, pools,
    offers and dead letters (issue 5 §6 "management forms").

    They do over HTTP what `rastro pixel|bot|pool|offer|dlq` do on the
    command line (nodes/rastro/cmd_admin.c, cmd_offer.c, cmd_dlq.c), with
    the same checks, on the API worker's connection (rst_api.h):

      GET    /pixels                 rows (never a token: token_set only)
      POST   /pixels                 {pixel_id, token, test_event_code?} → 201; 409 present
      PATCH  /pixels/:id             {token?, test_event_code?, rate_per_s?}
      GET    /bots                   rows
      POST   /bots                   {token} → 201 (getMe at Telegram, as `rastro bot add`)
      GET    /bots/:id               {bot, pools, offers}
      PATCH  /bots/:id               {enabled}
      GET    /pools                  rows
      POST   /pools                  {slug, pixel, strategy?, bots: [{bot_id, weight?}]} → 201
      GET    /pools/:id              {pool}
      PATCH  /pools/:id              {enabled?, strategy?, pixel?, bots?}
      GET    /bots/:id/offers        rows
      POST   /bots/:id/offers        {name, price_cents, welcome_html?, deliver_chat_id |
                                      deliver_text, enabled?} → 201
      PATCH  /offers/:id             {name?, price_cents?, welcome_html?, deliver_chat_id?,
                                      deliver_text?, enabled?}
      GET    /dlq                    ?pixel&limit&cursor → {items, next_cursor}
      GET    /dlq/:id                {dead_letter} with payload, Meta's error, fbtrace_id
      POST   /dlq/:id/replay         as `rastro dlq replay <id>` (rst_dlq_replay)

    Access: every statement carries owner_id = req->owner_id, so an id of
    another user finds nothing and answers 404 exactly like a missing one
    (ids named in a body — a pool's pixel and bots — too). Writes answer
    the object as it is stored (the same shape as a list row), never a
    token.

    Bodies: every field the route knows is checked (type, range, shape) and
    a bad one answers 400 {"error": "<field> ..."}; fields the route does
    not know are ignored, so a form may send back the object it read. A
    PATCH needs at least one known field. Text must be valid UTF-8.

    Atomicity: each write is one statement, or one transaction (pools:
    the pool and its bots together; a PATCH's bots replace the old ones
    all at once). A failed write leaves nothing behind. A unique violation
    answers 409, a CHECK or malformed value 400 (the checks here should
    catch them first), anything else -1 (rst_api answers 500).

    Live config: the triggers of 001_init.sql / 004_bots.sql NOTIFY
    rastro_config on any change of pixels, bots, pools, pool_bots and
    offers, so the front and the bots node reload; a replay NOTIFYs
    rastro_dlq (002), so the pixel's sender takes the row back.

    Secrets: tokens are sealed under the master key (rst_secret) before
    they reach a statement, kept in buffers wiped after use, and never
    logged, echoed or put in an error.
*/
#include "rst_apiadmin.h"
#include "rst_config.h"
#include "rst_dlq.h"
#include "rst_log.h"
#include "rst_offer.h"
#include "rst_secret.h"
#include "rst_telegram.h"
#include "rst_utf8.h"

#include <ctype.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_CLASS          "apiadmin"
#define S_PIXEL_ID_MAX   32          //  digits of a Meta pixel id (pixels CHECK)
#define S_CODE_MAX       64          //  test_event_code
#define S_SLUG_MAX       64          //  pools.slug CHECK
#define S_WEIGHT_MIN     1
#define S_WEIGHT_MAX     1000
#define S_RATE_MAX       100000      //  pixels.rate_per_s CHECK
#define S_JSON_INT_MAX   9007199254740992.0  //  2^53: larger JSON numbers lose digits
#define S_ID_TEXT        24          //  a bigint as text
#define S_CURSOR_DIGITS  18

//  Tri-state of an optional body field (s_get_*), or -1 after a 400.
#define S_ABSENT 0
#define S_NULL   1
#define S_SET    2

//  ---------------------------------------------------------------------------
//  Configuration: the master key file (read-only once set)

static pthread_once_t s_config_once = PTHREAD_ONCE_INIT;
static char s_master_key_file[PATH_MAX];
static char s_telegram_api_url[RST_URL_MAX];

//  Fills what was not set from the process's configuration (once).
static void
s_config_load (void)
{
    if (s_master_key_file[0] && s_telegram_api_url[0])
        return;
    rst_config_t *cfg = calloc (1, sizeof *cfg);
    char err[256];
    if (cfg && rst_config_load (cfg, err, sizeof err) == 0) {
        if (!s_master_key_file[0])
            snprintf (s_master_key_file, sizeof s_master_key_file, "%s", cfg->master_key_file);
        if (!s_telegram_api_url[0])
            snprintf (s_telegram_api_url, sizeof s_telegram_api_url, "%s",
                      cfg->telegram_api_url);
    }
    else
        rst_error (S_CLASS, "cannot load the configuration: %s", cfg ? err : "out of memory");
    free (cfg);
}

void
rst_apiadmin_set_master_key_file (const char *path)
{
    snprintf (s_master_key_file, sizeof s_master_key_file, "%s", path);
}

void
rst_apiadmin_set_telegram_api_url (const char *url)
{
    snprintf (s_telegram_api_url, sizeof s_telegram_api_url, "%s", url);
}

//  Seals the token PLAIN under the master key. Returns a new buffer the
//  caller frees (*LEN bytes), or NULL (logged, never the token).
static unsigned char *
s_seal (const char *plain, size_t *len)
{
    pthread_once (&s_config_once, s_config_load);
    if (!s_master_key_file[0])
        return NULL;
    char err[256];
    rst_secret_t *secret = rst_secret_new (s_master_key_file, 1, err, sizeof err);
    if (!secret) {
        rst_error (S_CLASS, "cannot seal a token: %s", err);
        return NULL;
    }
    unsigned char *sealed = rst_secret_seal (secret, plain, strlen (plain), len);
    if (!sealed)
        rst_error (S_CLASS, "libsodium: cannot seal a token");
    rst_secret_destroy (&secret);
    return sealed;
}

//  ---------------------------------------------------------------------------
//  PostgreSQL

//  What a failed statement left: its SQLSTATE and constraint, if any.
typedef struct {
    char state[6];
    char constraint[64];
} s_pgerr_t;

//  Runs SQL with NPARAMS PARAMS (text, except where FORMATS says 1 with
//  LENGTHS) on DB. Returns the result when it succeeded; NULL otherwise,
//  with the SQLSTATE in *E and a log line naming WHAT (never a value).
static PGresult *
s_exec (PGconn *db, const char *what, const char *sql, int nparams, const char *const *params,
        const int *lengths, const int *formats, s_pgerr_t *e)
{
    PGresult *r = PQexecParams (db, sql, nparams, NULL, params, lengths, formats, 0);
    ExecStatusType st = PQresultStatus (r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return r;
    const char *state = PQresultErrorField (r, PG_DIAG_SQLSTATE);
    const char *constraint = PQresultErrorField (r, PG_DIAG_CONSTRAINT_NAME);
    const char *msg = PQresultErrorField (r, PG_DIAG_MESSAGE_PRIMARY);
    snprintf (e->state, sizeof e->state, "%s", state ? state : "");
    snprintf (e->constraint, sizeof e->constraint, "%s", constraint ? constraint : "");
    //  Refused values are the client's business (400/409): debug only.
    if (state && (state[0] == '2' && (state[1] == '2' || state[1] == '3')))
        rst_debug (S_CLASS, "%s refused: %s (%s)", what, msg ? msg : "?", e->state);
    else
        rst_error (S_CLASS, "postgresql: %s failed: %s", what,
                   msg ? msg : "no answer (connection lost?)");
    PQclear (r);
    return NULL;
}

//  Runs a statement without parameters (BEGIN, COMMIT, ROLLBACK). Returns 0 or -1.
static int
s_command (PGconn *db, const char *sql)
{
    s_pgerr_t e;
    PGresult *r = s_exec (db, sql, sql, 0, NULL, NULL, NULL, &e);
    PQclear (r);
    return r ? 0 : -1;
}

//  Ends the transaction the handler opened when it fails midway.
static void
s_rollback (PGconn *db)
{
    PQclear (PQexec (db, "ROLLBACK"));
}

//  Answers a failed write from *E: 409 CONFLICT for a unique violation, 400
//  for a refused value; -1 (internal error) for anything else.
static int
s_refused (rst_api_res_t *res, const s_pgerr_t *e, const char *conflict)
{
    char msg[160];
    if (!strcmp (e->state, "23505"))
        return rst_api_error (res, 409, conflict);
    if (!strcmp (e->state, "23514") || !strcmp (e->state, "23502")) {
        snprintf (msg, sizeof msg, "a value is out of range (%s)",
                  e->constraint[0] ? e->constraint : "check");
        return rst_api_error (res, 400, msg);
    }
    if (!strncmp (e->state, "22", 2))
        return rst_api_error (res, 400, "a value is malformed or out of range");
    return -1;
}

//  Answers STATUS with the JSON text in the first cell of R (freed), or
//  404 NOT_FOUND when R has no row. Returns 0, or -1.
static int
s_answer (rst_api_res_t *res, PGresult *r, int status, const char *not_found)
{
    if (PQntuples (r) == 0) {
        PQclear (r);
        return rst_api_error (res, 404, not_found);
    }
    cJSON *json = cJSON_Parse (PQgetvalue (r, 0, 0));
    PQclear (r);
    if (!json) {
        rst_error (S_CLASS, "cjson: cannot parse PostgreSQL's JSON (out of memory?)");
        return -1;
    }
    if (rst_api_ok (res, json))
        return -1;
    res->status = status;
    return 0;
}

//  Runs the one-row JSON query SQL ($1 the first path id unless NO_ID, then
//  the owner) and answers it (200, or 404 NOT_FOUND).
static int
s_read (const rst_api_req_t *req, PGconn *db, rst_api_res_t *res, const char *what,
        const char *sql, const char *not_found)
{
    char id[S_ID_TEXT], owner[S_ID_TEXT];
    snprintf (owner, sizeof owner, "%" PRId64, req->owner_id);
    snprintf (id, sizeof id, "%" PRId64, req->nids ? req->ids[0] : 0);
    const char *params[] = {owner, id};
    s_pgerr_t e;
    PGresult *r = s_exec (db, what, sql, req->nids ? 2 : 1, params, NULL, NULL, &e);
    if (!r)
        return -1;
    return s_answer (res, r, 200, not_found);
}

//  ---------------------------------------------------------------------------
//  Body fields. Each s_get_* returns S_ABSENT, S_NULL (only when NULLABLE)
//  or S_SET with the value in *OUT, or -1 after answering 400.

static int __attribute__ ((format (printf, 2, 3)))
s_bad (rst_api_res_t *res, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (msg, sizeof msg, fmt, ap);
    va_end (ap);
    rst_api_error (res, 400, msg);
    return -1;
}

static const cJSON *
s_field (const cJSON *body, const char *key, int nullable, rst_api_res_t *res, int *state)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive (body, key);
    *state = S_SET;
    if (!item)
        *state = S_ABSENT;
    else if (cJSON_IsNull (item)) {
        *state = S_NULL;
        if (!nullable)
            *state = s_bad (res, "%s must not be null", key);
    }
    return item;
}

//  A string of valid UTF-8.
static int
s_get_string (const cJSON *body, const char *key, int nullable, const char **out,
              rst_api_res_t *res)
{
    int state;
    const cJSON *item = s_field (body, key, nullable, res, &state);
    *out = NULL;
    if (state != S_SET)
        return state;
    if (!cJSON_IsString (item) || !item->valuestring)
        return s_bad (res, "%s must be a string", key);
    if (rst_utf8_chars (item->valuestring, strlen (item->valuestring)) < 0)
        return s_bad (res, "%s is not valid UTF-8 text", key);
    *out = item->valuestring;
    return S_SET;
}

//  A whole number from MIN to MAX.
static int
s_get_int (const cJSON *body, const char *key, int nullable, long long min, long long max,
           long long *out, rst_api_res_t *res)
{
    int state;
    const cJSON *item = s_field (body, key, nullable, res, &state);
    *out = 0;
    if (state != S_SET)
        return state;
    double v = cJSON_IsNumber (item) ? item->valuedouble : NAN;
    if (!isfinite (v) || v != floor (v) || fabs (v) > S_JSON_INT_MAX)
        return s_bad (res, "%s must be a whole number", key);
    if (v < (double) min || v > (double) max)
        return s_bad (res, "%s must be from %lld to %lld", key, min, max);
    *out = (long long) v;
    return S_SET;
}

//  true or false.
static int
s_get_bool (const cJSON *body, const char *key, int *out, rst_api_res_t *res)
{
    int state;
    const cJSON *item = s_field (body, key, 0, res, &state);
    *out = 0;
    if (state != S_SET)
        return state;
    if (!cJSON_IsBool (item))
        return s_bad (res, "%s must be true or false", key);
    *out = cJSON_IsTrue (item);
    return S_SET;
}

//  Is VALUE MIN to MAX characters from [A-Za-z0-9] and EXTRA?
static int
s_is_word (const char *value, size_t min, size_t max, const char *extra)
{
    size_t n = strlen (value);
    if (n < min || n > max)
        return 0;
    for (const char *s = value; *s; s++)
        if (!isalnum ((unsigned char) *s) && !strchr (extra, *s))
            return 0;
    return 1;
}

//  ---------------------------------------------------------------------------
//  Pixels

//  A pixel as the API shows it: never the token, only whether it is set.
#define S_PIXEL_JSON                                                                           \
    "json_build_object('id', p.id, 'pixel_id', p.pixel_id,"                                    \
    " 'test_event_code', p.test_event_code, 'rate_per_s', p.rate_per_s,"                       \
    " 'token_set', length(p.token_enc) > 0,"                                                   \
    " 'pools', (SELECT count(*) FROM pools o WHERE o.pixel_ref = p.id),"                       \
    " 'created_at', p.created_at)"

static int
s_pixels_list (const rst_api_req_t *req, PGconn *db, rst_api_res_t *res)
{
    return s_read (req, db, res, "pixel list",
                   "SELECT json_build_object('rows', coalesce(json_agg(" S_PIXEL_JSON
                   " ORDER BY p.id), '[]')) FROM pixels p WHERE p.owner_id = $1",
                   "not found");
}

//  Reads the "token" field into BUF (BUFLEN bytes): surrounding whitespace
//  trimmed, then one word of printable ASCII. Returns S_ABSENT, S_SET or -1
//  after a 400 that never shows the token.
static int
s_get_token (const cJSON *body, char *buf, size_t buflen, rst_api_res_t *res)
{
    const char *token;
    int st = s_get_string (body, "token", 0, &token, res);
    if (st != S_SET)
        return st;
    while (isspace ((unsigned char) *token))
        token++;
    size_t n = strlen (token);
    while (n > 0 && isspace ((unsigned char) token[n - 1]))
        n--;
    if (n == 0)
        return s_bad (res, "token is empty");
    if (n >= buflen)
        return s_bad (res, "token is longer than %zu bytes", buflen - 1);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char) token[i] <= ' ' || (unsigned char) token[i] >= 127)
            return s_bad (res, "token holds more than the token (spaces, several lines or "
                          "non-ASCII characters)");
    memcpy (buf, token, n);
    buf[n] = 0;
    return S_SET;
}

//  The "test_event_code" field: a word, or null (none).
static int
s_get_code (const cJSON *body, const char **code, rst_api_res_t *res)
{
    int st = s_get_string (body, "test_event_code", 1, code, res);
    if (st == S_SET && !s_is_word (*code, 1, S_CODE_MAX, "_-"))
        return s_bad (res, "test_event_code must be 1 to %d letters, digits, '_' or '-' (e.g. "
                      "TEST12345)", S_CODE_MAX);
    return st;
}

static int
s_pixels_add (const rst_api_req_t *req, PGconn *db, rst_api_res_t *res)
{
    cJSON *body = rst_api_body_object (req, res);
    if (!body)
        return 0;
    int rc = 0;
    char token[RST_APIADMIN_TOKEN_MAX + 1];
    unsigned char *sealed = NULL;
    const char *pixel_id, *code;
    int st = s_get_string (body, "pixel_id", 0, &pixel_id, res);
    if (st < 0)
        goto done;
    if (st == S_ABSENT || !s_is_word (pixel_id, 1, S_PIXEL_ID_MAX, "")
        || strspn (pixel_id, "0123456789") != strlen (pixel_id)) {
        s_bad (res, "pixel_id must be a string of 1 to %d digits (Events Manager's pixel id)",
               S_PIXEL_ID_MAX);
        goto done;
    }
    if ((st = s_get_token (body, token, sizeof token, res)) < 0)
        goto done;
    if (st == S_ABSENT) {
        s_bad (res, "token is required (the pixel's Conversions API access token)");
        goto done;
    }
    if (s_get_code (body, &code, res) < 0)
        goto done;
    size_t sealed_len = 0;
    sealed = s_seal (token, &sealed_len);
    if (!sealed) {
        rc = -1;
        goto done;
    }
    char owner[S_ID_TEXT];
    snprintf (owner, sizeof owner, "%" PRId64, req->owner_id);
    const char *params[] = {owner, pixel_id, (const char *) sealed, code};
    const int lengths[] = {0, 0, (int) sealed_len, 0};
    const int formats[] = {0, 0, 1, 0};
    s_pgerr_t e;
    PGresult *r = s_exec (db, "pixel add",
                          "INSERT INTO pixels AS p (owner_id, pixel_id, token_enc, test_event_code)"
                          " VALUES ($1, $2, $3::bytea, $4) RETURNING " S_PIXEL_JSON,
                          4, params, lengths, formats, &e);
    rc = r ? s_answer (res, r, 201, "not found")
           : s_refused (res, &e, "this pixel is already added");
done:
    sodium_memzero (token, sizeof token);
    free (sealed);
    cJSON_Delete (body);
    return rc;
}

static int
s_pixels_patch (const rst_api_req_t *req, PGconn *db, rst_api_res_t *res)
{
    cJSON *body = rst_api_body_object (req, res);
    if (!body)
        return 0;
    int rc = 0;
    char token[RST_APIADMIN_TOKEN_MAX + 1];
    unsigned char *sealed = NULL;
    size_t sealed_len = 0;
    const char *code;
    long long rate;
    int token_st, code_st, rate_st;
    if ((token_st = s_get_token (body, token, sizeof token, res)) < 0
        || (code_st = s_get_code (body, &code, res)) < 0
        || (rate_st = s_get_int (body, "rate_per_s", 1, 1, S_RATE_MAX, &rate, res)) < 0)
        goto done;
    if (!token_st && !code_st && !rate_st) {
        s_bad (res, "nothing to change: give token, test_event_code or rate_per_s");
        goto done;
    }
    if (token_st == S_SET && !(sealed = s_seal (token, &sealed_len))) {
        rc = -1;
        goto done;
    }
    char owner[S_ID_TEXT], id[S_ID_TEXT], rate_text[S_ID_TEXT];
    snprintf (owner, sizeof owner, "%" PRId64, req->owner_id);
    snprintf (id, sizeof id, "%" PRId64, req->ids[0]);
    snprintf (rate_text, sizeof rate_text, "%lld", rate);
    const char *params[] = {id, owner, sealed ? "t" : "f", (const char *) sealed,
                            code_st ? "t" : "f", code, rate_st ? "t" : "f",
                            rate_st == S_SET ? rate_text : NULL};
    const int lengths[] = {0, 0, 0, (int) sealed_len, 0, 0, 0, 0};
    const int formats[] = {0, 0, 0, 1, 0, 0, 0, 0};
    s_pgerr_t e;
    PGresult *r = s_exec (db, "pixel patch",
                          "UPDATE pixels AS p SET"
                          " token_enc = CASE WHEN $3::boolean THEN $4::bytea ELSE token_enc END,"
                          " test_event_code = CASE WHEN $5::boolean THEN $6 ELSE test_event_code"
                          " END,"
                          " rate_per_s = CASE WHEN $7::boolean THEN $8::int ELSE rate_per_s END"
                          " WHERE p.id = $1 AND p.owner_id = $2 RETURNING " S_PIXEL_JSON,
                          8, params, lengths, formats, &e);
    rc = r ? s_answer (res, r, 200, "pixel not found") : s_refused (res, &e, "conflict");
done:
    sodium_memzero (token, sizeof token);
    free (sealed);
    cJSON_Delete (body);
    return rc;
}

//  ---------------------------------------------------------------------------
//  Offers (JSON shape shared with the bots)

#define S_OFFER_JSON                                                                           \
    "json_build_object('id', f.id, 'bot_id', f.bot_id, 'name', f.name,"                        \
    " 'price_cents', f.price_cents, 'welcome_html', f.welcome_html,"                           \
    " 'has_photo', f.photo IS NOT NULL, 'deliver_chat_id', f.deliver_chat_id,"                 \
    " 'deliver_text', f.deliver_text, 'enabled', f.enabled, 'created_at', f.created_at)"

//  ---------------------------------------------------------------------------
//  Bots

#define S_BOT_JSON                                                                             \
    "json_build_object('id', b.id, 'username', b.username, 'telegram_id', b.telegram_id,"      \
    " 'enabled', b.enabled, 'healthy', b.healthy, 'webhook', b.update_mode = 'webhook',"       \
    " 'offers', (SELECT count(*) FROM offers f WHERE f.bot_id = b.id),"                        \
    " 'pools', (SELECT count(*) FROM pool_bots pb WHERE pb.bot_id = b.id),"                    \
    " 'created_at', b.created_at)"

static int
s_bots_list (const rst_api_req_t *req, PGconn *db, rst_api_res_t *res)
{
    return s_read (req, db, res, "bot list",
                   "SELECT json_build_object('rows', coalesce(json_agg(" S_BOT_JSON
                   " ORDER BY b.username), '[]')) FROM bots b WHERE b.owner_id = $1",
                   "not found");
}

//  POST /bots {token}: as `rastro bot add`: the token's shape, whether the
//  bot is registered already (409, without asking Telegram), getMe at
//  RASTRO_TELEGRAM_API_URL (which says the username), sealing, INSERT.
static int
s_bots_add (const rst_api_req_t *req, PGconn *db, rst_api_res_t *res)
{
    cJSON *body = rst_api_body_object (req, res);
    if (!body)
        return 0;
    int rc = 0;
    char token[RST_APIADMIN_TOKEN_MAX + 1], err[256];
    unsigned char *sealed = NULL;
    rst_telegram_t *telegram = NULL;
    int st = s_get_token (body, token, sizeof token, res);
    if (st < 0)
        goto done;
    if (st == S_ABSENT) {
        s_bad (res, "token is required (the bot's token from @BotFather)");
        goto done;
    }
    if (rst_telegram_token_check (token, err, sizeof err)) {
        s_bad (res, "token: %s", err);
        goto done;
    }
    char telegram_id[S_ID_TEXT], owner[S_ID_TEXT];
    snprintf (telegram_id, sizeof telegram_id, "%" PRId64, rst_telegram_token_bot_id (token));
    snprintf (owner, sizeof owner, "%" PRId64, req->owner_id);
    const char *known_params[] = {telegram_id};
    s_pgerr_t e;
    PGresult *r = s_exec (db, "bot known", "SELECT 1 FROM bots WHERE telegram_id = $1", 1,
                          known_params, NULL, NULL, &e);
    if (!r) {
        rc = -1;
        goto done;
    }
    int known = PQntuples (r) > 0;
    PQclear (r);
    if (known) {
        rst_api_error (res, 409, "this bot is already registered");
        goto done;
    }
    pthread_once (&s_config_once, s_config_load);
    rst_telegram_bot_t bot;
    telegram = rst_telegram_new (s_telegram_api_url, err, sizeof err);
    if (!telegram) {
        rst_error (S_CLASS, "telegram: %s", err);
        rc = -1;
        goto done;
    }
    if (rst_telegram_get_me (telegram, token, &bot, err, sizeof err)) {
        //  ERR never holds the token (rst_telegram scrubs it).
        rst_warn (S_CLASS, "bot add: getMe failed: %s", err);
        if (!strncmp (err, "Telegram rejected", 17))
            rst_api_error (res, 400, "Telegram rejected this token (getMe)");
        else {
            char msg[320];
            snprintf (msg, sizeof msg, "cannot check the token with Telegram: %s", err);
            rst_api_error (res, 502, msg);
        }
        goto done;
    }
    if (!s_is_word (bot.username, 5, 32, "_")) {
        rst_api_error (res, 502, "Telegram's getMe gave a username that is not a bot's");
        goto done;
    }
    size_t sealed_len = 0;
    if (!(sealed = s_seal (token, &sealed_len))) {
        rc = -1;
        goto done;
    }
    const char *params[] = {owner, telegram_id, bot.username, (const char *) sealed};
    const int lengths[] = {0, 0, 0, (int) sealed_len};
    const int formats[] = {0, 0, 0, 1};
    r = s_exec (db, "bot add",
                "INSERT INTO bots AS b (owner_id, telegram_id, username, token_enc)"
                " VALUES ($1, $2, $3, $4::bytea) RETURNING " S_BOT_JSON,
                4, params, lengths, formats, &e);
    rc = r ? s_answer (res, r, 201, "not found")
           : s_refused (res, &e, "this bot is already registered");
done:
    sodium_memzero (token, sizeof token);
    free (sealed);
    rst_telegram_destroy (&telegram);
    cJSON_Delete (body);
    return rc;
}

static int
s_bots_get (const rst_api_req_t *req, PGconn *db, rst_api_res_t *res)
{
    return s_read (req, db, res, "bot get",
                   "SELECT json_build_object('bot', " S_BOT_JSON ","
                   " 'pools', coalesce((SELECT json_agg(json_build_object('id', o.id,"
                   "   'slug', o.slug, 'enabled', o.enabled, 'weight', pb.weight) ORDER BY o.slug)"
                   "   FROM pool_bots pb JOIN pools o ON o.id = pb.pool_id"
                   "   WHERE pb.bot_id = b.id AND o.owner_id = b.owner_id), '[]'),"
                   " 'offers', coalesce((SELECT json_agg(" S_OFFER_JSON " ORDER BY f.id)"
                   "   FROM offers f WHERE f.bot_id = b.id AND f.owner_id = b.owner_id), '[]'))"
                   " FROM bots b WHERE b.owner_id = $1 AND b.id = $2",
                   "bot not found");
}

static int
s_bots_patch (const rst_api_req_t *req, PGconn *db, rst_api_res_t *res)
{
    cJSON *body = rst_api_body_object (req, res);
    if (!body)
        return 0;
    int rc = 0, enabled;
    int st = s_get_bool (body, "enabled", &enabled, res);
    cJSON_Delete (body);
    if (st < 0)
        return 0;
    if (st == S_ABSENT) {
        s_bad (res, "nothing to change: give enabled");
        return 0;
    }
    char owner[S_ID_TEXT], id[S_ID_TEXT];
    snprintf (owner, sizeof owner, "%" PRId64, req->owner_id);
    snprintf (id, sizeof id, "%" PRId64, req->ids[0]);
    const char *params[] = {owner, id, enabled ? "true" : "false"};
    s_pgerr_t e;
    PGresult *r = s_exec (db, "bot patch",
                          "UPDATE bots AS b SET enabled = $3::boolean"
                          " WHERE b.owner_id = $1 AND b.id = $2 RETURNING " S_BOT_JSON,
                          3, params, NULL, NULL, &e);
    rc = r ? s_answer (res, r, 200, "bot not found") : s_refused (res, &e, "conflict");
    return rc;
}

//  ---------------------------------------------------------------------------
//  Pools

#define S_POOL_JSON                                                                            \
    "json_build_object('id', o.id, 'slug', o.slug, 'pixel', o.pixel_ref,"                      \
    " 'pixel_id', (SELECT p.pixel_id FROM pixels p WHERE p.id = o.pixel_ref),"                 \
    " 'strategy', o.strategy, 'enabled', o.enabled, 'created_at', o.created_at,"               \
    " 'bots', coalesce((SELECT json_agg(json_build_object('bot_id', b.id,"                     \
    "   'username', b.username, 'weight', pb.weight, 'enabled', b.enabled,"                    \
    "   'healthy', b.healthy) ORDER BY b.id)"                                                  \
    "   FROM pool_bots pb JOIN bots b ON b.id = pb.bot_id WHERE pb.pool_id = o.id), '[]'))"

static int
s_pools_list (const rst_api_req_t *req, PGconn *db, rst_api_res_t *res)
{
    return s_read (req, db, res, "pool list",
                   "SELECT json_build_object('rows', coalesce(json_agg(" S_POOL_JSON
                   " ORDER BY o.slug), '[]')) FROM pools o WHERE o.owner_id = $1",
                   "not found");
}

static int
s_pools_get (const rst_api_req_t *req, PGconn *db, rst_api_res_t *res)
{
    return s_read (req, db, res, "pool get",
                   "SELECT json_build_object('pool', " S_POOL_JSON ")"
                   " FROM pools o WHERE o.owner_id = $1 AND o.id = $2",
                   "pool not found");
}

//  The "bots" of a pool body, as PostgreSQL array literals.
typedef struct {
    int n;                          //  bots given
    int any_weight;                 //  1 if one had a "weight"
    int64_t ids[RST_APIADMIN_POOL_BOTS_MAX];
    int weights[RST_APIADMIN_POOL_BOTS_MAX];
    char ids_text[RST_APIADMIN_POOL_BOTS_MAX * S_ID_TEXT + 3];      //  "{1,2}"
    char weights_text[RST_APIADMIN_POOL_BOTS_MAX * 6 + 3];          //  "{3,1}"
} s_pool_bots_t;

//  Reads "bots": 1 to RST_APIADMIN_POOL_BOTS_MAX objects {bot_id, weight?},
//  no bot twice. Returns S_ABSENT, S_SET, or -1 after a 400.
static int
s_get_pool_bots (const cJSON *body, s_pool_bots_t *pb, rst_api_res_t *res)
{
    memset (pb, 0, sizeof *pb);
    int state;
    const cJSON *bots = s_field (body, "bots", 0, res, &state);
    if (state != S_SET)
        return state;
    if (!cJSON_IsArray (bots))
        return s_bad (res, "bots must be an array of {bot_id, weight}");
    int n = cJSON_GetArraySize (bots);
    if (n < 1 || n > RST_APIADMIN_POOL_BOTS_MAX)
        return s_bad (res, "a pool has 1 to %d bots", RST_APIADMIN_POOL_BOTS_MAX);
    size_t iu = 0, wu = 0;
    pb->ids_text[iu++] = '{';
    pb->weights_text[wu++] = '{';
    const cJSON *item;
    cJSON_ArrayForEach (item, bots) {
        if (!cJSON_IsObject (item))
            return s_bad (res, "bots must be an array of {bot_id, weight}");
        long long id, weight = 1;
        int st = s_get_int (item, "bot_id", 0, 1, INT64_MAX, &id, res);
        if (st < 0)
            return -1;
        if (st == S_ABSENT)
            return s_bad (res, "each of bots needs a bot_id");
        if ((st = s_get_int (item, "weight", 0, S_WEIGHT_MIN, S_WEIGHT_MAX, &weight, res)) < 0)
            return -1;
        if (st == S_ABSENT)
            weight = 1;
        else
            pb->any_weight = 1;
        for (int j = 0; j < pb->n; j++)
            if (pb->ids[j] == id)
                return s_bad (res, "bot %lld is given twice", id);
        pb->ids[pb->n] = id;
        pb->weights[pb->n] = (int) weight;
        iu += (size_t) snprintf (pb->ids_text + iu, sizeof pb->ids_text - iu, "%s%lld",
                                 pb->n ? "," : "", id);
        wu += (size_t) snprintf (pb->weights_text + wu, sizeof pb->weights_text - wu, "%s%lld",
                                 pb->n ? "," : "", weight);
        pb->n++;
    }
    snprintf (pb->ids_text + iu, sizeof pb->ids_text - iu, "}");
    snprintf (pb->weights_text + wu, sizeof pb->weights_text - wu, "}");
    return S_SET;
}

//  The "strategy" field: round-robin or weighted.
static int
s_get_strategy (const cJSON *body, const char **strategy, rst_api_res_t *res)
{
    int st = s_get_string (body, "strategy", 0, strategy, res);
    if (st == S_SET && strcmp (*strategy, "round-robin") && strcmp (*strategy, "weighted"))
        return s_bad (res, "strategy must be round-robin or weighted");
    return st;
}

//  Checks, inside the caller's transaction, that the pixel PIXEL (if not
//  NULL) and the bots of PB (if any) are OWNER's, locking them FOR SHARE.
//  Returns 0; 1 after answering 404; -1 on a database error.
static int
s_check_refs (PGconn *db, const char *owner, const char *pixel, const s_pool_bots_t *pb,
              rst_api_res_t *res)
{
    s_pgerr_t e;
    if (pixel) {
        const char *params[] = {owner, pixel};
        PGresult *r = s_exec (db, "pool pixel",
                              "SELECT 1 FROM pixels WHERE owner_id = $1 AND id = $2::bigint"
                              " FOR SHARE", 2, params, NULL, NULL, &e);
        if (!r)
            return -1;
        int found = PQntuples (r) == 1;
        PQclear (r);
        if (!found) {
            rst_api_error (res, 404, "pixel not found");
            return 1;
        }
    }
    if (pb && pb->n) {
        const char *params[] = {owner, pb->ids_text};
        PGresult *r = s_exec (db, "pool bots",
                              "SELECT id FROM bots WHERE owner_id = $1 AND id = ANY ($2::bigint[])"
                              " FOR SHARE", 2, params, NULL, NULL, &e);
        if (!r)
            return -1;
        for (int j = 0; j < pb->n; j++) {
            int found = 0;
            for (int i = 0; i < PQntuples (r) && !found; i++)
                found = strtoll (PQgetvalue (r, i, 0), NULL, 10) == pb->ids[j];
            if (!found) {
                PQclear (r);
                char msg[64];
                snprintf (msg, sizeof msg, "bot %" PRId64 " not found", pb->ids[j]);
                rst_api_error (res, 404, msg);
                return 1;
            }
        }
        PQclear (r);
    }
    return 0;
}

//  Replaces the bots of pool POOL_ID by PB's (inside the caller's
//  transaction). Returns 0 or -1.
static int
s_set_pool_bots (PGconn *db, const char *pool_id, const s_pool_bots_t *pb)
{
    s_pgerr_t e;
    const char *params[] = {pool_id, pb->ids_text, pb->weights_text};
    PGresult *r = s_exec (db, "pool bots delete", "DELETE FROM pool_bots WHERE pool_id = $1",
                          1, params, NULL, NULL, &e);
    if (!r)
        return -1;
    PQclear (r);
    r = s_exec (db, "pool bots insert",
                "INSERT INTO pool_bots (pool_id, bot_id, weight)"
                " SELECT $1, t.bot_id, t.weight FROM unnest ($2::bigint[], $3::int[])"
                " AS t (bot_id, weight)",
                3, params, NULL, NULL, &e);
    PQclear (r);
    return r ? 0 : -1;
}

//  Inside the caller's transaction: refuses (400) a round-robin pool POOL_ID
//  with weights other than 1, as `rastro pool add` does. Returns 0; 1
//  after answering 400; -1 on a database error.
static int
s_check_weights (PGconn *db, const char *pool_id, rst_api_res_t *res)
{
    s_pgerr_t e;
    const char *params[] = {pool_id};
    PGresult *r = s_exec (db, "pool weights",
                          "SELECT o.strategy = 'round-robin' AND EXISTS (SELECT 1 FROM pool_bots"
                          " pb WHERE pb.pool_id = o.id AND pb.weight <> 1) FROM pools o"
                          " WHERE o.id = $1",
                          1, params, NULL, NULL, &e);
    if (!r)
        return -1;
    int bad = PQntuples (r) == 1 && !strcmp (PQgetvalue (r, 0, 0), "t");
    PQclear (r);
    if (bad) {
        rst_api_error (res, 400, "round-robin ignores weights: use strategy weighted, or "
                       "weights of 1");
        return 1;
    }
    return 0;
}

//  Answers the pool POOL_ID (STATUS) and commits the caller's transaction.
//  Returns 0 or -1 (then rolled back).
static int
s_pool_commit (PGconn *db, const char *pool_id, int status, rst_api_res_t *res)
{
    s_pgerr_t e;
    const char *params[] = {pool_id};
    PGresult *r = s_exec (db, "pool read",
                          "SELECT " S_POOL_JSON " FROM pools o WHERE o.id = $1", 1, params, NULL,
                          NULL, &e);
    if (!r || PQntuples (r) != 1 || s_command (db, "COMMIT")) {
        PQclear (r);
        s_rollback (db);
        return -1;
    }
    return s_answer (res, r, status, "pool not found");
}

static int
s_pools_add (const rst_api_req_t *req, PGconn *db, rst_api_res_t *res)
{
    cJSON *body = rst_api_body_object (req, res);
    if (!body)
        return 0;
    int rc = 0;
    const char *slug, *strategy;
    long long pixel;
    s_pool_bots_t *pb = malloc (sizeof *pb);
    if (!pb) {
        cJSON_Delete (body);
        return -1;
    }
    int st = s_get_string (body, "slug", 0, &slug, res);
    if (st < 0)
        goto done;
    if (st == S_ABSENT || !s_is_word (slug, 1, S_SLUG_MAX, "_-")) {
        s_bad (res, "slug must be 1 to %d letters, digits, '_' or '-' (the <slug> of /go/<slug>)",
               S_SLUG_MAX);
        goto done;
    }
    if ((st = s_get_int (body, "pixel", 0, 1, INT64_MAX, &pixel, res)) < 0)
        goto done;
    if (st == S_ABSENT) {
        s_bad (res, "pixel is required (the id of one of your pixels)");
        goto done;
    }
    int strategy_st = s_get_strategy (body, &strategy, res);
    if (strategy_st < 0 || (st = s_get_pool_bots (body, pb, res)) < 0)
        goto done;
    if (st == S_ABSENT) {
        s_bad (res, "bots is required: at least one {bot_id, weight}");
        goto done;
    }
    if (strategy_st == S_ABSENT)
        strategy = pb->any_weight ? "weighted" : "round-robin";
    if (!strcmp (strategy, "round-robin"))
        for (int j = 0; j < pb->n; j++)
            if (pb->weights[j] != 1) {
                s_bad (res, "bot %" PRId64 " has a weight, but round-robin ignores weights: use "
                       "strategy weighted", pb->ids[j]);
                goto done;
            }

    char owner[S_ID_TEXT], pixel_text[S_ID_TEXT], pool_id[S_ID_TEXT];
    snprintf (owner, sizeof owner, "%" PRId64, req->owner_id);
    snprintf (pixel_text, sizeof pixel_text, "%lld", pixel);
    if (s_command (db, "BEGIN")) {
        rc = -1;
        goto done;
    }
    if ((rc = s_check_refs (db, owner, pixel_text, pb, res)))
        goto rollback;
    const char *params[] = {owner, slug, pixel_text, strategy};
    s_pgerr_t e;
    PGresult *r = s_exec (db, "pool add",
                          "INSERT INTO pools (owner_id, slug, pixel_ref, strategy)"
                          " VALUES ($1, $2, $3, $4) RETURNING id",
                          4, params, NULL, NULL, &e);
    if (!r) {
        rc = s_refused (res, &e, "a pool with this slug already exists (slugs are unique)");
        goto rollback;
    }
    snprintf (pool_id, sizeof pool_id, "%s", PQgetvalue (r, 0, 0));
    PQclear (r);
    if (s_set_pool_bots (db, pool_id, pb)) {
        rc = -1;
        goto rollback;
    }
    rc = s_pool_commit (db, pool_id, 201, res);
    goto done;
rollback:
    s_rollback (db);
    if (rc > 0)
        rc = 0;
done:
    free (pb);
    cJSON_Delete (body);
    return rc;
}

static int
s_pools_patch (const rst_api_req_t *req, PGconn *db, rst_api_res_t *res)
{
    cJSON *body = rst_api_body_object (req, res);
    if (!body)
        return 0;
    int rc = 0;
    const char *strategy;
    long long pixel;
    int enabled;
    s_pool_bots_t *pb = malloc (sizeof *pb);
    if (!pb) {
        cJSON_Delete (body);
        return -1;
    }
    int enabled_st, strategy_st, pixel_st, bots_st;
    if ((enabled_st = s_get_bool (body, "enabled", &enabled, res)) < 0
        || (strategy_st = s_get_strategy (body, &strategy, res)) < 0
        || (pixel_st = s_get_int (body, "pixel", 0, 1, INT64_MAX, &pixel, res)) < 0
        || (bots_st = s_get_pool_bots (body, pb, res)) < 0)
        goto done;
    if (!enabled_st && !strategy_st && !pixel_st && !bots_st) {
        s_bad (res, "nothing to change: give enabled, strategy, pixel or bots");
        goto done;
    }
    char owner[S_ID_TEXT], id[S_ID_TEXT], pixel_text[S_ID_TEXT];
    snprintf (owner, sizeof owner, "%" PRId64, req->owner_id);
    snprintf (id, sizeof id, "%" PRId64, req->ids[0]);
    snprintf (pixel_text, sizeof pixel_text, "%lld", pixel);
    if (s_command (db, "BEGIN")) {
        rc = -1;
        goto done;
    }
    s_pgerr_t e;
    const char *lock_params[] = {owner, id};
    PGresult *r = s_exec (db, "pool lock",
                          "SELECT 1 FROM pools WHERE owner_id = $1 AND id = $2 FOR UPDATE", 2,
                          lock_params, NULL, NULL, &e);
    if (!r) {
        rc = -1;
        goto rollback;
    }
    int found = PQntuples (r) == 1;
    PQclear (r);
    if (!found) {
        rst_api_error (res, 404, "pool not found");
        goto rollback;
    }
    if ((rc = s_check_refs (db, owner, pixel_st ? pixel_text : NULL, bots_st ? pb : NULL, res)))
        goto rollback;
    if (bots_st && s_set_pool_bots (db, id, pb)) {
        rc = -1;
        goto rollback;
    }
    const char *params[] = {id, enabled_st ? (enabled ? "true" : "false") : NULL,
                            strategy_st ? strategy : NULL, pixel_st ? pixel_text : NULL};
    r = s_exec (db, "pool patch",
                "UPDATE pools SET enabled = coalesce($2::boolean, enabled),"
                " strategy = coalesce($3, strategy), pixel_ref = coalesce($4::bigint, pixel_ref)"
                " WHERE id = $1",
                4, params, NULL, NULL, &e);
    if (!r) {
        rc = s_refused (res, &e, "conflict");
        goto rollback;
    }
    PQclear (r);
    if ((rc = s_check_weights (db, id, res)))
        goto rollback;
    rc = s_pool_commit (db, id, 200, res);
    goto done;
rollback:
    s_rollback (db);
    if (rc > 0)
        rc = 0;
done:
    free (pb);
    cJSON_Delete (body);
    return rc;
}

//  ---------------------------------------------------------------------------
//  Offers

static int
s_offers_list (const rst_api_req_t *req, PGconn *db, rst_api_res_t *res)
{
    return s_read (req, db, res, "offer list",
                   "SELECT json_build_object('rows', coalesce((SELECT json_agg(" S_OFFER_JSON
                   " ORDER BY f.id) FROM offers f WHERE f.bot_id = b.id"
                   " AND f.owner_id = b.owner_id), '[]'))"
                   " FROM bots b WHERE b.owner_id = $1 AND b.id = $2",
                   "bot not found");
}

//  The checked fields of an offer body (pointers into the body, except
//  WELCOME, trimmed into its own buffer).
typedef struct {
    int name_st;                    //  S_ABSENT / S_SET
    const char *name;
    int price_st;
    long long price_cents;
    int chat_st;                    //  S_ABSENT / S_NULL / S_SET
    char chat[S_ID_TEXT];
    int text_st;
    const char *text;
    int welcome_st;
    char welcome[RST_OFFER_WELCOME_MAX + 1];
    int enabled_st;
    int enabled;
} s_offer_fields_t;

//  "deliver_chat_id": a negative whole number (JSON number or decimal
//  string, for ids past 2^53), or null.
static int
s_get_chat (const cJSON *body, char *out, rst_api_res_t *res)
{
    int state;
    const cJSON *item = s_field (body, "deliver_chat_id", 1, res, &state);
    out[0] = 0;
    if (state != S_SET)
        return state;
    long long id = 0;
    char err[160];
    if (cJSON_IsString (item) && item->valuestring) {
        const char *s = item->valuestring;
        size_t digits = s[0] == '-' ? strspn (s + 1, "0123456789") : 0;
        if (digits < 1 || digits > 18 || s[digits + 1])
            return s_bad (res, "deliver_chat_id must be a group or channel id, e.g. "
                          "-1001234567890");
        id = strtoll (s, NULL, 10);
    }
    else {
        long long v;
        int st = s_get_int (body, "deliver_chat_id", 1, -INT64_MAX, INT64_MAX, &v, res);
        if (st < 0)
            return -1;
        id = v;
    }
    if (rst_offer_check_chat (id, "deliver_chat_id", err, sizeof err))
        return s_bad (res, "%s", err);
    snprintf (out, S_ID_TEXT, "%lld", id);
    return S_SET;
}

//  Reads and checks the offer fields of BODY into F. Returns 0, or -1
//  after answering 400.
static int
s_get_offer_fields (const cJSON *body, s_offer_fields_t *f, rst_api_res_t *res)
{
    memset (f, 0, sizeof *f);
    char err[256];
    const char *welcome;
    if ((f->name_st = s_get_string (body, "name", 0, &f->name, res)) < 0)
        return -1;
    if (f->name_st && rst_offer_check_name (f->name, "name", err, sizeof err))
        return s_bad (res, "%s", err);
    if ((f->price_st = s_get_int (body, "price_cents", 0, RST_OFFER_PRICE_MIN,
                                  RST_OFFER_PRICE_MAX, &f->price_cents, res)) < 0)
        return -1;
    if ((f->chat_st = s_get_chat (body, f->chat, res)) < 0)
        return -1;
    if ((f->text_st = s_get_string (body, "deliver_text", 1, &f->text, res)) < 0)
        return -1;
    if (f->text_st == S_SET && rst_offer_check_text (f->text, "deliver_text", err, sizeof err))
        return s_bad (res, "%s", err);
    if (f->chat_st == S_SET && f->text_st == S_SET)
        return s_bad (res, "deliver_chat_id and deliver_text exclude each other: an offer "
                      "delivers an invite link or a text");
    if ((f->welcome_st = s_get_string (body, "welcome_html", 1, &welcome, res)) < 0)
        return -1;
    if (f->welcome_st == S_SET) {
        //  As the command line stores a welcome file: without trailing whitespace.
        size_t n = strlen (welcome);
        while (n > 0 && isspace ((unsigned char) welcome[n - 1]))
            n--;
        if (n > RST_OFFER_WELCOME_MAX)
            return s_bad (res, "welcome_html is longer than %d bytes", RST_OFFER_WELCOME_MAX);
        memcpy (f->welcome, welcome, n);
        f->welcome[n] = 0;
        if (rst_offer_check_html (f->welcome, err, sizeof err))
            return s_bad (res, "welcome_html: %s", err);
    }
    if ((f->enabled_st = s_get_bool (body, "enabled", &f->enabled, res)) < 0)
        return -1;
    return 0;
}

static int
s_offers_add (const rst_api_req_t *req, PGconn *db, rst_api_res_t *res)
{
    cJSON *body = rst_api_body_object (req, res);
    if (!body)
        return 0;
    int rc = 0;
    s_offer_fields_t *f = malloc (sizeof *f);
    if (!f) {
        cJSON_Delete (body);
        return -1;
    }
    if (s_get_offer_fields (body, f, res))
        goto done;
    if (!f->name_st) {
        s_bad (res, "name is required (the buy button's text)");
        goto done;
    }
    if (!f->price_st) {
        s_bad (res, "price_cents is required (%d to %d)", RST_OFFER_PRICE_MIN,
               RST_OFFER_PRICE_MAX);
        goto done;
    }
    if (f->chat_st != S_SET && f->text_st != S_SET) {
        s_bad (res, "give deliver_chat_id (an invite to a private group or channel) or "
               "deliver_text");
        goto done;
    }
    char owner[S_ID_TEXT], id[S_ID_TEXT], cents[S_ID_TEXT];
    snprintf (owner, sizeof owner, "%" PRId64, req->owner_id);
    snprintf (id, sizeof id, "%" PRId64, req->ids[0]);
    snprintf (cents, sizeof cents, "%lld", f->price_cents);
    const char *params[] = {owner,
                            id,
                            f->name,
                            cents,
                            f->chat_st == S_SET ? f->chat : NULL,
                            f->text_st == S_SET ? f->text : NULL,
                            f->welcome_st == S_SET ? f->welcome : NULL,
                            f->enabled_st ? (f->enabled ? "true" : "false") : NULL};
    s_pgerr_t e;
    PGresult *r = s_exec (db, "offer add",
                          "INSERT INTO offers AS f (owner_id, bot_id, name, price_cents,"
                          " deliver_chat_id, deliver_text, welcome_html, enabled)"
                          " SELECT b.owner_id, b.id, $3, $4::int, $5::bigint, $6, $7,"
                          " coalesce($8::boolean, true)"
                          " FROM bots b WHERE b.owner_id = $1 AND b.id = $2"
                          " RETURNING " S_OFFER_JSON,
                          8, params, NULL, NULL, &e);
    rc = r ? s_answer (res, r, 201, "bot not found") : s_refused (res, &e, "conflict");
done:
    free (f);
    cJSON_Delete (body);
    return rc;
}

static int
s_offers_patch (const rst_api_req_t *req, PGconn *db, rst_api_res_t *res)
{
    cJSON *body = rst_api_body_object (req, res);
    if (!body)
        return 0;
    int rc = 0;
    s_offer_fields_t *f = malloc (sizeof *f);
    if (!f) {
        cJSON_Delete (body);
        return -1;
    }
    if (s_get_offer_fields (body, f, res))
        goto done;
    if (!f->name_st && !f->price_st && !f->chat_st && !f->text_st && !f->welcome_st
        && !f->enabled_st) {
        s_bad (res, "nothing to change: give name, price_cents, welcome_html, deliver_chat_id, "
               "deliver_text or enabled");
        goto done;
    }
    //  A new delivery replaces the old one; a null alone would leave none.
    int delivery = f->chat_st == S_SET || f->text_st == S_SET;
    if (!delivery && (f->chat_st == S_NULL || f->text_st == S_NULL)) {
        s_bad (res, "an offer delivers an invite link or a text: give deliver_chat_id or "
               "deliver_text to replace the delivery");
        goto done;
    }
    char owner[S_ID_TEXT], id[S_ID_TEXT], cents[S_ID_TEXT];
    snprintf (owner, sizeof owner, "%" PRId64, req->owner_id);
    snprintf (id, sizeof id, "%" PRId64, req->ids[0]);
    snprintf (cents, sizeof cents, "%lld", f->price_cents);
    const char *params[] = {owner,
                            id,
                            f->name_st ? f->name : NULL,
                            f->price_st ? cents : NULL,
                            delivery ? "t" : "f",
                            f->chat_st == S_SET ? f->chat : NULL,
                            f->text_st == S_SET ? f->text : NULL,
                            f->welcome_st ? "t" : "f",
                            f->welcome_st == S_SET ? f->welcome : NULL,
                            f->enabled_st ? (f->enabled ? "true" : "false") : NULL};
    s_pgerr_t e;
    PGresult *r = s_exec (db, "offer patch",
                          "UPDATE offers AS f SET name = coalesce($3, name),"
                          " price_cents = coalesce($4::int, price_cents),"
                          " deliver_chat_id = CASE WHEN $5::boolean THEN $6::bigint"
                          "   ELSE deliver_chat_id END,"
                          " deliver_text = CASE WHEN $5::boolean THEN $7 ELSE deliver_text END,"
                          " welcome_html = CASE WHEN $8::boolean THEN $9 ELSE welcome_html END,"
                          " enabled = coalesce($10::boolean, enabled)"
                          " WHERE f.owner_id = $1 AND f.id = $2 RETURNING " S_OFFER_JSON,
                          10, params, NULL, NULL, &e);
    rc = r ? s_answer (res, r, 200, "offer not found") : s_refused (res, &e, "conflict");
done:
    free (f);
    cJSON_Delete (body);
    return rc;
}

//  ---------------------------------------------------------------------------
//  Dead letters

#define S_DLQ_JSON                                                                             \
    "json_build_object('id', d.id, 'pixel_id', d.pixel_id, 'event_id', d.event_id,"            \
    " 'event_name', d.event_name, 'event_time', d.event_time, 'reason', d.reason,"             \
    " 'http_status', d.http_status, 'error_code', d.error_code,"                               \
    " 'error_subcode', d.error_subcode, 'error_message', d.error_message,"                     \
    " 'fbtrace_id', d.fbtrace_id, 'created_at', d.created_at,"                                 \
    " 'replay_requested_at', d.replay_requested_at)"

//  GET /dlq: the dead letters not replayed yet, newest first; the cursor is
//  the last id of the previous page (keyset: id < cursor).
static int
s_dlq_list (const rst_api_req_t *req, PGconn *db, rst_api_res_t *res)
{
    char pixel[S_PIXEL_ID_MAX + 2], limit_text[16], cursor[S_CURSOR_DIGITS + 2];
    int has_pixel = rst_api_query (req, "pixel", pixel, sizeof pixel);
    if (has_pixel < 0 || (has_pixel && (!pixel[0] || strspn (pixel, "0123456789")
                                                         != strlen (pixel))))
        return rst_api_error (res, 400, "pixel must be a pixel id (1 to 32 digits)");
    int has_limit = rst_api_query (req, "limit", limit_text, sizeof limit_text);
    long limit = RST_APIADMIN_DLQ_LIMIT;
    if (has_limit) {
        size_t n = has_limit > 0 ? strspn (limit_text, "0123456789") : 0;
        limit = n >= 1 && n <= 3 && !limit_text[n] ? atol (limit_text) : 0;
        if (limit < 1 || limit > RST_APIADMIN_DLQ_LIMIT_MAX)
            return rst_api_error (res, 400, "limit must be from 1 to 200");
    }
    int has_cursor = rst_api_query (req, "cursor", cursor, sizeof cursor);
    if (has_cursor) {
        size_t n = has_cursor > 0 ? strspn (cursor, "0123456789") : 0;
        if (n < 1 || n > S_CURSOR_DIGITS || cursor[n] || atoll (cursor) < 1)
            return rst_api_error (res, 400, "cursor is not a next_cursor of this list");
    }
    char owner[S_ID_TEXT];
    snprintf (owner, sizeof owner, "%" PRId64, req->owner_id);
    snprintf (limit_text, sizeof limit_text, "%ld", limit);
    const char *params[] = {owner, has_pixel ? pixel : NULL, has_cursor ? cursor : NULL,
                            limit_text};
    s_pgerr_t e;
    PGresult *r = s_exec (db, "dlq list",
                          "SELECT json_build_object('items', coalesce(json_agg(s.j ORDER BY s.id"
                          " DESC) FILTER (WHERE s.rn <= $4::int), '[]'), 'next_cursor',"
                          " CASE WHEN count(*) > $4::int THEN"
                          " (min(s.id) FILTER (WHERE s.rn <= $4::int))::text END)"
                          " FROM (SELECT d.id, row_number() OVER (ORDER BY d.id DESC) AS rn, "
                          S_DLQ_JSON " AS j FROM dead_letters d"
                          " WHERE d.owner_id = $1 AND d.replayed_at IS NULL"
                          " AND ($2::text IS NULL OR d.pixel_id = $2)"
                          " AND ($3::bigint IS NULL OR d.id < $3::bigint)"
                          " ORDER BY d.id DESC LIMIT $4::int + 1) s",
                          4, params, NULL, NULL, &e);
    if (!r)
        return -1;
    return s_answer (res, r, 200, "not found");
}

static int
s_dlq_get (const rst_api_req_t *req, PGconn *db, rst_api_res_t *res)
{
    //  payload is json kept byte for byte: embedded as it is.
    return s_read (req, db, res, "dlq get",
                   "SELECT json_build_object('dead_letter', " S_DLQ_JSON
                   " :: jsonb || jsonb_build_object('source', d.source,"
                   " 'replayed_at', d.replayed_at, 'payload', d.payload))"
                   " FROM dead_letters d WHERE d.owner_id = $1 AND d.id = $2",
                   "dead letter not found");
}

static int
s_dlq_replay (const rst_api_req_t *req, PGconn *db, rst_api_res_t *res)
{
    long n = 0;
    char err[256];
    //  rst_dlq_replay reads 0 as "any": never let a non-positive id through.
    if (req->nids < 1 || req->ids[0] <= 0 || req->owner_id <= 0)
        return rst_api_error (res, 404, "dead letter not found");
    if (rst_dlq_replay (db, req->owner_id, req->ids[0], NULL, &n, err, sizeof err)) {
        rst_error (S_CLASS, "dlq replay: %s", err);
        return -1;
    }
    if (n == 0) {
        //  Not replayable: someone else's or missing (404), or done (409).
        char owner[S_ID_TEXT], id[S_ID_TEXT];
        snprintf (owner, sizeof owner, "%" PRId64, req->owner_id);
        snprintf (id, sizeof id, "%" PRId64, req->ids[0]);
        const char *params[] = {owner, id};
        s_pgerr_t e;
        PGresult *r = s_exec (db, "dlq replay check",
                              "SELECT 1 FROM dead_letters WHERE owner_id = $1 AND id = $2", 2,
                              params, NULL, NULL, &e);
        if (!r)
            return -1;
        int found = PQntuples (r) == 1;
        PQclear (r);
        return found ? rst_api_error (res, 409, "already replayed")
                     : rst_api_error (res, 404, "dead letter not found");
    }
    cJSON *json = cJSON_CreateObject ();
    if (!json || !cJSON_AddNumberToObject (json, "id", (double) req->ids[0])
        || !cJSON_AddTrueToObject (json, "replay_requested")) {
        cJSON_Delete (json);
        return -1;
    }
    return rst_api_ok (res, json);
}

//  ---------------------------------------------------------------------------

const rst_api_route_t rst_apiadmin_routes[] = {
    {"GET", "/pixels", s_pixels_list, 0},
    {"POST", "/pixels", s_pixels_add, 0},
    {"PATCH", "/pixels/:id", s_pixels_patch, 0},
    {"GET", "/bots", s_bots_list, 0},
    {"POST", "/bots", s_bots_add, 0},
    {"GET", "/bots/:id", s_bots_get, 0},
    {"PATCH", "/bots/:id", s_bots_patch, 0},
    {"GET", "/pools", s_pools_list, 0},
    {"POST", "/pools", s_pools_add, 0},
    {"GET", "/pools/:id", s_pools_get, 0},
    {"PATCH", "/pools/:id", s_pools_patch, 0},
    {"GET", "/bots/:id/offers", s_offers_list, 0},
    {"POST", "/bots/:id/offers", s_offers_add, 0},
    {"PATCH", "/offers/:id", s_offers_patch, 0},
    {"GET", "/dlq", s_dlq_list, 0},
    {"GET", "/dlq/:id", s_dlq_get, 0},
    {"POST", "/dlq/:id/replay", s_dlq_replay, 0},
    {NULL, NULL, NULL, 0},
};
