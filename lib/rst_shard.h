/*  rst_shard — which instance of a sharded node owns a key.

    "Per pixel" holds with several limiter, batcher and sender instances only
    if every event of one pixel goes through the same instance: every node
    that routes to a sharded node picks the instance with rst_shard_of, on
    the same key (the pixel id), so they all agree. Changing an instance
    count moves keys between instances (see schemas/pipeline.md, caveats).

    rst_shard_hash is the hash behind it (FNV-1a, 64 bits), also used by
    the in-memory hash tables of the limiter, the front's snapshot and the
    traffic classifier.
*/
#ifndef RST_SHARD_H
#define RST_SHARD_H

#include <stddef.h>
#include <stdint.h>

#define RST_SHARD_FNV_OFFSET 1469598103934665603ull
#define RST_SHARD_FNV_PRIME  1099511628211ull

//  FNV-1a 64 of DATA[0..LEN).
static inline uint64_t
rst_shard_hash (const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = RST_SHARD_FNV_OFFSET;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= RST_SHARD_FNV_PRIME;
    }
    return h;
}

//  Instance (0..COUNT-1) that owns KEY (LEN bytes). COUNT must be ≥ 1.
static inline size_t
rst_shard_of (const char *key, size_t len, size_t count)
{
    return count ? (size_t) (rst_shard_hash (key, len) % count) : 0;
}

#endif
