/*  rst_apiadmin_test — the management routes' handlers called directly
    (no HTTP) against a real PostgreSQL.

    Needs RASTRO_TEST_SERVER (a libpq conninfo without dbname, exported by
    scripts/test); without it every test is skipped. Each test gets a fresh
    database with every migration applied, two users (ana with a pixel
    and two bots, bea with a pixel and one bot), and drops it afterwards. Tokens are sealed
    under a master key in a temporary file.

    The first test is the tour: ana adds a pixel (sealed token, never
    echoed), a pool over her two bots, an offer, and replays a dead letter.
    The others check each route's validation (400), conflicts (409), that
    nothing is stored by a refused write, that every route given one of
    ana's ids on bea's behalf answers 404 and changes nothing, the dead
    letter pagination, POST /bots's refusals before any network call (its
    getMe path is tested over HTTP in test_api_admin.sh), and that the
    connection is left idle (no open transaction) after every call.
*/
#include "rst_apiadmin.h"
#include "rst_db.h"
#include "rst_dlq.h"
#include "rst_secret.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    char server[1024];      //  RASTRO_TEST_SERVER
    char dbname[64];
    char keyfile[128];      //  master key (created by the first seal)
    PGconn *admin;          //  to the postgres database (create, drop)
    PGconn *pg;             //  to the test's database
    int64_t ana, bea;       //  users
    int64_t ana_pixel, bea_pixel;       //  pixels.id
    int64_t ana_bot1, ana_bot2, bea_bot;
} s_fixture_t;

static void
s_exec_ok (PGconn *pg, const char *sql)
{
    PGresult *res = PQexec (pg, sql);
    if (PQresultStatus (res) != PGRES_COMMAND_OK && PQresultStatus (res) != PGRES_TUPLES_OK)
        fail_msg ("%s: %s", sql, PQerrorMessage (pg));
    PQclear (res);
}

//  The first cell of SQL's answer as a number.
static int64_t
s_num (PGconn *pg, const char *sql)
{
    PGresult *res = PQexec (pg, sql);
    if (PQresultStatus (res) != PGRES_TUPLES_OK || PQntuples (res) != 1)
        fail_msg ("%s: %s", sql, PQerrorMessage (pg));
    int64_t v = strtoll (PQgetvalue (res, 0, 0), NULL, 10);
    PQclear (res);
    return v;
}

//  The first cell of SQL's answer as text (static buffer).
static const char *
s_text (PGconn *pg, const char *sql)
{
    static char buf[8192];
    PGresult *res = PQexec (pg, sql);
    if (PQresultStatus (res) != PGRES_TUPLES_OK || PQntuples (res) != 1)
        fail_msg ("%s: %s", sql, PQerrorMessage (pg));
    snprintf (buf, sizeof buf, "%s", PQgetisnull (res, 0, 0) ? "(null)" : PQgetvalue (res, 0, 0));
    PQclear (res);
    return buf;
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
    snprintf (f->dbname, sizeof f->dbname, "rst_apiadmin_%d_%d", (int) getpid (), ++seq);
    snprintf (f->keyfile, sizeof f->keyfile, "/tmp/rst_apiadmin_test_%d.key", (int) getpid ());
    rst_apiadmin_set_master_key_file (f->keyfile);
    char conninfo[1200];
    snprintf (conninfo, sizeof conninfo, "%s dbname=postgres", server);
    f->admin = PQconnectdb (conninfo);
    if (PQstatus (f->admin) != CONNECTION_OK)
        fail_msg ("RASTRO_TEST_SERVER: %s", PQerrorMessage (f->admin));
    char sql[256];
    snprintf (sql, sizeof sql, "CREATE DATABASE %s", f->dbname);
    s_exec_ok (f->admin, sql);
    snprintf (conninfo, sizeof conninfo, "%s dbname=%s", server, f->dbname);
    f->pg = PQconnectdb (conninfo);
    if (PQstatus (f->pg) != CONNECTION_OK)
        fail_msg ("%s", PQerrorMessage (f->pg));
    char err[1024];
    if (rst_db_migrate (f->pg, err, sizeof err) < 0)
        fail_msg ("migrate: %s", err);
    PQclear (PQexec (f->pg, "SET client_min_messages = warning"));
    f->ana = s_num (f->pg, "INSERT INTO users (email, password_hash) VALUES ('ana@example.com',"
                    " 'x') RETURNING id");
    f->bea = s_num (f->pg, "INSERT INTO users (email, password_hash) VALUES ('bea@example.com',"
                    " 'x') RETURNING id");
    snprintf (sql, sizeof sql, "INSERT INTO pixels (owner_id, pixel_id, token_enc) VALUES"
              " (%" PRId64 ", '111', '\\x00') RETURNING id", f->ana);
    f->ana_pixel = s_num (f->pg, sql);
    snprintf (sql, sizeof sql, "INSERT INTO pixels (owner_id, pixel_id, token_enc) VALUES"
              " (%" PRId64 ", '222', '\\x00') RETURNING id", f->bea);
    f->bea_pixel = s_num (f->pg, sql);
    snprintf (sql, sizeof sql, "INSERT INTO bots (owner_id, telegram_id, username, token_enc)"
              " VALUES (%" PRId64 ", 1001, 'ana_one_bot', '\\x00') RETURNING id", f->ana);
    f->ana_bot1 = s_num (f->pg, sql);
    snprintf (sql, sizeof sql, "INSERT INTO bots (owner_id, telegram_id, username, token_enc)"
              " VALUES (%" PRId64 ", 1002, 'ana_two_bot', '\\x00') RETURNING id", f->ana);
    f->ana_bot2 = s_num (f->pg, sql);
    snprintf (sql, sizeof sql, "INSERT INTO bots (owner_id, telegram_id, username, token_enc)"
              " VALUES (%" PRId64 ", 2001, 'bea_one_bot', '\\x00') RETURNING id", f->bea);
    f->bea_bot = s_num (f->pg, sql);
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
        snprintf (sql, sizeof sql, "DROP DATABASE IF EXISTS %s", f->dbname);
        s_exec_ok (f->admin, sql);
        PQfinish (f->admin);
    }
    if (f->keyfile[0])
        unlink (f->keyfile);
    free (f);
    return 0;
}

#define SKIP_WITHOUT_PG(f)                                                                     \
    do {                                                                                       \
        if (!(f)->pg)                                                                          \
            skip ();                                                                           \
    } while (0)

//  Calls the route METHOD PATTERN on OWNER's behalf with path id ID (0:
//  none), query QUERY and body BODY. Returns the HTTP status; *OUT (may be
//  NULL) gets the JSON answer, the caller's. Checks that the handler left
//  the connection idle.
static int
s_call (s_fixture_t *f, int64_t owner, const char *method, const char *pattern, int64_t id,
        const char *query, const char *body, cJSON **out)
{
    const rst_api_route_t *route = NULL;
    for (const rst_api_route_t *r = rst_apiadmin_routes; r->method && !route; r++)
        if (!strcmp (r->method, method) && !strcmp (r->pattern, pattern))
            route = r;
    if (!route)
        fail_msg ("no route %s %s", method, pattern);
    rst_api_req_t req = {.method = method, .path = pattern, .query = query ? query : "",
                         .body = body, .body_len = body ? strlen (body) : 0,
                         .content_type = "application/json", .client_ip = "127.0.0.1",
                         .user_agent = "", .owner_id = owner, .timezone = "America/Sao_Paulo"};
    if (id) {
        req.ids[0] = id;
        req.nids = 1;
    }
    rst_api_res_t res = {0};
    int rc = route->fn (&req, f->pg, &res);
    assert_int_equal (PQtransactionStatus (f->pg), PQTRANS_IDLE);
    int status = rc < 0 ? 500 : res.status ? res.status : 200;
    if (rc == 0)
        assert_non_null (res.json);
    if (out)
        *out = res.json;
    else
        cJSON_Delete (res.json);
    free (res.set_cookie);
    return status;
}

//  Status of a call whose answer does not matter.
#define S_STATUS(f, owner, method, pattern, id, body)                                          \
    s_call ((f), (owner), (method), (pattern), (id), NULL, (body), NULL)

//  The error message of a call that must answer STATUS.
static char s_errbuf[512];
static const char *
s_error_of (s_fixture_t *f, int64_t owner, const char *method, const char *pattern, int64_t id,
            const char *body, int status)
{
    cJSON *json = NULL;
    int got = s_call (f, owner, method, pattern, id, NULL, body, &json);
    const cJSON *e = cJSON_GetObjectItem (json, "error");
    snprintf (s_errbuf, sizeof s_errbuf, "%s", cJSON_IsString (e) ? e->valuestring : "");
    cJSON_Delete (json);
    if (got != status)
        fail_msg ("%s %s %s: %d (%s), not %d", method, pattern, body ? body : "", got, s_errbuf,
                  status);
    return s_errbuf;
}

static int64_t
s_int (const cJSON *obj, const char *key)
{
    const cJSON *item = cJSON_GetObjectItem (obj, key);
    if (!cJSON_IsNumber (item))
        fail_msg ("no number %s", key);
    return (int64_t) item->valuedouble;
}

static const char *
s_str (const cJSON *obj, const char *key)
{
    const cJSON *item = cJSON_GetObjectItem (obj, key);
    return cJSON_IsString (item) ? item->valuestring : NULL;
}

//  A fingerprint of everything the routes could change.
static char *
s_snapshot (s_fixture_t *f)
{
    return strdup (s_text (f->pg,
                           "SELECT md5(concat_ws('|',"
                           " (SELECT string_agg(concat_ws(',', id, owner_id, pixel_id,"
                           "   encode(token_enc, 'hex'), test_event_code, rate_per_s), ';'"
                           "   ORDER BY id) FROM pixels),"
                           " (SELECT string_agg(concat_ws(',', id, enabled, healthy), ';'"
                           "   ORDER BY id) FROM bots),"
                           " (SELECT string_agg(concat_ws(',', id, slug, pixel_ref, strategy,"
                           "   enabled), ';' ORDER BY id) FROM pools),"
                           " (SELECT string_agg(concat_ws(',', pool_id, bot_id, weight), ';'"
                           "   ORDER BY pool_id, bot_id) FROM pool_bots),"
                           " (SELECT string_agg(concat_ws(',', id, name, price_cents,"
                           "   welcome_html, deliver_chat_id, deliver_text, enabled), ';'"
                           "   ORDER BY id) FROM offers),"
                           " (SELECT string_agg(concat_ws(',', id, replay_requested_at,"
                           "   replayed_at), ';' ORDER BY id) FROM dead_letters)))"));
}

//  Adds a dead letter of OWNER for PIXEL. Returns its id.
static int64_t
s_dead_letter (s_fixture_t *f, int64_t owner, const char *pixel, int n)
{
    char sql[512];
    snprintf (sql, sizeof sql,
              "INSERT INTO dead_letters (owner_id, pixel_id, event_id, event_name, payload,"
              " reason, http_status, error_code, error_message, fbtrace_id) VALUES"
              " (%" PRId64 ", '%s', 'ev-%" PRId64 "-%d', 'Purchase',"
              " '{\"event_name\":\"Purchase\",\"value\":%d}', 'invalid-parameter', 400, 100,"
              " 'Invalid parameter', 'AbCdEf%d') RETURNING id",
              owner, pixel, owner, n, n, n);
    return s_num (f->pg, sql);
}

//  ---------------------------------------------------------------------------

static void
test_tour (void **state)
{
    s_fixture_t *f = *state;
    SKIP_WITHOUT_PG (f);
    cJSON *json = NULL;

    //  A pixel: the token is sealed at rest and never answered.
    assert_int_equal (s_call (f, f->ana, "POST", "/pixels", 0, NULL,
                              "{\"pixel_id\": \"123456789\", \"token\": \" EAAB-secret-token\\n\","
                              " \"test_event_code\": \"TEST123\", \"color\": \"ignored\"}",
                              &json),
                      201);
    int64_t pixel = s_int (json, "id");
    assert_string_equal (s_str (json, "pixel_id"), "123456789");
    assert_string_equal (s_str (json, "test_event_code"), "TEST123");
    assert_true (cJSON_IsTrue (cJSON_GetObjectItem (json, "token_set")));
    char *text = cJSON_PrintUnformatted (json);
    assert_null (strstr (text, "EAAB"));
    free (text);
    cJSON_Delete (json);
    char sql[256];
    snprintf (sql, sizeof sql, "SELECT encode(token_enc, 'hex') FROM pixels WHERE id = %" PRId64,
              pixel);
    const char *hex = s_text (f->pg, sql);
    size_t sealed_len = strlen (hex) / 2;
    unsigned char *sealed = malloc (sealed_len);
    for (size_t i = 0; i < sealed_len; i++)
        sscanf (hex + 2 * i, "%2hhx", &sealed[i]);
    char err[256];
    rst_secret_t *secret = rst_secret_new (f->keyfile, 0, err, sizeof err);
    assert_non_null (secret);
    char *plain = rst_secret_open (secret, sealed, sealed_len);
    assert_non_null (plain);
    assert_string_equal (plain, "EAAB-secret-token");
    rst_secret_free (plain);
    rst_secret_destroy (&secret);
    free (sealed);

    //  The list shows it, without any token.
    assert_int_equal (s_call (f, f->ana, "GET", "/pixels", 0, NULL, NULL, &json), 200);
    const cJSON *rows = cJSON_GetObjectItem (json, "rows");
    assert_int_equal (cJSON_GetArraySize (rows), 2);
    text = cJSON_PrintUnformatted (json);
    assert_null (strstr (text, "token\""));
    assert_null (strstr (text, "EAAB"));
    assert_null (strstr (text, "\"222\""));     //  not bea's
    free (text);
    cJSON_Delete (json);

    //  A pool over ana's two bots, weighted (a weight was given).
    char body[512];
    snprintf (body, sizeof body,
              "{\"slug\": \"promo\", \"pixel\": %" PRId64 ", \"bots\": [{\"bot_id\": %" PRId64
              ", \"weight\": 3}, {\"bot_id\": %" PRId64 "}]}",
              pixel, f->ana_bot1, f->ana_bot2);
    assert_int_equal (s_call (f, f->ana, "POST", "/pools", 0, NULL, body, &json), 201);
    int64_t pool = s_int (json, "id");
    assert_string_equal (s_str (json, "strategy"), "weighted");
    assert_string_equal (s_str (json, "pixel_id"), "123456789");
    assert_int_equal (cJSON_GetArraySize (cJSON_GetObjectItem (json, "bots")), 2);
    cJSON_Delete (json);
    snprintf (sql, sizeof sql, "SELECT string_agg(bot_id || ':' || weight, ' ' ORDER BY bot_id)"
              " FROM pool_bots WHERE pool_id = %" PRId64, pool);
    char expect[128];
    snprintf (expect, sizeof expect, "%" PRId64 ":3 %" PRId64 ":1", f->ana_bot1, f->ana_bot2);
    assert_string_equal (s_text (f->pg, sql), expect);

    //  An offer of bot 1.
    assert_int_equal (s_call (f, f->ana, "POST", "/bots/:id/offers", f->ana_bot1, NULL,
                              "{\"name\": \"Grupo VIP\", \"price_cents\": 1990,"
                              " \"deliver_chat_id\": -1001234567890,"
                              " \"welcome_html\": \"<b>Olá</b> &amp; bem-vindo\\n\"}",
                              &json),
                      201);
    int64_t offer = s_int (json, "id");
    assert_int_equal (s_int (json, "price_cents"), 1990);
    assert_string_equal (s_str (json, "welcome_html"), "<b>Olá</b> &amp; bem-vindo");
    cJSON_Delete (json);

    //  The bot with its pools and offers.
    assert_int_equal (s_call (f, f->ana, "GET", "/bots/:id", f->ana_bot1, NULL, NULL, &json),
                      200);
    assert_string_equal (s_str (cJSON_GetObjectItem (json, "bot"), "username"), "ana_one_bot");
    assert_int_equal (s_int (cJSON_GetObjectItem (json, "bot"), "offers"), 1);
    assert_int_equal (cJSON_GetArraySize (cJSON_GetObjectItem (json, "pools")), 1);
    assert_int_equal (
        s_int (cJSON_GetArrayItem (cJSON_GetObjectItem (json, "offers"), 0), "id"), offer);
    cJSON_Delete (json);

    //  A dead letter, replayed as `rastro dlq replay` does.
    int64_t dl = s_dead_letter (f, f->ana, "123456789", 1);
    assert_int_equal (s_call (f, f->ana, "GET", "/dlq/:id", dl, NULL, NULL, &json), 200);
    const cJSON *d = cJSON_GetObjectItem (json, "dead_letter");
    assert_string_equal (s_str (d, "fbtrace_id"), "AbCdEf1");
    assert_int_equal (s_int (cJSON_GetObjectItem (d, "payload"), "value"), 1);
    cJSON_Delete (json);
    assert_int_equal (S_STATUS (f, f->ana, "POST", "/dlq/:id/replay", dl, NULL), 200);
    snprintf (sql, sizeof sql, "SELECT replay_requested_at IS NOT NULL FROM dead_letters"
              " WHERE id = %" PRId64, dl);
    assert_string_equal (s_text (f->pg, sql), "t");
}

static void
test_pixels (void **state)
{
    s_fixture_t *f = *state;
    SKIP_WITHOUT_PG (f);
    const char *P = "/pixels", *PP = "/pixels/:id";
    s_error_of (f, f->ana, "POST", P, 0, NULL, 400);
    s_error_of (f, f->ana, "POST", P, 0, "[1]", 400);
    s_error_of (f, f->ana, "POST", P, 0, "{\"pixel_id\": 123, \"token\": \"t\"}", 400);
    s_error_of (f, f->ana, "POST", P, 0, "{\"pixel_id\": \"12a\", \"token\": \"t\"}", 400);
    s_error_of (f, f->ana, "POST", P, 0, "{\"pixel_id\": \"123\"}", 400);
    s_error_of (f, f->ana, "POST", P, 0, "{\"pixel_id\": \"123\", \"token\": \"a b\"}", 400);
    s_error_of (f, f->ana, "POST", P, 0, "{\"pixel_id\": \"123\", \"token\": 5}", 400);
    s_error_of (f, f->ana, "POST", P, 0,
                "{\"pixel_id\": \"123\", \"token\": \"t\", \"test_event_code\": \"a b\"}", 400);
    //  A duplicate is 409; the same id for another user is fine.
    const char *msg = s_error_of (f, f->ana, "POST", P, 0,
                                  "{\"pixel_id\": \"111\", \"token\": \"tok-secret\"}", 409);
    assert_null (strstr (msg, "tok-secret"));
    assert_int_equal (S_STATUS (f, f->bea, "POST", P, 0, "{\"pixel_id\": \"111\", \"token\": \"t\"}"),
                      201);
    assert_int_equal (s_num (f->pg, "SELECT count(*) FROM pixels"), 3);

    //  PATCH: code set, then cleared; rate; a new token is sealed.
    cJSON *json = NULL;
    assert_int_equal (s_call (f, f->ana, "PATCH", PP, f->ana_pixel, NULL,
                              "{\"test_event_code\": \"T1\", \"rate_per_s\": 50}", &json),
                      200);
    assert_string_equal (s_str (json, "test_event_code"), "T1");
    assert_int_equal (s_int (json, "rate_per_s"), 50);
    cJSON_Delete (json);
    assert_int_equal (S_STATUS (f, f->ana, "PATCH", PP, f->ana_pixel,
                                "{\"test_event_code\": null, \"token\": \"new-token\"}"),
                      200);
    char sql[160];
    snprintf (sql, sizeof sql, "SELECT coalesce(test_event_code, '-') || length(token_enc)"
              " FROM pixels WHERE id = %" PRId64, f->ana_pixel);
    assert_string_equal (s_text (f->pg, sql), "-49");  //  24 nonce + 16 tag + 9
    s_error_of (f, f->ana, "PATCH", PP, f->ana_pixel, "{}", 400);
    s_error_of (f, f->ana, "PATCH", PP, f->ana_pixel, "{\"rate_per_s\": 0}", 400);
    s_error_of (f, f->ana, "PATCH", PP, f->ana_pixel, "{\"rate_per_s\": 1.5}", 400);
    s_error_of (f, f->ana, "PATCH", PP, f->ana_pixel, "{\"token\": null}", 400);
    s_error_of (f, f->ana, "PATCH", PP, 999999, "{\"rate_per_s\": 5}", 404);
}

static void
test_pools (void **state)
{
    s_fixture_t *f = *state;
    SKIP_WITHOUT_PG (f);
    char body[512];
    const char *P = "/pools", *PP = "/pools/:id";
    //  Validation, before anything is stored.
    s_error_of (f, f->ana, "POST", P, 0, "{\"slug\": \"bad slug\", \"pixel\": 1, \"bots\": []}",
                400);
    snprintf (body, sizeof body, "{\"slug\": \"p1\", \"pixel\": %" PRId64 ", \"bots\": []}",
              f->ana_pixel);
    s_error_of (f, f->ana, "POST", P, 0, body, 400);
    snprintf (body, sizeof body, "{\"slug\": \"p1\", \"pixel\": %" PRId64 "}", f->ana_pixel);
    s_error_of (f, f->ana, "POST", P, 0, body, 400);
    snprintf (body, sizeof body, "{\"slug\": \"p1\", \"pixel\": %" PRId64 ", \"bots\":"
              " [{\"bot_id\": %" PRId64 ", \"weight\": 1001}]}", f->ana_pixel, f->ana_bot1);
    s_error_of (f, f->ana, "POST", P, 0, body, 400);
    snprintf (body, sizeof body, "{\"slug\": \"p1\", \"pixel\": %" PRId64 ", \"bots\":"
              " [{\"bot_id\": %" PRId64 "}, {\"bot_id\": %" PRId64 "}]}", f->ana_pixel,
              f->ana_bot1, f->ana_bot1);
    s_error_of (f, f->ana, "POST", P, 0, body, 400);
    snprintf (body, sizeof body, "{\"slug\": \"p1\", \"pixel\": %" PRId64 ", \"strategy\":"
              " \"round-robin\", \"bots\": [{\"bot_id\": %" PRId64 ", \"weight\": 2}]}",
              f->ana_pixel, f->ana_bot1);
    s_error_of (f, f->ana, "POST", P, 0, body, 400);
    snprintf (body, sizeof body, "{\"slug\": \"p1\", \"pixel\": %" PRId64 ", \"strategy\":"
              " \"random\", \"bots\": [{\"bot_id\": %" PRId64 "}]}", f->ana_pixel, f->ana_bot1);
    s_error_of (f, f->ana, "POST", P, 0, body, 400);
    //  Another user's pixel or bot: 404, nothing stored.
    snprintf (body, sizeof body, "{\"slug\": \"p1\", \"pixel\": %" PRId64 ", \"bots\":"
              " [{\"bot_id\": %" PRId64 "}]}", f->bea_pixel, f->ana_bot1);
    s_error_of (f, f->ana, "POST", P, 0, body, 404);
    snprintf (body, sizeof body, "{\"slug\": \"p1\", \"pixel\": %" PRId64 ", \"bots\":"
              " [{\"bot_id\": %" PRId64 "}, {\"bot_id\": %" PRId64 "}]}", f->ana_pixel,
              f->ana_bot1, f->bea_bot);
    s_error_of (f, f->ana, "POST", P, 0, body, 404);
    assert_int_equal (s_num (f->pg, "SELECT count(*) FROM pools"), 0);

    //  Added (round-robin: no weight given); its slug is then taken, for everyone.
    snprintf (body, sizeof body, "{\"slug\": \"p1\", \"pixel\": %" PRId64 ", \"bots\":"
              " [{\"bot_id\": %" PRId64 "}]}", f->ana_pixel, f->ana_bot1);
    cJSON *json = NULL;
    assert_int_equal (s_call (f, f->ana, "POST", P, 0, NULL, body, &json), 201);
    int64_t pool = s_int (json, "id");
    assert_string_equal (s_str (json, "strategy"), "round-robin");
    cJSON_Delete (json);
    s_error_of (f, f->ana, "POST", P, 0, body, 409);
    snprintf (body, sizeof body, "{\"slug\": \"p1\", \"pixel\": %" PRId64 ", \"bots\":"
              " [{\"bot_id\": %" PRId64 "}]}", f->bea_pixel, f->bea_bot);
    s_error_of (f, f->bea, "POST", P, 0, body, 409);
    assert_int_equal (s_num (f->pg, "SELECT count(*) FROM pools"), 1);
    assert_int_equal (s_num (f->pg, "SELECT count(*) FROM pool_bots"), 1);

    //  PATCH: the bots are replaced at once; weights need weighted.
    snprintf (body, sizeof body, "{\"bots\": [{\"bot_id\": %" PRId64 ", \"weight\": 5}]}",
              f->ana_bot2);
    s_error_of (f, f->ana, "PATCH", PP, pool, body, 400);
    snprintf (body, sizeof body, "{\"strategy\": \"weighted\", \"enabled\": false, \"bots\":"
              " [{\"bot_id\": %" PRId64 ", \"weight\": 5}, {\"bot_id\": %" PRId64 "}]}",
              f->ana_bot2, f->ana_bot1);
    assert_int_equal (s_call (f, f->ana, "PATCH", PP, pool, NULL, body, &json), 200);
    assert_false (cJSON_IsTrue (cJSON_GetObjectItem (json, "enabled")));
    cJSON_Delete (json);
    char sql[200], expect[64];
    snprintf (sql, sizeof sql, "SELECT string_agg(bot_id || ':' || weight, ' ' ORDER BY bot_id)"
              " FROM pool_bots WHERE pool_id = %" PRId64, pool);
    snprintf (expect, sizeof expect, "%" PRId64 ":1 %" PRId64 ":5", f->ana_bot1, f->ana_bot2);
    assert_string_equal (s_text (f->pg, sql), expect);
    //  A refused PATCH changes nothing (a foreign bot among good ones).
    char *before = s_snapshot (f);
    snprintf (body, sizeof body, "{\"enabled\": true, \"bots\": [{\"bot_id\": %" PRId64 "},"
              " {\"bot_id\": %" PRId64 "}]}", f->ana_bot1, f->bea_bot);
    s_error_of (f, f->ana, "PATCH", PP, pool, body, 404);
    s_error_of (f, f->ana, "PATCH", PP, pool, "{\"strategy\": \"round-robin\"}", 400);
    s_error_of (f, f->ana, "PATCH", PP, pool, "{}", 400);
    char *after = s_snapshot (f);
    assert_string_equal (before, after);
    free (before);
    free (after);

    assert_int_equal (s_call (f, f->ana, "GET", PP, pool, NULL, NULL, &json), 200);
    assert_string_equal (s_str (cJSON_GetObjectItem (json, "pool"), "slug"), "p1");
    cJSON_Delete (json);
    assert_int_equal (s_call (f, f->ana, "GET", P, 0, NULL, NULL, &json), 200);
    assert_int_equal (cJSON_GetArraySize (cJSON_GetObjectItem (json, "rows")), 1);
    cJSON_Delete (json);
}

static void
test_offers (void **state)
{
    s_fixture_t *f = *state;
    SKIP_WITHOUT_PG (f);
    const char *P = "/bots/:id/offers", *PP = "/offers/:id";
    int64_t bot = f->ana_bot1;
    s_error_of (f, f->ana, "POST", P, bot, "{\"price_cents\": 100, \"deliver_text\": \"x\"}",
                400);
    s_error_of (f, f->ana, "POST", P, bot, "{\"name\": \"a\", \"deliver_text\": \"x\"}", 400);
    s_error_of (f, f->ana, "POST", P, bot,
                "{\"name\": \"a\", \"price_cents\": 49, \"deliver_text\": \"x\"}", 400);
    s_error_of (f, f->ana, "POST", P, bot,
                "{\"name\": \"a\", \"price_cents\": 100000001, \"deliver_text\": \"x\"}", 400);
    s_error_of (f, f->ana, "POST", P, bot, "{\"name\": \"a\", \"price_cents\": 100}", 400);
    s_error_of (f, f->ana, "POST", P, bot,
                "{\"name\": \"a\", \"price_cents\": 100, \"deliver_text\": \"x\","
                " \"deliver_chat_id\": -100}", 400);
    s_error_of (f, f->ana, "POST", P, bot,
                "{\"name\": \"a\", \"price_cents\": 100, \"deliver_chat_id\": 100}", 400);
    s_error_of (f, f->ana, "POST", P, bot,
                "{\"name\": \"a\\nb\", \"price_cents\": 100, \"deliver_text\": \"x\"}", 400);
    s_error_of (f, f->ana, "POST", P, bot,
                "{\"name\": \"\", \"price_cents\": 100, \"deliver_text\": \"x\"}", 400);
    const char *msg = s_error_of (f, f->ana, "POST", P, bot,
                                  "{\"name\": \"a\", \"price_cents\": 100, \"deliver_text\": \"x\","
                                  " \"welcome_html\": \"<div>x</div>\"}", 400);
    assert_non_null (strstr (msg, "tag <div>"));
    s_error_of (f, f->ana, "POST", P, bot,
                "{\"name\": \"a\", \"price_cents\": \"100\", \"deliver_text\": \"x\"}", 400);
    s_error_of (f, f->ana, "POST", P, bot,
                "{\"name\": \"a\", \"price_cents\": 100, \"deliver_text\": \"x\","
                " \"enabled\": 1}", 400);
    assert_int_equal (s_num (f->pg, "SELECT count(*) FROM offers"), 0);
    //  Boundaries: 50 and 100000000 centavos; a chat id as a string.
    cJSON *json = NULL;
    assert_int_equal (s_call (f, f->ana, "POST", P, bot, NULL,
                              "{\"name\": \"a\", \"price_cents\": 50,"
                              " \"deliver_chat_id\": \"-1009876543210123\"}", &json),
                      201);
    int64_t offer = s_int (json, "id");
    cJSON_Delete (json);
    assert_string_equal (s_text (f->pg, "SELECT deliver_chat_id FROM offers"),
                         "-1009876543210123");
    assert_int_equal (S_STATUS (f, f->ana, "POST", P, bot,
                                "{\"name\": \"b\", \"price_cents\": 100000000,"
                                " \"deliver_text\": \"x\", \"enabled\": false}"),
                      201);
    //  PATCH: the delivery is replaced; a null alone is refused.
    assert_int_equal (s_call (f, f->ana, "PATCH", PP, offer, NULL,
                              "{\"deliver_text\": \"Obrigado!\", \"price_cents\": 2990,"
                              " \"enabled\": false}", &json),
                      200);
    assert_true (cJSON_IsNull (cJSON_GetObjectItem (json, "deliver_chat_id")));
    assert_string_equal (s_str (json, "deliver_text"), "Obrigado!");
    cJSON_Delete (json);
    s_error_of (f, f->ana, "PATCH", PP, offer, "{\"deliver_chat_id\": null}", 400);
    s_error_of (f, f->ana, "PATCH", PP, offer, "{\"price_cents\": 10}", 400);
    s_error_of (f, f->ana, "PATCH", PP, offer, "{\"welcome_html\": \"<b>x\"}", 400);
    s_error_of (f, f->ana, "PATCH", PP, offer, "{\"unknown\": 1}", 400);
    assert_int_equal (S_STATUS (f, f->ana, "PATCH", PP, offer,
                                "{\"welcome_html\": \"<i>oi</i>\"}"), 200);
    assert_int_equal (S_STATUS (f, f->ana, "PATCH", PP, offer, "{\"welcome_html\": null}"), 200);
    char sql[160];
    snprintf (sql, sizeof sql, "SELECT concat_ws(',', price_cents, deliver_text, enabled,"
              " coalesce(welcome_html, '-')) FROM offers WHERE id = %" PRId64, offer);
    assert_string_equal (s_text (f->pg, sql), "2990,Obrigado!,f,-");
    assert_int_equal (s_call (f, f->ana, "GET", P, bot, NULL, NULL, &json), 200);
    assert_int_equal (cJSON_GetArraySize (cJSON_GetObjectItem (json, "rows")), 2);
    cJSON_Delete (json);
    assert_int_equal (s_call (f, f->ana, "GET", P, f->ana_bot2, NULL, NULL, &json), 200);
    assert_int_equal (cJSON_GetArraySize (cJSON_GetObjectItem (json, "rows")), 0);
    cJSON_Delete (json);
}

static void
test_bots (void **state)
{
    s_fixture_t *f = *state;
    SKIP_WITHOUT_PG (f);
    cJSON *json = NULL;
    assert_int_equal (s_call (f, f->ana, "GET", "/bots", 0, NULL, NULL, &json), 200);
    const cJSON *rows = cJSON_GetObjectItem (json, "rows");
    assert_int_equal (cJSON_GetArraySize (rows), 2);
    assert_string_equal (s_str (cJSON_GetArrayItem (rows, 0), "username"), "ana_one_bot");
    assert_false (cJSON_IsTrue (cJSON_GetObjectItem (cJSON_GetArrayItem (rows, 0), "webhook")));
    cJSON_Delete (json);
    assert_int_equal (s_call (f, f->ana, "PATCH", "/bots/:id", f->ana_bot2, NULL,
                              "{\"enabled\": false}", &json),
                      200);
    assert_false (cJSON_IsTrue (cJSON_GetObjectItem (json, "enabled")));
    cJSON_Delete (json);
    char sql[128];
    snprintf (sql, sizeof sql, "SELECT enabled FROM bots WHERE id = %" PRId64, f->ana_bot2);
    assert_string_equal (s_text (f->pg, sql), "f");
    s_error_of (f, f->ana, "PATCH", "/bots/:id", f->ana_bot2, "{\"enabled\": \"no\"}", 400);
    s_error_of (f, f->ana, "PATCH", "/bots/:id", f->ana_bot2, "{}", 400);
    s_error_of (f, f->ana, "GET", "/bots/:id", 999999, NULL, 404);
    //  POST /bots: refused before any network call (getMe is tested over
    //  HTTP in test_api_admin): a malformed token, a bot registered already.
    s_error_of (f, f->ana, "POST", "/bots", 0, "{}", 400);
    s_error_of (f, f->ana, "POST", "/bots", 0, "{\"token\": 7}", 400);
    const char *msg = s_error_of (f, f->ana, "POST", "/bots", 0, "{\"token\": \"abc:def\"}", 400);
    assert_null (strstr (msg, "abc:def"));
    msg = s_error_of (f, f->bea, "POST", "/bots", 0,
                      "{\"token\": \"1001:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ\"}", 409);
    assert_null (strstr (msg, "AAHdq"));
    assert_int_equal (s_num (f->pg, "SELECT count(*) FROM bots"), 3);
}

static void
test_dlq (void **state)
{
    s_fixture_t *f = *state;
    SKIP_WITHOUT_PG (f);
    int64_t ids[5];
    for (int i = 0; i < 5; i++)
        ids[i] = s_dead_letter (f, f->ana, i % 2 ? "111" : "333", i);
    s_dead_letter (f, f->bea, "222", 9);
    //  Pages of 2, newest first, then the last page with no cursor.
    cJSON *json = NULL;
    assert_int_equal (s_call (f, f->ana, "GET", "/dlq", 0, "limit=2", NULL, &json), 200);
    const cJSON *items = cJSON_GetObjectItem (json, "items");
    assert_int_equal (cJSON_GetArraySize (items), 2);
    assert_int_equal (s_int (cJSON_GetArrayItem (items, 0), "id"), ids[4]);
    char query[64];
    snprintf (query, sizeof query, "limit=2&cursor=%s", s_str (json, "next_cursor"));
    cJSON_Delete (json);
    assert_int_equal (s_call (f, f->ana, "GET", "/dlq", 0, query, NULL, &json), 200);
    items = cJSON_GetObjectItem (json, "items");
    assert_int_equal (s_int (cJSON_GetArrayItem (items, 0), "id"), ids[2]);
    assert_int_equal (s_int (cJSON_GetArrayItem (items, 1), "id"), ids[1]);
    snprintf (query, sizeof query, "limit=2&cursor=%s", s_str (json, "next_cursor"));
    cJSON_Delete (json);
    assert_int_equal (s_call (f, f->ana, "GET", "/dlq", 0, query, NULL, &json), 200);
    assert_int_equal (cJSON_GetArraySize (cJSON_GetObjectItem (json, "items")), 1);
    assert_true (cJSON_IsNull (cJSON_GetObjectItem (json, "next_cursor")));
    cJSON_Delete (json);
    //  The pixel filter; bea's rows never show.
    assert_int_equal (s_call (f, f->ana, "GET", "/dlq", 0, "pixel=111", NULL, &json), 200);
    assert_int_equal (cJSON_GetArraySize (cJSON_GetObjectItem (json, "items")), 2);
    cJSON_Delete (json);
    assert_int_equal (s_call (f, f->ana, "GET", "/dlq", 0, "pixel=222", NULL, &json), 200);
    assert_int_equal (cJSON_GetArraySize (cJSON_GetObjectItem (json, "items")), 0);
    cJSON_Delete (json);
    assert_int_equal (s_call (f, f->ana, "GET", "/dlq", 0, "limit=0", NULL, NULL), 400);
    assert_int_equal (s_call (f, f->ana, "GET", "/dlq", 0, "limit=201", NULL, NULL), 400);
    assert_int_equal (s_call (f, f->ana, "GET", "/dlq", 0, "cursor=abc", NULL, NULL), 400);
    assert_int_equal (s_call (f, f->ana, "GET", "/dlq", 0, "pixel=x1", NULL, NULL), 400);
    //  Replay: once replayed (by the sender), 409; the list hides it.
    assert_int_equal (S_STATUS (f, f->ana, "POST", "/dlq/:id/replay", ids[0], NULL), 200);
    char sql[128];
    snprintf (sql, sizeof sql, "UPDATE dead_letters SET replayed_at = now() WHERE id = %" PRId64,
              ids[0]);
    s_exec_ok (f->pg, sql);
    s_error_of (f, f->ana, "POST", "/dlq/:id/replay", ids[0], NULL, 409);
    s_error_of (f, f->ana, "POST", "/dlq/:id/replay", 999999, NULL, 404);
    //  The shared statement, as the command line calls it: --all --pixel 111.
    long n = 0;
    char err[256];
    assert_int_equal (rst_dlq_replay (f->pg, 0, 0, "111", &n, err, sizeof err), 0);
    assert_int_equal (n, 2);
}

//  Every route, on bea's behalf, with ana's ids: 404, nothing changed.
static void
test_other_owner (void **state)
{
    s_fixture_t *f = *state;
    SKIP_WITHOUT_PG (f);
    char body[256];
    snprintf (body, sizeof body, "{\"slug\": \"anas\", \"pixel\": %" PRId64 ", \"bots\":"
              " [{\"bot_id\": %" PRId64 "}]}", f->ana_pixel, f->ana_bot1);
    cJSON *json = NULL;
    assert_int_equal (s_call (f, f->ana, "POST", "/pools", 0, NULL, body, &json), 201);
    int64_t pool = s_int (json, "id");
    cJSON_Delete (json);
    assert_int_equal (s_call (f, f->ana, "POST", "/bots/:id/offers", f->ana_bot1, NULL,
                              "{\"name\": \"a\", \"price_cents\": 100, \"deliver_text\": \"x\"}",
                              &json),
                      201);
    int64_t offer = s_int (json, "id");
    cJSON_Delete (json);
    int64_t dl = s_dead_letter (f, f->ana, "111", 1);

    char *before = s_snapshot (f);
    int64_t b = f->bea;
    s_error_of (f, b, "PATCH", "/pixels/:id", f->ana_pixel, "{\"test_event_code\": \"X\"}", 404);
    s_error_of (f, b, "GET", "/bots/:id", f->ana_bot1, NULL, 404);
    s_error_of (f, b, "PATCH", "/bots/:id", f->ana_bot1, "{\"enabled\": false}", 404);
    s_error_of (f, b, "GET", "/pools/:id", pool, NULL, 404);
    s_error_of (f, b, "PATCH", "/pools/:id", pool, "{\"enabled\": false}", 404);
    s_error_of (f, b, "GET", "/bots/:id/offers", f->ana_bot1, NULL, 404);
    s_error_of (f, b, "POST", "/bots/:id/offers", f->ana_bot1,
                "{\"name\": \"a\", \"price_cents\": 100, \"deliver_text\": \"x\"}", 404);
    s_error_of (f, b, "PATCH", "/offers/:id", offer, "{\"enabled\": false}", 404);
    s_error_of (f, b, "GET", "/dlq/:id", dl, NULL, 404);
    s_error_of (f, b, "POST", "/dlq/:id/replay", dl, NULL, 404);
    //  Bea's own pool may not take ana's pixel or bots.
    snprintf (body, sizeof body, "{\"slug\": \"beas\", \"pixel\": %" PRId64 ", \"bots\":"
              " [{\"bot_id\": %" PRId64 "}]}", f->ana_pixel, f->bea_bot);
    s_error_of (f, b, "POST", "/pools", 0, body, 404);
    snprintf (body, sizeof body, "{\"slug\": \"beas\", \"pixel\": %" PRId64 ", \"bots\":"
              " [{\"bot_id\": %" PRId64 "}]}", f->bea_pixel, f->ana_bot2);
    s_error_of (f, b, "POST", "/pools", 0, body, 404);
    //  Her lists hold none of ana's.
    const char *lists[] = {"/pixels", "/bots", "/pools", "/dlq"};
    for (int i = 0; i < 4; i++) {
        assert_int_equal (s_call (f, b, "GET", lists[i], 0, NULL, NULL, &json), 200);
        char *text = cJSON_PrintUnformatted (json);
        assert_null (strstr (text, "\"111\""));
        assert_null (strstr (text, "ana_"));
        assert_null (strstr (text, "anas"));
        free (text);
        cJSON_Delete (json);
    }
    char *after = s_snapshot (f);
    assert_string_equal (before, after);
    free (before);
    free (after);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_tour, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_pixels, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_pools, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_offers, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_bots, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_dlq, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_other_owner, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
