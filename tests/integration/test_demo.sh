#!/usr/bin/env bash
# test_demo — the demo mode's promise, end to end: scripts/demo-traffic drives
# synthetic leads (clicks, /start, buy button, PIX payment, delivery, joins)
# through `rastro up` with the fake Telegram, fake Meta and fake gateways, on
# the demo data scripts/up seeds (made here with the same CLI commands).
#
# Checks: every stage happened; the fake Meta got PageView, ViewContent,
# InitiateCheckout and Purchase; the Purchases at Meta are exactly one
# "pur-<payment id>" per payment 'paid' in PostgreSQL, which are exactly the
# charges paid at the fake gateway (no duplicate, no loss; payments made
# without a webhook found by the reconciler, [bots] reconcile_s = 2); every
# human click has its PageView at Meta and no crawler click does; each lead
# has one ViewContent, each payment one InitiateCheckout; every paid payment
# was delivered (delivery_status 'sent'), and the joins were seen.
. "$(dirname "$0")/lib.sh"
rt_setup demo
rt_fake_telegram

rt_demo_setup

# ---- rastro up ------------------------------------------------------------------------
PORT=$(rt_free_port)
export RASTRO_HTTP_PORT=$PORT RASTRO_TRUSTED_PROXIES=127.0.0.1
BASE="http://127.0.0.1:$PORT"
sed -e 's/^reconcile_s = .*/reconcile_s = 2/' "$RASTRO_SOURCE_DIR/topology/local.ini" > "$RT_DIR/topology.ini"
grep -q '^reconcile_s = 2$' "$RT_DIR/topology.ini" || rt_fail "no reconcile_s in topology/local.ini to lower"
rt_bg "$(rt_bin rastro)" up --topology "$RT_DIR/topology.ini"
SUP=$RT_LAST_PID
UP_LOG=$RT_LAST_LOG
rt_wait_for "front healthz" 60 curl -sf "$BASE/healthz"

# ---- the traffic -----------------------------------------------------------------------
python3 "$RASTRO_SOURCE_DIR/scripts/demo-traffic" --base "$BASE" --telegram "$RASTRO_TELEGRAM_API_URL" \
  --meta "$RASTRO_META_GRAPH_URL" --gateway "$GW_URL" --rate 5 --duration 40 --seed 1 --drain 120 \
  --workers 256 --summary-json "$RT_DIR/summary.json" > "$RT_DIR/traffic.log" 2>&1 \
  || rt_fail "demo-traffic failed: $(tail -5 "$RT_DIR/traffic.log")"
SUMMARY=$(grep "summary:" "$RT_DIR/traffic.log" | tail -1)
rt_log "$SUMMARY"
# The simulator's counts as shell variables: C_clicks, C_starts, ...
eval "$(python3 -c '
import json, sys
for k, v in json.load(open(sys.argv[1]))["counts"].items():
    print("C_%s=%d" % (k, v))' "$RT_DIR/summary.json")"
for stage_min in clicks:100 automated:3 starts:30 welcomes:30 buys:5 checkouts:5 payments:3 \
                 silent_payments:1 deliveries:3 joins:1; do
  stage=${stage_min%%:*} min=${stage_min#*:}
  n=$(eval echo "\${C_$stage:-0}")
  [ "$n" -ge "$min" ] || rt_fail "stage $stage: $n, expected at least $min ($SUMMARY)"
done
rt_assert_eq 0 "$C_gave_up" "leads that gave up waiting for the bot (see traffic.log)"
rt_assert_eq 0 "$C_skipped" "clicks skipped (every worker busy)"
rt_assert_eq 0 "$C_errors" "errors seen by demo-traffic (see traffic.log)"
rt_assert_eq "$C_payments" "$C_deliveries" "deliveries seen by demo-traffic vs payments"

# ---- settled: Meta, PostgreSQL and the gateway agree ------------------------------------
deadline=$((SECONDS + 120))
until rt_demo_settled; do
  [ $SECONDS -lt $deadline ] || rt_fail "Meta, PostgreSQL and the gateway still disagree after 120 s: $(rt_demo_disagree)"
  sleep 0.5
done
sleep 3     # a late duplicate would be here by now
rt_demo_settled || rt_fail "Meta, PostgreSQL and the gateway disagree after settling: $(rt_demo_disagree)"
PAID=$(wc -l < "$RT_DIR/paid.txt")
rt_assert_eq "$C_payments" "$PAID" "payments made by demo-traffic vs paid in PostgreSQL"
rt_assert_eq "$PAID" "$(rt_demo_meta_ids Purchase | uniq | wc -l)" "distinct Purchase event_ids at Meta"
# Payments made without a webhook were found by the reconciler.
[ "$(rt_psql "SELECT count(*) FROM payments WHERE status = 'paid' AND notified_at IS NULL")" -ge "$C_silent_payments" ] \
  || rt_fail "fewer payments without a webhook in PostgreSQL than demo-traffic made"
rt_assert_eq "$C_joins" "$(rt_psql "SELECT count(*) FROM payments WHERE joined_at IS NOT NULL")" \
  "joins through the invite links"

for name in PageView ViewContent InitiateCheckout Purchase; do
  [ -n "$(rt_demo_meta_ids "$name")" ] || rt_fail "no $name at the fake Meta"
done
rt_assert_eq "$(rt_psql "SELECT count(*) FROM leads")" "$(rt_demo_meta_ids ViewContent | uniq | wc -l)" \
  "ViewContent at Meta (one per lead: each simulated user starts once)"
rt_assert_eq "$(rt_demo_meta_ids ViewContent | wc -l)" "$(rt_demo_meta_ids ViewContent | uniq | wc -l)" \
  "duplicate ViewContent at Meta"
rt_assert_eq "$(rt_psql "SELECT count(*) FROM leads")" \
  "$(rt_psql "SELECT count(*) FROM leads WHERE click_id IS NOT NULL")" "leads attributed to their click"
rt_assert_eq "$(rt_psql "SELECT count(*) FROM payments")" "$(rt_demo_meta_ids InitiateCheckout | uniq | wc -l)" \
  "InitiateCheckout at Meta (one per payment)"

# ---- automated clicks are kept out of Meta ------------------------------------------------
BOTS_UA="user_agent ~* '(facebookexternalhit|meta-externalagent|telegrambot|whatsapp|googlebot|ahrefsbot)'"
rt_assert_eq "$C_clicks" "$(rt_psql "SELECT count(*) FROM clicks")" "clicks stored"
rt_assert_eq "$C_automated" "$(rt_psql "SELECT count(*) FROM clicks WHERE $BOTS_UA")" "crawler clicks stored"
rt_psql "SELECT 'pv-' || click_id FROM clicks WHERE $BOTS_UA" | sort > "$RT_DIR/crawler-pv.txt"
rt_psql "SELECT 'pv-' || click_id FROM clicks WHERE NOT $BOTS_UA" | sort > "$RT_DIR/human-pv.txt"
pageviews_in() { rt_demo_snapshot && [ "$(rt_demo_meta_ids PageView | wc -l)" -ge "$(wc -l < "$RT_DIR/human-pv.txt")" ]; }
rt_wait_for "every human click's PageView at Meta" 30 pageviews_in
rt_demo_meta_ids PageView > "$RT_DIR/meta-pv.txt"
[ -z "$(comm -12 "$RT_DIR/crawler-pv.txt" "$RT_DIR/meta-pv.txt")" ] \
  || rt_fail "crawler clicks reached Meta: $(comm -12 "$RT_DIR/crawler-pv.txt" "$RT_DIR/meta-pv.txt" | head -3)"
cmp -s "$RT_DIR/human-pv.txt" "$RT_DIR/meta-pv.txt" \
  || rt_fail "PageViews at Meta are not the human clicks: $(diff "$RT_DIR/human-pv.txt" "$RT_DIR/meta-pv.txt" | head -5)"

# ---- the run ends cleanly --------------------------------------------------------------
kill -TERM "$SUP"; wait "$SUP" || rt_fail "rastro up did not stop cleanly (see $UP_LOG)"
! grep -qF 'EAAB-DEMO-meta-token-not-real' "$UP_LOG" || rt_fail "the Meta token appears in the log"
! grep -qF 'pp-api-token' "$UP_LOG" || rt_fail "the gateway token appears in the log"
echo "test_demo: ok"
