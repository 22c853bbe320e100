/* What the Kafka benchmarks share (bench-pipeline, bench-floor): clocks,
 * latency samples with nearest-rank percentiles, a load producer and a
 * read_committed tail consumer. Benchmarks die on any setup error. */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

extern const char *bench_prog; /* the prefix of bench_die's message */

void bench_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

int64_t bench_wall_us(void);     /* CLOCK_REALTIME, us */
int64_t bench_mono_ns(void);     /* CLOCK_MONOTONIC, ns */
void bench_sleep_ns(int64_t ns); /* no-op when ns <= 0 */

typedef struct bench_lat {
        int64_t *v; /* us */
        size_t n, cap;
} bench_lat_t;

void bench_lat_add(bench_lat_t *l, int64_t us);
void bench_lat_free(bench_lat_t *l);
/* Sorts, prints "name what n= p50= p99= p99.9= max=" and appends
 * " <name>_n=... <name>_p50_ms=... ..." to res (the RESULT line). */
void bench_lat_report(bench_lat_t *l, const char *name, const char *what, char *res,
                      size_t size);

/* An idempotent producer with the given linger.ms. */
rd_kafka_t *bench_producer(const char *brokers, const char *client_id, int linger_ms);
/* rd_kafka_producev with a copy of key and value, waiting while the queue is
 * full; headers (may be NULL) are owned by the call. */
void bench_produce(rd_kafka_t *rk, const char *topic, const void *key, size_t key_len,
                   const void *val, size_t len, rd_kafka_headers_t *h);
void bench_flush(rd_kafka_t *rk);
/* A read_committed consumer in group `group` assigned every partition of
 * topic from its end now (nothing written before the call is read). */
rd_kafka_t *bench_tail_consumer(const char *brokers, const char *group,
                                const char *topic);

/* A histogram of a service's /metrics (cumulative buckets, as rendered):
 * bench_hist_scrape reads the series `name` (e.g.
 * "promo_stage_latency_seconds") from http://127.0.0.1:port/metrics;
 * returns 0, or -1 when the service does not answer or has no such series. */
#define BENCH_HIST_MAX 32
typedef struct bench_hist {
        int n;                        /* buckets, +Inf last */
        double le_ms[BENCH_HIST_MAX]; /* upper bounds; +Inf as a negative value */
        uint64_t cum[BENCH_HIST_MAX]; /* cumulative counts */
} bench_hist_t;

int bench_hist_scrape(int port, const char *name, bench_hist_t *h);
/* after - before (the observations between two scrapes); prints the count,
 * the share within 10 ms and the interpolated p50 / p99 (Prometheus'
 * histogram_quantile), and appends "<label>_n=... <label>_within10_pct=...
 * <label>_p50_ms=... <label>_p99_ms=..." to res. */
void bench_hist_report(const bench_hist_t *before, const bench_hist_t *after,
                       const char *label, const char *what, char *res, size_t size);

#endif
