/* The pricing core against PRICING_SPEC.md, case by case: one test per reason
 * code and per rounding edge, written as JSON cases through po_calcjson so
 * they read like the spec's own examples. Expected numbers are worked out by
 * hand in the comments. */
#include <check.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "po/calcjson.h"
#include "po/pricing.h"

/* Cases share one printf template per test; the templates are literals. */
#pragma GCC diagnostic ignored "-Wformat-nonliteral"

static po_calcjson_t *cj;

/* Prices a case built from a printf format; returns the parsed result. */
static json_t *price(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *price(const char *fmt, ...)
{
        static char in[1 << 18];
        po_dynbuf_t out;
        va_list ap;
        json_t *r;
        json_error_t e;

        va_start(ap, fmt);
        vsnprintf(in, sizeof(in), fmt, ap);
        va_end(ap);
        po_dynbuf_init(&out, 1 << 24);
        ck_assert_int_eq(po_calcjson_process(cj, in, strlen(in), 0, &out), PO_OK);
        r = json_loads(po_dynbuf_str(&out), 0, &e);
        ck_assert_msg(r != NULL, "output is not JSON: %s", po_dynbuf_str(&out));
        po_dynbuf_release(&out);
        return r;
}

static long long num(json_t *r, const char *key)
{
        json_t *v = json_object_get(r, key);

        ck_assert_msg(json_is_integer(v), "%s missing", key);
        return json_integer_value(v);
}

static const char *reason_of(json_t *r, size_t i)
{
        json_t *e = json_array_get(json_object_get(r, "rejected"), i);

        ck_assert_msg(e != NULL, "no rejected[%zu]", i);
        return json_string_value(json_object_get(e, "reason"));
}

static int is_bad_input(json_t *r)
{
        json_t *e = json_object_get(r, "error");

        return e &&
               strcmp(json_string_value(json_object_get(e, "code")), "BAD_INPUT") == 0 &&
               json_object_size(r) == 1;
}

#define CART_HEAD "\"currency\":\"USD\",\"now\":\"2026-11-24T10:00:00Z\""
#define LINE1                                                                            \
        "{\"id\":\"l1\",\"sku\":\"S1\",\"category\":\"shoes\",\"unit_price\":1000,"      \
        "\"quantity\":1,\"tax_rate_ppm\":0}"
#define DEF_PCT(code, v, extra)                                                          \
        "{\"code\":\"" code                                                              \
        "\",\"status\":\"active\",\"type\":\"percentage\",\"value\":" #v extra "}"

/* One requested code against one definition; returns the reason or "". */
static const char *reason_for(const char *cart_extra, const char *def, const char *usage)
{
        static char reason[64];
        json_t *r = price("{" CART_HEAD "%s,\"lines\":[" LINE1 "],\"codes\":[\"CODE1\"],"
                          "\"definitions\":[%s],\"usage\":{%s}}",
                          cart_extra, def, usage);
        json_t *rej = json_object_get(r, "rejected");

        ck_assert_msg(!json_object_get(r, "error"), "unexpected error: %s",
                      json_dumps(r, 0));
        snprintf(reason, sizeof(reason), "%s",
                 json_array_size(rej) ? json_string_value(json_object_get(
                                            json_array_get(rej, 0), "reason"))
                                      : "");
        json_decref(r);
        return reason;
}

static void setup(void)
{
        cj = po_calcjson_new();
}

static void teardown(void)
{
        po_calcjson_destroy(cj);
}

START_TEST(spec_example)
{
        json_t *r = price(
            "{\"currency\":\"USD\",\"tax_mode\":\"exclusive\",\"rounding\":\"half_up\","
            "\"stacking\":\"best_only\",\"now\":\"2026-11-24T10:00:00Z\",\"channel\":"
            "\"web\","
            "\"customer\":{\"id\":\"c-17\",\"tier\":\"gold\"},\"lines\":[{\"id\":\"l1\","
            "\"sku\":\"SKU-1\",\"category\":\"shoes\",\"unit_price\":1999,\"quantity\":2,"
            "\"tax_rate_ppm\":82500,\"stock\":10,\"unit_cost\":800}],"
            "\"codes\":[\"SAVE10\",\"vip-7k2m\"],\"definitions\":[" DEF_PCT(
                "SAVE10",
                1000, ) "],\"usage\":{\"SAVE10\":{\"total\":57,\"customer\":0}}}");

        ck_assert_int_eq(num(r, "subtotal"), 3998);
        ck_assert_int_eq(num(r, "discount_total"), 400);
        ck_assert_int_eq(num(r, "tax_total"), 297);
        ck_assert_int_eq(num(r, "tax_total_before"), 330);
        ck_assert_int_eq(num(r, "grand_total"), 3895);
        ck_assert_str_eq(reason_of(r, 0), "UNKNOWN_CODE");
        ck_assert_str_eq(json_string_value(json_object_get(
                             json_array_get(json_object_get(r, "rejected"), 0), "code")),
                         "VIP-7K2M");
        json_decref(r);
}
END_TEST

START_TEST(reason_malformed_and_duplicate)
{
        json_t *r =
            price("{" CART_HEAD ",\"lines\":[" LINE1 "],\"codes\":[\"ab\",\" save_1 \","
                  "\"SAVE_1\",\"bad code\",\"%s\"],\"definitions\":[" DEF_PCT(
                      "SAVE_1", 1000, ) "]}",
                  "A123456789012345678901234567890123456789012345678901234567890123X");

        ck_assert_str_eq(reason_of(r, 0), "MALFORMED_CODE");
        ck_assert_str_eq(reason_of(r, 1), "DUPLICATE_CODE");
        ck_assert_str_eq(json_string_value(json_object_get(
                             json_array_get(json_object_get(r, "rejected"), 1), "code")),
                         "SAVE_1");
        ck_assert_str_eq(reason_of(r, 2), "MALFORMED_CODE"); /* inner space */
        ck_assert_str_eq(reason_of(r, 3), "MALFORMED_CODE"); /* 65 characters */
        ck_assert_int_eq(num(r, "discount_total"), 100);
        json_decref(r);
}
END_TEST

/* One Check test per per-code check of PRICING_SPEC.md section 4 (and the
 * boundary that just passes it): the cart's extra fields, one definition,
 * the usage, and the reason expected ("" = applied). */
static const struct reason_case {
        const char *cart, *def, *usage, *reason;
} reason_cases[] = {
    {"", DEF_PCT("OTHER", 10, ), "", "UNKNOWN_CODE"},
    {"",
     "{\"code\":\"CODE1\",\"status\":\"paused\",\"type\":"
     "\"percentage\",\"value\":10}",
     "", "INACTIVE"},
    {"", DEF_PCT("CODE1", 10, ",\"starts_at\":\"2026-11-24T10:00:00.000000001Z\""), "",
     "NOT_YET_VALID"},
    /* starts_at is inclusive: the same instant in another offset applies. */
    {"", DEF_PCT("CODE1", 10, ",\"starts_at\":\"2026-11-24T11:00:00+01:00\""), "", ""},
    /* expires_at is exclusive. */
    {"", DEF_PCT("CODE1", 10, ",\"expires_at\":\"2026-11-24T10:00:00Z\""), "", "EXPIRED"},
    {"", DEF_PCT("CODE1", 10, ",\"channels\":[\"pos\"]"), "", "CHANNEL_NOT_ALLOWED"},
    {",\"channel\":\"web\"", DEF_PCT("CODE1", 10, ",\"channels\":[\"pos\"]"), "",
     "CHANNEL_NOT_ALLOWED"},
    {",\"channel\":\"pos\"", DEF_PCT("CODE1", 10, ",\"channels\":[\"pos\"]"), "", ""},
    {"", DEF_PCT("CODE1", 10, ",\"per_customer_limit\":1"), "", "CUSTOMER_REQUIRED"},
    {",\"customer\":{\"id\":\"c1\"}", DEF_PCT("CODE1", 10, ",\"tiers\":[\"gold\"]"), "",
     "CUSTOMER_REQUIRED"},
    {",\"customer\":{\"id\":\"c1\"}", DEF_PCT("CODE1", 10, ",\"customer_id\":\"c2\""), "",
     "CUSTOMER_NOT_ALLOWED"},
    {",\"customer\":{\"id\":\"c1\",\"tier\":\"silver\"}",
     DEF_PCT("CODE1", 10, ",\"tiers\":[\"gold\"]"), "", "TIER_NOT_ELIGIBLE"},
    {"", DEF_PCT("CODE1", 10, ",\"usage_limit\":5"), "\"code1\":{\"total\":5}",
     "USAGE_LIMIT_REACHED"},
    {"", DEF_PCT("CODE1", 10, ",\"usage_limit\":5"), "\"CODE1\":{\"total\":4}", ""},
    {",\"customer\":{\"id\":\"c1\"}", DEF_PCT("CODE1", 10, ",\"per_customer_limit\":1"),
     "\"CODE1\":{\"customer\":1}", "CUSTOMER_LIMIT_REACHED"},
    {"", DEF_PCT("CODE1", 10, ",\"currency\":\"EUR\""), "", "CURRENCY_MISMATCH"},
    {"", DEF_PCT("CODE1", 10, ",\"currency\":\"USD\",\"min_spend\":1001"), "",
     "MIN_SPEND_NOT_MET"},
    {"", DEF_PCT("CODE1", 10, ",\"currency\":\"USD\",\"min_spend\":1000"), "", ""},
    {"", DEF_PCT("CODE1", 10, ",\"currency\":\"USD\",\"max_spend\":999"), "",
     "MAX_SPEND_EXCEEDED"},
    {"", DEF_PCT("CODE1", 10, ",\"targets\":{\"skus\":[\"S2\"]}"), "",
     "NO_ELIGIBLE_ITEMS"},
    {"", DEF_PCT("CODE1", 10, ",\"targets\":{\"exclude_categories\":[\"shoes\"]}"), "",
     "NO_ELIGIBLE_ITEMS"},
    /* low_stock_max needs a known stock. */
    {"", DEF_PCT("CODE1", 10, ",\"targets\":{\"low_stock_max\":5}"), "",
     "NO_ELIGIBLE_ITEMS"},
    /* margin needs a known cost. */
    {"", DEF_PCT("CODE1", 10, ",\"targets\":{\"max_margin_bp\":9000}"), "",
     "NO_ELIGIBLE_ITEMS"},
};

START_TEST(reason_each_check)
{
        const struct reason_case *c = &reason_cases[_i];

        ck_assert_msg(strcmp(reason_for(c->cart, c->def, c->usage), c->reason) == 0,
                      "case %d: want \"%s\", got \"%s\"", _i, c->reason,
                      reason_for(c->cart, c->def, c->usage));
}
END_TEST

START_TEST(reason_item_unavailable_and_targets)
{
        /* Line with quantity 3 and stock 2 is targeted but not available. */
        json_t *r = price(
            "{" CART_HEAD ",\"lines\":[{\"id\":\"a\",\"sku\":\"S1\",\"category\":\"c\","
            "\"unit_price\":1000,\"quantity\":3,\"tax_rate_ppm\":0,\"stock\":2}],"
            "\"codes\":[\"CODE1\"],\"definitions\":[" DEF_PCT("CODE1", 1000, ) "]}");

        ck_assert_str_eq(reason_of(r, 0), "ITEM_UNAVAILABLE");
        ck_assert(json_is_false(json_object_get(
            json_array_get(json_object_get(r, "lines"), 0), "available")));
        json_decref(r);

        /* Margin: price 1000, cost 600 -> 4000 bp; cost 500 -> 5000 bp. Limit 4000 keeps
         * only the first line; low stock 5 keeps stock <= 5. */
        r = price("{" CART_HEAD ",\"lines\":["
                  "{\"id\":\"a\",\"sku\":\"S1\",\"category\":\"c\",\"unit_price\":1000,"
                  "\"quantity\":1,\"tax_rate_ppm\":0,\"unit_cost\":600,\"stock\":5},"
                  "{\"id\":\"b\",\"sku\":\"S2\",\"category\":\"c\",\"unit_price\":1000,"
                  "\"quantity\":1,\"tax_rate_ppm\":0,\"unit_cost\":500,\"stock\":5},"
                  "{\"id\":\"c\",\"sku\":\"S3\",\"category\":\"c\",\"unit_price\":1000,"
                  "\"quantity\":1,\"tax_rate_ppm\":0,\"unit_cost\":600,\"stock\":6}],"
                  "\"codes\":[\"CODE1\"],\"definitions\":[" DEF_PCT(
                      "CODE1", 5000,
                      ",\"targets\":{\"max_margin_bp\":4000,\"low_stock_max\":5}") "]}");
        ck_assert_int_eq(num(r, "discount_total"), 500);
        ck_assert_int_eq(
            json_array_size(json_object_get(
                json_array_get(json_object_get(r, "applied"), 0), "allocations")),
            1);
        json_decref(r);
}
END_TEST

START_TEST(rounding_ties_both_modes)
{
        /* 50 % of 1 unit = 0.5: half_up -> 1, half_even -> 0 (then NOTHING_TO_DISCOUNT).
         * 50 % of 3 units = 1.5: half_up -> 2, half_even -> 2. */
        json_t *r;
        const char *fmt =
            "{" CART_HEAD ",\"rounding\":\"%s\",\"lines\":[{\"id\":\"a\",\"sku\":\"S\","
            "\"category\":\"c\",\"unit_price\":%d,\"quantity\":1,\"tax_rate_ppm\":0}],"
            "\"codes\":[\"HALF\"],\"definitions\":[" DEF_PCT("HALF", 5000, ) "]}";

        r = price(fmt, "half_up", 1);
        ck_assert_int_eq(num(r, "discount_total"), 1);
        json_decref(r);
        r = price(fmt, "half_even", 1);
        ck_assert_int_eq(num(r, "discount_total"), 0);
        ck_assert_str_eq(reason_of(r, 0), "NOTHING_TO_DISCOUNT");
        json_decref(r);
        r = price(fmt, "half_up", 3);
        ck_assert_int_eq(num(r, "discount_total"), 2);
        json_decref(r);
        r = price(fmt, "half_even", 3);
        ck_assert_int_eq(num(r, "discount_total"), 2);
        json_decref(r);
        r = price(fmt, "half_even", 5); /* 2.5 -> 2 */
        ck_assert_int_eq(num(r, "discount_total"), 2);
        json_decref(r);
}
END_TEST

START_TEST(tax_ties_and_inclusive)
{
        /* Exclusive: 100 * 5 % = 5 exactly; 10 * 5 % = 0.5 -> 1 (half_up) / 0
         * (half_even). Inclusive: 105 at 5 % -> net 100, tax 5; 21 at 5 % -> net 20,
         * tax 1. */
        json_t *r;
        const char *fmt =
            "{" CART_HEAD
            ",\"tax_mode\":\"%s\",\"rounding\":\"%s\",\"lines\":[{\"id\":\"a\","
            "\"sku\":\"S\",\"category\":\"c\",\"unit_price\":%d,\"quantity\":1,"
            "\"tax_rate_ppm\":50000}],\"codes\":[\"NONE1\"]}";

        r = price(fmt, "exclusive", "half_up", 10);
        ck_assert_int_eq(num(r, "tax_total"), 1);
        ck_assert_int_eq(num(r, "grand_total"), 11);
        json_decref(r);
        r = price(fmt, "exclusive", "half_even", 10);
        ck_assert_int_eq(num(r, "tax_total"), 0);
        json_decref(r);
        r = price(fmt, "inclusive", "half_up", 105);
        ck_assert_int_eq(num(r, "tax_total"), 5);
        ck_assert_int_eq(num(r, "grand_total"), 105);
        json_decref(r);
        r = price(fmt, "inclusive", "half_up", 21);
        ck_assert_int_eq(num(r, "tax_total"), 1);
        json_decref(r);
}
END_TEST

START_TEST(zero_prices_full_discount_and_caps)
{
        json_t *r;

        /* Zero price: E = 0 so D = 0. */
        r = price(
            "{" CART_HEAD ",\"lines\":[{\"id\":\"a\",\"sku\":\"S\",\"category\":\"c\","
            "\"unit_price\":0,\"quantity\":5,\"tax_rate_ppm\":0}],\"codes\":[\"FREE\"],"
            "\"definitions\":[{\"code\":\"FREE\",\"status\":\"active\",\"type\":"
            "\"fixed\","
            "\"value\":500,\"currency\":\"USD\"}]}");
        ck_assert_int_eq(num(r, "discount_total"), 0);
        ck_assert_str_eq(reason_of(r, 0), "NOTHING_TO_DISCOUNT");
        json_decref(r);
        /* 100 %: everything, never below zero; tax follows to 0. */
        r = price("{" CART_HEAD
                  ",\"lines\":[{\"id\":\"a\",\"sku\":\"S\",\"category\":\"c\","
                  "\"unit_price\":333,\"quantity\":3,\"tax_rate_ppm\":80000}],\"codes\":["
                  "\"ALL\"],"
                  "\"definitions\":[" DEF_PCT("ALL", 10000, ) "]}");
        ck_assert_int_eq(num(r, "discount_total"), 999);
        ck_assert_int_eq(num(r, "tax_total"), 0);
        ck_assert_int_eq(num(r, "grand_total"), 0);
        json_decref(r);
        /* A fixed code above E is capped at E; max_discount caps a percentage. */
        r = price("{" CART_HEAD ",\"lines\":[" LINE1 "],\"codes\":[\"BIG\",\"CAP\"],"
                  "\"stacking\":\"combine\",\"definitions\":[{\"code\":\"BIG\","
                  "\"status\":\"active\","
                  "\"type\":\"fixed\",\"value\":5000,\"currency\":\"USD\"}," DEF_PCT(
                      "CAP", 5000, ",\"max_discount\":120,\"currency\":\"USD\"") "]}");
        ck_assert_int_eq(num(r, "discount_total"), 1000);
        ck_assert_str_eq(reason_of(r, 0), "NOT_COMBINABLE");
        json_decref(r);
}
END_TEST

START_TEST(currency_exponents)
{
        /* JPY (0 decimals) and KWD (3): money stays integer minor units; the
         * receipt description prints them with the right exponent. */
        po_dynbuf_t out;
        const char *jpy =
            "{\"currency\":\"JPY\",\"now\":\"2026-11-24T10:00:00Z\",\"lines\":[{\"id\":"
            "\"a\","
            "\"sku\":\"S\",\"category\":\"c\",\"unit_price\":1999,\"quantity\":1,"
            "\"tax_rate_ppm\":100000}],\"codes\":[\"YEN\"],\"definitions\":[{\"code\":"
            "\"YEN\",\"status\":\"active\",\"type\":\"fixed\",\"value\":500,\"currency\":"
            "\"JPY\"}]}";
        const char *kwd =
            "{\"currency\":\"KWD\",\"now\":\"2026-11-24T10:00:00Z\",\"lines\":[{\"id\":"
            "\"a\","
            "\"sku\":\"S\",\"category\":\"c\",\"unit_price\":12345,\"quantity\":1,"
            "\"tax_rate_ppm\":0}],\"codes\":[\"KW\",\"KW2\"],\"definitions\":[" DEF_PCT(
                "KW2", 1250, ) "]}";

        po_dynbuf_init(&out, 1 << 20);
        ck_assert_int_eq(
            po_calcjson_process(cj, jpy, strlen(jpy), PO_CALCJSON_RECEIPTS, &out), PO_OK);
        ck_assert_ptr_nonnull(strstr(po_dynbuf_str(&out), "\"grand_total\":1649"));
        ck_assert_ptr_nonnull(strstr(po_dynbuf_str(&out), "YEN: -500 JPY"));
        po_dynbuf_reset(&out);
        ck_assert_int_eq(
            po_calcjson_process(cj, kwd, strlen(kwd), PO_CALCJSON_RECEIPTS, &out), PO_OK);
        /* 12.5 % of 12345 = 1543.125 -> 1543 */
        ck_assert_ptr_nonnull(strstr(po_dynbuf_str(&out), "\"discount_total\":1543"));
        ck_assert_ptr_nonnull(strstr(po_dynbuf_str(&out), "KW2: 12.5% off, -1.543 KWD"));
        po_dynbuf_release(&out);
}
END_TEST

START_TEST(stacking_best_only_and_combine)
{
        /* Lines 600 + 400. AA1: 10 % combinable, B: fixed 150 combinable, C: fixed 120.
         * best_only: A=100, B=150, C=120 -> B. combine: {A,B} in V order (A, B by code):
         * A=100 then B=150 on 900 -> 250 beats C. */
        const char *fmt =
            "{" CART_HEAD ",\"stacking\":\"%s\",\"lines\":["
            "{\"id\":\"x\",\"sku\":\"S1\",\"category\":\"c\",\"unit_price\":600,"
            "\"quantity\":1,\"tax_rate_ppm\":0},"
            "{\"id\":\"y\",\"sku\":\"S2\",\"category\":\"c\",\"unit_price\":400,"
            "\"quantity\":1,\"tax_rate_ppm\":0}],"
            "\"codes\":[\"C\",\"BB1\",\"AA1\",\"CCC\"],\"definitions\":[" DEF_PCT(
                "AA1", 1000,
                ",\"combinable\":true") ","
                                        "{\"code\":\"BB1\",\"status\":\"active\","
                                        "\"type\":\"fixed\",\"value\":150,\"currency\":"
                                        "\"USD\",\"combinable\":true},"
                                        "{\"code\":\"CCC\",\"status\":\"active\","
                                        "\"type\":\"fixed\",\"value\":120,\"currency\":"
                                        "\"USD\"}]}";
        json_t *r = price(fmt, "best_only"), *applied;

        ck_assert_int_eq(num(r, "discount_total"), 150);
        applied = json_object_get(r, "applied");
        ck_assert_str_eq(
            json_string_value(json_object_get(json_array_get(applied, 0), "code")),
            "BB1");
        ck_assert_str_eq(reason_of(r, 0), "MALFORMED_CODE"); /* "C" is 1 character */
        ck_assert_str_eq(reason_of(r, 1), "NOT_COMBINABLE");
        json_decref(r);
        r = price(fmt, "combine");
        ck_assert_int_eq(num(r, "discount_total"), 250);
        applied = json_object_get(r, "applied");
        ck_assert_int_eq(json_array_size(applied), 2);
        ck_assert_str_eq(
            json_string_value(json_object_get(json_array_get(applied, 0), "code")),
            "AA1");
        /* B1 on 540 + 360: 150 * 540 / 900 = 90, 150 * 360 / 900 = 60. */
        ck_assert_int_eq(
            json_integer_value(json_object_get(
                json_array_get(json_object_get(json_array_get(applied, 1), "allocations"),
                               0),
                "amount")),
            90);
        json_decref(r);
}
END_TEST

START_TEST(tie_breaks)
{
        /* Two fixed 100 codes, same total: fewer codes, then the smaller code wins. */
        json_t *r = price("{" CART_HEAD ",\"lines\":[" LINE1
                          "],\"codes\":[\"ZZZ\",\"AAA\"],\"definitions\":["
                          "{\"code\":\"ZZZ\",\"status\":\"active\",\"type\":\"fixed\","
                          "\"value\":100,\"currency\":\"USD\",\"priority\":9},"
                          "{\"code\":\"AAA\",\"status\":\"active\",\"type\":\"fixed\","
                          "\"value\":100,\"currency\":\"USD\"}]}");

        ck_assert_str_eq(json_string_value(json_object_get(
                             json_array_get(json_object_get(r, "applied"), 0), "code")),
                         "AAA");
        ck_assert_str_eq(reason_of(r, 0), "NOT_COMBINABLE");
        json_decref(r);
        /* combine: a single non-combinable 200 ties a 2-code combinable plan of 200. */
        r = price("{" CART_HEAD ",\"stacking\":\"combine\",\"lines\":[" LINE1
                  "],\"codes\":[\"P1X\",\"P2X\",\"SOLO\"],\"definitions\":["
                  "{\"code\":\"P1X\",\"status\":\"active\",\"type\":\"fixed\",\"value\":"
                  "100,\"currency\":\"USD\",\"combinable\":true},"
                  "{\"code\":\"P2X\",\"status\":\"active\",\"type\":\"fixed\",\"value\":"
                  "100,\"currency\":\"USD\",\"combinable\":true},"
                  "{\"code\":\"SOLO\",\"status\":\"active\",\"type\":\"fixed\",\"value\":"
                  "200,\"currency\":\"USD\"}]}");
        ck_assert_int_eq(json_array_size(json_object_get(r, "applied")), 1);
        ck_assert_str_eq(json_string_value(json_object_get(
                             json_array_get(json_object_get(r, "applied"), 0), "code")),
                         "SOLO");
        json_decref(r);
}
END_TEST

START_TEST(largest_remainder_allocation)
{
        /* 100 over three lines of 1 each: 33 + 33 + 33 and one unit to the earliest
         * of the equal remainders. */
        json_t *r = price("{" CART_HEAD ",\"lines\":["
                          "{\"id\":\"a\",\"sku\":\"S\",\"category\":\"c\",\"unit_price\":"
                          "100,\"quantity\":1,\"tax_rate_ppm\":0},"
                          "{\"id\":\"b\",\"sku\":\"S\",\"category\":\"c\",\"unit_price\":"
                          "100,\"quantity\":1,\"tax_rate_ppm\":0},"
                          "{\"id\":\"c\",\"sku\":\"S\",\"category\":\"c\",\"unit_price\":"
                          "100,\"quantity\":1,\"tax_rate_ppm\":0}],"
                          "\"codes\":[\"TEN\"],\"definitions\":[{\"code\":\"TEN\","
                          "\"status\":\"active\","
                          "\"type\":\"fixed\",\"value\":100,\"currency\":\"USD\"}]}");
        json_t *alloc = json_object_get(json_array_get(json_object_get(r, "applied"), 0),
                                        "allocations");

        ck_assert_int_eq(
            json_integer_value(json_object_get(json_array_get(alloc, 0), "amount")), 34);
        ck_assert_int_eq(
            json_integer_value(json_object_get(json_array_get(alloc, 1), "amount")), 33);
        ck_assert_int_eq(
            json_integer_value(json_object_get(json_array_get(alloc, 2), "amount")), 33);
        json_decref(r);
}
END_TEST

START_TEST(thousand_lines_and_largest_amounts)
{
        static char buf[1 << 17];
        size_t off = 0;
        json_t *r;
        int i;

        off +=
            (size_t)snprintf(buf + off, sizeof(buf) - off, "{" CART_HEAD ",\"lines\":[");
        for (i = 0; i < 1000; i++)
                off += (size_t)snprintf(
                    buf + off, sizeof(buf) - off,
                    "%s{\"id\":\"l%d\",\"sku\":\"S\",\"category\":\"c\","
                    "\"unit_price\":%d,\"quantity\":3,\"tax_rate_ppm\":77777}",
                    i ? "," : "", i, 1 + i % 97);
        snprintf(buf + off, sizeof(buf) - off,
                 "],\"codes\":[\"P10\"],\"definitions\":[" DEF_PCT("P10", 1000, ) "]}");
        r = price("%s", buf);
        ck_assert_int_eq(json_array_size(json_object_get(r, "lines")), 1000);
        ck_assert_int_eq(num(r, "subtotal") - num(r, "discount_total") +
                             num(r, "tax_total"),
                         num(r, "grand_total"));
        json_decref(r);

        /* 10^10 x 10^5 = 10^15, the largest subtotal; 10 % of it. */
        r = price(
            "{" CART_HEAD ",\"lines\":[{\"id\":\"a\",\"sku\":\"S\",\"category\":\"c\","
            "\"unit_price\":10000000000,\"quantity\":100000,\"tax_rate_ppm\":1000000}],"
            "\"codes\":[\"P10\"],\"definitions\":[" DEF_PCT("P10", 1000, ) "]}");
        ck_assert_int_eq(num(r, "subtotal"), 1000000000000000LL);
        ck_assert_int_eq(num(r, "discount_total"), 100000000000000LL);
        ck_assert_int_eq(num(r, "tax_total"), 900000000000000LL);
        ck_assert_int_eq(num(r, "grand_total"), 1800000000000000LL);
        json_decref(r);
        /* One unit more is BAD_INPUT, not a clamp. */
        r = price("{" CART_HEAD
                  ",\"lines\":[{\"id\":\"a\",\"sku\":\"S\",\"category\":\"c\","
                  "\"unit_price\":10000000000,\"quantity\":100000,\"tax_rate_ppm\":0},"
                  "{\"id\":\"b\",\"sku\":\"S\",\"category\":\"c\",\"unit_price\":1,"
                  "\"quantity\":1,"
                  "\"tax_rate_ppm\":0}],\"codes\":[\"P10\"]}");
        ck_assert(is_bad_input(r));
        json_decref(r);
}
END_TEST

START_TEST(bad_input)
{
        static const char *cases[] = {
            "",
            "[]",
            "{\"currency\":\"usd\",\"now\":\"2026-11-24T10:00:00Z\",\"lines\":[" LINE1
            "],\"codes\":[\"AAA\"]}",
            "{\"currency\":\"USD\",\"lines\":[" LINE1 "],\"codes\":[\"AAA\"]}",
            "{" CART_HEAD ",\"lines\":[" LINE1 "],\"codes\":[]}",
            "{" CART_HEAD ",\"lines\":[" LINE1 "],\"codes\":[1]}",
            "{" CART_HEAD ",\"tax_mode\":\"gross\",\"lines\":[" LINE1
            "],\"codes\":[\"AAA\"]}",
            "{" CART_HEAD
            ",\"lines\":[{\"id\":\"l1\",\"sku\":\"S1\",\"category\":\"c\",\"unit_price\":"
            "10.5,\"quantity\":1,\"tax_rate_ppm\":0}],\"codes\":[\"AAA\"]}",
            "{" CART_HEAD
            ",\"lines\":[{\"id\":\"l1\",\"sku\":\"S1\",\"category\":\"c\",\"unit_price\":"
            "-1,\"quantity\":1,\"tax_rate_ppm\":0}],\"codes\":[\"AAA\"]}",
            "{" CART_HEAD
            ",\"lines\":[{\"id\":\"l1\",\"sku\":\"S1\",\"category\":\"c\",\"unit_price\":"
            "1,\"quantity\":0,\"tax_rate_ppm\":0}],\"codes\":[\"AAA\"]}",
            "{" CART_HEAD
            ",\"lines\":[{\"id\":\"l1\",\"sku\":\"S1\",\"category\":\"c\",\"unit_price\":"
            "1,\"quantity\":1,\"tax_rate_ppm\":1000001}],\"codes\":[\"AAA\"]}",
            "{" CART_HEAD ",\"lines\":[" LINE1
            "],\"codes\":[\"AAA\"],\"definitions\":[" DEF_PCT("AAA", 10001, ) "]}",
            "{" CART_HEAD ",\"lines\":[" LINE1
            "],\"codes\":[\"AAA\"],\"definitions\":[{\"code\":\"AAA\",\"status\":"
            "\"active\",\"type\":\"fixed\",\"value\":5}]}",
            "{" CART_HEAD ",\"lines\":[" LINE1
            "],\"codes\":[\"AAA\"],\"definitions\":[" DEF_PCT("AAA", 1, ) "," DEF_PCT(
                "aaa", 2, ) "]}",
            "{" CART_HEAD ",\"lines\":[" LINE1
            "],\"codes\":[\"AAA\"],\"definitions\":[" DEF_PCT(
                "AAA", 1, ",\"expires_at\":\"2026-02-30T00:00:00Z\"") "]}",
            "{" CART_HEAD ",\"lines\":[" LINE1
            "],\"codes\":[\"AAA\"],\"definitions\":[" DEF_PCT("AAA", 1,
                                                              ",\"combinable\":1") "]}",
            "{" CART_HEAD ",\"lines\":[" LINE1
            "],\"codes\":[\"AAA\"],\"definitions\":[" DEF_PCT(
                "AAA", 1, ",\"tier_values\":{\"gold\":20000}") "]}",
            "{\"currency\":\"USD\",\"now\":\"2026-11-24 10:00:00Z\",\"lines\":[" LINE1
            "],\"codes\":[\"AAA\"]}",
            "{" CART_HEAD ",\"now\":\"2026-11-24T10:00:00Z\",\"lines\":[" LINE1
            "],\"codes\":[\"AAA\"]}",
            "{" CART_HEAD ",\"lines\":[" LINE1
            "],\"codes\":[\"AAA\"],\"usage\":{\"aaa\":{\"total\":1},\"AAA\":{\"total\":2}"
            "},\"definitions\":[" DEF_PCT("AAA", 1, ) "]}",
            "{" CART_HEAD ",\"lines\":[" LINE1
            "],\"codes\":[\"AAA\"],\"definitions\":[" DEF_PCT("AAA", 1,
                                                              ",\"priority\":-1") "]}",
            "{" CART_HEAD ",\"lines\":[" LINE1 "],\"codes\":[\"AAA\"]} trailing",
        };
        size_t i;

        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                json_t *r = price("%s", cases[i]);

                ck_assert_msg(is_bad_input(r), "case %zu not BAD_INPUT: %s", i,
                              json_dumps(r, 0));
                json_decref(r);
        }
}
END_TEST

START_TEST(instant_parse)
{
        po_instant_t a, b;

        ck_assert_int_eq(po_instant_parse("2026-11-24T10:00:00Z", 20, &a), PO_OK);
        ck_assert_int_eq(a.sec, 1795514400LL);
        ck_assert_int_eq(po_instant_parse("2026-11-24T11:30:00+01:30", 25, &b), PO_OK);
        ck_assert_int_eq(po_instant_cmp(a, b), 0);
        ck_assert_int_eq(po_instant_parse("2024-02-29T00:00:00.5Z", 22, &a), PO_OK);
        ck_assert_int_eq(a.nsec, 500000000);
        ck_assert_int_eq(po_instant_parse("2023-02-29T00:00:00Z", 20, &a),
                         PO_ERR_BAD_INPUT);
        ck_assert_int_eq(po_instant_parse("2026-11-24T10:00:00.1234567891Z", 31, &a),
                         PO_ERR_BAD_INPUT);
        ck_assert_int_eq(po_instant_parse("2026-11-24T10:00:00", 19, &a),
                         PO_ERR_BAD_INPUT);
        ck_assert_int_eq(po_instant_parse("2026-11-24T24:00:00Z", 20, &a),
                         PO_ERR_BAD_INPUT);
        ck_assert_int_eq(po_instant_parse("2026-11-24T10:00:00+01:00x", 26, &a),
                         PO_ERR_BAD_INPUT);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("pricing");
        TCase *tc = tcase_create("spec");
        SRunner *sr;
        int failed;

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, spec_example);
        tcase_add_test(tc, reason_malformed_and_duplicate);
        tcase_add_loop_test(tc, reason_each_check, 0,
                            (int)(sizeof(reason_cases) / sizeof(reason_cases[0])));
        tcase_add_test(tc, reason_item_unavailable_and_targets);
        tcase_add_test(tc, rounding_ties_both_modes);
        tcase_add_test(tc, tax_ties_and_inclusive);
        tcase_add_test(tc, zero_prices_full_discount_and_caps);
        tcase_add_test(tc, currency_exponents);
        tcase_add_test(tc, stacking_best_only_and_combine);
        tcase_add_test(tc, tie_breaks);
        tcase_add_test(tc, largest_remainder_allocation);
        tcase_add_test(tc, thousand_lines_and_largest_amounts);
        tcase_add_test(tc, bad_input);
        tcase_add_test(tc, instant_parse);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
