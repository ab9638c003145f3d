/*  rst_pgctl — the private PostgreSQL cluster under the data directory.

    See rst_pgctl.h. The server's own tools do the work (initdb, pg_ctl);
    this class finds them, runs them as the right user in a forked child
    with their output captured (the last line becomes the error message),
    and keeps the steps idempotent:

        no <data>/pg/data/PG_VERSION
            │ initdb into data.init (removed first if a previous run died),
            │ append rastro's settings, rename to data
            ▼
        stopped ──pg_ctl start -w──► running ──pg_ctl stop -m fast──► stopped
            ▲                          │
            └── start on running: no-op (returns 1); stop on stopped: no-op

    Whether the server runs is read from postmaster.pid plus a check that
    the process exists and is a postgres (a pid file left by a crash is
    "not running"; pg_ctl start copes with such a file itself).

    A lock file (<data>/pg/pgctl.lock, flock) serialises concurrent starts
    and stops of the same cluster. Every file descriptor is close-on-exec
    and the children close everything above stderr, so the server never
    inherits a descriptor (a supervisor's lock, a pipe) of its starter.
*/
#define _GNU_SOURCE
#include "rst_pgctl.h"
#include "rst_log.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <libpq-fe.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define CLS "pgctl"
#define RST_PGCTL_USER       "postgres"  //  system user that runs the server when we are root
#define RST_PGCTL_WAIT_S     "60"        //  pg_ctl -t: seconds to wait for start/stop
#define RST_PGCTL_OUTPUT_MAX 4096        //  tail of a tool's output kept for errors

typedef struct {
    char pg[PATH_MAX];          //  <data>/pg
    char data[PATH_MAX];        //  <data>/pg/data
    char init[PATH_MAX];        //  <data>/pg/data.init (initdb's work in progress)
    char run[PATH_MAX];         //  socket directory
    char log[PATH_MAX];         //  server log
    char lock[PATH_MAX];        //  pgctl.lock
} s_paths_t;

//  Who runs the server tools: ourselves, or `postgres` when we are root.
typedef struct {
    int switch_user;            //  1: setuid to uid/gid in the child
    uid_t uid;
    gid_t gid;
    char name[64];
} s_user_t;

static void
s_paths (const rst_config_t *cfg, s_paths_t *p)
{
    snprintf (p->pg, sizeof p->pg, "%.*s/pg", PATH_MAX - 32, cfg->data_dir);
    snprintf (p->data, sizeof p->data, "%.*s/data", PATH_MAX - 32, p->pg);
    snprintf (p->init, sizeof p->init, "%.*s/data.init", PATH_MAX - 32, p->pg);
    snprintf (p->run, sizeof p->run, "%s", cfg->pg_socket_dir);
    snprintf (p->log, sizeof p->log, "%.*s/postgresql.log", PATH_MAX - 32, p->pg);
    snprintf (p->lock, sizeof p->lock, "%.*s/pgctl.lock", PATH_MAX - 32, p->pg);
}

int
rst_pgctl_is_running (const rst_config_t *cfg)
{
    assert (cfg);
    s_paths_t p;
    s_paths (cfg, &p);
    char pidfile[PATH_MAX + 32];
    snprintf (pidfile, sizeof pidfile, "%s/postmaster.pid", p.data);
    FILE *f = fopen (pidfile, "re");
    if (!f)
        return 0;
    long pid = 0;
    int n = fscanf (f, "%ld", &pid);
    fclose (f);
    if (n != 1 || pid <= 0)
        return 0;
    if (kill ((pid_t) pid, 0) && errno != EPERM)
        return 0;
    //  A pid from a crashed run may now belong to someone else.
    char comm_path[64], comm[64] = "";
    snprintf (comm_path, sizeof comm_path, "/proc/%ld/comm", pid);
    f = fopen (comm_path, "re");
    if (f) {
        if (!fgets (comm, sizeof comm, f))
            comm[0] = 0;
        fclose (f);
        comm[strcspn (comm, "\n")] = 0;
        if (strcmp (comm, "postgres") && strcmp (comm, "postmaster"))
            return 0;
    }
    return 1;
}

//  Keeps the last line of non-empty output in OUT.
static void
s_last_line (const char *output, char *out, size_t outlen)
{
    const char *end = output + strlen (output);
    while (end > output && (end[-1] == '\n' || end[-1] == ' '))
        end--;
    const char *start = end;
    while (start > output && start[-1] != '\n')
        start--;
    snprintf (out, outlen, "%.*s", (int) (end - start), start);
}

//  In a child: becomes USER (if switching), leaves the signal state of the
//  parent behind and closes every inherited descriptor above stderr.
static int
s_child_become (const s_user_t *user, const char *cwd)
{
    sigset_t none;
    sigemptyset (&none);
    sigprocmask (SIG_SETMASK, &none, NULL);
    signal (SIGPIPE, SIG_DFL);
    signal (SIGINT, SIG_DFL);
    signal (SIGTERM, SIG_DFL);
    close_range (3, ~0U, 0);
    if (user->switch_user) {
        if (initgroups (user->name, user->gid) || setgid (user->gid) || setuid (user->uid))
            return -1;
    }
    if (cwd && chdir (cwd))
        return -1;
    return 0;
}

//  Appends DATA (N bytes) to the CAP-byte buffer OUT holding *USED bytes,
//  dropping the oldest bytes so that only the tail is kept.
static void
s_keep_tail (char *out, size_t *used, size_t cap, const char *data, size_t n)
{
    if (n >= cap) {
        data += n - cap;
        n = cap;
        *used = 0;
    }
    else if (*used + n > cap) {
        size_t drop = *used + n - cap;
        memmove (out, out + drop, *used - drop);
        *used -= drop;
    }
    memcpy (out + *used, data, n);
    *used += n;
}

//  Runs ARGV (argv[0] an absolute path) as USER with stdin from /dev/null and
//  stdout+stderr captured; the last RST_PGCTL_OUTPUT_MAX bytes go to OUTPUT.
//  Returns the exit status (0-255), or -1 if it could not run or was killed.
static int
s_run (const s_user_t *user, const char *cwd, char *const argv[], char *output, size_t outlen)
{
    assert (outlen > 1);
    output[0] = 0;
    int fds[2];
    if (pipe2 (fds, O_CLOEXEC)) {
        snprintf (output, outlen, "pipe: %s", strerror (errno));
        return -1;
    }
    pid_t pid = fork ();
    if (pid < 0) {
        snprintf (output, outlen, "fork: %s", strerror (errno));
        close (fds[0]);
        close (fds[1]);
        return -1;
    }
    if (pid == 0) {
        int devnull = open ("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2 (devnull, STDIN_FILENO);
        dup2 (fds[1], STDOUT_FILENO);
        dup2 (fds[1], STDERR_FILENO);
        if (s_child_become (user, cwd)) {
            dprintf (STDERR_FILENO, "cannot become user %s: %s\n", user->name, strerror (errno));
            _exit (127);
        }
        execv (argv[0], argv);
        dprintf (STDERR_FILENO, "cannot run %s: %s\n", argv[0], strerror (errno));
        _exit (127);
    }
    close (fds[1]);
    size_t used = 0;
    char buf[1024];
    while (1) {
        ssize_t n = read (fds[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        s_keep_tail (output, &used, outlen - 1, buf, (size_t) n);
        output[used] = 0;
    }
    close (fds[0]);
    int status;
    while (waitpid (pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    if (WIFEXITED (status))
        return WEXITSTATUS (status);
    return -1;
}

//  mkdir -p PATH with MODE for the directories it creates.
static int
s_mkdir_p (const char *path, mode_t mode)
{
    char dir[PATH_MAX];
    snprintf (dir, sizeof dir, "%s", path);
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir (dir, 0755) && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir (dir, mode) && errno != EEXIST)
        return -1;
    return 0;
}

static int
s_is_dir_empty (const char *path)
{
    DIR *d = opendir (path);
    if (!d)
        return errno == ENOENT;
    struct dirent *e;
    int empty = 1;
    while ((e = readdir (d)))
        if (strcmp (e->d_name, ".") && strcmp (e->d_name, "..")) {
            empty = 0;
            break;
        }
    closedir (d);
    return empty;
}

static int
s_is_executable (const char *dir, const char *tool)
{
    char path[PATH_MAX + 64];
    snprintf (path, sizeof path, "%s/%s", dir, tool);
    return access (path, X_OK) == 0;
}

//  Finds the directory of initdb/pg_ctl into OUT. An existing cluster wants
//  the binaries of its own major version. Returns 0 or -1 with ERR.
static int
s_find_bindir (const s_paths_t *p, char *out, size_t outlen, char *err, size_t errlen)
{
    char version[32] = "";
    char vfile[PATH_MAX + 32];
    snprintf (vfile, sizeof vfile, "%s/PG_VERSION", p->data);
    FILE *f = fopen (vfile, "re");
    if (f) {
        if (!fgets (version, sizeof version, f))
            version[0] = 0;
        fclose (f);
        version[strcspn (version, "\n")] = 0;
    }
    if (version[0]) {
        snprintf (out, outlen, "/usr/lib/postgresql/%s/bin", version);
        if (s_is_executable (out, "pg_ctl"))
            return 0;
    }
    //  pg_config --bindir (popen's pipe is close-on-exec in glibc).
    FILE *pc = popen ("pg_config --bindir 2>/dev/null", "re");
    if (pc) {
        char line[PATH_MAX] = "";
        if (!fgets (line, sizeof line, pc))
            line[0] = 0;
        pclose (pc);
        line[strcspn (line, "\n")] = 0;
        if (line[0] && s_is_executable (line, "initdb") && s_is_executable (line, "pg_ctl")) {
            snprintf (out, outlen, "%s", line);
            return 0;
        }
    }
    //  Newest /usr/lib/postgresql/<major>/bin.
    DIR *d = opendir ("/usr/lib/postgresql");
    long best = -1;
    if (d) {
        struct dirent *e;
        while ((e = readdir (d))) {
            char *end;
            long v = strtol (e->d_name, &end, 10);
            if (end == e->d_name || *end || v <= best)
                continue;
            char dir[PATH_MAX];
            snprintf (dir, sizeof dir, "/usr/lib/postgresql/%s/bin", e->d_name);
            if (s_is_executable (dir, "initdb") && s_is_executable (dir, "pg_ctl"))
                best = v;
        }
        closedir (d);
    }
    if (best >= 0) {
        snprintf (out, outlen, "/usr/lib/postgresql/%ld/bin", best);
        return 0;
    }
    if (version[0])
        snprintf (err, errlen, "the cluster in %s was made by PostgreSQL %s, whose server "
                  "binaries are not installed: apt-get install -y postgresql-%s", p->data,
                  version, version);
    else
        snprintf (err, errlen, "PostgreSQL server binaries not found (pg_config --bindir, "
                  "/usr/lib/postgresql/*/bin): apt-get install -y postgresql, or set "
                  "RASTRO_DATABASE_URL to an existing server");
    return -1;
}

//  Decides who runs the server. Returns 0 or -1 with ERR.
static int
s_user (s_user_t *user, char *err, size_t errlen)
{
    memset (user, 0, sizeof *user);
    if (geteuid () != 0) {
        struct passwd *pw = getpwuid (geteuid ());
        snprintf (user->name, sizeof user->name, "%s", pw ? pw->pw_name : "(current user)");
        return 0;
    }
    struct passwd *pw = getpwnam (RST_PGCTL_USER);
    if (!pw) {
        snprintf (err, errlen, "PostgreSQL refuses to run as root and there is no '%s' user: "
                  "apt-get install -y postgresql (it creates the user), or run rastro as an "
                  "ordinary user", RST_PGCTL_USER);
        return -1;
    }
    user->switch_user = 1;
    user->uid = pw->pw_uid;
    user->gid = pw->pw_gid;
    snprintf (user->name, sizeof user->name, "%s", RST_PGCTL_USER);
    return 0;
}

//  As USER, checks that every directory down to PATH can be entered. On
//  failure returns -1 with ERR naming the first one that cannot.
static int
s_check_traversable (const s_user_t *user, const char *path, char *err, size_t errlen)
{
    int fds[2];
    if (pipe2 (fds, O_CLOEXEC)) {
        snprintf (err, errlen, "pipe: %s", strerror (errno));
        return -1;
    }
    pid_t pid = fork ();
    if (pid < 0) {
        snprintf (err, errlen, "fork: %s", strerror (errno));
        close (fds[0]);
        close (fds[1]);
        return -1;
    }
    if (pid == 0) {
        close (fds[0]);
        if (user->switch_user
            && (initgroups (user->name, user->gid) || setgid (user->gid) || setuid (user->uid)))
            _exit (2);
        char prefix[PATH_MAX];
        snprintf (prefix, sizeof prefix, "%s", path);
        for (char *p = prefix + 1;; p++) {
            char saved = *p;
            if (saved == '/' || saved == 0) {
                *p = 0;
                if (access (prefix, X_OK)) {
                    ssize_t rc = write (fds[1], prefix, strlen (prefix));
                    (void) rc;
                    _exit (1);
                }
                *p = saved;
            }
            if (!saved)
                break;
        }
        _exit (0);
    }
    close (fds[1]);
    char bad[PATH_MAX] = "";
    ssize_t n = read (fds[0], bad, sizeof bad - 1);
    bad[n > 0 ? n : 0] = 0;
    close (fds[0]);
    int status;
    while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED (status) && WEXITSTATUS (status) == 0)
        return 0;
    if (bad[0]) {
        struct stat st;
        unsigned mode = stat (bad, &st) == 0 ? (unsigned) (st.st_mode & 07777) : 0;
        snprintf (err, errlen, "PostgreSQL runs as user '%s', which cannot enter %s (mode %04o): "
                  "run `chmod o+x %s`, or choose a RASTRO_DATA_DIR outside it (e.g. "
                  "/var/lib/rastro)", user->name, bad, mode, bad);
    }
    else
        snprintf (err, errlen, "cannot switch to user '%s' to check %s", user->name, path);
    return -1;
}

static uid_t s_chown_uid;   //  nftw has no user pointer: the target of s_on_chown
static gid_t s_chown_gid;

static int
s_on_chown (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) flag;
    (void) ftw;
    if (st->st_uid != s_chown_uid || st->st_gid != s_chown_gid)
        if (lchown (path, s_chown_uid, s_chown_gid))
            return -1;
    return 0;
}

//  Gives the tree PATH to USER (when switching). Returns 0 or -1 with ERR.
static int
s_chown_tree (const s_user_t *user, const char *path, char *err, size_t errlen)
{
    if (!user->switch_user)
        return 0;
    s_chown_uid = user->uid;
    s_chown_gid = user->gid;
    if (nftw (path, s_on_chown, 16, FTW_PHYS)) {
        snprintf (err, errlen, "cannot give %s to user %s: %s", path, user->name,
                  strerror (errno));
        return -1;
    }
    return 0;
}

//  Quotes VALUE as a postgresql.conf string (single quotes doubled).
static void
s_conf_quote (const char *value, char *out, size_t outlen)
{
    size_t n = 0;
    if (outlen < 3)
        return;
    out[n++] = '\'';
    for (const char *p = value; *p && n + 3 < outlen; p++) {
        if (*p == '\'')
            out[n++] = '\'';
        out[n++] = *p;
    }
    out[n++] = '\'';
    out[n] = 0;
}

//  Appends rastro's one-time settings to a fresh cluster's postgresql.conf.
static int
s_append_settings (const char *data, char *err, size_t errlen)
{
    char path[PATH_MAX + 32];
    snprintf (path, sizeof path, "%s/postgresql.conf", data);
    FILE *f = fopen (path, "ae");
    if (!f) {
        snprintf (err, errlen, "cannot open %s: %s", path, strerror (errno));
        return -1;
    }
    fprintf (f, "\n"
                "# ---- rastro: private cluster for one small host (edit freely) ----\n"
                "max_connections = 100\n"
                "shared_buffers = 128MB\n"
                "work_mem = 4MB\n"
                "maintenance_work_mem = 64MB\n"
                "effective_cache_size = 512MB\n"
                "max_worker_processes = 4\n"
                "max_parallel_workers = 2\n"
                "max_parallel_workers_per_gather = 1\n"
                "max_wal_size = 1GB\n"
                "log_min_duration_statement = 1000\n"
                "log_line_prefix = '%%m [%%p] %%d '\n"
                "# Socket directory and port follow the rastro config: rewritten on every start.\n"
                "include_if_exists = 'rastro.conf'\n");
    if (fclose (f)) {
        snprintf (err, errlen, "cannot write %s: %s", path, strerror (errno));
        return -1;
    }
    return 0;
}

//  Rewrites <data>/rastro.conf (socket only, directory and port from CFG).
static int
s_write_conf (const rst_config_t *cfg, const s_paths_t *p, const s_user_t *user, char *err,
              size_t errlen)
{
    char path[PATH_MAX + 32], dir_list[PATH_MAX + 8], quoted[2 * PATH_MAX + 16];
    snprintf (path, sizeof path, "%s/rastro.conf", p->data);
    //  unix_socket_directories is a list: quote the entry, then the string.
    snprintf (dir_list, sizeof dir_list, "\"%s\"", p->run);
    s_conf_quote (dir_list, quoted, sizeof quoted);
    FILE *f = fopen (path, "we");
    if (!f) {
        snprintf (err, errlen, "cannot write %s: %s", path, strerror (errno));
        return -1;
    }
    fprintf (f, "# Written by rastro on every start of the private cluster: do not edit.\n"
                "listen_addresses = ''\n"
                "unix_socket_directories = %s\n"
                "unix_socket_permissions = 0777\n"
                "port = %d\n",
             quoted, cfg->pg_port);
    if (fclose (f)) {
        snprintf (err, errlen, "cannot write %s: %s", path, strerror (errno));
        return -1;
    }
    if (user->switch_user && chown (path, user->uid, user->gid)) {
        snprintf (err, errlen, "cannot give %s to %s: %s", path, user->name, strerror (errno));
        return -1;
    }
    return 0;
}

//  Creates the database `rastro` if it is missing. Returns 0 or -1 with ERR.
static int
s_ensure_database (const rst_config_t *cfg, const s_paths_t *p, char *err, size_t errlen)
{
    char port[16];
    snprintf (port, sizeof port, "%d", cfg->pg_port);
    const char *keys[] = {"host", "port", "dbname", "user", "connect_timeout", NULL};
    const char *values[] = {p->run, port, "postgres", "rastro", "10", NULL};
    PGconn *conn = PQconnectdbParams (keys, values, 0);
    if (!conn || PQstatus (conn) != CONNECTION_OK) {
        char line[512];
        s_last_line (conn ? PQerrorMessage (conn) : "out of memory", line, sizeof line);
        snprintf (err, errlen, "libpq: cannot connect to the private cluster: %s (see %s)", line,
                  p->log);
        PQfinish (conn);
        return -1;
    }
    int rc = 0;
    PGresult *res = PQexec (conn, "SELECT 1 FROM pg_database WHERE datname = 'rastro'");
    if (PQresultStatus (res) != PGRES_TUPLES_OK)
        rc = -1;
    else if (PQntuples (res) == 0) {
        PQclear (res);
        res = PQexec (conn, "CREATE DATABASE rastro");
        const char *state = PQresultErrorField (res, PG_DIAG_SQLSTATE);
        //  42P04: created meanwhile by a concurrent starter.
        if (PQresultStatus (res) != PGRES_COMMAND_OK && !(state && !strcmp (state, "42P04")))
            rc = -1;
        else
            rst_info (CLS, "created database rastro");
    }
    if (rc) {
        char line[512];
        s_last_line (PQerrorMessage (conn), line, sizeof line);
        snprintf (err, errlen, "libpq: cannot create database rastro: %s", line);
    }
    PQclear (res);
    PQfinish (conn);
    return rc;
}

//  Takes the cluster's lock (blocking). Returns the fd, or -1 with ERR.
static int
s_lock (const s_paths_t *p, char *err, size_t errlen)
{
    int fd = open (p->lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf (err, errlen, "cannot open %s: %s", p->lock, strerror (errno));
        return -1;
    }
    while (flock (fd, LOCK_EX)) {
        if (errno == EINTR)
            continue;
        snprintf (err, errlen, "cannot lock %s: %s", p->lock, strerror (errno));
        close (fd);
        return -1;
    }
    return fd;
}

//  Creates the cluster with initdb. Returns 0 or -1 with ERR.
static int
s_initdb (const s_paths_t *p, const s_user_t *user, const char *bindir, char *err,
          size_t errlen)
{
    char output[RST_PGCTL_OUTPUT_MAX], line[512];
    rst_info (CLS, "initialising PostgreSQL cluster in %s (first run only, takes a few seconds)",
              p->data);
    //  A previous initdb that died halfway left data.init behind.
    char *rm[] = {"/bin/rm", "-rf", (char *) p->init, NULL};
    if (s_run (&(s_user_t) {0}, NULL, rm, output, sizeof output) != 0) {
        s_last_line (output, line, sizeof line);
        snprintf (err, errlen, "cannot remove %s: %s", p->init, line);
        return -1;
    }
    if (mkdir (p->init, 0700)
        || (user->switch_user && chown (p->init, user->uid, user->gid))) {
        snprintf (err, errlen, "cannot create %s: %s", p->init, strerror (errno));
        return -1;
    }
    char initdb[PATH_MAX + 16];
    snprintf (initdb, sizeof initdb, "%s/initdb", bindir);
    char *argv[] = {initdb, "-D", (char *) p->init, "-A", "trust", "-U", "rastro", "-E", "UTF8",
                    "--locale=C", NULL};
    int rc = s_run (user, p->pg, argv, output, sizeof output);
    if (rc != 0) {
        s_last_line (output, line, sizeof line);
        snprintf (err, errlen, "initdb failed (%s): %s", initdb, line);
        return -1;
    }
    if (s_append_settings (p->init, err, errlen))
        return -1;
    if (rename (p->init, p->data)) {
        snprintf (err, errlen, "cannot rename %s to %s: %s", p->init, p->data, strerror (errno));
        return -1;
    }
    return 0;
}

int
rst_pgctl_start (const rst_config_t *cfg, char *err, size_t errlen)
{
    assert (cfg);
    assert (cfg->database_is_private);
    s_paths_t p;
    s_paths (cfg, &p);
    s_user_t user;
    if (s_user (&user, err, errlen))
        return -1;
    if (s_mkdir_p (p.pg, 0700) || s_mkdir_p (p.run, 0700)) {
        snprintf (err, errlen, "cannot create %s: %s", p.run, strerror (errno));
        return -1;
    }
    struct sockaddr_un sun;
    char sock[PATH_MAX + 32];
    snprintf (sock, sizeof sock, "%s/.s.PGSQL.%d", p.run, cfg->pg_port);
    if (strlen (sock) >= sizeof sun.sun_path) {
        snprintf (err, errlen, "PostgreSQL's socket %s would be longer than %zu bytes: use a "
                  "shorter RASTRO_DATA_DIR", sock, sizeof sun.sun_path - 1);
        return -1;
    }
    //  As root: postgres must reach <data>/pg, and own everything in it.
    if (user.switch_user
        && (s_check_traversable (&user, cfg->data_dir, err, errlen)
            || s_chown_tree (&user, p.pg, err, errlen)))
        return -1;
    int lock = s_lock (&p, err, errlen);
    if (lock < 0)
        return -1;
    int rc = -1;
    if (rst_pgctl_is_running (cfg)) {
        if (s_ensure_database (cfg, &p, err, errlen) == 0)
            rc = 1;
        goto done;
    }
    char bindir[PATH_MAX];
    if (s_find_bindir (&p, bindir, sizeof bindir, err, errlen))
        goto done;
    char version_file[PATH_MAX + 32];
    snprintf (version_file, sizeof version_file, "%s/PG_VERSION", p.data);
    if (access (version_file, F_OK)) {
        if (!s_is_dir_empty (p.data)) {
            snprintf (err, errlen, "%s exists but is not a PostgreSQL cluster (no PG_VERSION): "
                      "move it away and run again", p.data);
            goto done;
        }
        rmdir (p.data);
        if (s_initdb (&p, &user, bindir, err, errlen))
            goto done;
    }
    if (s_chown_tree (&user, p.pg, err, errlen) || s_write_conf (cfg, &p, &user, err, errlen))
        goto done;

    rst_info (CLS, "starting PostgreSQL (%s) on socket %s", bindir, sock);
    char pg_ctl[PATH_MAX + 16], output[RST_PGCTL_OUTPUT_MAX], line[512];
    snprintf (pg_ctl, sizeof pg_ctl, "%s/pg_ctl", bindir);
    char *argv[] = {pg_ctl, "-D", p.data, "-l", p.log, "-w", "-t", RST_PGCTL_WAIT_S, "-s",
                    "start", NULL};
    if (s_run (&user, p.pg, argv, output, sizeof output) != 0) {
        //  The server's own reason is in its log.
        char logtail[RST_PGCTL_OUTPUT_MAX] = "";
        FILE *f = fopen (p.log, "re");
        if (f) {
            if (fseek (f, -(long) (sizeof logtail - 1), SEEK_END))
                rewind (f);
            size_t n = fread (logtail, 1, sizeof logtail - 1, f);
            logtail[n] = 0;
            fclose (f);
        }
        s_last_line (logtail[0] ? logtail : output, line, sizeof line);
        snprintf (err, errlen, "PostgreSQL did not start: %s (full log: %s)", line, p.log);
        goto done;
    }
    if (s_ensure_database (cfg, &p, err, errlen))
        goto done;
    rst_info (CLS, "PostgreSQL is running (data %s, log %s)", p.data, p.log);
    rc = 0;
done:
    close (lock);
    return rc;
}

int
rst_pgctl_stop (const rst_config_t *cfg, char *err, size_t errlen)
{
    assert (cfg);
    s_paths_t p;
    s_paths (cfg, &p);
    if (!rst_pgctl_is_running (cfg))
        return 1;
    s_user_t user;
    if (s_user (&user, err, errlen))
        return -1;
    int lock = s_lock (&p, err, errlen);
    if (lock < 0)
        return -1;
    int rc = -1;
    char bindir[PATH_MAX], pg_ctl[PATH_MAX + 16], output[RST_PGCTL_OUTPUT_MAX], line[512];
    if (!rst_pgctl_is_running (cfg)) {
        rc = 1;
        goto done;
    }
    if (s_find_bindir (&p, bindir, sizeof bindir, err, errlen))
        goto done;
    rst_info (CLS, "stopping PostgreSQL (%s)", p.data);
    snprintf (pg_ctl, sizeof pg_ctl, "%s/pg_ctl", bindir);
    char *argv[] = {pg_ctl, "-D", p.data, "-m", "fast", "-w", "-t", RST_PGCTL_WAIT_S, "-s",
                    "stop", NULL};
    if (s_run (&user, p.pg, argv, output, sizeof output) != 0) {
        s_last_line (output, line, sizeof line);
        snprintf (err, errlen, "pg_ctl stop failed: %s (log: %s)", line, p.log);
        goto done;
    }
    rst_info (CLS, "PostgreSQL stopped");
    rc = 0;
done:
    close (lock);
    return rc;
}
