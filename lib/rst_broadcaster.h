/*  rst_broadcaster — the live feed: today's numbers pushed over WebSocket.

    The broadcaster node's actor (nodes/broadcaster/main.c is a thin main
    over it; issue 5 §5). A logged-in dashboard opens
    ws://<host>:<RASTRO_WS_PORT>/ws (HTTP/1.1 only), subscribes to some of
    its bots and pools, and gets a snapshot of today's absolute numbers (in
    the owner's time zone) followed by coalesced updates whenever the
    aggregator commits new counts. The protocol is schemas/websocket.md;
    the messages are built by rst_bcast. A feed lives only as long as the
    session it was opened with: when that session ends (POST /logout, which
    sends NOTIFY rastro_sessions; expiry; the row deleted by any means,
    found at the next refresh_s check) the feed is closed with code
    RST_BROADCASTER_CLOSE_SESSION_ENDED. Threads, states and guarantees:
    rst_broadcaster.c.

    Settings: the port from rst_config's ws_port (RASTRO_WS_PORT, default
    8090); the rest from the topology's [broadcaster] section (keys and
    defaults below). The Origin
    check uses RASTRO_PUBLIC_URL (rst_config's public_url).
*/
#ifndef RST_BROADCASTER_H
#define RST_BROADCASTER_H

#include "rst_config.h"
#include "rst_topology.h"

#include <signal.h>
#include <stddef.h>

#define RST_BROADCASTER_PORT_DEFAULT          8090
#define RST_BROADCASTER_CHANNEL               "rastro_analytics"  //  aggregator's NOTIFY channel
#define RST_BROADCASTER_SESSIONS_CHANNEL      "rastro_sessions"   //  rst_auth's logout NOTIFY (user id)
#define RST_BROADCASTER_CLOSE_SESSION_ENDED   4001    //  close code: the feed's session ended

//  Topology defaults ([broadcaster] keys).
#define RST_BROADCASTER_PUSH_MS_DEFAULT       250     //  push_ms: at most one push per client per
#define RST_BROADCASTER_PING_S_DEFAULT        30      //  ping_s: ping every client this often
#define RST_BROADCASTER_REFRESH_S_DEFAULT     5       //  refresh_s: re-read every watched owner
                                                      //  and re-check every client's session
#define RST_BROADCASTER_STUCK_S_DEFAULT       30      //  stuck_s: close a client not draining
#define RST_BROADCASTER_QUEUE_KB_DEFAULT      1024    //  max_queue_kb: close a client queueing more
#define RST_BROADCASTER_MAX_CLIENTS_DEFAULT   10000   //  max_clients: more get 503
#define RST_BROADCASTER_MAX_IDS_DEFAULT       1000    //  max_ids: per kind in one subscribe
#define RST_BROADCASTER_SNDBUF_KB_DEFAULT     256     //  sndbuf_kb: kernel send buffer per client

typedef struct rst_broadcaster_t rst_broadcaster_t;

//  Builds broadcaster INSTANCE: reads the port from CFG and the
//  [broadcaster] settings (each checked against its range), and opens
//  the listening socket (so that a busy port fails here, at start). The
//  database thread starts in rst_broadcaster_run. CFG and TOPO are
//  borrowed and must outlive the broadcaster. Returns a new broadcaster
//  the caller owns, or NULL with a reason in ERR.
rst_broadcaster_t *rst_broadcaster_new (const rst_config_t *cfg, const rst_topology_t *topo,
                                        int instance, char *err, size_t errlen);

//  Closes every connection and the listener, frees the broadcaster and
//  sets *SELF_P to NULL. Safe on NULL.
void rst_broadcaster_destroy (rst_broadcaster_t **self_p);

//  Logs the effective settings.
void rst_broadcaster_print (const rst_broadcaster_t *self);

//  Runs the event loop (this thread) and the database thread until *STOP
//  becomes non-zero, then closes every client and joins the database
//  thread. Returns 0, or -1 when the database thread cannot start.
int rst_broadcaster_run (rst_broadcaster_t *self, volatile sig_atomic_t *stop);

#endif
