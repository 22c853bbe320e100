/* promo-reconcile: proves, on a running stack, that nothing was lost and
 * nothing doubled (guarantees 2 and 3 of the architecture brief):
 *
 *   orders    every raw order ended somewhere: orders.raw + DLQ replays in
 *             orders.canonical / orders.validated == orders.priced + order
 *             dead letters (intake.dlq, validator.dlq, calculator.dlq) +
 *             duplicates dropped by intake (orders.duplicates); what waits in
 *             a retry topic is "in flight", not a mismatch;
 *   usage     every usage event (promo.usage) is one row of usage_events,
 *             and every row of the topic's retained range is an event;
 *   counters  usage_counters and customer_usage_counters equal what
 *             usage_events say (counted once);
 *   limits    no code over its usage_limit, no customer over its
 *             per_customer_limit (usage_counters and redemptions);
 *   redis     Redis promo:usage:total:<CODE> == count(redemptions) ==
 *             usage_counters.redemptions, and promo:usage:cust:<CODE>
 *             <customer> == customer_usage_counters.
 *
 * Topics are read whole (low watermark to the end they had at the start),
 * read_committed, by assign() in a group that never commits. Exit status 0
 * when every check passes, 1 when one fails, 2 when the checks could not run.
 * docs/audit.md explains each check. */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "po/avro.h"
#include "po/config.h"
#include "po/dlq.h"
#include "po/dynbuf.h"
#include "po/log.h"
#include "po/messages.h"
#include "po/pg.h"
#include "po/stage.h"

#define MAX_PARTS 4096
#define MAX_RETRY_TOPICS 8
#define LIST_MAX 10 /* ids listed for a mismatch */

enum { CHECK_ORDERS, CHECK_USAGE, CHECK_COUNTERS, CHECK_LIMITS, CHECK_REDIS, NCHECKS };
static const char *const check_names[NCHECKS] = {"orders", "usage", "counters", "limits",
                                                 "redis"};

/* What a topic's records count for. */
typedef enum kind {
        K_RAW,
        K_CANONICAL,
        K_VALIDATED,
        K_RETRY,
        K_PRICED,
        K_DLQ,
        K_DUPLICATES,
        K_USAGE,
} kind_t;

/* The three order stages: input topic and consumer group. */
enum { ST_INTAKE, ST_VALIDATOR, ST_CALCULATOR, NSTAGES };
static const char *const stage_topic[NSTAGES] = {"orders.raw", "orders.canonical",
                                                 "orders.validated"};
static const char *const stage_group[NSTAGES] = {"intake-normalizer", "validator",
                                                 "calculator"};
static const char *const dlq_topic[NSTAGES] = {"intake.dlq", "validator.dlq",
                                               "calculator.dlq"};

typedef struct opts {
        int wait_s;
        int json;
        int timeout_s;
        const char *topics_prefix;
        const char *group_prefix;
        const char *redis_prefix;
        int only[NCHECKS];
} opts_t;

/* One partition to read. */
typedef struct part {
        char topic[256];
        int32_t partition;
        kind_t kind;
        int stage;         /* K_RAW..K_RETRY: which stage consumes it */
        int dlq;           /* K_DLQ: index into dlq_topic */
        int64_t lo, hi;    /* read [lo, hi) */
        int64_t committed; /* the stage group's committed offset; -1 none */
        int done;
        int64_t count, pending; /* records; records at or after committed */
        int64_t replays;        /* records with PO_HDR_REPLAYED_FROM */
} part_t;

/* One attempt's findings. */
typedef struct run {
        const opts_t *o;
        po_config_t cfg;
        po_avro_t *avro;
        rd_kafka_t *rk;
        PGconn *pg;
        redisContext *redis;
        part_t *parts;
        int nparts, last_part;
        char names[NSTAGES][256]; /* prefixed names of the order topics */
        int nretry[NSTAGES];
        /* orders */
        int64_t raw, replays[NSTAGES], priced, dlq_orders[NSTAGES], dlq_other,
            dlq_unknown, duplicates, dup_other, dup_unknown, in_flight, backlog[NSTAGES];
        int retention_cut; /* an order topic lost records to retention */
        /* usage */
        int64_t usage_msgs, usage_undecodable;
        po_dynbuf_t copy; /* event_id, partition, offset lines for COPY */
        int copying;
        /* results */
        int ok[NCHECKS];
        int ran[NCHECKS];
        json_t *json[NCHECKS];
        po_dynbuf_t text[NCHECKS];
        char error[600];
} run_t;

static long long mono_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int fail_run(run_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail_run(run_t *r, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(r->error, sizeof(r->error), fmt, ap);
        va_end(ap);
        r->error[strcspn(r->error, "\n")] = '\0';
        return -1;
}

static void say(run_t *r, int check, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Appends one detail line of a check's human report. */
static void say(run_t *r, int check, const char *fmt, ...)
{
        char line[1024];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        po_dynbuf_addf(&r->text[check], "         %s\n", line);
}

static void jset_int(run_t *r, int check, const char *key, int64_t v)
{
        json_object_set_new(r->json[check], key, json_integer((json_int_t)v));
}

static void prefixed(const opts_t *o, const char *name, char *out, size_t size)
{
        snprintf(out, size, "%s%s", o->topics_prefix, name);
}

/* ---- Kafka ---- */

static rd_kafka_t *new_consumer(const run_t *r, const char *group, char *err, size_t size)
{
        rd_kafka_conf_t *c = rd_kafka_conf_new();
        rd_kafka_t *rk;

        if (rd_kafka_conf_set(c, "bootstrap.servers", r->cfg.kafka_brokers, err, size) ||
            rd_kafka_conf_set(c, "group.id", group, err, size) ||
            rd_kafka_conf_set(c, "isolation.level", "read_committed", err, size) ||
            rd_kafka_conf_set(c, "enable.auto.commit", "false", err, size) ||
            rd_kafka_conf_set(c, "enable.auto.offset.store", "false", err, size) ||
            rd_kafka_conf_set(c, "enable.partition.eof", "true", err, size) ||
            rd_kafka_conf_set(c, "auto.offset.reset", "earliest", err, size)) {
                rd_kafka_conf_destroy(c);
                return NULL;
        }
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, size);
        if (!rk)
                rd_kafka_conf_destroy(c);
        return rk;
}

/* The partition count of topic, 0 when it does not exist. */
static int partitions_of(const rd_kafka_metadata_t *md, const char *topic)
{
        int i;

        for (i = 0; i < md->topic_cnt; i++)
                if (strcmp(md->topics[i].topic, topic) == 0)
                        return md->topics[i].err ? 0 : md->topics[i].partition_cnt;
        return 0;
}

static int add_topic(run_t *r, const rd_kafka_metadata_t *md, const char *topic,
                     kind_t kind, int stage, int dlq, int required)
{
        int n = partitions_of(md, topic), p;

        if (n <= 0) {
                if (required)
                        return fail_run(r, "topic %s does not exist", topic);
                return 0;
        }
        for (p = 0; p < n; p++) {
                part_t *x;

                if (r->nparts == MAX_PARTS)
                        return fail_run(r, "more than %d partitions to read", MAX_PARTS);
                x = &r->parts[r->nparts++];
                memset(x, 0, sizeof(*x));
                snprintf(x->topic, sizeof(x->topic), "%s", topic);
                x->partition = p;
                x->kind = kind;
                x->stage = stage;
                x->dlq = dlq;
                x->committed = -1;
        }
        return 1;
}

/* Lists the partitions to read; outputs first, then the inputs, in the order
 * their watermarks are taken (see snapshot()). */
static int plan(run_t *r)
{
        const rd_kafka_metadata_t *md = NULL;
        char t[300];
        rd_kafka_resp_err_t e;
        int s, n, rc = -1;

        e = rd_kafka_metadata(r->rk, 1, NULL, &md, 10000);
        if (e)
                return fail_run(r, "kafka metadata: %s", rd_kafka_err2str(e));
        r->nparts = 0;
        if (r->o->only[CHECK_ORDERS]) {
                prefixed(r->o, "orders.priced", t, sizeof(t));
                if (add_topic(r, md, t, K_PRICED, 0, 0, 1) < 0)
                        goto out;
                for (s = 0; s < NSTAGES; s++) {
                        prefixed(r->o, dlq_topic[s], t, sizeof(t));
                        if (add_topic(r, md, t, K_DLQ, s, s, 1) < 0)
                                goto out;
                }
                prefixed(r->o, "orders.duplicates", t, sizeof(t));
                if (add_topic(r, md, t, K_DUPLICATES, 0, 0, 1) < 0)
                        goto out;
                for (s = 0; s < NSTAGES; s++) {
                        prefixed(r->o, stage_topic[s], r->names[s], sizeof(r->names[s]));
                        if (add_topic(r, md, r->names[s], (kind_t)(K_RAW + s), s, 0, 1) <
                            0)
                                goto out;
                        r->nretry[s] = 0;
                        for (n = 1; n <= MAX_RETRY_TOPICS; n++) {
                                snprintf(t, sizeof(t), "%s.retry.%d", r->names[s], n);
                                if (add_topic(r, md, t, K_RETRY, s, 0, 0) < 0)
                                        goto out;
                        }
                }
        }
        if (r->o->only[CHECK_USAGE]) {
                prefixed(r->o, "promo.usage", t, sizeof(t));
                if (add_topic(r, md, t, K_USAGE, 0, 0, 1) < 0)
                        goto out;
        }
        rc = 0;
out:
        rd_kafka_metadata_destroy(md);
        return rc;
}

static int watermarks(run_t *r, kind_t from, kind_t to)
{
        int i;

        for (i = 0; i < r->nparts; i++) {
                part_t *p = &r->parts[i];
                rd_kafka_resp_err_t e;

                if (p->kind < from || p->kind > to)
                        continue;
                e = rd_kafka_query_watermark_offsets(r->rk, p->topic, p->partition,
                                                     &p->lo, &p->hi, 10000);
                if (e)
                        return fail_run(r, "watermarks of %s[%d]: %s", p->topic,
                                        p->partition, rd_kafka_err2str(e));
                p->done = p->hi <= p->lo;
                if (p->lo > 0 && p->kind <= K_DUPLICATES)
                        r->retention_cut = 1;
        }
        return 0;
}

/* The committed offsets of each order stage's group on its topics. */
static int committed_offsets(run_t *r)
{
        char group[300], err[512];
        int s, i;

        for (s = 0; s < NSTAGES; s++) {
                rd_kafka_topic_partition_list_t *l =
                    rd_kafka_topic_partition_list_new(16);
                rd_kafka_t *g;
                rd_kafka_resp_err_t e;

                for (i = 0; i < r->nparts; i++)
                        if ((r->parts[i].kind == K_RETRY ||
                             r->parts[i].kind == (kind_t)(K_RAW + s)) &&
                            r->parts[i].stage == s)
                                rd_kafka_topic_partition_list_add(l, r->parts[i].topic,
                                                                  r->parts[i].partition);
                snprintf(group, sizeof(group), "%s%s", r->o->group_prefix,
                         stage_group[s]);
                g = new_consumer(r, group, err, sizeof(err));
                if (!g) {
                        rd_kafka_topic_partition_list_destroy(l);
                        return fail_run(r, "kafka: %s", err);
                }
                e = rd_kafka_committed(g, l, 10000);
                rd_kafka_destroy(g);
                if (e) {
                        rd_kafka_topic_partition_list_destroy(l);
                        return fail_run(r, "committed offsets of group %s: %s", group,
                                        rd_kafka_err2str(e));
                }
                for (i = 0; i < r->nparts; i++) {
                        part_t *p = &r->parts[i];
                        rd_kafka_topic_partition_t *c;

                        if ((p->kind != K_RETRY && p->kind != (kind_t)(K_RAW + s)) ||
                            p->stage != s)
                                continue;
                        c = rd_kafka_topic_partition_list_find(l, p->topic, p->partition);
                        p->committed = c && !c->err && c->offset >= 0 ? c->offset : -1;
                }
                rd_kafka_topic_partition_list_destroy(l);
        }
        return 0;
}

static part_t *find_part(run_t *r, const char *topic, int32_t partition)
{
        int i, last = r->last_part;

        /* The next record is most often of the same partition. */
        if (last < r->nparts && r->parts[last].partition == partition &&
            strcmp(r->parts[last].topic, topic) == 0)
                return &r->parts[last];
        for (i = 0; i < r->nparts; i++)
                if (r->parts[i].partition == partition &&
                    strcmp(r->parts[i].topic, topic) == 0) {
                        r->last_part = i;
                        return &r->parts[i];
                }
        return NULL;
}

/* Whether topic is one of the order topics or their retry topics. */
static int is_order_topic(const run_t *r, const char *topic, size_t len)
{
        int s;

        for (s = 0; s < NSTAGES; s++) {
                size_t n = strlen(r->names[s]);
                size_t i;

                if (len < n || memcmp(topic, r->names[s], n) != 0)
                        continue;
                if (len == n)
                        return 1;
                if (len > n + 7 && memcmp(topic + n, ".retry.", 7) == 0) {
                        for (i = n + 7; i < len; i++)
                                if (topic[i] < '0' || topic[i] > '9')
                                        break;
                        if (i == len)
                                return 1;
                }
        }
        return 0;
}

static void count_dead_letter(run_t *r, part_t *p, const rd_kafka_message_t *m)
{
        po_deadletter_t dl;
        rd_kafka_headers_t *h = NULL;
        const void *v;
        size_t len;
        char err[256];

        if (m->payload && po_avro_decode_deadletter(r->avro, m->payload, m->len, &dl, err,
                                                    sizeof(err)) == PO_OK) {
                if (is_order_topic(r, dl.source_topic, strlen(dl.source_topic)))
                        r->dlq_orders[p->dlq]++;
                else
                        r->dlq_other++;
                po_deadletter_release(&dl);
                return;
        }
        /* Not a DeadLetter: the runner's header still says where it came from. */
        if (!rd_kafka_message_headers(m, &h) &&
            !rd_kafka_header_get_last(h, PO_HDR_SOURCE_TOPIC, &v, &len) && v &&
            is_order_topic(r, v, len))
                r->dlq_orders[p->dlq]++;
        else
                r->dlq_unknown++;
}

/* Appends s to the COPY text, escaped. */
static void copy_text(po_dynbuf_t *b, const char *s)
{
        for (; *s; s++) {
                if (*s == '\\' || *s == '\t' || *s == '\n' || *s == '\r') {
                        char esc[2] = {'\\', *s == '\\'   ? '\\'
                                             : *s == '\t' ? 't'
                                             : *s == '\n' ? 'n'
                                                          : 'r'};

                        po_dynbuf_add(b, esc, 2);
                } else {
                        po_dynbuf_add(b, s, 1);
                }
        }
}

static int copy_flush(run_t *r, int force)
{
        if (r->copy.failed)
                return fail_run(r, "out of memory");
        if (r->copy.len == 0 || (!force && r->copy.len < (1u << 20)))
                return 0;
        if (PQputCopyData(r->pg, r->copy.data, (int)r->copy.len) != 1)
                return fail_run(r, "postgres: COPY: %s", PQerrorMessage(r->pg));
        po_dynbuf_reset(&r->copy);
        return 0;
}

/* intake-normalizer's record of a dropped duplicate: JSON {"order_id": ...,
 * "source": "<topic>/<partition>/<offset>"} of the raw message dropped.
 * Counted when that topic is an order topic (a test's intake writing to the
 * shared topic is not). */
static void count_duplicate(run_t *r, const rd_kafka_message_t *m)
{
        json_t *j = m->payload ? json_loadb(m->payload, m->len, 0, NULL) : NULL;
        const char *src = json_string_value(json_object_get(j, "source"));

        if (!src)
                r->dup_unknown++;
        else if (is_order_topic(r, src, strcspn(src, "/")))
                r->duplicates++;
        else
                r->dup_other++;
        json_decref(j);
}

static int count_usage(run_t *r, const rd_kafka_message_t *m)
{
        po_usage_event_t ev;
        po_arena_t a;
        char err[256];

        po_arena_init(&a, 16u << 20);
        if (!m->payload || po_usage_decode(r->avro, m->payload, m->len, &a, &ev, err,
                                           sizeof(err)) != PO_OK) {
                r->usage_undecodable++;
                po_arena_release(&a);
                return 0;
        }
        r->usage_msgs++;
        copy_text(&r->copy, ev.event_id);
        po_dynbuf_addf(&r->copy, "\t%" PRId32 "\t%" PRId64 "\n", m->partition, m->offset);
        po_arena_release(&a);
        return copy_flush(r, 0);
}

static int take(run_t *r, const rd_kafka_message_t *m)
{
        part_t *p = find_part(r, rd_kafka_topic_name(m->rkt), m->partition);
        rd_kafka_headers_t *h = NULL;
        const void *v;
        size_t len;

        if (!p || p->done)
                return 0;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                if (m->offset >= p->hi)
                        p->done = 1;
                return 0;
        }
        if (m->offset >= p->hi) {
                p->done = 1;
                return 0;
        }
        if (m->offset + 1 >= p->hi)
                p->done = 1;
        p->count++;
        if (p->kind <= K_RETRY && (p->committed < 0 || m->offset >= p->committed))
                p->pending++;
        switch (p->kind) {
        case K_CANONICAL:
        case K_VALIDATED:
                if (!rd_kafka_message_headers(m, &h) &&
                    !rd_kafka_header_get_last(h, PO_HDR_REPLAYED_FROM, &v, &len))
                        p->replays++;
                break;
        case K_DLQ:
                count_dead_letter(r, p, m);
                break;
        case K_DUPLICATES:
                count_duplicate(r, m);
                break;
        case K_USAGE:
                return count_usage(r, m);
        default:
                break;
        }
        return 0;
}

/* Reads every partition from lo to hi. */
static int read_all(run_t *r)
{
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(r->nparts);
        long long last_progress = mono_ms();
        rd_kafka_resp_err_t e;
        int i, left = 0;

        for (i = 0; i < r->nparts; i++)
                if (!r->parts[i].done) {
                        rd_kafka_topic_partition_list_add(l, r->parts[i].topic,
                                                          r->parts[i].partition)
                            ->offset = r->parts[i].lo;
                        left++;
                }
        e = rd_kafka_assign(r->rk, l);
        rd_kafka_topic_partition_list_destroy(l);
        if (e)
                return fail_run(r, "assign: %s", rd_kafka_err2str(e));
        while (left > 0) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(r->rk, 200);
                int rc = 0;

                if (m) {
                        if (!m->err || m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
                                rc = take(r, m);
                        else
                                po_log_warn("kafka: %s", rd_kafka_message_errstr(m));
                        rd_kafka_message_destroy(m);
                        last_progress = mono_ms();
                }
                if (rc)
                        return -1;
                for (i = 0, left = 0; i < r->nparts; i++)
                        left += !r->parts[i].done;
                if (left &&
                    mono_ms() - last_progress > (long long)r->o->timeout_s * 1000) {
                        for (i = 0; i < r->nparts && r->parts[i].done; i++)
                                ;
                        rd_kafka_assign(r->rk, NULL);
                        return fail_run(r,
                                        "could not read %s[%d] to offset %" PRId64
                                        " within %d s (an open transaction?)",
                                        r->parts[i].topic, r->parts[i].partition,
                                        r->parts[i].hi, r->o->timeout_s);
                }
        }
        rd_kafka_assign(r->rk, NULL);
        return 0;
}

/* ---- PostgreSQL helpers ---- */

static PGresult *query(run_t *r, const char *sql, int nparams, const char *const *params)
{
        PGresult *res = PQexecParams(r->pg, sql, nparams, NULL, params, NULL, NULL, 0);

        if (!res || (PQresultStatus(res) != PGRES_TUPLES_OK &&
                     PQresultStatus(res) != PGRES_COMMAND_OK)) {
                fail_run(r, "postgres: %s", PQerrorMessage(r->pg));
                PQclear(res);
                return NULL;
        }
        return res;
}

/* Runs sql (several statements allowed), expecting no rows. */
static int exec_sql(run_t *r, const char *sql)
{
        PGresult *res = PQexec(r->pg, sql);
        int ok = res && PQresultStatus(res) == PGRES_COMMAND_OK;

        if (!ok)
                fail_run(r, "postgres: %s", PQerrorMessage(r->pg));
        PQclear(res);
        return ok ? 0 : -1;
}

static int64_t getint(const PGresult *res, int row, int col)
{
        return PQgetisnull(res, row, col) ? 0
                                          : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

/* Adds the first rows of res (column 0) to the JSON array key and to the
 * human report, and returns the total in column `count_col` of row 0 (0 for
 * no rows). */
static int64_t list_rows(run_t *r, int check, const PGresult *res, const char *key,
                         const char *what)
{
        json_t *arr = json_array();
        int64_t total = PQntuples(res) ? getint(res, 0, PQnfields(res) - 1) : 0;
        int i;
        po_dynbuf_t line;

        po_dynbuf_init(&line, 4096);
        for (i = 0; i < PQntuples(res); i++) {
                json_array_append_new(arr, json_string(PQgetvalue(res, i, 0)));
                po_dynbuf_addf(&line, "%s%s", i ? ", " : "", PQgetvalue(res, i, 0));
        }
        json_object_set_new(r->json[check], key, arr);
        if (total)
                say(r, check, "%s (%" PRId64 "%s): %s", what, total,
                    total > PQntuples(res) ? ", first listed" : "", po_dynbuf_str(&line));
        po_dynbuf_release(&line);
        return total;
}

/* ---- the checks ---- */

static void check_orders(run_t *r)
{
        int64_t in, out, pending, backlog = 0;
        int i, s;
        int c = CHECK_ORDERS;

        r->raw = r->priced = r->in_flight = 0;
        for (s = 0; s < NSTAGES; s++)
                r->replays[s] = r->backlog[s] = 0;
        for (i = 0; i < r->nparts; i++) {
                part_t *p = &r->parts[i];

                switch (p->kind) {
                case K_RAW:
                        r->raw += p->count;
                        r->backlog[p->stage] += p->pending;
                        break;
                case K_CANONICAL:
                case K_VALIDATED:
                        r->replays[p->stage] += p->replays;
                        r->backlog[p->stage] += p->pending;
                        break;
                case K_RETRY:
                        r->in_flight += p->pending;
                        break;
                case K_PRICED:
                        r->priced += p->count;
                        break;
                default:
                        break;
                }
        }
        in = r->raw + r->replays[ST_VALIDATOR] + r->replays[ST_CALCULATOR];
        out = r->priced + r->dlq_orders[0] + r->dlq_orders[1] + r->dlq_orders[2] +
              r->duplicates;
        pending = in - out;
        for (s = 0; s < NSTAGES; s++)
                backlog += r->backlog[s];
        r->ok[c] = pending == r->in_flight;
        jset_int(r, c, "raw", r->raw);
        jset_int(r, c, "replays_canonical", r->replays[ST_VALIDATOR]);
        jset_int(r, c, "replays_validated", r->replays[ST_CALCULATOR]);
        jset_int(r, c, "in", in);
        jset_int(r, c, "priced", r->priced);
        jset_int(r, c, "dead_letters_intake", r->dlq_orders[ST_INTAKE]);
        jset_int(r, c, "dead_letters_validator", r->dlq_orders[ST_VALIDATOR]);
        jset_int(r, c, "dead_letters_calculator", r->dlq_orders[ST_CALCULATOR]);
        jset_int(r, c, "duplicates", r->duplicates);
        jset_int(r, c, "out", out);
        jset_int(r, c, "in_flight", r->in_flight);
        jset_int(r, c, "not_yet_consumed", backlog);
        jset_int(r, c, "unaccounted", pending - r->in_flight);
        jset_int(r, c, "dead_letters_other_sources", r->dlq_other);
        jset_int(r, c, "dead_letters_unreadable", r->dlq_unknown);
        jset_int(r, c, "duplicates_other_sources", r->dup_other);
        jset_int(r, c, "duplicates_unreadable", r->dup_unknown);
        say(r, c,
            "in:  %" PRId64 " raw + %" PRId64 " replayed into canonical + %" PRId64
            " replayed into validated = %" PRId64,
            r->raw, r->replays[ST_VALIDATOR], r->replays[ST_CALCULATOR], in);
        say(r, c,
            "out: %" PRId64 " priced + %" PRId64 " dead letters (intake %" PRId64
            ", validator %" PRId64 ", calculator %" PRId64 ") + %" PRId64
            " duplicates = %" PRId64,
            r->priced, r->dlq_orders[0] + r->dlq_orders[1] + r->dlq_orders[2],
            r->dlq_orders[0], r->dlq_orders[1], r->dlq_orders[2], r->duplicates, out);
        say(r, c, "in flight (waiting in retry topics): %" PRId64, r->in_flight);
        if (r->ok[c]) {
                say(r, c, "balanced: %" PRId64 " = %" PRId64 " + %" PRId64 " in flight",
                    in, out, r->in_flight);
        } else if (pending > r->in_flight) {
                say(r, c,
                    "%" PRId64 " order(s) unaccounted for; %" PRId64
                    " record(s) not yet consumed by their stage (a pipeline still "
                    "draining: try --wait)",
                    pending - r->in_flight, backlog);
        } else {
                say(r, c,
                    "%" PRId64 " more outcome(s) than orders: doubled, or produced "
                    "from outside the pipeline",
                    r->in_flight - pending);
        }
        if (r->dlq_other || r->dlq_unknown || r->dup_other || r->dup_unknown)
                say(r, c,
                    "not counted: %" PRId64 " dead letter(s) and %" PRId64
                    " duplicate record(s) of other sources, %" PRId64 " + %" PRId64
                    " unreadable",
                    r->dlq_other, r->dup_other, r->dlq_unknown, r->dup_unknown);
        if (r->retention_cut)
                say(r, c,
                    "note: retention deleted the oldest records of some topic; the "
                    "balance covers what remains");
}

static const char usage_range[] =
    "(u.kafka_partition IS NULL OR u.kafka_offset IS NULL OR u.kafka_partition < 0 OR "
    "u.kafka_partition >= cardinality($1::bigint[]) OR "
    "(u.kafka_offset >= ($1::bigint[])[u.kafka_partition + 1] AND "
    "u.kafka_offset < ($2::bigint[])[u.kafka_partition + 1]))";

static int check_usage(run_t *r)
{
        char sql[1600], lo[4096], hi[4096];
        const char *params[2] = {lo, hi};
        size_t lo_len = 1, hi_len = 1;
        int64_t rows, distinct, missing, extra;
        PGresult *res;
        int i, c = CHECK_USAGE;

        /* The topic's retained range, per partition, as bigint[] literals. */
        snprintf(lo, sizeof(lo), "{");
        snprintf(hi, sizeof(hi), "{");
        for (i = 0; i < r->nparts; i++) {
                const part_t *p = &r->parts[i];

                if (p->kind != K_USAGE)
                        continue;
                lo_len += (size_t)snprintf(lo + lo_len, sizeof(lo) - lo_len, "%s%" PRId64,
                                           p->partition ? "," : "", p->lo);
                hi_len += (size_t)snprintf(hi + hi_len, sizeof(hi) - hi_len, "%s%" PRId64,
                                           p->partition ? "," : "", p->hi);
                if (lo_len >= sizeof(lo) - 2 || hi_len >= sizeof(hi) - 2)
                        return fail_run(r, "too many partitions in promo.usage");
        }
        snprintf(lo + lo_len, sizeof(lo) - lo_len, "}");
        snprintf(hi + hi_len, sizeof(hi) - hi_len, "}");

        if (exec_sql(r, "CREATE INDEX IF NOT EXISTS reconcile_usage_id ON "
                        "reconcile_usage (event_id); ANALYZE reconcile_usage"))
                return -1;
        res = query(r, "SELECT count(DISTINCT event_id) FROM reconcile_usage", 0, NULL);
        if (!res)
                return -1;
        distinct = getint(res, 0, 0);
        PQclear(res);
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM usage_events u WHERE %s",
                 usage_range);
        res = query(r, sql, 2, params);
        if (!res)
                return -1;
        rows = getint(res, 0, 0);
        PQclear(res);
        res =
            query(r,
                  "SELECT t.event_id, count(*) OVER () FROM (SELECT DISTINCT event_id "
                  "FROM reconcile_usage) t WHERE NOT EXISTS (SELECT 1 FROM usage_events "
                  "u WHERE u.event_id = t.event_id) ORDER BY 1 LIMIT 10",
                  0, NULL);
        if (!res)
                return -1;
        missing = list_rows(r, c, res, "missing", "events without a row");
        PQclear(res);
        snprintf(sql, sizeof(sql),
                 "SELECT u.event_id, count(*) OVER () FROM usage_events u WHERE %s AND "
                 "NOT EXISTS (SELECT 1 FROM reconcile_usage t WHERE t.event_id = "
                 "u.event_id) ORDER BY 1 LIMIT 10",
                 usage_range);
        res = query(r, sql, 2, params);
        if (!res)
                return -1;
        extra = list_rows(r, c, res, "extra", "rows without an event in the topic");
        PQclear(res);
        r->ok[c] = missing == 0 && extra == 0;
        jset_int(r, c, "messages", r->usage_msgs);
        jset_int(r, c, "distinct_event_ids", distinct);
        jset_int(r, c, "undecodable", r->usage_undecodable);
        jset_int(r, c, "rows", rows);
        jset_int(r, c, "missing_count", missing);
        jset_int(r, c, "extra_count", extra);
        say(r, c,
            "promo.usage: %" PRId64 " events (%" PRId64
            " distinct event ids); usage_events: "
            "%" PRId64 " rows in the topic's range",
            r->usage_msgs, distinct, rows);
        if (r->usage_msgs != distinct)
                say(r, c,
                    "%" PRId64 " event(s) repeat an event id (stored once, by design)",
                    r->usage_msgs - distinct);
        if (r->usage_undecodable)
                say(r, c,
                    "%" PRId64
                    " record(s) are not UsageEvents (audit-sink dead-letters them "
                    "to audit-sink.dlq)",
                    r->usage_undecodable);
        return 0;
}

/* Compares rows of (key, a, b) where a != b; prints them. */
static int mismatches(run_t *r, int check, const char *sql, const char *key,
                      const char *what, int64_t *count)
{
        PGresult *res = query(r, sql, 0, NULL);
        json_t *arr;
        int i, nf;

        if (!res)
                return -1;
        arr = json_array();
        nf = PQnfields(res);
        *count = PQntuples(res) ? getint(res, 0, nf - 1) : 0;
        for (i = 0; i < PQntuples(res); i++) {
                json_t *o = json_object();
                char line[900];
                size_t len = 0;
                int f;

                for (f = 0; f < nf - 1; f++) {
                        const char *v =
                            PQgetisnull(res, i, f) ? "-" : PQgetvalue(res, i, f);

                        json_object_set_new(o, PQfname(res, f),
                                            PQgetisnull(res, i, f) ? json_null()
                                                                   : json_string(v));
                        if (len < sizeof(line))
                                len += (size_t)snprintf(line + len, sizeof(line) - len,
                                                        "%s%s=%s", f ? " " : "",
                                                        PQfname(res, f), v);
                }
                json_array_append_new(arr, o);
                say(r, check, "%s: %s", what, line);
        }
        if (*count > PQntuples(res))
                say(r, check, "... %" PRId64 " %s in all", *count, what);
        json_object_set_new(r->json[check], key, arr);
        PQclear(res);
        return 0;
}

static int check_counters(run_t *r)
{
        int64_t codes, customers, bad_codes, bad_customers;
        PGresult *res;
        int c = CHECK_COUNTERS;

        res = query(r,
                    "SELECT (SELECT count(*) FROM usage_counters), "
                    "(SELECT count(*) FROM customer_usage_counters)",
                    0, NULL);
        if (!res)
                return -1;
        codes = getint(res, 0, 0);
        customers = getint(res, 0, 1);
        PQclear(res);
        if (mismatches(
                r, c,
                "WITH ev AS (SELECT code, count(*) FILTER (WHERE outcome = 'applied') "
                "AS applied, count(*) FILTER (WHERE outcome = 'rejected') AS rejected "
                "FROM usage_events GROUP BY code) "
                "SELECT code, uc.redemptions AS counter_redemptions, ev.applied AS "
                "applied_events, uc.rejections AS counter_rejections, ev.rejected AS "
                "rejected_events, count(*) OVER () FROM usage_counters uc FULL JOIN "
                "ev USING (code) WHERE coalesce(uc.redemptions, 0) <> "
                "coalesce(ev.applied, 0) OR coalesce(uc.rejections, 0) <> "
                "coalesce(ev.rejected, 0) ORDER BY code LIMIT 10",
                "codes_mismatched", "code counter differs", &bad_codes) ||
            mismatches(
                r, c,
                "WITH ev AS (SELECT code, customer_id, count(*) AS applied FROM "
                "usage_events WHERE outcome = 'applied' AND customer_id IS NOT NULL "
                "GROUP BY code, customer_id) "
                "SELECT code, customer_id, cc.redemptions AS counter, ev.applied AS "
                "applied_events, count(*) OVER () FROM customer_usage_counters cc "
                "FULL JOIN ev USING (code, customer_id) WHERE "
                "coalesce(cc.redemptions, 0) <> coalesce(ev.applied, 0) "
                "ORDER BY code, customer_id LIMIT 10",
                "customers_mismatched", "customer counter differs", &bad_customers))
                return -1;
        r->ok[c] = bad_codes == 0 && bad_customers == 0;
        jset_int(r, c, "codes", codes);
        jset_int(r, c, "customers", customers);
        say(r, c,
            "%" PRId64 " code counters and %" PRId64
            " customer counters against usage_events: %" PRId64 " + %" PRId64 " differ",
            codes, customers, bad_codes, bad_customers);
        return 0;
}

/* A code's limits from its definition (jsonb), NULL when absent or not a
 * plain non-negative integer (the admin validates; this must not fail on a
 * definition that slipped through). */
static const char limits_sql[] =
    "SELECT code, CASE WHEN jsonb_typeof(definition->'usage_limit') = 'number' AND "
    "(definition->>'usage_limit') ~ '^[0-9]{1,18}$' "
    "THEN (definition->>'usage_limit')::bigint END AS usage_limit, "
    "CASE WHEN jsonb_typeof(definition->'per_customer_limit') = 'number' AND "
    "(definition->>'per_customer_limit') ~ '^[0-9]{1,18}$' "
    "THEN (definition->>'per_customer_limit')::bigint END AS per_customer_limit "
    "FROM codes";

static int check_limits(run_t *r)
{
        int64_t with_limit, with_cust_limit, over[4];
        PGresult *res;
        int c = CHECK_LIMITS, i;
        const char *lim = limits_sql;
        char sql[4][2000];

        snprintf(
            sql[0], sizeof(sql[0]),
            "WITH l AS (%s) SELECT code, uc.redemptions, l.usage_limit, count(*) OVER () "
            "FROM usage_counters uc JOIN l USING (code) WHERE uc.redemptions > "
            "l.usage_limit ORDER BY code LIMIT 10",
            lim);
        snprintf(sql[1], sizeof(sql[1]),
                 "WITH l AS (%s) SELECT code, cc.customer_id, cc.redemptions, "
                 "l.per_customer_limit, count(*) OVER () FROM customer_usage_counters cc "
                 "JOIN l USING (code) WHERE cc.redemptions > l.per_customer_limit "
                 "ORDER BY code, cc.customer_id LIMIT 10",
                 lim);
        snprintf(sql[2], sizeof(sql[2]),
                 "WITH l AS (%s), rd AS (SELECT code, count(*) AS redemptions FROM "
                 "redemptions GROUP BY code) SELECT code, rd.redemptions, l.usage_limit, "
                 "count(*) OVER () FROM rd JOIN l USING (code) WHERE rd.redemptions > "
                 "l.usage_limit ORDER BY code LIMIT 10",
                 lim);
        snprintf(
            sql[3], sizeof(sql[3]),
            "WITH l AS (%s), rd AS (SELECT code, customer_id, count(*) AS redemptions "
            "FROM redemptions WHERE customer_id IS NOT NULL GROUP BY code, "
            "customer_id) SELECT code, rd.customer_id, rd.redemptions, "
            "l.per_customer_limit, count(*) OVER () FROM rd JOIN l USING (code) WHERE "
            "rd.redemptions > l.per_customer_limit ORDER BY code, rd.customer_id LIMIT "
            "10",
            lim);
        if (mismatches(r, c, sql[0], "codes_over_limit",
                       "usage_counters over usage_limit", &over[0]) ||
            mismatches(r, c, sql[1], "customers_over_limit",
                       "customer_usage_counters over per_customer_limit", &over[1]) ||
            mismatches(r, c, sql[2], "redemptions_over_limit",
                       "redemptions over usage_limit", &over[2]) ||
            mismatches(r, c, sql[3], "customer_redemptions_over_limit",
                       "redemptions of a customer over per_customer_limit", &over[3]))
                return -1;
        snprintf(sql[0], sizeof(sql[0]),
                 "WITH l AS (%s) SELECT count(*) FILTER (WHERE usage_limit IS NOT NULL), "
                 "count(*) FILTER (WHERE per_customer_limit IS NOT NULL) FROM l",
                 lim);
        res = query(r, sql[0], 0, NULL);
        if (!res)
                return -1;
        with_limit = getint(res, 0, 0);
        with_cust_limit = getint(res, 0, 1);
        PQclear(res);
        r->ok[c] = 1;
        for (i = 0; i < 4; i++)
                r->ok[c] &= over[i] == 0;
        jset_int(r, c, "codes_with_usage_limit", with_limit);
        jset_int(r, c, "codes_with_per_customer_limit", with_cust_limit);
        say(r, c,
            "%" PRId64 " codes with a usage_limit, %" PRId64
            " with a per_customer_limit; over the limit: %" PRId64 " codes, %" PRId64
            " customers (usage_counters), %" PRId64 " codes, %" PRId64
            " customers (redemptions)",
            with_limit, with_cust_limit, over[0], over[1], over[2], over[3]);
        return 0;
}

/* ---- Redis ---- */

/* pattern = glob-escaped prefix + suffix + "*". */
static void scan_pattern(const char *prefix, const char *suffix, char *out, size_t size)
{
        size_t n = 0;
        const char *p;

        for (p = prefix; *p && n + 3 < size; p++) {
                if (*p == '*' || *p == '?' || *p == '[' || *p == ']' || *p == '\\')
                        out[n++] = '\\';
                out[n++] = *p;
        }
        snprintf(out + n, size - n, "%s*", suffix);
}

static int utf8_text(const char *s, size_t n)
{
        size_t i = 0;

        while (i < n) {
                unsigned char c = (unsigned char)s[i];
                size_t len = c < 0x80                 ? 1
                             : c >= 0xC2 && c <= 0xDF ? 2
                             : c >= 0xE0 && c <= 0xEF ? 3
                             : c >= 0xF0 && c <= 0xF4 ? 4
                                                      : 0;
                size_t k;

                if (c == 0 || len == 0 || n - i < len)
                        return 0;
                for (k = 1; k < len; k++)
                        if (((unsigned char)s[i + k] & 0xC0) != 0x80)
                                return 0;
                if ((c == 0xE0 && (unsigned char)s[i + 1] < 0xA0) ||
                    (c == 0xED && (unsigned char)s[i + 1] >= 0xA0) ||
                    (c == 0xF0 && (unsigned char)s[i + 1] < 0x90) ||
                    (c == 0xF4 && (unsigned char)s[i + 1] >= 0x90))
                        return 0;
                i += len;
        }
        return 1;
}

/* A Redis value as a COPY field: text, or \N when not a plain string. */
static void copy_value(po_dynbuf_t *b, const redisReply *v)
{
        char tmp[64];

        if (v->type == REDIS_REPLY_STRING && v->len < sizeof(tmp) &&
            utf8_text(v->str, v->len)) {
                memcpy(tmp, v->str, v->len);
                tmp[v->len] = '\0';
                copy_text(b, tmp);
        } else if (v->type == REDIS_REPLY_INTEGER) {
                po_dynbuf_addf(b, "%lld", v->integer);
        } else {
                po_dynbuf_add(b, "?", 1); /* not an integer: a mismatch */
        }
}

/* SCANs keys prefix+suffix*, and runs cmd on each (pipelined), passing each
 * reply to row(). Returns the number of keys, or -1. */
typedef int (*reply_fn)(run_t *r, const char *code, const redisReply *reply);

static int64_t scan_keys(run_t *r, const char *suffix, const char *cmd, reply_fn row,
                         int64_t *unreadable)
{
        char pattern[600], cursor[32] = "0";
        size_t plen = strlen(r->o->redis_prefix) + strlen(suffix);
        int64_t total = 0;

        scan_pattern(r->o->redis_prefix, suffix, pattern, sizeof(pattern));
        do {
                redisReply *s = redisCommand(r->redis, "SCAN %s MATCH %s COUNT 1000",
                                             cursor, pattern);
                size_t i;

                if (!s || s->type != REDIS_REPLY_ARRAY || s->elements != 2 ||
                    s->element[0]->type != REDIS_REPLY_STRING ||
                    s->element[0]->len >= sizeof(cursor) ||
                    s->element[1]->type != REDIS_REPLY_ARRAY) {
                        fail_run(r, "redis: SCAN: %s",
                                 s ? "unexpected reply" : r->redis->errstr);
                        if (s)
                                freeReplyObject(s);
                        return -1;
                }
                memcpy(cursor, s->element[0]->str, s->element[0]->len);
                cursor[s->element[0]->len] = '\0';
                for (i = 0; i < s->element[1]->elements; i++) {
                        const redisReply *k = s->element[1]->element[i];

                        redisAppendCommand(r->redis, "%s %b", cmd, k->str, k->len);
                }
                for (i = 0; i < s->element[1]->elements; i++) {
                        const redisReply *k = s->element[1]->element[i];
                        redisReply *v = NULL;
                        char code[300];

                        if (redisGetReply(r->redis, (void **)&v) != REDIS_OK || !v) {
                                fail_run(r, "redis: %s", r->redis->errstr);
                                freeReplyObject(s);
                                return -1;
                        }
                        total++;
                        if (k->type != REDIS_REPLY_STRING || k->len <= plen ||
                            k->len - plen >= sizeof(code) ||
                            !utf8_text(k->str + plen, k->len - plen) ||
                            v->type == REDIS_REPLY_ERROR) {
                                (*unreadable)++;
                                freeReplyObject(v);
                                continue;
                        }
                        memcpy(code, k->str + plen, k->len - plen);
                        code[k->len - plen] = '\0';
                        if (row(r, code, v)) {
                                freeReplyObject(v);
                                freeReplyObject(s);
                                return -1;
                        }
                        freeReplyObject(v);
                }
                freeReplyObject(s);
        } while (strcmp(cursor, "0") != 0);
        return total;
}

static int total_row(run_t *r, const char *code, const redisReply *v)
{
        copy_text(&r->copy, code);
        po_dynbuf_add(&r->copy, "\t", 1);
        copy_value(&r->copy, v);
        po_dynbuf_add(&r->copy, "\n", 1);
        return copy_flush(r, 0);
}

static int cust_row(run_t *r, const char *code, const redisReply *v)
{
        size_t i;

        if (v->type != REDIS_REPLY_ARRAY)
                return 0;
        for (i = 0; i + 1 < v->elements; i += 2) {
                const redisReply *f = v->element[i];

                if (f->type != REDIS_REPLY_STRING || !utf8_text(f->str, f->len) ||
                    f->len > 1000) {
                        /* A field that cannot be a customer id: keep it visible. */
                        copy_text(&r->copy, code);
                        po_dynbuf_addf(&r->copy, "\t?unreadable field %zu\t?\n", i / 2);
                        continue;
                }
                copy_text(&r->copy, code);
                po_dynbuf_add(&r->copy, "\t", 1);
                {
                        char *id = strndup(f->str, f->len);

                        if (!id)
                                return fail_run(r, "out of memory");
                        copy_text(&r->copy, id);
                        free(id);
                }
                po_dynbuf_add(&r->copy, "\t", 1);
                copy_value(&r->copy, v->element[i + 1]);
                po_dynbuf_add(&r->copy, "\n", 1);
                if (copy_flush(r, 0))
                        return -1;
        }
        return 0;
}

static int copy_begin(run_t *r, const char *sql)
{
        PGresult *res = PQexec(r->pg, sql);

        if (!res || PQresultStatus(res) != PGRES_COPY_IN) {
                fail_run(r, "postgres: %s", PQerrorMessage(r->pg));
                PQclear(res);
                return -1;
        }
        PQclear(res);
        po_dynbuf_reset(&r->copy);
        r->copying = 1;
        return 0;
}

static int copy_end(run_t *r)
{
        PGresult *res;
        int ok;

        r->copying = 0;
        ok = copy_flush(r, 1) == 0;
        if (PQputCopyEnd(r->pg, ok ? NULL : "reconcile failed") != 1)
                ok = 0;
        while ((res = PQgetResult(r->pg)) != NULL) {
                if (PQresultStatus(res) != PGRES_COMMAND_OK && ok) {
                        ok = 0;
                        fail_run(r, "postgres: COPY: %s", PQerrorMessage(r->pg));
                }
                PQclear(res);
        }
        return ok ? 0 : -1;
}

static const char redis_int[] = "CASE WHEN %s IS NULL THEN 0 WHEN %s ~ '^-?[0-9]{1,18}$' "
                                "THEN %s::bigint END";

static int check_redis(run_t *r)
{
        int64_t keys_total, keys_cust, unreadable = 0, bad_codes, bad_customers;
        char sql[2][2400], conv[2][300];
        int c = CHECK_REDIS;

        if (copy_begin(r, "COPY reconcile_redis_total (code, value) FROM STDIN"))
                return -1;
        keys_total = scan_keys(r, "total:", "GET", total_row, &unreadable);
        if (copy_end(r) || keys_total < 0)
                return -1;
        if (copy_begin(r,
                       "COPY reconcile_redis_cust (code, customer_id, value) FROM STDIN"))
                return -1;
        keys_cust = scan_keys(r, "cust:", "HGETALL", cust_row, &unreadable);
        if (copy_end(r) || keys_cust < 0)
                return -1;
        snprintf(conv[0], sizeof(conv[0]), redis_int, "rs.value", "rs.value", "rs.value");
        snprintf(conv[1], sizeof(conv[1]), redis_int, "rc.value", "rc.value", "rc.value");
        snprintf(
            sql[0], sizeof(sql[0]),
            "WITH rd AS (SELECT code, count(*) AS n FROM redemptions GROUP BY code), "
            "x AS (SELECT code, uc.redemptions AS usage_counters, rd.n AS "
            "redemptions, rs.value AS redis, %s AS redis_n FROM usage_counters uc "
            "FULL JOIN rd USING (code) FULL JOIN reconcile_redis_total rs USING (code)) "
            "SELECT code, usage_counters, redemptions, redis, count(*) OVER () FROM x "
            "WHERE coalesce(usage_counters, 0) <> coalesce(redemptions, 0) OR "
            "redis_n IS DISTINCT FROM coalesce(redemptions, 0) ORDER BY code LIMIT 10",
            conv[0]);
        snprintf(
            sql[1], sizeof(sql[1]),
            "WITH x AS (SELECT code, customer_id, cc.redemptions AS counter, rc.value AS "
            "redis, %s AS redis_n FROM customer_usage_counters cc FULL JOIN "
            "reconcile_redis_cust rc USING (code, customer_id)) "
            "SELECT code, customer_id, counter, redis, count(*) OVER () FROM x WHERE "
            "redis_n IS DISTINCT FROM coalesce(counter, 0) ORDER BY code, customer_id "
            "LIMIT 10",
            conv[1]);
        if (mismatches(r, c, sql[0], "codes_mismatched", "code totals differ",
                       &bad_codes) ||
            mismatches(r, c, sql[1], "customers_mismatched", "customer counts differ",
                       &bad_customers))
                return -1;
        r->ok[c] = bad_codes == 0 && bad_customers == 0 && unreadable == 0;
        jset_int(r, c, "redis_total_keys", keys_total);
        jset_int(r, c, "redis_customer_keys", keys_cust);
        jset_int(r, c, "unreadable_keys", unreadable);
        say(r, c,
            "%" PRId64 " %stotal:* and %" PRId64 " %scust:* keys against redemptions and "
            "the usage counters: %" PRId64 " codes, %" PRId64 " customers differ",
            keys_total, r->o->redis_prefix, keys_cust, r->o->redis_prefix, bad_codes,
            bad_customers);
        if (unreadable)
                say(r, c,
                    "%" PRId64
                    " key(s) of the wrong type or with a name that is not text",
                    unreadable);
        return 0;
}

/* ---- one attempt ---- */

static int connect_all(run_t *r)
{
        char err[600];
        struct timeval tv = {.tv_sec = 5};

        if (!r->rk) {
                char group[64];

                snprintf(group, sizeof(group), "promo-reconcile-%d", (int)getpid());
                r->rk = new_consumer(r, group, err, sizeof(err));
                if (!r->rk)
                        return fail_run(r, "kafka: %s", err);
        }
        if (!r->pg || PQstatus(r->pg) != CONNECTION_OK) {
                if (r->pg)
                        PQfinish(r->pg);
                r->pg = po_pg_connect(&r->cfg, "promo-reconcile", err, sizeof(err));
                if (!r->pg)
                        return fail_run(r, "postgres: %s", err);
        }
        if (r->o->only[CHECK_REDIS] && (!r->redis || r->redis->err)) {
                if (r->redis)
                        redisFree(r->redis);
                r->redis =
                    redisConnectWithTimeout(r->cfg.redis_host, r->cfg.redis_port, tv);
                if (!r->redis || r->redis->err) {
                        fail_run(r, "redis %s:%d: %s", r->cfg.redis_host,
                                 r->cfg.redis_port,
                                 r->redis ? r->redis->errstr : "out of memory");
                        if (r->redis)
                                redisFree(r->redis);
                        r->redis = NULL;
                        return -1;
                }
                redisSetTimeout(r->redis, tv);
        }
        return 0;
}

static int attempt(run_t *r)
{
        int c, s;

        r->error[0] = '\0';
        for (c = 0; c < NCHECKS; c++) {
                json_decref(r->json[c]);
                /* name and ok first in the document; ok is set at the end. */
                r->json[c] = json_object();
                json_object_set_new(r->json[c], "name", json_string(check_names[c]));
                json_object_set_new(r->json[c], "ok", json_false());
                po_dynbuf_reset(&r->text[c]);
                r->ok[c] = 0;
                r->ran[c] = 0;
        }
        for (s = 0; s < NSTAGES; s++)
                r->dlq_orders[s] = 0;
        r->dlq_other = r->dlq_unknown = r->usage_msgs = r->usage_undecodable = 0;
        r->duplicates = r->dup_other = r->dup_unknown = 0;
        r->retention_cut = 0;
        if (connect_all(r))
                return -1;
        if (po_pg_schema_version(r->pg) <= 0)
                return fail_run(r, "the database has no schema (run promo-migrate)");
        if (exec_sql(r,
                     "SET client_min_messages = warning; "
                     "CREATE TEMP TABLE IF NOT EXISTS reconcile_usage (event_id text, "
                     "kafka_partition integer, kafka_offset bigint); "
                     "CREATE TEMP TABLE IF NOT EXISTS reconcile_redis_total (code text, "
                     "value text); "
                     "CREATE TEMP TABLE IF NOT EXISTS reconcile_redis_cust (code text, "
                     "customer_id text, value text); "
                     "TRUNCATE reconcile_usage, reconcile_redis_total, "
                     "reconcile_redis_cust"))
                return -1;
        /* Outputs first, then the groups' offsets, then the inputs: what a
         * stage writes meanwhile can only make inputs outnumber outputs
         * (a transient "unaccounted", never a false "doubled"). */
        if (plan(r) || watermarks(r, K_PRICED, K_DUPLICATES) ||
            (r->o->only[CHECK_ORDERS] && committed_offsets(r)) ||
            watermarks(r, K_RAW, K_RETRY) || watermarks(r, K_USAGE, K_USAGE))
                return -1;
        if (r->o->only[CHECK_USAGE] &&
            copy_begin(r,
                       "COPY reconcile_usage (event_id, kafka_partition, kafka_offset) "
                       "FROM STDIN"))
                return -1;
        if (read_all(r)) {
                if (r->copying) {
                        char keep[sizeof(r->error)];

                        memcpy(keep, r->error, sizeof(keep));
                        copy_end(r);
                        memcpy(r->error, keep, sizeof(keep));
                }
                return -1;
        }
        if (r->copying && copy_end(r))
                return -1;
        if (r->o->only[CHECK_ORDERS]) {
                check_orders(r);
                r->ran[CHECK_ORDERS] = 1;
        }
        if (r->o->only[CHECK_USAGE]) {
                if (check_usage(r))
                        return -1;
                r->ran[CHECK_USAGE] = 1;
        }
        if (r->o->only[CHECK_COUNTERS]) {
                if (check_counters(r))
                        return -1;
                r->ran[CHECK_COUNTERS] = 1;
        }
        if (r->o->only[CHECK_LIMITS]) {
                if (check_limits(r))
                        return -1;
                r->ran[CHECK_LIMITS] = 1;
        }
        if (r->o->only[CHECK_REDIS]) {
                if (check_redis(r))
                        return -1;
                r->ran[CHECK_REDIS] = 1;
        }
        return 0;
}

static int all_ok(const run_t *r)
{
        int c;

        for (c = 0; c < NCHECKS; c++)
                if (r->ran[c] && !r->ok[c])
                        return 0;
        return 1;
}

static void report(run_t *r, int status, int attempts, long long elapsed_ms)
{
        static const char *const titles[NCHECKS] = {
            "every raw order ended somewhere", "usage rows = usage events",
            "counters = usage events", "no code or customer over its limit",
            "Redis counters = PostgreSQL"};
        int c;

        if (r->o->json) {
                json_t *root = json_object(), *checks = json_array();
                char *s;

                json_object_set_new(root, "ok", json_boolean(status == 0));
                json_object_set_new(root, "status", json_integer(status));
                json_object_set_new(root, "attempts", json_integer(attempts));
                json_object_set_new(root, "elapsed_ms", json_integer(elapsed_ms));
                if (status == 2)
                        json_object_set_new(root, "error", json_string(r->error));
                for (c = 0; c < NCHECKS && status != 2; c++) {
                        if (!r->ran[c])
                                continue;
                        json_object_set_new(r->json[c], "ok", json_boolean(r->ok[c]));
                        json_array_append(checks, r->json[c]);
                }
                json_object_set_new(root, "checks", checks);
                s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
                if (s)
                        printf("%s\n", s);
                free(s);
                json_decref(root);
                return;
        }
        if (status == 2) {
                printf("promo-reconcile: could not check: %s\n", r->error);
                return;
        }
        for (c = 0; c < NCHECKS; c++) {
                if (!r->ran[c])
                        continue;
                printf("[%s] %s: %s\n%s", r->ok[c] ? "PASS" : "FAIL", check_names[c],
                       titles[c], po_dynbuf_str(&r->text[c]));
        }
        printf("%s (%d attempt%s, %.1f s)\n",
               status == 0 ? "RECONCILED: every check passes"
                           : "NOT RECONCILED: a check failed",
               attempts, attempts == 1 ? "" : "s", (double)elapsed_ms / 1000.0);
}

/* ---- options ---- */

static void usage(FILE *f)
{
        fprintf(f,
                "usage: promo-reconcile [--wait SECONDS] [--json] [--only CHECKS]\n"
                "                       [--topics-prefix P] [--group-prefix G] "
                "[--redis-prefix R] [--timeout SECONDS]\n"
                "  checks (default all): orders,usage,counters,limits,redis\n"
                "  --wait S          poll every 2 s until everything balances, at most S "
                "seconds\n"
                "  --json            one JSON document on stdout\n"
                "  --topics-prefix   prepended to every topic name (tests)\n"
                "  --group-prefix    the stages' consumer groups are <G><service> "
                "(default promo-)\n"
                "  --redis-prefix    usage counters keys (default promo:usage:)\n"
                "  --timeout S       give up reading a topic after S s without progress "
                "(default 60)\n"
                "exit status: 0 reconciled, 1 a check failed, 2 could not check\n");
}

static int parse_int(const char *s, int min, int max, int *out)
{
        char *end = NULL;
        long v;

        errno = 0;
        v = strtol(s, &end, 10);
        if (errno || !end || *end || v < min || v > max)
                return -1;
        *out = (int)v;
        return 0;
}

static int parse_only(const char *s, opts_t *o)
{
        int c;

        memset(o->only, 0, sizeof(o->only));
        while (*s) {
                size_t len = strcspn(s, ",");
                int found = 0;

                for (c = 0; c < NCHECKS; c++)
                        if (strlen(check_names[c]) == len &&
                            strncmp(s, check_names[c], len) == 0)
                                o->only[c] = found = 1;
                if (!found)
                        return -1;
                s += len;
                if (*s == ',')
                        s++;
        }
        return 0;
}

static int parse_opts(int argc, char **argv, opts_t *o)
{
        int i, c;

        memset(o, 0, sizeof(*o));
        o->timeout_s = 60;
        o->topics_prefix = "";
        o->group_prefix = "promo-";
        o->redis_prefix = "promo:usage:";
        for (c = 0; c < NCHECKS; c++)
                o->only[c] = 1;
        for (i = 1; i < argc; i++) {
                const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

                if (strcmp(a, "--json") == 0) {
                        o->json = 1;
                        continue;
                }
                if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
                        return 1;
                if (!v)
                        return -1;
                if (strcmp(a, "--wait") == 0 && !parse_int(v, 0, 86400, &o->wait_s))
                        ;
                else if (strcmp(a, "--timeout") == 0 &&
                         !parse_int(v, 1, 3600, &o->timeout_s))
                        ;
                else if (strcmp(a, "--topics-prefix") == 0 && strlen(v) < 100)
                        o->topics_prefix = v;
                else if (strcmp(a, "--group-prefix") == 0 && strlen(v) < 100)
                        o->group_prefix = v;
                else if (strcmp(a, "--redis-prefix") == 0 && strlen(v) < 100)
                        o->redis_prefix = v;
                else if (strcmp(a, "--only") == 0 && !parse_only(v, o))
                        ;
                else
                        return -1;
                i++;
        }
        return 0;
}

int main(int argc, char **argv)
{
        opts_t o;
        run_t r;
        char err[512];
        long long start = mono_ms(), deadline;
        int rc, status, attempts = 0, c;

        rc = parse_opts(argc, argv, &o);
        if (rc) {
                usage(rc > 0 ? stdout : stderr);
                return rc > 0 ? 0 : 2;
        }
        po_log_init("promo-reconcile", PO_LOG_WARN);
        memset(&r, 0, sizeof(r));
        r.o = &o;
        po_dynbuf_init(&r.copy, (size_t)1 << 30);
        for (c = 0; c < NCHECKS; c++)
                po_dynbuf_init(&r.text[c], 1u << 20);
        if (po_config_load(&r.cfg, NULL, 0, err, sizeof(err))) {
                fprintf(stderr, "promo-reconcile: %s\n", err);
                return 2;
        }
        r.avro = po_avro_new(err, sizeof(err));
        r.parts = calloc(MAX_PARTS, sizeof(*r.parts));
        if (!r.avro || !r.parts) {
                fprintf(stderr, "promo-reconcile: %s\n", r.avro ? "out of memory" : err);
                return 2;
        }
        deadline = start + (long long)o.wait_s * 1000;
        for (;;) {
                attempts++;
                rc = attempt(&r);
                status = rc ? 2 : all_ok(&r) ? 0 : 1;
                if (status == 0 || mono_ms() + 2000 > deadline)
                        break;
                if (!o.json)
                        fprintf(stderr, "promo-reconcile: attempt %d: %s; again in 2 s\n",
                                attempts, status == 2 ? r.error : "not balanced yet");
                nanosleep(&(struct timespec){.tv_sec = 2}, NULL);
        }
        report(&r, status, attempts, mono_ms() - start);
        for (c = 0; c < NCHECKS; c++) {
                json_decref(r.json[c]);
                po_dynbuf_release(&r.text[c]);
        }
        po_dynbuf_release(&r.copy);
        if (r.rk) {
                rd_kafka_consumer_close(r.rk);
                rd_kafka_destroy(r.rk);
        }
        if (r.pg)
                PQfinish(r.pg);
        if (r.redis)
                redisFree(r.redis);
        po_avro_destroy(r.avro);
        free(r.parts);
        return status;
}
