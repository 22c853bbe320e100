/* po_calcjson: the JSON face of the pricing core (PRICING_SPEC.md sections 2,
 * 3, 8 and 9): one case in, one result out. Every input is hostile: any
 * violation of the spec's shapes or bounds yields the BAD_INPUT error object
 * with a message naming the field, never a crash and never a clamp. */
#ifndef PO_CALCJSON_H
#define PO_CALCJSON_H

#include <stddef.h>

#include "po/dynbuf.h"
#include "po/err.h"

typedef struct po_calcjson po_calcjson_t;

/* Options of po_calcjson_process. */
#define PO_CALCJSON_RECEIPTS 0x1 /* add "description" to each applied code */

/* Creates a reusable context (parser buffers and a pricing workspace).
 * Returns NULL when out of memory. */
po_calcjson_t *po_calcjson_new(void);
/* Accepts NULL. */
void po_calcjson_destroy(po_calcjson_t *cj);

/* Appends to out the result of the case in json[0..len): the spec's result
 * object, or {"error":{"code":"BAD_INPUT","message":...}}. No newline.
 * Returns PO_OK when a result or an error object was written, PO_ERR_NOMEM
 * when neither could be (out is then failed). */
po_err_t po_calcjson_process(po_calcjson_t *cj, const char *json, size_t len,
                             unsigned flags, po_dynbuf_t *out);

#endif
