/* po_avro: the project's Avro messages (schemas/<Name>.avsc) on the wire.
 *
 * Every Kafka value the pipeline writes is one Avro "single-object encoding":
 *
 *     0xC3 0x01 | CRC-64-AVRO fingerprint of the writer schema's Parsing
 *     Canonical Form, 8 bytes little-endian | the Avro binary datum
 *
 * The schemas are compiled into the library (CMake turns schemas/<Name>.avsc and
 * schemas/history/<Name>.<n>.avsc into a C source); nothing is read from disk
 * at run time. A registry (po_avro_t) knows the current version of every
 * schema and every historic one, each by its fingerprint, so data written by
 * an older producer is still read, resolved into today's schema with the
 * defaults of the fields added since (docs/avro.md has the evolution rule).
 *
 * Decoding treats every byte as hostile: before avro-c sees a datum, the
 * writer schema is walked over it and every varint, length, count, union and
 * enum index is checked against the bytes that remain, so a bad message is an
 * error naming the byte at fault, never a crash, a hang or a large
 * allocation. A registry is immutable after po_avro_new, but avro-c keeps
 * its error message in static buffers: keep a registry, and the values made
 * from it, to one thread.
 */
#ifndef PO_AVRO_H
#define PO_AVRO_H

#include <stddef.h>
#include <stdint.h>

#include <avro.h>

#include "po/dynbuf.h"
#include "po/err.h"

/* The bytes before the datum: magic 0xC3 0x01 and the 8-byte fingerprint. */
#define PO_AVRO_HEADER_SIZE 10
/* Decoding limits (hostile input): nesting of complex types, and array items
 * plus map entries in one message. */
#define PO_AVRO_MAX_DEPTH 64
#define PO_AVRO_MAX_ITEMS 1000000

typedef struct po_avro po_avro_t;

/* One schema text: the current version (version 0, from schemas/<name>.avsc)
 * or a historic one (version n >= 1, from schemas/history/<name>.<n>.avsc). */
typedef struct po_avro_source {
        const char *name; /* the record's short name, e.g. "Order" */
        int version;
        const char *json; /* the .avsc text, NUL-terminated */
        size_t json_len;  /* bytes, without the NUL */
} po_avro_source_t;

/* What the registry knows about one schema version (po_avro_info). Every
 * pointer is owned by the registry and valid until po_avro_destroy. */
typedef struct po_avro_info {
        const char *name;      /* short name, "Order" */
        const char *fullname;  /* "com.promo_oms.Order" */
        int version;           /* 0 = current */
        uint64_t fingerprint;  /* CRC-64-AVRO of canonical */
        const char *canonical; /* Parsing Canonical Form */
        const char *json;      /* the full schema: full names, referenced schemas
                                  inlined, docs and defaults kept */
        avro_schema_t schema;  /* avro-c's parse of canonical */
} po_avro_info_t;

/* ---- schemas and fingerprints ---- */

/* The schema texts compiled into the library (generated at build time from
 * schemas/), current versions first. Sets *count; the array is static. */
const po_avro_source_t *po_avro_embedded_sources(size_t *count);

/* CRC-64-AVRO (the Rabin fingerprint of the Avro specification) of buf. */
uint64_t po_avro_crc64(const void *buf, size_t len);

/* Appends to out the Parsing Canonical Form (Avro specification, "Parsing
 * Canonical Form for Schemas") of the self-contained schema in
 * json[0..len). Returns PO_ERR_BAD_INPUT with a message in errstr when the
 * JSON or the schema is malformed; when out fails, po_dynbuf's error
 * (PO_ERR_NOMEM, or PO_ERR_INVALID_ARG past its limit). */
po_err_t po_avro_canonical_form(const char *json, size_t len, po_dynbuf_t *out,
                                char *errstr, size_t errstr_size);

/* Sets *fp to the CRC-64-AVRO of the canonical form of json[0..len). Errors
 * as po_avro_canonical_form. */
po_err_t po_avro_fingerprint(const char *json, size_t len, uint64_t *fp, char *errstr,
                             size_t errstr_size);

/* ---- the registry ---- */

/* Builds a registry of the embedded schemas. Returns NULL with a message in
 * errstr when a schema does not parse, two versions share a fingerprint, a
 * historic version cannot be resolved into the current one, or a default does
 * not fit its field. Destroy with po_avro_destroy. */
po_avro_t *po_avro_new(char *errstr, size_t errstr_size);

/* Same, from the n sources in src (copied; src may be freed afterwards). A
 * current schema may name the top-level record of another current source (it
 * is inlined); a historic one must be self-contained. Each historic version
 * needs a current version of the same name. For tests and tools. */
po_avro_t *po_avro_new_from_sources(const po_avro_source_t *src, size_t n, char *errstr,
                                    size_t errstr_size);

/* Frees the registry and its schemas. Accepts NULL. Values created from it
 * hold their own references and stay valid. */
void po_avro_destroy(po_avro_t *avro);

/* The current schema called name ("Order"), or NULL. Borrowed: valid until
 * po_avro_destroy; avro_schema_incref it to keep it longer. */
avro_schema_t po_avro_schema(po_avro_t *avro, const char *name);

/* The schema called name at version (0 = current), or NULL. Borrowed. */
avro_schema_t po_avro_schema_version(po_avro_t *avro, const char *name, int version);

/* Creates an empty avro-c generic value of schema name at version (0 =
 * current) in *out, for building a message. The caller owns it and releases
 * it with avro_value_decref. Returns PO_ERR_INVALID_ARG for an unknown
 * schema, PO_ERR_NOMEM. */
po_err_t po_avro_value_new(po_avro_t *avro, const char *name, int version,
                           avro_value_t *out);

/* The number of schema versions in the registry, and the i-th one's info
 * (0 <= i < count, current versions first). */
size_t po_avro_count(const po_avro_t *avro);
po_err_t po_avro_info(const po_avro_t *avro, size_t i, po_avro_info_t *out);

/* ---- the wire format ---- */

/* Appends to out the single-object encoding of value with the current
 * schema called name. value must be of that schema (a value from
 * po_avro_value_new, or any value whose schema is equal); it is not changed.
 * The encoding is checked with the decoder's own rules before it is appended,
 * so nothing is written that po_avro_decode would refuse (a union with no
 * branch set, a string that is not UTF-8 or holds a NUL...).
 * Returns PO_ERR_INVALID_ARG (message in errstr) for an unknown schema or a
 * value that does not fit it, PO_ERR_NOMEM or PO_ERR_INVALID_ARG when out
 * failed (it is then released, as po_dynbuf does). */
po_err_t po_avro_encode(po_avro_t *avro, const char *name, avro_value_t *value,
                        po_dynbuf_t *out, char *errstr, size_t errstr_size);

/* po_avro_encode with the historic version of name (0 = current): what an
 * old producer wrote. For tests, tools and replays; services write current. */
po_err_t po_avro_encode_version(po_avro_t *avro, const char *name, int version,
                                avro_value_t *value, po_dynbuf_t *out, char *errstr,
                                size_t errstr_size);

/* Decodes the single-object encoding buf[0..len) into *out, a new generic
 * value of the current schema called expected_name; a message written with
 * a historic version is resolved into the current one (fields added since
 * take their defaults). The caller owns *out and releases it with
 * avro_value_decref; on error *out is left empty ({NULL, NULL}) and needs
 * nothing. Returns PO_ERR_BAD_INPUT with a message naming the fault and its
 * byte offset ("bad magic", "unknown schema fingerprint 0x...", "truncated
 * string at byte 37", "message is a DeadLetter, expected Order"...),
 * PO_ERR_INVALID_ARG for an unknown expected_name, PO_ERR_NOMEM. */
po_err_t po_avro_decode(po_avro_t *avro, const char *expected_name, const void *buf,
                        size_t len, avro_value_t *out, char *errstr, size_t errstr_size);

/* Reads only the header of buf[0..len): sets *name (borrowed from the
 * registry) and *version of the writer schema. PO_ERR_BAD_INPUT for a bad
 * magic, a short header or an unknown fingerprint. */
po_err_t po_avro_peek(po_avro_t *avro, const void *buf, size_t len, const char **name,
                      int *version, char *errstr, size_t errstr_size);

/* avro_value_get_by_name(rec, name, out, NULL) of a record value, with the
 * field's index remembered per thread for the (schema, name) pair, so that
 * the codecs' field accesses by name skip avro-c's hash lookup after the
 * first. name is compared in full on every hit, so any string will do.
 * Returns 0, or avro-c's error (unknown field: message in avro_strerror()). */
int po_avro_get_field(avro_value_t *rec, const char *name, avro_value_t *out);

/* Checks that datum[0..len) is exactly one well-formed Avro binary datum of
 * schema (no header): the pre-validation po_avro_decode runs before avro-c
 * reads anything. PO_OK or PO_ERR_BAD_INPUT with the fault in errstr. */
po_err_t po_avro_check_datum(avro_schema_t schema, const void *datum, size_t len,
                             char *errstr, size_t errstr_size);

/* ---- typed messages ---- */

/* A Kafka header; value is NULL with has_value 0 for a header without value. */
typedef struct po_header {
        const char *key;
        const void *value;
        size_t value_len;
        int has_value;
} po_header_t;

/* schemas/DeadLetter.avsc in C. Times are milliseconds since the epoch. */
typedef struct po_deadletter {
        const char *stage;
        const char *source_topic;
        int32_t partition;
        int64_t offset;
        const char *reason_code;
        const char *error;
        int32_t attempts;
        int64_t first_failure_ms;
        int64_t last_failure_ms;
        int64_t priority;
        const void *original_key;
        size_t original_key_len;
        int has_original_key;
        const void *original_value;
        size_t original_value_len;
        const po_header_t *headers;
        size_t header_count;
} po_deadletter_t;

/* Zeroes dl. No allocation. */
void po_deadletter_init(po_deadletter_t *dl);

/* Frees what po_avro_decode_deadletter allocated in dl and zeroes it. Only
 * for a struct filled by the decoder (or zeroed by po_deadletter_init);
 * accepts NULL. */
void po_deadletter_release(po_deadletter_t *dl);

/* Appends the encoding of dl (current DeadLetter schema) to out. dl is only
 * read; stage, source_topic, reason_code and error must not be NULL, and
 * original_value may be NULL only when original_value_len is 0. Errors as
 * po_avro_encode. */
po_err_t po_avro_encode_deadletter(po_avro_t *avro, const po_deadletter_t *dl,
                                   po_dynbuf_t *out, char *errstr, size_t errstr_size);

/* Decodes a DeadLetter message into *out, which then owns copies of every
 * string and byte buffer (strings NUL-terminated; byte buffers never NULL
 * when present and followed by a NUL not counted in their length): release
 * it with po_deadletter_release. On error *out is zeroed and needs no
 * release. Errors as po_avro_decode. */
po_err_t po_avro_decode_deadletter(po_avro_t *avro, const void *buf, size_t len,
                                   po_deadletter_t *out, char *errstr,
                                   size_t errstr_size);

#endif
