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

#endif
