/*  rst_zsock — see rst_zsock.h.
*/
#include "rst_zsock.h"

#include <assert.h>
#include <stdio.h>
#include <zmq.h>

void *
rst_zsock_new (void *zmq_ctx, int type, int hwm, int linger_ms, unsigned flags)
{
    assert (zmq_ctx);
    void *sock = zmq_socket (zmq_ctx, type);
    if (!sock)
        return NULL;
    zmq_setsockopt (sock, ZMQ_LINGER, &linger_ms, sizeof linger_ms);
    if (hwm != RST_ZSOCK_NO_HWM) {
        int option = type == ZMQ_PULL || type == ZMQ_SUB ? ZMQ_RCVHWM : ZMQ_SNDHWM;
        zmq_setsockopt (sock, option, &hwm, sizeof hwm);
    }
    if (flags & RST_ZSOCK_IMMEDIATE) {
        int one = 1;
        zmq_setsockopt (sock, ZMQ_IMMEDIATE, &one, sizeof one);
    }
    return sock;
}

int
rst_zsock_each (void *zmq_ctx, const rst_topology_t *topo, const char *node, int instance,
                const char *key, int type, int hwm, int linger_ms, unsigned flags, void **socks,
                char **eps, size_t max, char *err, size_t errlen)
{
    assert (socks && eps);
    int n = rst_topology_endpoints (topo, node, instance, key, eps, max, err, errlen);
    if (n < 0)
        return -1;
    for (int i = 0; i < n; i++) {
        const char *ep = eps[i];
        socks[i] = rst_zsock_new (zmq_ctx, type, hwm, linger_ms, flags);
        if (!socks[i]
            || (ep[0] == '@' ? zmq_bind (socks[i], ep + 1) : zmq_connect (socks[i], ep + 1))) {
            snprintf (err, errlen, "%s: libzmq cannot %s %s: %s", node,
                      ep[0] == '@' ? "bind" : "connect to", ep + 1, zmq_strerror (zmq_errno ()));
            for (int j = 0; j <= i; j++)
                if (socks[j]) {
                    zmq_close (socks[j]);
                    socks[j] = NULL;
                }
            rst_topology_endpoints_free (eps, n);
            return -1;
        }
    }
    return n;
}
