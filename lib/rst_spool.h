/*  rst_spool — the sender's durable LMDB spool (see rst_spool.c for the
    states of a batch, the databases and the caveats).

    It holds every batch a sender took from a batcher until Meta accepted it
    or its events reached the dead-letter store, the set of event_ids already
    done (accepted by Meta, or dead-lettered) for 8 days, so that an event_id
    Meta accepted is never posted again, and an index of the event_ids
    currently spooled, so that replayed duplicates are dropped on arrival.
    Every write transaction is durable (fsynced) before it returns: the
    journals delete their copy once the sender acks what the spool holds.
    One spool belongs to one sender (one thread).
*/
#ifndef RST_SPOOL_H
#define RST_SPOOL_H

#include "rst_event.h"
#include "rst_pipeline.h"

#include <stddef.h>
#include <stdint.h>

typedef struct rst_spool_t rst_spool_t;

#define RST_SPOOL_MAP_SIZE_DEFAULT (1ull << 30)     //  first map size: 1 GiB
#define RST_SPOOL_MAP_SIZE_MAX     (64ull << 30)    //  grown up to this on MDB_MAP_FULL
#define RST_SPOOL_DONE_KEEP_MS     (8LL * 24 * 3600 * 1000)  //  Meta's 7 days + 1 day margin
#define RST_SPOOL_KEY_MAX          256              //  longest event_id the spool indexes

typedef enum {
    RST_SPOOL_PENDING = 1,      //  waiting for (another) POST
    RST_SPOOL_DEAD = 2,         //  refused for good; waiting to be written to dead_letters
} rst_spool_state_t;

//  Why a batch is dead (copied into its head by rst_spool_mark_dead).
typedef struct {
    char reason[32];            //  short category: "invalid-parameter", "token", "too-old", ...
    long http_status;           //  0 when no HTTP answer was involved
    int code, subcode;          //  Meta's error code and subcode, 0 when none
    char fbtrace_id[64];
    char message[512];          //  Meta's message (never a token)
} rst_spool_dead_t;

//  What the spool keeps about a batch besides its events.
typedef struct {
    uint64_t id;                //  spool-assigned, increasing
    int64_t owner_id;
    char pixel_id[RST_EVENT_SHORT_MAX + 1];
    int priority;
    rst_spool_state_t state;
    uint32_t attempts;          //  POSTs that failed transiently so far
    int64_t next_ms;            //  wall clock: not before this (0 = at once)
    int64_t created_ms;         //  wall clock: when it was first spooled
    int64_t oldest_ms;          //  time_ms of its oldest event
    int64_t batched_ms;         //  the batcher's created_ms
    uint32_t count;             //  events
    rst_spool_dead_t dead;      //  DEAD only
} rst_spool_head_t;

//  A batch read back from the spool. ITEMS are views into DATA, each string
//  NUL-terminated; everything lives until rst_spool_batch_destroy.
typedef struct {
    rst_spool_head_t head;
    size_t count;
    rst_batch_item_t *items;
    char *data;
} rst_spool_batch_t;

//  What rst_spool_add did with each event.
typedef enum {
    RST_SPOOL_KEPT = 0,         //  spooled now
    RST_SPOOL_DUP_PENDING = 1,  //  already spooled (a replay): dropped
    RST_SPOOL_DUP_DONE = 2,     //  already accepted by Meta or dead-lettered: dropped
    RST_SPOOL_DUP_BATCH = 3,    //  twice in what was added: the second copy dropped
    RST_SPOOL_BAD = 4,          //  unusable (empty or over-long event_id): dropped
} rst_spool_verdict_t;

#define RST_SPOOL_REPLAY 0x01   //  rst_spool_add flag: dead-lettered ids may come back

//  Opens (creating) the spool in directory DIR. MAP_SIZE is the first map
//  size and MAP_MAX the size it may grow to on MDB_MAP_FULL (0 = defaults).
//  Returns a new spool the caller owns, or NULL with the reason in ERR.
rst_spool_t *rst_spool_new (const char *dir, size_t map_size, size_t map_max, char *err,
                            size_t errlen);

//  Closes the spool and sets *SELF_P to NULL. Safe on NULL.
void rst_spool_destroy (rst_spool_t **self_p);

//  The reason of the last failure (borrowed; valid until the next call).
const char *rst_spool_error (const rst_spool_t *self);

//  Spools COUNT batches in one durable transaction, dropping events that are
//  already spooled or done (see rst_spool_verdict_t). VERDICTS (OUT) gets
//  one entry per event, batch after batch, in order; IDS (OUT) one spool id
//  per batch (0 when none of its events was kept). With RST_SPOOL_REPLAY,
//  dead-lettered event_ids are taken again. Returns 0 (everything is on
//  disk), or -1 (nothing was kept: the map is full at its maximum, or LMDB
//  failed; see rst_spool_error).
int rst_spool_add (rst_spool_t *self, const rst_batch_t *const *batches, size_t count, int flags,
                   unsigned char *verdicts, uint64_t *ids);

//  Called by rst_spool_scan for each batch head, oldest id first; return 0
//  to continue, 1 to stop. HEAD is valid during the call only.
typedef int (rst_spool_visit_fn) (void *arg, const rst_spool_head_t *head);

//  Visits every batch head. Returns the number visited, or -1.
int rst_spool_scan (rst_spool_t *self, rst_spool_visit_fn *visit, void *arg);

//  Reads batch ID. Returns a new batch the caller frees with
//  rst_spool_batch_destroy, or NULL (no such batch, or LMDB failed).
rst_spool_batch_t *rst_spool_get (rst_spool_t *self, uint64_t id);
void rst_spool_batch_destroy (rst_spool_batch_t **self_p);

//  Meta accepted batch ID at NOW_MS: its events become done (for
//  RST_SPOOL_DONE_KEEP_MS) and the batch goes. Returns 0 or -1.
int rst_spool_accept (rst_spool_t *self, uint64_t id, int64_t now_ms);

//  Records a failed attempt: ATTEMPTS so far, next try at NEXT_MS (wall).
//  Returns 0 or -1.
int rst_spool_reschedule (rst_spool_t *self, uint64_t id, uint32_t attempts, int64_t next_ms);

//  Replaces batch ID by two batches: the events whose PART[i] is 0 and those
//  whose PART[i] is 1, each PENDING with no attempts, due at once. IDS (OUT)
//  gets the new ids (0 for a side with no events). Returns 0 or -1.
int rst_spool_split (rst_spool_t *self, uint64_t id, const unsigned char *part, uint64_t ids[2]);

//  Marks batch ID dead with WHY; it stays (its events still count as
//  spooled) until rst_spool_remove. Returns 0 or -1.
int rst_spool_mark_dead (rst_spool_t *self, uint64_t id, const rst_spool_dead_t *why);

//  The dead letters of batch ID are stored elsewhere: its events become done
//  (dead-lettered) and the batch goes. Returns 0 or -1.
int rst_spool_remove (rst_spool_t *self, uint64_t id, int64_t now_ms);

//  Forgets up to MAX done event_ids recorded before BEFORE_MS. Returns how
//  many, or -1.
int rst_spool_prune (rst_spool_t *self, int64_t before_ms, size_t max);

//  1 if EVENT_ID is done (accepted or dead-lettered), 0 if not, -1 on error.
//  *ACCEPTED (OUT, may be NULL) is 1 when Meta accepted it.
int rst_spool_is_done (rst_spool_t *self, const char *event_id, int *accepted);

//  Batches and events spooled, done event_ids kept, and the created time of
//  the oldest batch (0 when empty), into the OUT parameters. Returns 0 or -1.
int rst_spool_stats (rst_spool_t *self, uint64_t *batches, uint64_t *events, uint64_t *done,
                     int64_t *oldest_ms);

#endif
