# lib.sh — shared helpers for the scripted integration tests.
#
# Source it first thing in a test:  . "$(dirname "$0")/lib.sh"; rt_setup NAME
#
# rt_setup gives the test a private temporary directory ($RT_DIR), its own
# data directory (RASTRO_DATA_DIR), its own database on the suite's
# PostgreSQL (RASTRO_TEST_SERVER, a libpq conninfo without dbname, exported
# by scripts/test; when unset, a private cluster is started in $RT_DIR), and
# cleans everything up on exit. Binaries come from $RASTRO_BUILD_DIR.
# A failed check prints "FAIL: ..." and exits 1.

set -euo pipefail

RASTRO_SOURCE_DIR=${RASTRO_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
RASTRO_BUILD_DIR=${RASTRO_BUILD_DIR:-$RASTRO_SOURCE_DIR/build}
export RASTRO_SOURCE_DIR RASTRO_BUILD_DIR
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$RASTRO_SOURCE_DIR/tests/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

RT_PIDS=()
RT_NAME=""
RT_DIR=""
RT_OWN_CLUSTER=""

rt_log() { echo "[$RT_NAME] $*" >&2; }
rt_fail() { echo "FAIL [$RT_NAME]: $*" >&2; exit 1; }
rt_bin() { echo "$RASTRO_BUILD_DIR/$1"; }
rastro() { "$RASTRO_BUILD_DIR/rastro" "$@"; }

# rt_free_port: prints a TCP port nobody listens on (bind 0, read it back).
rt_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# rt_psql SQL...: runs SQL on the test database, unaligned, tuples only.
rt_psql() { psql "$RASTRO_DATABASE_URL" -v ON_ERROR_STOP=1 -qAtX -c "$*"; }

# rt_bg CMD...: starts CMD in the background, logged to $RT_DIR/<n>.log; killed at exit.
rt_bg() {
  local log="$RT_DIR/bg-${#RT_PIDS[@]}.log"
  "$@" >"$log" 2>&1 &
  RT_PIDS+=($!)
  RT_LAST_PID=$!
  RT_LAST_LOG=$log
}

# rt_wait_for DESCRIPTION SECONDS CMD...: retries CMD every 0.1 s until it succeeds.
rt_wait_for() {
  local what=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || rt_fail "timed out after ${secs}s waiting for $what"
    sleep 0.1
  done
}

rt_assert_eq() {  # rt_assert_eq EXPECTED ACTUAL MESSAGE
  [ "$1" = "$2" ] || rt_fail "$3: expected '$1', got '$2'"
}

# rt_fake_telegram: starts the fake Bot API; exports RASTRO_TELEGRAM_API_URL
# and RT_TELEGRAM_PORT. Tokens it knows are set with its control API (see the fake).
rt_fake_telegram() {
  RT_TELEGRAM_PORT=$(rt_free_port)
  rt_bg python3 "$RASTRO_SOURCE_DIR/tests/fakes/fake_telegram.py" --port "$RT_TELEGRAM_PORT"
  export RASTRO_TELEGRAM_API_URL="http://127.0.0.1:$RT_TELEGRAM_PORT"
  rt_wait_for "fake telegram" 10 curl -sf "$RASTRO_TELEGRAM_API_URL/_fake/health"
}

# rt_demo_setup: the demo of scripts/up, for tests that drive it with
# scripts/demo-traffic: starts the fake Meta and the fake gateways (exports
# RASTRO_META_GRAPH_URL, RASTRO_GATEWAY_*_URL, GW_URL) and seeds the demo
# seller, pixel, two bots, pool `demo`, their PushinPay gateway and offer with
# the same CLI commands (DEMO_CHAT is the offer's private group). Call it
# after rt_fake_telegram.
rt_demo_setup() {
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
}

# rt_demo_snapshot: the fake Meta's events as "<event_name> <event_id>" lines in
# $RT_DIR/meta.txt, the number of charges paid at the fake gateway in
# $RT_DIR/gw-paid.txt, and the payments in PostgreSQL in $RT_DIR/paid.txt
# ("pur-<id>" of each paid one, sorted) and $RT_DIR/undelivered.txt.
rt_demo_snapshot() {
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
rt_demo_meta_ids() { awk -v n="$1" '$1 == n { print $2 }' "$RT_DIR/meta.txt" | sort; }
rt_demo_settled() {
  rt_demo_snapshot && [ "$(rt_demo_meta_ids Purchase)" = "$(cat "$RT_DIR/paid.txt")" ] \
    && [ "$(wc -l < "$RT_DIR/paid.txt")" = "$(cat "$RT_DIR/gw-paid.txt")" ] \
    && [ "$(cat "$RT_DIR/undelivered.txt")" = 0 ]
}
rt_demo_disagree() {
  echo "Purchases at Meta $(rt_demo_meta_ids Purchase | wc -l) (distinct $(rt_demo_meta_ids Purchase | uniq | wc -l)," \
    "missing: $(comm -13 <(rt_demo_meta_ids Purchase | uniq) "$RT_DIR/paid.txt" | head -3 | tr '\n' ' ')," \
    "unknown: $(comm -23 <(rt_demo_meta_ids Purchase | uniq) "$RT_DIR/paid.txt" | head -3 | tr '\n' ' '))," \
    "paid in PostgreSQL $(wc -l < "$RT_DIR/paid.txt"), paid at the gateway $(cat "$RT_DIR/gw-paid.txt")," \
    "paid but not delivered $(cat "$RT_DIR/undelivered.txt")"
}

# ---- CLI helpers for the admin tests: run, ok, bad, contains, lacks ------------

N=0
# run ARGS...: runs rastro, keeps stdout/stderr in $RT_DIR/cmd-N.{out,err}
# (scanned for secrets at the end); sets RC OUT ERR.
run() {
  N=$((N + 1))
  set +e
  rastro "$@" </dev/null >"$RT_DIR/cmd-$N.out" 2>"$RT_DIR/cmd-$N.err"
  RC=$?
  set -e
  OUT=$(cat "$RT_DIR/cmd-$N.out")
  ERR=$(cat "$RT_DIR/cmd-$N.err")
  LAST="rastro $*"
}

ok() {
  run "$@"
  [ $RC -eq 0 ] || rt_fail "'$LAST' failed ($RC): $ERR"
}

# bad EXPECTED_RC TEXT ARGS...: must exit EXPECTED_RC with one line on
# stderr that starts with "rastro:" and contains TEXT, and print nothing.
bad() {
  local want=$1 text=$2; shift 2
  run "$@"
  [ $RC -ne 0 ] || rt_fail "'$LAST' succeeded but should have failed"
  [ $RC -eq "$want" ] || rt_fail "'$LAST': exit $RC, expected $want ($ERR)"
  [ "$(wc -l <"$RT_DIR/cmd-$N.err")" -eq 1 ] || rt_fail "'$LAST': stderr is not one line: $ERR"
  case $ERR in rastro:*) ;; *) rt_fail "'$LAST': stderr does not start with 'rastro:': $ERR" ;; esac
  case $ERR in *"$text"*) ;; *) rt_fail "'$LAST': '$ERR' does not mention '$text'" ;; esac
  [ -z "$OUT" ] || rt_fail "'$LAST': printed on stdout while failing: $OUT"
}

contains() {  # contains HAYSTACK NEEDLE MESSAGE
  case $1 in *"$2"*) ;; *) rt_fail "$3: '$2' not in: $1" ;; esac
}
lacks() {     # lacks HAYSTACK NEEDLE MESSAGE
  case $1 in *"$2"*) rt_fail "$3: '$2' found in: $1" ;; esac
}

rt_cleanup() {
  local rc=$?
  set +e
  for pid in "${RT_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${RT_PIDS[@]}"; do wait "$pid" 2>/dev/null; done
  if [ -n "${RT_DB:-}" ] && [ -n "${RASTRO_TEST_SERVER:-}" ]; then
    psql "$RASTRO_TEST_SERVER dbname=postgres" -qAtX -c "DROP DATABASE IF EXISTS $RT_DB WITH (FORCE)" >/dev/null 2>&1
  fi
  if [ -n "$RT_OWN_CLUSTER" ]; then
    RASTRO_DATA_DIR=$RT_OWN_CLUSTER "$RASTRO_BUILD_DIR/rastro" db stop >/dev/null 2>&1
  fi
  if [ $rc -ne 0 ]; then
    echo "---- logs of [$RT_NAME] (kept in $RT_DIR) ----" >&2
    for f in "$RT_DIR"/*.log "$RT_DIR"/data/*.log; do
      [ -f "$f" ] && { echo "== $f" >&2; tail -n 40 "$f" >&2; }
    done
  else
    rm -rf "$RT_DIR"
  fi
  exit $rc
}

rt_setup() {
  RT_NAME=$1
  RT_DIR=$(mktemp -d "/tmp/rastro-it-$1.XXXXXX")
  chmod 755 "$RT_DIR"
  trap rt_cleanup EXIT
  export RASTRO_DATA_DIR="$RT_DIR/data"
  mkdir -p "$RASTRO_DATA_DIR"
  if [ -z "${RASTRO_TEST_SERVER:-}" ]; then
    RT_OWN_CLUSTER="$RT_DIR/pgcluster"
    mkdir -p "$RT_OWN_CLUSTER"
    RASTRO_DATA_DIR=$RT_OWN_CLUSTER "$RASTRO_BUILD_DIR/rastro" db start >"$RT_DIR/pg-start.log" 2>&1 \
      || { cat "$RT_DIR/pg-start.log" >&2; rt_fail "could not start a private PostgreSQL"; }
    export RASTRO_TEST_SERVER="host=$RT_OWN_CLUSTER/pg/run port=5432 user=rastro"
  fi
  RT_DB="rt_$(echo "$1" | tr -c 'a-z0-9\n' '_')_$$"
  psql "$RASTRO_TEST_SERVER dbname=postgres" -qAtX -v ON_ERROR_STOP=1 -c "CREATE DATABASE $RT_DB" >/dev/null
  export RASTRO_DATABASE_URL="$RASTRO_TEST_SERVER dbname=$RT_DB"
  export RASTRO_HTTP_THREADS=${RASTRO_HTTP_THREADS:-2}
  # Tests run two at a time: every `rastro up` gets its own broadcaster port.
  export RASTRO_WS_PORT=${RASTRO_WS_PORT:-$(rt_free_port)}
}
