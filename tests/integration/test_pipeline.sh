#!/usr/bin/env bash
# test_pipeline — clicks end to end through `rastro up`: front → recorder →
# enricher → limiter → batcher → sender → (fake) Meta, with the front's
# journal waiting for both acks (stored, meta). Checks every human click
# reaches Meta exactly once as a valid PageView, automated clicks never do,
# a Meta outage delays but loses nothing, and everything drains.
. "$(dirname "$0")/lib.sh"
rt_setup pipeline
rt_fake_telegram

META_PORT=$(rt_free_port)
rt_bg python3 "$RASTRO_SOURCE_DIR/tests/fakes/fake_meta.py" --port "$META_PORT"
export RASTRO_META_GRAPH_URL="http://127.0.0.1:$META_PORT" RASTRO_META_API_VERSION=v25.0
rt_wait_for "fake meta" 10 curl -sf "$RASTRO_META_GRAPH_URL/_fake/health"
META_TOKEN="EAAB-pipeline-token-xyz"
curl -sf -X POST "$RASTRO_META_GRAPH_URL/_fake/config" -d "{\"tokens\":{\"123456789\":\"$META_TOKEN\"}}" >/dev/null

TG_TOKEN="700201:AAH-pipeline-token-xyz"
curl -sf -X POST "$RASTRO_TELEGRAM_API_URL/_fake/bots" -d "{\"token\":\"$TG_TOKEN\",\"username\":\"pipe_bot\",\"id\":700201}" >/dev/null
printf '%s\n' "$TG_TOKEN" > "$RT_DIR/t"; printf '%s\n' "$META_TOKEN" > "$RT_DIR/m"
echo 'correct horse battery' | rastro user add pipe@example.com >/dev/null
rastro pixel add 123456789 --token-file "$RT_DIR/m" >/dev/null
rastro bot add --token-file "$RT_DIR/t" >/dev/null
rastro pool add pipe --pixel 123456789 --bot pipe_bot >/dev/null

PORT=$(rt_free_port)
export RASTRO_HTTP_PORT=$PORT
BASE="http://127.0.0.1:$PORT"
# Every click of this test comes from 127.0.0.1: lift the per-IP automated
# threshold (tested on its own in test_enricher) so that they count as human.
sed -e 's/^required_acks = .*/required_acks = stored, meta/' \
    -e 's/^ip_rate_per_min = .*/ip_rate_per_min = 1000000/' \
    "$RASTRO_SOURCE_DIR/topology/local.ini" > "$RT_DIR/topology.ini"
rt_bg "$(rt_bin rastro)" up --topology "$RT_DIR/topology.ini"
SUP=$RT_LAST_PID
rt_wait_for "front healthz" 30 curl -sf "$BASE/healthz"

meta_count() { curl -s "$RASTRO_META_GRAPH_URL/_fake/events" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
CLICKER="$RASTRO_SOURCE_DIR/tests/integration/clicker.py"
UA='Mozilla/5.0 (Linux; Android 14; SM-A546E) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36'

# --- human and automated clicks ---------------------------------------------
python3 "$CLICKER" "$BASE/go/pipe?utm_source=facebook&fbclid=IwAR2F4-dbP0l7Mn1IawQQ" --count 300 --concurrency 3 \
  --header "User-Agent: $UA" > "$RT_DIR/human.txt"
python3 "$CLICKER" "$BASE/go/pipe" --count 40 --header 'User-Agent: facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)' > "$RT_DIR/crawler.txt"
python3 "$CLICKER" "$BASE/go/pipe" --count 10 --header 'User-Agent:' > "$RT_DIR/empty.txt"
rt_assert_eq 300 "$(grep -c '^302 ' "$RT_DIR/human.txt")" "human redirects"
rt_assert_eq 50 "$(cat "$RT_DIR/crawler.txt" "$RT_DIR/empty.txt" | grep -c '^302 ')" "automated traffic redirected too"
rt_wait_for "300 PageViews at Meta" 30 bash -c "[ \"\$(curl -s $RASTRO_META_GRAPH_URL/_fake/events | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')\" -ge 300 ]"
sleep 2   # anything extra (duplicates, automated) would arrive by now

curl -s "$RASTRO_META_GRAPH_URL/_fake/events" > "$RT_DIR/meta.json"
sed -n 's/^302 .*start=/pv-/p' "$RT_DIR/human.txt" | sort > "$RT_DIR/expected.txt"
python3 - "$RT_DIR/meta.json" "$RT_DIR/expected.txt" "$UA" <<'PY' || rt_fail "events at Meta are not what was clicked"
import hashlib, json, sys
events = json.load(open(sys.argv[1]))
expected = set(open(sys.argv[2]).read().split())
ua = sys.argv[3]
ids = [e["event_id"] for e in events]
assert len(ids) == len(set(ids)), "an event_id reached Meta twice"
assert set(ids) == expected, "missing %d, unexpected %d" % (len(expected - set(ids)), len(set(ids) - expected))
for e in events:
    ev = e["event"]
    assert ev["event_name"] == "PageView" and ev["action_source"] == "website", ev
    assert ev["event_source_url"].startswith("http://127.0.0.1:") and "/go/pipe?" in ev["event_source_url"], ev
    ud = ev["user_data"]
    assert ud["client_user_agent"] == ua, ud
    click = ev["event_id"][3:]
    ext = ud["external_id"] if isinstance(ud["external_id"], str) else ud["external_id"][0]
    assert ext == hashlib.sha256(click.encode()).hexdigest(), "external_id is not sha256(click_id)"
    assert ud["fbc"].startswith("fb.1.") and ud["fbc"].endswith(".IwAR2F4-dbP0l7Mn1IawQQ"), ud
    assert abs(ev["event_time"] - e["received"]) < 120, "event_time is not in seconds"
PY

# --- a Meta outage delays delivery, loses nothing ---------------------------
curl -sf -X POST "$RASTRO_META_GRAPH_URL/_fake/config" -d '{"faults":[{"kind":"status","status":503,"seconds":4}]}' >/dev/null
python3 "$CLICKER" "$BASE/go/pipe?fbclid=AbC" --count 100 --concurrency 2 --header "User-Agent: $UA" > "$RT_DIR/outage.txt"
rt_wait_for "clicks made during the outage at Meta" 60 bash -c "[ \"\$(curl -s $RASTRO_META_GRAPH_URL/_fake/events | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')\" -ge 400 ]"
sleep 2
rt_assert_eq 400 "$(meta_count)" "events at Meta after the outage"
rt_assert_eq 0 "$(curl -s "$RASTRO_META_GRAPH_URL/_fake/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["duplicates"])')" "duplicates at Meta"

# --- every journal and spool drains -------------------------------------------
rt_wait_for "front journal drained" 60 bash -c "[ \"\$(curl -s $BASE/metrics | awk '\$1==\"rastro_journal_depth\"{print \$2}')\" = 0 ]"
rastro status >/dev/null || rt_fail "rastro status not healthy"
kill -TERM "$SUP"; wait "$SUP" || rt_fail "rastro up did not stop cleanly"
! grep -rqF "$META_TOKEN" "$RT_DIR"/*.log || rt_fail "the Meta token appears in a log"
echo "test_pipeline: ok"
