/* po_calcjson: the JSON face of the pricing core (PRICING_SPEC.md sections 2,
 * 3, 8 and 9): one case in, one result out. Every input is hostile: any
 * violation of the spec's shapes or bounds yields the BAD_INPUT error object
 * with a message naming the field, never a crash and never a clamp. */
#ifndef PO_CALCJSON_H
#define PO_CALCJSON_H

#include <stddef.h>

#include "po/dynbuf.h"
#include "po/err.h"
#include "po/pricing.h"

struct json_t; /* jansson's */

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

/* Where po_calcjson_process_tree wrote parts of a result: [0] is the offset
 * in out of a member's value, [1] the offset just past it. */
typedef struct po_calcjson_spans {
        int error;    /* 1 when out got the error object (no spans then) */
        size_t start; /* out->len when the call began */
        size_t discount_total[2], applied[2], rejected[2];
} po_calcjson_spans_t;

/* po_calcjson_process of the case already parsed into root (a JSON object
 * that json_loadb with JSON_REJECT_DUPLICATES would give for the text): the
 * same result or error object, byte for byte, without serializing and
 * parsing the case again. root is borrowed and not modified. spans may be
 * NULL; else it tells where the result's discount_total, applied and
 * rejected values are in out (error = 1 when an error object was written).
 * Returns as po_calcjson_process. */
po_err_t po_calcjson_process_tree(po_calcjson_t *cj, struct json_t *root, unsigned flags,
                                  po_dynbuf_t *out, po_calcjson_spans_t *spans);

/* Memory for po_calcjson_parse_def: size bytes aligned for any type, or NULL
 * when none is left. Nothing is freed through it (an arena fits). */
typedef void *(*po_calcjson_alloc_fn)(void *ctx, size_t size);

/* Parses the code definition (section 3) in the JSON object obj exactly as
 * po_calcjson_process parses each entry of a case's "definitions": the same
 * checks and the same messages, whose field names are prefixed with path
 * ("" or "definitions[3]."). Members it does not know are ignored.
 * Every string and list *out points to is copied into memory from
 * alloc(alloc_ctx, ...), so *out does not depend on obj afterwards; what was
 * allocated before an error is left to the allocator's owner. used_total and
 * used_by_customer are 0. Returns PO_OK, PO_ERR_BAD_INPUT with the message in
 * errstr, PO_ERR_NOMEM, or PO_ERR_INVALID_ARG for a NULL argument. */
po_err_t po_calcjson_parse_def(struct json_t *obj, const char *path,
                               po_calcjson_alloc_fn alloc, void *alloc_ctx,
                               po_code_def_t *out, char *errstr, size_t errstr_size);

#endif
