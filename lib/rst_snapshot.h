/*  rst_snapshot — the front's in-memory copy of pools, bots and webhook secrets.

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

    Webhooks: the snapshot also holds what the front needs to authenticate
    inbound webhooks without asking PostgreSQL:
      - the bots in webhook mode (update_mode = 'webhook' with a
        webhook_secret_hash), found by username case-insensitively;
      - every gateway account's webhook secret (MP "webhook_secret",
        PushinPay "webhook_token"; none for SyncPay). rst_snapshot_load keeps
        the sealed credentials; rst_snapshot_open_gateways opens them with
        the master key and keeps only each account's webhook secret.
    Secrets live in memory only and are wiped (sodium_memzero) when a
    snapshot is destroyed; they are never logged.
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

//  A bot whose Telegram updates come by webhook (POST /telegram/<username>).
typedef struct {
    int64_t id;                     //  bots.id
    char username[33];              //  lower case, without '@'
    unsigned char secret_hash[32];  //  SHA-256 of the secret_token given to setWebhook
} rst_snapshot_webhook_bot_t;

//  One gateway account (a row of `gateways`).
typedef struct {
    int kind;                       //  rst_gw_kind_t
    char *secret;                   //  its webhook secret (owned, wiped), or NULL: SyncPay,
                                    //  not opened yet, or credentials that could not be opened
    unsigned char *sealed;          //  credentials_enc until opened (owned), else NULL
    size_t sealed_len;
} rst_snapshot_gateway_t;

typedef struct rst_snapshot_t rst_snapshot_t;

//  Loads every pool with its pixel and bots, the bots in webhook mode, and
//  every gateway account with its credentials still sealed. Returns a new
//  snapshot the caller owns, or NULL with PostgreSQL's message in ERR.
rst_snapshot_t *rst_snapshot_load (PGconn *conn, char *err, size_t errlen);

//  Opens the sealed credentials of every gateway account with the master key
//  in MASTER_KEY_FILE (read, never created) and keeps only each account's
//  webhook secret (rst_gateway_webhook_secret); the sealed bytes are freed.
//  An account whose credentials cannot be opened keeps no secret (its
//  webhooks will not authenticate) and is counted in the return value.
//  Without accounts the key file is not read. Returns the number of
//  accounts that could not be opened (0 = all fine), or -1 with a reason in
//  ERR when there are sealed credentials but the key cannot be loaded (then
//  no account has a secret).
int rst_snapshot_open_gateways (rst_snapshot_t *self, const char *master_key_file, char *err,
                                size_t errlen);

//  Returns an empty snapshot (no pools), or NULL. Used by tests and before
//  the first load.
rst_snapshot_t *rst_snapshot_new_empty (void);

//  Adds a pool to a snapshot being built by hand (tests). BOTS are copied.
//  Returns 0 or -1.
int rst_snapshot_add_pool (rst_snapshot_t *self, const rst_snapshot_pool_t *pool,
                           const rst_snapshot_bot_t *bots, size_t nbots);

//  Adds a bot in webhook mode (tests; rst_snapshot_load for real). USERNAME
//  (1–32 bytes) is stored in lower case; SECRET_HASH is 32 bytes. Returns 0,
//  or -1 (out of memory, bad username).
int rst_snapshot_add_webhook_bot (rst_snapshot_t *self, int64_t id, const char *username,
                                  const unsigned char secret_hash[32]);

//  Adds a gateway account of KIND with its sealed credentials (copied).
//  Returns 0 or -1 (out of memory).
int rst_snapshot_add_gateway (rst_snapshot_t *self, int kind, const unsigned char *sealed,
                              size_t sealed_len);

//  Returns a deep copy the caller owns, or NULL.
rst_snapshot_t *rst_snapshot_clone (const rst_snapshot_t *self);

//  Copies the pickers' state of pools that exist in OLD with the same bots
//  into SELF.
void rst_snapshot_carry_state (rst_snapshot_t *self, const rst_snapshot_t *old);

//  Wipes the secrets, frees the snapshot and sets *SELF_P to NULL. Safe on NULL.
void rst_snapshot_destroy (rst_snapshot_t **self_p);

//  Finds a pool by slug. Returns a pool owned by SELF (valid while SELF
//  lives), or NULL.
rst_snapshot_pool_t *rst_snapshot_find (rst_snapshot_t *self, const char *slug, size_t len);

//  Picks the next bot of POOL by its strategy, skipping unusable bots.
//  Returns a bot owned by the snapshot, or NULL when none is usable.
const rst_snapshot_bot_t *rst_snapshot_pick (rst_snapshot_pool_t *pool);

size_t rst_snapshot_pool_count (const rst_snapshot_t *self);

//  Finds a bot in webhook mode by USERNAME[0..LEN), case-insensitively.
//  Returns a bot owned by SELF (valid while SELF lives), or NULL.
const rst_snapshot_webhook_bot_t *rst_snapshot_find_webhook_bot (rst_snapshot_t *self,
                                                                 const char *username, size_t len);

//  Number of bots in webhook mode.
size_t rst_snapshot_webhook_bot_count (const rst_snapshot_t *self);

//  Number of gateway accounts, and account INDEX (< count; owned by SELF,
//  valid while SELF lives).
size_t rst_snapshot_gateway_count (const rst_snapshot_t *self);
const rst_snapshot_gateway_t *rst_snapshot_gateway (const rst_snapshot_t *self, size_t index);

#endif
