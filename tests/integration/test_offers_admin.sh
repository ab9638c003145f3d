#!/usr/bin/env bash
# test_offers_admin — the admin CLI of the bots node: rastro offer, rastro
# gateway and rastro bot webhook, against a real PostgreSQL and the fake
# Telegram Bot API.
#
# Covers: every bad argument (exit 2, one line on stderr, nothing stored):
# prices, names, deliveries, welcome HTML (tags Telegram refuses, unbalanced
# tags, bare '<' and '&', bad UTF-8, size), photos (magic bytes, 10 MB
# boundary), gateway kinds and credentials, webhook URLs; owners (a bot of
# another user is refused); offer add/list/set/enable/disable round trips
# with 19,90 / 0.50 / 1000000.00 and --json; the photo byte-identical in
# PostgreSQL; gateway credentials sealed (absent from pg_dump and from every
# output and log) and list showing only field names; bot webhook --url
# registering at the fake with a 43-character secret whose SHA-256 is what
# PostgreSQL holds, a failed call changing nothing, and --delete reverting.
. "$(dirname "$0")/lib.sh"
rt_setup offers_admin
rt_fake_telegram

# ---- helpers ---------------------------------------------------------------------

# run, ok, bad, contains, lacks: tests/integration/lib.sh

# snapshot: everything the commands under test may change.
snapshot() {
  rt_psql "SELECT (SELECT count(*) FROM offers),
    (SELECT coalesce(md5(string_agg(o::text, ',' ORDER BY id)), '-') FROM offers o),
    (SELECT count(*) FROM gateways),
    (SELECT coalesce(md5(string_agg(g::text, ',' ORDER BY bot_id)), '-') FROM gateways g),
    (SELECT md5(string_agg(update_mode || coalesce(encode(webhook_secret_hash, 'hex'), '-')
       || coalesce(webhook_url, '-'), ',' ORDER BY id)) FROM bots)"
}
sha256() { sha256sum "$1" | cut -d' ' -f1; }
fake_bot() {  # fake_bot TOKEN USERNAME
  curl -sf -X POST -H 'Content-Type: application/json' \
    -d "{\"token\":\"$1\",\"username\":\"$2\"}" "$RASTRO_TELEGRAM_API_URL/_fake/bots" >/dev/null
}
# fake_calls METHOD: the fake's calls of METHOD as JSON lines (params included).
fake_calls() {
  curl -sf "$RASTRO_TELEGRAM_API_URL/_fake/calls" | python3 -c '
import json, sys
for c in json.load(sys.stdin):
    if c["method"].lower() == sys.argv[1].lower():
        print(json.dumps(c))' "$1"
}
# json_get EXPR: evaluates the Python expression EXPR on the JSON in $OUT (as "d").
json_get() { printf '%s' "$OUT" | python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# ---- users, bots, files ---------------------------------------------------------

F=$RT_DIR/files
mkdir -p "$F"
TG_A="7165432201:AAHofferS3cr3tTokenAAAAAAAAAAAA_aa"
TG_B="7165432202:AAHofferS3cr3tTokenBBBBBBBBBBBB-bb"
printf '%s\n' "$TG_A" >"$F/tg_a"
printf '%s\n' "$TG_B" >"$F/tg_b"
fake_bot "$TG_A" loja_a_bot
fake_bot "$TG_B" loja_b_bot

rt_log "setup"
printf 'correct horse battery staple\n' | rastro user add ana@example.com >/dev/null
ok bot add --token-file "$F/tg_a"

# Welcome messages.
cat >"$F/welcome.html" <<'EOF'
<b>Olá!</b> Bem-vindo &amp; boas compras, <i>promoção</i> <u>só</u> <s>hoje</s> &lt;3 &#128525;
<a href="https://t.me/loja_a_bot?start=x">link</a> <span class="tg-spoiler">segredo</span> <tg-spoiler>x</tg-spoiler>
<blockquote expandable>citação <strong>forte</strong> <em>e</em> <ins>i</ins> <del>d</del> <strike>s</strike></blockquote>
<pre><code class="language-c">if (a &lt; b &amp;&amp; c &gt; d) {}</code></pre> <CODE>x</CODE> > fim
EOF
welcome_ok=$(cat "$F/welcome.html")        # what is stored: without the last newline
printf '<div>oi</div>\n' >"$F/w_div"
printf '<b>oi\n' >"$F/w_unclosed"
printf '<b><i>oi</b></i>\n' >"$F/w_crossed"
printf 'oi</b>\n' >"$F/w_stray_close"
printf 'Tom & Jerry\n' >"$F/w_amp"
printf 'Tom &nbsp; Jerry\n' >"$F/w_entity"
printf '1 < 2\n' >"$F/w_lt"
printf '<a>sem link</a>\n' >"$F/w_a"
printf '<span>x</span>\n' >"$F/w_span"
printf '<a href="">x</a>\n' >"$F/w_href_empty"
printf '<pre><code class="python">x</code></pre>\n' >"$F/w_code_class"
printf '<b>a <b>b <i>c</i></b></b> <a href=https://x.y/>ok</a>\n' >"$F/w_nested_ok"
printf '<b onclick="x()">oi</b>\n' >"$F/w_attr"
printf 'line 1\nline 2\n<script>alert(1)</script>\n' >"$F/w_script"
printf '<b/>\n' >"$F/w_selfclose"
printf '<a href="x"\n' >"$F/w_open"
printf 'ol\xe1 latin-1\n' >"$F/w_latin1"
printf ' \n\t\n' >"$F/w_blank"
printf '<b></b>\n' >"$F/w_empty_tags"
: >"$F/w_empty"
python3 -c 'import sys; sys.stdout.write("a" * 4097)' >"$F/w_big"
python3 -c 'import sys; sys.stdout.write("é" * 2048)' >"$F/w_4096"      # 4096 bytes exactly
# Photos: magic bytes decide; 10 MB is the limit, both ways.
python3 - "$F" <<'EOF'
import os, sys
d = sys.argv[1]
png = b"\x89PNG\r\n\x1a\n"
open(os.path.join(d, "photo.png"), "wb").write(png + os.urandom(70000) + b"\x00end")
open(os.path.join(d, "photo.jpg"), "wb").write(b"\xff\xd8\xff\xe0" + os.urandom(5000))
open(os.path.join(d, "photo_10mb.png"), "wb").write(png + os.urandom(10 * 1024 * 1024 - len(png)))
open(os.path.join(d, "photo_big.png"), "wb").write(png + bytes(10 * 1024 * 1024 + 1 - len(png)))
open(os.path.join(d, "photo.gif"), "wb").write(b"GIF89a" + bytes(100))
open(os.path.join(d, "photo.txt"), "w").write("not an image\n")
EOF
NAME_129=$(python3 -c 'print("n" * 129)')
NAME_128=$(python3 -c 'print("ç" * 128)')
TEXT_4097=$(python3 -c 'print("t" * 4097)')
TEXT_4096=$(python3 -c 'print("ã" * 4096)')

# ---- offer add: bad arguments -----------------------------------------------------

rt_log "offer add: bad arguments"
before=$(snapshot)
A=(--bot loja_a_bot --name Curso --deliver-chat -1001234567890)
for p in abc 19.999 0.49 0,001 1000000.01 99999999999 -5 19. .5 1,000.00 '' 1e3 '19 90' ' 19' 'R$19'; do
  run offer add "${A[@]}" --price "$p"
  [ $RC -eq 2 ] || rt_fail "--price '$p': exit $RC, expected 2 ($ERR)"
  contains "$ERR" "--price" "--price '$p' error"
done
bad 2 "more than 2 decimals" offer add "${A[@]}" --price 19.999
bad 2 "below the minimum, 0.50" offer add "${A[@]}" --price 0.49
bad 2 "above the maximum, 1000000.00" offer add "${A[@]}" --price 1000000.01
bad 2 "not a price in reais" offer add "${A[@]}" --price 19.
bad 2 "--bot" offer add --name Curso --price 10 --deliver-chat -100123
bad 2 "not a bot username" offer add --bot 'a b' --name Curso --price 10 --deliver-chat -100123
bad 2 "--name" offer add --bot loja_a_bot --price 10 --deliver-chat -100123
bad 2 "--price" offer add --bot loja_a_bot --name Curso --deliver-chat -100123
bad 2 "1 to 128 characters" offer add --bot loja_a_bot --name '' --price 10 --deliver-chat -100123
bad 2 "1 to 128 characters (it has 129)" offer add --bot loja_a_bot --name "$NAME_129" --price 10 --deliver-chat -100123
bad 2 "not valid UTF-8" offer add --bot loja_a_bot --name $'caf\xe9' --price 10 --deliver-chat -100123
bad 2 "control character" offer add --bot loja_a_bot --name $'two\nlines' --price 10 --deliver-chat -100123
bad 2 "--deliver-chat CHAT_ID" offer add --bot loja_a_bot --name Curso --price 10
bad 2 "exclude each other" offer add --bot loja_a_bot --name Curso --price 10 --deliver-chat -100123 --deliver-text oi
bad 2 "negative" offer add --bot loja_a_bot --name Curso --price 10 --deliver-chat 123456
bad 2 "not a group or channel id" offer add --bot loja_a_bot --name Curso --price 10 --deliver-chat -12ab
bad 2 "not a group or channel id" offer add --bot loja_a_bot --name Curso --price 10 --deliver-chat=-99999999999999999999
bad 2 "not a chat id" offer add --bot loja_a_bot --name Curso --price 10 --deliver-chat -0
bad 2 "1 to 4096 characters (it has 4097)" offer add --bot loja_a_bot --name Curso --price 10 --deliver-text "$TEXT_4097"
bad 2 "1 to 4096" offer add --bot loja_a_bot --name Curso --price 10 --deliver-text ''
bad 2 "given twice" offer add "${A[@]}" --price 10 --price 11
bad 2 "unknown option --colour" offer add "${A[@]}" --price 10 --colour red
bad 2 "no positional" offer add loja_a_bot "${A[@]}" --price 10
bad 2 "needs a value" offer add "${A[@]}" --price
bad 2 "not an email" offer add "${A[@]}" --price 10 --owner nobody
W=(offer add "${A[@]}" --price 10 --welcome-file)
bad 2 "tag <div> is not allowed by Telegram (allowed: b, strong" "${W[@]}" "$F/w_div"
bad 2 "<b> is never closed" "${W[@]}" "$F/w_unclosed"
bad 2 "</b> closes <i>" "${W[@]}" "$F/w_crossed"
bad 2 "</b> closes nothing" "${W[@]}" "$F/w_stray_close"
bad 2 "write &amp; for a literal '&'" "${W[@]}" "$F/w_amp"
bad 2 "'&' starts no entity" "${W[@]}" "$F/w_entity"
bad 2 "write &lt; for a literal '<'" "${W[@]}" "$F/w_lt"
bad 2 "<a> needs href" "${W[@]}" "$F/w_a"
bad 2 'class="tg-spoiler"' "${W[@]}" "$F/w_span"
bad 2 "attribute onclick" "${W[@]}" "$F/w_attr"
bad 2 "href is empty" "${W[@]}" "$F/w_href_empty"
bad 2 "attribute class" "${W[@]}" "$F/w_code_class"
bad 2 "line 3: tag <script> is not allowed" "${W[@]}" "$F/w_script"
bad 2 "malformed" "${W[@]}" "$F/w_selfclose"
bad 2 "not closed with '>'" "${W[@]}" "$F/w_open"
bad 2 "not UTF-8" "${W[@]}" "$F/w_latin1"
bad 2 "no visible text" "${W[@]}" "$F/w_blank"
bad 2 "no visible text" "${W[@]}" "$F/w_empty_tags"
bad 2 "is empty" "${W[@]}" "$F/w_empty"
bad 2 "larger than 4096 bytes" "${W[@]}" "$F/w_big"
bad 2 "cannot read" "${W[@]}" "$F/missing.html"
P=(offer add "${A[@]}" --price 10 --photo)
bad 2 "neither a PNG nor a JPEG" "${P[@]}" "$F/photo.gif"
bad 2 "neither a PNG nor a JPEG" "${P[@]}" "$F/photo.txt"
bad 2 "larger than 10485760 bytes" "${P[@]}" "$F/photo_big.png"
bad 2 "cannot read" "${P[@]}" "$F/missing.png"
bad 2 "cannot read" "${P[@]}" "$F"
rt_assert_eq "$before" "$(snapshot)" "no offer after bad offer add"

bad 1 "no bot @nobody_bot" offer add --bot nobody_bot --name Curso --price 10 --deliver-chat -100123
printf 'another good password\n' | rastro user add bob@example.com >/dev/null
ok bot add --token-file "$F/tg_b" --owner bob@example.com
bad 2 "--owner" offer add "${A[@]}" --price 10
bad 1 "belongs to bob@example.com, not to ana@example.com" \
  offer add --bot loja_b_bot --name Curso --price 10 --deliver-chat -100123 --owner ana@example.com
bad 1 "no user carol@example.com" offer add "${A[@]}" --price 10 --owner carol@example.com
rt_assert_eq 0 "$(rt_psql 'SELECT count(*) FROM offers')" "no offer after refused owners"

# ---- offer add / list / set / enable / disable ---------------------------------

rt_log "offer round trip"
offer_id() { echo "$OUT" | sed -n 's/^offer \([0-9]*\) added.*/\1/p'; }
ok offer add --bot @loja_a_bot --name 'Grupo VIP' --price 19,90 --deliver-chat -1001234567890 \
  --welcome-file "$F/welcome.html" --photo "$F/photo.png" --owner ANA@example.com
contains "$OUT" "added to @loja_a_bot for ana@example.com" "offer add output"
contains "$OUT" "R\$ 19.90" "offer add output: price"
contains "$ERR" "no payment gateway yet" "offer add notes the missing gateway"
ID1=$(offer_id)
rt_assert_eq "1990|-1001234567890||t|ana@example.com" \
  "$(rt_psql "SELECT o.price_cents, o.deliver_chat_id, o.deliver_text, o.enabled, u.email
     FROM offers o JOIN users u ON u.id = o.owner_id WHERE o.id = $ID1")" "offer 1 row"
rt_assert_eq "$(sha256 "$F/photo.png")" "$(rt_psql "SELECT encode(sha256(photo), 'hex') FROM offers WHERE id = $ID1")" \
  "photo stored byte-identical"
rt_assert_eq "$welcome_ok" "$(rt_psql "SELECT welcome_html FROM offers WHERE id = $ID1")" "welcome stored"

ok offer add --bot loja_a_bot --name 'Mínimo' --price 0.50 --deliver-text 'Seu acesso: https://example.com/x' --owner ana@example.com
ID2=$(offer_id)
ok offer add --bot loja_a_bot --name "$NAME_128" --price 1000000.00 --deliver-text "$TEXT_4096" \
  --welcome-file "$F/w_4096" --photo "$F/photo_10mb.png" --owner ana@example.com
ID3=$(offer_id)
ok offer add --bot loja_a_bot --name 'Sem centavos' --price 20 --deliver-chat=-100987 --photo "$F/photo.jpg" --owner ana@example.com
ID4=$(offer_id)
ok offer add --bot loja_a_bot --name 'Um decimal' --price 19.9 --deliver-chat -100987 --owner ana@example.com \
  --welcome-file "$F/w_nested_ok"
ID5=$(offer_id)
ok offer add --bot loja_b_bot --name 'Do Bob' --price 5 --deliver-text 'oi' --owner bob@example.com
ID6=$(offer_id)
rt_assert_eq "1990 50 100000000 2000 1990 500" \
  "$(rt_psql "SELECT string_agg(price_cents::text, ' ' ORDER BY id) FROM offers")" "prices in centavos"
rt_assert_eq "128|4096|4096" \
  "$(rt_psql "SELECT length(name), length(deliver_text), octet_length(welcome_html) FROM offers WHERE id = $ID3")" \
  "boundaries: name 128 chars, text 4096 chars, welcome 4096 bytes"
rt_assert_eq "$(sha256 "$F/photo_10mb.png")" "$(rt_psql "SELECT encode(sha256(photo), 'hex') FROM offers WHERE id = $ID3")" \
  "10 MB photo stored byte-identical"
rt_assert_eq "$(sha256 "$F/photo.jpg")" "$(rt_psql "SELECT encode(sha256(photo), 'hex') FROM offers WHERE id = $ID4")" \
  "JPEG stored byte-identical"

ok offer list
line=$(echo "$OUT" | grep "^$ID1 ")
contains "$line" "@loja_a_bot" "offer list: bot"
contains "$line" "Grupo VIP" "offer list: name"
contains "$line" "19.90" "offer list: price"
contains "$line" "invite to -1001234567890" "offer list: delivery"
contains "$(echo "$OUT" | grep "^$ID2 ")" "0.50" "offer list: 0.50"
contains "$(echo "$OUT" | grep "^$ID3 ")" "1000000.00" "offer list: 1000000.00"
contains "$(echo "$OUT" | grep "^$ID2 ")" "text (" "offer list: text delivery"
rt_assert_eq 7 "$(echo "$OUT" | wc -l)" "offer list: header + 6 offers"
ok offer list --bot loja_b_bot
rt_assert_eq 2 "$(echo "$OUT" | wc -l)" "offer list --bot: one offer"
contains "$OUT" "Do Bob" "offer list --bot"
ok offer list --owner bob@example.com
lacks "$OUT" "Grupo VIP" "offer list --owner bob"
bad 1 "belongs to bob@example.com" offer list --bot loja_b_bot --owner ana@example.com
bad 1 "no bot @nobody_bot" offer list --bot nobody_bot
ok offer list --json --bot loja_a_bot
rt_assert_eq 5 "$(json_get 'len(d)')" "offer list --json: 5 offers of loja_a_bot"
rt_assert_eq "1990 19.90 -1001234567890 None True" \
  "$(json_get "' '.join(str(x) for x in [d[0]['price_cents'], d[0]['price'], d[0]['deliver_chat_id'], d[0]['deliver_text'], d[0]['enabled']])")" \
  "offer list --json: first offer"
rt_assert_eq "$((10 * 1024 * 1024))" "$(json_get "d[2]['photo_bytes']")" "offer list --json: photo size"
rt_assert_eq "$welcome_ok" "$(json_get "d[0]['welcome_html']")" "offer list --json: welcome"

rt_log "offer set"
before=$(snapshot)
bad 2 "needs something to change" offer set "$ID1"
bad 2 "needs the offer id" offer set --price 10
bad 2 "not an offer id" offer set abc --price 10
bad 2 "not an offer id" offer set 0 --price 10
bad 2 "one offer id" offer set "$ID1" "$ID2" --price 10
bad 2 "below the minimum" offer set "$ID1" --price 0,10
bad 2 "exclude each other" offer set "$ID1" --photo "$F/photo.png" --no-photo
bad 2 "exclude each other" offer set "$ID1" --deliver-chat -100123 --deliver-text oi
bad 2 "exclude each other" offer set "$ID1" --welcome-file "$F/welcome.html" --no-welcome
bad 2 "tag <div>" offer set "$ID1" --welcome-file "$F/w_div"
bad 2 "neither a PNG nor a JPEG" offer set "$ID1" --photo "$F/photo.gif"
bad 2 "given twice" offer set "$ID1" --no-photo --no-photo
bad 1 "no offer 999999" offer set 999999 --price 10
rt_assert_eq "$before" "$(snapshot)" "bad offer set changes nothing"

rt_psql "UPDATE offers SET photo_file_id = 'AgACAgQAAxkBAAIB' WHERE id = $ID1" >/dev/null
ok offer set "$ID1" --price 29,90 --name 'Grupo VIP 2'
contains "$OUT" "price R\$ 29.90" "offer set output"
rt_assert_eq "2990|Grupo VIP 2|-1001234567890|AgACAgQAAxkBAAIB" \
  "$(rt_psql "SELECT price_cents, name, deliver_chat_id, photo_file_id FROM offers WHERE id = $ID1")" \
  "offer set --price --name keeps the rest"
ok offer set "$ID1" --deliver-text 'link: https://example.com/vip'
rt_assert_eq "|link: https://example.com/vip" \
  "$(rt_psql "SELECT deliver_chat_id, deliver_text FROM offers WHERE id = $ID1")" "delivery switched to text"
ok offer set "$ID1" --deliver-chat -100555
rt_assert_eq "-100555|" \
  "$(rt_psql "SELECT deliver_chat_id, deliver_text FROM offers WHERE id = $ID1")" "delivery switched to chat"
ok offer set "$ID1" --photo "$F/photo.jpg"
rt_assert_eq "$(sha256 "$F/photo.jpg")|" \
  "$(rt_psql "SELECT encode(sha256(photo), 'hex'), photo_file_id FROM offers WHERE id = $ID1")" \
  "new photo stored, Telegram's file_id forgotten"
ok offer set "$ID1" --no-photo --no-welcome
rt_assert_eq "||2990" "$(rt_psql "SELECT photo, welcome_html, price_cents FROM offers WHERE id = $ID1")" \
  "--no-photo --no-welcome"
ok offer set "$ID1" --welcome-file "$F/welcome.html"
rt_assert_eq "$welcome_ok" "$(rt_psql "SELECT welcome_html FROM offers WHERE id = $ID1")" "welcome set again"

rt_log "offer enable/disable"
ok offer disable "$ID2"
rt_assert_eq f "$(rt_psql "SELECT enabled FROM offers WHERE id = $ID2")" "offer disabled"
contains "$OUT" "disabled" "offer disable output"
ok offer list --json --bot loja_a_bot
rt_assert_eq False "$(json_get "[o for o in d if o['id'] == $ID2][0]['enabled']")" "list shows it disabled"
ok offer enable "$ID2"
rt_assert_eq t "$(rt_psql "SELECT enabled FROM offers WHERE id = $ID2")" "offer enabled"
bad 1 "no offer 999999" offer disable 999999
bad 2 "usage: rastro offer enable <id>" offer enable
bad 2 "unknown option -3" offer enable -3
bad 2 "not an offer id" offer enable 12x
bad 2 "unknown subcommand" offer remove "$ID2"

# ---- gateways -------------------------------------------------------------------

rt_log "gateways"
MP_TOKEN="APP_USR-8123456789012345-S3CR3Tmercadopago-000111"
MP_WHSEC="mpWebhookS3cr3t4f1e2d3c4b5a6978"
PP_TOKEN="31415|PushinPayS3cr3tTokenZZZZZZZZZZZZZ"
PP_WHTOKEN="pushinWebhookS3cr3tYYYYYYYY"
SP_SECRET="syncpayClientS3cr3tXXXXXXXXXXXX"
G=$RT_DIR/gw
mkdir -p "$G"
umask_saved=$(umask); umask 077
printf '{"access_token": "%s", "webhook_secret": "%s"}\n' "$MP_TOKEN" "$MP_WHSEC" >"$G/mp.json"
printf '{"token": "%s", "webhook_token": "%s"}\n' "$PP_TOKEN" "$PP_WHTOKEN" >"$G/pp.json"
printf '{"client_id": "sync-client-id-1", "client_secret": "%s", "surprise": "%s"}\n' "$SP_SECRET" "$SP_SECRET" >"$G/sp.json"
printf '{"access_token": "%s"}\n' "$MP_TOKEN" >"$G/mp_partial.json"
printf '{"access_token": "%s", "webhook_secret": ""}\n' "$MP_TOKEN" >"$G/mp_empty_field.json"
printf 'access_token=%s\n' "$MP_TOKEN" >"$G/not_json"
printf '["%s"]\n' "$MP_TOKEN" >"$G/array.json"
python3 -c 'import sys; sys.stdout.write("{\"access_token\": \"" + "x" * 16400 + "\"}")' >"$G/huge.json"
umask "$umask_saved"

before=$(snapshot)
bad 2 "'stripe' is not a gateway: use mercadopago, pushinpay or syncpay" gateway set loja_a_bot stripe --credentials-file "$G/mp.json"
bad 2 "--credentials-file" gateway set loja_a_bot mercadopago
bad 2 "usage: rastro gateway set" gateway set loja_a_bot --credentials-file "$G/mp.json"
bad 2 "usage: rastro gateway set" gateway set loja_a_bot mercadopago extra --credentials-file "$G/mp.json"
bad 2 "not a bot username" gateway set 'x!' mercadopago --credentials-file "$G/mp.json"
bad 2 "cannot read" gateway set loja_a_bot mercadopago --credentials-file "$G/missing.json"
bad 2 "webhook_secret" gateway set loja_a_bot mercadopago --credentials-file "$G/mp_partial.json"
bad 2 "webhook_secret" gateway set loja_a_bot mercadopago --credentials-file "$G/mp_empty_field.json"
bad 2 "JSON object" gateway set loja_a_bot mercadopago --credentials-file "$G/not_json"
bad 2 "JSON object" gateway set loja_a_bot mercadopago --credentials-file "$G/array.json"
bad 2 "larger than 16384 bytes" gateway set loja_a_bot mercadopago --credentials-file "$G/huge.json"
bad 2 "\"token\"" gateway set loja_a_bot pushinpay --credentials-file "$G/mp.json"
bad 1 "no bot @nobody_bot" gateway set nobody_bot mercadopago --credentials-file "$G/mp.json"
rt_assert_eq "$before" "$(snapshot)" "no gateway after bad gateway set"

ok gateway set loja_a_bot mercadopago --credentials-file "$G/mp.json"
rt_assert_eq "gateway mercadopago set for @loja_a_bot (credentials encrypted)" "$OUT" "gateway set output"
[ -z "$ERR" ] || rt_fail "gateway set with a 0600 file warned: $ERR"
rt_assert_eq "mercadopago|ana@example.com|$((24 + 16 + $(wc -c <"$G/mp.json")))" \
  "$(rt_psql "SELECT g.kind, u.email, length(g.credentials_enc) FROM gateways g
     JOIN users u ON u.id = g.owner_id")" "gateway row: kind, the bot's owner, sealed size"
chmod 644 "$G/pp.json"
ok gateway set @LOJA_A_BOT pushinpay --credentials-file "$G/pp.json"
contains "$ERR" "readable by other users" "a group/world-readable credentials file is warned about"
contains "$OUT" "replaced mercadopago" "gateway set replaces"
rt_assert_eq "1|pushinpay" "$(rt_psql "SELECT count(*), max(kind) FROM gateways")" "one gateway per bot"
ok gateway set loja_b_bot syncpay --credentials-file "$G/sp.json"
rt_assert_eq "bob@example.com" "$(rt_psql "SELECT u.email FROM gateways g JOIN users u ON u.id = g.owner_id
  JOIN bots b ON b.id = g.bot_id WHERE b.username = 'loja_b_bot'")" "gateway belongs to the bot's owner"
ok offer add --bot loja_a_bot --name 'Com gateway' --price 7 --deliver-text oi --owner ana@example.com
lacks "$ERR" "no payment gateway" "no gateway note once a gateway is set"

ok gateway list
line=$(echo "$OUT" | grep '^@loja_a_bot ')
contains "$line" "pushinpay" "gateway list: kind"
contains "$line" "token webhook_token" "gateway list: fields set"
contains "$line" "ana@example.com" "gateway list: owner"
contains "$(echo "$OUT" | grep '^@loja_b_bot ')" "client_id client_secret +1 other" "gateway list: unknown keys only counted"
lacks "$OUT" "surprise" "gateway list: unknown key names are not printed"
ok gateway list --owner bob@example.com --json
rt_assert_eq "loja_b_bot syncpay ['client_id', 'client_secret']" \
  "$(json_get "' '.join([d[0]['bot'], d[0]['kind'], str(d[0]['credentials_set'])])")" "gateway list --json"
rt_assert_eq 1 "$(json_get 'len(d)')" "gateway list --owner"

# Without the master key, list still works and says it cannot tell.
mv "$RASTRO_DATA_DIR/master.key" "$RT_DIR/master.key.saved"
ok gateway list
contains "$ERR" "cannot tell which credentials are set" "gateway list without the master key"
mv "$RT_DIR/master.key.saved" "$RASTRO_DATA_DIR/master.key"

ok gateway remove loja_b_bot
contains "$OUT" "gateway syncpay of @loja_b_bot removed" "gateway remove output"
rt_assert_eq 0 "$(rt_psql "SELECT count(*) FROM gateways g JOIN bots b ON b.id = g.bot_id WHERE b.username = 'loja_b_bot'")" \
  "gateway removed"
bad 1 "@loja_b_bot has no gateway" gateway remove loja_b_bot
bad 1 "no bot @nobody_bot" gateway remove nobody_bot
bad 2 "usage: rastro gateway remove" gateway remove

# ---- bot webhook ---------------------------------------------------------------

rt_log "bot webhook"
before=$(snapshot)
bad 2 "either --url BASE" bot webhook loja_a_bot
bad 2 "either --url BASE" bot webhook loja_a_bot --url https://bots.example.com --delete
bad 2 "usage: rastro bot webhook" bot webhook --delete
bad 2 "must start with https://" bot webhook loja_a_bot --url ftp://bots.example.com
bad 2 "query or fragment" bot webhook loja_a_bot --url 'https://bots.example.com/?a=1'
bad 2 "user name or password" bot webhook loja_a_bot --url 'https://u:p@bots.example.com'
bad 2 "bad port" bot webhook loja_a_bot --url 'https://bots.example.com:99999'
bad 2 "bad port" bot webhook loja_a_bot --url 'https://bots.example.com:'
bad 2 "no valid host" bot webhook loja_a_bot --url 'https:///path'
bad 2 "character a URL cannot have" bot webhook loja_a_bot --url 'https://bots.example.com/a b'
bad 2 "not a bot username" bot webhook 'a/b' --delete
# Against the real Telegram (the default API URL), http:// is refused before any call.
TG_URL_SAVED=$RASTRO_TELEGRAM_API_URL
unset RASTRO_TELEGRAM_API_URL
bad 2 "must start with https://" bot webhook loja_a_bot --url http://bots.example.com
export RASTRO_TELEGRAM_API_URL=$TG_URL_SAVED
bad 1 "no bot @nobody_bot" bot webhook nobody_bot --url https://bots.example.com
rt_assert_eq "$before" "$(snapshot)" "bad bot webhook changes nothing"
rt_assert_eq "" "$(fake_calls setWebhook)$(fake_calls deleteWebhook)" "bad arguments never reach Telegram"

# The front's stand-in: records the path and the secret header of each
# delivery in $RT_DIR/captured (not a log: it holds secrets) and answers 200.
CAP_PORT=$(rt_free_port)
rt_bg python3 -c '
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
class H(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with open(sys.argv[2], "a") as f:
            f.write("%s %s\n" % (self.path, self.headers.get("X-Telegram-Bot-Api-Secret-Token", "-")))
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a): pass
HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()' "$CAP_PORT" "$RT_DIR/captured"
rt_wait_for "capture server" 10 python3 -c "import socket; socket.create_connection(('127.0.0.1', $CAP_PORT))"
: >"$RT_DIR/captured"
# delivered_secret PATH: injects an update at the fake, waits for its
# delivery to PATH, prints the secret header that came with it.
delivered_secret() {
  curl -sf -X POST -H 'Content-Type: application/json' "$RASTRO_TELEGRAM_API_URL/_fake/updates" \
    -d '{"bot_id":7165432201,"update":{"message":{"message_id":1,"date":1767225600,
        "chat":{"id":111,"type":"private"},"from":{"id":111,"is_bot":false,"first_name":"Ana"},"text":"/start"}}}' >/dev/null
  rt_wait_for "webhook delivery to $1" 20 grep -q "^$1 " "$RT_DIR/captured"
  grep "^$1 " "$RT_DIR/captured" | tail -1 | cut -d' ' -f2
  : >"$RT_DIR/captured"
}
stored_hash() { rt_psql "SELECT encode(webhook_secret_hash, 'hex') FROM bots WHERE username = 'loja_a_bot'"; }
sha() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }

ok bot webhook loja_a_bot --url "http://127.0.0.1:$CAP_PORT/"
WEBHOOK_URL="http://127.0.0.1:$CAP_PORT/telegram/loja_a_bot"
contains "$OUT" "webhook set to $WEBHOOK_URL" "bot webhook output"
[ -z "$ERR" ] || rt_fail "bot webhook printed on stderr: $ERR"
call=$(fake_calls setWebhook | tail -1)
rt_assert_eq "7165432201 200 $WEBHOOK_URL <43 chars>" \
  "$(printf '%s' "$call" | python3 -c 'import json,sys; c=json.load(sys.stdin); p=c["params"]; print(c["bot_id"], c["status"], p["url"], p["secret_token"])')" \
  "setWebhook: bot, status, url, a 43-character secret"
rt_assert_eq "$WEBHOOK_URL" "$(curl -sf "$RASTRO_TELEGRAM_API_URL/_fake/updates?bot_id=7165432201" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["webhook"])')" "the fake holds the webhook"
SECRET1=$(delivered_secret /telegram/loja_a_bot)
[[ $SECRET1 =~ ^[A-Za-z0-9_-]{43}$ ]] || rt_fail "secret_token is not 43 base64url characters (${#SECRET1} chars)"
rt_assert_eq "webhook|$WEBHOOK_URL|$(sha "$SECRET1")" \
  "$(rt_psql "SELECT update_mode, webhook_url, encode(webhook_secret_hash, 'hex') FROM bots WHERE username = 'loja_a_bot'")" \
  "stored: mode, url, SHA-256 of the secret Telegram sends"

# A new --url makes a new secret (and a base path is kept).
ok bot webhook loja_a_bot --url "http://127.0.0.1:$CAP_PORT/front//"
SECRET2=$(delivered_secret /front/telegram/loja_a_bot)
[ "$SECRET1" != "$SECRET2" ] || rt_fail "a new --url reused the secret"
rt_assert_eq "$(sha "$SECRET2")" "$(stored_hash)" "second secret's hash stored"

# A port Telegram does not deliver to is warned about, but accepted.
ok bot webhook loja_a_bot --url "https://127.0.0.1:9443/rastro"
contains "$ERR" "only to ports 443, 80, 88 and 8443, not 9443" "port warning"
rt_assert_eq "https://127.0.0.1:9443/rastro/telegram/loja_a_bot" \
  "$(rt_psql "SELECT webhook_url FROM bots WHERE username = 'loja_a_bot'")" "webhook url with a base path"
ok bot webhook loja_a_bot --url "https://bots.example.com:8443"
[ -z "$ERR" ] || rt_fail "port 8443 warned: $ERR"
ok bot webhook loja_a_bot --url "http://127.0.0.1:$CAP_PORT"
SECRET3=$(delivered_secret /telegram/loja_a_bot)
rt_assert_eq "$(sha "$SECRET3")" "$(stored_hash)" "third secret's hash stored"

# Telegram unreachable: one line, nothing changed.
before=$(snapshot)
RASTRO_TELEGRAM_API_URL="http://127.0.0.1:$(rt_free_port)" bad 1 "nothing was changed" bot webhook loja_a_bot --url https://bots.example.com
RASTRO_TELEGRAM_API_URL="http://127.0.0.1:$(rt_free_port)" bad 1 "nothing was changed" bot webhook loja_a_bot --delete
rt_assert_eq "$before" "$(snapshot)" "a failed setWebhook/deleteWebhook changes nothing"

ok bot webhook @loja_a_bot --delete
contains "$OUT" "webhook deleted" "bot webhook --delete output"
rt_assert_eq 1 "$(fake_calls deleteWebhook | wc -l)" "deleteWebhook called once"
rt_assert_eq "polling||" \
  "$(rt_psql "SELECT update_mode, webhook_url, webhook_secret_hash FROM bots WHERE username = 'loja_a_bot'")" \
  "--delete reverts to polling"

# ---- help ------------------------------------------------------------------------

rt_log "help"
ok --help
contains "$OUT" "offer" "rastro --help lists offer"
contains "$OUT" "gateway" "rastro --help lists gateway"
ok bot --help
contains "$OUT" "rastro bot webhook <username>" "bot --help lists webhook"
ok bot webhook --help;   contains "$OUT" "--delete" "bot webhook --help"
ok offer --help;         contains "$OUT" "usage: rastro offer" "offer --help"
ok gateway --help;       contains "$OUT" "usage: rastro gateway" "gateway --help"
for sub in add list set enable disable; do ok offer $sub --help; contains "$OUT" "usage: rastro offer $sub" "offer $sub --help"; done
for sub in set list remove; do ok gateway $sub --help; contains "$OUT" "usage: rastro gateway $sub" "gateway $sub --help"; done
run offer
[ $RC -eq 2 ] || rt_fail "'rastro offer' without a subcommand: exit $RC, expected 2"
run bot
[ $RC -eq 2 ] || rt_fail "'rastro bot' without a subcommand: exit $RC, expected 2"
contains "$ERR" "bot webhook" "'rastro bot' lists webhook on stderr"

# ---- secrets never leak -------------------------------------------------------------

rt_log "secrets"
pg_dump "$RASTRO_DATABASE_URL" >"$RT_DIR/dump.sql" || rt_fail "pg_dump failed"
grep -q 'Grupo VIP' "$RT_DIR/dump.sql" || rt_fail "pg_dump does not hold the offers at all"
for secret in "$MP_TOKEN" "$MP_WHSEC" "$PP_TOKEN" "$PP_WHTOKEN" "$SP_SECRET" "$SECRET1" "$SECRET2" \
              "$SECRET3" "$TG_A" "$TG_B" "${TG_A#*:}" "${TG_B#*:}"; do
  if grep -qF -- "$secret" "$RT_DIR/dump.sql"; then rt_fail "a secret is in pg_dump"; fi
  if grep -qF -- "$secret" "$RT_DIR"/cmd-*.out "$RT_DIR"/cmd-*.err; then
    rt_fail "a secret is in the output of a command: $(grep -lF -- "$secret" "$RT_DIR"/cmd-* | head -3)"
  fi
  if grep -qF -- "$secret" "$RT_DIR"/bg-*.log; then rt_fail "a secret is in the fake's log"; fi
done
hex=$(printf '%s' "$PP_TOKEN" | od -An -tx1 | tr -d ' \n')
if grep -qi -- "$hex" "$RT_DIR/dump.sql"; then rt_fail "a credential is in pg_dump as hex"; fi

rt_log "ok ($N commands)"
