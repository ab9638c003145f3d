#!/usr/bin/env bash
# test_payments_admin — rastro payment list|redeliver, rastro lead list and
# rastro bot import, against a real PostgreSQL and the fake Telegram Bot API.
#
# Covers: payment list with rows made by SQL (users, bots, offers, leads,
# payments): columns (R$ 19,90, R$ 1.000,00, lead = tg id + first name,
# delivery_error cut to 60 characters and kept on one line), newest first,
# --bot/--owner/--status/--delivery/--since (24h, 7d, a date)/--limit/--json;
# payment redeliver of a failed delivery and its refusals; lead list
# (organic or click, UTMs, --bot/--owner/--limit/--json); every bad argument
# (exit 2, one line on stderr, nothing changed); bot import of 300 tokens
# registered at the fake: a malformed line or a token Telegram refuses in
# the middle stores nothing and names the line, then all 300 in one go
# (a repeated line skipped), a re-import skips all without calling
# Telegram; tokens never in any output or in pg_dump.
. "$(dirname "$0")/lib.sh"
rt_setup payments_admin
rt_fake_telegram

# ---- helpers ---------------------------------------------------------------------

# run, ok, bad, contains, lacks: tests/integration/lib.sh
# json_get EXPR: evaluates the Python expression EXPR on the JSON in $OUT (as "d").
json_get() { printf '%s' "$OUT" | python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
# row ID: the line of the table in $OUT whose first column is ID.
row() { echo "$OUT" | grep "^$1 "; }
# ids: the first column of the table in $OUT, without its header.
ids() { echo "$OUT" | tail -n +2 | cut -d' ' -f1 | tr '\n' ' ' | sed 's/ $//'; }
# snapshot: everything the commands under test may change.
snapshot() {
  rt_psql "SELECT (SELECT coalesce(md5(string_agg(p::text, ',' ORDER BY id)), '-') FROM payments p),
    (SELECT coalesce(md5(string_agg(l::text, ',' ORDER BY id)), '-') FROM leads l),
    (SELECT count(*) FROM bots), (SELECT count(*) FROM users)"
}
getme_calls() {
  curl -sf "$RASTRO_TELEGRAM_API_URL/_fake/calls" |
    python3 -c 'import json,sys; print(sum(1 for c in json.load(sys.stdin) if c["method"]=="getMe"))'
}

# ---- rows, made with SQL ---------------------------------------------------------

rt_log "setup"
ok user list        # applies the migrations
LONG_ERROR="Bad Request: chat not found
(the bot is not an admin of -1001234567890 any more) and this goes on and on and on"
rt_psql "
INSERT INTO users (id, email, password_hash) VALUES
  (1, 'ana@example.com', 'x'), (2, 'bob@example.com', 'x');
INSERT INTO bots (id, owner_id, telegram_id, username, token_enc) VALUES
  (1, 1, 7165433001, 'loja_a_bot', '\x00'), (2, 2, 7165433002, 'loja_b_bot', '\x00');
INSERT INTO offers (id, owner_id, bot_id, name, price_cents, deliver_chat_id, deliver_text) VALUES
  (1, 1, 1, 'Grupo VIP', 1990, -1001234567890, NULL),
  (2, 1, 1, 'Curso completo', 100000, NULL, 'acesso'),
  (3, 2, 2, 'Do Bob', 500, NULL, 'oi');
INSERT INTO leads (id, owner_id, bot_id, tg_user_id, chat_id, first_name, last_name, username,
                   click_id, utm_source, utm_campaign, external_id, starts, created_at) VALUES
  (1, 1, 1, 111, 111, 'Ana', 'Souza', 'ana_s', 'clk-0001', 'fb', 'promo', 'e1', 3, now() - interval '20 days'),
  (2, 1, 1, 222, 222, E'Jo\nao', NULL, NULL, NULL, NULL, NULL, 'e2', 1, now() - interval '5 days'),
  (3, 2, 2, 333, 333, 'Bia', NULL, 'bia', NULL, 'ig', NULL, 'e3', 1, now() - interval '1 day');
INSERT INTO payments (id, owner_id, bot_id, lead_id, offer_id, gateway, idempotency_key, charge_id,
                      status, amount_cents, created_at, paid_at, delivery_status,
                      delivery_attempts, delivery_error, delivered_at) VALUES
  (1, 1, 1, 1, 1, 'mercadopago', 'k1', 'mp-1', 'paid', 1990, now() - interval '1 hour',
   now() - interval '50 minutes', 'sent', 1, NULL, now() - interval '49 minutes'),
  (2, 1, 1, 2, 2, 'pushinpay', 'k2', 'pp-2', 'paid', 100000, now() - interval '3 days',
   now() - interval '3 days', 'failed', 12, \$\$$LONG_ERROR\$\$, NULL),
  (3, 1, 1, 1, 2, 'mercadopago', 'k3', 'mp-3', 'pending', 100000, now() - interval '10 days',
   NULL, 'none', 0, NULL, NULL),
  (4, 2, 2, 3, 3, 'syncpay', 'k4', 'sp-4', 'expired', 500, now() - interval '40 days',
   NULL, 'none', 0, NULL, NULL),
  (5, 1, 1, 2, 1, 'mercadopago', 'k5', 'mp-5', 'paid', 1990, now() - interval '2 hours',
   now() - interval '2 hours', 'pending', 3, 'timeout', NULL),
  (6, 1, 1, 2, 2, 'pushinpay', 'k6', NULL, 'creating', 100000, now() - interval '1 minute',
   NULL, 'none', 0, NULL, NULL);
SELECT setval('users_id_seq', 2), setval('bots_id_seq', 2), setval('offers_id_seq', 3),
  setval('leads_id_seq', 3), setval('payments_id_seq', 6);" >/dev/null

# ---- payment list ------------------------------------------------------------------

rt_log "payment list"
ok payment list
rt_assert_eq 7 "$(echo "$OUT" | wc -l)" "payment list: header + 6 payments, each on one line"
rt_assert_eq "6 5 4 3 2 1" "$(ids)" "payment list: newest first"
header=$(echo "$OUT" | head -1)
for col in ID "CREATED (UTC)" BOT LEAD OFFER AMOUNT GATEWAY CHARGE_ID STATUS "PAID (UTC)" \
           DELIVERY ATTEMPTS DELIVERY_ERROR; do
  contains "$header" "$col" "payment list header"
done
line=$(row 1)
contains "$line" "@loja_a_bot" "payment list: bot"
contains "$line" "111 Ana" "payment list: lead = tg user id + first name"
contains "$line" "Grupo VIP" "payment list: offer"
contains "$line" 'R$ 19,90' "payment list: amount"
contains "$line" "mercadopago" "payment list: gateway"
contains "$line" "mp-1" "payment list: charge id"
contains "$line" " paid " "payment list: status"
contains "$line" " sent " "payment list: delivery"
line=$(row 2)
contains "$line" 'R$ 1.000,00' "payment list: thousands"
contains "$line" "222 Jo ao" "payment list: a line break in a name is a space"
contains "$line" " failed " "payment list: failed delivery"
contains "$line" " 12 " "payment list: attempts"
cut=$(python3 -c 'import sys; e=" ".join(sys.argv[1].split("\n")); print(e[:57] + "...")' "$LONG_ERROR")
contains "$line" "$cut" "payment list: delivery_error cut to 60 characters"
[ "${line: -60}" = "$cut" ] || rt_fail "delivery_error is not the last 60 characters: '${line: -60}'"
lacks "$line" "on and on and on" "payment list: the rest of delivery_error"
contains "$(row 6)" "creating" "payment list: a charge being created"
# Columns are aligned: every row has STATUS at the header's offset.
col=$(echo "$OUT" | head -1 | grep -bo 'STATUS' | cut -d: -f1)
for id in 1 2 5; do [ "$(row $id | cut -c$((col + 1))-$((col + 4)))" = "paid" ] || rt_fail "not aligned: $(row $id)"; done

ok payment list --status paid;            rt_assert_eq "5 2 1" "$(ids)" "--status paid"
ok payment list --status=pending;         rt_assert_eq "3" "$(ids)" "--status pending"
ok payment list --delivery failed;        rt_assert_eq "2" "$(ids)" "--delivery failed"
ok payment list --delivery pending;       rt_assert_eq "5" "$(ids)" "--delivery pending"
ok payment list --bot @LOJA_B_BOT;        rt_assert_eq "4" "$(ids)" "--bot"
ok payment list --owner BOB@example.com;  rt_assert_eq "4" "$(ids)" "--owner"
ok payment list --owner ana@example.com --bot loja_a_bot --status paid --delivery sent
rt_assert_eq "1" "$(ids)" "filters combine"
ok payment list --since 24h;              rt_assert_eq "6 5 1" "$(ids)" "--since 24h"
ok payment list --since 7d;               rt_assert_eq "6 5 2 1" "$(ids)" "--since 7d"
ok payment list --since 1h;               rt_assert_eq "6" "$(ids)" "--since 1h"
ok payment list --since "$(date -u -d '15 days ago' +%F)"
rt_assert_eq "6 5 3 2 1" "$(ids)" "--since a date"
ok payment list --since 2099-01-01
rt_assert_eq "no payments match" "$OUT" "--since in the future"
ok payment list --limit 2;                rt_assert_eq "6 5" "$(ids)" "--limit"
ok payment list --status refunded
rt_assert_eq "no payments match" "$OUT" "no match"
ok payment list --json
rt_assert_eq 6 "$(json_get 'len(d)')" "--json: 6 payments"
rt_assert_eq "6 5 4 3 2 1" "$(json_get "' '.join(str(p['id']) for p in d)")" "--json: newest first"
p2="[p for p in d if p['id'] == 2][0]"
rt_assert_eq "loja_a_bot ana@example.com 222 100000 R\$ 1.000,00 pushinpay pp-2 paid failed 12" \
  "$(json_get "' '.join(str($p2[k]) for k in ['bot', 'owner', 'tg_user_id', 'amount_cents', 'amount', 'gateway', 'charge_id', 'status', 'delivery_status', 'delivery_attempts'])")" \
  "--json: fields"
rt_assert_eq "True True" "$(json_get "$p2['delivery_error'] == '''$LONG_ERROR''', $p2['first_name'] == 'Jo\\nao'")" \
  "--json: delivery_error and names in full"
rt_assert_eq "None" "$(json_get "[p for p in d if p['id'] == 6][0]['charge_id']")" "--json: null"
ok payment list --json --bot loja_b_bot --since 7d
rt_assert_eq "[]" "$OUT" "--json: nothing matches"
bad 1 "belongs to bob@example.com, not to ana@example.com" payment list --bot loja_b_bot --owner ana@example.com
bad 1 "no bot @nobody_bot" payment list --bot nobody_bot
bad 1 "no user carol@example.com" payment list --owner carol@example.com

rt_log "payment list: bad arguments"
before=$(snapshot)
bad 2 "--status 'bogus': use pending, paid, expired, failed, refunded or creating" payment list --status bogus
bad 2 "--delivery 'none': use pending, sent or failed" payment list --delivery none
bad 2 "--since '0h'" payment list --since 0h
bad 2 "--since '87601h'" payment list --since 87601h
bad 2 "--since '3651d'" payment list --since 3651d
bad 2 "--since '24x'" payment list --since 24x
bad 2 "--since 'h'" payment list --since h
bad 2 "--since '2026-02-30'" payment list --since 2026-02-30
bad 2 "--since '2026-13-01'" payment list --since 2026-13-01
bad 2 "--since '26-01-01'" payment list --since 26-01-01
bad 2 "--since '2026-1-1'" payment list --since 2026-1-1
bad 2 "--limit '0' must be a number from 1 to 100000" payment list --limit 0
bad 2 "--limit '100001'" payment list --limit 100001
bad 2 "--limit 'abc'" payment list --limit abc
bad 2 "--limit '-1'" payment list --limit -1
bad 2 "--bot 'a b' is not a bot username" payment list --bot 'a b'
bad 2 "--owner 'nobody' is not an email address" payment list --owner nobody
bad 2 "given twice" payment list --status paid --status pending
bad 2 "given twice" payment list --json --json
bad 2 "needs a value" payment list --since
bad 2 "unknown option --colour" payment list --colour red
bad 2 "unknown option --json=yes" payment list --json=yes
bad 2 "no positional argument" payment list 5
bad 2 "unknown subcommand 'payment show'" payment show 5
rt_assert_eq "$before" "$(snapshot)" "bad payment list changes nothing"

# ---- payment redeliver -----------------------------------------------------------

rt_log "payment redeliver"
before=$(snapshot)
bad 2 "usage: rastro payment redeliver <id>" payment redeliver
bad 2 "usage: rastro payment redeliver <id>" payment redeliver 2 5
bad 2 "'abc' is not a payment id" payment redeliver abc
bad 2 "'0' is not a payment id" payment redeliver 0
bad 2 "'-2' is not a payment id" payment redeliver -- -2
bad 2 "is not a payment id" payment redeliver 1234567890123456789
bad 2 "unknown option --all" payment redeliver --all
bad 1 "no payment 999" payment redeliver 999
bad 1 "payment 1 was delivered already" payment redeliver 1
bad 1 "payment 3 is pending, not paid" payment redeliver 3
bad 1 "payment 4 is expired, not paid" payment redeliver 4
bad 1 "payment 5's delivery is still pending (3 attempts so far)" payment redeliver 5
rt_assert_eq "$before" "$(snapshot)" "refused redeliveries change nothing"
ok payment redeliver 2
contains "$OUT" "payment 2 of @loja_a_bot: delivery queued again" "payment redeliver output"
rt_assert_eq "paid|pending|0" \
  "$(rt_psql "SELECT status, delivery_status, delivery_attempts FROM payments WHERE id = 2")" \
  "redeliver: delivery pending again with 0 attempts"
rt_assert_eq "$(echo "$before" | cut -d'|' -f2-)" "$(snapshot | cut -d'|' -f2-)" "redeliver changes only payments"
rt_assert_eq 1 "$(rt_psql "SELECT count(*) FROM payments WHERE delivery_status = 'pending' AND id <> 5")" \
  "redeliver changes one payment"
bad 1 "payment 2's delivery is still pending (0 attempts so far)" payment redeliver 2

# ---- lead list -------------------------------------------------------------------

rt_log "lead list"
ok lead list
rt_assert_eq 4 "$(echo "$OUT" | wc -l)" "lead list: header + 3 leads, each on one line"
rt_assert_eq "3 2 1" "$(ids)" "lead list: newest first"
header=$(echo "$OUT" | head -1)
for col in ID BOT TG_USER_ID NAME USERNAME CLICK UTM "CREATED (UTC)" STARTS; do
  contains "$header" "$col" "lead list header"
done
line=$(row 1)
contains "$line" "@loja_a_bot" "lead list: bot"
contains "$line" " 111 " "lead list: tg user id"
contains "$line" "Ana Souza" "lead list: name"
contains "$line" "@ana_s" "lead list: username"
contains "$line" "clk-0001" "lead list: click"
contains "$line" "fb/promo" "lead list: utm source/campaign"
rt_assert_eq 3 "$(echo "$line" | awk '{print $NF}')" "lead list: starts"
line=$(row 2)
contains "$line" "Jo ao" "lead list: a line break in a name is a space"
contains "$line" "organic" "lead list: a lead without a click is organic"
contains "$(row 3)" "ig/-" "lead list: utm source without campaign"
ok lead list --bot loja_b_bot;           rt_assert_eq "3" "$(ids)" "lead list --bot"
ok lead list --owner ana@example.com;    rt_assert_eq "2 1" "$(ids)" "lead list --owner"
ok lead list --limit 1;                  rt_assert_eq "3" "$(ids)" "lead list --limit"
ok lead list --json
rt_assert_eq "3 2 1" "$(json_get "' '.join(str(l['id']) for l in d)")" "lead list --json"
rt_assert_eq "False clk-0001 fb promo ana_s 3 loja_a_bot ana@example.com" \
  "$(json_get "' '.join(str(d[2][k]) for k in ['organic', 'click_id', 'utm_source', 'utm_campaign', 'username', 'starts', 'bot', 'owner'])")" \
  "lead list --json: fields"
rt_assert_eq "True None" "$(json_get "str(d[1]['organic']) + ' ' + str(d[1]['click_id'])")" "lead list --json: organic"
bad 1 "belongs to bob@example.com" lead list --bot loja_b_bot --owner ana@example.com
before=$(snapshot)
bad 2 "unknown option --status" lead list --status paid
bad 2 "unknown option --since" lead list --since 24h
bad 2 "--limit '0'" lead list --limit 0
bad 2 "--bot 'x' is not a bot username" lead list --bot x
bad 2 "--owner 'x' is not an email address" lead list --owner x
bad 2 "no positional argument" lead list all
rt_assert_eq "$before" "$(snapshot)" "bad lead list changes nothing"
rt_psql "DELETE FROM payments; DELETE FROM leads"
ok lead list
contains "$OUT" "no leads yet" "lead list on no leads"
ok payment list
contains "$OUT" "no payments yet" "payment list on no payments"

# ---- bot import --------------------------------------------------------------------

rt_log "bot import: 300 tokens at the fake"
F=$RT_DIR/files
mkdir -p "$F"
# 300 bots registered at the fake, their tokens in $F/tokens (one per line).
python3 - "$RASTRO_TELEGRAM_API_URL" "$F/tokens" <<'EOF'
import json, random, string, sys, urllib.request
url, path = sys.argv[1], sys.argv[2]
rng = random.Random(7)
with open(path, "w") as out:
    for i in range(1, 301):
        bot_id = 7300000000 + i
        token = "%d:AAH%s" % (bot_id, "".join(rng.choice(string.ascii_letters + string.digits + "_-") for _ in range(32)))
        body = json.dumps({"token": token, "username": "imp_bot_%03d" % i, "id": bot_id}).encode()
        req = urllib.request.Request(url + "/_fake/bots", data=body, headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req).read()
        out.write(token + "\n")
EOF
rt_assert_eq 300 "$(wc -l <"$F/tokens")" "300 tokens"
# The file as people write them: comments, blank lines, spaces, CRLF.
{
  echo "# bots for the scale test"
  echo
  sed -n '1,100p' "$F/tokens" | sed 's/$/\r/'
  echo "   "
  sed -n '101,150p' "$F/tokens" | sed 's/^/  /'
  echo "# half-way"
  sed -n '151,300p' "$F/tokens"
} >"$F/good"
GOOD_LINES=$(wc -l <"$F/good")
# A malformed token on line 155, and a token Telegram does not know on line 160.
sed '155i not-a-token' "$F/good" >"$F/malformed"
sed '160i 7399999999:AAHunknownUNKNOWNunknownUNKNOWN_zz' "$F/good" >"$F/unknown"
{ cat "$F/good"; sed -n '7p' "$F/tokens"; } >"$F/repeated"     # bot 7 again, last line
printf '# nothing\n\n   \n' >"$F/comments_only"
printf '%s\n' "$(sed -n 1p "$F/tokens")" | tr -d '\n' >"$F/one"; printf '\0\n' >>"$F/one"

before=$(snapshot)
calls=$(getme_calls)
bad 2 "--tokens-file" bot import
bad 2 "no positional argument" bot import "$F/good"
bad 2 "--owner 'x' is not an email address" bot import --tokens-file "$F/good" --owner x
bad 2 "cannot read" bot import --tokens-file "$F/missing"
bad 2 "holds no token" bot import --tokens-file "$F/comments_only"
bad 2 "is binary" bot import --tokens-file "$F/one"
bad 2 "--tokens-file $F/malformed line 155:" bot import --tokens-file "$F/malformed" --owner ana@example.com
bad 2 "several users" bot import --tokens-file "$F/good"
rt_assert_eq "$before" "$(snapshot)" "bad bot import stores nothing"
rt_assert_eq "$calls" "$(getme_calls)" "bad bot import never calls Telegram"

run bot import --tokens-file "$F/unknown" --owner ana@example.com
rt_assert_eq 1 "$RC" "a token Telegram refuses: exit 1 ($ERR)"
[ -z "$OUT" ] || rt_fail "failed import printed on stdout: $OUT"
last=$(echo "$ERR" | tail -1)
contains "$last" "--tokens-file $F/unknown line 160: Telegram rejected this bot token (401" "refused token: names the line"
contains "$last" "nothing was imported" "refused token: says nothing was imported"
rt_assert_eq "$before" "$(snapshot)" "a refused token in the middle stores nothing"

calls=$(getme_calls)
ok bot import --tokens-file "$F/repeated" --owner ANA@example.com
rt_assert_eq "300 bots imported for ana@example.com (1 skipped: 0 already registered, 1 repeated in the file)" \
  "$OUT" "bot import summary"
contains "$ERR" "rastro: note: line $((GOOD_LINES + 1)): bot 7300000007 is already on line 9: skipped" \
  "a bot repeated in the file is skipped with a note"
for n in 50 100 150 200 250 300; do contains "$ERR" "rastro: $n of 300 tokens checked with Telegram" "progress"; done
rt_assert_eq 7 "$(echo "$ERR" | wc -l)" "6 progress lines and 1 note"
rt_assert_eq $((calls + 300)) "$(getme_calls)" "one getMe per token"
rt_assert_eq "300|300|1|7300000001|7300000300" \
  "$(rt_psql "SELECT count(*), count(DISTINCT username), count(DISTINCT owner_id), min(telegram_id), max(telegram_id)
     FROM bots WHERE username LIKE 'imp_bot_%' AND owner_id = 1")" "300 bots of ana"
rt_assert_eq "imp_bot_042" "$(rt_psql "SELECT username FROM bots WHERE telegram_id = 7300000042")" \
  "usernames come from getMe"
TOKEN_1=$(sed -n 1p "$F/tokens")
rt_assert_eq $((24 + 16 + ${#TOKEN_1})) "$(rt_psql "SELECT length(token_enc) FROM bots WHERE telegram_id = 7300000001")" \
  "sealed token = nonce + MAC + token"
ok bot list --owner ana@example.com
contains "$OUT" "@imp_bot_300" "bot list shows imported bots"

rt_log "bot import: again"
before=$(snapshot)
calls=$(getme_calls)
ok bot import --tokens-file "$F/repeated" --owner ana@example.com
rt_assert_eq "0 bots imported for ana@example.com (301 skipped: 300 already registered, 1 repeated in the file)" \
  "$OUT" "re-import skips all"
contains "$ERR" "rastro: note: line 3: bot @imp_bot_001 is already registered (owner ana@example.com): skipped" \
  "re-import: note"
contains "$ERR" "rastro: note: 281 more lines skipped" "re-import: the notes are capped"
rt_assert_eq 21 "$(echo "$ERR" | wc -l)" "20 notes and a count"
rt_assert_eq "$calls" "$(getme_calls)" "re-import never calls Telegram"
rt_assert_eq "$before" "$(snapshot)" "re-import stores nothing"

# ---- help ------------------------------------------------------------------------

rt_log "help"
ok --help
contains "$OUT" "payment" "rastro --help lists payment"
contains "$OUT" "lead" "rastro --help lists lead"
ok payment --help;              contains "$OUT" "rastro payment redeliver <id>" "payment --help"
ok payment list --help;         contains "$OUT" "--delivery D" "payment list --help"
ok payment redeliver --help;    contains "$OUT" "usage: rastro payment redeliver" "payment redeliver --help"
ok lead --help;                 contains "$OUT" "rastro lead list" "lead --help"
ok lead list --help;            contains "$OUT" "organic" "lead list --help"
ok bot import --help;           contains "$OUT" "--tokens-file F" "bot import --help"
ok bot --help;                  contains "$OUT" "rastro bot import" "bot --help lists import"
run payment
[ $RC -eq 2 ] || rt_fail "'rastro payment' without a subcommand: exit $RC, expected 2"
run lead
[ $RC -eq 2 ] || rt_fail "'rastro lead' without a subcommand: exit $RC, expected 2"

# ---- secrets never leak -------------------------------------------------------------

rt_log "secrets"
pg_dump "$RASTRO_DATABASE_URL" >"$RT_DIR/dump.sql" || rt_fail "pg_dump failed"
grep -q imp_bot_150 "$RT_DIR/dump.sql" || rt_fail "pg_dump does not hold the bots at all"
for i in 1 77 150 300; do
  token=$(sed -n "${i}p" "$F/tokens")
  for secret in "$token" "${token#*:}"; do
    if grep -qF -- "$secret" "$RT_DIR/dump.sql"; then rt_fail "a token is in pg_dump"; fi
    if grep -qF -- "$secret" "$RT_DIR"/cmd-*.out "$RT_DIR"/cmd-*.err; then
      rt_fail "a token is in the output of a command: $(grep -lF -- "$secret" "$RT_DIR"/cmd-* | head -3)"
    fi
  done
done

rt_log "ok ($N commands)"
