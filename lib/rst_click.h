/*  rst_click — the pieces of a click that the front takes from a request.

    Pure functions, no I/O, so each is unit-tested and fuzzed on its own:
    click ids, slugs, the fbc built from fbclid (reference/meta-capi.md §5),
    query-string and cookie parsing, hex digits, percent-decoding (the PIX
    gateways' webhooks use it too) and UTF-8 clean-up (the
    values end up in PostgreSQL text columns, which refuse invalid UTF-8 and
    NUL, so a single bad byte must not poison a batch).
*/
#ifndef RST_CLICK_H
#define RST_CLICK_H

#include <stddef.h>
#include <stdint.h>

#define RST_CLICK_ID_LEN    22      //  128 bits: 48-bit ms time + 80 random bits
#define RST_CLICK_ID_RANDOM 10      //  random bytes in a click id
#define RST_SLUG_MAX        64
#define RST_FBCLID_MAX      500     //  longer fbclids are dropped (counted), not truncated
#define RST_FBC_MAX         (RST_FBCLID_MAX + 32)
#define RST_UTM_KEY_MAX     64
#define RST_UTM_VALUE_MAX   512

//  Click ids: RST_CLICK_ID_LEN characters of [A-Za-z0-9_-] encoding 128
//  bits, big-endian: the creation time in milliseconds since the epoch (48
//  bits) then 80 random bits (unguessable: a click id is what attributes a
//  Telegram /start to its click). The alphabet is ordered as in ASCII
//  ("-0-9A-Z_a-z", 6 bits a character), so ids sort by time as strings:
//  PostgreSQL's indexes on clicks and the sender's LMDB sets get each
//  batch's keys side by side instead of scattered over the whole tree.

//  Writes a new click id for now (random bits from libsodium) and a NUL into OUT.
void rst_click_id_new (char out[RST_CLICK_ID_LEN + 1]);

//  Same, for the time MS and the RST_CLICK_ID_RANDOM random bytes the caller
//  drew (the front draws them in bulk, one getrandom call per many clicks).
void rst_click_id_from (int64_t ms, const unsigned char random[RST_CLICK_ID_RANDOM],
                        char out[RST_CLICK_ID_LEN + 1]);

//  1 if S (LEN bytes) is 1–64 characters of [A-Za-z0-9_-], else 0. This is
//  the Telegram start parameter alphabet, used for click ids and slugs.
int rst_click_token_is_valid (const char *s, size_t len);

//  1 if an fbclid is acceptable as is: 1..RST_FBCLID_MAX bytes of
//  [A-Za-z0-9_-], else 0 (it is copied byte for byte, never re-cased).
int rst_fbclid_is_valid (const char *s, size_t len);

//  fb.1.<creation_ms>.<fbclid> into OUT (RST_FBC_MAX bytes). Returns the
//  length, or -1 if FBCLID is not valid.
int rst_fbc_build (char *out, size_t outlen, int64_t creation_ms, const char *fbclid, size_t len);

//  1 if an _fbp cookie value looks like fb.<digit>.<digits>.<digits>[.<appendix>]
//  (passed on unchanged), else 0.
int rst_fbp_is_valid (const char *s, size_t len);

//  The value of hex digit C (0-15; 'a'-'f' and 'A'-'F' alike), or -1.
int rst_hex_digit (char c);

//  Percent-decodes IN (LEN bytes; '+' is a space) into OUT. Returns the
//  decoded length, or -1 on a bad %-escape or if OUT is too small.
int rst_url_decode (const char *in, size_t len, char *out, size_t outlen);

//  Called for each key=value pair of a query string (raw, not decoded).
//  Return 0 to go on, 1 to stop.
typedef int (rst_query_visit_fn) (void *arg, const char *key, size_t key_len, const char *value,
                                  size_t value_len);

//  Visits the pairs of QUERY (without the '?'). Empty pairs are skipped; a
//  pair without '=' has an empty value.
void rst_query_each (const char *query, size_t len, rst_query_visit_fn *visit, void *arg);

//  Finds cookie NAME in a Cookie header. Returns 1 and sets *VALUE/*VALUE_LEN
//  (pointing into HEADER), or 0.
int rst_cookie_find (const char *header, size_t len, const char *name, const char **value,
                     size_t *value_len);

//  Copies IN to OUT replacing every byte that is not part of valid UTF-8, and
//  every control character (< 0x20, 0x7f), with '?'. OUT must hold LEN + 1
//  bytes; the result is NUL-terminated. Returns the number of replacements.
size_t rst_utf8_clean (const char *in, size_t len, char *out);

#endif
