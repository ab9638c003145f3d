/*  rst_front — the public HTTP node: redirects, inbound webhooks, health and metrics.

    h2o (libh2o-evloop) with one event loop per thread, each on its own
    SO_REUSEPORT listener. Routes:

      GET|HEAD /go/<slug>   302 to https://t.me/<bot>?start=<click_id>, with
                            Cache-Control: no-store, after the click is in the
                            journal. 400 bad slug / URL or header too long,
                            404 unknown or disabled pool, 503 + Retry-After
                            when no bot is usable or the journal refused the
                            write. Nothing is journaled for any of these.
      POST /telegram/<bot>  a Telegram update for bot username <bot> (any
                            case) in webhook mode: 200 (empty body) once the
                            update is in the inbox journal, fsynced. 401 when
                            X-Telegram-Bot-Api-Secret-Token is missing or its
                            SHA-256 is not the bot's webhook_secret_hash, or
                            the bot is unknown or polls (one answer, the same
                            work, for all of them); 400 when the body is not
                            a JSON object with an integer update_id ≥ 0; 413
                            over RST_INBOX_MAX_BODY (1 MiB); 405 not POST.
      POST /webhook/<gw>    a payment notice from gateway <gw> (mercadopago,
                            pushinpay, syncpay; else 404): parsed and
                            authenticated by rst_gateway against every
                            account of that gateway in the snapshot. 400 bad
                            notice, 200 "ok" for one that is not about a
                            charge (nothing journaled), 401 "invalid
                            signature" (logged, rate-limited, never the
                            signature), 413 over RST_GW_WEBHOOK_MAX_BODY,
                            else 200 "ok" once it is in the inbox journal,
                            fsynced.
                            Both: 503 + Retry-After when the journal refused
                            the write, before the snapshot is loaded, or when
                            the topology's [front] has no `inbox` ("webhooks
                            not configured"). Bodies over 2 MiB get h2o's own
                            413 before any handler runs.
      GET /healthz          200 "ok" once pools are loaded, else 503.
      GET /metrics          Prometheus text of every thread, the keepers and
                            the API pool (rastro_api_*).
      /api/v1/...           the dashboard's JSON API (rst_api_server.h): each
                            request is copied into a job for the API worker
                            pool (RASTRO_API_THREADS threads, one PGconn each)
                            and answered when a worker posts it back; the
                            event loops never wait for PostgreSQL.
      /                     the dashboard's static files from RASTRO_WEB_DIR
                            (h2o's file handler) with nosniff, X-Frame-Options
                            DENY, Referrer-Policy same-origin and a CSP
                            (script-src 'self' 'unsafe-eval' for Alpine.js);
                            404 with a hint to run scripts/setup when the
                            directory does not exist.
      The routes above are registered in this order, first prefix wins.

    Click path: on_go validates and picks the bot from the thread's own
    snapshot copy, builds the click in the request's memory pool, and parks
    the request. At the end of the loop iteration (h2o's zero timeout) the
    thread packs every parked click, writes them all in one journal
    transaction (group commit), answers them, then pushes the packed batch
    downstream in one ZeroMQ message with ZMQ_DONTWAIT — never blocking. If
    the push fails, the keeper (rst_keeper) replays from the journal.

    Webhook path (strict mode): the same group commit, once per loop
    iteration, into a second journal (topology key `inbox`, required ack
    `stored`) committed with fsync before any 200; the entries (rst_inbox
    messages, schemas/inbox.md) are then pushed to `inbox_out` (the bots
    node). A second keeper binds `inbox_acks` and replays to `inbox_out`;
    its metrics are named rastro_inbox_journal_*.

    Threads: N HTTP threads, the keeper threads, the snapshot thread (an
    rst_pgwatch: a PostgreSQL connection that LISTENs on rastro_config and
    sends each HTTP thread a fresh copy of the pools, webhook bots and
    gateway webhook secrets when they change, or
    every RST_PGWATCH_REFRESH_S seconds). The only shared mutable state is each
    thread's published metrics copy, behind its own mutex, copied once a second.
*/
#ifndef RST_FRONT_H
#define RST_FRONT_H

#include "rst_config.h"
#include "rst_topology.h"

typedef struct rst_front_t rst_front_t;

//  Builds the front for INSTANCE: opens the journal, binds the listeners and
//  starts every thread. CFG and TOPO are borrowed and must outlive the front.
//  Returns a new front the caller owns, or NULL with a reason in ERR.
rst_front_t *rst_front_new (const rst_config_t *cfg, const rst_topology_t *topo, int instance,
                            char *err, size_t errlen);

//  Stops every thread, closes the journal after a final sync, frees the
//  front and sets *SELF_P to NULL. Safe on NULL.
void rst_front_destroy (rst_front_t **self_p);

//  Writes the heartbeat file with the current metrics. Returns 0 or -1.
int rst_front_heartbeat (rst_front_t *self);

#endif
