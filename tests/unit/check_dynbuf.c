#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "po/dynbuf.h"

START_TEST(append_and_grow)
{
        po_dynbuf_t b;
        int i;

        po_dynbuf_init(&b, 1 << 20);
        ck_assert_str_eq(po_dynbuf_str(&b), "");
        for (i = 0; i < 1000; i++)
                ck_assert_int_eq(po_dynbuf_addf(&b, "%d,", i % 10), PO_OK);
        ck_assert_uint_eq(b.len, 2000);
        ck_assert_int_eq(strncmp(b.data, "0,1,2,", 6), 0);
        ck_assert_int_eq(b.data[b.len], '\0');
        po_dynbuf_reset(&b);
        ck_assert_uint_eq(b.len, 0);
        ck_assert_str_eq(po_dynbuf_str(&b), "");
        po_dynbuf_release(&b);
}
END_TEST

START_TEST(limit_fails_and_sticks)
{
        po_dynbuf_t b;

        po_dynbuf_init(&b, 8);
        ck_assert_int_eq(po_dynbuf_add(&b, "12345678", 8), PO_OK);
        ck_assert_int_ne(po_dynbuf_add(&b, "9", 1), PO_OK);
        ck_assert_int_eq(b.failed, 1);
        ck_assert_ptr_null(b.data);
        /* Once failed, every later append fails too: one check at the end suffices. */
        ck_assert_int_ne(po_dynbuf_add(&b, "x", 1), PO_OK);
        po_dynbuf_reset(&b);
        ck_assert_int_eq(po_dynbuf_add(&b, "ok", 2), PO_OK);
        ck_assert_str_eq(po_dynbuf_str(&b), "ok");
        po_dynbuf_release(&b);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("dynbuf");
        TCase *tc = tcase_create("core");
        SRunner *sr;
        int failed;

        tcase_add_test(tc, append_and_grow);
        tcase_add_test(tc, limit_fails_and_sticks);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
