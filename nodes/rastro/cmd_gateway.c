/*  cmd_gateway — `rastro gateway set|list|remove`: a bot's PIX gateway.

    Each bot charges through one gateway account (table gateways, one row
    per bot, 004_bots.sql): Mercado Pago, PushinPay or SyncPay, with the
    seller's credentials as a JSON object (the fields of lib/rst_gateway.h).

    Secrets: credentials come from a file (never the command line, where
    `ps` and shell history would see them), are checked with
    rst_gateway_credentials_check (whose errors name fields, never values),
    sealed with rst_secret under the master key and stored as bytea. The
    plaintext lives in one buffer that is wiped before it is freed. `list`
    opens them only to say which fields are set; no value is ever printed.

    The gateway belongs to the bot's owner. Every change NOTIFYs
    rastro_config, so the bots node and the front reload.
*/
#include "commands.h"
#include "rst_gateway.h"
#include "rst_secret.h"

#include <cjson/cJSON.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define S_CREDENTIALS_MAX (16 * 1024)   //  bytes of --credentials-file
#define S_FIELDS_MAX      256           //  the "which fields are set" text of one gateway

//  The credential fields rst_gateway.h documents per kind, in the order
//  `list` shows them. Other keys are only counted: a key is not supposed to
//  be secret, but nothing outside this list is printed, to be sure.
static const char *const s_fields[RST_GW_KINDS][5] = {
    [RST_GW_MERCADOPAGO] = {"access_token", "webhook_secret", "payer_email", NULL},
    [RST_GW_PUSHINPAY] = {"token", "webhook_token", NULL},
    [RST_GW_SYNCPAY] = {"client_id", "client_secret", "client", NULL},
};

//  ---------------------------------------------------------------------------
//  rastro gateway set

//  Warns when PATH can be read by other users than its owner.
static void
s_warn_mode (const char *path)
{
    struct stat st;
    if (stat (path, &st) == 0 && S_ISREG (st.st_mode) && (st.st_mode & (S_IRGRP | S_IROTH)))
        fprintf (stderr, "rastro: warning: %s is readable by other users: `chmod 600 %s` (or "
                 "delete it once the gateway is set)\n", path, path);
}

static int
s_gateway_set (int argc, char **argv, const rst_config_t *cfg)
{
    const char *args[2], *file = NULL;
    const cmd_optdef_t opts[] = {CMD_OPT ("--credentials-file", &file), CMD_OPT_END};
    int rc = cmd_parse (argc, argv, opts, args, 2, 2, "usage: rastro gateway set <username> "
                        "mercadopago|pushinpay|syncpay --credentials-file F");
    if (rc)
        return rc;
    const char *bot = cmd_bot_name (args[0]);
    if (!cmd_is_username (bot))
        return cmd_fail (CMD_USAGE, "'%s' is not a bot username (5 to 32 letters, digits or '_')",
                         args[0]);
    int kind = rst_gateway_kind_parse (args[1]);
    if (kind < 0)
        return cmd_fail (CMD_USAGE, "'%s' is not a gateway: use mercadopago, pushinpay or "
                         "syncpay", args[1]);
    if (!file)
        return cmd_fail (CMD_USAGE, "gateway set needs --credentials-file F, a JSON file with "
                         "the account's credentials (see --help)");
    char *json = NULL;
    size_t len = 0;
    rc = cmd_read_file (file, "--credentials-file", S_CREDENTIALS_MAX, &json, &len);
    if (rc)
        return rc;
    s_warn_mode (file);
    char err[CMD_ERR_MAX];
    char *sealed = NULL;
    PGconn *conn = NULL;
    if (memchr (json, 0, len)) {
        rc = cmd_fail (CMD_USAGE, "--credentials-file %s is binary: it should hold a JSON object",
                       file);
        goto done;
    }
    if (rst_gateway_credentials_check ((rst_gw_kind_t) kind, json, err, sizeof err)) {
        rc = cmd_fail (CMD_USAGE, "--credentials-file %s: %s", file, err);
        goto done;
    }
    conn = cmd_open_db (cfg);
    if (!conn) {
        rc = CMD_FAIL;
        goto done;
    }
    if (cmd_exec (conn, "BEGIN")) {
        rc = CMD_FAIL;
        goto done;
    }
    cmd_bot_t found;
    rc = cmd_find_bot (conn, bot, NULL, CMD_LOCK_UPDATE, &found);
    if (rc)
        goto rollback;
    sealed = cmd_seal (cfg, json, len, "credentials");
    if (!sealed) {
        rc = CMD_FAIL;
        goto rollback;
    }
    const char *params[] = {found.id, found.owner_id, rst_gateway_kind_name ((rst_gw_kind_t) kind),
                            sealed};
    PGresult *res = cmd_query (conn,
                               "WITH old AS (SELECT kind FROM gateways WHERE bot_id = $1)"
                               " INSERT INTO gateways (bot_id, owner_id, kind, credentials_enc)"
                               " VALUES ($1, $2, $3, $4::bytea) ON CONFLICT (bot_id) DO UPDATE"
                               " SET owner_id = EXCLUDED.owner_id, kind = EXCLUDED.kind,"
                               " credentials_enc = EXCLUDED.credentials_enc, updated_at = now()"
                               " RETURNING (SELECT kind FROM old)",
                               4, params, NULL, NULL, NULL, err, sizeof err);
    if (!res) {
        rc = cmd_fail (CMD_FAIL, "%s", err);
        goto rollback;
    }
    char old[32] = "";
    if (!PQgetisnull (res, 0, 0))
        snprintf (old, sizeof old, "%s", PQgetvalue (res, 0, 0));
    PQclear (res);
    if (cmd_exec (conn, "COMMIT")) {
        rc = CMD_FAIL;
        goto rollback;
    }
    printf ("gateway %s set for @%s (credentials encrypted%s%s)\n", args[1], found.username,
            old[0] ? "; replaced " : "", old);
    goto done;

rollback:
    cmd_rollback (conn);
done:
    sodium_memzero (json, len);
    free (json);
    free (sealed);
    PQfinish (conn);
    return rc;
}

//  ---------------------------------------------------------------------------
//  rastro gateway list

//  Wipes every string of the cJSON list at NODE (NULL is fine) and below.
static void
s_json_wipe (cJSON *node)
{
    for (cJSON *c = node; c; c = c->next) {
        if (c->valuestring)
            sodium_memzero (c->valuestring, strlen (c->valuestring));
        s_json_wipe (c->child);
    }
}

//  Writes into OUT which credential fields the sealed bytea SEALED_TEXT
//  (as libpq's text, "\x...") holds, e.g. "access_token webhook_secret",
//  and also returns them in *NAMES (a new cJSON array, the caller's; may
//  be NULL). SECRET NULL (no master key) gives "?".
static void
s_fields_set (rst_secret_t *secret, rst_gw_kind_t kind, const char *sealed_text, char *out,
              size_t outlen, cJSON **names)
{
    snprintf (out, outlen, "?");
    if (names)
        *names = NULL;
    if (!secret || (int) kind < 0 || kind >= RST_GW_KINDS)
        return;
    size_t len = 0;
    unsigned char *sealed = PQunescapeBytea ((const unsigned char *) sealed_text, &len);
    char *plain = sealed ? rst_secret_open (secret, sealed, len) : NULL;
    PQfreemem (sealed);
    if (!plain) {
        snprintf (out, outlen, "(cannot decrypt: another master key?)");
        return;
    }
    cJSON *root = cJSON_Parse (plain);
    rst_secret_free (plain);
    if (!cJSON_IsObject (root)) {
        snprintf (out, outlen, "(not a JSON object)");
        s_json_wipe (root);
        cJSON_Delete (root);
        return;
    }
    if (names)
        *names = cJSON_CreateArray ();
    size_t used = 0;
    int known = 0, others = 0;
    out[0] = 0;
    for (cJSON *item = root->child; item; item = item->next) {
        const char *field = NULL;
        for (int k = 0; s_fields[kind][k] && !field; k++)
            if (item->string && !strcmp (item->string, s_fields[kind][k]))
                field = s_fields[kind][k];
        int set = cJSON_IsObject (item) || (cJSON_IsString (item) && item->valuestring[0]);
        if (!set)
            continue;
        if (!field) {
            others++;
            continue;
        }
        int w = snprintf (out + used, outlen - used, "%s%s", known ? " " : "", field);
        if (w > 0 && (size_t) w < outlen - used)
            used += (size_t) w;
        if (names && *names)
            cJSON_AddItemToArray (*names, cJSON_CreateString (field));
        known++;
    }
    if (others)
        snprintf (out + used, outlen - used, "%s+%d other%s", known ? " " : "", others,
                  others > 1 ? "s" : "");
    else if (!known)
        snprintf (out, outlen, "(none)");
    s_json_wipe (root);
    cJSON_Delete (root);
}

//  Rows of `gateway list`: the query's columns plus the fields text.
typedef struct {
    PGresult *res;              //  bot, owner, kind, credentials_enc, updated
    char (*fields)[S_FIELDS_MAX];
} s_gwlist_t;

static const char *
s_gwlist_cell (void *ctx, int r, int c)
{
    static const char *const names[] = {"BOT", "OWNER", "KIND", "CREDENTIALS SET",
                                        "UPDATED (UTC)"};
    s_gwlist_t *list = ctx;
    if (r < 0)
        return names[c];
    if (c == 3)
        return list->fields[r];
    return PQgetvalue (list->res, r, c);
}

static int
s_gateway_list (int argc, char **argv, const rst_config_t *cfg)
{
    const char *owner_email = NULL;
    int json = 0;
    const cmd_optdef_t opts[] = {CMD_OPT ("--owner", &owner_email),
                                 CMD_FLAG ("--json", &json),
                                 CMD_OPT_END};
    int rc = cmd_parse (argc, argv, opts, NULL, 0, 0, "gateway list takes no arguments besides "
                        "--owner and --json (see --help)");
    if (rc)
        return rc;
    if (cmd_check_owner (owner_email))
        return CMD_USAGE;
    PGconn *conn = cmd_open_db (cfg);
    if (!conn)
        return CMD_FAIL;
    cmd_owner_t owner;
    const char *params[] = {NULL};
    if (owner_email) {
        rc = cmd_find_user (conn, owner_email, &owner);
        if (rc) {
            PQfinish (conn);
            return rc;
        }
        params[0] = owner.id;
    }
    char err[CMD_ERR_MAX];
    PGresult *res = cmd_query (conn,
                               "SELECT '@' || b.username, u.email, g.kind, g.credentials_enc,"
                               " to_char(g.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'),"
                               " b.username,"
                               " to_char(g.updated_at AT TIME ZONE 'UTC',"
                               "   'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
                               " FROM gateways g JOIN bots b ON b.id = g.bot_id"
                               " JOIN users u ON u.id = g.owner_id"
                               " WHERE $1::bigint IS NULL OR g.owner_id = $1"
                               " ORDER BY u.id, b.username",
                               1, params, NULL, NULL, NULL, err, sizeof err);
    PQfinish (conn);
    if (!res)
        return cmd_fail (CMD_FAIL, "%s", err);
    int rows = PQntuples (res);
    rst_secret_t *secret = NULL;
    if (rows > 0) {
        secret = rst_secret_new (cfg->master_key_file, 0, err, sizeof err);
        if (!secret)
            fprintf (stderr, "rastro: warning: cannot tell which credentials are set: %s\n", err);
    }
    s_gwlist_t list = {res, calloc ((size_t) rows + 1, sizeof *list.fields)};
    cJSON *array = json ? cJSON_CreateArray () : NULL;
    if (!list.fields || (json && !array)) {
        rc = cmd_fail (CMD_FAIL, "out of memory");
        goto done;
    }
    for (int r = 0; r < rows; r++) {
        cJSON *names = NULL;
        s_fields_set (secret, rst_gateway_kind_parse (PQgetvalue (res, r, 2)),
                      PQgetvalue (res, r, 3), list.fields[r], S_FIELDS_MAX,
                      json ? &names : NULL);
        if (!json)
            continue;
        cJSON *item = cJSON_CreateObject ();
        cJSON_AddItemToArray (array, item);
        cJSON_AddStringToObject (item, "bot", PQgetvalue (res, r, 5));
        cJSON_AddStringToObject (item, "owner", PQgetvalue (res, r, 1));
        cJSON_AddStringToObject (item, "kind", PQgetvalue (res, r, 2));
        if (names)
            cJSON_AddItemToObject (item, "credentials_set", names);
        else
            cJSON_AddNullToObject (item, "credentials_set");
        cJSON_AddStringToObject (item, "updated_at", PQgetvalue (res, r, 6));
    }
    if (json) {
        char *text = cJSON_Print (array);
        if (!text) {
            rc = cmd_fail (CMD_FAIL, "out of memory");
            goto done;
        }
        printf ("%s\n", text);
        free (text);
    }
    else
        cmd_print_rows (rows, 5, s_gwlist_cell, &list,
                        "no gateways yet: set one with `rastro gateway set <username> "
                        "mercadopago|pushinpay|syncpay --credentials-file F`");
done:
    cJSON_Delete (array);
    free (list.fields);
    rst_secret_destroy (&secret);
    PQclear (res);
    return rc;
}

//  ---------------------------------------------------------------------------
//  rastro gateway remove

static int
s_gateway_remove (int argc, char **argv, const rst_config_t *cfg)
{
    const char *name;
    int rc = cmd_parse (argc, argv, NULL, &name, 1, 1, "usage: rastro gateway remove <username>");
    if (rc)
        return rc;
    const char *bot = cmd_bot_name (name);
    if (!cmd_is_username (bot))
        return cmd_fail (CMD_USAGE, "'%s' is not a bot username (5 to 32 letters, digits or '_')",
                         name);
    const char *params[] = {bot};
    PGresult *res = cmd_query_once (cfg,
                                    "WITH gone AS (DELETE FROM gateways g USING bots b"
                                    "   WHERE g.bot_id = b.id AND lower(b.username) = lower($1)"
                                    "   RETURNING g.kind)"
                                    " SELECT b.username, (SELECT kind FROM gone) FROM bots b"
                                    " WHERE lower(b.username) = lower($1)",
                                    1, params);
    if (!res)
        return CMD_FAIL;
    if (PQntuples (res) == 0)
        rc = cmd_fail (CMD_FAIL, "no bot @%s (`rastro bot list` shows them)", bot);
    else if (PQgetisnull (res, 0, 1))
        rc = cmd_fail (CMD_FAIL, "@%s has no gateway (`rastro gateway list` shows them)",
                       PQgetvalue (res, 0, 0));
    else
        printf ("gateway %s of @%s removed (its offers cannot be paid until `rastro gateway "
                "set`)\n", PQgetvalue (res, 0, 1), PQgetvalue (res, 0, 0));
    PQclear (res);
    return rc;
}

static const cmd_sub_t s_gateway_subs[] = {
    {"set", s_gateway_set,
     "gateway set <username> mercadopago|pushinpay|syncpay --credentials-file F",
     "Sets the PIX gateway a bot charges through (replacing the one it had).\n"
     "The credentials are a JSON object in a file; they are checked, encrypted\n"
     "before they are stored, and never printed. Keep the file private (chmod\n"
     "600) or delete it afterwards.\n\n"
     "  mercadopago  {\"access_token\": \"APP_USR-...\", \"webhook_secret\": \"...\"}\n"
     "               (optional \"payer_email\")\n"
     "  pushinpay    {\"token\": \"...\", \"webhook_token\": \"...\"}\n"
     "  syncpay      {\"client_id\": \"...\", \"client_secret\": \"...\"}\n"
     "               (optional \"client\": {\"name\", \"cpf\", \"email\", \"phone\"})\n\n"
     "example:\n  rastro gateway set loja_a_bot pushinpay --credentials-file pushinpay.json\n"},
    {"list", s_gateway_list, "gateway list [--owner EMAIL] [--json]",
     "Lists the gateways: bot, owner, kind, which credential fields are set\n"
     "(never their values) and when they were last set.\n"},
    {"remove", s_gateway_remove, "gateway remove <username>",
     "Removes a bot's gateway: its offers cannot be paid until one is set again.\n"},
    {NULL, NULL, NULL, NULL},
};

const cmd_group_t cmd_gateway_group = {
    .name = "gateway",
    .summary = "Gateways create the PIX charges of a bot's offers; their credentials are "
               "encrypted at rest.",
    .subs = s_gateway_subs,
};
