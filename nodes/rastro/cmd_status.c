/*  cmd_status — `rastro status [--json]`: each node and its state.

    Reads what `rastro up` leaves in <data>/run (see cmd_up.c):
      - supervisor.pid, flock'ed by a live supervisor (a lock, not a pid
        check, so a recycled pid is never mistaken for it);
      - supervisor.state, one line per node instance;
      - <node>-<i>.prom, the heartbeat file each node rewrites about once
        a second (rst_heartbeat_write), for `rastro_heartbeat_timestamp_seconds`.
    It also says whether PostgreSQL answers (PQping).

    Exit status: 0 when the supervisor runs, every node instance is running
    with a heartbeat younger than 5 s and PostgreSQL answers (when it is
    used); 1 otherwise; 3 when no supervisor runs for this data directory.
*/
#include "commands.h"
#include "rst_db.h"
#include "rst_pgctl.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#define S_HEARTBEAT_FRESH_S 5.0     //  older heartbeats count as a failure
#define S_MAX_NODES         1024    //  node instances read from the state file

typedef struct {
    char node[64];
    int instance;
    int pid;
    char state[16];
    int restarts;
    long long started;          //  unix time of the last start, 0 if never
    char last_exit[128];
    double heartbeat;           //  unix time of the last heartbeat, 0 if none
} s_row_t;

typedef struct {
    int pid;
    long long started;
    char phase[16];
    int pg_owned;
    char db_mode[16];
    char topology[PATH_MAX];
    s_row_t *rows;
    size_t count;
} s_state_t;

static void
s_usage (FILE *out)
{
    fprintf (out, "usage: rastro status [--json]\n\n"
                  "Shows the node instances that `rastro up` supervises for $RASTRO_DATA_DIR:\n"
                  "pid, state (running, backoff = waiting to restart, stopped), restarts,\n"
                  "uptime, age of the node's heartbeat and why it last died; and whether\n"
                  "PostgreSQL answers. A heartbeat older than 5 s is marked with '!'.\n\n"
                  "  --json  the same as a JSON object\n\n"
                  "Exit status: 0 all running with a heartbeat younger than 5 s, 1 something\n"
                  "is not, 3 no `rastro up` is running for this data directory.\n");
}

//  1 if a supervisor holds the lock of DATA_DIR, 0 if not.
static int
s_supervisor_alive (const char *data_dir)
{
    char path[PATH_MAX + 32];
    snprintf (path, sizeof path, "%s/run/supervisor.pid", data_dir);
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    int alive = flock (fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    close (fd);
    return alive;
}

//  Splits LINE at tabs into at most MAX fields (in place). Returns the count.
static int
s_split (char *line, char **fields, int max)
{
    line[strcspn (line, "\n")] = 0;
    int n = 0;
    char *p = line;
    while (n < max) {
        fields[n++] = p;
        char *tab = strchr (p, '\t');
        if (!tab)
            break;
        *tab = 0;
        p = tab + 1;
    }
    return n;
}

static double
s_heartbeat (const char *data_dir, const char *node, int instance)
{
    char path[PATH_MAX + 128];
    snprintf (path, sizeof path, "%s/run/%s-%d.prom", data_dir, node, instance);
    FILE *f = fopen (path, "re");
    if (!f)
        return 0;
    char line[512];
    double ts = 0;
    static const char key[] = "rastro_heartbeat_timestamp_seconds ";
    while (fgets (line, sizeof line, f))
        if (!strncmp (line, key, sizeof key - 1)) {
            ts = strtod (line + sizeof key - 1, NULL);
            break;
        }
    fclose (f);
    return ts;
}

//  Reads supervisor.state into STATE. Returns 0, or -1 if there is none.
static int
s_read_state (const char *data_dir, s_state_t *state)
{
    char path[PATH_MAX + 32];
    snprintf (path, sizeof path, "%s/run/supervisor.state", data_dir);
    FILE *f = fopen (path, "re");
    if (!f)
        return -1;
    char line[PATH_MAX + 256];
    while (fgets (line, sizeof line, f)) {
        char *fields[8];
        int n = s_split (line, fields, 8);
        if (n >= 7 && !strcmp (fields[0], "supervisor")) {
            state->pid = atoi (fields[1]);
            state->started = atoll (fields[2]);
            snprintf (state->phase, sizeof state->phase, "%s", fields[3]);
            state->pg_owned = atoi (fields[4]);
            snprintf (state->db_mode, sizeof state->db_mode, "%s", fields[5]);
            snprintf (state->topology, sizeof state->topology, "%s", fields[6]);
        }
        else if (n >= 8 && !strcmp (fields[0], "node") && state->count < S_MAX_NODES) {
            s_row_t *rows = realloc (state->rows, (state->count + 1) * sizeof *rows);
            if (!rows)
                break;
            state->rows = rows;
            s_row_t *r = &rows[state->count++];
            memset (r, 0, sizeof *r);
            snprintf (r->node, sizeof r->node, "%s", fields[1]);
            r->instance = atoi (fields[2]);
            r->pid = atoi (fields[3]);
            snprintf (r->state, sizeof r->state, "%s", fields[4]);
            r->restarts = atoi (fields[5]);
            r->started = atoll (fields[6]);
            snprintf (r->last_exit, sizeof r->last_exit, "%s", fields[7]);
            r->heartbeat = s_heartbeat (data_dir, r->node, r->instance);
        }
    }
    fclose (f);
    return 0;
}

//  "42s", "3m12s", "2h05m", "3d04h".
static void
s_duration (double seconds, char *out, size_t outlen)
{
    long s = seconds < 0 ? 0 : (long) seconds;
    if (s < 60)
        snprintf (out, outlen, "%lds", s);
    else if (s < 3600)
        snprintf (out, outlen, "%ldm%02lds", s / 60, s % 60);
    else if (s < 86400)
        snprintf (out, outlen, "%ldh%02ldm", s / 3600, s % 3600 / 60);
    else
        snprintf (out, outlen, "%ldd%02ldh", s / 86400, s % 86400 / 3600);
}

static double
s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

int
cmd_status (int argc, char **argv, const rst_config_t *cfg)
{
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (cmd_is_help (argv[i])) {
            s_usage (stdout);
            return 0;
        }
        else if (!strcmp (argv[i], "--json"))
            json = 1;
        else {
            fprintf (stderr, "rastro status: unexpected argument '%s' (rastro status --help)\n",
                     argv[i]);
            return 2;
        }
    }
    s_state_t state = {0};
    int have_state = s_read_state (cfg->data_dir, &state) == 0;
    int alive = s_supervisor_alive (cfg->data_dir);
    double now = s_now ();

    //  PostgreSQL: whether it answers; counted unless the supervisor runs without it.
    int pg_private = cfg->database_is_private;
    int pg_up = rst_db_ping (cfg->database_url);
    int pg_counts = !(have_state && !strcmp (state.db_mode, "none"));
    int healthy = alive && have_state && (pg_up || !pg_counts) && !strcmp (state.phase, "running");

    for (size_t i = 0; i < state.count; i++) {
        s_row_t *r = &state.rows[i];
        if (strcmp (r->state, "running") || r->heartbeat <= 0
            || now - r->heartbeat >= S_HEARTBEAT_FRESH_S)
            healthy = 0;
    }
    if (json) {
        cJSON *root = cJSON_CreateObject ();
        cJSON_AddStringToObject (root, "data_dir", cfg->data_dir);
        cJSON *sup = cJSON_AddObjectToObject (root, "supervisor");
        cJSON_AddBoolToObject (sup, "running", alive);
        if (have_state) {
            cJSON_AddNumberToObject (sup, "pid", state.pid);
            cJSON_AddStringToObject (sup, "phase", alive ? state.phase : "dead");
            cJSON_AddNumberToObject (sup, "started", (double) state.started);
            cJSON_AddStringToObject (sup, "topology", state.topology);
            cJSON_AddStringToObject (sup, "database", state.db_mode);
        }
        cJSON *pg = cJSON_AddObjectToObject (root, "postgresql");
        cJSON_AddBoolToObject (pg, "private", pg_private);
        cJSON_AddBoolToObject (pg, "running", pg_up);
        cJSON *nodes = cJSON_AddArrayToObject (root, "nodes");
        for (size_t i = 0; i < state.count; i++) {
            s_row_t *r = &state.rows[i];
            cJSON *n = cJSON_CreateObject ();
            cJSON_AddStringToObject (n, "node", r->node);
            cJSON_AddNumberToObject (n, "instance", r->instance);
            cJSON_AddNumberToObject (n, "pid", r->pid);
            cJSON_AddStringToObject (n, "state", r->state);
            cJSON_AddNumberToObject (n, "restarts", r->restarts);
            if (!strcmp (r->state, "running") && r->started)
                cJSON_AddNumberToObject (n, "uptime_seconds", now - (double) r->started);
            else
                cJSON_AddNullToObject (n, "uptime_seconds");
            if (r->heartbeat > 0)
                cJSON_AddNumberToObject (n, "heartbeat_age_seconds", now - r->heartbeat);
            else
                cJSON_AddNullToObject (n, "heartbeat_age_seconds");
            if (strcmp (r->last_exit, "-"))
                cJSON_AddStringToObject (n, "last_exit", r->last_exit);
            else
                cJSON_AddNullToObject (n, "last_exit");
            cJSON_AddItemToArray (nodes, n);
        }
        cJSON_AddBoolToObject (root, "healthy", healthy);
        char *text = cJSON_Print (root);
        if (text)
            printf ("%s\n", text);
        free (text);
        cJSON_Delete (root);
    }
    else {
        char up[32];
        if (alive && have_state) {
            s_duration (now - (double) state.started, up, sizeof up);
            printf ("supervisor: pid %d, %s for %s (topology %s)\n", state.pid, state.phase, up,
                    state.topology);
        }
        else
            printf ("supervisor: not running for %s (start it with `rastro up`)%s\n",
                    cfg->data_dir, have_state ? "; last known state:" : "");
        if (state.count) {
            printf ("%-12s %4s %8s %-8s %8s %9s %9s  %s\n", "NODE", "INST", "PID", "STATE",
                    "RESTARTS", "UPTIME", "HEARTBEAT", "LAST EXIT");
            for (size_t i = 0; i < state.count; i++) {
                s_row_t *r = &state.rows[i];
                char uptime[32] = "-", beat[32] = "none", pid[16] = "-";
                if (!strcmp (r->state, "running") && r->started)
                    s_duration (now - (double) r->started, uptime, sizeof uptime);
                if (r->heartbeat > 0) {
                    double age = now - r->heartbeat;
                    snprintf (beat, sizeof beat, "%.1fs%s", age < 0 ? 0 : age,
                              age >= S_HEARTBEAT_FRESH_S ? "!" : "");
                }
                if (r->pid > 0)
                    snprintf (pid, sizeof pid, "%d", r->pid);
                printf ("%-12s %4d %8s %-8s %8d %9s %9s  %s\n", r->node, r->instance, pid,
                        r->state, r->restarts, uptime, beat, r->last_exit);
            }
        }
        if (pg_private)
            printf ("postgresql: private cluster in %s/pg: %s\n", cfg->data_dir,
                    pg_up ? "running"
                          : rst_pgctl_is_running (cfg) ? "starting or not answering"
                                                       : "stopped");
        else
            printf ("postgresql: external (RASTRO_DATABASE_URL): %s\n",
                    pg_up ? "reachable" : "NOT reachable");
    }
    free (state.rows);
    if (!alive)
        return 3;
    return healthy ? 0 : 1;
}
