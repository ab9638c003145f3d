/*  rst_pix_test — BR Code checks and QR rendering.

    A PIX "copia e cola" code is a list of TLV fields ending in a CRC. The
    bots node refuses to show a buyer any code that fails
    rst_pix_brcode_check, and draws the QR of a good one with
    rst_pix_qr_png. Vectors: reference/telegram-and-pix.md §3 (two valid,
    one with a wrong CRC copied from a vendor's documentation).
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "rst_pix.h"

#include <png.h>
#include <qrencode.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATIC_CODE                                                                            \
    "00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-4266554400005204000053039865802BR" \
    "5913Fulano de Tal6008BRASILIA62070503***63041D3D"
#define DYNAMIC_CODE                                                                           \
    "00020101021226910014br.gov.bcb.pix2569localhost:5001/api/testaccount/qr/v1/"              \
    "5b2970f464a740378aa472c6dad0bf8352040000530398654071234.565802BR5905Woovi6009SAO_PAULO"    \
    "610804556300622905255b2970f464a740378aa472c6d63046BA9"
#define BAD_CRC_CODE                                                                           \
    "00020101021226870014br.gov.bcb.pix2565pix.basspago.com.br/qr/v3/at/"                      \
    "b2b79ff3-bc21-4fc2-bad5-ec0833e908b95204000053039865802BR5918WARM_UP_ASSESSORIA"          \
    "6007NITEROI62070503***63048CBF"

//  The tour: the CRC's check value, then the two valid codes and what they say.
static void
test_valid_codes (void **state)
{
    (void) state;
    assert_int_equal (rst_pix_crc16 ("123456789", 9), 0x29B1);
    assert_int_equal (rst_pix_crc16 ("", 0), 0xFFFF);

    char err[256] = "";
    rst_pix_info_t info;
    assert_int_equal (rst_pix_brcode_check (STATIC_CODE, strlen (STATIC_CODE), &info, err,
                                            sizeof err),
                      0);
    assert_string_equal (err, "");
    assert_int_equal (info.is_dynamic, 0);
    assert_string_equal (info.key, "123e4567-e12b-12d1-a456-426655440000");
    assert_string_equal (info.url, "");
    assert_int_equal (info.amount_cents, -1);
    assert_string_equal (info.name, "Fulano de Tal");
    assert_string_equal (info.city, "BRASILIA");
    assert_string_equal (info.txid, "***");

    assert_int_equal (rst_pix_brcode_check (DYNAMIC_CODE, strlen (DYNAMIC_CODE), &info, err,
                                            sizeof err),
                      0);
    assert_int_equal (info.is_dynamic, 1);
    assert_string_equal (info.key, "");
    assert_string_equal (info.url,
                         "localhost:5001/api/testaccount/qr/v1/5b2970f464a740378aa472c6dad0bf83");
    assert_int_equal (info.amount_cents, 123456);
    assert_string_equal (info.name, "Woovi");
    assert_string_equal (info.city, "SAO_PAULO");
    assert_string_equal (info.txid, "5b2970f464a740378aa472c6d");

    //  INFO and ERR are optional; the code need not be NUL-terminated.
    assert_int_equal (rst_pix_brcode_check (STATIC_CODE, strlen (STATIC_CODE), NULL, NULL, 0), 0);
    char copy[sizeof STATIC_CODE];
    memcpy (copy, STATIC_CODE, sizeof copy - 1);
    copy[sizeof copy - 1] = 'X';
    assert_int_equal (rst_pix_brcode_check (copy, sizeof copy - 1, NULL, NULL, 0), 0);

    //  The CRC compares in any case.
    char lower[] = STATIC_CODE;
    memcpy (lower + strlen (lower) - 4, "1d3d", 4);
    assert_int_equal (rst_pix_brcode_check (lower, strlen (lower), NULL, err, sizeof err), 0);
}

static void
test_wrong_crc (void **state)
{
    (void) state;
    char err[256] = "";
    rst_pix_info_t info;
    memset (&info, 0x55, sizeof info);
    assert_int_equal (rst_pix_brcode_check (BAD_CRC_CODE, strlen (BAD_CRC_CODE), &info, err,
                                            sizeof err),
                      -1);
    assert_non_null (strstr (err, "CRC mismatch"));
    assert_non_null (strstr (err, "8CBF"));
    assert_non_null (strstr (err, "5066"));
    //  A refused code leaves nothing behind in INFO.
    assert_int_equal (info.amount_cents, -1);
    assert_string_equal (info.key, "");
    assert_string_equal (info.txid, "");

    //  With its true CRC the same code passes.
    char fixed[] = BAD_CRC_CODE;
    memcpy (fixed + strlen (fixed) - 4, "5066", 4);
    assert_int_equal (rst_pix_brcode_check (fixed, strlen (fixed), &info, err, sizeof err), 0);
    assert_string_equal (info.url, "pix.basspago.com.br/qr/v3/at/b2b79ff3-bc21-4fc2-bad5-ec0833e908b9");
}

//  Every strict prefix of a valid code, and every one-byte change, is refused
//  with a one-line reason.
static void
test_truncated_and_corrupted (void **state)
{
    (void) state;
    static const char *codes[] = {STATIC_CODE, DYNAMIC_CODE, NULL};
    for (int c = 0; codes[c]; c++) {
        size_t len = strlen (codes[c]);
        for (size_t n = 0; n < len; n++) {
            char err[256] = "";
            if (rst_pix_brcode_check (codes[c], n, NULL, err, sizeof err) != -1)
                fail_msg ("code %d: prefix of %zu bytes accepted", c, n);
            assert_true (err[0] != 0);
            assert_null (strchr (err, '\n'));
        }
        char copy[RST_PIX_CODE_MAX];
        for (size_t at = 0; at < len; at++) {
            memcpy (copy, codes[c], len);
            //  Another printable character, or a control byte.
            static const char swaps[] = {'0', 'z', ' ', '\n', 0};
            for (size_t s = 0; s < sizeof swaps; s++) {
                if (copy[at] == swaps[s])
                    continue;
                copy[at] = swaps[s];
                char err[256] = "";
                if (rst_pix_brcode_check (copy, len, NULL, err, sizeof err) != -1)
                    fail_msg ("code %d: byte %zu changed to 0x%02X accepted", c, at, swaps[s]);
                assert_true (err[0] != 0);
                memcpy (copy, codes[c], len);
            }
        }
    }
    char err[256] = "";
    assert_int_equal (rst_pix_brcode_check (NULL, 10, NULL, err, sizeof err), -1);
    assert_non_null (strstr (err, "empty"));
    assert_int_equal (rst_pix_brcode_check ("", 0, NULL, err, sizeof err), -1);
    static const char *garbage[] = {
        "0", "000201", "hello world", "{\"qr_code\":null}", "https://example.org/pix",
        "00020126", "0002016304FFFF", "9999999999999999", NULL,
    };
    for (int i = 0; garbage[i]; i++)
        if (rst_pix_brcode_check (garbage[i], strlen (garbage[i]), NULL, err, sizeof err) != -1)
            fail_msg ("garbage '%s' accepted", garbage[i]);
    //  A tiny ERR buffer is still NUL-terminated.
    char tiny[8];
    assert_int_equal (rst_pix_brcode_check ("zz", 2, NULL, tiny, sizeof tiny), -1);
    assert_int_equal (strlen (tiny), sizeof tiny - 1);
}

//  Appends "6304" and the right CRC to BODY in OUT: a code that passes or
//  fails on its fields only.
static const char *
s_with_crc (const char *body, char *out, size_t size)
{
    int n = snprintf (out, size, "%s6304", body);
    assert_true (n > 0 && (size_t) n + 4 < size);
    snprintf (out + n, size - (size_t) n, "%04X", rst_pix_crc16 (out, (size_t) n));
    return out;
}

#define GUI_KEY  "26360014br.gov.bcb.pix0114+5511999998888"
#define TAIL     "52040000530398658" "02BR5903Ana6006RECIFE"

static void
test_field_rules (void **state)
{
    (void) state;
    char code[1200];
    rst_pix_info_t info;
    char err[256];

    //  The minimal static code this test builds on passes.
    s_with_crc ("000201" GUI_KEY TAIL, code, sizeof code);
    assert_int_equal (rst_pix_brcode_check (code, strlen (code), &info, err, sizeof err), 0);
    assert_string_equal (info.key, "+5511999998888");
    assert_string_equal (info.txid, "");
    assert_int_equal (info.amount_cents, -1);

    static const struct {
        const char *body;
        int ok;
        const char *says;           //  part of the message when refused
        int64_t cents;              //  expected amount when accepted
    } cases[] = {
        //  Amounts.
        {"000201" GUI_KEY "520400005303986540519.90" "5802BR5903Ana6006RECIFE", 1, NULL, 1990},
        {"000201" GUI_KEY "52040000530398654021058" "02BR5903Ana6006RECIFE", 1, NULL, 1000},
        {"000201" GUI_KEY "5204000053039865403" "0.5" "5802BR5903Ana6006RECIFE", 1, NULL, 50},
        {"000201" GUI_KEY "5204000053039865404" "0.01" "5802BR5903Ana6006RECIFE", 1, NULL, 1},
        {"000201" GUI_KEY "5204000053039865413" "9999999999.99" "5802BR5903Ana6006RECIFE", 1, NULL,
         999999999999},
        {"000201" GUI_KEY "5204000053039865405" "1.234" "5802BR5903Ana6006RECIFE", 0, "54", 0},
        {"000201" GUI_KEY "5204000053039865402" ".5" "5802BR5903Ana6006RECIFE", 0, "54", 0},
        {"000201" GUI_KEY "5204000053039865402" "1." "5802BR5903Ana6006RECIFE", 0, "54", 0},
        {"000201" GUI_KEY "5204000053039865404" "1,50" "5802BR5903Ana6006RECIFE", 0, "54", 0},
        {"000201" GUI_KEY "5204000053039865402" "-1" "5802BR5903Ana6006RECIFE", 0, "54", 0},
        {"000201" GUI_KEY "5204000053039865414" "99999999999.99" "5802BR5903Ana6006RECIFE", 0, "54", 0},
        //  Merchant account.
        {"000201" "26360014BR.GOV.BCB.PIX0114+5511999998888" TAIL, 1, NULL, -1},
        {"000201" "26360014br.gov.bcb.pax0114+5511999998888" TAIL, 0, "GUI", 0},
        {"000201" "26360114+55119999988880014br.gov.bcb.pix" TAIL, 0, "GUI", 0},
        {"000201" "26180014br.gov.bcb.pix" TAIL, 0, "neither", 0},
        {"000201" "26220014br.gov.bcb.pix0200" TAIL, 0, "26/02", 0},
        {"000201" "26360014br.gov.bcb.pix0115+5511999998888" TAIL, 0, "26/01", 0},
        {"000201" "26410014br.gov.bcb.pix0114+55119999988880101X" TAIL, 0, "26/01 appears twice", 0},
        {"000201" "27360014br.gov.bcb.pix0114+5511999998888" TAIL, 0, "26 is missing", 0},
        //  Fixed fields and order.
        {"000202" GUI_KEY TAIL, 0, "00", 0},
        {GUI_KEY "000201" TAIL, 0, "start with field 00", 0},
        {"000201" "010213" GUI_KEY TAIL, 0, "01", 0},
        {"000201" "010211" GUI_KEY TAIL, 1, NULL, -1},
        {"000201" GUI_KEY "5204000A530398658" "02BR5903Ana6006RECIFE", 0, "52", 0},
        {"000201" GUI_KEY "520400005303840" "5802BR5903Ana6006RECIFE", 0, "986", 0},
        {"000201" GUI_KEY "52040000530398658" "02US5903Ana6006RECIFE", 0, "BR", 0},
        {"000201" GUI_KEY "52040000530398658" "02BR6006RECIFE", 0, "59 is missing", 0},
        {"000201" GUI_KEY "52040000530398658" "02BR5903Ana", 0, "60 is missing", 0},
        {"000201" GUI_KEY "52040000" "5802BR5903Ana6006RECIFE", 0, "53 is missing", 0},
        {"000201" GUI_KEY TAIL "5903Bob", 0, "twice", 0},
        {"000201" GUI_KEY TAIL "5900", 0, "length 00", 0},
        {"000201" GUI_KEY TAIL "5A03Bob", 0, "not 2 digits", 0},
        {"000201" GUI_KEY TAIL "590xBob", 0, "length is not", 0},
        //  Optional fields: postal code, additional data (txid), unreserved templates.
        {"000201" GUI_KEY TAIL "610801310000" "62140510ORDER-0042" "8004abcd", 1, NULL, -1},
        {"000201" GUI_KEY TAIL "62060503***", 0, "62/05", 0},
        {"000201" GUI_KEY TAIL "62220510ORDER-00420504xxxx", 0, "62/05 appears twice", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        s_with_crc (cases[i].body, code, sizeof code);
        err[0] = 0;
        int rc = rst_pix_brcode_check (code, strlen (code), &info, err, sizeof err);
        if (cases[i].ok) {
            if (rc != 0)
                fail_msg ("case %zu refused: %s", i, err);
            assert_int_equal (info.amount_cents, cases[i].cents);
        }
        else {
            if (rc != -1)
                fail_msg ("case %zu accepted", i);
            if (!strstr (err, cases[i].says))
                fail_msg ("case %zu: message '%s' does not say '%s'", i, err, cases[i].says);
        }
    }
    s_with_crc ("000201" GUI_KEY TAIL "610801310000" "62140510ORDER-0042", code, sizeof code);
    assert_int_equal (rst_pix_brcode_check (code, strlen (code), &info, err, sizeof err), 0);
    assert_string_equal (info.txid, "ORDER-0042");

    //  The CRC must be the last field, with length 04 and hex digits.
    char body[400];
    snprintf (body, sizeof body, "%s", s_with_crc ("000201" GUI_KEY TAIL, code, sizeof code));
    strcat (body, "5903Bob");
    assert_int_equal (rst_pix_brcode_check (body, strlen (body), NULL, err, sizeof err), -1);
    assert_non_null (strstr (err, "last"));
    assert_int_equal (rst_pix_brcode_check ("000201" GUI_KEY TAIL "63051D3D0",
                                            strlen ("000201" GUI_KEY TAIL "63051D3D0"), NULL, err,
                                            sizeof err),
                      -1);
    assert_non_null (strstr (err, "04"));
    assert_int_equal (rst_pix_brcode_check ("000201" GUI_KEY TAIL "6304XYZW",
                                            strlen ("000201" GUI_KEY TAIL "6304XYZW"), NULL, err,
                                            sizeof err),
                      -1);
    assert_non_null (strstr (err, "hex"));
    assert_int_equal (rst_pix_brcode_check ("000201" GUI_KEY TAIL, strlen ("000201" GUI_KEY TAIL),
                                            NULL, err, sizeof err),
                      -1);
    assert_non_null (strstr (err, "63 is missing"));

    //  Printable ASCII only, at most RST_PIX_CODE_MAX bytes.
    s_with_crc ("000201" GUI_KEY "52040000530398658" "02BR5904Jo\xC3\xA3" "6006RECIFE", code,
                sizeof code);
    assert_int_equal (rst_pix_brcode_check (code, strlen (code), NULL, err, sizeof err), -1);
    assert_non_null (strstr (err, "printable"));
    char big[1200] = "000201" GUI_KEY TAIL;
    while (strlen (big) < RST_PIX_CODE_MAX)
        strcat (big, "8005hello");
    s_with_crc (big, code, sizeof code);
    assert_true (strlen (code) > RST_PIX_CODE_MAX);
    assert_int_equal (rst_pix_brcode_check (code, strlen (code), NULL, err, sizeof err), -1);
    assert_non_null (strstr (err, "at most 512"));
}

//  --------------------------------------------------------------------------
//  QR rendering

typedef struct {
    const unsigned char *data;
    size_t len;
    size_t at;
} s_reader_t;

static void
s_png_read (png_structp png, png_bytep out, png_size_t n)
{
    s_reader_t *r = png_get_io_ptr (png);
    if (n > r->len - r->at)
        png_error (png, "read past the end");
    memcpy (out, r->data + r->at, n);
    r->at += n;
}

//  Decodes an 8-bit grayscale PNG; returns the pixels (malloc'd) and its size.
static unsigned char *
s_decode (const unsigned char *png, size_t len, unsigned *width, unsigned *height)
{
    s_reader_t reader = {png, len, 0};
    png_structp pp = png_create_read_struct (PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    assert_non_null (pp);
    png_infop ip = png_create_info_struct (pp);
    assert_non_null (ip);
    unsigned char *volatile pixels = NULL;
    if (setjmp (png_jmpbuf (pp))) {
        png_destroy_read_struct (&pp, &ip, NULL);
        free (pixels);
        fail_msg ("libpng could not read the PNG back");
        return NULL;
    }
    png_set_read_fn (pp, &reader, s_png_read);
    png_read_info (pp, ip);
    *width = png_get_image_width (pp, ip);
    *height = png_get_image_height (pp, ip);
    assert_int_equal (png_get_color_type (pp, ip), PNG_COLOR_TYPE_GRAY);
    assert_int_equal (png_get_bit_depth (pp, ip), 8);
    pixels = malloc ((size_t) *width * *height);
    assert_non_null (pixels);
    for (unsigned y = 0; y < *height; y++)
        png_read_row (pp, pixels + (size_t) y * *width, NULL);
    png_read_end (pp, NULL);
    png_destroy_read_struct (&pp, &ip, NULL);
    return pixels;
}

static void
test_qr_png (void **state)
{
    (void) state;
    //  The module matrix libqrencode gives for the code, to compare against.
    QRcode *qr = QRcode_encodeString (DYNAMIC_CODE, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
    assert_non_null (qr);
    unsigned qrw = (unsigned) qr->width;

    static const struct {
        int scale, margin;
    } sizes[] = {{4, 4}, {1, 0}, {3, 1}, {8, 2}};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        int scale = sizes[k].scale, margin = sizes[k].margin;
        unsigned char *png = (unsigned char *) "not NULL";
        size_t png_len = 99;
        char err[256] = "";
        assert_int_equal (rst_pix_qr_png (DYNAMIC_CODE, scale, margin, &png, &png_len, err,
                                          sizeof err),
                          0);
        assert_non_null (png);
        assert_true (png_len > 8 + 25);
        //  Signature, then the IHDR chunk: width and height big-endian.
        static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
        assert_memory_equal (png, sig, 8);
        assert_memory_equal (png + 12, "IHDR", 4);
        unsigned side = (qrw + 2 * (unsigned) margin) * (unsigned) scale;
        unsigned ihdr_w = (unsigned) png[16] << 24 | png[17] << 16 | png[18] << 8 | png[19];
        unsigned ihdr_h = (unsigned) png[20] << 24 | png[21] << 16 | png[22] << 8 | png[23];
        assert_int_equal (ihdr_w, side);
        assert_int_equal (ihdr_h, side);

        unsigned width = 0, height = 0;
        unsigned char *pixels = s_decode (png, png_len, &width, &height);
        assert_int_equal (width, side);
        assert_int_equal (height, side);
        //  The corner is margin (white) unless there is none; the top-left
        //  finder pattern starts at the first module: black, a white ring, a
        //  black centre.
        int m = margin * scale;
        if (margin > 0)
            assert_int_equal (pixels[0], 255);
        assert_int_equal (pixels[(size_t) m * width + (size_t) m], 0);
        assert_int_equal (pixels[(size_t) (m + scale) * width + (size_t) (m + scale)], 255);
        assert_int_equal (pixels[(size_t) (m + 3 * scale) * width + (size_t) (m + 3 * scale)], 0);
        //  Every pixel matches its module.
        for (unsigned y = 0; y < height; y++)
            for (unsigned x = 0; x < width; x++) {
                int my = (int) y / scale - margin, mx = (int) x / scale - margin;
                int black = my >= 0 && mx >= 0 && my < (int) qrw && mx < (int) qrw
                            && (qr->data[my * (int) qrw + mx] & 1);
                if (pixels[(size_t) y * width + x] != (black ? 0 : 255))
                    fail_msg ("scale %d margin %d: pixel (%u, %u) is %u", scale, margin, x, y,
                              pixels[(size_t) y * width + x]);
            }
        free (pixels);
        free (png);
    }
    QRcode_free (qr);

    //  The largest image: the longest code at the largest scale and margin.
    char code[RST_PIX_CODE_MAX + 2];
    memset (code, 'A', RST_PIX_CODE_MAX);
    code[RST_PIX_CODE_MAX] = 0;
    unsigned char *png = NULL;
    size_t png_len = 0;
    char err[256] = "";
    assert_int_equal (rst_pix_qr_png (code, RST_PIX_QR_SCALE_MAX, RST_PIX_QR_MARGIN_MAX, &png,
                                      &png_len, err, sizeof err),
                      0);
    assert_non_null (png);
    free (png);
}

static void
test_qr_png_bad_arguments (void **state)
{
    (void) state;
    static char long_code[RST_PIX_CODE_MAX + 2];
    memset (long_code, 'A', RST_PIX_CODE_MAX + 1);
    long_code[RST_PIX_CODE_MAX + 1] = 0;
    static const struct {
        const char *code;
        int scale, margin;
        const char *says;
    } bad[] = {
        {NULL, 4, 4, "empty"},
        {"", 4, 4, "empty"},
        {STATIC_CODE, 0, 4, "scale"},
        {STATIC_CODE, RST_PIX_QR_SCALE_MAX + 1, 4, "scale"},
        {STATIC_CODE, -3, 4, "scale"},
        {STATIC_CODE, 4, -1, "margin"},
        {STATIC_CODE, 4, RST_PIX_QR_MARGIN_MAX + 1, "margin"},
        {long_code, 4, 4, "longer"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        unsigned char *png = (unsigned char *) "not NULL";
        size_t png_len = 7;
        char err[256] = "";
        if (rst_pix_qr_png (bad[i].code, bad[i].scale, bad[i].margin, &png, &png_len, err,
                            sizeof err)
            != -1)
            fail_msg ("bad case %zu accepted", i);
        assert_null (png);
        assert_int_equal (png_len, 0);
        if (!strstr (err, bad[i].says))
            fail_msg ("bad case %zu: message '%s' does not say '%s'", i, err, bad[i].says);
    }
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_valid_codes),
        cmocka_unit_test (test_wrong_crc),
        cmocka_unit_test (test_truncated_and_corrupted),
        cmocka_unit_test (test_field_rules),
        cmocka_unit_test (test_qr_png),
        cmocka_unit_test (test_qr_png_bad_arguments),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
