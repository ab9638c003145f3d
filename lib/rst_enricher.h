/*  rst_enricher — turns raw funnel events into Meta events.

    The enricher node's actor (nodes/enricher/main.c is a thin main over
    it). It PULLs raw events (schemas/events.md) from the recorders,
    validates them against the pool/pixel cache, classifies automated
    traffic (rst_traffic), builds the Meta event object (rst_meta), and
    publishes every enriched event (schemas/pipeline.md) on its PUB socket;
    events for Meta are PUSHed to the limiter that owns their pixel, and
    automated ones are acknowledged to their journal at once (stage
    RST_JOURNAL_ACK_META). Details, states and caveats: rst_enricher.c.

    This header also declares rst_pgwatch, the small "cache refreshed on
    NOTIFY" helper the enricher and the limiter share.
*/
#ifndef RST_ENRICHER_H
#define RST_ENRICHER_H

#include "rst_config.h"
#include "rst_topology.h"

#include <libpq-fe.h>
#include <signal.h>
#include <stddef.h>

typedef struct rst_enricher_t rst_enricher_t;

//  Builds enricher INSTANCE from the topology's [enricher] section: binds
//  `in` (PULL) and `pub` (PUB), connects one PUSH per endpoint of
//  `limiters` and of `acks`, reads ip_rate_per_min and ip_slots, and
//  starts the cache thread. CFG and TOPO are borrowed and must outlive the
//  enricher. Returns a new enricher the caller owns, or NULL with a reason
//  in ERR.
rst_enricher_t *rst_enricher_new (const rst_config_t *cfg, const rst_topology_t *topo,
                                  int instance, char *err, size_t errlen);

//  Stops the cache thread, closes the sockets, frees the enricher and sets
//  *SELF_P to NULL. Safe on NULL.
void rst_enricher_destroy (rst_enricher_t **self_p);

//  Logs the effective settings (endpoints, thresholds).
void rst_enricher_print (const rst_enricher_t *self);

//  Runs the loop until *STOP becomes non-zero. Returns 0, or -1 on a
//  failure of ZeroMQ itself.
int rst_enricher_run (rst_enricher_t *self, volatile sig_atomic_t *stop);

//  --------------------------------------------------------------------------
//  rst_pgwatch — a snapshot of some tables, reloaded on NOTIFY.
//
//  A thread owns one PostgreSQL connection: it LISTENs on CHANNEL, calls
//  LOAD on start, on every notification and every RST_PGWATCH_REFRESH_S
//  seconds, and hands each new snapshot to the owner's thread through an
//  inproc PAIR socket (rst_pgwatch_socket, poll it for ZMQ_POLLIN; then
//  rst_pgwatch_take). While PostgreSQL is away it retries with backoff
//  (200 ms doubling to 5 s) and the owner keeps its last snapshot.

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
