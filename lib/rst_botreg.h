/*  rst_botreg — the bots node's registry of bots, their tokens and gateways.

    Loaded from PostgreSQL (bots, gateways, and the pixel of the first pool a
    bot belongs to, used for organic leads) by rst_botreg_reload, on start,
    on NOTIFY rastro_config and periodically. Tokens and gateway credentials
    are opened with the master key and live only in memory: every copy
    handed out is wiped by rst_bot_clear, and a reload wipes the old ones.

    Thread-safe: one mutex; readers get copies (rst_botreg_get) so a reload
    never pulls memory from under them. `version` grows on every reload that
    changed something, so the poller knows when to resynchronise.
*/
#ifndef RST_BOTREG_H
#define RST_BOTREG_H

#include "rst_secret.h"
#include "rst_telegram.h"

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    int64_t id;                             //  bots.id
    int64_t owner_id;
    int64_t telegram_id;
    char username[33];
    char token[RST_TELEGRAM_TOKEN_MAX + 1]; //  plaintext, wiped by rst_bot_clear
    int enabled;
    int webhook;                            //  update_mode = 'webhook'
    int64_t poll_offset;                    //  as last loaded
    int64_t organic_pool_id;                //  first pool that holds the bot (0 = none)
    char organic_pixel[33];                 //  that pool's pixel ("" = none: no Meta event)
    int gateway_kind;                       //  rst_gw_kind_t, or -1 without a gateway
    char *gateway_credentials;              //  malloc'd plaintext JSON (copies only), wiped
    int64_t gateway_version;                //  gateways.updated_at in µs (cache key)
} rst_bot_t;

//  Wipes the token and credentials of BOT and frees the credentials.
void rst_bot_clear (rst_bot_t *bot);

typedef struct rst_botreg_t rst_botreg_t;

rst_botreg_t *rst_botreg_new (void);
void rst_botreg_destroy (rst_botreg_t **self_p);

//  Reloads every bot from CONN, opening secrets with SECRET (NULL: tokens
//  unknown, such bots are skipped with a warning). Returns the number of
//  bots, or -1 with PostgreSQL's message in ERR (the old contents stay).
int rst_botreg_reload (rst_botreg_t *self, PGconn *conn, rst_secret_t *secret, char *err,
                       size_t errlen);

//  Copies bot BOT_ID into *OUT (the caller calls rst_bot_clear). WITH_CREDENTIALS
//  0 skips copying the gateway credentials. Returns 0, or -1 when unknown.
int rst_botreg_get (rst_botreg_t *self, int64_t bot_id, int with_credentials, rst_bot_t *out);

//  Copies the enabled polling bots (without credentials) into a new array
//  the caller frees after rst_bot_clear on each. Returns the count, or -1.
int rst_botreg_polling (rst_botreg_t *self, rst_bot_t **out);

uint64_t rst_botreg_version (rst_botreg_t *self);
size_t rst_botreg_count (rst_botreg_t *self);

#endif
