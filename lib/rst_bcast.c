/*  rst_bcast — the broadcaster's protocol (see rst_bcast.h and
    schemas/websocket.md).

    Parsing uses cJSON on a bounded message (the node refuses frames above
    RST_BCAST_MAX_MSG before they get here). Ids are read from JSON numbers
    (doubles): only integral values in 1..2^53-1 are ids, anything else is
    refused, so "1e300", "-1", "1.5", "true" or "\"1\"" never become an id.

    Rendering writes JSON by hand into a growing buffer: every value is an
    integer or a day string that we produced ("YYYY-MM-DD" from PostgreSQL,
    checked by the caller's query), so nothing needs escaping.
*/
#include "rst_bcast.h"

#include <cjson/cJSON.h>

#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ---------------------------------------------------------------------------
//  Days

rst_bcast_day_t *
rst_bcast_day_new (int64_t owner_id, const char *day)
{
    rst_bcast_day_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->owner_id = owner_id;
    snprintf (self->day, sizeof self->day, "%s", day ? day : "");
    return self;
}

void
rst_bcast_day_destroy (rst_bcast_day_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    rst_bcast_day_t *self = *self_p;
    free (self->bots);
    free (self->pools);
    free (self);
    *self_p = NULL;
}

static int
s_append (rst_bcast_entry_t **arr, size_t *n, size_t *cap, int64_t id,
          const rst_bcast_metrics_t *m)
{
    if (*n > 0 && (*arr)[*n - 1].id >= id)
        return 0;               //  out of order: ignored (documented)
    if (*n == *cap) {
        size_t cap2 = *cap ? *cap * 2 : 16;
        rst_bcast_entry_t *arr2 = realloc (*arr, cap2 * sizeof *arr2);
        if (!arr2)
            return -1;
        *arr = arr2;
        *cap = cap2;
    }
    (*arr)[*n].id = id;
    (*arr)[*n].m = *m;
    (*n)++;
    return 0;
}

int
rst_bcast_day_add_bot (rst_bcast_day_t *self, int64_t id, const rst_bcast_metrics_t *m)
{
    assert (self && m);
    return s_append (&self->bots, &self->nbots, &self->bots_cap, id, m);
}

int
rst_bcast_day_add_pool (rst_bcast_day_t *self, int64_t id, const rst_bcast_metrics_t *m)
{
    assert (self && m);
    return s_append (&self->pools, &self->npools, &self->pools_cap, id, m);
}

static const rst_bcast_metrics_t *
s_find (const rst_bcast_entry_t *arr, size_t n, int64_t id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (arr[mid].id == id)
            return &arr[mid].m;
        if (arr[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const rst_bcast_metrics_t *
rst_bcast_day_bot (const rst_bcast_day_t *self, int64_t id)
{
    assert (self);
    return s_find (self->bots, self->nbots, id);
}

const rst_bcast_metrics_t *
rst_bcast_day_pool (const rst_bcast_day_t *self, int64_t id)
{
    assert (self);
    return s_find (self->pools, self->npools, id);
}

// ---------------------------------------------------------------------------
//  Subscriptions

void
rst_bcast_sub_clear (rst_bcast_sub_t *self)
{
    if (!self)
        return;
    free (self->bots);
    free (self->pools);
    memset (self, 0, sizeof *self);
}

void
rst_bcast_sub_move (rst_bcast_sub_t *dst, rst_bcast_sub_t *src)
{
    assert (dst && src);
    rst_bcast_sub_clear (dst);
    *dst = *src;
    memset (src, 0, sizeof *src);
}

int
rst_bcast_has_id (const int64_t *ids, size_t n, int64_t id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ids[mid] == id)
            return 1;
        if (ids[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

static int
s_cmp_id (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return (x > y) - (x < y);
}

//  Reads the array member NAME of ROOT into *IDS / *N (sorted, unique).
//  Returns 0, or -1 with a reason in ERR.
static int
s_parse_ids (const cJSON *root, const char *name, size_t max_ids, int64_t **ids, size_t *n,
             char *err, size_t errlen)
{
    *ids = NULL;
    *n = 0;
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive (root, name);
    if (!arr || cJSON_IsNull (arr))
        return 0;
    if (!cJSON_IsArray (arr)) {
        snprintf (err, errlen, "bad %s", name);
        return -1;
    }
    int count = cJSON_GetArraySize (arr);
    if (count <= 0)
        return 0;
    //  Duplicates are merged, so a long array may still be fine; but an
    //  array far beyond the cap is refused before any allocation grows.
    if ((size_t) count > max_ids * 4 + 16) {
        snprintf (err, errlen, "too many ids");
        return -1;
    }
    int64_t *out = malloc ((size_t) count * sizeof *out);
    if (!out) {
        snprintf (err, errlen, "no memory");
        return -1;
    }
    size_t k = 0;
    const cJSON *item;
    cJSON_ArrayForEach (item, arr) {
        double v = cJSON_IsNumber (item) ? item->valuedouble : NAN;
        if (!isfinite (v) || v < 1 || v > (double) RST_BCAST_ID_MAX || floor (v) != v) {
            free (out);
            snprintf (err, errlen, "bad %s", name);
            return -1;
        }
        out[k++] = (int64_t) v;
    }
    qsort (out, k, sizeof *out, s_cmp_id);
    size_t u = 0;
    for (size_t i = 0; i < k; i++)
        if (u == 0 || out[u - 1] != out[i])
            out[u++] = out[i];
    if (u > max_ids) {
        free (out);
        snprintf (err, errlen, "too many ids");
        return -1;
    }
    *ids = out;
    *n = u;
    return 0;
}

int
rst_bcast_parse (const char *msg, size_t len, size_t max_ids, rst_bcast_sub_t *out, char *err,
                 size_t errlen)
{
    assert (out);
    memset (out, 0, sizeof *out);
    if (!msg || len == 0 || len > RST_BCAST_MAX_MSG) {
        snprintf (err, errlen, len ? "message too long" : "empty message");
        return -1;
    }
    cJSON *root = cJSON_ParseWithLength (msg, len);
    if (!root) {
        snprintf (err, errlen, "bad json");
        return -1;
    }
    int rc = -1;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive (root, "type");
    if (!cJSON_IsObject (root))
        snprintf (err, errlen, "not an object");
    else if (!cJSON_IsString (type) || !type->valuestring)
        snprintf (err, errlen, "no type");
    else if (strcmp (type->valuestring, "subscribe"))
        snprintf (err, errlen, "unknown type");
    else if (s_parse_ids (root, "bots", max_ids, &out->bots, &out->nbots, err, errlen) == 0
             && s_parse_ids (root, "pools", max_ids, &out->pools, &out->npools, err, errlen)
                    == 0)
        rc = RST_BCAST_SUBSCRIBE;
    if (rc < 0)
        rst_bcast_sub_clear (out);
    cJSON_Delete (root);
    return rc;
}

// ---------------------------------------------------------------------------
//  Views and rendering

void
rst_bcast_view_init (rst_bcast_view_t *self)
{
    memset (self, 0, sizeof *self);
}

void
rst_bcast_view_clear (rst_bcast_view_t *self)
{
    if (!self)
        return;
    rst_bcast_sub_clear (&self->sub);
    free (self->bots_sent);
    free (self->pools_sent);
    memset (self, 0, sizeof *self);
}

int
rst_bcast_view_subscribe (rst_bcast_view_t *self, rst_bcast_sub_t *sub_p)
{
    assert (self && sub_p);
    uint64_t seq = self->seq;       //  seq keeps growing across subscriptions
    rst_bcast_view_clear (self);
    self->seq = seq;
    rst_bcast_metrics_t *b = calloc (sub_p->nbots + 1, sizeof *b);
    rst_bcast_metrics_t *p = calloc (sub_p->npools + 1, sizeof *p);
    if (!b || !p) {
        free (b);
        free (p);
        rst_bcast_sub_clear (sub_p);
        return -1;
    }
    rst_bcast_sub_move (&self->sub, sub_p);
    self->bots_sent = b;
    self->pools_sent = p;
    self->has_sub = 1;
    return 0;
}

typedef struct {
    char *data;
    size_t len, cap;
    int failed;
} s_buf_t;

static void
s_printf (s_buf_t *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    for (;;) {
        va_list ap;
        va_start (ap, fmt);
        int n = vsnprintf (b->data ? b->data + b->len : NULL, b->data ? b->cap - b->len : 0, fmt,
                           ap);
        va_end (ap);
        if (n < 0) {
            b->failed = 1;
            return;
        }
        if (b->data && b->len + (size_t) n < b->cap) {
            b->len += (size_t) n;
            return;
        }
        size_t cap = b->cap ? b->cap : 256;
        while (cap <= b->len + (size_t) n)
            cap *= 2;
        char *d = realloc (b->data, cap);
        if (!d) {
            b->failed = 1;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
}

static void
s_metrics (s_buf_t *b, const rst_bcast_metrics_t *m)
{
    s_printf (b,
              "{\"clicks\":%" PRId64 ",\"automated_clicks\":%" PRId64 ",\"starts\":%" PRId64
              ",\"checkouts\":%" PRId64 ",\"purchases\":%" PRId64 ",\"revenue_cents\":%" PRId64
              "}",
              m->clicks, m->automated_clicks, m->starts, m->checkouts, m->purchases,
              m->revenue_cents);
}

static int
s_same (const rst_bcast_metrics_t *a, const rst_bcast_metrics_t *b)
{
    return a->clicks == b->clicks && a->automated_clicks == b->automated_clicks
           && a->starts == b->starts && a->checkouts == b->checkouts
           && a->purchases == b->purchases && a->revenue_cents == b->revenue_cents;
}

//  Renders the entries of one kind that differ from SENT (all when FULL);
//  counts them in *CHANGED. Does not update SENT.
static void
s_entries (s_buf_t *b, const char *name, const int64_t *ids, size_t n,
           const rst_bcast_metrics_t *sent, const rst_bcast_day_t *day,
           const rst_bcast_metrics_t *(*lookup) (const rst_bcast_day_t *, int64_t), int full,
           size_t *changed)
{
    static const rst_bcast_metrics_t zero;
    s_printf (b, ",\"%s\":{", name);
    int first = 1;
    for (size_t i = 0; i < n; i++) {
        const rst_bcast_metrics_t *cur = lookup (day, ids[i]);
        if (!cur)
            cur = &zero;
        if (!full && s_same (cur, &sent[i]))
            continue;
        s_printf (b, "%s\"%" PRId64 "\":", first ? "" : ",", ids[i]);
        s_metrics (b, cur);
        first = 0;
        (*changed)++;
    }
    s_printf (b, "}");
}

static void
s_remember (rst_bcast_metrics_t *sent, const int64_t *ids, size_t n, const rst_bcast_day_t *day,
            const rst_bcast_metrics_t *(*lookup) (const rst_bcast_day_t *, int64_t))
{
    static const rst_bcast_metrics_t zero;
    for (size_t i = 0; i < n; i++) {
        const rst_bcast_metrics_t *cur = lookup (day, ids[i]);
        sent[i] = cur ? *cur : zero;
    }
}

int
rst_bcast_view_render (rst_bcast_view_t *self, const rst_bcast_day_t *day, int full, char **text,
                       size_t *len)
{
    assert (self && day && text && len);
    *text = NULL;
    *len = 0;
    if (!self->has_sub)
        return 0;
    if (!self->day_sent[0] || strcmp (self->day_sent, day->day))
        full = 1;
    int total_changed = full || !s_same (&self->total_sent, &day->total);
    size_t changed = 0;
    s_buf_t b = {0};
    s_printf (&b, "{\"type\":\"%s\",\"seq\":%" PRIu64 ",\"day\":\"%s\"",
              full ? "snapshot" : "update", self->seq + 1, day->day);
    if (total_changed) {
        s_printf (&b, ",\"total\":");
        s_metrics (&b, &day->total);
    }
    s_entries (&b, "bots", self->sub.bots, self->sub.nbots, self->bots_sent, day,
               rst_bcast_day_bot, full, &changed);
    s_entries (&b, "pools", self->sub.pools, self->sub.npools, self->pools_sent, day,
               rst_bcast_day_pool, full, &changed);
    s_printf (&b, "}");
    if (b.failed) {
        free (b.data);
        return -1;
    }
    if (!full && !total_changed && changed == 0) {
        free (b.data);
        return 0;
    }
    s_remember (self->bots_sent, self->sub.bots, self->sub.nbots, day, rst_bcast_day_bot);
    s_remember (self->pools_sent, self->sub.pools, self->sub.npools, day, rst_bcast_day_pool);
    self->total_sent = day->total;
    snprintf (self->day_sent, sizeof self->day_sent, "%s", day->day);
    self->seq++;
    *text = b.data;
    *len = b.len;
    return 1;
}

char *
rst_bcast_error_json (const char *reason, const char *kind, int64_t id, size_t *len)
{
    assert (reason && len);
    s_buf_t b = {0};
    s_printf (&b, "{\"type\":\"error\",\"error\":\"%s\"", reason);
    if (kind && (!strcmp (kind, "bot") || !strcmp (kind, "pool")))
        s_printf (&b, ",\"%s\":%" PRId64, kind, id);
    s_printf (&b, "}");
    if (b.failed) {
        free (b.data);
        return NULL;
    }
    *len = b.len;
    return b.data;
}
