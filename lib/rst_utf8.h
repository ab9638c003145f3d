/*  rst_utf8 — strict UTF-8 validation for text that comes from outside
    (API query strings and bodies, offer names and welcome HTML, CLI
    arguments): shortest forms only, no surrogates, nothing above U+10FFFF,
    no NUL byte.
*/
#ifndef RST_UTF8_H
#define RST_UTF8_H

#include <stddef.h>

//  Counts the characters (code points) of S, LEN bytes, if it is valid
//  UTF-8 as above. Returns the count, or -1.
long rst_utf8_chars (const char *s, size_t len);

#endif
