#!/usr/bin/env bash
# test_sender — the sender against the fake Graph API (issue 3, §4-§6).
#
# Starts rastro-sender on a private topology and tests/fakes/fake_meta.py,
# and plays the batcher + journal with bench_push_batches. Checks:
#   1. batches are accepted exactly once (event_id sets compared) and acked;
#   2. duplicates (replays, twice per batch) are dropped and still acked;
#   3. 5xx then recovery;
#   4. throttling with a wait hint: that pixel waits, another keeps flowing;
#   5. an invalid token: dead letters with reason and fbtrace_id;
#   6. one bad event in a batch of 10: 9 accepted with their ids, 1 dead letter;
#   7. a too-old event: dead letter without being posted;
#   8. kill -9 mid-stream + restart: everything accepted exactly once;
#   9. rastro dlq list/show/replay/purge (replay after fixing the token);
#  10. tokens never in logs; SIGTERM exits cleanly with no sanitizer report.
. "$(dirname "$0")/lib.sh"
rt_setup sender

SND=$(rt_bin rastro-sender)
PUSH=$(rt_bin bench/bench_push_batches)
[ -x "$SND" ] || rt_fail "no $SND (build the rastro-sender target)"
[ -x "$PUSH" ] || rt_fail "no $PUSH (build the bench_push_batches target)"

rastro db migrate >"$RT_DIR/migrate.log" 2>&1 || rt_fail "migrate failed"
echo 'sender-test-pw' | rastro user add ana@example.com >/dev/null 2>&1 || rt_fail "user add"
for p in 111 222 333 444; do
  printf 'tok-%s-s3cr3t' "$p" >"$RT_DIR/tok$p"
  rastro pixel add "$p" --token-file "$RT_DIR/tok$p" >/dev/null 2>&1 || rt_fail "pixel add $p"
done
rastro pixel set 333 --rate 500 --test-event-code TEST333 >/dev/null || rt_fail "pixel set"
rt_assert_eq "500|TEST333" "$(rt_psql "SELECT rate_per_s || '|' || test_event_code FROM pixels WHERE pixel_id = '333'")" \
  "pixel set stored rate and code"
rastro pixel set 333 --no-test-event-code >/dev/null || rt_fail "pixel set --no-test-event-code"
rt_assert_eq "500|" "$(rt_psql "SELECT rate_per_s || '|' || coalesce(test_event_code, '') FROM pixels WHERE pixel_id = '333'")" \
  "test event code removed"

META_PORT=$(rt_free_port)
rt_bg python3 "$RASTRO_SOURCE_DIR/tests/fakes/fake_meta.py" --port "$META_PORT" --quiet
META=http://127.0.0.1:$META_PORT
export RASTRO_META_GRAPH_URL=$META RASTRO_META_API_VERSION=v25.0
rt_wait_for "fake meta" 10 curl -sf "$META/_fake/health"
fake() { curl -sf -XPOST "$META/_fake/config" -d "$1" >/dev/null || rt_fail "fake config $1"; }
# 444 is known to rastro but not to the fake: its token is "invalid".
fake '{"tokens":{"111":"tok-111-s3cr3t","222":"tok-222-s3cr3t","333":"tok-333-s3cr3t"}}'

TOPO=$RT_DIR/topology.ini
cat >"$TOPO" <<'INI'
[front]
acks = @ipc://{data}/run/front-{i}-acks.sock

[sender]
in           = @ipc://{data}/run/sender-{i}-in.sock
spool        = {data}/sender-{i}/spool
acks         = front.acks
outcomes     = @ipc://{data}/run/sender-{i}-outcomes.sock
timeout_ms   = 1500
max_inflight = 8
backoff_min_ms = 200
backoff_max_ms = 2000
INI
IN=ipc://$RASTRO_DATA_DIR/run/sender-0-in.sock
ACKS=ipc://$RASTRO_DATA_DIR/run/front-0-acks.sock
PROM=$RASTRO_DATA_DIR/run/sender-0.prom

start_sender() {
  rt_bg "$SND" --topology "$TOPO" --instance 0
  SND_PID=$RT_LAST_PID
  SND_LOG=$RT_LAST_LOG
  rt_wait_for "sender start" 20 grep -q "sending to Meta" "$SND_LOG"
}
push() { "$PUSH" --push "$IN" --acks "$ACKS" --owner "$(rt_psql "SELECT id FROM users")" "$@"; }
# fake_ids RUN: "<copies>/<distinct>" of the fake's accepted events of RUN.
fake_ids() {
  curl -sf "$META/_fake/events" | python3 -c "
import json, sys
ids = [e['event_id'] for e in json.load(sys.stdin) if e['event_id'].startswith('$1-')]
print('%d/%d' % (len(ids), len(set(ids))))"
}
expect_ids() {  # expect_ids RUN N: exactly N distinct events of RUN, each once
  rt_wait_for "$2 events of run $1 at the fake" 30 bash -c "[ \"\$(curl -sf '$META/_fake/events' | python3 -c \"
import json, sys
ids = [e['event_id'] for e in json.load(sys.stdin) if e['event_id'].startswith('$1-')]
print(len(ids))\")\" -ge $2 ]"
  sleep 0.5
  rt_assert_eq "$2/$2" "$(fake_ids "$1")" "events of run $1 at the fake (copies/distinct)"
}
metric() { awk -v m="$1" '$1 == m { print $2 }' "$PROM"; }
dl() { rt_psql "SELECT count(*) FROM dead_letters WHERE $1"; }

"$SND" --help | grep -q -- "--topology" || rt_fail "--help does not describe --topology"
start_sender
grep -q "max_inflight = 8" "$SND_LOG" || rt_fail "the effective config is not printed"

# 1. Plain run.
rt_log "1: 3000 events in batches of 500"
push --pixel 111 --run one --count 3000 --per-batch 500 --timeout 30 >"$RT_DIR/p1.out" \
  || { cat "$RT_DIR/p1.out" >&2; rt_fail "run one not acked"; }
expect_ids one 3000
curl -sf "$META/_fake/events?pixel=111" | python3 -c "
import json, sys
e = [x for x in json.load(sys.stdin) if x['event_id'] == 'one-0'][0]
assert e['event']['action_source'] == 'website' and e['event']['user_data']['client_user_agent']
assert e['test_event_code'] is None" || rt_fail "event one-0 as the fake recorded it"

# 2. Duplicates: the same events again, every batch twice.
rt_log "2: run one replayed, every batch twice"
push --pixel 111 --run one --count 3000 --per-batch 500 --dup --timeout 30 >"$RT_DIR/p2.out" \
  || { cat "$RT_DIR/p2.out" >&2; rt_fail "replayed events were not acked"; }
sleep 1
rt_assert_eq "3000/3000" "$(fake_ids one)" "run one after the replay"
rt_wait_for "duplicates in the metrics" 5 \
  bash -c "awk '\$1 == \"rastro_sender_duplicates_total\" && \$2 >= 3000' '$PROM' | grep -q ."

# 3. 5xx then recovery.
rt_log "3: three 503s, then recovery"
fake '{"faults":[{"kind":"status","status":503,"pixel":"111","count":3}]}'
push --pixel 111 --run five --count 200 --per-batch 100 --timeout 30 >/dev/null || rt_fail "run five not acked"
expect_ids five 200
rt_wait_for "retries in the metrics" 5 \
  bash -c "awk '\$1 == \"rastro_sender_retries_total\" && \$2 >= 3' '$PROM' | grep -q ."

# 4. Throttling: pixel 222 waits for its hint, pixel 333 keeps flowing.
rt_log "4: pixel 222 throttled (Retry-After 4 s), pixel 333 unaffected"
fake '{"faults":[{"kind":"throttle","code":17,"pixel":"222","count":1,"retry_after":4}]}'
push --pixel 222 --run thr --count 100 --per-batch 100 --timeout 30 >/dev/null || rt_fail "run thr not acked"
push --pixel 333 --run free --count 300 --per-batch 100 --timeout 30 >/dev/null || rt_fail "run free not acked"
expect_ids free 300
expect_ids thr 100
# Judged on the fake's own clock, not on how fast this machine ran the test:
# pixel 333's first request came before pixel 222's retry, and the retry came
# no sooner than the 4 s hint after the throttled request.
curl -sf "$META/_fake/requests" | python3 -c '
import json, sys
reqs = json.load(sys.stdin)
p222 = [r for r in reqs if r["pixel"] == "222"]
p333 = [r for r in reqs if r["pixel"] == "333"]
throttled = [r for r in p222 if r["code"] == 17]
assert throttled, "no throttled request"
after = [r for r in p222 if r["time"] > throttled[0]["time"]]
assert after, "pixel 222 never retried"
gap = after[0]["time"] - throttled[0]["time"]
assert gap >= 3.9, "pixel 222 retried %.2f s after a 4 s hint" % gap
assert p333 and p333[0]["time"] < after[0]["time"], "pixel 333 waited for pixel 222"
' || rt_fail "pixel 222 did not wait for its hint, or held pixel 333 back"
grep -q "pixel 222: (#17)" "$SND_LOG" || rt_fail "throttling not logged"

# 5. Invalid token: dead letters with reason and fbtrace_id.
rt_log "5: pixel 444 with a token Meta refuses"
push --pixel 444 --run tok --count 20 --per-batch 10 --timeout 30 >/dev/null || rt_fail "run tok not acked"
rt_wait_for "dead letters of pixel 444" 20 bash -c "[ \"\$(psql \"\$RASTRO_DATABASE_URL\" -qAtX -c \"SELECT count(*) FROM dead_letters WHERE pixel_id = '444'\")\" = 20 ]"
rt_assert_eq 20 "$(dl "pixel_id = '444' AND reason = 'token' AND error_code = 190 AND fbtrace_id LIKE 'F%' AND payload->>'event_id' = event_id")" \
  "token dead letters carry Meta's error"

# 6. One bad event in a batch of 10.
rt_log "6: one bad event in a batch of 10"
push --pixel 111 --run bad --count 10 --per-batch 10 --bad 3 --timeout 30 >/dev/null || rt_fail "run bad not acked"
expect_ids bad 9
rt_wait_for "the bad event's dead letter" 10 bash -c "[ \"\$(psql \"\$RASTRO_DATABASE_URL\" -qAtX -c \"SELECT count(*) FROM dead_letters WHERE event_id = 'bad-3' AND reason = 'invalid-parameter' AND error_code = 100\")\" = 1 ]"
[ "$(curl -sf "$META/_fake/events" | grep -c '"bad-3"')" = 0 ] || rt_fail "bad-3 was accepted"

# 7. A too-old event: dead letter without posting.
rt_log "7: a too-old event"
push --pixel 111 --run old --count 5 --per-batch 5 --old 2 --timeout 30 >/dev/null || rt_fail "run old not acked"
expect_ids old 4
rt_wait_for "the too-old dead letter" 10 bash -c "[ \"\$(psql \"\$RASTRO_DATABASE_URL\" -qAtX -c \"SELECT count(*) FROM dead_letters WHERE event_id = 'old-2' AND reason = 'too-old' AND http_status IS NULL\")\" = 1 ]"
[ "$(curl -sf "$META/_fake/requests" | python3 -c "
import json, sys; print(sum(1 for r in json.load(sys.stdin) if r['subcode'] == 2804003))")" = 0 ] \
  || rt_fail "a too-old event was posted"

# 8. kill -9 mid-stream, restart.
rt_log "8: kill -9 of the sender mid-stream"
push --pixel 111 --run crash --count 6000 --per-batch 200 --rate 15 --replay-ms 2000 --timeout 90 \
  >"$RT_DIR/p8.out" &
PUSH_PID=$!
sleep 1.5
kill -9 "$SND_PID"
wait "$SND_PID" 2>/dev/null || true
rt_log "   $(fake_ids crash) accepted when the sender was killed"
sleep 0.5
start_sender
wait $PUSH_PID || { cat "$RT_DIR/p8.out" >&2; rt_fail "run crash not fully acked"; }
# Every event accepted; a POST in flight at the kill may have reached Meta
# without the sender hearing it: its events are posted again (same event_ids,
# which Meta de-duplicates). That is at most pixel_inflight (4) x 200 copies.
rt_wait_for "all of run crash at the fake" 60 bash -c "[ \"\$(curl -sf '$META/_fake/events' | python3 -c \"
import json, sys
print(len({e['event_id'] for e in json.load(sys.stdin) if e['event_id'].startswith('crash-')}))\")\" = 6000 ]"
CRASH=$(fake_ids crash)
rt_log "   run crash at the fake (copies/distinct): $CRASH"
[ "${CRASH%/*}" -le 6800 ] || rt_fail "more copies than the POSTs in flight at the kill explain: $CRASH"
rt_wait_for "an empty spool" 20 bash -c "awk '\$1 == \"rastro_sender_spool_batches\" && \$2 == 0' '$PROM' | grep -q ."

# 9. rastro dlq.
rt_log "9: rastro dlq list/show/replay/purge"
rastro dlq --help | grep -q "replay" || rt_fail "dlq --help"
rastro dlq list --pixel 444 >"$RT_DIR/dlq.out" || rt_fail "dlq list"
[ "$(grep -c "tok-" "$RT_DIR/dlq.out")" = 20 ] || rt_fail "dlq list does not show the 20 rows"
ID=$(rt_psql "SELECT min(id) FROM dead_letters WHERE pixel_id = '444'")
rastro dlq show "$ID" >"$RT_DIR/show.out" || rt_fail "dlq show"
grep -q "fbtrace_id" "$RT_DIR/show.out" && grep -q '"event_id"' "$RT_DIR/show.out" || rt_fail "dlq show output"
rastro dlq show 99999999 2>"$RT_DIR/err.out" && rt_fail "dlq show of an unknown id succeeded"
[ "$(wc -l <"$RT_DIR/err.out")" = 1 ] || rt_fail "not a one-line error"
rastro dlq replay 2>/dev/null && rt_fail "dlq replay without an id succeeded"
fake '{"tokens":{"444":"tok-444-s3cr3t"}}'
rastro dlq replay --all --pixel 444 | grep -q "20 dead letters queued" || rt_fail "dlq replay"
expect_ids tok 20
rt_wait_for "replayed_at set" 10 bash -c "[ \"\$(psql \"\$RASTRO_DATABASE_URL\" -qAtX -c \"SELECT count(*) FROM dead_letters WHERE pixel_id = '444' AND replayed_at IS NOT NULL\")\" = 20 ]"
[ "$(rastro dlq list --pixel 444 2>/dev/null | grep -c "tok-")" = 0 ] || rt_fail "replayed rows still listed"
rastro dlq purge --all --older-than 1 | grep -q "0 dead letters purged" || rt_fail "purge --older-than"
rastro dlq purge "$ID" | grep -q "1 dead letter purged" || rt_fail "purge id"
rastro dlq purge --all >/dev/null || rt_fail "purge --all"
rt_assert_eq 0 "$(dl true)" "dead letters after purge --all"

# 10. Never twice, tokens never logged, clean exit.
rt_assert_eq "$((${CRASH%/*} - 6000))" "$(curl -sf "$META/_fake/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['duplicates'])")" \
  "duplicates at the fake (only the kill -9's in-flight POSTs)"
kill -TERM "$SND_PID"
wait "$SND_PID" || rt_fail "the sender exited with $? on SIGTERM"
grep -q "stopped" "$SND_LOG" || rt_fail "no clean stop in the log"
! grep -q "s3cr3t" "$RT_DIR"/*.log || rt_fail "a token in a log"
! grep -q "Sanitizer" "$RT_DIR"/*.log || rt_fail "sanitizer report in a log"
cat "$RT_DIR"/p1.out "$RT_DIR"/p8.out >&2
rt_log "ok"
