#!/usr/bin/env bash
# test_recorder — clicks reach PostgreSQL exactly once (issue 2, §5).
#
# Starts rastro-recorder on a private topology and plays the front with
# bench_inject (bench/inject.c): it pushes synthetic clicks, keeps the
# unacknowledged ones like the journal does and replays them. Checks:
#   1. every click is stored once and acknowledged; malformed maps in the
#      middle of messages are dropped without losing their neighbours;
#   2. the same events pushed again (and twice per message) are stored once
#      and acknowledged again;
#   3. PostgreSQL refusing the writes (table renamed, connection killed):
#      nothing is acked, nothing is lost, the recorder recovers by itself;
#   4. kill -9 of the recorder mid-stream, restart: after the replays every
#      event is stored exactly once;
#   5. SIGTERM exits cleanly (exit 0, no sanitizer report).
. "$(dirname "$0")/lib.sh"
rt_setup recorder

REC=$(rt_bin rastro-recorder)
INJ=$(rt_bin bench/bench_inject)
[ -x "$REC" ] || rt_fail "no $REC (build the rastro-recorder target)"
[ -x "$INJ" ] || rt_fail "no $INJ (build the bench_inject target)"

# Schema: `rastro db migrate` when it is there, else the SQL files in order.
if ! rastro db migrate >"$RT_DIR/migrate.log" 2>&1; then
  for f in "$RASTRO_SOURCE_DIR"/schemas/sql/[0-9]*.sql; do
    psql "$RASTRO_DATABASE_URL" -v ON_ERROR_STOP=1 -qX -f "$f" >/dev/null
  done
fi

TOPO=$RT_DIR/topology.ini
cat >"$TOPO" <<'INI'
[front]
instances = 1
acks      = @ipc://{data}/run/front-{i}-acks.sock

[recorder]
instances = 1
in        = @ipc://{data}/run/recorder-{i}-in.sock
acks      = front.acks
batch_max = 200
batch_ms  = 20
INI
IN=ipc://$RASTRO_DATA_DIR/run/recorder-0-in.sock
ACKS=ipc://$RASTRO_DATA_DIR/run/front-0-acks.sock
PROM=$RASTRO_DATA_DIR/run/recorder-0.prom

start_recorder() {
  rt_bg "$REC" --topology "$TOPO" --instance 0
  REC_PID=$RT_LAST_PID
  REC_LOG=$RT_LAST_LOG
  rt_wait_for "recorder start" 20 grep -q "recording clicks" "$REC_LOG"
}
# Like a journal, each run uses its own sequence numbers (--first-seq): a late
# ack of an earlier run must not count for a later one.
inject() { "$INJ" --push "$IN" --acks "$ACKS" "$@"; }
rows() { rt_psql "SELECT count(*) || '/' || count(DISTINCT click_id) FROM clicks WHERE utm_campaign = '$1'"; }
metric() { awk -v m="$1" '$1 == m { print $2 }' "$PROM"; }

"$REC" --help | grep -q -- "--topology" || rt_fail "--help does not describe --topology"

start_recorder
grep -q "batch_max = 200" "$REC_LOG" || rt_fail "the effective config is not printed"

# 1. Plain run, with a malformed map in every message.
rt_log "1: 3000 clicks, a bad map in every message"
inject --run one --count 3000 --per-message 50 --bad --timeout 60 >"$RT_DIR/inject1.out" \
  || { cat "$RT_DIR/inject1.out" >&2; rt_fail "not every click of run one was acked"; }
rt_assert_eq "3000/3000" "$(rows one)" "rows of run one"
rt_assert_eq "1" "$(rt_psql "SELECT count(*) FROM clicks WHERE click_id = 'one-17' AND event_id = 'e-one-17'
  AND source = 'front.0' AND utm_source = 'inject' AND utm->>'utm_x\"q' = E'a\\\\b\\n'
  AND user_agent = E'bench_inject/1 \\uFFFD (not UTF-8)' AND pool_id = 1
  AND clicked_at > now() - interval '10 minutes'")" "column mapping of one-17"
rt_wait_for "decode failures in the metrics" 5 \
  bash -c "awk '\$1 == \"rastro_recorder_decode_failures_total\" && \$2 >= 60' '$PROM' | grep -q ."

# 2. The same events again, each message twice: stored once, acked again.
rt_log "2: replaying run one, every message twice"
inject --run one --count 3000 --per-message 100 --dup --timeout 60 >"$RT_DIR/inject2.out" \
  || { cat "$RT_DIR/inject2.out" >&2; rt_fail "replayed events were not acked"; }
rt_assert_eq "3000/3000" "$(rows one)" "rows of run one after the replay"
rt_wait_for "duplicates in the metrics" 5 \
  bash -c "awk '\$1 == \"rastro_recorder_duplicates_total\" && \$2 >= 3000' '$PROM' | grep -q ."

# 3. PostgreSQL refuses the writes: no acks, nothing lost, recovery.
rt_log "3: PostgreSQL refusing writes, then a killed connection"
rt_psql "ALTER TABLE clicks RENAME TO clicks_away"
inject --run outage --first-seq 10001 --count 500 --per-message 50 --timeout 60 >"$RT_DIR/inject3.out" &
INJ_PID=$!
sleep 2
rt_assert_eq "0" "$(rt_psql "SELECT count(*) FROM clicks_away WHERE utm_campaign = 'outage'")" \
  "rows stored while the table was away"
rt_psql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
  WHERE datname = current_database() AND pid <> pg_backend_pid()" >/dev/null
sleep 1
rt_psql "ALTER TABLE clicks_away RENAME TO clicks"
wait $INJ_PID || { cat "$RT_DIR/inject3.out" >&2; rt_fail "run outage was not acked after recovery"; }
rt_assert_eq "500/500" "$(rows outage)" "rows of run outage"
[ "$(grep -c "PostgreSQL: insert" "$REC_LOG")" -le 2 ] \
  || rt_fail "the outage was logged more than once per episode"
grep -q "PostgreSQL is back" "$REC_LOG" || rt_fail "no recovery line in the log"
kill -0 "$REC_PID" || rt_fail "the recorder died during the outage"

# 4. kill -9 mid-stream, restart: every event exactly once.
rt_log "4: kill -9 of the recorder mid-stream"
inject --run crash --first-seq 20001 --count 6000 --per-message 20 --rate 2000 --replay-ms 1000 --timeout 90 \
  >"$RT_DIR/inject4.out" &
INJ_PID=$!
sleep 1.5
kill -9 "$REC_PID"
wait "$REC_PID" 2>/dev/null || true
MID=$(rt_psql "SELECT count(*) FROM clicks WHERE utm_campaign = 'crash'")
rt_log "   $MID of 6000 stored when the recorder was killed"
sleep 0.5
start_recorder
wait $INJ_PID || { cat "$RT_DIR/inject4.out" >&2; rt_fail "run crash was not fully acked"; }
rt_assert_eq "6000/6000" "$(rows crash)" "rows of run crash"
rt_assert_eq "0" "$(rt_psql "SELECT count(*) FROM (SELECT event_id FROM clicks GROUP BY 1 HAVING count(*) > 1) d")" \
  "duplicate event_ids"
cat "$RT_DIR"/inject*.out >&2

# 5. SIGTERM: clean exit, no sanitizer report.
kill -TERM "$REC_PID"
wait "$REC_PID" || rt_fail "the recorder exited with $? on SIGTERM"
grep -q "stopped" "$REC_LOG" || rt_fail "no clean stop in the log"
! grep -q "Sanitizer" "$RT_DIR"/*.log || rt_fail "sanitizer report in a log"
rt_log "ok"
