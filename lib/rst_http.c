/*  rst_http — the libcurl plumbing shared by rastro's HTTP clients.

    See rst_http.h for what is here and what stays in each client. The
    reply buffer doubles its allocation from RST_HTTP_BUF_INITIAL bytes and
    always keeps a NUL after the data, so a body can be handed to cJSON or
    printed as is; it refuses the write that would pass its max, which makes
    libcurl end the transfer with CURLE_WRITE_ERROR and the caller report
    "reply larger than <max> bytes".
*/
#include "rst_http.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t s_curl_once = PTHREAD_ONCE_INIT;
static CURLcode s_curl_status = CURLE_FAILED_INIT;   //  written once, then read-only

static void
s_curl_init_once (void)
{
    s_curl_status = curl_global_init (CURL_GLOBAL_DEFAULT);
}

int
rst_http_init (char *err, size_t errlen)
{
    pthread_once (&s_curl_once, s_curl_init_once);
    if (s_curl_status != CURLE_OK) {
        snprintf (err, errlen, "libcurl: %s", curl_easy_strerror (s_curl_status));
        return -1;
    }
    return 0;
}

int
rst_http_url_is_http (const char *url)
{
    return url && (!strncmp (url, "http://", 7) || !strncmp (url, "https://", 8));
}

int
rst_http_client_init (const char *service, const char *base_url, const char *env,
                      char **base_p, CURL **curl_p, char *err, size_t errlen)
{
    if (rst_http_init (err, errlen))
        return -1;
    if (!rst_http_url_is_http (base_url)) {
        snprintf (err, errlen, "%s API URL must start with http:// or https:// (%s %s)", service,
                  env ? "check" : "got", env ? env : base_url ? base_url : "nothing");
        return -1;
    }
    char *base = strdup (base_url);
    if (!base) {
        snprintf (err, errlen, "out of memory");
        return -1;
    }
    size_t n = strlen (base);
    while (n > 0 && base[n - 1] == '/')
        base[--n] = 0;
    if (curl_p && !(*curl_p = curl_easy_init ())) {
        snprintf (err, errlen, "libcurl: cannot create a handle");
        free (base);
        return -1;
    }
    *base_p = base;
    return 0;
}

void
rst_http_buf_init (rst_http_buf_t *buf, size_t max)
{
    memset (buf, 0, sizeof *buf);
    buf->max = max;
}

void
rst_http_buf_destroy (rst_http_buf_t *buf)
{
    if (!buf)
        return;
    free (buf->data);
    rst_http_buf_init (buf, buf->max);
}

void
rst_http_buf_rewind (rst_http_buf_t *buf, size_t keep)
{
    if (buf->cap > keep)
        rst_http_buf_destroy (buf);
    buf->len = 0;
    buf->too_big = 0;
}

size_t
rst_http_buf_write (char *ptr, size_t size, size_t nmemb, void *userdata)
{
    rst_http_buf_t *buf = userdata;
    size_t n = size * nmemb;
    if (buf->len + n > buf->max) {
        buf->too_big = 1;
        return 0;                   //  makes libcurl stop with CURLE_WRITE_ERROR
    }
    if (buf->len + n + 1 > buf->cap) {
        size_t cap = buf->cap ? buf->cap : RST_HTTP_BUF_INITIAL;
        while (cap < buf->len + n + 1)
            cap *= 2;
        char *data = realloc (buf->data, cap);
        if (!data)
            return 0;
        buf->data = data;
        buf->cap = cap;
    }
    memcpy (buf->data + buf->len, ptr, n);
    buf->len += n;
    buf->data[buf->len] = 0;
    return n;
}

int
rst_http_easy_setup (CURL *curl, const char *url, char *errbuf, long connect_ms, long timeout_ms,
                     rst_http_buf_t *buf)
{
    curl_easy_reset (curl);
    if (errbuf) {
        errbuf[0] = 0;
        curl_easy_setopt (curl, CURLOPT_ERRORBUFFER, errbuf);
    }
    if (curl_easy_setopt (curl, CURLOPT_URL, url) != CURLE_OK)
        return -1;
    curl_easy_setopt (curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt (curl, CURLOPT_USERAGENT, "rastro");
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (curl, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, rst_http_buf_write);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, buf);
    return 0;
}

CURLcode
rst_http_perform (CURL *curl, const rst_http_buf_t *buf, const char *errbuf, long *http_status,
                  char *why, size_t whylen)
{
    CURLcode cc = curl_easy_perform (curl);
    *http_status = 0;
    curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, http_status);
    if (cc == CURLE_OK)
        return cc;
    if (buf->too_big)
        snprintf (why, whylen, "reply larger than %zu bytes", buf->max);
    else
        snprintf (why, whylen, "libcurl: %s",
                  errbuf && errbuf[0] ? errbuf : curl_easy_strerror (cc));
    return cc;
}

void
rst_http_mask (char *buf, size_t buflen, const char *secret, const char *mask)
{
    if (!buf || !secret || !*secret)
        return;
    size_t slen = strlen (secret);
    size_t mlen = strstr (mask, secret) ? 0 : strlen (mask);
    char *hit;
    while ((hit = strstr (buf, secret))) {
        size_t rest = strlen (hit + slen);
        size_t n = (size_t) (hit - buf) + mlen + rest + 1 <= buflen ? mlen : 0;
        memmove (hit + n, hit + slen, rest + 1);
        memcpy (hit, mask, n);
    }
}
