/*  rst_bots — the bots node: every Telegram bot of every user in one process.

    Threads:
      config    LISTENs on rastro_config and reloads the bot registry
                (tokens and gateway credentials opened with the master key);
      poller    long-polls getUpdates for every enabled bot in polling mode
                (rst_tgpoll, one curl multi), stores each batch in tg_updates
                (de-duplicated by (bot, update_id)) before the next poll
                confirms it, and records the offset;
      intake    PULLs what the fronts journaled (Telegram webhook updates and
                payment webhooks, rst_inbox), stores / notes it in PostgreSQL
                and only then acks it to the front's inbox journal;
      workers   `workers` threads, each with its own rst_funnel: updates are
                routed by (bot, chat) so one chat's updates run in order;
      main      heartbeat and metrics every second; every `reconcile_s` the
                sweeps: pending charges re-read (the reconciler: a lost
                webhook still ends in a Purchase), updates whose lease ran out,
                deliveries to retry, handled updates older than 48 h deleted.
    Topology keys of [bots]: in, inbox_acks, journal, acks, required_acks,
    events, replay_after, sync_ms (rst_emitter / rst_keeper), workers,
    reconcile_s, poll_timeout_s, lease_s (seconds a worker holds an update
    before another may retry it; default 60).
*/
#ifndef RST_BOTS_H
#define RST_BOTS_H

#include "rst_config.h"
#include "rst_topology.h"

#include <signal.h>
#include <stddef.h>

typedef struct rst_bots_t rst_bots_t;

rst_bots_t *rst_bots_new (const rst_config_t *cfg, const rst_topology_t *topo, int instance,
                          char *err, size_t errlen);
void rst_bots_print (const rst_bots_t *self);
int rst_bots_run (rst_bots_t *self, volatile sig_atomic_t *stop);
void rst_bots_destroy (rst_bots_t **self_p);

#endif
