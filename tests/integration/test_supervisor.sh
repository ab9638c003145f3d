#!/usr/bin/env bash
# test_supervisor — `rastro up`, `rastro status` and `rastro db`.
#
# The supervised nodes are stand-ins: a topology whose sections have a
# `command =` (see cmd_up.c) running a small shell script that prints a
# greeting, writes a heartbeat file like a real node and exits on SIGTERM;
# one of them ignores SIGTERM. Checked:
#   - every instance starts, its output is prefixed with `<node>.<i> | `,
#     a section without binary nor command is skipped with a warning;
#   - `rastro status` lists them (exit 0, --json too);
#   - kill -9 of a node: restarted, the log says SIGKILL, backoff doubles;
#   - a second `rastro up` on the same data directory is refused;
#   - SIGTERM to `rastro up`: every node stopped (the stubborn one with
#     SIGKILL after 10 s), no process left, exit 0, status exits 3;
#   - SIGKILL of `rastro up`: its nodes die too (PR_SET_PDEATHSIG), and a
#     new `rastro up` may start;
#   - with the private PostgreSQL: `rastro up` starts it, migrates, prints
#     the "no users yet" hint and stops it on exit; `rastro db start` twice
#     and `rastro db stop` twice are fine; `db start` refuses an external URL.
. "$(dirname "$0")/lib.sh"
rt_setup supervisor

STATE="$RASTRO_DATA_DIR/run/supervisor.state"
NODE="$RT_DIR/node.sh"

cat >"$NODE" <<'EOF'
#!/usr/bin/env bash
# Stand-in node: node.sh [stubborn] --topology FILE --instance N
stubborn=""
[ "$1" = stubborn ] && { stubborn=1; shift; }
[ "$1" = --topology ] && [ "$3" = --instance ] || { echo "bad arguments: $*"; exit 2; }
i=$4
echo "hello from $RASTRO_NODE.$i (pid $$), topology $2"
echo "a line on stderr" >&2
if [ -n "$stubborn" ]; then
  trap 'echo "ignoring SIGTERM"' TERM
else
  trap 'echo "got SIGTERM, bye"; exit 0' TERM
fi
beat="$RASTRO_DATA_DIR/run/$RASTRO_NODE-$i.prom"
while :; do
  printf 'rastro_node_pid %s\nrastro_heartbeat_timestamp_seconds %s\n' $$ "$(date +%s.%N)" >"$beat.tmp"
  mv -f "$beat.tmp" "$beat"
  sleep 0.3 &
  wait $! || true
done
EOF
chmod 755 "$NODE"

TOPO="$RT_DIR/topology.ini"
cat >"$TOPO" <<EOF
; test topology: stand-in nodes run through \`command =\`
[alpha]
instances = 2
command   = $NODE
in        = @ipc://{data}/run/alpha-{i}.sock

[stubborn]
instances = 1
command   = $NODE stubborn
out       = alpha.in

[ghost]
; neither a rastro-ghost binary nor a command: skipped with a warning
instances = 1
EOF

# field N of the state line of node NAME instance I
node_field() { awk -F'\t' -v n="$1" -v i="$2" -v f="$3" '$1=="node" && $2==n && $3==i {print $f}' "$STATE"; }
node_pid() { node_field "$1" "$2" 4; }
node_state() { node_field "$1" "$2" 5; }
all_running() {
  [ -f "$STATE" ] || return 1
  [ "$(node_state alpha 0)" = running ] && [ "$(node_state alpha 1)" = running ] \
    && [ "$(node_state stubborn 0)" = running ]
}
node_is() { [ "$(node_state "$1" "$2") $(node_field "$1" "$2" 6)" = "$3" ]; }
count_running() { [ "$(awk -F'\t' '$1=="node" && $5=="running"' "$STATE" | wc -l)" = "$1" ]; }
alive() { kill -0 "$1" 2>/dev/null && [ "$(ps -o stat= -p "$1" | cut -c1)" != Z ]; }
no_stand_ins() { ! pgrep -f "$NODE" >/dev/null; }

# --- `rastro up` with the external test database --------------------------
rt_log "rastro up (external database)"
rt_bg "$RASTRO_BUILD_DIR/rastro" up --topology "$TOPO"
UP=$RT_LAST_PID UPLOG=$RT_LAST_LOG
rt_wait_for "all nodes running" 30 all_running
rt_wait_for "fresh heartbeats (rastro status exit 0)" 15 rastro status
grep -q "skipping \[ghost\]" "$UPLOG" || rt_fail "no warning about the section without binary"
rt_wait_for "prefixed output" 10 grep -q "^alpha.1    | hello from alpha.1 " "$UPLOG"
grep -q "^stubborn.0 | a line on stderr" "$UPLOG" || rt_fail "stderr not prefixed: $(cat "$UPLOG")"
grep -q "topology $TOPO" "$UPLOG" || rt_fail "--topology not passed to the node"
rastro status >"$RT_DIR/status.txt" || rt_fail "rastro status: exit $?"
grep -Eq "^alpha +1 +[0-9]+ running +0 " "$RT_DIR/status.txt" || rt_fail "status: $(cat "$RT_DIR/status.txt")"
grep -q "^postgresql: external" "$RT_DIR/status.txt" || rt_fail "status lacks PostgreSQL"
rastro status --json | python3 -c '
import json, sys
s = json.load(sys.stdin)
assert s["supervisor"]["running"] and s["healthy"], s
assert sorted((n["node"], n["instance"], n["state"]) for n in s["nodes"]) == [
    ("alpha", 0, "running"), ("alpha", 1, "running"), ("stubborn", 0, "running")], s
assert all(n["heartbeat_age_seconds"] < 5 for n in s["nodes"]), s
' || rt_fail "rastro status --json"

rt_log "a second rastro up is refused"
set +e
"$RASTRO_BUILD_DIR/rastro" up --topology "$TOPO" >"$RT_DIR/second.log" 2>&1
rc=$?
set -e
rt_assert_eq 1 "$rc" "second rastro up exit status"
grep -q "(pid $UP) is already running" "$RT_DIR/second.log" || rt_fail "second up: $(cat "$RT_DIR/second.log")"
alive "$UP" || rt_fail "the first rastro up died"

rt_log "kill -9 of a node: restarted with backoff"
OLD=$(node_pid alpha 0)
kill -9 "$OLD"
rt_wait_for "death notice" 10 grep -q "alpha.0 (pid $OLD) died after .*: killed by signal SIGKILL; restarting in 0.5 s" "$UPLOG"
rt_wait_for "alpha.0 restarted" 10 node_is alpha 0 "running 1"
NEW=$(node_pid alpha 0)
[ "$NEW" != "$OLD" ] && alive "$NEW" || rt_fail "alpha.0 has no new live pid ($OLD → $NEW)"
kill -9 "$NEW"
rt_wait_for "second death notice" 10 grep -q "alpha.0 (pid $NEW) died after .*: killed by signal SIGKILL; restarting in 1.0 s" "$UPLOG"
rt_wait_for "alpha.0 restarted again" 10 node_is alpha 0 "running 2"
rastro status | grep -Eq "^alpha +0 .* running +2 .*killed by signal SIGKILL$" || rt_fail "status after restarts: $(rastro status)"
# a node that exits by itself is restarted too, with its exit status in the log
kill -TERM "$(node_pid alpha 1)"
rt_wait_for "exit status notice" 10 grep -q "alpha.1 (pid [0-9]*) died after .*: exit status 0; restarting" "$UPLOG"
rt_wait_for "all nodes running again" 10 all_running

rt_log "SIGTERM to rastro up stops everything"
PIDS="$(node_pid alpha 0) $(node_pid alpha 1) $(node_pid stubborn 0)"
START=$SECONDS
kill -TERM "$UP"
rc=0; wait "$UP" || rc=$?
rt_assert_eq 0 "$rc" "rastro up exit status after SIGTERM"
ELAPSED=$((SECONDS - START))
[ $ELAPSED -ge 9 ] && [ $ELAPSED -le 20 ] || rt_fail "shutdown took ${ELAPSED}s, expected ~10 s (stubborn node)"
grep -q "stubborn.0 (pid [0-9]*) did not stop within 10 s: SIGKILL" "$UPLOG" || rt_fail "no SIGKILL escalation: $(tail "$UPLOG")"
grep -q "^alpha.0    | got SIGTERM, bye" "$UPLOG" || rt_fail "alpha.0 did not get SIGTERM"
for p in $PIDS; do alive "$p" && rt_fail "node pid $p survived rastro up"; done
no_stand_ins || rt_fail "stand-in processes left: $(pgrep -af "$NODE")"
[ "$(awk -F'\t' '$1=="supervisor" {print $4}' "$STATE")" = stopped ] || rt_fail "state not 'stopped': $(cat "$STATE")"
set +e; rastro status >"$RT_DIR/status2.txt"; rc=$?; set -e
rt_assert_eq 3 "$rc" "rastro status with no supervisor"
grep -q "supervisor: not running" "$RT_DIR/status2.txt" || rt_fail "status: $(cat "$RT_DIR/status2.txt")"

rt_log "SIGKILL of rastro up takes its nodes with it; a new one may start"
cat >"$TOPO" <<EOF
[alpha]
instances = 2
command   = $NODE
EOF
rt_bg "$RASTRO_BUILD_DIR/rastro" up --topology "$TOPO"
UP=$RT_LAST_PID UPLOG=$RT_LAST_LOG
rt_wait_for "nodes running" 30 count_running 2
PIDS="$(node_pid alpha 0) $(node_pid alpha 1)"
kill -9 "$UP"
wait "$UP" 2>/dev/null || true
rt_wait_for "orphaned nodes to stop" 10 no_stand_ins
set +e; rastro status >/dev/null; rc=$?; set -e
rt_assert_eq 3 "$rc" "rastro status after SIGKILL of the supervisor"
rt_bg "$RASTRO_BUILD_DIR/rastro" up --topology "$TOPO"
UP=$RT_LAST_PID UPLOG=$RT_LAST_LOG
rt_wait_for "rastro status exit 0 after a restart of the supervisor" 30 rastro status
kill -INT "$UP"
rc=0; wait "$UP" || rc=$?
rt_assert_eq 0 "$rc" "rastro up exit status after SIGINT"
no_stand_ins || rt_fail "stand-ins left after SIGINT"

# --- the private PostgreSQL ------------------------------------------------
rt_log "rastro db start refuses an external database"
set +e; rastro db start >"$RT_DIR/refuse.log" 2>&1; rc=$?; set -e
rt_assert_eq 1 "$rc" "rastro db start with RASTRO_DATABASE_URL"
grep -q "external database" "$RT_DIR/refuse.log" || rt_fail "refusal: $(cat "$RT_DIR/refuse.log")"

PRIV="$RT_DIR/priv"
priv() { env -u RASTRO_DATABASE_URL RASTRO_DATA_DIR="$PRIV" "$RASTRO_BUILD_DIR/rastro" "$@"; }
pg_running() { priv db status >/dev/null; }
rt_log "rastro up with its private PostgreSQL"
rt_bg env -u RASTRO_DATABASE_URL RASTRO_DATA_DIR="$PRIV" "$RASTRO_BUILD_DIR/rastro" up --topology "$TOPO"
UP=$RT_LAST_PID UPLOG=$RT_LAST_LOG
rt_wait_for "private cluster and nodes (status exit 0)" 90 priv status
grep -q "initialising PostgreSQL cluster in $PRIV/pg/data (first run only" "$UPLOG" || rt_fail "no initdb progress line"
grep -q "no users yet: create one with \`rastro user add you@example.com\`" "$UPLOG" || rt_fail "no users hint"
priv status | grep -q "^postgresql: private cluster in $PRIV/pg: running" || rt_fail "status: $(priv status)"
[ "$(priv db psql -qAtX -c 'SELECT count(*) FROM schema_migrations')" -ge 1 ] || rt_fail "migrations not applied"
kill -TERM "$UP"
rc=0; wait "$UP" || rc=$?
rt_assert_eq 0 "$rc" "rastro up (private) exit status"
pg_running && rt_fail "rastro up left its PostgreSQL running"
no_stand_ins || rt_fail "stand-ins left"

rt_log "rastro db start twice, stop twice"
priv db start >"$RT_DIR/db1.log" 2>&1 || rt_fail "db start: $(cat "$RT_DIR/db1.log")"
grep -q "initialising" "$RT_DIR/db1.log" && rt_fail "initdb ran again"
priv db start >"$RT_DIR/db2.log" 2>&1 || rt_fail "second db start: $(cat "$RT_DIR/db2.log")"
grep -q "already running" "$RT_DIR/db2.log" || rt_fail "second db start: $(cat "$RT_DIR/db2.log")"
pg_running || rt_fail "PostgreSQL not running after db start"
priv db migrate >"$RT_DIR/migrate.log" 2>&1 || rt_fail "db migrate: $(cat "$RT_DIR/migrate.log")"
grep -q "up to date" "$RT_DIR/migrate.log" || rt_fail "db migrate: $(cat "$RT_DIR/migrate.log")"
# a PostgreSQL that `rastro db start` started is left running by `rastro up`
rt_bg env -u RASTRO_DATABASE_URL RASTRO_DATA_DIR="$PRIV" "$RASTRO_BUILD_DIR/rastro" up --topology "$TOPO"
UP=$RT_LAST_PID
rt_wait_for "supervisor with a running cluster" 30 priv status
kill -TERM "$UP"; wait "$UP" || rt_fail "rastro up exit status"
pg_running || rt_fail "rastro up stopped a PostgreSQL it did not start"
priv db stop >"$RT_DIR/stop1.log" 2>&1 || rt_fail "db stop: $(cat "$RT_DIR/stop1.log")"
pg_running && rt_fail "PostgreSQL still running after db stop"
priv db stop >"$RT_DIR/stop2.log" 2>&1 || rt_fail "second db stop: $(cat "$RT_DIR/stop2.log")"
grep -q "was not running" "$RT_DIR/stop2.log" || rt_fail "second db stop: $(cat "$RT_DIR/stop2.log")"
set +e; priv db status >/dev/null; rc=$?; set -e
rt_assert_eq 3 "$rc" "db status of a stopped cluster"

rt_log "ok"
