/* po_messages: code definitions (spec JSON and Avro) and the pipeline's
 * ValidatedOrder, PricedOrder and UsageEvent messages (see po/messages.h).
 *
 * Every message goes through one validator per type, run on what an encoder
 * is given (PO_ERR_INVALID_ARG) and on what a decoder read (PO_ERR_BAD_INPUT),
 * so nothing is written that a reader would refuse. The bounds are those of
 * PRICING_SPEC.md section 1 and 3, plus two of our own for what the spec
 * leaves open: MSG_MAX_STR bytes in any string, MSG_MAX_LIST entries in any
 * list or map of a definition or of an order's attributes. */
#include "po/messages.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "po/calcjson.h"
#include "po/order_avro.h"

#define MSG_MAX_STR 65536
#define MSG_MAX_LIST 10000
#define MSG_MAX_REASON 64
#define US_PER_SEC 1000000LL
/* The instants RFC 3339 can write in UTC, 0000-01-01T00:00:00Z to
 * 9999-12-31T23:59:59.999999Z, in microseconds since the epoch. */
#define MIN_SEC (-62167219200LL)
#define MAX_SEC 253402300799LL
#define MIN_US (MIN_SEC * US_PER_SEC)
#define MAX_US (MAX_SEC * US_PER_SEC + (US_PER_SEC - 1))

/* ---- errors ---- */

/* One encode or decode: where messages go and what a refusal returns. */
typedef struct msg {
        po_arena_t *arena; /* decoding: where strings and arrays go */
        char *errstr;
        size_t errstr_size;
        po_err_t refusal; /* PO_ERR_INVALID_ARG encoding, PO_ERR_BAD_INPUT decoding */
        po_err_t err;     /* the first failure */
} msg_t;

static void msg_init(msg_t *m, po_arena_t *arena, po_err_t refusal, char *errstr,
                     size_t errstr_size)
{
        m->arena = arena;
        m->errstr = errstr;
        m->errstr_size = errstr ? errstr_size : 0;
        m->refusal = refusal;
        m->err = PO_OK;
        if (m->errstr_size)
                errstr[0] = '\0';
}

static int failv(msg_t *m, po_err_t err, const char *fmt, va_list ap)
{
        if (m->err == PO_OK) {
                m->err = err;
                if (m->errstr_size)
                        vsnprintf(m->errstr, m->errstr_size, fmt, ap);
        }
        return -1;
}

__attribute__((format(printf, 2, 3))) static int bad(msg_t *m, const char *fmt, ...)
{
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = failv(m, m->refusal, fmt, ap);
        va_end(ap);
        return r;
}

__attribute__((format(printf, 3, 4))) static int fail(msg_t *m, po_err_t err,
                                                      const char *fmt, ...)
{
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = failv(m, err, fmt, ap);
        va_end(ap);
        return r;
}

/* avro-c refused to get or set a field of a value of our own schema. It
 * cannot happen with a datum po_avro accepted, short of memory; calling it
 * a refusal rather than PO_ERR_NOMEM keeps a stage from retrying forever. */
static int avro_fail(msg_t *m, const char *what)
{
        return bad(m, "%s: avro-c: %s", what, avro_strerror());
}

/* n zeroed items of size bytes from the decode arena, or NULL with the
 * reason: a message larger than the arena allows is bad input, anything
 * else is memory. */
static void *arena_items(msg_t *m, size_t n, size_t size, const char *what)
{
        po_arena_t *a = m->arena;
        size_t bytes;
        void *p;

        if (n > (SIZE_MAX - 1) / size) {
                bad(m, "%s: %zu entries are too many", what, n);
                return NULL;
        }
        bytes = (n ? n : 1) * size;
        p = po_arena_alloc(a, bytes);
        if (!p) {
                if (bytes > a->limit || a->total > a->limit - bytes)
                        bad(m, "%s: the message needs more than the %zu bytes allowed",
                            what, a->limit);
                else
                        fail(m, PO_ERR_NOMEM, "%s: out of memory", what);
                return NULL;
        }
        memset(p, 0, bytes);
        return p;
}

/* ---- checks shared by every message ---- */

/* Strict UTF-8 (no overlong forms, no surrogates, <= U+10FFFF) without NUL,
 * as po_avro requires of every string. */
static int utf8_ok(const unsigned char *s, size_t n)
{
        size_t i = 0, k, need;
        uint32_t cp;

        while (i < n) {
                unsigned char c = s[i];

                if (c == 0)
                        return 0;
                if (c < 0x80) {
                        i++;
                        continue;
                }
                if (c >= 0xc2 && c <= 0xdf)
                        need = 1, cp = c & 0x1f;
                else if (c >= 0xe0 && c <= 0xef)
                        need = 2, cp = c & 0x0f;
                else if (c >= 0xf0 && c <= 0xf4)
                        need = 3, cp = c & 0x07;
                else
                        return 0;
                if (n - i <= need)
                        return 0;
                for (k = 1; k <= need; k++) {
                        if ((s[i + k] & 0xc0) != 0x80)
                                return 0;
                        cp = (cp << 6) | (s[i + k] & 0x3f);
                }
                if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) ||
                    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                        return 0;
                i += need + 1;
        }
        return 1;
}

/* What is wrong with the string s[0..n), or NULL. */
static const char *str_problem(const char *s, size_t n)
{
        if (!s && n)
                return "is NULL with a length";
        if (n > MSG_MAX_STR)
                return "is longer than 65536 bytes";
        if (n && !utf8_ok((const unsigned char *)s, n))
                return "is not UTF-8 or holds a NUL";
        return NULL;
}

/* A C string; required ones must not be NULL. */
/* A field path for messages, prefix name[idx]tail (no [idx] when idx is
 * NO_IDX), cut to fit size as snprintf would: built for every checked item,
 * so without snprintf's cost. */
#define NO_IDX ((size_t)-1)

static void path(char *buf, size_t size, const char *prefix, const char *name, size_t idx,
                 const char *tail)
{
        char num[24];
        const char *parts[5];
        size_t k = 0, n = 0, i, len;

        parts[k++] = prefix;
        parts[k++] = name;
        if (idx != NO_IDX) {
                char *q = num + sizeof(num) - 1;

                *q = '\0';
                *--q = ']';
                do {
                        *--q = (char)('0' + idx % 10);
                        idx /= 10;
                } while (idx);
                *--q = '[';
                parts[k++] = q;
        }
        parts[k++] = tail;
        if (!size)
                return;
        for (i = 0; i < k; i++) {
                len = strlen(parts[i]);
                if (len > size - 1 - n)
                        len = size - 1 - n;
                memcpy(buf + n, parts[i], len);
                n += len;
        }
        buf[n] = '\0';
}

static int chk_str(msg_t *m, const char *p, const char *f, const char *s, int required)
{
        const char *why;

        if (!s)
                return required ? bad(m, "%s%s: required", p, f) : 0;
        why = str_problem(s, strnlen(s, MSG_MAX_STR + 1));
        return why ? bad(m, "%s%s: %s", p, f, why) : 0;
}

static int chk_int(msg_t *m, const char *p, const char *f, int64_t v, int64_t min,
                   int64_t max)
{
        if (v < min || v > max)
                return bad(m, "%s%s: %lld is outside %lld..%lld", p, f, (long long)v,
                           (long long)min, (long long)max);
        return 0;
}

static int chk_opt(msg_t *m, const char *p, const char *f, po_opt_i64_t v, int64_t max)
{
        return v.present ? chk_int(m, p, f, v.value, 0, max) : 0;
}

static int chk_time(msg_t *m, const char *p, const char *f, int64_t us)
{
        if (us < MIN_US || us > MAX_US)
                return bad(m,
                           "%s%s: %lld microseconds is outside the years 0000..9999 "
                           "(UTC)",
                           p, f, (long long)us);
        return 0;
}

static int chk_bool(msg_t *m, const char *p, const char *f, int v)
{
        return v == 0 || v == 1 ? 0 : bad(m, "%s%s: %d is not 0 or 1", p, f, v);
}

/* "" (absent) when optional, else 3 upper-case ASCII letters. */
static int chk_currency(msg_t *m, const char *p, const char *f, const char cur[4],
                        int required)
{
        int i;

        if (!cur[0] && !required)
                return 0;
        for (i = 0; i < 3; i++)
                if (cur[i] < 'A' || cur[i] > 'Z')
                        return bad(m, "%s%s: must be 3 upper-case letters", p, f);
        return cur[3] ? bad(m, "%s%s: must be 3 upper-case letters", p, f) : 0;
}

/* A reason code: 1..64 of A-Z 0-9 _ (the spec's, or a stage's own). */
static int chk_reason(msg_t *m, const char *p, const char *f, const char *s)
{
        size_t i;

        if (!s)
                return bad(m, "%s%s: required", p, f);
        for (i = 0; s[i]; i++)
                if (i >= MSG_MAX_REASON || !((s[i] >= 'A' && s[i] <= 'Z') ||
                                             (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
                        break;
        if (i == 0 || s[i])
                return bad(m, "%s%s: must be 1..64 characters of A-Z 0-9 _", p, f);
        return 0;
}

/* A count of entries between min and max. */
static int chk_count(msg_t *m, const char *p, const char *f, size_t n, size_t min,
                     size_t max)
{
        if (n < min || n > max)
                return bad(m, "%s%s: %zu given, %zu..%zu allowed", p, f, n, min, max);
        return 0;
}

/* ---- instants ---- */

/* t as microseconds: -1 when it is finer than a microsecond, -2 outside the
 * years 0000..9999 (which is also what keeps the product in 64 bits). */
static int instant_to_us(po_instant_t t, int64_t *us)
{
        if (t.nsec < 0 || t.nsec > 999999999)
                return -1;
        if (t.nsec % 1000)
                return -1;
        if (t.sec < MIN_SEC || t.sec > MAX_SEC)
                return -2;
        *us = t.sec * US_PER_SEC + t.nsec / 1000;
        return 0;
}

static po_instant_t us_to_instant(int64_t us)
{
        po_instant_t t;
        int64_t rem = us % US_PER_SEC;

        t.sec = us / US_PER_SEC;
        if (rem < 0) {
                rem += US_PER_SEC;
                t.sec--;
        }
        t.nsec = (int32_t)(rem * 1000);
        return t;
}

static int chk_instant(msg_t *m, const char *p, const char *f, po_instant_t t)
{
        int64_t us;

        switch (instant_to_us(t, &us)) {
        case -1:
                return bad(m,
                           "%s%s: finer than a microsecond (Avro carries microseconds)",
                           p, f);
        case -2:
                return bad(m, "%s%s: outside the years 0000..9999 (UTC)", p, f);
        default:
                return 0;
        }
}

/* Writes t as RFC 3339 in UTC ("2026-11-24T10:00:00Z", ".ffffff" when not a
 * whole second). t is within instant_to_us's range. */
static void format_instant(po_instant_t t, char *buf, size_t size)
{
        int64_t days = t.sec / 86400, secs = t.sec % 86400, z, era, y;
        unsigned doe, yoe, doy, mp, d, mo;

        if (secs < 0) {
                secs += 86400;
                days--;
        }
        /* Howard Hinnant's civil_from_days. */
        z = days + 719468;
        era = (z >= 0 ? z : z - 146096) / 146097;
        doe = (unsigned)(z - era * 146097);
        yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        mp = (5 * doy + 2) / 153;
        d = doy - (153 * mp + 2) / 5 + 1;
        mo = mp < 10 ? mp + 3 : mp - 9;
        y = (int64_t)yoe + era * 400 + (mo <= 2);
        if (t.nsec)
                snprintf(buf, size, "%04d-%02u-%02uT%02d:%02d:%02d.%06dZ", (int)y, mo, d,
                         (int)(secs / 3600), (int)(secs / 60 % 60), (int)(secs % 60),
                         (int)(t.nsec / 1000));
        else
                snprintf(buf, size, "%04d-%02u-%02uT%02d:%02d:%02dZ", (int)y, mo, d,
                         (int)(secs / 3600), (int)(secs / 60 % 60), (int)(secs % 60));
}

/* ---- CodeDefinition: validation ---- */

static const char *const statuses[] = {"active", "paused", "archived"};
static const char *const types[] = {"percentage", "fixed"};

static int chk_list(msg_t *m, const char *p, const char *f, const po_str_list_t *l)
{
        const char *why;
        size_t i;

        if (!l->present)
                return l->count ? bad(m, "%s%s: entries in an absent list", p, f) : 0;
        if (chk_count(m, p, f, l->count, 0, MSG_MAX_LIST))
                return -1;
        if (l->count && !l->items)
                return bad(m, "%s%s: NULL items", p, f);
        for (i = 0; i < l->count; i++) {
                why = str_problem(l->items[i].ptr, l->items[i].len);
                if (why)
                        return bad(m, "%s%s[%zu]: %s", p, f, i, why);
        }
        return 0;
}

/* Everything PRICING_SPEC.md section 3 (and promo-calc) requires of a
 * definition, plus what Avro needs: whole microseconds, bounded lists and
 * strings. p prefixes field names in messages. */
static int chk_codedef(msg_t *m, const char *p, const po_codedef_t *cd)
{
        const po_code_def_t *d = &cd->def;
        const po_targets_t *t = &d->targets;
        char tp[128];
        const char *why;
        int64_t max;
        size_t i;

        if (d->code_len > PO_PRICING_CODE_MAX || memchr(d->code, '\0', d->code_len) ||
            d->code[d->code_len] != '\0' || !po_code_is_valid(d->code, d->code_len))
                return bad(m, "%scode: must be 3..64 characters of A-Z 0-9 - _", p);
        if ((unsigned)d->status > PO_CODE_ARCHIVED)
                return bad(m, "%sstatus: unknown value %d", p, (int)d->status);
        if ((unsigned)d->type > PO_CODE_FIXED)
                return bad(m, "%stype: unknown value %d", p, (int)d->type);
        max = d->type == PO_CODE_PERCENTAGE ? PO_PRICING_MAX_BP : PO_PRICING_MAX_VALUE;
        if (chk_int(m, p, "value", d->value, 0, max) ||
            chk_currency(m, p, "currency", d->currency, 0) ||
            chk_opt(m, p, "min_spend", d->min_spend, PO_PRICING_MAX_VALUE) ||
            chk_opt(m, p, "max_spend", d->max_spend, PO_PRICING_MAX_VALUE) ||
            chk_opt(m, p, "max_discount", d->max_discount, PO_PRICING_MAX_VALUE))
                return -1;
        if (!d->currency[0] && (d->type == PO_CODE_FIXED || d->min_spend.present ||
                                d->max_spend.present || d->max_discount.present))
                return bad(m,
                           "%scurrency: required for fixed codes and with min_spend, "
                           "max_spend or max_discount",
                           p);
        if ((d->has_starts_at && chk_instant(m, p, "starts_at", d->starts_at)) ||
            (d->has_expires_at && chk_instant(m, p, "expires_at", d->expires_at)) ||
            chk_opt(m, p, "usage_limit", d->usage_limit, PO_PRICING_MAX_VALUE) ||
            chk_opt(m, p, "per_customer_limit", d->per_customer_limit,
                    PO_PRICING_MAX_VALUE) ||
            chk_list(m, p, "tiers", &d->tiers) ||
            chk_count(m, p, "tier_values", d->tier_value_count, 0, MSG_MAX_LIST))
                return -1;
        if (d->tier_value_count && !d->tier_values)
                return bad(m, "%stier_values: NULL entries", p);
        for (i = 0; i < d->tier_value_count; i++) {
                const po_tier_value_t *tv = &d->tier_values[i];

                why = str_problem(tv->tier.ptr, tv->tier.len);
                if (why)
                        return bad(m, "%stier_values[%zu]: the tier %s", p, i, why);
                if (tv->value < 0 || tv->value > max)
                        return bad(m, "%stier_values.%.*s: %lld is outside 0..%lld", p,
                                   (int)(tv->tier.len < 40 ? tv->tier.len : 40),
                                   tv->tier.ptr, (long long)tv->value, (long long)max);
        }
        if (chk_list(m, p, "channels", &d->channels))
                return -1;
        if (d->has_customer_id) {
                why = str_problem(d->customer_id.ptr, d->customer_id.len);
                if (why)
                        return bad(m, "%scustomer_id: %s", p, why);
        }
        path(tp, sizeof(tp), p, "targets", NO_IDX, ".");
        if (chk_list(m, tp, "skus", &t->skus) ||
            chk_list(m, tp, "categories", &t->categories) ||
            chk_list(m, tp, "exclude_skus", &t->exclude_skus) ||
            chk_list(m, tp, "exclude_categories", &t->exclude_categories) ||
            chk_opt(m, tp, "low_stock_max", t->low_stock_max, PO_PRICING_MAX_VALUE) ||
            chk_opt(m, tp, "max_margin_bp", t->max_margin_bp, PO_PRICING_MAX_VALUE) ||
            chk_bool(m, p, "combinable", d->combinable) ||
            chk_int(m, p, "priority", d->priority, 0, PO_PRICING_MAX_VALUE) ||
            chk_int(m, p, "version", cd->version, 0, INT64_MAX) ||
            chk_time(m, p, "updated_at", cd->updated_at))
                return -1;
        return 0;
}

static int targets_present(const po_targets_t *t)
{
        return t->skus.present || t->categories.present || t->exclude_skus.present ||
               t->exclude_categories.present || t->low_stock_max.present ||
               t->max_margin_bp.present;
}

/* ---- CodeDefinition: JSON ---- */

static void *arena_alloc_cb(void *ctx, size_t size)
{
        return po_arena_alloc(ctx, size);
}

/* An optional integer member of the definition object (null = absent). */
static int json_i64(msg_t *m, json_t *root, const char *key, int64_t *out)
{
        json_t *v = json_object_get(root, key);

        *out = 0;
        if (!v || json_is_null(v))
                return 0;
        if (!json_is_integer(v))
                return bad(m, "%s: must be an integer", key);
        *out = (int64_t)json_integer_value(v);
        return 0;
}

po_err_t po_codedef_from_json(const char *json, size_t len, po_arena_t *arena,
                              po_codedef_t *out, char *errstr, size_t errstr_size)
{
        json_error_t jerr;
        json_t *root;
        msg_t m;
        po_err_t err;

        msg_init(&m, arena, PO_ERR_BAD_INPUT, errstr, errstr_size);
        memset(out, 0, sizeof(*out));
        if (!arena || (!json && len))
                return PO_ERR_INVALID_ARG;
        root = json_loadb(json ? json : "", len, JSON_REJECT_DUPLICATES, &jerr);
        if (!root) {
                bad(&m, "not JSON: %s at column %d", jerr.text, jerr.column);
                return m.err;
        }
        err = po_calcjson_parse_def(root, "", arena_alloc_cb, arena, &out->def, errstr,
                                    errstr_size);
        if (err) {
                json_decref(root);
                memset(out, 0, sizeof(*out));
                return err;
        }
        if (json_i64(&m, root, "version", &out->version) ||
            json_i64(&m, root, "updated_at", &out->updated_at) ||
            chk_codedef(&m, "", out))
                memset(out, 0, sizeof(*out));
        json_decref(root);
        return m.err;
}

/* A JSON array of the list's strings; NULL when out of memory. */
static json_t *json_list(const po_str_list_t *l)
{
        json_t *a = json_array();
        size_t i;

        for (i = 0; a && i < l->count; i++)
                if (json_array_append_new(
                        a, json_stringn(l->items[i].ptr, l->items[i].len))) {
                        json_decref(a);
                        return NULL;
                }
        return a;
}

/* Sets key of o to v (taking v); 0 or -1. */
static int put(json_t *o, const char *key, json_t *v)
{
        return v ? json_object_set_new(o, key, v) : -1;
}

static int put_opt(json_t *o, const char *key, po_opt_i64_t v)
{
        return v.present ? put(o, key, json_integer(v.value)) : 0;
}

static int put_list(json_t *o, const char *key, const po_str_list_t *l)
{
        return l->present ? put(o, key, json_list(l)) : 0;
}

static int put_instant(json_t *o, const char *key, int has, po_instant_t t)
{
        char buf[128];

        if (!has)
                return 0;
        format_instant(t, buf, sizeof(buf));
        return put(o, key, json_string(buf));
}

/* The definition as a JSON object, or NULL (out of memory, or duplicate
 * tiers in tier_values: *dup is then set). */
static json_t *codedef_json(const po_codedef_t *cd, int *dup)
{
        const po_code_def_t *d = &cd->def;
        const po_targets_t *t = &d->targets;
        json_t *o = json_object(), *tv = NULL, *tg = NULL;
        size_t i;

        if (!o)
                return NULL;
        if (put(o, "code", json_stringn(d->code, d->code_len)) ||
            put(o, "status", json_string(statuses[d->status])) ||
            put(o, "type", json_string(types[d->type])) ||
            put(o, "value", json_integer(d->value)) ||
            (d->currency[0] && put(o, "currency", json_string(d->currency))) ||
            put_opt(o, "min_spend", d->min_spend) ||
            put_opt(o, "max_spend", d->max_spend) ||
            put_opt(o, "max_discount", d->max_discount) ||
            put_instant(o, "starts_at", d->has_starts_at, d->starts_at) ||
            put_instant(o, "expires_at", d->has_expires_at, d->expires_at) ||
            put_opt(o, "usage_limit", d->usage_limit) ||
            put_opt(o, "per_customer_limit", d->per_customer_limit) ||
            put_list(o, "tiers", &d->tiers))
                goto fail;
        if (d->tier_value_count) {
                tv = json_object();
                if (put(o, "tier_values", tv))
                        goto fail;
                for (i = 0; i < d->tier_value_count; i++) {
                        const po_tier_value_t *e = &d->tier_values[i];

                        if (json_object_setn_new(tv, e->tier.ptr, e->tier.len,
                                                 json_integer(e->value)))
                                goto fail;
                        if (json_object_size(tv) != i + 1) {
                                *dup = 1;
                                goto fail;
                        }
                }
        }
        if (put_list(o, "channels", &d->channels) ||
            (d->has_customer_id &&
             put(o, "customer_id", json_stringn(d->customer_id.ptr, d->customer_id.len))))
                goto fail;
        if (targets_present(t)) {
                tg = json_object();
                if (put(o, "targets", tg) || put_list(tg, "skus", &t->skus) ||
                    put_list(tg, "categories", &t->categories) ||
                    put_list(tg, "exclude_skus", &t->exclude_skus) ||
                    put_list(tg, "exclude_categories", &t->exclude_categories) ||
                    put_opt(tg, "low_stock_max", t->low_stock_max) ||
                    put_opt(tg, "max_margin_bp", t->max_margin_bp))
                        goto fail;
        }
        if (put(o, "combinable", json_boolean(d->combinable)) ||
            put(o, "priority", json_integer(d->priority)) ||
            put(o, "version", json_integer(cd->version)) ||
            put(o, "updated_at", json_integer(cd->updated_at)))
                goto fail;
        return o;
fail:
        json_decref(o);
        return NULL;
}

po_err_t po_codedef_to_json(const po_codedef_t *cd, po_dynbuf_t *out)
{
        char why[256];
        json_t *o;
        char *text;
        int dup = 0;
        msg_t m;
        po_err_t err;

        msg_init(&m, NULL, PO_ERR_INVALID_ARG, why, sizeof(why));
        if (!cd || !out || chk_codedef(&m, "", cd))
                return PO_ERR_INVALID_ARG;
        o = codedef_json(cd, &dup);
        if (!o)
                return dup ? PO_ERR_INVALID_ARG : PO_ERR_NOMEM;
        text = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        if (!text)
                return PO_ERR_NOMEM;
        err = po_dynbuf_add(out, text, strlen(text));
        free(text);
        return err;
}

/* ---- Avro values: writing ---- */

/* NUL-terminated copies of counted strings for avro-c, freed at the end of
 * one encode. */
typedef struct scratch {
        po_arena_t arena;
} scratch_t;

static int field(msg_t *m, avro_value_t *rec, const char *name, avro_value_t *f)
{
        return po_avro_get_field(rec, name, f) ? avro_fail(m, name) : 0;
}

static int put_long(msg_t *m, avro_value_t *rec, const char *name, int64_t v)
{
        avro_value_t f;

        return field(m, rec, name, &f) ||
               (avro_value_set_long(&f, v) ? avro_fail(m, name) : 0);
}

static int put_cstr(msg_t *m, avro_value_t *v, const char *what, const char *s)
{
        return avro_value_set_string(v, s) ? avro_fail(m, what) : 0;
}

static int put_str(msg_t *m, avro_value_t *rec, const char *name, const char *s)
{
        avro_value_t f;

        return field(m, rec, name, &f) || put_cstr(m, &f, name, s);
}

static int put_enum(msg_t *m, avro_value_t *rec, const char *name, int v)
{
        avro_value_t f;

        return field(m, rec, name, &f) ||
               (avro_value_set_enum(&f, v) ? avro_fail(m, name) : 0);
}

/* Sets the ["null", T] union field name to null (present 0) or to branch 1,
 * returned in *b. */
static int put_union(msg_t *m, avro_value_t *rec, const char *name, int present,
                     avro_value_t *b)
{
        avro_value_t f;

        if (field(m, rec, name, &f))
                return -1;
        if (!present)
                return avro_value_set_branch(&f, 0, b) || avro_value_set_null(b)
                           ? avro_fail(m, name)
                           : 0;
        return avro_value_set_branch(&f, 1, b) ? avro_fail(m, name) : 0;
}

static int put_opt_long(msg_t *m, avro_value_t *rec, const char *name, int present,
                        int64_t v)
{
        avro_value_t b;

        if (put_union(m, rec, name, present, &b))
                return -1;
        return present && avro_value_set_long(&b, v) ? avro_fail(m, name) : 0;
}

static int put_opt_str(msg_t *m, avro_value_t *rec, const char *name, const char *s)
{
        avro_value_t b;

        return put_union(m, rec, name, s != NULL, &b) || (s && put_cstr(m, &b, name, s));
}

static int put_pstr(msg_t *m, scratch_t *sc, avro_value_t *v, const char *what,
                    po_str_t s)
{
        char *c = po_arena_strndup(&sc->arena, s.ptr ? s.ptr : "", s.len);

        if (!c)
                return fail(m, PO_ERR_NOMEM, "%s: out of memory", what);
        return put_cstr(m, v, what, c);
}

static int put_opt_list(msg_t *m, scratch_t *sc, avro_value_t *rec, const char *name,
                        const po_str_list_t *l)
{
        avro_value_t b, e;
        size_t i;

        if (put_union(m, rec, name, l->present, &b))
                return -1;
        for (i = 0; l->present && i < l->count; i++)
                if (avro_value_append(&b, &e, NULL)
                        ? avro_fail(m, name)
                        : put_pstr(m, sc, &e, name, l->items[i]))
                        return -1;
        return 0;
}

static int fill_codedef(msg_t *m, scratch_t *sc, avro_value_t *v, const po_codedef_t *cd)
{
        const po_code_def_t *d = &cd->def;
        const po_targets_t *t = &d->targets;
        avro_value_t b, e;
        int64_t us = 0;
        size_t i;
        int is_new;

        if (put_str(m, v, "code", d->code) || put_enum(m, v, "status", (int)d->status) ||
            put_enum(m, v, "type", (int)d->type) || put_long(m, v, "value", d->value) ||
            put_opt_str(m, v, "currency", d->currency[0] ? d->currency : NULL) ||
            put_opt_long(m, v, "min_spend", d->min_spend.present, d->min_spend.value) ||
            put_opt_long(m, v, "max_spend", d->max_spend.present, d->max_spend.value) ||
            put_opt_long(m, v, "max_discount", d->max_discount.present,
                         d->max_discount.value))
                return -1;
        if (d->has_starts_at)
                instant_to_us(d->starts_at, &us);
        if (put_opt_long(m, v, "starts_at", d->has_starts_at, us))
                return -1;
        if (d->has_expires_at)
                instant_to_us(d->expires_at, &us);
        if (put_opt_long(m, v, "expires_at", d->has_expires_at, us) ||
            put_opt_long(m, v, "usage_limit", d->usage_limit.present,
                         d->usage_limit.value) ||
            put_opt_long(m, v, "per_customer_limit", d->per_customer_limit.present,
                         d->per_customer_limit.value) ||
            put_opt_list(m, sc, v, "tiers", &d->tiers) ||
            put_union(m, v, "tier_values", d->tier_value_count > 0, &b))
                return -1;
        for (i = 0; i < d->tier_value_count; i++) {
                const po_tier_value_t *tv = &d->tier_values[i];
                char *key = po_arena_strndup(&sc->arena, tv->tier.ptr, tv->tier.len);

                if (!key)
                        return fail(m, PO_ERR_NOMEM, "tier_values: out of memory");
                if (avro_value_add(&b, key, &e, NULL, &is_new) ||
                    avro_value_set_long(&e, tv->value))
                        return avro_fail(m, "tier_values");
                if (!is_new)
                        return bad(m, "tier_values.%.40s: given twice", key);
        }
        if (put_opt_list(m, sc, v, "channels", &d->channels) ||
            put_union(m, v, "customer_id", d->has_customer_id, &b) ||
            (d->has_customer_id && put_pstr(m, sc, &b, "customer_id", d->customer_id)) ||
            put_union(m, v, "targets", targets_present(t), &b))
                return -1;
        if (targets_present(t) &&
            (put_opt_list(m, sc, &b, "skus", &t->skus) ||
             put_opt_list(m, sc, &b, "categories", &t->categories) ||
             put_opt_list(m, sc, &b, "exclude_skus", &t->exclude_skus) ||
             put_opt_list(m, sc, &b, "exclude_categories", &t->exclude_categories) ||
             put_opt_long(m, &b, "low_stock_max", t->low_stock_max.present,
                          t->low_stock_max.value) ||
             put_opt_long(m, &b, "max_margin_bp", t->max_margin_bp.present,
                          t->max_margin_bp.value)))
                return -1;
        if (field(m, v, "combinable", &e) ||
            (avro_value_set_boolean(&e, d->combinable) ? avro_fail(m, "combinable")
                                                       : 0) ||
            put_long(m, v, "priority", d->priority) ||
            put_long(m, v, "version", cd->version) ||
            put_long(m, v, "updated_at", cd->updated_at))
                return -1;
        return 0;
}

/* ---- direct writers (po/avro_wire.h) ---- */

/* The layouts the writers below are for: the fingerprints of
 * schemas/CodeDefinition.avsc and schemas/ValidatedOrder.avsc as they are
 * written (check_messages fails when a schema changes without them). */
#define CODEDEF_LAYOUT 0x4c83bd9f0146cd9dULL
#define VALIDATED_LAYOUT 0x0656d00bb5a0ee75ULL
#define PRICED_LAYOUT 0xc75c4376c414367fULL
#define USAGE_LAYOUT 0xe0abad681cae4c24ULL

static void wire_pstr(po_wire_t *w, po_str_t s)
{
        po_wire_str(w, s.ptr ? s.ptr : "", s.ptr ? s.len : 0);
        if (!s.ptr && s.len)
                w->fallback = 1;
}

static void wire_opt_list(po_wire_t *w, const po_str_list_t *l)
{
        size_t i;

        po_wire_long(w, l->present != 0);
        if (!l->present)
                return;
        po_wire_block(w, l->count);
        for (i = 0; i < l->count; i++)
                wire_pstr(w, l->items[i]);
        po_wire_block_end(w);
}

static void wire_opt_instant(po_wire_t *w, int has, po_instant_t t)
{
        int64_t us = 0;

        if (has && instant_to_us(t, &us))
                w->fallback = 1;
        po_wire_opt_long(w, has, us);
}

/* tier_values given twice: the generic path refuses them by name. */
static int tiers_repeat(const po_code_def_t *d)
{
        size_t i, j;

        if (d->tier_value_count > 64)
                return 1;
        for (i = 0; i < d->tier_value_count; i++)
                for (j = 0; j < i; j++)
                        if (d->tier_values[i].tier.len == d->tier_values[j].tier.len &&
                            (d->tier_values[i].tier.len == 0 ||
                             memcmp(d->tier_values[i].tier.ptr,
                                    d->tier_values[j].tier.ptr,
                                    d->tier_values[i].tier.len) == 0))
                                return 1;
        return 0;
}

/* As fill_codedef. */
static void wire_codedef(po_wire_t *w, const po_codedef_t *cd)
{
        const po_code_def_t *d = &cd->def;
        const po_targets_t *t = &d->targets;
        size_t i;

        po_wire_cstr_in(w, d->code, sizeof(d->code));
        po_wire_enum(w, (int)d->status, 3);
        po_wire_enum(w, (int)d->type, 2);
        po_wire_long(w, d->value);
        po_wire_long(w, d->currency[0] != 0);
        if (d->currency[0])
                po_wire_cstr_in(w, d->currency, sizeof(d->currency));
        po_wire_opt_long(w, d->min_spend.present, d->min_spend.value);
        po_wire_opt_long(w, d->max_spend.present, d->max_spend.value);
        po_wire_opt_long(w, d->max_discount.present, d->max_discount.value);
        wire_opt_instant(w, d->has_starts_at, d->starts_at);
        wire_opt_instant(w, d->has_expires_at, d->expires_at);
        po_wire_opt_long(w, d->usage_limit.present, d->usage_limit.value);
        po_wire_opt_long(w, d->per_customer_limit.present, d->per_customer_limit.value);
        wire_opt_list(w, &d->tiers);
        po_wire_long(w, d->tier_value_count > 0);
        if (d->tier_value_count) {
                if (tiers_repeat(d))
                        w->fallback = 1;
                po_wire_block(w, d->tier_value_count);
                for (i = 0; i < d->tier_value_count; i++) {
                        wire_pstr(w, d->tier_values[i].tier);
                        po_wire_long(w, d->tier_values[i].value);
                }
                po_wire_block_end(w);
        }
        wire_opt_list(w, &d->channels);
        po_wire_long(w, d->has_customer_id != 0);
        if (d->has_customer_id)
                wire_pstr(w, d->customer_id);
        po_wire_long(w, targets_present(t));
        if (targets_present(t)) {
                wire_opt_list(w, &t->skus);
                wire_opt_list(w, &t->categories);
                wire_opt_list(w, &t->exclude_skus);
                wire_opt_list(w, &t->exclude_categories);
                po_wire_opt_long(w, t->low_stock_max.present, t->low_stock_max.value);
                po_wire_opt_long(w, t->max_margin_bp.present, t->max_margin_bp.value);
        }
        po_wire_bool(w, d->combinable);
        po_wire_long(w, d->priority);
        po_wire_long(w, cd->version);
        po_wire_long(w, cd->updated_at);
}

static void wire_codedef_cb(po_wire_t *w, const void *what)
{
        wire_codedef(w, what);
}

/* As fill_validated. */
static void wire_validated(po_wire_t *w, const void *what)
{
        const po_validated_t *val = what;
        size_t i;

        po_order_wire(w, &val->order);
        po_wire_enum(w, (int)val->stacking, 2);
        po_wire_enum(w, (int)val->rounding, 2);
        po_wire_block(w, val->line_stock_count);
        for (i = 0; i < val->line_stock_count; i++) {
                po_wire_cstr(w, val->line_stock[i].line_id);
                po_wire_opt_long(w, val->line_stock[i].has_stock,
                                 val->line_stock[i].stock);
        }
        po_wire_block_end(w);
        po_wire_block(w, val->decision_count);
        for (i = 0; i < val->decision_count; i++) {
                const po_decision_t *d = &val->decisions[i];

                po_wire_cstr(w, d->requested);
                po_wire_cstr(w, d->code);
                po_wire_long(w, d->applied ? 0 : 1);
                po_wire_opt_cstr(w, d->reason);
                po_wire_long(w, d->has_definition != 0);
                if (d->has_definition)
                        wire_codedef(w, &d->definition);
                po_wire_opt_long(w, d->has_fingerprint, d->fingerprint);
                po_wire_opt_long(w, d->has_usage, d->usage_total);
                po_wire_opt_long(w, d->has_usage, d->usage_customer);
                po_wire_opt_cstr(w, d->tier);
                po_wire_opt_cstr(w, d->reservation_id);
        }
        po_wire_block_end(w);
        po_wire_long(w, val->validated_at);
}

/* As fill_priced. */
static void wire_priced(po_wire_t *w, const void *what)
{
        const po_priced_t *pr = what;
        size_t i, j;

        po_wire_cstr(w, pr->channel);
        po_wire_cstr(w, pr->account);
        po_wire_cstr(w, pr->external_id);
        po_wire_cstr(w, pr->order_id);
        po_wire_cstr_in(w, pr->currency, sizeof(pr->currency));
        po_wire_long(w, pr->subtotal);
        po_wire_long(w, pr->discount_total);
        po_wire_long(w, pr->tax_total);
        po_wire_long(w, pr->tax_total_before);
        po_wire_long(w, pr->grand_total);
        po_wire_block(w, pr->line_count);
        for (i = 0; i < pr->line_count; i++) {
                const po_priced_line_t *l = &pr->lines[i];

                po_wire_cstr(w, l->line_id);
                po_wire_long(w, l->subtotal);
                po_wire_long(w, l->discount);
                po_wire_long(w, l->net);
                po_wire_long(w, l->tax);
                po_wire_long(w, l->total);
                po_wire_bool(w, l->available);
        }
        po_wire_block_end(w);
        po_wire_block(w, pr->receipt_count);
        for (i = 0; i < pr->receipt_count; i++) {
                const po_priced_receipt_t *r = &pr->receipt[i];

                po_wire_cstr(w, r->code);
                po_wire_cstr(w, r->description);
                po_wire_long(w, r->amount);
                po_wire_block(w, r->allocation_count);
                for (j = 0; j < r->allocation_count; j++) {
                        po_wire_cstr(w, r->allocations[j].line_id);
                        po_wire_long(w, r->allocations[j].amount);
                }
                po_wire_block_end(w);
        }
        po_wire_block_end(w);
        po_wire_block(w, pr->rejected_count);
        for (i = 0; i < pr->rejected_count; i++) {
                po_wire_cstr(w, pr->rejected[i].code);
                po_wire_cstr(w, pr->rejected[i].reason);
        }
        po_wire_block_end(w);
        po_wire_long(w, pr->priced_at);
}

/* As fill_usage. */
static void wire_usage(po_wire_t *w, const void *what)
{
        const po_usage_event_t *e = what;

        po_wire_cstr(w, e->event_id);
        po_wire_cstr(w, e->order_id);
        po_wire_cstr(w, e->channel);
        po_wire_cstr(w, e->account);
        po_wire_cstr(w, e->code);
        po_wire_opt_cstr(w, e->customer_id);
        po_wire_long(w, e->applied ? 0 : 1);
        po_wire_opt_cstr(w, e->reason);
        po_wire_long(w, e->value_applied);
        po_wire_cstr_in(w, e->currency, sizeof(e->currency));
        po_wire_long(w, e->occurred_at);
}

/* ---- direct readers (po/avro_wire.h) ---- */

static void rd_pstr(po_rd_t *r, po_arena_t *a, po_str_t *out)
{
        out->ptr = po_rd_arena_str(r, a, &out->len);
}

static void rd_opt(po_rd_t *r, po_opt_i64_t *out)
{
        out->present = po_rd_index(r, 2);
        out->value = out->present ? po_rd_long(r) : 0;
}

/* As get_instant: absent reads as the instant 0. */
static void rd_instant(po_rd_t *r, int *has, po_instant_t *out)
{
        int64_t us = 0;

        *has = po_rd_index(r, 2);
        if (*has) {
                us = po_rd_long(r);
                if (us < MIN_US || us > MAX_US)
                        r->bail = 1;
        }
        *out = us_to_instant(us);
}

/* As get_list. */
static void rd_list(po_rd_t *r, po_arena_t *a, po_str_list_t *out)
{
        po_str_t *items;
        size_t n, i;

        memset(out, 0, sizeof(*out));
        out->present = po_rd_index(r, 2);
        if (!out->present)
                return;
        n = po_rd_count(r, MSG_MAX_LIST);
        items = po_rd_arena_items(r, a, n, sizeof(*items));
        for (i = 0; i < n && !r->bail; i++)
                rd_pstr(r, a, &items[i]);
        po_rd_end(r, n);
        out->items = items;
        out->count = n;
}

/* As read_codedef (without its checks: the caller runs chk_validated). */
static void rd_codedef(po_rd_t *r, po_arena_t *a, po_codedef_t *cd)
{
        po_code_def_t *d = &cd->def;
        po_targets_t *t = &d->targets;
        po_tier_value_t *tvs;
        const char *s;
        size_t n, i, j;

        memset(cd, 0, sizeof(*cd));
        s = po_rd_str(r, &n);
        if (r->bail || n > PO_PRICING_CODE_MAX) {
                r->bail = 1;
                return;
        }
        memcpy(d->code, s, n);
        d->code[n] = '\0';
        d->code_len = n;
        d->status = (po_code_status_t)po_rd_index(r, 3);
        d->type = (po_code_type_t)po_rd_index(r, 2);
        d->value = po_rd_long(r);
        if (po_rd_index(r, 2)) {
                s = po_rd_str(r, &n);
                if (r->bail || n != 3) {
                        r->bail = 1;
                        return;
                }
                memcpy(d->currency, s, 3);
                d->currency[3] = '\0';
        }
        rd_opt(r, &d->min_spend);
        rd_opt(r, &d->max_spend);
        rd_opt(r, &d->max_discount);
        rd_instant(r, &d->has_starts_at, &d->starts_at);
        rd_instant(r, &d->has_expires_at, &d->expires_at);
        rd_opt(r, &d->usage_limit);
        rd_opt(r, &d->per_customer_limit);
        rd_list(r, a, &d->tiers);
        if (po_rd_index(r, 2)) {
                /* Keys given twice are one entry for avro-c: checked pairwise,
                 * so only for a few (a larger map takes the generic path). */
                n = po_rd_count(r, 64);
                tvs = po_rd_arena_items(r, a, n, sizeof(*tvs));
                for (i = 0; i < n && !r->bail; i++) {
                        rd_pstr(r, a, &tvs[i].tier);
                        tvs[i].value = po_rd_long(r);
                        for (j = 0; j < i && !r->bail; j++)
                                if (tvs[j].tier.len == tvs[i].tier.len &&
                                    memcmp(tvs[j].tier.ptr, tvs[i].tier.ptr,
                                           tvs[i].tier.len) == 0)
                                        r->bail = 1;
                }
                po_rd_end(r, n);
                d->tier_values = tvs;
                d->tier_value_count = n;
        }
        rd_list(r, a, &d->channels);
        d->has_customer_id = po_rd_index(r, 2);
        if (d->has_customer_id)
                rd_pstr(r, a, &d->customer_id);
        if (po_rd_index(r, 2)) {
                rd_list(r, a, &t->skus);
                rd_list(r, a, &t->categories);
                rd_list(r, a, &t->exclude_skus);
                rd_list(r, a, &t->exclude_categories);
                rd_opt(r, &t->low_stock_max);
                rd_opt(r, &t->max_margin_bp);
        }
        d->combinable = po_rd_bool(r);
        d->priority = po_rd_long(r);
        cd->version = po_rd_long(r);
        cd->updated_at = po_rd_long(r);
}

/* As read_validated, without its checks (po_validated_decode runs them). */
static void rd_validated(po_rd_t *r, void *what)
{
        po_validated_t *val = what;
        po_arena_t *a = &val->order.arena;
        size_t n, i;

        po_order_wire_read(r, &val->order, PO_PRICING_MAX_LINES, PO_PRICING_MAX_CODES,
                           MSG_MAX_LIST);
        if (!r->bail && val->order.line_count == 0)
                r->bail = 1;
        val->stacking = (po_stacking_t)po_rd_index(r, 2);
        val->rounding = (po_rounding_t)po_rd_index(r, 2);
        n = po_rd_count(r, PO_PRICING_MAX_LINES);
        val->line_stock = po_rd_arena_items(r, a, n, sizeof(*val->line_stock));
        for (i = 0; i < n && !r->bail; i++) {
                po_line_stock_t *s = &val->line_stock[i];

                s->line_id = po_rd_arena_str(r, a, NULL);
                s->has_stock = po_rd_index(r, 2);
                s->stock = s->has_stock ? po_rd_long(r) : 0;
        }
        po_rd_end(r, n);
        val->line_stock_count = n;
        n = po_rd_count(r, PO_PRICING_MAX_CODES);
        val->decisions = po_rd_arena_items(r, a, n, sizeof(*val->decisions));
        for (i = 0; i < n && !r->bail; i++) {
                po_decision_t *d = &val->decisions[i];
                int has_cust;

                d->requested = po_rd_arena_str(r, a, NULL);
                d->code = po_rd_arena_str(r, a, NULL);
                d->applied = po_rd_index(r, 2) == 0;
                d->reason = po_rd_arena_opt_str(r, a);
                d->has_definition = po_rd_index(r, 2);
                if (d->has_definition)
                        rd_codedef(r, a, &d->definition);
                d->has_fingerprint = po_rd_index(r, 2);
                d->fingerprint = d->has_fingerprint ? po_rd_long(r) : 0;
                d->has_usage = po_rd_index(r, 2);
                d->usage_total = d->has_usage ? po_rd_long(r) : 0;
                has_cust = po_rd_index(r, 2);
                d->usage_customer = has_cust ? po_rd_long(r) : 0;
                if (has_cust != d->has_usage)
                        r->bail = 1;
                d->tier = po_rd_arena_opt_str(r, a);
                d->reservation_id = po_rd_arena_opt_str(r, a);
        }
        po_rd_end(r, n);
        val->decision_count = n;
        val->validated_at = po_rd_long(r);
}

/* Checks what with chk and appends its encoding as schema name to out:
 * with the direct writer wire when there is one (for the layout layout) and
 * it can, otherwise with a value built by fill. */
typedef int (*chk_fn)(msg_t *m, const void *what);
typedef int (*fill_fn)(msg_t *m, scratch_t *sc, avro_value_t *v, const void *what);

static po_err_t encode(po_avro_t *avro, const char *name, chk_fn chk, fill_fn fill,
                       po_wire_fn wire, uint64_t layout, const void *what,
                       po_dynbuf_t *out, char *errstr, size_t errstr_size)
{
        msg_t msg, *m = &msg;
        scratch_t sc;
        avro_value_t v;
        po_err_t err;

        msg_init(m, NULL, PO_ERR_INVALID_ARG, errstr, errstr_size);
        if (!avro || !out || !what)
                return PO_ERR_INVALID_ARG;
        if (chk(m, what))
                return m->err;
        if (wire && po_avro_wire_encode(avro, name, layout, wire, what, out, &err))
                return err;
        err = po_avro_value_new(avro, name, 0, &v);
        if (err) {
                fail(m, err, "cannot create a %s value", name);
                return err;
        }
        po_arena_init(&sc.arena, SIZE_MAX);
        if (fill(m, &sc, &v, what) == 0)
                err = po_avro_encode(avro, name, &v, out, m->errstr, m->errstr_size);
        else
                err = m->err;
        po_arena_release(&sc.arena);
        avro_value_decref(&v);
        return err;
}

static int chk_codedef_cb(msg_t *m, const void *what)
{
        return chk_codedef(m, "", what);
}

static int fill_codedef_cb(msg_t *m, scratch_t *sc, avro_value_t *v, const void *what)
{
        return fill_codedef(m, sc, v, what);
}

po_err_t po_codedef_encode(po_avro_t *avro, const po_codedef_t *cd, po_dynbuf_t *out,
                           char *errstr, size_t errstr_size)
{
        return encode(avro, "CodeDefinition", chk_codedef_cb, fill_codedef_cb,
                      wire_codedef_cb, CODEDEF_LAYOUT, cd, out, errstr, errstr_size);
}

po_err_t po_codedef_fingerprint(po_avro_t *avro, const po_codedef_t *cd, int64_t *fp)
{
        char why[256];
        po_dynbuf_t b;
        uint64_t crc;
        po_err_t err;

        po_dynbuf_init(&b, SIZE_MAX);
        err = po_codedef_encode(avro, cd, &b, why, sizeof(why));
        if (!err && b.len < PO_AVRO_HEADER_SIZE)
                err = PO_ERR_INVALID_ARG;
        if (!err) {
                crc = po_avro_crc64(b.data + PO_AVRO_HEADER_SIZE,
                                    b.len - PO_AVRO_HEADER_SIZE);
                memcpy(fp, &crc, sizeof(*fp)); /* the same 64 bits, as a signed long */
        }
        po_dynbuf_release(&b);
        return err;
}

/* ---- Avro values: reading ---- */

/* Field name of the record rec, through a ["null", T] union when it is one:
 * *present tells which branch (1 when not a union). */
static int get_field(msg_t *m, avro_value_t *rec, const char *name, avro_value_t *out,
                     int *present)
{
        avro_value_t f;
        int disc;

        *present = 1;
        if (po_avro_get_field(rec, name, &f))
                return avro_fail(m, name);
        if (avro_value_get_type(&f) != AVRO_UNION) {
                *out = f;
                return 0;
        }
        if (avro_value_get_discriminant(&f, &disc) ||
            avro_value_get_current_branch(&f, out))
                return avro_fail(m, name);
        *present = disc != 0;
        return 0;
}

/* A string value copied into the arena (len in *len when wanted). */
static int read_cstr(msg_t *m, avro_value_t *v, const char *what, const char **out,
                     size_t *len)
{
        const char *s;
        size_t size;
        char *c;

        if (avro_value_get_string(v, &s, &size) || size == 0)
                return avro_fail(m, what);
        c = arena_items(m, size, 1, what);
        if (!c)
                return -1;
        memcpy(c, s, size - 1);
        c[size - 1] = '\0';
        *out = c;
        if (len)
                *len = size - 1;
        return 0;
}

/* A string or ["null", string] field; NULL when null. */
static int get_str(msg_t *m, avro_value_t *rec, const char *name, const char **out)
{
        avro_value_t f;
        int present;

        *out = NULL;
        if (get_field(m, rec, name, &f, &present))
                return -1;
        return present ? read_cstr(m, &f, name, out, NULL) : 0;
}

static int get_pstr(msg_t *m, avro_value_t *v, const char *what, po_str_t *out)
{
        return read_cstr(m, v, what, &out->ptr, &out->len);
}

/* A long or ["null", long] field. */
static int get_long(msg_t *m, avro_value_t *rec, const char *name, int *present,
                    int64_t *out)
{
        avro_value_t f;
        int p;

        *out = 0;
        if (get_field(m, rec, name, &f, &p))
                return -1;
        if (present)
                *present = p;
        if (p && avro_value_get_long(&f, out))
                return avro_fail(m, name);
        return 0;
}

static int get_opt(msg_t *m, avro_value_t *rec, const char *name, po_opt_i64_t *out)
{
        return get_long(m, rec, name, &out->present, &out->value);
}

static int get_enum(msg_t *m, avro_value_t *rec, const char *name, int *out)
{
        avro_value_t f;
        int present;

        if (get_field(m, rec, name, &f, &present))
                return -1;
        return avro_value_get_enum(&f, out) ? avro_fail(m, name) : 0;
}

static int get_bool(msg_t *m, avro_value_t *rec, const char *name, int *out)
{
        avro_value_t f;
        int present;

        if (get_field(m, rec, name, &f, &present))
                return -1;
        return avro_value_get_boolean(&f, out) ? avro_fail(m, name) : 0;
}

/* The number of items of the array or map v, at most max. */
static int get_count(msg_t *m, avro_value_t *v, const char *p, const char *what,
                     size_t max, size_t *n)
{
        if (avro_value_get_size(v, n))
                return avro_fail(m, what);
        return chk_count(m, p, what, *n, 0, max);
}

/* A ["null", array of string] field. */
static int get_list(msg_t *m, avro_value_t *rec, const char *p, const char *name,
                    po_str_list_t *out)
{
        avro_value_t f, e;
        po_str_t *items;
        size_t n, i;

        memset(out, 0, sizeof(*out));
        if (get_field(m, rec, name, &f, &out->present))
                return -1;
        if (!out->present)
                return 0;
        if (get_count(m, &f, p, name, MSG_MAX_LIST, &n))
                return -1;
        items = arena_items(m, n, sizeof(*items), name);
        if (!items)
                return -1;
        for (i = 0; i < n; i++)
                if (avro_value_get_by_index(&f, i, &e, NULL)
                        ? avro_fail(m, name)
                        : get_pstr(m, &e, name, &items[i]))
                        return -1;
        out->items = items;
        out->count = n;
        return 0;
}

static int get_instant(msg_t *m, avro_value_t *rec, const char *p, const char *name,
                       int *has, po_instant_t *out)
{
        int64_t us;

        if (get_long(m, rec, name, has, &us))
                return -1;
        if (*has && chk_time(m, p, name, us))
                return -1;
        *out = us_to_instant(us);
        return 0;
}

static int read_codedef(msg_t *m, avro_value_t *v, const char *p, po_codedef_t *cd)
{
        po_code_def_t *d = &cd->def;
        po_targets_t *t = &d->targets;
        po_tier_value_t *tvs;
        avro_value_t f, e;
        const char *s;
        char tp[128], *c;
        size_t n, i;
        int st, ty, present;

        memset(cd, 0, sizeof(*cd));
        path(tp, sizeof(tp), p, "targets", NO_IDX, ".");
        if (get_str(m, v, "code", &s))
                return -1;
        n = strlen(s);
        if (n > PO_PRICING_CODE_MAX)
                return bad(m, "%scode: must be 3..64 characters of A-Z 0-9 - _", p);
        memcpy(d->code, s, n + 1);
        d->code_len = n;
        if (get_enum(m, v, "status", &st) || get_enum(m, v, "type", &ty) ||
            get_long(m, v, "value", NULL, &d->value) || get_str(m, v, "currency", &s))
                return -1;
        d->status = (po_code_status_t)st;
        d->type = (po_code_type_t)ty;
        if (s && strlen(s) != 3)
                return bad(m, "%scurrency: must be 3 upper-case letters", p);
        if (s)
                memcpy(d->currency, s, 4);
        if (get_opt(m, v, "min_spend", &d->min_spend) ||
            get_opt(m, v, "max_spend", &d->max_spend) ||
            get_opt(m, v, "max_discount", &d->max_discount) ||
            get_instant(m, v, p, "starts_at", &d->has_starts_at, &d->starts_at) ||
            get_instant(m, v, p, "expires_at", &d->has_expires_at, &d->expires_at) ||
            get_opt(m, v, "usage_limit", &d->usage_limit) ||
            get_opt(m, v, "per_customer_limit", &d->per_customer_limit) ||
            get_list(m, v, p, "tiers", &d->tiers) ||
            get_field(m, v, "tier_values", &f, &present))
                return -1;
        if (present) {
                if (get_count(m, &f, p, "tier_values", MSG_MAX_LIST, &n))
                        return -1;
                tvs = arena_items(m, n, sizeof(*tvs), "tier_values");
                if (!tvs)
                        return -1;
                for (i = 0; i < n; i++) {
                        const char *key;

                        if (avro_value_get_by_index(&f, i, &e, &key) ||
                            avro_value_get_long(&e, &tvs[i].value))
                                return avro_fail(m, "tier_values");
                        tvs[i].tier.len = strlen(key);
                        c = arena_items(m, tvs[i].tier.len + 1, 1, "tier_values");
                        if (!c)
                                return -1;
                        memcpy(c, key, tvs[i].tier.len);
                        tvs[i].tier.ptr = c;
                }
                d->tier_values = tvs;
                d->tier_value_count = n;
        }
        if (get_list(m, v, p, "channels", &d->channels) ||
            get_field(m, v, "customer_id", &f, &d->has_customer_id) ||
            (d->has_customer_id && get_pstr(m, &f, "customer_id", &d->customer_id)) ||
            get_field(m, v, "targets", &f, &present))
                return -1;
        if (present &&
            (get_list(m, &f, tp, "skus", &t->skus) ||
             get_list(m, &f, tp, "categories", &t->categories) ||
             get_list(m, &f, tp, "exclude_skus", &t->exclude_skus) ||
             get_list(m, &f, tp, "exclude_categories", &t->exclude_categories) ||
             get_opt(m, &f, "low_stock_max", &t->low_stock_max) ||
             get_opt(m, &f, "max_margin_bp", &t->max_margin_bp)))
                return -1;
        if (get_bool(m, v, "combinable", &d->combinable) ||
            get_long(m, v, "priority", NULL, &d->priority) ||
            get_long(m, v, "version", NULL, &cd->version) ||
            get_long(m, v, "updated_at", NULL, &cd->updated_at))
                return -1;
        return chk_codedef(m, p, cd);
}

/* Decodes buf as schema name and reads it with read(m, value, what). */
typedef int (*read_fn)(msg_t *m, avro_value_t *v, void *what);

static po_err_t decode(po_avro_t *avro, const char *name, const void *buf, size_t len,
                       read_fn read, void *what, msg_t *m)
{
        avro_value_t v;
        po_err_t err;

        if (!avro || !m->arena || (!buf && len))
                return PO_ERR_INVALID_ARG;
        err = po_avro_decode(avro, name, buf, len, &v, m->errstr, m->errstr_size);
        if (err)
                return err;
        read(m, &v, what);
        avro_value_decref(&v);
        return m->err;
}

/* decode into out (out_size bytes, cleared first and again on failure), the
 * strings in arena. */
static po_err_t decode_into(po_avro_t *avro, const char *name, const void *buf,
                            size_t len, read_fn read, po_arena_t *arena, void *out,
                            size_t out_size, char *errstr, size_t errstr_size)
{
        msg_t m;
        po_err_t err;

        msg_init(&m, arena, PO_ERR_BAD_INPUT, errstr, errstr_size);
        if (!out)
                return PO_ERR_INVALID_ARG;
        memset(out, 0, out_size);
        err = decode(avro, name, buf, len, read, out, &m);
        if (err)
                memset(out, 0, out_size);
        return err;
}

static int read_codedef_cb(msg_t *m, avro_value_t *v, void *what)
{
        return read_codedef(m, v, "", what);
}

po_err_t po_codedef_decode(po_avro_t *avro, const void *buf, size_t len,
                           po_arena_t *arena, po_codedef_t *out, char *errstr,
                           size_t errstr_size)
{
        return decode_into(avro, "CodeDefinition", buf, len, read_codedef_cb, arena, out,
                           sizeof(*out), errstr, errstr_size);
}

/* ---- ValidatedOrder ---- */

/* The canonical order within the pricing bounds (what intake guarantees). */
static int chk_order(msg_t *m, const char *p, const po_order_t *o)
{
        char lp[160];
        size_t i;

        if (chk_str(m, p, "channel", o->channel, 1) ||
            chk_str(m, p, "account", o->account, 1) ||
            chk_str(m, p, "external_id", o->external_id, 1) ||
            chk_str(m, p, "order_id", o->order_id, 1) ||
            chk_bool(m, p, "customer", o->has_customer) ||
            (o->has_customer &&
             (chk_str(m, p, "customer.id", o->customer_id, 0) ||
              chk_str(m, p, "customer.tier", o->customer_tier, 0) ||
              chk_str(m, p, "customer.email", o->customer_email, 0))) ||
            chk_currency(m, p, "currency", o->currency, 1))
                return -1;
        if ((unsigned)o->tax_mode > PO_TAX_INCLUSIVE)
                return bad(m, "%stax_mode: unknown value %d", p, (int)o->tax_mode);
        if (chk_count(m, p, "lines", o->line_count, 1, PO_PRICING_MAX_LINES))
                return -1;
        if (!o->lines)
                return bad(m, "%slines: NULL", p);
        for (i = 0; i < o->line_count; i++) {
                const po_order_line_t *l = &o->lines[i];

                path(lp, sizeof(lp), p, "lines", i, ".");
                if (chk_str(m, lp, "line_id", l->line_id, 1) ||
                    chk_str(m, lp, "sku", l->sku, 1) ||
                    chk_str(m, lp, "category", l->category, 1) ||
                    chk_int(m, lp, "unit_price", l->unit_price, 0,
                            PO_PRICING_MAX_UNIT_PRICE) ||
                    chk_int(m, lp, "quantity", l->quantity, 1, PO_PRICING_MAX_QUANTITY) ||
                    chk_int(m, lp, "tax_rate_ppm", l->tax_rate_ppm, 0,
                            PO_PRICING_MAX_PPM) ||
                    (l->has_unit_cost &&
                     chk_int(m, lp, "unit_cost", l->unit_cost, 0, PO_PRICING_MAX_VALUE)))
                        return -1;
        }
        if (po_order_value(o) > PO_PRICING_MAX_SUBTOTAL)
                return bad(m, "%slines: the order's value is above 10^15", p);
        if (chk_count(m, p, "requested_codes", o->code_count, 0, PO_PRICING_MAX_CODES))
                return -1;
        if (o->code_count && !o->codes)
                return bad(m, "%srequested_codes: NULL", p);
        for (i = 0; i < o->code_count; i++) {
                path(lp, sizeof(lp), "", "requested_codes", i, "");
                if (chk_str(m, p, lp, o->codes[i], 1))
                        return -1;
        }
        if (chk_time(m, p, "placed_at", o->placed_at_us) ||
            chk_time(m, p, "received_at", o->received_at_us) ||
            chk_count(m, p, "attributes", o->attr_count, 0, MSG_MAX_LIST))
                return -1;
        if (o->attr_count && !o->attrs)
                return bad(m, "%sattributes: NULL", p);
        for (i = 0; i < o->attr_count; i++) {
                path(lp, sizeof(lp), "", "attributes", i, "");
                if (chk_str(m, p, lp, o->attrs[i].key, 1) ||
                    chk_str(m, p, lp, o->attrs[i].value, 1))
                        return -1;
        }
        return 0;
}

static int chk_decision(msg_t *m, const char *p, const po_decision_t *d,
                        const char *requested)
{
        char dp[96];

        if (chk_str(m, p, "requested", d->requested, 1) ||
            chk_str(m, p, "code", d->code, 1) || chk_bool(m, p, "decision", d->applied))
                return -1;
        if (strcmp(d->requested, requested) != 0)
                return bad(m, "%srequested: is not the order's requested code", p);
        if (d->applied && d->reason)
                return bad(m, "%sreason: set on an applied code", p);
        if (!d->applied && chk_reason(m, p, "reason", d->reason))
                return -1;
        path(dp, sizeof(dp), p, "definition", NO_IDX, ".");
        if (chk_bool(m, p, "definition", d->has_definition) ||
            (d->has_definition && chk_codedef(m, dp, &d->definition)) ||
            chk_bool(m, p, "definition_fingerprint", d->has_fingerprint) ||
            chk_bool(m, p, "usage_total", d->has_usage) ||
            (d->has_usage &&
             (chk_int(m, p, "usage_total", d->usage_total, 0, PO_PRICING_MAX_VALUE) ||
              chk_int(m, p, "usage_customer", d->usage_customer, 0,
                      PO_PRICING_MAX_VALUE))) ||
            chk_str(m, p, "tier", d->tier, 0) ||
            chk_str(m, p, "reservation_id", d->reservation_id, 0))
                return -1;
        if (!d->applied && d->reservation_id)
                return bad(m, "%sreservation_id: set on a rejected code", p);
        return 0;
}

static int chk_validated(msg_t *m, const void *what)
{
        const po_validated_t *v = what;
        char p[64];
        size_t i;

        if (chk_order(m, "order.", &v->order))
                return -1;
        if ((unsigned)v->stacking > PO_STACK_COMBINE)
                return bad(m, "stacking: unknown value %d", (int)v->stacking);
        if ((unsigned)v->rounding > PO_ROUND_HALF_EVEN)
                return bad(m, "rounding: unknown value %d", (int)v->rounding);
        if (v->line_stock_count != v->order.line_count)
                return bad(m, "line_stock: %zu entries for %zu order lines",
                           v->line_stock_count, v->order.line_count);
        if (!v->line_stock)
                return bad(m, "line_stock: NULL");
        for (i = 0; i < v->line_stock_count; i++) {
                const po_line_stock_t *s = &v->line_stock[i];

                path(p, sizeof(p), "", "line_stock", i, ".");
                if (chk_str(m, p, "line_id", s->line_id, 1) ||
                    chk_bool(m, p, "stock", s->has_stock) ||
                    (s->has_stock &&
                     chk_int(m, p, "stock", s->stock, 0, PO_PRICING_MAX_VALUE)))
                        return -1;
                if (strcmp(s->line_id, v->order.lines[i].line_id) != 0)
                        return bad(m, "%sline_id: is not the id of order line %zu", p, i);
        }
        if (v->decision_count != v->order.code_count)
                return bad(m, "decisions: %zu for %zu requested codes", v->decision_count,
                           v->order.code_count);
        if (v->decision_count && !v->decisions)
                return bad(m, "decisions: NULL");
        for (i = 0; i < v->decision_count; i++) {
                path(p, sizeof(p), "", "decisions", i, ".");
                if (chk_decision(m, p, &v->decisions[i], v->order.codes[i]))
                        return -1;
        }
        return chk_time(m, "", "validated_at", v->validated_at);
}

static int fill_validated(msg_t *m, scratch_t *sc, avro_value_t *v, const void *what)
{
        const po_validated_t *val = what;
        avro_value_t f, e, b;
        size_t i;

        if (field(m, v, "order", &f))
                return -1;
        if (po_order_avro_fill(&f, &val->order))
                return avro_fail(m, "order");
        if (put_enum(m, v, "stacking", (int)val->stacking) ||
            put_enum(m, v, "rounding", (int)val->rounding) ||
            field(m, v, "line_stock", &f))
                return -1;
        for (i = 0; i < val->line_stock_count; i++) {
                const po_line_stock_t *s = &val->line_stock[i];

                if (avro_value_append(&f, &e, NULL))
                        return avro_fail(m, "line_stock");
                if (put_str(m, &e, "line_id", s->line_id) ||
                    put_opt_long(m, &e, "stock", s->has_stock, s->stock))
                        return -1;
        }
        if (field(m, v, "decisions", &f))
                return -1;
        for (i = 0; i < val->decision_count; i++) {
                const po_decision_t *d = &val->decisions[i];

                if (avro_value_append(&f, &e, NULL))
                        return avro_fail(m, "decisions");
                if (put_str(m, &e, "requested", d->requested) ||
                    put_str(m, &e, "code", d->code) ||
                    put_enum(m, &e, "decision", d->applied ? 0 : 1) ||
                    put_opt_str(m, &e, "reason", d->reason) ||
                    put_union(m, &e, "definition", d->has_definition, &b) ||
                    (d->has_definition && fill_codedef(m, sc, &b, &d->definition)) ||
                    put_opt_long(m, &e, "definition_fingerprint", d->has_fingerprint,
                                 d->fingerprint) ||
                    put_opt_long(m, &e, "usage_total", d->has_usage, d->usage_total) ||
                    put_opt_long(m, &e, "usage_customer", d->has_usage,
                                 d->usage_customer) ||
                    put_opt_str(m, &e, "tier", d->tier) ||
                    put_opt_str(m, &e, "reservation_id", d->reservation_id))
                        return -1;
        }
        return put_long(m, v, "validated_at", val->validated_at);
}

po_err_t po_validated_encode(po_avro_t *avro, const po_validated_t *v, po_dynbuf_t *out,
                             char *errstr, size_t errstr_size)
{
        return encode(avro, "ValidatedOrder", chk_validated, fill_validated,
                      wire_validated, VALIDATED_LAYOUT, v, out, errstr, errstr_size);
}

static int read_decision(msg_t *m, avro_value_t *e, const char *p, po_decision_t *d)
{
        avro_value_t f;
        char dp[96];
        int64_t cust = 0;
        int dec, has_cust = 0;

        if (get_str(m, e, "requested", &d->requested) ||
            get_str(m, e, "code", &d->code) || get_enum(m, e, "decision", &dec) ||
            get_str(m, e, "reason", &d->reason) ||
            get_field(m, e, "definition", &f, &d->has_definition))
                return -1;
        d->applied = dec == 0;
        path(dp, sizeof(dp), p, "definition", NO_IDX, ".");
        if (d->has_definition && read_codedef(m, &f, dp, &d->definition))
                return -1;
        if (get_long(m, e, "definition_fingerprint", &d->has_fingerprint,
                     &d->fingerprint) ||
            get_long(m, e, "usage_total", &d->has_usage, &d->usage_total) ||
            get_long(m, e, "usage_customer", &has_cust, &cust) ||
            get_str(m, e, "tier", &d->tier) ||
            get_str(m, e, "reservation_id", &d->reservation_id))
                return -1;
        if (has_cust != d->has_usage)
                return bad(m,
                           "%susage_customer: usage_total and usage_customer come "
                           "together",
                           p);
        d->usage_customer = cust;
        return 0;
}

/* What po_order_avro_read would refuse without saying why (the currency's
 * length), and the sizes of the order's lists before it allocates them. */
static int precheck_order(msg_t *m, avro_value_t *o)
{
        static const struct {
                const char *name;
                size_t min, max;
        } lists[] = {{"lines", 1, PO_PRICING_MAX_LINES},
                     {"requested_codes", 0, PO_PRICING_MAX_CODES},
                     {"attributes", 0, MSG_MAX_LIST}};
        avro_value_t f;
        const char *cur;
        size_t i, n;

        if (field(m, o, "currency", &f))
                return -1;
        if (avro_value_get_string(&f, &cur, &n))
                return avro_fail(m, "currency");
        if (n != 4)
                return bad(m, "order.currency: must be 3 upper-case letters");
        for (i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
                if (field(m, o, lists[i].name, &f))
                        return -1;
                if (avro_value_get_size(&f, &n))
                        return avro_fail(m, lists[i].name);
                if (chk_count(m, "order.", lists[i].name, n, lists[i].min, lists[i].max))
                        return -1;
        }
        return 0;
}

static int read_validated(msg_t *m, avro_value_t *v, void *what)
{
        po_validated_t *val = what;
        avro_value_t f, e;
        char p[64];
        size_t n, i;
        int st, rd, present;

        if (get_field(m, v, "order", &f, &present) || precheck_order(m, &f))
                return -1;
        /* The datum is valid and prechecked: only the arena can fail now. */
        if (po_order_avro_read(&val->order, &f))
                return bad(m, "order: out of memory or over the %zu bytes allowed",
                           m->arena->limit);
        /* Bounds first: the counts below are checked against the order's. */
        if (chk_order(m, "order.", &val->order) || get_enum(m, v, "stacking", &st) ||
            get_enum(m, v, "rounding", &rd))
                return -1;
        val->stacking = (po_stacking_t)st;
        val->rounding = (po_rounding_t)rd;
        if (field(m, v, "line_stock", &f) ||
            get_count(m, &f, "", "line_stock", PO_PRICING_MAX_LINES, &n))
                return -1;
        val->line_stock = arena_items(m, n, sizeof(*val->line_stock), "line_stock");
        if (!val->line_stock)
                return -1;
        for (i = 0; i < n; i++) {
                po_line_stock_t *s = &val->line_stock[i];

                if (avro_value_get_by_index(&f, i, &e, NULL))
                        return avro_fail(m, "line_stock");
                if (get_str(m, &e, "line_id", &s->line_id) ||
                    get_long(m, &e, "stock", &s->has_stock, &s->stock))
                        return -1;
        }
        val->line_stock_count = n;
        if (field(m, v, "decisions", &f) ||
            get_count(m, &f, "", "decisions", PO_PRICING_MAX_CODES, &n))
                return -1;
        val->decisions = arena_items(m, n, sizeof(*val->decisions), "decisions");
        if (!val->decisions)
                return -1;
        for (i = 0; i < n; i++) {
                path(p, sizeof(p), "", "decisions", i, ".");
                if (avro_value_get_by_index(&f, i, &e, NULL))
                        return avro_fail(m, "decisions");
                if (read_decision(m, &e, p, &val->decisions[i]))
                        return -1;
        }
        val->decision_count = n;
        if (get_long(m, v, "validated_at", NULL, &val->validated_at))
                return -1;
        return chk_validated(m, val);
}

po_err_t po_validated_decode(po_avro_t *avro, const void *buf, size_t len,
                             po_validated_t *v, char *errstr, size_t errstr_size)
{
        po_arena_t arena;
        msg_t m;
        po_err_t err;

        if (!v)
                return PO_ERR_INVALID_ARG;
        /* Keep the caller's arena (and what it holds), clear the rest. */
        arena = v->order.arena;
        memset(v, 0, sizeof(*v));
        v->order.arena = arena;
        /* Directly when the message has today's layout and passes the
         * checks; otherwise (anything else, any doubt) the generic path. */
        if (po_avro_wire_decode(avro, "ValidatedOrder", VALIDATED_LAYOUT, rd_validated,
                                buf, len, v)) {
                char quiet[8];

                msg_init(&m, &v->order.arena, PO_ERR_BAD_INPUT, quiet, sizeof(quiet));
                if (chk_order(&m, "order.", &v->order) == 0 && chk_validated(&m, v) == 0)
                        return PO_OK;
                arena = v->order.arena;
                memset(v, 0, sizeof(*v));
                v->order.arena = arena;
        }
        msg_init(&m, &v->order.arena, PO_ERR_BAD_INPUT, errstr, errstr_size);
        err = decode(avro, "ValidatedOrder", buf, len, read_validated, v, &m);
        if (err) {
                arena = v->order.arena;
                memset(v, 0, sizeof(*v));
                v->order.arena = arena;
        }
        return err;
}

/* ---- PricedOrder ---- */

#define MAX_TOTAL (2 * PO_PRICING_MAX_VALUE) /* a total with tax at 100 % */

static int chk_priced(msg_t *m, const void *what)
{
        const po_priced_t *pr = what;
        char p[96], ap[160];
        size_t i, j;

        if (chk_str(m, "", "channel", pr->channel, 1) ||
            chk_str(m, "", "account", pr->account, 1) ||
            chk_str(m, "", "external_id", pr->external_id, 1) ||
            chk_str(m, "", "order_id", pr->order_id, 1) ||
            chk_currency(m, "", "currency", pr->currency, 1) ||
            chk_int(m, "", "subtotal", pr->subtotal, 0, PO_PRICING_MAX_SUBTOTAL) ||
            chk_int(m, "", "discount_total", pr->discount_total, 0,
                    PO_PRICING_MAX_SUBTOTAL) ||
            chk_int(m, "", "tax_total", pr->tax_total, 0, PO_PRICING_MAX_VALUE) ||
            chk_int(m, "", "tax_total_before", pr->tax_total_before, 0,
                    PO_PRICING_MAX_VALUE) ||
            chk_int(m, "", "grand_total", pr->grand_total, 0, MAX_TOTAL) ||
            chk_count(m, "", "lines", pr->line_count, 1, PO_PRICING_MAX_LINES))
                return -1;
        if (!pr->lines)
                return bad(m, "lines: NULL");
        for (i = 0; i < pr->line_count; i++) {
                const po_priced_line_t *l = &pr->lines[i];

                path(p, sizeof(p), "", "lines", i, ".");
                if (chk_str(m, p, "line_id", l->line_id, 1) ||
                    chk_int(m, p, "subtotal", l->subtotal, 0, PO_PRICING_MAX_SUBTOTAL) ||
                    chk_int(m, p, "discount", l->discount, 0, PO_PRICING_MAX_SUBTOTAL) ||
                    chk_int(m, p, "net", l->net, 0, PO_PRICING_MAX_SUBTOTAL) ||
                    chk_int(m, p, "tax", l->tax, 0, PO_PRICING_MAX_VALUE) ||
                    chk_int(m, p, "total", l->total, 0, MAX_TOTAL) ||
                    chk_bool(m, p, "available", l->available))
                        return -1;
        }
        if (pr->receipt_count > PO_PRICING_MAX_CODES ||
            pr->rejected_count > PO_PRICING_MAX_CODES - pr->receipt_count)
                return bad(m, "receipt, rejected: %zu + %zu codes, at most 20 in all",
                           pr->receipt_count, pr->rejected_count);
        if ((pr->receipt_count && !pr->receipt) || (pr->rejected_count && !pr->rejected))
                return bad(m, "receipt, rejected: NULL");
        for (i = 0; i < pr->receipt_count; i++) {
                const po_priced_receipt_t *r = &pr->receipt[i];

                path(p, sizeof(p), "", "receipt", i, ".");
                if (chk_str(m, p, "code", r->code, 1) ||
                    chk_str(m, p, "description", r->description, 1) ||
                    chk_int(m, p, "amount", r->amount, 0, PO_PRICING_MAX_SUBTOTAL) ||
                    chk_count(m, p, "allocations", r->allocation_count, 0,
                              pr->line_count))
                        return -1;
                if (!po_code_is_valid(r->code, strlen(r->code)))
                        return bad(m, "%scode: must be 3..64 characters of A-Z 0-9 - _",
                                   p);
                if (r->allocation_count && !r->allocations)
                        return bad(m, "%sallocations: NULL", p);
                for (j = 0; j < r->allocation_count; j++) {
                        path(ap, sizeof(ap), p, "allocations", j, ".");
                        if (chk_str(m, ap, "line_id", r->allocations[j].line_id, 1) ||
                            chk_int(m, ap, "amount", r->allocations[j].amount, 0,
                                    PO_PRICING_MAX_SUBTOTAL))
                                return -1;
                }
        }
        for (i = 0; i < pr->rejected_count; i++) {
                path(p, sizeof(p), "", "rejected", i, ".");
                if (chk_str(m, p, "code", pr->rejected[i].code, 1) ||
                    chk_reason(m, p, "reason", pr->rejected[i].reason))
                        return -1;
        }
        return chk_time(m, "", "priced_at", pr->priced_at);
}

static int fill_priced(msg_t *m, scratch_t *sc, avro_value_t *v, const void *what)
{
        const po_priced_t *pr = what;
        avro_value_t f, e, a, ae, b;
        size_t i, j;

        (void)sc;
        if (put_str(m, v, "channel", pr->channel) ||
            put_str(m, v, "account", pr->account) ||
            put_str(m, v, "external_id", pr->external_id) ||
            put_str(m, v, "order_id", pr->order_id) ||
            put_str(m, v, "currency", pr->currency) ||
            put_long(m, v, "subtotal", pr->subtotal) ||
            put_long(m, v, "discount_total", pr->discount_total) ||
            put_long(m, v, "tax_total", pr->tax_total) ||
            put_long(m, v, "tax_total_before", pr->tax_total_before) ||
            put_long(m, v, "grand_total", pr->grand_total) || field(m, v, "lines", &f))
                return -1;
        for (i = 0; i < pr->line_count; i++) {
                const po_priced_line_t *l = &pr->lines[i];

                if (avro_value_append(&f, &e, NULL))
                        return avro_fail(m, "lines");
                if (put_str(m, &e, "line_id", l->line_id) ||
                    put_long(m, &e, "subtotal", l->subtotal) ||
                    put_long(m, &e, "discount", l->discount) ||
                    put_long(m, &e, "net", l->net) || put_long(m, &e, "tax", l->tax) ||
                    put_long(m, &e, "total", l->total) || field(m, &e, "available", &b))
                        return -1;
                if (avro_value_set_boolean(&b, l->available))
                        return avro_fail(m, "available");
        }
        if (field(m, v, "receipt", &f))
                return -1;
        for (i = 0; i < pr->receipt_count; i++) {
                const po_priced_receipt_t *r = &pr->receipt[i];

                if (avro_value_append(&f, &e, NULL))
                        return avro_fail(m, "receipt");
                if (put_str(m, &e, "code", r->code) ||
                    put_str(m, &e, "description", r->description) ||
                    put_long(m, &e, "amount", r->amount) ||
                    field(m, &e, "allocations", &a))
                        return -1;
                for (j = 0; j < r->allocation_count; j++) {
                        if (avro_value_append(&a, &ae, NULL))
                                return avro_fail(m, "allocations");
                        if (put_str(m, &ae, "line_id", r->allocations[j].line_id) ||
                            put_long(m, &ae, "amount", r->allocations[j].amount))
                                return -1;
                }
        }
        if (field(m, v, "rejected", &f))
                return -1;
        for (i = 0; i < pr->rejected_count; i++) {
                if (avro_value_append(&f, &e, NULL))
                        return avro_fail(m, "rejected");
                if (put_str(m, &e, "code", pr->rejected[i].code) ||
                    put_str(m, &e, "reason", pr->rejected[i].reason))
                        return -1;
        }
        return put_long(m, v, "priced_at", pr->priced_at);
}

po_err_t po_priced_encode(po_avro_t *avro, const po_priced_t *p, po_dynbuf_t *out,
                          char *errstr, size_t errstr_size)
{
        return encode(avro, "PricedOrder", chk_priced, fill_priced, wire_priced,
                      PRICED_LAYOUT, p, out, errstr, errstr_size);
}

/* A 3-letter currency string field into cur. */
static int get_currency(msg_t *m, avro_value_t *rec, const char *name, char cur[4])
{
        const char *s;

        if (get_str(m, rec, name, &s))
                return -1;
        if (strlen(s) != 3)
                return bad(m, "%s: must be 3 upper-case letters", name);
        memcpy(cur, s, 4);
        return 0;
}

static int read_priced(msg_t *m, avro_value_t *v, void *what)
{
        po_priced_t *pr = what;
        avro_value_t f, e, a, ae;
        size_t n, na, i, j;

        if (get_str(m, v, "channel", &pr->channel) ||
            get_str(m, v, "account", &pr->account) ||
            get_str(m, v, "external_id", &pr->external_id) ||
            get_str(m, v, "order_id", &pr->order_id) ||
            get_currency(m, v, "currency", pr->currency) ||
            get_long(m, v, "subtotal", NULL, &pr->subtotal) ||
            get_long(m, v, "discount_total", NULL, &pr->discount_total) ||
            get_long(m, v, "tax_total", NULL, &pr->tax_total) ||
            get_long(m, v, "tax_total_before", NULL, &pr->tax_total_before) ||
            get_long(m, v, "grand_total", NULL, &pr->grand_total) ||
            field(m, v, "lines", &f) ||
            get_count(m, &f, "", "lines", PO_PRICING_MAX_LINES, &n))
                return -1;
        pr->lines = arena_items(m, n, sizeof(*pr->lines), "lines");
        if (!pr->lines)
                return -1;
        for (i = 0; i < n; i++) {
                po_priced_line_t *l = &pr->lines[i];

                if (avro_value_get_by_index(&f, i, &e, NULL))
                        return avro_fail(m, "lines");
                if (get_str(m, &e, "line_id", &l->line_id) ||
                    get_long(m, &e, "subtotal", NULL, &l->subtotal) ||
                    get_long(m, &e, "discount", NULL, &l->discount) ||
                    get_long(m, &e, "net", NULL, &l->net) ||
                    get_long(m, &e, "tax", NULL, &l->tax) ||
                    get_long(m, &e, "total", NULL, &l->total) ||
                    get_bool(m, &e, "available", &l->available))
                        return -1;
        }
        pr->line_count = n;
        if (field(m, v, "receipt", &f) ||
            get_count(m, &f, "", "receipt", PO_PRICING_MAX_CODES, &n))
                return -1;
        pr->receipt = arena_items(m, n, sizeof(*pr->receipt), "receipt");
        if (!pr->receipt)
                return -1;
        for (i = 0; i < n; i++) {
                po_priced_receipt_t *r = &pr->receipt[i];
                char p[64];

                path(p, sizeof(p), "", "receipt", i, ".");
                if (avro_value_get_by_index(&f, i, &e, NULL))
                        return avro_fail(m, "receipt");
                if (get_str(m, &e, "code", &r->code) ||
                    get_str(m, &e, "description", &r->description) ||
                    get_long(m, &e, "amount", NULL, &r->amount) ||
                    field(m, &e, "allocations", &a) ||
                    get_count(m, &a, p, "allocations", pr->line_count, &na))
                        return -1;
                r->allocations =
                    arena_items(m, na, sizeof(*r->allocations), "allocations");
                if (!r->allocations)
                        return -1;
                for (j = 0; j < na; j++) {
                        if (avro_value_get_by_index(&a, j, &ae, NULL))
                                return avro_fail(m, "allocations");
                        if (get_str(m, &ae, "line_id", &r->allocations[j].line_id) ||
                            get_long(m, &ae, "amount", NULL, &r->allocations[j].amount))
                                return -1;
                }
                r->allocation_count = na;
        }
        pr->receipt_count = n;
        if (field(m, v, "rejected", &f) ||
            get_count(m, &f, "", "rejected", PO_PRICING_MAX_CODES, &n))
                return -1;
        pr->rejected = arena_items(m, n, sizeof(*pr->rejected), "rejected");
        if (!pr->rejected)
                return -1;
        for (i = 0; i < n; i++) {
                if (avro_value_get_by_index(&f, i, &e, NULL))
                        return avro_fail(m, "rejected");
                if (get_str(m, &e, "code", &pr->rejected[i].code) ||
                    get_str(m, &e, "reason", &pr->rejected[i].reason))
                        return -1;
        }
        pr->rejected_count = n;
        if (get_long(m, v, "priced_at", NULL, &pr->priced_at))
                return -1;
        return chk_priced(m, pr);
}

po_err_t po_priced_decode(po_avro_t *avro, const void *buf, size_t len, po_arena_t *arena,
                          po_priced_t *out, char *errstr, size_t errstr_size)
{
        return decode_into(avro, "PricedOrder", buf, len, read_priced, arena, out,
                           sizeof(*out), errstr, errstr_size);
}

/* ---- UsageEvent ---- */

static int chk_usage(msg_t *m, const void *what)
{
        const po_usage_event_t *e = what;

        if (chk_str(m, "", "event_id", e->event_id, 1) ||
            chk_str(m, "", "order_id", e->order_id, 1) ||
            chk_str(m, "", "channel", e->channel, 1) ||
            chk_str(m, "", "account", e->account, 1) ||
            chk_str(m, "", "code", e->code, 1) ||
            chk_str(m, "", "customer_id", e->customer_id, 0) ||
            chk_bool(m, "", "outcome", e->applied) ||
            chk_int(m, "", "value_applied", e->value_applied, 0,
                    PO_PRICING_MAX_SUBTOTAL) ||
            chk_currency(m, "", "currency", e->currency, 1) ||
            chk_time(m, "", "occurred_at", e->occurred_at))
                return -1;
        if (e->applied && e->reason)
                return bad(m, "reason: set on an applied code");
        if (!e->applied && chk_reason(m, "", "reason", e->reason))
                return -1;
        if (!e->applied && e->value_applied)
                return bad(m, "value_applied: %lld on a rejected code",
                           (long long)e->value_applied);
        return 0;
}

static int fill_usage(msg_t *m, scratch_t *sc, avro_value_t *v, const void *what)
{
        const po_usage_event_t *e = what;

        (void)sc;
        return put_str(m, v, "event_id", e->event_id) ||
               put_str(m, v, "order_id", e->order_id) ||
               put_str(m, v, "channel", e->channel) ||
               put_str(m, v, "account", e->account) || put_str(m, v, "code", e->code) ||
               put_opt_str(m, v, "customer_id", e->customer_id) ||
               put_enum(m, v, "outcome", e->applied ? 0 : 1) ||
               put_opt_str(m, v, "reason", e->reason) ||
               put_long(m, v, "value_applied", e->value_applied) ||
               put_str(m, v, "currency", e->currency) ||
               put_long(m, v, "occurred_at", e->occurred_at);
}

po_err_t po_usage_encode(po_avro_t *avro, const po_usage_event_t *e, po_dynbuf_t *out,
                         char *errstr, size_t errstr_size)
{
        return encode(avro, "UsageEvent", chk_usage, fill_usage, wire_usage, USAGE_LAYOUT,
                      e, out, errstr, errstr_size);
}

static int read_usage(msg_t *m, avro_value_t *v, void *what)
{
        po_usage_event_t *e = what;
        int outcome;

        if (get_str(m, v, "event_id", &e->event_id) ||
            get_str(m, v, "order_id", &e->order_id) ||
            get_str(m, v, "channel", &e->channel) ||
            get_str(m, v, "account", &e->account) || get_str(m, v, "code", &e->code) ||
            get_str(m, v, "customer_id", &e->customer_id) ||
            get_enum(m, v, "outcome", &outcome) || get_str(m, v, "reason", &e->reason) ||
            get_long(m, v, "value_applied", NULL, &e->value_applied) ||
            get_currency(m, v, "currency", e->currency) ||
            get_long(m, v, "occurred_at", NULL, &e->occurred_at))
                return -1;
        e->applied = outcome == 0;
        return chk_usage(m, e);
}

po_err_t po_usage_decode(po_avro_t *avro, const void *buf, size_t len, po_arena_t *arena,
                         po_usage_event_t *out, char *errstr, size_t errstr_size)
{
        return decode_into(avro, "UsageEvent", buf, len, read_usage, arena, out,
                           sizeof(*out), errstr, errstr_size);
}
