/*  rst_aggbatch — a batch of event ids for the aggregator to count
    (see rst_aggbatch.h).

    Storage: the ids sit back to back in one growing byte buffer, each
    followed by a NUL; OFFSETS[i] is where id i starts. The flags are one
    byte per entry. The array literals are rendered on demand into a second
    growing buffer (ids, then flags), so a batch that is filled and counted
    over and over allocates nothing once it reached its working size.
*/
#include "rst_aggbatch.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

struct rst_aggbatch_t {
    size_t max;             //  capacity (entries)
    size_t count;           //  entries held
    size_t *offsets;        //  MAX: where entry i's id starts in TEXT
    unsigned char *flags;   //  MAX: 1 = automated
    char *text;             //  the ids, NUL-terminated, back to back
    size_t text_len, text_cap;
    char *out;              //  rendered literals: ids "\0" flags "\0"
    size_t out_cap;
    int64_t newest_ms;      //  largest time_ms since the last clear
};

rst_aggbatch_t *
rst_aggbatch_new (size_t max)
{
    if (max < 1 || max > RST_AGGBATCH_MAX_LIMIT)
        return NULL;
    rst_aggbatch_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->max = max;
    self->offsets = calloc (max, sizeof *self->offsets);
    self->flags = calloc (max, 1);
    if (!self->offsets || !self->flags)
        rst_aggbatch_destroy (&self);
    return self;
}

void
rst_aggbatch_destroy (rst_aggbatch_t **self_p)
{
    assert (self_p);
    rst_aggbatch_t *self = *self_p;
    if (!self)
        return;
    free (self->offsets);
    free (self->flags);
    free (self->text);
    free (self->out);
    free (self);
    *self_p = NULL;
}

//  Makes room for NEED more bytes at the end of *BUF (LEN used, *CAP
//  allocated). Returns 0 or -1.
static int
s_reserve (char **buf, size_t *cap, size_t len, size_t need)
{
    if (len + need <= *cap)
        return 0;
    size_t grown = *cap ? *cap : 1024;
    while (grown < len + need)
        grown *= 2;
    char *fresh = realloc (*buf, grown);
    if (!fresh)
        return -1;
    *buf = fresh;
    *cap = grown;
    return 0;
}

int
rst_aggbatch_add (rst_aggbatch_t *self, const char *event_id, size_t len, int automated,
                  int64_t time_ms)
{
    assert (self);
    if (self->count >= self->max || !event_id || len == 0 || memchr (event_id, 0, len))
        return -1;
    if (s_reserve (&self->text, &self->text_cap, self->text_len, len + 1))
        return -1;
    self->offsets[self->count] = self->text_len;
    memcpy (self->text + self->text_len, event_id, len);
    self->text[self->text_len + len] = 0;
    self->text_len += len + 1;
    self->flags[self->count] = automated ? 1 : 0;
    if (self->count == 0 || time_ms > self->newest_ms)
        self->newest_ms = time_ms;
    self->count++;
    return 0;
}

size_t
rst_aggbatch_count (const rst_aggbatch_t *self)
{
    assert (self);
    return self->count;
}

size_t
rst_aggbatch_max (const rst_aggbatch_t *self)
{
    assert (self);
    return self->max;
}

int
rst_aggbatch_is_full (const rst_aggbatch_t *self)
{
    assert (self);
    return self->count >= self->max;
}

int64_t
rst_aggbatch_newest_ms (const rst_aggbatch_t *self)
{
    assert (self);
    return self->count ? self->newest_ms : 0;
}

size_t
rst_aggbatch_quote (const char *s, size_t len, char *dst)
{
    size_t n = 0;
    dst[n++] = '"';
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '"' || s[i] == '\\')
            dst[n++] = '\\';
        dst[n++] = s[i];
    }
    dst[n++] = '"';
    return n;
}

int
rst_aggbatch_params (rst_aggbatch_t *self, const char **ids, const char **flags)
{
    assert (self);
    assert (ids);
    assert (flags);
    //  Ids: each at most 2 * len + 2 quoted, plus a comma; flags: 2 bytes
    //  each; braces and NULs.
    size_t need = 2 * self->text_len + 2 * self->count + 2 * self->count + 8;
    if (s_reserve (&self->out, &self->out_cap, 0, need))
        return -1;
    char *p = self->out;
    *p++ = '{';
    for (size_t i = 0; i < self->count; i++) {
        if (i)
            *p++ = ',';
        const char *id = self->text + self->offsets[i];
        p += rst_aggbatch_quote (id, strlen (id), p);
    }
    *p++ = '}';
    *p++ = 0;
    char *f = p;
    *p++ = '{';
    for (size_t i = 0; i < self->count; i++) {
        if (i)
            *p++ = ',';
        *p++ = self->flags[i] ? 't' : 'f';
    }
    *p++ = '}';
    *p++ = 0;
    assert ((size_t) (p - self->out) <= need);
    *ids = self->out;
    *flags = f;
    return 0;
}

void
rst_aggbatch_clear (rst_aggbatch_t *self)
{
    assert (self);
    self->count = 0;
    self->text_len = 0;
    self->newest_ms = 0;
}
