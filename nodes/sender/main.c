/*  rastro-sender — delivers batches to Meta's Conversions API.

    A thin main (STYLE.md §1): rst_node reads the arguments, the config and
    the topology; this runs the rst_sender actor until SIGINT/SIGTERM and
    tears it down. What the node does, the states of a batch and the
    guarantees it keeps are described in lib/rst_sender.c and lib/rst_spool.c.
*/
#include "rst_node.h"
#include "rst_sender.h"

RST_NODE_ACTOR (s_actor, rst_sender);

int
main (int argc, char **argv)
{
    return rst_node_main (
        "sender",
        "Posts the batchers' batches to Meta's Conversions API\n"
        "(RASTRO_META_GRAPH_URL/RASTRO_META_API_VERSION/<pixel>/events). Every batch\n"
        "stays in an LMDB spool (topology [sender] spool) until Meta accepted it or it\n"
        "was dead-lettered; transient failures are retried with backoff, permanent ones\n"
        "go to dead_letters (`rastro dlq`). Settings: [sender] timeout_ms, max_inflight,\n"
        "pixel_inflight, backoff_min_ms, backoff_max_ms, spool_max_mb.",
        &s_actor, argc, argv);
}
