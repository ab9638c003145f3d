#!/usr/bin/env bash
# test_admin — the admin CLI (rastro user|pixel|bot|pool) against a real
# PostgreSQL and the fake Telegram Bot API.
#
# Covers: migrations on a fresh database (also several `rastro` at once),
# the "no user yet" message, user add with the password on stdin (argon2id
# hash, never the password), pixel/bot/pool add and list, bot add through
# getMe, a wrong bot token, every bad argument (non-zero exit, one line on
# stderr, no row created), owners (--owner required with several users, a
# pool's pixel and bots must be the owner's), mark/enable/disable, --help,
# and token secrecy: no token byte in pg_dump, in any output, or in `list`.
. "$(dirname "$0")/lib.sh"
rt_setup admin
rt_fake_telegram

# ---- helpers ---------------------------------------------------------------

N=0
# run [--stdin TEXT] ARGS...: runs rastro, keeps stdout/stderr in
# $RT_DIR/cmd-N.{out,err} (scanned for tokens at the end); sets RC OUT ERR.
run() {
  local input=""
  if [ "$1" = "--stdin" ]; then input=$2; shift 2; fi
  N=$((N + 1))
  set +e
  printf '%s' "$input" | rastro "$@" >"$RT_DIR/cmd-$N.out" 2>"$RT_DIR/cmd-$N.err"
  RC=$?
  set -e
  OUT=$(cat "$RT_DIR/cmd-$N.out")
  ERR=$(cat "$RT_DIR/cmd-$N.err")
  LAST="rastro $*"
}

# ok ARGS...: the command must succeed.
ok() {
  run "$@"
  [ $RC -eq 0 ] || rt_fail "'$LAST' failed ($RC): $ERR"
}

# bad EXPECTED_RC TEXT ARGS...: the command must exit EXPECTED_RC (or any
# non-zero status for "nz") with one line on stderr, containing TEXT.
bad() {
  local want=$1 text=$2; shift 2
  run "$@"
  [ $RC -ne 0 ] || rt_fail "'$LAST' succeeded but should have failed"
  [ "$want" = nz ] || [ $RC -eq "$want" ] || rt_fail "'$LAST': exit $RC, expected $want ($ERR)"
  [ "$(wc -l <"$RT_DIR/cmd-$N.err")" -eq 1 ] || rt_fail "'$LAST': stderr is not one line: $ERR"
  case $ERR in rastro:*) ;; *) rt_fail "'$LAST': stderr does not start with 'rastro:': $ERR" ;; esac
  case $ERR in *"$text"*) ;; *) rt_fail "'$LAST': '$ERR' does not mention '$text'" ;; esac
  [ -z "$OUT" ] || rt_fail "'$LAST': printed on stdout while failing: $OUT"
}

contains() {  # contains HAYSTACK NEEDLE MESSAGE
  case $1 in *"$2"*) ;; *) rt_fail "$3: '$2' not in: $1" ;; esac
}

rows() { rt_psql "SELECT count(*) FROM $1"; }
# snapshot: row counts of every admin table, to prove a failure created nothing.
snapshot() { rt_psql "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM pixels),
  (SELECT count(*) FROM bots), (SELECT count(*) FROM pools), (SELECT count(*) FROM pool_bots)"; }

fake_bot() {  # fake_bot TOKEN USERNAME: the fake accepts TOKEN as @USERNAME
  curl -sf -X POST -H 'Content-Type: application/json' \
    -d "{\"token\":\"$1\",\"username\":\"$2\"}" "$RASTRO_TELEGRAM_API_URL/_fake/bots" >/dev/null
}
getme_calls() {
  curl -sf "$RASTRO_TELEGRAM_API_URL/_fake/calls" |
    python3 -c 'import json,sys; print(sum(1 for c in json.load(sys.stdin) if c["method"]=="getMe"))'
}

# Secrets used below. Real-looking, and each appears nowhere but in its file.
META_TOKEN="EAAGm0PX4ZCpsBAGzZBxTESTmetaTOKENxyz0123456789abcdefZZ"
TG_A="7165432101:AAH7yS3cr3tPartOfTokenAAAAAAAAAA_aa"
TG_B="7165432102:AAHbS3cr3tPartOfTokenBBBBBBBBBB-bb"
TG_WRONG="7165432103:AAHwrongS3cr3tWRONGWRONGWRONG_cc"
TD=$RT_DIR/tokens
mkdir -p "$TD"
printf '%s\n' "$META_TOKEN" >"$TD/meta"
printf '  %s\r\n\n' "$TG_A" >"$TD/tg_a"          # surrounding whitespace is trimmed
printf '%s' "$TG_B" >"$TD/tg_b"
printf '%s\n' "$TG_WRONG" >"$TD/tg_wrong"
printf '\n \n' >"$TD/empty"
printf 'no-colon-here\n' >"$TD/tg_malformed"
printf '%s\n%s\n' "$TG_A" "$TG_B" >"$TD/two_lines"
fake_bot "$TG_A" loja_a_bot
fake_bot "$TG_B" loja_b_bot

# ---- migrations: several first starts at once, then idempotent --------------

rt_log "migrations"
MIG_DB="${RT_DB}_mig"
psql "$RASTRO_TEST_SERVER dbname=postgres" -qAtX -v ON_ERROR_STOP=1 -c "CREATE DATABASE $MIG_DB" >/dev/null
pids=()
for i in 1 2 3 4; do
  RASTRO_DATABASE_URL="$RASTRO_TEST_SERVER dbname=$MIG_DB" rastro user list \
    >"$RT_DIR/mig-$i.out" 2>"$RT_DIR/mig-$i.err" &
  pids+=($!)
done
for i in 0 1 2 3; do
  wait "${pids[$i]}" || rt_fail "concurrent first start $i failed: $(cat "$RT_DIR/mig-$((i + 1)).err")"
done
applied=$(cat "$RT_DIR"/mig-*.err | grep -c 'applied migration 001_init' || true)
rt_assert_eq 1 "$applied" "001_init applied by exactly one of four concurrent starters"
NMIG=$(ls "$RASTRO_SOURCE_DIR"/schemas/sql/[0-9][0-9][0-9]_*.sql | wc -l)
rt_assert_eq "$NMIG" "$(psql "$RASTRO_TEST_SERVER dbname=$MIG_DB" -qAtX -c 'SELECT count(*) FROM schema_migrations')" \
  "schema_migrations rows"
psql "$RASTRO_TEST_SERVER dbname=postgres" -qAtX -c "DROP DATABASE $MIG_DB WITH (FORCE)" >/dev/null

ok user list
contains "$OUT" "no users yet" "user list on an empty database"
contains "$ERR" "applied migration 001_init" "first command migrates"
rt_assert_eq "1|init" "$(rt_psql 'SELECT version, name FROM schema_migrations ORDER BY version LIMIT 1')" "schema_migrations"
ok user list
[ -z "$ERR" ] || rt_fail "second start printed something: $ERR"
rt_assert_eq "$NMIG" "$(rows schema_migrations)" "migrations are applied once"

# ---- no user yet -------------------------------------------------------------

rt_log "no user"
bad 1 "rastro user add" pixel add 123456789 --token-file "$TD/meta"
bad 1 "rastro user add" bot add --token-file "$TD/tg_a"
bad 1 "rastro user add" pool add promo --pixel 123456789 --bot loja_a_bot
rt_assert_eq "0|0|0|0|0" "$(snapshot)" "nothing created without a user"
rt_assert_eq 0 "$(getme_calls)" "no getMe without a user"

# ---- users -------------------------------------------------------------------

rt_log "users"
PASSWORD='correct horse battery staple'
bad 2 "not an email" --stdin "$PASSWORD"$'\n' user add not-an-email
bad 2 "not an email" --stdin "$PASSWORD"$'\n' user add 'a b@example.com'
bad 2 "at least 8" --stdin $'short\n' user add ana@example.com
bad 2 "no password" --stdin '' user add ana@example.com
bad 2 "no password" --stdin $'\nsecond line is not the password\n' user add ana@example.com
bad 2 "one email" --stdin "$PASSWORD"$'\n' user add ana@example.com bob@example.com
rt_assert_eq 0 "$(rows users)" "no user after bad user add"
ok --stdin "$PASSWORD"$'\n' user add Ana@Example.com
rt_assert_eq "user ana@example.com added" "$OUT" "user add output"
hash=$(rt_psql "SELECT password_hash FROM users WHERE email = 'ana@example.com'")
case $hash in '$argon2id$'*) ;; *) rt_fail "password hash is not argon2id: $hash" ;; esac
contains "$(rt_psql "SELECT count(*) FROM users WHERE password_hash LIKE '%correct horse%'")" 0 "password stored"
bad 1 "already exists" --stdin "$PASSWORD"$'\n' user add ana@example.com
rt_assert_eq 1 "$(rows users)" "duplicate user"

# ---- pixels ------------------------------------------------------------------

rt_log "pixels"
bad 2 "--token-file" pixel add 123456789
bad 2 "not a pixel id" pixel add 12ab --token-file "$TD/meta"
bad 2 "not a pixel id" pixel add 123456789012345678901234567890123 --token-file "$TD/meta"
bad 2 "empty" pixel add 123456789 --token-file "$TD/empty"
bad 2 "cannot read token file" pixel add 123456789 --token-file "$TD/missing"
bad 2 "more than the token" pixel add 123456789 --token-file "$TD/two_lines"
bad 2 "test event code" pixel add 123456789 --token-file "$TD/meta" --test-event-code 'bad code'
bad 2 "unknown option" pixel add 123456789 --token-file "$TD/meta" --tokenfile x
bad 2 "given twice" pixel add 123456789 --token-file "$TD/meta" --token-file "$TD/meta"
bad 2 "needs a value" pixel add 123456789 --token-file
bad 1 "no user nobody@example.com" pixel add 123456789 --token-file "$TD/meta" --owner nobody@example.com
rt_assert_eq 0 "$(rows pixels)" "no pixel after bad pixel add"
ok pixel add 123456789 --token-file "$TD/meta" --test-event-code TEST12345
contains "$OUT" "pixel 123456789 added for ana@example.com" "pixel add output"
bad 1 "already exists" pixel add 123456789 --token-file "$TD/meta"
rt_assert_eq 1 "$(rows pixels)" "one pixel"
[ -f "$RASTRO_DATA_DIR/master.key" ] || rt_fail "master key not created at first use"
rt_assert_eq 600 "$(stat -c %a "$RASTRO_DATA_DIR/master.key")" "master key mode"
rt_assert_eq $((24 + 16 + ${#META_TOKEN})) "$(rt_psql 'SELECT length(token_enc) FROM pixels')" \
  "sealed Meta token = nonce + MAC + token"
ok pixel list
contains "$OUT" "123456789" "pixel list"
contains "$OUT" "TEST12345" "pixel list shows the test event code"
contains "$(echo "$OUT" | sed -n 2p)" " set " "pixel list shows the token as set"

# ---- bots --------------------------------------------------------------------

rt_log "bots"
bad 2 "--token-file" bot add
bad 2 "no ':'" bot add --token-file "$TD/tg_malformed"
bad 2 "empty" bot add --token-file "$TD/empty"
bad 2 "no positional" bot add loja_a_bot --token-file "$TD/tg_a"
rt_assert_eq 0 "$(getme_calls)" "malformed tokens never reach Telegram"
bad 1 "Telegram rejected this bot token (401 Unauthorized): check the token from @BotFather" \
  bot add --token-file "$TD/tg_wrong"
rt_assert_eq 0 "$(rows bots)" "no bot after a wrong token"
ok bot add --token-file "$TD/tg_a"
rt_assert_eq "@loja_a_bot" "$OUT" "bot add prints the username"
ok bot add --token-file "$TD/tg_b" --owner ANA@example.com
rt_assert_eq "@loja_b_bot" "$OUT" "bot add prints the username"
rt_assert_eq "7165432101|loja_a_bot" \
  "$(rt_psql "SELECT telegram_id, username FROM bots WHERE username = 'loja_a_bot'")" "bot row"
rt_assert_eq $((24 + 16 + ${#TG_A})) \
  "$(rt_psql "SELECT length(token_enc) FROM bots WHERE username = 'loja_a_bot'")" "sealed bot token"
calls=$(getme_calls)
bad 1 "already registered" bot add --token-file "$TD/tg_a"
rt_assert_eq "$calls" "$(getme_calls)" "a known bot is refused without calling Telegram"
rt_assert_eq 2 "$(rows bots)" "two bots"
ok bot list
contains "$OUT" "@loja_a_bot" "bot list"
contains "$OUT" "@loja_b_bot" "bot list"
contains "$OUT" "set" "bot list shows the token as set"

# Telegram unreachable: one line, nothing stored.
TG_URL_SAVED=$RASTRO_TELEGRAM_API_URL
fake_bot "7165432104:AAHunreachableUNREACHABLE_dd" loja_c_bot
printf '7165432104:AAHunreachableUNREACHABLE_dd\n' >"$TD/tg_c"
RASTRO_TELEGRAM_API_URL="http://127.0.0.1:$(rt_free_port)" bad 1 "getMe" bot add --token-file "$TD/tg_c"
RASTRO_TELEGRAM_API_URL=$TG_URL_SAVED
rt_assert_eq 2 "$(rows bots)" "no bot when Telegram is unreachable"

# ---- pools -------------------------------------------------------------------

rt_log "pools"
before=$(snapshot)
bad 2 "not a valid slug" pool add 'bad/slug' --pixel 123456789 --bot loja_a_bot
bad 2 "not a valid slug" pool add 'bad slug' --pixel 123456789 --bot loja_a_bot
bad 2 "not a valid slug" pool add 'promoção' --pixel 123456789 --bot loja_a_bot
bad 2 "not a valid slug" pool add "$(printf 'x%.0s' $(seq 65))" --pixel 123456789 --bot loja_a_bot
bad 2 "needs a slug" pool add --pixel 123456789 --bot loja_a_bot
bad 2 "--pixel" pool add promo --bot loja_a_bot
bad 2 "--bot" pool add promo --pixel 123456789
bad 2 "weight" pool add promo --pixel 123456789 --bot loja_a_bot:0
bad 2 "weight" pool add promo --pixel 123456789 --bot loja_a_bot:1001
bad 2 "weight" pool add promo --pixel 123456789 --bot loja_a_bot:x
bad 2 "weight" pool add promo --pixel 123456789 --bot loja_a_bot:
bad 2 "not a bot username" pool add promo --pixel 123456789 --bot 'no'
bad 2 "given twice" pool add promo --pixel 123456789 --bot loja_a_bot --bot @LOJA_A_BOT:2
bad 2 "--strategy" pool add promo --pixel 123456789 --bot loja_a_bot --strategy random
bad 2 "round-robin ignores" pool add promo --pixel 123456789 --bot loja_a_bot:2 --strategy round-robin
bad 1 "no bot @nobody_bot" pool add promo --pixel 123456789 --bot loja_a_bot --bot nobody_bot
bad 1 "no pixel 999" pool add promo --pixel 999 --bot loja_a_bot
rt_assert_eq "$before" "$(snapshot)" "no row after bad pool add"

ok pool add promo --pixel 123456789 --bot loja_a_bot:3 --bot @loja_b_bot:1
contains "$OUT" "pool promo added" "pool add output"
rt_assert_eq "weighted" "$(rt_psql "SELECT strategy FROM pools WHERE slug = 'promo'")" \
  "weights imply the weighted strategy"
rt_assert_eq "loja_a_bot:3,loja_b_bot:1" "$(rt_psql "SELECT string_agg(b.username || ':' || pb.weight, ','
  ORDER BY b.username) FROM pool_bots pb JOIN bots b ON b.id = pb.bot_id
  JOIN pools p ON p.id = pb.pool_id WHERE p.slug = 'promo'")" "pool weights"
ok pool add rr-1 --pixel 123456789 --bot loja_b_bot --bot loja_a_bot
rt_assert_eq "round-robin" "$(rt_psql "SELECT strategy FROM pools WHERE slug = 'rr-1'")" "default strategy"
ok pool add w_2 --pixel 123456789 --bot loja_a_bot --strategy weighted
before=$(snapshot)
bad 1 "already exists" pool add promo --pixel 123456789 --bot loja_a_bot
rt_assert_eq "$before" "$(snapshot)" "duplicate slug creates nothing"
ok pool list
line=$(echo "$OUT" | grep '^promo ')
contains "$line" "123456789" "pool list: pixel"
contains "$line" "weighted" "pool list: strategy"
contains "$line" "@loja_a_bot:3 @loja_b_bot:1" "pool list: bots with weights"
contains "$(echo "$OUT" | grep '^rr-1 ')" "round-robin" "pool list: round-robin"
# Columns are aligned: every line has PIXEL at the same offset as the header.
col=$(echo "$OUT" | head -1 | grep -bo 'PIXEL' | cut -d: -f1)
echo "$OUT" | tail -n +2 | while IFS= read -r l; do
  [ "${l:$col:9}" = "123456789" ] || rt_fail "pool list not aligned: '$l'"
done

# ---- mark, enable, disable ---------------------------------------------------

rt_log "mark/enable/disable"
ok bot mark loja_b_bot unhealthy
rt_assert_eq f "$(rt_psql "SELECT healthy FROM bots WHERE username = 'loja_b_bot'")" "bot unhealthy"
ok pool list
contains "$(echo "$OUT" | grep '^promo ')" "@loja_b_bot:1(unhealthy)" "pool list marks unhealthy bots"
ok bot mark @loja_b_bot healthy
rt_assert_eq t "$(rt_psql "SELECT healthy FROM bots WHERE username = 'loja_b_bot'")" "bot healthy"
bad 2 "neither healthy nor unhealthy" bot mark loja_b_bot sick
bad 1 "no bot @nobody_bot" bot mark nobody_bot unhealthy
ok bot disable loja_a_bot
rt_assert_eq f "$(rt_psql "SELECT enabled FROM bots WHERE username = 'loja_a_bot'")" "bot disabled"
ok bot enable loja_a_bot
rt_assert_eq t "$(rt_psql "SELECT enabled FROM bots WHERE username = 'loja_a_bot'")" "bot enabled"
ok pool disable promo
rt_assert_eq f "$(rt_psql "SELECT enabled FROM pools WHERE slug = 'promo'")" "pool disabled"
ok pool enable promo
rt_assert_eq t "$(rt_psql "SELECT enabled FROM pools WHERE slug = 'promo'")" "pool enabled"
bad 1 "no pool 'nope'" pool disable nope
bad 2 "not a valid slug" pool enable 'a/b'

# ---- several users: --owner, and one owner per pool -------------------------

rt_log "owners"
ok --stdin $'another good password\n' user add bob@example.com
before=$(snapshot)
bad 2 "--owner" pixel add 555 --token-file "$TD/meta"
bad 2 "--owner" pool add bobs --pixel 123456789 --bot loja_a_bot
rt_assert_eq "$before" "$(snapshot)" "nothing created without --owner"
ok pixel add 555 --token-file "$TD/meta" --owner bob@example.com
bad 1 "belongs to ana@example.com" pool add bobs --pixel 555 --bot loja_a_bot --owner bob@example.com
bad 1 "another user" pool add bobs --pixel 123456789 --bot loja_a_bot --owner bob@example.com
rt_assert_eq 0 "$(rt_psql "SELECT count(*) FROM pools WHERE slug = 'bobs'")" "cross-owner pool refused"
ok pixel list --owner bob@example.com
contains "$OUT" "555" "pixel list --owner"
case $OUT in *123456789*) rt_fail "pixel list --owner bob shows ana's pixel" ;; esac
ok pool list --owner bob@example.com
contains "$OUT" "no pools" "bob has no pool"
bad 1 "no user" bot list --owner carol@example.com
ok user list
contains "$(echo "$OUT" | grep '^ana@example.com ')" "ana@example.com" "user list"

# ---- --help everywhere ---------------------------------------------------------

rt_log "help"
for cmd in user pixel bot pool; do
  ok "$cmd" --help
  contains "$OUT" "usage: rastro $cmd" "$cmd --help"
done
ok user add --help;   contains "$OUT" "stdin" "user add --help"
ok user list --help
ok pixel add --help;  contains "$OUT" "--test-event-code" "pixel add --help"
ok pixel list --help; contains "$OUT" "--owner" "pixel list --help"
ok bot add --help;    contains "$OUT" "--token-file" "bot add --help"
ok bot list --help
ok bot mark --help;   contains "$OUT" "unhealthy" "bot mark --help"
ok bot enable --help
ok bot disable --help
ok pool add --help;   contains "$OUT" "--strategy" "pool add --help"
ok pool list --help
ok pool enable --help
ok pool disable --help
bad 2 "unknown subcommand" pool remove promo
run pool
[ $RC -eq 2 ] || rt_fail "'rastro pool' without a subcommand: exit $RC, expected 2"

# ---- secrets never leak --------------------------------------------------------

rt_log "secrets"
ok bot list
ok pixel list
pg_dump "$RASTRO_DATABASE_URL" >"$RT_DIR/dump.sql" || rt_fail "pg_dump failed"
[ -s "$RT_DIR/dump.sql" ] || rt_fail "pg_dump is empty"
grep -q loja_a_bot "$RT_DIR/dump.sql" || rt_fail "pg_dump does not hold the bots at all"
for secret in "$META_TOKEN" "$TG_A" "$TG_B" "$TG_WRONG" \
              "${TG_A#*:}" "${TG_B#*:}" "${TG_WRONG#*:}" "$PASSWORD"; do
  if grep -qF -- "$secret" "$RT_DIR/dump.sql"; then rt_fail "a secret is in pg_dump"; fi
  if grep -qF -- "$secret" "$RT_DIR"/cmd-*.out "$RT_DIR"/cmd-*.err "$RT_DIR"/mig-*; then
    rt_fail "a secret is in the output of a command: $(grep -lF -- "$secret" "$RT_DIR"/cmd-* | head -3)"
  fi
  # The fake's own log masks tokens too (so test logs can be shared).
  if grep -qF -- "$secret" "$RT_DIR"/bg-*.log; then rt_fail "a secret is in the fake's log"; fi
done
# Sealed bytes are not the plaintext in another encoding either.
hex_a=$(printf '%s' "${TG_A#*:}" | od -An -tx1 | tr -d ' \n')
if grep -qi -- "$hex_a" "$RT_DIR/dump.sql"; then rt_fail "the bot token is in pg_dump as hex"; fi

rt_log "ok ($N commands)"
