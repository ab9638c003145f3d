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
    from one thread at a time. `rastro bot add` uses getMe; the bots node
    sends messages, photos, callback answers and invite links, and manages
    webhooks with the methods below. Long polling of many bots at once is
    rst_tgpoll's job (one curl multi handle); it reads replies with
    rst_telegram_reply_parse so that both classify errors the same way.

    Every method returns 0, or -1 with a one-line reason in ERR and, when
    STATUS is not NULL, the details in *STATUS: http_status, the envelope's
    error_code, and retry_after (seconds) on a 429, taken from
    parameters.retry_after or else the Retry-After header.
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
#define RST_TELEGRAM_FILE_ID_MAX  256                 //  buffer size for a file_id
#define RST_TELEGRAM_CALLBACK_DATA_MAX 64             //  callback_data: 1-64 bytes
#define RST_TELEGRAM_PHOTO_MAX    (10 * 1024 * 1024)  //  largest photo upload
#define RST_TELEGRAM_SECRET_TOKEN_MAX 256             //  setWebhook secret_token: 1-256 chars
#define RST_TELEGRAM_INVITE_NAME_MAX 32               //  createChatInviteLink name: 0-32 chars
#define RST_TELEGRAM_MEMBER_LIMIT_MAX 99999           //  createChatInviteLink member_limit: 1-99999
#define RST_TELEGRAM_WEBHOOK_MAX_CONNECTIONS 40       //  setWebhook max_connections we ask for

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

//  Reads one Bot API reply of METHOD (BODY of LEN bytes, may be NULL; HTTP_STATUS 0 if
//  none) the way rst_telegram_call does. RETRY_AFTER_HEADER is the Retry-After header's
//  seconds (0 if absent), used on a 429 without parameters.retry_after. TOKEN (may be
//  NULL) is scrubbed from the message. On success returns 0 and the envelope's "result"
//  in *RESULT_P (the caller's, cJSON_Delete; RESULT_P may be NULL). Otherwise -1, *STATUS
//  (may be NULL) filled and a one-line reason in ERR.
int rst_telegram_reply_parse (const char *method, const char *token, long http_status,
                              const char *body, size_t len, int retry_after_header,
                              cJSON **result_p, rst_telegram_status_t *status, char *err,
                              size_t errlen);

//  A CURLOPT_HEADERFUNCTION that stores a Retry-After header's seconds (delta form,
//  capped at 3600) into the int that CURLOPT_HEADERDATA points to. For rst_tgpoll.
size_t rst_telegram_on_header (char *buffer, size_t size, size_t nitems, void *userdata);

//  getMe: fills *BOT (OUT). Checks the token's shape first, and that the
//  answer is about the token's own bot. Returns 0 or -1 with ERR.
int rst_telegram_get_me (rst_telegram_t *self, const char *token, rst_telegram_bot_t *bot,
                         char *err, size_t errlen);

//  One inline keyboard button: callback_data (1–64 bytes) or url, one per row.
typedef struct {
    const char *text;               //  label, not empty
    const char *callback_data;      //  1-64 bytes, or NULL when URL is set
    const char *url;                //  http(s):// or tg:// link, or NULL when CALLBACK_DATA is set
} rst_tg_button_t;

//  sendMessage with parse_mode HTML; BUTTONS (may be NULL) one per row. *MESSAGE_ID (may be NULL) OUT.
//  HTML must not be empty; its length after entity parsing (≤ 4096 chars) is Telegram's
//  to check. A button without text, with both or neither of callback_data/url, or with
//  callback_data over 64 bytes is refused before any request.
int rst_telegram_send_message (rst_telegram_t *self, const char *token, int64_t chat_id, const char *html,
                               const rst_tg_button_t *buttons, size_t nbuttons, int64_t *message_id,
                               rst_telegram_status_t *status, char *err, size_t errlen);

//  sendPhoto: either PNG/JPEG bytes uploaded as multipart/form-data (field "photo", filename given),
//  or FILE_ID (a previous upload's file_id) when PHOTO is NULL. CAPTION_HTML ≤ 1024 chars (may be NULL).
//  FILE_ID_OUT (may be NULL, size RST_TELEGRAM_FILE_ID_MAX) receives the largest PhotoSize's file_id.
//  PHOTO must start with the PNG or JPEG magic bytes and hold at most RST_TELEGRAM_PHOTO_MAX
//  bytes; FILENAME NULL means "photo.png"/"photo.jpg". When the reply carries no usable
//  file_id (none, or longer than the buffer), *FILE_ID_OUT is "" and the call still
//  succeeds: the photo was sent.
int rst_telegram_send_photo (rst_telegram_t *self, const char *token, int64_t chat_id,
                             const void *photo, size_t photo_len, const char *filename,
                             const char *file_id, const char *caption_html,
                             const rst_tg_button_t *buttons, size_t nbuttons, char *file_id_out,
                             rst_telegram_status_t *status, char *err, size_t errlen);

//  answerCallbackQuery: stops the button's spinner; TEXT (may be NULL, ≤ 200 chars) is
//  shown as a toast. Call it first when a callback arrives: late answers fail.
int rst_telegram_answer_callback (rst_telegram_t *self, const char *token, const char *callback_query_id,
                                  const char *text, rst_telegram_status_t *status, char *err, size_t errlen);

//  createChatInviteLink with member_limit and expire_date (Unix s); LINK_OUT receives invite_link.
//  NAME may be NULL (≤ 32 chars); EXPIRE_DATE 0 = none; MEMBER_LIMIT 0 = none, else
//  1-99999. The bot must be an admin of CHAT_ID allowed to invite users. Fails when
//  the link does not fit LINK_LEN.
int rst_telegram_create_invite_link (rst_telegram_t *self, const char *token, int64_t chat_id,
                                     const char *name, int64_t expire_date, int member_limit,
                                     char *link_out, size_t link_len, rst_telegram_status_t *status,
                                     char *err, size_t errlen);

//  revokeChatInviteLink: LINK (from createChatInviteLink) stops working at once.
int rst_telegram_revoke_invite_link (rst_telegram_t *self, const char *token, int64_t chat_id,
                                     const char *link, rst_telegram_status_t *status, char *err, size_t errlen);

//  setWebhook(url, secret_token, allowed_updates ["message","callback_query","chat_member"], max_connections 40);
//  SECRET_TOKEN: 1-256 chars of [A-Za-z0-9_-] (checked here; never put in ERR). Telegram
//  echoes it in the X-Telegram-Bot-Api-Secret-Token header of every delivery.
int rst_telegram_set_webhook (rst_telegram_t *self, const char *token, const char *url, const char *secret_token,
                              rst_telegram_status_t *status, char *err, size_t errlen);

//  deleteWebhook; DROP_PENDING non-zero also drops the updates not delivered yet.
int rst_telegram_delete_webhook (rst_telegram_t *self, const char *token, int drop_pending,
                                 rst_telegram_status_t *status, char *err, size_t errlen);

#endif
