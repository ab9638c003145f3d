/*  commands — the subcommands of `rastro`, one function each.

    Each gets the arguments after its own name (argv[0] is the subcommand,
    e.g. "add" for `rastro user add`... see each file) and the loaded config,
    prints its own --help, and returns the process exit status: 0 success,
    1 failure at run time, 2 bad usage. Errors are one line on stderr that
    says what to do.
*/
#ifndef RASTRO_COMMANDS_H
#define RASTRO_COMMANDS_H

#include "rst_config.h"

#include <libpq-fe.h>

//  cmd_admin.c: `rastro user|pixel|bot|pool ...` (argv[0] is "user", "pixel", ...)
int cmd_user (int argc, char **argv, const rst_config_t *cfg);
int cmd_pixel (int argc, char **argv, const rst_config_t *cfg);
int cmd_bot (int argc, char **argv, const rst_config_t *cfg);
int cmd_pool (int argc, char **argv, const rst_config_t *cfg);

//  cmd_offer.c: `rastro offer add|list|set|enable|disable`, what a bot sells.
int cmd_offer (int argc, char **argv, const rst_config_t *cfg);

//  cmd_gateway.c: `rastro gateway set|list|remove`, a bot's PIX gateway
//  (credentials sealed at rest).
int cmd_gateway (int argc, char **argv, const rst_config_t *cfg);

//  cmd_webhook.c: `rastro bot webhook <username> --url BASE | --delete`
//  (argv[0] is "webhook"): how a bot receives its updates.
int cmd_bot_webhook (int argc, char **argv, const rst_config_t *cfg);

//  cmd_up.c: `rastro up [--topology FILE]`, the foreground supervisor.
int cmd_up (int argc, char **argv, const rst_config_t *cfg);

//  cmd_status.c: `rastro status`.
int cmd_status (int argc, char **argv, const rst_config_t *cfg);

//  cmd_db.c: `rastro db start|stop|migrate|url|psql`.
int cmd_db (int argc, char **argv, const rst_config_t *cfg);

//  cmd_dlq.c: `rastro dlq list|show|replay|purge`, the dead-letter store.
int cmd_dlq (int argc, char **argv, const rst_config_t *cfg);

//  cmd_common.c: what the commands share.

//  Prints "rastro: <message>" on stderr and returns STATUS.
int cmd_fail (int status, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

//  Connects to PostgreSQL and applies the migrations. Returns the
//  connection (the caller's, PQfinish), or NULL after printing why.
PGconn *cmd_open_db (const rst_config_t *cfg);

//  ---------------------------------------------------------------------------
//  cmd_shared.c: the admin commands' toolkit (offer, gateway, bot webhook).
//  cmd_admin.c still has static copies of most of these (s_opt,
//  s_parse_args, s_query, s_resolve_owner, ...) and can switch to them.

#define CMD_OK    0             //  exit statuses (see the top of this file)
#define CMD_FAIL  1
#define CMD_USAGE 2

#define CMD_ERR_MAX          1024   //  error buffers
#define CMD_EMAIL_MAX        254    //  users.email CHECK
#define CMD_USERNAME_MIN     5      //  Telegram usernames: 5-32 of [A-Za-z0-9_]
#define CMD_USERNAME_MAX     32
#define CMD_UNIQUE_VIOLATION "23505"

//  1 if ARG is --help or -h.
int cmd_is_help (const char *arg);

//  1 if any of ARGV[1..ARGC) before "--" asks for help.
int cmd_wants_help (int argc, char **argv);

//  1 if VALUE is MIN to MAX characters, each a letter, a digit or one of EXTRA.
int cmd_is_word (const char *value, size_t min, size_t max, const char *extra);

//  1 if VALUE has the shape of an email address (local@domain.tld).
int cmd_is_email (const char *value);

//  A bot as typed on the command line: "@name" or "name" -> "name" (points into ARG).
const char *cmd_bot_name (const char *arg);

//  1 if NAME is a Telegram bot username (5 to 32 letters, digits or '_').
int cmd_is_username (const char *name);

//  Number of characters (code points) in the LEN bytes at S if they are
//  valid UTF-8 (no overlong forms, surrogates or NUL bytes), else -1.
long cmd_utf8_chars (const char *s, size_t len);

//  One option of a command: `NAME VALUE` or `NAME=VALUE` into *VALUE, or,
//  when FLAG is set, a bare `NAME` that sets *FLAG to 1.
typedef struct {
    const char *name;
    const char **value;
    int *flag;
} cmd_optdef_t;

#define CMD_TOO_MANY (-1)       //  cmd_parse_args: more positional arguments than allowed

//  Parses ARGV[1..ARGC) for the options OPTS (ending with {NULL}; NULL for
//  none) and up to MAX positional arguments, stored into POS[0..MAX) (unused
//  entries NULL) and counted in *NPOS (may be NULL). Each option may be
//  given once; "--" ends the options. Returns CMD_OK; CMD_USAGE after
//  printing why; or CMD_TOO_MANY, printing nothing, at the first positional
//  argument over MAX (the caller says what the command takes).
int cmd_parse_args (int argc, char **argv, const cmd_optdef_t *opts, const char **pos, int max,
                    int *npos);

//  Runs SQL with NPARAMS parameters, text unless FORMATS says 1 (binary,
//  then LENGTHS gives the sizes; both may be NULL). A NULL parameter is SQL
//  NULL. Returns the result (the caller's, PQclear), or NULL with the
//  SQLSTATE in STATE (6 bytes, may be NULL) and a one-line message in ERR.
PGresult *cmd_query (PGconn *conn, const char *sql, int nparams, const char *const *params,
                     const int *lengths, const int *formats, char *state, char *err,
                     size_t errlen);

//  Runs a statement without parameters ("BEGIN", "COMMIT"). Returns CMD_OK,
//  or CMD_FAIL after printing why.
int cmd_exec (PGconn *conn, const char *sql);

//  Rolls back the open transaction, if any; never fails loudly.
void cmd_rollback (PGconn *conn);

//  A user, as commands refer to it.
typedef struct {
    char id[24];                        //  users.id as text (a query parameter)
    char email[CMD_EMAIL_MAX + 1];      //  for messages
} cmd_owner_t;

//  Looks up user EMAIL (any case). Returns CMD_OK with *OWNER (OUT) filled,
//  or the exit status after printing why.
int cmd_find_user (PGconn *conn, const char *email, cmd_owner_t *owner);

//  The owner a command acts for: --owner EMAIL when EMAIL is not NULL, else
//  the only user (several users make --owner required). Returns CMD_OK with
//  *OWNER (OUT) filled, or the exit status after printing why.
int cmd_resolve_owner (PGconn *conn, const char *email, cmd_owner_t *owner);

//  Prints an aligned table of ROWS rows and COLS columns: CELL (CTX, r, c)
//  gives each value, r = -1 the column names; NULL prints "-". Columns are
//  padded to their widest value in characters. EMPTY is printed instead
//  when there are no rows.
void cmd_print_rows (int rows, int cols, const char *(*cell) (void *ctx, int r, int c), void *ctx,
                     const char *empty);

//  cmd_print_rows over a query result.
void cmd_print_table (PGresult *res, const char *empty);

//  Seals the LEN bytes at PLAIN under the master key (created 0600 on first
//  use) and returns them as a bytea text literal "\x<hex>" (the caller's,
//  free()), or NULL after printing why. WHAT names the secret in errors.
char *cmd_seal (const rst_config_t *cfg, const void *plain, size_t len, const char *what);

//  Reads the regular file PATH, at most MAX bytes, into a new buffer (the
//  caller's, free(); NUL-terminated after *LEN_P bytes). WHAT names the
//  file in errors ("--photo"). Returns CMD_OK, or CMD_USAGE after printing
//  why (missing, unreadable, empty, or larger than MAX).
int cmd_read_file (const char *path, const char *what, size_t max, char **data_p,
                   size_t *len_p);

//  One subcommand of a command group.
typedef struct {
    const char *name;           //  argv[0] of the subcommand
    int (*run) (int argc, char **argv, const rst_config_t *cfg);
    const char *synopsis;       //  one line, after "rastro "
    const char *help;           //  the rest of --help
} cmd_sub_t;

//  Runs `rastro GROUP <sub> ...` (ARGV[0] is GROUP): the group's help,
//  a subcommand's --help, or the subcommand. Returns the exit status.
int cmd_dispatch (const char *group, const char *summary, const cmd_sub_t *subs, int argc,
                  char **argv, const rst_config_t *cfg);

#endif
