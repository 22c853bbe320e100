/* promo-calc: the batch calculator of PRICING_SPEC.md section 9. One JSON
 * case per line on stdin, one JSON result per line on stdout, in order,
 * never stopping on a bad line. Exit status 0 when every line was read,
 * 1 when it could not run (out of memory, a read or write error).
 *   --receipts   add a human-readable "description" to each applied code */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "po/calcjson.h"

#define MAX_OUTPUT (256u * 1024 * 1024)

int main(int argc, char **argv)
{
        po_calcjson_t *cj;
        po_dynbuf_t out;
        unsigned flags = 0;
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        int status = 0, i;

        for (i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--receipts") == 0) {
                        flags |= PO_CALCJSON_RECEIPTS;
                } else {
                        fprintf(stderr, "usage: promo-calc [--receipts] < cases.jsonl\n");
                        return 2;
                }
        }
        cj = po_calcjson_new();
        if (!cj) {
                fprintf(stderr, "promo-calc: out of memory\n");
                return 1;
        }
        po_dynbuf_init(&out, MAX_OUTPUT);
        while ((n = getline(&line, &cap, stdin)) >= 0) {
                size_t len = (size_t)n;

                while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
                        len--;
                po_dynbuf_reset(&out);
                if (po_calcjson_process(cj, line, len, flags, &out) ||
                    po_dynbuf_add(&out, "\n", 1)) {
                        fprintf(stderr, "promo-calc: out of memory on a case\n");
                        status = 1;
                        break;
                }
                if (fwrite(out.data, 1, out.len, stdout) != out.len) {
                        perror("promo-calc: write");
                        status = 1;
                        break;
                }
        }
        if (ferror(stdin)) {
                perror("promo-calc: read");
                status = 1;
        }
        if (fflush(stdout) != 0) {
                perror("promo-calc: write");
                status = 1;
        }
        free(line);
        po_dynbuf_release(&out);
        po_calcjson_destroy(cj);
        return status;
}
