/*  cmd_common — what the `rastro` commands share (see commands.h).

    The one error voice of the command line ("rastro: <message>" on
    stderr), the database connection every admin command opens
    (rst_db_connect, then rst_db_migrate so that a fresh cluster works),
    and the admin commands' toolkit: argument checks, option parsing
    ("--name VALUE" or "--name=VALUE", each once, "--" ends the options),
    subcommand dispatch with --help, parameterised queries with one-line
    errors, the owner rules (--owner EMAIL, else the only user), bot
    lookups, aligned tables, sealing a secret under the master key, and
    reading a size-capped file.
*/
#include "commands.h"
#include "rst_db.h"
#include "rst_secret.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_EMAIL_LOCAL_MAX 64
#define S_TABLE_COLS_MAX  32    //  columns cmd_print_rows aligns

//  ---------------------------------------------------------------------------
//  Errors and the database

//  cmd_fail with a va_list.
static int
s_vfail (int status, const char *fmt, va_list ap)
{
    fputs ("rastro: ", stderr);
    vfprintf (stderr, fmt, ap);
    fputc ('\n', stderr);
    return status;
}

int
cmd_fail (int status, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    s_vfail (status, fmt, ap);
    va_end (ap);
    return status;
}

PGconn *
cmd_open_db (const rst_config_t *cfg)
{
    char err[CMD_ERR_MAX];
    PGconn *conn = rst_db_connect (cfg, err, sizeof err);
    if (!conn) {
        cmd_fail (CMD_FAIL, "%s", err);
        return NULL;
    }
    if (rst_db_migrate (conn, err, sizeof err) < 0) {
        cmd_fail (CMD_FAIL, "%s", err);
        PQfinish (conn);
        return NULL;
    }
    return conn;
}

//  ---------------------------------------------------------------------------
//  Argument checks

int
cmd_is_help (const char *arg)
{
    return !strcmp (arg, "--help") || !strcmp (arg, "-h");
}

int
cmd_wants_help (int argc, char **argv)
{
    for (int i = 1; i < argc && strcmp (argv[i], "--"); i++)
        if (cmd_is_help (argv[i]))
            return 1;
    return 0;
}

int
cmd_is_word (const char *value, size_t min, size_t max, const char *extra)
{
    size_t n = strlen (value);
    if (n < min || n > max)
        return 0;
    for (const char *s = value; *s; s++)
        if (!isalnum ((unsigned char) *s) && !strchr (extra, *s))
            return 0;
    return 1;
}

int
cmd_is_number (const char *value, size_t max)
{
    size_t n = strlen (value);
    return n >= 1 && n <= max && strspn (value, "0123456789") == n;
}

//  Shape of an address: local@domain.tld, printable ASCII, no spaces.
//  Deliverability is not our business; typos like "a@b" or "a b@c.d" are.
int
cmd_is_email (const char *value)
{
    size_t n = strlen (value);
    const char *at = strchr (value, '@');
    if (n < 3 || n > CMD_EMAIL_MAX || !at || strchr (at + 1, '@'))
        return 0;
    size_t local = (size_t) (at - value);
    if (local < 1 || local > S_EMAIL_LOCAL_MAX)
        return 0;
    for (const char *s = value; s < at; s++)
        if (*s <= ' ' || *s >= 127 || strchr ("\"(),:;<>[\\]", *s))
            return 0;
    const char *domain = at + 1;
    size_t dlen = strlen (domain);
    if (!strchr (domain, '.') || *domain == '.' || *domain == '-' || strstr (domain, "..")
        || domain[dlen - 1] == '.' || domain[dlen - 1] == '-')
        return 0;
    for (const char *s = domain; *s; s++)
        if (!isalnum ((unsigned char) *s) && *s != '.' && *s != '-')
            return 0;
    return 1;
}

void
cmd_email_lower (const char *email, char *out)
{
    size_t i = 0;
    for (; email[i] && i < CMD_EMAIL_MAX; i++)
        out[i] = (char) tolower ((unsigned char) email[i]);
    out[i] = 0;
}

const char *
cmd_bot_name (const char *arg)
{
    return arg[0] == '@' ? arg + 1 : arg;
}

int
cmd_is_username (const char *name)
{
    return cmd_is_word (name, CMD_USERNAME_MIN, CMD_USERNAME_MAX, "_");
}

int
cmd_check_owner (const char *email)
{
    if (email && !cmd_is_email (email))
        return cmd_fail (CMD_USAGE, "--owner '%s' is not an email address", email);
    return CMD_OK;
}

int
cmd_check_bot (const char **name)
{
    if (!*name)
        return CMD_OK;
    *name = cmd_bot_name (*name);
    if (!cmd_is_username (*name))
        return cmd_fail (CMD_USAGE, "--bot '%s' is not a bot username (5 to 32 letters, digits "
                         "or '_')", *name);
    return CMD_OK;
}

size_t
cmd_chars (const char *s)
{
    size_t bytes = strlen (s), continuations = 0;
    for (size_t i = 0; i < bytes; i++)
        continuations += ((unsigned char) s[i] & 0xC0) == 0x80;
    return bytes - continuations;
}

//  Reads the token in PATH into BUF (BUFLEN bytes): the file's content
//  without leading or trailing whitespace, which must be one word of
//  printable ASCII. Returns 0, or the exit status after printing why (the
//  content is never printed). BUF is wiped on failure.
int
cmd_read_token_file (const char *path, char *buf, size_t buflen)
{
    FILE *f = fopen (path, "rb");
    if (!f)
        return cmd_fail (CMD_USAGE, "cannot read token file %s: %s", path, strerror (errno));
    size_t n = fread (buf, 1, buflen - 1, f);
    int more = n == buflen - 1 && fgetc (f) != EOF;
    int failed = ferror (f);
    fclose (f);
    buf[n] = 0;
    int rc = CMD_OK;
    if (failed)
        rc = cmd_fail (CMD_USAGE, "cannot read token file %s", path);
    else if (more)
        rc = cmd_fail (CMD_USAGE, "token file %s is larger than %zu bytes: it should hold only the "
                       "token", path, buflen - 2);
    else if (memchr (buf, 0, n))
        rc = cmd_fail (CMD_USAGE, "token file %s is binary: it should hold only the token", path);
    if (rc)
        goto fail;
    while (n > 0 && isspace ((unsigned char) buf[n - 1]))
        buf[--n] = 0;
    size_t start = 0;
    while (start < n && isspace ((unsigned char) buf[start]))
        start++;
    memmove (buf, buf + start, n - start + 1);
    n -= start;
    if (n == 0) {
        rc = cmd_fail (CMD_USAGE, "token file %s is empty", path);
        goto fail;
    }
    for (size_t i = 0; i < n; i++)
        if ((unsigned char) buf[i] <= ' ' || (unsigned char) buf[i] >= 127) {
            rc = cmd_fail (CMD_USAGE, "token file %s holds more than the token (spaces, several "
                           "lines or non-ASCII characters): put only the token in it", path);
            goto fail;
        }
    return CMD_OK;
fail:
    sodium_memzero (buf, buflen);
    return rc;
}

//  ---------------------------------------------------------------------------
//  Options

int
cmd_opt (int argc, char **argv, int *i, const char *name, const char **value, int repeatable)
{
    const char *arg = argv[*i];
    size_t n = strlen (name);
    if (strncmp (arg, name, n) || (arg[n] != 0 && arg[n] != '='))
        return 0;
    if (*value && !repeatable) {
        cmd_fail (CMD_USAGE, "%s given twice", name);
        return -1;
    }
    if (arg[n] == '=')
        *value = arg + n + 1;
    else if (*i + 1 < argc)
        *value = argv[++*i];
    else {
        cmd_fail (CMD_USAGE, "%s needs a value (see --help)", name);
        return -1;
    }
    return 1;
}

//  Classifies ARG, an argument that is no known option: returns 1 for a
//  positional argument, -1 for the "--" that ends the options (*DASHDASH
//  becomes 1), and 0 after printing why for an unknown option.
static int
s_positional (const char *arg, int *dashdash)
{
    if (!*dashdash && !strcmp (arg, "--")) {
        *dashdash = 1;
        return -1;
    }
    if (!*dashdash && arg[0] == '-' && arg[1]) {
        cmd_fail (CMD_USAGE, "unknown option %s (see --help)", arg);
        return 0;
    }
    return 1;
}

#define S_TOO_MANY (-1)         //  s_parse_args: more positional arguments than allowed

//  Parses ARGV[1..ARGC) for the options OPTS and up to MAX positional
//  arguments, stored into POS[0..MAX) and counted in *NPOS. Returns CMD_OK;
//  CMD_USAGE (or an EACH's status) after printing why; or S_TOO_MANY,
//  printing nothing, at the first positional argument over MAX.
static int
s_parse_args (int argc, char **argv, const cmd_optdef_t *opts, const char **pos, int max,
              int *npos)
{
    int n = 0, dashdash = 0;
    for (int k = 0; k < max; k++)
        pos[k] = NULL;
    for (int i = 1; i < argc; i++) {
        int m = 0;
        for (const cmd_optdef_t *o = opts; !dashdash && o && o->name && !m; o++) {
            if (o->flag && !strcmp (argv[i], o->name)) {
                if (*o->flag) {
                    cmd_fail (CMD_USAGE, "%s given twice", o->name);
                    return CMD_USAGE;
                }
                *o->flag = 1;
                m = 1;
            }
            else if (o->each) {
                const char *value = NULL;
                m = cmd_opt (argc, argv, &i, o->name, &value, 1);
                int rc = m > 0 ? o->each (o->ctx, value) : CMD_OK;
                if (rc)
                    return rc;
            }
            else if (!o->flag)
                m = cmd_opt (argc, argv, &i, o->name, o->value, 0);
        }
        if (m < 0)
            return CMD_USAGE;
        if (m > 0)
            continue;
        int p = s_positional (argv[i], &dashdash);
        if (p == 0)
            return CMD_USAGE;
        if (p < 0)
            continue;
        if (n == max)
            return S_TOO_MANY;
        pos[n++] = argv[i];
    }
    if (npos)
        *npos = n;
    return CMD_OK;
}

int
cmd_parse (int argc, char **argv, const cmd_optdef_t *opts, const char **pos, int min, int max,
           const char *fmt, ...)
{
    int n = 0;
    int rc = s_parse_args (argc, argv, opts, pos, max, &n);
    if (rc == CMD_OK && n >= min)
        return CMD_OK;
    if (rc != S_TOO_MANY && rc != CMD_OK)
        return rc;
    va_list ap;
    va_start (ap, fmt);
    s_vfail (CMD_USAGE, fmt, ap);
    va_end (ap);
    return CMD_USAGE;
}

//  ---------------------------------------------------------------------------
//  PostgreSQL

//  Returns RES, the result of a call on CONN, if it succeeded. Otherwise
//  clears it and returns NULL with the SQLSTATE in STATE (6 bytes, may be
//  NULL) and a one-line message in ERR.
static PGresult *
s_checked (PGconn *conn, PGresult *res, char *state, char *err, size_t errlen)
{
    if (state)
        state[0] = 0;
    ExecStatusType st = res ? PQresultStatus (res) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return res;
    const char *code = res ? PQresultErrorField (res, PG_DIAG_SQLSTATE) : NULL;
    if (state && code)
        snprintf (state, 6, "%s", code);
    const char *msg = res ? PQresultErrorField (res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    snprintf (err, errlen, "postgresql: %s", msg ? msg : PQerrorMessage (conn));
    //  libpq's messages end in a newline; keep errors on one line.
    for (char *s = err; *s; s++)
        if (*s == '\n')
            *s = *(s + 1) ? ' ' : 0;
    PQclear (res);
    return NULL;
}

PGresult *
cmd_query (PGconn *conn, const char *sql, int nparams, const char *const *params,
           const int *lengths, const int *formats, char *state, char *err, size_t errlen)
{
    return s_checked (conn, PQexecParams (conn, sql, nparams, NULL, params, lengths, formats, 0),
                      state, err, errlen);
}

PGresult *
cmd_query_once (const rst_config_t *cfg, const char *sql, int nparams, const char *const *params)
{
    PGconn *conn = cmd_open_db (cfg);
    if (!conn)
        return NULL;
    char err[CMD_ERR_MAX];
    PGresult *res = cmd_query (conn, sql, nparams, params, NULL, NULL, NULL, err, sizeof err);
    if (!res)
        cmd_fail (CMD_FAIL, "%s", err);
    PQfinish (conn);
    return res;
}

int
cmd_prepare (PGconn *conn, const char *name, const char *sql, int nparams)
{
    char err[CMD_ERR_MAX];
    PGresult *res = s_checked (conn, PQprepare (conn, name, sql, nparams, NULL), NULL, err,
                               sizeof err);
    if (!res)
        return cmd_fail (CMD_FAIL, "%s", err);
    PQclear (res);
    return CMD_OK;
}

PGresult *
cmd_query_prepared (PGconn *conn, const char *name, int nparams, const char *const *params,
                    char *state, char *err, size_t errlen)
{
    return s_checked (conn, PQexecPrepared (conn, name, nparams, params, NULL, NULL, 0), state,
                      err, errlen);
}

int
cmd_exec (PGconn *conn, const char *sql)
{
    char err[CMD_ERR_MAX];
    PGresult *res = cmd_query (conn, sql, 0, NULL, NULL, NULL, NULL, err, sizeof err);
    if (!res)
        return cmd_fail (CMD_FAIL, "%s", err);
    PQclear (res);
    return CMD_OK;
}

void
cmd_rollback (PGconn *conn)
{
    PGresult *res = PQexec (conn, "ROLLBACK");
    PQclear (res);
}

//  Runs SQL (NPARAMS PARAMS), which selects the id and email of users, and
//  fills *OWNER (OUT) when exactly one row came back. Returns the number of
//  rows, or -1 after printing why.
static int
s_users (PGconn *conn, const char *sql, int nparams, const char *const *params,
         cmd_owner_t *owner)
{
    char err[CMD_ERR_MAX];
    PGresult *res = cmd_query (conn, sql, nparams, params, NULL, NULL, NULL, err, sizeof err);
    if (!res)
        return cmd_fail (-1, "%s", err);
    int rows = PQntuples (res);
    if (rows == 1) {
        snprintf (owner->id, sizeof owner->id, "%s", PQgetvalue (res, 0, 0));
        snprintf (owner->email, sizeof owner->email, "%s", PQgetvalue (res, 0, 1));
    }
    PQclear (res);
    return rows;
}

int
cmd_find_user (PGconn *conn, const char *email, cmd_owner_t *owner)
{
    if (!cmd_is_email (email))
        return cmd_fail (CMD_USAGE, "'%s' is not an email address", email);
    char lower[CMD_EMAIL_MAX + 1];
    cmd_email_lower (email, lower);
    const char *params[] = {lower};
    int rows = s_users (conn, "SELECT id, email FROM users WHERE email = $1", 1, params, owner);
    if (rows < 0)
        return CMD_FAIL;
    if (rows != 1)
        return cmd_fail (CMD_FAIL, "no user %s (`rastro user list` shows them; `rastro user add "
                         "%s` creates it)", lower, lower);
    return CMD_OK;
}

int
cmd_resolve_owner (PGconn *conn, const char *email, cmd_owner_t *owner)
{
    if (email)
        return cmd_find_user (conn, email, owner);
    int rows = s_users (conn, "SELECT id, email FROM users ORDER BY id LIMIT 2", 0, NULL, owner);
    if (rows < 0)
        return CMD_FAIL;
    if (rows == 0)
        return cmd_fail (CMD_FAIL, "there is no user yet: run `rastro user add <email>` first "
                         "(everything belongs to a user)");
    if (rows > 1)
        return cmd_fail (CMD_USAGE, "there are several users: say whose it is with --owner EMAIL "
                         "(`rastro user list` shows them)");
    return CMD_OK;
}

int
cmd_find_bot (PGconn *conn, const char *name, const cmd_owner_t *owner, const char *lock,
              cmd_bot_t *bot)
{
    //  LOCK is one of the CMD_LOCK_* literals, never input.
    assert (!strcmp (lock, CMD_LOCK_SHARE) || !strcmp (lock, CMD_LOCK_UPDATE));
    char sql[256];
    snprintf (sql, sizeof sql,
              "SELECT b.id, b.owner_id, u.email, b.username FROM bots b"
              " JOIN users u ON u.id = b.owner_id WHERE lower(b.username) = lower($1) %s", lock);
    const char *params[] = {name};
    char err[CMD_ERR_MAX];
    PGresult *res = cmd_query (conn, sql, 1, params, NULL, NULL, NULL, err, sizeof err);
    if (!res)
        return cmd_fail (CMD_FAIL, "%s", err);
    int rc = CMD_OK;
    if (PQntuples (res) == 0)
        rc = cmd_fail (CMD_FAIL, "no bot @%s: add it first with `rastro bot add --token-file F`",
                       name);
    else if (owner && strcmp (PQgetvalue (res, 0, 1), owner->id))
        rc = cmd_fail (CMD_FAIL, "bot @%s belongs to %s, not to %s", name, PQgetvalue (res, 0, 2),
                       owner->email);
    else {
        snprintf (bot->id, sizeof bot->id, "%s", PQgetvalue (res, 0, 0));
        snprintf (bot->owner_id, sizeof bot->owner_id, "%s", PQgetvalue (res, 0, 1));
        snprintf (bot->owner_email, sizeof bot->owner_email, "%s", PQgetvalue (res, 0, 2));
        snprintf (bot->username, sizeof bot->username, "%s", PQgetvalue (res, 0, 3));
    }
    PQclear (res);
    return rc;
}

int
cmd_find_scope (PGconn *conn, const char *owner_email, const char *bot, cmd_scope_t *scope)
{
    memset (scope, 0, sizeof *scope);
    int rc;
    if (owner_email) {
        if ((rc = cmd_find_user (conn, owner_email, &scope->owner)))
            return rc;
        scope->owner_id = scope->owner.id;
    }
    if (bot) {
        if ((rc = cmd_find_bot (conn, bot, scope->owner_id ? &scope->owner : NULL, CMD_LOCK_SHARE,
                                &scope->bot)))
            return rc;
        scope->bot_id = scope->bot.id;
    }
    return CMD_OK;
}

//  ---------------------------------------------------------------------------
//  Tables

void
cmd_print_rows (int rows, int cols, const char *(*cell) (void *ctx, int r, int c), void *ctx,
                const char *empty)
{
    if (rows == 0) {
        printf ("%s\n", empty);
        return;
    }
    size_t width[S_TABLE_COLS_MAX] = {0};
    if (cols > S_TABLE_COLS_MAX)
        cols = S_TABLE_COLS_MAX;
    for (int c = 0; c < cols; c++)
        for (int r = -1; r < rows; r++) {
            const char *v = cell (ctx, r, c);
            size_t n = cmd_chars (v ? v : "-");
            if (n > width[c])
                width[c] = n;
        }
    for (int r = -1; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            const char *v = cell (ctx, r, c);
            if (!v)
                v = "-";
            if (c == cols - 1)
                printf ("%s\n", v);
            else
                printf ("%s%*s  ", v, (int) (width[c] - cmd_chars (v)), "");
        }
}

static const char *
s_result_cell (void *ctx, int r, int c)
{
    PGresult *res = ctx;
    if (r < 0)
        return PQfname (res, c);
    return PQgetisnull (res, r, c) ? NULL : PQgetvalue (res, r, c);
}

void
cmd_print_table (PGresult *res, const char *empty)
{
    cmd_print_rows (PQntuples (res), PQnfields (res), s_result_cell, res, empty);
}

//  ---------------------------------------------------------------------------
//  Secrets and files

char *
cmd_seal (const rst_config_t *cfg, const void *plain, size_t len, const char *what)
{
    char err[CMD_ERR_MAX];
    rst_secret_t *secret = rst_secret_new (cfg->master_key_file, 1, err, sizeof err);
    if (!secret) {
        cmd_fail (CMD_FAIL, "%s", err);
        return NULL;
    }
    char *hex = cmd_seal_with (secret, plain, len, what);
    rst_secret_destroy (&secret);
    return hex;
}

char *
cmd_seal_with (rst_secret_t *secret, const void *plain, size_t len, const char *what)
{
    size_t sealed_len = 0;
    unsigned char *sealed = rst_secret_seal (secret, plain, len, &sealed_len);
    if (!sealed) {
        cmd_fail (CMD_FAIL, "libsodium: cannot encrypt the %s", what);
        return NULL;
    }
    char *hex = malloc (2 + sealed_len * 2 + 1);
    if (hex) {
        memcpy (hex, "\\x", 2);
        sodium_bin2hex (hex + 2, sealed_len * 2 + 1, sealed, sealed_len);
    }
    else
        cmd_fail (CMD_FAIL, "out of memory");
    free (sealed);
    return hex;
}

int
cmd_read_file (const char *path, const char *what, size_t max, char **data_p, size_t *len_p)
{
    *data_p = NULL;
    *len_p = 0;
    FILE *f = fopen (path, "rb");
    if (!f)
        return cmd_fail (CMD_USAGE, "%s: cannot read %s: %s", what, path, strerror (errno));
    //  One buffer of the largest allowed size: no realloc leaves copies of
    //  a secret behind in freed memory.
    char *buf = malloc (max + 2);
    if (!buf) {
        fclose (f);
        return cmd_fail (CMD_FAIL, "out of memory");
    }
    size_t n = fread (buf, 1, max + 1, f);
    int failed = ferror (f);
    int saved = errno;
    fclose (f);
    buf[n] = 0;
    int rc = CMD_OK;
    if (failed)
        rc = cmd_fail (CMD_USAGE, "%s: cannot read %s: %s", what, path, strerror (saved));
    else if (n > max)
        rc = cmd_fail (CMD_USAGE, "%s: %s is larger than %zu bytes", what, path, max);
    else if (n == 0)
        rc = cmd_fail (CMD_USAGE, "%s: %s is empty", what, path);
    if (rc) {
        sodium_memzero (buf, max + 2);
        free (buf);
        return rc;
    }
    *data_p = buf;
    *len_p = n;
    return CMD_OK;
}

//  ---------------------------------------------------------------------------
//  Subcommands

int
cmd_dispatch (const cmd_group_t *group, int argc, char **argv, const rst_config_t *cfg)
{
    const char *name = group->name;
    if (argc < 2 || cmd_is_help (argv[1])) {
        FILE *out = argc < 2 ? stderr : stdout;
        fprintf (out, "usage: rastro %s <subcommand> ...   (rastro %s <subcommand> --help "
                 "for more)\n\n%s\n\nsubcommands:\n", name, name, group->summary);
        for (const cmd_sub_t *s = group->subs; s->name; s++)
            fprintf (out, "  rastro %s\n", s->synopsis);
        return argc < 2 ? CMD_USAGE : CMD_OK;
    }
    for (const cmd_sub_t *s = group->subs; s->name; s++) {
        if (strcmp (argv[1], s->name))
            continue;
        if (cmd_wants_help (argc - 1, argv + 1)) {
            printf ("usage: rastro %s\n\n%s", s->synopsis, s->help);
            return CMD_OK;
        }
        return s->run (argc - 1, argv + 1, cfg);
    }
    return cmd_fail (CMD_USAGE, "unknown subcommand '%s %s' (rastro %s --help lists them)", name,
                     argv[1], name);
}
