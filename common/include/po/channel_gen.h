/* po_channel_gen: valid raw orders in each sales channel's real shape, as
 * the channel adapters (common/src/channel_*.c) accept them, for the
 * promo-publish command, benchmarks and tests.
 *
 * Deterministic: the same configuration (seed, run id, base time, codes,
 * account) gives the same payloads in the same order. Every payload has a
 * unique external order id that includes the run id, so repeated runs with
 * different run ids never meet intake's duplicate check.
 *
 * Shapes, per channel (the names of po_channel_find):
 *   web          Shopify-like webhook JSON: decimal-string prices, tax lines
 *                as rates, taxes_included, a loyalty tier in the customer's
 *                tags, discount_codes
 *   marketplace  Amazon-like orders API JSON: line totals (ItemPrice for all
 *                units, not always divisible), item tax amounts, an
 *                OrderTotal that matches, PromotionIds
 *   pos          the store export: H|..., I|... (minor units, tax ppm),
 *                C|code=..., T|subtotal=...
 *   mobile       app.order.v2 JSON: minor units, vat_ppm, tax-inclusive or
 *                not, millisecond epochs, promo codes
 * Amounts are built from integers only. */
#ifndef PO_CHANNEL_GEN_H
#define PO_CHANNEL_GEN_H

#include <stddef.h>
#include <stdint.h>

#include "po/dynbuf.h"
#include "po/err.h"

#define PO_GEN_MAX_CODES 64
#define PO_GEN_MAX_RUN_ID 40

typedef struct po_gen_conf {
        uint64_t seed;
        /* In every external id: 1..PO_GEN_MAX_RUN_ID of [A-Za-z0-9._-]. */
        const char *run_id;
        /* Orders are placed within the hour before this (ms since the
         * epoch); 0 = 2026-11-24T12:00:00Z. */
        int64_t base_time_ms;
        /* Promo codes to draw from (about half the orders get one, some
         * two); each 1..32 of [A-Za-z0-9_-]. May be NULL when code_count is
         * 0. At most PO_GEN_MAX_CODES. */
        const char *const *codes;
        size_t code_count;
        /* The account header; NULL = the channel's default (po_gen_order_t). */
        const char *account;
} po_gen_conf_t;

/* The generator's state: a plain value, no allocation. The strings of its
 * configuration are borrowed and must outlive it. */
typedef struct po_gen {
        po_gen_conf_t conf;
        uint64_t rng;
        uint64_t seq; /* payloads made so far */
} po_gen_t;

/* What the generator knows of one payload: what intake should make of it. */
typedef struct po_gen_order {
        char channel[16];
        /* The account header to send: conf.account, else the channel's
         * default ("default"; the store number for pos, the marketplace id
         * for marketplace). */
        char account[64];
        char external_id[96]; /* also the Kafka key */
        char order_id[128];   /* "<channel>:<external_id>", intake's dedupe key */
        char currency[4];
        size_t line_count; /* canonical lines (a marketplace item whose total
                              does not divide by its quantity is two) */
        int64_t value;     /* sum of unit price x quantity, minor units */
        size_t code_count; /* distinct codes in the payload */
} po_gen_order_t;

/* Checks conf and prepares g. Returns PO_ERR_INVALID_ARG with a message in
 * errstr for a bad run id or code. */
po_err_t po_gen_init(po_gen_t *g, const po_gen_conf_t *conf, char *errstr,
                     size_t errstr_size);

/* Appends one payload of channel ("web", "marketplace", "pos", "mobile") to
 * out and describes it in *meta. Returns PO_ERR_INVALID_ARG for an unknown
 * channel, PO_ERR_NOMEM when out failed (out of memory or past its limit;
 * po_dynbuf has then released it). */
po_err_t po_gen_next(po_gen_t *g, const char *channel, po_dynbuf_t *out,
                     po_gen_order_t *meta);

/* The channels the generator knows, in a fixed order; *count set. */
const char *const *po_gen_channels(size_t *count);

#endif
