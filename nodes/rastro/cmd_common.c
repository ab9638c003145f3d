/*  cmd_common — what the `rastro` commands share (see commands.h).

    The one error voice of the command line ("rastro: <message>" on
    stderr) and the database connection every admin command opens
    (rst_db_connect, then rst_db_migrate so that a fresh cluster works).
*/
#include "commands.h"
#include "rst_db.h"

#include <stdarg.h>
#include <stdio.h>

#define S_ERR_MAX 1024
#define S_FAIL    1             //  exit status of a failure at run time

int
cmd_fail (int status, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    fputs ("rastro: ", stderr);
    vfprintf (stderr, fmt, ap);
    fputc ('\n', stderr);
    va_end (ap);
    return status;
}

PGconn *
cmd_open_db (const rst_config_t *cfg)
{
    char err[S_ERR_MAX];
    PGconn *conn = rst_db_connect (cfg, err, sizeof err);
    if (!conn) {
        cmd_fail (S_FAIL, "%s", err);
        return NULL;
    }
    if (rst_db_migrate (conn, err, sizeof err) < 0) {
        cmd_fail (S_FAIL, "%s", err);
        PQfinish (conn);
        return NULL;
    }
    return conn;
}
