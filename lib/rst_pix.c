/*  rst_pix — checks a PIX "copia e cola" code (BR Code) and draws its QR as a PNG.

    Role: the bots node gets a BR Code from a PIX gateway (rst_gateway_create),
    checks it here before a buyer sees it, then sends it as text and as a
    QR photo (Telegram's sendPhoto does not take data: URIs, and SyncPay
    returns no image at all, so rastro renders every QR itself).

    The check walks the TLV fields once, left to right, never reading past
    the given length: a truncated or garbled code from a gateway is refused
    with the name of the first field that is wrong. Field rules are in
    rst_pix.h and reference/telegram-and-pix.md §3. Limits on the merchant
    name (25) and city (15) are not enforced: the bank app is the judge of
    those, and refusing a code over them would only block a sale.

    The PNG: libqrencode gives one byte per module (bit 0 = black); each
    module row becomes SCALE identical PNG rows, written one at a time into
    a growing memory buffer (png_set_write_fn). libpng reports errors with
    longjmp: everything the error path frees is allocated before setjmp and
    never reassigned after it, so no local needs to be volatile.
*/
#include "rst_pix.h"

#include "rst_click.h"              //  rst_hex_digit

#include <assert.h>
#include <errno.h>
#include <png.h>
#include <qrencode.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_PIX_GUI          "br.gov.bcb.pix"
#define S_AMOUNT_MAX_LEN   13           //  EMV: field 54 is at most 13 characters
#define S_CRC_FIELD        "6304"       //  id 63, length 04
#define S_PNG_INITIAL_CAP  4096

static int
s_fail (char *err, size_t errlen, const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));

//  Writes a one-line reason into ERR (when given) and returns -1.
static int
s_fail (char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start (ap, fmt);
        vsnprintf (err, errlen, fmt, ap);
        va_end (ap);
    }
    return -1;
}

uint16_t
rst_pix_crc16 (const void *data, size_t len)
{
    const unsigned char *p = data;
    uint16_t crc = 0xFFFF;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t) (p[i] << 8);
        for (int bit = 0; bit < 8; bit++)
            crc = (crc & 0x8000) ? (uint16_t) ((crc << 1) ^ 0x1021) : (uint16_t) (crc << 1);
    }
    return crc;
}

//  --------------------------------------------------------------------------
//  BR Code check

//  One TLV field; VALUE points into the code (not NUL-terminated).
typedef struct {
    int id;                     //  0..99
    const char *value;
    size_t len;                 //  1..99
} s_tlv_t;

static int
s_is_digit (char c)
{
    return c >= '0' && c <= '9';
}

//  Reads the field at *POS of BUF[0..END), moving *POS past it. PREFIX names
//  the enclosing template in messages ("" or "26/"). Returns 0, or -1 with ERR.
static int
s_tlv_next (const char *buf, size_t end, size_t *pos, const char *prefix, s_tlv_t *tlv,
            char *err, size_t errlen)
{
    size_t at = *pos;
    if (end - at < 4)
        return s_fail (err, errlen, "truncated field header at byte %zu%s%s", at,
                       *prefix ? " of template " : "", prefix);
    const char *h = buf + at;
    if (!s_is_digit (h[0]) || !s_is_digit (h[1]))
        return s_fail (err, errlen, "field id at byte %zu of %s is not 2 digits", at,
                       *prefix ? prefix : "the code");
    tlv->id = (h[0] - '0') * 10 + (h[1] - '0');
    if (!s_is_digit (h[2]) || !s_is_digit (h[3]))
        return s_fail (err, errlen, "field %s%02d: length is not 2 digits", prefix, tlv->id);
    tlv->len = (size_t) ((h[2] - '0') * 10 + (h[3] - '0'));
    if (tlv->len == 0)
        return s_fail (err, errlen, "field %s%02d: length 00", prefix, tlv->id);
    if (tlv->len > end - at - 4)
        return s_fail (err, errlen, "field %s%02d: length %zu runs past the end", prefix,
                       tlv->id, tlv->len);
    tlv->value = h + 4;
    *pos = at + 4 + tlv->len;
    return 0;
}

static int
s_equals (const s_tlv_t *tlv, const char *text)
{
    return tlv->len == strlen (text) && memcmp (tlv->value, text, tlv->len) == 0;
}

//  Case-insensitive (ASCII only, whatever the locale).
static int
s_iequals (const s_tlv_t *tlv, const char *text)
{
    if (tlv->len != strlen (text))
        return 0;
    for (size_t i = 0; i < tlv->len; i++) {
        char a = tlv->value[i], b = text[i];
        if (a >= 'A' && a <= 'Z')
            a = (char) (a - 'A' + 'a');
        if (b >= 'A' && b <= 'Z')
            b = (char) (b - 'A' + 'a');
        if (a != b)
            return 0;
    }
    return 1;
}

static void
s_copy (char *dst, const s_tlv_t *tlv)
{
    assert (tlv->len <= RST_PIX_FIELD_MAX);
    memcpy (dst, tlv->value, tlv->len);
    dst[tlv->len] = 0;
}

//  Field 54: digits, optionally a dot and 1 or 2 decimals. Returns centavos or -1.
static int64_t
s_amount_cents (const s_tlv_t *tlv)
{
    if (tlv->len > S_AMOUNT_MAX_LEN)
        return -1;
    int64_t units = 0, cents = 0;
    size_t i = 0, int_digits = 0;
    for (; i < tlv->len && s_is_digit (tlv->value[i]); i++, int_digits++)
        units = units * 10 + (tlv->value[i] - '0');
    if (int_digits == 0)
        return -1;
    if (i < tlv->len) {
        if (tlv->value[i++] != '.')
            return -1;
        size_t decimals = tlv->len - i;
        if (decimals < 1 || decimals > 2)
            return -1;
        for (size_t d = 0; d < 2; d++) {
            int digit = 0;
            if (d < decimals) {
                if (!s_is_digit (tlv->value[i + d]))
                    return -1;
                digit = tlv->value[i + d] - '0';
            }
            cents = cents * 10 + digit;
        }
    }
    return units * 100 + cents;         //  ≤ 13 characters: no overflow
}

//  Template 26: 00 = GUI first, then a key (01) and/or a location URL (25).
static int
s_check_merchant (const s_tlv_t *field, rst_pix_info_t *info, char *err, size_t errlen)
{
    unsigned char seen[100] = {0};
    size_t pos = 0;
    int first = 1;
    while (pos < field->len) {
        s_tlv_t sub;
        if (s_tlv_next (field->value, field->len, &pos, "26/", &sub, err, errlen))
            return -1;
        if (seen[sub.id]++)
            return s_fail (err, errlen, "field 26/%02d appears twice", sub.id);
        if (first && sub.id != 0)
            return s_fail (err, errlen, "field 26 does not start with its GUI (26/00)");
        first = 0;
        if (sub.id == 0 && !s_iequals (&sub, S_PIX_GUI))
            return s_fail (err, errlen, "field 26/00: GUI is not " S_PIX_GUI);
        if (sub.id == 1)
            s_copy (info->key, &sub);
        if (sub.id == 25)
            s_copy (info->url, &sub);
    }
    if (!seen[1] && !seen[25])
        return s_fail (err, errlen, "field 26 has neither a PIX key (01) nor a URL (25)");
    return 0;
}

//  Template 62: any sub-fields; 05 is the txid.
static int
s_check_additional (const s_tlv_t *field, rst_pix_info_t *info, char *err, size_t errlen)
{
    unsigned char seen[100] = {0};
    size_t pos = 0;
    while (pos < field->len) {
        s_tlv_t sub;
        if (s_tlv_next (field->value, field->len, &pos, "62/", &sub, err, errlen))
            return -1;
        if (seen[sub.id]++)
            return s_fail (err, errlen, "field 62/%02d appears twice", sub.id);
        if (sub.id == 5)
            s_copy (info->txid, &sub);
    }
    return 0;
}

//  Checks one top-level field other than 63 and records what it says.
static int
s_check_field (const s_tlv_t *f, rst_pix_info_t *info, char *err, size_t errlen)
{
    switch (f->id) {
    case 0:
        if (!s_equals (f, "01"))
            return s_fail (err, errlen, "field 00: payload format is not \"01\"");
        return 0;
    case 1:
        if (!s_equals (f, "11") && !s_equals (f, "12"))
            return s_fail (err, errlen, "field 01: point of initiation is not 11 or 12");
        info->is_dynamic = s_equals (f, "12");
        return 0;
    case 26:
        return s_check_merchant (f, info, err, errlen);
    case 52:
        if (f->len != 4 || !s_is_digit (f->value[0]) || !s_is_digit (f->value[1])
            || !s_is_digit (f->value[2]) || !s_is_digit (f->value[3]))
            return s_fail (err, errlen, "field 52: merchant category is not 4 digits");
        return 0;
    case 53:
        if (!s_equals (f, "986"))
            return s_fail (err, errlen, "field 53: currency is not 986 (BRL)");
        return 0;
    case 54:
        info->amount_cents = s_amount_cents (f);
        if (info->amount_cents < 0)
            return s_fail (err, errlen, "field 54: amount is not like 19.90");
        return 0;
    case 58:
        if (!s_equals (f, "BR"))
            return s_fail (err, errlen, "field 58: country is not BR");
        return 0;
    case 59:
        s_copy (info->name, f);
        return 0;
    case 60:
        s_copy (info->city, f);
        return 0;
    case 62:
        return s_check_additional (f, info, err, errlen);
    default:
        return 0;                       //  61 postal code, 64 language, 80-99 etc.
    }
}

static int
s_check (const char *code, size_t len, rst_pix_info_t *info, char *err, size_t errlen)
{
    if (!code || len == 0)
        return s_fail (err, errlen, "empty code");
    if (len > RST_PIX_CODE_MAX)
        return s_fail (err, errlen, "code is %zu bytes (at most %d)", len, RST_PIX_CODE_MAX);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) code[i];
        if (c < 0x20 || c > 0x7E)
            return s_fail (err, errlen, "byte %zu is not printable ASCII (0x%02X)", i, c);
    }
    static const int required[] = {0, 26, 52, 53, 58, 59, 60, 63};
    unsigned char seen[100] = {0};
    size_t pos = 0;
    while (pos < len) {
        size_t start = pos;
        s_tlv_t f;
        if (s_tlv_next (code, len, &pos, "", &f, err, errlen))
            return -1;
        if (start == 0 && f.id != 0)
            return s_fail (err, errlen, "code does not start with field 00");
        if (seen[f.id]++)
            return s_fail (err, errlen, "field %02d appears twice", f.id);
        if (f.id != 63) {
            if (s_check_field (&f, info, err, errlen))
                return -1;
            continue;
        }
        if (f.len != 4)
            return s_fail (err, errlen, "field 63: CRC length is %02zu, not 04", f.len);
        if (pos != len)
            return s_fail (err, errlen, "field 63 (CRC) is not the last field");
        unsigned stated = 0;
        for (int i = 0; i < 4; i++) {
            int v = rst_hex_digit (f.value[i]);
            if (v < 0)
                return s_fail (err, errlen, "field 63: CRC is not 4 hex digits");
            stated = stated << 4 | (unsigned) v;
        }
        //  Over every byte through "6304", i.e. up to the CRC's value.
        uint16_t actual = rst_pix_crc16 (code, (size_t) (f.value - code));
        if (stated != actual)
            return s_fail (err, errlen, "CRC mismatch: code says %04X, content gives %04X",
                           stated, actual);
    }
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
        if (!seen[required[i]])
            return s_fail (err, errlen, "field %02d is missing", required[i]);
    return 0;
}

int
rst_pix_brcode_check (const char *code, size_t len, rst_pix_info_t *info, char *err,
                      size_t errlen)
{
    rst_pix_info_t found;
    memset (&found, 0, sizeof found);
    found.amount_cents = -1;
    if (err && errlen)
        err[0] = 0;
    int rc = s_check (code, len, &found, err, errlen);
    if (rc) {
        memset (&found, 0, sizeof found);
        found.amount_cents = -1;
    }
    if (info)
        *info = found;
    return rc;
}

//  --------------------------------------------------------------------------
//  QR code as PNG

//  Where libpng writes, and what it last complained about. Heap-allocated
//  before setjmp so that it survives a longjmp intact.
typedef struct {
    unsigned char *data;        //  the PNG so far (owned)
    size_t len;                 //  bytes written
    size_t cap;                 //  bytes allocated
    char error[128];            //  libpng's message when it failed
} s_png_out_t;

static void
s_png_write (png_structp png, png_bytep data, png_size_t n)
{
    s_png_out_t *out = png_get_io_ptr (png);
    if (n > out->cap - out->len) {
        size_t cap = out->cap ? out->cap : S_PNG_INITIAL_CAP;
        while (cap - out->len < n) {
            if (cap > SIZE_MAX / 2)
                png_error (png, "image too large");
            cap *= 2;
        }
        unsigned char *data_new = realloc (out->data, cap);
        if (!data_new)
            png_error (png, "out of memory");
        out->data = data_new;
        out->cap = cap;
    }
    memcpy (out->data + out->len, data, n);
    out->len += n;
}

static void
s_png_flush (png_structp png)
{
    (void) png;
}

//  Keeps libpng's message for ERR instead of printing it, then unwinds.
static void
s_png_error (png_structp png, png_const_charp msg)
{
    s_png_out_t *out = png_get_error_ptr (png);
    snprintf (out->error, sizeof out->error, "%s", msg ? msg : "unknown error");
    png_longjmp (png, 1);
}

static void
s_png_warning (png_structp png, png_const_charp msg)
{
    (void) png;
    (void) msg;
}

int
rst_pix_qr_png (const char *code, int scale, int margin, unsigned char **png, size_t *png_len,
                char *err, size_t errlen)
{
    assert (png && png_len);
    *png = NULL;
    *png_len = 0;
    if (!code || !code[0])
        return s_fail (err, errlen, "QR: empty code");
    if (strnlen (code, RST_PIX_CODE_MAX + 1) > RST_PIX_CODE_MAX)
        return s_fail (err, errlen, "QR: code longer than %d bytes", RST_PIX_CODE_MAX);
    if (scale < 1 || scale > RST_PIX_QR_SCALE_MAX)
        return s_fail (err, errlen, "QR: scale %d is not within 1..%d", scale,
                       RST_PIX_QR_SCALE_MAX);
    if (margin < 0 || margin > RST_PIX_QR_MARGIN_MAX)
        return s_fail (err, errlen, "QR: margin %d is not within 0..%d", margin,
                       RST_PIX_QR_MARGIN_MAX);

    QRcode *qr = QRcode_encodeString (code, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
    if (!qr)
        return s_fail (err, errlen, "libqrencode: cannot encode the code: %s", strerror (errno));
    size_t qr_width = (size_t) qr->width;
    size_t modules = qr_width + 2 * (size_t) margin;
    size_t side = modules * (size_t) scale;     //  ≤ (177 + 32) * 32

    s_png_out_t *out = calloc (1, sizeof *out);
    png_bytep row = malloc (side);
    png_structp pp = out ? png_create_write_struct (PNG_LIBPNG_VER_STRING, out, s_png_error,
                                                    s_png_warning)
                         : NULL;
    png_infop ip = pp ? png_create_info_struct (pp) : NULL;
    if (!out || !row || !pp || !ip) {
        s_fail (err, errlen, "libpng: out of memory");
        goto done;
    }
    //  Only the locals above are used after a longjmp, and none of them
    //  changes from here on.
    if (setjmp (png_jmpbuf (pp))) {
        s_fail (err, errlen, "libpng: %s", out->error);
        goto done;
    }
    png_set_write_fn (pp, out, s_png_write, s_png_flush);
    png_set_IHDR (pp, ip, (png_uint_32) side, (png_uint_32) side, 8, PNG_COLOR_TYPE_GRAY,
                  PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info (pp, ip);
    for (size_t my = 0; my < modules; my++) {
        for (size_t mx = 0; mx < modules; mx++) {
            int black = 0;
            if (my >= (size_t) margin && my < (size_t) margin + qr_width
                && mx >= (size_t) margin && mx < (size_t) margin + qr_width)
                black = qr->data[(my - (size_t) margin) * qr_width + (mx - (size_t) margin)] & 1;
            memset (row + mx * (size_t) scale, black ? 0 : 255, (size_t) scale);
        }
        for (int s = 0; s < scale; s++)
            png_write_row (pp, row);
    }
    png_write_end (pp, NULL);
    *png = out->data;
    *png_len = out->len;
    out->data = NULL;

done:
    if (pp)
        png_destroy_write_struct (&pp, ip ? &ip : NULL);
    if (out)
        free (out->data);
    free (out);
    free (row);
    QRcode_free (qr);
    return *png ? 0 : -1;
}
