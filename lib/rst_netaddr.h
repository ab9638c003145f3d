/*  rst_netaddr — client addresses behind trusted proxies.

    RASTRO_TRUSTED_PROXIES lists the addresses or CIDRs (IPv4 and IPv6) of
    the reverse proxies whose X-Forwarded-For header is believed. The client
    address of a request is the peer address, unless the peer is trusted: then
    X-Forwarded-For is read from the right, skipping trusted hops, and the
    first untrusted (valid) address is the client. A malformed entry stops the
    walk at the last good hop, so a client can never inject an address by
    prepending one. IPv4-mapped IPv6 peers (::ffff:a.b.c.d) count as IPv4.
*/
#ifndef RST_NETADDR_H
#define RST_NETADDR_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define RST_NETADDR_MAX_CIDRS 64
#define RST_NETADDR_TEXT_MAX  INET6_ADDRSTRLEN

typedef struct {
    int family;             //  AF_INET or AF_INET6
    uint8_t addr[16];       //  network byte order; IPv4 in the first 4 bytes
    int prefix;             //  prefix length in bits
} rst_cidr_t;

typedef struct {
    size_t count;
    rst_cidr_t cidrs[RST_NETADDR_MAX_CIDRS];
} rst_cidr_list_t;

//  Parses a comma-separated list ("10.0.0.1, 192.168.0.0/16, ::1") into
//  SELF. An empty or NULL list trusts nobody. Returns 0, or -1 with the bad
//  entry named in ERR.
int rst_cidr_list_parse (rst_cidr_list_t *self, const char *list, char *err, size_t errlen);

//  1 if SA (AF_INET or AF_INET6) is inside one of the CIDRs, else 0.
int rst_cidr_list_contains (const rst_cidr_list_t *self, const struct sockaddr *sa);

//  Writes the client address of a request (see the banner) as text into OUT
//  (at least RST_NETADDR_TEXT_MAX bytes). XFF may be NULL. Returns 0, or -1
//  if PEER is not an IP address.
int rst_client_address (const rst_cidr_list_t *trusted, const struct sockaddr *peer,
                        const char *xff, size_t xff_len, char *out, size_t outlen);

//  Opens a TCP listener on PORT on every address (IPv6 dual-stack, else
//  IPv4), with SO_REUSEPORT when REUSEPORT (one listener per event loop) and
//  the given BACKLOG. Returns the fd, or -1 with a reason in ERR that names
//  PORT_SETTING (e.g. "RASTRO_HTTP_PORT") as the way to choose another port.
int rst_tcp_listen (int port, int reuseport, int backlog, const char *port_setting, char *err,
                    size_t errlen);

#endif
