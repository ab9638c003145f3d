#!/usr/bin/env bash
# test_dashboard — the dashboard in a real browser (issue 5 §6, §7): headless
# Debian Chromium, driven by playwright-core (tests/browser/), against the
# whole stack of `rastro up`: the front serving web/dist (RASTRO_WEB_DIR) and
# the API, recorder, enricher, aggregator and the broadcaster's WebSocket.
#
# Two sellers: A (the demo seller of rt_demo_setup: pixel, two bots, pool
# `demo`) and B (a pixel, a bot and a pool of its own). Before the browser
# starts, A's pool gets three people's clicks (GET /go/demo) and one purchase
# (a payment event pushed into the recorder as the bots node sends it), and
# the API is checked to count them. Then, in Chromium
# (tests/browser/dashboard.test.mjs): a wrong password is refused; A logs in
# and sees today's numbers; on A's pool page a click and a purchase made
# during the test show up without a reload (live feed) and are highlighted;
# the pool page's manual spend gives profit and ROI; after the broadcaster is
# killed the page reconnects and keeps counting; B's bot and pool, opened by
# id, show "não encontrado / not found"; the English switch is remembered;
# the UTM table sorts; a bot is disabled and enabled, a pixel added (its
# token never shown); the leads list pages with "load more" and shows none
# of B's; the menu collapses on a phone; logout; no script error or CSP
# violation anywhere.
#
# Needs Chromium (scripts/setup --test installs it) and Node.js; without
# them the test fails and says so (a browser test is never skipped).
. "$(dirname "$0")/lib.sh"
rt_setup dashboard

# ---- the browser, Node.js and the built dashboard ------------------------------------
CHROMIUM=${RASTRO_CHROMIUM:-/usr/bin/chromium}
need() { rt_fail "$1 (scripts/setup --test installs what the browser tests need)"; }
[ -x "$CHROMIUM" ] || need "no Chromium at $CHROMIUM"
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || need "no node/npm"

# web/dist is built by scripts/setup; built again here only when missing or
# older than a source file.
WEB_DIR=$RASTRO_SOURCE_DIR/web/dist
if [ ! -s "$WEB_DIR/app.js" ] || [ -n "$(cd "$RASTRO_SOURCE_DIR/web" && find src package.json \
     package-lock.json build.mjs tailwind.config.cjs -newer dist/app.js -print -quit)" ]; then
  rt_log "building web/dist"
  bash "$RASTRO_SOURCE_DIR/scripts/build-web" > "$RT_DIR/build-web.log" 2>&1 \
    || { cat "$RT_DIR/build-web.log" >&2; rt_fail "scripts/build-web failed"; }
fi
BROWSER_DIR=$RASTRO_SOURCE_DIR/tests/browser
lock_sum=$(sha256sum "$BROWSER_DIR/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$BROWSER_DIR/node_modules/.rastro-lock.sha256" 2>/dev/null)" != "$lock_sum" ]; then
  rt_log "npm ci in tests/browser"
  (cd "$BROWSER_DIR" && npm ci --no-audit --no-fund --loglevel=error) > "$RT_DIR/npm-ci.log" 2>&1 \
    || { cat "$RT_DIR/npm-ci.log" >&2; rt_fail "npm ci in tests/browser failed"; }
  echo "$lock_sum" > "$BROWSER_DIR/node_modules/.rastro-lock.sha256"
fi

# ---- sellers A (the demo) and B ------------------------------------------------------
rt_fake_telegram
rt_demo_setup
A_EMAIL=demo@rastro.local A_PASSWORD=demo-rastro
OWNER=$(rt_psql "SELECT id FROM users WHERE email = '$A_EMAIL'")
POOL=$(rt_psql "SELECT id FROM pools WHERE slug = 'demo'")
BOT=$(rt_psql "SELECT min(id) FROM bots WHERE owner_id = $OWNER")
PIXEL=100000000000001

curl -sf -X POST "$RASTRO_TELEGRAM_API_URL/_fake/bots" \
  -d '{"token":"910009:OTHER-token-not-real","username":"rastro_other_seller_bot","id":910009}' >/dev/null
(umask 077; printf '910009:OTHER-token-not-real\n' > "$RT_DIR/other-bot"; printf 'EAAB-OTHER-not-real\n' > "$RT_DIR/other-meta")
echo 'other-seller-pass' | rastro user add other@rastro.local >/dev/null
rastro pixel add 200000000000002 --token-file "$RT_DIR/other-meta" --owner other@rastro.local >/dev/null
rastro bot add --token-file "$RT_DIR/other-bot" --owner other@rastro.local >/dev/null
rastro pool add other-seller --pixel 200000000000002 --bot rastro_other_seller_bot --owner other@rastro.local >/dev/null
B_BOT=$(rt_psql "SELECT id FROM bots WHERE username = 'rastro_other_seller_bot'")
B_POOL=$(rt_psql "SELECT id FROM pools WHERE slug = 'other-seller'")
[ -n "$B_BOT" ] && [ -n "$B_POOL" ] || rt_fail "seller B's bot or pool is missing"
# Leads for the lists: 60 of A's (more than a page of 50), 3 of B's.
rt_psql "INSERT INTO leads (owner_id, bot_id, tg_user_id, chat_id, first_name, pool_id, external_id,
           utm_source, utm_campaign, created_at)
         SELECT $OWNER, $BOT, 880000 + i, 880000 + i, 'Lead ' || i, $POOL, 'ext-a-' || i, 'it', 'leads',
                now () - i * interval '1 minute' FROM generate_series (1, 60) i" >/dev/null
rt_psql "INSERT INTO leads (owner_id, bot_id, tg_user_id, chat_id, first_name, pool_id, external_id)
         SELECT o.id, $B_BOT, 890000 + i, 890000 + i, 'OtherSellerLead ' || i, $B_POOL, 'ext-b-' || i
           FROM users o, generate_series (1, 3) i WHERE o.email = 'other@rastro.local'" >/dev/null

# A dead letter each (Meta refused the event).
dead_letter() {  # OWNER PIXEL EVENT_ID MESSAGE
  rt_psql "INSERT INTO dead_letters (owner_id, pixel_id, event_id, event_name, event_time, payload, reason,
             http_status, error_code, error_message, fbtrace_id, source)
           VALUES ($1, '$2', '$3', 'Purchase', now (),
             ('{\"event_name\":\"Purchase\",\"event_time\":' || extract (epoch FROM now ())::bigint || ',\"event_id\":\"$3\",'
              '\"action_source\":\"website\",\"user_data\":{\"external_id\":[\"x\"]},'
              '\"custom_data\":{\"currency\":\"BRL\",\"value\":97.0}}')::json,
             'invalid-parameter', 400, 100, '$4', 'AbCdTrace$3', 'bots.0')" >/dev/null
}
dead_letter "$OWNER" "$PIXEL" dash-dlq-a 'Invalid parameter (browser test)'
dead_letter "$(rt_psql "SELECT id FROM users WHERE email = 'other@rastro.local'")" 200000000000002 dash-dlq-b 'OtherSellerDeadLetter'

# ---- rastro up, with the dashboard and the live feed ---------------------------------
PORT=$(rt_free_port)
WS_PORT=$(rt_free_port)
export RASTRO_HTTP_PORT=$PORT RASTRO_WS_PORT=$WS_PORT RASTRO_TRUSTED_PROXIES=127.0.0.1 RASTRO_WEB_DIR=$WEB_DIR
BASE="http://127.0.0.1:$PORT"
TOPO=$RT_DIR/topology.ini
sed -e 's/^ip_rate_per_min = .*/ip_rate_per_min = 1000000/' \
    -e 's/^catchup_s = .*/catchup_s = 2/' \
    -e 's/^catchup_grace_s = .*/catchup_grace_s = 2/' \
    "$RASTRO_SOURCE_DIR/topology/local.ini" > "$TOPO"
grep -q '^\[broadcaster\]' "$TOPO" || rt_fail "topology/local.ini has no [broadcaster] section"
rt_bg "$(rt_bin rastro)" up --topology "$TOPO"
SUP=$RT_LAST_PID
UP_LOG=$RT_LAST_LOG
rt_wait_for "front healthz" 60 curl -sf "$BASE/healthz"
curl -sf "$BASE/" > "$RT_DIR/index.html" || rt_fail "GET / does not serve the dashboard"
grep -q 'src="app.js"' "$RT_DIR/index.html" || rt_fail "GET / is not web/dist/index.html"
ws_listening() { (exec 3<>"/dev/tcp/127.0.0.1/$WS_PORT") 2>/dev/null; }
rt_wait_for "the broadcaster on port $WS_PORT" 60 ws_listening

# The browser test kills the broadcaster once (the supervisor starts it again).
STATE="$RASTRO_DATA_DIR/run/supervisor.state"
cat > "$RT_DIR/kill-live.sh" <<EOF
pid=\$(awk -F'\t' '\$1=="node" && \$2=="broadcaster" && \$5=="running" {print \$4}' "$STATE")
[ -n "\$pid" ] || { echo "kill-live: no broadcaster running" >&2; exit 1; }
kill -9 "\$pid"
EOF
KILL_LIVE="bash $RT_DIR/kill-live.sh"

# ---- traffic before the browser: 3 clicks, 1 purchase ---------------------------------
UA='Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148'
for i in 1 2 3; do
  code=$(curl -s -o /dev/null -w '%{http_code}' -A "$UA" "$BASE/go/demo?utm_source=it&utm_campaign=before")
  case $code in 30[12378]) ;; *) rt_fail "GET /go/demo answered $code" ;; esac
done
PRICE=9700
SEQ=990000
purchase_cmd() {  # prints a command making purchase N of PRICE in A's pool
  printf '%q ' "$(rt_bin bench/bench_push_chat)" --push "ipc://$RASTRO_DATA_DIR/run/recorder-0-in.sock" \
    --type payment --event-id "dash-pay-$1" --seq $((SEQ + $1)) --owner "$OWNER" --pool "$POOL" --bot "$BOT" \
    --pixel "$PIXEL" --src bots.0 --tg-user-id $((777000 + $1)) --value-cents "$PRICE" --currency BRL \
    --order-id "dash-order-$1"
}
eval "$(purchase_cmd 1)" >/dev/null || rt_fail "bench_push_chat"

# The API counts them (logged in with curl as seller A).
JAR=$RT_DIR/cookies
curl -sf -c "$JAR" -H 'Content-Type: application/json' \
  -d "{\"email\":\"$A_EMAIL\",\"password\":\"$A_PASSWORD\"}" "$BASE/api/v1/login" > "$RT_DIR/login.json" \
  || rt_fail "POST /api/v1/login as seller A failed"
summary() {
  curl -sf -b "$JAR" "$BASE/api/v1/summary?range=today&pool=$POOL" | python3 -c '
import json, sys
m = json.load(sys.stdin)["metrics"]
print(m["clicks"], m["purchases"], m["revenue_cents"])'
}
counted() { [ "$(summary)" = "3 1 $PRICE" ]; }
deadline=$((SECONDS + 60))
until counted; do
  [ $SECONDS -lt $deadline ] || rt_fail "the API does not count the 3 clicks and the purchase after 60 s: $(summary || true)"
  sleep 0.3
done

# ---- the browser -----------------------------------------------------------------------
# Screenshots: kept in $RT_DIR/shots on a failure, or in RASTRO_DASH_SHOTS when set.
SHOTS=${RASTRO_DASH_SHOTS:-$RT_DIR/shots}
mkdir -p "$SHOTS"
set +e
DASH_BASE=$BASE DASH_EMAIL=$A_EMAIL DASH_PASSWORD=$A_PASSWORD \
DASH_POOL_ID=$POOL DASH_POOL_SLUG=demo DASH_BOT_ID=$BOT DASH_CLICKS=3 DASH_REVENUE_CENTS=$PRICE \
DASH_OTHER_BOT_ID=$B_BOT DASH_OTHER_POOL_ID=$B_POOL \
DASH_PURCHASE_CMD="$(purchase_cmd 2)" DASH_PURCHASE_CENTS=$PRICE DASH_KILL_LIVE_CMD="$KILL_LIVE" \
DASH_CHROMIUM=$CHROMIUM DASH_SCREENSHOTS=$SHOTS \
  node "$BROWSER_DIR/dashboard.test.mjs" > "$RT_DIR/browser.log" 2>&1
rc=$?
set -e
grep -E '^(not )?ok |^# (tests|pass|fail)' "$RT_DIR/browser.log" >&2 || true
[ $rc -eq 0 ] || { grep -A12 '^not ok' "$RT_DIR/browser.log" >&2; rt_fail "browser tests failed (screenshots in $SHOTS)"; }

# What the browser did reached the database: 5 clicks, 2 purchases, the
# manual spend, the pixel; the bot is enabled again.
rt_assert_eq "5 2 $((2 * PRICE))" "$(summary)" "seller A's pool after the browser test"
rt_assert_eq 5000 "$(rt_psql "SELECT sum(amount_cents) FROM manual_spend WHERE pool_id = $POOL")" "manual spend saved from the pool page"
rt_assert_eq 1 "$(rt_psql "SELECT count(*) FROM pixels WHERE pixel_id = '300000000000003' AND owner_id = $OWNER")" "pixel added from the dashboard"
rt_assert_eq t "$(rt_psql "SELECT enabled FROM bots WHERE id = $BOT")" "the bot enabled again"
rt_assert_eq "t|1|123450" "$(rt_psql "SELECT p.pixel_ref = x.id, (SELECT count(*) FROM pool_bots b WHERE b.pool_id = p.id),
                                  (SELECT price_cents FROM offers WHERE name = 'Mentoria Browser' AND bot_id = $BOT)
                             FROM pools p, pixels x WHERE p.slug = 'browser-pool' AND x.pixel_id = '300000000000003'")" \
  "the pool and the offer added from the dashboard"
# (The replayed event may come back as a new dead letter: the first row is the one asked.)
rt_assert_eq "t|t" "$(rt_psql "SELECT (SELECT replay_requested_at IS NOT NULL OR replayed_at IS NOT NULL FROM dead_letters
                                      WHERE event_id = 'dash-dlq-a' ORDER BY id LIMIT 1),
                                     (SELECT replay_requested_at IS NULL AND replayed_at IS NULL FROM dead_letters
                                      WHERE event_id = 'dash-dlq-b')")" \
  "the replay asked from the dashboard (A's dead letter only)"

kill -TERM "$SUP"; wait "$SUP" || rt_fail "rastro up did not stop cleanly (see $UP_LOG)"
echo "test_dashboard: ok"
