/*  cmd_up — `rastro up [--topology FILE] [--no-db]`: the foreground supervisor.

    Like `docker compose up`: loads the config and the topology, starts the
    private PostgreSQL when RASTRO_DATABASE_URL is unset (unless --no-db),
    applies the migrations, then starts `instances` copies of every node
    section of the topology and stays in the foreground until SIGINT or
    SIGTERM. Each node instance runs as

        <dir of the rastro binary>/rastro-<node> --topology FILE --instance N

    or, when its section has a `command = ...` key, as that shell command
    (run by /bin/sh, {data} and {i} expanded) with the same `--topology
    FILE --instance N` appended; tests use this to supervise stand-ins. A
    section with neither a binary nor a command is skipped with a warning.

    Every line a node writes on stdout or stderr is copied to our stdout as
    `<node>.<i> | <line>` (one pipe per node instance, read with poll(2)).
    The supervisor's own lines go to stderr through rst_log (class "up").

    Per node instance:

        (start) ──fork/exec──► running ──dies──► backoff ──delay over──► running
                                  │                  │
                        SIGINT/SIGTERM to us ────────┴──► stopped

    A node that dies is restarted after a delay that starts at 0.5 s and
    doubles up to 30 s; it goes back to 0.5 s once a run lasted 60 s. Every
    death is logged with its reason ("exit status 1", "killed by signal
    SIGKILL"). On SIGINT/SIGTERM every node gets SIGTERM, stragglers get
    SIGKILL after 10 s (a second Ctrl-C kills them at once), the private
    PostgreSQL is stopped if this supervisor started it, and we exit 0.

    Each node runs in its own process group, so that a Ctrl-C in the
    terminal reaches the supervisor only (which then stops the nodes in
    order) and signals reach a node's helper processes too. A node is
    started with an empty signal mask and default dispositions, stdin from
    /dev/null, no inherited descriptors, and PR_SET_PDEATHSIG(SIGTERM), so
    it is told to stop even if the supervisor is killed with SIGKILL. The
    environment is passed through, with RASTRO_DATA_DIR made absolute and
    RASTRO_NODE / RASTRO_INSTANCE added (handy for `command =` scripts).

    One supervisor per data directory: <data>/run/supervisor.pid holds our
    pid under an flock held for our lifetime (it dies with us, even on
    SIGKILL). The state of every node instance is written to
    <data>/run/supervisor.state on every change (temp file + rename), as
    tab-separated lines that `rastro status` reads:

        supervisor <pid> <start unix time> <starting|running|stopping|stopped> <pg_owned 0|1>
                   <db: private|external|none (--no-db)> <topology file>
        node <name> <instance> <pid or 0> <running|backoff|stopped> <restarts> <start unix time> <last exit reason or ->

    pg_owned lets the next supervisor adopt a private PostgreSQL that a
    SIGKILLed predecessor had started, so that it is still stopped at the end.
*/
#define _GNU_SOURCE
#include "commands.h"
#include "rst_clock.h"
#include "rst_db.h"
#include "rst_log.h"
#include "rst_pgctl.h"
#include "rst_topology.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CLS "up"
#define S_BACKOFF_MIN_MS   500      //  first restart delay
#define S_BACKOFF_MAX_MS   30000    //  longest restart delay
#define S_BACKOFF_RESET_MS 60000    //  a run this long resets the delay
#define S_STOP_GRACE_MS    10000    //  SIGTERM → SIGKILL at shutdown
#define S_LINE_MAX         4096     //  longest node output line copied as one
#define S_COMMAND_MAX      2048     //  a `command =` value

typedef enum { S_RUNNING, S_BACKOFF, S_STOPPED } s_state_t;

static const char *s_state_names[] = {"running", "backoff", "stopped"};

typedef struct {
    char node[64];              //  section name
    int instance;               //  0 .. instances - 1
    char label[80];             //  "<node>.<i>"
    char exe[PATH_MAX + 80];    //  rastro-<node> binary, or "" when command is set
    char command[S_COMMAND_MAX];//  shell command from the topology, or ""
    pid_t pid;                  //  running process (also its process group), 0 if none
    int fd;                     //  read end of its output pipe, -1 if none
    s_state_t state;
    int restarts;               //  times restarted after dying
    char last_exit[96];         //  why it last died, "" if never
    int64_t started_ms;         //  monotonic time of the last start
    time_t started_wall;        //  wall-clock time of the last start (for status)
    int64_t backoff_ms;         //  delay before the next restart
    int64_t restart_at_ms;      //  backoff: when to start again
    char buf[S_LINE_MAX];       //  partial output line
    size_t buflen;              //  bytes in buf
} s_child_t;

typedef struct {
    const rst_config_t *cfg;
    char topology_file[PATH_MAX];   //  absolute path given to the nodes
    s_child_t *children;            //  one per node instance, in topology order
    size_t count;
    int label_width;                //  widest label, for aligned output
    int sigfd;                      //  signalfd of SIGINT/SIGTERM/SIGHUP/SIGCHLD
    int lockfd;                     //  supervisor.pid, flock'ed while we live
    pid_t self_pid;
    time_t started_wall;
    int pg_owned;                   //  we (or a dead predecessor) started the private cluster
    int stopping;                   //  shutdown in progress
    const char *phase;              //  for the state file: starting, running, stopping, stopped
    const char *db_mode;            //  private, external, or none (--no-db)
    int64_t stop_deadline_ms;       //  when stragglers get SIGKILL
    char state_file[PATH_MAX];
} s_up_t;

static void
s_usage (FILE *out)
{
    fprintf (out,
             "usage: rastro up [--topology FILE] [--no-db]\n\n"
             "Starts every node of the topology in the foreground and supervises them:\n"
             "a node that dies is restarted with backoff (0.5 s doubling to 30 s), and\n"
             "Ctrl-C (SIGINT) or SIGTERM stops everything cleanly. Node output is shown\n"
             "as `<node>.<instance> | <line>`.\n\n"
             "  --topology FILE  topology to run (default: RASTRO_TOPOLOGY, the config's\n"
             "                   `topology`, or topology/local.ini of the source tree)\n"
             "  --no-db          do not start the private PostgreSQL nor apply migrations\n\n"
             "Without RASTRO_DATABASE_URL, a private PostgreSQL cluster is created and run\n"
             "under $RASTRO_DATA_DIR/pg (as user postgres when run as root) and stopped\n"
             "again on exit. One `rastro up` per data directory; see `rastro status`.\n");
}

//  ---------------------------------------------------------------------------
//  State file

static void
s_write_state (s_up_t *self)
{
    char tmp[PATH_MAX + 16];
    snprintf (tmp, sizeof tmp, "%s.tmp", self->state_file);
    FILE *f = fopen (tmp, "we");
    if (!f) {
        rst_warn (CLS, "cannot write %s: %s", tmp, strerror (errno));
        return;
    }
    fprintf (f, "supervisor\t%d\t%lld\t%s\t%d\t%s\t%s\n", (int) self->self_pid,
             (long long) self->started_wall, self->phase, self->pg_owned, self->db_mode,
             self->topology_file);
    for (size_t i = 0; i < self->count; i++) {
        s_child_t *c = &self->children[i];
        fprintf (f, "node\t%s\t%d\t%d\t%s\t%d\t%lld\t%s\n", c->node, c->instance, (int) c->pid,
                 s_state_names[c->state], c->restarts, (long long) c->started_wall,
                 c->last_exit[0] ? c->last_exit : "-");
    }
    if (fclose (f) || rename (tmp, self->state_file))
        rst_warn (CLS, "cannot write %s: %s", self->state_file, strerror (errno));
}

//  pg_owned of the state a previous (now dead) supervisor left, or 0.
static int
s_previous_pg_owned (const char *state_file)
{
    FILE *f = fopen (state_file, "re");
    if (!f)
        return 0;
    char line[PATH_MAX + 128];
    int owned = 0;
    if (fgets (line, sizeof line, f)) {
        char state[16];
        int pid, pg;
        long long started;
        if (sscanf (line, "supervisor\t%d\t%lld\t%15s\t%d", &pid, &started, state, &pg) == 4)
            owned = pg;
    }
    fclose (f);
    return owned;
}

//  ---------------------------------------------------------------------------
//  The one-supervisor lock

static int
s_lock (s_up_t *self)
{
    char path[PATH_MAX + 32];
    snprintf (path, sizeof path, "%s/run/supervisor.pid", self->cfg->data_dir);
    self->lockfd = open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (self->lockfd < 0) {
        fprintf (stderr, "rastro up: cannot open %s: %s\n", path, strerror (errno));
        return -1;
    }
    if (flock (self->lockfd, LOCK_EX | LOCK_NB)) {
        char pid[32] = "";
        ssize_t n = pread (self->lockfd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = 0;
        pid[strcspn (pid, "\n")] = 0;
        fprintf (stderr, "rastro up: another `rastro up` (pid %s) is already running for %s: "
                         "stop it first (Ctrl-C in its terminal, or kill %s), or use another "
                         "RASTRO_DATA_DIR\n", pid[0] ? pid : "?", self->cfg->data_dir,
                 pid[0] ? pid : "<pid>");
        close (self->lockfd);
        self->lockfd = -1;
        return -1;
    }
    char pid[32];
    int n = snprintf (pid, sizeof pid, "%d\n", (int) self->self_pid);
    if (ftruncate (self->lockfd, 0) || pwrite (self->lockfd, pid, (size_t) n, 0) != n)
        rst_warn (CLS, "cannot write %s: %s", path, strerror (errno));
    return 0;
}

//  ---------------------------------------------------------------------------
//  Node output

static void
s_emit_line (s_up_t *self, s_child_t *c, const char *line, size_t len)
{
    char out[S_LINE_MAX + 128];
    int n = snprintf (out, sizeof out, "%-*s | ", self->label_width, c->label);
    if (n < 0)
        return;
    if (len > sizeof out - (size_t) n - 1)
        len = sizeof out - (size_t) n - 1;
    memcpy (out + n, line, len);
    n += (int) len;
    out[n++] = '\n';
    //  Our stdout may be gone (`rastro up | head`): SIGPIPE is ignored, the line dropped.
    ssize_t rc = write (STDOUT_FILENO, out, (size_t) n);
    (void) rc;
}

//  Copies the complete lines of C's buffer out; with FLUSH, the rest too.
static void
s_emit_lines (s_up_t *self, s_child_t *c, int flush)
{
    size_t start = 0;
    for (size_t i = 0; i < c->buflen; i++)
        if (c->buf[i] == '\n') {
            size_t len = i - start;
            if (len > 0 && c->buf[i - 1] == '\r')
                len--;
            s_emit_line (self, c, c->buf + start, len);
            start = i + 1;
        }
    if (start == 0 && c->buflen == sizeof c->buf) {
        s_emit_line (self, c, c->buf, c->buflen);   //  an over-long line, in pieces
        start = c->buflen;
    }
    else if (flush && start < c->buflen) {
        s_emit_line (self, c, c->buf + start, c->buflen - start);
        start = c->buflen;
    }
    memmove (c->buf, c->buf + start, c->buflen - start);
    c->buflen -= start;
}

//  Reads what C's pipe holds. Closes it at end of file (or on error, or
//  with CLOSE once the node is dead: a helper process of the node might
//  hold the pipe open forever).
static void
s_read_output (s_up_t *self, s_child_t *c, int close_after)
{
    while (c->fd >= 0) {
        ssize_t n = read (c->fd, c->buf + c->buflen, sizeof c->buf - c->buflen);
        if (n > 0) {
            c->buflen += (size_t) n;
            s_emit_lines (self, c, 0);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN && !close_after)
            return;
        s_emit_lines (self, c, 1);
        close (c->fd);
        c->fd = -1;
    }
}

//  ---------------------------------------------------------------------------
//  Starting and reaping nodes

static void
s_start_child (s_up_t *self, s_child_t *c)
{
    int fds[2];
    if (pipe2 (fds, O_CLOEXEC)) {
        rst_error (CLS, "%s: cannot create a pipe: %s", c->label, strerror (errno));
        goto backoff;
    }
    char instance[16];
    snprintf (instance, sizeof instance, "%d", c->instance);
    pid_t pid = fork ();
    if (pid < 0) {
        rst_error (CLS, "%s: cannot fork: %s", c->label, strerror (errno));
        close (fds[0]);
        close (fds[1]);
        goto backoff;
    }
    if (pid == 0) {
        //  The child: own process group, told to stop when we die, clean
        //  signal state, only stdin/stdout/stderr open.
        setpgid (0, 0);
        prctl (PR_SET_PDEATHSIG, SIGTERM);
        if (getppid () != self->self_pid)
            _exit (1);      //  the supervisor died before prctl
        int devnull = open ("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2 (devnull, STDIN_FILENO);
        dup2 (fds[1], STDOUT_FILENO);
        dup2 (fds[1], STDERR_FILENO);
        close_range (3, ~0U, 0);
        static const int reset[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGCHLD, 0};
        for (int i = 0; reset[i]; i++)
            signal (reset[i], SIG_DFL);
        sigset_t none;
        sigemptyset (&none);
        sigprocmask (SIG_SETMASK, &none, NULL);
        setenv ("RASTRO_NODE", c->node, 1);
        setenv ("RASTRO_INSTANCE", instance, 1);
        if (c->command[0]) {
            char script[S_COMMAND_MAX + 32];
            snprintf (script, sizeof script, "exec %s \"$@\"", c->command);
            execl ("/bin/sh", "sh", "-c", script, c->label, "--topology", self->topology_file,
                   "--instance", instance, (char *) NULL);
            dprintf (STDERR_FILENO, "cannot run /bin/sh: %s\n", strerror (errno));
        }
        else {
            execl (c->exe, c->exe, "--topology", self->topology_file, "--instance", instance,
                   (char *) NULL);
            dprintf (STDERR_FILENO, "cannot run %s: %s\n", c->exe, strerror (errno));
        }
        _exit (127);
    }
    setpgid (pid, pid);     //  also here: no race with a signal to the group
    close (fds[1]);
    fcntl (fds[0], F_SETFL, fcntl (fds[0], F_GETFL) | O_NONBLOCK);
    if (c->fd >= 0)
        close (c->fd);
    c->fd = fds[0];
    c->buflen = 0;
    c->pid = pid;
    c->state = S_RUNNING;
    c->started_ms = rst_clock_mono_ms ();
    c->started_wall = time (NULL);
    rst_info (CLS, "started %s (pid %d)", c->label, (int) pid);
    return;
backoff:
    c->state = S_BACKOFF;
    c->restart_at_ms = rst_clock_mono_ms () + c->backoff_ms;
}

//  Describes a wait status: "exit status 1", "killed by signal SIGKILL".
static void
s_exit_reason (int status, char *out, size_t outlen)
{
    if (WIFEXITED (status))
        snprintf (out, outlen, "exit status %d", WEXITSTATUS (status));
    else if (WIFSIGNALED (status)) {
        const char *abbrev = sigabbrev_np (WTERMSIG (status));
        if (abbrev)
            snprintf (out, outlen, "killed by signal SIG%s%s", abbrev,
                      WCOREDUMP (status) ? " (core dumped)" : "");
        else
            snprintf (out, outlen, "killed by signal %d", WTERMSIG (status));
    }
    else
        snprintf (out, outlen, "wait status 0x%x", (unsigned) status);
}

static void
s_reap (s_up_t *self)
{
    int status;
    pid_t pid;
    while ((pid = waitpid (-1, &status, WNOHANG)) > 0) {
        s_child_t *c = NULL;
        for (size_t i = 0; i < self->count; i++)
            if (self->children[i].pid == pid)
                c = &self->children[i];
        if (!c)
            continue;       //  not a node (e.g. a helper reaped late)
        //  Leftover helpers of the node go with it.
        kill (-pid, SIGKILL);
        s_read_output (self, c, 1);
        s_exit_reason (status, c->last_exit, sizeof c->last_exit);
        int64_t now = rst_clock_mono_ms ();
        int64_t ran = now - c->started_ms;
        c->pid = 0;
        if (self->stopping) {
            c->state = S_STOPPED;
            rst_info (CLS, "%s (pid %d) stopped: %s", c->label, (int) pid, c->last_exit);
        }
        else {
            if (ran >= S_BACKOFF_RESET_MS)
                c->backoff_ms = S_BACKOFF_MIN_MS;
            c->state = S_BACKOFF;
            c->restart_at_ms = now + c->backoff_ms;
            rst_warn (CLS, "%s (pid %d) died after %.1f s: %s; restarting in %.1f s", c->label,
                      (int) pid, (double) ran / 1000.0, c->last_exit,
                      (double) c->backoff_ms / 1000.0);
            c->backoff_ms *= 2;
            if (c->backoff_ms > S_BACKOFF_MAX_MS)
                c->backoff_ms = S_BACKOFF_MAX_MS;
        }
        s_write_state (self);
    }
}

//  Sends SIG to C's process group (to C alone if it left its group).
static void
s_signal (s_child_t *c, int sig)
{
    if (c->pid > 0 && kill (-c->pid, sig) && errno == ESRCH)
        kill (c->pid, sig);
}

static size_t
s_alive (const s_up_t *self)
{
    size_t n = 0;
    for (size_t i = 0; i < self->count; i++)
        if (self->children[i].pid > 0)
            n++;
    return n;
}

static void
s_begin_stop (s_up_t *self, int sig)
{
    if (self->stopping) {
        rst_warn (CLS, "SIG%s again: killing every node now", sigabbrev_np (sig));
        for (size_t i = 0; i < self->count; i++)
            s_signal (&self->children[i], SIGKILL);
        return;
    }
    self->stopping = 1;
    self->phase = "stopping";
    self->stop_deadline_ms = rst_clock_mono_ms () + S_STOP_GRACE_MS;
    rst_info (CLS, "SIG%s received: stopping %zu node(s) (again to kill them at once)",
              sigabbrev_np (sig), s_alive (self));
    for (size_t i = 0; i < self->count; i++) {
        s_child_t *c = &self->children[i];
        if (c->pid > 0)
            s_signal (c, SIGTERM);
        else
            c->state = S_STOPPED;
    }
    s_write_state (self);
}

//  Reads pending signals. Returns the number read.
static int
s_handle_signals (s_up_t *self)
{
    int handled = 0;
    struct signalfd_siginfo si;
    while (read (self->sigfd, &si, sizeof si) == (ssize_t) sizeof si) {
        handled++;
        if (si.ssi_signo == SIGCHLD)
            s_reap (self);
        else
            s_begin_stop (self, (int) si.ssi_signo);
    }
    return handled;
}

//  ---------------------------------------------------------------------------
//  Setup

//  Fills self->children from the topology. Returns 0, or -1 if nothing can run.
static int
s_plan (s_up_t *self, const rst_topology_t *topology)
{
    char exe_dir[PATH_MAX];
    if (rst_config_exe_dir (exe_dir, sizeof exe_dir)) {
        fprintf (stderr, "rastro up: cannot find the directory of the rastro binary\n");
        return -1;
    }
    size_t total = 0;
    for (size_t i = 0; i < rst_topology_node_count (topology); i++)
        total += (size_t) rst_topology_instances (topology, rst_topology_node_name (topology, i));
    self->children = calloc (total ? total : 1, sizeof *self->children);
    if (!self->children) {
        fprintf (stderr, "rastro up: out of memory\n");
        return -1;
    }
    for (size_t i = 0; i < rst_topology_node_count (topology); i++) {
        const char *node = rst_topology_node_name (topology, i);
        int instances = rst_topology_instances (topology, node);
        char exe[PATH_MAX + 80];
        snprintf (exe, sizeof exe, "%s/rastro-%s", exe_dir, node);
        char probe[S_COMMAND_MAX];
        int has_command = rst_topology_get (topology, node, 0, "command", probe, sizeof probe) == 0;
        if (!has_command && access (exe, X_OK)) {
            rst_warn (CLS, "skipping [%s]: no binary %s (build it, or give the section a "
                           "`command =`)", node, exe);
            continue;
        }
        for (int k = 0; k < instances; k++) {
            s_child_t *c = &self->children[self->count++];
            snprintf (c->node, sizeof c->node, "%s", node);
            c->instance = k;
            snprintf (c->label, sizeof c->label, "%s.%d", node, k);
            if (has_command) {
                if (rst_topology_get (topology, node, k, "command", c->command,
                                      sizeof c->command)) {
                    fprintf (stderr, "rastro up: [%s] command is too long\n", node);
                    return -1;
                }
            }
            else
                snprintf (c->exe, sizeof c->exe, "%s", exe);
            c->pid = 0;
            c->fd = -1;
            c->state = S_BACKOFF;
            c->backoff_ms = S_BACKOFF_MIN_MS;
            int w = (int) strlen (c->label);
            if (w > self->label_width)
                self->label_width = w;
        }
    }
    if (self->count == 0) {
        fprintf (stderr, "rastro up: no node of %s can run (no rastro-<node> binaries next to "
                         "%s/rastro): build them first (README.md)\n", self->topology_file,
                 exe_dir);
        return -1;
    }
    return 0;
}

//  Starts the private PostgreSQL when needed and migrates. Returns 0 or -1.
static int
s_prepare_db (s_up_t *self)
{
    const rst_config_t *cfg = self->cfg;
    char err[1024];
    if (cfg->database_is_private) {
        int rc = rst_pgctl_start (cfg, err, sizeof err);
        if (rc < 0) {
            fprintf (stderr, "rastro up: %s\n", err);
            return -1;
        }
        if (rc == 0)
            self->pg_owned = 1;
        s_write_state (self);
    }
    PGconn *conn = rst_db_connect (cfg, err, sizeof err);
    if (!conn) {
        fprintf (stderr, "rastro up: %s\n", err);
        return -1;
    }
    int applied = rst_db_migrate (conn, err, sizeof err);
    if (applied < 0) {
        fprintf (stderr, "rastro up: %s\n", err);
        PQfinish (conn);
        return -1;
    }
    if (applied > 0)
        rst_info (CLS, "applied %d migration%s", applied, applied == 1 ? "" : "s");
    else
        rst_info (CLS, "database schema is up to date");
    PGresult *res = PQexec (conn, "SELECT count(*) FROM users");
    if (PQresultStatus (res) == PGRES_TUPLES_OK && PQntuples (res) == 1
        && !strcmp (PQgetvalue (res, 0, 0), "0"))
        rst_info (CLS, "no users yet: create one with `rastro user add you@example.com`");
    PQclear (res);
    PQfinish (conn);
    return 0;
}

static void
s_stop_db (s_up_t *self)
{
    if (!self->pg_owned)
        return;
    char err[1024];
    if (rst_pgctl_stop (self->cfg, err, sizeof err) < 0)
        rst_error (CLS, "%s", err);
    self->pg_owned = 0;
}

//  ---------------------------------------------------------------------------
//  The loop

static void
s_run (s_up_t *self)
{
    struct pollfd *pfds = calloc (self->count + 1, sizeof *pfds);
    s_child_t **owners = calloc (self->count + 1, sizeof *owners);
    assert (pfds && owners);
    while (!self->stopping || s_alive (self) > 0) {
        int64_t now = rst_clock_mono_ms ();
        int64_t wake = now + 1000;
        if (!self->stopping) {
            for (size_t i = 0; i < self->count; i++) {
                s_child_t *c = &self->children[i];
                if (c->state != S_BACKOFF)
                    continue;
                if (c->restart_at_ms <= now) {
                    if (c->last_exit[0])
                        c->restarts++;
                    s_start_child (self, c);
                    s_write_state (self);
                }
                if (c->state == S_BACKOFF && c->restart_at_ms < wake)
                    wake = c->restart_at_ms;
            }
        }
        else if (self->stop_deadline_ms) {
            if (now >= self->stop_deadline_ms) {
                for (size_t i = 0; i < self->count; i++)
                    if (self->children[i].pid > 0) {
                        rst_warn (CLS, "%s (pid %d) did not stop within %d s: SIGKILL",
                                  self->children[i].label, (int) self->children[i].pid,
                                  S_STOP_GRACE_MS / 1000);
                        s_signal (&self->children[i], SIGKILL);
                    }
                self->stop_deadline_ms = 0;
            }
            else if (self->stop_deadline_ms < wake)
                wake = self->stop_deadline_ms;
        }
        nfds_t n = 0;
        pfds[n] = (struct pollfd) {.fd = self->sigfd, .events = POLLIN};
        owners[n++] = NULL;
        for (size_t i = 0; i < self->count; i++)
            if (self->children[i].fd >= 0) {
                pfds[n] = (struct pollfd) {.fd = self->children[i].fd, .events = POLLIN};
                owners[n++] = &self->children[i];
            }
        int timeout = (int) (wake > now ? wake - now : 0);
        int rc = poll (pfds, n, timeout);
        if (rc < 0 && errno != EINTR) {
            rst_error (CLS, "poll: %s", strerror (errno));
            break;
        }
        if (rc <= 0)
            continue;
        //  Output first, so that a node's last words come before its death notice.
        for (nfds_t i = 1; i < n; i++)
            if (pfds[i].revents && owners[i]->fd == pfds[i].fd)
                s_read_output (self, owners[i], 0);
        if (pfds[0].revents)
            s_handle_signals (self);
    }
    free (pfds);
    free (owners);
}

int
cmd_up (int argc, char **argv, const rst_config_t *cfg)
{
    const char *topology_arg = NULL;
    int no_db = 0;
    for (int i = 1; i < argc; i++) {
        if (cmd_is_help (argv[i])) {
            s_usage (stdout);
            return 0;
        }
        else if (!strcmp (argv[i], "--no-db"))
            no_db = 1;
        else if (!strcmp (argv[i], "--topology") && i + 1 < argc)
            topology_arg = argv[++i];
        else if (!strncmp (argv[i], "--topology=", 11))
            topology_arg = argv[i] + 11;
        else {
            fprintf (stderr, "rastro up: unexpected argument '%s' (rastro up --help)\n", argv[i]);
            return 2;
        }
    }
    s_up_t up = {.cfg = cfg, .sigfd = -1, .lockfd = -1, .self_pid = getpid (),
                 .started_wall = time (NULL), .phase = "starting"};
    up.db_mode = no_db ? "none" : cfg->database_is_private ? "private" : "external";
    s_up_t *self = &up;
    const char *file = topology_arg ? topology_arg : cfg->topology_file;
    if (!realpath (file, self->topology_file))
        snprintf (self->topology_file, sizeof self->topology_file, "%s", file);
    char err[1024];
    rst_topology_t *topology = rst_topology_load (self->topology_file, cfg->data_dir, err,
                                                  sizeof err);
    if (!topology) {
        fprintf (stderr, "rastro up: %s\n", err);
        return 1;
    }
    int rc = 1;
    char run_dir[PATH_MAX + 8];
    snprintf (run_dir, sizeof run_dir, "%s/run", cfg->data_dir);
    snprintf (self->state_file, sizeof self->state_file, "%.*s/supervisor.state",
              PATH_MAX - 32, run_dir);
    if (mkdir (run_dir, 0755) && errno != EEXIST) {
        fprintf (stderr, "rastro up: cannot create %s: %s\n", run_dir, strerror (errno));
        goto fail_topology;
    }
    if (s_lock (self))
        goto fail_topology;
    self->pg_owned = s_previous_pg_owned (self->state_file);
    if (s_plan (self, topology))
        goto fail_lock;

    //  Signals are read from a signalfd in the loop; blocked from now on,
    //  so a Ctrl-C during the database start is seen afterwards.
    sigset_t mask, old;
    sigemptyset (&mask);
    sigaddset (&mask, SIGINT);
    sigaddset (&mask, SIGTERM);
    sigaddset (&mask, SIGHUP);
    sigaddset (&mask, SIGCHLD);
    sigprocmask (SIG_BLOCK, &mask, &old);
    signal (SIGPIPE, SIG_IGN);
    self->sigfd = signalfd (-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (self->sigfd < 0) {
        fprintf (stderr, "rastro up: signalfd: %s\n", strerror (errno));
        goto fail_signals;
    }
    rst_config_print (cfg, CLS);
    rst_info (CLS, "topology %s: %zu node instance(s)", self->topology_file, self->count);
    s_write_state (self);

    if (!no_db && s_prepare_db (self))
        goto fail_db;
    setenv ("RASTRO_DATA_DIR", cfg->data_dir, 1);

    //  A Ctrl-C while the database was starting: stop before starting nodes.
    s_handle_signals (self);
    if (!self->stopping) {
        self->phase = "running";
        for (size_t i = 0; i < self->count; i++)
            s_start_child (self, &self->children[i]);
        s_write_state (self);
    }
    s_run (self);
    self->stopping = 1;
    self->phase = "stopped";
    self->stop_deadline_ms = 0;
    for (size_t i = 0; i < self->count; i++)
        self->children[i].state = S_STOPPED;
    s_stop_db (self);
    s_write_state (self);
    rst_info (CLS, "stopped");
    rc = 0;
    goto done;

fail_db:
    s_stop_db (self);
    self->stopping = 1;
    self->phase = "stopped";
    self->stop_deadline_ms = 0;
    for (size_t i = 0; i < self->count; i++)
        self->children[i].state = S_STOPPED;
    s_write_state (self);
done:
    close (self->sigfd);
fail_signals:
    sigprocmask (SIG_SETMASK, &old, NULL);
fail_lock:
    free (self->children);
    close (self->lockfd);
fail_topology:
    rst_topology_destroy (&topology);
    return rc;
}
