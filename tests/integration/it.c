#include "it.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

void it_sleep_ms(long ms)
{
        nanosleep(
            &(struct timespec){.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L},
            NULL);
}

long long it_mono_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

rd_kafka_t *it_kafka(const char *brokers, rd_kafka_type_t type, const char *group)
{
        char err[512];
        rd_kafka_conf_t *c = rd_kafka_conf_new();
        rd_kafka_t *rk;

        rd_kafka_conf_set(c, "bootstrap.servers", brokers, err, sizeof(err));
        if (type == RD_KAFKA_PRODUCER) {
                rd_kafka_conf_set(c, "enable.idempotence", "true", err, sizeof(err));
                rd_kafka_conf_set(c, "linger.ms", "5", err, sizeof(err));
        } else {
                rd_kafka_conf_set(c, "group.id", group, err, sizeof(err));
                rd_kafka_conf_set(c, "isolation.level", "read_committed", err,
                                  sizeof(err));
                rd_kafka_conf_set(c, "auto.offset.reset", "earliest", err, sizeof(err));
                rd_kafka_conf_set(c, "enable.auto.commit", "false", err, sizeof(err));
        }
        rk = rd_kafka_new(type, c, err, sizeof(err));
        ck_assert_msg(rk != NULL, "%s", err);
        return rk;
}

void it_create_topics(const char *brokers, const char *const *names,
                      const int *partitions, size_t n)
{
        rd_kafka_t *rk = it_kafka(brokers, RD_KAFKA_PRODUCER, NULL);
        rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
        rd_kafka_NewTopic_t *nt[16];
        const rd_kafka_topic_result_t **res;
        rd_kafka_event_t *ev;
        char err[256];
        size_t cnt, i;

        ck_assert_uint_le(n, 16);
        for (i = 0; i < n; i++) {
                nt[i] =
                    rd_kafka_NewTopic_new(names[i], partitions[i], 1, err, sizeof(err));
                ck_assert_msg(nt[i] != NULL, "%s: %s", names[i], err);
        }
        rd_kafka_CreateTopics(rk, nt, n, NULL, q);
        rd_kafka_NewTopic_destroy_array(nt, n);
        ev = rd_kafka_queue_poll(q, 30000);
        ck_assert_msg(ev != NULL, "create topics timed out");
        res = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev),
                                                  &cnt);
        for (i = 0; i < cnt; i++)
                ck_assert_msg(rd_kafka_topic_result_error(res[i]) == 0, "create %s: %s",
                              rd_kafka_topic_result_name(res[i]),
                              rd_kafka_topic_result_error_string(res[i]));
        rd_kafka_event_destroy(ev);
        rd_kafka_queue_destroy(q);
        rd_kafka_destroy(rk);
}

void it_delete_topics(const char *brokers, const char *const *names, size_t n)
{
        rd_kafka_t *rk = it_kafka(brokers, RD_KAFKA_PRODUCER, NULL);
        rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
        rd_kafka_DeleteTopic_t *dt[16];
        rd_kafka_event_t *ev;
        size_t i;

        for (i = 0; i < n && i < 16; i++)
                dt[i] = rd_kafka_DeleteTopic_new(names[i]);
        rd_kafka_DeleteTopics(rk, dt, i, NULL, q);
        rd_kafka_DeleteTopic_destroy_array(dt, i);
        ev = rd_kafka_queue_poll(q, 30000);
        if (ev)
                rd_kafka_event_destroy(ev);
        rd_kafka_queue_destroy(q);
        rd_kafka_destroy(rk);
}

int it_free_port(void)
{
        /* Below the kernel's ephemeral range (32768..60999 by default): a
         * port bind(0) handed out could be taken by any outgoing connection
         * (a Kafka client's) between this check and the service's listen. */
        static unsigned seed;
        int tries;

        if (!seed)
                seed = (unsigned)getpid() * 2654435761u ^ (unsigned)it_mono_ms();
        for (tries = 0; tries < 1000; tries++) {
                struct sockaddr_in a = {.sin_family = AF_INET};
                int fd = socket(AF_INET, SOCK_STREAM, 0), port, ok;

                seed = seed * 1103515245u + 12345u;
                port = 20000 + (int)((seed >> 8) % 12000);
                a.sin_port = htons((uint16_t)port);
                a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                ck_assert_int_ge(fd, 0);
                ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
                close(fd);
                if (ok)
                        return port;
        }
        ck_abort_msg("no free port in 20000..31999");
        return -1;
}

int it_http_get(int port, const char *path, char *out, size_t out_size)
{
        struct sockaddr_in a = {.sin_family = AF_INET};
        char req[512];
        size_t n = 0;
        ssize_t r;
        int fd = socket(AF_INET, SOCK_STREAM, 0), status = -1;

        a.sin_port = htons((uint16_t)port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        out[0] = '\0';
        if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
                close(fd);
                return -1;
        }
        snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\n\r\n", path);
        if (send(fd, req, strlen(req), 0) < 0) {
                close(fd);
                return -1;
        }
        while (n < out_size - 1 && (r = recv(fd, out + n, out_size - 1 - n, 0)) > 0)
                n += (size_t)r;
        out[n] = '\0';
        close(fd);
        if (sscanf(out, "HTTP/1.0 %d", &status) != 1 &&
            sscanf(out, "HTTP/1.1 %d", &status) != 1)
                return -1;
        return status;
}

char *it_slurp(const char *path, size_t *len)
{
        FILE *f = fopen(path, "rb");
        char *buf;
        long n;

        ck_assert_msg(f != NULL, "cannot open %s", path);
        fseek(f, 0, SEEK_END);
        n = ftell(f);
        ck_assert_int_ge(n, 0);
        rewind(f);
        buf = malloc((size_t)n + 1);
        ck_assert_ptr_nonnull(buf);
        ck_assert_int_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
        buf[n] = '\0';
        fclose(f);
        if (len)
                *len = (size_t)n;
        return buf;
}

long long it_redis_calls(redisContext *rc, const char *cmd)
{
        redisReply *r = redisCommand(rc, "INFO commandstats");
        char key[64];
        const char *p;
        long long n = 0;

        ck_assert(r && r->type == REDIS_REPLY_STRING);
        snprintf(key, sizeof(key), "cmdstat_%s:calls=", cmd);
        p = strstr(r->str, key);
        if (p)
                n = strtoll(p + strlen(key), NULL, 10);
        freeReplyObject(r);
        return n;
}

void it_redis_flush_scripts(redisContext *rc)
{
        redisReply *r = redisCommand(rc, "SCRIPT FLUSH");

        ck_assert(r && r->type == REDIS_REPLY_STATUS);
        freeReplyObject(r);
}

int it_run_suite(Suite *s)
{
        SRunner *sr = srunner_create(s);
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
