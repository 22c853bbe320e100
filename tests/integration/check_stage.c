/* The stage runner on the real broker (tests/integration/stage_echo.c as the
 * stage): a poison message goes to the DLQ while its partition keeps
 * flowing; a transient failure is retried and then succeeds, or ends in the
 * DLQ after the last retry; SIGKILL mid-stream and a restart lose nothing
 * and double nothing (counted by a read_committed consumer); SIGTERM drains
 * and exits 0. Every test uses topics of its own. */
#include <check.h>
#include <sys/prctl.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "po/avro.h"
#include "po/config.h"

#include "it.h"

/* produce() takes the payload template of each test, always a literal. */
#pragma GCC diagnostic ignored "-Wformat-nonliteral"

static po_config_t cfg;
static char run_id[64];

/* Names the test's topics: <prefix>.<run>.{in,in.retry.1,in.retry.2,out,dlq}. */
typedef struct topics {
        char in[128], r1[140], r2[140], out[128], dlq[128], group[128], txid[128];
} topics_t;

static void make_topics(topics_t *t, const char *name, int partitions)
{
        const char *names[5];
        int parts[5];
        size_t i;

        snprintf(t->in, sizeof(t->in), "it.%s.%s.in", run_id, name);
        snprintf(t->r1, sizeof(t->r1), "%s.retry.1", t->in);
        snprintf(t->r2, sizeof(t->r2), "%s.retry.2", t->in);
        snprintf(t->out, sizeof(t->out), "it.%s.%s.out", run_id, name);
        snprintf(t->dlq, sizeof(t->dlq), "it.%s.%s.dlq", run_id, name);
        snprintf(t->group, sizeof(t->group), "it-%s-%s", run_id, name);
        snprintf(t->txid, sizeof(t->txid), "it-%s-%s-tx", run_id, name);
        names[0] = t->in;
        names[1] = t->r1;
        names[2] = t->r2;
        names[3] = t->out;
        names[4] = t->dlq;
        for (i = 0; i < 5; i++)
                parts[i] = partitions;
        it_create_topics(cfg.kafka_brokers, names, parts, 5);
}

static size_t pad_to; /* produce(): values padded with '.' to this size (< 4096) */

static void produce(const char *topic, int partition, const char *fmt, int from, int to)
{
        rd_kafka_t *p = it_kafka(cfg.kafka_brokers, RD_KAFKA_PRODUCER, NULL);
        char buf[4096];
        int i;

        for (i = from; i < to; i++) {
                rd_kafka_resp_err_t e;
                size_t key_len, len;

                snprintf(buf, sizeof(buf), fmt, i);
                key_len = len = strlen(buf);
                if (pad_to > len && pad_to < sizeof(buf)) {
                        memset(buf + len, '.', pad_to - len);
                        len = pad_to;
                }
                do {
                        e = rd_kafka_producev(
                            p, RD_KAFKA_V_TOPIC(topic),
                            RD_KAFKA_V_PARTITION(partition < 0 ? RD_KAFKA_PARTITION_UA
                                                               : partition),
                            RD_KAFKA_V_KEY(buf, key_len), RD_KAFKA_V_VALUE(buf, len),
                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
                        if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                                rd_kafka_poll(p, 50);
                } while (e == RD_KAFKA_RESP_ERR__QUEUE_FULL);
                ck_assert_int_eq(e, 0);
        }
        ck_assert_int_eq(rd_kafka_flush(p, 30000), 0);
        rd_kafka_destroy(p);
}

static int stage_port;           /* the stage's health port; 0: none */
static const char *fail_commits; /* PROMO_ECHO_FAIL_COMMITS of the next start */
/* PROMO_STAGE_BATCH_BYTES of the next start; with it, batches never end by
 * count, window or linger (one minute each), only by their bytes */
static const char *batch_bytes;
/* PROMO_STAGE_KEEPUP_MS of the next start; with it, as with batch_bytes,
 * count, window and linger are a minute each */
static const char *keepup_ms;

static pid_t start_stage(const topics_t *t, const char *delays)
{
        char path[512], port[16];
        pid_t pid;

        snprintf(port, sizeof(port), "%d", stage_port);

        snprintf(path, sizeof(path), "%s/stage-echo", getenv("PROMO_BIN_DIR"));
        pid = fork();
        if (pid < 0) /* no Check call in a child: CK_FORK=no shares its messages */
                ck_abort_msg("fork failed");
        if (pid == 0) {
                /* A test that fails leaves no service behind. */
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                setenv("PROMO_ECHO_INPUT", t->in, 1);
                setenv("PROMO_ECHO_OUTPUT", t->out, 1);
                setenv("PROMO_ECHO_DLQ", t->dlq, 1);
                setenv("PROMO_ECHO_GROUP", t->group, 1);
                setenv("PROMO_ECHO_TXID", t->txid, 1);
                setenv("PROMO_STAGE_RETRY_DELAYS_MS", delays, 1);
                setenv("PROMO_STAGE_BATCH_MAX", "200", 1);
                setenv("PROMO_ECHO_HTTP_PORT", port, 1);
                if (keepup_ms)
                        setenv("PROMO_STAGE_KEEPUP_MS", keepup_ms, 1);
                if (batch_bytes || keepup_ms) {
                        if (batch_bytes)
                                setenv("PROMO_STAGE_BATCH_BYTES", batch_bytes, 1);
                        setenv("PROMO_STAGE_BATCH_MAX", "100000", 1);
                        setenv("PROMO_STAGE_BATCH_MS", "60000", 1);
                        setenv("PROMO_STAGE_LINGER_MS", "60000", 1);
                }
                if (fail_commits)
                        setenv("PROMO_ECHO_FAIL_COMMITS", fail_commits, 1);
                execl(path, path, (char *)NULL);
                _exit(127);
        }
        return pid;
}

static int stop_stage(pid_t pid, int sig, int timeout_ms)
{
        int status = -1;
        long long end = it_mono_ms() + timeout_ms;

        kill(pid, sig);
        while (it_mono_ms() < end) {
                if (waitpid(pid, &status, WNOHANG) == pid)
                        return status;
                it_sleep_ms(20);
        }
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        ck_abort_msg("stage did not exit within %d ms of signal %d", timeout_ms, sig);
        return status;
}

/* Consumes topic (read_committed) from the beginning until want messages
 * arrived or timeout; then, with settle_ms, goes on until nothing more came
 * for settle_ms (to see duplicates). counts[i] counts payloads "<prefix><i>". */
typedef struct tally {
        int total;
        int *counts;
        int n;
        char *last; /* a copy of the last payload, for inspection */
        size_t last_len;
} tally_t;

static void consume_settle(const char *topic, const char *fmt_prefix, tally_t *t,
                           int want, int timeout_ms, int settle_ms)
{
        char group[200];
        rd_kafka_t *c;
        rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
        long long end = it_mono_ms() + timeout_ms;
        size_t plen = strlen(fmt_prefix);

        snprintf(group, sizeof(group), "reader-%s-%lld", topic, it_mono_ms());
        c = it_kafka(cfg.kafka_brokers, RD_KAFKA_CONSUMER, group);
        rd_kafka_poll_set_consumer(c);
        rd_kafka_topic_partition_list_add(sub, topic, RD_KAFKA_PARTITION_UA);
        rd_kafka_subscribe(c, sub);
        rd_kafka_topic_partition_list_destroy(sub);
        long long last_seen = it_mono_ms();

        while (it_mono_ms() < end) {
                rd_kafka_message_t *m;

                if (t->total >= want &&
                    (settle_ms == 0 || it_mono_ms() - last_seen >= settle_ms))
                        break;
                m = rd_kafka_consumer_poll(c, 200);
                if (!m)
                        continue;
                last_seen = it_mono_ms();
                if (m->err) {
                        rd_kafka_message_destroy(m);
                        continue;
                }
                t->total++;
                if (m->len > plen && memcmp(m->payload, fmt_prefix, plen) == 0) {
                        char buf[32];
                        size_t l = m->len - plen < sizeof(buf) - 1 ? m->len - plen
                                                                   : sizeof(buf) - 1;
                        int i;

                        memcpy(buf, (const char *)m->payload + plen, l);
                        buf[l] = '\0';
                        i = (int)strtol(buf, NULL, 10);
                        if (i >= 0 && i < t->n)
                                t->counts[i]++;
                }
                /* Messages must not outlive their consumer: keep a copy. */
                free(t->last);
                t->last = malloc(m->len + 1);
                memcpy(t->last, m->payload ? m->payload : "", m->len);
                t->last_len = m->len;
                rd_kafka_message_destroy(m);
        }
        rd_kafka_consumer_close(c);
        rd_kafka_destroy(c);
}

static void consume(const char *topic, const char *fmt_prefix, tally_t *t, int want,
                    int timeout_ms)
{
        consume_settle(topic, fmt_prefix, t, want, timeout_ms, 0);
}

static void tally_init(tally_t *t, int n)
{
        memset(t, 0, sizeof(*t));
        t->n = n;
        t->counts = calloc((size_t)n, sizeof(int));
}

static void tally_release(tally_t *t)
{
        free(t->last);
        free(t->counts);
}

/* Each of the n messages "<prefix><i>" was seen exactly once. */
static void assert_exactly_once(const tally_t *t, int n)
{
        int i, missing = 0, doubled = 0;

        for (i = 0; i < n; i++) {
                missing += t->counts[i] == 0;
                doubled += t->counts[i] > 1;
        }
        ck_assert_msg(missing == 0 && doubled == 0 && t->total == n,
                      "read_committed saw %d messages: %d missing, %d doubled", t->total,
                      missing, doubled);
}

START_TEST(poison_goes_to_dlq_and_partition_flows)
{
        topics_t t;
        tally_t out, dlq;
        po_avro_t *avro;
        po_deadletter_t dl;
        char err[256];
        pid_t pid;
        int i;

        make_topics(&t, "poison", 1);
        produce(t.in, 0, "m%d", 0, 50);
        produce(t.in, 0, "poison-%d", 50, 51);
        produce(t.in, 0, "m%d", 51, 100);
        pid = start_stage(&t, "100,100");
        tally_init(&out, 100);
        consume(t.out, "m", &out, 99, 60000);
        ck_assert_int_eq(out.total, 99);
        for (i = 0; i < 100; i++)
                ck_assert_int_eq(out.counts[i], i == 50 ? 0 : 1);
        tally_init(&dlq, 1);
        consume(t.dlq, "", &dlq, 1, 30000);
        ck_assert_int_eq(dlq.total, 1);
        avro = po_avro_new(err, sizeof(err));
        ck_assert_msg(avro != NULL, "%s", err);
        ck_assert_msg(po_avro_decode_deadletter(avro, dlq.last, dlq.last_len, &dl, err,
                                                sizeof(err)) == PO_OK,
                      "%s", err);
        ck_assert_str_eq(dl.reason_code, "BAD_PAYLOAD");
        ck_assert_str_eq(dl.stage, "stage-echo");
        ck_assert_str_eq(dl.source_topic, t.in);
        ck_assert_int_eq(dl.offset, 50);
        ck_assert_int_eq(dl.attempts, 1);
        ck_assert_int_eq(dl.priority, 7);
        ck_assert_uint_eq(dl.original_value_len, 9);
        ck_assert_int_eq(memcmp(dl.original_value, "poison-50", 9), 0);
        po_deadletter_release(&dl);
        po_avro_destroy(avro);
        ck_assert_int_eq(stop_stage(pid, SIGTERM, 20000), 0);
        tally_release(&out);
        tally_release(&dlq);
}
END_TEST

START_TEST(transient_retried_then_succeeds_or_dead_letters)
{
        topics_t t;
        tally_t out, dlq;
        pid_t pid;

        make_topics(&t, "transient", 1);
        /* Fails on attempt 0, succeeds on attempt 1 (from retry.1). */
        produce(t.in, 0, "transient-1:%d", 0, 5);
        /* Fails on attempts 0, 1, 2: after retry.2 it is a dead letter. */
        produce(t.in, 0, "transient-9:%d", 5, 6);
        pid = start_stage(&t, "300,300");
        tally_init(&out, 6);
        consume(t.out, "transient-1:", &out, 5, 60000);
        ck_assert_int_eq(out.total, 5);
        tally_init(&dlq, 1);
        consume(t.dlq, "", &dlq, 1, 60000);
        ck_assert_int_eq(dlq.total, 1);
        {
                po_avro_t *avro;
                po_deadletter_t dl;
                char err[256];

                avro = po_avro_new(err, sizeof(err));
                ck_assert_msg(avro != NULL, "%s", err);
                ck_assert_int_eq(po_avro_decode_deadletter(avro, dlq.last, dlq.last_len,
                                                           &dl, err, sizeof(err)),
                                 PO_OK);
                ck_assert_str_eq(dl.reason_code, "DEPENDENCY_DOWN");
                ck_assert_int_eq(dl.attempts, 3);
                ck_assert_str_eq(dl.source_topic, t.in);
                ck_assert_int_eq(dl.offset, 5);
                ck_assert_int_ge(dl.last_failure_ms - dl.first_failure_ms, 500);
                po_deadletter_release(&dl);
                po_avro_destroy(avro);
        }
        ck_assert_int_eq(stop_stage(pid, SIGTERM, 20000), 0);
        tally_release(&out);
        tally_release(&dlq);
}
END_TEST

START_TEST(sigkill_mid_stream_loses_and_doubles_nothing)
{
        enum { N = 20000 };
        topics_t t;
        tally_t out, partial;
        pid_t pid;

        make_topics(&t, "kill", 3);
        produce(t.in, -1, "k%d", 0, N);
        pid = start_stage(&t, "100,100");
        /* Wait until some, not all, output is committed, then kill. */
        tally_init(&partial, N);
        consume(t.out, "k", &partial, 2000, 60000);
        ck_assert_int_ge(partial.total, 2000);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        pid = start_stage(&t, "100,100");
        tally_init(&out, N);
        /* After the N-th, wait 5 s more: a duplicate would show up now. */
        consume_settle(t.out, "k", &out, N, 120000, 5000);
        assert_exactly_once(&out, N);
        ck_assert_int_eq(stop_stage(pid, SIGTERM, 20000), 0);
        tally_release(&out);
        tally_release(&partial);
}
END_TEST

START_TEST(sigterm_drains_cleanly)
{
        enum { N = 5000 };
        topics_t t;
        tally_t out;
        pid_t pid;
        int i, status;

        make_topics(&t, "term", 2);
        produce(t.in, -1, "d%d", 0, N);
        pid = start_stage(&t, "100,100");
        it_sleep_ms(3000);
        status = stop_stage(pid, SIGTERM, 15000);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exit status %d",
                      status);
        /* What was committed, plus a restart for the rest: exactly N. */
        pid = start_stage(&t, "100,100");
        tally_init(&out, N);
        consume_settle(t.out, "d", &out, N, 60000, 5000);
        ck_assert_int_eq(out.total, N);
        for (i = 0; i < N; i++)
                ck_assert_int_eq(out.counts[i], 1);
        ck_assert_int_eq(stop_stage(pid, SIGTERM, 15000), 0);
        tally_release(&out);
}
END_TEST

/* The sum of the series on the stage's /metrics whose line starts with
 * prefix (name and labels); -1 when there is none (yet). */
static long long metric_sum(const char *prefix)
{
        static char body[65536];
        size_t n = strlen(prefix);
        long long sum = 0;
        int seen = 0;
        char *line;

        if (it_http_get(stage_port, "/metrics", body, sizeof(body)) != 200)
                return -1;
        for (line = strtok(body, "\n"); line; line = strtok(NULL, "\n"))
                if (strncmp(line, prefix, n) == 0) {
                        sum += atoll(strrchr(line, ' ') + 1);
                        seen = 1;
                }
        return seen ? sum : -1;
}

/* The stage's transactions that ended so (result "committed" or "aborted"). */
static long long transactions(const char *result)
{
        char prefix[128];

        snprintf(prefix, sizeof(prefix),
                 "promo_transactions_total{service=\"stage-echo\",result=\"%s\"}",
                 result);
        return metric_sum(prefix);
}

/* promo_consumer_lag is published at least one 5 s interval after the start. */
static long long lag_sum(void)
{
        return metric_sum("promo_consumer_lag{");
}

static long long settled_lag(void)
{
        long long lag = -1;
        int i;

        for (i = 0; i < 150; i++) { /* up to 15 s */
                lag = lag_sum();
                if (lag == 0)
                        break;
                it_sleep_ms(100);
        }
        return lag;
}

/* Consumer lag is what is left to consume: 0 once everything is consumed,
 * and still 0 after a restart with nothing new (a partition with no position
 * yet counts from the committed offset, not from the start of the log). */
START_TEST(consumer_lag_counts_from_the_committed_offset)
{
        enum { N = 300 };
        topics_t t;
        tally_t out;
        pid_t pid;

        stage_port = it_free_port();
        make_topics(&t, "lag", 2);
        produce(t.in, -1, "l%d", 0, N);
        pid = start_stage(&t, "100,100");
        tally_init(&out, N);
        consume_settle(t.out, "l", &out, N, 60000, 2000);
        ck_assert_int_eq(out.total, N);
        ck_assert_int_eq(settled_lag(), 0);
        ck_assert_int_eq(stop_stage(pid, SIGTERM, 15000), 0);
        /* Restarted with nothing new: no position anywhere. */
        pid = start_stage(&t, "100,100");
        it_sleep_ms(6000); /* one lag interval */
        ck_assert_int_eq(settled_lag(), 0);
        /* Input that came while it was stopped is consumed: back to 0. */
        ck_assert_int_eq(stop_stage(pid, SIGTERM, 15000), 0);
        produce(t.in, 0, "m%d", 0, 40);
        pid = start_stage(&t, "100,100");
        ck_assert_int_eq(settled_lag(), 0);
        ck_assert_int_eq(stop_stage(pid, SIGTERM, 15000), 0);
        stage_port = 0;
        tally_release(&out);
}
END_TEST

/* A batch whose before_commit fails (a database write that failed) is
 * aborted and consumed again: nothing is lost or doubled. */
START_TEST(failed_before_commit_aborts_and_replays)
{
        enum { N = 3000 };
        topics_t t;
        tally_t out;
        pid_t pid;
        long long aborted;

        stage_port = it_free_port();
        fail_commits = "4";
        make_topics(&t, "bcfail", 3);
        produce(t.in, -1, "b%d", 0, N);
        pid = start_stage(&t, "100,100");
        tally_init(&out, N);
        consume_settle(t.out, "b", &out, N, 120000, 3000);
        assert_exactly_once(&out, N);
        aborted = transactions("aborted");
        ck_assert_int_eq(aborted, 4);
        ck_assert_int_eq(stop_stage(pid, SIGTERM, 20000), 0);
        fail_commits = NULL;
        stage_port = 0;
        tally_release(&out);
}
END_TEST

/* A batch commits once it holds PROMO_STAGE_BATCH_BYTES of input, whatever
 * its count and window allow: with batches otherwise open for a minute,
 * most of 300 messages of 2 KiB (600 KiB against 64 KiB batches) are
 * committed within seconds, in several transactions; SIGTERM commits the
 * rest, each exactly once. */
START_TEST(batch_bytes_end_a_batch)
{
        enum { N = 300 };
        topics_t t;
        tally_t out;
        pid_t pid;
        long long committed;

        stage_port = it_free_port();
        batch_bytes = "65536";
        pad_to = 2048;
        make_topics(&t, "bytes", 1);
        produce(t.in, 0, "y%d", 0, N);
        pid = start_stage(&t, "100,100");
        tally_init(&out, N);
        consume_settle(t.out, "y", &out, N - 64, 30000, 0);
        ck_assert_msg(out.total >= N - 64, "only %d of %d committed before the window",
                      out.total, N);
        committed = transactions("committed");
        ck_assert_msg(committed >= 8, "%lld transactions for 600 KiB", committed);
        ck_assert_int_eq(stop_stage(pid, SIGTERM, 20000), 0);
        tally_release(&out);
        tally_init(&out, N);
        consume_settle(t.out, "y", &out, N, 30000, 2000);
        assert_exactly_once(&out, N);
        batch_bytes = NULL;
        pad_to = 0;
        stage_port = 0;
        tally_release(&out);
}
END_TEST

/* A stage that keeps up with its streamed input (stage-echo's input is a
 * stream: committed_input 0) commits within PROMO_STAGE_KEEPUP_MS, however
 * long its window and linger: the orders it took wait no longer. */
START_TEST(keepup_window_bounds_the_wait)
{
        enum { N = 50 };
        topics_t t;
        tally_t out;
        pid_t pid;
        long long t0;

        stage_port = it_free_port();
        keepup_ms = "300";
        make_topics(&t, "keepup", 1);
        pid = start_stage(&t, "100,100");
        it_sleep_ms(3000); /* joined and idle */
        produce(t.in, 0, "k%d", 0, N);
        t0 = it_mono_ms();
        tally_init(&out, N);
        consume(t.out, "k", &out, N, 30000);
        assert_exactly_once(&out, N);
        ck_assert_msg(it_mono_ms() - t0 < 15000, "committed after %lld ms",
                      it_mono_ms() - t0);
        ck_assert_int_eq(stop_stage(pid, SIGTERM, 20000), 0);
        keepup_ms = NULL;
        stage_port = 0;
        tally_release(&out);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("stage");
        TCase *tc;
        SRunner *sr;
        char err[256];
        int failed;

        if (po_config_load(&cfg, NULL, 0, err, sizeof(err))) {
                fprintf(stderr, "%s\n", err);
                return 1;
        }
        snprintf(run_id, sizeof(run_id), "%ld-%d", (long)time(NULL), (int)getpid());
        /* One case per test, so CK_RUN_CASE=kill runs one alone. */
        {
                const struct {
                        const char *name;
                        const TTest *test;
                } cases[] = {
                    {"poison", poison_goes_to_dlq_and_partition_flows},
                    {"transient", transient_retried_then_succeeds_or_dead_letters},
                    {"kill", sigkill_mid_stream_loses_and_doubles_nothing},
                    {"term", sigterm_drains_cleanly},
                    {"bcfail", failed_before_commit_aborts_and_replays},
                    {"lag", consumer_lag_counts_from_the_committed_offset},
                    {"bytes", batch_bytes_end_a_batch},
                    {"keepup", keepup_window_bounds_the_wait},
                };
                size_t i;

                for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                        tc = tcase_create(cases[i].name);
                        tcase_set_timeout(tc, 300);
                        _tcase_add_test(tc, cases[i].test, 0, 0, 0, 1);
                        suite_add_tcase(s, tc);
                }
        }
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
