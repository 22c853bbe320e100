#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "po/http.h"

static int handler(const char *path, po_dynbuf_t *body, const char **ctype, void *opaque)
{
        int *calls = opaque;

        (*calls)++;
        if (strcmp(path, "/hello") == 0) {
                *ctype = "application/json";
                po_dynbuf_addf(body, "{\"path\":\"%s\"}", path);
                return 200;
        }
        po_dynbuf_addf(body, "nope");
        return 404;
}

/* Sends raw bytes, lets the server poll once, returns the whole reply. */
static void roundtrip(po_http_t *http, const char *raw, char *out, size_t out_size)
{
        struct sockaddr_in a = {.sin_family = AF_INET};
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        size_t n = 0;
        ssize_t r;

        a.sin_port = htons((uint16_t)po_http_port(http));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
        ck_assert_int_eq(send(fd, raw, strlen(raw), 0), (ssize_t)strlen(raw));
        po_http_poll(http, 1000);
        while (n < out_size - 1 && (r = recv(fd, out + n, out_size - 1 - n, 0)) > 0)
                n += (size_t)r;
        out[n] = '\0';
        close(fd);
}

START_TEST(serves_get)
{
        char err[128], reply[2048];
        int calls = 0;
        po_http_t *http = po_http_new(0, handler, &calls, err, sizeof(err));

        ck_assert_ptr_nonnull(http);
        ck_assert_int_gt(po_http_port(http), 0);
        roundtrip(http, "GET /hello?x=1 HTTP/1.1\r\nHost: x\r\n\r\n", reply,
                  sizeof(reply));
        ck_assert_ptr_nonnull(strstr(reply, "HTTP/1.0 200 OK\r\n"));
        ck_assert_ptr_nonnull(strstr(reply, "Content-Type: application/json"));
        ck_assert_ptr_nonnull(strstr(reply, "Content-Length: 17\r\n"));
        ck_assert_ptr_nonnull(strstr(reply, "\r\n\r\n{\"path\":\"/hello\"}"));
        roundtrip(http, "GET /missing HTTP/1.0\r\n\r\n", reply, sizeof(reply));
        ck_assert_ptr_nonnull(strstr(reply, "HTTP/1.0 404 Not Found"));
        ck_assert_int_eq(calls, 2);
        po_http_destroy(http);
}
END_TEST

START_TEST(rejects_hostile_requests)
{
        char err[128], reply[2048];
        char huge[8192];
        int calls = 0;
        po_http_t *http = po_http_new(0, handler, &calls, err, sizeof(err));

        ck_assert_ptr_nonnull(http);
        roundtrip(http, "POST /hello HTTP/1.0\r\n\r\n", reply, sizeof(reply));
        ck_assert_ptr_nonnull(strstr(reply, "405"));
        memset(huge, 'a', sizeof(huge) - 1);
        huge[sizeof(huge) - 1] = '\0';
        memcpy(huge, "GET /", 5);
        /* A request head larger than the limit gets no answer and no handler call. */
        roundtrip(http, huge, reply, sizeof(reply));
        ck_assert_str_eq(reply, "");
        ck_assert_int_eq(calls, 0);
        po_http_destroy(http);
        po_http_destroy(NULL);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("http");
        TCase *tc = tcase_create("core");
        SRunner *sr;
        int failed;

        tcase_add_test(tc, serves_get);
        tcase_add_test(tc, rejects_hostile_requests);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
