/* Helpers the JSON channel adapters share (internal to common/). Each
 * returns 0 on success or -1 with *rej filled (the field named by path). */
#ifndef PO_CHANNEL_JSON_H
#define PO_CHANNEL_JSON_H

#include <jansson.h>

#include "po/channel.h"
#include "po/utf8.h"

/* Parses the payload; rejects anything but a JSON object. A number too large
 * for 64 bits is OUT_OF_RANGE (jansson cannot say which field held it). */
json_t *cj_load(const char *payload, size_t len, po_channel_reject_t *rej);

/* "path.key" (or "key" when path is empty) into buf, truncated to size. */
void cj_join(char *buf, size_t size, const char *path, const char *key);

/* A member that is present and not null, or NULL. */
json_t *cj_get(json_t *obj, const char *key);

/* A string member copied into the order's arena. required: absent is an
 * error; else *out = NULL when absent. Numbers are accepted and written in
 * decimal when allow_number (channels send ids as numbers). */
int cj_str(po_order_t *o, json_t *obj, const char *key, const char *path, int required,
           int allow_number, const char **out, po_channel_reject_t *rej);

/* An integer member in min..max (a JSON integer, or a string of digits when
 * allow_string). */
int cj_int(json_t *obj, const char *key, const char *path, int64_t min, int64_t max,
           int allow_string, int64_t *out, po_channel_reject_t *rej);

/* A decimal amount given as a string ("19.99"), converted to minor units of
 * the order's currency exactly. Any other JSON type is BAD_TYPE (a number
 * could be a binary float, or minor units taken for major ones); digits
 * finer than the currency's exponent are BAD_AMOUNT; an exact amount above
 * max (at most 10^15) is OUT_OF_RANGE. */
int cj_amount(po_order_t *o, json_t *obj, const char *key, const char *path, int64_t max,
              int64_t *out, po_channel_reject_t *rej);

/* A rate given as a JSON number or string (0.0825 = 8.25 %), to ppm exactly:
 * finer than a ppm is BAD_AMOUNT, above 1 is OUT_OF_RANGE. */
int cj_rate_ppm(json_t *v, const char *path, int64_t *out, po_channel_reject_t *rej);

/* Sets o->currency from a string member (3 upper-case letters). */
int cj_currency(po_order_t *o, json_t *obj, const char *key, const char *path,
                const po_channel_ctx_t *ctx, po_channel_reject_t *rej);

/* Allocates o->lines for n entries (1..1000, else OUT_OF_RANGE naming field)
 * and o->codes for n entries (at most 20). */
int cj_alloc_lines(po_order_t *o, size_t n, const char *field, po_channel_reject_t *rej);
int cj_alloc_codes(po_order_t *o, size_t n, const char *field, po_channel_reject_t *rej);
/* Sets an attribute (key and value copied): a key already present gets the
 * new value, as in the Avro map the order is encoded to. */
int cj_attr(po_order_t *o, const char *key, const char *value, po_channel_reject_t *rej);

/* A NUL-terminated copy of s[0..len) in the order's arena, or NULL with
 * OUT_OF_RANGE naming field (the arena's limit). */
const char *cj_dup(po_order_t *o, const char *s, size_t len, const char *field,
                   po_channel_reject_t *rej);

/* Whether s[0..len) is [+]digits[.digits] (or [-]... when allow_negative)
 * with no non-zero digit beyond places decimals: an exact value whatever its
 * magnitude, so a failed po_money_parse_* on it means out of range. */
int cj_decimal_form(const char *s, size_t len, int places, int allow_negative);

#endif
