/*  rst_gateway_http_test — the three gateway adapters over real HTTP, against the fake.

    Starts tests/fakes/fake_gateways.py (python3, a free port) and a tiny
    webhook receiver in a thread, then drives rst_gateway_create/read the way
    the bots node does: create a charge (its BR Code must pass
    rst_pix_brcode_check), have the fake "pay" it and post its webhook to the
    receiver, parse and authenticate that webhook with the C code, and read
    the charge back. Around that: Mercado Pago's idempotency key (a retry
    after a timeout gets the same payment), the error classes (500/429/hang
    -> transient, 4xx/malformed -> permanent, unknown id -> not found),
    PushinPay's 50-centavo minimum and `[]`, and SyncPay's cached token
    renewed once on a 401.

    The source directory comes from RASTRO_SOURCE_DIR, else from this file's
    path (__FILE__ is absolute in a CMake build).
*/
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "rst_gateway.h"
#include "rst_http.h"
#include "rst_pix.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MP_CREDS "{\"access_token\":\"TEST-mp-access-token\",\"webhook_secret\":\"mp-webhook-secret\"}"
#define PP_CREDS "{\"token\":\"pp-api-token\",\"webhook_token\":\"pp-webhook-token\"}"
#define SP_CREDS "{\"client_id\":\"sp-client-id\",\"client_secret\":\"sp-client-secret\"}"

static pid_t s_fake_pid = -1;
static char s_fake_url[64];         //  http://127.0.0.1:<port>
static char s_hook_url[64];         //  the receiver

// ---------------------------------------------------------------------------
//  Webhook receiver: one thread, one request per connection, kept in s_hooks.

#define HOOKS_MAX 16
#define HOOK_HEADERS_MAX 24

typedef struct {
    char *raw;                      //  the whole request (owned); strings below point into it
    char *path;
    char *query;                    //  NULL when none
    rst_gw_header_t headers[HOOK_HEADERS_MAX];
    size_t nheaders;
    char *content_type;
    char *body;
    size_t body_len;
} s_hook_t;

static pthread_mutex_t s_hooks_lock = PTHREAD_MUTEX_INITIALIZER;
static s_hook_t s_hooks[HOOKS_MAX];
static size_t s_nhooks;
static int s_listen_fd = -1;
static pthread_t s_receiver;

static void
s_hook_parse (s_hook_t *h)
{
    char *end = strstr (h->raw, "\r\n\r\n");
    if (!end)
        return;
    *end = 0;
    h->body = end + 4;
    char *line = h->raw;
    char *eol = strstr (line, "\r\n");
    if (eol)
        *eol = 0;
    char *sp = strchr (line, ' ');
    h->path = sp ? sp + 1 : line;
    sp = strchr (h->path, ' ');
    if (sp)
        *sp = 0;
    char *q = strchr (h->path, '?');
    if (q) {
        *q = 0;
        h->query = q + 1;
    }
    for (line = eol ? eol + 2 : NULL; line && *line && h->nheaders < HOOK_HEADERS_MAX;) {
        eol = strstr (line, "\r\n");
        if (eol)
            *eol = 0;
        char *colon = strchr (line, ':');
        if (colon) {
            *colon = 0;
            for (char *c = line; *c; c++)
                if (*c >= 'A' && *c <= 'Z')
                    *c = (char) (*c - 'A' + 'a');
            char *value = colon + 1;
            while (*value == ' ')
                value++;
            rst_gw_header_t *hd = &h->headers[h->nheaders++];
            hd->name = line;
            hd->name_len = strlen (line);
            hd->value = value;
            hd->value_len = strlen (value);
            if (!strcmp (line, "content-type"))
                h->content_type = value;
        }
        line = eol ? eol + 2 : NULL;
    }
}

static void *
s_receiver_run (void *arg)
{
    (void) arg;
    for (;;) {
        int fd = accept (s_listen_fd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR)
                continue;
            return NULL;            //  shut down
        }
        size_t cap = 8192, len = 0;
        char *buf = malloc (cap + 1);
        size_t want = (size_t) -1;  //  total bytes once the headers are in
        while (buf && len < want) {
            if (len == cap) {
                cap *= 2;
                char *more = realloc (buf, cap + 1);
                if (!more)
                    break;
                buf = more;
            }
            ssize_t n = read (fd, buf + len, cap - len);
            if (n <= 0)
                break;
            len += (size_t) n;
            buf[len] = 0;
            char *end = strstr (buf, "\r\n\r\n");
            if (end && want == (size_t) -1) {
                size_t clen = 0;
                char *cl = strcasestr (buf, "\r\ncontent-length:");
                if (cl && cl < end)
                    clen = strtoul (cl + 17, NULL, 10);
                want = (size_t) (end + 4 - buf) + clen;
            }
        }
        //  Kept before the answer: once the fake has its 200, the test may look.
        pthread_mutex_lock (&s_hooks_lock);
        if (buf && s_nhooks < HOOKS_MAX) {
            s_hook_t *h = &s_hooks[s_nhooks];
            memset (h, 0, sizeof *h);
            h->raw = buf;
            s_hook_parse (h);
            h->body_len = h->body ? strlen (h->body) : 0;
            s_nhooks++;
            buf = NULL;
        }
        pthread_mutex_unlock (&s_hooks_lock);
        free (buf);
        static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        if (write (fd, ok, sizeof ok - 1) < 0)
            (void) 0;
        close (fd);
    }
}

static void
s_hooks_clear (void)
{
    pthread_mutex_lock (&s_hooks_lock);
    for (size_t i = 0; i < s_nhooks; i++)
        free (s_hooks[i].raw);
    s_nhooks = 0;
    pthread_mutex_unlock (&s_hooks_lock);
}

//  Fills WH from received webhook I (the receiver has finished with it:
//  /_fake/pay answers only after delivering).
static void
s_hook_webhook (size_t i, rst_gw_kind_t kind, rst_gw_webhook_t *wh)
{
    pthread_mutex_lock (&s_hooks_lock);
    size_t nhooks = s_nhooks;
    s_hook_t *h = &s_hooks[i < HOOKS_MAX ? i : 0];
    pthread_mutex_unlock (&s_hooks_lock);
    assert_true (i < nhooks);       //  not under the lock: a failed assert leaves the function
    memset (wh, 0, sizeof *wh);
    wh->kind = kind;
    wh->query = h->query;
    wh->query_len = h->query ? strlen (h->query) : 0;
    wh->headers = h->headers;
    wh->nheaders = h->nheaders;
    wh->content_type = h->content_type;
    wh->content_type_len = h->content_type ? strlen (h->content_type) : 0;
    wh->body = h->body;
    wh->body_len = h->body_len;
    wh->now_s = (int64_t) time (NULL);
}

// ---------------------------------------------------------------------------
//  The fake's control API

//  GET (BODY NULL) or POST BODY to the fake; returns the parsed JSON reply
//  (caller deletes) or NULL. *STATUS (OUT, may be NULL) gets the HTTP status.
static cJSON *
s_fake (const char *path, const char *body, long *status)
{
    CURL *curl = curl_easy_init ();
    assert_non_null (curl);
    char url[256];
    snprintf (url, sizeof url, "%s%s", s_fake_url, path);
    rst_http_buf_t buf;
    rst_http_buf_init (&buf, 16 * 1024 * 1024);
    assert_int_equal (rst_http_easy_setup (curl, url, NULL, 30000, 30000, &buf), 0);
    struct curl_slist *headers = curl_slist_append (NULL, "Content-Type: application/json");
    curl_easy_setopt (curl, CURLOPT_HTTPHEADER, headers);
    if (body)
        curl_easy_setopt (curl, CURLOPT_POSTFIELDS, body);
    long code = 0;
    char why[CURL_ERROR_SIZE + 32];
    CURLcode cc = rst_http_perform (curl, &buf, NULL, &code, why, sizeof why);
    if (status)
        *status = code;
    curl_slist_free_all (headers);
    curl_easy_cleanup (curl);
    cJSON *json = cc == CURLE_OK && buf.data ? cJSON_Parse (buf.data) : NULL;
    rst_http_buf_destroy (&buf);
    return json;
}

//  POSTs to the fake and expects 200.
static void
s_fake_ok (const char *path, const char *body)
{
    long status = 0;
    cJSON *json = s_fake (path, body, &status);
    if (status != 200) {
        char *text = json ? cJSON_PrintUnformatted (json) : NULL;
        print_error ("%s %s -> %ld %s\n", path, body ? body : "", status, text ? text : "");
        free (text);
    }
    assert_int_equal (status, 200);
    cJSON_Delete (json);
}

//  Counts the elements of the fake's list at PATH whose string MEMBER is VALUE.
static int
s_count (const char *path, const char *member, const char *value)
{
    cJSON *list = s_fake (path, NULL, NULL);
    assert_true (cJSON_IsArray (list));
    int n = 0;
    const cJSON *c;
    cJSON_ArrayForEach (c, list) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive (c, member);
        if (cJSON_IsString (m) && !strcmp (m->valuestring, value))
            n++;
    }
    cJSON_Delete (list);
    return n;
}

//  Counts the fake's recorded calls of ROUTE.
static int
s_calls (const char *route)
{
    return s_count ("/_fake/calls", "route", route);
}

//  The fake's charges of GATEWAY.
static int
s_charges (const char *gateway)
{
    return s_count ("/_fake/charges", "gateway", gateway);
}

//  Has the fake pay charge ID of GATEWAY; EXTRA is more JSON members (",..." or "").
//  Returns the number of webhook deliveries that got HTTP 200.
static int
s_pay (const char *gateway, const char *id, const char *extra)
{
    char body[512];
    snprintf (body, sizeof body, "{\"gateway\":\"%s\",\"id\":\"%s\"%s}", gateway, id, extra);
    long status = 0;
    cJSON *reply = s_fake ("/_fake/pay", body, &status);
    assert_int_equal (status, 200);
    int ok = 0;
    const cJSON *d;
    cJSON_ArrayForEach (d, cJSON_GetObjectItemCaseSensitive (reply, "deliveries")) {
        const cJSON *st = cJSON_GetObjectItemCaseSensitive (d, "status");
        if (cJSON_IsNumber (st) && st->valueint == 200)
            ok++;
    }
    cJSON_Delete (reply);
    return ok;
}

//  Received webhook I of KIND must parse to a notice about CHARGE_ID (with
//  status hint HINT, unless NULL) and authenticate with SECRET to AUTH_RC.
static void
s_check_hook (size_t i, rst_gw_kind_t kind, const char *charge_id, const char *hint,
              const char *secret, int auth_rc)
{
    rst_gw_webhook_t wh;
    rst_gw_notice_t notice;
    char err[256] = "";
    s_hook_webhook (i, kind, &wh);
    assert_int_equal (rst_gateway_webhook_parse (&wh, &notice, err, sizeof err),
                      RST_GW_WEBHOOK_CHARGE);
    assert_string_equal (notice.charge_id, charge_id);
    if (hint)
        assert_string_equal (notice.status_hint, hint);
    int rc = rst_gateway_webhook_auth (&wh, &notice, secret, err, sizeof err);
    if (rc != auth_rc) {
        print_error ("webhook %zu: auth %d, expected %d (%s)\n", i, rc, auth_rc, err);
        fail ();
    }
}

//  Reading charge ID from GW must succeed with STATUS and, unless CENTS is
//  -1, that amount. The charge goes into *READ (OUT, the caller clears it)
//  when READ is not NULL.
static void
s_check_read (rst_gateway_t *gw, const char *id, rst_charge_status_t status, int64_t cents,
              rst_charge_t *read)
{
    rst_charge_t local;
    rst_charge_t *charge = read ? read : &local;
    char err[256] = "";
    rst_gw_result_t rc = rst_gateway_read (gw, id, charge, err, sizeof err);
    if (rc != RST_GW_OK) {
        print_error ("read %s: %d (%s)\n", id, rc, err);
        fail ();
    }
    assert_int_equal (charge->status, status);
    if (cents >= 0)
        assert_int_equal (charge->amount_cents, cents);
    if (!read)
        rst_charge_clear (&local);
}

static void
s_assert_brcode (const rst_charge_t *charge, int64_t cents)
{
    assert_non_null (charge->pix_code);
    rst_pix_info_t info;
    char err[256] = "";
    if (rst_pix_brcode_check (charge->pix_code, strlen (charge->pix_code), &info, err,
                              sizeof err)) {
        print_error ("bad BR Code %s: %s\n", charge->pix_code, err);
        fail ();
    }
    assert_int_equal (info.amount_cents, cents);
    assert_true (info.is_dynamic);
}

//  Creates REQ's charge on GW into *CHARGE (OUT, the caller clears it): it
//  must be pending, with the gateway's word STATUS_TEXT, for REQ's amount,
//  with a valid BR Code of that amount.
static void
s_create_pending (rst_gateway_t *gw, const rst_charge_request_t *req, const char *status_text,
                  rst_charge_t *charge)
{
    char err[256] = "";
    rst_gw_result_t rc = rst_gateway_create (gw, req, charge, err, sizeof err);
    if (rc != RST_GW_OK) {
        print_error ("create: %d (%s)\n", rc, err);
        fail ();
    }
    assert_int_equal (charge->status, RST_CHARGE_PENDING);
    assert_string_equal (charge->status_text, status_text);
    assert_int_equal (charge->amount_cents, req->amount_cents);
    s_assert_brcode (charge, req->amount_cents);
}

// ---------------------------------------------------------------------------
//  Setup

static const char *
s_source_dir (char *buf, size_t len)
{
    const char *env = getenv ("RASTRO_SOURCE_DIR");
    if (env && *env)
        return env;
    snprintf (buf, len, "%s", __FILE__);
    char *cut = strstr (buf, "/tests/unit/");
    if (cut)
        *cut = 0;
    else
        snprintf (buf, len, ".");
    return buf;
}

static int
s_bind_free (int *port_out, int keep)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    socklen_t alen = sizeof addr;
    if (bind (fd, (struct sockaddr *) &addr, sizeof addr)
        || getsockname (fd, (struct sockaddr *) &addr, &alen) || (keep && listen (fd, 16))) {
        close (fd);
        return -1;
    }
    *port_out = ntohs (addr.sin_port);
    if (!keep) {
        close (fd);
        return 0;
    }
    return fd;
}

static int
s_setup (void **state)
{
    (void) state;
    curl_global_init (CURL_GLOBAL_DEFAULT);
    char dir[1024], script[1200];
    snprintf (script, sizeof script, "%s/tests/fakes/fake_gateways.py",
              s_source_dir (dir, sizeof dir));
    if (access (script, R_OK)) {
        fprintf (stderr, "rst_gateway_http_test: cannot read %s\n", script);
        return -1;
    }
    int port = 0;
    if (s_bind_free (&port, 0))
        return -1;
    snprintf (s_fake_url, sizeof s_fake_url, "http://127.0.0.1:%d", port);
    char port_text[16];
    snprintf (port_text, sizeof port_text, "%d", port);
    s_fake_pid = fork ();
    if (s_fake_pid < 0)
        return -1;
    if (s_fake_pid == 0) {
        if (!getenv ("RASTRO_TEST_VERBOSE")) {
            int null = open ("/dev/null", O_WRONLY);
            if (null >= 0) {
                dup2 (null, 1);
                dup2 (null, 2);
            }
        }
        execlp ("python3", "python3", script, "--port", port_text, (char *) NULL);
        _exit (127);
    }
    int hook_port = 0;
    s_listen_fd = s_bind_free (&hook_port, 1);
    if (s_listen_fd < 0)
        return -1;
    snprintf (s_hook_url, sizeof s_hook_url, "http://127.0.0.1:%d/webhook", hook_port);
    if (pthread_create (&s_receiver, NULL, s_receiver_run, NULL))
        return -1;
    for (int i = 0; i < 200; i++) {             //  up to 20 s for python to start
        long status = 0;
        cJSON *j = s_fake ("/_fake/health", NULL, &status);
        cJSON_Delete (j);
        if (status == 200)
            return 0;
        int wst;
        if (waitpid (s_fake_pid, &wst, WNOHANG) == s_fake_pid) {
            fprintf (stderr, "rst_gateway_http_test: fake_gateways.py exited\n");
            s_fake_pid = -1;
            return -1;
        }
        usleep (100 * 1000);
    }
    fprintf (stderr, "rst_gateway_http_test: fake_gateways.py did not answer\n");
    return -1;
}

static int
s_teardown (void **state)
{
    (void) state;
    if (s_fake_pid > 0) {
        kill (s_fake_pid, SIGTERM);
        waitpid (s_fake_pid, NULL, 0);
        s_fake_pid = -1;
    }
    if (s_listen_fd >= 0) {
        shutdown (s_listen_fd, SHUT_RDWR);
        pthread_join (s_receiver, NULL);
        close (s_listen_fd);
        s_listen_fd = -1;
    }
    s_hooks_clear ();
    curl_global_cleanup ();
    return 0;
}

//  Before each test: a fresh fake (default credentials) and no webhooks.
static int
s_reset (void **state)
{
    (void) state;
    s_fake_ok ("/_fake/reset", "{}");
    s_hooks_clear ();
    return 0;
}

static rst_gateway_t *
s_gateway (rst_gw_kind_t kind, const char *creds)
{
    char err[256] = "";
    rst_gateway_t *gw = rst_gateway_new (kind, creds, s_fake_url, err, sizeof err);
    if (!gw)
        print_error ("rst_gateway_new: %s\n", err);
    assert_non_null (gw);
    return gw;
}

// ---------------------------------------------------------------------------
//  Tests

//  The tour, Mercado Pago: create, retry with the same key, get paid, get
//  the signed webhook, check it, read the payment.
static void
test_mercadopago_tour (void **state)
{
    (void) state;
    rst_gateway_t *gw = s_gateway (RST_GW_MERCADOPAGO, MP_CREDS);
    char hook[128];
    snprintf (hook, sizeof hook, "%s/mercadopago", s_hook_url);
    rst_charge_request_t req = {.amount_cents = 1990, .description = "Curso de PIX",
                                .reference = "42", .idempotency_key = "pay-42-a1b2",
                                .webhook_url = hook, .expires_in_s = 3600};
    rst_charge_t charge, again;
    char err[256] = "";
    s_create_pending (gw, &req, "pending", &charge);
    assert_true (charge.expires_at > (int64_t) time (NULL));

    //  A retry of the same charge (same key) is the same payment.
    assert_int_equal (rst_gateway_create (gw, &req, &again, err, sizeof err), RST_GW_OK);
    assert_string_equal (again.id, charge.id);
    assert_int_equal (s_charges ("mercadopago"), 1);
    rst_charge_clear (&again);

    //  What the fake received: amount in reais, the reference, the URL, the expiry.
    cJSON *calls = s_fake ("/_fake/calls", NULL, NULL);
    const cJSON *body = cJSON_GetObjectItemCaseSensitive (cJSON_GetArrayItem (calls, 0), "body");
    const cJSON *amount = cJSON_GetObjectItemCaseSensitive (body, "transaction_amount");
    assert_true (cJSON_IsNumber (amount));
    assert_true (amount->valuedouble > 19.899 && amount->valuedouble < 19.901);
    assert_string_equal (cJSON_GetObjectItemCaseSensitive (body, "external_reference")->valuestring,
                         "42");
    assert_string_equal (cJSON_GetObjectItemCaseSensitive (body, "notification_url")->valuestring,
                         hook);
    assert_true (cJSON_IsString (cJSON_GetObjectItemCaseSensitive (body, "date_of_expiration")));
    assert_string_equal (cJSON_GetObjectItemCaseSensitive (
                             cJSON_GetObjectItemCaseSensitive (body, "payer"), "email")->valuestring,
                         "pix@rastro.app");
    cJSON_Delete (calls);

    s_check_read (gw, charge.id, RST_CHARGE_PENDING, 1990, NULL);

    //  Paid: the webhook arrives signed; the C side parses and authenticates it.
    assert_int_equal (s_pay ("mercadopago", charge.id, ""), 1);
    char *secret = rst_gateway_webhook_secret (RST_GW_MERCADOPAGO, MP_CREDS);
    s_check_hook (0, RST_GW_MERCADOPAGO, charge.id, "payment.updated", secret, 0);
    rst_charge_t read;
    s_check_read (gw, charge.id, RST_CHARGE_PAID, 1990, &read);
    assert_string_equal (read.status_text, "approved");
    rst_charge_clear (&read);

    //  A forged signature is refused; duplicates are all authentic (dedupe is the caller's).
    s_hooks_clear ();
    assert_int_equal (s_pay ("mercadopago", charge.id, ",\"forge\":true,\"duplicate\":2"), 2);
    for (size_t i = 0; i < 2; i++)
        s_check_hook (i, RST_GW_MERCADOPAGO, charge.id, NULL, secret, -1);
    free (secret);
    rst_charge_clear (&charge);
    rst_gateway_destroy (&gw);
}

static void
test_mercadopago_errors (void **state)
{
    (void) state;
    rst_gateway_t *gw = s_gateway (RST_GW_MERCADOPAGO, MP_CREDS);
    rst_charge_request_t req = {.amount_cents = 5000, .description = "Plano",
                                .idempotency_key = "pay-7"};
    rst_charge_t charge;
    char err[256] = "";

    assert_int_equal (rst_gateway_read (gw, "999", &charge, err, sizeof err), RST_GW_NOT_FOUND);

    static const struct {
        const char *fault;
        rst_gw_result_t rc;
    } faults[] = {
        {"{\"status\":500}", RST_GW_TRANSIENT},
        {"{\"status\":503}", RST_GW_TRANSIENT},
        {"{\"status\":429}", RST_GW_TRANSIENT},
        {"{\"status\":400}", RST_GW_PERMANENT},
        {"{\"status\":404}", RST_GW_PERMANENT},     //  on a create: a wrong URL
        {"{\"malformed\":true}", RST_GW_PERMANENT},
        {NULL, 0},
    };
    for (int i = 0; faults[i].fault; i++) {
        char cfg[256];
        snprintf (cfg, sizeof cfg, "{\"faults\":{\"mp.create\":%s}}", faults[i].fault);
        s_fake_ok ("/_fake/config", cfg);
        assert_int_equal (rst_gateway_create (gw, &req, &charge, err, sizeof err), faults[i].rc);
        assert_null (charge.pix_code);
    }
    assert_int_equal (s_charges ("mercadopago"), 0);    //  faults do nothing

    //  A hang beyond the timeout is transient; the payment was made all the
    //  same, and the retry with the same key gets it (no second payment).
    s_fake_ok ("/_fake/config", "{\"faults\":{\"mp.create\":{\"hang\":2}}}");
    rst_gateway_set_timeout (gw, 500);
    assert_int_equal (rst_gateway_create (gw, &req, &charge, err, sizeof err), RST_GW_TRANSIENT);
    rst_gateway_set_timeout (gw, 0);
    sleep (3);
    assert_int_equal (rst_gateway_create (gw, &req, &charge, err, sizeof err), RST_GW_OK);
    assert_int_equal (s_charges ("mercadopago"), 1);
    rst_charge_clear (&charge);

    //  A 500 on read is transient too.
    s_fake_ok ("/_fake/config", "{\"faults\":{\"mp.read\":{\"status\":500}}}");
    assert_int_equal (rst_gateway_read (gw, "1310000001", &charge, err, sizeof err),
                      RST_GW_TRANSIENT);
    rst_gateway_destroy (&gw);

    //  Wrong access token: permanent, and the message does not repeat it.
    gw = s_gateway (RST_GW_MERCADOPAGO,
                    "{\"access_token\":\"APP_USR-wrong-token\",\"webhook_secret\":\"x\"}");
    req.idempotency_key = "pay-8";
    assert_int_equal (rst_gateway_create (gw, &req, &charge, err, sizeof err), RST_GW_PERMANENT);
    assert_non_null (strstr (err, "401"));
    assert_null (strstr (err, "wrong-token"));
    rst_gateway_destroy (&gw);

    //  A gateway that does not answer: the connection is refused -> transient.
    char err2[256];
    gw = rst_gateway_new (RST_GW_MERCADOPAGO, MP_CREDS, "http://127.0.0.1:1", err2, sizeof err2);
    assert_non_null (gw);
    assert_int_equal (rst_gateway_read (gw, "1", &charge, err, sizeof err), RST_GW_TRANSIENT);
    rst_gateway_destroy (&gw);
}

static void
test_pushinpay (void **state)
{
    (void) state;
    rst_gateway_t *gw = s_gateway (RST_GW_PUSHINPAY, PP_CREDS);
    char hook[128];
    snprintf (hook, sizeof hook, "%s/pushinpay", s_hook_url);
    rst_charge_request_t req = {.amount_cents = 1990, .description = "Grupo VIP",
                                .idempotency_key = "pay-9", .webhook_url = hook};
    rst_charge_t charge, read;
    char err[256] = "";
    s_create_pending (gw, &req, "created", &charge);
    assert_int_equal (strlen (charge.id), 36);          //  a UUID

    //  The amount went as integer centavos.
    cJSON *calls = s_fake ("/_fake/calls", NULL, NULL);
    const cJSON *body = cJSON_GetObjectItemCaseSensitive (cJSON_GetArrayItem (calls, 0), "body");
    assert_int_equal (cJSON_GetObjectItemCaseSensitive (body, "value")->valueint, 1990);
    cJSON_Delete (calls);

    //  The read has the code in pix_details.emv.
    s_check_read (gw, charge.id, RST_CHARGE_PENDING, 1990, &read);
    assert_string_equal (read.pix_code, charge.pix_code);
    assert_true (read.expires_at > 0);
    rst_charge_clear (&read);

    //  Below 50 centavos: PushinPay's 422, permanent.
    req.amount_cents = 49;
    assert_int_equal (rst_gateway_create (gw, &req, &read, err, sizeof err), RST_GW_PERMANENT);
    assert_non_null (strstr (err, "422"));

    //  An unknown id answers [] -> not found.
    assert_int_equal (rst_gateway_read (gw, "9c29870c-9f69-4bb6-90d3-2dce9453bb45", &read, err,
                                        sizeof err),
                      RST_GW_NOT_FOUND);

    //  Paid (JSON webhook, then form-urlencoded), authenticated by the token.
    char *secret = rst_gateway_webhook_secret (RST_GW_PUSHINPAY, PP_CREDS);
    assert_int_equal (s_pay ("pushinpay", charge.id, ""), 1);
    assert_int_equal (s_pay ("pushinpay", charge.id, ",\"form\":true"), 1);
    for (size_t i = 0; i < 2; i++)
        s_check_hook (i, RST_GW_PUSHINPAY, charge.id, "paid", secret, 0);
    s_hooks_clear ();
    assert_int_equal (s_pay ("pushinpay", charge.id, ",\"forge\":true"), 1);
    s_check_hook (0, RST_GW_PUSHINPAY, charge.id, NULL, secret, -1);
    free (secret);
    s_check_read (gw, charge.id, RST_CHARGE_PAID, 1990, NULL);

    //  A payment of another amount shows in the read (the caller compares).
    s_pay ("pushinpay", charge.id, ",\"webhook\":false,\"amount_cents\":1000");
    s_check_read (gw, charge.id, RST_CHARGE_PAID, 1000, NULL);
    s_pay ("pushinpay", charge.id, ",\"webhook\":false,\"status\":\"canceled\"");
    s_check_read (gw, charge.id, RST_CHARGE_EXPIRED, -1, NULL);

    //  Faults.
    s_fake_ok ("/_fake/config", "{\"faults\":{\"pp.read\":{\"status\":429}}}");
    assert_int_equal (rst_gateway_read (gw, charge.id, &read, err, sizeof err), RST_GW_TRANSIENT);
    s_fake_ok ("/_fake/config", "{\"faults\":{\"pp.read\":{\"malformed\":true}}}");
    assert_int_equal (rst_gateway_read (gw, charge.id, &read, err, sizeof err), RST_GW_PERMANENT);
    rst_charge_clear (&charge);
    rst_gateway_destroy (&gw);

    //  A wrong API token.
    gw = s_gateway (RST_GW_PUSHINPAY, "{\"token\":\"pp-wrong-token\",\"webhook_token\":\"w\"}");
    req.amount_cents = 1990;
    assert_int_equal (rst_gateway_create (gw, &req, &charge, err, sizeof err), RST_GW_PERMANENT);
    assert_null (strstr (err, "pp-wrong-token"));
    rst_gateway_destroy (&gw);
}

static void
test_syncpay (void **state)
{
    (void) state;
    rst_gateway_t *gw = s_gateway (RST_GW_SYNCPAY, SP_CREDS);
    char hook[128];
    snprintf (hook, sizeof hook, "%s/syncpay", s_hook_url);
    rst_charge_request_t req = {.amount_cents = 2590, .description = "Mentoria",
                                .idempotency_key = "pay-11", .webhook_url = hook};
    rst_charge_t charge, read;
    char err[256] = "";
    s_create_pending (gw, &req, "pending", &charge);
    assert_int_equal (s_calls ("sp.token"), 1);

    //  The token is cached across calls.
    s_check_read (gw, charge.id, RST_CHARGE_PENDING, 2590, &read);
    assert_string_equal (read.pix_code, charge.pix_code);
    rst_charge_clear (&read);
    assert_int_equal (s_calls ("sp.token"), 1);

    //  Revoked tokens: the next call gets 401, renews the token once, retries.
    s_fake_ok ("/_fake/revoke_tokens", "{}");
    assert_int_equal (rst_gateway_read (gw, charge.id, &read, err, sizeof err), RST_GW_OK);
    rst_charge_clear (&read);
    assert_int_equal (s_calls ("sp.token"), 2);
    //  One 401 is absorbed; two in a row are permanent.
    s_fake_ok ("/_fake/config", "{\"faults\":{\"sp.read\":{\"status\":401,\"count\":1}}}");
    assert_int_equal (rst_gateway_read (gw, charge.id, &read, err, sizeof err), RST_GW_OK);
    rst_charge_clear (&read);
    assert_int_equal (s_calls ("sp.token"), 3);
    s_fake_ok ("/_fake/config", "{\"faults\":{\"sp.read\":{\"status\":401,\"count\":2}}}");
    assert_int_equal (rst_gateway_read (gw, charge.id, &read, err, sizeof err), RST_GW_PERMANENT);

    //  Paid: the webhook (nested data) parses to the identifier; no auth to check.
    assert_int_equal (s_pay ("syncpay", charge.id, ""), 1);
    s_check_hook (0, RST_GW_SYNCPAY, charge.id, "completed", NULL, 0);
    s_check_read (gw, charge.id, RST_CHARGE_PAID, 2590, NULL);
    s_pay ("syncpay", charge.id, ",\"webhook\":false,\"status\":\"med\"");
    s_check_read (gw, charge.id, RST_CHARGE_REFUNDED, -1, NULL);

    assert_int_equal (rst_gateway_read (gw, "no-such-identifier", &read, err, sizeof err),
                      RST_GW_NOT_FOUND);
    s_fake_ok ("/_fake/config", "{\"faults\":{\"sp.create\":{\"status\":500}}}");
    assert_int_equal (rst_gateway_create (gw, &req, &read, err, sizeof err), RST_GW_TRANSIENT);
    s_fake_ok ("/_fake/config", "{\"faults\":{\"sp.token\":{\"status\":503}}}");
    s_fake_ok ("/_fake/revoke_tokens", "{}");
    assert_int_equal (rst_gateway_create (gw, &req, &read, err, sizeof err), RST_GW_TRANSIENT);
    rst_charge_clear (&charge);
    rst_gateway_destroy (&gw);

    //  Wrong client secret: permanent, never echoed; a placeholder client
    //  was sent above, a configured one is sent as given.
    gw = s_gateway (RST_GW_SYNCPAY,
                    "{\"client_id\":\"sp-client-id\",\"client_secret\":\"sp-wrong-secret\"}");
    assert_int_equal (rst_gateway_create (gw, &req, &charge, err, sizeof err), RST_GW_PERMANENT);
    assert_non_null (strstr (err, "401"));
    assert_null (strstr (err, "sp-wrong-secret"));
    rst_gateway_destroy (&gw);

    gw = s_gateway (RST_GW_SYNCPAY,
                    "{\"client_id\":\"sp-client-id\",\"client_secret\":\"sp-client-secret\","
                    "\"client\":{\"name\":\"Loja da Ana\",\"cpf\":\"11144477735\","
                    "\"email\":\"ana@loja.com.br\",\"phone\":\"21988887777\"}}");
    s_fake_ok ("/_fake/reset", "{}");
    assert_int_equal (rst_gateway_create (gw, &req, &charge, err, sizeof err), RST_GW_OK);
    cJSON *calls = s_fake ("/_fake/calls", NULL, NULL);
    const cJSON *c;
    int seen = 0;
    cJSON_ArrayForEach (c, calls) {
        const cJSON *body = cJSON_GetObjectItemCaseSensitive (c, "body");
        const cJSON *client = cJSON_GetObjectItemCaseSensitive (body, "client");
        if (client) {
            assert_string_equal (cJSON_GetObjectItemCaseSensitive (client, "cpf")->valuestring,
                                 "11144477735");
            seen++;
        }
    }
    assert_int_equal (seen, 1);
    cJSON_Delete (calls);
    rst_charge_clear (&charge);
    rst_gateway_destroy (&gw);
}

int
main (void)
{
    signal (SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup (test_mercadopago_tour, s_reset),
        cmocka_unit_test_setup (test_mercadopago_errors, s_reset),
        cmocka_unit_test_setup (test_pushinpay, s_reset),
        cmocka_unit_test_setup (test_syncpay, s_reset),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
