/* po_avro_wire: a record's Avro binary encoding written straight from our
 * own structs, and read straight into them, without avro-c's generic values
 * (docs/avro.md, "Direct writers and readers").
 *
 * A direct writer is written for one layout of its schema, named by that
 * layout's fingerprint; po_avro_wire_encode uses it only while the current
 * schema has that fingerprint, so a schema that changes falls back to the
 * generic path until the writer is updated (check_messages fails meanwhile).
 * A writer that meets what it cannot write exactly as the generic path
 * would (a string that is not UTF-8 or holds a NUL, an enum out of range, a
 * map key given twice, a NULL where a string is required) sets fallback:
 * po_avro_wire_encode then takes back what was written and returns 0, and
 * the caller encodes through avro-c, which gives the authoritative result
 * or error. */
#ifndef PO_AVRO_WIRE_H
#define PO_AVRO_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "po/avro.h"
#include "po/dynbuf.h"
#include "po/utf8.h"

typedef struct po_wire {
        po_dynbuf_t *out;
        po_err_t err; /* the buffer failed (it is released, as po_dynbuf does) */
        int fallback; /* the generic path must write this one */
} po_wire_t;

typedef void (*po_wire_fn)(po_wire_t *w, const void *what);

/* Appends to out the single-object encoding of what with fn, the writer of
 * the current schema name for the layout layout_fp. Returns 1 when it did
 * the work, with *err PO_OK or the buffer's error; 0 when the caller must
 * use the generic path (out is as it was). */
int po_avro_wire_encode(po_avro_t *avro, const char *name, uint64_t layout_fp,
                        po_wire_fn fn, const void *what, po_dynbuf_t *out, po_err_t *err);

/* 0 makes po_avro_wire_encode and po_avro_wire_decode always answer 0
 * (tests, benchmarks: the generic path alone); 1, the default, uses the
 * direct writers and readers. */
void po_avro_set_direct(po_avro_t *avro, int on);

/* How many messages the direct writers have written, and the direct readers
 * read, with this registry. */
uint64_t po_avro_direct_writes(const po_avro_t *avro);
uint64_t po_avro_direct_reads(const po_avro_t *avro);

static inline unsigned char *po_wire_room(po_wire_t *w, size_t n)
{
        po_err_t e;

        if (w->err || w->fallback)
                return NULL;
        if (n >= w->out->max - w->out->len) {
                /* Near out's limit: the generic path measures exactly. */
                w->fallback = 1;
                return NULL;
        }
        e = po_dynbuf_reserve(w->out, n);
        if (e) {
                w->err = e;
                return NULL;
        }
        return (unsigned char *)w->out->data + w->out->len;
}

/* A long (and an int, an enum index, a block count): zig-zag varint. */
static inline void po_wire_long(po_wire_t *w, int64_t v)
{
        uint64_t z = v < 0 ? ~((uint64_t)v << 1) : (uint64_t)v << 1;
        unsigned char *p = po_wire_room(w, 10);
        size_t n = 0;

        if (!p)
                return;
        while (z > 0x7f) {
                p[n++] = (unsigned char)(z | 0x80);
                z >>= 7;
        }
        p[n++] = (unsigned char)z;
        w->out->len += n;
        w->out->data[w->out->len] = '\0';
}

/* An array or map of n items as one block: its count before the items
 * (nothing when empty), po_wire_block_end after them. */
static inline void po_wire_block(po_wire_t *w, size_t n)
{
        if (n)
                po_wire_long(w, (int64_t)n);
}

static inline void po_wire_block_end(po_wire_t *w)
{
        po_wire_long(w, 0);
}

/* s[0..n) as an Avro string: UTF-8 without NUL, or the generic path. */
static inline void po_wire_str(po_wire_t *w, const char *s, size_t n)
{
        unsigned char *p;

        if (n && (!s || po_utf8_bad(s, n))) {
                w->fallback = 1;
                return;
        }
        po_wire_long(w, (int64_t)n);
        p = po_wire_room(w, n);
        if (!p)
                return;
        if (n)
                memcpy(p, s, n);
        w->out->len += n;
        w->out->data[w->out->len] = '\0';
}

/* A required C string (NULL: the generic path). */
static inline void po_wire_cstr(po_wire_t *w, const char *s)
{
        if (!s) {
                w->fallback = 1;
                return;
        }
        po_wire_str(w, s, strlen(s));
}

/* The C string in a char[size] field (a currency, a code): the generic path
 * when it is not terminated within size. */
static inline void po_wire_cstr_in(po_wire_t *w, const char *s, size_t size)
{
        size_t n = strnlen(s, size);

        if (n == size) {
                w->fallback = 1;
                return;
        }
        po_wire_str(w, s, n);
}

/* ["null", string]: NULL is null. */
static inline void po_wire_opt_cstr(po_wire_t *w, const char *s)
{
        po_wire_long(w, s != NULL);
        if (s)
                po_wire_str(w, s, strlen(s));
}

/* ["null", long]. */
static inline void po_wire_opt_long(po_wire_t *w, int present, int64_t v)
{
        po_wire_long(w, present != 0);
        if (present)
                po_wire_long(w, v);
}

/* An enum of nsymbols symbols. */
static inline void po_wire_enum(po_wire_t *w, int v, int nsymbols)
{
        if (v < 0 || v >= nsymbols) {
                w->fallback = 1;
                return;
        }
        po_wire_long(w, v);
}

static inline void po_wire_bool(po_wire_t *w, int v)
{
        unsigned char *p;

        if (v != 0 && v != 1) {
                w->fallback = 1;
                return;
        }
        p = po_wire_room(w, 1);
        if (!p)
                return;
        *p = (unsigned char)v;
        w->out->len++;
        w->out->data[w->out->len] = '\0';
}

/* ---- reading (direct readers) ----
 *
 * A direct reader parses a datum of the layout it was written for into our
 * struct, as strictly as po_avro_decode's walk (shortest varints, lengths
 * and counts within the bytes left, UTF-8 without NUL, indexes in range, no
 * trailing bytes, at most PO_AVRO_MAX_ITEMS items), and sets bail on
 * anything else: on anything it does not take exactly as the generic path
 * would (a second array block, a negative block count, a map key given
 * twice, a count beyond what the typed decoder allows) as well as on bad
 * bytes. po_avro_wire_decode then answers 0 and the caller decodes through
 * the generic path, which gives the authoritative result or error. */
typedef struct po_rd {
        const unsigned char *p;
        size_t len, pos;
        size_t items; /* array items and map entries so far */
        int bail;
} po_rd_t;

typedef void (*po_rd_fn)(po_rd_t *r, void *what);

/* Reads the single-object message buf[0..len) of the current schema name,
 * laid out as layout_fp, with fn into what. Returns 1 when fn read it all
 * (what is filled), 0 when the caller must decode through the generic
 * path (what may hold a partial read: the caller clears it). */
int po_avro_wire_decode(po_avro_t *avro, const char *name, uint64_t layout_fp,
                        po_rd_fn fn, const void *buf, size_t len, void *what);

/* A zig-zag varint of at most 10 bytes, in its shortest form. */
static inline int64_t po_rd_long(po_rd_t *r)
{
        uint64_t raw = 0;
        unsigned char b;
        int i;

        for (i = 0; i < 10 && !r->bail; i++) {
                if (r->pos >= r->len)
                        break;
                b = r->p[r->pos++];
                raw |= (uint64_t)(b & 0x7f) << (7 * i);
                if (b & 0x80)
                        continue;
                if ((i > 0 && b == 0) || (i == 9 && b > 0x01))
                        break;
                return (int64_t)(raw >> 1) ^ -(int64_t)(raw & 1);
        }
        r->bail = 1;
        return 0;
}

/* An int-sized index (enum, union) in 0..n-1 (at most 5 bytes). */
static inline int po_rd_index(po_rd_t *r, int n)
{
        size_t start = r->pos;
        int64_t v = po_rd_long(r);

        if (r->bail || r->pos - start > 5 || v < 0 || v >= n) {
                r->bail = 1;
                return 0;
        }
        return (int)v;
}

static inline int po_rd_bool(po_rd_t *r)
{
        if (r->bail || r->pos >= r->len || r->p[r->pos] > 1) {
                r->bail = 1;
                return 0;
        }
        return r->p[r->pos++];
}

/* A string: *n bytes at the returned pointer, in the message (not
 * NUL-terminated). */
static inline const char *po_rd_str(po_rd_t *r, size_t *n)
{
        int64_t l = po_rd_long(r);
        const char *s;

        *n = 0;
        if (r->bail || l < 0 || (uint64_t)l > r->len - r->pos ||
            po_utf8_bad(r->p + r->pos, (size_t)l)) {
                r->bail = 1;
                return NULL;
        }
        s = (const char *)r->p + r->pos;
        r->pos += (size_t)l;
        *n = (size_t)l;
        return s;
}

/* The first block count of an array or map: at most max items, each taking
 * at least one byte. The caller reads the items, then po_rd_end. */
static inline size_t po_rd_count(po_rd_t *r, size_t max)
{
        int64_t c = po_rd_long(r);

        if (r->bail || c < 0 || (uint64_t)c > max || (uint64_t)c > r->len - r->pos ||
            (uint64_t)c > PO_AVRO_MAX_ITEMS - r->items) {
                r->bail = 1;
                return 0;
        }
        r->items += (size_t)c;
        return (size_t)c;
}

/* After a block of n > 0 items: the 0 that ends the array (one block only). */
static inline void po_rd_end(po_rd_t *r, size_t n)
{
        if (n && po_rd_long(r) != 0)
                r->bail = 1;
}

#endif
