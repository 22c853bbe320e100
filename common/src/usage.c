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

static const char read_lua[] =
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {-1} end\n"
    "local order, cust, out = ARGV[2], ARGV[3], {1}\n"
    "for i = 4, #ARGV do\n"
    "  local c = ARGV[i]\n"
    "  local t = tonumber(redis.call('GET', 'promo:usage:total:' .. c) or '0')\n"
    "  local u = 0\n"
    "  if cust ~= '' then\n"
    "    u = tonumber(redis.call('HGET', 'promo:usage:cust:' .. c, cust) or '0')\n"
    "  end\n"
    "  local held = redis.call('GET', 'promo:resv:' .. order .. ':' .. c)\n"
    "  if held then\n"
    "    t = t - 1\n"
    "    if cust ~= '' and held == cust then u = u - 1 end\n"
    "  end\n"
    "  out[#out + 1] = t\n"
    "  out[#out + 1] = u\n"
    "end\n"
    "return out\n";

/* ARGV: marker, order, customer ('' = anonymous), ttl, then (code, limit,
 * customer limit) triples with -1 for no limit. */
static const char reserve_lua[] =
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end\n"
    "local order, cust, ttl = ARGV[2], ARGV[3], ARGV[4]\n"
    "local n = (#ARGV - 4) / 3\n"
    "for i = 0, n - 1 do\n"
    "  local c = ARGV[5 + 3 * i]\n"
    "  local lim, clim = tonumber(ARGV[6 + 3 * i]), tonumber(ARGV[7 + 3 * i])\n"
    "  if redis.call('EXISTS', 'promo:resv:' .. order .. ':' .. c) == 0 then\n"
    "    local t = tonumber(redis.call('GET', 'promo:usage:total:' .. c) or '0')\n"
    "    if lim >= 0 and t >= lim then return 0 end\n"
    "    if clim >= 0 then\n"
    "      if cust == '' then return 0 end\n"
    "      local u = tonumber(redis.call('HGET', 'promo:usage:cust:' .. c, cust) or "
    "'0')\n"
    "      if u >= clim then return 0 end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "for i = 0, n - 1 do\n"
    "  local c = ARGV[5 + 3 * i]\n"
    "  if redis.call('SET', 'promo:resv:' .. order .. ':' .. c, cust, 'NX', 'EX', ttl) "
    "then\n"
    "    redis.call('INCR', 'promo:usage:total:' .. c)\n"
    "    if cust ~= '' then redis.call('HINCRBY', 'promo:usage:cust:' .. c, cust, 1) "
    "end\n"
    "  end\n"
    "end\n"
    "return 1\n";

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

/* The first arguments of every usage script call: EVALSHA sha (EVAL script
 * when sha is ""), the ready key, marker, order, customer ('' = anonymous).
 * Returns how many. */
static size_t eval_head(const char **argv, const char *script, const char *sha,
                        const po_usage_t *u, const char *order_id, const char *customer)
{
        argv[0] = sha[0] ? "EVALSHA" : "EVAL";
        argv[1] = sha[0] ? sha : script;
        argv[2] = "1";
        argv[3] = KEY_READY;
        argv[4] = u->marker;
        argv[5] = order_id;
        argv[6] = customer ? customer : "";
        return 7;
}

int po_usage_read_append(const po_usage_t *u, redisContext *rc, const char *order_id,
                         const char *customer, const char *const *codes, size_t n)
{
        const char *argv[MAX_ARGS];
        size_t k, i;

        if (n > 64)
                return -1;
        k = eval_head(argv, read_lua, u->read_sha, u, order_id, customer);
        for (i = 0; i < n; i++)
                argv[k++] = codes[i];
        return redisAppendCommandArgv(rc, (int)k, argv, NULL) == REDIS_OK ? 0 : -1;
}

/* Interprets the reply of read_lua for n codes; takes r. */
static po_err_t read_reply(redisContext *rc, redisReply *r, size_t n, int64_t *total,
                           int64_t *by_customer, char *errstr, size_t errstr_size)
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
        if (r->elements != 1 + 2 * n)
                return po_redis_fail(rc, r, errstr, errstr_size);
        for (i = 0; i < n; i++) {
                total[i] = r->element[1 + 2 * i]->integer;
                by_customer[i] = r->element[2 + 2 * i]->integer;
        }
        freeReplyObject(r);
        return PO_OK;
}

/* Whether r says that Redis does not have the script (it restarted, or
 * SCRIPT FLUSH). */
static int noscript(const redisReply *r)
{
        return r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0;
}

/* The reply to a script call just queued on rc, NULL on a connection
 * error. When Redis no longer has the script and may_retry, *retry = 1: the
 * script is loaded again (sha) and the caller sends the call once more. */
static redisReply *script_reply(redisContext *rc, const char *script, char *sha,
                                int may_retry, int *retry)
{
        redisReply *r = NULL;

        *retry = 0;
        if (redisGetReply(rc, (void **)&r) != REDIS_OK)
                return NULL;
        if (!may_retry || !noscript(r))
                return r;
        freeReplyObject(r);
        load_script(rc, script, sha);
        *retry = 1;
        return NULL;
}

po_err_t po_usage_read_reply(redisContext *rc, size_t n, int64_t *total,
                             int64_t *by_customer, char *errstr, size_t errstr_size)
{
        redisReply *r = NULL;

        if (redisGetReply(rc, (void **)&r) != REDIS_OK)
                return po_redis_fail(rc, NULL, errstr, errstr_size);
        return read_reply(rc, r, n, total, by_customer, errstr, errstr_size);
}

po_err_t po_usage_read(po_usage_t *u, redisContext *rc, const char *order_id,
                       const char *customer, const char *const *codes, size_t n,
                       int64_t *total, int64_t *by_customer, char *errstr,
                       size_t errstr_size)
{
        redisReply *r = NULL;
        int tries, retry = 0;

        if (n > 64) {
                snprintf(errstr, errstr_size, "too many codes");
                return PO_ERR_INVALID_ARG;
        }
        for (tries = 0; tries == 0 || retry; tries++) {
                if (po_usage_read_append(u, rc, order_id, customer, codes, n))
                        return po_redis_fail(rc, NULL, errstr, errstr_size);
                r = script_reply(rc, read_lua, u->read_sha, tries == 0, &retry);
        }
        if (!r)
                return po_redis_fail(rc, NULL, errstr, errstr_size);
        return read_reply(rc, r, n, total, by_customer, errstr, errstr_size);
}

int po_usage_reserve_append(const po_usage_t *u, redisContext *rc, const char *order_id,
                            const char *customer, const char *const *codes,
                            const int64_t *limit, const int64_t *customer_limit, size_t n)
{
        char nums[2 * 20][24], ttl[24];
        const char *argv[8 + 3 * 20];
        size_t k, i;

        if (n > 20)
                return -1;
        snprintf(ttl, sizeof(ttl), "%d", PO_USAGE_RESV_TTL_S);
        k = eval_head(argv, reserve_lua, u->reserve_sha, u, order_id, customer);
        argv[k++] = ttl;
        for (i = 0; i < n; i++) {
                snprintf(nums[2 * i], sizeof(nums[0]), "%lld", (long long)limit[i]);
                snprintf(nums[2 * i + 1], sizeof(nums[0]), "%lld",
                         (long long)customer_limit[i]);
                argv[k++] = codes[i];
                argv[k++] = nums[2 * i];
                argv[k++] = nums[2 * i + 1];
        }
        return redisAppendCommandArgv(rc, (int)k, argv, NULL) == REDIS_OK ? 0 : -1;
}

/* Interprets the reply of reserve_lua; takes r. */
static po_err_t reserve_result(redisContext *rc, redisReply *r, int *granted,
                               char *errstr, size_t errstr_size)
{
        if (!r || r->type != REDIS_REPLY_INTEGER)
                return po_redis_fail(rc, r, errstr, errstr_size);
        if (r->integer < 0) {
                freeReplyObject(r);
                snprintf(errstr, errstr_size, "usage counters are being rebuilt");
                return PO_ERR_TIMEOUT;
        }
        *granted = r->integer == 1;
        freeReplyObject(r);
        return PO_OK;
}

po_err_t po_usage_reserve_reply(redisContext *rc, int *granted, char *errstr,
                                size_t errstr_size)
{
        redisReply *r = NULL;

        if (redisGetReply(rc, (void **)&r) != REDIS_OK)
                return po_redis_fail(rc, NULL, errstr, errstr_size);
        return reserve_result(rc, r, granted, errstr, errstr_size);
}

po_err_t po_usage_reserve(po_usage_t *u, redisContext *rc, const char *order_id,
                          const char *customer, const char *const *codes,
                          const int64_t *limit, const int64_t *customer_limit, size_t n,
                          int *granted, char *errstr, size_t errstr_size)
{
        redisReply *r = NULL;
        int tries, retry = 0;

        if (n > 20) {
                snprintf(errstr, errstr_size, "too many codes");
                return PO_ERR_INVALID_ARG;
        }
        for (tries = 0; tries == 0 || retry; tries++) {
                if (po_usage_reserve_append(u, rc, order_id, customer, codes, limit,
                                            customer_limit, n))
                        return po_redis_fail(rc, NULL, errstr, errstr_size);
                r = script_reply(rc, reserve_lua, u->reserve_sha, tries == 0, &retry);
        }
        if (!r)
                return po_redis_fail(rc, NULL, errstr, errstr_size);
        return reserve_result(rc, r, granted, errstr, errstr_size);
}
