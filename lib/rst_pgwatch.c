/*  rst_pgwatch — a snapshot of some tables, reloaded on NOTIFY.

    See rst_pgwatch.h. The watch thread owns its PostgreSQL connection and
    the PAIR socket `peer`; the owner's thread owns `owner`. A snapshot
    crosses between them as a pointer in one message: once sent, the watch
    thread forgets it; a send that fails (the owner has not taken the last
    one yet) frees it and tries again a second later.

        CONNECTING --LISTEN ok--> LOADING --snapshot sent--> WAITING
          ^  |                      ^                          |
          |  +-- failed: backoff    +--NOTIFY, or REFRESH_S----+
          |      200 ms .. 5 s                                 |
          +---------- connection lost, load failed ------------+

    The thread stops within about 200 ms of rst_pgwatch_destroy (it sleeps
    and polls in short steps). Shared between the thread and the owner:
    only the `stop` flag (atomic).
*/
#include "rst_pgwatch.h"
#include "rst_log.h"

#include <assert.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

struct rst_pgwatch_t {
    void *owner;                    //  PAIR, owner's side (bound); NULL with a sink
    void *peer;                     //  PAIR, thread's side (connected; used by the thread only)
    rst_pgwatch_sink_fn *sink;      //  instead of the PAIR: called on the thread
    void *sink_arg;
    pthread_t thread;
    int started;
    atomic_int stop;
    char database_url[RST_URL_MAX];
    char channel[64];
    char cls[32];
    rst_pgwatch_load_fn *load;
    rst_pgwatch_free_fn *free_fn;
    unsigned long loads;            //  owner's count of snapshots taken
};

//  Sleeps MS in short steps. Returns 1 when asked to stop.
static int
s_watch_sleep (rst_pgwatch_t *self, int ms)
{
    while (ms > 0 && !atomic_load (&self->stop)) {
        struct timespec ts = {0, (ms > 100 ? 100 : ms) * 1000000L};
        nanosleep (&ts, NULL);
        ms -= 100;
    }
    return atomic_load (&self->stop);
}

static void *
s_watch_main (void *arg)
{
    rst_pgwatch_t *self = arg;
    int backoff_ms = 200, reported = 0;
    char listen[96];
    snprintf (listen, sizeof listen, "LISTEN %s", self->channel);
    while (!atomic_load (&self->stop)) {
        PGconn *conn = PQconnectdb (self->database_url);
        PGresult *res = NULL;
        if (PQstatus (conn) != CONNECTION_OK
            || PQresultStatus (res = PQexec (conn, listen)) != PGRES_COMMAND_OK) {
            if (!reported++)
                rst_warn (self->cls, "cache: libpq: %s; retrying (keeping the last cache)",
                          strtok (PQerrorMessage (conn), "\n"));
            PQclear (res);
            PQfinish (conn);
            if (s_watch_sleep (self, backoff_ms))
                break;
            backoff_ms = backoff_ms < 5000 ? backoff_ms * 2 : 5000;
            continue;
        }
        PQclear (res);
        if (reported)
            rst_info (self->cls, "cache: connected to PostgreSQL again");
        reported = 0;
        backoff_ms = 200;
        int dirty = 1;
        time_t next_refresh = 0;
        while (!atomic_load (&self->stop) && PQstatus (conn) == CONNECTION_OK) {
            if (dirty || time (NULL) >= next_refresh) {
                char err[512];
                void *snap = self->load (conn, err, sizeof err);
                if (!snap) {
                    rst_warn (self->cls, "cache: %s", err);
                    break;
                }
                int taken = self->sink ? self->sink (snap, self->sink_arg) == 0
                                       : zmq_send (self->peer, &snap, sizeof snap, ZMQ_DONTWAIT)
                                             == sizeof snap;
                if (!taken) {
                    self->free_fn (snap);   //  the owner is busy: try again soon
                    next_refresh = time (NULL) + 1;
                }
                else
                    next_refresh = time (NULL) + RST_PGWATCH_REFRESH_S;
                dirty = 0;
            }
            struct pollfd pfd = {PQsocket (conn), POLLIN, 0};
            if (poll (&pfd, 1, 200) > 0) {
                if (!PQconsumeInput (conn))
                    break;
                PGnotify *n;
                while ((n = PQnotifies (conn))) {
                    dirty = 1;
                    PQfreemem (n);
                }
            }
        }
        if (!atomic_load (&self->stop))
            rst_warn (self->cls, "cache: lost PostgreSQL connection; reconnecting");
        PQfinish (conn);
    }
    if (self->peer)
        zmq_close (self->peer);
    self->peer = NULL;
    return NULL;
}

//  The part of both constructors before the thread starts.
static rst_pgwatch_t *
s_new (const char *database_url, const char *channel, const char *cls, rst_pgwatch_load_fn *load,
       rst_pgwatch_free_fn *free_fn, char *err, size_t errlen)
{
    assert (database_url && channel && cls && load && free_fn);
    rst_pgwatch_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, errlen, "%s: out of memory", cls);
        return NULL;
    }
    snprintf (self->database_url, sizeof self->database_url, "%s", database_url);
    snprintf (self->channel, sizeof self->channel, "%s", channel);
    snprintf (self->cls, sizeof self->cls, "%s", cls);
    self->load = load;
    self->free_fn = free_fn;
    atomic_init (&self->stop, 0);
    return self;
}

//  Starts the thread. Returns 0, or -1 with a reason in ERR.
static int
s_start (rst_pgwatch_t *self, char *err, size_t errlen)
{
    if (pthread_create (&self->thread, NULL, s_watch_main, self)) {
        snprintf (err, errlen, "%s: cannot start the cache thread", self->cls);
        return -1;
    }
    self->started = 1;
    return 0;
}

rst_pgwatch_t *
rst_pgwatch_new (void *zmq_ctx, const char *database_url, const char *channel, const char *cls,
                 rst_pgwatch_load_fn *load, rst_pgwatch_free_fn *free_fn, char *err,
                 size_t errlen)
{
    assert (zmq_ctx);
    rst_pgwatch_t *self = s_new (database_url, channel, cls, load, free_fn, err, errlen);
    if (!self)
        return NULL;
    char ep[64];
    snprintf (ep, sizeof ep, "inproc://rst-pgwatch-%p", (void *) self);
    int linger = 0;
    self->owner = zmq_socket (zmq_ctx, ZMQ_PAIR);
    self->peer = zmq_socket (zmq_ctx, ZMQ_PAIR);
    if (!self->owner || !self->peer || zmq_bind (self->owner, ep) || zmq_connect (self->peer, ep)) {
        snprintf (err, errlen, "%s: libzmq: inproc pair: %s", cls, zmq_strerror (zmq_errno ()));
        goto fail;
    }
    zmq_setsockopt (self->owner, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt (self->peer, ZMQ_LINGER, &linger, sizeof linger);
    if (s_start (self, err, errlen))
        goto fail;
    return self;
fail:
    rst_pgwatch_destroy (&self);
    return NULL;
}

rst_pgwatch_t *
rst_pgwatch_new_sink (const char *database_url, const char *channel, const char *cls,
                      rst_pgwatch_load_fn *load, rst_pgwatch_free_fn *free_fn,
                      rst_pgwatch_sink_fn *sink, void *sink_arg, char *err, size_t errlen)
{
    assert (sink);
    rst_pgwatch_t *self = s_new (database_url, channel, cls, load, free_fn, err, errlen);
    if (!self)
        return NULL;
    self->sink = sink;
    self->sink_arg = sink_arg;
    if (s_start (self, err, errlen)) {
        rst_pgwatch_destroy (&self);
        return NULL;
    }
    return self;
}

void
rst_pgwatch_destroy (rst_pgwatch_t **self_p)
{
    assert (self_p);
    rst_pgwatch_t *self = *self_p;
    if (!self)
        return;
    atomic_store (&self->stop, 1);
    if (self->started)
        pthread_join (self->thread, NULL);      //  the thread closed its socket
    else if (self->peer)
        zmq_close (self->peer);
    if (self->owner) {
        void *snap;
        while ((snap = rst_pgwatch_take (self)))
            self->free_fn (snap);
        zmq_close (self->owner);
    }
    free (self);
    *self_p = NULL;
}

void *
rst_pgwatch_socket (rst_pgwatch_t *self)
{
    assert (self);
    return self->owner;
}

void *
rst_pgwatch_take (rst_pgwatch_t *self)
{
    assert (self);
    void *snap = NULL;
    if (!self->owner)
        return NULL;
    if (zmq_recv (self->owner, &snap, sizeof snap, ZMQ_DONTWAIT) != sizeof snap)
        return NULL;
    self->loads++;
    return snap;
}

unsigned long
rst_pgwatch_loads (const rst_pgwatch_t *self)
{
    assert (self);
    return self->loads;
}
