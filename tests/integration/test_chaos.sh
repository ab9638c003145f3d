#!/usr/bin/env bash
# test_chaos — accepted means kept, never twice: a steady stream of clicks on
# two pools while every node in turn (front, recorder, enricher, limiter,
# batcher, sender) is killed with SIGKILL and restarted by `rastro up`, and
# while the fake Meta answers 503 for a while. Pool "good" has a valid pixel;
# pool "bad" has a pixel whose token Meta refuses (the events made invalid on
# purpose). At the end:
#   - every stored click of "good" was accepted by the fake Meta, and nothing
#     else was (compared as sets of event_ids);
#   - the dead-letter store holds exactly the clicks of "bad";
#   - the journal and the spool are empty.
# A copy posted twice can only come from a sender killed while its POST was in
# flight (Meta got it, the sender never heard); Meta drops such copies by
# event_id, and the test bounds and reports them.
. "$(dirname "$0")/lib.sh"
rt_setup chaos
rt_fake_telegram

META_PORT=$(rt_free_port)
rt_bg python3 "$RASTRO_SOURCE_DIR/tests/fakes/fake_meta.py" --port "$META_PORT"
export RASTRO_META_GRAPH_URL="http://127.0.0.1:$META_PORT" RASTRO_META_API_VERSION=v25.0
rt_wait_for "fake meta" 10 curl -sf "$RASTRO_META_GRAPH_URL/_fake/health"
curl -sf -X POST "$RASTRO_META_GRAPH_URL/_fake/config" -d '{"tokens":{"111":"EAAB-good-token"}}' >/dev/null

TG="700301:AAH-chaos-token-xyz"
curl -sf -X POST "$RASTRO_TELEGRAM_API_URL/_fake/bots" -d "{\"token\":\"$TG\",\"username\":\"chaos_bot\",\"id\":700301}" >/dev/null
printf '%s\n' "$TG" > "$RT_DIR/t"; printf 'EAAB-good-token\n' > "$RT_DIR/good"; printf 'EAAB-revoked-token\n' > "$RT_DIR/bad"
echo 'correct horse battery' | rastro user add chaos@example.com >/dev/null
rastro pixel add 111 --token-file "$RT_DIR/good" >/dev/null
rastro pixel add 222 --token-file "$RT_DIR/bad" >/dev/null
rastro bot add --token-file "$RT_DIR/t" >/dev/null
rastro pool add good --pixel 111 --bot chaos_bot >/dev/null
rastro pool add bad --pixel 222 --bot chaos_bot >/dev/null

PORT=$(rt_free_port)
export RASTRO_HTTP_PORT=$PORT
BASE="http://127.0.0.1:$PORT"
sed -e 's/^required_acks = .*/required_acks = stored, meta/' \
    -e 's/^ip_rate_per_min = .*/ip_rate_per_min = 1000000/' \
    -e 's/^replay_after = .*/replay_after = 3/' \
    "$RASTRO_SOURCE_DIR/topology/local.ini" > "$RT_DIR/topology.ini"
start_up() {
  rt_bg "$(rt_bin rastro)" up --topology "$RT_DIR/topology.ini"
  SUP=$RT_LAST_PID
  rt_wait_for "front healthz" 30 curl -sf "$BASE/healthz"
}
node_pid() { pgrep -P "$SUP" -x "rastro-$1" | head -n 1 || true; }
start_up

UA='Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Instagram 300.0'
CLICKER="$RASTRO_SOURCE_DIR/tests/integration/clicker.py"
python3 "$CLICKER" "$BASE/go/good?fbclid=IwAR-chaos" --count 1000000 --concurrency 2 --duration 24 \
  --header "User-Agent: $UA" > "$RT_DIR/good.txt" &
GOOD=$!
python3 "$CLICKER" "$BASE/go/bad?fbclid=IwAR-chaos" --count 1000000 --concurrency 1 --duration 24 \
  --header "User-Agent: $UA" > "$RT_DIR/bad.txt" &
BAD=$!

for node in recorder enricher limiter batcher sender front; do
  sleep 2
  pid=$(node_pid $node)
  [ -n "$pid" ] || rt_fail "no $node under the supervisor"
  rt_log "kill -9 $node ($pid)"
  kill -9 "$pid"
  if [ $node = limiter ]; then
    rt_log "fake Meta answers 503 for 4 s"
    curl -sf -X POST "$RASTRO_META_GRAPH_URL/_fake/config" -d '{"faults":[{"kind":"status","status":503,"seconds":4}]}' >/dev/null
  fi
done
wait "$GOOD" "$BAD"
rt_log "clicks: good $(grep -c '^302 ' "$RT_DIR/good.txt"), bad $(grep -c '^302 ' "$RT_DIR/bad.txt"), lost answers $(cat "$RT_DIR/good.txt" "$RT_DIR/bad.txt" | grep -c '^ERR' || true)"

# Everything that got a 302 is stored (test_durability checks it in depth).
journal_empty() { [ "$(curl -s "$BASE/metrics" | awk '$1=="rastro_journal_depth"{print $2}')" = 0 ]; }
rt_wait_for "front journal drained" 120 journal_empty
spool_empty() {
  [ "$(awk '$1=="rastro_sender_spool_batches"{print $2}' "$RASTRO_DATA_DIR/run/sender-0.prom")" = 0 ]
}
rt_wait_for "sender spool drained" 60 spool_empty

rt_psql "select 'pv-' || click_id from clicks c join pools p on p.id = c.pool_id where p.slug = 'good'" | sort > "$RT_DIR/good.expected"
rt_psql "select 'pv-' || click_id from clicks c join pools p on p.id = c.pool_id where p.slug = 'bad'" | sort > "$RT_DIR/bad.expected"
sed -n 's/^302 .*start=/pv-/p' "$RT_DIR/good.txt" | sort > "$RT_DIR/good.redirected"
[ -z "$(comm -23 "$RT_DIR/good.redirected" "$RT_DIR/good.expected")" ] || rt_fail "a redirected click is not stored"
curl -s "$RASTRO_META_GRAPH_URL/_fake/events" | python3 -c '
import json, sys
for e in json.load(sys.stdin): print(e["event_id"])' | sort > "$RT_DIR/meta.all"
sort -u "$RT_DIR/meta.all" > "$RT_DIR/meta.set"
if ! cmp -s "$RT_DIR/good.expected" "$RT_DIR/meta.set"; then
  rt_log "missing at Meta: $(comm -23 "$RT_DIR/good.expected" "$RT_DIR/meta.set" | wc -l), unexpected: $(comm -13 "$RT_DIR/good.expected" "$RT_DIR/meta.set" | wc -l)"
  rt_fail "the events accepted by Meta are not the stored clicks of pool good"
fi
dups=$(( $(wc -l < "$RT_DIR/meta.all") - $(wc -l < "$RT_DIR/meta.set") ))
rt_log "Meta accepted $(wc -l < "$RT_DIR/meta.set") events; copies posted twice: $dups"
# Only one sender was killed once, with at most max_inflight POSTs of at most
# 1000 events in flight.
[ "$dups" -le 16000 ] || rt_fail "$dups duplicate posts cannot come from one sender kill"
rt_psql "select event_id from dead_letters where pixel_id = '222'" | sort > "$RT_DIR/dlq"
rt_assert_eq 0 "$(rt_psql "select count(*) from dead_letters where pixel_id <> '222'")" "dead letters outside the bad pixel"
cmp -s "$RT_DIR/bad.expected" "$RT_DIR/dlq" || rt_fail "dead letters ($(wc -l < "$RT_DIR/dlq")) are not the clicks of pool bad ($(wc -l < "$RT_DIR/bad.expected"))"
rt_assert_eq 0 "$(rt_psql "select count(*) - count(distinct event_id) from dead_letters")" "an event dead-lettered twice"
kill -TERM "$SUP"; wait "$SUP" || rt_fail "rastro up did not stop cleanly"
echo "test_chaos: ok ($(wc -l < "$RT_DIR/meta.set") accepted, $(wc -l < "$RT_DIR/dlq") dead letters, $dups duplicate posts)"
