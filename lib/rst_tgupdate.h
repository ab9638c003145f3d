/*  rst_tgupdate — one Telegram Update (cJSON) read into a flat struct.

    The bots node receives updates by long polling (rst_tgpoll) or by
    webhook (the front), stores them, and then needs a few fields of each:
    who wrote, in which chat, the text, a /start payload, a button's
    callback data, or a join through an invite link. This class reads those
    fields from the Update object (reference/telegram-and-pix.md §1) into
    fixed-size buffers, so the caller never walks cJSON or checks types.

    Kinds: "message" -> RST_TGU_MESSAGE, "callback_query" -> RST_TGU_CALLBACK,
    "chat_member" -> RST_TGU_CHAT_MEMBER; anything else (edited_message,
    channel_post, my_chat_member, ...) is RST_TGU_OTHER with only update_id
    set. An Update is outside input: wrong types are errors, never asserts.

    Strings: copied with truncation on a UTF-8 character boundary, always
    NUL-terminated. Invalid UTF-8 is REPLACED, not rejected: each byte that
    does not start a valid sequence (overlong forms, surrogates, code points
    above U+10FFFF, stray continuation bytes, cut sequences) becomes U+FFFD,
    so that every string is valid UTF-8 for PostgreSQL's text columns.
    callback_data and start_payload are copied only when they are valid and
    fit (else left empty); the payload also only when it is 1-64 characters
    of [A-Za-z0-9_-]. A callback_query.id that is not 1-64 bytes of
    printable ASCII makes the update malformed (it could not be answered).
*/
#ifndef RST_TGUPDATE_H
#define RST_TGUPDATE_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#define RST_TGU_TEXT_MAX 4096           //  bytes of message text kept
#define RST_TGU_PAYLOAD_MAX 64          //  /start payload: 1-64 chars of [A-Za-z0-9_-]

typedef enum { RST_TGU_OTHER = 0, RST_TGU_MESSAGE, RST_TGU_CALLBACK, RST_TGU_CHAT_MEMBER } rst_tgu_kind_t;

typedef struct {
    int64_t update_id;                      //  always set on success
    rst_tgu_kind_t kind;
    int64_t chat_id;                        //  0 when the update names no chat
    char chat_type[16];                     //  private, group, supergroup, channel
    int64_t user_id;                        //  the sender ("from"); 0 when absent
    int is_bot;
    char first_name[129];
    char last_name[129];
    char username[33];                      //  without the '@'
    char language[16];                      //  from.language_code, e.g. pt-br
    int64_t message_id;                     //  the message, or the callback's message
    int64_t date;                           //  Unix seconds
    char text[4097];                        //  message text (UTF-8, cut at 4096 bytes on a char boundary)
    int is_start;                           //  "/start" or "/start@<bot>" command
    char start_payload[65];                 //  payload only if 1–64 chars of [A-Za-z0-9_-], else empty
    char callback_id[65];                   //  callback_query.id (needed to answer it)
    char callback_data[65];                 //  callback_query.data (1-64 bytes), or ""
    char member_status[16];                 //  chat_member: new_chat_member.status
    int64_t member_user_id;                 //  chat_member: new_chat_member.user.id
    char invite_link[256];                  //  chat_member: invite_link.invite_link, or ""
} rst_tgupdate_t;

//  Reads UPDATE (borrowed) into *OUT (OUT, zeroed first). Returns 0, or -1 with a
//  one-line reason in ERR when UPDATE is not an object, has no integer update_id, or
//  a field of a known kind has the wrong type or a required field is missing
//  (message: message_id and chat.id; callback_query: id and from.id; chat_member:
//  chat.id, new_chat_member.status and new_chat_member.user.id). A callback's text is
//  left empty (it is the bot's own message); its chat_id is 0 when the message is
//  absent (too old).
int rst_tgupdate_parse (const cJSON *update, rst_tgupdate_t *out, char *err, size_t errlen);

//  Copies SRC (may be NULL) into DST of DSTLEN bytes as valid UTF-8: invalid bytes
//  become U+FFFD, and the copy ends on a character boundary. Returns the bytes written
//  (without the NUL). DSTLEN must be at least 1.
size_t rst_tgupdate_copy_utf8 (char *dst, size_t dstlen, const char *src);

#endif
