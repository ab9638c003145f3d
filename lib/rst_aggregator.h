/*  rst_aggregator — hourly funnel aggregates, counted exactly once.

    The aggregator node's actor (nodes/aggregator/main.c is a thin main
    over it; issue 5 §1). It SUBscribes to every enricher's PUB stream of
    "enriched" events (schemas/pipeline.md) and counts each event once into
    analytics_hourly (schemas/sql/005_analytics.sql) per owner, pool, bot,
    day and hour in the owner's time zone, utm_source and utm_campaign:
    clicks, automated clicks, starts, checkouts, purchases and revenue.
    The stream is only the fast path: a catch-up pass over the durable
    record (clicks, funnel_events) counts whatever the stream lost.
    Details, states and caveats: rst_aggregator.c.
*/
#ifndef RST_AGGREGATOR_H
#define RST_AGGREGATOR_H

#include "rst_config.h"
#include "rst_topology.h"

#include <signal.h>
#include <stddef.h>

//  Topology defaults and limits ([aggregator] keys).
#define RST_AGGREGATOR_BATCH_MS_DEFAULT         200
#define RST_AGGREGATOR_BATCH_MAX_DEFAULT        1000
#define RST_AGGREGATOR_BATCH_MAX_LIMIT          10000
#define RST_AGGREGATOR_CATCHUP_S_DEFAULT        10
#define RST_AGGREGATOR_CATCHUP_WINDOW_S_DEFAULT 3600
#define RST_AGGREGATOR_CATCHUP_GRACE_S_DEFAULT  10
#define RST_AGGREGATOR_RETENTION_DAYS_DEFAULT   40

typedef struct rst_aggregator_t rst_aggregator_t;

//  Builds aggregator INSTANCE from the topology's [aggregator] section:
//  reads and checks batch_ms, batch_max, catchup_s, catchup_window_s,
//  catchup_grace_s and retention_days, connects a SUB socket to every
//  endpoint of `sub` (e.g. `enricher.pub`), and tries PostgreSQL once (a
//  failure is logged and retried by the loop). CFG and TOPO are borrowed
//  and must outlive the aggregator. Returns a new aggregator the caller
//  owns, or NULL with a reason in ERR.
rst_aggregator_t *rst_aggregator_new (const rst_config_t *cfg, const rst_topology_t *topo,
                                      int instance, char *err, size_t errlen);

//  Closes the socket and the connection, frees the aggregator and sets
//  *SELF_P to NULL. Events not counted yet are left to the next catch-up
//  (they are in the durable record). Safe on NULL.
void rst_aggregator_destroy (rst_aggregator_t **self_p);

//  Logs the effective settings.
void rst_aggregator_print (const rst_aggregator_t *self);

//  Runs the loop until *STOP becomes non-zero, then counts the batch in
//  hand if PostgreSQL answers. Returns 0, or -1 on a failure of ZeroMQ
//  itself.
int rst_aggregator_run (rst_aggregator_t *self, volatile sig_atomic_t *stop);

#endif
