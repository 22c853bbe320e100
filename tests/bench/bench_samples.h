/* What the single-process benchmarks over the channel samples share (bench-
 * intake, bench-codec): the samples, a monotonic clock, reading a file. */
#ifndef BENCH_SAMPLES_H
#define BENCH_SAMPLES_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static const struct {
        const char *channel, *file;
} samples[] = {
    {"web", "web-shopify-order.json"},
    {"marketplace", "marketplace-order.json"},
    {"pos", "pos-transaction.txt"},
    {"mobile", "mobile-order.json"},
};

static inline double now_s(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline char *slurp(const char *dir, const char *name, size_t *len)
{
        char path[1024];
        FILE *f;
        char *buf = NULL;
        long n;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        f = fopen(path, "rb");
        if (!f)
                return NULL;
        if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
            fseek(f, 0, SEEK_SET) == 0) {
                buf = malloc((size_t)n + 1);
                if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
                        free(buf);
                        buf = NULL;
                } else if (buf) {
                        *len = (size_t)n;
                }
        }
        fclose(f);
        return buf;
}

#endif
