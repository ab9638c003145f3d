/*  rst_bcast — the broadcaster's protocol: subscribe messages in, snapshots
    and updates out (schemas/websocket.md).

    Pure data, no I/O and no threads, so that the parser can be fuzzed
    (tests/fuzz/fuzz_ws_subscribe.c) and the coalescing unit-tested
    (tests/unit/rst_bcast_test.c). The broadcaster node (rst_broadcaster.c)
    owns the sockets, the database and the timing.

    Three pieces:
      - rst_bcast_day_t: one owner's numbers for today (the owner's time
        zone): the total and the sums per bot and per pool, as read from
        analytics_hourly. Built by the database thread, then read-only.
      - rst_bcast_parse: a client's text frame → a subscription (sorted,
        de-duplicated positive ids, at most MAX_IDS of each kind).
      - rst_bcast_view_t: what one client was last sent. rst_bcast_view_render
        compares it with a day and renders a snapshot (everything) or an
        update (only the entries whose numbers moved), then remembers what
        it rendered. Coalescing falls out of it: however many days were
        applied between two renders, the client gets one message with the
        newest absolute values.
*/
#ifndef RST_BCAST_H
#define RST_BCAST_H

#include <stddef.h>
#include <stdint.h>

#define RST_BCAST_DAY_MAX     16            //  "YYYY-MM-DD" + NUL, with room to spare
#define RST_BCAST_MAX_MSG     (64 * 1024)   //  longest client message accepted (bytes)
#define RST_BCAST_MAX_IDS     1000          //  default cap of ids per kind in one subscribe
#define RST_BCAST_ID_MAX      9007199254740991LL  //  2^53 - 1: exact in a JSON number

//  Today's absolute numbers of one key (schemas/sql/005_analytics.sql).
typedef struct {
    int64_t clicks;             //  people's clicks
    int64_t automated_clicks;   //  automated traffic's clicks (never in clicks)
    int64_t starts;
    int64_t checkouts;
    int64_t purchases;
    int64_t revenue_cents;      //  centavos
} rst_bcast_metrics_t;

//  One bot's or pool's numbers.
typedef struct {
    int64_t id;                 //  bots.id or pools.id
    rst_bcast_metrics_t m;
} rst_bcast_entry_t;

//  One owner's day. Arrays are sorted by id (ascending, no duplicates).
typedef struct {
    int64_t owner_id;
    char day[RST_BCAST_DAY_MAX];    //  "YYYY-MM-DD" in the owner's time zone
    rst_bcast_metrics_t total;      //  every pool and bot of the owner
    rst_bcast_entry_t *bots;        //  owned
    size_t nbots, bots_cap;
    rst_bcast_entry_t *pools;       //  owned
    size_t npools, pools_cap;
} rst_bcast_day_t;

//  Returns a new empty day for OWNER_ID and DAY (copied; truncated to
//  RST_BCAST_DAY_MAX - 1 bytes) that the caller owns, or NULL (no memory).
rst_bcast_day_t *rst_bcast_day_new (int64_t owner_id, const char *day);

//  Frees the day and sets *SELF_P to NULL. Safe on NULL.
void rst_bcast_day_destroy (rst_bcast_day_t **self_p);

//  Appends bot ID's (or pool ID's) numbers. IDs must come in ascending
//  order: an id not above the last one is ignored. Returns 0, or -1 when
//  out of memory.
int rst_bcast_day_add_bot (rst_bcast_day_t *self, int64_t id, const rst_bcast_metrics_t *m);
int rst_bcast_day_add_pool (rst_bcast_day_t *self, int64_t id, const rst_bcast_metrics_t *m);

//  Numbers of bot (pool) ID, or NULL when the day has none (all zero).
//  Borrowed: valid while SELF lives.
const rst_bcast_metrics_t *rst_bcast_day_bot (const rst_bcast_day_t *self, int64_t id);
const rst_bcast_metrics_t *rst_bcast_day_pool (const rst_bcast_day_t *self, int64_t id);

//  A subscription: the ids a client asked for, sorted and de-duplicated.
typedef struct {
    int64_t *bots;              //  owned (NULL when none)
    size_t nbots;
    int64_t *pools;             //  owned (NULL when none)
    size_t npools;
} rst_bcast_sub_t;

//  Frees the arrays of SELF and zeroes it. Safe on a zeroed struct.
void rst_bcast_sub_clear (rst_bcast_sub_t *self);

//  Moves SRC into DST (DST is cleared first; SRC is left zeroed).
void rst_bcast_sub_move (rst_bcast_sub_t *dst, rst_bcast_sub_t *src);

//  1 when ID is in the sorted array IDS of N ids, else 0.
int rst_bcast_has_id (const int64_t *ids, size_t n, int64_t id);

#define RST_BCAST_SUBSCRIBE 1   //  rst_bcast_parse: a subscribe message

//  Parses one text message of a client (LEN bytes, not NUL-terminated):
//  {"type":"subscribe","bots":[1,2],"pools":[3]}. "bots" and "pools" are
//  optional (absent = none); their ids must be integral JSON numbers in
//  1..RST_BCAST_ID_MAX; duplicates are merged; more than MAX_IDS distinct
//  ids of one kind is refused. Other members are ignored. On success fills
//  *OUT (cleared first; the caller clears it) and returns
//  RST_BCAST_SUBSCRIBE. Otherwise returns -1 with a short reason fit to send
//  back to the client in ERR ("bad json", "unknown type", "bad bots",
//  "too many ids", ...) and leaves *OUT zeroed.
int rst_bcast_parse (const char *msg, size_t len, size_t max_ids, rst_bcast_sub_t *out,
                     char *err, size_t errlen);

//  What one client was last sent (an embedded struct: _init / _clear).
typedef struct {
    rst_bcast_sub_t sub;                //  the client's subscription (owned ids)
    int has_sub;                        //  0 until the first subscribe was accepted
    rst_bcast_metrics_t *bots_sent;     //  aligned with sub.bots; owned
    rst_bcast_metrics_t *pools_sent;    //  aligned with sub.pools; owned
    rst_bcast_metrics_t total_sent;
    char day_sent[RST_BCAST_DAY_MAX];   //  "" = nothing sent for this subscription yet
    uint64_t seq;                       //  seq of the last message rendered (0 = none)
} rst_bcast_view_t;

void rst_bcast_view_init (rst_bcast_view_t *self);
void rst_bcast_view_clear (rst_bcast_view_t *self);

//  Replaces the subscription with *SUB_P (taken; zeroed on return). The next
//  render is a snapshot. Returns 0, or -1 when out of memory (the view is
//  then without a subscription).
int rst_bcast_view_subscribe (rst_bcast_view_t *self, rst_bcast_sub_t *sub_p);

//  Renders what SELF needs to catch up with DAY (DAY->owner's numbers; an
//  id DAY lacks counts as all zero):
//    - a snapshot {"type":"snapshot","seq","day","total","bots","pools"}
//      with every subscribed entry when FULL is set, nothing was sent for
//      this subscription yet, or DAY is another day than the last one sent;
//    - else an update of the same shape whose "total" is present only when
//      it changed and whose "bots"/"pools" hold only the entries that
//      changed (both always present, maybe empty);
//    - else (nothing changed) nothing.
//  On 1, *TEXT is a new NUL-terminated JSON string the caller frees, *LEN
//  its length, and SELF remembers the values as sent (seq + 1). Returns 1,
//  0 when there is nothing to send (or SELF has no subscription), -1 when
//  out of memory (SELF unchanged).
int rst_bcast_view_render (rst_bcast_view_t *self, const rst_bcast_day_t *day, int full,
                           char **text, size_t *len);

//  Renders {"type":"error","error":REASON} plus, when KIND is "bot" or
//  "pool", "<kind>":ID. REASON must be plain ASCII without quotes or
//  backslashes (the reasons of this module are). Returns a new string the
//  caller frees (*LEN its length), or NULL when out of memory.
char *rst_bcast_error_json (const char *reason, const char *kind, int64_t id, size_t *len);

#endif
