#include "po/avro.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "po/avro_wire.h"
#include "po/utf8.h"

/* Schemas live as long as their registry, and a new one may get the address
 * of a freed one: every registry created or destroyed starts a new
 * generation of po_avro_get_field's cache, whose older slots are misses. */
static atomic_uint field_generation = 1;

typedef struct po_avro_prog po_avro_prog_t;

/* The schema versions of a registry. History entries carry what resolving
 * into the current version needs; see decode_historic. */
typedef struct entry {
        char *name;     /* short name, "Order" */
        char *fullname; /* "com.promo_oms.Order" */
        int version;    /* 0: current */
        char *label;    /* "schemas/history/Order.1.avsc", for messages */
        uint64_t fingerprint;
        char *canonical; /* Parsing Canonical Form */
        char *json;      /* norm as text, what avro-c parsed */
        json_t *src;     /* the .avsc as parsed */
        json_t *norm;    /* full names, imports inlined, attributes kept */
        json_t *defs;    /* full name -> named type definition inside norm */
        int state;       /* normalization: 0 to do, 1 in progress, 2 done */
        avro_schema_t schema;
        avro_value_iface_t *iface; /* generic values of schema */
        struct po_avro_prog *prog; /* schema compiled for check_datum */
        size_t last_size;          /* of the last datum encoded: room to try first */
        /* history only */
        struct entry *current;
        avro_schema_t projected; /* current minus the fields this version lacks */
        avro_value_iface_t *proj_iface;
        avro_value_iface_t *resolver; /* avro-c resolved writer: schema -> projected */
} entry_t;

struct po_avro {
        entry_t *entries; /* current versions first */
        size_t count;
        avro_writer_t writer;   /* reused by every encode; NULL until the first */
        avro_reader_t reader;   /* reused by every decode; NULL until the first */
        int generic_only;       /* po_avro_set_direct(avro, 0) */
        uint64_t direct_writes; /* messages the direct writers wrote */
        uint64_t direct_reads;  /* messages the direct readers read */
};

/* An error message sink; s == NULL makes failures quiet (union matching). */
typedef struct perr {
        char *s;
        size_t n;
} perr_t;

static int fail(perr_t *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(perr_t *e, const char *fmt, ...)
{
        va_list ap;

        if (e && e->s && e->n) {
                va_start(ap, fmt);
                vsnprintf(e->s, e->n, fmt, ap);
                va_end(ap);
        }
        return -1;
}

/* Puts "<prefix>: " in front of the message already in e. */
static int fail_prefix(perr_t *e, const char *prefix)
{
        char tmp[512];

        if (!e || !e->s || !e->n)
                return -1;
        snprintf(tmp, sizeof(tmp), "%s", e->s);
        snprintf(e->s, e->n, "%s: %s", prefix, tmp);
        return -1;
}

static char *dup_str(const char *s)
{
        size_t n = strlen(s) + 1;
        char *p = malloc(n);

        if (p)
                memcpy(p, s, n);
        return p;
}

/* ------------------------------------------------------------------------
 * CRC-64-AVRO
 */

/* The Avro specification's table: for i in 0..255, fp = i, then 8 times
 * fp = (fp >> 1) ^ (EMPTY & -(fp & 1)) with EMPTY = 0xc15d213aa4d7a795
 * (check_avro recomputes it and compares). A constant, not a lazily filled
 * global, so there is nothing to initialise and nothing to race on. */
static const uint64_t crc64_table[256] = {
    0x0000000000000000ULL, 0x2cf1cba6b75351faULL, 0x59e3974d6ea6a3f4ULL,
    0x75125cebd9f5f20eULL, 0xb3c72e9add4d47e8ULL, 0x9f36e53c6a1e1612ULL,
    0xea24b9d7b3ebe41cULL, 0xc6d5727104b8b5e6ULL, 0xe5341f40f335c0fbULL,
    0xc9c5d4e644669101ULL, 0xbcd7880d9d93630fULL, 0x902643ab2ac032f5ULL,
    0x56f331da2e788713ULL, 0x7a02fa7c992bd6e9ULL, 0x0f10a69740de24e7ULL,
    0x23e16d31f78d751dULL, 0x48d27cf4afc4ceddULL, 0x6423b75218979f27ULL,
    0x1131ebb9c1626d29ULL, 0x3dc0201f76313cd3ULL, 0xfb15526e72898935ULL,
    0xd7e499c8c5dad8cfULL, 0xa2f6c5231c2f2ac1ULL, 0x8e070e85ab7c7b3bULL,
    0xade663b45cf10e26ULL, 0x8117a812eba25fdcULL, 0xf405f4f93257add2ULL,
    0xd8f43f5f8504fc28ULL, 0x1e214d2e81bc49ceULL, 0x32d0868836ef1834ULL,
    0x47c2da63ef1aea3aULL, 0x6b3311c55849bbc0ULL, 0x91a4f9e95f899dbaULL,
    0xbd55324fe8dacc40ULL, 0xc8476ea4312f3e4eULL, 0xe4b6a502867c6fb4ULL,
    0x2263d77382c4da52ULL, 0x0e921cd535978ba8ULL, 0x7b80403eec6279a6ULL,
    0x57718b985b31285cULL, 0x7490e6a9acbc5d41ULL, 0x58612d0f1bef0cbbULL,
    0x2d7371e4c21afeb5ULL, 0x0182ba427549af4fULL, 0xc757c83371f11aa9ULL,
    0xeba60395c6a24b53ULL, 0x9eb45f7e1f57b95dULL, 0xb24594d8a804e8a7ULL,
    0xd976851df04d5367ULL, 0xf5874ebb471e029dULL, 0x809512509eebf093ULL,
    0xac64d9f629b8a169ULL, 0x6ab1ab872d00148fULL, 0x464060219a534575ULL,
    0x33523cca43a6b77bULL, 0x1fa3f76cf4f5e681ULL, 0x3c429a5d0378939cULL,
    0x10b351fbb42bc266ULL, 0x65a10d106dde3068ULL, 0x4950c6b6da8d6192ULL,
    0x8f85b4c7de35d474ULL, 0xa3747f616966858eULL, 0xd666238ab0937780ULL,
    0xfa97e82c07c0267aULL, 0xa1f3b1a7f6bc745fULL, 0x8d027a0141ef25a5ULL,
    0xf81026ea981ad7abULL, 0xd4e1ed4c2f498651ULL, 0x12349f3d2bf133b7ULL,
    0x3ec5549b9ca2624dULL, 0x4bd7087045579043ULL, 0x6726c3d6f204c1b9ULL,
    0x44c7aee70589b4a4ULL, 0x68366541b2dae55eULL, 0x1d2439aa6b2f1750ULL,
    0x31d5f20cdc7c46aaULL, 0xf700807dd8c4f34cULL, 0xdbf14bdb6f97a2b6ULL,
    0xaee31730b66250b8ULL, 0x8212dc9601310142ULL, 0xe921cd535978ba82ULL,
    0xc5d006f5ee2beb78ULL, 0xb0c25a1e37de1976ULL, 0x9c3391b8808d488cULL,
    0x5ae6e3c98435fd6aULL, 0x7617286f3366ac90ULL, 0x03057484ea935e9eULL,
    0x2ff4bf225dc00f64ULL, 0x0c15d213aa4d7a79ULL, 0x20e419b51d1e2b83ULL,
    0x55f6455ec4ebd98dULL, 0x79078ef873b88877ULL, 0xbfd2fc8977003d91ULL,
    0x9323372fc0536c6bULL, 0xe6316bc419a69e65ULL, 0xcac0a062aef5cf9fULL,
    0x3057484ea935e9e5ULL, 0x1ca683e81e66b81fULL, 0x69b4df03c7934a11ULL,
    0x454514a570c01bebULL, 0x839066d47478ae0dULL, 0xaf61ad72c32bfff7ULL,
    0xda73f1991ade0df9ULL, 0xf6823a3fad8d5c03ULL, 0xd563570e5a00291eULL,
    0xf9929ca8ed5378e4ULL, 0x8c80c04334a68aeaULL, 0xa0710be583f5db10ULL,
    0x66a47994874d6ef6ULL, 0x4a55b232301e3f0cULL, 0x3f47eed9e9ebcd02ULL,
    0x13b6257f5eb89cf8ULL, 0x788534ba06f12738ULL, 0x5474ff1cb1a276c2ULL,
    0x2166a3f7685784ccULL, 0x0d976851df04d536ULL, 0xcb421a20dbbc60d0ULL,
    0xe7b3d1866cef312aULL, 0x92a18d6db51ac324ULL, 0xbe5046cb024992deULL,
    0x9db12bfaf5c4e7c3ULL, 0xb140e05c4297b639ULL, 0xc452bcb79b624437ULL,
    0xe8a377112c3115cdULL, 0x2e7605602889a02bULL, 0x0287cec69fdaf1d1ULL,
    0x7795922d462f03dfULL, 0x5b64598bf17c5225ULL, 0xc15d213aa4d7a795ULL,
    0xedacea9c1384f66fULL, 0x98beb677ca710461ULL, 0xb44f7dd17d22559bULL,
    0x729a0fa0799ae07dULL, 0x5e6bc406cec9b187ULL, 0x2b7998ed173c4389ULL,
    0x0788534ba06f1273ULL, 0x24693e7a57e2676eULL, 0x0898f5dce0b13694ULL,
    0x7d8aa9373944c49aULL, 0x517b62918e179560ULL, 0x97ae10e08aaf2086ULL,
    0xbb5fdb463dfc717cULL, 0xce4d87ade4098372ULL, 0xe2bc4c0b535ad288ULL,
    0x898f5dce0b136948ULL, 0xa57e9668bc4038b2ULL, 0xd06cca8365b5cabcULL,
    0xfc9d0125d2e69b46ULL, 0x3a487354d65e2ea0ULL, 0x16b9b8f2610d7f5aULL,
    0x63abe419b8f88d54ULL, 0x4f5a2fbf0fabdcaeULL, 0x6cbb428ef826a9b3ULL,
    0x404a89284f75f849ULL, 0x3558d5c396800a47ULL, 0x19a91e6521d35bbdULL,
    0xdf7c6c14256bee5bULL, 0xf38da7b29238bfa1ULL, 0x869ffb594bcd4dafULL,
    0xaa6e30fffc9e1c55ULL, 0x50f9d8d3fb5e3a2fULL, 0x7c0813754c0d6bd5ULL,
    0x091a4f9e95f899dbULL, 0x25eb843822abc821ULL, 0xe33ef64926137dc7ULL,
    0xcfcf3def91402c3dULL, 0xbadd610448b5de33ULL, 0x962caaa2ffe68fc9ULL,
    0xb5cdc793086bfad4ULL, 0x993c0c35bf38ab2eULL, 0xec2e50de66cd5920ULL,
    0xc0df9b78d19e08daULL, 0x060ae909d526bd3cULL, 0x2afb22af6275ecc6ULL,
    0x5fe97e44bb801ec8ULL, 0x7318b5e20cd34f32ULL, 0x182ba427549af4f2ULL,
    0x34da6f81e3c9a508ULL, 0x41c8336a3a3c5706ULL, 0x6d39f8cc8d6f06fcULL,
    0xabec8abd89d7b31aULL, 0x871d411b3e84e2e0ULL, 0xf20f1df0e77110eeULL,
    0xdefed65650224114ULL, 0xfd1fbb67a7af3409ULL, 0xd1ee70c110fc65f3ULL,
    0xa4fc2c2ac90997fdULL, 0x880de78c7e5ac607ULL, 0x4ed895fd7ae273e1ULL,
    0x62295e5bcdb1221bULL, 0x173b02b01444d015ULL, 0x3bcac916a31781efULL,
    0x60ae909d526bd3caULL, 0x4c5f5b3be5388230ULL, 0x394d07d03ccd703eULL,
    0x15bccc768b9e21c4ULL, 0xd369be078f269422ULL, 0xff9875a13875c5d8ULL,
    0x8a8a294ae18037d6ULL, 0xa67be2ec56d3662cULL, 0x859a8fdda15e1331ULL,
    0xa96b447b160d42cbULL, 0xdc791890cff8b0c5ULL, 0xf088d33678abe13fULL,
    0x365da1477c1354d9ULL, 0x1aac6ae1cb400523ULL, 0x6fbe360a12b5f72dULL,
    0x434ffdaca5e6a6d7ULL, 0x287cec69fdaf1d17ULL, 0x048d27cf4afc4cedULL,
    0x719f7b249309bee3ULL, 0x5d6eb082245aef19ULL, 0x9bbbc2f320e25affULL,
    0xb74a095597b10b05ULL, 0xc25855be4e44f90bULL, 0xeea99e18f917a8f1ULL,
    0xcd48f3290e9addecULL, 0xe1b9388fb9c98c16ULL, 0x94ab6464603c7e18ULL,
    0xb85aafc2d76f2fe2ULL, 0x7e8fddb3d3d79a04ULL, 0x527e16156484cbfeULL,
    0x276c4afebd7139f0ULL, 0x0b9d81580a22680aULL, 0xf10a69740de24e70ULL,
    0xddfba2d2bab11f8aULL, 0xa8e9fe396344ed84ULL, 0x8418359fd417bc7eULL,
    0x42cd47eed0af0998ULL, 0x6e3c8c4867fc5862ULL, 0x1b2ed0a3be09aa6cULL,
    0x37df1b05095afb96ULL, 0x143e7634fed78e8bULL, 0x38cfbd924984df71ULL,
    0x4ddde17990712d7fULL, 0x612c2adf27227c85ULL, 0xa7f958ae239ac963ULL,
    0x8b08930894c99899ULL, 0xfe1acfe34d3c6a97ULL, 0xd2eb0445fa6f3b6dULL,
    0xb9d81580a22680adULL, 0x9529de261575d157ULL, 0xe03b82cdcc802359ULL,
    0xccca496b7bd372a3ULL, 0x0a1f3b1a7f6bc745ULL, 0x26eef0bcc83896bfULL,
    0x53fcac5711cd64b1ULL, 0x7f0d67f1a69e354bULL, 0x5cec0ac051134056ULL,
    0x701dc166e64011acULL, 0x050f9d8d3fb5e3a2ULL, 0x29fe562b88e6b258ULL,
    0xef2b245a8c5e07beULL, 0xc3daeffc3b0d5644ULL, 0xb6c8b317e2f8a44aULL,
    0x9a3978b155abf5b0ULL,
};

uint64_t po_avro_crc64(const void *buf, size_t len)
{
        const unsigned char *p = buf;
        uint64_t fp = 0xc15d213aa4d7a795ULL;
        size_t i;

        for (i = 0; i < len; i++)
                fp = (fp >> 8) ^ crc64_table[(fp ^ p[i]) & 0xff];
        return fp;
}

/* ------------------------------------------------------------------------
 * Schemas as JSON: normalization (full names, imports) and canonical form
 */

#define MAX_NAME 512

static const char *const primitives[] = {"null",  "boolean", "int",   "long",
                                         "float", "double",  "bytes", "string"};

static int is_primitive(const char *s)
{
        size_t i;

        for (i = 0; i < sizeof(primitives) / sizeof(primitives[0]); i++)
                if (strcmp(s, primitives[i]) == 0)
                        return 1;
        return 0;
}

/* [A-Za-z_][A-Za-z0-9_]* */
static int valid_name(const char *s, size_t len)
{
        size_t i;

        if (len == 0)
                return 0;
        for (i = 0; i < len; i++) {
                char c = s[i];
                int alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';

                if (!alpha && (i == 0 || c < '0' || c > '9'))
                        return 0;
        }
        return 1;
}

/* Dot-separated names. */
static int valid_fullname(const char *s)
{
        const char *dot;

        for (;;) {
                dot = strchr(s, '.');
                if (!valid_name(s, dot ? (size_t)(dot - s) : strlen(s)))
                        return 0;
                if (!dot)
                        return 1;
                s = dot + 1;
        }
}

typedef struct loader loader_t;

typedef struct norm {
        json_t *defs;     /* full name -> definition in the output tree */
        loader_t *loader; /* resolves names of other current schemas; may be NULL */
        perr_t *e;
} norm_t;

static int loader_import(loader_t *l, const char *fullname, json_t **def);
static json_t *norm_schema(norm_t *n, json_t *node, const char *ns, int depth);

/* Records every named type of an already normalized tree (an import). */
static int register_tree(norm_t *n, json_t *node, int depth)
{
        const char *type, *name;
        json_t *v;
        size_t i;

        if (depth > PO_AVRO_MAX_DEPTH)
                return fail(n->e, "schema nested deeper than %d", PO_AVRO_MAX_DEPTH);
        if (json_is_array(node)) {
                json_array_foreach(node, i, v)
                {
                        if (register_tree(n, v, depth + 1))
                                return -1;
                }
                return 0;
        }
        if (!json_is_object(node))
                return 0;
        type = json_string_value(json_object_get(node, "type"));
        if (!type)
                return 0;
        if (strcmp(type, "record") == 0 || strcmp(type, "enum") == 0 ||
            strcmp(type, "fixed") == 0) {
                name = json_string_value(json_object_get(node, "name"));
                if (!name)
                        return fail(n->e, "named type without a name");
                if (json_object_get(n->defs, name))
                        return fail(n->e, "%s is defined twice", name);
                if (json_object_set(n->defs, name, node))
                        return fail(n->e, "out of memory");
        }
        if (strcmp(type, "record") == 0) {
                json_array_foreach(json_object_get(node, "fields"), i, v)
                {
                        if (register_tree(n, json_object_get(v, "type"), depth + 1))
                                return -1;
                }
        } else if (strcmp(type, "array") == 0) {
                return register_tree(n, json_object_get(node, "items"), depth + 1);
        } else if (strcmp(type, "map") == 0) {
                return register_tree(n, json_object_get(node, "values"), depth + 1);
        }
        return 0;
}

/* A type name used as a schema: a primitive, a named type defined earlier in
 * this schema, or the top-level record of another current schema (inlined
 * here, as the canonical form requires at its first use). */
static json_t *norm_ref(norm_t *n, const char *s, const char *ns)
{
        char full[MAX_NAME];
        json_t *def = NULL, *copy;

        if (is_primitive(s))
                return json_string(s);
        if (strchr(s, '.') || !ns[0])
                snprintf(full, sizeof(full), "%s", s);
        else
                snprintf(full, sizeof(full), "%s.%s", ns, s);
        if (json_object_get(n->defs, full))
                return json_string(full);
        if (!strchr(s, '.') && ns[0] && json_object_get(n->defs, s))
                return json_string(s); /* a name of the null namespace */
        if (n->loader) {
                if (loader_import(n->loader, full, &def))
                        return NULL;
                if (def) {
                        copy = json_deep_copy(def);
                        if (!copy) {
                                fail(n->e, "out of memory");
                                return NULL;
                        }
                        if (register_tree(n, copy, 0)) {
                                json_decref(copy);
                                return NULL;
                        }
                        return copy;
                }
        }
        fail(n->e, "unknown type %s", full);
        return NULL;
}

/* Copies every attribute of src to dst except those in skip (NULL-ended). */
static int copy_attrs(json_t *dst, json_t *src, const char *const *skip)
{
        const char *key;
        json_t *v;
        size_t i;

        json_object_foreach(src, key, v)
        {
                for (i = 0; skip[i]; i++)
                        if (strcmp(key, skip[i]) == 0)
                                break;
                if (!skip[i] && json_object_set(dst, key, v))
                        return -1;
        }
        return 0;
}

static int norm_field(norm_t *n, json_t *fo, json_t *f, const char *fname, const char *ns,
                      int depth)
{
        static const char *const skip[] = {"name", "type", NULL};
        json_t *nf, *t;

        if (!json_object_get(f, "type"))
                return fail(n->e, "field %s has no type", fname);
        t = norm_schema(n, json_object_get(f, "type"), ns, depth + 1);
        if (!t)
                return -1;
        nf = json_object();
        if (!nf || json_object_set_new(nf, "name", json_string(fname))) {
                json_decref(nf);
                json_decref(t);
                return fail(n->e, "out of memory");
        }
        if (json_object_set_new(nf, "type", t) || copy_attrs(nf, f, skip)) {
                json_decref(nf);
                return fail(n->e, "out of memory");
        }
        if (json_array_append_new(fo, nf))
                return fail(n->e, "out of memory");
        return 0;
}

static int norm_fields(norm_t *n, json_t *out, json_t *node, const char *ns, int depth)
{
        const char *rname = json_string_value(json_object_get(out, "name"));
        json_t *fields = json_object_get(node, "fields"), *seen, *fo, *f;
        const char *fname;
        size_t i;
        int rc = -1;

        if (!json_is_array(fields))
                return fail(n->e, "record %s needs a fields array", rname);
        seen = json_object();
        fo = json_array();
        if (!seen || !fo || json_object_set(out, "fields", fo)) {
                fail(n->e, "out of memory");
                goto done;
        }
        json_array_foreach(fields, i, f)
        {
                fname = json_string_value(json_object_get(f, "name"));
                if (!fname || !valid_name(fname, strlen(fname))) {
                        fail(n->e, "field %zu of %s has no valid name", i, rname);
                        goto done;
                }
                if (json_object_get(seen, fname)) {
                        fail(n->e, "field %s of %s appears twice", fname, rname);
                        goto done;
                }
                if (json_object_set(seen, fname, json_true())) {
                        fail(n->e, "out of memory");
                        goto done;
                }
                if (norm_field(n, fo, f, fname, ns, depth))
                        goto done;
        }
        rc = 0;
done:
        json_decref(seen);
        json_decref(fo);
        return rc;
}

static int norm_symbols(norm_t *n, json_t *out, json_t *node)
{
        const char *name = json_string_value(json_object_get(out, "name"));
        json_t *symbols = json_object_get(node, "symbols"), *v, *w, *dflt;
        const char *sym;
        size_t i, j;

        if (!json_is_array(symbols))
                return fail(n->e, "enum %s needs a symbols array", name);
        json_array_foreach(symbols, i, v)
        {
                sym = json_string_value(v);
                if (!sym || !valid_name(sym, strlen(sym)))
                        return fail(n->e, "enum %s: symbol %zu is not a valid name", name,
                                    i);
                for (j = 0; j < i; j++) {
                        w = json_array_get(symbols, j);
                        if (strcmp(json_string_value(w), sym) == 0)
                                return fail(n->e, "enum %s: symbol %s appears twice",
                                            name, sym);
                }
        }
        dflt = json_object_get(node, "default");
        if (dflt) {
                for (i = 0; i < json_array_size(symbols); i++)
                        if (json_equal(json_array_get(symbols, i), dflt))
                                break;
                if (i == json_array_size(symbols))
                        return fail(n->e, "enum %s: default is not one of its symbols",
                                    name);
        }
        return json_object_set(out, "symbols", symbols) ? fail(n->e, "out of memory") : 0;
}

/* A record, enum or fixed definition. ns is the enclosing namespace. */
static json_t *norm_named(norm_t *n, json_t *node, const char *type, const char *ns,
                          int depth)
{
        static const char *const skip[] = {"name",   "namespace", "type",
                                           "fields", "symbols",   NULL};
        const char *name = json_string_value(json_object_get(node, "name"));
        json_t *nsattr = json_object_get(node, "namespace"), *out = NULL, *size;
        char full[MAX_NAME], newns[MAX_NAME];
        const char *dot;
        int len;

        if (!name) {
                fail(n->e, "a %s needs a name", type);
                return NULL;
        }
        if (nsattr && !json_is_null(nsattr) && !json_is_string(nsattr)) {
                fail(n->e, "namespace of %s is not a string", name);
                return NULL;
        }
        dot = strrchr(name, '.');
        if (dot) {
                len = snprintf(full, sizeof(full), "%s", name);
                snprintf(newns, sizeof(newns), "%.*s", (int)(dot - name), name);
        } else {
                if (json_is_string(nsattr))
                        ns = json_string_value(nsattr);
                len = ns[0] ? snprintf(full, sizeof(full), "%s.%s", ns, name)
                            : snprintf(full, sizeof(full), "%s", name);
                snprintf(newns, sizeof(newns), "%s", ns);
        }
        if (len < 0 || (size_t)len >= sizeof(full) || !valid_fullname(full)) {
                fail(n->e, "invalid name \"%s\"", name);
                return NULL;
        }
        if (is_primitive(dot ? dot + 1 : name)) {
                fail(n->e, "a %s may not be called %s", type, name);
                return NULL;
        }
        if (json_object_get(n->defs, full)) {
                fail(n->e, "%s is defined twice", full);
                return NULL;
        }
        out = json_object();
        /* Registered before its fields: a record may refer to itself. */
        if (!out || json_object_set_new(out, "name", json_string(full)) ||
            json_object_set_new(out, "type", json_string(type)) ||
            json_object_set(n->defs, full, out)) {
                fail(n->e, "out of memory");
                goto error;
        }
        if (strcmp(type, "record") == 0) {
                if (norm_fields(n, out, node, newns, depth))
                        goto error;
        } else if (strcmp(type, "enum") == 0) {
                if (norm_symbols(n, out, node))
                        goto error;
        } else {
                size = json_object_get(node, "size");
                if (!json_is_integer(size) || json_integer_value(size) < 0 ||
                    json_integer_value(size) > INT32_MAX) {
                        fail(n->e, "fixed %s needs a size 0..2^31-1", full);
                        goto error;
                }
        }
        if (copy_attrs(out, node, skip)) {
                fail(n->e, "out of memory");
                goto error;
        }
        return out;
error:
        json_decref(out);
        return NULL;
}

/* Returns the normalized copy of the schema node (a new reference), or NULL
 * with the fault in n->e. ns: the enclosing namespace ("" for none). */
static json_t *norm_schema(norm_t *n, json_t *node, const char *ns, int depth)
{
        const char *type, *key;
        json_t *out, *v, *b;
        size_t i, j;

        if (depth > PO_AVRO_MAX_DEPTH) {
                fail(n->e, "schema nested deeper than %d", PO_AVRO_MAX_DEPTH);
                return NULL;
        }
        if (json_is_string(node))
                return norm_ref(n, json_string_value(node), ns);
        if (json_is_array(node)) {
                out = json_array();
                if (!out) {
                        fail(n->e, "out of memory");
                        return NULL;
                }
                json_array_foreach(node, i, v)
                {
                        b = norm_schema(n, v, ns, depth + 1);
                        if (!b)
                                goto error;
                        if (json_is_array(b)) {
                                json_decref(b);
                                fail(n->e, "a union may not contain a union");
                                goto error;
                        }
                        if (json_array_append_new(out, b)) {
                                fail(n->e, "out of memory");
                                goto error;
                        }
                }
                /* No two branches of the same type (or named type). */
                for (i = 0; i < json_array_size(out); i++) {
                        json_t *bi = json_array_get(out, i);
                        const char *ki =
                            json_is_string(bi)
                                ? json_string_value(bi)
                                : json_string_value(json_object_get(bi, "name"));

                        if (!ki)
                                ki = json_string_value(json_object_get(bi, "type"));
                        for (j = 0; j < i; j++) {
                                json_t *bj = json_array_get(out, j);
                                const char *kj =
                                    json_is_string(bj)
                                        ? json_string_value(bj)
                                        : json_string_value(json_object_get(bj, "name"));

                                if (!kj)
                                        kj = json_string_value(
                                            json_object_get(bj, "type"));
                                if (ki && kj && strcmp(ki, kj) == 0) {
                                        fail(n->e, "a union has two branches of type %s",
                                             ki);
                                        goto error;
                                }
                        }
                }
                return out;
        error:
                json_decref(out);
                return NULL;
        }
        if (!json_is_object(node)) {
                fail(n->e, "a schema must be a string, an array or an object");
                return NULL;
        }
        type = json_string_value(json_object_get(node, "type"));
        if (!type) {
                fail(n->e, "a schema object needs a string \"type\"");
                return NULL;
        }
        if (is_primitive(type))
                return json_deep_copy(node); /* logicalType and the like stay */
        if (strcmp(type, "record") == 0 || strcmp(type, "enum") == 0 ||
            strcmp(type, "fixed") == 0)
                return norm_named(n, node, type, ns, depth);
        if (strcmp(type, "array") == 0 || strcmp(type, "map") == 0) {
                key = type[0] == 'a' ? "items" : "values";
                if (!json_object_get(node, key)) {
                        fail(n->e, "an %s needs %s", type, key);
                        return NULL;
                }
                v = norm_schema(n, json_object_get(node, key), ns, depth + 1);
                if (!v)
                        return NULL;
                out = json_copy(node);
                if (!out || json_object_set_new(out, key, v)) {
                        json_decref(out);
                        fail(n->e, "out of memory");
                        return NULL;
                }
                return out;
        }
        fail(n->e, "unknown type %s", type);
        return NULL;
}

/* ---- Parsing Canonical Form of a normalized schema ---- */

static po_err_t canon_string(po_dynbuf_t *b, const char *s)
{
        po_err_t err = po_dynbuf_add(b, "\"", 1);

        for (; !err && *s; s++) {
                unsigned char c = (unsigned char)*s;

                if (c == '"' || c == '\\')
                        err = po_dynbuf_addf(b, "\\%c", c);
                else if (c < 0x20)
                        err = po_dynbuf_addf(b, "\\u%04x", c);
                else
                        err = po_dynbuf_add(b, s, 1);
        }
        return err ? err : po_dynbuf_add(b, "\"", 1);
}

static po_err_t canon(po_dynbuf_t *b, json_t *node)
{
        const char *type, *key;
        json_t *v;
        size_t i;
        po_err_t err = PO_OK;

        if (json_is_string(node))
                return canon_string(b, json_string_value(node));
        if (json_is_array(node)) {
                err = po_dynbuf_add(b, "[", 1);
                json_array_foreach(node, i, v)
                {
                        if (!err && i)
                                err = po_dynbuf_add(b, ",", 1);
                        if (!err)
                                err = canon(b, v);
                }
                return err ? err : po_dynbuf_add(b, "]", 1);
        }
        type = json_string_value(json_object_get(node, "type"));
        if (is_primitive(type))
                return canon_string(b, type);
        if (strcmp(type, "array") == 0 || strcmp(type, "map") == 0) {
                key = type[0] == 'a' ? "items" : "values";
                err = po_dynbuf_addf(b, "{\"type\":\"%s\",\"%s\":", type, key);
                if (!err)
                        err = canon(b, json_object_get(node, key));
                return err ? err : po_dynbuf_add(b, "}", 1);
        }
        err = po_dynbuf_add(b, "{\"name\":", 8);
        if (!err)
                err = canon_string(b, json_string_value(json_object_get(node, "name")));
        if (!err)
                err = po_dynbuf_addf(b, ",\"type\":\"%s\"", type);
        if (err)
                return err;
        if (strcmp(type, "record") == 0) {
                err = po_dynbuf_add(b, ",\"fields\":[", 11);
                json_array_foreach(json_object_get(node, "fields"), i, v)
                {
                        if (!err)
                                err = po_dynbuf_add(
                                    b, i ? ",{\"name\":" : "{\"name\":", i ? 9 : 8);
                        if (!err)
                                err = canon_string(
                                    b, json_string_value(json_object_get(v, "name")));
                        if (!err)
                                err = po_dynbuf_add(b, ",\"type\":", 8);
                        if (!err)
                                err = canon(b, json_object_get(v, "type"));
                        if (!err)
                                err = po_dynbuf_add(b, "}", 1);
                }
                if (!err)
                        err = po_dynbuf_add(b, "]", 1);
        } else if (strcmp(type, "enum") == 0) {
                err = po_dynbuf_add(b, ",\"symbols\":[", 12);
                json_array_foreach(json_object_get(node, "symbols"), i, v)
                {
                        if (!err && i)
                                err = po_dynbuf_add(b, ",", 1);
                        if (!err)
                                err = canon_string(b, json_string_value(v));
                }
                if (!err)
                        err = po_dynbuf_add(b, "]", 1);
        } else {
                err = po_dynbuf_addf(b, ",\"size\":%" JSON_INTEGER_FORMAT,
                                     json_integer_value(json_object_get(node, "size")));
        }
        return err ? err : po_dynbuf_add(b, "}", 1);
}

static json_t *parse_json(const char *json, size_t len, perr_t *e)
{
        json_error_t jerr;
        json_t *root = json_loadb(
            json, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);

        if (!root)
                fail(e, "line %d column %d: %s", jerr.line, jerr.column, jerr.text);
        return root;
}

po_err_t po_avro_canonical_form(const char *json, size_t len, po_dynbuf_t *out,
                                char *errstr, size_t errstr_size)
{
        perr_t e = {errstr, errstr_size};
        norm_t n = {NULL, NULL, &e};
        json_t *root, *norm = NULL;
        po_err_t err = PO_ERR_BAD_INPUT;

        root = parse_json(json, len, &e);
        if (!root)
                return PO_ERR_BAD_INPUT;
        n.defs = json_object();
        if (!n.defs) {
                err = PO_ERR_NOMEM;
                goto done;
        }
        norm = norm_schema(&n, root, "", 0);
        if (!norm)
                goto done;
        err = canon(out, norm);
        if (err)
                fail(&e, "canonical form: %s", po_err_str(err));
done:
        json_decref(norm);
        json_decref(n.defs);
        json_decref(root);
        return err;
}

po_err_t po_avro_fingerprint(const char *json, size_t len, uint64_t *fp, char *errstr,
                             size_t errstr_size)
{
        po_dynbuf_t b;
        po_err_t err;

        po_dynbuf_init(&b, 1u << 24);
        err = po_avro_canonical_form(json, len, &b, errstr, errstr_size);
        if (!err)
                *fp = po_avro_crc64(b.data, b.len);
        po_dynbuf_release(&b);
        return err;
}

/* ------------------------------------------------------------------------
 * The registry: loading, imports, compatibility of historic versions
 */

struct loader {
        entry_t *entries;
        size_t count;
        perr_t *e;
};

static int normalize_entry(loader_t *l, entry_t *en);

/* def: the normalized top-level record of the current schema called
 * fullname, or NULL when there is none. */
static int loader_import(loader_t *l, const char *fullname, json_t **def)
{
        size_t i;
        entry_t *en;

        *def = NULL;
        for (i = 0; i < l->count; i++) {
                en = &l->entries[i];
                if (en->version != 0 || strcmp(en->fullname, fullname) != 0)
                        continue;
                if (en->state == 1)
                        return fail(l->e,
                                    "%s refers back to itself through other "
                                    "schemas",
                                    en->label);
                if (en->state == 0 && normalize_entry(l, en))
                        return -1;
                *def = en->norm;
                return 0;
        }
        return 0;
}

static int normalize_entry(loader_t *l, entry_t *en)
{
        norm_t n = {NULL, en->version == 0 ? l : NULL, l->e};

        en->state = 1;
        n.defs = json_object();
        if (!n.defs)
                return fail(l->e, "out of memory");
        en->norm = norm_schema(&n, en->src, "", 0);
        en->defs = n.defs;
        if (!en->norm)
                return fail_prefix(l->e, en->label);
        en->state = 2;
        return 0;
}

/* A type as written in a normalized tree, with a named reference replaced by
 * its definition. */
static json_t *deref(json_t *defs, json_t *node)
{
        const char *s = json_string_value(node);

        if (s && !is_primitive(s))
                return json_object_get(defs, s);
        return node;
}

/* "int", "record", "union"..., or NULL. */
static const char *kind_of(json_t *node)
{
        if (json_is_string(node))
                return json_string_value(node);
        if (json_is_array(node))
                return "union";
        return json_string_value(json_object_get(node, "type"));
}

static json_t *field_by_name(json_t *record, const char *name)
{
        json_t *f;
        size_t i;

        json_array_foreach(json_object_get(record, "fields"), i, f)
        {
                if (strcmp(json_string_value(json_object_get(f, "name")), name) == 0)
                        return f;
        }
        return NULL;
}

typedef struct compat {
        json_t *wdefs, *rdefs;
        const char *stack[PO_AVRO_MAX_DEPTH + 2]; /* records being compared */
        int nstack;
} compat_t;

static int compat_check(compat_t *c, json_t *w, json_t *r, int depth, perr_t *e);

static int compat_record(compat_t *c, json_t *w, json_t *r, int depth, perr_t *e)
{
        const char *name = json_string_value(json_object_get(r, "name")), *fname;
        json_t *f, *wf;
        size_t i;
        int k, rc = 0;

        if (strcmp(name, json_string_value(json_object_get(w, "name"))) != 0)
                return fail(e, "record %s was %s (renaming is not allowed)", name,
                            json_string_value(json_object_get(w, "name")));
        for (k = 0; k < c->nstack; k++)
                if (strcmp(c->stack[k], name) == 0)
                        return 0; /* recursive: already being compared */
        c->stack[c->nstack++] = name;
        json_array_foreach(json_object_get(r, "fields"), i, f)
        {
                fname = json_string_value(json_object_get(f, "name"));
                wf = field_by_name(w, fname);
                if (!wf) {
                        if (!json_object_get(f, "default")) {
                                rc = fail(e, "field %s.%s is new and has no default",
                                          name, fname);
                                break;
                        }
                        continue;
                }
                if (compat_check(c, json_object_get(wf, "type"),
                                 json_object_get(f, "type"), depth + 1, e)) {
                        rc = -1;
                        if (e && e->s) {
                                char where[MAX_NAME + 64];

                                snprintf(where, sizeof(where), "field %s.%s", name,
                                         fname);
                                fail_prefix(e, where);
                        }
                        break;
                }
        }
        json_array_foreach(json_object_get(w, "fields"), i, wf)
        {
                if (rc)
                        break;
                fname = json_string_value(json_object_get(wf, "name"));
                if (!field_by_name(r, fname) && !json_object_get(wf, "default"))
                        rc = fail(e, "field %s.%s was removed but had no default", name,
                                  fname);
        }
        c->nstack--;
        return rc;
}

static int promotes(const char *w, const char *r)
{
        if (strcmp(w, r) == 0)
                return 1;
        if (strcmp(w, "int") == 0)
                return !strcmp(r, "long") || !strcmp(r, "float") || !strcmp(r, "double");
        if (strcmp(w, "long") == 0)
                return !strcmp(r, "float") || !strcmp(r, "double");
        return strcmp(w, "float") == 0 && strcmp(r, "double") == 0;
}

/* Can data written as w be read as r, by the project's rule and by what
 * avro-c's resolver implements? Stricter than the specification where
 * avro-c is weaker: enum symbols map by position in avro-c, so a version may
 * only append symbols; avro-c has no string/bytes promotion. */
static int compat_check(compat_t *c, json_t *w, json_t *r, int depth, perr_t *e)
{
        const char *wk, *rk;
        json_t *ws, *rs, *v;
        size_t i, j;

        if (depth > PO_AVRO_MAX_DEPTH)
                return fail(e, "schema nested deeper than %d", PO_AVRO_MAX_DEPTH);
        w = deref(c->wdefs, w);
        r = deref(c->rdefs, r);
        wk = kind_of(w);
        rk = kind_of(r);
        if (!wk || !rk)
                return fail(e, "malformed schema");
        if (strcmp(wk, "union") == 0) {
                json_array_foreach(w, i, v)
                {
                        if (compat_check(c, v, r, depth + 1, e))
                                return -1;
                }
                return 0;
        }
        if (strcmp(rk, "union") == 0) {
                json_array_foreach(r, i, v)
                {
                        if (compat_check(c, w, v, depth + 1, NULL) == 0)
                                return 0;
                }
                return fail(e, "no branch of the new union reads the old %s", wk);
        }
        if (is_primitive(wk) || is_primitive(rk)) {
                if (!promotes(wk, rk))
                        return fail(e, "%s cannot be read as %s", wk, rk);
                return 0;
        }
        if (strcmp(wk, rk) != 0)
                return fail(e, "%s cannot be read as %s", wk, rk);
        if (strcmp(wk, "record") == 0)
                return compat_record(c, w, r, depth, e);
        if (strcmp(wk, "array") == 0)
                return compat_check(c, json_object_get(w, "items"),
                                    json_object_get(r, "items"), depth + 1, e);
        if (strcmp(wk, "map") == 0)
                return compat_check(c, json_object_get(w, "values"),
                                    json_object_get(r, "values"), depth + 1, e);
        if (!json_equal(json_object_get(w, "name"), json_object_get(r, "name")))
                return fail(e, "%s %s was %s (renaming is not allowed)", wk,
                            json_string_value(json_object_get(r, "name")),
                            json_string_value(json_object_get(w, "name")));
        if (strcmp(wk, "fixed") == 0) {
                if (!json_equal(json_object_get(w, "size"), json_object_get(r, "size")))
                        return fail(e, "fixed %s changed size",
                                    json_string_value(json_object_get(r, "name")));
                return 0;
        }
        ws = json_object_get(w, "symbols");
        rs = json_object_get(r, "symbols");
        for (i = 0; i < json_array_size(ws); i++) {
                if (i >= json_array_size(rs) ||
                    !json_equal(json_array_get(ws, i), json_array_get(rs, i))) {
                        for (j = 0; j < json_array_size(rs); j++)
                                if (json_equal(json_array_get(ws, i),
                                               json_array_get(rs, j)))
                                        break;
                        return fail(
                            e, "enum %s: symbol %s %s (symbols may only be appended)",
                            json_string_value(json_object_get(r, "name")),
                            json_string_value(json_array_get(ws, i)),
                            j < json_array_size(rs) ? "moved" : "was removed");
                }
        }
        return 0;
}

/* The reader schema avro-c can resolve a historic writer into: the current
 * schema without the record fields that the writer's record of the same name
 * lacks (avro-c 1.11 refuses a reader field the writer does not have, as it
 * ignores defaults altogether). hfields: record full name -> {field: true}. */
static json_t *project(json_t *node, json_t *hfields, int depth)
{
        const char *type, *key;
        json_t *out, *v, *set, *fields, *f, *nf;
        size_t i;

        if (depth > PO_AVRO_MAX_DEPTH)
                return NULL;
        if (json_is_array(node)) {
                out = json_array();
                json_array_foreach(node, i, v)
                {
                        if (!out ||
                            json_array_append_new(out, project(v, hfields, depth + 1))) {
                                json_decref(out);
                                return NULL;
                        }
                }
                return out;
        }
        type = json_string_value(json_object_get(node, "type"));
        if (!json_is_object(node) || !type)
                return json_incref(node);
        if (strcmp(type, "array") == 0 || strcmp(type, "map") == 0) {
                key = type[0] == 'a' ? "items" : "values";
                out = json_copy(node);
                if (!out || json_object_set_new(out, key,
                                                project(json_object_get(node, key),
                                                        hfields, depth + 1))) {
                        json_decref(out);
                        return NULL;
                }
                return out;
        }
        if (strcmp(type, "record") != 0)
                return json_incref(node);
        set = json_object_get(hfields, json_string_value(json_object_get(node, "name")));
        out = json_copy(node);
        fields = json_array();
        if (!out || !fields || json_object_set_new(out, "fields", fields)) {
                json_decref(out);
                return NULL;
        }
        json_array_foreach(json_object_get(node, "fields"), i, f)
        {
                if (set &&
                    !json_object_get(set, json_string_value(json_object_get(f, "name"))))
                        continue;
                nf = json_copy(f);
                if (!nf ||
                    json_object_set_new(
                        nf, "type",
                        project(json_object_get(f, "type"), hfields, depth + 1)) ||
                    json_array_append_new(fields, nf)) {
                        json_decref(out);
                        return NULL;
                }
        }
        return out;
}

/* hfields for project: the field names of every record of a normalized tree. */
static json_t *record_fields(json_t *defs)
{
        json_t *out = json_object(), *def, *set, *f;
        const char *name;
        size_t i;

        json_object_foreach(defs, name, def)
        {
                if (!out)
                        return NULL;
                if (strcmp(kind_of(def), "record") != 0)
                        continue;
                set = json_object();
                if (!set || json_object_set_new(out, name, set))
                        goto error;
                json_array_foreach(json_object_get(def, "fields"), i, f)
                {
                        if (json_object_set(set,
                                            json_string_value(json_object_get(f, "name")),
                                            json_true()))
                                goto error;
                }
        }
        return out;
error:
        json_decref(out);
        return NULL;
}

/* ------------------------------------------------------------------------
 * Defaults (avro-c parses schemas without them, so they are applied here,
 * from the JSON of the current schema)
 */

/* A JSON default for bytes or fixed: a string of code points 0..255, one
 * byte each (Avro specification, "Complex Types" > default values). */
static int default_bytes(json_t *d, unsigned char **out, size_t *len, perr_t *e)
{
        const unsigned char *s = (const unsigned char *)json_string_value(d);
        size_t n = json_string_length(d), i, k = 0;
        unsigned char *b;

        if (!s)
                return fail(e, "a bytes default must be a string");
        b = malloc(n + 1);
        if (!b)
                return fail(e, "out of memory");
        for (i = 0; i < n; i++) {
                if (s[i] < 0x80) {
                        b[k++] = s[i];
                } else if ((s[i] == 0xc2 || s[i] == 0xc3) && i + 1 < n) {
                        b[k++] =
                            (unsigned char)(((s[i] & 0x1f) << 6) | (s[i + 1] & 0x3f));
                        i++;
                } else {
                        free(b);
                        return fail(e, "a bytes default may only hold U+0000..U+00FF");
                }
        }
        *out = b;
        *len = k;
        return 0;
}

/* Sets v (of the schema node, in the tree whose named types are defs) to the
 * JSON default d. */
static int apply_default(avro_value_t *v, json_t *node, json_t *d, json_t *defs,
                         int depth, perr_t *e)
{
        avro_value_t c;
        unsigned char *bytes = NULL;
        size_t len, i;
        const char *key;
        json_t *f, *fv;
        int rc;

        if (depth > PO_AVRO_MAX_DEPTH)
                return fail(e, "default nested deeper than %d", PO_AVRO_MAX_DEPTH);
        node = deref(defs, node);
        switch (avro_value_get_type(v)) {
        case AVRO_NULL:
                if (!json_is_null(d))
                        return fail(e, "default for null must be null");
                return avro_value_set_null(v) ? fail(e, "%s", avro_strerror()) : 0;
        case AVRO_BOOLEAN:
                if (!json_is_boolean(d))
                        return fail(e, "default for boolean must be true or false");
                return avro_value_set_boolean(v, json_is_true(d));
        case AVRO_INT32:
                if (!json_is_integer(d) || json_integer_value(d) < INT32_MIN ||
                    json_integer_value(d) > INT32_MAX)
                        return fail(e, "default for int must be an integer in int range");
                return avro_value_set_int(v, (int32_t)json_integer_value(d));
        case AVRO_INT64:
                if (!json_is_integer(d))
                        return fail(e, "default for long must be an integer");
                return avro_value_set_long(v, json_integer_value(d));
        case AVRO_FLOAT:
                if (!json_is_number(d))
                        return fail(e, "default for float must be a number");
                return avro_value_set_float(v, (float)json_number_value(d));
        case AVRO_DOUBLE:
                if (!json_is_number(d))
                        return fail(e, "default for double must be a number");
                return avro_value_set_double(v, json_number_value(d));
        case AVRO_STRING:
                if (!json_is_string(d) ||
                    memchr(json_string_value(d), 0, json_string_length(d)))
                        return fail(e, "default for string must be a string without NUL");
                return avro_value_set_string_len(v, (char *)json_string_value(d),
                                                 json_string_length(d) + 1);
        case AVRO_BYTES:
        case AVRO_FIXED:
                if (default_bytes(d, &bytes, &len, e))
                        return -1;
                if (avro_value_get_type(v) == AVRO_FIXED) {
                        if ((int64_t)len !=
                            avro_schema_fixed_size(avro_value_get_schema(v))) {
                                free(bytes);
                                return fail(e, "default for fixed has the wrong size");
                        }
                        rc = avro_value_set_fixed(v, bytes, len);
                } else {
                        rc = avro_value_set_bytes(v, bytes, len);
                }
                free(bytes);
                return rc ? fail(e, "%s", avro_strerror()) : 0;
        case AVRO_ENUM:
                rc = json_is_string(d)
                         ? avro_schema_enum_get_by_name(avro_value_get_schema(v),
                                                        json_string_value(d))
                         : -1;
                if (rc < 0)
                        return fail(e, "default for enum must be one of its symbols");
                return avro_value_set_enum(v, rc);
        case AVRO_ARRAY:
                if (!json_is_array(d))
                        return fail(e, "default for array must be an array");
                json_array_foreach(d, i, fv)
                {
                        if (avro_value_append(v, &c, NULL))
                                return fail(e, "%s", avro_strerror());
                        if (apply_default(&c, json_object_get(node, "items"), fv, defs,
                                          depth + 1, e))
                                return -1;
                }
                return 0;
        case AVRO_MAP:
                if (!json_is_object(d))
                        return fail(e, "default for map must be an object");
                json_object_foreach(d, key, fv)
                {
                        if (avro_value_add(v, key, &c, NULL, NULL))
                                return fail(e, "%s", avro_strerror());
                        if (apply_default(&c, json_object_get(node, "values"), fv, defs,
                                          depth + 1, e))
                                return -1;
                }
                return 0;
        case AVRO_RECORD:
                if (!json_is_object(d))
                        return fail(e, "default for record must be an object");
                json_array_foreach(json_object_get(node, "fields"), i, f)
                {
                        fv = json_object_get(
                            d, json_string_value(json_object_get(f, "name")));
                        if (!fv)
                                fv = json_object_get(f, "default");
                        if (!fv)
                                return fail(
                                    e, "default for record lacks field %s",
                                    json_string_value(json_object_get(f, "name")));
                        if (avro_value_get_by_index(v, i, &c, NULL))
                                return fail(e, "%s", avro_strerror());
                        if (apply_default(&c, json_object_get(f, "type"), fv, defs,
                                          depth + 1, e))
                                return -1;
                }
                return 0;
        case AVRO_UNION:
                /* A union's default is of its first branch. */
                if (avro_value_set_branch(v, 0, &c))
                        return fail(e, "%s", avro_strerror());
                return apply_default(&c, json_array_get(node, 0), d, defs, depth + 1, e);
        default:
                return fail(e, "no default possible for this type");
        }
}

/* check_defaults' walk: the records on the current path stop recursion. */
typedef struct dwalk {
        json_t *defs;
        json_t *path[PO_AVRO_MAX_DEPTH + 1];
        int n;
        perr_t *e;
} dwalk_t;

/* Applies every default of v's schema (node: its normalized JSON) to v, a
 * scratch value of the whole schema, and to its parts: a default that does
 * not fit its field is a load error, not a surprise on the first old
 * message. (avro-c cannot make a value of a sub-schema that refers to a
 * named type defined outside it, hence one value walked through.) */
static int check_defaults(dwalk_t *w, avro_value_t *v, json_t *node)
{
        char where[MAX_NAME + 64];
        avro_value_t c;
        json_t *f;
        size_t i;
        int k, rc = 0;

        if (w->n > PO_AVRO_MAX_DEPTH)
                return fail(w->e, "schema nested deeper than %d", PO_AVRO_MAX_DEPTH);
        node = deref(w->defs, node);
        switch (avro_value_get_type(v)) {
        case AVRO_RECORD:
                for (k = 0; k < w->n; k++)
                        if (w->path[k] == node)
                                return 0; /* recursive: checked further up */
                w->path[w->n++] = node;
                json_array_foreach(json_object_get(node, "fields"), i, f)
                {
                        if (avro_value_get_by_index(v, i, &c, NULL)) {
                                rc = fail(w->e, "avro-c: %s", avro_strerror());
                                break;
                        }
                        if (json_object_get(f, "default") &&
                            apply_default(&c, json_object_get(f, "type"),
                                          json_object_get(f, "default"), w->defs, 0,
                                          w->e)) {
                                snprintf(where, sizeof(where), "default of %s.%s",
                                         json_string_value(json_object_get(node, "name")),
                                         json_string_value(json_object_get(f, "name")));
                                rc = fail_prefix(w->e, where);
                                break;
                        }
                        rc = check_defaults(w, &c, json_object_get(f, "type"));
                        if (rc)
                                break;
                }
                w->n--;
                return rc;
        case AVRO_UNION:
                for (i = 0; i < json_array_size(node); i++) {
                        if (avro_value_set_branch(v, (int)i, &c))
                                return fail(w->e, "avro-c: %s", avro_strerror());
                        if (check_defaults(w, &c, json_array_get(node, i)))
                                return -1;
                }
                return 0;
        case AVRO_ARRAY:
                if (avro_value_append(v, &c, NULL))
                        return fail(w->e, "avro-c: %s", avro_strerror());
                return check_defaults(w, &c, json_object_get(node, "items"));
        case AVRO_MAP:
                if (avro_value_add(v, "k", &c, NULL, NULL))
                        return fail(w->e, "avro-c: %s", avro_strerror());
                return check_defaults(w, &c, json_object_get(node, "values"));
        default:
                return 0; /* primitives, enums, fixed */
        }
}

static int entry_check_defaults(entry_t *en, perr_t *e)
{
        dwalk_t w;
        avro_value_t v;
        int rc;

        memset(&w, 0, sizeof(w));
        w.defs = en->defs;
        w.e = e;
        if (avro_generic_value_new(en->iface, &v))
                return fail(e, "out of memory");
        rc = check_defaults(&w, &v, en->norm);
        avro_value_decref(&v);
        return rc ? fail_prefix(e, en->label) : 0;
}

/* Copies src, a value of the projected schema, into dst, a value of the
 * current schema (node: its normalized JSON), giving the fields the
 * projection dropped their defaults. */
static int copy_resolved(avro_value_t *src, avro_value_t *dst, json_t *node, json_t *defs,
                         int depth, perr_t *e)
{
        avro_value_t sc, dc;
        avro_schema_t ss;
        const char *key, *fname;
        size_t i, n;
        json_t *f;
        int d, si;

        if (depth > PO_AVRO_MAX_DEPTH)
                return fail(e, "value nested deeper than %d", PO_AVRO_MAX_DEPTH);
        node = deref(defs, node);
        switch (avro_value_get_type(dst)) {
        case AVRO_RECORD:
                ss = avro_value_get_schema(src);
                json_array_foreach(json_object_get(node, "fields"), i, f)
                {
                        fname = json_string_value(json_object_get(f, "name"));
                        if (avro_value_get_by_index(dst, i, &dc, NULL))
                                return fail(e, "%s", avro_strerror());
                        si = avro_schema_record_field_get_index(ss, fname);
                        if (si < 0) {
                                if (apply_default(&dc, json_object_get(f, "type"),
                                                  json_object_get(f, "default"), defs, 0,
                                                  e))
                                        return -1;
                                continue;
                        }
                        if (avro_value_get_by_index(src, (size_t)si, &sc, NULL) ||
                            copy_resolved(&sc, &dc, json_object_get(f, "type"), defs,
                                          depth + 1, e))
                                return -1;
                }
                return 0;
        case AVRO_UNION:
                if (avro_value_get_discriminant(src, &d) ||
                    avro_value_get_current_branch(src, &sc) ||
                    avro_value_set_branch(dst, d, &dc))
                        return fail(e, "union: %s", avro_strerror());
                return copy_resolved(&sc, &dc, json_array_get(node, (size_t)d), defs,
                                     depth + 1, e);
        case AVRO_ARRAY:
                if (avro_value_get_size(src, &n))
                        return fail(e, "%s", avro_strerror());
                for (i = 0; i < n; i++) {
                        if (avro_value_get_by_index(src, i, &sc, NULL) ||
                            avro_value_append(dst, &dc, NULL))
                                return fail(e, "array: %s", avro_strerror());
                        if (copy_resolved(&sc, &dc, json_object_get(node, "items"), defs,
                                          depth + 1, e))
                                return -1;
                }
                return 0;
        case AVRO_MAP:
                if (avro_value_get_size(src, &n))
                        return fail(e, "%s", avro_strerror());
                for (i = 0; i < n; i++) {
                        if (avro_value_get_by_index(src, i, &sc, &key) ||
                            avro_value_add(dst, key, &dc, NULL, NULL))
                                return fail(e, "map: %s", avro_strerror());
                        if (copy_resolved(&sc, &dc, json_object_get(node, "values"), defs,
                                          depth + 1, e))
                                return -1;
                }
                return 0;
        default:
                return avro_value_copy(dst, src) ? fail(e, "%s", avro_strerror()) : 0;
        }
}

/* ------------------------------------------------------------------------
 * Pre-validation: the writer schema walked over the datum before avro-c
 * reads it. avro-c trusts lengths and counts (it allocates what a length
 * says before reading it); every one is bounded here by the bytes left.
 */

typedef struct walk {
        const unsigned char *p;
        size_t len;   /* datum bytes */
        size_t pos;   /* next byte */
        size_t base;  /* offset of p[0] in the message, for messages */
        size_t items; /* array items and map entries so far */
        perr_t *e;
} walk_t;

static int walk_fail(walk_t *w, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int walk_fail(walk_t *w, size_t at, const char *fmt, ...)
{
        char msg[256];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        return fail(w->e, "%s at byte %zu", msg, w->base + at);
}

/* A zig-zag varint of at most max bytes (5 for int, 10 for long), in its
 * shortest form: what every Avro writer produces, and one spelling per value. */
static int walk_varint(walk_t *w, int max, const char *what, int64_t *out)
{
        size_t start = w->pos;
        uint64_t raw = 0;
        unsigned char b;
        int i;

        for (i = 0; i < max; i++) {
                if (w->pos >= w->len)
                        return walk_fail(w, start, "truncated %s", what);
                b = w->p[w->pos++];
                raw |= (uint64_t)(b & 0x7f) << (7 * i);
                if (b & 0x80)
                        continue;
                if (i > 0 && b == 0)
                        return walk_fail(w, start, "over-long %s varint", what);
                if (i == max - 1 && b > (max == 5 ? 0x0f : 0x01))
                        return walk_fail(w, start, "%s varint out of range", what);
                *out = (int64_t)(raw >> 1) ^ -(int64_t)(raw & 1);
                return 0;
        }
        return walk_fail(w, start, "%s varint longer than %d bytes", what, max);
}

static int walk_bytes(walk_t *w, int is_string)
{
        size_t start = w->pos, bad;
        const char *what = is_string ? "string" : "bytes";
        int64_t n = 0;

        if (walk_varint(w, 10, is_string ? "string length" : "bytes length", &n))
                return -1;
        if (n < 0)
                return walk_fail(w, start, "negative %s length %" PRId64, what, n);
        if ((uint64_t)n > w->len - w->pos)
                return walk_fail(w, start,
                                 "truncated %s (length %" PRId64 ", %zu bytes left)",
                                 what, n, w->len - w->pos);
        if (is_string) {
                bad = po_utf8_bad(w->p + w->pos, (size_t)n);
                if (bad)
                        return walk_fail(w, w->pos + bad - 1,
                                         "string is not UTF-8 or holds a NUL");
        }
        w->pos += (size_t)n;
        return 0;
}

/* The fewest bytes a datum of s can take: bounds a block count by the bytes
 * left. A lower bound is enough, so deep or recursive schemas give 0. */
static size_t min_size(avro_schema_t s, int depth)
{
        size_t n = 0, i;

        if (depth > 8)
                return 0;
        switch (avro_typeof(s)) {
        case AVRO_NULL:
        case AVRO_LINK:
                return 0;
        case AVRO_FLOAT:
                return 4;
        case AVRO_DOUBLE:
                return 8;
        case AVRO_FIXED:
                return (size_t)avro_schema_fixed_size(s);
        case AVRO_RECORD:
                for (i = 0; i < avro_schema_record_size(s); i++)
                        n += min_size(avro_schema_record_field_get_by_index(s, (int)i),
                                      depth + 1);
                return n;
        default:
                return 1; /* a varint, a length, a boolean, a block terminator */
        }
}

/* A schema compiled for the validating walk: one node per schema node (a
 * named type once, so recursive schemas are finite), with what the walk
 * needs at hand instead of avro-c's lookups by index on every datum. */
typedef struct wnode {
        avro_type_t type;
        int64_t count;   /* fixed: size; enum: symbols */
        size_t min;      /* array items / map values: min_size of the item */
        size_t nkids;    /* record fields, union branches, 1 for array, map, link */
        size_t *kids;    /* node indices */
        avro_schema_t s; /* what it was compiled from */
} wnode_t;

struct po_avro_prog {
        wnode_t *nodes;
        size_t n, cap;
};

static void prog_free(po_avro_prog_t *p)
{
        size_t i;

        if (!p)
                return;
        for (i = 0; i < p->n; i++)
                free(p->nodes[i].kids);
        free(p->nodes);
        free(p);
}

/* The node of s, compiled on first sight. Returns its index, or -1 (out of
 * memory). */
static long prog_node(po_avro_prog_t *p, avro_schema_t s)
{
        size_t i, k, nk = 0;
        wnode_t *nd;
        long at, kid;

        for (i = 0; i < p->n; i++)
                if (p->nodes[i].s == s)
                        return (long)i;
        if (p->n == p->cap) {
                size_t cap = p->cap ? 2 * p->cap : 64;
                wnode_t *t = realloc(p->nodes, cap * sizeof(*t));

                if (!t)
                        return -1;
                p->nodes = t;
                p->cap = cap;
        }
        at = (long)p->n++;
        nd = &p->nodes[at];
        memset(nd, 0, sizeof(*nd));
        nd->s = s;
        nd->type = avro_typeof(s);
        switch (nd->type) {
        case AVRO_FIXED:
                nd->count = avro_schema_fixed_size(s);
                break;
        case AVRO_ENUM:
                nd->count = avro_schema_enum_number_of_symbols(s);
                break;
        case AVRO_RECORD:
                nk = avro_schema_record_size(s);
                break;
        case AVRO_UNION:
                nk = avro_schema_union_size(s);
                break;
        case AVRO_ARRAY:
        case AVRO_MAP:
        case AVRO_LINK:
                nk = 1;
                break;
        default:
                break;
        }
        if (nd->type == AVRO_ARRAY)
                nd->min = min_size(avro_schema_array_items(s), 0);
        else if (nd->type == AVRO_MAP)
                nd->min = min_size(avro_schema_map_values(s), 0) + 1;
        if (!nk)
                return at;
        nd->kids = calloc(nk, sizeof(*nd->kids));
        if (!nd->kids)
                return -1;
        nd->nkids = nk;
        for (k = 0; k < nk; k++) {
                avro_schema_t c = nd->type == AVRO_RECORD
                                      ? avro_schema_record_field_get_by_index(s, (int)k)
                                  : nd->type == AVRO_UNION
                                      ? avro_schema_union_branch(s, (int)k)
                                  : nd->type == AVRO_ARRAY ? avro_schema_array_items(s)
                                  : nd->type == AVRO_MAP   ? avro_schema_map_values(s)
                                                           : avro_schema_link_target(s);

                kid = prog_node(p, c);
                if (kid < 0)
                        return -1;
                p->nodes[at].kids[k] = (size_t)kid; /* nodes may have moved */
        }
        return at;
}

/* The program of schema; node 0 is its root. NULL when out of memory. */
static po_avro_prog_t *prog_compile(avro_schema_t schema)
{
        po_avro_prog_t *p = calloc(1, sizeof(*p));

        if (p && prog_node(p, schema) != 0) {
                prog_free(p);
                return NULL;
        }
        return p;
}

static int walk_datum(walk_t *w, const po_avro_prog_t *p, size_t node, int depth);

static int walk_blocks(walk_t *w, const po_avro_prog_t *p, const wnode_t *nd, int depth)
{
        int is_map = nd->type == AVRO_MAP;
        const char *what = is_map ? "map" : "array";
        size_t min = nd->min, start, end;
        int64_t count, size, k;

        for (;;) {
                start = w->pos;
                if (walk_varint(w, 10, is_map ? "map block count" : "array block count",
                                &count))
                        return -1;
                if (count == 0)
                        return 0;
                end = 0;
                if (count < 0) {
                        /* A negative count is followed by the block's size in bytes. */
                        if (count == INT64_MIN)
                                return walk_fail(w, start, "bad %s block count", what);
                        count = -count;
                        if (walk_varint(w, 10, "block size", &size))
                                return -1;
                        if (size < 0 || (uint64_t)size > w->len - w->pos)
                                return walk_fail(w, start,
                                                 "truncated %s: block size %" PRId64
                                                 ", %zu bytes left",
                                                 what, size, w->len - w->pos);
                        end = w->pos + (size_t)size;
                }
                if (min > 0 && (uint64_t)count > (w->len - w->pos) / min)
                        return walk_fail(w, start,
                                         "truncated %s: %" PRId64
                                         " items need at least %zu bytes each, %zu left",
                                         what, count, min, w->len - w->pos);
                if ((uint64_t)count > PO_AVRO_MAX_ITEMS - w->items)
                        return walk_fail(w, start,
                                         "more than %d array items and map entries",
                                         PO_AVRO_MAX_ITEMS);
                w->items += (size_t)count;
                for (k = 0; k < count; k++) {
                        if (is_map && walk_bytes(w, 1))
                                return -1;
                        if (walk_datum(w, p, nd->kids[0], depth + 1))
                                return -1;
                }
                if (end && w->pos != end)
                        return walk_fail(w, start,
                                         "%s block size does not match its items", what);
        }
}

static int walk_datum(walk_t *w, const po_avro_prog_t *p, size_t node, int depth)
{
        const wnode_t *nd = &p->nodes[node];
        size_t start = w->pos, i;
        int64_t v;

        if (depth > PO_AVRO_MAX_DEPTH)
                return walk_fail(w, start, "datum nested deeper than %d",
                                 PO_AVRO_MAX_DEPTH);
        switch (nd->type) {
        case AVRO_NULL:
                return 0;
        case AVRO_BOOLEAN:
                if (w->pos >= w->len)
                        return walk_fail(w, start, "truncated boolean");
                if (w->p[w->pos] > 1)
                        return walk_fail(w, start, "boolean byte 0x%02x", w->p[w->pos]);
                w->pos++;
                return 0;
        case AVRO_INT32:
                return walk_varint(w, 5, "int", &v);
        case AVRO_INT64:
                return walk_varint(w, 10, "long", &v);
        case AVRO_FLOAT:
        case AVRO_DOUBLE:
                i = nd->type == AVRO_FLOAT ? 4 : 8;
                if (w->len - w->pos < i)
                        return walk_fail(w, start, "truncated %s",
                                         i == 4 ? "float" : "double");
                w->pos += i;
                return 0;
        case AVRO_STRING:
                return walk_bytes(w, 1);
        case AVRO_BYTES:
                return walk_bytes(w, 0);
        case AVRO_FIXED:
                i = (size_t)nd->count;
                if (w->len - w->pos < i)
                        return walk_fail(w, start, "truncated fixed");
                w->pos += i;
                return 0;
        case AVRO_ENUM:
                if (walk_varint(w, 5, "enum index", &v))
                        return -1;
                if (v < 0 || v >= nd->count)
                        return walk_fail(
                            w, start, "enum index %" PRId64 " out of range 0..%" PRId64,
                            v, nd->count - 1);
                return 0;
        case AVRO_UNION:
                if (walk_varint(w, 10, "union index", &v))
                        return -1;
                if (v < 0 || (uint64_t)v >= nd->nkids)
                        return walk_fail(w, start,
                                         "union index %" PRId64 " out of range 0..%zu", v,
                                         nd->nkids - 1);
                return walk_datum(w, p, nd->kids[v], depth + 1);
        case AVRO_RECORD:
                for (i = 0; i < nd->nkids; i++)
                        if (walk_datum(w, p, nd->kids[i], depth + 1))
                                return -1;
                return 0;
        case AVRO_ARRAY:
        case AVRO_MAP:
                return walk_blocks(w, p, nd, depth);
        case AVRO_LINK:
                return walk_datum(w, p, nd->kids[0], depth + 1);
        default:
                return walk_fail(w, start, "unsupported schema type");
        }
}

static po_err_t check_datum(const po_avro_prog_t *prog, const unsigned char *p,
                            size_t len, size_t base, perr_t *e)
{
        walk_t w = {p, len, 0, base, 0, e};

        if (walk_datum(&w, prog, 0, 0))
                return PO_ERR_BAD_INPUT;
        if (w.pos != len) {
                fail(e, "%zu trailing bytes after the datum at byte %zu", len - w.pos,
                     base + w.pos);
                return PO_ERR_BAD_INPUT;
        }
        return PO_OK;
}

po_err_t po_avro_check_datum(avro_schema_t schema, const void *datum, size_t len,
                             char *errstr, size_t errstr_size)
{
        perr_t e = {errstr, errstr_size};
        po_avro_prog_t *prog = prog_compile(schema);
        po_err_t err;

        if (!prog) {
                fail(&e, "out of memory");
                return PO_ERR_NOMEM;
        }
        err = check_datum(prog, datum, len, 0, &e);
        prog_free(prog);
        return err;
}

/* ------------------------------------------------------------------------
 * Registry construction
 */

static void entry_release(entry_t *en)
{
        prog_free(en->prog);
        free(en->name);
        free(en->fullname);
        free(en->label);
        free(en->canonical);
        free(en->json);
        json_decref(en->src);
        json_decref(en->norm);
        json_decref(en->defs);
        if (en->resolver)
                avro_value_iface_decref(en->resolver);
        if (en->proj_iface)
                avro_value_iface_decref(en->proj_iface);
        if (en->projected)
                avro_schema_decref(en->projected);
        if (en->iface)
                avro_value_iface_decref(en->iface);
        if (en->schema)
                avro_schema_decref(en->schema);
}

void po_avro_destroy(po_avro_t *avro)
{
        size_t i;

        if (!avro)
                return;
        for (i = 0; i < avro->count; i++)
                entry_release(&avro->entries[i]);
        free(avro->entries);
        if (avro->writer)
                avro_writer_free(avro->writer);
        if (avro->reader)
                avro_reader_free(avro->reader);
        free(avro);
        atomic_fetch_add(&field_generation, 1);
}

/* Name, label, parsed JSON and full name of one source. */
static int entry_init(entry_t *en, const po_avro_source_t *src, perr_t *e)
{
        char label[MAX_NAME + 32], full[MAX_NAME];
        const char *name, *ns, *type;

        if (!src->name || !valid_name(src->name, strlen(src->name)) || src->version < 0 ||
            !src->json)
                return fail(e, "schema source %s: bad name, version or text",
                            src->name ? src->name : "(null)");
        if (src->version)
                snprintf(label, sizeof(label), "schemas/history/%s.%d.avsc", src->name,
                         src->version);
        else
                snprintf(label, sizeof(label), "schemas/%s.avsc", src->name);
        en->version = src->version;
        en->name = dup_str(src->name);
        en->label = dup_str(label);
        if (!en->name || !en->label)
                return fail(e, "out of memory");
        en->src = parse_json(src->json, src->json_len, e);
        if (!en->src)
                return fail_prefix(e, label);
        name = json_string_value(json_object_get(en->src, "name"));
        ns = json_string_value(json_object_get(en->src, "namespace"));
        type = json_string_value(json_object_get(en->src, "type"));
        if (!name || !type || strcmp(type, "record") != 0)
                return fail(e, "%s: the top level must be a named record", label);
        if (strchr(name, '.'))
                snprintf(full, sizeof(full), "%s", name);
        else if (ns && ns[0])
                snprintf(full, sizeof(full), "%s.%s", ns, name);
        else
                snprintf(full, sizeof(full), "%s", name);
        name = strrchr(full, '.') ? strrchr(full, '.') + 1 : full;
        if (strcmp(name, src->name) != 0)
                return fail(e, "%s defines %s, not %s", label, full, src->name);
        en->fullname = dup_str(full);
        return en->fullname ? 0 : fail(e, "out of memory");
}

/* Canonical form, fingerprint and avro-c's schema of a normalized entry. */
static int entry_compile(entry_t *en, perr_t *e)
{
        po_dynbuf_t b;

        po_dynbuf_init(&b, 1u << 24);
        if (canon(&b, en->norm)) {
                po_dynbuf_release(&b);
                return fail(e, "out of memory");
        }
        en->canonical = b.data; /* taken over */
        en->fingerprint = po_avro_crc64(b.data, b.len);
        en->json = json_dumps(en->norm, JSON_COMPACT);
        if (!en->json)
                return fail(e, "out of memory");
        /* avro-c gets the canonical form: exactly what the fingerprint names,
         * and no defaults (avro-c ignores them, and its JSON parser refuses
         * the \u0000 a bytes default may hold). */
        if (avro_schema_from_json_length(en->canonical, b.len, &en->schema)) {
                en->schema = NULL;
                return fail(e, "%s: avro-c: %s", en->label, avro_strerror());
        }
        en->iface = avro_generic_class_from_schema(en->schema);
        if (!en->iface)
                return fail(e, "%s: avro-c: %s", en->label, avro_strerror());
        en->prog = prog_compile(en->schema);
        if (!en->prog)
                return fail(e, "out of memory");
        return 0;
}

/* Makes a historic entry readable as its current version. */
static int entry_resolve(entry_t *h, entry_t *cur, perr_t *e)
{
        compat_t c;
        json_t *hfields = NULL, *proj = NULL;
        po_dynbuf_t text;
        int rc = -1;

        po_dynbuf_init(&text, 1u << 24);
        memset(&c, 0, sizeof(c));
        c.wdefs = h->defs;
        c.rdefs = cur->defs;
        h->current = cur;
        if (compat_check(&c, h->norm, cur->norm, 0, e))
                goto done;
        hfields = record_fields(h->defs);
        proj = hfields ? project(cur->norm, hfields, 0) : NULL;
        if (!proj || canon(&text, proj)) {
                fail(e, "out of memory");
                goto done;
        }
        if (avro_schema_from_json_length(text.data, text.len, &h->projected)) {
                h->projected = NULL;
                fail(e, "projection: avro-c: %s", avro_strerror());
                goto done;
        }
        h->proj_iface = avro_generic_class_from_schema(h->projected);
        h->resolver = avro_resolved_writer_new(h->schema, h->projected);
        if (!h->proj_iface || !h->resolver) {
                fail(e, "avro-c: %s", avro_strerror());
                goto done;
        }
        rc = 0;
done:
        po_dynbuf_release(&text);
        json_decref(proj);
        json_decref(hfields);
        if (rc) {
                char where[2 * MAX_NAME];

                snprintf(where, sizeof(where), "%s cannot be read as %s", h->label,
                         cur->label);
                fail_prefix(e, where);
        }
        return rc;
}

po_avro_t *po_avro_new_from_sources(const po_avro_source_t *src, size_t n, char *errstr,
                                    size_t errstr_size)
{
        perr_t e = {errstr, errstr_size};
        po_avro_t *avro;
        loader_t l;
        entry_t *en, *cur;
        size_t i, j, k;

        if (!n) {
                fail(&e, "no schemas");
                return NULL;
        }
        avro = calloc(1, sizeof(*avro));
        if (avro)
                avro->entries = calloc(n, sizeof(entry_t));
        if (!avro || !avro->entries) {
                fail(&e, "out of memory");
                goto error;
        }
        /* Current versions first, then history in source order. */
        for (k = 0; k < 2; k++)
                for (i = 0; i < n; i++)
                        if ((src[i].version == 0) == (k == 0) &&
                            entry_init(&avro->entries[avro->count++], &src[i], &e))
                                goto error;
        l.entries = avro->entries;
        l.count = avro->count;
        l.e = &e;
        for (i = 0; i < avro->count; i++) {
                en = &avro->entries[i];
                for (j = 0; j < i; j++)
                        if (strcmp(avro->entries[j].name, en->name) == 0 &&
                            avro->entries[j].version == en->version) {
                                fail(&e, "%s appears twice", en->label);
                                goto error;
                        }
                if (en->state == 0 && normalize_entry(&l, en))
                        goto error;
        }
        for (i = 0; i < avro->count; i++) {
                en = &avro->entries[i];
                if (entry_compile(en, &e))
                        goto error;
                for (j = 0; j < i; j++)
                        if (avro->entries[j].fingerprint == en->fingerprint) {
                                fail(&e,
                                     "%s and %s have the same fingerprint %016" PRIx64,
                                     avro->entries[j].label, en->label, en->fingerprint);
                                goto error;
                        }
                if (en->version == 0 && entry_check_defaults(en, &e))
                        goto error;
        }
        for (i = 0; i < avro->count; i++) {
                en = &avro->entries[i];
                if (en->version == 0)
                        continue;
                cur = NULL;
                for (j = 0; j < avro->count; j++)
                        if (avro->entries[j].version == 0 &&
                            strcmp(avro->entries[j].name, en->name) == 0)
                                cur = &avro->entries[j];
                if (!cur) {
                        fail(&e, "%s has no current version schemas/%s.avsc", en->label,
                             en->name);
                        goto error;
                }
                if (entry_resolve(en, cur, &e))
                        goto error;
        }
        return avro;
error:
        po_avro_destroy(avro);
        return NULL;
}

po_avro_t *po_avro_new(char *errstr, size_t errstr_size)
{
        size_t n;
        const po_avro_source_t *src = po_avro_embedded_sources(&n);

        return po_avro_new_from_sources(src, n, errstr, errstr_size);
}

static entry_t *find(po_avro_t *avro, const char *name, int version)
{
        size_t i;

        if (!avro || !name)
                return NULL;
        for (i = 0; i < avro->count; i++)
                if (avro->entries[i].version == version &&
                    strcmp(avro->entries[i].name, name) == 0)
                        return &avro->entries[i];
        return NULL;
}

avro_schema_t po_avro_schema(po_avro_t *avro, const char *name)
{
        return po_avro_schema_version(avro, name, 0);
}

avro_schema_t po_avro_schema_version(po_avro_t *avro, const char *name, int version)
{
        entry_t *en = find(avro, name, version);

        return en ? en->schema : NULL;
}

po_err_t po_avro_value_new(po_avro_t *avro, const char *name, int version,
                           avro_value_t *out)
{
        entry_t *en = find(avro, name, version);

        out->iface = NULL;
        out->self = NULL;
        if (!en)
                return PO_ERR_INVALID_ARG;
        if (avro_generic_value_new(en->iface, out)) {
                out->iface = NULL;
                out->self = NULL;
                return PO_ERR_NOMEM;
        }
        return PO_OK;
}

size_t po_avro_count(const po_avro_t *avro)
{
        return avro ? avro->count : 0;
}

po_err_t po_avro_info(const po_avro_t *avro, size_t i, po_avro_info_t *out)
{
        const entry_t *en;

        if (!avro || i >= avro->count)
                return PO_ERR_INVALID_ARG;
        en = &avro->entries[i];
        out->name = en->name;
        out->fullname = en->fullname;
        out->version = en->version;
        out->fingerprint = en->fingerprint;
        out->canonical = en->canonical;
        out->json = en->json;
        out->schema = en->schema;
        return PO_OK;
}

/* ------------------------------------------------------------------------
 * The wire format
 */

static void put_header(unsigned char *h, uint64_t fp)
{
        int i;

        h[0] = 0xc3;
        h[1] = 0x01;
        for (i = 0; i < 8; i++)
                h[2 + i] = (unsigned char)(fp >> (8 * i));
}

/* Writes header and value straight into out, in room bytes for the datum,
 * with the registry's writer, then checks the
 * datum. Returns PO_OK (appended), PO_ERR_TIMEOUT when the datum did not fit
 * or avro-c could not write it (nothing appended; avro_strerror() says
 * which), or an error (nothing appended; out released when it failed). */
static po_err_t write_in_place(po_avro_t *avro, entry_t *en, avro_value_t *value,
                               size_t room, po_dynbuf_t *out, perr_t *e)
{
        size_t start = out->len, size;
        unsigned char *p;
        po_err_t err;

        err = po_dynbuf_reserve(out, PO_AVRO_HEADER_SIZE + room);
        if (err) {
                fail(e, "output buffer: %s", po_err_str(err));
                return err;
        }
        p = (unsigned char *)out->data + start + PO_AVRO_HEADER_SIZE;
        if (!avro->writer)
                avro->writer = avro_writer_memory((const char *)p, (int64_t)room);
        else
                avro_writer_memory_set_dest(avro->writer, (const char *)p, (int64_t)room);
        if (!avro->writer) {
                fail(e, "out of memory");
                return PO_ERR_NOMEM;
        }
        if (avro_value_write(avro->writer, value))
                return PO_ERR_TIMEOUT;
        size = (size_t)avro_writer_tell(avro->writer);
        /* What we write, we must be able to read: the same checks as decode. */
        if (check_datum(en->prog, p, size, PO_AVRO_HEADER_SIZE, e)) {
                fail_prefix(e, "refusing to encode an unreadable value");
                return PO_ERR_INVALID_ARG;
        }
        put_header((unsigned char *)out->data + start, en->fingerprint);
        en->last_size = size;
        out->len = start + PO_AVRO_HEADER_SIZE + size;
        out->data[out->len] = '\0';
        return PO_OK;
}

po_err_t po_avro_encode_version(po_avro_t *avro, const char *name, int version,
                                avro_value_t *value, po_dynbuf_t *out, char *errstr,
                                size_t errstr_size)
{
        perr_t e = {errstr, errstr_size};
        entry_t *en = find(avro, name, version);
        avro_schema_t vs;
        size_t size = 0, guess, left;
        po_err_t err;

        if (!en) {
                fail(&e, "unknown schema %s version %d", name ? name : "(null)", version);
                return PO_ERR_INVALID_ARG;
        }
        vs = value && value->iface ? avro_value_get_schema(value) : NULL;
        if (!vs || (vs != en->schema && !avro_schema_equal(vs, en->schema))) {
                fail(&e, "the value is not a %s (version %d)", en->name, version);
                return PO_ERR_INVALID_ARG;
        }
        /* First in room for twice the last datum of this schema (within out's
         * limit); when that is too small, measured exactly. */
        guess = en->last_size ? 2 * en->last_size + 64 : 1024;
        left = out->len < out->max ? out->max - out->len : 0;
        if (left > PO_AVRO_HEADER_SIZE && guess > left - PO_AVRO_HEADER_SIZE)
                guess = left - PO_AVRO_HEADER_SIZE;
        err = write_in_place(avro, en, value, guess, out, &e);
        if (err != PO_ERR_TIMEOUT)
                return err;
        if (avro_value_sizeof(value, &size) == 0)
                err = write_in_place(avro, en, value, size, out, &e);
        if (err == PO_ERR_TIMEOUT) {
                fail(&e, "cannot encode %s: avro-c: %s", en->name, avro_strerror());
                err = PO_ERR_INVALID_ARG;
        }
        return err;
}

void po_avro_set_direct(po_avro_t *avro, int on)
{
        if (avro)
                avro->generic_only = !on;
}

int po_avro_wire_encode(po_avro_t *avro, const char *name, uint64_t layout_fp,
                        po_wire_fn fn, const void *what, po_dynbuf_t *out, po_err_t *err)
{
        entry_t *en = find(avro, name, 0);
        po_wire_t w = {out, PO_OK, 0};
        size_t start;
        unsigned char *h;

        if (!en || avro->generic_only || en->fingerprint != layout_fp || !out ||
            out->failed || out->len >= out->max)
                return 0;
        start = out->len;
        h = po_wire_room(&w, PO_AVRO_HEADER_SIZE);
        if (h) {
                put_header(h, en->fingerprint);
                out->len += PO_AVRO_HEADER_SIZE;
                fn(&w, what);
        }
        if (w.err) {
                *err = w.err;
                return 1;
        }
        if (w.fallback) {
                out->len = start;
                if (out->data)
                        out->data[start] = '\0';
                return 0;
        }
        *err = PO_OK;
        avro->direct_writes++;
        return 1;
}

uint64_t po_avro_direct_writes(const po_avro_t *avro)
{
        return avro ? avro->direct_writes : 0;
}

uint64_t po_avro_direct_reads(const po_avro_t *avro)
{
        return avro ? avro->direct_reads : 0;
}

po_err_t po_avro_encode(po_avro_t *avro, const char *name, avro_value_t *value,
                        po_dynbuf_t *out, char *errstr, size_t errstr_size)
{
        return po_avro_encode_version(avro, name, 0, value, out, errstr, errstr_size);
}

static entry_t *peek(po_avro_t *avro, const unsigned char *p, size_t len, perr_t *e)
{
        uint64_t fp = 0;
        size_t i;
        int k;

        if (len < 2 || p[0] != 0xc3 || p[1] != 0x01) {
                if (len == 0)
                        fail(e, "bad magic: empty message");
                else
                        fail(e, "bad magic 0x%02x%02x, expected 0xc301", p[0],
                             len > 1 ? p[1] : 0);
                return NULL;
        }
        if (len < PO_AVRO_HEADER_SIZE) {
                fail(e, "truncated header: %zu bytes, %d needed", len,
                     PO_AVRO_HEADER_SIZE);
                return NULL;
        }
        for (k = 0; k < 8; k++)
                fp |= (uint64_t)p[2 + k] << (8 * k);
        for (i = 0; i < avro->count; i++)
                if (avro->entries[i].fingerprint == fp)
                        return &avro->entries[i];
        fail(e, "unknown schema fingerprint 0x%016" PRIx64, fp);
        return NULL;
}

po_err_t po_avro_peek(po_avro_t *avro, const void *buf, size_t len, const char **name,
                      int *version, char *errstr, size_t errstr_size)
{
        perr_t e = {errstr, errstr_size};
        entry_t *en;

        if (!avro || (!buf && len))
                return PO_ERR_INVALID_ARG;
        en = peek(avro, buf, len, &e);
        if (!en)
                return PO_ERR_BAD_INPUT;
        *name = en->name;
        *version = en->version;
        return PO_OK;
}

/* Direct readers (po/avro_wire.h): the message's header must name the
 * current version of name, laid out as layout_fp. */
int po_avro_wire_decode(po_avro_t *avro, const char *name, uint64_t layout_fp,
                        po_rd_fn fn, const void *buf, size_t len, void *what)
{
        entry_t *en = find(avro, name, 0);
        po_rd_t r = {0};

        if (!en || avro->generic_only || en->fingerprint != layout_fp || !buf ||
            peek(avro, buf, len, NULL) != en)
                return 0;
        r.p = (const unsigned char *)buf + PO_AVRO_HEADER_SIZE;
        r.len = len - PO_AVRO_HEADER_SIZE;
        fn(&r, what);
        if (r.bail || r.pos != r.len)
                return 0;
        avro->direct_reads++;
        return 1;
}

/* Reads a validated datum of entry en into a new value of its current
 * version. */
static po_err_t read_datum(po_avro_t *avro, entry_t *en, const unsigned char *p,
                           size_t len, avro_value_t *out, perr_t *e)
{
        entry_t *cur = en->version ? en->current : en;
        avro_value_t proj = {NULL, NULL}, rw = {NULL, NULL};
        avro_reader_t r = NULL;
        po_err_t err = PO_ERR_NOMEM;

        if (avro_generic_value_new(cur->iface, out)) {
                out->iface = out->self = NULL;
                fail(e, "out of memory");
                return PO_ERR_NOMEM;
        }
        if (avro->reader)
                avro_reader_memory_set_source(avro->reader, (const char *)p,
                                              (int64_t)len);
        else
                avro->reader = avro_reader_memory((const char *)p, (int64_t)len);
        r = avro->reader;
        if (!r) {
                fail(e, "out of memory");
                goto done;
        }
        if (en->version == 0) {
                if (avro_value_read(r, out)) {
                        err = PO_ERR_BAD_INPUT;
                        fail(e, "avro-c: %s", avro_strerror());
                        goto done;
                }
                err = PO_OK;
                goto done;
        }
        /* Historic: avro-c resolves writer -> projection (promotions,
         * reordered and dropped fields), then the fields added since the
         * writer's version get their defaults. */
        if (avro_generic_value_new(en->proj_iface, &proj) ||
            avro_resolved_writer_new_value(en->resolver, &rw)) {
                fail(e, "out of memory");
                goto done;
        }
        avro_resolved_writer_set_dest(&rw, &proj);
        if (avro_value_read(r, &rw)) {
                err = PO_ERR_BAD_INPUT;
                fail(e, "avro-c: %s", avro_strerror());
                goto done;
        }
        if (copy_resolved(&proj, out, cur->norm, cur->defs, 0, e)) {
                err = PO_ERR_BAD_INPUT;
                fail_prefix(e, "resolving into the current schema");
                goto done;
        }
        err = PO_OK;
done:
        if (rw.self)
                avro_value_decref(&rw);
        if (proj.self)
                avro_value_decref(&proj);
        if (err) {
                avro_value_decref(out);
                out->iface = out->self = NULL;
        }
        return err;
}

po_err_t po_avro_decode(po_avro_t *avro, const char *expected_name, const void *buf,
                        size_t len, avro_value_t *out, char *errstr, size_t errstr_size)
{
        perr_t e = {errstr, errstr_size};
        const unsigned char *p = buf;
        entry_t *en;

        out->iface = NULL;
        out->self = NULL;
        if (!find(avro, expected_name, 0)) {
                fail(&e, "unknown schema %s", expected_name ? expected_name : "(null)");
                return PO_ERR_INVALID_ARG;
        }
        if (!buf && len)
                return PO_ERR_INVALID_ARG;
        en = peek(avro, p, len, &e);
        if (!en)
                return PO_ERR_BAD_INPUT;
        if (strcmp(en->name, expected_name) != 0) {
                fail(&e, "message is a %s (version %d), expected %s", en->name,
                     en->version, expected_name);
                return PO_ERR_BAD_INPUT;
        }
        if (check_datum(en->prog, p + PO_AVRO_HEADER_SIZE, len - PO_AVRO_HEADER_SIZE,
                        PO_AVRO_HEADER_SIZE, &e))
                return PO_ERR_BAD_INPUT;
        return read_datum(avro, en, p + PO_AVRO_HEADER_SIZE, len - PO_AVRO_HEADER_SIZE,
                          out, &e);
}

/* ------------------------------------------------------------------------
 * Field access by name
 */

#define FIELD_CACHE_SLOTS 1024 /* a power of two */
#define FIELD_CACHE_NAME 40    /* longer names are looked up every time */

typedef struct field_slot {
        unsigned generation;
        avro_schema_t schema;
        const char *name; /* the caller's pointer: a hint, name_copy decides */
        size_t index;
        char name_copy[FIELD_CACHE_NAME];
} field_slot_t;

static _Thread_local field_slot_t field_cache[FIELD_CACHE_SLOTS];

int po_avro_get_field(avro_value_t *rec, const char *name, avro_value_t *out)
{
        avro_schema_t s = avro_value_get_schema(rec);
        uintptr_t h = (uintptr_t)s * 31u + (uintptr_t)name;
        field_slot_t *slot = &field_cache[(h >> 3) & (FIELD_CACHE_SLOTS - 1)];
        unsigned gen = atomic_load_explicit(&field_generation, memory_order_relaxed);
        size_t n;
        int idx;

        if (slot->schema == s && slot->name == name && slot->generation == gen && s &&
            strcmp(slot->name_copy, name) == 0)
                return avro_value_get_by_index(rec, slot->index, out, NULL);
        if (!s || !is_avro_record(s))
                return avro_value_get_by_name(rec, name, out, NULL);
        idx = avro_schema_record_field_get_index(s, name);
        n = strlen(name);
        if (idx < 0 || n >= FIELD_CACHE_NAME)
                return avro_value_get_by_name(rec, name, out, NULL);
        slot->generation = gen;
        slot->schema = s;
        slot->name = name;
        slot->index = (size_t)idx;
        memcpy(slot->name_copy, name, n + 1);
        return avro_value_get_by_index(rec, (size_t)idx, out, NULL);
}

/* ------------------------------------------------------------------------
 * DeadLetter
 */

void po_deadletter_init(po_deadletter_t *dl)
{
        memset(dl, 0, sizeof(*dl));
}

void po_deadletter_release(po_deadletter_t *dl)
{
        size_t i;

        if (!dl)
                return;
        free((void *)dl->stage);
        free((void *)dl->source_topic);
        free((void *)dl->reason_code);
        free((void *)dl->error);
        free((void *)dl->original_key);
        free((void *)dl->original_value);
        for (i = 0; dl->headers && i < dl->header_count; i++) {
                free((void *)dl->headers[i].key);
                free((void *)dl->headers[i].value);
        }
        free((void *)dl->headers);
        memset(dl, 0, sizeof(*dl));
}

/* Field setters over a generic record; each returns avro-c's error code. */
static int set_string(avro_value_t *rec, const char *field, const char *s)
{
        avro_value_t f;
        int rc = po_avro_get_field(rec, field, &f);

        return rc ? rc : avro_value_set_string(&f, (char *)s);
}

static int set_long(avro_value_t *rec, const char *field, int64_t v)
{
        avro_value_t f;
        int rc = po_avro_get_field(rec, field, &f);

        return rc ? rc : avro_value_set_long(&f, v);
}

static int set_int(avro_value_t *rec, const char *field, int32_t v)
{
        avro_value_t f;
        int rc = po_avro_get_field(rec, field, &f);

        return rc ? rc : avro_value_set_int(&f, v);
}

/* A bytes field, or a ["null", "bytes"] union when nullable. */
static int set_bytes(avro_value_t *rec, const char *field, int nullable, int present,
                     const void *buf, size_t len)
{
        char empty = '\0';
        avro_value_t f, b;
        int rc = po_avro_get_field(rec, field, &f);

        if (rc)
                return rc;
        if (nullable) {
                rc = avro_value_set_branch(&f, present ? 1 : 0, &b);
                if (rc || !present)
                        return rc ? rc : avro_value_set_null(&b);
                f = b;
        }
        return avro_value_set_bytes(&f, len ? (void *)buf : &empty, len);
}

static int fill_deadletter(avro_value_t *v, const po_deadletter_t *dl)
{
        avro_value_t headers, h;
        size_t i;
        int rc;

        rc = set_string(v, "stage", dl->stage);
        rc = rc ? rc : set_string(v, "source_topic", dl->source_topic);
        rc = rc ? rc : set_int(v, "partition", dl->partition);
        rc = rc ? rc : set_long(v, "offset", dl->offset);
        rc = rc ? rc : set_string(v, "reason_code", dl->reason_code);
        rc = rc ? rc : set_string(v, "error", dl->error);
        rc = rc ? rc : set_int(v, "attempts", dl->attempts);
        rc = rc ? rc : set_long(v, "first_failure_at", dl->first_failure_ms);
        rc = rc ? rc : set_long(v, "last_failure_at", dl->last_failure_ms);
        rc = rc ? rc : set_long(v, "priority", dl->priority);
        rc = rc ? rc
                : set_bytes(v, "original_key", 1, dl->has_original_key, dl->original_key,
                            dl->original_key_len);
        rc = rc ? rc
                : set_bytes(v, "original_value", 0, 1, dl->original_value,
                            dl->original_value_len);
        rc = rc ? rc : po_avro_get_field(v, "original_headers", &headers);
        for (i = 0; !rc && i < dl->header_count; i++) {
                rc = avro_value_append(&headers, &h, NULL);
                rc = rc ? rc : set_string(&h, "key", dl->headers[i].key);
                rc = rc ? rc
                        : set_bytes(&h, "value", 1, dl->headers[i].has_value,
                                    dl->headers[i].value, dl->headers[i].value_len);
        }
        return rc;
}

po_err_t po_avro_encode_deadletter(po_avro_t *avro, const po_deadletter_t *dl,
                                   po_dynbuf_t *out, char *errstr, size_t errstr_size)
{
        perr_t e = {errstr, errstr_size};
        avro_value_t v;
        po_err_t err;
        size_t i;

        if (!dl || !dl->stage || !dl->source_topic || !dl->reason_code || !dl->error ||
            (!dl->original_value && dl->original_value_len) ||
            (dl->has_original_key && !dl->original_key && dl->original_key_len) ||
            (dl->header_count && !dl->headers)) {
                fail(&e, "dead letter: a required field is NULL");
                return PO_ERR_INVALID_ARG;
        }
        for (i = 0; i < dl->header_count; i++)
                if (!dl->headers[i].key ||
                    (dl->headers[i].has_value && !dl->headers[i].value &&
                     dl->headers[i].value_len)) {
                        fail(&e, "dead letter: header %zu has a NULL key or value", i);
                        return PO_ERR_INVALID_ARG;
                }
        err = po_avro_value_new(avro, "DeadLetter", 0, &v);
        if (err) {
                fail(&e, "DeadLetter: %s", po_err_str(err));
                return err;
        }
        if (fill_deadletter(&v, dl)) {
                fail(&e, "dead letter: avro-c: %s", avro_strerror());
                err = PO_ERR_NOMEM;
        } else {
                err = po_avro_encode(avro, "DeadLetter", &v, out, errstr, errstr_size);
        }
        avro_value_decref(&v);
        return err;
}

/* A copy of n bytes plus a NUL, never NULL on success. */
static void *copy_mem(const void *p, size_t n)
{
        char *c = malloc(n + 1);

        if (c) {
                if (n)
                        memcpy(c, p, n);
                c[n] = '\0';
        }
        return c;
}

static int get_string(avro_value_t *rec, const char *field, const char **out)
{
        avro_value_t f;
        const char *s;
        size_t n;

        if (po_avro_get_field(rec, field, &f) || avro_value_get_string(&f, &s, &n))
                return -1;
        /* n counts avro-c's NUL; the decoder's checks rule out NULs inside. */
        *out = copy_mem(s, n ? n - 1 : 0);
        return *out ? 0 : -1;
}

static int get_long(avro_value_t *rec, const char *field, int64_t *out)
{
        avro_value_t f;

        return po_avro_get_field(rec, field, &f) || avro_value_get_long(&f, out) ? -1 : 0;
}

static int get_int(avro_value_t *rec, const char *field, int32_t *out)
{
        avro_value_t f;

        return po_avro_get_field(rec, field, &f) || avro_value_get_int(&f, out) ? -1 : 0;
}

/* A bytes field or a ["null", "bytes"] union (*present says which). */
static int get_bytes(avro_value_t *rec, const char *field, int nullable, const void **out,
                     size_t *len, int *present)
{
        avro_value_t f, b;
        const void *p;
        int d;

        if (po_avro_get_field(rec, field, &f))
                return -1;
        *present = 1;
        if (nullable) {
                if (avro_value_get_discriminant(&f, &d) ||
                    avro_value_get_current_branch(&f, &b))
                        return -1;
                if (d == 0) {
                        *present = 0;
                        *out = NULL;
                        *len = 0;
                        return 0;
                }
                f = b;
        }
        if (avro_value_get_bytes(&f, &p, len))
                return -1;
        *out = copy_mem(p, *len);
        return *out ? 0 : -1;
}

static int read_deadletter(avro_value_t *v, po_deadletter_t *dl)
{
        avro_value_t headers, h;
        po_header_t *hs;
        size_t i, n;

        if (get_string(v, "stage", &dl->stage) ||
            get_string(v, "source_topic", &dl->source_topic) ||
            get_int(v, "partition", &dl->partition) ||
            get_long(v, "offset", &dl->offset) ||
            get_string(v, "reason_code", &dl->reason_code) ||
            get_string(v, "error", &dl->error) || get_int(v, "attempts", &dl->attempts) ||
            get_long(v, "first_failure_at", &dl->first_failure_ms) ||
            get_long(v, "last_failure_at", &dl->last_failure_ms) ||
            get_long(v, "priority", &dl->priority) ||
            get_bytes(v, "original_key", 1, &dl->original_key, &dl->original_key_len,
                      &dl->has_original_key))
                return -1;
        if (get_bytes(v, "original_value", 0, &dl->original_value,
                      &dl->original_value_len, &(int){0}) ||
            po_avro_get_field(v, "original_headers", &headers) ||
            avro_value_get_size(&headers, &n))
                return -1;
        if (n == 0)
                return 0;
        hs = calloc(n, sizeof(*hs));
        if (!hs)
                return -1;
        dl->headers = hs;
        dl->header_count = n;
        for (i = 0; i < n; i++)
                if (avro_value_get_by_index(&headers, i, &h, NULL) ||
                    get_string(&h, "key", &hs[i].key) ||
                    get_bytes(&h, "value", 1, &hs[i].value, &hs[i].value_len,
                              &hs[i].has_value))
                        return -1;
        return 0;
}

po_err_t po_avro_decode_deadletter(po_avro_t *avro, const void *buf, size_t len,
                                   po_deadletter_t *out, char *errstr, size_t errstr_size)
{
        perr_t e = {errstr, errstr_size};
        avro_value_t v;
        po_err_t err;

        po_deadletter_init(out);
        err = po_avro_decode(avro, "DeadLetter", buf, len, &v, errstr, errstr_size);
        if (err)
                return err;
        if (read_deadletter(&v, out)) {
                po_deadletter_release(out);
                fail(&e, "dead letter: out of memory");
                err = PO_ERR_NOMEM;
        }
        avro_value_decref(&v);
        return err;
}
