/* Benchmark of intake normalization (not a test): each channel's sample
 * payload normalized over and over on one core, as intake-normalizer does
 * it (a fresh order with an 8 MiB arena per payload, the deployed profile
 * of the channel), first alone (parse + normalize) and then followed by the
 * Avro encoding of the order (parse + normalize + encode).
 *   bench-intake [seconds per measurement] [samples dir] [profiles file]
 * Prints payloads per second per channel; docs/BENCHMARKS.md records the
 * figures. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "po/channel.h"
#include "po/order_avro.h"
#include "po/profile.h"

#include "bench_samples.h"

#define ARENA_LIMIT (8u << 20) /* as intake-normalizer */

/* Normalizes (and encodes, when avro) the payload for secs seconds; returns
 * payloads per second, or -1 when the payload is rejected. */
static double measure(const po_channel_ctx_t *ctx, const char *payload, size_t len,
                      po_avro_t *avro, po_dynbuf_t *out, double secs,
                      unsigned long long *checksum)
{
        unsigned long long n = 0;
        double t0 = now_s(), t;
        po_channel_reject_t rej;
        po_order_t o;
        char err[256];
        int i;

        do {
                for (i = 0; i < 256; i++) {
                        po_order_init(&o, ARENA_LIMIT);
                        if (po_channel_normalize(ctx, payload, len, &o, &rej) != PO_OK) {
                                fprintf(stderr, "bench-intake: %s rejected: %s %s: %s\n",
                                        ctx->channel, rej.reason, rej.field, rej.message);
                                po_order_release(&o);
                                return -1;
                        }
                        *checksum += (unsigned long long)po_order_value(&o);
                        if (avro) {
                                po_dynbuf_reset(out);
                                if (po_order_encode(avro, &o, out, err, sizeof(err))) {
                                        fprintf(stderr, "bench-intake: %s: %s\n",
                                                ctx->channel, err);
                                        po_order_release(&o);
                                        return -1;
                                }
                                *checksum += out->len;
                        }
                        po_order_release(&o);
                }
                n += 256;
                t = now_s() - t0;
        } while (t < secs);
        return (double)n / t;
}

int main(int argc, char **argv)
{
        double secs = argc > 1 ? strtod(argv[1], NULL) : 3.0;
        const char *dir = argc > 2 ? argv[2] : SAMPLES_DIR;
        const char *conf = argc > 3 ? argv[3] : PROFILES_CONF;
        unsigned long long checksum = 0;
        po_profiles_t *ps = NULL;
        po_avro_t *avro = NULL;
        po_dynbuf_t out;
        char err[512];
        size_t i;
        int status = 1;

        po_dynbuf_init(&out, 64u << 20);
        if (!(secs > 0)) {
                fprintf(stderr,
                        "usage: bench-intake [seconds] [samples dir] [profiles]\n");
                return 2;
        }
        ps = po_profiles_load(conf, err, sizeof(err));
        if (!ps) {
                fprintf(stderr, "bench-intake: %s\n", err);
                goto out;
        }
        avro = po_avro_new(err, sizeof(err));
        if (!avro) {
                fprintf(stderr, "bench-intake: avro: %s\n", err);
                goto out;
        }
        printf("%-12s %6s %16s %12s %20s %12s\n", "channel", "bytes", "normalize/s",
               "us each", "normalize+encode/s", "us each");
        for (i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
                po_channel_ctx_t ctx = sample_ctx(ps, i);
                size_t len = 0;
                char *p = slurp(dir, samples[i].file, &len);
                double a, b;

                if (!p) {
                        fprintf(stderr, "bench-intake: cannot read %s/%s\n", dir,
                                samples[i].file);
                        goto out;
                }
                a = measure(&ctx, p, len, NULL, &out, secs, &checksum);
                b = a < 0 ? -1 : measure(&ctx, p, len, avro, &out, secs, &checksum);
                free(p);
                if (a < 0 || b < 0)
                        goto out;
                printf("%-12s %6zu %16.0f %12.2f %20.0f %12.2f\n", samples[i].channel,
                       len, a, 1e6 / a, b, 1e6 / b);
        }
        printf("(checksum %llu)\n", checksum);
        status = 0;
out:
        po_avro_destroy(avro);
        po_profiles_destroy(ps);
        po_dynbuf_release(&out);
        return status;
}
