/*  rst_recorder — stores journaled clicks in PostgreSQL and acknowledges them.

    The recorder node's actor (nodes/recorder/main.c is a thin main over it).
    It PULLs event messages from the fronts (one or more msgpack events per
    message, schemas/events.md), inserts clicks into the `clicks` table in
    batches, and only after PostgreSQL committed a batch sends acks (stage
    RST_ACK_STAGE_STORED) back to the journal each event came from. What is
    not acknowledged is replayed by the front's journal; the insert is
    idempotent (ON CONFLICT DO NOTHING), so replays are harmless. See
    rst_recorder.c for the loop, the failure handling and the utm mapping.
*/
#ifndef RST_RECORDER_H
#define RST_RECORDER_H

#include "rst_config.h"
#include "rst_topology.h"

#include <signal.h>

typedef struct rst_recorder_t rst_recorder_t;

#define RST_RECORDER_BATCH_MAX_DEFAULT 500     //  events per INSERT
#define RST_RECORDER_BATCH_MAX_LIMIT   3000    //  21 params a row; PostgreSQL allows 65535
#define RST_RECORDER_BATCH_MS_DEFAULT  20      //  longest wait before a partial batch is written

//  Builds recorder INSTANCE from the topology's [recorder] section: binds
//  its `in` PULL, connects one PUSH per endpoint of `acks` (the fronts),
//  reads batch_max / batch_ms. Tries PostgreSQL once (a failure is logged;
//  the connection is retried when the first batch is written). CFG and TOPO
//  are borrowed and must outlive the recorder. Returns a new recorder the
//  caller owns, or NULL with a reason in ERR.
rst_recorder_t *rst_recorder_new (const rst_config_t *cfg, const rst_topology_t *topo,
                                  int instance, char *err, size_t errlen);

//  Closes the sockets and the connection, frees the recorder and sets
//  *SELF_P to NULL. Events still in the batch are dropped unacknowledged
//  (the journal replays them). Safe on NULL.
void rst_recorder_destroy (rst_recorder_t **self_p);

//  Logs the recorder's effective settings (endpoints, batch limits).
void rst_recorder_print (const rst_recorder_t *self);

//  Runs the loop until *STOP becomes non-zero (set by a signal handler),
//  then writes the current batch (if PostgreSQL is reachable) and returns 0.
//  Returns -1 only on a failure of ZeroMQ itself.
int rst_recorder_run (rst_recorder_t *self, volatile sig_atomic_t *stop);

#endif
