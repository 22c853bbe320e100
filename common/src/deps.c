#include "po/deps.h"

#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct po_deps {
        po_config_t cfg;
        unsigned needed;
        rd_kafka_t *rk;
        redisContext *redis;
        PGconn *pg;
        int up[PO_DEP_COUNT];
        char error[PO_DEP_COUNT][256];
};

const char *po_deps_name(int dep)
{
        static const char *names[PO_DEP_COUNT] = {"kafka", "redis", "postgres"};
        return dep >= 0 && dep < PO_DEP_COUNT ? names[dep] : "unknown";
}

po_deps_t *po_deps_new(const po_config_t *cfg, unsigned needed, char *errstr,
                       size_t errstr_size)
{
        po_deps_t *deps = calloc(1, sizeof(*deps));
        rd_kafka_conf_t *conf;

        if (!deps) {
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        deps->cfg = *cfg;
        deps->needed = needed;
        if (needed & (1u << PO_DEP_KAFKA)) {
                conf = rd_kafka_conf_new();
                if (rd_kafka_conf_set(conf, "bootstrap.servers", cfg->kafka_brokers,
                                      errstr, errstr_size) != RD_KAFKA_CONF_OK) {
                        rd_kafka_conf_destroy(conf);
                        goto error;
                }
                /* rd_kafka_new owns conf on success only. */
                deps->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, errstr_size);
                if (!deps->rk) {
                        rd_kafka_conf_destroy(conf);
                        goto error;
                }
        }
        return deps;

error:
        free(deps);
        return NULL;
}

static void set_state(po_deps_t *deps, int dep, int up, const char *msg)
{
        size_t n;

        deps->up[dep] = up;
        snprintf(deps->error[dep], sizeof(deps->error[dep]), "%s", up ? "" : msg);
        /* libpq's messages end in a newline; logs and /readyz want one line. */
        n = strlen(deps->error[dep]);
        while (n > 0 &&
               (deps->error[dep][n - 1] == '\n' || deps->error[dep][n - 1] == '\r'))
                deps->error[dep][--n] = '\0';
}

static void probe_kafka(po_deps_t *deps, int timeout_ms)
{
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t err;

        err = rd_kafka_metadata(deps->rk, 0, NULL, &md, timeout_ms);
        if (err) {
                set_state(deps, PO_DEP_KAFKA, 0, rd_kafka_err2str(err));
                return;
        }
        set_state(deps, PO_DEP_KAFKA, md->broker_cnt > 0, "no broker in metadata");
        rd_kafka_metadata_destroy(md);
}

static void probe_redis(po_deps_t *deps, int timeout_ms)
{
        struct timeval tv = {.tv_sec = timeout_ms / 1000,
                             .tv_usec = (timeout_ms % 1000) * 1000};
        redisReply *reply;

        if (deps->redis && deps->redis->err) {
                redisFree(deps->redis);
                deps->redis = NULL;
        }
        if (!deps->redis) {
                deps->redis = redisConnectWithTimeout(deps->cfg.redis_host,
                                                      deps->cfg.redis_port, tv);
                if (!deps->redis) {
                        set_state(deps, PO_DEP_REDIS, 0, "cannot allocate redis context");
                        return;
                }
                if (deps->redis->err) {
                        set_state(deps, PO_DEP_REDIS, 0, deps->redis->errstr);
                        return;
                }
                redisSetTimeout(deps->redis, tv);
        }
        reply = redisCommand(deps->redis, "PING");
        if (!reply) {
                set_state(deps, PO_DEP_REDIS, 0, deps->redis->errstr);
                return;
        }
        set_state(deps, PO_DEP_REDIS, reply->type == REDIS_REPLY_STATUS,
                  "unexpected PING reply");
        freeReplyObject(reply);
}

static void probe_postgres(po_deps_t *deps, int timeout_ms)
{
        char conninfo[600];
        PGresult *res;

        if (deps->pg && PQstatus(deps->pg) != CONNECTION_OK) {
                PQfinish(deps->pg);
                deps->pg = NULL;
        }
        if (!deps->pg) {
                snprintf(conninfo, sizeof(conninfo), "%s connect_timeout=%d",
                         deps->cfg.pg_dsn, timeout_ms < 2000 ? 2 : timeout_ms / 1000);
                deps->pg = PQconnectdb(conninfo);
                if (PQstatus(deps->pg) != CONNECTION_OK) {
                        set_state(deps, PO_DEP_POSTGRES, 0, PQerrorMessage(deps->pg));
                        PQfinish(deps->pg);
                        deps->pg = NULL;
                        return;
                }
        }
        res = PQexec(deps->pg, "SELECT 1");
        set_state(deps, PO_DEP_POSTGRES, PQresultStatus(res) == PGRES_TUPLES_OK,
                  PQerrorMessage(deps->pg));
        PQclear(res);
}

po_err_t po_deps_probe(po_deps_t *deps, int timeout_ms)
{
        po_err_t err = PO_OK;
        int d;

        if (deps->needed & (1u << PO_DEP_KAFKA))
                probe_kafka(deps, timeout_ms);
        if (deps->needed & (1u << PO_DEP_REDIS))
                probe_redis(deps, timeout_ms);
        if (deps->needed & (1u << PO_DEP_POSTGRES))
                probe_postgres(deps, timeout_ms);
        for (d = 0; d < PO_DEP_COUNT; d++)
                if (po_deps_needed(deps, d) && !deps->up[d])
                        err = PO_ERR_DEPENDENCY;
        return err;
}

int po_deps_needed(const po_deps_t *deps, int dep)
{
        return dep >= 0 && dep < PO_DEP_COUNT && (deps->needed & (1u << dep)) != 0;
}

int po_deps_up(const po_deps_t *deps, int dep)
{
        return po_deps_needed(deps, dep) && deps->up[dep];
}

const char *po_deps_error(const po_deps_t *deps, int dep)
{
        return dep >= 0 && dep < PO_DEP_COUNT ? deps->error[dep] : "";
}

void po_deps_destroy(po_deps_t *deps)
{
        if (!deps)
                return;
        if (deps->rk)
                rd_kafka_destroy(deps->rk);
        if (deps->redis)
                redisFree(deps->redis);
        if (deps->pg)
                PQfinish(deps->pg);
        free(deps);
}
