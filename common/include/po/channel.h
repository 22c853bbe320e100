/* po_channel: channel adapters, each turning one sales channel's payload into
 * the canonical order (po_order_t), and the profiles that tune how strict
 * intake is per channel and account.
 *
 * Adding a channel is one new file, common/src/channel_<name>.c, defining a
 * po_channel_adapter_t, plus one line in the registry of channel.c. */
#ifndef PO_CHANNEL_H
#define PO_CHANNEL_H

#include <stddef.h>
#include <stdint.h>

#include "po/err.h"
#include "po/order.h"

/* Why a payload was rejected: a machine-readable reason, the field at fault
 * (a JSON path, "H.ts" for the POS header...) and a sentence. */
typedef struct po_channel_reject {
        char reason[48];
        char field[96];
        char message[256];
} po_channel_reject_t;

/* Reasons (po_channel_reject_t.reason). */
#define PO_REJECT_BAD_SYNTAX "BAD_SYNTAX"       /* not JSON / not the channel's format */
#define PO_REJECT_MISSING_FIELD "MISSING_FIELD" /* a required field is absent */
#define PO_REJECT_BAD_TYPE "BAD_TYPE"           /* a field has the wrong type */
#define PO_REJECT_BAD_AMOUNT "BAD_AMOUNT"       /* not an exact amount in the currency */
#define PO_REJECT_OUT_OF_RANGE "OUT_OF_RANGE"   /* outside the pricing bounds */
#define PO_REJECT_BAD_TIMESTAMP "BAD_TIMESTAMP"
#define PO_REJECT_BAD_CURRENCY "BAD_CURRENCY"
#define PO_REJECT_TOTAL_MISMATCH                                                         \
        "TOTAL_MISMATCH" /* channel's total disagrees beyond tolerance */
#define PO_REJECT_UNKNOWN_CHANNEL "UNKNOWN_CHANNEL"
#define PO_REJECT_PROFILE                                                                \
        "PROFILE_REQUIREMENT" /* a field the profile requires is absent */

/* How strict intake is for one channel or account (deploy/intake-profiles.conf). */
typedef struct po_channel_profile {
        const char *default_category; /* for lines without one; NULL = reject them */
        const char *default_currency; /* for payloads without one; NULL = reject them */
        int require_email;            /* a non-blank customer email */
        int require_customer;         /* a non-blank customer id */
        int64_t total_tolerance; /* minor units the channel's own total may differ by */
        const char *required_attrs[8]; /* attributes that must have a non-blank value */
        size_t required_attr_count;
} po_channel_profile_t;

/* What an adapter knows besides the payload. */
typedef struct po_channel_ctx {
        const char *channel;
        const char *account;
        int64_t received_at_us;
        const po_channel_profile_t *profile; /* never NULL */
} po_channel_ctx_t;

/* Parses payload[0..len) into out (initialised by the caller; everything is
 * allocated in out->arena). Returns PO_OK, or PO_ERR_BAD_INPUT with *rej
 * filled, or PO_ERR_NOMEM. Never reads past len; payload need not be
 * NUL-terminated. */
typedef po_err_t (*po_channel_parse_fn)(const char *payload, size_t len,
                                        const po_channel_ctx_t *ctx, po_order_t *out,
                                        po_channel_reject_t *rej);

typedef struct po_channel_adapter {
        const char *name; /* the channel header value: "web", "pos", ... */
        const char *description;
        po_channel_parse_fn parse;
} po_channel_adapter_t;

/* The adapter registered for channel, or NULL. */
const po_channel_adapter_t *po_channel_find(const char *channel);
/* Every registered adapter; *count set. */
const po_channel_adapter_t *const *po_channel_all(size_t *count);

/* Parses with the channel's adapter, then applies the canonical bounds
 * (1..1000 lines, unit_price 0..10^10, quantity 1..10^6, tax 0..10^6 ppm,
 * order value <= 10^15, at most 20 codes, currency 3 upper-case letters)
 * and the profile's checks (default category; customer, email, attributes
 * required: a blank value counts as absent). Sets out->channel, account,
 * received_at and order_id ("<channel>:<external_id>"). Returns PO_OK,
 * PO_ERR_BAD_INPUT with *rej filled (the first failing check; docs/intake.md
 * lists the reasons and fields), or PO_ERR_NOMEM. */
po_err_t po_channel_normalize(const po_channel_ctx_t *ctx, const char *payload,
                              size_t len, po_order_t *out, po_channel_reject_t *rej);

/* Fills rej and returns PO_ERR_BAD_INPUT; for adapters. */
po_err_t po_channel_reject(po_channel_reject_t *rej, const char *reason,
                           const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The smallest-magnitude-of-digits tax rate in ppm that reproduces tax from
 * amount exactly (half_up), e.g. 4497 and 371 give 82500; for channels that
 * send tax amounts instead of rates. Returns PO_ERR_BAD_INPUT when no rate
 * in 0..10^6 reproduces it. */
po_err_t po_channel_rate_from_tax(int64_t amount, int64_t tax, int64_t *ppm);

/* The decimal text of a JSON real as the channel most likely wrote it: the
 * shortest text that parses back to the same double, written without an
 * exponent ("0.0825"; 5e-06 is "0.000005"), except for magnitudes beyond
 * 10^+-40, which keep the exponent form (and are no amount or rate). */
void po_channel_real_text(double v, char *buf, size_t size);

#endif
