/*  rst_tgpoll — long polling of many Telegram bots from one thread.

    The bots node receives the updates of every bot in "polling" mode
    through one rst_tgpoll_t: one curl multi handle, one easy handle per bot
    (HTTP/1.1 keep-alive, one connection each), each running
    getUpdates(offset, limit 100, timeout, allowed_updates ["message",
    "callback_query","chat_member"]) back to back. Made for about 1,000
    bots: it needs one file descriptor per bot (curl_multi_poll uses poll(2),
    so descriptors above 1024 are fine once RLIMIT_NOFILE allows them).

    Offsets and delivery: an update is confirmed to Telegram only by the
    next getUpdates, whose offset is max(update_id)+1 of a batch that the
    caller's updates callback accepted (returned 0, meaning "durably
    stored"). A batch the callback refuses (-1) is fetched again after a
    short backoff. Updates are therefore delivered at least once: a crash
    between storing and the next poll repeats the batch, and the store
    de-duplicates on (bot_id, update_id).

    Per bot:
        idle (next_at) --due--> polling --reply--> callbacks --> idle
    A successful poll with updates starts the next one at once; an empty
    reply that came back before half the timeout waits 1 s (never a hot
    loop against a server that answers at once). After a failure the bot
    waits: 429 -> retry_after s; 409 (webhook set, or another poller) ->
    30 s; 401 (token revoked) -> 300 s; network errors, 5xx, other errors
    and malformed replies -> 1, 2, 4 ... 30 s with jitter. The error
    callback hears about every failure.

    Use from one thread. The callbacks may call rst_tgpoll_set_bot and
    rst_tgpoll_remove_bot (even for the bot being reported). Tokens are
    copied, wiped when a bot is removed, and never appear in an error.
*/
#ifndef RST_TGPOLL_H
#define RST_TGPOLL_H

#include "rst_telegram.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#define RST_TGPOLL_TIMEOUT_S        25      //  getUpdates timeout unless rst_tgpoll_new says
#define RST_TGPOLL_TIMEOUT_MAX_S    50      //  Telegram caps long polls at 50 s
#define RST_TGPOLL_LIMIT            100     //  updates per getUpdates
#define RST_TGPOLL_SLACK_MS         10000   //  HTTP timeout = poll timeout + this
#define RST_TGPOLL_EMPTY_PAUSE_MS   1000    //  after an empty reply that came back early
#define RST_TGPOLL_BACKOFF_MIN_MS   1000    //  first wait after a network/5xx error
#define RST_TGPOLL_BACKOFF_MAX_MS   30000   //  longest such wait
#define RST_TGPOLL_CONFLICT_MS      30000   //  after a 409
#define RST_TGPOLL_UNAUTHORIZED_MS  300000  //  after a 401
#define RST_TGPOLL_RETRY_AFTER_MAX_S 3600   //  a longer retry_after is capped

typedef struct rst_tgpoll_t rst_tgpoll_t;

//  Called with the "result" array of one successful getUpdates of BOT_ID (borrowed). Return 0 when the
//  updates are durably stored: the poller then advances that bot's offset to max(update_id)+1 (confirmed
//  by the next getUpdates). Return -1 to have the same updates fetched again after a short backoff.
//  The array is never empty, and every element has an integer update_id (else the reply
//  counts as malformed and goes to the error callback). *NEXT_OFFSET_OUT is preset to
//  max(update_id)+1; the callback may leave it alone (usual) or raise it; a value below
//  the bot's current offset is ignored.
typedef int (rst_tgpoll_updates_fn) (void *arg, int64_t bot_id, const cJSON *updates, int64_t *next_offset_out);

//  Called when a bot's poll failed (401 token revoked, 409 webhook set or another poller, 429, network).
//  STATUS says how (http_status 0 = no HTTP answer); ERR is one line without the token.
typedef void (rst_tgpoll_error_fn) (void *arg, int64_t bot_id, const rst_telegram_status_t *status, const char *err);

//  Creates a poller for BASE_URL (https://api.telegram.org, or a fake) asking for long
//  polls of TIMEOUT_S seconds (0 = RST_TGPOLL_TIMEOUT_S; at most 50). Returns a new
//  object the caller owns, or NULL with a reason in ERR.
rst_tgpoll_t *rst_tgpoll_new (const char *base_url, int timeout_s, char *err, size_t errlen);

//  Stops every poll and frees everything, wiping the tokens. *SELF_P becomes NULL.
void rst_tgpoll_destroy (rst_tgpoll_t **self_p);

//  Adds or updates a bot (token copied, wiped on removal); OFFSET = the next offset to ask for.
//  A new bot polls at once. For a known bot: a different TOKEN cancels its poll and
//  starts over at OFFSET without waiting out any backoff (the owner fixed the token);
//  with the same token, OFFSET only moves the offset forward (the poller's own is newer).
//  Returns 0, or -1 when TOKEN is malformed (see rst_telegram_token_check), BOT_ID is
//  not positive, or memory ran out.
int rst_tgpoll_set_bot (rst_tgpoll_t *self, int64_t bot_id, const char *token, int64_t offset);

//  Stops polling BOT_ID (an unknown id is ignored); its poll in flight is dropped.
void rst_tgpoll_remove_bot (rst_tgpoll_t *self, int64_t bot_id);

//  The number of bots being polled.
size_t rst_tgpoll_count (const rst_tgpoll_t *self);

//  The offset the poller will ask for next for BOT_ID, or -1 for an unknown bot.
int64_t rst_tgpoll_offset (const rst_tgpoll_t *self, int64_t bot_id);

//  Drives the transfers for at most WAIT_MS, calling the callbacks for finished polls and starting the
//  next ones. Returns the number of polls completed, or -1.
//  It returns as soon as at least one poll completed (after all the callbacks of that
//  round), else after WAIT_MS (0 = one pass without waiting). ON_ERROR may be NULL.
//  -1 means the curl multi handle itself failed (logged).
int rst_tgpoll_run (rst_tgpoll_t *self, int wait_ms, rst_tgpoll_updates_fn *on_updates,
                    rst_tgpoll_error_fn *on_error, void *arg);

#endif
