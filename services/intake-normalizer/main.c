/* intake-normalizer: the one governed entry flow for every sales channel.
 * Consumes orders.raw (payload bytes; headers "channel" and "account"),
 * turns each payload into the canonical Order with its channel's adapter and
 * the channel/account profile, drops duplicates (same channel + external
 * order id), and produces the Avro Order to orders.canonical keyed by
 * order id. Rejections go to intake.dlq with a reason, the field at fault
 * and a priority score (see docs/intake.md). */
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "po/channel.h"
#include "po/config.h"
#include "po/log.h"
#include "po/order_avro.h"
#include "po/profile.h"
#include "po/stage.h"

#define INTAKE_ARENA_LIMIT (8u << 20)
#define DEDUPE_TTL_S (30 * 24 * 3600)

/* A raw message of the group being processed, normalized by prepare, with
 * the answer of its claim (pipelined with the group's other claims). */
typedef struct intake_slot {
        const rd_kafka_message_t *msg;
        po_order_t order;
        int normalized; /* order holds the result until process takes it */
        int claim;      /* as claim(); -1 also when prepare could not claim */
} intake_slot_t;

typedef struct intake {
        po_service_t *svc;
        po_avro_t *avro;
        po_profiles_t *profiles;
        redisContext *redis;
        po_dynbuf_t out;
        const char *output_topic;
        const char *duplicates_topic;
        intake_slot_t *slots;
        size_t nslots, cap_slots, next_slot;
} intake_t;

static int64_t now_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* A header's value as a NUL-terminated string in buf, or NULL. */
static const char *header(const rd_kafka_message_t *msg, const char *name, char *buf,
                          size_t size)
{
        rd_kafka_headers_t *h = NULL;
        const void *v;
        size_t len;

        if (rd_kafka_message_headers(msg, &h) ||
            rd_kafka_header_get_last(h, name, &v, &len) || !v || len == 0 ||
            len >= size || memchr(v, '\0', len))
                return NULL;
        memcpy(buf, v, len);
        buf[len] = '\0';
        return buf;
}

static int redis_ok(intake_t *in)
{
        const po_config_t *cfg = po_service_config(in->svc);
        struct timeval tv = {.tv_sec = 1};

        if (in->redis && !in->redis->err)
                return 1;
        if (in->redis)
                redisFree(in->redis);
        in->redis = redisConnectWithTimeout(cfg->redis_host, cfg->redis_port, tv);
        if (!in->redis || in->redis->err)
                return 0;
        redisSetTimeout(in->redis, tv);
        return 1;
}

/* The claim's owner: the position the message was first consumed from. A
 * message retried through orders.raw.retry.N carries that position, so a
 * retry after a claim is not mistaken for a duplicate of itself. */
static void owner_of(const rd_kafka_message_t *msg, char *owner, size_t size)
{
        char st[256], sp[16], so[24];

        if (header(msg, PO_HDR_SOURCE_TOPIC, st, sizeof(st)) &&
            header(msg, PO_HDR_SOURCE_PARTITION, sp, sizeof(sp)) &&
            header(msg, PO_HDR_SOURCE_OFFSET, so, sizeof(so)))
                snprintf(owner, size, "%s/%s/%s", st, sp, so);
        else
                snprintf(owner, size, "%s/%d/%lld", rd_kafka_topic_name(msg->rkt),
                         msg->partition, (long long)msg->offset);
}

/* Queues the claim of order_id (SET NX, or return the current owner). */
static int claim_append(intake_t *in, const char *order_id, const char *owner)
{
        return redisAppendCommand(in->redis, "SET promo:intake:seen:%s %s NX GET EX %d",
                                  order_id, owner, DEDUPE_TTL_S) == REDIS_OK
                   ? 0
                   : -1;
}

/* Reads a claim's reply: as claim(). */
static int claim_reply(intake_t *in, const char *owner)
{
        redisReply *r = NULL;
        int res = -1;

        if (redisGetReply(in->redis, (void **)&r) != REDIS_OK || !r)
                return -1;
        if (r->type == REDIS_REPLY_NIL)
                res = 1;
        else if (r->type == REDIS_REPLY_STRING)
                res = strcmp(r->str, owner) == 0;
        freeReplyObject(r);
        return res;
}

/* Claims order_id for this raw message. Returns 1 when the order is new (or
 * this very message claimed it before: a redelivery after an abort), 0 for a
 * duplicate from another raw message, -1 when Redis is unreachable. */
static int claim(intake_t *in, const char *order_id, const rd_kafka_message_t *msg)
{
        char owner[320];

        if (!redis_ok(in))
                return -1;
        owner_of(msg, owner, sizeof(owner));
        if (claim_append(in, order_id, owner))
                return -1;
        return claim_reply(in, owner);
}

/* Operators fix the costliest failures first: the order's value in major
 * units, weighted by the customer's tier and the channel. */
static int64_t priority(const po_order_t *o)
{
        int64_t value = po_order_value(o), tier = 1, channel = 1;
        int exp = o->currency[0] ? po_money_exponent(o->currency) : 2;
        static const int64_t pow10[] = {1, 10, 100, 1000};

        if (o->customer_tier) {
                if (strcmp(o->customer_tier, "platinum") == 0)
                        tier = 4;
                else if (strcmp(o->customer_tier, "gold") == 0)
                        tier = 3;
                else if (strcmp(o->customer_tier, "silver") == 0)
                        tier = 2;
        }
        if (o->channel &&
            (strcmp(o->channel, "web") == 0 || strcmp(o->channel, "mobile") == 0 ||
             strcmp(o->channel, "marketplace") == 0))
                channel = 2;
        value /= pow10[exp];
        if (value > 1000000000)
                value = 1000000000;
        return (value + 1) * tier * channel;
}

static po_stage_result_t reject(po_stage_failure_t *fail, const po_channel_reject_t *rej,
                                const po_order_t *o)
{
        snprintf(fail->reason, sizeof(fail->reason), "%s", rej->reason);
        snprintf(fail->error, sizeof(fail->error), "%s%s%s", rej->field,
                 rej->field[0] ? ": " : "", rej->message);
        fail->priority = priority(o);
        return PO_STAGE_PERMANENT;
}

/* The raw message as a canonical order in *o (initialised by the caller);
 * PO_STAGE_PERMANENT with *fail filled when it is rejected. */
static po_stage_result_t normalize(intake_t *in, const rd_kafka_message_t *msg,
                                   po_order_t *o, po_stage_failure_t *fail)
{
        char chbuf[64], acbuf[128];
        const char *channel = header(msg, "channel", chbuf, sizeof(chbuf));
        const char *account = header(msg, "account", acbuf, sizeof(acbuf));
        po_channel_ctx_t ctx;
        po_channel_reject_t rej;

        if (!channel) {
                po_channel_reject(&rej, "MISSING_CHANNEL", "header channel",
                                  "the raw order has no channel header");
                return reject(fail, &rej, o);
        }
        ctx.channel = channel;
        ctx.account = account ? account : "";
        ctx.received_at_us = now_us();
        ctx.profile = po_profiles_lookup(in->profiles, channel, ctx.account);
        if (po_channel_normalize(&ctx, msg->payload, msg->len, o, &rej)) {
                if (!rej.reason[0])
                        po_channel_reject(&rej, "INTERNAL", "", "out of memory");
                return reject(fail, &rej, o);
        }
        return PO_STAGE_OK;
}

static void group_reset(intake_t *in)
{
        size_t i;

        for (i = 0; i < in->nslots; i++)
                if (in->slots[i].normalized)
                        po_order_release(&in->slots[i].order);
        in->nslots = 0;
        in->next_slot = 0;
}

/* The stage's prepare hook: normalizes the group's raw orders and claims
 * them all in one pipelined Redis round trip, in the group's order (so a
 * duplicate within the group is told apart as one after the other would
 * be). Best effort: process claims on its own what is not claimed here. */
static void prepare(po_stage_t *st, rd_kafka_message_t *const *msgs, size_t n,
                    void *opaque)
{
        intake_t *in = opaque;
        char owner[320];
        size_t i;
        int ok;

        (void)st;
        group_reset(in);
        if (n > in->cap_slots) {
                intake_slot_t *s = realloc(in->slots, n * sizeof(*s));

                if (!s)
                        return;
                in->slots = s;
                in->cap_slots = n;
        }
        ok = redis_ok(in);
        for (i = 0; i < n; i++) {
                intake_slot_t *s = &in->slots[in->nslots++];
                po_stage_failure_t fail;

                memset(s, 0, sizeof(*s));
                s->msg = msgs[i];
                s->claim = -1;
                po_order_init(&s->order, INTAKE_ARENA_LIMIT);
                if (normalize(in, msgs[i], &s->order, &fail) != PO_STAGE_OK) {
                        /* process normalizes it again and routes it */
                        po_order_release(&s->order);
                        continue;
                }
                s->normalized = 1;
                if (ok) {
                        owner_of(msgs[i], owner, sizeof(owner));
                        s->claim = claim_append(in, s->order.order_id, owner) ? -1 : 2;
                }
        }
        for (i = 0; i < in->nslots; i++) {
                intake_slot_t *s = &in->slots[i];

                if (s->claim != 2)
                        continue;
                owner_of(s->msg, owner, sizeof(owner));
                s->claim = claim_reply(in, owner);
        }
}

/* The prefetch of msg, or NULL. */
static intake_slot_t *group_take(intake_t *in, const rd_kafka_message_t *msg)
{
        size_t i;

        for (i = in->next_slot; i < in->nslots; i++)
                if (in->slots[i].msg == msg) {
                        in->next_slot = i + 1;
                        return &in->slots[i];
                }
        return NULL;
}

static po_stage_result_t process(po_stage_t *st, const rd_kafka_message_t *msg,
                                 po_stage_failure_t *fail, void *opaque)
{
        intake_t *in = opaque;
        char err[256];
        intake_slot_t *slot = group_take(in, msg);
        po_channel_reject_t rej;
        po_stage_result_t res = PO_STAGE_OK;
        po_order_t o;
        int c = -1;

        if (slot && slot->normalized) {
                o = slot->order; /* ours now: released below */
                slot->normalized = 0;
                c = slot->claim;
        } else {
                po_order_init(&o, INTAKE_ARENA_LIMIT);
                res = normalize(in, msg, &o, fail);
                if (res != PO_STAGE_OK)
                        goto out;
        }
        if (c < 0)
                c = claim(in, o.order_id, msg);
        if (c < 0) {
                snprintf(fail->reason, sizeof(fail->reason), "REDIS_DOWN");
                snprintf(fail->error, sizeof(fail->error), "dedupe store unreachable: %s",
                         in->redis ? in->redis->errstr : "no connection");
                fail->priority = priority(&o);
                res = PO_STAGE_TRANSIENT;
                goto out;
        }
        if (c == 0) {
                /* Recorded, so reconciliation can account for every raw order. */
                char src[320], *js;
                json_t *dup;
                int bad;

                snprintf(src, sizeof(src), "%s/%d/%lld", rd_kafka_topic_name(msg->rkt),
                         msg->partition, (long long)msg->offset);
                dup = json_pack("{s:s, s:s}", "order_id", o.order_id, "source", src);
                js = dup ? json_dumps(dup, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
                json_decref(dup);
                bad = !js || po_stage_emit(st, in->duplicates_topic, o.order_id,
                                           strlen(o.order_id), js, strlen(js), NULL);
                free(js);
                if (bad) {
                        snprintf(fail->reason, sizeof(fail->reason), "EMIT_FAILED");
                        res = PO_STAGE_TRANSIENT;
                        goto out;
                }
                po_metrics_add(po_service_metrics(in->svc),
                               "promo_intake_duplicates_total",
                               "Raw orders dropped as duplicates.", NULL, 1);
                goto out;
        }
        po_dynbuf_reset(&in->out);
        if (po_order_encode(in->avro, &o, &in->out, err, sizeof(err))) {
                po_channel_reject(&rej, "UNENCODABLE", "", "%s", err);
                res = reject(fail, &rej, &o);
                goto out;
        }
        if (po_stage_emit(st, in->output_topic, o.order_id, strlen(o.order_id),
                          in->out.data, in->out.len, NULL)) {
                snprintf(fail->reason, sizeof(fail->reason), "EMIT_FAILED");
                res = PO_STAGE_TRANSIENT;
        }
out:
        po_order_release(&o);
        return res;
}

int main(int argc, char **argv)
{
        static const po_service_def_t def = {
            .name = "intake-normalizer",
            .port_env = "PROMO_INTAKE_HTTP_PORT",
            .default_port = 58081,
            .deps = (1u << PO_DEP_KAFKA) | (1u << PO_DEP_REDIS),
        };
        const char *profiles = getenv("PROMO_INTAKE_PROFILES");
        intake_t in = {0};
        po_stage_conf_t conf = {0};
        char errstr[512];
        int status = 2;

        if (argc > 1 && strcmp(argv[1], "--check") == 0)
                return po_service_main(&def, argc, argv);
        in.svc = po_service_new(&def, errstr, sizeof(errstr));
        if (!in.svc) {
                fprintf(stderr, "intake-normalizer: %s\n", errstr);
                return 2;
        }
        in.output_topic = po_env_or("PROMO_INTAKE_OUTPUT", "orders.canonical");
        in.duplicates_topic = po_env_or("PROMO_INTAKE_DUPLICATES", "orders.duplicates");
        po_dynbuf_init(&in.out, 64u << 20);
        in.profiles = po_profiles_load(profiles, errstr, sizeof(errstr));
        if (!in.profiles) {
                po_log_error("profiles: %s", errstr);
                goto out;
        }
        in.avro = po_avro_new(errstr, sizeof(errstr));
        if (!in.avro) {
                po_log_error("avro: %s", errstr);
                goto out;
        }
        conf.input_topic = po_env_or("PROMO_INTAKE_INPUT", "orders.raw");
        conf.dlq_topic = po_env_or("PROMO_INTAKE_DLQ", "intake.dlq");
        conf.process = process;
        conf.prepare = prepare;
        conf.opaque = &in;
        status = po_stage_serve(in.svc, &conf);
out:
        group_reset(&in);
        free(in.slots);
        if (in.redis)
                redisFree(in.redis);
        po_avro_destroy(in.avro);
        po_profiles_destroy(in.profiles);
        po_dynbuf_release(&in.out);
        po_service_destroy(in.svc);
        return status;
}
