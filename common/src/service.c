#include "po/service.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "po/config.h"
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

typedef struct service_ctx {
        const po_service_def_t *def;
        po_deps_t *deps;
        int ready;
        long long started_ms;
        unsigned long long probes;
} service_ctx_t;

static long long now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int handle_http(const char *path, po_dynbuf_t *body, const char **ctype,
                       void *opaque)
{
        service_ctx_t *ctx = opaque;
        int d;

        if (strcmp(path, "/healthz") == 0) {
                po_dynbuf_addf(body, "ok\n");
                return 200;
        }
        if (strcmp(path, "/readyz") == 0) {
                for (d = 0; d < PO_DEP_COUNT; d++)
                        if (po_deps_needed(ctx->deps, d))
                                po_dynbuf_addf(body, "%s %s%s%s\n", po_deps_name(d),
                                               po_deps_up(ctx->deps, d) ? "up" : "down",
                                               po_deps_up(ctx->deps, d) ? "" : ": ",
                                               po_deps_error(ctx->deps, d));
                return ctx->ready ? 200 : 503;
        }
        if (strcmp(path, "/metrics") == 0) {
                *ctype = "text/plain; version=0.0.4; charset=utf-8";
                po_dynbuf_addf(body,
                               "# HELP promo_up 1 while the service loop runs.\n"
                               "# TYPE promo_up gauge\npromo_up{service=\"%s\"} 1\n",
                               ctx->def->name);
                po_dynbuf_addf(body,
                               "# HELP promo_ready 1 when every dependency answers.\n"
                               "# TYPE promo_ready gauge\n");
                po_dynbuf_addf(body, "promo_ready{service=\"%s\"} %d\n", ctx->def->name,
                               ctx->ready);
                po_dynbuf_addf(body, "# HELP promo_dependency_up 1 when the dependency "
                                     "answered its last probe.\n"
                                     "# TYPE promo_dependency_up gauge\n");
                for (d = 0; d < PO_DEP_COUNT; d++)
                        if (po_deps_needed(ctx->deps, d))
                                po_dynbuf_addf(body,
                                               "promo_dependency_up{service=\"%s\","
                                               "dependency=\"%s\"} %d\n",
                                               ctx->def->name, po_deps_name(d),
                                               po_deps_up(ctx->deps, d));
                po_dynbuf_addf(body,
                               "# HELP promo_uptime_seconds Seconds since start.\n"
                               "# TYPE promo_uptime_seconds gauge\n"
                               "promo_uptime_seconds{service=\"%s\"} %lld\n",
                               ctx->def->name, (now_ms() - ctx->started_ms) / 1000);
                return 200;
        }
        po_dynbuf_addf(body, "not found: try /healthz, /readyz or /metrics\n");
        return 404;
}

static void probe(service_ctx_t *ctx)
{
        int was = ctx->ready;
        int d;

        ctx->ready = po_deps_probe(ctx->deps, SERVICE_PROBE_TIMEOUT_MS) == PO_OK;
        ctx->probes++;
        if (ctx->ready && !was) {
                po_log_info("ready: every dependency answers");
        } else if (!ctx->ready && (was || ctx->probes == 1)) {
                for (d = 0; d < PO_DEP_COUNT; d++)
                        if (po_deps_needed(ctx->deps, d) && !po_deps_up(ctx->deps, d))
                                po_log_warn("not ready: %s down: %s", po_deps_name(d),
                                            po_deps_error(ctx->deps, d));
        }
}

int po_service_main(const po_service_def_t *def, int argc, char **argv)
{
        service_ctx_t ctx = {.def = def};
        po_config_t cfg;
        po_http_t *http = NULL;
        char errstr[512];
        struct sigaction sa;
        long long next_probe;
        int check_only = 0;
        int status = 1;
        int i;

        po_log_init(def->name, PO_LOG_INFO);
        for (i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--check") == 0) {
                        check_only = 1;
                } else {
                        fprintf(stderr, "usage: %s [--check]\n", argv[0]);
                        return 2;
                }
        }
        if (po_config_load(&cfg, def->port_env, def->default_port, errstr,
                           sizeof(errstr))) {
                po_log_error("configuration: %s", errstr);
                return 2;
        }
        ctx.deps = po_deps_new(&cfg, def->deps, errstr, sizeof(errstr));
        if (!ctx.deps) {
                po_log_error("cannot create dependency handles: %s", errstr);
                return 1;
        }
        ctx.started_ms = now_ms();
        if (check_only) {
                probe(&ctx);
                for (i = 0; i < PO_DEP_COUNT; i++)
                        if (po_deps_needed(ctx.deps, i))
                                printf("%s %s\n", po_deps_name(i),
                                       po_deps_up(ctx.deps, i) ? "up" : "down");
                status = ctx.ready ? 0 : 1;
                goto out_deps;
        }

        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);

        if (cfg.http_port > 0) {
                http =
                    po_http_new(cfg.http_port, handle_http, &ctx, errstr, sizeof(errstr));
                if (!http) {
                        po_log_error("health endpoint: %s", errstr);
                        goto out_deps;
                }
                po_log_info(
                    "health and metrics on http://127.0.0.1:%d/{healthz,readyz,metrics}",
                    po_http_port(http));
        }
        probe(&ctx);
        next_probe = now_ms() + SERVICE_PROBE_INTERVAL_MS;
        while (service_run) {
                if (http)
                        po_http_poll(http, 100);
                else
                        nanosleep(&(struct timespec){.tv_nsec = 100 * 1000000L}, NULL);
                if (now_ms() >= next_probe) {
                        probe(&ctx);
                        next_probe = now_ms() + SERVICE_PROBE_INTERVAL_MS;
                }
        }
        po_log_info("stopping on signal");
        status = 0;
        po_http_destroy(http);
out_deps:
        po_deps_destroy(ctx.deps);
        return status;
}
