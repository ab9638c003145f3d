/*  rst_event — the funnel event and its msgpack codec (schemas/events.md).

    Every event is one msgpack map with a schema version ("v"). Events are
    born in the front (clicks) or the bots node and payment webhooks (chat
    events: start, checkout, payment), journaled there, and pushed downstream as ZeroMQ messages that
    hold one or more maps back to back. Downstream nodes decode them with
    rst_event_decode and must treat every byte as untrusted input: a decode
    failure is counted and dropped, never asserted (STYLE.md §6).

    String fields are rst_str_t views. In an event built by the caller they
    borrow the caller's memory (e.g. an h2o request pool); in an event that
    rst_event_decode returned they point into the event's own arena and live
    until rst_event_destroy; there each present string is also followed by a
    NUL byte, and an empty present string has a non-NULL ptr.
*/
#ifndef RST_EVENT_H
#define RST_EVENT_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#define RST_EVENT_SCHEMA_VERSION 1
#define RST_EVENT_MAX_UTM        16     //  utm_* parameters kept per event
#define RST_EVENT_MAX_BYTES      65536  //  larger maps are rejected by the decoder
#define RST_EVENT_ID_MAX         64     //  event_id and click_id length limit
#define RST_EVENT_SHORT_MAX      64     //  src, pixel_id, pool_slug, bot, utm keys
#define RST_EVENT_TIME_MS_MAX    253402300799999LL  //  9999-12-31T23:59:59.999Z
#define RST_EVENT_OFFER_MAX      64     //  offer_id and order_id length limit
#define RST_EVENT_CURRENCY_LEN   3      //  ISO 4217 code, three ASCII letters
#define RST_EVENT_CURRENCY_DEFAULT "BRL"    //  what an absent currency means
#define RST_EVENT_NONE           (-1)   //  an absent optional integer (lead_id, ...)

typedef enum {
    RST_EVENT_CLICK = 1,    //  GET /go/<slug> that got a 302 → Meta PageView
    RST_EVENT_START,        //  the lead started the bot → Meta ViewContent
    RST_EVENT_CHECKOUT,     //  the lead asked to pay (charge created) → InitiateCheckout
    RST_EVENT_PAYMENT,      //  the payment was confirmed → Purchase
} rst_event_type_t;

typedef struct {
    const char *ptr;        //  not NUL-terminated; NULL with len 0 = absent
    size_t len;
} rst_str_t;

typedef struct {
    rst_str_t key;          //  full parameter name, e.g. "utm_source"
    rst_str_t value;
} rst_kv_t;

typedef struct {
    uint32_t version;       //  schema version the event was written with
    rst_event_type_t type;
    rst_str_t event_id;     //  unique per action, kept through every stage (Meta's event_id)
    rst_str_t src;          //  journal that accepted it, e.g. "front.0"; acks go back there
    uint64_t seq;           //  sequence number in that journal
    int64_t time_ms;        //  when the action happened, Unix milliseconds
    int64_t owner_id;       //  users.id of the pool's owner
    int64_t pool_id;
    int64_t bot_id;
    rst_str_t pixel_id;     //  Meta pixel (dataset) id
    rst_str_t click_id;     //  [A-Za-z0-9_-]{1,64}; the Telegram start parameter
                            //  (chat events: the lead's click; absent = organic lead)
    rst_str_t pool_slug;
    rst_str_t bot_username;
    rst_str_t ip;           //  visitor address (after trusted-proxy resolution)
    rst_str_t user_agent;
    rst_str_t url;          //  full request URL, scheme and host included
    rst_str_t referer;
    rst_str_t fbclid;
    rst_str_t fbc;          //  fb.1.<ms>.<fbclid>, built at the click
    rst_str_t fbp;          //  from the _fbp cookie, as is
    size_t utm_count;
    rst_kv_t utm[RST_EVENT_MAX_UTM];
    //  Chat events (start, checkout, payment). Optional integers are
    //  RST_EVENT_NONE when absent (rst_event_init sets them so).
    int64_t lead_id;        //  leads.id in the bots node, >= 1
    int64_t tg_user_id;     //  the lead's Telegram user id, >= 1
    rst_str_t offer_id;     //  <= 64 bytes; Meta content_ids
    rst_str_t offer_name;   //  Meta content_name
    int64_t value_cents;    //  >= 0, centavos; required for checkout and payment
    rst_str_t currency;     //  three ASCII letters; absent = RST_EVENT_CURRENCY_DEFAULT
    rst_str_t order_id;     //  1..64 bytes; required for payment (Meta order_id)
    void *arena;            //  owned storage of a decoded event; NULL for a built one
} rst_event_t;

//  Zeroes SELF, sets version to RST_EVENT_SCHEMA_VERSION and the optional
//  integers (lead_id, tg_user_id, value_cents) to RST_EVENT_NONE.
void rst_event_init (rst_event_t *self);

//  Makes a view of a NUL-terminated string (NULL gives an absent string).
rst_str_t rst_str (const char *cstr);

//  Appends SELF as one msgpack map to PK. Absent optional strings are
//  omitted. Returns 0, or -1 if a required field is missing or a field is
//  outside the schema's limits (too long, bad characters, over
//  RST_EVENT_MAX_BYTES in all): then nothing was written to PK. Whatever
//  this accepts, rst_event_decode accepts.
int rst_event_pack (const rst_event_t *self, msgpack_packer *pk);

//  Decodes the map that starts at DATA + *OFFSET (LEN bytes in all) and
//  advances *OFFSET past it, so a caller can loop over a multi-event message.
//  Returns a new event the caller owns (rst_event_destroy), or NULL with the
//  reason in ERR: truncated data, not a map, unknown schema version, a field
//  of the wrong type or too long, a required field missing. On NULL, *OFFSET
//  is set to LEN when the rest of the message cannot be resynchronised.
rst_event_t *rst_event_decode (const char *data, size_t len, size_t *offset, char *err,
                               size_t errlen);

//  Frees a decoded event and sets *SELF_P to NULL. Safe on NULL.
void rst_event_destroy (rst_event_t **self_p);

//  Name of a type ("click", "start", "checkout", "payment"), or "unknown".
const char *rst_event_type_name (rst_event_type_t type);

//  1 if TYPE is a chat-side event (start, checkout, payment), else 0.
int rst_event_is_chat (rst_event_type_t type);

//  Acknowledgements (schemas/events.md, "Acks"): one msgpack map
//  {"v":1,"stage":S,"seqs":[...]} per ZeroMQ message, sent by a downstream
//  stage to the journal named by the events' `src`. S is the journal ack bit
//  itself (a power of two): 1 = RST_JOURNAL_ACK_STORED (the recorder stored
//  the events in PostgreSQL); later stages use 2, 4, ...
#define RST_ACK_STAGE_STORED 1
#define RST_ACK_MAX_SEQS     1024   //  sequence numbers per ack message

//  Appends one ack map to PK. COUNT must be 1..RST_ACK_MAX_SEQS and STAGE a
//  power of two. Returns 0, or -1 on bad arguments (nothing written).
int rst_ack_pack (msgpack_packer *pk, unsigned stage, const uint64_t *seqs, size_t count);

//  Decodes the ack map that makes up DATA[0..LEN) (one map, nothing after
//  it). Writes the stage into *STAGE and up to MAX sequence numbers into SEQS
//  (OUT). Returns the number of sequence numbers, or -1 with the reason in
//  ERR (truncated, not a map, unknown "v", stage not a power of two, seqs not
//  an array of positive ints, more than MAX of them). Untrusted input: never
//  asserts.
int rst_ack_decode (const char *data, size_t len, unsigned *stage, uint64_t *seqs, size_t max,
                    char *err, size_t errlen);

#endif
