/* Channel adapters on the real-shaped samples of ../shared/samples/channels,
 * on variations, and on every malformed example. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "po/channel.h"

static po_channel_profile_t lenient = {.default_category = "uncategorized"};

static char *slurp(const char *name, size_t *len)
{
        char path[512];
        FILE *f;
        char *buf;
        long n;

        snprintf(path, sizeof(path), "%s/%s", SAMPLES_DIR, name);
        f = fopen(path, "rb");
        ck_assert_msg(f != NULL, "cannot open %s", path);
        fseek(f, 0, SEEK_END);
        n = ftell(f);
        fseek(f, 0, SEEK_SET);
        buf = malloc((size_t)n + 1);
        ck_assert_int_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
        buf[n] = '\0';
        fclose(f);
        *len = (size_t)n;
        return buf;
}

static po_err_t norm(const char *channel, const char *payload, size_t len, po_order_t *o,
                     po_channel_reject_t *rej, const po_channel_profile_t *p)
{
        po_channel_ctx_t ctx = {.channel = channel,
                                .account = "acct-1",
                                .received_at_us = 1795532400000000LL,
                                .profile = p ? p : &lenient};

        po_order_init(o, 1 << 20);
        return po_channel_normalize(&ctx, payload, len, o, rej);
}

START_TEST(web_sample)
{
        size_t len;
        char *p = slurp("web-shopify-order.json", &len);
        po_order_t o;
        po_channel_reject_t rej;

        ck_assert_msg(norm("web", p, len, &o, &rej, NULL) == PO_OK, "%s %s: %s",
                      rej.reason, rej.field, rej.message);
        ck_assert_str_eq(o.order_id, "web:5123456789012");
        ck_assert_str_eq(o.currency, "USD");
        ck_assert_int_eq(o.tax_mode, PO_TAX_EXCLUSIVE);
        ck_assert_str_eq(o.customer_id, "70012");
        ck_assert_str_eq(o.customer_tier, "gold");
        ck_assert_str_eq(o.customer_email, "ana@example.com");
        ck_assert_uint_eq(o.line_count, 2);
        ck_assert_int_eq(o.lines[0].unit_price, 1999);
        ck_assert_int_eq(o.lines[0].quantity, 2);
        ck_assert_int_eq(o.lines[0].tax_rate_ppm, 82500);
        ck_assert_str_eq(o.lines[1].category, "shirts");
        ck_assert_int_eq(o.lines[1].unit_price, 650);
        ck_assert_uint_eq(o.code_count, 1);
        ck_assert_str_eq(o.codes[0], "save10");
        /* 2026-11-24T09:58:12-05:00 = 14:58:12Z */
        ck_assert_int_eq(o.placed_at_us, 1795532292000000LL);
        po_order_release(&o);
        free(p);
}
END_TEST

START_TEST(marketplace_sample)
{
        size_t len;
        char *p = slurp("marketplace-order.json", &len);
        po_order_t o;
        po_channel_reject_t rej;

        ck_assert_msg(norm("marketplace", p, len, &o, &rej, NULL) == PO_OK, "%s %s: %s",
                      rej.reason, rej.field, rej.message);
        ck_assert_str_eq(o.order_id, "marketplace:114-3941689-8772232");
        ck_assert_uint_eq(o.line_count, 2);
        /* 44.97 for 3 units: 14.99 each, exact. */
        ck_assert_int_eq(o.lines[0].unit_price, 1499);
        ck_assert_int_eq(o.lines[0].quantity, 3);
        ck_assert_int_eq(o.lines[0].tax_rate_ppm, 82500);
        ck_assert_str_eq(o.lines[0].category, "uncategorized");
        ck_assert_int_eq(o.lines[1].tax_rate_ppm, 80000);
        ck_assert_uint_eq(o.code_count, 1);
        ck_assert_str_eq(o.codes[0], "FLASH-24");
        ck_assert_str_eq(o.customer_email, "x7k2@marketplace.example");
        po_order_release(&o);
        free(p);
}
END_TEST

START_TEST(marketplace_split_and_total_check)
{
        const char *j =
            "{\"AmazonOrderId\":\"A-1\",\"PurchaseDate\":\"2026-11-24T10:00:00Z\","
            "\"OrderTotal\":{\"CurrencyCode\":\"USD\",\"Amount\":\"10.00\"},"
            "\"OrderItems\":[{\"OrderItemId\":7,\"SellerSKU\":\"S\",\"QuantityOrdered\":"
            "3,"
            "\"ItemPrice\":{\"CurrencyCode\":\"USD\",\"Amount\":\"10.00\"}}]}";
        po_order_t o;
        po_channel_reject_t rej;

        ck_assert_int_eq(norm("marketplace", j, strlen(j), &o, &rej, NULL), PO_OK);
        ck_assert_uint_eq(o.line_count, 2);
        ck_assert_int_eq(o.lines[0].unit_price * o.lines[0].quantity +
                             o.lines[1].unit_price * o.lines[1].quantity,
                         1000);
        ck_assert_str_eq(o.lines[1].line_id, "7#2");
        po_order_release(&o);
        j = "{\"AmazonOrderId\":\"A-1\",\"PurchaseDate\":\"2026-11-24T10:00:00Z\","
            "\"OrderTotal\":{\"CurrencyCode\":\"USD\",\"Amount\":\"11.00\"},"
            "\"OrderItems\":[{\"OrderItemId\":7,\"SellerSKU\":\"S\",\"QuantityOrdered\":"
            "3,"
            "\"ItemPrice\":{\"CurrencyCode\":\"USD\",\"Amount\":\"10.00\"}}]}";
        ck_assert_int_eq(norm("marketplace", j, strlen(j), &o, &rej, NULL),
                         PO_ERR_BAD_INPUT);
        ck_assert_str_eq(rej.reason, "TOTAL_MISMATCH");
        po_order_release(&o);
}
END_TEST

START_TEST(pos_sample)
{
        size_t len;
        char *p = slurp("pos-transaction.txt", &len);
        po_order_t o;
        po_channel_reject_t rej;

        ck_assert_msg(norm("pos", p, len, &o, &rej, NULL) == PO_OK, "%s %s: %s",
                      rej.reason, rej.field, rej.message);
        ck_assert_str_eq(o.order_id, "pos:0012-03-000088213");
        ck_assert_str_eq(o.customer_id, "c-17");
        ck_assert_str_eq(o.customer_tier, "silver");
        ck_assert_ptr_null(o.customer_email);
        ck_assert_uint_eq(o.line_count, 2);
        ck_assert_int_eq(o.lines[1].unit_price, 350);
        ck_assert_int_eq(o.lines[1].quantity, 2);
        ck_assert_str_eq(o.codes[0], "WELCOME");
        po_order_release(&o);
        free(p);
}
END_TEST

START_TEST(mobile_sample)
{
        size_t len;
        char *p = slurp("mobile-order.json", &len);
        po_order_t o;
        po_channel_reject_t rej;

        ck_assert_msg(norm("mobile", p, len, &o, &rej, NULL) == PO_OK, "%s %s: %s",
                      rej.reason, rej.field, rej.message);
        ck_assert_str_eq(o.order_id, "mobile:M-2026-000731");
        ck_assert_int_eq(o.tax_mode, PO_TAX_INCLUSIVE);
        ck_assert_str_eq(o.currency, "EUR");
        ck_assert_int_eq(o.placed_at_us, 1795532400000000LL);
        ck_assert_str_eq(o.customer_tier, "platinum");
        ck_assert_int_eq(o.lines[1].tax_rate_ppm, 190000);
        ck_assert_uint_eq(o.code_count, 2);
        po_order_release(&o);
        free(p);
}
END_TEST

START_TEST(profiles_tune_strictness)
{
        const char *j =
            "{\"schema\":\"app.order.v2\",\"order_ref\":\"M-1\",\"placed_at_ms\":1,"
            "\"cart\":{\"currency\":\"EUR\",\"items\":[{\"sku\":\"S\",\"unit_minor\":1,"
            "\"qty\":1}]}}";
        po_channel_profile_t strict = {.require_email = 1};
        po_order_t o;
        po_channel_reject_t rej;

        ck_assert_int_eq(norm("mobile", j, strlen(j), &o, &rej, &strict),
                         PO_ERR_BAD_INPUT);
        /* No category and no default: the line is rejected first. */
        ck_assert_str_eq(rej.reason, "MISSING_FIELD");
        po_order_release(&o);
        strict.default_category = "misc";
        ck_assert_int_eq(norm("mobile", j, strlen(j), &o, &rej, &strict),
                         PO_ERR_BAD_INPUT);
        ck_assert_str_eq(rej.reason, "PROFILE_REQUIREMENT");
        ck_assert_str_eq(rej.field, "customer.email");
        po_order_release(&o);
        ck_assert_int_eq(norm("mobile", j, strlen(j), &o, &rej, NULL), PO_OK);
        po_order_release(&o);
}
END_TEST

START_TEST(malformed_examples_all_rejected)
{
        size_t len, i = 0, n = 0;
        char *p = slurp("malformed-examples.txt", &len);
        static const char *channels[] = {"web", "marketplace", "pos", "mobile"};

        while (i < len) {
                size_t end = i;
                size_t c;

                while (end < len && p[end] != '\n')
                        end++;
                if (end > i && p[i] != '#') {
                        /* Whatever channel it is sent on, it is rejected with a reason.
                         */
                        for (c = 0; c < 4; c++) {
                                po_order_t o;
                                po_channel_reject_t rej;

                                ck_assert_msg(norm(channels[c], p + i, end - i, &o, &rej,
                                                   NULL) == PO_ERR_BAD_INPUT,
                                              "accepted on %s: %.*s", channels[c],
                                              (int)(end - i), p + i);
                                ck_assert_msg(rej.reason[0] && rej.message[0],
                                              "no reason");
                                po_order_release(&o);
                        }
                        n++;
                }
                i = end + 1;
        }
        ck_assert_uint_eq(n, 6);
        free(p);
}
END_TEST

START_TEST(rate_from_tax)
{
        int64_t ppm;

        ck_assert_int_eq(po_channel_rate_from_tax(4497, 371, &ppm), PO_OK);
        ck_assert_int_eq(ppm, 82500);
        ck_assert_int_eq(po_channel_rate_from_tax(1000, 0, &ppm), PO_OK);
        ck_assert_int_eq(ppm, 0);
        ck_assert_int_eq(po_channel_rate_from_tax(0, 5, &ppm), PO_ERR_BAD_INPUT);
        ck_assert_int_eq(po_channel_rate_from_tax(100, 101, &ppm), PO_ERR_BAD_INPUT);
        ck_assert_int_eq(po_channel_rate_from_tax(100000, 8875, &ppm), PO_OK);
        ck_assert_int_eq(ppm, 88750);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("channel");
        TCase *tc = tcase_create("adapters");
        SRunner *sr;
        int failed;

        tcase_add_test(tc, web_sample);
        tcase_add_test(tc, marketplace_sample);
        tcase_add_test(tc, marketplace_split_and_total_check);
        tcase_add_test(tc, pos_sample);
        tcase_add_test(tc, mobile_sample);
        tcase_add_test(tc, profiles_tune_strictness);
        tcase_add_test(tc, malformed_examples_all_rejected);
        tcase_add_test(tc, rate_from_tax);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
