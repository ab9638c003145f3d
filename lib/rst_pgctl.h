/*  rst_pgctl — the private PostgreSQL cluster under the data directory.

    When RASTRO_DATABASE_URL is unset, rastro runs its own cluster:

        <data>/pg/data             the cluster (initdb on first use)
        <data>/pg/run              unix socket directory (cfg->pg_socket_dir)
        <data>/pg/postgresql.log   the server's log

    It listens on the unix socket only (listen_addresses = ''), port
    cfg->pg_port names the socket file, authentication is `trust` for the
    superuser `rastro` (the socket directory is reachable only through the
    data directory), and the database `rastro` is created on start.
    Memory settings are modest, for a small (2-core) host; settings that
    depend on the config (socket directory, port) are rewritten into
    <data>/pg/data/rastro.conf on every start, which postgresql.conf includes.

    PostgreSQL refuses to run as root: when rastro runs as root, the <data>/pg
    tree is given to the `postgres` user and initdb/pg_ctl run as that user
    (setuid in a forked child). Every parent directory of the data directory
    must then be traversable by `postgres`; if not, start fails and says what
    to change. Server binaries are found with `pg_config --bindir`, else the
    newest /usr/lib/postgresql/<version>/bin; an existing cluster uses the
    binaries of the version that created it.

    Progress goes through rst_log (class "pgctl"). Not thread-safe: call from
    one thread; concurrent `rastro` processes are serialised by a lock file.
*/
#ifndef RST_PGCTL_H
#define RST_PGCTL_H

#include "rst_config.h"
#include <stddef.h>

//  Starts CFG's private cluster, creating it on first use, and makes sure the
//  database `rastro` exists. Returns 0 if it started the server now, 1 if the
//  server was already running (nothing to do: a success), or -1 with a
//  one-line reason in ERR that says what to do. CFG must be private
//  (cfg->database_is_private).
int rst_pgctl_start (const rst_config_t *cfg, char *err, size_t errlen);

//  Stops CFG's private cluster (fast shutdown: sessions are cut, committed
//  data is safe) and waits for it. Returns 0 if it stopped it, 1 if it was
//  not running, or -1 with a reason in ERR. Works on the cluster under
//  CFG's data directory even when CFG uses an external database (so that a
//  cluster started before RASTRO_DATABASE_URL was set can still be stopped).
int rst_pgctl_stop (const rst_config_t *cfg, char *err, size_t errlen);

//  1 if CFG's private cluster has a live postmaster (pid file and process),
//  else 0. Cheap: reads <data>/pg/data/postmaster.pid.
int rst_pgctl_is_running (const rst_config_t *cfg);

#endif
