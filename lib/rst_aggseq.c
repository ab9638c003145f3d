/*  rst_aggseq — a hint that the aggregator's stream skipped events
    (see rst_aggseq.h).

    A small array searched linearly (at most RST_AGGSEQ_SOURCES journals,
    a handful in practice). Each entry:

        EMPTY --first seq of a journal--> TRACKING (highest = seq)
        TRACKING --seq = highest + 1--> highest = seq
        TRACKING --seq > highest + 1--> gap of seq - highest - 1; highest = seq
        TRACKING --seq <= highest--> unchanged (late or replayed)
        TRACKING --least recently seen, table full, new journal--> replaced
*/
#include "rst_aggseq.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char src[RST_AGGSEQ_SRC_MAX];   //  journal name (not NUL-terminated)
    size_t len;                     //  0 = empty entry
    uint64_t highest;               //  highest seq seen
    uint64_t seen;                  //  tick of the last event (for replacement)
} s_source_t;

struct rst_aggseq_t {
    s_source_t sources[RST_AGGSEQ_SOURCES];
    uint64_t tick;                  //  events noted
};

rst_aggseq_t *
rst_aggseq_new (void)
{
    return calloc (1, sizeof (rst_aggseq_t));
}

void
rst_aggseq_destroy (rst_aggseq_t **self_p)
{
    assert (self_p);
    free (*self_p);
    *self_p = NULL;
}

uint64_t
rst_aggseq_note (rst_aggseq_t *self, const char *src, size_t len, uint64_t seq)
{
    assert (self);
    if (!src || len == 0 || len > RST_AGGSEQ_SRC_MAX)
        return 0;
    self->tick++;
    s_source_t *victim = &self->sources[0];
    for (size_t i = 0; i < RST_AGGSEQ_SOURCES; i++) {
        s_source_t *s = &self->sources[i];
        if (s->len == len && !memcmp (s->src, src, len)) {
            s->seen = self->tick;
            if (seq <= s->highest)
                return 0;
            uint64_t skipped = seq - s->highest - 1;
            s->highest = seq;
            return skipped;
        }
        if (victim->len && (!s->len || s->seen < victim->seen))
            victim = s;
    }
    memcpy (victim->src, src, len);
    victim->len = len;
    victim->highest = seq;
    victim->seen = self->tick;
    return 0;
}
