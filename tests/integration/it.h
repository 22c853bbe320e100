/* Helpers shared by the integration suites (tests/integration/check_*.c):
 * time, Kafka clients and topics, Redis, loopback HTTP, files. Each fails the
 * running Check test (ck_assert) instead of returning an error, except
 * it_http_get, whose "no answer" is what some tests wait for. */
#ifndef PROMO_IT_H
#define PROMO_IT_H

#include <check.h>
#include <hiredis/hiredis.h>
#include <librdkafka/rdkafka.h>
#include <stddef.h>

void it_sleep_ms(long ms);
long long it_mono_ms(void);

/* A producer (idempotent, linger 5 ms) or a consumer of group (read_committed,
 * earliest, no auto commit) on brokers. */
rd_kafka_t *it_kafka(const char *brokers, rd_kafka_type_t type, const char *group);

/* Creates n topics, topic i with partitions[i] partitions (replication 1);
 * fails the test on any error, an existing topic included. */
void it_create_topics(const char *brokers, const char *const *names,
                      const int *partitions, size_t n);
/* Deletes n topics; best effort (cleanup). */
void it_delete_topics(const char *brokers, const char *const *names, size_t n);

/* calls= of one command in Redis's INFO commandstats (0 before its first
 * call), and SCRIPT FLUSH (what a restarted Redis has lost). */
long long it_redis_calls(redisContext *rc, const char *cmd);
void it_redis_flush_scripts(redisContext *rc);

/* Runs the suite (srunner, CK_NORMAL) and returns the process's exit
 * status: 0 when every test passed. */
int it_run_suite(Suite *s);

/* A free TCP port on 127.0.0.1 in 20000..31999, below the ephemeral range
 * (bound, then released). */
int it_free_port(void);

/* GET path on 127.0.0.1:port over HTTP/1.0; the status (-1 when nothing
 * answers), the whole response (head and body) in out. */
int it_http_get(int port, const char *path, char *out, size_t out_size);

/* The whole file, NUL-terminated (free() it); its length in *len. */
char *it_slurp(const char *path, size_t *len);

#endif
