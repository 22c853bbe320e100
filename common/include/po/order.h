/* po_order: the canonical order in memory (schemas/Order.avsc), what every
 * channel adapter produces. Strings and arrays live in the order's arena:
 * po_order_release frees all of it at once. */
#ifndef PO_ORDER_H
#define PO_ORDER_H

#include <stddef.h>
#include <stdint.h>

#include "po/err.h"
#include "po/pricing.h"

/* A bump allocator of 4 KiB+ blocks; released as a whole. */
typedef struct po_arena {
        struct po_arena_block *head;
        size_t total; /* bytes handed out */
        size_t limit; /* refuse to grow beyond this (hostile input) */
} po_arena_t;

void po_arena_init(po_arena_t *a, size_t limit);
void po_arena_release(po_arena_t *a);
/* size bytes aligned for any type, or NULL when out of memory or over limit. */
void *po_arena_alloc(po_arena_t *a, size_t size);
/* A NUL-terminated copy of s[0..len), or NULL. */
char *po_arena_strndup(po_arena_t *a, const char *s, size_t len);

typedef struct po_order_line {
        const char *line_id, *sku, *category;
        int64_t unit_price; /* minor units, in the price basis of tax_mode */
        int64_t quantity;
        int64_t tax_rate_ppm;
        int has_unit_cost;
        int64_t unit_cost;
} po_order_line_t;

typedef struct po_order_attr {
        const char *key, *value;
} po_order_attr_t;

typedef struct po_order {
        const char *channel, *account, *external_id, *order_id;
        int has_customer;
        const char *customer_id, *customer_tier, *customer_email; /* each may be NULL */
        char currency[4];
        po_tax_mode_t tax_mode;
        po_order_line_t *lines;
        size_t line_count;
        const char **codes;
        size_t code_count;
        int64_t placed_at_us, received_at_us;
        po_order_attr_t *attrs;
        size_t attr_count;
        po_arena_t arena;
} po_order_t;

/* Prepares an empty order whose arena refuses to grow beyond arena_limit. */
void po_order_init(po_order_t *o, size_t arena_limit);
/* Frees everything the order holds; it may be initialised again. */
void po_order_release(po_order_t *o);

/* The order's value in minor units (sum of unit_price * quantity), saturated
 * at INT64_MAX; for dead-letter priorities. */
int64_t po_order_value(const po_order_t *o);

#endif
