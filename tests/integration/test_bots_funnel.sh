#!/usr/bin/env bash
# test_bots_funnel — the whole funnel through `rastro up` with the bots node:
# a click → /start <click_id> (long polling) → welcome with the offer's button
# → two taps on it (one charge) → PushinPay's paid webhook, three times, via
# the front → exactly one Purchase at the fake Meta carrying the click's
# external_id and fbc → a one-person invite link sent → the join revokes it.
# Then what must change nothing: a forged webhook (401), an authentic one for
# a charge that is not paid (re-read: still pending), one for an unknown
# charge, a paid amount that differs; and what must still work: a lost
# webhook recovered by the reconciler, a /start during a Telegram 429.
. "$(dirname "$0")/lib.sh"
rt_setup bots_funnel
rt_fake_telegram
TG=$RASTRO_TELEGRAM_API_URL

META_PORT=$(rt_free_port)
rt_bg python3 "$RASTRO_SOURCE_DIR/tests/fakes/fake_meta.py" --port "$META_PORT"
export RASTRO_META_GRAPH_URL="http://127.0.0.1:$META_PORT" RASTRO_META_API_VERSION=v25.0
GW_PORT=$(rt_free_port)
rt_bg python3 "$RASTRO_SOURCE_DIR/tests/fakes/fake_gateways.py" --port "$GW_PORT"
GW="http://127.0.0.1:$GW_PORT"
export RASTRO_GATEWAY_PUSHINPAY_URL=$GW RASTRO_GATEWAY_MERCADOPAGO_URL=$GW RASTRO_GATEWAY_SYNCPAY_URL=$GW
rt_wait_for "fake meta" 10 curl -sf "$RASTRO_META_GRAPH_URL/_fake/health"
rt_wait_for "fake gateways" 10 curl -sf "$GW/_fake/health"
META_TOKEN="EAAB-funnel-token-xyz"
curl -sf -X POST "$RASTRO_META_GRAPH_URL/_fake/config" -d "{\"tokens\":{\"123456789\":\"$META_TOKEN\"}}" >/dev/null

BOT_TG_ID=700401
TG_TOKEN="$BOT_TG_ID:AAH-funnel-token-xyz"
GROUP=-1001234567890
curl -sf -X POST "$TG/_fake/bots" -d "{\"token\":\"$TG_TOKEN\",\"username\":\"funnel_bot\",\"id\":$BOT_TG_ID}" >/dev/null
curl -sf -X POST "$TG/_fake/chats" -d "{\"chat_id\":$GROUP,\"admins\":[$BOT_TG_ID]}" >/dev/null
printf '%s\n' "$TG_TOKEN" > "$RT_DIR/t"; printf '%s\n' "$META_TOKEN" > "$RT_DIR/m"
printf '{"token":"pp-api-token","webhook_token":"pp-webhook-token"}\n' > "$RT_DIR/pp.json"
chmod 600 "$RT_DIR/pp.json"
echo 'correct horse battery' | rastro user add funnel@example.com >/dev/null
rastro pixel add 123456789 --token-file "$RT_DIR/m" >/dev/null
rastro bot add --token-file "$RT_DIR/t" >/dev/null
rastro pool add funnel --pixel 123456789 --bot funnel_bot >/dev/null
rastro offer add --bot funnel_bot --name 'Curso Pro' --price 97,00 --deliver-chat "$GROUP" >/dev/null
rastro gateway set funnel_bot pushinpay --credentials-file "$RT_DIR/pp.json" >/dev/null
OFFER=$(rt_psql "SELECT id FROM offers")

PORT=$(rt_free_port)
export RASTRO_HTTP_PORT=$PORT RASTRO_PUBLIC_URL="http://127.0.0.1:$PORT"
BASE="http://127.0.0.1:$PORT"
sed -e 's/^ip_rate_per_min = .*/ip_rate_per_min = 1000000/' -e 's/^reconcile_s = .*/reconcile_s = 2/' \
    "$RASTRO_SOURCE_DIR/topology/local.ini" > "$RT_DIR/topology.ini"
rt_bg "$(rt_bin rastro)" up --topology "$RT_DIR/topology.ini"
SUP_LOG=$RT_LAST_LOG
rt_wait_for "front healthz" 30 curl -sf "$BASE/healthz"

# --- helpers --------------------------------------------------------------------
NEXT_UPDATE=1000
inject() {  # inject JSON-UPDATE-WITHOUT-ID  → prints the update_id used
  NEXT_UPDATE=$((NEXT_UPDATE + 1))
  curl -sf -X POST "$TG/_fake/updates" \
    -d "{\"token\":\"$TG_TOKEN\",\"update\":{\"update_id\":$NEXT_UPDATE,$1}}" >/dev/null \
    || rt_fail "could not inject an update"
}
start_update() {  # start_update USER_ID NAME [PAYLOAD]
  local text="/start${3:+ $3}"
  echo "\"message\":{\"message_id\":$RANDOM,\"date\":$(date +%s),\"from\":{\"id\":$1,\"is_bot\":false,\"first_name\":\"$2\",\"language_code\":\"pt-br\"},\"chat\":{\"id\":$1,\"type\":\"private\",\"first_name\":\"$2\"},\"text\":\"$text\",\"entities\":[{\"offset\":0,\"length\":6,\"type\":\"bot_command\"}]}"
}
tap_update() {  # tap_update USER_ID DATA
  echo "\"callback_query\":{\"id\":\"cb$RANDOM$RANDOM\",\"chat_instance\":\"-5\",\"from\":{\"id\":$1,\"is_bot\":false,\"first_name\":\"X\"},\"data\":\"$2\",\"message\":{\"message_id\":6,\"date\":$(date +%s),\"chat\":{\"id\":$1,\"type\":\"private\"},\"text\":\"Oferta\"}}"
}
# sent METHOD CHAT [CONTAINS]: number of calls of METHOD to CHAT at the fake Telegram
sent() {
  curl -s "$TG/_fake/sent" | python3 -c '
import json, sys
method, chat, needle = sys.argv[1], int(sys.argv[2]), sys.argv[3]
n = 0
for c in json.load(sys.stdin):
    if c.get("method") != method or int(c.get("chat_id") or 0) != chat:
        continue
    blob = json.dumps(c, ensure_ascii=False)
    if needle in blob:
        n += 1
print(n)' "$1" "$2" "${3:-}"
}
sent_at_least() { [ "$(sent "$@")" -ge "$N" ]; }
meta_events() { curl -s "$RASTRO_META_GRAPH_URL/_fake/events"; }
meta_count() {  # meta_count EVENT_NAME
  meta_events | python3 -c 'import json,sys; print(sum(1 for e in json.load(sys.stdin) if e["event"]["event_name"] == sys.argv[1]))' "$1"
}
pay() { curl -sf -X POST "$GW/_fake/pay" -d "$1" >/dev/null || rt_fail "fake pay $1"; }
status_of() { rt_psql "SELECT status FROM payments WHERE id = $1"; }
metric() { sed -n "s/^$1 //p" "$RASTRO_DATA_DIR/run/bots-0.prom" 2>/dev/null | head -1; }

# --- the click and /start (delivered twice) --------------------------------------
UA='Mozilla/5.0 (Linux; Android 14; SM-A546E) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36'
python3 "$RASTRO_SOURCE_DIR/tests/integration/clicker.py" \
  "$BASE/go/funnel?fbclid=IwAR-funnel-1&utm_source=facebook&utm_campaign=bf" \
  --count 1 --header "User-Agent: $UA" > "$RT_DIR/click.txt"
CLICK=$(sed -n 's/^302 .*start=//p' "$RT_DIR/click.txt")
[ -n "$CLICK" ] || rt_fail "no redirect: $(cat "$RT_DIR/click.txt")"
rt_wait_for "the PageView at Meta" 30 bash -c "[ \$(curl -s $RASTRO_META_GRAPH_URL/_fake/events | grep -c PageView) -ge 1 ]"

ANA=555001
inject "$(start_update $ANA Ana "$CLICK")"
START_ID=$NEXT_UPDATE
# Telegram redelivers: the same update_id again changes nothing.
curl -sf -X POST "$TG/_fake/updates" \
  -d "{\"token\":\"$TG_TOKEN\",\"update\":{\"update_id\":$START_ID,$(start_update $ANA Ana "$CLICK")}}" >/dev/null
N=1 rt_wait_for "the welcome with the offer's button" 30 sent_at_least sendMessage $ANA "buy:$OFFER"
IFS='|' read -r LEAD LCLICK LEXT LFBC LUTM < <(rt_psql "SELECT id, click_id, external_id, fbc, utm_source FROM leads WHERE tg_user_id = $ANA")
rt_assert_eq "$CLICK" "$LCLICK" "lead's click"
rt_assert_eq "$CLICK" "$LEXT" "lead's external_id"
rt_assert_eq "facebook" "$LUTM" "lead's utm_source"
rt_assert_eq "$(rt_psql "SELECT fbc FROM clicks WHERE click_id = '$CLICK'")" "$LFBC" "lead's fbc"
rt_wait_for "ViewContent at Meta" 30 bash -c "[ \$(curl -s $RASTRO_META_GRAPH_URL/_fake/events | grep -c ViewContent) -ge 1 ]"

# --- two taps, one charge -------------------------------------------------------------
inject "$(tap_update $ANA "buy:$OFFER")"
inject "$(tap_update $ANA "buy:$OFFER")"
N=2 rt_wait_for "two PIX codes (one per tap)" 30 sent_at_least sendMessage $ANA "000201"
rt_assert_eq 2 "$(curl -s "$TG/_fake/sent" | python3 -c 'import json,sys; print(sum(1 for c in json.load(sys.stdin) if c.get("method") == "answerCallbackQuery"))')" \
  "callback queries answered"
rt_assert_eq 1 "$(rt_psql "SELECT count(*) FROM payments WHERE lead_id = $LEAD")" "payments after a double tap"
rt_assert_eq 1 "$(curl -s "$GW/_fake/charges" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" \
  "charges at the gateway after a double tap"
IFS='|' read -r PAY CHARGE < <(rt_psql "SELECT id, charge_id FROM payments WHERE lead_id = $LEAD")
rt_assert_eq pending "$(status_of "$PAY")" "status before payment"
[ "$(sent sendPhoto $ANA)" -ge 2 ] || rt_fail "no QR photo sent"
rt_wait_for "InitiateCheckout at Meta" 30 bash -c "[ \$(curl -s $RASTRO_META_GRAPH_URL/_fake/events | grep -c InitiateCheckout) -ge 1 ]"

# --- paid: the webhook three times -----------------------------------------------------
pay "{\"gateway\":\"pushinpay\",\"id\":\"$CHARGE\",\"duplicate\":3}"
rt_wait_for "payment $PAY paid" 30 bash -c "[ \"\$(psql \"$RASTRO_DATABASE_URL\" -qAtX -c 'SELECT status FROM payments WHERE id = $PAY')\" = paid ]"
rt_wait_for "the Purchase at Meta" 30 bash -c "[ \$(curl -s $RASTRO_META_GRAPH_URL/_fake/events | grep -c '\"Purchase\"') -ge 1 ]"
meta_events > "$RT_DIR/meta.json"
python3 - "$RT_DIR/meta.json" "$CLICK" "$PAY" "$CHARGE" <<'PY' || rt_fail "the Purchase is not the click's"
import json, sys
events = json.load(open(sys.argv[1]))
click, pay, charge = sys.argv[2], sys.argv[3], sys.argv[4]
pv = [e["event"] for e in events if e["event"]["event_name"] == "PageView"]
pur = [e["event"] for e in events if e["event"]["event_name"] == "Purchase"]
assert len(pur) == 1, f"{len(pur)} Purchases"
p = pur[0]
assert p["event_id"] == f"pur-{pay}", p["event_id"]
assert p["action_source"] == "chat", p["action_source"]
assert abs(float(p["custom_data"]["value"]) - 97.0) < 1e-9, p["custom_data"]
assert p["custom_data"]["currency"] == "BRL"
assert p["custom_data"]["order_id"] == charge
ext = lambda e: e["user_data"]["external_id"] if isinstance(e["user_data"]["external_id"], str) else e["user_data"]["external_id"][0]
assert any(ext(v) == ext(p) for v in pv), "external_id differs from the PageView's"
assert any(v["user_data"].get("fbc") == p["user_data"].get("fbc") and p["user_data"].get("fbc") for v in pv), "fbc differs"
PY

# --- delivery: a one-person invite link, revoked after the join --------------------------
rt_wait_for "delivery" 30 bash -c "[ \"\$(psql \"$RASTRO_DATABASE_URL\" -qAtX -c 'SELECT delivery_status FROM payments WHERE id = $PAY')\" = sent ]"
LINK=$(rt_psql "SELECT invite_link FROM payments WHERE id = $PAY")
[ -n "$LINK" ] || rt_fail "no invite link stored"
[ "$(sent createChatInviteLink $GROUP '"member_limit": 1')" -ge 1 ] || rt_fail "invite link without member_limit 1"
[ "$(sent sendMessage $ANA "$LINK")" -eq 1 ] || rt_fail "the invite link was not sent to the buyer once"
curl -sf -X POST "$TG/_fake/join" -d "{\"chat_id\":$GROUP,\"user_id\":$ANA,\"invite_link\":\"$LINK\"}" >/dev/null
rt_wait_for "the join" 30 bash -c "[ -n \"\$(psql \"$RASTRO_DATABASE_URL\" -qAtX -c 'SELECT joined_at FROM payments WHERE id = $PAY')\" ]"
link_revoked() {
  curl -s "$TG/_fake/links" | python3 -c '
import json, sys
links = json.load(sys.stdin)
items = links.values() if isinstance(links, dict) else links
sys.exit(0 if any((l.get("invite_link") == sys.argv[1] or l.get("link") == sys.argv[1]) and l.get("is_revoked") for l in items) else 1)' "$LINK"
}
rt_wait_for "the link revoked after the join" 30 link_revoked

# --- a second lead (organic), webhooks that must change nothing ----------------------------
BIA=555002
inject "$(start_update $BIA Bia)"
N=1 rt_wait_for "Bia's welcome" 30 sent_at_least sendMessage $BIA "buy:$OFFER"
rt_assert_eq "tg:$BIA" "$(rt_psql "SELECT external_id FROM leads WHERE tg_user_id = $BIA")" "organic lead's external_id"
inject "$(tap_update $BIA "buy:$OFFER")"
N=1 rt_wait_for "Bia's PIX code" 30 sent_at_least sendMessage $BIA "000201"
IFS='|' read -r PAY2 CHARGE2 < <(rt_psql "SELECT p.id, p.charge_id FROM payments p JOIN leads l ON l.id = p.lead_id WHERE l.tg_user_id = $BIA")
code() { curl -s -o /dev/null -w '%{http_code}' -X POST "$BASE/webhook/pushinpay" -H 'Content-Type: application/json' "$@"; }
rt_assert_eq 401 "$(code -H 'x-pushinpay-token: not-the-token' -d "{\"id\":\"$CHARGE2\",\"status\":\"paid\",\"value\":9700}")" "forged webhook"
rt_assert_eq 200 "$(code -H 'x-pushinpay-token: pp-webhook-token' -d "{\"id\":\"$CHARGE2\",\"status\":\"paid\",\"value\":9700}")" "authentic webhook, charge not paid"
rt_assert_eq 200 "$(code -H 'x-pushinpay-token: pp-webhook-token' -d '{"id":"9f1c0c5e-0000-4000-8000-000000000000","status":"paid","value":9700}')" "webhook for an unknown charge"
rt_assert_eq 400 "$(code -H 'x-pushinpay-token: pp-webhook-token' -d '{"status":"paid"')" "malformed webhook"
rt_wait_for "the unknown charge logged" 30 grep -q "unknown charge 9f1c0c5e" "$SUP_LOG"
sleep 5   # two reconciler passes: the charge is still pending at the gateway
rt_assert_eq pending "$(status_of "$PAY2")" "a webhook is only a hint"

# --- the lost webhook: paid without one, found by the reconciler --------------------------
pay "{\"gateway\":\"pushinpay\",\"id\":\"$CHARGE2\",\"webhook\":false}"
rt_wait_for "the reconciler to find payment $PAY2" 30 bash -c "[ \"\$(psql \"$RASTRO_DATABASE_URL\" -qAtX -c 'SELECT status FROM payments WHERE id = $PAY2')\" = paid ]"

# --- paid with another amount: not accepted ---------------------------------------------------
CAIO=555003
inject "$(start_update $CAIO Caio)"
N=1 rt_wait_for "Caio's welcome" 30 sent_at_least sendMessage $CAIO "buy:$OFFER"
inject "$(tap_update $CAIO "buy:$OFFER")"
N=1 rt_wait_for "Caio's PIX code" 30 sent_at_least sendMessage $CAIO "000201"
IFS='|' read -r PAY3 CHARGE3 < <(rt_psql "SELECT p.id, p.charge_id FROM payments p JOIN leads l ON l.id = p.lead_id WHERE l.tg_user_id = $CAIO")
pay "{\"gateway\":\"pushinpay\",\"id\":\"$CHARGE3\",\"amount_cents\":100}"
rt_wait_for "the mismatch noted" 30 bash -c "psql \"$RASTRO_DATABASE_URL\" -qAtX -c 'SELECT last_error FROM payments WHERE id = $PAY3' | grep -q mismatch"
rt_assert_eq pending "$(status_of "$PAY3")" "a payment of the wrong amount"

# --- Telegram 429 on the welcome: waited out, then sent ----------------------------------------
curl -sf -X POST "$TG/_fake/faults" -d '{"method":"sendMessage","status":429,"retry_after":1,"count":1}' >/dev/null
DORA=555004
inject "$(start_update $DORA Dora)"
N=1 rt_wait_for "Dora's welcome after a 429" 30 sent_at_least sendMessage $DORA "buy:$OFFER"
rt_wait_for "the 429 counted" 10 bash -c "[ \"\$(sed -n 's/^rastro_bots_telegram_throttled_total //p' $RASTRO_DATA_DIR/run/bots-0.prom)\" != 0 ]"

# --- a bot in webhook mode selling through Mercado Pago: updates through the front, a text delivered -----------------------------
HOOK_ID=700402
HOOK_TOKEN="$HOOK_ID:AAH-hook-token-xyz"
curl -sf -X POST "$TG/_fake/bots" -d "{\"token\":\"$HOOK_TOKEN\",\"username\":\"hook_bot\",\"id\":$HOOK_ID}" >/dev/null
printf '%s\n' "$HOOK_TOKEN" > "$RT_DIR/t2"
rastro bot add --token-file "$RT_DIR/t2" >/dev/null
rastro pool add hook --pixel 123456789 --bot hook_bot >/dev/null
rastro offer add --bot hook_bot --name 'E-book' --price 19.90 --deliver-text 'Baixe aqui: https://example.com/ebook' >/dev/null
printf '{"access_token":"TEST-mp-access-token","webhook_secret":"mp-webhook-secret"}\n' > "$RT_DIR/mp.json"
chmod 600 "$RT_DIR/mp.json"
rastro gateway set hook_bot mercadopago --credentials-file "$RT_DIR/mp.json" >/dev/null
rastro bot webhook hook_bot --url "$BASE" >/dev/null 2>&1 || rt_fail "rastro bot webhook"
HOOK_OFFER=$(rt_psql "SELECT o.id FROM offers o JOIN bots b ON b.id = o.bot_id WHERE b.username = 'hook_bot'")
rt_wait_for "the hook pool in the front's snapshot" 10 bash -c "curl -s -o /dev/null -w '%{http_code}' $BASE/go/hook | grep -q 302"
python3 "$RASTRO_SOURCE_DIR/tests/integration/clicker.py" "$BASE/go/hook?fbclid=IwAR-hook-2" \
  --count 1 --header "User-Agent: $UA" > "$RT_DIR/click2.txt"
CLICK2=$(sed -n 's/^302 .*start=//p' "$RT_DIR/click2.txt")
[ -n "$CLICK2" ] || rt_fail "no redirect to the hook bot"
EVA=555005
curl -sf -X POST "$TG/_fake/updates" -d "{\"token\":\"$HOOK_TOKEN\",\"update\":{\"update_id\":5001,$(start_update $EVA Eva "$CLICK2")}}" >/dev/null
N=1 rt_wait_for "Eva's welcome (webhook mode)" 30 sent_at_least sendMessage $EVA "buy:$HOOK_OFFER"
rt_assert_eq webhook "$(rt_psql "SELECT via FROM tg_updates t JOIN bots b ON b.id = t.bot_id WHERE b.username = 'hook_bot' AND update_id = 5001")" \
  "how Eva's /start arrived"
rt_assert_eq "$CLICK2" "$(rt_psql "SELECT click_id FROM leads WHERE tg_user_id = $EVA")" "Eva's click"
curl -sf -X POST "$TG/_fake/updates" -d "{\"token\":\"$HOOK_TOKEN\",\"update\":{\"update_id\":5002,$(tap_update $EVA "buy:$HOOK_OFFER")}}" >/dev/null
N=1 rt_wait_for "Eva's PIX code" 30 sent_at_least sendMessage $EVA "000201"
IFS='|' read -r PAY5 CHARGE5 < <(rt_psql "SELECT p.id, p.charge_id FROM payments p JOIN leads l ON l.id = p.lead_id WHERE l.tg_user_id = $EVA")
# Mercado Pago: the webhook has no status, only the id, signed (x-signature).
rt_assert_eq 401 "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$BASE/webhook/mercadopago?data.id=$CHARGE5&type=payment" \
  -H "x-signature: ts=$(date +%s),v1=$(printf '0%.0s' $(seq 64))" -H 'x-request-id: forged-1' \
  -d "{\"action\":\"payment.updated\",\"data\":{\"id\":\"$CHARGE5\"},\"type\":\"payment\"}")" \
  "a forged Mercado Pago signature"
pay "{\"gateway\":\"mercadopago\",\"id\":\"$CHARGE5\"}"
N=1 rt_wait_for "Eva's e-book" 30 sent_at_least sendMessage $EVA "Baixe aqui"
rt_assert_eq sent "$(rt_psql "SELECT delivery_status FROM payments WHERE id = $PAY5")" "text delivery"

# --- in the end: one Purchase per paid payment, no duplicates ---------------------------------------
sleep 3
PAID=$(rt_psql "SELECT count(*) FROM payments WHERE status = 'paid'")
rt_assert_eq 3 "$PAID" "paid payments"
rt_assert_eq "$PAID" "$(meta_count Purchase)" "Purchases at Meta"
rt_assert_eq "$(meta_events | python3 -c 'import json,sys; e=json.load(sys.stdin); print(len(e))')" \
  "$(meta_events | python3 -c 'import json,sys; e=json.load(sys.stdin); print(len({x["event"]["event_id"] for x in e}))')" \
  "distinct event_ids at Meta"
rt_assert_eq 1 "$(rt_psql "SELECT count(*) FROM funnel_events WHERE type = 'payment' AND event_id = 'pur-$PAY'")" "stored Purchase"
if grep -q "AAH-funnel\|AAH-hook\|pp-webhook-token\|pp-api-token" "$SUP_LOG"; then
  rt_fail "a secret appears in a log"
fi
rt_log "ok: click → start → 1 charge for 2 taps → Purchase (x3 webhooks → 1) → invite link → join; forged/unknown/unpaid/mismatch changed nothing; reconciler, 429 and webhook mode fine"
