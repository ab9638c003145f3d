/*  rst_click — see rst_click.h.
*/
#include "rst_click.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static int
s_is_token_char (unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'
        || c == '-';
}

//  6 bits a character, in ASCII order (so the ids sort as their bits do).
static const char s_id_alphabet[] =
    "-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";

void
rst_click_id_from (int64_t ms, const unsigned char random[RST_CLICK_ID_RANDOM],
                   char out[RST_CLICK_ID_LEN + 1])
{
    unsigned char raw[16];
    uint64_t t = ms < 0 ? 0 : (uint64_t) ms;
    for (int i = 0; i < 6; i++)
        raw[i] = (unsigned char) (t >> (40 - 8 * i));
    memcpy (raw + 6, random, RST_CLICK_ID_RANDOM);
    //  22 characters: 21 of 6 bits, the last with the 2 bits left (low 4 zero).
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;
    for (size_t i = 0; i < sizeof raw; i++) {
        acc = (acc << 8) | raw[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[n++] = s_id_alphabet[(acc >> bits) & 63];
        }
    }
    out[n++] = s_id_alphabet[(acc << (6 - bits)) & 63];
    out[n] = 0;
}

void
rst_click_id_new (char out[RST_CLICK_ID_LEN + 1])
{
    unsigned char random[RST_CLICK_ID_RANDOM];
    randombytes_buf (random, sizeof random);
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    rst_click_id_from ((int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000, random, out);
}

int
rst_click_token_is_valid (const char *s, size_t len)
{
    if (len == 0 || len > 64)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!s_is_token_char ((unsigned char) s[i]))
            return 0;
    return 1;
}

int
rst_fbclid_is_valid (const char *s, size_t len)
{
    if (len == 0 || len > RST_FBCLID_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!s_is_token_char ((unsigned char) s[i]))
            return 0;
    return 1;
}

int
rst_fbc_build (char *out, size_t outlen, int64_t creation_ms, const char *fbclid, size_t len)
{
    if (!rst_fbclid_is_valid (fbclid, len))
        return -1;
    int n = snprintf (out, outlen, "fb.1.%lld.%.*s", (long long) creation_ms, (int) len, fbclid);
    return n < 0 || (size_t) n >= outlen ? -1 : n;
}

int
rst_fbp_is_valid (const char *s, size_t len)
{
    //  fb . subdomain-index . creation-ms . random [ . appendix ]
    if (len < 8 || len > 256 || memcmp (s, "fb.", 3))
        return 0;
    int part = 1;
    size_t part_len = 0;
    for (size_t i = 3; i < len; i++) {
        unsigned char c = (unsigned char) s[i];
        if (c == '.') {
            if (part_len == 0 || ++part > 4)
                return 0;
            part_len = 0;
            continue;
        }
        if (part <= 3 ? !(c >= '0' && c <= '9') : !s_is_token_char (c))
            return 0;
        part_len++;
    }
    return part >= 3 && part_len > 0;
}

int
rst_hex_digit (char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int
rst_url_decode (const char *in, size_t len, char *out, size_t outlen)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (n >= outlen)
            return -1;
        char c = in[i];
        if (c == '%') {
            if (i + 2 >= len)
                return -1;
            int hi = rst_hex_digit (in[i + 1]), lo = rst_hex_digit (in[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            out[n++] = (char) (hi * 16 + lo);
            i += 2;
        }
        else
            out[n++] = c == '+' ? ' ' : c;
    }
    return (int) n;
}

void
rst_query_each (const char *query, size_t len, rst_query_visit_fn *visit, void *arg)
{
    size_t i = 0;
    while (i < len) {
        size_t end = i;
        while (end < len && query[end] != '&')
            end++;
        if (end > i) {
            const char *eq = memchr (query + i, '=', end - i);
            const char *key = query + i;
            size_t key_len = eq ? (size_t) (eq - key) : end - i;
            const char *value = eq ? eq + 1 : query + end;
            size_t value_len = eq ? (size_t) (query + end - value) : 0;
            if (visit (arg, key, key_len, value, value_len))
                return;
        }
        i = end + 1;
    }
}

int
rst_cookie_find (const char *header, size_t len, const char *name, const char **value,
                 size_t *value_len)
{
    size_t name_len = strlen (name);
    size_t i = 0;
    while (i < len) {
        while (i < len && (header[i] == ' ' || header[i] == ';'))
            i++;
        size_t end = i;
        while (end < len && header[end] != ';')
            end++;
        const char *eq = memchr (header + i, '=', end - i);
        if (eq && (size_t) (eq - (header + i)) == name_len && !memcmp (header + i, name, name_len)) {
            *value = eq + 1;
            *value_len = (size_t) (header + end - (eq + 1));
            while (*value_len && (*value)[*value_len - 1] == ' ')
                (*value_len)--;
            return 1;
        }
        i = end + 1;
    }
    return 0;
}

size_t
rst_utf8_clean (const char *in, size_t len, char *out)
{
    size_t replaced = 0, i = 0, n = 0;
    const unsigned char *s = (const unsigned char *) in;
    while (i < len) {
        unsigned char c = s[i];
        size_t need = 0;
        uint32_t cp = 0;
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f) {
                out[n++] = '?';
                replaced++;
            }
            else
                out[n++] = (char) c;
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
            cp = c & 0x1f;
        }
        else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            cp = c & 0x0f;
        }
        else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            cp = c & 0x07;
        }
        int ok = need > 0 && i + need < len;
        for (size_t k = 1; ok && k <= need; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                ok = 0;
            else
                cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        //  Reject overlongs, surrogates and code points past U+10FFFF.
        if (ok && ((need == 2 && cp < 0x800) || (need == 3 && (cp < 0x10000 || cp > 0x10ffff))
                   || (cp >= 0xd800 && cp <= 0xdfff)))
            ok = 0;
        if (!ok) {
            out[n++] = '?';
            replaced++;
            i++;
            continue;
        }
        memcpy (out + n, s + i, need + 1);
        n += need + 1;
        i += need + 1;
    }
    out[n] = 0;
    return replaced;
}
