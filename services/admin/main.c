/* admin: the admin API and UI, and the checkout validation endpoint, on
 * libmicrohttpd (docs/admin.md, docs/openapi.json).
 *
 *   admin                                   serve (PROMO_ADMIN_HTTP_PORT)
 *   admin --check                           probe Kafka, Redis, PostgreSQL once
 *   admin token create --name N --role R    create an API token; prints it once
 *
 * The main thread probes the dependencies every 2 s and renders /healthz,
 * /readyz and /metrics (the same texts as every service, po_service_render);
 * libmicrohttpd's thread pool serves requests; a Kafka thread serves the
 * producer's delivery reports. SIGTERM or SIGINT: stop accepting, finish
 * the requests in flight, flush the producer, exit 0. */
#include <microhttpd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "po/config.h"
#include "po/log.h"
#include "po/pg.h"

#ifndef PROMO_SOURCE_DIR
#define PROMO_SOURCE_DIR "."
#endif

struct MHD_Daemon *admin_server_start(admin_t *app, int port, char *errstr,
                                      size_t errstr_size);

static const po_service_def_t service_def = {
    .name = "admin",
    .port_env = "PROMO_ADMIN_HTTP_PORT",
    .default_port = 58080,
    .deps = PO_DEPS_ALL,
};

/* ---- settings ---- */

static int env_int(const char *name, long long def, long long lo, long long hi,
                   long long *out)
{
        const char *s = getenv(name);
        char *end;
        long long v;

        *out = def;
        if (!s || !*s)
                return 0;
        v = strtoll(s, &end, 10);
        if (*end || v < lo || v > hi) {
                po_log_error("%s must be an integer %lld..%lld, got \"%s\"", name, lo, hi,
                             s);
                return -1;
        }
        *out = v;
        return 0;
}

static int load_settings(admin_settings_t *s)
{
        long long v;
        const char *t;

        /* One thread per core (at least 2, at most 4): a request is CPU work
         * between Redis round trips, and more threads than cores only adds
         * context switches (docs/BENCHMARKS.md, "Admin"). */
        long cores = sysconf(_SC_NPROCESSORS_ONLN);

        if (env_int("PROMO_ADMIN_THREADS",
                    cores < 2   ? 2
                    : cores > 4 ? 4
                                : cores,
                    1, 64, &v))
                return -1;
        s->threads = (int)v;
        if (env_int("PROMO_ADMIN_TOKEN_CACHE_MS", 2000, 0, 60000, &v))
                return -1;
        s->token_cache_ms = (int)v;
        if (env_int("PROMO_ADMIN_RL_WINDOW_S", 60, 1, 86400, &v))
                return -1;
        s->rl_window_s = (int)v;
        if (env_int("PROMO_ADMIN_RL_TOKEN_MAX", 1000, 1, 1000000000, &v))
                return -1;
        s->rl_token_max = v;
        if (env_int("PROMO_ADMIN_RL_CUSTOMER_MAX", 10, 1, 1000000000, &v))
                return -1;
        s->rl_customer_max = v;
        t = po_env_or("PROMO_ADMIN_BIND", "127.0.0.1");
        if (strlen(t) >= sizeof(s->bind)) {
                po_log_error("PROMO_ADMIN_BIND is too long");
                return -1;
        }
        snprintf(s->bind, sizeof(s->bind), "%s", t);
        t = po_env_or("PROMO_ADMIN_UI_DIR", PROMO_SOURCE_DIR "/services/admin/ui");
        if (strlen(t) >= sizeof(s->ui_dir)) {
                po_log_error("PROMO_ADMIN_UI_DIR is too long");
                return -1;
        }
        snprintf(s->ui_dir, sizeof(s->ui_dir), "%s", t);
        t = po_env_or("PROMO_STACKING", "best_only");
        if (strcmp(t, "best_only") != 0 && strcmp(t, "combine") != 0) {
                po_log_error("PROMO_STACKING must be best_only or combine, not %s", t);
                return -1;
        }
        s->stacking = strcmp(t, "combine") == 0 ? PO_STACK_COMBINE : PO_STACK_BEST_ONLY;
        t = po_env_or("PROMO_ROUNDING", "half_up");
        if (strcmp(t, "half_up") != 0 && strcmp(t, "half_even") != 0) {
                po_log_error("PROMO_ROUNDING must be half_up or half_even, not %s", t);
                return -1;
        }
        s->rounding = strcmp(t, "half_even") == 0 ? PO_ROUND_HALF_EVEN : PO_ROUND_HALF_UP;
        s->codes_topic = po_env_or("PROMO_CODES_TOPIC", "promo.codes");
        s->attempts_topic = po_env_or("PROMO_ATTEMPTS_TOPIC", "checkout.attempts");
        return 0;
}

/* ---- Kafka ---- */

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
        admin_wait_t *w = m->_private;

        (void)rk;
        (void)opaque;
        if (!w) {
                if (m->err)
                        po_log_warn("delivery to %s failed: %s",
                                    rd_kafka_topic_name(m->rkt),
                                    rd_kafka_err2str(m->err));
                return;
        }
        pthread_mutex_lock(&w->mu);
        w->pending--;
        if (m->err) {
                w->failed++;
                if (!w->error[0])
                        snprintf(w->error, sizeof(w->error), "delivery to %s: %s",
                                 rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err));
        }
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->mu);
}

static rd_kafka_t *producer_new(const po_config_t *cfg, char *errstr, size_t size)
{
        rd_kafka_conf_t *c = rd_kafka_conf_new();
        rd_kafka_t *rk;

        if (rd_kafka_conf_set(c, "bootstrap.servers", cfg->kafka_brokers, errstr, size) ||
            rd_kafka_conf_set(c, "enable.idempotence", "true", errstr, size) ||
            rd_kafka_conf_set(c, "linger.ms", "2", errstr, size) ||
            rd_kafka_conf_set(c, "queue.buffering.max.messages", "1000000", errstr,
                              size) ||
            rd_kafka_conf_set(c, "queue.buffering.max.kbytes", "1048576", errstr, size) ||
            rd_kafka_conf_set(c, "message.timeout.ms", "30000", errstr, size)) {
                rd_kafka_conf_destroy(c);
                return NULL;
        }
        rd_kafka_conf_set_dr_msg_cb(c, on_delivery);
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, errstr, size);
        if (!rk)
                rd_kafka_conf_destroy(c);
        return rk;
}

typedef struct poller {
        rd_kafka_t *rk;
        atomic_int run;
} poller_t;

static void *poll_main(void *arg)
{
        poller_t *p = arg;

        while (atomic_load(&p->run))
                rd_kafka_poll(p->rk, 100);
        return NULL;
}

/* ---- start-up pieces ---- */

static char *slurp(const char *path, size_t *len)
{
        FILE *f = fopen(path, "rb");
        char *buf = NULL;
        long n;

        if (!f)
                return NULL;
        if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && n < (16L << 20) &&
            fseek(f, 0, SEEK_SET) == 0) {
                buf = malloc((size_t)n + 1);
                if (buf && fread(buf, 1, (size_t)n, f) == (size_t)n) {
                        buf[n] = '\0';
                        *len = (size_t)n;
                } else {
                        free(buf);
                        buf = NULL;
                }
        }
        fclose(f);
        return buf;
}

static int workers_new(admin_t *app, char *errstr, size_t size)
{
        int i;

        app->workers = calloc((size_t)app->set.threads, sizeof(*app->workers));
        if (!app->workers)
                return -1;
        app->nworkers = app->set.threads;
        for (i = 0; i < app->nworkers; i++) {
                admin_worker_t *w = &app->workers[i];

                po_usage_init(&w->usage);
                po_dynbuf_init(&w->vbuf, 8u << 20);
                po_dynbuf_init(&w->vout, 64u << 20);
                w->cj = po_calcjson_new();
                w->avro = po_avro_new(errstr, size);
                if (!w->cj || !w->avro)
                        return -1;
        }
        return 0;
}

static void workers_destroy(admin_t *app)
{
        int i;

        for (i = 0; i < app->nworkers; i++) {
                admin_worker_t *w = &app->workers[i];

                if (w->rc)
                        redisFree(w->rc);
                if (w->pg)
                        PQfinish(w->pg);
                po_calcjson_destroy(w->cj);
                po_avro_destroy(w->avro);
                admin_worker_validate_release(w);
        }
        free(app->workers);
}

/* Applies the migrations, waiting for PostgreSQL. Returns 0 or -1 when
 * stopped first. */
static int migrate(admin_t *app)
{
        char errstr[512];

        while (po_service_running()) {
                PGconn *pg =
                    po_pg_connect(app->cfg, "promo-admin", errstr, sizeof(errstr));
                int ok = pg && po_pg_migrate(pg, NULL, errstr, sizeof(errstr)) == PO_OK;

                if (pg)
                        PQfinish(pg);
                if (ok)
                        return 0;
                errstr[strcspn(errstr, "\n")] = '\0';
                po_log_warn("postgres: %s (retrying)", errstr);
                nanosleep(&(struct timespec){.tv_sec = 1}, NULL);
        }
        return -1;
}

static void render_health(admin_t *app)
{
        static const char *const paths[3] = {"/healthz", "/readyz", "/metrics"};
        int i;

        pthread_mutex_lock(&app->met_mu);
        for (i = 0; i < 3; i++) {
                po_dynbuf_reset(&app->health[i]);
                app->health_status[i] =
                    po_service_render(app->svc, paths[i], &app->health[i]);
        }
        pthread_mutex_unlock(&app->met_mu);
}

/* ---- the token command ---- */

static int token_cmd(int argc, char **argv)
{
        const char *name = NULL, *role = NULL;
        char errstr[512], token[64];
        po_config_t cfg;
        PGconn *pg = NULL;
        int64_t id;
        int i, status = 1;

        for (i = 3; i < argc; i++) {
                if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
                        name = argv[++i];
                else if (strcmp(argv[i], "--role") == 0 && i + 1 < argc)
                        role = argv[++i];
                else
                        break;
        }
        if (argc < 3 || strcmp(argv[2], "create") != 0 || i < argc || !name || !role ||
            !*name || strlen(name) > 100 || !admin_role_parse(role)) {
                fprintf(stderr, "usage: admin token create --name NAME --role "
                                "admin|marketer|analyst|checkout\n");
                return 2;
        }
        po_log_init("admin", PO_LOG_WARN);
        if (po_config_load(&cfg, NULL, 0, errstr, sizeof(errstr))) {
                fprintf(stderr, "admin: %s\n", errstr);
                return 2;
        }
        pg = po_pg_connect(&cfg, "promo-admin-cli", errstr, sizeof(errstr));
        if (!pg || po_pg_migrate(pg, NULL, errstr, sizeof(errstr)) ||
            po_pg_exec(pg, "BEGIN", errstr, sizeof(errstr)) ||
            admin_token_create(pg, name, role, "cli", token, sizeof(token), &id, errstr,
                               sizeof(errstr))) {
                fprintf(stderr, "admin: token create: %s\n", errstr);
                goto out;
        }
        {
                char idtxt[24], after[300];
                const char *p[3] = {idtxt, after, NULL};
                json_t *o = json_pack("{s:I, s:s, s:s}", "id", (json_int_t)id, "name",
                                      name, "role", role);
                char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
                PGresult *res;

                json_decref(o);
                snprintf(idtxt, sizeof(idtxt), "%lld", (long long)id);
                snprintf(after, sizeof(after), "%s", text ? text : "{}");
                free(text);
                res = PQexecParams(
                    pg,
                    "INSERT INTO admin_changes (actor, action, entity,"
                    " entity_id, after) VALUES ('cli', 'create', 'token', $1,"
                    " $2::jsonb)",
                    2, NULL, p, NULL, NULL, 0);
                if (PQresultStatus(res) != PGRES_COMMAND_OK) {
                        fprintf(stderr, "admin: token create: %s",
                                PQresultErrorMessage(res));
                        PQclear(res);
                        goto out;
                }
                PQclear(res);
        }
        if (po_pg_exec(pg, "COMMIT", errstr, sizeof(errstr))) {
                fprintf(stderr, "admin: token create: %s\n", errstr);
                goto out;
        }
        printf("%s\n", token);
        status = 0;
out:
        if (pg)
                PQfinish(pg);
        return status;
}

/* ---- main ---- */

int main(int argc, char **argv)
{
        static const po_service_def_t quiet = {
            .name = "admin", .port_env = NULL, .default_port = 0, .deps = PO_DEPS_ALL};
        admin_t app;
        poller_t poller = {0};
        pthread_t poll_thread;
        struct MHD_Daemon *daemon = NULL;
        char errstr[512], docs[1200];
        int port, status = 2, polling = 0, i;
        const char *s;

        if (argc > 1 && strcmp(argv[1], "--check") == 0)
                return po_service_main(&service_def, argc, argv);
        if (argc > 1 && strcmp(argv[1], "token") == 0)
                return token_cmd(argc, argv);
        if (argc > 1) {
                fprintf(stderr, "usage: admin [--check] | admin token create --name NAME "
                                "--role ROLE\n");
                return 2;
        }
        memset(&app, 0, sizeof(app));
        pthread_mutex_init(&app.pool_mu, NULL);
        pthread_cond_init(&app.pool_cv, NULL);
        pthread_mutex_init(&app.tok_mu, NULL);
        pthread_mutex_init(&app.met_mu, NULL);
        for (i = 0; i < 3; i++)
                po_dynbuf_init(&app.health[i], 1u << 20);
        /* The service skeleton without its own HTTP endpoint: config,
         * logging, probes, metrics, signals. */
        app.svc = po_service_new(&quiet, errstr, sizeof(errstr));
        if (!app.svc) {
                fprintf(stderr, "admin: %s\n", errstr);
                return 2;
        }
        app.cfg = po_service_config(app.svc);
        port = service_def.default_port;
        s = getenv(service_def.port_env);
        if (s && *s && po_config_parse_port(s, 0, &port)) {
                po_log_error("%s must be a port 1..65535, got \"%s\"",
                             service_def.port_env, s);
                goto out;
        }
        if (load_settings(&app.set))
                goto out;
        snprintf(docs, sizeof(docs), "%s",
                 po_env_or("PROMO_ADMIN_OPENAPI", PROMO_SOURCE_DIR "/docs/openapi.json"));
        app.openapi = slurp(docs, &app.openapi_len);
        if (!app.openapi)
                po_log_warn("%s not readable: /v1/openapi.json will answer 404", docs);
        if (workers_new(&app, errstr, sizeof(errstr))) {
                po_log_error("start: %s", errstr[0] ? errstr : "out of memory");
                goto out;
        }
        app.producer = producer_new(app.cfg, errstr, sizeof(errstr));
        if (!app.producer) {
                po_log_error("kafka: %s", errstr);
                goto out;
        }
        poller.rk = app.producer;
        atomic_store(&poller.run, 1);
        if (pthread_create(&poll_thread, NULL, poll_main, &poller)) {
                po_log_error("cannot start the Kafka thread");
                goto out;
        }
        polling = 1;
        po_service_set_work_ready(app.svc, 0, "applying migrations");
        render_health(&app);
        daemon = admin_server_start(&app, port, errstr, sizeof(errstr));
        if (!daemon) {
                po_log_error("%s", errstr);
                goto out;
        }
        po_log_info("admin API, UI and health on http://%s:%d/ (%d threads, UI from %s)",
                    app.set.bind, port, app.set.threads, app.set.ui_dir);
        if (migrate(&app) == 0)
                po_service_set_work_ready(app.svc, 1, NULL);
        po_service_probe(app.svc);
        while (po_service_running()) {
                po_service_tick(app.svc, 0);
                render_health(&app);
                nanosleep(&(struct timespec){.tv_nsec = 100 * 1000000L}, NULL);
        }
        po_log_info("stopping on signal");
        status = 0;
out:
        if (daemon)
                MHD_stop_daemon(daemon); /* waits for the requests in flight */
        if (app.producer && rd_kafka_flush(app.producer, 5000))
                po_log_warn("kafka: not every record was delivered at exit");
        if (polling) {
                atomic_store(&poller.run, 0);
                pthread_join(poll_thread, NULL);
        }
        if (app.producer)
                rd_kafka_destroy(app.producer);
        workers_destroy(&app);
        free(app.openapi);
        free(app.tokens);
        for (i = 0; i < 3; i++)
                po_dynbuf_release(&app.health[i]);
        po_service_destroy(app.svc);
        pthread_mutex_destroy(&app.pool_mu);
        pthread_cond_destroy(&app.pool_cv);
        pthread_mutex_destroy(&app.tok_mu);
        pthread_mutex_destroy(&app.met_mu);
        return status;
}
