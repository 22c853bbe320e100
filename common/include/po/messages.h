/* po_messages: the pipeline's messages after intake, in memory and on the
 * wire (schemas/CodeDefinition.avsc, ValidatedOrder.avsc, PricedOrder.avsc,
 * UsageEvent.avsc), plus code definitions to and from the JSON of
 * PRICING_SPEC.md section 3 (what PostgreSQL, the admin API and promo-calc
 * hold).
 *
 * Every decoded string and array lives in an arena (po_arena_t of
 * po/order.h) owned by the caller or by the message: release it and
 * everything goes at once. Decoders treat their input as hostile: bounds of
 * the pricing spec are enforced (a definition outside them is an error, never
 * clamped), and errors name the field. */
#ifndef PO_MESSAGES_H
#define PO_MESSAGES_H

#include <stddef.h>
#include <stdint.h>

#include "po/avro.h"
#include "po/dynbuf.h"
#include "po/err.h"
#include "po/order.h"
#include "po/pricing.h"

/* ---- CodeDefinition ---- */

/* A definition with the bookkeeping the spec's struct does not carry.
 * Times (version, updated_at) are microseconds since the epoch. */
typedef struct po_codedef {
        po_code_def_t def; /* used_total / used_by_customer are not part of it */
        int64_t version;   /* increases with every change (admin) */
        int64_t updated_at;
} po_codedef_t;

/* Spec JSON object (section 3) -> def. Strings in arena. Same validation as
 * promo-calc (bounds, currencies, percentage <= 10000, code normalized and
 * valid). "version" and "updated_at" (integers) are read when present, else
 * 0. Returns PO_ERR_BAD_INPUT with a message naming the field. */
po_err_t po_codedef_from_json(const char *json, size_t len, po_arena_t *arena,
                              po_codedef_t *out, char *errstr, size_t errstr_size);

/* def -> the spec JSON object (one line, no trailing newline), appended to
 * out; includes version and updated_at. Instants as RFC 3339 UTC. */
po_err_t po_codedef_to_json(const po_codedef_t *cd, po_dynbuf_t *out);

/* Avro CodeDefinition (single-object encoding) <-> def. */
po_err_t po_codedef_encode(po_avro_t *avro, const po_codedef_t *cd, po_dynbuf_t *out,
                           char *errstr, size_t errstr_size);
po_err_t po_codedef_decode(po_avro_t *avro, const void *buf, size_t len,
                           po_arena_t *arena, po_codedef_t *out, char *errstr,
                           size_t errstr_size);

/* CRC-64-AVRO of the definition's Avro binary datum (without the
 * single-object header), as ValidatedOrder.definition_fingerprint. */
po_err_t po_codedef_fingerprint(po_avro_t *avro, const po_codedef_t *cd, int64_t *fp);

/* ---- ValidatedOrder ---- */

typedef struct po_line_stock {
        const char *line_id;
        int has_stock;
        int64_t stock;
} po_line_stock_t;

typedef struct po_decision {
        const char *requested; /* as requested */
        const char *code;      /* normalized */
        int applied;
        const char *reason; /* NULL when applied */
        int has_definition;
        po_codedef_t definition;
        int has_fingerprint;
        int64_t fingerprint;
        int has_usage; /* usage_total and usage_customer (both or neither) */
        int64_t usage_total, usage_customer;
        const char *tier;           /* NULL when none */
        const char *reservation_id; /* NULL unless applied */
} po_decision_t;

typedef struct po_validated {
        po_order_t order; /* its arena holds everything below too */
        po_stacking_t stacking;
        po_rounding_t rounding;
        po_line_stock_t *line_stock; /* one per order line, same order */
        size_t line_stock_count;
        po_decision_t *decisions; /* one per requested code, request order */
        size_t decision_count;
        int64_t validated_at; /* microseconds */
} po_validated_t;

/* Appends the encoding of v to out. */
po_err_t po_validated_encode(po_avro_t *avro, const po_validated_t *v, po_dynbuf_t *out,
                             char *errstr, size_t errstr_size);
/* Decodes into v, whose order must have been initialised with po_order_init
 * (everything lands in v->order.arena; po_order_release frees it all). */
po_err_t po_validated_decode(po_avro_t *avro, const void *buf, size_t len,
                             po_validated_t *v, char *errstr, size_t errstr_size);

/* ---- PricedOrder ---- */

typedef struct po_priced_alloc {
        const char *line_id;
        int64_t amount;
} po_priced_alloc_t;

typedef struct po_priced_receipt {
        const char *code, *description;
        int64_t amount;
        po_priced_alloc_t *allocations;
        size_t allocation_count;
} po_priced_receipt_t;

typedef struct po_priced_line {
        const char *line_id;
        int64_t subtotal, discount, net, tax, total;
        int available;
} po_priced_line_t;

typedef struct po_priced_reject {
        const char *code, *reason;
} po_priced_reject_t;

typedef struct po_priced {
        const char *channel, *account, *external_id, *order_id;
        char currency[4];
        int64_t subtotal, discount_total, tax_total, tax_total_before, grand_total;
        po_priced_line_t *lines;
        size_t line_count;
        po_priced_receipt_t *receipt;
        size_t receipt_count;
        po_priced_reject_t *rejected;
        size_t rejected_count;
        int64_t priced_at; /* microseconds */
} po_priced_t;

po_err_t po_priced_encode(po_avro_t *avro, const po_priced_t *p, po_dynbuf_t *out,
                          char *errstr, size_t errstr_size);
po_err_t po_priced_decode(po_avro_t *avro, const void *buf, size_t len, po_arena_t *arena,
                          po_priced_t *out, char *errstr, size_t errstr_size);

/* ---- UsageEvent ---- */

typedef struct po_usage_event {
        const char *event_id, *order_id, *channel, *account, *code;
        const char *customer_id; /* NULL when anonymous */
        int applied;
        const char *reason; /* NULL when applied */
        int64_t value_applied;
        char currency[4];
        int64_t occurred_at; /* microseconds */
} po_usage_event_t;

po_err_t po_usage_encode(po_avro_t *avro, const po_usage_event_t *e, po_dynbuf_t *out,
                         char *errstr, size_t errstr_size);
po_err_t po_usage_decode(po_avro_t *avro, const void *buf, size_t len, po_arena_t *arena,
                         po_usage_event_t *out, char *errstr, size_t errstr_size);

#endif
