/*  rst_pipeline — the messages of the Meta delivery pipeline (schemas/pipeline.md).

        recorder ─PUSH→ enricher ─PUSH (shard by pixel)→ limiter[i] ─PUSH→ batcher[i]
                           │ PUB: every enriched event (aggregator, broadcaster)
        batcher ─PUSH (shard by pixel)→ sender ─PUB: outcomes (limiters, aggregator, health)
        enricher, sender ─PUSH: acks (stage RST_JOURNAL_ACK_META)→ the source journal

    Three message kinds, each a msgpack map with "v" and "kind":
      - "enriched": one funnel event, ready for Meta (the `capi` JSON object)
        plus the dimensions analytics needs. ZeroMQ messages carry one or
        more maps back to back, like raw events.
      - "batch": up to RST_META_MAX_EVENTS events of one (owner, pixel),
        one map per ZeroMQ message.
      - "outcome": what a sender learnt about a pixel: events accepted or
        dead-lettered, or that Meta throttles it (and for how long).
    Decoders treat every byte as untrusted (they are fuzzed): a bad map is
    counted and dropped, never asserted.
*/
#ifndef RST_PIPELINE_H
#define RST_PIPELINE_H

#include "rst_event.h"

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#define RST_PIPELINE_VERSION     1
#define RST_PIPELINE_CAPI_MAX    16384  //  bytes of one event's Meta JSON
#define RST_PIPELINE_MAX_IDS     1000   //  event ids in one outcome
#define RST_PIPELINE_DIM_MAX     256    //  bytes of utm_source, utm_campaign
#define RST_PIPELINE_WAIT_MS_MAX (7LL * 24 * 3600 * 1000)  //  longest throttling pause
//  Largest maps the decoders accept (a valid message is always below them:
//  the per-field limits bound it).
#define RST_PIPELINE_ENRICHED_MAX_BYTES 24576
#define RST_PIPELINE_BATCH_MAX_BYTES    (17u << 20)
#define RST_PIPELINE_OUTCOME_MAX_BYTES  131072

//  One enriched event. Strings are views: borrowed in a built event, owned
//  by the event's arena in a decoded one (NUL-terminated there).
typedef struct {
    rst_str_t event_id;
    rst_str_t src;              //  journal to ack ("front.0"); acks use `seq`
    uint64_t seq;
    rst_str_t type;             //  funnel step: "click", later "start", "checkout", "payment"
    rst_str_t event_name;       //  Meta's: "PageView", ...
    int64_t time_ms;            //  when the action happened
    int64_t owner_id, pool_id, bot_id;
    rst_str_t pixel_id;
    int automated;              //  automated traffic: counted apart, never sent to Meta
    rst_str_t automated_reason; //  e.g. "crawler-ua", "ip-rate" (empty when not automated)
    int priority;               //  Purchase: the batcher's priority lane
    int64_t value_cents;        //  Purchase value in centavos, 0 otherwise
    rst_str_t utm_source, utm_campaign;  //  analytics dimensions (may be empty)
    rst_str_t capi;             //  the Meta event object, JSON text (empty when automated)
    void *arena;
} rst_enriched_t;

//  Appends SELF as one "enriched" map to PK. Returns 0, or -1 (nothing
//  written) when a field breaks the schema's limits.
int rst_enriched_pack (const rst_enriched_t *self, msgpack_packer *pk);

//  Decodes the "enriched" map at DATA + *OFFSET and advances *OFFSET, like
//  rst_event_decode. Returns a new event the caller frees with
//  rst_enriched_destroy, or NULL with the reason in ERR.
rst_enriched_t *rst_enriched_decode (const char *data, size_t len, size_t *offset, char *err,
                                     size_t errlen);
void rst_enriched_destroy (rst_enriched_t **self_p);

//  One event inside a batch.
typedef struct {
    rst_str_t event_id;
    rst_str_t src;
    uint64_t seq;
    int64_t time_ms;
    rst_str_t capi;
} rst_batch_item_t;

//  A batch for one (owner, pixel).
typedef struct {
    int64_t owner_id;
    rst_str_t pixel_id;
    int priority;               //  flushed by the priority lane
    int64_t created_ms;         //  when the batcher closed it
    size_t count;
    rst_batch_item_t *items;    //  COUNT items
    void *arena;
} rst_batch_t;

//  Appends SELF as one "batch" map to PK. Returns 0 or -1 (nothing written).
int rst_batch_pack (const rst_batch_t *self, msgpack_packer *pk);

//  Decodes one "batch" map (the whole of DATA). Returns a new batch the
//  caller frees with rst_batch_destroy, or NULL with the reason in ERR.
rst_batch_t *rst_batch_decode (const char *data, size_t len, char *err, size_t errlen);
void rst_batch_destroy (rst_batch_t **self_p);

typedef enum {
    RST_OUTCOME_ACCEPTED = 1,   //  Meta accepted EVENT_IDS
    RST_OUTCOME_DEAD = 2,       //  EVENT_IDS went to the dead-letter store
    RST_OUTCOME_THROTTLED = 3,  //  Meta throttles PIXEL_ID: slow down, pause WAIT_MS
} rst_outcome_kind_t;

typedef struct {
    rst_outcome_kind_t kind;
    rst_str_t pixel_id;
    int64_t wait_ms;            //  THROTTLED: Meta's hint, 0 = none
    int64_t latency_ms;         //  ACCEPTED: born → accepted of the oldest event
    size_t count;
    rst_str_t *event_ids;       //  COUNT ids (ACCEPTED, DEAD)
    void *arena;
} rst_outcome_t;

//  Appends SELF as one "outcome" map to PK. Returns 0 or -1 (nothing
//  written: unknown kind, bad pixel_id or event id, more than
//  RST_PIPELINE_MAX_IDS ids, wait_ms outside 0..RST_PIPELINE_WAIT_MS_MAX).
int rst_outcome_pack (const rst_outcome_t *self, msgpack_packer *pk);

//  Decodes one "outcome" map (the whole of DATA). Returns a new outcome the
//  caller frees with rst_outcome_destroy, or NULL with the reason in ERR.
rst_outcome_t *rst_outcome_decode (const char *data, size_t len, char *err, size_t errlen);
void rst_outcome_destroy (rst_outcome_t **self_p);

//  Added by the codec's implementation (schemas/pipeline.md):

//  Name of an outcome kind as it is written on the wire ("accepted", "dead",
//  "throttled"), or "unknown".
const char *rst_outcome_kind_name (rst_outcome_kind_t kind);

//  1 if TEXT[0..LEN) is exactly one JSON object (RFC 8259, optional
//  surrounding whitespace, nesting at most 32 deep) whose strings are valid
//  UTF-8, else 0. This is the check every `capi` passes. No allocation.
int rst_pipeline_json_is_object (const char *text, size_t len);

#endif
