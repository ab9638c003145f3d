/*  rst_spendsync — ad spend per campaign and day, kept from Meta's Insights.

    The optimizer node's first actor (nodes/optimizer/main.c is a thin main
    over it; issue 5 §2). Every poll_ms it looks for the ad accounts that
    are due (ad_accounts, schemas/sql/007_spend.sql), fetches their spend
    with rst_insights and stores it in campaign_spend, one transaction per
    fetch, replacing the fetched days' rows; it keeps each account's
    last_sync_at, last_error, usage_pct and throttled_until. Schedule,
    states and caveats: rst_spendsync.c.
*/
#ifndef RST_SPENDSYNC_H
#define RST_SPENDSYNC_H

#include "rst_config.h"
#include "rst_topology.h"

#include <signal.h>
#include <stddef.h>

//  Topology defaults and limits ([optimizer] keys).
#define RST_SPENDSYNC_POLL_MS_DEFAULT       5000    //  how often due accounts are looked for
#define RST_SPENDSYNC_TODAY_EVERY_S_DEFAULT 300     //  today's spend refreshed this often
#define RST_SPENDSYNC_BACKFILL_DAYS_DEFAULT 30      //  days fetched when an account is added
#define RST_SPENDSYNC_SLOW_PCT_DEFAULT      90      //  usage at which refreshes slow down
#define RST_SPENDSYNC_SLOW_FACTOR_DEFAULT   4       //  ... by this factor
#define RST_SPENDSYNC_RETRY_S_DEFAULT       30      //  first wait after a failed fetch (doubles)
#define RST_SPENDSYNC_REJECTED_WAIT_S       3600    //  wait after Meta refused the request
#define RST_SPENDSYNC_TIMEOUT_MS_DEFAULT    30000   //  per Insights page
#define RST_SPENDSYNC_BATCH                 20      //  accounts fetched per poll at most

typedef struct rst_spendsync_t rst_spendsync_t;

//  Builds the spend sync of optimizer INSTANCE (which reads the ad accounts
//  whose id modulo the [optimizer] instance count is INSTANCE) from the topology's
//  [optimizer] section (poll_ms, today_every_s, backfill_days, slow_pct,
//  slow_factor, retry_s, timeout_ms, all optional) and CFG's Meta Graph URL
//  and version; tries PostgreSQL once (a failure is logged and retried by
//  the loop). CFG and TOPO are borrowed and must outlive it. Returns a new
//  object the caller owns, or NULL with a reason in ERR.
rst_spendsync_t *rst_spendsync_new (const rst_config_t *cfg, const rst_topology_t *topo,
                                    int instance, char *err, size_t errlen);

//  Frees everything (no token stays in memory) and sets *SELF_P to NULL.
//  Safe on NULL.
void rst_spendsync_destroy (rst_spendsync_t **self_p);

//  Logs the effective settings.
void rst_spendsync_print (const rst_spendsync_t *self);

//  Runs until *STOP becomes non-zero (checked between accounts and while
//  idle). Writes the heartbeat <data>/run/optimizer-<instance>.prom about
//  once a second. Returns 0.
int rst_spendsync_run (rst_spendsync_t *self, volatile sig_atomic_t *stop);

//  Does one poll now: fetches and stores every account that is due (at
//  most RST_SPENDSYNC_BATCH), until *STOP (may be NULL) becomes non-zero.
//  Returns the number of accounts fetched, or -1 when PostgreSQL is away.
//  For the run loop and tests.
int rst_spendsync_poll (rst_spendsync_t *self, volatile sig_atomic_t *stop);

#endif
