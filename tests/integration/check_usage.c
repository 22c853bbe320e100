/* Redemption counters (common/src/usage.c) on the real Redis and PostgreSQL:
 * the scripts are sent by SHA1 (EVALSHA), and a Redis that lost them
 * (restarted, or SCRIPT FLUSH) costs a reload, never a wrong answer or a
 * reservation counted twice. Works on a code and orders of its own, removed
 * at the end. */
#include <check.h>
#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "po/config.h"
#include "po/usage.h"

#include "it.h"

static po_config_t cfg;
static char run[32];

static long long total(redisContext *rc, const char *code)
{
        redisReply *r = redisCommand(rc, "GET promo:usage:total:%s", code);
        long long n;

        ck_assert(r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_NIL));
        n = r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10) : 0;
        freeReplyObject(r);
        return n;
}

/* po_usage_reserve of code for order (limit 1, no customer limit): whether
 * it was granted; any error fails the test. */
static int reserve(po_usage_t *u, redisContext *rc, const char *order, const char *cust,
                   const char *code)
{
        const char *codes[1] = {code};
        int64_t lim[1] = {1}, clim[1] = {-1};
        char errstr[256];
        int granted = -1;

        ck_assert_msg(po_usage_reserve(u, rc, order, cust, codes, lim, clim, 1, &granted,
                                       errstr, sizeof(errstr)) == PO_OK,
                      "%s", errstr);
        return granted;
}

START_TEST(scripts_by_sha_survive_a_script_flush)
{
        char code[64], order1[64], order2[64], cust[64], errstr[256];
        const char *codes[1];
        int64_t lim[1] = {1}, clim[1] = {-1}, t[1], u[1];
        long long before;
        int granted = -1;
        po_usage_t usage;
        redisContext *rc;
        redisReply *r;
        PGconn *pg;

        snprintf(code, sizeof(code), "USAGE-%s", run);
        snprintf(order1, sizeof(order1), "usage-o1-%s", run);
        snprintf(order2, sizeof(order2), "usage-o2-%s", run);
        snprintf(cust, sizeof(cust), "usage-c-%s", run);
        codes[0] = code;
        pg = PQconnectdb(cfg.pg_dsn);
        ck_assert_msg(PQstatus(pg) == CONNECTION_OK, "%s", PQerrorMessage(pg));
        rc = redisConnect(cfg.redis_host, cfg.redis_port);
        ck_assert(rc && !rc->err);
        po_usage_init(&usage);
        ck_assert_msg(po_usage_ready(&usage, rc, pg, 10000, errstr, sizeof(errstr)) ==
                          PO_OK,
                      "%s", errstr);
        ck_assert_uint_eq(strlen(usage.read_sha), 40);
        ck_assert_uint_eq(strlen(usage.reserve_sha), 40);

        /* By SHA1: the one redemption left goes to order1, again to order1
         * (idempotent), not to order2. */
        before = it_redis_calls(rc, "evalsha");
        ck_assert_int_eq(reserve(&usage, rc, order1, cust, code), 1);
        ck_assert_int_eq(reserve(&usage, rc, order1, cust, code), 1);
        ck_assert_int_eq(reserve(&usage, rc, order2, cust, code), 0);
        ck_assert_int_eq(it_redis_calls(rc, "evalsha") - before, 3);
        ck_assert_int_eq(total(rc, code), 1);

        /* Redis forgets the scripts: the synchronous calls load them again
         * and answer as before. */
        it_redis_flush_scripts(rc);
        ck_assert_int_eq(po_usage_read(&usage, rc, order2, cust, codes, 1, t, u, errstr,
                                       sizeof(errstr)),
                         PO_OK);
        ck_assert_int_eq(t[0], 1);
        ck_assert_int_eq(u[0], 1);
        ck_assert_uint_eq(strlen(usage.read_sha), 40);
        it_redis_flush_scripts(rc);
        ck_assert_int_eq(reserve(&usage, rc, order1, cust, code), 1);
        ck_assert_int_eq(reserve(&usage, rc, order2, cust, code), 0);
        ck_assert_int_eq(total(rc, code), 1);

        /* A pipelined call to a Redis without the script is an error reply
         * (its caller falls back to the synchronous call), and the
         * connection stays in step. */
        it_redis_flush_scripts(rc);
        ck_assert_int_eq(
            po_usage_reserve_append(&usage, rc, order2, cust, codes, lim, clim, 1), 0);
        ck_assert_int_eq(po_usage_read_append(&usage, rc, order2, cust, codes, 1), 0);
        ck_assert_int_eq(po_usage_reserve_reply(rc, &granted, errstr, sizeof(errstr)),
                         PO_ERR_DEPENDENCY);
        ck_assert_msg(strstr(errstr, "NOSCRIPT") != NULL, "%s", errstr);
        ck_assert_int_eq(po_usage_read_reply(rc, 1, t, u, errstr, sizeof(errstr)),
                         PO_ERR_DEPENDENCY);
        r = redisCommand(rc, "PING");
        ck_assert(r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0);
        freeReplyObject(r);
        ck_assert_int_eq(total(rc, code), 1);

        r = redisCommand(rc,
                         "DEL promo:usage:total:%s promo:usage:cust:%s promo:resv:%s:%s",
                         code, code, order1, code);
        freeReplyObject(r);
        /* Leave the scripts loaded for whoever runs next. */
        po_usage_init(&usage);
        ck_assert_int_eq(po_usage_ready(&usage, rc, pg, 10000, errstr, sizeof(errstr)),
                         PO_OK);
        redisFree(rc);
        PQfinish(pg);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("usage");
        TCase *tc = tcase_create("usage");
        char err[256];

        if (po_config_load(&cfg, NULL, 0, err, sizeof(err)) != PO_OK) {
                fprintf(stderr, "check_usage: %s\n", err);
                return 1;
        }
        snprintf(run, sizeof(run), "%ld_%d", (long)time(NULL) % 100000000, (int)getpid());
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, scripts_by_sha_survive_a_script_flush);
        suite_add_tcase(s, tc);
        return it_run_suite(s);
}
