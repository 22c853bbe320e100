/* Orders to pricing carts (see po/cart.h). */
#include "po/cart.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void po_cart_builder_init(po_cart_builder_t *b)
{
        memset(b, 0, sizeof(*b));
}

void po_cart_builder_release(po_cart_builder_t *b)
{
        free(b->lines);
        free(b->codes);
        free(b->defs);
        memset(b, 0, sizeof(*b));
}

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
        void *n;

        if (need <= *cap)
                return 0;
        n = realloc(*p, need * size);
        if (!n)
                return -1;
        *p = n;
        *cap = need;
        return 0;
}

static po_str_t str_of(const char *s)
{
        po_str_t r = {s ? s : "", s ? strlen(s) : 0};

        return r;
}

po_err_t po_cart_build(po_cart_builder_t *b, const po_order_t *o, const int64_t *stock,
                       const int *has_stock, const char *tier, const po_code_def_t *defs,
                       size_t ndefs, po_stacking_t stacking, po_rounding_t rounding,
                       char *errstr, size_t errstr_size)
{
        po_pricing_cart_t *c = &b->cart;
        size_t i;

        if (o->line_count == 0) {
                snprintf(errstr, errstr_size, "the order has no line");
                return PO_ERR_BAD_INPUT;
        }
        if (grow((void **)&b->lines, &b->cap_lines, o->line_count, sizeof(*b->lines)) ||
            grow((void **)&b->codes, &b->cap_codes, o->code_count ? o->code_count : 1,
                 sizeof(*b->codes)) ||
            grow((void **)&b->defs, &b->cap_defs, ndefs ? ndefs : 1, sizeof(*b->defs))) {
                snprintf(errstr, errstr_size, "out of memory");
                return PO_ERR_NOMEM;
        }
        memset(c, 0, sizeof(*c));
        memcpy(c->currency, o->currency, sizeof(c->currency));
        c->tax_mode = o->tax_mode;
        c->rounding = rounding;
        c->stacking = stacking;
        c->now.sec = o->placed_at_us / 1000000;
        c->now.nsec = (int32_t)(o->placed_at_us % 1000000) * 1000;
        if (c->now.nsec < 0) {
                c->now.sec -= 1;
                c->now.nsec += 1000000000;
        }
        c->has_channel = o->channel != NULL;
        c->channel = str_of(o->channel);
        c->has_customer_id = o->has_customer && o->customer_id != NULL;
        c->customer_id = str_of(o->customer_id);
        if (!tier && o->has_customer)
                tier = o->customer_tier;
        c->has_tier = tier != NULL;
        c->tier = str_of(tier);
        for (i = 0; i < o->line_count; i++) {
                const po_order_line_t *ol = &o->lines[i];
                po_line_t *l = &b->lines[i];

                memset(l, 0, sizeof(*l));
                l->id = str_of(ol->line_id);
                l->sku = str_of(ol->sku);
                l->category = str_of(ol->category);
                l->unit_price = ol->unit_price;
                l->quantity = ol->quantity;
                l->tax_rate_ppm = ol->tax_rate_ppm;
                l->unit_cost.present = ol->has_unit_cost;
                l->unit_cost.value = ol->unit_cost;
                if (stock && has_stock && has_stock[i]) {
                        l->stock.present = 1;
                        l->stock.value = stock[i];
                }
        }
        for (i = 0; i < o->code_count; i++)
                b->codes[i] = str_of(o->codes[i]);
        if (ndefs)
                memcpy(b->defs, defs, ndefs * sizeof(*defs));
        c->lines = b->lines;
        c->line_count = o->line_count;
        c->codes = b->codes;
        c->code_count = o->code_count;
        c->codes_optional = 1;
        c->defs = b->defs;
        c->def_count = ndefs;
        return PO_OK;
}

po_code_def_t *po_cart_def(po_cart_builder_t *b, const char *code)
{
        size_t i;

        for (i = 0; i < b->cart.def_count; i++)
                if (strcmp(b->defs[i].code, code) == 0)
                        return &b->defs[i];
        return NULL;
}
