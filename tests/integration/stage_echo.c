/* A stage for the runner's integration tests: copies each input message to
 * the output topic, except
 *   "poison..."            permanent failure (BAD_PAYLOAD)
 *   "transient-<n>:..."    transient failure while the attempt is below n
 * Input, output and DLQ topics come from PROMO_ECHO_INPUT, PROMO_ECHO_OUTPUT
 * and PROMO_ECHO_DLQ. With PROMO_ECHO_FAIL_COMMITS=n, the first n batches
 * fail in before_commit, each after 20 ms, as a database write that failed
 * would.
 *
 * For the Kafka floor benchmark (scripts/bench-pipeline floor), a chain of these
 * stands in for the pipeline's stages with no work of their own:
 * PROMO_ECHO_OUTPUT "-" produces nothing (the audit-sink's place: it only
 * commits its offsets), PROMO_ECHO_OUTPUT2 copies each message to a second
 * topic as well (the calculator's promo.usage), and
 * PROMO_ECHO_COMMITTED_INPUT=1 fetches as a stage whose input is written in
 * transactions does (docs/stage-runner.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "po/log.h"
#include "po/stage.h"

typedef struct echo {
        const char *output;  /* NULL: produce nothing */
        const char *output2; /* NULL or a second topic for every message */
        long fail_commits;   /* before_commit calls still to fail */
} echo_t;

static po_err_t before_commit(po_stage_t *st, void *opaque)
{
        echo_t *echo = opaque;

        (void)st;
        if (echo->fail_commits <= 0)
                return PO_OK;
        echo->fail_commits--;
        nanosleep(&(struct timespec){.tv_nsec = 20000000L}, NULL);
        po_log_warn("PROMO_ECHO_FAIL_COMMITS: failing this batch (%ld more)",
                    echo->fail_commits);
        return PO_ERR_DEPENDENCY;
}

static po_stage_result_t process(po_stage_t *st, const rd_kafka_message_t *msg,
                                 po_stage_failure_t *fail, void *opaque)
{
        echo_t *echo = opaque;
        const char *p = msg->payload;

        if (msg->len >= 6 && memcmp(p, "poison", 6) == 0) {
                snprintf(fail->reason, sizeof(fail->reason), "BAD_PAYLOAD");
                snprintf(fail->error, sizeof(fail->error), "payload is poison");
                fail->priority = 7;
                return PO_STAGE_PERMANENT;
        }
        if (msg->len > 10 && memcmp(p, "transient-", 10) == 0) {
                int n = p[10] - '0';

                if (po_stage_attempt(st) < n) {
                        snprintf(fail->reason, sizeof(fail->reason), "DEPENDENCY_DOWN");
                        snprintf(fail->error, sizeof(fail->error), "attempt %d of %d",
                                 po_stage_attempt(st), n);
                        return PO_STAGE_TRANSIENT;
                }
        }
        if ((echo->output && po_stage_emit(st, echo->output, msg->key, msg->key_len,
                                           msg->payload, msg->len, NULL)) ||
            (echo->output2 && po_stage_emit(st, echo->output2, msg->key, msg->key_len,
                                            msg->payload, msg->len, NULL))) {
                snprintf(fail->reason, sizeof(fail->reason), "EMIT_FAILED");
                return PO_STAGE_TRANSIENT;
        }
        return PO_STAGE_OK;
}

int main(void)
{
        static const po_service_def_t def = {
            .name = "stage-echo",
            .port_env = "PROMO_ECHO_HTTP_PORT",
            .default_port = 0,
            .deps = 1u << PO_DEP_KAFKA,
        };
        echo_t echo = {.output = getenv("PROMO_ECHO_OUTPUT"),
                       .output2 = getenv("PROMO_ECHO_OUTPUT2")};
        const char *committed = getenv("PROMO_ECHO_COMMITTED_INPUT");
        po_stage_conf_t conf = {
            .input_topic = getenv("PROMO_ECHO_INPUT"),
            .dlq_topic = getenv("PROMO_ECHO_DLQ"),
            .group_id = getenv("PROMO_ECHO_GROUP"),
            .transactional_id = getenv("PROMO_ECHO_TXID"),
            .process = process,
            .opaque = &echo,
        };
        const char *fail = getenv("PROMO_ECHO_FAIL_COMMITS");
        char errstr[512];
        po_service_t *svc;
        int status;

        if (!echo.output || !conf.input_topic) {
                fprintf(stderr,
                        "stage-echo: set PROMO_ECHO_INPUT and PROMO_ECHO_OUTPUT\n");
                return 2;
        }
        if (strcmp(echo.output, "-") == 0)
                echo.output = NULL;
        if (echo.output2 && !*echo.output2)
                echo.output2 = NULL;
        conf.committed_input = committed && strcmp(committed, "1") == 0;
        if (fail && *fail) {
                char *end;

                echo.fail_commits = strtol(fail, &end, 10);
                if (*end || echo.fail_commits < 0) {
                        fprintf(stderr, "stage-echo: bad PROMO_ECHO_FAIL_COMMITS\n");
                        return 2;
                }
                conf.before_commit = before_commit;
        }
        svc = po_service_new(&def, errstr, sizeof(errstr));
        if (!svc) {
                fprintf(stderr, "stage-echo: %s\n", errstr);
                return 2;
        }
        status = po_stage_serve(svc, &conf);
        po_service_destroy(svc);
        return status;
}
