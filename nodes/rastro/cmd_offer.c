/*  cmd_offer — `rastro offer add|list|set|enable|disable`: what a bot sells.

    An offer (table offers, 004_bots.sql) is one product of one bot: a name
    (the buy button's text), a price in centavos, and what the buyer gets
    once the PIX charge is paid: a one-person invite link to a private chat
    (--deliver-chat) or a text (--deliver-text). A bot's welcome message
    (HTML, optional photo) is stored per offer; the bots node sends it with
    a buy button per enabled offer.

    Like cmd_admin.c, every command checks all of its arguments before it
    touches anything (bad usage: one line, exit 2, nothing stored), then
    does its work in one transaction and prints one confirming line.

    Checks on outside input:
      price     BRL "19.90", "19,90", "19.9" or "20", at most two decimals,
                0.50 to 1000000.00, parsed to integer centavos (no floats)
      name      1 to 128 characters of UTF-8, no control characters
      delivery  exactly one of a group/channel id (negative int64) or a
                text of 1 to 4096 characters
      welcome   a UTF-8 file of 1 to 4096 bytes using only the HTML that
                Telegram's parse_mode=HTML accepts (rst_offer_check_html), tags
                balanced, '<' and '&' escaped
      photo     a PNG or JPEG (magic bytes), at most 10 MB, stored as is
      bot       exists and belongs to the owner (--owner, else the only user)

    Changing the photo forgets photo_file_id (Telegram's id of the old
    upload). Triggers NOTIFY rastro_config, so the bots node follows.
*/
#include "commands.h"
#include "rst_offer.h"
#include "rst_utf8.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_WELCOME_MAX   RST_OFFER_WELCOME_MAX   //  bytes of --welcome-file
#define S_PHOTO_MAX     (10 * 1024 * 1024)   //  bytes (Telegram's sendPhoto upload limit)
#define S_PRICE_MIN     RST_OFFER_PRICE_MIN     //  centavos
#define S_PRICE_MAX     RST_OFFER_PRICE_MAX     //  centavos: R$ 1,000,000.00
#define S_ID_DIGITS     18              //  an offer id fits in a bigint

//  ---------------------------------------------------------------------------
//  Checks

//  Parses a price in reais into *CENTS. Returns CMD_OK, or CMD_USAGE after
//  printing why.
static int
s_parse_price (const char *text, long *cents)
{
    const char *p = text;
    long whole = 0;
    int digits = 0;
    for (; *p >= '0' && *p <= '9'; p++, digits++)
        if (whole <= S_PRICE_MAX)           //  past it the value no longer matters
            whole = whole * 10 + (*p - '0');
    long frac = 0;
    int decimals = 0;
    int bad = digits == 0;
    if (*p == '.' || *p == ',') {
        for (p++; *p >= '0' && *p <= '9'; p++, decimals++)
            if (decimals < 2)
                frac = frac * 10 + (*p - '0');
        bad |= decimals == 0;
    }
    bad |= *p != 0;
    if (bad)
        return cmd_fail (CMD_USAGE, "--price '%s' is not a price in reais: write it like 19.90, "
                         "19,90 or 20", text);
    if (decimals > 2)
        return cmd_fail (CMD_USAGE, "--price '%s' has more than 2 decimals (centavos)", text);
    if (decimals == 1)
        frac *= 10;
    if (whole > S_PRICE_MAX / 100 || whole * 100 + frac > S_PRICE_MAX)
        return cmd_fail (CMD_USAGE, "--price '%s' is above the maximum, 1000000.00", text);
    if (whole * 100 + frac < S_PRICE_MIN)
        return cmd_fail (CMD_USAGE, "--price '%s' is below the minimum, 0.50", text);
    *cents = whole * 100 + frac;
    return CMD_OK;
}

//  Checks an offer name (rst_offer_check_name). Returns CMD_OK or
//  CMD_USAGE after printing why.
static int
s_check_name (const char *name)
{
    char err[CMD_ERR_MAX];
    if (rst_offer_check_name (name, "--name", err, sizeof err))
        return cmd_fail (CMD_USAGE, "%s", err);
    return CMD_OK;
}

//  Parses --deliver-chat: a group or channel id, a negative int64. Returns
//  CMD_OK or CMD_USAGE after printing why.
static int
s_check_chat (const char *text)
{
    char *end;
    errno = 0;
    long long id = text[0] == '-' ? strtoll (text, &end, 10) : 0;
    if (text[0] != '-' || errno || end == text + 1 || *end || !isdigit ((unsigned char) text[1]))
        return cmd_fail (CMD_USAGE, "--deliver-chat '%s' is not a group or channel id: it is "
                         "negative, e.g. -1001234567890 (the bot must be an admin there)", text);
    if (id == 0)
        return cmd_fail (CMD_USAGE, "--deliver-chat '%s' is not a chat id", text);
    return CMD_OK;
}

//  Checks --deliver-text (rst_offer_check_text). Returns CMD_OK or
//  CMD_USAGE after printing why.
static int
s_check_text (const char *text)
{
    char err[CMD_ERR_MAX];
    if (rst_offer_check_text (text, "--deliver-text", err, sizeof err))
        return cmd_fail (CMD_USAGE, "%s", err);
    return CMD_OK;
}

//  Reads and checks --welcome-file PATH into *HTML_P (the caller's, free()):
//  trailing whitespace (the file's last newline) is dropped. Returns
//  CMD_OK or CMD_USAGE after printing why.
static int
s_read_welcome (const char *path, char **html_p)
{
    size_t len;
    int rc = cmd_read_file (path, "--welcome-file", S_WELCOME_MAX, html_p, &len);
    if (rc)
        return rc;
    char *html = *html_p, err[CMD_ERR_MAX];
    if (memchr (html, 0, len) || rst_utf8_chars (html, len) < 0)
        rc = cmd_fail (CMD_USAGE, "--welcome-file %s is not UTF-8 text", path);
    else {
        while (len > 0 && isspace ((unsigned char) html[len - 1]))
            html[--len] = 0;
        if (rst_offer_check_html (html, err, sizeof err))
            rc = cmd_fail (CMD_USAGE, "--welcome-file %s: %s", path, err);
    }
    if (rc) {
        free (html);
        *html_p = NULL;
    }
    return rc;
}

//  Reads --photo PATH into *DATA_P / *LEN_P (the caller's, free()): a PNG
//  or a JPEG. Returns CMD_OK or CMD_USAGE after printing why.
static int
s_read_photo (const char *path, char **data_p, size_t *len_p)
{
    int rc = cmd_read_file (path, "--photo", S_PHOTO_MAX, data_p, len_p);
    if (rc)
        return rc;
    static const unsigned char png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    static const unsigned char jpeg[] = {0xFF, 0xD8, 0xFF};
    const unsigned char *d = (const unsigned char *) *data_p;
    if ((*len_p > sizeof png && !memcmp (d, png, sizeof png))
        || (*len_p > sizeof jpeg && !memcmp (d, jpeg, sizeof jpeg)))
        return CMD_OK;
    free (*data_p);
    *data_p = NULL;
    return cmd_fail (CMD_USAGE, "--photo %s is neither a PNG nor a JPEG image", path);
}

//  Parses an offer id. Returns CMD_OK or CMD_USAGE after printing why.
static int
s_check_id (const char *id)
{
    size_t n = strspn (id, "0123456789");
    if (n == 0 || n > S_ID_DIGITS || id[n] || strspn (id, "0") == n)
        return cmd_fail (CMD_USAGE, "'%s' is not an offer id (a number; `rastro offer list` "
                         "shows them)", id);
    return CMD_OK;
}

//  Formats CENTS as "19.90" into BUF.
static void
s_price_text (long cents, char *buf, size_t buflen)
{
    snprintf (buf, buflen, "%ld.%02ld", cents / 100, cents % 100);
}

//  ---------------------------------------------------------------------------
//  rastro offer add

//  The checked options of `offer add` and `offer set`.
typedef struct {
    const char *name;           //  NULL: not given
    const char *price;          //  as typed
    long cents;                 //  parsed price
    const char *chat;           //  --deliver-chat
    const char *text;           //  --deliver-text
    const char *welcome_file;
    const char *photo_file;
    int no_photo;               //  set: --no-photo
    int no_welcome;             //  set: --no-welcome
    char *welcome;              //  file content (owned)
    char *photo;                //  file content (owned)
    size_t photo_len;
} s_fields_t;

//  The options of `offer add` and `offer set` into the s_fields_t F.
#define S_FIELD_OPTS(f)                                                                        \
    CMD_OPT ("--name", &(f).name), CMD_OPT ("--price", &(f).price),                            \
        CMD_OPT ("--deliver-chat", &(f).chat), CMD_OPT ("--deliver-text", &(f).text),          \
        CMD_OPT ("--welcome-file", &(f).welcome_file), CMD_OPT ("--photo", &(f).photo_file)

static void
s_fields_free (s_fields_t *f)
{
    free (f->welcome);
    free (f->photo);
    f->welcome = f->photo = NULL;
}

//  Checks the fields that were given and reads their files. Returns CMD_OK
//  or CMD_USAGE after printing why (nothing to free then).
static int
s_fields_check (s_fields_t *f)
{
    int rc = CMD_OK;
    if (f->chat && f->text)
        return cmd_fail (CMD_USAGE, "--deliver-chat and --deliver-text exclude each other: an "
                         "offer delivers an invite link or a text");
    if (f->photo_file && f->no_photo)
        return cmd_fail (CMD_USAGE, "--photo and --no-photo exclude each other");
    if (f->welcome_file && f->no_welcome)
        return cmd_fail (CMD_USAGE, "--welcome-file and --no-welcome exclude each other");
    if ((f->name && (rc = s_check_name (f->name)))
        || (f->price && (rc = s_parse_price (f->price, &f->cents)))
        || (f->chat && (rc = s_check_chat (f->chat)))
        || (f->text && (rc = s_check_text (f->text))))
        return rc;
    if (f->welcome_file && (rc = s_read_welcome (f->welcome_file, &f->welcome)))
        return rc;
    if (f->photo_file && (rc = s_read_photo (f->photo_file, &f->photo, &f->photo_len))) {
        s_fields_free (f);
        return rc;
    }
    return CMD_OK;
}

//  Describes the delivery for messages into BUF.
static void
s_delivery_text (const s_fields_t *f, char *buf, size_t buflen)
{
    if (f->chat)
        snprintf (buf, buflen, "an invite link to chat %s", f->chat);
    else
        snprintf (buf, buflen, "a text of %ld characters",
                  rst_utf8_chars (f->text, strlen (f->text)));
}

static int
s_offer_add (int argc, char **argv, const rst_config_t *cfg)
{
    s_fields_t f = {0};
    const char *bot = NULL, *owner_email = NULL;
    const cmd_optdef_t opts[] = {S_FIELD_OPTS (f), CMD_OPT ("--bot", &bot),
                                 CMD_OPT ("--owner", &owner_email), CMD_OPT_END};
    int rc = cmd_parse (argc, argv, opts, NULL, 0, 0, "offer add takes no positional argument: "
                        "the bot goes in --bot, the name in --name (see --help)");
    if (rc)
        return rc;
    if (!bot)
        return cmd_fail (CMD_USAGE, "offer add needs --bot <username>, the bot that sells it "
                         "(`rastro bot list` shows them)");
    if (cmd_check_bot (&bot))
        return CMD_USAGE;
    if (!f.name)
        return cmd_fail (CMD_USAGE, "offer add needs --name NAME, the buy button's text");
    if (!f.price)
        return cmd_fail (CMD_USAGE, "offer add needs --price, in reais (e.g. --price 19.90)");
    if (!f.chat && !f.text)
        return cmd_fail (CMD_USAGE, "offer add needs --deliver-chat CHAT_ID (an invite to a "
                         "private group or channel) or --deliver-text TEXT");
    if (cmd_check_owner (owner_email))
        return CMD_USAGE;
    rc = s_fields_check (&f);
    if (rc)
        return rc;

    PGconn *conn = cmd_open_db (cfg);
    if (!conn) {
        s_fields_free (&f);
        return CMD_FAIL;
    }
    cmd_owner_t owner;
    rc = cmd_resolve_owner (conn, owner_email, &owner);
    if (rc)
        goto done;
    if (cmd_exec (conn, "BEGIN")) {
        rc = CMD_FAIL;
        goto done;
    }
    cmd_bot_t seller;
    rc = cmd_find_bot (conn, bot, &owner, CMD_LOCK_SHARE, &seller);
    if (rc)
        goto rollback;
    const char *username = seller.username;
    char cents[24];
    snprintf (cents, sizeof cents, "%ld", f.cents);
    const char *params[] = {owner.id, seller.id, f.name, cents, f.chat, f.text, f.welcome, f.photo};
    const int lengths[] = {0, 0, 0, 0, 0, 0, 0, (int) f.photo_len};
    const int formats[] = {0, 0, 0, 0, 0, 0, 0, 1};
    char err[CMD_ERR_MAX];
    PGresult *res = cmd_query (conn,
                               "INSERT INTO offers (owner_id, bot_id, name, price_cents,"
                               " deliver_chat_id, deliver_text, welcome_html, photo)"
                               " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id,"
                               " EXISTS (SELECT 1 FROM gateways g WHERE g.bot_id = $2)",
                               8, params, lengths, formats, NULL, err, sizeof err);
    if (!res) {
        rc = cmd_fail (CMD_FAIL, "%s", err);
        goto rollback;
    }
    char id[24];
    snprintf (id, sizeof id, "%s", PQgetvalue (res, 0, 0));
    int has_gateway = !strcmp (PQgetvalue (res, 0, 1), "t");
    PQclear (res);
    if (cmd_exec (conn, "COMMIT")) {
        rc = CMD_FAIL;
        goto rollback;
    }
    char price[32], delivery[96];
    s_price_text (f.cents, price, sizeof price);
    s_delivery_text (&f, delivery, sizeof delivery);
    printf ("offer %s added to @%s for %s: \"%s\", R$ %s, delivers %s%s%s\n", id, username,
            owner.email, f.name, price, delivery, f.welcome ? ", with a welcome" : "",
            f.photo ? " and a photo" : "");
    if (!has_gateway)
        fprintf (stderr, "rastro: note: @%s has no payment gateway yet: `rastro gateway set %s "
                 "<mercadopago|pushinpay|syncpay> --credentials-file F`\n", username, username);
    goto done;

rollback:
    cmd_rollback (conn);
done:
    s_fields_free (&f);
    PQfinish (conn);
    return rc;
}

//  ---------------------------------------------------------------------------
//  rastro offer list

//  FROM and WHERE of both list queries: $1 owner id, $2 bot id (either NULL).
#define S_LIST_FROM                                                                            \
    " FROM offers o JOIN bots b ON b.id = o.bot_id JOIN users u ON u.id = o.owner_id"          \
    " WHERE ($1::bigint IS NULL OR o.owner_id = $1) AND ($2::bigint IS NULL OR o.bot_id = $2)"
#define S_PRICE_SQL "(o.price_cents / 100) || '.' || lpad((o.price_cents % 100)::text, 2, '0')"

static int
s_offer_list (int argc, char **argv, const rst_config_t *cfg)
{
    const char *bot = NULL, *owner_email = NULL;
    int json = 0;
    const cmd_optdef_t opts[] = {CMD_OPT ("--bot", &bot),
                                 CMD_OPT ("--owner", &owner_email),
                                 CMD_FLAG ("--json", &json),
                                 CMD_OPT_END};
    int rc = cmd_parse (argc, argv, opts, NULL, 0, 0, "offer list takes no arguments besides "
                        "--bot, --owner and --json (see --help)");
    if (rc)
        return rc;
    if (cmd_check_bot (&bot))
        return CMD_USAGE;
    if (cmd_check_owner (owner_email))
        return CMD_USAGE;

    PGconn *conn = cmd_open_db (cfg);
    if (!conn)
        return CMD_FAIL;
    cmd_scope_t scope;
    rc = cmd_find_scope (conn, owner_email, bot, &scope);
    if (rc)
        goto done;
    const char *params[] = {scope.owner_id, scope.bot_id};
    char err[CMD_ERR_MAX];
    PGresult *res;
    if (json)
        res = cmd_query (conn,
                         "SELECT coalesce(json_agg(json_build_object("
                         " 'id', o.id, 'bot', b.username, 'owner', u.email, 'name', o.name,"
                         " 'price_cents', o.price_cents, 'price', " S_PRICE_SQL ","
                         " 'deliver_chat_id', o.deliver_chat_id, 'deliver_text', o.deliver_text,"
                         " 'welcome_html', o.welcome_html, 'photo_bytes', length(o.photo),"
                         " 'enabled', o.enabled, 'created_at',"
                         " to_char(o.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'))"
                         " ORDER BY u.id, b.username, o.id), '[]')" S_LIST_FROM,
                         2, params, NULL, NULL, NULL, err, sizeof err);
    else
        res = cmd_query (conn,
                         "SELECT o.id AS \"ID\", '@' || b.username AS \"BOT\","
                         " u.email AS \"OWNER\", o.name AS \"NAME\","
                         " " S_PRICE_SQL " AS \"PRICE (BRL)\","
                         " CASE WHEN o.deliver_chat_id IS NOT NULL"
                         "   THEN 'invite to ' || o.deliver_chat_id"
                         "   ELSE 'text (' || length(o.deliver_text) || ' chars)' END"
                         "   AS \"DELIVERS\","
                         " CASE WHEN o.welcome_html IS NOT NULL"
                         "   THEN length(o.welcome_html) || ' chars' END AS \"WELCOME\","
                         " CASE WHEN o.photo IS NOT NULL THEN length(o.photo) || ' bytes' END"
                         "   AS \"PHOTO\","
                         " CASE WHEN o.enabled THEN 'yes' ELSE 'no' END AS \"ENABLED\","
                         " to_char(o.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI')"
                         "   AS \"CREATED (UTC)\"" S_LIST_FROM
                         " ORDER BY u.id, b.username, o.id",
                         2, params, NULL, NULL, NULL, err, sizeof err);
    if (!res) {
        rc = cmd_fail (CMD_FAIL, "%s", err);
        goto done;
    }
    if (json)
        printf ("%s\n", PQgetvalue (res, 0, 0));
    else
        cmd_print_table (res, "no offers yet: add one with `rastro offer add --bot <username> "
                         "--name NAME --price 19.90 --deliver-chat CHAT_ID`");
    PQclear (res);
done:
    PQfinish (conn);
    return rc;
}

//  ---------------------------------------------------------------------------
//  rastro offer set|enable|disable

static int
s_offer_set (int argc, char **argv, const rst_config_t *cfg)
{
    s_fields_t f = {0};
    const char *id;
    const cmd_optdef_t opts[] = {S_FIELD_OPTS (f), CMD_FLAG ("--no-welcome", &f.no_welcome),
                                 CMD_FLAG ("--no-photo", &f.no_photo), CMD_OPT_END};
    int rc = cmd_parse (argc, argv, opts, &id, 0, 1, "offer set takes one offer id (see --help)");
    if (rc)
        return rc;
    if (!id)
        return cmd_fail (CMD_USAGE, "offer set needs the offer id (`rastro offer list` shows "
                         "them)");
    if ((rc = s_check_id (id)))
        return rc;
    if (!f.name && !f.price && !f.chat && !f.text && !f.welcome_file && !f.no_welcome
        && !f.photo_file && !f.no_photo)
        return cmd_fail (CMD_USAGE, "offer set needs something to change: --name, --price, "
                         "--deliver-chat, --deliver-text, --welcome-file, --no-welcome, --photo "
                         "or --no-photo");
    if ((rc = s_fields_check (&f)))
        return rc;

    PGconn *conn = cmd_open_db (cfg);
    if (!conn) {
        s_fields_free (&f);
        return CMD_FAIL;
    }
    char cents[24];
    snprintf (cents, sizeof cents, "%ld", f.cents);
    int delivery = f.chat || f.text, welcome = f.welcome_file || f.no_welcome,
        photo = f.photo_file || f.no_photo;
    const char *params[] = {id,
                            f.name,
                            f.price ? cents : NULL,
                            delivery ? "t" : "f",
                            f.chat,
                            f.text,
                            welcome ? "t" : "f",
                            f.welcome,
                            photo ? "t" : "f",
                            f.photo};
    const int lengths[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, (int) f.photo_len};
    const int formats[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    char err[CMD_ERR_MAX];
    PGresult *res = cmd_query (
        conn,
        "UPDATE offers SET name = coalesce($2, name),"
        " price_cents = coalesce($3::integer, price_cents),"
        " deliver_chat_id = CASE WHEN $4::boolean THEN $5::bigint ELSE deliver_chat_id END,"
        " deliver_text = CASE WHEN $4::boolean THEN $6 ELSE deliver_text END,"
        " welcome_html = CASE WHEN $7::boolean THEN $8 ELSE welcome_html END,"
        " photo = CASE WHEN $9::boolean THEN $10::bytea ELSE photo END,"
        " photo_file_id = CASE WHEN $9::boolean THEN NULL ELSE photo_file_id END"
        " WHERE id = $1 RETURNING (SELECT username FROM bots WHERE bots.id = offers.bot_id)",
        10, params, lengths, formats, NULL, err, sizeof err);
    if (!res)
        rc = cmd_fail (CMD_FAIL, "%s", err);
    else if (PQntuples (res) == 0)
        rc = cmd_fail (CMD_FAIL, "no offer %s (`rastro offer list` shows them)", id);
    else {
        printf ("offer %s of @%s updated:", id, PQgetvalue (res, 0, 0));
        const char *sep = " ";
        if (f.name) {
            printf ("%sname \"%s\"", sep, f.name);
            sep = ", ";
        }
        if (f.price) {
            char price[32];
            s_price_text (f.cents, price, sizeof price);
            printf ("%sprice R$ %s", sep, price);
            sep = ", ";
        }
        if (delivery) {
            char text[96];
            s_delivery_text (&f, text, sizeof text);
            printf ("%sdelivers %s", sep, text);
            sep = ", ";
        }
        if (welcome) {
            printf ("%s%s", sep, f.no_welcome ? "no welcome" : "new welcome");
            sep = ", ";
        }
        if (photo)
            printf ("%s%s", sep, f.no_photo ? "no photo" : "new photo");
        printf ("\n");
    }
    PQclear (res);
    s_fields_free (&f);
    PQfinish (conn);
    return rc;
}

//  `offer enable|disable <id>`: ARGV[0] says which.
static int
s_offer_enable (int argc, char **argv, const rst_config_t *cfg)
{
    int enable = !strcmp (argv[0], "enable");
    const char *id;
    int rc = cmd_parse (argc, argv, NULL, &id, 1, 1, "usage: rastro offer %s <id>   (`rastro "
                        "offer list` shows the ids)", argv[0]);
    if (rc)
        return rc;
    if ((rc = s_check_id (id)))
        return rc;
    const char *params[] = {id, enable ? "true" : "false"};
    PGresult *res = cmd_query_once (cfg,
                                    "UPDATE offers SET enabled = $2 WHERE id = $1 RETURNING"
                                    " (SELECT username FROM bots WHERE bots.id = offers.bot_id)",
                                    2, params);
    if (!res)
        return CMD_FAIL;
    if (PQntuples (res) == 0)
        rc = cmd_fail (CMD_FAIL, "no offer %s (`rastro offer list` shows them)", id);
    else
        printf ("offer %s of @%s %s\n", id, PQgetvalue (res, 0, 0),
                enable ? "enabled" : "disabled (its buy button is no longer shown)");
    PQclear (res);
    return rc;
}

static const cmd_sub_t s_offer_subs[] = {
    {"add", s_offer_add,
     "offer add --bot <username> --name NAME --price 19.90\n"
     "                   (--deliver-chat CHAT_ID | --deliver-text TEXT)\n"
     "                   [--welcome-file F] [--photo FILE] [--owner EMAIL]",
     "Adds something a bot sells. Its welcome message shows a buy button per\n"
     "enabled offer; a paid PIX charge delivers the offer.\n\n"
     "  --bot NAME          the selling bot (`rastro bot list`), the owner's\n"
     "  --name NAME         the buy button's text, 1 to 128 characters\n"
     "  --price P           in reais: 19.90, 19,90, 19.9 or 20; 0.50 to 1000000.00\n"
     "  --deliver-chat ID   deliver a one-person invite link to this private group\n"
     "                      or channel (its id, e.g. -1001234567890; the bot must\n"
     "                      be an admin there with the right to invite)\n"
     "  --deliver-text T    or deliver this text (1 to 4096 characters)\n"
     "  --welcome-file F    the welcome message, UTF-8, at most 4096 bytes, in\n"
     "                      Telegram's HTML: b, strong, i, em, u, ins, s, strike,\n"
     "                      del, span class=\"tg-spoiler\", tg-spoiler, a href,\n"
     "                      code, pre, blockquote; write &lt; &gt; &amp; for < > &\n"
     "  --photo FILE        a PNG or JPEG sent with the welcome (at most 10 MB)\n"
     "  --owner EMAIL       the owning user (default: the only user)\n\n"
     "example:\n"
     "  rastro offer add --bot loja_a_bot --name 'Grupo VIP' --price 19,90 \\\n"
     "      --deliver-chat -1001234567890 --welcome-file welcome.html --photo capa.jpg\n"},
    {"list", s_offer_list, "offer list [--bot <username>] [--owner EMAIL] [--json]",
     "Lists the offers (of one bot with --bot, of one user with --owner). --json\n"
     "prints them as a JSON array with every field (price_cents, welcome_html, ...).\n"},
    {"set", s_offer_set,
     "offer set <id> [--name NAME] [--price P] [--deliver-chat ID | --deliver-text T]\n"
     "                   [--welcome-file F | --no-welcome] [--photo FILE | --no-photo]",
     "Changes an offer (`rastro offer list` shows the ids); options as for\n"
     "`offer add`. A new delivery replaces the old one; --no-welcome and\n"
     "--no-photo remove them.\n"},
    {"enable", s_offer_enable, "offer enable <id>", "Shows a disabled offer's buy button again.\n"},
    {"disable", s_offer_enable, "offer disable <id>",
     "Stops selling an offer: its buy button is no longer shown (paid charges\n"
     "are still delivered).\n"},
    {NULL, NULL, NULL, NULL},
};

const cmd_group_t cmd_offer_group = {
    .name = "offer",
    .summary = "Offers are what a bot sells: a name, a price in reais and what a paid buyer gets.",
    .subs = s_offer_subs,
};
