/*  push_chat — pushes one chat-side funnel event (start, checkout, payment).

    Usage: bench_push_chat --push EP --type start|checkout|payment --event-id ID --seq N
                           --owner O --pool P --bot B --pixel X
                           [--src front.0] [--click-id C] [--tg-user-id U] [--lead-id L]
                           [--offer-id ID] [--offer-name NAME] [--value-cents V]
                           [--currency CUR] [--order-id ID] [--time-ms MS] [--copies K]

    Plays the bots node (or a payment webhook) towards a recorder's `in`
    (schemas/events.md): packs one event with rst_event_pack (so the packer's
    checks apply: a missing required field fails here, exit 2), and pushes
    it K times (default 1), one message each, so a test can check that a
    replay is stored once. time_ms defaults to now. Prints "pushed K" and
    exits 0. The tool waits for no ack: the recorder acks to the journal
    named by --src, which ignores sequence numbers it never wrote.
*/
#include "rst_clock.h"
#include "rst_event.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define S_LINGER_MS 5000    //  time zmq_ctx_term allows for the messages to leave

int
main (int argc, char **argv)
{
    const char *push_ep = NULL, *type = NULL;
    long copies = 1;
    rst_event_t ev;
    rst_event_init (&ev);
    ev.src = rst_str ("front.0");
    ev.time_ms = rst_clock_wall_ms ();
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp (a, "--push"))
            push_ep = v;
        else if (!strcmp (a, "--type"))
            type = v;
        else if (!strcmp (a, "--event-id"))
            ev.event_id = rst_str (v);
        else if (!strcmp (a, "--seq"))
            ev.seq = strtoull (v, NULL, 10);
        else if (!strcmp (a, "--src"))
            ev.src = rst_str (v);
        else if (!strcmp (a, "--owner"))
            ev.owner_id = atoll (v);
        else if (!strcmp (a, "--pool"))
            ev.pool_id = atoll (v);
        else if (!strcmp (a, "--bot"))
            ev.bot_id = atoll (v);
        else if (!strcmp (a, "--pixel"))
            ev.pixel_id = rst_str (v);
        else if (!strcmp (a, "--click-id"))
            ev.click_id = rst_str (v);
        else if (!strcmp (a, "--tg-user-id"))
            ev.tg_user_id = atoll (v);
        else if (!strcmp (a, "--lead-id"))
            ev.lead_id = atoll (v);
        else if (!strcmp (a, "--offer-id"))
            ev.offer_id = rst_str (v);
        else if (!strcmp (a, "--offer-name"))
            ev.offer_name = rst_str (v);
        else if (!strcmp (a, "--value-cents"))
            ev.value_cents = atoll (v);
        else if (!strcmp (a, "--currency"))
            ev.currency = rst_str (v);
        else if (!strcmp (a, "--order-id"))
            ev.order_id = rst_str (v);
        else if (!strcmp (a, "--time-ms"))
            ev.time_ms = atoll (v);
        else if (!strcmp (a, "--copies"))
            copies = atol (v);
        else
            goto usage;
    }
    if (!push_ep || !type || copies < 1)
        goto usage;
    if (!strcmp (type, "start"))
        ev.type = RST_EVENT_START;
    else if (!strcmp (type, "checkout"))
        ev.type = RST_EVENT_CHECKOUT;
    else if (!strcmp (type, "payment"))
        ev.type = RST_EVENT_PAYMENT;
    else
        goto usage;

    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    if (rst_event_pack (&ev, &pk)) {
        fprintf (stderr, "push_chat: rst_event_pack refused the event (a required field is "
                         "missing or out of range)\n");
        msgpack_sbuffer_destroy (&sb);
        return 2;
    }
    void *ctx = zmq_ctx_new ();
    void *push = zmq_socket (ctx, ZMQ_PUSH);
    int linger = S_LINGER_MS;
    zmq_setsockopt (push, ZMQ_LINGER, &linger, sizeof linger);
    int rc = 0;
    if (zmq_connect (push, push_ep)) {
        fprintf (stderr, "push_chat: libzmq: connect %s: %s\n", push_ep, zmq_strerror (zmq_errno ()));
        rc = 1;
    }
    for (long k = 0; k < copies && rc == 0; k++)
        if (zmq_send (push, sb.data, sb.size, 0) < 0) {
            fprintf (stderr, "push_chat: libzmq: send: %s\n", zmq_strerror (zmq_errno ()));
            rc = 1;
        }
    zmq_close (push);
    zmq_ctx_term (ctx);
    msgpack_sbuffer_destroy (&sb);
    if (rc == 0)
        printf ("pushed %ld\n", copies);
    return rc;
usage:
    fprintf (stderr, "usage: bench_push_chat --push EP --type start|checkout|payment --event-id ID "
                     "--seq N --owner O --pool P --bot B --pixel X [--src front.0] [--click-id C] "
                     "[--tg-user-id U] [--lead-id L] [--offer-id ID] [--offer-name NAME] "
                     "[--value-cents V] [--currency CUR] [--order-id ID] [--time-ms MS] "
                     "[--copies K]\n");
    return 2;
}
