/*  rst_journal — the durable LMDB journal behind "accepted means kept".

    A node that accepts events from outside (the front for clicks; later the
    bots node and payment webhooks) writes each one here, in a group commit,
    before it answers. The entry then waits for acknowledgements from the
    downstream stages named in the journal's required ack mask (bit 0 =
    "stored in PostgreSQL" by the recorder; later bits for "accepted by Meta").
    When every required bit is set the entry is deleted. Entries still
    unacknowledged after a timeout are offered again by rst_journal_scan, and
    downstream de-duplicates by event_id, so a replay is harmless.

    States of an entry:

        (absent) --txn_put+commit--> PENDING --ack(all required bits)--> (deleted)
                                       |  ^
                                       +--+ ack(some bits): mask updated

    Keys are 8-byte big-endian sequence numbers, assigned in the write
    transaction, so they are unique and increasing per journal and entries
    sort oldest first. Values are a 16-byte header (born time in ms,
    big-endian; ack mask; reserved) followed by the event's msgpack bytes.

    Threads: one rst_journal_t per process (one MDB_env), shared by every
    thread of that process; LMDB allows one write transaction at a time, so
    keep write transactions short (group commit: many events per txn).
    Durability: commits use MDB_NOSYNC; a process crash loses nothing once
    commit returned. rst_journal_sync (called by the owner at most every
    sync interval, default 10 ms) bounds what a machine crash can lose;
    rst_journal_txn_commit with durable=1 fsyncs before returning (strict mode).
    Caveat: the map size is fixed at open (default 64 GiB of address space);
    when it is full, commits fail with -1 and the caller must refuse the
    event rather than pretend it was kept.
*/
#ifndef RST_JOURNAL_H
#define RST_JOURNAL_H

#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rst_journal_t rst_journal_t;

#define RST_JOURNAL_ACK_STORED 0x01u   //  recorder stored the event in PostgreSQL
#define RST_JOURNAL_ACK_META   0x02u   //  the Meta path has it: spooled by a sender, or
                                       //  not for Meta (automated traffic), or dead-lettered

//  Parses a comma-separated list of ack names ("stored", "meta") into a
//  mask. Returns the mask, or 0 if a name is unknown or the list is empty.
unsigned rst_journal_acks_parse (const char *list);
#define RST_JOURNAL_MAP_SIZE_DEFAULT (64ull << 30)

//  Opens (creating if needed) the journal in directory DIR. REQUIRED_ACKS is
//  the mask of ack bits after which an entry is deleted. MAP_SIZE 0 means the
//  default. Returns a new journal the caller owns, or NULL with the reason in ERR.
rst_journal_t *rst_journal_new (const char *dir, unsigned required_acks, size_t map_size,
                                char *err, size_t errlen);

//  Closes the journal (after a final sync) and sets *SELF_P to NULL. Every
//  write transaction must have ended. Safe on NULL.
void rst_journal_destroy (rst_journal_t **self_p);

//  One write transaction (group commit). Lives on the caller's stack; used by
//  one thread from begin to commit/abort.
typedef struct {
    rst_journal_t *journal;
    MDB_txn *txn;
    MDB_cursor *cursor;
    uint64_t next_seq;      //  sequence the next txn_put will assign
    int64_t born_ms;        //  time stamped in the header of every put
    size_t count;           //  entries put so far
} rst_journal_txn_t;

//  Starts a write transaction (blocks while another thread or process holds
//  the writer lock). Returns 0 or -1.
int rst_journal_txn_begin (rst_journal_t *self, rst_journal_txn_t *txn);

//  Returns the sequence number the next rst_journal_txn_put will assign, so
//  the caller can stamp it into the event before encoding it.
uint64_t rst_journal_txn_next_seq (const rst_journal_txn_t *txn);

//  Appends DATA as the next entry. Returns its sequence number (> 0), or 0 on
//  failure (the transaction must then be aborted).
uint64_t rst_journal_txn_put (rst_journal_txn_t *txn, const void *data, size_t len);

//  Commits. With DURABLE the environment is fsynced before returning (strict
//  mode). Returns 0, or -1 (the entries are not kept; nothing was accepted).
int rst_journal_txn_commit (rst_journal_txn_t *txn, int durable);

//  Throws the transaction away. Safe after a failed put or commit.
void rst_journal_txn_abort (rst_journal_txn_t *txn);

//  Sets ACK_BIT on the entries SEQS[0..COUNT) and deletes those whose mask
//  now covers the required acks. Unknown sequence numbers (already deleted,
//  or forged) are ignored. One write transaction. Returns the number of
//  entries deleted, or -1.
int rst_journal_ack (rst_journal_t *self, const uint64_t *seqs, size_t count, unsigned ack_bit);

//  Called by rst_journal_scan for each entry; return 0 to continue, 1 to stop.
typedef int (rst_journal_visit_fn) (void *arg, uint64_t seq, int64_t born_ms, const void *data,
                                    size_t len);

//  Visits, oldest first, up to MAX pending entries with a sequence > AFTER_SEQ
//  that were born at or before BORN_BEFORE_MS (use INT64_MAX for all). Runs in a
//  read transaction; DATA is valid only during the callback. Returns the number
//  of entries visited, or -1.
int rst_journal_scan (rst_journal_t *self, uint64_t after_seq, int64_t born_before_ms, size_t max,
                      rst_journal_visit_fn *visit, void *arg);

//  The mask of ack bits after which an entry is deleted.
unsigned rst_journal_required_acks (const rst_journal_t *self);

//  Flushes committed data to disk (fsync), unless nothing was committed
//  since the previous call. Call it from one thread. Returns 0 or -1.
int rst_journal_sync (rst_journal_t *self);

//  Number of pending entries and the born time (ms) of the oldest (0 when
//  empty), into the OUT parameters. Returns 0 or -1.
int rst_journal_stats (rst_journal_t *self, uint64_t *depth, int64_t *oldest_born_ms);

#endif
