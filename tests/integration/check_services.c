/* Each service starts against the real stack, reports ready on /readyz,
 * serves Prometheus text on /metrics, and exits 0 promptly on SIGTERM. */
#include <arpa/inet.h>
#include <check.h>
#include <sys/prctl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "it.h"

static const struct {
        const char *name;
        const char *port_env;
} services[] = {
    {"intake-normalizer", "PROMO_INTAKE_HTTP_PORT"},
    {"validator", "PROMO_VALIDATOR_HTTP_PORT"},
    {"calculator", "PROMO_CALCULATOR_HTTP_PORT"},
    {"audit-sink", "PROMO_AUDIT_SINK_HTTP_PORT"},
    {"admin", "PROMO_ADMIN_HTTP_PORT"},
};

START_TEST(service_lifecycle)
{
        const char *bindir = getenv("PROMO_BIN_DIR");
        char path[512], port_s[16], body[8192];
        int port = it_free_port(), status = -1, wstatus, i;
        pid_t pid;

        ck_assert_msg(bindir != NULL, "PROMO_BIN_DIR is not set");
        snprintf(path, sizeof(path), "%s/%s", bindir, services[_i].name);
        snprintf(port_s, sizeof(port_s), "%d", port);
        pid = fork();
        if (pid < 0) /* no Check call in a child: CK_FORK=no shares its messages */
                ck_abort_msg("fork failed");
        if (pid == 0) {
                /* A test that fails leaves no service behind. */
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                setenv(services[_i].port_env, port_s, 1);
                execl(path, path, (char *)NULL);
                _exit(127);
        }
        for (i = 0; i < 150 && status != 200; i++) {
                it_sleep_ms(100);
                status = it_http_get(port, "/readyz", body, sizeof(body));
        }
        ck_assert_msg(status == 200, "%s not ready after 15 s: %d %s", services[_i].name,
                      status, body);
        ck_assert_int_eq(it_http_get(port, "/healthz", body, sizeof(body)), 200);
        ck_assert_int_eq(it_http_get(port, "/metrics", body, sizeof(body)), 200);
        ck_assert_ptr_nonnull(strstr(body, "# TYPE promo_up gauge"));
        ck_assert_ptr_nonnull(strstr(body, "promo_ready{service=\""));
        ck_assert_int_eq(it_http_get(port, "/nope", body, sizeof(body)), 404);

        ck_assert_int_eq(kill(pid, SIGTERM), 0);
        for (i = 0; i < 100; i++) {
                if (waitpid(pid, &wstatus, WNOHANG) == pid)
                        break;
                it_sleep_ms(50);
        }
        if (i == 100) {
                kill(pid, SIGKILL);
                waitpid(pid, &wstatus, 0);
                ck_abort_msg("%s did not exit within 5 s of SIGTERM", services[_i].name);
        }
        ck_assert_msg(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0,
                      "%s exited with status %d", services[_i].name, wstatus);
}
END_TEST

START_TEST(check_flag_reports_down_dependency)
{
        const char *bindir = getenv("PROMO_BIN_DIR");
        char cmd[600];
        int rc;

        /* Nothing listens on port 1: --check must say so and exit 1. */
        snprintf(cmd, sizeof(cmd),
                 "PROMO_REDIS_URL=127.0.0.1:1 %s/validator --check >/dev/null 2>&1",
                 bindir);
        rc = system(cmd);
        ck_assert(WIFEXITED(rc));
        ck_assert_int_eq(WEXITSTATUS(rc), 1);
        snprintf(cmd, sizeof(cmd), "%s/validator --check >/dev/null 2>&1", bindir);
        rc = system(cmd);
        ck_assert(WIFEXITED(rc));
        ck_assert_int_eq(WEXITSTATUS(rc), 0);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("services");
        TCase *tc = tcase_create("lifecycle");
        SRunner *sr;
        int failed;

        tcase_set_timeout(tc, 60);
        tcase_add_loop_test(tc, service_lifecycle, 0,
                            (int)(sizeof(services) / sizeof(services[0])));
        tcase_add_test(tc, check_flag_reports_down_dependency);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
