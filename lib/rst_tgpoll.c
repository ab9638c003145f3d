/*  rst_tgpoll — long polling of many Telegram bots from one thread.

    Each bot is an s_bot_t with its own CURL easy handle, made once in
    set_bot with the URL <base>/bot<TOKEN>/getUpdates and every option
    that never changes; a poll only sets the JSON body (offset moves) and
    adds the handle to the multi handle. libcurl keeps the connections in
    the multi handle's cache, so a bot's next poll reuses its socket.

    rst_tgpoll_run, one round:
        1. start the polls of idle bots whose next_at has come
        2. curl_multi_perform
        3. collect finished transfers: take each handle out of the multi
           handle and mark its bot finished (nothing is called yet)
        4. dispatch: for each finished bot, read the reply with
           rst_telegram_reply_parse, call the callbacks, set next_at
        5. free the bots that callbacks removed meanwhile
        6. if nothing finished, curl_multi_poll until the next due bot,
           curl's own timeout or the caller's deadline, and go again

    Callbacks may add, change or remove bots. Removal during step 4 only
    marks the bot (the array is being walked); step 5 frees it. Bots are
    allocated one by one, so a pointer held across a callback stays valid
    while the array grows.

    The handle options and the reply buffer are rst_http's, shared with
    rst_telegram and rst_gateway.

    Secrets: the token is in the bot's URL (our copy is wiped after libcurl
    copied it) and in bot->token (wiped on removal). Errors are built from
    curl_easy_strerror and the reply's envelope (scrubbed by
    rst_telegram_reply_parse), never from libcurl's error buffer, which can
    quote the URL.
*/
#include "rst_tgpoll.h"

#include "rst_clock.h"
#include "rst_http.h"
#include "rst_log.h"

#include <assert.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  One bot being polled.
typedef struct {
    int64_t bot_id;
    char *token;                    //  the bot's token (secret; wiped on free)
    int64_t offset;                 //  next getUpdates offset
    CURL *easy;                     //  this bot's handle, kept for keep-alive
    int active;                     //  1 while the handle is in the multi handle
    int finished;                   //  1 between collect and dispatch
    int removed;                    //  1 when removed during dispatch (freed afterwards)
    CURLcode result;                //  the finished transfer's outcome
    int64_t started_ms;             //  monotonic start of the poll in flight
    int64_t next_at_ms;             //  idle until this monotonic time
    int failures;                   //  consecutive failed polls (exponential backoff)
    int retry_after_header;         //  Retry-After of the last reply (rst_telegram_on_header)
    rst_http_buf_t reply;           //  reply body, up to RST_TELEGRAM_REPLY_MAX
} s_bot_t;

struct rst_tgpoll_t {
    CURLM *multi;                   //  drives every bot's transfer
    char *base_url;                 //  no trailing slash
    int timeout_s;                  //  getUpdates timeout
    struct curl_slist *headers;     //  shared request headers
    s_bot_t **bots;                 //  every bot, removed ones included until the sweep
    size_t nbots;
    size_t cap;
    size_t count;                   //  bots not removed
    int dispatching;                //  1 while step 4 walks the array
    uint64_t rng;                   //  xorshift state for jitter
};

static uint64_t
s_rand (rst_tgpoll_t *self)
{
    self->rng ^= self->rng << 13;
    self->rng ^= self->rng >> 7;
    self->rng ^= self->rng << 17;
    return self->rng;
}

rst_tgpoll_t *
rst_tgpoll_new (const char *base_url, int timeout_s, char *err, size_t errlen)
{
    assert (base_url);
    rst_tgpoll_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, errlen, "out of memory");
        return NULL;
    }
    if (rst_http_client_init ("Telegram", base_url, NULL, &self->base_url, NULL, err, errlen))
        goto fail;
    if (timeout_s < 0 || timeout_s > RST_TGPOLL_TIMEOUT_MAX_S) {
        snprintf (err, errlen, "the long poll timeout must be 0-%d s (got %d)",
                  RST_TGPOLL_TIMEOUT_MAX_S, timeout_s);
        goto fail;
    }
    self->timeout_s = timeout_s ? timeout_s : RST_TGPOLL_TIMEOUT_S;
    self->rng = rst_clock_mono_ns () ^ (uint64_t) (uintptr_t) self;
    if (!self->rng)
        self->rng = 0x9E3779B97F4A7C15ull;
    self->multi = curl_multi_init ();
    struct curl_slist *h = curl_slist_append (NULL, "Content-Type: application/json");
    struct curl_slist *h2 = h ? curl_slist_append (h, "Accept: application/json") : NULL;
    self->headers = h2 ? h2 : h;
    if (!self->multi || !h2) {
        snprintf (err, errlen, "out of memory (or libcurl could not make a multi handle)");
        goto fail;
    }
    return self;

fail:
    rst_tgpoll_destroy (&self);
    return NULL;
}

//  Frees BOT: its handle leaves the multi handle first, the token is wiped.
static void
s_bot_free (rst_tgpoll_t *self, s_bot_t *bot)
{
    if (bot->easy) {
        if (bot->active)
            curl_multi_remove_handle (self->multi, bot->easy);
        curl_easy_cleanup (bot->easy);
    }
    if (bot->token) {
        memset (bot->token, 0, strlen (bot->token));
        free (bot->token);
    }
    rst_http_buf_destroy (&bot->reply);
    free (bot);
}

void
rst_tgpoll_destroy (rst_tgpoll_t **self_p)
{
    assert (self_p);
    rst_tgpoll_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->nbots; i++)
        s_bot_free (self, self->bots[i]);
    free (self->bots);
    if (self->multi)
        curl_multi_cleanup (self->multi);
    curl_slist_free_all (self->headers);
    free (self->base_url);
    free (self);
    *self_p = NULL;
}

//  The bot with BOT_ID that is not removed, or NULL.
static s_bot_t *
s_find (const rst_tgpoll_t *self, int64_t bot_id)
{
    for (size_t i = 0; i < self->nbots; i++)
        if (self->bots[i]->bot_id == bot_id && !self->bots[i]->removed)
            return self->bots[i];
    return NULL;
}

//  Takes BOT's transfer out of the multi handle (if it is in).
static void
s_cancel (rst_tgpoll_t *self, s_bot_t *bot)
{
    if (bot->active) {
        curl_multi_remove_handle (self->multi, bot->easy);
        bot->active = 0;
    }
    bot->finished = 0;
}

//  (Re)creates BOT's easy handle for TOKEN. 0 or -1.
static int
s_bot_handle (rst_tgpoll_t *self, s_bot_t *bot, const char *token)
{
    if (bot->easy) {
        curl_easy_cleanup (bot->easy);
        bot->easy = NULL;
    }
    size_t url_len = strlen (self->base_url) + strlen (token) + 20;
    char *url = malloc (url_len);
    CURL *easy = curl_easy_init ();
    if (!url || !easy) {
        free (url);
        if (easy)
            curl_easy_cleanup (easy);
        return -1;
    }
    snprintf (url, url_len, "%s/bot%s/getUpdates", self->base_url, token);
    //  No error buffer: libcurl's messages can quote the URL, hence the token.
    int rc = rst_http_easy_setup (easy, url, NULL, RST_TELEGRAM_CONNECT_TIMEOUT_MS,
                                  (long) self->timeout_s * 1000 + RST_TGPOLL_SLACK_MS,
                                  &bot->reply);
    memset (url, 0, strlen (url));  //  libcurl keeps its own copy
    free (url);
    if (rc) {
        curl_easy_cleanup (easy);
        return -1;
    }
    //  One connection per bot: with HTTP/2 libcurl would multiplex every long poll onto
    //  one connection and stall on the server's stream limit.
    curl_easy_setopt (easy, CURLOPT_HTTP_VERSION, (long) CURL_HTTP_VERSION_1_1);
    curl_easy_setopt (easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt (easy, CURLOPT_HTTPHEADER, self->headers);
    curl_easy_setopt (easy, CURLOPT_HEADERFUNCTION, rst_telegram_on_header);
    curl_easy_setopt (easy, CURLOPT_HEADERDATA, &bot->retry_after_header);
    curl_easy_setopt (easy, CURLOPT_PRIVATE, bot);
    bot->easy = easy;
    return 0;
}

int
rst_tgpoll_set_bot (rst_tgpoll_t *self, int64_t bot_id, const char *token, int64_t offset)
{
    assert (self);
    char why[160];
    if (bot_id <= 0 || rst_telegram_token_check (token, why, sizeof why)) {
        rst_warn ("tgpoll", "bot %lld not polled: %s", (long long) bot_id,
                  bot_id <= 0 ? "bad bot id" : why);
        return -1;
    }
    s_bot_t *bot = s_find (self, bot_id);
    if (bot && strcmp (bot->token, token) == 0) {
        if (offset > bot->offset)
            bot->offset = offset;
        return 0;
    }
    char *copy = strdup (token);
    if (!copy)
        return -1;
    int is_new = bot == NULL;
    if (is_new) {
        if (self->nbots == self->cap) {
            size_t cap = self->cap ? self->cap * 2 : 64;
            s_bot_t **bots = realloc (self->bots, cap * sizeof *bots);
            if (!bots) {
                free (copy);
                return -1;
            }
            self->bots = bots;
            self->cap = cap;
        }
        bot = calloc (1, sizeof *bot);
        if (!bot) {
            free (copy);
            return -1;
        }
        bot->bot_id = bot_id;
        rst_http_buf_init (&bot->reply, RST_TELEGRAM_REPLY_MAX);
    }
    else
        s_cancel (self, bot);
    if (s_bot_handle (self, bot, copy)) {
        memset (copy, 0, strlen (copy));
        free (copy);
        if (is_new)
            free (bot);
        else
            rst_tgpoll_remove_bot (self, bot_id);   //  no handle: cannot poll it
        return -1;
    }
    if (bot->token) {
        memset (bot->token, 0, strlen (bot->token));
        free (bot->token);
    }
    bot->token = copy;
    bot->offset = offset;
    bot->failures = 0;
    bot->next_at_ms = 0;            //  poll at once
    if (is_new) {
        self->bots[self->nbots++] = bot;
        self->count++;
    }
    return 0;
}

void
rst_tgpoll_remove_bot (rst_tgpoll_t *self, int64_t bot_id)
{
    assert (self);
    s_bot_t *bot = s_find (self, bot_id);
    if (!bot)
        return;
    s_cancel (self, bot);
    bot->removed = 1;
    memset (bot->token, 0, strlen (bot->token));
    self->count--;
    if (self->dispatching)
        return;                     //  the sweep after the dispatch frees it
    for (size_t i = 0; i < self->nbots; i++)
        if (self->bots[i] == bot) {
            self->bots[i] = self->bots[--self->nbots];
            break;
        }
    s_bot_free (self, bot);
}

size_t
rst_tgpoll_count (const rst_tgpoll_t *self)
{
    assert (self);
    return self->count;
}

int64_t
rst_tgpoll_offset (const rst_tgpoll_t *self, int64_t bot_id)
{
    assert (self);
    const s_bot_t *bot = s_find (self, bot_id);
    return bot ? bot->offset : -1;
}

//  Starts BOT's next getUpdates. On failure the bot waits like after a network error.
static void
s_start (rst_tgpoll_t *self, s_bot_t *bot, int64_t now)
{
    char body[192];
    snprintf (body, sizeof body,
              "{\"offset\":%lld,\"limit\":%d,\"timeout\":%d,"
              "\"allowed_updates\":[\"message\",\"callback_query\",\"chat_member\"]}",
              (long long) bot->offset, RST_TGPOLL_LIMIT, self->timeout_s);
    rst_http_buf_rewind (&bot->reply, SIZE_MAX);
    bot->retry_after_header = 0;
    bot->started_ms = now;
    if (curl_easy_setopt (bot->easy, CURLOPT_COPYPOSTFIELDS, body) != CURLE_OK
        || curl_multi_add_handle (self->multi, bot->easy) != CURLM_OK) {
        rst_warn ("tgpoll", "bot %lld: libcurl could not start a poll", (long long) bot->bot_id);
        bot->next_at_ms = now + RST_TGPOLL_BACKOFF_MAX_MS;
        return;
    }
    bot->active = 1;
}

//  Starts every due poll; returns the earliest next_at of the bots left idle, or
//  INT64_MAX.
static int64_t
s_start_due (rst_tgpoll_t *self, int64_t now)
{
    int64_t next = INT64_MAX;
    for (size_t i = 0; i < self->nbots; i++) {
        s_bot_t *bot = self->bots[i];
        if (bot->active || bot->removed)
            continue;
        if (bot->next_at_ms <= now)
            s_start (self, bot, now);
        if (!bot->active && bot->next_at_ms < next)
            next = bot->next_at_ms;
    }
    return next;
}

//  How long BOT waits after a failed poll described by STATUS (milliseconds).
static int64_t
s_error_delay (rst_tgpoll_t *self, s_bot_t *bot, const rst_telegram_status_t *status)
{
    int code = status->error_code ? status->error_code : (int) status->http_status;
    bot->failures++;
    if (code == 429 && status->retry_after > 0) {
        int s = status->retry_after < RST_TGPOLL_RETRY_AFTER_MAX_S ? status->retry_after
                                                                  : RST_TGPOLL_RETRY_AFTER_MAX_S;
        return (int64_t) s * 1000 + (int64_t) (s_rand (self) % 250);   //  at least that long
    }
    if (code == 401)
        return RST_TGPOLL_UNAUTHORIZED_MS;
    if (code == 409)
        return RST_TGPOLL_CONFLICT_MS;
    //  1, 2, 4 ... 30 s, each drawn from [d/2, d] so that bots failing together spread out.
    int shift = bot->failures - 1 < 5 ? bot->failures - 1 : 5;
    int64_t d = (int64_t) RST_TGPOLL_BACKOFF_MIN_MS << shift;
    if (d > RST_TGPOLL_BACKOFF_MAX_MS)
        d = RST_TGPOLL_BACKOFF_MAX_MS;
    return d / 2 + (int64_t) (s_rand (self) % (uint64_t) (d / 2 + 1));
}

//  max(update_id)+1 of UPDATES into *NEXT (left alone for an empty array). -1 when an
//  element has no whole-number update_id.
static int
s_next_offset (const cJSON *updates, int64_t *next)
{
    const cJSON *u;
    cJSON_ArrayForEach (u, updates) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive (u, "update_id");
        if (!cJSON_IsNumber (id) || id->valuedouble < 0 || id->valuedouble >= 9007199254740992.0
            || id->valuedouble != (double) (int64_t) id->valuedouble)
            return -1;
        int64_t v = (int64_t) id->valuedouble + 1;
        if (v > *next)
            *next = v;
    }
    return 0;
}

//  Reads BOT's finished poll and calls the callbacks. BOT may be removed by them.
static void
s_finish (rst_tgpoll_t *self, s_bot_t *bot, rst_tgpoll_updates_fn *on_updates,
          rst_tgpoll_error_fn *on_error, void *arg)
{
    rst_telegram_status_t status = {0};
    char err[512] = "";
    cJSON *result = NULL;
    int64_t now = rst_clock_mono_ms ();
    long http = 0;
    curl_easy_getinfo (bot->easy, CURLINFO_RESPONSE_CODE, &http);
    int rc = -1;
    if (bot->result != CURLE_OK) {
        status.http_status = http;
        snprintf (err, sizeof err, "Telegram getUpdates: %s%s",
                  bot->reply.too_big ? "reply too large; libcurl: " : "libcurl: ",
                  curl_easy_strerror (bot->result));
    }
    else if (rst_telegram_reply_parse ("getUpdates", bot->token, http, bot->reply.data,
                                       bot->reply.len, bot->retry_after_header, &result,
                                       &status, err, sizeof err) == 0) {
        if (!cJSON_IsArray (result))
            snprintf (err, sizeof err, "Telegram getUpdates: the result is not an array");
        else
            rc = 0;
    }
    int64_t next = bot->offset;
    if (rc == 0 && s_next_offset (result, &next)) {
        snprintf (err, sizeof err, "Telegram getUpdates: an update without a valid update_id");
        rc = -1;
    }
    rst_http_buf_rewind (&bot->reply, 65536);      //  a big batch passed: give the memory back

    if (rc) {
        bot->next_at_ms = now + s_error_delay (self, bot, &status);
        if (on_error)
            on_error (arg, bot->bot_id, &status, err);
    }
    else if (cJSON_GetArraySize (result) == 0) {
        bot->failures = 0;
        int early = now - bot->started_ms < (int64_t) self->timeout_s * 500;
        bot->next_at_ms = early ? now + RST_TGPOLL_EMPTY_PAUSE_MS : now;
    }
    else {
        int64_t next_out = next;
        int cb = on_updates (arg, bot->bot_id, result, &next_out);
        if (bot->removed)
            ;                       //  the callback removed it: nothing more to do
        else if (cb == 0) {
            bot->failures = 0;
            if (next_out > bot->offset)
                bot->offset = next_out;
            bot->next_at_ms = now;
        }
        else {
            rst_telegram_status_t none = {0};
            bot->next_at_ms = now + s_error_delay (self, bot, &none);
        }
    }
    cJSON_Delete (result);
}

//  Steps 3-5 of a round (see the top of the file). Returns the polls completed.
static int
s_dispatch (rst_tgpoll_t *self, rst_tgpoll_updates_fn *on_updates, rst_tgpoll_error_fn *on_error,
            void *arg)
{
    CURLMsg *msg;
    int left;
    int finished = 0;
    while ((msg = curl_multi_info_read (self->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode result = msg->data.result;     //  msg dies with remove_handle
        s_bot_t *bot = NULL;
        curl_easy_getinfo (easy, CURLINFO_PRIVATE, (char **) &bot);
        assert (bot && bot->easy == easy);
        curl_multi_remove_handle (self->multi, easy);
        bot->active = 0;
        bot->finished = 1;
        bot->result = result;
        finished++;
    }
    if (!finished)
        return 0;
    int done = 0;
    self->dispatching = 1;
    for (size_t i = 0; i < self->nbots; i++) {      //  nbots may grow meanwhile
        s_bot_t *bot = self->bots[i];
        if (!bot->finished || bot->removed)
            continue;
        bot->finished = 0;
        s_finish (self, bot, on_updates, on_error, arg);
        done++;
    }
    self->dispatching = 0;
    size_t kept = 0;
    for (size_t i = 0; i < self->nbots; i++) {
        if (self->bots[i]->removed)
            s_bot_free (self, self->bots[i]);
        else
            self->bots[kept++] = self->bots[i];
    }
    self->nbots = kept;
    return done;
}

int
rst_tgpoll_run (rst_tgpoll_t *self, int wait_ms, rst_tgpoll_updates_fn *on_updates,
                rst_tgpoll_error_fn *on_error, void *arg)
{
    assert (self && on_updates);
    assert (!self->dispatching);    //  not from inside a callback
    int64_t deadline = rst_clock_mono_ms () + (wait_ms > 0 ? wait_ms : 0);
    for (;;) {
        int64_t next_due = s_start_due (self, rst_clock_mono_ms ());
        int running = 0;
        CURLMcode mc = curl_multi_perform (self->multi, &running);
        if (mc != CURLM_OK) {
            rst_error ("tgpoll", "libcurl: curl_multi_perform: %s", curl_multi_strerror (mc));
            return -1;
        }
        int done = s_dispatch (self, on_updates, on_error, arg);
        if (done > 0)
            return done;
        int64_t now = rst_clock_mono_ms ();
        if (now >= deadline)
            return 0;
        int64_t wait = deadline - now;
        if (next_due != INT64_MAX && next_due - now < wait)
            wait = next_due > now ? next_due - now : 0;
        mc = curl_multi_poll (self->multi, NULL, 0, (int) wait, NULL);
        if (mc != CURLM_OK) {
            rst_error ("tgpoll", "libcurl: curl_multi_poll: %s", curl_multi_strerror (mc));
            return -1;
        }
    }
}
