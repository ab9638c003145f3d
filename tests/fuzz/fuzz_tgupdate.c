/*  fuzz_tgupdate — the Update reader on arbitrary JSON text.

    The input is what Telegram (or anyone posting to a webhook) could send:
    parsed with cJSON_ParseWithLength, then given to rst_tgupdate_parse as one
    Update, and each element of an array as one Update too (a getUpdates
    result). Checks the reader's promises: every string is NUL-terminated
    inside its buffer and valid UTF-8, the kind is known, a /start payload is
    1-64 characters of [A-Za-z0-9_-] and only present with is_start, a
    failed parse leaves nothing but update_id. AddressSanitizer and UBSan do
    the rest. Seeds: tests/fuzz/corpus/fuzz_tgupdate/.
*/
#include "rst_tgupdate.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

//  A broken promise is a bug in the reader: crash loudly so the fuzzer keeps the input.
#define S_CHECK(cond)                                                                          \
    do {                                                                                       \
        if (!(cond))                                                                           \
            abort ();                                                                          \
    } while (0)

//  BUF (of SIZE bytes) holds a NUL-terminated, valid UTF-8 string.
static void
s_check_str (const char *buf, size_t size)
{
    const unsigned char *s = (const unsigned char *) buf;
    size_t len = strnlen (buf, size);
    S_CHECK (len < size);
    for (size_t i = 0; i < len;) {
        unsigned c = s[i];
        size_t n = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3
                 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
        S_CHECK (n > 0 && i + n <= len);
        for (size_t k = 1; k < n; k++)
            S_CHECK ((s[i + k] & 0xC0) == 0x80);
        if (n == 3) {
            S_CHECK (c != 0xE0 || s[i + 1] >= 0xA0);
            S_CHECK (c != 0xED || s[i + 1] <= 0x9F);
        }
        if (n == 4) {
            S_CHECK (c != 0xF0 || s[i + 1] >= 0x90);
            S_CHECK (c != 0xF4 || s[i + 1] <= 0x8F);
        }
        i += n;
    }
}

#define S_STR(u, field) s_check_str ((u)->field, sizeof (u)->field)

static void
s_one (const cJSON *update)
{
    rst_tgupdate_t u;
    char err[256] = "";
    int rc = rst_tgupdate_parse (update, &u, err, sizeof err);
    S_CHECK (rc == 0 || rc == -1);
    if (rc) {
        S_CHECK (err[0] != 0);
        S_CHECK (u.chat_id == 0 && u.user_id == 0 && u.text[0] == 0 && u.kind == RST_TGU_OTHER);
        return;
    }
    S_CHECK (u.update_id >= 0);
    S_CHECK (u.kind >= RST_TGU_OTHER && u.kind <= RST_TGU_CHAT_MEMBER);
    S_STR (&u, chat_type);
    S_STR (&u, first_name);
    S_STR (&u, last_name);
    S_STR (&u, username);
    S_STR (&u, language);
    S_STR (&u, text);
    S_STR (&u, start_payload);
    S_STR (&u, callback_id);
    S_STR (&u, callback_data);
    S_STR (&u, member_status);
    S_STR (&u, invite_link);
    size_t plen = strlen (u.start_payload);
    S_CHECK (plen == 0 || u.is_start);
    for (size_t i = 0; i < plen; i++) {
        char c = u.start_payload[i];
        S_CHECK ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
                 || c == '_' || c == '-');
    }
    S_CHECK (plen <= RST_TGU_PAYLOAD_MAX);
    if (u.is_start)
        S_CHECK (u.kind == RST_TGU_MESSAGE && strncmp (u.text, "/start", 6) == 0);
    if (u.kind == RST_TGU_CALLBACK)
        S_CHECK (u.callback_id[0] != 0);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    cJSON *root = cJSON_ParseWithLength ((const char *) data, size);
    s_one (root);                   //  NULL and non-objects must fail cleanly too
    const cJSON *item;
    if (cJSON_IsArray (root))
        cJSON_ArrayForEach (item, root)
            s_one (item);
    cJSON_Delete (root);
    return 0;
}
