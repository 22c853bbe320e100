/* The channel registry, the shared normalization checks, and the helpers
 * adapters use (see po/channel.h and channel_json.h). */
#include "po/channel.h"

#include <float.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel_json.h"
#include "po/money.h"

extern const po_channel_adapter_t po_channel_web;
extern const po_channel_adapter_t po_channel_marketplace;
extern const po_channel_adapter_t po_channel_pos;
extern const po_channel_adapter_t po_channel_mobile;

/* The registry: one line per channel. */
static const po_channel_adapter_t *const adapters[] = {
    &po_channel_web,
    &po_channel_marketplace,
    &po_channel_pos,
    &po_channel_mobile,
};

const po_channel_adapter_t *po_channel_find(const char *channel)
{
        size_t i;

        for (i = 0; channel && i < sizeof(adapters) / sizeof(adapters[0]); i++)
                if (strcmp(adapters[i]->name, channel) == 0)
                        return adapters[i];
        return NULL;
}

const po_channel_adapter_t *const *po_channel_all(size_t *count)
{
        *count = sizeof(adapters) / sizeof(adapters[0]);
        return adapters;
}

po_err_t po_channel_reject(po_channel_reject_t *rej, const char *reason,
                           const char *field, const char *fmt, ...)
{
        va_list ap;

        snprintf(rej->reason, sizeof(rej->reason), "%s", reason);
        snprintf(rej->field, sizeof(rej->field), "%s", field ? field : "");
        va_start(ap, fmt);
        vsnprintf(rej->message, sizeof(rej->message), fmt, ap);
        va_end(ap);
        return PO_ERR_BAD_INPUT;
}

/* Whether tax = div_round(amount * ppm, 10^6), half_up. */
static int reproduces(int64_t amount, int64_t tax, int64_t ppm)
{
        return po_money_div_round((po_i128)amount * ppm, 1000000, PO_ROUND_HALF_UP) ==
               tax;
}

po_err_t po_channel_rate_from_tax(int64_t amount, int64_t tax, int64_t *ppm)
{
        int64_t lo, hi, step, best = -1;
        po_i128 c;

        if (amount < 0 || tax < 0)
                return PO_ERR_BAD_INPUT;
        if (amount == 0) {
                if (tax != 0)
                        return PO_ERR_BAD_INPUT;
                *ppm = 0;
                return PO_OK;
        }
        /* half_up: round(amount * p / 10^6) = tax exactly when
         * tax * 10^6 - 5 * 10^5 <= amount * p < tax * 10^6 + 5 * 10^5. */
        c = (po_i128)tax * 1000000 - 500000;
        c = c <= 0 ? 0 : (c + amount - 1) / amount;
        if (c > 1000000)
                return PO_ERR_BAD_INPUT; /* the tax is more than the amount */
        lo = (int64_t)c;
        c = (po_i128)tax * 1000000 + 500000;
        c = (c + amount - 1) / amount - 1;
        hi = c > 1000000 ? 1000000 : (int64_t)c;
        if (lo > hi)
                return PO_ERR_BAD_INPUT;
        /* The roundest rate in [lo, hi] (8.25 % rather than 8.2499 %); among
         * equally round ones, the nearest to tax / amount. */
        for (step = 1000000; step >= 1 && best < 0; step /= 10) {
                int64_t v;

                for (v = (lo + step - 1) / step * step; v <= hi; v += step) {
                        po_i128 d = (po_i128)v * amount - (po_i128)tax * 1000000;
                        po_i128 bd = (po_i128)best * amount - (po_i128)tax * 1000000;

                        if (d < 0)
                                d = -d;
                        if (bd < 0)
                                bd = -bd;
                        if (best < 0 || d < bd)
                                best = v;
                }
        }
        if (best < 0 || !reproduces(amount, tax, best))
                return PO_ERR_BAD_INPUT;
        *ppm = best;
        return PO_OK;
}

/* Rewrites "d.ddde-XX" / "d.ddde+XX" (the exponent form of %e) as a plain
 * decimal into buf; leaves buf alone when the result would not fit. */
static void positional(const char *e_form, char *buf, size_t size)
{
        char digits[32], out[96];
        const char *p = e_form, *e = strchr(e_form, 'e');
        size_t nd = 0, o = 0, i;
        int neg = 0;
        long x, point;

        if (!e)
                return;
        if (*p == '-') {
                neg = 1;
                p++;
        }
        for (; p < e && nd < sizeof(digits); p++)
                if (*p >= '0' && *p <= '9')
                        digits[nd++] = *p;
        while (nd > 1 && digits[nd - 1] == '0')
                nd--;
        x = strtol(e + 1, NULL, 10);
        if (x < -40 || x > 40)
                return; /* no rate or amount is that small or large: keep %e */
        point = x + 1;  /* digits before the decimal point */
        if (neg)
                out[o++] = '-';
        if (point <= 0) {
                out[o++] = '0';
                out[o++] = '.';
                for (; point < 0; point++)
                        out[o++] = '0';
                for (i = 0; i < nd; i++)
                        out[o++] = digits[i];
        } else {
                for (i = 0; i < nd || (long)i < point; i++) {
                        if ((long)i == point)
                                out[o++] = '.';
                        out[o++] = i < nd ? digits[i] : '0';
                }
        }
        out[o] = '\0';
        if (o < size)
                memcpy(buf, out, o + 1);
}

void po_channel_real_text(double v, char *buf, size_t size)
{
        char e_form[48];
        int prec;

        for (prec = 1; prec <= DBL_DECIMAL_DIG; prec++) {
                snprintf(buf, size, "%.*g", prec, v);
                if (strtod(buf, NULL) == v)
                        break;
        }
        /* %g writes 5e-06 for 0.000005: same digits, spelled out. */
        if (strchr(buf, 'e')) {
                snprintf(e_form, sizeof(e_form), "%.*e",
                         prec > DBL_DECIMAL_DIG ? DBL_DECIMAL_DIG - 1 : prec - 1, v);
                positional(e_form, buf, size);
        }
}

json_t *cj_load(const char *payload, size_t len, po_channel_reject_t *rej)
{
        json_error_t e;
        json_t *root = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &e);

        if (!root) {
                if (json_error_code(&e) == json_error_numeric_overflow)
                        po_channel_reject(rej, PO_REJECT_OUT_OF_RANGE, "",
                                          "a number does not fit 64 bits: %s at line %d "
                                          "column %d",
                                          e.text, e.line, e.column);
                else
                        po_channel_reject(rej, PO_REJECT_BAD_SYNTAX, "",
                                          "not JSON: %s at line %d column %d", e.text,
                                          e.line, e.column);
                return NULL;
        }
        if (!json_is_object(root)) {
                json_decref(root);
                po_channel_reject(rej, PO_REJECT_BAD_SYNTAX, "",
                                  "expected a JSON object");
                return NULL;
        }
        return root;
}

json_t *cj_get(json_t *obj, const char *key)
{
        json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;

        return json_is_null(v) ? NULL : v;
}

void cj_join(char *buf, size_t size, const char *path, const char *key)
{
        size_t lp = strlen(path), lk = strlen(key), n;

        /* snprintf(buf, size, "%s%s%s", path, path[0] ? "." : "", key),
         * without its cost: this runs for every field an adapter reads. */
        if (size == 0)
                return;
        n = lp < size - 1 ? lp : size - 1;
        memcpy(buf, path, n);
        if (lp && n < size - 1)
                buf[n++] = '.';
        if (lk > size - 1 - n)
                lk = size - 1 - n;
        memcpy(buf + n, key, lk);
        buf[n + lk] = '\0';
}

int cj_str(po_order_t *o, json_t *obj, const char *key, const char *path, int required,
           int allow_number, const char **out, po_channel_reject_t *rej)
{
        json_t *v = cj_get(obj, key);
        char field[96], num[32];

        cj_join(field, sizeof(field), path, key);
        *out = NULL;
        if (!v) {
                if (required) {
                        po_channel_reject(rej, PO_REJECT_MISSING_FIELD, field,
                                          "%s is required", field);
                        return -1;
                }
                return 0;
        }
        if (allow_number && json_is_integer(v)) {
                snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
                *out = po_arena_strndup(&o->arena, num, strlen(num));
        } else if (json_is_string(v)) {
                *out = po_arena_strndup(&o->arena, json_string_value(v),
                                        json_string_length(v));
        } else {
                po_channel_reject(rej, PO_REJECT_BAD_TYPE, field, "%s must be a string",
                                  field);
                return -1;
        }
        if (!*out) {
                po_channel_reject(rej, PO_REJECT_OUT_OF_RANGE, field,
                                  "payload too large");
                return -1;
        }
        return 0;
}

int cj_int(json_t *obj, const char *key, const char *path, int64_t min, int64_t max,
           int allow_string, int64_t *out, po_channel_reject_t *rej)
{
        json_t *v = cj_get(obj, key);
        char field[96];
        int64_t x;

        cj_join(field, sizeof(field), path, key);
        if (!v) {
                po_channel_reject(rej, PO_REJECT_MISSING_FIELD, field, "%s is required",
                                  field);
                return -1;
        }
        if (json_is_integer(v)) {
                x = json_integer_value(v);
        } else if (allow_string && json_is_string(v) &&
                   po_money_parse_decimal(json_string_value(v), json_string_length(v), 0,
                                          1, &x) == PO_OK) {
                /* parsed */
        } else {
                po_channel_reject(rej, PO_REJECT_BAD_TYPE, field, "%s must be an integer",
                                  field);
                return -1;
        }
        if (x < min || x > max) {
                po_channel_reject(rej, PO_REJECT_OUT_OF_RANGE, field,
                                  "%s is %lld, outside %lld..%lld", field, (long long)x,
                                  (long long)min, (long long)max);
                return -1;
        }
        *out = x;
        return 0;
}

int cj_decimal_form(const char *s, size_t len, int places, int allow_negative)
{
        size_t i = 0, ndig = 0, frac = 0;
        int dot = 0;

        if (len && (s[0] == '+' || (s[0] == '-' && allow_negative)))
                i++;
        for (; i < len; i++) {
                if (s[i] == '.' && !dot) {
                        dot = 1;
                        continue;
                }
                if (s[i] < '0' || s[i] > '9')
                        return 0;
                if (dot && ++frac > (size_t)places && s[i] != '0')
                        return 0;
                ndig += !dot;
        }
        return ndig > 0 && (!dot || frac > 0);
}

int cj_amount(po_order_t *o, json_t *obj, const char *key, const char *path, int64_t max,
              int64_t *out, po_channel_reject_t *rej)
{
        json_t *v = cj_get(obj, key);
        int exp = po_money_exponent(o->currency);
        const char *s;
        size_t len;
        char field[96];

        cj_join(field, sizeof(field), path, key);
        if (!v) {
                po_channel_reject(rej, PO_REJECT_MISSING_FIELD, field, "%s is required",
                                  field);
                return -1;
        }
        if (!json_is_string(v)) {
                po_channel_reject(rej, PO_REJECT_BAD_TYPE, field,
                                  "%s must be a decimal string such as \"19.99\"", field);
                return -1;
        }
        s = json_string_value(v);
        len = json_string_length(v);
        if (po_money_parse_decimal(s, len, exp, 0, out) != PO_OK) {
                if (cj_decimal_form(s, len, exp, 0))
                        po_channel_reject(rej, PO_REJECT_OUT_OF_RANGE, field,
                                          "%s \"%.40s\" is above 10^15 minor units",
                                          field, s);
                else
                        po_channel_reject(
                            rej, PO_REJECT_BAD_AMOUNT, field,
                            "%s \"%.40s\" is not an exact non-negative amount in %s "
                            "(%d decimals)",
                            field, s, o->currency, exp);
                return -1;
        }
        if (*out > max) {
                po_channel_reject(rej, PO_REJECT_OUT_OF_RANGE, field,
                                  "%s is %lld minor units, above %lld", field,
                                  (long long)*out, (long long)max);
                return -1;
        }
        return 0;
}

int cj_rate_ppm(json_t *v, const char *path, int64_t *out, po_channel_reject_t *rej)
{
        char buf[64];
        const char *text = buf;
        size_t len;

        if (json_is_integer(v)) {
                snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(v));
                len = strlen(buf);
        } else if (json_is_real(v)) {
                po_channel_real_text(json_real_value(v), buf, sizeof(buf));
                len = strlen(buf);
        } else if (json_is_string(v)) {
                text = json_string_value(v);
                len = json_string_length(v);
        } else {
                po_channel_reject(rej, v ? PO_REJECT_BAD_TYPE : PO_REJECT_MISSING_FIELD,
                                  path, "%s must be a rate", path);
                return -1;
        }
        if (po_money_parse_scaled(text, len, 1000000, out) != PO_OK) {
                if (cj_decimal_form(text, len, 6, 0))
                        po_channel_reject(rej, PO_REJECT_OUT_OF_RANGE, path,
                                          "%s \"%.40s\" is above 1", path, text);
                else
                        po_channel_reject(rej, PO_REJECT_BAD_AMOUNT, path,
                                          "%s \"%.40s\" is not a rate 0..1 in whole ppm",
                                          path, text);
                return -1;
        }
        if (*out > 1000000) {
                po_channel_reject(rej, PO_REJECT_OUT_OF_RANGE, path,
                                  "%s \"%.40s\" is above 1", path, text);
                return -1;
        }
        return 0;
}

static int valid_currency(const char *s, size_t len)
{
        size_t i;

        if (len != 3)
                return 0;
        for (i = 0; i < 3; i++)
                if (s[i] < 'A' || s[i] > 'Z')
                        return 0;
        return 1;
}

int cj_currency(po_order_t *o, json_t *obj, const char *key, const char *path,
                const po_channel_ctx_t *ctx, po_channel_reject_t *rej)
{
        json_t *v = cj_get(obj, key);
        const char *s = ctx->profile->default_currency;
        size_t len = s ? strlen(s) : 0;
        char field[96];

        cj_join(field, sizeof(field), path, key);
        if (v) {
                if (!json_is_string(v)) {
                        po_channel_reject(rej, PO_REJECT_BAD_TYPE, field,
                                          "%s must be a string", field);
                        return -1;
                }
                s = json_string_value(v);
                len = json_string_length(v);
        } else if (!s) {
                po_channel_reject(rej, PO_REJECT_MISSING_FIELD, field, "%s is required",
                                  field);
                return -1;
        }
        if (!valid_currency(s, len)) {
                po_channel_reject(rej, PO_REJECT_BAD_CURRENCY, field,
                                  "%s \"%.8s\" is not an ISO 4217 code", field, s);
                return -1;
        }
        memcpy(o->currency, s, 3);
        o->currency[3] = '\0';
        return 0;
}

int cj_alloc_lines(po_order_t *o, size_t n, const char *field, po_channel_reject_t *rej)
{
        if (n < 1 || n > PO_PRICING_MAX_LINES) {
                po_channel_reject(rej, PO_REJECT_OUT_OF_RANGE, field,
                                  "%zu lines; 1..1000 allowed", n);
                return -1;
        }
        o->lines = po_arena_alloc(&o->arena, n * sizeof(*o->lines));
        if (!o->lines) {
                po_channel_reject(rej, PO_REJECT_OUT_OF_RANGE, field,
                                  "payload too large");
                return -1;
        }
        memset(o->lines, 0, n * sizeof(*o->lines));
        o->line_count = 0;
        return 0;
}

int cj_alloc_codes(po_order_t *o, size_t n, const char *field, po_channel_reject_t *rej)
{
        if (n > PO_PRICING_MAX_CODES) {
                po_channel_reject(rej, PO_REJECT_OUT_OF_RANGE, field,
                                  "%zu codes; at most 20", n);
                return -1;
        }
        o->codes = po_arena_alloc(&o->arena, (n ? n : 1) * sizeof(*o->codes));
        o->code_count = 0;
        if (!o->codes) {
                po_channel_reject(rej, PO_REJECT_OUT_OF_RANGE, field,
                                  "payload too large");
                return -1;
        }
        return 0;
}

const char *cj_dup(po_order_t *o, const char *s, size_t len, const char *field,
                   po_channel_reject_t *rej)
{
        const char *c = po_arena_strndup(&o->arena, s, len);

        if (!c)
                po_channel_reject(rej, PO_REJECT_OUT_OF_RANGE, field,
                                  "payload too large");
        return c;
}

int cj_attr(po_order_t *o, const char *key, const char *value, po_channel_reject_t *rej)
{
        po_order_attr_t *n;
        size_t i;

        if (!key || !value)
                return po_channel_reject(rej, PO_REJECT_OUT_OF_RANGE, key ? key : "",
                                         "payload too large"),
                       -1;
        for (i = 0; i < o->attr_count; i++) {
                if (strcmp(o->attrs[i].key, key) == 0) {
                        o->attrs[i].value =
                            po_arena_strndup(&o->arena, value, strlen(value));
                        if (!o->attrs[i].value)
                                return po_channel_reject(rej, PO_REJECT_OUT_OF_RANGE, key,
                                                         "payload too large"),
                                       -1;
                        return 0;
                }
        }
        if (o->attr_count % 8 == 0) {
                n = po_arena_alloc(&o->arena, (o->attr_count + 8) * sizeof(*n));
                if (!n) {
                        po_channel_reject(rej, PO_REJECT_OUT_OF_RANGE, key,
                                          "payload too large");
                        return -1;
                }
                if (o->attr_count)
                        memcpy(n, o->attrs, o->attr_count * sizeof(*n));
                o->attrs = n;
        }
        o->attrs[o->attr_count].key = po_arena_strndup(&o->arena, key, strlen(key));
        o->attrs[o->attr_count].value = po_arena_strndup(&o->arena, value, strlen(value));
        if (!o->attrs[o->attr_count].key || !o->attrs[o->attr_count].value) {
                po_channel_reject(rej, PO_REJECT_OUT_OF_RANGE, key, "payload too large");
                return -1;
        }
        o->attr_count++;
        return 0;
}

/* Whether s holds something besides ASCII white space: an empty value
 * ("email": "", a blank purchase order) does not meet a requirement. */
static int present(const char *s)
{
        for (; s && *s; s++)
                if (*s != ' ' && *s != '\t' && *s != '\r' && *s != '\n')
                        return 1;
        return 0;
}

static const char *attr_get(const po_order_t *o, const char *key)
{
        size_t i;

        for (i = 0; i < o->attr_count; i++)
                if (strcmp(o->attrs[i].key, key) == 0)
                        return o->attrs[i].value;
        return NULL;
}

/* The canonical bounds every order must meet, whatever its channel. */
static po_err_t check_canonical(const po_channel_ctx_t *ctx, po_order_t *o,
                                po_channel_reject_t *rej)
{
        const po_channel_profile_t *p = ctx->profile;
        char field[64];
        size_t i;

        if (o->line_count < 1 || o->line_count > PO_PRICING_MAX_LINES)
                return po_channel_reject(rej, PO_REJECT_OUT_OF_RANGE, "lines",
                                         "%zu lines; 1..1000 allowed", o->line_count);
        for (i = 0; i < o->line_count; i++) {
                po_order_line_t *l = &o->lines[i];

                snprintf(field, sizeof(field), "lines[%zu]", i);
                if (!l->category || !l->category[0]) {
                        if (!p->default_category)
                                return po_channel_reject(rej, PO_REJECT_MISSING_FIELD,
                                                         field,
                                                         "line %zu has no category", i);
                        l->category = p->default_category;
                }
                if (!l->sku || !l->sku[0])
                        return po_channel_reject(rej, PO_REJECT_MISSING_FIELD, field,
                                                 "line %zu has no SKU", i);
                if (l->unit_price < 0 || l->unit_price > PO_PRICING_MAX_UNIT_PRICE)
                        return po_channel_reject(rej, PO_REJECT_OUT_OF_RANGE, field,
                                                 "line %zu unit price outside 0..10^10",
                                                 i);
                if (l->quantity < 1 || l->quantity > PO_PRICING_MAX_QUANTITY)
                        return po_channel_reject(rej, PO_REJECT_OUT_OF_RANGE, field,
                                                 "line %zu quantity outside 1..10^6", i);
                if (l->tax_rate_ppm < 0 || l->tax_rate_ppm > PO_PRICING_MAX_PPM)
                        return po_channel_reject(rej, PO_REJECT_OUT_OF_RANGE, field,
                                                 "line %zu tax rate outside 0..10^6 ppm",
                                                 i);
        }
        if (po_order_value(o) > PO_PRICING_MAX_SUBTOTAL)
                return po_channel_reject(rej, PO_REJECT_OUT_OF_RANGE, "lines",
                                         "order value above 10^15 minor units");
        if (o->code_count > PO_PRICING_MAX_CODES)
                return po_channel_reject(rej, PO_REJECT_OUT_OF_RANGE, "codes",
                                         "%zu codes; at most 20", o->code_count);
        if (p->require_customer && (!o->has_customer || !present(o->customer_id)))
                return po_channel_reject(rej, PO_REJECT_PROFILE, "customer",
                                         "the %s/%s profile requires a customer",
                                         ctx->channel, ctx->account);
        if (p->require_email && (!o->has_customer || !present(o->customer_email)))
                return po_channel_reject(rej, PO_REJECT_PROFILE, "customer.email",
                                         "the %s/%s profile requires an email",
                                         ctx->channel, ctx->account);
        for (i = 0; i < p->required_attr_count; i++)
                if (!present(attr_get(o, p->required_attrs[i])))
                        return po_channel_reject(
                            rej, PO_REJECT_PROFILE, p->required_attrs[i],
                            "the %s/%s profile requires %s", ctx->channel, ctx->account,
                            p->required_attrs[i]);
        return PO_OK;
}

po_err_t po_channel_normalize(const po_channel_ctx_t *ctx, const char *payload,
                              size_t len, po_order_t *out, po_channel_reject_t *rej)
{
        const po_channel_adapter_t *a = po_channel_find(ctx->channel);
        size_t id_len;
        char *id;
        po_err_t err;

        memset(rej, 0, sizeof(*rej));
        if (!a)
                return po_channel_reject(rej, PO_REJECT_UNKNOWN_CHANNEL, "channel",
                                         "no adapter for channel \"%.40s\"",
                                         ctx->channel ? ctx->channel : "");
        out->channel = po_arena_strndup(&out->arena, ctx->channel, strlen(ctx->channel));
        out->account = po_arena_strndup(&out->arena, ctx->account ? ctx->account : "",
                                        ctx->account ? strlen(ctx->account) : 0);
        if (!out->channel || !out->account)
                return PO_ERR_NOMEM;
        out->received_at_us = ctx->received_at_us;
        err = a->parse(payload, len, ctx, out, rej);
        if (err)
                return err;
        if (!out->external_id || !out->external_id[0])
                return po_channel_reject(rej, PO_REJECT_MISSING_FIELD, "id",
                                         "the order has no id");
        /* Duplicates are decided on channel + external id. */
        id_len = strlen(ctx->channel) + 1 + strlen(out->external_id);
        id = po_arena_alloc(&out->arena, id_len + 1);
        if (!id)
                return PO_ERR_NOMEM;
        snprintf(id, id_len + 1, "%s:%s", ctx->channel, out->external_id);
        out->order_id = id;
        return check_canonical(ctx, out, rej);
}
