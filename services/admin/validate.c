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
 * too) is produced as a JSON record to checkout.attempts, without waiting.
 *
 * Cost: one Redis round trip per request when everything is cached. The
 * rate-limit GETs, the HGETs of po_refdata_fetch (same keys) and the usage
 * counters (a MULTI/EXEC of the reads po_usage_read's script makes, under
 * the worker's marker) go in one pipeline; anything unusual in the replies
 * (a miss, a bad entry, a moved marker, an error) falls back to
 * po_refdata_fetch / po_usage_ready + po_usage_read, so the answers are
 * theirs. The case is parsed once and priced from the tree
 * (po_calcjson_process_tree); the attempt record is written as text from
 * the parsed body and the spans of the result. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "po/log.h"
#include "po/messages.h"
#include "po/utf8.h"

#define VALIDATE_ORDER_ID                                                                \
        "\x01"                                                                           \
        "admin-validate" /* no real order has it */
#define ARENA_LIMIT (16u << 20)

#define VBUF_KEEP (1u << 20) /* a worker's buffers shrink back beyond this */

typedef struct attempt {
        const char *outcome; /* ok, failed, rate_limited, bad_input, unavailable */
        const char *customer, *channel;
        json_t *codes; /* borrowed */
        /* The result's members (JSON texts in the worker's vout) when priced. */
        int has_result;
        const char *discount_total, *applied, *rejected;
        size_t discount_total_len, applied_len, rejected_len;
} attempt_t;

void admin_worker_validate_release(admin_worker_t *w)
{
        size_t i;

        for (i = 0; i < ADMIN_DEFCACHE_SIZE; i++) {
                free(w->defcache[i].text);
                json_decref(w->defcache[i].def);
        }
        memset(w->defcache, 0, sizeof(w->defcache));
        po_dynbuf_release(&w->vbuf);
        po_dynbuf_release(&w->vout);
}

/* ---- the attempt record, as json_dumps(JSON_COMPACT) writes it ---- */

/* Appends the escape of ch (a control character, '"' or '\\') as jansson
 * writes it. */
static void rec_esc(po_dynbuf_t *b, unsigned char ch)
{
        static const char hex[] = "0123456789ABCDEF";
        char esc[6] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15]};
        size_t n = 2;

        switch (ch) {
        case '"':
        case '\\':
                esc[1] = (char)ch;
                break;
        case '\b':
                esc[1] = 'b';
                break;
        case '\f':
                esc[1] = 'f';
                break;
        case '\n':
                esc[1] = 'n';
                break;
        case '\r':
                esc[1] = 'r';
                break;
        case '\t':
                esc[1] = 't';
                break;
        default:
                n = 6;
        }
        po_dynbuf_add(b, esc, n);
}

/* s[0..len) as jansson writes a string (valid UTF-8: it came from jansson). */
static void rec_str(po_dynbuf_t *b, const char *s, size_t len)
{
        size_t i, run = 0;

        po_dynbuf_add(b, "\"", 1);
        for (i = 0; i < len; i++) {
                unsigned char ch = (unsigned char)s[i];

                if (ch >= 0x20 && ch != '"' && ch != '\\')
                        continue;
                po_dynbuf_add(b, s + run, i - run);
                run = i + 1;
                rec_esc(b, ch);
        }
        po_dynbuf_add(b, s + run, len - run);
        po_dynbuf_add(b, "\"", 1);
}

static void rec_key(po_dynbuf_t *b, const char *key)
{
        po_dynbuf_add(b, ",\"", 2);
        po_dynbuf_add(b, key, strlen(key));
        po_dynbuf_add(b, "\":", 2);
}

/* A JSON value of po_calcjson's output, re-escaped as jansson would: the core
 * escapes '"' and '\\' with a backslash and control characters as \u00xx;
 * everything else (numbers, literals, punctuation, other characters) is
 * written the same by both. */
static int hexval(char c)
{
        return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : 0;
}

static void rec_core_json(po_dynbuf_t *b, const char *s, size_t len)
{
        size_t i = 0, run = 0;

        while (i < len) {
                if (s[i] == '\\' && i + 5 < len && s[i + 1] == 'u') {
                        po_dynbuf_add(b, s + run, i - run);
                        rec_esc(
                            b, (unsigned char)(hexval(s[i + 4]) << 4 | hexval(s[i + 5])));
                        i += 6;
                        run = i;
                } else {
                        i += s[i] == '\\' ? 2 : 1;
                }
        }
        po_dynbuf_add(b, s + run, len - run);
}

/* The record's JSON text in b: {"at", "token", "token_id", "outcome",
 * "customer_id"?, "channel"?, "codes"?, and with a result "discount_total",
 * "applied", "rejected"}. Returns 0, -1 when it cannot be written (as
 * json_pack / json_dumps failing). */
static int rec_write(po_dynbuf_t *b, admin_req_t *r, const attempt_t *a)
{
        char at[40], id[24];
        size_t i;
        json_t *e;

        if (po_utf8_bad(r->who.name, strlen(r->who.name)))
                return -1; /* json_pack refuses it */
        admin_fmt_time(admin_now_us(), at, sizeof(at));
        po_dynbuf_reset(b);
        po_dynbuf_add(b, "{\"at\":", 6);
        rec_str(b, at, strlen(at));
        rec_key(b, "token");
        rec_str(b, r->who.name, strlen(r->who.name));
        rec_key(b, "token_id");
        po_dynbuf_add(
            b, id, (size_t)snprintf(id, sizeof(id), "%lld", (long long)r->who.token_id));
        rec_key(b, "outcome");
        rec_str(b, a->outcome, strlen(a->outcome));
        if (a->customer) {
                rec_key(b, "customer_id");
                rec_str(b, a->customer, strlen(a->customer));
        }
        if (a->channel) {
                rec_key(b, "channel");
                rec_str(b, a->channel, strlen(a->channel));
        }
        if (a->codes) {
                int plain = json_is_array(a->codes);

                json_array_foreach(a->codes, i, e) plain = plain && json_is_string(e);
                rec_key(b, "codes");
                if (plain) {
                        po_dynbuf_add(b, "[", 1);
                        json_array_foreach(a->codes, i, e)
                        {
                                if (i)
                                        po_dynbuf_add(b, ",", 1);
                                rec_str(b, json_string_value(e), json_string_length(e));
                        }
                        po_dynbuf_add(b, "]", 1);
                } else {
                        char *t = json_dumps(a->codes, JSON_COMPACT | JSON_ENCODE_ANY);

                        if (!t)
                                return -1;
                        po_dynbuf_add(b, t, strlen(t));
                        free(t);
                }
        }
        if (a->has_result) {
                rec_key(b, "discount_total");
                po_dynbuf_add(b, a->discount_total, a->discount_total_len);
                rec_key(b, "applied");
                rec_core_json(b, a->applied, a->applied_len);
                rec_key(b, "rejected");
                rec_core_json(b, a->rejected, a->rejected_len);
        }
        po_dynbuf_add(b, "}", 1);
        return b->failed ? -1 : 0;
}

static void log_attempt(admin_req_t *r, attempt_t *a)
{
        po_dynbuf_t *b = &r->w->vbuf;
        const char *key = a->customer ? a->customer : r->who.name;

        if (rec_write(b, r, a) || admin_produce(r->app, r->app->set.attempts_topic, key,
                                                strlen(key), b->data, b->len, NULL))
                admin_count(r->app, "promo_admin_attempts_dropped_total",
                            "Checkout attempt records that could not be queued.", NULL,
                            1);
        if (b->cap > VBUF_KEEP)
                po_dynbuf_release(b);
        admin_count(r->app, "promo_admin_validate_total",
                    "Checkout validations by outcome.",
                    strcmp(a->outcome, "ok") == 0             ? "outcome=\"ok\""
                    : strcmp(a->outcome, "failed") == 0       ? "outcome=\"failed\""
                    : strcmp(a->outcome, "rate_limited") == 0 ? "outcome=\"rate_limited\""
                                                              : "outcome=\"error\"",
                    1);
}

/* ---- rate limits ---- */

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

/* ---- the case's live data ---- */

/* What the case needs and what was found. */
typedef struct vcase {
        const char *customer;
        const char *uniq[PO_PRICING_MAX_CODES];
        size_t nu, nl;
        json_t *defjs[PO_PRICING_MAX_CODES]; /* owned references; NULL = no code */
        int crm_known;
        const char *tier;
        int64_t total[PO_PRICING_MAX_CODES], bycust[PO_PRICING_MAX_CODES];
        /* Per line, set before they are read (not cleared: 20 KiB). */
        const char *skus[PO_PRICING_MAX_LINES];
        int has_stock[PO_PRICING_MAX_LINES];
        int64_t stock[PO_PRICING_MAX_LINES];
} vcase_t;

static void vcase_release(vcase_t *v)
{
        size_t i;

        for (i = 0; i < v->nu; i++)
                json_decref(v->defjs[i]);
}

/* The codes (normalized, valid, unique) and skus of the case. Returns 0, 1
 * when the case itself is bad (po_calcjson says why), -1 out of memory. */
static int vcase_prepare(vcase_t *v, json_t *in, po_arena_t *arena)
{
        json_t *codes = json_object_get(in, "codes"),
               *lines = json_object_get(in, "lines"), *e;
        size_t i, j;

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
                for (j = 0; j < v->nu; j++)
                        if (strcmp(v->uniq[j], norm) == 0)
                                break;
                if (j < v->nu)
                        continue;
                v->uniq[v->nu] = po_arena_strndup(arena, norm, n);
                if (!v->uniq[v->nu++])
                        return -1;
        }
        json_array_foreach(lines, i, e)
        {
                json_t *sku = str_member(e, "sku");

                if (!json_is_object(e) || !sku || strlen(json_string_value(sku)) > 256)
                        return 1;
                v->skus[v->nl++] = json_string_value(sku);
        }
        return 0;
}

/* RESP, written straight into the pipeline buffer. */
static void resp_num(po_dynbuf_t *b, char kind, size_t n)
{
        char t[24];
        size_t i = sizeof(t);

        t[--i] = '\n';
        t[--i] = '\r';
        do
                t[--i] = (char)('0' + n % 10);
        while ((n /= 10) != 0);
        t[--i] = kind;
        po_dynbuf_add(b, t + i, sizeof(t) - i);
}

/* One argument: prefix followed by s (either may be ""). */
static void resp_arg(po_dynbuf_t *b, const char *prefix, const char *s)
{
        size_t p = strlen(prefix), n = strlen(s);

        resp_num(b, '$', p + n);
        po_dynbuf_add(b, prefix, p);
        po_dynbuf_add(b, s, n);
        po_dynbuf_add(b, "\r\n", 2);
}

static void resp_get(po_dynbuf_t *b, const char *prefix, const char *key)
{
        resp_num(b, '*', 2);
        resp_arg(b, "", "GET");
        resp_arg(b, prefix, key);
}

static void resp_hget(po_dynbuf_t *b, const char *prefix, const char *key,
                      const char *field)
{
        resp_num(b, '*', 3);
        resp_arg(b, "", "HGET");
        resp_arg(b, prefix, key);
        resp_arg(b, "", field);
}

/* The replies of the request's one pipeline. */
typedef struct vpipe {
        redisReply **rep;
        size_t n, nread;
        size_t refs;  /* index of the first reference-data HGET; 0 = none sent */
        size_t usage; /* index of the usage EXEC; 0 = none sent */
} vpipe_t;

static void vpipe_release(vpipe_t *p)
{
        size_t i;

        for (i = 0; i < p->nread; i++)
                if (p->rep[i])
                        freeReplyObject(p->rep[i]);
        p->nread = 0;
}

/* Sends the rate-limit GETs and, when with_refs, the reads of po_refdata_fetch
 * and (with a marker) of po_usage_read, then reads every reply it can. */
static int vpipe_run(admin_req_t *r, vpipe_t *p, const vcase_t *v, const char *tk,
                     const char *ck, int with_refs, po_arena_t *arena)
{
        admin_worker_t *w = r->w;
        po_dynbuf_t *b = &w->vbuf;
        size_t i, n = 0;

        po_dynbuf_reset(b);
        resp_get(b, "", tk);
        n++;
        if (ck) {
                resp_get(b, "", ck);
                n++;
        }
        p->refs = p->usage = 0;
        if (with_refs) {
                p->refs = n;
                for (i = 0; i < v->nu; i++)
                        resp_hget(b, "promo:code:", v->uniq[i], "d");
                if (v->customer)
                        resp_hget(b, "promo:customer:", v->customer, "d");
                for (i = 0; i < v->nl; i++)
                        resp_hget(b, "promo:stock:", v->skus[i], "d");
                n += v->nu + (v->customer ? 1 : 0) + v->nl;
        }
        if (with_refs && v->nu && w->usage.marker[0]) {
                /* The reads of po_usage_read's script, as atomic as it is. The
                 * reservations it subtracts are those of VALIDATE_ORDER_ID,
                 * which never holds any. */
                resp_num(b, '*', 1);
                resp_arg(b, "", "MULTI");
                resp_get(b, "", "promo:usage:ready");
                for (i = 0; i < v->nu; i++) {
                        resp_get(b, "promo:usage:total:", v->uniq[i]);
                        if (v->customer)
                                resp_hget(b, "promo:usage:cust:", v->uniq[i],
                                          v->customer);
                }
                resp_num(b, '*', 1);
                resp_arg(b, "", "EXEC");
                n += 2 + 1 + v->nu * (v->customer ? 2 : 1);
                p->usage = n - 1;
        }
        p->n = n;
        p->nread = 0;
        p->rep = po_arena_alloc(arena, n * sizeof(*p->rep));
        if (!p->rep || b->failed ||
            redisAppendFormattedCommand(w->rc, b->data, b->len) != REDIS_OK)
                return -1;
        if (b->cap > VBUF_KEEP)
                po_dynbuf_release(b);
        for (i = 0; i < n; i++) {
                if (redisGetReply(w->rc, (void **)&p->rep[i]) != REDIS_OK)
                        break;
                p->nread++;
        }
        return 0;
}

/* 1 when the token or the customer is over its limit, 0 when not, -1 when
 * the counters could not be read (503 set). */
static int rl_over(admin_req_t *r, const vpipe_t *p, int with_ck)
{
        size_t i, n = with_ck ? 2 : 1;
        int over = 0;

        for (i = 0; i < n; i++)
                if (i >= p->nread || !p->rep[i] ||
                    (p->rep[i]->type != REDIS_REPLY_STRING &&
                     p->rep[i]->type != REDIS_REPLY_NIL)) {
                        admin_error(r, 503, "unavailable",
                                    "redis: rate limits unreadable");
                        return -1;
                }
        if (p->rep[0]->type == REDIS_REPLY_STRING &&
            atoll(p->rep[0]->str) >= r->app->set.rl_token_max)
                over = 1;
        if (with_ck && p->rep[1]->type == REDIS_REPLY_STRING &&
            atoll(p->rep[1]->str) >= r->app->set.rl_customer_max)
                over = 2;
        return over;
}

/* The definition JSON of code from its Redis entry text, through the
 * worker's cache. Returns a new reference, or NULL with *why = 1 when the
 * entry does not parse (po_refdata_fetch then reads PostgreSQL), 2 when it
 * cannot be turned into JSON. */
static json_t *def_json(admin_worker_t *w, const char *code, const char *text, size_t len,
                        po_arena_t *arena, int *why)
{
        admin_defcache_t *slot = NULL;
        po_codedef_t cd;
        po_dynbuf_t js;
        char err[256];
        json_t *d;
        size_t i;

        for (i = 0; i < ADMIN_DEFCACHE_SIZE; i++)
                if (w->defcache[i].text && strcmp(w->defcache[i].code, code) == 0) {
                        slot = &w->defcache[i];
                        if (slot->len == len && memcmp(slot->text, text, len) == 0)
                                return json_incref(slot->def);
                        break;
                }
        if (po_codedef_from_json(text, len, arena, &cd, err, sizeof(err)) ||
            strcmp(cd.def.code, code) != 0) {
                *why = 1;
                return NULL;
        }
        po_dynbuf_init(&js, 1u << 20);
        d = po_codedef_to_json(&cd, &js) == PO_OK ? json_loadb(js.data, js.len, 0, NULL)
                                                  : NULL;
        po_dynbuf_release(&js);
        if (!d) {
                *why = 2;
                return NULL;
        }
        if (!slot)
                slot = &w->defcache[w->defcache_next++ % ADMIN_DEFCACHE_SIZE];
        free(slot->text);
        json_decref(slot->def);
        slot->text = malloc(len ? len : 1);
        if (!slot->text) {
                slot->def = NULL;
                return d;
        }
        memcpy(slot->text, text, len);
        slot->len = len;
        snprintf(slot->code, sizeof(slot->code), "%s", code);
        slot->def = json_incref(d);
        return d;
}

/* The reference data from the pipeline's HGETs, read as po_refdata_fetch
 * reads them. Returns 0 when everything was found in Redis, 1 when
 * po_refdata_fetch must be asked (a miss, a bad entry, an error), -1 with
 * 500 set when a definition cannot be turned into JSON. */
static int refs_from_pipe(admin_req_t *r, vcase_t *v, const vpipe_t *p, po_arena_t *arena)
{
        size_t i, k = p->refs, hits = 0;
        int why = 0;

        if (!p->refs || p->nread < p->refs + v->nu + (v->customer ? 1 : 0) + v->nl)
                return 1;
        for (i = 0; i < v->nu + (v->customer ? 1 : 0) + v->nl; i++)
                if (p->rep[k + i]->type != REDIS_REPLY_STRING)
                        return 1; /* a miss or an error */
        for (i = 0; i < v->nl; i++) {
                const redisReply *e = p->rep[k + v->nu + (v->customer ? 1 : 0) + i];
                char *end;

                v->has_stock[i] = 0;
                if (e->len > 0) {
                        long long n = strtoll(e->str, &end, 10);

                        if (*end || n < 0)
                                return 1; /* garbage in the cache */
                        v->has_stock[i] = 1;
                        v->stock[i] = n;
                }
                hits++;
        }
        if (v->customer) {
                const redisReply *e = p->rep[k + v->nu];

                v->crm_known = 1;
                v->tier = e->len > 0 ? po_arena_strndup(arena, e->str, e->len) : NULL;
                if (e->len > 0 && !v->tier)
                        return 1;
                hits++;
        }
        for (i = 0; i < v->nu; i++) {
                const redisReply *e = p->rep[k + i];

                if (e->len > 0) {
                        v->defjs[i] =
                            def_json(r->w, v->uniq[i], e->str, e->len, arena, &why);
                        if (why == 1)
                                return 1;
                        if (why == 2) {
                                admin_error(r, 500, "internal",
                                            "definition of %s unusable", v->uniq[i]);
                                return -1;
                        }
                }
                hits++;
        }
        r->w->stats.redis_hits += hits;
        return 0;
}

/* po_refdata_fetch, for what the pipeline could not answer. Returns 0 or -1
 * with 503 / 500 set. */
static int refs_fetch(admin_req_t *r, vcase_t *v, po_arena_t *arena)
{
        po_codedef_t cds[PO_PRICING_MAX_CODES];
        int has_def[PO_PRICING_MAX_CODES];
        char errstr[300];
        size_t i;

        for (i = 0; i < v->nu; i++) {
                json_decref(v->defjs[i]);
                v->defjs[i] = NULL;
        }
        memset(has_def, 0, sizeof(has_def));
        if (po_refdata_fetch(r->w->rc, r->w->pg, arena, v->uniq, v->nu, cds, has_def,
                             v->customer, &v->tier, &v->crm_known, v->skus, v->nl,
                             v->stock, v->has_stock, &r->w->stats, errstr,
                             sizeof(errstr))) {
                admin_error(r, 503, "unavailable", "reference data: %s", errstr);
                return -1;
        }
        for (i = 0; i < v->nu; i++) {
                po_dynbuf_t js;

                if (!has_def[i])
                        continue;
                po_dynbuf_init(&js, 1u << 20);
                v->defjs[i] = po_codedef_to_json(&cds[i], &js) == PO_OK
                                  ? json_loadb(js.data, js.len, 0, NULL)
                                  : NULL;
                po_dynbuf_release(&js);
                if (!v->defjs[i]) {
                        admin_error(r, 500, "internal", "definition of %s unusable",
                                    v->uniq[i]);
                        return -1;
                }
        }
        return 0;
}

/* A counter's value as the script's tonumber(... or '0') gives it; -1 when
 * it is not a plain integer (po_usage_read is asked then). */
static int64_t counter(const redisReply *e)
{
        char *end;
        long long n;

        if (e->type == REDIS_REPLY_NIL)
                return 0;
        if (e->type != REDIS_REPLY_STRING || e->len == 0)
                return -1;
        n = strtoll(e->str, &end, 10);
        return *end || n < 0 ? -1 : n;
}

/* The usage counts from the pipeline's EXEC: 0 when read, 1 when not (no
 * marker, the marker moved, anything odd). */
static int usage_from_pipe(admin_req_t *r, vcase_t *v, const vpipe_t *p)
{
        const redisReply *x, *m;
        size_t i, per = v->customer ? 2 : 1;

        if (!p->usage || p->nread <= p->usage)
                return 1;
        x = p->rep[p->usage];
        if (x->type != REDIS_REPLY_ARRAY || x->elements != 1 + per * v->nu)
                return 1;
        m = x->element[0];
        if (m->type != REDIS_REPLY_STRING || strlen(r->w->usage.marker) != m->len ||
            memcmp(m->str, r->w->usage.marker, m->len) != 0) {
                r->w->usage.marker[0] = '\0'; /* po_usage_read's TIMEOUT */
                return 1;
        }
        for (i = 0; i < v->nu; i++) {
                v->total[i] = counter(x->element[1 + per * i]);
                v->bycust[i] = v->customer ? counter(x->element[2 + per * i]) : 0;
                if (v->total[i] < 0 || v->bycust[i] < 0)
                        return 1;
        }
        return 0;
}

/* po_usage_ready + po_usage_read of the codes with a definition, as before
 * the pipeline. Returns 0 or -1 with 503 set. */
static int usage_fetch(admin_req_t *r, vcase_t *v)
{
        const char *dc[PO_PRICING_MAX_CODES];
        int64_t total[PO_PRICING_MAX_CODES], bycust[PO_PRICING_MAX_CODES];
        size_t i, nd = 0;
        char errstr[300];
        po_err_t err = PO_OK;
        int tries;

        for (i = 0; i < v->nu; i++)
                if (v->defjs[i])
                        dc[nd++] = v->uniq[i];
        for (tries = 0; tries < 3; tries++) {
                if (!r->w->usage.marker[0] &&
                    po_usage_ready(&r->w->usage, r->w->rc, r->w->pg, 3000, errstr,
                                   sizeof(errstr)))
                        break;
                err =
                    po_usage_read(&r->w->usage, r->w->rc, VALIDATE_ORDER_ID, v->customer,
                                  dc, nd, total, bycust, errstr, sizeof(errstr));
                if (err != PO_ERR_TIMEOUT)
                        break;
                r->w->usage.marker[0] = '\0';
        }
        if (!r->w->usage.marker[0] || err) {
                r->w->usage.marker[0] = '\0';
                admin_error(r, 503, "unavailable", "usage counters: %s", errstr);
                return -1;
        }
        for (i = 0, nd = 0; i < v->nu; i++)
                if (v->defjs[i]) {
                        v->total[i] = total[nd];
                        v->bycust[i] = bycust[nd++];
                }
        return 0;
}

/* Fills the case's definitions, usage, stock, tier, now and policy from
 * the live data in v. */
static void fill_case(admin_req_t *r, json_t *in, const vcase_t *v)
{
        json_t *lines = json_object_get(in, "lines"),
               *cust = json_object_get(in, "customer");
        json_t *defs = json_array(), *usage = json_object(), *e, *u;
        size_t i;

        for (i = 0; i < v->nu; i++) {
                if (!v->defjs[i])
                        continue;
                json_array_append(defs, v->defjs[i]);
                u = json_object();
                json_object_set_new(u, "total", json_integer(v->total[i]));
                json_object_set_new(u, "customer", json_integer(v->bycust[i]));
                json_object_set_new(usage, v->uniq[i], u);
        }
        json_object_set_new(in, "definitions", defs);
        json_object_set_new(in, "usage", usage);
        json_array_foreach(lines, i, e)
        {
                if (v->has_stock[i])
                        json_object_set_new(e, "stock", json_integer(v->stock[i]));
                else
                        json_object_del(e, "stock"); /* only live stock counts */
        }
        /* The CRM's tier when the CRM knows the customer (docs/validator.md). */
        if (v->crm_known && json_is_object(cust)) {
                if (v->tier)
                        json_object_set_new(cust, "tier", json_string(v->tier));
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
}

/* The live data of the case: one pipeline, then the fallbacks. Returns 0,
 * -1 with the response set (503, 500) or, out of memory, not set. */
static int live_data(admin_req_t *r, vcase_t *v, const vpipe_t *p, po_arena_t *arena)
{
        size_t i, nd = 0;
        int rc;

        if (admin_worker_pg(r))
                return -1;
        rc = refs_from_pipe(r, v, p, arena);
        if (rc < 0 || (rc > 0 && refs_fetch(r, v, arena)))
                return -1;
        for (i = 0; i < v->nu; i++)
                nd += v->defjs[i] ? 1 : 0;
        if (nd && usage_from_pipe(r, v, p) && usage_fetch(r, v))
                return -1;
        return 0;
}

/* The 422 of a case po_calcjson refused, from its error object. */
static void bad_case(admin_req_t *r, admin_fields_t *f, const po_dynbuf_t *out)
{
        json_t *res = json_loadb(out->data, out->len, 0, NULL);
        const char *msg =
            json_string_value(json_object_get(json_object_get(res, "error"), "message"));
        char field[96];
        size_t n = msg ? strcspn(msg, ":") : 0;

        snprintf(field, sizeof(field), "%.*s", (int)(n < 90 ? n : 90), msg ? msg : "");
        admin_field(f, msg && msg[n] == ':' ? field : "body", "%s",
                    msg && msg[n] == ':' ? msg + n + 2 : (msg ? msg : "bad case"));
        admin_error_fields(r, f, "the case breaks PRICING_SPEC.md (BAD_INPUT)");
        json_decref(res);
}

void h_validate(admin_req_t *r)
{
        json_t *in = admin_body_json(r), *cust;
        attempt_t a = {.outcome = "bad_input"};
        char tk[300], ck[300];
        int64_t retry;
        po_arena_t arena;
        po_dynbuf_t *out = &r->w->vout;
        po_calcjson_spans_t sp;
        admin_fields_t f;
        vcase_t v;
        vpipe_t p = {0};
        int over, prep;

        po_arena_init(&arena, ARENA_LIMIT);
        po_dynbuf_reset(out);
        admin_fields_init(&f);
        memset(&v, 0, offsetof(vcase_t, skus));
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
        v.customer = a.customer;
        prep = vcase_prepare(&v, in, &arena);
        rl_keys(r, a.customer, tk, ck, sizeof(tk), &retry);
        if (vpipe_run(r, &p, &v, tk, a.customer ? ck : NULL, prep == 0, &arena)) {
                admin_error(r, 503, "unavailable", "redis: rate limits unreadable");
                a.outcome = "unavailable";
                goto out;
        }
        over = rl_over(r, &p, a.customer != NULL);
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
        if (prep < 0 || (prep == 0 && live_data(r, &v, &p, &arena))) {
                a.outcome = "unavailable";
                goto out;
        }
        vpipe_release(&p);
        if (prep == 0)
                fill_case(r, in, &v);
        if (po_calcjson_process_tree(r->w->cj, in, 0, out, &sp)) {
                admin_error(r, 500, "internal", "out of memory");
                a.outcome = "unavailable";
                goto out;
        }
        if (sp.error) {
                bad_case(r, &f, out);
                goto out;
        }
        a.has_result = 1;
        a.discount_total = out->data + sp.discount_total[0];
        a.discount_total_len = sp.discount_total[1] - sp.discount_total[0];
        a.applied = out->data + sp.applied[0];
        a.applied_len = sp.applied[1] - sp.applied[0];
        a.rejected = out->data + sp.rejected[0];
        a.rejected_len = sp.rejected[1] - sp.rejected[0];
        a.outcome = a.rejected_len > 2 ? "failed" : "ok";
        if (strcmp(a.outcome, "failed") == 0)
                rl_count(r, tk, a.customer ? ck : NULL);
        /* The result as the core wrote it. */
        po_dynbuf_reset(&r->out);
        po_dynbuf_add(&r->out, out->data, out->len);
        r->status = 200;
        r->ctype = "application/json";
out:
        log_attempt(r, &a);
out_nolog:
        vpipe_release(&p);
        vcase_release(&v);
        json_decref(in);
        admin_fields_release(&f);
        if (out->cap > VBUF_KEEP)
                po_dynbuf_release(out);
        po_arena_release(&arena);
}
