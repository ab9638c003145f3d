/*  cmd_db — `rastro db start | stop | status | migrate | url | psql`.

    The database side of the `rastro` command. start/stop/status manage the
    private PostgreSQL cluster under <data>/pg (rst_pgctl); they refuse to
    act when RASTRO_DATABASE_URL names an external server, which rastro
    does not own. migrate applies schemas/sql (rst_db_migrate) to whichever
    database is configured; url prints the libpq connection string; psql
    replaces this process with psql connected to it. `rastro up` starts
    the private cluster and migrates by itself: these are for people and
    test harnesses.
*/
#include "commands.h"
#include "rst_db.h"
#include "rst_log.h"
#include "rst_pgctl.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define CLS "db"

static void
s_usage (FILE *out)
{
    fprintf (out,
             "usage: rastro db <command>\n\n"
             "  start     start the private PostgreSQL under $RASTRO_DATA_DIR/pg (initdb on first\n"
             "            use; as root it runs as user postgres); a no-op if it is running\n"
             "  stop      stop the private PostgreSQL (fast shutdown)\n"
             "  status    say whether the database is up (exit 0 yes, 3 no)\n"
             "  migrate   apply the SQL migrations not applied yet (idempotent)\n"
             "  url       print the libpq connection string, e.g. psql \"$(rastro db url)\"\n"
             "  psql [ARG...]  run psql on the database, with ARGs passed on\n\n"
             "With RASTRO_DATABASE_URL set, rastro uses that server and does not manage it:\n"
             "only migrate, url, status and psql apply (and stop, for a private cluster\n"
             "started before). `rastro up` starts the private cluster and applies\n"
             "migrations by itself.\n");
}

static int
s_refuse_external (const rst_config_t *cfg, const char *what)
{
    if (cfg->database_is_private)
        return 0;
    fprintf (stderr, "rastro db %s: RASTRO_DATABASE_URL points at an external database, which "
                     "rastro does not manage: unset it to use the private cluster, or use "
                     "`rastro db migrate` on that server\n", what);
    return 1;
}

static int
s_start (const rst_config_t *cfg)
{
    if (s_refuse_external (cfg, "start"))
        return 1;
    char err[1024];
    int rc = rst_pgctl_start (cfg, err, sizeof err);
    if (rc < 0) {
        fprintf (stderr, "rastro db start: %s\n", err);
        return 1;
    }
    if (rc == 1)
        rst_info (CLS, "PostgreSQL is already running (socket directory %s)", cfg->pg_socket_dir);
    rst_info (CLS, "connect with: rastro db psql   (or psql \"$(rastro db url)\")");
    return 0;
}

static int
s_stop (const rst_config_t *cfg)
{
    //  Not refused with an external URL: a private cluster started earlier
    //  under this data directory can still be stopped.
    char err[1024];
    int rc = rst_pgctl_stop (cfg, err, sizeof err);
    if (rc < 0) {
        fprintf (stderr, "rastro db stop: %s\n", err);
        return 1;
    }
    if (rc == 1 && cfg->database_is_private)
        rst_info (CLS, "PostgreSQL was not running");
    else if (rc == 1)
        rst_info (CLS, "no private PostgreSQL runs under %s/pg (RASTRO_DATABASE_URL points at "
                       "an external database, which rastro does not manage)", cfg->data_dir);
    return 0;
}

static int
s_status (const rst_config_t *cfg)
{
    int up = rst_db_ping (cfg->database_url);
    if (cfg->database_is_private)
        printf ("private PostgreSQL in %s/pg: %s\n", cfg->data_dir,
                rst_pgctl_is_running (cfg) ? (up ? "running" : "starting or not answering")
                                           : "stopped (start it with `rastro db start`)");
    else
        printf ("external PostgreSQL (RASTRO_DATABASE_URL): %s\n",
                up ? "reachable" : "not reachable");
    return up ? 0 : 3;
}

static int
s_migrate (const rst_config_t *cfg)
{
    if (cfg->database_is_private && !rst_pgctl_is_running (cfg)) {
        fprintf (stderr, "rastro db migrate: the private PostgreSQL is not running: start it "
                         "with `rastro db start` (or `rastro up`)\n");
        return 1;
    }
    char err[1024];
    PGconn *conn = rst_db_connect (cfg, err, sizeof err);
    if (!conn) {
        fprintf (stderr, "rastro db migrate: %s\n", err);
        return 1;
    }
    int applied = rst_db_migrate (conn, err, sizeof err);
    PQfinish (conn);
    if (applied < 0) {
        fprintf (stderr, "rastro db migrate: %s\n", err);
        return 1;
    }
    if (applied == 0)
        rst_info (CLS, "schema is up to date");
    else
        rst_info (CLS, "applied %d migration%s", applied, applied == 1 ? "" : "s");
    return 0;
}

static int
s_psql (int argc, char **argv, const rst_config_t *cfg)
{
    char *args[argc + 3];
    int n = 0;
    args[n++] = "psql";
    args[n++] = (char *) cfg->database_url;
    for (int i = 2; i < argc; i++)
        args[n++] = argv[i];
    args[n] = NULL;
    execvp ("psql", args);
    fprintf (stderr, "rastro db psql: cannot run psql: %m (apt-get install -y postgresql-client)\n");
    return 1;
}

int
cmd_db (int argc, char **argv, const rst_config_t *cfg)
{
    if (argc < 2) {
        s_usage (stderr);
        return 2;
    }
    const char *sub = argv[1];
    if (cmd_is_help (sub) || !strcmp (sub, "help")) {
        s_usage (stdout);
        return 0;
    }
    if (argc > 2 && cmd_is_help (argv[2])
        && strcmp (sub, "psql")) {
        s_usage (stdout);
        return 0;
    }
    if (strcmp (sub, "psql") && argc > 2) {
        fprintf (stderr, "rastro db %s: unexpected argument '%s' (rastro db --help)\n", sub,
                 argv[2]);
        return 2;
    }
    if (!strcmp (sub, "start"))
        return s_start (cfg);
    if (!strcmp (sub, "stop"))
        return s_stop (cfg);
    if (!strcmp (sub, "status"))
        return s_status (cfg);
    if (!strcmp (sub, "migrate"))
        return s_migrate (cfg);
    if (!strcmp (sub, "url")) {
        printf ("%s\n", cfg->database_url);
        return 0;
    }
    if (!strcmp (sub, "psql"))
        return s_psql (argc, argv, cfg);
    fprintf (stderr, "rastro db: unknown command '%s' (rastro db --help lists them)\n", sub);
    return 2;
}
