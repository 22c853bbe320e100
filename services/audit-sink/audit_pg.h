/* audit_pg: the audit-sink's PostgreSQL side. One batch of usage rows and
 * dead-letter rows is written in ONE transaction:
 *
 *   usage_events      INSERT ... ON CONFLICT (event_id) DO NOTHING, and in the
 *                     same statement usage_counters and customer_usage_counters
 *                     incremented from the rows actually inserted (RETURNING),
 *                     so a replayed batch inserts nothing and counts nothing;
 *   dead_letters      INSERT ... ON CONFLICT (source) DO NOTHING.
 *
 * Two ways to ship the rows, same SQL semantics (docs/audit.md has the
 * measurements): AUDIT_PG_INSERT, multi-row INSERT statements sent in one
 * libpq pipeline (BEGIN, the statements, COMMIT: one round trip), and
 * AUDIT_PG_COPY, COPY into session temp tables then INSERT ... SELECT.
 *
 * Rows are validated by the caller (types, ranges, UTF-8), so PostgreSQL
 * should accept every one. If it still refuses one (SQLSTATE class 22, 23 or
 * 54: data, constraint, size), the batch is written again row by row under
 * savepoints and each refused row is stored as a dead letter of stage
 * "audit-sink", reason "DB_REJECTED", with its original bytes: a bad row
 * never blocks the pipeline and is never lost. Any other failure (connection,
 * deadlock, server shutting down) fails the whole write: nothing is
 * committed, or - when the connection broke during COMMIT - the outcome is
 * unknown, which the caller handles by writing the batch again (the inserts
 * are idempotent). */
#ifndef AUDIT_PG_H
#define AUDIT_PG_H

#include <stddef.h>
#include <stdint.h>

#include "po/config.h"
#include "po/err.h"

typedef struct audit_pg audit_pg_t;

typedef enum audit_pg_method {
        AUDIT_PG_INSERT = 0,
        AUDIT_PG_COPY,
} audit_pg_method_t;

/* One row of usage_events. Every string is UTF-8 without NUL; event_id,
 * order_id, channel, account, code, source never NULL. */
typedef struct audit_usage_row {
        const char *event_id, *order_id, *channel, *account, *code;
        const char *customer_id; /* NULL when anonymous */
        int applied;             /* outcome 'applied' (1) or 'rejected' (0) */
        const char *reason;      /* NULL when applied */
        int64_t value_applied;   /* minor units, >= 0 */
        char currency[4];        /* three letters */
        int64_t occurred_at_us;  /* within AUDIT_PG_MIN_US..AUDIT_PG_MAX_US */
        int32_t partition;       /* of the Kafka record */
        int64_t offset;
        /* For the DB_REJECTED dead letter: the record's coordinates as
         * "<topic>:<partition>:<offset>", its topic, key and bytes. */
        const char *source, *topic;
        const void *key;
        size_t key_len;
        int has_key;
        const void *raw;
        size_t raw_len;
} audit_usage_row_t;

/* One row of dead_letters. Strings are UTF-8 without NUL; source, stage,
 * reason, error and headers_json never NULL. */
typedef struct audit_dead_row {
        const char *source; /* "<topic>:<partition>:<offset>" of the record */
        const char *stage, *reason, *error;
        int32_t attempts;
        int64_t priority;
        int has_first, has_last; /* failure times known and in range */
        int64_t first_ms, last_ms;
        const char *source_topic; /* NULL when unknown */
        int has_source_pos;
        int32_t source_partition;
        int64_t source_offset;
        const void *key; /* original_key; NULL when none */
        size_t key_len;
        const void *value; /* original_value; never NULL */
        size_t value_len;
        const char *headers_json; /* a JSON array, valid for jsonb */
} audit_dead_row_t;

/* What a write did. */
typedef struct audit_pg_stats {
        int64_t usage_inserted; /* new usage_events rows (the rest existed) */
        int64_t dead_inserted;  /* new dead_letters rows */
        int64_t rejected;       /* rows PostgreSQL refused, stored as DB_REJECTED */
} audit_pg_stats_t;

/* Instants the sink stores: 0001-01-01 to 9999-12-31 (UTC). */
#define AUDIT_PG_MIN_US (-62135596800LL * 1000000)
#define AUDIT_PG_MAX_US (253402300799LL * 1000000 + 999999)

/* Creates the writer for cfg->pg_dsn (copied). Connects lazily. app is the
 * application_name (copied). Returns NULL when out of memory. */
audit_pg_t *audit_pg_new(const po_config_t *cfg, const char *app,
                         audit_pg_method_t method);

/* Closes the connection. Accepts NULL. */
void audit_pg_destroy(audit_pg_t *pg);

/* Connects when not connected (or the connection broke). Returns PO_OK, or
 * PO_ERR_DEPENDENCY with the server's message. */
po_err_t audit_pg_connect(audit_pg_t *pg, char *errstr, size_t errstr_size);

/* 1 when the last statement on the connection worked and it is still open. */
int audit_pg_is_up(const audit_pg_t *pg);

/* Connects and applies the missing schema migrations (po_pg_migrate).
 * PO_ERR_DEPENDENCY when PostgreSQL cannot be reached, PO_ERR_IO when a
 * migration failed on a working connection. */
po_err_t audit_pg_migrate(audit_pg_t *pg, char *errstr, size_t errstr_size);

/* Writes the rows in one transaction (see the top of this file). Returns
 * PO_OK once committed, with *stats filled; else PO_ERR_DEPENDENCY (or
 * PO_ERR_NOMEM) with a message: nothing or, after a broken COMMIT, possibly
 * everything was committed. The rows are only read. */
po_err_t audit_pg_write(audit_pg_t *pg, const audit_usage_row_t *usage, size_t nusage,
                        const audit_dead_row_t *dead, size_t ndead,
                        audit_pg_stats_t *stats, char *errstr, size_t errstr_size);

#endif
