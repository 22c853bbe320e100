/* Generated raw orders in each channel's real shape (see po/channel_gen.h).
 * Only integers: amounts are minor units written out as decimals. */
#include "po/channel_gen.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "po/money.h"

#define GEN_MAX_LINES 12
#define GEN_DEFAULT_BASE_MS 1795521600000LL /* 2026-11-24T12:00:00Z */

static const char *const channels[] = {"web", "marketplace", "pos", "mobile"};

static const char *const categories[] = {"shoes", "shirts",  "books", "toys",
                                         "home",  "grocery", "beauty"};
static const char *const tiers[] = {"silver", "gold", "platinum"};

/* A line as the canonical order will have it, before channel formatting. */
typedef struct gen_line {
        char sku[24];
        const char *category; /* NULL: the channel leaves it out */
        int64_t unit_price;   /* minor units */
        int64_t quantity;
        int64_t tax_ppm;
} gen_line_t;

/* One order's content, shared by every channel's writer. */
typedef struct gen_order {
        uint64_t n; /* sequence number, 1-based */
        int64_t placed_ms;
        char currency[4];
        int exponent;
        gen_line_t lines[GEN_MAX_LINES];
        size_t line_count;
        const char *tier; /* NULL: none */
        unsigned customer;
        const char *codes[2];
        size_t code_count;
} gen_order_t;

const char *const *po_gen_channels(size_t *count)
{
        *count = sizeof(channels) / sizeof(channels[0]);
        return channels;
}

/* splitmix64: small, fast, and the same on every platform. */
static uint64_t next_u64(po_gen_t *g)
{
        uint64_t z = (g->rng += 0x9E3779B97F4A7C15ULL);

        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        return z ^ (z >> 31);
}

/* Uniform enough in lo..hi (inclusive) for test data. */
static int64_t range(po_gen_t *g, int64_t lo, int64_t hi)
{
        return lo + (int64_t)(next_u64(g) % (uint64_t)(hi - lo + 1));
}

static int chance(po_gen_t *g, int percent)
{
        return range(g, 0, 99) < percent;
}

static int charset_ok(const char *s, size_t max, int allow_dot)
{
        size_t i, n = s ? strlen(s) : 0;

        if (n < 1 || n > max)
                return 0;
        for (i = 0; i < n; i++) {
                char c = s[i];

                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      (c >= '0' && c <= '9') || c == '_' || c == '-' ||
                      (allow_dot && c == '.')))
                        return 0;
        }
        return 1;
}

po_err_t po_gen_init(po_gen_t *g, const po_gen_conf_t *conf, char *errstr,
                     size_t errstr_size)
{
        size_t i;

        memset(g, 0, sizeof(*g));
        if (!conf || !charset_ok(conf->run_id, PO_GEN_MAX_RUN_ID, 1)) {
                snprintf(errstr, errstr_size,
                         "run id must be 1..%d of A-Z a-z 0-9 . _ -, got \"%.60s\"",
                         PO_GEN_MAX_RUN_ID, conf && conf->run_id ? conf->run_id : "");
                return PO_ERR_INVALID_ARG;
        }
        if (conf->code_count > PO_GEN_MAX_CODES || (conf->code_count && !conf->codes)) {
                snprintf(errstr, errstr_size, "at most %d codes", PO_GEN_MAX_CODES);
                return PO_ERR_INVALID_ARG;
        }
        for (i = 0; i < conf->code_count; i++)
                if (!charset_ok(conf->codes[i], 32, 0)) {
                        snprintf(errstr, errstr_size,
                                 "code \"%.40s\" must be 1..32 of A-Z a-z 0-9 _ -",
                                 conf->codes[i] ? conf->codes[i] : "");
                        return PO_ERR_INVALID_ARG;
                }
        if (conf->account) {
                size_t n = strlen(conf->account);

                for (i = 0; i < n; i++)
                        if ((unsigned char)conf->account[i] < 0x20 ||
                            conf->account[i] == 0x7f)
                                break;
                if (n < 1 || n > 63 || i < n) {
                        snprintf(errstr, errstr_size,
                                 "account must be 1..63 printable characters");
                        return PO_ERR_INVALID_ARG;
                }
        }
        g->conf = *conf;
        if (!g->conf.base_time_ms)
                g->conf.base_time_ms = GEN_DEFAULT_BASE_MS;
        g->rng = conf->seed;
        return PO_OK;
}

/* ---- formatting ---- */

/* minor units as a decimal with exponent fraction digits: 1999 -> "19.99". */
static void fmt_amount(char *buf, size_t size, int64_t minor, int exponent)
{
        static const int64_t pow10[] = {1, 10, 100, 1000};
        int64_t p = pow10[exponent];

        if (exponent == 0)
                snprintf(buf, size, "%" PRId64, minor);
        else
                snprintf(buf, size, "%" PRId64 ".%0*" PRId64, minor / p, exponent,
                         minor % p);
}

/* ppm as the shortest decimal fraction: 82500 -> "0.0825", 0 -> "0.0". */
static void fmt_rate(char *buf, size_t size, int64_t ppm)
{
        char frac[24];
        int len;

        if (ppm >= 1000000) {
                snprintf(buf, size, "1.0");
                return;
        }
        snprintf(frac, sizeof(frac), "%06" PRId64, ppm);
        for (len = 6; len > 1 && frac[len - 1] == '0'; len--)
                ;
        snprintf(buf, size, "0.%.*s", len, frac);
}

/* An RFC 3339 time of ms since the epoch, at a UTC offset in minutes
 * ("Z" for 0 when zulu). */
static void fmt_time(char *buf, size_t size, int64_t ms, int offset_min, int zulu)
{
        time_t t = (time_t)(ms / 1000 + offset_min * 60);
        struct tm tm;
        char off[16];

        gmtime_r(&t, &tm);
        if (zulu && offset_min == 0)
                snprintf(off, sizeof(off), "Z");
        else
                snprintf(off, sizeof(off), "%c%02d:%02d", offset_min < 0 ? '-' : '+',
                         (offset_min < 0 ? -offset_min : offset_min) / 60,
                         (offset_min < 0 ? -offset_min : offset_min) % 60);
        snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d%s", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, off);
}

/* A JSON string literal (the generator's strings are plain already; this
 * keeps the payload valid whatever they hold). */
static void add_json_str(po_dynbuf_t *out, const char *s)
{
        po_dynbuf_add(out, "\"", 1);
        for (; *s; s++) {
                unsigned char c = (unsigned char)*s;

                if (c == '"' || c == '\\')
                        po_dynbuf_addf(out, "\\%c", c);
                else if (c < 0x20)
                        po_dynbuf_addf(out, "\\u%04x", c);
                else
                        po_dynbuf_add(out, s, 1);
        }
        po_dynbuf_add(out, "\"", 1);
}

/* ---- content ---- */

static int64_t pick_rate(po_gen_t *g, const char *currency)
{
        static const int64_t usd[] = {0, 62500, 82500, 88750};
        static const int64_t eur[] = {70000, 190000, 200000, 210000};
        static const int64_t gbp[] = {0, 200000};
        static const int64_t jpy[] = {80000, 100000};

        if (strcmp(currency, "EUR") == 0)
                return eur[range(g, 0, 3)];
        if (strcmp(currency, "GBP") == 0)
                return gbp[range(g, 0, 1)];
        if (strcmp(currency, "JPY") == 0)
                return jpy[range(g, 0, 1)];
        return usd[range(g, 0, 3)];
}

static void pick_currency(po_gen_t *g, const char *channel, gen_order_t *o)
{
        int r = (int)range(g, 0, 99);
        const char *c = "USD";

        if (strcmp(channel, "mobile") == 0)
                c = r < 70 ? "EUR" : r < 90 ? "USD" : "JPY";
        else if (strcmp(channel, "pos") == 0)
                c = r < 80 ? "USD" : "EUR";
        else if (strcmp(channel, "marketplace") == 0)
                c = r < 80 ? "USD" : r < 90 ? "GBP" : "JPY";
        else
                c = r < 60 ? "USD" : r < 80 ? "EUR" : r < 90 ? "GBP" : "JPY";
        memcpy(o->currency, c, 4);
        o->exponent = po_money_exponent(c);
}

static void make_order(po_gen_t *g, const char *channel, gen_order_t *o)
{
        size_t i;

        memset(o, 0, sizeof(*o));
        o->n = ++g->seq;
        o->placed_ms = g->conf.base_time_ms - range(g, 0, 3600000);
        pick_currency(g, channel, o);
        o->line_count =
            chance(g, 90) ? (size_t)range(g, 1, 4) : (size_t)range(g, 5, GEN_MAX_LINES);
        for (i = 0; i < o->line_count; i++) {
                gen_line_t *l = &o->lines[i];
                int64_t price =
                    chance(g, 95) ? range(g, 99, 29999) : range(g, 30000, 250000);

                snprintf(l->sku, sizeof(l->sku), "SKU-%" PRId64, range(g, 1, 500));
                l->category =
                    chance(g, 90)
                        ? categories[range(
                              g, 0, sizeof(categories) / sizeof(categories[0]) - 1)]
                        : NULL;
                /* The same figures in every currency: yen prices are whole yen. */
                l->unit_price = price;
                l->quantity = chance(g, 90) ? range(g, 1, 3) : range(g, 4, 12);
                l->tax_ppm = pick_rate(g, o->currency);
        }
        o->tier = chance(g, 40) ? NULL : tiers[range(g, 0, 2)];
        o->customer = (unsigned)range(g, 1, 99999);
        if (g->conf.code_count && chance(g, 50)) {
                o->codes[o->code_count++] =
                    g->conf.codes[range(g, 0, (int64_t)g->conf.code_count - 1)];
                if (g->conf.code_count > 1 && chance(g, 20)) {
                        const char *c =
                            g->conf.codes[range(g, 0, (int64_t)g->conf.code_count - 1)];

                        if (strcmp(c, o->codes[0]) != 0)
                                o->codes[o->code_count++] = c;
                }
        }
}

static int64_t order_value(const gen_order_t *o)
{
        int64_t v = 0;
        size_t i;

        for (i = 0; i < o->line_count; i++)
                v += o->lines[i].unit_price * o->lines[i].quantity;
        return v;
}

/* ---- the channels ---- */

static void write_web(po_gen_t *g, const gen_order_t *o, po_dynbuf_t *out,
                      po_gen_order_t *m)
{
        static const int offsets[] = {-300, -480, 60, 0};
        char amount[32], rate[16], when[96];
        int incl = strcmp(o->currency, "EUR") == 0 || strcmp(o->currency, "GBP") == 0;
        size_t i;

        snprintf(m->external_id, sizeof(m->external_id), "%s-%" PRIu64, g->conf.run_id,
                 o->n);
        fmt_time(when, sizeof(when), o->placed_ms, offsets[range(g, 0, 3)], 0);
        po_dynbuf_addf(out, "{\"id\": ");
        add_json_str(out, m->external_id);
        po_dynbuf_addf(
            out,
            ", \"name\": \"#%" PRIu64 "\", \"email\": \"buyer%u@example.com\", "
            "\"created_at\": \"%s\",\n \"currency\": \"%s\", "
            "\"taxes_included\": %s, \"source_name\": \"web\",\n",
            1000 + o->n, o->customer, when, o->currency, incl ? "true" : "false");
        po_dynbuf_addf(out, " \"customer\": {\"id\": %u, \"tags\": \"",
                       70000 + o->customer);
        if (o->tier)
                po_dynbuf_addf(out, "loyalty:%s, ", o->tier);
        po_dynbuf_addf(out, "newsletter\"},\n \"line_items\": [");
        for (i = 0; i < o->line_count; i++) {
                const gen_line_t *l = &o->lines[i];

                fmt_amount(amount, sizeof(amount), l->unit_price, o->exponent);
                po_dynbuf_addf(out,
                               "%s\n   {\"id\": %" PRIu64 ", \"sku\": \"%s\", \"title\": "
                               "\"Item %s\", \"price\": \"%s\", \"quantity\": %" PRId64,
                               i ? "," : "", o->n * 100 + i + 1, l->sku, l->sku, amount,
                               l->quantity);
                if (l->category)
                        po_dynbuf_addf(out, ", \"product_type\": \"%s\"", l->category);
                /* A US rate of 8.875 % comes as state plus city tax lines. */
                if (l->tax_ppm == 88750) {
                        po_dynbuf_addf(out,
                                       ", \"tax_lines\": [{\"title\": \"State tax\", "
                                       "\"rate\": 0.0625}, {\"title\": \"City "
                                       "tax\", \"rate\": 0.02625}]}");
                } else {
                        fmt_rate(rate, sizeof(rate), l->tax_ppm);
                        po_dynbuf_addf(out,
                                       ", \"tax_lines\": [{\"title\": \"Tax\", \"rate\": "
                                       "%s}]}",
                                       rate);
                }
        }
        po_dynbuf_addf(out, "\n ],\n \"discount_codes\": [");
        for (i = 0; i < o->code_count; i++) {
                po_dynbuf_addf(out, "%s{\"code\": ", i ? ", " : "");
                add_json_str(out, o->codes[i]);
                po_dynbuf_addf(out, ", \"amount\": \"0.00\", \"type\": \"percentage\"}");
        }
        po_dynbuf_addf(out, "]}\n");
        snprintf(m->account, sizeof(m->account), "default");
        m->line_count = o->line_count;
        m->value = order_value(o);
}

static void write_marketplace(po_gen_t *g, const gen_order_t *o, po_dynbuf_t *out,
                              po_gen_order_t *m)
{
        const char *mkt = strcmp(o->currency, "GBP") == 0   ? "A1F83G8C2ARO7P"
                          : strcmp(o->currency, "JPY") == 0 ? "A1VC38T7YXB528"
                                                            : "ATVPDKIKX0DER";
        int64_t totals[GEN_MAX_LINES], taxes[GEN_MAX_LINES], sum = 0;
        char amount[32], when[96];
        size_t i, lines = 0;

        snprintf(m->external_id, sizeof(m->external_id), "%s-%07" PRIu64, g->conf.run_id,
                 o->n);
        /* ItemPrice is the line total; after a marketplace discount it need
         * not divide by the quantity. */
        for (i = 0; i < o->line_count; i++) {
                const gen_line_t *l = &o->lines[i];

                totals[i] = l->unit_price * l->quantity;
                if (l->quantity > 1 && chance(g, 25))
                        totals[i] -= range(g, 1, l->quantity - 1);
                taxes[i] = (int64_t)po_money_div_round((po_i128)totals[i] * l->tax_ppm,
                                                       1000000, PO_ROUND_HALF_UP);
                sum += totals[i] + taxes[i];
                lines += totals[i] % l->quantity ? 2 : 1;
        }
        fmt_time(when, sizeof(when), o->placed_ms, 0, 1);
        fmt_amount(amount, sizeof(amount), sum, o->exponent);
        po_dynbuf_addf(out, "{\"AmazonOrderId\": ");
        add_json_str(out, m->external_id);
        po_dynbuf_addf(
            out,
            ", \"PurchaseDate\": \"%s\", \"OrderStatus\": \"Unshipped\",\n "
            "\"SalesChannel\": \"Amazon.com\", \"MarketplaceId\": \"%s\",\n "
            "\"OrderTotal\": {\"CurrencyCode\": \"%s\", \"Amount\": \"%s\"},\n "
            "\"BuyerInfo\": {\"BuyerEmail\": \"b%u@marketplace.example\"},\n "
            "\"OrderItems\": [",
            when, mkt, o->currency, amount, o->customer);
        for (i = 0; i < o->line_count; i++) {
                const gen_line_t *l = &o->lines[i];
                size_t c;

                fmt_amount(amount, sizeof(amount), totals[i], o->exponent);
                po_dynbuf_addf(out,
                               "%s\n   {\"OrderItemId\": \"%" PRIu64 "%02zu\", "
                               "\"SellerSKU\": \"%s\", \"QuantityOrdered\": %" PRId64
                               ",\n    \"ItemPrice\": {\"CurrencyCode\": \"%s\", "
                               "\"Amount\": \"%s\"},\n",
                               i ? "," : "", (uint64_t)10000000000 + o->n, i, l->sku,
                               l->quantity, o->currency, amount);
                fmt_amount(amount, sizeof(amount), taxes[i], o->exponent);
                po_dynbuf_addf(out,
                               "    \"ItemTax\": {\"CurrencyCode\": \"%s\", \"Amount\": "
                               "\"%s\"},\n    \"PromotionIds\": [",
                               o->currency, amount);
                /* The order's promotions on its first item. */
                for (c = 0; i == 0 && c < o->code_count; c++) {
                        po_dynbuf_addf(out, "%s", c ? ", " : "");
                        add_json_str(out, o->codes[c]);
                }
                po_dynbuf_addf(out, "]}");
        }
        po_dynbuf_addf(out, "\n ]}\n");
        snprintf(m->account, sizeof(m->account), "%s", mkt);
        m->line_count = lines;
        m->value = 0;
        for (i = 0; i < o->line_count; i++)
                m->value += totals[i];
}

static void write_pos(po_gen_t *g, const gen_order_t *o, po_dynbuf_t *out,
                      po_gen_order_t *m)
{
        static const char *const stores[] = {"0012", "0031", "0107"};
        const char *store = stores[range(g, 0, 2)];
        const char *eol = chance(g, 10) ? "\r\n" : "\n";
        int reg = (int)range(g, 1, 8);
        char when[96], txn[64];
        size_t i;

        snprintf(txn, sizeof(txn), "%s-%06" PRIu64, g->conf.run_id, o->n);
        snprintf(m->external_id, sizeof(m->external_id), "%s-%02d-%s", store, reg, txn);
        fmt_time(when, sizeof(when), o->placed_ms, 0, 1);
        po_dynbuf_addf(out, "H|store=%s|register=%02d|txn=%s|ts=%s|currency=%s", store,
                       reg, txn, when, o->currency);
        if (o->tier)
                po_dynbuf_addf(out, "|customer=c-%u|loyalty=%s", o->customer, o->tier);
        po_dynbuf_addf(out, "%s", eol);
        for (i = 0; i < o->line_count; i++) {
                const gen_line_t *l = &o->lines[i];

                po_dynbuf_addf(
                    out, "I|sku=%s|qty=%" PRId64 "|price=%" PRId64 "|taxppm=%" PRId64,
                    l->sku, l->quantity, l->unit_price, l->tax_ppm);
                if (l->category)
                        po_dynbuf_addf(out, "|cat=%s", l->category);
                po_dynbuf_addf(out, "%s", eol);
        }
        for (i = 0; i < o->code_count; i++)
                po_dynbuf_addf(out, "C|code=%s%s", o->codes[i], eol);
        po_dynbuf_addf(out, "T|subtotal=%" PRId64 "%s", order_value(o), eol);
        snprintf(m->account, sizeof(m->account), "%s", store);
        m->line_count = o->line_count;
        m->value = order_value(o);
}

static void write_mobile(po_gen_t *g, const gen_order_t *o, po_dynbuf_t *out,
                         po_gen_order_t *m)
{
        int incl = strcmp(o->currency, "USD") != 0;
        size_t i;

        snprintf(m->external_id, sizeof(m->external_id), "M-%s-%06" PRIu64,
                 g->conf.run_id, o->n);
        po_dynbuf_addf(out, "{\"schema\": \"app.order.v2\", \"order_ref\": ");
        add_json_str(out, m->external_id);
        po_dynbuf_addf(out,
                       ", \"placed_at_ms\": %" PRId64 ",\n \"user\": {\"uid\": \"c-%u\"",
                       o->placed_ms, o->customer);
        if (o->tier)
                po_dynbuf_addf(out, ", \"membership\": \"%s\"", o->tier);
        po_dynbuf_addf(
            out,
            "},\n \"cart\": {\"currency\": \"%s\", \"prices_include_tax\": %s,\n"
            "          \"items\": [",
            o->currency, incl ? "true" : "false");
        for (i = 0; i < o->line_count; i++) {
                const gen_line_t *l = &o->lines[i];

                po_dynbuf_addf(out, "%s{\"sku\": \"%s\", ",
                               i ? ",\n                    " : "", l->sku);
                if (l->category)
                        po_dynbuf_addf(out, "\"cat\": \"%s\", ", l->category);
                po_dynbuf_addf(out,
                               "\"unit_minor\": %" PRId64 ", \"qty\": %" PRId64
                               ", \"vat_ppm\": %" PRId64 "}",
                               l->unit_price, l->quantity, l->tax_ppm);
        }
        po_dynbuf_addf(out, "]},\n \"promo\": [");
        for (i = 0; i < o->code_count; i++) {
                po_dynbuf_addf(out, "%s", i ? ", " : "");
                add_json_str(out, o->codes[i]);
        }
        po_dynbuf_addf(out, "]}\n");
        snprintf(m->account, sizeof(m->account), "default");
        m->line_count = o->line_count;
        m->value = order_value(o);
}

po_err_t po_gen_next(po_gen_t *g, const char *channel, po_dynbuf_t *out,
                     po_gen_order_t *meta)
{
        gen_order_t o;

        memset(meta, 0, sizeof(*meta));
        if (!channel ||
            (strcmp(channel, "web") != 0 && strcmp(channel, "marketplace") != 0 &&
             strcmp(channel, "pos") != 0 && strcmp(channel, "mobile") != 0))
                return PO_ERR_INVALID_ARG;
        make_order(g, channel, &o);
        if (strcmp(channel, "web") == 0)
                write_web(g, &o, out, meta);
        else if (strcmp(channel, "marketplace") == 0)
                write_marketplace(g, &o, out, meta);
        else if (strcmp(channel, "pos") == 0)
                write_pos(g, &o, out, meta);
        else
                write_mobile(g, &o, out, meta);
        if (out->failed)
                return PO_ERR_NOMEM; /* or past its limit: the buffer is gone */
        snprintf(meta->channel, sizeof(meta->channel), "%s", channel);
        if (g->conf.account)
                snprintf(meta->account, sizeof(meta->account), "%s", g->conf.account);
        snprintf(meta->order_id, sizeof(meta->order_id), "%s:%s", channel,
                 meta->external_id);
        memcpy(meta->currency, o.currency, 4);
        meta->code_count = o.code_count;
        return PO_OK;
}
