/* promo-migrate: applies the schema migrations compiled into the build
 * (deploy/migrations/, po_pg_migrate) to the database of PROMO_PG_DSN and
 * prints the schema version before and after.
 *
 *   promo-migrate            apply what is missing; exit 0, or 1 on failure
 *   promo-migrate --status   list every migration, applied or pending;
 *                            change nothing
 *
 * Each migration runs in its own transaction under an advisory lock, so
 * running it while services start (they migrate too) is safe. scripts/stack
 * `up` runs it once PostgreSQL answers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "po/config.h"
#include "po/log.h"
#include "po/pg.h"

static void usage(FILE *f)
{
        fprintf(f, "usage: promo-migrate [--status]\n"
                   "  apply the compiled-in schema migrations to PROMO_PG_DSN;\n"
                   "  --status lists applied and pending migrations without "
                   "applying\n");
}

/* Prints every compiled-in migration with its state, then the versions the
 * database has that this build does not know (a newer build migrated it). */
static int status(PGconn *pg)
{
        size_t n, i;
        const po_pg_migration_t *m = po_pg_migrations(&n);
        PGresult *r;
        int rows = 0, j, version = po_pg_schema_version(pg), known;

        if (version < 0) {
                fprintf(stderr, "promo-migrate: cannot read the schema version: %s",
                        PQerrorMessage(pg));
                return 1;
        }
        r = PQexec(pg, "SELECT version, name, "
                       "to_char(applied_at AT TIME ZONE 'UTC', "
                       "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
                       "FROM schema_migrations ORDER BY version");
        if (version > 0 && (!r || PQresultStatus(r) != PGRES_TUPLES_OK)) {
                fprintf(stderr, "promo-migrate: cannot list schema_migrations: %s",
                        PQerrorMessage(pg));
                PQclear(r);
                return 1;
        }
        if (r && PQresultStatus(r) == PGRES_TUPLES_OK)
                rows = PQntuples(r);
        printf("schema version %d; this build has %zu migration%s\n", version, n,
               n == 1 ? "" : "s");
        for (i = 0; i < n; i++) {
                const char *at = NULL;

                for (j = 0; j < rows; j++)
                        if (atoi(PQgetvalue(r, j, 0)) == m[i].version)
                                at = PQgetvalue(r, j, 2);
                printf("  %04d_%-30s %s%s\n", m[i].version, m[i].name,
                       at ? "applied " : "pending", at ? at : "");
        }
        for (j = 0; j < rows; j++) {
                int v = atoi(PQgetvalue(r, j, 0));

                known = 0;
                for (i = 0; i < n; i++)
                        known |= m[i].version == v;
                if (!known)
                        printf("  %04d_%-30s applied %s (not in this build)\n", v,
                               PQgetvalue(r, j, 1), PQgetvalue(r, j, 2));
        }
        PQclear(r);
        return 0;
}

int main(int argc, char **argv)
{
        po_config_t cfg;
        PGconn *pg = NULL;
        char err[600];
        int want_status = 0, applied = 0, before, after, rc = 1, i;

        for (i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--status") == 0) {
                        want_status = 1;
                } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
                        usage(stdout);
                        return 0;
                } else {
                        usage(stderr);
                        return 2;
                }
        }
        po_log_init("promo-migrate", PO_LOG_WARN);
        if (po_config_load(&cfg, NULL, 0, err, sizeof(err))) {
                fprintf(stderr, "promo-migrate: %s\n", err);
                return 2;
        }
        pg = po_pg_connect(&cfg, "promo-migrate", err, sizeof(err));
        if (!pg) {
                fprintf(stderr, "promo-migrate: cannot connect to PostgreSQL: %s\n", err);
                return 1;
        }
        if (want_status) {
                rc = status(pg);
                goto out;
        }
        before = po_pg_schema_version(pg);
        if (before < 0) {
                fprintf(stderr, "promo-migrate: cannot read the schema version: %s",
                        PQerrorMessage(pg));
                goto out;
        }
        printf("schema version before: %d\n", before);
        if (po_pg_migrate(pg, &applied, err, sizeof(err))) {
                fprintf(stderr, "promo-migrate: %s\n", err);
                goto out;
        }
        after = po_pg_schema_version(pg);
        printf("applied %d migration%s\nschema version after: %d\n", applied,
               applied == 1 ? "" : "s", after);
        rc = after >= before ? 0 : 1;
out:
        PQfinish(pg);
        return rc;
}
