/*  rst_mpcheck — measure one msgpack object without trusting it.

    The event and pipeline decoders (rst_event.c, rst_pipeline.c) run this
    before msgpack-c sees a byte of untrusted input: it walks the object's
    structure iteratively (PENDING counts the objects still to read, a
    container adds its elements, so nesting depth costs nothing), checks
    every declared length and count against the bytes really there, and
    returns the object's size. Every element needs at least one byte, so a
    count larger than the bytes left is truncated data, never an
    allocation. It reads nothing outside [data, data + len).
*/
#include "rst_mpcheck.h"

#include <assert.h>
#include <msgpack.h>
#include <stdint.h>

static uint64_t
s_be (const unsigned char *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

rst_mpcheck_t
rst_mpcheck_measure (const void *bytes, size_t len, size_t *size)
{
    assert (size);
    const unsigned char *data = bytes;
    size_t pos = 0;
    uint64_t pending = 1;
    while (pending > 0) {
        if (pos >= len)
            return RST_MPCHECK_TRUNCATED;
        unsigned char b = data[pos++];
        size_t left = len - pos;
        uint64_t body = 0;      //  bytes after the type byte (length fields included)
        uint64_t items = 0;     //  elements this object adds
        size_t lenlen = 0;      //  size of a big-endian length field
        int is_map = 0;
        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
            body = 0;
        else if (b >= 0x80 && b <= 0x8f)
            items = 2ull * (b & 0x0f);
        else if (b >= 0x90 && b <= 0x9f)
            items = b & 0x0f;
        else if (b >= 0xa0 && b <= 0xbf)
            body = b & 0x1f;
        else {
            switch (b) {
            case 0xc4: case 0xd9: lenlen = 1; break;        //  bin8, str8
            case 0xc5: case 0xda: lenlen = 2; break;        //  bin16, str16
            case 0xc6: case 0xdb: lenlen = 4; break;        //  bin32, str32
            case 0xc7: lenlen = 1; body = 1; break;         //  ext8 (+ type byte)
            case 0xc8: lenlen = 2; body = 1; break;         //  ext16
            case 0xc9: lenlen = 4; body = 1; break;         //  ext32
            case 0xca: body = 4; break;
            case 0xcb: body = 8; break;
            case 0xcc: case 0xd0: body = 1; break;
            case 0xcd: case 0xd1: body = 2; break;
            case 0xce: case 0xd2: body = 4; break;
            case 0xcf: case 0xd3: body = 8; break;
            case 0xd4: body = 2; break;                     //  fixext1
            case 0xd5: body = 3; break;
            case 0xd6: body = 5; break;
            case 0xd7: body = 9; break;
            case 0xd8: body = 17; break;
            case 0xdc: lenlen = 2; items = 1; break;        //  array16
            case 0xdd: lenlen = 4; items = 1; break;        //  array32
            case 0xde: lenlen = 2; items = 1; is_map = 1; break;
            case 0xdf: lenlen = 4; items = 1; is_map = 1; break;
            default:
                return RST_MPCHECK_MALFORMED;                 //  0xc1
            }
            if (lenlen) {
                if (left < lenlen)
                    return RST_MPCHECK_TRUNCATED;
                uint64_t n = s_be (data + pos, lenlen);
                pos += lenlen;
                left -= lenlen;
                if (items)      //  container: n elements (maps: key and value)
                    items = is_map ? 2 * n : n;
                else
                    body += n;
            }
        }
        if (body > left)
            return RST_MPCHECK_TRUNCATED;
        pos += (size_t) body;
        pending = pending - 1 + items;
        if (pending > len - pos)
            return RST_MPCHECK_TRUNCATED;
    }
    *size = pos;
    return RST_MPCHECK_OK;
}

const char *
rst_mpcheck_reason (rst_mpcheck_t result)
{
    switch (result) {
    case RST_MPCHECK_OK:
        return "ok";
    case RST_MPCHECK_TRUNCATED:
        return "truncated msgpack data";
    case RST_MPCHECK_MALFORMED:
        break;
    }
    return "malformed msgpack data (byte 0xc1)";
}

const char *
rst_mpcheck_type_name (msgpack_object_type type)
{
    switch (type) {
    case MSGPACK_OBJECT_NIL: return "nil";
    case MSGPACK_OBJECT_BOOLEAN: return "bool";
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return "int";
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: return "float";
    case MSGPACK_OBJECT_STR: return "str";
    case MSGPACK_OBJECT_ARRAY: return "array";
    case MSGPACK_OBJECT_MAP: return "map";
    case MSGPACK_OBJECT_BIN: return "bin";
    case MSGPACK_OBJECT_EXT: return "ext";
    }
    return "?";
}
