/* RFC 3339 timestamps to instants, exactly (po_instant_parse in po/pricing.h). */
#include "po/pricing.h"

static int digits(const char *s, size_t n, int *out)
{
        int v = 0;
        size_t i;

        for (i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -1;
                v = v * 10 + (s[i] - '0');
        }
        *out = v;
        return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
        int64_t era, yoe, doy, doe;

        y -= m <= 2;
        era = (y >= 0 ? y : y - 399) / 400;
        yoe = y - era * 400;
        doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
        doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m)
{
        static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

        return m == 2 && leap ? 29 : dm[m - 1];
}

po_err_t po_instant_parse(const char *s, size_t len, po_instant_t *out)
{
        int y, mo, d, h, mi, se, oh = 0, om = 0, sign = 0;
        int32_t nsec = 0;
        size_t i = 19, nd = 0;

        /* YYYY-MM-DDTHH:MM:SS is 19 bytes; then [.frac] and Z or +HH:MM. */
        if (len < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') ||
            s[13] != ':' || s[16] != ':')
                return PO_ERR_BAD_INPUT;
        if (digits(s, 4, &y) || digits(s + 5, 2, &mo) || digits(s + 8, 2, &d) ||
            digits(s + 11, 2, &h) || digits(s + 14, 2, &mi) || digits(s + 17, 2, &se))
                return PO_ERR_BAD_INPUT;
        if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 ||
            se > 60)
                return PO_ERR_BAD_INPUT;
        if (s[i] == '.') {
                i++;
                while (i < len && s[i] >= '0' && s[i] <= '9') {
                        if (++nd > 9)
                                return PO_ERR_BAD_INPUT; /* finer than a nanosecond */
                        nsec = nsec * 10 + (s[i] - '0');
                        i++;
                }
                if (nd == 0)
                        return PO_ERR_BAD_INPUT;
                for (; nd < 9; nd++)
                        nsec *= 10;
        }
        if (i < len && (s[i] == 'Z' || s[i] == 'z') && i + 1 == len) {
                sign = 0;
        } else if (i + 6 == len && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
                sign = s[i] == '+' ? 1 : -1;
                if (digits(s + i + 1, 2, &oh) || digits(s + i + 4, 2, &om) || oh > 23 ||
                    om > 59)
                        return PO_ERR_BAD_INPUT;
        } else {
                return PO_ERR_BAD_INPUT;
        }
        /* A leap second (:60) is the instant of the next minute's :00. */
        out->sec = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se -
                   sign * (oh * 3600 + om * 60);
        out->nsec = nsec;
        return PO_OK;
}
