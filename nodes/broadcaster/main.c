/*  rastro-broadcaster — the live feed: today's numbers over WebSocket.

    A thin main (STYLE.md §1): rst_node reads the arguments, the config and
    the topology; this runs the rst_broadcaster actor until SIGINT/SIGTERM
    and tears it down. What the node does, its threads and the guarantees
    it keeps are in lib/rst_broadcaster.c; the protocol in
    schemas/websocket.md.
*/
#include "rst_broadcaster.h"
#include "rst_node.h"

RST_NODE_ACTOR (s_actor, rst_broadcaster);

int
main (int argc, char **argv)
{
    return rst_node_main (
        "broadcaster",
        "Serves the dashboard's live feed: ws://<host>:<RASTRO_WS_PORT>/ws (default\n"
        "port 8090, HTTP/1.1). A client logged in with the rastro_session cookie\n"
        "subscribes to its bots and pools and gets a snapshot of today's numbers (in\n"
        "its time zone: clicks, automated clicks, starts, checkouts, purchases,\n"
        "revenue), then coalesced updates (at most one every [broadcaster] push_ms)\n"
        "whenever the aggregator commits new counts (NOTIFY rastro_analytics), and\n"
        "every refresh_s. A client that does not read is skipped, then closed after\n"
        "stuck_s. Protocol: schemas/websocket.md.",
        &s_actor, argc, argv);
}
