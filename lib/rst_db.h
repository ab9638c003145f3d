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

//  1 if the database of the conninfo URL answers within 3 seconds, else 0.
int rst_db_ping (const char *url);

//  Applies every migration not yet applied. Returns the number applied (0
//  when up to date), or -1 with the failing file and PostgreSQL's message in ERR.
int rst_db_migrate (PGconn *conn, char *err, size_t errlen);

//  Runs SQL (no parameters, no result rows expected). Returns 0, or -1 with
//  PostgreSQL's message in ERR.
int rst_db_exec (PGconn *conn, const char *sql, char *err, size_t errlen);

//  Runs the statement NAME, prepared from SQL on this connection at its
//  first use (so PostgreSQL parses and plans it once, not at every call),
//  with N parameters as PQexecParams takes them (TYPES, LENGTHS and FORMATS
//  may be NULL). A name must always go with the same SQL. Returns the
//  result as PQexecPrepared does: the caller checks its status and
//  PQclears it. A connection that was reset prepares again on first use.
PGresult *rst_db_exec_prepared (PGconn *conn, const char *name, const char *sql, int n,
                                const Oid *types, const char *const *values, const int *lengths,
                                const int *formats);

//  One migration compiled into the binary (schemas/sql/NNN_name.sql, embedded
//  by lib/embed_sql.cmake into the generated rst_migrations.c).
typedef struct {
    int version;            //  NNN of the file name, 1 and up
    const char *name;       //  the "name" part, e.g. "init"
    const char *sql;        //  the whole file, NUL-terminated
} rst_migration_t;

//  The migrations this binary knows, in the order they are applied (by
//  version). Sets *COUNT_P. The array is static and lives forever.
const rst_migration_t *rst_db_migrations (size_t *count_p);

//  The highest version recorded in schema_migrations, 0 when none (or when
//  the table does not exist yet), or -1 with PostgreSQL's message in ERR.
int rst_db_schema_version (PGconn *conn, char *err, size_t errlen);

#endif
