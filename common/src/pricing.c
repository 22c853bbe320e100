/* The pricing core: PRICING_SPEC.md sections 4 to 7. See po/pricing.h. */
#include "po/pricing.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One code that passed section 4, in V order (priority desc, code asc). */
typedef struct passed {
        size_t request;
        const po_code_def_t *def;
        int64_t tier_value; /* v of section 5 */
} passed_t;

typedef struct rem_entry {
        po_i128 rem;
        size_t line;
} rem_entry_t;

struct po_pricing_ws {
        size_t line_cap, code_cap, norm_cap;
        int64_t *orig;            /* [lines] unit_price * quantity */
        int64_t *cur;             /* [lines] amounts while a plan is applied */
        unsigned char *available; /* [lines] quantity <= stock */
        unsigned char *elig;      /* [codes][lines] eligibility of each passed code */
        int64_t *alloc;    /* [codes][lines] allocation of the plan being applied */
        rem_entry_t *rems; /* [lines] */
        po_line_result_t *line_results;
        po_allocation_t *alloc_out; /* [codes][lines] compacted, non-zero */
        po_applied_t *applied;
        po_rejected_t *rejected;
        po_reason_t *reason;      /* [codes] per request */
        passed_t *passed;         /* [codes] V */
        size_t *plan, *best_plan; /* [codes] indices into passed */
        int64_t *plan_d;          /* [codes] D of each code of the chosen plan */
        char *norm;               /* normalized spellings, NUL-separated */
        const char **norm_ptr;    /* [codes] */
};

const char *po_reason_str(po_reason_t reason)
{
        static const char *names[PO_REASON__COUNT] = {
            "",
            "MALFORMED_CODE",
            "DUPLICATE_CODE",
            "UNKNOWN_CODE",
            "INACTIVE",
            "NOT_YET_VALID",
            "EXPIRED",
            "CHANNEL_NOT_ALLOWED",
            "CUSTOMER_REQUIRED",
            "CUSTOMER_NOT_ALLOWED",
            "TIER_NOT_ELIGIBLE",
            "USAGE_LIMIT_REACHED",
            "CUSTOMER_LIMIT_REACHED",
            "CURRENCY_MISMATCH",
            "MIN_SPEND_NOT_MET",
            "MAX_SPEND_EXCEEDED",
            "NO_ELIGIBLE_ITEMS",
            "ITEM_UNAVAILABLE",
            "NOT_COMBINABLE",
            "NOTHING_TO_DISCOUNT",
        };
        return reason < PO_REASON__COUNT ? names[reason] : "";
}

po_pricing_ws_t *po_pricing_ws_new(void)
{
        return calloc(1, sizeof(po_pricing_ws_t));
}

static void ws_free_arrays(po_pricing_ws_t *ws)
{
        free(ws->orig);
        ws->orig = NULL;
        free(ws->cur);
        ws->cur = NULL;
        free(ws->available);
        ws->available = NULL;
        free(ws->elig);
        ws->elig = NULL;
        free(ws->alloc);
        ws->alloc = NULL;
        free(ws->rems);
        ws->rems = NULL;
        free(ws->line_results);
        ws->line_results = NULL;
        free(ws->alloc_out);
        ws->alloc_out = NULL;
        free(ws->applied);
        ws->applied = NULL;
        free(ws->rejected);
        ws->rejected = NULL;
        free(ws->reason);
        ws->reason = NULL;
        free(ws->passed);
        ws->passed = NULL;
        free(ws->plan);
        ws->plan = NULL;
        free(ws->best_plan);
        ws->best_plan = NULL;
        free(ws->plan_d);
        ws->plan_d = NULL;
        free(ws->norm_ptr);
        ws->norm_ptr = NULL;
}

void po_pricing_ws_destroy(po_pricing_ws_t *ws)
{
        if (!ws)
                return;
        ws_free_arrays(ws);
        free(ws->norm);
        free(ws);
}

/* Grows the workspace to hold lines x codes; keeps it when big enough. */
static po_err_t ws_reserve(po_pricing_ws_t *ws, size_t lines, size_t codes, size_t norm)
{
        if (lines > ws->line_cap || codes > ws->code_cap) {
                size_t l = lines > ws->line_cap ? lines : ws->line_cap;
                size_t c = codes > ws->code_cap ? codes : ws->code_cap;

                if (c == 0)
                        c = 1; /* an order without codes: no malloc(0) */

                ws_free_arrays(ws);
                ws->line_cap = ws->code_cap = 0;
                ws->orig = malloc(l * sizeof(*ws->orig));
                ws->cur = malloc(l * sizeof(*ws->cur));
                ws->available = malloc(l);
                ws->elig = malloc(l * c);
                ws->alloc = malloc(l * c * sizeof(*ws->alloc));
                ws->rems = malloc(l * sizeof(*ws->rems));
                ws->line_results = malloc(l * sizeof(*ws->line_results));
                ws->alloc_out = malloc(l * c * sizeof(*ws->alloc_out));
                ws->applied = malloc(c * sizeof(*ws->applied));
                ws->rejected = malloc(c * sizeof(*ws->rejected));
                ws->reason = malloc(c * sizeof(*ws->reason));
                ws->passed = malloc(c * sizeof(*ws->passed));
                ws->plan = malloc(c * sizeof(*ws->plan));
                ws->best_plan = malloc(c * sizeof(*ws->best_plan));
                ws->plan_d = malloc(c * sizeof(*ws->plan_d));
                ws->norm_ptr = malloc(c * sizeof(*ws->norm_ptr));
                if (!ws->orig || !ws->cur || !ws->available || !ws->elig || !ws->alloc ||
                    !ws->rems || !ws->line_results || !ws->alloc_out || !ws->applied ||
                    !ws->rejected || !ws->reason || !ws->passed || !ws->plan ||
                    !ws->best_plan || !ws->plan_d || !ws->norm_ptr) {
                        ws_free_arrays(ws);
                        return PO_ERR_NOMEM;
                }
                ws->line_cap = l;
                ws->code_cap = c;
        }
        if (norm > ws->norm_cap) {
                char *p = realloc(ws->norm, norm);

                if (!p)
                        return PO_ERR_NOMEM;
                ws->norm = p;
                ws->norm_cap = norm;
        }
        return PO_OK;
}

static int is_space(char c)
{
        return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

size_t po_code_normalize(const char *in, size_t len, char *out, size_t out_size)
{
        size_t b = 0, e = len, i, n;

        while (b < e && is_space(in[b]))
                b++;
        while (e > b && is_space(in[e - 1]))
                e--;
        n = e - b;
        for (i = 0; i < n && out_size > 0 && i < out_size - 1; i++) {
                char c = in[b + i];

                out[i] = (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
        }
        if (out_size > 0)
                out[i] = '\0';
        return n;
}

int po_code_is_valid(const char *code, size_t len)
{
        size_t i;

        if (len < PO_PRICING_CODE_MIN || len > PO_PRICING_CODE_MAX)
                return 0;
        for (i = 0; i < len; i++) {
                char c = code[i];

                if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                      c == '_'))
                        return 0;
        }
        return 1;
}

int po_instant_cmp(po_instant_t a, po_instant_t b)
{
        if (a.sec != b.sec)
                return a.sec < b.sec ? -1 : 1;
        if (a.nsec != b.nsec)
                return a.nsec < b.nsec ? -1 : 1;
        return 0;
}

static int str_eq(po_str_t a, po_str_t b)
{
        return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static int list_has(const po_str_list_t *l, po_str_t s)
{
        size_t i;

        for (i = 0; i < l->count; i++)
                if (str_eq(l->items[i], s))
                        return 1;
        return 0;
}

static int line_targeted(const po_line_t *line, const po_targets_t *t)
{
        if (t->skus.present && !list_has(&t->skus, line->sku))
                return 0;
        if (t->categories.present && !list_has(&t->categories, line->category))
                return 0;
        if (t->exclude_skus.present && list_has(&t->exclude_skus, line->sku))
                return 0;
        if (t->exclude_categories.present &&
            list_has(&t->exclude_categories, line->category))
                return 0;
        if (t->low_stock_max.present &&
            (!line->stock.present || line->stock.value > t->low_stock_max.value))
                return 0;
        if (t->max_margin_bp.present) {
                if (!line->unit_cost.present)
                        return 0;
                /* (unit_price - unit_cost) * 10000 <= max_margin_bp * unit_price,
                 * exactly. */
                if ((po_i128)(line->unit_price - line->unit_cost.value) * 10000 >
                    (po_i128)t->max_margin_bp.value * line->unit_price)
                        return 0;
        }
        return 1;
}

static const po_code_def_t *find_def(const po_pricing_cart_t *cart, const char *code,
                                     size_t len)
{
        size_t i;

        for (i = 0; i < cart->def_count; i++)
                if (cart->defs[i].code_len == len &&
                    memcmp(cart->defs[i].code, code, len) == 0)
                        return &cart->defs[i];
        return NULL;
}

/* v of section 5: the tier's value when the cart's tier has one. */
static int64_t code_value(const po_code_def_t *def, const po_pricing_cart_t *cart)
{
        size_t i;

        if (cart->has_tier)
                for (i = 0; i < def->tier_value_count; i++)
                        if (str_eq(def->tier_values[i].tier, cart->tier))
                                return def->tier_values[i].value;
        return def->value;
}

/* Section 4 checks 3..17 for one code; fills elig[] (targeted && available). */
static po_reason_t check_code(const po_pricing_cart_t *cart, const po_code_def_t *def,
                              int64_t subtotal, po_pricing_ws_t *ws, unsigned char *elig)
{
        size_t i;
        int any_targeted = 0, any_eligible = 0;

        if (!def)
                return PO_REASON_UNKNOWN_CODE;
        if (def->status != PO_CODE_ACTIVE)
                return PO_REASON_INACTIVE;
        if (def->has_starts_at && po_instant_cmp(cart->now, def->starts_at) < 0)
                return PO_REASON_NOT_YET_VALID;
        if (def->has_expires_at && po_instant_cmp(cart->now, def->expires_at) >= 0)
                return PO_REASON_EXPIRED;
        if (def->channels.present &&
            (!cart->has_channel || !list_has(&def->channels, cart->channel)))
                return PO_REASON_CHANNEL_NOT_ALLOWED;
        if ((def->has_customer_id || def->tiers.present ||
             def->per_customer_limit.present) &&
            !cart->has_customer_id)
                return PO_REASON_CUSTOMER_REQUIRED;
        if (def->tiers.present && !cart->has_tier)
                return PO_REASON_CUSTOMER_REQUIRED;
        if (def->has_customer_id && !str_eq(def->customer_id, cart->customer_id))
                return PO_REASON_CUSTOMER_NOT_ALLOWED;
        if (def->tiers.present && !list_has(&def->tiers, cart->tier))
                return PO_REASON_TIER_NOT_ELIGIBLE;
        if (def->usage_limit.present && def->used_total >= def->usage_limit.value)
                return PO_REASON_USAGE_LIMIT_REACHED;
        if (def->per_customer_limit.present &&
            def->used_by_customer >= def->per_customer_limit.value)
                return PO_REASON_CUSTOMER_LIMIT_REACHED;
        if (def->currency[0] && memcmp(def->currency, cart->currency, 4) != 0)
                return PO_REASON_CURRENCY_MISMATCH;
        if (def->min_spend.present && subtotal < def->min_spend.value)
                return PO_REASON_MIN_SPEND_NOT_MET;
        if (def->max_spend.present && subtotal > def->max_spend.value)
                return PO_REASON_MAX_SPEND_EXCEEDED;
        for (i = 0; i < cart->line_count; i++) {
                int t = line_targeted(&cart->lines[i], &def->targets);

                elig[i] = (unsigned char)(t && ws->available[i]);
                any_targeted |= t;
                any_eligible |= elig[i];
        }
        if (!any_targeted)
                return PO_REASON_NO_ELIGIBLE_ITEMS;
        if (!any_eligible)
                return PO_REASON_ITEM_UNAVAILABLE;
        return PO_REASON_NONE;
}

/* V order: priority descending, then code ascending. */
static int passed_before(const passed_t *a, const passed_t *b)
{
        int c;

        if (a->def->priority != b->def->priority)
                return a->def->priority > b->def->priority;
        c = strcmp(a->def->code, b->def->code);
        return c < 0;
}

static int rem_cmp(const void *pa, const void *pb)
{
        const rem_entry_t *a = pa, *b = pb;

        if (a->rem != b->rem)
                return a->rem > b->rem ? -1 : 1;
        return a->line < b->line ? -1 : (a->line > b->line);
}

/* Largest remainder first, ties to the earlier line. Carts are mostly a few
 * lines: insertion sort beats qsort's indirect calls there. */
static void sort_rems(rem_entry_t *rems, size_t n)
{
        size_t i, j;

        if (n > 32) {
                qsort(rems, n, sizeof(*rems), rem_cmp);
                return;
        }
        for (i = 1; i < n; i++) {
                rem_entry_t t = rems[i];

                for (j = i; j > 0 && rem_cmp(&t, &rems[j - 1]) < 0; j--)
                        rems[j] = rems[j - 1];
                rems[j] = t;
        }
}

/* Section 5: D of one code on amounts a[]; when alloc is non-NULL, also its
 * largest-remainder allocation (alloc[i] for every line, 0 when ineligible). */
static int64_t value_code(const passed_t *p, const unsigned char *elig, const int64_t *a,
                          size_t n, po_rounding_t rounding, int64_t *alloc,
                          rem_entry_t *rems)
{
        po_i128 e = 0, d;
        int64_t given = 0;
        size_t i, nrem = 0, r;

        for (i = 0; i < n; i++)
                if (elig[i])
                        e += a[i];
        if (p->def->type == PO_CODE_PERCENTAGE)
                d = po_money_div_round(e * p->tier_value, 10000, rounding);
        else
                d = p->tier_value;
        if (p->def->max_discount.present && d > p->def->max_discount.value)
                d = p->def->max_discount.value;
        if (d > e)
                d = e;
        if (!alloc)
                return (int64_t)d;
        for (i = 0; i < n; i++)
                alloc[i] = 0;
        if (d == 0)
                return 0;
        for (i = 0; i < n; i++) {
                po_i128 q;

                if (!elig[i])
                        continue;
                q = d * a[i];
                alloc[i] = (int64_t)(q / e);
                given += alloc[i];
                if (q % e) {
                        rems[nrem].rem = q % e;
                        rems[nrem].line = i;
                        nrem++;
                }
        }
        r = (size_t)((int64_t)d - given);
        /* r < nrem always holds (the remainders sum to r * e, each below e). */
        if (r > 0) {
                sort_rems(rems, nrem);
                for (i = 0; i < r && i < nrem; i++)
                        alloc[rems[i].line]++;
        }
        return (int64_t)d;
}

/* Applies a plan to ws->cur (reset from orig). With keep, stores each
 * code's D in ws->plan_d and its allocation in ws->alloc. Returns the total. */
static int64_t apply_plan(po_pricing_ws_t *ws, const size_t *plan, size_t k, size_t n,
                          po_rounding_t rounding, int keep)
{
        int64_t total = 0, d;
        size_t j, i;

        memcpy(ws->cur, ws->orig, n * sizeof(*ws->cur));
        for (j = 0; j < k; j++) {
                const passed_t *p = &ws->passed[plan[j]];
                const unsigned char *elig = ws->elig + plan[j] * n;
                int need_alloc = keep || j + 1 < k;
                int64_t *alloc = ws->alloc + j * n;

                d = value_code(p, elig, ws->cur, n, rounding, need_alloc ? alloc : NULL,
                               ws->rems);
                total += d;
                if (keep)
                        ws->plan_d[j] = d;
                if (need_alloc)
                        for (i = 0; i < n; i++)
                                ws->cur[i] -= alloc[i];
        }
        return total;
}

/* Whether plan a (ka codes, total ta) beats plan b (section 6 tie-breaks). */
static int plan_better(const po_pricing_ws_t *ws, const size_t *a, size_t ka, int64_t ta,
                       const size_t *b, size_t kb, int64_t tb)
{
        size_t j;
        int c;

        if (ta != tb)
                return ta > tb;
        if (ka != kb)
                return ka < kb;
        for (j = 0; j < ka && j < kb; j++) {
                c = strcmp(ws->passed[a[j]].def->code, ws->passed[b[j]].def->code);
                if (c)
                        return c < 0;
        }
        return ka < kb;
}

static void tax_line(po_tax_mode_t mode, po_rounding_t rounding, int64_t a, int64_t r,
                     int64_t *net, int64_t *tax)
{
        if (mode == PO_TAX_EXCLUSIVE) {
                *net = a;
                *tax = (int64_t)po_money_div_round((po_i128)a * r, 1000000, rounding);
        } else {
                *net = (int64_t)po_money_div_round((po_i128)a * 1000000, 1000000 + r,
                                                   rounding);
                *tax = a - *net;
        }
}

#define bad(errstr, size, ...) (snprintf((errstr), (size), __VA_ARGS__), PO_ERR_BAD_INPUT)

static po_err_t check_bounds(const po_pricing_cart_t *cart, po_i128 *subtotal,
                             char *errstr, size_t size)
{
        po_i128 s = 0;
        size_t i;

        if (cart->line_count < 1 || cart->line_count > PO_PRICING_MAX_LINES)
                return bad(errstr, size, "lines: %zu given, 1..1000 allowed",
                           cart->line_count);
        if (cart->code_count < (cart->codes_optional ? 0u : 1u) ||
            cart->code_count > PO_PRICING_MAX_CODES)
                return bad(errstr, size, "codes: %zu given, 1..20 allowed",
                           cart->code_count);
        for (i = 0; i < cart->line_count; i++) {
                const po_line_t *l = &cart->lines[i];

                if (l->unit_price < 0 || l->unit_price > PO_PRICING_MAX_UNIT_PRICE)
                        return bad(errstr, size, "lines[%zu].unit_price out of 0..10^10",
                                   i);
                if (l->quantity < 1 || l->quantity > PO_PRICING_MAX_QUANTITY)
                        return bad(errstr, size, "lines[%zu].quantity out of 1..10^6", i);
                if (l->tax_rate_ppm < 0 || l->tax_rate_ppm > PO_PRICING_MAX_PPM)
                        return bad(errstr, size, "lines[%zu].tax_rate_ppm out of 0..10^6",
                                   i);
                s += (po_i128)l->unit_price * l->quantity;
        }
        if (s > PO_PRICING_MAX_SUBTOTAL)
                return bad(errstr, size, "cart subtotal above 10^15 (%zu lines)",
                           cart->line_count);
        for (i = 0; i < cart->def_count; i++) {
                const po_code_def_t *d = &cart->defs[i];

                if (d->value < 0 || d->value > PO_PRICING_MAX_VALUE ||
                    (d->type == PO_CODE_PERCENTAGE && d->value > PO_PRICING_MAX_BP))
                        return bad(errstr, size, "definitions[%zu].value out of range",
                                   i);
                for (size_t t = 0; t < d->tier_value_count; t++)
                        if (d->tier_values[t].value < 0 ||
                            d->tier_values[t].value > PO_PRICING_MAX_VALUE ||
                            (d->type == PO_CODE_PERCENTAGE &&
                             d->tier_values[t].value > PO_PRICING_MAX_BP))
                                return bad(errstr, size,
                                           "definitions[%zu].tier_values out of range",
                                           i);
                if (d->max_discount.present && d->max_discount.value < 0)
                        return bad(errstr, size, "definitions[%zu].max_discount below 0",
                                   i);
        }
        *subtotal = s;
        return PO_OK;
}

static void normalize_requests(po_pricing_ws_t *ws, const po_pricing_cart_t *cart)
{
        size_t i, off = 0;

        for (i = 0; i < cart->code_count; i++) {
                size_t n = po_code_normalize(cart->codes[i].ptr, cart->codes[i].len,
                                             ws->norm + off, ws->norm_cap - off);

                ws->norm_ptr[i] = ws->norm + off;
                off += n + 1;
        }
}

/* Section 4 for every request: reasons, and V sorted into ws->passed. */
static size_t check_requests(po_pricing_ws_t *ws, const po_pricing_cart_t *cart,
                             int64_t subtotal)
{
        size_t i, j, nv = 0, n = cart->line_count;

        for (i = 0; i < cart->code_count; i++) {
                const char *code = ws->norm_ptr[i];
                size_t len = strlen(code);
                const po_code_def_t *def;
                po_reason_t reason;

                if (!po_code_is_valid(code, len)) {
                        ws->reason[i] = PO_REASON_MALFORMED_CODE;
                        continue;
                }
                for (j = 0; j < i; j++)
                        if (strcmp(ws->norm_ptr[j], code) == 0)
                                break;
                if (j < i) {
                        ws->reason[i] = PO_REASON_DUPLICATE_CODE;
                        continue;
                }
                def = find_def(cart, code, len);
                reason = check_code(cart, def, subtotal, ws, ws->elig + nv * n);
                ws->reason[i] = reason;
                if (reason != PO_REASON_NONE)
                        continue;
                ws->passed[nv].request = i;
                ws->passed[nv].def = def;
                ws->passed[nv].tier_value = code_value(def, cart);
                nv++;
        }
        /* Insertion sort of V (at most 20), moving eligibility rows along. */
        for (i = 1; i < nv; i++)
                for (j = i; j > 0 && passed_before(&ws->passed[j], &ws->passed[j - 1]);
                     j--) {
                        passed_t t = ws->passed[j];
                        unsigned char *r1 = ws->elig + j * n,
                                      *r0 = ws->elig + (j - 1) * n;
                        size_t x;

                        ws->passed[j] = ws->passed[j - 1];
                        ws->passed[j - 1] = t;
                        for (x = 0; x < n; x++) {
                                unsigned char c = r1[x];

                                r1[x] = r0[x];
                                r0[x] = c;
                        }
                }
        return nv;
}

/* Section 6: picks the best plan into ws->best_plan; returns its length. */
static size_t choose_plan(po_pricing_ws_t *ws, const po_pricing_cart_t *cart, size_t nv)
{
        size_t n = cart->line_count, best_k = 0, i, k = 0, singles = 0;
        int64_t best_total = -1, t;

        /* One candidate only (every code combinable, or a single code): it is
         * the plan, no need to value it twice. */
        for (i = 0; i < nv; i++)
                singles += !(cart->stacking == PO_STACK_COMBINE &&
                             ws->passed[i].def->combinable);
        if (singles == 0 || (nv == 1)) {
                for (i = 0; i < nv; i++)
                        ws->best_plan[i] = i;
                return nv;
        }

        for (i = 0; i < nv; i++) {
                if (cart->stacking == PO_STACK_COMBINE && ws->passed[i].def->combinable)
                        continue;
                ws->plan[0] = i;
                t = apply_plan(ws, ws->plan, 1, n, cart->rounding, 0);
                if (best_k == 0 ||
                    plan_better(ws, ws->plan, 1, t, ws->best_plan, best_k, best_total)) {
                        ws->best_plan[0] = i;
                        best_k = 1;
                        best_total = t;
                }
        }
        if (cart->stacking == PO_STACK_COMBINE) {
                for (i = 0; i < nv; i++)
                        if (ws->passed[i].def->combinable)
                                ws->plan[k++] = i;
                if (k > 0) {
                        t = apply_plan(ws, ws->plan, k, n, cart->rounding, 0);
                        if (best_k == 0 || plan_better(ws, ws->plan, k, t, ws->best_plan,
                                                       best_k, best_total)) {
                                memcpy(ws->best_plan, ws->plan, k * sizeof(*ws->plan));
                                best_k = k;
                        }
                }
        }
        return best_k;
}

po_err_t po_pricing_run(po_pricing_ws_t *ws, const po_pricing_cart_t *cart,
                        po_pricing_result_t *out, char *errstr, size_t errstr_size)
{
        size_t n = cart->line_count, i, j, nv, k, norm = 0, nalloc = 0;
        po_i128 s128;
        int64_t subtotal;
        po_err_t err;

        memset(out, 0, sizeof(*out));
        err = check_bounds(cart, &s128, errstr, errstr_size);
        if (err)
                return err;
        subtotal = (int64_t)s128;
        for (i = 0; i < cart->code_count; i++)
                norm += cart->codes[i].len + 1;
        err = ws_reserve(ws, n, cart->code_count, norm);
        if (err) {
                snprintf(errstr, errstr_size, "out of memory");
                return err;
        }
        for (i = 0; i < n; i++) {
                const po_line_t *l = &cart->lines[i];

                ws->orig[i] = l->unit_price * l->quantity;
                ws->available[i] =
                    (unsigned char)(!l->stock.present || l->quantity <= l->stock.value);
        }
        normalize_requests(ws, cart);
        nv = check_requests(ws, cart, subtotal);
        k = choose_plan(ws, cart, nv);

        /* The chosen plan, applied for real. */
        apply_plan(ws, ws->best_plan, k, n, cart->rounding, 1);
        for (i = 0; i < nv; i++)
                ws->reason[ws->passed[i].request] = PO_REASON_NOT_COMBINABLE;
        out->applied = ws->applied;
        for (j = 0; j < k; j++) {
                const passed_t *p = &ws->passed[ws->best_plan[j]];
                po_applied_t *a;

                if (ws->plan_d[j] == 0) {
                        ws->reason[p->request] = PO_REASON_NOTHING_TO_DISCOUNT;
                        continue;
                }
                ws->reason[p->request] = PO_REASON_NONE;
                a = &ws->applied[out->applied_count++];
                a->request_index = p->request;
                a->def = p->def;
                a->amount = ws->plan_d[j];
                a->allocations = ws->alloc_out + nalloc;
                a->allocation_count = 0;
                for (i = 0; i < n; i++) {
                        int64_t v = ws->alloc[j * n + i];

                        if (v) {
                                ws->alloc_out[nalloc].line = i;
                                ws->alloc_out[nalloc].amount = v;
                                nalloc++;
                                a->allocation_count++;
                        }
                }
        }
        out->rejected = ws->rejected;
        for (i = 0; i < cart->code_count; i++)
                if (ws->reason[i] != PO_REASON_NONE) {
                        ws->rejected[out->rejected_count].request_index = i;
                        ws->rejected[out->rejected_count].reason = ws->reason[i];
                        out->rejected_count++;
                }

        /* Section 7. */
        out->subtotal = subtotal;
        for (i = 0; i < n; i++) {
                po_line_result_t *lr = &ws->line_results[i];
                int64_t net0, tax0, r = cart->lines[i].tax_rate_ppm;

                lr->subtotal = ws->orig[i];
                lr->discount = ws->orig[i] - ws->cur[i];
                lr->available = ws->available[i];
                tax_line(cart->tax_mode, cart->rounding, ws->cur[i], r, &lr->net,
                         &lr->tax);
                lr->total = cart->tax_mode == PO_TAX_EXCLUSIVE ? ws->cur[i] + lr->tax
                                                               : ws->cur[i];
                tax_line(cart->tax_mode, cart->rounding, ws->orig[i], r, &net0, &tax0);
                out->discount_total += lr->discount;
                out->tax_total += lr->tax;
                out->tax_total_before += tax0;
                out->grand_total += lr->total;
        }
        out->lines = ws->line_results;
        out->normalized = ws->norm_ptr;
        return PO_OK;
}

/* Formats minor units as a decimal string with the currency's exponent. */
static void format_amount(int64_t v, int exp, char *buf, size_t size)
{
        static const int64_t pow10[] = {1, 10, 100, 1000};
        int64_t unit = pow10[exp];

        if (exp == 0)
                snprintf(buf, size, "%lld", (long long)v);
        else
                snprintf(buf, size, "%lld.%0*lld", (long long)(v / unit), exp,
                         (long long)(v % unit));
}

int po_pricing_describe(const po_applied_t *applied, const po_pricing_cart_t *cart,
                        char *buf, size_t size)
{
        const po_code_def_t *def = applied->def;
        int exp = po_money_exponent(cart->currency);
        char amount[48], value[48];
        int64_t v = code_value(def, cart);

        format_amount(applied->amount, exp, amount, sizeof(amount));
        if (def->type == PO_CODE_PERCENTAGE) {
                /* Basis points as a percentage: 1250 -> "12.5". */
                if (v % 100 == 0)
                        snprintf(value, sizeof(value), "%lld%%", (long long)(v / 100));
                else if (v % 10 == 0)
                        snprintf(value, sizeof(value), "%lld.%lld%%",
                                 (long long)(v / 100), (long long)(v % 100 / 10));
                else
                        snprintf(value, sizeof(value), "%lld.%02lld%%",
                                 (long long)(v / 100), (long long)(v % 100));
                return snprintf(buf, size, "%s: %s off, -%s %s", def->code, value, amount,
                                cart->currency);
        }
        return snprintf(buf, size, "%s: -%s %s", def->code, amount, cart->currency);
}
