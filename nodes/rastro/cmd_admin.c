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

    Ownership: every pixel, bot and pool belongs to a user. `--owner EMAIL`
    chooses the user; without it the only user is the owner, several users
    make --owner required, and no user at all asks for `rastro user add`.
    A pool's pixel and bots must belong to the pool's owner.

    Secrets: Meta and Telegram tokens are read from files (never from the
    command line, where `ps` and shell history would see them), sealed with
    rst_secret under the master key (created 0600 on first use) and stored
    as bytea. No token is ever printed: errors name the file, `list` says
    "set". Passwords come from stdin (the first line; with a terminal, typed
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
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <termios.h>
#include <unistd.h>

#define S_OK    0               //  exit statuses (commands.h)
#define S_FAIL  1
#define S_USAGE 2

#define S_EMAIL_MAX       254   //  users.email CHECK
#define S_EMAIL_LOCAL_MAX 64
#define S_PASSWORD_MIN    8     //  characters
#define S_PASSWORD_MAX    1024  //  bytes
#define S_TOKEN_FILE_MAX  4096  //  bytes; Meta tokens are a few hundred
#define S_PIXEL_ID_MAX    32    //  digits
#define S_SLUG_MAX        64
#define S_CODE_MAX        64    //  --test-event-code
#define S_USERNAME_MIN    5     //  Telegram usernames: 5-32 of [A-Za-z0-9_]
#define S_USERNAME_MAX    32
#define S_WEIGHT_MIN      1
#define S_WEIGHT_MAX      1000
#define S_POOL_BOTS_MAX   100   //  --bot options in one pool
#define S_ERR_MAX         1024

//  ---------------------------------------------------------------------------
//  Argument checks. Each returns 1 if VALUE is acceptable.

static int
s_is_help (const char *arg)
{
    return !strcmp (arg, "--help") || !strcmp (arg, "-h");
}

//  1 if any argument before "--" asks for help.
static int
s_wants_help (int argc, char **argv)
{
    for (int i = 1; i < argc && strcmp (argv[i], "--"); i++)
        if (s_is_help (argv[i]))
            return 1;
    return 0;
}

//  1 if VALUE is 1 to MAX characters, each a letter, a digit or one of EXTRA.
static int
s_is_word (const char *value, size_t min, size_t max, const char *extra)
{
    size_t n = strlen (value);
    if (n < min || n > max)
        return 0;
    for (const char *s = value; *s; s++)
        if (!isalnum ((unsigned char) *s) && !strchr (extra, *s))
            return 0;
    return 1;
}

static int
s_is_pixel_id (const char *value)
{
    size_t n = strlen (value);
    if (n < 1 || n > S_PIXEL_ID_MAX)
        return 0;
    for (const char *s = value; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

static int
s_is_slug (const char *value)
{
    return s_is_word (value, 1, S_SLUG_MAX, "_-");
}

//  Shape of an address: local@domain.tld, printable ASCII, no spaces.
//  Deliverability is not our business; typos like "a@b" or "a b@c.d" are.
static int
s_is_email (const char *value)
{
    size_t n = strlen (value);
    const char *at = strchr (value, '@');
    if (n < 3 || n > S_EMAIL_MAX || !at || strchr (at + 1, '@'))
        return 0;
    size_t local = (size_t) (at - value);
    if (local < 1 || local > S_EMAIL_LOCAL_MAX)
        return 0;
    for (const char *s = value; s < at; s++)
        if (*s <= ' ' || *s >= 127 || strchr ("\"(),:;<>[\\]", *s))
            return 0;
    const char *domain = at + 1;
    if (!strchr (domain, '.') || *domain == '.' || *domain == '-' || strstr (domain, "..")
        || domain[strlen (domain) - 1] == '.' || domain[strlen (domain) - 1] == '-')
        return 0;
    for (const char *s = domain; *s; s++)
        if (!isalnum ((unsigned char) *s) && *s != '.' && *s != '-')
            return 0;
    return 1;
}

//  Copies EMAIL lower-cased into OUT (S_EMAIL_MAX + 1 bytes).
static void
s_lower (const char *email, char *out)
{
    size_t i = 0;
    for (; email[i] && i < S_EMAIL_MAX; i++)
        out[i] = (char) tolower ((unsigned char) email[i]);
    out[i] = 0;
}

//  A bot given on the command line: "@name", "name" → "name".
static const char *
s_bot_name (const char *arg)
{
    return arg[0] == '@' ? arg + 1 : arg;
}

static int
s_is_username (const char *name)
{
    return s_is_word (name, S_USERNAME_MIN, S_USERNAME_MAX, "_");
}

//  ---------------------------------------------------------------------------
//  Options

//  Matches ARGV[*I] against option NAME, written "--name VALUE" or
//  "--name=VALUE". Returns 0 if it is another argument; 1 with *VALUE set
//  (and *I moved past a separate value); -1 after printing why if the value
//  is missing, or if the option was given twice (*VALUE already set) and
//  REPEATABLE is 0.
static int
s_opt (int argc, char **argv, int *i, const char *name, const char **value, int repeatable)
{
    const char *arg = argv[*i];
    size_t n = strlen (name);
    if (strncmp (arg, name, n) || (arg[n] != 0 && arg[n] != '='))
        return 0;
    if (*value && !repeatable) {
        cmd_fail (S_USAGE, "%s given twice", name);
        return -1;
    }
    if (arg[n] == '=')
        *value = arg + n + 1;
    else if (*i + 1 < argc)
        *value = argv[++*i];
    else {
        cmd_fail (S_USAGE, "%s needs a value (see --help)", name);
        return -1;
    }
    return 1;
}

//  Classifies an argument that is no known option: returns 1 for a
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
        cmd_fail (S_USAGE, "unknown option %s (see --help)", arg);
        return 0;
    }
    return 1;
}

//  One option of a command: `NAME VALUE` or `NAME=VALUE` into *VALUE, or,
//  when FLAG is set, a bare `NAME` that sets *FLAG to 1.
typedef struct {
    const char *name;
    const char **value;
    int *flag;
} s_optdef_t;

#define S_TOO_MANY (-1)     //  s_parse_args: more positional arguments than allowed

//  Parses ARGV[1..ARGC) for a command with the options OPTS (an array
//  ending with {NULL}; may be NULL for none) and up to MAX positional
//  arguments, stored into POS[0..MAX) (unused entries NULL) and counted in
//  *NPOS (may be NULL). Each option may be given once; "--" ends the
//  options. Returns S_OK; S_USAGE after printing why; or S_TOO_MANY,
//  printing nothing, at the first positional argument over MAX (the caller
//  says what the command takes).
static int
s_parse_args (int argc, char **argv, const s_optdef_t *opts, const char **pos, int max,
              int *npos)
{
    int n = 0, dashdash = 0;
    for (int k = 0; k < max; k++)
        pos[k] = NULL;
    for (int i = 1; i < argc; i++) {
        int m = 0;
        for (const s_optdef_t *o = opts; !dashdash && o && o->name && !m; o++) {
            if (o->flag && !strcmp (argv[i], o->name)) {
                *o->flag = 1;
                m = 1;
            }
            else if (!o->flag)
                m = s_opt (argc, argv, &i, o->name, o->value, 0);
        }
        if (m < 0)
            return S_USAGE;
        if (m > 0)
            continue;
        int p = s_positional (argv[i], &dashdash);
        if (p == 0)
            return S_USAGE;
        if (p < 0)
            continue;
        if (n == max)
            return S_TOO_MANY;
        pos[n++] = argv[i];
    }
    if (npos)
        *npos = n;
    return S_OK;
}

//  ---------------------------------------------------------------------------
//  PostgreSQL

//  Runs SQL with NPARAMS text parameters (a NULL entry is SQL NULL).
//  Returns the result (the caller's, PQclear) on success; NULL on failure,
//  with the SQLSTATE in STATE (6 bytes, may be NULL) and the message in ERR.
static PGresult *
s_query (PGconn *conn, const char *sql, int nparams, const char *const *params, char *state,
         char *err, size_t errlen)
{
    if (state)
        state[0] = 0;
    PGresult *res = PQexecParams (conn, sql, nparams, NULL, params, NULL, NULL, 0);
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

//  Runs a statement that returns nothing interesting. Returns 0 or prints
//  why and returns S_FAIL.
static int
s_exec (PGconn *conn, const char *sql)
{
    char err[S_ERR_MAX];
    PGresult *res = s_query (conn, sql, 0, NULL, NULL, err, sizeof err);
    if (!res)
        return cmd_fail (S_FAIL, "%s", err);
    PQclear (res);
    return S_OK;
}

static void
s_rollback (PGconn *conn)
{
    PGresult *res = PQexec (conn, "ROLLBACK");
    PQclear (res);
}

#define S_UNIQUE_VIOLATION "23505"

//  A user, as commands refer to it.
typedef struct {
    char id[24];                        //  users.id as text (a query parameter)
    char email[S_EMAIL_MAX + 1];        //  for messages
} s_owner_t;

//  Looks up user EMAIL (as typed). Returns 0 with *OWNER filled, or the exit
//  status after printing why.
static int
s_find_user (PGconn *conn, const char *email, s_owner_t *owner)
{
    if (!s_is_email (email))
        return cmd_fail (S_USAGE, "'%s' is not an email address", email);
    char lower[S_EMAIL_MAX + 1];
    s_lower (email, lower);
    const char *params[] = {lower};
    char err[S_ERR_MAX];
    PGresult *res = s_query (conn, "SELECT id, email FROM users WHERE email = $1", 1, params,
                             NULL, err, sizeof err);
    if (!res)
        return cmd_fail (S_FAIL, "%s", err);
    int rows = PQntuples (res);
    if (rows == 1) {
        snprintf (owner->id, sizeof owner->id, "%s", PQgetvalue (res, 0, 0));
        snprintf (owner->email, sizeof owner->email, "%s", PQgetvalue (res, 0, 1));
    }
    PQclear (res);
    if (rows != 1)
        return cmd_fail (S_FAIL, "no user %s (`rastro user list` shows them; `rastro user add "
                         "%s` creates it)", lower, lower);
    return S_OK;
}

//  Resolves the owner of a new object: --owner EMAIL when given (EMAIL not
//  NULL), else the only user. Returns 0 with *OWNER filled, or the exit
//  status after printing why.
static int
s_resolve_owner (PGconn *conn, const char *email, s_owner_t *owner)
{
    if (email)
        return s_find_user (conn, email, owner);
    char err[S_ERR_MAX];
    PGresult *res = s_query (conn, "SELECT id, email FROM users ORDER BY id LIMIT 2", 0, NULL,
                             NULL, err, sizeof err);
    if (!res)
        return cmd_fail (S_FAIL, "%s", err);
    int rows = PQntuples (res);
    if (rows == 1) {
        snprintf (owner->id, sizeof owner->id, "%s", PQgetvalue (res, 0, 0));
        snprintf (owner->email, sizeof owner->email, "%s", PQgetvalue (res, 0, 1));
    }
    PQclear (res);
    if (rows == 0)
        return cmd_fail (S_FAIL, "there is no user yet: run `rastro user add <email>` first "
                         "(everything belongs to a user)");
    if (rows > 1)
        return cmd_fail (S_USAGE, "there are several users: say whose it is with --owner EMAIL "
                         "(`rastro user list` shows them)");
    return S_OK;
}

//  Prints RES as a table: a header of its column names, then one line per
//  row, columns padded to their widest value. EMPTY is printed instead
//  when there are no rows.
static void
s_print_table (PGresult *res, const char *empty)
{
    int rows = PQntuples (res), cols = PQnfields (res);
    if (rows == 0) {
        printf ("%s\n", empty);
        return;
    }
    size_t width[32] = {0};
    if (cols > 32)
        cols = 32;
    for (int c = 0; c < cols; c++) {
        width[c] = strlen (PQfname (res, c));
        for (int r = 0; r < rows; r++) {
            size_t n = strlen (PQgetvalue (res, r, c));
            if (n > width[c])
                width[c] = n;
        }
    }
    for (int r = -1; r < rows; r++) {
        for (int c = 0; c < cols; c++) {
            const char *v = r < 0 ? PQfname (res, c)
                                  : PQgetisnull (res, r, c) ? "-" : PQgetvalue (res, r, c);
            if (c == cols - 1)
                printf ("%s\n", v);
            else
                printf ("%-*s  ", (int) width[c], v);
        }
    }
}

//  Runs a list query with one parameter (the owner's id or NULL for all)
//  and prints it. Returns the exit status.
static int
s_list (const rst_config_t *cfg, const char *owner_email, const char *sql, const char *empty)
{
    PGconn *conn = cmd_open_db (cfg);
    if (!conn)
        return S_FAIL;
    int rc = S_OK;
    s_owner_t owner;
    const char *params[] = {NULL};
    if (owner_email) {
        rc = s_find_user (conn, owner_email, &owner);
        if (rc)
            goto done;
        params[0] = owner.id;
    }
    char err[S_ERR_MAX];
    PGresult *res = s_query (conn, sql, 1, params, NULL, err, sizeof err);
    if (!res) {
        rc = cmd_fail (S_FAIL, "%s", err);
        goto done;
    }
    s_print_table (res, empty);
    PQclear (res);
done:
    PQfinish (conn);
    return rc;
}

//  ---------------------------------------------------------------------------
//  Secrets

//  Reads the token in PATH into BUF (BUFLEN bytes): the file's content
//  without leading or trailing whitespace, which must be one word of
//  printable ASCII. Returns 0, or the exit status after printing why (the
//  content is never printed). BUF is wiped on failure.
static int
s_read_token_file (const char *path, char *buf, size_t buflen)
{
    FILE *f = fopen (path, "rb");
    if (!f)
        return cmd_fail (S_USAGE, "cannot read token file %s: %s", path, strerror (errno));
    size_t n = fread (buf, 1, buflen - 1, f);
    int more = n == buflen - 1 && fgetc (f) != EOF;
    int failed = ferror (f);
    fclose (f);
    buf[n] = 0;
    int rc = S_OK;
    if (failed)
        rc = cmd_fail (S_USAGE, "cannot read token file %s", path);
    else if (more)
        rc = cmd_fail (S_USAGE, "token file %s is larger than %zu bytes: it should hold only the "
                       "token", path, buflen - 2);
    else if (memchr (buf, 0, n))
        rc = cmd_fail (S_USAGE, "token file %s is binary: it should hold only the token", path);
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
        rc = cmd_fail (S_USAGE, "token file %s is empty", path);
        goto fail;
    }
    for (size_t i = 0; i < n; i++)
        if ((unsigned char) buf[i] <= ' ' || (unsigned char) buf[i] >= 127) {
            rc = cmd_fail (S_USAGE, "token file %s holds more than the token (spaces, several "
                           "lines or non-ASCII characters): put only the token in it", path);
            goto fail;
        }
    return S_OK;
fail:
    sodium_memzero (buf, buflen);
    return rc;
}

//  Seals TOKEN under the master key and returns it as a bytea literal
//  ("\x<hex>", the caller's, free()), or NULL after printing why.
static char *
s_seal_token (const rst_config_t *cfg, const char *token)
{
    char err[S_ERR_MAX];
    rst_secret_t *secret = rst_secret_new (cfg->master_key_file, 1, err, sizeof err);
    if (!secret) {
        cmd_fail (S_FAIL, "%s", err);
        return NULL;
    }
    size_t sealed_len = 0;
    unsigned char *sealed = rst_secret_seal (secret, token, strlen (token), &sealed_len);
    rst_secret_destroy (&secret);
    if (!sealed) {
        cmd_fail (S_FAIL, "libsodium: cannot encrypt the token");
        return NULL;
    }
    char *hex = malloc (2 + sealed_len * 2 + 1);
    if (hex) {
        memcpy (hex, "\\x", 2);
        sodium_bin2hex (hex + 2, sealed_len * 2 + 1, sealed, sealed_len);
    }
    else
        cmd_fail (S_FAIL, "out of memory");
    free (sealed);
    return hex;
}

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

//  Number of characters (UTF-8 code points) in S.
static size_t
s_chars (const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char) *s & 0xC0) != 0x80)
            n++;
    return n;
}

//  Reads the new password for EMAIL: the first line of stdin, or typed twice
//  on a terminal. Returns 0 with BUF filled, or the exit status after
//  printing why (BUF wiped).
static int
s_read_password (const char *email, char *buf, size_t buflen)
{
    int rc = S_OK;
    int n;
    if (isatty (STDIN_FILENO)) {
        char prompt[S_EMAIL_MAX + 32];
        snprintf (prompt, sizeof prompt, "Password for %s: ", email);
        n = s_read_hidden (prompt, buf, buflen);
        if (n >= 0) {
            char again[S_PASSWORD_MAX + 2];
            int m = s_read_hidden ("Again: ", again, sizeof again);
            if (m != n || strcmp (again, buf)) {
                sodium_memzero (again, sizeof again);
                rc = cmd_fail (S_USAGE, "the two passwords differ; nothing was changed");
                goto fail;
            }
            sodium_memzero (again, sizeof again);
        }
    }
    else
        n = s_read_line (stdin, buf, buflen);
    if (n == -2)
        rc = cmd_fail (S_USAGE, "the password is longer than %d bytes", S_PASSWORD_MAX);
    else if (n <= 0)
        rc = cmd_fail (S_USAGE, "no password given: write it as the first line of stdin, e.g. "
                       "`printf '%%s\\n' \"$PASSWORD\" | rastro user add %s`", email);
    else if (s_chars (buf) < S_PASSWORD_MIN)
        rc = cmd_fail (S_USAGE, "the password must have at least %d characters", S_PASSWORD_MIN);
    if (rc == S_OK)
        return S_OK;
fail:
    sodium_memzero (buf, buflen);
    return rc;
}

//  ---------------------------------------------------------------------------
//  Subcommand table

typedef struct {
    const char *name;       //  argv[0] of the subcommand
    int (*run) (int argc, char **argv, const rst_config_t *cfg);
    const char *synopsis;   //  one line, after "rastro "
    const char *help;       //  the rest of --help
} s_sub_t;

//  Prints the help of SUB on OUT.
static void
s_sub_help (const s_sub_t *sub, FILE *out)
{
    fprintf (out, "usage: rastro %s\n\n%s", sub->synopsis, sub->help);
}

//  Runs `rastro GROUP <sub> ...`: ARGV[0] is GROUP, ARGV[1] the subcommand.
static int
s_dispatch (const char *group, const char *summary, const s_sub_t *subs, int argc, char **argv,
            const rst_config_t *cfg)
{
    if (argc < 2 || s_is_help (argv[1])) {
        FILE *out = argc < 2 ? stderr : stdout;
        fprintf (out, "usage: rastro %s <subcommand> ...   (rastro %s <subcommand> --help "
                 "for more)\n\n%s\n\nsubcommands:\n", group, group, summary);
        for (const s_sub_t *s = subs; s->name; s++)
            fprintf (out, "  rastro %s\n", s->synopsis);
        return argc < 2 ? S_USAGE : S_OK;
    }
    for (const s_sub_t *s = subs; s->name; s++) {
        if (strcmp (argv[1], s->name))
            continue;
        if (s_wants_help (argc - 1, argv + 1)) {
            s_sub_help (s, stdout);
            return S_OK;
        }
        return s->run (argc - 1, argv + 1, cfg);
    }
    return cmd_fail (S_USAGE, "unknown subcommand '%s %s' (rastro %s --help lists them)", group,
                     argv[1], group);
}

//  ---------------------------------------------------------------------------
//  rastro user

static int
s_user_add (int argc, char **argv, const rst_config_t *cfg)
{
    const char *email;
    int rc = s_parse_args (argc, argv, NULL, &email, 1, NULL);
    if (rc == S_TOO_MANY)
        return cmd_fail (S_USAGE, "user add takes one email address (see --help)");
    if (rc)
        return rc;
    if (!email)
        return cmd_fail (S_USAGE, "usage: rastro user add <email>   (password on stdin)");
    if (!s_is_email (email))
        return cmd_fail (S_USAGE, "'%s' is not an email address", email);
    char lower[S_EMAIL_MAX + 1];
    s_lower (email, lower);

    PGconn *conn = cmd_open_db (cfg);
    if (!conn)
        return S_FAIL;
    char password[S_PASSWORD_MAX + 2];
    char hash[RST_PASSWORD_HASH_MAX];
    rc = s_read_password (lower, password, sizeof password);
    if (rc)
        goto done;
    if (rst_password_hash (password, hash)) {
        rc = cmd_fail (S_FAIL, "libsodium: cannot hash the password (out of memory?)");
        goto done;
    }
    const char *params[] = {lower, hash};
    char err[S_ERR_MAX], state[6];
    PGresult *res = s_query (conn, "INSERT INTO users (email, password_hash) VALUES ($1, $2)",
                             2, params, state, err, sizeof err);
    if (!res) {
        rc = !strcmp (state, S_UNIQUE_VIOLATION)
                 ? cmd_fail (S_FAIL, "user %s already exists", lower)
                 : cmd_fail (S_FAIL, "%s", err);
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
    int dashdash = 0;
    for (int i = 1; i < argc; i++) {
        int p = s_positional (argv[i], &dashdash);
        if (p == 0)
            return S_USAGE;
        if (p > 0)
            return cmd_fail (S_USAGE, "user list takes no arguments (see --help)");
    }
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

static const s_sub_t s_user_subs[] = {
    {"add", s_user_add, "user add <email>",
     "Creates a user, the owner of pixels, bots and pools. The password is the\n"
     "first line of stdin (typed twice, hidden, on a terminal); at least 8\n"
     "characters. It is stored as an argon2id hash.\n\n"
     "example:\n  printf '%s\\n' \"$PASSWORD\" | rastro user add ana@example.com\n"},
    {"list", s_user_list, "user list",
     "Lists the users with how many pixels, bots and pools each owns.\n"},
    {NULL, NULL, NULL, NULL},
};

int
cmd_user (int argc, char **argv, const rst_config_t *cfg)
{
    return s_dispatch ("user", "Users own everything else (pixels, bots, pools).", s_user_subs,
                       argc, argv, cfg);
}

//  ---------------------------------------------------------------------------
//  rastro pixel

static int
s_pixel_add (int argc, char **argv, const rst_config_t *cfg)
{
    const char *pixel_id, *token_file = NULL, *code = NULL, *owner_email = NULL;
    const s_optdef_t opts[] = {{"--token-file", &token_file, NULL},
                               {"--test-event-code", &code, NULL},
                               {"--owner", &owner_email, NULL},
                               {NULL, NULL, NULL}};
    int rc = s_parse_args (argc, argv, opts, &pixel_id, 1, NULL);
    if (rc == S_TOO_MANY)
        return cmd_fail (S_USAGE, "pixel add takes one pixel id (see --help)");
    if (rc)
        return rc;
    if (!pixel_id)
        return cmd_fail (S_USAGE, "pixel add needs the pixel id (see --help)");
    if (!s_is_pixel_id (pixel_id))
        return cmd_fail (S_USAGE, "'%s' is not a pixel id (1 to %d digits, as in Meta's Events "
                         "Manager)", pixel_id, S_PIXEL_ID_MAX);
    if (!token_file)
        return cmd_fail (S_USAGE, "pixel add needs --token-file FILE, a file holding the pixel's "
                         "Conversions API access token");
    if (code && !s_is_word (code, 1, S_CODE_MAX, "_-"))
        return cmd_fail (S_USAGE, "'%s' is not a test event code (1 to %d letters, digits, '_' "
                         "or '-', e.g. TEST12345)", code, S_CODE_MAX);
    if (owner_email && !s_is_email (owner_email))
        return cmd_fail (S_USAGE, "--owner '%s' is not an email address", owner_email);

    char token[S_TOKEN_FILE_MAX + 2];
    rc = s_read_token_file (token_file, token, sizeof token);
    if (rc)
        return rc;
    char *sealed = NULL;
    PGconn *conn = cmd_open_db (cfg);
    if (!conn) {
        rc = S_FAIL;
        goto done;
    }
    s_owner_t owner;
    rc = s_resolve_owner (conn, owner_email, &owner);
    if (rc)
        goto done;
    sealed = s_seal_token (cfg, token);
    if (!sealed) {
        rc = S_FAIL;
        goto done;
    }
    const char *params[] = {owner.id, pixel_id, sealed, code};
    char err[S_ERR_MAX], state[6];
    PGresult *res = s_query (conn,
                             "INSERT INTO pixels (owner_id, pixel_id, token_enc, test_event_code)"
                             " VALUES ($1, $2, $3::bytea, $4)",
                             4, params, state, err, sizeof err);
    if (!res) {
        rc = !strcmp (state, S_UNIQUE_VIOLATION)
                 ? cmd_fail (S_FAIL, "pixel %s already exists for %s", pixel_id, owner.email)
                 : cmd_fail (S_FAIL, "%s", err);
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
    const s_optdef_t opts[] = {{"--owner", owner_email, NULL}, {NULL, NULL, NULL}};
    int rc = s_parse_args (argc, argv, opts, NULL, 0, NULL);
    if (rc == S_TOO_MANY)
        return cmd_fail (S_USAGE, "%s list takes no arguments besides --owner (see --help)", what);
    return rc;
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
    const s_optdef_t opts[] = {{"--no-test-event-code", NULL, &no_code},
                               {"--rate", &rate, NULL},
                               {"--test-event-code", &code, NULL},
                               {"--owner", &owner_email, NULL},
                               {NULL, NULL, NULL}};
    int prc = s_parse_args (argc, argv, opts, &pixel_id, 1, NULL);
    if (prc == S_TOO_MANY)
        return cmd_fail (S_USAGE, "pixel set takes one pixel id (see --help)");
    if (prc)
        return prc;
    if (!pixel_id)
        return cmd_fail (S_USAGE, "pixel set needs the pixel id (see --help)");
    if (!s_is_pixel_id (pixel_id))
        return cmd_fail (S_USAGE, "'%s' is not a pixel id (1 to %d digits)", pixel_id,
                         S_PIXEL_ID_MAX);
    if (!rate && !code && !no_code)
        return cmd_fail (S_USAGE, "pixel set needs --rate N, --test-event-code CODE or "
                         "--no-test-event-code");
    if (code && no_code)
        return cmd_fail (S_USAGE, "--test-event-code and --no-test-event-code exclude each other");
    if (rate) {
        char *end;
        errno = 0;
        long r = strtol (rate, &end, 10);
        if (errno || end == rate || *end || r < 1 || r > 100000)
            return cmd_fail (S_USAGE, "--rate '%s' must be 1 to 100000 events per second", rate);
    }
    if (code && !s_is_word (code, 1, S_CODE_MAX, "_-"))
        return cmd_fail (S_USAGE, "'%s' is not a test event code (1 to %d letters, digits, '_' "
                         "or '-', e.g. TEST12345)", code, S_CODE_MAX);
    if (owner_email && !s_is_email (owner_email))
        return cmd_fail (S_USAGE, "--owner '%s' is not an email address", owner_email);
    PGconn *conn = cmd_open_db (cfg);
    if (!conn)
        return S_FAIL;
    s_owner_t owner;
    int rc = s_resolve_owner (conn, owner_email, &owner);
    if (rc)
        goto done;
    const char *params[] = {owner.id, pixel_id, rate, (code || no_code) ? "t" : "f", code};
    char err[S_ERR_MAX];
    PGresult *res = s_query (conn,
                             "UPDATE pixels SET rate_per_s = coalesce($3::int, rate_per_s),"
                             " test_event_code = CASE WHEN $4::boolean THEN $5 ELSE test_event_code END"
                             " WHERE owner_id = $1 AND pixel_id = $2",
                             5, params, NULL, err, sizeof err);
    if (!res) {
        rc = cmd_fail (S_FAIL, "%s", err);
        goto done;
    }
    if (strcmp (PQcmdTuples (res), "1"))
        rc = cmd_fail (S_FAIL, "no pixel %s for %s: add it first with `rastro pixel add %s "
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

static const s_sub_t s_pixel_subs[] = {
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

int
cmd_pixel (int argc, char **argv, const rst_config_t *cfg)
{
    return s_dispatch ("pixel", "Meta pixels receive the conversion events; their Conversions "
                       "API tokens are encrypted at rest.", s_pixel_subs, argc, argv, cfg);
}

//  ---------------------------------------------------------------------------
//  rastro bot

static int
s_bot_add (int argc, char **argv, const rst_config_t *cfg)
{
    const char *token_file = NULL, *owner_email = NULL;
    const s_optdef_t opts[] = {{"--token-file", &token_file, NULL},
                               {"--owner", &owner_email, NULL},
                               {NULL, NULL, NULL}};
    int prc = s_parse_args (argc, argv, opts, NULL, 0, NULL);
    if (prc == S_TOO_MANY)
        return cmd_fail (S_USAGE, "bot add takes no positional argument: the token goes in "
                         "--token-file, the username comes from Telegram (see --help)");
    if (prc)
        return prc;
    if (!token_file)
        return cmd_fail (S_USAGE, "bot add needs --token-file FILE, a file holding the bot's "
                         "token from @BotFather");
    if (owner_email && !s_is_email (owner_email))
        return cmd_fail (S_USAGE, "--owner '%s' is not an email address", owner_email);

    char token[S_TOKEN_FILE_MAX + 2];
    int rc = s_read_token_file (token_file, token, sizeof token);
    if (rc)
        return rc;
    char err[S_ERR_MAX];
    char *sealed = NULL;
    PGconn *conn = NULL;
    rst_telegram_t *telegram = NULL;
    if (rst_telegram_token_check (token, err, sizeof err)) {
        rc = cmd_fail (S_USAGE, "token file %s: %s", token_file, err);
        goto done;
    }
    conn = cmd_open_db (cfg);
    if (!conn) {
        rc = S_FAIL;
        goto done;
    }
    s_owner_t owner;
    rc = s_resolve_owner (conn, owner_email, &owner);
    if (rc)
        goto done;

    //  Already registered? Say so without bothering Telegram.
    char bot_id[24];
    snprintf (bot_id, sizeof bot_id, "%lld", (long long) rst_telegram_token_bot_id (token));
    const char *id_params[] = {bot_id};
    PGresult *res = s_query (conn,
                             "SELECT b.username, u.email FROM bots b"
                             " JOIN users u ON u.id = b.owner_id WHERE b.telegram_id = $1",
                             1, id_params, NULL, err, sizeof err);
    if (!res) {
        rc = cmd_fail (S_FAIL, "%s", err);
        goto done;
    }
    if (PQntuples (res) > 0) {
        rc = cmd_fail (S_FAIL, "bot @%s is already registered (owner %s)", PQgetvalue (res, 0, 0),
                       PQgetvalue (res, 0, 1));
        PQclear (res);
        goto done;
    }
    PQclear (res);

    telegram = rst_telegram_new (cfg->telegram_api_url, err, sizeof err);
    if (!telegram) {
        rc = cmd_fail (S_FAIL, "%s", err);
        goto done;
    }
    rst_telegram_bot_t bot;
    if (rst_telegram_get_me (telegram, token, &bot, err, sizeof err)) {
        rc = cmd_fail (S_FAIL, "%s", err);
        goto done;
    }
    if (!s_is_username (bot.username)) {
        rc = cmd_fail (S_FAIL, "Telegram says the bot's username is '%s', which is not a bot "
                       "username (5 to 32 letters, digits or '_')", bot.username);
        goto done;
    }
    sealed = s_seal_token (cfg, token);
    if (!sealed) {
        rc = S_FAIL;
        goto done;
    }
    const char *params[] = {owner.id, bot_id, bot.username, sealed};
    char state[6];
    res = s_query (conn,
                   "INSERT INTO bots (owner_id, telegram_id, username, token_enc)"
                   " VALUES ($1, $2, $3, $4::bytea)",
                   4, params, state, err, sizeof err);
    if (!res) {
        rc = !strcmp (state, S_UNIQUE_VIOLATION)
                 ? cmd_fail (S_FAIL, "bot @%s is already registered", bot.username)
                 : cmd_fail (S_FAIL, "%s", err);
        goto done;
    }
    PQclear (res);
    printf ("@%s\n", bot.username);
done:
    sodium_memzero (token, sizeof token);
    rst_telegram_destroy (&telegram);
    free (sealed);
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
    const char *name = s_bot_name (arg);
    if (!s_is_username (name))
        return cmd_fail (S_USAGE, "'%s' is not a bot username (5 to 32 letters, digits or '_')",
                         arg);
    PGconn *conn = cmd_open_db (cfg);
    if (!conn)
        return S_FAIL;
    char sql[160];
    //  COLUMN is one of our literals ("healthy", "enabled"), never input.
    snprintf (sql, sizeof sql,
              "UPDATE bots SET %s = $2 WHERE lower(username) = lower($1) RETURNING username",
              column);
    const char *params[] = {name, value ? "true" : "false"};
    char err[S_ERR_MAX];
    int rc = S_OK;
    PGresult *res = s_query (conn, sql, 2, params, NULL, err, sizeof err);
    if (!res)
        rc = cmd_fail (S_FAIL, "%s", err);
    else if (PQntuples (res) == 0)
        rc = cmd_fail (S_FAIL, "no bot @%s (`rastro bot list` shows them)", name);
    else
        printf ("@%s %s\n", PQgetvalue (res, 0, 0), done_word);
    PQclear (res);
    PQfinish (conn);
    return rc;
}

static int
s_bot_mark (int argc, char **argv, const rst_config_t *cfg)
{
    const char *args[2];
    int n = 0;
    int rc = s_parse_args (argc, argv, NULL, args, 2, &n);
    if (rc && rc != S_TOO_MANY)
        return rc;
    if (rc == S_TOO_MANY || n != 2)
        return cmd_fail (S_USAGE, "usage: rastro bot mark <username> healthy|unhealthy");
    int healthy;
    if (!strcmp (args[1], "healthy"))
        healthy = 1;
    else if (!strcmp (args[1], "unhealthy"))
        healthy = 0;
    else
        return cmd_fail (S_USAGE, "bot mark: '%s' is neither healthy nor unhealthy", args[1]);
    return s_bot_set (cfg, args[0], "healthy", healthy,
                      healthy ? "marked healthy" : "marked unhealthy (links skip it)");
}

//  `bot enable|disable <username>`: ARGV[0] says which.
static int
s_bot_enable (int argc, char **argv, const rst_config_t *cfg)
{
    int enable = !strcmp (argv[0], "enable");
    const char *name;
    int rc = s_parse_args (argc, argv, NULL, &name, 1, NULL);
    if (rc && rc != S_TOO_MANY)
        return rc;
    if (rc == S_TOO_MANY || !name)
        return cmd_fail (S_USAGE, "usage: rastro bot %s <username>", argv[0]);
    return s_bot_set (cfg, name, "enabled", enable,
                      enable ? "enabled" : "disabled (links skip it)");
}

static const s_sub_t s_bot_subs[] = {
    {"add", s_bot_add, "bot add --token-file F [--owner EMAIL]",
     "Adds a Telegram bot. rastro asks Telegram (getMe, at RASTRO_TELEGRAM_API_URL)\n"
     "who the token belongs to and prints the bot's username.\n\n"
     "  --token-file F  file holding the token from @BotFather (123456:AA...);\n"
     "                  encrypted before it is stored, never printed\n"
     "  --owner EMAIL   the owning user (default: the only user)\n"},
    {"list", s_bot_list, "bot list [--owner EMAIL]",
     "Lists the bots (of one user with --owner). Tokens show as \"set\".\n"},
    {"mark", s_bot_mark, "bot mark <username> healthy|unhealthy",
     "Marks a bot healthy or unhealthy. Links (/go/<slug>) skip unhealthy bots;\n"
     "the health node marks bots too.\n"},
    {"enable", s_bot_enable, "bot enable <username>",
     "Puts a disabled bot back into its pools' rotation.\n"},
    {"disable", s_bot_enable, "bot disable <username>",
     "Takes a bot out of its pools' rotation (it stays in the pools).\n"},
    {NULL, NULL, NULL, NULL},
};

int
cmd_bot (int argc, char **argv, const rst_config_t *cfg)
{
    return s_dispatch ("bot", "Telegram bots receive the visitors; their tokens are encrypted "
                       "at rest.", s_bot_subs, argc, argv, cfg);
}

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
    const char *name = s_bot_name (arg);
    const char *colon = strchr (name, ':');
    bot->name = name;
    bot->name_len = colon ? (size_t) (colon - name) : strlen (name);
    bot->weight = 1;
    char username[S_USERNAME_MAX + 2];
    if (bot->name_len > S_USERNAME_MAX)
        return cmd_fail (S_USAGE, "--bot '%s': a bot username has at most %d characters", arg,
                         S_USERNAME_MAX);
    memcpy (username, name, bot->name_len);
    username[bot->name_len] = 0;
    if (!s_is_username (username))
        return cmd_fail (S_USAGE, "--bot '%s': '%s' is not a bot username (5 to 32 letters, "
                         "digits or '_')", arg, username);
    if (colon) {
        const char *w = colon + 1;
        size_t digits = strspn (w, "0123456789");
        long v = digits > 0 && digits <= 4 && !w[digits] ? strtol (w, NULL, 10) : -1;
        if (v < S_WEIGHT_MIN || v > S_WEIGHT_MAX)
            return cmd_fail (S_USAGE, "--bot '%s': the weight must be a whole number from %d to %d",
                             arg, S_WEIGHT_MIN, S_WEIGHT_MAX);
        bot->weight = (int) v;
        bot->weighted = 1;
    }
    return S_OK;
}

static int
s_pool_add (int argc, char **argv, const rst_config_t *cfg)
{
    const char *slug = NULL, *pixel_id = NULL, *strategy = NULL, *owner_email = NULL;
    s_pool_bot_t bots[S_POOL_BOTS_MAX];
    int nbots = 0, any_weight = 0, dashdash = 0;
    for (int i = 1; i < argc; i++) {
        int m = 0;
        const char *bot_arg = NULL;
        if (!dashdash && (m = s_opt (argc, argv, &i, "--bot", &bot_arg, 1))) {
            if (m < 0)
                return S_USAGE;
            if (nbots == S_POOL_BOTS_MAX)
                return cmd_fail (S_USAGE, "a pool has at most %d bots", S_POOL_BOTS_MAX);
            int rc = s_parse_pool_bot (bot_arg, &bots[nbots]);
            if (rc)
                return rc;
            for (int j = 0; j < nbots; j++)
                if (bots[j].name_len == bots[nbots].name_len
                    && !strncasecmp (bots[j].name, bots[nbots].name, bots[j].name_len))
                    return cmd_fail (S_USAGE, "--bot @%.*s is given twice",
                                     (int) bots[j].name_len, bots[j].name);
            any_weight |= bots[nbots].weighted;
            nbots++;
            continue;
        }
        if (!dashdash
            && ((m = s_opt (argc, argv, &i, "--pixel", &pixel_id, 0))
                || (m = s_opt (argc, argv, &i, "--strategy", &strategy, 0))
                || (m = s_opt (argc, argv, &i, "--owner", &owner_email, 0)))) {
            if (m < 0)
                return S_USAGE;
            continue;
        }
        int p = s_positional (argv[i], &dashdash);
        if (p == 0)
            return S_USAGE;
        if (p < 0)
            continue;
        if (slug)
            return cmd_fail (S_USAGE, "pool add takes one slug (see --help)");
        slug = argv[i];
    }
    if (!slug)
        return cmd_fail (S_USAGE, "pool add needs a slug, the <slug> of /go/<slug> (see --help)");
    if (!s_is_slug (slug))
        return cmd_fail (S_USAGE, "'%s' is not a valid slug (1 to %d letters, digits, '_' or '-')",
                         slug, S_SLUG_MAX);
    if (!pixel_id)
        return cmd_fail (S_USAGE, "pool add needs --pixel <pixel_id> (`rastro pixel list` shows "
                         "them)");
    if (!s_is_pixel_id (pixel_id))
        return cmd_fail (S_USAGE, "--pixel '%s' is not a pixel id (1 to %d digits)", pixel_id,
                         S_PIXEL_ID_MAX);
    if (nbots == 0)
        return cmd_fail (S_USAGE, "pool add needs at least one --bot <username>[:weight]");
    if (!strategy)
        strategy = any_weight ? "weighted" : "round-robin";
    else if (strcmp (strategy, "round-robin") && strcmp (strategy, "weighted"))
        return cmd_fail (S_USAGE, "--strategy '%s': use round-robin or weighted", strategy);
    if (!strcmp (strategy, "round-robin"))
        for (int j = 0; j < nbots; j++)
            if (bots[j].weight != 1)
                return cmd_fail (S_USAGE, "--bot @%.*s has a weight, but round-robin ignores "
                                 "weights: use --strategy weighted", (int) bots[j].name_len,
                                 bots[j].name);
    if (owner_email && !s_is_email (owner_email))
        return cmd_fail (S_USAGE, "--owner '%s' is not an email address", owner_email);

    PGconn *conn = cmd_open_db (cfg);
    if (!conn)
        return S_FAIL;
    s_owner_t owner;
    int rc = s_resolve_owner (conn, owner_email, &owner);
    if (rc)
        goto done;
    if (s_exec (conn, "BEGIN")) {
        rc = S_FAIL;
        goto done;
    }
    char err[S_ERR_MAX], state[6];
    PGresult *res;

    //  The pixel, among the owner's.
    const char *pixel_params[] = {owner.id, pixel_id};
    res = s_query (conn,
                   "SELECT id, owner_id = $1 FROM pixels WHERE pixel_id = $2"
                   " ORDER BY owner_id = $1 DESC LIMIT 1",
                   2, pixel_params, NULL, err, sizeof err);
    if (!res) {
        rc = cmd_fail (S_FAIL, "%s", err);
        goto rollback;
    }
    char pixel_ref[24] = "";
    int pixel_mine = PQntuples (res) == 1 && !strcmp (PQgetvalue (res, 0, 1), "t");
    if (pixel_mine)
        snprintf (pixel_ref, sizeof pixel_ref, "%s", PQgetvalue (res, 0, 0));
    else if (PQntuples (res) == 1)
        rc = cmd_fail (S_FAIL, "pixel %s belongs to another user than %s", pixel_id, owner.email);
    else
        rc = cmd_fail (S_FAIL, "no pixel %s for %s: add it first with `rastro pixel add %s "
                       "--token-file F`", pixel_id, owner.email, pixel_id);
    PQclear (res);
    if (rc)
        goto rollback;

    //  Every bot, among the owner's.
    for (int j = 0; j < nbots; j++) {
        char name[S_USERNAME_MAX + 1];
        snprintf (name, sizeof name, "%.*s", (int) bots[j].name_len, bots[j].name);
        const char *bot_params[] = {name};
        res = s_query (conn,
                       "SELECT b.id, b.owner_id, u.email FROM bots b"
                       " JOIN users u ON u.id = b.owner_id WHERE lower(b.username) = lower($1)",
                       1, bot_params, NULL, err, sizeof err);
        if (!res) {
            rc = cmd_fail (S_FAIL, "%s", err);
            goto rollback;
        }
        if (PQntuples (res) == 0)
            rc = cmd_fail (S_FAIL, "no bot @%s: add it first with `rastro bot add --token-file F`",
                           name);
        else if (strcmp (PQgetvalue (res, 0, 1), owner.id))
            rc = cmd_fail (S_FAIL, "bot @%s belongs to %s, not to %s (a pool's bots, pixel and "
                           "pool have one owner)", name, PQgetvalue (res, 0, 2), owner.email);
        else
            snprintf (bots[j].id, sizeof bots[j].id, "%s", PQgetvalue (res, 0, 0));
        PQclear (res);
        if (rc)
            goto rollback;
    }

    const char *pool_params[] = {owner.id, slug, pixel_ref, strategy};
    res = s_query (conn,
                   "INSERT INTO pools (owner_id, slug, pixel_ref, strategy)"
                   " VALUES ($1, $2, $3, $4) RETURNING id",
                   4, pool_params, state, err, sizeof err);
    if (!res) {
        rc = !strcmp (state, S_UNIQUE_VIOLATION)
                 ? cmd_fail (S_FAIL, "a pool with slug '%s' already exists (slugs are unique)",
                             slug)
                 : cmd_fail (S_FAIL, "%s", err);
        goto rollback;
    }
    char pool_id[24];
    snprintf (pool_id, sizeof pool_id, "%s", PQgetvalue (res, 0, 0));
    PQclear (res);

    char summary[S_POOL_BOTS_MAX * (S_USERNAME_MAX + 8)] = "";
    size_t used = 0;
    for (int j = 0; j < nbots; j++) {
        char weight[16];
        snprintf (weight, sizeof weight, "%d", bots[j].weight);
        const char *pb_params[] = {pool_id, bots[j].id, weight};
        res = s_query (conn, "INSERT INTO pool_bots (pool_id, bot_id, weight) VALUES ($1, $2, $3)",
                       3, pb_params, NULL, err, sizeof err);
        if (!res) {
            rc = cmd_fail (S_FAIL, "%s", err);
            goto rollback;
        }
        PQclear (res);
        int n = snprintf (summary + used, sizeof summary - used, "%s@%.*s:%d", j ? " " : "",
                          (int) bots[j].name_len, bots[j].name, bots[j].weight);
        if (n > 0 && (size_t) n < sizeof summary - used)
            used += (size_t) n;
    }
    if (s_exec (conn, "COMMIT")) {
        rc = S_FAIL;
        goto rollback;
    }
    printf ("pool %s added for %s: /go/%s -> %s (%s, pixel %s)\n", slug, owner.email, slug,
            summary, strategy, pixel_id);
    goto done;

rollback:
    s_rollback (conn);
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
    int prc = s_parse_args (argc, argv, NULL, &slug, 1, NULL);
    if (prc && prc != S_TOO_MANY)
        return prc;
    if (prc == S_TOO_MANY || !slug)
        return cmd_fail (S_USAGE, "usage: rastro pool %s <slug>", argv[0]);
    if (!s_is_slug (slug))
        return cmd_fail (S_USAGE, "'%s' is not a valid slug (1 to %d letters, digits, '_' or '-')",
                         slug, S_SLUG_MAX);
    PGconn *conn = cmd_open_db (cfg);
    if (!conn)
        return S_FAIL;
    const char *params[] = {slug, enable ? "true" : "false"};
    char err[S_ERR_MAX];
    int rc = S_OK;
    PGresult *res = s_query (conn, "UPDATE pools SET enabled = $2 WHERE slug = $1 RETURNING slug",
                             2, params, NULL, err, sizeof err);
    if (!res)
        rc = cmd_fail (S_FAIL, "%s", err);
    else if (PQntuples (res) == 0)
        rc = cmd_fail (S_FAIL, "no pool '%s' (`rastro pool list` shows them)", slug);
    else
        printf ("pool %s %s\n", slug,
                enable ? "enabled" : "disabled (/go/ link answers 404 until enabled)");
    PQclear (res);
    PQfinish (conn);
    return rc;
}

static const s_sub_t s_pool_subs[] = {
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

int
cmd_pool (int argc, char **argv, const rst_config_t *cfg)
{
    return s_dispatch ("pool", "Pools are the ad links /go/<slug>: a pixel plus the bots that "
                       "receive the visitors.", s_pool_subs, argc, argv, cfg);
}
