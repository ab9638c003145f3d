/*  rst_utf8 — see rst_utf8.h. */
#include "rst_utf8.h"

long
rst_utf8_chars (const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *) s, *end = p + len;
    long chars = 0;
    while (p < end) {
        unsigned c = *p;
        size_t more;
        unsigned cp, min;
        if (c == 0)
            return -1;
        if (c < 0x80) {
            p++;
            chars++;
            continue;
        }
        if ((c & 0xE0) == 0xC0) {
            more = 1;
            cp = c & 0x1F;
            min = 0x80;
        }
        else if ((c & 0xF0) == 0xE0) {
            more = 2;
            cp = c & 0x0F;
            min = 0x800;
        }
        else if ((c & 0xF8) == 0xF0) {
            more = 3;
            cp = c & 0x07;
            min = 0x10000;
        }
        else
            return -1;
        if ((size_t) (end - p) < more + 1)
            return -1;
        for (size_t k = 1; k <= more; k++) {
            if ((p[k] & 0xC0) != 0x80)
                return -1;
            cp = (cp << 6) | (p[k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return -1;
        p += more + 1;
        chars++;
    }
    return chars;
}
