/* promo-dlq: lists a stage's dead-letter topic by priority, and replays
 * chosen dead letters to where they came from (po/dlq.h does the work). */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "po/config.h"
#include "po/dlq.h"

#define ERROR_WIDTH 100 /* characters of the error text a listing shows */
#define MAX_AT 1024
#define MAX_VALUE_FILE (16u << 20)
#define EXIT_FAILED 1
#define EXIT_USAGE 2

static const char usage_text[] =
    "usage:\n"
    "  promo-dlq list <dlq-topic> [--limit N] [--reason R] [--wide]\n"
    "  promo-dlq replay <dlq-topic> (--at P:O [--at P:O ...] | --reason R | --all)\n"
    "                   [--value-file F] [--to TOPIC] [--dry-run]\n"
    "common options: [--brokers HOST:PORT,...] [--timeout SECONDS]\n"
    "\n"
    "list     reads the whole topic (read_committed, up to the end it had at start,\n"
    "         committing nothing) and prints one line per dead letter, highest\n"
    "         priority first, equal priorities oldest first: position, priority,\n"
    "         stage, reason, attempts, first and last failure (UTC), where it came\n"
    "         from, and the error (cut at 100 characters unless --wide).\n"
    "         Records that are not DeadLetters are listed last as UNDECODABLE.\n"
    "         --limit N prints the first N; --reason R only that reason code.\n"
    "replay   publishes the chosen dead letters' original key, value and headers\n"
    "         again, in the order of the dead-letter topic, to their source topic\n"
    "         and partition (--to TOPIC: that topic instead, partitioned by key).\n"
    "         The runner's promo-* headers are dropped, so the attempts start\n"
    "         again, and promo-replayed-from=<dlq-topic>:<partition>:<offset> is\n"
    "         added. Choose with exactly one of:\n"
    "           --at P:O     the dead letter at partition P, offset O (repeat the\n"
    "                        option or separate positions with commas)\n"
    "           --reason R   every dead letter with reason code R\n"
    "           --all        every dead letter\n"
    "         --value-file F sends the bytes of F instead of the original value\n"
    "         (an operator's fixed payload); only with a single --at.\n"
    "         --dry-run checks everything (positions, topics, partitions) and\n"
    "         prints what would be sent, sending nothing.\n"
    "         Everything is checked before anything is sent: an unknown position,\n"
    "         an undecodable record or a missing topic sends nothing. Replaying\n"
    "         the same dead letter twice publishes it twice (the stages' dedupe\n"
    "         drops the second order).\n"
    "\n"
    "Brokers come from PROMO_KAFKA_BROKERS (default 127.0.0.1:59092) unless\n"
    "--brokers is given. Exit status: 0 done, 1 something failed (the broker,\n"
    "a delivery, an incomplete read, nothing matched --reason), 2 a refused\n"
    "request (bad options, unknown positions, undecodable records): nothing sent.\n";

typedef struct opts {
        const char *cmd;
        const char *topic;
        const char *brokers;
        const char *reason;
        const char *value_file;
        const char *to;
        po_dlq_pos_t at[MAX_AT];
        size_t at_count;
        long limit; /* -1 = all */
        int all, wide, dry_run;
        int timeout_ms;
} opts_t;

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
        va_list ap;

        fprintf(stderr, "promo-dlq: ");
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fprintf(stderr, "\n(promo-dlq --help for the usage)\n");
        return EXIT_USAGE;
}

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

static int add_positions(opts_t *o, const char *list)
{
        char buf[4096], *save = NULL, *tok;
        size_t i;

        if (strlen(list) >= sizeof(buf))
                return usage_error("--at list too long");
        snprintf(buf, sizeof(buf), "%s", list);
        for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                po_dlq_pos_t p;

                if (po_dlq_parse_pos(tok, &p))
                        return usage_error(
                            "--at \"%s\": expected PARTITION:OFFSET, e.g. 0:17", tok);
                for (i = 0; i < o->at_count; i++)
                        if (o->at[i].partition == p.partition &&
                            o->at[i].offset == p.offset)
                                break;
                if (i < o->at_count)
                        continue; /* the same position twice is one replay */
                if (o->at_count == MAX_AT)
                        return usage_error("more than 1024 --at positions");
                o->at[o->at_count++] = p;
        }
        return 0;
}

/* Parses argv into o. Returns 0, or an exit status. */
static int parse_args(int argc, char **argv, opts_t *o)
{
        int i;
        long v;

        memset(o, 0, sizeof(*o));
        o->limit = -1;
        o->timeout_ms = PO_DLQ_TIMEOUT_MS;
        if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
                fputs(usage_text, stdout);
                return -1;
        }
        if (argc < 3 || argv[2][0] == '-')
                return usage_error("expected a command and a dead-letter topic");
        o->cmd = argv[1];
        o->topic = argv[2];
        if (strcmp(o->cmd, "list") != 0 && strcmp(o->cmd, "replay") != 0)
                return usage_error("unknown command \"%s\" (list or replay)", o->cmd);
        for (i = 3; i < argc; i++) {
                const char *a = argv[i];
                const char *next = i + 1 < argc ? argv[i + 1] : NULL;
                int takes = strcmp(a, "--limit") == 0 || strcmp(a, "--reason") == 0 ||
                            strcmp(a, "--at") == 0 || strcmp(a, "--value-file") == 0 ||
                            strcmp(a, "--to") == 0 || strcmp(a, "--brokers") == 0 ||
                            strcmp(a, "--timeout") == 0;

                if (takes && !next)
                        return usage_error("%s needs a value", a);
                if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
                        fputs(usage_text, stdout);
                        return -1;
                } else if (strcmp(a, "--brokers") == 0) {
                        o->brokers = next;
                } else if (strcmp(a, "--timeout") == 0) {
                        if (parse_long(next, 1, 3600, &v))
                                return usage_error(
                                    "--timeout must be 1..3600 seconds, got "
                                    "\"%s\"",
                                    next);
                        o->timeout_ms = (int)v * 1000;
                } else if (strcmp(a, "--reason") == 0) {
                        if (o->reason)
                                return usage_error("--reason given twice");
                        o->reason = next;
                } else if (strcmp(a, "--limit") == 0 && strcmp(o->cmd, "list") == 0) {
                        if (parse_long(next, 0, 100000000, &v))
                                return usage_error("--limit must be 0..100000000, got "
                                                   "\"%s\"",
                                                   next);
                        o->limit = v;
                } else if (strcmp(a, "--wide") == 0 && strcmp(o->cmd, "list") == 0) {
                        o->wide = 1;
                } else if (strcmp(a, "--at") == 0 && strcmp(o->cmd, "replay") == 0) {
                        int r = add_positions(o, next);

                        if (r)
                                return r;
                } else if (strcmp(a, "--all") == 0 && strcmp(o->cmd, "replay") == 0) {
                        o->all = 1;
                } else if (strcmp(a, "--value-file") == 0 &&
                           strcmp(o->cmd, "replay") == 0) {
                        o->value_file = next;
                } else if (strcmp(a, "--to") == 0 && strcmp(o->cmd, "replay") == 0) {
                        o->to = next;
                } else if (strcmp(a, "--dry-run") == 0 && strcmp(o->cmd, "replay") == 0) {
                        o->dry_run = 1;
                } else {
                        return usage_error("unexpected argument \"%s\" here", a);
                }
                if (takes)
                        i++;
        }
        if (!po_dlq_topic_valid(o->topic))
                return usage_error("\"%s\" is not a valid topic name", o->topic);
        if (o->reason && !*o->reason)
                return usage_error("--reason needs a reason code");
        if (strcmp(o->cmd, "replay") == 0) {
                int ways = (o->at_count > 0) + (o->reason != NULL) + o->all;

                if (ways != 1)
                        return usage_error("replay: choose the dead letters with exactly "
                                           "one of --at, --reason or --all%s",
                                           ways ? " (not several)" : "");
                if (o->value_file && o->at_count != 1)
                        return usage_error("--value-file replaces the value of one dead "
                                           "letter: use it with a single --at P:O");
                if (o->to && !po_dlq_topic_valid(o->to))
                        return usage_error("--to \"%s\" is not a valid topic name",
                                           o->to);
                if (o->to && strcmp(o->to, o->topic) == 0)
                        return usage_error("--to %s is the dead-letter topic itself",
                                           o->to);
        }
        if (!o->brokers) {
                static po_config_t cfg;
                char err[256];

                if (po_config_load(&cfg, NULL, 0, err, sizeof(err))) {
                        fprintf(stderr, "promo-dlq: %s\n", err);
                        return EXIT_USAGE;
                }
                o->brokers = cfg.kafka_brokers;
        }
        return 0;
}

/* Appends s to out (size bytes) for a terminal: control characters and
 * invalid UTF-8 become '?', newlines and tabs spaces; at most max_chars
 * characters, then "...". Returns out. */
static char *clean(const char *s, size_t max_chars, char *out, size_t size)
{
        const unsigned char *p = (const unsigned char *)(s ? s : "");
        size_t o = 0, chars = 0;

        while (*p && o + 8 < size) {
                size_t n = 1, k;

                if (chars == max_chars) {
                        memcpy(out + o, "...", 3);
                        o += 3;
                        break;
                }
                if (*p >= 0xc2 && *p <= 0xdf)
                        n = 2;
                else if (*p >= 0xe0 && *p <= 0xef)
                        n = 3;
                else if (*p >= 0xf0 && *p <= 0xf4)
                        n = 4;
                for (k = 1; k < n; k++)
                        if ((p[k] & 0xc0) != 0x80)
                                break;
                if (*p >= 0x80 && (n == 1 || k < n)) {
                        out[o++] = '?';
                        p++;
                } else if (*p == '\n' || *p == '\r' || *p == '\t') {
                        out[o++] = ' ';
                        p++;
                } else if (*p < 0x20 || *p == 0x7f) {
                        out[o++] = '?';
                        p++;
                } else {
                        memcpy(out + o, p, n);
                        o += n;
                        p += n;
                }
                chars++;
        }
        out[o] = '\0';
        return out;
}

static void fmt_ms(int64_t ms, char *buf, size_t size)
{
        time_t t;
        struct tm tm;

        /* Years 1970..9999 only; anything else is shown as the number. */
        if (ms < 0 || ms > 253402300799999LL) {
                snprintf(buf, size, "%" PRId64, ms);
                return;
        }
        t = (time_t)(ms / 1000);
        if (!gmtime_r(&t, &tm)) {
                snprintf(buf, size, "%" PRId64, ms);
                return;
        }
        snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 (int)(ms % 1000));
}

static void print_entry(const po_dlq_entry_t *e, int wide)
{
        char stage[256], reason[256], source[400], error[4096], first[80], last[80];
        const po_deadletter_t *dl = &e->dl;

        if (!e->decoded) {
                /* What the runner's Kafka headers still say, if anything. */
                printf("%" PRId32 ":%" PRId64 "  -  -  UNDECODABLE  -  -  -  %s  %s",
                       e->pos.partition, e->pos.offset,
                       clean(dl->source_topic ? dl->source_topic : "?", 64, source,
                             sizeof(source)),
                       clean(e->decode_error, wide ? 1000 : ERROR_WIDTH, error,
                             sizeof(error)));
                if (dl->reason_code)
                        printf(" (headers: reason %s, priority %" PRId64 ")",
                               clean(dl->reason_code, 48, reason, sizeof(reason)),
                               dl->priority);
                printf("\n");
                return;
        }
        fmt_ms(dl->first_failure_ms, first, sizeof(first));
        fmt_ms(dl->last_failure_ms, last, sizeof(last));
        clean(dl->source_topic, 64, source, sizeof(source) - 48);
        snprintf(source + strlen(source), 48, "[%" PRId32 "]@%" PRId64, dl->partition,
                 dl->offset);
        printf(
            "%" PRId32 ":%" PRId64 "  %" PRId64 "  %s  %s  %" PRId32 "  %s  %s  %s  %s\n",
            e->pos.partition, e->pos.offset, dl->priority,
            clean(dl->stage, 48, stage, sizeof(stage)),
            clean(dl->reason_code, 48, reason, sizeof(reason)), dl->attempts, first, last,
            source, clean(dl->error, wide ? 1000 : ERROR_WIDTH, error, sizeof(error)));
}

static int read_snapshot(po_avro_t *avro, const opts_t *o, const po_dlq_select_t *sel,
                         int keep_payload, po_dlq_snapshot_t *snap)
{
        po_dlq_read_opts_t ro = {
            .brokers = o->brokers,
            .topic = o->topic,
            .select = sel,
            .keep_payload = keep_payload,
            .timeout_ms = o->timeout_ms,
        };
        char err[512];
        po_err_t rc = po_dlq_read(avro, &ro, snap, err, sizeof(err));

        if (rc)
                fprintf(stderr, "promo-dlq: reading %s: %s\n", o->topic, err);
        return rc ? EXIT_FAILED : 0;
}

static int cmd_list(po_avro_t *avro, const opts_t *o)
{
        po_dlq_select_t sel = {.all = o->reason == NULL, .list_undecodable = 1};
        po_dlq_snapshot_t snap;
        size_t i, shown;
        int status;

        sel.reason = o->reason;
        po_dlq_snapshot_init(&snap);
        status = read_snapshot(avro, o, &sel, 0, &snap);
        if (status && snap.scanned == 0) {
                po_dlq_snapshot_release(&snap);
                return status;
        }
        po_dlq_sort_by_priority(&snap);
        shown = o->limit >= 0 && (size_t)o->limit < snap.count ? (size_t)o->limit
                                                               : snap.count;
        printf(
            "# %s: %zu records in %d partitions, %zu undecodable%s%s; highest priority "
            "first\n",
            o->topic, snap.scanned, snap.partition_count, snap.undecodable,
            o->reason ? "; reason " : "", o->reason ? o->reason : "");
        printf(
            "# POSITION  PRIORITY  STAGE  REASON  ATTEMPTS  FIRST_FAILURE  LAST_FAILURE  "
            "SOURCE  ERROR\n");
        for (i = 0; i < shown; i++)
                print_entry(&snap.entries[i], o->wide);
        printf("# %zu shown of %zu%s\n", shown, snap.count,
               status ? " (INCOMPLETE: the read failed, see above)" : "");
        po_dlq_snapshot_release(&snap);
        return status;
}

/* Reads F whole (at most MAX_VALUE_FILE bytes, not empty). */
static char *slurp(const char *path, size_t *len)
{
        FILE *f = fopen(path, "rb");
        char *buf = NULL;
        size_t n = 0, cap = 0, r;

        if (!f) {
                fprintf(stderr, "promo-dlq: --value-file %s: %s\n", path,
                        strerror(errno));
                return NULL;
        }
        for (;;) {
                if (n == cap) {
                        char *nb;

                        cap = cap ? cap * 2 : 65536;
                        if (cap > MAX_VALUE_FILE + 1)
                                cap = MAX_VALUE_FILE + 1;
                        nb = realloc(buf, cap);
                        if (!nb)
                                goto fail;
                        buf = nb;
                }
                r = fread(buf + n, 1, cap - n, f);
                n += r;
                if (r == 0 || n > MAX_VALUE_FILE)
                        break;
        }
        if (ferror(f)) {
                fprintf(stderr, "promo-dlq: --value-file %s: read error\n", path);
                goto fail;
        }
        if (n > MAX_VALUE_FILE || n == 0) {
                fprintf(stderr, "promo-dlq: --value-file %s is %s\n", path,
                        n ? "larger than 16 MiB" : "empty");
                goto fail;
        }
        fclose(f);
        *len = n;
        return buf;
fail:
        free(buf);
        fclose(f);
        return NULL;
}

static void describe(const po_dlq_replay_item_t *it, const char *dlq, const char *verb)
{
        const po_deadletter_t *dl = &it->entry->dl;
        char key[200], topic[300], reason[100];
        size_t len = it->value ? it->value_len : dl->original_value_len;

        clean(it->to ? it->to : dl->source_topic, 64, topic, sizeof(topic));
        printf("%s %s:%" PRId32 ":%" PRId64 " -> %s", verb, dlq, it->entry->pos.partition,
               it->entry->pos.offset, topic);
        if (it->partition >= 0)
                printf("[%" PRId32 "]", it->partition);
        else
                printf("[by key]");
        if (it->offset >= 0)
                printf("@%" PRId64, it->offset);
        if (dl->has_original_key) {
                /* Keys are bytes; show them as text, cleaned. */
                char *k = malloc(dl->original_key_len + 1);

                if (k) {
                        memcpy(k, dl->original_key, dl->original_key_len);
                        k[dl->original_key_len] = '\0';
                        clean(k, 40, key, sizeof(key));
                        free(k);
                        printf(" key=\"%s\"", key);
                }
        } else {
                printf(" key=none");
        }
        printf(" value=%zu bytes%s, %s\n", len, it->value ? " (from --value-file)" : "",
               clean(dl->reason_code, 48, reason, sizeof(reason)));
}

/* Checks the selection against the snapshot. Returns 0 or an exit status. */
static int check_selection(const opts_t *o, const po_dlq_snapshot_t *snap)
{
        int bad = 0;
        size_t i;

        for (i = 0; i < o->at_count; i++) {
                const po_dlq_entry_t *e = po_dlq_find(snap, o->at[i]);
                int32_t p = o->at[i].partition;

                if (!e && p >= snap->partition_count)
                        fprintf(stderr,
                                "promo-dlq: %s has no partition %" PRId32
                                " (%d partitions)\n",
                                o->topic, p, snap->partition_count);
                else if (!e)
                        fprintf(stderr,
                                "promo-dlq: no record at %s:%" PRId32 ":%" PRId64
                                " (partition %" PRId32 " spans offsets %" PRId64
                                "..%" PRId64 ", transaction markers included)\n",
                                o->topic, p, o->at[i].offset, p, snap->low[p],
                                snap->high[p] - 1);
                else if (!e->decoded)
                        fprintf(stderr,
                                "promo-dlq: %s:%" PRId32 ":%" PRId64
                                " is not a DeadLetter (%s): it cannot be replayed\n",
                                o->topic, p, o->at[i].offset, e->decode_error);
                bad += !e || !e->decoded;
        }
        if (bad)
                fprintf(stderr, "promo-dlq: nothing sent\n");
        return bad ? EXIT_USAGE : 0;
}

static int cmd_replay(po_avro_t *avro, const opts_t *o)
{
        po_dlq_select_t sel = {
            .all = o->all, .reason = o->reason, .at = o->at, .at_count = o->at_count};
        po_dlq_snapshot_t snap;
        po_dlq_replay_item_t *items = NULL;
        char *value = NULL, err[512];
        size_t value_len = 0, i, n = 0, ok = 0;
        int status;
        po_err_t rc;

        po_dlq_snapshot_init(&snap);
        if (o->value_file && !(value = slurp(o->value_file, &value_len)))
                return EXIT_USAGE;
        status = read_snapshot(avro, o, &sel, 1, &snap);
        if (status)
                goto out;
        status = check_selection(o, &snap);
        if (status)
                goto out;
        po_dlq_sort_by_position(&snap);
        if (snap.count == 0) {
                if (o->reason)
                        fprintf(
                            stderr,
                            "promo-dlq: no dead letter in %s has reason %s (promo-dlq "
                            "list %s shows the reasons)\n",
                            o->topic, o->reason, o->topic);
                else
                        printf("nothing to replay: %s holds no dead letters\n", o->topic);
                status = o->reason ? EXIT_FAILED : 0;
                goto out;
        }
        items = calloc(snap.count, sizeof(*items));
        if (!items) {
                fprintf(stderr, "promo-dlq: out of memory\n");
                status = EXIT_FAILED;
                goto out;
        }
        for (i = 0; i < snap.count; i++) {
                if (!snap.entries[i].decoded)
                        continue;
                items[n].entry = &snap.entries[i];
                items[n].to = o->to;
                items[n].value = value;
                items[n].value_len = value_len;
                n++;
        }
        rc =
            po_dlq_replay(o->brokers, o->topic, items, n, o->dry_run ? PO_DLQ_DRY_RUN : 0,
                          o->timeout_ms, err, sizeof(err));
        if (rc == PO_ERR_INVALID_ARG) {
                fprintf(stderr, "promo-dlq: %s\npromo-dlq: nothing sent\n", err);
                status = EXIT_USAGE;
                goto out;
        }
        for (i = 0; i < n; i++) {
                if (o->dry_run) {
                        describe(&items[i], o->topic, "would replay");
                } else if (items[i].err) {
                        describe(&items[i], o->topic, "FAILED");
                        printf("    %s\n", rd_kafka_err2str(items[i].err));
                } else {
                        describe(&items[i], o->topic, "replayed");
                        ok++;
                }
        }
        if (o->dry_run) {
                printf("dry run: %zu dead letter%s would be replayed; nothing sent\n", n,
                       n == 1 ? "" : "s");
                status = 0;
        } else {
                printf("replayed %zu of %zu dead letter%s from %s\n", ok, n,
                       n == 1 ? "" : "s", o->topic);
                if (rc)
                        fprintf(stderr, "promo-dlq: %s\n", err);
                status = rc ? EXIT_FAILED : 0;
        }
out:
        free(items);
        free(value);
        po_dlq_snapshot_release(&snap);
        return status;
}

int main(int argc, char **argv)
{
        opts_t o;
        po_avro_t *avro;
        char err[512];
        int status = parse_args(argc, argv, &o);

        if (status)
                return status < 0 ? 0 : status;
        avro = po_avro_new(err, sizeof(err));
        if (!avro) {
                fprintf(stderr, "promo-dlq: avro: %s\n", err);
                return EXIT_FAILED;
        }
        status = strcmp(o.cmd, "list") == 0 ? cmd_list(avro, &o) : cmd_replay(avro, &o);
        po_avro_destroy(avro);
        return status;
}
