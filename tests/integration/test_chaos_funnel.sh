#!/usr/bin/env bash
# test_chaos_funnel — accepted means kept, for purchases too: scripts/demo-traffic
# drives leads from click to payment while the bots node (twice), the front,
# the recorder, the enricher, the sender, the limiter and the batcher are
# killed with SIGKILL and restarted by `rastro up`, and the fake Meta answers
# 503 for a while. Leads caught by a kill may give up (the simulator is a
# user, not a guarantee); what rastro accepted must not be lost or doubled:
#   - every charge the gateway says paid is 'paid' in PostgreSQL (the
#     webhook journaled by the front, or the reconciler) and delivered;
#   - the Purchases at Meta are exactly "pur-<id>" of those payments, the
#     ViewContents exactly the start events stored, the InitiateCheckouts
#     exactly the checkout events stored (as sets: a copy posted twice can
#     only come from a sender killed with its POST in flight; it is counted);
#   - the journals (front, bots) and the sender's spool end empty.
. "$(dirname "$0")/lib.sh"
rt_setup chaos_funnel
rt_fake_telegram
rt_demo_setup

PORT=$(rt_free_port)
export RASTRO_HTTP_PORT=$PORT RASTRO_TRUSTED_PROXIES=127.0.0.1
BASE="http://127.0.0.1:$PORT"
sed -e 's/^reconcile_s = .*/reconcile_s = 2/' -e 's/^lease_s .*/lease_s = 4/' \
    -e 's/^replay_after = .*/replay_after = 3/' \
    "$RASTRO_SOURCE_DIR/topology/local.ini" > "$RT_DIR/topology.ini"
grep -q '^lease_s = 4$' "$RT_DIR/topology.ini" || rt_fail "no lease_s in topology/local.ini to lower"
rt_bg "$(rt_bin rastro)" up --topology "$RT_DIR/topology.ini"
SUP=$RT_LAST_PID
UP_LOG=$RT_LAST_LOG
rt_wait_for "front healthz" 60 curl -sf "$BASE/healthz"
node_pid() { pgrep -P "$SUP" -x "rastro-$1" | head -n 1 || true; }

python3 "$RASTRO_SOURCE_DIR/scripts/demo-traffic" --base "$BASE" --telegram "$RASTRO_TELEGRAM_API_URL" \
  --meta "$RASTRO_META_GRAPH_URL" --gateway "$GW_URL" --rate 4 --duration 36 --seed 7 --drain 90 \
  --workers 256 --summary-json "$RT_DIR/summary.json" > "$RT_DIR/traffic.log" 2>&1 &
TRAFFIC=$!

sleep 6
for node in bots recorder front enricher bots sender limiter batcher; do
  sleep 3
  pid=$(node_pid $node)
  [ -n "$pid" ] || rt_fail "no $node under the supervisor"
  rt_log "kill -9 $node ($pid)"
  kill -9 "$pid"
  if [ $node = sender ]; then
    rt_log "fake Meta answers 503 for 4 s"
    curl -sf -X POST "$RASTRO_META_GRAPH_URL/_fake/config" -d '{"faults":[{"kind":"status","status":503,"seconds":4}]}' >/dev/null
  fi
done
wait "$TRAFFIC" || true
rt_log "$(grep "summary:" "$RT_DIR/traffic.log" | tail -1)"

# ---- drained ---------------------------------------------------------------------------------
prom() { awk -v k="$2" '$1 == k { print $2 }' "$RASTRO_DATA_DIR/run/$1.prom" 2>/dev/null; }
drained() {
  [ "$(curl -s "$BASE/metrics" | awk '$1=="rastro_journal_depth"{print $2}')" = 0 ] \
    && [ "$(prom bots-0 rastro_journal_depth)" = 0 ] \
    && [ "$(prom sender-0 rastro_sender_spool_batches)" = 0 ]
}
rt_wait_for "journals and spool drained" 120 drained

# ---- what the gateway, PostgreSQL and Meta say ------------------------------------------------
agree() {
  rt_demo_snapshot || return 1
  python3 - "$GW_URL" > "$RT_DIR/gw-paid-ids.txt" <<'PY' || return 1
import json, sys, urllib.request
for c in json.load(urllib.request.urlopen(sys.argv[1] + "/_fake/charges")):
    if c["status"] == "paid":
        print(c["id"])
PY
  sort -o "$RT_DIR/gw-paid-ids.txt" "$RT_DIR/gw-paid-ids.txt"
  rt_psql "SELECT charge_id FROM payments WHERE status = 'paid'" | sort > "$RT_DIR/pg-paid-ids.txt"
  cmp -s "$RT_DIR/gw-paid-ids.txt" "$RT_DIR/pg-paid-ids.txt" \
    && [ "$(rt_demo_meta_ids Purchase | uniq)" = "$(cat "$RT_DIR/paid.txt")" ] \
    && [ "$(cat "$RT_DIR/undelivered.txt")" = 0 ]
}
deadline=$((SECONDS + 120))
until agree; do
  [ $SECONDS -lt $deadline ] || rt_fail "after 120 s: paid at the gateway $(wc -l < "$RT_DIR/gw-paid-ids.txt"), in PostgreSQL $(wc -l < "$RT_DIR/pg-paid-ids.txt"); $(rt_demo_disagree)"
  sleep 1
done
PAID=$(wc -l < "$RT_DIR/paid.txt")
[ "$PAID" -ge 3 ] || rt_fail "only $PAID payments went through: the run proves little ($(tail -3 "$RT_DIR/traffic.log"))"
rt_psql "SELECT event_id FROM funnel_events WHERE type = 'start'" | sort > "$RT_DIR/vc.expected"
rt_psql "SELECT event_id FROM funnel_events WHERE type = 'checkout'" | sort > "$RT_DIR/ic.expected"
cmp -s "$RT_DIR/vc.expected" <(rt_demo_meta_ids ViewContent | uniq) \
  || rt_fail "ViewContents at Meta are not the stored starts: $(diff "$RT_DIR/vc.expected" <(rt_demo_meta_ids ViewContent | uniq) | head -4)"
cmp -s "$RT_DIR/ic.expected" <(rt_demo_meta_ids InitiateCheckout | uniq) \
  || rt_fail "InitiateCheckouts at Meta are not the stored checkouts: $(diff "$RT_DIR/ic.expected" <(rt_demo_meta_ids InitiateCheckout | uniq) | head -4)"
rt_assert_eq "$(rt_psql "SELECT count(*) FROM payments")" "$(wc -l < "$RT_DIR/ic.expected")" \
  "checkout events stored vs payments"
dups=$(( $(wc -l < "$RT_DIR/meta.txt") - $(sort -u "$RT_DIR/meta.txt" | wc -l) ))
kill -TERM "$SUP"; wait "$SUP" || rt_fail "rastro up did not stop cleanly"
echo "test_chaos_funnel: ok ($PAID purchases, $(wc -l < "$RT_DIR/vc.expected") starts, $dups copies posted twice)"
