/* po_dlq: reading a stage's dead-letter topic and replaying its dead letters
 * (the promo-dlq command; the admin service's DLQ browser).
 *
 * Reading takes a snapshot: every partition from its first offset up to the
 * high watermark it had when the read started, read_committed, through
 * assign() in a throw-away group that never commits, so it moves no one's
 * offsets and sees only what the stages committed. Each record is decoded as
 * an Avro DeadLetter; a record that does not decode is kept as such (with
 * the reason and source the runner also puts in its Kafka headers), never
 * skipped silently.
 *
 * Replaying re-publishes a dead letter's original key, value and headers to
 * its source topic (or another), without the runner's promo-* headers (so
 * the attempts start again) and with PO_HDR_REPLAYED_FROM naming the dead
 * letter, through an idempotent producer that waits for every delivery. */
#ifndef PO_DLQ_H
#define PO_DLQ_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "po/avro.h"
#include "po/err.h"

/* Added to every replayed message: "<dlq-topic>:<partition>:<offset>". */
#define PO_HDR_REPLAYED_FROM "promo-replayed-from"

/* Defaults of po_dlq_read_opts_t. */
#define PO_DLQ_MAX_ENTRIES 1000000
#define PO_DLQ_TIMEOUT_MS 15000

/* A record's place in the dead-letter topic. */
typedef struct po_dlq_pos {
        int32_t partition;
        int64_t offset;
} po_dlq_pos_t;

/* Which dead letters a read keeps. An undecodable record matches `at` (so
 * a replay can say why it cannot be replayed) and `all` when
 * list_undecodable is set (a listing shows it), never `reason`. */
typedef struct po_dlq_select {
        int all;                /* every record */
        const char *reason;     /* records whose reason code equals this */
        const po_dlq_pos_t *at; /* records at these positions */
        size_t at_count;
        int list_undecodable; /* keep undecodable records under `all` */
} po_dlq_select_t;

typedef struct po_dlq_read_opts {
        const char *brokers; /* required */
        const char *topic;   /* the dead-letter topic; required */
        /* What to keep; NULL keeps every record, undecodable ones too. */
        const po_dlq_select_t *select;
        /* Keep the original key, value and headers (for a replay); else they
         * are freed right after decoding and a listing's memory stays small. */
        int keep_payload;
        size_t max_entries; /* refuse to keep more; 0 = PO_DLQ_MAX_ENTRIES */
        int timeout_ms;     /* give up after this long without progress; 0 = default */
} po_dlq_read_opts_t;

/* One record of the dead-letter topic. */
typedef struct po_dlq_entry {
        po_dlq_pos_t pos;
        int64_t timestamp_ms; /* the Kafka record's timestamp; -1 when none */
        int decoded;          /* 1: dl holds the DeadLetter */
        /* When decoded: every field. Without keep_payload, original_key,
         * original_value and headers are NULL (their lengths and
         * header_count are kept). When not decoded: zeroed, except
         * reason_code, source_topic and priority taken from the record's
         * promo-reason, promo-source-topic and promo-priority headers when
         * present (NULL / 0 otherwise). */
        po_deadletter_t dl;
        char *decode_error; /* when not decoded: why; else NULL */
        int has_payload;    /* dl owns the original key, value and headers */
} po_dlq_entry_t;

/* The dead letters read from one topic. Caller-owned: po_dlq_snapshot_init,
 * then po_dlq_read fills it, po_dlq_snapshot_release frees it. */
typedef struct po_dlq_snapshot {
        char topic[256];
        po_dlq_entry_t *entries; /* count of them, in the order chosen by the
                                    last sort (po_dlq_read: partition, offset) */
        size_t count;
        size_t cap;
        size_t scanned;     /* records read, kept or not */
        size_t undecodable; /* records read that are not DeadLetters */
        int partition_count;
        int64_t *low, *high; /* per partition: the offsets read were low..high-1 */
} po_dlq_snapshot_t;

/* Parses "P:O" (partition 0..INT32_MAX, offset 0..INT64_MAX, decimal, nothing
 * else). PO_OK or PO_ERR_BAD_INPUT. */
po_err_t po_dlq_parse_pos(const char *s, po_dlq_pos_t *out);

/* 1 when name is a valid Kafka topic name (1..249 of [A-Za-z0-9._-], not
 * "." or ".."). Dead letters are hostile input: their source topic is
 * checked before anything is produced to it. */
int po_dlq_topic_valid(const char *name);

/* Zeroes snap. No allocation. */
void po_dlq_snapshot_init(po_dlq_snapshot_t *snap);

/* Frees every entry and the snapshot's arrays, and zeroes it. Accepts NULL. */
void po_dlq_snapshot_release(po_dlq_snapshot_t *snap);

/* Reads the snapshot of opts->topic described above into snap (initialised
 * by the caller; released and refilled). avro decodes the records.
 * Returns PO_OK; PO_ERR_INVALID_ARG (bad options); PO_ERR_DEPENDENCY when
 * the topic does not exist or the broker refuses; PO_ERR_TIMEOUT when a
 * partition made no progress for timeout_ms (an open transaction holding
 * the last stable offset back, or the broker gone); PO_ERR_NOMEM; or
 * PO_ERR_BAD_INPUT when more than max_entries records would be kept. On
 * every error errstr says what failed, and snap keeps what was read so far
 * (a listing can still show it); release it in every case. */
po_err_t po_dlq_read(po_avro_t *avro, const po_dlq_read_opts_t *opts,
                     po_dlq_snapshot_t *snap, char *errstr, size_t errstr_size);

/* Orders the entries by priority, highest first; equal priorities by first
 * failure time, oldest first, then by last failure time and position.
 * Undecodable records come last, by position. */
void po_dlq_sort_by_priority(po_dlq_snapshot_t *snap);

/* Orders the entries by partition, then offset. */
void po_dlq_sort_by_position(po_dlq_snapshot_t *snap);

/* The entry at pos, or NULL. Borrowed from snap. */
const po_dlq_entry_t *po_dlq_find(const po_dlq_snapshot_t *snap, po_dlq_pos_t pos);

/* Whether sel keeps e (the rule po_dlq_read applies). */
int po_dlq_matches(const po_dlq_select_t *sel, const po_dlq_entry_t *e);

/* The headers a replay of e sends: e's original headers, in order, without
 * the runner's promo-* headers (PO_HDR_* of po/stage.h) and any earlier
 * PO_HDR_REPLAYED_FROM, plus PO_HDR_REPLAYED_FROM =
 * "<dlq_topic>:<partition>:<offset>" and, when the dead letter knows it,
 * where the message first came from (PO_HDR_SOURCE_TOPIC, _PARTITION,
 * _OFFSET, as on a retry: intake's dedupe claim belongs to that position,
 * so a claimed order replayed is not taken for a duplicate of itself). e
 * must have its payload. The caller
 * owns the result (rd_kafka_headers_destroy, or hand it to a produce call). */
rd_kafka_headers_t *po_dlq_replay_headers(const po_dlq_entry_t *e, const char *dlq_topic);

/* One message of a replay. */
typedef struct po_dlq_replay_item {
        const po_dlq_entry_t *entry; /* decoded, with its payload; borrowed */
        /* The destination: NULL = the dead letter's source topic, on its
         * original partition (keys keep their partition whatever partitioner
         * the first producer used); else this topic, partitioned by key. */
        const char *to;
        /* A replacement value (an operator's fixed payload); NULL = the
         * original value. Borrowed. */
        const void *value;
        size_t value_len;
        /* Set by po_dlq_replay: the delivery's result. */
        rd_kafka_resp_err_t err;
        int32_t partition;
        int64_t offset;
} po_dlq_replay_item_t;

/* po_dlq_replay flags. */
#define PO_DLQ_DRY_RUN 1 /* check everything, produce nothing */

/* Replays items through one idempotent producer on brokers. First checks,
 * before anything is produced, that every destination is a valid topic
 * name other than dlq_topic, exists, and (for a source topic) still has the
 * dead letter's partition: otherwise returns PO_ERR_INVALID_ARG naming the
 * first problem, and nothing is sent. With PO_DLQ_DRY_RUN it stops there
 * (each item's err 0, partition the one it would go to, -1 = by key).
 * Else produces every item and waits up to timeout_ms for all delivery
 * reports, filling each item's err, partition and offset. Returns PO_OK
 * when every item was delivered; PO_ERR_DEPENDENCY when some were not
 * (errstr says how many, each item says why); PO_ERR_TIMEOUT when only
 * confirmations were missing at the deadline (those items have
 * RD_KAFKA_RESP_ERR__TIMED_OUT or a purge error: they may or may not have
 * been written); PO_ERR_INVALID_ARG also for an item without a decoded
 * entry and payload. */
po_err_t po_dlq_replay(const char *brokers, const char *dlq_topic,
                       po_dlq_replay_item_t *items, size_t n, int flags, int timeout_ms,
                       char *errstr, size_t errstr_size);

#endif
