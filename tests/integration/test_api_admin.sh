#!/usr/bin/env bash
# test_api_admin — the dashboard's management routes (lib/rst_apiadmin.c)
# over real HTTP through the front, with two users, ana and bea.
#
# For pixels, bots, pools, offers and dead letters: the success paths (and
# that the command line sees what the API stored, the token sealed and never
# answered nor logged), validation 400s, 409s (duplicate pixel, slug in use,
# a dead letter replayed already), that a pool made through the API goes
# live in the front (/go/<slug>) and off again when disabled (NOTIFY
# rastro_config), and that `rastro dlq list` sees an API replay. Then bea,
# logged in, gives ana's ids to every route: 404 each time, her lists show
# nothing of ana's, and none of ana's rows changed.
. "$(dirname "$0")/lib.sh"
rt_setup api_admin

PW='senha forte 123'
printf '%s\n' "$PW" | rastro user add ana@example.com >/dev/null
printf '%s\n' "$PW" | rastro user add bea@example.com >/dev/null
ANA=$(rt_psql "SELECT id FROM users WHERE email = 'ana@example.com'")
BEA=$(rt_psql "SELECT id FROM users WHERE email = 'bea@example.com'")
# Bots are added with `rastro bot add` (getMe at Telegram): made with SQL here.
rt_psql "
INSERT INTO bots (id, owner_id, telegram_id, username, token_enc) VALUES
  (11, $ANA, 9011, 'ana_one_bot', '\x00'), (12, $ANA, 9012, 'ana_two_bot', '\x00'),
  (21, $BEA, 9021, 'bea_one_bot', '\x00');
INSERT INTO pixels (id, owner_id, pixel_id, token_enc) VALUES (21, $BEA, '222', '\x00');"

rt_fake_telegram      # POST /bots asks it getMe
PORT=$(rt_free_port)
WEB=$RT_DIR/web
mkdir -p "$WEB"
echo '<!doctype html><title>rastro</title>' > "$WEB/index.html"
export RASTRO_HTTP_PORT=$PORT RASTRO_WEB_DIR=$WEB RASTRO_WS_PORT=$(rt_free_port) RASTRO_API_THREADS=2
BASE="http://127.0.0.1:$PORT"
API="$BASE/api/v1"
sed 's/^required_acks = .*/required_acks = stored/' "$RASTRO_SOURCE_DIR/topology/local.ini" > "$RT_DIR/topology.ini"
rt_bg "$(rt_bin rastro-front)" --topology "$RT_DIR/topology.ini" --instance 0
FRONT_LOG=$RT_LAST_LOG
rt_wait_for "front healthz" 30 curl -sf "$BASE/healthz"

# login WHO EMAIL: keeps WHO's cookie and CSRF token.
declare -A COOKIE CSRF
login() {
  local who=$1 email=$2 out
  out=$(curl -s -D "$RT_DIR/login-hdrs" -H 'Content-Type: application/json' \
    --data-binary "{\"email\": \"$email\", \"password\": \"$PW\"}" "$API/login")
  CSRF[$who]=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["csrf"])' "$out")
  COOKIE[$who]=$(tr -d '\r' < "$RT_DIR/login-hdrs" | sed -n 's/^[Ss]et-[Cc]ookie: \(rastro_session=[^;]*\);.*/\1/p')
  [ -n "${COOKIE[$who]}" ] || rt_fail "login $email: $out"
}
login ana ana@example.com
login bea bea@example.com

# call WHO METHOD PATH [JSON]: sets CODE and BODY.
call() {
  local who=$1 method=$2 path=$3 data=${4-}
  local args=(-s -X "$method" -o "$RT_DIR/body" -w '%{http_code}' -H "Cookie: ${COOKIE[$who]}"
              -H "X-CSRF-Token: ${CSRF[$who]}")
  [ -n "$data" ] && args+=(-H 'Content-Type: application/json' --data-binary "$data")
  CODE=$(curl "${args[@]}" "$API$path")
  BODY=$(cat "$RT_DIR/body")
}
# expect STATUS WHO METHOD PATH [JSON]
expect() {
  local want=$1; shift
  call "$@"
  [ "$CODE" = "$want" ] || rt_fail "$2 $3 ${4-} as $1: $CODE, expected $want: $BODY"
}
# j EXPR: a Python expression over the last answer `d`.
j() { python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$BODY" "$1"; }

# --- pixels ----------------------------------------------------------------------
TOKEN='EAAB-very-secret-pixel-token'
expect 201 ana POST /pixels "{\"pixel_id\": \"123456789\", \"token\": \"  $TOKEN\\n\", \"test_event_code\": \"TEST1\"}"
PIXEL=$(j "d['id']")
rt_assert_eq "123456789 TEST1 True" "$(j "d['pixel_id'], d['test_event_code'], d['token_set']" | tr -d "(),'")" "pixel answer"
lacks "$BODY" "$TOKEN" "pixel add answer"
# Sealed at rest: nonce (24) + tag (16) + the token, never in clear.
rt_assert_eq "$((24 + 16 + ${#TOKEN}))" "$(rt_psql "SELECT length(token_enc) FROM pixels WHERE id = $PIXEL")" "sealed token length"
rt_assert_eq 0 "$(rt_psql "SELECT count(*) FROM pixels WHERE position(convert_to('$TOKEN', 'UTF8') in token_enc) > 0")" "token in clear"
ok pixel list --owner ana@example.com
contains "$OUT" "123456789" "CLI sees the API's pixel"
contains "$OUT" "TEST1" "CLI sees its test event code"
expect 409 ana POST /pixels '{"pixel_id": "123456789", "token": "other"}'
expect 201 bea POST /pixels '{"pixel_id": "123456789", "token": "bea-token"}'   # per user
expect 400 ana POST /pixels '{"pixel_id": 123456789, "token": "t"}'
expect 400 ana POST /pixels '{"pixel_id": "12x", "token": "t"}'
expect 400 ana POST /pixels '{"pixel_id": "1234"}'
expect 400 ana POST /pixels '{"pixel_id": "1234", "token": "two words"}'
expect 400 ana POST /pixels 'not json'
rt_assert_eq 0 "$(rt_psql "SELECT count(*) FROM pixels WHERE pixel_id = '1234'")" "refused pixels stored"
expect 200 ana PATCH /pixels/$PIXEL '{"test_event_code": null, "rate_per_s": 500}'
rt_assert_eq "None 500" "$(j "d['test_event_code'], d['rate_per_s']" | tr -d "(),'")" "pixel patch"
expect 400 ana PATCH /pixels/$PIXEL '{"rate_per_s": 100001}'
expect 400 ana PATCH /pixels/$PIXEL '{}'
expect 200 ana GET /pixels
rt_assert_eq "1 123456789" "$(j "len(d['rows']), d['rows'][0]['pixel_id']" | tr -d "(),'")" "pixel list"
lacks "$BODY" "token_enc" "pixel list"

# --- pools -----------------------------------------------------------------------
expect 201 ana POST /pools "{\"slug\": \"promo\", \"pixel\": $PIXEL, \"bots\": [{\"bot_id\": 11, \"weight\": 3}, {\"bot_id\": 12}]}"
POOL=$(j "d['id']")
rt_assert_eq "weighted 2" "$(j "d['strategy'], len(d['bots'])" | tr -d "(),'")" "pool answer"
ok pool list --owner ana@example.com
contains "$OUT" "@ana_one_bot:3 @ana_two_bot:1" "CLI sees the API's pool"
# Live in the front (rastro_config NOTIFY), then off once disabled.
rt_wait_for "/go/promo live" 20 sh -c "curl -s -o /dev/null -w '%{http_code}' '$BASE/go/promo' | grep -q 302"
expect 409 ana POST /pools "{\"slug\": \"promo\", \"pixel\": $PIXEL, \"bots\": [{\"bot_id\": 11}]}"
expect 409 bea POST /pools '{"slug": "promo", "pixel": 21, "bots": [{"bot_id": 21}]}'
expect 400 ana POST /pools "{\"slug\": \"no spaces\", \"pixel\": $PIXEL, \"bots\": [{\"bot_id\": 11}]}"
expect 400 ana POST /pools "{\"slug\": \"p2\", \"pixel\": $PIXEL, \"bots\": [{\"bot_id\": 11, \"weight\": 0}]}"
expect 400 ana POST /pools "{\"slug\": \"p2\", \"pixel\": $PIXEL, \"strategy\": \"round-robin\", \"bots\": [{\"bot_id\": 11, \"weight\": 2}]}"
expect 400 ana POST /pools "{\"slug\": \"p2\", \"pixel\": $PIXEL, \"bots\": []}"
expect 400 ana POST /pools "{\"slug\": \"p2\", \"pixel\": $PIXEL, \"strategy\": \"fastest\", \"bots\": [{\"bot_id\": 11}]}"
rt_assert_eq 1 "$(rt_psql "SELECT count(*) FROM pools")" "refused pools stored"
expect 200 ana PATCH /pools/$POOL '{"enabled": false, "strategy": "round-robin", "bots": [{"bot_id": 12}]}'
rt_assert_eq "False round-robin [12]" "$(j "d['enabled'], d['strategy'], [b['bot_id'] for b in d['bots']]" | tr -d "(),'")" "pool patch"
rt_assert_eq "12:1" "$(rt_psql "SELECT string_agg(bot_id || ':' || weight, ' ') FROM pool_bots WHERE pool_id = $POOL")" "pool bots replaced"
rt_wait_for "/go/promo off" 20 sh -c "curl -s -o /dev/null -w '%{http_code}' '$BASE/go/promo' | grep -q 404"
expect 400 ana PATCH /pools/$POOL '{"bots": [{"bot_id": 11, "weight": 9}]}'
rt_assert_eq "12:1" "$(rt_psql "SELECT string_agg(bot_id || ':' || weight, ' ') FROM pool_bots WHERE pool_id = $POOL")" "refused patch changed the bots"
expect 200 ana GET /pools/$POOL
rt_assert_eq promo "$(j "d['pool']['slug']")" "pool get"

# --- bots ------------------------------------------------------------------------
expect 200 ana GET /bots
rt_assert_eq "ana_one_bot ana_two_bot" "$(j "' '.join(r['username'] for r in d['rows'])")" "bot list"
expect 200 ana PATCH /bots/11 '{"enabled": false}'
rt_assert_eq f "$(rt_psql "SELECT enabled FROM bots WHERE id = 11")" "bot disabled"
expect 400 ana PATCH /bots/11 '{"enabled": "yes"}'
expect 200 ana PATCH /bots/11 '{"enabled": true}'
# Adding one: getMe at the fake Telegram says the username; the token is sealed.
BOT_TOKEN='7001:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ'
curl -sf -d "{\"token\":\"$BOT_TOKEN\",\"username\":\"ana_new_bot\"}" "$RASTRO_TELEGRAM_API_URL/_fake/bots" >/dev/null
expect 201 ana POST /bots "{\"token\": \"$BOT_TOKEN\"}"
rt_assert_eq "ana_new_bot True" "$(j "d['username'], d['enabled']" | tr -d "(),'")" "bot add"
lacks "$BODY" "$BOT_TOKEN" "bot add answer"
rt_assert_eq "$ANA $((24 + 16 + ${#BOT_TOKEN}))" "$(rt_psql "SELECT owner_id || ' ' || length(token_enc) FROM bots WHERE telegram_id = 7001")" "bot stored, sealed"
expect 409 bea POST /bots "{\"token\": \"$BOT_TOKEN\"}"
expect 400 ana POST /bots '{"token": "7002:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ"}'   # unknown to Telegram
contains "$BODY" "rejected" "bot add with a revoked token"
expect 400 ana POST /bots '{"token": "not-a-token"}'
expect 400 ana POST /bots '{}'
rt_assert_eq 4 "$(rt_psql "SELECT count(*) FROM bots")" "refused bots stored"
rt_psql "DELETE FROM bots WHERE telegram_id = 7001" >/dev/null   # ana has her two bots again

# --- offers ----------------------------------------------------------------------
expect 201 ana POST /bots/11/offers '{"name": "Grupo VIP", "price_cents": 1990, "deliver_chat_id": -1001234567890, "welcome_html": "<b>Olá!</b> Bem-vindo &amp; boa compra"}'
OFFER=$(j "d['id']")
ok offer list --owner ana@example.com --json
contains "$OUT" '"price_cents" : 1990' "CLI sees the API's offer"
expect 400 ana POST /bots/11/offers '{"name": "x", "price_cents": 49, "deliver_text": "oi"}'
expect 400 ana POST /bots/11/offers '{"name": "x", "price_cents": 100, "deliver_text": "oi", "deliver_chat_id": -100}'
expect 400 ana POST /bots/11/offers '{"name": "x", "price_cents": 100}'
expect 400 ana POST /bots/11/offers '{"name": "x", "price_cents": 100, "deliver_text": "oi", "welcome_html": "<script>x</script>"}'
contains "$BODY" "tag <script>" "welcome_html reason"
rt_assert_eq 1 "$(rt_psql "SELECT count(*) FROM offers")" "refused offers stored"
expect 200 ana PATCH /offers/$OFFER '{"deliver_text": "Obrigado!", "price_cents": 2990, "welcome_html": null}'
rt_assert_eq "|Obrigado!|2990|" "$(rt_psql "SELECT concat_ws('|', deliver_chat_id, deliver_text, price_cents, welcome_html) FROM offers WHERE id = $OFFER" | sed 's/^/|/; s/$/|/')" "offer patch"
expect 400 ana PATCH /offers/$OFFER '{"deliver_text": null}'
expect 200 ana GET /bots/11/offers
rt_assert_eq 1 "$(j "len(d['rows'])")" "offer list"
expect 200 ana GET /bots/11
rt_assert_eq "1 $OFFER" "$(j "d['bot']['offers'], d['offers'][0]['id']" | tr -d "(),'")" "bot get"

# --- dead letters ----------------------------------------------------------------
for i in 1 2 3; do
  rt_psql "INSERT INTO dead_letters (owner_id, pixel_id, event_id, event_name, payload, reason, error_code, error_message, fbtrace_id)
           VALUES ($ANA, '123456789', 'ev-$i', 'Purchase', '{\"event_id\":\"ev-$i\"}', 'invalid-parameter', 100, 'Invalid parameter', 'trace$i')" >/dev/null
done
rt_psql "INSERT INTO dead_letters (owner_id, pixel_id, event_id, payload, reason) VALUES ($BEA, '222', 'bea-ev', '{}', 'token')"
DL=$(rt_psql "SELECT min(id) FROM dead_letters WHERE owner_id = $ANA")
BEA_DL=$(rt_psql "SELECT id FROM dead_letters WHERE owner_id = $BEA")
expect 200 ana GET '/dlq?limit=2'
rt_assert_eq "2 True" "$(j "len(d['items']), d['next_cursor'] is not None" | tr -d "(),'")" "dlq page 1"
CURSOR=$(j "d['next_cursor']")
expect 200 ana GET "/dlq?limit=2&cursor=$CURSOR"
rt_assert_eq "ev-1 None" "$(j "d['items'][0]['event_id'], d['next_cursor']" | tr -d "(),'")" "dlq page 2"
expect 400 ana GET '/dlq?limit=500'
expect 200 ana GET "/dlq/$DL"
rt_assert_eq "trace1 ev-1" "$(j "d['dead_letter']['fbtrace_id'], d['dead_letter']['payload']['event_id']" | tr -d "(),'")" "dlq get"
expect 200 ana POST "/dlq/$DL/replay"
ok dlq list --owner ana@example.com
contains "$(echo "$OUT" | grep ev-1)" requested "CLI sees the API's replay"
rt_psql "UPDATE dead_letters SET replayed_at = now() WHERE id = $DL"
expect 409 ana POST "/dlq/$DL/replay"

# --- bea, with ana's ids: 404 everywhere, nothing changes ---------------------------
snapshot() {
  rt_psql "SELECT md5(concat_ws('|',
    (SELECT string_agg(concat_ws(',', id, pixel_id, encode(token_enc, 'hex'), test_event_code, rate_per_s), ';' ORDER BY id) FROM pixels),
    (SELECT string_agg(concat_ws(',', id, enabled, healthy), ';' ORDER BY id) FROM bots),
    (SELECT string_agg(concat_ws(',', id, slug, pixel_ref, strategy, enabled), ';' ORDER BY id) FROM pools),
    (SELECT string_agg(concat_ws(',', pool_id, bot_id, weight), ';' ORDER BY pool_id, bot_id) FROM pool_bots),
    (SELECT string_agg(concat_ws(',', id, name, price_cents, deliver_text, enabled), ';' ORDER BY id) FROM offers),
    (SELECT string_agg(concat_ws(',', id, replay_requested_at, replayed_at), ';' ORDER BY id) FROM dead_letters)))"
}
DL2=$(rt_psql "SELECT max(id) FROM dead_letters WHERE owner_id = $ANA")
BEFORE=$(snapshot)
expect 404 bea PATCH /pixels/$PIXEL '{"test_event_code": "HACK"}'
expect 404 bea GET /bots/11
expect 404 bea PATCH /bots/11 '{"enabled": false}'
expect 404 bea GET /pools/$POOL
expect 404 bea PATCH /pools/$POOL '{"enabled": true}'
expect 404 bea GET /bots/11/offers
expect 404 bea POST /bots/11/offers '{"name": "x", "price_cents": 100, "deliver_text": "oi"}'
expect 404 bea PATCH /offers/$OFFER '{"enabled": false}'
expect 404 bea GET /dlq/$DL2
expect 404 bea POST /dlq/$DL2/replay
expect 404 bea POST /pools "{\"slug\": \"bea-pool\", \"pixel\": $PIXEL, \"bots\": [{\"bot_id\": 21}]}"
expect 404 bea POST /pools '{"slug": "bea-pool", "pixel": 21, "bots": [{"bot_id": 21}, {"bot_id": 12}]}'
# ... answered exactly like an id that does not exist.
call bea GET /bots/11; OTHER=$BODY
call bea GET /bots/999999; rt_assert_eq "$BODY" "$OTHER" "404 for another user's id = 404 for a missing one"
for path in /pixels /bots /pools /dlq; do
  expect 200 bea GET "$path"
  lacks "$BODY" "ana_" "bea's $path"
  lacks "$BODY" "promo" "bea's $path"
  lacks "$BODY" "ev-" "bea's $path"
done
expect 200 bea GET /dlq
rt_assert_eq "1 $BEA_DL" "$(j "len(d['items']), d['items'][0]['id']" | tr -d "(),'")" "bea's own dead letter"
rt_assert_eq "$BEFORE" "$(snapshot)" "ana's rows after bea's attempts"

# --- no token in the logs ----------------------------------------------------------
for f in "$RT_DIR"/*.log "$RT_DIR"/cmd-*; do
  [ -f "$f" ] || continue
  if grep -qF -e "$TOKEN" -e "$BOT_TOKEN" "$f"; then rt_fail "token found in $f"; fi
done
rt_log "ok"
