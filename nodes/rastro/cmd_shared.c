/*  cmd_shared — the toolkit of the admin commands (see commands.h).

    What `rastro offer`, `rastro gateway` and `rastro bot webhook` share:
    option parsing ("--name VALUE" or "--name=VALUE", each once, "--" ends
    the options), subcommand dispatch with --help, parameterised queries
    with one-line errors, the owner rules (--owner EMAIL, else the only
    user), aligned tables, sealing a secret under the master key, and
    reading a size-capped file.

    These behave exactly like the static helpers of cmd_admin.c, which
    predate this file; cmd_admin.c can switch to them and drop its copies.
*/
#include "commands.h"
#include "rst_secret.h"

#include <ctype.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_EMAIL_LOCAL_MAX 64
#define S_TABLE_COLS_MAX  32    //  columns cmd_print_rows aligns

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

//  Shape of an address: local@domain.tld, printable ASCII, no spaces.
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

long
cmd_utf8_chars (const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *) s, *end = p + len;
    long chars = 0;
    while (p < end) {
        unsigned c = *p;
        size_t more;
        unsigned cp, min;
        if (c == 0)
            return -1;
        if (c < 0x80) {
            p++;
            chars++;
            continue;
        }
        if ((c & 0xE0) == 0xC0) {
            more = 1;
            cp = c & 0x1F;
            min = 0x80;
        }
        else if ((c & 0xF0) == 0xE0) {
            more = 2;
            cp = c & 0x0F;
            min = 0x800;
        }
        else if ((c & 0xF8) == 0xF0) {
            more = 3;
            cp = c & 0x07;
            min = 0x10000;
        }
        else
            return -1;
        if ((size_t) (end - p) < more + 1)
            return -1;
        for (size_t k = 1; k <= more; k++) {
            if ((p[k] & 0xC0) != 0x80)
                return -1;
            cp = (cp << 6) | (p[k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return -1;
        p += more + 1;
        chars++;
    }
    return chars;
}

//  ---------------------------------------------------------------------------
//  Options

//  Matches ARGV[*I] against option NAME ("--name VALUE" or "--name=VALUE").
//  Returns 0 if it is another argument; 1 with *VALUE set (and *I moved
//  past a separate value); -1 after printing why if the value is missing
//  or the option was given twice.
static int
s_opt (int argc, char **argv, int *i, const char *name, const char **value)
{
    const char *arg = argv[*i];
    size_t n = strlen (name);
    if (strncmp (arg, name, n) || (arg[n] != 0 && arg[n] != '='))
        return 0;
    if (*value) {
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

//  Classifies an argument that is no known option: 1 for a positional
//  argument, -1 for the "--" that ends the options, 0 after printing why
//  for an unknown option.
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

int
cmd_parse_args (int argc, char **argv, const cmd_optdef_t *opts, const char **pos, int max,
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
            else if (!o->flag)
                m = s_opt (argc, argv, &i, o->name, o->value);
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
            return CMD_TOO_MANY;
        pos[n++] = argv[i];
    }
    if (npos)
        *npos = n;
    return CMD_OK;
}

//  ---------------------------------------------------------------------------
//  PostgreSQL

PGresult *
cmd_query (PGconn *conn, const char *sql, int nparams, const char *const *params,
           const int *lengths, const int *formats, char *state, char *err, size_t errlen)
{
    if (state)
        state[0] = 0;
    PGresult *res = PQexecParams (conn, sql, nparams, NULL, params, lengths, formats, 0);
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

//  Copies EMAIL lower-cased into OUT (CMD_EMAIL_MAX + 1 bytes).
static void
s_lower (const char *email, char *out)
{
    size_t i = 0;
    for (; email[i] && i < CMD_EMAIL_MAX; i++)
        out[i] = (char) tolower ((unsigned char) email[i]);
    out[i] = 0;
}

//  Fills *OWNER from row 0 of RES (id, email).
static void
s_owner_from (PGresult *res, cmd_owner_t *owner)
{
    snprintf (owner->id, sizeof owner->id, "%s", PQgetvalue (res, 0, 0));
    snprintf (owner->email, sizeof owner->email, "%s", PQgetvalue (res, 0, 1));
}

int
cmd_find_user (PGconn *conn, const char *email, cmd_owner_t *owner)
{
    if (!cmd_is_email (email))
        return cmd_fail (CMD_USAGE, "'%s' is not an email address", email);
    char lower[CMD_EMAIL_MAX + 1];
    s_lower (email, lower);
    const char *params[] = {lower};
    char err[CMD_ERR_MAX];
    PGresult *res = cmd_query (conn, "SELECT id, email FROM users WHERE email = $1", 1, params,
                               NULL, NULL, NULL, err, sizeof err);
    if (!res)
        return cmd_fail (CMD_FAIL, "%s", err);
    int rows = PQntuples (res);
    if (rows == 1)
        s_owner_from (res, owner);
    PQclear (res);
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
    char err[CMD_ERR_MAX];
    PGresult *res = cmd_query (conn, "SELECT id, email FROM users ORDER BY id LIMIT 2", 0, NULL,
                               NULL, NULL, NULL, err, sizeof err);
    if (!res)
        return cmd_fail (CMD_FAIL, "%s", err);
    int rows = PQntuples (res);
    if (rows == 1)
        s_owner_from (res, owner);
    PQclear (res);
    if (rows == 0)
        return cmd_fail (CMD_FAIL, "there is no user yet: run `rastro user add <email>` first "
                         "(everything belongs to a user)");
    if (rows > 1)
        return cmd_fail (CMD_USAGE, "there are several users: say whose it is with --owner EMAIL "
                         "(`rastro user list` shows them)");
    return CMD_OK;
}

//  ---------------------------------------------------------------------------
//  Tables

//  Characters in the UTF-8 text S (continuation bytes do not count).
static size_t
s_width (const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char) *s & 0xC0) != 0x80)
            n++;
    return n;
}

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
            size_t n = s_width (v ? v : "-");
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
                printf ("%s%*s  ", v, (int) (width[c] - s_width (v)), "");
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
    size_t sealed_len = 0;
    unsigned char *sealed = rst_secret_seal (secret, plain, len, &sealed_len);
    rst_secret_destroy (&secret);
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
cmd_dispatch (const char *group, const char *summary, const cmd_sub_t *subs, int argc,
              char **argv, const rst_config_t *cfg)
{
    if (argc < 2 || cmd_is_help (argv[1])) {
        FILE *out = argc < 2 ? stderr : stdout;
        fprintf (out, "usage: rastro %s <subcommand> ...   (rastro %s <subcommand> --help "
                 "for more)\n\n%s\n\nsubcommands:\n", group, group, summary);
        for (const cmd_sub_t *s = subs; s->name; s++)
            fprintf (out, "  rastro %s\n", s->synopsis);
        return argc < 2 ? CMD_USAGE : CMD_OK;
    }
    for (const cmd_sub_t *s = subs; s->name; s++) {
        if (strcmp (argv[1], s->name))
            continue;
        if (cmd_wants_help (argc - 1, argv + 1)) {
            printf ("usage: rastro %s\n\n%s", s->synopsis, s->help);
            return CMD_OK;
        }
        return s->run (argc - 1, argv + 1, cfg);
    }
    return cmd_fail (CMD_USAGE, "unknown subcommand '%s %s' (rastro %s --help lists them)", group,
                     argv[1], group);
}
