/*  rst_db — PostgreSQL access shared by the nodes and the `rastro` command.

    Connection strings come from rst_config (RASTRO_DATABASE_URL, or the
    private cluster under the data directory). Migrations are the files of
    schemas/sql/ (NNN_name.sql), compiled into the binary at build time, and
    applied in order, each in its own transaction, recorded in
    schema_migrations, under an advisory lock so that concurrent starters
    don't race. Applying them again changes nothing.
*/
#ifndef RST_DB_H
#define RST_DB_H

#include "rst_config.h"
#include <libpq-fe.h>

//  Connects to CFG's database. Returns a connection the caller owns (PQfinish),
//  or NULL with a one-line reason in ERR (the library's message, no password).
PGconn *rst_db_connect (const rst_config_t *cfg, char *err, size_t errlen);

//  Applies every migration not yet applied. Returns the number applied (0
//  when up to date), or -1 with the failing file and PostgreSQL's message in ERR.
int rst_db_migrate (PGconn *conn, char *err, size_t errlen);

//  Runs SQL (no parameters, no result rows expected). Returns 0, or -1 with
//  PostgreSQL's message in ERR.
int rst_db_exec (PGconn *conn, const char *sql, char *err, size_t errlen);

#endif
