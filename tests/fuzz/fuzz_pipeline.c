/*  fuzz_pipeline — the pipeline decoders (enriched, batch, outcome) against
    arbitrary bytes.

    The input is one ZeroMQ message from another node. It is decoded as a
    stream of "enriched" maps (the way the limiter and batcher read them),
    and whole as a "batch" (the sender) and as an "outcome" (the limiters).
    Checks the decoders' promises: the offset only moves forward and stays
    within the input; a failure has a reason; a decoded message is complete
    and within its limits, its strings NUL-terminated in its arena; and
    whatever decodes packs again (pack refuses nothing decode accepted) to
    the same decoded values. AddressSanitizer and UBSan do the rest. Seeds:
    tests/fuzz/corpus/fuzz_pipeline/ (`rst_pipeline_test --write-seeds DIR`).
*/
#include "rst_meta.h"
#include "rst_pipeline.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define S_CHECK(cond)                                                                          \
    do {                                                                                       \
        if (!(cond))                                                                           \
            abort ();                                                                          \
    } while (0)

static void
s_check_str (rst_str_t s, size_t max)
{
    S_CHECK (s.ptr != NULL);
    S_CHECK (s.len <= max);
    S_CHECK (s.ptr[s.len] == 0);
}

static void
s_check_enriched (const rst_enriched_t *e)
{
    s_check_str (e->event_id, RST_EVENT_ID_MAX);
    s_check_str (e->src, RST_EVENT_SHORT_MAX);
    s_check_str (e->type, 32);
    s_check_str (e->event_name, 64);
    s_check_str (e->pixel_id, RST_EVENT_SHORT_MAX);
    s_check_str (e->automated_reason, 64);
    s_check_str (e->utm_source, RST_PIPELINE_DIM_MAX);
    s_check_str (e->utm_campaign, RST_PIPELINE_DIM_MAX);
    s_check_str (e->capi, RST_PIPELINE_CAPI_MAX);
    S_CHECK (e->seq > 0 && e->time_ms > 0 && e->owner_id > 0);
    S_CHECK (e->automated == 0 || e->automated == 1);
    S_CHECK (e->automated || rst_pipeline_json_is_object (e->capi.ptr, e->capi.len));
    //  Round trip: what decoded packs again, identically decoded.
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    S_CHECK (rst_enriched_pack (e, &pk) == 0);
    size_t off = 0;
    rst_enriched_t *again = rst_enriched_decode (sb.data, sb.size, &off, NULL, 0);
    S_CHECK (again && off == sb.size);
    S_CHECK (again->seq == e->seq && again->capi.len == e->capi.len
             && !memcmp (again->capi.ptr, e->capi.ptr, e->capi.len));
    rst_enriched_destroy (&again);
    msgpack_sbuffer_destroy (&sb);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    const char *buf = (const char *) data;
    size_t offset = 0;
    while (offset < size) {
        size_t before = offset;
        char err[200];
        rst_enriched_t *e = rst_enriched_decode (buf, size, &offset, err, sizeof err);
        S_CHECK (offset > before && offset <= size);
        if (!e) {
            S_CHECK (err[0] != 0);
            continue;
        }
        s_check_enriched (e);
        rst_enriched_destroy (&e);
        S_CHECK (e == NULL);
    }

    char err[200];
    rst_batch_t *b = rst_batch_decode (buf, size, err, sizeof err);
    if (b) {
        S_CHECK (b->count >= 1 && b->count <= RST_META_MAX_EVENTS && b->owner_id > 0);
        s_check_str (b->pixel_id, RST_EVENT_SHORT_MAX);
        for (size_t i = 0; i < b->count; i++) {
            s_check_str (b->items[i].event_id, RST_EVENT_ID_MAX);
            s_check_str (b->items[i].src, RST_EVENT_SHORT_MAX);
            s_check_str (b->items[i].capi, RST_PIPELINE_CAPI_MAX);
            S_CHECK (b->items[i].seq > 0);
        }
        msgpack_sbuffer sb;
        msgpack_sbuffer_init (&sb);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
        S_CHECK (rst_batch_pack (b, &pk) == 0);
        rst_batch_t *again = rst_batch_decode (sb.data, sb.size, NULL, 0);
        S_CHECK (again && again->count == b->count);
        rst_batch_destroy (&again);
        msgpack_sbuffer_destroy (&sb);
        rst_batch_destroy (&b);
    }
    else
        S_CHECK (err[0] != 0);

    rst_outcome_t *o = rst_outcome_decode (buf, size, err, sizeof err);
    if (o) {
        S_CHECK (o->kind >= RST_OUTCOME_ACCEPTED && o->kind <= RST_OUTCOME_THROTTLED);
        S_CHECK (o->count <= RST_PIPELINE_MAX_IDS && o->wait_ms >= 0);
        s_check_str (o->pixel_id, RST_EVENT_SHORT_MAX);
        for (size_t i = 0; i < o->count; i++)
            s_check_str (o->event_ids[i], RST_EVENT_ID_MAX);
        msgpack_sbuffer sb;
        msgpack_sbuffer_init (&sb);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
        S_CHECK (rst_outcome_pack (o, &pk) == 0);
        rst_outcome_t *again = rst_outcome_decode (sb.data, sb.size, NULL, 0);
        S_CHECK (again && again->count == o->count && again->kind == o->kind);
        rst_outcome_destroy (&again);
        msgpack_sbuffer_destroy (&sb);
        rst_outcome_destroy (&o);
    }
    else
        S_CHECK (err[0] != 0);
    return 0;
}
