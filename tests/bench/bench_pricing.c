/* Benchmark of the pricing core (not a test): ten-line carts with three
 * codes, priced one after another on one core with one workspace.
 *   bench-pricing [seconds] [best_only|combine]
 * Prints carts per second; docs/BENCHMARKS.md records the figures. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "po/pricing.h"

#define NCARTS 1024
#define NLINES 10
#define NCODES 3

typedef struct bench_cart {
        po_pricing_cart_t cart;
        po_line_t lines[NLINES];
        po_str_t codes[NCODES];
        po_code_def_t defs[NCODES];
        po_str_t cats[1];
} bench_cart_t;

static double now_s(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static po_str_t S(const char *s)
{
        po_str_t r = {s, strlen(s)};
        return r;
}

int main(int argc, char **argv)
{
        static bench_cart_t carts[NCARTS];
        static const char *names[NCODES] = {"SAVE10", "SHIP5", "SHOES15"};
        static const char *cats[] = {"shoes", "hats", "food", "toys"};
        double secs = argc > 1 ? strtod(argv[1], NULL) : 3.0;
        int combine = argc > 2 && strcmp(argv[2], "combine") == 0;
        po_pricing_ws_t *ws = po_pricing_ws_new();
        po_pricing_result_t r;
        unsigned long long done = 0, checksum = 0;
        unsigned seed = 12345;
        char err[128];
        double t0, t;
        int i, j;

        for (i = 0; i < NCARTS; i++) {
                bench_cart_t *b = &carts[i];
                po_pricing_cart_t *c = &b->cart;

                memcpy(c->currency, "USD", 4);
                c->stacking = combine ? PO_STACK_COMBINE : PO_STACK_BEST_ONLY;
                c->tax_mode = i % 2 ? PO_TAX_INCLUSIVE : PO_TAX_EXCLUSIVE;
                c->now.sec = 1795514400;
                c->has_customer_id = 1;
                c->customer_id = S("c-17");
                for (j = 0; j < NLINES; j++) {
                        seed = seed * 1103515245u + 12345u;
                        b->lines[j].id = S("l");
                        b->lines[j].sku = S("SKU");
                        b->lines[j].category = S(cats[(seed >> 8) % 4]);
                        b->lines[j].unit_price = 100 + (seed >> 4) % 20000;
                        b->lines[j].quantity = 1 + (seed >> 12) % 4;
                        b->lines[j].tax_rate_ppm = 82500;
                }
                for (j = 0; j < NCODES; j++) {
                        po_code_def_t *d = &b->defs[j];

                        b->codes[j] = S(names[j]);
                        snprintf(d->code, sizeof(d->code), "%s", names[j]);
                        d->code_len = strlen(names[j]);
                        d->combinable = 1;
                }
                b->defs[0].type = PO_CODE_PERCENTAGE;
                b->defs[0].value = 1000;
                b->defs[1].type = PO_CODE_FIXED;
                b->defs[1].value = 500;
                memcpy(b->defs[1].currency, "USD", 4);
                b->defs[2].type = PO_CODE_PERCENTAGE;
                b->defs[2].value = 1500;
                b->cats[0] = S("shoes");
                b->defs[2].targets.categories.items = b->cats;
                b->defs[2].targets.categories.count = 1;
                b->defs[2].targets.categories.present = 1;
                c->lines = b->lines;
                c->line_count = NLINES;
                c->codes = b->codes;
                c->code_count = NCODES;
                c->defs = b->defs;
                c->def_count = NCODES;
        }
        t0 = now_s();
        do {
                for (i = 0; i < NCARTS; i++) {
                        if (po_pricing_run(ws, &carts[i].cart, &r, err, sizeof(err))) {
                                fprintf(stderr, "bench-pricing: %s\n", err);
                                return 1;
                        }
                        checksum += (unsigned long long)r.grand_total;
                }
                done += NCARTS;
                t = now_s() - t0;
        } while (t < secs);
        printf("bench-pricing: stacking=%s lines=%d codes=%d carts=%llu seconds=%.2f "
               "carts_per_second=%.0f (checksum %llu)\n",
               combine ? "combine" : "best_only", NLINES, NCODES, done, t,
               (double)done / t, checksum % 1000);
        po_pricing_ws_destroy(ws);
        return 0;
}
