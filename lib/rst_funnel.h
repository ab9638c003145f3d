/*  rst_funnel — what the bots node does with an update or a payment.

    One rst_funnel_t per worker thread (it owns a PostgreSQL connection, a
    Telegram client and a small cache of gateway accounts); the environment
    (registry, emitter, sending limits, counters) is shared.

        update ──claim lease──► /start  → lead, start event (ViewContent), welcome + offers
                                button  → answer first, charge (idempotent), checkout event
                                          (InitiateCheckout), QR photo + copy-and-paste code
                                joined  → revoke the one-person invite link
               ──handled_at──►
        payment hint (webhook, reconciler) → re-read the charge at the gateway →
               paid and amount right → payment event (Purchase) journaled →
               pending→paid exactly once (conditional UPDATE) → delivery
        delivery → invite link (member_limit 1, short expiry) or a message;
                   retried with backoff, visible in payments.delivery_*

    Events are journaled before the database says the step happened, with
    ids derived from the step ("vc-<bot>-<update>", "ic-<payment>",
    "pur-<payment>"): a crash in between repeats the step with the same id,
    which every later stage de-duplicates.
*/
#ifndef RST_FUNNEL_H
#define RST_FUNNEL_H

#include "rst_botreg.h"
#include "rst_config.h"
#include "rst_emitter.h"
#include "rst_tgrate.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#define RST_FUNNEL_LEASE_S        60       //  default lease: a claimed update is retried after this
#define RST_FUNNEL_CLICK_WAIT_MS  3000     //  how long /start waits for its click to be stored
#define RST_FUNNEL_CHARGE_TTL_S   1800     //  PIX charges expire after 30 minutes
#define RST_FUNNEL_INVITE_TTL_S   3600     //  one-person invite links expire after an hour
#define RST_FUNNEL_DELIVERY_TRIES 12       //  then delivery_status = 'failed'
#define RST_FUNNEL_MAX_WAIT_S     30.0     //  longest Telegram wait done in place (else retry later)

//  Counters shared by every worker (read by the node for its metrics).
typedef struct {
    atomic_ulong updates, update_failures, starts, organic, checkouts, checkout_failures,
        reused_charges, purchases, amount_mismatches, unknown_charges, deliveries,
        delivery_failures, joins, tg_calls, tg_errors, tg_throttled, events_failed;
} rst_funnel_stats_t;

typedef struct {
    const rst_config_t *cfg;        //  public_url, telegram_api_url, database_url
    rst_botreg_t *registry;
    rst_emitter_t *emitter;
    rst_tgrate_t *rate;             //  guarded by rate_lock
    pthread_mutex_t rate_lock;
    rst_funnel_stats_t stats;
    atomic_int *stop;               //  set when the node stops (ends waits early)
    int lease_s;                    //  how long a worker holds an update ([bots] lease_s)
} rst_funnel_env_t;

typedef struct rst_funnel_t rst_funnel_t;

//  Connects to PostgreSQL and builds a Telegram client. Returns a new funnel
//  the caller owns, or NULL with a reason in ERR.
rst_funnel_t *rst_funnel_new (rst_funnel_env_t *env, char *err, size_t errlen);
void rst_funnel_destroy (rst_funnel_t **self_p);

//  Handles update (BOT_ID, UPDATE_ID) of tg_updates if nobody holds it:
//  returns 1 handled (or already handled / held elsewhere), 0 when it failed
//  and stays for a retry after its lease, -1 when the database is away.
int rst_funnel_update (rst_funnel_t *self, int64_t bot_id, int64_t update_id);

//  Re-reads payment PAYMENT_ID's charge at its gateway and, if it is paid with
//  the right amount, emits the Purchase, moves it to paid exactly once and
//  delivers. WHY names the trigger for logs ("webhook", "reconciler").
//  Returns 0 (whatever the charge said), or -1 to retry later.
int rst_funnel_confirm (rst_funnel_t *self, int64_t payment_id, const char *why);

//  Delivers a paid payment whose delivery is pending. Returns 0 or -1.
int rst_funnel_deliver (rst_funnel_t *self, int64_t payment_id);

//  The worker's database connection (for the node's own sweeps), or NULL.
struct pg_conn *rst_funnel_db (rst_funnel_t *self);

#endif
