/*  fuzz_inbox — the inbox message decoder against arbitrary bytes.

    Treats the input as one ZeroMQ message from a front, the way the bots
    node reads it: decodes maps back to back until the offset reaches the
    end (-2 stops), and checks the decoder's promises: the offset only moves
    forward and stays within the input, -2 leaves it at the end, a decoded
    message is complete and within the limits of schemas/inbox.md, and its
    body and query point inside the input. AddressSanitizer and UBSan do the
    rest. Seeds: tests/fuzz/corpus/fuzz_inbox/ (written by
    `rst_inbox_test --write-seeds DIR`).
*/
#include "rst_inbox.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

//  A broken promise is a bug in the decoder: crash loudly so the fuzzer keeps the input.
#define S_CHECK(cond)                                                                          \
    do {                                                                                       \
        if (!(cond))                                                                           \
            abort ();                                                                          \
    } while (0)

//  1 if [P, P + LEN) lies within [DATA, DATA + SIZE).
static int
s_inside (const char *p, size_t len, const char *data, size_t size)
{
    return p >= data && len <= size && p - data <= (ptrdiff_t) (size - len);
}

//  Re-packing a decoded message must succeed (the packer accepts whatever
//  the decoder accepts) and decode to the same message.
static void
s_round_trip (const rst_inbox_msg_t *msg)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    S_CHECK (rst_inbox_pack (msg, &pk) == 0);
    size_t offset = 0;
    rst_inbox_msg_t again;
    S_CHECK (rst_inbox_decode (sb.data, sb.size, &offset, &again) == 0 && offset == sb.size);
    S_CHECK (again.type == msg->type && again.seq == msg->seq && again.time_ms == msg->time_ms);
    S_CHECK (again.body_len == msg->body_len && !memcmp (again.body, msg->body, msg->body_len));
    S_CHECK (!strcmp (again.src, msg->src) && !strcmp (again.charge_id, msg->charge_id));
    S_CHECK ((again.query == NULL) == (msg->query == NULL));
    msgpack_sbuffer_destroy (&sb);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    const char *buf = (const char *) data;
    size_t offset = 0;
    while (offset < size) {
        size_t before = offset;
        rst_inbox_msg_t msg;
        int rc = rst_inbox_decode (buf, size, &offset, &msg);
        S_CHECK (rc == 0 || rc == -1 || rc == -2);
        S_CHECK (offset > before && offset <= size);
        if (rc == -2) {
            S_CHECK (offset == size);
            break;
        }
        if (rc == -1)
            continue;
        S_CHECK (msg.type == RST_INBOX_TG_UPDATE || msg.type == RST_INBOX_GW_WEBHOOK);
        size_t src_len = strnlen (msg.src, sizeof msg.src);
        S_CHECK (src_len >= 1 && src_len <= RST_INBOX_SRC_MAX);
        S_CHECK (msg.seq >= 1 && msg.time_ms >= 1 && msg.time_ms <= RST_INBOX_TIME_MS_MAX);
        S_CHECK (msg.body && msg.body_len <= RST_INBOX_MAX_BODY);
        S_CHECK (s_inside (msg.body, msg.body_len, buf, size));
        if (msg.type == RST_INBOX_TG_UPDATE) {
            S_CHECK (msg.bot_id >= 1 && msg.update_id >= 0 && msg.query == NULL);
        }
        else {
            S_CHECK (msg.gateway[0] && msg.charge_id[0]);
            S_CHECK (strnlen (msg.charge_id, sizeof msg.charge_id) <= RST_INBOX_CHARGE_MAX);
            if (msg.query) {
                S_CHECK (msg.query_len <= RST_INBOX_MAX_QUERY);
                S_CHECK (s_inside (msg.query, msg.query_len, buf, size));
            }
        }
        s_round_trip (&msg);
    }
    return 0;
}
