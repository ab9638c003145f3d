/*  rst_telegram — a small client of the Telegram Bot API (libcurl + cJSON).

    A call is one HTTP request on the object's CURL handle (kept between
    calls, so the connection to api.telegram.org is reused):

        URL   <base>/bot<TOKEN>/<method>
        GET   when there are no parameters, else POST application/json
        reply read into a growing buffer (capped at RST_TELEGRAM_REPLY_MAX),
              then parsed as the envelope whatever the HTTP status was

    Errors are reported in three layers, first match wins: transport
    (libcurl's message, with the token scrubbed out), the envelope's
    ok=false (error_code + description; 401 gets the "check the token from
    @BotFather" sentence), and a reply that is not an envelope at all.

    Secrets: the token appears only in the URL given to libcurl. Every
    message built here is passed through s_scrub before it leaves, and
    CURLOPT_VERBOSE stays off.
*/
#include "rst_telegram.h"

#include <assert.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rst_telegram_t {
    CURL *curl;                 //  easy handle, reused across calls
    char *base_url;             //  e.g. https://api.telegram.org, no trailing slash
    char curl_error[CURL_ERROR_SIZE];  //  CURLOPT_ERRORBUFFER
};

//  Growing reply buffer for the write callback.
typedef struct {
    char *data;
    size_t len;
    size_t cap;
    int too_big;                //  1 when the reply passed RST_TELEGRAM_REPLY_MAX
} s_reply_t;

static pthread_once_t s_curl_once = PTHREAD_ONCE_INIT;
static CURLcode s_curl_status = CURLE_FAILED_INIT;   //  written once, then read-only

static void
s_curl_init_once (void)
{
    s_curl_status = curl_global_init (CURL_GLOBAL_DEFAULT);
}

//  Replaces every occurrence of TOKEN in BUF (and of its secret part, in case
//  a message quotes a fragment) with "<token>" / "***".
static void
s_scrub (char *buf, size_t buflen, const char *token)
{
    if (!buf || !token || !*token)
        return;
    size_t tlen = strlen (token);
    char *hit;
    while ((hit = strstr (buf, token))) {
        static const char repl[] = "<token>";
        size_t rest = strlen (hit + tlen);
        size_t rlen = sizeof repl - 1;
        if (hit - buf + rlen + rest + 1 > buflen)
            rlen = 0;               //  cannot happen (token is longer), but stay safe
        memmove (hit + rlen, hit + tlen, rest + 1);
        memcpy (hit, repl, rlen);
    }
    const char *colon = strchr (token, ':');
    if (colon && strlen (colon + 1) >= 8) {
        const char *secret = colon + 1;
        size_t slen = strlen (secret);
        for (hit = strstr (buf, secret); hit; hit = strstr (hit + slen, secret))
            memset (hit, '*', slen);
    }
}

int64_t
rst_telegram_token_bot_id (const char *token)
{
    char err[8];
    if (!token || rst_telegram_token_check (token, err, sizeof err))
        return -1;
    return strtoll (token, NULL, 10);
}

int
rst_telegram_token_check (const char *token, char *err, size_t errlen)
{
    if (!token || !*token) {
        snprintf (err, errlen, "the bot token is empty");
        return -1;
    }
    size_t len = strlen (token);
    if (len > RST_TELEGRAM_TOKEN_MAX) {
        snprintf (err, errlen, "the bot token is %zu characters long; Telegram tokens have at "
                  "most %d", len, RST_TELEGRAM_TOKEN_MAX);
        return -1;
    }
    const char *colon = strchr (token, ':');
    if (!colon) {
        snprintf (err, errlen, "the bot token has no ':'; a token from @BotFather looks like "
                  "123456789:AAE...");
        return -1;
    }
    size_t id_len = (size_t) (colon - token);
    if (id_len == 0 || token[0] == '0') {
        snprintf (err, errlen, "the bot token must start with the bot's id (a positive number "
                  "without a leading 0) before the ':'");
        return -1;
    }
    int64_t id = 0;
    for (const char *s = token; s < colon; s++) {
        if (*s < '0' || *s > '9') {
            snprintf (err, errlen, "the bot token must start with the bot's id (digits only) "
                      "before the ':'");
            return -1;
        }
        id = id * 10 + (*s - '0');
        if (id >= RST_TELEGRAM_BOT_ID_LIMIT) {
            snprintf (err, errlen, "the bot id in the token is too large (bot ids are below "
                      "2^54)");
            return -1;
        }
    }
    if (!colon[1]) {
        snprintf (err, errlen, "the bot token has nothing after the ':'");
        return -1;
    }
    for (const char *s = colon + 1; *s; s++) {
        char c = *s;
        int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
                 || c == '_' || c == '-';
        if (!ok) {
            snprintf (err, errlen, "the bot token contains a character other than letters, "
                      "digits, '_' and '-' after the ':'%s",
                      c == '/' ? " (a '/')" : (c == ' ' || c == '\t') ? " (a space)" : "");
            return -1;
        }
    }
    return 0;
}

rst_telegram_t *
rst_telegram_new (const char *base_url, char *err, size_t errlen)
{
    assert (base_url);
    pthread_once (&s_curl_once, s_curl_init_once);
    if (s_curl_status != CURLE_OK) {
        snprintf (err, errlen, "libcurl: %s", curl_easy_strerror (s_curl_status));
        return NULL;
    }
    if (strncmp (base_url, "http://", 7) && strncmp (base_url, "https://", 8)) {
        snprintf (err, errlen, "Telegram API URL must start with http:// or https:// (got %s)",
                  base_url);
        return NULL;
    }
    rst_telegram_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, errlen, "out of memory");
        return NULL;
    }
    self->base_url = strdup (base_url);
    if (!self->base_url) {
        snprintf (err, errlen, "out of memory");
        goto fail;
    }
    size_t n = strlen (self->base_url);
    while (n > 0 && self->base_url[n - 1] == '/')
        self->base_url[--n] = 0;
    self->curl = curl_easy_init ();
    if (!self->curl) {
        snprintf (err, errlen, "libcurl: cannot create a handle");
        goto fail;
    }
    return self;

fail:
    rst_telegram_destroy (&self);
    return NULL;
}

void
rst_telegram_destroy (rst_telegram_t **self_p)
{
    assert (self_p);
    rst_telegram_t *self = *self_p;
    if (!self)
        return;
    if (self->curl)
        curl_easy_cleanup (self->curl);
    free (self->base_url);
    free (self);
    *self_p = NULL;
}

static size_t
s_on_data (char *ptr, size_t size, size_t nmemb, void *userdata)
{
    s_reply_t *reply = userdata;
    size_t n = size * nmemb;
    if (reply->len + n > RST_TELEGRAM_REPLY_MAX) {
        reply->too_big = 1;
        return 0;               //  makes libcurl stop with CURLE_WRITE_ERROR
    }
    if (reply->len + n + 1 > reply->cap) {
        size_t cap = reply->cap ? reply->cap : 4096;
        while (cap < reply->len + n + 1)
            cap *= 2;
        char *data = realloc (reply->data, cap);
        if (!data)
            return 0;
        reply->data = data;
        reply->cap = cap;
    }
    memcpy (reply->data + reply->len, ptr, n);
    reply->len += n;
    reply->data[reply->len] = 0;
    return n;
}

//  The envelope's description, or "" (borrowed from ROOT).
static const char *
s_description (const cJSON *root)
{
    const cJSON *d = cJSON_GetObjectItemCaseSensitive (root, "description");
    return cJSON_IsString (d) && d->valuestring ? d->valuestring : "";
}

int
rst_telegram_call (rst_telegram_t *self, const char *token, const char *method,
                   const cJSON *params, long timeout_ms, cJSON **result_p,
                   rst_telegram_status_t *status, char *err, size_t errlen)
{
    assert (self && token && method);
    rst_telegram_status_t local_status;
    if (!status)
        status = &local_status;
    memset (status, 0, sizeof *status);
    if (result_p)
        *result_p = NULL;

    int rc = -1;
    char *url = NULL, *body = NULL;
    s_reply_t reply = {0};
    struct curl_slist *headers = NULL;
    cJSON *root = NULL;
    char why[512] = "";

    size_t url_len = strlen (self->base_url) + strlen (token) + strlen (method) + 8;
    url = malloc (url_len);
    if (!url) {
        snprintf (why, sizeof why, "out of memory");
        goto done;
    }
    snprintf (url, url_len, "%s/bot%s/%s", self->base_url, token, method);

    CURL *curl = self->curl;
    curl_easy_reset (curl);
    self->curl_error[0] = 0;
    curl_easy_setopt (curl, CURLOPT_URL, url);
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (curl, CURLOPT_ERRORBUFFER, self->curl_error);
    curl_easy_setopt (curl, CURLOPT_CONNECTTIMEOUT_MS, (long) RST_TELEGRAM_CONNECT_TIMEOUT_MS);
    curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms
                                                               : (long) RST_TELEGRAM_TIMEOUT_MS);
    curl_easy_setopt (curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt (curl, CURLOPT_USERAGENT, "rastro");
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_on_data);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, &reply);
    headers = curl_slist_append (headers, "Accept: application/json");
    if (params) {
        body = cJSON_PrintUnformatted (params);
        if (!body) {
            snprintf (why, sizeof why, "out of memory");
            goto done;
        }
        struct curl_slist *more = curl_slist_append (headers, "Content-Type: application/json");
        if (more)
            headers = more;
        curl_easy_setopt (curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt (curl, CURLOPT_POSTFIELDSIZE, (long) strlen (body));
    }
    curl_easy_setopt (curl, CURLOPT_HTTPHEADER, headers);

    CURLcode cc = curl_easy_perform (curl);
    curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &status->http_status);
    if (cc != CURLE_OK) {
        if (reply.too_big)
            snprintf (why, sizeof why, "Telegram %s: reply larger than %d bytes", method,
                      RST_TELEGRAM_REPLY_MAX);
        else
            snprintf (why, sizeof why, "Telegram %s: libcurl: %s", method,
                      self->curl_error[0] ? self->curl_error : curl_easy_strerror (cc));
        goto done;
    }

    root = reply.data ? cJSON_ParseWithLength (reply.data, reply.len) : NULL;
    const cJSON *ok = cJSON_GetObjectItemCaseSensitive (root, "ok");
    if (!cJSON_IsObject (root) || !cJSON_IsBool (ok)) {
        if (status->http_status == 401)
            snprintf (why, sizeof why, "Telegram rejected this bot token (401 Unauthorized): "
                      "check the token from @BotFather");
        else
            snprintf (why, sizeof why, "Telegram %s: unexpected reply (HTTP %ld, not a Bot API "
                      "answer): is RASTRO_TELEGRAM_API_URL right?", method, status->http_status);
        goto done;
    }
    if (cJSON_IsFalse (ok)) {
        const cJSON *code = cJSON_GetObjectItemCaseSensitive (root, "error_code");
        status->error_code = cJSON_IsNumber (code) ? code->valueint : (int) status->http_status;
        const cJSON *p = cJSON_GetObjectItemCaseSensitive (root, "parameters");
        const cJSON *ra = cJSON_GetObjectItemCaseSensitive (p, "retry_after");
        if (cJSON_IsNumber (ra) && ra->valueint > 0)
            status->retry_after = ra->valueint;
        if (status->error_code == 401 || status->http_status == 401)
            snprintf (why, sizeof why, "Telegram rejected this bot token (401 Unauthorized): "
                      "check the token from @BotFather");
        else if (status->retry_after)
            snprintf (why, sizeof why, "Telegram %s: %d %s (retry after %d s)", method,
                      status->error_code, s_description (root), status->retry_after);
        else
            snprintf (why, sizeof why, "Telegram %s: %d %s", method, status->error_code,
                      s_description (root));
        goto done;
    }
    if (result_p) {
        *result_p = cJSON_DetachItemFromObjectCaseSensitive (root, "result");
        if (!*result_p) {
            snprintf (why, sizeof why, "Telegram %s: the answer has no result", method);
            goto done;
        }
    }
    rc = 0;

done:
    if (rc) {
        //  Fold to one line, then scrub: nothing below may carry the token.
        for (char *s = why; *s; s++)
            if (*s == '\n' || *s == '\r' || *s == '\t')
                *s = ' ';
        s_scrub (why, sizeof why, token);
        snprintf (err, errlen, "%s", why);
    }
    self->curl_error[0] = 0;
    cJSON_Delete (root);
    curl_slist_free_all (headers);
    //  The URL holds the token: wipe it before it goes back to the heap.
    if (url) {
        memset (url, 0, strlen (url));
        free (url);
    }
    cJSON_free (body);
    free (reply.data);
    return rc;
}

int
rst_telegram_get_me (rst_telegram_t *self, const char *token, rst_telegram_bot_t *bot,
                     char *err, size_t errlen)
{
    assert (self && bot);
    memset (bot, 0, sizeof *bot);
    if (rst_telegram_token_check (token, err, errlen))
        return -1;
    cJSON *result = NULL;
    if (rst_telegram_call (self, token, "getMe", NULL, 0, &result, NULL, err, errlen))
        return -1;
    int rc = -1;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive (result, "id");
    const cJSON *username = cJSON_GetObjectItemCaseSensitive (result, "username");
    if (!cJSON_IsNumber (id) || !cJSON_IsString (username) || !username->valuestring) {
        snprintf (err, errlen, "Telegram getMe: the answer has no id or username");
        goto done;
    }
    //  cJSON keeps numbers as doubles: exact for ids below 2^53, and bot ids
    //  in practice are far below that. Compare with the token's own id.
    int64_t expected = rst_telegram_token_bot_id (token);
    if (id->valuedouble != (double) expected) {
        snprintf (err, errlen, "Telegram getMe answered for bot id %.0f, but the token is for "
                  "bot id %lld", id->valuedouble, (long long) expected);
        goto done;
    }
    size_t ulen = strlen (username->valuestring);
    if (ulen == 0 || ulen >= sizeof bot->username) {
        snprintf (err, errlen, "Telegram getMe: the bot's username is empty or too long");
        goto done;
    }
    bot->id = expected;
    memcpy (bot->username, username->valuestring, ulen + 1);
    rc = 0;

done:
    cJSON_Delete (result);
    return rc;
}
