/*  rst_tgupdate — one Telegram Update (cJSON) read into a flat struct.

    A parse is a walk down a fixed set of paths (see rst_tgupdate.h):

        update_id                                   required integer
        message.{message_id, date, chat, from, text}
        callback_query.{id, from, data, message.{message_id, date, chat}}
        chat_member.{chat, from, date, new_chat_member.{status, user.id},
                     invite_link.invite_link}

    Each field goes through one of three readers (s_int, s_str, s_obj) that
    accept an absent optional field, and refuse a present field of the wrong
    type with "<path>: not an integer|a string|an object". Integers must be
    whole numbers below 2^53 in magnitude (cJSON keeps numbers as doubles;
    Telegram's chat ids need up to 52 bits). Strings pass through
    rst_tgupdate_copy_utf8, which repairs invalid UTF-8 and cuts on a
    character boundary.
*/
#include "rst_tgupdate.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define S_INT_LIMIT 9007199254740992.0      //  2^53: above it doubles skip integers

static const char s_replacement[] = "\xEF\xBF\xBD";  //  U+FFFD

//  Bytes of the valid UTF-8 sequence at S (1-4), or 0 when S does not start one.
//  Stops at the NUL terminator (a NUL is never a continuation byte).
static size_t
s_utf8_len (const unsigned char *s)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        unsigned lo = c == 0xE0 ? 0xA0 : 0x80;     //  no overlongs
        unsigned hi = c == 0xED ? 0x9F : 0xBF;     //  no surrogates
        return s[1] >= lo && s[1] <= hi && (s[2] & 0xC0) == 0x80 ? 3 : 0;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        unsigned lo = c == 0xF0 ? 0x90 : 0x80;     //  no overlongs
        unsigned hi = c == 0xF4 ? 0x8F : 0xBF;     //  nothing above U+10FFFF
        return s[1] >= lo && s[1] <= hi && (s[2] & 0xC0) == 0x80 && (s[3] & 0xC0) == 0x80 ? 4
                                                                                          : 0;
    }
    return 0;
}

size_t
rst_tgupdate_copy_utf8 (char *dst, size_t dstlen, const char *src)
{
    assert (dst && dstlen > 0);
    size_t o = 0;
    const unsigned char *s = (const unsigned char *) (src ? src : "");
    while (*s) {
        size_t n = s_utf8_len (s);
        const void *piece = n ? (const void *) s : (const void *) s_replacement;
        size_t plen = n ? n : sizeof s_replacement - 1;
        if (o + plen + 1 > dstlen)
            break;
        memcpy (dst + o, piece, plen);
        o += plen;
        s += n ? n : 1;
    }
    dst[o] = 0;
    return o;
}

//  OBJ's member NAME into *ITEM (borrowed; NULL when absent). Returns 1 when
//  it is present, 0 when it is absent and optional, -1 with "PATH: missing"
//  in ERR when it is absent and REQUIRED.
static int
s_member (const cJSON *obj, const char *name, int required, const cJSON **item,
          const char *path, char *err, size_t errlen)
{
    *item = cJSON_GetObjectItemCaseSensitive (obj, name);
    if (*item)
        return 1;
    if (required)
        snprintf (err, errlen, "%s: missing", path);
    return required ? -1 : 0;
}

//  OBJ's member NAME as an integer into *OUT. Absent: 0 if optional (OUT untouched),
//  else -1. Present but not a whole number below 2^53: -1. PATH names it in ERR.
static int
s_int (const cJSON *obj, const char *name, int required, int64_t *out, const char *path,
       char *err, size_t errlen)
{
    const cJSON *item;
    int found = s_member (obj, name, required, &item, path, err, errlen);
    if (found <= 0)
        return found;
    double v = cJSON_IsNumber (item) ? item->valuedouble : NAN;
    if (!isfinite (v) || fabs (v) >= S_INT_LIMIT || v != floor (v)) {
        snprintf (err, errlen, "%s: not an integer", path);
        return -1;
    }
    *out = (int64_t) v;
    return 0;
}

//  OBJ's member NAME as a string (borrowed) into *OUT; NULL when absent and optional.
static int
s_str (const cJSON *obj, const char *name, int required, const char **out, const char *path,
       char *err, size_t errlen)
{
    *out = NULL;
    const cJSON *item;
    int found = s_member (obj, name, required, &item, path, err, errlen);
    if (found <= 0)
        return found;
    if (!cJSON_IsString (item) || !item->valuestring) {
        snprintf (err, errlen, "%s: not a string", path);
        return -1;
    }
    *out = item->valuestring;
    return 0;
}

//  OBJ's member NAME as an object (borrowed) into *OUT; NULL when absent and optional.
static int
s_obj (const cJSON *obj, const char *name, int required, const cJSON **out, const char *path,
       char *err, size_t errlen)
{
    int found = s_member (obj, name, required, out, path, err, errlen);
    if (found <= 0)
        return found;
    if (!cJSON_IsObject (*out)) {
        snprintf (err, errlen, "%s: not an object", path);
        *out = NULL;
        return -1;
    }
    return 0;
}

//  An optional string member copied into DST (left "" when absent).
static int
s_copy (const cJSON *obj, const char *name, char *dst, size_t dstlen, const char *path,
        char *err, size_t errlen)
{
    const char *value;
    if (s_str (obj, name, 0, &value, path, err, errlen))
        return -1;
    rst_tgupdate_copy_utf8 (dst, dstlen, value);
    return 0;
}

//  A User ("from"): id required; names, username, language and is_bot optional.
static int
s_user (const cJSON *from, const char *path, rst_tgupdate_t *out, char *err, size_t errlen)
{
    const struct {
        const char *name;
        char *dst;
        size_t len;
    } fields[] = {
        {"first_name", out->first_name, sizeof out->first_name},
        {"last_name", out->last_name, sizeof out->last_name},
        {"username", out->username, sizeof out->username},
        {"language_code", out->language, sizeof out->language},
    };
    char p[96];
    snprintf (p, sizeof p, "%s.id", path);
    if (s_int (from, "id", 1, &out->user_id, p, err, errlen))
        return -1;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        snprintf (p, sizeof p, "%s.%s", path, fields[i].name);
        if (s_copy (from, fields[i].name, fields[i].dst, fields[i].len, p, err, errlen))
            return -1;
    }
    const cJSON *is_bot = cJSON_GetObjectItemCaseSensitive (from, "is_bot");
    if (is_bot && !cJSON_IsBool (is_bot)) {
        snprintf (err, errlen, "%s.is_bot: not a boolean", path);
        return -1;
    }
    out->is_bot = cJSON_IsTrue (is_bot);
    return 0;
}

//  A Chat: id required, type optional.
static int
s_chat (const cJSON *chat, const char *path, rst_tgupdate_t *out, char *err, size_t errlen)
{
    char p[96];
    snprintf (p, sizeof p, "%s.id", path);
    if (s_int (chat, "id", 1, &out->chat_id, p, err, errlen))
        return -1;
    snprintf (p, sizeof p, "%s.type", path);
    return s_copy (chat, "type", out->chat_type, sizeof out->chat_type, p, err, errlen);
}

//  1 when C may appear in a deep-link payload.
static int
s_is_payload_char (char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'
           || c == '-';
}

//  Recognises "/start", "/start@<bot>" and either followed by whitespace and a payload.
static void
s_start_command (rst_tgupdate_t *out)
{
    const char *p = out->text;
    if (strncmp (p, "/start", 6))
        return;
    p += 6;
    if (*p == '@') {
        const char *name = ++p;
        while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')
               || *p == '_')
            p++;
        if (p == name)
            return;
    }
    if (*p == 0) {
        out->is_start = 1;
        return;
    }
    if (*p != ' ' && *p != '\n' && *p != '\t')
        return;                     //  "/startx" is another command
    out->is_start = 1;
    const char *payload = p + 1;
    size_t n = 0;
    while (payload[n] && s_is_payload_char (payload[n]))
        n++;
    if (payload[n] == 0 && n >= 1 && n <= RST_TGU_PAYLOAD_MAX)
        memcpy (out->start_payload, payload, n + 1);
}

static int
s_message (const cJSON *msg, rst_tgupdate_t *out, char *err, size_t errlen)
{
    const cJSON *chat, *from;
    const char *text;
    if (s_int (msg, "message_id", 1, &out->message_id, "message.message_id", err, errlen)
        || s_int (msg, "date", 0, &out->date, "message.date", err, errlen)
        || s_obj (msg, "chat", 1, &chat, "message.chat", err, errlen)
        || s_chat (chat, "message.chat", out, err, errlen)
        || s_obj (msg, "from", 0, &from, "message.from", err, errlen)
        || (from && s_user (from, "message.from", out, err, errlen))
        || s_str (msg, "text", 0, &text, "message.text", err, errlen))
        return -1;
    rst_tgupdate_copy_utf8 (out->text, sizeof out->text, text);
    s_start_command (out);
    return 0;
}

static int
s_callback (const cJSON *cb, rst_tgupdate_t *out, char *err, size_t errlen)
{
    const cJSON *from, *msg, *chat = NULL;
    const char *id, *data;
    if (s_str (cb, "id", 1, &id, "callback_query.id", err, errlen)
        || s_obj (cb, "from", 1, &from, "callback_query.from", err, errlen)
        || s_user (from, "callback_query.from", out, err, errlen)
        || s_str (cb, "data", 0, &data, "callback_query.data", err, errlen)
        || s_obj (cb, "message", 0, &msg, "callback_query.message", err, errlen))
        return -1;
    size_t idlen = strlen (id);
    if (idlen == 0 || idlen >= sizeof out->callback_id) {
        snprintf (err, errlen, "callback_query.id: empty or longer than %zu bytes",
                  sizeof out->callback_id - 1);
        return -1;
    }
    for (size_t i = 0; i < idlen; i++)
        if (id[i] < 0x21 || id[i] > 0x7E) {     //  Telegram's ids are digits
            snprintf (err, errlen, "callback_query.id: not printable ASCII");
            return -1;
        }
    memcpy (out->callback_id, id, idlen + 1);
    //  Data is ours (we made the button): use it only when it is exactly what we sent.
    if (data && strlen (data) < sizeof out->callback_data) {
        size_t n = rst_tgupdate_copy_utf8 (out->callback_data, sizeof out->callback_data, data);
        if (n != strlen (data) || memcmp (out->callback_data, data, n))
            out->callback_data[0] = 0;
    }
    if (msg
        && (s_int (msg, "message_id", 0, &out->message_id, "callback_query.message.message_id",
                   err, errlen)
            || s_int (msg, "date", 0, &out->date, "callback_query.message.date", err, errlen)
            || s_obj (msg, "chat", 0, &chat, "callback_query.message.chat", err, errlen)
            || (chat && s_chat (chat, "callback_query.message.chat", out, err, errlen))))
        return -1;
    return 0;
}

static int
s_chat_member (const cJSON *cm, rst_tgupdate_t *out, char *err, size_t errlen)
{
    const cJSON *chat, *from, *member, *user, *link;
    const char *status, *url;
    if (s_obj (cm, "chat", 1, &chat, "chat_member.chat", err, errlen)
        || s_chat (chat, "chat_member.chat", out, err, errlen)
        || s_obj (cm, "from", 0, &from, "chat_member.from", err, errlen)
        || (from && s_user (from, "chat_member.from", out, err, errlen))
        || s_int (cm, "date", 0, &out->date, "chat_member.date", err, errlen)
        || s_obj (cm, "new_chat_member", 1, &member, "chat_member.new_chat_member", err, errlen)
        || s_str (member, "status", 1, &status, "chat_member.new_chat_member.status", err, errlen)
        || s_obj (member, "user", 1, &user, "chat_member.new_chat_member.user", err, errlen)
        || s_int (user, "id", 1, &out->member_user_id, "chat_member.new_chat_member.user.id", err,
                  errlen)
        || s_obj (cm, "invite_link", 0, &link, "chat_member.invite_link", err, errlen)
        || (link && s_str (link, "invite_link", 0, &url, "chat_member.invite_link.invite_link", err,
                           errlen)))
        return -1;
    rst_tgupdate_copy_utf8 (out->member_status, sizeof out->member_status, status);
    if (link && url && strlen (url) < sizeof out->invite_link)
        rst_tgupdate_copy_utf8 (out->invite_link, sizeof out->invite_link, url);
    return 0;
}

int
rst_tgupdate_parse (const cJSON *update, rst_tgupdate_t *out, char *err, size_t errlen)
{
    assert (out);
    memset (out, 0, sizeof *out);
    if (!cJSON_IsObject (update)) {
        snprintf (err, errlen, "the update is not a JSON object");
        return -1;
    }
    if (s_int (update, "update_id", 1, &out->update_id, "update_id", err, errlen))
        return -1;
    if (out->update_id < 0) {
        snprintf (err, errlen, "update_id: negative");
        return -1;
    }
    const cJSON *part;
    int rc = 0;
    if ((part = cJSON_GetObjectItemCaseSensitive (update, "message"))) {
        out->kind = RST_TGU_MESSAGE;
        rc = cJSON_IsObject (part) ? s_message (part, out, err, errlen) : -1;
    }
    else if ((part = cJSON_GetObjectItemCaseSensitive (update, "callback_query"))) {
        out->kind = RST_TGU_CALLBACK;
        rc = cJSON_IsObject (part) ? s_callback (part, out, err, errlen) : -1;
    }
    else if ((part = cJSON_GetObjectItemCaseSensitive (update, "chat_member"))) {
        out->kind = RST_TGU_CHAT_MEMBER;
        rc = cJSON_IsObject (part) ? s_chat_member (part, out, err, errlen) : -1;
    }
    if (part && !cJSON_IsObject (part))
        snprintf (err, errlen, "%s: not an object", part->string ? part->string : "update");
    if (rc) {
        int64_t update_id = out->update_id;
        memset (out, 0, sizeof *out);       //  nothing half-read leaks out
        out->update_id = update_id;
    }
    return rc;
}
