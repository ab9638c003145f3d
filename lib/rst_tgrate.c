/*  rst_tgrate — Telegram sending limits per bot and per chat (token buckets).

    Role: the bots node sends every Bot API call through here first
    (reference/telegram-and-pix.md §1, "Flood limits"). Each bot has a
    bucket of BOT_BURST tokens refilled at BOT_RATE a second; each (bot,
    chat) pair a bucket of CHAT_BURST refilled at CHAT_RATE. A message
    takes one token from both, or waits: rst_tgrate_reserve never takes
    from one bucket without the other, so a refused attempt costs nothing.

    One state per bot and per (bot, chat), in one open-addressing hash
    table keyed by (bot_id, chat_id); the bot's own state has chat_id 0
    (Telegram chat ids are never 0). A state is created the first time a
    message is let through (or blocked), so refusals and look-ups allocate
    nothing. States of one key:

        (absent) --reserve allowed / block--> TRACKED (tokens < burst, or blocked)
           ^                                     |
           |                                     | time passes: tokens refill to burst,
           +------ forget_idle (idle_s) -------- + the block expires
                   only when the state is full, unblocked and unused for idle_s

    Forgetting only a state that is equal to a new one keeps every later
    answer unchanged, whatever idle_s the caller picks.

    Time: NOW is seconds on a monotonic clock, passed in. A clock going
    backwards refills nothing (the last refill time is kept). A wait is
    never shorter than S_MIN_WAIT, so a caller that waits exactly what it
    was told cannot spin on rounding errors.

    Table: linear probing, capacity a power of two, load at most 0.7,
    deletion by backward shift (no tombstones); it grows by doubling and
    shrinks after forget_idle empties it below a quarter. 100k chats take
    about 14 MB.

    Caveats: single-threaded (the caller locks). Telegram's limits are
    soft and undocumented in detail: these buckets keep a bot under them
    in the usual case; a 429 still blocks the whole bot for its
    retry_after (rst_tgrate_block). Groups (≤ 20 msgs/min) are not
    special-cased: a 429 from a busy group blocks it as it comes.
*/
#include "rst_tgrate.h"
#include "rst_log.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define S_MIN_CAP     64          //  slots of a new or fully shrunk table
#define S_MIN_WAIT    0.001       //  seconds; the shortest wait ever returned
#define S_EPSILON     1e-9        //  tokens short of 1 that still count as 1

//  What is known about one bot (chat_id 0) or one (bot, chat).
typedef struct {
    int64_t bot_id;
    int64_t chat_id;            //  0: the bot's own bucket
    double tokens;              //  as of `refilled`; at most the burst
    double refilled;            //  time tokens were last brought up to date
    double blocked_until;       //  nothing goes before this time (a 429)
    double used;                //  last time a message was let through, or -inf
    int in_use;                 //  slot holds a state
} s_state_t;

struct rst_tgrate_t {
    double bot_rate;            //  tokens/s of a bot's bucket
    double bot_burst;           //  size of a bot's bucket
    double chat_rate;           //  tokens/s of a chat's bucket
    double chat_burst;          //  size of a chat's bucket
    s_state_t *slots;           //  the hash table (owned)
    size_t cap;                 //  slots; a power of two
    size_t count;               //  slots in use
};

static uint64_t
s_hash (int64_t bot_id, int64_t chat_id)
{
    uint64_t x = (uint64_t) bot_id * 0x9E3779B97F4A7C15ull ^ (uint64_t) chat_id;
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBull;
    x ^= x >> 31;
    return x;
}

//  Smallest capacity that holds N states within the load limit.
static size_t
s_cap_for (size_t n)
{
    size_t cap = S_MIN_CAP;
    while (n * 10 > cap * 7)
        cap *= 2;
    return cap;
}

//  Index of the state of (BOT_ID, CHAT_ID), or of the empty slot where it belongs.
static size_t
s_probe (const s_state_t *slots, size_t cap, int64_t bot_id, int64_t chat_id)
{
    size_t mask = cap - 1;
    size_t i = (size_t) s_hash (bot_id, chat_id) & mask;
    while (slots[i].in_use && (slots[i].bot_id != bot_id || slots[i].chat_id != chat_id))
        i = (i + 1) & mask;
    return i;
}

//  Moves every state into a new table of CAP slots. Returns 0, or -1 when
//  out of memory (the old table is kept).
static int
s_resize (rst_tgrate_t *self, size_t cap)
{
    s_state_t *slots = calloc (cap, sizeof *slots);
    if (!slots)
        return -1;
    for (size_t i = 0; i < self->cap; i++)
        if (self->slots[i].in_use)
            slots[s_probe (slots, cap, self->slots[i].bot_id, self->slots[i].chat_id)] =
                self->slots[i];
    free (self->slots);
    self->slots = slots;
    self->cap = cap;
    return 0;
}

//  Makes room for NEEDED more states without a resize. Returns 0, or -1
//  when the table is full and cannot grow.
static int
s_make_room (rst_tgrate_t *self, size_t needed)
{
    if ((self->count + needed) * 10 <= self->cap * 7)
        return 0;
    if (self->cap <= SIZE_MAX / 2 / sizeof (s_state_t) && s_resize (self, self->cap * 2) == 0)
        return 0;
    //  Past the load limit but still correct while one slot stays empty.
    return self->count + needed < self->cap ? 0 : -1;
}

static s_state_t *
s_find (rst_tgrate_t *self, int64_t bot_id, int64_t chat_id)
{
    s_state_t *state = &self->slots[s_probe (self->slots, self->cap, bot_id, chat_id)];
    return state->in_use ? state : NULL;
}

//  The state of (BOT_ID, CHAT_ID), created with a full bucket of BURST when
//  absent. The caller made room first (s_make_room).
static s_state_t *
s_get (rst_tgrate_t *self, int64_t bot_id, int64_t chat_id, double burst)
{
    s_state_t *state = &self->slots[s_probe (self->slots, self->cap, bot_id, chat_id)];
    if (!state->in_use) {
        assert (self->count + 1 < self->cap);
        *state = (s_state_t){
            .bot_id = bot_id,
            .chat_id = chat_id,
            .tokens = burst,
            .refilled = -INFINITY,
            .blocked_until = -INFINITY,
            .used = -INFINITY,
            .in_use = 1,
        };
        self->count++;
    }
    return state;
}

//  Empties slot I, shifting later states of its probe run back into the hole.
static void
s_delete (rst_tgrate_t *self, size_t i)
{
    size_t mask = self->cap - 1;
    self->slots[i].in_use = 0;
    self->count--;
    size_t j = i;
    while (1) {
        j = (j + 1) & mask;
        if (!self->slots[j].in_use)
            return;
        size_t home = (size_t) s_hash (self->slots[j].bot_id, self->slots[j].chat_id) & mask;
        //  The state at J may stay if its home lies cyclically in (i, j].
        int stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (stays)
            continue;
        self->slots[i] = self->slots[j];
        self->slots[j].in_use = 0;
        i = j;
    }
}

static void
s_refill (s_state_t *state, double rate, double burst, double now)
{
    if (now > state->refilled) {
        double tokens = state->tokens + (now - state->refilled) * rate;
        state->tokens = tokens < burst ? tokens : burst;
        state->refilled = now;
    }
}

//  Seconds STATE (refilled to NOW) makes a message wait; 0 when it may go.
static double
s_wait (const s_state_t *state, double rate, double now)
{
    double wait = 0;
    if (state->tokens < 1 - S_EPSILON)
        wait = (1 - state->tokens) / rate;
    if (state->blocked_until - now > wait)
        wait = state->blocked_until - now;
    if (wait > 0 && wait < S_MIN_WAIT)
        wait = S_MIN_WAIT;
    return wait;
}

//  A rate: positive and finite, else DEFAULT_RATE.
static double
s_rate (double rate, double default_rate)
{
    return isfinite (rate) && rate > 0 ? rate : default_rate;
}

//  A burst: finite, else DEFAULT_BURST; at least 1.
static double
s_burst (double burst, double default_burst)
{
    if (!isfinite (burst))
        burst = default_burst;
    return burst < 1 ? 1 : burst;
}

rst_tgrate_t *
rst_tgrate_new (double bot_rate, double bot_burst, double chat_rate, double chat_burst)
{
    rst_tgrate_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->bot_rate = s_rate (bot_rate, RST_TGRATE_BOT_RATE);
    self->bot_burst = s_burst (bot_burst, RST_TGRATE_BOT_BURST);
    self->chat_rate = s_rate (chat_rate, RST_TGRATE_CHAT_RATE);
    self->chat_burst = s_burst (chat_burst, RST_TGRATE_CHAT_BURST);
    self->cap = S_MIN_CAP;
    self->slots = calloc (self->cap, sizeof *self->slots);
    if (!self->slots)
        rst_tgrate_destroy (&self);
    return self;
}

void
rst_tgrate_destroy (rst_tgrate_t **self_p)
{
    assert (self_p);
    rst_tgrate_t *self = *self_p;
    if (!self)
        return;
    free (self->slots);
    free (self);
    *self_p = NULL;
}

double
rst_tgrate_reserve (rst_tgrate_t *self, int64_t bot_id, int64_t chat_id, double now)
{
    assert (self);
    assert (isfinite (now));
    //  Look first, create nothing: a refusal must cost nothing.
    double wait = 0, w;
    s_state_t *bot = s_find (self, bot_id, 0);
    if (bot) {
        s_refill (bot, self->bot_rate, self->bot_burst, now);
        wait = s_wait (bot, self->bot_rate, now);
    }
    s_state_t *chat = chat_id ? s_find (self, bot_id, chat_id) : NULL;
    if (chat) {
        s_refill (chat, self->chat_rate, self->chat_burst, now);
        if ((w = s_wait (chat, self->chat_rate, now)) > wait)
            wait = w;
    }
    if (wait > 0)
        return wait;

    //  Allowed: take a token from each bucket, creating the states now.
    if (s_make_room (self, chat_id ? 2 : 1)) {
        rst_warn ("tgrate", "out of memory for %zu chat states: bot %lld waits",
                  self->count, (long long) bot_id);
        return RST_TGRATE_NOMEM_WAIT;
    }
    bot = s_get (self, bot_id, 0, self->bot_burst);
    s_refill (bot, self->bot_rate, self->bot_burst, now);
    bot->tokens -= 1;
    if (now > bot->used)
        bot->used = now;
    if (chat_id) {
        chat = s_get (self, bot_id, chat_id, self->chat_burst);
        s_refill (chat, self->chat_rate, self->chat_burst, now);
        chat->tokens -= 1;
        if (now > chat->used)
            chat->used = now;
    }
    return 0;
}

void
rst_tgrate_block (rst_tgrate_t *self, int64_t bot_id, int64_t chat_id, double until)
{
    assert (self);
    if (!isfinite (until))
        return;
    if (s_make_room (self, chat_id ? 2 : 1)) {
        rst_warn ("tgrate", "out of memory: a 429 block of bot %lld was not recorded",
                  (long long) bot_id);
        return;
    }
    s_state_t *bot = s_get (self, bot_id, 0, self->bot_burst);
    if (until > bot->blocked_until)
        bot->blocked_until = until;
    if (chat_id) {
        s_state_t *chat = s_get (self, bot_id, chat_id, self->chat_burst);
        if (until > chat->blocked_until)
            chat->blocked_until = until;
    }
}

size_t
rst_tgrate_forget_idle (rst_tgrate_t *self, double now, double idle_s)
{
    assert (self);
    assert (isfinite (now));
    size_t freed = 0;
    size_t i = 0;
    while (i < self->cap) {
        s_state_t *state = &self->slots[i];
        if (!state->in_use) {
            i++;
            continue;
        }
        int is_bot = state->chat_id == 0;
        double rate = is_bot ? self->bot_rate : self->chat_rate;
        double burst = is_bot ? self->bot_burst : self->chat_burst;
        s_refill (state, rate, burst, now);
        if (now - state->used >= idle_s && state->blocked_until <= now
            && state->tokens >= burst - S_EPSILON) {
            //  A later state of the run may move into slot I: look at I again.
            s_delete (self, i);
            freed++;
        }
        else
            i++;
    }
    if (self->cap > S_MIN_CAP && self->count * 4 < self->cap)
        s_resize (self, s_cap_for (self->count));    //  keeps the big table if it fails
    return freed;
}

size_t
rst_tgrate_size (const rst_tgrate_t *self)
{
    assert (self);
    return self->count;
}
