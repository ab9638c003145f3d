/*  rastro-optimizer — spend from Meta's Insights, for profit and ROI.

    A thin main (STYLE.md §1): rst_node reads the arguments, the config and
    the topology; this runs the rst_spendsync actor until SIGINT/SIGTERM and
    tears it down. The node is the architecture's optimizer: later work adds
    its predictive alerts next to the spend sync. What the sync does and the
    guarantees it keeps are in lib/rst_spendsync.c; the tables in
    schemas/sql/007_spend.sql.
*/
#include "rst_node.h"
#include "rst_spendsync.h"

RST_NODE_ACTOR (s_actor, rst_spendsync);

int
main (int argc, char **argv)
{
    return rst_node_main (
        "optimizer",
        "Keeps campaign_spend: the spend of every enabled ad account (rastro adaccount\n"
        "add) per campaign and day, read from Meta's Insights API with the account's own\n"
        "token (RASTRO_META_GRAPH_URL, RASTRO_META_API_VERSION). Today's spend every\n"
        "[optimizer] today_every_s, the last backfill_days once when an account is added,\n"
        "and each day once more after it ended. Honours Meta's usage headers: slower at\n"
        "slow_pct, no call at all while throttled (ad_accounts.throttled_until). A campaign\n"
        "goes to the pool whose clicks carried its utm_campaign (id or name) that day.",
        &s_actor, argc, argv);
}
