/* libFuzzer harness for the JSON case parser and the pricing core behind it:
 * any bytes in, one result or one BAD_INPUT error object out, never a crash,
 * a leak or undefined behaviour. Built and run by scripts/fuzz. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "po/calcjson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static po_calcjson_t *cj;
        po_dynbuf_t out;

        if (!cj)
                cj = po_calcjson_new();
        po_dynbuf_init(&out, 64u << 20);
        if (po_calcjson_process(cj, (const char *)data, size, PO_CALCJSON_RECEIPTS,
                                &out) == PO_OK) {
                /* The contract: a JSON object, result or error, every time. */
                if (out.len < 2 || out.data[0] != '{' || out.data[out.len - 1] != '}')
                        abort();
        }
        po_dynbuf_release(&out);
        return 0;
}
