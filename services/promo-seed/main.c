/* promo-seed: loads reference data (code definitions, customers, stock
 * levels) from a JSON file into PostgreSQL, the source of truth, and
 * publishes each record to its compacted topic (promo.codes as Avro
 * CodeDefinition, crm.customers and inventory.levels as JSON), the way the
 * admin, the CRM and the inventory system feed the validators.
 *
 *   promo-seed [--file deploy/demo-data.json] [--brokers HOST:PORT]
 *
 * File: {"codes": [<PRICING_SPEC.md section 3 objects>],
 *        "customers": [{"customer_id", "tier", "orders_count", "total_spend",
 *                       "currency", "last_order_at", "engagement"}],
 *        "inventory": [{"sku", "stock"}]}
 * Every record gets version = now in microseconds (+ its index), so a seed
 * supersedes what was there. Exits non-zero when anything fails. */
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "po/config.h"
#include "po/messages.h"
#include "po/pg.h"

static int delivery_failures;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
        (void)rk;
        (void)opaque;
        if (m->err) {
                fprintf(stderr, "promo-seed: delivery to %s failed: %s\n",
                        rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err));
                delivery_failures++;
        }
}

static int64_t now_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int produce(rd_kafka_t *rk, const char *topic, const char *key, const void *val,
                   size_t len)
{
        rd_kafka_resp_err_t err;

        err = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic),
                                RD_KAFKA_V_KEY(key, strlen(key)),
                                RD_KAFKA_V_VALUE((void *)val, len),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (err) {
                fprintf(stderr, "promo-seed: produce to %s: %s\n", topic,
                        rd_kafka_err2str(err));
                return -1;
        }
        rd_kafka_poll(rk, 0);
        return 0;
}

static int exec_params(PGconn *pg, const char *sql, int n, const char *const *params,
                       const char *what)
{
        PGresult *r = PQexecParams(pg, sql, n, NULL, params, NULL, NULL, 0);
        int ok = PQresultStatus(r) == PGRES_COMMAND_OK;

        if (!ok)
                fprintf(stderr, "promo-seed: %s: %s", what, PQresultErrorMessage(r));
        PQclear(r);
        return ok ? 0 : -1;
}

static int seed_codes(json_t *codes, PGconn *pg, rd_kafka_t *rk, po_avro_t *avro,
                      int64_t base)
{
        size_t i;
        json_t *c;
        int failures = 0;

        json_array_foreach(codes, i, c)
        {
                char *text = json_dumps(c, JSON_COMPACT);
                char errstr[512], ver[24];
                po_arena_t arena;
                po_codedef_t cd;
                po_dynbuf_t js, av;
                const char *params[4];
                static const char *const statuses[] = {"active", "paused", "archived"};

                po_arena_init(&arena, 1u << 20);
                po_dynbuf_init(&js, 1u << 20);
                po_dynbuf_init(&av, 1u << 20);
                if (!text || po_codedef_from_json(text, strlen(text), &arena, &cd, errstr,
                                                  sizeof(errstr))) {
                        fprintf(stderr, "promo-seed: codes[%zu]: %s\n", i,
                                text ? errstr : "out of memory");
                        failures++;
                        goto next;
                }
                cd.version = base + (int64_t)i;
                cd.updated_at = base;
                if (po_codedef_to_json(&cd, &js) ||
                    po_codedef_encode(avro, &cd, &av, errstr, sizeof(errstr))) {
                        fprintf(stderr, "promo-seed: codes[%zu]: cannot encode\n", i);
                        failures++;
                        goto next;
                }
                snprintf(ver, sizeof(ver), "%lld", (long long)cd.version);
                params[0] = cd.def.code;
                params[1] = js.data;
                params[2] = statuses[cd.def.status];
                params[3] = ver;
                if (exec_params(
                        pg,
                        "INSERT INTO codes (code, definition, status, version)"
                        " VALUES ($1, $2::jsonb, $3, $4)"
                        " ON CONFLICT (code) DO UPDATE SET definition = "
                        "excluded.definition,"
                        " status = excluded.status, version = excluded.version,"
                        " updated_at = now() WHERE codes.version < excluded.version",
                        4, params, cd.def.code) ||
                    exec_params(pg,
                                "INSERT INTO admin_changes (actor, action, entity, "
                                "entity_id, after)"
                                " VALUES ('promo-seed', 'seed', 'code', $1, $2::jsonb)",
                                2, params, "admin_changes") ||
                    produce(rk, "promo.codes", cd.def.code, av.data, av.len))
                        failures++;
        next:
                free(text);
                po_dynbuf_release(&js);
                po_dynbuf_release(&av);
                po_arena_release(&arena);
        }
        return failures;
}

static const char *str_or_null(json_t *o, const char *k)
{
        json_t *v = json_object_get(o, k);

        return json_is_string(v) ? json_string_value(v) : NULL;
}

static int seed_customers(json_t *list, PGconn *pg, rd_kafka_t *rk, int64_t base)
{
        size_t i;
        json_t *c;
        int failures = 0;

        json_array_foreach(list, i, c)
        {
                const char *id = str_or_null(c, "customer_id"),
                           *tier = str_or_null(c, "tier");
                char n1[24], n2[24], n3[24];
                const char *params[7];
                json_t *msg;
                char *text;

                if (!id || !*id) {
                        fprintf(stderr,
                                "promo-seed: customers[%zu]: customer_id required\n", i);
                        failures++;
                        continue;
                }
                snprintf(
                    n1, sizeof(n1), "%lld",
                    (long long)json_integer_value(json_object_get(c, "orders_count")));
                snprintf(
                    n2, sizeof(n2), "%lld",
                    (long long)json_integer_value(json_object_get(c, "total_spend")));
                snprintf(n3, sizeof(n3), "%lld",
                         (long long)json_integer_value(json_object_get(c, "engagement")));
                params[0] = id;
                params[1] = tier;
                params[2] = n1;
                params[3] = n2;
                params[4] = str_or_null(c, "currency");
                params[5] = str_or_null(c, "last_order_at");
                params[6] = n3;
                if (exec_params(
                        pg,
                        "INSERT INTO customers (customer_id, tier, orders_count,"
                        " total_spend, currency, last_order_at, engagement)"
                        " VALUES ($1, $2, $3, $4, $5, $6, $7)"
                        " ON CONFLICT (customer_id) DO UPDATE SET tier = excluded.tier,"
                        " orders_count = excluded.orders_count,"
                        " total_spend = excluded.total_spend, currency = "
                        "excluded.currency,"
                        " last_order_at = excluded.last_order_at,"
                        " engagement = excluded.engagement, updated_at = now()",
                        7, params, id)) {
                        failures++;
                        continue;
                }
                msg = json_pack("{s:s, s:s?, s:I}", "customer_id", id, "tier", tier,
                                "version", (json_int_t)(base + (int64_t)i));
                text = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
                json_decref(msg);
                if (!text || produce(rk, "crm.customers", id, text, strlen(text)))
                        failures++;
                free(text);
        }
        return failures;
}

static int seed_inventory(json_t *list, PGconn *pg, rd_kafka_t *rk, int64_t base)
{
        size_t i;
        json_t *c;
        int failures = 0;

        json_array_foreach(list, i, c)
        {
                const char *sku = str_or_null(c, "sku");
                json_t *st = json_object_get(c, "stock"), *msg;
                const char *params[2];
                char units[24], *text;

                if (!sku || !json_is_integer(st) || json_integer_value(st) < 0) {
                        fprintf(
                            stderr,
                            "promo-seed: inventory[%zu]: sku and stock >= 0 required\n",
                            i);
                        failures++;
                        continue;
                }
                snprintf(units, sizeof(units), "%lld", (long long)json_integer_value(st));
                params[0] = sku;
                params[1] = units;
                if (exec_params(pg,
                                "INSERT INTO inventory (sku, stock) VALUES ($1, $2)"
                                " ON CONFLICT (sku) DO UPDATE SET stock = excluded.stock,"
                                " updated_at = now()",
                                2, params, sku)) {
                        failures++;
                        continue;
                }
                msg = json_pack("{s:s, s:I, s:I}", "sku", sku, "stock",
                                json_integer_value(st), "version",
                                (json_int_t)(base + (int64_t)i));
                text = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
                json_decref(msg);
                if (!text || produce(rk, "inventory.levels", sku, text, strlen(text)))
                        failures++;
                free(text);
        }
        return failures;
}

int main(int argc, char **argv)
{
        const char *file = "deploy/demo-data.json";
        po_config_t cfg;
        char errstr[512];
        json_error_t je;
        json_t *root = NULL;
        PGconn *pg = NULL;
        rd_kafka_t *rk = NULL;
        rd_kafka_conf_t *kc;
        po_avro_t *avro = NULL;
        int i, failures = 0, status = 1;
        int64_t base = now_us();

        if (po_config_load(&cfg, NULL, 0, errstr, sizeof(errstr))) {
                fprintf(stderr, "promo-seed: %s\n", errstr);
                return 2;
        }
        for (i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--file") == 0 && i + 1 < argc) {
                        file = argv[++i];
                } else if (strcmp(argv[i], "--brokers") == 0 && i + 1 < argc &&
                           strlen(argv[i + 1]) < sizeof(cfg.kafka_brokers)) {
                        snprintf(cfg.kafka_brokers, sizeof(cfg.kafka_brokers), "%s",
                                 argv[++i]);
                } else {
                        fprintf(stderr,
                                "usage: promo-seed [--file F] [--brokers HOST:PORT]\n");
                        return 2;
                }
        }
        root = json_load_file(file, JSON_REJECT_DUPLICATES, &je);
        if (!root || !json_is_object(root)) {
                fprintf(stderr, "promo-seed: %s:%d: %s\n", file, je.line,
                        root ? "not an object" : je.text);
                goto out;
        }
        pg = po_pg_connect(&cfg, "promo-seed", errstr, sizeof(errstr));
        if (!pg || po_pg_migrate(pg, NULL, errstr, sizeof(errstr))) {
                fprintf(stderr, "promo-seed: postgres: %s\n", errstr);
                goto out;
        }
        avro = po_avro_new(errstr, sizeof(errstr));
        kc = rd_kafka_conf_new();
        if (!avro ||
            rd_kafka_conf_set(kc, "bootstrap.servers", cfg.kafka_brokers, errstr,
                              sizeof(errstr)) ||
            rd_kafka_conf_set(kc, "enable.idempotence", "true", errstr, sizeof(errstr))) {
                fprintf(stderr, "promo-seed: %s\n", errstr);
                rd_kafka_conf_destroy(kc);
                goto out;
        }
        rd_kafka_conf_set_dr_msg_cb(kc, on_delivery);
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, errstr, sizeof(errstr));
        if (!rk) {
                fprintf(stderr, "promo-seed: %s\n", errstr);
                rd_kafka_conf_destroy(kc);
                goto out;
        }
        failures += seed_codes(json_object_get(root, "codes"), pg, rk, avro, base);
        failures += seed_customers(json_object_get(root, "customers"), pg, rk, base);
        failures += seed_inventory(json_object_get(root, "inventory"), pg, rk, base);
        if (rd_kafka_flush(rk, 30000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
                fprintf(stderr, "promo-seed: not every record was delivered in 30 s\n");
                failures++;
        }
        failures += delivery_failures;
        printf("promo-seed: %zu codes, %zu customers, %zu stock levels from %s: %s\n",
               json_array_size(json_object_get(root, "codes")),
               json_array_size(json_object_get(root, "customers")),
               json_array_size(json_object_get(root, "inventory")), file,
               failures ? "FAILED" : "ok");
        status = failures ? 1 : 0;
out:
        if (rk)
                rd_kafka_destroy(rk);
        po_avro_destroy(avro);
        if (pg)
                PQfinish(pg);
        json_decref(root);
        return status;
}
