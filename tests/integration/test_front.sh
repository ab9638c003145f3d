#!/usr/bin/env bash
# test_front — the redirect end to end: rastro CLI → PostgreSQL → front
# snapshot → GET /go/<slug> → journal → recorder → clicks table.
# Covers: 302 format and headers, HEAD, crawlers redirected too, weighted
# rotation proportions, every bad input of the issue (400/404/405/503) with
# nothing journaled, snapshot refresh after `rastro pool add` without a
# restart, click data (utm, fbclid → fbc, _fbp, X-Forwarded-For from trusted
# proxies only), healthz/metrics, and the tokens never in the front's log.
. "$(dirname "$0")/lib.sh"
rt_setup front
rt_fake_telegram

TOKEN1="700001:AAH-front-test-token-one-xyz"
TOKEN2="700002:AAH-front-test-token-two-xyz"
curl -sf -X POST "$RASTRO_TELEGRAM_API_URL/_fake/bots" -d "{\"token\":\"$TOKEN1\",\"username\":\"bot_one\",\"id\":700001}" >/dev/null
curl -sf -X POST "$RASTRO_TELEGRAM_API_URL/_fake/bots" -d "{\"token\":\"$TOKEN2\",\"username\":\"bot_two\",\"id\":700002}" >/dev/null
printf '%s\n' "$TOKEN1" > "$RT_DIR/t1"; printf '%s\n' "$TOKEN2" > "$RT_DIR/t2"
printf 'EAAB-meta-token-front-test\n' > "$RT_DIR/meta"

echo 'correct horse battery' | rastro user add seller@example.com >/dev/null
rastro pixel add 123456789 --token-file "$RT_DIR/meta" >/dev/null
rastro bot add --token-file "$RT_DIR/t1" >/dev/null
rastro bot add --token-file "$RT_DIR/t2" >/dev/null
rastro pool add curso --pixel 123456789 --bot bot_one:3 --bot bot_two:1 --strategy weighted >/dev/null

PORT=$(rt_free_port)
export RASTRO_HTTP_PORT=$PORT RASTRO_TRUSTED_PROXIES=127.0.0.1
BASE="http://127.0.0.1:$PORT"
# Only the front and the recorder run here: the journal waits for the
# "stored" ack alone (test_pipeline covers the Meta path).
sed 's/^required_acks = .*/required_acks = stored/' "$RASTRO_SOURCE_DIR/topology/local.ini" > "$RT_DIR/topology.ini"
rt_bg "$(rt_bin rastro-recorder)" --topology "$RT_DIR/topology.ini" --instance 0
rt_bg "$(rt_bin rastro-front)" --topology "$RT_DIR/topology.ini" --instance 0
FRONT_PID=$RT_LAST_PID FRONT_LOG=$RT_LAST_LOG
rt_wait_for "front healthz" 20 curl -sf "$BASE/healthz"

metric() { curl -s "$BASE/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }

# --- a redirect, its headers, HEAD, crawlers ---------------------------------
hdrs=$(curl -s -D - -o /dev/null "$BASE/go/curso")
echo "$hdrs" | grep -q '^HTTP/1.1 302' || rt_fail "no 302: $hdrs"
loc=$(echo "$hdrs" | tr -d '\r' | awk 'tolower($1)=="location:" {print $2}')
[[ $loc =~ ^https://t\.me/bot_(one|two)\?start=[A-Za-z0-9_-]{22}$ ]] || rt_fail "bad Location '$loc'"
echo "$hdrs" | tr -d '\r' | grep -qi '^cache-control: no-store$' || rt_fail "no Cache-Control: no-store"
code=$(curl -s -I -o /dev/null -w '%{http_code}' "$BASE/go/curso")
rt_assert_eq 302 "$code" "HEAD /go/curso"
for ua in 'facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)' \
          'TelegramBot (like TwitterBot)' 'Mozilla/5.0 HeadlessChrome/120.0' ''; do
  loc=$(curl -s -o /dev/null -w '%{redirect_url}' -A "$ua" "$BASE/go/curso")
  [[ $loc =~ ^https://t\.me/bot_(one|two)\?start= ]] || rt_fail "crawler '$ua' not redirected: '$loc'"
done

# --- weighted rotation: 3:1 over 800 clicks ----------------------------------
python3 "$RASTRO_SOURCE_DIR/tests/integration/clicker.py" "$BASE/go/curso" --count 800 --concurrency 4 > "$RT_DIR/rot.txt"
one=$(grep -c 'https://t.me/bot_one?' "$RT_DIR/rot.txt" || true)
two=$(grep -c 'https://t.me/bot_two?' "$RT_DIR/rot.txt" || true)
rt_assert_eq 800 $((one + two)) "302s in rotation run"
# Each HTTP thread rotates exactly (every window of 4 picks is 3:1); with two
# threads the split can be off by at most one partial window per thread.
[ $((one - 600)) -le 6 ] && [ $((600 - one)) -le 6 ] || rt_fail "weighted 3:1 over 800 gave $one:$two"
ids=$(sed -n 's/.*start=//p' "$RT_DIR/rot.txt" | sort | uniq -d | wc -l)
rt_assert_eq 0 "$ids" "duplicate click ids"

# --- bad input: the right status and nothing journaled ----------------------
sleep 1.2   # metrics are published once a second
before=$(metric rastro_clicks_total)
expect() {  # expect CODE DESCRIPTION CURL-ARGS...
  local want=$1 what=$2; shift 2
  local got; got=$(curl -s -o "$RT_DIR/body" -w '%{http_code}' "$@")
  rt_assert_eq "$want" "$got" "$what"
}
expect 400 "space in slug"      "$BASE/go/bad%20slug"
expect 400 "dot in slug"        "$BASE/go/a.b"
expect 400 "slug of 65 chars"   "$BASE/go/$(printf 'a%.0s' $(seq 65))"
expect 400 "nested path"        "$BASE/go/curso/x"
expect 400 "URL over 4 KiB"     "$BASE/go/curso?utm_source=$(printf 'x%.0s' $(seq 5000))"
expect 400 "header over 4 KiB"  -H "X-Junk: $(printf 'y%.0s' $(seq 5000))" "$BASE/go/curso"
expect 404 "unknown slug"       "$BASE/go/nao-existe"
grep -q '<html' "$RT_DIR/body" || rt_fail "404 is not an HTML page"
expect 405 "POST"               -X POST "$BASE/go/curso"
rastro pool disable curso >/dev/null
rt_wait_for "disabled pool to answer 404" 5 bash -c "[ \$(curl -s -o /dev/null -w '%{http_code}' $BASE/go/curso) = 404 ]"
rastro pool enable curso >/dev/null
rt_wait_for "enabled pool to answer 302" 5 bash -c "[ \$(curl -s -o /dev/null -w '%{http_code}' $BASE/go/curso) = 302 ]"
rastro bot mark bot_one unhealthy >/dev/null
rt_wait_for "unhealthy bot_one skipped" 5 bash -c "curl -s -o /dev/null -w '%{redirect_url}' $BASE/go/curso | grep -q bot_two"
for i in 1 2 3 4 5 6; do
  loc=$(curl -s -o /dev/null -w '%{redirect_url}' "$BASE/go/curso")
  [[ $loc == https://t.me/bot_two\?* ]] || rt_fail "unhealthy bot_one still chosen: $loc"
done
rastro bot mark bot_two unhealthy >/dev/null
rt_wait_for "pool without healthy bots to answer 503" 5 bash -c "[ \$(curl -s -o /dev/null -w '%{http_code}' $BASE/go/curso) = 503 ]"
curl -s -D - -o /dev/null "$BASE/go/curso" | grep -qi '^retry-after:' || rt_fail "503 without Retry-After"
rastro bot mark bot_one healthy >/dev/null; rastro bot mark bot_two healthy >/dev/null
sleep 1.2
after=$(metric rastro_clicks_total)
# Only the redirects from the enable/unhealthy checks above were accepted.
accepted=$(( after - before ))
[ "$accepted" -ge 7 ] && [ "$accepted" -le 40 ] || rt_fail "clicks accepted during bad-input checks: $accepted"
[ "$(metric 'rastro_http_requests_total{status="400"}')" -ge 6 ] || rt_fail "400s not counted"

# --- a new pool is live without a restart ------------------------------------
rastro pool add promo --pixel 123456789 --bot bot_two >/dev/null
rt_wait_for "new pool live" 3 bash -c "[ \$(curl -s -o /dev/null -w '%{http_code}' $BASE/go/promo) = 302 ]"

# --- the click's data in PostgreSQL -------------------------------------------
UA_ODD='Mozilla/5.0 (Linux; Android 14) ação "q" \x {a,b} NULL'
loc=$(curl -s -o /dev/null -w '%{redirect_url}' -A "$UA_ODD" \
      -H 'X-Forwarded-For: 1.2.3.4, 203.0.113.9' -H 'Referer: https://l.facebook.com/' \
      -b '_fbp=fb.1.1596403881668.1116446470' \
      "$BASE/go/promo?utm_source=facebook&utm_campaign=Black%20Friday&utm_content=ad+1&fbclid=IwAR2F4-dbP0l7Mn1IawQQ&other=1")
cid=${loc#*start=}
rt_wait_for "click $cid in PostgreSQL" 10 bash -c "[ \"\$(psql \"$RASTRO_DATABASE_URL\" -qAtX -c \"select count(*) from clicks where click_id='$cid'\")\" = 1 ]"
row=$(rt_psql "select ip, utm_source, utm_campaign, utm_content, fbclid, fbp, user_agent, referer, event_id, source from clicks where click_id='$cid'")
rt_assert_eq "203.0.113.9|facebook|Black Friday|ad 1|IwAR2F4-dbP0l7Mn1IawQQ|fb.1.1596403881668.1116446470|$UA_ODD|https://l.facebook.com/|pv-$cid|front.0" "$row" "stored click"
fbc=$(rt_psql "select fbc from clicks where click_id='$cid'")
[[ $fbc =~ ^fb\.1\.[0-9]{13}\.IwAR2F4-dbP0l7Mn1IawQQ$ ]] || rt_fail "bad fbc '$fbc'"
ms=$(echo "$fbc" | cut -d. -f3); at=$(rt_psql "select (extract(epoch from clicked_at)*1000)::bigint from clicks where click_id='$cid'")
rt_assert_eq "$at" "$ms" "fbc creation time = click time"
url=$(rt_psql "select url from clicks where click_id='$cid'")
[[ $url == "http://127.0.0.1:$PORT/go/promo?utm_source=facebook&"* ]] || rt_fail "bad url '$url'"

# --- every 302 so far reached PostgreSQL, once; the journal drains -----------
sleep 1.2
total=$(metric rastro_clicks_total)
rt_wait_for "all $total clicks stored" 15 bash -c "[ \"\$(psql \"$RASTRO_DATABASE_URL\" -qAtX -c 'select count(*) from clicks')\" = $total ]"
rt_wait_for "journal drained" 10 bash -c "[ \"\$(curl -s $BASE/metrics | awk '\$1==\"rastro_journal_depth\"{print \$2}')\" = 0 ]"

# --- secrets never in logs -----------------------------------------------------
kill -TERM "$FRONT_PID"; wait "$FRONT_PID" || rt_fail "front did not exit cleanly"
for t in "$TOKEN1" "$TOKEN2" "EAAB-meta-token-front-test"; do
  ! grep -rqF "$t" "$RT_DIR"/*.log || rt_fail "a token appears in a log"
done
grep -q 'stopped' "$FRONT_LOG" || rt_fail "front did not log its stop"
echo "test_front: ok"
