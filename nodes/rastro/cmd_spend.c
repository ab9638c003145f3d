/*  cmd_spend — `rastro adaccount ...` and `rastro spend ...`: what was spent.

    Ad accounts (issue 5 §2): a Meta ad account whose spend per campaign and
    day the optimizer node reads from the Insights API (lib/rst_spendsync.c)
    with the account's own token. `adaccount add` reads the token from a
    file (never from the command line), checks its shape, asks Meta once for
    today's spend with it (unless --no-check: Meta may be unreachable from
    where the command runs), seals it with the master key and stores it in
    ad_accounts.token_enc. No token is ever printed: `list` says "set" or
    "refused" (Meta answered 190: `adaccount set --token-file` stores a new
    one). `list` also shows the sync state: last sync, usage, throttling and
    the last error.

    Manual spend: `spend set <pool> <day> <amount>` records what a seller
    without an ad account token spent for a pool on a day (0 clears it), and
    `spend list` shows every spend, Meta's per campaign and the manual one
    per pool (the view spend_daily, schemas/sql/007_spend.sql).

    Conventions as in cmd_admin.c: arguments checked before anything is
    touched (exit 2), one statement or transaction (exit 1 on failure, one
    line on stderr), one confirming line or a table.
*/
#include "commands.h"
#include "rst_insights.h"
#include "rst_secret.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_TOKEN_FILE_MAX   4096    //  bytes; Meta tokens are a few hundred
#define S_CHECK_TIMEOUT_MS 15000   //  the token check's Insights call
#define S_AMOUNT_SQL(col)  "(" col " / 100) || '.' || lpad ((" col " % 100)::text, 2, '0')"

//  ---------------------------------------------------------------------------
//  Arguments

//  An ad account as typed: "act_123" or "123" → "123" in OUT. Returns
//  CMD_OK, or CMD_USAGE after printing why.
static int
s_account_arg (const char *arg, char *out, size_t outlen)
{
    const char *id = !strncmp (arg, "act_", 4) ? arg + 4 : arg;
    if (!cmd_is_number (id, RST_INSIGHTS_ID_MAX))
        return cmd_fail (CMD_USAGE, "'%s' is not an ad account id (act_<digits> or the digits, "
                         "as in Ads Manager)", arg);
    snprintf (out, outlen, "%s", id);
    return CMD_OK;
}

static int
s_campaign_key_arg (const char *key)
{
    if (key && strcmp (key, "id") && strcmp (key, "name"))
        return cmd_fail (CMD_USAGE, "--campaign-key must be id (the ads' URLs carry "
                         "utm_campaign={{campaign.id}}) or name ({{campaign.name}}), not '%s'",
                         key);
    return CMD_OK;
}

//  Reads the token in PATH into a new buffer *TOKEN_P (the caller wipes and
//  frees it: s_token_free): the file's content without surrounding
//  whitespace, one word of printable ASCII. Returns CMD_OK, or CMD_USAGE
//  after printing why (the content is never printed).
static int
s_read_token (const char *path, char **token_p)
{
    *token_p = malloc (S_TOKEN_FILE_MAX + 2);
    if (!*token_p)
        return cmd_fail (CMD_FAIL, "out of memory");
    int rc = cmd_read_token_file (path, *token_p, S_TOKEN_FILE_MAX + 2);
    if (rc) {
        free (*token_p);        //  wiped by cmd_read_token_file
        *token_p = NULL;
    }
    return rc;
}

static void
s_token_free (char **token_p)
{
    if (*token_p) {
        sodium_memzero (*token_p, strlen (*token_p));
        free (*token_p);
        *token_p = NULL;
    }
}

//  Asks Meta once for today's spend of ACCOUNT with TOKEN (DAY, the owner's
//  today). Returns CMD_OK (the token works, or Meta is throttling the
//  account: it knows the token), or CMD_FAIL after printing why.
static int
s_check_token (const rst_config_t *cfg, const char *account, const char *token, const char *day)
{
    char err[CMD_ERR_MAX];
    rst_insights_t *client = rst_insights_new (cfg->meta_graph_url, cfg->meta_api_version,
                                               S_CHECK_TIMEOUT_MS, err, sizeof err);
    if (!client)
        return cmd_fail (CMD_FAIL, "%s", err);
    rst_insights_report_t rep = {0};
    rst_insights_result_t r;
    rst_insights_fetch (client, account, token, day, day, &rep, &r);
    rst_insights_report_destroy (&rep);
    rst_insights_destroy (&client);
    switch (r.status) {
    case RST_INSIGHTS_OK:
    case RST_INSIGHTS_THROTTLED:
        return CMD_OK;
    case RST_INSIGHTS_TOKEN:
        return cmd_fail (CMD_FAIL, "Meta refused the token of act_%s (%s): check the token file",
                         account, r.message);
    case RST_INSIGHTS_REJECTED:
        return cmd_fail (CMD_FAIL, "Meta refused to read act_%s with this token (%s): check the "
                         "account id and the token's ads_read permission", account, r.message);
    default:
        return cmd_fail (CMD_FAIL, "could not check the token with Meta (%s): try again, or "
                         "store it unchecked with --no-check", r.message);
    }
}

//  The owner's today (YYYY-MM-DD) into DAY (11 bytes). Returns CMD_OK or CMD_FAIL.
static int
s_owner_today (PGconn *conn, const cmd_owner_t *owner, char *day)
{
    const char *params[] = {owner->id};
    char err[CMD_ERR_MAX];
    PGresult *res = cmd_query (conn,
                               "SELECT (now () AT TIME ZONE rastro_timezone (timezone))::date::text"
                               " FROM users WHERE id = $1",
                               1, params, NULL, NULL, NULL, err, sizeof err);
    if (!res)
        return cmd_fail (CMD_FAIL, "%s", err);
    int ok = PQntuples (res) == 1;
    if (ok)
        snprintf (day, 11, "%s", PQgetvalue (res, 0, 0));
    PQclear (res);
    return ok ? CMD_OK : cmd_fail (CMD_FAIL, "user %s vanished", owner->email);
}

//  ---------------------------------------------------------------------------
//  rastro adaccount

static int
s_adaccount_add (int argc, char **argv, const rst_config_t *cfg)
{
    const char *arg, *token_file = NULL, *key = NULL, *owner_email = NULL;
    int no_check = 0;
    const cmd_optdef_t opts[] = {CMD_OPT ("--token-file", &token_file),
                                 CMD_OPT ("--campaign-key", &key),
                                 CMD_OPT ("--owner", &owner_email),
                                 CMD_FLAG ("--no-check", &no_check),
                                 CMD_OPT_END};
    int rc = cmd_parse (argc, argv, opts, &arg, 0, 1,
                        "adaccount add takes one ad account id (see --help)");
    if (rc)
        return rc;
    if (!arg)
        return cmd_fail (CMD_USAGE, "adaccount add needs the ad account id, e.g. act_1234567890");
    char account[RST_INSIGHTS_ID_MAX + 1];
    if ((rc = s_account_arg (arg, account, sizeof account)))
        return rc;
    if (!token_file)
        return cmd_fail (CMD_USAGE, "adaccount add needs --token-file FILE, a file holding an "
                         "access token with ads_read on the account");
    if ((rc = s_campaign_key_arg (key)) || (rc = cmd_check_owner (owner_email)))
        return rc ? rc : CMD_USAGE;
    if (!key)
        key = "id";

    char *token = NULL, *sealed = NULL;
    if ((rc = s_read_token (token_file, &token)))
        return rc;
    PGconn *conn = cmd_open_db (cfg);
    if (!conn) {
        rc = CMD_FAIL;
        goto done;
    }
    cmd_owner_t owner;
    if ((rc = cmd_resolve_owner (conn, owner_email, &owner)))
        goto done;
    //  Known already: say so before asking Meta anything.
    const char *known_params[] = {owner.id, account};
    char err[CMD_ERR_MAX], state[6];
    PGresult *res = cmd_query (conn, "SELECT 1 FROM ad_accounts WHERE owner_id = $1"
                               " AND account_id = $2", 2, known_params, NULL, NULL, NULL, err,
                               sizeof err);
    if (!res) {
        rc = cmd_fail (CMD_FAIL, "%s", err);
        goto done;
    }
    int known = PQntuples (res) > 0;
    PQclear (res);
    if (known) {
        rc = cmd_fail (CMD_FAIL, "ad account act_%s already exists for %s (`rastro adaccount set "
                       "act_%s --token-file F` replaces its token)", account, owner.email,
                       account);
        goto done;
    }
    char today[11];
    if (!no_check && ((rc = s_owner_today (conn, &owner, today))
                      || (rc = s_check_token (cfg, account, token, today))))
        goto done;
    sealed = cmd_seal (cfg, token, strlen (token), "token");
    if (!sealed) {
        rc = CMD_FAIL;
        goto done;
    }
    const char *params[] = {owner.id, account, sealed, key};
    res = cmd_query (conn,
                               "INSERT INTO ad_accounts (owner_id, account_id, token_enc,"
                               " campaign_key) VALUES ($1, $2, $3::bytea, $4)",
                               4, params, NULL, NULL, state, err, sizeof err);
    if (!res) {
        rc = !strcmp (state, CMD_UNIQUE_VIOLATION)
                 ? cmd_fail (CMD_FAIL, "ad account act_%s already exists for %s (`rastro "
                             "adaccount set act_%s --token-file F` replaces its token)",
                             account, owner.email, account)
                 : cmd_fail (CMD_FAIL, "%s", err);
        goto done;
    }
    PQclear (res);
    printf ("ad account act_%s added for %s (token encrypted%s; campaigns go to pools by "
            "utm_campaign = campaign %s); the optimizer fetches its spend\n",
            account, owner.email, no_check ? ", not checked" : ", checked with Meta", key);
done:
    s_token_free (&token);
    free (sealed);
    PQfinish (conn);
    return rc;
}

static int
s_adaccount_list (int argc, char **argv, const rst_config_t *cfg)
{
    const char *owner_email = NULL;
    const cmd_optdef_t opts[] = {CMD_OPT ("--owner", &owner_email), CMD_OPT_END};
    int rc = cmd_parse (argc, argv, opts, NULL, 0, 0,
                        "adaccount list takes no arguments besides --owner (see --help)");
    if (rc || (rc = cmd_check_owner (owner_email)))
        return rc ? rc : CMD_USAGE;
    PGconn *conn = cmd_open_db (cfg);
    if (!conn)
        return CMD_FAIL;
    cmd_owner_t owner;
    const char *params[] = {NULL};
    if (owner_email) {
        if ((rc = cmd_find_user (conn, owner_email, &owner)))
            goto done;
        params[0] = owner.id;
    }
    char err[CMD_ERR_MAX];
    PGresult *res = cmd_query (
        conn,
        "SELECT 'act_' || a.account_id AS \"ACCOUNT\", u.email AS \"OWNER\","
        " a.campaign_key AS \"KEY\", CASE WHEN a.enabled THEN 'yes' ELSE 'no' END AS \"ENABLED\","
        " CASE WHEN a.token_invalid THEN 'refused' ELSE 'set' END AS \"TOKEN\","
        " a.currency AS \"CURRENCY\", a.usage_pct || '%' AS \"USAGE\","
        " to_char (a.last_sync_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') AS \"LAST SYNC (UTC)\","
        " CASE WHEN a.throttled_until > now () THEN to_char (a.throttled_until AT TIME ZONE 'UTC',"
        "   'YYYY-MM-DD HH24:MI:SS') END AS \"THROTTLED UNTIL (UTC)\","
        " (SELECT count (*) FROM campaign_spend s WHERE s.ad_account_ref = a.id) AS \"ROWS\","
        " a.last_error AS \"LAST ERROR\""
        " FROM ad_accounts a JOIN users u ON u.id = a.owner_id"
        " WHERE $1::bigint IS NULL OR a.owner_id = $1 ORDER BY u.id, a.id",
        1, params, NULL, NULL, NULL, err, sizeof err);
    if (!res) {
        rc = cmd_fail (CMD_FAIL, "%s", err);
        goto done;
    }
    cmd_print_table (res, "no ad accounts yet: add one with `rastro adaccount add <act_id> "
                          "--token-file F`");
    PQclear (res);
done:
    PQfinish (conn);
    return rc;
}

static int
s_adaccount_remove (int argc, char **argv, const rst_config_t *cfg)
{
    const char *arg, *owner_email = NULL;
    const cmd_optdef_t opts[] = {CMD_OPT ("--owner", &owner_email), CMD_OPT_END};
    int rc = cmd_parse (argc, argv, opts, &arg, 1, 1,
                        "adaccount remove takes one ad account id (see --help)");
    if (rc)
        return rc;
    char account[RST_INSIGHTS_ID_MAX + 1];
    if ((rc = s_account_arg (arg, account, sizeof account)) || (rc = cmd_check_owner (owner_email)))
        return rc ? rc : CMD_USAGE;
    PGconn *conn = cmd_open_db (cfg);
    if (!conn)
        return CMD_FAIL;
    cmd_owner_t owner;
    if ((rc = cmd_resolve_owner (conn, owner_email, &owner)))
        goto done;
    const char *params[] = {owner.id, account};
    char err[CMD_ERR_MAX];
    PGresult *res = cmd_query (conn,
                               "WITH d AS (DELETE FROM ad_accounts WHERE owner_id = $1"
                               "  AND account_id = $2 RETURNING id)"
                               " SELECT (SELECT count (*) FROM campaign_spend s, d"
                               "  WHERE s.ad_account_ref = d.id) FROM d",
                               2, params, NULL, NULL, NULL, err, sizeof err);
    if (!res) {
        rc = cmd_fail (CMD_FAIL, "%s", err);
        goto done;
    }
    if (PQntuples (res) != 1)
        rc = cmd_fail (CMD_FAIL, "no ad account act_%s for %s (`rastro adaccount list` shows "
                       "them)", account, owner.email);
    else
        printf ("ad account act_%s removed, with its %s spend rows\n", account,
                PQgetvalue (res, 0, 0));
    PQclear (res);
done:
    PQfinish (conn);
    return rc;
}

static int
s_adaccount_set (int argc, char **argv, const rst_config_t *cfg)
{
    const char *arg, *token_file = NULL, *key = NULL, *owner_email = NULL;
    int enable = 0, disable = 0, no_check = 0;
    const cmd_optdef_t opts[] = {CMD_OPT ("--token-file", &token_file),
                                 CMD_OPT ("--campaign-key", &key),
                                 CMD_FLAG ("--enable", &enable),
                                 CMD_FLAG ("--disable", &disable),
                                 CMD_FLAG ("--no-check", &no_check),
                                 CMD_OPT ("--owner", &owner_email),
                                 CMD_OPT_END};
    int rc = cmd_parse (argc, argv, opts, &arg, 1, 1,
                        "adaccount set takes one ad account id (see --help)");
    if (rc)
        return rc;
    char account[RST_INSIGHTS_ID_MAX + 1];
    if ((rc = s_account_arg (arg, account, sizeof account)) || (rc = s_campaign_key_arg (key))
        || (rc = cmd_check_owner (owner_email)))
        return rc ? rc : CMD_USAGE;
    if (enable && disable)
        return cmd_fail (CMD_USAGE, "--enable and --disable exclude each other");
    if (!token_file && !key && !enable && !disable)
        return cmd_fail (CMD_USAGE, "adaccount set needs --token-file F, --campaign-key id|name, "
                         "--enable or --disable");
    char *token = NULL, *sealed = NULL;
    if (token_file && (rc = s_read_token (token_file, &token)))
        return rc;
    PGconn *conn = cmd_open_db (cfg);
    if (!conn) {
        rc = CMD_FAIL;
        goto done;
    }
    cmd_owner_t owner;
    if ((rc = cmd_resolve_owner (conn, owner_email, &owner)))
        goto done;
    if (token) {
        char today[11];
        if (!no_check && ((rc = s_owner_today (conn, &owner, today))
                          || (rc = s_check_token (cfg, account, token, today))))
            goto done;
        if (!(sealed = cmd_seal (cfg, token, strlen (token), "token"))) {
            rc = CMD_FAIL;
            goto done;
        }
    }
    if ((rc = cmd_exec (conn, "BEGIN")))
        goto done;
    const char *params[] = {owner.id, account, sealed, key, enable ? "t" : disable ? "f" : NULL};
    char err[CMD_ERR_MAX];
    //  A new campaign key makes every stored row's utm_campaign (and pool)
    //  wrong: they go, and the account is fetched again from the start. A
    //  new token clears the refusal; any change makes the account due now.
    PGresult *res = cmd_query (
        conn,
        "WITH old AS (SELECT id, campaign_key FROM ad_accounts"
        "   WHERE owner_id = $1 AND account_id = $2 FOR UPDATE),"
        " wipe AS (DELETE FROM campaign_spend s USING old"
        "   WHERE s.ad_account_ref = old.id AND $4::text IS NOT NULL"
        "   AND $4::text <> old.campaign_key)"
        " UPDATE ad_accounts a SET"
        "  token_enc = coalesce ($3::bytea, a.token_enc),"
        "  token_invalid = CASE WHEN $3::bytea IS NULL THEN a.token_invalid ELSE false END,"
        "  last_error = CASE WHEN $3::bytea IS NULL THEN a.last_error END,"
        "  campaign_key = coalesce ($4, a.campaign_key),"
        "  backfilled_at = CASE WHEN $4::text <> old.campaign_key THEN NULL"
        "    ELSE a.backfilled_at END,"
        "  closed_through = CASE WHEN $4::text <> old.campaign_key THEN NULL"
        "    ELSE a.closed_through END,"
        "  enabled = coalesce ($5::boolean, a.enabled),"
        "  next_sync_at = NULL, failures = 0"
        " FROM old WHERE a.id = old.id",
        5, params, NULL, NULL, NULL, err, sizeof err);
    if (!res) {
        cmd_rollback (conn);
        rc = cmd_fail (CMD_FAIL, "%s", err);
        goto done;
    }
    int found = !strcmp (PQcmdTuples (res), "1");
    PQclear (res);
    if (!found) {
        cmd_rollback (conn);
        rc = cmd_fail (CMD_FAIL, "no ad account act_%s for %s: add it first with `rastro "
                       "adaccount add act_%s --token-file F`", account, owner.email, account);
        goto done;
    }
    if ((rc = cmd_exec (conn, "COMMIT")))
        goto done;
    printf ("ad account act_%s updated:%s%s%s%s%s\n", account,
            token ? (no_check ? " new token (not checked)" : " new token (checked with Meta)")
                  : "",
            key ? " campaign key " : "", key ? key : "", enable ? " enabled" : "",
            disable ? " disabled" : "");
done:
    s_token_free (&token);
    free (sealed);
    PQfinish (conn);
    return rc;
}

static const cmd_sub_t s_adaccount_subs[] = {
    {"add", s_adaccount_add,
     "adaccount add <act_id> --token-file F [--campaign-key id|name] [--no-check] [--owner EMAIL]",
     "Adds a Meta ad account whose spend per campaign and day the optimizer reads\n"
     "from the Insights API (its last 30 days at once, then today's every few minutes).\n\n"
     "  <act_id>              the ad account, act_<digits> or the digits (Ads Manager)\n"
     "  --token-file F        file holding an access token with ads_read on the account\n"
     "                        (encrypted before it is stored; never printed)\n"
     "  --campaign-key K      how the ads' URLs name the campaign in utm_campaign:\n"
     "                        id ({{campaign.id}}, default) or name ({{campaign.name}});\n"
     "                        a campaign's spend goes to the pool its clicks came to\n"
     "  --no-check            store the token without asking Meta first (by default one\n"
     "                        Insights call for today checks it)\n"
     "  --owner EMAIL         the owning user (default: the only user)\n"},
    {"list", s_adaccount_list, "adaccount list [--owner EMAIL]",
     "Lists the ad accounts and their sync state: the token (\"set\", or \"refused\"\n"
     "when Meta said it is invalid or expired), the highest usage percentage Meta\n"
     "reported, the last sync, until when Meta throttles the account, the spend rows\n"
     "stored and the last error.\n"},
    {"remove", s_adaccount_remove, "adaccount remove <act_id> [--owner EMAIL]",
     "Removes an ad account and the spend read from it.\n"},
    {"set", s_adaccount_set,
     "adaccount set <act_id> [--token-file F] [--campaign-key id|name] [--enable|--disable] "
     "[--no-check] [--owner EMAIL]",
     "Changes an ad account. The account is fetched again at once.\n\n"
     "  --token-file F        a new token (after Meta refused the old one); checked with\n"
     "                        one Insights call unless --no-check\n"
     "  --campaign-key K      id or name; its spend rows are read again from the start\n"
     "  --enable, --disable   whether the optimizer reads it\n"
     "  --owner EMAIL         the owning user (default: the only user)\n"},
    {NULL, NULL, NULL, NULL},
};

const cmd_group_t cmd_adaccount_group = {
    .name = "adaccount",
    .summary = "Meta ad accounts whose spend per campaign and day the optimizer reads; their "
               "tokens are encrypted at rest.",
    .subs = s_adaccount_subs,
};

//  ---------------------------------------------------------------------------
//  rastro spend

static int
s_day_arg (const char *what, const char *day)
{
    if (!rst_insights_is_day (day))
        return cmd_fail (CMD_USAGE, "%s '%s' is not a day written YYYY-MM-DD", what, day);
    return CMD_OK;
}

static int
s_spend_set (int argc, char **argv, const rst_config_t *cfg)
{
    const char *pos[3], *owner_email = NULL;
    const cmd_optdef_t opts[] = {CMD_OPT ("--owner", &owner_email), CMD_OPT_END};
    int rc = cmd_parse (argc, argv, opts, pos, 3, 3,
                        "spend set takes a pool, a day and an amount (see --help)");
    if (rc)
        return rc;
    const char *slug = pos[0], *day = pos[1], *amount = pos[2];
    if (!cmd_is_word (slug, 1, 64, "_-"))
        return cmd_fail (CMD_USAGE, "'%s' is not a pool slug", slug);
    if ((rc = s_day_arg ("the day", day)) || (rc = cmd_check_owner (owner_email)))
        return rc ? rc : CMD_USAGE;
    int64_t cents;
    if (rst_insights_cents (amount, 2, 1, &cents))
        return cmd_fail (CMD_USAGE, "'%s' is not an amount in reais: write it like 123.45 or "
                         "123,45 (at most 2 decimals; 0 clears)", amount);
    PGconn *conn = cmd_open_db (cfg);
    if (!conn)
        return CMD_FAIL;
    cmd_owner_t owner;
    const char *owner_id = NULL;
    if (owner_email) {
        if ((rc = cmd_find_user (conn, owner_email, &owner)))
            goto done;
        owner_id = owner.id;
    }
    char text[24];
    snprintf (text, sizeof text, "%" PRId64, cents);
    const char *params[] = {slug, day, text, owner_id};
    char err[CMD_ERR_MAX];
    //  The pool says whose spend it is; --owner, when given, must agree.
    PGresult *res = cmd_query (
        conn,
        "WITH p AS (SELECT p.id, p.owner_id, u.email FROM pools p JOIN users u ON u.id = p.owner_id"
        "   WHERE p.slug = $1),"
        " del AS (DELETE FROM manual_spend m USING p WHERE $3::bigint = 0"
        "   AND ($4::bigint IS NULL OR p.owner_id = $4)"
        "   AND m.owner_id = p.owner_id AND m.pool_id = p.id AND m.day = $2::date),"
        " ins AS (INSERT INTO manual_spend (owner_id, pool_id, day, amount_cents)"
        "   SELECT p.owner_id, p.id, $2::date, $3::bigint FROM p"
        "    WHERE $3::bigint > 0 AND ($4::bigint IS NULL OR p.owner_id = $4)"
        "   ON CONFLICT (owner_id, pool_id, day) DO UPDATE"
        "    SET amount_cents = EXCLUDED.amount_cents, updated_at = now ())"
        " SELECT email, $4::bigint IS NULL OR owner_id = $4 FROM p",
        4, params, NULL, NULL, NULL, err, sizeof err);
    if (!res) {
        rc = cmd_fail (CMD_FAIL, "%s", err);
        goto done;
    }
    if (PQntuples (res) != 1)
        rc = cmd_fail (CMD_FAIL, "no pool %s (`rastro pool list` shows them)", slug);
    else if (strcmp (PQgetvalue (res, 0, 1), "t"))
        rc = cmd_fail (CMD_FAIL, "pool %s belongs to %s, not to %s", slug, PQgetvalue (res, 0, 0),
                       owner.email);
    else if (cents == 0)
        printf ("manual spend of pool %s on %s cleared\n", slug, day);
    else
        printf ("manual spend of pool %s on %s: %" PRId64 ".%02d (%s)\n", slug, day, cents / 100,
                (int) (cents % 100), PQgetvalue (res, 0, 0));
    PQclear (res);
done:
    PQfinish (conn);
    return rc;
}

static int
s_spend_list (int argc, char **argv, const rst_config_t *cfg)
{
    const char *from = NULL, *to = NULL, *owner_email = NULL;
    const cmd_optdef_t opts[] = {CMD_OPT ("--from", &from), CMD_OPT ("--to", &to),
                                 CMD_OPT ("--owner", &owner_email), CMD_OPT_END};
    int rc = cmd_parse (argc, argv, opts, NULL, 0, 0,
                        "spend list takes only --from, --to and --owner (see --help)");
    if (rc)
        return rc;
    if ((from && (rc = s_day_arg ("--from", from))) || (to && (rc = s_day_arg ("--to", to))))
        return rc;
    if (from && to && strcmp (from, to) > 0)
        return cmd_fail (CMD_USAGE, "--from %s is after --to %s", from, to);
    if (cmd_check_owner (owner_email))
        return CMD_USAGE;
    PGconn *conn = cmd_open_db (cfg);
    if (!conn)
        return CMD_FAIL;
    cmd_owner_t owner;
    const char *params[] = {NULL, from, to};
    if (owner_email) {
        if ((rc = cmd_find_user (conn, owner_email, &owner)))
            goto done;
        params[0] = owner.id;
    }
    char err[CMD_ERR_MAX];
    PGresult *res = cmd_query (
        conn,
        "WITH r AS (SELECT u.id, u.email,"
        "   (now () AT TIME ZONE rastro_timezone (u.timezone))::date AS today FROM users u"
        "   WHERE $1::bigint IS NULL OR u.id = $1),"
        " s AS (SELECT s.day, r.email, s.source, s.pool_id, s.utm_campaign,"
        "   sum (s.amount_cents) AS cents, r.id AS owner"
        "   FROM spend_daily s JOIN r ON r.id = s.owner_id"
        "   WHERE s.day BETWEEN coalesce ($2::date, coalesce ($3::date, r.today) - 29)"
        "     AND coalesce ($3::date, r.today)"
        "   GROUP BY 1, 2, 3, 4, 5, 7)"
        " SELECT s.day::text AS \"DAY\", s.email AS \"OWNER\", s.source AS \"SOURCE\","
        "  CASE WHEN s.pool_id = 0 THEN '-' ELSE coalesce (p.slug, '#' || s.pool_id) END AS \"POOL\","
        "  CASE WHEN s.source = 'meta' THEN s.utm_campaign END AS \"CAMPAIGN\","
        "  " S_AMOUNT_SQL ("s.cents") " AS \"AMOUNT\""
        " FROM s LEFT JOIN pools p ON p.id = s.pool_id"
        " ORDER BY s.owner, s.day, s.source, s.pool_id, s.utm_campaign",
        3, params, NULL, NULL, NULL, err, sizeof err);
    if (!res) {
        rc = cmd_fail (CMD_FAIL, "%s", err);
        goto done;
    }
    cmd_print_table (res, "no spend in that range (Meta's comes from `rastro adaccount add`; "
                          "`rastro spend set` records it by hand)");
    PQclear (res);
done:
    PQfinish (conn);
    return rc;
}

static const cmd_sub_t s_spend_subs[] = {
    {"set", s_spend_set, "spend set <pool> <YYYY-MM-DD> <amount> [--owner EMAIL]",
     "Records what was spent for a pool on a day, by hand (for a seller without an ad\n"
     "account token). It replaces what was recorded for that pool and day.\n\n"
     "  <pool>                the pool's slug (its /go/<slug> link)\n"
     "  <YYYY-MM-DD>          the day, in the owner's time zone\n"
     "  <amount>              in reais: 123.45 or 123,45; 0 clears the day\n"
     "  --owner EMAIL         check that the pool is this user's\n"},
    {"list", s_spend_list, "spend list [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--owner EMAIL]",
     "Lists the spend per day: Meta's per campaign (with the pool its clicks went to,\n"
     "\"-\" when none yet) and the manual one per pool. Default: the last 30 days up\n"
     "to today (each owner's), or the 30 days up to --to.\n"},
    {NULL, NULL, NULL, NULL},
};

const cmd_group_t cmd_spend_group = {
    .name = "spend",
    .summary = "Ad spend: Meta's per campaign and day (rastro adaccount), and manual spend per "
               "pool and day.",
    .subs = s_spend_subs,
};
