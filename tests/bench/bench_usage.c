/* The usage scripts' cost in Redis per order, one call per order against
 * one call per group (docs/BENCHMARKS.md, "Pipeline: long polls and fewer
 * round trips"). Needs the stack's Redis and PostgreSQL (the counters'
 * marker); works on codes of its own, removed at the end.
 *
 *   bench-usage [--orders-per-group 64] [--groups 300]
 *
 * For each way, the same orders (one code each, eight codes, 500
 * customers) are read and then reserved, a group per pipeline; printed per
 * order: Redis's own time in the scripts (INFO commandstats, evalsha usec)
 * and the wall time of the round trips. */
#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "po/config.h"
#include "po/usage.h"

static void die(const char *what)
{
        fprintf(stderr, "bench-usage: %s\n", what);
        exit(1);
}

static double now_s(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Redis's cumulative microseconds in EVALSHA. */
static long long evalsha_usec(redisContext *rc)
{
        redisReply *r = redisCommand(rc, "INFO commandstats");
        const char *p;
        long long us = 0;

        if (!r || r->type != REDIS_REPLY_STRING)
                die("INFO commandstats failed");
        p = strstr(r->str, "cmdstat_evalsha:");
        if (p && (p = strstr(p, "usec=")))
                us = atoll(p + 5);
        freeReplyObject(r);
        return us;
}

int main(int argc, char **argv)
{
        enum { NCODES = 8, NCUST = 500 };
        size_t per = 64, groups = 300, g, i;
        char code[NCODES][48], cust[NCUST][48], errstr[256], tag[32];
        char(*order)[48];
        const char **codes;
        int64_t lim = -1, clim = -1, *t, *u;
        po_usage_req_t *q;
        po_usage_t usage;
        po_config_t cfg;
        redisContext *rc;
        PGconn *pg;
        int way, a;

        for (a = 1; a + 1 < argc; a += 2) {
                if (strcmp(argv[a], "--orders-per-group") == 0)
                        per = (size_t)atol(argv[a + 1]);
                else if (strcmp(argv[a], "--groups") == 0)
                        groups = (size_t)atol(argv[a + 1]);
                else
                        die("usage: bench-usage [--orders-per-group N] [--groups N]");
        }
        if (per < 1 || per > PO_USAGE_GROUP_MAX || groups < 1 || groups > 100000)
                die("--orders-per-group 1..64, --groups 1..100000");
        if (po_config_load(&cfg, NULL, 0, errstr, sizeof(errstr)) != PO_OK)
                die(errstr);
        pg = PQconnectdb(cfg.pg_dsn);
        rc = redisConnect(cfg.redis_host, cfg.redis_port);
        if (PQstatus(pg) != CONNECTION_OK || !rc || rc->err)
                die("cannot reach PostgreSQL or Redis (scripts/stack up)");
        po_usage_init(&usage);
        if (po_usage_ready(&usage, rc, pg, 10000, errstr, sizeof(errstr)) != PO_OK)
                die(errstr);
        snprintf(tag, sizeof(tag), "%d", (int)getpid());
        for (i = 0; i < NCODES; i++)
                snprintf(code[i], sizeof(code[i]), "BU%zu-%s", i, tag);
        for (i = 0; i < NCUST; i++)
                snprintf(cust[i], sizeof(cust[i]), "bu-c%zu", i);
        order = calloc(per, sizeof(*order));
        codes = calloc(per, sizeof(*codes));
        q = calloc(per, sizeof(*q));
        t = calloc(per, sizeof(*t));
        u = calloc(per, sizeof(*u));
        if (!order || !codes || !q || !t || !u)
                die("out of memory");
        printf(
            "bench-usage: %zu groups of %zu orders, one code each, read then reserve\n",
            groups, per);
        for (way = 0; way < 2; way++) {
                long long us0 = evalsha_usec(rc);
                double t0 = now_s();
                int phase;

                for (g = 0; g < groups; g++) {
                        for (i = 0; i < per; i++) {
                                size_t n = g * per + i;

                                snprintf(order[i], sizeof(order[i]), "bu-%s-%d-%zu", tag,
                                         way, n);
                                codes[i] = code[n % NCODES];
                                memset(&q[i], 0, sizeof(q[i]));
                                q[i].order_id = order[i];
                                q[i].customer = cust[n % NCUST];
                                q[i].codes = &codes[i];
                                q[i].n = 1;
                                q[i].limit = &lim;
                                q[i].customer_limit = &clim;
                                q[i].total = &t[i];
                                q[i].by_customer = &u[i];
                        }
                        for (phase = 0; phase < 2; phase++) {
                                int (*append)(const po_usage_t *, redisContext *,
                                              const po_usage_req_t *, size_t) =
                                    phase ? po_usage_reserve_many_append
                                          : po_usage_read_many_append;
                                po_err_t (*reply)(redisContext *, po_usage_req_t *,
                                                  size_t, char *, size_t) =
                                    phase ? po_usage_reserve_many_reply
                                          : po_usage_read_many_reply;
                                size_t calls = way ? 1 : per, each = way ? per : 1;

                                for (i = 0; i < calls; i++)
                                        if (append(&usage, rc, &q[i * each], each))
                                                die("append failed");
                                for (i = 0; i < calls; i++)
                                        if (reply(rc, &q[i * each], each, errstr,
                                                  sizeof(errstr)) != PO_OK)
                                                die(errstr);
                        }
                }
                printf("%-18s redis_us_per_order=%.2f wall_us_per_order=%.2f\n",
                       way ? "one call per group" : "one call per order",
                       (double)(evalsha_usec(rc) - us0) / (double)(groups * per),
                       (now_s() - t0) * 1e6 / (double)(groups * per));
        }
        /* Remove what the run reserved. */
        for (i = 0; i < NCODES; i++)
                freeReplyObject(
                    redisCommand(rc, "DEL promo:usage:total:%s promo:usage:cust:%s",
                                 code[i], code[i]));
        for (way = 0; way < 2; way++)
                for (g = 0; g < groups * per; g++) {
                        char key[160];

                        /* (hiredis's format knows no %zu) */
                        snprintf(key, sizeof(key), "promo:resv:bu-%s-%d-%zu:%s", tag, way,
                                 g, code[g % NCODES]);
                        if (redisAppendCommand(rc, "DEL %s", key) != REDIS_OK)
                                die("cleanup failed");
                }
        for (way = 0; way < 2; way++)
                for (g = 0; g < groups * per; g++) {
                        redisReply *r = NULL;

                        if (redisGetReply(rc, (void **)&r) != REDIS_OK)
                                die(rc->errstr[0] ? rc->errstr : "cleanup failed");
                        freeReplyObject(r);
                }
        free(order);
        free(codes);
        free(q);
        free(t);
        free(u);
        redisFree(rc);
        PQfinish(pg);
        return 0;
}
