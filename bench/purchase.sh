#!/usr/bin/env bash
# purchase.sh — Purchase latency through the priority lane, under click load.
#
#   bench/purchase.sh [--payments N] [--click-rate R] [--help]
#
# Runs the whole pipeline with `rastro up` (Release build, private PostgreSQL,
# fake Telegram and fake Meta on loopback), drives PageViews at R clicks/s
# (default 1000, bench/openloop.py) and, meanwhile, pushes N payment events
# (default 200, 10 per second) into the recorder's `in` as the payment
# webhook path will (bench_push_chat). For each Purchase: latency = the
# fake Meta's receive time − the time the payment was pushed (same clock).
# Prints p50/p90/p99/max and appends them to bench/RESULTS.md.
# Target (issue 3): Purchase p99 under 500 ms.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PAYMENTS=200 CLICK_RATE=1000
while [ $# -gt 0 ]; do
  case $1 in
    --payments) PAYMENTS=$2; shift 2 ;;
    --click-rate) CLICK_RATE=$2; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "purchase.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
done
log() { printf '[%4ds] %s\n' "$SECONDS" "$*"; }

log "building Release in build-release/"
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release >/dev/null
make -C build-release -j2 --no-print-directory rastro rastro-front rastro-recorder rastro-enricher \
  rastro-limiter rastro-batcher rastro-sender bench_push_chat >/dev/null
BIN=$ROOT/build-release
TMP=$(mktemp -d /tmp/rastro-purchase.XXXXXX); chmod 755 "$TMP"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  RASTRO_DATA_DIR=$TMP/data "$BIN/rastro" db stop >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT
read -r PORT_FRONT PORT_TG PORT_META < <(python3 -c 'import socket
ss=[socket.socket() for _ in range(3)]
[s.bind(("127.0.0.1",0)) for s in ss]
print(*[s.getsockname()[1] for s in ss])')
export RASTRO_DATA_DIR=$TMP/data RASTRO_HTTP_PORT=$PORT_FRONT RASTRO_HTTP_THREADS=2
export RASTRO_TELEGRAM_API_URL=http://127.0.0.1:$PORT_TG RASTRO_META_GRAPH_URL=http://127.0.0.1:$PORT_META
unset RASTRO_DATABASE_URL RASTRO_CONFIG RASTRO_TOPOLOGY
mkdir -p "$RASTRO_DATA_DIR"
python3 tests/fakes/fake_telegram.py --port "$PORT_TG" >"$TMP/tg.log" 2>&1 & PIDS+=($!)
python3 tests/fakes/fake_meta.py --port "$PORT_META" >"$TMP/meta.log" 2>&1 & PIDS+=($!)
for _ in $(seq 100); do curl -sf "$RASTRO_META_GRAPH_URL/_fake/health" >/dev/null && curl -sf "$RASTRO_TELEGRAM_API_URL/_fake/health" >/dev/null && break; sleep 0.1; done
log "starting PostgreSQL and the demo objects"
"$BIN/rastro" db start >/dev/null
curl -sf -X POST "$RASTRO_META_GRAPH_URL/_fake/config" -d '{"tokens":{"777":"EAAB-bench"}}' >/dev/null
curl -sf -X POST "$RASTRO_TELEGRAM_API_URL/_fake/bots" -d '{"token":"123:bench-purchase","username":"bench_bot","id":123}' >/dev/null
printf 'EAAB-bench\n' > "$TMP/meta"; printf '123:bench-purchase\n' > "$TMP/tg"
echo 'pw-bench-123' | "$BIN/rastro" user add bench@example.com >/dev/null
"$BIN/rastro" pixel add 777 --token-file "$TMP/meta" >/dev/null
"$BIN/rastro" pixel set 777 --rate 100000 >/dev/null
"$BIN/rastro" bot add --token-file "$TMP/tg" >/dev/null
"$BIN/rastro" pool add bench --pixel 777 --bot bench_bot >/dev/null
sed -e 's/^ip_rate_per_min = .*/ip_rate_per_min = 0/' topology/local.ini > "$TMP/topology.ini"
"$BIN/rastro" up --no-db --topology "$TMP/topology.ini" >"$TMP/up.log" 2>&1 & PIDS+=($!)
for _ in $(seq 300); do curl -sf "http://127.0.0.1:$PORT_FRONT/healthz" >/dev/null && break; sleep 0.1; done
IFS='|' read -r OWNER POOL BOT < <(psql "host=$RASTRO_DATA_DIR/pg/run port=5432 dbname=rastro user=rastro" -qAtX \
  -c "select p.owner_id, p.id, pb.bot_id from pools p join pool_bots pb on pb.pool_id = p.id where p.slug = 'bench'")

DURATION=$(( PAYMENTS / 10 + 5 ))
log "clicks at $CLICK_RATE/s for ${DURATION}s (bench/openloop.py) while $PAYMENTS payments are pushed at 10/s"
python3 bench/openloop.py --url "http://127.0.0.1:$PORT_FRONT/go/bench" --rate "$CLICK_RATE" --clients 20 \
  --duration "$DURATION" --log-file "$TMP/h2load.log" >"$TMP/openloop.out" 2>&1 & LOAD=$!
sleep 2
IN="ipc://$RASTRO_DATA_DIR/run/recorder-0-in.sock"
: > "$TMP/sent.txt"
for i in $(seq "$PAYMENTS"); do
  now_ms=$(date +%s%3N)
  "$BIN/bench/bench_push_chat" --push "$IN" --type payment --event-id "pay-bench-$i" --seq $((800000 + i)) \
    --owner "$OWNER" --pool 0 --bot "$BOT" --pixel 777 --tg-user-id $((900000 + i)) --value-cents 9790 \
    --order-id "bench-$i" --time-ms "$now_ms" >/dev/null
  echo "pay-bench-$i $now_ms" >> "$TMP/sent.txt"
  sleep 0.1
done
wait $LOAD || true
sleep 3
curl -s "$RASTRO_META_GRAPH_URL/_fake/events" > "$TMP/events.json"
RESULT=$(python3 - "$TMP/events.json" "$TMP/sent.txt" <<'PY'
import json, sys
sent = dict(l.split() for l in open(sys.argv[2]))
got = {}
pageviews = 0
for e in json.load(open(sys.argv[1])):
    if e["event_name"] == "PageView":
        pageviews += 1
    if e["event_id"] in sent and e["event_id"] not in got:
        got[e["event_id"]] = e["received"] * 1000 - int(sent[e["event_id"]])
lat = sorted(got.values())
def q(p): return lat[min(len(lat) - 1, int(p * len(lat)))]
print("purchases %d of %d at Meta; PageViews during the run %d; latency ms p50 %.0f p90 %.0f p99 %.0f max %.0f"
      % (len(lat), len(sent), pageviews, q(0.5), q(0.9), q(0.99), lat[-1]))
PY
)
log "$RESULT"
{
  echo
  echo "## Purchase latency (priority lane) — $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD)"
  echo
  echo "Command: \`bench/purchase.sh --payments $PAYMENTS --click-rate $CLICK_RATE\` ($(nproc) CPUs, load generator on the same machine)."
  echo "Payments pushed into the recorder at 10/s (time_ms = push time) while PageViews flow at $CLICK_RATE clicks/s;"
  echo "latency = fake Meta's receive time − push time."
  echo
  echo "- $RESULT"
  echo "- target Purchase p99 < 500 ms"
} >> bench/RESULTS.md
log "appended to bench/RESULTS.md"
