/* po_dynbuf: a growable, always NUL-terminated byte buffer (after curl's
 * dynbuf). On an allocation failure the buffer is released and every later
 * append fails too, so callers may check once at the end. */
#ifndef PO_DYNBUF_H
#define PO_DYNBUF_H

#include <stddef.h>

#include "po/err.h"

typedef struct po_dynbuf {
        char *data; /* NULL until the first append; NUL-terminated after */
        size_t len; /* bytes used, not counting the NUL */
        size_t cap; /* bytes allocated */
        size_t max; /* hard limit on len; appends beyond it fail */
        int failed; /* an append failed; the contents are gone */
} po_dynbuf_t;

/* Prepares an empty buffer that will refuse to grow past max bytes. No allocation. */
void po_dynbuf_init(po_dynbuf_t *b, size_t max);
/* Frees the contents; b may be reused after po_dynbuf_init. */
void po_dynbuf_release(po_dynbuf_t *b);
/* Empties the buffer and keeps its memory (and clears a failure). */
void po_dynbuf_reset(po_dynbuf_t *b);
po_err_t po_dynbuf_add(po_dynbuf_t *b, const void *data, size_t len);
/* Makes room for extra more bytes (and the NUL) without appending: to write
 * into data + len directly. Fails as po_dynbuf_add would. */
po_err_t po_dynbuf_reserve(po_dynbuf_t *b, size_t extra);
po_err_t po_dynbuf_addf(po_dynbuf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The contents ("" when empty); valid until the next call on b. */
const char *po_dynbuf_str(const po_dynbuf_t *b);

#endif
