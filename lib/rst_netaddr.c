/*  rst_netaddr — see rst_netaddr.h. Pure functions over inet_pton/inet_ntop.
*/
#include "rst_netaddr.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

//  Parses a bare address into FAMILY/ADDR. Returns 0 or -1.
static int
s_parse_addr (const char *text, int *family, uint8_t addr[16])
{
    memset (addr, 0, 16);
    if (inet_pton (AF_INET, text, addr) == 1) {
        *family = AF_INET;
        return 0;
    }
    if (inet_pton (AF_INET6, text, addr) == 1) {
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (!memcmp (addr, mapped, 12)) {
            memmove (addr, addr + 12, 4);
            memset (addr + 4, 0, 12);
            *family = AF_INET;
        }
        else
            *family = AF_INET6;
        return 0;
    }
    return -1;
}

int
rst_cidr_list_parse (rst_cidr_list_t *self, const char *list, char *err, size_t errlen)
{
    memset (self, 0, sizeof *self);
    if (!list)
        return 0;
    const char *p = list;
    while (*p) {
        while (*p == ',' || isspace ((unsigned char) *p))
            p++;
        if (!*p)
            break;
        const char *end = p;
        while (*end && *end != ',' && !isspace ((unsigned char) *end))
            end++;
        char item[80];
        size_t n = (size_t) (end - p);
        if (n >= sizeof item || self->count == RST_NETADDR_MAX_CIDRS) {
            snprintf (err, errlen, "trusted proxies: entry '%.*s' too long or too many entries",
                      (int) (n > 60 ? 60 : n), p);
            return -1;
        }
        memcpy (item, p, n);
        item[n] = 0;
        rst_cidr_t *c = &self->cidrs[self->count];
        char *slash = strchr (item, '/');
        if (slash)
            *slash = 0;
        if (s_parse_addr (item, &c->family, c->addr)) {
            snprintf (err, errlen, "trusted proxies: '%s' is not an IP address or CIDR", item);
            return -1;
        }
        int max = c->family == AF_INET ? 32 : 128;
        c->prefix = max;
        if (slash) {
            char *e;
            long v = strtol (slash + 1, &e, 10);
            if (e == slash + 1 || *e || v < 0 || v > max) {
                snprintf (err, errlen, "trusted proxies: bad prefix length in '%s/%s'", item,
                          slash + 1);
                return -1;
            }
            c->prefix = (int) v;
        }
        self->count++;
        p = end;
    }
    return 0;
}

static int
s_contains (const rst_cidr_list_t *self, int family, const uint8_t addr[16])
{
    for (size_t i = 0; i < self->count; i++) {
        const rst_cidr_t *c = &self->cidrs[i];
        if (c->family != family)
            continue;
        int bits = c->prefix, byte = 0;
        while (bits >= 8 && addr[byte] == c->addr[byte]) {
            bits -= 8;
            byte++;
        }
        if (bits >= 8)
            continue;
        if (bits == 0)
            return 1;
        uint8_t mask = (uint8_t) (0xff << (8 - bits));
        if ((addr[byte] & mask) == (c->addr[byte] & mask))
            return 1;
    }
    return 0;
}

//  Extracts FAMILY/ADDR from a socket address. Returns 0 or -1.
static int
s_from_sockaddr (const struct sockaddr *sa, int *family, uint8_t addr[16])
{
    memset (addr, 0, 16);
    if (sa->sa_family == AF_INET) {
        memcpy (addr, &((const struct sockaddr_in *) sa)->sin_addr, 4);
        *family = AF_INET;
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        const uint8_t *a = ((const struct sockaddr_in6 *) sa)->sin6_addr.s6_addr;
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (!memcmp (a, mapped, 12)) {
            memcpy (addr, a + 12, 4);
            *family = AF_INET;
        }
        else {
            memcpy (addr, a, 16);
            *family = AF_INET6;
        }
        return 0;
    }
    return -1;
}

int
rst_cidr_list_contains (const rst_cidr_list_t *self, const struct sockaddr *sa)
{
    int family;
    uint8_t addr[16];
    if (s_from_sockaddr (sa, &family, addr))
        return 0;
    return s_contains (self, family, addr);
}

int
rst_client_address (const rst_cidr_list_t *trusted, const struct sockaddr *peer, const char *xff,
                    size_t xff_len, char *out, size_t outlen)
{
    int family;
    uint8_t addr[16];
    if (s_from_sockaddr (peer, &family, addr))
        return -1;
    if (xff && s_contains (trusted, family, addr)) {
        //  Walk X-Forwarded-For from the right.
        size_t end = xff_len;
        while (end > 0) {
            size_t start = end;
            while (start > 0 && xff[start - 1] != ',')
                start--;
            size_t a = start, b = end;
            while (a < b && isspace ((unsigned char) xff[a]))
                a++;
            while (b > a && isspace ((unsigned char) xff[b - 1]))
                b--;
            char item[64];
            int hop_family;
            uint8_t hop[16];
            if (b - a == 0 || b - a >= sizeof item)
                break;
            memcpy (item, xff + a, b - a);
            item[b - a] = 0;
            if (s_parse_addr (item, &hop_family, hop))
                break;
            family = hop_family;
            memcpy (addr, hop, 16);
            if (!s_contains (trusted, family, addr))
                break;
            if (start == 0)
                break;
            end = start - 1;
        }
    }
    if (!inet_ntop (family, addr, out, (socklen_t) outlen))
        return -1;
    return 0;
}

int
rst_tcp_listen (int port, int reuseport, int backlog, const char *port_setting, char *err,
                size_t errlen)
{
    int one = 1, zero = 0;
    int fd = socket (AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
        struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons ((uint16_t) port),
                                  .sin6_addr = in6addr_any};
        setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (reuseport)
            setsockopt (fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
        setsockopt (fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
        if (bind (fd, (struct sockaddr *) &a6, sizeof a6) == 0 && listen (fd, backlog) == 0)
            return fd;
        close (fd);
    }
    fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf (err, errlen, "socket: %s", strerror (errno));
        return -1;
    }
    struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_port = htons ((uint16_t) port),
                             .sin_addr.s_addr = htonl (INADDR_ANY)};
    setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuseport)
        setsockopt (fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (bind (fd, (struct sockaddr *) &a4, sizeof a4) || listen (fd, backlog)) {
        snprintf (err, errlen, "cannot listen on port %d: %s (set %s)", port, strerror (errno),
                  port_setting);
        close (fd);
        return -1;
    }
    return fd;
}
