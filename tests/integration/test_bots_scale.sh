#!/usr/bin/env bash
# test_bots_scale — 1,000 bots polled by one node.
#
# 1,000 bots registered at the fake Telegram and imported in one go
# (`rastro bot import`), all in one pool with a pixel, three with an offer;
# `rastro up`. Then:
#   - the bots node long-polls every bot: rastro_bots_polling = 1000 and the
#     fake shows a long poll waiting for each of them;
#   - one /start injected into EVERY bot at once: every bot sends exactly one
#     welcome to its user (none missing, no duplicate; the three with an offer
#     show its buy button), tg_updates holds 1,000 handled rows, and 1,000
#     leads and 1,000 start events are stored;
#   - a token revoked at the fake (Telegram's 401) makes that bot unhealthy
#     while the other 999 keep their long polls and keep answering /start.
# RT_SCALE_BOTS=N runs it with N bots instead (for debugging only).
. "$(dirname "$0")/lib.sh"
rt_setup bots_scale
N=${RT_SCALE_BOTS:-1000}
FIRST_TG_ID=810000000          # the bots' Telegram ids: FIRST_TG_ID + 0 .. N-1
FIRST_USER=5000000             # the user (and private chat) who starts bot i: FIRST_USER + i

RT_TELEGRAM_PORT=$(rt_free_port)
rt_bg python3 "$RASTRO_SOURCE_DIR/tests/fakes/fake_telegram.py" --port "$RT_TELEGRAM_PORT" --quiet
export RASTRO_TELEGRAM_API_URL="http://127.0.0.1:$RT_TELEGRAM_PORT"
TG=$RASTRO_TELEGRAM_API_URL
META_PORT=$(rt_free_port)
rt_bg python3 "$RASTRO_SOURCE_DIR/tests/fakes/fake_meta.py" --port "$META_PORT"
export RASTRO_META_GRAPH_URL="http://127.0.0.1:$META_PORT" RASTRO_META_API_VERSION=v25.0
rt_wait_for "fake telegram" 10 curl -sf "$TG/_fake/health"
rt_wait_for "fake meta" 10 curl -sf "$RASTRO_META_GRAPH_URL/_fake/health"
META_TOKEN="EAAB-scale-token-xyz"
curl -sf -X POST "$RASTRO_META_GRAPH_URL/_fake/config" -d "{\"tokens\":{\"123456789\":\"$META_TOKEN\"}}" >/dev/null

# The fake's control API, N requests at a time over keep-alive connections
# (one curl per bot would take minutes).
cat > "$RT_DIR/fake.py" <<'PY'
import http.client, json, secrets, sys, threading, time
from urllib.parse import urlparse

u = urlparse(sys.argv[1])
cmd, first_id, n = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

def conn():
    return http.client.HTTPConnection(u.hostname, u.port, timeout=60)

def call(c, method, path, body=None):
    c.request(method, path, body=json.dumps(body) if body is not None else None,
              headers={"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    if r.status != 200:
        sys.exit("%s %s: %d %s" % (method, path, r.status, data[:200]))
    return json.loads(data)

def parallel(fn, items, nconn=4):
    """Calls fn(connection, item) for every item, over NCONN connections."""
    chunks = [items[k::nconn] for k in range(nconn)]
    errors = []
    def run(chunk):
        try:
            c = conn()
            for item in chunk:
                fn(c, item)
        except BaseException as e:          # noqa: B902 - reported below
            errors.append(repr(e))
    threads = [threading.Thread(target=run, args=(ch,)) for ch in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        sys.exit("fake control API: " + errors[0])

def start_update(i, user):
    return {"message": {"message_id": 1, "date": int(time.time()),
                        "from": {"id": user, "is_bot": False, "first_name": "U%d" % i,
                                 "language_code": "pt-br"},
                        "chat": {"id": user, "type": "private", "first_name": "U%d" % i},
                        "text": "/start",
                        "entities": [{"offset": 0, "length": 6, "type": "bot_command"}]}}

if cmd == "register":               # register FIRST N TOKENS_FILE: tokens, one a line
    tokens = ["%d:AAS-%s" % (first_id + i, secrets.token_urlsafe(26)) for i in range(n)]
    parallel(lambda c, i: call(c, "POST", "/_fake/bots",
                               {"token": tokens[i], "id": first_id + i,
                                "username": "scale%04d_bot" % i}), list(range(n)))
    with open(sys.argv[5], "w") as f:
        f.write("".join(t + "\n" for t in tokens))
elif cmd == "waiting":              # waiting FIRST N [SKIP_ID]: exit 0 when each bot has a poll waiting
    skip = int(sys.argv[5]) if len(sys.argv) > 5 else -1
    q = call(conn(), "GET", "/_fake/updates")
    idle = [i for i in range(n) if first_id + i != skip
            and q.get(str(first_id + i), {}).get("waiting", 0) < 1]
    print("%d bots without a waiting long poll%s" % (len(idle), (": e.g. %d" % (first_id + idle[0])) if idle else ""))
    sys.exit(1 if idle else 0)
elif cmd == "start":                # start FIRST N FIRST_USER [I...]: one /start per bot (all, or bots I...)
    user0 = int(sys.argv[5])
    which = [int(x) for x in sys.argv[6:]] or list(range(n))
    parallel(lambda c, i: call(c, "POST", "/_fake/updates",
                               {"bot_id": first_id + i, "update": start_update(i, user0 + i)}),
             which)
elif cmd == "sent":                 # sent FIRST N FIRST_USER [BOT_ID:NEEDLE ...]: checks the welcomes
    user0 = int(sys.argv[5])
    needles = dict((int(a.split(":", 1)[0]), a.split(":", 1)[1]) for a in sys.argv[6:])
    per = {}
    stray = 0
    for s in call(conn(), "GET", "/_fake/sent"):
        if s.get("method") != "sendMessage":
            continue
        i = s["bot_id"] - first_id
        if not 0 <= i < n or int(s.get("chat_id") or 0) != user0 + i:
            stray += 1
            continue
        per.setdefault(i, []).append(s)
    missing = [i for i in range(n) if i not in per]
    dups = [i for i, v in per.items() if len(v) > 1]
    wrong = [i for i, v in per.items()
             if first_id + i in needles and needles[first_id + i] not in json.dumps(v[0])]
    print("bots with one welcome %d of %d; missing %d; duplicated %d; stray %d; without their offer %d"
          % (len(per) - len(dups), n, len(missing), len(dups), stray, len(wrong)))
    if missing or dups or stray or wrong:
        ex = (missing or dups or wrong or [None])[0]
        sys.exit("e.g. bot %s: %s" % (first_id + ex if ex is not None else "-",
                                     json.dumps(per.get(ex, []))[:300]))
elif cmd == "count":                # count FIRST N: sendMessage calls of the N bots so far
    print(sum(1 for s in call(conn(), "GET", "/_fake/sent")
              if s.get("method") == "sendMessage" and 0 <= s["bot_id"] - first_id < n))
PY
fake() { python3 "$RT_DIR/fake.py" "$TG" "$1" "$FIRST_TG_ID" "$N" "${@:2}"; }
metric() { sed -n "s/^$1 //p" "$RASTRO_DATA_DIR/run/bots-0.prom" 2>/dev/null | head -1; }
metric_is() { [ "$(metric "$1")" = "$2" ]; }

# --- 1,000 bots: at the fake, imported, in one pool, three with an offer ----------------
fake register "$RT_DIR/tokens"
rt_assert_eq "$N" "$(wc -l < "$RT_DIR/tokens")" "tokens written"
printf '%s\n' "$META_TOKEN" > "$RT_DIR/m"
echo 'correct horse battery' | rastro user add scale@example.com >/dev/null
rastro pixel add 123456789 --token-file "$RT_DIR/m" >/dev/null
rastro bot import --tokens-file "$RT_DIR/tokens" > "$RT_DIR/import.out" 2>&1 \
  || rt_fail "bot import: $(tail -5 "$RT_DIR/import.out")"
rt_assert_eq "$N" "$(rt_psql "SELECT count(*) FROM bots WHERE enabled AND healthy")" "bots imported"
rt_assert_eq "$N" "$(rt_psql "SELECT count(*) FROM bots WHERE telegram_id BETWEEN $FIRST_TG_ID AND $FIRST_TG_ID + $N - 1
                              AND username = 'scale' || lpad((telegram_id - $FIRST_TG_ID)::text, 4, '0') || '_bot'")" \
  "bots imported with their getMe username and id"
rt_log "$N bots imported (${SECONDS}s)"
# `pool add` takes at most 100 --bot; the rest join the pool by SQL.
rastro pool add scale --pixel 123456789 --bot scale0000_bot --bot scale0001_bot >/dev/null
rt_psql "INSERT INTO pool_bots (pool_id, bot_id, weight)
         SELECT p.id, b.id, 1 FROM pools p, bots b WHERE p.slug = 'scale'
         ON CONFLICT DO NOTHING" >/dev/null
rt_assert_eq "$N" "$(rt_psql "SELECT count(*) FROM pool_bots")" "bots in the pool"
OFFER_BOTS=(0 $((N / 2)) $((N - 1)))
NEEDLES=()
for i in "${OFFER_BOTS[@]}"; do
  rastro offer add --bot "$(printf 'scale%04d_bot' "$i")" --name "Curso $i" --price 19,90 \
    --deliver-text 'Obrigado!' >/dev/null
  NEEDLES+=("$((FIRST_TG_ID + i)):buy:$(rt_psql "SELECT o.id FROM offers o JOIN bots b ON b.id = o.bot_id WHERE b.telegram_id = $((FIRST_TG_ID + i))")")
done

PORT=$(rt_free_port)
export RASTRO_HTTP_PORT=$PORT RASTRO_PUBLIC_URL="http://127.0.0.1:$PORT"
cp "$RASTRO_SOURCE_DIR/topology/local.ini" "$RT_DIR/topology.ini"
rt_bg "$(rt_bin rastro)" up --topology "$RT_DIR/topology.ini"
SUP_LOG=$RT_LAST_LOG
rt_wait_for "front healthz" 60 curl -sf "http://127.0.0.1:$PORT/healthz"

# --- every bot long-polled by the one node ---------------------------------------------------
rt_wait_for "rastro_bots_polling = $N" 60 metric_is rastro_bots_polling "$N"
rt_wait_for "a long poll waiting at the fake for each of the $N bots" 60 fake waiting
fake waiting >&2
rt_log "all $N bots long-polled (${SECONDS}s)"

# --- one /start into every bot at once -------------------------------------------------------
fake start "$FIRST_USER"
welcomed() { [ "$(fake count)" -ge "$N" ]; }
rt_wait_for "a welcome from each of the $N bots" 150 welcomed
rt_log "$N welcomes sent (${SECONDS}s)"
sleep 3     # time for a duplicate to show up, if there were one
fake sent "$FIRST_USER" "${NEEDLES[@]}" >&2 || rt_fail "not exactly one welcome per bot (see above)"
rt_assert_eq "$N" "$(rt_psql "SELECT count(*) FROM tg_updates WHERE handled_at IS NOT NULL AND last_error IS NULL")" \
  "handled rows in tg_updates"
rt_assert_eq "$N" "$(rt_psql "SELECT count(*) FROM tg_updates")" "rows in tg_updates"
rt_assert_eq "$N" "$(rt_psql "SELECT count(*) FROM leads l JOIN bots b ON b.id = l.bot_id
                              WHERE l.tg_user_id = $FIRST_USER + b.telegram_id - $FIRST_TG_ID")" \
  "one lead per bot, its own user"
rt_wait_for "the $N start events stored" 60 bash -c \
  "[ \"\$(psql \"$RASTRO_DATABASE_URL\" -qAtX -c \"SELECT count(*) FROM funnel_events WHERE type = 'start'\")\" = $N ]"
rt_assert_eq "$N" "$(metric rastro_bots_updates_polled_total)" "updates polled"
rt_assert_eq 0 "$(metric rastro_bots_poll_errors_total)" "poll errors before the revocation"

# --- a revoked token: that bot unhealthy, the others keep working ----------------------------
REVOKED=7
REVOKED_TG=$((FIRST_TG_ID + REVOKED))
REVOKED_TOKEN=$(sed -n "$((REVOKED + 1))p" "$RT_DIR/tokens")
curl -sf -X POST "$TG/_fake/bots" -d "{\"token\":\"$REVOKED_TOKEN\",\"revoke\":true}" >/dev/null
rt_wait_for "the revoked bot marked unhealthy" 60 bash -c \
  "[ \"\$(psql \"$RASTRO_DATABASE_URL\" -qAtX -c 'SELECT healthy FROM bots WHERE telegram_id = $REVOKED_TG')\" = f ]"
rt_assert_eq "$((N - 1))" "$(rt_psql "SELECT count(*) FROM bots WHERE healthy")" "healthy bots after one 401"
rt_wait_for "the 401 counted" 10 bash -c \
  "[ \"\$(sed -n 's/^rastro_bots_unauthorized_total //p' $RASTRO_DATA_DIR/run/bots-0.prom)\" -ge 1 ]"
rt_wait_for "long polls still waiting for the other $((N - 1)) bots" 30 fake waiting "$REVOKED_TG"
# Second starts, from new users, into a spread of the other bots (offer bots included).
AGAIN=(1 2 3 $((N / 3)) $((N / 2)) $((N - 2)) $((N - 1)))
BEFORE=$(fake count)
fake start $((FIRST_USER + 100000)) "${AGAIN[@]}"
again_welcomed() { [ "$(fake count)" -ge $((BEFORE + ${#AGAIN[@]})) ]; }
rt_wait_for "welcomes from the other bots after the revocation" 60 again_welcomed
sleep 2
rt_assert_eq $((BEFORE + ${#AGAIN[@]})) "$(fake count)" "welcomes after the second starts"
rt_assert_eq $((N + ${#AGAIN[@]})) "$(rt_psql "SELECT count(*) FROM tg_updates WHERE handled_at IS NOT NULL")" \
  "handled rows after the second starts"
if grep -qF "$REVOKED_TOKEN" "$SUP_LOG" || grep -qF "$(sed -n 1p "$RT_DIR/tokens")" "$SUP_LOG"; then
  rt_fail "a bot token appears in the log"
fi
rt_log "ok: $N bots long-polled by one node; one /start each → exactly one welcome each, $N handled updates; a 401 made one bot unhealthy, the others kept working"
