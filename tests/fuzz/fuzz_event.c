/*  fuzz_event — the event and ack decoders against arbitrary bytes.

    Treats the input as one ZeroMQ message from another node: decodes events
    back to back until the offset reaches the end, the way the recorder does,
    and checks the decoder's promises: the offset only moves forward and
    stays within the input, a decoded event is complete (required fields
    present, strings within limits, NUL-terminated in its arena). The same
    bytes are also offered to rst_ack_decode. AddressSanitizer and UBSan do
    the rest. Seeds: tests/fuzz/corpus/fuzz_event/ (written by
    `rst_event_test --write-seeds DIR`).
*/
#include "rst_event.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

//  A broken promise is a bug in the decoder: crash loudly so the fuzzer keeps the input.
#define S_CHECK(cond)                                                                          \
    do {                                                                                       \
        if (!(cond))                                                                           \
            abort ();                                                                          \
    } while (0)

static void
s_check_str (rst_str_t s, size_t max)
{
    S_CHECK (s.ptr != NULL);
    S_CHECK (s.len <= max);
    S_CHECK (s.ptr[s.len] == 0);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    const char *buf = (const char *) data;
    size_t offset = 0;
    while (offset < size) {
        size_t before = offset;
        char err[160];
        rst_event_t *ev = rst_event_decode (buf, size, &offset, err, sizeof err);
        S_CHECK (offset > before && offset <= size);
        if (!ev) {
            S_CHECK (err[0] != 0);
            continue;
        }
        S_CHECK (ev->version == RST_EVENT_SCHEMA_VERSION);
        S_CHECK (ev->type == RST_EVENT_CLICK || rst_event_is_chat (ev->type));
        s_check_str (ev->event_id, RST_EVENT_ID_MAX);
        s_check_str (ev->src, RST_EVENT_SHORT_MAX);
        s_check_str (ev->pixel_id, RST_EVENT_SHORT_MAX);
        S_CHECK (ev->seq > 0 && ev->time_ms > 0 && ev->owner_id > 0 && ev->bot_id > 0);
        if (ev->type == RST_EVENT_CLICK) {
            s_check_str (ev->click_id, RST_EVENT_ID_MAX);
            s_check_str (ev->ip, RST_EVENT_MAX_BYTES);
            s_check_str (ev->user_agent, RST_EVENT_MAX_BYTES);
            s_check_str (ev->url, RST_EVENT_MAX_BYTES);
            S_CHECK (ev->pool_id > 0);
        }
        else {
            //  A chat event names its lead, and carries what its type needs.
            S_CHECK (ev->pool_id >= 0);
            S_CHECK (ev->click_id.ptr || ev->tg_user_id > 0);
            if (ev->click_id.ptr)
                s_check_str (ev->click_id, RST_EVENT_ID_MAX);
            if (ev->type != RST_EVENT_START)
                S_CHECK (ev->value_cents >= 0);
            if (ev->type == RST_EVENT_PAYMENT)
                s_check_str (ev->order_id, RST_EVENT_OFFER_MAX);
            if (ev->currency.ptr)
                s_check_str (ev->currency, RST_EVENT_CURRENCY_LEN);
            if (ev->offer_id.ptr)
                s_check_str (ev->offer_id, RST_EVENT_OFFER_MAX);
        }
        S_CHECK (ev->lead_id == RST_EVENT_NONE || ev->lead_id > 0);
        S_CHECK (ev->tg_user_id == RST_EVENT_NONE || ev->tg_user_id > 0);
        S_CHECK (ev->value_cents == RST_EVENT_NONE || ev->value_cents >= 0);
        S_CHECK (ev->utm_count <= RST_EVENT_MAX_UTM);
        for (size_t i = 0; i < ev->utm_count; i++) {
            s_check_str (ev->utm[i].key, RST_EVENT_SHORT_MAX);
            s_check_str (ev->utm[i].value, RST_EVENT_MAX_BYTES);
        }
        rst_event_destroy (&ev);
        S_CHECK (ev == NULL);
    }
    unsigned stage = 0;
    uint64_t seqs[64];
    int n = rst_ack_decode (buf, size, &stage, seqs, 64, NULL, 0);
    S_CHECK (n >= -1 && n <= 64);
    if (n >= 0)
        S_CHECK (stage != 0 && (stage & (stage - 1)) == 0);
    return 0;
}
