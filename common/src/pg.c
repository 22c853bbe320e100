/* PostgreSQL connection and schema migrations (see po/pg.h). */
#include "po/pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "po/log.h"

/* Any constant: the key of the advisory lock migrations run under. */
#define MIGRATION_LOCK_KEY 0x70726f6d6fLL /* "promo" */

PGconn *po_pg_connect(const po_config_t *cfg, const char *app, char *errstr,
                      size_t errstr_size)
{
        const char *keys[] = {"dbname", "connect_timeout", "application_name", NULL};
        const char *vals[] = {cfg->pg_dsn, "5", app, NULL};
        PGconn *pg;

        /* expand_dbname: the DSN is a conninfo string or a URI. */
        pg = PQconnectdbParams(keys, vals, 1);
        if (!pg) {
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        if (PQstatus(pg) != CONNECTION_OK) {
                snprintf(errstr, errstr_size, "%s", PQerrorMessage(pg));
                errstr[strcspn(errstr, "\n")] = '\0';
                PQfinish(pg);
                return NULL;
        }
        return pg;
}

static void server_error(PGconn *pg, const PGresult *r, char *errstr, size_t size)
{
        const char *m = r ? PQresultErrorMessage(r) : PQerrorMessage(pg);

        snprintf(errstr, size, "%s", m && *m ? m : "no answer from PostgreSQL");
        errstr[strcspn(errstr, "\n")] = '\0';
}

po_err_t po_pg_exec(PGconn *pg, const char *sql, char *errstr, size_t errstr_size)
{
        PGresult *r = PQexec(pg, sql);
        ExecStatusType s = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;

        if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
                server_error(pg, r, errstr, errstr_size);
                PQclear(r);
                return PO_ERR_IO;
        }
        PQclear(r);
        return PO_OK;
}

int po_pg_ok(PGconn *pg)
{
        if (!pg)
                return 0;
        if (PQstatus(pg) == CONNECTION_OK)
                return 1;
        PQreset(pg);
        return PQstatus(pg) == CONNECTION_OK;
}

static const char create_table[] = "CREATE TABLE IF NOT EXISTS schema_migrations ("
                                   " version integer PRIMARY KEY, name text NOT NULL,"
                                   " applied_at timestamptz NOT NULL DEFAULT now())";

int po_pg_schema_version(PGconn *pg)
{
        PGresult *r =
            PQexec(pg, "SELECT coalesce(max(version), 0) FROM schema_migrations");
        int v = -1;

        if (r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
                v = atoi(PQgetvalue(r, 0, 0));
        else if (r && PQresultErrorField(r, PG_DIAG_SQLSTATE) &&
                 strcmp(PQresultErrorField(r, PG_DIAG_SQLSTATE), "42P01") == 0)
                v = 0; /* undefined_table: never migrated */
        PQclear(r);
        return v;
}

/* Applies m unless already there; *done set to 1 when it was applied now. */
static po_err_t apply(PGconn *pg, const po_pg_migration_t *m, int *done, char *errstr,
                      size_t size)
{
        char sql[160], v[16];
        const char *params[2] = {v, m->name};
        PGresult *r;
        po_err_t err;

        *done = 0;
        if (po_pg_exec(pg, "BEGIN", errstr, size))
                return PO_ERR_IO;
        snprintf(sql, sizeof(sql), "SELECT pg_advisory_xact_lock(%lld)",
                 (long long)MIGRATION_LOCK_KEY);
        if ((err = po_pg_exec(pg, sql, errstr, size)) ||
            (err = po_pg_exec(pg, create_table, errstr, size)))
                goto fail;
        snprintf(v, sizeof(v), "%d", m->version);
        r = PQexecParams(pg, "SELECT 1 FROM schema_migrations WHERE version = $1", 1,
                         NULL, params, NULL, NULL, 0);
        if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
                server_error(pg, r, errstr, size);
                PQclear(r);
                err = PO_ERR_IO;
                goto fail;
        }
        if (PQntuples(r) == 1) {
                PQclear(r);
                return po_pg_exec(pg, "COMMIT", errstr, size);
        }
        PQclear(r);
        if ((err = po_pg_exec(pg, m->sql, errstr, size)))
                goto fail;
        r = PQexecParams(pg,
                         "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                         2, NULL, params, NULL, NULL, 0);
        if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
                server_error(pg, r, errstr, size);
                PQclear(r);
                err = PO_ERR_IO;
                goto fail;
        }
        PQclear(r);
        if ((err = po_pg_exec(pg, "COMMIT", errstr, size)))
                return err;
        *done = 1;
        return PO_OK;
fail:
        PQclear(PQexec(pg, "ROLLBACK"));
        return err;
}

po_err_t po_pg_migrate(PGconn *pg, int *applied, char *errstr, size_t errstr_size)
{
        size_t n, i;
        const po_pg_migration_t *m = po_pg_migrations(&n);
        char why[400];
        int done, count = 0;

        if (applied)
                *applied = 0;
        /* Quiet the NOTICEs of IF NOT EXISTS. */
        PQclear(PQexec(pg, "SET client_min_messages = warning"));
        for (i = 0; i < n; i++) {
                if (apply(pg, &m[i], &done, why, sizeof(why))) {
                        snprintf(errstr, errstr_size, "migration %04d_%s: %s",
                                 m[i].version, m[i].name, why);
                        return PO_ERR_IO;
                }
                if (done) {
                        po_log_info("applied migration %04d_%s", m[i].version, m[i].name);
                        count++;
                }
        }
        if (applied)
                *applied = count;
        return PO_OK;
}

void po_pg_array_add(po_dynbuf_t *b, const char *v)
{
        const char *p, *run;

        if (b->len > 1)
                po_dynbuf_add(b, ",", 1);
        if (!v) {
                po_dynbuf_add(b, "NULL", 4);
                return;
        }
        po_dynbuf_add(b, "\"", 1);
        for (p = run = v; *p; p++) {
                if (*p != '"' && *p != '\\')
                        continue;
                po_dynbuf_add(b, run, (size_t)(p - run));
                po_dynbuf_add(b, "\\", 1);
                run = p;
        }
        po_dynbuf_add(b, run, (size_t)(p - run));
        po_dynbuf_add(b, "\"", 1);
}

po_err_t po_pg_fail(PGconn *pg, PGresult *res, char *errstr, size_t errstr_size)
{
        snprintf(errstr, errstr_size, "postgres: %s",
                 res ? PQresultErrorMessage(res) : PQerrorMessage(pg));
        errstr[strcspn(errstr, "\n")] = '\0';
        PQclear(res);
        return PO_ERR_DEPENDENCY;
}
