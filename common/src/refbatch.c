/* Reference data of a group of orders in pipelined round trips (see
 * po/refbatch.h). Mirrors po_refdata_fetch entry by entry. */
#include "po/refbatch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "po/dynbuf.h"
#include "po/log.h"
#include "po/pg.h"
#include "po/redis.h"

#define CODE_MISS_TTL_S 30  /* as refdata.c */
#define OTHER_MISS_TTL_S 60 /* as refdata.c */
#define ARENA_LIMIT (64u << 20)

static const char *const prefix[] = {"promo:code:", "promo:customer:", "promo:stock:"};

void po_refbatch_init(po_refbatch_t *b)
{
        memset(b, 0, sizeof(*b));
        po_arena_init(&b->arena, ARENA_LIMIT);
}

void po_refbatch_release(po_refbatch_t *b)
{
        po_arena_release(&b->arena);
        free(b->entries);
        free(b->slots);
        memset(b, 0, sizeof(*b));
}

void po_refbatch_clear(po_refbatch_t *b)
{
        po_arena_release(&b->arena);
        po_arena_init(&b->arena, ARENA_LIMIT);
        b->n = 0;
        b->appended = 0;
        if (b->slots)
                memset(b->slots, 0, b->nslots * sizeof(*b->slots));
}

static uint32_t hash(po_refkind_t kind, const char *id)
{
        uint32_t h = 2166136261u ^ (uint32_t)kind;

        while (*id)
                h = (h ^ (unsigned char)*id++) * 16777619u;
        return h;
}

static uint32_t *slot_of(po_refbatch_t *b, po_refkind_t kind, const char *id)
{
        size_t i = hash(kind, id) & (b->nslots - 1);

        while (b->slots[i]) {
                const po_refentry_t *e = &b->entries[b->slots[i] - 1];

                if (e->kind == kind && strcmp(e->id, id) == 0)
                        break;
                i = (i + 1) & (b->nslots - 1);
        }
        return &b->slots[i];
}

static int grow(po_refbatch_t *b)
{
        size_t cap = b->cap ? 2 * b->cap : 256, nslots = 2 * cap, i;
        po_refentry_t *e = realloc(b->entries, cap * sizeof(*e));
        uint32_t *s;

        if (!e)
                return -1;
        b->entries = e;
        b->cap = cap;
        s = calloc(nslots, sizeof(*s));
        if (!s)
                return -1;
        free(b->slots);
        b->slots = s;
        b->nslots = nslots;
        for (i = 0; i < b->n; i++)
                *slot_of(b, b->entries[i].kind, b->entries[i].id) = (uint32_t)i + 1;
        return 0;
}

int po_refbatch_add(po_refbatch_t *b, po_refkind_t kind, const char *id)
{
        uint32_t *slot;
        po_refentry_t *e;

        if (!id || (b->n == b->cap && grow(b)))
                return -1;
        slot = slot_of(b, kind, id);
        if (*slot)
                return 0;
        e = &b->entries[b->n];
        memset(e, 0, sizeof(*e));
        e->kind = kind;
        e->id = po_arena_strndup(&b->arena, id, strlen(id));
        if (!e->id)
                return -1;
        *slot = (uint32_t)++b->n;
        return 0;
}

po_refentry_t *po_refbatch_find(po_refbatch_t *b, po_refkind_t kind, const char *id)
{
        uint32_t *slot;

        if (!id || !b->nslots)
                return NULL;
        slot = slot_of(b, kind, id);
        return *slot ? &b->entries[*slot - 1] : NULL;
}

void po_refbatch_append(po_refbatch_t *b, redisContext *rc)
{
        size_t i;

        for (i = 0; i < b->n; i++)
                redisAppendCommand(rc, "HGET %s%s d", prefix[b->entries[i].kind],
                                   b->entries[i].id);
        b->appended = b->n;
}

static int parse_def(po_refentry_t *e, const char *json, size_t len, po_arena_t *arena)
{
        char why[256];

        if (po_codedef_from_json(json, len, arena, &e->def, why, sizeof(why))) {
                po_log_warn("cache: definition of %s: %s; reading PostgreSQL", e->id,
                            why);
                return -1;
        }
        if (strcmp(e->def.def.code, e->id) != 0) {
                po_log_warn("cache: definition stored under %s is for %s; reading "
                            "PostgreSQL",
                            e->id, e->def.def.code);
                return -1;
        }
        return 0;
}

static void apply_reply(po_refbatch_t *b, po_refentry_t *e, const redisReply *r,
                        po_refdata_stats_t *stats)
{
        if (r->type == REDIS_REPLY_NIL) {
                e->miss = 1;
                return;
        }
        if (r->type != REDIS_REPLY_STRING)
                return; /* unresolved: the order's own fetch reports it */
        stats->redis_hits++;
        switch (e->kind) {
        case PO_REF_CODE:
                e->has = r->len > 0;
                if (r->len > 0 && parse_def(e, r->str, r->len, &b->arena)) {
                        e->has = 0;
                        e->miss = 1;
                        return;
                }
                break;
        case PO_REF_CUSTOMER:
                e->has = 1;
                if (r->len > 0) {
                        e->tier = po_arena_strndup(&b->arena, r->str, r->len);
                        if (!e->tier)
                                return;
                }
                break;
        case PO_REF_SKU:
                if (r->len > 0) {
                        char *end;
                        long long v = strtoll(r->str, &end, 10);

                        if (*end || v < 0) {
                                e->miss = 1; /* garbage in the cache */
                                return;
                        }
                        e->has = 1;
                        e->stock = v;
                }
                break;
        }
        e->resolved = 1;
}

po_err_t po_refbatch_read(po_refbatch_t *b, redisContext *rc, po_refdata_stats_t *stats,
                          char *errstr, size_t errstr_size)
{
        size_t i, n = b->appended;

        b->appended = 0;
        for (i = 0; i < n; i++) {
                redisReply *r = NULL;

                if (redisGetReply(rc, (void **)&r) != REDIS_OK || !r)
                        return po_redis_fail(rc, r, errstr, errstr_size);
                apply_reply(b, &b->entries[i], r, stats);
                freeReplyObject(r);
        }
        return PO_OK;
}

/* The misses of kind as a PostgreSQL text[] literal; 0 when there are none. */
static size_t miss_array(po_refbatch_t *b, po_refkind_t kind, po_dynbuf_t *arr)
{
        size_t i, n = 0;

        po_dynbuf_reset(arr);
        po_dynbuf_add(arr, "{", 1);
        for (i = 0; i < b->n; i++)
                if (b->entries[i].kind == kind && b->entries[i].miss) {
                        po_pg_array_add(arr, b->entries[i].id);
                        n++;
                }
        if (po_dynbuf_add(arr, "}", 1))
                return 0;
        return n;
}

/* Every kind's misses in one statement (one round trip): key, value as
 * text, version, kind (po_refkind_t). The queries per kind are those of
 * po_refdata_fetch. */
static const char miss_sql[] =
    "SELECT code, definition::text, version, 0 FROM codes"
    " WHERE code = ANY($1::text[])"
    " UNION ALL SELECT customer_id, coalesce(tier, ''),"
    " (extract(epoch FROM updated_at) * 1000000)::bigint, 1 FROM customers"
    " WHERE customer_id = ANY($2::text[])"
    " UNION ALL SELECT sku, stock::text,"
    " (extract(epoch FROM updated_at) * 1000000)::bigint, 2 FROM inventory"
    " WHERE sku = ANY($3::text[])";

/* Resolves one miss from its row (row < 0: not in PostgreSQL) and appends
 * its cache fill (*pending counts the replies owed). */
static void resolve(po_refbatch_t *b, po_refentry_t *e, redisContext *rc, PGresult *res,
                    int row, size_t *pending)
{
        char key[400];
        const char *val = row >= 0 ? PQgetvalue(res, row, 1) : "";
        size_t len = row >= 0 ? (size_t)PQgetlength(res, row, 1) : 0;
        int64_t version = row >= 0 ? atoll(PQgetvalue(res, row, 2)) : 0;
        int ttl = row >= 0                 ? 0
                  : e->kind == PO_REF_CODE ? CODE_MISS_TTL_S
                                           : OTHER_MISS_TTL_S;

        e->has = 0;
        e->tier = NULL;
        if (row >= 0) {
                switch (e->kind) {
                case PO_REF_CODE:
                        if (parse_def(e, val, len, &b->arena))
                                return; /* the order's own fetch reports it */
                        e->has = 1;
                        break;
                case PO_REF_CUSTOMER:
                        e->has = 1;
                        if (len > 0 && !(e->tier = po_arena_strndup(&b->arena, val, len)))
                                return;
                        break;
                case PO_REF_SKU:
                        e->has = 1;
                        e->stock = atoll(val);
                        break;
                }
        }
        e->resolved = 1;
        e->miss = 0;
        snprintf(key, sizeof(key), "%s%s", prefix[e->kind], e->id);
        po_refdata_append_put(rc, pending, key, version, val, len, ttl);
}

size_t po_refbatch_fill(po_refbatch_t *b, redisContext *rc, PGconn *pg,
                        po_refdata_stats_t *stats)
{
        po_dynbuf_t arr[3];
        const char *params[3];
        size_t pending = 0, nmiss = 0, i;
        PGresult *res;
        int kind, row, failed = 0;

        if (!pg)
                return 0;
        for (kind = PO_REF_CODE; kind <= PO_REF_SKU; kind++) {
                po_dynbuf_init(&arr[kind], 16u << 20);
                nmiss += miss_array(b, (po_refkind_t)kind, &arr[kind]);
                params[kind] = arr[kind].data;
                failed |= arr[kind].failed;
        }
        if (nmiss == 0 || failed)
                goto out; /* nothing to ask (or out of memory: unresolved) */
        res = PQexecParams(pg, miss_sql, 3, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                po_log_warn("postgres: %s", PQresultErrorMessage(res));
                PQclear(res);
                goto out; /* unresolved: the orders' own fetches retry */
        }
        stats->pg_reads++;
        for (row = 0; row < PQntuples(res); row++) {
                po_refentry_t *e =
                    po_refbatch_find(b, (po_refkind_t)atoi(PQgetvalue(res, row, 3)),
                                     PQgetvalue(res, row, 0));

                if (e && e->miss) {
                        resolve(b, e, rc, res, row, &pending);
                        e->miss = 0; /* a definition that does not parse stays
                                        unresolved: the order's fetch reports it */
                }
        }
        for (i = 0; i < b->n; i++)
                if (b->entries[i].miss) /* not in PostgreSQL */
                        resolve(b, &b->entries[i], rc, res, -1, &pending);
        PQclear(res);
out:
        for (kind = PO_REF_CODE; kind <= PO_REF_SKU; kind++)
                po_dynbuf_release(&arr[kind]);
        return pending;
}
