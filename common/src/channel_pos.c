/* Channel "pos": a store POS export, one transaction per payload, one record
 * per line, fields separated by '|' as key=value:
 *   H|store=0012|register=03|txn=000088213|ts=<RFC
 * 3339>|currency=USD|customer=c-17|loyalty=silver
 *   I|sku=SKU-1|qty=1|price=1999|taxppm=82500[|cat=shoes]      (price in minor units)
 *   C|code=WELCOME
 *   T|subtotal=2699
 * POS orders often have no customer or email: the default profile does not
 * require them. Records of unknown types are rejected, unknown keys ignored,
 * a key given twice in one record rejected (which one would be meant?). The
 * export must be UTF-8: its text becomes Avro strings. */
#include <stdio.h>
#include <string.h>

#include "channel_json.h"
#include "po/money.h"

typedef struct slice {
        const char *p;
        size_t n;
} slice_t;

/* The value of key in a record's fields ("k=v|k=v") in *out, {NULL, 0}
 * when absent. Rejects a key that appears twice. */
static po_err_t field(slice_t rec, const char *key, const char *where, slice_t *out,
                      po_channel_reject_t *rej)
{
        size_t klen = strlen(key), i = 0;
        char f[64];

        *out = (slice_t){NULL, 0};
        while (i < rec.n) {
                size_t end = i;

                while (end < rec.n && rec.p[end] != '|')
                        end++;
                if (end - i > klen && memcmp(rec.p + i, key, klen) == 0 &&
                    rec.p[i + klen] == '=') {
                        if (out->p) {
                                cj_join(f, sizeof(f), where, key);
                                return po_channel_reject(rej, PO_REJECT_BAD_SYNTAX, f,
                                                         "%s appears twice", f);
                        }
                        *out = (slice_t){rec.p + i + klen + 1, end - i - klen - 1};
                }
                i = end + 1;
        }
        return PO_OK;
}

static po_err_t need(slice_t rec, const char *key, const char *where, slice_t *out,
                     po_channel_reject_t *rej)
{
        char f[64];

        if (field(rec, key, where, out, rej))
                return PO_ERR_BAD_INPUT;
        cj_join(f, sizeof(f), where, key);
        if (!out->p || out->n == 0)
                return po_channel_reject(rej, PO_REJECT_MISSING_FIELD, f,
                                         "%s is required", f);
        return PO_OK;
}

/* A copy of s in the order's arena (NULL for an absent s); -1 with *rej
 * filled when the arena is full. */
static int dup(po_order_t *o, slice_t s, const char *where, const char **out,
               po_channel_reject_t *rej)
{
        *out = NULL;
        if (!s.p)
                return 0;
        *out = cj_dup(o, s.p, s.n, where, rej);
        return *out ? 0 : -1;
}

static po_err_t int_field(slice_t rec, const char *key, const char *where, int64_t min,
                          int64_t max, int64_t *out, po_channel_reject_t *rej)
{
        slice_t v;
        char f[64];

        if (need(rec, key, where, &v, rej))
                return PO_ERR_BAD_INPUT;
        cj_join(f, sizeof(f), where, key);
        if (po_money_parse_decimal(v.p, v.n, 0, 1, out))
                return po_channel_reject(
                    rej,
                    cj_decimal_form(v.p, v.n, 0, 1) ? PO_REJECT_OUT_OF_RANGE
                                                    : PO_REJECT_BAD_AMOUNT,
                    f, "%s \"%.*s\" is not an integer in %lld..%lld", f,
                    (int)(v.n > 30 ? 30 : v.n), v.p, (long long)min, (long long)max);
        if (*out < min || *out > max)
                return po_channel_reject(rej, PO_REJECT_OUT_OF_RANGE, f,
                                         "%s is %lld, outside %lld..%lld", f,
                                         (long long)*out, (long long)min, (long long)max);
        return PO_OK;
}

static po_err_t header(po_order_t *o, slice_t h, const po_channel_ctx_t *ctx,
                       po_channel_reject_t *rej)
{
        slice_t store, reg, txn, ts, cur, cust, tier;
        const char *store_s, *reg_s;
        char ext[200];
        po_instant_t at;

        if (need(h, "store", "H", &store, rej) || need(h, "register", "H", &reg, rej) ||
            need(h, "txn", "H", &txn, rej) || need(h, "ts", "H", &ts, rej))
                return PO_ERR_BAD_INPUT;
        if (po_instant_parse(ts.p, ts.n, &at))
                return po_channel_reject(rej, PO_REJECT_BAD_TIMESTAMP, "H.ts",
                                         "H.ts \"%.*s\" is not RFC 3339",
                                         (int)(ts.n > 40 ? 40 : ts.n), ts.p);
        o->placed_at_us = at.sec * 1000000 + at.nsec / 1000;
        if (field(h, "currency", "H", &cur, rej) ||
            field(h, "customer", "H", &cust, rej) || field(h, "loyalty", "H", &tier, rej))
                return PO_ERR_BAD_INPUT;
        if (!cur.p) {
                if (!ctx->profile->default_currency)
                        return po_channel_reject(rej, PO_REJECT_MISSING_FIELD,
                                                 "H.currency", "H.currency is required");
                cur = (slice_t){ctx->profile->default_currency, 3};
        }
        if (cur.n != 3 || cur.p[0] < 'A' || cur.p[0] > 'Z' || cur.p[1] < 'A' ||
            cur.p[1] > 'Z' || cur.p[2] < 'A' || cur.p[2] > 'Z')
                return po_channel_reject(rej, PO_REJECT_BAD_CURRENCY, "H.currency",
                                         "H.currency is not an ISO 4217 code");
        memcpy(o->currency, cur.p, 3);
        o->currency[3] = '\0';
        if (store.n + reg.n + txn.n + 3 > sizeof(ext))
                return po_channel_reject(rej, PO_REJECT_OUT_OF_RANGE, "H.txn",
                                         "transaction id too long");
        snprintf(ext, sizeof(ext), "%.*s-%.*s-%.*s", (int)store.n, store.p, (int)reg.n,
                 reg.p, (int)txn.n, txn.p);
        o->external_id = cj_dup(o, ext, strlen(ext), "H.txn", rej);
        if (!o->external_id)
                return PO_ERR_BAD_INPUT;
        if (cust.n || tier.n) {
                o->has_customer = 1;
                if ((cust.n && dup(o, cust, "H.customer", &o->customer_id, rej)) ||
                    (tier.n && dup(o, tier, "H.loyalty", &o->customer_tier, rej)))
                        return PO_ERR_BAD_INPUT;
        }
        o->tax_mode = PO_TAX_EXCLUSIVE;
        if (dup(o, store, "H.store", &store_s, rej) ||
            dup(o, reg, "H.register", &reg_s, rej) || cj_attr(o, "store", store_s, rej) ||
            cj_attr(o, "register", reg_s, rej))
                return PO_ERR_BAD_INPUT;
        return PO_OK;
}

static po_err_t item(po_order_t *o, slice_t rec, size_t n, po_channel_reject_t *rej)
{
        po_order_line_t *l = &o->lines[o->line_count];
        char where[32], id[32];
        slice_t sku, cat;

        snprintf(where, sizeof(where), "I[%zu]", n);
        if (need(rec, "sku", where, &sku, rej) ||
            int_field(rec, "qty", where, 1, PO_PRICING_MAX_QUANTITY, &l->quantity, rej) ||
            int_field(rec, "price", where, 0, PO_PRICING_MAX_UNIT_PRICE, &l->unit_price,
                      rej) ||
            int_field(rec, "taxppm", where, 0, PO_PRICING_MAX_PPM, &l->tax_rate_ppm, rej))
                return PO_ERR_BAD_INPUT;
        snprintf(id, sizeof(id), "%zu", n + 1);
        if (field(rec, "cat", where, &cat, rej) ||
            dup(o, (slice_t){id, strlen(id)}, where, &l->line_id, rej) ||
            dup(o, sku, where, &l->sku, rej) || dup(o, cat, where, &l->category, rej))
                return PO_ERR_BAD_INPUT;
        o->line_count++;
        return PO_OK;
}

static po_err_t pos_parse(const char *payload, size_t len, const po_channel_ctx_t *ctx,
                          po_order_t *o, po_channel_reject_t *rej)
{
        size_t i = 0, lines = 0, items = 0, codes = 0, headers = 0;
        int64_t declared = -1, sum = 0;
        slice_t recs_h = {NULL, 0};
        size_t bad = po_utf8_bad(payload, len);

        if (bad)
                return po_channel_reject(rej, PO_REJECT_BAD_SYNTAX, "",
                                         "byte %zu of the export is NUL or not UTF-8",
                                         bad - 1);
        /* First pass: count records, so the arrays are sized once. */
        for (i = 0; i < len; i++)
                if (payload[i] == '\n')
                        lines++;
        lines++;
        if (lines > 3 * PO_PRICING_MAX_LINES)
                return po_channel_reject(rej, PO_REJECT_OUT_OF_RANGE, "",
                                         "too many records");
        if (cj_alloc_lines(o, lines < PO_PRICING_MAX_LINES ? lines : PO_PRICING_MAX_LINES,
                           "I", rej) ||
            cj_alloc_codes(o, PO_PRICING_MAX_CODES, "C", rej))
                return PO_ERR_BAD_INPUT;
        i = 0;
        while (i < len) {
                size_t end = i;
                slice_t rec;

                while (end < len && payload[end] != '\n')
                        end++;
                rec = (slice_t){payload + i, end - i};
                if (rec.n && rec.p[rec.n - 1] == '\r')
                        rec.n--;
                i = end + 1;
                if (rec.n == 0)
                        continue;
                if (rec.n < 2 || rec.p[1] != '|')
                        return po_channel_reject(
                            rej, PO_REJECT_BAD_SYNTAX, "",
                            "record \"%.*s\" is not <type>|key=value...",
                            (int)(rec.n > 20 ? 20 : rec.n), rec.p);
                rec.p += 2;
                rec.n -= 2;
                switch (rec.p[-2]) {
                case 'H':
                        if (headers++)
                                return po_channel_reject(rej, PO_REJECT_BAD_SYNTAX, "H",
                                                         "more than one H record");
                        recs_h = rec;
                        break;
                case 'I':
                        if (o->line_count == PO_PRICING_MAX_LINES)
                                return po_channel_reject(rej, PO_REJECT_OUT_OF_RANGE, "I",
                                                         "more than 1000 items");
                        if (item(o, rec, items++, rej))
                                return PO_ERR_BAD_INPUT;
                        break;
                case 'C': {
                        slice_t code;

                        if (need(rec, "code", "C", &code, rej))
                                return PO_ERR_BAD_INPUT;
                        if (codes == PO_PRICING_MAX_CODES)
                                return po_channel_reject(rej, PO_REJECT_OUT_OF_RANGE, "C",
                                                         "more than 20 codes");
                        if (dup(o, code, "C.code", &o->codes[codes], rej))
                                return PO_ERR_BAD_INPUT;
                        o->code_count = ++codes;
                        break;
                }
                case 'T':
                        if (int_field(rec, "subtotal", "T", 0, 1000000000000000LL,
                                      &declared, rej))
                                return PO_ERR_BAD_INPUT;
                        break;
                default:
                        return po_channel_reject(rej, PO_REJECT_BAD_SYNTAX, "",
                                                 "unknown record type '%c'", rec.p[-2]);
                }
        }
        if (!headers)
                return po_channel_reject(rej, PO_REJECT_MISSING_FIELD, "H",
                                         "no H record");
        if (header(o, recs_h, ctx, rej))
                return PO_ERR_BAD_INPUT;
        sum = po_order_value(o);
        if (declared >= 0 && (declared - sum > ctx->profile->total_tolerance ||
                              sum - declared > ctx->profile->total_tolerance))
                return po_channel_reject(
                    rej, PO_REJECT_TOTAL_MISMATCH, "T.subtotal",
                    "T.subtotal %lld differs from the items' %lld beyond "
                    "the tolerance of %lld",
                    (long long)declared, (long long)sum,
                    (long long)ctx->profile->total_tolerance);
        return PO_OK;
}

const po_channel_adapter_t po_channel_pos = {
    .name = "pos",
    .description = "store POS export (pipe-delimited records)",
    .parse = pos_parse,
};
