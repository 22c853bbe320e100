/* The Kafka stage runner (see po/stage.h and docs/stage-runner.md). */
#include "po/stage.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "po/avro.h"
#include "po/log.h"

#define STAGE_POLL_MS 50
/* Retriable failures to send a batch's offsets tolerated before the batch
 * is aborted and consumed again. */
#define STAGE_TXN_RETRIES 50
#define STAGE_TXN_TIMEOUT_MS 30000
#define STAGE_LAG_INTERVAL_MS 5000
#define STAGE_MAX_PAUSED 256

/* An output emitted by the callback, produced once it returns OK. */
typedef struct pending {
        char *topic;
        void *key, *value;
        size_t key_len, value_len;
        int has_key;
        rd_kafka_headers_t *headers;
} pending_t;

/* A retry partition waiting for its next message's delay to pass. */
typedef struct paused {
        char topic[256];
        int32_t partition;
        int64_t resume_ms;
} paused_t;

struct po_stage {
        po_service_t *svc;
        po_metrics_t *metrics;
        po_stage_conf_t conf;
        char input[256], group[256], dlq[256], txid[256];
        char retry_topic[PO_STAGE_MAX_RETRIES][280];
        rd_kafka_t *consumer;
        rd_kafka_t *producer;
        po_avro_t *avro;
        int in_txn;
        int fatal;
        long long txn_started_ms;
        long long last_msg_ms; /* when the open transaction last took a message */
        int batch_count;
        long long batch_bytes; /* of the open batch's input messages */
        int backlog;           /* the last poll stopped with messages left to take */
        /* First and next offsets of each partition in the open transaction. */
        rd_kafka_topic_partition_list_t *batch_start;
        rd_kafka_topic_partition_list_t *batch_next;
        paused_t paused[STAGE_MAX_PAUSED];
        int npaused;
        long long next_lag_ms;
        /* The message being processed, for po_stage_emit. */
        int attempt;
        int emitting;
        int emit_failed;
        pending_t *pending;
        size_t npending, cap_pending;
        po_dynbuf_t buf;
        /* Bumped by every rebalance: a group polled across one is dropped. */
        unsigned rebalances;
        /* The messages of one poll, and those of them to process. */
        rd_kafka_message_t *polled[PO_STAGE_GROUP_MAX];
        rd_kafka_message_t *todo[PO_STAGE_GROUP_MAX];
        long long group_us; /* when the poll returned the group's first message */
};

static long long now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long now_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t wall_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int conf_set(rd_kafka_conf_t *c, const char *k, const char *v, char *errstr,
                    size_t errstr_size)
{
        return rd_kafka_conf_set(c, k, v, errstr, errstr_size) == RD_KAFKA_CONF_OK ? 0
                                                                                   : -1;
}

/* Applies "key=value,key=value" librdkafka properties from the environment
 * variable name (PROMO_KAFKA_PRODUCER_CONF, PROMO_KAFKA_CONSUMER_CONF) over
 * the runner's defaults: for tuning without a rebuild. */
static int env_conf(rd_kafka_conf_t *c, const char *name, char *errstr, size_t size)
{
        const char *v = getenv(name);
        char buf[1024], *save = NULL, *tok;

        if (!v || !*v)
                return 0;
        if (strlen(v) >= sizeof(buf)) {
                snprintf(errstr, size, "%s is longer than %zu bytes", name,
                         sizeof(buf) - 1);
                return -1;
        }
        snprintf(buf, sizeof(buf), "%s", v);
        for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                char *eq = strchr(tok, '=');
                char why[256];

                if (!eq || eq == tok) {
                        snprintf(errstr, size, "%s: \"%s\" is not key=value", name, tok);
                        return -1;
                }
                *eq = '\0';
                if (rd_kafka_conf_set(c, tok, eq + 1, why, sizeof(why)) !=
                    RD_KAFKA_CONF_OK) {
                        snprintf(errstr, size, "%s: %s", name, why);
                        return -1;
                }
        }
        return 0;
}

/* Parses a positive integer environment variable into *out (kept when unset). */
static int env_int(const char *name, int min, int max, int *out, char *errstr,
                   size_t size)
{
        const char *v = getenv(name);
        char *end = NULL;
        long l;

        if (!v || !*v)
                return 0;
        errno = 0;
        l = strtol(v, &end, 10);
        if (errno || *end || l < min || l > max) {
                snprintf(errstr, size, "%s must be an integer %d..%d, got \"%s\"", name,
                         min, max, v);
                return -1;
        }
        *out = (int)l;
        return 0;
}

static int env_delays(po_stage_conf_t *c, char *errstr, size_t size)
{
        const char *v = getenv("PROMO_STAGE_RETRY_DELAYS_MS");
        char buf[256], *save = NULL, *tok, *end;
        int n = 0;

        if (!v || !*v)
                return 0;
        snprintf(buf, sizeof(buf), "%s", v);
        for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                long l;

                errno = 0;
                l = strtol(tok, &end, 10);
                if (errno || *end || l < 0 || l > 86400000 || n == PO_STAGE_MAX_RETRIES) {
                        snprintf(errstr, size,
                                 "PROMO_STAGE_RETRY_DELAYS_MS must be up to %d "
                                 "comma-separated "
                                 "delays 0..86400000, got \"%s\"",
                                 PO_STAGE_MAX_RETRIES, v);
                        return -1;
                }
                c->retry_delay_ms[n++] = (int)l;
        }
        c->retries = n;
        return 0;
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque);

static void pending_clear(po_stage_t *st);

static rd_kafka_t *make_consumer(po_stage_t *st, char *errstr, size_t size)
{
        rd_kafka_conf_t *c = rd_kafka_conf_new();
        rd_kafka_t *rk;

        if (conf_set(c, "bootstrap.servers", po_service_config(st->svc)->kafka_brokers,
                     errstr, size) ||
            conf_set(c, "group.id", st->group, errstr, size) ||
            conf_set(c, "isolation.level", "read_committed", errstr, size) ||
            conf_set(c, "enable.auto.commit", "false", errstr, size) ||
            conf_set(c, "enable.auto.offset.store", "false", errstr, size) ||
            conf_set(c, "auto.offset.reset", "earliest", errstr, size) ||
            conf_set(c, "session.timeout.ms", "10000", errstr, size) ||
            conf_set(c, "max.poll.interval.ms", "60000", errstr, size) ||
            conf_set(c, "client.id", st->txid, errstr, size) ||
            /* A stream of single produces: fetches of at least 64 KiB or
             * every 5 ms, not one per few records (bigger groups per poll
             * and per transaction: 7,272 -> 8,005 orders/s on the 2-core
             * machine). Input written in transactions arrives a batch at a
             * time, at each commit: a long poll that the commit wakes. The
             * 5 ms poll cost the broker 4 % of a core per idle consumer,
             * and made the stage wait for the next poll after a commit
             * (docs/BENCHMARKS.md, "Pipeline: long polls"). */
            conf_set(c, "fetch.min.bytes", st->conf.committed_input ? "1" : "65536",
                     errstr, size) ||
            conf_set(c, "fetch.wait.max.ms", st->conf.committed_input ? "100" : "5",
                     errstr, size) ||
            env_conf(c, "PROMO_KAFKA_CONSUMER_CONF", errstr, size)) {
                rd_kafka_conf_destroy(c);
                return NULL;
        }
        rd_kafka_conf_set_rebalance_cb(c, on_rebalance);
        rd_kafka_conf_set_opaque(c, st);
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, errstr, size);
        if (!rk)
                rd_kafka_conf_destroy(c);
        return rk;
}

static rd_kafka_t *make_producer(po_stage_t *st, char *errstr, size_t size)
{
        rd_kafka_conf_t *c = rd_kafka_conf_new();
        rd_kafka_t *rk;

        if (conf_set(c, "bootstrap.servers", po_service_config(st->svc)->kafka_brokers,
                     errstr, size) ||
            conf_set(c, "transactional.id", st->txid, errstr, size) ||
            conf_set(c, "transaction.timeout.ms", "60000", errstr, size) ||
            conf_set(c, "linger.ms", "2", errstr, size) ||
            /* No compression: orders are small, a 2 ms linger makes small
             * batches, and lz4 costs CPU in every client and in the broker
             * (which decompresses to validate); on the 2-core machine it
             * cost a sixth of the pipeline's throughput (docs/BENCHMARKS.md).
             * Across a slow network, PROMO_KAFKA_PRODUCER_CONF=
             * compression.type=lz4. */
            conf_set(c, "compression.type", "none", errstr, size) ||
            env_conf(c, "PROMO_KAFKA_PRODUCER_CONF", errstr, size)) {
                rd_kafka_conf_destroy(c);
                return NULL;
        }
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, errstr, size);
        if (!rk)
                rd_kafka_conf_destroy(c);
        return rk;
}

po_stage_t *po_stage_new(po_service_t *svc, const po_stage_conf_t *conf, char *errstr,
                         size_t errstr_size)
{
        po_stage_t *st = calloc(1, sizeof(*st));
        const char *name = po_service_name(svc);
        const char *inst = getenv("PROMO_INSTANCE");
        const char *group = getenv("PROMO_STAGE_GROUP");
        rd_kafka_topic_partition_list_t *topics = NULL;
        rd_kafka_resp_err_t err;
        int i;

        if (!st) {
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        st->svc = svc;
        st->metrics = po_service_metrics(svc);
        st->conf = *conf;
        po_dynbuf_init(&st->buf, 64u << 20);
        if (!conf->input_topic || !conf->process) {
                snprintf(errstr, errstr_size,
                         "a stage needs an input topic and a callback");
                goto error;
        }
        if (st->conf.retries == 0 && st->conf.retry_delay_ms[0] == 0) {
                st->conf.retries = 2;
                st->conf.retry_delay_ms[0] = 1000;
                st->conf.retry_delay_ms[1] = 10000;
        }
        if (st->conf.batch_max <= 0)
                st->conf.batch_max = 4000;
        if (st->conf.batch_bytes <= 0)
                st->conf.batch_bytes = 64 << 20;
        if (st->conf.batch_ms <= 0)
                st->conf.batch_ms = 100;
        /* A stream (orders.raw) never drains for linger_ms while fetches
         * keep coming every few ms, so while the stage keeps up its window is
         * what bounds a message's wait: 30 ms. Under a backlog the wait is
         * the backlog's, and longer windows (batch_ms) mean fewer commits.
         * Input written in transactions comes in bursts that drain and
         * commit at linger_ms. */
        if (st->conf.keepup_ms <= 0)
                st->conf.keepup_ms = st->conf.committed_input ? 0 : 30;
        if (st->conf.linger_ms <= 0)
                st->conf.linger_ms = 5;
        if (env_delays(&st->conf, errstr, errstr_size) ||
            env_int("PROMO_STAGE_BATCH_MAX", 1, 100000, &st->conf.batch_max, errstr,
                    errstr_size) ||
            env_int("PROMO_STAGE_BATCH_BYTES", 65536, 1 << 30, &st->conf.batch_bytes,
                    errstr, errstr_size) ||
            env_int("PROMO_STAGE_BATCH_MS", 1, 60000, &st->conf.batch_ms, errstr,
                    errstr_size) ||
            env_int("PROMO_STAGE_KEEPUP_MS", 0, 60000, &st->conf.keepup_ms, errstr,
                    errstr_size) ||
            env_int("PROMO_STAGE_LINGER_MS", 0, 60000, &st->conf.linger_ms, errstr,
                    errstr_size))
                goto error;
        if (st->conf.retries < 0 || st->conf.retries > PO_STAGE_MAX_RETRIES) {
                snprintf(errstr, errstr_size, "retries must be 0..%d",
                         PO_STAGE_MAX_RETRIES);
                goto error;
        }
        snprintf(st->input, sizeof(st->input), "%s", conf->input_topic);
        if (group && *group) /* e.g. a test's own group */
                snprintf(st->group, sizeof(st->group), "%s", group);
        else if (conf->group_id)
                snprintf(st->group, sizeof(st->group), "%s", conf->group_id);
        else
                snprintf(st->group, sizeof(st->group), "promo-%s", name);
        if (conf->dlq_topic)
                snprintf(st->dlq, sizeof(st->dlq), "%s", conf->dlq_topic);
        else
                snprintf(st->dlq, sizeof(st->dlq), "%s.dlq", name);
        if (conf->transactional_id)
                snprintf(st->txid, sizeof(st->txid), "%s", conf->transactional_id);
        else
                snprintf(st->txid, sizeof(st->txid), "promo-%s-%s", name,
                         inst && *inst ? inst : "0");
        st->conf.input_topic = st->input;
        st->conf.group_id = st->group;
        st->conf.dlq_topic = st->dlq;
        st->conf.transactional_id = st->txid;
        for (i = 0; i < st->conf.retries; i++)
                snprintf(st->retry_topic[i], sizeof(st->retry_topic[i]), "%s.retry.%d",
                         st->input, i + 1);

        st->avro = po_avro_new(errstr, errstr_size);
        if (!st->avro)
                goto error;
        st->consumer = make_consumer(st, errstr, errstr_size);
        if (!st->consumer)
                goto error;
        st->producer = make_producer(st, errstr, errstr_size);
        if (!st->producer)
                goto error;
        st->batch_start = rd_kafka_topic_partition_list_new(16);
        st->batch_next = rd_kafka_topic_partition_list_new(16);
        topics = rd_kafka_topic_partition_list_new(1 + st->conf.retries);
        rd_kafka_topic_partition_list_add(topics, st->input, RD_KAFKA_PARTITION_UA);
        for (i = 0; conf->extra_topics && conf->extra_topics[i]; i++)
                rd_kafka_topic_partition_list_add(topics, conf->extra_topics[i],
                                                  RD_KAFKA_PARTITION_UA);
        for (i = 0; i < st->conf.retries; i++)
                rd_kafka_topic_partition_list_add(topics, st->retry_topic[i],
                                                  RD_KAFKA_PARTITION_UA);
        err = rd_kafka_subscribe(st->consumer, topics);
        rd_kafka_topic_partition_list_destroy(topics);
        if (err) {
                snprintf(errstr, errstr_size, "subscribe: %s", rd_kafka_err2str(err));
                goto error;
        }
        po_service_set_work_ready(svc, 0, "transactions not initialised yet");
        return st;

error:
        po_stage_destroy(st);
        return NULL;
}

void po_stage_destroy(po_stage_t *st)
{
        if (!st)
                return;
        if (st->consumer) {
                rd_kafka_consumer_close(st->consumer);
                rd_kafka_destroy(st->consumer);
        }
        if (st->producer)
                rd_kafka_destroy(st->producer);
        if (st->batch_start)
                rd_kafka_topic_partition_list_destroy(st->batch_start);
        if (st->batch_next)
                rd_kafka_topic_partition_list_destroy(st->batch_next);
        po_avro_destroy(st->avro);
        po_dynbuf_release(&st->buf);
        pending_clear(st);
        free(st->pending);
        free(st);
}

int po_stage_serve(po_service_t *svc, const po_stage_conf_t *conf)
{
        char errstr[512];
        po_stage_t *st = po_stage_new(svc, conf, errstr, sizeof(errstr));
        int status;

        if (!st) {
                po_log_error("%s", errstr);
                return 2;
        }
        po_service_probe(svc);
        status = po_stage_run(st);
        po_stage_destroy(st);
        return status;
}

int po_stage_attempt(const po_stage_t *st)
{
        return st->attempt;
}

/* Header value as a NUL-terminated string in buf; 0 when absent or too long. */
static int hdr_str(rd_kafka_headers_t *h, const char *name, char *buf, size_t size)
{
        const void *v;
        size_t len;

        if (!h || rd_kafka_header_get_last(h, name, &v, &len) || !v || len >= size)
                return 0;
        memcpy(buf, v, len);
        buf[len] = '\0';
        return 1;
}

static int64_t hdr_i64(rd_kafka_headers_t *h, const char *name, int64_t def)
{
        char buf[32], *end = NULL;
        long long v;

        if (!hdr_str(h, name, buf, sizeof(buf)))
                return def;
        errno = 0;
        v = strtoll(buf, &end, 10);
        return errno || *end ? def : (int64_t)v;
}

static int is_retry_topic(const po_stage_t *st, const char *topic)
{
        int i;

        for (i = 0; i < st->conf.retries; i++)
                if (strcmp(topic, st->retry_topic[i]) == 0)
                        return 1;
        return 0;
}

static void labels_topic(char *buf, size_t size, const char *key, const char *value)
{
        snprintf(buf, size, "%s=\"%s\"", key, value);
}

/* Produces one message in the open transaction; takes headers in every case. */
static po_err_t produce(po_stage_t *st, const char *topic, const void *key,
                        size_t key_len, const void *value, size_t value_len,
                        rd_kafka_headers_t *headers)
{
        rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
        char labels[300];
        int tries;

        for (tries = 0; tries < 100; tries++) {
                err = rd_kafka_producev(st->producer, RD_KAFKA_V_TOPIC(topic),
                                        RD_KAFKA_V_KEY((void *)key, key_len),
                                        RD_KAFKA_V_VALUE((void *)value, value_len),
                                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                        RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_END);
                if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                        break;
                rd_kafka_poll(st->producer, 10);
        }
        if (err) {
                /* On failure the headers were not taken over. */
                if (headers)
                        rd_kafka_headers_destroy(headers);
                po_log_error("produce to %s: %s", topic, rd_kafka_err2str(err));
                st->emit_failed = 1;
                return PO_ERR_DEPENDENCY;
        }
        labels_topic(labels, sizeof(labels), "topic", topic);
        po_metrics_add(st->metrics, "promo_messages_out_total",
                       "Messages produced, by topic.", labels, 1);
        return PO_OK;
}

static void pending_clear(po_stage_t *st)
{
        size_t i;

        for (i = 0; i < st->npending; i++) {
                free(st->pending[i].topic);
                free(st->pending[i].key);
                free(st->pending[i].value);
                if (st->pending[i].headers)
                        rd_kafka_headers_destroy(st->pending[i].headers);
        }
        st->npending = 0;
}

/* Outputs wait until the callback returns OK: a failing callback's outputs
 * are dropped, so a message is either processed whole or routed whole. */
po_err_t po_stage_emit(po_stage_t *st, const char *topic, const void *key, size_t key_len,
                       const void *value, size_t value_len, rd_kafka_headers_t *headers)
{
        pending_t *p;

        if (!st->emitting)
                goto error;
        if (st->npending == st->cap_pending) {
                size_t cap = st->cap_pending ? st->cap_pending * 2 : 8;
                pending_t *np = realloc(st->pending, cap * sizeof(*np));

                if (!np)
                        goto error;
                st->pending = np;
                st->cap_pending = cap;
        }
        p = &st->pending[st->npending];
        memset(p, 0, sizeof(*p));
        p->topic = strdup(topic);
        p->key = key_len ? malloc(key_len) : NULL;
        p->value = malloc(value_len ? value_len : 1);
        if (!p->topic || (key_len && !p->key) || !p->value) {
                free(p->topic);
                free(p->key);
                free(p->value);
                goto error;
        }
        if (key_len)
                memcpy(p->key, key, key_len);
        if (value_len)
                memcpy(p->value, value, value_len);
        p->has_key = key != NULL;
        p->key_len = key_len;
        p->value_len = value_len;
        p->headers = headers;
        st->npending++;
        return PO_OK;

error:
        if (headers)
                rd_kafka_headers_destroy(headers);
        return st->emitting ? PO_ERR_NOMEM : PO_ERR_INVALID_ARG;
}

static void pending_produce(po_stage_t *st)
{
        size_t i;

        for (i = 0; i < st->npending; i++) {
                pending_t *p = &st->pending[i];

                produce(st, p->topic, p->has_key ? p->key : NULL, p->key_len, p->value,
                        p->value_len, p->headers);
                p->headers = NULL; /* taken by produce */
        }
        pending_clear(st);
}

/* Copies the message's headers without the runner's own. */
static rd_kafka_headers_t *copy_user_headers(const rd_kafka_message_t *msg)
{
        rd_kafka_headers_t *in = NULL, *out;
        const char *name;
        const void *v;
        size_t len, i;

        if (rd_kafka_message_headers(msg, &in) || !in)
                return rd_kafka_headers_new(8);
        out = rd_kafka_headers_new(rd_kafka_header_cnt(in) + 8);
        for (i = 0; !rd_kafka_header_get_all(in, i, &name, &v, &len); i++)
                if (strncmp(name, "promo-", 6) != 0)
                        rd_kafka_header_add(out, name, -1, v, (ssize_t)len);
        return out;
}

static void hdr_set_i64(rd_kafka_headers_t *h, const char *name, int64_t v)
{
        char buf[32];

        snprintf(buf, sizeof(buf), "%" PRId64, v);
        rd_kafka_header_remove(h, name);
        rd_kafka_header_add(h, name, -1, buf, -1);
}

static void hdr_set_str(rd_kafka_headers_t *h, const char *name, const char *v)
{
        rd_kafka_header_remove(h, name);
        rd_kafka_header_add(h, name, -1, v, -1);
}

/* The original coordinates of a message: its own, or those a retry carried. */
static void source_of(const rd_kafka_message_t *msg, rd_kafka_headers_t *h, char *topic,
                      size_t size, int32_t *partition, int64_t *offset)
{
        if (hdr_str(h, PO_HDR_SOURCE_TOPIC, topic, size)) {
                *partition = (int32_t)hdr_i64(h, PO_HDR_SOURCE_PARTITION, -1);
                *offset = hdr_i64(h, PO_HDR_SOURCE_OFFSET, -1);
                return;
        }
        snprintf(topic, size, "%s", rd_kafka_topic_name(msg->rkt));
        *partition = msg->partition;
        *offset = msg->offset;
}

static void send_dead_letter(po_stage_t *st, const rd_kafka_message_t *msg,
                             rd_kafka_headers_t *in_h, const po_stage_failure_t *fail,
                             int attempts)
{
        po_deadletter_t dl;
        po_header_t hdrs[64];
        rd_kafka_headers_t *user = copy_user_headers(msg), *out_h;
        char topic[256], err[256], labels[128];
        const char *name;
        const void *v;
        size_t len, i, n = 0;
        int64_t now = wall_ms();

        memset(&dl, 0, sizeof(dl));
        source_of(msg, in_h, topic, sizeof(topic), &dl.partition, &dl.offset);
        for (i = 0; n < 64 && !rd_kafka_header_get_all(user, i, &name, &v, &len); i++) {
                hdrs[n].key = name;
                hdrs[n].value = v;
                hdrs[n].value_len = len;
                hdrs[n].has_value = v != NULL;
                n++;
        }
        dl.stage = po_service_name(st->svc);
        dl.source_topic = topic;
        dl.reason_code = fail->reason[0] ? fail->reason : "UNSPECIFIED";
        dl.error = fail->error;
        dl.attempts = attempts;
        dl.first_failure_ms = hdr_i64(in_h, PO_HDR_FIRST_FAILURE, now);
        dl.last_failure_ms = now;
        dl.priority = fail->priority;
        dl.original_key = msg->key;
        dl.original_key_len = msg->key_len;
        dl.has_original_key = msg->key != NULL;
        dl.original_value = msg->payload ? msg->payload : "";
        dl.original_value_len = msg->len;
        dl.headers = hdrs;
        dl.header_count = n;
        po_dynbuf_reset(&st->buf);
        if (po_avro_encode_deadletter(st->avro, &dl, &st->buf, err, sizeof(err))) {
                /* Cannot happen for well-formed strings; never lose the message. */
                po_log_error("dead letter encoding failed (%s); sending the raw message",
                             err);
                po_dynbuf_reset(&st->buf);
                po_dynbuf_add(&st->buf, dl.original_value, dl.original_value_len);
        }
        out_h = rd_kafka_headers_new(4);
        hdr_set_str(out_h, PO_HDR_REASON, dl.reason_code);
        hdr_set_i64(out_h, PO_HDR_PRIORITY, dl.priority);
        hdr_set_str(out_h, PO_HDR_SOURCE_TOPIC, topic);
        rd_kafka_headers_destroy(user);
        produce(st, st->dlq, msg->key, msg->key_len, st->buf.data, st->buf.len, out_h);
        snprintf(labels, sizeof(labels), "reason=\"%s\"", dl.reason_code);
        po_metrics_add(st->metrics, "promo_dead_letters_total",
                       "Messages sent to the dead-letter topic, by reason.", labels, 1);
        po_log_warn("dead letter: %s[%" PRId32 "]@%" PRId64 " %s: %s (attempts %d)",
                    topic, dl.partition, dl.offset, dl.reason_code, fail->error,
                    attempts);
}

static void send_retry(po_stage_t *st, const rd_kafka_message_t *msg,
                       rd_kafka_headers_t *in_h, const po_stage_failure_t *fail,
                       int attempt)
{
        rd_kafka_headers_t *h = copy_user_headers(msg);
        char topic[256], labels[128];
        int32_t partition;
        int64_t offset, now = wall_ms();

        source_of(msg, in_h, topic, sizeof(topic), &partition, &offset);
        hdr_set_i64(h, PO_HDR_ATTEMPTS, attempt);
        hdr_set_i64(h, PO_HDR_FIRST_FAILURE, hdr_i64(in_h, PO_HDR_FIRST_FAILURE, now));
        hdr_set_i64(h, PO_HDR_NOT_BEFORE, now + st->conf.retry_delay_ms[attempt - 1]);
        hdr_set_str(h, PO_HDR_REASON, fail->reason[0] ? fail->reason : "UNSPECIFIED");
        hdr_set_str(h, PO_HDR_ERROR, fail->error);
        hdr_set_str(h, PO_HDR_SOURCE_TOPIC, topic);
        hdr_set_i64(h, PO_HDR_SOURCE_PARTITION, partition);
        hdr_set_i64(h, PO_HDR_SOURCE_OFFSET, offset);
        hdr_set_i64(h, PO_HDR_PRIORITY, fail->priority);
        produce(st, st->retry_topic[attempt - 1], msg->key, msg->key_len, msg->payload,
                msg->len, h);
        snprintf(labels, sizeof(labels), "reason=\"%s\"",
                 fail->reason[0] ? fail->reason : "UNSPECIFIED");
        po_metrics_add(st->metrics, "promo_retries_total",
                       "Messages sent to a retry topic, by reason.", labels, 1);
}

/* Records msg's offset in the open transaction's offset lists. */
static void track_offset(po_stage_t *st, const rd_kafka_message_t *msg)
{
        const char *topic = rd_kafka_topic_name(msg->rkt);
        rd_kafka_topic_partition_t *p;

        p = rd_kafka_topic_partition_list_find(st->batch_start, topic, msg->partition);
        if (!p)
                rd_kafka_topic_partition_list_add(st->batch_start, topic, msg->partition)
                    ->offset = msg->offset;
        p = rd_kafka_topic_partition_list_find(st->batch_next, topic, msg->partition);
        if (!p)
                p = rd_kafka_topic_partition_list_add(st->batch_next, topic,
                                                      msg->partition);
        p->offset = msg->offset + 1;
}

static void clear_batch(po_stage_t *st)
{
        rd_kafka_topic_partition_list_destroy(st->batch_start);
        rd_kafka_topic_partition_list_destroy(st->batch_next);
        st->batch_start = rd_kafka_topic_partition_list_new(16);
        st->batch_next = rd_kafka_topic_partition_list_new(16);
        st->batch_count = 0;
        st->batch_bytes = 0;
        st->in_txn = 0;
}

/* After an abort, consume the aborted batch again from its first offsets. */
static void rewind_batch(po_stage_t *st)
{
        rd_kafka_error_t *e;
        int i, failed = 0;

        if (st->batch_start->cnt == 0)
                return;
        e = rd_kafka_seek_partitions(st->consumer, st->batch_start, 10000);
        if (e) {
                po_log_error("rewind after abort: %s", rd_kafka_error_string(e));
                rd_kafka_error_destroy(e);
                failed = 1;
        }
        for (i = 0; i < st->batch_start->cnt; i++)
                if (st->batch_start->elems[i].err) {
                        po_log_error("rewind after abort: %s [%d]: %s",
                                     st->batch_start->elems[i].topic,
                                     (int)st->batch_start->elems[i].partition,
                                     rd_kafka_err2str(st->batch_start->elems[i].err));
                        failed = 1;
                }
        /* A partition not rewound would go on after the aborted batch and
         * skip it: leave instead, and let the restart resume from the
         * committed offsets. */
        if (failed) {
                po_log_error("exiting for a restart, so that no message is skipped");
                st->fatal = 1;
        }
}

static void abort_batch(po_stage_t *st, const char *why)
{
        rd_kafka_error_t *e;

        if (!st->in_txn)
                return;
        po_log_warn("aborting transaction of %d messages: %s", st->batch_count, why);
        e = rd_kafka_abort_transaction(st->producer, STAGE_TXN_TIMEOUT_MS);
        if (e) {
                po_log_error("abort: %s", rd_kafka_error_string(e));
                if (rd_kafka_error_is_fatal(e))
                        st->fatal = 1;
                rd_kafka_error_destroy(e);
        }
        po_metrics_add(st->metrics, "promo_transactions_total",
                       "Kafka transactions, by result.", "result=\"aborted\"", 1);
        rewind_batch(st);
        clear_batch(st);
        if (st->conf.after_batch)
                st->conf.after_batch(st, 0, st->conf.opaque);
}

/* Sends the batch's offsets and commits. Returns 0 on success. */
static int commit_batch(po_stage_t *st)
{
        rd_kafka_consumer_group_metadata_t *cgmd;
        rd_kafka_error_t *e = NULL;
        long long t0, t1, t2, start = now_us();
        int tries;

        if (!st->in_txn)
                return 0;
        if (st->emit_failed) {
                abort_batch(st, "an output could not be produced");
                st->emit_failed = 0;
                return -1;
        }
        if (st->conf.before_commit) {
                t0 = now_us();
                if (st->conf.before_commit(st, st->conf.opaque) != PO_OK) {
                        abort_batch(st, "the stage could not complete the batch");
                        /* A dependency is down: do not spin on it. */
                        po_service_tick(st->svc, 500);
                        return -1;
                }
                po_metrics_observe_us(st->metrics, "promo_txn_before_commit_seconds",
                                      "Time of the stage's own work before a commit "
                                      "(a database write).",
                                      (uint64_t)(now_us() - t0));
        }
        /* The offsets first: committing the outputs without them would
         * commit a batch whose input is consumed again (doubles). A
         * retriable error (the coordinator moving, the broker restarting)
         * is retried; anything else aborts the batch, which is then consumed
         * again from the last committed offsets. */
        t0 = now_us();
        cgmd = rd_kafka_consumer_group_metadata(st->consumer);
        for (tries = 0;; tries++) {
                e = rd_kafka_send_offsets_to_transaction(st->producer, st->batch_next,
                                                         cgmd, STAGE_TXN_TIMEOUT_MS);
                if (!e || !rd_kafka_error_is_retriable(e) || !po_service_running() ||
                    tries >= STAGE_TXN_RETRIES)
                        break;
                po_log_warn("send offsets: %s (retrying)", rd_kafka_error_string(e));
                rd_kafka_error_destroy(e);
                po_service_tick(st->svc, 200);
        }
        rd_kafka_consumer_group_metadata_destroy(cgmd);
        if (e) {
                po_log_error("send offsets: %s", rd_kafka_error_string(e));
                if (rd_kafka_error_is_fatal(e))
                        st->fatal = 1;
                rd_kafka_error_destroy(e);
                if (!st->fatal)
                        abort_batch(st, "the offsets could not be sent");
                return -1;
        }
        t1 = now_us();
        po_metrics_observe_us(st->metrics, "promo_txn_offsets_seconds",
                              "Time to send a batch's offsets to its transaction.",
                              (uint64_t)(t1 - t0));
        /* Then the commit. Once it was asked for, the outcome may be in doubt
         * (the coordinator may have written it): a retriable error is retried
         * with the same call, never turned into an abort, which would consume
         * the batch again after a commit that took effect. */
        for (tries = 0;; tries++) {
                e = rd_kafka_commit_transaction(st->producer, STAGE_TXN_TIMEOUT_MS);
                if (!e || !rd_kafka_error_is_retriable(e) || !po_service_running())
                        break;
                if (tries % 10 == 0)
                        po_log_warn("commit: %s (retrying)", rd_kafka_error_string(e));
                rd_kafka_error_destroy(e);
                po_service_tick(st->svc, 200);
        }
        if (e) {
                int requires_abort = rd_kafka_error_txn_requires_abort(e);

                po_log_error("commit: %s", rd_kafka_error_string(e));
                if (rd_kafka_error_is_fatal(e))
                        st->fatal = 1;
                rd_kafka_error_destroy(e);
                if (requires_abort)
                        abort_batch(st, "commit failed");
                else if (!st->fatal)
                        /* Retriable but we are stopping: the outcome is in
                         * doubt, so leave without rewinding; the next owner
                         * of the partitions starts from what was committed. */
                        st->fatal = 1;
                return -1;
        }
        t2 = now_us();
        po_metrics_observe_us(st->metrics, "promo_txn_commit_seconds",
                              "Time to commit a batch's transaction (outputs flushed).",
                              (uint64_t)(t2 - t1));
        po_metrics_observe_us(
            st->metrics, "promo_txn_total_seconds",
            "The loop's whole wait for a batch's commit: before_commit, "
            "the offsets and the commit.",
            (uint64_t)(t2 - start));
        po_metrics_add(st->metrics, "promo_transactions_total",
                       "Kafka transactions, by result.", "result=\"committed\"", 1);
        clear_batch(st);
        if (st->conf.after_batch)
                st->conf.after_batch(st, 1, st->conf.opaque);
        return 0;
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
        po_stage_t *st = opaque;

        st->rebalances++;
        if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
                po_log_info("assigned %d partitions", parts->cnt);
                rd_kafka_assign(rk, parts);
                return;
        }
        /* Revoked: what was processed but not committed is given up; the new
         * owner consumes it again from the committed offsets. */
        if (st->in_txn)
                abort_batch(st, "partitions revoked");
        st->npaused = 0;
        po_log_info("revoked %d partitions", parts->cnt);
        rd_kafka_assign(rk, NULL);
}

static void pause_until(po_stage_t *st, const rd_kafka_message_t *msg, int64_t resume_ms)
{
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
        const char *topic = rd_kafka_topic_name(msg->rkt);
        rd_kafka_error_t *e;
        int i;

        rd_kafka_topic_partition_list_add(l, topic, msg->partition)->offset = msg->offset;
        rd_kafka_pause_partitions(st->consumer, l);
        e = rd_kafka_seek_partitions(st->consumer, l, 10000);
        if (e) {
                po_log_error("seek %s[%d]: %s", topic, msg->partition,
                             rd_kafka_error_string(e));
                rd_kafka_error_destroy(e);
        }
        rd_kafka_topic_partition_list_destroy(l);
        for (i = 0; i < st->npaused; i++)
                if (st->paused[i].partition == msg->partition &&
                    strcmp(st->paused[i].topic, topic) == 0)
                        break;
        if (i == st->npaused) {
                if (st->npaused == STAGE_MAX_PAUSED)
                        return;
                st->npaused++;
        }
        snprintf(st->paused[i].topic, sizeof(st->paused[i].topic), "%s", topic);
        st->paused[i].partition = msg->partition;
        st->paused[i].resume_ms = resume_ms;
}

static void resume_due(po_stage_t *st)
{
        int64_t now = wall_ms();
        int i = 0;

        while (i < st->npaused) {
                if (st->paused[i].resume_ms > now) {
                        i++;
                        continue;
                }
                rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);

                rd_kafka_topic_partition_list_add(l, st->paused[i].topic,
                                                  st->paused[i].partition);
                rd_kafka_resume_partitions(st->consumer, l);
                rd_kafka_topic_partition_list_destroy(l);
                st->paused[i] = st->paused[--st->npaused];
        }
}

static void update_lag(po_stage_t *st)
{
        rd_kafka_topic_partition_list_t *assigned = NULL, *idle = NULL;
        rd_kafka_topic_partition_t *c;
        char labels[320];
        int i;

        if (rd_kafka_assignment(st->consumer, &assigned) || !assigned)
                return;
        rd_kafka_position(st->consumer, assigned);
        /* A partition nothing was consumed from since the assignment has no
         * position: its lag counts from the group's committed offset (the
         * whole retained log only when the group never committed there). */
        for (i = 0; i < assigned->cnt; i++)
                if (assigned->elems[i].offset < 0) {
                        if (!idle)
                                idle = rd_kafka_topic_partition_list_new(assigned->cnt);
                        rd_kafka_topic_partition_list_add(idle, assigned->elems[i].topic,
                                                          assigned->elems[i].partition);
                }
        if (idle && rd_kafka_committed(st->consumer, idle, 1000)) {
                rd_kafka_topic_partition_list_destroy(idle);
                idle = NULL; /* unknown this time: no figure rather than a wrong one */
        }
        for (i = 0; i < assigned->cnt; i++) {
                rd_kafka_topic_partition_t *p = &assigned->elems[i];
                int64_t lo = 0, hi = 0, from;

                if (rd_kafka_get_watermark_offsets(st->consumer, p->topic, p->partition,
                                                   &lo, &hi) ||
                    hi < 0)
                        continue;
                if (p->offset >= 0) {
                        from = p->offset;
                } else {
                        c = idle ? rd_kafka_topic_partition_list_find(idle, p->topic,
                                                                      p->partition)
                                 : NULL;
                        if (!c)
                                continue;
                        from = c->err || c->offset < 0 ? lo : c->offset;
                        if (from < lo)
                                from = lo; /* committed, then deleted by retention */
                }
                snprintf(labels, sizeof(labels), "topic=\"%s\",partition=\"%d\"",
                         p->topic, p->partition);
                po_metrics_set(st->metrics, "promo_consumer_lag",
                               "Messages between the high watermark and this consumer.",
                               labels, hi > from ? hi - from : 0);
        }
        if (idle)
                rd_kafka_topic_partition_list_destroy(idle);
        rd_kafka_topic_partition_list_destroy(assigned);
}

static int is_paused(const po_stage_t *st, const char *topic, int32_t partition)
{
        int i;

        for (i = 0; i < st->npaused; i++)
                if (st->paused[i].partition == partition &&
                    strcmp(st->paused[i].topic, topic) == 0)
                        return 1;
        return 0;
}

/* Whether msg is to be processed now. A retry message whose time has not
 * come pauses its partition (and seeks back to it); the messages of a
 * paused retry partition polled before the pause wait with it. */
static int message_due(po_stage_t *st, const rd_kafka_message_t *msg)
{
        const char *topic = rd_kafka_topic_name(msg->rkt);
        rd_kafka_headers_t *h = NULL;
        int64_t nb;

        if (!is_retry_topic(st, topic))
                return 1;
        if (is_paused(st, topic, msg->partition))
                return 0;
        rd_kafka_message_headers(msg, &h);
        nb = hdr_i64(h, PO_HDR_NOT_BEFORE, 0);
        if (nb > wall_ms()) {
                pause_until(st, msg, nb);
                return 0;
        }
        return 1;
}

/* Seeks each partition of msgs back to its first message there, so a group
 * that could not be processed is consumed again. */
static void seek_back(po_stage_t *st, rd_kafka_message_t *const *msgs, size_t n)
{
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)n);
        rd_kafka_error_t *e;
        size_t i;

        for (i = 0; i < n; i++) {
                const char *topic = rd_kafka_topic_name(msgs[i]->rkt);

                if (!rd_kafka_topic_partition_list_find(l, topic, msgs[i]->partition))
                        rd_kafka_topic_partition_list_add(l, topic, msgs[i]->partition)
                            ->offset = msgs[i]->offset;
        }
        e = rd_kafka_seek_partitions(st->consumer, l, 10000);
        if (e) {
                /* Going on would skip the group: leave, and let the restart
                 * resume from the committed offsets. */
                po_log_error("seek back: %s; exiting for a restart, so that no "
                             "message is skipped",
                             rd_kafka_error_string(e));
                rd_kafka_error_destroy(e);
                st->fatal = 1;
        }
        rd_kafka_topic_partition_list_destroy(l);
}

static int begin_txn(po_stage_t *st)
{
        rd_kafka_error_t *e;

        if (st->in_txn)
                return 0;
        e = rd_kafka_begin_transaction(st->producer);
        if (e) {
                po_log_error("begin transaction: %s", rd_kafka_error_string(e));
                st->fatal = rd_kafka_error_is_fatal(e);
                rd_kafka_error_destroy(e);
                return -1;
        }
        st->in_txn = 1;
        st->txn_started_ms = now_ms();
        return 0;
}

/* What a message adds to its batch's bytes (PROMO_STAGE_BATCH_BYTES). */
static long long msg_bytes(const rd_kafka_message_t *msg)
{
        return (long long)msg->len + (long long)msg->key_len;
}

static void handle_message(po_stage_t *st, rd_kafka_message_t *msg)
{
        const char *topic = rd_kafka_topic_name(msg->rkt);
        rd_kafka_headers_t *h = NULL;
        po_stage_failure_t fail;
        po_stage_result_t res;
        char labels[300];
        long long t0;
        int retry = is_retry_topic(st, topic);

        rd_kafka_message_headers(msg, &h);
        labels_topic(labels, sizeof(labels), "topic", topic);
        po_metrics_add(st->metrics, "promo_messages_in_total",
                       "Messages consumed, by topic.", labels, 1);
        memset(&fail, 0, sizeof(fail));
        st->attempt = retry ? (int)hdr_i64(h, PO_HDR_ATTEMPTS, 0) : 0;
        st->emitting = 1;
        t0 = now_ms();
        res = st->conf.process(st, msg, &fail, st->conf.opaque);
        st->emitting = 0;
        if (res == PO_STAGE_OK) {
                pending_produce(st);
        } else {
                pending_clear(st);
                if (res == PO_STAGE_TRANSIENT && st->attempt < st->conf.retries)
                        send_retry(st, msg, h, &fail, st->attempt + 1);
                else
                        send_dead_letter(st, msg, h, &fail, st->attempt + 1);
        }
        po_metrics_observe_us(st->metrics, "promo_processing_seconds",
                              "Time from consume to produce of one message.",
                              (uint64_t)(now_ms() - t0) * 1000);
        po_metrics_observe_us(st->metrics, "promo_stage_latency_seconds",
                              "Time from the poll that returned a message to the produce "
                              "of its output, its group's preparation and the messages "
                              "before it included.",
                              (uint64_t)(now_us() - st->group_us));
        track_offset(st, msg);
        st->batch_count++;
        st->batch_bytes += msg_bytes(msg);
}

/* How long the open transaction may stay open: batch_ms under a backlog
 * (the last poll left messages waiting), keepup_ms (when set and shorter)
 * while the stage keeps up with its input. */
static int window_ms(const po_stage_t *st)
{
        if (st->backlog || st->conf.keepup_ms <= 0 ||
            st->conf.keepup_ms > st->conf.batch_ms)
                return st->conf.batch_ms;
        return st->conf.keepup_ms;
}

/* How long the next poll may wait for a first message: STAGE_POLL_MS, or
 * less when the open transaction is due to commit sooner (its window ends,
 * or it has lingered long enough without a new message). */
static int poll_timeout(const po_stage_t *st)
{
        long long due, left;

        if (!st->in_txn)
                return STAGE_POLL_MS;
        due = st->txn_started_ms + window_ms(st);
        if (st->last_msg_ms + st->conf.linger_ms < due)
                due = st->last_msg_ms + st->conf.linger_ms;
        left = due - now_ms();
        return left <= 0 ? 0 : left < STAGE_POLL_MS ? (int)left : STAGE_POLL_MS;
}

/* Whether the open transaction is to be committed now: full (batch_max
 * messages or batch_bytes of input), open for its window (window_ms), or no
 * message for linger_ms (the input is drained, so holding the outputs back
 * would only add latency). idle = the last poll found nothing. */
static int commit_due(const po_stage_t *st, int idle)
{
        long long now = now_ms();

        if (!st->in_txn)
                return 0;
        return st->batch_count >= st->conf.batch_max ||
               st->batch_bytes >= st->conf.batch_bytes ||
               now - st->txn_started_ms >= window_ms(st) ||
               (idle && now - st->last_msg_ms >= st->conf.linger_ms);
}

/* Takes what the consumer has, up to the room left in the batch (its count
 * and its bytes: the batch passes batch_bytes by one message at most): waits up to
 * poll_timeout() for the first message, not at all for the others. Returns
 * the number of messages in st->polled (to destroy after use). */
static size_t poll_group(po_stage_t *st)
{
        size_t room = st->conf.batch_max > st->batch_count
                          ? (size_t)(st->conf.batch_max - st->batch_count)
                          : 1;
        size_t n = 0, i;
        long long bytes = st->batch_bytes; /* the batch's, with the group's */
        unsigned gen = st->rebalances;
        rd_kafka_message_t *msg;

        if (room > PO_STAGE_GROUP_MAX)
                room = PO_STAGE_GROUP_MAX;
        msg = rd_kafka_consumer_poll(st->consumer, poll_timeout(st));
        st->group_us = now_us();
        while (msg) {
                if (st->rebalances != gen) {
                        /* Polled before a rebalance: the partitions' owner
                         * (maybe us again) consumes them from the committed
                         * offsets. */
                        for (i = 0; i < n; i++)
                                rd_kafka_message_destroy(st->polled[i]);
                        n = 0;
                        bytes = st->batch_bytes;
                        gen = st->rebalances;
                }
                if (msg->err) {
                        if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                                po_log_warn("consumer: %s", rd_kafka_message_errstr(msg));
                        rd_kafka_message_destroy(msg);
                } else {
                        st->polled[n++] = msg;
                        bytes += msg_bytes(msg);
                }
                if (n == room || bytes >= st->conf.batch_bytes)
                        break;
                msg = rd_kafka_consumer_poll(st->consumer, 0);
        }
        /* Stopped by the group's or the batch's bounds, not by an empty queue. */
        st->backlog = msg != NULL;
        if (st->rebalances != gen) {
                for (i = 0; i < n; i++)
                        rd_kafka_message_destroy(st->polled[i]);
                n = 0;
        }
        return n;
}

/* Processes a group: the messages that are due, prepared together, then one
 * by one, in the open transaction. */
static void handle_group(po_stage_t *st, size_t n)
{
        size_t i, k = 0;

        for (i = 0; i < n; i++)
                if (message_due(st, st->polled[i]))
                        st->todo[k++] = st->polled[i];
        if (k == 0)
                return;
        if (begin_txn(st)) {
                if (!st->fatal)
                        seek_back(st, st->todo, k);
                return;
        }
        if (st->conf.prepare) {
                long long t0 = now_us();

                st->conf.prepare(st, st->todo, k, st->conf.opaque);
                po_metrics_observe_us(st->metrics, "promo_stage_prepare_seconds",
                                      "The stage's prepare hook for one group of polled "
                                      "messages (the validator's prefetch and "
                                      "reservations).",
                                      (uint64_t)(now_us() - t0));
        }
        for (i = 0; i < k; i++)
                handle_message(st, st->todo[i]);
        st->last_msg_ms = now_ms();
}

int po_stage_run(po_stage_t *st)
{
        rd_kafka_error_t *e;
        char errstr[512];
        size_t n, i;
        int backoff = 0;

        /* The broker may still be starting: keep trying while running. */
        while (po_service_running()) {
                e = rd_kafka_init_transactions(st->producer, STAGE_TXN_TIMEOUT_MS);
                if (!e)
                        break;
                snprintf(errstr, sizeof(errstr), "init transactions: %s",
                         rd_kafka_error_string(e));
                if (rd_kafka_error_is_fatal(e)) {
                        po_log_error("%s", errstr);
                        rd_kafka_error_destroy(e);
                        return 1;
                }
                rd_kafka_error_destroy(e);
                po_service_set_work_ready(st->svc, 0, errstr);
                if (backoff++ % 10 == 0)
                        po_log_warn("%s (retrying)", errstr);
                po_service_tick(st->svc, 500);
        }
        po_service_set_work_ready(st->svc, 1, NULL);
        po_log_info("consuming %s (+%d retry topics) as %s, dead letters to %s",
                    st->input, st->conf.retries, st->group, st->dlq);
        while (po_service_running() && !st->fatal) {
                po_service_tick(st->svc, 0);
                if (st->conf.idle)
                        st->conf.idle(st, st->conf.opaque);
                resume_due(st);
                rd_kafka_poll(st->producer, 0);
                n = poll_group(st);
                if (n)
                        handle_group(st, n);
                for (i = 0; i < n; i++)
                        rd_kafka_message_destroy(st->polled[i]);
                if (commit_due(st, n == 0))
                        commit_batch(st);
                if (now_ms() >= st->next_lag_ms) {
                        update_lag(st);
                        st->next_lag_ms = now_ms() + STAGE_LAG_INTERVAL_MS;
                }
        }
        if (st->fatal) {
                po_log_error("fatal transaction error: exiting for a restart");
                return 1;
        }
        /* SIGTERM: finish the open transaction, then close (po_stage_destroy). */
        commit_batch(st);
        po_log_info("drained; leaving the group");
        return 0;
}
