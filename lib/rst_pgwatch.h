/*  rst_pgwatch — a snapshot of some tables, reloaded on NOTIFY.

    A thread owns one PostgreSQL connection: it LISTENs on CHANNEL, calls
    LOAD on start, on every notification and every RST_PGWATCH_REFRESH_S
    seconds, and hands each new snapshot to the owner's thread through an
    inproc PAIR socket (rst_pgwatch_socket, poll it for ZMQ_POLLIN; then
    rst_pgwatch_take). While PostgreSQL is away it retries with backoff
    (200 ms doubling to 5 s) and the owner keeps its last snapshot.

    rst_pgwatch_new_sink is the same thread without the socket: it hands
    each snapshot to a function called on the watch thread (the front uses
    it to send every HTTP event loop its own copy).

    Used by the enricher (pool cache), the limiter (pixel rates) and the
    front (pools and bots, rst_snapshot).
*/
#ifndef RST_PGWATCH_H
#define RST_PGWATCH_H

#include "rst_config.h"

#include <libpq-fe.h>
#include <stddef.h>

#define RST_PGWATCH_REFRESH_S 60

//  Loads a snapshot. Returns a new one (freed with the FREE function), or
//  NULL with the reason in ERR. Runs on the watch thread.
typedef void *(rst_pgwatch_load_fn) (PGconn *conn, char *err, size_t errlen);
typedef void (rst_pgwatch_free_fn) (void *snapshot);

typedef struct rst_pgwatch_t rst_pgwatch_t;

//  Starts the watch thread on ZMQ_CTX (borrowed). CLS names the log class.
//  Returns a new watch the caller owns, or NULL with a reason in ERR.
rst_pgwatch_t *rst_pgwatch_new (void *zmq_ctx, const char *database_url, const char *channel,
                                const char *cls, rst_pgwatch_load_fn *load,
                                rst_pgwatch_free_fn *free_fn, char *err, size_t errlen);

//  Takes SNAPSHOT on the watch thread (ownership passes) and returns 0, or
//  returns -1 when it cannot take it now (the watch frees it and loads
//  again a second later). ARG is the one given to rst_pgwatch_new_sink.
typedef int (rst_pgwatch_sink_fn) (void *snapshot, void *arg);

//  Like rst_pgwatch_new, but each snapshot goes to SINK (with SINK_ARG,
//  borrowed) on the watch thread; rst_pgwatch_socket then returns NULL and
//  rst_pgwatch_take always returns NULL.
rst_pgwatch_t *rst_pgwatch_new_sink (const char *database_url, const char *channel,
                                     const char *cls, rst_pgwatch_load_fn *load,
                                     rst_pgwatch_free_fn *free_fn, rst_pgwatch_sink_fn *sink,
                                     void *sink_arg, char *err, size_t errlen);

//  Stops and joins the thread, frees snapshots not taken, sets *SELF_P to
//  NULL. Safe on NULL.
void rst_pgwatch_destroy (rst_pgwatch_t **self_p);

//  The socket that becomes readable when a snapshot is ready (borrowed).
void *rst_pgwatch_socket (rst_pgwatch_t *self);

//  Takes the next ready snapshot without waiting. Returns it (the caller
//  owns it and frees it with the FREE function) or NULL when none is ready.
void *rst_pgwatch_take (rst_pgwatch_t *self);

//  Number of snapshots loaded so far (read by the owner's thread).
unsigned long rst_pgwatch_loads (const rst_pgwatch_t *self);

#endif
