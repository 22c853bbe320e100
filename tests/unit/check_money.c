#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "po/money.h"

static po_err_t dec(const char *s, int exp, int neg, int64_t *v)
{
        return po_money_parse_decimal(s, strlen(s), exp, neg, v);
}

START_TEST(decimal_exact_by_exponent)
{
        int64_t v = 0;

        ck_assert_int_eq(dec("19.99", 2, 0, &v), PO_OK);
        ck_assert_int_eq(v, 1999);
        ck_assert_int_eq(dec("19.9", 2, 0, &v), PO_OK);
        ck_assert_int_eq(v, 1990);
        ck_assert_int_eq(dec("19", 2, 0, &v), PO_OK);
        ck_assert_int_eq(v, 1900);
        ck_assert_int_eq(dec("19.990", 2, 0, &v), PO_OK);
        ck_assert_int_eq(v, 1999);
        ck_assert_int_eq(dec("1200", 0, 0, &v), PO_OK); /* JPY */
        ck_assert_int_eq(v, 1200);
        ck_assert_int_eq(dec("1.234", 3, 0, &v), PO_OK); /* KWD */
        ck_assert_int_eq(v, 1234);
        ck_assert_int_eq(dec("-0.50", 2, 1, &v), PO_OK);
        ck_assert_int_eq(v, -50);
        ck_assert_int_eq(dec("10000000000000.00", 2, 0, &v), PO_OK);
        ck_assert_int_eq(v, 1000000000000000LL);
}
END_TEST

START_TEST(decimal_rejects_inexact_and_junk)
{
        int64_t v = 42;
        static const char *bad[] = {"19.995",
                                    "1.5",
                                    "abc",
                                    "",
                                    ".5",
                                    "5.",
                                    "1..2",
                                    "1e3",
                                    " 1",
                                    "1 ",
                                    "+",
                                    "-",
                                    "0x10",
                                    "10000000000000.01",
                                    "99999999999999999999",
                                    "-1"};
        size_t i;

        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                int exp = strcmp(bad[i], "1.5") == 0 ? 0 : 2;

                ck_assert_msg(dec(bad[i], exp, 0, &v) == PO_ERR_BAD_INPUT,
                              "accepted \"%s\"", bad[i]);
        }
        ck_assert_int_eq(v, 42); /* untouched on failure */
}
END_TEST

START_TEST(scaled_rates)
{
        int64_t v;

        ck_assert_int_eq(po_money_parse_scaled("0.0825", 6, 1000000, &v), PO_OK);
        ck_assert_int_eq(v, 82500);
        ck_assert_int_eq(po_money_parse_scaled("0.08875", 7, 1000000, &v), PO_OK);
        ck_assert_int_eq(v, 88750);
        ck_assert_int_eq(po_money_parse_scaled("1", 1, 1000000, &v), PO_OK);
        ck_assert_int_eq(v, 1000000);
        ck_assert_int_eq(po_money_parse_scaled("0.00000001", 10, 1000000, &v),
                         PO_ERR_BAD_INPUT);
        ck_assert_int_eq(po_money_exponent("JPY"), 0);
        ck_assert_int_eq(po_money_exponent("KWD"), 3);
        ck_assert_int_eq(po_money_exponent("USD"), 2);
}
END_TEST

START_TEST(div_round_modes)
{
        ck_assert(po_money_div_round(5, 2, PO_ROUND_HALF_UP) == 3);
        ck_assert(po_money_div_round(5, 2, PO_ROUND_HALF_EVEN) == 2);
        ck_assert(po_money_div_round(7, 2, PO_ROUND_HALF_EVEN) == 4);
        ck_assert(po_money_div_round(0, 7, PO_ROUND_HALF_UP) == 0);
        ck_assert(po_money_div_round(13, 10, PO_ROUND_HALF_UP) == 1);
        ck_assert(po_money_div_round(16, 10, PO_ROUND_HALF_EVEN) == 2);
        /* Beyond 64 bits: 10^30 / 3 rounds down, exactly. */
        ck_assert(po_money_div_round((po_i128)1000000000000000LL * 1000000000000000LL, 3,
                                     PO_ROUND_HALF_UP) ==
                  (po_i128)1000000000000000LL * 1000000000000000LL / 3);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("money");
        TCase *tc = tcase_create("core");
        SRunner *sr;
        int failed;

        tcase_add_test(tc, decimal_exact_by_exponent);
        tcase_add_test(tc, decimal_rejects_inexact_and_junk);
        tcase_add_test(tc, scaled_rates);
        tcase_add_test(tc, div_round_modes);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
