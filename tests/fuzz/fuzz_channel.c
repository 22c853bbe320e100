/* libFuzzer harness for one channel adapter, chosen at compile time:
 *     clang -fsanitize=fuzzer,... -DFUZZ_CHANNEL='"web"' \
 *           -DFUZZ_PROFILES='"deploy/intake-profiles.conf"' fuzz_channel.c ...
 * Any bytes in: po_channel_normalize either accepts them as an order that
 * meets every canonical bound, encodes to Avro and decodes back equal, or
 * rejects them with a known reason and a message; never a crash, a leak, a
 * hang or undefined behaviour.
 *
 * Each input is normalized three times: with the built-in default profile,
 * with the channel's profile from the deployed file (account "acme-b2b", so
 * web orders meet a required attribute), and with the default profile in a
 * 4 KiB arena, so every "payload too large" path runs. Built and run by
 * scripts/fuzz. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "po/channel.h"
#include "po/order_avro.h"
#include "po/profile.h"

#ifndef FUZZ_CHANNEL
#error "compile with -DFUZZ_CHANNEL='\"web\"' (or another channel's name)"
#endif
#ifndef FUZZ_PROFILES
#error "compile with -DFUZZ_PROFILES='\"<path to intake-profiles.conf>\"'"
#endif

#define ARENA_LIMIT (8u << 20) /* as intake-normalizer */
#define SMALL_ARENA 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same(const char *a, const char *b)
{
        return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static const char *attr(const po_order_t *o, const char *key)
{
        size_t i;

        for (i = 0; i < o->attr_count; i++)
                if (strcmp(o->attrs[i].key, key) == 0)
                        return o->attrs[i].value;
        return NULL;
}

/* Everything an accepted order promises downstream stages. */
static void check_bounds(const po_order_t *o)
{
        size_t i, j, n = strlen(FUZZ_CHANNEL);

        if (!o->order_id || !o->external_id || !o->external_id[0] ||
            strncmp(o->order_id, FUZZ_CHANNEL ":", n + 1) != 0 ||
            strcmp(o->order_id + n + 1, o->external_id) != 0)
                abort();
        for (i = 0; i < 3; i++)
                if (o->currency[i] < 'A' || o->currency[i] > 'Z')
                        abort();
        if (o->currency[3] != '\0' || o->line_count < 1 ||
            o->line_count > PO_PRICING_MAX_LINES || o->code_count > PO_PRICING_MAX_CODES)
                abort();
        for (i = 0; i < o->line_count; i++) {
                const po_order_line_t *l = &o->lines[i];

                if (!l->line_id || !l->sku || !l->sku[0] || !l->category ||
                    !l->category[0] || l->unit_price < 0 ||
                    l->unit_price > PO_PRICING_MAX_UNIT_PRICE || l->quantity < 1 ||
                    l->quantity > PO_PRICING_MAX_QUANTITY || l->tax_rate_ppm < 0 ||
                    l->tax_rate_ppm > PO_PRICING_MAX_PPM)
                        abort();
        }
        if (po_order_value(o) > PO_PRICING_MAX_SUBTOTAL)
                abort();
        for (i = 0; i < o->code_count; i++)
                if (!o->codes[i])
                        abort();
        for (i = 0; i < o->attr_count; i++) {
                if (!o->attrs[i].key || !o->attrs[i].value)
                        abort();
                for (j = 0; j < i; j++) /* a map: one value per key */
                        if (strcmp(o->attrs[i].key, o->attrs[j].key) == 0)
                                abort();
        }
}

static void check_equal(const po_order_t *a, const po_order_t *b)
{
        size_t i;

        if (!same(a->channel, b->channel) || !same(a->account, b->account) ||
            !same(a->external_id, b->external_id) || !same(a->order_id, b->order_id) ||
            a->has_customer != b->has_customer || !same(a->customer_id, b->customer_id) ||
            !same(a->customer_tier, b->customer_tier) ||
            !same(a->customer_email, b->customer_email) ||
            strcmp(a->currency, b->currency) != 0 || a->tax_mode != b->tax_mode ||
            a->placed_at_us != b->placed_at_us ||
            a->received_at_us != b->received_at_us || a->line_count != b->line_count ||
            a->code_count != b->code_count || a->attr_count != b->attr_count)
                abort();
        for (i = 0; i < a->line_count; i++) {
                const po_order_line_t *x = &a->lines[i], *y = &b->lines[i];

                if (!same(x->line_id, y->line_id) || !same(x->sku, y->sku) ||
                    !same(x->category, y->category) || x->unit_price != y->unit_price ||
                    x->quantity != y->quantity || x->tax_rate_ppm != y->tax_rate_ppm ||
                    x->has_unit_cost != y->has_unit_cost)
                        abort();
        }
        for (i = 0; i < a->code_count; i++)
                if (!same(a->codes[i], b->codes[i]))
                        abort();
        for (i = 0; i < a->attr_count; i++)
                if (!same(a->attrs[i].value, attr(b, a->attrs[i].key)))
                        abort();
}

static void check_reject(const po_channel_reject_t *rej)
{
        static const char *known[] = {
            PO_REJECT_BAD_SYNTAX,   PO_REJECT_MISSING_FIELD,  PO_REJECT_BAD_TYPE,
            PO_REJECT_BAD_AMOUNT,   PO_REJECT_OUT_OF_RANGE,   PO_REJECT_BAD_TIMESTAMP,
            PO_REJECT_BAD_CURRENCY, PO_REJECT_TOTAL_MISMATCH, PO_REJECT_UNKNOWN_CHANNEL,
            PO_REJECT_PROFILE,
        };
        size_t i;

        for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
                if (strcmp(rej->reason, known[i]) == 0)
                        break;
        if (i == sizeof(known) / sizeof(known[0]) || !rej->message[0])
                abort();
}

/* Normalizes, then checks the order (and its Avro round trip) or the
 * rejection. small: the arena may run out, which is a rejection too. */
static void run(po_avro_t *avro, const po_channel_profile_t *p, const char *account,
                const uint8_t *data, size_t size, size_t arena)
{
        po_channel_ctx_t ctx = {.channel = FUZZ_CHANNEL,
                                .account = account,
                                .received_at_us = 1795532400000000LL,
                                .profile = p};
        po_channel_reject_t rej;
        po_order_t o, back;
        po_dynbuf_t out;
        char err[256];
        po_err_t e;

        po_order_init(&o, arena);
        e = po_channel_normalize(&ctx, (const char *)data, size, &o, &rej);
        if (e == PO_ERR_BAD_INPUT) {
                check_reject(&rej);
        } else if (e == PO_ERR_NOMEM) {
                if (arena == ARENA_LIMIT)
                        abort(); /* 64 KiB inputs fit 8 MiB */
        } else if (e != PO_OK) {
                abort();
        } else {
                check_bounds(&o);
                po_dynbuf_init(&out, 64u << 20);
                if (po_order_encode(avro, &o, &out, err, sizeof(err)) != PO_OK)
                        abort(); /* accepted, so it must encode */
                po_order_init(&back, ARENA_LIMIT);
                if (po_order_decode(avro, out.data, out.len, &back, err, sizeof(err)) !=
                    PO_OK)
                        abort();
                check_equal(&o, &back);
                po_order_release(&back);
                po_dynbuf_release(&out);
        }
        po_order_release(&o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static po_avro_t *avro;
        static po_profiles_t *builtin, *deployed;
        char err[256];

        if (!avro) {
                avro = po_avro_new(err, sizeof(err));
                builtin = po_profiles_load(NULL, err, sizeof(err));
                deployed = po_profiles_load(FUZZ_PROFILES, err, sizeof(err));
                if (!avro || !builtin || !deployed || !po_channel_find(FUZZ_CHANNEL))
                        abort();
        }
        run(avro, po_profiles_lookup(builtin, FUZZ_CHANNEL, ""), "", data, size,
            ARENA_LIMIT);
        run(avro, po_profiles_lookup(deployed, FUZZ_CHANNEL, "acme-b2b"), "acme-b2b",
            data, size, ARENA_LIMIT);
        run(avro, po_profiles_lookup(builtin, FUZZ_CHANNEL, ""), "", data, size,
            SMALL_ARENA);
        return 0;
}
