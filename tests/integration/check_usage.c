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

/* Connects to PostgreSQL and Redis and makes the counters ready. */
static void connect_ready(PGconn **pg, redisContext **rc, po_usage_t *usage)
{
        char errstr[256];

        *pg = PQconnectdb(cfg.pg_dsn);
        ck_assert_msg(PQstatus(*pg) == CONNECTION_OK, "%s", PQerrorMessage(*pg));
        *rc = redisConnect(cfg.redis_host, cfg.redis_port);
        ck_assert(*rc && !(*rc)->err);
        po_usage_init(usage);
        ck_assert_msg(po_usage_ready(usage, *rc, *pg, 10000, errstr, sizeof(errstr)) ==
                          PO_OK,
                      "%s", errstr);
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
        connect_ready(&pg, &rc, &usage);
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

/* The validator's group calls (po_usage_*_many) answer exactly as one call
 * per order in the same sequence: the same grants and refusals (total and
 * per-customer limits, anonymous customers, an order sent again granted
 * without counting twice), the same counts read, the same counters. Side
 * A goes in one script call each way, side B one order at a time, on
 * codes of their own. */
START_TEST(a_group_call_answers_as_one_call_per_order)
{
        enum { NORD = 60, NCODE = 3 };
        char code[2][NCODE][64], order[NORD][64], cust[5][64], errstr[256];
        const char *codes[2][NORD][NCODE], *custs[NORD];
        int64_t lim[NORD][NCODE], clim[NORD][NCODE];
        int64_t t[2][NORD][NCODE], u[2][NORD][NCODE];
        static const int64_t code_lim[NCODE] = {5, -1, 3}, code_clim[NCODE] = {-1, 1, 2};
        po_usage_req_t reqs[PO_USAGE_GROUP_MAX + 1];
        size_t n[NORD];
        int granted[2][NORD], grants = 0, side, j, k;
        unsigned lcg = 12345;
        po_usage_t usage, moved;
        redisContext *rc;
        PGconn *pg;

        for (side = 0; side < 2; side++)
                for (k = 0; k < NCODE; k++)
                        snprintf(code[side][k], sizeof(code[0][0]), "UG%c%d-%s",
                                 side ? 'B' : 'A', k, run);
        for (k = 0; k < 5; k++)
                snprintf(cust[k], sizeof(cust[0]), "ug-c%d-%s", k, run);
        for (j = 0; j < NORD; j++) {
                int base = j >= 50 ? j - 50 : j; /* the last ten: sent again */
                unsigned bits;

                lcg = lcg * 1103515245u + 12345u;
                bits = j >= 50 ? 0 : (lcg >> 16) % 7 + 1; /* 1..7: a non-empty subset */
                snprintf(order[j], sizeof(order[0]), "ug-o%d-%s", base, run);
                custs[j] = base % 6 == 5 ? NULL : cust[base % 6];
                if (j >= 50) {
                        n[j] = n[base];
                        for (side = 0; side < 2; side++)
                                memcpy(codes[side][j], codes[side][base],
                                       sizeof(codes[0][0]));
                        memcpy(lim[j], lim[base], sizeof(lim[0]));
                        memcpy(clim[j], clim[base], sizeof(clim[0]));
                        continue;
                }
                n[j] = 0;
                for (k = 0; k < NCODE; k++)
                        if (bits & (1u << k)) {
                                codes[0][j][n[j]] = code[0][k];
                                codes[1][j][n[j]] = code[1][k];
                                lim[j][n[j]] = code_lim[k];
                                clim[j][n[j]] = code_clim[k];
                                n[j]++;
                        }
        }
        connect_ready(&pg, &rc, &usage);

        /* Reservations: A in one call, B one by one. */
        for (j = 0; j < NORD; j++) {
                memset(&reqs[j], 0, sizeof(reqs[j]));
                reqs[j].order_id = order[j];
                reqs[j].customer = custs[j];
                reqs[j].codes = codes[0][j];
                reqs[j].n = n[j];
                reqs[j].limit = lim[j];
                reqs[j].customer_limit = clim[j];
        }
        ck_assert_int_eq(po_usage_reserve_many_append(&usage, rc, reqs, NORD), 0);
        ck_assert_msg(
            po_usage_reserve_many_reply(rc, reqs, NORD, errstr, sizeof(errstr)) == PO_OK,
            "%s", errstr);
        for (j = 0; j < NORD; j++) {
                granted[0][j] = reqs[j].granted;
                ck_assert_msg(po_usage_reserve(&usage, rc, order[j], custs[j],
                                               codes[1][j], lim[j], clim[j], n[j],
                                               &granted[1][j], errstr,
                                               sizeof(errstr)) == PO_OK,
                              "%s", errstr);
                ck_assert_msg(granted[0][j] == granted[1][j],
                              "order %d: %d in the group, %d alone", j, granted[0][j],
                              granted[1][j]);
                grants += granted[0][j];
                if (j >= 50)
                        ck_assert_int_eq(granted[0][j], granted[0][j - 50]);
        }
        ck_assert_msg(grants > 10 && grants < 50, "%d grants: not a test of the limits",
                      grants);
        for (k = 0; k < NCODE; k++)
                ck_assert_int_eq(total(rc, code[0][k]), total(rc, code[1][k]));
        ck_assert_int_eq(total(rc, code[0][0]), 5); /* limit reached, not passed */

        /* Reads: the same counts, each order's own reservation left out. */
        for (j = 0; j < NORD; j++) {
                reqs[j].codes = codes[0][j];
                reqs[j].total = t[0][j];
                reqs[j].by_customer = u[0][j];
        }
        ck_assert_int_eq(po_usage_read_many_append(&usage, rc, reqs, NORD), 0);
        ck_assert_msg(po_usage_read_many_reply(rc, reqs, NORD, errstr, sizeof(errstr)) ==
                          PO_OK,
                      "%s", errstr);
        for (j = 0; j < NORD; j++) {
                ck_assert_msg(po_usage_read(&usage, rc, order[j], custs[j], codes[1][j],
                                            n[j], t[1][j], u[1][j], errstr,
                                            sizeof(errstr)) == PO_OK,
                              "%s", errstr);
                for (k = 0; k < (int)n[j]; k++) {
                        ck_assert_int_eq(t[0][j][k], t[1][j][k]);
                        ck_assert_int_eq(u[0][j][k], u[1][j][k]);
                }
        }

        /* A marker that moved: the whole call says so, nothing reserved. */
        moved = usage;
        snprintf(moved.marker, sizeof(moved.marker), "moved");
        ck_assert_int_eq(po_usage_reserve_many_append(&moved, rc, reqs, 2), 0);
        ck_assert_int_eq(po_usage_reserve_many_reply(rc, reqs, 2, errstr, sizeof(errstr)),
                         PO_ERR_TIMEOUT);
        /* Bounds: no empty call, none of more than PO_USAGE_GROUP_MAX. */
        ck_assert_int_eq(po_usage_read_many_append(&usage, rc, reqs, 0), -1);
        for (j = NORD; j <= PO_USAGE_GROUP_MAX; j++)
                reqs[j] = reqs[0];
        ck_assert_int_eq(
            po_usage_read_many_append(&usage, rc, reqs, PO_USAGE_GROUP_MAX + 1), -1);
        ck_assert_int_eq(total(rc, code[0][0]), 5);

        for (side = 0; side < 2; side++)
                for (k = 0; k < NCODE; k++) {
                        freeReplyObject(redisCommand(rc,
                                                     "DEL promo:usage:total:%s "
                                                     "promo:usage:cust:%s",
                                                     code[side][k], code[side][k]));
                        for (j = 0; j < 50; j++)
                                freeReplyObject(redisCommand(rc, "DEL promo:resv:%s:%s",
                                                             order[j], code[side][k]));
                }
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
        tcase_add_test(tc, a_group_call_answers_as_one_call_per_order);
        suite_add_tcase(s, tc);
        return it_run_suite(s);
}
