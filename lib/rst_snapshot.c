/*  rst_snapshot — see rst_snapshot.h.

    Storage: one array of pools and one array of bots (each pool points at
    its slice), plus an open-addressing hash table from slug to pool index
    (FNV-1a, power-of-two size, load ≤ 1/2). Built once, then only the
    pickers' fields change, by the owning thread.
*/
#include "rst_snapshot.h"
#include "rst_shard.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rst_snapshot_t {
    size_t npools, pools_cap;
    rst_snapshot_pool_t *pools;
    size_t nbots, bots_cap;
    rst_snapshot_bot_t *bots;
    size_t table_size;          //  power of two
    int32_t *table;             //  pool index or -1
    int dirty;                  //  pools added since the table was built
};

rst_snapshot_t *
rst_snapshot_new_empty (void)
{
    return calloc (1, sizeof (rst_snapshot_t));
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
        free (self);
    }
    *self_p = NULL;
}

//  Rebuilds the slug table and each pool's bots pointer. Returns 0 or -1.
static int
s_index (rst_snapshot_t *self)
{
    size_t size = 16;
    while (size < self->npools * 2)
        size *= 2;
    int32_t *table = malloc (size * sizeof *table);
    if (!table)
        return -1;
    for (size_t i = 0; i < size; i++)
        table[i] = -1;
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
    if (s_index (self))
        goto fail;
    self->dirty = 0;
    free (bots);
    PQclear (res);
    return self;
fail:
    snprintf (err, errlen, "out of memory loading pools");
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
