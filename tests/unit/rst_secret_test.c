/*  rst_secret_test — secrets at rest (secretbox under a 0600 master key) and
    argon2id password hashes.

    The first test is the tour: load (and create) a master key, seal a token,
    open it again. The others check that the guarantees hold at the edges:
    tampering and a wrong key are detected, the key file is created 0600 and
    refused when others may read it, and password hashes are argon2id.
*/
#define _GNU_SOURCE     //  memmem
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "rst_secret.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NONCE_BYTES 24      //  crypto_secretbox_NONCEBYTES
#define MAC_BYTES   16      //  crypto_secretbox_MACBYTES

typedef struct {
    char dir[64];           //  temporary directory of this test
    char key[128];          //  <dir>/master.key
} fixture_t;

static int
setup (void **state)
{
    fixture_t *f = calloc (1, sizeof *f);
    assert_non_null (f);
    snprintf (f->dir, sizeof f->dir, "/tmp/rst_secret_test.XXXXXX");
    assert_non_null (mkdtemp (f->dir));
    snprintf (f->key, sizeof f->key, "%s/master.key", f->dir);
    *state = f;
    return 0;
}

static int
teardown (void **state)
{
    fixture_t *f = *state;
    DIR *d = opendir (f->dir);
    struct dirent *e;
    while (d && (e = readdir (d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[512];
        snprintf (path, sizeof path, "%s/%s", f->dir, e->d_name);
        unlink (path);
    }
    if (d)
        closedir (d);
    rmdir (f->dir);
    free (f);
    return 0;
}

//  The tour: the first use creates the key; seal, store, open.
static void
test_seal_open_round_trip (void **state)
{
    fixture_t *f = *state;
    char err[256] = "";
    rst_secret_t *secret = rst_secret_new (f->key, 1, err, sizeof err);
    assert_non_null (secret);

    const char *token = "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11";
    size_t sealed_len = 0;
    unsigned char *sealed = rst_secret_seal (secret, token, strlen (token), &sealed_len);
    assert_non_null (sealed);
    //  nonce || MAC || ciphertext, and the plaintext is not in it.
    assert_int_equal (sealed_len, NONCE_BYTES + MAC_BYTES + strlen (token));
    assert_null (memmem (sealed, sealed_len, token, strlen (token)));

    char *plain = rst_secret_open (secret, sealed, sealed_len);
    assert_non_null (plain);
    assert_string_equal (plain, token);
    rst_secret_free (plain);

    //  The same plaintext sealed twice gives different bytes (random nonce).
    size_t again_len = 0;
    unsigned char *again = rst_secret_seal (secret, token, strlen (token), &again_len);
    assert_non_null (again);
    assert_int_equal (again_len, sealed_len);
    assert_memory_not_equal (again, sealed, sealed_len);
    free (again);

    //  Another process (here: another object) loads the same key and opens it.
    rst_secret_destroy (&secret);
    assert_null (secret);
    rst_secret_destroy (&secret);       //  safe to repeat
    secret = rst_secret_new (f->key, 0, err, sizeof err);
    assert_non_null (secret);
    plain = rst_secret_open (secret, sealed, sealed_len);
    assert_non_null (plain);
    assert_string_equal (plain, token);
    rst_secret_free (plain);
    free (sealed);
    rst_secret_destroy (&secret);
}

static void
test_empty_and_binary_plaintexts (void **state)
{
    fixture_t *f = *state;
    char err[256];
    rst_secret_t *secret = rst_secret_new (f->key, 1, err, sizeof err);
    assert_non_null (secret);

    size_t len = 0;
    unsigned char *sealed = rst_secret_seal (secret, "", 0, &len);
    assert_non_null (sealed);
    assert_int_equal (len, NONCE_BYTES + MAC_BYTES);
    char *plain = rst_secret_open (secret, sealed, len);
    assert_non_null (plain);
    assert_string_equal (plain, "");
    rst_secret_free (plain);
    free (sealed);

    const char bytes[] = {'a', 0, 'b', (char) 0xff};
    sealed = rst_secret_seal (secret, bytes, sizeof bytes, &len);
    assert_non_null (sealed);
    plain = rst_secret_open (secret, sealed, len);
    assert_non_null (plain);
    assert_memory_equal (plain, bytes, sizeof bytes);
    assert_int_equal (plain[sizeof bytes], 0);      //  always NUL-terminated
    rst_secret_free (plain);
    free (sealed);
    rst_secret_free (NULL);                         //  safe on NULL
    rst_secret_destroy (&secret);
}

static void
test_tampering_is_detected (void **state)
{
    fixture_t *f = *state;
    char err[256];
    rst_secret_t *secret = rst_secret_new (f->key, 1, err, sizeof err);
    assert_non_null (secret);
    const char *token = "EAAB-meta-token-xyz";
    size_t len = 0;
    unsigned char *sealed = rst_secret_seal (secret, token, strlen (token), &len);
    assert_non_null (sealed);

    //  Flip one bit anywhere: nonce, MAC or ciphertext.
    for (size_t i = 0; i < len; i++) {
        sealed[i] ^= 0x01;
        assert_null (rst_secret_open (secret, sealed, len));
        sealed[i] ^= 0x01;
    }
    //  Truncated, too short to hold a nonce and a MAC, or NULL.
    assert_null (rst_secret_open (secret, sealed, len - 1));
    assert_null (rst_secret_open (secret, sealed, NONCE_BYTES + MAC_BYTES - 1));
    assert_null (rst_secret_open (secret, sealed, 0));
    assert_null (rst_secret_open (secret, NULL, 0));
    //  Untouched, it still opens.
    char *plain = rst_secret_open (secret, sealed, len);
    assert_non_null (plain);
    rst_secret_free (plain);
    free (sealed);
    rst_secret_destroy (&secret);
}

static void
test_wrong_key_cannot_open (void **state)
{
    fixture_t *f = *state;
    char other[160], err[256];
    snprintf (other, sizeof other, "%s/other.key", f->dir);
    rst_secret_t *a = rst_secret_new (f->key, 1, err, sizeof err);
    rst_secret_t *b = rst_secret_new (other, 1, err, sizeof err);
    assert_non_null (a);
    assert_non_null (b);
    size_t len = 0;
    unsigned char *sealed = rst_secret_seal (a, "secret", 6, &len);
    assert_non_null (sealed);
    assert_null (rst_secret_open (b, sealed, len));
    char *plain = rst_secret_open (a, sealed, len);
    assert_non_null (plain);
    rst_secret_free (plain);
    free (sealed);
    rst_secret_destroy (&a);
    rst_secret_destroy (&b);
}

static void
test_key_file_created_0600 (void **state)
{
    fixture_t *f = *state;
    char err[256];
    //  Without CREATE a missing key is an error, and nothing is created.
    assert_null (rst_secret_new (f->key, 0, err, sizeof err));
    assert_non_null (strstr (err, "does not exist"));
    struct stat st;
    assert_int_not_equal (stat (f->key, &st), 0);

    //  Even under a permissive umask the file is 0600.
    mode_t old = umask (0);
    rst_secret_t *secret = rst_secret_new (f->key, 1, err, sizeof err);
    umask (old);
    assert_non_null (secret);
    assert_int_equal (stat (f->key, &st), 0);
    assert_true (S_ISREG (st.st_mode));
    assert_int_equal (st.st_mode & 07777, 0600);
    assert_int_equal (st.st_size, 32);
    rst_secret_destroy (&secret);

    //  Only the key is left behind (no temporary file).
    DIR *d = opendir (f->dir);
    assert_non_null (d);
    int files = 0;
    struct dirent *e;
    while ((e = readdir (d)))
        if (e->d_name[0] != '.')
            files++;
    closedir (d);
    assert_int_equal (files, 1);
}

static void
test_readable_key_file_refused (void **state)
{
    fixture_t *f = *state;
    char err[256];
    rst_secret_t *secret = rst_secret_new (f->key, 1, err, sizeof err);
    assert_non_null (secret);
    rst_secret_destroy (&secret);

    static const mode_t bad[] = {0640, 0604, 0660, 0602, 0610};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal (chmod (f->key, bad[i]), 0);
        err[0] = 0;
        assert_null (rst_secret_new (f->key, 1, err, sizeof err));
        //  The message says what to run.
        assert_non_null (strstr (err, "chmod 600"));
        assert_non_null (strstr (err, f->key));
    }
    assert_int_equal (chmod (f->key, 0400), 0);     //  owner-only read is fine
    secret = rst_secret_new (f->key, 1, err, sizeof err);
    assert_non_null (secret);
    rst_secret_destroy (&secret);
}

static void
test_bad_key_file_refused (void **state)
{
    fixture_t *f = *state;
    char err[256];
    FILE *fp = fopen (f->key, "w");
    assert_non_null (fp);
    fputs ("too short\n", fp);
    fclose (fp);
    assert_int_equal (chmod (f->key, 0600), 0);
    assert_null (rst_secret_new (f->key, 1, err, sizeof err));
    assert_non_null (strstr (err, "expected 32"));

    //  A directory is no key file either.
    char dir[160];
    snprintf (dir, sizeof dir, "%s/adir", f->dir);
    assert_int_equal (mkdir (dir, 0700), 0);
    assert_null (rst_secret_new (dir, 1, err, sizeof err));
    rmdir (dir);

    //  Nor is a path in a directory that does not exist.
    char missing[160];
    snprintf (missing, sizeof missing, "%s/no/such/dir/master.key", f->dir);
    assert_null (rst_secret_new (missing, 1, err, sizeof err));
    assert_non_null (strstr (err, missing));
}

static void
test_password_hash_verify (void **state)
{
    (void) state;
    char hash[RST_PASSWORD_HASH_MAX], hash2[RST_PASSWORD_HASH_MAX];
    assert_int_equal (rst_password_hash ("correct horse battery", hash), 0);
    assert_true (strncmp (hash, "$argon2id$", 10) == 0);
    assert_null (strstr (hash, "correct horse battery"));
    assert_int_equal (rst_password_verify (hash, "correct horse battery"), 1);
    assert_int_equal (rst_password_verify (hash, "correct horse batterY"), 0);
    assert_int_equal (rst_password_verify (hash, ""), 0);
    //  Salted: the same password hashes differently each time.
    assert_int_equal (rst_password_hash ("correct horse battery", hash2), 0);
    assert_string_not_equal (hash, hash2);
    assert_int_equal (rst_password_verify (hash2, "correct horse battery"), 1);
    //  Garbage or a foreign hash never matches.
    assert_int_equal (rst_password_verify ("", "x"), 0);
    assert_int_equal (rst_password_verify ("$2y$10$abcdefghijklmnopqrstuv", "x"), 0);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_seal_open_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown (test_empty_and_binary_plaintexts, setup, teardown),
        cmocka_unit_test_setup_teardown (test_tampering_is_detected, setup, teardown),
        cmocka_unit_test_setup_teardown (test_wrong_key_cannot_open, setup, teardown),
        cmocka_unit_test_setup_teardown (test_key_file_created_0600, setup, teardown),
        cmocka_unit_test_setup_teardown (test_readable_key_file_refused, setup, teardown),
        cmocka_unit_test_setup_teardown (test_bad_key_file_refused, setup, teardown),
        cmocka_unit_test (test_password_hash_verify),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
