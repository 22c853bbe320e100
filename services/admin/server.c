/* The admin's HTTP server on libmicrohttpd: request bodies (bounded),
 * routing, authentication, the worker pool, static files of the UI, and the
 * health endpoints rendered by the main thread. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin.h"
#include "po/log.h"

#define STATIC_MAX (16u << 20)

/* One request's state between libmicrohttpd's calls. */
typedef struct conn_ctx {
        admin_req_t req;
        po_dynbuf_t body;
        int too_large;
        int64_t started_us;
} conn_ctx_t;

/* ---- worker pool ---- */

static admin_worker_t *worker_get(admin_t *app)
{
        admin_worker_t *w = NULL;
        int i;

        pthread_mutex_lock(&app->pool_mu);
        for (;;) {
                for (i = 0; i < app->nworkers && !w; i++)
                        if (!app->workers[i].busy)
                                w = &app->workers[i];
                if (w)
                        break;
                pthread_cond_wait(&app->pool_cv, &app->pool_mu);
        }
        w->busy = 1;
        pthread_mutex_unlock(&app->pool_mu);
        return w;
}

static void worker_put(admin_t *app, admin_worker_t *w)
{
        pthread_mutex_lock(&app->pool_mu);
        w->busy = 0;
        pthread_cond_signal(&app->pool_cv);
        pthread_mutex_unlock(&app->pool_mu);
}

/* ---- health, OpenAPI, static files ---- */

static void health(admin_req_t *r, int i)
{
        admin_t *app = r->app;

        pthread_mutex_lock(&app->met_mu);
        po_dynbuf_add(&r->out, po_dynbuf_str(&app->health[i]), app->health[i].len);
        r->status = app->health_status[i];
        pthread_mutex_unlock(&app->met_mu);
        r->ctype = i == 2 ? "text/plain; version=0.0.4" : "text/plain";
}

void h_healthz(admin_req_t *r)
{
        health(r, 0);
}

void h_readyz(admin_req_t *r)
{
        health(r, 1);
}

void h_metrics(admin_req_t *r)
{
        health(r, 2);
}

void h_openapi(admin_req_t *r)
{
        if (!r->app->openapi) {
                admin_error(r, 404, "not_found",
                            "docs/openapi.json was not found at start");
                return;
        }
        po_dynbuf_add(&r->out, r->app->openapi, r->app->openapi_len);
        r->status = 200;
        r->ctype = "application/json";
}

static const char *content_type(const char *name)
{
        static const char *const types[][2] = {
            {".html", "text/html; charset=utf-8"},
            {".js", "text/javascript; charset=utf-8"},
            {".mjs", "text/javascript; charset=utf-8"},
            {".css", "text/css; charset=utf-8"},
            {".json", "application/json"},
            {".svg", "image/svg+xml"},
            {".png", "image/png"},
            {".ico", "image/x-icon"},
            {".txt", "text/plain; charset=utf-8"},
        };
        const char *dot = strrchr(name, '.');
        size_t i;

        for (i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
                if (strcmp(dot, types[i][0]) == 0)
                        return types[i][1];
        return "application/octet-stream";
}

/* A path below the UI directory: segments of [A-Za-z0-9._-], none starting
 * with a dot (no "..", no hidden files). */
static int safe_path(const char *p)
{
        int seg_start = 1;

        if (!*p)
                return 0;
        for (; *p; p++) {
                char c = *p;

                if (c == '/') {
                        if (seg_start)
                                return 0;
                        seg_start = 1;
                        continue;
                }
                if (seg_start && c == '.')
                        return 0;
                seg_start = 0;
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
                        return 0;
        }
        return !seg_start;
}

static void serve_file(admin_req_t *r, const char *rel)
{
        char path[1400];
        struct stat st;
        char buf[65536];
        ssize_t n;
        int fd;

        if (!safe_path(rel) ||
            (size_t)snprintf(path, sizeof(path), "%s/%s", r->app->set.ui_dir, rel) >=
                sizeof(path)) {
                admin_error(r, 404, "not_found", "no such file");
                return;
        }
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode) ||
            (size_t)st.st_size > STATIC_MAX) {
                if (fd >= 0)
                        close(fd);
                admin_error(r, 404, "not_found", "no such file: %s", rel);
                return;
        }
        while ((n = read(fd, buf, sizeof(buf))) > 0)
                po_dynbuf_add(&r->out, buf, (size_t)n);
        close(fd);
        if (n < 0 || r->out.failed) {
                admin_error(r, 500, "internal", "cannot read %s", rel);
                return;
        }
        r->status = 200;
        r->ctype = content_type(rel);
}

void h_ui_index(admin_req_t *r)
{
        serve_file(r, "index.html");
}

void h_ui_file(admin_req_t *r)
{
        serve_file(r, r->params[0]);
}

/* ---- requests ---- */

static void dispatch(conn_ctx_t *c)
{
        admin_req_t *r = &c->req;
        const admin_route_t *route;
        char labels[200];
        int known;

        route = admin_route_match(r->method, r->path, r, &known);
        if (!route) {
                if (known)
                        admin_error(r, 405, "method_not_allowed",
                                    "%s is not allowed on %s", r->method, r->path);
                else
                        admin_error(r, 404, "not_found", "no route for %s", r->path);
                return;
        }
        if (c->too_large) {
                admin_error(r, 413, "too_large", "the body exceeds %u bytes",
                            ADMIN_BODY_MAX);
                return;
        }
        r->body = c->body.data;
        r->body_len = c->body.len;
        if (route->roles) {
                r->w = worker_get(r->app);
                if (admin_auth(r, route->roles) == 0)
                        route->handler(r);
                worker_put(r->app, r->w);
                r->w = NULL;
        } else {
                route->handler(r);
        }
        if (r->status == 0)
                admin_error(r, 500, "internal", "no response was produced");
        snprintf(labels, sizeof(labels), "method=\"%s\",route=\"%s\",status=\"%d\"",
                 route->method, route->path, r->status);
        admin_count(r->app, "promo_admin_requests_total",
                    "HTTP requests by route and status.", labels, 1);
        if (r->status >= 500)
                po_log_warn("%s %s -> %d (%s): %.300s", r->method, r->path, r->status,
                            r->who.name[0] ? r->who.name : "-", po_dynbuf_str(&r->out));
}

static enum MHD_Result respond(struct MHD_Connection *conn, conn_ctx_t *c,
                               const char *version)
{
        admin_req_t *r = &c->req;
        struct MHD_Response *resp;
        enum MHD_Result ret;
        size_t len = r->out.len;
        void *data = r->out.data;

        if (r->out.failed) {
                static const char oom[] = "{\"error\":\"internal\",\"message\":\"out of "
                                          "memory\"}";

                resp = MHD_create_response_from_buffer(sizeof(oom) - 1, (void *)oom,
                                                       MHD_RESPMEM_PERSISTENT);
                r->status = 500;
                r->ctype = "application/json";
        } else {
                /* The buffer goes to libmicrohttpd, which frees it. */
                r->out.data = NULL;
                po_dynbuf_init(&r->out, 1);
                resp = MHD_create_response_from_buffer(len, data ? data : (void *)"",
                                                       data ? MHD_RESPMEM_MUST_FREE
                                                            : MHD_RESPMEM_PERSISTENT);
        }
        if (!resp)
                return MHD_NO;
        /* An HTTP/1.0 client (probes, scripts) gets an HTTP/1.0 answer. */
        if (version && strcmp(version, MHD_HTTP_VERSION_1_0) == 0)
                MHD_set_response_options(resp, MHD_RF_HTTP_1_0_SERVER, MHD_RO_END);
        if (r->ctype)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->ctype);
        if (r->retry_after[0])
                MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER,
                                        r->retry_after);
        if (r->disposition[0])
                MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_DISPOSITION,
                                        r->disposition);
        MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        ret = MHD_queue_response(conn, (unsigned)r->status, resp);
        MHD_destroy_response(resp);
        return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
        admin_t *app = cls;
        conn_ctx_t *c = *con_cls;

        if (!c) {
                c = calloc(1, sizeof(*c));
                if (!c)
                        return MHD_NO;
                c->started_us = admin_now_us();
                c->req.app = app;
                c->req.conn = conn;
                c->req.method = method;
                c->req.path = url;
                c->req.status = 0; /* no response yet */
                po_dynbuf_init(&c->req.out, (size_t)1 << 30);
                po_dynbuf_init(&c->body, ADMIN_BODY_MAX);
                *con_cls = c;
                return MHD_YES;
        }
        if (*upload_data_size) {
                if (!c->too_large &&
                    po_dynbuf_add(&c->body, upload_data, *upload_data_size) != PO_OK)
                        c->too_large = 1; /* the rest is read and dropped */
                *upload_data_size = 0;
                return MHD_YES;
        }
        dispatch(c);
        return respond(conn, c, version);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
        conn_ctx_t *c = *con_cls;

        (void)conn;
        (void)toe;
        if (!c)
                return;
        admin_observe_us(cls, "promo_admin_request_seconds", "HTTP request latency.",
                         (uint64_t)(admin_now_us() - c->started_us));
        po_dynbuf_release(&c->req.out);
        po_dynbuf_release(&c->body);
        free(c);
        *con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
        char msg[512];

        (void)cls;
        vsnprintf(msg, sizeof(msg), fmt, ap);
        msg[strcspn(msg, "\n")] = '\0';
        po_log_warn("http: %s", msg);
}

/* Starts libmicrohttpd on the configured address. Returns the daemon or
 * NULL with errstr. */
struct MHD_Daemon *admin_server_start(admin_t *app, int port, char *errstr,
                                      size_t errstr_size)
{
        struct sockaddr_in addr;
        struct MHD_Daemon *d;

        memset(&addr, 0, sizeof(addr));
        addr.sin_family = AF_INET;
        addr.sin_port = htons((uint16_t)port);
        if (inet_pton(AF_INET, app->set.bind, &addr.sin_addr) != 1) {
                snprintf(errstr, errstr_size, "PROMO_ADMIN_BIND: not an IPv4 address: %s",
                         app->set.bind);
                return NULL;
        }
        d = MHD_start_daemon(
            MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG,
            (uint16_t)port, NULL, NULL, on_request, app, MHD_OPTION_EXTERNAL_LOGGER,
            on_mhd_log, app, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)app->set.threads,
            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_CONNECTION_TIMEOUT,
            60u, MHD_OPTION_CONNECTION_LIMIT, 2000u, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
            (size_t)(64 * 1024), MHD_OPTION_NOTIFY_COMPLETED, on_completed, app,
            MHD_OPTION_END);
        if (!d)
                snprintf(errstr, errstr_size, "cannot listen on %s:%d: %s", app->set.bind,
                         port, strerror(errno));
        return d;
}
