/* po_utf8: strict UTF-8 validation, shared by the Avro decoder and the
 * channel adapters. */
#ifndef PO_UTF8_H
#define PO_UTF8_H

#include <stddef.h>

/* Checks s[0..n) is strict UTF-8 without NUL: no overlong forms, no
 * surrogates, nothing above U+10FFFF (NUL is refused because every consumer
 * treats strings as C strings). Returns 0 when valid, else 1 + the offset of
 * the first bad byte. */
size_t po_utf8_bad(const void *s, size_t n);

#endif
