/*  rst_auth — login, logout, /me, the session lookup and the login rate
    limits (see rst_auth.h for the rules).

    Runs on the API worker threads (rst_api.c), each with its own PGconn;
    POST /login on the login lane's single worker (rst_auth_route_is_slow).
    The only state shared between threads: the config pointer (set once
    before the workers start, read-only afterwards) and the dummy hash
    (made once, pthread_once).
*/
#include "rst_auth.h"
#include "rst_db.h"
#include "rst_log.h"
#include "rst_secret.h"

#include <ctype.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_EMAIL_MAX    254
#define S_CSRF_BYTES   32
#define S_TOKEN_BYTES  32
#define S_STR2(x)      #x
#define S_STR(x)       S_STR2 (x)

static const rst_config_t *s_cfg;           //  set once by rst_auth_configure
static pthread_once_t s_dummy_once = PTHREAD_ONCE_INIT;
static char s_dummy_hash[RST_PASSWORD_HASH_MAX];

void
rst_auth_configure (const rst_config_t *cfg)
{
    s_cfg = cfg;
}

static void
s_make_dummy (void)
{
    unsigned char raw[16];
    char pw[sizeof raw * 2 + 1];
    randombytes_buf (raw, sizeof raw);
    sodium_bin2hex (pw, sizeof pw, raw, sizeof raw);
    if (rst_password_hash (pw, s_dummy_hash))
        s_dummy_hash[0] = 0;
}

//  One-line copy of libpq's last message into ERR.
static void
s_db_error (PGconn *db, const char *what, char *err, size_t errlen)
{
    snprintf (err, errlen, "%s: %s", what, PQerrorMessage (db));
    for (char *c = err; *c; c++)
        if (*c == '\n' || *c == '\r')
            *c = ' ';
}

//  1 if TOKEN looks like one of ours (RST_AUTH_TOKEN_LEN base64url chars).
static int
s_token_is_valid (const char *token)
{
    if (!token || strlen (token) != RST_AUTH_TOKEN_LEN)
        return 0;
    for (const char *c = token; *c; c++)
        if (!isalnum ((unsigned char) *c) && *c != '-' && *c != '_')
            return 0;
    return 1;
}

//  Random BYTES bytes as unpadded base64url into OUT (≥ 2 * BYTES).
static void
s_random_text (char *out, size_t outlen, size_t bytes)
{
    unsigned char raw[64];
    randombytes_buf (raw, bytes);
    sodium_bin2base64 (out, outlen, raw, bytes, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero (raw, sizeof raw);
}

static void
s_hash_token (const char *token, unsigned char hash[crypto_hash_sha256_BYTES])
{
    crypto_hash_sha256 (hash, (const unsigned char *) token, strlen (token));
}

int
rst_auth_session_lookup (PGconn *db, const char *token, int64_t *user_id, char *tz, size_t tzlen,
                         char *csrf, size_t csrflen, char *err, size_t errlen)
{
    if (!s_token_is_valid (token))
        return 0;
    unsigned char hash[crypto_hash_sha256_BYTES];
    s_hash_token (token, hash);
    const char *params[] = {(const char *) hash};
    int lengths[] = {sizeof hash}, formats[] = {1};
    //  Prepared: this runs before every API request.
    PGresult *r = rst_db_exec_prepared (db, "rst_auth_session",
                                        "SELECT s.user_id, u.timezone, s.csrf_token, "
                                        "       s.last_seen_at < now() - make_interval(secs => "
                                        S_STR (RST_AUTH_TOUCH_S) ") "
                                        "FROM sessions s JOIN users u ON u.id = s.user_id "
                                        "WHERE s.token_hash = $1 AND s.expires_at > now()",
                                        1, NULL, params, lengths, formats);
    if (PQresultStatus (r) != PGRES_TUPLES_OK) {
        s_db_error (db, "session lookup", err, errlen);
        PQclear (r);
        return -1;
    }
    if (PQntuples (r) == 0) {
        PQclear (r);
        return 0;
    }
    *user_id = strtoll (PQgetvalue (r, 0, 0), NULL, 10);
    if (tz && tzlen)
        snprintf (tz, tzlen, "%s", PQgetvalue (r, 0, 1));
    if (csrf && csrflen)
        snprintf (csrf, csrflen, "%s", PQgetvalue (r, 0, 2));
    int stale = PQgetvalue (r, 0, 3)[0] == 't';
    PQclear (r);
    if (stale) {
        char ttl[16];
        snprintf (ttl, sizeof ttl, "%d", RST_AUTH_SESSION_TTL_S);
        const char *p2[] = {(const char *) hash, ttl};
        int l2[] = {sizeof hash, 0}, f2[] = {1, 0};
        r = PQexecParams (db,
                          "UPDATE sessions SET last_seen_at = now(), "
                          "       expires_at = now() + make_interval(secs => $2::int) "
                          "WHERE token_hash = $1",
                          2, NULL, p2, l2, f2, 0);
        if (PQresultStatus (r) != PGRES_COMMAND_OK)
            rst_warn ("auth", "cannot slide a session's expiry: %s", PQerrorMessage (db));
        PQclear (r);
    }
    return 1;
}

// ---------------------------------------------------------------------------
//  Cookies and ws_url

//  A Set-Cookie value (malloc'd) for TOKEN (NULL: clear it).
static char *
s_cookie (const char *token, int secure)
{
    char *out = malloc (256);
    if (out)
        snprintf (out, 256, "%s=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%d%s",
                  RST_API_COOKIE, token ? token : "", token ? RST_AUTH_SESSION_TTL_S : 0,
                  secure ? "; Secure" : "");
    return out;
}

void
rst_auth_ws_url (const char *host, int secure, char *out, size_t outlen)
{
    if (s_cfg && s_cfg->ws_public_url[0]) {
        snprintf (out, outlen, "%s", s_cfg->ws_public_url);
        return;
    }
    //  Host without its port; anything odd gives "localhost".
    char name[256] = "localhost";
    if (host && *host) {
        size_t n;
        int ok = 1;
        if (host[0] == '[') {
            const char *close = strchr (host, ']');
            n = close ? (size_t) (close - host) + 1 : 0;
            for (size_t i = 1; ok && i + 1 < n; i++)
                ok = isxdigit ((unsigned char) host[i]) || host[i] == ':' || host[i] == '.';
            ok = ok && n > 2 && (host[n] == 0 || host[n] == ':');
        }
        else {
            n = strcspn (host, ":");
            for (size_t i = 0; ok && i < n; i++)
                ok = isalnum ((unsigned char) host[i]) || host[i] == '.' || host[i] == '-';
            ok = ok && n > 0;
        }
        if (ok && n < sizeof name) {
            memcpy (name, host, n);
            name[n] = 0;
        }
    }
    snprintf (out, outlen, "%s://%s:%d/ws", secure ? "wss" : "ws", name,
              s_cfg && s_cfg->ws_port ? s_cfg->ws_port : RST_AUTH_WS_PORT);
}

static cJSON *
s_user_json (const char *id, const char *email, const char *tz)
{
    cJSON *user = cJSON_CreateObject ();
    if (user) {
        cJSON_AddNumberToObject (user, "id", (double) strtoll (id, NULL, 10));
        cJSON_AddStringToObject (user, "email", email);
        cJSON_AddStringToObject (user, "timezone", tz);
    }
    return user;
}

// ---------------------------------------------------------------------------
//  Rate limits

//  Seconds until KEY has fewer than LIMIT failures in the window (0: not
//  blocked now), or -1 on a database error. Forgets KEY's old failures.
static int
s_blocked_for (PGconn *db, const char *key, int limit)
{
    char window[16], offset[16];
    snprintf (window, sizeof window, "%d", RST_AUTH_WINDOW_S);
    snprintf (offset, sizeof offset, "%d", limit - 1);
    const char *params[] = {key, window};
    PGresult *r = PQexecParams (db,
                                "DELETE FROM login_failures WHERE key = $1 "
                                "AND at <= now() - make_interval(secs => $2::int)",
                                2, NULL, params, NULL, NULL, 0);
    int ok = PQresultStatus (r) == PGRES_COMMAND_OK;
    PQclear (r);
    if (!ok)
        return -1;
    //  The LIMIT-th most recent failure: once it leaves the window, fewer
    //  than LIMIT remain.
    const char *p2[] = {key, window, offset};
    r = PQexecParams (db,
                      "SELECT ceil(extract(epoch FROM at + make_interval(secs => $2::int) - now()))::int "
                      "FROM login_failures WHERE key = $1 "
                      "AND at > now() - make_interval(secs => $2::int) "
                      "ORDER BY at DESC OFFSET $3::int LIMIT 1",
                      3, NULL, p2, NULL, NULL, 0);
    if (PQresultStatus (r) != PGRES_TUPLES_OK) {
        PQclear (r);
        return -1;
    }
    int secs = 0;
    if (PQntuples (r) == 1) {
        secs = atoi (PQgetvalue (r, 0, 0));
        if (secs < 1)
            secs = 1;
    }
    PQclear (r);
    return secs;
}

//  Records one failure for both keys. Returns 0 or -1.
static int
s_record_failure (PGconn *db, const char *ip_key, const char *user_key)
{
    const char *params[] = {ip_key, user_key};
    PGresult *r = PQexecParams (db, "INSERT INTO login_failures (key) VALUES ($1), ($2)", 2, NULL,
                                params, NULL, NULL, 0);
    int ok = PQresultStatus (r) == PGRES_COMMAND_OK;
    PQclear (r);
    return ok ? 0 : -1;
}

// ---------------------------------------------------------------------------
//  Handlers

//  1 if the media type of CTYPE is application/json (any parameters).
static int
s_is_json (const char *ctype)
{
    static const char want[] = "application/json";
    size_t n = sizeof want - 1;
    return ctype && !strncasecmp (ctype, want, n)
           && (ctype[n] == 0 || ctype[n] == ';' || ctype[n] == ' ' || ctype[n] == '\t');
}

static void
s_wipe_string (cJSON *item)
{
    if (cJSON_IsString (item) && item->valuestring)
        sodium_memzero (item->valuestring, strlen (item->valuestring));
}

//  Checks EMAIL/PASSWORD; see the banner. Returns 0 (RES filled) or -1.
static int
s_login_checked (const rst_api_req_t *req, PGconn *db, rst_api_res_t *res, const char *email,
                 const char *password)
{
    char ip_key[80], user_key[S_EMAIL_MAX + 8];
    snprintf (ip_key, sizeof ip_key, "ip:%s", req->client_ip);
    snprintf (user_key, sizeof user_key, "user:%s", email);
    int ip_wait = s_blocked_for (db, ip_key, RST_AUTH_IP_LIMIT);
    int user_wait = ip_wait < 0 ? -1 : s_blocked_for (db, user_key, RST_AUTH_USER_LIMIT);
    if (ip_wait < 0 || user_wait < 0) {
        rst_error ("auth", "login rate limit check failed: %s", PQerrorMessage (db));
        return -1;
    }
    if (ip_wait || user_wait) {
        rst_info ("auth", "login refused (rate limit) from %s", req->client_ip);
        rst_api_error (res, 429, "too many failed logins, try again later");
        res->retry_after = ip_wait > user_wait ? ip_wait : user_wait;
        return 0;
    }

    const char *params[] = {email};
    PGresult *r = PQexecParams (db, "SELECT id, password_hash, timezone FROM users WHERE email = $1",
                                1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus (r) != PGRES_TUPLES_OK) {
        rst_error ("auth", "user lookup failed: %s", PQerrorMessage (db));
        PQclear (r);
        return -1;
    }
    int found = PQntuples (r) == 1;
    pthread_once (&s_dummy_once, s_make_dummy);
    //  The same argon2id work whether the email exists or not.
    int ok = rst_password_verify (found ? PQgetvalue (r, 0, 1) : s_dummy_hash, password) && found;
    if (!ok) {
        PQclear (r);
        if (s_record_failure (db, ip_key, user_key)) {
            rst_error ("auth", "cannot record a failed login: %s", PQerrorMessage (db));
            return -1;
        }
        rst_info ("auth", "failed login from %s", req->client_ip);
        return rst_api_error (res, 401, "wrong email or password");
    }
    char id[24], tz[64];
    snprintf (id, sizeof id, "%s", PQgetvalue (r, 0, 0));
    snprintf (tz, sizeof tz, "%s", PQgetvalue (r, 0, 2));
    PQclear (r);

    char token[RST_AUTH_TOKEN_LEN + 1], csrf[RST_AUTH_TOKEN_LEN + 1], ttl[16];
    s_random_text (token, sizeof token, S_TOKEN_BYTES);
    s_random_text (csrf, sizeof csrf, S_CSRF_BYTES);
    snprintf (ttl, sizeof ttl, "%d", RST_AUTH_SESSION_TTL_S);
    unsigned char hash[crypto_hash_sha256_BYTES];
    s_hash_token (token, hash);
    const char *p2[] = {(const char *) hash, id, csrf, ttl, req->client_ip, req->user_agent};
    int l2[] = {sizeof hash, 0, 0, 0, 0, 0}, f2[] = {1, 0, 0, 0, 0, 0};
    r = PQexecParams (db,
                      "INSERT INTO sessions (token_hash, user_id, csrf_token, expires_at, ip, user_agent) "
                      "VALUES ($1, $2, $3, now() + make_interval(secs => $4::int), $5, $6)",
                      6, NULL, p2, l2, f2, 0);
    int stored = PQresultStatus (r) == PGRES_COMMAND_OK;
    PQclear (r);
    if (!stored) {
        rst_error ("auth", "cannot store a session: %s", PQerrorMessage (db));
        return -1;
    }
    //  Housekeeping: this user's failures, expired sessions, old failures.
    const char *p3[] = {user_key};
    PQclear (PQexecParams (db, "DELETE FROM login_failures WHERE key = $1", 1, NULL, p3, NULL, NULL, 0));
    PQclear (PQexec (db, "DELETE FROM sessions WHERE expires_at < now()"));
    PQclear (PQexec (db, "DELETE FROM login_failures WHERE at < now() - interval '1 day'"));

    cJSON *json = cJSON_CreateObject ();
    cJSON *user = s_user_json (id, email, tz);
    if (!json || !user || !cJSON_AddItemToObject (json, "user", user)) {
        cJSON_Delete (json);
        cJSON_Delete (user);
        return -1;
    }
    cJSON_AddStringToObject (json, "csrf", csrf);
    res->set_cookie = s_cookie (token, req->secure);
    sodium_memzero (token, sizeof token);
    if (!res->set_cookie) {
        cJSON_Delete (json);
        return -1;
    }
    rst_info ("auth", "user %s logged in from %s", id, req->client_ip);
    return rst_api_ok (res, json);
}

static int
s_login (const rst_api_req_t *req, PGconn *db, rst_api_res_t *res)
{
    if (!s_is_json (req->content_type))
        return rst_api_error (res, 415, "Content-Type must be application/json");
    cJSON *body = rst_api_body_object (req, res);
    if (!body)
        return 0;
    cJSON *email = cJSON_GetObjectItemCaseSensitive (body, "email");
    cJSON *password = cJSON_GetObjectItemCaseSensitive (body, "password");
    int rc;
    if (!cJSON_IsString (email) || !cJSON_IsString (password) || !*email->valuestring
        || !*password->valuestring)
        rc = rst_api_error (res, 400, "email and password are required");
    else if (strlen (email->valuestring) > S_EMAIL_MAX
             || strlen (password->valuestring) > RST_AUTH_PASSWORD_MAX)
        rc = rst_api_error (res, 401, "wrong email or password");
    else {
        char lower[S_EMAIL_MAX + 1];
        size_t n = 0;
        for (const char *c = email->valuestring; *c; c++)
            lower[n++] = (char) tolower ((unsigned char) *c);
        lower[n] = 0;
        rc = s_login_checked (req, db, res, lower, password->valuestring);
    }
    s_wipe_string (password);
    cJSON_Delete (body);
    return rc;
}

static int
s_logout (const rst_api_req_t *req, PGconn *db, rst_api_res_t *res)
{
    unsigned char hash[crypto_hash_sha256_BYTES];
    s_hash_token (req->session_token, hash);
    const char *params[] = {(const char *) hash};
    int lengths[] = {sizeof hash}, formats[] = {1};
    //  One statement: the NOTIFY (payload: the user id) goes out at the
    //  DELETE's commit; the broadcaster then closes the session's live
    //  feeds (rst_broadcaster.h, RST_BROADCASTER_SESSIONS_CHANNEL).
    PGresult *r = PQexecParams (db,
                                "WITH gone AS (DELETE FROM sessions WHERE token_hash = $1 "
                                "              RETURNING user_id) "
                                "SELECT pg_notify ('rastro_sessions', user_id::text) FROM gone",
                                1, NULL, params, lengths, formats, 0);
    int ok = PQresultStatus (r) == PGRES_TUPLES_OK;
    if (!ok)
        rst_error ("auth", "cannot delete a session: %s", PQerrorMessage (db));
    PQclear (r);
    if (!ok)
        return -1;
    res->status = 204;
    res->set_cookie = s_cookie (NULL, req->secure);
    return res->set_cookie ? 0 : -1;
}

static int
s_me (const rst_api_req_t *req, PGconn *db, rst_api_res_t *res)
{
    unsigned char hash[crypto_hash_sha256_BYTES];
    s_hash_token (req->session_token, hash);
    const char *params[] = {(const char *) hash};
    int lengths[] = {sizeof hash}, formats[] = {1};
    PGresult *r = PQexecParams (db,
                                "SELECT u.id, u.email, u.timezone, s.csrf_token "
                                "FROM sessions s JOIN users u ON u.id = s.user_id "
                                "WHERE s.token_hash = $1 AND s.expires_at > now()",
                                1, NULL, params, lengths, formats, 0);
    if (PQresultStatus (r) != PGRES_TUPLES_OK) {
        rst_error ("auth", "/me: %s", PQerrorMessage (db));
        PQclear (r);
        return -1;
    }
    if (PQntuples (r) != 1) {       //  logged out meanwhile
        PQclear (r);
        return rst_api_error (res, 401, "login required");
    }
    cJSON *json = cJSON_CreateObject ();
    cJSON *user = s_user_json (PQgetvalue (r, 0, 0), PQgetvalue (r, 0, 1), PQgetvalue (r, 0, 2));
    if (!json || !user || !cJSON_AddItemToObject (json, "user", user)) {
        PQclear (r);
        cJSON_Delete (json);
        cJSON_Delete (user);
        return -1;
    }
    cJSON_AddStringToObject (json, "csrf", PQgetvalue (r, 0, 3));
    PQclear (r);
    char ws[RST_URL_MAX];
    rst_auth_ws_url (req->host, req->secure, ws, sizeof ws);
    cJSON_AddStringToObject (json, "ws_url", ws);
    res->set_cookie = s_cookie (req->session_token, req->secure);   //  slide Max-Age too
    if (!res->set_cookie) {
        cJSON_Delete (json);
        return -1;
    }
    return rst_api_ok (res, json);
}

int
rst_auth_route_is_slow (const rst_api_route_t *route)
{
    return route && route->fn == s_login;
}

const rst_api_route_t rst_auth_routes[] = {
    {"POST", "/login", s_login, RST_API_PUBLIC},
    {"POST", "/logout", s_logout, 0},
    {"GET", "/me", s_me, 0},
    {NULL, NULL, NULL, 0},
};
