/* The whole pipeline on the real stack: intake-normalizer, two validators,
 * the calculator and the audit-sink run as child processes on the real
 * topics; the test publishes raw channel payloads to orders.raw and reads
 * the audit rows in PostgreSQL.
 *
 * Every run uses its own order ids, customers and codes (suffix = run id),
 * inserted straight into PostgreSQL (the source of truth: the validators
 * read them through the cache-miss path), so runs on the same stack never
 * see each other's counters. Expected amounts are computed by hand in the
 * comments from the samples and PRICING_SPEC.md. */
#include <check.h>
#include <sys/prctl.h>
#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "po/config.h"
#include "po/pg.h"

#include "it.h"

#pragma GCC diagnostic ignored "-Wformat-nonliteral"

enum { SVC_INTAKE, SVC_VALIDATOR1, SVC_VALIDATOR2, SVC_CALCULATOR, SVC_AUDIT, SVC_COUNT };

static const char *const svc_bin[SVC_COUNT] = {"intake-normalizer", "validator",
                                               "validator", "calculator", "audit-sink"};
static pid_t svc_pid[SVC_COUNT];
static po_config_t cfg;
static PGconn *pg;
static char run[32];

static void start_svc(int i)
{
        char path[512], port[16], inst[32];
        pid_t pid;

        snprintf(path, sizeof(path), "%s/%s", getenv("PROMO_BIN_DIR"), svc_bin[i]);
        /* Health ports of their own, so a running demo does not collide. */
        snprintf(port, sizeof(port), "%d", it_free_port());
        snprintf(inst, sizeof(inst), "it-%d", i);
        pid = fork();
        if (pid < 0) /* no Check call in a child: CK_FORK=no shares its messages */
                ck_abort_msg("fork failed");
        if (pid == 0) {
                /* A test that fails leaves no service behind. */
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                setenv("PROMO_INSTANCE", inst, 1);
                setenv("PROMO_INTAKE_HTTP_PORT", port, 1);
                setenv("PROMO_VALIDATOR_HTTP_PORT", port, 1);
                setenv("PROMO_CALCULATOR_HTTP_PORT", port, 1);
                setenv("PROMO_AUDIT_SINK_HTTP_PORT", port, 1);
                setenv("PROMO_AUDIT_HTTP_PORT", port, 1);
                setenv("PROMO_STAGE_BATCH_MS", "20", 1);
                setenv("PROMO_INTAKE_PROFILES",
                       PROMO_SOURCE_DIR "/deploy/intake-profiles.conf", 1);
                if (getenv("PROMO_IT_VALGRIND")) {
                        /* Every service under memcheck: any error or leak
                         * makes it exit 99, which stop_svc fails on. */
                        execlp("valgrind", "valgrind", "-q", "--error-exitcode=99",
                               "--leak-check=full", "--errors-for-leak-kinds=definite",
                               "--show-leak-kinds=definite", path, (char *)NULL);
                        _exit(127);
                }
                execl(path, path, (char *)NULL);
                _exit(127);
        }
        svc_pid[i] = pid;
}

static int svc_restarts;

/* What an orchestrator does (a Kubernetes restartPolicy: Always): a service
 * that exited on its own is started again. Returns how many were. */
static int supervise(void)
{
        int i, status, n = 0;

        for (i = 0; i < SVC_COUNT; i++) {
                if (svc_pid[i] <= 0 ||
                    waitpid(svc_pid[i], &status, WNOHANG) != svc_pid[i])
                        continue;
                fprintf(stderr, "check_pipeline: %s exited (%s %d); restarting it\n",
                        svc_bin[i], WIFSIGNALED(status) ? "signal" : "status",
                        WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
                start_svc(i);
                n++;
        }
        svc_restarts += n;
        return n;
}

static void stop_svc(int i, int sig)
{
        int status;

        if (svc_pid[i] <= 0)
                return;
        kill(svc_pid[i], sig);
        waitpid(svc_pid[i], &status, 0);
        svc_pid[i] = 0;
        /* A clean stop is an exit 0 (under valgrind: no error, no leak). */
        if (sig == SIGTERM)
                ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                              "%s did not exit cleanly on SIGTERM (status %d)",
                              svc_bin[i], status);
}

static void produce_raw(rd_kafka_t *p, const char *channel, const char *payload)
{
        rd_kafka_headers_t *h = rd_kafka_headers_new(2);
        rd_kafka_resp_err_t e;

        rd_kafka_header_add(h, "channel", -1, channel, -1);
        rd_kafka_header_add(h, "account", -1, "it", -1);
        do {
                e = rd_kafka_producev(p, RD_KAFKA_V_TOPIC("orders.raw"),
                                      RD_KAFKA_V_VALUE((void *)payload, strlen(payload)),
                                      RD_KAFKA_V_HEADERS(h),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                      RD_KAFKA_V_END);
                if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                        rd_kafka_poll(p, 50);
        } while (e == RD_KAFKA_RESP_ERR__QUEUE_FULL);
        ck_assert_int_eq(e, 0);
}

static rd_kafka_t *producer(void)
{
        char err[256];
        rd_kafka_conf_t *c = rd_kafka_conf_new();
        rd_kafka_t *rk;

        rd_kafka_conf_set(c, "bootstrap.servers", cfg.kafka_brokers, err, sizeof(err));
        rd_kafka_conf_set(c, "enable.idempotence", "true", err, sizeof(err));
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
        ck_assert_msg(rk != NULL, "%s", err);
        return rk;
}

static void sql(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sql(const char *fmt, ...)
{
        char buf[4096];
        va_list ap;
        PGresult *r;

        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        r = PQexec(pg, buf);
        ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK ||
                          PQresultStatus(r) == PGRES_TUPLES_OK,
                      "%s: %s", buf, PQresultErrorMessage(r));
        PQclear(r);
}

/* One count(*)-like value; -2 when PostgreSQL did not answer (a chaos test
 * restarts it: the connection is reset for the next try). */
static long long try_count(const char *q)
{
        PGresult *r;
        long long n;

        if (PQstatus(pg) != CONNECTION_OK)
                PQreset(pg);
        r = PQexec(pg, q);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
                fprintf(stderr, "check_pipeline: %s: %s", q, PQresultErrorMessage(r));
                PQclear(r);
                return -2;
        }
        n = PQgetisnull(r, 0, 0) ? -1 : atoll(PQgetvalue(r, 0, 0));
        PQclear(r);
        return n;
}

static long long count(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static long long count(const char *fmt, ...)
{
        char buf[4096];
        va_list ap;
        long long n;

        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        n = try_count(buf);
        ck_assert_msg(n != -2, "%s failed", buf);
        return n;
}

/* Waits until the query's count reaches want, restarting services that
 * exited; returns the last count. */
static long long wait_count(long long want, int timeout_s, const char *q)
{
        long long n = -1;
        int i;

        for (i = 0; i < timeout_s * 10; i++) {
                supervise();
                n = try_count(q);
                if (n >= want)
                        break;
                it_sleep_ms(100);
        }
        return n;
}

static void add_code(const char *json_fmt)
{
        char code[128], json[1024];
        const char *p, *q;

        snprintf(json, sizeof(json), json_fmt, run);
        p = strstr(json, "\"code\": \"") + 9;
        q = strchr(p, '"');
        snprintf(code, sizeof(code), "%.*s", (int)(q - p), p);
        sql("INSERT INTO codes (code, definition, status, version) VALUES ('%s', '%s', "
            "'active', 1) ON CONFLICT (code) DO NOTHING",
            code, json);
}

/* Reads a sample and replaces each (from, to) pair once; to may hold %s for
 * the run id. */
static char *sample(const char *name, const char *const *subst, size_t n)
{
        char path[512], to[256], *buf, *out;
        size_t i;

        snprintf(path, sizeof(path), "%s/tests/data/channels/%s", PROMO_SOURCE_DIR, name);
        buf = it_slurp(path, NULL);
        for (i = 0; i < n; i += 2) {
                char *at = strstr(buf, subst[i]);

                ck_assert_msg(at != NULL, "%s: %s not found", name, subst[i]);
                snprintf(to, sizeof(to), subst[i + 1], run);
                out = calloc(1, strlen(buf) + strlen(to) + 1);
                memcpy(out, buf, (size_t)(at - buf));
                strcat(out, to);
                strcat(out, at + strlen(subst[i]));
                free(buf);
                buf = out;
        }
        return buf;
}

static void setup(void)
{
        char err[512];
        int i;

        ck_assert_int_eq(po_config_load(&cfg, NULL, 0, err, sizeof(err)), PO_OK);
        pg = po_pg_connect(&cfg, "check-pipeline", err, sizeof(err));
        ck_assert_msg(pg != NULL, "%s", err);
        ck_assert_int_eq(po_pg_migrate(pg, NULL, err, sizeof(err)), PO_OK);
        snprintf(run, sizeof(run), "%ld%d", (long)time(NULL) % 100000000,
                 (int)getpid() % 100);
        for (i = 0; i < SVC_COUNT; i++)
                start_svc(i);
}

static void teardown(void)
{
        int i;

        for (i = 0; i < SVC_COUNT; i++)
                stop_svc(i, SIGTERM);
        PQfinish(pg);
}

static long long value_of(const char *order, const char *code, const char *outcome)
{
        return count(
            "SELECT sum(value_applied) FROM usage_events WHERE order_id = '%s' AND "
            "code = '%s' AND outcome = '%s'",
            order, code, outcome);
}

START_TEST(samples_flow_to_audit_rows)
{
        static const char *const web_s[] = {"5123456789012", "51%s", "save10",
                                            "save10-%s"};
        static const char *const mkt_s[] = {"114-3941689-8772232", "114-3941689-%s",
                                            "FLASH-24", "FLASH-24-%s"};
        static const char *const pos_s[] = {"txn=000088213", "txn=%s",
                                            "customer=c-17", "customer=c-17-%s",
                                            "code=WELCOME",  "code=WELCOME-%s"};
        static const char *const mob_s[] = {
            "M-2026-000731", "M-2026-%s",   "TIER-UP",          "TIER-UP-%s",
            "VIP-7K2M",      "VIP-NONE-%s", "\"uid\": \"c-4\"", "\"uid\": \"c-4-%s\""};
        rd_kafka_t *p = producer();
        char o[4][128], code[64], q[1024];
        char *payload[4];
        int i;

        add_code(
            "{\"code\": \"SAVE10-%s\", \"status\": \"active\", \"type\": \"percentage\", "
            "\"value\": 1000}");
        add_code("{\"code\": \"FLASH-24-%s\", \"status\": \"active\", \"type\": "
                 "\"percentage\", \"value\": 2000, \"channels\": [\"marketplace\"]}");
        add_code(
            "{\"code\": \"WELCOME-%s\", \"status\": \"active\", \"type\": \"fixed\", "
            "\"value\": 500, \"currency\": \"USD\", \"min_spend\": 2000, "
            "\"per_customer_limit\": 1}");
        add_code("{\"code\": \"TIER-UP-%s\", \"status\": \"active\", \"type\": "
                 "\"percentage\", "
                 "\"value\": 500, \"tiers\": [\"gold\", \"platinum\"], \"tier_values\": "
                 "{\"gold\": 1000, \"platinum\": 1500}, \"combinable\": true}");
        payload[0] = sample("web-shopify-order.json", web_s, 4);
        payload[1] = sample("marketplace-order.json", mkt_s, 4);
        payload[2] = sample("pos-transaction.txt", pos_s, 6);
        payload[3] = sample("mobile-order.json", mob_s, 8);
        produce_raw(p, "web", payload[0]);
        produce_raw(p, "marketplace", payload[1]);
        produce_raw(p, "pos", payload[2]);
        produce_raw(p, "mobile", payload[3]);
        ck_assert_int_eq(rd_kafka_flush(p, 30000), 0);
        rd_kafka_destroy(p);
        for (i = 0; i < 4; i++)
                free(payload[i]);
        snprintf(o[0], sizeof(o[0]), "web:51%s", run);
        snprintf(o[1], sizeof(o[1]), "marketplace:114-3941689-%s", run);
        snprintf(o[2], sizeof(o[2]), "pos:0012-03-%s", run);
        snprintf(o[3], sizeof(o[3]), "mobile:M-2026-%s", run);
        /* Five decisions: one code each, two on the mobile order. */
        snprintf(q, sizeof(q),
                 "SELECT count(*) FROM usage_events WHERE order_id IN "
                 "('%s','%s','%s','%s') OR "
                 "order_id LIKE 'pos:%%%s'",
                 o[0], o[1], o[2], o[3], run);
        ck_assert_int_eq(wait_count(5, 90, q), 5);

        /* web: 2 x 19.99 + 3 x 6.50 = 59.48; 10 % = 5.948 -> 5.95. */
        snprintf(code, sizeof(code), "SAVE10-%s", run);
        ck_assert_int_eq(value_of(o[0], code, "applied"), 595);
        /* marketplace: 44.97 + 9.99 = 54.96; 20 % = 10.992 -> 10.99. */
        snprintf(code, sizeof(code), "FLASH-24-%s", run);
        ck_assert_int_eq(value_of(o[1], code, "applied"), 1099);
        /* pos: 19.99 + 2 x 3.50 = 26.99 >= 20.00: a fixed 5.00. */
        snprintf(code, sizeof(code), "WELCOME-%s", run);
        ck_assert_int_eq(
            count("SELECT sum(value_applied) FROM usage_events WHERE order_id LIKE "
                  "'pos:%%%s' AND code = '%s' AND outcome = 'applied'",
                  run, code),
            500);
        /* mobile, platinum per the app: 12.50 + 2 x 29.99 = 72.48; 15 % =
         * 10.872 -> 10.87; the unknown code is rejected and recorded. */
        snprintf(code, sizeof(code), "TIER-UP-%s", run);
        ck_assert_int_eq(value_of(o[3], code, "applied"), 1087);
        snprintf(code, sizeof(code), "VIP-NONE-%s", run);
        ck_assert_int_eq(
            count("SELECT count(*) FROM usage_events WHERE order_id = '%s' AND "
                  "code = '%s' AND outcome = 'rejected' AND reason = "
                  "'UNKNOWN_CODE'",
                  o[3], code),
            1);
        /* The reservations are durable and counted once. */
        snprintf(code, sizeof(code), "SAVE10-%s", run);
        ck_assert_int_eq(
            count("SELECT count(*) FROM redemptions WHERE code = '%s'", code), 1);
        ck_assert_int_eq(
            count("SELECT redemptions FROM usage_counters WHERE code = '%s'", code), 1);
}
END_TEST

/* A web order of 10.00 from customer cust using code. */
static void web_order(rd_kafka_t *p, const char *id, const char *cust, const char *code)
{
        char buf[1024];

        snprintf(
            buf, sizeof(buf),
            "{\"id\": %s, \"email\": \"a@example.com\", \"created_at\": "
            "\"2026-11-24T10:00:00Z\", \"currency\": \"USD\", \"customer\": {\"id\": "
            "\"%s\"}, \"line_items\": [{\"id\": 1, \"sku\": \"SKU-1\", \"price\": "
            "\"10.00\", \"quantity\": 1, \"product_type\": \"shoes\", \"tax_lines\": "
            "[]}], \"discount_codes\": [{\"code\": \"%s\"}]}",
            id, cust, code);
        produce_raw(p, "web", buf);
}

static void race(int per_customer)
{
        rd_kafka_t *p = producer();
        char code[64], id[64], cust[64], q[256];
        int i;

        snprintf(code, sizeof(code), "%s-%s", per_customer ? "RACEC" : "RACE", run);
        if (per_customer)
                add_code(
                    "{\"code\": \"RACEC-%s\", \"status\": \"active\", \"type\": "
                    "\"fixed\", "
                    "\"value\": 100, \"currency\": \"USD\", \"per_customer_limit\": 1}");
        else
                add_code("{\"code\": \"RACE-%s\", \"status\": \"active\", \"type\": "
                         "\"fixed\", "
                         "\"value\": 100, \"currency\": \"USD\", \"usage_limit\": 1}");
        for (i = 0; i < 64; i++) {
                snprintf(id, sizeof(id), "%s%02d%d", run, i, per_customer);
                snprintf(cust, sizeof(cust), "rc-%s-%d", run, per_customer ? 0 : i);
                web_order(p, id, cust, code);
        }
        ck_assert_int_eq(rd_kafka_flush(p, 30000), 0);
        rd_kafka_destroy(p);
        snprintf(q, sizeof(q), "SELECT count(*) FROM usage_events WHERE code = '%s'",
                 code);
        ck_assert_int_eq(wait_count(64, 120, q), 64);
        ck_assert_int_eq(count("SELECT count(*) FROM usage_events WHERE code = '%s' AND "
                               "outcome = 'applied'",
                               code),
                         1);
        ck_assert_int_eq(
            count("SELECT count(*) FROM usage_events WHERE code = '%s' AND "
                  "outcome = 'rejected' AND reason = '%s'",
                  code, per_customer ? "CUSTOMER_LIMIT_REACHED" : "USAGE_LIMIT_REACHED"),
            63);
        ck_assert_int_eq(
            count("SELECT count(*) FROM redemptions WHERE code = '%s'", code), 1);
}

START_TEST(race_for_the_last_redemption)
{
        race(0);
}
END_TEST

START_TEST(race_per_customer)
{
        race(1);
}
END_TEST

/* Kills a validator and restarts Redis mid-stream: every order is decided
 * exactly once and the limit holds. */
START_TEST(chaos_validator_kill_and_redis_restart)
{
        rd_kafka_t *p = producer();
        char code[64], id[64], cust[64], q[256], cmd[1024];
        redisContext *rc;
        redisReply *r;
        int i;

        snprintf(code, sizeof(code), "CHAOS-%s", run);
        add_code("{\"code\": \"CHAOS-%s\", \"status\": \"active\", \"type\": \"fixed\", "
                 "\"value\": 100, \"currency\": \"USD\", \"usage_limit\": 25}");
        for (i = 0; i < 200; i++) {
                snprintf(id, sizeof(id), "%s%03d9", run, i);
                snprintf(cust, sizeof(cust), "ch-%s-%d", run, i);
                web_order(p, id, cust, code);
                if (i == 60) {
                        rd_kafka_flush(p, 30000);
                        stop_svc(SVC_VALIDATOR1, SIGKILL);
                }
                if (i == 100) {
                        rd_kafka_flush(p, 30000);
                        /* Redis restarts: its AOF comes back, but the
                         * counters must be rebuilt from PostgreSQL. */
                        snprintf(cmd, sizeof(cmd),
                                 "%s/scripts/stack crash redis 1 >/dev/null 2>&1",
                                 PROMO_SOURCE_DIR);
                        ck_assert_int_eq(system(cmd), 0);
                        start_svc(SVC_VALIDATOR1);
                }
        }
        ck_assert_int_eq(rd_kafka_flush(p, 30000), 0);
        rd_kafka_destroy(p);
        snprintf(q, sizeof(q), "SELECT count(*) FROM usage_events WHERE code = '%s'",
                 code);
        ck_assert_int_eq(wait_count(200, 180, q), 200);
        it_sleep_ms(2000); /* nothing more may arrive */
        ck_assert_int_eq(count("%s", q), 200);
        ck_assert_int_eq(count("SELECT count(*) FROM usage_events WHERE code = '%s' AND "
                               "outcome = 'applied'",
                               code),
                         25);
        ck_assert_int_eq(
            count("SELECT count(*) FROM redemptions WHERE code = '%s'", code), 25);
        ck_assert_int_eq(
            count("SELECT redemptions FROM usage_counters WHERE code = '%s'", code), 25);
        rc = redisConnect(cfg.redis_host, cfg.redis_port);
        ck_assert(rc && !rc->err);
        r = redisCommand(rc, "GET promo:usage:total:%s", code);
        ck_assert(r && r->type == REDIS_REPLY_STRING);
        ck_assert_str_eq(r->str, "25");
        freeReplyObject(r);
        redisFree(rc);
}
END_TEST

/* The shared end of every chaos run: once all n orders of code are decided,
 * nothing more arrives, each order was decided once, and exactly limit
 * redemptions were granted, in PostgreSQL and in Redis. */
static void expect_exactly_once(const char *code, int n, int limit)
{
        char q[256];
        redisContext *rc;
        redisReply *r;

        snprintf(q, sizeof(q), "SELECT count(*) FROM usage_events WHERE code = '%s'",
                 code);
        ck_assert_int_eq(wait_count(n, 300, q), n);
        it_sleep_ms(3000); /* a redelivery would land now */
        ck_assert_int_eq(count("%s", q), n);
        ck_assert_int_eq(
            count("SELECT count(DISTINCT order_id) FROM usage_events WHERE code = '%s'",
                  code),
            n);
        ck_assert_int_eq(count("SELECT count(*) FROM usage_events WHERE code = '%s' AND "
                               "outcome = 'applied'",
                               code),
                         limit);
        ck_assert_int_eq(count("SELECT count(*) FROM usage_events WHERE code = '%s' AND "
                               "outcome = 'rejected' AND reason = 'USAGE_LIMIT_REACHED'",
                               code),
                         n - limit);
        ck_assert_int_eq(
            count("SELECT count(*) FROM redemptions WHERE code = '%s'", code), limit);
        ck_assert_int_eq(
            count("SELECT redemptions FROM usage_counters WHERE code = '%s'", code),
            limit);
        ck_assert_int_eq(
            count("SELECT rejections FROM usage_counters WHERE code = '%s'", code),
            n - limit);
        rc = redisConnect(cfg.redis_host, cfg.redis_port);
        ck_assert(rc && !rc->err);
        r = redisCommand(rc, "GET promo:usage:total:%s", code);
        ck_assert(r && r->type == REDIS_REPLY_STRING);
        ck_assert_int_eq(atoi(r->str), limit);
        freeReplyObject(r);
        redisFree(rc);
}

/* Runs a shell command in the background (a server crash takes seconds;
 * orders keep coming meanwhile). */
static pid_t background(const char *cmd)
{
        pid_t pid = fork();

        if (pid < 0) /* no Check call in a child: CK_FORK=no shares its messages */
                ck_abort_msg("fork failed");
        if (pid == 0) {
                execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
                _exit(127);
        }
        return pid;
}

typedef enum fault { F_KAFKA, F_POSTGRES, F_SERVICES } fault_t;

/* 400 orders for one code limited to 40, produced over about 4 seconds;
 * the fault strikes after the first 100, while orders are in every stage. */
static void chaos(fault_t fault, const char *tag)
{
        enum { N = 400, LIMIT = 40 };
        rd_kafka_t *p = producer();
        char code[64], id[64], cust[64], def[512], cmd[1024];
        pid_t bg = 0;
        int i, status;

        snprintf(code, sizeof(code), "%s-%s", tag, run);
        snprintf(def, sizeof(def),
                 "{\"code\": \"%s\", \"status\": \"active\", \"type\": \"fixed\", "
                 "\"value\": 100, \"currency\": \"USD\", \"usage_limit\": %d}",
                 code, LIMIT);
        sql("INSERT INTO codes (code, definition, status, version) VALUES ('%s', '%s', "
            "'active', 1)",
            code, def);
        svc_restarts = 0;
        for (i = 0; i < N; i++) {
                snprintf(id, sizeof(id), "%s%03d%d", run, i, (int)fault + 3);
                snprintf(cust, sizeof(cust), "%s-%s-%d", tag, run, i);
                web_order(p, id, cust, code);
                rd_kafka_poll(p, 0);
                if (i % 10 == 9)
                        it_sleep_ms(100);
                if (i != 100 && i != 200 && i != 300)
                        continue;
                if (fault == F_KAFKA && i == 100) {
                        snprintf(cmd, sizeof(cmd),
                                 "%s/scripts/stack crash kafka 3 >/dev/null 2>&1",
                                 PROMO_SOURCE_DIR);
                        bg = background(cmd);
                } else if (fault == F_POSTGRES && i == 100) {
                        snprintf(cmd, sizeof(cmd),
                                 "%s/scripts/stack crash pg 3 >/dev/null 2>&1",
                                 PROMO_SOURCE_DIR);
                        bg = background(cmd);
                } else if (fault == F_SERVICES) {
                        /* SIGKILL, no goodbye: intake, then the calculator
                         * and a validator, then the audit-sink. */
                        int victims[3][2] = {{SVC_INTAKE, -1},
                                             {SVC_CALCULATOR, SVC_VALIDATOR2},
                                             {SVC_AUDIT, -1}};
                        int k, v;

                        for (k = 0; k < 2; k++) {
                                v = victims[i / 100 - 1][k];
                                if (v < 0)
                                        continue;
                                stop_svc(v, SIGKILL);
                                start_svc(v);
                        }
                }
        }
        ck_assert_int_eq(rd_kafka_flush(p, 120000), 0);
        rd_kafka_destroy(p);
        if (bg > 0) {
                ck_assert_int_eq(waitpid(bg, &status, 0), bg);
                ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                              "scripts/stack crash failed");
        }
        expect_exactly_once(code, N, LIMIT);
        fprintf(stderr, "check_pipeline: %s: %d service restart(s) by the supervisor\n",
                tag, svc_restarts);
}

START_TEST(chaos_kafka_restart)
{
        chaos(F_KAFKA, "CHAOSK");
}
END_TEST

START_TEST(chaos_postgres_restart)
{
        chaos(F_POSTGRES, "CHAOSP");
}
END_TEST

START_TEST(chaos_kill_every_service)
{
        chaos(F_SERVICES, "CHAOSS");
}
END_TEST

/* After everything above, promo-reconcile proves the whole stack: orders in
 * = priced + dead letters + duplicates, usage rows = events, counters,
 * limits, Redis = PostgreSQL. */
START_TEST(reconcile_whole_stack)
{
        char cmd[1024];

        snprintf(cmd, sizeof(cmd), "%s/promo-reconcile --wait 180",
                 getenv("PROMO_BIN_DIR"));
        ck_assert_int_eq(system(cmd), 0);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("pipeline");
        TCase *flow = tcase_create("flow"), *chaos = tcase_create("chaos");
        SRunner *sr;
        int failed;

        /* flow: what every order goes through (also run with every service
         * under valgrind: PROMO_IT_VALGRIND=1 CK_RUN_CASE=flow). */
        tcase_add_checked_fixture(flow, setup, teardown);
        tcase_set_timeout(flow, 600);
        tcase_add_test(flow, samples_flow_to_audit_rows);
        tcase_add_test(flow, race_for_the_last_redemption);
        tcase_add_test(flow, race_per_customer);
        suite_add_tcase(s, flow);
        tcase_add_checked_fixture(chaos, setup, teardown);
        tcase_set_timeout(chaos, 600);
        tcase_add_test(chaos, chaos_validator_kill_and_redis_restart);
        tcase_add_test(chaos, chaos_kafka_restart);
        tcase_add_test(chaos, chaos_postgres_restart);
        tcase_add_test(chaos, chaos_kill_every_service);
        tcase_add_test(chaos, reconcile_whole_stack);
        suite_add_tcase(s, chaos);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
