/*  rastro-enricher — raw funnel events in, Meta events out.

    A thin main (STYLE.md §1): rst_node reads the arguments, the config and
    the topology; this runs the rst_enricher actor until SIGINT/SIGTERM and
    tears it down. What the node does and the guarantees it keeps are in
    lib/rst_enricher.c; the messages in schemas/events.md (in) and
    schemas/pipeline.md (out).
*/
#include "rst_enricher.h"
#include "rst_node.h"

RST_NODE_ACTOR (s_actor, rst_enricher);

int
main (int argc, char **argv)
{
    return rst_node_main (
        "enricher",
        "Turns the raw events the recorders forward into Meta events: joins them with\n"
        "their pool and pixel (cached, refreshed on NOTIFY rastro_config), classifies\n"
        "automated traffic (crawlers, link previews, tools, headless browsers, empty\n"
        "user agents, more than [enricher] ip_rate_per_min requests a minute from one\n"
        "address), publishes every enriched event on `pub`, acknowledges automated ones\n"
        "to their journal (stage meta) and pushes the others to the limiter that owns\n"
        "their pixel. A push to an absent or full limiter is dropped and counted; the\n"
        "front's journal replays the event after [front] replay_after seconds.",
        &s_actor, argc, argv);
}
