/*  rst_auth — dashboard accounts: login, sessions, CSRF, login rate limits.

    Routes (rst_auth_routes, below /api/v1):

      POST /login   public. Content-Type must be application/json (415: a
                    cross-site form cannot post it). Body {email, password}.
                    Rate limits first, from login_failures: more than
                    RST_AUTH_IP_LIMIT failures from the client's address,
                    or RST_AUTH_USER_LIMIT for the email, within
                    RST_AUTH_WINDOW_S → 429 with Retry-After (the seconds
                    until the oldest counted failure leaves the window);
                    nothing is verified then. The password is checked with
                    argon2id (rst_password_verify); an unknown email is
                    checked against a dummy hash, so both cost the same and
                    get the same 401 {"error":"wrong email or password"}
                    (and both count as failures for the address and the
                    email). Logins run one at a time on the API's login
                    lane (rst_auth_route_is_slow): each check is ~50-100 ms
                    of CPU and 64 MiB, and must never occupy the general
                    API workers. Success: a session with a
                    32-byte random token, sent as the cookie
                    `rastro_session=<token>; Path=/; HttpOnly;
                    SameSite=Strict; Max-Age=<ttl>` plus `; Secure` when the
                    request came over TLS or a trusted TLS proxy; only the
                    token's SHA-256 is stored; the session's own random CSRF
                    token is in the answer {user:{id,email,timezone}, csrf}.
                    The email's failures are forgotten.
      POST /logout  session + CSRF. Deletes the session and, in the same
                    statement, NOTIFYs rastro_sessions with the user id (the
                    broadcaster closes the feeds opened with that session,
                    code 4001); clears the cookie (Max-Age=0), 204.
      GET /me       session. {user, csrf, ws_url}; refreshes the cookie's
                    Max-Age. ws_url is RASTRO_WS_PUBLIC_URL when set, else
                    ws[s]://<Host header without port>:<RASTRO_WS_PORT>/ws
                    (wss when the request is secure).

    Sessions slide: a session expires RST_AUTH_SESSION_TTL_S after it was
    last seen; last_seen_at / expires_at are written at most once per
    RST_AUTH_TOUCH_S. Expired sessions and old failures are deleted on
    each successful login. The token (cookie value) is 43 characters of
    unpadded base64url and is never logged.
*/
#ifndef RST_AUTH_H
#define RST_AUTH_H

#include "rst_api.h"
#include "rst_config.h"

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#define RST_AUTH_SESSION_TTL_S  (14 * 86400)
#define RST_AUTH_TOUCH_S        60
#define RST_AUTH_WINDOW_S       (15 * 60)
#define RST_AUTH_IP_LIMIT       10
#define RST_AUTH_USER_LIMIT     5
#define RST_AUTH_TOKEN_LEN      43      //  base64url of 32 bytes, no padding
#define RST_AUTH_PASSWORD_MAX   1024    //  bytes; longer: 401 without hashing
#define RST_AUTH_WS_PORT        8090    //  default of RASTRO_WS_PORT

//  Hands rst_auth the process's config (ws_port, ws_public_url), borrowed
//  for the life of the process. Called by rst_api_new before any worker
//  starts; without it /me uses the defaults.
void rst_auth_configure (const rst_config_t *cfg);

//  Looks up the session whose cookie value is TOKEN (the raw cookie value;
//  only its SHA-256 is looked up). When it is live (not expired), fills
//  *USER_ID, the user's time zone into TZ (TZLEN bytes) and, when CSRF is
//  not NULL, the session's CSRF token into CSRF (CSRFLEN bytes), slides
//  its expiry (at most once per RST_AUTH_TOUCH_S) and returns 1. Returns 0
//  for an unknown, malformed or expired token, -1 on a database error
//  (with a reason in ERR). Never logs the token.
int rst_auth_session_lookup (PGconn *db, const char *token, int64_t *user_id, char *tz,
                             size_t tzlen, char *csrf, size_t csrflen, char *err, size_t errlen);

//  1 if ROUTE's handler checks passwords (POST /login): rst_api runs such
//  routes on its login lane, one at a time, apart from the other routes.
int rst_auth_route_is_slow (const rst_api_route_t *route);

//  The ws_url /me answers for a request with Host header HOST (may be
//  NULL) over a SECURE connection or not, into OUT. Exposed for tests.
void rst_auth_ws_url (const char *host, int secure, char *out, size_t outlen);

#endif
