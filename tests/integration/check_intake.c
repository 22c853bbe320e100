/* intake-normalizer on the real stack, driven through promo-publish and
 * promo-dlq: every channel's sample becomes exactly one canonical Order with
 * the amounts of the sample; every malformed example becomes a dead letter
 * with its reason, the field at fault and its bytes, and the service keeps
 * serving; duplicates are dropped, across a restart too; a dead letter fixed
 * by an operator and replayed comes through; the DLQ listing is by priority.
 * Also, without a server: the order generator is deterministic and every
 * payload it makes is accepted by its channel's adapter.
 *
 * Each test has topics, a consumer group and a transactional id of its own
 * (PROMO_STAGE_GROUP, PROMO_INSTANCE), and deletes the dedupe keys of the
 * samples it sends, so runs are independent of each other. */
#include <arpa/inet.h>
#include <check.h>
#include <sys/prctl.h>
#include <hiredis/hiredis.h>
#include <librdkafka/rdkafka.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "po/avro.h"
#include "po/channel.h"
#include "po/channel_gen.h"
#include "po/config.h"
#include "po/order_avro.h"
#include "po/profile.h"

#include "it.h"

#define PROFILES PROMO_SOURCE_DIR "/deploy/intake-profiles.conf"

static po_config_t cfg;
static char run_id[32];
static po_avro_t *avro;
/* The intake child of the running test, killed by the teardown if the test
 * failed before stopping it. */
static pid_t intake_pid = -1;

static char *slurp(const char *name, size_t *len)
{
        char path[512];

        snprintf(path, sizeof(path), "%s/%s", SAMPLES_DIR, name);
        return it_slurp(path, len);
}

/* ---- Kafka ---- */

/* Readers assign(): their group is never joined nor committed. */
static rd_kafka_t *new_client(rd_kafka_type_t type)
{
        char group[128];

        snprintf(group, sizeof(group), "it-reader-%s-%lld", run_id, it_mono_ms());
        return it_kafka(cfg.kafka_brokers, type,
                        type == RD_KAFKA_PRODUCER ? NULL : group);
}

/* A test's topics: it.<run>.intake-<name>.{in,in.retry.1,in.retry.2,out,dlq,dup}
 * (dup: where intake records the duplicates it drops). */
typedef struct topics {
        char in[128], r1[140], r2[140], out[128], dlq[128], dup[128], group[128],
            instance[128];
        int dlq_partitions;
} topics_t;

static void make_topics(topics_t *t, const char *name, int dlq_partitions)
{
        const char *names[6];
        int parts[6];
        size_t i;

        snprintf(t->in, sizeof(t->in), "it.%s.intake-%s.in", run_id, name);
        snprintf(t->r1, sizeof(t->r1), "%s.retry.1", t->in);
        snprintf(t->r2, sizeof(t->r2), "%s.retry.2", t->in);
        snprintf(t->out, sizeof(t->out), "it.%s.intake-%s.out", run_id, name);
        snprintf(t->dlq, sizeof(t->dlq), "it.%s.intake-%s.dlq", run_id, name);
        snprintf(t->dup, sizeof(t->dup), "it.%s.intake-%s.dup", run_id, name);
        snprintf(t->group, sizeof(t->group), "it-%s-intake-%s", run_id, name);
        snprintf(t->instance, sizeof(t->instance), "it-%s-%s", run_id, name);
        t->dlq_partitions = dlq_partitions;
        names[0] = t->in;
        names[1] = t->r1;
        names[2] = t->r2;
        names[3] = t->out;
        names[4] = t->dlq;
        names[5] = t->dup;
        for (i = 0; i < 6; i++)
                parts[i] = i == 4 ? dlq_partitions : 1;
        it_create_topics(cfg.kafka_brokers, names, parts, 6);
}

/* Produces one raw order with the channel and account headers (NULL: none). */
static void produce(const char *topic, const char *channel, const char *account,
                    const char *key, const void *value, size_t len)
{
        rd_kafka_t *p = new_client(RD_KAFKA_PRODUCER);
        rd_kafka_headers_t *h = rd_kafka_headers_new(2);

        if (channel)
                rd_kafka_header_add(h, "channel", -1, channel, -1);
        if (account)
                rd_kafka_header_add(h, "account", -1, account, -1);
        ck_assert_int_eq(
            rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic),
                              RD_KAFKA_V_KEY((void *)key, key ? strlen(key) : 0),
                              RD_KAFKA_V_VALUE((void *)value, len),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                              RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END),
            0);
        ck_assert_int_eq(rd_kafka_flush(p, 30000), 0);
        rd_kafka_destroy(p);
}

/* One record read back, copied out of its message. */
typedef struct rec {
        int32_t partition;
        int64_t offset;
        char *key, *value;
        size_t key_len, len;
        char channel[32], replayed_from[256];
        int promo_headers; /* promo-* headers other than promo-replayed-from */
} rec_t;

typedef struct recs {
        rec_t *v;
        size_t n, cap;
} recs_t;

static char *dup_bytes(const void *p, size_t n)
{
        char *s = malloc(n + 1);

        ck_assert_ptr_nonnull(s);
        if (n)
                memcpy(s, p, n);
        s[n] = '\0';
        return s;
}

static void recs_add(recs_t *r, const rd_kafka_message_t *m)
{
        rd_kafka_headers_t *h = NULL;
        const char *name;
        const void *v;
        size_t len, i;
        rec_t *x;

        if (r->n == r->cap) {
                r->cap = r->cap ? r->cap * 2 : 16;
                r->v = realloc(r->v, r->cap * sizeof(*r->v));
                ck_assert_ptr_nonnull(r->v);
        }
        x = &r->v[r->n++];
        memset(x, 0, sizeof(*x));
        x->partition = m->partition;
        x->offset = m->offset;
        x->key = m->key ? dup_bytes(m->key, m->key_len) : NULL;
        x->key_len = m->key_len;
        x->value = dup_bytes(m->payload ? m->payload : "", m->len);
        x->len = m->len;
        if (rd_kafka_message_headers(m, &h) == 0)
                for (i = 0; !rd_kafka_header_get_all(h, i, &name, &v, &len); i++) {
                        if (strcmp(name, "channel") == 0 && v && len < sizeof(x->channel))
                                memcpy(x->channel, v, len);
                        else if (strcmp(name, "promo-replayed-from") == 0 && v &&
                                 len < sizeof(x->replayed_from))
                                memcpy(x->replayed_from, v, len);
                        else if (strncmp(name, "promo-", 6) == 0)
                                x->promo_headers++;
                }
}

static void recs_release(recs_t *r)
{
        size_t i;

        for (i = 0; i < r->n; i++) {
                free(r->v[i].key);
                free(r->v[i].value);
        }
        free(r->v);
        memset(r, 0, sizeof(*r));
}

/* Reads topic (read_committed) from the beginning until at least want
 * records arrived and then nothing more for settle_ms, or timeout_ms. */
static void read_topic(const char *topic, int partitions, size_t want, int timeout_ms,
                       int settle_ms, recs_t *out)
{
        rd_kafka_t *c = new_client(RD_KAFKA_CONSUMER);
        rd_kafka_topic_partition_list_t *l =
            rd_kafka_topic_partition_list_new(partitions);
        long long end = it_mono_ms() + timeout_ms, last = it_mono_ms();
        int i;

        memset(out, 0, sizeof(*out));
        for (i = 0; i < partitions; i++)
                rd_kafka_topic_partition_list_add(l, topic, i)->offset =
                    RD_KAFKA_OFFSET_BEGINNING;
        ck_assert_int_eq(rd_kafka_assign(c, l), 0);
        rd_kafka_topic_partition_list_destroy(l);
        while (it_mono_ms() < end) {
                rd_kafka_message_t *m;

                if (out->n >= want && it_mono_ms() - last >= settle_ms)
                        break;
                m = rd_kafka_consumer_poll(c, 100);
                if (!m)
                        continue;
                if (!m->err) {
                        recs_add(out, m);
                        last = it_mono_ms();
                }
                rd_kafka_message_destroy(m);
        }
        rd_kafka_consumer_close(c);
        rd_kafka_destroy(c);
}

/* ---- processes ---- */

/* GET path on 127.0.0.1:port; the HTTP status or -1. */
static int http_get(int port, const char *path)
{
        char resp[512];

        return it_http_get(port, path, resp, sizeof(resp));
}

/* Starts intake-normalizer on the test's topics and waits until /readyz says
 * its transactions are initialised. */
static pid_t start_intake(const topics_t *t, int port)
{
        char path[512], port_s[16];
        long long end;
        pid_t pid;

        snprintf(path, sizeof(path), "%s/intake-normalizer", getenv("PROMO_BIN_DIR"));
        snprintf(port_s, sizeof(port_s), "%d", port);
        pid = fork();
        if (pid < 0) /* no Check call in a child: CK_FORK=no shares its messages */
                ck_abort_msg("fork failed");
        if (pid == 0) {
                /* A test that fails leaves no service behind. */
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                setenv("PROMO_INTAKE_INPUT", t->in, 1);
                setenv("PROMO_INTAKE_OUTPUT", t->out, 1);
                setenv("PROMO_INTAKE_DLQ", t->dlq, 1);
                setenv("PROMO_INTAKE_DUPLICATES", t->dup, 1);
                setenv("PROMO_STAGE_GROUP", t->group, 1);
                setenv("PROMO_INSTANCE", t->instance, 1);
                setenv("PROMO_STAGE_RETRY_DELAYS_MS", "200,200", 1);
                setenv("PROMO_INTAKE_HTTP_PORT", port_s, 1);
                setenv("PROMO_INTAKE_PROFILES", PROFILES, 1);
                execl(path, path, (char *)NULL);
                _exit(127);
        }
        intake_pid = pid;
        for (end = it_mono_ms() + 30000; it_mono_ms() < end; it_sleep_ms(100)) {
                ck_assert_msg(waitpid(pid, NULL, WNOHANG) == 0,
                              "intake-normalizer exited at start-up");
                if (http_get(port, "/readyz") == 200)
                        return pid;
        }
        ck_abort_msg("intake-normalizer not ready within 30 s");
        return pid;
}

/* Sends SIGTERM; returns the exit status (fails after 20 s). */
static int stop_intake(pid_t pid)
{
        long long end = it_mono_ms() + 20000;
        int status = -1;

        kill(pid, SIGTERM);
        while (it_mono_ms() < end) {
                if (waitpid(pid, &status, WNOHANG) == pid) {
                        intake_pid = -1;
                        return status;
                }
                it_sleep_ms(20);
        }
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        intake_pid = -1;
        ck_abort_msg("intake-normalizer did not exit within 20 s of SIGTERM");
        return status;
}

static void kill_leftover(void)
{
        if (intake_pid > 0) {
                kill(intake_pid, SIGKILL);
                waitpid(intake_pid, NULL, 0);
                intake_pid = -1;
        }
}

/* Runs build/bin/<tool> with args (NULL-terminated); its stdout goes to out
 * (NUL-terminated, cut at size). Returns the exit status, -1 if it did not
 * exit normally. */
static int run_tool(const char *tool, const char *const *args, char *out, size_t size)
{
        char path[512];
        const char *argv[32];
        int fds[2], status, i;
        size_t n = 0;
        ssize_t r;
        pid_t pid;

        snprintf(path, sizeof(path), "%s/%s", getenv("PROMO_BIN_DIR"), tool);
        argv[0] = path;
        for (i = 0; args[i] && i < 30; i++)
                argv[i + 1] = args[i];
        argv[i + 1] = NULL;
        ck_assert_int_eq(pipe(fds), 0);
        pid = fork();
        if (pid < 0) /* no Check call in a child: CK_FORK=no shares its messages */
                ck_abort_msg("fork failed");
        if (pid == 0) {
                /* A test that fails leaves no service behind. */
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                dup2(fds[1], 1);
                close(fds[0]);
                close(fds[1]);
                execv(path, (char *const *)argv);
                _exit(127);
        }
        close(fds[1]);
        while ((r = read(fds[0], out + n, n + 1 < size ? size - 1 - n : 0)) > 0)
                n += (size_t)r;
        /* Drain what does not fit. */
        {
                char sink[4096];

                while (read(fds[0], sink, sizeof(sink)) > 0)
                        ;
        }
        out[n] = '\0';
        close(fds[0]);
        waitpid(pid, &status, 0);
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* ---- Redis ---- */

static void redis_del(const char *const *order_ids, size_t n)
{
        redisContext *r = redisConnect(cfg.redis_host, cfg.redis_port);
        size_t i;

        ck_assert_msg(r && !r->err, "redis: %s", r ? r->errstr : "no memory");
        for (i = 0; i < n; i++) {
                redisReply *rep =
                    redisCommand(r, "DEL promo:intake:seen:%s", order_ids[i]);

                ck_assert_ptr_nonnull(rep);
                freeReplyObject(rep);
        }
        redisFree(r);
}

static int redis_exists(const char *order_id)
{
        redisContext *r = redisConnect(cfg.redis_host, cfg.redis_port);
        redisReply *rep;
        int n;

        ck_assert_msg(r && !r->err, "redis: %s", r ? r->errstr : "no memory");
        rep = redisCommand(r, "EXISTS promo:intake:seen:%s", order_id);
        ck_assert_ptr_nonnull(rep);
        n = rep->type == REDIS_REPLY_INTEGER ? (int)rep->integer : -1;
        freeReplyObject(rep);
        redisFree(r);
        return n;
}

/* ---- orders ---- */

static void decode_order(const rec_t *r, po_order_t *o)
{
        char err[256];

        po_order_init(o, 1 << 20);
        ck_assert_msg(po_order_decode(avro, r->value, r->len, o, err, sizeof(err)) ==
                          PO_OK,
                      "output at %d:%lld is not an Order: %s", r->partition,
                      (long long)r->offset, err);
}

/* How many records of r decode to an order with this order id. */
static int count_order(const recs_t *r, const char *order_id)
{
        size_t i;
        int n = 0;

        for (i = 0; i < r->n; i++) {
                po_order_t o;

                decode_order(&r->v[i], &o);
                n += strcmp(o.order_id, order_id) == 0;
                po_order_release(&o);
        }
        return n;
}

/* A generated order (for sentinels and valid orders after bad ones). */
static void gen_order(const char *channel, const char *tag, uint64_t seed, char *payload,
                      size_t size, po_gen_order_t *meta)
{
        char rid[PO_GEN_MAX_RUN_ID + 1], err[256];
        po_gen_conf_t c = {.seed = seed, .run_id = rid};
        po_gen_t g;
        po_dynbuf_t b;

        snprintf(rid, sizeof(rid), "%s-%s", run_id, tag);
        ck_assert_int_eq(po_gen_init(&g, &c, err, sizeof(err)), PO_OK);
        po_dynbuf_init(&b, size - 1);
        ck_assert_int_eq(po_gen_next(&g, channel, &b, meta), PO_OK);
        memcpy(payload, b.data, b.len + 1);
        po_dynbuf_release(&b);
}

/* ---- the tests ---- */

typedef struct exp_line {
        const char *sku;
        int64_t unit_price, quantity, tax_ppm;
} exp_line_t;

/* What each sample must become, worked out by hand from the files. */
static const struct {
        const char *channel, *external_id, *order_id, *account, *currency;
        po_tax_mode_t tax_mode;
        int64_t placed_at_us;
        size_t line_count;
        exp_line_t lines[2];
        size_t code_count;
        const char *codes[2];
        const char *customer_tier;
} expected[] = {
    /* "price": "19.99" x 2 and "6.50" x 3, "rate": 0.0825 on both. */
    {"web",
     "5123456789012",
     "web:5123456789012",
     "default",
     "USD",
     PO_TAX_EXCLUSIVE,
     1795532292000000LL, /* 09:58:12-05:00 */
     2,
     {{"SKU-1", 1999, 2, 82500}, {"SKU-7", 650, 3, 82500}},
     1,
     {"save10", NULL},
     "gold"},
    /* ItemPrice is the line total: 44.97 / 3 = 14.99; tax 3.71 on 44.97 is
     * 8.25 %, 0.80 on 9.99 is 8 %. The account is the marketplace id. */
    {"marketplace",
     "114-3941689-8772232",
     "marketplace:114-3941689-8772232",
     "ATVPDKIKX0DER",
     "USD",
     PO_TAX_EXCLUSIVE,
     1795532292000000LL,
     2,
     {{"SKU-3", 1499, 3, 82500}, {"SKU-9", 999, 1, 80000}},
     1,
     {"FLASH-24", NULL},
     NULL},
    /* Prices already in cents; external id store-register-txn; account the store. */
    {"pos",
     "0012-03-000088213",
     "pos:0012-03-000088213",
     "0012",
     "USD",
     PO_TAX_EXCLUSIVE,
     1795532462000000LL,
     2,
     {{"SKU-1", 1999, 1, 82500}, {"SKU-4", 350, 2, 0}},
     1,
     {"WELCOME", NULL},
     "silver"},
    /* unit_minor and vat_ppm as they are; prices include tax. */
    {"mobile",
     "M-2026-000731",
     "mobile:M-2026-000731",
     "default",
     "EUR",
     PO_TAX_INCLUSIVE,
     1795532400000000LL,
     2,
     {{"SKU-2", 1250, 1, 70000}, {"SKU-5", 2999, 2, 190000}},
     2,
     {"TIER-UP", "VIP-7K2M"},
     "platinum"},
};

static void teardown(void)
{
        kill_leftover();
}

START_TEST(generator_is_deterministic_and_accepted)
{
        static const char *const codes[] = {"SAVE10", "FLASH-24", "VIP-7K2M"};
        size_t nch, i;
        const char *const *chs = po_gen_channels(&nch);
        po_gen_conf_t c = {
            .seed = 99, .run_id = "det-1", .codes = codes, .code_count = 3};
        po_gen_t a, b;
        po_dynbuf_t ba, bb;
        po_profiles_t *ps;
        char err[256];
        int with_codes = 0, split = 0;

        ps = po_profiles_load(PROFILES, err, sizeof(err));
        ck_assert_msg(ps != NULL, "%s", err);
        ck_assert_int_eq(po_gen_init(&a, &c, err, sizeof(err)), PO_OK);
        ck_assert_int_eq(po_gen_init(&b, &c, err, sizeof(err)), PO_OK);
        po_dynbuf_init(&ba, 1 << 20);
        po_dynbuf_init(&bb, 1 << 20);
        for (i = 0; i < 800; i++) {
                const char *ch = chs[i % nch];
                po_gen_order_t ma, mb;
                po_channel_ctx_t ctx;
                po_channel_reject_t rej;
                po_order_t o;

                po_dynbuf_reset(&ba);
                po_dynbuf_reset(&bb);
                ck_assert_int_eq(po_gen_next(&a, ch, &ba, &ma), PO_OK);
                ck_assert_int_eq(po_gen_next(&b, ch, &bb, &mb), PO_OK);
                ck_assert_msg(ba.len == bb.len && memcmp(ba.data, bb.data, ba.len) == 0,
                              "same seed, different payload");
                ctx =
                    (po_channel_ctx_t){.channel = ch,
                                       .account = ma.account,
                                       .profile = po_profiles_lookup(ps, ch, ma.account)};
                po_order_init(&o, 1 << 22);
                ck_assert_msg(po_channel_normalize(&ctx, ba.data, ba.len, &o, &rej) ==
                                  PO_OK,
                              "%s payload rejected: %s %s: %s\n%s", ch, rej.reason,
                              rej.field, rej.message, ba.data);
                ck_assert_str_eq(o.order_id, ma.order_id);
                ck_assert_str_eq(o.currency, ma.currency);
                ck_assert_uint_eq(o.line_count, ma.line_count);
                ck_assert_int_eq(po_order_value(&o), ma.value);
                ck_assert_uint_eq(o.code_count, ma.code_count);
                with_codes += o.code_count > 0;
                split += strcmp(ch, "marketplace") == 0 && o.line_count > 1;
                po_order_release(&o);
        }
        /* Varied: codes on some orders, not all. */
        ck_assert_int_gt(with_codes, 100);
        ck_assert_int_lt(with_codes, 700);
        ck_assert_int_gt(split, 0);
        /* A different seed gives different payloads, ids stay unique per run. */
        c.seed = 100;
        ck_assert_int_eq(po_gen_init(&b, &c, err, sizeof(err)), PO_OK);
        po_dynbuf_reset(&bb);
        {
                po_gen_order_t m;

                ck_assert_int_eq(po_gen_next(&b, "web", &bb, &m), PO_OK);
                ck_assert_str_eq(m.external_id, "det-1-1");
        }
        c.run_id = "bad id";
        ck_assert_int_eq(po_gen_init(&b, &c, err, sizeof(err)), PO_ERR_INVALID_ARG);
        po_dynbuf_release(&ba);
        po_dynbuf_release(&bb);
        po_profiles_destroy(ps);
}
END_TEST

START_TEST(every_sample_becomes_one_exact_order)
{
        static const char *const ids[] = {
            "web:5123456789012", "marketplace:114-3941689-8772232",
            "pos:0012-03-000088213", "mobile:M-2026-000731"};
        topics_t t;
        recs_t out;
        char buf[4096];
        size_t i, e, l;
        int port = it_free_port();
        pid_t pid;

        make_topics(&t, "samples", 1);
        redis_del(ids, 4);
        pid = start_intake(&t, port);
        {
                const char *args[] = {"samples", "--dir", SAMPLES_DIR,
                                      "--topic", t.in,    NULL};

                ck_assert_int_eq(run_tool("promo-publish", args, buf, sizeof(buf)), 0);
                ck_assert_msg(strstr(buf, "delivered 4 of 4") != NULL, "%s", buf);
        }
        read_topic(t.out, 1, 4, 60000, 2000, &out);
        ck_assert_uint_eq(out.n, 4);
        for (e = 0; e < 4; e++) {
                int found = 0;

                for (i = 0; i < out.n; i++) {
                        po_order_t o;

                        decode_order(&out.v[i], &o);
                        if (strcmp(o.channel, expected[e].channel) != 0) {
                                po_order_release(&o);
                                continue;
                        }
                        found++;
                        ck_assert_str_eq(o.external_id, expected[e].external_id);
                        ck_assert_str_eq(o.order_id, expected[e].order_id);
                        ck_assert_uint_eq(out.v[i].key_len, strlen(o.order_id));
                        ck_assert_int_eq(
                            memcmp(out.v[i].key, o.order_id, out.v[i].key_len), 0);
                        ck_assert_str_eq(o.account, expected[e].account);
                        ck_assert_str_eq(o.currency, expected[e].currency);
                        ck_assert_int_eq(o.tax_mode, expected[e].tax_mode);
                        ck_assert_int_eq(o.placed_at_us, expected[e].placed_at_us);
                        ck_assert_uint_eq(o.line_count, expected[e].line_count);
                        for (l = 0; l < o.line_count; l++) {
                                const exp_line_t *x = &expected[e].lines[l];

                                ck_assert_str_eq(o.lines[l].sku, x->sku);
                                ck_assert_int_eq(o.lines[l].unit_price, x->unit_price);
                                ck_assert_int_eq(o.lines[l].quantity, x->quantity);
                                ck_assert_int_eq(o.lines[l].tax_rate_ppm, x->tax_ppm);
                        }
                        ck_assert_uint_eq(o.code_count, expected[e].code_count);
                        for (l = 0; l < o.code_count; l++)
                                ck_assert_str_eq(o.codes[l], expected[e].codes[l]);
                        if (expected[e].customer_tier)
                                ck_assert_str_eq(o.customer_tier,
                                                 expected[e].customer_tier);
                        po_order_release(&o);
                }
                ck_assert_msg(found == 1, "%d orders of channel %s", found,
                              expected[e].channel);
        }
        recs_release(&out);
        ck_assert_int_eq(stop_intake(pid), 0);
}
END_TEST

/* What each line of malformed-examples.txt was sent as, and the names that
 * may appear in its error: every field really at fault in that payload (an
 * adapter reports the first it meets), or, for bytes that are not JSON, the
 * position of the fault. */
static const struct {
        const char *channel;
        const char *fields[4];
} malformed[] = {
    /* no created_at; price "abc" */
    {"web", {"created_at", "line_items[0].price", NULL}},
    /* no created_at; quantity -4 */
    {"web", {"created_at", "line_items[0].quantity", NULL}},
    /* no PurchaseDate, no OrderTotal (so no currency); OrderItems not a list */
    {"marketplace", {"OrderItems", "OrderTotal", "PurchaseDate", NULL}},
    /* txn empty, ts "yesterday", currency "US" */
    {"pos", {"H.txn", "H.ts", "H.currency", NULL}},
    /* unit_minor beyond 64 bits (a JSON parser refuses it: its column), sku "" */
    {"mobile", {"unit_minor", "column 111", "cart.items[0].sku", NULL}},
    /* JSON cut short */
    {"web", {"column 14", "end of", NULL}},
};

START_TEST(malformed_examples_become_dead_letters)
{
        topics_t t;
        recs_t dlq, out;
        char buf[8192], seen[8] = {0};
        char *file;
        size_t len, i, k, nlines = 0;
        const char *lines[8];
        size_t line_len[8];
        int port = it_free_port();
        pid_t pid;

        make_topics(&t, "malformed", 3);
        pid = start_intake(&t, port);
        {
                char path[512];
                const char *args[] = {"malformed", "--file", path, "--topic", t.in, NULL};

                snprintf(path, sizeof(path), "%s/malformed-examples.txt", SAMPLES_DIR);
                ck_assert_int_eq(run_tool("promo-publish", args, buf, sizeof(buf)), 0);
                ck_assert_msg(strstr(buf, "delivered 6 of 6") != NULL, "%s", buf);
        }
        /* A valid order after them, through the generator of promo-publish. */
        {
                char rid[PO_GEN_MAX_RUN_ID + 1];
                const char *args[] = {"generate", "--channel", "web", "--count",
                                      "1",        "--seed",    "7",   "--run-id",
                                      rid,        "--topic",   t.in,  NULL};

                snprintf(rid, sizeof(rid), "%s-after", run_id);
                ck_assert_int_eq(run_tool("promo-publish", args, buf, sizeof(buf)), 0);
        }
        read_topic(t.dlq, 3, 6, 60000, 2000, &dlq);
        ck_assert_uint_eq(dlq.n, 6);

        file = slurp("malformed-examples.txt", &len);
        for (i = 0; i < len && nlines < 8;) {
                size_t end = i;

                while (end < len && file[end] != '\n')
                        end++;
                if (end > i && file[i] != '#') {
                        lines[nlines] = file + i;
                        line_len[nlines++] = end - i;
                }
                i = end + 1;
        }
        ck_assert_uint_eq(nlines, 6);
        for (i = 0; i < dlq.n; i++) {
                po_deadletter_t dl;
                char err[256];
                int ok = 0;

                ck_assert_msg(po_avro_decode_deadletter(avro, dlq.v[i].value,
                                                        dlq.v[i].len, &dl, err,
                                                        sizeof(err)) == PO_OK,
                              "%s", err);
                for (k = 0; k < nlines; k++)
                        if (dl.original_value_len == line_len[k] &&
                            memcmp(dl.original_value, lines[k], line_len[k]) == 0)
                                break;
                ck_assert_msg(k < nlines, "a dead letter with bytes of no example: %.*s",
                              (int)dl.original_value_len,
                              (const char *)dl.original_value);
                ck_assert_msg(!seen[k], "example %zu dead-lettered twice", k + 1);
                seen[k] = 1;
                ck_assert_msg(dl.reason_code[0] != '\0', "example %zu: no reason", k + 1);
                ck_assert_str_eq(dl.stage, "intake-normalizer");
                ck_assert_str_eq(dl.source_topic, t.in);
                ck_assert_int_eq(dl.attempts, 1);
                ck_assert_int_ge(dl.priority, 1);
                for (size_t f = 0; malformed[k].fields[f]; f++)
                        ok |= strstr(dl.error, malformed[k].fields[f]) != NULL;
                ck_assert_msg(ok,
                              "example %zu (%s): the error \"%s\" names none of the "
                              "fields at fault",
                              k + 1, dl.reason_code, dl.error);
                /* The channel header it was sent with is kept. */
                ck_assert_msg(dl.header_count >= 1, "example %zu: no headers", k + 1);
                {
                        int has_channel = 0;

                        for (size_t h = 0; h < dl.header_count; h++)
                                if (strcmp(dl.headers[h].key, "channel") == 0) {
                                        has_channel = 1;
                                        ck_assert_uint_eq(dl.headers[h].value_len,
                                                          strlen(malformed[k].channel));
                                        ck_assert_int_eq(memcmp(dl.headers[h].value,
                                                                malformed[k].channel,
                                                                dl.headers[h].value_len),
                                                         0);
                                }
                        ck_assert_msg(has_channel, "example %zu: no channel header",
                                      k + 1);
                }
                po_deadletter_release(&dl);
        }
        /* The service is still serving, and the valid order came through. */
        read_topic(t.out, 1, 1, 60000, 1000, &out);
        ck_assert_uint_eq(out.n, 1);
        {
                po_order_t o;

                snprintf(buf, sizeof(buf), "web:%s-after-1", run_id);
                decode_order(&out.v[0], &o);
                ck_assert_str_eq(o.order_id, buf);
                po_order_release(&o);
        }
        ck_assert_int_eq(waitpid(pid, NULL, WNOHANG), 0);
        ck_assert_int_eq(http_get(port, "/healthz"), 200);
        free(file);
        recs_release(&dlq);
        recs_release(&out);
        ck_assert_int_eq(stop_intake(pid), 0);
}
END_TEST

START_TEST(duplicates_dropped_across_restart)
{
        static const char *const id[] = {"pos:0012-03-000088213"};
        topics_t t;
        recs_t out;
        po_gen_order_t s1, s2;
        char g1[8192], g2[8192];
        char *pos;
        size_t len;
        int port = it_free_port();
        pid_t pid;

        make_topics(&t, "dedupe", 1);
        redis_del(id, 1);
        pos = slurp("pos-transaction.txt", &len);
        gen_order("web", "dd1", 1, g1, sizeof(g1), &s1);
        gen_order("web", "dd2", 1, g2, sizeof(g2), &s2);
        pid = start_intake(&t, port);
        /* The same sample twice, then a sentinel: one partition, so when the
         * sentinel is out, both copies were processed. */
        produce(t.in, "pos", "0012", NULL, pos, len);
        produce(t.in, "pos", "0012", NULL, pos, len);
        produce(t.in, "web", s1.account, s1.external_id, g1, strlen(g1));
        read_topic(t.out, 1, 2, 60000, 2000, &out);
        ck_assert_uint_eq(out.n, 2);
        ck_assert_int_eq(count_order(&out, id[0]), 1);
        ck_assert_int_eq(count_order(&out, s1.order_id), 1);
        recs_release(&out);
        ck_assert_int_eq(redis_exists(id[0]), 1);

        ck_assert_int_eq(stop_intake(pid), 0);
        pid = start_intake(&t, port);
        produce(t.in, "pos", "0012", NULL, pos, len);
        produce(t.in, "web", s2.account, s2.external_id, g2, strlen(g2));
        read_topic(t.out, 1, 3, 60000, 2000, &out);
        ck_assert_uint_eq(out.n, 3);
        ck_assert_int_eq(count_order(&out, id[0]), 1);
        ck_assert_int_eq(count_order(&out, s2.order_id), 1);
        recs_release(&out);
        free(pos);
        ck_assert_int_eq(stop_intake(pid), 0);
}
END_TEST

/* The position, priority (-1 for UNDECODABLE) and first failure time of
 * each entry line of a listing, in order. */
static size_t listed(const char *text, long long *prio, char pos[][32], char first[][40],
                     int *undecodable, size_t max)
{
        const char *p = text;
        size_t n = 0;

        while (*p && n < max) {
                const char *eol = strchr(p, '\n');
                size_t len = eol ? (size_t)(eol - p) : strlen(p);

                if (*p != '#' && len) {
                        char line[1024], prio_s[32] = "";

                        snprintf(line, sizeof(line), "%.*s", (int)len, p);
                        first[n][0] = '\0';
                        ck_assert_int_ge(sscanf(line, "%31s %31s %*s %*s %*s %39s",
                                                pos[n], prio_s, first[n]),
                                         2);
                        undecodable[n] = strstr(line, "UNDECODABLE") != NULL;
                        prio[n] = undecodable[n] ? -1 : strtoll(prio_s, NULL, 10);
                        n++;
                }
                if (!eol)
                        break;
                p = eol + 1;
        }
        return n;
}

START_TEST(dlq_list_by_priority_and_replay_fixed)
{
        static const char mobile_fmt[] =
            "{\"schema\": \"app.order.v2\", \"order_ref\": \"%s\", \"placed_at_ms\": "
            "1795532400000, %s\"cart\": {\"currency\": \"EUR\", \"items\": [{\"sku\": "
            "\"SKU-2\", \"cat\": \"books\", \"unit_minor\": %s, \"qty\": 1, \"vat_ppm\": "
            "70000}]}}";
        /* Its subtotal disagrees with its items: value 300.00 USD, priority 301. */
        static const char pos_bad_total[] =
            "H|store=0031|register=01|txn=77|ts=2026-11-24T15:01:02Z|currency=USD\n"
            "I|sku=SKU-1|qty=3|price=10000|taxppm=0\nT|subtotal=29999\n";
        topics_t t;
        recs_t dlq, out, in;
        char big[512], small[512], fixed[512], ref_big[96], ref_small[96], ref_fixed[96];
        char text[16384], vpath[256], pos[8][32], first[8][40], at[32], bad_at[32];
        long long prio[8];
        int undecodable[8];
        size_t n, i, in_before;
        int port = it_free_port();
        pid_t pid;
        char *examples, *web_bad;
        size_t len;

        make_topics(&t, "dlq", 3);
        snprintf(ref_big, sizeof(ref_big), "M-%s-big", run_id);
        snprintf(ref_small, sizeof(ref_small), "M-%s-small", run_id);
        snprintf(ref_fixed, sizeof(ref_fixed), "M-%s-fixed", run_id);
        /* Mobile orders must have a customer: these have none. Priority is
         * (value in major units + 1) x tier x channel weight (2 for mobile). */
        snprintf(big, sizeof(big), mobile_fmt, ref_big, "", "500000");     /* 10002 */
        snprintf(small, sizeof(small), mobile_fmt, ref_small, "", "1000"); /* 22 */
        snprintf(fixed, sizeof(fixed), mobile_fmt, ref_fixed,
                 "\"user\": {\"uid\": \"c-9\"}, ", "1000");
        /* The first malformed example (after the comment line): a web order
         * of value 0, priority 2; sent twice, for a tie. */
        examples = slurp("malformed-examples.txt", &len);
        web_bad = strchr(examples, '\n') + 1;
        *strchr(web_bad, '\n') = '\0';

        pid = start_intake(&t, port);
        produce(t.in, "mobile", "app", ref_small, small, strlen(small));
        produce(t.in, "web", "default", NULL, web_bad, strlen(web_bad));
        produce(t.in, "mobile", "app", ref_big, big, strlen(big));
        produce(t.in, "pos", "0031", NULL, pos_bad_total, strlen(pos_bad_total));
        produce(t.in, "web", "default", NULL, web_bad, strlen(web_bad));
        /* Something that is not a DeadLetter, as a broken producer would write. */
        {
                rd_kafka_t *p = new_client(RD_KAFKA_PRODUCER);
                rd_kafka_headers_t *h = rd_kafka_headers_new(1);

                rd_kafka_header_add(h, "promo-reason", -1, "FAKE", -1);
                ck_assert_int_eq(
                    rd_kafka_producev(p, RD_KAFKA_V_TOPIC(t.dlq), RD_KAFKA_V_PARTITION(2),
                                      RD_KAFKA_V_VALUE("not avro", 8),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                      RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END),
                    0);
                ck_assert_int_eq(rd_kafka_flush(p, 30000), 0);
                rd_kafka_destroy(p);
        }
        read_topic(t.dlq, 3, 6, 60000, 1500, &dlq);
        ck_assert_uint_eq(dlq.n, 6);
        recs_release(&dlq);

        /* The listing: highest priority first, equal ones oldest first, the
         * undecodable record last. */
        {
                const char *args[] = {"list", t.dlq, NULL};
                static const long long want[] = {10002, 301, 22, 2, 2, -1};

                ck_assert_int_eq(run_tool("promo-dlq", args, text, sizeof(text)), 0);
                n = listed(text, prio, pos, first, undecodable, 8);
                ck_assert_msg(n == 6, "%s", text);
                for (i = 0; i < 6; i++)
                        ck_assert_msg(prio[i] == want[i],
                                      "line %zu: priority %lld, want "
                                      "%lld\n%s",
                                      i, prio[i], want[i], text);
                ck_assert(undecodable[5] && !undecodable[4]);
                ck_assert_msg(strstr(text, "1 undecodable") != NULL, "%s", text);
                /* The tie: the older failure first (UTC times sort as text). */
                ck_assert_int_le(strcmp(first[3], first[4]), 0);
                snprintf(bad_at, sizeof(bad_at), "%s", pos[5]);
        }
        {
                const char *args[] = {"list", t.dlq, "--limit", "2", NULL};

                ck_assert_int_eq(run_tool("promo-dlq", args, text, sizeof(text)), 0);
                n = listed(text, prio, pos, first, undecodable, 8);
                ck_assert_uint_eq(n, 2);
                ck_assert(prio[0] == 10002 && prio[1] == 301);
        }
        {
                const char *args[] = {"list", t.dlq, "--reason", "PROFILE_REQUIREMENT",
                                      NULL};

                ck_assert_int_eq(run_tool("promo-dlq", args, text, sizeof(text)), 0);
                n = listed(text, prio, pos, first, undecodable, 8);
                ck_assert_uint_eq(n, 2);
                ck_assert(prio[0] == 10002 && prio[1] == 22);
                /* The small one, to be fixed and replayed. */
                snprintf(at, sizeof(at), "%s", pos[1]);
        }
        {
                FILE *f;

                snprintf(vpath, sizeof(vpath), "/tmp/check_intake-%s.json", run_id);
                f = fopen(vpath, "wb");
                ck_assert_ptr_nonnull(f);
                ck_assert_uint_eq(fwrite(fixed, 1, strlen(fixed), f), strlen(fixed));
                fclose(f);
        }
        /* Refused: ambiguous choices; an undecodable record. Nothing is sent. */
        {
                const char *a1[] = {"replay",       t.dlq, "--all",
                                    "--value-file", vpath, NULL};
                const char *a2[] = {"replay", t.dlq, "--at", at, "--reason", "X", NULL};
                const char *a3[] = {"replay", t.dlq, "--at", bad_at, NULL};

                ck_assert_int_eq(run_tool("promo-dlq", a1, text, sizeof(text)), 2);
                ck_assert_int_eq(run_tool("promo-dlq", a2, text, sizeof(text)), 2);
                ck_assert_int_eq(run_tool("promo-dlq", a3, text, sizeof(text)), 2);
        }
        read_topic(t.in, 1, 5, 30000, 500, &in);
        in_before = in.n;
        recs_release(&in);
        ck_assert_uint_eq(in_before, 5);
        {
                const char *args[] = {"replay",       t.dlq, "--at",      at,
                                      "--value-file", vpath, "--dry-run", NULL};

                ck_assert_int_eq(run_tool("promo-dlq", args, text, sizeof(text)), 0);
                ck_assert_msg(strstr(text, "would replay") != NULL, "%s", text);
        }
        read_topic(t.in, 1, in_before, 30000, 1000, &in);
        ck_assert_uint_eq(in.n, in_before);
        recs_release(&in);
        {
                const char *args[] = {"replay",       t.dlq, "--at", at,
                                      "--value-file", vpath, NULL};

                ck_assert_int_eq(run_tool("promo-dlq", args, text, sizeof(text)), 0);
                ck_assert_msg(strstr(text, "replayed 1 of 1") != NULL, "%s", text);
        }
        /* Re-published: original key and channel header, the fixed value,
         * promo-replayed-from, none of the runner's headers. */
        read_topic(t.in, 1, in_before + 1, 30000, 500, &in);
        ck_assert_uint_eq(in.n, in_before + 1);
        {
                const rec_t *r = &in.v[in.n - 1];
                char from[300];

                snprintf(from, sizeof(from), "%s:%s", t.dlq, at);
                ck_assert_str_eq(r->replayed_from, from);
                ck_assert_str_eq(r->channel, "mobile");
                /* promo-source-topic, -partition, -offset: where it first
                 * came from; no other runner header. */
                ck_assert_int_eq(r->promo_headers, 3);
                ck_assert_ptr_nonnull(r->key);
                ck_assert_str_eq(r->key, ref_small);
                ck_assert_uint_eq(r->len, strlen(fixed));
                ck_assert_int_eq(memcmp(r->value, fixed, r->len), 0);
        }
        recs_release(&in);
        /* ... and the fixed order comes through. */
        read_topic(t.out, 1, 1, 60000, 1000, &out);
        ck_assert_uint_eq(out.n, 1);
        {
                po_order_t o;
                char id[128];

                decode_order(&out.v[0], &o);
                snprintf(id, sizeof(id), "mobile:%s", ref_fixed);
                ck_assert_str_eq(o.order_id, id);
                ck_assert_str_eq(o.account, "app");
                ck_assert_uint_eq(o.line_count, 1);
                ck_assert_int_eq(o.lines[0].unit_price, 1000);
                po_order_release(&o);
        }
        recs_release(&out);
        unlink(vpath);
        free(examples);
        ck_assert_int_eq(stop_intake(pid), 0);
}
END_TEST

/* An order claimed by a raw message that then went to the dead-letter topic
 * (say, Redis down through every retry after the claim was written) is
 * replayed by promo-dlq: the replay carries the original position, which
 * owns the claim, so the order comes through; a new raw message with the
 * same order is still a duplicate. The claim and the dead letter are
 * written by the test, as intake would have left them. */
START_TEST(dlq_replay_of_a_claimed_order_comes_through)
{
        static const char fmt[] =
            "{\"schema\": \"app.order.v2\", \"order_ref\": \"%s\", \"placed_at_ms\": "
            "1795532400000, \"user\": {\"uid\": \"c-7\"}, \"cart\": {\"currency\": "
            "\"EUR\", \"items\": [{\"sku\": \"SKU-2\", \"cat\": \"books\", "
            "\"unit_minor\": 1000, \"qty\": 1, \"vat_ppm\": 70000}]}}";
        topics_t t;
        recs_t out, dup;
        po_deadletter_t dl;
        po_header_t hdrs[2];
        po_dynbuf_t b;
        redisContext *r;
        redisReply *rep;
        rd_kafka_t *p;
        char ref[96], id[128], payload[512], owner[300], text[4096], err[256];
        const char *ids[1];
        int port = it_free_port();
        pid_t pid;

        make_topics(&t, "claimed", 1);
        snprintf(ref, sizeof(ref), "M-%s-claimed", run_id);
        snprintf(id, sizeof(id), "mobile:%s", ref);
        snprintf(payload, sizeof(payload), fmt, ref);
        /* The claim, owned by the raw message at offset 4242 of the input. */
        snprintf(owner, sizeof(owner), "%s/0/4242", t.in);
        r = redisConnect(cfg.redis_host, cfg.redis_port);
        ck_assert_msg(r && !r->err, "redis: %s", r ? r->errstr : "no memory");
        rep = redisCommand(r, "SET promo:intake:seen:%s %s EX 3600", id, owner);
        ck_assert_ptr_nonnull(rep);
        freeReplyObject(rep);
        redisFree(r);
        /* Its dead letter. */
        po_deadletter_init(&dl);
        hdrs[0] = (po_header_t){"channel", "mobile", 6, 1};
        hdrs[1] = (po_header_t){"account", "app", 3, 1};
        dl.stage = "intake-normalizer";
        dl.source_topic = t.in;
        dl.partition = 0;
        dl.offset = 4242;
        dl.reason_code = "REDIS_DOWN";
        dl.error = "dedupe store unreachable";
        dl.attempts = 3;
        dl.first_failure_ms = 1795532400000LL;
        dl.last_failure_ms = 1795532411000LL;
        dl.priority = 22;
        dl.original_key = ref;
        dl.original_key_len = strlen(ref);
        dl.has_original_key = 1;
        dl.original_value = payload;
        dl.original_value_len = strlen(payload);
        dl.headers = hdrs;
        dl.header_count = 2;
        po_dynbuf_init(&b, 1 << 20);
        ck_assert_msg(po_avro_encode_deadletter(avro, &dl, &b, err, sizeof(err)) == PO_OK,
                      "%s", err);
        p = new_client(RD_KAFKA_PRODUCER);
        ck_assert_int_eq(
            rd_kafka_producev(p, RD_KAFKA_V_TOPIC(t.dlq), RD_KAFKA_V_PARTITION(0),
                              RD_KAFKA_V_VALUE(b.data, b.len),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
            0);
        ck_assert_int_eq(rd_kafka_flush(p, 30000), 0);
        rd_kafka_destroy(p);
        po_dynbuf_release(&b);

        pid = start_intake(&t, port);
        /* A new raw message with the same order: a duplicate. */
        produce(t.in, "mobile", "app", ref, payload, strlen(payload));
        read_topic(t.dup, 1, 1, 60000, 500, &dup);
        ck_assert_uint_eq(dup.n, 1);
        recs_release(&dup);
        /* The replay of the dead letter: the order. */
        {
                const char *args[] = {"replay", t.dlq, "--at", "0:0", NULL};

                ck_assert_int_eq(run_tool("promo-dlq", args, text, sizeof(text)), 0);
                ck_assert_msg(strstr(text, "replayed 1 of 1") != NULL, "%s", text);
        }
        read_topic(t.out, 1, 1, 60000, 3000, &out);
        ck_assert_uint_eq(out.n, 1);
        {
                po_order_t o;

                decode_order(&out.v[0], &o);
                ck_assert_str_eq(o.order_id, id);
                po_order_release(&o);
        }
        recs_release(&out);
        read_topic(t.dup, 1, 1, 10000, 1000, &dup);
        ck_assert_uint_eq(dup.n, 1); /* still only the one */
        recs_release(&dup);
        ck_assert_int_eq(stop_intake(pid), 0);
        ids[0] = id;
        redis_del(ids, 1);
}
END_TEST

/* Ties in priority are listed oldest failure first, whatever their
 * positions: dead letters written by the test, no service. */
START_TEST(dlq_list_ties_by_time)
{
        static const struct {
                int32_t partition;
                int64_t priority, first_ms;
        } dls[] = {
            {0, 5, 1795530000300LL}, {0, 9, 1795530000500LL}, {1, 5, 1795530000100LL},
            {2, 5, 1795530000200LL}, {2, 5, 1795530000200LL},
        };
        static const char *const want_first[] = {
            "2026-11-24T14:20:00.500Z", "2026-11-24T14:20:00.100Z",
            "2026-11-24T14:20:00.200Z", "2026-11-24T14:20:00.200Z",
            "2026-11-24T14:20:00.300Z",
        };
        topics_t t;
        rd_kafka_t *p;
        char text[8192], pos[8][32], first[8][40], err[256];
        long long prio[8];
        int undecodable[8];
        size_t i, n;

        make_topics(&t, "ties", 3);
        p = new_client(RD_KAFKA_PRODUCER);
        for (i = 0; i < sizeof(dls) / sizeof(dls[0]); i++) {
                po_deadletter_t dl;
                po_dynbuf_t b;

                po_deadletter_init(&dl);
                dl.stage = "intake-normalizer";
                dl.source_topic = t.in;
                dl.reason_code = "TEST";
                dl.error = "field x: written by the test\nsecond line";
                dl.attempts = 1;
                dl.first_failure_ms = dls[i].first_ms;
                dl.last_failure_ms = dls[i].first_ms + 10;
                dl.priority = dls[i].priority;
                dl.original_value = "{}";
                dl.original_value_len = 2;
                po_dynbuf_init(&b, 1 << 20);
                ck_assert_msg(
                    po_avro_encode_deadletter(avro, &dl, &b, err, sizeof(err)) == PO_OK,
                    "%s", err);
                ck_assert_int_eq(
                    rd_kafka_producev(p, RD_KAFKA_V_TOPIC(t.dlq),
                                      RD_KAFKA_V_PARTITION(dls[i].partition),
                                      RD_KAFKA_V_VALUE(b.data, b.len),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                      RD_KAFKA_V_END),
                    0);
                po_dynbuf_release(&b);
        }
        ck_assert_int_eq(
            rd_kafka_producev(p, RD_KAFKA_V_TOPIC(t.dlq), RD_KAFKA_V_PARTITION(1),
                              RD_KAFKA_V_VALUE("\xc3\x01garbage", 9),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
            0);
        ck_assert_int_eq(rd_kafka_flush(p, 30000), 0);
        rd_kafka_destroy(p);
        {
                const char *args[] = {"list", t.dlq, NULL};

                ck_assert_int_eq(run_tool("promo-dlq", args, text, sizeof(text)), 0);
        }
        n = listed(text, prio, pos, first, undecodable, 8);
        ck_assert_msg(n == 6, "%s", text);
        ck_assert(prio[0] == 9 && !strcmp(pos[0], "0:1"));
        for (i = 0; i < 5; i++)
                ck_assert_msg(strcmp(first[i], want_first[i]) == 0, "line %zu: %s\n%s", i,
                              first[i], text);
        ck_assert_str_eq(pos[1], "1:0");
        ck_assert_str_eq(pos[2], "2:0"); /* equal times: by position */
        ck_assert_str_eq(pos[3], "2:1");
        ck_assert_str_eq(pos[4], "0:0");
        ck_assert(undecodable[5] && !strcmp(pos[5], "1:1"));
        /* One line per dead letter: the newline in the error is not printed. */
        ck_assert_ptr_null(strstr(text, "\nsecond line"));
}
END_TEST

int main(void)
{
        Suite *s = suite_create("intake");
        SRunner *sr;
        char err[256];
        int failed;
        const struct {
                const char *name;
                const TTest *test;
        } cases[] = {
            {"generator", generator_is_deterministic_and_accepted},
            {"samples", every_sample_becomes_one_exact_order},
            {"malformed", malformed_examples_become_dead_letters},
            {"dedupe", duplicates_dropped_across_restart},
            {"dlq", dlq_list_by_priority_and_replay_fixed},
            {"ties", dlq_list_ties_by_time},
            {"claimed", dlq_replay_of_a_claimed_order_comes_through},
        };
        size_t i;

        if (po_config_load(&cfg, NULL, 0, err, sizeof(err))) {
                fprintf(stderr, "%s\n", err);
                return 1;
        }
        if (!getenv("PROMO_BIN_DIR")) {
                fprintf(stderr, "PROMO_BIN_DIR is not set\n");
                return 1;
        }
        avro = po_avro_new(err, sizeof(err));
        if (!avro) {
                fprintf(stderr, "avro: %s\n", err);
                return 1;
        }
        snprintf(run_id, sizeof(run_id), "%ld-%d", (long)time(NULL), (int)getpid());
        /* One case per test, so CK_RUN_CASE=dedupe runs one alone. */
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                TCase *tc = tcase_create(cases[i].name);

                tcase_set_timeout(tc, 120);
                tcase_add_checked_fixture(tc, NULL, teardown);
                _tcase_add_test(tc, cases[i].test, 0, 0, 0, 1);
                suite_add_tcase(s, tc);
        }
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        kill_leftover();
        po_avro_destroy(avro);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
