/* Helpers of the admin's handlers: responses, query parameters, worker
 * connections, PostgreSQL, the shared producer, metrics, time. */
#include <errno.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin.h"
#include "po/log.h"
#include "po/pg.h"

/* ---- time ---- */

int64_t admin_now_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t admin_mono_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void admin_fmt_time(int64_t us, char *buf, size_t size)
{
        time_t s = (time_t)(us >= 0 ? us / 1000000 : (us - 999999) / 1000000);
        int64_t frac = us - (int64_t)s * 1000000;
        struct tm tm;
        char base[32];

        gmtime_r(&s, &tm);
        strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
        if (frac)
                snprintf(buf, size, "%s.%06lldZ", base, (long long)frac);
        else
                snprintf(buf, size, "%sZ", base);
}

/* ---- delivery waiters ---- */

void admin_wait_init(admin_wait_t *w)
{
        memset(w, 0, sizeof(*w));
        pthread_mutex_init(&w->mu, NULL);
        pthread_cond_init(&w->cv, NULL);
}

void admin_wait_release(admin_wait_t *w)
{
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
}

int admin_wait_done(admin_wait_t *w, int timeout_ms)
{
        struct timespec until;
        int ok;

        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += timeout_ms / 1000;
        until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&w->mu);
        while (w->pending > 0)
                if (pthread_cond_timedwait(&w->cv, &w->mu, &until) == ETIMEDOUT)
                        break;
        if (w->pending > 0 && !w->error[0])
                snprintf(w->error, sizeof(w->error),
                         "%zu deliveries not confirmed in %d ms", w->pending, timeout_ms);
        ok = w->pending == 0 && w->failed == 0;
        pthread_mutex_unlock(&w->mu);
        return ok ? 0 : -1;
}

int admin_produce(admin_t *app, const char *topic, const char *key, size_t key_len,
                  const void *value, size_t len, admin_wait_t *w)
{
        rd_kafka_resp_err_t err;

        if (w) {
                pthread_mutex_lock(&w->mu);
                w->pending++;
                pthread_mutex_unlock(&w->mu);
        }
        for (;;) {
                err = rd_kafka_producev(app->producer, RD_KAFKA_V_TOPIC(topic),
                                        RD_KAFKA_V_KEY((void *)key, key_len),
                                        RD_KAFKA_V_VALUE((void *)value, len),
                                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                        RD_KAFKA_V_OPAQUE(w), RD_KAFKA_V_END);
                /* A caller that waits may wait for room too; an attempt log
                 * never blocks its request. */
                if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || !w)
                        break;
                nanosleep(&(struct timespec){.tv_nsec = 5 * 1000000L}, NULL);
        }
        if (err && w) {
                pthread_mutex_lock(&w->mu);
                w->pending--;
                w->failed++;
                if (!w->error[0])
                        snprintf(w->error, sizeof(w->error), "produce to %s: %s", topic,
                                 rd_kafka_err2str(err));
                pthread_mutex_unlock(&w->mu);
        }
        return err ? -1 : 0;
}

/* ---- metrics ---- */

void admin_count(admin_t *app, const char *name, const char *help, const char *labels,
                 uint64_t delta)
{
        pthread_mutex_lock(&app->met_mu);
        po_metrics_add(po_service_metrics(app->svc), name, help, labels, delta);
        pthread_mutex_unlock(&app->met_mu);
}

void admin_observe_us(admin_t *app, const char *name, const char *help, uint64_t us)
{
        pthread_mutex_lock(&app->met_mu);
        po_metrics_observe_us(po_service_metrics(app->svc), name, help, us);
        pthread_mutex_unlock(&app->met_mu);
}

/* ---- responses ---- */

void admin_fields_init(admin_fields_t *f)
{
        f->list = json_array();
}

void admin_fields_release(admin_fields_t *f)
{
        json_decref(f->list);
        f->list = NULL;
}

void admin_field(admin_fields_t *f, const char *field, const char *fmt, ...)
{
        char msg[300];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (json_array_size(f->list) >= 100)
                return; /* enough to fix first */
        json_array_append_new(f->list,
                              json_pack("{s:s, s:s}", "field", field, "message", msg));
}

size_t admin_fields_count(const admin_fields_t *f)
{
        return json_array_size(f->list);
}

static void set_json(admin_req_t *r, int status, json_t *obj)
{
        char *text = obj ? json_dumps(obj, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;

        po_dynbuf_reset(&r->out);
        if (!text) {
                r->status = 500;
                po_dynbuf_addf(&r->out, "{\"error\":\"internal\",\"message\":\"out of "
                                        "memory\"}");
        } else {
                r->status = status;
                po_dynbuf_add(&r->out, text, strlen(text));
                free(text);
        }
        r->ctype = "application/json";
        json_decref(obj);
}

void admin_reply_json(admin_req_t *r, int status, json_t *obj)
{
        set_json(r, status, obj);
}

void admin_error(admin_req_t *r, int status, const char *code, const char *fmt, ...)
{
        char msg[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        set_json(r, status, json_pack("{s:s, s:s}", "error", code, "message", msg));
}

void admin_error_fields(admin_req_t *r, admin_fields_t *f, const char *message)
{
        json_t *o = json_pack("{s:s, s:s, s:O}", "error", "validation", "message",
                              message, "fields", f->list);

        set_json(r, 422, o);
        json_array_clear(f->list);
}

/* ---- query ---- */

const char *admin_query(admin_req_t *r, const char *name)
{
        return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

typedef struct query_check {
        const char *const *allowed;
        admin_fields_t *f;
} query_check_t;

static enum MHD_Result query_key(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
        query_check_t *qc = cls;
        size_t i;

        (void)kind;
        (void)value;
        for (i = 0; qc->allowed[i]; i++)
                if (strcmp(qc->allowed[i], key) == 0)
                        return MHD_YES;
        admin_field(qc->f, "query", "unknown parameter \"%.64s\"", key);
        return MHD_YES;
}

int admin_query_check(admin_req_t *r, const char *const *allowed)
{
        admin_fields_t f;
        query_check_t qc = {allowed, &f};
        int bad;

        admin_fields_init(&f);
        MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, query_key, &qc);
        bad = admin_fields_count(&f) > 0;
        if (bad)
                admin_error_fields(r, &f, "unknown query parameter");
        admin_fields_release(&f);
        return bad ? -1 : 0;
}

int64_t admin_query_int(admin_req_t *r, admin_fields_t *f, const char *name, int64_t def,
                        int64_t lo, int64_t hi)
{
        const char *s = admin_query(r, name);
        char *end;
        long long v;

        if (!s)
                return def;
        errno = 0;
        v = strtoll(s, &end, 10);
        if (!*s || *end || errno || v < lo || v > hi) {
                admin_field(f, name, "must be an integer %lld..%lld", (long long)lo,
                            (long long)hi);
                return def;
        }
        return v;
}

const char *admin_query_time(admin_req_t *r, admin_fields_t *f, const char *name)
{
        const char *s = admin_query(r, name);
        po_instant_t t;

        if (!s)
                return NULL;
        if (po_instant_parse(s, strlen(s), &t)) {
                admin_field(f, name, "must be an RFC 3339 timestamp");
                return "";
        }
        return s;
}

json_t *admin_body_json(admin_req_t *r)
{
        json_error_t je;
        json_t *root;

        root =
            json_loadb(r->body ? r->body : "", r->body_len, JSON_REJECT_DUPLICATES, &je);
        if (!root) {
                admin_error(r, 400, "bad_json",
                            "the body is not JSON: %s at line %d column %d", je.text,
                            je.line, je.column);
                return NULL;
        }
        if (!json_is_object(root)) {
                json_decref(root);
                admin_error(r, 400, "bad_json", "the body must be a JSON object");
                return NULL;
        }
        return root;
}

/* ---- worker connections ---- */

int admin_worker_redis(admin_req_t *r)
{
        admin_worker_t *w = r->w;
        struct timeval tv = {.tv_sec = 2};

        if (w->rc && !w->rc->err)
                return 0;
        if (w->rc) {
                redisFree(w->rc);
                w->rc = NULL;
                w->usage.marker[0] = '\0';
        }
        w->rc =
            redisConnectWithTimeout(r->app->cfg->redis_host, r->app->cfg->redis_port, tv);
        if (!w->rc || w->rc->err) {
                admin_error(r, 503, "unavailable", "redis: %s",
                            w->rc ? w->rc->errstr : "out of memory");
                if (w->rc) {
                        redisFree(w->rc);
                        w->rc = NULL;
                }
                return -1;
        }
        redisSetTimeout(w->rc, tv);
        return 0;
}

int admin_worker_pg(admin_req_t *r)
{
        admin_worker_t *w = r->w;
        char errstr[300];

        if (w->pg && PQstatus(w->pg) == CONNECTION_OK &&
            PQtransactionStatus(w->pg) == PQTRANS_IDLE)
                return 0;
        if (w->pg && PQstatus(w->pg) == CONNECTION_OK) {
                /* A transaction left open by an earlier failure. */
                PQclear(PQexec(w->pg, "ROLLBACK"));
                if (PQtransactionStatus(w->pg) == PQTRANS_IDLE)
                        return 0;
        }
        if (w->pg)
                PQfinish(w->pg);
        w->pg = po_pg_connect(r->app->cfg, "promo-admin", errstr, sizeof(errstr));
        if (!w->pg) {
                errstr[strcspn(errstr, "\n")] = '\0';
                admin_error(r, 503, "unavailable", "postgres: %s", errstr);
                return -1;
        }
        return 0;
}

PGresult *admin_pg(admin_req_t *r, const char *sql, int n, const char *const *params,
                   const char *conflict_msg)
{
        PGresult *res = PQexecParams(r->w->pg, sql, n, NULL, params, NULL, NULL, 0);
        ExecStatusType st = PQresultStatus(res);
        const char *sqlstate;
        char msg[300], state[8];

        if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
                return res;
        sqlstate = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        snprintf(state, sizeof(state), "%s", sqlstate ? sqlstate : "");
        snprintf(msg, sizeof(msg), "%s",
                 res ? PQresultErrorMessage(res) : PQerrorMessage(r->w->pg));
        msg[strcspn(msg, "\n")] = '\0';
        PQclear(res);
        if (conflict_msg && strcmp(state, "23505") == 0) {
                admin_error(r, 409, "conflict", "%s", conflict_msg);
                return NULL;
        }
        po_log_warn("postgres: %s", msg);
        admin_error(r, 503, "unavailable", "postgres: %s", msg);
        return NULL;
}

int admin_pg_begin(admin_req_t *r)
{
        PGresult *res = admin_pg(r, "BEGIN", 0, NULL, NULL);

        PQclear(res);
        return res ? 0 : -1;
}

int admin_pg_commit(admin_req_t *r)
{
        PGresult *res = admin_pg(r, "COMMIT", 0, NULL, NULL);

        PQclear(res);
        return res ? 0 : -1;
}

void admin_pg_rollback(admin_req_t *r)
{
        if (r->w && r->w->pg)
                PQclear(PQexec(r->w->pg, "ROLLBACK"));
}

int admin_audit(admin_req_t *r, const char *action, const char *entity,
                const char *entity_id, const char *before, const char *after)
{
        const char *p[6] = {r->who.name, action, entity, entity_id, before, after};
        PGresult *res = admin_pg(r,
                                 "INSERT INTO admin_changes (actor, action, entity, "
                                 "entity_id, before, after)"
                                 " VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb)",
                                 6, p, NULL);

        PQclear(res);
        return res ? 0 : -1;
}
