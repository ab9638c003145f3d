/*  rst_spool — the sender's durable LMDB spool.

    Role: "accepted means kept" on the Meta side. A sender spools each batch
    it receives and only then acks its events to their journals, which then
    delete their copies; from that moment this file is the only copy until
    Meta accepted the events or they reached the dead_letters table.
    "Never twice" lives here too: an event_id is kept in the done set for
    RST_SPOOL_DONE_KEEP_MS (8 days: Meta refuses events older than 7 days, so
    a replay older than that could never be accepted again anyway), and a
    replayed copy of an event still spooled is dropped on arrival.

    States of a batch:

                 add (durable)             accept (2xx from Meta)
        (absent) ───────────────► PENDING ─────────────────────────► (gone; ids → done "A")
                                   │  ▲ │
              reschedule (retry:   │  │ │ split (code 100: halves, each PENDING)
              attempts, next_ms) ──┘  │ └───────────► two new PENDING batches
                                      │
                           mark_dead  │  (rejected for good, too old)
                                   ▼  │
                                  DEAD ──remove (rows in dead_letters)──► (gone; ids → done "D")

    An event_id is in exactly one of: pending (spooled, PENDING or DEAD),
    done (accepted "A" / dead-lettered "D", with the time), or neither.
    add drops ids that are pending or done; with RST_SPOOL_REPLAY (dlq
    replay) a "D" id may come back.

    Databases (one MDB_env in DIR, named databases):
      heads      8-byte big-endian batch id → rst_spool_head_t (raw struct,
                 native layout: the spool never leaves its host)
      events     batch id → the batch's events, each: u16 id length, id, NUL,
                 u16 src length, src, NUL, u64 seq, i64 time_ms, u32 capi
                 length, capi, NUL (native byte order)
      pending    event_id → batch id
      done       event_id → 8-byte big-endian ms + kind ('A' or 'D')
      done_time  ms (8 bytes big-endian) + event_id → "" (for pruning, oldest first)

    Durability: the environment is opened without MDB_NOSYNC, so every
    commit fsyncs before it returns (the journal deletes its copy on our
    ack). Each public write is one transaction, so a crash leaves either the
    old or the new state.
    Caveats: the map starts at MAP_SIZE and doubles up to MAP_MAX on
    MDB_MAP_FULL (the transaction is aborted and replayed after growing);
    at MAP_MAX, add fails and the sender must not ack (the journals keep the
    events). Batch ids are never reused within a run (gaps are harmless).
    One spool per sender process; one thread uses it.
*/
#define _GNU_SOURCE
#include "rst_spool.h"

#include <assert.h>
#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define S_MAX_DBS      8
#define S_HEAD_VERSION 1
#define S_KIND_ACCEPTED 'A'
#define S_KIND_DEAD     'D'

struct rst_spool_t {
    MDB_env *env;
    MDB_dbi heads, events, pending, done, done_time;
    size_t map_size;            //  current map size
    size_t map_max;             //  largest we grow to
    uint64_t next_id;           //  next batch id to assign
    char *scratch;              //  serialisation buffer (owned)
    size_t scratch_cap;
    char err[512];              //  last failure
};

//  The stored form of a head: a version and the public struct.
typedef struct {
    uint32_t version;
    rst_spool_head_t head;
} s_head_rec_t;

static void
s_be64 (unsigned char out[8], uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        out[i] = (unsigned char) v;
}

static uint64_t
s_get_be64 (const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static int
s_fail (rst_spool_t *self, const char *what, int rc)
{
    snprintf (self->err, sizeof self->err, "spool: %s: LMDB: %s", what,
              rc == MDB_MAP_FULL ? "the spool is full (map size at its maximum)"
                                 : mdb_strerror (rc));
    return -1;
}

const char *
rst_spool_error (const rst_spool_t *self)
{
    return self->err;
}

//  --------------------------------------------------------------------------
//  Open / close

static int
s_mkdirs (const char *dir)
{
    char path[4096];
    if (snprintf (path, sizeof path, "%s", dir) >= (int) sizeof path)
        return -1;
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir (path, 0700) && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir (path, 0700) && errno != EEXIST ? -1 : 0;
}

rst_spool_t *
rst_spool_new (const char *dir, size_t map_size, size_t map_max, char *err, size_t errlen)
{
    assert (dir);
    rst_spool_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, errlen, "spool: out of memory");
        return NULL;
    }
    self->map_size = map_size ? map_size : RST_SPOOL_MAP_SIZE_DEFAULT;
    self->map_max = map_max ? map_max : RST_SPOOL_MAP_SIZE_MAX;
    if (self->map_max < self->map_size)
        self->map_max = self->map_size;
    if (s_mkdirs (dir)) {
        snprintf (err, errlen, "spool: cannot create %s: %s", dir, strerror (errno));
        goto fail;
    }
    int rc = mdb_env_create (&self->env);
    if (!rc)
        rc = mdb_env_set_maxdbs (self->env, S_MAX_DBS);
    if (!rc)
        rc = mdb_env_set_mapsize (self->env, self->map_size);
    if (!rc)
        rc = mdb_env_open (self->env, dir, MDB_NOTLS, 0600);
    if (rc) {
        snprintf (err, errlen, "spool: LMDB: open %s: %s", dir, mdb_strerror (rc));
        goto fail;
    }
    //  A previous run may have grown the map: adopt the file's size.
    MDB_envinfo info;
    if (!mdb_env_info (self->env, &info) && info.me_mapsize > self->map_size)
        self->map_size = info.me_mapsize;
    if (self->map_max < self->map_size)
        self->map_max = self->map_size;

    MDB_txn *txn;
    if ((rc = mdb_txn_begin (self->env, NULL, 0, &txn))) {
        snprintf (err, errlen, "spool: LMDB: %s", mdb_strerror (rc));
        goto fail;
    }
    if ((rc = mdb_dbi_open (txn, "heads", MDB_CREATE, &self->heads))
        || (rc = mdb_dbi_open (txn, "events", MDB_CREATE, &self->events))
        || (rc = mdb_dbi_open (txn, "pending", MDB_CREATE, &self->pending))
        || (rc = mdb_dbi_open (txn, "done", MDB_CREATE, &self->done))
        || (rc = mdb_dbi_open (txn, "done_time", MDB_CREATE, &self->done_time))) {
        mdb_txn_abort (txn);
        snprintf (err, errlen, "spool: LMDB: open databases: %s", mdb_strerror (rc));
        goto fail;
    }
    //  Next id: one past the largest spooled.
    self->next_id = 1;
    MDB_cursor *cur;
    if (!mdb_cursor_open (txn, self->heads, &cur)) {
        MDB_val k, v;
        if (!mdb_cursor_get (cur, &k, &v, MDB_LAST) && k.mv_size == 8)
            self->next_id = s_get_be64 (k.mv_data) + 1;
        mdb_cursor_close (cur);
    }
    if ((rc = mdb_txn_commit (txn))) {
        snprintf (err, errlen, "spool: LMDB: %s", mdb_strerror (rc));
        goto fail;
    }
    return self;
fail:
    rst_spool_destroy (&self);
    return NULL;
}

void
rst_spool_destroy (rst_spool_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    rst_spool_t *self = *self_p;
    if (self->env)
        mdb_env_close (self->env);
    free (self->scratch);
    free (self);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------
//  Write transactions (with growth on MDB_MAP_FULL)

typedef int (s_op_fn) (rst_spool_t *self, MDB_txn *txn, void *arg);

static int
s_grow (rst_spool_t *self)
{
    if (self->map_size >= self->map_max)
        return -1;
    size_t next = self->map_size * 2 > self->map_max ? self->map_max : self->map_size * 2;
    if (mdb_env_set_mapsize (self->env, next))
        return -1;
    self->map_size = next;
    return 0;
}

//  Runs OP in a write transaction and commits it (durably), growing the map
//  and replaying OP on MDB_MAP_FULL. OP returns an LMDB code (0 = commit).
static int
s_write (rst_spool_t *self, s_op_fn *op, void *arg, const char *what)
{
    for (;;) {
        MDB_txn *txn;
        int rc = mdb_txn_begin (self->env, NULL, 0, &txn);
        if (rc)
            return s_fail (self, what, rc);
        rc = op (self, txn, arg);
        if (rc == 0)
            rc = mdb_txn_commit (txn);
        else
            mdb_txn_abort (txn);
        if (rc == 0)
            return 0;
        if (rc == MDB_MAP_FULL && s_grow (self) == 0)
            continue;
        return s_fail (self, what, rc);
    }
}

static int
s_scratch (rst_spool_t *self, size_t need)
{
    if (need <= self->scratch_cap)
        return 0;
    size_t cap = self->scratch_cap ? self->scratch_cap : 4096;
    while (cap < need)
        cap *= 2;
    char *p = realloc (self->scratch, cap);
    if (!p)
        return -1;
    self->scratch = p;
    self->scratch_cap = cap;
    return 0;
}

//  --------------------------------------------------------------------------
//  Serialisation of events

static size_t
s_item_size (const rst_batch_item_t *it)
{
    return 2 + it->event_id.len + 1 + 2 + it->src.len + 1 + 8 + 8 + 4 + it->capi.len + 1;
}

static char *
s_put_str16 (char *p, rst_str_t s)
{
    uint16_t n = (uint16_t) s.len;
    memcpy (p, &n, 2);
    if (s.len)
        memcpy (p + 2, s.ptr, s.len);
    p[2 + s.len] = 0;
    return p + 3 + s.len;
}

static char *
s_put_item (char *p, const rst_batch_item_t *it)
{
    p = s_put_str16 (p, it->event_id);
    p = s_put_str16 (p, it->src);
    memcpy (p, &it->seq, 8);
    memcpy (p + 8, &it->time_ms, 8);
    uint32_t n = (uint32_t) it->capi.len;
    memcpy (p + 16, &n, 4);
    if (it->capi.len)
        memcpy (p + 20, it->capi.ptr, it->capi.len);
    p[20 + it->capi.len] = 0;
    return p + 21 + it->capi.len;
}

//  Parses the events record DATA (LEN bytes, COUNT events) into ITEMS
//  (views into DATA). Returns 0, or -1 when the record is damaged.
static int
s_parse_items (const char *data, size_t len, size_t count, rst_batch_item_t *items)
{
    const char *p = data, *end = data + len;
    for (size_t i = 0; i < count; i++) {
        rst_batch_item_t *it = &items[i];
        uint16_t n;
        if (end - p < 3)
            return -1;
        memcpy (&n, p, 2);
        if ((size_t) (end - p) < 3u + n)
            return -1;
        it->event_id.ptr = p + 2;
        it->event_id.len = n;
        p += 3 + n;
        if (end - p < 3)
            return -1;
        memcpy (&n, p, 2);
        if ((size_t) (end - p) < 3u + n)
            return -1;
        it->src.ptr = p + 2;
        it->src.len = n;
        p += 3 + n;
        if (end - p < 21)
            return -1;
        memcpy (&it->seq, p, 8);
        memcpy (&it->time_ms, p + 8, 8);
        uint32_t c;
        memcpy (&c, p + 16, 4);
        if ((size_t) (end - p) < 21u + c)
            return -1;
        it->capi.ptr = p + 20;
        it->capi.len = c;
        p += 21 + c;
    }
    return p == end ? 0 : -1;
}

//  --------------------------------------------------------------------------
//  Helpers inside a transaction

static int
s_get_head (rst_spool_t *self, MDB_txn *txn, uint64_t id, rst_spool_head_t *head)
{
    unsigned char key[8];
    s_be64 (key, id);
    MDB_val k = {8, key}, v;
    int rc = mdb_get (txn, self->heads, &k, &v);
    if (rc)
        return rc;
    s_head_rec_t rec;
    if (v.mv_size != sizeof rec)
        return MDB_CORRUPTED;
    memcpy (&rec, v.mv_data, sizeof rec);
    if (rec.version != S_HEAD_VERSION)
        return MDB_VERSION_MISMATCH;
    *head = rec.head;
    return 0;
}

static int
s_put_head (rst_spool_t *self, MDB_txn *txn, const rst_spool_head_t *head)
{
    unsigned char key[8];
    s_be64 (key, head->id);
    s_head_rec_t rec;
    memset (&rec, 0, sizeof rec);
    rec.version = S_HEAD_VERSION;
    rec.head = *head;
    MDB_val k = {8, key}, v = {sizeof rec, &rec};
    return mdb_put (txn, self->heads, &k, &v, 0);
}

//  Reads the events of batch ID into a fresh batch object (*OUT).
static int
s_load (rst_spool_t *self, MDB_txn *txn, uint64_t id, rst_spool_batch_t **out)
{
    rst_spool_head_t head;
    int rc = s_get_head (self, txn, id, &head);
    if (rc)
        return rc;
    unsigned char key[8];
    s_be64 (key, id);
    MDB_val k = {8, key}, v;
    if ((rc = mdb_get (txn, self->events, &k, &v)))
        return rc;
    rst_spool_batch_t *b = calloc (1, sizeof *b);
    if (!b)
        return ENOMEM;
    b->head = head;
    b->count = head.count;
    b->data = malloc (v.mv_size ? v.mv_size : 1);
    b->items = calloc (head.count ? head.count : 1, sizeof *b->items);
    if (!b->data || !b->items) {
        rst_spool_batch_destroy (&b);
        return ENOMEM;
    }
    memcpy (b->data, v.mv_data, v.mv_size);
    if (s_parse_items (b->data, v.mv_size, b->count, b->items)) {
        rst_spool_batch_destroy (&b);
        return MDB_CORRUPTED;
    }
    *out = b;
    return 0;
}

static int
s_key_ok (rst_str_t id)
{
    return id.ptr && id.len > 0 && id.len <= RST_SPOOL_KEY_MAX;
}

//  Writes a new batch: head HEAD (id assigned here: self->next_id) with the N
//  items ITEMS (pointers), and, when SET_PENDING, points their pending
//  entries at it (rst_spool_add has done that already).
static int
s_write_batch (rst_spool_t *self, MDB_txn *txn, rst_spool_head_t *head,
               const rst_batch_item_t *const *items, size_t n, int set_pending)
{
    size_t need = 1;
    for (size_t i = 0; i < n; i++)
        need += s_item_size (items[i]);
    if (s_scratch (self, need))
        return ENOMEM;
    char *p = self->scratch;
    head->id = self->next_id++;
    head->count = (uint32_t) n;
    head->oldest_ms = 0;
    for (size_t i = 0; i < n; i++) {
        p = s_put_item (p, items[i]);
        if (i == 0 || items[i]->time_ms < head->oldest_ms)
            head->oldest_ms = items[i]->time_ms;
    }
    unsigned char key[8];
    s_be64 (key, head->id);
    MDB_val k = {8, key}, v = {(size_t) (p - self->scratch), self->scratch};
    int rc = mdb_put (txn, self->events, &k, &v, 0);
    if (!rc)
        rc = s_put_head (self, txn, head);
    for (size_t i = 0; set_pending && !rc && i < n; i++) {
        MDB_val ek = {items[i]->event_id.len, (void *) items[i]->event_id.ptr};
        MDB_val ev = {8, key};
        rc = mdb_put (txn, self->pending, &ek, &ev, 0);
    }
    return rc;
}

//  Deletes batch ID (head and events).
static int
s_delete_batch (rst_spool_t *self, MDB_txn *txn, uint64_t id)
{
    unsigned char key[8];
    s_be64 (key, id);
    MDB_val k = {8, key};
    int rc = mdb_del (txn, self->heads, &k, NULL);
    if (!rc || rc == MDB_NOTFOUND)
        rc = mdb_del (txn, self->events, &k, NULL);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

//  Removes EVENT_ID's done entry (and its time index entry).
static int
s_forget_done (rst_spool_t *self, MDB_txn *txn, MDB_val *eid, const MDB_val *done_val)
{
    unsigned char tkey[8 + RST_SPOOL_KEY_MAX];
    memcpy (tkey, done_val->mv_data, 8);
    memcpy (tkey + 8, eid->mv_data, eid->mv_size);
    MDB_val tk = {8 + eid->mv_size, tkey};
    int rc = mdb_del (txn, self->done_time, &tk, NULL);
    if (rc && rc != MDB_NOTFOUND)
        return rc;
    rc = mdb_del (txn, self->done, eid, NULL);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

//  Marks EVENT_ID done (KIND) at NOW_MS.
static int
s_mark_done (rst_spool_t *self, MDB_txn *txn, rst_str_t event_id, int64_t now_ms, char kind)
{
    MDB_val eid = {event_id.len, (void *) event_id.ptr}, old;
    int rc = mdb_get (txn, self->done, &eid, &old);
    if (!rc && old.mv_size == 9) {
        MDB_val copy = old;
        unsigned char buf[9];
        memcpy (buf, old.mv_data, 9);
        copy.mv_data = buf;
        if ((rc = s_forget_done (self, txn, &eid, &copy)))
            return rc;
    }
    else if (rc && rc != MDB_NOTFOUND)
        return rc;
    unsigned char val[9];
    s_be64 (val, (uint64_t) now_ms);
    val[8] = (unsigned char) kind;
    MDB_val v = {9, val};
    if ((rc = mdb_put (txn, self->done, &eid, &v, 0)))
        return rc;
    unsigned char tkey[8 + RST_SPOOL_KEY_MAX];
    memcpy (tkey, val, 8);
    memcpy (tkey + 8, event_id.ptr, event_id.len);
    MDB_val tk = {8 + event_id.len, tkey}, empty = {0, ""};
    return mdb_put (txn, self->done_time, &tk, &empty, 0);
}

//  --------------------------------------------------------------------------
//  add

typedef struct {
    const rst_batch_t *const *batches;
    size_t count;
    int flags;
    unsigned char *verdicts;
    uint64_t *ids;
    const rst_batch_item_t **kept;      //  scratch: pointers to kept items of one batch
    size_t kept_cap;
    int64_t now_ms;
} s_add_t;

static int
s_add_op (rst_spool_t *self, MDB_txn *txn, void *arg)
{
    s_add_t *a = arg;
    uint64_t first_id = self->next_id;
    size_t v = 0;
    for (size_t b = 0; b < a->count; b++) {
        const rst_batch_t *batch = a->batches[b];
        if (batch->count > a->kept_cap) {
            const rst_batch_item_t **p = realloc (a->kept, batch->count * sizeof *p);
            if (!p)
                return ENOMEM;
            a->kept = p;
            a->kept_cap = batch->count;
        }
        //  The batch's id once written (s_write_batch): its kept events point
        //  at it in `pending` at once, so that a second copy of an event in
        //  the same batch is found there like any other duplicate.
        unsigned char id_key[8];
        s_be64 (id_key, self->next_id);
        size_t n = 0;
        for (size_t i = 0; i < batch->count; i++, v++) {
            const rst_batch_item_t *it = &batch->items[i];
            if (!s_key_ok (it->event_id)) {
                a->verdicts[v] = RST_SPOOL_BAD;
                continue;
            }
            MDB_val k = {it->event_id.len, (void *) it->event_id.ptr}, val;
            int rc = mdb_get (txn, self->pending, &k, &val);
            if (!rc) {
                int same_add = val.mv_size == 8 && s_get_be64 (val.mv_data) >= first_id;
                //  Within the batch being built (not yet written) or an earlier one of this add.
                a->verdicts[v] = same_add ? RST_SPOOL_DUP_BATCH : RST_SPOOL_DUP_PENDING;
                continue;
            }
            if (rc != MDB_NOTFOUND)
                return rc;
            rc = mdb_get (txn, self->done, &k, &val);
            if (!rc) {
                int dead = val.mv_size == 9 && ((unsigned char *) val.mv_data)[8] == S_KIND_DEAD;
                if (!(dead && (a->flags & RST_SPOOL_REPLAY))) {
                    a->verdicts[v] = RST_SPOOL_DUP_DONE;
                    continue;
                }
                unsigned char buf[9];
                memcpy (buf, val.mv_data, 9);
                MDB_val copy = {9, buf};
                if ((rc = s_forget_done (self, txn, &k, &copy)))
                    return rc;
            }
            else if (rc != MDB_NOTFOUND)
                return rc;
            MDB_val id_val = {8, id_key};
            if ((rc = mdb_put (txn, self->pending, &k, &id_val, 0)))
                return rc;
            a->verdicts[v] = RST_SPOOL_KEPT;
            a->kept[n++] = it;
        }
        a->ids[b] = 0;
        if (n == 0)
            continue;
        rst_spool_head_t head;
        memset (&head, 0, sizeof head);
        head.owner_id = batch->owner_id;
        snprintf (head.pixel_id, sizeof head.pixel_id, "%.*s", (int) batch->pixel_id.len,
                  batch->pixel_id.ptr ? batch->pixel_id.ptr : "");
        head.priority = batch->priority;
        head.state = RST_SPOOL_PENDING;
        head.created_ms = a->now_ms;
        head.batched_ms = batch->created_ms;
        int rc = s_write_batch (self, txn, &head, a->kept, n, 0);
        if (rc)
            return rc;
        a->ids[b] = head.id;
    }
    return 0;
}

static int64_t
s_wall_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
rst_spool_add (rst_spool_t *self, const rst_batch_t *const *batches, size_t count, int flags,
               unsigned char *verdicts, uint64_t *ids)
{
    assert (self);
    assert (batches || count == 0);
    s_add_t a = {batches, count, flags, verdicts, ids, NULL, 0, s_wall_ms ()};
    int rc = s_write (self, s_add_op, &a, "add");
    free (a.kept);
    return rc;
}

//  --------------------------------------------------------------------------
//  Reading

int
rst_spool_scan (rst_spool_t *self, rst_spool_visit_fn *visit, void *arg)
{
    assert (self);
    MDB_txn *txn;
    int rc = mdb_txn_begin (self->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return s_fail (self, "scan", rc);
    MDB_cursor *cur;
    if ((rc = mdb_cursor_open (txn, self->heads, &cur))) {
        mdb_txn_abort (txn);
        return s_fail (self, "scan", rc);
    }
    int n = 0;
    MDB_val k, v;
    for (rc = mdb_cursor_get (cur, &k, &v, MDB_FIRST); !rc;
         rc = mdb_cursor_get (cur, &k, &v, MDB_NEXT)) {
        s_head_rec_t rec;
        if (v.mv_size != sizeof rec)
            continue;
        memcpy (&rec, v.mv_data, sizeof rec);
        if (rec.version != S_HEAD_VERSION)
            continue;
        n++;
        if (visit (arg, &rec.head))
            break;
    }
    mdb_cursor_close (cur);
    mdb_txn_abort (txn);
    return n;
}

rst_spool_batch_t *
rst_spool_get (rst_spool_t *self, uint64_t id)
{
    assert (self);
    MDB_txn *txn;
    int rc = mdb_txn_begin (self->env, NULL, MDB_RDONLY, &txn);
    if (rc) {
        s_fail (self, "get", rc);
        return NULL;
    }
    rst_spool_batch_t *b = NULL;
    rc = s_load (self, txn, id, &b);
    mdb_txn_abort (txn);
    if (rc)
        s_fail (self, "get", rc);
    return b;
}

void
rst_spool_batch_destroy (rst_spool_batch_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free ((*self_p)->items);
    free ((*self_p)->data);
    free (*self_p);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------
//  Transitions

typedef struct {
    uint64_t id;
    int64_t now_ms;
    char kind;
} s_finish_t;

//  accept and remove: the batch's events become done, the batch goes.
static int
s_finish_op (rst_spool_t *self, MDB_txn *txn, void *arg)
{
    s_finish_t *f = arg;
    rst_spool_batch_t *b = NULL;
    int rc = s_load (self, txn, f->id, &b);
    if (rc)
        return rc;
    for (size_t i = 0; !rc && i < b->count; i++) {
        MDB_val k = {b->items[i].event_id.len, (void *) b->items[i].event_id.ptr}, v;
        //  Drop the pending entry only if it still points at this batch.
        rc = mdb_get (txn, self->pending, &k, &v);
        if (!rc && v.mv_size == 8 && s_get_be64 (v.mv_data) == f->id)
            rc = mdb_del (txn, self->pending, &k, NULL);
        else if (rc == MDB_NOTFOUND || !rc)
            rc = 0;
        if (!rc)
            rc = s_mark_done (self, txn, b->items[i].event_id, f->now_ms, f->kind);
    }
    if (!rc)
        rc = s_delete_batch (self, txn, f->id);
    rst_spool_batch_destroy (&b);
    return rc;
}

int
rst_spool_accept (rst_spool_t *self, uint64_t id, int64_t now_ms)
{
    assert (self);
    s_finish_t f = {id, now_ms, S_KIND_ACCEPTED};
    return s_write (self, s_finish_op, &f, "accept");
}

int
rst_spool_remove (rst_spool_t *self, uint64_t id, int64_t now_ms)
{
    assert (self);
    s_finish_t f = {id, now_ms, S_KIND_DEAD};
    return s_write (self, s_finish_op, &f, "remove");
}

typedef struct {
    uint64_t id;
    uint32_t attempts;
    int64_t next_ms;
    const rst_spool_dead_t *dead;
} s_update_t;

static int
s_update_op (rst_spool_t *self, MDB_txn *txn, void *arg)
{
    s_update_t *u = arg;
    rst_spool_head_t head;
    int rc = s_get_head (self, txn, u->id, &head);
    if (rc)
        return rc;
    if (u->dead) {
        head.state = RST_SPOOL_DEAD;
        head.dead = *u->dead;
    }
    else {
        head.attempts = u->attempts;
        head.next_ms = u->next_ms;
    }
    return s_put_head (self, txn, &head);
}

int
rst_spool_reschedule (rst_spool_t *self, uint64_t id, uint32_t attempts, int64_t next_ms)
{
    assert (self);
    s_update_t u = {id, attempts, next_ms, NULL};
    return s_write (self, s_update_op, &u, "reschedule");
}

int
rst_spool_mark_dead (rst_spool_t *self, uint64_t id, const rst_spool_dead_t *why)
{
    assert (self);
    assert (why);
    s_update_t u = {id, 0, 0, why};
    return s_write (self, s_update_op, &u, "mark dead");
}

typedef struct {
    uint64_t id;
    const unsigned char *part;
    uint64_t *ids;
} s_split_t;

static int
s_split_op (rst_spool_t *self, MDB_txn *txn, void *arg)
{
    s_split_t *s = arg;
    rst_spool_batch_t *b = NULL;
    int rc = s_load (self, txn, s->id, &b);
    if (rc)
        return rc;
    const rst_batch_item_t **side = calloc (b->count ? b->count : 1, sizeof *side);
    if (!side) {
        rst_spool_batch_destroy (&b);
        return ENOMEM;
    }
    //  The old batch goes first: its pending entries are overwritten below.
    rc = s_delete_batch (self, txn, s->id);
    for (int p = 0; !rc && p < 2; p++) {
        size_t n = 0;
        for (size_t i = 0; i < b->count; i++)
            if ((s->part[i] != 0) == p)
                side[n++] = &b->items[i];
        s->ids[p] = 0;
        if (!n)
            continue;
        rst_spool_head_t head = b->head;
        head.state = RST_SPOOL_PENDING;
        head.attempts = 0;
        head.next_ms = 0;
        memset (&head.dead, 0, sizeof head.dead);
        rc = s_write_batch (self, txn, &head, side, n, 1);
        s->ids[p] = head.id;
    }
    free (side);
    rst_spool_batch_destroy (&b);
    return rc;
}

int
rst_spool_split (rst_spool_t *self, uint64_t id, const unsigned char *part, uint64_t ids[2])
{
    assert (self);
    assert (part);
    s_split_t s = {id, part, ids};
    return s_write (self, s_split_op, &s, "split");
}

//  --------------------------------------------------------------------------
//  Pruning and questions

typedef struct {
    int64_t before_ms;
    size_t max;
    int pruned;
} s_prune_t;

static int
s_prune_op (rst_spool_t *self, MDB_txn *txn, void *arg)
{
    s_prune_t *p = arg;
    p->pruned = 0;
    MDB_cursor *cur;
    int rc = mdb_cursor_open (txn, self->done_time, &cur);
    if (rc)
        return rc;
    MDB_val k, v;
    while ((size_t) p->pruned < p->max && !(rc = mdb_cursor_get (cur, &k, &v, MDB_FIRST))) {
        if (k.mv_size < 8 || (int64_t) s_get_be64 (k.mv_data) >= p->before_ms)
            break;
        unsigned char when[8];
        memcpy (when, k.mv_data, 8);
        MDB_val eid = {k.mv_size - 8, (char *) k.mv_data + 8}, dv;
        unsigned char idbuf[RST_SPOOL_KEY_MAX];
        if (eid.mv_size > sizeof idbuf)
            eid.mv_size = sizeof idbuf;
        memcpy (idbuf, eid.mv_data, eid.mv_size);
        eid.mv_data = idbuf;
        if ((rc = mdb_cursor_del (cur, 0)))
            break;
        //  The done entry goes only if it is this one (not a newer mark).
        rc = mdb_get (txn, self->done, &eid, &dv);
        if (!rc && dv.mv_size == 9 && !memcmp (dv.mv_data, when, 8))
            rc = mdb_del (txn, self->done, &eid, NULL);
        if (rc && rc != MDB_NOTFOUND)
            break;
        rc = 0;
        p->pruned++;
    }
    mdb_cursor_close (cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int
rst_spool_prune (rst_spool_t *self, int64_t before_ms, size_t max)
{
    assert (self);
    s_prune_t p = {before_ms, max, 0};
    if (s_write (self, s_prune_op, &p, "prune"))
        return -1;
    return p.pruned;
}

int
rst_spool_is_done (rst_spool_t *self, const char *event_id, int *accepted)
{
    assert (self);
    MDB_txn *txn;
    int rc = mdb_txn_begin (self->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return s_fail (self, "lookup", rc);
    MDB_val k = {strlen (event_id), (void *) event_id}, v;
    rc = mdb_get (txn, self->done, &k, &v);
    int result = 0;
    if (!rc) {
        result = 1;
        if (accepted)
            *accepted = v.mv_size == 9 && ((unsigned char *) v.mv_data)[8] == S_KIND_ACCEPTED;
    }
    else if (rc != MDB_NOTFOUND)
        result = s_fail (self, "lookup", rc);
    mdb_txn_abort (txn);
    return result;
}

int
rst_spool_stats (rst_spool_t *self, uint64_t *batches, uint64_t *events, uint64_t *done,
                 int64_t *oldest_ms)
{
    assert (self);
    MDB_txn *txn;
    int rc = mdb_txn_begin (self->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return s_fail (self, "stats", rc);
    MDB_stat st;
    if (batches)
        *batches = mdb_stat (txn, self->heads, &st) ? 0 : st.ms_entries;
    if (events)
        *events = mdb_stat (txn, self->pending, &st) ? 0 : st.ms_entries;
    if (done)
        *done = mdb_stat (txn, self->done, &st) ? 0 : st.ms_entries;
    if (oldest_ms) {
        *oldest_ms = 0;
        MDB_cursor *cur;
        if (!mdb_cursor_open (txn, self->heads, &cur)) {
            MDB_val k, v;
            s_head_rec_t rec;
            if (!mdb_cursor_get (cur, &k, &v, MDB_FIRST) && v.mv_size == sizeof rec) {
                memcpy (&rec, v.mv_data, sizeof rec);
                *oldest_ms = rec.head.created_ms;
            }
            mdb_cursor_close (cur);
        }
    }
    mdb_txn_abort (txn);
    return 0;
}
