/* Channel "mobile": the mobile app's order JSON (schema "app.order.v2"):
 * unit prices already in minor units, VAT in ppm, tax-inclusive carts
 * (prices_include_tax), millisecond epochs, codes in "promo". */
#include <stdio.h>
#include <string.h>

#include "channel_json.h"

static int parse_item(po_order_t *o, json_t *it, size_t i, po_channel_reject_t *rej)
{
        po_order_line_t *l = &o->lines[i];
        char path[48], id[32];

        snprintf(path, sizeof(path), "cart.items[%zu]", i);
        if (!json_is_object(it))
                return po_channel_reject(rej, PO_REJECT_BAD_TYPE, path,
                                         "%s must be an object", path),
                       -1;
        if (cj_str(o, it, "sku", path, 1, 0, &l->sku, rej) ||
            cj_str(o, it, "cat", path, 0, 0, &l->category, rej) ||
            cj_int(it, "unit_minor", path, 0, PO_PRICING_MAX_UNIT_PRICE, 0,
                   &l->unit_price, rej) ||
            cj_int(it, "qty", path, 1, PO_PRICING_MAX_QUANTITY, 0, &l->quantity, rej))
                return -1;
        if (cj_get(it, "vat_ppm") &&
            cj_int(it, "vat_ppm", path, 0, PO_PRICING_MAX_PPM, 0, &l->tax_rate_ppm, rej))
                return -1;
        if (cj_str(o, it, "line_id", path, 0, 1, &l->line_id, rej))
                return -1;
        if (!l->line_id) {
                snprintf(id, sizeof(id), "%zu", i + 1);
                l->line_id = cj_dup(o, id, strlen(id), path, rej);
                if (!l->line_id)
                        return -1;
        }
        return 0;
}

static po_err_t mobile_parse(const char *payload, size_t len, const po_channel_ctx_t *ctx,
                             po_order_t *o, po_channel_reject_t *rej)
{
        json_t *root = cj_load(payload, len, rej), *cart, *items, *it, *user, *promo,
               *incl;
        const char *schema = NULL;
        int64_t ms;
        size_t i;
        int rc = -1;

        if (!root)
                return PO_ERR_BAD_INPUT;
        if (cj_str(o, root, "schema", "", 0, 0, &schema, rej))
                goto out;
        if (schema && strcmp(schema, "app.order.v2") != 0) {
                po_channel_reject(rej, PO_REJECT_BAD_SYNTAX, "schema",
                                  "schema \"%.40s\" is not app.order.v2", schema);
                goto out;
        }
        cart = cj_get(root, "cart");
        if (!json_is_object(cart)) {
                po_channel_reject(rej,
                                  cart ? PO_REJECT_BAD_TYPE : PO_REJECT_MISSING_FIELD,
                                  "cart", "cart must be an object");
                goto out;
        }
        if (cj_str(o, root, "order_ref", "", 1, 1, &o->external_id, rej) ||
            cj_int(root, "placed_at_ms", "", 0, 253402300799999LL, 0, &ms, rej) ||
            cj_currency(o, cart, "currency", "cart", ctx, rej))
                goto out;
        o->placed_at_us = ms * 1000;
        incl = cj_get(cart, "prices_include_tax");
        if (incl && !json_is_boolean(incl)) {
                po_channel_reject(rej, PO_REJECT_BAD_TYPE, "cart.prices_include_tax",
                                  "cart.prices_include_tax must be true or false");
                goto out;
        }
        o->tax_mode = incl && json_is_true(incl) ? PO_TAX_INCLUSIVE : PO_TAX_EXCLUSIVE;
        user = cj_get(root, "user");
        if (user) {
                if (!json_is_object(user)) {
                        po_channel_reject(rej, PO_REJECT_BAD_TYPE, "user",
                                          "user must be an object");
                        goto out;
                }
                o->has_customer = 1;
                if (cj_str(o, user, "uid", "user", 0, 1, &o->customer_id, rej) ||
                    cj_str(o, user, "membership", "user", 0, 0, &o->customer_tier, rej) ||
                    cj_str(o, user, "email", "user", 0, 0, &o->customer_email, rej))
                        goto out;
        }
        items = cj_get(cart, "items");
        if (!json_is_array(items)) {
                po_channel_reject(rej,
                                  items ? PO_REJECT_BAD_TYPE : PO_REJECT_MISSING_FIELD,
                                  "cart.items", "cart.items must be an array");
                goto out;
        }
        if (cj_alloc_lines(o, json_array_size(items), "cart.items", rej))
                goto out;
        json_array_foreach(items, i, it)
        {
                if (parse_item(o, it, i, rej))
                        goto out;
                o->line_count++;
        }
        promo = cj_get(root, "promo");
        if (promo && !json_is_array(promo)) {
                po_channel_reject(rej, PO_REJECT_BAD_TYPE, "promo",
                                  "promo must be an array");
                goto out;
        }
        if (cj_alloc_codes(o, json_array_size(promo), "promo", rej))
                goto out;
        json_array_foreach(promo, i, it)
        {
                char path[32];

                snprintf(path, sizeof(path), "promo[%zu]", i);
                if (!json_is_string(it)) {
                        po_channel_reject(rej, PO_REJECT_BAD_TYPE, path,
                                          "%s must be a string", path);
                        goto out;
                }
                o->codes[o->code_count] =
                    cj_dup(o, json_string_value(it), json_string_length(it), path, rej);
                if (!o->codes[o->code_count++])
                        goto out;
        }
        rc = 0;
out:
        json_decref(root);
        return rc ? PO_ERR_BAD_INPUT : PO_OK;
}

const po_channel_adapter_t po_channel_mobile = {
    .name = "mobile",
    .description = "mobile app order JSON (app.order.v2, tax-inclusive, ms epochs)",
    .parse = mobile_parse,
};
