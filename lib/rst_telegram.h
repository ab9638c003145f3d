/*  rst_telegram — a small client of the Telegram Bot API (libcurl + cJSON).

    Calls go to <base_url>/bot<TOKEN>/<method> (base_url is
    RASTRO_TELEGRAM_API_URL, https://api.telegram.org by default, a local
    fake in tests) and answer with the envelope {"ok":true,"result":...} or
    {"ok":false,"error_code":N,"description":"...","parameters":{...}}
    (reference/telegram-and-pix.md §1).

    The token is a secret that sits in the URL path: it never appears in a
    log line or an error message of this class (libcurl's messages are
    scrubbed), and callers must not print it either.

    One rst_telegram_t holds one CURL easy handle (connection reuse): use it
    from one thread at a time. Today `rastro bot add` uses getMe; the bots
    node will add its methods on top of rst_telegram_call.
*/
#ifndef RST_TELEGRAM_H
#define RST_TELEGRAM_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#define RST_TELEGRAM_TOKEN_MAX    80                  //  longest token the server accepts
#define RST_TELEGRAM_BOT_ID_LIMIT (INT64_C (1) << 54)  //  bot ids are below 2^54
#define RST_TELEGRAM_USERNAME_MAX 64                  //  buffer size (usernames are ≤ 32)
#define RST_TELEGRAM_CONNECT_TIMEOUT_MS 10000
#define RST_TELEGRAM_TIMEOUT_MS         30000         //  per call unless the call says otherwise
#define RST_TELEGRAM_REPLY_MAX    (4 * 1024 * 1024)   //  larger replies are refused

typedef struct rst_telegram_t rst_telegram_t;

//  What the bot's getMe says about itself.
typedef struct {
    int64_t id;                                     //  the bot's user id (= token's bot_id)
    char username[RST_TELEGRAM_USERNAME_MAX];       //  without the '@'
} rst_telegram_bot_t;

//  How a call ended, beyond success/failure (OUT parameter of rst_telegram_call).
typedef struct {
    long http_status;       //  HTTP status, 0 if no response arrived
    int error_code;         //  envelope's error_code when ok=false, else 0
    int retry_after;        //  parameters.retry_after seconds (429), else 0
} rst_telegram_status_t;

//  Checks TOKEN's shape without any network: "<bot_id>:<secret>", bot_id a
//  positive decimal below 2^54 without a leading 0, secret of letters,
//  digits, '_' and '-', at most RST_TELEGRAM_TOKEN_MAX characters in all.
//  Returns 0, or -1 with a one-line reason in ERR (never the token itself).
int rst_telegram_token_check (const char *token, char *err, size_t errlen);

//  The bot id a well-formed token starts with, or -1 if TOKEN is malformed.
int64_t rst_telegram_token_bot_id (const char *token);

//  Creates a client for BASE_URL (no trailing slash needed). Returns a new
//  object the caller owns, or NULL with a reason in ERR.
rst_telegram_t *rst_telegram_new (const char *base_url, char *err, size_t errlen);
void rst_telegram_destroy (rst_telegram_t **self_p);

//  Calls METHOD with TOKEN. PARAMS (may be NULL) is sent as a JSON body
//  (POST); without it the call is a GET. TIMEOUT_MS 0 = the default. On
//  success returns 0 and, when RESULT_P is not NULL, the envelope's
//  "result" in *RESULT_P (the caller's, cJSON_Delete). Otherwise returns -1
//  with a one-line reason in ERR and the details in *STATUS (may be NULL).
//  A 401 reads "Telegram rejected this bot token (401 Unauthorized): ...".
int rst_telegram_call (rst_telegram_t *self, const char *token, const char *method,
                       const cJSON *params, long timeout_ms, cJSON **result_p,
                       rst_telegram_status_t *status, char *err, size_t errlen);

//  getMe: fills *BOT (OUT). Checks the token's shape first, and that the
//  answer is about the token's own bot. Returns 0 or -1 with ERR.
int rst_telegram_get_me (rst_telegram_t *self, const char *token, rst_telegram_bot_t *bot,
                         char *err, size_t errlen);

#endif
