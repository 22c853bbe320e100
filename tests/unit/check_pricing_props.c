/* Property tests of the pricing core over generated carts: the invariants of
 * PRICING_SPEC.md that hold for every input, checked on 100,000+ carts from a
 * fixed seed (PROMO_PROPS_SEED and PROMO_PROPS_CARTS override). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "po/pricing.h"

#define MAX_L 12
#define MAX_C 6

static uint64_t rng_state;

static uint64_t rnd(void)
{
        /* xorshift64*: deterministic across platforms. */
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        return rng_state * 2685821657736338717ULL;
}

static int64_t rnd_range(int64_t lo, int64_t hi)
{
        return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1));
}

typedef struct gen_cart {
        po_pricing_cart_t cart;
        po_line_t lines[MAX_L];
        po_str_t codes[MAX_C];
        po_code_def_t defs[MAX_C];
        po_str_t sku_items[MAX_C][2], cat_items[MAX_C][2], tier_items[MAX_C][1];
        po_tier_value_t tv[MAX_C][1];
        char names[MAX_C][8];
} gen_cart_t;

static const char *skus[] = {"S1", "S2", "S3", "S4"};
static const char *cats[] = {"shoes", "hats", "food"};

static po_str_t S(const char *s)
{
        po_str_t r = {s, strlen(s)};
        return r;
}

static void gen(gen_cart_t *g)
{
        po_pricing_cart_t *c = &g->cart;
        size_t i, n;

        memset(g, 0, sizeof(*g));
        memcpy(c->currency, "USD", 4);
        c->tax_mode = (po_tax_mode_t)rnd_range(0, 1);
        c->rounding = (po_rounding_t)rnd_range(0, 1);
        c->stacking = (po_stacking_t)rnd_range(0, 1);
        c->now.sec = 1795514400;
        c->has_customer_id = rnd_range(0, 3) > 0;
        c->customer_id = S("c1");
        c->has_tier = c->has_customer_id && rnd_range(0, 1);
        c->tier = S(rnd_range(0, 1) ? "gold" : "silver");
        n = (size_t)rnd_range(1, MAX_L);
        for (i = 0; i < n; i++) {
                po_line_t *l = &g->lines[i];
                int big = rnd_range(0, 20) == 0;

                l->id = S("l");
                l->sku = S(skus[rnd_range(0, 3)]);
                l->category = S(cats[rnd_range(0, 2)]);
                l->unit_price = big ? rnd_range(0, 10000000000LL) : rnd_range(0, 5000);
                l->quantity = big ? rnd_range(1, 9) : rnd_range(1, 5);
                l->tax_rate_ppm = rnd_range(0, 3) ? rnd_range(0, 250000) : 0;
                l->stock.present = rnd_range(0, 3) == 0;
                l->stock.value = rnd_range(0, 6);
                l->unit_cost.present = rnd_range(0, 1);
                l->unit_cost.value = rnd_range(0, l->unit_price + 1);
        }
        c->lines = g->lines;
        c->line_count = n;
        n = (size_t)rnd_range(1, MAX_C);
        for (i = 0; i < n; i++) {
                po_code_def_t *d = &g->defs[i];

                snprintf(g->names[i], sizeof(g->names[i]), "C%02d",
                         (int)rnd_range(0, 30));
                g->codes[i] = S(g->names[i]);
                memcpy(d->code, g->names[i], 4);
                d->code_len = 3;
                d->type = (po_code_type_t)rnd_range(0, 1);
                d->value = d->type == PO_CODE_PERCENTAGE ? rnd_range(0, 10000)
                                                         : rnd_range(0, 8000);
                if (rnd_range(0, 4) == 0) {
                        d->max_discount.present = 1;
                        d->max_discount.value = rnd_range(0, 3000);
                }
                d->combinable = (int)rnd_range(0, 1);
                d->priority = rnd_range(0, 2);
                if (rnd_range(0, 3) == 0) {
                        g->sku_items[i][0] = S(skus[rnd_range(0, 3)]);
                        g->sku_items[i][1] = S(skus[rnd_range(0, 3)]);
                        d->targets.skus.items = g->sku_items[i];
                        d->targets.skus.count = 2;
                        d->targets.skus.present = 1;
                }
                if (rnd_range(0, 5) == 0) {
                        g->cat_items[i][0] = S(cats[rnd_range(0, 2)]);
                        d->targets.exclude_categories.items = g->cat_items[i];
                        d->targets.exclude_categories.count = 1;
                        d->targets.exclude_categories.present = 1;
                }
                if (rnd_range(0, 6) == 0) {
                        d->targets.max_margin_bp.present = 1;
                        d->targets.max_margin_bp.value = rnd_range(0, 10000);
                }
                if (rnd_range(0, 6) == 0) {
                        g->tier_items[i][0] = S("gold");
                        d->tiers.items = g->tier_items[i];
                        d->tiers.count = 1;
                        d->tiers.present = 1;
                }
                if (rnd_range(0, 4) == 0) {
                        g->tv[i][0].tier = S("gold");
                        g->tv[i][0].value = d->type == PO_CODE_PERCENTAGE
                                                ? rnd_range(0, 10000)
                                                : rnd_range(0, 8000);
                        d->tier_values = g->tv[i];
                        d->tier_value_count = 1;
                }
                if (rnd_range(0, 6) == 0) {
                        d->usage_limit.present = 1;
                        d->usage_limit.value = rnd_range(0, 3);
                        d->used_total = rnd_range(0, 3);
                }
        }
        c->codes = g->codes;
        c->code_count = n;
        /* Definitions must be unique: keep the first of each name. */
        c->defs = g->defs;
        c->def_count = 0;
        for (i = 0; i < n; i++) {
                size_t j;

                for (j = 0; j < c->def_count; j++)
                        if (strcmp(g->defs[j].code, g->defs[i].code) == 0)
                                break;
                if (j == c->def_count)
                        g->defs[c->def_count++] = g->defs[i];
        }
}

/* A copy of a result that survives the next run on the workspace. */
typedef struct snap {
        int64_t totals[5];
        size_t applied_count;
        size_t applied_req[MAX_C];
        int64_t applied_amount[MAX_C];
        int64_t alloc[MAX_C][MAX_L];
        po_reason_t reason[MAX_C];
        int64_t line_discount[MAX_L];
} snap_t;

static void take(snap_t *s, const po_pricing_cart_t *c, const po_pricing_result_t *r)
{
        size_t i, j;

        memset(s, 0, sizeof(*s));
        s->totals[0] = r->subtotal;
        s->totals[1] = r->discount_total;
        s->totals[2] = r->tax_total;
        s->totals[3] = r->tax_total_before;
        s->totals[4] = r->grand_total;
        s->applied_count = r->applied_count;
        for (i = 0; i < r->applied_count; i++) {
                s->applied_req[i] = r->applied[i].request_index;
                s->applied_amount[i] = r->applied[i].amount;
                for (j = 0; j < r->applied[i].allocation_count; j++)
                        s->alloc[i][r->applied[i].allocations[j].line] =
                            r->applied[i].allocations[j].amount;
        }
        for (i = 0; i < r->rejected_count; i++)
                s->reason[r->rejected[i].request_index] = r->rejected[i].reason;
        for (i = 0; i < c->line_count; i++)
                s->line_discount[i] = r->lines[i].discount;
}

static void check_invariants(const po_pricing_cart_t *c, const po_pricing_result_t *r)
{
        int64_t sub = 0, disc = 0, tax = 0, grand = 0, applied = 0;
        size_t i, j, seen = 0;

        for (i = 0; i < c->line_count; i++) {
                const po_line_result_t *l = &r->lines[i];
                int64_t a = l->subtotal - l->discount;

                ck_assert_int_eq(l->subtotal,
                                 c->lines[i].unit_price * c->lines[i].quantity);
                ck_assert_msg(l->discount >= 0 && a >= 0, "line %zu below zero", i);
                if (c->tax_mode == PO_TAX_EXCLUSIVE) {
                        ck_assert_int_eq(l->net, a);
                        ck_assert_int_eq(l->total, a + l->tax);
                } else {
                        ck_assert_int_eq(l->total, a);
                        ck_assert_int_eq(l->net + l->tax, a);
                }
                ck_assert_int_ge(l->tax, 0);
                sub += l->subtotal;
                disc += l->discount;
                tax += l->tax;
                grand += l->total;
        }
        ck_assert_int_eq(sub, r->subtotal);
        ck_assert_int_eq(disc, r->discount_total);
        ck_assert_int_eq(tax, r->tax_total);
        ck_assert_int_eq(grand, r->grand_total);
        ck_assert_int_eq(r->grand_total,
                         c->tax_mode == PO_TAX_EXCLUSIVE
                             ? r->subtotal - r->discount_total + r->tax_total
                             : r->subtotal - r->discount_total);
        for (i = 0; i < r->applied_count; i++) {
                int64_t s = 0;

                ck_assert_int_gt(r->applied[i].amount, 0);
                for (j = 0; j < r->applied[i].allocation_count; j++) {
                        ck_assert_int_ne(r->applied[i].allocations[j].amount, 0);
                        if (j)
                                ck_assert_uint_lt(r->applied[i].allocations[j - 1].line,
                                                  r->applied[i].allocations[j].line);
                        s += r->applied[i].allocations[j].amount;
                }
                ck_assert_msg(s == r->applied[i].amount,
                              "allocations of %s sum to %lld, not %lld",
                              r->applied[i].def->code, (long long)s,
                              (long long)r->applied[i].amount);
                applied += s;
        }
        ck_assert_int_eq(applied, r->discount_total);
        /* Every requested code is applied or rejected, exactly once. */
        seen = r->applied_count + r->rejected_count;
        ck_assert_uint_eq(seen, c->code_count);
        if (c->stacking == PO_STACK_BEST_ONLY)
                ck_assert_uint_le(r->applied_count, 1);
}

START_TEST(invariants_over_generated_carts)
{
        const char *seed_env = getenv("PROMO_PROPS_SEED");
        const char *n_env = getenv("PROMO_PROPS_CARTS");
        long carts = n_env ? strtol(n_env, NULL, 10) : 100000;
        po_pricing_ws_t *ws = po_pricing_ws_new(), *ws2 = po_pricing_ws_new();
        static gen_cart_t g;
        po_pricing_result_t r, r2;
        snap_t a, b;
        char err[128];
        long k;

        rng_state = seed_env ? strtoull(seed_env, NULL, 10) : 0x9E3779B97F4A7C15ULL;
        if (rng_state == 0)
                rng_state = 1;
        for (k = 0; k < carts; k++) {
                po_str_t rev[MAX_C];
                size_t i, n;

                gen(&g);
                ck_assert_int_eq(po_pricing_run(ws, &g.cart, &r, err, sizeof(err)),
                                 PO_OK);
                check_invariants(&g.cart, &r);
                take(&a, &g.cart, &r);

                /* Determinism: a fresh workspace gives the same result. */
                ck_assert_int_eq(po_pricing_run(ws2, &g.cart, &r2, err, sizeof(err)),
                                 PO_OK);
                take(&b, &g.cart, &r2);
                ck_assert_msg(memcmp(&a, &b, sizeof(a)) == 0,
                              "cart %ld not deterministic", k);

                /* Tax before discounts is the tax of the cart with no valid code. */
                {
                        po_pricing_cart_t bare = g.cart;
                        po_str_t none = {"NO_SUCH_CODE", 12};

                        bare.codes = &none;
                        bare.code_count = 1;
                        ck_assert_int_eq(
                            po_pricing_run(ws2, &bare, &r2, err, sizeof(err)), PO_OK);
                        ck_assert_int_eq(r2.tax_total, a.totals[3]);
                        ck_assert_int_eq(r2.discount_total, 0);
                }

                /* Request order changes nothing but indices. */
                n = g.cart.code_count;
                for (i = 0; i < n; i++)
                        rev[i] = g.cart.codes[n - 1 - i];
                {
                        po_pricing_cart_t perm = g.cart;
                        int dup = 0;
                        size_t x, y;

                        for (x = 0; x < n; x++)
                                for (y = 0; y < x; y++)
                                        dup |= strcmp(g.names[x], g.names[y]) == 0;
                        if (dup)
                                continue; /* DUPLICATE_CODE depends on order by definition
                                           */
                        perm.codes = rev;
                        ck_assert_int_eq(
                            po_pricing_run(ws2, &perm, &r2, err, sizeof(err)), PO_OK);
                        take(&b, &perm, &r2);
                        ck_assert(memcmp(a.totals, b.totals, sizeof(a.totals)) == 0);
                        ck_assert_uint_eq(a.applied_count, b.applied_count);
                        for (i = 0; i < a.applied_count; i++) {
                                ck_assert_uint_eq(a.applied_req[i],
                                                  n - 1 - b.applied_req[i]);
                                ck_assert_int_eq(a.applied_amount[i],
                                                 b.applied_amount[i]);
                                ck_assert(memcmp(a.alloc[i], b.alloc[i],
                                                 sizeof(a.alloc[i])) == 0);
                        }
                        for (i = 0; i < n; i++)
                                ck_assert_int_eq(a.reason[i], b.reason[n - 1 - i]);
                }
        }
        po_pricing_ws_destroy(ws);
        po_pricing_ws_destroy(ws2);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("pricing_props");
        TCase *tc = tcase_create("invariants");
        SRunner *sr;
        int failed;

        tcase_set_timeout(tc, 600);
        tcase_add_test(tc, invariants_over_generated_carts);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
