/* Redemption counters and reservations (see po/usage.h). */
#include "po/usage.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "po/log.h"
#include "po/redis.h"
#include "po/pg.h"

#define KEY_READY "promo:usage:ready"
#define KEY_REBUILDING "promo:usage:rebuilding"
#define MAX_ARGS (8 + 3 * 64)

/* Both scripts take any number of orders (ARGV after the marker: per
 * order its id, customer ('' = anonymous), number of codes, then the
 * codes), so that a group of orders costs one call; a single order is a
 * group of one. */

/* Returns {1, total, by customer, ...} per code of each order in turn
 * (order's own reservation not counted), or {-1} when the marker moved. */
static const char read_lua[] =
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {-1} end\n"
    "local out, i = {1}, 2\n"
    "while i <= #ARGV do\n"
    "  local order, cust, n = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])\n"
    "  for j = i + 3, i + 2 + n do\n"
    "    local c = ARGV[j]\n"
    "    local t = tonumber(redis.call('GET', 'promo:usage:total:' .. c) or '0')\n"
    "    local u = 0\n"
    "    if cust ~= '' then\n"
    "      u = tonumber(redis.call('HGET', 'promo:usage:cust:' .. c, cust) or '0')\n"
    "    end\n"
    "    local held = redis.call('GET', 'promo:resv:' .. order .. ':' .. c)\n"
    "    if held then\n"
    "      t = t - 1\n"
    "      if cust ~= '' and held == cust then u = u - 1 end\n"
    "    end\n"
    "    out[#out + 1] = t\n"
    "    out[#out + 1] = u\n"
    "  end\n"
    "  i = i + 3 + n\n"
    "end\n"
    "return out\n";

/* ARGV: marker, ttl, then per order: id, customer, n, and n (code, limit,
 * customer limit) triples with -1 for no limit. Each order all or nothing,
 * in turn. Returns {1, granted (1 or 0) per order}, or {-1}. */
static const char reserve_lua[] =
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {-1} end\n"
    "local ttl, out, i = ARGV[2], {1}, 3\n"
    "while i <= #ARGV do\n"
    "  local order, cust, n = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])\n"
    "  local ok = 1\n"
    "  for k = 0, n - 1 do\n"
    "    local c = ARGV[i + 3 + 3 * k]\n"
    "    local lim = tonumber(ARGV[i + 4 + 3 * k])\n"
    "    local clim = tonumber(ARGV[i + 5 + 3 * k])\n"
    "    if redis.call('EXISTS', 'promo:resv:' .. order .. ':' .. c) == 0 then\n"
    "      local t = tonumber(redis.call('GET', 'promo:usage:total:' .. c) or '0')\n"
    "      if lim >= 0 and t >= lim then ok = 0 break end\n"
    "      if clim >= 0 then\n"
    "        if cust == '' then ok = 0 break end\n"
    "        local u = tonumber(redis.call('HGET', 'promo:usage:cust:' .. c, cust) or "
    "'0')\n"
    "        if u >= clim then ok = 0 break end\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  if ok == 1 then\n"
    "    for k = 0, n - 1 do\n"
    "      local c = ARGV[i + 3 + 3 * k]\n"
    "      if redis.call('SET', 'promo:resv:' .. order .. ':' .. c, cust, 'NX', 'EX', "
    "ttl) then\n"
    "        redis.call('INCR', 'promo:usage:total:' .. c)\n"
    "        if cust ~= '' then redis.call('HINCRBY', 'promo:usage:cust:' .. c, cust, 1) "
    "end\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  out[#out + 1] = ok\n"
    "  i = i + 3 + 3 * n\n"
    "end\n"
    "return out\n";

void po_usage_init(po_usage_t *u)
{
        memset(u, 0, sizeof(*u));
}

static int run_id(redisContext *rc, char *out, size_t size)
{
        redisReply *r = redisCommand(rc, "INFO server");
        const char *p;
        size_t n;

        if (!r || r->type != REDIS_REPLY_STRING) {
                if (r)
                        freeReplyObject(r);
                return -1;
        }
        p = strstr(r->str, "run_id:");
        if (!p) {
                freeReplyObject(r);
                return -1;
        }
        p += 7;
        n = strcspn(p, "\r\n");
        if (n == 0 || n >= size) {
                freeReplyObject(r);
                return -1;
        }
        memcpy(out, p, n);
        out[n] = '\0';
        freeReplyObject(r);
        return 0;
}

static void random_hex(char *out, size_t bytes)
{
        unsigned char b[16];
        size_t i;
        int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

        if (bytes > sizeof(b))
                bytes = sizeof(b);
        if (fd < 0 || read(fd, b, bytes) != (ssize_t)bytes) {
                struct timespec ts;

                clock_gettime(CLOCK_REALTIME, &ts);
                for (i = 0; i < bytes; i++)
                        b[i] =
                            (unsigned char)((ts.tv_nsec >> (i % 4 * 8)) ^ getpid() ^ i);
        }
        if (fd >= 0)
                close(fd);
        for (i = 0; i < bytes; i++)
                sprintf(out + 2 * i, "%02x", b[i]);
}

int po_usage_marker_holds(redisContext *rc, const char *marker)
{
        redisReply *r = redisCommand(rc, "GET " KEY_READY);
        int res = -1;

        if (!r)
                return -1;
        if (r->type == REDIS_REPLY_STRING)
                res = strcmp(r->str, marker) == 0;
        else if (r->type == REDIS_REPLY_NIL)
                res = 0;
        freeReplyObject(r);
        return res;
}

/* Deletes every key matching pattern (SCAN + UNLINK). */
static po_err_t unlink_all(redisContext *rc, const char *pattern, char *errstr,
                           size_t size)
{
        char cursor[32] = "0";
        redisReply *r;
        size_t i;

        do {
                r = redisCommand(rc, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
                if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
                    r->element[0]->type != REDIS_REPLY_STRING)
                        return po_redis_fail(rc, r, errstr, size);
                snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
                for (i = 0; i < r->element[1]->elements; i++)
                        redisAppendCommand(rc, "UNLINK %s",
                                           r->element[1]->element[i]->str);
                for (i = 0; i < r->element[1]->elements; i++) {
                        redisReply *d = NULL;

                        if (redisGetReply(rc, (void **)&d) != REDIS_OK) {
                                freeReplyObject(r);
                                return po_redis_fail(rc, NULL, errstr, size);
                        }
                        freeReplyObject(d);
                }
                freeReplyObject(r);
        } while (strcmp(cursor, "0") != 0);
        return PO_OK;
}

/* A failure inside the rebuild's transaction: say why, and roll it back. */
static po_err_t pg_fail(PGconn *pg, PGresult *res, char *errstr, size_t size)
{
        po_err_t err = po_pg_fail(pg, res, errstr, size);

        PQclear(PQexec(pg, "ROLLBACK"));
        return err;
}

/* Runs the pipelined replies of count commands, failing on the first error. */
static po_err_t drain(redisContext *rc, size_t count, char *errstr, size_t size)
{
        po_err_t err = PO_OK;
        size_t i;

        for (i = 0; i < count; i++) {
                redisReply *r = NULL;

                if (redisGetReply(rc, (void **)&r) != REDIS_OK)
                        return po_redis_fail(rc, NULL, errstr, size);
                if (r->type == REDIS_REPLY_ERROR && !err)
                        err = po_redis_fail(rc, r, errstr, size), r = NULL;
                if (r)
                        freeReplyObject(r);
        }
        return err;
}

po_err_t po_usage_rebuild(po_usage_t *u, redisContext *rc, PGconn *pg, char *errstr,
                          size_t errstr_size)
{
        char token[40], marker[96], rid[48];
        redisReply *r;
        PGresult *res = NULL;
        po_err_t err;
        int i, n;
        size_t pending;

        random_hex(token, 16);
        r = redisCommand(rc, "SET " KEY_REBUILDING " %s NX EX 120", token);
        if (!r || r->type == REDIS_REPLY_ERROR)
                return po_redis_fail(rc, r, errstr, errstr_size);
        if (r->type == REDIS_REPLY_NIL) {
                freeReplyObject(r);
                snprintf(errstr, errstr_size,
                         "another process is rebuilding the counters");
                return PO_ERR_TIMEOUT;
        }
        freeReplyObject(r);
        if (run_id(rc, rid, sizeof(rid)))
                return po_redis_fail(rc, NULL, errstr, errstr_size);
        /* From here on, no batch made under the old marker can commit. */
        r = redisCommand(rc, "SET " KEY_READY " rebuilding");
        if (!r || r->type == REDIS_REPLY_ERROR)
                return po_redis_fail(rc, r, errstr, errstr_size);
        freeReplyObject(r);

        res = PQexec(pg, "BEGIN");
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
                return pg_fail(pg, res, errstr, errstr_size);
        PQclear(res);
        /* SHARE waits for every open batch insert and blocks new ones until
         * the new marker is set and this transaction ends. */
        res = PQexec(pg, "LOCK TABLE redemptions IN SHARE MODE");
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
                return pg_fail(pg, res, errstr, errstr_size);
        PQclear(res);
        if ((err = unlink_all(rc, "promo:usage:total:*", errstr, errstr_size)) ||
            (err = unlink_all(rc, "promo:usage:cust:*", errstr, errstr_size)) ||
            (err = unlink_all(rc, "promo:resv:*", errstr, errstr_size))) {
                PQclear(PQexec(pg, "ROLLBACK"));
                return err;
        }
        res = PQexec(pg, "SELECT order_id, code, coalesce(customer_id, ''),"
                         " extract(epoch FROM reserved_at)::bigint FROM redemptions");
        if (PQresultStatus(res) != PGRES_TUPLES_OK)
                return pg_fail(pg, res, errstr, errstr_size);
        n = PQntuples(res);
        pending = 0;
        for (i = 0; i < n; i++) {
                const char *order = PQgetvalue(res, i, 0), *code = PQgetvalue(res, i, 1),
                           *cust = PQgetvalue(res, i, 2);
                long long age = (long long)time(NULL) - atoll(PQgetvalue(res, i, 3));

                redisAppendCommand(rc, "INCR promo:usage:total:%s", code);
                pending++;
                if (*cust) {
                        redisAppendCommand(rc, "HINCRBY promo:usage:cust:%s %s 1", code,
                                           cust);
                        pending++;
                }
                if (age < PO_USAGE_RESV_TTL_S) {
                        redisAppendCommand(rc, "SET promo:resv:%s:%s %s EX %lld", order,
                                           code, cust,
                                           (long long)PO_USAGE_RESV_TTL_S - age);
                        pending++;
                }
                if (pending >= 1000) {
                        if ((err = drain(rc, pending, errstr, errstr_size))) {
                                PQclear(res);
                                PQclear(PQexec(pg, "ROLLBACK"));
                                return err;
                        }
                        pending = 0;
                }
        }
        PQclear(res);
        if ((err = drain(rc, pending, errstr, errstr_size))) {
                PQclear(PQexec(pg, "ROLLBACK"));
                return err;
        }
        snprintf(marker, sizeof(marker), "%s:", rid);
        random_hex(marker + strlen(marker), 8);
        r = redisCommand(rc, "SET " KEY_READY " %s", marker);
        if (!r || r->type == REDIS_REPLY_ERROR) {
                PQclear(PQexec(pg, "ROLLBACK"));
                return po_redis_fail(rc, r, errstr, errstr_size);
        }
        freeReplyObject(r);
        res = PQexec(pg, "COMMIT");
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
                return pg_fail(pg, res, errstr, errstr_size);
        PQclear(res);
        /* Release the lock only if it is still ours. */
        r = redisCommand(rc, "EVAL %s 1 " KEY_REBUILDING " %s",
                         "if redis.call('GET', KEYS[1]) == ARGV[1] then "
                         "return redis.call('DEL', KEYS[1]) end return 0",
                         token);
        if (r)
                freeReplyObject(r);
        snprintf(u->marker, sizeof(u->marker), "%s", marker);
        snprintf(u->run_id, sizeof(u->run_id), "%s", rid);
        u->rebuilds++;
        po_log_info("usage counters rebuilt from PostgreSQL: %d redemptions (marker %s)",
                    n, marker);
        return PO_OK;
}

/* SCRIPT LOAD: sha = the script's SHA1 as Redis reports it, or "" when it
 * could not be loaded (the calls then send the script itself). */
static void load_script(redisContext *rc, const char *script, char *sha)
{
        redisReply *r = redisCommand(rc, "SCRIPT LOAD %s", script);

        sha[0] = '\0';
        if (r && r->type == REDIS_REPLY_STRING && r->len == 40)
                memcpy(sha, r->str, 41);
        if (r)
                freeReplyObject(r);
}

static void load_scripts(po_usage_t *u, redisContext *rc)
{
        load_script(rc, read_lua, u->read_sha);
        load_script(rc, reserve_lua, u->reserve_sha);
}

po_err_t po_usage_ready(po_usage_t *u, redisContext *rc, PGconn *pg, int wait_ms,
                        char *errstr, size_t errstr_size)
{
        char rid[48];
        int waited = 0;
        po_err_t err;

        for (;;) {
                redisReply *r;

                if (run_id(rc, rid, sizeof(rid)))
                        return po_redis_fail(rc, NULL, errstr, errstr_size);
                r = redisCommand(rc, "GET " KEY_READY);
                if (!r || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_NIL))
                        return po_redis_fail(rc, r, errstr, errstr_size);
                if (r->type == REDIS_REPLY_STRING &&
                    strncmp(r->str, rid, strlen(rid)) == 0 &&
                    r->str[strlen(rid)] == ':' && strlen(r->str) < sizeof(u->marker)) {
                        snprintf(u->marker, sizeof(u->marker), "%s", r->str);
                        snprintf(u->run_id, sizeof(u->run_id), "%s", rid);
                        freeReplyObject(r);
                        load_scripts(u, rc);
                        return PO_OK;
                }
                freeReplyObject(r);
                u->marker[0] = '\0';
                err = po_usage_rebuild(u, rc, pg, errstr, errstr_size);
                if (err == PO_OK)
                        load_scripts(u, rc);
                if (err != PO_ERR_TIMEOUT)
                        return err;
                if (waited >= wait_ms)
                        return PO_ERR_TIMEOUT;
                nanosleep(&(struct timespec){.tv_nsec = 50 * 1000000L}, NULL);
                waited += 50;
        }
}

/* A script call being built: its arguments, and the numbers among them. */
typedef struct call {
        const char **argv;
        char (*num)[24];
        size_t argc, nnum;
} call_t;

/* Starts a call to script (by sha when Redis has it): EVALSHA sha (EVAL
 * script when sha is ""), the ready key, the marker; room for args
 * arguments in all and nums numbers. Returns 0, -1 when out of memory. */
static int call_start(call_t *c, size_t args, size_t nums, const char *script,
                      const char *sha, const po_usage_t *u)
{
        c->argv = malloc(args * sizeof(*c->argv));
        c->num = malloc((nums ? nums : 1) * sizeof(*c->num));
        c->argc = c->nnum = 0;
        if (!c->argv || !c->num) {
                free(c->argv);
                free(c->num);
                return -1;
        }
        c->argv[c->argc++] = sha[0] ? "EVALSHA" : "EVAL";
        c->argv[c->argc++] = sha[0] ? sha : script;
        c->argv[c->argc++] = "1";
        c->argv[c->argc++] = KEY_READY;
        c->argv[c->argc++] = u->marker;
        return 0;
}

static void call_num(call_t *c, long long v)
{
        snprintf(c->num[c->nnum], sizeof(c->num[0]), "%lld", v);
        c->argv[c->argc++] = c->num[c->nnum++];
}

/* Queues the call on rc and frees it. Returns 0, -1. */
static int call_append(call_t *c, redisContext *rc)
{
        int rv =
            redisAppendCommandArgv(rc, (int)c->argc, c->argv, NULL) == REDIS_OK ? 0 : -1;

        free(c->argv);
        free(c->num);
        return rv;
}

/* The requests' order, customer and code count. */
static void call_order(call_t *c, const po_usage_req_t *q)
{
        c->argv[c->argc++] = q->order_id;
        c->argv[c->argc++] = q->customer ? q->customer : "";
        call_num(c, (long long)q->n);
}

/* Queues one call of the read (reserve = 0) or the reserve script for
 * reqs[0..n). Returns 0, -1 (nothing queued). */
static int group_call(const po_usage_t *u, redisContext *rc, const po_usage_req_t *reqs,
                      size_t n, int reserve)
{
        size_t args = 5, nums = 0, i, k;
        call_t c;

        if (n == 0 || n > PO_USAGE_GROUP_MAX)
                return -1;
        for (i = 0; i < n; i++) {
                if (reqs[i].n > (reserve ? 20u : 64u) || !reqs[i].order_id)
                        return -1;
                args += 3 + (reserve ? 3 : 1) * reqs[i].n;
                nums += 1 + (reserve ? 2 * reqs[i].n : 0);
        }
        if (call_start(&c, args + (size_t)reserve, nums + (size_t)reserve,
                       reserve ? reserve_lua : read_lua,
                       reserve ? u->reserve_sha : u->read_sha, u))
                return -1;
        if (reserve)
                call_num(&c, PO_USAGE_RESV_TTL_S);
        for (i = 0; i < n; i++) {
                call_order(&c, &reqs[i]);
                for (k = 0; k < reqs[i].n; k++) {
                        c.argv[c.argc++] = reqs[i].codes[k];
                        if (!reserve)
                                continue;
                        call_num(&c, (long long)reqs[i].limit[k]);
                        call_num(&c, (long long)reqs[i].customer_limit[k]);
                }
        }
        return call_append(&c, rc);
}

int po_usage_read_many_append(const po_usage_t *u, redisContext *rc,
                              const po_usage_req_t *reqs, size_t n)
{
        return group_call(u, rc, reqs, n, 0);
}

/* The common head of both scripts' replies: an array whose first element
 * is 1 (-1: the marker moved), of 1 + want elements, all integers. Takes r
 * on failure. */
static po_err_t script_result(redisContext *rc, redisReply *r, size_t want, char *errstr,
                              size_t errstr_size)
{
        size_t i;

        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
            r->element[0]->type != REDIS_REPLY_INTEGER)
                return po_redis_fail(rc, r, errstr, errstr_size);
        if (r->element[0]->integer != 1) {
                freeReplyObject(r);
                snprintf(errstr, errstr_size, "usage counters are being rebuilt");
                return PO_ERR_TIMEOUT;
        }
        if (r->elements != 1 + want)
                return po_redis_fail(rc, r, errstr, errstr_size);
        for (i = 1; i <= want; i++)
                if (r->element[i]->type != REDIS_REPLY_INTEGER)
                        return po_redis_fail(rc, r, errstr, errstr_size);
        return PO_OK;
}

/* Interprets the read script's reply for reqs; takes r. */
static po_err_t read_result(redisContext *rc, redisReply *r, po_usage_req_t *reqs,
                            size_t n, char *errstr, size_t errstr_size)
{
        size_t want = 0, i, k, e = 1;
        po_err_t err;

        for (i = 0; i < n; i++)
                want += 2 * reqs[i].n;
        err = script_result(rc, r, want, errstr, errstr_size);
        if (err)
                return err;
        for (i = 0; i < n; i++)
                for (k = 0; k < reqs[i].n; k++) {
                        reqs[i].total[k] = r->element[e++]->integer;
                        reqs[i].by_customer[k] = r->element[e++]->integer;
                }
        freeReplyObject(r);
        return PO_OK;
}

typedef po_err_t (*result_fn)(redisContext *, redisReply *, po_usage_req_t *, size_t,
                              char *, size_t);

/* Reads the next reply on rc and interprets it with result. */
static po_err_t next_result(redisContext *rc, result_fn result, po_usage_req_t *reqs,
                            size_t n, char *errstr, size_t errstr_size)
{
        redisReply *r = NULL;

        if (redisGetReply(rc, (void **)&r) != REDIS_OK)
                return po_redis_fail(rc, NULL, errstr, errstr_size);
        return result(rc, r, reqs, n, errstr, errstr_size);
}

po_err_t po_usage_read_many_reply(redisContext *rc, po_usage_req_t *reqs, size_t n,
                                  char *errstr, size_t errstr_size)
{
        return next_result(rc, read_result, reqs, n, errstr, errstr_size);
}

int po_usage_reserve_many_append(const po_usage_t *u, redisContext *rc,
                                 const po_usage_req_t *reqs, size_t n)
{
        return group_call(u, rc, reqs, n, 1);
}

/* Interprets the reserve script's reply for reqs; takes r. */
static po_err_t reserve_result(redisContext *rc, redisReply *r, po_usage_req_t *reqs,
                               size_t n, char *errstr, size_t errstr_size)
{
        po_err_t err = script_result(rc, r, n, errstr, errstr_size);
        size_t i;

        if (err)
                return err;
        for (i = 0; i < n; i++)
                reqs[i].granted = r->element[1 + i]->integer == 1;
        freeReplyObject(r);
        return PO_OK;
}

po_err_t po_usage_reserve_many_reply(redisContext *rc, po_usage_req_t *reqs, size_t n,
                                     char *errstr, size_t errstr_size)
{
        return next_result(rc, reserve_result, reqs, n, errstr, errstr_size);
}

/* Whether r says that Redis does not have the script (it restarted, or
 * SCRIPT FLUSH). */
static int noscript(const redisReply *r)
{
        return r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0;
}

/* One order's call, synchronously: appended by append (the read or the
 * reserve), its reply read; when Redis no longer has the script, it is
 * loaded again (sha) and the call sent once more. NULL on a connection
 * error. */
static redisReply *call_one(po_usage_t *u, redisContext *rc, const po_usage_req_t *q,
                            int (*append)(const po_usage_t *, redisContext *,
                                          const po_usage_req_t *, size_t),
                            const char *script, char *sha)
{
        redisReply *r = NULL;
        int tries;

        for (tries = 0; tries < 2; tries++) {
                if (append(u, rc, q, 1) || redisGetReply(rc, (void **)&r) != REDIS_OK)
                        return NULL;
                if (tries > 0 || !noscript(r))
                        return r;
                freeReplyObject(r);
                load_script(rc, script, sha);
        }
        return NULL;
}

int po_usage_read_append(const po_usage_t *u, redisContext *rc, const char *order_id,
                         const char *customer, const char *const *codes, size_t n)
{
        po_usage_req_t q = {
            .order_id = order_id, .customer = customer, .codes = codes, .n = n};

        return po_usage_read_many_append(u, rc, &q, 1);
}

po_err_t po_usage_read_reply(redisContext *rc, size_t n, int64_t *total,
                             int64_t *by_customer, char *errstr, size_t errstr_size)
{
        po_usage_req_t q = {.n = n, .total = total, .by_customer = by_customer};

        return po_usage_read_many_reply(rc, &q, 1, errstr, errstr_size);
}

po_err_t po_usage_read(po_usage_t *u, redisContext *rc, const char *order_id,
                       const char *customer, const char *const *codes, size_t n,
                       int64_t *total, int64_t *by_customer, char *errstr,
                       size_t errstr_size)
{
        po_usage_req_t q = {.order_id = order_id,
                            .customer = customer,
                            .codes = codes,
                            .n = n,
                            .total = total,
                            .by_customer = by_customer};
        redisReply *r;

        if (n > 64) {
                snprintf(errstr, errstr_size, "too many codes");
                return PO_ERR_INVALID_ARG;
        }
        r = call_one(u, rc, &q, po_usage_read_many_append, read_lua, u->read_sha);
        if (!r)
                return po_redis_fail(rc, NULL, errstr, errstr_size);
        return read_result(rc, r, &q, 1, errstr, errstr_size);
}

int po_usage_reserve_append(const po_usage_t *u, redisContext *rc, const char *order_id,
                            const char *customer, const char *const *codes,
                            const int64_t *limit, const int64_t *customer_limit, size_t n)
{
        po_usage_req_t q = {.order_id = order_id,
                            .customer = customer,
                            .codes = codes,
                            .n = n,
                            .limit = limit,
                            .customer_limit = customer_limit};

        return po_usage_reserve_many_append(u, rc, &q, 1);
}

po_err_t po_usage_reserve_reply(redisContext *rc, int *granted, char *errstr,
                                size_t errstr_size)
{
        po_usage_req_t q = {.n = 0};
        po_err_t err = po_usage_reserve_many_reply(rc, &q, 1, errstr, errstr_size);

        if (!err)
                *granted = q.granted;
        return err;
}

po_err_t po_usage_reserve(po_usage_t *u, redisContext *rc, const char *order_id,
                          const char *customer, const char *const *codes,
                          const int64_t *limit, const int64_t *customer_limit, size_t n,
                          int *granted, char *errstr, size_t errstr_size)
{
        po_usage_req_t q = {.order_id = order_id,
                            .customer = customer,
                            .codes = codes,
                            .n = n,
                            .limit = limit,
                            .customer_limit = customer_limit};
        redisReply *r;
        po_err_t err;

        if (n > 20) {
                snprintf(errstr, errstr_size, "too many codes");
                return PO_ERR_INVALID_ARG;
        }
        r = call_one(u, rc, &q, po_usage_reserve_many_append, reserve_lua,
                     u->reserve_sha);
        if (!r)
                return po_redis_fail(rc, NULL, errstr, errstr_size);
        err = reserve_result(rc, r, &q, 1, errstr, errstr_size);
        if (!err)
                *granted = q.granted;
        return err;
}
