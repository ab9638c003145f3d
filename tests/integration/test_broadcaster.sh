#!/usr/bin/env bash
# test_broadcaster — the live feed (issue 5 §5, schemas/websocket.md).
#
# A real front (users log in with POST /api/v1/login), a real aggregator
# (catch-up every second, so that rows written into clicks and
# funnel_events are counted and NOTIFYed the way production counts them)
# and a real rastro-broadcaster, on topology/local.ini with test timings;
# two users, bots and pools for both. A WebSocket client in Python's
# stdlib (tests/fakes/ws_client.py) checks:
#   - the upgrade: no cookie / an unknown or expired session → 401, a foreign
#     Origin → 403, not a WebSocket handshake → 400, the same host → 101;
#   - subscribe → an error for another user's bot and pool, then a snapshot
#     with the right numbers (those of analytics_hourly, today in the
#     owner's time zone, Asia/Kolkata here);
#   - new clicks, a start and a payment stored → the aggregator counts them
#     → an update with the new absolute values for the bot, the pool and the
#     total, and nothing about ids not subscribed;
#   - user B asking for A's bot gets "not found" and never any of A's numbers;
#   - a client that never reads (small receive buffer, 300 bots) does not
#     hold up a second client: the second gets every round's numbers while
#     the first is skipped (slow_skips) and finally closed (drops);
#   - reconnect → a fresh snapshot with the current values;
#   - malformed input (bad JSON, binary frames, unknown types, bad ids, too
#     many ids, an unmasked frame, an oversized frame, a flood of garbage)
#     → error messages or a close, and the node keeps serving;
#   - sessions that end close their feeds with 4001 "session ended": A logs
#     in twice (S1, S2), one client each; POST /api/v1/logout with S1 → the
#     S1 client is closed (the rastro_sessions NOTIFY reached the
#     broadcaster) while the S2 client keeps getting updates; S2 expired by
#     hand → closed by the periodic check; a session row deleted by hand →
#     closed; B's client stays open throughout.
. "$(dirname "$0")/lib.sh"
rt_setup broadcaster

echo 'broadcaster-pw-a' | rastro user add a@bcast.test >/dev/null
echo 'broadcaster-pw-b' | rastro user add b@bcast.test >/dev/null
A=$(rt_psql "SELECT id FROM users WHERE email = 'a@bcast.test'")
B=$(rt_psql "SELECT id FROM users WHERE email = 'b@bcast.test'")
rt_psql "UPDATE users SET timezone = 'Asia/Kolkata' WHERE id = $A"
rt_psql "INSERT INTO pixels (owner_id, pixel_id, token_enc) VALUES ($A, '1001', '\\x00'), ($B, '2002', '\\x00')"
# A: bots a_one, a_two and 300 more (for the slow client); pool pa. B: bot b_one, pool pb.
rt_psql "INSERT INTO bots (owner_id, telegram_id, username, token_enc) VALUES
           ($A, 71001, 'bcast_a_one', '\\x00'), ($A, 71002, 'bcast_a_two', '\\x00'),
           ($B, 72001, 'bcast_b_one', '\\x00')"
rt_psql "INSERT INTO bots (owner_id, telegram_id, username, token_enc)
         SELECT $A, 80000 + i, 'bcast_many_' || i, '\\x00' FROM generate_series (1, 300) i"
rt_psql "INSERT INTO pools (owner_id, slug, pixel_ref) SELECT owner_id, CASE WHEN owner_id = $A
           THEN 'bcast-pa' ELSE 'bcast-pb' END, id FROM pixels"
# ---- the nodes: a front (for logins), an aggregator, the broadcaster -----------------
# topology/local.ini with quick catch-ups, a small kernel send buffer per
# WebSocket client (so that one that does not read is busy after a few kB)
# and a short stuck_s. Only these three nodes are started.
TOPO=$RT_DIR/topology.ini
sed -e 's/^required_acks = .*/required_acks = stored/' \
    -e 's/^catchup_s = .*/catchup_s = 1/' -e 's/^catchup_grace_s = .*/catchup_grace_s = 0/' \
    -e 's/^batch_ms  = 200/batch_ms  = 50/' \
    -e 's/^refresh_s = .*/refresh_s = 2/' -e 's/^ping_s    = .*/ping_s    = 1/' \
    -e 's/^stuck_s   = .*/stuck_s   = 3/' -e 's/^sndbuf_kb = .*/sndbuf_kb = 8/' \
    "$RASTRO_SOURCE_DIR/topology/local.ini" > "$TOPO"
for line in 'catchup_s = 1' 'catchup_grace_s = 0' 'refresh_s = 2' 'ping_s    = 1' 'stuck_s   = 3' \
            'sndbuf_kb = 8' '[broadcaster]'; do
  grep -qxF "$line" "$TOPO" || rt_fail "topology/local.ini: no '$line' after the edit"
done
PORT=$(rt_free_port)
WS_PORT=$(rt_free_port)
export RASTRO_HTTP_PORT=$PORT RASTRO_WS_PORT=$WS_PORT RASTRO_API_THREADS=2 \
  RASTRO_PUBLIC_URL="http://front.bcast.test:8080"
rt_bg "$(rt_bin rastro-front)" --topology "$TOPO"
rt_bg "$(rt_bin rastro-aggregator)" --topology "$TOPO"
rt_bg "$(rt_bin rastro-broadcaster)" --topology "$TOPO"
BC_PID=$RT_LAST_PID
BC_LOG=$RT_LAST_LOG
rt_wait_for "front healthz" 30 curl -sf "http://127.0.0.1:$PORT/healthz"
rt_wait_for "broadcaster healthz" 30 curl -sf "http://127.0.0.1:$WS_PORT/healthz"
"$(rt_bin rastro-broadcaster)" --help | grep -q 'RASTRO_WS_PORT' || rt_fail "--help does not mention the port"

# Sessions: log in through the front (POST /api/v1/login sets rastro_session).
login() {  # login EMAIL PASSWORD: prints the session cookie's value
  curl -s -D - -o /dev/null -H 'Content-Type: application/json' \
    --data-binary "{\"email\":\"$1\",\"password\":\"$2\"}" "http://127.0.0.1:$PORT/api/v1/login" \
    | tr -d '\r' | sed -n 's/^[Ss]et-[Cc]ookie: rastro_session=\([^;]*\);.*/\1/p'
}
TOKEN_A=$(login a@bcast.test broadcaster-pw-a)
TOKEN_B=$(login b@bcast.test broadcaster-pw-b)
[ -n "$TOKEN_A" ] && [ -n "$TOKEN_B" ] || rt_fail "login through the front gave no session cookie"
# An expired session, stored as rst_auth stores them (sha256 of the cookie value).
TOKEN_OLD=$(python3 -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("="))')
rt_psql "INSERT INTO sessions (token_hash, user_id, csrf_token, expires_at) VALUES
           (sha256 ('$TOKEN_OLD'::bytea), $A, 'csrf-o', now () - interval '1 minute')"

BOT_A1=$(rt_psql "SELECT id FROM bots WHERE username = 'bcast_a_one'")
BOT_A2=$(rt_psql "SELECT id FROM bots WHERE username = 'bcast_a_two'")
BOT_B1=$(rt_psql "SELECT id FROM bots WHERE username = 'bcast_b_one'")
POOL_A=$(rt_psql "SELECT id FROM pools WHERE slug = 'bcast-pa'")
POOL_B=$(rt_psql "SELECT id FROM pools WHERE slug = 'bcast-pb'")

# Clicks before anyone connects: the first snapshot must already show them.
rt_psql "INSERT INTO clicks (click_id, event_id, owner_id, pool_id, bot_id, pixel_id, clicked_at, ip,
           user_agent, url, utm_source, utm_campaign, source)
         SELECT 'bc-pre-' || i, 'bc-pre-pv-' || i, $A, $POOL_A, $BOT_A1, '1001', now (), '198.51.100.7',
                'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) Mobile/15E148', 'https://x/go/p',
                'ig', 'c1', 'test' FROM generate_series (1, 3) i"
first_counted() {
  [ "$(rt_psql "SELECT COALESCE (sum (clicks), 0) FROM analytics_hourly WHERE owner_id = $A")" = 3 ]
}
rt_wait_for "the aggregator counting the first clicks" 30 first_counted

export WS_PORT A B BOT_A1 BOT_A2 BOT_B1 POOL_A POOL_B TOKEN_A TOKEN_B TOKEN_OLD
export PROM="$RASTRO_DATA_DIR/run/broadcaster-0.prom" FRONT_PORT=$PORT BC_LOG
python3 - <<'PY' || rt_fail "scenario failed (see above)"
import json, os, socket, subprocess, sys, time
sys.path.insert(0, os.path.join(os.environ["RASTRO_SOURCE_DIR"], "tests", "fakes"))
from ws_client import WsClient, WsClosed, OP_TEXT

E = os.environ
PORT = int(E["WS_PORT"])
A, B = int(E["A"]), int(E["B"])
BOT_A1, BOT_A2, BOT_B1 = int(E["BOT_A1"]), int(E["BOT_A2"]), int(E["BOT_B1"])
POOL_A, POOL_B = int(E["POOL_A"]), int(E["POOL_B"])
FIELDS = ["clicks", "automated_clicks", "starts", "checkouts", "purchases", "revenue_cents"]


def fail(msg):
    print("FAIL:", msg, file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def psql(sql):
    out = subprocess.run(["psql", E["RASTRO_DATABASE_URL"], "-v", "ON_ERROR_STOP=1", "-qAtX",
                          "-c", sql], check=True, capture_output=True, text=True).stdout
    return out.strip()


def metric(name):
    try:
        for line in open(E["PROM"]):
            parts = line.split()
            if len(parts) == 2 and parts[0] == name:
                return float(parts[1])
    except OSError:
        pass
    return 0.0


TODAY = "(now () AT TIME ZONE rastro_timezone (u.timezone))::date"


def expected(owner, where="true"):
    """Today's sums for OWNER from analytics_hourly (the truth), as a dict."""
    row = psql(f"""SELECT {', '.join(f'COALESCE (sum (h.{f}), 0)' for f in FIELDS)}
                     FROM users u LEFT JOIN analytics_hourly h ON h.owner_id = u.id AND h.day = {TODAY}
                      AND ({where}) WHERE u.id = {owner}""")
    return dict(zip(FIELDS, map(int, row.split("|"))))


def today(owner):
    return psql(f"SELECT {TODAY} FROM users u WHERE u.id = {owner}")


def client(token, **kw):
    c = WsClient("127.0.0.1", PORT, cookie=f"rastro_session={token}" if token else None, **kw)
    return c


def open_client(token, **kw):
    c = client(token, **kw)
    status = c.connect()
    check(status == 101, f"upgrade answered {status}: {c.body!r}")
    return c


def next_of(c, types, timeout=20):
    """Next message whose type is in TYPES (others are kept in c.seen)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            fail(f"no {types} message in {timeout}s")
        msg = c.recv_json(timeout=left)
        c.seen = getattr(c, "seen", []) + [msg]
        if msg.get("type") in types:
            return msg


def wait_values(c, state, want, timeout=30):
    """Reads snapshots/updates into STATE until STATE matches WANT (a dict of key → metrics)."""
    deadline = time.monotonic() + timeout
    while True:
        if all(state.get(k) == v for k, v in want.items()):
            return
        left = deadline - time.monotonic()
        if left <= 0:
            fail(f"values never reached {want}; have {state}")
        try:
            msg = c.recv_json(timeout=left)
        except TimeoutError:
            continue
        merge(state, msg)


def merge(state, msg):
    if msg.get("type") not in ("snapshot", "update"):
        return
    check(set(msg) <= {"type", "seq", "day", "total", "bots", "pools"}, f"unexpected keys: {msg}")
    if "total" in msg:
        state["total"] = msg["total"]
    for k in ("bots", "pools"):
        for i, m in msg.get(k, {}).items():
            check(set(m) == set(FIELDS), f"metrics shape: {m}")
            state[f"{k[:-1]}:{i}"] = m


# ---- the upgrade ---------------------------------------------------------------------
for token, why in ((None, "no cookie"), ("nobody-has-this-token", "unknown session"),
                   (E["TOKEN_OLD"], "expired session")):
    c = client(token)
    check(c.connect() == 401, f"{why}: expected 401, got {c.status}")
    check(json.loads(c.body) == {"error": "login required"}, f"{why}: body {c.body!r}")
c = client(E["TOKEN_A"], origin="http://evil.example")
check(c.connect() == 403, f"foreign origin: got {c.status}")
for origin in ("http://front.bcast.test:8080", "http://127.0.0.1:8080"):
    c = client(E["TOKEN_A"], origin=origin)
    check(c.connect() == 101, f"origin {origin}: got {c.status}")
    c.abort()
s = socket.create_connection(("127.0.0.1", PORT))
s.sendall(f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{PORT}\r\n\r\n".encode())
check(s.recv(4096).startswith(b"HTTP/1.1 400"), "a plain GET /ws should be 400")
s.close()
print("upgrade: 401 / 403 / 400 / 101 as expected")

# ---- subscribe: errors for foreign ids, then the snapshot ----------------------------
a = open_client(E["TOKEN_A"])
a.send_json({"type": "subscribe", "bots": [BOT_A1, BOT_A2, BOT_B1], "pools": [POOL_A, POOL_B]})
errors = []
while True:
    msg = a.recv_json()
    if msg["type"] == "error":
        errors.append(msg)
        continue
    break
check(sorted(json.dumps(e, sort_keys=True) for e in errors) == sorted(
    [json.dumps({"type": "error", "error": "not found", "bot": BOT_B1}, sort_keys=True),
     json.dumps({"type": "error", "error": "not found", "pool": POOL_B}, sort_keys=True)]),
    f"errors for foreign ids: {errors}")
check(msg["type"] == "snapshot", f"expected a snapshot, got {msg}")
check(msg["day"] == today(A), f"day {msg['day']} is not A's today {today(A)}")
check(set(msg["bots"]) == {str(BOT_A1), str(BOT_A2)}, f"snapshot bots: {msg['bots'].keys()}")
check(set(msg["pools"]) == {str(POOL_A)}, f"snapshot pools: {msg['pools'].keys()}")
check(msg["total"] == expected(A), f"snapshot total {msg['total']} != {expected(A)}")
check(msg["total"]["clicks"] == 3, f"the 3 clicks counted before: {msg['total']}")
check(msg["bots"][str(BOT_A1)] == expected(A, f"h.bot_id = {BOT_A1}"), "snapshot bot A1")
check(msg["bots"][str(BOT_A2)] == dict.fromkeys(FIELDS, 0), "snapshot bot A2 (nothing yet)")
check(msg["pools"][str(POOL_A)] == expected(A, f"h.pool_id = {POOL_A}"), "snapshot pool A")
state_a = {}
merge(state_a, msg)
print("snapshot:", msg["total"])

# ---- B cannot see A's numbers -------------------------------------------------------
b = open_client(E["TOKEN_B"])
b.send_json({"type": "subscribe", "bots": [BOT_A1, BOT_B1], "pools": [POOL_A]})
got = [b.recv_json() for _ in range(3)]
check({json.dumps(m, sort_keys=True) for m in got if m["type"] == "error"} == {
    json.dumps({"type": "error", "error": "not found", "bot": BOT_A1}, sort_keys=True),
    json.dumps({"type": "error", "error": "not found", "pool": POOL_A}, sort_keys=True)},
    f"B's errors: {got}")
snap_b = [m for m in got if m["type"] == "snapshot"]
check(len(snap_b) == 1, f"B got {got}")
check(snap_b[0]["bots"] == {str(BOT_B1): dict.fromkeys(FIELDS, 0)} and snap_b[0]["pools"] == {},
      f"B's snapshot must hold only B's bot: {snap_b[0]}")
check(snap_b[0]["total"] == dict.fromkeys(FIELDS, 0), f"B's total: {snap_b[0]['total']}")

# ---- new events → the aggregator → an update with the new absolute values -----------
psql(f"""INSERT INTO clicks (click_id, event_id, owner_id, pool_id, bot_id, pixel_id, clicked_at, ip,
           user_agent, url, utm_source, utm_campaign, source)
         SELECT 'bc-new-' || i, 'bc-new-pv-' || i, {A}, {POOL_A}, {BOT_A1}, '1001', now (), '198.51.100.8',
                CASE WHEN i = 1 THEN '' ELSE 'Mozilla/5.0 (X11; Linux x86_64) Firefox/126.0' END,
                'https://x/go/p', 'ig', 'c1', 'test' FROM generate_series (1, 4) i;
         INSERT INTO funnel_events (event_id, type, owner_id, pool_id, bot_id, pixel_id, click_id,
           value_cents, happened_at, source) VALUES
           ('bc-start-1', 'start', {A}, {POOL_A}, {BOT_A1}, '1001', 'bc-new-2', NULL, now (), 'test'),
           ('bc-pay-1', 'payment', {A}, {POOL_A}, {BOT_A1}, '1001', 'bc-new-2', 9700, now (), 'test')""")
deadline = time.monotonic() + 30
while True:      # the aggregator's catch-up counts them (and NOTIFYs at its commit)
    e = expected(A)
    if e["clicks"] + e["automated_clicks"] == 7 and e["purchases"] == 1:
        break
    check(time.monotonic() < deadline, f"the aggregator did not count the new events: {e}")
    time.sleep(0.2)
check(e["starts"] == 1 and e["revenue_cents"] == 9700, f"counted: {e}")
wait_values(a, state_a, {"total": e})
check(state_a["total"] == expected(A), "update total = analytics_hourly")
check(state_a[f"bot:{BOT_A1}"] == expected(A, f"h.bot_id = {BOT_A1}"), "update bot A1")
check(state_a[f"pool:{POOL_A}"] == expected(A, f"h.pool_id = {POOL_A}"), "update pool A")
check(state_a[f"bot:{BOT_A2}"] == dict.fromkeys(FIELDS, 0), "bot A2 did not move")
check(f"bot:{BOT_B1}" not in state_a and f"pool:{POOL_B}" not in state_a, "foreign ids leaked")
check(metric("rastro_broadcaster_notifications_total") >= 1, "no notification counted")
print("update:", state_a["total"])
# B heard nothing of it (its next message, if any, is not about A).
try:
    m = b.recv_json(timeout=1.5)
    check(m.get("total", {}).get("clicks", 0) == 0 and str(BOT_A1) not in m.get("bots", {}),
          f"B got A's numbers: {m}")
except TimeoutError:
    pass

# ---- a client that never reads does not hold up another -----------------------------
many = [int(x) for x in psql(f"SELECT id FROM bots WHERE owner_id = {A} ORDER BY id").split()]
slow = open_client(E["TOKEN_A"], rcvbuf=2048)
slow.send_json({"type": "subscribe", "bots": many})      # and then never reads
fast = open_client(E["TOKEN_A"])
fast.send_json({"type": "subscribe", "bots": [BOT_A1, many[-1]]})
state_f = {}
merge(state_f, next_of(fast, ("snapshot",)))
skips_before = metric("rastro_broadcaster_slow_skips_total")
dropped_at = None
for rnd in range(1, 81):
    # The aggregator's way: rows added, pg_notify in the same transaction.
    psql(f"""INSERT INTO analytics_hourly AS h (owner_id, day, hour, pool_id, bot_id, utm_source,
               utm_campaign, clicks)
             SELECT {A}, (now () AT TIME ZONE 'Asia/Kolkata')::date,
                    extract (hour FROM now () AT TIME ZONE 'Asia/Kolkata')::smallint, 0, id,
                    'slow-test', 'round', 1 FROM bots WHERE owner_id = {A}
             ON CONFLICT (owner_id, day, hour, pool_id, bot_id, utm_source, utm_campaign)
             DO UPDATE SET clicks = h.clicks + 1;
             SELECT pg_notify ('rastro_analytics', '{A}')""")
    want = {f"bot:{BOT_A1}": expected(A, f"h.bot_id = {BOT_A1}"),
            f"bot:{many[-1]}": expected(A, f"h.bot_id = {many[-1]}")}
    wait_values(fast, state_f, want)    # every round reaches the fast client
    if dropped_at is None and metric("rastro_broadcaster_drops_total") >= 1:
        dropped_at = rnd
    if dropped_at is not None and rnd >= dropped_at + 2:
        break
    time.sleep(0.3)
check(metric("rastro_broadcaster_slow_skips_total") > skips_before, "the slow client was never skipped")
check(dropped_at is not None, "the stuck client was never closed")
print(f"slow client skipped, closed at round {dropped_at}; the fast one kept up")
slow.abort()

# ---- reconnect: a fresh snapshot with the current values ----------------------------
fast.close()
a.close()
a2 = open_client(E["TOKEN_A"])
a2.send_json({"type": "subscribe", "bots": [BOT_A1], "pools": [POOL_A]})
snap = next_of(a2, ("snapshot",))
check(snap["total"] == expected(A), f"reconnect total {snap['total']} != {expected(A)}")
check(snap["bots"] == {str(BOT_A1): expected(A, f"h.bot_id = {BOT_A1}")}, "reconnect bot")
check(snap["pools"] == {str(POOL_A): expected(A, f"h.pool_id = {POOL_A}")}, "reconnect pool")
# A new subscribe on the same connection replaces the old one: a snapshot of the new set.
a2.send_json({"type": "subscribe", "bots": [BOT_A2]})
snap2 = next_of(a2, ("snapshot",))
check(snap2["bots"] == {str(BOT_A2): expected(A, f"h.bot_id = {BOT_A2}")} and snap2["pools"] == {},
      f"resubscribe: {snap2}")
check(snap2["seq"] > snap["seq"], "seq goes up")
print("reconnect: snapshot", snap["total"])

# ---- malformed input ------------------------------------------------------------------
bad = [("not json", "bad json"), ("[1,2]", "not an object"), ("{}", "no type"), ('{"type":"hello"}', "unknown type"),
       ('{"type":"subscribe","bots":"1"}', "bad bots"), ('{"type":"subscribe","bots":[-1]}', "bad bots"),
       ('{"type":"subscribe","bots":[1.5]}', "bad bots"), ('{"type":"subscribe","pools":[1e300]}', "bad pools"),
       ('{"type":"subscribe","bots":["1"]}', "bad bots"),
       (json.dumps({"type": "subscribe", "bots": list(range(1, 1003))}), "too many ids")]
for text, reason in bad:
    a2.send_text(text)
    m = next_of(a2, ("error",))
    check(m == {"type": "error", "error": reason}, f"{text[:40]!r}: {m}")
a2.send_frame(2, b"\x01\x02\x03")
check(next_of(a2, ("error",)) == {"type": "error", "error": "text frames only"}, "binary frame")

def closes(c, what):
    """Reads until the server closes; returns the close code (None: no close frame)."""
    try:
        while True:
            c.recv_message(timeout=10)
    except WsClosed as e:
        return e.args[0]
    except (ConnectionResetError, BrokenPipeError):
        return None
    except TimeoutError:
        fail(f"{what}: the server did not close")

c = open_client(E["TOKEN_A"])
c.send_frame(1, b'{"type":"subscribe"}', mask=False)     # clients must mask
check(closes(c, "unmasked frame") == 1002, "unmasked frame: close code")
c = open_client(E["TOKEN_A"])
c.send_text(b'{"type":"subscribe","bots":[1]}\xff\xfe')  # not UTF-8
check(closes(c, "invalid UTF-8") == 1007, "invalid UTF-8: close code")
c = open_client(E["TOKEN_A"])
c.send_frame(1, b"x" * 70000)                            # above the 64 KiB limit
check(closes(c, "oversized frame") == 1009, "oversized frame: close code")
c = open_client(E["TOKEN_A"])
for _ in range(25):                                      # a flood of garbage
    try:
        c.send_text("garbage")
    except OSError:
        break
check(closes(c, "garbage flood") == 1008, "garbage flood: close code")
c = open_client(E["TOKEN_A"])
c.sock.sendall(b"\x81\xfe\x10")                          # a truncated header, then gone
c.abort()

# Still serving: a new client gets its snapshot, and pings were answered along the way.
c = open_client(E["TOKEN_A"])
c.send_json({"type": "subscribe", "bots": [BOT_A1]})
check(next_of(c, ("snapshot",))["bots"][str(BOT_A1)] == expected(A, f"h.bot_id = {BOT_A1}"),
      "after the abuse")
deadline = time.monotonic() + 15
while c.pings == 0 and time.monotonic() < deadline:     # idle: pings every ping_s = 1
    try:
        c.recv_message(timeout=0.5)
    except TimeoutError:
        pass
check(c.pings >= 1, "no ping from the server (ping_s = 1)")
c.close()
check(metric("rastro_broadcaster_bad_messages_total") >= len(bad), "bad messages not counted")
print("malformed input: errors and closes, still serving")

# ---- a session that ends closes its feeds: 4001 "session ended" ---------------------
import http.client


def front(method, path, headers=None, body=None):
    h = http.client.HTTPConnection("127.0.0.1", int(E["FRONT_PORT"]), timeout=10)
    h.request(method, path, body=body, headers=headers or {})
    r = h.getresponse()
    data = r.read()
    h.close()
    return r, data


def api_login(email, password):
    """Logs in through the front: (session cookie value, CSRF token)."""
    r, data = front("POST", "/api/v1/login", {"Content-Type": "application/json"},
                    json.dumps({"email": email, "password": password}))
    check(r.status == 200, f"login {email}: {r.status} {data!r}")
    cookie = r.getheader("Set-Cookie") or ""
    check(cookie.startswith("rastro_session="), f"login {email}: Set-Cookie {cookie!r}")
    return cookie.split(";", 1)[0].split("=", 1)[1], json.loads(data)["csrf"]


def closed_with(c, what, timeout=20):
    """Reads (answering pings) until the server closes C: (code, reason)."""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                c.recv_message(timeout=max(0.01, deadline - time.monotonic()))
            except TimeoutError:
                pass
    except WsClosed as e:
        return e.args[0], e.args[1]
    except (ConnectionResetError, BrokenPipeError):
        return None, "reset"
    fail(f"{what}: the feed was not closed within {timeout}s")


def feed(token, bots):
    c = open_client(token)
    c.send_json({"type": "subscribe", "bots": bots})
    next_of(c, ("snapshot",))
    return c


def bump(owner, bot):
    """One more click for BOT today, NOTIFYed the aggregator's way."""
    psql(f"""INSERT INTO analytics_hourly AS h (owner_id, day, hour, pool_id, bot_id, utm_source,
               utm_campaign, clicks)
             SELECT {owner}, (now () AT TIME ZONE u.tz)::date,
                    extract (hour FROM now () AT TIME ZONE u.tz)::smallint, 0, {bot},
                    'session-test', 'round', 1
               FROM (SELECT rastro_timezone (timezone) AS tz FROM users WHERE id = {owner}) u
             ON CONFLICT (owner_id, day, hour, pool_id, bot_id, utm_source, utm_campaign)
             DO UPDATE SET clicks = h.clicks + 1;
             SELECT pg_notify ('rastro_analytics', '{owner}')""")


def sha(token):
    return f"sha256 (convert_to ('{token}', 'UTF8'))"


s1, csrf1 = api_login("a@bcast.test", "broadcaster-pw-a")
s2, csrf2 = api_login("a@bcast.test", "broadcaster-pw-a")
s3, _ = api_login("a@bcast.test", "broadcaster-pw-a")
check(len({s1, s2, s3, E["TOKEN_A"]}) == 4, "every login is a new session")
ended_before = metric("rastro_broadcaster_sessions_ended_total")
c1, c2, c3 = feed(s1, [BOT_A1]), feed(s2, [BOT_A1]), feed(s3, [BOT_A1])
cb = feed(E["TOKEN_B"], [BOT_B1])
state_2 = {}

# Logout of S1 (cookie + CSRF, as the dashboard does it): only S1's feed ends.
r, data = front("POST", "/api/v1/logout", {"Cookie": f"rastro_session={s1}", "X-CSRF-Token": csrf1})
check(r.status == 204, f"logout: {r.status} {data!r}")
code, reason = closed_with(c1, "the logged-out session's feed")
check((code, reason) == (4001, "session ended"), f"logout: closed with {code} {reason!r}")
check(f"user {A} logged out" in open(E["BC_LOG"]).read(),
      "the broadcaster did not hear the logout's rastro_sessions NOTIFY")
check(client(s1).connect() == 401, "the logged-out session still upgrades")
bump(A, BOT_A1)
wait_values(c2, state_2, {f"bot:{BOT_A1}": expected(A, f"h.bot_id = {BOT_A1}")})
print("logout: S1's feed closed with 4001, S2's feed kept its updates")

# S2 expires (no NOTIFY): the periodic check (refresh_s = 2) closes it.
psql(f"UPDATE sessions SET expires_at = now () - interval '1 s' WHERE token_hash = {sha(s2)}")
code, reason = closed_with(c2, "the expired session's feed")
check((code, reason) == (4001, "session ended"), f"expiry: closed with {code} {reason!r}")
print("expiry: S2's feed closed with 4001")

# S3's row deleted by hand (no NOTIFY either): closed too.
check(psql(f"DELETE FROM sessions WHERE token_hash = {sha(s3)} RETURNING 1") == "1", "S3's row")
code, reason = closed_with(c3, "the deleted session's feed")
check((code, reason) == (4001, "session ended"), f"deleted row: closed with {code} {reason!r}")
deadline = time.monotonic() + 10        # the .prom file is written every second
while metric("rastro_broadcaster_sessions_ended_total") < ended_before + 3:
    check(time.monotonic() < deadline, "sessions_ended_total did not count the three closes")
    time.sleep(0.2)

# B's feed (a live session) was left alone all along and still works.
cb.send_json({"type": "subscribe", "bots": [BOT_B1]})
check(next_of(cb, ("snapshot",))["bots"] == {str(BOT_B1): expected(B, f"h.bot_id = {BOT_B1}")},
      "B's feed after the other user's sessions ended")
cb.close()
log = open(E["BC_LOG"]).read()
check(not any(t in log for t in (s1, s2, s3)), "a session token reached the log")
print("sessions: logout, expiry and a deleted row close their feeds (4001); others stay")
PY

kill -0 "$BC_PID" 2>/dev/null || rt_fail "the broadcaster died"
grep -q "$TOKEN_A" "$BC_LOG" && rt_fail "a session token reached the log"
# A clean stop (and, under ASan, no leaks).
kill -TERM "$BC_PID"
wait "$BC_PID" || rt_fail "the broadcaster exited with $? on SIGTERM"
echo "PASS test_broadcaster"
