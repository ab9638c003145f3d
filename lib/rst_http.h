/*  rst_http — the libcurl plumbing shared by rastro's HTTP clients.

    rst_gateway (PIX gateway APIs), rst_telegram (one Bot API call at a
    time) and rst_tgpoll (many long polls on one multi handle) speak
    different protocols but drive libcurl the same way. What they share
    lives here, and only that:

        rst_http_init          curl_global_init, once per process
        rst_http_client_init   what a client needs first: libcurl ready, its
                               base URL checked and copied, an easy handle
        rst_http_url_is_http   the scheme check of a URL
        rst_http_easy_setup    the options every request sets: URL,
                               timeouts, http/https only, User-Agent, no
                               signals, the reply into an rst_http_buf_t
        rst_http_buf_t         the reply body, grown on demand up to a cap
                               (a larger reply fails the transfer)
        rst_http_perform       the transfer, its HTTP status, and why it
                               failed in words
        rst_http_mask          a secret replaced in a message

    Each class keeps its own protocol: building requests, reading replies,
    classifying errors, and deciding which secrets to mask and how.

    Secrets: libcurl's error buffer may quote the URL (Telegram's token sits
    in it); a caller that hands rst_http_perform an error buffer must mask
    what it says before it leaves. Functions here are thread-safe; a buffer or
    a handle belongs to one thread at a time.
*/
#ifndef RST_HTTP_H
#define RST_HTTP_H

#include <curl/curl.h>
#include <stddef.h>

#define RST_HTTP_BUF_INITIAL 4096   //  first allocation of a reply buffer

//  A reply body being received (embedded by value: rst_http_buf_init /
//  rst_http_buf_destroy).
typedef struct {
    char *data;                     //  the body so far, NUL-terminated; NULL until a byte came
    size_t len;                     //  bytes in data, without the NUL
    size_t cap;                     //  bytes allocated
    size_t max;                     //  most bytes accepted
    int too_big;                    //  1 when the body passed max (the transfer failed)
} rst_http_buf_t;

//  Initialises libcurl for the process (curl_global_init, done once whatever
//  the number of callers and threads). Returns 0, or -1 with
//  "libcurl: <reason>" in ERR; every later call fails the same way.
int rst_http_init (char *err, size_t errlen);

//  1 if URL starts with "http://" or "https://", else 0 (also for NULL).
int rst_http_url_is_http (const char *url);

//  Readies a client of the API of SERVICE ("Telegram", "Mercado Pago") at
//  BASE_URL: libcurl initialised (rst_http_init), BASE_URL checked
//  (rst_http_url_is_http) and copied without trailing slashes into *BASE_P
//  (the caller's: free), and when CURL_P is not NULL a new easy handle into
//  *CURL_P (the caller's: curl_easy_cleanup). Returns 0, or -1 with nothing
//  allocated and a reason in ERR: "libcurl: ...", "<SERVICE> API URL must
//  start with http:// or https:// (check <ENV>)" (when the URL may come from
//  the environment variable ENV) or "(got <BASE_URL>)" (ENV NULL), or
//  "out of memory".
int rst_http_client_init (const char *service, const char *base_url, const char *env,
                          char **base_p, CURL **curl_p, char *err, size_t errlen);

//  Empties BUF and sets the most bytes it accepts (MAX > 0).
void rst_http_buf_init (rst_http_buf_t *buf, size_t max);

//  Frees BUF's memory and empties it (its max stays). Safe to repeat.
void rst_http_buf_destroy (rst_http_buf_t *buf);

//  Empties BUF for the next reply: len and too_big go to 0, and the memory
//  is kept unless more than KEEP bytes were allocated (then it is freed).
void rst_http_buf_rewind (rst_http_buf_t *buf, size_t keep);

//  CURLOPT_WRITEFUNCTION for an rst_http_buf_t (USERDATA). Returns the bytes
//  taken; 0 (libcurl then stops with CURLE_WRITE_ERROR) when the body would
//  pass buf->max (too_big is set) or memory ran out.
size_t rst_http_buf_write (char *ptr, size_t size, size_t nmemb, void *userdata);

//  Resets CURL (curl_easy_reset) and sets what every rastro request sets:
//  URL (libcurl keeps its own copy: the caller may wipe its one at once),
//  no signals, CONNECT_MS and TIMEOUT_MS (milliseconds, as given), http and
//  https only, User-Agent "rastro", and the body into BUF
//  (rst_http_buf_write). ERRBUF (CURL_ERROR_SIZE bytes, emptied here) gets
//  libcurl's own messages, which may quote the URL; NULL: none. Returns 0,
//  or -1 when libcurl could not take the URL (out of memory).
int rst_http_easy_setup (CURL *curl, const char *url, char *errbuf, long connect_ms,
                         long timeout_ms, rst_http_buf_t *buf);

//  Performs the request set up on CURL (rst_http_easy_setup with BUF and
//  ERRBUF, which may be NULL) and puts the HTTP status into *HTTP_STATUS
//  (OUT; 0 when no reply came). Returns libcurl's result; when it is not
//  CURLE_OK, WHY (OUT) says why: "reply larger than <max> bytes" when BUF
//  overflowed, else "libcurl: " and ERRBUF when it is not empty, else
//  curl_easy_strerror of the result.
CURLcode rst_http_perform (CURL *curl, const rst_http_buf_t *buf, const char *errbuf,
                           long *http_status, char *why, size_t whylen);

//  Replaces every occurrence of SECRET in BUF (a string held in BUFLEN
//  bytes) with MASK, or with nothing where MASK would not fit in BUFLEN.
//  Nothing happens when SECRET is NULL or empty. The search starts over
//  after each replacement, so no occurrence survives, not even one that a
//  replacement formed; this ends when MASK is shorter than SECRET or has no
//  character in common with it (a MASK containing SECRET is taken as "").
void rst_http_mask (char *buf, size_t buflen, const char *secret, const char *mask);

#endif
