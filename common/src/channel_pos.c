/* Channel "pos": a store POS export, one transaction per payload, one record
 * per line, fields separated by '|' as key=value:
 *   H|store=0012|register=03|txn=000088213|ts=<RFC
 * 3339>|currency=USD|customer=c-17|loyalty=silver
 *   I|sku=SKU-1|qty=1|price=1999|taxppm=82500[|cat=shoes]      (price in minor units)
 *   C|code=WELCOME
 *   T|subtotal=2699
 * POS orders often have no customer or email: the default profile does not
 * require them. Records of unknown types are rejected, unknown keys ignored. */
#include <stdio.h>
#include <string.h>

#include "channel_json.h"
#include "po/money.h"

typedef struct slice {
        const char *p;
        size_t n;
} slice_t;

/* The value of key in a record's fields ("k=v|k=v"), or {NULL, 0}. */
static slice_t field(slice_t rec, const char *key)
{
        size_t klen = strlen(key), i = 0;
        slice_t none = {NULL, 0};

        while (i < rec.n) {
                size_t end = i;

                while (end < rec.n && rec.p[end] != '|')
                        end++;
                if (end - i > klen && memcmp(rec.p + i, key, klen) == 0 &&
                    rec.p[i + klen] == '=')
                        return (slice_t){rec.p + i + klen + 1, end - i - klen - 1};
                i = end + 1;
        }
        return none;
}

static po_err_t need(slice_t rec, const char *key, const char *where, slice_t *out,
                     po_channel_reject_t *rej)
{
        char f[64];

        *out = field(rec, key);
        snprintf(f, sizeof(f), "%s.%s", where, key);
        if (!out->p || out->n == 0)
                return po_channel_reject(rej, PO_REJECT_MISSING_FIELD, f,
                                         "%s is required", f);
        return PO_OK;
}

static const char *dup(po_order_t *o, slice_t s)
{
        return s.p ? po_arena_strndup(&o->arena, s.p, s.n) : NULL;
}

static po_err_t int_field(slice_t rec, const char *key, const char *where, int64_t min,
                          int64_t max, int64_t *out, po_channel_reject_t *rej)
{
        slice_t v;
        char f[64];

        if (need(rec, key, where, &v, rej))
                return PO_ERR_BAD_INPUT;
        snprintf(f, sizeof(f), "%s.%s", where, key);
        if (po_money_parse_decimal(v.p, v.n, 0, 1, out))
                return po_channel_reject(rej, PO_REJECT_BAD_AMOUNT, f,
                                         "%s \"%.*s\" is not an integer", f,
                                         (int)(v.n > 30 ? 30 : v.n), v.p);
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
        cur = field(h, "currency");
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
        o->external_id = po_arena_strndup(&o->arena, ext, strlen(ext));
        cust = field(h, "customer");
        tier = field(h, "loyalty");
        if ((cust.p && cust.n) || (tier.p && tier.n)) {
                o->has_customer = 1;
                o->customer_id = cust.n ? dup(o, cust) : NULL;
                o->customer_tier = tier.n ? dup(o, tier) : NULL;
        }
        o->tax_mode = PO_TAX_EXCLUSIVE;
        if (!o->external_id || cj_attr(o, "store", dup(o, store), rej) ||
            cj_attr(o, "register", dup(o, reg), rej))
                return PO_ERR_BAD_INPUT;
        return PO_OK;
}

static po_err_t item(po_order_t *o, slice_t rec, size_t n, po_channel_reject_t *rej)
{
        po_order_line_t *l = &o->lines[o->line_count];
        char where[32], id[32];
        slice_t sku;

        snprintf(where, sizeof(where), "I[%zu]", n);
        if (need(rec, "sku", where, &sku, rej) ||
            int_field(rec, "qty", where, 1, PO_PRICING_MAX_QUANTITY, &l->quantity, rej) ||
            int_field(rec, "price", where, 0, PO_PRICING_MAX_UNIT_PRICE, &l->unit_price,
                      rej) ||
            int_field(rec, "taxppm", where, 0, PO_PRICING_MAX_PPM, &l->tax_rate_ppm, rej))
                return PO_ERR_BAD_INPUT;
        snprintf(id, sizeof(id), "%zu", n + 1);
        l->line_id = po_arena_strndup(&o->arena, id, strlen(id));
        l->sku = dup(o, sku);
        l->category = dup(o, field(rec, "cat"));
        o->line_count++;
        return PO_OK;
}

static po_err_t pos_parse(const char *payload, size_t len, const po_channel_ctx_t *ctx,
                          po_order_t *o, po_channel_reject_t *rej)
{
        size_t i = 0, lines = 0, items = 0, codes = 0, headers = 0;
        int64_t declared = -1, sum = 0;
        slice_t recs_h = {NULL, 0};

        /* First pass: count records, so the arrays are sized once. */
        for (i = 0; i < len; i++)
                if (payload[i] == '\n')
                        lines++;
        lines++;
        if (lines > 3 * PO_PRICING_MAX_LINES)
                return po_channel_reject(rej, PO_REJECT_OUT_OF_RANGE, "",
                                         "too many records");
        if (cj_alloc_lines(o, lines < PO_PRICING_MAX_LINES ? lines : PO_PRICING_MAX_LINES,
                           rej) ||
            cj_alloc_codes(o, PO_PRICING_MAX_CODES, rej))
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
                if (memchr(rec.p, '\0', rec.n))
                        return po_channel_reject(rej, PO_REJECT_BAD_SYNTAX, "",
                                                 "NUL byte in the export");
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
                        o->codes[codes++] = dup(o, code);
                        o->code_count = codes;
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
