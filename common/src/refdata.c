/* Reference data in Redis with PostgreSQL behind it (see po/refdata.h). */
#include "po/refdata.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "po/dynbuf.h"
#include "po/log.h"
#include "po/pg.h"
#include "po/redis.h"

#define CODE_MISS_TTL_S 30
#define OTHER_MISS_TTL_S 60

static const char put_lua[] =
    "local v = redis.call('HGET', KEYS[1], 'v')\n"
    "if v and tonumber(v) > tonumber(ARGV[1]) then return 0 end\n"
    "redis.call('HSET', KEYS[1], 'v', ARGV[1], 'd', ARGV[2])\n"
    "if tonumber(ARGV[3]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[3])\n"
    "else redis.call('PERSIST', KEYS[1]) end\n"
    "return 1\n";

static const char del_lua[] =
    "local v = redis.call('HGET', KEYS[1], 'v')\n"
    "if v and tonumber(v) > tonumber(ARGV[1]) then return 0 end\n"
    "return redis.call('DEL', KEYS[1])\n";

/* The scripts go by their SHA1 (EVALSHA): the digests of the texts above,
 * which check_refdata checks against Redis's. A Redis without them (a fresh
 * one, or after a restart or a SCRIPT FLUSH) answers NOSCRIPT: a call then
 * loads the script and is made again. Pipelined cache fills are preceded
 * by a SCRIPT LOAD in the same pipeline, which Redis runs first. */
#define PUT_SHA "dae9ab4f645b4a6df74fa093ab560533a6873e4a"
#define DEL_SHA "3885817a17f6d6c0ceaaf3ca0a3ce6bbb9da1aa7"

static int is_noscript(const redisReply *r)
{
        return r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0;
}

static void load_script(redisContext *rc, const char *script)
{
        redisReply *r = redisCommand(rc, "SCRIPT LOAD %s", script);

        if (r)
                freeReplyObject(r);
}

static void append_put(redisContext *rc, const char *key, int64_t version,
                       const char *data, size_t len, int ttl_s)
{
        char v[24], t[16];
        const char *argv[7] = {"EVALSHA", PUT_SHA, "1", key, v, data, t};
        size_t lens[7];
        int i;

        snprintf(v, sizeof(v), "%lld", (long long)version);
        snprintf(t, sizeof(t), "%d", ttl_s);
        for (i = 0; i < 7; i++)
                lens[i] = strlen(argv[i]);
        lens[5] = len;
        redisAppendCommandArgv(rc, 7, argv, lens);
}

void po_refdata_append_put(redisContext *rc, size_t *pending, const char *key,
                           int64_t version, const char *data, size_t len, int ttl_s)
{
        if (*pending == 0) {
                redisAppendCommand(rc, "SCRIPT LOAD %s", put_lua);
                (*pending)++;
        }
        append_put(rc, key, version, data, len, ttl_s);
        (*pending)++;
}

po_err_t po_refdata_put(redisContext *rc, const char *key, int64_t version,
                        const char *data, size_t len, int ttl_s, char *errstr,
                        size_t errstr_size)
{
        redisReply *r = NULL;
        int pass;

        for (pass = 0; pass < 2; pass++) {
                append_put(rc, key, version, data, len, ttl_s);
                if (redisGetReply(rc, (void **)&r) != REDIS_OK || !r)
                        return po_redis_fail(rc, r, errstr, errstr_size);
                if (pass == 0 && is_noscript(r)) {
                        freeReplyObject(r);
                        load_script(rc, put_lua);
                        continue;
                }
                break;
        }
        if (r->type != REDIS_REPLY_INTEGER)
                return po_redis_fail(rc, r, errstr, errstr_size);
        freeReplyObject(r);
        return PO_OK;
}

void po_refdata_drain_puts(redisContext *rc, size_t n)
{
        while (n) {
                redisReply *r = NULL;

                if (redisGetReply(rc, (void **)&r) != REDIS_OK)
                        return; /* the connection is broken: the caller reconnects */
                freeReplyObject(r);
                n--;
        }
}

po_err_t po_refdata_put_many(redisContext *rc, const char *const *keys,
                             const int64_t *versions, const char *const *data,
                             const size_t *lens, size_t n, char *errstr,
                             size_t errstr_size)
{
        po_err_t err = PO_OK;
        size_t i;
        int pass, noscript = 0;

        for (pass = 0; pass < 2; pass++) {
                for (i = 0; i < n; i++)
                        append_put(rc, keys[i], versions[i], data[i], lens[i], 0);
                for (i = 0; i < n; i++) {
                        redisReply *r = NULL;

                        if (redisGetReply(rc, (void **)&r) != REDIS_OK)
                                return po_redis_fail(rc, NULL, errstr, errstr_size);
                        if (pass == 0 && is_noscript(r)) {
                                /* Every put is made again once the script is
                                 * loaded (a put is idempotent). */
                                noscript = 1;
                                freeReplyObject(r);
                                continue;
                        }
                        if (!r || r->type != REDIS_REPLY_INTEGER) {
                                if (!err)
                                        err = po_redis_fail(rc, r, errstr, errstr_size);
                                else if (r)
                                        freeReplyObject(r);
                                continue;
                        }
                        freeReplyObject(r);
                }
                if (!noscript || err)
                        break;
                load_script(rc, put_lua);
                noscript = 0;
        }
        return err;
}

po_err_t po_refdata_del(redisContext *rc, const char *key, int64_t version, char *errstr,
                        size_t errstr_size)
{
        redisReply *r =
            redisCommand(rc, "EVALSHA " DEL_SHA " 1 %s %lld", key, (long long)version);

        if (is_noscript(r)) {
                freeReplyObject(r);
                load_script(rc, del_lua);
                r = redisCommand(rc, "EVALSHA " DEL_SHA " 1 %s %lld", key,
                                 (long long)version);
        }
        if (!r || r->type != REDIS_REPLY_INTEGER)
                return po_redis_fail(rc, r, errstr, errstr_size);
        freeReplyObject(r);
        return PO_OK;
}

/* A PostgreSQL text[] literal of items. */
static int array_literal(po_dynbuf_t *b, const char *const *items, size_t n)
{
        size_t i;

        po_dynbuf_reset(b);
        po_dynbuf_add(b, "{", 1);
        for (i = 0; i < n; i++)
                po_pg_array_add(b, items[i]);
        return po_dynbuf_add(b, "}", 1) ? -1 : 0;
}

static po_err_t parse_def(const char *json, size_t len, po_arena_t *arena,
                          po_codedef_t *d, const char *code, char *errstr, size_t size)
{
        char why[256];

        if (po_codedef_from_json(json, len, arena, d, why, sizeof(why))) {
                snprintf(errstr, size, "definition of %s: %s", code, why);
                return PO_ERR_BAD_INPUT;
        }
        if (strcmp(d->def.code, code) != 0) {
                snprintf(errstr, size, "definition stored under %s is for %s", code,
                         d->def.code);
                return PO_ERR_BAD_INPUT;
        }
        return PO_OK;
}

po_err_t po_refdata_fetch(redisContext *rc, PGconn *pg, po_arena_t *arena,
                          const char *const *codes, size_t ncodes, po_codedef_t *defs,
                          int *has_def, const char *customer_id, const char **tier,
                          int *crm_known, const char *const *skus, size_t nskus,
                          int64_t *stock, int *has_stock, po_refdata_stats_t *stats,
                          char *errstr, size_t errstr_size)
{
        size_t i, nreq = ncodes + nskus + (customer_id ? 1 : 0);
        /* Per request: 0 = resolved, 1 = miss. */
        unsigned char *miss = calloc(nreq ? nreq : 1, 1);
        const char **missing = calloc(nreq ? nreq : 1, sizeof(*missing));
        po_dynbuf_t arr;
        po_err_t err = PO_OK;
        size_t nmiss, pending = 0;
        PGresult *res = NULL;
        int row;

        po_dynbuf_init(&arr, 1u << 20);
        *tier = NULL;
        *crm_known = 0;
        if (!miss || !missing) {
                err = PO_ERR_NOMEM;
                snprintf(errstr, errstr_size, "out of memory");
                goto out;
        }
        for (i = 0; i < ncodes; i++)
                redisAppendCommand(rc, "HGET promo:code:%s d", codes[i]);
        if (customer_id)
                redisAppendCommand(rc, "HGET promo:customer:%s d", customer_id);
        for (i = 0; i < nskus; i++)
                redisAppendCommand(rc, "HGET promo:stock:%s d", skus[i]);
        for (i = 0; i < nreq; i++) {
                redisReply *r = NULL;

                if (redisGetReply(rc, (void **)&r) != REDIS_OK) {
                        err = po_redis_fail(rc, NULL, errstr, errstr_size);
                        goto out; /* the connection is broken: the caller reconnects */
                }
                if (r->type == REDIS_REPLY_NIL) {
                        miss[i] = 1;
                } else if (r->type != REDIS_REPLY_STRING) {
                        if (!err)
                                err = po_redis_fail(rc, r, errstr, errstr_size), r = NULL;
                } else if (i < ncodes) {
                        has_def[i] = r->len > 0;
                        if (r->len > 0 && parse_def(r->str, r->len, arena, &defs[i],
                                                    codes[i], errstr, errstr_size)) {
                                /* A bad cache entry: read the source of truth. */
                                po_log_warn("cache: %s; reading PostgreSQL", errstr);
                                has_def[i] = 0;
                                miss[i] = 1;
                        }
                        stats->redis_hits++;
                } else if (customer_id && i == ncodes) {
                        *crm_known = 1;
                        if (r->len > 0)
                                *tier = po_arena_strndup(arena, r->str, r->len);
                        stats->redis_hits++;
                } else {
                        size_t k = i - ncodes - (customer_id ? 1 : 0);
                        char *end;

                        has_stock[k] = 0;
                        if (r->len > 0) {
                                long long v = strtoll(r->str, &end, 10);

                                if (*end || v < 0)
                                        miss[i] = 1; /* garbage in the cache */
                                else
                                        has_stock[k] = 1, stock[k] = v;
                        }
                        stats->redis_hits++;
                }
                if (r)
                        freeReplyObject(r);
        }
        if (err)
                goto out;

        /* Codes missing from Redis: PostgreSQL, then fill the cache. */
        for (nmiss = 0, i = 0; i < ncodes; i++)
                if (miss[i])
                        missing[nmiss++] = codes[i], has_def[i] = 0;
        if (nmiss && pg) {
                const char *param;

                if (array_literal(&arr, missing, nmiss)) {
                        err = PO_ERR_NOMEM;
                        goto out;
                }
                param = arr.data;
                res = PQexecParams(pg,
                                   "SELECT code, definition::text, version FROM codes "
                                   "WHERE code = ANY($1::text[])",
                                   1, NULL, &param, NULL, NULL, 0);
                if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                        err = po_pg_fail(pg, res, errstr, errstr_size);
                        res = NULL;
                        goto out;
                }
                stats->pg_reads++;
                for (i = 0; i < ncodes; i++) {
                        if (!miss[i])
                                continue;
                        for (row = 0; row < PQntuples(res); row++)
                                if (strcmp(PQgetvalue(res, row, 0), codes[i]) == 0)
                                        break;
                        if (row == PQntuples(res))
                                continue; /* no such code */
                        err = parse_def(PQgetvalue(res, row, 1),
                                        (size_t)PQgetlength(res, row, 1), arena, &defs[i],
                                        codes[i], errstr, errstr_size);
                        if (err)
                                goto out;
                        has_def[i] = 1;
                }
                for (i = 0; i < ncodes; i++) {
                        char key[128];

                        if (!miss[i])
                                continue;
                        snprintf(key, sizeof(key), "promo:code:%s", codes[i]);
                        if (!has_def[i]) {
                                po_refdata_append_put(rc, &pending, key, 0, "", 0,
                                                      CODE_MISS_TTL_S);
                        } else {
                                for (row = 0; row < PQntuples(res); row++)
                                        if (strcmp(PQgetvalue(res, row, 0), codes[i]) ==
                                            0)
                                                break;
                                po_refdata_append_put(
                                    rc, &pending, key, atoll(PQgetvalue(res, row, 2)),
                                    PQgetvalue(res, row, 1),
                                    (size_t)PQgetlength(res, row, 1), 0);
                        }
                }
                PQclear(res);
                res = NULL;
        }
        if (customer_id && miss[ncodes] && pg) {
                char key[320];
                const char *param = customer_id;

                res = PQexecParams(
                    pg,
                    "SELECT coalesce(tier, ''), (extract(epoch FROM updated_at)"
                    " * 1000000)::bigint FROM customers WHERE customer_id = $1",
                    1, NULL, &param, NULL, NULL, 0);
                if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                        err = po_pg_fail(pg, res, errstr, errstr_size);
                        res = NULL;
                        goto out;
                }
                stats->pg_reads++;
                snprintf(key, sizeof(key), "promo:customer:%s", customer_id);
                if (PQntuples(res) == 1) {
                        *crm_known = 1;
                        if (PQgetlength(res, 0, 0) > 0)
                                *tier = po_arena_strndup(arena, PQgetvalue(res, 0, 0),
                                                         (size_t)PQgetlength(res, 0, 0));
                        po_refdata_append_put(
                            rc, &pending, key, atoll(PQgetvalue(res, 0, 1)),
                            PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0), 0);
                } else {
                        po_refdata_append_put(rc, &pending, key, 0, "", 0,
                                              OTHER_MISS_TTL_S);
                }
                PQclear(res);
                res = NULL;
        }
        for (nmiss = 0, i = 0; i < nskus; i++)
                if (miss[ncodes + (customer_id ? 1 : 0) + i])
                        missing[nmiss++] = skus[i];
        if (nmiss && pg) {
                const char *param;

                if (array_literal(&arr, missing, nmiss)) {
                        err = PO_ERR_NOMEM;
                        goto out;
                }
                param = arr.data;
                res = PQexecParams(pg,
                                   "SELECT sku, stock, (extract(epoch FROM updated_at)"
                                   " * 1000000)::bigint FROM inventory"
                                   " WHERE sku = ANY($1::text[])",
                                   1, NULL, &param, NULL, NULL, 0);
                if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                        err = po_pg_fail(pg, res, errstr, errstr_size);
                        res = NULL;
                        goto out;
                }
                stats->pg_reads++;
                for (i = 0; i < nskus; i++) {
                        char key[320];

                        if (!miss[ncodes + (customer_id ? 1 : 0) + i])
                                continue;
                        snprintf(key, sizeof(key), "promo:stock:%s", skus[i]);
                        for (row = 0; row < PQntuples(res); row++)
                                if (strcmp(PQgetvalue(res, row, 0), skus[i]) == 0)
                                        break;
                        if (row < PQntuples(res)) {
                                has_stock[i] = 1;
                                stock[i] = atoll(PQgetvalue(res, row, 1));
                                po_refdata_append_put(
                                    rc, &pending, key, atoll(PQgetvalue(res, row, 2)),
                                    PQgetvalue(res, row, 1),
                                    (size_t)PQgetlength(res, row, 1), 0);
                        } else {
                                has_stock[i] = 0;
                                po_refdata_append_put(rc, &pending, key, 0, "", 0,
                                                      OTHER_MISS_TTL_S);
                        }
                }
                PQclear(res);
                res = NULL;
        }
out:
        /* Cache fills are best effort: the answer stands either way. But the
         * fills appended before a failure (PostgreSQL went away between two
         * queries) still owe their replies: read them, or the next command on
         * this connection would read theirs and every later one be off by
         * one. */
        po_refdata_drain_puts(rc, pending);
        PQclear(res);
        po_dynbuf_release(&arr);
        free(miss);
        free(missing);
        return err;
}
