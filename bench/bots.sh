#!/usr/bin/env bash
# bots.sh — the bots node with 1,000 long-polled bots: /start → welcome
# latency, payment webhook latency at the front, CPU and memory.
#
#   bench/bots.sh [--bots N] [--rate R] [--duration S] [--idle S]
#                 [--webhook-rates "200 1000"] [--webhook-duration S]
#                 [--build DIR] [--no-append] [--help]
#
# Runs everything with `rastro up` (Release build, private PostgreSQL, the
# fake Telegram answering at once with --quiet, fake Meta; all on loopback)
# with N bots (default 1000) imported with `rastro bot import`, each with one
# offer, all in one pool. Once every bot has a long poll waiting:
#   (c) idle: CPU and RSS of rastro-bots and of the fake over S s (--idle,
#       60) just after the start (every long poll began at the same moment)
#       and again after (a) (the polls' 25 s cycles spread out: steady state);
#   (a) /start → welcome: R /start a second (default 20) for S s (--duration,
#       30), each from a new user to another bot (bench/bots_fake.py inject,
#       time.monotonic() before the POST); latency = the fake's "mono" of the
#       sendMessage − that time (same machine, same clock); p50/p90/p99/max,
#       split at tg_updates.received_at; CPU and RSS meanwhile;
#   (b) payment webhooks: POST /webhook/pushinpay (valid x-pushinpay-token,
#       a known paid charge) at each rate for S s (--webhook-duration, 20)
#       through open-loop h2load (bench/bots_webhooks.py); client p50/p99 and
#       the front's rastro_front_webhook_duration_seconds{kind="gateway"};
#       how long the bots node took to take them all from the inbox;
#   (d) burst: one /start into every bot within about a second (one
#       connection); latency of each and the time to the last welcome.
# CPU is also given for the PostgreSQL cluster (all its processes).
# Prints a summary and appends it, with this command, to bench/RESULTS.md.
# Target (issue): webhook p99 under 5 ms.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BOTS=1000 RATE=20 DURATION=30 IDLE=60 WH_RATES="200 1000" WH_DURATION=20
BUILD=$ROOT/build-release APPEND=1
ARGS="$*"
while [ $# -gt 0 ]; do
  case $1 in
    --bots) BOTS=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --idle) IDLE=$2; shift 2 ;;
    --webhook-rates) WH_RATES=$2; shift 2 ;;
    --webhook-duration) WH_DURATION=$2; shift 2 ;;
    --build) BUILD=$(realpath -m "$2"); shift 2 ;;
    --no-append) APPEND=0; shift ;;
    -h|--help) sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bots.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
done
log() { printf '[%4ds] %s\n' "$SECONDS" "$*"; }
command -v h2load >/dev/null || bash scripts/setup --bench

log "building Release in $BUILD"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
make -C "$BUILD" -j2 --no-print-directory rastro rastro-front rastro-recorder rastro-enricher \
  rastro-limiter rastro-batcher rastro-sender rastro-bots >/dev/null
BIN=$BUILD
TMP=$(mktemp -d /tmp/rastro-bench-bots.XXXXXX); chmod 755 "$TMP"
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
export RASTRO_PUBLIC_URL=http://127.0.0.1:$PORT_FRONT
export RASTRO_TELEGRAM_API_URL=http://127.0.0.1:$PORT_TG RASTRO_META_GRAPH_URL=http://127.0.0.1:$PORT_META
export RASTRO_META_API_VERSION=v25.0
unset RASTRO_DATABASE_URL RASTRO_CONFIG RASTRO_TOPOLOGY
mkdir -p "$RASTRO_DATA_DIR"
TG=$RASTRO_TELEGRAM_API_URL FRONT=http://127.0.0.1:$PORT_FRONT
python3 tests/fakes/fake_telegram.py --port "$PORT_TG" --quiet >"$TMP/tg.log" 2>&1 & PIDS+=($!)
FAKE_MODE="TCP_NODELAY (the fake's own setting)"
FAKE_PID=$!
python3 tests/fakes/fake_meta.py --port "$PORT_META" --quiet >"$TMP/meta.log" 2>&1 & PIDS+=($!)
for _ in $(seq 100); do curl -sf "$RASTRO_META_GRAPH_URL/_fake/health" >/dev/null && curl -sf "$TG/_fake/health" >/dev/null && break; sleep 0.1; done
log "starting PostgreSQL; $BOTS bots at the fake Telegram, imported, one offer each, in one pool"
"$BIN/rastro" db start >/dev/null
DB="host=$RASTRO_DATA_DIR/pg/run port=5432 dbname=rastro user=rastro"
sql() { psql "$DB" -v ON_ERROR_STOP=1 -qAtX -c "$*"; }
curl -sf -X POST "$RASTRO_META_GRAPH_URL/_fake/config" -d '{"tokens":{"777":"EAAB-bench"}}' >/dev/null
printf 'EAAB-bench\n' > "$TMP/meta"
echo 'pw-bench-123' | "$BIN/rastro" user add bench@example.com >/dev/null
"$BIN/rastro" pixel add 777 --token-file "$TMP/meta" >/dev/null
FIRST_TG=820000000
python3 bench/bots_fake.py "$TG" register "$FIRST_TG" "$BOTS" "$TMP/tokens"
T_IMPORT=$SECONDS
"$BIN/rastro" bot import --tokens-file "$TMP/tokens" >"$TMP/import.out"
T_IMPORT=$((SECONDS - T_IMPORT))
[ "$(sql "SELECT count(*) FROM bots")" = "$BOTS" ] || { echo "bots.sh: import gave $(sql "SELECT count(*) FROM bots") bots" >&2; exit 1; }
"$BIN/rastro" pool add bench --pixel 777 --bot bench0000_bot >/dev/null
sql "INSERT INTO pool_bots (pool_id, bot_id, weight) SELECT p.id, b.id, 1 FROM pools p, bots b
     WHERE p.slug = 'bench' ON CONFLICT DO NOTHING;
     INSERT INTO offers (owner_id, bot_id, name, price_cents, deliver_text)
     SELECT owner_id, id, 'Curso ' || username, 1990, 'Obrigado!' FROM bots"
printf '{"token":"pp-api-token","webhook_token":"pp-webhook-token"}\n' > "$TMP/pp.json"
chmod 600 "$TMP/pp.json"
"$BIN/rastro" gateway set bench0000_bot pushinpay --credentials-file "$TMP/pp.json" >/dev/null
# The charge the webhooks name: already paid (the bots node notes the webhook and changes nothing).
CHARGE=9a1b2c3d-0000-4000-8000-00000000bench
sql "WITH l AS (INSERT INTO leads (owner_id, bot_id, tg_user_id, chat_id, external_id)
               SELECT owner_id, id, 1, 1, 'tg:1' FROM bots WHERE username = 'bench0000_bot' RETURNING *)
     INSERT INTO payments (owner_id, bot_id, lead_id, offer_id, gateway, idempotency_key, charge_id,
                           status, amount_cents, paid_at)
     SELECT l.owner_id, l.bot_id, l.id, o.id, 'pushinpay', 'bench-idem', '$CHARGE', 'paid', 1990, now()
     FROM l JOIN offers o ON o.bot_id = l.bot_id" >/dev/null

"$BIN/rastro" up --no-db --topology topology/local.ini >"$TMP/up.log" 2>&1 & PIDS+=($!)
UP_PID=$!
for _ in $(seq 300); do curl -sf "$FRONT/healthz" >/dev/null && break; sleep 0.1; done
BOTS_PID=$(pgrep -P "$UP_PID" -x rastro-bots)
FRONT_PID=$(pgrep -P "$UP_PID" -x rastro-front)
metric() { sed -n "s/^$1 //p" "$RASTRO_DATA_DIR/run/bots-0.prom" 2>/dev/null | head -1; }
T_POLL=$SECONDS
until [ "$(metric rastro_bots_polling)" = "$BOTS" ] && python3 bench/bots_fake.py "$TG" waiting "$FIRST_TG" "$BOTS" >/dev/null; do
  [ $((SECONDS - T_POLL)) -lt 120 ] || { echo "bots.sh: not every bot is long-polled after 120 s" >&2; tail "$TMP/up.log" >&2; exit 1; }
  sleep 0.2
done
T_POLL=$((SECONDS - T_POLL))
log "all $BOTS bots long-polled ${T_POLL}s after the front answered; import took ${T_IMPORT}s"
pg_pids() { local pm; pm=$(head -1 "$RASTRO_DATA_DIR/pg/data/postmaster.pid"); echo "$pm$(pgrep -P "$pm" | sed 's/^/+/' | tr -d '\n')"; }
fake_stat() { curl -sf "$TG/_fake/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)[sys.argv[1]])" "$1" 2>/dev/null || echo '-'; }

# --- (c) idle ---------------------------------------------------------------------------------
sleep 5
log "(c) idle: $BOTS bots long-polling, nothing happening, ${IDLE}s"
C0=$(fake_stat connections) K0=$(fake_stat calls)
IDLE_PROC=$(python3 bench/bots_proc.py --seconds "$IDLE" rastro-bots="$BOTS_PID" fake_telegram="$FAKE_PID" postgres="$(pg_pids)")
C1=$(fake_stat connections) K1=$(fake_stat calls)
echo "$IDLE_PROC"
IDLE_NET="getUpdates calls $( [ "$K0" != - ] && echo $((K1 - K0)) || echo '-'), new TCP connections $( [ "$C0" != - ] && echo $((C1 - C0)) || echo '-') at the fake"
log "$IDLE_NET"

# --- (a) /start -> welcome, and (c) under load ------------------------------------------------
log "(a) /start → welcome: $RATE/s for ${DURATION}s, each to another bot and chat"
python3 bench/bots_proc.py --seconds "$DURATION" rastro-bots="$BOTS_PID" fake_telegram="$FAKE_PID" postgres="$(pg_pids)" >"$TMP/load_proc.txt" &
PROC=$!
INJECT=$(python3 bench/bots_fake.py "$TG" inject "$FIRST_TG" "$BOTS" --rate "$RATE" --duration "$DURATION" \
  --user0 7000000 --log "$TMP/inject.jsonl")
wait $PROC
LOAD_PROC=$(cat "$TMP/load_proc.txt")
echo "$INJECT"; echo "$LOAD_PROC"
eval "$(python3 bench/bots_fake.py "$TG" latency "$TMP/inject.jsonl" --wait 60 --db "$DB" | sed 's/^/A_/')"
START_RESULT="$A_n /start, $A_missing without a welcome, $A_dup chats with more than one; latency ms p50 $A_p50 p90 $A_p90 p99 $A_p99 max $A_max (inject → stored p50 $A_poll_p50 p99 $A_poll_p99; stored → sent p50 $A_handle_p50 p99 $A_handle_p99)"
log "$START_RESULT"
log "(c) idle again for ${IDLE}s, now that the long polls are spread out"
IDLE2_PROC=$(python3 bench/bots_proc.py --seconds "$IDLE" rastro-bots="$BOTS_PID" fake_telegram="$FAKE_PID" postgres="$(pg_pids)")
echo "$IDLE2_PROC"

# --- (b) payment webhooks at the front ------------------------------------------------------------
printf '{"id":"%s","status":"paid","value":1990}' "$CHARGE" > "$TMP/webhook.json"
WH_LINES=()
for R in $WH_RATES; do
  CLIENTS=$(( R / 10 > 10 ? R / 10 : 10 )); [ "$CLIENTS" -le 100 ] || CLIENTS=100
  log "(b) POST /webhook/pushinpay at $R/s for ${WH_DURATION}s, $CLIENTS keep-alive connections"
  curl -sf "$FRONT/metrics" > "$TMP/m0"
  python3 bench/bots_webhooks.py --url "$FRONT/webhook/pushinpay" --body "$TMP/webhook.json" \
    --header 'content-type: application/json' --header 'x-pushinpay-token: pp-webhook-token' \
    --rate "$R" --clients "$CLIENTS" --duration "$WH_DURATION" --log-file "$TMP/wh.log" >/dev/null
  curl -sf "$FRONT/metrics" > "$TMP/m1"
  eval "$(python3 bench/bots_webhooks.py --stats "$TMP/wh.log" --period-us $((CLIENTS * 1000000 / R)) \
    --metrics-before "$TMP/m0" --metrics-after "$TMP/m1" | sed 's/^/W_/')"
  us_ms() { awk -v v="$1" 'BEGIN { if (v ~ /^[0-9.]+$/) printf "%.2f", v / 1000; else print v }'; }
  line="| $R | $CLIENTS | $W_rate | $W_n200 | $W_nbad | $(us_ms $W_p50) | $(us_ms $W_p90) | $(us_ms $W_p99) | $(us_ms $W_p999) | $(us_ms $W_max) | $W_le5ms_pct | $W_late_pct | ≤ $(us_ms $W_front_p50) | ≤ $(us_ms $W_front_p99) | $W_front_le5ms_pct |"
  WH_LINES+=("$line")
  log "rate $R/s: client p50 $(us_ms $W_p50) ms p99 $(us_ms $W_p99) ms max $(us_ms $W_max) ms ($W_nbad not 200); front histogram p50 ≤ $(us_ms $W_front_p50) ms p99 ≤ $(us_ms $W_front_p99) ms"
done
WH_TOTAL=$(curl -sf "$FRONT/metrics" | sed -n 's/^rastro_front_webhooks_total{kind="pushinpay",status="200"} //p')
T_DRAIN=$SECONDS
until awk -v a="$(metric rastro_bots_payment_webhooks_total)" -v b="$WH_TOTAL" 'BEGIN { exit !(a + 0 >= b + 0) }' \
      || [ $((SECONDS - T_DRAIN)) -ge 120 ]; do sleep 0.5; done
GW_IN="rastro_bots_payment_webhooks_total reached $(metric rastro_bots_payment_webhooks_total) $((SECONDS - T_DRAIN))s after the last webhook, for $WH_TOTAL answered 200 by the front (more: inbox entries replayed because their ack came after replay_after)"
log "bots node: $GW_IN"

# --- (d) burst: one /start into every bot ----------------------------------------------------------
log "(d) burst: one /start into each of the $BOTS bots"
BURST=$(python3 bench/bots_fake.py "$TG" inject "$FIRST_TG" "$BOTS" --rate "$BOTS" --duration 1 \
  --user0 7500000 --log "$TMP/burst.jsonl")
eval "$(python3 bench/bots_fake.py "$TG" latency "$TMP/burst.jsonl" --wait 120 --db "$DB" | sed 's/^/B_/')"
BURST_RESULT="$B_n /start injected in $(python3 -c 'import json,sys; m=[json.loads(l)["mono"] for l in open(sys.argv[1])]; print("%.2f" % (max(m) - min(m)))' "$TMP/burst.jsonl") s (one connection); $B_missing without a welcome, $B_dup duplicated; last welcome ${B_span_s}s after the first injection; latency ms p50 $B_p50 p90 $B_p90 p99 $B_p99 max $B_max (inject → stored p50 $B_poll_p50 p99 $B_poll_p99; stored → sent p50 $B_handle_p50 p99 $B_handle_p99)"
log "$BURST_RESULT"
FRONT_PROC=$(python3 bench/bots_proc.py --seconds 0 rastro-front="$FRONT_PID")

# --- summary ----------------------------------------------------------------------------------
proc_cell() { echo "$1" | awk -v n="$2" '$1 == n { for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
  printf "%s%% CPU, RSS %s MB (max %s), %s threads, %s fds", v["cpu_pct"], v["rss_mb"], v["rss_max_mb"], v["threads"], v["fds"] }'; }
SUMMARY=$(cat <<EOF

## Bots node, $BOTS long-polled bots — $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD)

- machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)
- command: \`bench/bots.sh${ARGS:+ $ARGS}\` (Release build; topology/local.ini: 1 bots node, 4 workers, poll_timeout_s 25; fake Telegram \`--quiet\` answering at once, $FAKE_MODE; everything on this machine)
- $BOTS bots imported by \`rastro bot import\` in ${T_IMPORT}s; all long-polled ${T_POLL}s after the front was up

(a) /start → welcome sent, long polling, $RATE/s for ${DURATION}s (open loop, each to another bot and chat; latency = fake's sendMessage mono − injector's mono before the POST):

- $START_RESULT
- injector: $INJECT

(b) POST /webhook/pushinpay (valid x-pushinpay-token, a paid charge: journaled with fsync, 200), open-loop h2load --h1, keep-alive; latency in ms:

| rate/s | conns | offered/s | 200 | other | p50 | p90 | p99 | p99.9 | max | % ≤ 5 ms | late % | front p50 | front p99 | front % ≤ 5 ms |
|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
$(printf '%s\n' "${WH_LINES[@]}")

- front p50/p99/% ≤ 5 ms: from the buckets of rastro_front_webhook_duration_seconds{kind="gateway"} (request read → 200 after the inbox fsync)
- bots node: $GW_IN
- target webhook p99 < 5 ms

(c) CPU (utime+stime / wall; 100% = one core) and memory:

| phase | rastro-bots | fake Telegram (python) | PostgreSQL (all processes) |
|---|---|---|---|
| idle ${IDLE}s just after the start, long polls in step | $(proc_cell "$IDLE_PROC" rastro-bots) | $(proc_cell "$IDLE_PROC" fake_telegram) | $(proc_cell "$IDLE_PROC" postgres | sed 's/, RSS.*//') |
| $RATE /start/s for ${DURATION}s | $(proc_cell "$LOAD_PROC" rastro-bots) | $(proc_cell "$LOAD_PROC" fake_telegram) | $(proc_cell "$LOAD_PROC" postgres | sed 's/, RSS.*//') |
| idle ${IDLE}s after (a), long polls spread out | $(proc_cell "$IDLE2_PROC" rastro-bots) | $(proc_cell "$IDLE2_PROC" fake_telegram) | $(proc_cell "$IDLE2_PROC" postgres | sed 's/, RSS.*//') |

- first idle window: $IDLE_NET
- rastro-front after (b): $(proc_cell "$FRONT_PROC" rastro-front | sed 's/^[^,]*, //')

(d) burst, one /start into every bot at once:

- $BURST_RESULT
EOF
)
echo "$SUMMARY"
if [ "$APPEND" = 1 ]; then
  echo "$SUMMARY" >> bench/RESULTS.md
  log "appended to bench/RESULTS.md"
fi
