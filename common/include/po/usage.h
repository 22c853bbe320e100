/* po_usage: redemption counters and reservations in Redis, durable in
 * PostgreSQL (table redemptions).
 *
 * Redis keys (one Redis, not a cluster: the scripts build key names):
 *   promo:usage:ready          the marker "<redis run_id>:<random>" set by the
 *                              last rebuild; absent or stale = not ready
 *   promo:usage:rebuilding     lock of the validator rebuilding (EX 120)
 *   promo:usage:total:<CODE>   redemptions granted, in total
 *   promo:usage:cust:<CODE>    hash customer_id -> redemptions
 *   promo:resv:<ORDER>:<CODE>  the reservation of a code by an order
 *                              (value: customer id; EX 7 days)
 *
 * The guarantee (no over-redemption across restarts of anything):
 * reservations are granted by one Lua script that checks the limits and
 * increments atomically, idempotently per (order, code), only while the
 * marker matches the caller's. The validator writes every reservation of a
 * Kafka batch to PostgreSQL before the batch commits, and checks, inside that
 * PostgreSQL transaction, that the marker is still the one its reservations
 * were made under. A rebuild (Redis restarted, flushed, or its data lost)
 * first invalidates the marker, then reads redemptions under a SHARE lock
 * (waiting for in-flight batch inserts), rewrites the counters and
 * reservations, and sets a new marker. So a batch whose reservations a
 * rebuild may have missed never commits: it aborts and is validated again
 * against the rebuilt counters. See docs/validator.md. */
#ifndef PO_USAGE_H
#define PO_USAGE_H

#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "po/err.h"

#define PO_USAGE_RESV_TTL_S (7 * 24 * 3600)

typedef struct po_usage {
        char marker[96]; /* the marker this process works under; "" = none */
        char run_id[48]; /* of the Redis the marker was read from */
        int rebuilds;    /* rebuilds done by this process */
        /* SHA1s of the read and reserve scripts as Redis knows them (SCRIPT
         * LOAD in po_usage_ready), so that calls send EVALSHA and not the
         * script; "" = not loaded: calls send the script (EVAL). */
        char read_sha[41], reserve_sha[41];
} po_usage_t;

void po_usage_init(po_usage_t *u);

/* Makes sure the counters are ready: adopts the current marker when it
 * belongs to the running Redis, else rebuilds them from PostgreSQL (or waits
 * up to wait_ms for another process's rebuild). Returns PO_OK, or
 * PO_ERR_DEPENDENCY / PO_ERR_TIMEOUT with a message. */
po_err_t po_usage_ready(po_usage_t *u, redisContext *rc, PGconn *pg, int wait_ms,
                        char *errstr, size_t errstr_size);

/* Rebuilds the Redis counters and reservations from PostgreSQL now. */
po_err_t po_usage_rebuild(po_usage_t *u, redisContext *rc, PGconn *pg, char *errstr,
                          size_t errstr_size);

/* Redemptions of each code in total and by customer (NULL = anonymous),
 * not counting order_id's own reservations. Returns PO_OK, PO_ERR_TIMEOUT
 * when the marker moved (call po_usage_ready and retry), PO_ERR_DEPENDENCY on
 * a Redis error. */
po_err_t po_usage_read(po_usage_t *u, redisContext *rc, const char *order_id,
                       const char *customer, const char *const *codes, size_t n,
                       int64_t *total, int64_t *by_customer, char *errstr,
                       size_t errstr_size);

/* po_usage_read in two halves, to pipeline the reads of many orders:
 * read_append queues the command on rc (nothing is sent yet; returns 0, -1
 * when n > 64 or out of memory: nothing queued), read_reply reads its reply,
 * in pipeline order, and returns as po_usage_read. */
int po_usage_read_append(const po_usage_t *u, redisContext *rc, const char *order_id,
                         const char *customer, const char *const *codes, size_t n);
po_err_t po_usage_read_reply(redisContext *rc, size_t n, int64_t *total,
                             int64_t *by_customer, char *errstr, size_t errstr_size);

/* Reserves every code for order_id, all or nothing: limit[i] /
 * customer_limit[i] are the code's usage_limit / per_customer_limit, -1 for
 * none. Codes the order already holds are granted again without counting.
 * *granted = 1 when reserved, 0 when a limit was reached (nothing changed).
 * Returns as po_usage_read. */
po_err_t po_usage_reserve(po_usage_t *u, redisContext *rc, const char *order_id,
                          const char *customer, const char *const *codes,
                          const int64_t *limit, const int64_t *customer_limit, size_t n,
                          int *granted, char *errstr, size_t errstr_size);

/* po_usage_reserve in two halves, to pipeline the reservations of many
 * orders: reserve_append queues the command on rc (returns 0, -1 when n > 20
 * or out of memory: nothing queued), reserve_reply reads its reply, in
 * pipeline order, and returns as po_usage_reserve. */
int po_usage_reserve_append(const po_usage_t *u, redisContext *rc, const char *order_id,
                            const char *customer, const char *const *codes,
                            const int64_t *limit, const int64_t *customer_limit,
                            size_t n);
po_err_t po_usage_reserve_reply(redisContext *rc, int *granted, char *errstr,
                                size_t errstr_size);

/* The reads or reservations of many orders in one script call (the
 * validator's group). A request is one order: what the single-order calls
 * above take, and their answers. */
#define PO_USAGE_GROUP_MAX 64 /* orders per call: Redis runs a call whole */

typedef struct po_usage_req {
        const char *order_id;
        const char *customer; /* NULL = anonymous */
        const char *const *codes;
        size_t n; /* codes: at most 64 (read), 20 (reserve) */
        const int64_t *limit, *customer_limit; /* reserve: n each, -1 = none */
        int64_t *total, *by_customer;          /* read: n each, out */
        int granted;                           /* reserve: out */
} po_usage_req_t;

/* Queues one call for reqs[0..n) on rc (nothing is sent yet). Returns 0,
 * -1 when n is 0 or more than PO_USAGE_GROUP_MAX, an order has too many
 * codes, or out of memory (nothing queued). */
int po_usage_read_many_append(const po_usage_t *u, redisContext *rc,
                              const po_usage_req_t *reqs, size_t n);
int po_usage_reserve_many_append(const po_usage_t *u, redisContext *rc,
                                 const po_usage_req_t *reqs, size_t n);
/* Reads the reply of the call, in pipeline order, into reqs' outputs (the
 * reservations: each order all or nothing, in turn, as one call per order
 * would). Returns as po_usage_read, for the whole call; a NOSCRIPT reply
 * is PO_ERR_DEPENDENCY (the caller falls back to the single calls, which
 * load the script again). */
po_err_t po_usage_read_many_reply(redisContext *rc, po_usage_req_t *reqs, size_t n,
                                  char *errstr, size_t errstr_size);
po_err_t po_usage_reserve_many_reply(redisContext *rc, po_usage_req_t *reqs, size_t n,
                                     char *errstr, size_t errstr_size);

/* Whether Redis still holds marker (for the batch check). Returns 1 yes, 0
 * no, -1 on a Redis error. */
int po_usage_marker_holds(redisContext *rc, const char *marker);

#endif
