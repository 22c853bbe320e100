#include "po/money.h"

#include <string.h>

#define MONEY_MAX 1000000000000000LL /* 10^15 */

int po_money_exponent(const char *cur)
{
        static const char *zero[] = {"BIF", "CLP", "DJF", "GNF", "ISK", "JPY",
                                     "KMF", "KRW", "PYG", "RWF", "UGX", "UYI",
                                     "VND", "VUV", "XAF", "XOF", "XPF"};
        static const char *three[] = {"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"};
        size_t i;

        for (i = 0; i < sizeof(zero) / sizeof(zero[0]); i++)
                if (strcmp(cur, zero[i]) == 0)
                        return 0;
        for (i = 0; i < sizeof(three) / sizeof(three[0]); i++)
                if (strcmp(cur, three[i]) == 0)
                        return 3;
        return 2;
}

/* Parses [-]digits[.digits] into an integer scaled by 10^places. */
static po_err_t parse_fixed(const char *s, size_t len, int places, int allow_negative,
                            int64_t *out)
{
        size_t i = 0, int_digits = 0, frac_digits = 0;
        int neg = 0, seen_dot = 0;
        po_i128 v = 0;

        if (len == 0)
                return PO_ERR_BAD_INPUT;
        if (s[0] == '-' || s[0] == '+') {
                if (s[0] == '-' && !allow_negative)
                        return PO_ERR_BAD_INPUT;
                neg = s[0] == '-';
                i = 1;
        }
        for (; i < len; i++) {
                char c = s[i];

                if (c == '.') {
                        if (seen_dot)
                                return PO_ERR_BAD_INPUT;
                        seen_dot = 1;
                        continue;
                }
                if (c < '0' || c > '9')
                        return PO_ERR_BAD_INPUT;
                if (seen_dot) {
                        if ((int)frac_digits >= places) {
                                if (c != '0')
                                        return PO_ERR_BAD_INPUT; /* not exact */
                                frac_digits++;
                                continue;
                        }
                        frac_digits++;
                } else {
                        int_digits++;
                }
                v = v * 10 + (c - '0');
                if (v > (po_i128)MONEY_MAX * 1000000)
                        return PO_ERR_BAD_INPUT;
        }
        if (int_digits == 0 || (seen_dot && frac_digits == 0))
                return PO_ERR_BAD_INPUT;
        for (; (int)frac_digits < places; frac_digits++)
                v *= 10;
        if (v > MONEY_MAX)
                return PO_ERR_BAD_INPUT;
        *out = (int64_t)(neg ? -v : v);
        return PO_OK;
}

po_err_t po_money_parse_decimal(const char *s, size_t len, int exponent,
                                int allow_negative, int64_t *out)
{
        if (exponent < 0 || exponent > 3)
                return PO_ERR_INVALID_ARG;
        return parse_fixed(s, len, exponent, allow_negative, out);
}

po_err_t po_money_parse_scaled(const char *s, size_t len, int64_t scale, int64_t *out)
{
        int places = 0;
        int64_t sc = scale;

        while (sc > 1 && sc % 10 == 0) {
                sc /= 10;
                places++;
        }
        if (sc != 1)
                return PO_ERR_INVALID_ARG;
        return parse_fixed(s, len, places, 0, out);
}
