/* po_refdata: the reference data pricing needs (code definitions, customer
 * tiers, stock levels), read from Redis with PostgreSQL behind it, and
 * written to Redis from the compacted topics.
 *
 * Redis keys, each a hash {v: version, d: data}:
 *   promo:code:<CODE>     d = the definition's spec JSON (PRICING_SPEC.md
 *                         section 3), "" = no such code (kept 30 s)
 *   promo:customer:<ID>   d = the CRM tier, "" = known without a tier or
 *                         unknown to the CRM (unknown: kept 60 s)
 *   promo:stock:<SKU>     d = units available, "" = unknown (kept 60 s)
 * Writes only replace an entry whose version is not newer (a replay of a
 * compacted topic from its start never rolls a value back). A miss reads
 * PostgreSQL (codes, customers, inventory) and fills the entry, so nothing
 * is wrong when Redis starts empty. */
#ifndef PO_REFDATA_H
#define PO_REFDATA_H

#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "po/err.h"
#include "po/messages.h"
#include "po/order.h"

/* Sets key's entry to (version, data) unless the entry's version is newer;
 * ttl_s > 0 makes it expire. Returns PO_OK or PO_ERR_DEPENDENCY. */
po_err_t po_refdata_put(redisContext *rc, const char *key, int64_t version,
                        const char *data, size_t len, int ttl_s, char *errstr,
                        size_t errstr_size);

/* po_refdata_put without waiting for the reply, for best-effort cache
 * fills: *pending counts the replies the pipeline owes (0 before the first
 * put, which is preceded by a SCRIPT LOAD of the script, so that a Redis
 * that never saw it runs it). Read them with po_refdata_drain_puts. */
void po_refdata_append_put(redisContext *rc, size_t *pending, const char *key,
                           int64_t version, const char *data, size_t len, int ttl_s);

/* Reads and drops the n replies owed by appended puts. Other replies may
 * follow them on rc (the caller's own pipelined commands): nothing else is
 * sent or read here. A put that met NOSCRIPT (the script flushed between
 * the pipeline's SCRIPT LOAD and the put) is a lost fill, as a failed one. */
void po_refdata_drain_puts(redisContext *rc, size_t n);

/* po_refdata_put of n entries in one pipelined round trip (a bulk load):
 * keys[i] gets (versions[i], data[i] of lens[i] bytes), never expiring.
 * Returns PO_OK or PO_ERR_DEPENDENCY (the first error; the connection may
 * then be unusable). */
po_err_t po_refdata_put_many(redisContext *rc, const char *const *keys,
                             const int64_t *versions, const char *const *data,
                             const size_t *lens, size_t n, char *errstr,
                             size_t errstr_size);

/* Deletes key's entry unless it is newer than version (a tombstone). */
po_err_t po_refdata_del(redisContext *rc, const char *key, int64_t version, char *errstr,
                        size_t errstr_size);

typedef struct po_refdata_stats {
        uint64_t redis_hits, pg_reads; /* cumulative, for metrics */
} po_refdata_stats_t;

/* What an order needs, looked up in one Redis round trip plus PostgreSQL for
 * misses. codes: normalized valid codes (unique); defs[i] / has_def[i] get
 * each definition (strings in arena). *tier gets the CRM tier (in arena) or
 * NULL when the CRM has none; *crm_known whether the CRM knows the customer
 * (customer_id may be NULL: no lookup). stock[i] / has_stock[i] for each sku.
 * pg may be NULL (no fallback: a miss is then "unknown"). Returns PO_OK or
 * PO_ERR_DEPENDENCY (Redis or PostgreSQL failed), PO_ERR_NOMEM. A definition
 * that does not parse is logged and treated as absent (UNKNOWN_CODE) only if
 * it came from a cache: from PostgreSQL it is an error (PO_ERR_BAD_INPUT). */
po_err_t po_refdata_fetch(redisContext *rc, PGconn *pg, po_arena_t *arena,
                          const char *const *codes, size_t ncodes, po_codedef_t *defs,
                          int *has_def, const char *customer_id, const char **tier,
                          int *crm_known, const char *const *skus, size_t nskus,
                          int64_t *stock, int *has_stock, po_refdata_stats_t *stats,
                          char *errstr, size_t errstr_size);

#endif
