/* Channel "web": a hosted storefront's order webhook (Shopify-shaped JSON):
 * decimal-string prices, tax lines as rates, taxes_included, a loyalty tier
 * in the customer's tags ("loyalty:gold"), discount codes by value, and the
 * checkout's note_attributes (name/value pairs such as a B2B purchase_order)
 * as order attributes. */
#include <stdio.h>
#include <string.h>

#include "channel_json.h"
#include "po/money.h"

/* "loyalty:gold, newsletter" -> "gold". */
static const char *tier_from_tags(po_order_t *o, const char *tags)
{
        const char *p = tags;

        while (p && *p) {
                while (*p == ' ' || *p == ',')
                        p++;
                if (strncmp(p, "loyalty:", 8) == 0) {
                        const char *v = p + 8, *end = v;

                        while (*end && *end != ',' && *end != ' ')
                                end++;
                        return end > v ? po_arena_strndup(&o->arena, v, (size_t)(end - v))
                                       : NULL;
                }
                p = strchr(p, ',');
        }
        return NULL;
}

static int parse_line(po_order_t *o, json_t *li, size_t i, po_channel_reject_t *rej)
{
        po_order_line_t *l = &o->lines[i];
        char path[48], tpath[96];
        json_t *taxes, *t;
        size_t k;

        snprintf(path, sizeof(path), "line_items[%zu]", i);
        if (!json_is_object(li))
                return po_channel_reject(rej, PO_REJECT_BAD_TYPE, path,
                                         "%s must be an object", path),
                       -1;
        if (cj_str(o, li, "id", path, 0, 1, &l->line_id, rej) ||
            cj_str(o, li, "sku", path, 1, 0, &l->sku, rej) ||
            cj_str(o, li, "product_type", path, 0, 0, &l->category, rej) ||
            cj_amount(o, li, "price", path, PO_PRICING_MAX_UNIT_PRICE, &l->unit_price,
                      rej) ||
            cj_int(li, "quantity", path, 1, PO_PRICING_MAX_QUANTITY, 0, &l->quantity,
                   rej))
                return -1;
        if (!l->line_id) {
                snprintf(tpath, sizeof(tpath), "%zu", i + 1);
                l->line_id = cj_dup(o, tpath, strlen(tpath), path, rej);
                if (!l->line_id)
                        return -1;
        }
        taxes = cj_get(li, "tax_lines");
        if (taxes && !json_is_array(taxes))
                return po_channel_reject(rej, PO_REJECT_BAD_TYPE, path,
                                         "%s.tax_lines must be an array", path),
                       -1;
        /* Several taxes on one line (state + county) add up. */
        json_array_foreach(taxes, k, t)
        {
                int64_t ppm;

                snprintf(tpath, sizeof(tpath), "%s.tax_lines[%zu].rate", path, k);
                if (cj_rate_ppm(cj_get(t, "rate"), tpath, &ppm, rej))
                        return -1;
                l->tax_rate_ppm += ppm;
                if (l->tax_rate_ppm > PO_PRICING_MAX_PPM)
                        return po_channel_reject(
                                   rej, PO_REJECT_OUT_OF_RANGE, tpath,
                                   "%s.tax_lines add up to more than 100 %%", path),
                               -1;
        }
        return 0;
}

/* note_attributes: [{"name": "purchase_order", "value": "PO-7"}, ...], each
 * an order attribute; a value may be a number (written in decimal), a null
 * or absent value is no attribute. */
static int parse_note_attributes(po_order_t *o, json_t *root, po_channel_reject_t *rej)
{
        json_t *notes = cj_get(root, "note_attributes"), *n;
        const char *name, *value;
        char path[48];
        size_t i;

        if (notes && !json_is_array(notes))
                return po_channel_reject(rej, PO_REJECT_BAD_TYPE, "note_attributes",
                                         "note_attributes must be an array"),
                       -1;
        json_array_foreach(notes, i, n)
        {
                snprintf(path, sizeof(path), "note_attributes[%zu]", i);
                if (!json_is_object(n))
                        return po_channel_reject(rej, PO_REJECT_BAD_TYPE, path,
                                                 "%s must be an object", path),
                               -1;
                if (cj_str(o, n, "name", path, 1, 0, &name, rej) ||
                    cj_str(o, n, "value", path, 0, 1, &value, rej))
                        return -1;
                if (value && cj_attr(o, name, value, rej))
                        return -1;
        }
        return 0;
}

static po_err_t web_parse(const char *payload, size_t len, const po_channel_ctx_t *ctx,
                          po_order_t *o, po_channel_reject_t *rej)
{
        json_t *root = cj_load(payload, len, rej), *items, *li, *cust, *codes, *c, *incl;
        const char *created = NULL, *name = NULL, *source = NULL, *tags = NULL, *s;
        po_instant_t at;
        size_t i;
        int rc = -1;

        if (!root)
                return PO_ERR_BAD_INPUT;
        if (cj_str(o, root, "id", "", 1, 1, &o->external_id, rej) ||
            cj_currency(o, root, "currency", "", ctx, rej) ||
            cj_str(o, root, "created_at", "", 1, 0, &created, rej) ||
            cj_str(o, root, "name", "", 0, 0, &name, rej) ||
            cj_str(o, root, "source_name", "", 0, 0, &source, rej))
                goto out;
        if (po_instant_parse(created, strlen(created), &at)) {
                po_channel_reject(rej, PO_REJECT_BAD_TIMESTAMP, "created_at",
                                  "created_at \"%.40s\" is not RFC 3339", created);
                goto out;
        }
        o->placed_at_us = at.sec * 1000000 + at.nsec / 1000;
        incl = cj_get(root, "taxes_included");
        if (incl && !json_is_boolean(incl)) {
                po_channel_reject(rej, PO_REJECT_BAD_TYPE, "taxes_included",
                                  "taxes_included must be true or false");
                goto out;
        }
        o->tax_mode = incl && json_is_true(incl) ? PO_TAX_INCLUSIVE : PO_TAX_EXCLUSIVE;
        cust = cj_get(root, "customer");
        if (cust) {
                if (!json_is_object(cust)) {
                        po_channel_reject(rej, PO_REJECT_BAD_TYPE, "customer",
                                          "customer must be an object");
                        goto out;
                }
                o->has_customer = 1;
                if (cj_str(o, cust, "id", "customer", 0, 1, &o->customer_id, rej) ||
                    cj_str(o, cust, "tags", "customer", 0, 0, &tags, rej) ||
                    cj_str(o, cust, "email", "customer", 0, 0, &o->customer_email, rej))
                        goto out;
                o->customer_tier = tier_from_tags(o, tags);
        }
        /* The order's email is the contact for this order; the customer
         * record's is the fallback (storefronts send "" when there is none). */
        if (cj_str(o, root, "email", "", 0, 0, &s, rej))
                goto out;
        if (s && s[0]) {
                o->has_customer = 1;
                o->customer_email = s;
        }
        items = cj_get(root, "line_items");
        if (!json_is_array(items)) {
                po_channel_reject(rej,
                                  items ? PO_REJECT_BAD_TYPE : PO_REJECT_MISSING_FIELD,
                                  "line_items", "line_items must be an array");
                goto out;
        }
        if (cj_alloc_lines(o, json_array_size(items), "line_items", rej))
                goto out;
        json_array_foreach(items, i, li)
        {
                if (parse_line(o, li, i, rej))
                        goto out;
                o->line_count++;
        }
        codes = cj_get(root, "discount_codes");
        if (codes && !json_is_array(codes)) {
                po_channel_reject(rej, PO_REJECT_BAD_TYPE, "discount_codes",
                                  "discount_codes must be an array");
                goto out;
        }
        if (cj_alloc_codes(o, json_array_size(codes), "discount_codes", rej))
                goto out;
        json_array_foreach(codes, i, c)
        {
                char path[48];

                snprintf(path, sizeof(path), "discount_codes[%zu]", i);
                if (cj_str(o, c, "code", path, 1, 0, &o->codes[o->code_count], rej))
                        goto out;
                o->code_count++;
        }
        /* The storefront's own fields last: a note attribute of the same name
         * does not override them. */
        if (parse_note_attributes(o, root, rej) ||
            (name && cj_attr(o, "order_name", name, rej)) ||
            (source && cj_attr(o, "source_name", source, rej)))
                goto out;
        rc = 0;
out:
        json_decref(root);
        return rc ? PO_ERR_BAD_INPUT : PO_OK;
}

const po_channel_adapter_t po_channel_web = {
    .name = "web",
    .description = "hosted storefront order webhook (JSON)",
    .parse = web_parse,
};
