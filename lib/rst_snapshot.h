/*  rst_snapshot — the front's in-memory copy of pools and bots.

    The redirect path never queries PostgreSQL: it looks the slug up in a
    snapshot loaded by the front's snapshot thread (on start, on every NOTIFY
    rastro_config, and every RST_PGWATCH_REFRESH_S seconds as a safety net).
    Each HTTP thread owns its own copy (rst_snapshot_clone), including the
    bot pickers' state, so picking a bot needs no lock; when a new copy is
    installed, rst_snapshot_carry_state keeps each pool's rotation where it
    was, so proportions stay exact across reloads.

    Strategies:
      round-robin  each usable bot in turn;
      weighted     smooth weighted round-robin (nginx's): over any window of
                   sum(weights) picks, bot b is picked exactly weight(b) times.
    A bot is usable when it is enabled and healthy; a pool with none answers 503.
*/
#ifndef RST_SNAPSHOT_H
#define RST_SNAPSHOT_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    int64_t id;
    char username[33];      //  Telegram username, without '@'
    int32_t weight;         //  1–1000
    int usable;             //  enabled and healthy
    int64_t current;        //  smooth WRR state (owned by the copy's thread)
} rst_snapshot_bot_t;

typedef enum { RST_STRATEGY_ROUND_ROBIN = 0, RST_STRATEGY_WEIGHTED = 1 } rst_strategy_t;

typedef struct {
    int64_t id;
    int64_t owner_id;
    char slug[65];
    char pixel_id[33];
    rst_strategy_t strategy;
    int enabled;
    size_t nbots;
    rst_snapshot_bot_t *bots;   //  points into the snapshot's storage
    size_t next;                //  round-robin cursor (owned by the copy's thread)
} rst_snapshot_pool_t;

typedef struct rst_snapshot_t rst_snapshot_t;

//  Loads every pool with its pixel and bots. Returns a new snapshot the
//  caller owns, or NULL with PostgreSQL's message in ERR.
rst_snapshot_t *rst_snapshot_load (PGconn *conn, char *err, size_t errlen);

//  Returns an empty snapshot (no pools), or NULL. Used by tests and before
//  the first load.
rst_snapshot_t *rst_snapshot_new_empty (void);

//  Adds a pool to a snapshot being built by hand (tests). BOTS are copied.
//  Returns 0 or -1.
int rst_snapshot_add_pool (rst_snapshot_t *self, const rst_snapshot_pool_t *pool,
                           const rst_snapshot_bot_t *bots, size_t nbots);

//  Returns a deep copy the caller owns, or NULL.
rst_snapshot_t *rst_snapshot_clone (const rst_snapshot_t *self);

//  Copies the pickers' state of pools that exist in OLD with the same bots
//  into SELF.
void rst_snapshot_carry_state (rst_snapshot_t *self, const rst_snapshot_t *old);

void rst_snapshot_destroy (rst_snapshot_t **self_p);

//  Finds a pool by slug. Returns a pool owned by SELF (valid while SELF
//  lives), or NULL.
rst_snapshot_pool_t *rst_snapshot_find (rst_snapshot_t *self, const char *slug, size_t len);

//  Picks the next bot of POOL by its strategy, skipping unusable bots.
//  Returns a bot owned by the snapshot, or NULL when none is usable.
const rst_snapshot_bot_t *rst_snapshot_pick (rst_snapshot_pool_t *pool);

size_t rst_snapshot_pool_count (const rst_snapshot_t *self);

#endif
