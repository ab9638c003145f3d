/*  rst_aggseq — a hint that the aggregator's stream skipped events.

    A PUB socket drops messages silently when its subscriber lags
    (c-toolchain.md §5), and the enricher's "enriched" messages carry no
    sequence number of the stream itself. They do carry the event's journal
    and its sequence number in that journal (`src`, `seq`, schemas/
    pipeline.md), which rise by one per journaled event. rst_aggseq keeps
    the highest `seq` seen per `src` and says when one jumps ahead.

    It is only a hint: with several recorders or enrichers the events of
    one journal travel by different paths and arrive out of order, an event
    whose enrichment failed is replayed later, and a replay arrives behind.
    A jump therefore only makes the aggregator run its catch-up pass (which
    counts from the durable record) sooner; it is never taken as a loss.

    Bounded: RST_AGGSEQ_SOURCES journals are tracked; a new one replaces the
    one seen least recently. Pure; one owner.
*/
#ifndef RST_AGGSEQ_H
#define RST_AGGSEQ_H

#include <stddef.h>
#include <stdint.h>

#define RST_AGGSEQ_SOURCES 64       //  journals tracked at once
#define RST_AGGSEQ_SRC_MAX 64       //  bytes of a journal name (schemas/pipeline.md)

typedef struct rst_aggseq_t rst_aggseq_t;

//  Returns a new tracker the caller owns, or NULL when out of memory.
rst_aggseq_t *rst_aggseq_new (void);

//  Frees the tracker and sets *SELF_P to NULL. Safe on NULL.
void rst_aggseq_destroy (rst_aggseq_t **self_p);

//  Notes that the event SEQ of journal SRC (LEN bytes, 1 ..
//  RST_AGGSEQ_SRC_MAX) arrived. Returns how many sequence numbers were
//  skipped when SEQ is beyond the highest seen for SRC plus one, else 0 (a
//  journal seen for the first time, the next one in order, or a late or
//  replayed one). A SRC that is empty or too long is ignored (0).
uint64_t rst_aggseq_note (rst_aggseq_t *self, const char *src, size_t len, uint64_t seq);

#endif
