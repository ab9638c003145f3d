/*  inbox_pull — a stand-in for the bots node's intake of inbound webhooks.

    Usage: bench_inbox_pull --topology FILE [--instance N] [--out FILE] [--no-ack]

    Binds the `in` endpoint of [bots] instance N (default 0) of the topology
    ({data} = RASTRO_DATA_DIR), decodes every inbox message the fronts push
    (rst_inbox_decode, schemas/inbox.md), prints each as one JSON line on
    --out (default stdout; flushed per line):

        {"type":"tg_update","src":"front.0","seq":1,"time_ms":...,"bot_id":3,
         "update_id":815000001,"body":"{...}"}
        {"type":"gw_webhook",...,"gateway":"mercadopago","charge_id":"123",
         "query":"data.id=123&type=payment","body":"..."}

    and acks it with RST_JOURNAL_ACK_STORED to the journal named by its src
    through [bots] `inbox_acks` (rst_acks), unless --no-ack. A map that is
    not a valid inbox message prints {"invalid":true}. Runs until SIGINT or
    SIGTERM. Used by tests/integration/test_webhooks.sh and the webhook
    benchmark.
*/
#include "rst_acks.h"
#include "rst_inbox.h"
#include "rst_journal.h"
#include "rst_topology.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

static volatile sig_atomic_t s_stop;

static void
s_on_signal (int sig)
{
    (void) sig;
    s_stop = 1;
}

//  Adds BYTES[0..LEN) to OBJ as the string KEY (a NUL inside ends it).
static void
s_add_bytes (cJSON *obj, const char *key, const char *bytes, size_t len)
{
    char *copy = malloc (len + 1);
    if (!copy)
        return;
    memcpy (copy, bytes, len);
    copy[len] = 0;
    cJSON_AddStringToObject (obj, key, copy);
    free (copy);
}

//  Prints MSG as one JSON line on OUT.
static void
s_print (FILE *out, const rst_inbox_msg_t *msg)
{
    cJSON *obj = cJSON_CreateObject ();
    cJSON_AddStringToObject (obj, "type", rst_inbox_type_name (msg->type));
    cJSON_AddStringToObject (obj, "src", msg->src);
    cJSON_AddNumberToObject (obj, "seq", (double) msg->seq);
    cJSON_AddNumberToObject (obj, "time_ms", (double) msg->time_ms);
    if (msg->type == RST_INBOX_TG_UPDATE) {
        cJSON_AddNumberToObject (obj, "bot_id", (double) msg->bot_id);
        cJSON_AddNumberToObject (obj, "update_id", (double) msg->update_id);
    }
    else {
        cJSON_AddStringToObject (obj, "gateway", msg->gateway);
        cJSON_AddStringToObject (obj, "charge_id", msg->charge_id);
        if (msg->query)
            s_add_bytes (obj, "query", msg->query, msg->query_len);
    }
    s_add_bytes (obj, "body", msg->body, msg->body_len);
    char *text = cJSON_PrintUnformatted (obj);
    if (text)
        fprintf (out, "%s\n", text);
    fflush (out);
    free (text);
    cJSON_Delete (obj);
}

int
main (int argc, char **argv)
{
    const char *topology_file = NULL, *out_file = NULL;
    int instance = 0, ack = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp (argv[i], "--topology") && i + 1 < argc)
            topology_file = argv[++i];
        else if (!strcmp (argv[i], "--instance") && i + 1 < argc)
            instance = atoi (argv[++i]);
        else if (!strcmp (argv[i], "--out") && i + 1 < argc)
            out_file = argv[++i];
        else if (!strcmp (argv[i], "--no-ack"))
            ack = 0;
        else {
            fprintf (stderr, "usage: bench_inbox_pull --topology FILE [--instance N] [--out FILE] [--no-ack]\n");
            return 2;
        }
    }
    const char *data_dir = getenv ("RASTRO_DATA_DIR");
    if (!topology_file || !data_dir) {
        fprintf (stderr, "inbox_pull: --topology and RASTRO_DATA_DIR are required\n");
        return 2;
    }
    char err[512];
    rst_topology_t *topo = rst_topology_load (topology_file, data_dir, err, sizeof err);
    if (!topo) {
        fprintf (stderr, "inbox_pull: %s\n", err);
        return 1;
    }
    FILE *out = out_file ? fopen (out_file, "a") : stdout;
    if (!out) {
        fprintf (stderr, "inbox_pull: %s: %s\n", out_file, strerror (errno));
        return 1;
    }
    struct sigaction sa = {.sa_handler = s_on_signal};    //  no SA_RESTART: zmq_poll returns EINTR
    sigaction (SIGINT, &sa, NULL);
    sigaction (SIGTERM, &sa, NULL);

    int rc = 1;
    void *ctx = zmq_ctx_new ();
    void *pull = zmq_socket (ctx, ZMQ_PULL);
    int linger = 0;
    zmq_setsockopt (pull, ZMQ_LINGER, &linger, sizeof linger);
    rst_acks_t *acks = NULL;
    if (rst_topology_attach (topo, pull, "bots", instance, "in", err, sizeof err)) {
        fprintf (stderr, "inbox_pull: %s\n", err);
        goto done;
    }
    acks = rst_acks_new (ctx, topo, "bots", instance, "inbox_acks", 0, err, sizeof err);
    if (!acks) {
        fprintf (stderr, "inbox_pull: %s\n", err);
        goto done;
    }
    fprintf (stderr, "inbox_pull: ready\n");
    while (!s_stop) {
        zmq_pollitem_t item = {pull, 0, ZMQ_POLLIN, 0};
        if (zmq_poll (&item, 1, 200) <= 0)
            continue;
        zmq_msg_t msg;
        zmq_msg_init (&msg);
        if (zmq_msg_recv (&msg, pull, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (&msg);
            continue;
        }
        const char *data = zmq_msg_data (&msg);
        size_t len = zmq_msg_size (&msg), offset = 0;
        while (offset < len) {
            rst_inbox_msg_t m;
            int got = rst_inbox_decode (data, len, &offset, &m);
            if (got == 0) {
                s_print (out, &m);
                if (ack)
                    rst_acks_add (acks, m.src, strlen (m.src), m.seq);
            }
            else {
                fprintf (out, "{\"invalid\":true}\n");
                fflush (out);
            }
        }
        zmq_msg_close (&msg);
        if (ack) {
            rst_acks_tally_t tally = rst_acks_flush (acks, RST_JOURNAL_ACK_STORED);
            if (tally.failed)
                fprintf (stderr, "inbox_pull: %zu acks not sent\n", tally.failed);
        }
    }
    rc = 0;
done:
    rst_acks_destroy (&acks);
    zmq_close (pull);
    zmq_ctx_term (ctx);
    if (out != stdout)
        fclose (out);
    rst_topology_destroy (&topo);
    return rc;
}
