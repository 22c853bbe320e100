/* The audit-sink's batch writer (see audit_pg.h). */
#include "audit_pg.h"

#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "po/dynbuf.h"
#include "po/log.h"
#include "po/pg.h"

/* Rows per INSERT statement: 14 parameters a row stays far below the
 * protocol's 65535, and the statement text below a few hundred KiB. */
#define AUDIT_CHUNK 1000
#define BYTEA_OID 17
#define USAGE_PARAMS 13
#define DEAD_PARAMS 14
/* Scratch bytes a row needs for its numbers and instants as text. */
#define ROW_SCRATCH 192

struct audit_pg {
        char dsn[512];
        char app[64];
        audit_pg_method_t method;
        PGconn *conn;
        int up;
        int temps;        /* the COPY temp tables exist in this session */
        po_dynbuf_t copy; /* COPY data of one batch */
};

/* Why a statement failed: data (the row's fault, class 22/23/54) or anything
 * else (the connection, a deadlock, a server going down...). */
typedef struct fail {
        int data;
        char msg[400];
} fail_t;

/* One statement with its parameters (text, or binary for bytea). */
typedef struct stmt {
        po_dynbuf_t sql;
        const char **values;
        int *lengths, *formats;
        Oid *types;
        int n, cap;
        char *scratch;
        size_t used, scratch_cap;
        po_dynbuf_t cols[USAGE_PARAMS]; /* the usage columns as array literals */
} stmt_t;

/* ---- the SQL ---- */

static const char usage_cols[] =
    "event_id, order_id, channel, account, code, customer_id, outcome, reason, "
    "value_applied, currency, occurred_at, kafka_partition, kafka_offset";

static const char dead_cols[] =
    "source, stage, reason, error, attempts, priority, first_failure_at, "
    "last_failure_at, source_topic, source_partition, source_offset, original_key, "
    "original_value, original_headers";

/* Inserts the new rows of src and counts only those (RETURNING): a replay
 * inserts nothing and so counts nothing. Counter rows are locked in code
 * order, so two sinks never deadlock on them. Yields the inserted count. */
static const char usage_tail[] =
    "ins AS (INSERT INTO usage_events (%s) SELECT DISTINCT ON (event_id) %s FROM %s "
    "ORDER BY event_id ON CONFLICT (event_id) DO NOTHING "
    "RETURNING code, customer_id, outcome), "
    "cnt AS (INSERT INTO usage_counters AS u (code, redemptions, rejections) "
    "SELECT code, count(*) FILTER (WHERE outcome = 'applied'), "
    "count(*) FILTER (WHERE outcome = 'rejected') FROM ins GROUP BY code ORDER BY code "
    "ON CONFLICT (code) DO UPDATE SET redemptions = u.redemptions + "
    "EXCLUDED.redemptions, "
    "rejections = u.rejections + EXCLUDED.rejections), "
    "ccnt AS (INSERT INTO customer_usage_counters AS c (code, customer_id, redemptions) "
    "SELECT code, customer_id, count(*) FROM ins "
    "WHERE outcome = 'applied' AND customer_id IS NOT NULL "
    "GROUP BY code, customer_id ORDER BY code, customer_id "
    "ON CONFLICT (code, customer_id) DO UPDATE "
    "SET redemptions = c.redemptions + EXCLUDED.redemptions) "
    "SELECT count(*) FROM ins";

static const char dead_tail[] =
    "ins AS (INSERT INTO dead_letters (%s) SELECT DISTINCT ON (source) %s FROM %s "
    "ORDER BY source ON CONFLICT (source) DO NOTHING RETURNING 1) "
    "SELECT count(*) FROM ins";

static const char usage_casts[USAGE_PARAMS][12] = {
    "text", "text",   "text", "text",        "text",    "text",  "text",
    "text", "bigint", "text", "timestamptz", "integer", "bigint"};

static const char dead_casts[DEAD_PARAMS][12] = {
    "text",        "text", "text",    "text",   "integer", "bigint", "timestamptz",
    "timestamptz", "text", "integer", "bigint", "bytea",   "bytea",  "jsonb"};

static const char temp_tables[] =
    "CREATE TEMP TABLE IF NOT EXISTS audit_usage_in (event_id text, order_id text, "
    "channel text, account text, code text, customer_id text, outcome text, "
    "reason text, value_applied bigint, currency text, occurred_at timestamptz, "
    "kafka_partition integer, kafka_offset bigint) ON COMMIT DELETE ROWS; "
    "CREATE TEMP TABLE IF NOT EXISTS audit_dead_in (source text, stage text, "
    "reason text, error text, attempts integer, priority bigint, "
    "first_failure_at timestamptz, last_failure_at timestamptz, source_topic text, "
    "source_partition integer, source_offset bigint, original_key bytea, "
    "original_value bytea, original_headers jsonb) ON COMMIT DELETE ROWS";

/* ---- connection ---- */

audit_pg_t *audit_pg_new(const po_config_t *cfg, const char *app,
                         audit_pg_method_t method)
{
        audit_pg_t *pg = calloc(1, sizeof(*pg));

        if (!pg)
                return NULL;
        snprintf(pg->dsn, sizeof(pg->dsn), "%s", cfg->pg_dsn);
        snprintf(pg->app, sizeof(pg->app), "%s", app);
        pg->method = method;
        po_dynbuf_init(&pg->copy, (size_t)1 << 31);
        return pg;
}

void audit_pg_destroy(audit_pg_t *pg)
{
        if (!pg)
                return;
        if (pg->conn)
                PQfinish(pg->conn);
        po_dynbuf_release(&pg->copy);
        free(pg);
}

int audit_pg_is_up(const audit_pg_t *pg)
{
        return pg->conn && pg->up && PQstatus(pg->conn) == CONNECTION_OK;
}

static void one_line(char *s)
{
        s[strcspn(s, "\n")] = '\0';
}

/* Truncates s to at most max bytes without splitting a UTF-8 sequence. */
static void utf8_truncate(char *s, size_t max)
{
        size_t n = strlen(s);

        if (n <= max)
                return;
        while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
                max--;
        s[max] = '\0';
}

po_err_t audit_pg_connect(audit_pg_t *pg, char *errstr, size_t errstr_size)
{
        /* Keepalives and a TCP user timeout bound how long a write can hang
         * on a peer that vanished without a reset (a Kafka transaction is
         * open meanwhile); a later keyword overrides the DSN's. */
        const char *keys[] = {
            "dbname",           "connect_timeout",  "application_name",
            "keepalives",       "keepalives_idle",  "keepalives_interval",
            "keepalives_count", "tcp_user_timeout", NULL};
        const char *vals[] = {pg->dsn, "5", pg->app, "1", "10", "5", "3", "20000", NULL};
        PGresult *r;

        if (pg->conn && PQstatus(pg->conn) == CONNECTION_OK &&
            PQpipelineStatus(pg->conn) == PQ_PIPELINE_OFF)
                return PO_OK;
        /* A fresh connection rather than PQreset: the old one may have been
         * left in any state by the failure. */
        if (pg->conn)
                PQfinish(pg->conn);
        pg->up = 0;
        pg->conn = PQconnectdbParams(keys, vals, 1);
        if (!pg->conn || PQstatus(pg->conn) != CONNECTION_OK) {
                snprintf(errstr, errstr_size, "postgres: %s",
                         pg->conn ? PQerrorMessage(pg->conn) : "out of memory");
                one_line(errstr);
                if (pg->conn)
                        PQfinish(pg->conn);
                pg->conn = NULL;
                return PO_ERR_DEPENDENCY;
        }
        /* synchronous_commit on: a COMMIT that returned is on disk, which the
         * Kafka offsets committed after it rely on. The timeouts keep a write
         * well inside the Kafka transaction's 60 s. */
        r = PQexec(pg->conn,
                   "SET synchronous_commit = on; SET statement_timeout = '30s'; "
                   "SET lock_timeout = '20s'; SET client_min_messages = warning");
        if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
                snprintf(errstr, errstr_size, "postgres: session settings: %s",
                         PQerrorMessage(pg->conn));
                one_line(errstr);
                PQclear(r);
                PQfinish(pg->conn);
                pg->conn = NULL;
                return PO_ERR_DEPENDENCY;
        }
        PQclear(r);
        pg->up = 1;
        pg->temps = 0;
        return PO_OK;
}

po_err_t audit_pg_migrate(audit_pg_t *pg, char *errstr, size_t errstr_size)
{
        po_err_t err = audit_pg_connect(pg, errstr, errstr_size);

        if (err)
                return err;
        /* po_pg_migrate logs each migration it applies. */
        err = po_pg_migrate(pg->conn, NULL, errstr, errstr_size);
        if (err) {
                pg->up = PQstatus(pg->conn) == CONNECTION_OK;
                return pg->up ? PO_ERR_IO : PO_ERR_DEPENDENCY;
        }
        return PO_OK;
}

/* ---- statements ---- */

static void stmt_init(stmt_t *s)
{
        int k;

        memset(s, 0, sizeof(*s));
        po_dynbuf_init(&s->sql, (size_t)64 << 20);
        for (k = 0; k < USAGE_PARAMS; k++)
                po_dynbuf_init(&s->cols[k], (size_t)1 << 30);
}

static void stmt_release(stmt_t *s)
{
        int k;

        for (k = 0; k < USAGE_PARAMS; k++)
                po_dynbuf_release(&s->cols[k]);
        po_dynbuf_release(&s->sql);
        free(s->values);
        free(s->lengths);
        free(s->formats);
        free(s->types);
        free(s->scratch);
        memset(s, 0, sizeof(*s));
}

/* Makes room for nparams parameters and nrows rows of scratch; empties s. */
static po_err_t stmt_prepare(stmt_t *s, int nparams, size_t nrows)
{
        po_dynbuf_reset(&s->sql);
        s->n = 0;
        s->used = 0;
        if (nparams > s->cap) {
                const char **v = realloc(s->values, (size_t)nparams * sizeof(*v));

                if (v)
                        s->values = v;
                int *l = realloc(s->lengths, (size_t)nparams * sizeof(*l));
                if (l)
                        s->lengths = l;
                int *f = realloc(s->formats, (size_t)nparams * sizeof(*f));
                if (f)
                        s->formats = f;
                Oid *t = realloc(s->types, (size_t)nparams * sizeof(*t));
                if (t)
                        s->types = t;
                if (!v || !l || !f || !t)
                        return PO_ERR_NOMEM;
                s->cap = nparams;
        }
        if (nrows * ROW_SCRATCH > s->scratch_cap) {
                char *p = realloc(s->scratch, nrows * ROW_SCRATCH);

                if (!p)
                        return PO_ERR_NOMEM;
                s->scratch = p;
                s->scratch_cap = nrows * ROW_SCRATCH;
        }
        return PO_OK;
}

static void param_text(stmt_t *s, const char *v)
{
        s->values[s->n] = v;
        s->lengths[s->n] = 0;
        s->formats[s->n] = 0;
        s->types[s->n] = 0;
        s->n++;
}

static void param_bytes(stmt_t *s, const void *v, size_t len)
{
        s->values[s->n] = v ? (len ? v : "") : NULL;
        s->lengths[s->n] = (int)len;
        s->formats[s->n] = 1;
        s->types[s->n] = BYTEA_OID;
        s->n++;
}

/* A scratch string of the statement (valid until the next stmt_prepare). */
static char *scratch(stmt_t *s, size_t size)
{
        char *p = s->scratch + s->used;

        s->used += size;
        return p;
}

static void param_i64(stmt_t *s, int64_t v)
{
        char *p = scratch(s, 24);

        snprintf(p, 24, "%" PRId64, v);
        param_text(s, p);
}

/* us since the epoch as an exact timestamptz literal (UTC). */
static void format_instant(int64_t us, char *buf, size_t size)
{
        int64_t sec = us / 1000000, frac = us % 1000000;
        time_t t;
        struct tm tm;

        if (frac < 0) {
                frac += 1000000;
                sec--;
        }
        t = (time_t)sec;
        gmtime_r(&t, &tm);
        /* Through a buffer wide enough for any int fields: the optimizer
         * cannot prove the year has 4 digits (-Werror=format-truncation). */
        char tmp[128];
        size_t n;

        snprintf(tmp, sizeof(tmp), "%04d-%02d-%02d %02d:%02d:%02d.%06d+00",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                 tm.tm_sec, (int)frac);
        n = strlen(tmp);
        if (size == 0)
                return;
        if (n >= size)
                n = size - 1;
        memcpy(buf, tmp, n);
        buf[n] = '\0';
}

static void param_instant(stmt_t *s, int64_t us)
{
        char *p = scratch(s, 40);

        format_instant(us, p, 40);
        param_text(s, p);
}

/* "($1::text, $2::bigint, ...)" for row r of a VALUES list. */
static void values_row(po_dynbuf_t *b, size_t r, int nparams, const char (*casts)[12])
{
        int k;

        po_dynbuf_add(b, r ? ", (" : "(", r ? 3 : 1);
        for (k = 0; k < nparams; k++)
                po_dynbuf_addf(b, "%s$%zu::%s", k ? ", " : "",
                               r * (size_t)nparams + k + 1, casts[k]);
        po_dynbuf_add(b, ")", 1);
}

static void array_i64(po_dynbuf_t *b, int64_t v)
{
        po_dynbuf_addf(b, "%s%" PRId64, b->len > 1 ? "," : "", v);
}

/* The usage rows as one array per column, unnested by the statement: 13
 * parameters and the same text whatever the row count, so the server parses
 * and plans little (measured faster than a VALUES list, docs/audit.md). */
static po_err_t build_usage(stmt_t *s, const audit_usage_row_t *rows, size_t n)
{
        po_dynbuf_t *col = s->cols;
        char ts[40];
        size_t r;
        int k;

        if (stmt_prepare(s, USAGE_PARAMS, 0))
                return PO_ERR_NOMEM;
        for (k = 0; k < USAGE_PARAMS; k++) {
                po_dynbuf_reset(&col[k]);
                po_dynbuf_add(&col[k], "{", 1);
        }
        for (r = 0; r < n; r++) {
                const audit_usage_row_t *u = &rows[r];

                po_pg_array_add(&col[0], u->event_id);
                po_pg_array_add(&col[1], u->order_id);
                po_pg_array_add(&col[2], u->channel);
                po_pg_array_add(&col[3], u->account);
                po_pg_array_add(&col[4], u->code);
                po_pg_array_add(&col[5], u->customer_id);
                po_pg_array_add(&col[6], u->applied ? "applied" : "rejected");
                po_pg_array_add(&col[7], u->reason);
                array_i64(&col[8], u->value_applied);
                po_pg_array_add(&col[9], u->currency);
                format_instant(u->occurred_at_us, ts, sizeof(ts));
                po_pg_array_add(&col[10], ts);
                array_i64(&col[11], u->partition);
                array_i64(&col[12], u->offset);
        }
        po_dynbuf_addf(&s->sql, "WITH v (%s) AS (SELECT * FROM unnest(", usage_cols);
        for (k = 0; k < USAGE_PARAMS; k++) {
                po_dynbuf_add(&col[k], "}", 1);
                if (col[k].failed)
                        return PO_ERR_NOMEM;
                param_text(s, col[k].data);
                po_dynbuf_addf(&s->sql, "%s$%d::%s[]", k ? ", " : "", k + 1,
                               usage_casts[k]);
        }
        po_dynbuf_add(&s->sql, ")), ", 4);
        po_dynbuf_addf(&s->sql, usage_tail, usage_cols, usage_cols, "v");
        return s->sql.failed ? PO_ERR_NOMEM : PO_OK;
}

static po_err_t build_dead(stmt_t *s, const audit_dead_row_t *rows, size_t n)
{
        size_t r;

        if (stmt_prepare(s, (int)n * DEAD_PARAMS, n))
                return PO_ERR_NOMEM;
        po_dynbuf_addf(&s->sql, "WITH v (%s) AS (VALUES ", dead_cols);
        for (r = 0; r < n; r++) {
                const audit_dead_row_t *d = &rows[r];

                values_row(&s->sql, r, DEAD_PARAMS, dead_casts);
                param_text(s, d->source);
                param_text(s, d->stage);
                param_text(s, d->reason);
                param_text(s, d->error);
                param_i64(s, d->attempts);
                param_i64(s, d->priority);
                if (d->has_first)
                        param_instant(s, d->first_ms * 1000);
                else
                        param_text(s, NULL);
                if (d->has_last)
                        param_instant(s, d->last_ms * 1000);
                else
                        param_text(s, NULL);
                param_text(s, d->source_topic);
                if (d->has_source_pos) {
                        param_i64(s, d->source_partition);
                        param_i64(s, d->source_offset);
                } else {
                        param_text(s, NULL);
                        param_text(s, NULL);
                }
                param_bytes(s, d->key, d->key_len);
                param_bytes(s, d->value, d->value_len);
                param_text(s, d->headers_json);
        }
        po_dynbuf_add(&s->sql, "), ", 3);
        po_dynbuf_addf(&s->sql, dead_tail, dead_cols, dead_cols, "v");
        return s->sql.failed ? PO_ERR_NOMEM : PO_OK;
}

/* ---- results ---- */

static void note_failure(audit_pg_t *pg, const PGresult *r, fail_t *f)
{
        const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
        const char *m = r ? PQresultErrorMessage(r) : NULL;

        if (f->msg[0])
                return; /* keep the first */
        if (!m || !*m)
                m = PQerrorMessage(pg->conn);
        /* data exception, integrity constraint, program limit (an index row
         * too large): the row's fault, not the server's. */
        f->data = state && (strncmp(state, "22", 2) == 0 ||
                            strncmp(state, "23", 2) == 0 || strncmp(state, "54", 2) == 0);
        snprintf(f->msg, sizeof(f->msg), "postgres: %s%s%s", state ? state : "",
                 state ? " " : "", m && *m ? m : "no answer");
        one_line(f->msg);
        if (PQstatus(pg->conn) != CONNECTION_OK)
                pg->up = 0;
}

/* Runs sql (no parameters) and expects no rows. */
static int exec_simple(audit_pg_t *pg, const char *sql, fail_t *f)
{
        PGresult *r = PQexec(pg->conn, sql);
        int ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;

        if (!ok)
                note_failure(pg, r, f);
        PQclear(r);
        return ok ? 0 : -1;
}

/* The count a statement ending in SELECT count(*) returned, or -1. */
static int64_t result_count(const PGresult *r)
{
        if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
                return -1;
        return strtoll(PQgetvalue(r, 0, 0), NULL, 10);
}

static int exec_count(audit_pg_t *pg, const stmt_t *s, const char *sql, int64_t *count,
                      fail_t *f)
{
        PGresult *r;
        int64_t c;

        if (s)
                r = PQexecParams(pg->conn, po_dynbuf_str(&s->sql), s->n, s->types,
                                 s->values, s->lengths, s->formats, 0);
        else
                r = PQexec(pg->conn, sql);
        c = r ? result_count(r) : -1;
        if (c < 0) {
                note_failure(pg, r, f);
                PQclear(r);
                return -1;
        }
        PQclear(r);
        *count += c;
        return 0;
}

/* Leaves the connection outside any transaction after a failure. */
static void recover(audit_pg_t *pg)
{
        if (!pg->conn || PQstatus(pg->conn) != CONNECTION_OK) {
                pg->up = 0;
                return;
        }
        if (PQpipelineStatus(pg->conn) != PQ_PIPELINE_OFF &&
            !PQexitPipelineMode(pg->conn)) {
                /* Results still pending: start over on a new connection. */
                PQfinish(pg->conn);
                pg->conn = NULL;
                pg->up = 0;
                return;
        }
        if (PQtransactionStatus(pg->conn) != PQTRANS_IDLE)
                PQclear(PQexec(pg->conn, "ROLLBACK"));
}

/* ---- AUDIT_PG_INSERT: one pipeline ---- */

/* Sends BEGIN, each chunk's INSERT and COMMIT, then one Sync; reads every
 * result. Returns 0 when COMMIT succeeded. */
static int write_pipeline(audit_pg_t *pg, const audit_usage_row_t *usage, size_t nusage,
                          const audit_dead_row_t *dead, size_t ndead,
                          audit_pg_stats_t *st, fail_t *f)
{
        size_t nchunks = (nusage + AUDIT_CHUNK - 1) / AUDIT_CHUNK +
                         (ndead + AUDIT_CHUNK - 1) / AUDIT_CHUNK;
        size_t sent = 0, q, i;
        int committed = 0, broken = 0;
        stmt_t s;
        PGconn *c = pg->conn;

        stmt_init(&s);
        if (!PQenterPipelineMode(c)) {
                note_failure(pg, NULL, f);
                goto done;
        }
        if (!PQsendQueryParams(c, "BEGIN", 0, NULL, NULL, NULL, NULL, 0))
                goto send_failed;
        sent++;
        for (i = 0; i < nusage; i += AUDIT_CHUNK) {
                size_t n = nusage - i < AUDIT_CHUNK ? nusage - i : AUDIT_CHUNK;

                if (build_usage(&s, usage + i, n)) {
                        snprintf(f->msg, sizeof(f->msg), "out of memory");
                        goto send_failed;
                }
                if (!PQsendQueryParams(c, po_dynbuf_str(&s.sql), s.n, s.types, s.values,
                                       s.lengths, s.formats, 0))
                        goto send_failed;
                sent++;
        }
        for (i = 0; i < ndead; i += AUDIT_CHUNK) {
                size_t n = ndead - i < AUDIT_CHUNK ? ndead - i : AUDIT_CHUNK;

                if (build_dead(&s, dead + i, n)) {
                        snprintf(f->msg, sizeof(f->msg), "out of memory");
                        goto send_failed;
                }
                if (!PQsendQueryParams(c, po_dynbuf_str(&s.sql), s.n, s.types, s.values,
                                       s.lengths, s.formats, 0))
                        goto send_failed;
                sent++;
        }
        if (!PQsendQueryParams(c, "COMMIT", 0, NULL, NULL, NULL, NULL, 0))
                goto send_failed;
        sent++;
        if (!PQpipelineSync(c))
                goto send_failed;

        /* Results come in order: BEGIN, the chunks (usage first), COMMIT. */
        for (q = 0; q < sent && !broken; q++) {
                PGresult *r;

                while ((r = PQgetResult(c)) != NULL) {
                        ExecStatusType t = PQresultStatus(r);
                        int is_chunk = q >= 1 && q <= nchunks;
                        size_t usage_chunks = (nusage + AUDIT_CHUNK - 1) / AUDIT_CHUNK;

                        if (t == PGRES_TUPLES_OK && is_chunk) {
                                int64_t n = result_count(r);

                                if (q <= usage_chunks)
                                        st->usage_inserted += n;
                                else
                                        st->dead_inserted += n;
                        } else if (t == PGRES_COMMAND_OK && q == sent - 1) {
                                /* A COMMIT of a failed transaction answers
                                 * ROLLBACK. */
                                committed = strcmp(PQcmdStatus(r), "COMMIT") == 0;
                        } else if (t == PGRES_FATAL_ERROR) {
                                note_failure(pg, r, f);
                        } else if (t != PGRES_COMMAND_OK && t != PGRES_PIPELINE_ABORTED) {
                                note_failure(pg, r, f);
                        }
                        PQclear(r);
                        if (PQstatus(c) != CONNECTION_OK) {
                                broken = 1;
                                break;
                        }
                }
        }
        if (!broken) {
                PGresult *r = PQgetResult(c);

                if (!r || PQresultStatus(r) != PGRES_PIPELINE_SYNC)
                        broken = 1;
                PQclear(r);
        }
        if (broken && !f->msg[0])
                note_failure(pg, NULL, f);
        if (!broken)
                PQexitPipelineMode(c);
        goto done;

send_failed:
        if (!f->msg[0])
                note_failure(pg, NULL, f);
done:
        stmt_release(&s);
        if (!committed || f->msg[0]) {
                recover(pg);
                return -1;
        }
        return 0;
}

/* ---- AUDIT_PG_COPY: COPY into temp tables, then INSERT ... SELECT ---- */

/* Appends s escaped for COPY's text format. */
static void copy_text(po_dynbuf_t *b, const char *s)
{
        const char *p, *run = s;

        if (!s) {
                po_dynbuf_add(b, "\\N", 2);
                return;
        }
        for (p = s; *p; p++) {
                const char *esc = NULL;

                switch (*p) {
                case '\\':
                        esc = "\\\\";
                        break;
                case '\t':
                        esc = "\\t";
                        break;
                case '\n':
                        esc = "\\n";
                        break;
                case '\r':
                        esc = "\\r";
                        break;
                default:
                        continue;
                }
                po_dynbuf_add(b, run, (size_t)(p - run));
                po_dynbuf_add(b, esc, 2);
                run = p + 1;
        }
        po_dynbuf_add(b, run, (size_t)(p - run));
}

static void copy_bytea(po_dynbuf_t *b, const void *v, size_t len)
{
        static const char hex[] = "0123456789abcdef";
        const unsigned char *p = v;
        char chunk[256];
        size_t i, n = 0;

        if (!v) {
                po_dynbuf_add(b, "\\N", 2);
                return;
        }
        po_dynbuf_add(b, "\\\\x", 3);
        for (i = 0; i < len; i++) {
                chunk[n++] = hex[p[i] >> 4];
                chunk[n++] = hex[p[i] & 15];
                if (n == sizeof(chunk)) {
                        po_dynbuf_add(b, chunk, n);
                        n = 0;
                }
        }
        po_dynbuf_add(b, chunk, n);
}

static void copy_sep(po_dynbuf_t *b, int last)
{
        po_dynbuf_add(b, last ? "\n" : "\t", 1);
}

static void copy_usage_rows(po_dynbuf_t *b, const audit_usage_row_t *rows, size_t n)
{
        char ts[40];
        size_t i;

        for (i = 0; i < n; i++) {
                const audit_usage_row_t *u = &rows[i];

                format_instant(u->occurred_at_us, ts, sizeof(ts));
                copy_text(b, u->event_id);
                copy_sep(b, 0);
                copy_text(b, u->order_id);
                copy_sep(b, 0);
                copy_text(b, u->channel);
                copy_sep(b, 0);
                copy_text(b, u->account);
                copy_sep(b, 0);
                copy_text(b, u->code);
                copy_sep(b, 0);
                copy_text(b, u->customer_id);
                copy_sep(b, 0);
                copy_text(b, u->applied ? "applied" : "rejected");
                copy_sep(b, 0);
                copy_text(b, u->reason);
                po_dynbuf_addf(b, "\t%" PRId64 "\t", u->value_applied);
                copy_text(b, u->currency);
                po_dynbuf_addf(b, "\t%s\t%" PRId32 "\t%" PRId64 "\n", ts, u->partition,
                               u->offset);
        }
}

static void copy_dead_rows(po_dynbuf_t *b, const audit_dead_row_t *rows, size_t n)
{
        char ts[40];
        size_t i;

        for (i = 0; i < n; i++) {
                const audit_dead_row_t *d = &rows[i];

                copy_text(b, d->source);
                copy_sep(b, 0);
                copy_text(b, d->stage);
                copy_sep(b, 0);
                copy_text(b, d->reason);
                copy_sep(b, 0);
                copy_text(b, d->error);
                po_dynbuf_addf(b, "\t%" PRId32 "\t%" PRId64 "\t", d->attempts,
                               d->priority);
                if (d->has_first) {
                        format_instant(d->first_ms * 1000, ts, sizeof(ts));
                        po_dynbuf_addf(b, "%s", ts);
                } else {
                        po_dynbuf_add(b, "\\N", 2);
                }
                copy_sep(b, 0);
                if (d->has_last) {
                        format_instant(d->last_ms * 1000, ts, sizeof(ts));
                        po_dynbuf_addf(b, "%s", ts);
                } else {
                        po_dynbuf_add(b, "\\N", 2);
                }
                copy_sep(b, 0);
                copy_text(b, d->source_topic);
                if (d->has_source_pos)
                        po_dynbuf_addf(b, "\t%" PRId32 "\t%" PRId64 "\t",
                                       d->source_partition, d->source_offset);
                else
                        po_dynbuf_add(b, "\t\\N\t\\N\t", 7);
                copy_bytea(b, d->key, d->key_len);
                copy_sep(b, 0);
                copy_bytea(b, d->value, d->value_len);
                copy_sep(b, 0);
                copy_text(b, d->headers_json);
                copy_sep(b, 1);
        }
}

/* COPY table FROM STDIN with the rows in pg->copy. */
static int copy_in(audit_pg_t *pg, const char *table, const char *cols, fail_t *f)
{
        char sql[600];
        PGresult *r;
        size_t off = 0;
        int ok;

        snprintf(sql, sizeof(sql), "COPY %s (%s) FROM STDIN", table, cols);
        r = PQexec(pg->conn, sql);
        if (!r || PQresultStatus(r) != PGRES_COPY_IN) {
                note_failure(pg, r, f);
                PQclear(r);
                return -1;
        }
        PQclear(r);
        while (off < pg->copy.len) {
                size_t n =
                    pg->copy.len - off < (1u << 20) ? pg->copy.len - off : 1u << 20;

                if (PQputCopyData(pg->conn, pg->copy.data + off, (int)n) != 1)
                        break;
                off += n;
        }
        ok = off == pg->copy.len && PQputCopyEnd(pg->conn, NULL) == 1;
        while ((r = PQgetResult(pg->conn)) != NULL) {
                if (PQresultStatus(r) != PGRES_COMMAND_OK) {
                        ok = 0;
                        note_failure(pg, r, f);
                }
                PQclear(r);
        }
        if (!ok && !f->msg[0])
                note_failure(pg, NULL, f);
        return ok ? 0 : -1;
}

/* Sends the rows in pg->copy (usage events, or dead letters) to their
 * temporary table, then moves them into their table; *inserted counts the
 * new rows. */
static int copy_merge(audit_pg_t *pg, int usage, int64_t *inserted, fail_t *f)
{
        const char *temp = usage ? "audit_usage_in" : "audit_dead_in";
        const char *cols = usage ? usage_cols : dead_cols;
        char sql[2600];

        if (pg->copy.failed) {
                snprintf(f->msg, sizeof(f->msg), "out of memory");
                return -1;
        }
        if (copy_in(pg, temp, cols, f))
                return -1;
        snprintf(sql, sizeof(sql), "WITH ");
        snprintf(sql + 5, sizeof(sql) - 5, usage ? usage_tail : dead_tail, cols, cols,
                 temp);
        return exec_count(pg, NULL, sql, inserted, f);
}

static int write_copy(audit_pg_t *pg, const audit_usage_row_t *usage, size_t nusage,
                      const audit_dead_row_t *dead, size_t ndead, audit_pg_stats_t *st,
                      fail_t *f)
{
        if (!pg->temps) {
                if (exec_simple(pg, temp_tables, f))
                        goto fail;
                pg->temps = 1;
        }
        if (exec_simple(pg, "BEGIN", f))
                goto fail;
        if (nusage) {
                po_dynbuf_reset(&pg->copy);
                copy_usage_rows(&pg->copy, usage, nusage);
                if (copy_merge(pg, 1, &st->usage_inserted, f))
                        goto fail;
        }
        if (ndead) {
                po_dynbuf_reset(&pg->copy);
                copy_dead_rows(&pg->copy, dead, ndead);
                if (copy_merge(pg, 0, &st->dead_inserted, f))
                        goto fail;
        }
        if (exec_simple(pg, "COMMIT", f))
                goto fail;
        return 0;
fail:
        recover(pg);
        return -1;
}

/* ---- row by row, when PostgreSQL refused a row ---- */

/* The dead letter that stands for a usage row PostgreSQL refused. */
static void rejected_usage(const audit_usage_row_t *u, const char *why, char *err,
                           size_t err_size, int64_t now_ms, audit_dead_row_t *d)
{
        memset(d, 0, sizeof(*d));
        snprintf(err, err_size, "PostgreSQL refused the usage event %s: %s", u->event_id,
                 why);
        utf8_truncate(err, err_size - 1);
        d->source = u->source;
        d->stage = "audit-sink";
        d->reason = "DB_REJECTED";
        d->error = err;
        d->attempts = 1;
        d->has_first = d->has_last = 1;
        d->first_ms = d->last_ms = now_ms;
        d->source_topic = u->topic;
        d->has_source_pos = 1;
        d->source_partition = u->partition;
        d->source_offset = u->offset;
        d->key = u->has_key ? u->key : NULL;
        d->key_len = u->has_key ? u->key_len : 0;
        d->value = u->raw ? u->raw : "";
        d->value_len = u->raw_len;
        d->headers_json = "[]";
}

/* A dead letter PostgreSQL refused, reduced to what cannot be refused. */
static void rejected_dead(const audit_dead_row_t *in, const char *why, char *err,
                          size_t err_size, audit_dead_row_t *d)
{
        *d = *in;
        snprintf(err, err_size, "PostgreSQL refused the dead letter (%s); it said: %s",
                 in->reason, why);
        utf8_truncate(err, err_size - 1);
        d->reason = "DB_REJECTED";
        d->error = err;
        d->has_first = d->has_last = 0;
        d->headers_json = "[]";
}

static int savepoint_row(audit_pg_t *pg, stmt_t *s, int64_t *count, fail_t *f)
{
        if (exec_simple(pg, "SAVEPOINT audit_row", f))
                return -1;
        if (exec_count(pg, s, NULL, count, f) == 0)
                return exec_simple(pg, "RELEASE SAVEPOINT audit_row", f);
        if (!f->data)
                return -1;
        return exec_simple(pg, "ROLLBACK TO SAVEPOINT audit_row", &(fail_t){0}) ? -1 : 1;
}

static int64_t wall_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int write_isolating(audit_pg_t *pg, const audit_usage_row_t *usage, size_t nusage,
                           const audit_dead_row_t *dead, size_t ndead,
                           audit_pg_stats_t *st, fail_t *f)
{
        audit_dead_row_t d;
        char err[700];
        stmt_t s;
        size_t i;
        int rc;

        stmt_init(&s);
        if (exec_simple(pg, "BEGIN", f))
                goto fail;
        for (i = 0; i < nusage; i++) {
                fail_t rf = {0};

                if (build_usage(&s, &usage[i], 1))
                        goto nomem;
                rc = savepoint_row(pg, &s, &st->usage_inserted, &rf);
                if (rc < 0) {
                        *f = rf;
                        goto fail;
                }
                if (rc == 0)
                        continue;
                po_log_error("usage event %s at %s refused: %s", usage[i].event_id,
                             usage[i].source, rf.msg);
                rejected_usage(&usage[i], rf.msg, err, sizeof(err), wall_ms(), &d);
                if (build_dead(&s, &d, 1))
                        goto nomem;
                if (exec_count(pg, &s, NULL, &st->dead_inserted, f))
                        goto fail;
                st->rejected++;
        }
        for (i = 0; i < ndead; i++) {
                fail_t rf = {0};

                if (build_dead(&s, &dead[i], 1))
                        goto nomem;
                rc = savepoint_row(pg, &s, &st->dead_inserted, &rf);
                if (rc < 0) {
                        *f = rf;
                        goto fail;
                }
                if (rc == 0)
                        continue;
                po_log_error("dead letter %s refused: %s", dead[i].source, rf.msg);
                rejected_dead(&dead[i], rf.msg, err, sizeof(err), &d);
                if (build_dead(&s, &d, 1))
                        goto nomem;
                if (exec_count(pg, &s, NULL, &st->dead_inserted, f))
                        goto fail;
                st->rejected++;
        }
        if (exec_simple(pg, "COMMIT", f))
                goto fail;
        stmt_release(&s);
        return 0;
nomem:
        snprintf(f->msg, sizeof(f->msg), "out of memory");
        f->data = 0;
fail:
        stmt_release(&s);
        recover(pg);
        return -1;
}

po_err_t audit_pg_write(audit_pg_t *pg, const audit_usage_row_t *usage, size_t nusage,
                        const audit_dead_row_t *dead, size_t ndead,
                        audit_pg_stats_t *stats, char *errstr, size_t errstr_size)
{
        fail_t f = {0};
        po_err_t err;
        int rc;

        memset(stats, 0, sizeof(*stats));
        if (nusage == 0 && ndead == 0)
                return PO_OK;
        err = audit_pg_connect(pg, errstr, errstr_size);
        if (err)
                return err;
        if (pg->method == AUDIT_PG_COPY)
                rc = write_copy(pg, usage, nusage, dead, ndead, stats, &f);
        else
                rc = write_pipeline(pg, usage, nusage, dead, ndead, stats, &f);
        if (rc == 0) {
                pg->up = 1;
                return PO_OK;
        }
        if (f.data && audit_pg_is_up(pg)) {
                po_log_warn("a row of the batch was refused (%s): writing row by row",
                            f.msg);
                memset(stats, 0, sizeof(*stats));
                memset(&f, 0, sizeof(f));
                if (write_isolating(pg, usage, nusage, dead, ndead, stats, &f) == 0) {
                        pg->up = 1;
                        return PO_OK;
                }
        }
        memset(stats, 0, sizeof(*stats));
        snprintf(errstr, errstr_size, "%s", f.msg[0] ? f.msg : "postgres: write failed");
        return PO_ERR_DEPENDENCY;
}
