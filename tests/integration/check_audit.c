/* audit-sink, promo-migrate and promo-reconcile on the real stack.
 *
 * Every test has its own topics (it.<run>.<test>.*), consumer group,
 * transactional id and PostgreSQL schema (PROMO_PG_DSN with
 * options=-csearch_path=<schema>, migrated by the sink or by promo-migrate),
 * so it counts exactly and runs beside anything else on the stack.
 *
 *   values     usage events and dead letters become rows with the right
 *              values; dispatch is on the schema, not the topic; garbage on a
 *              DLQ topic is stored as UNDECODABLE, garbage on the input goes
 *              to the sink's own DLQ;
 *   replay     the same events produced twice: one row each, counted once;
 *   refused    a row PostgreSQL refuses becomes a DB_REJECTED dead letter,
 *              the rest of its batch is stored;
 *   outage     PostgreSQL unreachable mid-stream (a TCP proxy in front of it
 *              is killed, then flapped): /readyz says so, and afterwards
 *              nothing is lost and nothing counted twice;
 *   kill       the sink killed between a database commit and its Kafka
 *              commit, then SIGKILLed mid-stream; restarts: exact rows and
 *              counters;
 *   reconcile  promo-reconcile on a small controlled data set: passes, and
 *              fails (exit 1) on each kind of disagreement; --wait. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "po/avro.h"
#include "po/config.h"
#include "po/dlq.h"
#include "po/messages.h"
#include "po/stage.h"

#include "it.h"

static po_config_t cfg;
static char run_id[64];
static po_avro_t *avro;

/* Children still running when a test fails (killed by the teardown). */
static pid_t children[8];

static void track(pid_t pid)
{
        size_t i;

        for (i = 0; i < sizeof(children) / sizeof(children[0]); i++)
                if (children[i] == 0) {
                        children[i] = pid;
                        return;
                }
}

static void untrack(pid_t pid)
{
        size_t i;

        for (i = 0; i < sizeof(children) / sizeof(children[0]); i++)
                if (children[i] == pid)
                        children[i] = 0;
}

static void teardown(void)
{
        size_t i;

        for (i = 0; i < sizeof(children) / sizeof(children[0]); i++)
                if (children[i] > 0) {
                        kill(children[i], SIGKILL);
                        waitpid(children[i], NULL, 0);
                        children[i] = 0;
                }
}

/* ---- Kafka ---- */

/* Creates n topics of the same partition count. */
static void create_topics(const char *const *names, int n, int partitions)
{
        int parts[16], i;

        ck_assert_int_le(n, 16);
        for (i = 0; i < n; i++)
                parts[i] = partitions;
        it_create_topics(cfg.kafka_brokers, names, parts, (size_t)n);
}

/* Produces one message (copied); headers (may be NULL) are taken. */
static void send_msg(rd_kafka_t *p, const char *topic, int partition, const void *key,
                     size_t klen, const void *value, size_t vlen, rd_kafka_headers_t *h)
{
        rd_kafka_resp_err_t e;

        do {
                e = rd_kafka_producev(
                    p, RD_KAFKA_V_TOPIC(topic),
                    RD_KAFKA_V_PARTITION(partition < 0 ? RD_KAFKA_PARTITION_UA
                                                       : partition),
                    RD_KAFKA_V_KEY(key, klen), RD_KAFKA_V_VALUE((void *)value, vlen),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(h),
                    RD_KAFKA_V_END);
                if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                        rd_kafka_poll(p, 50);
        } while (e == RD_KAFKA_RESP_ERR__QUEUE_FULL);
        ck_assert_msg(e == 0, "produce to %s: %s", topic, rd_kafka_err2str(e));
}

static void flush(rd_kafka_t *p)
{
        ck_assert_int_eq(rd_kafka_flush(p, 30000), 0);
}

/* 1 when group has committed, on every partition of the topics, the high
 * watermark (the test's producers are not transactional, so the end). */
static int caught_up(const char *group, const char *const *topics, int n)
{
        rd_kafka_t *c = it_kafka(cfg.kafka_brokers, RD_KAFKA_CONSUMER, group);
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(16);
        const rd_kafka_metadata_t *md = NULL;
        int i, j, k, ok = 1;

        ck_assert_int_eq(rd_kafka_metadata(c, 1, NULL, &md, 10000), 0);
        for (i = 0; i < n; i++)
                for (j = 0; j < md->topic_cnt; j++)
                        if (strcmp(md->topics[j].topic, topics[i]) == 0)
                                for (k = 0; k < md->topics[j].partition_cnt; k++)
                                        rd_kafka_topic_partition_list_add(l, topics[i],
                                                                          k);
        rd_kafka_metadata_destroy(md);
        if (rd_kafka_committed(c, l, 10000))
                ok = 0;
        for (i = 0; ok && i < l->cnt; i++) {
                int64_t lo, hi;

                if (rd_kafka_query_watermark_offsets(
                        c, l->elems[i].topic, l->elems[i].partition, &lo, &hi, 10000) ||
                    (hi > 0 && l->elems[i].offset != hi))
                        ok = 0;
        }
        rd_kafka_topic_partition_list_destroy(l);
        rd_kafka_destroy(c);
        return ok;
}

static void wait_caught_up(const char *group, const char *const *topics, int n,
                           int timeout_ms)
{
        long long end = it_mono_ms() + timeout_ms;

        while (!caught_up(group, topics, n)) {
                ck_assert_msg(it_mono_ms() < end, "group %s did not catch up in %d ms",
                              group, timeout_ms);
                it_sleep_ms(300);
        }
}

/* ---- messages ---- */

/* Test event i: code ITC<i % 7>, customer c<i % 11> (every 5th anonymous),
 * rejected when i % 4 == 0. */
typedef struct ev_buf {
        char event_id[96], order_id[64], code[16], customer[16];
} ev_buf_t;

static void make_event(const char *tag, int i, ev_buf_t *b, po_usage_event_t *e)
{
        memset(e, 0, sizeof(*e));
        snprintf(b->event_id, sizeof(b->event_id), "%s-%s-%d", run_id, tag, i);
        snprintf(b->order_id, sizeof(b->order_id), "o-%d", i);
        snprintf(b->code, sizeof(b->code), "ITC%d", i % 7);
        snprintf(b->customer, sizeof(b->customer), "c%d", i % 11);
        e->event_id = b->event_id;
        e->order_id = b->order_id;
        e->channel = "web";
        e->account = "acct";
        e->code = b->code;
        e->customer_id = i % 5 == 0 ? NULL : b->customer;
        e->applied = i % 4 != 0;
        e->reason = e->applied ? NULL : "USAGE_LIMIT_REACHED";
        e->value_applied = e->applied ? 100 + i : 0;
        memcpy(e->currency, "EUR", 4);
        e->occurred_at = 1700000000000000LL + i;
}

static void encode_event(const po_usage_event_t *e, po_dynbuf_t *out)
{
        char err[256];

        po_dynbuf_reset(out);
        ck_assert_msg(po_usage_encode(avro, e, out, err, sizeof(err)) == PO_OK, "%s",
                      err);
}

static void produce_events(const char *topic, const char *tag, int from, int to)
{
        rd_kafka_t *p = it_kafka(cfg.kafka_brokers, RD_KAFKA_PRODUCER, NULL);
        po_dynbuf_t buf;
        int i;

        po_dynbuf_init(&buf, 1 << 20);
        for (i = from; i < to; i++) {
                ev_buf_t b;
                po_usage_event_t e;

                make_event(tag, i, &b, &e);
                encode_event(&e, &buf);
                send_msg(p, topic, -1, b.order_id, strlen(b.order_id), buf.data, buf.len,
                         NULL);
        }
        flush(p);
        po_dynbuf_release(&buf);
        rd_kafka_destroy(p);
}

/* What the counters must hold after events [0, n) of make_event. */
typedef struct expect {
        int64_t redemptions[7], rejections[7], customer[7][11];
} expect_t;

static void expected(int n, expect_t *x)
{
        int i;

        memset(x, 0, sizeof(*x));
        for (i = 0; i < n; i++) {
                if (i % 4 == 0) {
                        x->rejections[i % 7]++;
                        continue;
                }
                x->redemptions[i % 7]++;
                if (i % 5 != 0)
                        x->customer[i % 7][i % 11]++;
        }
}

/* ---- PostgreSQL ---- */

typedef struct schema {
        char name[96];
        char dsn[900];
} schema_t;

static PGconn *pg_admin(void)
{
        PGconn *c = PQconnectdb(cfg.pg_dsn);

        ck_assert_msg(PQstatus(c) == CONNECTION_OK, "%s", PQerrorMessage(c));
        PQclear(PQexec(c, "SET client_min_messages = warning"));
        return c;
}

static void pg_exec(PGconn *c, const char *sql)
{
        PGresult *r = PQexec(c, sql);

        ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK ||
                          PQresultStatus(r) == PGRES_TUPLES_OK,
                      "%s: %s", sql, PQerrorMessage(c));
        PQclear(r);
}

static int64_t pg_int(PGconn *c, const char *sql)
{
        PGresult *r = PQexec(c, sql);
        int64_t v;

        ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1, "%s: %s",
                      sql, PQerrorMessage(c));
        v = PQgetisnull(r, 0, 0) ? -1 : strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        return v;
}

/* The text of row 0, column 0 ("<null>" when NULL) into out. */
static const char *pg_text(PGconn *c, const char *sql, char *out, size_t size)
{
        PGresult *r = PQexec(c, sql);

        ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1,
                      "%s: %s (%d rows)", sql, PQerrorMessage(c),
                      PQresultStatus(r) == PGRES_TUPLES_OK ? PQntuples(r) : -1);
        snprintf(out, size, "%s", PQgetisnull(r, 0, 0) ? "<null>" : PQgetvalue(r, 0, 0));
        PQclear(r);
        return out;
}

/* A schema of the test's own, and the DSN that selects it. */
static void make_schema(schema_t *s, const char *name)
{
        PGconn *c = pg_admin();
        char sql[300];
        size_t i;

        snprintf(s->name, sizeof(s->name), "it_audit_%s_%s", run_id, name);
        for (i = 0; s->name[i]; i++)
                if (s->name[i] == '-' || s->name[i] == '.')
                        s->name[i] = '_';
        snprintf(s->dsn, sizeof(s->dsn), "%s options=-csearch_path=%s", cfg.pg_dsn,
                 s->name);
        snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", s->name);
        pg_exec(c, sql);
        PQfinish(c);
}

static void drop_schema(const schema_t *s)
{
        PGconn *c = pg_admin();
        char sql[200];

        snprintf(sql, sizeof(sql), "DROP SCHEMA %s CASCADE", s->name);
        pg_exec(c, sql);
        PQfinish(c);
}

static PGconn *pg_in(const schema_t *s)
{
        PGconn *c = PQconnectdb(s->dsn);

        ck_assert_msg(PQstatus(c) == CONNECTION_OK, "%s", PQerrorMessage(c));
        return c;
}

/* pg_int, but -1 on an error (the sink may not have migrated yet). */
static int64_t pg_int_try(PGconn *c, const char *sql)
{
        PGresult *r = PQexec(c, sql);
        int64_t v = -1;

        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
            !PQgetisnull(r, 0, 0))
                v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        return v;
}

static void wait_rows(PGconn *c, const char *sql, int64_t want, int timeout_ms)
{
        long long end = it_mono_ms() + timeout_ms;
        int64_t n;

        while ((n = pg_int_try(c, sql)) < want) {
                ck_assert_msg(it_mono_ms() < end,
                              "%s: %" PRId64 " of %" PRId64 " after %d ms", sql, n, want,
                              timeout_ms);
                it_sleep_ms(200);
        }
}

/* Counters of the schema equal x (and total to n events). */
static void check_counters(PGconn *c, const expect_t *x)
{
        char sql[300];
        int k, j;

        for (k = 0; k < 7; k++) {
                snprintf(
                    sql, sizeof(sql),
                    "SELECT coalesce((SELECT redemptions FROM usage_counters WHERE code "
                    "= 'ITC%d'), 0)",
                    k);
                ck_assert_int_eq(pg_int(c, sql), x->redemptions[k]);
                snprintf(
                    sql, sizeof(sql),
                    "SELECT coalesce((SELECT rejections FROM usage_counters WHERE code "
                    "= 'ITC%d'), 0)",
                    k);
                ck_assert_int_eq(pg_int(c, sql), x->rejections[k]);
                for (j = 0; j < 11; j++) {
                        snprintf(sql, sizeof(sql),
                                 "SELECT coalesce((SELECT redemptions FROM "
                                 "customer_usage_counters WHERE code = 'ITC%d' AND "
                                 "customer_id = 'c%d'), 0)",
                                 k, j);
                        ck_assert_int_eq(pg_int(c, sql), x->customer[k][j]);
                }
        }
}

/* ---- the sink ---- */

typedef struct sink {
        char in[128], d1[128], d2[128], own[128], group[128], txid[128];
        char dlqs[300];
        const char *topics[4];
        schema_t schema;
        char dsn[1000]; /* what the sink connects with (maybe through the proxy) */
        int port;
        const char *crash_after; /* PROMO_AUDIT_CRASH_AFTER_WRITES, or NULL */
        pid_t pid;
} sink_t;

/* The sink's health port is free and below the ephemeral range (a fixed
 * one there was once taken by an outgoing connection's local port). */
static void make_sink(sink_t *k, const char *name, int partitions)
{
        memset(k, 0, sizeof(*k));
        snprintf(k->in, sizeof(k->in), "it.%s.%s.usage", run_id, name);
        snprintf(k->d1, sizeof(k->d1), "it.%s.%s.d1", run_id, name);
        snprintf(k->d2, sizeof(k->d2), "it.%s.%s.d2", run_id, name);
        snprintf(k->own, sizeof(k->own), "it.%s.%s.sinkdlq", run_id, name);
        snprintf(k->group, sizeof(k->group), "it-%s-%s", run_id, name);
        snprintf(k->txid, sizeof(k->txid), "it-%s-%s-tx", run_id, name);
        snprintf(k->dlqs, sizeof(k->dlqs), "%s,%s", k->d1, k->d2);
        k->topics[0] = k->in;
        k->topics[1] = k->d1;
        k->topics[2] = k->d2;
        k->topics[3] = k->own;
        create_topics(k->topics, 1, partitions);
        create_topics(k->topics + 1, 3, 1);
        make_schema(&k->schema, name);
        snprintf(k->dsn, sizeof(k->dsn), "%s", k->schema.dsn);
        k->port = it_free_port();
}

static void release_sink(sink_t *k)
{
        it_delete_topics(cfg.kafka_brokers, k->topics, 4);
        drop_schema(&k->schema);
}

static void start_sink(sink_t *k)
{
        char path[512], port[16];
        pid_t pid;

        snprintf(path, sizeof(path), "%s/audit-sink", getenv("PROMO_BIN_DIR"));
        snprintf(port, sizeof(port), "%d", k->port);
        pid = fork();
        if (pid < 0) /* no Check call in a child: CK_FORK=no shares its messages */
                ck_abort_msg("fork failed");
        if (pid == 0) {
                /* A test that fails leaves no service behind. */
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                setenv("PROMO_AUDIT_INPUT", k->in, 1);
                setenv("PROMO_AUDIT_DLQS", k->dlqs, 1);
                setenv("PROMO_AUDIT_DLQ", k->own, 1);
                setenv("PROMO_AUDIT_GROUP", k->group, 1);
                setenv("PROMO_AUDIT_TXID", k->txid, 1);
                setenv("PROMO_PG_DSN", k->dsn, 1);
                setenv("PROMO_AUDIT_SINK_HTTP_PORT", port, 1);
                setenv("PROMO_STAGE_BATCH_MAX", "200", 1);
                if (k->crash_after)
                        setenv("PROMO_AUDIT_CRASH_AFTER_WRITES", k->crash_after, 1);
                execl(path, path, (char *)NULL);
                _exit(127);
        }
        k->pid = pid;
        track(pid);
}

static int stop_pid(pid_t pid, int sig, int timeout_ms)
{
        int status = -1;
        long long end = it_mono_ms() + timeout_ms;

        kill(pid, sig);
        while (it_mono_ms() < end) {
                if (waitpid(pid, &status, WNOHANG) == pid) {
                        untrack(pid);
                        return status;
                }
                it_sleep_ms(20);
        }
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        untrack(pid);
        ck_abort_msg("process did not exit within %d ms of signal %d", timeout_ms, sig);
        return status;
}

static void stop_sink(sink_t *k)
{
        int status = stop_pid(k->pid, SIGTERM, 20000);

        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                      "audit-sink exit status %d", status);
        k->pid = 0;
}

/* Waits until /readyz answers want; returns the body's copy in body. */
static void wait_ready(int port, int want, const char *must_contain, char *body,
                       size_t size, int timeout_ms)
{
        long long end = it_mono_ms() + timeout_ms;
        int status;

        for (;;) {
                status = it_http_get(port, "/readyz", body, size);
                if (status == want && (!must_contain || strstr(body, must_contain)))
                        return;
                ck_assert_msg(it_mono_ms() < end, "/readyz: %d (want %d with \"%s\"): %s",
                              status, want, must_contain ? must_contain : "", body);
                it_sleep_ms(200);
        }
}

/* A metric's value from /metrics ("name{labels}" as rendered), or -1. */
static long long metric(int port, const char *series)
{
        static char body[1 << 16];
        const char *p;

        if (it_http_get(port, "/metrics", body, sizeof(body)) != 200)
                return -1;
        p = strstr(body, series);
        return p ? strtoll(p + strlen(series), NULL, 10) : -1;
}

/* ---- the tests ---- */

static void encode_dl(const po_deadletter_t *dl, po_dynbuf_t *out)
{
        char err[256];

        po_dynbuf_reset(out);
        ck_assert_msg(po_avro_encode_deadletter(avro, dl, out, err, sizeof(err)) == PO_OK,
                      "%s", err);
}

static void read_one(const char *topic, char **payload, size_t *len)
{
        char group[200];
        rd_kafka_t *c;
        rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
        long long end = it_mono_ms() + 30000;

        snprintf(group, sizeof(group), "reader-%s-%lld", topic, it_mono_ms());
        c = it_kafka(cfg.kafka_brokers, RD_KAFKA_CONSUMER, group);
        rd_kafka_poll_set_consumer(c);
        rd_kafka_topic_partition_list_add(sub, topic, RD_KAFKA_PARTITION_UA);
        rd_kafka_subscribe(c, sub);
        rd_kafka_topic_partition_list_destroy(sub);
        *payload = NULL;
        while (!*payload && it_mono_ms() < end) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 200);

                if (m && !m->err) {
                        *payload = malloc(m->len + 1);
                        memcpy(*payload, m->payload, m->len);
                        *len = m->len;
                }
                if (m)
                        rd_kafka_message_destroy(m);
        }
        rd_kafka_consumer_close(c);
        rd_kafka_destroy(c);
        ck_assert_msg(*payload != NULL, "nothing in %s", topic);
}

START_TEST(rows_have_the_right_values)
{
        sink_t k;
        rd_kafka_t *p;
        po_dynbuf_t buf;
        po_usage_event_t e;
        po_deadletter_t dl;
        po_header_t hdrs[3] = {
            {"channel", "web", 3, 1}, {"bin", "\x00\xff", 2, 1}, {"nil", NULL, 0, 0}};
        rd_kafka_headers_t *h;
        PGconn *c;
        char sql[600], got[2048], *raw;
        size_t raw_len;
        po_deadletter_t out;
        char err[256];

        make_sink(&k, "values", 2);
        p = it_kafka(cfg.kafka_brokers, RD_KAFKA_PRODUCER, NULL);
        po_dynbuf_init(&buf, 1 << 20);
        /* Usage events on the input: applied with a customer, applied
         * anonymous, rejected. */
        memset(&e, 0, sizeof(e));
        e.event_id = "ev-1";
        e.order_id = "order-1";
        e.channel = "web";
        e.account = "shop-7";
        e.code = "SPRING10";
        e.customer_id = "cust-1";
        e.applied = 1;
        e.value_applied = 1234;
        memcpy(e.currency, "EUR", 4);
        e.occurred_at = 1700000000123456LL;
        encode_event(&e, &buf);
        send_msg(p, k.in, 0, "order-1", 7, buf.data, buf.len, NULL);
        e.event_id = "ev-2";
        e.customer_id = NULL;
        e.value_applied = 500;
        encode_event(&e, &buf);
        send_msg(p, k.in, 1, "order-2", 7, buf.data, buf.len, NULL);
        e.event_id = "ev-3";
        e.code = "SUMMER5";
        e.customer_id = "cust-1";
        e.applied = 0;
        e.reason = "USAGE_LIMIT_REACHED";
        e.value_applied = 0;
        encode_event(&e, &buf);
        send_msg(p, k.in, 0, "order-3", 7, buf.data, buf.len, NULL);
        /* Garbage on the input: to the sink's own DLQ, no row. */
        send_msg(p, k.in, 1, "gk", 2, "not avro at all", 15, NULL);
        /* A DeadLetter on the input: dispatched on its schema, a row. */
        memset(&dl, 0, sizeof(dl));
        dl.stage = "validator";
        dl.source_topic = "orders.canonical";
        dl.partition = 1;
        dl.offset = 5;
        dl.reason_code = "REDIS_DOWN";
        dl.error = "dedupe store unreachable";
        dl.attempts = 3;
        dl.first_failure_ms = 1700000000000LL;
        dl.last_failure_ms = 1700000011000LL;
        dl.priority = 9;
        dl.original_value = "v";
        dl.original_value_len = 1;
        encode_dl(&dl, &buf);
        send_msg(p, k.in, 0, NULL, 0, buf.data, buf.len, NULL);
        /* A DeadLetter on a DLQ, with text, binary and empty headers. */
        dl.stage = "intake-normalizer";
        dl.source_topic = "orders.raw";
        dl.partition = 2;
        dl.offset = 77;
        dl.reason_code = "BAD_PAYLOAD";
        dl.error = "lines[0].quantity: not an integer";
        dl.attempts = 1;
        dl.priority = 42;
        dl.original_key = "k1";
        dl.original_key_len = 2;
        dl.has_original_key = 1;
        dl.original_value = "{\"orig\": 1}";
        dl.original_value_len = 11;
        dl.headers = hdrs;
        dl.header_count = 3;
        encode_dl(&dl, &buf);
        send_msg(p, k.d1, 0, "k1", 2, buf.data, buf.len, NULL);
        /* Garbage on a DLQ: stored as UNDECODABLE, never dead-lettered. */
        h = rd_kafka_headers_new(2);
        rd_kafka_header_add(h, PO_HDR_SOURCE_TOPIC, -1, "orders.canonical", -1);
        send_msg(p, k.d2, 0, "gk2", 3, "\xc3\x01garbage", 9, h);
        /* A UsageEvent on a DLQ: a usage row. */
        e.event_id = "ev-4";
        e.code = "SPRING10";
        e.customer_id = "cust-2";
        e.applied = 1;
        e.reason = NULL;
        e.value_applied = 7;
        encode_event(&e, &buf);
        send_msg(p, k.d2, 0, "order-4", 7, buf.data, buf.len, NULL);
        flush(p);

        start_sink(&k);
        c = pg_in(&k.schema);
        wait_rows(c, "SELECT count(*) FROM usage_events", 4, 60000);
        wait_rows(c, "SELECT count(*) FROM dead_letters", 3, 30000);
        wait_caught_up(k.group, k.topics, 3, 30000);
        ck_assert_int_eq(pg_int(c, "SELECT count(*) FROM usage_events"), 4);
        ck_assert_int_eq(pg_int(c, "SELECT count(*) FROM dead_letters"), 3);

        pg_text(
            c,
            "SELECT concat_ws('|', order_id, channel, account, code, customer_id, "
            "outcome, coalesce(reason, 'NULL'), value_applied, currency, "
            "to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), "
            "kafka_partition, kafka_offset) FROM usage_events WHERE event_id = 'ev-1'",
            got, sizeof(got));
        ck_assert_str_eq(got, "order-1|web|shop-7|SPRING10|cust-1|applied|NULL|1234|EUR|"
                              "2023-11-14 22:13:20.123456|0|0");
        pg_text(c,
                "SELECT concat_ws('|', coalesce(customer_id, 'NULL'), outcome, "
                "value_applied) FROM usage_events WHERE event_id = 'ev-2'",
                got, sizeof(got));
        ck_assert_str_eq(got, "NULL|applied|500");
        pg_text(c,
                "SELECT concat_ws('|', code, outcome, reason, value_applied) FROM "
                "usage_events WHERE event_id = 'ev-3'",
                got, sizeof(got));
        ck_assert_str_eq(got, "SUMMER5|rejected|USAGE_LIMIT_REACHED|0");
        pg_text(
            c,
            "SELECT code || '|' || customer_id FROM usage_events WHERE event_id = 'ev-4'",
            got, sizeof(got));
        ck_assert_str_eq(got, "SPRING10|cust-2");
        /* Counters: SPRING10 applied 3 times (ev-1, ev-2, ev-4), SUMMER5 rejected
         * once; customers only for applied, non-anonymous events. */
        pg_text(c,
                "SELECT string_agg(code || '=' || redemptions || '/' || rejections, ',' "
                "ORDER BY code) FROM usage_counters",
                got, sizeof(got));
        ck_assert_str_eq(got, "SPRING10=3/0,SUMMER5=0/1");
        pg_text(c,
                "SELECT string_agg(code || ':' || customer_id || '=' || redemptions, ',' "
                "ORDER BY code, customer_id) FROM customer_usage_counters",
                got, sizeof(got));
        ck_assert_str_eq(got, "SPRING10:cust-1=1,SPRING10:cust-2=1");

        snprintf(
            sql, sizeof(sql),
            "SELECT concat_ws('|', stage, reason, error, attempts, priority, "
            "to_char(first_failure_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS'), "
            "to_char(last_failure_at AT TIME ZONE 'UTC', 'HH24:MI:SS.MS'), source_topic, "
            "source_partition, source_offset, encode(original_key, 'escape'), "
            "encode(original_value, 'escape'), original_headers::text) "
            "FROM dead_letters WHERE source = '%s:0:0'",
            k.d1);
        pg_text(c, sql, got, sizeof(got));
        ck_assert_str_eq(got,
                         "intake-normalizer|BAD_PAYLOAD|lines[0].quantity: not an "
                         "integer|1|42|2023-11-14 22:13:20.000|22:13:31.000|orders.raw|"
                         "2|77|k1|{\"orig\": 1}|[{\"key\": \"channel\", \"value\": "
                         "\"web\"}, {\"key\": \"bin\", \"value_base64\": \"AP8=\"}, "
                         "{\"key\": \"nil\", \"value\": null}]");
        snprintf(
            sql, sizeof(sql),
            "SELECT concat_ws('|', stage, reason, source_topic, "
            "coalesce(source_partition::text, 'NULL'), encode(original_key, 'escape'), "
            "encode(original_value, 'hex'), original_headers::text) "
            "FROM dead_letters WHERE source = '%s:0:0'",
            k.d2);
        pg_text(c, sql, got, sizeof(got));
        ck_assert_str_eq(got, "unknown|UNDECODABLE|orders.canonical|NULL|gk2|"
                              "c30167617262616765|[{\"key\": \"promo-source-topic\", "
                              "\"value\": \"orders.canonical\"}]");
        snprintf(sql, sizeof(sql),
                 "SELECT stage || '|' || reason || '|' || source_topic FROM dead_letters "
                 "WHERE source LIKE '%s:%%'",
                 k.in);
        pg_text(c, sql, got, sizeof(got));
        ck_assert_str_eq(got, "validator|REDIS_DOWN|orders.canonical");

        /* The garbage of the input is a DeadLetter in the sink's own DLQ. */
        read_one(k.own, &raw, &raw_len);
        ck_assert_msg(po_avro_decode_deadletter(avro, raw, raw_len, &out, err,
                                                sizeof(err)) == PO_OK,
                      "%s", err);
        ck_assert_str_eq(out.stage, "audit-sink");
        ck_assert_str_eq(out.reason_code, "UNDECODABLE");
        ck_assert_str_eq(out.source_topic, k.in);
        ck_assert_uint_eq(out.original_value_len, 15);
        ck_assert_int_eq(memcmp(out.original_value, "not avro at all", 15), 0);
        po_deadletter_release(&out);
        free(raw);

        ck_assert_int_eq(metric(k.port, "promo_audit_rows_written_total{service=\"audit-"
                                        "sink\",table=\"usage_events\"} "),
                         4);
        ck_assert_int_eq(metric(k.port, "promo_audit_rows_written_total{service=\"audit-"
                                        "sink\",table=\"dead_letters\"} "),
                         3);
        stop_sink(&k);
        PQfinish(c);
        po_dynbuf_release(&buf);
        rd_kafka_destroy(p);
        release_sink(&k);
}
END_TEST

START_TEST(replayed_events_stored_and_counted_once)
{
        enum { N = 600 };
        sink_t k;
        expect_t x;
        PGconn *c;
        rd_kafka_t *p;
        po_dynbuf_t buf;
        ev_buf_t b;
        po_usage_event_t e;

        make_sink(&k, "replay", 3);
        produce_events(k.in, "r", 0, N);
        /* The same event twice in a row, so within one batch too. */
        p = it_kafka(cfg.kafka_brokers, RD_KAFKA_PRODUCER, NULL);
        po_dynbuf_init(&buf, 1 << 20);
        make_event("r", 1, &b, &e);
        encode_event(&e, &buf);
        send_msg(p, k.in, 0, "dup", 3, buf.data, buf.len, NULL);
        send_msg(p, k.in, 0, "dup", 3, buf.data, buf.len, NULL);
        flush(p);
        start_sink(&k);
        c = pg_in(&k.schema);
        wait_rows(c, "SELECT count(*) FROM usage_events", N, 60000);
        wait_caught_up(k.group, k.topics, 3, 30000);
        /* Every event again, as a replay of the topic would deliver it. */
        produce_events(k.in, "r", 0, N);
        wait_caught_up(k.group, k.topics, 3, 60000);
        ck_assert_int_eq(pg_int(c, "SELECT count(*) FROM usage_events"), N);
        ck_assert_int_eq(pg_int(c, "SELECT count(*) FROM dead_letters"), 0);
        expected(N, &x);
        check_counters(c, &x);
        ck_assert_int_ge(metric(k.port, "promo_audit_rows_existing_total{service=\"audit-"
                                        "sink\",table=\"usage_events\"} "),
                         N + 2);
        stop_sink(&k);
        PQfinish(c);
        po_dynbuf_release(&buf);
        rd_kafka_destroy(p);
        release_sink(&k);
}
END_TEST

/* A row PostgreSQL refuses (here: a constraint the test adds) does not block
 * the batch: it becomes a DB_REJECTED dead letter with its bytes, the other
 * rows are stored and counted. */
START_TEST(refused_row_becomes_a_dead_letter)
{
        enum { N = 50, EVIL = 17 };
        sink_t k;
        PGconn *c;
        rd_kafka_t *p;
        po_dynbuf_t buf;
        char cmd[2048], sql[400], got[600];
        int i;

        make_sink(&k, "refused", 1);
        snprintf(cmd, sizeof(cmd), "PROMO_PG_DSN='%s' %s/promo-migrate >/dev/null",
                 k.schema.dsn, getenv("PROMO_BIN_DIR"));
        ck_assert_int_eq(system(cmd), 0);
        c = pg_in(&k.schema);
        pg_exec(c, "ALTER TABLE usage_events ADD CONSTRAINT it_no_evil CHECK (code <> "
                   "'EVIL')");
        p = it_kafka(cfg.kafka_brokers, RD_KAFKA_PRODUCER, NULL);
        po_dynbuf_init(&buf, 1 << 20);
        for (i = 0; i < N; i++) {
                ev_buf_t b;
                po_usage_event_t e;

                make_event("f", i, &b, &e);
                if (i == EVIL)
                        e.code = "EVIL";
                encode_event(&e, &buf);
                send_msg(p, k.in, 0, b.order_id, strlen(b.order_id), buf.data, buf.len,
                         NULL);
        }
        flush(p);
        start_sink(&k);
        wait_rows(c, "SELECT count(*) FROM dead_letters", 1, 60000);
        wait_caught_up(k.group, k.topics, 1, 30000);
        ck_assert_int_eq(pg_int(c, "SELECT count(*) FROM usage_events"), N - 1);
        ck_assert_int_eq(
            pg_int(c, "SELECT count(*) FROM usage_events WHERE code = 'EVIL'"), 0);
        ck_assert_int_eq(
            pg_int(c, "SELECT count(*) FROM usage_counters WHERE code = 'EVIL'"), 0);
        ck_assert_int_eq(pg_int(c, "SELECT sum(redemptions + rejections) FROM "
                                   "usage_counters"),
                         N - 1);
        snprintf(sql, sizeof(sql),
                 "SELECT concat_ws('|', source, stage, reason, source_topic, "
                 "source_partition, source_offset, encode(original_key, 'escape'), "
                 "error LIKE '%%it_no_evil%%') FROM dead_letters");
        pg_text(c, sql, got, sizeof(got));
        snprintf(cmd, sizeof(cmd), "%s:0:%d|audit-sink|DB_REJECTED|%s|0|%d|o-%d|t", k.in,
                 EVIL, k.in, EVIL, EVIL);
        ck_assert_str_eq(got, cmd);
        /* The dead letter keeps the event's bytes: it decodes to the event. */
        {
                PGresult *r = PQexecParams(c, "SELECT original_value FROM dead_letters",
                                           0, NULL, NULL, NULL, NULL, 1);
                po_usage_event_t e;
                po_arena_t a;
                char err[256];

                ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
                po_arena_init(&a, 1 << 20);
                ck_assert_msg(po_usage_decode(avro, PQgetvalue(r, 0, 0),
                                              (size_t)PQgetlength(r, 0, 0), &a, &e, err,
                                              sizeof(err)) == PO_OK,
                              "%s", err);
                ck_assert_str_eq(e.code, "EVIL");
                po_arena_release(&a);
                PQclear(r);
        }
        ck_assert_int_eq(metric(k.port, "promo_audit_rows_rejected_total{service=\"audit-"
                                        "sink\"} "),
                         1);
        stop_sink(&k);
        PQfinish(c);
        po_dynbuf_release(&buf);
        rd_kafka_destroy(p);
        release_sink(&k);
}
END_TEST

/* ---- a TCP proxy in front of PostgreSQL, to make it unreachable ---- */

static int pg_port(void)
{
        const char *p = strstr(cfg.pg_dsn, "port=");

        return p ? atoi(p + 5) : 5432;
}

static int listen_on(int port)
{
        struct sockaddr_in a = {.sin_family = AF_INET};
        int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);

        ck_assert_int_ge(fd, 0);
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        a.sin_port = htons((uint16_t)port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ck_assert_msg(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0, "bind %d: %s",
                      port, strerror(errno));
        ck_assert_int_eq(listen(fd, 64), 0);
        return fd;
}

static int connect_to(int port)
{
        struct sockaddr_in a = {.sin_family = AF_INET};
        int fd = socket(AF_INET, SOCK_STREAM, 0);

        a.sin_port = htons((uint16_t)port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
                return fd;
        if (fd >= 0)
                close(fd);
        return -1;
}

/* The proxy process: forwards every connection to PostgreSQL until killed
 * (its death closes every socket: the sink sees its connection drop, then
 * connection refused). */
static void proxy_loop(int lfd, int target)
{
        enum { MAXC = 64 };
        int a[MAXC], b[MAXC], n = 0, i;
        char buf[65536];

        for (;;) {
                struct pollfd pf[1 + 2 * MAXC];
                int np = 0;

                pf[np++] = (struct pollfd){.fd = lfd, .events = POLLIN};
                for (i = 0; i < n; i++) {
                        pf[np++] = (struct pollfd){.fd = a[i], .events = POLLIN};
                        pf[np++] = (struct pollfd){.fd = b[i], .events = POLLIN};
                }
                if (poll(pf, (nfds_t)np, 1000) < 0)
                        continue;
                if ((pf[0].revents & POLLIN) && n < MAXC) {
                        int cfd = accept(lfd, NULL, NULL), sfd;

                        if (cfd >= 0) {
                                sfd = connect_to(target);
                                if (sfd < 0) {
                                        close(cfd);
                                } else {
                                        a[n] = cfd;
                                        b[n] = sfd;
                                        n++;
                                }
                        }
                }
                for (i = 0; i < n; i++) {
                        int k2, dead = 0;

                        for (k2 = 0; k2 < 2; k2++) {
                                struct pollfd *q = &pf[1 + 2 * i + k2];
                                ssize_t r;

                                if (!(q->revents & (POLLIN | POLLHUP | POLLERR)))
                                        continue;
                                r = read(q->fd, buf, sizeof(buf));
                                if (r <= 0 ||
                                    write(k2 ? a[i] : b[i], buf, (size_t)r) != r)
                                        dead = 1;
                        }
                        if (dead) {
                                close(a[i]);
                                close(b[i]);
                                a[i] = a[n - 1];
                                b[i] = b[n - 1];
                                n--;
                                break; /* the pollfd indexes moved */
                        }
                }
        }
}

static pid_t proxy_start(int port)
{
        int lfd = listen_on(port);
        pid_t pid = fork();

        if (pid < 0) /* no Check call in a child: CK_FORK=no shares its messages */
                ck_abort_msg("fork failed");
        if (pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                signal(SIGPIPE, SIG_IGN);
                proxy_loop(lfd, pg_port());
                _exit(0);
        }
        close(lfd);
        track(pid);
        return pid;
}

static void proxy_stop(pid_t pid)
{
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        untrack(pid);
}

START_TEST(postgres_outage_loses_and_doubles_nothing)
{
        enum { N = 6000 };
        sink_t k;
        expect_t x;
        PGconn *c;
        pid_t proxy;
        char body[8192];
        int port = it_free_port(), flaps = 0;
        int64_t before;
        long long end;

        make_sink(&k, "outage", 3);
        /* The sink reaches PostgreSQL only through the proxy (a later port=
         * overrides the DSN's). */
        snprintf(k.dsn, sizeof(k.dsn), "%s port=%d", k.schema.dsn, port);
        proxy = proxy_start(port);
        produce_events(k.in, "o", 0, N / 2);
        start_sink(&k);
        c = pg_in(&k.schema);
        wait_rows(c, "SELECT count(*) FROM usage_events", 600, 60000);

        /* Down: connections drop, new ones are refused. */
        proxy_stop(proxy);
        wait_ready(k.port, 503, "postgres down", body, sizeof(body), 10000);
        produce_events(k.in, "o", N / 2, N);
        it_sleep_ms(2000);
        before = pg_int(c, "SELECT count(*) FROM usage_events");
        it_sleep_ms(2000);
        ck_assert_int_eq(pg_int(c, "SELECT count(*) FROM usage_events"), before);
        ck_assert_int_lt(before, N);

        /* Back, then flapping while the backlog drains: failures land at any
         * point of a batch, COMMIT included. */
        proxy = proxy_start(port);
        end = it_mono_ms() + 120000;
        while (pg_int_try(c, "SELECT count(*) FROM usage_events") < N &&
               it_mono_ms() < end) {
                it_sleep_ms(400 + 97 * (flaps % 5));
                if (flaps < 12) {
                        proxy_stop(proxy);
                        it_sleep_ms(300);
                        proxy = proxy_start(port);
                        flaps++;
                }
        }
        wait_rows(c, "SELECT count(*) FROM usage_events", N, 60000);
        wait_caught_up(k.group, k.topics, 3, 60000);
        ck_assert_int_eq(pg_int(c, "SELECT count(*) FROM usage_events"), N);
        expected(N, &x);
        check_counters(c, &x);
        ck_assert_int_eq(pg_int(c, "SELECT count(*) FROM dead_letters"), 0);
        wait_ready(k.port, 200, NULL, body, sizeof(body), 15000);
        ck_assert_int_gt(metric(k.port,
                                "promo_audit_write_failures_total{service=\"audit-"
                                "sink\"} "),
                         0);
        ck_assert_int_gt(metric(k.port, "promo_transactions_total{service=\"audit-sink\","
                                        "result=\"aborted\"} "),
                         0);
        stop_sink(&k);
        proxy_stop(proxy);
        PQfinish(c);
        release_sink(&k);
}
END_TEST

START_TEST(sigkill_then_restart_exact)
{
        enum { N = 20000 };
        sink_t k;
        expect_t x;
        PGconn *c;
        int status;
        int64_t rows;

        make_sink(&k, "kill", 3);
        produce_events(k.in, "k", 0, N);
        c = pg_in(&k.schema);
        /* The worst moment, on purpose: killed right after its 5th database
         * commit, before that batch's Kafka commit. */
        k.crash_after = "5";
        start_sink(&k);
        ck_assert_int_eq(waitpid(k.pid, &status, 0), k.pid);
        untrack(k.pid);
        ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "status %d",
                      status);
        rows = pg_int(c, "SELECT count(*) FROM usage_events");
        ck_assert_int_gt(rows, 0); /* five batches of up to 200 */
        ck_assert_int_le(rows, 5 * 200);
        /* The restart consumes that batch again: stored already, so not
         * inserted and not counted; then a SIGKILL at a random moment. */
        k.crash_after = NULL;
        start_sink(&k);
        wait_rows(c, "SELECT count(*) FROM usage_events", rows + 2000, 60000);
        ck_assert_int_ge(metric(k.port, "promo_audit_rows_existing_total{service=\"audit-"
                                        "sink\",table=\"usage_events\"} "),
                         1);
        ck_assert_int_lt(pg_int(c, "SELECT count(*) FROM usage_events"), N);
        stop_pid(k.pid, SIGKILL, 5000);
        start_sink(&k);
        wait_rows(c, "SELECT count(*) FROM usage_events", N, 180000);
        wait_caught_up(k.group, k.topics, 3, 60000);
        ck_assert_int_eq(pg_int(c, "SELECT count(*) FROM usage_events"), N);
        expected(N, &x);
        check_counters(c, &x);
        stop_sink(&k);
        PQfinish(c);
        release_sink(&k);
}
END_TEST

/* ---- promo-reconcile ---- */

typedef struct rec {
        char prefix[128], groups[128], redis[128];
        char t[11][200];
        schema_t schema;
        redisContext *rc;
        PGconn *pg;
        rd_kafka_t *p;
} rec_t;

enum {
        T_RAW,
        T_CANON,
        T_VALID,
        T_PRICED,
        T_RAW_RETRY,
        T_INTAKE_DLQ,
        T_VALIDATOR_DLQ,
        T_CALC_DLQ,
        T_DUPS,
        T_USAGE,
        T_COUNT
};

/* Starts promo-reconcile with the test's prefixes and extra args (split on
 * spaces), its stdout into file. */
static pid_t spawn_reconcile(const rec_t *r, const char *extra, const char *file)
{
        char path[512], args[512];
        char *argv[16], *save = NULL, *tok;
        int a = 0, fd;
        pid_t pid;

        snprintf(path, sizeof(path), "%s/promo-reconcile", getenv("PROMO_BIN_DIR"));
        snprintf(args, sizeof(args), "%s", extra);
        argv[a++] = path;
        argv[a++] = "--topics-prefix";
        argv[a++] = (char *)r->prefix;
        argv[a++] = "--group-prefix";
        argv[a++] = (char *)r->groups;
        argv[a++] = "--redis-prefix";
        argv[a++] = (char *)r->redis;
        for (tok = strtok_r(args, " ", &save); tok && a < 15;
             tok = strtok_r(NULL, " ", &save))
                argv[a++] = tok;
        argv[a] = NULL;
        pid = fork();
        if (pid < 0) /* no Check call in a child: CK_FORK=no shares its messages */
                ck_abort_msg("fork failed");
        if (pid == 0) {
                /* A test that fails leaves no service behind. */
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
                if (fd < 0 || dup2(fd, 1) < 0)
                        _exit(126);
                close(fd);
                setenv("PROMO_PG_DSN", r->schema.dsn, 1);
                execv(path, argv);
                _exit(127);
        }
        track(pid);
        return pid;
}

static void slurp(const char *file, char *out, size_t size)
{
        int fd = open(file, O_RDONLY);
        ssize_t n = fd >= 0 ? read(fd, out, size - 1) : -1;

        out[n > 0 ? n : 0] = '\0';
        if (fd >= 0)
                close(fd);
        unlink(file);
}

/* Runs promo-reconcile; its stdout into out. Returns the exit status. */
static int run_reconcile(const rec_t *r, const char *extra, char *out, size_t size)
{
        char file[128];
        int status;
        pid_t pid;

        snprintf(file, sizeof(file), "/tmp/it-reconcile-%d.out", (int)getpid());
        pid = spawn_reconcile(r, extra, file);
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        untrack(pid);
        slurp(file, out, size);
        ck_assert_msg(WIFEXITED(status), "promo-reconcile died: %d", status);
        return WEXITSTATUS(status);
}

/* --json; returns the exit status and the named check's "ok" in *ok. */
static int reconcile_json(const rec_t *r, const char *check, int only, int *ok,
                          json_t **root)
{
        static char out[1 << 16];
        char args[128];
        json_error_t je;
        json_t *checks, *c;
        size_t i;
        int status;

        snprintf(args, sizeof(args), "--json%s%s", only ? " --only " : "",
                 only ? check : "");
        status = run_reconcile(r, args, out, sizeof(out));

        *root = json_loads(out, 0, &je);
        ck_assert_msg(*root != NULL, "not JSON (%s): %s", je.text, out);
        *ok = -1;
        checks = json_object_get(*root, "checks");
        json_array_foreach(checks, i, c)
        {
                if (strcmp(json_string_value(json_object_get(c, "name")), check) == 0)
                        *ok = json_is_true(json_object_get(c, "ok"));
        }
        return status;
}

static int64_t jint(json_t *root, const char *check, const char *key)
{
        json_t *checks = json_object_get(root, "checks"), *c;
        size_t i;

        json_array_foreach(checks, i, c)
        {
                if (strcmp(json_string_value(json_object_get(c, "name")), check) == 0)
                        return json_integer_value(json_object_get(c, key));
        }
        ck_abort_msg("no check %s", check);
        return -1;
}

/* Expects status and the check's ok; returns nothing. */
static void expect_check(const rec_t *r, const char *check, int want_ok)
{
        json_t *root;
        int ok, status = reconcile_json(r, check, 1, &ok, &root);
        char *dump = json_dumps(root, JSON_COMPACT);

        ck_assert_msg(status == (want_ok ? 0 : 1) && ok == want_ok,
                      "%s: want ok=%d, got status %d ok %d: %s", check, want_ok, status,
                      ok, dump);
        free(dump);
        json_decref(root);
}

static void redis_cmd(rec_t *r, const char *fmt, const char *a, const char *b)
{
        redisReply *rep = redisCommand(r->rc, fmt, a, b);

        ck_assert_msg(rep && rep->type != REDIS_REPLY_ERROR, "redis: %s",
                      rep ? rep->str : r->rc->errstr);
        freeReplyObject(rep);
}

static void send_n(rec_t *r, int t, int n, const char *header)
{
        int i;

        for (i = 0; i < n; i++) {
                rd_kafka_headers_t *h = NULL;

                if (header) {
                        h = rd_kafka_headers_new(1);
                        rd_kafka_header_add(h, header, -1, "it.dlq:0:1", -1);
                }
                send_msg(r->p, r->t[t], 0, "k", 1, "payload", 7, h);
        }
        flush(r->p);
}

static void send_dead(rec_t *r, int t, const char *source_topic)
{
        po_deadletter_t dl;
        po_dynbuf_t buf;

        memset(&dl, 0, sizeof(dl));
        dl.stage = "intake-normalizer";
        dl.source_topic = source_topic;
        dl.reason_code = "BAD_PAYLOAD";
        dl.error = "x";
        dl.attempts = 1;
        dl.original_value = "v";
        dl.original_value_len = 1;
        po_dynbuf_init(&buf, 1 << 20);
        encode_dl(&dl, &buf);
        send_msg(r->p, r->t[t], 0, NULL, 0, buf.data, buf.len, NULL);
        flush(r->p);
        po_dynbuf_release(&buf);
}

START_TEST(reconcile_passes_and_fails)
{
        static const char *const names[T_COUNT] = {
            "orders.raw",    "orders.canonical",   "orders.validated",
            "orders.priced", "orders.raw.retry.1", "intake.dlq",
            "validator.dlq", "calculator.dlq",     "orders.duplicates",
            "promo.usage"};
        const char *topics[T_COUNT];
        rec_t r;
        char path[2048], source[300], out[1 << 14], group[200];
        struct timeval tv = {.tv_sec = 5};
        rd_kafka_t *g;
        rd_kafka_topic_partition_list_t *l;
        json_t *root;
        int i, ok;
        pid_t pid;

        memset(&r, 0, sizeof(r));
        snprintf(r.prefix, sizeof(r.prefix), "it.%s.rec.", run_id);
        snprintf(r.groups, sizeof(r.groups), "it-%s-rec-", run_id);
        snprintf(r.redis, sizeof(r.redis), "it:%s:usage:", run_id);
        for (i = 0; i < T_COUNT; i++) {
                size_t plen = strlen(r.prefix);

                /* Not snprintf("%s%s", r.prefix...): source and destination
                 * are in the same struct (-Werror=restrict at -O1). */
                if (plen + strlen(names[i]) >= sizeof(r.t[i]))
                        ck_abort_msg("topic name too long");
                memcpy(r.t[i], r.prefix, plen);
                strcpy(r.t[i] + plen, names[i]);
                topics[i] = r.t[i];
        }
        create_topics(topics, T_COUNT, 1);
        make_schema(&r.schema, "rec");
        /* promo-migrate builds the schema, and says so. */
        snprintf(path, sizeof(path), "PROMO_PG_DSN='%s' %s/promo-migrate >/dev/null",
                 r.schema.dsn, getenv("PROMO_BIN_DIR"));
        ck_assert_int_eq(system(path), 0);
        snprintf(path, sizeof(path), "PROMO_PG_DSN='%s' %s/promo-migrate --status",
                 r.schema.dsn, getenv("PROMO_BIN_DIR"));
        {
                FILE *f = popen(path, "r");
                size_t n;

                ck_assert_ptr_nonnull(f);
                n = fread(out, 1, sizeof(out) - 1, f);
                out[n] = '\0';
                ck_assert_int_eq(pclose(f), 0);
                ck_assert_ptr_nonnull(strstr(out, "0001_init"));
                ck_assert_ptr_nonnull(strstr(out, "applied"));
                ck_assert_ptr_null(strstr(out, "pending"));
        }
        r.pg = pg_in(&r.schema);
        r.rc = redisConnectWithTimeout(cfg.redis_host, cfg.redis_port, tv);
        ck_assert_msg(r.rc && !r.rc->err, "redis");
        r.p = it_kafka(cfg.kafka_brokers, RD_KAFKA_PRODUCER, NULL);

        /* Orders: 10 raw + 2 replays into canonical (and 3 plain canonical
         * records, not counted) + 1 replay into validated = 13 in;
         * 8 priced + 2 intake dead letters + 1 validator dead letter + 1
         * duplicate = 12 out (a calculator dead letter of another source is
         * not counted); 1 of 2 records in orders.raw.retry.1 not yet
         * consumed by the intake group: in flight. */
        send_n(&r, T_RAW, 10, NULL);
        send_n(&r, T_CANON, 2, PO_HDR_REPLAYED_FROM);
        send_n(&r, T_CANON, 3, NULL);
        send_n(&r, T_VALID, 1, PO_HDR_REPLAYED_FROM);
        send_n(&r, T_PRICED, 8, NULL);
        send_dead(&r, T_INTAKE_DLQ, r.t[T_RAW]);
        send_dead(&r, T_INTAKE_DLQ, r.t[T_RAW_RETRY]);
        send_dead(&r, T_VALIDATOR_DLQ, r.t[T_CANON]);
        send_dead(&r, T_CALC_DLQ, "somewhere.else");
        {
                char rec[400];

                /* intake's record of a dropped duplicate: counted when its
                 * source is an order topic; not one of another source, nor
                 * garbage. */
                snprintf(rec, sizeof(rec),
                         "{\"order_id\": \"o9\", \"source\": \"%s/0/4\"}", r.t[T_RAW]);
                send_msg(r.p, r.t[T_DUPS], 0, "o9", 2, rec, strlen(rec), NULL);
                snprintf(rec, sizeof(rec),
                         "{\"order_id\": \"o9\", \"source\": \"it.other.in/0/4\"}");
                send_msg(r.p, r.t[T_DUPS], 0, "o9", 2, rec, strlen(rec), NULL);
                send_msg(r.p, r.t[T_DUPS], 0, "o9", 2, "{", 1, NULL);
                flush(r.p);
        }
        send_n(&r, T_RAW_RETRY, 2, NULL);
        snprintf(group, sizeof(group), "%sintake-normalizer", r.groups);
        g = it_kafka(cfg.kafka_brokers, RD_KAFKA_CONSUMER, group);
        l = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, r.t[T_RAW_RETRY], 0)->offset = 1;
        ck_assert_int_eq(rd_kafka_commit(g, l, 0), 0);
        rd_kafka_topic_partition_list_destroy(l);
        rd_kafka_destroy(g);

        /* Usage: 4 events; rows, counters, codes, redemptions and Redis that
         * agree. */
        {
                rd_kafka_t *p = r.p;
                po_dynbuf_t buf;
                po_usage_event_t e;
                static const struct {
                        const char *id, *code, *cust;
                        int applied;
                } evs[] = {{"e1", "CODEA", "c1", 1},
                           {"e2", "CODEA", "c1", 1},
                           {"e3", "CODEA", "c2", 1},
                           {"e4", "CODEB", "c1", 0}};

                po_dynbuf_init(&buf, 1 << 20);
                for (i = 0; i < 4; i++) {
                        memset(&e, 0, sizeof(e));
                        e.event_id = evs[i].id;
                        e.order_id = evs[i].id;
                        e.channel = "web";
                        e.account = "a";
                        e.code = evs[i].code;
                        e.customer_id = evs[i].cust;
                        e.applied = evs[i].applied;
                        e.reason = e.applied ? NULL : "USAGE_LIMIT_REACHED";
                        e.value_applied = e.applied ? 100 : 0;
                        memcpy(e.currency, "EUR", 4);
                        e.occurred_at = 1700000000000000LL;
                        encode_event(&e, &buf);
                        send_msg(p, r.t[T_USAGE], 0, NULL, 0, buf.data, buf.len, NULL);
                }
                flush(p);
                po_dynbuf_release(&buf);
        }
        pg_exec(
            r.pg,
            "INSERT INTO usage_events (event_id, order_id, channel, account, code, "
            "customer_id, outcome, reason, value_applied, currency, occurred_at, "
            "kafka_partition, kafka_offset) VALUES "
            "('e1', 'e1', 'web', 'a', 'CODEA', 'c1', 'applied', NULL, 100, 'EUR', now(), "
            "0, 0), "
            "('e2', 'e2', 'web', 'a', 'CODEA', 'c1', 'applied', NULL, 100, 'EUR', now(), "
            "0, 1), "
            "('e3', 'e3', 'web', 'a', 'CODEA', 'c2', 'applied', NULL, 100, 'EUR', now(), "
            "0, 2), "
            "('e4', 'e4', 'web', 'a', 'CODEB', 'c1', 'rejected', 'USAGE_LIMIT_REACHED', "
            "0, 'EUR', now(), 0, 3)");
        pg_exec(r.pg,
                "INSERT INTO usage_counters VALUES ('CODEA', 3, 0), ('CODEB', 0, 1)");
        pg_exec(r.pg, "INSERT INTO customer_usage_counters VALUES ('CODEA', 'c1', 2), "
                      "('CODEA', 'c2', 1)");
        pg_exec(r.pg,
                "INSERT INTO redemptions (order_id, code, customer_id, reservation_id) "
                "VALUES ('e1', 'CODEA', 'c1', 'r1'), ('e2', 'CODEA', 'c1', 'r2'), "
                "('e3', 'CODEA', 'c2', 'r3')");
        pg_exec(r.pg,
                "INSERT INTO codes (code, definition, status, version) VALUES "
                "('CODEA', '{\"code\": \"CODEA\", \"usage_limit\": 5, "
                "\"per_customer_limit\": 2}', 'active', 1), "
                "('CODEB', '{\"code\": \"CODEB\", \"usage_limit\": 1}', 'active', 1)");
        snprintf(source, sizeof(source), "%stotal:CODEA", r.redis);
        redis_cmd(&r, "SET %s %s", source, "3");
        snprintf(source, sizeof(source), "%scust:CODEA", r.redis);
        redis_cmd(&r, "HSET %s c1 %s", source, "2");
        redis_cmd(&r, "HSET %s c2 %s", source, "1");

        /* Everything balances: exit 0, with the numbers. */
        ck_assert_int_eq(reconcile_json(&r, "orders", 0, &ok, &root), 0);
        ck_assert_int_eq(ok, 1);
        ck_assert_int_eq(jint(root, "orders", "in"), 13);
        ck_assert_int_eq(jint(root, "orders", "out"), 12);
        ck_assert_int_eq(jint(root, "orders", "in_flight"), 1);
        ck_assert_int_eq(jint(root, "orders", "dead_letters_other_sources"), 1);
        ck_assert_int_eq(jint(root, "orders", "duplicates"), 1);
        ck_assert_int_eq(jint(root, "orders", "duplicates_other_sources"), 1);
        ck_assert_int_eq(jint(root, "orders", "duplicates_unreadable"), 1);
        ck_assert_int_eq(jint(root, "usage", "messages"), 4);
        ck_assert_int_eq(jint(root, "usage", "rows"), 4);
        json_decref(root);
        ck_assert_int_eq(run_reconcile(&r, "", out, sizeof(out)), 0);
        ck_assert_msg(strstr(out, "[PASS] orders") && strstr(out, "[PASS] usage") &&
                          strstr(out, "[PASS] counters") &&
                          strstr(out, "[PASS] limits") && strstr(out, "[PASS] redis") &&
                          strstr(out, "RECONCILED"),
                      "%s", out);

        /* orders: one raw more -> unaccounted; one priced -> balanced; one
         * priced more -> doubled; one raw -> balanced. */
        send_n(&r, T_RAW, 1, NULL);
        expect_check(&r, "orders", 0);
        ck_assert_int_eq(run_reconcile(&r, "--only orders", out, sizeof(out)), 1);
        ck_assert_msg(strstr(out, "[FAIL] orders") &&
                          strstr(out, "1 order(s) unaccounted"),
                      "%s", out);
        send_n(&r, T_PRICED, 1, NULL);
        expect_check(&r, "orders", 1);
        send_n(&r, T_PRICED, 1, NULL);
        expect_check(&r, "orders", 0);
        ck_assert_int_eq(run_reconcile(&r, "--only orders", out, sizeof(out)), 1);
        ck_assert_msg(strstr(out, "1 more outcome(s) than orders"), "%s", out);
        send_n(&r, T_RAW, 1, NULL);
        expect_check(&r, "orders", 1);

        /* usage: a row missing, then an extra row. */
        pg_exec(r.pg, "DELETE FROM usage_events WHERE event_id = 'e2'");
        ck_assert_int_eq(run_reconcile(&r, "--only usage", out, sizeof(out)), 1);
        ck_assert_msg(strstr(out, "[FAIL] usage") &&
                          strstr(out, "events without a row (1") && strstr(out, "e2"),
                      "%s", out);
        pg_exec(r.pg,
                "INSERT INTO usage_events (event_id, order_id, channel, account, code, "
                "customer_id, outcome, value_applied, currency, occurred_at, "
                "kafka_partition, kafka_offset) VALUES ('e2', 'e2', 'web', 'a', "
                "'CODEA', 'c1', 'applied', 100, 'EUR', now(), 0, 1), "
                "('e9', 'e9', 'web', 'a', 'CODEZ', NULL, 'rejected', 0, 'EUR', now(), "
                "0, 2)");
        ck_assert_int_eq(run_reconcile(&r, "--only usage", out, sizeof(out)), 1);
        ck_assert_msg(strstr(out, "rows without an event in the topic (1") &&
                          strstr(out, "e9"),
                      "%s", out);
        /* A row at or beyond the end of the topic's range is not compared. */
        pg_exec(r.pg, "UPDATE usage_events SET kafka_offset = 4 WHERE event_id = 'e9'");
        expect_check(&r, "usage", 1);
        /* ...but the counters see it: rejected events of CODEZ not counted. */
        expect_check(&r, "counters", 0);
        pg_exec(r.pg, "DELETE FROM usage_events WHERE event_id = 'e9'");
        expect_check(&r, "counters", 1);

        /* counters and Redis: a counter off by one fails both. */
        pg_exec(r.pg, "UPDATE usage_counters SET redemptions = 4 WHERE code = 'CODEA'");
        expect_check(&r, "counters", 0);
        expect_check(&r, "redis", 0);
        pg_exec(r.pg, "UPDATE usage_counters SET redemptions = 3 WHERE code = 'CODEA'");
        expect_check(&r, "redis", 1);

        /* limits: usage_limit 2 < 3 redemptions; per_customer_limit 1 < 2. */
        pg_exec(r.pg,
                "UPDATE codes SET definition = definition || '{\"usage_limit\": 2}' "
                "WHERE code = 'CODEA'");
        expect_check(&r, "limits", 0);
        pg_exec(r.pg, "UPDATE codes SET definition = definition || '{\"usage_limit\": 5, "
                      "\"per_customer_limit\": 1}' WHERE code = 'CODEA'");
        expect_check(&r, "limits", 0);
        pg_exec(r.pg,
                "UPDATE codes SET definition = definition || '{\"per_customer_limit\": "
                "\"two\"}' WHERE code = 'CODEA'");
        expect_check(&r, "limits", 1); /* not an integer: no limit to check */
        pg_exec(r.pg,
                "UPDATE codes SET definition = definition || '{\"per_customer_limit\": "
                "2}' WHERE code = 'CODEA'");
        expect_check(&r, "limits", 1);

        /* redis: the total, a customer, a key of a code PostgreSQL never saw,
         * and a value that is not a number. */
        snprintf(source, sizeof(source), "%stotal:CODEA", r.redis);
        redis_cmd(&r, "SET %s %s", source, "4");
        expect_check(&r, "redis", 0);
        redis_cmd(&r, "SET %s %s", source, "3");
        expect_check(&r, "redis", 1);
        snprintf(source, sizeof(source), "%scust:CODEA", r.redis);
        redis_cmd(&r, "HSET %s c1 %s", source, "3");
        expect_check(&r, "redis", 0);
        redis_cmd(&r, "HSET %s c1 %s", source, "2");
        snprintf(source, sizeof(source), "%stotal:CODEQ", r.redis);
        redis_cmd(&r, "SET %s %s", source, "1");
        expect_check(&r, "redis", 0);
        redis_cmd(&r, "SET %s %s", source, "x1");
        expect_check(&r, "redis", 0);
        redis_cmd(&r, "SET %s %s", source, "0");
        expect_check(&r, "redis", 1);

        /* --wait: unbalanced at the start, balanced 3 s later. */
        send_n(&r, T_RAW, 1, NULL);
        snprintf(path, sizeof(path), "/tmp/it-reconcile-wait-%d.out", (int)getpid());
        pid = spawn_reconcile(&r, "--wait 30 --only orders", path);
        it_sleep_ms(3000);
        send_n(&r, T_PRICED, 1, NULL);
        {
                int status = stop_pid(pid, 0, 40000);

                slurp(path, out, sizeof(out));
                ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                              "--wait did not end balanced: %d: %s", status, out);
                ck_assert_msg(strstr(out, "RECONCILED") && !strstr(out, "(1 attempt"),
                              "%s", out);
        }
        ck_assert_int_eq(run_reconcile(&r, "--wait 0", out, sizeof(out)), 0);

        /* And the DSN of a database without the schema: exit 2. */
        {
                rec_t bad = r;
                schema_t empty;

                make_schema(&empty, "rec_empty");
                bad.schema = empty;
                ck_assert_int_eq(run_reconcile(&bad, "", out, sizeof(out)), 2);
                ck_assert_msg(strstr(out, "promo-migrate"), "%s", out);
                drop_schema(&empty);
        }

        redis_cmd(&r, "DEL %s %s", source, source); /* total:CODEQ */
        snprintf(source, sizeof(source), "%stotal:CODEA", r.redis);
        snprintf(path, sizeof(path), "%scust:CODEA", r.redis);
        redis_cmd(&r, "DEL %s %s", source, path);
        redisFree(r.rc);
        rd_kafka_destroy(r.p);
        PQfinish(r.pg);
        drop_schema(&r.schema);
        it_delete_topics(cfg.kafka_brokers, topics, T_COUNT);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("audit");
        SRunner *sr;
        char err[256];
        int failed;
        size_t i;
        const struct {
                const char *name;
                const TTest *test;
        } cases[] = {
            {"values", rows_have_the_right_values},
            {"replay", replayed_events_stored_and_counted_once},
            {"refused", refused_row_becomes_a_dead_letter},
            {"outage", postgres_outage_loses_and_doubles_nothing},
            {"kill", sigkill_then_restart_exact},
            {"reconcile", reconcile_passes_and_fails},
        };

        if (po_config_load(&cfg, NULL, 0, err, sizeof(err))) {
                fprintf(stderr, "%s\n", err);
                return 1;
        }
        if (strncmp(cfg.pg_dsn, "postgres", 8) == 0) {
                fprintf(stderr,
                        "check_audit needs a key=value PROMO_PG_DSN, not a URI\n");
                return 1;
        }
        avro = po_avro_new(err, sizeof(err));
        if (!avro) {
                fprintf(stderr, "%s\n", err);
                return 1;
        }
        snprintf(run_id, sizeof(run_id), "%ld-%d", (long)time(NULL), (int)getpid());
        signal(SIGPIPE, SIG_IGN);
        /* One case per test, so CK_RUN_CASE=kill runs one alone. */
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                TCase *tc = tcase_create(cases[i].name);

                tcase_set_timeout(tc, 400);
                tcase_add_checked_fixture(tc, NULL, teardown);
                _tcase_add_test(tc, cases[i].test, 0, 0, 0, 1);
                suite_add_tcase(s, tc);
        }
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        po_avro_destroy(avro);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
