/*  rst_secret — secrets at rest and password hashes (libsodium).

    The `rastro` admin commands seal Meta and Telegram tokens before they
    reach PostgreSQL; the nodes that call Meta or Telegram open them in
    memory. Nothing here logs: errors name files and reasons, never bytes.

    Master key file: exactly crypto_secretbox_KEYBYTES (32) raw random bytes,
    mode 0600. On first use it is written to <path>.tmp.<pid> (0600, fsync)
    and then link(2)ed into place, so a concurrent first use by another
    process either wins or reads the complete winner's key; never a torn
    file. A key file that group or others may access is refused with the
    chmod to run: a key that leaked is no key. Losing the key file loses
    every sealed token (they must be added again): back it up with the
    database.

    Sealed format: nonce (24 random bytes) || crypto_secretbox_easy box
    (16-byte MAC + ciphertext). Opening checks the MAC, so a flipped bit or
    another key gives NULL, not garbage.

    Plaintexts returned by rst_secret_open carry a hidden length header so
    that rst_secret_free can wipe them completely, NUL bytes or not.
*/
#include "rst_secret.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

_Static_assert (RST_PASSWORD_HASH_MAX >= crypto_pwhash_STRBYTES,
                "RST_PASSWORD_HASH_MAX must hold crypto_pwhash_STRBYTES");

struct rst_secret_t {
    unsigned char *key;     //  crypto_secretbox_KEYBYTES, sodium_malloc'd (locked, guarded)
};

static pthread_once_t s_sodium_once = PTHREAD_ONCE_INIT;
static int s_sodium_status = -1;    //  written once under s_sodium_once, then read-only

static void
s_sodium_init_once (void)
{
    s_sodium_status = sodium_init () < 0 ? -1 : 0;
}

//  Initialises libsodium once per process. Returns 0 or -1.
static int
s_sodium_ready (void)
{
    pthread_once (&s_sodium_once, s_sodium_init_once);
    return s_sodium_status;
}

//  Reads exactly LEN bytes from FD. Returns 0, or -1 (errno set; 0 = short file).
static int
s_read_all (int fd, unsigned char *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = read (fd, buf + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = 0;
            return -1;
        }
        got += (size_t) n;
    }
    return 0;
}

static int
s_write_all (int fd, const unsigned char *buf, size_t len)
{
    size_t put = 0;
    while (put < len) {
        ssize_t n = write (fd, buf + put, len - put);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        put += (size_t) n;
    }
    return 0;
}

//  Creates PATH with a fresh random key unless it exists. Returns 0 when the
//  file exists afterwards (ours or a concurrent creator's), -1 with ERR.
static int
s_create_key_file (const char *path, char *err, size_t errlen)
{
    char tmp[PATH_MAX];
    if (snprintf (tmp, sizeof tmp, "%s.tmp.%ld", path, (long) getpid ()) >= (int) sizeof tmp) {
        snprintf (err, errlen, "master key file path is too long: %s", path);
        return -1;
    }
    unsigned char key[crypto_secretbox_KEYBYTES];
    crypto_secretbox_keygen (key);
    int fd = open (tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        snprintf (err, errlen, "cannot create master key file %s: %s", path, strerror (errno));
        goto fail;
    }
    //  open()'s mode is filtered by the umask; make sure it is exactly 0600.
    if (fchmod (fd, 0600) || s_write_all (fd, key, sizeof key) || fsync (fd)) {
        snprintf (err, errlen, "cannot write master key file %s: %s", tmp, strerror (errno));
        close (fd);
        goto fail_unlink;
    }
    if (close (fd)) {
        snprintf (err, errlen, "cannot write master key file %s: %s", tmp, strerror (errno));
        goto fail_unlink;
    }
    if (link (tmp, path) && errno != EEXIST) {
        snprintf (err, errlen, "cannot create master key file %s: %s", path, strerror (errno));
        goto fail_unlink;
    }
    unlink (tmp);
    sodium_memzero (key, sizeof key);
    return 0;

fail_unlink:
    unlink (tmp);
fail:
    sodium_memzero (key, sizeof key);
    return -1;
}

rst_secret_t *
rst_secret_new (const char *path, int create, char *err, size_t errlen)
{
    assert (path);
    if (s_sodium_ready ()) {
        snprintf (err, errlen, "libsodium: initialisation failed");
        return NULL;
    }
    if (!*path) {
        snprintf (err, errlen, "no master key file configured (RASTRO_MASTER_KEY_FILE)");
        return NULL;
    }
    rst_secret_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, errlen, "out of memory");
        return NULL;
    }
    self->key = sodium_malloc (crypto_secretbox_KEYBYTES);
    if (!self->key) {
        snprintf (err, errlen, "libsodium: cannot allocate the key buffer");
        goto fail;
    }

    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && create) {
        if (s_create_key_file (path, err, errlen))
            goto fail;
        fd = open (path, O_RDONLY | O_CLOEXEC);
    }
    if (fd < 0) {
        if (errno == ENOENT)
            snprintf (err, errlen, "master key file %s does not exist", path);
        else
            snprintf (err, errlen, "cannot open master key file %s: %s", path, strerror (errno));
        goto fail;
    }
    struct stat st;
    if (fstat (fd, &st)) {
        snprintf (err, errlen, "cannot stat master key file %s: %s", path, strerror (errno));
        goto fail_fd;
    }
    if (!S_ISREG (st.st_mode)) {
        snprintf (err, errlen, "master key file %s is not a regular file", path);
        goto fail_fd;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        snprintf (err, errlen,
                  "master key file %s is accessible by group or others (mode %04o): "
                  "run `chmod 600 %s`",
                  path, (unsigned) (st.st_mode & 07777), path);
        goto fail_fd;
    }
    if (st.st_size != crypto_secretbox_KEYBYTES) {
        snprintf (err, errlen, "master key file %s is %lld bytes, expected %d: it is not a "
                  "rastro key (restore it from a backup)",
                  path, (long long) st.st_size, (int) crypto_secretbox_KEYBYTES);
        goto fail_fd;
    }
    if (s_read_all (fd, self->key, crypto_secretbox_KEYBYTES)) {
        snprintf (err, errlen, "cannot read master key file %s: %s", path,
                  errno ? strerror (errno) : "file is short");
        goto fail_fd;
    }
    close (fd);
    sodium_mprotect_readonly (self->key);
    return self;

fail_fd:
    close (fd);
fail:
    rst_secret_destroy (&self);
    return NULL;
}

void
rst_secret_destroy (rst_secret_t **self_p)
{
    assert (self_p);
    rst_secret_t *self = *self_p;
    if (!self)
        return;
    sodium_free (self->key);    //  wipes; safe on NULL
    free (self);
    *self_p = NULL;
}

unsigned char *
rst_secret_seal (rst_secret_t *self, const void *plain, size_t len, size_t *out_len)
{
    assert (self && (plain || len == 0) && out_len);
    if (len > SIZE_MAX - crypto_secretbox_NONCEBYTES - crypto_secretbox_MACBYTES)
        return NULL;
    size_t total = crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + len;
    unsigned char *out = malloc (total);
    if (!out)
        return NULL;
    randombytes_buf (out, crypto_secretbox_NONCEBYTES);
    if (crypto_secretbox_easy (out + crypto_secretbox_NONCEBYTES, plain ? plain : "",
                               (unsigned long long) len, out, self->key)) {
        free (out);
        return NULL;
    }
    *out_len = total;
    return out;
}

//  A plaintext buffer is [size_t len][len bytes][NUL]; callers see the bytes.
#define S_HEADER sizeof (size_t)

char *
rst_secret_open (rst_secret_t *self, const unsigned char *sealed, size_t len)
{
    assert (self);
    if (!sealed || len < crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES)
        return NULL;
    size_t plain_len = len - crypto_secretbox_NONCEBYTES - crypto_secretbox_MACBYTES;
    unsigned char *block = malloc (S_HEADER + plain_len + 1);
    if (!block)
        return NULL;
    memcpy (block, &plain_len, S_HEADER);
    unsigned char *plain = block + S_HEADER;
    if (crypto_secretbox_open_easy (plain, sealed + crypto_secretbox_NONCEBYTES,
                                    (unsigned long long) (len - crypto_secretbox_NONCEBYTES),
                                    sealed, self->key)) {
        sodium_memzero (block, S_HEADER + plain_len + 1);
        free (block);
        return NULL;
    }
    plain[plain_len] = 0;
    return (char *) plain;
}

void
rst_secret_free (char *plain)
{
    if (!plain)
        return;
    unsigned char *block = (unsigned char *) plain - S_HEADER;
    size_t plain_len;
    memcpy (&plain_len, block, S_HEADER);
    sodium_memzero (block, S_HEADER + plain_len + 1);
    free (block);
}

int
rst_password_hash (const char *password, char *out)
{
    assert (password && out);
    if (s_sodium_ready ())
        return -1;
    return crypto_pwhash_str_alg (out, password, strlen (password),
                                  crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                  crypto_pwhash_MEMLIMIT_INTERACTIVE,
                                  crypto_pwhash_ALG_ARGON2ID13)
               ? -1
               : 0;
}

int
rst_password_verify (const char *hash, const char *password)
{
    assert (hash && password);
    if (s_sodium_ready ())
        return 0;
    //  Only our own format: a hash of another kind never matches.
    if (strncmp (hash, crypto_pwhash_argon2id_STRPREFIX, strlen (crypto_pwhash_argon2id_STRPREFIX)))
        return 0;
    return crypto_pwhash_str_verify (hash, password, strlen (password)) == 0;
}
