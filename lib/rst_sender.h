/*  rst_sender — posts batches to Meta's Conversions API from an LMDB spool.

    The sender node's actor (nodes/sender/main.c is a thin main over it). It
    PULLs "batch" messages from the batchers (lib/rst_pipeline.h), keeps
    every batch in its rst_spool until Meta accepted it or its events are in
    the dead_letters table, acks events to their journals once spooled,
    posts with libcurl multi, retries transient failures with backoff and
    jitter (honouring Meta's wait hints), splits batches Meta refuses for one
    bad event, dead-letters permanent failures, takes `rastro dlq replay`
    requests back, and PUBlishes outcomes (accepted, dead, throttled). See
    rst_sender.c for the loop, the states and the guarantees.
*/
#ifndef RST_SENDER_H
#define RST_SENDER_H

#include "rst_config.h"
#include "rst_topology.h"

#include <signal.h>
#include <stddef.h>

typedef struct rst_sender_t rst_sender_t;

#define RST_SENDER_TIMEOUT_MS_DEFAULT     1500    //  one POST (reference §2: ≈ 1.5 s)
#define RST_SENDER_MAX_INFLIGHT_DEFAULT   16      //  concurrent POSTs
#define RST_SENDER_PIXEL_INFLIGHT_DEFAULT 4       //  concurrent POSTs of one pixel
#define RST_SENDER_BACKOFF_MIN_MS_DEFAULT 500     //  first retry delay
#define RST_SENDER_BACKOFF_MAX_MS_DEFAULT 300000  //  retry delays grow to this (5 min)
#define RST_SENDER_SPOOL_MAX_MB_DEFAULT   65536   //  largest spool map (MiB)

//  Builds sender INSTANCE from the topology's [sender] section: opens the
//  spool, binds `in` (PULL) and `outcomes` (PUB), connects one PUSH per
//  endpoint of `acks`, reads timeout_ms, max_inflight, pixel_inflight,
//  backoff_min_ms, backoff_max_ms, spool_max_mb. PostgreSQL is tried once
//  (retried later when needed). CFG and TOPO are borrowed and must outlive
//  the sender. Returns a new sender the caller owns, or NULL with a reason
//  in ERR. Calls curl_global_init: create one sender per process, before
//  any other thread starts.
rst_sender_t *rst_sender_new (const rst_config_t *cfg, const rst_topology_t *topo, int instance,
                              char *err, size_t errlen);

//  Abandons POSTs still in flight (their batches stay in the spool), closes
//  everything, frees the sender and sets *SELF_P to NULL. Safe on NULL.
void rst_sender_destroy (rst_sender_t **self_p);

//  Logs the sender's effective settings.
void rst_sender_print (const rst_sender_t *self);

//  Runs the loop until *STOP becomes non-zero (set by a signal handler);
//  then stops taking batches, lets the POSTs in flight finish for at most
//  the client timeout, and returns 0. Returns -1 only on a failure of
//  ZeroMQ or libcurl themselves.
int rst_sender_run (rst_sender_t *self, volatile sig_atomic_t *stop);

#endif
