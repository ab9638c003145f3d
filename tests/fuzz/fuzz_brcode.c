/*  fuzz_brcode — the PIX BR Code check against arbitrary bytes.

    A BR Code comes from a PIX gateway's reply: outside input. The input is
    checked as is, and once more with its last 4 bytes replaced by the
    right CRC, so that mutations get past the CRC and reach the field
    rules. The check's promises: 0 or -1; on -1 a one-line reason and a
    zeroed INFO (amount -1); on 0 a code of at most RST_PIX_CODE_MAX bytes
    whose CRC is right, NUL-terminated strings in INFO and an amount of -1
    or more. An accepted code is also drawn as a QR (smallest size).
    AddressSanitizer and UBSan do the rest. Seeds:
    tests/fuzz/corpus/fuzz_brcode/ (the vectors of
    reference/telegram-and-pix.md §3, and a code with an amount and a txid).
*/
#include "rst_pix.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

//  A broken promise is a bug in the check: crash loudly so the fuzzer keeps the input.
#define S_CHECK(cond)                                                                          \
    do {                                                                                       \
        if (!(cond))                                                                           \
            abort ();                                                                          \
    } while (0)

static void
s_check_str (const char *s, size_t size)
{
    S_CHECK (memchr (s, 0, size) != NULL);
}

static void
s_check_once (const char *code, size_t len)
{
    rst_pix_info_t info;
    char err[160];
    memset (err, 'x', sizeof err);
    int rc = rst_pix_brcode_check (code, len, &info, err, sizeof err);
    S_CHECK (rc == 0 || rc == -1);
    s_check_str (info.key, sizeof info.key);
    s_check_str (info.url, sizeof info.url);
    s_check_str (info.name, sizeof info.name);
    s_check_str (info.city, sizeof info.city);
    s_check_str (info.txid, sizeof info.txid);
    S_CHECK (info.amount_cents >= -1);
    if (rc == -1) {
        S_CHECK (err[0] != 0 && memchr (err, 0, sizeof err) && !strchr (err, '\n'));
        S_CHECK (info.amount_cents == -1 && info.key[0] == 0 && info.txid[0] == 0);
        return;
    }
    S_CHECK (err[0] == 0);
    S_CHECK (len >= 8 && len <= RST_PIX_CODE_MAX);
    char crc[5];
    snprintf (crc, sizeof crc, "%04X", rst_pix_crc16 (code, len - 4));
    S_CHECK (strncasecmp (crc, code + len - 4, 4) == 0);
    S_CHECK (info.key[0] || info.url[0]);
    S_CHECK (info.name[0] && info.city[0]);

    char text[RST_PIX_CODE_MAX + 1];
    memcpy (text, code, len);
    text[len] = 0;
    unsigned char *png = NULL;
    size_t png_len = 0;
    S_CHECK (rst_pix_qr_png (text, 1, 0, &png, &png_len, err, sizeof err) == 0);
    S_CHECK (png && png_len > 8 && memcmp (png + 1, "PNG", 3) == 0);
    free (png);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    const char *code = (const char *) data;
    s_check_once (code, size);
    if (size < 8 || size > RST_PIX_CODE_MAX)
        return 0;
    char fixed[RST_PIX_CODE_MAX];
    memcpy (fixed, code, size);
    char crc[5];
    snprintf (crc, sizeof crc, "%04X", rst_pix_crc16 (fixed, size - 4));
    memcpy (fixed + size - 4, crc, 4);
    s_check_once (fixed, size);
    return 0;
}
