/*  rst_http_test — the libcurl plumbing shared by the gateway and Telegram clients.

    The pieces one by one (the scheme check and base URL, the reply buffer
    and its cap, the masking of secrets in a message), then whole transfers
    (rst_http_easy_setup, rst_http_perform) against a one-shot HTTP server
    in a thread of this test: a body arrives whole, one byte over the cap
    fails the transfer and says so, a server that does not answer in time
    is a timeout, a refused connection is named by libcurl's words, and the
    request carries what every rastro request carries (User-Agent "rastro").
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "rst_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

//  The tour: a base URL is checked and trimmed, a body is collected into a
//  buffer, and a secret never survives in a message.
static void
test_tour (void **state)
{
    (void) state;
    char err[128] = "";
    assert_int_equal (rst_http_init (err, sizeof err), 0);
    assert_int_equal (rst_http_init (err, sizeof err), 0);      //  once, whatever the callers

    char *base = NULL;
    CURL *curl = NULL;
    assert_int_equal (rst_http_client_init ("Telegram", "https://api.telegram.org//", NULL, &base,
                                            &curl, err, sizeof err),
                      0);
    assert_string_equal (base, "https://api.telegram.org");
    assert_non_null (curl);
    curl_easy_cleanup (curl);
    free (base);

    rst_http_buf_t buf;
    rst_http_buf_init (&buf, 64);
    char hello[] = "hello, ";
    char world[] = "world";
    assert_int_equal (rst_http_buf_write (hello, 1, 7, &buf), 7);
    assert_int_equal (rst_http_buf_write (world, 5, 1, &buf), 5);
    assert_string_equal (buf.data, "hello, world");
    assert_int_equal (buf.len, 12);
    rst_http_buf_destroy (&buf);

    char msg[128] = "HTTP 401: token APP-secret-1 refused";
    rst_http_mask (msg, sizeof msg, "APP-secret-1", "***");
    assert_string_equal (msg, "HTTP 401: token *** refused");
}

static void
test_urls (void **state)
{
    (void) state;
    static const struct {
        const char *url;
        int is_http;
    } cases[] = {
        {"http://127.0.0.1:8080", 1}, {"https://x", 1}, {"http://", 1},
        {"HTTP://x", 0}, {"ftp://x", 0}, {"gopher://x", 0}, {"httpx://x", 0},
        {"javascript:alert(1)", 0}, {"", 0}, {"tg://resolve", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal (rst_http_url_is_http (cases[i].url), cases[i].is_http);
    assert_false (rst_http_url_is_http (NULL));

    static const struct {
        const char *in, *out;
    } bases[] = {
        {"http://a", "http://a"}, {"http://a/", "http://a"}, {"http://a/v1///", "http://a/v1"},
        {"https://", "https:"},
    };
    char err[128];
    for (size_t i = 0; i < sizeof bases / sizeof bases[0]; i++) {
        char *copy = NULL;
        assert_int_equal (rst_http_client_init ("X", bases[i].in, NULL, &copy, NULL, err,
                                                sizeof err),
                          0);
        assert_string_equal (copy, bases[i].out);
        free (copy);
    }

    //  A refused URL is named in the message, or the variable it came from is.
    char *copy = NULL;
    CURL *curl = NULL;
    assert_int_equal (rst_http_client_init ("Telegram", "ftp://x/", NULL, &copy, &curl, err,
                                            sizeof err),
                      -1);
    assert_string_equal (err, "Telegram API URL must start with http:// or https:// (got ftp://x/)");
    assert_int_equal (rst_http_client_init ("Mercado Pago", "gopher://x", "RASTRO_GATEWAY_X_URL",
                                            &copy, &curl, err, sizeof err),
                      -1);
    assert_string_equal (err, "Mercado Pago API URL must start with http:// or https:// "
                              "(check RASTRO_GATEWAY_X_URL)");
    assert_int_equal (rst_http_client_init ("X", NULL, NULL, &copy, NULL, err, sizeof err), -1);
    assert_null (copy);
    assert_null (curl);
}

//  Exactly MAX bytes fit; one more fails the write and marks the buffer.
static void
test_buf_cap (void **state)
{
    (void) state;
    enum { MAX = 10000 };
    char *chunk = malloc (MAX + 1);
    assert_non_null (chunk);
    memset (chunk, 'x', MAX + 1);
    rst_http_buf_t buf;
    rst_http_buf_init (&buf, MAX);
    assert_null (buf.data);
    size_t taken = 0;
    for (size_t n = 1; taken + n <= MAX; n = n * 2 + 1)        //  odd sizes, growing
        taken += rst_http_buf_write (chunk, 1, n, &buf);
    assert_int_equal (rst_http_buf_write (chunk, 1, MAX - taken, &buf), MAX - taken);
    assert_int_equal (buf.len, MAX);
    assert_true (buf.cap > MAX);                                //  room for the NUL
    assert_int_equal (buf.data[MAX], 0);
    assert_int_equal (buf.too_big, 0);
    assert_int_equal (rst_http_buf_write (chunk, 1, 1, &buf), 0);
    assert_int_equal (buf.too_big, 1);
    assert_int_equal (buf.len, MAX);

    //  Rewind keeps small memory, gives big memory back.
    rst_http_buf_rewind (&buf, SIZE_MAX);
    assert_int_equal (buf.len, 0);
    assert_int_equal (buf.too_big, 0);
    assert_non_null (buf.data);
    rst_http_buf_rewind (&buf, 4096);
    assert_null (buf.data);
    assert_int_equal (buf.cap, 0);
    assert_int_equal (buf.max, MAX);
    assert_int_equal (rst_http_buf_write (chunk, 1, MAX, &buf), MAX);
    rst_http_buf_destroy (&buf);
    assert_null (buf.data);
    rst_http_buf_destroy (&buf);                                //  safe to repeat
    rst_http_buf_destroy (NULL);
    free (chunk);
}

static void
test_mask (void **state)
{
    (void) state;
    static const struct {
        const char *in, *secret, *mask, *out;
    } cases[] = {
        {"a SECRET and SECRET", "SECRET", "***", "a *** and ***"},
        {"SECRETSECRET", "SECRET", "***", "******"},
        {"nothing here", "SECRET", "***", "nothing here"},
        {"x", "", "***", "x"},
        {"x", NULL, "***", "x"},
        //  A replacement that forms a new occurrence is masked too.
        {"aa***", "a***", "***", "***"},
        //  A mask that holds the secret would never end: it is taken as "".
        {"key=ab;", "ab", "[ab]", "key=;"},
        //  Telegram's: the mask is longer than a short token.
        {"url /bot1:a/getMe", "1:a", "<token>", "url /bot<token>/getMe"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[64];
        snprintf (buf, sizeof buf, "%s", cases[i].in);
        rst_http_mask (buf, sizeof buf, cases[i].secret, cases[i].mask);
        assert_string_equal (buf, cases[i].out);
    }
    //  Where the mask does not fit the buffer, the secret goes without one.
    char small[12] = "bot1:a/x";
    rst_http_mask (small, sizeof small, "1:a", "<token>");
    assert_string_equal (small, "bot/x");
    rst_http_mask (NULL, 0, "x", "***");
}

// ---------------------------------------------------------------------------
//  Whole transfers against a one-shot server

typedef struct {
    int fd;                         //  listening socket
    size_t body_len;                //  bytes of body to answer with
    int silent_ms;                  //  > 0: read the request, answer nothing for this long
    char request[2048];             //  what arrived (headers)
} s_server_t;

static void *
s_server_run (void *arg)
{
    s_server_t *srv = arg;
    int fd = accept (srv->fd, NULL, NULL);
    if (fd < 0)
        return NULL;
    size_t len = 0;
    while (len < sizeof srv->request - 1 && !strstr (srv->request, "\r\n\r\n")) {
        ssize_t n = read (fd, srv->request + len, sizeof srv->request - 1 - len);
        if (n <= 0)
            break;
        len += (size_t) n;
        srv->request[len] = 0;
    }
    if (srv->silent_ms > 0)
        usleep ((useconds_t) srv->silent_ms * 1000);
    else {
        char head[128];
        int hlen = snprintf (head, sizeof head,
                             "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                             srv->body_len);
        char *body = malloc (srv->body_len + 1);
        if (body) {
            memset (body, 'b', srv->body_len);
            if (write (fd, head, (size_t) hlen) < 0 || write (fd, body, srv->body_len) < 0)
                (void) 0;                   //  the client may have hung up: that is a test
            free (body);
        }
    }
    close (fd);
    return NULL;
}

//  What one GET brought.
typedef struct {
    CURLcode cc;                    //  libcurl's result
    long status;                    //  the HTTP status, 0 when none
    char why[CURL_ERROR_SIZE + 32]; //  rst_http_perform's words when cc is not CURLE_OK
    char request[2048];             //  what the server got
} s_got_t;

//  One GET (rst_http_easy_setup, rst_http_perform) of a server answering
//  BODY_LEN bytes (or SILENT_MS of silence) into *BUF (OUT, the caller's:
//  rst_http_buf_destroy) of MAX bytes, TIMEOUT_MS in all.
static void
s_get (size_t body_len, int silent_ms, size_t max, long timeout_ms, rst_http_buf_t *buf,
       s_got_t *got)
{
    s_server_t srv = {.body_len = body_len, .silent_ms = silent_ms};
    srv.fd = socket (AF_INET, SOCK_STREAM, 0);
    assert_true (srv.fd >= 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    socklen_t alen = sizeof addr;
    assert_int_equal (bind (srv.fd, (struct sockaddr *) &addr, sizeof addr), 0);
    assert_int_equal (getsockname (srv.fd, (struct sockaddr *) &addr, &alen), 0);
    assert_int_equal (listen (srv.fd, 4), 0);
    pthread_t thread;
    assert_int_equal (pthread_create (&thread, NULL, s_server_run, &srv), 0);

    char url[64];
    snprintf (url, sizeof url, "http://127.0.0.1:%d/path", ntohs (addr.sin_port));
    CURL *curl = curl_easy_init ();
    assert_non_null (curl);
    rst_http_buf_init (buf, max);
    char errbuf[CURL_ERROR_SIZE];
    assert_int_equal (rst_http_easy_setup (curl, url, errbuf, 5000, timeout_ms, buf), 0);
    memset (got, 0, sizeof *got);
    got->cc = rst_http_perform (curl, buf, errbuf, &got->status, got->why, sizeof got->why);
    curl_easy_cleanup (curl);
    pthread_join (thread, NULL);
    close (srv.fd);
    memcpy (got->request, srv.request, sizeof srv.request);
}

static void
test_transfers (void **state)
{
    (void) state;
    char err[64];
    assert_int_equal (rst_http_init (err, sizeof err), 0);
    rst_http_buf_t buf;
    s_got_t got;

    //  A body of exactly the cap arrives whole; the request says who we are.
    s_get (100000, 0, 100000, 10000, &buf, &got);
    assert_int_equal (got.cc, CURLE_OK);
    assert_int_equal (got.status, 200);
    assert_int_equal (buf.len, 100000);
    assert_int_equal (buf.too_big, 0);
    assert_int_equal (strspn (buf.data, "b"), 100000);
    assert_non_null (strstr (got.request, "GET /path HTTP/1.1\r\n"));
    assert_non_null (strstr (got.request, "\r\nUser-Agent: rastro\r\n"));
    rst_http_buf_destroy (&buf);

    //  One byte more fails the transfer, and the words say why.
    s_get (100001, 0, 100000, 10000, &buf, &got);
    assert_int_equal (got.cc, CURLE_WRITE_ERROR);
    assert_int_equal (got.status, 200);
    assert_int_equal (buf.too_big, 1);
    assert_string_equal (got.why, "reply larger than 100000 bytes");
    rst_http_buf_destroy (&buf);

    //  A server that says nothing: the whole-call timeout ends it.
    s_get (0, 1500, 1000, 300, &buf, &got);
    assert_int_equal (got.cc, CURLE_OPERATION_TIMEDOUT);
    assert_int_equal (got.status, 0);
    assert_non_null (strstr (got.why, "libcurl: "));
    assert_non_null (strstr (got.why, "imed out"));             //  libcurl's own words
    rst_http_buf_destroy (&buf);

    //  Nobody listens on port 1: libcurl's error buffer names the place, and
    //  without one its generic words are used.
    CURL *curl = curl_easy_init ();
    char errbuf[CURL_ERROR_SIZE];
    rst_http_buf_init (&buf, 1000);
    assert_int_equal (rst_http_easy_setup (curl, "http://127.0.0.1:1/", errbuf, 2000, 2000, &buf),
                      0);
    assert_int_equal (rst_http_perform (curl, &buf, errbuf, &got.status, got.why, sizeof got.why),
                      CURLE_COULDNT_CONNECT);
    assert_non_null (strstr (got.why, "libcurl: Failed to connect to 127.0.0.1 port 1"));
    assert_int_equal (rst_http_easy_setup (curl, "http://127.0.0.1:1/", NULL, 2000, 2000, &buf),
                      0);
    assert_int_equal (rst_http_perform (curl, &buf, NULL, &got.status, got.why, sizeof got.why),
                      CURLE_COULDNT_CONNECT);
    assert_string_equal (got.why, "libcurl: Couldn't connect to server");

    //  Only http and https: libcurl refuses another scheme.
    assert_int_equal (rst_http_easy_setup (curl, "file:///etc/passwd", errbuf, 1000, 1000, &buf),
                      0);
    assert_int_equal (rst_http_perform (curl, &buf, errbuf, &got.status, got.why, sizeof got.why),
                      CURLE_UNSUPPORTED_PROTOCOL);
    assert_int_equal (buf.len, 0);
    curl_easy_cleanup (curl);
    rst_http_buf_destroy (&buf);
}

int
main (void)
{
    signal (SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_tour),     cmocka_unit_test (test_urls),
        cmocka_unit_test (test_buf_cap),  cmocka_unit_test (test_mask),
        cmocka_unit_test (test_transfers),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
