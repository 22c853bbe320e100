/* JSON cases to po_pricing carts and results back (see po/calcjson.h). */
#include "po/calcjson.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "po/pricing.h"

struct po_calcjson {
        po_pricing_ws_t *ws;
};

/* One case being parsed: everything it allocates, freed by case_release. */
typedef struct case_ctx {
        json_t *root;
        po_line_t *lines;
        po_str_t *codes;
        po_code_def_t *defs;
        po_str_t *strs; /* pool for every string list of every definition */
        size_t strs_used, strs_cap;
        po_tier_value_t *tiers; /* pool for every tier_values entry */
        size_t tiers_used, tiers_cap;
        /* Set when the strings of a definition must outlive root
         * (po_calcjson_parse_def): each is copied into alloc's memory. */
        po_calcjson_alloc_fn alloc;
        void *alloc_ctx;
        int nomem; /* the failure was an allocation */
        char msg[256];
} case_ctx_t;

#define BAD(ctx, ...) (snprintf((ctx)->msg, sizeof((ctx)->msg), __VA_ARGS__), -1)

po_calcjson_t *po_calcjson_new(void)
{
        po_calcjson_t *cj = calloc(1, sizeof(*cj));

        if (!cj)
                return NULL;
        cj->ws = po_pricing_ws_new();
        if (!cj->ws) {
                free(cj);
                return NULL;
        }
        return cj;
}

void po_calcjson_destroy(po_calcjson_t *cj)
{
        if (!cj)
                return;
        po_pricing_ws_destroy(cj->ws);
        free(cj);
}

static void case_release(case_ctx_t *c)
{
        json_decref(c->root);
        free(c->lines);
        free(c->codes);
        free(c->defs);
        free(c->strs);
        free(c->tiers);
}

/* Returns the member or NULL when absent or JSON null (null = absent). */
static json_t *member(json_t *obj, const char *key)
{
        json_t *v = json_object_get(obj, key);

        return json_is_null(v) ? NULL : v;
}

/* Makes s independent of the JSON tree when the context asks for copies. */
static int keep_str(case_ctx_t *c, po_str_t *s)
{
        char *p;

        if (!c->alloc)
                return 0;
        p = c->alloc(c->alloc_ctx, s->len + 1);
        if (!p) {
                c->nomem = 1;
                return BAD(c, "out of memory");
        }
        memcpy(p, s->ptr, s->len);
        p[s->len] = '\0';
        s->ptr = p;
        return 0;
}

static int get_str(case_ctx_t *c, json_t *obj, const char *key, const char *path,
                   int required, po_str_t *out, int *present)
{
        json_t *v = member(obj, key);

        if (present)
                *present = v != NULL;
        if (!v) {
                if (required)
                        return BAD(c, "%s%s: required", path, key);
                out->ptr = "";
                out->len = 0;
                return 0;
        }
        if (!json_is_string(v))
                return BAD(c, "%s%s: must be a string", path, key);
        out->ptr = json_string_value(v);
        out->len = json_string_length(v);
        return 0;
}

static int get_int(case_ctx_t *c, json_t *obj, const char *key, const char *path,
                   int required, int64_t min, int64_t max, po_opt_i64_t *out)
{
        json_t *v = member(obj, key);
        json_int_t i;

        out->present = v != NULL;
        out->value = 0;
        if (!v)
                return required ? BAD(c, "%s%s: required", path, key) : 0;
        if (!json_is_integer(v))
                return BAD(c, "%s%s: must be an integer", path, key);
        i = json_integer_value(v);
        if (i < min || i > max)
                return BAD(c, "%s%s: %lld is outside %lld..%lld", path, key, (long long)i,
                           (long long)min, (long long)max);
        out->value = (int64_t)i;
        return 0;
}

/* An enum given as a string; names[] is NULL-terminated; def when absent. */
static int get_enum(case_ctx_t *c, json_t *obj, const char *key, const char *path,
                    const char *const *names, int def, int required, int *out)
{
        json_t *v = member(obj, key);
        int i;

        if (!v) {
                *out = def;
                return required ? BAD(c, "%s%s: required", path, key) : 0;
        }
        if (!json_is_string(v))
                return BAD(c, "%s%s: must be a string", path, key);
        for (i = 0; names[i]; i++)
                if (strcmp(json_string_value(v), names[i]) == 0) {
                        *out = i;
                        return 0;
                }
        return BAD(c, "%s%s: unknown value", path, key);
}

static int get_currency(case_ctx_t *c, json_t *obj, const char *key, const char *path,
                        int required, char out[4])
{
        po_str_t s;
        int present;
        size_t i;

        out[0] = '\0';
        if (get_str(c, obj, key, path, required, &s, &present))
                return -1;
        if (!present)
                return 0;
        if (s.len != 3)
                return BAD(c, "%s%s: must be 3 upper-case letters", path, key);
        for (i = 0; i < 3; i++)
                if (s.ptr[i] < 'A' || s.ptr[i] > 'Z')
                        return BAD(c, "%s%s: must be 3 upper-case letters", path, key);
        memcpy(out, s.ptr, 3);
        out[3] = '\0';
        return 0;
}

static int get_instant(case_ctx_t *c, json_t *obj, const char *key, const char *path,
                       int required, po_instant_t *out, int *present)
{
        po_str_t s;

        if (get_str(c, obj, key, path, required, &s, present))
                return -1;
        if (*present && po_instant_parse(s.ptr, s.len, out))
                return BAD(c, "%s%s: not an RFC 3339 timestamp", path, key);
        return 0;
}

static size_t list_size(json_t *obj, const char *key)
{
        json_t *v = member(obj, key);

        return json_is_array(v) ? json_array_size(v) : 0;
}

/* A list of strings into the case's pool (reserved beforehand). */
static int get_str_list(case_ctx_t *c, json_t *obj, const char *key, const char *path,
                        po_str_list_t *out)
{
        json_t *v = member(obj, key), *e;
        size_t i;

        memset(out, 0, sizeof(*out));
        if (!v)
                return 0;
        if (!json_is_array(v))
                return BAD(c, "%s%s: must be an array of strings", path, key);
        out->present = 1;
        out->items = c->strs + c->strs_used;
        json_array_foreach(v, i, e)
        {
                if (!json_is_string(e))
                        return BAD(c, "%s%s[%zu]: must be a string", path, key, i);
                c->strs[c->strs_used].ptr = json_string_value(e);
                c->strs[c->strs_used].len = json_string_length(e);
                if (keep_str(c, &c->strs[c->strs_used]))
                        return -1;
                c->strs_used++;
        }
        out->count = json_array_size(v);
        return 0;
}

static const char *const tax_modes[] = {"exclusive", "inclusive", NULL};
static const char *const roundings[] = {"half_up", "half_even", NULL};
static const char *const stackings[] = {"best_only", "combine", NULL};
static const char *const statuses[] = {"active", "paused", "archived", NULL};
static const char *const types[] = {"percentage", "fixed", NULL};

static int parse_line(case_ctx_t *c, json_t *o, size_t i, po_line_t *l)
{
        char path[48];
        po_opt_i64_t v;

        snprintf(path, sizeof(path), "lines[%zu].", i);
        if (!json_is_object(o))
                return BAD(c, "lines[%zu]: must be an object", i);
        if (get_str(c, o, "id", path, 1, &l->id, NULL) ||
            get_str(c, o, "sku", path, 1, &l->sku, NULL) ||
            get_str(c, o, "category", path, 1, &l->category, NULL))
                return -1;
        if (get_int(c, o, "unit_price", path, 1, 0, PO_PRICING_MAX_UNIT_PRICE, &v))
                return -1;
        l->unit_price = v.value;
        if (get_int(c, o, "quantity", path, 1, 1, PO_PRICING_MAX_QUANTITY, &v))
                return -1;
        l->quantity = v.value;
        if (get_int(c, o, "tax_rate_ppm", path, 1, 0, PO_PRICING_MAX_PPM, &v))
                return -1;
        l->tax_rate_ppm = v.value;
        if (get_int(c, o, "stock", path, 0, 0, PO_PRICING_MAX_VALUE, &l->stock) ||
            get_int(c, o, "unit_cost", path, 0, 0, PO_PRICING_MAX_VALUE, &l->unit_cost))
                return -1;
        return 0;
}

static int parse_targets(case_ctx_t *c, json_t *t, const char *dpath, po_targets_t *out)
{
        char path[64];

        memset(out, 0, sizeof(*out));
        if (!t)
                return 0;
        if (!json_is_object(t))
                return BAD(c, "%stargets: must be an object", dpath);
        snprintf(path, sizeof(path), "%stargets.", dpath);
        if (get_str_list(c, t, "skus", path, &out->skus) ||
            get_str_list(c, t, "categories", path, &out->categories) ||
            get_str_list(c, t, "exclude_skus", path, &out->exclude_skus) ||
            get_str_list(c, t, "exclude_categories", path, &out->exclude_categories) ||
            get_int(c, t, "low_stock_max", path, 0, 0, PO_PRICING_MAX_VALUE,
                    &out->low_stock_max) ||
            get_int(c, t, "max_margin_bp", path, 0, 0, PO_PRICING_MAX_VALUE,
                    &out->max_margin_bp))
                return -1;
        return 0;
}

static int parse_tier_values(case_ctx_t *c, json_t *o, const char *path, int64_t max,
                             po_code_def_t *d)
{
        json_t *tv = member(o, "tier_values"), *v;
        const char *k;

        d->tier_values = c->tiers + c->tiers_used;
        d->tier_value_count = 0;
        if (!tv)
                return 0;
        if (!json_is_object(tv))
                return BAD(c, "%stier_values: must be an object of tier to integer",
                           path);
        json_object_foreach(tv, k, v)
        {
                po_tier_value_t *e = &c->tiers[c->tiers_used];

                if (!json_is_integer(v) || json_integer_value(v) < 0 ||
                    json_integer_value(v) > max)
                        return BAD(c, "%stier_values.%.40s: must be an integer 0..%lld",
                                   path, k, (long long)max);
                e->tier.ptr = k;
                e->tier.len = strlen(k);
                e->value = (int64_t)json_integer_value(v);
                if (keep_str(c, &e->tier))
                        return -1;
                c->tiers_used++;
                d->tier_value_count++;
        }
        return 0;
}

/* One definition (section 3) from the object o; field names in messages
 * are prefixed with path ("definitions[3]."). Lists take their entries from
 * the context's pools, reserved beforehand (def_pool_need). */
static int parse_def(case_ctx_t *c, json_t *o, const char *path, po_code_def_t *d)
{
        po_str_t code;
        po_opt_i64_t v, prio;
        int st, ty, present;
        json_t *comb;
        int64_t max;

        memset(d, 0, sizeof(*d));
        if (get_str(c, o, "code", path, 1, &code, NULL))
                return -1;
        d->code_len = po_code_normalize(code.ptr, code.len, d->code, sizeof(d->code));
        if (!po_code_is_valid(d->code, d->code_len))
                return BAD(c, "%scode: must be 3..64 characters of A-Z 0-9 - _", path);
        if (get_enum(c, o, "status", path, statuses, 0, 1, &st) ||
            get_enum(c, o, "type", path, types, 0, 1, &ty))
                return -1;
        d->status = (po_code_status_t)st;
        d->type = (po_code_type_t)ty;
        max = d->type == PO_CODE_PERCENTAGE ? PO_PRICING_MAX_BP : PO_PRICING_MAX_VALUE;
        if (get_int(c, o, "value", path, 1, 0, max, &v))
                return -1;
        d->value = v.value;
        if (get_currency(c, o, "currency", path, 0, d->currency) ||
            get_int(c, o, "min_spend", path, 0, 0, PO_PRICING_MAX_VALUE, &d->min_spend) ||
            get_int(c, o, "max_spend", path, 0, 0, PO_PRICING_MAX_VALUE, &d->max_spend) ||
            get_int(c, o, "max_discount", path, 0, 0, PO_PRICING_MAX_VALUE,
                    &d->max_discount))
                return -1;
        if (!d->currency[0] && (d->type == PO_CODE_FIXED || d->min_spend.present ||
                                d->max_spend.present || d->max_discount.present))
                return BAD(c,
                           "%scurrency: required for fixed codes and with min_spend, "
                           "max_spend or max_discount",
                           path);
        if (get_instant(c, o, "starts_at", path, 0, &d->starts_at, &d->has_starts_at) ||
            get_instant(c, o, "expires_at", path, 0, &d->expires_at,
                        &d->has_expires_at) ||
            get_int(c, o, "usage_limit", path, 0, 0, PO_PRICING_MAX_VALUE,
                    &d->usage_limit) ||
            get_int(c, o, "per_customer_limit", path, 0, 0, PO_PRICING_MAX_VALUE,
                    &d->per_customer_limit) ||
            get_str_list(c, o, "tiers", path, &d->tiers) ||
            parse_tier_values(c, o, path, max, d) ||
            get_str_list(c, o, "channels", path, &d->channels) ||
            get_str(c, o, "customer_id", path, 0, &d->customer_id, &present) ||
            (present && keep_str(c, &d->customer_id)) ||
            parse_targets(c, member(o, "targets"), path, &d->targets))
                return -1;
        d->has_customer_id = present;
        comb = member(o, "combinable");
        if (comb && !json_is_boolean(comb))
                return BAD(c, "%scombinable: must be true or false", path);
        d->combinable = comb && json_is_true(comb);
        if (get_int(c, o, "priority", path, 0, 0, PO_PRICING_MAX_VALUE, &prio))
                return -1;
        d->priority = prio.value;
        return 0;
}

/* Adds to *strs and *tiers the pool entries definition d will need. */
static void def_pool_need(json_t *d, size_t *strs, size_t *tiers)
{
        json_t *t, *tv;

        if (!json_is_object(d))
                return;
        *strs += list_size(d, "tiers") + list_size(d, "channels");
        t = member(d, "targets");
        if (json_is_object(t))
                *strs += list_size(t, "skus") + list_size(t, "categories") +
                         list_size(t, "exclude_skus") +
                         list_size(t, "exclude_categories");
        tv = member(d, "tier_values");
        if (json_is_object(tv))
                *tiers += json_object_size(tv);
}

/* Counts the pool entries every definition will need, so the pools never move. */
static int reserve_pools(case_ctx_t *c, json_t *defs)
{
        json_t *d;
        size_t i, strs = 0, tiers = 0;

        json_array_foreach(defs, i, d) def_pool_need(d, &strs, &tiers);
        c->strs = malloc((strs ? strs : 1) * sizeof(*c->strs));
        c->tiers = malloc((tiers ? tiers : 1) * sizeof(*c->tiers));
        c->strs_cap = strs;
        c->tiers_cap = tiers;
        return c->strs && c->tiers ? 0 : BAD(c, "out of memory");
}

static int parse_usage(case_ctx_t *c, json_t *usage, po_code_def_t *defs, size_t ndefs)
{
        char norm[PO_PRICING_CODE_MAX + 1], path[160];
        const char *k;
        json_t *v;
        size_t i, n;
        po_opt_i64_t total, cust;

        if (!usage)
                return 0;
        if (!json_is_object(usage))
                return BAD(c, "usage: must be an object of code to {total, customer}");
        json_object_foreach(usage, k, v)
        {
                snprintf(path, sizeof(path), "usage.%.64s.", k);
                if (!json_is_object(v))
                        return BAD(c, "usage.%.64s: must be an object", k);
                if (get_int(c, v, "total", path, 0, 0, PO_PRICING_MAX_VALUE, &total) ||
                    get_int(c, v, "customer", path, 0, 0, PO_PRICING_MAX_VALUE, &cust))
                        return -1;
                n = po_code_normalize(k, strlen(k), norm, sizeof(norm));
                if (n > PO_PRICING_CODE_MAX)
                        continue; /* no definition can match it */
                for (i = 0; i < ndefs; i++) {
                        if (defs[i].code_len != n || memcmp(defs[i].code, norm, n) != 0)
                                continue;
                        /* A negative marker: this definition's usage was given. */
                        if (defs[i].used_total < 0)
                                return BAD(
                                    c, "usage.%.64s: given twice after normalization", k);
                        defs[i].used_total = -1 - total.value;
                        defs[i].used_by_customer = cust.value;
                }
        }
        for (i = 0; i < ndefs; i++)
                if (defs[i].used_total < 0)
                        defs[i].used_total = -1 - defs[i].used_total;
        return 0;
}

static int parse_case(case_ctx_t *c, po_pricing_cart_t *cart)
{
        json_t *root = c->root, *lines, *codes, *defs, *cust, *e;
        int tm, rd, sk, present;
        size_t i, j;

        memset(cart, 0, sizeof(*cart));
        if (!json_is_object(root))
                return BAD(c, "a case must be a JSON object");
        if (get_currency(c, root, "currency", "", 1, cart->currency) ||
            get_enum(c, root, "tax_mode", "", tax_modes, 0, 0, &tm) ||
            get_enum(c, root, "rounding", "", roundings, 0, 0, &rd) ||
            get_enum(c, root, "stacking", "", stackings, 0, 0, &sk) ||
            get_instant(c, root, "now", "", 1, &cart->now, &present) ||
            get_str(c, root, "channel", "", 0, &cart->channel, &cart->has_channel))
                return -1;
        cart->tax_mode = (po_tax_mode_t)tm;
        cart->rounding = (po_rounding_t)rd;
        cart->stacking = (po_stacking_t)sk;
        cust = member(root, "customer");
        if (cust) {
                if (!json_is_object(cust))
                        return BAD(c, "customer: must be an object");
                if (get_str(c, cust, "id", "customer.", 0, &cart->customer_id,
                            &cart->has_customer_id) ||
                    get_str(c, cust, "tier", "customer.", 0, &cart->tier,
                            &cart->has_tier))
                        return -1;
        }

        lines = member(root, "lines");
        if (!json_is_array(lines))
                return BAD(c, "lines: required, an array");
        if (json_array_size(lines) < 1 || json_array_size(lines) > PO_PRICING_MAX_LINES)
                return BAD(c, "lines: %zu given, 1..1000 allowed",
                           json_array_size(lines));
        c->lines = malloc(json_array_size(lines) * sizeof(*c->lines));
        if (!c->lines)
                return BAD(c, "out of memory");
        json_array_foreach(lines, i, e) if (parse_line(c, e, i, &c->lines[i])) return -1;
        cart->lines = c->lines;
        cart->line_count = json_array_size(lines);

        codes = member(root, "codes");
        if (!json_is_array(codes))
                return BAD(c, "codes: required, an array of strings");
        if (json_array_size(codes) < 1 || json_array_size(codes) > PO_PRICING_MAX_CODES)
                return BAD(c, "codes: %zu given, 1..20 allowed", json_array_size(codes));
        c->codes = malloc(json_array_size(codes) * sizeof(*c->codes));
        if (!c->codes)
                return BAD(c, "out of memory");
        json_array_foreach(codes, i, e)
        {
                if (!json_is_string(e))
                        return BAD(c, "codes[%zu]: must be a string", i);
                c->codes[i].ptr = json_string_value(e);
                c->codes[i].len = json_string_length(e);
        }
        cart->codes = c->codes;
        cart->code_count = json_array_size(codes);

        defs = member(root, "definitions");
        if (defs && !json_is_array(defs))
                return BAD(c, "definitions: must be an array");
        if (defs && json_array_size(defs) > 0) {
                c->defs = calloc(json_array_size(defs), sizeof(*c->defs));
                if (!c->defs || reserve_pools(c, defs))
                        return BAD(c, "out of memory");
                json_array_foreach(defs, i, e)
                {
                        char path[48];

                        if (!json_is_object(e))
                                return BAD(c, "definitions[%zu]: must be an object", i);
                        snprintf(path, sizeof(path), "definitions[%zu].", i);
                        if (parse_def(c, e, path, &c->defs[i]))
                                return -1;
                        for (j = 0; j < i; j++)
                                if (strcmp(c->defs[j].code, c->defs[i].code) == 0)
                                        return BAD(
                                            c,
                                            "definitions[%zu].code: %s is defined twice",
                                            i, c->defs[i].code);
                }
                cart->defs = c->defs;
                cart->def_count = json_array_size(defs);
        }
        return parse_usage(c, member(root, "usage"), c->defs, cart->def_count);
}

po_err_t po_calcjson_parse_def(struct json_t *obj, const char *path,
                               po_calcjson_alloc_fn alloc, void *alloc_ctx,
                               po_code_def_t *out, char *errstr, size_t errstr_size)
{
        case_ctx_t c;
        size_t strs = 0, tiers = 0;

        memset(out, 0, sizeof(*out));
        if (!obj || !path || !alloc)
                return PO_ERR_INVALID_ARG;
        if (!json_is_object(obj)) {
                snprintf(errstr, errstr_size, "%sa code definition must be a JSON object",
                         path);
                return PO_ERR_BAD_INPUT;
        }
        memset(&c, 0, sizeof(c));
        c.alloc = alloc;
        c.alloc_ctx = alloc_ctx;
        def_pool_need(obj, &strs, &tiers);
        c.strs = alloc(alloc_ctx, (strs ? strs : 1) * sizeof(*c.strs));
        c.tiers = alloc(alloc_ctx, (tiers ? tiers : 1) * sizeof(*c.tiers));
        c.strs_cap = strs;
        c.tiers_cap = tiers;
        if (!c.strs || !c.tiers) {
                snprintf(errstr, errstr_size, "out of memory");
                return PO_ERR_NOMEM;
        }
        if (parse_def(&c, obj, path, out)) {
                memset(out, 0, sizeof(*out));
                snprintf(errstr, errstr_size, "%s", c.msg);
                return c.nomem ? PO_ERR_NOMEM : PO_ERR_BAD_INPUT;
        }
        return PO_OK;
}

/* Appends s as a JSON string literal. */
static void add_json_str(po_dynbuf_t *out, const char *s, size_t len)
{
        static const char hex[] = "0123456789abcdef";
        size_t i, run = 0;

        po_dynbuf_add(out, "\"", 1);
        for (i = 0; i < len; i++) {
                unsigned char ch = (unsigned char)s[i];
                char esc[6] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15]};

                if (ch >= 0x20 && ch != '"' && ch != '\\')
                        continue;
                po_dynbuf_add(out, s + run, i - run);
                run = i + 1;
                if (ch == '"' || ch == '\\') {
                        esc[1] = (char)ch;
                        po_dynbuf_add(out, esc, 2);
                } else {
                        po_dynbuf_add(out, esc, 6);
                }
        }
        po_dynbuf_add(out, s + run, len - run);
        po_dynbuf_add(out, "\"", 1);
}

static void write_result(const po_pricing_cart_t *cart, const po_pricing_result_t *r,
                         unsigned flags, po_dynbuf_t *out, po_calcjson_spans_t *spans)
{
        char desc[256];
        size_t i, j;

        po_dynbuf_addf(out, "{\"currency\":\"%s\",\"subtotal\":%lld,\"discount_total\":",
                       cart->currency, (long long)r->subtotal);
        if (spans)
                spans->discount_total[0] = out->len;
        po_dynbuf_addf(out, "%lld", (long long)r->discount_total);
        if (spans)
                spans->discount_total[1] = out->len;
        po_dynbuf_addf(
            out,
            ",\"tax_total\":%lld,\"tax_total_before\":%lld,\"grand_total\":%lld,"
            "\"lines\":[",
            (long long)r->tax_total, (long long)r->tax_total_before,
            (long long)r->grand_total);
        for (i = 0; i < cart->line_count; i++) {
                const po_line_result_t *l = &r->lines[i];

                po_dynbuf_add(out, i ? ",{\"id\":" : "{\"id\":", i ? 7 : 6);
                add_json_str(out, cart->lines[i].id.ptr, cart->lines[i].id.len);
                po_dynbuf_addf(out,
                               ",\"subtotal\":%lld,\"discount\":%lld,\"net\":%lld,"
                               "\"tax\":%lld,\"total\":%lld,\"available\":%s}",
                               (long long)l->subtotal, (long long)l->discount,
                               (long long)l->net, (long long)l->tax, (long long)l->total,
                               l->available ? "true" : "false");
        }
        po_dynbuf_add(out, "],\"applied\":[", 13);
        if (spans)
                spans->applied[0] = out->len - 1;
        for (i = 0; i < r->applied_count; i++) {
                const po_applied_t *a = &r->applied[i];

                po_dynbuf_addf(out, "%s{\"code\":\"%s\",\"amount\":%lld,", i ? "," : "",
                               a->def->code, (long long)a->amount);
                if (flags & PO_CALCJSON_RECEIPTS) {
                        po_pricing_describe(a, cart, desc, sizeof(desc));
                        po_dynbuf_add(out, "\"description\":", 14);
                        add_json_str(out, desc, strlen(desc));
                        po_dynbuf_add(out, ",", 1);
                }
                po_dynbuf_add(out, "\"allocations\":[", 15);
                for (j = 0; j < a->allocation_count; j++) {
                        const po_line_t *l = &cart->lines[a->allocations[j].line];

                        po_dynbuf_add(
                            out, j ? ",{\"line_id\":" : "{\"line_id\":", j ? 12 : 11);
                        add_json_str(out, l->id.ptr, l->id.len);
                        po_dynbuf_addf(out, ",\"amount\":%lld}",
                                       (long long)a->allocations[j].amount);
                }
                po_dynbuf_add(out, "]}", 2);
        }
        po_dynbuf_add(out, "],\"rejected\":[", 14);
        if (spans) {
                spans->applied[1] = out->len - 13;
                spans->rejected[0] = out->len - 1;
        }
        for (i = 0; i < r->rejected_count; i++) {
                const char *code = r->normalized[r->rejected[i].request_index];

                po_dynbuf_add(out, i ? ",{\"code\":" : "{\"code\":", i ? 9 : 8);
                add_json_str(out, code, strlen(code));
                po_dynbuf_addf(out, ",\"reason\":\"%s\"}",
                               po_reason_str(r->rejected[i].reason));
        }
        po_dynbuf_add(out, "]}", 2);
        if (spans)
                spans->rejected[1] = out->len - 1;
}

static void write_error(const char *msg, po_dynbuf_t *out)
{
        static const char head[] = "{\"error\":{\"code\":\"BAD_INPUT\",\"message\":";

        po_dynbuf_add(out, head, sizeof(head) - 1);
        add_json_str(out, msg, strlen(msg));
        po_dynbuf_add(out, "}}", 2);
}

/* Prices the case of c->root (owned by c) into out. */
static po_err_t process(po_calcjson_t *cj, case_ctx_t *c, unsigned flags,
                        po_dynbuf_t *out, po_calcjson_spans_t *spans)
{
        po_pricing_cart_t cart;
        po_pricing_result_t r;

        if (parse_case(c, &cart)) {
                write_error(c->msg, out);
        } else if (po_pricing_run(cj->ws, &cart, &r, c->msg, sizeof(c->msg))) {
                write_error(c->msg, out);
        } else {
                write_result(&cart, &r, flags, out, spans);
                if (spans)
                        spans->error = 0;
        }
        case_release(c);
        if (out->failed)
                return PO_ERR_NOMEM;
        return PO_OK;
}

po_err_t po_calcjson_process(po_calcjson_t *cj, const char *json, size_t len,
                             unsigned flags, po_dynbuf_t *out)
{
        case_ctx_t c;
        json_error_t jerr;

        memset(&c, 0, sizeof(c));
        c.root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!c.root) {
                snprintf(c.msg, sizeof(c.msg), "not JSON: %s at column %d", jerr.text,
                         jerr.column);
                write_error(c.msg, out);
                case_release(&c);
                return out->failed ? PO_ERR_NOMEM : PO_OK;
        }
        return process(cj, &c, flags, out, NULL);
}

po_err_t po_calcjson_process_tree(po_calcjson_t *cj, struct json_t *root, unsigned flags,
                                  po_dynbuf_t *out, po_calcjson_spans_t *spans)
{
        case_ctx_t c;

        memset(&c, 0, sizeof(c));
        c.root = json_incref(root);
        if (spans) {
                memset(spans, 0, sizeof(*spans));
                spans->error = 1;
                spans->start = out->len;
        }
        return process(cj, &c, flags, out, spans);
}
