/*  rst_limiter — per-pixel token buckets with FIFO queues, and the limiter node.

    The core (rst_limiter_t) is pure: no sockets, no clock (every call gets
    NOW_MS), so it is unit-tested without sleeping. The node
    (rst_limiter_node_t) wraps it with the sockets of topology [limiter]:
    PULL `in` from the enrichers, PUSH to batcher i (`out`, i = own
    instance), SUB to every sender's `outcomes` for throttling feedback,
    and the pixel rates from PostgreSQL (pixels.rate_per_s, refreshed on
    NOTIFY rastro_config). States and caveats: rst_limiter.c.
*/
#ifndef RST_LIMITER_H
#define RST_LIMITER_H

#include "rst_config.h"
#include "rst_topology.h"

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#define RST_LIMITER_RATE_DEFAULT     1000        //  events/s of a pixel without its own rate
#define RST_LIMITER_RATE_MIN         1           //  throttling never goes below this
#define RST_LIMITER_BACKOFF_MS       1000        //  pause on THROTTLED without a wait hint
#define RST_LIMITER_SPEEDUP          0.10        //  +10% of the current rate per calm second
#define RST_LIMITER_QUEUE_MAX        200000      //  events queued per pixel
#define RST_LIMITER_TOTAL_MAX        1000000     //  events queued in all

typedef struct rst_limiter_t rst_limiter_t;

#define RST_LIMITER_ID_MAX 64     //  event_id and pixel_id bytes (RST_EVENT_ID_MAX, _SHORT_MAX)

//  One released event: the packed "enriched" map, forwarded as is.
typedef struct {
    char *data;                 //  owned by whoever holds the item
    size_t len;
    int priority;
    char pixel[RST_LIMITER_ID_MAX + 1];
    char event_id[RST_LIMITER_ID_MAX + 1];
} rst_limiter_item_t;

//  Returns a new limiter the caller owns: DEFAULT_RATE events/s for pixels
//  without a rate of their own, at most QUEUE_MAX events queued per pixel
//  and TOTAL_MAX in all. NULL when out of memory.
rst_limiter_t *rst_limiter_new (double default_rate, size_t queue_max, size_t total_max);
void rst_limiter_destroy (rst_limiter_t **self_p);

//  Sets the configured rate of PIXEL (RATE ≤ 0: the default). The current
//  rate follows at once if it was above; otherwise it climbs back to it.
void rst_limiter_set_rate (rst_limiter_t *self, const char *pixel, size_t len, double rate);

//  Every pixel back to the default rate (before a new set of rates).
void rst_limiter_reset_rates (rst_limiter_t *self);

typedef enum {
    RST_LIMITER_QUEUED = 0,     //  queued (DATA copied)
    RST_LIMITER_DUPLICATE = 1,  //  EVENT_ID is already queued (a replay): dropped
    RST_LIMITER_FULL = 2,       //  the pixel's (or the total) cap is reached: refused
} rst_limiter_add_t;

//  Queues the event EVENT_ID of PIXEL (DATA[0..LEN) copied). PRIORITY
//  events go to the front of the pixel's queue, behind earlier priority
//  events. Returns what happened; -1 when out of memory.
int rst_limiter_add (rst_limiter_t *self, const char *pixel, size_t pixel_len,
                     const char *event_id, size_t id_len, int priority, const char *data,
                     size_t len, int64_t now_ms);

//  Releases the next event that its pixel's bucket allows at NOW_MS, taking
//  one token. Pixels take turns. Fills *ITEM (OUT; the caller owns
//  item->data, free() it) and returns 1, or returns 0 when nothing may go.
int rst_limiter_next (rst_limiter_t *self, int64_t now_ms, rst_limiter_item_t *item);

//  Puts a released ITEM back at the front of its pixel's queue and gives
//  the token back (a push downstream failed). Takes ownership of
//  item->data (item->data is NULL afterwards). Release items back in the
//  reverse order of rst_limiter_next to keep the order.
void rst_limiter_unrelease (rst_limiter_t *self, rst_limiter_item_t *item);

//  Milliseconds from NOW_MS until some queued event may go (0 = now), or -1
//  when nothing is queued.
int64_t rst_limiter_wait_ms (rst_limiter_t *self, int64_t now_ms);

//  Meta throttles PIXEL: halve its current rate (not below
//  RST_LIMITER_RATE_MIN) and pause it for WAIT_MS (≤ 0: RST_LIMITER_BACKOFF_MS).
void rst_limiter_throttled (rst_limiter_t *self, const char *pixel, size_t len, int64_t wait_ms,
                            int64_t now_ms);

//  Accessors (for metrics and tests).
double rst_limiter_rate (rst_limiter_t *self, const char *pixel, size_t len, int64_t now_ms);
size_t rst_limiter_depth (const rst_limiter_t *self, const char *pixel, size_t len);
size_t rst_limiter_total (const rst_limiter_t *self);
uint64_t rst_limiter_throttles (const rst_limiter_t *self);

//  The N deepest queues: writes up to N pixel ids (borrowed, valid until
//  the next call that changes SELF), depths and current rates. Returns the
//  count written.
size_t rst_limiter_top (rst_limiter_t *self, size_t n, const char **pixels, size_t *depths,
                        double *rates, int64_t now_ms);

//  --------------------------------------------------------------------------
//  The node

typedef struct rst_limiter_node_t rst_limiter_node_t;

//  Builds limiter INSTANCE from topology [limiter]: binds `in`, connects
//  `out` entry INSTANCE, SUBs to every endpoint of `outcomes`, reads
//  default_rate, queue_max, queue_total_max; starts the rates cache. CFG
//  and TOPO are borrowed. Returns a new node or NULL with a reason in ERR.
rst_limiter_node_t *rst_limiter_node_new (const rst_config_t *cfg, const rst_topology_t *topo,
                                          int instance, char *err, size_t errlen);
void rst_limiter_node_destroy (rst_limiter_node_t **self_p);
void rst_limiter_node_print (const rst_limiter_node_t *self);

//  Runs until *STOP. Returns 0, or -1 on a failure of ZeroMQ itself.
int rst_limiter_node_run (rst_limiter_node_t *self, volatile sig_atomic_t *stop);

#endif
