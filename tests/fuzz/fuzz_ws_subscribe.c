/*  fuzz_ws_subscribe — the broadcaster's client-message parser against
    arbitrary bytes.

    Treats the input as one text frame from a WebSocket client
    (rst_bcast_parse, what rst_broadcaster runs on every frame) and checks
    the parser's promises: on success the ids are sorted, unique, within
    1..RST_BCAST_ID_MAX and at most MAX_IDS of each kind; on failure the
    subscription is empty and the reason is a short printable string. A
    parsed subscription is then rendered (rst_bcast_view) against a small
    day, and the output must be a NUL-terminated JSON object of the length
    reported. AddressSanitizer and UBSan do the rest. Seeds:
    tests/fuzz/corpus/fuzz_ws_subscribe/.
*/
#include "rst_bcast.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_IDS 50

//  A broken promise is a bug in the parser: crash loudly so the fuzzer keeps the input.
#define S_CHECK(cond)                                                                          \
    do {                                                                                       \
        if (!(cond))                                                                           \
            abort ();                                                                          \
    } while (0)

static void
s_check_ids (const int64_t *ids, size_t n)
{
    S_CHECK (n <= S_MAX_IDS);
    S_CHECK (n == 0 || ids != NULL);
    for (size_t i = 0; i < n; i++) {
        S_CHECK (ids[i] >= 1 && ids[i] <= RST_BCAST_ID_MAX);
        S_CHECK (i == 0 || ids[i - 1] < ids[i]);
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    rst_bcast_sub_t sub;
    char err[64];
    err[0] = 0;
    int rc = rst_bcast_parse ((const char *) data, size, S_MAX_IDS, &sub, err, sizeof err);
    if (rc != RST_BCAST_SUBSCRIBE) {
        S_CHECK (rc == -1);
        S_CHECK (sub.bots == NULL && sub.pools == NULL && sub.nbots == 0 && sub.npools == 0);
        size_t len = strnlen (err, sizeof err);
        S_CHECK (len > 0 && len < sizeof err);
        for (size_t i = 0; i < len; i++)
            S_CHECK (err[i] >= 0x20 && err[i] < 0x7f && err[i] != '"' && err[i] != '\\');
        return 0;
    }
    s_check_ids (sub.bots, sub.nbots);
    s_check_ids (sub.pools, sub.npools);

    //  Render it against a day that knows some of the ids.
    rst_bcast_day_t *day = rst_bcast_day_new (1, "2026-01-02");
    S_CHECK (day);
    rst_bcast_metrics_t m = {1, 2, 3, 4, 5, 6};
    for (size_t i = 0; i < sub.nbots; i += 2)
        S_CHECK (rst_bcast_day_add_bot (day, sub.bots[i], &m) == 0);
    for (size_t i = 0; i < sub.npools; i += 2)
        S_CHECK (rst_bcast_day_add_pool (day, sub.pools[i], &m) == 0);
    size_t nbots = sub.nbots, npools = sub.npools;
    rst_bcast_view_t view;
    rst_bcast_view_init (&view);
    S_CHECK (rst_bcast_view_subscribe (&view, &sub) == 0);
    S_CHECK (sub.bots == NULL && sub.pools == NULL);
    S_CHECK (view.sub.nbots == nbots && view.sub.npools == npools);
    char *text = NULL;
    size_t len = 0;
    S_CHECK (rst_bcast_view_render (&view, day, 0, &text, &len) == 1);
    S_CHECK (text && strlen (text) == len && text[0] == '{' && text[len - 1] == '}');
    S_CHECK (!strncmp (text, "{\"type\":\"snapshot\"", 18));
    free (text);
    //  Nothing moved: nothing to send.
    S_CHECK (rst_bcast_view_render (&view, day, 0, &text, &len) == 0 && text == NULL);
    rst_bcast_view_clear (&view);
    rst_bcast_day_destroy (&day);
    return 0;
}
