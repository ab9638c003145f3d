/*  rst_snapshot — see rst_snapshot.h.

    Storage: one array of pools and one array of bots (each pool points at
    its slice), plus an open-addressing hash table from slug to pool index
    (FNV-1a, power-of-two size, load ≤ 1/2). Built once, then only the
    pickers' fields change, by the owning thread. Bots in webhook mode have
    their own array and table (lower-case username to index); gateway
    accounts are a plain array (the front tries every account of a kind).
*/
#include "rst_snapshot.h"
#include "rst_gateway.h"
#include "rst_secret.h"
#include "rst_shard.h"

#include <assert.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct rst_snapshot_t {
    size_t npools, pools_cap;
    rst_snapshot_pool_t *pools;
    size_t nbots, bots_cap;
    rst_snapshot_bot_t *bots;
    size_t table_size;          //  power of two
    int32_t *table;             //  pool index or -1
    int dirty;                  //  pools or webhook bots added since the tables were built
    size_t nhooks, hooks_cap;
    rst_snapshot_webhook_bot_t *hooks;  //  bots in webhook mode (secret hashes: wiped)
    size_t hook_table_size;     //  power of two
    int32_t *hook_table;        //  webhook bot index or -1
    size_t ngateways, gateways_cap;
    rst_snapshot_gateway_t *gateways;   //  accounts (secrets: wiped)
};

rst_snapshot_t *
rst_snapshot_new_empty (void)
{
    return calloc (1, sizeof (rst_snapshot_t));
}

//  Wipes and frees what ACCOUNT owns.
static void
s_gateway_clear (rst_snapshot_gateway_t *account)
{
    if (account->secret) {
        sodium_memzero (account->secret, strlen (account->secret));
        free (account->secret);
        account->secret = NULL;
    }
    free (account->sealed);     //  sealed bytes are not secret
    account->sealed = NULL;
    account->sealed_len = 0;
}

void
rst_snapshot_destroy (rst_snapshot_t **self_p)
{
    assert (self_p);
    rst_snapshot_t *self = *self_p;
    if (self) {
        free (self->pools);
        free (self->bots);
        free (self->table);
        if (self->hooks)
            sodium_memzero (self->hooks, self->hooks_cap * sizeof *self->hooks);
        free (self->hooks);
        free (self->hook_table);
        for (size_t i = 0; i < self->ngateways; i++)
            s_gateway_clear (&self->gateways[i]);
        free (self->gateways);
        free (self);
    }
    *self_p = NULL;
}

//  Returns a new table of SIZE slots (a power of two ≥ 2 × N, at least 16)
//  filled with -1 into *TABLE, its size into *SIZE; or -1.
static int
s_table_new (size_t n, int32_t **table, size_t *size)
{
    size_t slots = 16;
    while (slots < n * 2)
        slots *= 2;
    *table = malloc (slots * sizeof **table);
    if (!*table)
        return -1;
    for (size_t i = 0; i < slots; i++)
        (*table)[i] = -1;
    *size = slots;
    return 0;
}

//  Rebuilds the username table of the webhook bots. Returns 0 or -1.
static int
s_index_hooks (rst_snapshot_t *self)
{
    size_t size;
    int32_t *table;
    if (s_table_new (self->nhooks, &table, &size))
        return -1;
    for (size_t i = 0; i < self->nhooks; i++) {
        const char *name = self->hooks[i].username;
        size_t slot = rst_shard_hash (name, strlen (name)) & (size - 1);
        while (table[slot] >= 0)
            slot = (slot + 1) & (size - 1);
        table[slot] = (int32_t) i;
    }
    free (self->hook_table);
    self->hook_table = table;
    self->hook_table_size = size;
    return 0;
}

//  Rebuilds the slug table, each pool's bots pointer and the webhook bots'
//  table. Returns 0 or -1.
static int
s_index (rst_snapshot_t *self)
{
    if (s_index_hooks (self))
        return -1;
    size_t size;
    int32_t *table;
    if (s_table_new (self->npools, &table, &size))
        return -1;
    size_t first_bot = 0;
    for (size_t p = 0; p < self->npools; p++) {
        rst_snapshot_pool_t *pool = &self->pools[p];
        pool->bots = pool->nbots ? &self->bots[first_bot] : NULL;
        first_bot += pool->nbots;
        size_t slot = rst_shard_hash (pool->slug, strlen (pool->slug)) & (size - 1);
        while (table[slot] >= 0)
            slot = (slot + 1) & (size - 1);
        table[slot] = (int32_t) p;
    }
    free (self->table);
    self->table = table;
    self->table_size = size;
    return 0;
}

int
rst_snapshot_add_pool (rst_snapshot_t *self, const rst_snapshot_pool_t *pool,
                       const rst_snapshot_bot_t *bots, size_t nbots)
{
    if (self->npools == self->pools_cap) {
        size_t cap = self->pools_cap ? self->pools_cap * 2 : 16;
        rst_snapshot_pool_t *pools = realloc (self->pools, cap * sizeof *pools);
        if (!pools)
            return -1;
        self->pools = pools;
        self->pools_cap = cap;
    }
    if (self->nbots + nbots > self->bots_cap) {
        size_t cap = self->bots_cap ? self->bots_cap * 2 : 16;
        while (cap < self->nbots + nbots)
            cap *= 2;
        rst_snapshot_bot_t *list = realloc (self->bots, cap * sizeof *list);
        if (!list)
            return -1;
        self->bots = list;
        self->bots_cap = cap;
    }
    rst_snapshot_pool_t *p = &self->pools[self->npools++];
    *p = *pool;
    p->nbots = nbots;
    p->next = 0;
    for (size_t i = 0; i < nbots; i++) {
        self->bots[self->nbots + i] = bots[i];
        self->bots[self->nbots + i].current = 0;
    }
    self->nbots += nbots;
    self->dirty = 1;            //  indexed by the next find (pointers may have moved)
    return 0;
}

int
rst_snapshot_add_webhook_bot (rst_snapshot_t *self, int64_t id, const char *username,
                              const unsigned char secret_hash[32])
{
    size_t len = strlen (username);
    if (len == 0 || len >= sizeof self->hooks->username)
        return -1;
    if (self->nhooks == self->hooks_cap) {
        size_t cap = self->hooks_cap ? self->hooks_cap * 2 : 16;
        rst_snapshot_webhook_bot_t *hooks = calloc (cap, sizeof *hooks);
        if (!hooks)
            return -1;
        if (self->nhooks) {
            memcpy (hooks, self->hooks, self->nhooks * sizeof *hooks);
            sodium_memzero (self->hooks, self->hooks_cap * sizeof *hooks);
        }
        free (self->hooks);
        self->hooks = hooks;
        self->hooks_cap = cap;
    }
    rst_snapshot_webhook_bot_t *hook = &self->hooks[self->nhooks++];
    hook->id = id;
    for (size_t i = 0; i <= len; i++)
        hook->username[i] = (char) ((username[i] >= 'A' && username[i] <= 'Z') ? username[i] + 32
                                                                                : username[i]);
    memcpy (hook->secret_hash, secret_hash, sizeof hook->secret_hash);
    self->dirty = 1;
    return 0;
}

int
rst_snapshot_add_gateway (rst_snapshot_t *self, int kind, const unsigned char *sealed,
                          size_t sealed_len)
{
    if (self->ngateways == self->gateways_cap) {
        size_t cap = self->gateways_cap ? self->gateways_cap * 2 : 8;
        rst_snapshot_gateway_t *list = realloc (self->gateways, cap * sizeof *list);
        if (!list)
            return -1;
        self->gateways = list;
        self->gateways_cap = cap;
    }
    rst_snapshot_gateway_t account = {kind, NULL, malloc (sealed_len + 1), sealed_len};
    if (!account.sealed)
        return -1;
    if (sealed_len)
        memcpy (account.sealed, sealed, sealed_len);
    self->gateways[self->ngateways++] = account;
    return 0;
}

int
rst_snapshot_open_gateways (rst_snapshot_t *self, const char *master_key_file, char *err,
                            size_t errlen)
{
    size_t sealed = 0;
    for (size_t i = 0; i < self->ngateways; i++)
        sealed += self->gateways[i].sealed != NULL;
    if (!sealed)
        return 0;
    rst_secret_t *key = NULL;
    if (access (master_key_file, F_OK) == 0)
        key = rst_secret_new (master_key_file, 0, err, errlen);
    else
        snprintf (err, errlen, "no master key file %s (%s)", master_key_file, strerror (errno));
    int failed = 0;
    for (size_t i = 0; i < self->ngateways; i++) {
        rst_snapshot_gateway_t *account = &self->gateways[i];
        if (!account->sealed)
            continue;
        char *plain = key ? rst_secret_open (key, account->sealed, account->sealed_len) : NULL;
        if (plain && account->kind >= 0 && account->kind < RST_GW_KINDS)
            account->secret = rst_gateway_webhook_secret ((rst_gw_kind_t) account->kind, plain);
        else
            failed++;
        rst_secret_free (plain);
        free (account->sealed);
        account->sealed = NULL;
        account->sealed_len = 0;
    }
    int have_key = key != NULL;
    rst_secret_destroy (&key);
    return have_key ? failed : -1;
}

#define S_WEBHOOK_BOTS_SQL                                                                      \
    "SELECT id, username, encode(webhook_secret_hash, 'hex') FROM bots "                        \
    "WHERE update_mode = 'webhook' AND webhook_secret_hash IS NOT NULL ORDER BY id"
#define S_GATEWAYS_SQL "SELECT kind, encode(credentials_enc, 'hex') FROM gateways ORDER BY bot_id"

//  Adds the bots in webhook mode and the gateway accounts. Returns 0, or -1
//  with a reason in ERR.
static int
s_load_webhooks (rst_snapshot_t *self, PGconn *conn, char *err, size_t errlen)
{
    PGresult *res = PQexec (conn, S_WEBHOOK_BOTS_SQL);
    if (PQresultStatus (res) != PGRES_TUPLES_OK) {
        snprintf (err, errlen, "libpq: loading webhook bots: %s", PQerrorMessage (conn));
        PQclear (res);
        return -1;
    }
    for (int row = 0; row < PQntuples (res); row++) {
        unsigned char hash[32];
        size_t hash_len = 0;
        const char *hex = PQgetvalue (res, row, 2);
        if (sodium_hex2bin (hash, sizeof hash, hex, strlen (hex), NULL, &hash_len, NULL)
            || hash_len != sizeof hash)
            continue;   //  the schema's CHECK makes this impossible
        int rc = rst_snapshot_add_webhook_bot (self, atoll (PQgetvalue (res, row, 0)),
                                               PQgetvalue (res, row, 1), hash);
        sodium_memzero (hash, sizeof hash);
        if (rc) {
            snprintf (err, errlen, "out of memory loading webhook bots");
            PQclear (res);
            return -1;
        }
    }
    PQclear (res);

    res = PQexec (conn, S_GATEWAYS_SQL);
    if (PQresultStatus (res) != PGRES_TUPLES_OK) {
        snprintf (err, errlen, "libpq: loading gateways: %s", PQerrorMessage (conn));
        PQclear (res);
        return -1;
    }
    for (int row = 0; row < PQntuples (res); row++) {
        const char *hex = PQgetvalue (res, row, 1);
        size_t hex_len = strlen (hex), len = 0;
        unsigned char *sealed = malloc (hex_len / 2 + 1);
        int kind = rst_gateway_kind_parse (PQgetvalue (res, row, 0));
        int rc = -1;
        if (sealed && !sodium_hex2bin (sealed, hex_len / 2 + 1, hex, hex_len, NULL, &len, NULL))
            rc = rst_snapshot_add_gateway (self, kind, sealed, len);
        free (sealed);
        if (rc) {
            snprintf (err, errlen, "out of memory loading gateways");
            PQclear (res);
            return -1;
        }
    }
    PQclear (res);
    return 0;
}

#define S_SNAPSHOT_SQL                                                                          \
    "SELECT p.id, p.owner_id, p.slug, x.pixel_id, p.strategy, p.enabled, "                      \
    "       b.id, b.username, pb.weight, (b.enabled AND b.healthy) "                            \
    "FROM pools p JOIN pixels x ON x.id = p.pixel_ref "                                         \
    "LEFT JOIN pool_bots pb ON pb.pool_id = p.id LEFT JOIN bots b ON b.id = pb.bot_id "         \
    "ORDER BY p.id, b.id"

rst_snapshot_t *
rst_snapshot_load (PGconn *conn, char *err, size_t errlen)
{
    PGresult *res = PQexec (conn, S_SNAPSHOT_SQL);
    if (PQresultStatus (res) != PGRES_TUPLES_OK) {
        snprintf (err, errlen, "libpq: loading pools: %s", PQerrorMessage (conn));
        PQclear (res);
        return NULL;
    }
    rst_snapshot_t *self = rst_snapshot_new_empty ();
    int rows = PQntuples (res);
    rst_snapshot_bot_t *bots = calloc ((size_t) rows + 1, sizeof *bots);
    if (!self || !bots)
        goto fail;
    int row = 0;
    while (row < rows) {
        rst_snapshot_pool_t pool = {0};
        pool.id = atoll (PQgetvalue (res, row, 0));
        pool.owner_id = atoll (PQgetvalue (res, row, 1));
        snprintf (pool.slug, sizeof pool.slug, "%s", PQgetvalue (res, row, 2));
        snprintf (pool.pixel_id, sizeof pool.pixel_id, "%s", PQgetvalue (res, row, 3));
        pool.strategy = strcmp (PQgetvalue (res, row, 4), "weighted") ? RST_STRATEGY_ROUND_ROBIN
                                                                       : RST_STRATEGY_WEIGHTED;
        pool.enabled = PQgetvalue (res, row, 5)[0] == 't';
        size_t nbots = 0;
        for (; row < rows && atoll (PQgetvalue (res, row, 0)) == pool.id; row++) {
            if (PQgetisnull (res, row, 6))
                continue;
            rst_snapshot_bot_t *b = &bots[nbots++];
            b->id = atoll (PQgetvalue (res, row, 6));
            snprintf (b->username, sizeof b->username, "%s", PQgetvalue (res, row, 7));
            b->weight = atoi (PQgetvalue (res, row, 8));
            b->usable = PQgetvalue (res, row, 9)[0] == 't';
        }
        if (rst_snapshot_add_pool (self, &pool, bots, nbots))
            goto fail;
    }
    free (bots);
    bots = NULL;
    PQclear (res);
    res = NULL;
    if (s_load_webhooks (self, conn, err, errlen))
        goto fail_quiet;
    if (s_index (self))
        goto fail;
    self->dirty = 0;
    return self;
fail:
    snprintf (err, errlen, "out of memory loading pools");
fail_quiet:
    free (bots);
    rst_snapshot_destroy (&self);
    PQclear (res);
    return NULL;
}

rst_snapshot_t *
rst_snapshot_clone (const rst_snapshot_t *self)
{
    rst_snapshot_t *copy = rst_snapshot_new_empty ();
    if (!copy)
        return NULL;
    copy->pools = malloc ((self->npools + 1) * sizeof *copy->pools);
    copy->bots = malloc ((self->nbots + 1) * sizeof *copy->bots);
    if (!copy->pools || !copy->bots)
        goto fail;
    if (self->npools)
        memcpy (copy->pools, self->pools, self->npools * sizeof *copy->pools);
    if (self->nbots)
        memcpy (copy->bots, self->bots, self->nbots * sizeof *copy->bots);
    copy->npools = copy->pools_cap = self->npools;
    copy->nbots = copy->bots_cap = self->nbots;
    copy->hooks = calloc (self->nhooks + 1, sizeof *copy->hooks);
    copy->gateways = calloc (self->ngateways + 1, sizeof *copy->gateways);
    if (!copy->hooks || !copy->gateways)
        goto fail;
    copy->hooks_cap = self->nhooks + 1;
    if (self->nhooks)
        memcpy (copy->hooks, self->hooks, self->nhooks * sizeof *copy->hooks);
    copy->nhooks = self->nhooks;
    copy->gateways_cap = self->ngateways + 1;
    for (size_t i = 0; i < self->ngateways; i++) {
        const rst_snapshot_gateway_t *from = &self->gateways[i];
        rst_snapshot_gateway_t *to = &copy->gateways[copy->ngateways++];
        to->kind = from->kind;
        if (from->secret && !(to->secret = strdup (from->secret)))
            goto fail;
        if (from->sealed) {
            to->sealed = malloc (from->sealed_len + 1);
            if (!to->sealed)
                goto fail;
            memcpy (to->sealed, from->sealed, from->sealed_len);
            to->sealed_len = from->sealed_len;
        }
    }
    if (s_index (copy))
        goto fail;
    return copy;
fail:
    rst_snapshot_destroy (&copy);
    return NULL;
}

void
rst_snapshot_carry_state (rst_snapshot_t *self, const rst_snapshot_t *old)
{
    if (!old || (self->dirty && s_index (self)))
        return;
    self->dirty = 0;
    for (size_t p = 0; p < self->npools; p++) {
        rst_snapshot_pool_t *pool = &self->pools[p];
        rst_snapshot_pool_t *prev = rst_snapshot_find ((rst_snapshot_t *) old, pool->slug,
                                                       strlen (pool->slug));
        if (!prev || prev->id != pool->id || prev->nbots != pool->nbots)
            continue;
        int same = 1;
        for (size_t b = 0; b < pool->nbots && same; b++)
            same = prev->bots[b].id == pool->bots[b].id;
        if (!same)
            continue;
        pool->next = prev->next;
        for (size_t b = 0; b < pool->nbots; b++)
            pool->bots[b].current = prev->bots[b].current;
    }
}

rst_snapshot_pool_t *
rst_snapshot_find (rst_snapshot_t *self, const char *slug, size_t len)
{
    if (self->dirty) {
        if (s_index (self))
            return NULL;
        self->dirty = 0;
    }
    if (!self->table_size)
        return NULL;
    size_t slot = rst_shard_hash (slug, len) & (self->table_size - 1);
    while (self->table[slot] >= 0) {
        rst_snapshot_pool_t *pool = &self->pools[self->table[slot]];
        if (strlen (pool->slug) == len && !memcmp (pool->slug, slug, len))
            return pool;
        slot = (slot + 1) & (self->table_size - 1);
    }
    return NULL;
}

const rst_snapshot_bot_t *
rst_snapshot_pick (rst_snapshot_pool_t *pool)
{
    if (pool->strategy == RST_STRATEGY_ROUND_ROBIN) {
        for (size_t tries = 0; tries < pool->nbots; tries++) {
            rst_snapshot_bot_t *bot = &pool->bots[pool->next % pool->nbots];
            pool->next = (pool->next + 1) % pool->nbots;
            if (bot->usable)
                return bot;
        }
        return NULL;
    }
    //  Smooth weighted round-robin.
    int64_t total = 0;
    rst_snapshot_bot_t *best = NULL;
    for (size_t i = 0; i < pool->nbots; i++) {
        rst_snapshot_bot_t *bot = &pool->bots[i];
        if (!bot->usable)
            continue;
        bot->current += bot->weight;
        total += bot->weight;
        if (!best || bot->current > best->current)
            best = bot;
    }
    if (best)
        best->current -= total;
    return best;
}

size_t
rst_snapshot_pool_count (const rst_snapshot_t *self)
{
    return self->npools;
}

const rst_snapshot_webhook_bot_t *
rst_snapshot_find_webhook_bot (rst_snapshot_t *self, const char *username, size_t len)
{
    char lower[sizeof self->hooks->username];
    if (len == 0 || len >= sizeof lower)
        return NULL;
    for (size_t i = 0; i < len; i++)
        lower[i] = (char) ((username[i] >= 'A' && username[i] <= 'Z') ? username[i] + 32
                                                                      : username[i]);
    lower[len] = 0;
    if (self->dirty) {
        if (s_index (self))
            return NULL;
        self->dirty = 0;
    }
    if (!self->hook_table_size)
        return NULL;
    size_t slot = rst_shard_hash (lower, len) & (self->hook_table_size - 1);
    while (self->hook_table[slot] >= 0) {
        const rst_snapshot_webhook_bot_t *hook = &self->hooks[self->hook_table[slot]];
        if (!strcmp (hook->username, lower))
            return hook;
        slot = (slot + 1) & (self->hook_table_size - 1);
    }
    return NULL;
}

size_t
rst_snapshot_webhook_bot_count (const rst_snapshot_t *self)
{
    return self->nhooks;
}

size_t
rst_snapshot_gateway_count (const rst_snapshot_t *self)
{
    return self->ngateways;
}

const rst_snapshot_gateway_t *
rst_snapshot_gateway (const rst_snapshot_t *self, size_t index)
{
    assert (index < self->ngateways);
    return &self->gateways[index];
}
