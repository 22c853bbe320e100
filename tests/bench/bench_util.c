#include "bench_util.h"

#include <inttypes.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

const char *bench_prog = "bench";

void bench_die(const char *fmt, ...)
{
        va_list ap;

        fprintf(stderr, "%s: ", bench_prog);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        exit(1);
}

int64_t bench_wall_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t bench_mono_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void bench_sleep_ns(int64_t ns)
{
        if (ns > 0)
                nanosleep(&(struct timespec){.tv_sec = (time_t)(ns / 1000000000LL),
                                             .tv_nsec = (long)(ns % 1000000000LL)},
                          NULL);
}

void bench_lat_add(bench_lat_t *l, int64_t us)
{
        if (l->n == l->cap) {
                size_t cap = l->cap ? 2 * l->cap : 4096;
                int64_t *n = realloc(l->v, cap * sizeof(*n));

                if (!n)
                        bench_die("out of memory");
                l->v = n;
                l->cap = cap;
        }
        l->v[l->n++] = us;
}

void bench_lat_free(bench_lat_t *l)
{
        free(l->v);
        memset(l, 0, sizeof(*l));
}

static int cmp_i64(const void *a, const void *b)
{
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

        return (x > y) - (x < y);
}

/* Nearest-rank percentile of the sorted values, in ms. */
static double pct_ms(const bench_lat_t *l, double p)
{
        size_t k;

        if (!l->n)
                return -1;
        k = (size_t)(p / 100.0 * (double)l->n + 0.999999);
        if (k < 1)
                k = 1;
        if (k > l->n)
                k = l->n;
        return (double)l->v[k - 1] / 1000.0;
}

void bench_lat_report(bench_lat_t *l, const char *name, const char *what, char *res,
                      size_t size)
{
        size_t len = strlen(res);

        qsort(l->v, l->n, sizeof(*l->v), cmp_i64);
        printf("  %-9s %-62s n=%zu p50=%.2f p99=%.2f p99.9=%.2f max=%.2f ms\n", name,
               what, l->n, pct_ms(l, 50), pct_ms(l, 99), pct_ms(l, 99.9), pct_ms(l, 100));
        snprintf(res + len, size - len,
                 " %s_n=%zu %s_p50_ms=%.2f %s_p99_ms=%.2f %s_p999_ms=%.2f %s_max_ms=%.2f",
                 name, l->n, name, pct_ms(l, 50), name, pct_ms(l, 99), name,
                 pct_ms(l, 99.9), name, pct_ms(l, 100));
}

rd_kafka_t *bench_producer(const char *brokers, const char *client_id, int linger_ms)
{
        rd_kafka_conf_t *c = rd_kafka_conf_new();
        char err[512], linger[16];
        rd_kafka_t *rk;

        snprintf(linger, sizeof(linger), "%d", linger_ms);
        if (rd_kafka_conf_set(c, "bootstrap.servers", brokers, err, sizeof(err)) ||
            rd_kafka_conf_set(c, "client.id", client_id, err, sizeof(err)) ||
            rd_kafka_conf_set(c, "enable.idempotence", "true", err, sizeof(err)) ||
            rd_kafka_conf_set(c, "linger.ms", linger, err, sizeof(err)) ||
            rd_kafka_conf_set(c, "queue.buffering.max.messages", "500000", err,
                              sizeof(err)))
                bench_die("%s", err);
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
        if (!rk)
                bench_die("%s", err);
        return rk;
}

void bench_produce(rd_kafka_t *rk, const char *topic, const void *key, size_t key_len,
                   const void *val, size_t len, rd_kafka_headers_t *h)
{
        rd_kafka_resp_err_t e;

        /* producev takes the headers only when it succeeds: a full queue
         * leaves them ours for the next try. */
        while ((e = rd_kafka_producev(
                    rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY((void *)key, key_len),
                    RD_KAFKA_V_VALUE((void *)val, len),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(h),
                    RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                rd_kafka_poll(rk, 10);
        if (e) {
                if (h)
                        rd_kafka_headers_destroy(h);
                bench_die("produce to %s: %s", topic, rd_kafka_err2str(e));
        }
        rd_kafka_poll(rk, 0);
}

void bench_flush(rd_kafka_t *rk)
{
        if (rd_kafka_flush(rk, 120000))
                bench_die("%d messages not delivered", rd_kafka_outq_len(rk));
}

rd_kafka_t *bench_tail_consumer(const char *brokers, const char *group, const char *topic)
{
        rd_kafka_conf_t *c = rd_kafka_conf_new();
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_partition_list_t *parts;
        char err[512];
        rd_kafka_t *rk;
        int i, p;

        if (rd_kafka_conf_set(c, "bootstrap.servers", brokers, err, sizeof(err)) ||
            rd_kafka_conf_set(c, "group.id", group, err, sizeof(err)) ||
            rd_kafka_conf_set(c, "enable.auto.commit", "false", err, sizeof(err)) ||
            rd_kafka_conf_set(c, "isolation.level", "read_committed", err, sizeof(err)) ||
            rd_kafka_conf_set(c, "fetch.wait.max.ms", "10", err, sizeof(err)))
                bench_die("%s", err);
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof(err));
        if (!rk)
                bench_die("%s", err);
        if (rd_kafka_metadata(rk, 1, NULL, &md, 10000))
                bench_die("no metadata from %s", brokers);
        parts = rd_kafka_topic_partition_list_new(16);
        for (i = 0; i < md->topic_cnt; i++) {
                if (strcmp(md->topics[i].topic, topic) != 0)
                        continue;
                for (p = 0; p < md->topics[i].partition_cnt; p++) {
                        int64_t lo, hi;
                        int32_t id = md->topics[i].partitions[p].id;

                        if (rd_kafka_query_watermark_offsets(rk, topic, id, &lo, &hi,
                                                             10000))
                                bench_die("watermarks of %s [%d]", topic, (int)id);
                        rd_kafka_topic_partition_list_add(parts, topic, id)->offset = hi;
                }
        }
        rd_kafka_metadata_destroy(md);
        if (parts->cnt == 0)
                bench_die("topic %s not found", topic);
        rd_kafka_assign(rk, parts);
        rd_kafka_topic_partition_list_destroy(parts);
        return rk;
}

/* GET /metrics from 127.0.0.1:port into a malloc'd NUL-terminated buffer. */
static char *http_metrics(int port)
{
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        static const char req[] = "GET /metrics HTTP/1.0\r\n\r\n";
        size_t len = 0, cap = 1 << 16;
        char *buf = malloc(cap);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        ssize_t r;

        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (!buf || fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) ||
            write(fd, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1)) {
                if (fd >= 0)
                        close(fd);
                free(buf);
                return NULL;
        }
        while ((r = read(fd, buf + len, cap - len - 1)) > 0) {
                len += (size_t)r;
                if (cap - len < 1024) {
                        char *n = realloc(buf, cap * 2);

                        if (!n)
                                break;
                        buf = n;
                        cap *= 2;
                }
        }
        close(fd);
        buf[len] = '\0';
        return buf;
}

int bench_hist_scrape(int port, const char *name, bench_hist_t *h)
{
        char *body = http_metrics(port), *line, *save = NULL, prefix[128];
        size_t plen;

        memset(h, 0, sizeof(*h));
        if (!body)
                return -1;
        plen = (size_t)snprintf(prefix, sizeof(prefix), "%s_bucket{", name);
        for (line = strtok_r(body, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save)) {
                char *le, *end;

                if (strncmp(line, prefix, plen) != 0 || h->n == BENCH_HIST_MAX ||
                    !(le = strstr(line, "le=\"")) || !(end = strstr(le, "\"} ")))
                        continue;
                le += 4;
                h->le_ms[h->n] =
                    strncmp(le, "+Inf", 4) == 0 ? -1 : strtod(le, NULL) * 1000;
                h->cum[h->n++] = strtoull(end + 3, NULL, 10);
        }
        free(body);
        return h->n ? 0 : -1;
}

/* The q-quantile of the bucket counts c (cumulative), interpolated linearly
 * inside its bucket; a negative result means "above the last finite bound". */
static double hist_quantile(const bench_hist_t *h, const uint64_t *c, double q)
{
        uint64_t total = c[h->n - 1];
        double rank = q * (double)total, lo = 0;
        int i;

        for (i = 0; i < h->n; i++) {
                uint64_t prev = i ? c[i - 1] : 0;

                if ((double)c[i] >= rank && c[i] > prev) {
                        if (h->le_ms[i] < 0)
                                return -lo;
                        return lo + (h->le_ms[i] - lo) * (rank - (double)prev) /
                                        (double)(c[i] - prev);
                }
                if (h->le_ms[i] >= 0)
                        lo = h->le_ms[i];
        }
        return -lo;
}

void bench_hist_report(const bench_hist_t *before, const bench_hist_t *after,
                       const char *label, const char *what, char *res, size_t size)
{
        uint64_t d[BENCH_HIST_MAX], in10 = 0;
        size_t len = strlen(res);
        double p50, p99;
        int i;

        if (after->n == 0 || after->n != before->n) {
                printf("  %-9s %s: no histogram\n", label, what);
                return;
        }
        for (i = 0; i < after->n; i++) {
                d[i] = after->cum[i] - before->cum[i];
                if (after->le_ms[i] == 10)
                        in10 = d[i];
        }
        if (d[after->n - 1] == 0) {
                printf("  %-9s %s: no observations\n", label, what);
                return;
        }
        p50 = hist_quantile(after, d, 0.50);
        p99 = hist_quantile(after, d, 0.99);
        printf("  %-9s %-62s n=%" PRIu64 " within 10 ms=%.2f %% p50=%s%.2f p99=%s%.2f ms "
               "(interpolated in its buckets)\n",
               label, what, d[after->n - 1],
               100.0 * (double)in10 / (double)d[after->n - 1], p50 < 0 ? ">" : "",
               p50 < 0 ? -p50 : p50, p99 < 0 ? ">" : "", p99 < 0 ? -p99 : p99);
        snprintf(res + len, size - len,
                 " %s_n=%" PRIu64 " %s_within10_pct=%.2f %s_p50_ms=%.2f %s_p99_ms=%.2f",
                 label, d[after->n - 1], label,
                 100.0 * (double)in10 / (double)d[after->n - 1], label,
                 p50 < 0 ? -p50 : p50, label, p99 < 0 ? -p99 : p99);
}
