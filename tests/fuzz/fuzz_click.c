/*  fuzz_click — the request parsers of the front on arbitrary bytes:
    query strings, percent-decoding, cookies, fbp/fbclid checks, UTF-8
    clean-up and the client-address walk over X-Forwarded-For. */
#include "rst_click.h"
#include "rst_netaddr.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int
s_visit (void *arg, const char *key, size_t key_len, const char *value, size_t value_len)
{
    char out[1024];
    rst_url_decode (key, key_len, out, sizeof out);
    int n = rst_url_decode (value, value_len, out, sizeof out);
    if (n > 0) {
        char clean[1025];
        rst_utf8_clean (out, (size_t) n, clean);
        rst_fbclid_is_valid (out, (size_t) n);
        char fbc[RST_FBC_MAX];
        rst_fbc_build (fbc, sizeof fbc, 1, out, (size_t) n);
    }
    ++*(int *) arg;
    return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    const char *s = (const char *) data;
    int pairs = 0;
    rst_query_each (s, size, s_visit, &pairs);
    const char *v;
    size_t vlen;
    if (rst_cookie_find (s, size, "_fbp", &v, &vlen))
        rst_fbp_is_valid (v, vlen);
    rst_click_token_is_valid (s, size);
    char *clean = malloc (size + 1);
    rst_utf8_clean (s, size, clean);
    free (clean);
    static rst_cidr_list_t trusted;
    static int init;
    if (!init) {
        char err[64];
        rst_cidr_list_parse (&trusted, "127.0.0.0/8,10.0.0.0/8,::1", err, sizeof err);
        init = 1;
    }
    struct sockaddr_in peer = {.sin_family = AF_INET};
    inet_pton (AF_INET, "127.0.0.1", &peer.sin_addr);
    char out[RST_NETADDR_TEXT_MAX];
    rst_client_address (&trusted, (struct sockaddr *) &peer, s, size, out, sizeof out);
    if (size < 200) {
        char list[201];
        memcpy (list, s, size);
        list[size] = 0;
        rst_cidr_list_t parsed;
        char err[128];
        rst_cidr_list_parse (&parsed, list, err, sizeof err);
    }
    return 0;
}
