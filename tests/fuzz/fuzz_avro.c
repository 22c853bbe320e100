/* libFuzzer harness for po_avro's decoder: any bytes in, a value or a clear
 * error out, never a crash, a leak, a hang or undefined behaviour.
 *
 * Each input is tried three ways:
 *   1. as a whole message, decoded as every schema name;
 *   2. as header + datum: the first byte picks a schema version of the
 *      registry and the rest is its datum behind that version's header, so
 *      the fuzzer explores the datum checks instead of guessing fingerprints;
 *   3. as a DeadLetter through the typed decoder.
 * A message that decodes must re-encode, and the re-encoding must decode to
 * an equal value. Built and run by scripts/fuzz. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "po/avro.h"

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
                free(m);
        }
        if (po_avro_decode_deadletter(avro, data, size, &dl, err, sizeof(err)) == PO_OK) {
                if (!dl.stage || !dl.original_value)
                        abort();
                po_deadletter_release(&dl);
        }
        return 0;
}
