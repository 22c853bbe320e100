/* promo-publish: sends raw channel orders to Kafka for the demo, tests and
 * benchmarks: the channel samples, the malformed examples, or generated
 * orders (po/channel_gen.h), each with the `channel` and `account` headers
 * intake-normalizer reads. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "po/channel.h"
#include "po/channel_gen.h"
#include "po/config.h"

#define EXIT_FAILED 1
#define EXIT_USAGE 2
#define MAX_LINE (1u << 20)
#define MAX_SAMPLE (4u << 20)
#define NCH 5 /* the four channels, and "none" */

static const char usage_text[] =
    "usage:\n"
    "  promo-publish samples [--dir DIR] [--account A] [--topic T]\n"
    "  promo-publish malformed [--file F] [--channel C] [--account A] [--topic T]\n"
    "  promo-publish generate --channel C|all --count N [--seed S] [--rate PER_SECOND]\n"
    "                [--codes CODE,...] [--run-id ID] [--account A] [--topic T]\n"
    "common options: [--brokers HOST:PORT,...] [--timeout SECONDS] [--quiet]\n"
    "\n"
    "Sends to --topic (default orders.raw) with the headers channel=<channel> and\n"
    "account=<account>, through an idempotent producer; waits for every delivery\n"
    "and prints the count per channel. Exit status 0 when everything was\n"
    "delivered, 1 when something was not, 2 for bad options.\n"
    "\n"
    "samples    one message per sample file of DIR (default: tests/data/channels of\n"
    "           $PROMO_ROOT, else of the source tree this was built from):\n"
    "             web-shopify-order.json -> web      marketplace-order.json -> "
    "marketplace\n"
    "             pos-transaction.txt    -> pos      mobile-order.json      -> mobile\n"
    "           key: the order's external id; account (unless --account): the\n"
    "           marketplace id for marketplace, the store number for pos, else\n"
    "           \"default\".\n"
    "malformed  one message per line of F (default DIR/malformed-examples.txt),\n"
    "           except empty lines and lines starting with '#'; no key, account\n"
    "           \"default\". The channel is the one the line is shaped for\n"
    "           (--channel C forces one):\n"
    "             JSON with \"AmazonOrderId\" or \"OrderItems\"            -> "
    "marketplace\n"
    "             JSON with \"schema\": \"app.order...\", \"cart\" or \"order_ref\" -> "
    "mobile\n"
    "             any other line starting with '{' or '[' (webhook JSON)  -> web\n"
    "             a line starting with a POS record, <LETTER>|...       -> pos\n"
    "             anything else: sent without a channel header (intake's\n"
    "             MISSING_CHANNEL)\n"
    "generate   N valid orders in each channel's real shape (all: round robin\n"
    "           over web, marketplace, pos, mobile; N in total), deterministic for\n"
    "           a seed (default 1) and run id. External ids include the run id\n"
    "           (default r<unix time>-<pid>, printed), so repeated runs never meet\n"
    "           intake's duplicate check; --codes adds codes from the list to about\n"
    "           half the orders; --rate paces the sending (default: as fast as\n"
    "           possible).\n";

typedef struct pub {
        rd_kafka_t *rk;
        const char *topic;
        int quiet;
        size_t queued[NCH];          /* queued for delivery */
        size_t refused[NCH];         /* could not even be queued */
        size_t ok[NCH], failed[NCH]; /* delivery reports */
} pub_t;

static const char *const ch_names[NCH] = {"web", "marketplace", "pos", "mobile",
                                          "(none)"};

static int ch_index(const char *channel)
{
        int i;

        for (i = 0; channel && i < NCH - 1; i++)
                if (strcmp(channel, ch_names[i]) == 0)
                        return i;
        return NCH - 1;
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
        va_list ap;

        fprintf(stderr, "promo-publish: ");
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fprintf(stderr, "\n(promo-publish --help for the usage)\n");
        return EXIT_USAGE;
}

static long long mono_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
        pub_t *p = opaque;
        int ch = (int)(intptr_t)m->_private;

        (void)rk;
        if (ch < 0 || ch >= NCH)
                ch = NCH - 1;
        if (m->err) {
                p->failed[ch]++;
                fprintf(stderr, "promo-publish: delivery to %s failed: %s\n", p->topic,
                        rd_kafka_err2str(m->err));
        } else {
                p->ok[ch]++;
        }
}

static int pub_open(pub_t *p, const char *brokers, const char *topic)
{
        rd_kafka_conf_t *c = rd_kafka_conf_new();
        char err[512];

        p->topic = topic;
        if (rd_kafka_conf_set(c, "bootstrap.servers", brokers, err, sizeof(err)) ||
            rd_kafka_conf_set(c, "client.id", "promo-publish", err, sizeof(err)) ||
            rd_kafka_conf_set(c, "enable.idempotence", "true", err, sizeof(err)) ||
            rd_kafka_conf_set(c, "linger.ms", "5", err, sizeof(err)) ||
            rd_kafka_conf_set(c, "message.timeout.ms", "60000", err, sizeof(err))) {
                fprintf(stderr, "promo-publish: %s\n", err);
                rd_kafka_conf_destroy(c);
                return -1;
        }
        rd_kafka_conf_set_dr_msg_cb(c, on_delivery);
        rd_kafka_conf_set_opaque(c, p);
        p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
        if (!p->rk) {
                fprintf(stderr, "promo-publish: %s\n", err);
                rd_kafka_conf_destroy(c);
                return -1;
        }
        return 0;
}

/* Queues one message. channel NULL: no channel header. */
static int pub_send(pub_t *p, const char *channel, const char *account, const char *key,
                    const void *value, size_t len)
{
        rd_kafka_headers_t *h = rd_kafka_headers_new(2);
        int ch = ch_index(channel);
        rd_kafka_resp_err_t err;

        if (channel)
                rd_kafka_header_add(h, "channel", -1, channel, -1);
        rd_kafka_header_add(h, "account", -1, account, -1);
        do {
                err = rd_kafka_producev(
                    p->rk, RD_KAFKA_V_TOPIC(p->topic),
                    RD_KAFKA_V_KEY((void *)key, key ? strlen(key) : 0),
                    RD_KAFKA_V_VALUE((void *)value, len),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(h),
                    RD_KAFKA_V_OPAQUE((void *)(intptr_t)ch), RD_KAFKA_V_END);
                if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                        rd_kafka_poll(p->rk, 100);
        } while (err == RD_KAFKA_RESP_ERR__QUEUE_FULL);
        if (err) {
                rd_kafka_headers_destroy(h); /* not taken over on failure */
                fprintf(stderr, "promo-publish: cannot queue a message for %s: %s\n",
                        p->topic, rd_kafka_err2str(err));
                p->refused[ch]++;
                return -1;
        }
        p->queued[ch]++;
        rd_kafka_poll(p->rk, 0);
        return 0;
}

/* Waits for every delivery, prints the counts. Returns the exit status. */
static int pub_close(pub_t *p, int timeout_ms)
{
        size_t total_ok = 0, total = 0;
        int i, first = 1;

        if (!p->rk)
                return EXIT_FAILED;
        if (rd_kafka_flush(p->rk, timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR)
                fprintf(stderr, "promo-publish: %d messages not confirmed within %d ms\n",
                        rd_kafka_outq_len(p->rk), timeout_ms);
        rd_kafka_destroy(p->rk);
        p->rk = NULL;
        for (i = 0; i < NCH; i++) {
                total_ok += p->ok[i];
                total += p->queued[i] + p->refused[i];
        }
        printf("delivered %zu of %zu to %s:", total_ok, total, p->topic);
        for (i = 0; i < NCH; i++) {
                size_t n = p->queued[i] + p->refused[i];

                if (!n)
                        continue;
                printf("%s %s %zu", first ? "" : ",", ch_names[i], p->ok[i]);
                if (p->ok[i] != n)
                        printf(" of %zu", n);
                first = 0;
        }
        printf("\n");
        if (total_ok != total)
                fprintf(stderr, "promo-publish: %zu message%s not delivered\n",
                        total - total_ok, total - total_ok == 1 ? "" : "s");
        return total_ok == total ? 0 : EXIT_FAILED;
}

/* Reads path whole, up to max bytes. */
static char *slurp(const char *path, size_t max, size_t *len)
{
        FILE *f = fopen(path, "rb");
        char *buf;
        size_t n;

        if (!f) {
                fprintf(stderr, "promo-publish: cannot open %s: %s\n", path,
                        strerror(errno));
                return NULL;
        }
        buf = malloc(max + 1);
        if (!buf) {
                fclose(f);
                fprintf(stderr, "promo-publish: out of memory\n");
                return NULL;
        }
        n = fread(buf, 1, max + 1, f);
        if (ferror(f) || n > max) {
                fprintf(stderr, "promo-publish: %s: %s\n", path,
                        n > max ? "too large" : "read error");
                fclose(f);
                free(buf);
                return NULL;
        }
        fclose(f);
        buf[n] = '\0';
        *len = n;
        return buf;
}

typedef struct opts {
        const char *cmd, *dir, *file, *account, *topic, *brokers, *channel, *run_id;
        char *codes_buf;
        const char *codes[PO_GEN_MAX_CODES];
        size_t code_count;
        long count;
        uint64_t seed;
        long rate;
        int timeout_ms;
        int quiet;
} opts_t;

static int parse_long(const char *s, long min, long max, long *out)
{
        char *end = NULL;
        long v;

        if (!s || !*s)
                return -1;
        errno = 0;
        v = strtol(s, &end, 10);
        if (errno || *end || v < min || v > max)
                return -1;
        *out = v;
        return 0;
}

static int parse_codes(opts_t *o, const char *list)
{
        char *save = NULL, *tok;

        free(o->codes_buf);
        o->codes_buf = strdup(list);
        o->code_count = 0;
        if (!o->codes_buf)
                return usage_error("out of memory");
        for (tok = strtok_r(o->codes_buf, ",", &save); tok;
             tok = strtok_r(NULL, ",", &save)) {
                if (o->code_count == PO_GEN_MAX_CODES)
                        return usage_error("--codes: at most %d codes", PO_GEN_MAX_CODES);
                o->codes[o->code_count++] = tok;
        }
        if (!o->code_count)
                return usage_error("--codes needs at least one code");
        return 0;
}

/* The samples directory: $PROMO_ROOT/tests/data/channels, else the source
 * tree's. */
static void default_dir(char *buf, size_t size)
{
        const char *root = getenv("PROMO_ROOT");

#ifdef PROMO_SOURCE_DIR
        if (!root || !*root)
                root = PROMO_SOURCE_DIR;
#endif
        snprintf(buf, size, "%s/tests/data/channels", root && *root ? root : ".");
}

static int parse_args(int argc, char **argv, opts_t *o)
{
        int i;
        long v;

        memset(o, 0, sizeof(*o));
        o->topic = "orders.raw";
        o->seed = 1;
        o->timeout_ms = 60000;
        if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
                fputs(usage_text, argc < 2 ? stderr : stdout);
                return argc < 2 ? EXIT_USAGE : -1;
        }
        o->cmd = argv[1];
        if (strcmp(o->cmd, "samples") != 0 && strcmp(o->cmd, "malformed") != 0 &&
            strcmp(o->cmd, "generate") != 0)
                return usage_error(
                    "unknown command \"%s\" (samples, malformed or generate)", o->cmd);
        for (i = 2; i < argc; i++) {
                const char *a = argv[i], *next = i + 1 < argc ? argv[i + 1] : NULL;
                int gen = strcmp(o->cmd, "generate") == 0;
                int r = 0;

                if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
                        fputs(usage_text, stdout);
                        return -1;
                }
                if (strcmp(a, "--quiet") == 0) {
                        o->quiet = 1;
                        continue;
                }
                if (!next)
                        return usage_error(
                            "unexpected argument \"%s\" (or it needs a value)", a);
                if (strcmp(a, "--brokers") == 0) {
                        o->brokers = next;
                } else if (strcmp(a, "--topic") == 0) {
                        o->topic = next;
                } else if (strcmp(a, "--account") == 0) {
                        o->account = next;
                } else if (strcmp(a, "--timeout") == 0) {
                        if (parse_long(next, 1, 3600, &v))
                                return usage_error("--timeout must be 1..3600 seconds");
                        o->timeout_ms = (int)v * 1000;
                } else if (strcmp(a, "--dir") == 0 && strcmp(o->cmd, "samples") == 0) {
                        o->dir = next;
                } else if (strcmp(a, "--file") == 0 && strcmp(o->cmd, "malformed") == 0) {
                        o->file = next;
                } else if (strcmp(a, "--channel") == 0 && strcmp(o->cmd, "samples")) {
                        o->channel = next;
                } else if (strcmp(a, "--count") == 0 && gen) {
                        if (parse_long(next, 1, 10000000, &o->count))
                                return usage_error("--count must be 1..10000000");
                } else if (strcmp(a, "--seed") == 0 && gen) {
                        char *end = NULL;

                        errno = 0;
                        o->seed = strtoull(next, &end, 10);
                        if (errno || *end || !*next || *next == '-')
                                return usage_error("--seed must be an unsigned integer");
                } else if (strcmp(a, "--rate") == 0 && gen) {
                        if (parse_long(next, 1, 10000000, &o->rate))
                                return usage_error(
                                    "--rate must be 1..10000000 per second");
                } else if (strcmp(a, "--codes") == 0 && gen) {
                        r = parse_codes(o, next);
                } else if (strcmp(a, "--run-id") == 0 && gen) {
                        o->run_id = next;
                } else {
                        return usage_error("unexpected argument \"%s\" for %s", a,
                                           o->cmd);
                }
                if (r)
                        return r;
                i++;
        }
        if (!*o->topic)
                return usage_error("--topic needs a name");
        if (o->account && (!*o->account || strlen(o->account) > 63))
                return usage_error("--account must be 1..63 characters");
        if (o->channel && strcmp(o->channel, "all") != 0 && !po_channel_find(o->channel))
                return usage_error(
                    "unknown channel \"%s\" (web, marketplace, pos, mobile%s)",
                    o->channel, strcmp(o->cmd, "generate") == 0 ? " or all" : "");
        if (o->channel && strcmp(o->channel, "all") == 0 && strcmp(o->cmd, "generate"))
                return usage_error("--channel all is for generate");
        if (strcmp(o->cmd, "generate") == 0 && (!o->channel || !o->count))
                return usage_error("generate needs --channel and --count");
        if (!o->brokers) {
                static po_config_t cfg;
                char err[256];

                if (po_config_load(&cfg, NULL, 0, err, sizeof(err))) {
                        fprintf(stderr, "promo-publish: %s\n", err);
                        return EXIT_USAGE;
                }
                o->brokers = cfg.kafka_brokers;
        }
        return 0;
}

/* ---- samples ---- */

static const struct {
        const char *file;
        const char *channel;
} sample_files[] = {
    {"web-shopify-order.json", "web"},
    {"marketplace-order.json", "marketplace"},
    {"pos-transaction.txt", "pos"},
    {"mobile-order.json", "mobile"},
};

/* The sample's external id (the key) and its default account, by running
 * the channel's own adapter over it. */
static void sample_meta(const char *channel, const char *payload, size_t len, char *key,
                        size_t key_size, char *account, size_t account_size)
{
        static const po_channel_profile_t lenient = {.default_category = "uncategorized"};
        po_channel_ctx_t ctx = {.channel = channel, .account = "", .profile = &lenient};
        po_channel_reject_t rej;
        po_order_t o;
        size_t i;

        key[0] = '\0';
        snprintf(account, account_size, "default");
        po_order_init(&o, 8u << 20);
        if (po_channel_normalize(&ctx, payload, len, &o, &rej)) {
                fprintf(
                    stderr,
                    "promo-publish: warning: the %s sample does not parse (%s %s: %s); "
                    "sent without a key\n",
                    channel, rej.reason, rej.field, rej.message);
                po_order_release(&o);
                return;
        }
        snprintf(key, key_size, "%s", o.external_id);
        for (i = 0; i < o.attr_count; i++)
                if ((strcmp(channel, "marketplace") == 0 &&
                     strcmp(o.attrs[i].key, "marketplace_id") == 0) ||
                    (strcmp(channel, "pos") == 0 && strcmp(o.attrs[i].key, "store") == 0))
                        snprintf(account, account_size, "%s", o.attrs[i].value);
        po_order_release(&o);
}

static int cmd_samples(const opts_t *o, pub_t *p)
{
        char dir[1024], path[1200], key[256], account[128];
        size_t i, len;
        int bad = 0;

        if (o->dir)
                snprintf(dir, sizeof(dir), "%s", o->dir);
        else
                default_dir(dir, sizeof(dir));
        for (i = 0; i < sizeof(sample_files) / sizeof(sample_files[0]); i++) {
                const char *ch = sample_files[i].channel;
                char *payload;

                snprintf(path, sizeof(path), "%s/%s", dir, sample_files[i].file);
                payload = slurp(path, MAX_SAMPLE, &len);
                if (!payload) {
                        bad = 1;
                        continue;
                }
                sample_meta(ch, payload, len, key, sizeof(key), account, sizeof(account));
                if (o->account)
                        snprintf(account, sizeof(account), "%s", o->account);
                if (!o->quiet)
                        printf("%-12s %-24s account=%s key=%s %zu bytes\n", ch,
                               sample_files[i].file, account, key[0] ? key : "(none)",
                               len);
                if (pub_send(p, ch, account, key[0] ? key : NULL, payload, len))
                        bad = 1;
                free(payload);
        }
        return bad;
}

/* ---- malformed ---- */

static int has(const char *s, size_t len, const char *needle)
{
        size_t n = strlen(needle), i;

        for (i = 0; i + n <= len; i++)
                if (memcmp(s + i, needle, n) == 0)
                        return 1;
        return 0;
}

/* The channel a line is shaped for (see the usage), or NULL. */
static const char *guess_channel(const char *s, size_t len)
{
        while (len && (*s == ' ' || *s == '\t')) {
                s++;
                len--;
        }
        if (len && (*s == '{' || *s == '[')) {
                if (has(s, len, "\"AmazonOrderId\"") || has(s, len, "\"OrderItems\""))
                        return "marketplace";
                if (has(s, len, "\"app.order.") || has(s, len, "\"cart\"") ||
                    has(s, len, "\"order_ref\""))
                        return "mobile";
                return "web";
        }
        if (len >= 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] == '|')
                return "pos";
        return NULL;
}

static int cmd_malformed(const opts_t *o, pub_t *p)
{
        char path[1200], dir[1024];
        char *buf, *line;
        size_t len, i = 0, lineno = 0;
        int bad = 0;

        if (o->file) {
                snprintf(path, sizeof(path), "%s", o->file);
        } else {
                default_dir(dir, sizeof(dir));
                snprintf(path, sizeof(path), "%s/malformed-examples.txt", dir);
        }
        buf = slurp(path, MAX_SAMPLE, &len);
        if (!buf)
                return 1;
        while (i < len) {
                size_t end = i, n;
                const char *ch;

                while (end < len && buf[end] != '\n')
                        end++;
                line = buf + i;
                n = end - i;
                if (n && line[n - 1] == '\r')
                        n--;
                lineno++;
                i = end + 1;
                if (n == 0 || line[0] == '#')
                        continue;
                if (n > MAX_LINE) {
                        fprintf(stderr,
                                "promo-publish: %s:%zu: longer than 1 MiB, skipped\n",
                                path, lineno);
                        bad = 1;
                        continue;
                }
                ch = o->channel ? o->channel : guess_channel(line, n);
                if (!o->quiet)
                        printf("line %-3zu -> %-12s %.*s%s\n", lineno,
                               ch ? ch : "(no channel)", (int)(n > 60 ? 60 : n), line,
                               n > 60 ? "..." : "");
                if (pub_send(p, ch, o->account ? o->account : "default", NULL, line, n))
                        bad = 1;
        }
        free(buf);
        return bad;
}

/* ---- generate ---- */

static int cmd_generate(const opts_t *o, pub_t *p)
{
        char run_id[PO_GEN_MAX_RUN_ID + 1], err[256];
        size_t nch;
        const char *const *all = po_gen_channels(&nch);
        po_gen_conf_t conf = {0};
        po_gen_t g;
        po_dynbuf_t buf;
        long long start = mono_ns();
        long i;
        int bad = 0;

        if (o->run_id)
                snprintf(run_id, sizeof(run_id), "%s", o->run_id);
        else
                snprintf(run_id, sizeof(run_id), "r%lld-%ld", (long long)time(NULL),
                         (long)getpid());
        conf.seed = o->seed;
        conf.run_id = o->run_id ? o->run_id : run_id;
        conf.base_time_ms = (int64_t)time(NULL) * 1000;
        conf.codes = o->codes;
        conf.code_count = o->code_count;
        conf.account = o->account;
        if (po_gen_init(&g, &conf, err, sizeof(err))) {
                fprintf(stderr, "promo-publish: %s\n", err);
                return -1;
        }
        if (!o->quiet)
                printf("run id %s, seed %" PRIu64 "\n", conf.run_id, o->seed);
        po_dynbuf_init(&buf, 16u << 20);
        for (i = 0; i < o->count; i++) {
                const char *ch =
                    strcmp(o->channel, "all") == 0 ? all[(size_t)i % nch] : o->channel;
                po_gen_order_t meta;

                if (o->rate) {
                        long long due = start + (long long)i * 1000000000LL / o->rate;
                        long long now;

                        while ((now = mono_ns()) < due)
                                rd_kafka_poll(p->rk, (int)((due - now) / 1000000 + 1));
                }
                po_dynbuf_reset(&buf);
                if (po_gen_next(&g, ch, &buf, &meta)) {
                        fprintf(stderr, "promo-publish: generating a %s order failed\n",
                                ch);
                        bad = 1;
                        break;
                }
                if (pub_send(p, ch, meta.account, meta.external_id, buf.data, buf.len))
                        bad = 1;
        }
        po_dynbuf_release(&buf);
        return bad;
}

int main(int argc, char **argv)
{
        opts_t o;
        pub_t p;
        int status = parse_args(argc, argv, &o), bad = 0;

        memset(&p, 0, sizeof(p));
        if (status) {
                free(o.codes_buf);
                return status < 0 ? 0 : status;
        }
        if (pub_open(&p, o.brokers, o.topic)) {
                free(o.codes_buf);
                return EXIT_FAILED;
        }
        p.quiet = o.quiet;
        if (strcmp(o.cmd, "samples") == 0)
                bad = cmd_samples(&o, &p);
        else if (strcmp(o.cmd, "malformed") == 0)
                bad = cmd_malformed(&o, &p);
        else
                bad = cmd_generate(&o, &p);
        free(o.codes_buf);
        if (bad < 0) {
                rd_kafka_destroy(p.rk);
                return EXIT_USAGE;
        }
        status = pub_close(&p, o.timeout_ms);
        return bad ? EXIT_FAILED : status;
}
