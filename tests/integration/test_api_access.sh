#!/usr/bin/env bash
# test_api_access — owner scoping on every route of the JSON API, with two users.
#
# Users A and B each own a pixel, a bot, a pool, an offer, a lead, a payment, a
# dead letter, an ad account, manual spend and analytics rows (made with SQL;
# A's all carry the marker "alpha"). api_access.py walks every route that
# `rastro-front --list-routes` prints: no session → 401; a write without or
# with a wrong CSRF token → 403; B given A's ids → 404, byte for byte the
# answer for a missing id; B's lists never show A's data; B's analytics
# filters naming A's bot or pool → 404. At the end none of A's rows changed.
. "$(dirname "$0")/lib.sh"
rt_setup api_access

PASSWORD='senha forte 123'
printf '%s\n' "$PASSWORD" | rastro user add alpha@example.com >/dev/null
printf '%s\n' "$PASSWORD" | rastro user add bravo@example.com >/dev/null
A=$(rt_psql "SELECT id FROM users WHERE email = 'alpha@example.com'")
B=$(rt_psql "SELECT id FROM users WHERE email = 'bravo@example.com'")

rt_psql "
INSERT INTO pixels (id, owner_id, pixel_id, token_enc) VALUES
  (101, $A, '101101101', '\x00'), (201, $B, '201201201', '\x00');
INSERT INTO bots (id, owner_id, telegram_id, username, token_enc) VALUES
  (101, $A, 9101, 'alpha_bot', '\x00'), (201, $B, 9201, 'bravo_bot', '\x00');
INSERT INTO pools (id, owner_id, slug, pixel_ref) VALUES
  (101, $A, 'alpha-pool', 101), (201, $B, 'bravo-pool', 201);
INSERT INTO pool_bots (pool_id, bot_id) VALUES (101, 101), (201, 201);
INSERT INTO offers (id, owner_id, bot_id, name, price_cents, deliver_text) VALUES
  (101, $A, 101, 'alpha offer', 9700, 'alpha access'), (201, $B, 201, 'bravo offer', 4700, 'oi');
INSERT INTO leads (id, owner_id, bot_id, tg_user_id, chat_id, first_name, pool_id,
                   utm_source, utm_campaign, external_id) VALUES
  (101, $A, 101, 5101, 5101, 'alpha lead', 101, 'alpha-src', 'alpha-camp', 'ea'),
  (201, $B, 201, 5201, 5201, 'bravo lead', 201, 'fb', 'bravo-camp', 'eb');
INSERT INTO payments (id, owner_id, bot_id, lead_id, offer_id, gateway, idempotency_key,
                      charge_id, status, amount_cents, paid_at) VALUES
  (101, $A, 101, 101, 101, 'pushinpay', 'alpha-k', 'alpha-charge', 'paid', 9700, now()),
  (201, $B, 201, 201, 201, 'pushinpay', 'bravo-k', 'bravo-charge', 'paid', 4700, now());
INSERT INTO dead_letters (id, owner_id, pixel_id, event_id, event_name, payload, reason) VALUES
  (101, $A, '101101101', 'alpha-ev', 'PageView', '{\"alpha\":1}', 'invalid-parameter'),
  (201, $B, '201201201', 'bravo-ev', 'PageView', '{\"b\":1}', 'invalid-parameter');
INSERT INTO ad_accounts (id, owner_id, account_id, token_enc) VALUES
  (101, $A, '101101', '\x00'), (201, $B, '201201', '\x00');
INSERT INTO manual_spend (owner_id, pool_id, day, amount_cents) VALUES
  ($A, 101, current_date, 1234), ($B, 201, current_date, 999);
INSERT INTO analytics_hourly (owner_id, day, hour, pool_id, bot_id, utm_source, utm_campaign,
                              clicks, starts, checkouts, purchases, revenue_cents) VALUES
  ($A, current_date, 0, 101, 101, 'alpha-src', 'alpha-camp', 10, 5, 2, 1, 9700),
  ($B, current_date, 0, 201, 201, 'fb', 'bravo-camp', 7, 3, 1, 1, 4700);" >/dev/null

# A's rows, as one fingerprint per table: must not change.
fingerprint() {
  local q="" t
  for t in pixels bots pools offers leads payments dead_letters ad_accounts manual_spend; do
    q+="(SELECT coalesce(md5(string_agg(x::text, ',' ORDER BY x::text)), '-') FROM $t x WHERE owner_id = $A) || ' ' || "
  done
  q+="(SELECT coalesce(md5(string_agg(x::text, ',' ORDER BY x::text)), '-') FROM pool_bots x WHERE pool_id = 101)"
  rt_psql "SELECT $q"
}
BEFORE=$(fingerprint)

PORT=$(rt_free_port)
export RASTRO_HTTP_PORT=$PORT
BASE="http://127.0.0.1:$PORT"
sed 's/^required_acks = .*/required_acks = stored/' "$RASTRO_SOURCE_DIR/topology/local.ini" > "$RT_DIR/topology.ini"
"$(rt_bin rastro-front)" --list-routes > "$RT_DIR/routes.txt"
rt_log "$(wc -l < "$RT_DIR/routes.txt") routes"
rt_bg "$(rt_bin rastro-front)" --topology "$RT_DIR/topology.ini" --instance 0
rt_wait_for "front healthz" 30 curl -sf "$BASE/healthz"

IDS='{"bots":{"a":101,"b":201},"pools":{"a":101,"b":201},"pixels":{"a":101,"b":201},
      "offers":{"a":101,"b":201},"leads":{"a":101,"b":201},"payments":{"a":101,"b":201},
      "dlq":{"a":101,"b":201},"adaccounts":{"a":101,"b":201}}'
python3 "$RASTRO_SOURCE_DIR/tests/integration/api_access.py" "$BASE" "$RT_DIR/routes.txt" "$IDS" \
  || rt_fail "owner scoping (see the FAIL lines above)"

rt_assert_eq "$BEFORE" "$(fingerprint)" "A's rows after B's attempts"
echo "test_api_access: ok"
