/* What the single-process benchmarks over the channel samples share (bench-
 * intake, bench-codec): the samples and the context they are normalized in,
 * a monotonic clock, reading a file. */
#ifndef BENCH_SAMPLES_H
#define BENCH_SAMPLES_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "po/channel.h"
#include "po/profile.h"

static const struct {
        const char *channel, *file;
} samples[] = {
    {"web", "web-shopify-order.json"},
    {"marketplace", "marketplace-order.json"},
    {"pos", "pos-transaction.txt"},
    {"mobile", "mobile-order.json"},
};

/* The channel context sample i is normalized in (account "acct-1"). */
static inline po_channel_ctx_t sample_ctx(const po_profiles_t *ps, size_t i)
{
        po_channel_ctx_t ctx = {.channel = samples[i].channel,
                                .account = "acct-1",
                                .received_at_us = 1795532400000000LL,
                                .profile =
                                    po_profiles_lookup(ps, samples[i].channel, "acct-1")};

        return ctx;
}

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
