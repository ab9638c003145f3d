#!/usr/bin/env bash
# test_webhooks — inbound webhooks through the front under `rastro up`:
# POST /telegram/<bot> and POST /webhook/<gateway> journaled in the inbox
# journal (strict mode), handed to a stand-in bots node (bench_inbox_pull,
# which prints each message and acks it like the bots node will).
# Covers: the right secret -> 200, the update arrives exactly once and the
# journal is empty after the ack; missing/wrong secret, unknown bot, bot in
# polling mode -> the same 401, nothing journaled; case-insensitive username;
# bad JSON / not an object / bad update_id -> 400; oversize -> 413; GET ->
# 405; unknown gateway -> 404; Mercado Pago with a valid signature -> 200 and
# journaled, forged -> 401, not about a payment -> 200 and not journaled;
# PushinPay wrong token -> 401, right token -> 200; SyncPay -> 200; kill -9 of
# the front right after a 200 -> the entry is still in the journal and is
# delivered after the restart; the fake Telegram delivering through
# `rastro bot webhook`; a topology without `inbox` -> 503 "webhooks not
# configured"; no secret in the front's log.
. "$(dirname "$0")/lib.sh"
rt_setup webhooks
rt_fake_telegram

bot() { # bot ID USERNAME: registers a bot at the fake and in rastro
  local token="$1:AAH-webhooks-$2-token"
  curl -sf -X POST "$RASTRO_TELEGRAM_API_URL/_fake/bots" -d "{\"token\":\"$token\",\"username\":\"$2\",\"id\":$1}" >/dev/null
  printf '%s\n' "$token" > "$RT_DIR/t-$2"
  rastro bot add --token-file "$RT_DIR/t-$2" >/dev/null
}
echo 'correct horse battery' | rastro user add hooks@example.com >/dev/null
bot 700401 Hook_Bot        # webhook mode, Mercado Pago
bot 700402 pp_bot          # polling, PushinPay
bot 700403 sp_bot          # polling, SyncPay
bot 700404 fake_hook_bot   # webhook set through `rastro bot webhook` (fake Telegram delivers)

TG_SECRET='s3cret-Token_for-hook_bot'
rt_psql "UPDATE bots SET update_mode = 'webhook', webhook_secret_hash = sha256('$TG_SECRET'::bytea) WHERE username = 'Hook_Bot'"
MP_SECRET='mp-webhook-secret-9f8e7d'
PP_TOKEN='pp-webhook-token-1a2b3c'
umask 077
printf '{"access_token":"APP_USR-webhooks-1","webhook_secret":"%s"}\n' "$MP_SECRET" > "$RT_DIR/mp.json"
printf '{"token":"pp-api-token","webhook_token":"%s"}\n' "$PP_TOKEN" > "$RT_DIR/pp.json"
printf '{"client_id":"sp-client","client_secret":"sp-secret"}\n' > "$RT_DIR/sp.json"
rastro gateway set Hook_Bot mercadopago --credentials-file "$RT_DIR/mp.json" >/dev/null
rastro gateway set pp_bot pushinpay --credentials-file "$RT_DIR/pp.json" >/dev/null
rastro gateway set sp_bot syncpay --credentials-file "$RT_DIR/sp.json" >/dev/null
umask 022

PORT=$(rt_free_port)
export RASTRO_HTTP_PORT=$PORT
BASE="http://127.0.0.1:$PORT"
# Only the front and a stand-in for the bots node: the inbox entries are
# pulled by bench_inbox_pull, started (and stopped) by this script.
cat > "$RT_DIR/topology.ini" <<'EOF'
[front]
journal   = {data}/front-{i}/journal
acks      = @ipc://{data}/run/front-{i}-acks.sock
required_acks = stored
events    = >ipc://{data}/run/no-recorder.sock
replay_after = 1
sync_ms   = 10
inbox      = {data}/front-{i}/inbox
inbox_acks = @ipc://{data}/run/front-{i}-inbox-acks.sock
inbox_out  = bots.in

[bots]
in         = @ipc://{data}/run/bots-{i}-in.sock
inbox_acks = front.inbox_acks
command    = sh -c 'exec sleep 100000' stand-in
EOF
PULLED="$RT_DIR/pulled.jsonl"
: > "$PULLED"
start_puller() {
  rt_bg "$(rt_bin bench/bench_inbox_pull)" --topology "$RT_DIR/topology.ini" --out "$PULLED"
  PULLER=$RT_LAST_PID
  rt_wait_for "inbox puller" 10 grep -q 'inbox_pull: ready' "$RT_LAST_LOG"
}
start_puller
rt_bg "$(rt_bin rastro)" up --topology "$RT_DIR/topology.ini"
SUP=$RT_LAST_PID SUP_LOG=$RT_LAST_LOG
rt_wait_for "front healthz" 30 curl -sf "$BASE/healthz"
INBOX="$RASTRO_DATA_DIR/front-0/inbox"

metric() { curl -s "$BASE/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
journal_entries() { mdb_stat -s entries "$INBOX" | awk '$1 == "Entries:" { print $2 }'; }
pulled() { grep -c "$1" "$PULLED" || true; }   # lines of the puller's output matching $1
pulled_at_least() { [ "$(pulled "$1")" -ge "$2" ]; }
journal_is() { [ "$(journal_entries)" = "$1" ]; }
metric_is() { [ "$(metric "$1")" = "$2" ]; }
# post PATH [curl args...]: prints "<status> <body>" of a POST
post() { local p=$1; shift; curl -s -o "$RT_DIR/body" -w '%{http_code}' -X POST "$@" "$BASE$p"; printf ' %s' "$(tr -d '\n' < "$RT_DIR/body")"; }
update() { printf '{"update_id":%s,"message":{"message_id":5,"date":1767225600,"chat":{"id":111,"type":"private"},"text":"/start c_%s"}}' "$1" "$1"; }
TGH='X-Telegram-Bot-Api-Secret-Token'

# --- Telegram: refused requests ---------------------------------------------
rt_assert_eq "405 method not allowed" "$(curl -s -o "$RT_DIR/body" -w '%{http_code}' "$BASE/telegram/Hook_Bot"; printf ' %s' "$(tr -d '\n' < "$RT_DIR/body")")" "GET /telegram/"
rt_assert_eq "401 unauthorized" "$(post /telegram/Hook_Bot -d "$(update 900)")" "no secret"
rt_assert_eq "401 unauthorized" "$(post /telegram/Hook_Bot -H "$TGH: wrong-secret" -d "$(update 901)")" "wrong secret"
rt_assert_eq "401 unauthorized" "$(post /telegram/Hook_Bot -H "$TGH;" -d "$(update 902)")" "empty secret"
rt_assert_eq "401 unauthorized" "$(post /telegram/no_such_bot -H "$TGH: $TG_SECRET" -d "$(update 903)")" "unknown bot"
rt_assert_eq "401 unauthorized" "$(post /telegram/pp_bot -H "$TGH: $TG_SECRET" -d "$(update 904)")" "bot in polling mode"
rt_assert_eq "401 unauthorized" "$(post '/telegram/Hook_Bot%20' -H "$TGH: $TG_SECRET" -d "$(update 905)")" "odd username"
rt_assert_eq "400 bad request: body is not JSON" "$(post /telegram/Hook_Bot -H "$TGH: $TG_SECRET" -d '{"update_id":1')" "bad JSON"
rt_assert_eq "400 bad request: body is not a JSON object" "$(post /telegram/Hook_Bot -H "$TGH: $TG_SECRET" -d '[1,2]')" "JSON array"
rt_assert_eq "400 bad request: update_id must be an integer >= 0" "$(post /telegram/Hook_Bot -H "$TGH: $TG_SECRET" -d '{"update_id":-5}')" "negative update_id"
rt_assert_eq "400 bad request: update_id must be an integer >= 0" "$(post /telegram/Hook_Bot -H "$TGH: $TG_SECRET" -d '{"update_id":1.5}')" "fractional update_id"
rt_assert_eq "400 bad request: update_id missing or not a number" "$(post /telegram/Hook_Bot -H "$TGH: $TG_SECRET" -d '{"message":{}}')" "no update_id"
rt_assert_eq "400 bad request: empty body" "$(post /telegram/Hook_Bot -H "$TGH: $TG_SECRET")" "empty body"
python3 -c 'import sys; sys.stdout.write("{\"update_id\":906,\"pad\":\"" + "x" * (1024 * 1024) + "\"}")' > "$RT_DIR/big.json"
rt_assert_eq 413 "$(post /telegram/Hook_Bot -H "$TGH: $TG_SECRET" -H 'Expect:' --data-binary @"$RT_DIR/big.json" | cut -d' ' -f1)" "body over 1 MiB"
# h2o answers 413 from the Content-Length alone and closes the connection;
# a client still uploading may then see a reset instead of the answer, so
# only the headers are sent here.
huge_status() {
  python3 - "$PORT" "$TG_SECRET" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(("POST /telegram/Hook_Bot HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           "X-Telegram-Bot-Api-Secret-Token: %s\r\nContent-Length: 3000000\r\n\r\n" % sys.argv[2]).encode())
reply = b""
while b"\r\n" not in reply:
    chunk = s.recv(4096)
    if not chunk:
        break
    reply += chunk
print(reply.split(b" ")[1].decode() if reply.startswith(b"HTTP/1.1 ") else "none")
PY
}
rt_assert_eq 413 "$(huge_status)" "body over 2 MiB (h2o's own limit)"
sleep 1.5   # a push or a replay would have arrived by now
rt_assert_eq 0 "$(wc -l < "$PULLED")" "inbox messages after refused requests"
rt_assert_eq 0 "$(journal_entries)" "inbox journal entries after refused requests"

# --- Telegram: accepted, exactly once, acked, deleted ---------------------------
rt_assert_eq "200 " "$(post /telegram/Hook_Bot -H "$TGH: $TG_SECRET" -H 'Content-Type: application/json' -d "$(update 1001)")" "right secret"
rt_assert_eq "200 " "$(post /telegram/HOOK_BOT -H "$TGH: $TG_SECRET" -d "$(update 1002)")" "username in upper case"
rt_wait_for "update 1001 at the puller" 10 grep -q '"update_id":1001' "$PULLED"
rt_wait_for "update 1002 at the puller" 10 grep -q '"update_id":1002' "$PULLED"
rt_wait_for "inbox journal empty after the acks" 10 journal_is 0
sleep 2.5   # replay_after = 1: a duplicate would have come by now
rt_assert_eq 1 "$(pulled '"update_id":1001')" "deliveries of update 1001"
rt_assert_eq 1 "$(pulled '"update_id":1002')" "deliveries of update 1002"
HOOK_ID=$(rt_psql "SELECT id FROM bots WHERE username = 'Hook_Bot'")
python3 - "$PULLED" "$HOOK_ID" <<'PY' || rt_fail "the pulled update is not what was posted"
import json, sys
msgs = [json.loads(l) for l in open(sys.argv[1]) if '"update_id":1001' in l]
m = msgs[0]
assert m["type"] == "tg_update" and m["src"] == "front.0" and m["seq"] >= 1, m
assert m["bot_id"] == int(sys.argv[2]), m
body = json.loads(m["body"])
assert body["update_id"] == 1001 and body["message"]["text"] == "/start c_1001", body
PY
rt_wait_for "metrics updated" 5 metric_is 'rastro_front_webhooks_total{kind="telegram",status="200"}' 2
rt_assert_eq 6 "$(metric 'rastro_front_webhooks_total{kind="telegram",status="401"}')" "telegram 401s counted"
rt_assert_eq 6 "$(metric 'rastro_front_webhooks_total{kind="telegram",status="400"}')" "telegram 400s counted"
rt_assert_eq 1 "$(metric 'rastro_front_webhooks_total{kind="telegram",status="413"}')" "telegram 413s counted (h2o's own are not)"
rt_assert_eq 2 "$(metric 'rastro_front_webhook_duration_seconds_count{kind="telegram"}')" "webhook latency observations"

# --- gateways ------------------------------------------------------------------------
rt_assert_eq "404 unknown gateway" "$(post /webhook/paypal -d '{}')" "unknown gateway"
rt_assert_eq "404 unknown gateway" "$(post /webhook/MercadoPago -d '{}')" "gateway names are lower case"
rt_assert_eq "405 method not allowed" "$(curl -s -o "$RT_DIR/body" -w '%{http_code}' "$BASE/webhook/mercadopago"; printf ' %s' "$(tr -d '\n' < "$RT_DIR/body")")" "GET /webhook/mercadopago"
mp_sig() { # mp_sig DATA_ID REQUEST_ID SECRET: prints an x-signature header value
  python3 - "$@" <<'PY'
import hashlib, hmac, sys, time
data_id, request_id, secret = sys.argv[1:4]
ts = str(int(time.time()))
manifest = "id:%s;request-id:%s;ts:%s;" % (data_id.lower(), request_id, ts)
print("ts=%s,v1=%s" % (ts, hmac.new(secret.encode(), manifest.encode(), hashlib.sha256).hexdigest()))
PY
}
MP_BODY='{"action":"payment.updated","api_version":"v1","data":{"id":"123456789"},"date_created":"2026-01-01T00:00:00Z","id":1,"live_mode":true,"type":"payment","user_id":"99"}'
SIG=$(mp_sig 123456789 req-0001 "$MP_SECRET")
rt_assert_eq "200 ok" "$(post '/webhook/mercadopago?data.id=123456789&type=payment' -H "x-signature: $SIG" -H 'x-request-id: req-0001' -H 'Content-Type: application/json' -d "$MP_BODY")" "Mercado Pago, valid signature"
FORGED=$(mp_sig 123456789 req-0002 "not-the-secret")
rt_assert_eq "401 invalid signature" "$(post '/webhook/mercadopago?data.id=123456789&type=payment' -H "x-signature: $FORGED" -H 'x-request-id: req-0002' -d "$MP_BODY")" "Mercado Pago, forged signature"
# The right signature for another payment id: replayed onto this one, it fails.
rt_assert_eq "401 invalid signature" "$(post '/webhook/mercadopago?data.id=987654321&type=payment' -H "x-signature: $SIG" -H 'x-request-id: req-0001' -d "${MP_BODY/123456789/987654321}")" "Mercado Pago, signature of another id"
rt_assert_eq "401 invalid signature" "$(post '/webhook/mercadopago?data.id=123456789&type=payment' -H 'x-request-id: req-0003' -d "$MP_BODY")" "Mercado Pago, no signature"
rt_assert_eq "200 ok" "$(post '/webhook/mercadopago?data.id=55&type=merchant_order' -d '{"type":"merchant_order","data":{"id":"55"}}')" "Mercado Pago, not about a payment"
rt_assert_eq 400 "$(post '/webhook/mercadopago?type=payment' -d 'not json' | cut -d' ' -f1)" "Mercado Pago, malformed"
rt_assert_eq "401 invalid signature" "$(post /webhook/pushinpay -H 'Content-Type: application/json' -H 'x-pushinpay-token: wrong-token' -d '{"id":"9d3b7a1e-0000-4000-8000-000000000001","status":"paid","value":1990}')" "PushinPay, wrong token"
rt_assert_eq "401 invalid signature" "$(post /webhook/pushinpay -H 'Content-Type: application/json' -d '{"id":"9d3b7a1e-0000-4000-8000-000000000001","status":"paid","value":1990}')" "PushinPay, no token"
rt_assert_eq "200 ok" "$(post /webhook/pushinpay -H 'Content-Type: application/json' -H "x-pushinpay-token: $PP_TOKEN" -d '{"id":"9d3b7a1e-0000-4000-8000-000000000001","status":"paid","value":1990}')" "PushinPay, right token"
rt_assert_eq "200 ok" "$(post /webhook/syncpay -H 'Content-Type: application/json' -d '{"data":{"id":"sp-charge-77","status":"completed","amount":19.9}}')" "SyncPay"
python3 -c 'import sys; sys.stdout.write("{\"pad\":\"" + "x" * 70000 + "\"}")' > "$RT_DIR/gw-big.json"
rt_assert_eq 413 "$(post /webhook/syncpay -H 'Expect:' --data-binary @"$RT_DIR/gw-big.json" | cut -d' ' -f1)" "gateway body over 64 KiB"
rt_wait_for "3 gateway notices at the puller" 10 pulled_at_least gw_webhook 3
sleep 2.5
rt_assert_eq 3 "$(pulled gw_webhook)" "gateway notices journaled (valid MP, PushinPay, SyncPay)"
python3 - "$PULLED" <<'PY' || rt_fail "the pulled gateway notices are not what was posted"
import json, sys
msgs = {m["gateway"]: m for m in (json.loads(l) for l in open(sys.argv[1])) if m["type"] == "gw_webhook"}
mp = msgs["mercadopago"]
assert mp["charge_id"] == "123456789" and mp["query"] == "data.id=123456789&type=payment", mp
assert json.loads(mp["body"])["data"]["id"] == "123456789", mp
assert msgs["pushinpay"]["charge_id"] == "9d3b7a1e-0000-4000-8000-000000000001", msgs
assert msgs["syncpay"]["charge_id"] == "sp-charge-77" and "query" not in msgs["syncpay"], msgs
PY
rt_wait_for "inbox journal empty" 10 journal_is 0
grep -q 'mercadopago webhook refused: invalid signature' "$SUP_LOG" || rt_fail "no warning for a forged Mercado Pago webhook"

# --- kill -9 of the front right after a 200: the entry is kept and delivered ----------
kill -TERM "$PULLER"; wait "$PULLER" 2>/dev/null || true
rt_assert_eq "200 " "$(post /telegram/Hook_Bot -H "$TGH: $TG_SECRET" -d "$(update 2001)")" "update before the crash"
FRONT=$(pgrep -P "$SUP" -x rastro-front | head -n 1 || true)
[ -n "$FRONT" ] || rt_fail "no front under the supervisor"
kill -9 "$FRONT"
rt_assert_eq 1 "$(journal_entries)" "inbox journal entries after kill -9 (fsynced before the 200)"
rt_assert_eq 0 "$(pulled '"update_id":2001')" "update 2001 delivered with no bots node running"
rt_wait_for "front restarted" 30 curl -sf "$BASE/healthz"
start_puller
rt_wait_for "update 2001 replayed after the restart" 20 grep -q '"update_id":2001' "$PULLED"
rt_wait_for "inbox journal empty after the replay" 10 journal_is 0
sleep 2.5
rt_assert_eq 1 "$(pulled '"update_id":2001')" "deliveries of update 2001"

# --- the fake Telegram delivering to the front (rastro bot webhook) -----------------------
rastro bot webhook fake_hook_bot --url "$BASE" >/dev/null 2>&1 || rt_fail "rastro bot webhook failed"
FAKE_ID=$(rt_psql "SELECT id FROM bots WHERE username = 'fake_hook_bot'")
sleep 1.5   # the front's snapshot reloads on NOTIFY
curl -sf -X POST "$RASTRO_TELEGRAM_API_URL/_fake/updates" -d '{"bot_id":700404,"update":{"update_id":3001,"message":{"message_id":1,"date":1767225600,"chat":{"id":222,"type":"private"},"text":"/start"}}}' >/dev/null
rt_wait_for "update 3001 delivered by the fake Telegram" 20 grep -q '"update_id":3001' "$PULLED"
grep '"update_id":3001' "$PULLED" | grep -q "\"bot_id\":$FAKE_ID" || rt_fail "update 3001 not attributed to fake_hook_bot"
curl -s "$RASTRO_TELEGRAM_API_URL/_fake/deliveries" | python3 -c '
import json, sys
d = [x for x in json.load(sys.stdin) if x["update_id"] == 3001]
assert d and d[-1]["status"] == 200, d' || rt_fail "the fake Telegram did not get a 200"

# --- secrets never in the logs --------------------------------------------------------------
for s in "$TG_SECRET" "$MP_SECRET" "$PP_TOKEN" "$SIG" sp-secret; do
  ! grep -qF -- "$s" "$SUP_LOG" || rt_fail "a secret is in the supervisor's log"
done
kill -TERM "$SUP"; wait "$SUP" || rt_fail "rastro up did not stop cleanly"

# --- a topology without `inbox`: webhooks answer 503, redirects still work ----------------
grep -v '^inbox' "$RT_DIR/topology.ini" > "$RT_DIR/no-inbox.ini"
rt_bg "$(rt_bin rastro-front)" --topology "$RT_DIR/no-inbox.ini" --instance 0
OLD_FRONT=$RT_LAST_PID
rt_wait_for "front without inbox" 30 curl -sf "$BASE/healthz"
rt_assert_eq "503 webhooks not configured" "$(post /telegram/Hook_Bot -H "$TGH: $TG_SECRET" -d "$(update 4001)")" "telegram without inbox"
rt_assert_eq "503 webhooks not configured" "$(post /webhook/syncpay -d '{"data":{"id":"x"}}')" "gateway without inbox"
kill -TERM "$OLD_FRONT"; wait "$OLD_FRONT" || rt_fail "the front without inbox did not stop cleanly"
echo "test_webhooks: ok"
