#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "po/config.h"

START_TEST(parse_port_bounds)
{
        int p = -1;

        ck_assert_int_eq(po_config_parse_port("1", 0, &p), PO_OK);
        ck_assert_int_eq(p, 1);
        ck_assert_int_eq(po_config_parse_port("65535", 0, &p), PO_OK);
        ck_assert_int_eq(p, 65535);
        ck_assert_int_eq(po_config_parse_port("0", 1, &p), PO_OK);
        ck_assert_int_eq(p, 0);
        ck_assert_int_eq(po_config_parse_port("0", 0, &p), PO_ERR_BAD_INPUT);
        ck_assert_int_eq(po_config_parse_port("65536", 0, &p), PO_ERR_BAD_INPUT);
        ck_assert_int_eq(po_config_parse_port("12x", 0, &p), PO_ERR_BAD_INPUT);
        ck_assert_int_eq(po_config_parse_port("", 0, &p), PO_ERR_BAD_INPUT);
        ck_assert_int_eq(po_config_parse_port("-1", 1, &p), PO_ERR_BAD_INPUT);
        ck_assert_int_eq(po_config_parse_port("99999999999999999999", 1, &p),
                         PO_ERR_BAD_INPUT);
}
END_TEST

START_TEST(load_defaults)
{
        po_config_t cfg;
        char err[256] = "";

        unsetenv("PROMO_KAFKA_BROKERS");
        unsetenv("PROMO_REDIS_URL");
        unsetenv("PROMO_PG_DSN");
        unsetenv("PROMO_TEST_PORT");
        ck_assert_int_eq(po_config_load(&cfg, "PROMO_TEST_PORT", 58099, err, sizeof(err)),
                         PO_OK);
        ck_assert_str_eq(cfg.kafka_brokers, "127.0.0.1:59092");
        ck_assert_str_eq(cfg.redis_host, "127.0.0.1");
        ck_assert_int_eq(cfg.redis_port, 56379);
        ck_assert_int_eq(cfg.http_port, 58099);
        ck_assert_ptr_nonnull(strstr(cfg.pg_dsn, "port=55432"));
}
END_TEST

START_TEST(load_rejects_bad_values)
{
        po_config_t cfg;
        char err[256] = "";
        char big[600];

        setenv("PROMO_REDIS_URL", "no-port", 1);
        ck_assert_int_eq(po_config_load(&cfg, NULL, 0, err, sizeof(err)),
                         PO_ERR_BAD_INPUT);
        ck_assert_ptr_nonnull(strstr(err, "PROMO_REDIS_URL"));
        setenv("PROMO_REDIS_URL", "h:70000", 1);
        ck_assert_int_eq(po_config_load(&cfg, NULL, 0, err, sizeof(err)),
                         PO_ERR_BAD_INPUT);
        setenv("PROMO_REDIS_URL", "redis.local:6380", 1);
        setenv("PROMO_TEST_PORT", "http", 1);
        ck_assert_int_eq(po_config_load(&cfg, "PROMO_TEST_PORT", 1, err, sizeof(err)),
                         PO_ERR_BAD_INPUT);
        ck_assert_ptr_nonnull(strstr(err, "PROMO_TEST_PORT"));
        unsetenv("PROMO_TEST_PORT");
        ck_assert_int_eq(po_config_load(&cfg, "PROMO_TEST_PORT", 1, err, sizeof(err)),
                         PO_OK);
        ck_assert_str_eq(cfg.redis_host, "redis.local");
        ck_assert_int_eq(cfg.redis_port, 6380);
        /* Too long is an error, never a silent truncation. */
        memset(big, 'a', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        setenv("PROMO_PG_DSN", big, 1);
        ck_assert_int_eq(po_config_load(&cfg, NULL, 0, err, sizeof(err)),
                         PO_ERR_BAD_INPUT);
        ck_assert_ptr_nonnull(strstr(err, "PROMO_PG_DSN"));
        unsetenv("PROMO_PG_DSN");
        unsetenv("PROMO_REDIS_URL");
}
END_TEST

int main(void)
{
        Suite *s = suite_create("config");
        TCase *tc = tcase_create("core");
        SRunner *sr;
        int failed;

        tcase_add_test(tc, parse_port_bounds);
        tcase_add_test(tc, load_defaults);
        tcase_add_test(tc, load_rejects_bad_values);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
