/*  rst_journal — the durable LMDB journal behind "accepted means kept".

    Role: the front (and later the bots node and payment webhooks) writes
    every event it accepts here, many per write transaction (group commit),
    before it answers the client; it pushes the bytes downstream and deletes
    the entry when every required downstream stage acknowledged it
    (rst_journal_ack). What is not acknowledged in time is offered again by
    rst_journal_scan and pushed again; downstream de-duplicates by event_id.

    Store layout (one LMDB environment in DIR, two named databases):

        "entries"   key   = seq, 8 bytes big-endian (sorts oldest first)
                    value = 16-byte header + the event's msgpack bytes
                            [0..8)   born_ms, int64 big-endian (txn begin time)
                            [8..12)  ack mask, uint32 big-endian (bits received)
                            [12..16) reserved, zero
        "meta"      "next_seq" = 8 bytes big-endian: the sequence the next
                    put will get. Kept apart from the entries because the
                    journal is usually empty (everything acknowledged) and a
                    sequence must never be reused: a late ack for an old seq
                    would otherwise delete a new, unrelated entry.

    States of an entry:

                     txn_put                commit
        (absent) ------------> IN TXN ---------------> PENDING (mask = 0)
                                 |                       |   ^
                                 | abort / failed commit |   | ack(bits not yet
                                 v                       |   |  covering required)
                             (absent; seq               +---+  mask |= bits
                              reused by the               |
                              next txn)                   | ack: mask covers
                                                          v  required_acks
                                                      (deleted)

    Threads: one rst_journal_t per process, shared by its threads. The env is
    opened with MDB_NOTLS so read transactions are not tied to a thread's
    TLS slot. LMDB's writer lock serialises write transactions (txn_begin
    blocks), which is also what makes the sequence numbers unique and
    increasing: next_seq is read and written inside the write transaction.

    Durability: MDB_NOSYNC. A committed transaction is in the OS page cache,
    so a process crash (kill -9) loses nothing once commit returned. A machine
    crash can lose what was committed since the last rst_journal_sync (or
    durable commit). Integrity after a machine crash relies on the file
    system keeping write order (ext4 data=ordered, xfs); MDB_WRITEMAP is not
    used for that reason.

    Caveats:
      - the map size is fixed at open; on MDB_MAP_FULL a put fails, the
        caller aborts and must refuse the events (nothing was accepted);
      - rst_journal_txn_commit(durable=1) returns -1 when the fsync fails
        although the entries are committed: they will still be pushed, and
        the client that was refused will retry with the same event_id;
      - a read transaction pins pages; rst_journal_scan keeps its own
        transaction only for the duration of the scan;
      - born_ms comes from the wall clock; if the clock steps back, entries
        become eligible for replay later than planned (never lost);
      - one process per journal directory: LMDB would allow several, but
        nothing here coordinates them.
*/
#include "rst_journal.h"
#include "rst_clock.h"
#include "rst_log.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define S_HEADER_SIZE      16
#define S_DIR_MODE         0700
#define S_FILE_MODE        0600
#define S_ENTRIES_DB       "entries"
#define S_META_DB          "meta"
#define S_META_NEXT_SEQ    "next_seq"

struct rst_journal_t {
    MDB_env *env;           //  one per process; closed in destroy
    MDB_dbi entries;        //  seq -> header + event
    MDB_dbi meta;           //  next_seq
    unsigned required_acks; //  mask after which an entry is deleted
    char dir[PATH_MAX];     //  for log lines
    size_t synced_txnid;    //  last transaction made durable by rst_journal_sync
                            //  (touched only by the thread that calls it)
};

static void
s_err (char *err, size_t errlen, const char *what, int rc)
{
    if (err && errlen)
        snprintf (err, errlen, "journal: %s: %s", what, mdb_strerror (rc));
}

static void
s_put_be64 (unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char) v;
        v >>= 8;
    }
}

static uint64_t
s_get_be64 (const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static void
s_put_be32 (unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char) (v >> 24);
    p[1] = (unsigned char) (v >> 16);
    p[2] = (unsigned char) (v >> 8);
    p[3] = (unsigned char) v;
}

static uint32_t
s_get_be32 (const unsigned char *p)
{
    return ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16) | ((uint32_t) p[2] << 8) | p[3];
}

//  mkdir -p with mode S_DIR_MODE for the parts we create. Returns 0 or -1.
static int
s_mkdirs (const char *dir)
{
    char path[PATH_MAX];
    if (snprintf (path, sizeof path, "%s", dir) >= (int) sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir (path, S_DIR_MODE) && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir (path, S_DIR_MODE) && errno != EEXIST)
        return -1;
    return 0;
}

//  Reads next_seq inside TXN: the meta record, or (first use, or a journal
//  written before the meta record existed) the last key + 1. Returns 0 or an
//  MDB error code.
static int
s_read_next_seq (rst_journal_t *self, MDB_txn *txn, MDB_cursor *cursor, uint64_t *next_seq)
{
    MDB_val key = {sizeof S_META_NEXT_SEQ - 1, (void *) S_META_NEXT_SEQ};
    MDB_val val;
    uint64_t from_meta = 1, from_keys = 1;
    int rc = mdb_get (txn, self->meta, &key, &val);
    if (rc == 0 && val.mv_size == 8)
        from_meta = s_get_be64 (val.mv_data);
    else if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    MDB_val k, v;
    rc = mdb_cursor_get (cursor, &k, &v, MDB_LAST);
    if (rc == 0 && k.mv_size == 8)
        from_keys = s_get_be64 (k.mv_data) + 1;
    else if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    *next_seq = from_meta > from_keys ? from_meta : from_keys;
    return 0;
}

rst_journal_t *
rst_journal_new (const char *dir, unsigned required_acks, size_t map_size, char *err,
                 size_t errlen)
{
    assert (dir);
    assert (required_acks);
    rst_journal_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, errlen, "journal: out of memory");
        return NULL;
    }
    snprintf (self->dir, sizeof self->dir, "%s", dir);
    self->required_acks = required_acks;
    if (s_mkdirs (dir)) {
        snprintf (err, errlen, "journal: cannot create %s: %s", dir, strerror (errno));
        goto fail;
    }
    int rc = mdb_env_create (&self->env);
    if (rc) {
        s_err (err, errlen, "mdb_env_create", rc);
        goto fail;
    }
    mdb_env_set_maxdbs (self->env, 2);
    rc = mdb_env_set_mapsize (self->env, map_size ? map_size : RST_JOURNAL_MAP_SIZE_DEFAULT);
    if (rc) {
        s_err (err, errlen, "mdb_env_set_mapsize", rc);
        goto fail;
    }
    rc = mdb_env_open (self->env, dir, MDB_NOSYNC | MDB_NOTLS, S_FILE_MODE);
    if (rc) {
        char what[PATH_MAX + 32];
        snprintf (what, sizeof what, "mdb_env_open %s", dir);
        s_err (err, errlen, what, rc);
        goto fail;
    }
    //  Reader slots of processes that died (kill -9) would pin pages forever.
    int dead = 0;
    mdb_reader_check (self->env, &dead);
    if (dead)
        rst_info ("journal", "%s: cleared %d stale reader slots", dir, dead);

    MDB_txn *txn;
    rc = mdb_txn_begin (self->env, NULL, 0, &txn);
    if (rc) {
        s_err (err, errlen, "mdb_txn_begin", rc);
        goto fail;
    }
    rc = mdb_dbi_open (txn, S_ENTRIES_DB, MDB_CREATE, &self->entries);
    if (!rc)
        rc = mdb_dbi_open (txn, S_META_DB, MDB_CREATE, &self->meta);
    if (rc) {
        mdb_txn_abort (txn);
        s_err (err, errlen, "mdb_dbi_open", rc);
        goto fail;
    }
    rc = mdb_txn_commit (txn);
    if (rc) {
        s_err (err, errlen, "mdb_txn_commit", rc);
        goto fail;
    }
    return self;
fail:
    rst_journal_destroy (&self);
    return NULL;
}

void
rst_journal_destroy (rst_journal_t **self_p)
{
    assert (self_p);
    rst_journal_t *self = *self_p;
    if (!self)
        return;
    if (self->env) {
        int rc = mdb_env_sync (self->env, 1);
        if (rc)
            rst_warn ("journal", "%s: final sync: %s", self->dir, mdb_strerror (rc));
        mdb_env_close (self->env);
    }
    free (self);
    *self_p = NULL;
}

int
rst_journal_txn_begin (rst_journal_t *self, rst_journal_txn_t *txn)
{
    assert (self);
    assert (txn);
    memset (txn, 0, sizeof *txn);
    txn->journal = self;
    int rc = mdb_txn_begin (self->env, NULL, 0, &txn->txn);
    if (rc) {
        rst_error ("journal", "%s: mdb_txn_begin: %s", self->dir, mdb_strerror (rc));
        txn->txn = NULL;
        return -1;
    }
    rc = mdb_cursor_open (txn->txn, self->entries, &txn->cursor);
    if (!rc)
        rc = s_read_next_seq (self, txn->txn, txn->cursor, &txn->next_seq);
    if (rc) {
        rst_error ("journal", "%s: starting a write: %s", self->dir, mdb_strerror (rc));
        rst_journal_txn_abort (txn);
        return -1;
    }
    txn->born_ms = rst_clock_wall_ms ();
    return 0;
}

uint64_t
rst_journal_txn_next_seq (const rst_journal_txn_t *txn)
{
    assert (txn && txn->txn);
    return txn->next_seq;
}

uint64_t
rst_journal_txn_put (rst_journal_txn_t *txn, const void *data, size_t len)
{
    assert (txn && txn->txn);
    assert (data || len == 0);
    unsigned char keybuf[8];
    s_put_be64 (keybuf, txn->next_seq);
    MDB_val key = {sizeof keybuf, keybuf};
    MDB_val val = {S_HEADER_SIZE + len, NULL};
    int rc = mdb_cursor_put (txn->cursor, &key, &val, MDB_APPEND | MDB_RESERVE);
    if (rc) {
        rst_error ("journal", "%s: put seq %llu: %s", txn->journal->dir,
                   (unsigned long long) txn->next_seq, mdb_strerror (rc));
        return 0;
    }
    unsigned char *p = val.mv_data;
    s_put_be64 (p, (uint64_t) txn->born_ms);
    s_put_be32 (p + 8, 0);
    s_put_be32 (p + 12, 0);
    if (len)
        memcpy (p + S_HEADER_SIZE, data, len);
    txn->count++;
    return txn->next_seq++;
}

int
rst_journal_txn_commit (rst_journal_txn_t *txn, int durable)
{
    assert (txn && txn->txn);
    rst_journal_t *self = txn->journal;
    int rc = 0;
    if (txn->count) {
        unsigned char buf[8];
        s_put_be64 (buf, txn->next_seq);
        MDB_val key = {sizeof S_META_NEXT_SEQ - 1, (void *) S_META_NEXT_SEQ};
        MDB_val val = {sizeof buf, buf};
        rc = mdb_put (txn->txn, self->meta, &key, &val, 0);
        if (rc) {
            rst_error ("journal", "%s: put next_seq: %s", self->dir, mdb_strerror (rc));
            rst_journal_txn_abort (txn);
            return -1;
        }
    }
    //  Commit frees the cursor of a write transaction, and the txn itself,
    //  whether it succeeds or not.
    rc = mdb_txn_commit (txn->txn);
    txn->txn = NULL;
    txn->cursor = NULL;
    if (rc) {
        rst_error ("journal", "%s: commit of %zu entries: %s", self->dir, txn->count,
                   mdb_strerror (rc));
        return -1;
    }
    if (durable) {
        rc = mdb_env_sync (self->env, 1);
        if (rc) {
            rst_error ("journal", "%s: fsync after commit: %s", self->dir, mdb_strerror (rc));
            return -1;
        }
    }
    return 0;
}

void
rst_journal_txn_abort (rst_journal_txn_t *txn)
{
    assert (txn);
    if (txn->txn)
        mdb_txn_abort (txn->txn);   //  also frees the cursor
    txn->txn = NULL;
    txn->cursor = NULL;
    txn->count = 0;
}

int
rst_journal_ack (rst_journal_t *self, const uint64_t *seqs, size_t count, unsigned ack_bit)
{
    assert (self);
    assert (seqs || count == 0);
    if (count == 0 || ack_bit == 0)
        return 0;
    MDB_txn *txn;
    MDB_cursor *cursor;
    int rc = mdb_txn_begin (self->env, NULL, 0, &txn);
    if (rc) {
        rst_error ("journal", "%s: ack: mdb_txn_begin: %s", self->dir, mdb_strerror (rc));
        return -1;
    }
    rc = mdb_cursor_open (txn, self->entries, &cursor);
    if (rc)
        goto fail;
    int deleted = 0;
    unsigned char *copy = NULL;     //  partial acks: the value with its new mask
    size_t copy_cap = 0;
    for (size_t i = 0; i < count; i++) {
        unsigned char keybuf[8];
        s_put_be64 (keybuf, seqs[i]);
        MDB_val key = {sizeof keybuf, keybuf};
        MDB_val val;
        rc = mdb_cursor_get (cursor, &key, &val, MDB_SET_KEY);
        if (rc == MDB_NOTFOUND)
            continue;   //  already deleted (a second ack), or never ours
        if (rc)
            break;
        if (val.mv_size < S_HEADER_SIZE) {
            rst_warn ("journal", "%s: seq %llu has a %zu-byte value; deleting it", self->dir,
                      (unsigned long long) seqs[i], val.mv_size);
            rc = mdb_cursor_del (cursor, 0);
            if (rc)
                break;
            continue;
        }
        uint32_t mask = s_get_be32 ((unsigned char *) val.mv_data + 8);
        uint32_t new_mask = mask | ack_bit;
        if ((new_mask & self->required_acks) == self->required_acks) {
            rc = mdb_cursor_del (cursor, 0);
            if (rc)
                break;
            deleted++;
        }
        else if (new_mask != mask) {
            //  Pages of a write txn may be shared with readers: never write
            //  through val.mv_data, put a modified copy instead.
            if (copy_cap < val.mv_size) {
                unsigned char *grown = realloc (copy, val.mv_size);
                if (!grown) {
                    rc = ENOMEM;
                    break;
                }
                copy = grown;
                copy_cap = val.mv_size;
            }
            memcpy (copy, val.mv_data, val.mv_size);
            s_put_be32 (copy + 8, new_mask);
            MDB_val nval = {val.mv_size, copy};
            rc = mdb_cursor_put (cursor, &key, &nval, MDB_CURRENT);
            if (rc)
                break;
        }
    }
    free (copy);
    if (rc && rc != MDB_NOTFOUND)
        goto fail;
    rc = mdb_txn_commit (txn);
    if (rc) {
        rst_error ("journal", "%s: ack: commit: %s", self->dir, mdb_strerror (rc));
        return -1;
    }
    return deleted;
fail:
    rst_error ("journal", "%s: ack: %s", self->dir,
               rc == ENOMEM ? "out of memory" : mdb_strerror (rc));
    mdb_txn_abort (txn);
    return -1;
}

int
rst_journal_scan (rst_journal_t *self, uint64_t after_seq, int64_t born_before_ms, size_t max,
                  rst_journal_visit_fn *visit, void *arg)
{
    assert (self);
    assert (visit);
    if (max == 0 || after_seq == UINT64_MAX)
        return 0;
    MDB_txn *txn;
    MDB_cursor *cursor;
    int rc = mdb_txn_begin (self->env, NULL, MDB_RDONLY, &txn);
    if (rc) {
        rst_error ("journal", "%s: scan: mdb_txn_begin: %s", self->dir, mdb_strerror (rc));
        return -1;
    }
    rc = mdb_cursor_open (txn, self->entries, &cursor);
    if (rc) {
        rst_error ("journal", "%s: scan: mdb_cursor_open: %s", self->dir, mdb_strerror (rc));
        mdb_txn_abort (txn);
        return -1;
    }
    unsigned char keybuf[8];
    s_put_be64 (keybuf, after_seq + 1);
    MDB_val key = {sizeof keybuf, keybuf};
    MDB_val val;
    size_t visited = 0;
    rc = mdb_cursor_get (cursor, &key, &val, MDB_SET_RANGE);
    while (rc == 0 && visited < max) {
        if (key.mv_size == 8 && val.mv_size >= S_HEADER_SIZE) {
            const unsigned char *p = val.mv_data;
            int64_t born = (int64_t) s_get_be64 (p);
            if (born <= born_before_ms) {
                visited++;
                if (visit (arg, s_get_be64 (key.mv_data), born, p + S_HEADER_SIZE,
                           val.mv_size - S_HEADER_SIZE))
                    break;
            }
        }
        rc = mdb_cursor_get (cursor, &key, &val, MDB_NEXT);
    }
    int failed = rc != 0 && rc != MDB_NOTFOUND;
    if (failed)
        rst_error ("journal", "%s: scan: %s", self->dir, mdb_strerror (rc));
    mdb_cursor_close (cursor);
    mdb_txn_abort (txn);
    return failed ? -1 : (int) visited;
}

int
rst_journal_sync (rst_journal_t *self)
{
    assert (self);
    //  Nothing committed since the last sync: skip the fsync.
    MDB_envinfo info;
    int have_info = mdb_env_info (self->env, &info) == 0;
    if (have_info && info.me_last_txnid == self->synced_txnid)
        return 0;
    int rc = mdb_env_sync (self->env, 1);
    if (rc == 0 && have_info)
        self->synced_txnid = info.me_last_txnid;
    if (rc) {
        rst_error ("journal", "%s: sync: %s", self->dir, mdb_strerror (rc));
        return -1;
    }
    return 0;
}

int
rst_journal_stats (rst_journal_t *self, uint64_t *depth, int64_t *oldest_born_ms)
{
    assert (self);
    MDB_txn *txn;
    int rc = mdb_txn_begin (self->env, NULL, MDB_RDONLY, &txn);
    if (rc) {
        rst_error ("journal", "%s: stats: mdb_txn_begin: %s", self->dir, mdb_strerror (rc));
        return -1;
    }
    MDB_stat st;
    MDB_cursor *cursor = NULL;
    rc = mdb_stat (txn, self->entries, &st);
    if (!rc)
        rc = mdb_cursor_open (txn, self->entries, &cursor);
    int64_t oldest = 0;
    if (!rc) {
        MDB_val key, val;
        rc = mdb_cursor_get (cursor, &key, &val, MDB_FIRST);
        if (rc == 0 && val.mv_size >= S_HEADER_SIZE)
            oldest = (int64_t) s_get_be64 (val.mv_data);
        if (rc == MDB_NOTFOUND)
            rc = 0;
        mdb_cursor_close (cursor);
    }
    mdb_txn_abort (txn);
    if (rc) {
        rst_error ("journal", "%s: stats: %s", self->dir, mdb_strerror (rc));
        return -1;
    }
    if (depth)
        *depth = st.ms_entries;
    if (oldest_born_ms)
        *oldest_born_ms = oldest;
    return 0;
}

unsigned
rst_journal_acks_parse (const char *list)
{
    unsigned mask = 0;
    const char *p = list;
    while (p && *p) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t n = strcspn (p, ", ");
        if (n == 6 && !strncmp (p, "stored", 6))
            mask |= RST_JOURNAL_ACK_STORED;
        else if (n == 4 && !strncmp (p, "meta", 4))
            mask |= RST_JOURNAL_ACK_META;
        else if (n > 0)
            return 0;
        p += n;
    }
    return mask;
}

unsigned
rst_journal_required_acks (const rst_journal_t *self)
{
    assert (self);
    return self->required_acks;
}
