/* Channel "marketplace": a large marketplace's orders API (Amazon-shaped
 * JSON): line totals instead of unit prices (ItemPrice is for all
 * QuantityOrdered units), the item tax as an amount, promotion ids as codes.
 *
 * A line total that does not divide by its quantity is split into two lines
 * (floor and floor + 1 unit prices) so the total stays exact; the tax rate is
 * the roundest rate that reproduces the channel's tax amount exactly
 * (po_channel_rate_from_tax). A business buyer's PurchaseOrderNumber is the
 * attribute purchase_order, MarketplaceId and SalesChannel are attributes
 * too. */
#include <stdio.h>
#include <string.h>

#include "channel_json.h"

/* A money object {"CurrencyCode": "USD", "Amount": "44.97"} in the order's currency. */
static int money_obj(po_order_t *o, json_t *obj, const char *key, const char *path,
                     int required, int64_t *out, po_channel_reject_t *rej)
{
        json_t *m = cj_get(obj, key);
        char field[96];
        const char *cur;

        snprintf(field, sizeof(field), "%s%s%s", path, path[0] ? "." : "", key);
        *out = 0;
        if (!m) {
                if (!required)
                        return 0;
                po_channel_reject(rej, PO_REJECT_MISSING_FIELD, field, "%s is required",
                                  field);
                return -1;
        }
        if (!json_is_object(m)) {
                po_channel_reject(rej, PO_REJECT_BAD_TYPE, field, "%s must be an object",
                                  field);
                return -1;
        }
        if (cj_get(m, "CurrencyCode") && !json_is_string(cj_get(m, "CurrencyCode"))) {
                po_channel_reject(rej, PO_REJECT_BAD_TYPE, field,
                                  "%s.CurrencyCode must be a string", field);
                return -1;
        }
        cur = json_string_value(cj_get(m, "CurrencyCode"));
        if (cur && strcmp(cur, o->currency) != 0) {
                po_channel_reject(rej, PO_REJECT_BAD_CURRENCY, field,
                                  "%s is in %.8s, the order in %s", field, cur,
                                  o->currency);
                return -1;
        }
        return cj_amount(o, m, "Amount", field, PO_PRICING_MAX_SUBTOTAL, out, rej);
}

static int parse_item(po_order_t *o, json_t *it, size_t i, po_channel_reject_t *rej)
{
        char path[48], field[96];
        const char *id = NULL, *sku = NULL;
        int64_t qty, total, tax, ppm, unit, extra;
        json_t *promos, *p;
        size_t k;

        snprintf(path, sizeof(path), "OrderItems[%zu]", i);
        if (!json_is_object(it))
                return po_channel_reject(rej, PO_REJECT_BAD_TYPE, path,
                                         "%s must be an object", path),
                       -1;
        if (cj_str(o, it, "OrderItemId", path, 1, 1, &id, rej) ||
            cj_str(o, it, "SellerSKU", path, 1, 0, &sku, rej) ||
            cj_int(it, "QuantityOrdered", path, 1, PO_PRICING_MAX_QUANTITY, 0, &qty,
                   rej) ||
            money_obj(o, it, "ItemPrice", path, 1, &total, rej) ||
            money_obj(o, it, "ItemTax", path, 0, &tax, rej))
                return -1;
        if (po_channel_rate_from_tax(total, tax, &ppm))
                return po_channel_reject(
                           rej, PO_REJECT_BAD_AMOUNT, path,
                           "%s.ItemTax cannot come from any rate on its price", path),
                       -1;
        unit = total / qty;
        extra = total % qty; /* units that cost one minor unit more */
        if (unit + (extra ? 1 : 0) > PO_PRICING_MAX_UNIT_PRICE) {
                snprintf(field, sizeof(field), "%s.ItemPrice.Amount", path);
                return po_channel_reject(rej, PO_REJECT_OUT_OF_RANGE, field,
                                         "%s is above 10^10 minor units per unit", field),
                       -1;
        }
        if (o->line_count + (extra ? 2 : 1) > PO_PRICING_MAX_LINES)
                return po_channel_reject(rej, PO_REJECT_OUT_OF_RANGE, "OrderItems",
                                         "more than 1000 lines"),
                       -1;
        o->lines[o->line_count] = (po_order_line_t){.line_id = id,
                                                    .sku = sku,
                                                    .unit_price = unit,
                                                    .quantity = qty - extra,
                                                    .tax_rate_ppm = ppm};
        o->line_count++;
        if (extra) {
                size_t n = strlen(id);
                char *id2 = po_arena_alloc(&o->arena, n + 3);

                if (!id2)
                        return po_channel_reject(rej, PO_REJECT_OUT_OF_RANGE, path,
                                                 "payload too large"),
                               -1;
                memcpy(id2, id, n);
                memcpy(id2 + n, "#2", 3);
                o->lines[o->line_count] = (po_order_line_t){.line_id = id2,
                                                            .sku = sku,
                                                            .unit_price = unit + 1,
                                                            .quantity = extra,
                                                            .tax_rate_ppm = ppm};
                o->line_count++;
        }
        promos = cj_get(it, "PromotionIds");
        if (promos && !json_is_array(promos))
                return po_channel_reject(rej, PO_REJECT_BAD_TYPE, path,
                                         "%s.PromotionIds must be an array", path),
                       -1;
        json_array_foreach(promos, k, p)
        {
                size_t c;

                if (!json_is_string(p))
                        return po_channel_reject(rej, PO_REJECT_BAD_TYPE, path,
                                                 "%s.PromotionIds[%zu] must be a string",
                                                 path, k),
                               -1;
                for (c = 0; c < o->code_count; c++)
                        if (strcmp(o->codes[c], json_string_value(p)) == 0)
                                break;
                if (c < o->code_count)
                        continue; /* one promotion over several items is one code */
                if (o->code_count == PO_PRICING_MAX_CODES)
                        return po_channel_reject(rej, PO_REJECT_OUT_OF_RANGE,
                                                 "PromotionIds",
                                                 "more than 20 promotion ids"),
                               -1;
                o->codes[o->code_count] =
                    cj_dup(o, json_string_value(p), json_string_length(p), path, rej);
                if (!o->codes[o->code_count++])
                        return -1;
        }
        return 0;
}

static po_err_t marketplace_parse(const char *payload, size_t len,
                                  const po_channel_ctx_t *ctx, po_order_t *o,
                                  po_channel_reject_t *rej)
{
        json_t *root = cj_load(payload, len, rej), *items, *it, *total, *buyer;
        const char *date = NULL, *s, *market = NULL, *sales = NULL, *po = NULL;
        int64_t declared, sum = 0;
        po_instant_t at;
        size_t i;
        int rc = -1;

        if (!root)
                return PO_ERR_BAD_INPUT;
        total = cj_get(root, "OrderTotal");
        if (total && !json_is_object(total)) {
                po_channel_reject(rej, PO_REJECT_BAD_TYPE, "OrderTotal",
                                  "OrderTotal must be an object");
                goto out;
        }
        if (cj_str(o, root, "AmazonOrderId", "", 1, 0, &o->external_id, rej) ||
            cj_currency(o, total, "CurrencyCode", "OrderTotal", ctx, rej) ||
            cj_str(o, root, "PurchaseDate", "", 1, 0, &date, rej))
                goto out;
        if (po_instant_parse(date, strlen(date), &at)) {
                po_channel_reject(rej, PO_REJECT_BAD_TIMESTAMP, "PurchaseDate",
                                  "PurchaseDate \"%.40s\" is not RFC 3339", date);
                goto out;
        }
        o->placed_at_us = at.sec * 1000000 + at.nsec / 1000;
        o->tax_mode = PO_TAX_EXCLUSIVE;
        buyer = cj_get(root, "BuyerInfo");
        if (buyer) {
                if (!json_is_object(buyer)) {
                        po_channel_reject(rej, PO_REJECT_BAD_TYPE, "BuyerInfo",
                                          "BuyerInfo must be an object");
                        goto out;
                }
                if (cj_str(o, buyer, "BuyerEmail", "BuyerInfo", 0, 0, &s, rej))
                        goto out;
                if (s && s[0]) {
                        o->has_customer = 1;
                        o->customer_email = s;
                }
        }
        if (cj_str(o, root, "MarketplaceId", "", 0, 0, &market, rej) ||
            cj_str(o, root, "SalesChannel", "", 0, 0, &sales, rej) ||
            cj_str(o, root, "PurchaseOrderNumber", "", 0, 1, &po, rej))
                goto out;
        items = cj_get(root, "OrderItems");
        if (!json_is_array(items)) {
                po_channel_reject(rej,
                                  items ? PO_REJECT_BAD_TYPE : PO_REJECT_MISSING_FIELD,
                                  "OrderItems", "OrderItems must be an array");
                goto out;
        }
        if (json_array_size(items) > PO_PRICING_MAX_LINES) {
                po_channel_reject(rej, PO_REJECT_OUT_OF_RANGE, "OrderItems",
                                  "%zu items; at most 1000", json_array_size(items));
                goto out;
        }
        /* Room for a split of every item, up to the 1000 lines an order may
         * have (parse_item refuses the item that would go beyond). */
        if (cj_alloc_lines(o,
                           2 * json_array_size(items) < PO_PRICING_MAX_LINES
                               ? 2 * json_array_size(items)
                               : PO_PRICING_MAX_LINES,
                           "OrderItems", rej) ||
            cj_alloc_codes(o, PO_PRICING_MAX_CODES, "PromotionIds", rej))
                goto out;
        json_array_foreach(items, i, it)
        {
                size_t before = o->line_count, l;

                if (parse_item(o, it, i, rej))
                        goto out;
                for (l = before; l < o->line_count; l++)
                        sum += o->lines[l].unit_price * o->lines[l].quantity;
        }
        /* OrderTotal includes the item taxes; check it when given. */
        if (total && cj_get(total, "Amount")) {
                int64_t taxes = 0;

                if (cj_amount(o, total, "Amount", "OrderTotal", PO_PRICING_MAX_SUBTOTAL,
                              &declared, rej))
                        goto out;
                json_array_foreach(items, i, it)
                {
                        int64_t t;

                        if (money_obj(o, it, "ItemTax", "OrderItems", 0, &t, rej))
                                goto out;
                        taxes += t;
                }
                if (declared - (sum + taxes) > ctx->profile->total_tolerance ||
                    (sum + taxes) - declared > ctx->profile->total_tolerance) {
                        po_channel_reject(
                            rej, PO_REJECT_TOTAL_MISMATCH, "OrderTotal.Amount",
                            "OrderTotal %lld differs from items %lld + tax %lld "
                            "beyond the tolerance of %lld",
                            (long long)declared, (long long)sum, (long long)taxes,
                            (long long)ctx->profile->total_tolerance);
                        goto out;
                }
        }
        if ((market && cj_attr(o, "marketplace_id", market, rej)) ||
            (sales && cj_attr(o, "sales_channel", sales, rej)) ||
            (po && cj_attr(o, "purchase_order", po, rej)))
                goto out;
        rc = 0;
out:
        json_decref(root);
        return rc ? PO_ERR_BAD_INPUT : PO_OK;
}

const po_channel_adapter_t po_channel_marketplace = {
    .name = "marketplace",
    .description = "marketplace orders API (JSON, line totals, item tax amounts)",
    .parse = marketplace_parse,
};
