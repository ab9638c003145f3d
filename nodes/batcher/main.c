/*  rastro-batcher — per-pixel batches of up to 1,000 events for the senders.

    A thin main (STYLE.md §1): rst_node reads the arguments, the config and
    the topology; this runs the rst_batcher node until SIGINT/SIGTERM and
    tears it down. What the node does and the guarantees it keeps are in
    lib/rst_batcher.c; the messages in schemas/pipeline.md.
*/
#include "rst_batcher.h"
#include "rst_node.h"

RST_NODE_ACTOR (s_actor, rst_batcher_node);

int
main (int argc, char **argv)
{
    return rst_node_main (
        "batcher",
        "Groups the events its limiter releases by (owner, pixel) into batches of at\n"
        "most [batcher] batch_max events (Meta's limit: 1,000), closed after flush_ms\n"
        "(at most 1 s); Purchase events leave at once through a priority lane. Each\n"
        "batch goes to sender rst_shard_of (pixel, senders); a batch a sender cannot\n"
        "take is kept and retried.",
        &s_actor, argc, argv);
}
