/* Helpers the JSON channel adapters share (internal to common/). Each
 * returns 0 on success or -1 with *rej filled (the field named by path). */
#ifndef PO_CHANNEL_JSON_H
#define PO_CHANNEL_JSON_H

#include <jansson.h>

#include "po/channel.h"

/* Parses the payload; rejects anything but a JSON object. */
json_t *cj_load(const char *payload, size_t len, po_channel_reject_t *rej);

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

/* A decimal amount given as a string ("19.99") or an integer, converted to
 * minor units of the order's currency exactly. */
int cj_amount(po_order_t *o, json_t *obj, const char *key, const char *path, int64_t *out,
              po_channel_reject_t *rej);

/* A rate given as a JSON number or string (0.0825 = 8.25 %), to ppm exactly. */
int cj_rate_ppm(json_t *v, const char *path, int64_t *out, po_channel_reject_t *rej);

/* Sets o->currency from a string member (3 upper-case letters). */
int cj_currency(po_order_t *o, json_t *obj, const char *key, const char *path,
                const po_channel_ctx_t *ctx, po_channel_reject_t *rej);

/* Allocates o->lines / o->codes for n entries. */
int cj_alloc_lines(po_order_t *o, size_t n, po_channel_reject_t *rej);
int cj_alloc_codes(po_order_t *o, size_t n, po_channel_reject_t *rej);
/* Appends an attribute (key and value copied). */
int cj_attr(po_order_t *o, const char *key, const char *value, po_channel_reject_t *rej);

#endif
