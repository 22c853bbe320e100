/* audit-sink: stores every usage event (promo.usage) and every dead letter of
 * the pipeline's stages (intake.dlq, validator.dlq, calculator.dlq) in
 * PostgreSQL, exactly once.
 *
 * A stage (po_stage) whose callback only decodes and buffers: each message is
 * dispatched on its Avro schema name (po_avro_peek), not on its topic:
 *   UsageEvent  -> a row of usage_events (and the usage counters);
 *   DeadLetter  -> a row of dead_letters;
 *   anything else, or undecodable -> PO_STAGE_PERMANENT (audit-sink.dlq),
 *                  except a record read from a dead-letter topic, which is
 *                  never dead-lettered again: it is stored in dead_letters
 *                  with stage "unknown", reason "UNDECODABLE" and its bytes.
 * The batch's rows are written in before_commit, in one PostgreSQL
 * transaction (audit_pg.h); the runner commits the Kafka offsets only after
 * it, and when it fails the Kafka transaction aborts and the batch is
 * consumed again. The inserts are idempotent, so a batch written twice (a
 * crash between the two commits) is stored once and counted once.
 * docs/audit.md has the whole argument.
 *
 *   audit-sink                 run (environment: PROMO_AUDIT_INPUT,
 *                              PROMO_AUDIT_DLQS, PROMO_AUDIT_DLQ, ...)
 *   audit-sink --check         probe Kafka and PostgreSQL once
 *   audit-sink --bench ROWS [--batch N] [--method insert|copy]
 *                              measure the batch write on PROMO_PG_DSN
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit_pg.h"
#include "po/config.h"
#include "po/log.h"
#include "po/messages.h"
#include "po/stage.h"

#define SINK_MAX_DLQS 16
/* A batch's rows, strings and bytes live in one arena, released when the
 * batch is over. Far above what a batch holds: the stage runner ends one at
 * PROMO_STAGE_BATCH_BYTES of input (64 MiB; 1 GiB at most, plus one
 * message), and a row takes at most twice its message (base64). */
#define SINK_ARENA_LIMIT ((size_t)4 << 30)
/* Indexed text columns must fit a btree entry (about 2.7 kB): longer ids are
 * refused before PostgreSQL would refuse the whole batch. */
#define SINK_MAX_ID 256
#define SINK_PG_RETRY_MS 2000

typedef struct sink {
        po_service_t *svc;
        po_metrics_t *metrics;
        po_avro_t *avro;
        audit_pg_t *pg;
        char dlq_names[SINK_MAX_DLQS][256];
        const char *dlqs[SINK_MAX_DLQS + 1]; /* NULL-terminated, for the stage */
        po_arena_t arena;
        audit_usage_row_t *usage;
        size_t nusage, cap_usage;
        audit_dead_row_t *dead;
        size_t ndead, cap_dead;
        int oom; /* a row could not be buffered: the batch must not commit */
        int pg_down;
        long long next_pg_try_ms;
        /* Fault injection for the tests (PROMO_AUDIT_CRASH_AFTER_WRITES): die
         * right after the n-th database commit, before its Kafka commit. */
        long crash_after, writes;
} sink_t;

static long long mono_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long mono_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- text checks ---- */

/* 1 when s[0..n) is strict UTF-8 (no overlong forms, no surrogates) without
 * NUL: what PostgreSQL's text and jsonb accept. */
static int utf8_ok(const unsigned char *s, size_t n)
{
        size_t i = 0;

        while (i < n) {
                unsigned c = s[i];
                size_t len, k;
                uint32_t cp;

                if (c == 0)
                        return 0;
                if (c < 0x80) {
                        i++;
                        continue;
                }
                if (c >= 0xC2 && c <= 0xDF) {
                        len = 2;
                        cp = c & 0x1F;
                } else if (c >= 0xE0 && c <= 0xEF) {
                        len = 3;
                        cp = c & 0x0F;
                } else if (c >= 0xF0 && c <= 0xF4) {
                        len = 4;
                        cp = c & 0x07;
                } else {
                        return 0;
                }
                if (n - i < len)
                        return 0;
                for (k = 1; k < len; k++) {
                        if ((s[i + k] & 0xC0) != 0x80)
                                return 0;
                        cp = cp << 6 | (s[i + k] & 0x3F);
                }
                if ((len == 3 && cp < 0x800) ||
                    (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
                    (cp >= 0xD800 && cp <= 0xDFFF))
                        return 0;
                i += len;
        }
        return 1;
}

static char *base64(po_arena_t *a, const unsigned char *p, size_t n)
{
        static const char tab[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        char *out, *o;
        size_t i;

        if (n > SIZE_MAX / 2)
                return NULL;
        out = po_arena_alloc(a, (n + 2) / 3 * 4 + 1);
        if (!out)
                return NULL;
        for (i = 0, o = out; i + 2 < n; i += 3) {
                *o++ = tab[p[i] >> 2];
                *o++ = tab[(p[i] & 3) << 4 | p[i + 1] >> 4];
                *o++ = tab[(p[i + 1] & 15) << 2 | p[i + 2] >> 6];
                *o++ = tab[p[i + 2] & 63];
        }
        if (i < n) {
                *o++ = tab[p[i] >> 2];
                if (i + 1 < n) {
                        *o++ = tab[(p[i] & 3) << 4 | p[i + 1] >> 4];
                        *o++ = tab[(p[i + 1] & 15) << 2];
                } else {
                        *o++ = tab[(p[i] & 3) << 4];
                        *o++ = '=';
                }
                *o++ = '=';
        }
        *o = '\0';
        return out;
}

static void *arena_copy(po_arena_t *a, const void *p, size_t n)
{
        void *out = po_arena_alloc(a, n ? n : 1);

        if (out && n)
                memcpy(out, p, n);
        return out;
}

/* ---- headers as JSON ---- */

/* Adds {"key": ..., "value": text} (or "value_base64", or "value": null;
 * "key_base64" for a key that is not text) to arr. Returns -1 when out of
 * memory. */
static int header_json(json_t *arr, po_arena_t *a, const char *key, size_t key_len,
                       const void *value, size_t value_len, int has_value)
{
        json_t *o = json_object(), *k = NULL, *v = NULL;
        int key_text = utf8_ok((const unsigned char *)key, key_len);
        int value_text = has_value && utf8_ok(value, value_len);

        if (!o)
                return -1;
        if (key_text) {
                k = json_stringn(key, key_len);
        } else {
                const char *b = base64(a, (const unsigned char *)key, key_len);

                k = b ? json_string(b) : NULL;
        }
        if (!has_value) {
                v = json_null();
        } else if (value_text) {
                v = json_stringn(value, value_len);
        } else {
                const char *b = base64(a, value, value_len);

                v = b ? json_string(b) : NULL;
        }
        if (!k || !v) {
                json_decref(k);
                json_decref(v);
                json_decref(o);
                return -1;
        }
        /* The _new calls take their argument's reference, even on failure. */
        if (json_object_set_new(o, key_text ? "key" : "key_base64", k) ||
            json_object_set_new(o, value_text || !has_value ? "value" : "value_base64",
                                v)) {
                json_decref(o);
                return -1;
        }
        return json_array_append_new(arr, o) ? -1 : 0;
}

/* The array as compact JSON in the arena, or NULL when out of memory. */
static const char *json_to_arena(po_arena_t *a, json_t *arr)
{
        char *s = json_dumps(arr, JSON_COMPACT);
        const char *out = s ? arena_copy(a, s, strlen(s) + 1) : NULL;

        free(s);
        return out;
}

static const char *kafka_headers_json(po_arena_t *a, const rd_kafka_message_t *msg)
{
        rd_kafka_headers_t *h = NULL;
        json_t *arr = json_array();
        const char *name, *out = NULL;
        const void *v;
        size_t len, i;

        if (!arr)
                return NULL;
        if (!rd_kafka_message_headers(msg, &h) && h)
                for (i = 0; !rd_kafka_header_get_all(h, i, &name, &v, &len); i++)
                        if (header_json(arr, a, name, strlen(name), v, len, v != NULL))
                                goto out;
        out = json_to_arena(a, arr);
out:
        json_decref(arr);
        return out;
}

/* ---- the batch ---- */

static audit_usage_row_t *new_usage(sink_t *s)
{
        if (s->nusage == s->cap_usage) {
                size_t cap = s->cap_usage ? s->cap_usage * 2 : 256;
                audit_usage_row_t *p = realloc(s->usage, cap * sizeof(*p));

                if (!p)
                        return NULL;
                s->usage = p;
                s->cap_usage = cap;
        }
        memset(&s->usage[s->nusage], 0, sizeof(s->usage[0]));
        return &s->usage[s->nusage++];
}

static audit_dead_row_t *new_dead(sink_t *s)
{
        if (s->ndead == s->cap_dead) {
                size_t cap = s->cap_dead ? s->cap_dead * 2 : 64;
                audit_dead_row_t *p = realloc(s->dead, cap * sizeof(*p));

                if (!p)
                        return NULL;
                s->dead = p;
                s->cap_dead = cap;
        }
        memset(&s->dead[s->ndead], 0, sizeof(s->dead[0]));
        return &s->dead[s->ndead++];
}

static void clear_batch(sink_t *s)
{
        po_arena_release(&s->arena);
        po_arena_init(&s->arena, SINK_ARENA_LIMIT);
        s->nusage = 0;
        s->ndead = 0;
        s->oom = 0;
}

/* "<topic>:<partition>:<offset>" of msg, in the arena. */
static const char *source_of(po_arena_t *a, const rd_kafka_message_t *msg)
{
        char buf[400];
        int n = snprintf(buf, sizeof(buf), "%s:%" PRId32 ":%" PRId64,
                         rd_kafka_topic_name(msg->rkt), msg->partition, msg->offset);

        return n > 0 && (size_t)n < sizeof(buf) ? arena_copy(a, buf, (size_t)n + 1)
                                                : NULL;
}

static int in_range_ms(int64_t ms)
{
        return ms >= AUDIT_PG_MIN_US / 1000 && ms <= AUDIT_PG_MAX_US / 1000;
}

static int is_dlq(const sink_t *s, const char *topic)
{
        int i;

        for (i = 0; s->dlqs[i]; i++)
                if (strcmp(s->dlqs[i], topic) == 0)
                        return 1;
        return 0;
}

/* Why a message cannot become a row: a reason code and a sentence. */
typedef struct refusal {
        const char *reason;
        char error[400];
} refusal_t;

static int refuse(refusal_t *r, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int refuse(refusal_t *r, const char *reason, const char *fmt, ...)
{
        va_list ap;

        r->reason = reason;
        va_start(ap, fmt);
        vsnprintf(r->error, sizeof(r->error), fmt, ap);
        va_end(ap);
        return -1;
}

static int id_ok(const char *s)
{
        return s && *s && strlen(s) <= SINK_MAX_ID;
}

/* Buffers a UsageEvent. Returns 0, -1 with *r filled when the event cannot be
 * stored, -2 when out of memory. */
static int take_usage(sink_t *s, const rd_kafka_message_t *msg, refusal_t *r)
{
        po_usage_event_t ev;
        audit_usage_row_t *u;
        char err[300];
        po_err_t e;
        int i;

        memset(&ev, 0, sizeof(ev));
        e = po_usage_decode(s->avro, msg->payload, msg->len, &s->arena, &ev, err,
                            sizeof(err));
        if (e == PO_ERR_NOMEM)
                return -2;
        if (e)
                return refuse(r, "UNDECODABLE", "UsageEvent: %s", err);
        if (!id_ok(ev.event_id) || !id_ok(ev.order_id) || !id_ok(ev.code) ||
            (ev.customer_id && !id_ok(ev.customer_id)) || !ev.channel || !ev.account)
                return refuse(r, "BAD_EVENT",
                              "UsageEvent: event_id, order_id, code and customer_id must "
                              "be 1..%d bytes",
                              SINK_MAX_ID);
        if (ev.value_applied < 0)
                return refuse(r, "BAD_EVENT",
                              "UsageEvent %s: value_applied %" PRId64 " < 0", ev.event_id,
                              ev.value_applied);
        for (i = 0; i < 3; i++)
                if (ev.currency[i] < 'A' || ev.currency[i] > 'Z')
                        return refuse(r, "BAD_EVENT", "UsageEvent %s: bad currency",
                                      ev.event_id);
        if (ev.currency[3] != '\0')
                return refuse(r, "BAD_EVENT", "UsageEvent %s: bad currency", ev.event_id);
        if (ev.occurred_at < AUDIT_PG_MIN_US || ev.occurred_at > AUDIT_PG_MAX_US)
                return refuse(r, "BAD_EVENT",
                              "UsageEvent %s: occurred_at %" PRId64 " out of range",
                              ev.event_id, ev.occurred_at);
        u = new_usage(s);
        if (!u)
                return -2;
        u->event_id = ev.event_id;
        u->order_id = ev.order_id;
        u->channel = ev.channel;
        u->account = ev.account;
        u->code = ev.code;
        u->customer_id = ev.customer_id;
        u->applied = ev.applied;
        u->reason = ev.reason;
        u->value_applied = ev.value_applied;
        memcpy(u->currency, ev.currency, 4);
        u->occurred_at_us = ev.occurred_at;
        u->partition = msg->partition;
        u->offset = msg->offset;
        u->source = source_of(&s->arena, msg);
        u->topic = po_arena_strndup(&s->arena, rd_kafka_topic_name(msg->rkt),
                                    strlen(rd_kafka_topic_name(msg->rkt)));
        u->has_key = msg->key != NULL;
        u->key = msg->key ? arena_copy(&s->arena, msg->key, msg->key_len) : NULL;
        u->key_len = msg->key ? msg->key_len : 0;
        u->raw = arena_copy(&s->arena, msg->payload, msg->len);
        u->raw_len = msg->len;
        if (!u->source || !u->topic || (msg->key && !u->key) || !u->raw) {
                s->nusage--;
                return -2;
        }
        return 0;
}

/* Buffers a DeadLetter record. Returns as take_usage. */
static int take_deadletter(sink_t *s, const rd_kafka_message_t *msg, refusal_t *r)
{
        po_deadletter_t dl;
        audit_dead_row_t *d;
        json_t *arr = NULL;
        char err[300];
        po_err_t e;
        size_t i;
        int rc = -2;

        e = po_avro_decode_deadletter(s->avro, msg->payload, msg->len, &dl, err,
                                      sizeof(err));
        if (e == PO_ERR_NOMEM)
                return -2;
        if (e)
                return refuse(r, "UNDECODABLE", "DeadLetter: %s", err);
        d = new_dead(s);
        arr = json_array();
        if (!d || !arr)
                goto out;
        for (i = 0; i < dl.header_count; i++)
                if (header_json(arr, &s->arena, dl.headers[i].key,
                                strlen(dl.headers[i].key), dl.headers[i].value,
                                dl.headers[i].value_len, dl.headers[i].has_value))
                        goto out;
        d->source = source_of(&s->arena, msg);
        d->stage = po_arena_strndup(&s->arena, dl.stage, strlen(dl.stage));
        d->reason = po_arena_strndup(&s->arena, dl.reason_code, strlen(dl.reason_code));
        d->error = po_arena_strndup(&s->arena, dl.error, strlen(dl.error));
        d->attempts = dl.attempts;
        d->priority = dl.priority;
        d->has_first = in_range_ms(dl.first_failure_ms);
        d->first_ms = dl.first_failure_ms;
        d->has_last = in_range_ms(dl.last_failure_ms);
        d->last_ms = dl.last_failure_ms;
        d->source_topic =
            po_arena_strndup(&s->arena, dl.source_topic, strlen(dl.source_topic));
        d->has_source_pos = 1;
        d->source_partition = dl.partition;
        d->source_offset = dl.offset;
        d->key = dl.has_original_key
                     ? arena_copy(&s->arena, dl.original_key, dl.original_key_len)
                     : NULL;
        d->key_len = dl.has_original_key ? dl.original_key_len : 0;
        d->value = arena_copy(&s->arena, dl.original_value, dl.original_value_len);
        d->value_len = dl.original_value_len;
        d->headers_json = json_to_arena(&s->arena, arr);
        if (d->source && d->stage && d->reason && d->error && d->source_topic &&
            (d->key || !dl.has_original_key) && d->value && d->headers_json)
                rc = 0;
out:
        if (rc && d)
                s->ndead--;
        json_decref(arr);
        po_deadletter_release(&dl);
        return rc;
}

/* A record of a dead-letter topic that is not a DeadLetter: kept whole, never
 * dead-lettered again. Returns 0 or -2 (out of memory). */
static int take_unknown(sink_t *s, const rd_kafka_message_t *msg, const refusal_t *r)
{
        audit_dead_row_t *d = new_dead(s);
        rd_kafka_headers_t *h = NULL;
        const void *v;
        size_t len;

        if (!d)
                return -2;
        d->source = source_of(&s->arena, msg);
        d->stage = "unknown";
        d->reason = "UNDECODABLE";
        /* Our own messages are ASCII, but the error may quote a name. */
        d->error = utf8_ok((const unsigned char *)r->error, strlen(r->error))
                       ? po_arena_strndup(&s->arena, r->error, strlen(r->error))
                       : "the record is not a DeadLetter";
        /* The runner names the source topic in a header; take it when it is
         * text, as a hint for the operator. */
        if (!rd_kafka_message_headers(msg, &h) &&
            !rd_kafka_header_get_last(h, PO_HDR_SOURCE_TOPIC, &v, &len) && v &&
            len <= 255 && utf8_ok(v, len))
                d->source_topic = po_arena_strndup(&s->arena, v, len);
        d->key = msg->key ? arena_copy(&s->arena, msg->key, msg->key_len) : NULL;
        d->key_len = msg->key ? msg->key_len : 0;
        d->value = arena_copy(&s->arena, msg->payload, msg->len);
        d->value_len = msg->len;
        d->headers_json = kafka_headers_json(&s->arena, msg);
        if (!d->source || !d->error || (msg->key && !d->key) || !d->value ||
            !d->headers_json) {
                s->ndead--;
                return -2;
        }
        po_metrics_add(s->metrics, "promo_audit_undecodable_total",
                       "Records of dead-letter topics stored as UNDECODABLE.", NULL, 1);
        return 0;
}

static po_stage_result_t process(po_stage_t *st, const rd_kafka_message_t *msg,
                                 po_stage_failure_t *fail, void *opaque)
{
        sink_t *s = opaque;
        const char *topic = rd_kafka_topic_name(msg->rkt);
        const char *name = NULL;
        refusal_t r = {0};
        char err[300];
        int version, rc;

        (void)st;
        if (s->oom)
                return PO_STAGE_OK; /* the batch fails in before_commit anyway */
        if (!msg->payload || msg->len == 0)
                rc = refuse(&r, "UNDECODABLE", "empty message");
        else if (po_avro_peek(s->avro, msg->payload, msg->len, &name, &version, err,
                              sizeof(err)))
                rc = refuse(&r, "UNDECODABLE", "%s", err);
        else if (strcmp(name, "UsageEvent") == 0)
                rc = take_usage(s, msg, &r);
        else if (strcmp(name, "DeadLetter") == 0)
                rc = take_deadletter(s, msg, &r);
        else
                rc = refuse(&r, "UNEXPECTED_SCHEMA",
                            "a %s message has no place in the audit", name);
        if (rc == -1 && is_dlq(s, topic))
                rc = take_unknown(s, msg, &r);
        if (rc == -2) {
                po_log_error("out of memory buffering %s[%" PRId32 "]@%" PRId64
                             ": failing the batch",
                             topic, msg->partition, msg->offset);
                s->oom = 1;
                return PO_STAGE_OK;
        }
        if (rc == 0)
                return PO_STAGE_OK;
        snprintf(fail->reason, sizeof(fail->reason), "%s", r.reason);
        snprintf(fail->error, sizeof(fail->error), "%s", r.error);
        fail->priority = 1;
        return PO_STAGE_PERMANENT;
}

/* ---- the hooks ---- */

static void set_pg_down(sink_t *s, const char *why)
{
        char msg[200];

        snprintf(msg, sizeof(msg), "postgres: %.180s", why);
        if (!s->pg_down)
                po_log_warn("batch write failed: %s", why);
        s->pg_down = 1;
        s->next_pg_try_ms = mono_ms() + SINK_PG_RETRY_MS;
        po_service_set_work_ready(s->svc, 0, msg);
}

static void set_pg_up(sink_t *s)
{
        if (s->pg_down)
                po_log_info("postgres answers again");
        s->pg_down = 0;
        po_service_set_work_ready(s->svc, 1, NULL);
}

static po_err_t before_commit(po_stage_t *st, void *opaque)
{
        sink_t *s = opaque;
        audit_pg_stats_t stats;
        char err[512];
        long long t0 = mono_us();
        po_err_t e;

        (void)st;
        if (s->oom)
                return PO_ERR_NOMEM;
        if (s->nusage == 0 && s->ndead == 0)
                return PO_OK;
        e = audit_pg_write(s->pg, s->usage, s->nusage, s->dead, s->ndead, &stats, err,
                           sizeof(err));
        if (e) {
                po_metrics_add(s->metrics, "promo_audit_write_failures_total",
                               "Batch writes to PostgreSQL that failed (the batch is "
                               "consumed again).",
                               NULL, 1);
                set_pg_down(s, err);
                return e;
        }
        po_metrics_observe_us(s->metrics, "promo_audit_batch_write_seconds",
                              "Time to write one batch to PostgreSQL (one transaction).",
                              (uint64_t)(mono_us() - t0));
        po_metrics_add(s->metrics, "promo_audit_rows_written_total",
                       "Rows inserted, by table.", "table=\"usage_events\"",
                       (uint64_t)stats.usage_inserted);
        po_metrics_add(s->metrics, "promo_audit_rows_written_total",
                       "Rows inserted, by table.", "table=\"dead_letters\"",
                       (uint64_t)stats.dead_inserted);
        /* Rows already there: a replayed batch, or a repeated event id. */
        po_metrics_add(s->metrics, "promo_audit_rows_existing_total",
                       "Rows not inserted because they were already stored, by table.",
                       "table=\"usage_events\"",
                       (uint64_t)((int64_t)s->nusage - stats.usage_inserted > 0
                                      ? (int64_t)s->nusage - stats.usage_inserted
                                      : 0));
        po_metrics_add(s->metrics, "promo_audit_rows_rejected_total",
                       "Rows PostgreSQL refused, stored as DB_REJECTED dead letters.",
                       NULL, (uint64_t)stats.rejected);
        if (s->pg_down)
                set_pg_up(s);
        if (s->crash_after > 0 && ++s->writes == s->crash_after) {
                po_log_warn("PROMO_AUDIT_CRASH_AFTER_WRITES=%ld: killing myself between "
                            "the database commit and the Kafka commit",
                            s->crash_after);
                raise(SIGKILL);
        }
        return PO_OK;
}

static void after_batch(po_stage_t *st, int committed, void *opaque)
{
        (void)st;
        (void)committed;
        clear_batch(opaque);
}

/* While PostgreSQL is down and no batch comes to try it, keep probing so that
 * readiness comes back on its own. */
static void idle(po_stage_t *st, void *opaque)
{
        sink_t *s = opaque;
        char err[512];

        (void)st;
        if (!s->pg_down || mono_ms() < s->next_pg_try_ms)
                return;
        if (audit_pg_connect(s->pg, err, sizeof(err)) == PO_OK)
                set_pg_up(s);
        else
                set_pg_down(s, err);
}

/* ---- configuration ---- */

static int topic_name_ok(const char *t, size_t len)
{
        size_t i;

        if (len == 0 || len > 249)
                return 0;
        for (i = 0; i < len; i++)
                if (!(t[i] == '.' || t[i] == '_' || t[i] == '-' ||
                      (t[i] >= 'a' && t[i] <= 'z') || (t[i] >= 'A' && t[i] <= 'Z') ||
                      (t[i] >= '0' && t[i] <= '9')))
                        return 0;
        return 1;
}

/* PROMO_AUDIT_DLQS, comma-separated. */
static int load_dlqs(sink_t *s, char *errstr, size_t size)
{
        const char *v = getenv("PROMO_AUDIT_DLQS");
        const char *p;
        int n = 0;

        if (!v || !*v)
                v = "intake.dlq,validator.dlq,calculator.dlq";
        for (p = v; *p;) {
                size_t len = strcspn(p, ",");

                if (len > 0) {
                        if (n == SINK_MAX_DLQS || !topic_name_ok(p, len)) {
                                snprintf(
                                    errstr, size,
                                    "PROMO_AUDIT_DLQS must be up to %d comma-separated "
                                    "topic names, got \"%s\"",
                                    SINK_MAX_DLQS, v);
                                return -1;
                        }
                        memcpy(s->dlq_names[n], p, len);
                        s->dlq_names[n][len] = '\0';
                        s->dlqs[n] = s->dlq_names[n];
                        n++;
                }
                p += len;
                if (*p == ',')
                        p++;
        }
        s->dlqs[n] = NULL;
        return 0;
}

static int count_dlqs(const sink_t *s)
{
        int n = 0;

        while (s->dlqs[n])
                n++;
        return n;
}

static int write_method(audit_pg_method_t *m, char *errstr, size_t size)
{
        const char *v = po_env_or("PROMO_AUDIT_WRITE", "insert");

        if (strcmp(v, "insert") == 0)
                *m = AUDIT_PG_INSERT;
        else if (strcmp(v, "copy") == 0)
                *m = AUDIT_PG_COPY;
        else {
                snprintf(errstr, size,
                         "PROMO_AUDIT_WRITE must be insert or copy, got \"%s\"", v);
                return -1;
        }
        return 0;
}

/* Applies the migrations, waiting for PostgreSQL while it does not answer.
 * Returns 0, or -1 when a migration failed or a stop was asked for. */
static int migrate(sink_t *s)
{
        char err[512];
        int tries = 0;
        po_err_t e;

        while (po_service_running()) {
                e = audit_pg_migrate(s->pg, err, sizeof(err));
                if (e == PO_OK)
                        return 0;
                if (e != PO_ERR_DEPENDENCY) {
                        po_log_error("schema migration failed: %s", err);
                        return -1;
                }
                po_service_set_work_ready(s->svc, 0, err);
                if (tries++ % 10 == 0)
                        po_log_warn("waiting for PostgreSQL to migrate the schema: %s",
                                    err);
                po_service_tick(s->svc, 1000);
        }
        return -1;
}

/* ---- --bench ---- */

static int parse_long(const char *s, long min, long max, long *out)
{
        char *end = NULL;
        long v;

        errno = 0;
        v = strtol(s, &end, 10);
        if (errno || !end || *end || v < min || v > max)
                return -1;
        *out = v;
        return 0;
}

static int cmp_ll(const void *a, const void *b)
{
        long long x = *(const long long *)a, y = *(const long long *)b;

        return x < y ? -1 : x > y;
}

/* Writes rows synthetic usage events in batches of batch rows, twice (the
 * second pass is a replay: nothing inserted), and prints rows/s and batch
 * latency. Writes into the schema PROMO_PG_DSN selects. */
static int bench(long rows, long batch, audit_pg_method_t method)
{
        po_config_t cfg;
        audit_pg_t *pg = NULL;
        audit_usage_row_t *u = NULL;
        long long *lat = NULL;
        char err[512], *ids = NULL, prefix[32];
        long i, pass, nb = (rows + batch - 1) / batch;
        int rc = 1;

        if (po_config_load(&cfg, NULL, 0, err, sizeof(err))) {
                fprintf(stderr, "audit-sink: %s\n", err);
                return 2;
        }
        pg = audit_pg_new(&cfg, "audit-sink-bench", method);
        u = calloc((size_t)rows, sizeof(*u));
        ids = malloc((size_t)rows * 64);
        lat = calloc((size_t)nb, sizeof(*lat));
        if (!pg || !u || !ids || !lat) {
                fprintf(stderr, "audit-sink: out of memory\n");
                goto out;
        }
        if (audit_pg_migrate(pg, err, sizeof(err))) {
                fprintf(stderr, "audit-sink: %s\n", err);
                goto out;
        }
        snprintf(prefix, sizeof(prefix), "bench-%ld-%d", (long)time(NULL), (int)getpid());
        for (i = 0; i < rows; i++) {
                static const char *const codes[] = {"BENCH10", "BENCH20", "BENCH30",
                                                    "BENCHFREE", "BENCHVIP"};
                static const char *const customers[] = {"c-1", "c-2", "c-3", "c-4",
                                                        NULL,  "c-6", "c-7", "c-8"};

                snprintf(ids + i * 64, 64, "%s-%ld", prefix, i);
                u[i].event_id = ids + i * 64;
                u[i].order_id = ids + i * 64;
                u[i].channel = "web";
                u[i].account = "bench";
                u[i].code = codes[i % 5];
                u[i].customer_id = customers[i % 8];
                u[i].applied = i % 4 != 0;
                u[i].reason = u[i].applied ? NULL : "USAGE_LIMIT_REACHED";
                u[i].value_applied = u[i].applied ? 1000 + i % 977 : 0;
                memcpy(u[i].currency, "EUR", 4);
                u[i].occurred_at_us = 1700000000000000LL + i;
                u[i].partition = (int32_t)(i % 6);
                u[i].offset = i;
                u[i].source = u[i].event_id;
                u[i].topic = "bench";
        }
        for (pass = 0; pass < 2; pass++) {
                audit_pg_stats_t st;
                int64_t inserted = 0;
                long long t0 = mono_us(), total;

                for (i = 0; i < nb; i++) {
                        long from = i * batch,
                             n = rows - from < batch ? rows - from : batch;
                        long long b0 = mono_us();

                        if (audit_pg_write(pg, u + from, (size_t)n, NULL, 0, &st, err,
                                           sizeof(err))) {
                                fprintf(stderr, "audit-sink: %s\n", err);
                                goto out;
                        }
                        lat[i] = mono_us() - b0;
                        inserted += st.usage_inserted;
                }
                total = mono_us() - t0;
                qsort(lat, (size_t)nb, sizeof(*lat), cmp_ll);
                printf("%s %-6s rows=%ld batch=%ld inserted=%" PRId64
                       " rows/s=%.0f batch p50=%.2f ms p99=%.2f ms max=%.2f ms\n",
                       method == AUDIT_PG_COPY ? "copy  " : "insert",
                       pass ? "replay" : "new", rows, batch, inserted,
                       (double)rows * 1e6 / (double)total, (double)lat[nb / 2] / 1000.0,
                       (double)lat[nb * 99 / 100] / 1000.0, (double)lat[nb - 1] / 1000.0);
        }
        rc = 0;
out:
        free(lat);
        free(ids);
        free(u);
        audit_pg_destroy(pg);
        return rc;
}

static int bench_main(int argc, char **argv)
{
        long rows = 0, batch = 500;
        audit_pg_method_t method = AUDIT_PG_INSERT;
        int i;

        po_log_init("audit-sink", PO_LOG_WARN);
        for (i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--bench") == 0 && i + 1 < argc &&
                    !parse_long(argv[i + 1], 1, 10000000, &rows)) {
                        i++;
                } else if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc &&
                           !parse_long(argv[i + 1], 1, 100000, &batch)) {
                        i++;
                } else if (strcmp(argv[i], "--method") == 0 && i + 1 < argc &&
                           (strcmp(argv[i + 1], "insert") == 0 ||
                            strcmp(argv[i + 1], "copy") == 0)) {
                        method = strcmp(argv[++i], "copy") == 0 ? AUDIT_PG_COPY
                                                                : AUDIT_PG_INSERT;
                } else {
                        fprintf(stderr, "usage: audit-sink --bench ROWS [--batch N] "
                                        "[--method insert|copy]\n");
                        return 2;
                }
        }
        return bench(rows, batch, method);
}

int main(int argc, char **argv)
{
        static const po_service_def_t def = {
            .name = "audit-sink",
            .port_env = "PROMO_AUDIT_SINK_HTTP_PORT",
            .default_port = 58084,
            .deps = (1u << PO_DEP_KAFKA) | (1u << PO_DEP_POSTGRES),
        };
        sink_t s;
        po_stage_conf_t conf = {0};
        audit_pg_method_t method;
        char errstr[512];
        int status = 2;

        if (argc > 1 && strcmp(argv[1], "--bench") == 0)
                return bench_main(argc, argv);
        if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
                printf(
                    "usage: audit-sink              run (see docs/audit.md)\n"
                    "       audit-sink --check      probe Kafka and PostgreSQL once\n"
                    "       audit-sink --bench ROWS [--batch N] [--method insert|copy]\n"
                    "                               measure the batch write on "
                    "PROMO_PG_DSN\n");
                return 0;
        }
        if (argc > 1)
                return po_service_main(&def, argc, argv); /* --check, or usage */
        memset(&s, 0, sizeof(s));
        po_arena_init(&s.arena, SINK_ARENA_LIMIT);
        s.svc = po_service_new(&def, errstr, sizeof(errstr));
        if (!s.svc) {
                fprintf(stderr, "audit-sink: %s\n", errstr);
                return 2;
        }
        s.metrics = po_service_metrics(s.svc);
        if (load_dlqs(&s, errstr, sizeof(errstr)) ||
            write_method(&method, errstr, sizeof(errstr))) {
                po_log_error("%s", errstr);
                goto out;
        }
        if (getenv("PROMO_AUDIT_CRASH_AFTER_WRITES") &&
            parse_long(getenv("PROMO_AUDIT_CRASH_AFTER_WRITES"), 0, 1000000000,
                       &s.crash_after)) {
                snprintf(errstr, sizeof(errstr),
                         "PROMO_AUDIT_CRASH_AFTER_WRITES must be an integer >= 0");
                po_log_error("%s", errstr);
                goto out;
        }
        s.avro = po_avro_new(errstr, sizeof(errstr));
        s.pg = audit_pg_new(po_service_config(s.svc), "audit-sink", method);
        if (!s.avro || !s.pg) {
                po_log_error("%s", s.avro ? "out of memory" : errstr);
                goto out;
        }
        po_service_set_work_ready(s.svc, 0, "migrating the schema");
        if (migrate(&s)) {
                status = po_service_running() ? 1 : 0;
                goto out;
        }
        conf.input_topic = po_env_or("PROMO_AUDIT_INPUT", "promo.usage");
        conf.committed_input = 1; /* written by a transactional stage */
        conf.extra_topics = s.dlqs;
        conf.dlq_topic = po_env_or("PROMO_AUDIT_DLQ", "audit-sink.dlq");
        conf.group_id = getenv("PROMO_AUDIT_GROUP");
        conf.transactional_id = getenv("PROMO_AUDIT_TXID");
        /* No retry topics: no single message fails for a transient cause.
         * PostgreSQL down fails the whole batch, which is consumed again.
         * (A non-zero first delay keeps the runner from defaulting to 2.) */
        conf.retries = 0;
        conf.retry_delay_ms[0] = 1;
        conf.process = process;
        conf.before_commit = before_commit;
        conf.after_batch = after_batch;
        conf.idle = idle;
        conf.opaque = &s;
        po_log_info(
            "usage events from %s, dead letters from %s (+%d more); writing with %s",
            conf.input_topic, s.dlqs[0] ? s.dlqs[0] : "(none)",
            count_dlqs(&s) > 1 ? count_dlqs(&s) - 1 : 0,
            method == AUDIT_PG_COPY ? "COPY" : "pipelined INSERT");
        status = po_stage_serve(s.svc, &conf);
out:
        audit_pg_destroy(s.pg);
        po_avro_destroy(s.avro);
        po_arena_release(&s.arena);
        free(s.usage);
        free(s.dead);
        po_service_destroy(s.svc);
        return status;
}
