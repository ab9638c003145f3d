/*  rst_zsock — a libzmq socket created with the options every node sets.

    Each node opens its sockets the same way: a high-water mark in the
    direction the socket type carries, a bounded LINGER (so that
    zmq_ctx_term never hangs on a peer that went away) and, for PUSH
    sockets whose sends must fail at once when nobody is there,
    ZMQ_IMMEDIATE. rst_zsock_new is that one call; a socket that serves
    all the endpoints of a topology key is then attached with
    rst_topology_attach (STYLE.md §13). rst_zsock_each opens one socket per
    endpoint instead, for peers that must be addressed one by one (a shard
    per limiter or sender, an ack socket per journal).
*/
#ifndef RST_ZSOCK_H
#define RST_ZSOCK_H

#include "rst_topology.h"

#include <stddef.h>

#define RST_ZSOCK_IMMEDIATE 0x01u   //  flag: ZMQ_IMMEDIATE (queue only to connected peers)
#define RST_ZSOCK_NO_HWM    (-1)    //  hwm: leave libzmq's default

//  Creates a socket of TYPE on ZMQ_CTX (borrowed). HWM is set as
//  ZMQ_RCVHWM for PULL and SUB sockets and ZMQ_SNDHWM for the others
//  (RST_ZSOCK_NO_HWM: not set); LINGER_MS as ZMQ_LINGER; FLAGS may hold
//  RST_ZSOCK_IMMEDIATE. Returns a new socket the caller closes with
//  zmq_close, or NULL (zmq_errno () says why).
void *rst_zsock_new (void *zmq_ctx, int type, int hwm, int linger_ms, unsigned flags);

//  Opens one socket per endpoint of KEY (rst_topology_endpoints of NODE
//  INSTANCE, at most MAX) with rst_zsock_new (TYPE, HWM, LINGER_MS, FLAGS),
//  and binds or connects each to its endpoint. Writes the sockets into
//  SOCKS (the caller closes them) and the endpoint entries into EPS (the
//  caller frees them with rst_topology_endpoints_free), in the same order.
//  Returns the count, or -1 with a reason in ERR, having closed and freed
//  everything it opened.
int rst_zsock_each (void *zmq_ctx, const rst_topology_t *topo, const char *node, int instance,
                    const char *key, int type, int hwm, int linger_ms, unsigned flags,
                    void **socks, char **eps, size_t max, char *err, size_t errlen);

#endif
