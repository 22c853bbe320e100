/* po_order_avro: the canonical order (po_order_t) to and from its Avro
 * message (schemas/Order.avsc, single-object encoding). */
#ifndef PO_ORDER_AVRO_H
#define PO_ORDER_AVRO_H

#include "po/avro.h"
#include "po/avro_wire.h"
#include "po/order.h"

/* The fingerprint of the Order layout po_order_wire writes (schemas/Order.avsc
 * as of its version 2). */
#define PO_ORDER_LAYOUT 0xe6fe66b88970becaULL

/* Appends the encoding of o to out. Returns PO_OK, PO_ERR_INVALID_ARG with a
 * message (a string that is not UTF-8...), PO_ERR_NOMEM. */
po_err_t po_order_encode(po_avro_t *avro, const po_order_t *o, po_dynbuf_t *out,
                         char *errstr, size_t errstr_size);

/* Decodes an Order message into o (initialised by the caller; strings and
 * arrays go to its arena). Errors as po_avro_decode. */
po_err_t po_order_decode(po_avro_t *avro, const void *buf, size_t len, po_order_t *o,
                         char *errstr, size_t errstr_size);

/* The two halves of the codec above, for messages that hold an Order record
 * (ValidatedOrder). po_order_avro_fill sets every field of v, an empty
 * avro-c value of the current Order record, from o (a NULL required string
 * becomes ""); po_order_avro_read copies the Order record v into o
 * (initialised by the caller; strings and arrays go to its arena) without
 * checking bounds. Both return 0, or -1 with avro-c's message in
 * avro_strerror() (or an arena that is full). */
int po_order_avro_fill(avro_value_t *v, const po_order_t *o);
/* The direct writer of the Order record (po/avro_wire.h), for the same
 * messages: writes o as po_order_avro_fill and avro-c would. */
void po_order_wire(po_wire_t *w, const po_order_t *o);
/* The direct reader of the Order record: reads it into o as
 * po_order_avro_read would, with at most max_lines lines, max_codes codes
 * and max_attrs attributes (more: r->bail, as on anything else it does not
 * take exactly as the generic path would). */
void po_order_wire_read(po_rd_t *r, po_order_t *o, size_t max_lines, size_t max_codes,
                        size_t max_attrs);
/* For direct readers of records with strings and arrays: the string read,
 * copied into a (NUL-terminated; its length in *len unless len is NULL), and
 * n zeroed items of size bytes (room for one when n is 0) from a. Both set
 * r->bail and return NULL when r had bailed or a is full. */
const char *po_rd_arena_str(po_rd_t *r, po_arena_t *a, size_t *len);
/* A ["null", string]: NULL when null. */
const char *po_rd_arena_opt_str(po_rd_t *r, po_arena_t *a);
void *po_rd_arena_items(po_rd_t *r, po_arena_t *a, size_t n, size_t size);
int po_order_avro_read(po_order_t *o, avro_value_t *v);

#endif
