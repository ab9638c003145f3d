#!/usr/bin/env bash
# test_api_auth — the dashboard API's access machinery against a real front
# and PostgreSQL: login (ok, wrong password and unknown email with one 401),
# the session cookie's attributes (HttpOnly, SameSite=Strict, Secure only
# over a trusted TLS proxy), only the token's SHA-256 stored, /me, CSRF on
# writes, logout, expired sessions, login rate limits per address and per
# account (429 + Retry-After), 400/404/405/413/415, 503 when the database is
# down, the static dashboard and its security headers, API metrics — and,
# for EVERY route `rastro-front --list-routes` prints: 401 without a session
# (public ones excepted) and 403 with a session but a missing or wrong CSRF
# token on writes.
. "$(dirname "$0")/lib.sh"
rt_setup api_auth

PW_ANA='correct horse battery'
PW_BOB='bob-password-123'
echo "$PW_ANA" | rastro user add ana@example.com >/dev/null
echo "$PW_BOB" | rastro user add bob@example.com >/dev/null
ANA_ID=$(rt_psql "SELECT id FROM users WHERE email = 'ana@example.com'")

WEB=$RT_DIR/web
mkdir -p "$WEB"
echo '<!doctype html><title>rastro</title><p>painel-de-teste</p>' > "$WEB/index.html"

PORT=$(rt_free_port)
export RASTRO_HTTP_PORT=$PORT RASTRO_TRUSTED_PROXIES=127.0.0.1 RASTRO_WEB_DIR=$WEB \
  RASTRO_WS_PORT=8091 RASTRO_API_THREADS=2
BASE="http://127.0.0.1:$PORT"
API="$BASE/api/v1"
sed 's/^required_acks = .*/required_acks = stored/' "$RASTRO_SOURCE_DIR/topology/local.ini" > "$RT_DIR/topology.ini"
rt_bg "$(rt_bin rastro-front)" --topology "$RT_DIR/topology.ini" --instance 0
FRONT_PID=$RT_LAST_PID
rt_wait_for "front healthz" 30 curl -sf "$BASE/healthz"

# req METHOD URL [CURL ARGS...]: sets CODE, BODY and HDRS (lower-case names, no CR).
req() {
  local method=$1 url=$2; shift 2
  CODE=$(curl -s -X "$method" -o "$RT_DIR/body" -D "$RT_DIR/hdrs" -w '%{http_code}' "$@" "$url")
  BODY=$(cat "$RT_DIR/body")
  HDRS=$(tr -d '\r' < "$RT_DIR/hdrs" | sed 's/^\([^:]*\):/\L\1:/')
}
header() { echo "$HDRS" | awk -v h="$1:" 'tolower($1) == h { sub(/^[^:]*: /, ""); print; exit }'; }
json() { python3 -c 'import json,sys; v=json.loads(sys.argv[1]); [v := v[k] for k in sys.argv[2:]]; print(v)' "$BODY" "$@"; }
# login EMAIL PASSWORD [CURL ARGS...]
login() {
  local email=$1 pw=$2; shift 2
  req POST "$API/login" -H 'Content-Type: application/json' \
    --data-binary "$(python3 -c 'import json,sys; print(json.dumps({"email":sys.argv[1],"password":sys.argv[2]}))' "$email" "$pw")" "$@"
}
cookie_token() { header set-cookie | sed -n 's/^rastro_session=\([^;]*\);.*/\1/p'; }

# --- login ok, the cookie ------------------------------------------------------
login ana@example.com "$PW_ANA"
rt_assert_eq 200 "$CODE" "login: $BODY"
rt_assert_eq ana@example.com "$(json user email)" "login user.email"
rt_assert_eq "$ANA_ID" "$(json user id)" "login user.id"
rt_assert_eq America/Sao_Paulo "$(json user timezone)" "login user.timezone"
CSRF=$(json csrf)
[ ${#CSRF} -ge 32 ] || rt_fail "csrf token too short: $CSRF"
SC=$(header set-cookie)
TOKEN=$(cookie_token)
[[ $TOKEN =~ ^[A-Za-z0-9_-]{43}$ ]] || rt_fail "bad session token in '$SC'"
contains "$SC" "; Path=/" "cookie Path"
contains "$SC" "; HttpOnly" "cookie HttpOnly"
contains "$SC" "; SameSite=Strict" "cookie SameSite"
contains "$SC" "; Max-Age=1209600" "cookie Max-Age"
lacks "$SC" "Secure" "cookie over plain http"
rt_assert_eq "application/json; charset=utf-8" "$(header content-type)" "API content type"
rt_assert_eq "no-store" "$(header cache-control)" "API cache-control"
[ -n "$(header content-length)" ] || rt_fail "API answer without Content-Length"
# Only the SHA-256 of the token is stored.
rt_assert_eq 1 "$(rt_psql "SELECT count(*) FROM sessions WHERE token_hash = sha256(convert_to('$TOKEN', 'UTF8'))")" "session stored by hash"
rt_assert_eq 0 "$(rt_psql "SELECT count(*) FROM sessions WHERE position('$TOKEN' in csrf_token || coalesce(user_agent, '') || coalesce(ip, '')) > 0")" "token stored in clear"
CK=(-H "Cookie: theme=dark; rastro_session=$TOKEN")

# Secure behind a trusted TLS proxy (127.0.0.1 is trusted here).
login ana@example.com "$PW_ANA" -H 'X-Forwarded-Proto: https'
rt_assert_eq 200 "$CODE" "login via TLS proxy"
contains "$(header set-cookie)" "; Secure" "cookie behind a trusted TLS proxy"

# --- /me ----------------------------------------------------------------------
req GET "$API/me" "${CK[@]}"
rt_assert_eq 200 "$CODE" "/me: $BODY"
rt_assert_eq "$CSRF" "$(json csrf)" "/me csrf"
rt_assert_eq ana@example.com "$(json user email)" "/me user"
rt_assert_eq "ws://127.0.0.1:8091/ws" "$(json ws_url)" "/me ws_url"
req GET "$API/me" "${CK[@]}" -H 'Host: painel.example.org:8443'
rt_assert_eq "ws://painel.example.org:8091/ws" "$(json ws_url)" "/me ws_url from Host"
req GET "$API/me" "${CK[@]}" -H 'X-Forwarded-Proto: https'
rt_assert_eq "wss://127.0.0.1:8091/ws" "$(json ws_url)" "/me ws_url behind TLS"
req GET "$API/me"
rt_assert_eq 401 "$CODE" "/me without cookie"
rt_assert_eq "login required" "$(json error)" "401 body"
req GET "$API/me" -H "Cookie: rastro_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
rt_assert_eq 401 "$CODE" "/me with an unknown token"
req GET "$API/me" -H "Cookie: rastro_session=../../etc/passwd"
rt_assert_eq 401 "$CODE" "/me with a malformed token"

# --- wrong password and unknown email: one answer -------------------------------
login ana@example.com 'wrong password!'
rt_assert_eq 401 "$CODE" "wrong password"
WRONG=$BODY
login nobody@example.com 'whatever-password'
rt_assert_eq 401 "$CODE" "unknown email"
rt_assert_eq "$WRONG" "$BODY" "unknown email answers like a wrong password"
rt_assert_eq '{"error":"wrong email or password"}' "$BODY" "401 body"
[ -z "$(header set-cookie)" ] || rt_fail "failed login set a cookie"
login ANA@Example.COM "$PW_ANA"
rt_assert_eq 200 "$CODE" "email is case-insensitive"

# --- bad requests -----------------------------------------------------------------
req POST "$API/login" -H 'Content-Type: text/plain' --data-binary '{"email":"ana@example.com","password":"x"}'
rt_assert_eq 415 "$CODE" "login as text/plain"
req POST "$API/login" --data 'email=ana@example.com&password=x'
rt_assert_eq 415 "$CODE" "login as a form"
req POST "$API/login" -H 'Content-Type: application/json' --data-binary 'not json'
rt_assert_eq 400 "$CODE" "login with a non-JSON body"
req POST "$API/login" -H 'Content-Type: application/json' --data-binary '[1,2]'
rt_assert_eq 400 "$CODE" "login with a JSON array"
req POST "$API/login" -H 'Content-Type: application/json' --data-binary '{"email":"ana@example.com"}'
rt_assert_eq 400 "$CODE" "login without password"
head -c 70000 /dev/zero | tr '\0' 'x' > "$RT_DIR/big"
req POST "$API/login" -H 'Content-Type: application/json' --data-binary "@$RT_DIR/big"
rt_assert_eq 413 "$CODE" "70 kB body"
req GET "$API/no/such/route" "${CK[@]}"
rt_assert_eq 404 "$CODE" "unknown route"
rt_assert_eq "not found" "$(json error)" "404 body"
req GET "$BASE/api/v2/me" "${CK[@]}"
rt_assert_eq 404 "$CODE" "outside /api/v1"
req GET "$API/login"
rt_assert_eq 405 "$CODE" "GET /login"
rt_assert_eq POST "$(header allow)" "405 Allow"
req GET "$API/me/" "${CK[@]}"
rt_assert_eq 404 "$CODE" "trailing slash"

# --- CSRF and logout -------------------------------------------------------------------
req POST "$API/logout" "${CK[@]}"
rt_assert_eq 403 "$CODE" "logout without CSRF token"
rt_assert_eq csrf "$(json error)" "403 body"
req POST "$API/logout" "${CK[@]}" -H "X-CSRF-Token: ${CSRF}x"
rt_assert_eq 403 "$CODE" "logout with a wrong CSRF token"
req POST "$API/logout" -H "X-CSRF-Token: $CSRF"
rt_assert_eq 401 "$CODE" "logout without a session"
req GET "$API/me" "${CK[@]}"
rt_assert_eq 200 "$CODE" "session still live after refused logouts"
req POST "$API/logout" "${CK[@]}" -H "X-CSRF-Token: $CSRF"
rt_assert_eq 204 "$CODE" "logout"
[ -z "$BODY" ] || rt_fail "204 with a body: $BODY"
contains "$(header set-cookie)" "rastro_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0" "logout clears the cookie"
req GET "$API/me" "${CK[@]}"
rt_assert_eq 401 "$CODE" "/me after logout"

# --- expired session -------------------------------------------------------------------
login ana@example.com "$PW_ANA"
TOKEN=$(cookie_token)
CSRF=$(json csrf)
CK=(-H "Cookie: rastro_session=$TOKEN")
req GET "$API/me" "${CK[@]}"
rt_assert_eq 200 "$CODE" "fresh session"
rt_psql "UPDATE sessions SET expires_at = now() - interval '1 second' WHERE token_hash = sha256(convert_to('$TOKEN', 'UTF8'))" >/dev/null
req GET "$API/me" "${CK[@]}"
rt_assert_eq 401 "$CODE" "expired session"
# Sliding: a session seen over a minute ago gets a new expiry when used.
login ana@example.com "$PW_ANA"
TOKEN=$(cookie_token)
CSRF=$(json csrf)
CK=(-H "Cookie: rastro_session=$TOKEN")
rt_psql "UPDATE sessions SET last_seen_at = now() - interval '2 days', expires_at = now() + interval '1 hour' WHERE token_hash = sha256(convert_to('$TOKEN', 'UTF8'))" >/dev/null
req GET "$API/me" "${CK[@]}"
rt_assert_eq 200 "$CODE" "session near its expiry"
rt_assert_eq t "$(rt_psql "SELECT expires_at > now() + interval '13 days' FROM sessions WHERE token_hash = sha256(convert_to('$TOKEN', 'UTF8'))")" "expiry slides"

# --- every route: 401 without a session, 403 on writes without the right CSRF token ----
"$(rt_bin rastro-front)" --list-routes > "$RT_DIR/routes.txt"
[ "$(wc -l < "$RT_DIR/routes.txt")" -ge 3 ] || rt_fail "--list-routes printed too little"
grep -qx 'POST /api/v1/login public' "$RT_DIR/routes.txt" || rt_fail "login not listed as public"
grep -qx 'GET /api/v1/me session' "$RT_DIR/routes.txt" || rt_fail "/me not listed"
grep -qx 'POST /api/v1/logout session,csrf' "$RT_DIR/routes.txt" || rt_fail "/logout not listed"
checked=0
while read -r method pattern flags; do
  [[ $method =~ ^(GET|POST|PUT|PATCH|DELETE)$ ]] || rt_fail "bad --list-routes line: $method $pattern $flags"
  url="$BASE${pattern//:id/1}"
  body=(-H 'Content-Type: application/json' --data-binary '{}')
  [ "$method" = GET ] && body=()
  if [ "$flags" != public ]; then
    req "$method" "$url" "${body[@]}"
    rt_assert_eq 401 "$CODE" "$method $pattern without a session"
    if [ "$method" = GET ]; then    # writes are not made for real here
      req "$method" "$url" -H "Cookie: x=1; rastro_session=$TOKEN"
      [ "$CODE" != 401 ] && [ "$CODE" != 403 ] || rt_fail "GET $pattern with a session: $CODE"
    fi
  fi
  if [ "$flags" = session,csrf ]; then
    req "$method" "$url" "${body[@]}" "${CK[@]}"
    rt_assert_eq 403 "$CODE" "$method $pattern without CSRF token"
    req "$method" "$url" "${body[@]}" "${CK[@]}" -H "X-CSRF-Token: not-the-token"
    rt_assert_eq 403 "$CODE" "$method $pattern with a wrong CSRF token"
  fi
  checked=$((checked + 1))
done < "$RT_DIR/routes.txt"
rt_log "access checks on $checked routes"
req GET "$API/me" "${CK[@]}"
rt_assert_eq 200 "$CODE" "session still live after the route sweep"

# --- rate limits -------------------------------------------------------------------------
# Per account: 5 failures for bob (from one address), then even his password gets 429.
for i in 1 2 3 4 5; do
  login bob@example.com "wrong-$i" -H 'X-Forwarded-For: 203.0.113.5'
  rt_assert_eq 401 "$CODE" "bob bad password $i"
done
login bob@example.com "$PW_BOB" -H 'X-Forwarded-For: 198.51.100.7'
rt_assert_eq 429 "$CODE" "bob locked after 5 failures (from another address)"
ra=$(header retry-after)
[[ $ra =~ ^[0-9]+$ ]] && [ "$ra" -ge 1 ] && [ "$ra" -le 900 ] || rt_fail "bad Retry-After '$ra'"
login ana@example.com "$PW_ANA" -H 'X-Forwarded-For: 203.0.113.5'
rt_assert_eq 200 "$CODE" "another account from the same address (5 failures < 10)"
# Per address: 10 failures from one address, then even a good login from it gets 429.
for i in $(seq 1 10); do
  login "ghost$i@example.com" 'some-password' -H 'X-Forwarded-For: 203.0.113.9'
  rt_assert_eq 401 "$CODE" "failure $i from 203.0.113.9"
done
login ana@example.com "$PW_ANA" -H 'X-Forwarded-For: 203.0.113.9'
rt_assert_eq 429 "$CODE" "address locked after 10 failures"
[ -n "$(header retry-after)" ] || rt_fail "429 without Retry-After"
login ana@example.com "$PW_ANA" -H 'X-Forwarded-For: 203.0.113.10'
rt_assert_eq 200 "$CODE" "another address still logs in"
# The window passes: failures older than 15 minutes do not count.
rt_psql "UPDATE login_failures SET at = at - interval '16 minutes'" >/dev/null
login bob@example.com "$PW_BOB" -H 'X-Forwarded-For: 198.51.100.7'
rt_assert_eq 200 "$CODE" "bob after the window"

# --- static dashboard ----------------------------------------------------------------------
req GET "$BASE/"
rt_assert_eq 200 "$CODE" "GET /"
contains "$BODY" "painel-de-teste" "index.html served"
rt_assert_eq nosniff "$(header x-content-type-options)" "nosniff"
rt_assert_eq DENY "$(header x-frame-options)" "X-Frame-Options"
rt_assert_eq same-origin "$(header referrer-policy)" "Referrer-Policy"
contains "$(header content-security-policy)" "script-src 'self' 'unsafe-eval'" "CSP"
contains "$(header content-security-policy)" "frame-ancestors 'none'" "CSP frame-ancestors"
rt_assert_eq no-cache "$(header cache-control)" "static files revalidate"
req GET "$BASE/nope.js"
rt_assert_eq 404 "$CODE" "missing static file"
req GET "$BASE/healthz"
rt_assert_eq 200 "$CODE" "healthz untouched"

# --- metrics ------------------------------------------------------------------------------------
M=$(curl -s "$BASE/metrics")
n401=$(echo "$M" | awk '$1 == "rastro_api_requests_total{status=\"401\"}" { print $2 }')
[ -n "$n401" ] && [ "${n401%.*}" -ge 10 ] || rt_fail "rastro_api_requests_total{status=401} = '$n401'"
echo "$M" | grep -q '^rastro_api_duration_seconds_count' || rt_fail "no API latency histogram"
echo "$M" | grep -q '^rastro_api_queue_depth' || rt_fail "no API queue depth"

# --- clients that go away, then a stop with logins still queued: a clean exit ------------------
for i in 1 2 3 4; do
  curl -s -o /dev/null --max-time 0.05 -H 'Content-Type: application/json' \
    --data-binary '{"email":"ana@example.com","password":"gone-before-the-answer"}' "$API/login" || true
done
CURLS=()
for i in 1 2 3; do
  curl -s -o /dev/null -H 'Content-Type: application/json' \
    --data-binary '{"email":"ana@example.com","password":"queued-at-stop"}' "$API/login" &
  CURLS+=($!)
done
sleep 0.2
kill "$FRONT_PID"
wait "$FRONT_PID" || rt_fail "the front did not exit cleanly (status $?): see its log"
wait "${CURLS[@]}" || true

# --- a second front: no trusted proxy, no dashboard, then no database ---------------------------
export RASTRO_DATA_DIR=$RT_DIR/data2
mkdir -p "$RASTRO_DATA_DIR"
PORT2=$(rt_free_port)
BASE2="http://127.0.0.1:$PORT2"
RASTRO_HTTP_PORT=$PORT2 RASTRO_TRUSTED_PROXIES= RASTRO_WEB_DIR=$RT_DIR/no-such-dir \
  rt_bg "$(rt_bin rastro-front)" --topology "$RT_DIR/topology.ini" --instance 0
F2=$RT_LAST_PID
rt_wait_for "second front" 30 curl -sf "$BASE2/healthz"
API=$BASE2/api/v1
login ana@example.com "$PW_ANA" -H 'X-Forwarded-Proto: https'
rt_assert_eq 200 "$CODE" "login on the second front"
lacks "$(header set-cookie)" "Secure" "X-Forwarded-Proto from an untrusted peer"
req GET "$BASE2/"
rt_assert_eq 404 "$CODE" "/ without a built dashboard"
contains "$BODY" "scripts/setup" "hint to build the dashboard"
kill "$F2"
wait "$F2" || rt_fail "the second front did not exit cleanly (status $?)"
RASTRO_HTTP_PORT=$PORT2 RASTRO_DATABASE_URL="host=$RT_DIR/no-pg-here dbname=x user=x" \
  rt_bg "$(rt_bin rastro-front)" --topology "$RT_DIR/topology.ini" --instance 0
rt_wait_for "front without a database" 30 curl -s -o /dev/null "$BASE2/metrics"
req GET "$API/me" "${CK[@]}"
rt_assert_eq 503 "$CODE" "API without a database"
rt_assert_eq "database unavailable" "$(json error)" "503 body"
[ -n "$(header retry-after)" ] || rt_fail "503 without Retry-After"
req GET "$API/me" "${CK[@]}"
rt_assert_eq 503 "$CODE" "API without a database, again"
req GET "$API/nothing"
rt_assert_eq 404 "$CODE" "routing needs no database"

# --- no secret in the logs ------------------------------------------------------------------------
for f in "$RT_DIR"/*.log; do
  for s in "$TOKEN" "$CSRF" "$PW_ANA" "$PW_BOB"; do
    ! grep -qF -- "$s" "$f" || rt_fail "a secret is in $f"
  done
done
rt_log "ok"
