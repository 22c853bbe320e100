/* Code generation: POST /v1/codes/bulk (random unique codes from a
 * pattern) and POST /v1/codes/vip (one code per top customer, by the score
 * of docs/admin.md). Codes are drawn from an alphabet without the
 * look-alikes 0 O 1 I L, with getrandom(2) and rejection sampling (no modulo
 * bias); duplicates among them and codes that already exist are drawn
 * again. The rows go to PostgreSQL by COPY into a temporary table and one
 * INSERT ... SELECT (with an admin_changes row per code), every definition
 * to promo.codes (all deliveries confirmed before the commit) and to Redis
 * (pipelined). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "po/log.h"
#include "po/messages.h"

#define ALPHABET "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
#define ALPHABET_LEN 31
#define BULK_MAX 100000
#define VIP_MAX 10000
#define PUBLISH_TIMEOUT_MS 120000
#define REDIS_CHUNK 1000
#define MAX_ROUNDS 20

typedef struct gen {
        char (*codes)[PO_PRICING_CODE_MAX + 1];
        size_t n;
        char prefix[40];
        int length;
} gen_t;

static int cmp_code(const void *a, const void *b)
{
        return strcmp(a, b);
}

/* Draws code i: prefix + length characters of the alphabet. */
static int draw(gen_t *g, size_t i)
{
        unsigned char buf[64];
        size_t plen = strlen(g->prefix), k = 0, j;

        memcpy(g->codes[i], g->prefix, plen);
        while (k < (size_t)g->length) {
                if (admin_random(buf, sizeof(buf)))
                        return -1;
                for (j = 0; j < sizeof(buf) && k < (size_t)g->length; j++)
                        if (buf[j] < 248) /* 248 = 8 * 31: uniform */
                                g->codes[i][plen + k++] = ALPHABET[buf[j] % ALPHABET_LEN];
        }
        g->codes[i][plen + k] = '\0';
        return 0;
}

/* Makes the n codes unique among themselves (drawing again). */
static int unique(gen_t *g)
{
        size_t i, dups;
        int rounds = 0;

        do {
                char(*sorted)[PO_PRICING_CODE_MAX + 1] = malloc(g->n * sizeof(*sorted));

                if (!sorted)
                        return -1;
                memcpy(sorted, g->codes, g->n * sizeof(*sorted));
                qsort(sorted, g->n, sizeof(*sorted), cmp_code);
                dups = 0;
                for (i = 1; i < g->n; i++) {
                        if (strcmp(sorted[i], sorted[i - 1]) != 0)
                                continue;
                        /* Redraw one of the copies (find it in codes). */
                        {
                                size_t k;

                                for (k = 0; k < g->n; k++)
                                        if (strcmp(g->codes[k], sorted[i]) == 0)
                                                break;
                                if (draw(g, k)) {
                                        free(sorted);
                                        return -1;
                                }
                        }
                        dups++;
                }
                free(sorted);
        } while (dups && ++rounds < MAX_ROUNDS);
        return dups ? -1 : 0;
}

/* Starts a COPY ... FROM STDIN. Returns 0, or -1 with 503 set. */
static int copy_start(admin_req_t *r, const char *sql)
{
        PGresult *res = PQexec(r->w->pg, sql);
        int ok = PQresultStatus(res) == PGRES_COPY_IN;

        if (!ok)
                admin_error(r, 503, "unavailable", "postgres: %s",
                            res ? PQresultErrorMessage(res) : PQerrorMessage(r->w->pg));
        PQclear(res);
        return ok ? 0 : -1;
}

/* COPY text-format field escaping. */
static void copy_field(po_dynbuf_t *b, const char *s, size_t len)
{
        size_t i, run = 0;

        for (i = 0; i < len; i++) {
                const char *esc = s[i] == '\\'   ? "\\\\"
                                  : s[i] == '\t' ? "\\t"
                                  : s[i] == '\n' ? "\\n"
                                  : s[i] == '\r' ? "\\r"
                                                 : NULL;

                if (!esc)
                        continue;
                po_dynbuf_add(b, s + run, i - run);
                po_dynbuf_add(b, esc, 2);
                run = i + 1;
        }
        po_dynbuf_add(b, s + run, len - run);
}

/* COPYs codes[from..g->n) into bulk_codes. */
static int copy_in(admin_req_t *r, gen_t *g, size_t from)
{
        PGresult *res;
        po_dynbuf_t b;
        size_t i;
        int ok;

        if (copy_start(r, "COPY bulk_codes (code) FROM STDIN"))
                return -1;
        po_dynbuf_init(&b, (size_t)1 << 30);
        for (i = from; i < g->n; i++) {
                copy_field(&b, g->codes[i], strlen(g->codes[i]));
                po_dynbuf_add(&b, "\n", 1);
        }
        ok = !b.failed && PQputCopyData(r->w->pg, po_dynbuf_str(&b), (int)b.len) == 1 &&
             PQputCopyEnd(r->w->pg, NULL) == 1;
        po_dynbuf_release(&b);
        res = PQgetResult(r->w->pg);
        ok = ok && PQresultStatus(res) == PGRES_COMMAND_OK;
        if (!ok)
                admin_error(r, 503, "unavailable", "postgres: COPY: %s",
                            res ? PQresultErrorMessage(res) : PQerrorMessage(r->w->pg));
        PQclear(res);
        while ((res = PQgetResult(r->w->pg)))
                PQclear(res);
        return ok ? 0 : -1;
}

/* Draws the codes, unique among themselves and against the codes table;
 * leaves them in the temp table bulk_codes. Inside the open transaction. */
static int draw_all(admin_req_t *r, gen_t *g)
{
        size_t i;
        int rounds;

        for (i = 0; i < g->n; i++)
                if (draw(g, i))
                        goto norand;
        if (unique(g))
                goto norand;
        {
                PGresult *res =
                    admin_pg(r,
                             "CREATE TEMP TABLE bulk_codes (code text PRIMARY "
                             "KEY, definition jsonb, customer_id text)"
                             " ON COMMIT DROP",
                             0, NULL, NULL);

                if (!res)
                        return -1;
                PQclear(res);
        }
        if (copy_in(r, g, 0))
                return -1;
        for (rounds = 0; rounds < MAX_ROUNDS; rounds++) {
                PGresult *res = admin_pg(r,
                                         "DELETE FROM bulk_codes b USING codes c"
                                         " WHERE b.code = c.code RETURNING b.code",
                                         0, NULL, NULL);
                size_t k, taken, start;
                int row;

                if (!res)
                        return -1;
                taken = (size_t)PQntuples(res);
                if (taken == 0) {
                        PQclear(res);
                        return 0;
                }
                /* Move the taken codes to the end and draw them again. */
                start = g->n;
                for (row = 0; row < PQntuples(res); row++)
                        for (k = 0; k < start; k++)
                                if (strcmp(g->codes[k], PQgetvalue(res, row, 0)) == 0) {
                                        char tmp[PO_PRICING_CODE_MAX + 1];

                                        start--;
                                        memcpy(tmp, g->codes[k], sizeof(tmp));
                                        memcpy(g->codes[k], g->codes[start], sizeof(tmp));
                                        memcpy(g->codes[start], tmp, sizeof(tmp));
                                        break;
                                }
                PQclear(res);
                for (k = start; k < g->n; k++)
                        if (draw(g, k))
                                goto norand;
                if (unique(g))
                        goto norand;
                /* unique() may have redrawn earlier codes too: reload all. */
                res = admin_pg(r, "TRUNCATE bulk_codes", 0, NULL, NULL);
                if (!res)
                        return -1;
                PQclear(res);
                if (copy_in(r, g, 0))
                        return -1;
        }
        admin_error(
            r, 409, "conflict",
            "could not draw %zu unused codes of this pattern: use a longer length", g->n);
        return -1;
norand:
        admin_error(r, 503, "unavailable", "no randomness (getrandom)");
        return -1;
}

/* Validates a generator's request: prefix, length, template. */
static int gen_params(admin_req_t *r, json_t *in, admin_fields_t *f, gen_t *g,
                      const char *count_key, int64_t count_max, int64_t *count,
                      json_t **spec, const char **desc, const char **tz)
{
        static const char *const known[] = {"prefix", "length", "count", "top",
                                            "template"};
        json_t *v, *tmpl;
        const char *k;
        size_t i, before;

        json_object_foreach(in, k, v)
        {
                for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
                        if (strcmp(k, known[i]) == 0)
                                break;
                if (i == sizeof(known) / sizeof(known[0]) ||
                    ((strcmp(k, "count") == 0 || strcmp(k, "top") == 0) &&
                     strcmp(k, count_key) != 0))
                        admin_field(f, k, "unknown field");
        }
        v = json_object_get(in, "prefix");
        g->prefix[0] = '\0';
        if (v && !json_is_null(v)) {
                char norm[PO_PRICING_CODE_MAX + 2];
                size_t n = json_is_string(v) ? po_code_normalize(json_string_value(v),
                                                                 json_string_length(v),
                                                                 norm, sizeof(norm))
                                             : 99;

                for (i = 0; i < n && n <= 32; i++)
                        if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_", norm[i]))
                                break;
                if (n > 32 || i < n)
                        admin_field(f, "prefix",
                                    "must be 0..32 characters of A-Z 0-9 - _");
                else
                        memcpy(g->prefix, norm, n + 1);
        }
        v = json_object_get(in, "length");
        if (!json_is_integer(v) || json_integer_value(v) < 4 ||
            json_integer_value(v) > 32)
                admin_field(f, "length",
                            "required: an integer 4..32 (random characters)");
        else
                g->length = (int)json_integer_value(v);
        v = json_object_get(in, count_key);
        if (!json_is_integer(v) || json_integer_value(v) < 1 ||
            json_integer_value(v) > count_max)
                admin_field(f, count_key, "required: an integer 1..%lld",
                            (long long)count_max);
        else
                *count = json_integer_value(v);
        if (g->length && strlen(g->prefix) + (size_t)g->length > PO_PRICING_CODE_MAX)
                admin_field(f, "length", "prefix + length must be at most 64 characters");
        if (g->length && *count) {
                /* Keep the space at least 100 times the count: few redraws. */
                double space = 1;
                int j;

                for (j = 0; j < g->length; j++)
                        space *= ALPHABET_LEN;
                if (space < 100.0 * (double)*count)
                        admin_field(f, "length",
                                    "too short for %lld codes: use at least %d",
                                    (long long)*count, g->length + 2);
        }
        tmpl = json_object_get(in, "template");
        if (!json_is_object(tmpl)) {
                admin_field(f, "template", "required: a code definition without code");
                return -1;
        }
        before = admin_fields_count(f);
        admin_code_input(r, tmpl, 0, 1, f, spec, desc, tz, NULL);
        /* Name the template's fields as such. */
        for (i = before; i < admin_fields_count(f); i++) {
                json_t *e = json_array_get(f->list, i);
                char name[128];

                snprintf(name, sizeof(name), "template.%s",
                         json_string_value(json_object_get(e, "field")));
                json_object_set_new(e, "field", json_string(name));
        }
        return admin_fields_count(f) ? -1 : 0;
}

/* Inserts, audits, publishes and caches g's codes with the template spec
 * (customers[i] binds code i when customers is set). Inside the open
 * transaction, with bulk_codes holding the codes; commits. */
static int gen_store(admin_req_t *r, gen_t *g, json_t *spec, const char *desc,
                     const char *tz, char **customers, const char *action)
{
        int64_t version = admin_now_us(), t0 = admin_mono_ms(), t_pg = 0, t_kafka = 0;
        char vtxt[24], errstr[300], *text = NULL;
        po_dynbuf_t copy, *defs = NULL;
        po_arena_t arena;
        po_codedef_t cd;
        admin_wait_t w;
        PGresult *res;
        const char *p[7];
        size_t i;
        int rc = -1;

        admin_wait_init(&w);
        po_arena_init(&arena, 4u << 20);
        po_dynbuf_init(&copy, (size_t)1 << 31);
        defs = calloc(g->n, sizeof(*defs));
        json_object_set_new(spec, "code", json_string(g->n ? g->codes[0] : "XXX"));
        json_object_set_new(spec, "version", json_integer(version));
        json_object_set_new(spec, "updated_at", json_integer(version));
        if (customers)
                json_object_set_new(spec, "customer_id", json_string(customers[0]));
        text = json_dumps(spec, JSON_COMPACT);
        if (!defs || !text ||
            po_codedef_from_json(text, strlen(text), &arena, &cd, errstr,
                                 sizeof(errstr))) {
                admin_error(r, 422, "validation", "template: %s",
                            defs ? errstr : "no memory");
                goto out;
        }
        /* Every code's definition: the template's with its code (and customer). */
        for (i = 0; i < g->n; i++) {
                size_t n = strlen(g->codes[i]);

                memcpy(cd.def.code, g->codes[i], n + 1);
                cd.def.code_len = n;
                if (customers) {
                        cd.def.has_customer_id = 1;
                        cd.def.customer_id.ptr = customers[i];
                        cd.def.customer_id.len = strlen(customers[i]);
                }
                po_dynbuf_init(&defs[i], 1u << 20);
                if (po_codedef_to_json(&cd, &defs[i])) {
                        admin_error(r, 500, "internal", "cannot write %s", g->codes[i]);
                        goto out;
                }
                copy_field(&copy, g->codes[i], n);
                po_dynbuf_add(&copy, "\t", 1);
                copy_field(&copy, defs[i].data, defs[i].len);
                po_dynbuf_add(&copy, "\n", 1);
        }
        res = admin_pg(r, "TRUNCATE bulk_codes", 0, NULL, NULL);
        PQclear(res);
        if (!res)
                goto out;
        if (copy_start(r, "COPY bulk_codes (code, definition) FROM STDIN"))
                goto out;
        if (copy.failed || PQputCopyData(r->w->pg, copy.data, (int)copy.len) != 1 ||
            PQputCopyEnd(r->w->pg, NULL) != 1) {
                admin_error(r, 503, "unavailable", "postgres: COPY failed");
                goto out;
        }
        while ((res = PQgetResult(r->w->pg))) {
                if (PQresultStatus(res) != PGRES_COMMAND_OK && r->status < 400)
                        admin_error(r, 503, "unavailable", "postgres: %s",
                                    PQresultErrorMessage(res));
                PQclear(res);
        }
        if (r->status >= 400)
                goto out;
        snprintf(vtxt, sizeof(vtxt), "%lld", (long long)version);
        p[0] = json_string_value(json_object_get(spec, "status"));
        p[1] = vtxt;
        p[2] = desc ? desc : "";
        p[3] = tz;
        p[4] = r->who.name;
        p[5] = action;
        p[6] = text;
        res =
            admin_pg(r,
                     "INSERT INTO codes (code, definition, status, version, description,"
                     " timezone, created_by, updated_by)"
                     " SELECT code, definition, $1, $2::bigint, $3, $4, $5, $5"
                     " FROM bulk_codes",
                     5, p, "a generated code was created concurrently: try again");
        if (!res)
                goto out;
        if ((size_t)atoll(PQcmdTuples(res)) != g->n) {
                PQclear(res);
                admin_error(r, 503, "unavailable", "postgres: not every code was stored");
                goto out;
        }
        PQclear(res);
        /* One audit record for the generation: the template and every code. */
        res =
            admin_pg(r,
                     "INSERT INTO admin_changes (actor, action, entity, entity_id, after)"
                     " SELECT $5, $6, 'code_batch', min(code) || ' +' || count(*),"
                     " jsonb_build_object('template', $7::jsonb, 'description', $3::text,"
                     " 'timezone', $4::text, 'status', $1::text, 'version', $2::bigint,"
                     " 'codes', jsonb_agg(CASE WHEN definition ? 'customer_id' THEN"
                     " jsonb_build_object('code', code, 'customer_id',"
                     " definition->>'customer_id') ELSE to_jsonb(code) END))"
                     " FROM bulk_codes",
                     7, p, NULL);
        if (!res)
                goto out;
        PQclear(res);
        t_pg = admin_mono_ms();
        /* Publish every definition; the commit waits for every delivery. */
        for (i = 0; i < g->n; i++) {
                po_arena_t a;
                po_codedef_t one;
                po_dynbuf_t av;

                po_arena_init(&a, 1u << 20);
                po_dynbuf_init(&av, 1u << 20);
                if (po_codedef_from_json(defs[i].data, defs[i].len, &a, &one, errstr,
                                         sizeof(errstr)) ||
                    po_codedef_encode(r->w->avro, &one, &av, errstr, sizeof(errstr)) ||
                    admin_produce(r->app, r->app->set.codes_topic, g->codes[i],
                                  strlen(g->codes[i]), av.data, av.len, &w)) {
                        po_dynbuf_release(&av);
                        po_arena_release(&a);
                        admin_error(r, 503, "unavailable", "kafka: cannot publish %s: %s",
                                    g->codes[i], w.error[0] ? w.error : errstr);
                        admin_wait_done(&w, PUBLISH_TIMEOUT_MS);
                        goto out;
                }
                po_dynbuf_release(&av);
                po_arena_release(&a);
        }
        if (admin_wait_done(&w, PUBLISH_TIMEOUT_MS)) {
                admin_error(r, 503, "unavailable", "kafka: %s", w.error);
                goto out;
        }
        t_kafka = admin_mono_ms();
        if (admin_pg_commit(r)) {
                /* Published but not stored: take them back off the caches. */
                for (i = 0; i < g->n; i++)
                        admin_produce(r->app, r->app->set.codes_topic, g->codes[i],
                                      strlen(g->codes[i]), NULL, 0, NULL);
                goto out_committed;
        }
        if (admin_worker_redis(r) == 0) {
                for (i = 0; i < g->n; i += REDIS_CHUNK) {
                        size_t n = g->n - i < REDIS_CHUNK ? g->n - i : REDIS_CHUNK, k;
                        char keys[REDIS_CHUNK][80];
                        const char *kp[REDIS_CHUNK], *dp[REDIS_CHUNK];
                        int64_t vs[REDIS_CHUNK];
                        size_t ls[REDIS_CHUNK];

                        for (k = 0; k < n; k++) {
                                snprintf(keys[k], sizeof(keys[k]), "promo:code:%s",
                                         g->codes[i + k]);
                                kp[k] = keys[k];
                                dp[k] = defs[i + k].data;
                                ls[k] = defs[i + k].len;
                                vs[k] = version;
                        }
                        if (po_refdata_put_many(r->w->rc, kp, vs, dp, ls, n, errstr,
                                                sizeof(errstr))) {
                                po_log_warn("generated codes: redis: %s", errstr);
                                break;
                        }
                }
        }
        r->status = 0;
        rc = 0;
        po_log_info(
            "%zu codes generated (%s) by %s: stored in %lld ms, published in %lld "
            "ms, committed and cached in %lld ms",
            g->n, action, r->who.name, (long long)(t_pg - t0),
            (long long)(t_kafka - t_pg), (long long)(admin_mono_ms() - t_kafka));
        admin_count(r->app, "promo_admin_codes_generated_total", "Codes generated.", NULL,
                    g->n);
        goto out_committed;
out:
        admin_pg_rollback(r);
out_committed:
        for (i = 0; defs && i < g->n; i++)
                po_dynbuf_release(&defs[i]);
        free(defs);
        free(text);
        po_dynbuf_release(&copy);
        po_arena_release(&arena);
        admin_wait_release(&w);
        return rc;
}

void h_codes_bulk(admin_req_t *r)
{
        json_t *in = admin_body_json(r), *spec = NULL, *list;
        const char *desc = NULL, *tz = NULL;
        admin_fields_t f;
        int64_t count = 0;
        gen_t g;
        size_t i;

        memset(&g, 0, sizeof(g));
        if (!in)
                return;
        admin_fields_init(&f);
        if (admin_worker_pg(r))
                goto out;
        if (gen_params(r, in, &f, &g, "count", BULK_MAX, &count, &spec, &desc, &tz)) {
                admin_error_fields(r, &f, "the generation request is not valid");
                goto out;
        }
        if (json_object_get(spec, "customer_id")) {
                admin_field(&f, "template.customer_id",
                            "bulk codes are not bound to a customer (use /v1/codes/vip)");
                admin_error_fields(r, &f, "the generation request is not valid");
                goto out;
        }
        g.n = (size_t)count;
        g.codes = malloc(g.n * sizeof(*g.codes));
        if (!g.codes) {
                admin_error(r, 503, "unavailable", "out of memory");
                goto out;
        }
        if (admin_pg_begin(r))
                goto out;
        if (draw_all(r, &g) || gen_store(r, &g, spec, desc, tz, NULL, "generate_bulk")) {
                admin_pg_rollback(r);
                goto out;
        }
        list = json_array();
        for (i = 0; i < g.n; i++)
                json_array_append_new(list, json_string(g.codes[i]));
        admin_reply_json(
            r, 201, json_pack("{s:I, s:o}", "count", (json_int_t)g.n, "codes", list));
out:
        free(g.codes);
        json_decref(spec);
        json_decref(in);
        admin_fields_release(&f);
}

/* The VIP score of docs/admin.md, 0..1000, in integers. */
static const char vip_sql[] =
    "SELECT customer_id, score FROM (SELECT customer_id, ("
    " CASE WHEN last_order_at IS NULL THEN 0 ELSE least(365, greatest(0, 365 -"
    " floor(extract(epoch FROM now() - last_order_at) / 86400)::bigint)) * 250 / 365 END"
    " + least(orders_count, 50) * 5"
    " + least(total_spend, 1000000) * 250 / 1000000"
    " + engagement::bigint * 5 / 2)::bigint AS score FROM customers) s"
    " ORDER BY score DESC, customer_id LIMIT $1::bigint";

void h_codes_vip(admin_req_t *r)
{
        json_t *in = admin_body_json(r), *spec = NULL, *list;
        const char *desc = NULL, *tz = NULL, *p[1];
        char **customers = NULL, top_txt[24];
        admin_fields_t f;
        int64_t top = 0;
        PGresult *res = NULL;
        gen_t g;
        size_t i;

        memset(&g, 0, sizeof(g));
        if (!in)
                return;
        admin_fields_init(&f);
        if (admin_worker_pg(r))
                goto out;
        if (gen_params(r, in, &f, &g, "top", VIP_MAX, &top, &spec, &desc, &tz)) {
                admin_error_fields(r, &f, "the generation request is not valid");
                goto out;
        }
        if (json_object_get(spec, "customer_id")) {
                admin_field(&f, "template.customer_id",
                            "each VIP code is bound to its customer: leave it out");
                admin_error_fields(r, &f, "the generation request is not valid");
                goto out;
        }
        if (admin_pg_begin(r))
                goto out;
        snprintf(top_txt, sizeof(top_txt), "%lld", (long long)top);
        p[0] = top_txt;
        res = admin_pg(r, vip_sql, 1, p, NULL);
        if (!res)
                goto fail;
        g.n = (size_t)PQntuples(res);
        if (g.n == 0) {
                admin_pg_rollback(r);
                admin_reply_json(r, 201, json_pack("{s:[]}", "codes"));
                goto out;
        }
        g.codes = malloc(g.n * sizeof(*g.codes));
        customers = calloc(g.n, sizeof(*customers));
        if (!g.codes || !customers) {
                admin_error(r, 503, "unavailable", "out of memory");
                goto fail;
        }
        for (i = 0; i < g.n; i++)
                customers[i] = PQgetvalue(res, (int)i, 0);
        if (draw_all(r, &g) ||
            gen_store(r, &g, spec, desc, tz, customers, "generate_vip"))
                goto fail;
        list = json_array();
        for (i = 0; i < g.n; i++)
                json_array_append_new(
                    list, json_pack("{s:s, s:s, s:I}", "code", g.codes[i], "customer_id",
                                    customers[i], "score",
                                    (json_int_t)atoll(PQgetvalue(res, (int)i, 1))));
        admin_reply_json(r, 201, json_pack("{s:o}", "codes", list));
        goto out;
fail:
        admin_pg_rollback(r);
out:
        free(customers);
        free(g.codes);
        PQclear(res);
        json_decref(spec);
        json_decref(in);
        admin_fields_release(&f);
}
