/* po_money: integer minor-unit arithmetic with the spec's two rounding modes
 * (PRICING_SPEC.md section 1). No floating point anywhere. */
#ifndef PO_MONEY_H
#define PO_MONEY_H

#include <stdint.h>

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

#endif
