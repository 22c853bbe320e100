/* po_cart: the pricing core's cart (po_pricing_cart_t) built from a
 * canonical order, the definitions of its codes, the usage counts and the
 * stock levels: the one place the validator, the calculator and the checkout
 * endpoint turn an order into a pricing case, so they price it identically. */
#ifndef PO_CART_H
#define PO_CART_H

#include <stddef.h>

#include "po/err.h"
#include "po/order.h"
#include "po/pricing.h"

typedef struct po_cart_builder {
        po_pricing_cart_t cart;
        po_line_t *lines;
        size_t cap_lines;
        po_str_t *codes;
        size_t cap_codes;
        po_code_def_t *defs;
        size_t cap_defs;
} po_cart_builder_t;

void po_cart_builder_init(po_cart_builder_t *b);
void po_cart_builder_release(po_cart_builder_t *b);

/* Builds b->cart for order o: its lines (stock[i] / has_stock[i] give line
 * i's units available; both may be NULL for unknown stock), its requested
 * codes, the customer id and tier (tier may override the order's own: the
 * validator's resolved tier; NULL keeps the order's), and copies of defs
 * (unique normalized codes; used_total / used_by_customer as given). The cart
 * points into o, tier and the definitions' strings: keep them alive while it
 * is used. An order without codes is fine (codes_optional). Returns
 * PO_ERR_NOMEM, or PO_ERR_BAD_INPUT when the order has no line. */
po_err_t po_cart_build(po_cart_builder_t *b, const po_order_t *o, const int64_t *stock,
                       const int *has_stock, const char *tier, const po_code_def_t *defs,
                       size_t ndefs, po_stacking_t stacking, po_rounding_t rounding,
                       char *errstr, size_t errstr_size);

/* The cart's definition for a normalized code, or NULL. */
po_code_def_t *po_cart_def(po_cart_builder_t *b, const char *code);

#endif
