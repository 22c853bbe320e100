/* Reference data (common/src/refdata.c) on the real Redis and PostgreSQL:
 * the paths the pipeline tests only hit by chance. Each run works in a
 * PostgreSQL schema of its own and on keys of its own. */
#include <check.h>
#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "po/config.h"
#include "po/messages.h"
#include "po/refbatch.h"
#include "po/refdata.h"

#include "it.h"

static po_config_t cfg;
static char run[32];

static void sql(PGconn *pg, const char *q)
{
        PGresult *r = PQexec(pg, q);

        ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK ||
                          PQresultStatus(r) == PGRES_TUPLES_OK,
                      "%s: %s", q, PQresultErrorMessage(r));
        PQclear(r);
}

/* A connection whose search path is a new schema <name>_<run> holding a
 * codes table as the migrations make it. */
static PGconn *own_schema(const char *name)
{
        char dsn[1024], q[256];
        PGconn *pg;

        snprintf(dsn, sizeof(dsn), "%s options=-csearch_path=%s_%s", cfg.pg_dsn, name,
                 run);
        pg = PQconnectdb(dsn);
        ck_assert_msg(PQstatus(pg) == CONNECTION_OK, "%s", PQerrorMessage(pg));
        snprintf(q, sizeof(q), "CREATE SCHEMA %s_%s", name, run);
        sql(pg, q);
        sql(pg, "CREATE TABLE codes (code text PRIMARY KEY, definition jsonb NOT NULL, "
                "status text NOT NULL, version bigint NOT NULL)");
        return pg;
}

/* Drops own_schema's schema and closes the connection. */
static void drop_schema(PGconn *pg, const char *name)
{
        char q[256];

        snprintf(q, sizeof(q), "DROP SCHEMA %s_%s CASCADE", name, run);
        sql(pg, q);
        PQfinish(pg);
}

/* A code missing from Redis is read from PostgreSQL and its cache fill is
 * queued; then the customer's lookup fails (PostgreSQL lost between two
 * queries; here: no customers table in this schema). The fetch fails, and
 * the Redis connection must still be in step: the next command gets its
 * own reply, not the cache fill's. */
START_TEST(failure_after_a_cache_fill_leaves_redis_in_step)
{
        char code[64], cust[64], q[512], errstr[256];
        const char *codes[1], *tier = NULL;
        po_codedef_t defs[1];
        int has_def[1] = {0}, crm_known = 0;
        po_refdata_stats_t stats = {0};
        po_arena_t arena;
        redisContext *rc;
        redisReply *r;
        PGconn *pg;

        pg = own_schema("refdata");
        snprintf(code, sizeof(code), "RD-%s", run);
        snprintf(cust, sizeof(cust), "rd-cust-%s", run);
        snprintf(q, sizeof(q),
                 "INSERT INTO codes VALUES ('%s', '{\"code\": \"%s\", \"status\": "
                 "\"active\", \"type\": \"percentage\", \"value\": 1000}', 'active', 7)",
                 code, code);
        sql(pg, q);
        rc = redisConnect(cfg.redis_host, cfg.redis_port);
        ck_assert(rc && !rc->err);
        r = redisCommand(rc, "DEL promo:code:%s promo:customer:%s", code, cust);
        freeReplyObject(r);
        it_redis_flush_scripts(rc); /* as a fresh Redis: the fill must take anyway */

        codes[0] = code;
        po_arena_init(&arena, 1 << 20);
        ck_assert_int_ne(po_refdata_fetch(rc, pg, &arena, codes, 1, defs, has_def, cust,
                                          &tier, &crm_known, NULL, 0, NULL, NULL, &stats,
                                          errstr, sizeof(errstr)),
                         PO_OK);
        ck_assert_msg(strstr(errstr, "customers") != NULL, "%s", errstr);
        r = redisCommand(rc, "PING");
        ck_assert_msg(r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0,
                      "PING got a reply of type %d: the connection is out of step",
                      r ? r->type : -1);
        freeReplyObject(r);
        /* ... and the fill itself went through. */
        r = redisCommand(rc, "HGET promo:code:%s v", code);
        ck_assert(r && r->type == REDIS_REPLY_STRING);
        ck_assert_str_eq(r->str, "7");
        freeReplyObject(r);

        r = redisCommand(rc, "DEL promo:code:%s", code);
        freeReplyObject(r);
        redisFree(rc);
        po_arena_release(&arena);
        drop_schema(pg, "refdata");
}
END_TEST

/* The cache scripts go by SHA1: on a Redis without them (SCRIPT FLUSH, as
 * a fresh or restarted one) a put, a delete, puts in bulk and a pipelined
 * fill all take the first time, and nothing sends a script's text with
 * EVAL. A wrong digest in refdata.c fails every step here. */
START_TEST(scripts_by_sha_survive_a_script_flush)
{
        char k1[64], k2[64], errstr[256];
        const char *keys[2] = {k1, k2}, *data[2] = {"a", "b"};
        int64_t versions[2] = {3, 3};
        size_t lens[2] = {1, 1}, pending;
        long long evals;
        redisContext *rc;
        redisReply *r;

        snprintf(k1, sizeof(k1), "it:refdata:%s:1", run);
        snprintf(k2, sizeof(k2), "it:refdata:%s:2", run);
        rc = redisConnect(cfg.redis_host, cfg.redis_port);
        ck_assert(rc && !rc->err);
        freeReplyObject(redisCommand(rc, "DEL %s %s", k1, k2));
        evals = it_redis_calls(rc, "eval");

        it_redis_flush_scripts(rc);
        ck_assert_msg(po_refdata_put(rc, k1, 5, "x", 1, 0, errstr, sizeof(errstr)) ==
                          PO_OK,
                      "%s", errstr);
        r = redisCommand(rc, "HGET %s d", k1);
        ck_assert(r && r->type == REDIS_REPLY_STRING);
        ck_assert_str_eq(r->str, "x");
        freeReplyObject(r);

        it_redis_flush_scripts(rc);
        ck_assert_msg(po_refdata_put_many(rc, keys, versions, data, lens, 2, errstr,
                                          sizeof(errstr)) == PO_OK,
                      "%s", errstr);
        r = redisCommand(rc, "HGET %s d", k2);
        ck_assert(r && r->type == REDIS_REPLY_STRING);
        ck_assert_str_eq(r->str, "b");
        freeReplyObject(r);
        /* k1 is at version 5: the bulk put's version 3 left it alone. */
        r = redisCommand(rc, "HGET %s d", k1);
        ck_assert(r && r->type == REDIS_REPLY_STRING);
        ck_assert_str_eq(r->str, "x");
        freeReplyObject(r);

        /* A pipelined fill on a Redis without the script (as a fresh one):
         * the SCRIPT LOAD queued before it makes it take. */
        it_redis_flush_scripts(rc);
        freeReplyObject(redisCommand(rc, "DEL %s", k2));
        pending = 0;
        po_refdata_append_put(rc, &pending, k2, 1, "filled", 6, 60);
        ck_assert_uint_eq(pending, 2);
        po_refdata_drain_puts(rc, pending);
        r = redisCommand(rc, "HGET %s d", k2);
        ck_assert(r && r->type == REDIS_REPLY_STRING);
        ck_assert_str_eq(r->str, "filled");
        freeReplyObject(r);

        it_redis_flush_scripts(rc);
        ck_assert_msg(po_refdata_del(rc, k1, 9, errstr, sizeof(errstr)) == PO_OK, "%s",
                      errstr);
        r = redisCommand(rc, "EXISTS %s", k1);
        ck_assert(r && r->type == REDIS_REPLY_INTEGER && r->integer == 0);
        freeReplyObject(r);

        ck_assert_int_eq(it_redis_calls(rc, "eval"), evals);
        freeReplyObject(redisCommand(rc, "DEL %s %s", k1, k2));
        redisFree(rc);
}
END_TEST

/* The validator's group lookup (po_refbatch): the misses of all three
 * kinds are answered by one PostgreSQL query, and their cache fills ride
 * on the caller's next pipeline without putting it out of step. A
 * definition in PostgreSQL that does not parse stays unresolved (the
 * order's own fetch reports it) and is not cached as absent. */
START_TEST(a_group_resolves_every_kind_of_miss_in_one_query)
{
        char q[1024], id[8][64];
        enum { CODE, NOCODE, BADCODE, GOLD, NOTIER, NOCUST, SKU, NOSKU };
        static const char *const key[] = {
            "promo:code:",     "promo:code:",     "promo:code:",  "promo:customer:",
            "promo:customer:", "promo:customer:", "promo:stock:", "promo:stock:"};
        static const po_refkind_t kind[] = {
            PO_REF_CODE,     PO_REF_CODE,     PO_REF_CODE, PO_REF_CUSTOMER,
            PO_REF_CUSTOMER, PO_REF_CUSTOMER, PO_REF_SKU,  PO_REF_SKU};
        po_refdata_stats_t stats = {0};
        po_refentry_t *e;
        po_refbatch_t b;
        redisContext *rc;
        redisReply *r;
        PGconn *pg;
        size_t fills;
        int i;

        for (i = 0; i < 8; i++)
                snprintf(id[i], sizeof(id[i]), "RB%d-%s", i, run);
        pg = own_schema("refbatch");
        sql(pg, "CREATE TABLE customers (customer_id text PRIMARY KEY, tier text, "
                "updated_at timestamptz NOT NULL DEFAULT now())");
        sql(pg, "CREATE TABLE inventory (sku text PRIMARY KEY, stock bigint NOT NULL, "
                "updated_at timestamptz NOT NULL DEFAULT now())");
        snprintf(q, sizeof(q),
                 "INSERT INTO codes VALUES ('%s', '{\"code\": \"%s\", \"status\": "
                 "\"active\", \"type\": \"percentage\", \"value\": 1000}', 'active', 7),"
                 " ('%s', '{\"code\": 12}', 'active', 3)",
                 id[CODE], id[CODE], id[BADCODE]);
        sql(pg, q);
        snprintf(q, sizeof(q),
                 "INSERT INTO customers VALUES ('%s', 'gold'), ('%s', NULL);"
                 " INSERT INTO inventory VALUES ('%s', 5)",
                 id[GOLD], id[NOTIER], id[SKU]);
        sql(pg, q);
        rc = redisConnect(cfg.redis_host, cfg.redis_port);
        ck_assert(rc && !rc->err);
        for (i = 0; i < 8; i++)
                freeReplyObject(redisCommand(rc, "DEL %s%s", key[i], id[i]));
        it_redis_flush_scripts(rc); /* as a fresh Redis */

        po_refbatch_init(&b);
        for (i = 0; i < 8; i++)
                ck_assert_int_eq(po_refbatch_add(&b, kind[i], id[i]), 0);
        po_refbatch_append(&b, rc);
        ck_assert_int_eq(po_refbatch_read(&b, rc, &stats, q, sizeof(q)), PO_OK);
        fills = po_refbatch_fill(&b, rc, pg, &stats);
        ck_assert_int_eq(stats.pg_reads, 1);
        /* 7 fills (not the bad definition) after their SCRIPT LOAD. */
        ck_assert_uint_eq(fills, 8);
        redisAppendCommand(rc, "PING"); /* the caller's own command */
        po_refdata_drain_puts(rc, fills);
        ck_assert_int_eq(redisGetReply(rc, (void **)&r), REDIS_OK);
        ck_assert_msg(r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0,
                      "PING got a reply of type %d: the pipeline is out of step",
                      r ? r->type : -1);
        freeReplyObject(r);

        e = po_refbatch_find(&b, PO_REF_CODE, id[CODE]);
        ck_assert(e && e->resolved && e->has);
        ck_assert_str_eq(e->def.def.code, id[CODE]);
        e = po_refbatch_find(&b, PO_REF_CODE, id[NOCODE]);
        ck_assert(e && e->resolved && !e->has);
        e = po_refbatch_find(&b, PO_REF_CODE, id[BADCODE]);
        ck_assert(e && !e->resolved);
        e = po_refbatch_find(&b, PO_REF_CUSTOMER, id[GOLD]);
        ck_assert(e && e->resolved && e->has && e->tier);
        ck_assert_str_eq(e->tier, "gold");
        e = po_refbatch_find(&b, PO_REF_CUSTOMER, id[NOTIER]);
        ck_assert(e && e->resolved && e->has && !e->tier);
        e = po_refbatch_find(&b, PO_REF_CUSTOMER, id[NOCUST]);
        ck_assert(e && e->resolved && !e->has);
        e = po_refbatch_find(&b, PO_REF_SKU, id[SKU]);
        ck_assert(e && e->resolved && e->has && e->stock == 5);
        e = po_refbatch_find(&b, PO_REF_SKU, id[NOSKU]);
        ck_assert(e && e->resolved && !e->has);

        /* The fills took: values and versions, absences with a TTL, and
         * nothing for the definition that does not parse. */
        r = redisCommand(rc, "HGET promo:code:%s v", id[CODE]);
        ck_assert(r && r->type == REDIS_REPLY_STRING);
        ck_assert_str_eq(r->str, "7");
        freeReplyObject(r);
        r = redisCommand(rc, "HGET promo:customer:%s d", id[GOLD]);
        ck_assert(r && r->type == REDIS_REPLY_STRING);
        ck_assert_str_eq(r->str, "gold");
        freeReplyObject(r);
        r = redisCommand(rc, "HGET promo:stock:%s d", id[SKU]);
        ck_assert(r && r->type == REDIS_REPLY_STRING);
        ck_assert_str_eq(r->str, "5");
        freeReplyObject(r);
        for (i = 0; i < 3; i++) {
                static const int absent[] = {NOCODE, NOCUST, NOSKU};
                int a = absent[i];

                r = redisCommand(rc, "TTL %s%s", key[a], id[a]);
                ck_assert_msg(r && r->type == REDIS_REPLY_INTEGER && r->integer > 0,
                              "%s%s: no expiring absence", key[a], id[a]);
                freeReplyObject(r);
        }
        r = redisCommand(rc, "EXISTS promo:code:%s", id[BADCODE]);
        ck_assert(r && r->type == REDIS_REPLY_INTEGER && r->integer == 0);
        freeReplyObject(r);

        for (i = 0; i < 8; i++)
                freeReplyObject(redisCommand(rc, "DEL %s%s", key[i], id[i]));
        po_refbatch_release(&b);
        redisFree(rc);
        drop_schema(pg, "refbatch");
}
END_TEST

int main(void)
{
        Suite *s = suite_create("refdata");
        TCase *tc = tcase_create("refdata");
        char err[256];

        if (po_config_load(&cfg, NULL, 0, err, sizeof(err)) != PO_OK) {
                fprintf(stderr, "check_refdata: %s\n", err);
                return 1;
        }
        snprintf(run, sizeof(run), "%ld_%d", (long)time(NULL) % 100000000, (int)getpid());
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, failure_after_a_cache_fill_leaves_redis_in_step);
        tcase_add_test(tc, scripts_by_sha_survive_a_script_flush);
        tcase_add_test(tc, a_group_resolves_every_kind_of_miss_in_one_query);
        suite_add_tcase(s, tc);
        return it_run_suite(s);
}
