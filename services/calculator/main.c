/* calculator: prices every validated order and records each code decision.
 *
 * Consumes orders.validated (Avro ValidatedOrder), rebuilds the pricing case
 * from what the validator decided with (definitions, usage counts, tier,
 * stock: nothing is read from Redis), runs the pricing core (allocation, tax
 * recalculation, totals), checks the plan is the validator's, and produces in
 * one Kafka transaction:
 *   orders.priced  the PricedOrder (totals, per-line results, a receipt line
 *                  per applied code, the rejected codes), keyed by order id;
 *   promo.usage    one UsageEvent per code decision, applied or rejected with
 *                  its reason (rejections matter for fraud analysis), keyed
 *                  by order id; event ids "<order id>/<request index>/<code>"
 *                  are deterministic, so the audit trail stores each once.
 * A plan that differs from the validator's (a definition or core changed in
 * between) is a permanent failure: PLAN_MISMATCH in calculator.dlq. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "po/cart.h"
#include "po/config.h"
#include "po/log.h"
#include "po/messages.h"
#include "po/pricing.h"
#include "po/stage.h"

#define ARENA_LIMIT (16u << 20)

typedef struct calculator {
        po_service_t *svc;
        po_avro_t *avro;
        po_pricing_ws_t *ws;
        po_cart_builder_t cart;
        po_dynbuf_t out;
        const char *priced_topic, *usage_topic;
} calculator_t;

static int64_t now_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static po_stage_result_t fail_with(po_stage_failure_t *fail, po_stage_result_t r,
                                   const char *reason, const char *why)
{
        snprintf(fail->reason, sizeof(fail->reason), "%s", reason);
        snprintf(fail->error, sizeof(fail->error), "%s", why);
        return r;
}

/* The pricing case of a validated order: each definition once, with the
 * usage the validator saw. */
static po_err_t build_case(calculator_t *c, po_validated_t *vo, char *errstr, size_t size)
{
        po_order_t *o = &vo->order;
        po_code_def_t defs[PO_PRICING_MAX_CODES];
        int64_t *stock = NULL;
        int *has_stock = NULL;
        size_t nd = 0, i, k;

        if (vo->decision_count != o->code_count || o->code_count > PO_PRICING_MAX_CODES) {
                snprintf(errstr, size, "%zu decisions for %zu requested codes",
                         vo->decision_count, o->code_count);
                return PO_ERR_BAD_INPUT;
        }
        for (i = 0; i < vo->decision_count; i++) {
                const po_decision_t *d = &vo->decisions[i];

                if (!d->has_definition)
                        continue;
                for (k = 0; k < nd; k++)
                        if (strcmp(defs[k].code, d->definition.def.code) == 0)
                                break;
                if (k < nd)
                        continue;
                defs[nd] = d->definition.def;
                defs[nd].used_total = d->has_usage ? d->usage_total : 0;
                defs[nd].used_by_customer = d->has_usage ? d->usage_customer : 0;
                nd++;
        }
        if (vo->line_stock_count) {
                if (vo->line_stock_count != o->line_count) {
                        snprintf(errstr, size, "%zu stock entries for %zu lines",
                                 vo->line_stock_count, o->line_count);
                        return PO_ERR_BAD_INPUT;
                }
                stock = po_arena_alloc(&o->arena, o->line_count * sizeof(*stock));
                has_stock = po_arena_alloc(&o->arena, o->line_count * sizeof(*has_stock));
                if (!stock || !has_stock)
                        return PO_ERR_NOMEM;
                for (i = 0; i < o->line_count; i++) {
                        stock[i] = vo->line_stock[i].stock;
                        has_stock[i] = vo->line_stock[i].has_stock;
                }
        }
        return po_cart_build(&c->cart, o, stock, has_stock, NULL, defs, nd, vo->stacking,
                             vo->rounding, errstr, size);
}

static po_stage_result_t process(po_stage_t *st, const rd_kafka_message_t *msg,
                                 po_stage_failure_t *fail, void *opaque)
{
        calculator_t *c = opaque;
        po_validated_t vo;
        po_order_t *o = &vo.order;
        po_pricing_result_t res;
        po_priced_t p;
        char errstr[512];
        po_stage_result_t result = PO_STAGE_OK;
        size_t i, k;

        memset(&vo, 0, sizeof(vo));
        po_order_init(&vo.order, ARENA_LIMIT);
        if (po_validated_decode(c->avro, msg->payload, msg->len, &vo, errstr,
                                sizeof(errstr))) {
                result =
                    fail_with(fail, PO_STAGE_PERMANENT, "BAD_VALIDATED_ORDER", errstr);
                goto out;
        }
        fail->priority = po_order_value(o) / 100 + 1;
        if (build_case(c, &vo, errstr, sizeof(errstr)) ||
            po_pricing_run(c->ws, &c->cart.cart, &res, errstr, sizeof(errstr))) {
                result =
                    fail_with(fail, PO_STAGE_PERMANENT, "BAD_VALIDATED_ORDER", errstr);
                goto out;
        }
        /* The plan must be the one the validator reserved. */
        for (i = 0; i < vo.decision_count; i++) {
                int applied = 0;

                for (k = 0; k < res.applied_count; k++)
                        applied |= res.applied[k].request_index == i;
                if (applied != vo.decisions[i].applied) {
                        snprintf(errstr, sizeof(errstr),
                                 "code %s: the validator %s it, pricing %s it",
                                 vo.decisions[i].code,
                                 vo.decisions[i].applied ? "applied" : "rejected",
                                 applied ? "applies" : "rejects");
                        result =
                            fail_with(fail, PO_STAGE_PERMANENT, "PLAN_MISMATCH", errstr);
                        goto out;
                }
        }

        memset(&p, 0, sizeof(p));
        p.channel = o->channel;
        p.account = o->account;
        p.external_id = o->external_id;
        p.order_id = o->order_id;
        memcpy(p.currency, o->currency, sizeof(p.currency));
        p.subtotal = res.subtotal;
        p.discount_total = res.discount_total;
        p.tax_total = res.tax_total;
        p.tax_total_before = res.tax_total_before;
        p.grand_total = res.grand_total;
        p.lines = po_arena_alloc(&o->arena, o->line_count * sizeof(*p.lines));
        p.receipt =
            po_arena_alloc(&o->arena, (res.applied_count + 1) * sizeof(*p.receipt));
        p.rejected =
            po_arena_alloc(&o->arena, (res.rejected_count + 1) * sizeof(*p.rejected));
        if (!p.lines || !p.receipt || !p.rejected) {
                result =
                    fail_with(fail, PO_STAGE_PERMANENT, "TOO_LARGE", "out of memory");
                goto out;
        }
        p.line_count = o->line_count;
        for (i = 0; i < o->line_count; i++) {
                p.lines[i].line_id = o->lines[i].line_id;
                p.lines[i].subtotal = res.lines[i].subtotal;
                p.lines[i].discount = res.lines[i].discount;
                p.lines[i].net = res.lines[i].net;
                p.lines[i].tax = res.lines[i].tax;
                p.lines[i].total = res.lines[i].total;
                p.lines[i].available = res.lines[i].available;
        }
        p.receipt_count = res.applied_count;
        for (i = 0; i < res.applied_count; i++) {
                const po_applied_t *a = &res.applied[i];
                po_priced_receipt_t *r = &p.receipt[i];
                char desc[256];

                po_pricing_describe(a, &c->cart.cart, desc, sizeof(desc));
                r->code = res.normalized[a->request_index];
                r->description = po_arena_strndup(&o->arena, desc, strlen(desc));
                r->amount = a->amount;
                r->allocation_count = a->allocation_count;
                r->allocations = po_arena_alloc(&o->arena, (a->allocation_count + 1) *
                                                               sizeof(*r->allocations));
                if (!r->description || !r->allocations) {
                        result = fail_with(fail, PO_STAGE_PERMANENT, "TOO_LARGE",
                                           "out of memory");
                        goto out;
                }
                for (k = 0; k < a->allocation_count; k++) {
                        r->allocations[k].line_id =
                            o->lines[a->allocations[k].line].line_id;
                        r->allocations[k].amount = a->allocations[k].amount;
                }
        }
        p.rejected_count = res.rejected_count;
        for (i = 0; i < res.rejected_count; i++) {
                p.rejected[i].code = res.normalized[res.rejected[i].request_index];
                p.rejected[i].reason = po_reason_str(res.rejected[i].reason);
        }
        p.priced_at = now_us();
        po_dynbuf_reset(&c->out);
        if (po_priced_encode(c->avro, &p, &c->out, errstr, sizeof(errstr))) {
                result = fail_with(fail, PO_STAGE_PERMANENT, "UNENCODABLE", errstr);
                goto out;
        }
        if (po_stage_emit(st, c->priced_topic, o->order_id, strlen(o->order_id),
                          c->out.data, c->out.len, NULL))
                goto emit_failed;

        /* One usage event per code decision, in request order. */
        for (i = 0; i < vo.decision_count; i++) {
                const po_decision_t *d = &vo.decisions[i];
                po_usage_event_t e;
                char id[512];

                memset(&e, 0, sizeof(e));
                snprintf(id, sizeof(id), "%s/%zu/%s", o->order_id, i, d->code);
                e.event_id = id;
                e.order_id = o->order_id;
                e.channel = o->channel;
                e.account = o->account;
                e.code = d->code;
                e.customer_id = o->has_customer ? o->customer_id : NULL;
                e.applied = d->applied;
                e.reason = d->applied ? NULL : d->reason;
                for (k = 0; k < res.applied_count && d->applied; k++)
                        if (res.applied[k].request_index == i)
                                e.value_applied = res.applied[k].amount;
                memcpy(e.currency, o->currency, sizeof(e.currency));
                e.occurred_at = vo.validated_at;
                po_dynbuf_reset(&c->out);
                if (po_usage_encode(c->avro, &e, &c->out, errstr, sizeof(errstr))) {
                        result =
                            fail_with(fail, PO_STAGE_PERMANENT, "UNENCODABLE", errstr);
                        goto out;
                }
                if (po_stage_emit(st, c->usage_topic, o->order_id, strlen(o->order_id),
                                  c->out.data, c->out.len, NULL))
                        goto emit_failed;
        }
        goto out;
emit_failed:
        result = fail_with(fail, PO_STAGE_TRANSIENT, "EMIT_FAILED",
                           "could not queue an output");
out:
        po_order_release(&vo.order);
        return result;
}

int main(int argc, char **argv)
{
        static const po_service_def_t def = {
            .name = "calculator",
            .port_env = "PROMO_CALCULATOR_HTTP_PORT",
            .default_port = 58083,
            .deps = 1u << PO_DEP_KAFKA,
        };
        calculator_t c;
        po_stage_conf_t conf = {0};
        char errstr[512];
        int status = 2;

        if (argc > 1 && strcmp(argv[1], "--check") == 0)
                return po_service_main(&def, argc, argv);
        memset(&c, 0, sizeof(c));
        po_cart_builder_init(&c.cart);
        po_dynbuf_init(&c.out, 64u << 20);
        c.svc = po_service_new(&def, errstr, sizeof(errstr));
        if (!c.svc) {
                fprintf(stderr, "calculator: %s\n", errstr);
                return 2;
        }
        c.priced_topic = po_env_or("PROMO_CALCULATOR_OUTPUT", "orders.priced");
        c.usage_topic = po_env_or("PROMO_USAGE_TOPIC", "promo.usage");
        c.ws = po_pricing_ws_new();
        c.avro = po_avro_new(errstr, sizeof(errstr));
        if (!c.ws || !c.avro) {
                po_log_error("start: %s", c.avro ? "out of memory" : errstr);
                goto out;
        }
        conf.input_topic = po_env_or("PROMO_CALCULATOR_INPUT", "orders.validated");
        conf.committed_input = 1; /* written by a transactional stage */
        conf.dlq_topic = po_env_or("PROMO_CALCULATOR_DLQ", "calculator.dlq");
        conf.group_id = getenv("PROMO_CALCULATOR_GROUP");
        conf.process = process;
        conf.opaque = &c;
        status = po_stage_serve(c.svc, &conf);
out:
        po_avro_destroy(c.avro);
        po_pricing_ws_destroy(c.ws);
        po_cart_builder_release(&c.cart);
        po_dynbuf_release(&c.out);
        po_service_destroy(c.svc);
        return status;
}
