/*  rastro-recorder — stores journaled clicks in PostgreSQL, acks the journals.

    A thin main (STYLE.md §1): rst_node reads the arguments, the config and
    the topology; this runs the rst_recorder actor until SIGINT/SIGTERM and
    tears it down. Everything the node does, and the guarantees it keeps,
    are described in lib/rst_recorder.c; the messages in schemas/events.md.
*/
#include "rst_node.h"
#include "rst_recorder.h"

RST_NODE_ACTOR (s_actor, rst_recorder);

int
main (int argc, char **argv)
{
    return rst_node_main (
        "recorder",
        "Stores every click the fronts journaled in PostgreSQL's `clicks` table, in\n"
        "batches (topology [recorder] batch_max, batch_ms), and acknowledges each event\n"
        "to the journal it came from once its batch committed.",
        &s_actor, argc, argv);
}
