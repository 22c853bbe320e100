/* bench-validate: an open-loop, constant-rate HTTP load generator for the
 * admin's POST /v1/validate (docs/BENCHMARKS.md, "Admin").
 *
 *   bench-validate --port P --token T [--rate 2000] [--seconds 30]
 *                  [--connections 32] [--warmup 2]
 *   bench-validate --port P --token T --usable N --validator-port V
 *
 * --usable: "a new code is usable by validators in under 1 s". N times:
 * POST a new code, then poll the running validator's /metrics until its
 * promo_refdata_applied (records of the compacted topics it applied to
 * Redis) has grown by one: the validator consumed the code from promo.codes.
 * Prints the POST latency (the code is in PostgreSQL and Redis when the
 * response arrives: usable by every validator's lookup) and the time until
 * the validator applied it, median and max.
 *
 * Request i is due at start + i / rate whatever happened before it (open
 * loop: a slow answer does not slow the sender down, so queueing delay is
 * measured instead of hidden, unlike wrk's closed loop). Due requests go to
 * idle keep-alive connections in order; a request's latency runs from the
 * moment it was due to the end of its response. One thread, poll(2).
 * The token needs the admin role: the bench creates its own code (10 %)
 * and validates a two-line cart with it, so no attempt counts as failed
 * (the rate limits stay out of the way). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 1024
#define BUF_SIZE 65536

typedef struct conn {
        int fd;
        int busy;
        long long due_ns; /* of the request in flight */
        char buf[BUF_SIZE];
        size_t len;
} conn_t;

static long long now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int dial(int port)
{
        struct sockaddr_in a = {.sin_family = AF_INET};
        int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

        a.sin_port = htons((uint16_t)port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
                if (fd >= 0)
                        close(fd);
                return -1;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        return fd;
}

/* One blocking request on its own connection (set-up only). */
static int request_once(int port, const char *req, char *out, size_t size)
{
        int fd = dial(port), status = -1;
        size_t n = 0;
        ssize_t r;

        if (fd < 0)
                return -1;
        if (send(fd, req, strlen(req), MSG_NOSIGNAL) < 0) {
                close(fd);
                return -1;
        }
        while (n < size - 1 && (r = recv(fd, out + n, size - 1 - n, 0)) > 0)
                n += (size_t)r;
        out[n] = '\0';
        close(fd);
        sscanf(out, "HTTP/1.%*d %d", &status);
        return status;
}

static const char *find(const char *hay, size_t len, const char *needle)
{
        size_t n = strlen(needle), i;

        for (i = 0; i + n <= len; i++)
                if (memcmp(hay + i, needle, n) == 0)
                        return hay + i;
        return NULL;
}

/* Bytes of a complete response at the start of buf, 0 when incomplete;
 * *status gets its status. */
static size_t response_len(const char *buf, size_t len, int *status)
{
        const char *end = find(buf, len, "\r\n\r\n"), *cl;
        long body;

        if (!end)
                return 0;
        cl = find(buf, (size_t)(end - buf), "Content-Length:");
        if (!cl)
                cl = find(buf, (size_t)(end - buf), "content-length:");
        body = cl ? strtol(cl + 15, NULL, 10) : 0;
        if ((size_t)(end + 4 - buf) + (size_t)body > len)
                return 0;
        *status = 0;
        sscanf(buf, "HTTP/1.%*d %d", status);
        return (size_t)(end + 4 - buf) + (size_t)body;
}

static long long applied_metric(int vport)
{
        char out[65536];
        const char *p;

        if (request_once(vport, "GET /metrics HTTP/1.0\r\n\r\n", out, sizeof(out)) != 200)
                return -1;
        p = strstr(out, "\npromo_refdata_applied{");
        if (!p)
                return 0;
        p = strchr(p, '}');
        return p ? atoll(p + 1) : -1;
}

static int cmp_ll(const void *a, const void *b);

static int usable(int port, const char *token, int n, int vport)
{
        long long *post = calloc((size_t)n, sizeof(*post)),
                  *seen = calloc((size_t)n, sizeof(*seen));
        char body[512], req[2048], out[8192];
        int i, failures = 0, stable = 0;
        long long last = applied_metric(vport);

        /* The validator replays the compacted topics from their start: wait
         * until it has caught up (no change for 2 s), so that what it applies
         * next is ours. */
        while (stable < 20) {
                long long v;

                nanosleep(&(struct timespec){.tv_nsec = 100000000}, NULL);
                v = applied_metric(vport);
                stable = v == last ? stable + 1 : 0;
                last = v;
        }
        for (i = 0; i < n; i++) {
                long long before = applied_metric(vport), t0, t1, now;

                snprintf(body, sizeof(body),
                         "{\"code\":\"USABLE-%ld-%d\",\"type\":\"fixed\",\"value\":100,"
                         "\"currency\":\"USD\"}",
                         (long)time(NULL), i);
                snprintf(req, sizeof(req),
                         "POST /v1/codes HTTP/1.1\r\nHost: b\r\nConnection: close\r\n"
                         "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
                         "Content-Length: %zu\r\n\r\n%s",
                         token, strlen(body), body);
                t0 = now_ns();
                if (before < 0 || request_once(port, req, out, sizeof(out)) != 201) {
                        fprintf(stderr, "bench-validate: create failed:\n%s\n", out);
                        return 1;
                }
                t1 = now_ns();
                post[i] = t1 - t0;
                for (;;) {
                        now = now_ns();
                        if (applied_metric(vport) > before)
                                break;
                        if (now - t0 > 5000000000LL) {
                                failures++;
                                break;
                        }
                        nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
                }
                seen[i] = now - t0;
        }
        qsort(post, (size_t)n, sizeof(*post), cmp_ll);
        qsort(seen, (size_t)n, sizeof(*seen), cmp_ll);
        printf(
            "bench-validate --usable: %d codes; POST (in PostgreSQL + Redis, published): "
            "median %.1f ms, max %.1f ms; applied by the running validator from "
            "promo.codes: median %.1f ms, max %.1f ms; %d not seen within 5 s\n",
            n, (double)post[n / 2] / 1e6, (double)post[n - 1] / 1e6,
            (double)seen[n / 2] / 1e6, (double)seen[n - 1] / 1e6, failures);
        free(post);
        free(seen);
        return failures ? 1 : 0;
}

static int cmp_ll(const void *a, const void *b)
{
        long long x = *(const long long *)a, y = *(const long long *)b;

        return x < y ? -1 : x > y;
}

static double pct(const long long *v, size_t n, double p)
{
        size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);

        return n ? (double)v[i < n ? i : n - 1] / 1e6 : 0;
}

int main(int argc, char **argv)
{
        int port = 0, conns_n = 32, i, usable_n = 0, vport = 0;
        double rate = 2000, seconds = 30, warmup = 2;
        const char *token = NULL;
        char code[64], body[1024], req[2048], setup[4096], out[8192];
        conn_t *conns;
        struct pollfd *pfd;
        long long *lat, start, due, next;
        size_t total, sent = 0, done = 0, errors = 0, nlat = 0, warm;

        for (i = 1; i + 1 < argc; i += 2) {
                if (strcmp(argv[i], "--port") == 0)
                        port = atoi(argv[i + 1]);
                else if (strcmp(argv[i], "--token") == 0)
                        token = argv[i + 1];
                else if (strcmp(argv[i], "--rate") == 0)
                        rate = atof(argv[i + 1]);
                else if (strcmp(argv[i], "--seconds") == 0)
                        seconds = atof(argv[i + 1]);
                else if (strcmp(argv[i], "--connections") == 0)
                        conns_n = atoi(argv[i + 1]);
                else if (strcmp(argv[i], "--warmup") == 0)
                        warmup = atof(argv[i + 1]);
                else if (strcmp(argv[i], "--usable") == 0)
                        usable_n = atoi(argv[i + 1]);
                else if (strcmp(argv[i], "--validator-port") == 0)
                        vport = atoi(argv[i + 1]);
                else
                        break;
        }
        if (i < argc || port <= 0 || !token || rate <= 0 || seconds <= 0 || conns_n < 1 ||
            conns_n > MAX_CONNS || warmup < 0) {
                fprintf(stderr, "usage: bench-validate --port P --token T [--rate R] "
                                "[--seconds S] [--connections N] [--warmup S]\n");
                return 2;
        }
        if (usable_n > 0)
                return vport > 0 ? usable(port, token, usable_n, vport) : 2;
        /* The bench's own code. */
        snprintf(code, sizeof(code), "BENCH-%ld", (long)time(NULL));
        snprintf(
            body, sizeof(body),
            "{\"code\":\"%s\",\"type\":\"percentage\",\"value\":1000,\"description\":"
            "\"bench-validate\"}",
            code);
        snprintf(
            setup, sizeof(setup),
            "POST /v1/codes HTTP/1.1\r\nHost: b\r\nConnection: close\r\nAuthorization: "
            "Bearer %s\r\nContent-Type: application/json\r\nContent-Length: "
            "%zu\r\n\r\n%s",
            token, strlen(body), body);
        if (request_once(port, setup, out, sizeof(out)) != 201) {
                fprintf(stderr, "bench-validate: creating %s failed:\n%s\n", code, out);
                return 1;
        }
        snprintf(
            body, sizeof(body),
            "{\"currency\":\"USD\",\"channel\":\"web\",\"customer\":{\"id\":\"bench\"},"
            "\"lines\":[{\"id\":\"l1\",\"sku\":\"BENCH-SKU-1\",\"category\":\"shoes\","
            "\"unit_price\":1999,\"quantity\":2,\"tax_rate_ppm\":82500},{\"id\":\"l2\","
            "\"sku\":\"BENCH-SKU-2\",\"category\":\"bags\",\"unit_price\":5000,"
            "\"quantity\":1,\"tax_rate_ppm\":82500}],\"codes\":[\"%s\"]}",
            code);
        snprintf(req, sizeof(req),
                 "POST /v1/validate HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer %s\r\n"
                 "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                 token, strlen(body), body);
        conns = calloc((size_t)conns_n, sizeof(*conns));
        pfd = calloc((size_t)conns_n, sizeof(*pfd));
        total = (size_t)((seconds + warmup) * rate);
        warm = (size_t)(warmup * rate);
        lat = calloc(total + 1, sizeof(*lat));
        if (!conns || !pfd || !lat)
                return 1;
        for (i = 0; i < conns_n; i++) {
                conns[i].fd = dial(port);
                if (conns[i].fd < 0) {
                        fprintf(stderr, "bench-validate: connect: %s\n", strerror(errno));
                        return 1;
                }
        }
        start = now_ns();
        while (done < total) {
                long long now = now_ns();
                int timeout, k;

                /* Send every due request an idle connection can take. */
                for (k = 0; k < conns_n && sent < total; k++) {
                        due = start + (long long)((double)sent * 1e9 / rate);
                        if (due > now)
                                break;
                        if (conns[k].busy)
                                continue;
                        if (send(conns[k].fd, req, strlen(req), MSG_NOSIGNAL) !=
                            (ssize_t)strlen(req)) {
                                fprintf(stderr, "bench-validate: send: %s\n",
                                        strerror(errno));
                                return 1;
                        }
                        conns[k].busy = 1;
                        conns[k].due_ns = due;
                        conns[k].len = 0;
                        sent++;
                }
                next =
                    sent < total ? start + (long long)((double)sent * 1e9 / rate) : now;
                timeout = next > now ? (int)((next - now) / 1000000) : 0;
                for (k = 0; k < conns_n; k++) {
                        pfd[k].fd = conns[k].busy ? conns[k].fd : -1;
                        pfd[k].events = POLLIN;
                        pfd[k].revents = 0;
                }
                if (poll(pfd, (nfds_t)conns_n, sent < total ? timeout : 100) < 0)
                        continue;
                for (k = 0; k < conns_n; k++) {
                        conn_t *c = &conns[k];
                        ssize_t r;
                        size_t rl;
                        int status;

                        if (!(pfd[k].revents & (POLLIN | POLLHUP | POLLERR)))
                                continue;
                        r = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
                        if (r <= 0) {
                                fprintf(stderr, "bench-validate: connection closed\n");
                                return 1;
                        }
                        c->len += (size_t)r;
                        rl = response_len(c->buf, c->len, &status);
                        if (!rl)
                                continue;
                        if (status != 200)
                                errors++;
                        if (done >= warm)
                                lat[nlat++] = now_ns() - c->due_ns;
                        done++;
                        c->busy = 0;
                        c->len = 0;
                }
        }
        {
                double elapsed = (double)(now_ns() - start) / 1e9;

                qsort(lat, nlat, sizeof(*lat), cmp_ll);
                printf("bench-validate: %zu requests at %.0f/s over %.1f s (+%.1f s "
                       "warm-up) "
                       "on %d keep-alive connections: achieved %.0f/s, %zu non-200\n",
                       total, rate, seconds, warmup, conns_n, (double)total / elapsed,
                       errors);
                printf(
                    "latency ms (from the due time): p50 %.3f  p90 %.3f  p99 %.3f  p99.9 "
                    "%.3f  max %.3f\n",
                    pct(lat, nlat, 50), pct(lat, nlat, 90), pct(lat, nlat, 99),
                    pct(lat, nlat, 99.9), nlat ? (double)lat[nlat - 1] / 1e6 : 0);
        }
        for (i = 0; i < conns_n; i++)
                close(conns[i].fd);
        free(conns);
        free(pfd);
        free(lat);
        return errors ? 1 : 0;
}
