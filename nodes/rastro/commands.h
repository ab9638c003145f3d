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
#include "rst_secret.h"

#include <libpq-fe.h>

//  One subcommand of a command group.
typedef struct {
    const char *name;           //  argv[0] of the subcommand
    int (*run) (int argc, char **argv, const rst_config_t *cfg);
    const char *synopsis;       //  one line, after "rastro "
    const char *help;           //  the rest of --help
} cmd_sub_t;

//  A command group, `rastro NAME <subcommand> ...` (run by cmd_dispatch).
typedef struct {
    const char *name;           //  "bot"
    const char *summary;        //  what the group is about, for --help
    const cmd_sub_t *subs;      //  its subcommands, ending with {NULL}
} cmd_group_t;

//  cmd_admin.c: `rastro user|pixel|bot|pool ...`, the objects every node
//  uses (bot webhook is cmd_webhook.c's).
extern const cmd_group_t cmd_user_group;
extern const cmd_group_t cmd_pixel_group;
extern const cmd_group_t cmd_bot_group;
extern const cmd_group_t cmd_pool_group;

//  cmd_offer.c: `rastro offer add|list|set|enable|disable`, what a bot sells.
extern const cmd_group_t cmd_offer_group;

//  cmd_gateway.c: `rastro gateway set|list|remove`, a bot's PIX gateway
//  (credentials sealed at rest).
extern const cmd_group_t cmd_gateway_group;

//  cmd_webhook.c: `rastro bot webhook <username> --url BASE | --delete`
//  (argv[0] is "webhook"; one of cmd_bot_group's subcommands): how a bot
//  receives its updates.
int cmd_bot_webhook (int argc, char **argv, const rst_config_t *cfg);

//  cmd_payment.c: `rastro payment list|redeliver` (the PIX charges and
//  their deliveries) and `rastro lead list` (the bots' Telegram users).
extern const cmd_group_t cmd_payment_group;
extern const cmd_group_t cmd_lead_group;

//  cmd_spend.c: `rastro adaccount add|list|remove|set` (Meta ad accounts whose
//  spend the optimizer reads; tokens sealed at rest) and `rastro spend
//  set|list` (manual spend per pool and day; every spend).
extern const cmd_group_t cmd_adaccount_group;
extern const cmd_group_t cmd_spend_group;

//  The other commands are one function each: they get the arguments after
//  their own name (argv[0] is the command) and print their own --help.

//  cmd_up.c: `rastro up [--topology FILE]`, the foreground supervisor.
int cmd_up (int argc, char **argv, const rst_config_t *cfg);

//  cmd_status.c: `rastro status`.
int cmd_status (int argc, char **argv, const rst_config_t *cfg);

//  cmd_db.c: `rastro db start|stop|migrate|url|psql`.
int cmd_db (int argc, char **argv, const rst_config_t *cfg);

//  cmd_dlq.c: `rastro dlq list|show|replay|purge`, the dead-letter store.
int cmd_dlq (int argc, char **argv, const rst_config_t *cfg);

//  ---------------------------------------------------------------------------
//  cmd_common.c: the toolkit every command shares. Each function below
//  prints its own one-line error ("rastro: ...") when it says so.

#define CMD_OK    0             //  exit statuses (see the top of this file)
#define CMD_FAIL  1
#define CMD_USAGE 2

#define CMD_ERR_MAX          1024   //  error buffers
#define CMD_EMAIL_MAX        254    //  users.email CHECK
#define CMD_USERNAME_MIN     5      //  Telegram usernames: 5-32 of [A-Za-z0-9_]
#define CMD_USERNAME_MAX     32
#define CMD_UNIQUE_VIOLATION "23505"

//  Prints "rastro: <message>" on stderr and returns STATUS.
int cmd_fail (int status, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

//  Connects to PostgreSQL and applies the migrations. Returns the
//  connection (the caller's, PQfinish), or NULL after printing why.
PGconn *cmd_open_db (const rst_config_t *cfg);

//  1 if ARG is --help or -h.
int cmd_is_help (const char *arg);

//  1 if any of ARGV[1..ARGC) before "--" asks for help.
int cmd_wants_help (int argc, char **argv);

//  1 if VALUE is MIN to MAX characters, each a letter, a digit or one of EXTRA.
int cmd_is_word (const char *value, size_t min, size_t max, const char *extra);

//  1 if VALUE is 1 to MAX decimal digits (nothing else).
int cmd_is_number (const char *value, size_t max);

//  1 if VALUE has the shape of an email address (local@domain.tld).
int cmd_is_email (const char *value);

//  Copies EMAIL lower-cased into OUT (CMD_EMAIL_MAX + 1 bytes; cut there).
void cmd_email_lower (const char *email, char *out);

//  A bot as typed on the command line: "@name" or "name" -> "name" (points into ARG).
const char *cmd_bot_name (const char *arg);

//  1 if NAME is a Telegram bot username (5 to 32 letters, digits or '_').
int cmd_is_username (const char *name);

//  Checks the value of --owner (NULL: not given, fine). Returns CMD_OK, or
//  CMD_USAGE after printing why.
int cmd_check_owner (const char *email);

//  Checks the value of --bot (NULL: not given, fine) and drops a leading
//  '@' from *NAME. Returns CMD_OK, or CMD_USAGE after printing why.
int cmd_check_bot (const char **name);

//  Number of characters in the UTF-8 text S (continuation bytes do not count).
size_t cmd_chars (const char *s);


//  Matches ARGV[*I] against option NAME, written "NAME VALUE" or
//  "NAME=VALUE". Returns 0 if it is another argument; 1 with *VALUE set (and
//  *I moved past a separate value); -1 after printing why if the value is
//  missing, or if the option was given twice (*VALUE already set) and
//  REPEATABLE is 0.
int cmd_opt (int argc, char **argv, int *i, const char *name, const char **value, int repeatable);

//  One option of a command: `NAME VALUE` or `NAME=VALUE` into *VALUE; or,
//  when FLAG is set, a bare `NAME` that sets *FLAG to 1; or, when EACH is
//  set, a repeatable `NAME VALUE`: EACH (CTX, VALUE) is called for each,
//  returning CMD_OK, or the exit status after printing why.
typedef struct {
    const char *name;
    const char **value;
    int *flag;
    int (*each) (void *ctx, const char *value);
    void *ctx;
} cmd_optdef_t;

//  The entries of a cmd_optdef_t array, which ends with CMD_OPT_END.
#define CMD_OPT(opt, value_p)     {.name = (opt), .value = (value_p)}
#define CMD_FLAG(opt, flag_p)     {.name = (opt), .flag = (flag_p)}
#define CMD_EACH(opt, fn, ctx_p)  {.name = (opt), .each = (fn), .ctx = (ctx_p)}
#define CMD_OPT_END                 {.name = NULL}

//  Parses ARGV[1..ARGC) for the options OPTS (ending with CMD_OPT_END; NULL
//  for none) and MIN to MAX positional arguments, stored into POS[0..MAX)
//  (unused entries NULL; POS may be NULL when MAX is 0). Each option may be
//  given once (but EACH ones); "--" ends the options. Returns CMD_OK; or,
//  after printing why, CMD_USAGE (or what an EACH returned). FMT (printf)
//  is the message for fewer than MIN or more than MAX positional arguments.
int cmd_parse (int argc, char **argv, const cmd_optdef_t *opts, const char **pos, int min,
               int max, const char *fmt, ...) __attribute__ ((format (printf, 7, 8)));

//  Runs SQL with NPARAMS parameters, text unless FORMATS says 1 (binary,
//  then LENGTHS gives the sizes; both may be NULL). A NULL parameter is SQL
//  NULL. Returns the result (the caller's, PQclear), or NULL with the
//  SQLSTATE in STATE (6 bytes, may be NULL) and a one-line message in ERR.
PGresult *cmd_query (PGconn *conn, const char *sql, int nparams, const char *const *params,
                     const int *lengths, const int *formats, char *state, char *err,
                     size_t errlen);

//  Connects (cmd_open_db), runs SQL with NPARAMS text PARAMS (see cmd_query)
//  and disconnects: for a command that needs one statement. Returns the
//  result (the caller's, PQclear), or NULL after printing why.
PGresult *cmd_query_once (const rst_config_t *cfg, const char *sql, int nparams,
                          const char *const *params);

//  Prepares SQL (NPARAMS text parameters) as statement NAME of CONN, for
//  cmd_query_prepared. Returns CMD_OK, or CMD_FAIL after printing why.
int cmd_prepare (PGconn *conn, const char *name, const char *sql, int nparams);

//  Runs statement NAME (cmd_prepare) with NPARAMS text parameters, like
//  cmd_query: the result (the caller's, PQclear), or NULL with STATE and ERR.
PGresult *cmd_query_prepared (PGconn *conn, const char *name, int nparams,
                              const char *const *params, char *state, char *err, size_t errlen);

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

//  A bot, as commands refer to it.
typedef struct {
    char id[24];                            //  bots.id as text (a query parameter)
    char owner_id[24];                      //  bots.owner_id as text
    char owner_email[CMD_EMAIL_MAX + 1];    //  for messages
    char username[CMD_USERNAME_MAX + 1];    //  as Telegram spells it
} cmd_bot_t;

#define CMD_LOCK_SHARE  "FOR SHARE OF b"    //  cmd_find_bot: row locks (no-ops
#define CMD_LOCK_UPDATE "FOR UPDATE OF b"   //  outside a transaction)

//  Looks up bot NAME (any case), locking its row with LOCK (CMD_LOCK_SHARE
//  or CMD_LOCK_UPDATE). With OWNER (may be NULL) the bot must be OWNER's.
//  Returns CMD_OK with *BOT (OUT) filled, or the exit status after printing
//  why ("no bot @name: add it first ...", "... belongs to X, not to Y").
int cmd_find_bot (PGconn *conn, const char *name, const cmd_owner_t *owner, const char *lock,
                  cmd_bot_t *bot);

//  What a list command is narrowed to by its --owner and --bot.
typedef struct {
    cmd_owner_t owner;          //  valid when owner_id is not NULL
    cmd_bot_t bot;              //  valid when bot_id is not NULL
    const char *owner_id;       //  owner.id, or NULL: every user's (a query parameter)
    const char *bot_id;         //  bot.id, or NULL: every bot
} cmd_scope_t;

//  Looks up the --owner EMAIL and --bot NAME of a list command (either may
//  be NULL; both checked with cmd_check_owner / cmd_check_bot before): the
//  user exists, the bot exists and, with both, is the user's. Returns
//  CMD_OK with *SCOPE (OUT) filled, or the exit status after printing why.
int cmd_find_scope (PGconn *conn, const char *owner_email, const char *bot, cmd_scope_t *scope);

//  Prints an aligned table of ROWS rows and COLS columns: CELL (CTX, r, c)
//  gives each value, r = -1 the column names; NULL prints "-". Columns are
//  padded to their widest value in characters. EMPTY is printed instead
//  when there are no rows. CELL's value must stay valid until its next call.
void cmd_print_rows (int rows, int cols, const char *(*cell) (void *ctx, int r, int c), void *ctx,
                     const char *empty);

//  cmd_print_rows over a query result.
void cmd_print_table (PGresult *res, const char *empty);

//  Seals the LEN bytes at PLAIN under the master key (created 0600 on first
//  use) and returns them as a bytea text literal "\x<hex>" (the caller's,
//  free()), or NULL after printing why. WHAT names the secret in errors.
char *cmd_seal (const rst_config_t *cfg, const void *plain, size_t len, const char *what);

//  cmd_seal with the master key SECRET already open (for many secrets).
char *cmd_seal_with (rst_secret_t *secret, const void *plain, size_t len, const char *what);

//  Reads the regular file PATH, at most MAX bytes, into a new buffer (the
//  caller's, free(); NUL-terminated after *LEN_P bytes). WHAT names the
//  file in errors ("--photo"). Returns CMD_OK, or CMD_USAGE after printing
//  why (missing, unreadable, empty, or larger than MAX).
int cmd_read_file (const char *path, const char *what, size_t max, char **data_p,
                   size_t *len_p);

//  Reads the token in PATH into BUF (BUFLEN bytes): the file's content
//  without leading or trailing whitespace, which must be one word of
//  printable ASCII. Returns 0, or the exit status after printing why (the
//  content is never printed). BUF is wiped on failure.
int cmd_read_token_file (const char *path, char *buf, size_t buflen);

//  Runs `rastro GROUP <subcommand> ...` (ARGV[0] is GROUP's name): the
//  group's help, a subcommand's --help, or the subcommand. Returns the exit
//  status.
int cmd_dispatch (const cmd_group_t *group, int argc, char **argv, const rst_config_t *cfg);

#endif
