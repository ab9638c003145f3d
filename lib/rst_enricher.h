/*  rst_enricher — turns raw funnel events into Meta events.

    The enricher node's actor (nodes/enricher/main.c is a thin main over
    it). It PULLs raw events (schemas/events.md) from the recorders,
    validates them against the pool/pixel cache, classifies automated
    traffic (rst_traffic), builds the Meta event object (rst_meta), and
    publishes every enriched event (schemas/pipeline.md) on its PUB socket;
    events for Meta are PUSHed to the limiter that owns their pixel, and
    automated ones are acknowledged to their journal at once (stage
    RST_JOURNAL_ACK_META). Details, states and caveats: rst_enricher.c.
*/
#ifndef RST_ENRICHER_H
#define RST_ENRICHER_H

#include "rst_config.h"
#include "rst_topology.h"

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

#endif
