/* Proves the local stack is real: a message through the real Kafka broker
 * with librdkafka, a Lua script on Redis through hiredis, a row through libpq. */
#include <check.h>
#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "po/config.h"

static po_config_t cfg;

static void load_cfg(void)
{
        char err[256];

        ck_assert_msg(po_config_load(&cfg, NULL, 0, err, sizeof(err)) == PO_OK, "%s",
                      err);
}

static void unique_token(char *buf, size_t size)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        snprintf(buf, size, "selftest-%ld-%lld-%ld", (long)getpid(), (long long)ts.tv_sec,
                 ts.tv_nsec);
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
        (void)rk;
        (void)opaque;
        if (!m->err)
                *(int64_t *)m->_private = m->offset;
}

START_TEST(kafka_produce_consume)
{
        char err[512], token[96];
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_t *p, *c;
        rd_kafka_topic_partition_list_t *tp;
        int64_t offset = -1;
        int found = 0, i;

        load_cfg();
        unique_token(token, sizeof(token));
        ck_assert_int_eq(rd_kafka_conf_set(conf, "bootstrap.servers", cfg.kafka_brokers,
                                           err, sizeof(err)),
                         RD_KAFKA_CONF_OK);
        rd_kafka_conf_set(conf, "enable.idempotence", "true", err, sizeof(err));
        rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
        p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
        ck_assert_msg(p != NULL, "%s", err);
        ck_assert_int_eq(rd_kafka_producev(p, RD_KAFKA_V_TOPIC("promo.selftest"),
                                           RD_KAFKA_V_PARTITION(0),
                                           RD_KAFKA_V_VALUE(token, strlen(token)),
                                           RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                           RD_KAFKA_V_OPAQUE(&offset), RD_KAFKA_V_END),
                         RD_KAFKA_RESP_ERR_NO_ERROR);
        ck_assert_int_eq(rd_kafka_flush(p, 20000), RD_KAFKA_RESP_ERR_NO_ERROR);
        ck_assert_msg(offset >= 0, "the broker did not acknowledge the message");
        rd_kafka_destroy(p);

        conf = rd_kafka_conf_new();
        rd_kafka_conf_set(conf, "bootstrap.servers", cfg.kafka_brokers, err, sizeof(err));
        rd_kafka_conf_set(conf, "group.id", token, err, sizeof(err));
        rd_kafka_conf_set(conf, "isolation.level", "read_committed", err, sizeof(err));
        c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
        ck_assert_msg(c != NULL, "%s", err);
        tp = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(tp, "promo.selftest", 0)->offset = offset;
        ck_assert_int_eq(rd_kafka_assign(c, tp), RD_KAFKA_RESP_ERR_NO_ERROR);
        rd_kafka_topic_partition_list_destroy(tp);
        for (i = 0; i < 100 && !found; i++) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 200);

                if (!m)
                        continue;
                if (!m->err && m->len == strlen(token) &&
                    memcmp(m->payload, token, m->len) == 0) {
                        ck_assert_int_eq(m->offset, offset);
                        found = 1;
                }
                rd_kafka_message_destroy(m);
        }
        rd_kafka_consumer_close(c);
        rd_kafka_destroy(c);
        ck_assert_msg(found, "the produced message was not consumed back");
}
END_TEST

/* The shape of the redemption reservation: increment only below a limit. */
static const char *lua_incr_below =
    "local v = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
    "if v >= tonumber(ARGV[1]) then return -1 end\n"
    "return redis.call('INCR', KEYS[1])\n";

START_TEST(redis_lua_script)
{
        char key[128];
        redisContext *r;
        redisReply *rep;
        int i;

        load_cfg();
        unique_token(key, sizeof(key));
        r = redisConnect(cfg.redis_host, cfg.redis_port);
        ck_assert_msg(r && !r->err, "redis connect: %s", r ? r->errstr : "alloc");
        for (i = 1; i <= 3; i++) {
                rep = redisCommand(r, "EVAL %s 1 %s %d", lua_incr_below, key, 2);
                ck_assert_ptr_nonnull(rep);
                ck_assert_int_eq(rep->type, REDIS_REPLY_INTEGER);
                ck_assert_int_eq(rep->integer, i <= 2 ? i : -1);
                freeReplyObject(rep);
        }
        rep = redisCommand(r, "DEL %s", key);
        ck_assert_int_eq(rep->integer, 1);
        freeReplyObject(rep);
        redisFree(r);
}
END_TEST

START_TEST(postgres_row)
{
        char token[96];
        const char *params[1];
        PGconn *pg;
        PGresult *res;

        load_cfg();
        unique_token(token, sizeof(token));
        pg = PQconnectdb(cfg.pg_dsn);
        ck_assert_msg(PQstatus(pg) == CONNECTION_OK, "%s", PQerrorMessage(pg));
        res = PQexec(pg, "CREATE TABLE IF NOT EXISTS selftest (token text PRIMARY KEY, "
                         "at timestamptz NOT NULL DEFAULT now())");
        ck_assert_msg(PQresultStatus(res) == PGRES_COMMAND_OK, "%s", PQerrorMessage(pg));
        PQclear(res);
        params[0] = token;
        res = PQexecParams(pg, "INSERT INTO selftest (token) VALUES ($1)", 1, NULL,
                           params, NULL, NULL, 0);
        ck_assert_msg(PQresultStatus(res) == PGRES_COMMAND_OK, "%s", PQerrorMessage(pg));
        PQclear(res);
        res = PQexecParams(pg, "SELECT token FROM selftest WHERE token = $1", 1, NULL,
                           params, NULL, NULL, 0);
        ck_assert_int_eq(PQresultStatus(res), PGRES_TUPLES_OK);
        ck_assert_int_eq(PQntuples(res), 1);
        ck_assert_str_eq(PQgetvalue(res, 0, 0), token);
        PQclear(res);
        res = PQexecParams(pg, "DELETE FROM selftest WHERE token = $1", 1, NULL, params,
                           NULL, NULL, 0);
        ck_assert_str_eq(PQcmdTuples(res), "1");
        PQclear(res);
        PQfinish(pg);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("stack");
        TCase *tc = tcase_create("real servers");
        SRunner *sr;
        int failed;

        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, kafka_produce_consume);
        tcase_add_test(tc, redis_lua_script);
        tcase_add_test(tc, postgres_row);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
