#!/usr/bin/env bash
# test_aggregator — the hourly aggregates are exact (issue 5 §1, §7): whatever
# the aggregator lived through, analytics_hourly equals a recount from the
# durable record (clicks, funnel_events), per key and in total.
#
# `rastro up` runs the demo (fake Telegram, Meta and PIX gateway, the demo
# seller, bots and pool of rt_demo_setup), with the seller's time zone set to
# Asia/Kolkata (UTC+05:30) so that local hours are not UTC's nor Sao Paulo's,
# and scripts/demo-traffic drives leads from click to payment. Meanwhile:
#   - the aggregator is killed with SIGKILL twice (whatever it held is lost;
#     what was published while it was down never reaches it);
#   - replays: synthetic clicks (people and empty user agents) and copies of
#     stored chat events are pushed into the recorder again, so the same
#     event ids come down the stream a second time;
#   - "missed PUB messages": clicks and chat events are written straight into
#     PostgreSQL, as if the recorder had stored them and the stream had lost
#     them: only the catch-up can count them.
# Then, once settled: every key and every total equals the recount (hours in
# the owner's zone, automated clicks by user agent — ip_rate_per_min is
# raised so the per-IP rule, which only the stream knows, stays quiet), the
# counted ids are exactly the stored events, nothing is counted twice, the
# missed events were counted by the catch-up. Finally more replays and a
# third SIGKILL change nothing.
. "$(dirname "$0")/lib.sh"
rt_setup aggregator
rt_fake_telegram
rt_demo_setup

OWNER=$(rt_psql "SELECT id FROM users WHERE email = 'demo@rastro.local'")
POOL=$(rt_psql "SELECT id FROM pools WHERE slug = 'demo'")
BOT=$(rt_psql "SELECT min(id) FROM bots")
PIXEL=100000000000001
rt_psql "UPDATE users SET timezone = 'Asia/Kolkata' WHERE id = $OWNER"

# ---- rastro up, with quick catch-ups ---------------------------------------------------
PORT=$(rt_free_port)
export RASTRO_HTTP_PORT=$PORT RASTRO_TRUSTED_PROXIES=127.0.0.1
BASE="http://127.0.0.1:$PORT"
TOPO=$RT_DIR/topology.ini
sed -e 's/^reconcile_s = .*/reconcile_s = 2/' \
    -e 's/^ip_rate_per_min = .*/ip_rate_per_min = 1000000/' \
    -e 's/^catchup_s = .*/catchup_s = 2/' \
    -e 's/^catchup_grace_s = .*/catchup_grace_s = 2/' \
    "$RASTRO_SOURCE_DIR/topology/local.ini" > "$TOPO"
for line in 'reconcile_s = 2' 'catchup_s = 2' 'catchup_grace_s = 2' 'sub       = enricher.pub'; do
  grep -qx "$line" "$TOPO" || rt_fail "topology/local.ini: no '$line' after the edit"
done
rt_bg "$(rt_bin rastro)" up --topology "$TOPO"
SUP=$RT_LAST_PID
UP_LOG=$RT_LAST_LOG
rt_wait_for "front healthz" 60 curl -sf "$BASE/healthz"

STATE="$RASTRO_DATA_DIR/run/supervisor.state"
PROM="$RASTRO_DATA_DIR/run/aggregator-0.prom"
agg_pid() { awk -F'\t' '$1=="node" && $2=="aggregator" && $3==0 && $5=="running" {print $4}' "$STATE" 2>/dev/null; }
metric() { awk -v m="$1" '$1==m {print $2; f=1} END {if (!f) print 0}' "$PROM" 2>/dev/null; }
# The aggregator runs and has heartbeat as process PID (pass "" for any).
agg_up() {
  local pid; pid=$(agg_pid)
  [ -n "$pid" ] && [ "$pid" != "${1:-}" ] && [ "$(metric rastro_node_pid)" = "$pid" ]
}
rt_wait_for "the aggregator" 30 agg_up ""
kill_aggregator() {
  local pid; pid=$(agg_pid)
  [ -n "$pid" ] || rt_fail "no aggregator under the supervisor"
  rt_log "kill -9 aggregator ($pid)"
  kill -9 "$pid"
  rt_wait_for "the aggregator restarted" 30 agg_up "$pid"
}

IN="ipc://$RASTRO_DATA_DIR/run/recorder-0-in.sock"
push_clicks() {  # RUN COUNT FIRST_SEQ [UA]: synthetic clicks into the recorder
  local ua=()
  [ $# -ge 4 ] && ua=(--ua "$4")
  "$(rt_bin bench/bench_push_events)" --push "$IN" --run "$1" --count "$2" --first-seq "$3" \
    --owner "$OWNER" --pool "$POOL" --pixel "$PIXEL" --spread-ip "${ua[@]}" >/dev/null \
    || rt_fail "bench_push_events $1"
}
# Pushes copies of up to N stored chat events again (same event ids).
SEQ=910000
repush_chat() {
  local n=$1 line
  while IFS='|' read -r eid type pool bot click tg lead value order ms; do
    SEQ=$((SEQ + 1))
    args=(--push "$IN" --type "$type" --event-id "$eid" --seq $SEQ --owner "$OWNER" --pool "$pool"
          --bot "$bot" --pixel "$PIXEL" --src bots.0 --time-ms "$ms" --copies 2)
    [ -n "$click" ] && args+=(--click-id "$click")
    [ -n "$tg" ] && args+=(--tg-user-id "$tg")
    [ -n "$lead" ] && args+=(--lead-id "$lead")
    [ -n "$value" ] && args+=(--value-cents "$value")
    [ -n "$order" ] && args+=(--order-id "$order")
    "$(rt_bin bench/bench_push_chat)" "${args[@]}" >/dev/null || rt_fail "bench_push_chat $eid"
  done < <(rt_psql "SELECT event_id, type, pool_id, bot_id, click_id, tg_user_id, lead_id, value_cents,
                    order_id, (extract (epoch FROM happened_at) * 1000)::bigint
                    FROM funnel_events WHERE source = 'bots.0' AND event_id NOT LIKE 'lost-%'
                    ORDER BY event_id LIMIT $n")
}

# ---- traffic, kills, replays, lost messages ---------------------------------------------
python3 "$RASTRO_SOURCE_DIR/scripts/demo-traffic" --base "$BASE" --telegram "$RASTRO_TELEGRAM_API_URL" \
  --meta "$RASTRO_META_GRAPH_URL" --gateway "$GW_URL" --rate 5 --duration 24 --seed 7 --drain 90 \
  --workers 256 --quiet --summary-json "$RT_DIR/summary.json" > "$RT_DIR/traffic.log" 2>&1 &
TRAFFIC=$!

sleep 5
push_clicks rpl 30 900001                      # people
push_clicks rpe 10 900101 ""                   # empty user agent: automated
sleep 2
kill_aggregator
push_clicks rpl 30 900001                      # the same 40 clicks again: replays
push_clicks rpe 10 900101 ""
repush_chat 6
# Stored, but never on the stream: only the catch-up can count them.
rt_psql "INSERT INTO clicks (click_id, event_id, owner_id, pool_id, bot_id, pixel_id, clicked_at, ip,
           user_agent, url, utm_source, utm_campaign, source)
         SELECT 'lost-' || i, 'lost-pv-' || i, $OWNER, $POOL, $BOT, '$PIXEL', now () - i * interval '1 minute',
                '198.51.100.' || i,
                CASE WHEN i <= 2 THEN 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)'
                     ELSE 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) Mobile/15E148' END,
                'https://x/go/demo', 'lost-src', 'lost-camp', 'front.0'
           FROM generate_series (1, 5) i" >/dev/null
rt_psql "INSERT INTO funnel_events (event_id, type, owner_id, pool_id, bot_id, pixel_id, click_id, tg_user_id,
           value_cents, order_id, happened_at, source) VALUES
         ('lost-vc-3', 'start', $OWNER, $POOL, $BOT, '$PIXEL', 'lost-3', 777003, NULL, NULL, now (), 'bots.0'),
         ('lost-pay-3', 'payment', $OWNER, $POOL, $BOT, '$PIXEL', 'lost-3', 777003, 12345, 'lost-order-3', now (), 'bots.0')" >/dev/null
sleep 5
kill_aggregator
repush_chat 20
wait "$TRAFFIC" || rt_fail "demo-traffic failed: $(tail -5 "$RT_DIR/traffic.log")"
rt_log "$(grep "summary:" "$RT_DIR/traffic.log" | tail -1)"

# ---- the recount from the durable record -------------------------------------------------
# Written here, not taken from the aggregator: the key is the event's owner,
# pool, bot, local day and hour (users.timezone), and UTMs (a chat event's
# are its lead's click's, '' when none); automated = the user agents
# demo-traffic and this test use for crawlers, or an empty one.
AUTOMATED_UA="(user_agent ~* '(facebookexternalhit|meta-externalagent|telegrambot|whatsapp|googlebot|ahrefsbot)'
               OR btrim (user_agent) = '')"
RECOUNT="
  WITH ev AS (
    SELECT c.owner_id, c.pool_id, c.bot_id, c.clicked_at AS at, c.utm_source, c.utm_campaign,
           CASE WHEN $AUTOMATED_UA THEN 'automated' ELSE 'click' END AS kind, 0::bigint AS value
      FROM clicks c
    UNION ALL
    SELECT f.owner_id, f.pool_id, f.bot_id, f.happened_at, k.utm_source, k.utm_campaign, f.type,
           COALESCE (f.value_cents, 0)
      FROM funnel_events f LEFT JOIN clicks k ON k.click_id = f.click_id
  ), loc AS (
    SELECT ev.*, ev.at AT TIME ZONE COALESCE (u.timezone, 'America/Sao_Paulo') AS t
      FROM ev LEFT JOIN users u ON u.id = ev.owner_id
  )
  SELECT owner_id, t::date AS day, extract (hour FROM t)::smallint AS hour, pool_id, bot_id,
         COALESCE (utm_source, '') AS utm_source, COALESCE (utm_campaign, '') AS utm_campaign,
         count (*) FILTER (WHERE kind = 'click') AS clicks,
         count (*) FILTER (WHERE kind = 'automated') AS automated_clicks,
         count (*) FILTER (WHERE kind = 'start') AS starts,
         count (*) FILTER (WHERE kind = 'checkout') AS checkouts,
         count (*) FILTER (WHERE kind = 'payment') AS purchases,
         COALESCE (sum (value) FILTER (WHERE kind = 'payment'), 0) AS revenue_cents
    FROM loc GROUP BY 1, 2, 3, 4, 5, 6, 7"
AGG="SELECT owner_id, day, hour, pool_id, bot_id, utm_source, utm_campaign, clicks, automated_clicks,
            starts, checkouts, purchases, revenue_cents FROM analytics_hourly"
DIFF="SELECT 'missing' AS side, * FROM (($RECOUNT) EXCEPT ALL ($AGG)) a
      UNION ALL SELECT 'extra', * FROM (($AGG) EXCEPT ALL ($RECOUNT)) b"
TOTALS="sum (clicks) || ' ' || sum (automated_clicks) || ' ' || sum (starts) || ' ' || sum (checkouts)
        || ' ' || sum (purchases) || ' ' || sum (revenue_cents)"
agrees() { [ "$(rt_psql "SELECT count (*) FROM ($DIFF) d")" = 0 ]; }

deadline=$((SECONDS + 60))
until agrees; do
  [ $SECONDS -lt $deadline ] || rt_fail "aggregates differ from the recount after 60 s: $(rt_psql "$DIFF LIMIT 5" | tr '\n' ' ')"
  sleep 0.5
done
sleep 5     # a late replay or a second count would show by now
agrees || rt_fail "aggregates drifted from the recount: $(rt_psql "$DIFF LIMIT 5" | tr '\n' ' ')"

# Per key (above) and in total.
RECOUNT_TOTALS=$(rt_psql "SELECT $TOTALS FROM ($RECOUNT) r")
rt_assert_eq "$RECOUNT_TOTALS" "$(rt_psql "SELECT $TOTALS FROM analytics_hourly")" "totals (clicks automated starts checkouts purchases revenue)"
rt_log "totals: $RECOUNT_TOTALS over $(rt_psql "SELECT count (*) FROM analytics_hourly") hourly rows"
read -r T_CLICKS T_AUTO T_STARTS T_CHECKOUTS T_PURCHASES T_REVENUE <<< "$RECOUNT_TOTALS"
[ "$T_CLICKS" -ge 50 ] && [ "$T_AUTO" -ge 12 ] && [ "$T_STARTS" -ge 10 ] && [ "$T_CHECKOUTS" -ge 2 ] \
  && [ "$T_PURCHASES" -ge 2 ] && [ "$T_REVENUE" -gt 12345 ] || rt_fail "too little traffic to mean anything: $RECOUNT_TOTALS"

# Every stored event counted exactly once: the counted ids are the stored
# events, and the hourly rows add up to as many events.
STORED=$(rt_psql "SELECT (SELECT count (*) FROM clicks) + (SELECT count (*) FROM funnel_events)")
rt_assert_eq "$STORED" "$(rt_psql "SELECT count (*) FROM analytics_counted")" "counted ids vs stored events"
rt_assert_eq 0 "$(rt_psql "SELECT count (*) FROM analytics_counted k WHERE NOT EXISTS (SELECT 1 FROM clicks c WHERE c.event_id = k.event_id)
                           AND NOT EXISTS (SELECT 1 FROM funnel_events f WHERE f.event_id = k.event_id)")" "counted ids not stored"
rt_assert_eq "$STORED" "$(rt_psql "SELECT sum (clicks + automated_clicks + starts + checkouts + purchases) FROM analytics_hourly")" \
  "events in the hourly rows vs stored events"
# The events the stream never carried were counted by the catch-up; the
# stream did the rest of the work (it is the fast path).
rt_assert_eq 7 "$(rt_psql "SELECT count (*) FROM analytics_counted WHERE event_id LIKE 'lost-%' AND via = 'catchup'")" \
  "lost events counted by the catch-up"
[ "$(rt_psql "SELECT count (*) FROM analytics_counted WHERE via = 'stream'")" -gt $((STORED / 2)) ] \
  || rt_fail "the stream counted too little: $(rt_psql "SELECT via, count (*) FROM analytics_counted GROUP BY via" | tr '\n' ' ')"
rt_assert_eq "lost-camp|3|2|1|1|12345" \
  "$(rt_psql "SELECT utm_campaign, sum (clicks), sum (automated_clicks), sum (starts), sum (purchases),
              sum (revenue_cents) FROM analytics_hourly WHERE utm_source = 'lost-src' GROUP BY 1")" \
  "the lost lead's row (chat events carry the click's UTMs)"
# Hours are Kolkata's (UTC+05:30): the recount says so; check one directly.
rt_assert_eq "$(rt_psql "SELECT (happened_at AT TIME ZONE 'Asia/Kolkata')::date || ' ' || extract (hour FROM happened_at AT TIME ZONE 'Asia/Kolkata')
                         FROM funnel_events WHERE event_id = 'lost-vc-3'")" \
  "$(rt_psql "SELECT day || ' ' || hour FROM analytics_hourly WHERE utm_source = 'lost-src' AND starts = 1")" \
  "the lost lead's local day and hour"

# ---- more replays and a third SIGKILL change nothing -------------------------------------
SNAP=$(rt_psql "SELECT md5 (string_agg (h::text, ',' ORDER BY owner_id, day, hour, pool_id, bot_id, utm_source, utm_campaign))
                FROM ($AGG) h")
DUPS=$(metric rastro_aggregator_duplicates_total)
push_clicks rpl 30 900001
repush_chat 10
dups_grew() { [ "$(metric rastro_aggregator_duplicates_total)" -ge $((DUPS + 30 + 10)) ]; }
rt_wait_for "the replays through the stream (duplicates skipped)" 30 dups_grew
kill_aggregator
passes() { [ "$(metric rastro_aggregator_catchup_passes_total)" -ge 2 ]; }
rt_wait_for "two catch-up passes after the restart" 30 passes
rt_assert_eq "$SNAP" "$(rt_psql "SELECT md5 (string_agg (h::text, ',' ORDER BY owner_id, day, hour, pool_id, bot_id, utm_source, utm_campaign))
                               FROM ($AGG) h")" "aggregates after replays and a restart"
agrees || rt_fail "aggregates differ from the recount at the end: $(rt_psql "$DIFF LIMIT 5" | tr '\n' ' ')"
rt_assert_eq 0 "$(metric rastro_aggregator_decode_failures_total)" "malformed stream messages"
grep -q 'aggregator.0 *| .*catch-up on start' "$UP_LOG" || rt_fail "no catch-up on start in the log"

kill -TERM "$SUP"; wait "$SUP" || rt_fail "rastro up did not stop cleanly (see $UP_LOG)"
echo "test_aggregator: ok"
