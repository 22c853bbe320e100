#include "po/service.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "po/http.h"
#include "po/log.h"

#define SERVICE_PROBE_INTERVAL_MS 2000
#define SERVICE_PROBE_TIMEOUT_MS 1500

/* The one mutable global (convention 7): set by the signal handler. */
static volatile sig_atomic_t service_run = 1;

static void on_signal(int sig)
{
        (void)sig;
        service_run = 0;
}

struct po_service {
        const po_service_def_t *def;
        po_config_t cfg;
        po_deps_t *deps;
        po_http_t *http;
        po_metrics_t *metrics;
        int deps_ready;
        int work_ready;
        char work_why[160];
        long long started_ms;
        long long next_probe_ms;
        unsigned long long probes;
};

static long long now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int po_service_running(void)
{
        return service_run;
}

void po_service_request_stop(void)
{
        service_run = 0;
}

static int is_ready(const po_service_t *svc)
{
        return svc->deps_ready && svc->work_ready;
}

static int handle_http(const char *path, po_dynbuf_t *body, const char **ctype,
                       void *opaque)
{
        po_service_t *svc = opaque;
        const char *name = svc->def->name;
        int d;

        (void)ctype;
        if (strcmp(path, "/healthz") == 0) {
                po_dynbuf_addf(body, "ok\n");
                return 200;
        }
        if (strcmp(path, "/readyz") == 0) {
                for (d = 0; d < PO_DEP_COUNT; d++)
                        if (po_deps_needed(svc->deps, d))
                                po_dynbuf_addf(body, "%s %s%s%s\n", po_deps_name(d),
                                               po_deps_up(svc->deps, d) ? "up" : "down",
                                               po_deps_up(svc->deps, d) ? "" : ": ",
                                               po_deps_error(svc->deps, d));
                po_dynbuf_addf(body, "work %s%s%s\n",
                               svc->work_ready ? "ready" : "not ready",
                               svc->work_ready ? "" : ": ", svc->work_why);
                return is_ready(svc) ? 200 : 503;
        }
        if (strcmp(path, "/metrics") == 0) {
                po_dynbuf_addf(
                    body,
                    "# HELP promo_up 1 while the service loop runs.\n"
                    "# TYPE promo_up gauge\npromo_up{service=\"%s\"} 1\n"
                    "# HELP promo_ready 1 when the service is ready.\n"
                    "# TYPE promo_ready gauge\npromo_ready{service=\"%s\"} %d\n"
                    "# HELP promo_dependency_up 1 when the dependency answered "
                    "its last probe.\n# TYPE promo_dependency_up gauge\n",
                    name, name, is_ready(svc));
                for (d = 0; d < PO_DEP_COUNT; d++)
                        if (po_deps_needed(svc->deps, d))
                                po_dynbuf_addf(body,
                                               "promo_dependency_up{service=\"%s\","
                                               "dependency=\"%s\"} %d\n",
                                               name, po_deps_name(d),
                                               po_deps_up(svc->deps, d));
                po_dynbuf_addf(body,
                               "# HELP promo_uptime_seconds Seconds since start.\n"
                               "# TYPE promo_uptime_seconds gauge\n"
                               "promo_uptime_seconds{service=\"%s\"} %lld\n",
                               name, (now_ms() - svc->started_ms) / 1000);
                po_metrics_render(svc->metrics, body);
                return 200;
        }
        po_dynbuf_addf(body, "not found: try /healthz, /readyz or /metrics\n");
        return 404;
}

po_service_t *po_service_new(const po_service_def_t *def, char *errstr,
                             size_t errstr_size)
{
        po_service_t *svc = calloc(1, sizeof(*svc));
        struct sigaction sa;

        if (!svc) {
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        svc->def = def;
        svc->work_ready = 1;
        svc->started_ms = now_ms();
        po_log_init(def->name, PO_LOG_INFO);
        if (po_config_load(&svc->cfg, def->port_env, def->default_port, errstr,
                           errstr_size))
                goto error;
        svc->metrics = po_metrics_new(def->name);
        if (!svc->metrics) {
                snprintf(errstr, errstr_size, "out of memory");
                goto error;
        }
        svc->deps = po_deps_new(&svc->cfg, def->deps, errstr, errstr_size);
        if (!svc->deps)
                goto error;
        if (svc->cfg.http_port > 0) {
                svc->http = po_http_new(svc->cfg.http_port, handle_http, svc, errstr,
                                        errstr_size);
                if (!svc->http)
                        goto error;
                po_log_info(
                    "health and metrics on http://127.0.0.1:%d/{healthz,readyz,metrics}",
                    po_http_port(svc->http));
        }
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
        return svc;

error:
        po_service_destroy(svc);
        return NULL;
}

int po_service_probe(po_service_t *svc)
{
        int was = svc->deps_ready;
        int d;

        svc->deps_ready = po_deps_probe(svc->deps, SERVICE_PROBE_TIMEOUT_MS) == PO_OK;
        svc->probes++;
        svc->next_probe_ms = now_ms() + SERVICE_PROBE_INTERVAL_MS;
        if (svc->deps_ready && !was) {
                po_log_info("every dependency answers");
        } else if (!svc->deps_ready && (was || svc->probes == 1)) {
                for (d = 0; d < PO_DEP_COUNT; d++)
                        if (po_deps_needed(svc->deps, d) && !po_deps_up(svc->deps, d))
                                po_log_warn("not ready: %s down: %s", po_deps_name(d),
                                            po_deps_error(svc->deps, d));
        }
        return svc->deps_ready;
}

void po_service_tick(po_service_t *svc, int timeout_ms)
{
        if (svc->http)
                po_http_poll(svc->http, timeout_ms);
        else if (timeout_ms > 0)
                nanosleep(&(struct timespec){.tv_nsec = timeout_ms * 1000000L}, NULL);
        if (now_ms() >= svc->next_probe_ms)
                po_service_probe(svc);
}

void po_service_set_work_ready(po_service_t *svc, int ok, const char *why)
{
        svc->work_ready = ok;
        snprintf(svc->work_why, sizeof(svc->work_why), "%s", ok || !why ? "" : why);
}

po_metrics_t *po_service_metrics(po_service_t *svc)
{
        return svc->metrics;
}

const po_config_t *po_service_config(const po_service_t *svc)
{
        return &svc->cfg;
}

const char *po_service_name(const po_service_t *svc)
{
        return svc->def->name;
}

int po_service_render(po_service_t *svc, const char *path, po_dynbuf_t *body)
{
        const char *ctype = NULL;

        return handle_http(path, body, &ctype, svc);
}

void po_service_destroy(po_service_t *svc)
{
        if (!svc)
                return;
        po_http_destroy(svc->http);
        po_deps_destroy(svc->deps);
        po_metrics_destroy(svc->metrics);
        free(svc);
}

int po_service_main(const po_service_def_t *def, int argc, char **argv)
{
        po_service_t *svc;
        po_service_def_t local = *def;
        char errstr[512];
        int check_only = 0, status, d, i;

        for (i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--check") == 0) {
                        check_only = 1;
                } else {
                        fprintf(stderr, "usage: %s [--check]\n", argv[0]);
                        return 2;
                }
        }
        if (check_only) {
                /* A probe needs no endpoint (and must not fight a running
                 * instance for its port). */
                local.port_env = NULL;
                local.default_port = 0;
        }
        svc = po_service_new(&local, errstr, sizeof(errstr));
        if (!svc) {
                po_log_error("cannot start: %s", errstr);
                return 2;
        }
        if (check_only) {
                status = po_service_probe(svc) ? 0 : 1;
                for (d = 0; d < PO_DEP_COUNT; d++)
                        if (po_deps_needed(svc->deps, d))
                                printf("%s %s\n", po_deps_name(d),
                                       po_deps_up(svc->deps, d) ? "up" : "down");
                po_service_destroy(svc);
                return status;
        }
        po_service_probe(svc);
        while (po_service_running())
                po_service_tick(svc, 100);
        po_log_info("stopping on signal");
        po_service_destroy(svc);
        return 0;
}
