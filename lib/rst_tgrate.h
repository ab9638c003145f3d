/*  rst_tgrate — Telegram sending limits per bot and per chat (token buckets).

    Telegram answers 429 with a retry_after when a bot sends too fast
    (reference/telegram-and-pix.md §1 "Flood limits": about 1 msg/s to one
    chat with short bursts, about 30 msgs/s across chats, penalties grow
    with repeated abuse). The bots node asks rst_tgrate_reserve before every
    call to the Bot API and waits when told to, so it stays under the
    limits instead of discovering them; a 429 that still comes blocks the
    bot (and the chat) until its retry_after has passed.

    Pure: no clock (every call gets NOW, seconds of a monotonic clock), no
    I/O, so tests run in simulated time. Not thread-safe: one thread at a
    time (the bots node wraps it in a mutex). States and caveats:
    rst_tgrate.c.
*/
#ifndef RST_TGRATE_H
#define RST_TGRATE_H

#include <stddef.h>
#include <stdint.h>

#define RST_TGRATE_BOT_RATE      25.0   //  messages/s of one bot, across its chats
#define RST_TGRATE_BOT_BURST     25.0   //  messages one bot may send at once after a pause
#define RST_TGRATE_CHAT_RATE     1.0    //  messages/s to one chat
#define RST_TGRATE_CHAT_BURST    3.0    //  messages to one chat at once after a pause
#define RST_TGRATE_NOMEM_WAIT    1.0    //  wait returned when no memory is left for a new chat

typedef struct rst_tgrate_t rst_tgrate_t;

//  Returns a new limiter the caller owns: each bot may send BOT_RATE
//  messages a second with bursts of BOT_BURST, and each (bot, chat)
//  CHAT_RATE a second with bursts of CHAT_BURST. A rate that is not a
//  positive finite number takes its RST_TGRATE_* default, and so does a
//  burst that is not finite; a burst below 1 is raised to 1. NULL when out
//  of memory.
rst_tgrate_t *rst_tgrate_new (double bot_rate, double bot_burst, double chat_rate,
                              double chat_burst);

//  Frees the limiter and sets *SELF_P to NULL. Safe on NULL and repeated.
void rst_tgrate_destroy (rst_tgrate_t **self_p);

//  Asks to send one message from BOT_ID to CHAT_ID at NOW (CHAT_ID 0: a
//  call that concerns no chat, e.g. answerCallbackQuery: only the bot's
//  limit applies). Returns 0 when it may go now, and then takes one token
//  from the bot's bucket and from the chat's. Otherwise returns the seconds
//  to wait (> 0) before asking again, and takes nothing. Asking again at
//  NOW + the wait succeeds unless other messages took the tokens first.
//  NOW must be finite and should not go backwards (if it does, no tokens
//  are refilled until it catches up).
double rst_tgrate_reserve (rst_tgrate_t *self, int64_t bot_id, int64_t chat_id, double now);

//  A 429 arrived: BOT_ID sends nothing until UNTIL (NOW + retry_after),
//  and when CHAT_ID is not 0 that chat is blocked until UNTIL as well. A
//  block only ever grows: an earlier UNTIL than the current one changes
//  nothing. (Telegram does not say which limit a 429 was about, so the
//  whole bot waits.)
void rst_tgrate_block (rst_tgrate_t *self, int64_t bot_id, int64_t chat_id, double until);

//  Frees the state of every chat (and bot) unused for at least IDLE_S
//  seconds before NOW whose state is that of a new one anyway (bucket
//  full, no block pending), so forgetting it changes no later answer.
//  Call it every minute or so to keep memory bounded with many chats.
//  Returns the number of states freed.
size_t rst_tgrate_forget_idle (rst_tgrate_t *self, double now, double idle_s);

//  Number of states (bots + chats) held; for metrics and tests.
size_t rst_tgrate_size (const rst_tgrate_t *self);

#endif
