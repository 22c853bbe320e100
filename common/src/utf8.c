/* UTF-8 validation (see po/utf8.h). */
#include "po/utf8.h"

#include <stdint.h>

size_t po_utf8_bad(const void *str, size_t n)
{
        const unsigned char *s = str;
        size_t i = 0, k, need;
        uint32_t cp;

        while (i < n) {
                unsigned char c = s[i];

                if (c == 0)
                        return i + 1;
                if (c < 0x80) {
                        i++;
                        continue;
                }
                if (c >= 0xc2 && c <= 0xdf) {
                        need = 1;
                        cp = c & 0x1f;
                } else if (c >= 0xe0 && c <= 0xef) {
                        need = 2;
                        cp = c & 0x0f;
                } else if (c >= 0xf0 && c <= 0xf4) {
                        need = 3;
                        cp = c & 0x07;
                } else {
                        return i + 1;
                }
                if (n - i <= need)
                        return i + 1;
                for (k = 1; k <= need; k++) {
                        if ((s[i + k] & 0xc0) != 0x80)
                                return i + 1;
                        cp = (cp << 6) | (s[i + k] & 0x3f);
                }
                if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) ||
                    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                        return i + 1;
                i += need + 1;
        }
        return 0;
}
