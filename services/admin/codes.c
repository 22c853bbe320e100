/* Codes: create, read, list, update (optimistic version), pause, resume,
 * archive. A change is written to PostgreSQL (codes + admin_changes, one
 * transaction), published to promo.codes (Avro CodeDefinition, key = code;
 * the delivery is confirmed before the transaction commits), then put into
 * Redis (po_refdata_put) so validators see it at once. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin.h"
#include "po/log.h"
#include "po/messages.h"

#define PUBLISH_TIMEOUT_MS 10000
#define MAX_LIST 10000
#define MAX_STR 128

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
#define CODE_COLS                                                                        \
        "code, definition::text, version, description, timezone, " TS(                   \
            "created_at") ", " TS("updated_at") ", created_by, updated_by"

/* ---- input ---- */

static json_t *member(json_t *o, const char *k)
{
        json_t *v = json_object_get(o, k);

        return json_is_null(v) ? NULL : v;
}

static void want_int(admin_fields_t *f, json_t *in, json_t *out, const char *k,
                     const char *path, int64_t lo, int64_t hi, const char *why)
{
        json_t *v = member(in, k);
        char name[96];

        if (!v)
                return;
        snprintf(name, sizeof(name), "%s%s", path, k);
        if (!json_is_integer(v) || json_integer_value(v) < lo ||
            json_integer_value(v) > hi) {
                if (why && json_is_integer(v) && json_integer_value(v) > hi)
                        admin_field(f, name, "%s", why);
                else
                        admin_field(f, name, "must be an integer %lld..%lld",
                                    (long long)lo, (long long)hi);
                return;
        }
        json_object_set(out, k, v);
}

static int good_str(json_t *v, size_t max)
{
        return json_is_string(v) && json_string_length(v) >= 1 &&
               json_string_length(v) <= max &&
               strlen(json_string_value(v)) == json_string_length(v);
}

static void want_list(admin_fields_t *f, json_t *in, json_t *out, const char *k,
                      const char *path)
{
        json_t *v = member(in, k), *e;
        char name[96];
        size_t i, j;

        if (!v)
                return;
        snprintf(name, sizeof(name), "%s%s", path, k);
        if (!json_is_array(v) || json_array_size(v) > MAX_LIST) {
                admin_field(f, name, "must be an array of at most %d strings", MAX_LIST);
                return;
        }
        json_array_foreach(v, i, e)
        {
                if (!good_str(e, MAX_STR)) {
                        admin_field(f, name,
                                    "entry %zu must be a string of 1..%d characters", i,
                                    MAX_STR);
                        return;
                }
                for (j = 0; j < i; j++)
                        if (json_equal(json_array_get(v, j), e)) {
                                admin_field(f, name, "\"%s\" is listed twice",
                                            json_string_value(e));
                                return;
                        }
        }
        json_object_set(out, k, v);
}

/* "YYYY-MM-DDTHH:MM" or with ":SS". */
static int local_time_ok(const char *s)
{
        static const char pat[] = "dddd-dd-ddTdd:dd:dd";
        size_t n = strlen(s), i;

        if (n != 16 && n != 19)
                return 0;
        for (i = 0; i < n; i++)
                if (pat[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != pat[i])
                        return 0;
        return 1;
}

/* An IANA zone name of the system's tz database (PostgreSQL uses the same). */
static int zone_ok(const char *name)
{
        const char *dir = getenv("TZDIR");
        char path[512], head[4];
        const char *p;
        struct stat st;
        FILE *fp;
        int ok;

        if (!*name || strlen(name) > 64 || name[0] == '/' || strstr(name, ".."))
                return 0;
        for (p = name; *p; p++)
                if (!isalnum((unsigned char)*p) && !strchr("/_+-", *p))
                        return 0;
        snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo",
                 name);
        if (stat(path, &st) || !S_ISREG(st.st_mode))
                return 0;
        fp = fopen(path, "rb");
        if (!fp)
                return 0;
        ok = fread(head, 1, 4, fp) == 4 && memcmp(head, "TZif", 4) == 0;
        fclose(fp);
        return ok;
}

/* The UTC instant of a wall-clock time in zone, by PostgreSQL's tz database:
 * every offset in effect around it is tried, and the earliest candidate
 * whose local time is the one given wins (an ambiguous time takes the
 * earlier instant); none = a DST gap. Returns 0 with out set, 1 for a gap,
 * -1 when PostgreSQL failed (r has the 503). */
static int local_to_utc(admin_req_t *r, const char *local, const char *zone, char *out,
                        size_t size)
{
        const char *p[2] = {local, zone};
        PGresult *res =
            admin_pg(r,
                     "WITH u AS (SELECT $1::timestamp AS t, $2::text AS z,"
                     " $1::timestamp AT TIME ZONE $2::text AS u0),"
                     " o AS (SELECT DISTINCT t, z, (x AT TIME ZONE z) - (x AT TIME ZONE "
                     "'UTC') AS off"
                     " FROM u, LATERAL (VALUES (u0 - interval '1 day'), (u0),"
                     " (u0 + interval '1 day')) v(x)),"
                     " c AS (SELECT (t - off) AT TIME ZONE 'UTC' AS cand, t, z FROM o)"
                     " SELECT " TS("min(cand)") " FROM c WHERE cand AT TIME ZONE z = t",
                     2, p, NULL);

        if (!res)
                return -1;
        if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
                PQclear(res);
                return 1;
        }
        snprintf(out, size, "%s", PQgetvalue(res, 0, 0));
        PQclear(res);
        return 0;
}

/* starts_at / expires_at, as a UTC instant or a local time in zone. */
static void want_window_end(admin_req_t *r, admin_fields_t *f, json_t *in, json_t *out,
                            const char *k, const char *zone, po_instant_t *at, int *has)
{
        char lk[32], utc[40];
        json_t *v = member(in, k), *lv;
        po_instant_t t;

        snprintf(lk, sizeof(lk), "%s_local", k);
        lv = member(in, lk);
        *has = 0;
        if (v && lv) {
                admin_field(f, lk, "give either %s (UTC) or %s with timezone, not both",
                            k, lk);
                return;
        }
        if (v) {
                if (!json_is_string(v) ||
                    po_instant_parse(json_string_value(v), json_string_length(v), &t)) {
                        admin_field(f, k,
                                    "must be an RFC 3339 timestamp such as "
                                    "2026-12-01T08:00:00Z");
                        return;
                }
                admin_fmt_time((int64_t)t.sec * 1000000 + t.nsec / 1000, utc,
                               sizeof(utc));
        } else if (lv) {
                int rc;

                if (!json_is_string(lv) || !local_time_ok(json_string_value(lv))) {
                        admin_field(f, lk, "must be a local time YYYY-MM-DDTHH:MM[:SS]");
                        return;
                }
                if (!zone) {
                        admin_field(f, "timezone", "required with %s", lk);
                        return;
                }
                rc = local_to_utc(r, json_string_value(lv), zone, utc, sizeof(utc));
                if (rc < 0) {
                        admin_field(f, lk, "could not be converted (PostgreSQL failed)");
                        return;
                }
                if (rc > 0) {
                        admin_field(
                            f, lk,
                            "%s does not exist in %s (skipped by a daylight-saving "
                            "change)",
                            json_string_value(lv), zone);
                        return;
                }
        } else {
                return;
        }
        if (po_instant_parse(utc, strlen(utc), at)) {
                admin_field(f, k, "out of range");
                return;
        }
        *has = 1;
        json_object_set_new(out, k, json_string(utc));
}

static void want_targets(admin_fields_t *f, json_t *in, json_t *out)
{
        static const char *const known[] = {"skus",          "categories",
                                            "exclude_skus",  "exclude_categories",
                                            "low_stock_max", "max_margin_bp"};
        json_t *t = member(in, "targets"), *o, *v;
        const char *k;
        size_t i;

        if (!t)
                return;
        if (!json_is_object(t)) {
                admin_field(f, "targets", "must be an object");
                return;
        }
        json_object_foreach(t, k, v)
        {
                for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
                        if (strcmp(k, known[i]) == 0)
                                break;
                if (i == sizeof(known) / sizeof(known[0]))
                        admin_field(f, "targets", "unknown field \"%.64s\"", k);
        }
        o = json_object();
        want_list(f, t, o, "skus", "targets.");
        want_list(f, t, o, "categories", "targets.");
        want_list(f, t, o, "exclude_skus", "targets.");
        want_list(f, t, o, "exclude_categories", "targets.");
        want_int(f, t, o, "low_stock_max", "targets.", 0, PO_PRICING_MAX_VALUE, NULL);
        want_int(f, t, o, "max_margin_bp", "targets.", 0, PO_PRICING_MAX_BP,
                 "must be <= 10000 (basis points of margin)");
        if (json_object_size(o))
                json_object_set(out, "targets", o);
        json_decref(o);
}

int admin_code_input(admin_req_t *r, json_t *in, int is_put, int is_template,
                     admin_fields_t *f, json_t **spec, const char **description,
                     const char **timezone, int64_t *version)
{
        static const char *const known[] = {"code",
                                            "status",
                                            "type",
                                            "value",
                                            "currency",
                                            "min_spend",
                                            "max_spend",
                                            "max_discount",
                                            "starts_at",
                                            "expires_at",
                                            "usage_limit",
                                            "per_customer_limit",
                                            "tiers",
                                            "tier_values",
                                            "channels",
                                            "customer_id",
                                            "targets",
                                            "combinable",
                                            "priority",
                                            "description",
                                            "timezone",
                                            "starts_at_local",
                                            "expires_at_local",
                                            "version"};
        json_t *out = json_object(), *v;
        const char *k, *zone = NULL;
        int64_t max = PO_PRICING_MAX_VALUE;
        int pct = 0, has_start = 0, has_end = 0;
        po_instant_t start, end;
        size_t i, before = admin_fields_count(f);

        *spec = NULL;
        *description = *timezone = NULL;
        json_object_foreach(in, k, v)
        {
                for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
                        if (strcmp(k, known[i]) == 0)
                                break;
                if (i == sizeof(known) / sizeof(known[0]) ||
                    (is_template && strcmp(k, "code") == 0) ||
                    (!is_put && strcmp(k, "version") == 0))
                        admin_field(f, k, "unknown field");
        }
        if (!is_template) {
                char norm[PO_PRICING_CODE_MAX + 2];
                size_t n;

                v = member(in, "code");
                if (!v && is_put) {
                        v = json_string(r->params[0]);
                        json_object_set_new(in, "code", v);
                }
                if (!json_is_string(v)) {
                        admin_field(f, "code",
                                    "required: 3..64 characters of A-Z 0-9 - _");
                } else {
                        n = po_code_normalize(json_string_value(v), json_string_length(v),
                                              norm, sizeof(norm));
                        if (n > PO_PRICING_CODE_MAX || !po_code_is_valid(norm, n) ||
                            strlen(json_string_value(v)) != json_string_length(v))
                                admin_field(
                                    f, "code",
                                    "must be 3..64 characters of A-Z 0-9 - _ (after "
                                    "trimming and upper-casing)");
                        else
                                json_object_set_new(out, "code", json_string(norm));
                }
        }
        v = member(in, "status");
        if (v && (!json_is_string(v) || (strcmp(json_string_value(v), "active") != 0 &&
                                         strcmp(json_string_value(v), "paused") != 0 &&
                                         strcmp(json_string_value(v), "archived") != 0)))
                admin_field(f, "status", "must be active, paused or archived");
        else
                json_object_set_new(out, "status",
                                    json_string(v ? json_string_value(v) : "active"));
        v = member(in, "type");
        if (!json_is_string(v) || (strcmp(json_string_value(v), "percentage") != 0 &&
                                   strcmp(json_string_value(v), "fixed") != 0)) {
                admin_field(f, "type", "required: percentage or fixed");
        } else {
                pct = strcmp(json_string_value(v), "percentage") == 0;
                max = pct ? PO_PRICING_MAX_BP : PO_PRICING_MAX_VALUE;
                json_object_set(out, "type", v);
        }
        if (!member(in, "value"))
                admin_field(f, "value",
                            "required: an integer (basis points for a "
                            "percentage, minor units for fixed)");
        want_int(f, in, out, "value", "", 0, max,
                 pct ? "must be <= 10000 for a percentage (basis points)" : NULL);
        v = member(in, "currency");
        if (v) {
                const char *c = json_is_string(v) ? json_string_value(v) : "";

                if (json_string_length(v) != 3 || !isupper((unsigned char)c[0]) ||
                    !isupper((unsigned char)c[1]) || !isupper((unsigned char)c[2]))
                        admin_field(f, "currency",
                                    "must be an ISO 4217 code such as EUR");
                else
                        json_object_set(out, "currency", v);
        }
        want_int(f, in, out, "min_spend", "", 0, PO_PRICING_MAX_VALUE, NULL);
        want_int(f, in, out, "max_spend", "", 0, PO_PRICING_MAX_VALUE, NULL);
        want_int(f, in, out, "max_discount", "", 0, PO_PRICING_MAX_VALUE, NULL);
        if (!v &&
            (!pct || member(in, "min_spend") || member(in, "max_spend") ||
             member(in, "max_discount")) &&
            member(in, "type"))
                admin_field(f, "currency",
                            "required for fixed codes and with min_spend, max_spend or "
                            "max_discount");
        if (json_is_integer(json_object_get(out, "min_spend")) &&
            json_is_integer(json_object_get(out, "max_spend")) &&
            json_integer_value(json_object_get(out, "min_spend")) >
                json_integer_value(json_object_get(out, "max_spend")))
                admin_field(f, "max_spend", "must be >= min_spend");
        v = member(in, "timezone");
        if (v) {
                if (!json_is_string(v) || !zone_ok(json_string_value(v)))
                        admin_field(
                            f, "timezone",
                            "must be an IANA time zone name such as Europe/Paris");
                else
                        zone = *timezone = json_string_value(v);
        }
        if (!member(in, "timezone") || zone) {
                want_window_end(r, f, in, out, "starts_at", zone, &start, &has_start);
                want_window_end(r, f, in, out, "expires_at", zone, &end, &has_end);
        }
        if (has_start && has_end && po_instant_cmp(start, end) >= 0)
                admin_field(f,
                            member(in, "expires_at") ? "expires_at" : "expires_at_local",
                            "must be after the start");
        want_int(f, in, out, "usage_limit", "", 0, PO_PRICING_MAX_VALUE, NULL);
        want_int(f, in, out, "per_customer_limit", "", 0, PO_PRICING_MAX_VALUE, NULL);
        want_list(f, in, out, "tiers", "");
        v = member(in, "tier_values");
        if (v) {
                json_t *e;
                const char *tk;

                if (!json_is_object(v) || json_object_size(v) > 100) {
                        admin_field(f, "tier_values",
                                    "must be an object of tier to integer");
                } else {
                        int bad = 0;

                        json_object_foreach(v, tk, e)
                        {
                                char name[96];

                                snprintf(name, sizeof(name), "tier_values.%.64s", tk);
                                if (!*tk || strlen(tk) > MAX_STR) {
                                        admin_field(f, "tier_values",
                                                    "tiers must be 1..%d characters",
                                                    MAX_STR);
                                        bad = 1;
                                } else if (!json_is_integer(e) ||
                                           json_integer_value(e) < 0 ||
                                           json_integer_value(e) > max) {
                                        admin_field(
                                            f, name,
                                            pct ? "must be an integer 0..10000 for a "
                                                  "percentage"
                                                : "must be an integer 0..%lld",
                                            (long long)max);
                                        bad = 1;
                                }
                        }
                        if (!bad && json_object_size(v))
                                json_object_set(out, "tier_values", v);
                }
        }
        want_list(f, in, out, "channels", "");
        v = member(in, "customer_id");
        if (v && !good_str(v, MAX_STR))
                admin_field(f, "customer_id", "must be a string of 1..%d characters",
                            MAX_STR);
        else if (v)
                json_object_set(out, "customer_id", v);
        want_targets(f, in, out);
        v = member(in, "combinable");
        if (v && !json_is_boolean(v))
                admin_field(f, "combinable", "must be true or false");
        json_object_set_new(out, "combinable", json_boolean(v && json_is_true(v)));
        if (member(in, "priority"))
                want_int(f, in, out, "priority", "", 0, PO_PRICING_MAX_VALUE, NULL);
        else
                json_object_set_new(out, "priority", json_integer(0));
        v = member(in, "description");
        if (v && (!json_is_string(v) || json_string_length(v) > 1000 ||
                  strlen(json_string_value(v)) != json_string_length(v)))
                admin_field(f, "description",
                            "must be a string of at most 1000 characters");
        else if (v)
                *description = json_string_value(v);
        if (is_put) {
                v = member(in, "version");
                if (!json_is_integer(v) || json_integer_value(v) < 1)
                        admin_field(f, "version",
                                    "required: the version you read (an integer >= 1)");
                else if (version)
                        *version = json_integer_value(v);
        }
        if (admin_fields_count(f) > before) {
                json_decref(out);
                return -1;
        }
        *spec = out;
        return 0;
}

/* ---- output ---- */

/* The Code object of row i of a CODE_COLS result. */
static json_t *code_json(PGresult *res, int i)
{
        json_t *o = json_loads(PQgetvalue(res, i, 1), 0, NULL);

        if (!o)
                return NULL;
        json_object_set_new(o, "version", json_integer(atoll(PQgetvalue(res, i, 2))));
        json_object_set_new(o, "description", json_string(PQgetvalue(res, i, 3)));
        json_object_set_new(o, "timezone",
                            PQgetisnull(res, i, 4) ? json_null()
                                                   : json_string(PQgetvalue(res, i, 4)));
        json_object_set_new(o, "created_at", json_string(PQgetvalue(res, i, 5)));
        json_object_set_new(o, "updated_at", json_string(PQgetvalue(res, i, 6)));
        json_object_set_new(o, "created_by",
                            PQgetisnull(res, i, 7) ? json_null()
                                                   : json_string(PQgetvalue(res, i, 7)));
        json_object_set_new(o, "updated_by",
                            PQgetisnull(res, i, 8) ? json_null()
                                                   : json_string(PQgetvalue(res, i, 8)));
        return o;
}

/* The audit image of a code: its definition with description and timezone. */
static char *audit_image(PGresult *res, int i)
{
        json_t *o = code_json(res, i);
        char *s;

        if (!o)
                return NULL;
        json_object_del(o, "created_at");
        json_object_del(o, "created_by");
        s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(o);
        return s;
}

/* ---- writing ---- */

/* Parses spec (with version, updated_at) into cd and its stored JSON. */
static int build_def(json_t *spec, int64_t version, po_arena_t *arena, po_codedef_t *cd,
                     po_dynbuf_t *js, char *errstr, size_t size)
{
        char *text;
        int rc;

        json_object_set_new(spec, "version", json_integer(version));
        json_object_set_new(spec, "updated_at", json_integer(admin_now_us()));
        text = json_dumps(spec, JSON_COMPACT);
        if (!text) {
                snprintf(errstr, size, "out of memory");
                return -1;
        }
        rc = po_codedef_from_json(text, strlen(text), arena, cd, errstr, size) ||
             po_codedef_to_json(cd, js);
        free(text);
        return rc ? -1 : 0;
}

/* Publishes cd (or a tombstone for code when cd is NULL) and waits. */
static int publish(admin_req_t *r, const po_codedef_t *cd, const char *code)
{
        admin_wait_t w;
        po_dynbuf_t av;
        char errstr[300];
        int rc = -1;

        admin_wait_init(&w);
        po_dynbuf_init(&av, 1u << 20);
        if (cd && po_codedef_encode(r->w->avro, cd, &av, errstr, sizeof(errstr))) {
                admin_error(r, 500, "internal", "cannot encode %s: %s", code, errstr);
                goto out;
        }
        if (admin_produce(r->app, r->app->set.codes_topic, code, strlen(code),
                          cd ? av.data : NULL, cd ? av.len : 0, &w) ||
            admin_wait_done(&w, PUBLISH_TIMEOUT_MS)) {
                admin_error(r, 503, "unavailable", "kafka: %s: %s",
                            r->app->set.codes_topic, w.error);
                goto out;
        }
        rc = 0;
out:
        po_dynbuf_release(&av);
        admin_wait_release(&w);
        return rc;
}

/* After a publish whose transaction did not commit: put the previous state
 * back on the topic, with a newer version so caches take it. */
static void unpublish(admin_req_t *r, const char *code, const char *before_def,
                      int64_t version)
{
        po_arena_t arena;
        po_codedef_t cd;
        char errstr[300];

        po_arena_init(&arena, 1u << 20);
        if (!before_def) {
                publish(r, NULL, code);
        } else if (po_codedef_from_json(before_def, strlen(before_def), &arena, &cd,
                                        errstr, sizeof(errstr)) == PO_OK) {
                cd.version = version + 1;
                publish(r, &cd, code);
        }
        po_log_warn("%s: the change was published but not committed: republished the "
                    "previous state",
                    code);
        po_arena_release(&arena);
}

static void cache_put(admin_req_t *r, const char *code, int64_t version, const char *def,
                      size_t len)
{
        char key[128], errstr[300];

        snprintf(key, sizeof(key), "promo:code:%s", code);
        if (admin_worker_redis(r) == 0 &&
            po_refdata_put(r->w->rc, key, version, def, len, 0, errstr, sizeof(errstr)) ==
                PO_OK)
                return;
        /* Validators still get it from promo.codes. */
        po_log_warn("%s: redis: %s", code, r->w->rc ? errstr : "unreachable");
        r->status = 0; /* admin_worker_redis may have set a 503: the change stands */
}

/* Writes spec as code's new state inside the open transaction: the row,
 * the audit record, the publish, the commit, the cache. before is the
 * previous CODE_COLS row (NULL for a create). Sets the response. */
static void code_write(admin_req_t *r, json_t *spec, const char *description,
                       const char *timezone, PGresult *before, const char *action)
{
        int64_t version = admin_now_us();
        const char *code = json_string_value(json_object_get(spec, "code"));
        char vtxt[24], errstr[300], *img_before = NULL, *img_after = NULL;
        const char *before_def = before ? PQgetvalue(before, 0, 1) : NULL;
        const char *p[7];
        po_arena_t arena;
        po_codedef_t cd;
        po_dynbuf_t js;
        PGresult *res = NULL;
        json_t *out;
        int status = before ? 200 : 201;

        po_arena_init(&arena, 4u << 20);
        po_dynbuf_init(&js, 4u << 20);
        if (before && atoll(PQgetvalue(before, 0, 2)) >= version)
                version = atoll(PQgetvalue(before, 0, 2)) + 1;
        if (build_def(spec, version, &arena, &cd, &js, errstr, sizeof(errstr))) {
                admin_error(r, 422, "validation", "%s", errstr);
                goto fail;
        }
        snprintf(vtxt, sizeof(vtxt), "%lld", (long long)version);
        p[0] = code;
        p[1] = js.data;
        p[2] = json_string_value(json_object_get(spec, "status"));
        p[3] = vtxt;
        p[4] = description ? description : (before ? PQgetvalue(before, 0, 3) : "");
        p[5] = timezone;
        p[6] = r->who.name;
        if (!before)
                res = admin_pg(r,
                               "INSERT INTO codes (code, definition, status, version,"
                               " description, timezone, created_by, updated_by)"
                               " VALUES ($1, $2::jsonb, $3, $4, $5, $6, $7, $7)"
                               " RETURNING " CODE_COLS,
                               7, p, "the code exists");
        else
                res = admin_pg(r,
                               "UPDATE codes SET definition = $2::jsonb, status = $3,"
                               " version = $4, description = $5, timezone = $6,"
                               " updated_by = $7, updated_at = now() WHERE code = $1"
                               " RETURNING " CODE_COLS,
                               7, p, NULL);
        if (!res)
                goto fail;
        img_after = audit_image(res, 0);
        img_before = before ? audit_image(before, 0) : NULL;
        if (!img_after || admin_audit(r, action, "code", code, img_before, img_after))
                goto fail;
        if (publish(r, &cd, code))
                goto fail;
        if (admin_pg_commit(r)) {
                unpublish(r, code, before_def, version);
                goto fail_done;
        }
        cache_put(r, code, version, js.data, js.len);
        po_log_info("code %s %s by %s (version %lld)", code, action, r->who.name,
                    (long long)version);
        admin_count(
            r->app, "promo_admin_code_changes_total", "Code changes by action.",
            strcmp(action, "create") == 0 ? "action=\"create\"" : "action=\"change\"", 1);
        out = code_json(res, 0);
        admin_reply_json(r, status, out);
        goto done;
fail:
        admin_pg_rollback(r);
fail_done:
        if (r->status < 400)
                admin_error(r, 503, "unavailable", "the change could not be stored");
done:
        PQclear(res);
        free(img_before);
        free(img_after);
        po_dynbuf_release(&js);
        po_arena_release(&arena);
}

/* The current row of code, locked (FOR UPDATE) inside the open transaction;
 * NULL with 404 or 503 set. */
static PGresult *lock_code(admin_req_t *r, const char *code)
{
        const char *p[1] = {code};
        PGresult *res = admin_pg(
            r, "SELECT " CODE_COLS " FROM codes WHERE code = $1 FOR UPDATE", 1, p, NULL);

        if (res && PQntuples(res) != 1) {
                PQclear(res);
                admin_error(r, 404, "not_found", "no code %s", code);
                return NULL;
        }
        return res;
}

/* The path's code, normalized; 404 when it cannot be a code. */
static int path_code(admin_req_t *r, char *code, size_t size)
{
        size_t n = po_code_normalize(r->params[0], strlen(r->params[0]), code, size);

        if (n >= size || !po_code_is_valid(code, n)) {
                admin_error(r, 404, "not_found", "no code %.64s", r->params[0]);
                return -1;
        }
        return 0;
}

/* ---- handlers ---- */

void h_codes_create(admin_req_t *r)
{
        json_t *in = admin_body_json(r), *spec = NULL;
        const char *desc, *tz;
        admin_fields_t f;

        if (!in)
                return;
        admin_fields_init(&f);
        if (admin_worker_pg(r))
                goto out;
        if (admin_code_input(r, in, 0, 0, &f, &spec, &desc, &tz, NULL)) {
                if (r->status >= 500)
                        goto out; /* PostgreSQL failed under the conversion */
                admin_error_fields(r, &f, "the code is not valid");
                goto out;
        }
        if (admin_pg_begin(r))
                goto out;
        code_write(r, spec, desc, tz, NULL, "create");
out:
        json_decref(spec);
        json_decref(in);
        admin_fields_release(&f);
}

void h_codes_update(admin_req_t *r)
{
        json_t *in = admin_body_json(r), *spec = NULL;
        const char *desc, *tz;
        char code[PO_PRICING_CODE_MAX + 2];
        admin_fields_t f;
        PGresult *cur = NULL;
        int64_t version = 0;

        if (!in)
                return;
        admin_fields_init(&f);
        if (path_code(r, code, sizeof(code)) || admin_worker_pg(r))
                goto out;
        if (admin_code_input(r, in, 1, 0, &f, &spec, &desc, &tz, &version) == 0 &&
            strcmp(json_string_value(json_object_get(spec, "code")), code) != 0)
                admin_field(&f, "code",
                            "must be the code of the path (%s): codes cannot be "
                            "renamed",
                            code);
        if (admin_fields_count(&f)) {
                admin_error_fields(r, &f, "the code is not valid");
                goto out;
        }
        if (admin_pg_begin(r))
                goto out;
        cur = lock_code(r, code);
        if (!cur) {
                admin_pg_rollback(r);
                goto out;
        }
        if (atoll(PQgetvalue(cur, 0, 2)) != version) {
                admin_pg_rollback(r);
                admin_error(
                    r, 409, "conflict",
                    "%s changed since you read it: version %lld is current, you sent "
                    "%lld",
                    code, atoll(PQgetvalue(cur, 0, 2)), (long long)version);
                goto out;
        }
        if (!tz && !member(in, "timezone"))
                tz = NULL; /* a PUT is the whole definition: no zone given, none kept */
        code_write(r, spec, desc ? desc : "", tz, cur, "update");
out:
        PQclear(cur);
        json_decref(spec);
        json_decref(in);
        admin_fields_release(&f);
}

static void set_status(admin_req_t *r, const char *status, const char *action)
{
        char code[PO_PRICING_CODE_MAX + 2];
        PGresult *cur;
        json_t *spec;
        const char *now;

        if (r->body_len) {
                admin_error(r, 400, "bad_json", "this operation takes no body");
                return;
        }
        if (path_code(r, code, sizeof(code)) || admin_worker_pg(r) || admin_pg_begin(r))
                return;
        cur = lock_code(r, code);
        if (!cur) {
                admin_pg_rollback(r);
                return;
        }
        spec = json_loads(PQgetvalue(cur, 0, 1), 0, NULL);
        now = json_string_value(json_object_get(spec, "status"));
        if (!spec || !now) {
                admin_pg_rollback(r);
                admin_error(r, 500, "internal",
                            "the stored definition of %s is unreadable", code);
        } else if (strcmp(now, status) == 0) {
                json_t *o = code_json(cur, 0);

                admin_pg_rollback(r);
                admin_reply_json(r, 200, o); /* already so: nothing changes */
        } else if (strcmp(now, "archived") == 0) {
                admin_pg_rollback(r);
                admin_error(r, 409, "conflict", "%s is archived: it cannot be %s", code,
                            strcmp(status, "active") == 0 ? "resumed" : "paused");
        } else {
                json_object_set_new(spec, "status", json_string(status));
                code_write(r, spec, PQgetvalue(cur, 0, 3),
                           PQgetisnull(cur, 0, 4) ? NULL : PQgetvalue(cur, 0, 4), cur,
                           action);
        }
        json_decref(spec);
        PQclear(cur);
}

void h_codes_pause(admin_req_t *r)
{
        set_status(r, "paused", "pause");
}

void h_codes_resume(admin_req_t *r)
{
        set_status(r, "active", "resume");
}

void h_codes_archive(admin_req_t *r)
{
        set_status(r, "archived", "archive");
}

void h_codes_get(admin_req_t *r)
{
        char code[PO_PRICING_CODE_MAX + 2];
        const char *p[1] = {code};
        PGresult *res;
        json_t *o;

        if (path_code(r, code, sizeof(code)) || admin_worker_pg(r))
                return;
        res = admin_pg(r,
                       "SELECT " CODE_COLS ", coalesce(u.redemptions, 0),"
                       " coalesce(u.rejections, 0) FROM codes c"
                       " LEFT JOIN usage_counters u USING (code) WHERE c.code = $1",
                       1, p, NULL);
        if (!res)
                return;
        if (PQntuples(res) != 1) {
                PQclear(res);
                admin_error(r, 404, "not_found", "no code %s", code);
                return;
        }
        o = code_json(res, 0);
        if (o)
                json_object_set_new(o, "stats",
                                    json_pack("{s:I, s:I}", "redemptions",
                                              (json_int_t)atoll(PQgetvalue(res, 0, 9)),
                                              "rejections",
                                              (json_int_t)atoll(PQgetvalue(res, 0, 10))));
        PQclear(res);
        admin_reply_json(r, 200, o);
}

/* q as an ILIKE pattern: %q% with % _ \ escaped. */
static void like_pattern(const char *q, char *out, size_t size)
{
        size_t o = 0;

        out[o++] = '%';
        for (; *q && o + 4 < size; q++) {
                if (*q == '%' || *q == '_' || *q == '\\')
                        out[o++] = '\\';
                out[o++] = *q;
        }
        out[o++] = '%';
        out[o] = '\0';
}

void h_codes_list(admin_req_t *r)
{
        static const char *const allowed[] = {"q",     "status", "type", "channel",
                                              "limit", "offset", NULL};
        static const char where[] =
            " WHERE ($1::text IS NULL OR code ILIKE $1 OR description ILIKE $1)"
            " AND ($2::text IS NULL OR status = $2)"
            " AND ($3::text IS NULL OR definition->>'type' = $3)"
            " AND ($4::text IS NULL OR definition->'channels' ? $4)";
        const char *q = admin_query(r, "q"), *st = admin_query(r, "status"),
                   *ty = admin_query(r, "type"), *ch = admin_query(r, "channel");
        char pat[300], lim[24], off[24], sql[800];
        const char *p[6];
        admin_fields_t f;
        int64_t limit, offset;
        PGresult *res = NULL, *cnt = NULL;
        json_t *items;
        int i;

        if (admin_query_check(r, allowed))
                return;
        admin_fields_init(&f);
        limit = admin_query_int(r, &f, "limit", 50, 1, 1000);
        offset = admin_query_int(r, &f, "offset", 0, 0, INT32_MAX);
        if (q && strlen(q) > 100)
                admin_field(&f, "q", "at most 100 characters");
        if (st && strcmp(st, "active") != 0 && strcmp(st, "paused") != 0 &&
            strcmp(st, "archived") != 0)
                admin_field(&f, "status", "must be active, paused or archived");
        if (ty && strcmp(ty, "percentage") != 0 && strcmp(ty, "fixed") != 0)
                admin_field(&f, "type", "must be percentage or fixed");
        if (ch && strlen(ch) > MAX_STR)
                admin_field(&f, "channel", "at most %d characters", MAX_STR);
        if (admin_fields_count(&f)) {
                admin_error_fields(r, &f, "bad query");
                goto out;
        }
        if (admin_worker_pg(r))
                goto out;
        if (q && *q)
                like_pattern(q, pat, sizeof(pat));
        snprintf(lim, sizeof(lim), "%lld", (long long)limit);
        snprintf(off, sizeof(off), "%lld", (long long)offset);
        p[0] = q && *q ? pat : NULL;
        p[1] = st;
        p[2] = ty;
        p[3] = ch;
        p[4] = lim;
        p[5] = off;
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM codes%s", where);
        cnt = admin_pg(r, sql, 4, p, NULL);
        if (!cnt)
                goto out;
        snprintf(sql, sizeof(sql),
                 "SELECT " CODE_COLS " FROM codes%s ORDER BY updated_at DESC, code"
                 " LIMIT $5::bigint OFFSET $6::bigint",
                 where);
        res = admin_pg(r, sql, 6, p, NULL);
        if (!res)
                goto out;
        items = json_array();
        for (i = 0; i < PQntuples(res); i++)
                json_array_append_new(items, code_json(res, i));
        admin_reply_json(r, 200,
                         json_pack("{s:o, s:I}", "items", items, "total",
                                   (json_int_t)atoll(PQgetvalue(cnt, 0, 0))));
out:
        PQclear(res);
        PQclear(cnt);
        admin_fields_release(&f);
}
