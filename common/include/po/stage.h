/* po_stage: the Kafka stage runner every pipeline service is built on.
 *
 * A stage consumes its input topic and that topic's retry topics in a
 * consumer group (read_committed), hands each message to a processing
 * callback, and produces what the callback emits in a Kafka transaction that
 * also commits the consumed offsets: consume-transform-produce, exactly once.
 *
 * Failure routing, decided by the callback's result:
 *   PO_STAGE_OK         outputs are produced, the offset is committed;
 *   PO_STAGE_TRANSIENT  a dependency is down: the original message goes to
 *                       <input>.retry.<n> (n = attempt), to be consumed again
 *                       no earlier than the retry delay; after the last retry
 *                       topic it goes to the dead-letter topic;
 *   PO_STAGE_PERMANENT  bad input: straight to the dead-letter topic.
 * Outputs emitted by a callback that then fails are discarded. Either way the
 * partition moves on: a poison message never blocks it.
 *
 * Dead letters are Avro DeadLetter records (schemas/DeadLetter.avsc) with the
 * stage, reason, error, attempts, first and last failure times, a priority
 * score, and the original key, value and headers. See docs/stage-runner.md. */
#ifndef PO_STAGE_H
#define PO_STAGE_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "po/err.h"
#include "po/service.h"

#define PO_STAGE_MAX_RETRIES 8

typedef struct po_stage po_stage_t;

typedef enum po_stage_result {
        PO_STAGE_OK = 0,
        PO_STAGE_TRANSIENT,
        PO_STAGE_PERMANENT,
} po_stage_result_t;

/* What a failing callback reports. reason is a machine-readable code
 * ("BAD_PAYLOAD", "REDIS_DOWN"...), error a sentence for the operator,
 * priority the dead letter's priority score (higher = fix first). */
typedef struct po_stage_failure {
        char reason[64];
        char error[512];
        int64_t priority;
} po_stage_failure_t;

/* Processes one message. The message belongs to the runner: do not destroy
 * it or keep pointers into it after returning. Emit outputs with
 * po_stage_emit; on failure fill *fail. */
typedef po_stage_result_t (*po_stage_process_fn)(po_stage_t *stage,
                                                 const rd_kafka_message_t *msg,
                                                 po_stage_failure_t *fail, void *opaque);

typedef struct po_stage_conf {
        const char *input_topic;      /* required */
        const char *group_id;         /* default "promo-<service>" */
        const char *dlq_topic;        /* default "<service>.dlq" */
        const char *transactional_id; /* default "promo-<service>-<PROMO_INSTANCE|0>" */
        int retries;                  /* retry topics, 0..8; default 2 */
        int retry_delay_ms[PO_STAGE_MAX_RETRIES]; /* default 1000, 10000, ... */
        int batch_max; /* messages per transaction; default 4000 */
        /* Input bytes (values and keys) per transaction; default 64 MiB. A
         * batch commits once it has this much, so a stream of large
         * messages cannot grow one batch's buffers without bound; it
         * passes the mark by one message at most. */
        int batch_bytes;
        int batch_ms; /* longest a transaction stays open; default 100 */
        /* Longest it stays open while the stage keeps up with its input (a
         * poll took everything there was): default 30 for a streamed input
         * (committed_input 0), whose fetches keep coming every few ms so it
         * never drains for linger_ms; 0 (none: batch_ms) for a committed
         * one. Under a backlog the window is batch_ms. */
        int keepup_ms;
        /* An open transaction commits as soon as no message came for
         * linger_ms (default 5; 0 here means the default, the environment
         * may set 0): a drained input does not wait out batch_ms. */
        int linger_ms;
        /* 1 when the input topics are written in transactions (by the
         * stages before): a batch becomes visible all at once at its
         * commit, so the consumer long-polls (fetch.min.bytes 1,
         * fetch.wait.max.ms 100) and is woken by each commit. 0 (a stream
         * of single produces, e.g. the channel adapters' orders.raw): it
         * fetches at least 64 KiB or every 5 ms. docs/stage-runner.md. */
        int committed_input;
        po_stage_process_fn process; /* required */
        void *opaque;                /* passed to process and the hooks */
        /* More input topics, NULL-terminated (no retry topics of their own:
         * their transient failures go through the input's retry topics).
         * The array must outlive the stage. */
        const char *const *extra_topics;
        /* Called before the offsets are committed with the transaction; a
         * non-PO_OK result aborts the transaction and the batch is consumed
         * again (e.g. a database write of the batch failed). */
        po_err_t (*before_commit)(po_stage_t *stage, void *opaque);
        /* Called once a batch is over: committed = 1 after a commit, 0 after
         * an abort (its messages will be processed again). */
        void (*after_batch)(po_stage_t *stage, int committed, void *opaque);
        /* Called on every turn of the loop (at least every 50 ms), outside
         * any callback: for housekeeping such as reference-data consumers. */
        void (*idle)(po_stage_t *stage, void *opaque);
        /* Optional. Called with the messages of one consumer poll (up to
         * PO_STAGE_GROUP_MAX, never more than the batch has room for) right
         * before process is called for each of them in turn, inside the open
         * transaction: a stage prefetches here, in pipelined round trips,
         * what the group needs. Only messages process will see are passed
         * (a retry message not yet due is not), in the order process will
         * see them, though process may see fewer (a partition paused
         * meanwhile). The messages belong to the runner and stay valid until
         * the last process call of the group returns. Best effort: process
         * must still be able to do its work when prepare fetched nothing. */
        void (*prepare)(po_stage_t *stage, rd_kafka_message_t *const *msgs, size_t n,
                        void *opaque);
} po_stage_conf_t;

/* Most messages taken from the consumer in one go (one prepare call). */
#define PO_STAGE_GROUP_MAX 256

/* Creates the consumer and the transactional producer for the service's
 * brokers. Environment overrides: PROMO_STAGE_RETRY_DELAYS_MS ("1000,10000"),
 * PROMO_STAGE_BATCH_MAX, PROMO_STAGE_BATCH_MS, PROMO_STAGE_LINGER_MS,
 * PROMO_INSTANCE, and librdkafka properties over the runner's defaults:
 * PROMO_KAFKA_CONSUMER_CONF, PROMO_KAFKA_PRODUCER_CONF ("key=value,..."). conf is copied
 * (its strings too); svc must outlive the stage. Returns NULL with a message
 * in errstr on failure. */
po_stage_t *po_stage_new(po_service_t *svc, const po_stage_conf_t *conf, char *errstr,
                         size_t errstr_size);

/* Produces one output message in the current transaction. Key, value and
 * headers are copied; headers (may be NULL) are destroyed by the call in
 * every case. Only valid inside the processing callback. */
po_err_t po_stage_emit(po_stage_t *stage, const char *topic, const void *key,
                       size_t key_len, const void *value, size_t value_len,
                       rd_kafka_headers_t *headers);

/* The attempt number of the message being processed: 0 the first time, n
 * when it comes from <input>.retry.n. */
int po_stage_attempt(const po_stage_t *stage);

/* Runs until po_service_running() turns 0, then finishes the current
 * transaction, commits, leaves the group and returns 0; returns 1 after a
 * fatal error (the producer was fenced, the transaction coordinator refused):
 * the process should exit and be restarted. */
int po_stage_run(po_stage_t *stage);

/* Closes the consumer (leaving the group) and destroys both handles.
 * Accepts NULL. */
void po_stage_destroy(po_stage_t *stage);

/* What a stage service's main() does once its own set-up is done: creates
 * the stage, probes the dependencies, runs it and destroys it. Returns the
 * process's exit status: po_stage_run's, or 2 when the stage could not be
 * created (the reason is logged). */
int po_stage_serve(po_service_t *svc, const po_stage_conf_t *conf);

/* Header names the runner sets on retried messages and dead letters. */
#define PO_HDR_ATTEMPTS "promo-attempts"
#define PO_HDR_NOT_BEFORE "promo-not-before-ms"
#define PO_HDR_FIRST_FAILURE "promo-first-failure-ms"
#define PO_HDR_REASON "promo-reason"
#define PO_HDR_ERROR "promo-error"
#define PO_HDR_SOURCE_TOPIC "promo-source-topic"
#define PO_HDR_SOURCE_PARTITION "promo-source-partition"
#define PO_HDR_SOURCE_OFFSET "promo-source-offset"
#define PO_HDR_PRIORITY "promo-priority"

#endif
