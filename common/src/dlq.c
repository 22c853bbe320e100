/* Reading and replaying dead-letter topics (see po/dlq.h). */
#include "po/dlq.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "po/stage.h"

#define DLQ_POLL_MS 200
#define DLQ_META_TIMEOUT_MS 10000

/* The runner's own headers, never replayed. */
static const char *const runner_headers[] = {
    PO_HDR_ATTEMPTS, PO_HDR_NOT_BEFORE,    PO_HDR_FIRST_FAILURE,    PO_HDR_REASON,
    PO_HDR_ERROR,    PO_HDR_SOURCE_TOPIC,  PO_HDR_SOURCE_PARTITION, PO_HDR_SOURCE_OFFSET,
    PO_HDR_PRIORITY, PO_HDR_REPLAYED_FROM,
};

static long long mono_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

po_err_t po_dlq_parse_pos(const char *s, po_dlq_pos_t *out)
{
        const char *colon;
        char *end = NULL;
        long long p, o;

        if (!s || !(colon = strchr(s, ':')) || colon == s || !colon[1])
                return PO_ERR_BAD_INPUT;
        if (s[0] < '0' || s[0] > '9' || colon[1] < '0' || colon[1] > '9')
                return PO_ERR_BAD_INPUT; /* no sign, no space */
        errno = 0;
        p = strtoll(s, &end, 10);
        if (errno || end != colon || p > INT32_MAX)
                return PO_ERR_BAD_INPUT;
        o = strtoll(colon + 1, &end, 10);
        if (errno || *end)
                return PO_ERR_BAD_INPUT;
        out->partition = (int32_t)p;
        out->offset = (int64_t)o;
        return PO_OK;
}

int po_dlq_topic_valid(const char *name)
{
        size_t i, n = name ? strlen(name) : 0;

        if (n < 1 || n > 249 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
                return 0;
        for (i = 0; i < n; i++) {
                char c = name[i];

                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
                        return 0;
        }
        return 1;
}

void po_dlq_snapshot_init(po_dlq_snapshot_t *snap)
{
        memset(snap, 0, sizeof(*snap));
}

static void entry_release(po_dlq_entry_t *e)
{
        if (e->has_payload) {
                po_deadletter_release(&e->dl);
        } else {
                /* Our own copies (summary or header hints). */
                free((void *)e->dl.stage);
                free((void *)e->dl.source_topic);
                free((void *)e->dl.reason_code);
                free((void *)e->dl.error);
        }
        free(e->decode_error);
        memset(e, 0, sizeof(*e));
}

void po_dlq_snapshot_release(po_dlq_snapshot_t *snap)
{
        size_t i;

        if (!snap)
                return;
        for (i = 0; i < snap->count; i++)
                entry_release(&snap->entries[i]);
        free(snap->entries);
        free(snap->low);
        free(snap->high);
        po_dlq_snapshot_init(snap);
}

int po_dlq_matches(const po_dlq_select_t *sel, const po_dlq_entry_t *e)
{
        size_t i;

        if (!sel)
                return 1;
        if (sel->all && (e->decoded || sel->list_undecodable))
                return 1;
        if (e->decoded && sel->reason && strcmp(sel->reason, e->dl.reason_code) == 0)
                return 1;
        for (i = 0; i < sel->at_count; i++)
                if (sel->at[i].partition == e->pos.partition &&
                    sel->at[i].offset == e->pos.offset)
                        return 1;
        return 0;
}

/* A header of the record as a new string, or NULL. */
static char *hdr_dup(rd_kafka_headers_t *h, const char *name)
{
        const void *v;
        size_t len;
        char *s;

        if (!h || rd_kafka_header_get_last(h, name, &v, &len) || !v || len > 4096 ||
            memchr(v, '\0', len))
                return NULL;
        s = malloc(len + 1);
        if (!s)
                return NULL;
        memcpy(s, v, len);
        s[len] = '\0';
        return s;
}

/* What an undecodable record's runner headers still tell. */
static void hints_from_headers(const rd_kafka_message_t *m, po_dlq_entry_t *e)
{
        rd_kafka_headers_t *h = NULL;
        char *prio, *end = NULL;
        long long v;

        if (rd_kafka_message_headers(m, &h) || !h)
                return;
        e->dl.reason_code = hdr_dup(h, PO_HDR_REASON);
        e->dl.source_topic = hdr_dup(h, PO_HDR_SOURCE_TOPIC);
        prio = hdr_dup(h, PO_HDR_PRIORITY);
        if (prio) {
                errno = 0;
                v = strtoll(prio, &end, 10);
                if (!errno && *end == '\0' && end != prio)
                        e->dl.priority = (int64_t)v;
                free(prio);
        }
}

/* Keeps the summary of a decoded dead letter and frees the rest. */
static po_err_t keep_summary(po_deadletter_t *full, po_deadletter_t *out)
{
        *out = *full;
        out->stage = strdup(full->stage);
        out->source_topic = strdup(full->source_topic);
        out->reason_code = strdup(full->reason_code);
        out->error = strdup(full->error);
        out->original_key = NULL;
        out->original_value = NULL;
        out->headers = NULL;
        po_deadletter_release(full);
        if (!out->stage || !out->source_topic || !out->reason_code || !out->error)
                return PO_ERR_NOMEM;
        return PO_OK;
}

/* Decodes one record into e. Returns PO_ERR_NOMEM or PO_OK (an undecodable
 * record is an entry too). */
static po_err_t decode_record(po_avro_t *avro, const rd_kafka_message_t *m,
                              int keep_payload, po_dlq_entry_t *e)
{
        char err[256];
        rd_kafka_timestamp_type_t tstype;
        po_deadletter_t dl;

        memset(e, 0, sizeof(*e));
        e->pos.partition = m->partition;
        e->pos.offset = m->offset;
        e->timestamp_ms = rd_kafka_message_timestamp(m, &tstype);
        if (tstype == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE)
                e->timestamp_ms = -1;
        if (po_avro_decode_deadletter(avro, m->payload ? m->payload : "", m->len, &dl,
                                      err, sizeof(err)) == PO_OK) {
                e->decoded = 1;
                if (keep_payload) {
                        e->dl = dl;
                        e->has_payload = 1;
                        return PO_OK;
                }
                return keep_summary(&dl, &e->dl);
        }
        e->decode_error = strdup(err[0] ? err : "not a DeadLetter");
        if (!e->decode_error)
                return PO_ERR_NOMEM;
        hints_from_headers(m, e);
        return PO_OK;
}

static po_err_t snap_push(po_dlq_snapshot_t *snap, size_t max, po_dlq_entry_t *e)
{
        if (snap->count == max)
                return PO_ERR_BAD_INPUT;
        if (snap->count == snap->cap) {
                size_t cap = snap->cap ? snap->cap * 2 : 64;
                po_dlq_entry_t *n = realloc(snap->entries, cap * sizeof(*n));

                if (!n)
                        return PO_ERR_NOMEM;
                snap->entries = n;
                snap->cap = cap;
        }
        snap->entries[snap->count++] = *e;
        memset(e, 0, sizeof(*e));
        return PO_OK;
}

static rd_kafka_t *make_reader(const char *brokers, char *errstr, size_t size)
{
        rd_kafka_conf_t *c = rd_kafka_conf_new();
        struct timespec ts;
        char group[96];
        rd_kafka_t *rk;

        /* A group of its own that never commits: assign() needs no join. */
        clock_gettime(CLOCK_REALTIME, &ts);
        snprintf(group, sizeof(group), "promo-dlq-reader-%ld-%lld-%ld", (long)getpid(),
                 (long long)ts.tv_sec, (long)ts.tv_nsec);
        if (rd_kafka_conf_set(c, "bootstrap.servers", brokers, errstr, size) ||
            rd_kafka_conf_set(c, "group.id", group, errstr, size) ||
            rd_kafka_conf_set(c, "client.id", "promo-dlq", errstr, size) ||
            rd_kafka_conf_set(c, "isolation.level", "read_committed", errstr, size) ||
            rd_kafka_conf_set(c, "enable.auto.commit", "false", errstr, size) ||
            rd_kafka_conf_set(c, "enable.auto.offset.store", "false", errstr, size) ||
            rd_kafka_conf_set(c, "enable.partition.eof", "true", errstr, size) ||
            rd_kafka_conf_set(c, "auto.offset.reset", "earliest", errstr, size)) {
                rd_kafka_conf_destroy(c);
                return NULL;
        }
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, errstr, size);
        if (!rk)
                rd_kafka_conf_destroy(c);
        return rk;
}

/* Sets snap's partition count and watermarks. */
static po_err_t read_watermarks(rd_kafka_t *rk, po_dlq_snapshot_t *snap, char *errstr,
                                size_t size)
{
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, snap->topic, NULL);
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t err;
        po_err_t res = PO_ERR_DEPENDENCY;
        int i;

        if (!rkt) {
                snprintf(errstr, size, "topic %s: %s", snap->topic,
                         rd_kafka_err2str(rd_kafka_last_error()));
                return PO_ERR_INVALID_ARG;
        }
        err = rd_kafka_metadata(rk, 0, rkt, &md, DLQ_META_TIMEOUT_MS);
        if (err) {
                snprintf(errstr, size, "metadata of %s: %s", snap->topic,
                         rd_kafka_err2str(err));
                goto out;
        }
        if (md->topic_cnt != 1 || md->topics[0].err) {
                err = md->topic_cnt == 1 ? md->topics[0].err
                                         : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
                if (err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
                        snprintf(errstr, size, "topic %s does not exist", snap->topic);
                else
                        snprintf(errstr, size, "topic %s: %s", snap->topic,
                                 rd_kafka_err2str(err));
                goto out;
        }
        snap->partition_count = md->topics[0].partition_cnt;
        snap->low = calloc((size_t)snap->partition_count + 1, sizeof(int64_t));
        snap->high = calloc((size_t)snap->partition_count + 1, sizeof(int64_t));
        if (!snap->low || !snap->high) {
                snprintf(errstr, size, "out of memory");
                res = PO_ERR_NOMEM;
                goto out;
        }
        for (i = 0; i < snap->partition_count; i++) {
                err =
                    rd_kafka_query_watermark_offsets(rk, snap->topic, i, &snap->low[i],
                                                     &snap->high[i], DLQ_META_TIMEOUT_MS);
                if (err) {
                        snprintf(errstr, size, "watermarks of %s[%d]: %s", snap->topic, i,
                                 rd_kafka_err2str(err));
                        goto out;
                }
        }
        res = PO_OK;
out:
        if (md)
                rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
        return res;
}

/* Decodes one consumed record; keeps it when the selection matches. */
static po_err_t take_record(po_avro_t *avro, const po_dlq_read_opts_t *opts,
                            po_dlq_snapshot_t *snap, const rd_kafka_message_t *m,
                            size_t max, char *errstr, size_t size)
{
        po_dlq_entry_t e;
        po_err_t err;

        snap->scanned++;
        err = decode_record(avro, m, opts->keep_payload, &e);
        if (err) {
                entry_release(&e);
                snprintf(errstr, size, "out of memory");
                return err;
        }
        if (!e.decoded)
                snap->undecodable++;
        if (!po_dlq_matches(opts->select, &e)) {
                entry_release(&e);
                return PO_OK;
        }
        err = snap_push(snap, max, &e);
        if (err) {
                entry_release(&e);
                if (err == PO_ERR_NOMEM)
                        snprintf(errstr, size, "out of memory");
                else
                        snprintf(errstr, size,
                                 "more than %zu dead letters selected in %s; narrow the "
                                 "selection",
                                 max, snap->topic);
        }
        return err;
}

po_err_t po_dlq_read(po_avro_t *avro, const po_dlq_read_opts_t *opts,
                     po_dlq_snapshot_t *snap, char *errstr, size_t errstr_size)
{
        size_t max = opts && opts->max_entries ? opts->max_entries : PO_DLQ_MAX_ENTRIES;
        int timeout = opts && opts->timeout_ms > 0 ? opts->timeout_ms : PO_DLQ_TIMEOUT_MS;
        rd_kafka_topic_partition_list_t *assign = NULL;
        rd_kafka_t *rk = NULL;
        char *done = NULL;
        char lasterr[256] = "";
        int left = 0, i;
        long long progress;
        po_err_t res = PO_ERR_DEPENDENCY;

        po_dlq_snapshot_release(snap);
        if (!avro || !opts || !opts->brokers || !opts->topic ||
            strlen(opts->topic) >= sizeof(snap->topic)) {
                snprintf(errstr, errstr_size, "po_dlq_read: brokers and topic required");
                return PO_ERR_INVALID_ARG;
        }
        snprintf(snap->topic, sizeof(snap->topic), "%s", opts->topic);
        rk = make_reader(opts->brokers, errstr, errstr_size);
        if (!rk)
                return PO_ERR_INVALID_ARG;
        res = read_watermarks(rk, snap, errstr, errstr_size);
        if (res)
                goto out;
        done = calloc((size_t)snap->partition_count + 1, 1);
        assign = rd_kafka_topic_partition_list_new(snap->partition_count);
        if (!done || !assign) {
                snprintf(errstr, errstr_size, "out of memory");
                res = PO_ERR_NOMEM;
                goto out;
        }
        for (i = 0; i < snap->partition_count; i++) {
                if (snap->high[i] <= snap->low[i]) {
                        done[i] = 1;
                        continue;
                }
                rd_kafka_topic_partition_list_add(assign, snap->topic, i)->offset =
                    snap->low[i];
                left++;
        }
        if (left && rd_kafka_assign(rk, assign)) {
                snprintf(errstr, errstr_size, "assign %s failed", snap->topic);
                res = PO_ERR_DEPENDENCY;
                goto out;
        }
        progress = mono_ms();
        res = PO_OK;
        while (left > 0) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, DLQ_POLL_MS);
                int32_t p;

                if (!m) {
                        if (mono_ms() - progress < timeout)
                                continue;
                        snprintf(errstr, errstr_size,
                                 "%s: %d partition(s) made no progress for %d ms before "
                                 "their end%s%s (an open transaction, or the broker "
                                 "gone?)",
                                 snap->topic, left, timeout,
                                 lasterr[0] ? "; last error: " : "", lasterr);
                        res = PO_ERR_TIMEOUT;
                        break;
                }
                p = m->partition;
                if (m->err && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        snprintf(lasterr, sizeof(lasterr), "%s",
                                 rd_kafka_message_errstr(m));
                        rd_kafka_message_destroy(m);
                        continue;
                }
                if (p < 0 || p >= snap->partition_count || done[p]) {
                        rd_kafka_message_destroy(m);
                        continue;
                }
                progress = mono_ms();
                /* The end: at an EOF past the snapshot, or a record beyond it
                 * (written after the read started). */
                if (m->err || m->offset >= snap->high[p]) {
                        if (m->offset >= snap->high[p]) {
                                done[p] = 1;
                                left--;
                        }
                        rd_kafka_message_destroy(m);
                        continue;
                }
                res = take_record(avro, opts, snap, m, max, errstr, errstr_size);
                if (m->offset + 1 >= snap->high[p]) {
                        done[p] = 1;
                        left--;
                }
                rd_kafka_message_destroy(m);
                if (res)
                        break;
        }
out:
        if (assign)
                rd_kafka_topic_partition_list_destroy(assign);
        free(done);
        if (rk) {
                rd_kafka_consumer_close(rk);
                rd_kafka_destroy(rk);
        }
        return res;
}

static int cmp_i64(int64_t a, int64_t b)
{
        return a < b ? -1 : a > b;
}

static int cmp_position(const void *pa, const void *pb)
{
        const po_dlq_entry_t *a = pa, *b = pb;

        if (a->pos.partition != b->pos.partition)
                return a->pos.partition < b->pos.partition ? -1 : 1;
        return cmp_i64(a->pos.offset, b->pos.offset);
}

static int cmp_priority(const void *pa, const void *pb)
{
        const po_dlq_entry_t *a = pa, *b = pb;
        int c;

        if (a->decoded != b->decoded)
                return a->decoded ? -1 : 1;
        if (a->decoded) {
                if ((c = cmp_i64(b->dl.priority, a->dl.priority)) != 0)
                        return c;
                if ((c = cmp_i64(a->dl.first_failure_ms, b->dl.first_failure_ms)) != 0)
                        return c;
                if ((c = cmp_i64(a->dl.last_failure_ms, b->dl.last_failure_ms)) != 0)
                        return c;
        }
        return cmp_position(pa, pb);
}

void po_dlq_sort_by_priority(po_dlq_snapshot_t *snap)
{
        if (snap->count > 1)
                qsort(snap->entries, snap->count, sizeof(*snap->entries), cmp_priority);
}

void po_dlq_sort_by_position(po_dlq_snapshot_t *snap)
{
        if (snap->count > 1)
                qsort(snap->entries, snap->count, sizeof(*snap->entries), cmp_position);
}

const po_dlq_entry_t *po_dlq_find(const po_dlq_snapshot_t *snap, po_dlq_pos_t pos)
{
        size_t i;

        for (i = 0; i < snap->count; i++)
                if (snap->entries[i].pos.partition == pos.partition &&
                    snap->entries[i].pos.offset == pos.offset)
                        return &snap->entries[i];
        return NULL;
}

static int is_runner_header(const char *name)
{
        size_t i;

        for (i = 0; i < sizeof(runner_headers) / sizeof(runner_headers[0]); i++)
                if (strcmp(name, runner_headers[i]) == 0)
                        return 1;
        return 0;
}

rd_kafka_headers_t *po_dlq_replay_headers(const po_dlq_entry_t *e, const char *dlq_topic)
{
        rd_kafka_headers_t *h = rd_kafka_headers_new(e->dl.header_count + 1);
        char from[320];
        size_t i;

        for (i = 0; e->has_payload && i < e->dl.header_count; i++) {
                const po_header_t *src = &e->dl.headers[i];

                if (!src->key || is_runner_header(src->key))
                        continue;
                rd_kafka_header_add(h, src->key, -1, src->has_value ? src->value : NULL,
                                    src->has_value ? (ssize_t)src->value_len : 0);
        }
        snprintf(from, sizeof(from), "%s:%" PRId32 ":%" PRId64, dlq_topic,
                 e->pos.partition, e->pos.offset);
        rd_kafka_header_add(h, PO_HDR_REPLAYED_FROM, -1, from, -1);
        /* Where the message first came from, as the runner's retries carry
         * it: the stage sees the replay as that message again. Intake's
         * dedupe claim is owned by that position, so an order that was
         * claimed and then dead-lettered is not dropped as a duplicate of
         * itself when replayed. */
        if (e->has_payload && e->dl.source_topic && e->dl.source_topic[0] &&
            e->dl.partition >= 0 && e->dl.offset >= 0) {
                char num[24];

                rd_kafka_header_add(h, PO_HDR_SOURCE_TOPIC, -1, e->dl.source_topic, -1);
                snprintf(num, sizeof(num), "%" PRId32, e->dl.partition);
                rd_kafka_header_add(h, PO_HDR_SOURCE_PARTITION, -1, num, -1);
                snprintf(num, sizeof(num), "%" PRId64, e->dl.offset);
                rd_kafka_header_add(h, PO_HDR_SOURCE_OFFSET, -1, num, -1);
        }
        return h;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
        po_dlq_replay_item_t *it = m->_private;

        (void)rk;
        (void)opaque;
        if (!it)
                return;
        it->err = m->err;
        it->partition = m->partition;
        it->offset = m->offset;
}

static rd_kafka_t *make_producer(const char *brokers, int timeout_ms, char *errstr,
                                 size_t size)
{
        rd_kafka_conf_t *c = rd_kafka_conf_new();
        char tmo[32];
        rd_kafka_t *rk;

        snprintf(tmo, sizeof(tmo), "%d", timeout_ms);
        if (rd_kafka_conf_set(c, "bootstrap.servers", brokers, errstr, size) ||
            rd_kafka_conf_set(c, "client.id", "promo-dlq", errstr, size) ||
            rd_kafka_conf_set(c, "enable.idempotence", "true", errstr, size) ||
            /* A hostile source topic name must never create a topic. */
            rd_kafka_conf_set(c, "allow.auto.create.topics", "false", errstr, size) ||
            rd_kafka_conf_set(c, "message.timeout.ms", tmo, errstr, size) ||
            rd_kafka_conf_set(c, "linger.ms", "5", errstr, size)) {
                rd_kafka_conf_destroy(c);
                return NULL;
        }
        rd_kafka_conf_set_dr_msg_cb(c, on_delivery);
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, errstr, size);
        if (!rk)
                rd_kafka_conf_destroy(c);
        return rk;
}

static const char *destination(const po_dlq_replay_item_t *it)
{
        return it->to ? it->to : it->entry->dl.source_topic;
}

static int32_t dest_partition(const po_dlq_replay_item_t *it)
{
        return it->to || it->entry->dl.partition < 0 ? RD_KAFKA_PARTITION_UA
                                                     : it->entry->dl.partition;
}

/* The partition count of topic, or -1 with errstr set. */
static int partition_count(rd_kafka_t *rk, const char *topic, int timeout_ms,
                           char *errstr, size_t size)
{
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t err;
        int n = -1;

        if (!rkt) {
                snprintf(errstr, size, "topic %s: %s", topic,
                         rd_kafka_err2str(rd_kafka_last_error()));
                return -1;
        }
        err = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
        if (err)
                snprintf(errstr, size, "metadata of %s: %s", topic,
                         rd_kafka_err2str(err));
        else if (md->topic_cnt != 1 ||
                 md->topics[0].err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
                snprintf(errstr, size, "topic %s does not exist", topic);
        else if (md->topics[0].err)
                snprintf(errstr, size, "topic %s: %s", topic,
                         rd_kafka_err2str(md->topics[0].err));
        else
                n = md->topics[0].partition_cnt;
        if (md)
                rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
        return n;
}

/* Every destination valid, existing, with the partition a source topic
 * needs. PO_OK, or PO_ERR_INVALID_ARG / PO_ERR_NOMEM with errstr. */
static po_err_t check_destinations(rd_kafka_t *rk, const char *dlq_topic,
                                   po_dlq_replay_item_t *items, size_t n, int timeout_ms,
                                   char *errstr, size_t size)
{
        int *counts = calloc(n ? n : 1, sizeof(int));
        po_err_t res = PO_ERR_INVALID_ARG;
        size_t i, j;

        if (!counts) {
                snprintf(errstr, size, "out of memory");
                return PO_ERR_NOMEM;
        }
        for (i = 0; i < n; i++) {
                const char *t = destination(&items[i]);
                int32_t p = dest_partition(&items[i]);
                const po_dlq_pos_t *at = &items[i].entry->pos;

                if (!po_dlq_topic_valid(t)) {
                        snprintf(errstr, size,
                                 "%s:%" PRId32 ":%" PRId64
                                 ": \"%.60s\" is not a valid topic name",
                                 dlq_topic, at->partition, at->offset, t);
                        goto out;
                }
                if (strcmp(t, dlq_topic) == 0) {
                        snprintf(errstr, size,
                                 "%s:%" PRId32 ":%" PRId64
                                 ": refusing to replay into the dead-letter topic itself",
                                 dlq_topic, at->partition, at->offset);
                        goto out;
                }
                /* One metadata request per distinct topic. */
                for (j = 0; j < i; j++)
                        if (strcmp(destination(&items[j]), t) == 0)
                                break;
                counts[i] =
                    j < i ? counts[j] : partition_count(rk, t, timeout_ms, errstr, size);
                if (counts[i] < 0)
                        goto out;
                if (p != RD_KAFKA_PARTITION_UA && p >= counts[i]) {
                        snprintf(errstr, size,
                                 "%s:%" PRId32 ":%" PRId64 " came from %s[%" PRId32
                                 "], but %s has %d partitions now (--to partitions by "
                                 "key)",
                                 dlq_topic, at->partition, at->offset, t, p, t,
                                 counts[i]);
                        goto out;
                }
        }
        res = PO_OK;
out:
        free(counts);
        return res;
}

/* Queues one item; sets it->err when it cannot be queued. */
static void produce_item(rd_kafka_t *rk, const char *dlq_topic, po_dlq_replay_item_t *it)
{
        const po_deadletter_t *dl = &it->entry->dl;
        const void *value = it->value ? it->value : dl->original_value;
        size_t value_len = it->value ? it->value_len : dl->original_value_len;
        rd_kafka_headers_t *h = po_dlq_replay_headers(it->entry, dlq_topic);
        rd_kafka_resp_err_t err;

        do {
                err = rd_kafka_producev(
                    rk, RD_KAFKA_V_TOPIC(destination(it)),
                    RD_KAFKA_V_PARTITION(dest_partition(it)),
                    RD_KAFKA_V_KEY(dl->has_original_key ? (void *)dl->original_key : NULL,
                                   dl->has_original_key ? dl->original_key_len : 0),
                    RD_KAFKA_V_VALUE((void *)value, value_len),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(h),
                    RD_KAFKA_V_OPAQUE(it), RD_KAFKA_V_END);
                if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                        rd_kafka_poll(rk, 100);
        } while (err == RD_KAFKA_RESP_ERR__QUEUE_FULL);
        if (err) {
                /* Not taken over on failure. */
                rd_kafka_headers_destroy(h);
                it->err = err;
        }
}

po_err_t po_dlq_replay(const char *brokers, const char *dlq_topic,
                       po_dlq_replay_item_t *items, size_t n, int flags, int timeout_ms,
                       char *errstr, size_t errstr_size)
{
        rd_kafka_t *rk;
        size_t i, failed = 0, unconfirmed = 0;
        po_err_t res;

        if (!brokers || !dlq_topic || (n && !items) || timeout_ms <= 0) {
                snprintf(errstr, errstr_size, "po_dlq_replay: bad arguments");
                return PO_ERR_INVALID_ARG;
        }
        for (i = 0; i < n; i++) {
                if (!items[i].entry || !items[i].entry->decoded ||
                    !items[i].entry->has_payload) {
                        snprintf(errstr, errstr_size,
                                 "item %zu is not a decoded dead letter with its payload",
                                 i);
                        return PO_ERR_INVALID_ARG;
                }
                items[i].err = RD_KAFKA_RESP_ERR__IN_PROGRESS;
                items[i].partition = -1;
                items[i].offset = -1;
        }
        rk = make_producer(brokers, timeout_ms, errstr, errstr_size);
        if (!rk)
                return PO_ERR_INVALID_ARG;
        res =
            check_destinations(rk, dlq_topic, items, n, timeout_ms, errstr, errstr_size);
        if (res || (flags & PO_DLQ_DRY_RUN)) {
                for (i = 0; i < n; i++) {
                        items[i].err = res ? RD_KAFKA_RESP_ERR__INVALID_ARG
                                           : RD_KAFKA_RESP_ERR_NO_ERROR;
                        items[i].partition = dest_partition(&items[i]);
                }
                rd_kafka_destroy(rk);
                return res;
        }
        for (i = 0; i < n; i++) {
                produce_item(rk, dlq_topic, &items[i]);
                rd_kafka_poll(rk, 0);
        }
        if (rd_kafka_flush(rk, timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR) {
                /* Give up on what is left; its reports come with a purge error. */
                rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
                rd_kafka_poll(rk, 0);
        }
        for (i = 0; i < n; i++) {
                if (items[i].err == RD_KAFKA_RESP_ERR__IN_PROGRESS)
                        items[i].err = RD_KAFKA_RESP_ERR__TIMED_OUT;
                if (items[i].err == RD_KAFKA_RESP_ERR__TIMED_OUT ||
                    items[i].err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT ||
                    items[i].err == RD_KAFKA_RESP_ERR__PURGE_QUEUE)
                        unconfirmed++;
                else if (items[i].err)
                        failed++;
        }
        rd_kafka_destroy(rk);
        if (failed || unconfirmed) {
                snprintf(errstr, errstr_size,
                         "%zu of %zu replays failed, %zu not confirmed within %d ms",
                         failed, n, unconfirmed, timeout_ms);
                return failed ? PO_ERR_DEPENDENCY : PO_ERR_TIMEOUT;
        }
        return PO_OK;
}
