/*  rst_aggbatch — a batch of event ids for the aggregator to count.

    The aggregator (rst_aggregator.c) collects the events it must count —
    from the enrichers' PUB stream, or found by its catch-up pass in the
    durable record — into a batch, and counts the whole batch with one
    statement (rst_aggstore_count). An entry is an event id, whether the
    event is automated traffic (the enricher's verdict, or the catch-up's
    user-agent verdict) and the event's time (for the lag metric).

    rst_aggbatch_params renders the batch as the statement's two parameters:
    PostgreSQL array literals in text format, a text[] of the ids and a
    boolean[] of the flags, in the order added. Pure: no I/O, one owner.
    Duplicates are kept (the statement removes them).
*/
#ifndef RST_AGGBATCH_H
#define RST_AGGBATCH_H

#include <stddef.h>
#include <stdint.h>

#define RST_AGGBATCH_MAX_LIMIT 100000   //  largest capacity accepted

typedef struct rst_aggbatch_t rst_aggbatch_t;

//  Returns a new empty batch of capacity MAX (1 .. RST_AGGBATCH_MAX_LIMIT)
//  the caller owns, or NULL (out of memory, or MAX out of range).
rst_aggbatch_t *rst_aggbatch_new (size_t max);

//  Frees the batch and sets *SELF_P to NULL. Safe on NULL.
void rst_aggbatch_destroy (rst_aggbatch_t **self_p);

//  Adds one event: its id (LEN bytes, at least 1, no NUL byte; copied),
//  AUTOMATED (non-zero: automated traffic) and TIME_MS (when it happened,
//  Unix ms). Returns 0, or -1 when the batch is full, the id is empty or
//  holds a NUL byte, or memory ran out (nothing added).
int rst_aggbatch_add (rst_aggbatch_t *self, const char *event_id, size_t len, int automated,
                      int64_t time_ms);

//  Events in the batch.
size_t rst_aggbatch_count (const rst_aggbatch_t *self);

//  Capacity given to rst_aggbatch_new.
size_t rst_aggbatch_max (const rst_aggbatch_t *self);

//  1 when the batch holds its capacity, else 0.
int rst_aggbatch_is_full (const rst_aggbatch_t *self);

//  Largest TIME_MS added since the last clear (0 when empty).
int64_t rst_aggbatch_newest_ms (const rst_aggbatch_t *self);

//  Renders the batch as two PostgreSQL array literals: *IDS a text[]
//  ({"id1","id2"}: every element double-quoted, `"` and `\` escaped with a
//  backslash) and *FLAGS a boolean[] ({t,f}), in the order added; "{}" when
//  empty. The strings are owned by the batch and stay valid until the next
//  add, clear or params. Returns 0, or -1 when out of memory.
int rst_aggbatch_params (rst_aggbatch_t *self, const char **ids, const char **flags);

//  Empties the batch (the capacity and the memory are kept).
void rst_aggbatch_clear (rst_aggbatch_t *self);

//  Writes S (LEN bytes) as one double-quoted element of a PostgreSQL array
//  literal to DST, which needs 2 * LEN + 2 bytes (no NUL is written).
//  Returns the number of bytes written.
size_t rst_aggbatch_quote (const char *s, size_t len, char *dst);

#endif
