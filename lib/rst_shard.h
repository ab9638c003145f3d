/*  rst_shard — which instance of a sharded node owns a key.

    "Per pixel" holds with several limiter, batcher and sender instances only
    if every event of one pixel goes through the same instance: every node
    that routes to a sharded node picks the instance with rst_shard_of, on
    the same key (the pixel id), so they all agree. Changing an instance
    count moves keys between instances (see schemas/pipeline.md, caveats).
*/
#ifndef RST_SHARD_H
#define RST_SHARD_H

#include <stddef.h>
#include <stdint.h>

//  Instance (0..COUNT-1) that owns KEY (LEN bytes). COUNT must be ≥ 1.
static inline size_t
rst_shard_of (const char *key, size_t len, size_t count)
{
    uint64_t h = 1469598103934665603ull;    //  FNV-1a 64
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char) key[i];
        h *= 1099511628211ull;
    }
    return count ? (size_t) (h % count) : 0;
}

#endif
