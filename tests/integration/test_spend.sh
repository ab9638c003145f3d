#!/usr/bin/env bash
# test_spend — spend from Meta's Insights and by hand (issue 5 §2).
#
# The fake Meta (tests/fakes/fake_meta.py) serves an ad account's Insights
# rows, two per page, with usage headers; rastro-optimizer runs with quick
# intervals. Checked:
#   - `adaccount add` refuses a token Meta refuses, stores a good one sealed
#     (never printed, not in the database in clear); `adaccount list` never
#     shows it;
#   - the first sync backfills 30 days: campaign_spend equals the fake's rows
#     in range, exactly (centavos), paging followed, the token sent in the
#     Authorization header; each campaign's pool is the pool whose clicks
#     (analytics_hourly, people's clicks only) carried its utm_campaign that
#     day, 0 when none;
#   - today is refreshed (new spend, pool re-resolved) and only today is asked;
#   - usage at 95%: the next refresh waits slow_factor times longer; usage at
#     100: no call before Meta's regain time;
#   - a throttling error (80004): no call at all until throttled_until, which
#     `adaccount list` shows; then calls resume;
#   - a malformed reply stores nothing; a refused token (190) stops the calls
#     and `adaccount list` says so until `adaccount set --token-file`;
#   - --campaign-key name: rows read again, tied to pools by the name;
#   - manual spend: set, list, replace, clear, errors; `adaccount remove`.
#   - the JSON API (/spend, /spend/manual, /adaccounts) when the front serves it.
. "$(dirname "$0")/lib.sh"
rt_setup spend

META_PORT=$(rt_free_port)
rt_bg python3 "$RASTRO_SOURCE_DIR/tests/fakes/fake_meta.py" --port "$META_PORT" --quiet
export RASTRO_META_GRAPH_URL="http://127.0.0.1:$META_PORT" RASTRO_META_API_VERSION=v25.0
META=$RASTRO_META_GRAPH_URL
rt_wait_for "fake meta" 10 curl -sf "$META/_fake/health"
meta() { curl -sf -X POST "$META/_fake/insights" -d "$1" >/dev/null || rt_fail "fake meta config: $1"; }
# calls [FILTER]: the number of Insights calls for act_111 (python filter on c).
calls() {
  curl -sf "$META/_fake/insights/calls?account=111" | python3 -c "
import json, sys
calls = json.load(sys.stdin)
print(sum(1 for c in calls if ${1:-True}))" 2>/dev/null || echo -1
}

GOOD='EAAB-good-ads-token-0123456789'
BAD='EAAB-bad-ads-token-9876543210'
(umask 077; printf '%s\n' "$GOOD" > "$RT_DIR/good"; printf '%s\n' "$BAD" > "$RT_DIR/bad")

echo 'senha-forte-1' | rastro user add seller@example.com >/dev/null
echo 'senha-forte-2' | rastro user add other@example.com >/dev/null
S=$(rt_psql "SELECT id FROM users WHERE email = 'seller@example.com'")
O=$(rt_psql "SELECT id FROM users WHERE email = 'other@example.com'")
rt_psql "
INSERT INTO pixels (id, owner_id, pixel_id, token_enc) VALUES (1, $S, '1001', '\x00'), (2, $O, '2002', '\x00');
INSERT INTO pools (id, owner_id, slug, pixel_ref) VALUES
  (11, $S, 'promo', 1), (12, $S, 'remarketing', 1), (21, $O, 'others', 2);" >/dev/null
TODAY=$(rt_psql "SELECT (now () AT TIME ZONE 'America/Sao_Paulo')::date")
day() { rt_psql "SELECT ('$TODAY'::date - $1)::text"; }
YDAY=$(day 1); D5=$(day 5); D29=$(day 29); D30=$(day 30)

# ---- the fake's account: 6 rows, 5 within the 30-day backfill ------------------------
meta "{\"account\":\"111\",\"token\":\"$GOOD\",\"page_size\":2,\"usage_pct\":20,\"rows\":[
  {\"day\":\"$TODAY\",\"campaign_id\":\"501\",\"campaign_name\":\"Curso Frio\",\"spend\":\"12.34\"},
  {\"day\":\"$TODAY\",\"campaign_id\":\"503\",\"campaign_name\":\"Sem cliques\",\"spend\":\"0.01\"},
  {\"day\":\"$YDAY\",\"campaign_id\":\"501\",\"campaign_name\":\"Curso Frio\",\"spend\":\"100\"},
  {\"day\":\"$YDAY\",\"campaign_id\":\"502\",\"campaign_name\":\"Remarketing Quente\",\"spend\":\"7.5\"},
  {\"day\":\"$D29\",\"campaign_id\":\"502\",\"campaign_name\":\"Remarketing Quente\",\"spend\":\"1234.567\"},
  {\"day\":\"$D30\",\"campaign_id\":\"501\",\"campaign_name\":\"Curso Frio\",\"spend\":\"99.99\"}]}"

# Clicks per pool and utm_campaign (what the aggregator keeps).
rt_psql "
INSERT INTO analytics_hourly (owner_id, day, hour, pool_id, bot_id, utm_source, utm_campaign, clicks, automated_clicks) VALUES
  ($S, '$YDAY', 10, 11, 1, 'fb', '501', 10, 0),
  ($S, '$YDAY', 11, 12, 1, 'fb', '501', 3, 0),
  ($S, '$YDAY', 10, 11, 1, 'fb', '502', 0, 100),
  ($S, '$YDAY', 12, 12, 1, 'fb', '502', 5, 0),
  ($S, '$TODAY', 9, 12, 1, 'fb', '501', 7, 0),
  ($S, '$TODAY', 9, 0, 1, 'fb', '503', 50, 0),
  ($S, '$D29', 9, 11, 1, 'fb', '502', 40, 0),
  ($O, '$YDAY', 10, 21, 1, 'fb', '502', 99, 0),
  ($S, '$YDAY', 10, 11, 1, 'fb', 'Remarketing Quente', 20, 0),
  ($S, '$YDAY', 10, 12, 1, 'fb', 'Curso Frio', 30, 0);" >/dev/null

# ---- adaccount add ----------------------------------------------------------------------
bad 2 "not an ad account id" adaccount add act_12x --token-file "$RT_DIR/good"
bad 2 "--campaign-key" adaccount add act_111 --token-file "$RT_DIR/good" --campaign-key utm
bad 2 "--token-file" adaccount add act_111
bad 2 "cannot read" adaccount add act_111 --token-file "$RT_DIR/missing"
bad 2 "several users" adaccount add act_111 --token-file "$RT_DIR/good"
bad 1 "refused the token" adaccount add act_111 --token-file "$RT_DIR/bad" --owner seller@example.com
lacks "$ERR" "$BAD" "the refused token was printed"
bad 1 "refused to read act_777" adaccount add act_777 --token-file "$RT_DIR/good" --owner seller@example.com
rt_assert_eq 0 "$(rt_psql "SELECT count(*) FROM ad_accounts")" "ad accounts after refusals"
ok adaccount add act_111 --token-file "$RT_DIR/good" --owner seller@example.com
contains "$OUT" "act_111 added for seller@example.com" "adaccount add"
contains "$OUT" "checked with Meta" "adaccount add"
bad 1 "already exists" adaccount add 111 --token-file "$RT_DIR/good" --owner seller@example.com
rt_assert_eq 0 "$(rt_psql "SELECT position (convert_to ('$GOOD', 'UTF8') IN token_enc) FROM ad_accounts")" \
  "the token is sealed in the database"
ok adaccount list
contains "$OUT" "act_111" "adaccount list"
contains "$OUT" "set" "adaccount list token state"
# The token check was one call with the token in the header; reset the record.
rt_assert_eq 1 "$(calls 'c["auth"] == "header" and c["token_ok"]')" "the check's call"
meta '{"reset_calls":true}'

# ---- the optimizer: backfill ------------------------------------------------------------
cat > "$RT_DIR/topology.ini" <<EOF
[optimizer]
instances = 1
poll_ms = 200
today_every_s = 1
backfill_days = 30
slow_pct = 90
slow_factor = 4
retry_s = 1
timeout_ms = 5000
EOF
grep -q '^\[optimizer\]' "$RASTRO_SOURCE_DIR/topology/local.ini" || rt_fail "topology/local.ini has no [optimizer]"
grep -q '^\[optimizer\]' "$RASTRO_SOURCE_DIR/deploy/topology-3hosts.ini" || rt_fail "the 3-host topology has no [optimizer]"
rt_bg "$(rt_bin rastro-optimizer)" --topology "$RT_DIR/topology.ini" --instance 0
OPT_LOG=$RT_LAST_LOG
OPT_PID=$RT_LAST_PID
synced() { [ "$(rt_psql "SELECT count(*) FROM ad_accounts WHERE backfilled_at IS NOT NULL")" = 1 ]; }
rt_wait_for "the backfill" 30 synced

SPEND="SELECT day || ' ' || campaign_id || ' ' || utm_campaign || ' ' || pool_id || ' ' || spend_cents
       FROM campaign_spend ORDER BY day, campaign_id"
EXPECTED="$D29 502 502 11 123457
$YDAY 501 501 11 10000
$YDAY 502 502 12 750
$TODAY 501 501 12 1234
$TODAY 503 503 0 1"
rt_assert_eq "$EXPECTED" "$(rt_psql "$SPEND")" "campaign_spend after the backfill"
rt_assert_eq "$D29 $TODAY" "$(curl -sf "$META/_fake/insights/calls?account=111" | python3 -c '
import json, sys; c = json.load(sys.stdin)[0]; print(c["since"], c["until"])')" "the backfill range"
[ "$(calls 'c["after"] is not None')" -ge 2 ] || rt_fail "paging.next was not followed"
rt_assert_eq 0 "$(calls 'not (c["auth"] == "header" and c["token_ok"])')" "calls without the token"
rt_assert_eq "$YDAY|20|BRL|" "$(rt_psql "SELECT closed_through, usage_pct, currency, last_error FROM ad_accounts")" \
  "the account after the backfill"
ok adaccount list
contains "$OUT" "20%" "adaccount list usage"
lacks "$OUT" "$GOOD" "adaccount list shows the token"
[ -f "$RASTRO_DATA_DIR/run/optimizer-0.prom" ] || rt_fail "no heartbeat file"
grep -q 'rastro_optimizer_spend_fetches_total{result="ok"}' "$RASTRO_DATA_DIR/run/optimizer-0.prom" \
  || rt_fail "no fetch metrics in the heartbeat"

# ---- today's refresh: new spend, pool re-resolved, only today asked -------------------------
meta "{\"account\":\"111\",\"rows\":[
  {\"day\":\"$TODAY\",\"campaign_id\":\"501\",\"campaign_name\":\"Curso Frio\",\"spend\":\"20.00\"},
  {\"day\":\"$TODAY\",\"campaign_id\":\"503\",\"campaign_name\":\"Sem cliques\",\"spend\":\"0.02\"},
  {\"day\":\"$YDAY\",\"campaign_id\":\"501\",\"campaign_name\":\"Curso Frio\",\"spend\":\"555\"}]}"
rt_psql "INSERT INTO analytics_hourly (owner_id, day, hour, pool_id, bot_id, utm_source, utm_campaign, clicks)
         VALUES ($S, '$TODAY', 10, 11, 1, 'fb', '503', 2)" >/dev/null
refreshed() { [ "$(rt_psql "SELECT spend_cents || ' ' || pool_id FROM campaign_spend WHERE day = '$TODAY' AND campaign_id = '503'")" = "2 11" ]; }
rt_wait_for "today's refresh" 30 refreshed
rt_assert_eq 2000 "$(rt_psql "SELECT spend_cents FROM campaign_spend WHERE day = '$TODAY' AND campaign_id = '501'")" "today's 501"
rt_assert_eq 10000 "$(rt_psql "SELECT spend_cents FROM campaign_spend WHERE day = '$YDAY' AND campaign_id = '501'")" \
  "yesterday is closed: not read again"
[ "$(calls "c['since'] == '$TODAY' and c['until'] == '$TODAY'")" -ge 1 ] || rt_fail "no today-only call"

# ---- usage: slower at 95%, no call before the regain time at 100% -------------------------
meta '{"account":"111","usage_pct":95,"page_size":50}'
slow() { [ "$(rt_psql "SELECT usage_pct FROM ad_accounts")" = 95 ]; }
rt_wait_for "usage 95" 30 slow
rt_assert_eq t "$(rt_psql "SELECT next_sync_at - last_sync_at >= interval '4 seconds' FROM ad_accounts")" \
  "the refresh after a usage of 95% waits slow_factor x today_every_s"
meta '{"account":"111","usage_pct":100,"regain_minutes":2}'
rt_psql "UPDATE ad_accounts SET next_sync_at = NULL" >/dev/null
blocked() { [ "$(rt_psql "SELECT throttled_until > now () + interval '60 seconds' FROM ad_accounts")" = t ]; }
rt_wait_for "usage 100" 30 blocked
rt_assert_eq "" "$(rt_psql "SELECT last_error FROM ad_accounts")" "a complete fetch at usage 100 is no error"
meta '{"account":"111","usage_pct":10,"regain_minutes":0,"page_size":2}'
rt_psql "UPDATE ad_accounts SET throttled_until = NULL, next_sync_at = NULL" >/dev/null
usage10() { [ "$(rt_psql "SELECT usage_pct FROM ad_accounts")" = 10 ]; }
rt_wait_for "usage back to 10" 30 usage10

# ---- a throttling error: no call until throttled_until ------------------------------------
meta '{"account":"111","faults":[{"kind":"throttle","code":80004,"wait_minutes":1}]}'
throttled() { [ "$(rt_psql "SELECT throttled_until > now () + interval '30 seconds' FROM ad_accounts")" = t ]; }
rt_wait_for "throttled" 30 throttled
N=$(calls)
rt_assert_eq 1 "$(calls 'c["fault"] == "throttle"')" "the throttled call"
sleep 3   # poll_ms 200, today_every_s 1: several calls would have been made
rt_assert_eq "$N" "$(calls)" "calls while throttled"
ok adaccount list
contains "$OUT" "throttled by Meta" "adaccount list: last error while throttled"
contains "$OUT" "$(rt_psql "SELECT to_char (throttled_until AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') FROM ad_accounts")" \
  "adaccount list: throttled until"
rt_psql "UPDATE ad_accounts SET throttled_until = now ()" >/dev/null
resumed() { [ "$(calls)" -gt "$N" ] && [ -z "$(rt_psql "SELECT last_error FROM ad_accounts")" ]; }
rt_wait_for "calls resumed after the regain time" 30 resumed

# ---- a malformed reply stores nothing ------------------------------------------------------
BEFORE=$(rt_psql "$SPEND")
meta '{"account":"111","faults":[{"kind":"bad_row","count":100}]}'
meta "{\"account\":\"111\",\"rows\":[
  {\"day\":\"$TODAY\",\"campaign_id\":\"501\",\"campaign_name\":\"Curso Frio\",\"spend\":\"30.00\"},
  {\"day\":\"$YDAY\",\"campaign_id\":\"501\",\"campaign_name\":\"Curso Frio\",\"spend\":\"100\"},
  {\"day\":\"$YDAY\",\"campaign_id\":\"502\",\"campaign_name\":\"Remarketing Quente\",\"spend\":\"7.5\"}]}"
malformed() { rt_psql "SELECT last_error FROM ad_accounts" | grep -q "malformed"; }
rt_wait_for "a malformed reply" 30 malformed
rt_assert_eq "$BEFORE" "$(rt_psql "$SPEND")" "campaign_spend after a malformed reply"
meta '{"clear_faults":true}'
rt_psql "UPDATE ad_accounts SET next_sync_at = NULL" >/dev/null
thirty() { [ "$(rt_psql "SELECT spend_cents FROM campaign_spend WHERE day = '$TODAY' AND campaign_id = '501'")" = 3000 ]; }
rt_wait_for "the sync after the malformed reply" 30 thirty

# ---- a refused token: no more calls until a new one ----------------------------------------
meta '{"account":"111","faults":[{"kind":"token"}]}'
refused() { [ "$(rt_psql "SELECT token_invalid FROM ad_accounts")" = t ]; }
rt_wait_for "the refused token" 30 refused
N=$(calls)
sleep 2
rt_assert_eq "$N" "$(calls)" "calls with a refused token"
ok adaccount list
contains "$OUT" "refused" "adaccount list: token state"
contains "$OUT" "190/463" "adaccount list: last error"
contains "$OUT" "adaccount set 111 --token-file" "adaccount list: what to do"
lacks "$OUT" "$GOOD" "adaccount list shows the token"
bad 1 "refused the token" adaccount set act_111 --token-file "$RT_DIR/bad" --owner seller@example.com
bad 2 "needs --token-file" adaccount set act_111 --owner seller@example.com
bad 1 "no ad account act_999" adaccount set act_999 --enable --owner seller@example.com
ok adaccount set act_111 --token-file "$RT_DIR/good" --owner seller@example.com
contains "$OUT" "new token (checked with Meta)" "adaccount set"
back() { [ "$(rt_psql "SELECT token_invalid::text || coalesce (last_error, '') FROM ad_accounts")" = false ] && [ "$(calls)" -gt $((N + 2)) ]; }
rt_wait_for "syncing again with the new token" 30 back

# ---- campaign key: name ------------------------------------------------------------------
ok adaccount set act_111 --campaign-key name --owner seller@example.com
byname() { [ "$(rt_psql "SELECT count(*) FROM campaign_spend WHERE utm_campaign = 'Remarketing Quente' AND pool_id = 11")" = 1 ]; }
rt_wait_for "the rows read again by name" 30 byname
rt_assert_eq 0 "$(rt_psql "SELECT count(*) FROM campaign_spend WHERE utm_campaign ~ '^[0-9]+$'")" "rows keyed by id left"
rt_assert_eq 12 "$(rt_psql "SELECT pool_id FROM campaign_spend WHERE day = '$YDAY' AND campaign_id = '501'")" \
  "Curso Frio's pool by name yesterday"

# ---- manual spend --------------------------------------------------------------------------
ok spend set promo "$D5" 123.45
contains "$OUT" "123.45" "spend set"
ok spend set promo "$D5" 99,90
rt_assert_eq "9990" "$(rt_psql "SELECT amount_cents FROM manual_spend WHERE pool_id = 11 AND day = '$D5'")" "replaced"
ok spend set remarketing "$TODAY" 5
bad 1 "no pool nopool" spend set nopool "$TODAY" 5
bad 2 "not a day" spend set promo 2026-02-30 5
bad 2 "not an amount" spend set promo "$TODAY" 1.234
bad 2 "not an amount" spend set promo "$TODAY" 5e2
bad 1 "belongs to other@example.com" spend set others "$TODAY" 5 --owner seller@example.com
ok spend list --owner seller@example.com
contains "$OUT" "99.90" "spend list: manual"
contains "$OUT" "Curso Frio" "spend list: Meta's campaign"
contains "$OUT" "remarketing" "spend list: pool slug"
ok spend list --from "$D5" --to "$D5"
contains "$OUT" "promo" "spend list --from --to"
lacks "$OUT" "Curso Frio" "spend list --from --to keeps to the range"
bad 2 "is after" spend list --from "$TODAY" --to "$D5"
ok spend set promo "$D5" 0
contains "$OUT" "cleared" "spend set 0"
rt_assert_eq 0 "$(rt_psql "SELECT count(*) FROM manual_spend WHERE pool_id = 11")" "cleared"
rt_assert_eq "manual meta" "$(rt_psql "SELECT DISTINCT source FROM spend_daily ORDER BY 1" | tr '\n' ' ' | sed 's/ $//')" \
  "spend_daily's sources"

# ---- the JSON API, when the front serves it --------------------------------------------------
if "$(rt_bin rastro-front)" --list-routes 2>/dev/null | grep -q "/spend/manual"; then
  PORT=$(rt_free_port)
  export RASTRO_HTTP_PORT=$PORT
  sed 's/^required_acks = .*/required_acks = stored/' "$RASTRO_SOURCE_DIR/topology/local.ini" > "$RT_DIR/front.ini"
  rt_bg "$(rt_bin rastro-front)" --topology "$RT_DIR/front.ini" --instance 0
  B="http://127.0.0.1:$PORT/api/v1"
  rt_wait_for "front healthz" 30 curl -sf "http://127.0.0.1:$PORT/healthz"
  J=$RT_DIR/jar
  CSRF=$(curl -sf -c "$J" -H 'Content-Type: application/json' -d '{"email":"seller@example.com","password":"senha-forte-1"}' \
    "$B/login" | python3 -c 'import json,sys; print(json.load(sys.stdin)["csrf"])') || rt_fail "login"
  R=$(curl -sf -b "$J" "$B/spend?range=custom&from=$YDAY&to=$TODAY") || rt_fail "GET /spend"
  python3 - "$R" "$YDAY" "$TODAY" <<'PY' || rt_fail "GET /spend: $R"
import json, sys
r, yday, today = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
assert r["range"]["from"] == yday and r["range"]["to"] == today, r["range"]
rows = r["rows"]
assert {"day", "pool_id", "utm_campaign", "source", "amount_cents"} <= set(rows[0]), rows[0]
assert any(x["source"] == "manual" and x["pool_id"] == 12 and x["amount_cents"] == 500 for x in rows), rows
assert any(x["source"] == "meta" and x["utm_campaign"] == "Curso Frio" and x["day"] == today
           and x["amount_cents"] == 3000 for x in rows), rows
assert r["total_cents"] == sum(x["amount_cents"] for x in rows)
PY
  rt_assert_eq 400 "$(curl -s -o /dev/null -w '%{http_code}' -b "$J" "$B/spend?range=week")" "bad range"
  put() { curl -s -o "$RT_DIR/put.json" -w '%{http_code}' -b "$J" -X PUT -H "X-CSRF-Token: $CSRF" \
            -H 'Content-Type: application/json' -d "$1" "$B/spend/manual"; }
  rt_assert_eq 200 "$(put "{\"pool_id\":11,\"day\":\"$D5\",\"amount_cents\":4321}")" "PUT /spend/manual"
  rt_assert_eq 4321 "$(rt_psql "SELECT amount_cents FROM manual_spend WHERE pool_id = 11 AND day = '$D5'")" "PUT stored"
  rt_assert_eq 404 "$(put "{\"pool_id\":21,\"day\":\"$D5\",\"amount_cents\":1}")" "another's pool"
  rt_assert_eq 400 "$(put "{\"pool_id\":11,\"day\":\"2026-02-30\",\"amount_cents\":1}")" "bad day"
  rt_assert_eq 400 "$(put "{\"pool_id\":11,\"day\":\"$D5\",\"amount_cents\":1.5}")" "bad amount"
  rt_assert_eq 400 "$(put "{\"pool_id\":11,\"day\":\"$D5\",\"amount_cents\":-1}")" "negative amount"
  rt_assert_eq 200 "$(put "{\"pool_id\":11,\"day\":\"$D5\",\"amount_cents\":0}")" "PUT 0 clears"
  rt_assert_eq 0 "$(rt_psql "SELECT count(*) FROM manual_spend WHERE pool_id = 11")" "PUT 0 cleared"
  A=$(curl -sf -b "$J" "$B/adaccounts") || rt_fail "GET /adaccounts"
  lacks "$A" "$GOOD" "GET /adaccounts shows the token"
  contains "$A" '"account_id":"111"' "GET /adaccounts"
else
  rt_log "TODO: the front does not serve /spend yet (rst_api.c): API checks skipped"
fi

# ---- remove ---------------------------------------------------------------------------------
ok adaccount remove act_111 --owner seller@example.com
contains "$OUT" "removed" "adaccount remove"
rt_assert_eq 0 "$(rt_psql "SELECT count(*) FROM campaign_spend")" "spend rows after remove"
bad 1 "no ad account act_111" adaccount remove act_111 --owner seller@example.com

# The optimizer stops cleanly on SIGTERM; the [optimizer] section of
# topology/local.ini (what `rastro up` starts) is valid.
kill -TERM "$OPT_PID"
set +e; wait "$OPT_PID"; OPT_RC=$?; set -e
rt_assert_eq 0 "$OPT_RC" "the optimizer's exit status after SIGTERM"
grep -q "optimizer: stopped" "$OPT_LOG" || rt_fail "the optimizer did not say it stopped"
rt_bg "$(rt_bin rastro-optimizer)" --topology "$RASTRO_SOURCE_DIR/topology/local.ini" --instance 0
LOCAL_LOG=$RT_LAST_LOG
rt_wait_for "the optimizer on topology/local.ini" 30 grep -q "keeping campaign_spend" "$LOCAL_LOG"
grep -q "today_every_s = 300" "$LOCAL_LOG" || rt_fail "local.ini's today_every_s"

# Nothing printed or logged ever held a token.
for f in "$RT_DIR"/cmd-*.out "$RT_DIR"/cmd-*.err "$OPT_LOG"; do
  if grep -q -e "$GOOD" -e "$BAD" "$f"; then rt_fail "a token in $f"; fi
done
grep -q "act_111: .* rows for" "$OPT_LOG" || rt_fail "the optimizer logged no sync"
echo "test_spend: ok"
