/* The Kafka floor of the pipeline's figures (not a test): what the broker
 * and the stage runner alone allow on this machine, with no work in the
 * stages. scripts/bench-floor starts four stage-echo processes chained like
 * the pipeline's stages (tests/integration/stage_echo.c, the real stage
 * runner: transactions, read_committed, the same batching and fetch
 * settings):
 *
 *   P.raw -> intake' -> P.canonical -> validator' -> P.validated
 *     -> calculator' -> P.priced + P.usage -> audit-sink' (commits its
 *     offsets, produces nothing)
 *
 * (P: --prefix, default floor) and this program loads P.raw and reads
 * P.usage, read_committed:
 *
 *   bench-floor throughput [--count N] [--size B] [--linger MS]
 *       N messages of B bytes (default 200000 of 500) as fast as possible;
 *       visible = the last of them readable in P.usage; done = the last
 *       stage has committed past the last of them.
 *       messages/s = N / (that time - the first produce).
 *   bench-floor e2e [--rate R] [--warmup S] [--seconds S] [--size B] [--linger MS]
 *       R messages/s (default 2000); per message sent after the warm-up:
 *       the time it became readable in P.usage - its produce call, the
 *       moment the last stage can see it: a lower bound of raw -> audit row.
 * Common options: --timeout S (no progress for S seconds: give up; 120),
 * --group G (the last stage's consumer group: promo-floor-audit).
 * Last line: "RESULT mode=<mode> key=value ...", for the driver script. */
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "po/config.h"

#define MAX_PARTS 64

typedef struct opts {
        const char *mode, *group, *prefix;
        double rate, warmup, seconds;
        long count;
        int size, linger, timeout;
} opts_t;

static po_config_t cfg;
static char run[24];
static char input[96], watch[96]; /* <prefix>.raw, <prefix>.usage */
static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
        (void)sig;
        stop = 1;
}

/* A message's payload: "<run> <seq> <produce wall us> " padded with '.'. */
static size_t payload(char *buf, size_t size, long seq, int64_t at)
{
        int n = snprintf(buf, size, "%s %ld %" PRId64 " ", run, seq, at);

        if (n < 0 || (size_t)n >= size)
                bench_die("payload size %zu too small", size);
        memset(buf + n, '.', size - (size_t)n);
        return size;
}

/* Reads a message of this run: its sequence number and produce time.
 * Returns 0 for anything else (an earlier run's message). */
static int parse(const rd_kafka_message_t *m, long *seq, int64_t *at)
{
        char buf[80], r[24];
        size_t n = m->len < sizeof(buf) - 1 ? m->len : sizeof(buf) - 1;
        long long t;

        memcpy(buf, m->payload, n);
        buf[n] = '\0';
        if (sscanf(buf, "%23s %ld %lld", r, seq, &t) != 3 || strcmp(r, run) != 0)
                return 0;
        *at = (int64_t)t;
        return 1;
}

typedef struct seen {
        long n;                 /* this run's messages read */
        int64_t last_us;        /* wall time of the last one read */
        int64_t end[MAX_PARTS]; /* per partition: offset after the last one read */
        unsigned char *got;     /* per sequence number: read already */
        long total;
} seen_t;

/* Reads what the tail consumer has (waiting up to wait_ms for the first),
 * recording latencies of sequence numbers >= from in lat when lat is set. */
static void drain(rd_kafka_t *c, seen_t *s, int wait_ms, long from, bench_lat_t *lat)
{
        rd_kafka_message_t *m;

        for (m = rd_kafka_consumer_poll(c, wait_ms); m;
             m = rd_kafka_consumer_poll(c, 0)) {
                long seq;
                int64_t at, now = bench_wall_us();

                if (!m->err && parse(m, &seq, &at) && seq >= 0 && seq < s->total &&
                    !s->got[seq]) {
                        s->got[seq] = 1;
                        s->n++;
                        s->last_us = now;
                        if (m->partition >= 0 && m->partition < MAX_PARTS &&
                            m->offset + 1 > s->end[m->partition])
                                s->end[m->partition] = m->offset + 1;
                        if (lat && seq >= from)
                                bench_lat_add(lat, now - at);
                }
                rd_kafka_message_destroy(m);
        }
}

/* Waits until the last stage's group has committed past every message of
 * the run it read; returns the wall time it saw that, or -1 on timeout. */
static int64_t wait_committed(const opts_t *o, const seen_t *s)
{
        rd_kafka_conf_t *c = rd_kafka_conf_new();
        rd_kafka_topic_partition_list_t *parts =
            rd_kafka_topic_partition_list_new(MAX_PARTS);
        int64_t deadline = bench_mono_ns() + (int64_t)o->timeout * 1000000000LL,
                done = -1;
        char err[512];
        rd_kafka_t *rk;
        int p;

        if (rd_kafka_conf_set(c, "bootstrap.servers", cfg.kafka_brokers, err,
                              sizeof(err)) ||
            rd_kafka_conf_set(c, "group.id", o->group, err, sizeof(err)) ||
            rd_kafka_conf_set(c, "enable.auto.commit", "false", err, sizeof(err)))
                bench_die("%s", err);
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof(err));
        if (!rk)
                bench_die("%s", err);
        for (p = 0; p < MAX_PARTS; p++)
                if (s->end[p] > 0)
                        rd_kafka_topic_partition_list_add(parts, watch, p);
        while (!stop && bench_mono_ns() < deadline) {
                int i, behind = 0;

                if (rd_kafka_committed(rk, parts, 5000) == 0) {
                        for (i = 0; i < parts->cnt; i++)
                                if (parts->elems[i].err ||
                                    parts->elems[i].offset <
                                        s->end[parts->elems[i].partition])
                                        behind = 1;
                        if (!behind) {
                                done = bench_wall_us();
                                break;
                        }
                }
                bench_sleep_ns(2000000);
        }
        rd_kafka_topic_partition_list_destroy(parts);
        rd_kafka_destroy(rk);
        return done;
}

static int run_floor(const opts_t *o, int e2e)
{
        long total = e2e ? (long)(o->rate * (o->warmup + o->seconds)) : o->count;
        long warm = e2e ? (long)(o->rate * o->warmup) : 0, sent = 0;
        char group[64], res[2048], key[48];
        char *buf = malloc((size_t)o->size);
        seen_t s = {.total = total, .got = calloc((size_t)total, 1)};
        bench_lat_t lat = {0};
        int64_t t0, first_us = 0, last_us = 0, moved, done_us = -1;
        rd_kafka_t *p, *c;
        long before;

        if (!buf || !s.got)
                bench_die("out of memory");
        snprintf(group, sizeof(group), "bench-floor-%s", run);
        c = bench_tail_consumer(cfg.kafka_brokers, group, watch);
        p = bench_producer(cfg.kafka_brokers, "bench-floor",
                           o->linger >= 0 ? o->linger
                           : e2e          ? 0
                                          : 5);
        printf("%s: %ld messages of %d bytes to %s%s (run %s)\n", o->mode, total, o->size,
               input, e2e ? " paced" : " as fast as possible", run);
        fflush(stdout);
        t0 = bench_mono_ns();
        while (sent < total && !stop) {
                int64_t at;

                if (e2e) {
                        int64_t due = t0 + (int64_t)((double)sent * 1e9 / o->rate);

                        int64_t left;

                        /* Read the output while waiting for the next send. */
                        while ((left = due - bench_mono_ns()) > 0 && !stop) {
                                drain(c, &s, 0, warm, &lat);
                                bench_sleep_ns(left < 200000 ? left : 200000);
                        }
                }
                at = bench_wall_us();
                snprintf(key, sizeof(key), "%s-%ld", run, sent);
                bench_produce(p, input, key, strlen(key), buf,
                              payload(buf, (size_t)o->size, sent, at), NULL);
                if (!first_us)
                        first_us = at;
                last_us = at;
                sent++;
                if (!e2e && sent % 1000 == 0)
                        drain(c, &s, 0, warm, NULL);
        }
        bench_flush(p);
        rd_kafka_destroy(p);
        printf("  sent %ld in %.2f s (%.0f/s)\n", sent,
               (double)(last_us - first_us) / 1e6,
               sent > 1 ? (double)(sent - 1) * 1e6 / (double)(last_us - first_us) : 0.0);
        fflush(stdout);
        moved = bench_mono_ns();
        before = s.n;
        while (s.n < sent && !stop) {
                drain(c, &s, 100, warm, e2e ? &lat : NULL);
                if (s.n != before) {
                        before = s.n;
                        moved = bench_mono_ns();
                } else if (bench_mono_ns() - moved > (int64_t)o->timeout * 1000000000LL) {
                        break;
                }
        }
        rd_kafka_consumer_close(c);
        rd_kafka_destroy(c);
        if (s.n < sent) {
                fprintf(stderr, "bench-floor: %ld of %ld messages reached %s\n", s.n,
                        sent, watch);
                return 1;
        }
        if (!e2e) {
                done_us = wait_committed(o, &s);
                if (done_us < 0) {
                        fprintf(stderr,
                                "bench-floor: the last stage (%s) did not commit "
                                "the run's offsets\n",
                                o->group);
                        return 1;
                }
                printf("  visible in %s: %.0f messages/s (last after %.2f s); "
                       "committed by the last stage: %.0f messages/s (after %.2f s)\n",
                       watch, (double)sent * 1e6 / (double)(s.last_us - first_us),
                       (double)(s.last_us - first_us) / 1e6,
                       (double)sent * 1e6 / (double)(done_us - first_us),
                       (double)(done_us - first_us) / 1e6);
                printf("RESULT mode=floor-throughput messages=%ld size=%d "
                       "visible_per_s=%.0f "
                       "done_per_s=%.0f\n",
                       sent, o->size, (double)sent * 1e6 / (double)(s.last_us - first_us),
                       (double)sent * 1e6 / (double)(done_us - first_us));
        } else {
                snprintf(res, sizeof(res), "RESULT mode=floor-e2e rate=%.0f size=%d",
                         o->rate, o->size);
                bench_lat_report(&lat, "visible",
                                 "produce -> readable by the last stage (read_committed)",
                                 res, sizeof(res));
                printf("%s\n", res);
        }
        bench_lat_free(&lat);
        free(s.got);
        free(buf);
        return 0;
}

static void usage(void) __attribute__((noreturn));
static void usage(void)
{
        fprintf(stderr,
                "usage: bench-floor throughput|e2e [--count N] [--rate R] [--warmup S] "
                "[--seconds S] [--size B] [--linger MS] [--timeout S] [--group G] "
                "[--prefix P]\n");
        exit(2);
}

/* A number option's value, or usage() when it does not parse or fit. */
static double num(int argc, char **argv, int *i, double min, double max)
{
        char *end;
        double v;

        if (*i + 1 >= argc)
                usage();
        v = strtod(argv[++*i], &end);
        if (*end || end == argv[*i] || !(v >= min && v <= max)) {
                fprintf(stderr, "bench-floor: %s: %s is not in %g..%g\n", argv[*i - 1],
                        argv[*i], min, max);
                exit(2);
        }
        return v;
}

int main(int argc, char **argv)
{
        opts_t o = {.group = "promo-floor-audit",
                    .prefix = "floor",
                    .rate = 2000,
                    .warmup = 10,
                    .seconds = 30,
                    .count = 200000,
                    .size = 500,
                    .linger = -1,
                    .timeout = 120};
        char err[512];
        int i;

        bench_prog = "bench-floor";
        if (argc < 2)
                usage();
        o.mode = argv[1];
        for (i = 2; i < argc; i++) {
                if (strcmp(argv[i], "--count") == 0)
                        o.count = (long)num(argc, argv, &i, 1, 10000000);
                else if (strcmp(argv[i], "--rate") == 0)
                        o.rate = num(argc, argv, &i, 1, 1000000);
                else if (strcmp(argv[i], "--warmup") == 0)
                        o.warmup = num(argc, argv, &i, 0, 3600);
                else if (strcmp(argv[i], "--seconds") == 0)
                        o.seconds = num(argc, argv, &i, 1, 3600);
                else if (strcmp(argv[i], "--size") == 0)
                        o.size = (int)num(argc, argv, &i, 64, 1000000);
                else if (strcmp(argv[i], "--linger") == 0)
                        o.linger = (int)num(argc, argv, &i, 0, 10000);
                else if (strcmp(argv[i], "--timeout") == 0)
                        o.timeout = (int)num(argc, argv, &i, 1, 3600);
                else if (strcmp(argv[i], "--group") == 0 && i + 1 < argc)
                        o.group = argv[++i];
                else if (strcmp(argv[i], "--prefix") == 0 && i + 1 < argc &&
                         strlen(argv[i + 1]) < 64)
                        o.prefix = argv[++i];
                else
                        usage();
        }
        snprintf(run, sizeof(run), "%ld%02d", (long)time(NULL) % 100000000,
                 (int)getpid() % 100);
        snprintf(input, sizeof(input), "%s.raw", o.prefix);
        snprintf(watch, sizeof(watch), "%s.usage", o.prefix);
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        if (po_config_load(&cfg, NULL, 0, err, sizeof(err)))
                bench_die("%s", err);
        if (strcmp(o.mode, "throughput") == 0)
                return run_floor(&o, 0);
        if (strcmp(o.mode, "e2e") == 0)
                return run_floor(&o, 1);
        usage();
}
