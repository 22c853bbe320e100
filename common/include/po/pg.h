/* po_pg: PostgreSQL access shared by the services: connecting with the
 * stack's settings, and the versioned schema migrations of
 * deploy/migrations/ (compiled in; see cmake/po_embed_migrations.cmake). */
#ifndef PO_PG_H
#define PO_PG_H

#include <libpq-fe.h>
#include <stddef.h>

#include "po/config.h"
#include "po/dynbuf.h"
#include "po/err.h"

typedef struct po_pg_migration {
        int version; /* NNNN of NNNN_<name>.sql */
        const char *name;
        const char *sql; /* the whole file */
} po_pg_migration_t;

/* The compiled-in migrations, by increasing version. */
const po_pg_migration_t *po_pg_migrations(size_t *count);

/* Connects with cfg->pg_dsn (connect timeout 5 s, application_name = app).
 * Returns NULL with the server's message in errstr. */
PGconn *po_pg_connect(const po_config_t *cfg, const char *app, char *errstr,
                      size_t errstr_size);

/* Applies every migration newer than the database's, each in its own
 * transaction under a transaction-level advisory lock, so concurrent
 * services starting together apply each exactly once. *applied (may be NULL)
 * gets how many were applied now. Returns PO_ERR_IO with a message naming the
 * migration on failure (that migration is rolled back). */
po_err_t po_pg_migrate(PGconn *pg, int *applied, char *errstr, size_t errstr_size);

/* The database's schema version (0 when never migrated), or -1 on error. */
int po_pg_schema_version(PGconn *pg);

/* Runs a statement without parameters that returns no rows. Returns PO_OK,
 * or PO_ERR_IO with the server's message in errstr. */
po_err_t po_pg_exec(PGconn *pg, const char *sql, char *errstr, size_t errstr_size);

/* Appends v as the next element of a PostgreSQL array literal being built in
 * b (b starts as "{"; the caller closes it with "}"): double-quoted with '"'
 * and '\\' escaped, or NULL when v is NULL. Failures are sticky in b. */
void po_pg_array_add(po_dynbuf_t *b, const char *v);

/* 1 when the connection is usable; otherwise tries one reset and reports. */
int po_pg_ok(PGconn *pg);

/* Puts "postgres: <the error>" (one line) in errstr, from res when given
 * (then cleared) or else from the connection; returns PO_ERR_DEPENDENCY. */
po_err_t po_pg_fail(PGconn *pg, PGresult *res, char *errstr, size_t errstr_size);

#endif
