#!/usr/bin/env bash
# test_chat_events — chat-side funnel events end to end through `rastro up`:
# a real click through the front, then a start, a checkout and a payment for
# its click_id (and an organic payment without one) pushed straight into the
# recorder's `in` as the bots node will (bench_push_chat, src "front.0" with
# sequence numbers the front's journal never wrote: their acks are ignored).
# Checks the fake Meta got ViewContent / InitiateCheckout / Purchase with
# action_source chat, the click's external_id (byte-identical to its
# PageView's) and fbc, the Purchase's value, currency and order_id, and that
# funnel_events holds each event once although every one was pushed twice.
. "$(dirname "$0")/lib.sh"
rt_setup chat_events
rt_fake_telegram

META_PORT=$(rt_free_port)
rt_bg python3 "$RASTRO_SOURCE_DIR/tests/fakes/fake_meta.py" --port "$META_PORT"
export RASTRO_META_GRAPH_URL="http://127.0.0.1:$META_PORT" RASTRO_META_API_VERSION=v25.0
rt_wait_for "fake meta" 10 curl -sf "$RASTRO_META_GRAPH_URL/_fake/health"
META_TOKEN="EAAB-chat-token-xyz"
curl -sf -X POST "$RASTRO_META_GRAPH_URL/_fake/config" -d "{\"tokens\":{\"123456789\":\"$META_TOKEN\"}}" >/dev/null

TG_TOKEN="700301:AAH-chat-token-xyz"
curl -sf -X POST "$RASTRO_TELEGRAM_API_URL/_fake/bots" -d "{\"token\":\"$TG_TOKEN\",\"username\":\"chat_bot\",\"id\":700301}" >/dev/null
printf '%s\n' "$TG_TOKEN" > "$RT_DIR/t"; printf '%s\n' "$META_TOKEN" > "$RT_DIR/m"
echo 'correct horse battery' | rastro user add chat@example.com >/dev/null
rastro pixel add 123456789 --token-file "$RT_DIR/m" >/dev/null
rastro bot add --token-file "$RT_DIR/t" >/dev/null
rastro pool add chat --pixel 123456789 --bot chat_bot >/dev/null

PORT=$(rt_free_port)
export RASTRO_HTTP_PORT=$PORT
BASE="http://127.0.0.1:$PORT"
sed -e 's/^ip_rate_per_min = .*/ip_rate_per_min = 1000000/' \
    "$RASTRO_SOURCE_DIR/topology/local.ini" > "$RT_DIR/topology.ini"
rt_bg "$(rt_bin rastro)" up --topology "$RT_DIR/topology.ini"
SUP=$RT_LAST_PID
rt_wait_for "front healthz" 30 curl -sf "$BASE/healthz"

meta_count() { curl -s "$RASTRO_META_GRAPH_URL/_fake/events" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
UA='Mozilla/5.0 (Linux; Android 14; SM-A546E) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36'

# --- the click ----------------------------------------------------------------
python3 "$RASTRO_SOURCE_DIR/tests/integration/clicker.py" "$BASE/go/chat?fbclid=IwAR2F4-dbP0l7Mn1IawQQ" \
  --count 1 --header "User-Agent: $UA" > "$RT_DIR/click.txt"
CLICK=$(sed -n 's/^302 .*start=//p' "$RT_DIR/click.txt")
[ -n "$CLICK" ] || rt_fail "no redirect with a start parameter: $(cat "$RT_DIR/click.txt")"
rt_wait_for "the PageView at Meta" 30 bash -c "[ \"\$(curl -s $RASTRO_META_GRAPH_URL/_fake/events | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')\" -ge 1 ]"
IFS='|' read -r OWNER POOL BOT PIXEL FBC < <(rt_psql "SELECT owner_id, pool_id, bot_id, pixel_id, fbc FROM clicks WHERE click_id = '$CLICK'")
[ -n "$FBC" ] || rt_fail "click $CLICK stored without fbc"

# --- its chat events, each pushed twice, and an organic payment ---------------
IN="ipc://$RASTRO_DATA_DIR/run/recorder-0-in.sock"
push() { "$(rt_bin bench/bench_push_chat)" --push "$IN" --owner "$OWNER" --bot "$BOT" --pixel "$PIXEL" \
  --src front.0 --copies 2 "$@" >/dev/null; }
push --type start --event-id "vc-$CLICK" --seq 900001 --pool "$POOL" --click-id "$CLICK" \
  --tg-user-id 555001 --lead-id 1 --offer-id curso-basico --offer-name 'Curso Básico' || rt_fail "push start"
push --type checkout --event-id "ic-$CLICK" --seq 900002 --pool "$POOL" --click-id "$CLICK" \
  --tg-user-id 555001 --lead-id 1 --offer-id curso-basico --offer-name 'Curso Básico' --value-cents 9790 \
  || rt_fail "push checkout"
push --type payment --event-id "pay-$CLICK" --seq 900003 --pool "$POOL" --click-id "$CLICK" \
  --tg-user-id 555001 --lead-id 1 --offer-id curso-basico --offer-name 'Curso Básico' --value-cents 9790 \
  --currency brl --order-id 100234 || rt_fail "push payment"
push --type payment --event-id "pay-organic-1" --seq 900004 --pool 0 --tg-user-id 555002 \
  --value-cents 1990 --order-id 100235 || rt_fail "push organic payment"
# A payment without order_id is refused where it is built.
push --type payment --event-id "pay-bad" --seq 900005 --pool "$POOL" --click-id "$CLICK" \
  --value-cents 1 2>/dev/null && rt_fail "a payment without order_id was packed"

rt_wait_for "4 chat events at Meta" 30 bash -c "[ \"\$(curl -s $RASTRO_META_GRAPH_URL/_fake/events | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')\" -ge 5 ]"
sleep 2   # a duplicate would arrive by now
rt_assert_eq 5 "$(meta_count)" "events at Meta (1 PageView + 4 chat events)"

curl -s "$RASTRO_META_GRAPH_URL/_fake/events" > "$RT_DIR/meta.json"
python3 - "$RT_DIR/meta.json" "$CLICK" "$FBC" <<'PY' || rt_fail "chat events at Meta are not what was pushed"
import hashlib, json, sys
events = {e["event_id"]: e["event"] for e in json.load(open(sys.argv[1]))}
click, fbc = sys.argv[2], sys.argv[3]
def ext(ev):
    x = ev["user_data"]["external_id"]
    return x if isinstance(x, str) else x[0]
pv = events["pv-" + click]
assert pv["event_name"] == "PageView", pv
assert ext(pv) == hashlib.sha256(click.encode()).hexdigest(), pv
br = hashlib.sha256(b"br").hexdigest()
for eid, name in (("vc-", "ViewContent"), ("ic-", "InitiateCheckout"), ("pay-", "Purchase")):
    ev = events[eid + click]
    assert ev["event_name"] == name and ev["action_source"] == "chat", ev
    ud = ev["user_data"]
    assert ext(ev) == ext(pv), "external_id differs from the PageView's: %r" % ev
    assert ud["fbc"] == fbc == pv["user_data"]["fbc"], ev
    assert "client_user_agent" not in ud and "client_ip_address" not in ud, ev
    c = ud["country"]
    assert (c if isinstance(c, str) else c[0]) == br, ev
    cd = ev["custom_data"]
    assert cd["content_ids"] == ["curso-basico"] and cd["content_name"] == "Curso Básico", ev
buy = events["pay-" + click]["custom_data"]
assert buy["value"] == 97.9 and buy["currency"] == "BRL" and buy["order_id"] == "100234", buy
assert buy["contents"] == [{"id": "curso-basico", "quantity": 1, "item_price": 97.9}], buy
ic = events["ic-" + click]["custom_data"]
assert ic["value"] == 97.9 and ic["currency"] == "BRL" and "order_id" not in ic, ic
org = events["pay-organic-1"]
assert org["event_name"] == "Purchase" and "fbc" not in org["user_data"], org
assert ext(org) == hashlib.sha256(b"tg:555002").hexdigest(), org
assert org["custom_data"]["value"] == 19.9 and org["custom_data"]["currency"] == "BRL", org
PY

# --- stored once each in funnel_events; clicks untouched -------------------------
rt_assert_eq 4 "$(rt_psql "SELECT count(*) FROM funnel_events")" "rows in funnel_events"
rt_assert_eq 1 "$(rt_psql "SELECT count(*) FROM clicks")" "rows in clicks"
rt_assert_eq "start|$CLICK|1|555001|curso-basico|Curso Básico||BRL|" \
  "$(rt_psql "SELECT type, click_id, lead_id, tg_user_id, offer_id, offer_name, value_cents, currency, order_id FROM funnel_events WHERE event_id = 'vc-$CLICK'")" \
  "the start row"
rt_assert_eq "payment|$POOL|9790|BRL|100234|front.0" \
  "$(rt_psql "SELECT type, pool_id, value_cents, currency, order_id, source FROM funnel_events WHERE event_id = 'pay-$CLICK'")" \
  "the payment row"
rt_assert_eq "payment|0||555002|1990|100235" \
  "$(rt_psql "SELECT type, pool_id, click_id, tg_user_id, value_cents, order_id FROM funnel_events WHERE event_id = 'pay-organic-1'")" \
  "the organic payment row"
rt_assert_eq 4 "$(rt_psql "SELECT count(*) FROM funnel_events WHERE abs(extract(epoch FROM now() - happened_at)) < 120")" \
  "happened_at is the events' time_ms"

rt_assert_eq 0 "$(curl -s "$RASTRO_META_GRAPH_URL/_fake/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["duplicates"])')" "duplicates at Meta"
rt_wait_for "front journal drained" 60 bash -c "[ \"\$(curl -s $BASE/metrics | awk '\$1==\"rastro_journal_depth\"{print \$2}')\" = 0 ]"
kill -TERM "$SUP"; wait "$SUP" || rt_fail "rastro up did not stop cleanly"
! grep -rqF "$META_TOKEN" "$RT_DIR"/*.log || rt_fail "the Meta token appears in a log"
echo "test_chat_events: ok"
