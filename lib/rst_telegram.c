/*  rst_telegram — a small client of the Telegram Bot API (libcurl + cJSON).

    A call is one HTTP request on the object's CURL handle (kept between
    calls, so the connection to api.telegram.org is reused):

        URL   <base>/bot<TOKEN>/<method>
        GET   when there are no parameters, else POST application/json
        reply read into a growing buffer (capped at RST_TELEGRAM_REPLY_MAX),
              then parsed as the envelope whatever the HTTP status was

    The libcurl plumbing (handle options, reply buffer, transport errors,
    masking) is rst_http's, shared with rst_tgpoll and rst_gateway.

    Errors are reported in three layers, first match wins: transport
    (libcurl's message, with the token scrubbed out), the envelope's
    ok=false (error_code + description; 401 gets the "check the token from
    @BotFather" sentence), and a reply that is not an envelope at all.

    Secrets: the token appears only in the URL given to libcurl. Every
    message built here is passed through s_scrub before it leaves, and
    CURLOPT_VERBOSE stays off. A webhook's secret_token travels only in the
    request body, never in a message.

    The bots node's methods (sendMessage, sendPhoto, answerCallbackQuery,
    createChatInviteLink, revokeChatInviteLink, setWebhook, deleteWebhook)
    check their arguments first (token shape, button shape, photo magic
    bytes), then make one call each: JSON bodies, except a photo upload,
    which is multipart/form-data. Chat ids are written as exact integers
    (cJSON raw numbers), never through a double.
*/
#include "rst_telegram.h"

#include "rst_http.h"

#include <assert.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct rst_telegram_t {
    CURL *curl;                 //  easy handle, reused across calls
    char *base_url;             //  e.g. https://api.telegram.org, no trailing slash
    char curl_error[CURL_ERROR_SIZE];  //  CURLOPT_ERRORBUFFER
};

//  Replaces every occurrence of TOKEN in BUF (and of its secret part, in case
//  a message quotes a fragment) with "<token>" / "***".
static void
s_scrub (char *buf, size_t buflen, const char *token)
{
    if (!buf || !token || !*token)
        return;
    rst_http_mask (buf, buflen, token, "<token>");  //  '<' and '>' never occur in a token
    const char *colon = strchr (token, ':');
    if (colon && strlen (colon + 1) >= 8) {
        const char *secret = colon + 1;
        size_t slen = strlen (secret);
        for (char *hit = strstr (buf, secret); hit; hit = strstr (hit + slen, secret))
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
    rst_telegram_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, errlen, "out of memory");
        return NULL;
    }
    if (rst_http_client_init ("Telegram", base_url, NULL, &self->base_url, &self->curl, err,
                              errlen))
        rst_telegram_destroy (&self);
    return self;
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

//  The envelope's description, or "" (borrowed from ROOT).
static const char *
s_description (const cJSON *root)
{
    const cJSON *d = cJSON_GetObjectItemCaseSensitive (root, "description");
    return cJSON_IsString (d) && d->valuestring ? d->valuestring : "";
}

//  Folds WHY to one line, scrubs TOKEN out of it, and copies it into ERR.
static void
s_set_err (char *why, size_t whylen, const char *token, char *err, size_t errlen)
{
    for (char *s = why; *s; s++)
        if (*s == '\n' || *s == '\r' || *s == '\t')
            *s = ' ';
    s_scrub (why, whylen, token);
    snprintf (err, errlen, "%s", why);
}

size_t
rst_telegram_on_header (char *buffer, size_t size, size_t nitems, void *userdata)
{
    int *retry_after = userdata;
    size_t n = size * nitems;
    static const char name[] = "retry-after:";
    if (n >= 5 && strncmp (buffer, "HTTP/", 5) == 0)
        *retry_after = 0;           //  a new response (after a 100 or a redirect) starts
    else if (n > sizeof name - 1 && strncasecmp (buffer, name, sizeof name - 1) == 0) {
        size_t i = sizeof name - 1;
        while (i < n && (buffer[i] == ' ' || buffer[i] == '\t'))
            i++;
        long seconds = 0;
        int digits = 0;
        for (; i < n && buffer[i] >= '0' && buffer[i] <= '9' && digits < 8; i++, digits++)
            seconds = seconds * 10 + (buffer[i] - '0');
        if (digits > 0)             //  delta-seconds only; an HTTP-date is ignored
            *retry_after = seconds > 3600 ? 3600 : (int) seconds;
    }
    return n;
}

int
rst_telegram_reply_parse (const char *method, const char *token, long http_status,
                          const char *body, size_t len, int retry_after_header,
                          cJSON **result_p, rst_telegram_status_t *status, char *err,
                          size_t errlen)
{
    assert (method);
    rst_telegram_status_t local_status;
    if (!status)
        status = &local_status;
    memset (status, 0, sizeof *status);
    status->http_status = http_status;
    if (result_p)
        *result_p = NULL;

    int rc = -1;
    char why[512] = "";
    cJSON *root = body && len ? cJSON_ParseWithLength (body, len) : NULL;
    const cJSON *ok = cJSON_GetObjectItemCaseSensitive (root, "ok");
    if (!cJSON_IsObject (root) || !cJSON_IsBool (ok)) {
        if (http_status == 401)
            snprintf (why, sizeof why, "Telegram rejected this bot token (401 Unauthorized): "
                      "check the token from @BotFather");
        else if (http_status == 429) {
            status->error_code = 429;
            status->retry_after = retry_after_header;
            snprintf (why, sizeof why, "Telegram %s: 429 Too Many Requests (retry after %d s)",
                      method, status->retry_after);
        }
        else
            snprintf (why, sizeof why, "Telegram %s: unexpected reply (HTTP %ld, not a Bot API "
                      "answer): is RASTRO_TELEGRAM_API_URL right?", method, http_status);
        goto done;
    }
    if (cJSON_IsFalse (ok)) {
        const cJSON *code = cJSON_GetObjectItemCaseSensitive (root, "error_code");
        status->error_code = cJSON_IsNumber (code) ? code->valueint : (int) http_status;
        const cJSON *p = cJSON_GetObjectItemCaseSensitive (root, "parameters");
        const cJSON *ra = cJSON_GetObjectItemCaseSensitive (p, "retry_after");
        if (cJSON_IsNumber (ra) && ra->valueint > 0)
            status->retry_after = ra->valueint;
        else if ((status->error_code == 429 || http_status == 429) && retry_after_header > 0)
            status->retry_after = retry_after_header;
        if (status->error_code == 401 || http_status == 401)
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
    if (rc)
        s_set_err (why, sizeof why, token, err, errlen);
    cJSON_Delete (root);
    return rc;
}

//  One request: PARAMS as a JSON body, or MIME as multipart/form-data (built by the
//  caller on self->curl and freed by it afterwards), or neither (GET).
static int
s_perform (rst_telegram_t *self, const char *token, const char *method, const cJSON *params,
           curl_mime *mime, long timeout_ms, cJSON **result_p, rst_telegram_status_t *status,
           char *err, size_t errlen)
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
    rst_http_buf_t reply;
    rst_http_buf_init (&reply, RST_TELEGRAM_REPLY_MAX);
    struct curl_slist *headers = NULL;
    int retry_after = 0;
    char why[512] = "";

    size_t url_len = strlen (self->base_url) + strlen (token) + strlen (method) + 8;
    url = malloc (url_len);
    if (!url) {
        snprintf (why, sizeof why, "out of memory");
        goto done;
    }
    snprintf (url, url_len, "%s/bot%s/%s", self->base_url, token, method);

    CURL *curl = self->curl;
    if (rst_http_easy_setup (curl, url, self->curl_error, RST_TELEGRAM_CONNECT_TIMEOUT_MS,
                             timeout_ms > 0 ? timeout_ms : RST_TELEGRAM_TIMEOUT_MS, &reply)) {
        snprintf (why, sizeof why, "out of memory");
        goto done;
    }
    curl_easy_setopt (curl, CURLOPT_HEADERFUNCTION, rst_telegram_on_header);
    curl_easy_setopt (curl, CURLOPT_HEADERDATA, &retry_after);
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
    else if (mime)
        curl_easy_setopt (curl, CURLOPT_MIMEPOST, mime);
    curl_easy_setopt (curl, CURLOPT_HTTPHEADER, headers);

    char failure[CURL_ERROR_SIZE + 32];
    if (rst_http_perform (curl, &reply, self->curl_error, &status->http_status, failure,
                          sizeof failure)
        != CURLE_OK) {
        snprintf (why, sizeof why, "Telegram %s: %s", method, failure);
        goto done;
    }
    rc = rst_telegram_reply_parse (method, token, status->http_status, reply.data, reply.len,
                                   retry_after, result_p, status, err, errlen);

done:
    if (rc && why[0])
        s_set_err (why, sizeof why, token, err, errlen);
    self->curl_error[0] = 0;
    curl_slist_free_all (headers);
    //  The URL holds the token: wipe it before it goes back to the heap.
    if (url) {
        memset (url, 0, strlen (url));
        free (url);
    }
    if (body) {                     //  may hold a webhook's secret_token
        memset (body, 0, strlen (body));
        cJSON_free (body);
    }
    rst_http_buf_destroy (&reply);
    return rc;
}

int
rst_telegram_call (rst_telegram_t *self, const char *token, const char *method,
                   const cJSON *params, long timeout_ms, cJSON **result_p,
                   rst_telegram_status_t *status, char *err, size_t errlen)
{
    return s_perform (self, token, method, params, NULL, timeout_ms, result_p, status, err,
                      errlen);
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

//  ---- The bots node's methods -----------------------------------------------------

//  Adds "NAME": V to OBJ as an exact integer (no double on the way). 0 or -1.
static int
s_add_int64 (cJSON *obj, const char *name, int64_t v)
{
    char buf[24];
    snprintf (buf, sizeof buf, "%lld", (long long) v);
    return cJSON_AddRawToObject (obj, name, buf) ? 0 : -1;
}

//  Number of characters (code points) in UTF-8 text S.
static size_t
s_utf8_chars (const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char) *s & 0xC0) != 0x80)
            n++;
    return n;
}

//  The reply_markup for BUTTONS (one per row), or NULL with ERR when a button is
//  malformed or memory ran out. The caller owns the result.
static cJSON *
s_keyboard (const rst_tg_button_t *buttons, size_t nbuttons, char *err, size_t errlen)
{
    cJSON *markup = cJSON_CreateObject ();
    cJSON *rows = cJSON_AddArrayToObject (markup, "inline_keyboard");
    if (!rows) {
        snprintf (err, errlen, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < nbuttons; i++) {
        const rst_tg_button_t *b = &buttons[i];
        if (!b->text || !*b->text) {
            snprintf (err, errlen, "button %zu has no text", i + 1);
            goto fail;
        }
        if (!b->callback_data == !b->url) {
            snprintf (err, errlen, "button %zu needs exactly one of callback_data and url", i + 1);
            goto fail;
        }
        size_t dlen = b->callback_data ? strlen (b->callback_data) : 0;
        if (b->callback_data && (dlen == 0 || dlen > RST_TELEGRAM_CALLBACK_DATA_MAX)) {
            snprintf (err, errlen, "button %zu: callback_data must have 1-%d bytes (has %zu)",
                      i + 1, RST_TELEGRAM_CALLBACK_DATA_MAX, dlen);
            goto fail;
        }
        if (b->url && !rst_http_url_is_http (b->url) && strncmp (b->url, "tg://", 5)) {
            snprintf (err, errlen, "button %zu: the url must start with https://, http:// or "
                      "tg://", i + 1);
            goto fail;
        }
        cJSON *row = cJSON_CreateArray ();
        cJSON *button = cJSON_CreateObject ();
        if (!row || !button || !cJSON_AddItemToArray (row, button)) {
            cJSON_Delete (row);
            cJSON_Delete (button);
            snprintf (err, errlen, "out of memory");
            goto fail;
        }
        if (!cJSON_AddItemToArray (rows, row) || !cJSON_AddStringToObject (button, "text", b->text)
            || !cJSON_AddStringToObject (button, b->url ? "url" : "callback_data",
                                         b->url ? b->url : b->callback_data)) {
            snprintf (err, errlen, "out of memory");
            goto fail;
        }
    }
    return markup;

fail:
    cJSON_Delete (markup);
    return NULL;
}

//  Checks the token before it goes into a URL; fills STATUS with zeros either way.
static int
s_precheck (const char *token, rst_telegram_status_t *status, char *err, size_t errlen)
{
    if (status)
        memset (status, 0, sizeof *status);
    return rst_telegram_token_check (token, err, errlen);
}

//  Calls METHOD with PARAMS (taken: deleted here) and returns the result in *RESULT_P
//  (may be NULL).
static int
s_call_json (rst_telegram_t *self, const char *token, const char *method, cJSON *params,
             cJSON **result_p, rst_telegram_status_t *status, char *err, size_t errlen)
{
    int rc = s_perform (self, token, method, params, NULL, 0, result_p, status, err, errlen);
    cJSON_Delete (params);
    return rc;
}

int
rst_telegram_send_message (rst_telegram_t *self, const char *token, int64_t chat_id,
                           const char *html, const rst_tg_button_t *buttons, size_t nbuttons,
                           int64_t *message_id, rst_telegram_status_t *status, char *err,
                           size_t errlen)
{
    assert (self);
    assert (buttons || nbuttons == 0);
    if (message_id)
        *message_id = 0;
    if (s_precheck (token, status, err, errlen))
        return -1;
    if (!html || !*html) {
        snprintf (err, errlen, "Telegram sendMessage: the text is empty");
        return -1;
    }
    cJSON *params = cJSON_CreateObject ();
    if (!params || s_add_int64 (params, "chat_id", chat_id)
        || !cJSON_AddStringToObject (params, "text", html)
        || !cJSON_AddStringToObject (params, "parse_mode", "HTML")) {
        cJSON_Delete (params);
        snprintf (err, errlen, "out of memory");
        return -1;
    }
    if (nbuttons) {
        cJSON *markup = s_keyboard (buttons, nbuttons, err, errlen);
        if (!markup || !cJSON_AddItemToObject (params, "reply_markup", markup)) {
            cJSON_Delete (markup);
            cJSON_Delete (params);
            return -1;
        }
    }
    cJSON *result = NULL;
    if (s_call_json (self, token, "sendMessage", params, &result, status, err, errlen))
        return -1;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive (result, "message_id");
    int rc = 0;
    if (!cJSON_IsNumber (id) || id->valuedouble < 1) {
        snprintf (err, errlen, "Telegram sendMessage: the answer has no message_id");
        rc = -1;
    }
    else if (message_id)
        *message_id = (int64_t) id->valuedouble;
    cJSON_Delete (result);
    return rc;
}

//  The file_id of the largest PhotoSize in MESSAGE's "photo" array, or NULL (borrowed).
static const char *
s_largest_photo (const cJSON *message)
{
    const cJSON *sizes = cJSON_GetObjectItemCaseSensitive (message, "photo");
    const char *best = NULL;
    double best_area = -1;
    const cJSON *size;
    cJSON_ArrayForEach (size, sizes) {
        const cJSON *fid = cJSON_GetObjectItemCaseSensitive (size, "file_id");
        const cJSON *w = cJSON_GetObjectItemCaseSensitive (size, "width");
        const cJSON *h = cJSON_GetObjectItemCaseSensitive (size, "height");
        if (!cJSON_IsString (fid) || !fid->valuestring || !*fid->valuestring)
            continue;
        double area = cJSON_IsNumber (w) && cJSON_IsNumber (h) ? w->valuedouble * h->valuedouble
                                                               : 0;
        if (area >= best_area) {    //  ties: the later one (Telegram lists small to large)
            best_area = area;
            best = fid->valuestring;
        }
    }
    return best;
}

//  "image/png" or "image/jpeg" by PHOTO's magic bytes, or NULL.
static const char *
s_photo_type (const unsigned char *photo, size_t len)
{
    static const unsigned char png[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    if (len >= sizeof png && memcmp (photo, png, sizeof png) == 0)
        return "image/png";
    if (len >= 3 && photo[0] == 0xFF && photo[1] == 0xD8 && photo[2] == 0xFF)
        return "image/jpeg";
    return NULL;
}

//  Adds a text field to MIME. 0 or -1.
static int
s_mime_text (curl_mime *mime, const char *name, const char *value)
{
    curl_mimepart *part = curl_mime_addpart (mime);
    if (!part || curl_mime_name (part, name) != CURLE_OK
        || curl_mime_data (part, value, CURL_ZERO_TERMINATED) != CURLE_OK)
        return -1;
    return 0;
}

int
rst_telegram_send_photo (rst_telegram_t *self, const char *token, int64_t chat_id,
                         const void *photo, size_t photo_len, const char *filename,
                         const char *file_id, const char *caption_html,
                         const rst_tg_button_t *buttons, size_t nbuttons, char *file_id_out,
                         rst_telegram_status_t *status, char *err, size_t errlen)
{
    assert (self);
    assert (buttons || nbuttons == 0);
    if (file_id_out)
        *file_id_out = 0;
    if (s_precheck (token, status, err, errlen))
        return -1;
    const char *type = NULL;
    if (photo) {
        type = s_photo_type (photo, photo_len);
        if (!type) {
            snprintf (err, errlen, "Telegram sendPhoto: the photo is neither a PNG nor a JPEG");
            return -1;
        }
        if (photo_len > RST_TELEGRAM_PHOTO_MAX) {
            snprintf (err, errlen, "Telegram sendPhoto: the photo has %zu bytes (at most %d)",
                      photo_len, RST_TELEGRAM_PHOTO_MAX);
            return -1;
        }
        if (!filename || !*filename)
            filename = strcmp (type, "image/png") == 0 ? "photo.png" : "photo.jpg";
    }
    else if (!file_id || !*file_id) {
        snprintf (err, errlen, "Telegram sendPhoto: neither photo bytes nor a file_id");
        return -1;
    }
    char chat[24];
    snprintf (chat, sizeof chat, "%lld", (long long) chat_id);

    cJSON *markup = NULL;
    if (nbuttons && !(markup = s_keyboard (buttons, nbuttons, err, errlen)))
        return -1;

    int rc = -1;
    cJSON *params = NULL, *result = NULL;
    curl_mime *mime = NULL;
    char *markup_text = NULL;
    if (photo) {
        //  Upload: every field is a form part; the keyboard travels as JSON text.
        mime = curl_mime_init (self->curl);
        if (markup && !(markup_text = cJSON_PrintUnformatted (markup)))
            goto oom;
        curl_mimepart *part;
        if (!mime || s_mime_text (mime, "chat_id", chat)
            || (caption_html && (s_mime_text (mime, "caption", caption_html)
                                 || s_mime_text (mime, "parse_mode", "HTML")))
            || (markup_text && s_mime_text (mime, "reply_markup", markup_text))
            || !(part = curl_mime_addpart (mime)) || curl_mime_name (part, "photo") != CURLE_OK
            || curl_mime_data (part, photo, photo_len) != CURLE_OK
            || curl_mime_filename (part, filename) != CURLE_OK
            || curl_mime_type (part, type) != CURLE_OK)
            goto oom;
        rc = s_perform (self, token, "sendPhoto", NULL, mime, 0, &result, status, err, errlen);
    }
    else {
        params = cJSON_CreateObject ();
        if (!params || s_add_int64 (params, "chat_id", chat_id)
            || !cJSON_AddStringToObject (params, "photo", file_id)
            || (caption_html && (!cJSON_AddStringToObject (params, "caption", caption_html)
                                 || !cJSON_AddStringToObject (params, "parse_mode", "HTML"))))
            goto oom;
        if (markup) {
            if (!cJSON_AddItemToObject (params, "reply_markup", markup))
                goto oom;
            markup = NULL;          //  now inside params
        }
        rc = s_perform (self, token, "sendPhoto", params, NULL, 0, &result, status, err, errlen);
    }
    if (rc == 0 && file_id_out) {
        const char *best = s_largest_photo (result);
        if (best && strlen (best) < RST_TELEGRAM_FILE_ID_MAX)
            memcpy (file_id_out, best, strlen (best) + 1);
    }
    goto done;

oom:
    snprintf (err, errlen, "out of memory");
    rc = -1;
done:
    curl_mime_free (mime);          //  before the handle's next reset (it points to it)
    cJSON_free (markup_text);
    cJSON_Delete (markup);
    cJSON_Delete (params);
    cJSON_Delete (result);
    return rc;
}

int
rst_telegram_answer_callback (rst_telegram_t *self, const char *token,
                              const char *callback_query_id, const char *text,
                              rst_telegram_status_t *status, char *err, size_t errlen)
{
    assert (self);
    if (s_precheck (token, status, err, errlen))
        return -1;
    if (!callback_query_id || !*callback_query_id) {
        snprintf (err, errlen, "Telegram answerCallbackQuery: no callback_query_id");
        return -1;
    }
    if (text && s_utf8_chars (text) > 200) {
        snprintf (err, errlen, "Telegram answerCallbackQuery: the text has more than 200 "
                  "characters");
        return -1;
    }
    cJSON *params = cJSON_CreateObject ();
    if (!params || !cJSON_AddStringToObject (params, "callback_query_id", callback_query_id)
        || (text && !cJSON_AddStringToObject (params, "text", text))) {
        cJSON_Delete (params);
        snprintf (err, errlen, "out of memory");
        return -1;
    }
    return s_call_json (self, token, "answerCallbackQuery", params, NULL, status, err, errlen);
}

int
rst_telegram_create_invite_link (rst_telegram_t *self, const char *token, int64_t chat_id,
                                 const char *name, int64_t expire_date, int member_limit,
                                 char *link_out, size_t link_len, rst_telegram_status_t *status,
                                 char *err, size_t errlen)
{
    assert (self && link_out && link_len > 0);
    *link_out = 0;
    if (s_precheck (token, status, err, errlen))
        return -1;
    if (name && s_utf8_chars (name) > RST_TELEGRAM_INVITE_NAME_MAX) {
        snprintf (err, errlen, "Telegram createChatInviteLink: the name has more than %d "
                  "characters", RST_TELEGRAM_INVITE_NAME_MAX);
        return -1;
    }
    if (member_limit < 0 || member_limit > RST_TELEGRAM_MEMBER_LIMIT_MAX || expire_date < 0) {
        snprintf (err, errlen, "Telegram createChatInviteLink: member_limit must be 1-%d and "
                  "expire_date a Unix time", RST_TELEGRAM_MEMBER_LIMIT_MAX);
        return -1;
    }
    cJSON *params = cJSON_CreateObject ();
    if (!params || s_add_int64 (params, "chat_id", chat_id)
        || (name && *name && !cJSON_AddStringToObject (params, "name", name))
        || (expire_date > 0 && s_add_int64 (params, "expire_date", expire_date))
        || (member_limit > 0 && s_add_int64 (params, "member_limit", member_limit))) {
        cJSON_Delete (params);
        snprintf (err, errlen, "out of memory");
        return -1;
    }
    cJSON *result = NULL;
    if (s_call_json (self, token, "createChatInviteLink", params, &result, status, err, errlen))
        return -1;
    int rc = -1;
    const cJSON *link = cJSON_GetObjectItemCaseSensitive (result, "invite_link");
    if (!cJSON_IsString (link) || !link->valuestring || !*link->valuestring)
        snprintf (err, errlen, "Telegram createChatInviteLink: the answer has no invite_link");
    else if (strlen (link->valuestring) >= link_len)
        snprintf (err, errlen, "Telegram createChatInviteLink: the invite link is longer than "
                  "%zu bytes", link_len - 1);
    else {
        memcpy (link_out, link->valuestring, strlen (link->valuestring) + 1);
        rc = 0;
    }
    cJSON_Delete (result);
    return rc;
}

int
rst_telegram_revoke_invite_link (rst_telegram_t *self, const char *token, int64_t chat_id,
                                 const char *link, rst_telegram_status_t *status, char *err,
                                 size_t errlen)
{
    assert (self);
    if (s_precheck (token, status, err, errlen))
        return -1;
    if (!link || !*link) {
        snprintf (err, errlen, "Telegram revokeChatInviteLink: no invite link");
        return -1;
    }
    cJSON *params = cJSON_CreateObject ();
    if (!params || s_add_int64 (params, "chat_id", chat_id)
        || !cJSON_AddStringToObject (params, "invite_link", link)) {
        cJSON_Delete (params);
        snprintf (err, errlen, "out of memory");
        return -1;
    }
    return s_call_json (self, token, "revokeChatInviteLink", params, NULL, status, err, errlen);
}

int
rst_telegram_set_webhook (rst_telegram_t *self, const char *token, const char *url,
                          const char *secret_token, rst_telegram_status_t *status, char *err,
                          size_t errlen)
{
    assert (self);
    if (s_precheck (token, status, err, errlen))
        return -1;
    if (!rst_http_url_is_http (url)) {
        snprintf (err, errlen, "Telegram setWebhook: the URL must start with https://");
        return -1;
    }
    size_t slen = secret_token ? strlen (secret_token) : 0;
    int secret_ok = slen >= 1 && slen <= RST_TELEGRAM_SECRET_TOKEN_MAX;
    for (size_t i = 0; secret_ok && i < slen; i++) {
        char c = secret_token[i];
        secret_ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
                    || c == '_' || c == '-';
    }
    if (!secret_ok) {
        snprintf (err, errlen, "Telegram setWebhook: the secret token must have 1-%d characters "
                  "of A-Z, a-z, 0-9, '_' and '-'", RST_TELEGRAM_SECRET_TOKEN_MAX);
        return -1;
    }
    cJSON *params = cJSON_CreateObject ();
    cJSON *allowed = cJSON_AddArrayToObject (params, "allowed_updates");
    static const char *const kinds[] = {"message", "callback_query", "chat_member"};
    int ok = params && allowed && cJSON_AddStringToObject (params, "url", url)
             && cJSON_AddStringToObject (params, "secret_token", secret_token)
             && s_add_int64 (params, "max_connections", RST_TELEGRAM_WEBHOOK_MAX_CONNECTIONS) == 0;
    for (size_t i = 0; ok && i < sizeof kinds / sizeof kinds[0]; i++)
        ok = cJSON_AddItemToArray (allowed, cJSON_CreateString (kinds[i]));
    if (!ok) {
        cJSON_Delete (params);
        snprintf (err, errlen, "out of memory");
        return -1;
    }
    int rc = s_perform (self, token, "setWebhook", params, NULL, 0, NULL, status, err, errlen);
    //  The body held the webhook's secret: wipe it from the cJSON tree before freeing.
    cJSON *secret = cJSON_GetObjectItemCaseSensitive (params, "secret_token");
    if (cJSON_IsString (secret) && secret->valuestring)
        memset (secret->valuestring, 0, strlen (secret->valuestring));
    cJSON_Delete (params);
    return rc;
}

int
rst_telegram_delete_webhook (rst_telegram_t *self, const char *token, int drop_pending,
                             rst_telegram_status_t *status, char *err, size_t errlen)
{
    assert (self);
    if (s_precheck (token, status, err, errlen))
        return -1;
    cJSON *params = cJSON_CreateObject ();
    if (!params || !cJSON_AddBoolToObject (params, "drop_pending_updates", drop_pending != 0)) {
        cJSON_Delete (params);
        snprintf (err, errlen, "out of memory");
        return -1;
    }
    return s_call_json (self, token, "deleteWebhook", params, NULL, status, err, errlen);
}
