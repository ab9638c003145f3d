/*  rst_pix — checks a PIX "copia e cola" code (BR Code) and draws its QR as a PNG.

    A gateway answers a charge with a BR Code: an EMV Merchant-Presented
    Mode payload of TLV fields (2-digit id, 2-digit decimal length, value)
    ending in a CRC (reference/telegram-and-pix.md §3). The bots node checks
    every code before it shows one to a buyer (sample and buggy codes with a
    wrong CRC are common: a buyer's bank app would refuse them), then sends
    the code as text and its QR as a photo. Pure functions: no state, no
    I/O; thread-safe.

    rastro never builds a BR Code itself. Test fakes (Python) that must hand
    out valid codes compute the CRC the same way, CRC-16/CCITT-FALSE over
    every byte through "6304", appended as 4 upper-case hex digits:

        def crc16(data: bytes) -> int:
            crc = 0xFFFF
            for b in data:
                crc ^= b << 8
                for _ in range(8):
                    crc = ((crc << 1) ^ 0x1021 if crc & 0x8000 else crc << 1) & 0xFFFF
            return crc

        code = body + "6304"            # body: every field but 63, in order
        code += "%04X" % crc16(code.encode("ascii"))
*/
#ifndef RST_PIX_H
#define RST_PIX_H

#include <stddef.h>
#include <stdint.h>

#define RST_PIX_CODE_MAX      512   //  bytes of a BR Code we accept
#define RST_PIX_FIELD_MAX     99    //  a TLV value is at most 99 bytes (2-digit length)
#define RST_PIX_QR_SCALE_MAX  32    //  pixels per QR module
#define RST_PIX_QR_MARGIN_MAX 16    //  modules of white border ("quiet zone"; 4 is standard)

//  What a checked code says. Strings are NUL-terminated copies; "" when absent.
typedef struct {
    int is_dynamic;                         //  1 when 01 = "12" (single-use), else 0
    char key[RST_PIX_FIELD_MAX + 1];        //  26/01: the PIX key (static codes)
    char url[RST_PIX_FIELD_MAX + 1];        //  26/25: location URL without scheme (dynamic codes)
    int64_t amount_cents;                   //  54 in centavos; -1 when the code has no amount
    char name[RST_PIX_FIELD_MAX + 1];       //  59: merchant name
    char city[RST_PIX_FIELD_MAX + 1];       //  60: merchant city
    char txid[RST_PIX_FIELD_MAX + 1];       //  62/05 as written ("***" = none); "" when absent
} rst_pix_info_t;

//  CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final
//  xor) of DATA[0..LEN). CRC("123456789") = 0x29B1.
uint16_t rst_pix_crc16 (const void *data, size_t len);

//  Checks that CODE[0..LEN) is a well-formed PIX BR Code:
//  - 1..RST_PIX_CODE_MAX bytes of printable ASCII (0x20..0x7E), nothing else;
//  - a sequence of TLV fields (2-digit id, 2-digit decimal length 01..99),
//    each top-level id at most once;
//  - 00 = "01" first; 01, when present, "11" or "12";
//  - 26 (merchant account): a nested TLV with 00 = "br.gov.bcb.pix" (any
//    case) and a key (01) or a location URL (25);
//  - 52 (4 digits), 53 = "986" (BRL), 58 = "BR", 59 (name), 60 (city);
//  - 54 (optional): an amount with a dot and at most 2 decimals ("19.90");
//  - 62 (optional): a nested TLV; its 05 is the txid;
//  - 63 last, length 04, 4 hex digits (any case) equal to the CRC of every
//    byte before them (through "6304").
//  Fills *INFO (OUT, may be NULL) and returns 0; or returns -1 with a
//  one-line reason in ERR (may be NULL) and *INFO zeroed with
//  amount_cents = -1. Never reads past CODE[LEN); CODE need not be
//  NUL-terminated.
int rst_pix_brcode_check (const char *code, size_t len, rst_pix_info_t *info, char *err,
                          size_t errlen);

//  Draws CODE (a NUL-terminated string of 1..RST_PIX_CODE_MAX bytes) as a QR
//  code (libqrencode, error correction level M, 8-bit mode) with MARGIN
//  white modules around it (0..RST_PIX_QR_MARGIN_MAX), each module SCALE x
//  SCALE pixels (1..RST_PIX_QR_SCALE_MAX), as an 8-bit grayscale PNG
//  (black 0, white 255) of (qr width + 2 * MARGIN) * SCALE pixels square.
//  On success sets *PNG to a new buffer the caller owns (free() it) and
//  *PNG_LEN to its size, and returns 0. Otherwise returns -1 with a
//  one-line reason in ERR (naming the library that failed) and *PNG NULL.
//  Does not check that CODE is a valid BR Code (rst_pix_brcode_check does).
int rst_pix_qr_png (const char *code, int scale, int margin, unsigned char **png,
                    size_t *png_len, char *err, size_t errlen);

#endif
