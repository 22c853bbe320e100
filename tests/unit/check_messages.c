/* po_messages: code definitions between the spec's JSON and Avro, the
 * ValidatedOrder, PricedOrder and UsageEvent codecs: round trips with every
 * optional field present and absent, identity of JSON -> def -> Avro -> def
 * -> JSON, fingerprints, refusals that name the field (from JSON, from
 * tampered Avro, and from the encoders), and hostile bytes.
 *
 * PO_MESSAGES_CORPUS_DIR=<dir> makes it write one valid encoding of each
 * message there (<Name>-typed.bin): seeds for tests/fuzz/fuzz_avro.c that
 * pass the typed decoders, which the generic seeds of check_avro do not. */
#include <check.h>
#include <ctype.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "po/avro_wire.h"
#include "po/calcjson.h"
#include "po/messages.h"
#include "po/order_avro.h"

#define ARENA_LIMIT (64u << 20)

static po_avro_t *reg;
static char err[512];

static void setup(void)
{
        reg = po_avro_new(err, sizeof(err));
        ck_assert_msg(reg != NULL, "po_avro_new: %s", err);
}

static void teardown(void)
{
        po_avro_destroy(reg);
        reg = NULL;
}

/* ---- definitions used throughout ---- */

/* Every field of PRICING_SPEC.md section 3, as po_codedef_to_json writes it. */
static const char full_json[] =
    "{\"code\":\"VIP-GOLD_1\",\"status\":\"active\",\"type\":\"percentage\","
    "\"value\":1250,\"currency\":\"USD\",\"min_spend\":5000,\"max_spend\":1000000,"
    "\"max_discount\":2500,\"starts_at\":\"2026-11-24T10:00:00Z\","
    "\"expires_at\":\"2026-12-01T00:00:00.250000Z\",\"usage_limit\":1000,"
    "\"per_customer_limit\":2,\"tiers\":[\"gold\",\"platinum\"],"
    "\"tier_values\":{\"gold\":1500,\"platinum\":2000},\"channels\":[\"web\",\"mobile\"],"
    "\"customer_id\":\"c-17\",\"targets\":{\"skus\":[\"SKU-1\",\"SKU-2\"],"
    "\"categories\":[\"shoes\"],\"exclude_skus\":[\"SKU-9\"],"
    "\"exclude_categories\":[\"gift-cards\"],\"low_stock_max\":5,\"max_margin_bp\":4000},"
    "\"combinable\":true,\"priority\":7,\"version\":3,\"updated_at\":1790000000123456}";

/* Only what is required (and what to_json always writes). */
static const char minimal_json[] =
    "{\"code\":\"SAVE10\",\"status\":\"active\",\"type\":\"percentage\",\"value\":1000,"
    "\"combinable\":false,\"priority\":0,\"version\":0,\"updated_at\":0}";

/* Present but empty lists, a fixed code, the instant bounds, negative
 * microseconds, strings that need escaping, values at their bounds. */
static const char edge_json[] =
    "{\"code\":\"W-5_X\",\"status\":\"paused\",\"type\":\"fixed\","
    "\"value\":1000000000000000,\"currency\":\"EUR\",\"max_discount\":0,"
    "\"starts_at\":\"0000-01-01T00:00:00Z\","
    "\"expires_at\":\"9999-12-31T23:59:59.999999Z\",\"usage_limit\":0,"
    "\"tiers\":[],\"tier_values\":{\"\":0,\"gold \\\"q\\\" \\\\\":1000000000000000},"
    "\"channels\":[\"p\\u00f6s \\u20ac \\ud83d\\ude00\",\"\"],"
    "\"customer_id\":\"tab\\there\",\"targets\":{\"skus\":[]},"
    "\"combinable\":false,\"priority\":1000000000000000,"
    "\"version\":9223372036854775807,\"updated_at\":-1}";

static const char archived_json[] =
    "{\"code\":\"OLD-1\",\"status\":\"archived\",\"type\":\"percentage\",\"value\":10000,"
    "\"expires_at\":\"1969-12-31T23:59:59.999999Z\","
    "\"targets\":{\"exclude_categories\":[\"x\"],\"max_margin_bp\":0},"
    "\"combinable\":true,\"priority\":0,\"version\":12,\"updated_at\":0}";

static const char *const canonical[] = {full_json, minimal_json, edge_json,
                                        archived_json};

static void parse_ok(const char *json, po_arena_t *a, po_codedef_t *cd)
{
        po_err_t e = po_codedef_from_json(json, strlen(json), a, cd, err, sizeof(err));

        ck_assert_msg(e == PO_OK, "%s: %s", json, err);
}

/* po_codedef_to_json as a malloc'd string. */
static char *to_json(const po_codedef_t *cd)
{
        po_dynbuf_t b;
        char *s;

        po_dynbuf_init(&b, 1 << 20);
        ck_assert_int_eq(po_codedef_to_json(cd, &b), PO_OK);
        s = strdup(po_dynbuf_str(&b));
        po_dynbuf_release(&b);
        ck_assert_ptr_nonnull(s);
        return s;
}

static int json_same(const char *a, const char *b)
{
        json_t *x = json_loads(a, 0, NULL), *y = json_loads(b, 0, NULL);
        int same = x && y && json_equal(x, y);

        json_decref(x);
        json_decref(y);
        return same;
}

static void encode_def(const po_codedef_t *cd, po_dynbuf_t *b)
{
        po_dynbuf_init(b, 64u << 20);
        ck_assert_msg(po_codedef_encode(reg, cd, b, err, sizeof(err)) == PO_OK, "%s",
                      err);
}

/* ---- CodeDefinition ---- */

START_TEST(codedef_json_avro_identity)
{
        size_t i;

        for (i = 0; i < sizeof(canonical) / sizeof(canonical[0]); i++) {
                po_arena_t a1, a2;
                po_codedef_t cd, back;
                po_dynbuf_t b;
                char *j1, *j2;

                po_arena_init(&a1, ARENA_LIMIT);
                po_arena_init(&a2, ARENA_LIMIT);
                parse_ok(canonical[i], &a1, &cd);
                j1 = to_json(&cd);
                ck_assert_msg(json_same(j1, canonical[i]), "%zu: %s", i, j1);
                ck_assert_ptr_null(strchr(j1, '\n'));
                encode_def(&cd, &b);
                ck_assert_msg(po_codedef_decode(reg, b.data, b.len, &a2, &back, err,
                                                sizeof(err)) == PO_OK,
                              "%zu: %s", i, err);
                j2 = to_json(&back);
                ck_assert_str_eq(j1, j2);
                ck_assert_int_eq(back.def.used_total, 0);
                free(j1);
                free(j2);
                po_dynbuf_release(&b);
                po_arena_release(&a1);
                po_arena_release(&a2);
        }
}
END_TEST

/* The registry reuses one value per schema, its writer and its reader
 * (po_avro_scratch): messages of different shapes in a row, a message far
 * bigger than the one before (the room tried first is too small) and
 * appends to a buffer that already holds a message all read back exactly,
 * and a decode leaves nothing of the message before it. */
START_TEST(codecs_reuse_the_registry_values)
{
        static const char *const order[] = {full_json, minimal_json, full_json, edge_json,
                                            minimal_json};
        po_dynbuf_t all, one;
        size_t i, at[6], len[6], n = sizeof(order) / sizeof(order[0]);
        char big[8192], *j1, *j2;
        po_arena_t a;
        po_codedef_t cd, back;

        po_dynbuf_init(&all, 1 << 20);
        po_arena_init(&a, ARENA_LIMIT);
        for (i = 0; i < n; i++) {
                parse_ok(order[i], &a, &cd);
                at[i] = all.len;
                ck_assert_msg(po_codedef_encode(reg, &cd, &all, err, sizeof(err)) ==
                                  PO_OK,
                              "%s", err);
                len[i] = all.len - at[i];
        }
        /* Many SKUs: several times the last message's size. */
        {
                size_t k =
                    (size_t)snprintf(big, sizeof(big),
                                     "{\"code\":\"BIG\",\"status\":\"active\","
                                     "\"type\":\"fixed\",\"value\":100,"
                                     "\"currency\":\"USD\",\"targets\":{\"skus\":[");
                int s;

                for (s = 0; s < 300; s++)
                        k += (size_t)snprintf(big + k, sizeof(big) - k, "%s\"SKU-%04d\"",
                                              s ? "," : "", s);
                snprintf(big + k, sizeof(big) - k,
                         "]},\"combinable\":true,\"priority\":1,\"version\":1,"
                         "\"updated_at\":1}");
        }
        parse_ok(big, &a, &cd);
        at[n] = all.len;
        ck_assert_msg(po_codedef_encode(reg, &cd, &all, err, sizeof(err)) == PO_OK, "%s",
                      err);
        len[n] = all.len - at[n];
        ck_assert_uint_gt(len[n], 3 * len[n - 1]);
        /* Each message, decoded in another order, is what it encoded, and the
         * same bytes as when encoded alone into an empty buffer. */
        for (i = n + 1; i-- > 0;) {
                po_arena_t b;
                const char *src = i == n ? big : order[i];

                po_arena_init(&b, ARENA_LIMIT);
                ck_assert_msg(po_codedef_decode(reg, all.data + at[i], len[i], &b, &back,
                                                err, sizeof(err)) == PO_OK,
                              "%zu: %s", i, err);
                j1 = to_json(&back);
                parse_ok(src, &b, &cd);
                j2 = to_json(&cd);
                ck_assert_str_eq(j1, j2);
                encode_def(&cd, &one);
                ck_assert_uint_eq(one.len, len[i]);
                ck_assert(memcmp(one.data, all.data + at[i], len[i]) == 0);
                po_dynbuf_release(&one);
                free(j1);
                free(j2);
                po_arena_release(&b);
        }
        po_dynbuf_release(&all);
        po_arena_release(&a);
}
END_TEST

/* The struct itself survives Avro, field by field (not only its JSON). */
START_TEST(codedef_avro_fields)
{
        po_arena_t a1, a2;
        po_codedef_t cd, back;
        po_dynbuf_t b;
        const po_code_def_t *d = &back.def;

        po_arena_init(&a1, ARENA_LIMIT);
        po_arena_init(&a2, ARENA_LIMIT);
        parse_ok(full_json, &a1, &cd);
        encode_def(&cd, &b);
        ck_assert_int_eq(
            po_codedef_decode(reg, b.data, b.len, &a2, &back, err, sizeof(err)), PO_OK);
        ck_assert_str_eq(d->code, "VIP-GOLD_1");
        ck_assert_uint_eq(d->code_len, 10);
        ck_assert_int_eq(d->status, PO_CODE_ACTIVE);
        ck_assert_int_eq(d->type, PO_CODE_PERCENTAGE);
        ck_assert_int_eq(d->value, 1250);
        ck_assert_str_eq(d->currency, "USD");
        ck_assert(d->min_spend.present && d->min_spend.value == 5000);
        ck_assert(d->max_spend.present && d->max_spend.value == 1000000);
        ck_assert(d->max_discount.present && d->max_discount.value == 2500);
        ck_assert(d->has_starts_at && d->starts_at.sec == 1795514400 &&
                  d->starts_at.nsec == 0);
        ck_assert(d->has_expires_at && d->expires_at.nsec == 250000000);
        ck_assert(d->usage_limit.present && d->usage_limit.value == 1000);
        ck_assert(d->per_customer_limit.present && d->per_customer_limit.value == 2);
        ck_assert(d->tiers.present && d->tiers.count == 2);
        ck_assert(d->tiers.items[1].len == 8 &&
                  memcmp(d->tiers.items[1].ptr, "platinum", 8) == 0);
        ck_assert_uint_eq(d->tier_value_count, 2);
        ck_assert(d->channels.present && d->channels.count == 2);
        ck_assert(d->has_customer_id && d->customer_id.len == 4);
        ck_assert(d->targets.skus.present && d->targets.skus.count == 2);
        ck_assert(d->targets.exclude_categories.count == 1);
        ck_assert(d->targets.low_stock_max.present &&
                  d->targets.low_stock_max.value == 5);
        ck_assert(d->targets.max_margin_bp.present &&
                  d->targets.max_margin_bp.value == 4000);
        ck_assert_int_eq(d->combinable, 1);
        ck_assert_int_eq(d->priority, 7);
        ck_assert_int_eq(back.version, 3);
        ck_assert_int_eq(back.updated_at, 1790000000123456LL);
        po_dynbuf_release(&b);
        po_arena_release(&a2);

        /* Every optional field absent. */
        po_arena_init(&a2, ARENA_LIMIT);
        parse_ok(minimal_json, &a1, &cd);
        encode_def(&cd, &b);
        ck_assert_int_eq(
            po_codedef_decode(reg, b.data, b.len, &a2, &back, err, sizeof(err)), PO_OK);
        ck_assert_str_eq(d->currency, "");
        ck_assert(!d->min_spend.present && !d->max_spend.present &&
                  !d->max_discount.present && !d->has_starts_at && !d->has_expires_at &&
                  !d->usage_limit.present && !d->per_customer_limit.present &&
                  !d->tiers.present && d->tier_value_count == 0 && !d->channels.present &&
                  !d->has_customer_id && !d->targets.skus.present &&
                  !d->targets.categories.present && !d->targets.exclude_skus.present &&
                  !d->targets.exclude_categories.present &&
                  !d->targets.low_stock_max.present && !d->targets.max_margin_bp.present);
        po_dynbuf_release(&b);
        po_arena_release(&a1);
        po_arena_release(&a2);
}
END_TEST

START_TEST(codedef_json_normalizes)
{
        static const char in[] =
            "{\"code\":\"  save10\\t\",\"status\":\"active\",\"type\":\"percentage\","
            "\"value\":1000,\"starts_at\":\"2026-11-24T11:00:00.5+01:00\","
            "\"expires_at\":\"2026-11-25t10:00:00.123456000z\",\"usage_limit\":null,"
            "\"targets\":{},\"tier_values\":{},\"unknown\":1}";
        static const char want[] =
            "{\"code\":\"SAVE10\",\"status\":\"active\",\"type\":\"percentage\","
            "\"value\":1000,\"starts_at\":\"2026-11-24T10:00:00.500000Z\","
            "\"expires_at\":\"2026-11-25T10:00:00.123456Z\",\"combinable\":false,"
            "\"priority\":0,\"version\":0,\"updated_at\":0}";
        po_arena_t a;
        po_codedef_t cd;
        char *j;

        po_arena_init(&a, ARENA_LIMIT);
        parse_ok(in, &a, &cd);
        j = to_json(&cd);
        ck_assert_str_eq(j, want);
        free(j);
        po_arena_release(&a);
}
END_TEST

/* Strings are copied into the arena: the JSON text can go. */
START_TEST(codedef_strings_live_in_the_arena)
{
        po_arena_t a;
        po_codedef_t cd;
        size_t n = strlen(full_json);
        char *text = malloc(n), *j;

        ck_assert_ptr_nonnull(text);
        memcpy(text, full_json, n);
        po_arena_init(&a, ARENA_LIMIT);
        ck_assert_int_eq(po_codedef_from_json(text, n, &a, &cd, err, sizeof(err)), PO_OK);
        memset(text, 'x', n);
        free(text);
        j = to_json(&cd);
        ck_assert(json_same(j, full_json));
        free(j);
        po_arena_release(&a);
}
END_TEST

/* from_json refuses with a message naming the field. */
START_TEST(codedef_json_rejections)
{
        static const struct {
                const char *json, *field;
        } cases[] = {
            {"{\"code\":\"P\",\"status\":\"active\",\"type\":\"percentage\",\"value\":1}",
             "code:"},
            {"{\"code\":\"BAD CODE\",\"status\":\"active\",\"type\":\"fixed\","
             "\"value\":1,\"currency\":\"USD\"}",
             "code:"},
            {"{\"status\":\"active\",\"type\":\"percentage\",\"value\":1}", "code:"},
            {"{\"code\":\"ABC\",\"status\":\"deleted\",\"type\":\"percentage\","
             "\"value\":1}",
             "status:"},
            {"{\"code\":\"ABC\",\"status\":\"active\",\"type\":\"bogo\",\"value\":1}",
             "type:"},
            {"{\"code\":\"ABC\",\"status\":\"active\",\"type\":\"percentage\","
             "\"value\":10001}",
             "value: 10001 is outside 0..10000"},
            {"{\"code\":\"ABC\",\"status\":\"active\",\"type\":\"fixed\","
             "\"value\":1000000000000001,\"currency\":\"USD\"}",
             "value:"},
            {"{\"code\":\"ABC\",\"status\":\"active\",\"type\":\"fixed\",\"value\":-1,"
             "\"currency\":\"USD\"}",
             "value:"},
            {"{\"code\":\"ABC\",\"status\":\"active\",\"type\":\"percentage\","
             "\"value\":1.5}",
             "value:"},
            {"{\"code\":\"ABC\",\"status\":\"active\",\"type\":\"percentage\","
             "\"value\":5,\"tier_values\":{\"gold\":10001}}",
             "tier_values.gold:"},
            {"{\"code\":\"ABC\",\"status\":\"active\",\"type\":\"fixed\",\"value\":5,"
             "\"currency\":\"usd\"}",
             "currency:"},
            {"{\"code\":\"ABC\",\"status\":\"active\",\"type\":\"fixed\",\"value\":5,"
             "\"currency\":\"USDX\"}",
             "currency:"},
            {"{\"code\":\"ABC\",\"status\":\"active\",\"type\":\"fixed\",\"value\":5}",
             "currency:"},
            {"{\"code\":\"ABC\",\"status\":\"active\",\"type\":\"percentage\","
             "\"value\":5,\"min_spend\":100}",
             "currency:"},
            {"{\"code\":\"ABC\",\"status\":\"active\",\"type\":\"percentage\","
             "\"value\":5,\"currency\":\"USD\",\"max_discount\":-1}",
             "max_discount:"},
            {"{\"code\":\"ABC\",\"status\":\"active\",\"type\":\"percentage\","
             "\"value\":5,\"usage_limit\":1000000000000001}",
             "usage_limit:"},
            {"{\"code\":\"ABC\",\"status\":\"active\",\"type\":\"percentage\","
             "\"value\":5,\"per_customer_limit\":\"2\"}",
             "per_customer_limit:"},
            {"{\"code\":\"ABC\",\"status\":\"active\",\"type\":\"percentage\","
             "\"value\":5,\"priority\":-1}",
             "priority:"},
            {"{\"code\":\"ABC\",\"status\":\"active\",\"type\":\"percentage\","
             "\"value\":5,\"starts_at\":\"2026-11-24T10:00:00.0000001Z\"}",
             "starts_at: finer than a microsecond"},
            {"{\"code\":\"ABC\",\"status\":\"active\",\"type\":\"percentage\","
             "\"value\":5,\"starts_at\":\"0000-01-01T00:30:00+01:00\"}",
             "starts_at: outside"},
            {"{\"code\":\"ABC\",\"status\":\"active\",\"type\":\"percentage\","
             "\"value\":5,\"expires_at\":\"9999-12-31T23:59:59-00:01\"}",
             "expires_at: outside"},
            {"{\"code\":\"ABC\",\"status\":\"active\",\"type\":\"percentage\","
             "\"value\":5,\"expires_at\":\"tomorrow\"}",
             "expires_at:"},
            {"{\"code\":\"ABC\",\"status\":\"active\",\"type\":\"percentage\","
             "\"value\":5,\"tiers\":\"gold\"}",
             "tiers:"},
            {"{\"code\":\"ABC\",\"status\":\"active\",\"type\":\"percentage\","
             "\"value\":5,\"channels\":[\"web\",3]}",
             "channels[1]:"},
            {"{\"code\":\"ABC\",\"status\":\"active\",\"type\":\"percentage\","
             "\"value\":5,\"customer_id\":7}",
             "customer_id:"},
            {"{\"code\":\"ABC\",\"status\":\"active\",\"type\":\"percentage\","
             "\"value\":5,\"targets\":{\"low_stock_max\":-5}}",
             "targets.low_stock_max:"},
            {"{\"code\":\"ABC\",\"status\":\"active\",\"type\":\"percentage\","
             "\"value\":5,\"targets\":{\"skus\":[\"a\",{}]}}",
             "targets.skus[1]:"},
            {"{\"code\":\"ABC\",\"status\":\"active\",\"type\":\"percentage\","
             "\"value\":5,\"combinable\":\"yes\"}",
             "combinable:"},
            {"{\"code\":\"ABC\",\"status\":\"active\",\"type\":\"percentage\","
             "\"value\":5,\"version\":-1}",
             "version:"},
            {"{\"code\":\"ABC\",\"status\":\"active\",\"type\":\"percentage\","
             "\"value\":5,\"version\":\"3\"}",
             "version:"},
            {"{\"code\":\"ABC\",\"status\":\"active\",\"type\":\"percentage\","
             "\"value\":5,\"updated_at\":1.5}",
             "updated_at:"},
            {"{\"code\":\"ABC\",\"status\":\"active\",\"type\":\"percentage\","
             "\"value\":5,\"updated_at\":4611686018427387904}",
             "updated_at:"},
            {"{\"code\":\"ABC\",\"code\":\"ABD\",\"status\":\"active\","
             "\"type\":\"percentage\",\"value\":5}",
             "not JSON"},
            {"{\"code\":\"A\\u0000BC\",\"status\":\"active\",\"type\":\"percentage\","
             "\"value\":5}",
             "not JSON"},
            {"[1,2]", "must be a JSON object"},
            {"{\"code\":", "not JSON"},
            {"", "not JSON"},
        };
        size_t i;

        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                po_arena_t a;
                po_codedef_t cd;
                po_err_t e;

                po_arena_init(&a, ARENA_LIMIT);
                e = po_codedef_from_json(cases[i].json, strlen(cases[i].json), &a, &cd,
                                         err, sizeof(err));
                ck_assert_msg(e == PO_ERR_BAD_INPUT, "case %zu accepted: %s", i,
                              cases[i].json);
                ck_assert_msg(strncmp(err, cases[i].field, strlen(cases[i].field)) == 0 ||
                                  strstr(err, cases[i].field) != NULL,
                              "case %zu: \"%s\" does not name %s", i, err,
                              cases[i].field);
                ck_assert_str_eq(cd.def.code, "");
                po_arena_release(&a);
        }
}
END_TEST

/* A list longer than a definition may hold, and an arena too small. */
START_TEST(codedef_json_bounds)
{
        po_dynbuf_t b;
        po_arena_t a;
        po_codedef_t cd;
        int i;

        po_dynbuf_init(&b, 1 << 20);
        po_dynbuf_addf(&b, "{\"code\":\"ABC\",\"status\":\"active\",\"type\":"
                           "\"percentage\",\"value\":5,\"tiers\":[");
        for (i = 0; i < 10001; i++)
                po_dynbuf_addf(&b, "%s\"t%d\"", i ? "," : "", i);
        po_dynbuf_addf(&b, "]}");
        po_arena_init(&a, ARENA_LIMIT);
        ck_assert_int_eq(po_codedef_from_json(b.data, b.len, &a, &cd, err, sizeof(err)),
                         PO_ERR_BAD_INPUT);
        ck_assert_msg(strncmp(err, "tiers:", 6) == 0, "%s", err);
        po_arena_release(&a);

        po_arena_init(&a, 100); /* cannot hold the lists of the full definition */
        ck_assert_int_eq(
            po_codedef_from_json(full_json, strlen(full_json), &a, &cd, err, sizeof(err)),
            PO_ERR_NOMEM);
        po_arena_release(&a);
        po_dynbuf_release(&b);
}
END_TEST

/* from_json and promo-calc share one parser: the same message, prefixed. */
START_TEST(codedef_json_matches_promo_calc)
{
        static const char def[] =
            "{\"code\":\"ABC\",\"status\":\"active\",\"type\":\"percentage\","
            "\"value\":10001}";
        static const char kase[] =
            "{\"currency\":\"USD\",\"now\":\"2026-11-24T10:00:00Z\",\"lines\":[{\"id\":"
            "\"l1\",\"sku\":\"S\",\"category\":\"c\",\"unit_price\":100,\"quantity\":1,"
            "\"tax_rate_ppm\":0}],\"codes\":[\"ABC\"],\"definitions\":[{\"code\":"
            "\"ABC\",\"status\":\"active\",\"type\":\"percentage\",\"value\":10001}]}";
        po_calcjson_t *cj = po_calcjson_new();
        po_arena_t a;
        po_codedef_t cd;
        po_dynbuf_t out;

        po_arena_init(&a, ARENA_LIMIT);
        ck_assert_int_eq(
            po_codedef_from_json(def, strlen(def), &a, &cd, err, sizeof(err)),
            PO_ERR_BAD_INPUT);
        ck_assert_str_eq(err, "value: 10001 is outside 0..10000");
        po_dynbuf_init(&out, 1 << 20);
        ck_assert_int_eq(po_calcjson_process(cj, kase, strlen(kase), 0, &out), PO_OK);
        ck_assert_str_eq(
            po_dynbuf_str(&out),
            "{\"error\":{\"code\":\"BAD_INPUT\",\"message\":\"definitions[0]."
            "value: 10001 is outside 0..10000\"}}");
        po_dynbuf_release(&out);
        po_calcjson_destroy(cj);
        po_arena_release(&a);
}
END_TEST

/* What the encoder and to_json refuse in a definition built in code. */
START_TEST(codedef_encode_rejections)
{
        po_arena_t a;
        po_codedef_t cd, bad;
        po_dynbuf_t b;
        int64_t fp;

        po_arena_init(&a, ARENA_LIMIT);
        parse_ok(full_json, &a, &cd);
        po_dynbuf_init(&b, 1 << 20);

        bad = cd;
        bad.def.starts_at.nsec = 1; /* one nanosecond */
        ck_assert_int_eq(po_codedef_encode(reg, &bad, &b, err, sizeof(err)),
                         PO_ERR_INVALID_ARG);
        ck_assert_msg(strncmp(err, "starts_at:", 10) == 0, "%s", err);
        ck_assert_int_eq(po_codedef_to_json(&bad, &b), PO_ERR_INVALID_ARG);
        ck_assert_int_eq(po_codedef_fingerprint(reg, &bad, &fp), PO_ERR_INVALID_ARG);

        bad = cd;
        bad.def.expires_at.sec = INT64_MAX / 1000; /* would overflow microseconds */
        ck_assert_int_eq(po_codedef_encode(reg, &bad, &b, err, sizeof(err)),
                         PO_ERR_INVALID_ARG);
        ck_assert_msg(strncmp(err, "expires_at:", 11) == 0, "%s", err);

        bad = cd;
        bad.def.value = 10001;
        ck_assert_int_eq(po_codedef_encode(reg, &bad, &b, err, sizeof(err)),
                         PO_ERR_INVALID_ARG);
        ck_assert_msg(strncmp(err, "value:", 6) == 0, "%s", err);

        bad = cd;
        bad.def.status = (po_code_status_t)7;
        ck_assert_int_eq(po_codedef_encode(reg, &bad, &b, err, sizeof(err)),
                         PO_ERR_INVALID_ARG);
        ck_assert_msg(strncmp(err, "status:", 7) == 0, "%s", err);

        bad = cd;
        memcpy(bad.def.currency, "US1", 4);
        ck_assert_int_eq(po_codedef_encode(reg, &bad, &b, err, sizeof(err)),
                         PO_ERR_INVALID_ARG);
        ck_assert_msg(strncmp(err, "currency:", 9) == 0, "%s", err);

        bad = cd;
        strcpy(bad.def.code, "vip");
        bad.def.code_len = 3;
        ck_assert_int_eq(po_codedef_encode(reg, &bad, &b, err, sizeof(err)),
                         PO_ERR_INVALID_ARG);
        ck_assert_msg(strncmp(err, "code:", 5) == 0, "%s", err);

        bad = cd;
        bad.def.customer_id.ptr = "a\0b";
        bad.def.customer_id.len = 3;
        ck_assert_int_eq(po_codedef_encode(reg, &bad, &b, err, sizeof(err)),
                         PO_ERR_INVALID_ARG);
        ck_assert_msg(strncmp(err, "customer_id:", 12) == 0, "%s", err);

        {
                po_tier_value_t twice[2] = {{{"gold", 4}, 1}, {{"gold", 4}, 2}};

                bad = cd;
                bad.def.tier_values = twice;
                bad.def.tier_value_count = 2;
                ck_assert_int_eq(po_codedef_encode(reg, &bad, &b, err, sizeof(err)),
                                 PO_ERR_INVALID_ARG);
                ck_assert_msg(strstr(err, "tier_values.gold: given twice"), "%s", err);
                ck_assert_int_eq(po_codedef_to_json(&bad, &b), PO_ERR_INVALID_ARG);
        }
        po_dynbuf_release(&b);
        po_arena_release(&a);
}
END_TEST

START_TEST(codedef_fingerprints)
{
        static const char *const variants[] = {
            full_json,
            minimal_json,
            edge_json,
            archived_json,
            /* minimal with one thing changed each */
            "{\"code\":\"SAVE10\",\"status\":\"active\",\"type\":\"percentage\","
            "\"value\":1001}",
            "{\"code\":\"SAVE10\",\"status\":\"paused\",\"type\":\"percentage\","
            "\"value\":1000}",
            "{\"code\":\"SAVE11\",\"status\":\"active\",\"type\":\"percentage\","
            "\"value\":1000}",
            "{\"code\":\"SAVE10\",\"status\":\"active\",\"type\":\"percentage\","
            "\"value\":1000,\"version\":1}",
            "{\"code\":\"SAVE10\",\"status\":\"active\",\"type\":\"percentage\","
            "\"value\":1000,\"updated_at\":1}",
            "{\"code\":\"SAVE10\",\"status\":\"active\",\"type\":\"percentage\","
            "\"value\":1000,\"combinable\":true}",
            "{\"code\":\"SAVE10\",\"status\":\"active\",\"type\":\"percentage\","
            "\"value\":1000,\"tiers\":[]}",
            "{\"code\":\"SAVE10\",\"status\":\"active\",\"type\":\"percentage\","
            "\"value\":1000,\"tiers\":[\"a\",\"b\"]}",
            "{\"code\":\"SAVE10\",\"status\":\"active\",\"type\":\"percentage\","
            "\"value\":1000,\"tiers\":[\"b\",\"a\"]}",
            "{\"code\":\"SAVE10\",\"status\":\"active\",\"type\":\"percentage\","
            "\"value\":1000,\"targets\":{\"skus\":[]}}",
            "{\"code\":\"SAVE10\",\"status\":\"active\",\"type\":\"percentage\","
            "\"value\":1000,\"starts_at\":\"2026-01-01T00:00:00Z\"}",
            "{\"code\":\"SAVE10\",\"status\":\"active\",\"type\":\"percentage\","
            "\"value\":1000,\"starts_at\":\"2026-01-01T00:00:00.000001Z\"}",
        };
        enum { N = sizeof(variants) / sizeof(variants[0]) };
        int64_t fps[N], again;
        po_arena_t a, a2;
        po_codedef_t cd, cd2;
        po_dynbuf_t b;
        uint64_t crc;
        size_t i, j;

        po_arena_init(&a, ARENA_LIMIT);
        for (i = 0; i < N; i++) {
                parse_ok(variants[i], &a, &cd);
                ck_assert_int_eq(po_codedef_fingerprint(reg, &cd, &fps[i]), PO_OK);
                /* Stable: the same definition parsed again, elsewhere. */
                po_arena_init(&a2, ARENA_LIMIT);
                parse_ok(variants[i], &a2, &cd2);
                ck_assert_int_eq(po_codedef_fingerprint(reg, &cd2, &again), PO_OK);
                ck_assert_int_eq(fps[i], again);
                /* The CRC-64-AVRO of the datum, without the header. */
                encode_def(&cd2, &b);
                crc = po_avro_crc64(b.data + PO_AVRO_HEADER_SIZE,
                                    b.len - PO_AVRO_HEADER_SIZE);
                ck_assert(memcmp(&crc, &fps[i], 8) == 0);
                po_dynbuf_release(&b);
                po_arena_release(&a2);
                for (j = 0; j < i; j++)
                        ck_assert_msg(fps[i] != fps[j], "variants %zu and %zu collide", i,
                                      j);
        }
        /* The same definition spelt differently is the same definition. */
        parse_ok("{\"code\":\" save10\",\"status\":\"active\",\"type\":\"percentage\","
                 "\"value\":1000,\"tier_values\":{},\"targets\":{},\"currency\":null}",
                 &a, &cd);
        ck_assert_int_eq(po_codedef_fingerprint(reg, &cd, &again), PO_OK);
        ck_assert_int_eq(again, fps[1]);
        po_arena_release(&a);
}
END_TEST

/* ---- tampering with Avro values: what a hostile producer could write ---- */

/* Steps into v along path ("decisions.0.definition.value"): record fields by
 * name, array items by index; a union on the way is set to its second
 * branch (its content kept when it already is). */
static avro_value_t nav(avro_value_t *v, const char *path)
{
        char buf[256], *tok, *save = NULL;
        avro_value_t cur = *v, next;

        snprintf(buf, sizeof(buf), "%s", path);
        for (tok = strtok_r(buf, ".", &save); tok; tok = strtok_r(NULL, ".", &save)) {
                if (avro_value_get_type(&cur) == AVRO_UNION) {
                        ck_assert_int_eq(avro_value_set_branch(&cur, 1, &next), 0);
                        cur = next;
                }
                if (isdigit((unsigned char)tok[0]))
                        ck_assert_msg(avro_value_get_by_index(
                                          &cur, strtoul(tok, NULL, 10), &next, NULL) == 0,
                                      "%s", path);
                else
                        ck_assert_msg(avro_value_get_by_name(&cur, tok, &next, NULL) == 0,
                                      "%s", path);
                cur = next;
        }
        return cur;
}

typedef enum { SET_LONG, SET_STR, SET_NULL, APPEND } tamper_op_t;

/* Re-encodes the message in (of schema name) with the value at path changed. */
static void tamper(const char *name, const po_dynbuf_t *in, const char *path,
                   tamper_op_t op, int64_t n, const char *s, po_dynbuf_t *out)
{
        avro_value_t v, f, b;

        ck_assert_int_eq(
            po_avro_decode(reg, name, in->data, in->len, &v, err, sizeof(err)), PO_OK);
        f = nav(&v, path);
        switch (op) {
        case SET_NULL:
                ck_assert_int_eq(avro_value_set_branch(&f, 0, &b), 0);
                break;
        case APPEND: /* n copies of the array's first item */
                if (avro_value_get_type(&f) == AVRO_UNION) {
                        ck_assert_int_eq(avro_value_set_branch(&f, 1, &b), 0);
                        f = b;
                }
                while (n-- > 0) {
                        avro_value_t first, item;
                        size_t idx;

                        /* Appending may move the items: find the first one after. */
                        ck_assert_int_eq(avro_value_append(&f, &item, &idx), 0);
                        ck_assert_int_eq(avro_value_get_by_index(&f, 0, &first, NULL), 0);
                        ck_assert_int_eq(avro_value_get_by_index(&f, idx, &item, NULL),
                                         0);
                        ck_assert_int_eq(avro_value_copy(&item, &first), 0);
                }
                break;
        default:
                if (avro_value_get_type(&f) == AVRO_UNION) {
                        ck_assert_int_eq(avro_value_set_branch(&f, 1, &b), 0);
                        f = b;
                }
                if (op == SET_LONG)
                        ck_assert_int_eq(avro_value_set_long(&f, n), 0);
                else
                        ck_assert_int_eq(avro_value_set_string(&f, s), 0);
        }
        po_dynbuf_init(out, 64u << 20);
        ck_assert_msg(po_avro_encode(reg, name, &v, out, err, sizeof(err)) == PO_OK, "%s",
                      err);
        avro_value_decref(&v);
}

/* The typed decoder of schema name on buf; releases what it decoded. */
static po_err_t decode_as(const char *name, const void *buf, size_t len)
{
        po_arena_t a;
        po_err_t e;

        po_arena_init(&a, ARENA_LIMIT);
        if (strcmp(name, "CodeDefinition") == 0) {
                po_codedef_t cd;

                e = po_codedef_decode(reg, buf, len, &a, &cd, err, sizeof(err));
        } else if (strcmp(name, "ValidatedOrder") == 0) {
                po_validated_t v;

                po_order_init(&v.order, ARENA_LIMIT);
                e = po_validated_decode(reg, buf, len, &v, err, sizeof(err));
                if (e)
                        ck_assert_ptr_null(v.decisions);
                po_order_release(&v.order);
        } else if (strcmp(name, "PricedOrder") == 0) {
                po_priced_t p;

                e = po_priced_decode(reg, buf, len, &a, &p, err, sizeof(err));
        } else {
                po_usage_event_t u;

                ck_assert_str_eq(name, "UsageEvent");
                e = po_usage_decode(reg, buf, len, &a, &u, err, sizeof(err));
        }
        po_arena_release(&a);
        return e;
}

typedef struct refusal {
        const char *path;
        tamper_op_t op;
        int64_t n;
        const char *s;
        const char *field; /* the message must start with it */
} refusal_t;

static void expect_refusals(const char *name, const po_dynbuf_t *good, const refusal_t *r,
                            size_t count)
{
        size_t i;

        ck_assert_int_eq(decode_as(name, good->data, good->len), PO_OK);
        for (i = 0; i < count; i++) {
                po_dynbuf_t b;
                po_err_t e;

                tamper(name, good, r[i].path, r[i].op, r[i].n, r[i].s, &b);
                e = decode_as(name, b.data, b.len);
                ck_assert_msg(e == PO_ERR_BAD_INPUT, "%s %s: accepted (%d)", name,
                              r[i].path, (int)e);
                ck_assert_msg(strncmp(err, r[i].field, strlen(r[i].field)) == 0,
                              "%s %s: \"%s\" does not start with %s", name, r[i].path,
                              err, r[i].field);
                po_dynbuf_release(&b);
        }
}

START_TEST(codedef_decode_refusals)
{
        static const refusal_t r[] = {
            {"code", SET_STR, 0, "vip-gold", "code:"},
            {"code", SET_STR, 0, "AB", "code:"},
            {"code", SET_STR, 0,
             "ABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDE",
             "code:"},
            {"value", SET_LONG, 10001, NULL, "value:"},
            {"value", SET_LONG, -1, NULL, "value:"},
            {"currency", SET_STR, 0, "usd", "currency:"},
            {"currency", SET_STR, 0, "USDX", "currency:"},
            {"currency", SET_NULL, 0, NULL, "currency:"}, /* min_spend needs it */
            {"min_spend", SET_LONG, -5, NULL, "min_spend:"},
            {"max_spend", SET_LONG, 1000000000000001LL, NULL, "max_spend:"},
            {"starts_at", SET_LONG, INT64_MAX, NULL, "starts_at:"},
            {"expires_at", SET_LONG, INT64_MIN, NULL, "expires_at:"},
            {"usage_limit", SET_LONG, -1, NULL, "usage_limit:"},
            {"per_customer_limit", SET_LONG, -1, NULL, "per_customer_limit:"},
            {"tier_values.gold", SET_LONG, 10001, NULL, "tier_values.gold:"},
            {"targets.low_stock_max", SET_LONG, -1, NULL, "targets.low_stock_max:"},
            {"targets.max_margin_bp", SET_LONG, INT64_MAX, NULL,
             "targets.max_margin_bp:"},
            {"priority", SET_LONG, -1, NULL, "priority:"},
            {"version", SET_LONG, -1, NULL, "version:"},
            {"updated_at", SET_LONG, INT64_MIN, NULL, "updated_at:"},
        };
        po_arena_t a;
        po_codedef_t cd;
        po_dynbuf_t b, fixed;

        po_arena_init(&a, ARENA_LIMIT);
        parse_ok(full_json, &a, &cd);
        encode_def(&cd, &b);
        expect_refusals("CodeDefinition", &b, r, sizeof(r) / sizeof(r[0]));
        /* A fixed code without currency. */
        parse_ok("{\"code\":\"FIX\",\"status\":\"active\",\"type\":\"fixed\",\"value\":5,"
                 "\"currency\":\"JPY\"}",
                 &a, &cd);
        encode_def(&cd, &fixed);
        {
                static const refusal_t r2[] = {
                    {"currency", SET_NULL, 0, NULL, "currency:"},
                    {"value", SET_LONG, 1000000000000001LL, NULL, "value:"},
                };

                expect_refusals("CodeDefinition", &fixed, r2, 2);
        }
        po_dynbuf_release(&fixed);
        po_dynbuf_release(&b);
        po_arena_release(&a);
}
END_TEST

/* A list longer than MSG_MAX_LIST, written by someone else's encoder. */
START_TEST(codedef_decode_long_list)
{
        po_arena_t a;
        po_codedef_t cd;
        po_dynbuf_t b, t;

        po_arena_init(&a, ARENA_LIMIT);
        parse_ok(full_json, &a, &cd);
        encode_def(&cd, &b);
        tamper("CodeDefinition", &b, "targets.skus", APPEND, 9999, NULL, &t);
        ck_assert_int_eq(decode_as("CodeDefinition", t.data, t.len), PO_ERR_BAD_INPUT);
        ck_assert_msg(strncmp(err, "targets.skus: 10001 given", 25) == 0, "%s", err);
        po_dynbuf_release(&t);
        po_dynbuf_release(&b);
        po_arena_release(&a);
}
END_TEST

/* ---- ValidatedOrder ---- */

static po_order_line_t full_lines[] = {
    {"l1", "SKU-1", "shoes", 1999, 2, 82500, 1, 800},
    {"l2", "SKU-2", "socks", 500, 3, 0, 0, 0},
};
static const char *full_codes[] = {"save10", " vip-gold_1 ", "bogus!"};
static po_order_attr_t full_attrs[] = {{"purchase_order", "PO-1"}, {"store_id", "s-9"}};
static po_line_stock_t full_stock[] = {{"l1", 1, 10}, {"l2", 0, 0}};

static po_order_line_t min_lines[] = {{"only", "S", "c", 0, 1, 0, 0, 0}};
static po_line_stock_t min_stock[] = {{"only", 0, 0}};

static void full_order(po_order_t *o)
{
        memset(o, 0, sizeof(*o));
        o->channel = "web";
        o->account = "acme";
        o->external_id = "A-1";
        o->order_id = "web:A-1";
        o->has_customer = 1;
        o->customer_id = "c-17";
        o->customer_tier = "gold";
        o->customer_email = "a@example.com";
        memcpy(o->currency, "USD", 4);
        o->tax_mode = PO_TAX_INCLUSIVE;
        o->lines = full_lines;
        o->line_count = 2;
        o->codes = full_codes;
        o->code_count = 3;
        o->placed_at_us = 1795514400000000LL;
        o->received_at_us = 1795514400123456LL;
        o->attrs = full_attrs;
        o->attr_count = 2;
}

static void min_order(po_order_t *o)
{
        memset(o, 0, sizeof(*o));
        o->channel = "pos";
        o->account = "";
        o->external_id = "T";
        o->order_id = "pos:T";
        memcpy(o->currency, "JPY", 4);
        o->lines = min_lines;
        o->line_count = 1;
        o->codes = NULL;
        o->placed_at_us = -1;
        o->received_at_us = 0;
}

static int str_eq(const char *a, const char *b)
{
        return a == b || (a && b && strcmp(a, b) == 0);
}

static void assert_order_eq(const po_order_t *a, const po_order_t *b)
{
        size_t i;

        ck_assert(str_eq(a->channel, b->channel) && str_eq(a->account, b->account) &&
                  str_eq(a->external_id, b->external_id) &&
                  str_eq(a->order_id, b->order_id));
        ck_assert_int_eq(a->has_customer, b->has_customer);
        ck_assert(str_eq(a->customer_id, b->customer_id) &&
                  str_eq(a->customer_tier, b->customer_tier) &&
                  str_eq(a->customer_email, b->customer_email));
        ck_assert_str_eq(a->currency, b->currency);
        ck_assert_int_eq(a->tax_mode, b->tax_mode);
        ck_assert_uint_eq(a->line_count, b->line_count);
        for (i = 0; i < a->line_count; i++) {
                const po_order_line_t *x = &a->lines[i], *y = &b->lines[i];

                ck_assert(str_eq(x->line_id, y->line_id) && str_eq(x->sku, y->sku) &&
                          str_eq(x->category, y->category));
                ck_assert(x->unit_price == y->unit_price && x->quantity == y->quantity &&
                          x->tax_rate_ppm == y->tax_rate_ppm &&
                          x->has_unit_cost == y->has_unit_cost &&
                          (!x->has_unit_cost || x->unit_cost == y->unit_cost));
        }
        ck_assert_uint_eq(a->code_count, b->code_count);
        for (i = 0; i < a->code_count; i++)
                ck_assert_str_eq(a->codes[i], b->codes[i]);
        ck_assert_int_eq(a->placed_at_us, b->placed_at_us);
        ck_assert_int_eq(a->received_at_us, b->received_at_us);
        ck_assert_uint_eq(a->attr_count, b->attr_count);
        for (i = 0; i < a->attr_count; i++)
                ck_assert(str_eq(a->attrs[i].key, b->attrs[i].key) &&
                          str_eq(a->attrs[i].value, b->attrs[i].value));
}

static void assert_def_eq(const po_codedef_t *a, const po_codedef_t *b)
{
        char *x = to_json(a), *y = to_json(b);

        ck_assert_str_eq(x, y);
        free(x);
        free(y);
}

static void assert_validated_eq(const po_validated_t *a, const po_validated_t *b)
{
        size_t i;

        assert_order_eq(&a->order, &b->order);
        ck_assert_int_eq(a->stacking, b->stacking);
        ck_assert_int_eq(a->rounding, b->rounding);
        ck_assert_uint_eq(a->line_stock_count, b->line_stock_count);
        for (i = 0; i < a->line_stock_count; i++) {
                ck_assert_str_eq(a->line_stock[i].line_id, b->line_stock[i].line_id);
                ck_assert_int_eq(a->line_stock[i].has_stock, b->line_stock[i].has_stock);
                ck_assert_int_eq(a->line_stock[i].stock, b->line_stock[i].stock);
        }
        ck_assert_uint_eq(a->decision_count, b->decision_count);
        for (i = 0; i < a->decision_count; i++) {
                const po_decision_t *x = &a->decisions[i], *y = &b->decisions[i];

                ck_assert(str_eq(x->requested, y->requested) && str_eq(x->code, y->code));
                ck_assert_int_eq(x->applied, y->applied);
                ck_assert(str_eq(x->reason, y->reason));
                ck_assert_int_eq(x->has_definition, y->has_definition);
                if (x->has_definition)
                        assert_def_eq(&x->definition, &y->definition);
                ck_assert_int_eq(x->has_fingerprint, y->has_fingerprint);
                ck_assert_int_eq(x->fingerprint, y->fingerprint);
                ck_assert_int_eq(x->has_usage, y->has_usage);
                ck_assert_int_eq(x->usage_total, y->usage_total);
                ck_assert_int_eq(x->usage_customer, y->usage_customer);
                ck_assert(str_eq(x->tier, y->tier) &&
                          str_eq(x->reservation_id, y->reservation_id));
        }
        ck_assert_int_eq(a->validated_at, b->validated_at);
}

/* A ValidatedOrder with every optional field present somewhere (defs in a). */
static void full_validated(po_validated_t *v, po_decision_t d[3], po_arena_t *a)
{
        memset(v, 0, sizeof(*v));
        memset(d, 0, 3 * sizeof(*d));
        full_order(&v->order);
        v->stacking = PO_STACK_COMBINE;
        v->rounding = PO_ROUND_HALF_EVEN;
        v->line_stock = full_stock;
        v->line_stock_count = 2;
        d[0].requested = "save10";
        d[0].code = "SAVE10";
        d[0].applied = 1;
        d[0].has_definition = 1;
        parse_ok(minimal_json, a, &d[0].definition);
        d[0].has_fingerprint = 1;
        ck_assert_int_eq(po_codedef_fingerprint(reg, &d[0].definition, &d[0].fingerprint),
                         PO_OK);
        d[0].has_usage = 1;
        d[0].usage_total = 57;
        d[0].usage_customer = 0;
        d[0].tier = "gold";
        d[0].reservation_id = "r-1";
        d[1].requested = " vip-gold_1 ";
        d[1].code = "VIP-GOLD_1";
        d[1].applied = 0;
        d[1].reason = "NOT_COMBINABLE";
        d[1].has_definition = 1;
        parse_ok(full_json, a, &d[1].definition);
        d[1].has_fingerprint = 1;
        d[1].fingerprint = INT64_MIN;
        d[1].has_usage = 1;
        d[1].usage_total = 1000000000000000LL;
        d[1].usage_customer = 3;
        d[1].tier = "";
        d[2].requested = "bogus!";
        d[2].code = "BOGUS!";
        d[2].reason = "MALFORMED_CODE";
        v->decisions = d;
        v->decision_count = 3;
        v->validated_at = 1795514400999999LL;
}

static void min_validated(po_validated_t *v)
{
        memset(v, 0, sizeof(*v));
        min_order(&v->order);
        v->line_stock = min_stock;
        v->line_stock_count = 1;
        v->validated_at = 0;
}

static void validated_round_trip(const po_validated_t *v)
{
        po_validated_t back;
        po_dynbuf_t b;

        po_dynbuf_init(&b, 64u << 20);
        ck_assert_msg(po_validated_encode(reg, v, &b, err, sizeof(err)) == PO_OK, "%s",
                      err);
        po_order_init(&back.order, ARENA_LIMIT);
        ck_assert_msg(po_validated_decode(reg, b.data, b.len, &back, err, sizeof(err)) ==
                          PO_OK,
                      "%s", err);
        assert_validated_eq(v, &back);
        po_order_release(&back.order);
        po_dynbuf_release(&b);
}

START_TEST(validated_round_trips)
{
        po_validated_t v;
        po_decision_t d[3];
        po_arena_t a;

        po_arena_init(&a, ARENA_LIMIT);
        full_validated(&v, d, &a);
        validated_round_trip(&v);
        /* Every optional field absent. */
        min_validated(&v);
        validated_round_trip(&v);
        /* A customer without any of its fields. */
        full_validated(&v, d, &a);
        v.order.customer_id = v.order.customer_tier = v.order.customer_email = NULL;
        validated_round_trip(&v);
        po_arena_release(&a);
}
END_TEST

START_TEST(validated_encode_rejections)
{
        po_validated_t v;
        po_decision_t d[3];
        po_arena_t a;
        po_dynbuf_t b;
        po_line_stock_t wrong[2] = {{"l2", 0, 0}, {"l1", 0, 0}};
        po_order_line_t lines[2];
        static po_order_line_t many[PO_PRICING_MAX_LINES + 1];
        static po_line_stock_t many_stock[PO_PRICING_MAX_LINES + 1];
        size_t i;

        po_arena_init(&a, ARENA_LIMIT);
        po_dynbuf_init(&b, 64u << 20);
#define REFUSE(field)                                                                    \
        do {                                                                             \
                ck_assert_int_eq(po_validated_encode(reg, &v, &b, err, sizeof(err)),     \
                                 PO_ERR_INVALID_ARG);                                    \
                ck_assert_msg(strncmp(err, field, strlen(field)) == 0, "%s", err);       \
                full_validated(&v, d, &a);                                               \
        } while (0)
        full_validated(&v, d, &a);
        v.decision_count = 2;
        REFUSE("decisions: 2 for 3");
        v.line_stock_count = 1;
        REFUSE("line_stock: 1 entries for 2");
        v.line_stock = wrong;
        REFUSE("line_stock[0].line_id");
        memcpy(v.order.currency, "usd", 4);
        REFUSE("order.currency");
        v.order.line_count = 0;
        REFUSE("order.lines");
        v.order.code_count = 21;
        REFUSE("order.requested_codes");
        d[1].definition.def.value = 20000;
        REFUSE("decisions[1].definition.value");
        d[0].reason = "UNKNOWN_CODE";
        REFUSE("decisions[0].reason");
        d[2].reason = NULL;
        REFUSE("decisions[2].reason");
        d[2].reason = "not a reason";
        REFUSE("decisions[2].reason");
        d[2].reservation_id = "r-9";
        REFUSE("decisions[2].reservation_id");
        d[1].requested = "other";
        REFUSE("decisions[1].requested");
        d[0].usage_customer = -1;
        REFUSE("decisions[0].usage_customer");
        v.validated_at = INT64_MAX;
        REFUSE("validated_at");
        v.stacking = (po_stacking_t)2;
        REFUSE("stacking");
        for (i = 0; i < PO_PRICING_MAX_LINES + 1; i++) {
                many[i] = full_lines[1];
                many_stock[i] = full_stock[1];
        }
        v.order.lines = many;
        v.order.line_count = PO_PRICING_MAX_LINES + 1;
        v.line_stock = many_stock;
        v.line_stock_count = PO_PRICING_MAX_LINES + 1;
        REFUSE("order.lines: 1001 given");
        memcpy(lines, full_lines, sizeof(lines));
        v.order.lines = lines;
        lines[0].quantity = 0;
        REFUSE("order.lines[0].quantity");
        memcpy(lines, full_lines, sizeof(lines));
        v.order.lines = lines;
        lines[1].unit_price = PO_PRICING_MAX_UNIT_PRICE + 1;
        REFUSE("order.lines[1].unit_price");
        memcpy(lines, full_lines, sizeof(lines));
        v.order.lines = lines;
        lines[1].sku = NULL;
        REFUSE("order.lines[1].sku: required");
#undef REFUSE
        po_dynbuf_release(&b);
        po_arena_release(&a);
}
END_TEST

START_TEST(validated_decode_refusals)
{
        static const refusal_t r[] = {
            {"order.currency", SET_STR, 0, "usd", "order.currency:"},
            {"order.lines.0.quantity", SET_LONG, 0, NULL, "order.lines[0].quantity:"},
            {"order.lines.1.unit_cost", SET_LONG, -1, NULL, "order.lines[1].unit_cost:"},
            {"order.placed_at", SET_LONG, INT64_MIN, NULL, "order.placed_at:"},
            {"order.requested_codes.0", SET_STR, 0, "other", "decisions[0].requested:"},
            {"line_stock.0.stock", SET_LONG, -1, NULL, "line_stock[0].stock:"},
            {"line_stock.1.line_id", SET_STR, 0, "l9", "line_stock[1].line_id:"},
            {"decisions.0.reason", SET_STR, 0, "UNKNOWN_CODE", "decisions[0].reason:"},
            {"decisions.2.reason", SET_NULL, 0, NULL, "decisions[2].reason:"},
            {"decisions.0.definition.value", SET_LONG, 20000, NULL,
             "decisions[0].definition.value:"},
            {"decisions.1.definition.targets.skus.1", SET_STR, 0, "\xc3\xa9",
             NULL /* fine */},
            {"decisions.0.usage_customer", SET_NULL, 0, NULL,
             "decisions[0].usage_customer:"},
            {"decisions.0.usage_total", SET_LONG, -3, NULL, "decisions[0].usage_total:"},
            {"decisions.2.reservation_id", SET_STR, 0, "r",
             "decisions[2].reservation_id:"},
            {"validated_at", SET_LONG, INT64_MAX, NULL, "validated_at:"},
            {"line_stock", APPEND, 1, NULL, "line_stock: 3 entries for 2"},
            {"decisions", APPEND, 1, NULL, "decisions: 4 for 3"},
            {"order.lines", APPEND, PO_PRICING_MAX_LINES - 1, NULL,
             "order.lines: 1001 given"},
            {"order.requested_codes", APPEND, 18, NULL,
             "order.requested_codes: 21 given"},
        };
        po_validated_t v;
        po_decision_t d[3];
        po_arena_t a;
        po_dynbuf_t b;
        size_t i;

        po_arena_init(&a, ARENA_LIMIT);
        full_validated(&v, d, &a);
        po_dynbuf_init(&b, 64u << 20);
        ck_assert_int_eq(po_validated_encode(reg, &v, &b, err, sizeof(err)), PO_OK);
        for (i = 0; i < sizeof(r) / sizeof(r[0]); i++) {
                if (r[i].field) {
                        expect_refusals("ValidatedOrder", &b, &r[i], 1);
                } else {
                        po_dynbuf_t t;

                        tamper("ValidatedOrder", &b, r[i].path, r[i].op, r[i].n, r[i].s,
                               &t);
                        ck_assert_msg(decode_as("ValidatedOrder", t.data, t.len) == PO_OK,
                                      "%s", err);
                        po_dynbuf_release(&t);
                }
        }
        po_dynbuf_release(&b);
        po_arena_release(&a);
}
END_TEST

/* An arena too small for the message: bad input, not a crash. */
START_TEST(validated_arena_limit)
{
        po_validated_t v, back;
        po_decision_t d[3];
        po_arena_t a;
        po_dynbuf_t b;
        size_t limit;

        po_arena_init(&a, ARENA_LIMIT);
        full_validated(&v, d, &a);
        po_dynbuf_init(&b, 64u << 20);
        ck_assert_int_eq(po_validated_encode(reg, &v, &b, err, sizeof(err)), PO_OK);
        for (limit = 0; limit < 4096; limit += 7) {
                po_err_t e;

                po_order_init(&back.order, limit);
                e = po_validated_decode(reg, b.data, b.len, &back, err, sizeof(err));
                ck_assert_msg(e == PO_ERR_BAD_INPUT || e == PO_OK, "%zu: %d %s", limit,
                              (int)e, err);
                po_order_release(&back.order);
        }
        po_dynbuf_release(&b);
        po_arena_release(&a);
}
END_TEST

/* ---- PricedOrder ---- */

static po_priced_line_t priced_lines[] = {
    {"l1", 3998, 400, 3598, 297, 3895, 1},
    {"l2", 1500, 0, 1500, 0, 1500, 0},
};
static po_priced_alloc_t allocs[] = {{"l1", 300}, {"l2", 100}};
static po_priced_receipt_t receipt[] = {
    {"SAVE10", "SAVE10: 10% off eligible items", 400, allocs, 2},
    {"ZERO-ALLOC", "", 0, NULL, 0},
};
static po_priced_reject_t rejected[] = {
    {"VIP-7K2M", "UNKNOWN_CODE"}, {"A VERY LONG ( MALFORMED ) CODE", "MALFORMED_CODE"}};

static void full_priced(po_priced_t *p)
{
        memset(p, 0, sizeof(*p));
        p->channel = "web";
        p->account = "acme";
        p->external_id = "A-1";
        p->order_id = "web:A-1";
        memcpy(p->currency, "USD", 4);
        p->subtotal = 5498;
        p->discount_total = 400;
        p->tax_total = 297;
        p->tax_total_before = 330;
        p->grand_total = 5395;
        p->lines = priced_lines;
        p->line_count = 2;
        p->receipt = receipt;
        p->receipt_count = 2;
        p->rejected = rejected;
        p->rejected_count = 2;
        p->priced_at = 1795514400000001LL;
}

static void assert_priced_eq(const po_priced_t *a, const po_priced_t *b)
{
        size_t i, j;

        ck_assert(str_eq(a->channel, b->channel) && str_eq(a->account, b->account) &&
                  str_eq(a->external_id, b->external_id) &&
                  str_eq(a->order_id, b->order_id));
        ck_assert_str_eq(a->currency, b->currency);
        ck_assert(a->subtotal == b->subtotal && a->discount_total == b->discount_total &&
                  a->tax_total == b->tax_total &&
                  a->tax_total_before == b->tax_total_before &&
                  a->grand_total == b->grand_total && a->priced_at == b->priced_at);
        ck_assert_uint_eq(a->line_count, b->line_count);
        for (i = 0; i < a->line_count; i++) {
                const po_priced_line_t *x = &a->lines[i], *y = &b->lines[i];

                ck_assert(str_eq(x->line_id, y->line_id) && x->subtotal == y->subtotal &&
                          x->discount == y->discount && x->net == y->net &&
                          x->tax == y->tax && x->total == y->total &&
                          x->available == y->available);
        }
        ck_assert_uint_eq(a->receipt_count, b->receipt_count);
        for (i = 0; i < a->receipt_count; i++) {
                const po_priced_receipt_t *x = &a->receipt[i], *y = &b->receipt[i];

                ck_assert(str_eq(x->code, y->code) &&
                          str_eq(x->description, y->description) &&
                          x->amount == y->amount);
                ck_assert_uint_eq(x->allocation_count, y->allocation_count);
                for (j = 0; j < x->allocation_count; j++)
                        ck_assert(str_eq(x->allocations[j].line_id,
                                         y->allocations[j].line_id) &&
                                  x->allocations[j].amount == y->allocations[j].amount);
        }
        ck_assert_uint_eq(a->rejected_count, b->rejected_count);
        for (i = 0; i < a->rejected_count; i++)
                ck_assert(str_eq(a->rejected[i].code, b->rejected[i].code) &&
                          str_eq(a->rejected[i].reason, b->rejected[i].reason));
}

static void priced_round_trip(const po_priced_t *p)
{
        po_priced_t back;
        po_arena_t a;
        po_dynbuf_t b;

        po_arena_init(&a, ARENA_LIMIT);
        po_dynbuf_init(&b, 64u << 20);
        ck_assert_msg(po_priced_encode(reg, p, &b, err, sizeof(err)) == PO_OK, "%s", err);
        ck_assert_msg(po_priced_decode(reg, b.data, b.len, &a, &back, err, sizeof(err)) ==
                          PO_OK,
                      "%s", err);
        assert_priced_eq(p, &back);
        po_dynbuf_release(&b);
        po_arena_release(&a);
}

START_TEST(priced_round_trips)
{
        po_priced_t p;

        full_priced(&p);
        priced_round_trip(&p);
        /* Nothing applied, nothing rejected, one line. */
        p.line_count = 1;
        p.receipt_count = 0;
        p.receipt = NULL;
        p.rejected_count = 0;
        p.rejected = NULL;
        priced_round_trip(&p);
}
END_TEST

START_TEST(priced_refusals)
{
        static const refusal_t r[] = {
            {"currency", SET_STR, 0, "usd", "currency:"},
            {"currency", SET_STR, 0, "US", "currency:"},
            {"subtotal", SET_LONG, -1, NULL, "subtotal:"},
            {"grand_total", SET_LONG, 2000000000000001LL, NULL, "grand_total:"},
            {"lines.1.tax", SET_LONG, -1, NULL, "lines[1].tax:"},
            {"receipt.0.code", SET_STR, 0, "save10", "receipt[0].code:"},
            {"receipt.0.allocations.1.amount", SET_LONG, -2, NULL,
             "receipt[0].allocations[1].amount:"},
            {"receipt.0.allocations", APPEND, 1, NULL, "receipt[0].allocations: 3 given"},
            {"rejected.0.reason", SET_STR, 0, "unknown code", "rejected[0].reason:"},
            {"rejected.0.reason", SET_STR, 0, "", "rejected[0].reason:"},
            {"rejected", APPEND, 17, NULL, "receipt, rejected: 2 + 19"},
            {"rejected", APPEND, 19, NULL, "rejected: 21 given"},
            {"priced_at", SET_LONG, INT64_MIN, NULL, "priced_at:"},
        };
        po_priced_t p;
        po_dynbuf_t b;

        full_priced(&p);
        po_dynbuf_init(&b, 64u << 20);
        ck_assert_int_eq(po_priced_encode(reg, &p, &b, err, sizeof(err)), PO_OK);
        expect_refusals("PricedOrder", &b, r, sizeof(r) / sizeof(r[0]));
        po_dynbuf_reset(&b);
        p.lines = NULL;
        p.line_count = 0;
        ck_assert_int_eq(po_priced_encode(reg, &p, &b, err, sizeof(err)),
                         PO_ERR_INVALID_ARG);
        ck_assert_msg(strncmp(err, "lines: 0 given", 14) == 0, "%s", err);
        full_priced(&p);
        p.channel = NULL;
        ck_assert_int_eq(po_priced_encode(reg, &p, &b, err, sizeof(err)),
                         PO_ERR_INVALID_ARG);
        ck_assert_str_eq(err, "channel: required");
        full_priced(&p);
        p.account = "\xff";
        ck_assert_int_eq(po_priced_encode(reg, &p, &b, err, sizeof(err)),
                         PO_ERR_INVALID_ARG);
        ck_assert_msg(strncmp(err, "account: is not UTF-8", 21) == 0, "%s", err);
        po_dynbuf_release(&b);
}
END_TEST

/* ---- UsageEvent ---- */

static void assert_usage_eq(const po_usage_event_t *a, const po_usage_event_t *b)
{
        ck_assert(str_eq(a->event_id, b->event_id) && str_eq(a->order_id, b->order_id) &&
                  str_eq(a->channel, b->channel) && str_eq(a->account, b->account) &&
                  str_eq(a->code, b->code) && str_eq(a->customer_id, b->customer_id) &&
                  str_eq(a->reason, b->reason));
        ck_assert_int_eq(a->applied, b->applied);
        ck_assert_int_eq(a->value_applied, b->value_applied);
        ck_assert_str_eq(a->currency, b->currency);
        ck_assert_int_eq(a->occurred_at, b->occurred_at);
}

static void usage_round_trip(const po_usage_event_t *e)
{
        po_usage_event_t back;
        po_arena_t a;
        po_dynbuf_t b;

        po_arena_init(&a, ARENA_LIMIT);
        po_dynbuf_init(&b, 1 << 20);
        ck_assert_msg(po_usage_encode(reg, e, &b, err, sizeof(err)) == PO_OK, "%s", err);
        ck_assert_msg(po_usage_decode(reg, b.data, b.len, &a, &back, err, sizeof(err)) ==
                          PO_OK,
                      "%s", err);
        assert_usage_eq(e, &back);
        po_dynbuf_release(&b);
        po_arena_release(&a);
}

static const po_usage_event_t applied_event = {
    "web:A-1:SAVE10",  "web:A-1", "web", "acme", "SAVE10", "c-17", 1, NULL, 400, "USD",
    1795514400000000LL};
static const po_usage_event_t rejected_event = {
    "web:A-1:BOGUS:2", "web:A-1", "web", "acme", "BOGUS", NULL, 0,
    "UNKNOWN_CODE",    0,         "KWD", 0};

START_TEST(usage_round_trips)
{
        usage_round_trip(&applied_event);  /* customer_id present, reason absent */
        usage_round_trip(&rejected_event); /* customer_id absent, reason present */
}
END_TEST

START_TEST(usage_refusals)
{
        static const refusal_t on_applied[] = {
            {"currency", SET_STR, 0, "US", "currency:"},
            {"currency", SET_STR, 0, "usd", "currency:"},
            {"value_applied", SET_LONG, -1, NULL, "value_applied:"},
            {"reason", SET_STR, 0, "UNKNOWN_CODE", "reason: set on an applied"},
            {"occurred_at", SET_LONG, INT64_MAX, NULL, "occurred_at:"},
            {"event_id", SET_STR, 0, "\xed\xa0\x80", NULL},
        };
        static const refusal_t on_rejected[] = {
            {"reason", SET_NULL, 0, NULL, "reason: required"},
            {"value_applied", SET_LONG, 5, NULL, "value_applied: 5 on a rejected"},
        };
        po_usage_event_t e;
        po_dynbuf_t b;

        po_dynbuf_init(&b, 1 << 20);
        ck_assert_int_eq(po_usage_encode(reg, &applied_event, &b, err, sizeof(err)),
                         PO_OK);
        expect_refusals("UsageEvent", &b, on_applied, 5);
        po_dynbuf_reset(&b);
        ck_assert_int_eq(po_usage_encode(reg, &rejected_event, &b, err, sizeof(err)),
                         PO_OK);
        expect_refusals("UsageEvent", &b, on_rejected, 2);
        /* The encoder refuses what the decoder would. */
        po_dynbuf_reset(&b);
        e = applied_event;
        e.event_id = on_applied[5].s; /* a surrogate: not UTF-8 */
        ck_assert_int_eq(po_usage_encode(reg, &e, &b, err, sizeof(err)),
                         PO_ERR_INVALID_ARG);
        ck_assert_msg(strncmp(err, "event_id:", 9) == 0, "%s", err);
        e = rejected_event;
        e.reason = NULL;
        ck_assert_int_eq(po_usage_encode(reg, &e, &b, err, sizeof(err)),
                         PO_ERR_INVALID_ARG);
        ck_assert_str_eq(err, "reason: required");
        e = applied_event;
        e.currency[2] = '\0';
        ck_assert_int_eq(po_usage_encode(reg, &e, &b, err, sizeof(err)),
                         PO_ERR_INVALID_ARG);
        ck_assert_msg(strncmp(err, "currency:", 9) == 0, "%s", err);
        po_dynbuf_release(&b);
}
END_TEST

/* ---- hostile bytes: every message, truncated, mutated, misnamed ---- */

static const char *const names[] = {"CodeDefinition", "ValidatedOrder", "PricedOrder",
                                    "UsageEvent"};

static void write_seed(const char *name, const po_dynbuf_t *b)
{
        const char *dir = getenv("PO_MESSAGES_CORPUS_DIR");
        char path[512];
        FILE *f;

        if (!dir || !*dir)
                return;
        snprintf(path, sizeof(path), "%s/%s-typed.bin", dir, name);
        f = fopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(b->data, 1, b->len, f), b->len);
        fclose(f);
}

static void encode_samples(po_dynbuf_t out[4], po_arena_t *a)
{
        po_validated_t v;
        po_decision_t d[3];
        po_codedef_t cd;
        po_priced_t p;
        int i;

        for (i = 0; i < 4; i++)
                po_dynbuf_init(&out[i], 64u << 20);
        parse_ok(full_json, a, &cd);
        ck_assert_int_eq(po_codedef_encode(reg, &cd, &out[0], err, sizeof(err)), PO_OK);
        full_validated(&v, d, a);
        ck_assert_int_eq(po_validated_encode(reg, &v, &out[1], err, sizeof(err)), PO_OK);
        full_priced(&p);
        ck_assert_int_eq(po_priced_encode(reg, &p, &out[2], err, sizeof(err)), PO_OK);
        ck_assert_int_eq(po_usage_encode(reg, &applied_event, &out[3], err, sizeof(err)),
                         PO_OK);
        for (i = 0; i < 4; i++)
                write_seed(names[i], &out[i]);
}

START_TEST(truncated_messages_are_errors)
{
        po_dynbuf_t m[4];
        po_arena_t a;
        size_t i, n;

        po_arena_init(&a, ARENA_LIMIT);
        encode_samples(m, &a);
        for (i = 0; i < 4; i++) {
                ck_assert_int_eq(decode_as(names[i], m[i].data, m[i].len), PO_OK);
                for (n = 0; n < m[i].len; n++) {
                        ck_assert_msg(decode_as(names[i], m[i].data, n) != PO_OK,
                                      "%s cut at %zu decoded", names[i], n);
                        ck_assert(err[0] != '\0');
                }
                /* A byte too many. */
                po_dynbuf_add(&m[i], "", 1);
                ck_assert_int_eq(decode_as(names[i], m[i].data, m[i].len),
                                 PO_ERR_BAD_INPUT);
        }
        for (i = 0; i < 4; i++)
                po_dynbuf_release(&m[i]);
        po_arena_release(&a);
}
END_TEST

START_TEST(misnamed_and_garbled_messages_are_errors)
{
        po_dynbuf_t m[4];
        po_arena_t a;
        unsigned seed = 2024;
        size_t i, j, k;

        po_arena_init(&a, ARENA_LIMIT);
        encode_samples(m, &a);
        for (i = 0; i < 4; i++)
                for (j = 0; j < 4; j++)
                        if (i != j) {
                                ck_assert_int_eq(decode_as(names[j], m[i].data, m[i].len),
                                                 PO_ERR_BAD_INPUT);
                                ck_assert_msg(strstr(err, "expected"), "%s", err);
                        }
        /* Every byte after the header flipped in a few ways: a clean error or a
         * message that re-encodes and decodes again. */
        for (i = 0; i < 4; i++) {
                unsigned char *c = malloc(m[i].len);

                ck_assert_ptr_nonnull(c);
                for (j = PO_AVRO_HEADER_SIZE; j < m[i].len; j++) {
                        static const unsigned char flips[] = {0x01, 0x02, 0x80, 0xff,
                                                              0x7f};

                        for (k = 0; k < sizeof(flips); k++) {
                                po_err_t e;

                                memcpy(c, m[i].data, m[i].len);
                                c[j] ^= flips[k];
                                e = decode_as(names[i], c, m[i].len);
                                ck_assert_msg(e == PO_OK || e == PO_ERR_BAD_INPUT,
                                              "%s byte %zu: %d", names[i], j, (int)e);
                                ck_assert(e == PO_OK || err[0] != '\0');
                        }
                }
                /* Random bodies behind the right header. */
                for (j = 0; j < 2000; j++) {
                        size_t n = PO_AVRO_HEADER_SIZE + j % 97;

                        memcpy(c, m[i].data, PO_AVRO_HEADER_SIZE);
                        for (k = PO_AVRO_HEADER_SIZE; k < n && k < m[i].len; k++) {
                                seed = seed * 1103515245u + 12345u;
                                c[k] = (unsigned char)(seed >> 16);
                        }
                        if (n > m[i].len)
                                n = m[i].len;
                        (void)decode_as(names[i], c, n);
                }
                free(c);
        }
        ck_assert_int_eq(decode_as("UsageEvent", "", 0), PO_ERR_BAD_INPUT);
        ck_assert_int_eq(decode_as("UsageEvent", "\xc3\x01", 2), PO_ERR_BAD_INPUT);
        for (i = 0; i < 4; i++)
                po_dynbuf_release(&m[i]);
        po_arena_release(&a);
}
END_TEST

/* ---- direct writers: the bytes of avro-c's generic path ---- */

typedef po_err_t (*enc_fn)(const void *what, po_dynbuf_t *out, char *e, size_t n);

static po_err_t enc_order(const void *what, po_dynbuf_t *out, char *e, size_t n)
{
        return po_order_encode(reg, what, out, e, n);
}

static po_err_t enc_codedef(const void *what, po_dynbuf_t *out, char *e, size_t n)
{
        return po_codedef_encode(reg, what, out, e, n);
}

static po_err_t enc_validated(const void *what, po_dynbuf_t *out, char *e, size_t n)
{
        return po_validated_encode(reg, what, out, e, n);
}

static po_err_t enc_priced(const void *what, po_dynbuf_t *out, char *e, size_t n)
{
        return po_priced_encode(reg, what, out, e, n);
}

static po_err_t enc_usage(const void *what, po_dynbuf_t *out, char *e, size_t n)
{
        return po_usage_encode(reg, what, out, e, n);
}

/* Decodes the message b as a ValidatedOrder (or an Order when order) with
 * the direct reader and with the generic path alone: both succeed, with
 * equal results. Returns 1 when the direct reader read it. */
static int read_both_ways(const po_dynbuf_t *b, int order)
{
        po_validated_t x, y;
        uint64_t before = po_avro_direct_reads(reg);
        int direct, pass;

        for (pass = 0; pass < 2; pass++) {
                po_validated_t *v = pass ? &y : &x;
                po_err_t e;

                memset(v, 0, sizeof(*v));
                po_order_init(&v->order, ARENA_LIMIT);
                po_avro_set_direct(reg, !pass);
                e = order
                        ? po_order_decode(reg, b->data, b->len, &v->order, err,
                                          sizeof(err))
                        : po_validated_decode(reg, b->data, b->len, v, err, sizeof(err));
                po_avro_set_direct(reg, 1);
                ck_assert_msg(e == PO_OK, "%s", err);
        }
        direct = po_avro_direct_reads(reg) != before;
        if (order)
                assert_order_eq(&x.order, &y.order);
        else
                assert_validated_eq(&x, &y);
        po_order_release(&x.order);
        po_order_release(&y.order);
        return direct;
}

/* Encodes what with enc twice, after a byte already in the buffer: with the
 * direct writers and with the generic path alone. The same result, and the
 * same bytes or the same error. Returns 1 when the direct writer wrote it. */
static int same_both_ways(enc_fn enc, const void *what, size_t max, const char *label)
{
        po_dynbuf_t d, g;
        char ed[512] = "", eg[512] = "";
        uint64_t before = po_avro_direct_writes(reg);
        po_err_t rd, rg;
        int direct;

        po_dynbuf_init(&d, max);
        po_dynbuf_init(&g, max);
        po_dynbuf_add(&d, "x", 1);
        po_dynbuf_add(&g, "x", 1);
        rd = enc(what, &d, ed, sizeof(ed));
        direct = po_avro_direct_writes(reg) != before;
        po_avro_set_direct(reg, 0);
        rg = enc(what, &g, eg, sizeof(eg));
        po_avro_set_direct(reg, 1);
        ck_assert_uint_eq(po_avro_direct_writes(reg), before + (uint64_t)direct);
        ck_assert_msg(rd == rg, "%s: direct %d (%s), generic %d (%s)", label, rd, ed, rg,
                      eg);
        if (rd == PO_OK) {
                ck_assert_msg(d.len == g.len && memcmp(d.data, g.data, d.len) == 0 &&
                                  d.data[d.len] == '\0',
                              "%s: the direct writer's %zu bytes differ from the generic "
                              "path's %zu",
                              label, d.len, g.len);
                if (enc == enc_order || enc == enc_validated) {
                        po_dynbuf_t m;

                        po_dynbuf_init(&m, max);
                        po_dynbuf_add(&m, d.data + 1, d.len - 1);
                        ck_assert_msg(read_both_ways(&m, enc == enc_order),
                                      "%s: not read directly", label);
                        po_dynbuf_release(&m);
                }
        } else
                ck_assert_msg(strcmp(ed, eg) == 0, "%s: '%s' against '%s'", label, ed,
                              eg);
        po_dynbuf_release(&d);
        po_dynbuf_release(&g);
        return direct;
}

/* Each of the fixtures, written directly: had a schema changed, its writer
 * would no longer be used (its layout fingerprint differs) and this fails
 * until the writer follows the schema (docs/avro.md, "Direct writers"). */
START_TEST(direct_writers_match_the_generic_path)
{
#define why                                                                              \
        "not written directly: did schemas/%s.avsc change? Update its direct "           \
        "writer and layout fingerprint (docs/avro.md)"
        po_validated_t v;
        po_decision_t d[3];
        po_codedef_t cd;
        po_priced_t p;
        po_order_t o;
        po_arena_t a;
        size_t i;

        po_arena_init(&a, ARENA_LIMIT);
        for (i = 0; i < sizeof(canonical) / sizeof(canonical[0]); i++) {
                parse_ok(canonical[i], &a, &cd);
                ck_assert_msg(same_both_ways(enc_codedef, &cd, 1u << 20, canonical[i]),
                              why, "CodeDefinition");
        }
        full_order(&o);
        ck_assert_msg(same_both_ways(enc_order, &o, 1u << 20, "full order"), why,
                      "Order");
        min_order(&o);
        ck_assert_msg(same_both_ways(enc_order, &o, 1u << 20, "min order"), why, "Order");
        full_validated(&v, d, &a);
        ck_assert_msg(same_both_ways(enc_validated, &v, 1u << 20, "full"), why,
                      "ValidatedOrder");
        v.order.customer_id = v.order.customer_tier = v.order.customer_email = NULL;
        ck_assert_msg(same_both_ways(enc_validated, &v, 1u << 20, "bare customer"), why,
                      "ValidatedOrder");
        min_validated(&v);
        ck_assert_msg(same_both_ways(enc_validated, &v, 1u << 20, "min"), why,
                      "ValidatedOrder");
        full_priced(&p);
        ck_assert_msg(same_both_ways(enc_priced, &p, 1u << 20, "priced"), why,
                      "PricedOrder");
        p.receipt_count = p.rejected_count = 0;
        p.line_count = 1;
        ck_assert_msg(same_both_ways(enc_priced, &p, 1u << 20, "priced, bare"), why,
                      "PricedOrder");
        ck_assert_msg(same_both_ways(enc_usage, &applied_event, 1u << 20, "applied"), why,
                      "UsageEvent");
        ck_assert_msg(same_both_ways(enc_usage, &rejected_event, 1u << 20, "rejected"),
                      why, "UsageEvent");
#undef why
        po_arena_release(&a);
}
END_TEST

/* Thousands of ValidatedOrders, every optional field present or not, strings
 * of 0 to 200 bytes (multi-byte UTF-8 too) and numbers at the varint
 * boundaries: the same bytes both ways, and they decode back. */
START_TEST(direct_writers_match_on_random_orders)
{
        static const char *const strs[] = {
            "", "a", "SKU-1", "p\xc3\xb6s \xe2\x82\xac", "\xf0\x9f\x98\x80 x", NULL};
        static const int64_t nums[] = {
            0, 1, 63, 64, 8191, 8192, 1000000, 1LL << 40, 999999999999999LL};
        static const char *const line_ids[] = {"l1", "\xc3\xa9-2", "l3"};
        char longstr[201];
        po_order_line_t lines[3];
        po_order_attr_t attrs[3] = {{"k1", "v"}, {"k2", ""}, {"\xc3\xa9", "x"}};
        po_line_stock_t stock[3];
        po_codedef_t defs[4];
        po_decision_t d[3];
        po_validated_t v;
        po_arena_t a;
        unsigned seed = 7;
        int i, k, direct = 0;

        memset(longstr, 'x', 200);
        longstr[200] = '\0';
        po_arena_init(&a, ARENA_LIMIT);
        for (k = 0; k < 4; k++)
                parse_ok(canonical[k], &a, &defs[k]);
        for (i = 0; i < 3000; i++) {
#define PICK(n) ((unsigned)rand_r(&seed) % (n))
#define STR() (PICK(7) == 6 ? longstr : strs[PICK(5)])
                full_validated(&v, d, &a);
                v.order.has_customer = PICK(2);
                v.order.customer_id = PICK(2) ? STR() : NULL;
                v.order.customer_email = PICK(2) ? STR() : NULL;
                if (!v.order.has_customer)
                        v.order.customer_id = v.order.customer_tier =
                            v.order.customer_email = NULL;
                v.order.account = STR();
                v.order.line_count = 1 + PICK(3);
                v.line_stock_count = v.order.line_count;
                for (k = 0; k < (int)v.order.line_count; k++) {
                        lines[k] = full_lines[k % 2];
                        lines[k].unit_price = nums[PICK(7)];
                        lines[k].sku = STR();
                        lines[k].quantity = 1 + PICK(1000);
                        lines[k].has_unit_cost = PICK(2);
                        lines[k].unit_cost = nums[PICK(7)];
                        stock[k].line_id = lines[k].line_id = line_ids[k];
                        stock[k].has_stock = PICK(2);
                        stock[k].stock = stock[k].has_stock ? nums[PICK(9)] : 0;
                }
                v.order.lines = lines;
                v.line_stock = stock;
                v.order.attrs = attrs;
                v.order.attr_count = PICK(4);
                v.order.placed_at_us = (int64_t)PICK(2000000000) * 1000000;
                for (k = 0; k < 3; k++) {
                        d[k].has_definition = PICK(3) != 0;
                        d[k].definition = defs[PICK(4)];
                        d[k].has_fingerprint = PICK(2);
                        d[k].fingerprint = PICK(2) ? -nums[PICK(9)] : nums[PICK(9)];
                        d[k].has_usage = PICK(2);
                        d[k].usage_total = nums[PICK(9)];
                        d[k].usage_customer = nums[PICK(6)];
                        d[k].tier = PICK(2) ? STR() : NULL;
                        d[k].reservation_id = d[k].applied && PICK(2) ? STR() : NULL;
                        /* What is absent reads back as 0. */
                        if (!d[k].has_fingerprint)
                                d[k].fingerprint = 0;
                        if (!d[k].has_usage)
                                d[k].usage_total = d[k].usage_customer = 0;
                }
                v.validated_at = (int64_t)PICK(2000000000) * 1000000 + PICK(1000000);
                if (same_both_ways(enc_validated, &v, 64u << 20, "random")) {
                        direct++;
                        validated_round_trip(&v);
                }
        }
        /* Usage events and priced orders with the same strings and numbers. */
        for (i = 0; i < 1000; i++) {
                po_usage_event_t e = PICK(2) ? applied_event : rejected_event;
                po_priced_t p;
                po_priced_line_t pl[2];

                e.event_id = STR();
                e.customer_id = PICK(2) ? STR() : NULL;
                e.code = PICK(2) ? "C" : longstr;
                direct += same_both_ways(enc_usage, &e, 64u << 20, "random usage");
                full_priced(&p);
                memcpy(pl, priced_lines, sizeof(pl));
                pl[0].line_id = STR();
                pl[1].subtotal = nums[PICK(7)];
                pl[1].available = PICK(2);
                p.lines = pl;
                p.account = STR();
                p.receipt_count = PICK(3);
                p.rejected_count = PICK(3);
                p.priced_at = (int64_t)PICK(2000000000) * 1000000;
                direct += same_both_ways(enc_priced, &p, 64u << 20, "random priced");
        }
#undef STR
#undef PICK
        /* Every one passes the checks both paths share, so none fell back. */
        ck_assert_msg(direct == 5000, "only %d of 5000 written directly (last: %s)",
                      direct, err);
        po_arena_release(&a);
}
END_TEST

/* What the direct writers leave to the generic path gives the generic
 * path's result: attribute keys given twice (avro-c keeps one entry), a
 * string that is not UTF-8, an output buffer at its limit. */
START_TEST(direct_writers_fall_back)
{
        po_order_attr_t twice[] = {{"k", "1"}, {"j", "2"}, {"k", "3"}};
        po_order_t o;

        full_order(&o);
        o.attrs = twice;
        o.attr_count = 3;
        ck_assert(!same_both_ways(enc_order, &o, 1u << 20, "keys twice"));
        full_order(&o);
        o.customer_email = "bad \xc3(";
        ck_assert(!same_both_ways(enc_order, &o, 1u << 20, "not UTF-8"));
        full_order(&o);
        o.codes = (const char *[]){"A", NULL};
        o.code_count = 1;
        ck_assert(same_both_ways(enc_order, &o, 1u << 20, "one code"));
        full_order(&o);
        ck_assert(!same_both_ways(enc_order, &o, 40, "buffer at its limit"));
}
END_TEST

int main(void)
{
        Suite *s = suite_create("messages");
        TCase *tc = tcase_create("core");
        SRunner *sr;
        int failed;

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, codedef_json_avro_identity);
        tcase_add_test(tc, codecs_reuse_the_registry_values);
        tcase_add_test(tc, codedef_avro_fields);
        tcase_add_test(tc, codedef_json_normalizes);
        tcase_add_test(tc, codedef_strings_live_in_the_arena);
        tcase_add_test(tc, codedef_json_rejections);
        tcase_add_test(tc, codedef_json_bounds);
        tcase_add_test(tc, codedef_json_matches_promo_calc);
        tcase_add_test(tc, codedef_encode_rejections);
        tcase_add_test(tc, codedef_fingerprints);
        tcase_add_test(tc, codedef_decode_refusals);
        tcase_add_test(tc, codedef_decode_long_list);
        tcase_add_test(tc, validated_round_trips);
        tcase_add_test(tc, validated_encode_rejections);
        tcase_add_test(tc, validated_decode_refusals);
        tcase_add_test(tc, validated_arena_limit);
        tcase_add_test(tc, priced_round_trips);
        tcase_add_test(tc, priced_refusals);
        tcase_add_test(tc, usage_round_trips);
        tcase_add_test(tc, usage_refusals);
        tcase_add_test(tc, truncated_messages_are_errors);
        tcase_add_test(tc, misnamed_and_garbled_messages_are_errors);
        tcase_add_test(tc, direct_writers_match_the_generic_path);
        tcase_add_test(tc, direct_writers_match_on_random_orders);
        tcase_add_test(tc, direct_writers_fall_back);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
