/* Benchmark of the Avro codecs on the pipeline's hot path (not a test), one
 * core: each channel's sample normalized once (as intake does), then over
 * and over
 *   Order encode            intake-normalizer, per order
 *   Order decode            validator, per order
 *   ValidatedOrder encode   validator, per order (every code applied, with
 *                           its full definition, as the validator sends it)
 *   ValidatedOrder decode   calculator, per order
 *   bench-codec [seconds per measurement] [samples dir] [profiles file]
 *   bench-codec -n COUNT [samples dir] [profiles file]
 * Prints microseconds per message; docs/BENCHMARKS.md records the figures.
 * -n runs each measurement COUNT times instead, for an instruction count
 * that the machine's load does not blur (valgrind --tool=callgrind: the
 * inclusive cost of po_order_encode... divided by its calls).
 * BENCH_GENERIC=1 encodes and decodes through avro-c's generic values alone,
 * without the direct writers and readers (po/avro_wire.h), for a before and
 * after. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "po/avro_wire.h"
#include "po/channel.h"
#include "po/messages.h"
#include "po/order_avro.h"
#include "po/profile.h"

#include "bench_samples.h"

#define ARENA_LIMIT (8u << 20) /* as the services */

/* A definition with every optional part, as a marketer's code can have. */
static const char def_json[] =
    "{\"code\":\"%s\",\"status\":\"active\",\"type\":\"percentage\","
    "\"value\":1250,\"currency\":\"USD\",\"min_spend\":5000,\"max_spend\":1000000,"
    "\"max_discount\":2500,\"starts_at\":\"2026-11-24T10:00:00Z\","
    "\"expires_at\":\"2026-12-01T00:00:00Z\",\"usage_limit\":1000,"
    "\"per_customer_limit\":2,\"tiers\":[\"gold\",\"platinum\"],"
    "\"tier_values\":{\"gold\":1500,\"platinum\":2000},\"channels\":[\"web\",\"mobile\"],"
    "\"targets\":{\"skus\":[\"SKU-1\",\"SKU-2\"],\"categories\":[\"shoes\"],"
    "\"exclude_categories\":[\"gift-cards\"]},"
    "\"combinable\":true,\"priority\":7,\"version\":3,\"updated_at\":1790000000123456}";

typedef enum { ORDER_ENC, ORDER_DEC, VALID_ENC, VALID_DEC, NKINDS } kind_t;

static const char *const kind_names[NKINDS] = {"Order enc", "Order dec", "Validated enc",
                                               "Validated dec"};

/* The validator's output for o: stock for every line, every code applied
 * with its definition, usage counts and a reservation. */
static int make_validated(po_validated_t *v, char *err, size_t errsize)
{
        po_order_t *o = &v->order;
        char json[2048];
        size_t i;

        v->stacking = PO_STACK_COMBINE;
        v->rounding = PO_ROUND_HALF_UP;
        v->validated_at = o->received_at_us + 1000;
        v->line_stock =
            po_arena_alloc(&o->arena, (o->line_count + 1) * sizeof(*v->line_stock));
        v->decisions =
            po_arena_alloc(&o->arena, (o->code_count + 1) * sizeof(*v->decisions));
        if (!v->line_stock || !v->decisions)
                return -1;
        v->line_stock_count = o->line_count;
        for (i = 0; i < o->line_count; i++) {
                v->line_stock[i].line_id = o->lines[i].line_id;
                v->line_stock[i].has_stock = 1;
                v->line_stock[i].stock = 40;
        }
        v->decision_count = o->code_count;
        for (i = 0; i < o->code_count; i++) {
                po_decision_t *d = &v->decisions[i];

                memset(d, 0, sizeof(*d));
                d->requested = o->codes[i];
                d->code = o->codes[i];
                d->applied = 1;
                snprintf(json, sizeof(json), def_json, o->codes[i]);
                if (po_codedef_from_json(json, strlen(json), &o->arena, &d->definition,
                                         err, errsize) != PO_OK)
                        return -1;
                d->has_definition = 1;
                d->has_fingerprint = 1;
                d->fingerprint = 0x1234567812345678LL;
                d->has_usage = 1;
                d->usage_total = 17;
                d->usage_customer = 1;
                d->tier = "gold";
                d->reservation_id = "3f2a9c1e-resv";
        }
        return 0;
}

/* kind over and over for secs seconds; returns messages per second, -1 on
 * an error. */
static double measure(kind_t kind, po_avro_t *avro, const po_validated_t *v,
                      const po_dynbuf_t *order_msg, const po_dynbuf_t *valid_msg,
                      po_dynbuf_t *out, double secs, unsigned long long count,
                      unsigned long long *checksum)
{
        unsigned long long n = 0;
        double t0 = now_s(), t;
        char err[256];
        po_err_t e = PO_OK;
        int i;

        do {
                for (i = 0; i < 256 && !e && (!count || n + (unsigned)i < count); i++) {
                        po_validated_t d;

                        po_dynbuf_reset(out);
                        switch (kind) {
                        case ORDER_ENC:
                                e = po_order_encode(avro, &v->order, out, err,
                                                    sizeof(err));
                                *checksum += out->len;
                                break;
                        case VALID_ENC:
                                e = po_validated_encode(avro, v, out, err, sizeof(err));
                                *checksum += out->len;
                                break;
                        case ORDER_DEC:
                                po_order_init(&d.order, ARENA_LIMIT);
                                e = po_order_decode(avro, order_msg->data, order_msg->len,
                                                    &d.order, err, sizeof(err));
                                *checksum += d.order.line_count;
                                po_order_release(&d.order);
                                break;
                        default:
                                po_order_init(&d.order, ARENA_LIMIT);
                                e = po_validated_decode(avro, valid_msg->data,
                                                        valid_msg->len, &d, err,
                                                        sizeof(err));
                                *checksum += d.decision_count;
                                po_order_release(&d.order);
                                break;
                        }
                }
                n += (unsigned)i;
                t = now_s() - t0;
        } while (!e && (count ? n < count : t < secs));
        if (e) {
                fprintf(stderr, "bench-codec: %s: %s\n", kind_names[kind], err);
                return -1;
        }
        return (double)n / t;
}

int main(int argc, char **argv)
{
        int a = argc > 2 && strcmp(argv[1], "-n") == 0 ? 2 : 1;
        unsigned long long count = a == 2 ? strtoull(argv[2], NULL, 10) : 0;
        double secs = a == 1 && argc > 1 ? strtod(argv[1], NULL) : 2.0;
        const char *dir = argc > a + 1 ? argv[a + 1] : SAMPLES_DIR;
        const char *conf = argc > a + 2 ? argv[a + 2] : PROFILES_CONF;
        unsigned long long checksum = 0;
        po_dynbuf_t out, order_msg, valid_msg;
        po_profiles_t *ps = NULL;
        po_avro_t *avro = NULL;
        char err[512];
        size_t i;
        int k, status = 1;

        po_dynbuf_init(&out, 64u << 20);
        po_dynbuf_init(&order_msg, 64u << 20);
        po_dynbuf_init(&valid_msg, 64u << 20);
        if (!(secs > 0) || (a == 2 && count == 0)) {
                fprintf(stderr, "usage: bench-codec [seconds | -n count] [samples dir] "
                                "[profiles]\n");
                return 2;
        }
        ps = po_profiles_load(conf, err, sizeof(err));
        avro = ps ? po_avro_new(err, sizeof(err)) : NULL;
        if (!avro) {
                fprintf(stderr, "bench-codec: %s\n", err);
                goto out;
        }
        if (getenv("BENCH_GENERIC") && strcmp(getenv("BENCH_GENERIC"), "1") == 0) {
                po_avro_set_direct(avro, 0);
                printf("(generic path only: BENCH_GENERIC=1)\n");
        }
        printf("%-12s %5s %5s %6s %6s", "channel", "lines", "codes", "Order", "Valid.");
        for (k = 0; k < NKINDS; k++)
                printf(" %13s", kind_names[k]);
        printf("   (bytes; us per message)\n");
        for (i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
                po_channel_ctx_t ctx = sample_ctx(ps, i);
                po_channel_reject_t rej;
                po_validated_t v;
                double rate[NKINDS];
                size_t len = 0;
                char *p = slurp(dir, samples[i].file, &len);
                int bad = 0;

                if (!p) {
                        fprintf(stderr, "bench-codec: cannot read %s/%s\n", dir,
                                samples[i].file);
                        goto out;
                }
                memset(&v, 0, sizeof(v));
                po_order_init(&v.order, ARENA_LIMIT);
                po_dynbuf_reset(&order_msg);
                po_dynbuf_reset(&valid_msg);
                if (po_channel_normalize(&ctx, p, len, &v.order, &rej) != PO_OK) {
                        fprintf(stderr, "bench-codec: %s rejected: %s\n",
                                samples[i].channel, rej.message);
                        bad = 1;
                } else if (make_validated(&v, err, sizeof(err)) ||
                           po_order_encode(avro, &v.order, &order_msg, err,
                                           sizeof(err)) ||
                           po_validated_encode(avro, &v, &valid_msg, err, sizeof(err))) {
                        fprintf(stderr, "bench-codec: %s: %s\n", samples[i].channel, err);
                        bad = 1;
                }
                for (k = 0; !bad && k < NKINDS; k++) {
                        rate[k] = measure((kind_t)k, avro, &v, &order_msg, &valid_msg,
                                          &out, secs, count, &checksum);
                        bad = rate[k] < 0;
                }
                if (!bad) {
                        printf("%-12s %5zu %5zu %6zu %6zu", samples[i].channel,
                               v.order.line_count, v.order.code_count, order_msg.len,
                               valid_msg.len);
                        for (k = 0; k < NKINDS; k++)
                                printf(" %13.2f", 1e6 / rate[k]);
                        printf("\n");
                }
                po_order_release(&v.order);
                free(p);
                if (bad)
                        goto out;
        }
        printf("(checksum %llu)\n", checksum);
        status = 0;
out:
        po_avro_destroy(avro);
        po_profiles_destroy(ps);
        po_dynbuf_release(&out);
        po_dynbuf_release(&order_msg);
        po_dynbuf_release(&valid_msg);
        return status;
}
