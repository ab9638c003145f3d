/*  rst_mpcheck — measure one msgpack object without trusting it.

    The first step of every decoder of messages from other nodes
    (rst_event, rst_pipeline): before msgpack-c unpacks an object, this
    walks its structure without allocating, checks each declared length and
    count against the bytes really there, and tells its size, so that a
    hostile length can neither make msgpack-c allocate nor read past the
    data. Untrusted input: never asserts on it. Also the type names both
    decoders put in their error messages.
*/
#ifndef RST_MPCHECK_H
#define RST_MPCHECK_H

#include <msgpack.h>
#include <stddef.h>

typedef enum {
    RST_MPCHECK_OK,
    RST_MPCHECK_TRUNCATED,      //  a declared length or count runs past the data
    RST_MPCHECK_MALFORMED,      //  a byte that is no msgpack type (0xc1)
} rst_mpcheck_t;

//  Walks the one object that starts at DATA[0] within DATA[0..LEN) (bytes
//  after it are allowed) and stores its size in *SIZE (OUT, set only on
//  RST_MPCHECK_OK). Returns the verdict.
rst_mpcheck_t rst_mpcheck_measure (const void *data, size_t len, size_t *size);

//  The reason to log for RESULT: "truncated msgpack data" or "malformed
//  msgpack data (byte 0xc1)" (a static string).
const char *rst_mpcheck_reason (rst_mpcheck_t result);

//  Short name of a msgpack-c object type for error messages ("int", "str",
//  "map"...; "?" for a type msgpack-c adds later). A static string.
const char *rst_mpcheck_type_name (msgpack_object_type type);

#endif
