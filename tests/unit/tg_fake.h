/*  tg_fake.h — the fake Telegram (tests/fakes/fake_telegram.py) for cmocka tests.

    tg_fake_start forks and execs `python3 fake_telegram.py --port P --quiet` on a
    free loopback port and waits for /_fake/health; tg_fake_stop kills it. The
    fake's file is found from RASTRO_SOURCE_DIR, else from this header's own
    path (CMake compiles with absolute paths). tg_fake_http talks to the control
    API with libcurl. Header-only: static functions, used by the Telegram tests.
*/
#ifndef TG_FAKE_H
#define TG_FAKE_H

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    pid_t pid;                      //  the fake's process
    int port;
    char url[64];                   //  http://127.0.0.1:<port>
    CURL *curl;                     //  one keep-alive connection for the control API
} tg_fake_t;

typedef struct {
    char *data;
    size_t len;
} tg_fake_buf_t;

static size_t
tg_fake_on_data (char *ptr, size_t size, size_t nmemb, void *userdata)
{
    tg_fake_buf_t *buf = userdata;
    size_t n = size * nmemb;
    char *data = realloc (buf->data, buf->len + n + 1);
    if (!data)
        return 0;
    memcpy (data + buf->len, ptr, n);
    buf->data = data;
    buf->len += n;
    buf->data[buf->len] = 0;
    return n;
}

//  METHOD PATH on the fake with BODY (may be NULL), on one kept-alive connection.
//  Returns the HTTP status (0: no answer); *REPLY (may be NULL) gets the body, the
//  caller frees it.
static long
tg_fake_http (tg_fake_t *fake, const char *method, const char *path, const char *body,
              char **reply)
{
    char url[512];
    snprintf (url, sizeof url, "%s%s", fake->url, path);
    tg_fake_buf_t buf = {0};
    if (!fake->curl && !(fake->curl = curl_easy_init ()))
        return 0;
    CURL *curl = fake->curl;
    curl_easy_reset (curl);         //  the connection stays in the handle's cache
    struct curl_slist *headers = curl_slist_append (NULL, "Content-Type: application/json");
    curl_easy_setopt (curl, CURLOPT_URL, url);
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS, 20000L);
    curl_easy_setopt (curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt (curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, tg_fake_on_data);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, &buf);
    if (body)
        curl_easy_setopt (curl, CURLOPT_POSTFIELDS, body);
    long status = 0;
    if (curl_easy_perform (curl) == CURLE_OK)
        curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all (headers);
    if (reply)
        *reply = buf.data;
    else
        free (buf.data);
    return status;
}

//  POST BODY to PATH; returns the HTTP status.
static long
tg_fake_post (tg_fake_t *fake, const char *path, const char *body)
{
    return tg_fake_http (fake, "POST", path, body, NULL);
}

//  GET PATH as JSON (the caller's, cJSON_Delete), or NULL.
static cJSON *
tg_fake_get_json (tg_fake_t *fake, const char *path)
{
    char *reply = NULL;
    long status = tg_fake_http (fake, "GET", path, NULL, &reply);
    cJSON *json = status == 200 && reply ? cJSON_Parse (reply) : NULL;
    free (reply);
    return json;
}

//  A TCP port nobody listens on right now (bind 0, read it back).
static int
tg_fake_free_port (void)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    int port = -1;
    if (fd >= 0 && bind (fd, (struct sockaddr *) &addr, sizeof addr) == 0
        && getsockname (fd, (struct sockaddr *) &addr, &len) == 0)
        port = ntohs (addr.sin_port);
    if (fd >= 0)
        close (fd);
    return port;
}

//  Starts the fake with EXTRA (may be NULL) as one more argument. 0 or -1.
static int
tg_fake_start (tg_fake_t *fake, const char *extra)
{
    memset (fake, 0, sizeof *fake);
    curl_global_init (CURL_GLOBAL_DEFAULT);
    char script[PATH_MAX];
    const char *src = getenv ("RASTRO_SOURCE_DIR");
    if (src)
        snprintf (script, sizeof script, "%s/tests/fakes/fake_telegram.py", src);
    else {
        snprintf (script, sizeof script, "%s", __FILE__);
        char *tail = strstr (script, "tests/unit/");
        if (!tail)
            return -1;
        snprintf (tail, sizeof script - (size_t) (tail - script), "tests/fakes/fake_telegram.py");
    }
    fake->port = tg_fake_free_port ();
    if (fake->port < 0)
        return -1;
    snprintf (fake->url, sizeof fake->url, "http://127.0.0.1:%d", fake->port);
    char port[16];
    snprintf (port, sizeof port, "%d", fake->port);
    fflush (NULL);
    fake->pid = fork ();
    if (fake->pid < 0)
        return -1;
    if (fake->pid == 0) {
        prctl (PR_SET_PDEATHSIG, SIGTERM);      //  never outlive the test
        if (extra)
            execlp ("python3", "python3", script, "--port", port, "--quiet", extra, (char *) NULL);
        else
            execlp ("python3", "python3", script, "--port", port, "--quiet", (char *) NULL);
        _exit (127);
    }
    for (int i = 0; i < 300; i++) {             //  up to 30 s
        if (tg_fake_http (fake, "GET", "/_fake/health", NULL, NULL) == 200)
            return 0;
        int wstatus;
        if (waitpid (fake->pid, &wstatus, WNOHANG) == fake->pid) {
            fake->pid = 0;
            return -1;
        }
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep (&ts, NULL);
    }
    return -1;
}

static void
tg_fake_stop (tg_fake_t *fake)
{
    if (fake->curl) {
        curl_easy_cleanup (fake->curl);
        fake->curl = NULL;
    }
    if (fake->pid > 0) {
        kill (fake->pid, SIGTERM);
        waitpid (fake->pid, NULL, 0);
        fake->pid = 0;
    }
}

//  Registers TOKEN as bot @USERNAME at the fake. Returns the HTTP status.
static long
tg_fake_add_bot (tg_fake_t *fake, const char *token, const char *username)
{
    char body[256];
    snprintf (body, sizeof body, "{\"token\":\"%s\",\"username\":\"%s\"}", token, username);
    return tg_fake_post (fake, "/_fake/bots", body);
}

#endif
