/*  rastro-aggregator — enriched events in, hourly funnel aggregates out.

    A thin main (STYLE.md §1): rst_node reads the arguments, the config and
    the topology; this runs the rst_aggregator actor until SIGINT/SIGTERM
    and tears it down. What the node does and the guarantees it keeps are
    in lib/rst_aggregator.c; the messages in schemas/pipeline.md, the
    tables in schemas/sql/005_analytics.sql.
*/
#include "rst_aggregator.h"
#include "rst_node.h"

RST_NODE_ACTOR (s_actor, rst_aggregator);

int
main (int argc, char **argv)
{
    return rst_node_main (
        "aggregator",
        "Keeps the hourly funnel aggregates (analytics_hourly) per owner, pool, bot,\n"
        "day and hour in the owner's time zone, utm_source and utm_campaign: clicks,\n"
        "automated clicks, starts, checkouts, purchases and revenue. Counts every event\n"
        "exactly once: from the enrichers' PUB stream (`sub`), in batches of\n"
        "[aggregator] batch_max events or batch_ms, and from the durable record (clicks,\n"
        "funnel_events) in a catch-up pass on start and every catchup_s, which counts\n"
        "whatever the stream lost (a PUB drops messages for a lagging subscriber).",
        &s_actor, argc, argv);
}
