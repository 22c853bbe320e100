/* Channel adapters on the real-shaped samples of ../shared/samples/channels,
 * on variations (missing optional fields, reordered fields, unicode, bounds,
 * unknown fields, inexact decimals), the profiles of
 * deploy/intake-profiles.conf, every malformed example, and the Avro round
 * trip of each normalized sample.
 *
 * Every expected value is computed by hand from the payload in the comment
 * next to it, never copied from the program's output. JSON payloads are
 * written with ' for " (J() turns them into JSON) so they stay readable. */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "po/channel.h"
#include "po/order_avro.h"
#include "po/profile.h"

static po_channel_profile_t lenient = {.default_category = "uncategorized"};

/* 2026-11-24T00:00:00Z: 56 years of 365 days from 1970, 14 leap days
 * (1972..2024), then 304 days of January..October and 23 of November:
 * 20781 days * 86400 s. */
#define DAY_2026_11_24 1795478400LL
#define RECEIVED_AT 1795532400000000LL

/* ---- helpers ---- */

static char *slurp(const char *name, size_t *len)
{
        char path[512];
        FILE *f;
        char *buf;
        long n;

        snprintf(path, sizeof(path), "%s/%s", SAMPLES_DIR, name);
        f = fopen(path, "rb");
        ck_assert_msg(f != NULL, "cannot open %s", path);
        fseek(f, 0, SEEK_END);
        n = ftell(f);
        fseek(f, 0, SEEK_SET);
        buf = malloc((size_t)n + 1);
        ck_assert_int_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
        buf[n] = '\0';
        fclose(f);
        *len = (size_t)n;
        return buf;
}

/* printf into one of a few rotating buffers, then ' -> " (JSON in C). */
static const char *J(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *J(const char *fmt, ...)
{
        static char bufs[8][8192];
        static int next;
        char *b = bufs[next++ % 8], *c;
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(b, sizeof(bufs[0]), fmt, ap);
        va_end(ap);
        ck_assert_msg(n >= 0 && (size_t)n < sizeof(bufs[0]), "J: payload too long");
        for (c = b; *c; c++)
                if (*c == '\'')
                        *c = '"';
        return b;
}

static po_err_t norm_as(const char *channel, const char *account, const char *payload,
                        size_t len, po_order_t *o, po_channel_reject_t *rej,
                        const po_channel_profile_t *p)
{
        po_channel_ctx_t ctx = {.channel = channel,
                                .account = account,
                                .received_at_us = RECEIVED_AT,
                                .profile = p ? p : &lenient};

        po_order_init(o, 1 << 20);
        return po_channel_normalize(&ctx, payload, len, o, rej);
}

static po_err_t norm(const char *channel, const char *payload, size_t len, po_order_t *o,
                     po_channel_reject_t *rej, const po_channel_profile_t *p)
{
        return norm_as(channel, "acct-1", payload, len, o, rej, p);
}

/* Normalizes payload and asserts it is accepted; the caller releases *o. */
#define ACCEPT(ch, payload, prof, o)                                                     \
        accept_at(__LINE__, ch, payload, strlen(payload), prof, o)
static void accept_at(int line, const char *ch, const char *payload, size_t len,
                      const po_channel_profile_t *p, po_order_t *o)
{
        po_channel_reject_t rej;

        ck_assert_msg(norm(ch, payload, len, o, &rej, p) == PO_OK,
                      "line %d: %s rejected: %s %s: %s\n%.*s", line, ch, rej.reason,
                      rej.field, rej.message, (int)(len > 400 ? 400 : len), payload);
}

/* Asserts payload is rejected with reason and field. */
#define REJECT(ch, payload, prof, reason, field)                                         \
        reject_at(__LINE__, ch, "acct-1", payload, strlen(payload), prof, reason, field)
static void reject_at(int line, const char *ch, const char *account, const char *payload,
                      size_t len, const po_channel_profile_t *p, const char *reason,
                      const char *field)
{
        po_order_t o;
        po_channel_reject_t rej;
        po_err_t err = norm_as(ch, account, payload, len, &o, &rej, p);

        ck_assert_msg(err == PO_ERR_BAD_INPUT, "line %d: %s accepted (%d):\n%.*s", line,
                      ch, (int)err, (int)(len > 400 ? 400 : len), payload);
        ck_assert_msg(strcmp(rej.reason, reason) == 0 && strcmp(rej.field, field) == 0,
                      "line %d: %s: got %s \"%s\" (%s), want %s \"%s\"", line, ch,
                      rej.reason, rej.field, rej.message, reason, field);
        ck_assert_msg(rej.message[0], "line %d: no message", line);
        po_order_release(&o);
}

static const char *attr(const po_order_t *o, const char *key)
{
        size_t i;

        for (i = 0; i < o->attr_count; i++)
                if (strcmp(o->attrs[i].key, key) == 0)
                        return o->attrs[i].value;
        return NULL;
}

static void str_eq_null(const char *what, const char *a, const char *b)
{
        ck_assert_msg((!a && !b) || (a && b && strcmp(a, b) == 0), "%s: \"%s\" != \"%s\"",
                      what, a ? a : "(null)", b ? b : "(null)");
}

/* Every field of two orders, attributes as a map (any order). */
static void assert_orders_equal(const po_order_t *a, const po_order_t *b)
{
        size_t i;

        str_eq_null("channel", a->channel, b->channel);
        str_eq_null("account", a->account, b->account);
        str_eq_null("external_id", a->external_id, b->external_id);
        str_eq_null("order_id", a->order_id, b->order_id);
        ck_assert_int_eq(a->has_customer, b->has_customer);
        str_eq_null("customer_id", a->customer_id, b->customer_id);
        str_eq_null("customer_tier", a->customer_tier, b->customer_tier);
        str_eq_null("customer_email", a->customer_email, b->customer_email);
        ck_assert_str_eq(a->currency, b->currency);
        ck_assert_int_eq(a->tax_mode, b->tax_mode);
        ck_assert_int_eq(a->placed_at_us, b->placed_at_us);
        ck_assert_int_eq(a->received_at_us, b->received_at_us);
        ck_assert_uint_eq(a->line_count, b->line_count);
        for (i = 0; i < a->line_count; i++) {
                const po_order_line_t *x = &a->lines[i], *y = &b->lines[i];

                str_eq_null("line_id", x->line_id, y->line_id);
                str_eq_null("sku", x->sku, y->sku);
                str_eq_null("category", x->category, y->category);
                ck_assert_int_eq(x->unit_price, y->unit_price);
                ck_assert_int_eq(x->quantity, y->quantity);
                ck_assert_int_eq(x->tax_rate_ppm, y->tax_rate_ppm);
                ck_assert_int_eq(x->has_unit_cost, y->has_unit_cost);
                if (x->has_unit_cost)
                        ck_assert_int_eq(x->unit_cost, y->unit_cost);
        }
        ck_assert_uint_eq(a->code_count, b->code_count);
        for (i = 0; i < a->code_count; i++)
                ck_assert_str_eq(a->codes[i], b->codes[i]);
        ck_assert_uint_eq(a->attr_count, b->attr_count);
        for (i = 0; i < a->attr_count; i++)
                str_eq_null(a->attrs[i].key, a->attrs[i].value, attr(b, a->attrs[i].key));
}

static void assert_line(const po_order_t *o, size_t i, const char *id, const char *sku,
                        const char *cat, int64_t price, int64_t qty, int64_t ppm)
{
        const po_order_line_t *l;

        ck_assert_uint_lt(i, o->line_count);
        l = &o->lines[i];
        ck_assert_str_eq(l->line_id, id);
        ck_assert_str_eq(l->sku, sku);
        ck_assert_str_eq(l->category, cat);
        ck_assert_int_eq(l->unit_price, price);
        ck_assert_int_eq(l->quantity, qty);
        ck_assert_int_eq(l->tax_rate_ppm, ppm);
        ck_assert_int_eq(l->has_unit_cost, 0);
}

static po_profiles_t *deploy_profiles(void)
{
        char err[256];
        po_profiles_t *ps = po_profiles_load(PROFILES_CONF, err, sizeof(err));

        ck_assert_msg(ps != NULL, "%s", err);
        return ps;
}

/* n copies of item joined by commas, in a malloc'd buffer, between pre and
 * post (for the 1000-line bounds). */
static char *repeat(const char *pre, const char *item, size_t n, const char *post)
{
        size_t li = strlen(item), lp = strlen(pre), lq = strlen(post), i, at = 0;
        char *b = malloc(lp + n * (li + 1) + lq + 1);

        ck_assert_ptr_nonnull(b);
        memcpy(b, pre, lp);
        at = lp;
        for (i = 0; i < n; i++) {
                if (i && item[li - 1] != '\n')
                        b[at++] = ',';
                memcpy(b + at, item, li);
                at += li;
        }
        memcpy(b + at, post, lq + 1);
        return b;
}

/* ---- the samples ---- */

START_TEST(web_sample)
{
        size_t len;
        char *p = slurp("web-shopify-order.json", &len);
        po_order_t o;

        accept_at(__LINE__, "web", p, len, NULL, &o);
        ck_assert_str_eq(o.channel, "web");
        ck_assert_str_eq(o.account, "acct-1");
        ck_assert_str_eq(o.external_id, "5123456789012"); /* a JSON integer id */
        ck_assert_str_eq(o.order_id, "web:5123456789012");
        ck_assert_str_eq(o.currency, "USD");
        ck_assert_int_eq(o.tax_mode, PO_TAX_EXCLUSIVE); /* taxes_included false */
        ck_assert_int_eq(o.has_customer, 1);
        ck_assert_str_eq(o.customer_id, "70012");
        ck_assert_str_eq(o.customer_tier, "gold"); /* tags "loyalty:gold, newsletter" */
        ck_assert_str_eq(o.customer_email, "ana@example.com");
        ck_assert_uint_eq(o.line_count, 2);
        /* "19.99" x 2 at rate 0.0825; "6.50" x 3 at 0.0825 */
        assert_line(&o, 0, "1", "SKU-1", "shoes", 1999, 2, 82500);
        assert_line(&o, 1, "2", "SKU-7", "shirts", 650, 3, 82500);
        ck_assert_uint_eq(o.code_count, 1);
        ck_assert_str_eq(o.codes[0], "save10"); /* as typed */
        /* 2026-11-24T09:58:12-05:00 = 14:58:12Z = 53892 s into the day */
        ck_assert_int_eq(o.placed_at_us, (DAY_2026_11_24 + 53892) * 1000000);
        ck_assert_int_eq(o.received_at_us, RECEIVED_AT);
        ck_assert_uint_eq(o.attr_count, 2);
        ck_assert_str_eq(attr(&o, "order_name"), "#1042");
        ck_assert_str_eq(attr(&o, "source_name"), "web");
        po_order_release(&o);
        free(p);
}
END_TEST

START_TEST(marketplace_sample)
{
        size_t len;
        char *p = slurp("marketplace-order.json", &len);
        po_order_t o;

        accept_at(__LINE__, "marketplace", p, len, NULL, &o);
        ck_assert_str_eq(o.external_id, "114-3941689-8772232");
        ck_assert_str_eq(o.order_id, "marketplace:114-3941689-8772232");
        ck_assert_str_eq(o.currency, "USD");
        ck_assert_int_eq(o.tax_mode, PO_TAX_EXCLUSIVE);
        ck_assert_int_eq(o.placed_at_us, (DAY_2026_11_24 + 53892) * 1000000);
        ck_assert_int_eq(o.has_customer, 1);
        ck_assert_ptr_null(o.customer_id);
        ck_assert_ptr_null(o.customer_tier);
        ck_assert_str_eq(o.customer_email, "x7k2@marketplace.example");
        ck_assert_uint_eq(o.line_count, 2);
        /* 44.97 for 3 units = 14.99 each, exact. Tax 3.71: rates in
         * [ceil(370500000 / 4497), ceil(371500000 / 4497) - 1] = [82389, 82610]
         * reproduce it; the roundest is a multiple of 100: 82400, 82500, 82600,
         * nearest to 371 / 4497 = 8.2499 % is 82500. */
        assert_line(&o, 0, "12345678901234", "SKU-3", "uncategorized", 1499, 3, 82500);
        /* 9.99, tax 0.80: [ceil(79500000 / 999), ceil(80500000 / 999) - 1] =
         * [79580, 80580], holding the multiple of 10^4 80000. */
        assert_line(&o, 1, "12345678901235", "SKU-9", "uncategorized", 999, 1, 80000);
        ck_assert_uint_eq(o.code_count, 1);
        ck_assert_str_eq(o.codes[0], "FLASH-24");
        ck_assert_uint_eq(o.attr_count, 2);
        ck_assert_str_eq(attr(&o, "marketplace_id"), "ATVPDKIKX0DER");
        ck_assert_str_eq(attr(&o, "sales_channel"), "Amazon.com");
        po_order_release(&o);
        free(p);
}
END_TEST

START_TEST(pos_sample)
{
        size_t len;
        char *p = slurp("pos-transaction.txt", &len);
        po_order_t o;

        accept_at(__LINE__, "pos", p, len, NULL, &o);
        ck_assert_str_eq(o.external_id, "0012-03-000088213"); /* store-register-txn */
        ck_assert_str_eq(o.order_id, "pos:0012-03-000088213");
        ck_assert_str_eq(o.currency, "USD");
        ck_assert_int_eq(o.tax_mode, PO_TAX_EXCLUSIVE);
        /* 15:01:02Z = 54062 s into the day */
        ck_assert_int_eq(o.placed_at_us, (DAY_2026_11_24 + 54062) * 1000000);
        ck_assert_int_eq(o.has_customer, 1);
        ck_assert_str_eq(o.customer_id, "c-17");
        ck_assert_str_eq(o.customer_tier, "silver");
        ck_assert_ptr_null(o.customer_email);
        ck_assert_uint_eq(o.line_count, 2);
        assert_line(&o, 0, "1", "SKU-1", "uncategorized", 1999, 1, 82500);
        assert_line(&o, 1, "2", "SKU-4", "uncategorized", 350, 2, 0);
        ck_assert_uint_eq(o.code_count, 1);
        ck_assert_str_eq(o.codes[0], "WELCOME");
        ck_assert_uint_eq(o.attr_count, 2);
        ck_assert_str_eq(attr(&o, "store"), "0012");
        ck_assert_str_eq(attr(&o, "register"), "03");
        po_order_release(&o);
        free(p);
}
END_TEST

START_TEST(mobile_sample)
{
        size_t len;
        char *p = slurp("mobile-order.json", &len);
        po_order_t o;

        accept_at(__LINE__, "mobile", p, len, NULL, &o);
        ck_assert_str_eq(o.order_id, "mobile:M-2026-000731");
        ck_assert_int_eq(o.tax_mode, PO_TAX_INCLUSIVE); /* prices_include_tax */
        ck_assert_str_eq(o.currency, "EUR");
        /* 1795532400000 ms = 15:00:00Z */
        ck_assert_int_eq(o.placed_at_us, (DAY_2026_11_24 + 54000) * 1000000);
        ck_assert_int_eq(o.has_customer, 1);
        ck_assert_str_eq(o.customer_id, "c-4");
        ck_assert_str_eq(o.customer_tier, "platinum");
        ck_assert_ptr_null(o.customer_email);
        ck_assert_uint_eq(o.line_count, 2);
        assert_line(&o, 0, "1", "SKU-2", "books", 1250, 1, 70000);
        assert_line(&o, 1, "2", "SKU-5", "toys", 2999, 2, 190000);
        ck_assert_uint_eq(o.code_count, 2);
        ck_assert_str_eq(o.codes[0], "TIER-UP");
        ck_assert_str_eq(o.codes[1], "VIP-7K2M");
        ck_assert_uint_eq(o.attr_count, 0);
        po_order_release(&o);
        free(p);
}
END_TEST

/* ---- web variations ---- */

/* A web order with one line; cur and the line's fields substituted. */
#define WEB1(cur, line)                                                                  \
        J("{'id':'W-1','created_at':'2026-11-24T10:00:00Z','currency':'%s',"             \
          "'line_items':[%s]}",                                                          \
          cur, line)

START_TEST(web_minimal)
{
        po_order_t o;

        /* No name, email, customer, taxes_included, codes, tax_lines, line id or
         * product_type. */
        ACCEPT("web", WEB1("USD", "{'sku':'A','price':'1.00','quantity':1}"), NULL, &o);
        ck_assert_str_eq(o.order_id, "web:W-1");
        ck_assert_int_eq(o.placed_at_us, (DAY_2026_11_24 + 36000) * 1000000);
        ck_assert_int_eq(o.has_customer, 0);
        ck_assert_int_eq(o.tax_mode, PO_TAX_EXCLUSIVE);
        ck_assert_uint_eq(o.line_count, 1);
        assert_line(&o, 0, "1", "A", "uncategorized", 100, 1, 0);
        ck_assert_uint_eq(o.code_count, 0);
        ck_assert_uint_eq(o.attr_count, 0);
        po_order_release(&o);
        /* The currency from the profile when the payload has none. */
        {
                po_channel_profile_t eur = {.default_category = "x",
                                            .default_currency = "EUR"};
                const char *j =
                    J("{'id':'W-1','created_at':'2026-11-24T10:00:00Z',"
                      "'line_items':[{'sku':'A','price':'1.5','quantity':1}]}");

                ACCEPT("web", j, &eur, &o);
                ck_assert_str_eq(o.currency, "EUR");
                ck_assert_int_eq(o.lines[0].unit_price, 150);
                ck_assert_str_eq(o.lines[0].category, "x");
                po_order_release(&o);
                REJECT("web", j, NULL, "MISSING_FIELD", "currency");
        }
        /* Required ones. */
        REJECT("web",
               J("{'created_at':'2026-11-24T10:00:00Z','currency':'USD',"
                 "'line_items':[{'sku':'A','price':'1.00','quantity':1}]}"),
               NULL, "MISSING_FIELD", "id");
        REJECT("web",
               J("{'id':'W','currency':'USD','line_items':[{'sku':'A','price':'1.00',"
                 "'quantity':1}]}"),
               NULL, "MISSING_FIELD", "created_at");
        REJECT("web",
               J("{'id':'W','created_at':'2026-11-24T10:00:00Z','currency':'USD'}"), NULL,
               "MISSING_FIELD", "line_items");
        REJECT("web", WEB1("USD", "{'price':'1.00','quantity':1}"), NULL, "MISSING_FIELD",
               "line_items[0].sku");
        REJECT("web", WEB1("USD", "{'sku':'A','quantity':1}"), NULL, "MISSING_FIELD",
               "line_items[0].price");
        REJECT("web", WEB1("USD", "{'sku':'A','price':'1.00'}"), NULL, "MISSING_FIELD",
               "line_items[0].quantity");
        REJECT("web", WEB1("USD", ""), NULL, "OUT_OF_RANGE", "line_items");
        REJECT("web", WEB1("US", "{'sku':'A','price':'1.00','quantity':1}"), NULL,
               "BAD_CURRENCY", "currency");
        REJECT("web",
               J("{'id':'W','created_at':'2026-11-24 10:00','currency':'USD',"
                 "'line_items':[{'sku':'A','price':'1.00','quantity':1}]}"),
               NULL, "BAD_TIMESTAMP", "created_at");
        /* The malformed samples' two web lines, on an otherwise valid order. */
        REJECT("web", WEB1("USD", "{'sku':'SKU-1','price':'abc','quantity':1}"), NULL,
               "BAD_AMOUNT", "line_items[0].price");
        REJECT("web", WEB1("USD", "{'sku':'SKU-1','price':'19.99','quantity':-4}"), NULL,
               "OUT_OF_RANGE", "line_items[0].quantity");
        /* A price must be a decimal string: a JSON number could be a binary
         * fraction (19.99) or minor units taken for major ones. */
        REJECT("web", WEB1("USD", "{'sku':'A','price':19.99,'quantity':1}"), NULL,
               "BAD_TYPE", "line_items[0].price");
        REJECT("web", WEB1("USD", "{'sku':'A','price':20,'quantity':1}"), NULL,
               "BAD_TYPE", "line_items[0].price");
        REJECT("web", WEB1("USD", "{'sku':'A','price':'-1.00','quantity':1}"), NULL,
               "BAD_AMOUNT", "line_items[0].price");
}
END_TEST

START_TEST(web_reordered_and_unknown_fields)
{
        size_t len;
        char *p = slurp("web-shopify-order.json", &len);
        po_order_t a, b;
        /* The sample with every object's members in another order, other white
         * space, and fields no adapter knows (which must change nothing). */
        const char *j = J(
            "{ 'discount_codes': [{'type': 'percentage', 'code': 'save10', 'amount': "
            "'0.00'}],"
            "  'line_items': ["
            "   {'tax_lines': [{'rate': 0.0825, 'title': 'State tax', 'price': '3.30'}],"
            "    'product_type': 'shoes', 'quantity': 2, 'price': '19.99', 'vendor': 'V',"
            "    'title': 'Trail shoe', 'sku': 'SKU-1', 'id': 1,"
            "    'properties': [{'name': 'gift', 'value': 'no'}], 'grams': 800},"
            "   {'product_type': 'shirts', 'sku': 'SKU-7', 'id': 2, 'quantity': 3,"
            "    'tax_lines': [{'title': 'State tax', 'rate': 0.0825}], 'price': '6.50',"
            "    'title': 'Wool socks', 'fulfillable_quantity': null}],"
            "  'customer': {'tags': 'loyalty:gold, newsletter', 'id': 70012,"
            "               'first_name': 'Ana', 'orders_count': 3},"
            "  'source_name': 'web', 'taxes_included': false, 'currency': 'USD',"
            "  'created_at': '2026-11-24T09:58:12-05:00', 'email': 'ana@example.com',"
            "  'name': '#1042', 'id': 5123456789012, 'total_price': '73.16',"
            "  'shipping_lines': [], 'test': false, 'tags': '' }");

        accept_at(__LINE__, "web", p, len, NULL, &a);
        ACCEPT("web", j, NULL, &b);
        assert_orders_equal(&a, &b);
        po_order_release(&a);
        po_order_release(&b);
        free(p);
}
END_TEST

START_TEST(web_unicode)
{
        po_order_t o;
        /* Raw UTF-8 and \u escapes of the same text give the same bytes:
         * É = U+00C9 = C3 89, 靴 = U+9774 = E9 9D B4, ☀ = U+2600 = E2 98 80,
         * 😀 = U+1F600 = \ud83d\ude00 = F0 9F 98 80. */
        const char *j =
            J("{'id':'Ü-1','created_at':'2026-11-24T10:00:00Z','currency':'EUR',"
              "'email':'zoë@exämple.de','customer':{'id':'ç-9','tags':'loyalty:золото'},"
              "'line_items':[{'sku':'\\u00c9T\\u00c9-\\u9774-1','price':'12.00',"
              "'quantity':1,'product_type':'Schuhe-Größe'},"
              "{'sku':'ÉTÉ-靴-1','price':'0.50','quantity':2}],"
              "'discount_codes':[{'code':'SOMMER\\u2600'},{'code':'\\ud83d\\ude00'}],"
              "'note_attributes':[{'name':'Bestellnummer','value':'Nº 7'},"
              "{'name':'名前','value':'山田'}]}");

        ACCEPT("web", j, NULL, &o);
        ck_assert_str_eq(o.external_id, "\xc3\x9c-1");
        ck_assert_str_eq(o.customer_id, "\xc3\xa7-9");
        ck_assert_str_eq(o.customer_tier,
                         "\xd0\xb7\xd0\xbe\xd0\xbb\xd0\xbe\xd1\x82\xd0\xbe");
        ck_assert_str_eq(o.customer_email, "zo\xc3\xab@ex\xc3\xa4mple.de");
        assert_line(&o, 0, "1", "\xc3\x89T\xc3\x89-\xe9\x9d\xb4-1",
                    "Schuhe-Gr\xc3\xb6\xc3\x9f"
                    "e",
                    1200, 1, 0);
        assert_line(&o, 1, "2", "\xc3\x89T\xc3\x89-\xe9\x9d\xb4-1", "uncategorized", 50,
                    2, 0);
        ck_assert_str_eq(o.codes[0], "SOMMER\xe2\x98\x80");
        ck_assert_str_eq(o.codes[1], "\xf0\x9f\x98\x80");
        ck_assert_str_eq(attr(&o, "Bestellnummer"), "N\xc2\xba 7");
        ck_assert_str_eq(attr(&o, "\xe5\x90\x8d\xe5\x89\x8d"),
                         "\xe5\xb1\xb1\xe7\x94\xb0");
        po_order_release(&o);
        /* A lone surrogate is not text: jansson refuses it. */
        REJECT("web", WEB1("USD", "{'sku':'\\ud800','price':'1.00','quantity':1}"), NULL,
               "BAD_SYNTAX", "");
}
END_TEST

START_TEST(web_bounds)
{
        po_order_t o;
        char *big;

        /* unit_price <= 10^10 minor units: 100000000.00 USD is 10^10. */
        ACCEPT("web", WEB1("USD", "{'sku':'A','price':'100000000.00','quantity':1}"),
               NULL, &o);
        ck_assert_int_eq(o.lines[0].unit_price, 10000000000LL);
        po_order_release(&o);
        REJECT("web", WEB1("USD", "{'sku':'A','price':'100000000.01','quantity':1}"),
               NULL, "OUT_OF_RANGE", "line_items[0].price");
        /* In JPY (no decimals) the bound is 10000000000 yen. */
        ACCEPT("web", WEB1("JPY", "{'sku':'A','price':'10000000000','quantity':1}"), NULL,
               &o);
        ck_assert_int_eq(o.lines[0].unit_price, 10000000000LL);
        po_order_release(&o);
        REJECT("web", WEB1("JPY", "{'sku':'A','price':'10000000001','quantity':1}"), NULL,
               "OUT_OF_RANGE", "line_items[0].price");
        /* In KWD (3 decimals) 10000000.000 is 10^10 fils. */
        ACCEPT("web", WEB1("KWD", "{'sku':'A','price':'10000000.000','quantity':1}"),
               NULL, &o);
        ck_assert_int_eq(o.lines[0].unit_price, 10000000000LL);
        po_order_release(&o);
        REJECT("web", WEB1("KWD", "{'sku':'A','price':'10000000.001','quantity':1}"),
               NULL, "OUT_OF_RANGE", "line_items[0].price");
        /* Beyond what any amount may be (10^15 minor units): out of range, not
         * "inexact". */
        REJECT("web", WEB1("USD", "{'sku':'A','price':'10000000000000.01','quantity':1}"),
               NULL, "OUT_OF_RANGE", "line_items[0].price");
        REJECT("web",
               WEB1("USD", "{'sku':'A','price':'99999999999999999999999','quantity':1}"),
               NULL, "OUT_OF_RANGE", "line_items[0].price");
        /* quantity 1..10^6 */
        ACCEPT("web", WEB1("USD", "{'sku':'A','price':'1.00','quantity':1000000}"), NULL,
               &o);
        ck_assert_int_eq(o.lines[0].quantity, 1000000);
        po_order_release(&o);
        REJECT("web", WEB1("USD", "{'sku':'A','price':'1.00','quantity':1000001}"), NULL,
               "OUT_OF_RANGE", "line_items[0].quantity");
        REJECT("web", WEB1("USD", "{'sku':'A','price':'1.00','quantity':0}"), NULL,
               "OUT_OF_RANGE", "line_items[0].quantity");
        REJECT("web", WEB1("USD", "{'sku':'A','price':'1.00','quantity':'2'}"), NULL,
               "BAD_TYPE", "line_items[0].quantity");
        /* A number beyond 64 bits: jansson cannot say which field. */
        REJECT("web",
               WEB1("USD", "{'sku':'A','price':'1.00','quantity':99999999999999999999}"),
               NULL, "OUT_OF_RANGE", "");
        /* Order value <= 10^15: 10^10 x 10^5 is exactly 10^15; one cent more is
         * over. */
        ACCEPT("web", WEB1("USD", "{'sku':'A','price':'100000000.00','quantity':100000}"),
               NULL, &o);
        po_order_release(&o);
        REJECT("web",
               WEB1("USD", "{'sku':'A','price':'100000000.00','quantity':100000},"
                           "{'sku':'B','price':'0.01','quantity':1}"),
               NULL, "OUT_OF_RANGE", "lines");
        /* Tax rate <= 100 %: one rate of 1, or rates adding up to 1. */
        ACCEPT("web",
               WEB1("USD", "{'sku':'A','price':'1.00','quantity':1,'tax_lines':"
                           "[{'rate':1}]}"),
               NULL, &o);
        ck_assert_int_eq(o.lines[0].tax_rate_ppm, 1000000);
        po_order_release(&o);
        ACCEPT("web",
               WEB1("USD", "{'sku':'A','price':'1.00','quantity':1,'tax_lines':"
                           "[{'rate':0.5},{'rate':'0.5'}]}"),
               NULL, &o);
        ck_assert_int_eq(o.lines[0].tax_rate_ppm, 1000000);
        po_order_release(&o);
        REJECT("web",
               WEB1("USD", "{'sku':'A','price':'1.00','quantity':1,'tax_lines':"
                           "[{'rate':0.5},{'rate':0.500001}]}"),
               NULL, "OUT_OF_RANGE", "line_items[0].tax_lines[1].rate");
        REJECT("web",
               WEB1("USD", "{'sku':'A','price':'1.00','quantity':1,'tax_lines':"
                           "[{'rate':1.000001}]}"),
               NULL, "OUT_OF_RANGE", "line_items[0].tax_lines[0].rate");
        /* 5 ppm as a JSON real (which %g would spell 5e-06) is exact. */
        ACCEPT("web",
               WEB1("USD", "{'sku':'A','price':'1.00','quantity':1,'tax_lines':"
                           "[{'rate':0.000005},{'rate':0.0825}]}"),
               NULL, &o);
        ck_assert_int_eq(o.lines[0].tax_rate_ppm, 82505);
        po_order_release(&o);
        /* Half a ppm is not a whole ppm. */
        REJECT("web",
               WEB1("USD", "{'sku':'A','price':'1.00','quantity':1,'tax_lines':"
                           "[{'rate':0.0000005}]}"),
               NULL, "BAD_AMOUNT", "line_items[0].tax_lines[0].rate");
        REJECT("web",
               WEB1("USD", "{'sku':'A','price':'1.00','quantity':1,'tax_lines':"
                           "[{'title':'no rate'}]}"),
               NULL, "MISSING_FIELD", "line_items[0].tax_lines[0].rate");
        /* 1..1000 lines. */
        big = repeat("{'id':'W-1','created_at':'2026-11-24T10:00:00Z','currency':'USD',"
                     "'line_items':[",
                     "{'sku':'A','price':'1.00','quantity':1}", 1000, "]}");
        for (char *c = big; *c; c++)
                if (*c == '\'')
                        *c = '"';
        ACCEPT("web", big, NULL, &o);
        ck_assert_uint_eq(o.line_count, 1000);
        ck_assert_str_eq(o.lines[999].line_id, "1000");
        po_order_release(&o);
        free(big);
        big = repeat("{'id':'W-1','created_at':'2026-11-24T10:00:00Z','currency':'USD',"
                     "'line_items':[",
                     "{'sku':'A','price':'1.00','quantity':1}", 1001, "]}");
        for (char *c = big; *c; c++)
                if (*c == '\'')
                        *c = '"';
        REJECT("web", big, NULL, "OUT_OF_RANGE", "line_items");
        free(big);
        /* At most 20 codes. */
        big = repeat("{'id':'W-1','created_at':'2026-11-24T10:00:00Z','currency':'USD',"
                     "'line_items':[{'sku':'A','price':'1.00','quantity':1}],"
                     "'discount_codes':[",
                     "{'code':'C'}", 20, "]}");
        for (char *c = big; *c; c++)
                if (*c == '\'')
                        *c = '"';
        ACCEPT("web", big, NULL, &o);
        ck_assert_uint_eq(o.code_count, 20);
        po_order_release(&o);
        free(big);
        big = repeat("{'id':'W-1','created_at':'2026-11-24T10:00:00Z','currency':'USD',"
                     "'line_items':[{'sku':'A','price':'1.00','quantity':1}],"
                     "'discount_codes':[",
                     "{'code':'C'}", 21, "]}");
        for (char *c = big; *c; c++)
                if (*c == '\'')
                        *c = '"';
        REJECT("web", big, NULL, "OUT_OF_RANGE", "discount_codes");
        free(big);
}
END_TEST

START_TEST(web_inexact_decimals)
{
        po_order_t o;

        /* JPY has no minor unit: "1.5" yen cannot be exact; "15" and "1.0" can. */
        REJECT("web", WEB1("JPY", "{'sku':'A','price':'1.5','quantity':1}"), NULL,
               "BAD_AMOUNT", "line_items[0].price");
        ACCEPT("web", WEB1("JPY", "{'sku':'A','price':'15','quantity':1}"), NULL, &o);
        ck_assert_int_eq(o.lines[0].unit_price, 15);
        po_order_release(&o);
        ACCEPT("web", WEB1("JPY", "{'sku':'A','price':'1.0','quantity':1}"), NULL, &o);
        ck_assert_int_eq(o.lines[0].unit_price, 1);
        po_order_release(&o);
        /* KWD has 3 decimals: a 4th non-zero one is not exact, a 4th zero is. */
        REJECT("web", WEB1("KWD", "{'sku':'A','price':'1.2345','quantity':1}"), NULL,
               "BAD_AMOUNT", "line_items[0].price");
        ACCEPT("web", WEB1("KWD", "{'sku':'A','price':'1.2340','quantity':1}"), NULL, &o);
        ck_assert_int_eq(o.lines[0].unit_price, 1234);
        po_order_release(&o);
        /* USD: a third decimal. */
        REJECT("web", WEB1("USD", "{'sku':'A','price':'19.995','quantity':1}"), NULL,
               "BAD_AMOUNT", "line_items[0].price");
        REJECT("web", WEB1("USD", "{'sku':'A','price':'1e2','quantity':1}"), NULL,
               "BAD_AMOUNT", "line_items[0].price");
        REJECT("web", WEB1("USD", "{'sku':'A','price':' 1.00','quantity':1}"), NULL,
               "BAD_AMOUNT", "line_items[0].price");
}
END_TEST

START_TEST(web_note_attributes_and_email)
{
        po_order_t o;
        const char *j;

        /* Checkout note attributes become order attributes; numbers are written
         * in decimal, null values are no attribute, and the storefront's own
         * order_name is not overridden by a note of that name. */
        j = J("{'id':'W-1','name':'#7','created_at':'2026-11-24T10:00:00Z',"
              "'currency':'USD','line_items':[{'sku':'A','price':'1.00','quantity':1}],"
              "'note_attributes':[{'name':'purchase_order','value':'PO-7731'},"
              "{'name':'cost_center','value':4411},{'name':'gift_note','value':null},"
              "{'name':'order_name','value':'forged'}]}");
        ACCEPT("web", j, NULL, &o);
        ck_assert_uint_eq(o.attr_count, 3);
        ck_assert_str_eq(attr(&o, "purchase_order"), "PO-7731");
        ck_assert_str_eq(attr(&o, "cost_center"), "4411");
        ck_assert_ptr_null(attr(&o, "gift_note"));
        ck_assert_str_eq(attr(&o, "order_name"), "#7");
        po_order_release(&o);
        /* The same name twice: the last value, as a map would keep it. */
        j = J("{'id':'W-1','created_at':'2026-11-24T10:00:00Z','currency':'USD',"
              "'line_items':[{'sku':'A','price':'1.00','quantity':1}],"
              "'note_attributes':[{'name':'po','value':'1'},{'name':'po','value':'2'}]}");
        ACCEPT("web", j, NULL, &o);
        ck_assert_uint_eq(o.attr_count, 1);
        ck_assert_str_eq(attr(&o, "po"), "2");
        po_order_release(&o);
        REJECT("web",
               J("{'id':'W-1','created_at':'2026-11-24T10:00:00Z','currency':'USD',"
                 "'line_items':[{'sku':'A','price':'1.00','quantity':1}],"
                 "'note_attributes':{'purchase_order':'PO-1'}}"),
               NULL, "BAD_TYPE", "note_attributes");
        REJECT("web",
               J("{'id':'W-1','created_at':'2026-11-24T10:00:00Z','currency':'USD',"
                 "'line_items':[{'sku':'A','price':'1.00','quantity':1}],"
                 "'note_attributes':[{'value':'PO-1'}]}"),
               NULL, "MISSING_FIELD", "note_attributes[0].name");
        REJECT("web",
               J("{'id':'W-1','created_at':'2026-11-24T10:00:00Z','currency':'USD',"
                 "'line_items':[{'sku':'A','price':'1.00','quantity':1}],"
                 "'note_attributes':[{'name':'po','value':['x']}]}"),
               NULL, "BAD_TYPE", "note_attributes[0].value");
        /* No order email: the customer record's is used. */
        j = J("{'id':'W-1','created_at':'2026-11-24T10:00:00Z','currency':'USD',"
              "'email':'','customer':{'id':1,'email':'c@example.com'},"
              "'line_items':[{'sku':'A','price':'1.00','quantity':1}]}");
        ACCEPT("web", j, NULL, &o);
        ck_assert_str_eq(o.customer_email, "c@example.com");
        ck_assert_str_eq(o.customer_id, "1");
        ck_assert_ptr_null(o.customer_tier);
        po_order_release(&o);
        /* Both: the order's wins. */
        j = J("{'id':'W-1','created_at':'2026-11-24T10:00:00Z','currency':'USD',"
              "'email':'o@example.com','customer':{'email':'c@example.com'},"
              "'line_items':[{'sku':'A','price':'1.00','quantity':1}]}");
        ACCEPT("web", j, NULL, &o);
        ck_assert_str_eq(o.customer_email, "o@example.com");
        po_order_release(&o);
}
END_TEST

/* ---- marketplace variations ---- */

#define MKT1(cur, item)                                                                  \
        J("{'AmazonOrderId':'A-1','PurchaseDate':'2026-11-24T10:00:00Z',"                \
          "'OrderTotal':{'CurrencyCode':'%s'},'OrderItems':[%s]}",                       \
          cur, item)
#define MITEM(qty, price)                                                                \
        "{'OrderItemId':7,'SellerSKU':'S','QuantityOrdered':" qty ","                    \
        "'ItemPrice':{'Amount':'" price "'}}"

START_TEST(marketplace_minimal)
{
        po_order_t o;
        po_channel_profile_t usd = {.default_category = "m", .default_currency = "USD"};
        const char *j =
            J("{'AmazonOrderId':'A-1','PurchaseDate':'2026-11-24T10:00:00Z',"
              "'OrderItems':[{'OrderItemId':'I-1','SellerSKU':'S','QuantityOrdered':2,"
              "'ItemPrice':{'Amount':'3.00'}}]}");

        /* No OrderTotal, BuyerInfo, ItemTax, PromotionIds, MarketplaceId: the
         * currency comes from the profile, there is no total to check, the tax
         * rate is 0. */
        ACCEPT("marketplace", j, &usd, &o);
        ck_assert_str_eq(o.currency, "USD");
        ck_assert_int_eq(o.has_customer, 0);
        ck_assert_uint_eq(o.line_count, 1);
        assert_line(&o, 0, "I-1", "S", "m", 150, 2, 0); /* 3.00 for 2 */
        ck_assert_uint_eq(o.code_count, 0);
        ck_assert_uint_eq(o.attr_count, 0);
        po_order_release(&o);
        REJECT("marketplace", j, NULL, "MISSING_FIELD", "OrderTotal.CurrencyCode");
        REJECT("marketplace",
               J("{'AmazonOrderId':'A-1','PurchaseDate':'2026-11-24T10:00:00Z',"
                 "'OrderTotal':'9.99','OrderItems':[]}"),
               NULL, "BAD_TYPE", "OrderTotal");
        REJECT("marketplace",
               J("{'AmazonOrderId':'A-1','PurchaseDate':'2026-11-24T10:00:00Z',"
                 "'OrderTotal':{'CurrencyCode':'USD'},'BuyerInfo':'x','OrderItems':[]}"),
               NULL, "BAD_TYPE", "BuyerInfo");
        REJECT("marketplace", MKT1("USD", ""), NULL, "OUT_OF_RANGE", "OrderItems");
        REJECT("marketplace", MKT1("USD", "{'OrderItemId':7,'QuantityOrdered':1}"), NULL,
               "MISSING_FIELD", "OrderItems[0].SellerSKU");
        REJECT("marketplace",
               MKT1("USD", "{'OrderItemId':7,'SellerSKU':'S','QuantityOrdered':1}"), NULL,
               "MISSING_FIELD", "OrderItems[0].ItemPrice");
        /* The malformed sample's marketplace line, with a currency. */
        REJECT("marketplace",
               J("{'AmazonOrderId':'114-0','PurchaseDate':'2026-11-24T10:00:00Z',"
                 "'OrderTotal':{'CurrencyCode':'USD'},'OrderItems':'not-a-list'}"),
               NULL, "BAD_TYPE", "OrderItems");
}
END_TEST

START_TEST(marketplace_reordered_and_unknown_fields)
{
        size_t len;
        char *p = slurp("marketplace-order.json", &len);
        po_order_t a, b;
        const char *j = J(
            "{'OrderItems': ["
            "   {'PromotionIds': ['FLASH-24'], 'ItemTax': {'Amount': '3.71', "
            "'CurrencyCode':"
            "    'USD'}, 'ItemPrice': {'Amount': '44.97', 'CurrencyCode': 'USD'},"
            "    'QuantityOrdered': 3, 'SellerSKU': 'SKU-3', 'OrderItemId': "
            "'12345678901234',"
            "    'ASIN': 'B00X', 'Title': 'Thing', 'ConditionId': 'New',"
            "    'ShippingPrice': {'CurrencyCode': 'USD', 'Amount': '0.00'}},"
            "   {'ItemTax': {'CurrencyCode': 'USD', 'Amount': '0.80'}, 'PromotionIds': "
            "[],"
            "    'OrderItemId': '12345678901235', 'SellerSKU': 'SKU-9',"
            "    'ItemPrice': {'CurrencyCode': 'USD', 'Amount': '9.99'}, "
            "'QuantityOrdered': 1}],"
            " 'BuyerInfo': {'BuyerName': 'X', 'BuyerEmail': 'x7k2@marketplace.example'},"
            " 'OrderTotal': {'Amount': '59.47', 'CurrencyCode': 'USD'},"
            " 'MarketplaceId': 'ATVPDKIKX0DER', 'SalesChannel': 'Amazon.com',"
            " 'OrderStatus': 'Unshipped', 'PurchaseDate': '2026-11-24T14:58:12Z',"
            " 'AmazonOrderId': '114-3941689-8772232', 'IsPrime': true,"
            " 'ShipmentServiceLevelCategory': 'Standard'}");

        accept_at(__LINE__, "marketplace", p, len, NULL, &a);
        ACCEPT("marketplace", j, NULL, &b);
        assert_orders_equal(&a, &b);
        po_order_release(&a);
        po_order_release(&b);
        free(p);
}
END_TEST

START_TEST(marketplace_split_rates_and_codes)
{
        po_order_t o;
        const char *j;

        /* 10.00 for 3 units does not divide: 1000 = 333 * 3 + 1, so two units
         * at 3.33 and one at 3.34 (the line id gets "#2"); the total stays 10.00
         * (666 + 334). Tax 0.83 on 10.00: rates [82500, 83499] reproduce it,
         * the roundest is 83000. */
        j = MKT1("USD", "{'OrderItemId':7,'SellerSKU':'S','QuantityOrdered':3,"
                        "'ItemPrice':{'CurrencyCode':'USD','Amount':'10.00'},"
                        "'ItemTax':{'Amount':'0.83'}}");
        ACCEPT("marketplace", j, NULL, &o);
        ck_assert_uint_eq(o.line_count, 2);
        assert_line(&o, 0, "7", "S", "uncategorized", 333, 2, 83000);
        assert_line(&o, 1, "7#2", "S", "uncategorized", 334, 1, 83000);
        po_order_release(&o);
        /* 3 units for 10.02: 334 each, no split. */
        ACCEPT("marketplace", MKT1("USD", MITEM("3", "10.02")), NULL, &o);
        ck_assert_uint_eq(o.line_count, 1);
        assert_line(&o, 0, "7", "S", "uncategorized", 334, 3, 0);
        po_order_release(&o);
        /* No rate in 0..100 % turns 1.00 into a tax of 1.01. */
        REJECT("marketplace",
               MKT1("USD", "{'OrderItemId':7,'SellerSKU':'S','QuantityOrdered':1,"
                           "'ItemPrice':{'Amount':'1.00'},'ItemTax':{'Amount':'1.01'}}"),
               NULL, "BAD_AMOUNT", "OrderItems[0]");
        /* One promotion over two items is one code; codes keep first-seen order. */
        j = MKT1("USD", "{'OrderItemId':1,'SellerSKU':'A','QuantityOrdered':1,"
                        "'ItemPrice':{'Amount':'1.00'},'PromotionIds':['P1','P2']},"
                        "{'OrderItemId':2,'SellerSKU':'B','QuantityOrdered':1,"
                        "'ItemPrice':{'Amount':'1.00'},'PromotionIds':['P2','P3']}");
        ACCEPT("marketplace", j, NULL, &o);
        ck_assert_uint_eq(o.code_count, 3);
        ck_assert_str_eq(o.codes[0], "P1");
        ck_assert_str_eq(o.codes[1], "P2");
        ck_assert_str_eq(o.codes[2], "P3");
        po_order_release(&o);
        /* Money in another currency than the order's. */
        REJECT("marketplace",
               MKT1("USD", "{'OrderItemId':7,'SellerSKU':'S','QuantityOrdered':1,"
                           "'ItemPrice':{'CurrencyCode':'EUR','Amount':'1.00'}}"),
               NULL, "BAD_CURRENCY", "OrderItems[0].ItemPrice");
        REJECT("marketplace",
               MKT1("USD", "{'OrderItemId':7,'SellerSKU':'S','QuantityOrdered':1,"
                           "'ItemPrice':{'CurrencyCode':840,'Amount':'1.00'}}"),
               NULL, "BAD_TYPE", "OrderItems[0].ItemPrice");
        /* A business order's purchase-order number is an attribute. */
        j = J(
            "{'AmazonOrderId':'A-1','PurchaseDate':'2026-11-24T10:00:00Z',"
            "'IsBusinessOrder':true,'PurchaseOrderNumber':'PO-55',"
            "'OrderTotal':{'CurrencyCode':'USD'},'OrderItems':[" MITEM("1", "1.00") "]}");
        ACCEPT("marketplace", j, NULL, &o);
        ck_assert_str_eq(attr(&o, "purchase_order"), "PO-55");
        po_order_release(&o);
}
END_TEST

START_TEST(marketplace_unicode_and_inexact)
{
        po_order_t o;

        ACCEPT("marketplace",
               MKT1("EUR",
                    "{'OrderItemId':'ü1','SellerSKU':'Ärmel-☕','QuantityOrdered':1,"
                    "'ItemPrice':{'Amount':'2.50'},'PromotionIds':['Frühling']}"),
               NULL, &o);
        assert_line(&o, 0,
                    "\xc3\xbc"
                    "1",
                    "\xc3\x84rmel-\xe2\x98\x95", "uncategorized", 250, 1, 0);
        ck_assert_str_eq(o.codes[0], "Fr\xc3\xbchling");
        po_order_release(&o);
        REJECT("marketplace", MKT1("JPY", MITEM("1", "1.5")), NULL, "BAD_AMOUNT",
               "OrderItems[0].ItemPrice.Amount");
        REJECT("marketplace", MKT1("KWD", MITEM("1", "1.2345")), NULL, "BAD_AMOUNT",
               "OrderItems[0].ItemPrice.Amount");
        ACCEPT("marketplace", MKT1("KWD", MITEM("1", "1.234")), NULL, &o);
        ck_assert_int_eq(o.lines[0].unit_price, 1234);
        po_order_release(&o);
        REJECT("marketplace",
               MKT1("JPY", "{'OrderItemId':7,'SellerSKU':'S','QuantityOrdered':1,"
                           "'ItemPrice':{'Amount':'100'},'ItemTax':{'Amount':'8.5'}}"),
               NULL, "BAD_AMOUNT", "OrderItems[0].ItemTax.Amount");
}
END_TEST

START_TEST(marketplace_bounds)
{
        po_order_t o;
        char *big;

        /* One unit at 10^10 minor units is the bound, one cent more is over. */
        ACCEPT("marketplace", MKT1("USD", MITEM("1", "100000000.00")), NULL, &o);
        ck_assert_int_eq(o.lines[0].unit_price, 10000000000LL);
        po_order_release(&o);
        REJECT("marketplace", MKT1("USD", MITEM("1", "100000000.01")), NULL,
               "OUT_OF_RANGE", "OrderItems[0].ItemPrice.Amount");
        /* Two units for 2 * 10^10 + 1: one of them would cost 10^10 + 1. */
        ACCEPT("marketplace", MKT1("USD", MITEM("2", "200000000.00")), NULL, &o);
        po_order_release(&o);
        REJECT("marketplace", MKT1("USD", MITEM("2", "200000000.01")), NULL,
               "OUT_OF_RANGE", "OrderItems[0].ItemPrice.Amount");
        ACCEPT("marketplace", MKT1("USD", MITEM("1000000", "10000.00")), NULL, &o);
        ck_assert_int_eq(o.lines[0].quantity, 1000000);
        ck_assert_int_eq(o.lines[0].unit_price, 1);
        po_order_release(&o);
        REJECT("marketplace", MKT1("USD", MITEM("1000001", "10000.00")), NULL,
               "OUT_OF_RANGE", "OrderItems[0].QuantityOrdered");
        REJECT("marketplace", MKT1("USD", MITEM("0", "1.00")), NULL, "OUT_OF_RANGE",
               "OrderItems[0].QuantityOrdered");
        REJECT("marketplace", MKT1("USD", MITEM("1", "10000000000000.01")), NULL,
               "OUT_OF_RANGE", "OrderItems[0].ItemPrice.Amount");
        /* 1000 items of one unit each are 1000 lines; 1001 are too many. */
        big = repeat("{\"AmazonOrderId\":\"A\",\"PurchaseDate\":\"2026-11-24T10:00:00Z\","
                     "\"OrderTotal\":{\"CurrencyCode\":\"USD\"},\"OrderItems\":[",
                     "{\"OrderItemId\":1,\"SellerSKU\":\"S\",\"QuantityOrdered\":1,"
                     "\"ItemPrice\":{\"Amount\":\"1.00\"}}",
                     1000, "]}");
        ACCEPT("marketplace", big, NULL, &o);
        ck_assert_uint_eq(o.line_count, 1000);
        po_order_release(&o);
        free(big);
        big = repeat("{\"AmazonOrderId\":\"A\",\"PurchaseDate\":\"2026-11-24T10:00:00Z\","
                     "\"OrderTotal\":{\"CurrencyCode\":\"USD\"},\"OrderItems\":[",
                     "{\"OrderItemId\":1,\"SellerSKU\":\"S\",\"QuantityOrdered\":1,"
                     "\"ItemPrice\":{\"Amount\":\"1.00\"}}",
                     1001, "]}");
        REJECT("marketplace", big, NULL, "OUT_OF_RANGE", "OrderItems");
        free(big);
        /* 501 items that each split make 1002 lines: the 501st is refused. */
        big = repeat("{\"AmazonOrderId\":\"A\",\"PurchaseDate\":\"2026-11-24T10:00:00Z\","
                     "\"OrderTotal\":{\"CurrencyCode\":\"USD\"},\"OrderItems\":[",
                     "{\"OrderItemId\":1,\"SellerSKU\":\"S\",\"QuantityOrdered\":2,"
                     "\"ItemPrice\":{\"Amount\":\"0.03\"}}",
                     501, "]}");
        REJECT("marketplace", big, NULL, "OUT_OF_RANGE", "OrderItems");
        free(big);
        /* 21 distinct promotions. */
        big = repeat("{\"AmazonOrderId\":\"A\",\"PurchaseDate\":\"2026-11-24T10:00:00Z\","
                     "\"OrderTotal\":{\"CurrencyCode\":\"USD\"},\"OrderItems\":[",
                     "{\"OrderItemId\":1,\"SellerSKU\":\"S\",\"QuantityOrdered\":1,"
                     "\"ItemPrice\":{\"Amount\":\"1.00\"},\"PromotionIds\":[\"P\"]}",
                     21, "]}");
        ACCEPT("marketplace", big, NULL, &o); /* one promotion 21 times is one code */
        ck_assert_uint_eq(o.code_count, 1);
        po_order_release(&o);
        free(big);
        {
                char items[4096];
                size_t at = 0;
                int i;

                for (i = 0; i < 21; i++)
                        at += (size_t)snprintf(
                            items + at, sizeof(items) - at,
                            "%s{'OrderItemId':%d,'SellerSKU':'S','QuantityOrdered':1,"
                            "'ItemPrice':{'Amount':'1.00'},'PromotionIds':['P%d']}",
                            i ? "," : "", i, i);
                REJECT("marketplace", MKT1("USD", items), NULL, "OUT_OF_RANGE",
                       "PromotionIds");
        }
}
END_TEST

START_TEST(marketplace_total_tolerance)
{
        size_t len;
        char *p = slurp("marketplace-order.json", &len), *q;
        po_profiles_t *ps = deploy_profiles();
        const po_channel_profile_t *mkt = po_profiles_lookup(ps, "marketplace", "acct-1");
        po_order_t o;
        char *at = strstr(p, "\"59.47\"");

        /* Items 44.97 + 9.99 and taxes 3.71 + 0.80 make 59.47: the channel's
         * total is checked within [channel marketplace] total_tolerance = 1. */
        ck_assert_int_eq(mkt->total_tolerance, 1);
        ck_assert_ptr_nonnull(at);
        q = at + 5; /* the hundredths digit of "59.47" (at is the quote) */
        *q = '8';   /* 59.48: one cent over */
        accept_at(__LINE__, "marketplace", p, len, mkt, &o);
        po_order_release(&o);
        reject_at(__LINE__, "marketplace", "acct-1", p, len, NULL, "TOTAL_MISMATCH",
                  "OrderTotal.Amount"); /* the built-in default tolerates nothing */
        *q = '6';                       /* 59.46: one cent under */
        accept_at(__LINE__, "marketplace", p, len, mkt, &o);
        po_order_release(&o);
        *q = '9'; /* 59.49: two cents over */
        reject_at(__LINE__, "marketplace", "acct-1", p, len, mkt, "TOTAL_MISMATCH",
                  "OrderTotal.Amount");
        *q = '5'; /* 59.45: two cents under */
        reject_at(__LINE__, "marketplace", "acct-1", p, len, mkt, "TOTAL_MISMATCH",
                  "OrderTotal.Amount");
        *q = '7';
        accept_at(__LINE__, "marketplace", p, len, NULL, &o);
        po_order_release(&o);
        po_profiles_destroy(ps);
        free(p);
}
END_TEST

/* ---- POS variations ---- */

#define POS_H "H|store=1|register=2|txn=3|ts=2026-11-24T10:00:00Z|currency=USD\n"

START_TEST(pos_minimal_and_reordered)
{
        size_t len;
        char *p = slurp("pos-transaction.txt", &len);
        po_order_t a, b;
        po_channel_profile_t eur = {.default_category = "u", .default_currency = "EUR"};
        /* The sample's records in another order, keys in another order, CRLF
         * line ends, a blank line, and keys no adapter knows. */
        const char *j =
            "T|subtotal=2699|tendered=3000\r\n"
            "C|code=WELCOME\r\n"
            "I|taxppm=82500|price=1999|qty=1|sku=SKU-1|desc=Trail shoe\r\n"
            "\r\n"
            "I|qty=2|sku=SKU-4|taxppm=0|price=350\r\n"
            "H|loyalty=silver|customer=c-17|currency=USD|ts=2026-11-24T15:01:02Z|"
            "txn=000088213|register=03|store=0012|cashier=42\r\n";

        accept_at(__LINE__, "pos", p, len, NULL, &a);
        ACCEPT("pos", j, NULL, &b);
        assert_orders_equal(&a, &b);
        po_order_release(&a);
        po_order_release(&b);
        free(p);
        /* No currency, customer, loyalty, codes, total or category. */
        j = "H|store=S|register=R|txn=T|ts=2026-11-24T10:00:00Z\nI|sku=A|qty=3|price=5|"
            "taxppm=0";
        ACCEPT("pos", j, &eur, &a);
        ck_assert_str_eq(a.order_id, "pos:S-R-T");
        ck_assert_str_eq(a.currency, "EUR");
        ck_assert_int_eq(a.has_customer, 0);
        assert_line(&a, 0, "1", "A", "u", 5, 3, 0);
        ck_assert_uint_eq(a.code_count, 0);
        po_order_release(&a);
        REJECT("pos", j, NULL, "MISSING_FIELD", "H.currency");
        /* A category when given; a loyalty tier without a customer id. */
        ACCEPT("pos", POS_H "I|sku=A|qty=1|price=5|taxppm=0|cat=shoes\n", NULL, &a);
        ck_assert_str_eq(a.lines[0].category, "shoes");
        po_order_release(&a);
        ACCEPT("pos",
               "H|store=1|register=2|txn=3|ts=2026-11-24T10:00:00Z|currency=USD|"
               "loyalty=gold\nI|sku=A|qty=1|price=5|taxppm=0\n",
               NULL, &a);
        ck_assert_int_eq(a.has_customer, 1);
        ck_assert_ptr_null(a.customer_id);
        ck_assert_str_eq(a.customer_tier, "gold");
        po_order_release(&a);
        /* The malformed sample's POS line: the empty txn is reported first. */
        REJECT("pos", "H|store=0012|register=03|txn=|ts=yesterday|currency=US", NULL,
               "MISSING_FIELD", "H.txn");
        REJECT("pos",
               "H|store=0012|register=03|txn=1|ts=yesterday|currency=USD\n"
               "I|sku=A|qty=1|price=5|taxppm=0",
               NULL, "BAD_TIMESTAMP", "H.ts");
        REJECT("pos",
               "H|store=0012|register=03|txn=1|ts=2026-11-24T10:00:00Z|currency=US\n"
               "I|sku=A|qty=1|price=5|taxppm=0",
               NULL, "BAD_CURRENCY", "H.currency");
        REJECT("pos", "I|sku=A|qty=1|price=5|taxppm=0\n", NULL, "MISSING_FIELD", "H");
        REJECT("pos", POS_H, NULL, "OUT_OF_RANGE", "lines");
        REJECT("pos", POS_H POS_H "I|sku=A|qty=1|price=5|taxppm=0\n", NULL, "BAD_SYNTAX",
               "H");
        REJECT("pos", POS_H "X|sku=A\n", NULL, "BAD_SYNTAX", "");
        REJECT("pos", POS_H "I|sku=A|qty=1|price=5\n", NULL, "MISSING_FIELD",
               "I[0].taxppm");
        REJECT("pos", POS_H "I|sku=A|qty=1|qty=2|price=5|taxppm=0\n", NULL, "BAD_SYNTAX",
               "I[0].qty");
        REJECT("pos", POS_H "I|sku=A|qty=1|price=5|taxppm=0\nT|subtotal=6\n", NULL,
               "TOTAL_MISMATCH", "T.subtotal");
        REJECT("pos", POS_H "I|sku=A|qty=1|price=5|taxppm=0\nC|promo=X\n", NULL,
               "MISSING_FIELD", "C.code");
}
END_TEST

START_TEST(pos_unicode_and_bounds)
{
        po_order_t o;
        char *big;

        ACCEPT("pos",
               "H|store=Köln|register=2|txn=3|ts=2026-11-24T10:00:00+01:00|currency=EUR|"
               "customer=Zoë\nI|sku=Ärmel-☕|qty=1|price=250|taxppm=190000|cat=Kleidung\n"
               "C|code=Frühling\n",
               NULL, &o);
        ck_assert_str_eq(o.order_id, "pos:K\xc3\xb6ln-2-3");
        ck_assert_str_eq(o.customer_id, "Zo\xc3\xab");
        assert_line(&o, 0, "1", "\xc3\x84rmel-\xe2\x98\x95", "Kleidung", 250, 1, 190000);
        ck_assert_str_eq(o.codes[0], "Fr\xc3\xbchling");
        /* 10:00+01:00 = 09:00Z */
        ck_assert_int_eq(o.placed_at_us, (DAY_2026_11_24 + 32400) * 1000000);
        po_order_release(&o);
        /* Latin-1 bytes are not UTF-8, and could not be an Avro string. */
        REJECT("pos", POS_H "I|sku=\xc4rmel|qty=1|price=5|taxppm=0\n", NULL, "BAD_SYNTAX",
               "");
        reject_at(__LINE__, "pos", "acct-1", POS_H "I|sku=A\0|qty=1|price=5|taxppm=0\n",
                  sizeof(POS_H "I|sku=A\0|qty=1|price=5|taxppm=0\n") - 1, NULL,
                  "BAD_SYNTAX", "");
        /* Prices are minor units: 10^10 is the bound. */
        ACCEPT("pos", POS_H "I|sku=A|qty=1|price=10000000000|taxppm=0\n", NULL, &o);
        ck_assert_int_eq(o.lines[0].unit_price, 10000000000LL);
        po_order_release(&o);
        REJECT("pos", POS_H "I|sku=A|qty=1|price=10000000001|taxppm=0\n", NULL,
               "OUT_OF_RANGE", "I[0].price");
        REJECT("pos", POS_H "I|sku=A|qty=1|price=99999999999999999999|taxppm=0\n", NULL,
               "OUT_OF_RANGE", "I[0].price");
        REJECT("pos", POS_H "I|sku=A|qty=1|price=19.99|taxppm=0\n", NULL, "BAD_AMOUNT",
               "I[0].price");
        REJECT("pos", POS_H "I|sku=A|qty=1|price=-1|taxppm=0\n", NULL, "OUT_OF_RANGE",
               "I[0].price");
        ACCEPT("pos", POS_H "I|sku=A|qty=1000000|price=1|taxppm=1000000\n", NULL, &o);
        ck_assert_int_eq(o.lines[0].quantity, 1000000);
        ck_assert_int_eq(o.lines[0].tax_rate_ppm, 1000000);
        po_order_release(&o);
        REJECT("pos", POS_H "I|sku=A|qty=1000001|price=1|taxppm=0\n", NULL,
               "OUT_OF_RANGE", "I[0].qty");
        REJECT("pos", POS_H "I|sku=A|qty=1|price=1|taxppm=1000001\n", NULL,
               "OUT_OF_RANGE", "I[0].taxppm");
        /* The second item is I[1]. */
        REJECT("pos",
               POS_H "I|sku=A|qty=1|price=1|taxppm=0\nI|sku=B|qty=0|price=1|taxppm=0\n",
               NULL, "OUT_OF_RANGE", "I[1].qty");
        big =
            repeat(POS_H, "I|sku=A|qty=1|price=1|taxppm=0\n", 1000, "T|subtotal=1000\n");
        ACCEPT("pos", big, NULL, &o);
        ck_assert_uint_eq(o.line_count, 1000);
        po_order_release(&o);
        free(big);
        big = repeat(POS_H, "I|sku=A|qty=1|price=1|taxppm=0\n", 1001, "");
        REJECT("pos", big, NULL, "OUT_OF_RANGE", "I");
        free(big);
        big = repeat(POS_H "I|sku=A|qty=1|price=1|taxppm=0\n", "C|code=X\n", 20, "");
        ACCEPT("pos", big, NULL, &o);
        ck_assert_uint_eq(o.code_count, 20);
        po_order_release(&o);
        free(big);
        big = repeat(POS_H "I|sku=A|qty=1|price=1|taxppm=0\n", "C|code=X\n", 21, "");
        REJECT("pos", big, NULL, "OUT_OF_RANGE", "C");
        free(big);
}
END_TEST

/* ---- mobile variations ---- */

#define MOB1(item)                                                                       \
        J("{'order_ref':'M-1','placed_at_ms':1795532400000,"                             \
          "'cart':{'currency':'EUR','items':[%s]}}",                                     \
          item)

START_TEST(mobile_minimal_and_reordered)
{
        size_t len;
        char *p = slurp("mobile-order.json", &len);
        po_order_t a, b;
        const char *j =
            J("{'promo': ['TIER-UP', 'VIP-7K2M'], 'app_version': '5.2.1',"
              " 'cart': {'items': [{'vat_ppm': 70000, 'qty': 1, 'unit_minor': 1250,"
              "  'cat': 'books', 'sku': 'SKU-2', 'title': 'Book'},"
              "  {'qty': 2, 'vat_ppm': 190000, 'sku': 'SKU-5', 'unit_minor': 2999,"
              "  'cat': 'toys'}], 'prices_include_tax': true, 'currency': 'EUR',"
              "  'shipping_minor': 0},"
              " 'user': {'membership': 'platinum', 'uid': 'c-4', 'device': 'ios'},"
              " 'placed_at_ms': 1795532400000, 'order_ref': 'M-2026-000731',"
              " 'schema': 'app.order.v2'}");

        accept_at(__LINE__, "mobile", p, len, NULL, &a);
        ACCEPT("mobile", j, NULL, &b);
        assert_orders_equal(&a, &b);
        po_order_release(&a);
        po_order_release(&b);
        free(p);
        /* No schema, user, promo, vat_ppm, cat, line_id, prices_include_tax. */
        ACCEPT("mobile", MOB1("{'sku':'A','unit_minor':5,'qty':2}"), NULL, &a);
        ck_assert_str_eq(a.order_id, "mobile:M-1");
        ck_assert_int_eq(a.tax_mode, PO_TAX_EXCLUSIVE);
        ck_assert_int_eq(a.has_customer, 0);
        assert_line(&a, 0, "1", "A", "uncategorized", 5, 2, 0);
        ck_assert_uint_eq(a.code_count, 0);
        po_order_release(&a);
        ACCEPT("mobile", MOB1("{'sku':'A','unit_minor':5,'qty':2,'line_id':77}"), NULL,
               &a);
        ck_assert_str_eq(a.lines[0].line_id, "77");
        po_order_release(&a);
        REJECT(
            "mobile",
            J("{'schema':'app.order.v3','order_ref':'M-1','placed_at_ms':1,"
              "'cart':{'currency':'EUR','items':[{'sku':'A','unit_minor':5,'qty':2}]}}"),
            NULL, "BAD_SYNTAX", "schema");
        REJECT("mobile", J("{'order_ref':'M-1','placed_at_ms':1}"), NULL, "MISSING_FIELD",
               "cart");
        REJECT("mobile", J("{'placed_at_ms':1,'cart':{'currency':'EUR','items':[]}}"),
               NULL, "MISSING_FIELD", "order_ref");
        REJECT("mobile", MOB1("{'unit_minor':5,'qty':2}"), NULL, "MISSING_FIELD",
               "cart.items[0].sku");
        REJECT("mobile", MOB1("{'sku':'A','unit_minor':12.5,'qty':2}"), NULL, "BAD_TYPE",
               "cart.items[0].unit_minor");
        REJECT("mobile", MOB1("{'sku':'A','unit_minor':'1250','qty':2}"), NULL,
               "BAD_TYPE", "cart.items[0].unit_minor");
        REJECT(
            "mobile",
            J("{'order_ref':'M-1','placed_at_ms':1795532400000,'promo':[7],"
              "'cart':{'currency':'EUR','items':[{'sku':'A','unit_minor':5,'qty':2}]}}"),
            NULL, "BAD_TYPE", "promo[0]");
        REJECT("mobile",
               J("{'order_ref':'M-1','placed_at_ms':1795532400000,"
                 "'cart':{'currency':'EUR','prices_include_tax':'yes',"
                 "'items':[{'sku':'A','unit_minor':5,'qty':2}]}}"),
               NULL, "BAD_TYPE", "cart.prices_include_tax");
}
END_TEST

START_TEST(mobile_unicode_and_bounds)
{
        po_order_t o;
        const char *j;

        j = J("{'order_ref':'Ж-1','placed_at_ms':0,'user':{'uid':'ユーザー','email':'ü@x."
              "de'},"
              "'cart':{'currency':'JPY','items':[{'sku':'抹茶-1','cat':'お茶',"
              "'unit_minor':1500,'qty':1,'vat_ppm':80000}]},'promo':['夏']}");
        ACCEPT("mobile", j, NULL, &o);
        ck_assert_str_eq(o.external_id, "\xd0\x96-1");
        ck_assert_int_eq(o.placed_at_us, 0);
        ck_assert_str_eq(o.customer_id,
                         "\xe3\x83\xa6\xe3\x83\xbc\xe3\x82\xb6\xe3\x83\xbc");
        ck_assert_str_eq(o.customer_email, "\xc3\xbc@x.de");
        assert_line(&o, 0, "1", "\xe6\x8a\xb9\xe8\x8c\xb6-1", "\xe3\x81\x8a\xe8\x8c\xb6",
                    1500, 1, 80000);
        ck_assert_str_eq(o.codes[0], "\xe5\xa4\x8f");
        po_order_release(&o);
        ACCEPT("mobile",
               MOB1("{'sku':'A','unit_minor':10000000000,'qty':1,"
                    "'vat_ppm':1000000}"),
               NULL, &o);
        ck_assert_int_eq(o.lines[0].unit_price, 10000000000LL);
        ck_assert_int_eq(o.lines[0].tax_rate_ppm, 1000000);
        po_order_release(&o);
        ACCEPT("mobile", MOB1("{'sku':'A','unit_minor':1000000000,'qty':1000000}"), NULL,
               &o); /* 10^9 x 10^6 = 10^15, the largest order value */
        ck_assert_int_eq(o.lines[0].quantity, 1000000);
        po_order_release(&o);
        REJECT("mobile",
               MOB1("{'sku':'A','unit_minor':1000000000,'qty':1000000},"
                    "{'sku':'B','unit_minor':1,'qty':1}"),
               NULL, "OUT_OF_RANGE", "lines");
        REJECT("mobile", MOB1("{'sku':'A','unit_minor':10000000001,'qty':1}"), NULL,
               "OUT_OF_RANGE", "cart.items[0].unit_minor");
        REJECT("mobile", MOB1("{'sku':'A','unit_minor':-1,'qty':1}"), NULL,
               "OUT_OF_RANGE", "cart.items[0].unit_minor");
        REJECT("mobile", MOB1("{'sku':'A','unit_minor':1,'qty':1000001}"), NULL,
               "OUT_OF_RANGE", "cart.items[0].qty");
        REJECT("mobile", MOB1("{'sku':'A','unit_minor':1,'qty':1,'vat_ppm':1000001}"),
               NULL, "OUT_OF_RANGE", "cart.items[0].vat_ppm");
        /* The malformed sample's mobile line: 20 digits do not fit 64 bits. */
        REJECT("mobile", MOB1("{'sku':'A','unit_minor':99999999999999999999,'qty':1}"),
               NULL, "OUT_OF_RANGE", "");
        /* placed_at_ms up to 9999-12-31T23:59:59.999Z */
        ACCEPT("mobile",
               J("{'order_ref':'M-1','placed_at_ms':253402300799999,'cart':{'currency':"
                 "'EUR','items':[{'sku':'A','unit_minor':1,'qty':1}]}}"),
               NULL, &o);
        ck_assert_int_eq(o.placed_at_us, 253402300799999000LL);
        po_order_release(&o);
        REJECT("mobile",
               J("{'order_ref':'M-1','placed_at_ms':253402300800000,'cart':{'currency':"
                 "'EUR','items':[{'sku':'A','unit_minor':1,'qty':1}]}}"),
               NULL, "OUT_OF_RANGE", "placed_at_ms");
        REJECT("mobile",
               J("{'order_ref':'M-1','placed_at_ms':-1,'cart':{'currency':"
                 "'EUR','items':[{'sku':'A','unit_minor':1,'qty':1}]}}"),
               NULL, "OUT_OF_RANGE", "placed_at_ms");
        {
                char *big =
                    repeat("{\"order_ref\":\"M\",\"placed_at_ms\":1,\"cart\":"
                           "{\"currency\":\"EUR\",\"items\":[",
                           "{\"sku\":\"A\",\"unit_minor\":1,\"qty\":1}", 1001, "]}}");

                REJECT("mobile", big, NULL, "OUT_OF_RANGE", "cart.items");
                free(big);
                big = repeat("{\"order_ref\":\"M\",\"placed_at_ms\":1,\"cart\":"
                             "{\"currency\":\"EUR\",\"items\":[{\"sku\":\"A\","
                             "\"unit_minor\":1,\"qty\":1}]},\"promo\":[",
                             "\"X\"", 21, "]}");
                REJECT("mobile", big, NULL, "OUT_OF_RANGE", "promo");
                free(big);
        }
}
END_TEST

/* ---- profiles (deploy/intake-profiles.conf) ---- */

START_TEST(profiles_deploy_file)
{
        po_profiles_t *ps = deploy_profiles();
        const po_channel_profile_t *web = po_profiles_lookup(ps, "web", "shop-1"),
                                   *b2b = po_profiles_lookup(ps, "web", "acme-b2b"),
                                   *pos = po_profiles_lookup(ps, "pos", "store-12"),
                                   *mob = po_profiles_lookup(ps, "mobile", ""),
                                   *other = po_profiles_lookup(ps, "kiosk", "acme-b2b");
        size_t len;
        char *p;
        po_order_t o;
        const char *j;

        /* The file as written: web requires an email; acme-b2b (after [channel
         * web] in the file) inherits that and requires purchase_order; pos
         * requires nothing; mobile a customer; an unknown channel gets
         * [default]. */
        ck_assert_int_eq(web->require_email, 1);
        ck_assert_uint_eq(web->required_attr_count, 0);
        ck_assert_int_eq(b2b->require_email, 1);
        ck_assert_uint_eq(b2b->required_attr_count, 1);
        ck_assert_str_eq(b2b->required_attrs[0], "purchase_order");
        ck_assert_int_eq(pos->require_email, 0);
        ck_assert_int_eq(mob->require_customer, 1);
        ck_assert_int_eq(other->require_email, 0);
        ck_assert_uint_eq(other->required_attr_count, 0);
        ck_assert_str_eq(other->default_category, "uncategorized");

        /* POS without an email (the sample has none): accepted. */
        p = slurp("pos-transaction.txt", &len);
        accept_at(__LINE__, "pos", p, len, pos, &o);
        ck_assert_ptr_null(o.customer_email);
        po_order_release(&o);
        free(p);

        /* Web without an email: the profile's reason and field. */
        j = J("{'id':'W-1','created_at':'2026-11-24T10:00:00Z','currency':'USD',"
              "'customer':{'id':5},'line_items':[{'sku':'A','price':'1.00','quantity':1}]"
              "}");
        ACCEPT("web", j, NULL, &o); /* the built-in default does not mind */
        po_order_release(&o);
        reject_at(__LINE__, "web", "shop-1", j, strlen(j), web, "PROFILE_REQUIREMENT",
                  "customer.email");
        /* An empty email is no email. */
        j = J("{'id':'W-1','created_at':'2026-11-24T10:00:00Z','currency':'USD',"
              "'email':'','line_items':[{'sku':'A','price':'1.00','quantity':1}]}");
        reject_at(__LINE__, "web", "shop-1", j, strlen(j), web, "PROFILE_REQUIREMENT",
                  "customer.email");

        /* acme-b2b: the sample (which has an email) lacks purchase_order... */
        p = slurp("web-shopify-order.json", &len);
        accept_at(__LINE__, "web", p, len, web, &o);
        po_order_release(&o);
        reject_at(__LINE__, "web", "acme-b2b", p, len, b2b, "PROFILE_REQUIREMENT",
                  "purchase_order");
        free(p);
        /* ... and is accepted with it as a note attribute. */
        j = J("{'id':5123456789012,'email':'buyer@acme.example',"
              "'created_at':'2026-11-24T09:58:12-05:00','currency':'USD',"
              "'line_items':[{'id':1,'sku':'SKU-1','price':'19.99','quantity':2,"
              "'tax_lines':[{'rate':0.0825}]}],"
              "'note_attributes':[{'name':'purchase_order','value':'PO-2026-118'}]}");
        {
                po_channel_reject_t rej;

                ck_assert_int_eq(norm_as("web", "acme-b2b", j, strlen(j), &o, &rej, b2b),
                                 PO_OK);
                ck_assert_str_eq(o.account, "acme-b2b");
                ck_assert_str_eq(attr(&o, "purchase_order"), "PO-2026-118");
                po_order_release(&o);
        }
        /* A blank purchase order is none. */
        j = J("{'id':1,'email':'b@acme.example','created_at':'2026-11-24T10:00:00Z',"
              "'currency':'USD','line_items':[{'sku':'A','price':'1.00','quantity':1}],"
              "'note_attributes':[{'name':'purchase_order','value':'  '}]}");
        reject_at(__LINE__, "web", "acme-b2b", j, strlen(j), b2b, "PROFILE_REQUIREMENT",
                  "purchase_order");
        /* With a purchase order but no email: acme-b2b still wants the email. */
        j = J("{'id':1,'created_at':'2026-11-24T10:00:00Z',"
              "'currency':'USD','line_items':[{'sku':'A','price':'1.00','quantity':1}],"
              "'note_attributes':[{'name':'purchase_order','value':'PO-1'}]}");
        reject_at(__LINE__, "web", "acme-b2b", j, strlen(j), b2b, "PROFILE_REQUIREMENT",
                  "customer.email");

        /* Mobile without a user: the profile requires a customer. */
        j = MOB1("{'sku':'A','unit_minor':5,'qty':2}");
        reject_at(__LINE__, "mobile", "", j, strlen(j), mob, "PROFILE_REQUIREMENT",
                  "customer");
        j = J("{'order_ref':'M-1','placed_at_ms':1,'user':{'membership':'gold'},"
              "'cart':{'currency':'EUR','items':[{'sku':'A','unit_minor':5,'qty':2}]}}");
        reject_at(__LINE__, "mobile", "", j, strlen(j), mob, "PROFILE_REQUIREMENT",
                  "customer");
        po_profiles_destroy(ps);
}
END_TEST

START_TEST(profiles_format)
{
        const char *text = "# comment\n"
                           "[default]\n"
                           "default_category = misc\n"
                           "\n"
                           "[account pos/early]\n"
                           "total_tolerance = 7\n"
                           "[channel web]\n"
                           "  require_email = yes  \r\n"
                           "default_currency = EUR\n"
                           "[account web/b2b]\n"
                           "require = purchase_order, cost_center ,\n"
                           "[account pos/late]\n"
                           "require_customer = true\n"
                           "[channel pos]\n"
                           "default_category =\n";
        char err[256];
        po_profiles_t *ps = po_profiles_parse(text, strlen(text), "t", err, sizeof(err));
        const po_channel_profile_t *p;

        ck_assert_msg(ps != NULL, "%s", err);
        p = po_profiles_lookup(ps, "web", "b2b");
        ck_assert_int_eq(p->require_email, 1);         /* from [channel web] */
        ck_assert_str_eq(p->default_currency, "EUR");  /* from [channel web] */
        ck_assert_str_eq(p->default_category, "misc"); /* from [default] */
        ck_assert_uint_eq(p->required_attr_count, 2);
        ck_assert_str_eq(p->required_attrs[0], "purchase_order");
        ck_assert_str_eq(p->required_attrs[1], "cost_center");
        p = po_profiles_lookup(ps, "web", "nobody");
        ck_assert_uint_eq(p->required_attr_count, 0);
        ck_assert_int_eq(p->require_email, 1);
        /* An account section before its channel's starts from [default]... */
        p = po_profiles_lookup(ps, "pos", "early");
        ck_assert_int_eq(p->total_tolerance, 7);
        ck_assert_str_eq(p->default_category, "misc");
        /* ... one after it too, when [channel pos] comes later still. */
        p = po_profiles_lookup(ps, "pos", "late");
        ck_assert_int_eq(p->require_customer, 1);
        ck_assert_str_eq(p->default_category, "misc");
        /* [channel pos] cleared the default category: lines need their own. */
        p = po_profiles_lookup(ps, "pos", "other");
        ck_assert_ptr_null(p->default_category);
        p = po_profiles_lookup(ps, "mobile", NULL);
        ck_assert_str_eq(p->default_category, "misc");
        ck_assert_int_eq(p->require_email, 0);
        po_profiles_destroy(ps);

        /* The built-in defaults. */
        ps = po_profiles_load(NULL, err, sizeof(err));
        ck_assert_ptr_nonnull(ps);
        p = po_profiles_lookup(ps, "web", "x");
        ck_assert_str_eq(p->default_category, "uncategorized");
        ck_assert_ptr_null(p->default_currency);
        ck_assert_int_eq(p->require_email + p->require_customer, 0);
        ck_assert_int_eq(p->total_tolerance, 0);
        po_profiles_destroy(ps);

        /* Errors name the file and line. */
#define BAD_CONF(t, msg)                                                                 \
        do {                                                                             \
                ck_assert_ptr_null(                                                      \
                    po_profiles_parse(t, strlen(t), "t", err, sizeof(err)));             \
                ck_assert_str_eq(err, msg);                                              \
        } while (0)
        BAD_CONF("[channel web]\nrequire_email = maybe\n",
                 "t:2: require_email must be true or false");
        BAD_CONF("[bogus]\n", "t:1: expected [default], [channel <name>] or "
                              "[account <channel>/<account>]");
        BAD_CONF("[channel web]\n[channel web]\n", "t:2: [channel web] appears twice");
        BAD_CONF("[channel web\n", "t:1: unclosed section header");
        BAD_CONF("total_tolerance = -1\n",
                 "t:1: total_tolerance must be 0..1000000 minor units");
        BAD_CONF("total_tolerance = 1.5\n",
                 "t:1: total_tolerance must be 0..1000000 minor units");
        BAD_CONF("default_currency = Usd\n",
                 "t:1: default_currency must be an ISO 4217 code");
        BAD_CONF("require = a,b,c,d,e,f,g,h,i\n", "t:1: at most 8 required attributes");
        BAD_CONF("colour = red\n", "t:1: unknown key \"colour\"");
        BAD_CONF("\n\njust words\n", "t:3: expected key = value");
#undef BAD_CONF
}
END_TEST

/* ---- malformed examples, helpers ---- */

START_TEST(malformed_examples_all_rejected)
{
        size_t len, i = 0, n = 0;
        char *p = slurp("malformed-examples.txt", &len);
        static const char *channels[] = {"web", "marketplace", "pos", "mobile"};
        /* Each line on the channel it is shaped for: the first failing check.
         * Both web lines lack created_at, checked before the lines; the
         * marketplace line has no currency anywhere; the POS line's txn is
         * empty; the mobile line's 20-digit number stops the JSON parser; the
         * last line is truncated. */
        static const struct {
                const char *channel, *reason, *field;
        } want[] = {
            {"web", "MISSING_FIELD", "created_at"},
            {"web", "MISSING_FIELD", "created_at"},
            {"marketplace", "MISSING_FIELD", "OrderTotal.CurrencyCode"},
            {"pos", "MISSING_FIELD", "H.txn"},
            {"mobile", "OUT_OF_RANGE", ""},
            {"web", "BAD_SYNTAX", ""},
        };

        while (i < len) {
                size_t end = i;
                size_t c;

                while (end < len && p[end] != '\n')
                        end++;
                if (end > i && p[i] != '#') {
                        /* Whatever channel it is sent on, it is rejected with a reason.
                         */
                        for (c = 0; c < 4; c++) {
                                po_order_t o;
                                po_channel_reject_t rej;

                                ck_assert_msg(norm(channels[c], p + i, end - i, &o, &rej,
                                                   NULL) == PO_ERR_BAD_INPUT,
                                              "accepted on %s: %.*s", channels[c],
                                              (int)(end - i), p + i);
                                ck_assert_msg(rej.reason[0] && rej.message[0],
                                              "no reason");
                                po_order_release(&o);
                        }
                        ck_assert_uint_lt(n, sizeof(want) / sizeof(want[0]));
                        reject_at(__LINE__, want[n].channel, "acct-1", p + i, end - i,
                                  NULL, want[n].reason, want[n].field);
                        n++;
                }
                i = end + 1;
        }
        ck_assert_uint_eq(n, 6);
        free(p);
}
END_TEST

START_TEST(unknown_channel_and_empty)
{
        REJECT("fax", "{}", NULL, "UNKNOWN_CHANNEL", "channel");
        REJECT("web", "", NULL, "BAD_SYNTAX", "");
        REJECT("web", "[]", NULL, "BAD_SYNTAX", "");
        REJECT("web", "{\"id\":1,\"id\":2}", NULL, "BAD_SYNTAX", ""); /* duplicate key */
        REJECT("pos", "", NULL, "MISSING_FIELD", "H");
        REJECT("mobile", "null", NULL, "BAD_SYNTAX", "");
}
END_TEST

START_TEST(rate_from_tax)
{
        int64_t ppm;

        ck_assert_int_eq(po_channel_rate_from_tax(4497, 371, &ppm), PO_OK);
        ck_assert_int_eq(ppm, 82500);
        ck_assert_int_eq(po_channel_rate_from_tax(1000, 0, &ppm), PO_OK);
        ck_assert_int_eq(ppm, 0);
        ck_assert_int_eq(po_channel_rate_from_tax(0, 0, &ppm), PO_OK);
        ck_assert_int_eq(ppm, 0);
        ck_assert_int_eq(po_channel_rate_from_tax(0, 5, &ppm), PO_ERR_BAD_INPUT);
        ck_assert_int_eq(po_channel_rate_from_tax(100, 101, &ppm), PO_ERR_BAD_INPUT);
        ck_assert_int_eq(po_channel_rate_from_tax(100000, 8875, &ppm), PO_OK);
        ck_assert_int_eq(ppm, 88750);
        /* 999 and 80: [79580, 80580] holds 80000. */
        ck_assert_int_eq(po_channel_rate_from_tax(999, 80, &ppm), PO_OK);
        ck_assert_int_eq(ppm, 80000);
        /* 3 and 1: [166667, 499999]; multiples of 10^5 in it: 200000, 300000,
         * 400000; nearest to 1/3 is 300000. */
        ck_assert_int_eq(po_channel_rate_from_tax(3, 1, &ppm), PO_OK);
        ck_assert_int_eq(ppm, 300000);
        /* 100 %: 1000 and 1000 give [999500, 1000000] -> 1000000. */
        ck_assert_int_eq(po_channel_rate_from_tax(1000, 1000, &ppm), PO_OK);
        ck_assert_int_eq(ppm, 1000000);
        /* Tax far above the amount: refused without overflow. */
        ck_assert_int_eq(po_channel_rate_from_tax(1, 1000000000000000LL, &ppm),
                         PO_ERR_BAD_INPUT);
        ck_assert_int_eq(
            po_channel_rate_from_tax(1000000000000000LL, 1000000000000000LL, &ppm),
            PO_OK);
        ck_assert_int_eq(ppm, 1000000);
        ck_assert_int_eq(po_channel_rate_from_tax(-1, 0, &ppm), PO_ERR_BAD_INPUT);
}
END_TEST

START_TEST(real_text)
{
        char buf[64];

        po_channel_real_text(0.0825, buf, sizeof(buf));
        ck_assert_str_eq(buf, "0.0825");
        po_channel_real_text(0.1, buf, sizeof(buf));
        ck_assert_str_eq(buf, "0.1");
        po_channel_real_text(1.0, buf, sizeof(buf));
        ck_assert_str_eq(buf, "1");
        po_channel_real_text(0.000005, buf, sizeof(buf));
        ck_assert_str_eq(buf, "0.000005");
        po_channel_real_text(0.0000125, buf, sizeof(buf));
        ck_assert_str_eq(buf, "0.0000125");
        po_channel_real_text(1e20, buf, sizeof(buf));
        ck_assert_str_eq(buf, "100000000000000000000");
        po_channel_real_text(0.1 + 0.2, buf, sizeof(buf));
        ck_assert_str_eq(buf, "0.30000000000000004");
}
END_TEST

/* ---- the Avro round trip ---- */

static void roundtrip(po_avro_t *avro, const char *channel, const char *payload,
                      size_t len)
{
        po_order_t a, b;
        po_dynbuf_t out;
        char err[256];

        accept_at(__LINE__, channel, payload, len, NULL, &a);
        po_dynbuf_init(&out, 1 << 20);
        ck_assert_msg(po_order_encode(avro, &a, &out, err, sizeof(err)) == PO_OK,
                      "%s: %s", channel, err);
        po_order_init(&b, 1 << 20);
        ck_assert_msg(po_order_decode(avro, out.data, out.len, &b, err, sizeof(err)) ==
                          PO_OK,
                      "%s: %s", channel, err);
        assert_orders_equal(&a, &b);
        po_order_release(&a);
        po_order_release(&b);
        po_dynbuf_release(&out);
}

START_TEST(avro_roundtrip)
{
        static const struct {
                const char *channel, *file;
        } samples[] = {{"web", "web-shopify-order.json"},
                       {"marketplace", "marketplace-order.json"},
                       {"pos", "pos-transaction.txt"},
                       {"mobile", "mobile-order.json"}};
        char err[256];
        po_avro_t *avro = po_avro_new(err, sizeof(err));
        size_t i, len;
        const char *j;

        ck_assert_msg(avro != NULL, "%s", err);
        for (i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
                char *p = slurp(samples[i].file, &len);

                roundtrip(avro, samples[i].channel, p, len);
                free(p);
        }
        /* Unicode, attributes, a split line, no customer. */
        j = J("{'id':'Ü-1','created_at':'2026-11-24T10:00:00.123456Z','currency':'EUR',"
              "'customer':{'tags':'loyalty:золото'},'line_items':[{'sku':'靴-1',"
              "'price':'12.00','quantity':1}],'note_attributes':[{'name':'名前',"
              "'value':'山田'},{'name':'purchase_order','value':'PO-1'}]}");
        roundtrip(avro, "web", j, strlen(j));
        j = MKT1("USD", "{'OrderItemId':7,'SellerSKU':'S','QuantityOrdered':3,"
                        "'ItemPrice':{'Amount':'10.00'},'ItemTax':{'Amount':'0.83'}}");
        roundtrip(avro, "marketplace", j, strlen(j));
        j = MOB1("{'sku':'A','unit_minor':5,'qty':2}");
        roundtrip(avro, "mobile", j, strlen(j));
        po_avro_destroy(avro);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("channel");
        TCase *tc = tcase_create("adapters");
        SRunner *sr;
        int failed;

        tcase_add_test(tc, web_sample);
        tcase_add_test(tc, marketplace_sample);
        tcase_add_test(tc, pos_sample);
        tcase_add_test(tc, mobile_sample);
        tcase_add_test(tc, web_minimal);
        tcase_add_test(tc, web_reordered_and_unknown_fields);
        tcase_add_test(tc, web_unicode);
        tcase_add_test(tc, web_bounds);
        tcase_add_test(tc, web_inexact_decimals);
        tcase_add_test(tc, web_note_attributes_and_email);
        tcase_add_test(tc, marketplace_minimal);
        tcase_add_test(tc, marketplace_reordered_and_unknown_fields);
        tcase_add_test(tc, marketplace_split_rates_and_codes);
        tcase_add_test(tc, marketplace_unicode_and_inexact);
        tcase_add_test(tc, marketplace_bounds);
        tcase_add_test(tc, marketplace_total_tolerance);
        tcase_add_test(tc, pos_minimal_and_reordered);
        tcase_add_test(tc, pos_unicode_and_bounds);
        tcase_add_test(tc, mobile_minimal_and_reordered);
        tcase_add_test(tc, mobile_unicode_and_bounds);
        tcase_add_test(tc, profiles_deploy_file);
        tcase_add_test(tc, profiles_format);
        tcase_add_test(tc, malformed_examples_all_rejected);
        tcase_add_test(tc, unknown_channel_and_empty);
        tcase_add_test(tc, rate_from_tax);
        tcase_add_test(tc, real_text);
        tcase_add_test(tc, avro_roundtrip);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
