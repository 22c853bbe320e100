/* Benchmark of the running pipeline (not a test): the load generator and
 * the clock of docs/BENCHMARKS.md's "Pipeline" sections. The services run
 * as separate processes (scripts/bench-pipeline starts them); this program
 * only talks to Kafka and PostgreSQL.
 *
 *   bench-pipeline validator [--rate R] [--warmup S] [--seconds S]
 *                            [--input TOPIC] [--output TOPIC]
 *       Canonical Avro Orders (po_gen payloads normalized as intake does)
 *       at a constant R per second into the validator's input topic; each
 *       order's received_at is set to the wall-clock time of its produce
 *       call. Reads the validator's output (read_committed) and, for every
 *       order sent after the warm-up, records:
 *         processed = validated_at (the validator's clock, just before it
 *                     encodes and queues the output) - received_at
 *         produced  = the output record's Kafka timestamp (CreateTime, ms,
 *                     set when the validator's producer took the record)
 *                     - received_at
 *         visible   = the time this program consumed the committed output
 *                     - received_at (includes the transaction's wait for
 *                     its commit: what the next stage sees)
 *   bench-pipeline throughput [--count N] [--rate R]
 *       N raw channel orders (po_gen, round robin over the four channels,
 *       about half with one or two of the run's codes) to orders.raw as fast
 *       as possible (or at R/s), then waits until every expected usage row
 *       (one per requested code) is in PostgreSQL; orders/s = N / (last
 *       row's recorded_at - first produce).
 *   bench-pipeline e2e [--rate R] [--warmup S] [--seconds S]
 *       Raw orders at a constant R per second; per order with codes sent
 *       after the warm-up: min(usage_events.recorded_at) of its rows - the
 *       wall-clock time of its produce call (and, split, occurred_at = the
 *       validator's validated_at - produce).
 * Common options: [--linger MS] (the load producer's linger.ms: default 0
 * when paced, each order its own request; 5, librdkafka's own default,
 * when unpaced) [--run-id ID] [--timeout S] (give up when no progress
 * for S seconds, default 120). The run's three codes (B<run>P, B<run>F,
 * B<run>T) are inserted into PostgreSQL's codes table first, without
 * limits, so runs do not depend on each other.
 * Last line: "RESULT mode=<mode> key=value ...", for the driver script. */
#include <inttypes.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "po/channel.h"
#include "po/channel_gen.h"
#include "po/config.h"
#include "po/messages.h"
#include "po/order_avro.h"
#include "po/pg.h"
#include "po/profile.h"

#include "bench_util.h"

#define ARENA_LIMIT (8u << 20)
#define NCODES 3

static const char *const channels[] = {"web", "marketplace", "pos", "mobile"};

typedef struct opts {
        const char *mode, *input, *output, *run_id;
        double rate, warmup, seconds;
        int linger;       /* the load producer's linger.ms; -1: the mode's default */
        int metrics_port; /* validator: its health port, for its own histogram; 0: none */
        long count;
        int timeout;
} opts_t;

typedef struct sent {
        char *order_id;
        int64_t at_us;
} sent_t;

static po_config_t cfg;
static PGconn *pg;
static char run[24];
static char code_names[NCODES][32];
static char tail_group[96]; /* the read_committed tail consumer's group */
static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
        (void)sig;
        stop = 1;
}

/* ---- PostgreSQL ---- */

static PGresult *query(const char *sql, int n, const char *const *params)
{
        PGresult *r = PQexecParams(pg, sql, n, NULL, params, NULL, NULL, 0);

        if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK)
                bench_die("%s: %s", sql, PQresultErrorMessage(r));
        return r;
}

static char codes_array[256];

static void add_codes(void)
{
        static const char *const defs[NCODES] = {
            "{\"code\": \"%s\", \"status\": \"active\", \"type\": \"percentage\", "
            "\"value\": 1000}",
            "{\"code\": \"%s\", \"status\": \"active\", \"type\": \"fixed\", \"value\": "
            "500, \"currency\": \"USD\", \"min_spend\": 2000}",
            "{\"code\": \"%s\", \"status\": \"active\", \"type\": \"percentage\", "
            "\"value\": 500, \"tiers\": [\"gold\", \"platinum\"], \"tier_values\": "
            "{\"gold\": 1000, \"platinum\": 1500}, \"combinable\": true}"};
        static const char suffix[NCODES] = {'P', 'F', 'T'};
        char json[512];
        int i;

        snprintf(codes_array, sizeof(codes_array), "{");
        for (i = 0; i < NCODES; i++) {
                const char *p[2];

                snprintf(code_names[i], sizeof(code_names[i]), "B%s%c", run, suffix[i]);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
                snprintf(json, sizeof(json), defs[i], code_names[i]);
#pragma GCC diagnostic pop
                p[0] = code_names[i];
                p[1] = json;
                PQclear(query("INSERT INTO codes (code, definition, status, version) "
                              "VALUES ($1, $2::jsonb, 'active', 1) ON CONFLICT (code) "
                              "DO NOTHING",
                              2, p));
                snprintf(codes_array + strlen(codes_array),
                         sizeof(codes_array) - strlen(codes_array), "%s%s", i ? "," : "",
                         code_names[i]);
        }
        snprintf(codes_array + strlen(codes_array),
                 sizeof(codes_array) - strlen(codes_array), "}");
}

/* Usage rows of the run so far (the counters the sink keeps with them). */
static long long rows_stored(void)
{
        const char *p[1] = {codes_array};
        PGresult *r = query("SELECT coalesce(sum(redemptions + rejections), 0) FROM "
                            "usage_counters WHERE code = ANY($1::text[])",
                            1, p);
        long long n = atoll(PQgetvalue(r, 0, 0));

        PQclear(r);
        return n;
}

/* Waits until want rows are stored; 0, or -1 when nothing moved for
 * timeout seconds. */
static int wait_rows(long long want, int timeout)
{
        long long n = -1, last = -1;
        int64_t moved = bench_mono_ns();

        while (!stop) {
                n = rows_stored();
                if (n >= want)
                        return 0;
                if (n != last) {
                        last = n;
                        moved = bench_mono_ns();
                }
                if (bench_mono_ns() - moved > (int64_t)timeout * 1000000000LL)
                        break;
                bench_sleep_ns(100000000LL);
        }
        fprintf(stderr, "bench-pipeline: %lld of %lld usage rows stored\n", n, want);
        return -1;
}

/* ---- Kafka ---- */

/* ---- order generation ---- */

typedef struct gen {
        po_gen_t g;
        po_dynbuf_t payload, out;
        po_profiles_t *profiles;
        po_avro_t *avro;
        const char *codes[NCODES];
        uint64_t n;
} gen_t;

static void gen_open(gen_t *ge)
{
        po_gen_conf_t gc = {
            .seed = 1, .run_id = run, .codes = ge->codes, .code_count = NCODES};
        char err[512];
        int i;

        for (i = 0; i < NCODES; i++)
                ge->codes[i] = code_names[i];
        gc.base_time_ms = bench_wall_us() / 1000;
        if (po_gen_init(&ge->g, &gc, err, sizeof(err)))
                bench_die("generator: %s", err);
        po_dynbuf_init(&ge->payload, 16u << 20);
        po_dynbuf_init(&ge->out, 16u << 20);
        ge->profiles = po_profiles_load(PROFILES_CONF, err, sizeof(err));
        if (!ge->profiles)
                bench_die("%s", err);
        ge->avro = po_avro_new(err, sizeof(err));
        if (!ge->avro)
                bench_die("avro: %s", err);
}

/* The next raw payload in ge->payload, described in *meta. */
static void gen_raw(gen_t *ge, po_gen_order_t *meta)
{
        po_dynbuf_reset(&ge->payload);
        if (po_gen_next(&ge->g, channels[ge->n++ % 4], &ge->payload, meta))
                bench_die("generator failed");
}

/* The next canonical order, received now, Avro-encoded in ge->out. */
static int64_t gen_canonical(gen_t *ge, po_gen_order_t *meta)
{
        po_channel_reject_t rej;
        po_channel_ctx_t ctx;
        po_order_t o;
        char err[512];
        int64_t at;

        gen_raw(ge, meta);
        ctx.channel = meta->channel;
        ctx.account = meta->account;
        ctx.received_at_us = 0;
        ctx.profile = po_profiles_lookup(ge->profiles, meta->channel, meta->account);
        po_order_init(&o, ARENA_LIMIT);
        if (po_channel_normalize(&ctx, ge->payload.data, ge->payload.len, &o, &rej))
                bench_die("generated %s order rejected: %s %s: %s", meta->channel,
                          rej.reason, rej.field, rej.message);
        po_dynbuf_reset(&ge->out);
        at = bench_wall_us();
        o.received_at_us = at;
        if (po_order_encode(ge->avro, &o, &ge->out, err, sizeof(err)))
                bench_die("encode: %s", err);
        po_order_release(&o);
        return at;
}

/* One order to topic; raw orders carry the channel adapter's headers. */
static void produce(rd_kafka_t *rk, const char *topic, const char *key, const void *val,
                    size_t len, const char *channel, const char *account)
{
        rd_kafka_headers_t *h = NULL;

        if (channel) {
                h = rd_kafka_headers_new(2);
                rd_kafka_header_add(h, "channel", -1, channel, -1);
                rd_kafka_header_add(h, "account", -1, account, -1);
        }
        bench_produce(rk, topic, key, strlen(key), val, len, h);
}

/* ---- validator ---- */

static int run_validator(const opts_t *o)
{
        gen_t ge = {0};
        rd_kafka_t *p, *c;
        bench_lat_t processed = {0}, produced = {0}, visible = {0};
        long total = (long)(o->rate * (o->warmup + o->seconds)), sent = 0, measured = 0,
             seen = 0;
        int64_t t0, mstart_us = 0, mend_us = 0, last_seen = 0, behind_max = 0;
        int64_t first_send = 0, last_send = 0;
        char res[2048], err[512];
        bench_hist_t h0 = {0}, h1 = {0};

        add_codes();
        gen_open(&ge);
        c = bench_tail_consumer(cfg.kafka_brokers, tail_group, o->output);
        p = bench_producer(cfg.kafka_brokers, "bench-pipeline",
                           o->linger >= 0 ? o->linger : 0);
        printf("validator: %.0f orders/s into %s for %.0f s warm-up + %.0f s measured; "
               "output %s (run %s)\n",
               o->rate, o->input, o->warmup, o->seconds, o->output, run);
        fflush(stdout);
        t0 = bench_mono_ns();
        last_seen = t0;
        while (!stop) {
                int64_t now = bench_mono_ns();
                rd_kafka_message_t *m;
                int k;

                while (sent < total &&
                       t0 + (int64_t)((double)sent * 1e9 / o->rate) <= now) {
                        po_gen_order_t meta;
                        int64_t due = t0 + (int64_t)((double)sent * 1e9 / o->rate), at;

                        if (now - due > behind_max)
                                behind_max = now - due;
                        at = gen_canonical(&ge, &meta);
                        produce(p, o->input, meta.order_id, ge.out.data, ge.out.len, NULL,
                                NULL);
                        if (!first_send)
                                first_send = at;
                        last_send = at;
                        if (sent == (long)(o->rate * o->warmup)) {
                                mstart_us = at;
                                /* The validator's own histogram from here on. */
                                if (o->metrics_port &&
                                    bench_hist_scrape(o->metrics_port,
                                                      "promo_stage_latency_seconds", &h0))
                                        fprintf(stderr,
                                                "bench-pipeline: no histogram on "
                                                "port %d\n",
                                                o->metrics_port);
                        }
                        sent++;
                        if (sent > (long)(o->rate * o->warmup))
                                measured++;
                        now = bench_mono_ns();
                }
                if (sent == total && !mend_us)
                        mend_us = last_send + 1;
                rd_kafka_poll(p, 0);
                for (k = 0; k < 2000; k++) {
                        int64_t got;
                        po_validated_t vo;
                        rd_kafka_timestamp_type_t tt;
                        int64_t ts;

                        m = rd_kafka_consumer_poll(c, 0);
                        if (!m)
                                break;
                        got = bench_wall_us();
                        if (m->err) {
                                rd_kafka_message_destroy(m);
                                continue;
                        }
                        memset(&vo, 0, sizeof(vo));
                        po_order_init(&vo.order, ARENA_LIMIT);
                        if (po_validated_decode(ge.avro, m->payload, m->len, &vo, err,
                                                sizeof(err)))
                                bench_die("validated order: %s", err);
                        if (strstr(vo.order.order_id, run) &&
                            vo.order.received_at_us >= mstart_us && mstart_us &&
                            (!mend_us || vo.order.received_at_us < mend_us)) {
                                ts = rd_kafka_message_timestamp(m, &tt);
                                bench_lat_add(&processed,
                                              vo.validated_at - vo.order.received_at_us);
                                bench_lat_add(&produced,
                                              ts * 1000 - vo.order.received_at_us);
                                bench_lat_add(&visible, got - vo.order.received_at_us);
                                seen++;
                        }
                        last_seen = bench_mono_ns();
                        po_order_release(&vo.order);
                        rd_kafka_message_destroy(m);
                }
                if (sent == total && seen >= measured)
                        break;
                if (sent == total &&
                    bench_mono_ns() - last_seen > (int64_t)o->timeout * 1000000000LL) {
                        fprintf(stderr, "bench-pipeline: %ld of %ld outputs seen\n", seen,
                                measured);
                        break;
                }
                if (sent < total) {
                        int64_t next = t0 + (int64_t)((double)sent * 1e9 / o->rate);

                        if (k == 0)
                                bench_sleep_ns(next - bench_mono_ns() < 200000
                                                   ? next - bench_mono_ns()
                                                   : 200000);
                } else if (k == 0) {
                        bench_sleep_ns(1000000);
                }
        }
        bench_flush(p);
        if (o->metrics_port)
                bench_hist_scrape(o->metrics_port, "promo_stage_latency_seconds", &h1);
        printf("  sent %ld orders in %.2f s: %.0f orders/s (most behind schedule: %.2f "
               "ms); measured %ld, outputs seen %ld\n",
               sent, (double)(last_send - first_send) / 1e6,
               (double)(sent - 1) * 1e6 / (double)(last_send - first_send),
               (double)behind_max / 1e6, measured, seen);
        snprintf(res, sizeof(res),
                 "RESULT mode=validator rate=%.0f achieved=%.0f measured=%ld seen=%ld",
                 o->rate, (double)(sent - 1) * 1e6 / (double)(last_send - first_send),
                 measured, seen);
        bench_lat_report(&processed, "processed",
                         "produce -> validator done (its validated_at)", res,
                         sizeof(res));
        bench_lat_report(&produced, "produced",
                         "produce -> output record's CreateTime (ms)", res, sizeof(res));
        bench_lat_report(&visible, "visible",
                         "produce -> output consumed, read_committed", res, sizeof(res));
        if (o->metrics_port)
                bench_hist_report(
                    &h0, &h1, "in_stage",
                    "poll -> output produced (its promo_stage_latency_seconds)", res,
                    sizeof(res));
        printf("%s\n", res);
        rd_kafka_consumer_close(c);
        rd_kafka_destroy(c);
        rd_kafka_destroy(p);
        return seen >= measured ? 0 : 1;
}

/* ---- raw orders: throughput and end to end ---- */

static int cmp_sent(const void *a, const void *b)
{
        return strcmp(((const sent_t *)a)->order_id, ((const sent_t *)b)->order_id);
}

static int run_raw(const opts_t *o, int e2e)
{
        gen_t ge = {0};
        rd_kafka_t *p;
        long total = e2e ? (long)(o->rate * (o->warmup + o->seconds)) : o->count;
        long warm = e2e ? (long)(o->rate * o->warmup) : 0, sent = 0;
        long long want = 0;
        int64_t t0, first_us = 0, last_us = 0, done_us;
        sent_t *log = NULL;
        size_t nlog = 0;
        char res[2048];
        int rc = 0;

        add_codes();
        gen_open(&ge);
        p = bench_producer(cfg.kafka_brokers, "bench-pipeline",
                           o->linger >= 0 ? o->linger
                           : e2e          ? 0
                                          : 5);
        if (e2e && !(log = calloc((size_t)total, sizeof(*log))))
                bench_die("out of memory");
        printf("%s: %ld raw orders to orders.raw%s (run %s)\n",
               e2e ? "e2e" : "throughput", total,
               o->rate > 0 ? " paced" : " as fast as possible", run);
        fflush(stdout);
        t0 = bench_mono_ns();
        while (sent < total && !stop) {
                po_gen_order_t meta;
                int64_t at;

                if (o->rate > 0)
                        bench_sleep_ns(t0 + (int64_t)((double)sent * 1e9 / o->rate) -
                                       bench_mono_ns());
                gen_raw(&ge, &meta);
                at = bench_wall_us();
                produce(p, "orders.raw", meta.external_id, ge.payload.data,
                        ge.payload.len, meta.channel, meta.account);
                if (!first_us)
                        first_us = at;
                last_us = at;
                want += (long long)meta.code_count;
                if (e2e && sent >= warm && meta.code_count) {
                        log[nlog].order_id = strdup(meta.order_id);
                        log[nlog++].at_us = at;
                }
                sent++;
        }
        bench_flush(p);
        rd_kafka_destroy(p);
        printf("  sent %ld orders in %.2f s (%.0f orders/s), expecting %lld usage rows\n",
               sent, (double)(last_us - first_us) / 1e6,
               (double)(sent - 1) * 1e6 / (double)(last_us - first_us), want);
        fflush(stdout);
        if (wait_rows(want, o->timeout))
                rc = 1;
        done_us = bench_wall_us();
        if (!e2e) {
                const char *pa[1] = {codes_array};
                PGresult *r = query(
                    "SELECT (extract(epoch FROM max(recorded_at)) * 1e6)::bigint, "
                    "(extract(epoch FROM min(recorded_at)) * 1e6)::bigint, "
                    "(extract(epoch FROM percentile_disc(0.1) WITHIN GROUP (ORDER BY "
                    "recorded_at)) * 1e6)::bigint, "
                    "(extract(epoch FROM percentile_disc(0.9) WITHIN GROUP (ORDER BY "
                    "recorded_at)) * 1e6)::bigint, count(*) "
                    "FROM usage_events WHERE code = ANY($1::text[])",
                    1, pa);
                int64_t last = atoll(PQgetvalue(r, 0, 0)),
                        first = atoll(PQgetvalue(r, 0, 1)),
                        p10 = atoll(PQgetvalue(r, 0, 2)),
                        p90 = atoll(PQgetvalue(r, 0, 3));
                double whole = (double)sent * 1e6 / (double)(last - first_us);
                double mid = 0.8 * (double)sent * 1e6 / (double)(p90 - p10);

                printf("  last usage row %.2f s after the first produce (first row after "
                       "%.2f s; checked at %.2f s)\n",
                       (double)(last - first_us) / 1e6, (double)(first - first_us) / 1e6,
                       (double)(done_us - first_us) / 1e6);
                printf("  raw -> audit row: %.0f orders/s over the whole run; %.0f "
                       "orders/s between the 10th and 90th percentile rows\n",
                       whole, mid);
                snprintf(res, sizeof(res),
                         "RESULT mode=throughput orders=%ld rows=%s publish_s=%.2f "
                         "total_s=%.2f orders_per_s=%.0f mid_orders_per_s=%.0f",
                         sent, PQgetvalue(r, 0, 4), (double)(last_us - first_us) / 1e6,
                         (double)(last - first_us) / 1e6, whole, mid);
                PQclear(r);
                printf("%s\n", res);
        } else {
                const char *pa[1] = {codes_array};
                PGresult *r =
                    query("SELECT order_id, (extract(epoch FROM min(recorded_at)) * "
                          "1e6)::bigint, (extract(epoch FROM min(occurred_at)) * "
                          "1e6)::bigint FROM usage_events WHERE code = ANY($1::text[]) "
                          "GROUP BY order_id",
                          1, pa);
                bench_lat_t total_l = {0}, to_val = {0}, val_to_row = {0};
                int i;

                qsort(log, nlog, sizeof(*log), cmp_sent);
                for (i = 0; i < PQntuples(r); i++) {
                        sent_t key = {.order_id = PQgetvalue(r, i, 0)}, *s;
                        int64_t rec = atoll(PQgetvalue(r, i, 1)),
                                occ = atoll(PQgetvalue(r, i, 2));

                        s = bsearch(&key, log, nlog, sizeof(*log), cmp_sent);
                        if (!s)
                                continue; /* warm-up */
                        bench_lat_add(&total_l, rec - s->at_us);
                        bench_lat_add(&to_val, occ - s->at_us);
                        bench_lat_add(&val_to_row, rec - occ);
                }
                PQclear(r);
                snprintf(res, sizeof(res),
                         "RESULT mode=e2e rate=%.0f achieved=%.0f orders_measured=%zu",
                         o->rate, (double)(sent - 1) * 1e6 / (double)(last_us - first_us),
                         nlog);
                printf("  per order with codes sent after the warm-up (%zu):\n", nlog);
                bench_lat_report(&total_l, "e2e",
                                 "raw produce -> first audit row (recorded_at)", res,
                                 sizeof(res));
                bench_lat_report(&to_val, "to_valid",
                                 "raw produce -> validator (occurred_at)", res,
                                 sizeof(res));
                bench_lat_report(&val_to_row, "to_row", "validator -> audit row", res,
                                 sizeof(res));
                printf("%s\n", res);
                if (total_l.n != nlog)
                        rc = 1;
        }
        return rc;
}

static void usage(void)
{
        fprintf(
            stderr,
            "usage: bench-pipeline validator [--rate 5000] [--warmup 10] [--seconds "
            "30] [--input bench.canonical] [--output bench.validated]\n"
            "                          [--metrics-port P (the validator's health port)]\n"
            "       bench-pipeline throughput [--count 200000] [--rate R]\n"
            "       bench-pipeline e2e [--rate 2000] [--warmup 10] [--seconds 30]\n"
            "common: [--linger MS] [--run-id ID] [--timeout S]\n");
        exit(2);
}

int main(int argc, char **argv)
{
        opts_t o = {.input = "bench.canonical",
                    .output = "bench.validated",
                    .warmup = 10,
                    .seconds = 30,
                    .count = 200000,
                    .timeout = 120};
        char err[512];
        int i, rc;

        bench_prog = "bench-pipeline";
        if (argc < 2)
                usage();
        o.mode = argv[1];
        o.linger = -1;
        o.rate = strcmp(o.mode, "validator") == 0 ? 5000
                 : strcmp(o.mode, "e2e") == 0     ? 2000
                                                  : 0;
        for (i = 2; i < argc; i++) {
                const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

                if (!v)
                        usage();
                if (strcmp(a, "--rate") == 0)
                        o.rate = atof(v);
                else if (strcmp(a, "--warmup") == 0)
                        o.warmup = atof(v);
                else if (strcmp(a, "--seconds") == 0)
                        o.seconds = atof(v);
                else if (strcmp(a, "--count") == 0)
                        o.count = atol(v);
                else if (strcmp(a, "--timeout") == 0)
                        o.timeout = atoi(v);
                else if (strcmp(a, "--input") == 0)
                        o.input = v;
                else if (strcmp(a, "--output") == 0)
                        o.output = v;
                else if (strcmp(a, "--run-id") == 0)
                        o.run_id = v;
                else if (strcmp(a, "--linger") == 0)
                        o.linger = atoi(v);
                else if (strcmp(a, "--metrics-port") == 0)
                        o.metrics_port = atoi(v);
                else
                        usage();
                i++;
        }
        if (o.rate < 0 || o.warmup < 0 || !(o.seconds > 0) || o.count < 1 ||
            o.timeout < 1 || o.metrics_port < 0 || o.metrics_port > 65535)
                usage();
        if (o.run_id) {
                size_t k, n = strlen(o.run_id);

                for (k = 0; k < n; k++)
                        if (!((o.run_id[k] >= '0' && o.run_id[k] <= '9') ||
                              (o.run_id[k] >= 'A' && o.run_id[k] <= 'Z')))
                                break;
                if (n == 0 || n >= sizeof(run) || k < n)
                        bench_die("--run-id: 1..%zu of 0-9 A-Z", sizeof(run) - 1);
                memcpy(run, o.run_id, n + 1);
        } else
                snprintf(run, sizeof(run), "%ld%02d", (long)time(NULL) % 100000000,
                         (int)getpid() % 100);
        snprintf(tail_group, sizeof(tail_group), "bench-pipeline-%s", run);
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        if (po_config_load(&cfg, NULL, 0, err, sizeof(err)))
                bench_die("%s", err);
        pg = po_pg_connect(&cfg, "bench-pipeline", err, sizeof(err));
        if (!pg)
                bench_die("%s", err);
        if (strcmp(o.mode, "validator") == 0) {
                if (!(o.rate > 0))
                        usage();
                rc = run_validator(&o);
        } else if (strcmp(o.mode, "throughput") == 0) {
                rc = run_raw(&o, 0);
        } else if (strcmp(o.mode, "e2e") == 0) {
                if (!(o.rate > 0))
                        usage();
                rc = run_raw(&o, 1);
        } else {
                usage();
        }
        PQfinish(pg);
        return rc;
}
