/*  rastro-limiter — per-pixel token buckets between the enrichers and a batcher.

    A thin main (STYLE.md §1): rst_node reads the arguments, the config and
    the topology; this runs the rst_limiter node until SIGINT/SIGTERM and
    tears it down. What the node does and the guarantees it keeps are in
    lib/rst_limiter.c; the messages in schemas/pipeline.md.
*/
#include "rst_limiter.h"
#include "rst_node.h"

RST_NODE_ACTOR (s_actor, rst_limiter_node);

int
main (int argc, char **argv)
{
    return rst_node_main (
        "limiter",
        "Holds every event of a pixel until that pixel's token bucket allows it:\n"
        "pixels.rate_per_s events a second (else [limiter] default_rate), bursts of one\n"
        "second of rate. Events over the rate wait in a FIFO per pixel (Purchase at its\n"
        "front) and are never dropped; THROTTLED outcomes from the senders halve a\n"
        "pixel's rate and pause it, and the rate climbs back while Meta stays calm.\n"
        "Limiter i releases to batcher i.",
        &s_actor, argc, argv);
}
