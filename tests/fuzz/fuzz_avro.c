/* libFuzzer harness for po_avro's decoder: any bytes in, a value or a clear
 * error out, never a crash, a leak, a hang or undefined behaviour.
 *
 * Each input is tried three ways:
 *   1. as a whole message, decoded as every schema name;
 *   2. as header + datum: the first byte picks a schema version of the
 *      registry and the rest is its datum behind that version's header, so
 *      the fuzzer explores the datum checks instead of guessing fingerprints;
 *   3. as a DeadLetter through the typed decoder;
 *   4. (whole, and as 2. built it) through the typed decoders of
 *      po_messages: CodeDefinition, ValidatedOrder, PricedOrder, UsageEvent.
 * A message that decodes must re-encode, and the re-encoding must decode to
 * an equal value (for 4., to a struct that encodes to the same bytes). The
 * typed encoders (they have direct writers, po/avro_wire.h) must also write the very
 * bytes, or the very error, of the generic path. Built and run by scripts/fuzz. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "po/avro.h"
#include "po/avro_wire.h"
#include "po/messages.h"
#include "po/order_avro.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void roundtrip(po_avro_t *avro, const char *name, avro_value_t *v)
{
        char err[256];
        po_dynbuf_t out;
        avro_value_t again;

        po_dynbuf_init(&out, 64u << 20);
        if (po_avro_encode(avro, name, v, &out, err, sizeof(err)) != PO_OK)
                abort(); /* decoded, so it must encode */
        if (po_avro_decode(avro, name, out.data, out.len, &again, err, sizeof(err)) !=
            PO_OK)
                abort();
        if (!avro_value_equal(v, &again))
                abort();
        avro_value_decref(&again);
        po_dynbuf_release(&out);
}

static void decode_as(po_avro_t *avro, const char *name, const uint8_t *p, size_t n)
{
        char err[256];
        avro_value_t v;

        if (po_avro_decode(avro, name, p, n, &v, err, sizeof(err)) != PO_OK) {
                if (v.self || !err[0])
                        abort(); /* an error leaves nothing and says why */
                return;
        }
        roundtrip(avro, name, &v);
        avro_value_decref(&v);
}

#define ARENA_LIMIT (16u << 20)

/* e1 (the encoding of what decoded) and e2 (of what e1 decodes to) agree. */
static void same_encoding(po_err_t first, po_err_t second, po_dynbuf_t *e1,
                          po_dynbuf_t *e2)
{
        if (first != PO_OK || second != PO_OK || e1->len != e2->len ||
            memcmp(e1->data, e2->data, e1->len) != 0)
                abort();
        po_dynbuf_release(e1);
        po_dynbuf_release(e2);
}

/* what, encoded by enc with the direct writers (r1, e1) and with the
 * generic path alone: the same result and the same bytes. */
typedef po_err_t (*enc_fn)(po_avro_t *avro, const void *what, po_dynbuf_t *out, char *e,
                           size_t n);

static void same_as_generic(po_avro_t *avro, enc_fn enc, const void *what, po_err_t r1,
                            const po_dynbuf_t *e1)
{
        char err[256];
        po_dynbuf_t g;
        po_err_t r;

        po_dynbuf_init(&g, 64u << 20);
        po_avro_set_direct(avro, 0);
        r = enc(avro, what, &g, err, sizeof(err));
        po_avro_set_direct(avro, 1);
        if (r != r1 ||
            (r == PO_OK && (g.len != e1->len || memcmp(g.data, e1->data, g.len) != 0)))
                abort();
        po_dynbuf_release(&g);
}

static po_err_t enc_codedef(po_avro_t *avro, const void *what, po_dynbuf_t *out, char *e,
                            size_t n)
{
        return po_codedef_encode(avro, what, out, e, n);
}

static po_err_t enc_validated(po_avro_t *avro, const void *what, po_dynbuf_t *out,
                              char *e, size_t n)
{
        return po_validated_encode(avro, what, out, e, n);
}

static po_err_t enc_order(po_avro_t *avro, const void *what, po_dynbuf_t *out, char *e,
                          size_t n)
{
        return po_order_encode(avro, what, out, e, n);
}

static po_err_t enc_priced(po_avro_t *avro, const void *what, po_dynbuf_t *out, char *e,
                           size_t n)
{
        return po_priced_encode(avro, what, out, e, n);
}

static po_err_t enc_usage(po_avro_t *avro, const void *what, po_dynbuf_t *out, char *e,
                          size_t n)
{
        return po_usage_encode(avro, what, out, e, n);
}

/* p[0..n) was read by a direct reader into x (encoded in e1 by enc): the
 * generic path reads it too (into y, with decode), to the same encoding. */
typedef po_err_t (*dec_fn)(po_avro_t *avro, const uint8_t *p, size_t n, void *out);

static void read_as_generic(po_avro_t *avro, dec_fn decode, enc_fn enc, const uint8_t *p,
                            size_t n, void *y, const po_dynbuf_t *e1)
{
        char err[256];
        po_dynbuf_t e2;

        po_dynbuf_init(&e2, 64u << 20);
        po_avro_set_direct(avro, 0);
        if (decode(avro, p, n, y) != PO_OK ||
            enc(avro, y, &e2, err, sizeof(err)) != PO_OK || e2.len != e1->len ||
            memcmp(e2.data, e1->data, e1->len) != 0)
                abort();
        po_avro_set_direct(avro, 1);
        po_dynbuf_release(&e2);
}

static po_err_t dec_order(po_avro_t *avro, const uint8_t *p, size_t n, void *out)
{
        char err[256];

        return po_order_decode(avro, p, n, out, err, sizeof(err));
}

static po_err_t dec_validated(po_avro_t *avro, const uint8_t *p, size_t n, void *out)
{
        char err[256];

        return po_validated_decode(avro, p, n, out, err, sizeof(err));
}

static void typed_order(po_avro_t *avro, const uint8_t *p, size_t n)
{
        char err[256];
        po_order_t x, y;
        po_dynbuf_t e1;
        po_err_t r1;
        uint64_t reads = po_avro_direct_reads(avro);

        po_order_init(&x, ARENA_LIMIT);
        po_order_init(&y, ARENA_LIMIT);
        po_dynbuf_init(&e1, 64u << 20);
        if (po_order_decode(avro, p, n, &x, err, sizeof(err)) == PO_OK) {
                r1 = po_order_encode(avro, &x, &e1, err, sizeof(err));
                if (r1 != PO_OK)
                        abort(); /* decoded, so it must encode */
                same_as_generic(avro, enc_order, &x, r1, &e1);
                if (po_avro_direct_reads(avro) != reads)
                        read_as_generic(avro, dec_order, enc_order, p, n, &y, &e1);
        }
        po_dynbuf_release(&e1);
        po_order_release(&x);
        po_order_release(&y);
}

static void typed_codedef(po_avro_t *avro, const uint8_t *p, size_t n)
{
        char err[256];
        po_arena_t a;
        po_codedef_t x, y;
        po_dynbuf_t e1, e2;
        po_err_t r1, r2 = PO_ERR_INVALID_ARG;
        int64_t fp;

        po_arena_init(&a, ARENA_LIMIT);
        po_dynbuf_init(&e1, 64u << 20);
        po_dynbuf_init(&e2, 64u << 20);
        if (po_codedef_decode(avro, p, n, &a, &x, err, sizeof(err)) == PO_OK) {
                r1 = po_codedef_encode(avro, &x, &e1, err, sizeof(err));
                same_as_generic(avro, enc_codedef, &x, r1, &e1);
                if (!r1 && po_codedef_decode(avro, e1.data, e1.len, &a, &y, err,
                                             sizeof(err)) == PO_OK)
                        r2 = po_codedef_encode(avro, &y, &e2, err, sizeof(err));
                same_encoding(r1, r2, &e1, &e2);
                /* And the JSON face accepts what Avro did, unchanged. */
                if (po_codedef_to_json(&x, &e1) != PO_OK ||
                    po_codedef_from_json(e1.data, e1.len, &a, &y, err, sizeof(err)) !=
                        PO_OK ||
                    po_codedef_encode(avro, &y, &e2, err, sizeof(err)) != PO_OK ||
                    po_codedef_fingerprint(avro, &x, &fp) != PO_OK)
                        abort();
                po_dynbuf_reset(&e1);
                if (po_codedef_encode(avro, &x, &e1, err, sizeof(err)) != PO_OK)
                        abort();
                same_encoding(PO_OK, PO_OK, &e1, &e2);
        } else if (!err[0]) {
                abort(); /* an error says why */
        }
        po_dynbuf_release(&e1);
        po_dynbuf_release(&e2);
        po_arena_release(&a);
}

static void typed_validated(po_avro_t *avro, const uint8_t *p, size_t n)
{
        uint64_t reads = po_avro_direct_reads(avro);
        char err[256];
        po_validated_t x, y;
        po_dynbuf_t e1, e2;
        po_err_t r1, r2 = PO_ERR_INVALID_ARG;

        po_order_init(&x.order, ARENA_LIMIT);
        po_order_init(&y.order, ARENA_LIMIT);
        po_dynbuf_init(&e1, 64u << 20);
        po_dynbuf_init(&e2, 64u << 20);
        if (po_validated_decode(avro, p, n, &x, err, sizeof(err)) == PO_OK) {
                r1 = po_validated_encode(avro, &x, &e1, err, sizeof(err));
                same_as_generic(avro, enc_validated, &x, r1, &e1);
                if (r1 != PO_OK)
                        abort(); /* decoded, so it must encode */
                if (po_avro_direct_reads(avro) != reads)
                        read_as_generic(avro, dec_validated, enc_validated, p, n, &y,
                                        &e1);
                if (!r1 && po_validated_decode(avro, e1.data, e1.len, &y, err,
                                               sizeof(err)) == PO_OK)
                        r2 = po_validated_encode(avro, &y, &e2, err, sizeof(err));
                same_encoding(r1, r2, &e1, &e2);
        } else if (!err[0] || x.decisions || x.line_stock) {
                abort();
        }
        po_dynbuf_release(&e1);
        po_dynbuf_release(&e2);
        po_order_release(&x.order);
        po_order_release(&y.order);
}

static void typed_priced(po_avro_t *avro, const uint8_t *p, size_t n)
{
        char err[256];
        po_arena_t a;
        po_priced_t x, y;
        po_dynbuf_t e1, e2;
        po_err_t r1, r2 = PO_ERR_INVALID_ARG;

        po_arena_init(&a, ARENA_LIMIT);
        po_dynbuf_init(&e1, 64u << 20);
        po_dynbuf_init(&e2, 64u << 20);
        if (po_priced_decode(avro, p, n, &a, &x, err, sizeof(err)) == PO_OK) {
                r1 = po_priced_encode(avro, &x, &e1, err, sizeof(err));
                same_as_generic(avro, enc_priced, &x, r1, &e1);
                if (!r1 && po_priced_decode(avro, e1.data, e1.len, &a, &y, err,
                                            sizeof(err)) == PO_OK)
                        r2 = po_priced_encode(avro, &y, &e2, err, sizeof(err));
                same_encoding(r1, r2, &e1, &e2);
        } else if (!err[0]) {
                abort();
        }
        po_dynbuf_release(&e1);
        po_dynbuf_release(&e2);
        po_arena_release(&a);
}

static void typed_usage(po_avro_t *avro, const uint8_t *p, size_t n)
{
        char err[256];
        po_arena_t a;
        po_usage_event_t x, y;
        po_dynbuf_t e1, e2;
        po_err_t r1, r2 = PO_ERR_INVALID_ARG;

        po_arena_init(&a, ARENA_LIMIT);
        po_dynbuf_init(&e1, 64u << 20);
        po_dynbuf_init(&e2, 64u << 20);
        if (po_usage_decode(avro, p, n, &a, &x, err, sizeof(err)) == PO_OK) {
                r1 = po_usage_encode(avro, &x, &e1, err, sizeof(err));
                same_as_generic(avro, enc_usage, &x, r1, &e1);
                if (!r1 && po_usage_decode(avro, e1.data, e1.len, &a, &y, err,
                                           sizeof(err)) == PO_OK)
                        r2 = po_usage_encode(avro, &y, &e2, err, sizeof(err));
                same_encoding(r1, r2, &e1, &e2);
        } else if (!err[0]) {
                abort();
        }
        po_dynbuf_release(&e1);
        po_dynbuf_release(&e2);
        po_arena_release(&a);
}

static void typed(po_avro_t *avro, const uint8_t *p, size_t n)
{
        typed_order(avro, p, n);
        typed_codedef(avro, p, n);
        typed_validated(avro, p, n);
        typed_priced(avro, p, n);
        typed_usage(avro, p, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static po_avro_t *avro;
        char err[256];
        po_avro_info_t info;
        po_deadletter_t dl;
        uint8_t *m;
        size_t i;
        int k;

        if (!avro) {
                avro = po_avro_new(err, sizeof(err));
                if (!avro)
                        abort();
        }
        for (i = 0; i < po_avro_count(avro); i++) {
                po_avro_info(avro, i, &info);
                if (info.version == 0)
                        decode_as(avro, info.name, data, size);
        }
        if (size >= 1) {
                po_avro_info(avro, data[0] % po_avro_count(avro), &info);
                m = malloc(PO_AVRO_HEADER_SIZE + size - 1);
                if (!m)
                        return 0;
                m[0] = 0xc3;
                m[1] = 0x01;
                for (k = 0; k < 8; k++)
                        m[2 + k] = (uint8_t)(info.fingerprint >> (8 * k));
                memcpy(m + PO_AVRO_HEADER_SIZE, data + 1, size - 1);
                decode_as(avro, info.name, m, PO_AVRO_HEADER_SIZE + size - 1);
                typed(avro, m, PO_AVRO_HEADER_SIZE + size - 1);
                free(m);
        }
        typed(avro, data, size);
        if (po_avro_decode_deadletter(avro, data, size, &dl, err, sizeof(err)) == PO_OK) {
                if (!dl.stage || !dl.original_value)
                        abort();
                po_deadletter_release(&dl);
        }
        return 0;
}
