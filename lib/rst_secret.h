/*  rst_secret — secrets at rest and password hashes (libsodium).

    Meta and Telegram tokens (and later gateway credentials) are sealed with
    crypto_secretbox (XSalsa20-Poly1305) under a 32-byte master key kept in a
    file created with mode 0600 on first use (RASTRO_MASTER_KEY_FILE, default
    <data>/master.key). A sealed value is nonce || box, stored as bytea. The
    plaintext lives only in memory, in buffers the caller wipes with
    rst_secret_free. Passwords are argon2id hashes (crypto_pwhash_str_alg).
*/
#ifndef RST_SECRET_H
#define RST_SECRET_H

#include <stddef.h>

typedef struct rst_secret_t rst_secret_t;

//  Loads the master key from PATH, creating it (0600, random) when CREATE is
//  set and the file does not exist. Refuses a key file readable by group or
//  others. Returns a new object the caller owns, or NULL with a reason in ERR.
rst_secret_t *rst_secret_new (const char *path, int create, char *err, size_t errlen);
void rst_secret_destroy (rst_secret_t **self_p);

//  Seals PLAIN (LEN bytes). Returns a new buffer (nonce || box) of *OUT_LEN
//  bytes the caller frees with free(), or NULL.
unsigned char *rst_secret_seal (rst_secret_t *self, const void *plain, size_t len, size_t *out_len);

//  Opens a sealed buffer. Returns a NUL-terminated plaintext the caller frees
//  with rst_secret_free, or NULL if it was tampered with or sealed under
//  another key.
char *rst_secret_open (rst_secret_t *self, const unsigned char *sealed, size_t len);

//  Wipes and frees a plaintext returned by rst_secret_open. Safe on NULL.
void rst_secret_free (char *plain);

//  argon2id hash of PASSWORD into OUT (at least RST_PASSWORD_HASH_MAX bytes).
//  Returns 0 or -1 (out of memory).
#define RST_PASSWORD_HASH_MAX 128
int rst_password_hash (const char *password, char *out);

//  1 if PASSWORD matches HASH, else 0.
int rst_password_verify (const char *hash, const char *password);

#endif
