#!/usr/bin/env bash
# bench/api.sh — latency of the analytics API (lib/rst_apiq.c) on a year of
# hourly data for 500 bots (issue 5 §3: p99 < 5 ms for every route).
set -euo pipefail

usage() {
  cat <<'EOF'
usage: bench/api.sh [--build DIR] [--iterations N] [--http] [--write] [--no-record]

Starts a private PostgreSQL under a temporary directory (`rastro db start`
with RASTRO_DATA_DIR), applies the migrations, generates the data set of
bench/api_gen.sql (one seller, 500 bots, 20 pools, 366 days x 24 hours of
aggregates = 4.39 M hourly rows, spend, 300 000 leads, 60 000 payments), then
runs bench_api_bench: every analytics route's handler called directly with a
PGconn (SQL + JSON + serialisation, no HTTP), ITERATIONS times per case
(default 300, after 30 warm-up calls): p50 / p99 / max.

  --build DIR    the build directory with `rastro` and bench/bench_api_bench
                 (default: build-release/, configured Release when missing)
  --http         also time the same routes through rastro-front over HTTP
                 (logged in, keep-alive, one client; Python's http.client),
                 and, when wrk is installed (scripts/setup --bench), a few
                 of them with wrk (one connection, 10 s each)
  --write        also time the write side: aggregator-shaped statements
                 (bench/api_write.sql, pgbench, ITERATIONS each) of 1, 10 and
                 50 keys in the current hour, and 10 keys 30 days back (a late
                 event), with the rollup triggers running
  --no-record    do not append the results to bench/RESULTS.md

Everything is private and temporary and stopped at the end.
EOF
}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=""
ITER=300
HTTP=0
WRITE=0
RECORD=1
while [ $# -gt 0 ]; do
  case $1 in
    --build) BUILD=$2; shift 2 ;;
    --iterations) ITER=$2; shift 2 ;;
    --http) HTTP=1; shift ;;
    --write) WRITE=1; shift ;;
    --no-record) RECORD=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "api.sh: unknown option $1 (--help)" >&2; exit 2 ;;
  esac
done
if [ -z "$BUILD" ]; then
  BUILD=$ROOT/build-release
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$BUILD" --target rastro bench_api_bench rastro-front -j"$(nproc)" >/dev/null
fi
BUILD=$(cd "$BUILD" && pwd)
[ -x "$BUILD/rastro" ] && [ -x "$BUILD/bench/bench_api_bench" ] \
  || { echo "api.sh: $BUILD lacks rastro or bench/bench_api_bench (build them first)" >&2; exit 1; }

TMP=$(mktemp -d /tmp/rastro-apibench.XXXXXX)
chmod 755 "$TMP"
FRONT_PID=""
cleanup() {
  [ -n "$FRONT_PID" ] && kill "$FRONT_PID" 2>/dev/null && wait "$FRONT_PID" 2>/dev/null
  RASTRO_DATA_DIR=$TMP "$BUILD/rastro" db stop >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT
export RASTRO_DATA_DIR=$TMP
unset RASTRO_DATABASE_URL
"$BUILD/rastro" db start >"$TMP/db.log" 2>&1 || { cat "$TMP/db.log" >&2; exit 1; }
URL=$("$BUILD/rastro" db url)
"$BUILD/rastro" db migrate >/dev/null 2>&1
printf 'bench-password-1\n' | "$BUILD/rastro" user add bench@rastro.local >/dev/null

echo "api.sh: generating the data set (bench/api_gen.sql)" >&2
T0=$SECONDS
psql "$URL" -qAtX -v ON_ERROR_STOP=1 -f "$ROOT/bench/api_gen.sql" >"$TMP/gen.log" 2>&1 \
  || { cat "$TMP/gen.log" >&2; exit 1; }
GEN_S=$((SECONDS - T0))
SIZES=$(grep "|" "$TMP/gen.log" | tail -n 1)
echo "api.sh: generated in ${GEN_S}s (hourly|roll_bot|hour_bot|leads|payments: $SIZES)" >&2

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
"$BUILD/bench/bench_api_bench" --db "$URL" --iterations "$ITER" | tee "$TMP/handlers.md"
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)

HTTP_MD=""
if [ $HTTP = 1 ]; then
  [ -x "$BUILD/rastro-front" ] || { echo "api.sh: --http needs $BUILD/rastro-front" >&2; exit 1; }
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
  sed 's/^required_acks = .*/required_acks = stored/' "$ROOT/topology/local.ini" > "$TMP/topology.ini"
  RASTRO_DATABASE_URL=$URL RASTRO_HTTP_PORT=$PORT \
    "$BUILD/rastro-front" --topology "$TMP/topology.ini" --instance 0 >"$TMP/front.log" 2>&1 &
  FRONT_PID=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
  python3 - "$PORT" "$ITER" >"$TMP/http.md" <<'PY'
import http.client, json, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
c = http.client.HTTPConnection("127.0.0.1", port)
c.request("POST", "/api/v1/login", json.dumps({"email": "bench@rastro.local", "password": "bench-password-1"}),
          {"Content-Type": "application/json"})
r = c.getresponse(); r.read()
cookie = r.getheader("Set-Cookie").split(";")[0]
cases = ["/summary?range=30d", "/funnel?range=30d", "/hourly?range=30d", "/daily?range=30d", "/utm?range=30d",
         "/by-bot?range=30d", "/by-pool?range=30d", "/leads?limit=50", "/payments?limit=50"]
print("| GET /api/v1... | p50 ms | p99 ms | max ms |\n|---|---:|---:|---:|")
for path in cases:
    ms = []
    for i in range(n + 30):
        t0 = time.perf_counter()
        c.request("GET", "/api/v1" + path, headers={"Cookie": cookie})
        r = c.getresponse(); body = r.read()
        t1 = time.perf_counter()
        if r.status != 200:
            sys.exit("%s: %d %s" % (path, r.status, body[:200]))
        if i >= 30:
            ms.append((t1 - t0) * 1000)
    ms.sort()
    print("| %s | %.2f | %.2f | %.2f |" % (path, ms[len(ms) // 2], ms[-(-len(ms) * 99 // 100) - 1], ms[-1]))
PY
  # The same routes with a C client (wrk: one connection, keep-alive, 10 s
  # each), so the figure is the server's and not Python's reading of 100 KB.
  if command -v wrk >/dev/null 2>&1; then
    COOKIE=$(curl -si -H 'Content-Type: application/json' \
               -d '{"email":"bench@rastro.local","password":"bench-password-1"}' \
               "http://127.0.0.1:$PORT/api/v1/login" | tr -d '\r' | awk -F'[ ;]' 'tolower($1) == "set-cookie:" {print $2}')
    ms() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /[0-9]s$/ && v !~ /ms$/) n *= 1000; printf "%.2f", n }'; }
    {
      echo
      echo "| GET /api/v1... (wrk -t1 -c1 -d10s) | requests | p50 ms | p90 ms | p99 ms |"
      echo "|---|---:|---:|---:|---:|"
      for path in "/summary?range=30d" "/hourly?range=30d" "/by-bot?range=30d" "/by-bot?range=custom&from=2025-10-08&to=2026-10-08" "/daily?range=custom&from=2025-10-08&to=2026-10-08"; do
        out=$(wrk -t1 -c1 -d10s --latency -H "Cookie: $COOKIE" "http://127.0.0.1:$PORT/api/v1$path")
        echo "$out" | grep -q "Non-2xx" && { echo "api.sh: $path: non-2xx answers under wrk" >&2; exit 1; }
        p50=$(echo "$out" | awk '$1 == "50%" {print $2}'); p90=$(echo "$out" | awk '$1 == "90%" {print $2}')
        p99=$(echo "$out" | awk '$1 == "99%" {print $2}'); n=$(echo "$out" | awk '/requests in/ {print $1}')
        echo "| $path | $n | $(ms "$p50") | $(ms "$p90") | $(ms "$p99") |"
      done
    } >> "$TMP/http.md"
  fi
  cat "$TMP/http.md"
  HTTP_MD=$(cat "$TMP/http.md")
fi

WRITE_MD=""
if [ $WRITE = 1 ]; then
  OWNER=$(psql "$URL" -qAtX -c "SELECT id FROM users WHERE email = 'bench@rastro.local'")
  {
    echo "| aggregator-shaped statement | latency avg ms |"
    echo "|---|---:|"
    for spec in "1 0" "10 0" "50 0" "10 30"; do
      set -- $spec
      out=$(pgbench -n -f "$ROOT/bench/api_write.sql" -D owner="$OWNER" -D keys="$1" -D back="$2" \
              -t "$ITER" "$URL" 2>&1) || { echo "$out" >&2; exit 1; }
      avg=$(echo "$out" | awk '/latency average/ {print $4}')
      echo "| $1 keys, $([ "$2" = 0 ] && echo "this hour" || echo "$2 days back") | $avg |"
    done
  } > "$TMP/write.md"
  cat "$TMP/write.md"
  WRITE_MD=$(cat "$TMP/write.md")
fi

if [ $RECORD = 1 ]; then
  {
    echo
    echo "## Analytics API latency (bench/api.sh), $(date -u +%Y-%m-%dT%H:%MZ)"
    echo
    echo "Command: \`bench/api.sh --build $BUILD --iterations $ITER$([ $HTTP = 1 ] && echo ' --http')$([ $WRITE = 1 ] && echo ' --write')\`" \
         "($(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), shared with other work;" \
         "build type $(grep -m1 CMAKE_BUILD_TYPE: "$BUILD/CMakeCache.txt" | cut -d= -f2))."
    echo "Data (bench/api_gen.sql, generated in ${GEN_S}s): one seller, 500 bots, 20 pools, 366 days × 24 h;"
    echo "rows hourly|roll_bot|hour_bot|leads|payments = $SIZES."
    echo "Handler = the route's function called with a PGconn + cJSON_PrintUnformatted (SQL + JSON, no HTTP)."
    echo "Load average before / after the handler runs: $LOAD0 / $LOAD1 (other work on the machine inflates wall times;"
    echo "the CPU column is the work per call itself)."
    echo
    cat "$TMP/handlers.md"
    if [ -n "$HTTP_MD" ]; then
      echo
      echo "Over HTTP (rastro-front, logged in, one keep-alive client in Python, client-side time; then wrk):"
      echo
      echo "$HTTP_MD"
    fi
    if [ -n "$WRITE_MD" ]; then
      echo
      echo "Write side (pgbench, one connection, autocommit, bench/api_write.sql):"
      echo
      echo "$WRITE_MD"
    fi
    echo
    echo "- target: p99 < 5 ms for every route"
  } >> "$ROOT/bench/RESULTS.md"
  echo "api.sh: appended to bench/RESULTS.md" >&2
fi
