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

META_PORT=$(rt_free_port)
rt_bg python3 "$RASTRO_SOURCE_DIR/tests/fakes/fake_meta.py" --port "$META_PORT" --quiet
export RASTRO_META_GRAPH_URL="http://127.0.0.1:$META_PORT"
GW_PORT=$(rt_free_port)
rt_bg python3 "$RASTRO_SOURCE_DIR/tests/fakes/fake_gateways.py" --port "$GW_PORT"
GW_URL="http://127.0.0.1:$GW_PORT"
export RASTRO_GATEWAY_MERCADOPAGO_URL=$GW_URL RASTRO_GATEWAY_PUSHINPAY_URL=$GW_URL \
  RASTRO_GATEWAY_SYNCPAY_URL=$GW_URL
rt_wait_for "fake meta" 10 curl -sf "$RASTRO_META_GRAPH_URL/_fake/health"
rt_wait_for "fake gateways" 10 curl -sf "$GW_URL/_fake/health"

# ---- the demo data, as scripts/up seeds it ---------------------------------------
DEMO_CHAT=-1001234567890
curl -sf -X POST "$RASTRO_META_GRAPH_URL/_fake/config" \
  -d '{"tokens":{"100000000000001":"EAAB-DEMO-meta-token-not-real"}}' >/dev/null
curl -sf -X POST "$RASTRO_TELEGRAM_API_URL/_fake/bots" -d '{"token":"910001:DEMO-token-one-not-real","username":"rastro_demo_one_bot","id":910001}' >/dev/null
curl -sf -X POST "$RASTRO_TELEGRAM_API_URL/_fake/bots" -d '{"token":"910002:DEMO-token-two-not-real","username":"rastro_demo_two_bot","id":910002}' >/dev/null
curl -sf -X POST "$RASTRO_TELEGRAM_API_URL/_fake/chats" \
  -d "{\"chat_id\":$DEMO_CHAT,\"title\":\"alunos\",\"admins\":[910001,910002]}" >/dev/null
D=$RT_DIR/demo
(umask 077; mkdir -p "$D"
 printf '910001:DEMO-token-one-not-real\n' > "$D/bot1"
 printf '910002:DEMO-token-two-not-real\n' > "$D/bot2"
 printf 'EAAB-DEMO-meta-token-not-real\n' > "$D/meta"
 printf '{"token":"pp-api-token","webhook_token":"pp-webhook-token"}\n' > "$D/pushinpay.json"
 printf '<b>Curso Tráfego Pago Pro</b> 🚀\n\nAprenda a anunciar do zero.\n' > "$D/welcome.html")
echo 'demo-rastro' | rastro user add demo@rastro.local >/dev/null
rastro pixel add 100000000000001 --token-file "$D/meta" --test-event-code TEST00000 >/dev/null
rastro bot add --token-file "$D/bot1" >/dev/null
rastro bot add --token-file "$D/bot2" >/dev/null
rastro pool add demo --pixel 100000000000001 --bot rastro_demo_one_bot:2 --bot rastro_demo_two_bot:1 \
  --strategy weighted >/dev/null
for bot in rastro_demo_one_bot rastro_demo_two_bot; do
  rastro gateway set "$bot" pushinpay --credentials-file "$D/pushinpay.json" >/dev/null
  rastro offer add --bot "$bot" --name 'Curso Tráfego Pago Pro' --price 97.00 \
    --deliver-chat "$DEMO_CHAT" --welcome-file "$D/welcome.html" >/dev/null
done

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
# snapshot: the fake Meta's events as "<event_name> <event_id>" lines in
# $RT_DIR/meta.txt, the number of charges paid at the fake gateway in
# $RT_DIR/gw-paid.txt, and the payments in PostgreSQL in $RT_DIR/paid.txt
# ("pur-<id>" of each paid one, sorted) and $RT_DIR/undelivered.txt.
snapshot() {
  curl -sf "$RASTRO_META_GRAPH_URL/_fake/events" > "$RT_DIR/meta.json" || return 1
  curl -sf "$GW_URL/_fake/charges" > "$RT_DIR/charges.json" || return 1
  python3 - "$RT_DIR" <<'PY' || return 1
import json, os, sys
d = sys.argv[1]
with open(os.path.join(d, "meta.txt"), "w") as f:
    for e in json.load(open(os.path.join(d, "meta.json"))):
        f.write("%s %s\n" % (e["event"]["event_name"], e["event_id"]))
with open(os.path.join(d, "gw-paid.txt"), "w") as f:
    f.write("%d\n" % sum(1 for c in json.load(open(os.path.join(d, "charges.json")))
                         if c["status"] == "paid"))
PY
  rt_psql "SELECT 'pur-' || id FROM payments WHERE status = 'paid'" | sort > "$RT_DIR/paid.txt"
  rt_psql "SELECT count(*) FROM payments WHERE status = 'paid' AND delivery_status <> 'sent'" \
    > "$RT_DIR/undelivered.txt"
}
meta_ids() { awk -v n="$1" '$1 == n { print $2 }' "$RT_DIR/meta.txt" | sort; }
settled() {
  snapshot && [ "$(meta_ids Purchase)" = "$(cat "$RT_DIR/paid.txt")" ] \
    && [ "$(wc -l < "$RT_DIR/paid.txt")" = "$(cat "$RT_DIR/gw-paid.txt")" ] \
    && [ "$(cat "$RT_DIR/undelivered.txt")" = 0 ]
}
disagree() {
  echo "Purchases at Meta $(meta_ids Purchase | wc -l) (distinct $(meta_ids Purchase | uniq | wc -l)," \
    "missing: $(comm -13 <(meta_ids Purchase | uniq) "$RT_DIR/paid.txt" | head -3 | tr '\n' ' ')," \
    "unknown: $(comm -23 <(meta_ids Purchase | uniq) "$RT_DIR/paid.txt" | head -3 | tr '\n' ' '))," \
    "paid in PostgreSQL $(wc -l < "$RT_DIR/paid.txt"), paid at the gateway $(cat "$RT_DIR/gw-paid.txt")," \
    "paid but not delivered $(cat "$RT_DIR/undelivered.txt")"
}
deadline=$((SECONDS + 120))
until settled; do
  [ $SECONDS -lt $deadline ] || rt_fail "Meta, PostgreSQL and the gateway still disagree after 120 s: $(disagree)"
  sleep 0.5
done
sleep 3     # a late duplicate would be here by now
settled || rt_fail "Meta, PostgreSQL and the gateway disagree after settling: $(disagree)"
PAID=$(wc -l < "$RT_DIR/paid.txt")
rt_assert_eq "$C_payments" "$PAID" "payments made by demo-traffic vs paid in PostgreSQL"
rt_assert_eq "$PAID" "$(meta_ids Purchase | uniq | wc -l)" "distinct Purchase event_ids at Meta"
# Payments made without a webhook were found by the reconciler.
[ "$(rt_psql "SELECT count(*) FROM payments WHERE status = 'paid' AND notified_at IS NULL")" -ge "$C_silent_payments" ] \
  || rt_fail "fewer payments without a webhook in PostgreSQL than demo-traffic made"
rt_assert_eq "$C_joins" "$(rt_psql "SELECT count(*) FROM payments WHERE joined_at IS NOT NULL")" \
  "joins through the invite links"

for name in PageView ViewContent InitiateCheckout Purchase; do
  [ -n "$(meta_ids "$name")" ] || rt_fail "no $name at the fake Meta"
done
rt_assert_eq "$(rt_psql "SELECT count(*) FROM leads")" "$(meta_ids ViewContent | uniq | wc -l)" \
  "ViewContent at Meta (one per lead: each simulated user starts once)"
rt_assert_eq "$(meta_ids ViewContent | wc -l)" "$(meta_ids ViewContent | uniq | wc -l)" \
  "duplicate ViewContent at Meta"
rt_assert_eq "$(rt_psql "SELECT count(*) FROM leads")" \
  "$(rt_psql "SELECT count(*) FROM leads WHERE click_id IS NOT NULL")" "leads attributed to their click"
rt_assert_eq "$(rt_psql "SELECT count(*) FROM payments")" "$(meta_ids InitiateCheckout | uniq | wc -l)" \
  "InitiateCheckout at Meta (one per payment)"

# ---- automated clicks are kept out of Meta ------------------------------------------------
BOTS_UA="user_agent ~* '(facebookexternalhit|meta-externalagent|telegrambot|whatsapp|googlebot|ahrefsbot)'"
rt_assert_eq "$C_clicks" "$(rt_psql "SELECT count(*) FROM clicks")" "clicks stored"
rt_assert_eq "$C_automated" "$(rt_psql "SELECT count(*) FROM clicks WHERE $BOTS_UA")" "crawler clicks stored"
rt_psql "SELECT 'pv-' || click_id FROM clicks WHERE $BOTS_UA" | sort > "$RT_DIR/crawler-pv.txt"
rt_psql "SELECT 'pv-' || click_id FROM clicks WHERE NOT $BOTS_UA" | sort > "$RT_DIR/human-pv.txt"
pageviews_in() { snapshot && [ "$(meta_ids PageView | wc -l)" -ge "$(wc -l < "$RT_DIR/human-pv.txt")" ]; }
rt_wait_for "every human click's PageView at Meta" 30 pageviews_in
meta_ids PageView > "$RT_DIR/meta-pv.txt"
[ -z "$(comm -12 "$RT_DIR/crawler-pv.txt" "$RT_DIR/meta-pv.txt")" ] \
  || rt_fail "crawler clicks reached Meta: $(comm -12 "$RT_DIR/crawler-pv.txt" "$RT_DIR/meta-pv.txt" | head -3)"
cmp -s "$RT_DIR/human-pv.txt" "$RT_DIR/meta-pv.txt" \
  || rt_fail "PageViews at Meta are not the human clicks: $(diff "$RT_DIR/human-pv.txt" "$RT_DIR/meta-pv.txt" | head -5)"

# ---- the run ends cleanly --------------------------------------------------------------
kill -TERM "$SUP"; wait "$SUP" || rt_fail "rastro up did not stop cleanly (see $UP_LOG)"
! grep -qF 'EAAB-DEMO-meta-token-not-real' "$UP_LOG" || rt_fail "the Meta token appears in the log"
! grep -qF 'pp-api-token' "$UP_LOG" || rt_fail "the gateway token appears in the log"
echo "test_demo: ok"
