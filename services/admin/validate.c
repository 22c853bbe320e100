/* POST /v1/validate: the checkout's synchronous code check. The body is a
 * PRICING_SPEC.md section 2 case without definitions and usage; the server
 * fills them the way the validator does (po_refdata_fetch: definitions, the
 * CRM tier, each line's stock; po_usage_read: usage counts), then prices it
 * with po_calcjson (the spec's JSON layer over the same core). Nothing is
 * reserved.
 *
 * Code guessing: failed attempts (any code rejected) are counted in Redis
 * per token and per customer in fixed windows of PROMO_ADMIN_RL_WINDOW_S
 * seconds; a client over PROMO_ADMIN_RL_TOKEN_MAX, or a customer over
 * PROMO_ADMIN_RL_CUSTOMER_MAX, gets 429 with Retry-After until the window
 * ends, before anything is priced. Every attempt (rate-limited and bad ones
 * too) is produced as a JSON record to checkout.attempts, without waiting. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "po/log.h"
#include "po/messages.h"

#define VALIDATE_ORDER_ID                                                                \
        "\x01"                                                                           \
        "admin-validate" /* no real order has it */
#define ARENA_LIMIT (16u << 20)

typedef struct attempt {
        const char *outcome; /* ok, failed, rate_limited, bad_input, unavailable */
        const char *customer, *channel;
        json_t *codes;  /* borrowed */
        json_t *result; /* owned; NULL when none */
} attempt_t;

static void log_attempt(admin_req_t *r, attempt_t *a)
{
        char at[40], *text;
        json_t *o;

        admin_fmt_time(admin_now_us(), at, sizeof(at));
        o = json_pack("{s:s, s:s, s:I, s:s, s:s?, s:s?, s:O?}", "at", at, "token",
                      r->who.name, "token_id", (json_int_t)r->who.token_id, "outcome",
                      a->outcome, "customer_id", a->customer, "channel", a->channel,
                      "codes", a->codes);
        if (o && a->result) {
                json_object_set(o, "discount_total",
                                json_object_get(a->result, "discount_total"));
                json_object_set(o, "applied", json_object_get(a->result, "applied"));
                json_object_set(o, "rejected", json_object_get(a->result, "rejected"));
        }
        text = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        if (!text || admin_produce(r->app, r->app->set.attempts_topic,
                                   a->customer ? a->customer : r->who.name,
                                   strlen(a->customer ? a->customer : r->who.name), text,
                                   strlen(text), NULL))
                admin_count(r->app, "promo_admin_attempts_dropped_total",
                            "Checkout attempt records that could not be queued.", NULL,
                            1);
        free(text);
        admin_count(r->app, "promo_admin_validate_total",
                    "Checkout validations by outcome.",
                    strcmp(a->outcome, "ok") == 0             ? "outcome=\"ok\""
                    : strcmp(a->outcome, "failed") == 0       ? "outcome=\"failed\""
                    : strcmp(a->outcome, "rate_limited") == 0 ? "outcome=\"rate_limited\""
                                                              : "outcome=\"error\"",
                    1);
}

/* Rate-limit keys of the current window. */
static void rl_keys(admin_req_t *r, const char *customer, char *tk, char *ck, size_t size,
                    int64_t *retry_after)
{
        int64_t now = admin_now_us() / 1000000, win = r->app->set.rl_window_s;

        snprintf(tk, size, "promo:rl:token:%lld:%lld", (long long)r->who.token_id,
                 (long long)(now / win));
        if (customer)
                snprintf(ck, size, "promo:rl:cust:%.200s:%lld", customer,
                         (long long)(now / win));
        *retry_after = win - now % win;
}

/* 1 when the token or the customer is over its limit, 0 when not, -1 on a
 * Redis failure (503 set). */
static int rl_over(admin_req_t *r, const char *tk, const char *ck)
{
        redisReply *rep[2] = {NULL, NULL};
        int i, n = ck ? 2 : 1, over = 0;

        redisAppendCommand(r->w->rc, "GET %s", tk);
        if (ck)
                redisAppendCommand(r->w->rc, "GET %s", ck);
        for (i = 0; i < n; i++) {
                if (redisGetReply(r->w->rc, (void **)&rep[i]) != REDIS_OK || !rep[i] ||
                    (rep[i]->type != REDIS_REPLY_STRING &&
                     rep[i]->type != REDIS_REPLY_NIL)) {
                        for (i = 0; i < 2; i++)
                                if (rep[i])
                                        freeReplyObject(rep[i]);
                        admin_error(r, 503, "unavailable",
                                    "redis: rate limits unreadable");
                        return -1;
                }
        }
        if (rep[0]->type == REDIS_REPLY_STRING &&
            atoll(rep[0]->str) >= r->app->set.rl_token_max)
                over = 1;
        if (ck && rep[1]->type == REDIS_REPLY_STRING &&
            atoll(rep[1]->str) >= r->app->set.rl_customer_max)
                over = 2;
        for (i = 0; i < n; i++)
                freeReplyObject(rep[i]);
        return over;
}

static void rl_count(admin_req_t *r, const char *tk, const char *ck)
{
        int i, n = 0, ttl = 2 * r->app->set.rl_window_s;

        redisAppendCommand(r->w->rc, "INCR %s", tk);
        redisAppendCommand(r->w->rc, "EXPIRE %s %d", tk, ttl);
        n = 2;
        if (ck) {
                redisAppendCommand(r->w->rc, "INCR %s", ck);
                redisAppendCommand(r->w->rc, "EXPIRE %s %d", ck, ttl);
                n = 4;
        }
        for (i = 0; i < n; i++) {
                redisReply *rep = NULL;

                if (redisGetReply(r->w->rc, (void **)&rep) != REDIS_OK)
                        break;
                freeReplyObject(rep);
        }
}

static json_t *str_member(json_t *o, const char *k)
{
        json_t *v = json_object_get(o, k);

        return json_is_string(v) ? v : NULL;
}

/* Fills the case's definitions, usage, stock, tier, now and policy from
 * the live data. Returns 0, 1 when the case itself is bad (the caller lets
 * po_calcjson say why), -1 on a dependency failure (503 set). */
static int fill_case(admin_req_t *r, json_t *in, const char *customer, po_arena_t *arena)
{
        json_t *codes = json_object_get(in, "codes"),
               *lines = json_object_get(in, "lines");
        json_t *cust = json_object_get(in, "customer"), *e, *defs, *usage;
        const char *uniq[PO_PRICING_MAX_CODES], *skus[PO_PRICING_MAX_LINES];
        po_codedef_t cds[PO_PRICING_MAX_CODES];
        int has_def[PO_PRICING_MAX_CODES], has_stock[PO_PRICING_MAX_LINES], crm_known = 0;
        int64_t stock[PO_PRICING_MAX_LINES], total[PO_PRICING_MAX_CODES],
            bycust[PO_PRICING_MAX_CODES];
        const char *dc[PO_PRICING_MAX_CODES], *tier = NULL;
        size_t nu = 0, nd = 0, nl = 0, i, j;
        char errstr[300];
        po_err_t err;

        if (!json_is_array(codes) || json_array_size(codes) > PO_PRICING_MAX_CODES ||
            !json_is_array(lines) || json_array_size(lines) > PO_PRICING_MAX_LINES)
                return 1;
        json_array_foreach(codes, i, e)
        {
                char norm[PO_PRICING_CODE_MAX + 2];
                size_t n;

                if (!json_is_string(e))
                        return 1;
                n = po_code_normalize(json_string_value(e), json_string_length(e), norm,
                                      sizeof(norm));
                if (n > PO_PRICING_CODE_MAX || !po_code_is_valid(norm, n))
                        continue;
                for (j = 0; j < nu; j++)
                        if (strcmp(uniq[j], norm) == 0)
                                break;
                if (j < nu)
                        continue;
                uniq[nu] = po_arena_strndup(arena, norm, n);
                if (!uniq[nu++])
                        return -1;
        }
        json_array_foreach(lines, i, e)
        {
                json_t *sku = str_member(e, "sku");

                if (!json_is_object(e) || !sku || strlen(json_string_value(sku)) > 256)
                        return 1;
                skus[nl++] = json_string_value(sku);
        }
        if (admin_worker_redis(r) || admin_worker_pg(r))
                return -1;
        memset(has_def, 0, sizeof(has_def));
        err = po_refdata_fetch(r->w->rc, r->w->pg, arena, uniq, nu, cds, has_def,
                               customer, &tier, &crm_known, skus, nl, stock, has_stock,
                               &r->w->stats, errstr, sizeof(errstr));
        if (err) {
                admin_error(r, 503, "unavailable", "reference data: %s", errstr);
                return -1;
        }
        for (i = 0; i < nu; i++)
                if (has_def[i])
                        dc[nd++] = cds[i].def.code;
        for (i = 0; i < nd; i++)
                total[i] = bycust[i] = 0;
        if (nd) {
                int tries;

                for (tries = 0; tries < 3; tries++) {
                        if (!r->w->usage.marker[0] &&
                            po_usage_ready(&r->w->usage, r->w->rc, r->w->pg, 3000, errstr,
                                           sizeof(errstr)))
                                break;
                        err = po_usage_read(&r->w->usage, r->w->rc, VALIDATE_ORDER_ID,
                                            customer, dc, nd, total, bycust, errstr,
                                            sizeof(errstr));
                        if (err != PO_ERR_TIMEOUT)
                                break;
                        r->w->usage.marker[0] = '\0';
                }
                if (!r->w->usage.marker[0] || err) {
                        r->w->usage.marker[0] = '\0';
                        admin_error(r, 503, "unavailable", "usage counters: %s", errstr);
                        return -1;
                }
        }
        /* The case the validator would price. */
        defs = json_array();
        usage = json_object();
        for (i = 0, j = 0; i < nu; i++) {
                po_dynbuf_t js;
                json_t *d;

                if (!has_def[i])
                        continue;
                po_dynbuf_init(&js, 1u << 20);
                d = po_codedef_to_json(&cds[i], &js) == PO_OK
                        ? json_loadb(js.data, js.len, 0, NULL)
                        : NULL;
                po_dynbuf_release(&js);
                if (!d) {
                        json_decref(defs);
                        json_decref(usage);
                        admin_error(r, 500, "internal", "definition of %s unusable",
                                    uniq[i]);
                        return -1;
                }
                json_array_append_new(defs, d);
                json_object_set_new(usage, cds[i].def.code,
                                    json_pack("{s:I, s:I}", "total", (json_int_t)total[j],
                                              "customer", (json_int_t)bycust[j]));
                j++;
        }
        json_object_set_new(in, "definitions", defs);
        json_object_set_new(in, "usage", usage);
        json_array_foreach(lines, i, e)
        {
                if (has_stock[i])
                        json_object_set_new(e, "stock", json_integer(stock[i]));
                else
                        json_object_del(e, "stock"); /* only live stock counts */
        }
        /* The CRM's tier when the CRM knows the customer (docs/validator.md). */
        if (crm_known && json_is_object(cust)) {
                if (tier)
                        json_object_set_new(cust, "tier", json_string(tier));
                else
                        json_object_del(cust, "tier");
        }
        if (!json_object_get(in, "now")) {
                char now[40];

                admin_fmt_time(admin_now_us(), now, sizeof(now));
                json_object_set_new(in, "now", json_string(now));
        }
        if (!json_object_get(in, "stacking"))
                json_object_set_new(in, "stacking",
                                    json_string(r->app->set.stacking == PO_STACK_COMBINE
                                                    ? "combine"
                                                    : "best_only"));
        if (!json_object_get(in, "rounding"))
                json_object_set_new(in, "rounding",
                                    json_string(r->app->set.rounding == PO_ROUND_HALF_EVEN
                                                    ? "half_even"
                                                    : "half_up"));
        return 0;
}

void h_validate(admin_req_t *r)
{
        json_t *in = admin_body_json(r), *cust, *res = NULL;
        attempt_t a = {.outcome = "bad_input"};
        char tk[300], ck[300], *text = NULL;
        int64_t retry;
        po_arena_t arena;
        po_dynbuf_t out;
        admin_fields_t f;
        int over, rc;

        po_arena_init(&arena, ARENA_LIMIT);
        po_dynbuf_init(&out, 64u << 20);
        admin_fields_init(&f);
        if (!in)
                goto out_nolog;
        cust = json_object_get(in, "customer");
        a.customer = json_is_object(cust) && str_member(cust, "id") &&
                             json_string_length(str_member(cust, "id")) <= 200
                         ? json_string_value(str_member(cust, "id"))
                         : NULL;
        a.channel = str_member(in, "channel")
                        ? json_string_value(str_member(in, "channel"))
                        : NULL;
        a.codes = json_object_get(in, "codes");
        if (json_object_get(in, "definitions"))
                admin_field(&f, "definitions",
                            "not accepted: the server uses the live definitions");
        if (json_object_get(in, "usage"))
                admin_field(&f, "usage", "not accepted: the server uses the live usage");
        if (admin_fields_count(&f)) {
                admin_error_fields(r, &f, "the case is not valid");
                goto out;
        }
        if (admin_worker_redis(r)) {
                a.outcome = "unavailable";
                goto out;
        }
        rl_keys(r, a.customer, tk, ck, sizeof(tk), &retry);
        over = rl_over(r, tk, a.customer ? ck : NULL);
        if (over < 0) {
                a.outcome = "unavailable";
                goto out;
        }
        if (over) {
                a.outcome = "rate_limited";
                snprintf(r->retry_after, sizeof(r->retry_after), "%lld",
                         (long long)retry);
                admin_error(r, 429, "rate_limited",
                            "too many failed attempts for this %s: retry in %lld s",
                            over == 1 ? "client" : "customer", (long long)retry);
                goto out;
        }
        rc = fill_case(r, in, a.customer, &arena);
        if (rc < 0) {
                a.outcome = "unavailable";
                goto out;
        }
        text = json_dumps(in, JSON_COMPACT);
        if (!text || po_calcjson_process(r->w->cj, text, strlen(text), 0, &out) ||
            !(res = json_loadb(out.data, out.len, 0, NULL))) {
                admin_error(r, 500, "internal", "out of memory");
                a.outcome = "unavailable";
                goto out;
        }
        if (json_object_get(res, "error")) {
                const char *msg = json_string_value(
                    json_object_get(json_object_get(res, "error"), "message"));
                char field[96];
                size_t n = msg ? strcspn(msg, ":") : 0;

                snprintf(field, sizeof(field), "%.*s", (int)(n < 90 ? n : 90),
                         msg ? msg : "");
                admin_field(&f, msg && msg[n] == ':' ? field : "body", "%s",
                            msg && msg[n] == ':' ? msg + n + 2
                                                 : (msg ? msg : "bad case"));
                admin_error_fields(r, &f, "the case breaks PRICING_SPEC.md (BAD_INPUT)");
                goto out;
        }
        a.result = res;
        res = NULL;
        a.outcome =
            json_array_size(json_object_get(a.result, "rejected")) ? "failed" : "ok";
        if (strcmp(a.outcome, "failed") == 0)
                rl_count(r, tk, a.customer ? ck : NULL);
        /* The result as the core wrote it. */
        po_dynbuf_reset(&r->out);
        po_dynbuf_add(&r->out, out.data, out.len);
        r->status = 200;
        r->ctype = "application/json";
out:
        log_attempt(r, &a);
out_nolog:
        json_decref(a.result);
        json_decref(res);
        free(text);
        json_decref(in);
        admin_fields_release(&f);
        po_dynbuf_release(&out);
        po_arena_release(&arena);
}
