/*  rst_click_test — click ids, fbc, query strings, cookies, UTF-8 clean-up. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "rst_click.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  A tour: a click id is 22 characters of the Telegram start alphabet, and
//  the fbc for a click built from its fbclid keeps the fbclid byte for byte.
static void
test_tour (void **state)
{
    char id[RST_CLICK_ID_LEN + 1];
    rst_click_id_new (id);
    assert_int_equal (strlen (id), 22);
    assert_true (rst_click_token_is_valid (id, strlen (id)));

    char fbc[RST_FBC_MAX];
    int n = rst_fbc_build (fbc, sizeof fbc, 1767225600123LL, "IwAR2F4-dbP0l7Mn1IawQQ", 22);
    assert_int_equal (n, (int) strlen ("fb.1.1767225600123.IwAR2F4-dbP0l7Mn1IawQQ"));
    assert_string_equal (fbc, "fb.1.1767225600123.IwAR2F4-dbP0l7Mn1IawQQ");
}

static void
test_click_id_from_bytes (void **state)
{
    unsigned char rnd[RST_CLICK_ID_RANDOM];
    char id[RST_CLICK_ID_LEN + 1];
    memset (rnd, 0xff, sizeof rnd);
    rst_click_id_from (0xffffffffffffLL, rnd, id);
    assert_string_equal (id, "zzzzzzzzzzzzzzzzzzzzzk");
    memset (rnd, 0, sizeof rnd);
    rst_click_id_from (0, rnd, id);
    assert_string_equal (id, "----------------------");
    //  2026-01-01T00:00:00.123Z = 1767225600123 ms = 0x019b76daa87b: the
    //  48 bits, 6 at a time: 000000 011001 101101 110110 110110 101010
    //  100001 111011 = 0 25 45 54 54 42 33 59, i.e. "-OhqqeWv".
    rst_click_id_from (1767225600123LL, rnd, id);
    assert_memory_equal (id, "-OhqqeWv", 8);
    assert_string_equal (id + 8, "--------------");
}

//  Ids sort by their time as strings (strcmp), whatever their random bits.
static void
test_click_ids_sort_by_time (void **state)
{
    unsigned char lo[RST_CLICK_ID_RANDOM], hi[RST_CLICK_ID_RANDOM];
    memset (lo, 0, sizeof lo);
    memset (hi, 0xff, sizeof hi);
    char a[RST_CLICK_ID_LEN + 1], b[RST_CLICK_ID_LEN + 1];
    int64_t times[] = {0, 1, 63, 64, 1767225600123LL, 1767225600124LL, 1767225660000LL,
                       0xfffffffffffeLL, 0xffffffffffffLL};
    for (size_t i = 0; i + 1 < sizeof times / sizeof times[0]; i++) {
        rst_click_id_from (times[i], hi, a);
        rst_click_id_from (times[i + 1], lo, b);
        assert_true (strcmp (a, b) < 0);
        assert_true (rst_click_token_is_valid (a, strlen (a)));
    }
    //  Random bits: each of the 80 changes the id.
    for (int bit = 0; bit < 8 * RST_CLICK_ID_RANDOM; bit++) {
        memset (hi, 0, sizeof hi);
        hi[bit / 8] = (unsigned char) (1 << (bit % 8));
        rst_click_id_from (5, lo, a);
        rst_click_id_from (5, hi, b);
        assert_true (strcmp (a, b) < 0);
    }
}

static void
test_click_ids_are_unique (void **state)
{
    enum { N = 20000 };
    char (*ids)[RST_CLICK_ID_LEN + 1] = malloc (N * sizeof *ids);
    for (int i = 0; i < N; i++)
        rst_click_id_new (ids[i]);
    qsort (ids, N, sizeof *ids, (int (*) (const void *, const void *)) strcmp);
    for (int i = 1; i < N; i++)
        assert_string_not_equal (ids[i - 1], ids[i]);
    free (ids);
}

static void
test_token_validation (void **state)
{
    assert_true (rst_click_token_is_valid ("curso-basico_2", 14));
    assert_false (rst_click_token_is_valid ("", 0));
    assert_false (rst_click_token_is_valid ("a b", 3));
    assert_false (rst_click_token_is_valid ("a%20", 4));
    assert_false (rst_click_token_is_valid ("ação", strlen ("ação")));
    char long_slug[66];
    memset (long_slug, 'a', 65);
    long_slug[65] = 0;
    assert_true (rst_click_token_is_valid (long_slug, 64));
    assert_false (rst_click_token_is_valid (long_slug, 65));
}

static void
test_fbclid_is_kept_byte_for_byte (void **state)
{
    char fbc[RST_FBC_MAX];
    //  Mixed case stays mixed case.
    assert_true (rst_fbc_build (fbc, sizeof fbc, 1, "AbC_dEf-9", 9) > 0);
    assert_string_equal (fbc, "fb.1.1.AbC_dEf-9");
    assert_int_equal (rst_fbc_build (fbc, sizeof fbc, 1, "bad.value", 9), -1);
    assert_int_equal (rst_fbc_build (fbc, sizeof fbc, 1, "", 0), -1);
    char huge[RST_FBCLID_MAX + 2];
    memset (huge, 'x', sizeof huge);
    assert_int_equal (rst_fbc_build (fbc, sizeof fbc, 1, huge, RST_FBCLID_MAX + 1), -1);
    assert_true (rst_fbc_build (fbc, sizeof fbc, 1, huge, RST_FBCLID_MAX) > 0);
}

static void
test_fbp_validation (void **state)
{
    const char *good[] = {"fb.1.1596403881668.1116446470", "fb.2.1596403881668.1116446470.AbC-x", NULL};
    const char *bad[] = {"fb.1.1596403881668", "fb.1..123", "xx.1.1.1", "fb.1.15964a.111", "fb.1.1.1.a.b", "", NULL};
    for (int i = 0; good[i]; i++)
        assert_true (rst_fbp_is_valid (good[i], strlen (good[i])));
    for (int i = 0; bad[i]; i++)
        assert_false (rst_fbp_is_valid (bad[i], strlen (bad[i])));
}

static void
test_url_decode (void **state)
{
    char out[64];
    int n = rst_url_decode ("Black%20Friday+2026", 19, out, sizeof out);
    assert_int_equal (n, 17);
    assert_memory_equal (out, "Black Friday 2026", 17);
    assert_int_equal (rst_url_decode ("%zz", 3, out, sizeof out), -1);
    assert_int_equal (rst_url_decode ("abc%2", 5, out, sizeof out), -1);
    assert_int_equal (rst_url_decode ("abc%", 4, out, sizeof out), -1);
    assert_int_equal (rst_url_decode ("abcdef", 6, out, 3), -1);
    n = rst_url_decode ("%C3%A7", 6, out, sizeof out);
    assert_int_equal (n, 2);
}

typedef struct {
    int count;
    char seen[8][64];
} s_pairs_t;

static int
s_collect (void *arg, const char *key, size_t key_len, const char *value, size_t value_len)
{
    s_pairs_t *p = arg;
    snprintf (p->seen[p->count++], 64, "%.*s=%.*s", (int) key_len, key, (int) value_len, value);
    return p->count == 8;
}

static void
test_query_each (void **state)
{
    s_pairs_t p = {0};
    const char *q = "utm_source=fb&&flag&utm_campaign=a%20b&=x";
    rst_query_each (q, strlen (q), s_collect, &p);
    assert_int_equal (p.count, 4);
    assert_string_equal (p.seen[0], "utm_source=fb");
    assert_string_equal (p.seen[1], "flag=");
    assert_string_equal (p.seen[2], "utm_campaign=a%20b");
    assert_string_equal (p.seen[3], "=x");
}

static void
test_cookie_find (void **state)
{
    const char *h = "a=1; _fbp=fb.1.2.3; _fbc=fb.1.2.x";
    const char *v;
    size_t len;
    assert_true (rst_cookie_find (h, strlen (h), "_fbp", &v, &len));
    assert_int_equal (len, 8);
    assert_memory_equal (v, "fb.1.2.3", 8);
    assert_false (rst_cookie_find (h, strlen (h), "_fb", &v, &len));
    assert_false (rst_cookie_find ("", 0, "_fbp", &v, &len));
}

static void
test_utf8_clean (void **state)
{
    char out[64];
    assert_int_equal (rst_utf8_clean ("Mozilla/5.0 ação", strlen ("Mozilla/5.0 ação"), out), 0);
    assert_string_equal (out, "Mozilla/5.0 ação");
    //  Invalid lead byte, truncated sequence, overlong, surrogate, control char.
    const char bad[] = "a\xff" "b\xc3" "c\xc0\xaf" "d\xed\xa0\x80" "e\x01";
    size_t replaced = rst_utf8_clean (bad, sizeof bad - 1, out);
    assert_true (replaced >= 5);
    for (const char *c = out; *c; c++)
        assert_true ((unsigned char) *c >= 0x20);
}

int
main (void)
{
    if (sodium_init () < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_tour),
        cmocka_unit_test (test_click_id_from_bytes),
        cmocka_unit_test (test_click_ids_sort_by_time),
        cmocka_unit_test (test_click_ids_are_unique),
        cmocka_unit_test (test_token_validation),
        cmocka_unit_test (test_fbclid_is_kept_byte_for_byte),
        cmocka_unit_test (test_fbp_validation),
        cmocka_unit_test (test_url_decode),
        cmocka_unit_test (test_query_each),
        cmocka_unit_test (test_cookie_find),
        cmocka_unit_test (test_utf8_clean),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
