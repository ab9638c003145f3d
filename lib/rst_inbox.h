/*  rst_inbox — the inbox message: an inbound webhook handed to the bots node.

    The front accepts two kinds of inbound webhooks, Telegram updates (POST
    /telegram/<bot>) and payment gateway notices (POST /webhook/<gateway>).
    Each accepted request becomes one inbox message: journaled in the
    front's inbox journal (strict mode: fsynced before the 2xx), pushed to
    the bots node's `in` endpoint, replayed by the inbox keeper until the
    bots node acknowledges it with RST_JOURNAL_ACK_STORED. Schema:
    schemas/inbox.md (the source of truth; this is its codec).

    Framing is the events' (schemas/events.md): one msgpack map per
    message, several maps back to back in one ZeroMQ message, decoded with
    rst_inbox_decode until the offset reaches the end.

    Guarantees of the decoder (it is fed untrusted bytes and is fuzzed):
    it never reads outside [data, data + len), never asserts on input,
    measures an object (rst_mpcheck) before msgpack-c sees it, rejects maps
    over RST_INBOX_MAX_BYTES, an unknown "v" or "type", a missing or
    out-of-range field, a known key twice and a non-str key; unknown keys
    are ignored. The packer refuses (writing nothing) what the decoder
    would refuse.
*/
#ifndef RST_INBOX_H
#define RST_INBOX_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#define RST_INBOX_VERSION      1
#define RST_INBOX_MAX_BODY     (1024 * 1024)    //  raw request body, bytes
#define RST_INBOX_MAX_QUERY    8192             //  query string, bytes
#define RST_INBOX_MAX_BYTES    (RST_INBOX_MAX_BODY + 16384)  //  a whole map
#define RST_INBOX_SRC_MAX      64               //  "front.<i>"
#define RST_INBOX_GATEWAY_MAX  15               //  gateway kind name
#define RST_INBOX_CHARGE_MAX   127              //  gateway charge id
#define RST_INBOX_TIME_MS_MAX  253402300799999LL    //  9999-12-31T23:59:59.999Z

typedef enum { RST_INBOX_TG_UPDATE = 1, RST_INBOX_GW_WEBHOOK = 2 } rst_inbox_type_t;

typedef struct {
    rst_inbox_type_t type;
    char src[RST_INBOX_SRC_MAX + 1];        //  journal that accepted it, "front.<i>"
    uint64_t seq;                           //  its sequence in that journal, ≥ 1
    int64_t time_ms;                        //  when the front accepted it (Unix ms)
    int64_t bot_id;                         //  tg_update: bots.id, ≥ 1
    int64_t update_id;                      //  tg_update: Telegram's update_id, ≥ 0
    char gateway[RST_INBOX_GATEWAY_MAX + 1];    //  gw_webhook: "mercadopago", ...
    char charge_id[RST_INBOX_CHARGE_MAX + 1];   //  gw_webhook: the gateway's charge id
    const char *body;                       //  raw request body; points into the decoded buffer
    size_t body_len;
    const char *query;                      //  gw_webhook: query string without '?', or NULL
    size_t query_len;
} rst_inbox_msg_t;

//  Packs MSG as one map. Returns 0, or -1 when MSG is invalid (an unknown
//  type, a field out of range, a string too long or with a forbidden
//  character); then nothing was written.
int rst_inbox_pack (const rst_inbox_msg_t *msg, msgpack_packer *pk);

//  Decodes the map at DATA + *OFFSET (several maps back to back per ZeroMQ
//  message, like events) into *OUT (OUT parameter; its body and query point
//  into DATA and are valid while DATA is). Advances *OFFSET past the map.
//  Returns 0; -1 for a well-formed map that is not a valid inbox message
//  (skipped: decoding can continue at *OFFSET); -2 for bytes that are not
//  msgpack, or no bytes left (*OFFSET is set to LEN: stop).
int rst_inbox_decode (const char *data, size_t len, size_t *offset, rst_inbox_msg_t *out);

//  "tg_update" or "gw_webhook"; "?" for anything else. A static string.
const char *rst_inbox_type_name (rst_inbox_type_t type);

#endif
