/* po_money: integer minor-unit arithmetic with the spec's two rounding modes
 * (PRICING_SPEC.md section 1). No floating point anywhere. */
#ifndef PO_MONEY_H
#define PO_MONEY_H

#include <stddef.h>
#include <stdint.h>

#include "po/err.h"

typedef __int128 po_i128;

typedef enum po_rounding {
        PO_ROUND_HALF_UP = 0, /* ties away from zero (the default) */
        PO_ROUND_HALF_EVEN,   /* ties to the even integer */
} po_rounding_t;

/* Exact n / d rounded to an integer by mode. Requires n >= 0 and d > 0
 * (callers guarantee it; the result is then exact for every such input). */
static inline po_i128 po_money_div_round(po_i128 n, po_i128 d, po_rounding_t mode)
{
        po_i128 q = n / d, r = n % d;

        if (2 * r > d || (2 * r == d && (mode == PO_ROUND_HALF_UP || (q & 1))))
                q++;
        return q;
}

/* ISO 4217 minor-unit exponent of a 3-letter currency code: 0 (JPY, KRW...),
 * 3 (KWD, BHD...) or 2 (everything else, USD, EUR...). */
int po_money_exponent(const char *currency);

/* Parses a decimal amount ("19.99", "-0.5", "1200") of len bytes into minor
 * units of a currency with the given exponent, exactly: more fraction digits
 * than the exponent are accepted only when the extra ones are zeros
 * ("19.990" is 1999 in USD, "19.995" is PO_ERR_BAD_INPUT). A sign is allowed
 * only when allow_negative. Digits only, no exponent, no spaces, at most
 * 10^15 in magnitude. Returns PO_OK or PO_ERR_BAD_INPUT. */
po_err_t po_money_parse_decimal(const char *s, size_t len, int exponent,
                                int allow_negative, int64_t *out);

/* Parses a decimal fraction ("0.0825", "8.25") into parts per `scale`
 * (e.g. scale 1000000 for ppm) exactly; rejects digits finer than the
 * scale. Returns PO_OK or PO_ERR_BAD_INPUT. */
po_err_t po_money_parse_scaled(const char *s, size_t len, int64_t scale, int64_t *out);
#endif
