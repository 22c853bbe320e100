/* validator: checks every canonical order's codes and reserves redemptions.
 *
 * Consumes orders.canonical (Avro Order), looks up the definitions of the
 * requested codes, the customer's CRM tier and the stock of each SKU (Redis,
 * PostgreSQL behind it: po/refdata.h), the usage counts (po/usage.h), runs
 * the spec's checks and stacking with the pricing core, and reserves every
 * applied code atomically (all or nothing; idempotent per order and code).
 * When a limit was reached by a concurrent order in between, the counts are
 * read again and the order priced again. It produces the ValidatedOrder
 * (the order, a decision per requested code, and the data each used) keyed
 * by order id to orders.validated.
 *
 * Durability: the reservations of a Kafka batch are written to PostgreSQL
 * (redemptions) before the batch commits, with the usage marker checked in
 * the same PostgreSQL transaction (see po/usage.h): a batch whose
 * reservations a Redis rebuild may have missed aborts and is validated again.
 *
 * Reference data: the compacted topics promo.codes (Avro CodeDefinition),
 * crm.customers and inventory.levels (JSON, docs/validator.md) are consumed
 * from their start into Redis on every turn of the loop. */
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "po/cart.h"
#include "po/config.h"
#include "po/log.h"
#include "po/messages.h"
#include "po/order_avro.h"
#include "po/pg.h"
#include "po/pricing.h"
#include "po/refbatch.h"
#include "po/refdata.h"
#include "po/stage.h"
#include "po/usage.h"

#define ARENA_LIMIT (16u << 20)
#define MAX_REPRICE 6
#define REFDATA_POLL_MAX 500
#define DEP_WAIT_MS 3000

/* An order of the group being processed, decoded by prepare, with the
 * usage counts of its codes read in the same pipeline. */
typedef struct group_slot {
        const rd_kafka_message_t *msg;
        po_order_t order;
        int decoded;  /* order holds the decoded message until process takes it */
        int usage_ok; /* total / bycust of codes, read under group_marker */
        const char *codes[PO_PRICING_MAX_CODES];
        size_t ncodes;
        int64_t total[PO_PRICING_MAX_CODES], bycust[PO_PRICING_MAX_CODES];
        /* The reservation prepare made for it, pipelined with the group's:
         * pre = 1 once its reply says granted or not (pre_granted), for the
         * codes pre_codes with their limits, which validate's first round
         * must want again for the answer to count. */
        int pre, pre_granted;
        size_t pre_n;
        const char *pre_codes[PO_PRICING_MAX_CODES];
        int64_t pre_lim[PO_PRICING_MAX_CODES], pre_clim[PO_PRICING_MAX_CODES];
} group_slot_t;

typedef struct redemption {
        char *order_id, *code, *customer, *reservation;
} redemption_t;

typedef struct validator {
        po_service_t *svc;
        po_metrics_t *metrics;
        po_avro_t *avro;
        redisContext *rc;
        PGconn *pg;
        po_usage_t usage;
        po_refdata_stats_t stats;
        po_pricing_ws_t *ws;
        po_cart_builder_t cart;
        po_dynbuf_t out, sql[4];
        po_stacking_t stacking;
        po_rounding_t rounding;
        const char *output_topic;
        /* The batch: its reservations and the marker they were made under. */
        redemption_t *batch;
        size_t nbatch, cap_batch;
        char batch_marker[96];
        int batch_tainted;
        /* Reference-data consumer. */
        rd_kafka_t *ref;
        const char *topic_codes, *topic_customers, *topic_stock;
        uint64_t ref_applied;
        /* The group of the stage's last poll (prepare). */
        group_slot_t *slots;
        size_t nslots, cap_slots, next_slot;
        /* The group's usage calls: one request per order, slot index of
         * each; sent PO_USAGE_GROUP_MAX orders per script call. */
        po_usage_req_t *ureq;
        size_t *ureq_slot;
        char group_marker[96];
        po_refbatch_t refs;
} validator_t;

static int64_t now_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void sleep_ms(int ms)
{
        nanosleep(
            &(struct timespec){.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L},
            NULL);
}

static void taint(validator_t *v)
{
        if (v->nbatch)
                v->batch_tainted = 1;
}

/* Redis and PostgreSQL connections, reconnecting when broken. */
static int redis_ok(validator_t *v, char *errstr, size_t size)
{
        const po_config_t *cfg = po_service_config(v->svc);
        struct timeval tv = {.tv_sec = 2};

        if (v->rc && !v->rc->err)
                return 1;
        if (v->rc) {
                redisFree(v->rc);
                v->rc = NULL;
                v->usage.marker[0] = '\0';
                taint(v); /* the Redis we reserved in may be gone */
        }
        v->rc = redisConnectWithTimeout(cfg->redis_host, cfg->redis_port, tv);
        if (!v->rc || v->rc->err) {
                snprintf(errstr, size, "redis: %s",
                         v->rc ? v->rc->errstr : "out of memory");
                if (v->rc) {
                        redisFree(v->rc);
                        v->rc = NULL;
                }
                return 0;
        }
        redisSetTimeout(v->rc, tv);
        return 1;
}

static int pg_ok(validator_t *v, char *errstr, size_t size)
{
        if (v->pg && PQstatus(v->pg) == CONNECTION_OK)
                return 1;
        if (v->pg)
                PQfinish(v->pg);
        v->pg = po_pg_connect(po_service_config(v->svc), "promo-validator", errstr, size);
        return v->pg != NULL;
}

/* Everything the validator needs, with the usage counters ready. */
static po_err_t deps_ready(validator_t *v, char *errstr, size_t size)
{
        po_err_t err;

        if (!redis_ok(v, errstr, size) || !pg_ok(v, errstr, size))
                return PO_ERR_DEPENDENCY;
        if (v->usage.marker[0])
                return PO_OK;
        err = po_usage_ready(&v->usage, v->rc, v->pg, DEP_WAIT_MS, errstr, size);
        if (err == PO_OK && v->nbatch && strcmp(v->usage.marker, v->batch_marker) != 0)
                v->batch_tainted = 1;
        return err;
}

static void batch_clear(validator_t *v)
{
        size_t i;

        for (i = 0; i < v->nbatch; i++) {
                free(v->batch[i].order_id);
                free(v->batch[i].code);
                free(v->batch[i].customer);
                free(v->batch[i].reservation);
        }
        v->nbatch = 0;
        v->batch_tainted = 0;
        v->batch_marker[0] = '\0';
}

static int batch_add(validator_t *v, const char *order_id, const char *code,
                     const char *customer, const char *reservation)
{
        redemption_t *r;

        if (v->nbatch == v->cap_batch) {
                size_t cap = v->cap_batch ? 2 * v->cap_batch : 256;
                redemption_t *n = realloc(v->batch, cap * sizeof(*n));

                if (!n)
                        return -1;
                v->batch = n;
                v->cap_batch = cap;
        }
        if (v->nbatch == 0)
                snprintf(v->batch_marker, sizeof(v->batch_marker), "%s", v->usage.marker);
        else if (strcmp(v->batch_marker, v->usage.marker) != 0)
                v->batch_tainted = 1;
        r = &v->batch[v->nbatch];
        r->order_id = strdup(order_id);
        r->code = strdup(code);
        r->customer = customer ? strdup(customer) : NULL;
        r->reservation = strdup(reservation);
        if (!r->order_id || !r->code || (customer && !r->customer) || !r->reservation) {
                free(r->order_id);
                free(r->code);
                free(r->customer);
                free(r->reservation);
                return -1;
        }
        v->nbatch++;
        return 0;
}

static po_err_t before_commit(po_stage_t *st, void *opaque)
{
        validator_t *v = opaque;
        const char *params[4];
        char errstr[512];
        PGresult *r;
        size_t i, k;
        int holds;

        (void)st;
        if (v->nbatch == 0)
                return PO_OK;
        if (v->batch_tainted) {
                po_log_warn(
                    "usage counters changed during the batch: validating it again");
                return PO_ERR_DEPENDENCY;
        }
        if (!pg_ok(v, errstr, sizeof(errstr)) || !redis_ok(v, errstr, sizeof(errstr))) {
                po_log_warn("batch commit: %s", errstr);
                return PO_ERR_DEPENDENCY;
        }
        for (k = 0; k < 4; k++) {
                po_dynbuf_reset(&v->sql[k]);
                po_dynbuf_add(&v->sql[k], "{", 1);
        }
        for (i = 0; i < v->nbatch; i++) {
                po_pg_array_add(&v->sql[0], v->batch[i].order_id);
                po_pg_array_add(&v->sql[1], v->batch[i].code);
                po_pg_array_add(&v->sql[2], v->batch[i].customer);
                po_pg_array_add(&v->sql[3], v->batch[i].reservation);
        }
        for (k = 0; k < 4; k++) {
                if (po_dynbuf_add(&v->sql[k], "}", 1)) {
                        po_log_error("batch commit: out of memory");
                        return PO_ERR_NOMEM;
                }
                params[k] = v->sql[k].data;
        }
        if (po_pg_exec(v->pg, "BEGIN", errstr, sizeof(errstr)))
                goto fail;
        r = PQexecParams(
            v->pg,
            "INSERT INTO redemptions (order_id, code, customer_id, reservation_id)"
            " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])"
            " ON CONFLICT (order_id, code) DO NOTHING",
            4, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
                snprintf(errstr, sizeof(errstr), "%s", PQresultErrorMessage(r));
                PQclear(r);
                goto rollback;
        }
        PQclear(r);
        /* Our rows are locked in: a rebuild now waits for this transaction.
         * If one started before, the marker has moved: give the batch up. */
        holds = po_usage_marker_holds(v->rc, v->batch_marker);
        if (holds != 1) {
                snprintf(errstr, sizeof(errstr), "%s",
                         holds < 0 ? "redis unreachable at commit"
                                   : "usage counters were rebuilt during the batch");
                v->usage.marker[0] = '\0';
                goto rollback;
        }
        if (po_pg_exec(v->pg, "COMMIT", errstr, sizeof(errstr)))
                goto fail;
        po_metrics_add(v->metrics, "promo_redemptions_recorded_total",
                       "Reservations written to PostgreSQL (redemptions).", NULL,
                       v->nbatch);
        return PO_OK;
rollback:
        PQclear(PQexec(v->pg, "ROLLBACK"));
fail:
        errstr[strcspn(errstr, "\n")] = '\0';
        po_log_warn("batch commit: %s", errstr);
        return PO_ERR_DEPENDENCY;
}

static void after_batch(po_stage_t *st, int committed, void *opaque)
{
        (void)st;
        (void)committed;
        batch_clear(opaque);
}

/* ---- reference data ---- */

static void ref_reject(validator_t *v, const char *topic, const char *why)
{
        char labels[300];

        snprintf(labels, sizeof(labels), "topic=\"%s\"", topic);
        po_metrics_add(v->metrics, "promo_refdata_rejected_total",
                       "Reference records that did not parse, by topic.", labels, 1);
        po_log_warn("%s: record ignored: %s", topic, why);
}

static int key_ok(const rd_kafka_message_t *m, char *buf, size_t size)
{
        if (!m->key || m->key_len == 0 || m->key_len >= size ||
            memchr(m->key, '\0', m->key_len))
                return 0;
        memcpy(buf, m->key, m->key_len);
        buf[m->key_len] = '\0';
        return 1;
}

/* JSON {"<idfield>": key, "<valfield>": ..., "version": n}. */
static int ref_json(validator_t *v, const rd_kafka_message_t *m, const char *topic,
                    const char *idfield, json_t **root, int64_t *version)
{
        json_error_t je;
        json_t *id, *ver;

        *root = json_loadb(m->payload, m->len, JSON_REJECT_DUPLICATES, &je);
        if (!*root || !json_is_object(*root)) {
                ref_reject(v, topic, *root ? "not an object" : je.text);
                json_decref(*root);
                return -1;
        }
        id = json_object_get(*root, idfield);
        ver = json_object_get(*root, "version");
        if (!json_is_string(id) || json_string_length(id) != m->key_len ||
            memcmp(json_string_value(id), m->key, m->key_len) != 0) {
                ref_reject(v, topic, "the id field must equal the key");
                json_decref(*root);
                return -1;
        }
        if (!json_is_integer(ver) || json_integer_value(ver) < 0) {
                ref_reject(v, topic, "version must be an integer >= 0");
                json_decref(*root);
                return -1;
        }
        *version = json_integer_value(ver);
        return 0;
}

static po_err_t ref_apply(validator_t *v, const rd_kafka_message_t *m)
{
        const char *topic = rd_kafka_topic_name(m->rkt);
        char id[300], rkey[340], errstr[512];
        json_t *root = NULL, *f;
        int64_t version;
        po_err_t err = PO_OK;

        if (!key_ok(m, id, sizeof(id))) {
                ref_reject(v, topic, "missing or oversized key");
                return PO_OK;
        }
        if (strcmp(topic, v->topic_codes) == 0) {
                po_arena_t arena;
                po_codedef_t cd;
                po_dynbuf_t js;

                snprintf(rkey, sizeof(rkey), "promo:code:%s", id);
                if (!m->payload)
                        return po_refdata_del(v->rc, rkey, INT64_MAX, errstr,
                                              sizeof(errstr));
                po_arena_init(&arena, 1u << 20);
                po_dynbuf_init(&js, 1u << 20);
                if (po_codedef_decode(v->avro, m->payload, m->len, &arena, &cd, errstr,
                                      sizeof(errstr)) ||
                    strcmp(cd.def.code, id) != 0) {
                        ref_reject(v, topic,
                                   errstr[0] ? errstr : "key differs from code");
                } else if (po_codedef_to_json(&cd, &js) == PO_OK) {
                        err = po_refdata_put(v->rc, rkey, cd.version, js.data, js.len, 0,
                                             errstr, sizeof(errstr));
                }
                po_dynbuf_release(&js);
                po_arena_release(&arena);
                return err;
        }
        if (strcmp(topic, v->topic_customers) == 0) {
                snprintf(rkey, sizeof(rkey), "promo:customer:%s", id);
                if (!m->payload)
                        return po_refdata_del(v->rc, rkey, INT64_MAX, errstr,
                                              sizeof(errstr));
                if (ref_json(v, m, topic, "customer_id", &root, &version))
                        return PO_OK;
                f = json_object_get(root, "tier");
                if (f && !json_is_null(f) &&
                    (!json_is_string(f) || json_string_length(f) > 64))
                        ref_reject(v, topic,
                                   "tier must be a string of at most 64 bytes or null");
                else
                        err =
                            po_refdata_put(v->rc, rkey, version,
                                           json_is_string(f) ? json_string_value(f) : "",
                                           json_is_string(f) ? json_string_length(f) : 0,
                                           0, errstr, sizeof(errstr));
                json_decref(root);
                return err;
        }
        if (strcmp(topic, v->topic_stock) == 0) {
                char units[24];

                snprintf(rkey, sizeof(rkey), "promo:stock:%s", id);
                if (!m->payload)
                        return po_refdata_del(v->rc, rkey, INT64_MAX, errstr,
                                              sizeof(errstr));
                if (ref_json(v, m, topic, "sku", &root, &version))
                        return PO_OK;
                f = json_object_get(root, "stock");
                if (!json_is_integer(f) || json_integer_value(f) < 0) {
                        ref_reject(v, topic, "stock must be an integer >= 0");
                } else {
                        snprintf(units, sizeof(units), "%lld",
                                 (long long)json_integer_value(f));
                        err = po_refdata_put(v->rc, rkey, version, units, strlen(units),
                                             0, errstr, sizeof(errstr));
                }
                json_decref(root);
        }
        return err;
}

static rd_kafka_t *ref_consumer(validator_t *v, char *errstr, size_t size)
{
        const char *topics[3] = {v->topic_codes, v->topic_customers, v->topic_stock};
        rd_kafka_conf_t *c = rd_kafka_conf_new();
        rd_kafka_topic_partition_list_t *parts;
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_t *rk;
        int i, p, t;

        if (rd_kafka_conf_set(c, "bootstrap.servers",
                              po_service_config(v->svc)->kafka_brokers, errstr, size) ||
            rd_kafka_conf_set(c, "group.id", "promo-validator-refdata", errstr, size) ||
            rd_kafka_conf_set(c, "enable.auto.commit", "false", errstr, size) ||
            rd_kafka_conf_set(c, "isolation.level", "read_committed", errstr, size)) {
                rd_kafka_conf_destroy(c);
                return NULL;
        }
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, errstr, size);
        if (!rk) {
                rd_kafka_conf_destroy(c);
                return NULL;
        }
        parts = rd_kafka_topic_partition_list_new(16);
        if (rd_kafka_metadata(rk, 1, NULL, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
                snprintf(errstr, size, "reference topics: no metadata from the broker");
                rd_kafka_topic_partition_list_destroy(parts);
                rd_kafka_destroy(rk);
                return NULL;
        }
        for (t = 0; t < 3; t++) {
                for (i = 0; i < md->topic_cnt; i++) {
                        if (strcmp(md->topics[i].topic, topics[t]) != 0)
                                continue;
                        for (p = 0; p < md->topics[i].partition_cnt; p++)
                                rd_kafka_topic_partition_list_add(
                                    parts, topics[t], md->topics[i].partitions[p].id)
                                    ->offset = RD_KAFKA_OFFSET_BEGINNING;
                }
        }
        rd_kafka_metadata_destroy(md);
        if (parts->cnt == 0)
                po_log_warn("reference topics %s, %s, %s not found: caches fill from "
                            "PostgreSQL only",
                            topics[0], topics[1], topics[2]);
        rd_kafka_assign(rk, parts);
        rd_kafka_topic_partition_list_destroy(parts);
        return rk;
}

static void idle(po_stage_t *st, void *opaque)
{
        validator_t *v = opaque;
        char errstr[512];
        int n;

        (void)st;
        if (!v->ref || !redis_ok(v, errstr, sizeof(errstr)))
                return;
        for (n = 0; n < REFDATA_POLL_MAX; n++) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(v->ref, 0);

                if (!m)
                        break;
                if (!m->err && ref_apply(v, m) != PO_OK) {
                        /* Redis went away: read this record again later. */
                        rd_kafka_topic_partition_list_t *l =
                            rd_kafka_topic_partition_list_new(1);

                        rd_kafka_topic_partition_list_add(l, rd_kafka_topic_name(m->rkt),
                                                          m->partition)
                            ->offset = m->offset;
                        rd_kafka_seek_partitions(v->ref, l, 1000);
                        rd_kafka_topic_partition_list_destroy(l);
                        rd_kafka_message_destroy(m);
                        break;
                }
                if (!m->err)
                        v->ref_applied++;
                rd_kafka_message_destroy(m);
        }
        if (n)
                po_metrics_set(v->metrics, "promo_refdata_applied",
                               "Reference records applied to Redis since start.", NULL,
                               (int64_t)v->ref_applied);
}

/* ---- validation ---- */

static po_stage_result_t transient(po_stage_failure_t *fail, const char *reason,
                                   const char *why)
{
        snprintf(fail->reason, sizeof(fail->reason), "%s", reason);
        snprintf(fail->error, sizeof(fail->error), "%s", why);
        return PO_STAGE_TRANSIENT;
}

static po_stage_result_t permanent(po_stage_failure_t *fail, const char *reason,
                                   const char *why)
{
        snprintf(fail->reason, sizeof(fail->reason), "%s", reason);
        snprintf(fail->error, sizeof(fail->error), "%s", why);
        return PO_STAGE_PERMANENT;
}

/* The valid, unique normalized codes of o (in o's arena). */
static po_err_t order_codes(po_order_t *o, const char **codes, size_t *ncodes)
{
        char norm[PO_PRICING_CODE_MAX + 2];
        size_t i, j, n = 0;

        for (i = 0; i < o->code_count && i < PO_PRICING_MAX_CODES; i++) {
                size_t len = po_code_normalize(o->codes[i], strlen(o->codes[i]), norm,
                                               sizeof(norm));

                if (len > PO_PRICING_CODE_MAX || !po_code_is_valid(norm, len))
                        continue;
                for (j = 0; j < n; j++)
                        if (strcmp(codes[j], norm) == 0)
                                break;
                if (j == n) {
                        codes[n] = po_arena_strndup(&o->arena, norm, len);
                        if (!codes[n])
                                return PO_ERR_NOMEM;
                        n++;
                }
        }
        *ncodes = n;
        return PO_OK;
}

/* The order's reference data from the group's prefetch: 1 when every entry
 * it needs was resolved there (ents[i] = the code entries), else 0. */
static int cached_refdata(validator_t *v, const char *const *codes, size_t ncodes,
                          po_codedef_t *defs, int *has_def, po_refentry_t **ents,
                          const char *customer, const char **tier, int *crm_known,
                          const char *const *skus, size_t nskus, int64_t *stock,
                          int *has_stock)
{
        po_refentry_t *e;
        size_t i;

        if (v->nslots == 0)
                return 0;
        for (i = 0; i < ncodes; i++) {
                e = po_refbatch_find(&v->refs, PO_REF_CODE, codes[i]);
                if (!e || !e->resolved)
                        return 0;
                ents[i] = e;
        }
        if (customer) {
                e = po_refbatch_find(&v->refs, PO_REF_CUSTOMER, customer);
                if (!e || !e->resolved)
                        return 0;
                *crm_known = e->has;
                *tier = e->tier;
        }
        for (i = 0; i < nskus; i++) {
                e = skus[i] ? po_refbatch_find(&v->refs, PO_REF_SKU, skus[i]) : NULL;
                if (!e || !e->resolved)
                        return 0;
                has_stock[i] = e->has;
                stock[i] = e->has ? e->stock : 0;
        }
        for (i = 0; i < ncodes; i++) {
                has_def[i] = ents[i]->has;
                if (has_def[i])
                        defs[i] = ents[i]->def;
        }
        return 1;
}

/* The group's usage counts of the order's codes, when prepare read them
 * under the marker still in force. */
static int cached_usage(const validator_t *v, const group_slot_t *slot,
                        const po_code_def_t *cdefs, size_t nd, int64_t *total,
                        int64_t *bycust)
{
        size_t i, k;

        if (!slot || !slot->usage_ok || !v->usage.marker[0] ||
            strcmp(v->group_marker, v->usage.marker) != 0)
                return 0;
        for (i = 0; i < nd; i++) {
                for (k = 0; k < slot->ncodes; k++)
                        if (strcmp(slot->codes[k], cdefs[i].code) == 0)
                                break;
                if (k == slot->ncodes)
                        return 0;
                total[i] = slot->total[k];
                bycust[i] = slot->bycust[k];
        }
        return 1;
}

/* A definition's fingerprint, computed once per group for cached ones. */
static int fingerprint(validator_t *v, const po_codedef_t *def, po_refentry_t *e,
                       int64_t *fp)
{
        if (!e)
                return po_codedef_fingerprint(v->avro, def, fp) == PO_OK;
        if (e->fp_state == 0)
                e->fp_state =
                    po_codedef_fingerprint(v->avro, &e->def, &e->fp) == PO_OK ? 1 : -1;
        *fp = e->fp;
        return e->fp_state == 1;
}

/* One attempt at validating o; PO_ERR_DEPENDENCY / TIMEOUT are retried.
 * slot: the order's prefetch by prepare, or NULL. */
/* Whether the first round wants exactly what prepare reserved. */
static int pre_matches(const group_slot_t *slot, const char *const *want,
                       const int64_t *lim, const int64_t *clim, size_t n)
{
        size_t i;

        if (!slot || slot->pre != 1 || slot->pre_n != n)
                return 0;
        for (i = 0; i < n; i++)
                if (strcmp(slot->pre_codes[i], want[i]) != 0 ||
                    slot->pre_lim[i] != lim[i] || slot->pre_clim[i] != clim[i])
                        return 0;
        return 1;
}

static po_err_t validate(validator_t *v, po_validated_t *vo, group_slot_t *slot,
                         char *errstr, size_t size, int *bad_input, int plan)
{
        po_order_t *o = &vo->order;
        const char *codes[PO_PRICING_MAX_CODES];
        po_codedef_t defs[PO_PRICING_MAX_CODES];
        po_refentry_t *ents[PO_PRICING_MAX_CODES];
        po_code_def_t cdefs[PO_PRICING_MAX_CODES];
        int has_def[PO_PRICING_MAX_CODES], crm_known = 0, *has_stock;
        int64_t total[PO_PRICING_MAX_CODES], bycust[PO_PRICING_MAX_CODES], *stock;
        const char *tier = NULL, *customer = o->has_customer ? o->customer_id : NULL;
        const char **skus;
        size_t ncodes = 0, nd = 0, i;
        po_pricing_result_t res;
        po_err_t err;
        int round;

        *bad_input = 0;
        if (o->code_count > PO_PRICING_MAX_CODES || o->line_count == 0) {
                *bad_input = 1;
                snprintf(errstr, size, "the order has %zu codes and %zu lines",
                         o->code_count, o->line_count);
                return PO_ERR_BAD_INPUT;
        }
        /* The valid, unique normalized codes to look up. */
        err = order_codes(o, codes, &ncodes);
        if (err)
                return err;
        skus = po_arena_alloc(&o->arena, o->line_count * sizeof(*skus));
        stock = po_arena_alloc(&o->arena, o->line_count * sizeof(*stock));
        has_stock = po_arena_alloc(&o->arena, o->line_count * sizeof(*has_stock));
        vo->line_stock =
            po_arena_alloc(&o->arena, o->line_count * sizeof(*vo->line_stock));
        if (!skus || !stock || !has_stock || !vo->line_stock)
                return PO_ERR_NOMEM;
        for (i = 0; i < o->line_count; i++)
                skus[i] = o->lines[i].sku;
        memset(has_def, 0, sizeof(has_def));
        memset(ents, 0, sizeof(ents));
        if (cached_refdata(v, codes, ncodes, defs, has_def, ents, customer, &tier,
                           &crm_known, skus, o->line_count, stock, has_stock))
                err = PO_OK;
        else if (plan)
                return PO_ERR_INVALID_ARG; /* prepare plans from its prefetch only */
        else {
                memset(ents, 0, sizeof(ents));
                err = po_refdata_fetch(v->rc, v->pg, &o->arena, codes, ncodes, defs,
                                       has_def, customer, &tier, &crm_known, skus,
                                       o->line_count, stock, has_stock, &v->stats, errstr,
                                       size);
        }
        if (err == PO_ERR_BAD_INPUT) {
                /* A definition in PostgreSQL that does not parse: the admin
                 * must fix it; this order waits in the retry topics. */
                return PO_ERR_DEPENDENCY;
        }
        if (err)
                return err;
        /* The CRM's tier is authoritative when the CRM knows the customer;
         * else the channel's (docs/validator.md). */
        if (!crm_known)
                tier = o->has_customer ? o->customer_tier : NULL;
        if (o->has_customer)
                o->customer_tier = tier;
        for (i = 0; i < o->line_count; i++) {
                vo->line_stock[i].line_id = o->lines[i].line_id;
                vo->line_stock[i].has_stock = has_stock[i];
                vo->line_stock[i].stock = stock[i];
        }
        vo->line_stock_count = o->line_count;
        for (i = 0; i < ncodes; i++)
                if (has_def[i])
                        cdefs[nd++] = defs[i].def;
        for (round = 0; round < MAX_REPRICE; round++) {
                const char *want[PO_PRICING_MAX_CODES];
                int64_t lim[PO_PRICING_MAX_CODES], clim[PO_PRICING_MAX_CODES];
                size_t nwant = 0;
                int granted = 1;

                if (nd) {
                        const char *dc[PO_PRICING_MAX_CODES];

                        for (i = 0; i < nd; i++)
                                dc[i] = cdefs[i].code;
                        /* The prefetched counts may be stale by now: the
                         * reservation script is the authority, and a refusal
                         * reads them again (the next round). */
                        if (round == 0 && cached_usage(v, slot, cdefs, nd, total, bycust))
                                err = PO_OK;
                        else if (plan)
                                return PO_ERR_INVALID_ARG;
                        else
                                err =
                                    po_usage_read(&v->usage, v->rc, o->order_id, customer,
                                                  dc, nd, total, bycust, errstr, size);
                        if (err) {
                                v->usage.marker[0] = '\0';
                                return err;
                        }
                        for (i = 0; i < nd; i++) {
                                cdefs[i].used_total = total[i];
                                cdefs[i].used_by_customer = bycust[i];
                        }
                }
                err = po_cart_build(&v->cart, o, stock, has_stock, tier, cdefs, nd,
                                    v->stacking, v->rounding, errstr, size);
                if (!err)
                        err = po_pricing_run(v->ws, &v->cart.cart, &res, errstr, size);
                if (err) {
                        *bad_input = err == PO_ERR_BAD_INPUT;
                        return err;
                }
                for (i = 0; i < res.applied_count; i++) {
                        const po_code_def_t *d = res.applied[i].def;

                        want[nwant] = d->code;
                        lim[nwant] = d->usage_limit.present ? d->usage_limit.value : -1;
                        clim[nwant] = d->per_customer_limit.present
                                          ? d->per_customer_limit.value
                                          : -1;
                        nwant++;
                }
                if (plan) {
                        /* What round 0 will want: prepare reserves it. */
                        for (i = 0; i < nwant; i++) {
                                slot->pre_codes[i] =
                                    po_arena_strndup(&o->arena, want[i], strlen(want[i]));
                                if (!slot->pre_codes[i])
                                        return PO_ERR_NOMEM;
                                slot->pre_lim[i] = lim[i];
                                slot->pre_clim[i] = clim[i];
                        }
                        slot->pre_n = nwant;
                        return PO_OK;
                }
                if (round == 0 && pre_matches(slot, want, lim, clim, nwant)) {
                        granted = slot->pre_granted;
                } else {
                        if (round == 0 && slot && slot->pre == 1)
                                /* Cannot happen (same inputs, same pricing):
                                 * the codes reserved in prepare and not
                                 * wanted now would stay counted. */
                                po_log_error("order %s: the first round wants other "
                                             "codes than prepare reserved",
                                             o->order_id);
                        if (nwant) {
                                err = po_usage_reserve(&v->usage, v->rc, o->order_id,
                                                       customer, want, lim, clim, nwant,
                                                       &granted, errstr, size);
                                if (err) {
                                        v->usage.marker[0] = '\0';
                                        return err;
                                }
                        }
                }
                if (!granted) {
                        po_metrics_add(v->metrics, "promo_reservation_races_total",
                                       "Orders priced again because a limit was reached "
                                       "concurrently.",
                                       NULL, 1);
                        continue;
                }
                /* The decisions, in request order. */
                vo->decisions =
                    po_arena_alloc(&o->arena, (o->code_count ? o->code_count : 1) *
                                                  sizeof(*vo->decisions));
                if (!vo->decisions)
                        return PO_ERR_NOMEM;
                vo->decision_count = o->code_count;
                for (i = 0; i < o->code_count; i++) {
                        po_decision_t *d = &vo->decisions[i];
                        size_t k;

                        memset(d, 0, sizeof(*d));
                        d->requested = o->codes[i];
                        d->code = res.normalized[i];
                        d->tier = tier;
                        for (k = 0; k < res.applied_count; k++)
                                if (res.applied[k].request_index == i)
                                        d->applied = 1;
                        for (k = 0; k < res.rejected_count; k++)
                                if (res.rejected[k].request_index == i)
                                        d->reason = po_reason_str(res.rejected[k].reason);
                        for (k = 0; k < ncodes; k++) {
                                if (!has_def[k] || strcmp(codes[k], d->code) != 0)
                                        continue;
                                d->has_definition = 1;
                                d->definition = defs[k];
                                d->has_fingerprint =
                                    fingerprint(v, &defs[k], ents[k], &d->fingerprint);
                                d->has_usage = 1;
                        }
                        for (k = 0; k < nd && d->has_usage; k++)
                                if (strcmp(cdefs[k].code, d->code) == 0) {
                                        d->usage_total = cdefs[k].used_total;
                                        d->usage_customer = cdefs[k].used_by_customer;
                                }
                        if (d->applied) {
                                char rid[400];

                                snprintf(rid, sizeof(rid), "%s/%s", o->order_id, d->code);
                                d->reservation_id =
                                    po_arena_strndup(&o->arena, rid, strlen(rid));
                                if (!d->reservation_id ||
                                    batch_add(v, o->order_id, d->code, customer, rid))
                                        return PO_ERR_NOMEM;
                        }
                }
                return PO_OK;
        }
        snprintf(errstr, size, "limits kept changing under %d pricings", MAX_REPRICE);
        return PO_ERR_TIMEOUT;
}

/* ---- the group: prefetch in pipelined round trips ---- */

static void group_reset(validator_t *v)
{
        size_t i;

        for (i = 0; i < v->nslots; i++)
                if (v->slots[i].decoded)
                        po_order_release(&v->slots[i].order);
        v->nslots = 0;
        v->next_slot = 0;
        v->group_marker[0] = '\0';
        po_refbatch_clear(&v->refs);
}

/* The prefetch of msg, or NULL (process then works alone). */
static group_slot_t *group_take(validator_t *v, const rd_kafka_message_t *msg)
{
        size_t i;

        for (i = v->next_slot; i < v->nslots; i++)
                if (v->slots[i].msg == msg) {
                        v->next_slot = i + 1;
                        return &v->slots[i];
                }
        return NULL;
}

/* Decodes the slot's order and adds the keys it needs; 0 when it is to be
 * fetched, -1 when there is nothing to fetch for it. */
static int group_add(validator_t *v, group_slot_t *s)
{
        po_order_t *o = &s->order;
        char errstr[256];
        size_t i;
        int bad = 0;

        po_order_init(o, ARENA_LIMIT);
        if (po_order_decode(v->avro, s->msg->payload, s->msg->len, o, errstr,
                            sizeof(errstr))) {
                /* process decodes it again and reports why. */
                po_order_release(o);
                return -1;
        }
        s->decoded = 1;
        if (o->code_count > PO_PRICING_MAX_CODES || o->line_count == 0 ||
            order_codes(o, s->codes, &s->ncodes))
                return -1;
        for (i = 0; i < s->ncodes; i++)
                bad |= po_refbatch_add(&v->refs, PO_REF_CODE, s->codes[i]);
        /* A customer may come without an id (then no lookup, as in
         * validate). */
        if (o->has_customer && o->customer_id)
                bad |= po_refbatch_add(&v->refs, PO_REF_CUSTOMER, o->customer_id);
        for (i = 0; i < o->line_count; i++)
                if (o->lines[i].sku)
                        bad |= po_refbatch_add(&v->refs, PO_REF_SKU, o->lines[i].sku);
        return bad ? -1 : 0;
}

/* The group's k-th usage request: the slot's order with codes[0..n); the
 * caller sets what the call reads or reserves. */
static po_usage_req_t *usage_req(validator_t *v, size_t k, size_t slot,
                                 const char *const *codes, size_t n)
{
        const po_order_t *o = &v->slots[slot].order;
        po_usage_req_t *q = &v->ureq[k];

        memset(q, 0, sizeof(*q));
        q->order_id = o->order_id;
        q->customer = o->has_customer ? o->customer_id : NULL;
        q->codes = codes;
        q->n = n;
        v->ureq_slot[k] = slot;
        return q;
}

/* Queues the usage calls of the group's first nq requests (v->ureq),
 * PO_USAGE_GROUP_MAX orders per script call, with append. Returns how many
 * requests were queued (a call that could not be queued ends the queue:
 * its orders and the ones after it are left to process). */
static size_t usage_calls(validator_t *v, size_t nq,
                          int (*append)(const po_usage_t *, redisContext *,
                                        const po_usage_req_t *, size_t))
{
        size_t i;

        for (i = 0; i < nq; i += PO_USAGE_GROUP_MAX) {
                size_t m = nq - i < PO_USAGE_GROUP_MAX ? nq - i : PO_USAGE_GROUP_MAX;

                if (append(&v->usage, v->rc, &v->ureq[i], m))
                        return i;
        }
        return nq;
}

/* Plans each prefetched order's first round (its reference data and usage
 * counts all came from the prefetch) and sends the reservations it wants in
 * one script call per PO_USAGE_GROUP_MAX orders, in the group's order,
 * which reserves them in turn as process would have one by one, each order
 * all or nothing. process takes the answer when its first round wants the same
 * codes (it always does: same inputs, same pricing); a refusal is priced
 * again there, as before. A reply not read (the connection broke) leaves
 * process to reserve on its own: a reservation is idempotent per order and
 * code, so one that did run is granted again without counting twice. The
 * group's cache fills (fills replies owed, po_refbatch_fill) travel in the
 * same round trip. */
static void prereserve(validator_t *v, size_t fills)
{
        char errstr[512];
        size_t i, nq = 0;
        po_usage_req_t *q;

        for (i = 0; i < v->nslots; i++) {
                group_slot_t *s = &v->slots[i];
                po_validated_t tmp;
                int bad = 0;
                po_err_t e;

                if (!s->decoded || !s->usage_ok)
                        continue;
                memset(&tmp, 0, sizeof(tmp));
                tmp.order = s->order; /* lent: its arena grows */
                e = validate(v, &tmp, s, errstr, sizeof(errstr), &bad, 1);
                s->order = tmp.order;
                if (e != PO_OK || s->pre_n == 0)
                        continue;
                q = usage_req(v, nq++, i, s->pre_codes, s->pre_n);
                q->limit = s->pre_lim;
                q->customer_limit = s->pre_clim;
        }
        nq = usage_calls(v, nq, po_usage_reserve_many_append);
        /* The group's cache fills went out with the reservations. */
        po_refdata_drain_puts(v->rc, fills);
        for (i = 0; i < nq; i += PO_USAGE_GROUP_MAX) {
                size_t k, m = nq - i < PO_USAGE_GROUP_MAX ? nq - i : PO_USAGE_GROUP_MAX;

                if (v->rc->err)
                        break;
                if (po_usage_reserve_many_reply(v->rc, &v->ureq[i], m, errstr,
                                                sizeof(errstr)) != PO_OK) {
                        if (v->rc->err)
                                po_log_warn("group reservations: %s", errstr);
                        continue;
                }
                for (k = i; k < i + m; k++) {
                        group_slot_t *s = &v->slots[v->ureq_slot[k]];

                        s->pre = 1;
                        s->pre_granted = v->ureq[k].granted;
                }
        }
}

/* The stage's prepare hook: decodes the group's orders and reads what they
 * need in one Redis round trip (definitions, tiers, stock, usage counts),
 * then the misses in one PostgreSQL query, then the group's reservations
 * in one more Redis round trip that carries the misses' cache fills too.
 * Best effort: what is not found here, process fetches for its order as
 * before. */
static void prepare(po_stage_t *st, rd_kafka_message_t *const *msgs, size_t n,
                    void *opaque)
{
        validator_t *v = opaque;
        char errstr[512];
        size_t i, fills, nq;
        po_usage_req_t *q;
        int fetch;

        (void)st;
        group_reset(v);
        if (n > v->cap_slots) {
                group_slot_t *s = realloc(v->slots, n * sizeof(*s));
                po_usage_req_t *qn;
                size_t *qs;

                if (!s)
                        return;
                v->slots = s;
                qn = realloc(v->ureq, n * sizeof(*qn));
                if (!qn)
                        return;
                v->ureq = qn;
                qs = realloc(v->ureq_slot, n * sizeof(*qs));
                if (!qs)
                        return;
                v->ureq_slot = qs;
                v->cap_slots = n;
        }
        fetch = redis_ok(v, errstr, sizeof(errstr));
        for (i = 0; i < n; i++) {
                group_slot_t *s = &v->slots[v->nslots++];

                memset(s, 0, sizeof(*s));
                s->msg = msgs[i];
                if (group_add(v, s))
                        s->ncodes = 0; /* no usage read for it */
        }
        if (!fetch)
                return;
        po_refbatch_append(&v->refs, v->rc);
        snprintf(v->group_marker, sizeof(v->group_marker), "%s", v->usage.marker);
        nq = 0;
        for (i = 0; v->group_marker[0] && i < v->nslots; i++) {
                group_slot_t *s = &v->slots[i];

                if (!s->ncodes)
                        continue;
                q = usage_req(v, nq++, i, s->codes, s->ncodes);
                q->total = s->total;
                q->by_customer = s->bycust;
        }
        nq = usage_calls(v, nq, po_usage_read_many_append);
        if (po_refbatch_read(&v->refs, v->rc, &v->stats, errstr, sizeof(errstr)))
                goto broken;
        for (i = 0; i < nq; i += PO_USAGE_GROUP_MAX) {
                size_t k, m = nq - i < PO_USAGE_GROUP_MAX ? nq - i : PO_USAGE_GROUP_MAX;
                int ok = po_usage_read_many_reply(v->rc, &v->ureq[i], m, errstr,
                                                  sizeof(errstr)) == PO_OK;

                if (!ok && v->rc->err)
                        goto broken;
                for (k = i; k < i + m; k++)
                        v->slots[v->ureq_slot[k]].usage_ok = ok;
        }
        fills = po_refbatch_fill(
            &v->refs, v->rc, pg_ok(v, errstr, sizeof(errstr)) ? v->pg : NULL, &v->stats);
        if (v->group_marker[0] && !v->rc->err)
                prereserve(v, fills);
        else
                po_refdata_drain_puts(v->rc, fills);
        return;
broken:
        /* process reconnects and fetches for each order on its own. */
        for (i = 0; i < v->nslots; i++)
                v->slots[i].usage_ok = 0;
        po_log_warn("group prefetch: %s", errstr);
}

static po_stage_result_t process(po_stage_t *st, const rd_kafka_message_t *msg,
                                 po_stage_failure_t *fail, void *opaque)
{
        validator_t *v = opaque;
        char errstr[512];
        po_validated_t vo;
        po_stage_result_t result = PO_STAGE_OK;
        po_err_t err = PO_OK;
        group_slot_t *slot = group_take(v, msg);
        int bad = 0, waited = 0;

        memset(&vo, 0, sizeof(vo));
        if (slot && slot->decoded) {
                vo.order = slot->order; /* ours now: released below */
                slot->decoded = 0;
        } else {
                po_order_init(&vo.order, ARENA_LIMIT);
                err = po_order_decode(v->avro, msg->payload, msg->len, &vo.order, errstr,
                                      sizeof(errstr));
        }
        if (err) {
                result = permanent(fail, "BAD_ORDER", errstr);
                goto out;
        }
        fail->priority = po_order_value(&vo.order) / 100 + 1;
        /* A dependency that blinks (a Redis restart, a rebuild) is waited
         * for a little here rather than sent through the retry topics. */
        for (;;) {
                err = deps_ready(v, errstr, sizeof(errstr));
                if (!err)
                        err = validate(v, &vo, slot, errstr, sizeof(errstr), &bad, 0);
                if (err != PO_ERR_DEPENDENCY && err != PO_ERR_TIMEOUT)
                        break;
                if (waited >= DEP_WAIT_MS || !po_service_running())
                        break;
                sleep_ms(100);
                waited += 100;
        }
        if (err) {
                if (bad)
                        result = permanent(fail, "BAD_ORDER", errstr);
                else if (err == PO_ERR_NOMEM)
                        result =
                            permanent(fail, "TOO_LARGE", "out of memory for this order");
                else
                        result = transient(fail, "DEPENDENCY_DOWN", errstr);
                goto out;
        }
        vo.stacking = v->stacking;
        vo.rounding = v->rounding;
        vo.validated_at = now_us();
        po_dynbuf_reset(&v->out);
        if (po_validated_encode(v->avro, &vo, &v->out, errstr, sizeof(errstr))) {
                result = permanent(fail, "UNENCODABLE", errstr);
                goto out;
        }
        if (po_stage_emit(st, v->output_topic, vo.order.order_id,
                          strlen(vo.order.order_id), v->out.data, v->out.len, NULL))
                result =
                    transient(fail, "EMIT_FAILED", "could not queue the validated order");
out:
        po_order_release(&vo.order);
        return result;
}

int main(int argc, char **argv)
{
        static const po_service_def_t def = {
            .name = "validator",
            .port_env = "PROMO_VALIDATOR_HTTP_PORT",
            .default_port = 58082,
            .deps = PO_DEPS_ALL,
        };
        validator_t v;
        po_stage_conf_t conf = {0};
        char errstr[512];
        const char *s;
        int status = 2, k;

        if (argc > 1 && strcmp(argv[1], "--check") == 0)
                return po_service_main(&def, argc, argv);
        memset(&v, 0, sizeof(v));
        po_usage_init(&v.usage);
        po_refbatch_init(&v.refs);
        po_cart_builder_init(&v.cart);
        po_dynbuf_init(&v.out, 64u << 20);
        for (k = 0; k < 4; k++)
                po_dynbuf_init(&v.sql[k], 256u << 20);
        v.svc = po_service_new(&def, errstr, sizeof(errstr));
        if (!v.svc) {
                fprintf(stderr, "validator: %s\n", errstr);
                return 2;
        }
        v.metrics = po_service_metrics(v.svc);
        s = po_env_or("PROMO_STACKING", "best_only");
        if (strcmp(s, "best_only") != 0 && strcmp(s, "combine") != 0) {
                po_log_error("PROMO_STACKING must be best_only or combine, not %s", s);
                goto out;
        }
        v.stacking = strcmp(s, "combine") == 0 ? PO_STACK_COMBINE : PO_STACK_BEST_ONLY;
        s = po_env_or("PROMO_ROUNDING", "half_up");
        if (strcmp(s, "half_up") != 0 && strcmp(s, "half_even") != 0) {
                po_log_error("PROMO_ROUNDING must be half_up or half_even, not %s", s);
                goto out;
        }
        v.rounding = strcmp(s, "half_even") == 0 ? PO_ROUND_HALF_EVEN : PO_ROUND_HALF_UP;
        v.output_topic = po_env_or("PROMO_VALIDATOR_OUTPUT", "orders.validated");
        v.topic_codes = po_env_or("PROMO_CODES_TOPIC", "promo.codes");
        v.topic_customers = po_env_or("PROMO_CUSTOMERS_TOPIC", "crm.customers");
        v.topic_stock = po_env_or("PROMO_INVENTORY_TOPIC", "inventory.levels");
        v.ws = po_pricing_ws_new();
        v.avro = po_avro_new(errstr, sizeof(errstr));
        if (!v.ws || !v.avro) {
                po_log_error("start: %s", v.avro ? "out of memory" : errstr);
                goto out;
        }
        /* The schema first: every service that needs it applies it. */
        while (po_service_running()) {
                int applied;

                if (pg_ok(&v, errstr, sizeof(errstr)) &&
                    po_pg_migrate(v.pg, &applied, errstr, sizeof(errstr)) == PO_OK)
                        break;
                po_log_warn("postgres: %s (retrying)", errstr);
                po_service_tick(v.svc, 1000);
        }
        v.ref = ref_consumer(&v, errstr, sizeof(errstr));
        if (!v.ref)
                po_log_warn("reference data: %s (caches fill from PostgreSQL only)",
                            errstr);
        conf.input_topic = po_env_or("PROMO_VALIDATOR_INPUT", "orders.canonical");
        conf.committed_input = 1; /* written by a transactional stage */
        conf.dlq_topic = po_env_or("PROMO_VALIDATOR_DLQ", "validator.dlq");
        conf.group_id = getenv("PROMO_VALIDATOR_GROUP");
        conf.process = process;
        conf.before_commit = before_commit;
        conf.after_batch = after_batch;
        conf.idle = idle;
        conf.prepare = prepare;
        conf.opaque = &v;
        status = po_stage_serve(v.svc, &conf);
out:
        batch_clear(&v);
        free(v.batch);
        group_reset(&v);
        free(v.slots);
        free(v.ureq);
        free(v.ureq_slot);
        po_refbatch_release(&v.refs);
        if (v.ref) {
                rd_kafka_consumer_close(v.ref);
                rd_kafka_destroy(v.ref);
        }
        if (v.rc)
                redisFree(v.rc);
        if (v.pg)
                PQfinish(v.pg);
        po_avro_destroy(v.avro);
        po_pricing_ws_destroy(v.ws);
        po_cart_builder_release(&v.cart);
        po_dynbuf_release(&v.out);
        for (k = 0; k < 4; k++)
                po_dynbuf_release(&v.sql[k]);
        po_service_destroy(v.svc);
        return status;
}
