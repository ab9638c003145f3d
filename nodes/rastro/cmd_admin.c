/*  cmd_admin — `rastro user|pixel|bot|pool ...`: the objects every node uses.

    These commands are how a person (or a deploy script) creates the users,
    Meta pixels, Telegram bots and pools (the /go/<slug> links) that the
    front and the other nodes read from PostgreSQL. Every command:

      1. parses and checks its arguments completely before touching anything
         (bad usage: one line on stderr, exit 2);
      2. connects (rst_db_connect) and applies pending migrations
         (rst_db_migrate), so a fresh database just works;
      3. does its work in one statement or one transaction, so that a failure
         leaves nothing half-created (runtime failure: one line, exit 1);
      4. prints one confirming line (add) or an aligned table (list).

    The toolkit they share with the other admin commands (option parsing,
    the owner rules, queries, tables, sealing) is cmd_common.c's.

    Ownership: every pixel, bot and pool belongs to a user. `--owner EMAIL`
    chooses the user; without it the only user is the owner, several users
    make --owner required, and no user at all asks for `rastro user add`.
    A pool's pixel and bots must belong to the pool's owner.

    Secrets: Meta and Telegram tokens are read from files (never from the
    command line, where `ps` and shell history would see them), sealed with
    rst_secret under the master key (created 0600 on first use) and stored
    as bytea. No token is ever printed: errors name the file (and line),
    `list` says "set". `bot import` registers many bots at once, all or
    none: each token goes through the steps of `bot add` (shape, already
    registered?, getMe over one reused client, sealing), then one
    transaction inserts them all with a prepared statement. Passwords come from stdin (the first line; with a terminal, typed
    twice without echo) and are stored as argon2id hashes.

    Triggers in 001_init.sql NOTIFY rastro_config on every change, so the
    front's snapshot follows within a second.
*/
#include "commands.h"
#include "rst_db.h"
#include "rst_secret.h"
#include "rst_telegram.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <termios.h>
#include <unistd.h>

#define S_PASSWORD_MIN    8     //  characters
#define S_PASSWORD_MAX    1024  //  bytes
#define S_TOKEN_FILE_MAX  4096  //  bytes; Meta tokens are a few hundred
#define S_PIXEL_ID_MAX    32    //  digits
#define S_SLUG_MAX        64
#define S_CODE_MAX        64    //  --test-event-code
#define S_WEIGHT_MIN      1
#define S_WEIGHT_MAX      1000
#define S_POOL_BOTS_MAX   100   //  --bot options in one pool
#define S_TOKENS_FILE_MAX (1024 * 1024)   //  bytes of `bot import --tokens-file`
#define S_IMPORT_MAX      10000 //  tokens in one `bot import`
#define S_IMPORT_PROGRESS 50    //  `bot import`: a progress line every so many getMe calls
#define S_IMPORT_NOTES    20    //  `bot import`: skip notes printed in full

//  ---------------------------------------------------------------------------
//  Argument checks. Each returns 1 if VALUE is acceptable.

static int
s_is_pixel_id (const char *value)
{
    return cmd_is_number (value, S_PIXEL_ID_MAX);
}

static int
s_is_slug (const char *value)
{
    return cmd_is_word (value, 1, S_SLUG_MAX, "_-");
}

//  Runs a list query with one parameter (the owner's id or NULL for all)
//  and prints it. Returns the exit status.
static int
s_list (const rst_config_t *cfg, const char *owner_email, const char *sql, const char *empty)
{
    PGconn *conn = cmd_open_db (cfg);
    if (!conn)
        return CMD_FAIL;
    int rc = CMD_OK;
    cmd_owner_t owner;
    const char *params[] = {NULL};
    if (owner_email) {
        rc = cmd_find_user (conn, owner_email, &owner);
        if (rc)
            goto done;
        params[0] = owner.id;
    }
    char err[CMD_ERR_MAX];
    PGresult *res = cmd_query (conn, sql, 1, params, NULL, NULL, NULL, err, sizeof err);
    if (!res) {
        rc = cmd_fail (CMD_FAIL, "%s", err);
        goto done;
    }
    cmd_print_table (res, empty);
    PQclear (res);
done:
    PQfinish (conn);
    return rc;
}

//  ---------------------------------------------------------------------------
//  Secrets

//  ---------------------------------------------------------------------------
//  Passwords

//  Reads one line from IN into BUF without its newline. Returns its length,
//  or -1 at EOF with nothing read, or -2 if it is longer than BUFLEN - 2.
static int
s_read_line (FILE *in, char *buf, size_t buflen)
{
    if (!fgets (buf, (int) buflen, in))
        return -1;
    size_t n = strlen (buf);
    if (n > 0 && buf[n - 1] == '\n')
        buf[--n] = 0;
    else if (n == buflen - 1) {
        int c;
        while ((c = fgetc (in)) != EOF && c != '\n')
            ;
        return -2;
    }
    if (n > 0 && buf[n - 1] == '\r')
        buf[--n] = 0;
    return (int) n;
}

//  Reads a line from the terminal on IN with echo off, after PROMPT on stderr.
static int
s_read_hidden (const char *prompt, char *buf, size_t buflen)
{
    struct termios old, quiet;
    int have_tty = tcgetattr (STDIN_FILENO, &old) == 0;
    fputs (prompt, stderr);
    fflush (stderr);
    if (have_tty) {
        quiet = old;
        quiet.c_lflag &= (tcflag_t) ~ECHO;
        tcsetattr (STDIN_FILENO, TCSANOW, &quiet);
    }
    int n = s_read_line (stdin, buf, buflen);
    if (have_tty) {
        tcsetattr (STDIN_FILENO, TCSANOW, &old);
        fputc ('\n', stderr);
    }
    return n;
}

//  Reads the new password for EMAIL: the first line of stdin, or typed twice
//  on a terminal. Returns 0 with BUF filled, or the exit status after
//  printing why (BUF wiped).
static int
s_read_password (const char *email, char *buf, size_t buflen)
{
    int rc = CMD_OK;
    int n;
    if (isatty (STDIN_FILENO)) {
        char prompt[CMD_EMAIL_MAX + 32];
        snprintf (prompt, sizeof prompt, "Password for %s: ", email);
        n = s_read_hidden (prompt, buf, buflen);
        if (n >= 0) {
            char again[S_PASSWORD_MAX + 2];
            int m = s_read_hidden ("Again: ", again, sizeof again);
            if (m != n || strcmp (again, buf)) {
                sodium_memzero (again, sizeof again);
                rc = cmd_fail (CMD_USAGE, "the two passwords differ; nothing was changed");
                goto fail;
            }
            sodium_memzero (again, sizeof again);
        }
    }
    else
        n = s_read_line (stdin, buf, buflen);
    if (n == -2)
        rc = cmd_fail (CMD_USAGE, "the password is longer than %d bytes", S_PASSWORD_MAX);
    else if (n <= 0)
        rc = cmd_fail (CMD_USAGE, "no password given: write it as the first line of stdin, e.g. "
                       "`printf '%%s\\n' \"$PASSWORD\" | rastro user add %s`", email);
    else if (cmd_chars (buf) < S_PASSWORD_MIN)
        rc = cmd_fail (CMD_USAGE, "the password must have at least %d characters", S_PASSWORD_MIN);
    if (rc == CMD_OK)
        return CMD_OK;
fail:
    sodium_memzero (buf, buflen);
    return rc;
}

//  ---------------------------------------------------------------------------
//  rastro user

static int
s_user_add (int argc, char **argv, const rst_config_t *cfg)
{
    const char *email;
    int rc = cmd_parse (argc, argv, NULL, &email, 0, 1,
                        "user add takes one email address (see --help)");
    if (rc)
        return rc;
    if (!email)
        return cmd_fail (CMD_USAGE, "usage: rastro user add <email>   (password on stdin)");
    if (!cmd_is_email (email))
        return cmd_fail (CMD_USAGE, "'%s' is not an email address", email);
    char lower[CMD_EMAIL_MAX + 1];
    cmd_email_lower (email, lower);

    PGconn *conn = cmd_open_db (cfg);
    if (!conn)
        return CMD_FAIL;
    char password[S_PASSWORD_MAX + 2];
    char hash[RST_PASSWORD_HASH_MAX];
    rc = s_read_password (lower, password, sizeof password);
    if (rc)
        goto done;
    if (rst_password_hash (password, hash)) {
        rc = cmd_fail (CMD_FAIL, "libsodium: cannot hash the password (out of memory?)");
        goto done;
    }
    const char *params[] = {lower, hash};
    char err[CMD_ERR_MAX], state[6];
    PGresult *res = cmd_query (conn, "INSERT INTO users (email, password_hash) VALUES ($1, $2)",
                               2, params, NULL, NULL, state, err, sizeof err);
    if (!res) {
        rc = !strcmp (state, CMD_UNIQUE_VIOLATION)
                 ? cmd_fail (CMD_FAIL, "user %s already exists", lower)
                 : cmd_fail (CMD_FAIL, "%s", err);
        goto done;
    }
    PQclear (res);
    printf ("user %s added\n", lower);
done:
    sodium_memzero (password, sizeof password);
    sodium_memzero (hash, sizeof hash);
    PQfinish (conn);
    return rc;
}

static int
s_user_list (int argc, char **argv, const rst_config_t *cfg)
{
    int rc = cmd_parse (argc, argv, NULL, NULL, 0, 0, "user list takes no arguments (see --help)");
    if (rc)
        return rc;
    return s_list (cfg, NULL,
                   "SELECT u.email AS \"EMAIL\","
                   " (SELECT count(*) FROM pixels p WHERE p.owner_id = u.id) AS \"PIXELS\","
                   " (SELECT count(*) FROM bots b WHERE b.owner_id = u.id) AS \"BOTS\","
                   " (SELECT count(*) FROM pools o WHERE o.owner_id = u.id) AS \"POOLS\","
                   " to_char(u.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI')"
                   "   AS \"CREATED (UTC)\""
                   " FROM users u WHERE $1::bigint IS NULL OR u.id = $1 ORDER BY u.id",
                   "no users yet: add one with `rastro user add <email>`");
}

static const cmd_sub_t s_user_subs[] = {
    {"add", s_user_add, "user add <email>",
     "Creates a user, the owner of pixels, bots and pools. The password is the\n"
     "first line of stdin (typed twice, hidden, on a terminal); at least 8\n"
     "characters. It is stored as an argon2id hash.\n\n"
     "example:\n  printf '%s\\n' \"$PASSWORD\" | rastro user add ana@example.com\n"},
    {"list", s_user_list, "user list",
     "Lists the users with how many pixels, bots and pools each owns.\n"},
    {NULL, NULL, NULL, NULL},
};

const cmd_group_t cmd_user_group = {
    .name = "user",
    .summary = "Users own everything else (pixels, bots, pools).",
    .subs = s_user_subs,
};

//  ---------------------------------------------------------------------------
//  rastro pixel

static int
s_pixel_add (int argc, char **argv, const rst_config_t *cfg)
{
    const char *pixel_id, *token_file = NULL, *code = NULL, *owner_email = NULL;
    const cmd_optdef_t opts[] = {CMD_OPT ("--token-file", &token_file),
                                 CMD_OPT ("--test-event-code", &code),
                                 CMD_OPT ("--owner", &owner_email),
                                 CMD_OPT_END};
    int rc = cmd_parse (argc, argv, opts, &pixel_id, 0, 1,
                        "pixel add takes one pixel id (see --help)");
    if (rc)
        return rc;
    if (!pixel_id)
        return cmd_fail (CMD_USAGE, "pixel add needs the pixel id (see --help)");
    if (!s_is_pixel_id (pixel_id))
        return cmd_fail (CMD_USAGE, "'%s' is not a pixel id (1 to %d digits, as in Meta's Events "
                         "Manager)", pixel_id, S_PIXEL_ID_MAX);
    if (!token_file)
        return cmd_fail (CMD_USAGE, "pixel add needs --token-file FILE, a file holding the pixel's "
                         "Conversions API access token");
    if (code && !cmd_is_word (code, 1, S_CODE_MAX, "_-"))
        return cmd_fail (CMD_USAGE, "'%s' is not a test event code (1 to %d letters, digits, '_' "
                         "or '-', e.g. TEST12345)", code, S_CODE_MAX);
    if (cmd_check_owner (owner_email))
        return CMD_USAGE;

    char token[S_TOKEN_FILE_MAX + 2];
    rc = cmd_read_token_file (token_file, token, sizeof token);
    if (rc)
        return rc;
    char *sealed = NULL;
    PGconn *conn = cmd_open_db (cfg);
    if (!conn) {
        rc = CMD_FAIL;
        goto done;
    }
    cmd_owner_t owner;
    rc = cmd_resolve_owner (conn, owner_email, &owner);
    if (rc)
        goto done;
    sealed = cmd_seal (cfg, token, strlen (token), "token");
    if (!sealed) {
        rc = CMD_FAIL;
        goto done;
    }
    const char *params[] = {owner.id, pixel_id, sealed, code};
    char err[CMD_ERR_MAX], state[6];
    PGresult *res = cmd_query (conn,
                               "INSERT INTO pixels (owner_id, pixel_id, token_enc, test_event_code)"
                               " VALUES ($1, $2, $3::bytea, $4)",
                               4, params, NULL, NULL, state, err, sizeof err);
    if (!res) {
        rc = !strcmp (state, CMD_UNIQUE_VIOLATION)
                 ? cmd_fail (CMD_FAIL, "pixel %s already exists for %s", pixel_id, owner.email)
                 : cmd_fail (CMD_FAIL, "%s", err);
        goto done;
    }
    PQclear (res);
    printf ("pixel %s added for %s (token encrypted%s%s)\n", pixel_id, owner.email,
            code ? ", test event code " : "", code ? code : "");
done:
    sodium_memzero (token, sizeof token);
    free (sealed);
    PQfinish (conn);
    return rc;
}

//  Parses the options of a list command: only --owner. Returns 0, or the
//  exit status after printing why.
static int
s_list_args (const char *what, int argc, char **argv, const char **owner_email)
{
    *owner_email = NULL;
    const cmd_optdef_t opts[] = {CMD_OPT ("--owner", owner_email), CMD_OPT_END};
    return cmd_parse (argc, argv, opts, NULL, 0, 0,
                      "%s list takes no arguments besides --owner (see --help)", what);
}

static int
s_pixel_list (int argc, char **argv, const rst_config_t *cfg)
{
    const char *owner_email;
    int rc = s_list_args ("pixel", argc, argv, &owner_email);
    if (rc)
        return rc;
    return s_list (cfg, owner_email,
                   "SELECT p.pixel_id AS \"PIXEL\", u.email AS \"OWNER\","
                   " CASE WHEN length(p.token_enc) > 0 THEN 'set' ELSE 'missing' END AS \"TOKEN\","
                   " coalesce(p.test_event_code, '-') AS \"TEST_EVENT_CODE\","
                   " (SELECT count(*) FROM pools o WHERE o.pixel_ref = p.id) AS \"POOLS\","
                   " to_char(p.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI')"
                   "   AS \"CREATED (UTC)\""
                   " FROM pixels p JOIN users u ON u.id = p.owner_id"
                   " WHERE $1::bigint IS NULL OR p.owner_id = $1 ORDER BY u.id, p.id",
                   "no pixels yet: add one with `rastro pixel add <pixel_id> --token-file F`");
}

//  rastro pixel set: the limiter's rate (pixels.rate_per_s) and the test event code.
static int
s_pixel_set (int argc, char **argv, const rst_config_t *cfg)
{
    const char *pixel_id, *rate = NULL, *code = NULL, *owner_email = NULL;
    int no_code = 0;
    const cmd_optdef_t opts[] = {CMD_FLAG ("--no-test-event-code", &no_code),
                                 CMD_OPT ("--rate", &rate),
                                 CMD_OPT ("--test-event-code", &code),
                                 CMD_OPT ("--owner", &owner_email),
                                 CMD_OPT_END};
    int prc = cmd_parse (argc, argv, opts, &pixel_id, 0, 1,
                         "pixel set takes one pixel id (see --help)");
    if (prc)
        return prc;
    if (!pixel_id)
        return cmd_fail (CMD_USAGE, "pixel set needs the pixel id (see --help)");
    if (!s_is_pixel_id (pixel_id))
        return cmd_fail (CMD_USAGE, "'%s' is not a pixel id (1 to %d digits)", pixel_id,
                         S_PIXEL_ID_MAX);
    if (!rate && !code && !no_code)
        return cmd_fail (CMD_USAGE, "pixel set needs --rate N, --test-event-code CODE or "
                         "--no-test-event-code");
    if (code && no_code)
        return cmd_fail (CMD_USAGE, "--test-event-code and --no-test-event-code exclude each "
                         "other");
    if (rate) {
        char *end;
        errno = 0;
        long r = strtol (rate, &end, 10);
        if (errno || end == rate || *end || r < 1 || r > 100000)
            return cmd_fail (CMD_USAGE, "--rate '%s' must be 1 to 100000 events per second", rate);
    }
    if (code && !cmd_is_word (code, 1, S_CODE_MAX, "_-"))
        return cmd_fail (CMD_USAGE, "'%s' is not a test event code (1 to %d letters, digits, '_' "
                         "or '-', e.g. TEST12345)", code, S_CODE_MAX);
    if (cmd_check_owner (owner_email))
        return CMD_USAGE;
    PGconn *conn = cmd_open_db (cfg);
    if (!conn)
        return CMD_FAIL;
    cmd_owner_t owner;
    int rc = cmd_resolve_owner (conn, owner_email, &owner);
    if (rc)
        goto done;
    const char *params[] = {owner.id, pixel_id, rate, (code || no_code) ? "t" : "f", code};
    char err[CMD_ERR_MAX];
    PGresult *res = cmd_query (conn,
                               "UPDATE pixels SET rate_per_s = coalesce($3::int, rate_per_s),"
                               " test_event_code = CASE WHEN $4::boolean THEN $5"
                               "   ELSE test_event_code END"
                               " WHERE owner_id = $1 AND pixel_id = $2",
                               5, params, NULL, NULL, NULL, err, sizeof err);
    if (!res) {
        rc = cmd_fail (CMD_FAIL, "%s", err);
        goto done;
    }
    if (strcmp (PQcmdTuples (res), "1"))
        rc = cmd_fail (CMD_FAIL, "no pixel %s for %s: add it first with `rastro pixel add %s "
                       "--token-file F`", pixel_id, owner.email, pixel_id);
    else {
        printf ("pixel %s updated", pixel_id);
        if (rate)
            printf (": rate %s events/s", rate);
        if (code)
            printf ("%s test event code %s", rate ? "," : ":", code);
        if (no_code)
            printf ("%s no test event code", rate ? "," : ":");
        printf ("\n");
    }
    PQclear (res);
done:
    PQfinish (conn);
    return rc;
}

static const cmd_sub_t s_pixel_subs[] = {
    {"add", s_pixel_add,
     "pixel add <pixel_id> --token-file F [--test-event-code CODE] [--owner EMAIL]",
     "Adds a Meta pixel (dataset) that rastro reports conversions to.\n\n"
     "  <pixel_id>              the pixel's id, digits only (Events Manager)\n"
     "  --token-file F          file holding the Conversions API access token\n"
     "                          (encrypted before it is stored; never printed)\n"
     "  --test-event-code CODE  send events as test events (Events Manager's\n"
     "                          \"Test events\" tab) until removed\n"
     "  --owner EMAIL           the owning user (default: the only user)\n"},
    {"list", s_pixel_list, "pixel list [--owner EMAIL]",
     "Lists the pixels (of one user with --owner). Tokens show as \"set\".\n"},
    {"set", s_pixel_set,
     "pixel set <pixel_id> [--rate N] [--test-event-code CODE|--no-test-event-code] [--owner EMAIL]",
     "Changes a pixel's delivery settings (live: the nodes follow within a second).\n\n"
     "  --rate N                events per second the limiter lets through to Meta\n"
     "                          for this pixel (1 to 100000; default: the topology's)\n"
     "  --test-event-code CODE  send events as test events (Events Manager)\n"
     "  --no-test-event-code    stop sending them as test events\n"
     "  --owner EMAIL           the owning user (default: the only user)\n"},
    {NULL, NULL, NULL, NULL},
};

const cmd_group_t cmd_pixel_group = {
    .name = "pixel",
    .summary = "Meta pixels receive the conversion events; their Conversions API tokens are "
               "encrypted at rest.",
    .subs = s_pixel_subs,
};

//  ---------------------------------------------------------------------------
//  rastro bot

//  `bot add` and `bot import` take each token through the same steps, in
//  this order: its shape (rst_telegram_token_check, no network); whether
//  its bot is registered already (no network either: Telegram is not
//  bothered about known bots); getMe, which says whose token it is; sealing
//  under the master key; and the INSERT (prepared once, run per bot).

//  One token on its way into the bots table.
typedef struct {
    const char *token;                      //  borrowed; its shape is checked
    int line;                               //  its line in --tokens-file (0: bot add)
    int64_t id;                             //  the bot id the token starts with
    char telegram_id[24];                   //  the same, as text
    int skip;                               //  1: not to be inserted (see s_bot_import)
    char username[CMD_USERNAME_MAX + 1];    //  from getMe
    char *sealed;                           //  bytea literal of the sealed token (owned)
} s_new_bot_t;

#define S_INSERT_BOT "rastro_insert_bot"    //  the prepared INSERT (s_bot_prepare)

//  Sets NB's token (checked shape) and the bot id it starts with.
static void
s_new_bot_init (s_new_bot_t *nb, const char *token, int line)
{
    memset (nb, 0, sizeof *nb);
    nb->token = token;
    nb->line = line;
    nb->id = rst_telegram_token_bot_id (token);
    snprintf (nb->telegram_id, sizeof nb->telegram_id, "%lld", (long long) nb->id);
}

//  Is NB's bot registered already (same telegram_id)? Returns 0 if not; 1
//  if it is, with its username and owner in *KNOWN (OUT); -1 after printing
//  why.
static int
s_bot_registered (PGconn *conn, const s_new_bot_t *nb, cmd_bot_t *known)
{
    const char *params[] = {nb->telegram_id};
    char err[CMD_ERR_MAX];
    PGresult *res = cmd_query (conn,
                               "SELECT b.username, u.email FROM bots b"
                               " JOIN users u ON u.id = b.owner_id WHERE b.telegram_id = $1",
                               1, params, NULL, NULL, NULL, err, sizeof err);
    if (!res)
        return cmd_fail (-1, "%s", err);
    int found = PQntuples (res) > 0;
    if (found) {
        snprintf (known->username, sizeof known->username, "%s", PQgetvalue (res, 0, 0));
        snprintf (known->owner_email, sizeof known->owner_email, "%s", PQgetvalue (res, 0, 1));
    }
    PQclear (res);
    return found;
}

//  Asks Telegram (getMe) whose NB's token is and stores the username in
//  NB. Returns 0, or -1 with the reason in ERR (never the token).
static int
s_bot_get_me (rst_telegram_t *telegram, s_new_bot_t *nb, char *err, size_t errlen)
{
    rst_telegram_bot_t bot;
    if (rst_telegram_get_me (telegram, nb->token, &bot, err, errlen))
        return -1;
    if (!cmd_is_username (bot.username)) {
        snprintf (err, errlen, "Telegram says the bot's username is '%s', which is not a bot "
                  "username (5 to 32 letters, digits or '_')", bot.username);
        return -1;
    }
    snprintf (nb->username, sizeof nb->username, "%.*s", CMD_USERNAME_MAX, bot.username);
    return 0;
}

//  Prepares S_INSERT_BOT on CONN. Returns CMD_OK or CMD_FAIL after printing why.
static int
s_bot_prepare (PGconn *conn)
{
    return cmd_prepare (conn, S_INSERT_BOT,
                        "INSERT INTO bots (owner_id, telegram_id, username, token_enc)"
                        " VALUES ($1, $2, $3, $4::bytea)",
                        4);
}

//  Inserts NB (sealed) for OWNER_ID. Returns 0, or -1 with the reason in ERR.
static int
s_bot_insert (PGconn *conn, const char *owner_id, const s_new_bot_t *nb, char *err,
              size_t errlen)
{
    const char *params[] = {owner_id, nb->telegram_id, nb->username, nb->sealed};
    char state[6];
    PGresult *res = cmd_query_prepared (conn, S_INSERT_BOT, 4, params, state, err, errlen);
    if (!res && !strcmp (state, CMD_UNIQUE_VIOLATION))
        snprintf (err, errlen, "bot @%s is already registered", nb->username);
    PQclear (res);
    return res ? 0 : -1;
}

static int
s_bot_add (int argc, char **argv, const rst_config_t *cfg)
{
    const char *token_file = NULL, *owner_email = NULL;
    const cmd_optdef_t opts[] = {CMD_OPT ("--token-file", &token_file),
                                 CMD_OPT ("--owner", &owner_email),
                                 CMD_OPT_END};
    int prc = cmd_parse (argc, argv, opts, NULL, 0, 0,
                         "bot add takes no positional argument: the token goes in "
                         "--token-file, the username comes from Telegram (see --help)");
    if (prc)
        return prc;
    if (!token_file)
        return cmd_fail (CMD_USAGE, "bot add needs --token-file FILE, a file holding the bot's "
                         "token from @BotFather");
    if (cmd_check_owner (owner_email))
        return CMD_USAGE;

    char token[S_TOKEN_FILE_MAX + 2];
    int rc = cmd_read_token_file (token_file, token, sizeof token);
    if (rc)
        return rc;
    char err[CMD_ERR_MAX];
    s_new_bot_t nb = {0};
    PGconn *conn = NULL;
    rst_telegram_t *telegram = NULL;
    if (rst_telegram_token_check (token, err, sizeof err)) {
        rc = cmd_fail (CMD_USAGE, "token file %s: %s", token_file, err);
        goto done;
    }
    s_new_bot_init (&nb, token, 0);
    conn = cmd_open_db (cfg);
    if (!conn) {
        rc = CMD_FAIL;
        goto done;
    }
    cmd_owner_t owner;
    rc = cmd_resolve_owner (conn, owner_email, &owner);
    if (rc)
        goto done;
    cmd_bot_t known;
    int registered = s_bot_registered (conn, &nb, &known);
    if (registered) {
        rc = registered < 0 ? CMD_FAIL
                            : cmd_fail (CMD_FAIL, "bot @%s is already registered (owner %s)",
                                        known.username, known.owner_email);
        goto done;
    }
    telegram = rst_telegram_new (cfg->telegram_api_url, err, sizeof err);
    if (!telegram || s_bot_get_me (telegram, &nb, err, sizeof err)) {
        rc = cmd_fail (CMD_FAIL, "%s", err);
        goto done;
    }
    nb.sealed = cmd_seal (cfg, token, strlen (token), "token");
    if (!nb.sealed || s_bot_prepare (conn)) {
        rc = CMD_FAIL;
        goto done;
    }
    if (s_bot_insert (conn, owner.id, &nb, err, sizeof err)) {
        rc = cmd_fail (CMD_FAIL, "%s", err);
        goto done;
    }
    printf ("@%s\n", nb.username);
done:
    sodium_memzero (token, sizeof token);
    rst_telegram_destroy (&telegram);
    free (nb.sealed);
    PQfinish (conn);
    return rc;
}

//  `bot import`: the tokens of one --tokens-file.
typedef struct {
    const char *file;           //  --tokens-file, for messages
    char *data;                 //  the file's content (owned; the tokens point into it)
    size_t len;
    s_new_bot_t *bots;          //  one per token line, in file order (owned)
    int nbots;
    int todo;                   //  bots not skipped
    int repeated;               //  skipped: the same bot is on an earlier line
    int registered;             //  skipped: the bot is registered already
    int notes;                  //  skip notes printed so far
} s_import_t;

//  Prints a note about a skipped line, the first S_IMPORT_NOTES of them.
static void __attribute__ ((format (printf, 2, 3)))
s_import_note (s_import_t *im, const char *fmt, ...)
{
    if (im->notes++ >= S_IMPORT_NOTES)
        return;
    char note[CMD_ERR_MAX];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (note, sizeof note, fmt, ap);
    va_end (ap);
    fprintf (stderr, "rastro: note: %s: skipped\n", note);
}

//  Reads --tokens-file into IM: one token per line, blank lines and lines
//  starting with '#' ignored, surrounding whitespace trimmed, every token's
//  shape checked. Returns CMD_OK or CMD_USAGE after printing why.
static int
s_import_read (s_import_t *im)
{
    int rc = cmd_read_file (im->file, "--tokens-file", S_TOKENS_FILE_MAX, &im->data, &im->len);
    if (rc)
        return rc;
    if (memchr (im->data, 0, im->len))
        return cmd_fail (CMD_USAGE, "--tokens-file %s is binary: it should hold one token per "
                         "line", im->file);
    im->bots = calloc (S_IMPORT_MAX, sizeof *im->bots);
    if (!im->bots)
        return cmd_fail (CMD_FAIL, "out of memory");
    char err[CMD_ERR_MAX];
    char *next = im->data;
    for (int line = 1; next; line++) {
        char *token = next, *nl = strchr (next, '\n');
        next = nl ? nl + 1 : NULL;
        if (nl)
            *nl = 0;
        while (isspace ((unsigned char) *token))
            token++;
        size_t n = strlen (token);
        while (n > 0 && isspace ((unsigned char) token[n - 1]))
            token[--n] = 0;
        if (n == 0 || token[0] == '#')
            continue;
        if (rst_telegram_token_check (token, err, sizeof err))
            return cmd_fail (CMD_USAGE, "--tokens-file %s line %d: %s", im->file, line, err);
        if (im->nbots == S_IMPORT_MAX)
            return cmd_fail (CMD_USAGE, "--tokens-file %s has more than %d tokens: split it",
                             im->file, S_IMPORT_MAX);
        s_new_bot_init (&im->bots[im->nbots++], token, line);
    }
    if (im->nbots == 0)
        return cmd_fail (CMD_USAGE, "--tokens-file %s holds no token (only blank lines and # "
                         "comments)", im->file);
    return CMD_OK;
}

//  Marks the bots IM need not insert: a bot on an earlier line, or one
//  registered already, each with a note. Returns CMD_OK or CMD_FAIL after
//  printing why.
static int
s_import_skip (s_import_t *im, PGconn *conn)
{
    for (int i = 0; i < im->nbots; i++) {
        s_new_bot_t *nb = &im->bots[i];
        for (int j = 0; j < i && !nb->skip; j++)
            if (im->bots[j].id == nb->id) {
                nb->skip = 1;
                im->repeated++;
                s_import_note (im, "line %d: bot %s is already on line %d", nb->line,
                               nb->telegram_id, im->bots[j].line);
            }
        if (nb->skip)
            continue;
        cmd_bot_t known;
        int registered = s_bot_registered (conn, nb, &known);
        if (registered < 0)
            return CMD_FAIL;
        if (registered) {
            nb->skip = 1;
            im->registered++;
            s_import_note (im, "line %d: bot @%s is already registered (owner %s)", nb->line,
                           known.username, known.owner_email);
        }
        else
            im->todo++;
    }
    if (im->notes > S_IMPORT_NOTES)
        fprintf (stderr, "rastro: note: %d more lines skipped\n", im->notes - S_IMPORT_NOTES);
    return CMD_OK;
}

//  Asks Telegram about every bot IM inserts, then seals their tokens.
//  Returns CMD_OK or CMD_FAIL after printing why.
static int
s_import_check (s_import_t *im, const rst_config_t *cfg)
{
    char err[CMD_ERR_MAX];
    rst_telegram_t *telegram = rst_telegram_new (cfg->telegram_api_url, err, sizeof err);
    if (!telegram)
        return cmd_fail (CMD_FAIL, "%s", err);
    int rc = CMD_OK, done = 0;
    for (int i = 0; i < im->nbots && rc == CMD_OK; i++) {
        s_new_bot_t *nb = &im->bots[i];
        if (nb->skip)
            continue;
        if (s_bot_get_me (telegram, nb, err, sizeof err))
            rc = cmd_fail (CMD_FAIL, "--tokens-file %s line %d: %s (nothing was imported)",
                           im->file, nb->line, err);
        else if (++done % S_IMPORT_PROGRESS == 0)
            fprintf (stderr, "rastro: %d of %d tokens checked with Telegram\n", done, im->todo);
    }
    rst_telegram_destroy (&telegram);
    if (rc)
        return rc;
    rst_secret_t *secret = rst_secret_new (cfg->master_key_file, 1, err, sizeof err);
    if (!secret)
        return cmd_fail (CMD_FAIL, "%s", err);
    for (int i = 0; i < im->nbots && rc == CMD_OK; i++) {
        s_new_bot_t *nb = &im->bots[i];
        if (!nb->skip && !(nb->sealed = cmd_seal_with (secret, nb->token, strlen (nb->token),
                                                       "token")))
            rc = CMD_FAIL;
    }
    rst_secret_destroy (&secret);
    return rc;
}

//  Inserts IM's bots for OWNER_ID in one transaction: all or none.
//  Returns CMD_OK or CMD_FAIL after printing why.
static int
s_import_insert (s_import_t *im, PGconn *conn, const char *owner_id)
{
    if (cmd_exec (conn, "BEGIN"))
        return CMD_FAIL;
    if (s_bot_prepare (conn)) {
        cmd_rollback (conn);
        return CMD_FAIL;
    }
    char err[CMD_ERR_MAX];
    for (int i = 0; i < im->nbots; i++) {
        s_new_bot_t *nb = &im->bots[i];
        if (!nb->skip && s_bot_insert (conn, owner_id, nb, err, sizeof err)) {
            cmd_rollback (conn);
            return cmd_fail (CMD_FAIL, "--tokens-file %s line %d: %s (nothing was imported)",
                             im->file, nb->line, err);
        }
    }
    if (cmd_exec (conn, "COMMIT")) {
        cmd_rollback (conn);
        return CMD_FAIL;
    }
    return CMD_OK;
}

static int
s_bot_import (int argc, char **argv, const rst_config_t *cfg)
{
    s_import_t im = {0};
    const char *owner_email = NULL;
    const cmd_optdef_t opts[] = {CMD_OPT ("--tokens-file", &im.file),
                                 CMD_OPT ("--owner", &owner_email),
                                 CMD_OPT_END};
    int rc = cmd_parse (argc, argv, opts, NULL, 0, 0, "bot import takes no positional argument: "
                        "the tokens go in --tokens-file, one per line (see --help)");
    if (rc)
        return rc;
    if (!im.file)
        return cmd_fail (CMD_USAGE, "bot import needs --tokens-file FILE, a file holding one bot "
                         "token from @BotFather per line");
    if (cmd_check_owner (owner_email))
        return CMD_USAGE;

    PGconn *conn = NULL;
    cmd_owner_t owner;
    if ((rc = s_import_read (&im)))
        goto done;
    conn = cmd_open_db (cfg);
    if (!conn) {
        rc = CMD_FAIL;
        goto done;
    }
    if ((rc = cmd_resolve_owner (conn, owner_email, &owner)) || (rc = s_import_skip (&im, conn))
        || (rc = s_import_check (&im, cfg)) || (rc = s_import_insert (&im, conn, owner.id)))
        goto done;
    printf ("%d bot%s imported for %s (%d skipped: %d already registered, %d repeated in the "
            "file)\n", im.todo, im.todo == 1 ? "" : "s", owner.email, im.registered + im.repeated,
            im.registered, im.repeated);
done:
    for (int i = 0; im.bots && i < im.nbots; i++)
        free (im.bots[i].sealed);
    free (im.bots);
    if (im.data) {
        sodium_memzero (im.data, im.len);
        free (im.data);
    }
    PQfinish (conn);
    return rc;
}

static int
s_bot_list (int argc, char **argv, const rst_config_t *cfg)
{
    const char *owner_email;
    int rc = s_list_args ("bot", argc, argv, &owner_email);
    if (rc)
        return rc;
    return s_list (cfg, owner_email,
                   "SELECT '@' || b.username AS \"BOT\", b.telegram_id AS \"TELEGRAM_ID\","
                   " u.email AS \"OWNER\","
                   " CASE WHEN b.enabled THEN 'yes' ELSE 'no' END AS \"ENABLED\","
                   " CASE WHEN b.healthy THEN 'yes' ELSE 'no' END AS \"HEALTHY\","
                   " CASE WHEN length(b.token_enc) > 0 THEN 'set' ELSE 'missing' END AS \"TOKEN\","
                   " (SELECT count(*) FROM pool_bots pb WHERE pb.bot_id = b.id) AS \"POOLS\","
                   " to_char(b.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI')"
                   "   AS \"CREATED (UTC)\""
                   " FROM bots b JOIN users u ON u.id = b.owner_id"
                   " WHERE $1::bigint IS NULL OR b.owner_id = $1 ORDER BY u.id, b.username",
                   "no bots yet: add one with `rastro bot add --token-file F`");
}

//  Sets one boolean column of the bot named ARGV_NAME. Returns the exit status.
static int
s_bot_set (const rst_config_t *cfg, const char *arg, const char *column, int value,
           const char *done_word)
{
    const char *name = cmd_bot_name (arg);
    if (!cmd_is_username (name))
        return cmd_fail (CMD_USAGE, "'%s' is not a bot username (5 to 32 letters, digits or '_')",
                         arg);
    char sql[160];
    //  COLUMN is one of our literals ("healthy", "enabled"), never input.
    snprintf (sql, sizeof sql,
              "UPDATE bots SET %s = $2 WHERE lower(username) = lower($1) RETURNING username",
              column);
    const char *params[] = {name, value ? "true" : "false"};
    PGresult *res = cmd_query_once (cfg, sql, 2, params);
    if (!res)
        return CMD_FAIL;
    int rc = CMD_OK;
    if (PQntuples (res) == 0)
        rc = cmd_fail (CMD_FAIL, "no bot @%s (`rastro bot list` shows them)", name);
    else
        printf ("@%s %s\n", PQgetvalue (res, 0, 0), done_word);
    PQclear (res);
    return rc;
}

static int
s_bot_mark (int argc, char **argv, const rst_config_t *cfg)
{
    const char *args[2];
    int rc = cmd_parse (argc, argv, NULL, args, 2, 2, "usage: rastro bot mark <username> "
                        "healthy|unhealthy");
    if (rc)
        return rc;
    int healthy;
    if (!strcmp (args[1], "healthy"))
        healthy = 1;
    else if (!strcmp (args[1], "unhealthy"))
        healthy = 0;
    else
        return cmd_fail (CMD_USAGE, "bot mark: '%s' is neither healthy nor unhealthy", args[1]);
    return s_bot_set (cfg, args[0], "healthy", healthy,
                      healthy ? "marked healthy" : "marked unhealthy (links skip it)");
}

//  `bot enable|disable <username>`: ARGV[0] says which.
static int
s_bot_enable (int argc, char **argv, const rst_config_t *cfg)
{
    int enable = !strcmp (argv[0], "enable");
    const char *name;
    int rc = cmd_parse (argc, argv, NULL, &name, 1, 1, "usage: rastro bot %s <username>", argv[0]);
    if (rc)
        return rc;
    return s_bot_set (cfg, name, "enabled", enable,
                      enable ? "enabled" : "disabled (links skip it)");
}

static const cmd_sub_t s_bot_subs[] = {
    {"add", s_bot_add, "bot add --token-file F [--owner EMAIL]",
     "Adds a Telegram bot. rastro asks Telegram (getMe, at RASTRO_TELEGRAM_API_URL)\n"
     "who the token belongs to and prints the bot's username.\n\n"
     "  --token-file F  file holding the token from @BotFather (123456:AA...);\n"
     "                  encrypted before it is stored, never printed\n"
     "  --owner EMAIL   the owning user (default: the only user)\n"},
    {"import", s_bot_import, "bot import --tokens-file F [--owner EMAIL]",
     "Adds many Telegram bots at once, all or none: each token is checked with\n"
     "getMe like `bot add` does, then all are stored in one transaction. A bot\n"
     "registered already, or repeated in the file, is skipped with a note.\n"
     "Progress goes to stderr every 50 tokens; a summary to stdout.\n\n"
     "  --tokens-file F  one token from @BotFather per line (123456:AA...);\n"
     "                   blank lines and lines starting with # are ignored;\n"
     "                   encrypted before they are stored, never printed\n"
     "  --owner EMAIL    the owning user (default: the only user)\n"},
    {"list", s_bot_list, "bot list [--owner EMAIL]",
     "Lists the bots (of one user with --owner). Tokens show as \"set\".\n"},
    {"mark", s_bot_mark, "bot mark <username> healthy|unhealthy",
     "Marks a bot healthy or unhealthy. Links (/go/<slug>) skip unhealthy bots;\n"
     "the health node marks bots too.\n"},
    {"enable", s_bot_enable, "bot enable <username>",
     "Puts a disabled bot back into its pools' rotation.\n"},
    {"disable", s_bot_enable, "bot disable <username>",
     "Takes a bot out of its pools' rotation (it stays in the pools).\n"},
    {"webhook", cmd_bot_webhook, "bot webhook <username> (--url BASE | --delete)",
     "Chooses how a bot receives its updates.\n\n"
     "  --url BASE   webhook: Telegram POSTs updates to the front at\n"
     "               BASE/telegram/<username>. BASE is the front's public\n"
     "               https:// address (ports 443, 80, 88 or 8443), e.g.\n"
     "               https://bots.example.com. A new random secret token is\n"
     "               registered with Telegram; only its SHA-256 is stored.\n"
     "  --delete     back to polling: the webhook is deleted at Telegram and\n"
     "               the bots node polls getUpdates again (pending updates\n"
     "               are kept).\n\n"
     "example:\n  rastro bot webhook loja_a_bot --url https://bots.example.com\n"},
    {NULL, NULL, NULL, NULL},
};

const cmd_group_t cmd_bot_group = {
    .name = "bot",
    .summary = "Telegram bots receive the visitors; their tokens are encrypted at rest.",
    .subs = s_bot_subs,
};

//  ---------------------------------------------------------------------------
//  rastro pool

//  One --bot of `pool add`.
typedef struct {
    const char *name;       //  username without '@' (points into argv)
    size_t name_len;
    int weight;             //  S_WEIGHT_MIN..S_WEIGHT_MAX, 1 if not given
    int weighted;           //  1 if ":weight" was given
    char id[24];            //  bots.id once looked up
} s_pool_bot_t;

//  Parses "username[:weight]" into *BOT. Returns 0 or the exit status
//  after printing why.
static int
s_parse_pool_bot (const char *arg, s_pool_bot_t *bot)
{
    memset (bot, 0, sizeof *bot);
    const char *name = cmd_bot_name (arg);
    const char *colon = strchr (name, ':');
    bot->name = name;
    bot->name_len = colon ? (size_t) (colon - name) : strlen (name);
    bot->weight = 1;
    char username[CMD_USERNAME_MAX + 2];
    if (bot->name_len > CMD_USERNAME_MAX)
        return cmd_fail (CMD_USAGE, "--bot '%s': a bot username has at most %d characters", arg,
                         CMD_USERNAME_MAX);
    memcpy (username, name, bot->name_len);
    username[bot->name_len] = 0;
    if (!cmd_is_username (username))
        return cmd_fail (CMD_USAGE, "--bot '%s': '%s' is not a bot username (5 to 32 letters, "
                         "digits or '_')", arg, username);
    if (colon) {
        const char *w = colon + 1;
        size_t digits = strspn (w, "0123456789");
        long v = digits > 0 && digits <= 4 && !w[digits] ? strtol (w, NULL, 10) : -1;
        if (v < S_WEIGHT_MIN || v > S_WEIGHT_MAX)
            return cmd_fail (CMD_USAGE, "--bot '%s': the weight must be a whole number from %d "
                             "to %d",
                             arg, S_WEIGHT_MIN, S_WEIGHT_MAX);
        bot->weight = (int) v;
        bot->weighted = 1;
    }
    return CMD_OK;
}

//  The --bot options of `pool add`.
typedef struct {
    s_pool_bot_t bots[S_POOL_BOTS_MAX];
    int nbots;
    int any_weight;         //  1 if a ":weight" was given
} s_pool_bots_t;

//  cmd_optdef_t.each of --bot: parses ARG into CTX (an s_pool_bots_t).
//  Returns CMD_OK, or CMD_USAGE after printing why.
static int
s_pool_add_bot (void *ctx, const char *arg)
{
    s_pool_bots_t *pb = ctx;
    if (pb->nbots == S_POOL_BOTS_MAX)
        return cmd_fail (CMD_USAGE, "a pool has at most %d bots", S_POOL_BOTS_MAX);
    s_pool_bot_t *bot = &pb->bots[pb->nbots];
    int rc = s_parse_pool_bot (arg, bot);
    if (rc)
        return rc;
    for (int j = 0; j < pb->nbots; j++)
        if (pb->bots[j].name_len == bot->name_len
            && !strncasecmp (pb->bots[j].name, bot->name, bot->name_len))
            return cmd_fail (CMD_USAGE, "--bot @%.*s is given twice", (int) bot->name_len,
                             pb->bots[j].name);
    pb->any_weight |= bot->weighted;
    pb->nbots++;
    return CMD_OK;
}

static int
s_pool_add (int argc, char **argv, const rst_config_t *cfg)
{
    const char *slug, *pixel_id = NULL, *strategy = NULL, *owner_email = NULL;
    s_pool_bots_t pb = {.nbots = 0};
    const cmd_optdef_t opts[] = {CMD_EACH ("--bot", s_pool_add_bot, &pb),
                                 CMD_OPT ("--pixel", &pixel_id),
                                 CMD_OPT ("--strategy", &strategy),
                                 CMD_OPT ("--owner", &owner_email),
                                 CMD_OPT_END};
    int prc = cmd_parse (argc, argv, opts, &slug, 0, 1, "pool add takes one slug (see --help)");
    if (prc)
        return prc;
    s_pool_bot_t *bots = pb.bots;
    int nbots = pb.nbots;
    if (!slug)
        return cmd_fail (CMD_USAGE, "pool add needs a slug, the <slug> of /go/<slug> (see --help)");
    if (!s_is_slug (slug))
        return cmd_fail (CMD_USAGE, "'%s' is not a valid slug (1 to %d letters, digits, '_' or "
                         "'-')",
                         slug, S_SLUG_MAX);
    if (!pixel_id)
        return cmd_fail (CMD_USAGE, "pool add needs --pixel <pixel_id> (`rastro pixel list` shows "
                         "them)");
    if (!s_is_pixel_id (pixel_id))
        return cmd_fail (CMD_USAGE, "--pixel '%s' is not a pixel id (1 to %d digits)", pixel_id,
                         S_PIXEL_ID_MAX);
    if (nbots == 0)
        return cmd_fail (CMD_USAGE, "pool add needs at least one --bot <username>[:weight]");
    if (!strategy)
        strategy = pb.any_weight ? "weighted" : "round-robin";
    else if (strcmp (strategy, "round-robin") && strcmp (strategy, "weighted"))
        return cmd_fail (CMD_USAGE, "--strategy '%s': use round-robin or weighted", strategy);
    if (!strcmp (strategy, "round-robin"))
        for (int j = 0; j < nbots; j++)
            if (bots[j].weight != 1)
                return cmd_fail (CMD_USAGE, "--bot @%.*s has a weight, but round-robin ignores "
                                 "weights: use --strategy weighted", (int) bots[j].name_len,
                                 bots[j].name);
    if (cmd_check_owner (owner_email))
        return CMD_USAGE;

    PGconn *conn = cmd_open_db (cfg);
    if (!conn)
        return CMD_FAIL;
    cmd_owner_t owner;
    int rc = cmd_resolve_owner (conn, owner_email, &owner);
    if (rc)
        goto done;
    if (cmd_exec (conn, "BEGIN")) {
        rc = CMD_FAIL;
        goto done;
    }
    char err[CMD_ERR_MAX], state[6];
    PGresult *res;

    //  The pixel, among the owner's.
    const char *pixel_params[] = {owner.id, pixel_id};
    res = cmd_query (conn,
                     "SELECT id, owner_id = $1 FROM pixels WHERE pixel_id = $2"
                     " ORDER BY owner_id = $1 DESC LIMIT 1",
                     2, pixel_params, NULL, NULL, NULL, err, sizeof err);
    if (!res) {
        rc = cmd_fail (CMD_FAIL, "%s", err);
        goto rollback;
    }
    char pixel_ref[24] = "";
    int pixel_mine = PQntuples (res) == 1 && !strcmp (PQgetvalue (res, 0, 1), "t");
    if (pixel_mine)
        snprintf (pixel_ref, sizeof pixel_ref, "%s", PQgetvalue (res, 0, 0));
    else if (PQntuples (res) == 1)
        rc = cmd_fail (CMD_FAIL, "pixel %s belongs to another user than %s", pixel_id, owner.email);
    else
        rc = cmd_fail (CMD_FAIL, "no pixel %s for %s: add it first with `rastro pixel add %s "
                       "--token-file F`", pixel_id, owner.email, pixel_id);
    PQclear (res);
    if (rc)
        goto rollback;

    //  Every bot, among the owner's.
    for (int j = 0; j < nbots; j++) {
        char name[CMD_USERNAME_MAX + 1];
        snprintf (name, sizeof name, "%.*s", (int) bots[j].name_len, bots[j].name);
        const char *bot_params[] = {name};
        res = cmd_query (conn,
                         "SELECT b.id, b.owner_id, u.email FROM bots b"
                         " JOIN users u ON u.id = b.owner_id WHERE lower(b.username) = lower($1)",
                         1, bot_params, NULL, NULL, NULL, err, sizeof err);
        if (!res) {
            rc = cmd_fail (CMD_FAIL, "%s", err);
            goto rollback;
        }
        if (PQntuples (res) == 0)
            rc = cmd_fail (CMD_FAIL, "no bot @%s: add it first with `rastro bot add --token-file "
                           "F`",
                           name);
        else if (strcmp (PQgetvalue (res, 0, 1), owner.id))
            rc = cmd_fail (CMD_FAIL, "bot @%s belongs to %s, not to %s (a pool's bots, pixel and "
                           "pool have one owner)", name, PQgetvalue (res, 0, 2), owner.email);
        else
            snprintf (bots[j].id, sizeof bots[j].id, "%s", PQgetvalue (res, 0, 0));
        PQclear (res);
        if (rc)
            goto rollback;
    }

    const char *pool_params[] = {owner.id, slug, pixel_ref, strategy};
    res = cmd_query (conn,
                     "INSERT INTO pools (owner_id, slug, pixel_ref, strategy)"
                     " VALUES ($1, $2, $3, $4) RETURNING id",
                     4, pool_params, NULL, NULL, state, err, sizeof err);
    if (!res) {
        rc = !strcmp (state, CMD_UNIQUE_VIOLATION)
                 ? cmd_fail (CMD_FAIL, "a pool with slug '%s' already exists (slugs are unique)",
                             slug)
                 : cmd_fail (CMD_FAIL, "%s", err);
        goto rollback;
    }
    char pool_id[24];
    snprintf (pool_id, sizeof pool_id, "%s", PQgetvalue (res, 0, 0));
    PQclear (res);

    char summary[S_POOL_BOTS_MAX * (CMD_USERNAME_MAX + 8)] = "";
    size_t used = 0;
    for (int j = 0; j < nbots; j++) {
        char weight[16];
        snprintf (weight, sizeof weight, "%d", bots[j].weight);
        const char *pb_params[] = {pool_id, bots[j].id, weight};
        res = cmd_query (conn, "INSERT INTO pool_bots (pool_id, bot_id, weight) VALUES ($1, $2, "
                         "$3)",
                         3, pb_params, NULL, NULL, NULL, err, sizeof err);
        if (!res) {
            rc = cmd_fail (CMD_FAIL, "%s", err);
            goto rollback;
        }
        PQclear (res);
        int n = snprintf (summary + used, sizeof summary - used, "%s@%.*s:%d", j ? " " : "",
                          (int) bots[j].name_len, bots[j].name, bots[j].weight);
        if (n > 0 && (size_t) n < sizeof summary - used)
            used += (size_t) n;
    }
    if (cmd_exec (conn, "COMMIT")) {
        rc = CMD_FAIL;
        goto rollback;
    }
    printf ("pool %s added for %s: /go/%s -> %s (%s, pixel %s)\n", slug, owner.email, slug,
            summary, strategy, pixel_id);
    goto done;

rollback:
    cmd_rollback (conn);
done:
    PQfinish (conn);
    return rc;
}

static int
s_pool_list (int argc, char **argv, const rst_config_t *cfg)
{
    const char *owner_email;
    int rc = s_list_args ("pool", argc, argv, &owner_email);
    if (rc)
        return rc;
    return s_list (cfg, owner_email,
                   "SELECT o.slug AS \"SLUG\", u.email AS \"OWNER\", p.pixel_id AS \"PIXEL\","
                   " o.strategy AS \"STRATEGY\","
                   " CASE WHEN o.enabled THEN 'yes' ELSE 'no' END AS \"ENABLED\","
                   " coalesce((SELECT string_agg('@' || b.username || ':' || pb.weight"
                   "     || CASE WHEN NOT b.enabled THEN '(disabled)'"
                   "             WHEN NOT b.healthy THEN '(unhealthy)' ELSE '' END,"
                   "     ' ' ORDER BY b.username)"
                   "   FROM pool_bots pb JOIN bots b ON b.id = pb.bot_id"
                   "   WHERE pb.pool_id = o.id), '-') AS \"BOTS (username:weight)\""
                   " FROM pools o JOIN users u ON u.id = o.owner_id"
                   " JOIN pixels p ON p.id = o.pixel_ref"
                   " WHERE $1::bigint IS NULL OR o.owner_id = $1 ORDER BY u.id, o.slug",
                   "no pools yet: add one with `rastro pool add <slug> --pixel <pixel_id> "
                   "--bot <username>`");
}

//  `pool enable|disable <slug>`: ARGV[0] says which.
static int
s_pool_enable (int argc, char **argv, const rst_config_t *cfg)
{
    int enable = !strcmp (argv[0], "enable");
    const char *slug;
    int prc = cmd_parse (argc, argv, NULL, &slug, 1, 1, "usage: rastro pool %s <slug>", argv[0]);
    if (prc)
        return prc;
    if (!s_is_slug (slug))
        return cmd_fail (CMD_USAGE, "'%s' is not a valid slug (1 to %d letters, digits, '_' or "
                         "'-')",
                         slug, S_SLUG_MAX);
    const char *params[] = {slug, enable ? "true" : "false"};
    PGresult *res = cmd_query_once (
        cfg, "UPDATE pools SET enabled = $2 WHERE slug = $1 RETURNING slug", 2, params);
    if (!res)
        return CMD_FAIL;
    if (PQntuples (res) == 0)
        prc = cmd_fail (CMD_FAIL, "no pool '%s' (`rastro pool list` shows them)", slug);
    else
        printf ("pool %s %s\n", slug,
                enable ? "enabled" : "disabled (/go/ link answers 404 until enabled)");
    PQclear (res);
    return prc;
}

static const cmd_sub_t s_pool_subs[] = {
    {"add", s_pool_add,
     "pool add <slug> --pixel <pixel_id> --bot <username>[:weight] [--bot ...]\n"
     "                  [--strategy round-robin|weighted] [--owner EMAIL]",
     "Creates the link /go/<slug>: each visitor is sent to one of the pool's bots,\n"
     "and the funnel's events go to the pixel.\n\n"
     "  <slug>                 1 to 64 letters, digits, '_' or '-'; unique\n"
     "  --pixel ID             the pixel (`rastro pixel list`), same owner\n"
     "  --bot NAME[:WEIGHT]    a bot (`rastro bot list`), same owner; repeat for\n"
     "                         more; WEIGHT 1 to 1000 (default 1)\n"
     "  --strategy S           round-robin (default) or weighted (default when a\n"
     "                         weight is given): bots get clicks in proportion\n"
     "                         to their weights\n"
     "  --owner EMAIL          the owning user (default: the only user)\n\n"
     "example:\n  rastro pool add promo --pixel 123456789 --bot loja_a_bot:3 --bot loja_b_bot:1\n"},
    {"list", s_pool_list, "pool list [--owner EMAIL]",
     "Lists the pools with their pixel, strategy and bots (username:weight;\n"
     "disabled or unhealthy bots are marked).\n"},
    {"enable", s_pool_enable, "pool enable <slug>", "Turns a disabled link back on.\n"},
    {"disable", s_pool_enable, "pool disable <slug>",
     "Turns a link off: /go/<slug> answers 404 until it is enabled again.\n"},
    {NULL, NULL, NULL, NULL},
};

const cmd_group_t cmd_pool_group = {
    .name = "pool",
    .summary = "Pools are the ad links /go/<slug>: a pixel plus the bots that receive the "
               "visitors.",
    .subs = s_pool_subs,
};
