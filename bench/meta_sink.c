//  bench/meta_sink.c — a minimal, fast stand-in for Meta's Conversions API,
//  for throughput benchmarks only (bench/pipeline.sh). Not a validator: the
//  validating fake is tests/fakes/fake_meta.py; this one exists so that the
//  fake's Python CPU time is out of the critical path at 10k+ events/s.
//
//  usage: bench_meta_sink --port P [--host 127.0.0.1]
//
//  POST .../events   (HTTP/1.1, Content-Length, keep-alive)
//      -> 200 {"events_received":N,"messages":[],"fbtrace_id":"sink"}
//      N = occurrences of "event_id":" in the body; each event_id is
//      remembered (64-bit FNV-1a hash, open addressing) to count duplicates.
//  GET /_fake/health -> {"ok":true}
//  GET /_fake/stats  -> {"requests":R,"events":E,"unique":U,"duplicates":D,
//                        "bytes":B,"last_accept_unix":T}
//  POST /_fake/config with body containing "reset" -> counters and ids forgotten
//
//  One thread, epoll, level-triggered. Loopback benchmark use only.

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

typedef struct {
    int fd;
    char *buf;
    size_t len, cap;
} conn_t;

static uint64_t *s_set;
static size_t s_set_cap, s_set_n;
static uint64_t s_requests, s_events, s_dups, s_bytes;
static double s_last_accept;

static double
s_now (void)
{
    struct timeval tv;
    gettimeofday (&tv, NULL);
    return (double) tv.tv_sec + tv.tv_usec / 1e6;
}

static void
s_set_reset (size_t cap)
{
    free (s_set);
    s_set_cap = cap;
    s_set_n = 0;
    s_set = calloc (cap, sizeof *s_set);
    if (!s_set) {
        perror ("calloc");
        exit (1);
    }
}

static int
s_set_insert (uint64_t h)   //  1 = new, 0 = already there
{
    if (h == 0)
        h = 1;
    if ((s_set_n + 1) * 2 > s_set_cap) {
        uint64_t *old = s_set;
        size_t old_cap = s_set_cap;
        s_set = NULL;
        s_set_reset (old_cap * 2);
        for (size_t i = 0; i < old_cap; i++)
            if (old[i])
                s_set_insert (old[i]);
        free (old);
    }
    size_t i = h & (s_set_cap - 1);
    while (s_set[i]) {
        if (s_set[i] == h)
            return 0;
        i = (i + 1) & (s_set_cap - 1);
    }
    s_set[i] = h;
    s_set_n++;
    return 1;
}

static void
s_reply (int fd, int status, const char *body)
{
    char head[256];
    size_t blen = strlen (body);
    int n = snprintf (head, sizeof head,
                      "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\n\r\n",
                      status, status == 200 ? "OK" : "Not Found", blen);
    char out[1024];
    if (n > 0 && (size_t) n + blen < sizeof out) {
        memcpy (out, head, (size_t) n);
        memcpy (out + n, body, blen);
        size_t total = (size_t) n + blen, off = 0;
        while (off < total) {
            ssize_t w = write (fd, out + off, total - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                return;   //  the peer goes away; the next read sees it
            off += (size_t) w;
        }
    }
}

static size_t
s_count_events (const char *body, size_t len)
{
    static const char key[] = "\"event_id\":\"";
    const size_t klen = sizeof key - 1;
    size_t n = 0;
    const char *p = body, *end = body + len;
    while ((p = memmem (p, (size_t) (end - p), key, klen)) != NULL) {
        p += klen;
        const char *q = memchr (p, '"', (size_t) (end - p));
        if (!q)
            break;
        uint64_t h = 14695981039346656037ULL;
        for (const char *c = p; c < q; c++)
            h = (h ^ (unsigned char) *c) * 1099511628211ULL;
        if (!s_set_insert (h))
            s_dups++;
        n++;
        p = q;
    }
    return n;
}

//  Handles every complete request in c->buf. Returns -1 to close.
static int
s_handle (conn_t *c)
{
    for (;;) {
        char *hend = memmem (c->buf, c->len, "\r\n\r\n", 4);
        if (!hend)
            return c->len > 65536 ? -1 : 0;
        size_t hlen = (size_t) (hend - c->buf) + 4;
        size_t clen = 0;
        //  Content-Length, case-insensitive.
        for (char *l = c->buf; l && l < hend; ) {
            char *nl = memchr (l, '\n', (size_t) (hend - l));
            if (strncasecmp (l, "Content-Length:", 15) == 0)
                clen = strtoull (l + 15, NULL, 10);
            l = nl ? nl + 1 : NULL;
        }
        if (c->len < hlen + clen)
            return 0;
        char *body = c->buf + hlen;
        char buf[512];
        if (strncmp (c->buf, "POST ", 5) == 0 && memmem (c->buf, hlen, "/_fake/config", 13)) {
            if (memmem (body, clen, "reset", 5)) {
                s_requests = s_events = s_dups = s_bytes = 0;
                s_last_accept = 0;
                s_set_reset (1u << 20);
            }
            s_reply (c->fd, 200, "{\"ok\":true}");
        }
        else if (strncmp (c->buf, "POST ", 5) == 0) {
            size_t n = s_count_events (body, clen);
            s_requests++;
            s_events += n;
            s_bytes += clen;
            s_last_accept = s_now ();
            snprintf (buf, sizeof buf,
                      "{\"events_received\":%zu,\"messages\":[],\"fbtrace_id\":\"sink\"}", n);
            s_reply (c->fd, 200, buf);
        }
        else if (memmem (c->buf, hlen, "/_fake/stats", 12)) {
            snprintf (buf, sizeof buf,
                      "{\"requests\":%llu,\"events\":%llu,\"unique\":%llu,\"duplicates\":%llu,"
                      "\"bytes\":%llu,\"last_accept_unix\":%.6f}",
                      (unsigned long long) s_requests, (unsigned long long) s_events,
                      (unsigned long long) s_set_n, (unsigned long long) s_dups,
                      (unsigned long long) s_bytes, s_last_accept);
            s_reply (c->fd, 200, buf);
        }
        else if (memmem (c->buf, hlen, "/_fake/health", 13))
            s_reply (c->fd, 200, "{\"ok\":true}");
        else
            s_reply (c->fd, 404, "{}");
        size_t used = hlen + clen;
        memmove (c->buf, c->buf + used, c->len - used);
        c->len -= used;
    }
}

int
main (int argc, char **argv)
{
    const char *host = "127.0.0.1";
    int port = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp (argv[i], "--port") == 0 && i + 1 < argc)
            port = atoi (argv[++i]);
        else if (strcmp (argv[i], "--host") == 0 && i + 1 < argc)
            host = argv[++i];
        else {
            fprintf (stderr, "usage: %s --port P [--host 127.0.0.1]\n", argv[0]);
            return 2;
        }
    }
    if (port <= 0) {
        fprintf (stderr, "meta_sink: --port is required\n");
        return 2;
    }
    signal (SIGPIPE, SIG_IGN);
    s_set_reset (1u << 20);
    int lfd = socket (AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt (lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons ((uint16_t) port)};
    if (inet_pton (AF_INET, host, &a.sin_addr) != 1 || bind (lfd, (struct sockaddr *) &a, sizeof a)
        || listen (lfd, 128)) {
        perror ("meta_sink: bind/listen");
        return 1;
    }
    int ep = epoll_create1 (0);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl (ep, EPOLL_CTL_ADD, lfd, &ev);
    fprintf (stderr, "meta_sink: listening on %s:%d\n", host, port);
    struct epoll_event evs[64];
    for (;;) {
        int n = epoll_wait (ep, evs, 64, -1);
        if (n < 0 && errno == EINTR)
            continue;
        for (int i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;
            if (!c) {
                int fd = accept4 (lfd, NULL, NULL, 0);
                if (fd < 0)
                    continue;
                setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                c = calloc (1, sizeof *c);
                c->fd = fd;
                c->cap = 1 << 16;
                c->buf = malloc (c->cap);
                struct epoll_event cev = {.events = EPOLLIN, .data.ptr = c};
                epoll_ctl (ep, EPOLL_CTL_ADD, fd, &cev);
                continue;
            }
            if (c->cap - c->len < 65536) {
                c->cap *= 2;
                char *nb = realloc (c->buf, c->cap);
                if (!nb) {
                    perror ("realloc");
                    return 1;
                }
                c->buf = nb;
            }
            ssize_t r = read (c->fd, c->buf + c->len, c->cap - c->len);
            if (r < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (r <= 0 || (c->len += (size_t) r, s_handle (c) < 0)) {
                epoll_ctl (ep, EPOLL_CTL_DEL, c->fd, NULL);
                close (c->fd);
                free (c->buf);
                free (c);
            }
        }
    }
}
