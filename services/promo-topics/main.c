/* promo-topics: creates the topics listed in a file (deploy/topics.txt) with
 * their partitions and configs, through librdkafka's admin API. Idempotent:
 * a topic that exists already is left as it is, and reported when its
 * partition count differs from the file.
 *
 * File format: one topic a line, "name partitions [k=v,k=v...]"; '#' starts
 * a comment. Replication factor is 1 (the local single-node broker). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#define MAX_TOPICS 256

typedef struct topic_spec {
        char name[250];
        int partitions;
        char configs[512];
} topic_spec_t;

static int parse_line(char *line, int lineno, topic_spec_t *t)
{
        char *save = NULL, *name, *parts, *cfg, *end = NULL;
        long p;

        line[strcspn(line, "#\r\n")] = '\0';
        name = strtok_r(line, " \t", &save);
        if (!name)
                return 0;
        parts = strtok_r(NULL, " \t", &save);
        cfg = strtok_r(NULL, " \t", &save);
        if (!parts || strtok_r(NULL, " \t", &save)) {
                fprintf(stderr,
                        "promo-topics: line %d: expected \"name partitions [configs]\"\n",
                        lineno);
                return -1;
        }
        errno = 0;
        p = strtol(parts, &end, 10);
        if (errno || *end || p < 1 || p > 1000) {
                fprintf(stderr, "promo-topics: line %d: partitions must be 1..1000\n",
                        lineno);
                return -1;
        }
        if (strlen(name) >= sizeof(t->name) ||
            (cfg && strlen(cfg) >= sizeof(t->configs))) {
                fprintf(stderr, "promo-topics: line %d: name or configs too long\n",
                        lineno);
                return -1;
        }
        snprintf(t->name, sizeof(t->name), "%s", name);
        snprintf(t->configs, sizeof(t->configs), "%s", cfg ? cfg : "");
        t->partitions = (int)p;
        return 1;
}

static int load(const char *path, topic_spec_t *topics, int *n)
{
        char line[1024];
        int lineno = 0, r;
        FILE *f = fopen(path, "r");

        if (!f) {
                fprintf(stderr, "promo-topics: cannot open %s: %s\n", path,
                        strerror(errno));
                return -1;
        }
        *n = 0;
        while (fgets(line, sizeof(line), f)) {
                lineno++;
                if (*n == MAX_TOPICS) {
                        fprintf(stderr, "promo-topics: more than %d topics\n",
                                MAX_TOPICS);
                        fclose(f);
                        return -1;
                }
                r = parse_line(line, lineno, &topics[*n]);
                if (r < 0) {
                        fclose(f);
                        return -1;
                }
                *n += r;
        }
        fclose(f);
        return 0;
}

static int set_configs(rd_kafka_NewTopic_t *nt, const char *configs)
{
        char buf[512], *save = NULL, *kv, *eq;

        snprintf(buf, sizeof(buf), "%s", configs);
        for (kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
                eq = strchr(kv, '=');
                if (!eq)
                        return -1;
                *eq = '\0';
                if (rd_kafka_NewTopic_set_config(nt, kv, eq + 1))
                        return -1;
        }
        return 0;
}

/* One CreateTopics round. Returns the number of topics not yet created (or
 * existing), or -1 on a permanent error. */
static int create_round(rd_kafka_t *rk, rd_kafka_queue_t *q, const topic_spec_t *topics,
                        int n, int *done, int timeout_ms)
{
        rd_kafka_NewTopic_t *nts[MAX_TOPICS];
        int idx[MAX_TOPICS];
        int cnt = 0, pending = 0, failed = 0, i;
        char errstr[256];
        rd_kafka_AdminOptions_t *opts;
        rd_kafka_event_t *ev;
        const rd_kafka_CreateTopics_result_t *res;
        const rd_kafka_topic_result_t **tr;
        size_t trn, j;

        for (i = 0; i < n; i++) {
                if (done[i])
                        continue;
                nts[cnt] = rd_kafka_NewTopic_new(topics[i].name, topics[i].partitions, 1,
                                                 errstr, sizeof(errstr));
                if (!nts[cnt] || set_configs(nts[cnt], topics[i].configs)) {
                        fprintf(stderr, "promo-topics: %s: bad spec: %s\n",
                                topics[i].name, nts[cnt] ? "bad config" : errstr);
                        failed = 1;
                        if (nts[cnt])
                                rd_kafka_NewTopic_destroy(nts[cnt]);
                        break;
                }
                idx[cnt++] = i;
        }
        if (failed) {
                rd_kafka_NewTopic_destroy_array(nts, (size_t)cnt);
                return -1;
        }
        if (cnt == 0)
                return 0;
        opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
        rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, errstr,
                                                  sizeof(errstr));
        rd_kafka_AdminOptions_set_operation_timeout(opts, timeout_ms, errstr,
                                                    sizeof(errstr));
        rd_kafka_CreateTopics(rk, nts, (size_t)cnt, opts, q);
        rd_kafka_AdminOptions_destroy(opts);
        rd_kafka_NewTopic_destroy_array(nts, (size_t)cnt);

        ev = rd_kafka_queue_poll(q, timeout_ms + 5000);
        if (!ev)
                return cnt;
        if (rd_kafka_event_error(ev)) {
                fprintf(stderr, "promo-topics: create: %s (retrying)\n",
                        rd_kafka_event_error_string(ev));
                rd_kafka_event_destroy(ev);
                return cnt;
        }
        res = rd_kafka_event_CreateTopics_result(ev);
        tr = rd_kafka_CreateTopics_result_topics(res, &trn);
        for (j = 0; j < trn; j++) {
                rd_kafka_resp_err_t e = rd_kafka_topic_result_error(tr[j]);
                const char *name = rd_kafka_topic_result_name(tr[j]);

                for (i = 0; i < cnt; i++) {
                        if (strcmp(topics[idx[i]].name, name) != 0)
                                continue;
                        if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
                                printf("created %s (%d partitions)\n", name,
                                       topics[idx[i]].partitions);
                                done[idx[i]] = 1;
                        } else if (e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
                                done[idx[i]] = 1;
                        } else if (e == RD_KAFKA_RESP_ERR_INVALID_CONFIG ||
                                   e == RD_KAFKA_RESP_ERR_INVALID_PARTITIONS ||
                                   e == RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION) {
                                fprintf(stderr, "promo-topics: %s: %s\n", name,
                                        rd_kafka_topic_result_error_string(tr[j]));
                                failed = 1;
                        } else {
                                pending++;
                        }
                }
        }
        rd_kafka_event_destroy(ev);
        return failed ? -1 : pending;
}

/* Reports topics whose partition count differs from the file. */
static int verify(rd_kafka_t *rk, const topic_spec_t *topics, int n, int timeout_ms)
{
        const struct rd_kafka_metadata *md = NULL;
        int i, t, bad = 0;

        if (rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms))
                return 0; /* creation succeeded; metadata is only a cross-check */
        for (i = 0; i < n; i++)
                for (t = 0; t < md->topic_cnt; t++)
                        if (strcmp(md->topics[t].topic, topics[i].name) == 0 &&
                            md->topics[t].partition_cnt != topics[i].partitions) {
                                fprintf(stderr,
                                        "promo-topics: %s has %d partitions, the file "
                                        "says %d\n",
                                        topics[i].name, md->topics[t].partition_cnt,
                                        topics[i].partitions);
                                bad = 1;
                        }
        rd_kafka_metadata_destroy(md);
        return bad;
}

int main(int argc, char **argv)
{
        static topic_spec_t topics[MAX_TOPICS];
        int done[MAX_TOPICS] = {0};
        const char *brokers = getenv("PROMO_KAFKA_BROKERS"), *file = NULL;
        int timeout_s = 60, n = 0, left = 1, status = 1, i;
        char errstr[512];
        rd_kafka_conf_t *conf;
        rd_kafka_t *rk;
        rd_kafka_queue_t *q;
        time_t deadline;

        for (i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--brokers") == 0 && i + 1 < argc)
                        brokers = argv[++i];
                else if (strcmp(argv[i], "--file") == 0 && i + 1 < argc)
                        file = argv[++i];
                else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
                        char *end = NULL;
                        long v = strtol(argv[++i], &end, 10);

                        if (*end || v < 1 || v > 3600)
                                goto usage;
                        timeout_s = (int)v;
                } else
                        goto usage;
        }
        if (!file)
                goto usage;
        if (!brokers || !*brokers)
                brokers = "127.0.0.1:59092";
        if (load(file, topics, &n))
                return 1;

        conf = rd_kafka_conf_new();
        if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr,
                              sizeof(errstr))) {
                fprintf(stderr, "promo-topics: %s\n", errstr);
                rd_kafka_conf_destroy(conf);
                return 1;
        }
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        if (!rk) {
                fprintf(stderr, "promo-topics: %s\n", errstr);
                rd_kafka_conf_destroy(conf);
                return 1;
        }
        q = rd_kafka_queue_new(rk);
        deadline = time(NULL) + timeout_s;
        while (left > 0 && time(NULL) < deadline) {
                left = create_round(rk, q, topics, n, done, 10000);
                if (left > 0)
                        nanosleep(&(struct timespec){.tv_nsec = 500000000L}, NULL);
        }
        if (left == 0)
                status = verify(rk, topics, n, 10000);
        else if (left > 0)
                fprintf(stderr, "promo-topics: %d topics not created within %ds\n", left,
                        timeout_s);
        if (status == 0)
                printf("%d topics ready\n", n);
        rd_kafka_queue_destroy(q);
        rd_kafka_destroy(rk);
        return status;

usage:
        fprintf(stderr, "usage: promo-topics --file FILE [--brokers HOST:PORT] "
                        "[--timeout SECONDS]\n");
        return 2;
}
