/*  cmd_webhook — `rastro bot webhook <username> --url BASE | --delete`.

    A bot receives its updates one of two ways (bots.update_mode):
    'polling', the default, where the bots node long-polls getUpdates; or
    'webhook', where Telegram POSTs them to the front at
    BASE/telegram/<username>. This command switches a bot between the two,
    at Telegram (setWebhook / deleteWebhook) and in PostgreSQL together:

        BEGIN; SELECT the bot FOR UPDATE; UPDATE its webhook columns;
        call Telegram; COMMIT only if Telegram said yes (else ROLLBACK).

    So a refused or failed call changes nothing, and the front never holds
    a secret hash that Telegram does not use. (If COMMIT itself fails after
    Telegram said yes, the command says so and is safe to run again.)

    The secret_token: 32 random bytes as base64url without padding, 43
    characters of [A-Za-z0-9_-]. Telegram echoes it in the
    X-Telegram-Bot-Api-Secret-Token header of every delivery; the front
    compares SHA-256 of that header with bots.webhook_secret_hash in
    constant time. The secret itself is wiped from memory after the call:
    never stored, never printed. A new `--url` makes a new secret.

    URLs: Telegram delivers only over HTTPS and only to ports 443, 80, 88
    and 8443 (reference/telegram-and-pix.md). http:// is accepted only
    when RASTRO_TELEGRAM_API_URL points somewhere else than Telegram (a
    local fake in tests); another port only gets a warning.
*/
#include "commands.h"
#include "rst_secret.h"
#include "rst_telegram.h"

#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define S_TELEGRAM_URL   "https://api.telegram.org"    //  rst_config's default
#define S_SECRET_BYTES   32                            //  random bytes of a secret_token
#define S_WEBHOOK_PATH   "/telegram/"                  //  the front's route, + username
#define S_URL_MAX        1024                          //  the whole webhook URL, bytes
#define S_PORT_MAX       65535

//  Ports Telegram delivers webhooks to.
static const int s_ports[] = {443, 80, 88, 8443};

//  Checks BASE, the front's public base URL, for the webhook URL BASE +
//  "/telegram/" + USERNAME; ALLOW_HTTP accepts http:// too. Returns CMD_OK
//  with *BASE_LEN the length of BASE without trailing '/' (after warning
//  about a port Telegram does not deliver to), or CMD_USAGE after printing
//  why.
static int
s_check_base (const char *base, const char *username, int allow_http, int *base_len)
{
    int https = !strncasecmp (base, "https://", 8);
    int http = !https && !strncasecmp (base, "http://", 7);
    if (!https && !(http && allow_http))
        return cmd_fail (CMD_USAGE, "--url '%s' must start with https:// (Telegram delivers "
                         "webhooks over HTTPS only)", base);
    const char *host = base + (https ? 8 : 7);
    for (const char *s = base; *s; s++)
        if ((unsigned char) *s <= ' ' || (unsigned char) *s >= 127 || strchr ("\"<>\\^`{|}", *s))
            return cmd_fail (CMD_USAGE, "--url '%s' holds a character a URL cannot have (spaces, "
                             "quotes, non-ASCII: write the host in punycode)", base);
    if (strpbrk (base, "?#"))
        return cmd_fail (CMD_USAGE, "--url '%s' has a query or fragment: give only the base "
                         "URL, rastro appends /telegram/%s", base, username);
    size_t authority = strcspn (host, "/");
    if (memchr (host, '@', authority))
        return cmd_fail (CMD_USAGE, "--url '%s' has a user name or password in it; Telegram "
                         "authenticates with the secret token instead", base);
    //  host, [v6 host] or host:port
    size_t host_len = authority;
    const char *port_text = NULL;
    if (host[0] == '[') {
        const char *close = memchr (host, ']', authority);
        host_len = close ? (size_t) (close - host) + 1 : 0;
        if (close && host_len < authority) {
            if (host[host_len] != ':')
                host_len = 0;
            else
                port_text = host + host_len + 1;
        }
    }
    else {
        const char *colon = memchr (host, ':', authority);
        if (colon) {
            host_len = (size_t) (colon - host);
            port_text = colon + 1;
        }
    }
    int host_ok = host_len > 0;
    for (size_t i = 0; host_ok && host[0] != '[' && i < host_len; i++)
        host_ok = isalnum ((unsigned char) host[i]) || host[i] == '.' || host[i] == '-';
    if (!host_ok)
        return cmd_fail (CMD_USAGE, "--url '%s' has no valid host name", base);
    int port = https ? 443 : 80;
    if (port_text) {
        size_t digits = strspn (port_text, "0123456789");
        long p = digits >= 1 && digits <= 5 && port_text + digits == host + authority
                     ? strtol (port_text, NULL, 10)
                     : 0;
        if (p < 1 || p > S_PORT_MAX)
            return cmd_fail (CMD_USAGE, "--url '%s' has a bad port number", base);
        port = (int) p;
    }
    size_t len = strlen (base);
    while (len > 0 && base[len - 1] == '/')
        len--;
    if (len + strlen (S_WEBHOOK_PATH) + strlen (username) >= S_URL_MAX)
        return cmd_fail (CMD_USAGE, "--url is too long (the webhook URL may have %d bytes)",
                         S_URL_MAX - 1);
    int port_ok = 0;
    for (size_t i = 0; i < sizeof s_ports / sizeof s_ports[0]; i++)
        port_ok |= port == s_ports[i];
    if (https && !port_ok)
        fprintf (stderr, "rastro: warning: Telegram delivers webhooks only to ports 443, 80, 88 "
                 "and 8443, not %d: put the front behind one of them\n", port);
    *base_len = (int) len;
    return CMD_OK;
}

//  Loads and opens the sealed token TOKEN_TEXT (libpq's text of a bytea)
//  of bot USERNAME. Returns the token (the caller's, rst_secret_free) or
//  NULL after printing why.
static char *
s_open_token (const rst_config_t *cfg, const char *username, const char *token_text)
{
    char err[CMD_ERR_MAX];
    rst_secret_t *secret = rst_secret_new (cfg->master_key_file, 0, err, sizeof err);
    if (!secret) {
        cmd_fail (CMD_FAIL, "cannot read the token of @%s: %s", username, err);
        return NULL;
    }
    size_t len = 0;
    unsigned char *sealed = PQunescapeBytea ((const unsigned char *) token_text, &len);
    char *token = sealed ? rst_secret_open (secret, sealed, len) : NULL;
    PQfreemem (sealed);
    rst_secret_destroy (&secret);
    if (!token)
        cmd_fail (CMD_FAIL, "the token of @%s cannot be decrypted with the master key %s (was it "
                  "added under another RASTRO_MASTER_KEY_FILE?)", username, cfg->master_key_file);
    return token;
}

int
cmd_bot_webhook (int argc, char **argv, const rst_config_t *cfg)
{
    //  --help is cmd_dispatch's (the bot subcommands of cmd_admin.c).
    static const char synopsis[] = "bot webhook <username> (--url BASE | --delete)";
    const char *name, *base = NULL;
    int delete = 0;
    const cmd_optdef_t opts[] = {CMD_OPT ("--url", &base),
                                 CMD_FLAG ("--delete", &delete),
                                 CMD_OPT_END};
    int rc = cmd_parse (argc, argv, opts, &name, 1, 1, "usage: rastro %s", synopsis);
    if (rc)
        return rc;
    if (!base == !delete)
        return cmd_fail (CMD_USAGE, "bot webhook needs either --url BASE (set the webhook) or "
                         "--delete (back to polling)");
    const char *bot = cmd_bot_name (name);
    if (!cmd_is_username (bot))
        return cmd_fail (CMD_USAGE, "'%s' is not a bot username (5 to 32 letters, digits or '_')",
                         name);
    char url[S_URL_MAX] = "";
    int base_len = 0;
    if (base) {
        int allow_http = strcmp (cfg->telegram_api_url, S_TELEGRAM_URL) != 0;
        if ((rc = s_check_base (base, bot, allow_http, &base_len)))
            return rc;
    }

    char secret[sodium_base64_ENCODED_LEN (S_SECRET_BYTES, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
    unsigned char random[S_SECRET_BYTES], hash[crypto_hash_sha256_BYTES];
    char hash_hex[2 + crypto_hash_sha256_BYTES * 2 + 1] = "";
    char err[CMD_ERR_MAX];
    char *token = NULL;
    rst_telegram_t *telegram = NULL;
    if (sodium_init () < 0)
        return cmd_fail (CMD_FAIL, "libsodium: cannot initialise");
    PGconn *conn = cmd_open_db (cfg);
    if (!conn)
        return CMD_FAIL;
    if (cmd_exec (conn, "BEGIN")) {
        rc = CMD_FAIL;
        goto done;
    }
    const char *find_params[] = {bot};
    PGresult *res = cmd_query (conn,
                               "SELECT id, username, token_enc FROM bots"
                               " WHERE lower(username) = lower($1) FOR UPDATE",
                               1, find_params, NULL, NULL, NULL, err, sizeof err);
    if (!res) {
        rc = cmd_fail (CMD_FAIL, "%s", err);
        goto rollback;
    }
    if (PQntuples (res) == 0) {
        PQclear (res);
        rc = cmd_fail (CMD_FAIL, "no bot @%s (`rastro bot list` shows them)", bot);
        goto rollback;
    }
    char bot_id[24], username[CMD_USERNAME_MAX + 1];
    snprintf (bot_id, sizeof bot_id, "%s", PQgetvalue (res, 0, 0));
    snprintf (username, sizeof username, "%s", PQgetvalue (res, 0, 1));
    token = s_open_token (cfg, username, PQgetvalue (res, 0, 2));
    PQclear (res);
    if (!token) {
        rc = CMD_FAIL;
        goto rollback;
    }
    if (base) {
        //  The URL carries the username as Telegram spells it (checked above: it fits).
        snprintf (url, sizeof url, "%.*s%s%s", base_len, base, S_WEBHOOK_PATH, username);
        randombytes_buf (random, sizeof random);
        sodium_bin2base64 (secret, sizeof secret, random, sizeof random,
                           sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        crypto_hash_sha256 (hash, (const unsigned char *) secret, strlen (secret));
        memcpy (hash_hex, "\\x", 2);
        sodium_bin2hex (hash_hex + 2, sizeof hash_hex - 2, hash, sizeof hash);
    }
    const char *params[] = {bot_id, base ? "webhook" : "polling", base ? hash_hex : NULL,
                            base ? url : NULL};
    res = cmd_query (conn,
                     "UPDATE bots SET update_mode = $2, webhook_secret_hash = $3::bytea,"
                     " webhook_url = $4 WHERE id = $1",
                     4, params, NULL, NULL, NULL, err, sizeof err);
    if (!res) {
        rc = cmd_fail (CMD_FAIL, "%s", err);
        goto rollback;
    }
    PQclear (res);

    telegram = rst_telegram_new (cfg->telegram_api_url, err, sizeof err);
    if (!telegram) {
        rc = cmd_fail (CMD_FAIL, "%s", err);
        goto rollback;
    }
    rst_telegram_status_t status;
    int called = base ? rst_telegram_set_webhook (telegram, token, url, secret, &status, err,
                                                  sizeof err)
                      : rst_telegram_delete_webhook (telegram, token, 0, &status, err,
                                                     sizeof err);
    if (called) {
        rc = cmd_fail (CMD_FAIL, "%s (nothing was changed)", err);
        goto rollback;
    }
    if (cmd_exec (conn, "COMMIT")) {
        fprintf (stderr, "rastro: Telegram accepted the change but the database did not record "
                 "it: run the same command again\n");
        rc = CMD_FAIL;
        goto rollback;
    }
    if (base)
        printf ("@%s: webhook set to %s (a new secret token is registered with Telegram; "
                "updates now arrive through the front)\n", username, url);
    else
        printf ("@%s: webhook deleted (the bots node polls for updates again)\n", username);
    goto done;

rollback:
    cmd_rollback (conn);
done:
    sodium_memzero (secret, sizeof secret);
    sodium_memzero (random, sizeof random);
    rst_secret_free (token);
    rst_telegram_destroy (&telegram);
    PQfinish (conn);
    return rc;
}
