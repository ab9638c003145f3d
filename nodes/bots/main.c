/*  rastro-bots — every Telegram bot of every user, from /start to delivery.

    A thin main (STYLE.md §1): rst_node reads the arguments, the config and
    the topology; this runs the rst_bots actor until SIGINT/SIGTERM. What the
    node does is in lib/rst_bots.c (threads, intake) and lib/rst_funnel.c
    (attribution, checkout, payments, delivery).
*/
#include "rst_bots.h"
#include "rst_node.h"

RST_NODE_ACTOR (s_actor, rst_bots);

int
main (int argc, char **argv)
{
    return rst_node_main (
        "bots",
        "Runs every enabled bot: long-polls getUpdates (or takes the updates the fronts\n"
        "received by webhook), attributes /start <click_id> to its click, welcomes the lead\n"
        "with the bot's offers, creates PIX charges through the bot's gateway, confirms\n"
        "payments (webhooks are hints: the charge is re-read; a reconciler re-reads pending\n"
        "charges every [bots] reconcile_s seconds), delivers access (one-person invite\n"
        "link or a message) and journals the funnel events (start, checkout, payment) that\n"
        "become ViewContent, InitiateCheckout and Purchase at Meta.",
        &s_actor, argc, argv);
}
