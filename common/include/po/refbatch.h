/* po_refbatch: the reference data of a group of orders (code definitions,
 * customer tiers, stock levels), looked up together: one pipelined Redis
 * round trip for every key of the group, then one PostgreSQL query for the
 * misses of every kind, whose cache fills go back to Redis with the
 * caller's next pipeline.
 * The answers are those po_refdata_fetch gives for the same keys (same
 * Redis entries, same PostgreSQL queries, same cache fills and TTLs); an
 * entry that could not be resolved (Redis or PostgreSQL failed, a
 * definition in PostgreSQL that does not parse) stays unresolved, and the
 * caller falls back to po_refdata_fetch for the orders that need it.
 *
 * Use: po_refbatch_clear, po_refbatch_add every key, po_refbatch_append,
 * (other pipelined commands of the caller may follow), po_refbatch_read,
 * (the caller reads its own replies), po_refbatch_fill (the caller drains
 * the fills' replies first thing in its next round trip); then
 * po_refbatch_find. Entries and their strings live until the next clear. */
#ifndef PO_REFBATCH_H
#define PO_REFBATCH_H

#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "po/err.h"
#include "po/messages.h"
#include "po/order.h"
#include "po/refdata.h"

typedef enum po_refkind {
        PO_REF_CODE = 0,
        PO_REF_CUSTOMER,
        PO_REF_SKU,
} po_refkind_t;

typedef struct po_refentry {
        const char *id;
        po_refkind_t kind;
        int resolved;     /* 1 when the fields below are the answer */
        int miss;         /* not in Redis: PostgreSQL is asked in po_refbatch_fill */
        int has;          /* code: has a definition; customer: the CRM knows it;
                             sku: stock known */
        po_codedef_t def; /* code */
        const char *tier; /* customer: the CRM's tier, NULL for none */
        int64_t stock;    /* sku */
        int fp_state;     /* code: 0 not computed, 1 fp valid, -1 failed */
        int64_t fp;       /* code: po_codedef_fingerprint of def */
} po_refentry_t;

typedef struct po_refbatch {
        po_arena_t arena;
        po_refentry_t *entries;
        size_t n, cap;
        uint32_t *slots; /* open addressing: entry index + 1, 0 = empty */
        size_t nslots;
        size_t appended; /* HGETs appended and not read yet */
} po_refbatch_t;

/* No allocation. */
void po_refbatch_init(po_refbatch_t *b);
/* Frees everything; b may be initialised again. */
void po_refbatch_release(po_refbatch_t *b);
/* Forgets every entry (keeps the memory for the next group). */
void po_refbatch_clear(po_refbatch_t *b);

/* Adds the key (copied) unless present. Returns 0, -1 when out of memory or
 * id is NULL. */
int po_refbatch_add(po_refbatch_t *b, po_refkind_t kind, const char *id);

/* The entry of the key, or NULL when it was never added (or id is NULL). The pointer is
 * valid until the next add or clear. */
po_refentry_t *po_refbatch_find(po_refbatch_t *b, po_refkind_t kind, const char *id);

/* Appends an HGET for every entry to rc's pipeline (nothing is sent yet). */
void po_refbatch_append(po_refbatch_t *b, redisContext *rc);

/* Reads the replies of po_refbatch_append. Returns PO_OK, or
 * PO_ERR_DEPENDENCY when the connection broke (no more replies can be read
 * on it; entries not read stay unresolved). */
po_err_t po_refbatch_read(po_refbatch_t *b, redisContext *rc, po_refdata_stats_t *stats,
                          char *errstr, size_t errstr_size);

/* Resolves the misses from PostgreSQL in one query (pg may be NULL: they
 * stay unresolved) and appends their cache fills to rc's pipeline without
 * sending them. Returns how many replies the fills owe: the caller reads
 * them with po_refdata_drain_puts before any other reply on rc, which lets
 * its next round trip carry them (best effort: the answers stand either
 * way). */
size_t po_refbatch_fill(po_refbatch_t *b, redisContext *rc, PGconn *pg,
                        po_refdata_stats_t *stats);

#endif
