/* po_pricing: the pure pricing core of PRICING_SPEC.md: per-code checks,
 * valuation, stacking, largest-remainder allocation, tax and totals. No I/O,
 * no global state, no floating point.
 *
 * The caller describes one cart in a po_pricing_cart_t (every pointer it
 * holds stays owned by the caller and must outlive the call) and gets a
 * po_pricing_result_t whose arrays live in a po_pricing_ws_t workspace.
 * The workspace grows to the largest cart seen and is then reused: pricing
 * a stream of carts allocates nothing once it has warmed up.
 *
 * Input is expected to be within the spec's bounds already (the JSON layer,
 * po_calcjson, enforces them with BAD_INPUT); po_pricing_run checks the
 * bounds it relies on for exactness again and returns PO_ERR_BAD_INPUT
 * rather than compute a wrong number. */
#ifndef PO_PRICING_H
#define PO_PRICING_H

#include <stddef.h>
#include <stdint.h>

#include "po/err.h"
#include "po/money.h"

#define PO_PRICING_MAX_LINES 1000
#define PO_PRICING_MAX_CODES 20
#define PO_PRICING_MAX_UNIT_PRICE 10000000000LL    /* 10^10 */
#define PO_PRICING_MAX_QUANTITY 1000000LL          /* 10^6 */
#define PO_PRICING_MAX_SUBTOTAL 1000000000000000LL /* 10^15 */
#define PO_PRICING_MAX_VALUE 1000000000000000LL    /* 10^15 */
#define PO_PRICING_MAX_BP 10000
#define PO_PRICING_MAX_PPM 1000000
#define PO_PRICING_CODE_MIN 3
#define PO_PRICING_CODE_MAX 64

typedef enum po_tax_mode { PO_TAX_EXCLUSIVE = 0, PO_TAX_INCLUSIVE } po_tax_mode_t;
typedef enum po_stacking { PO_STACK_BEST_ONLY = 0, PO_STACK_COMBINE } po_stacking_t;
typedef enum po_code_status {
        PO_CODE_ACTIVE = 0,
        PO_CODE_PAUSED,
        PO_CODE_ARCHIVED
} po_code_status_t;
typedef enum po_code_type { PO_CODE_PERCENTAGE = 0, PO_CODE_FIXED } po_code_type_t;

/* Why a requested code was not applied (section 4 in check order, then 6). */
typedef enum po_reason {
        PO_REASON_NONE = 0, /* applied */
        PO_REASON_MALFORMED_CODE,
        PO_REASON_DUPLICATE_CODE,
        PO_REASON_UNKNOWN_CODE,
        PO_REASON_INACTIVE,
        PO_REASON_NOT_YET_VALID,
        PO_REASON_EXPIRED,
        PO_REASON_CHANNEL_NOT_ALLOWED,
        PO_REASON_CUSTOMER_REQUIRED,
        PO_REASON_CUSTOMER_NOT_ALLOWED,
        PO_REASON_TIER_NOT_ELIGIBLE,
        PO_REASON_USAGE_LIMIT_REACHED,
        PO_REASON_CUSTOMER_LIMIT_REACHED,
        PO_REASON_CURRENCY_MISMATCH,
        PO_REASON_MIN_SPEND_NOT_MET,
        PO_REASON_MAX_SPEND_EXCEEDED,
        PO_REASON_NO_ELIGIBLE_ITEMS,
        PO_REASON_ITEM_UNAVAILABLE,
        PO_REASON_NOT_COMBINABLE,
        PO_REASON_NOTHING_TO_DISCOUNT,
        PO_REASON__COUNT
} po_reason_t;

/* The spec's upper-case name ("UNKNOWN_CODE"); "" for PO_REASON_NONE. */
const char *po_reason_str(po_reason_t reason);

/* An instant: seconds since the Unix epoch and nanoseconds (0..999999999). */
typedef struct po_instant {
        int64_t sec;
        int32_t nsec;
} po_instant_t;

/* -1, 0 or 1. */
int po_instant_cmp(po_instant_t a, po_instant_t b);

/* Parses an RFC 3339 timestamp ("2026-11-24T10:00:00Z", fractions of a second
 * up to 9 digits, "Z" or a numeric offset) of len bytes. Returns PO_OK or
 * PO_ERR_BAD_INPUT (never a partial or clamped result). */
po_err_t po_instant_parse(const char *s, size_t len, po_instant_t *out);

/* A counted string; not necessarily NUL-terminated. */
typedef struct po_str {
        const char *ptr;
        size_t len;
} po_str_t;

typedef struct po_str_list {
        const po_str_t *items;
        size_t count;
        int present; /* 0: the field is absent (no restriction) */
} po_str_list_t;

typedef struct po_tier_value {
        po_str_t tier;
        int64_t value;
} po_tier_value_t;

/* An optional integer. */
typedef struct po_opt_i64 {
        int present;
        int64_t value;
} po_opt_i64_t;

typedef struct po_line {
        po_str_t id, sku, category;
        int64_t unit_price;   /* 0..10^10 */
        int64_t quantity;     /* 1..10^6 */
        int64_t tax_rate_ppm; /* 0..10^6 */
        po_opt_i64_t stock;
        po_opt_i64_t unit_cost;
} po_line_t;

typedef struct po_targets {
        po_str_list_t skus, categories, exclude_skus, exclude_categories;
        po_opt_i64_t low_stock_max;
        po_opt_i64_t max_margin_bp;
} po_targets_t;

typedef struct po_code_def {
        char code[PO_PRICING_CODE_MAX + 1]; /* normalized; see po_code_normalize */
        size_t code_len;
        po_code_status_t status;
        po_code_type_t type;
        int64_t value;
        char currency[4]; /* "" when absent */
        po_opt_i64_t min_spend, max_spend, max_discount;
        int has_starts_at, has_expires_at;
        po_instant_t starts_at, expires_at;
        po_opt_i64_t usage_limit, per_customer_limit;
        po_str_list_t tiers;
        const po_tier_value_t *tier_values;
        size_t tier_value_count;
        po_str_list_t channels;
        int has_customer_id;
        po_str_t customer_id;
        po_targets_t targets;
        int combinable;
        int64_t priority;
        /* Redemptions already recorded (the case's usage[code]). */
        int64_t used_total, used_by_customer;
} po_code_def_t;

typedef struct po_pricing_cart {
        char currency[4];
        po_tax_mode_t tax_mode;
        po_rounding_t rounding;
        po_stacking_t stacking;
        po_instant_t now;
        int has_channel;
        po_str_t channel;
        int has_customer_id, has_tier;
        po_str_t customer_id, tier;
        const po_line_t *lines;
        size_t line_count;     /* 1..1000 */
        const po_str_t *codes; /* as requested, before normalization */
        size_t code_count;     /* 1..20 (0..20 with codes_optional) */
        /* The pipeline prices orders without codes too (totals and tax);
         * the spec's cases (promo-calc) always have 1..20. */
        int codes_optional;
        const po_code_def_t *defs; /* unique normalized codes */
        size_t def_count;
} po_pricing_cart_t;

typedef struct po_line_result {
        int64_t subtotal, discount, net, tax, total;
        int available;
} po_line_result_t;

typedef struct po_allocation {
        size_t line; /* index into the cart's lines */
        int64_t amount;
} po_allocation_t;

/* One applied code: its receipt line. */
typedef struct po_applied {
        size_t request_index; /* which requested code */
        const po_code_def_t *def;
        int64_t amount;
        const po_allocation_t *allocations; /* non-zero amounts, in line order */
        size_t allocation_count;
} po_applied_t;

typedef struct po_rejected {
        size_t request_index;
        po_reason_t reason;
} po_rejected_t;

typedef struct po_pricing_result {
        int64_t subtotal, discount_total, tax_total, tax_total_before, grand_total;
        const po_line_result_t *lines; /* one per cart line */
        const po_applied_t *applied;   /* plan order */
        size_t applied_count;
        const po_rejected_t *rejected; /* request order */
        size_t rejected_count;
        /* Normalized spelling of each requested code (index = request index),
         * NUL-terminated; up to the input's length (a malformed code may be long). */
        const char *const *normalized;
} po_pricing_result_t;

typedef struct po_pricing_ws po_pricing_ws_t;

/* Creates an empty workspace. Returns NULL when out of memory. */
po_pricing_ws_t *po_pricing_ws_new(void);
/* Frees ws and every result that pointed into it. Accepts NULL. */
void po_pricing_ws_destroy(po_pricing_ws_t *ws);

/* Prices cart. On PO_OK, *out points into ws and is valid until the next
 * po_pricing_run on ws or its destruction. Returns PO_ERR_BAD_INPUT when the
 * cart breaks a bound of section 1 (message in errstr), PO_ERR_NOMEM when
 * the workspace could not grow. */
po_err_t po_pricing_run(po_pricing_ws_t *ws, const po_pricing_cart_t *cart,
                        po_pricing_result_t *out, char *errstr, size_t errstr_size);

/* Normalizes a code: trims ASCII white space and upper-cases ASCII letters,
 * writing at most out_size - 1 bytes and a NUL. Returns the normalized
 * length (which may exceed out_size - 1: the output is then truncated, and
 * the code is malformed anyway). */
size_t po_code_normalize(const char *in, size_t len, char *out, size_t out_size);

/* Whether a normalized code is 3..64 characters of A-Z 0-9 - _. */
int po_code_is_valid(const char *code, size_t len);

/* Writes a human-readable receipt description of an applied code, e.g.
 * "SAVE10: 10% off eligible items" or "WELCOME5: 5.00 USD off", into buf.
 * Returns the length snprintf would have written. */
int po_pricing_describe(const po_applied_t *applied, const po_pricing_cart_t *cart,
                        char *buf, size_t size);

#endif
