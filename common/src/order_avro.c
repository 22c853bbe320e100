/* po_order_t <-> schemas/Order.avsc through avro-c's generic values. */
#include "po/order_avro.h"

#include <stdio.h>
#include <string.h>

static int set_str(avro_value_t *rec, const char *name, const char *s)
{
        avro_value_t f;

        return po_avro_get_field(rec, name, &f) || avro_value_set_string(&f, s ? s : "");
}

static int set_long(avro_value_t *rec, const char *name, int64_t v)
{
        avro_value_t f;

        return po_avro_get_field(rec, name, &f) || avro_value_set_long(&f, v);
}

/* A ["null", T] union: branch 1 with a string, or null. */
static int set_opt_str(avro_value_t *rec, const char *name, const char *s)
{
        avro_value_t f, b;

        if (po_avro_get_field(rec, name, &f))
                return -1;
        if (!s)
                return avro_value_set_branch(&f, 0, &b) || avro_value_set_null(&b);
        return avro_value_set_branch(&f, 1, &b) || avro_value_set_string(&b, s);
}

static int set_opt_long(avro_value_t *rec, const char *name, int present, int64_t v)
{
        avro_value_t f, b;

        if (po_avro_get_field(rec, name, &f))
                return -1;
        if (!present)
                return avro_value_set_branch(&f, 0, &b) || avro_value_set_null(&b);
        return avro_value_set_branch(&f, 1, &b) || avro_value_set_long(&b, v);
}

int po_order_avro_fill(avro_value_t *v, const po_order_t *o)
{
        avro_value_t f, b, arr, e;
        size_t i;

        if (set_str(v, "channel", o->channel) || set_str(v, "account", o->account) ||
            set_str(v, "external_id", o->external_id) ||
            set_str(v, "order_id", o->order_id) || set_str(v, "currency", o->currency) ||
            set_long(v, "placed_at", o->placed_at_us) ||
            set_long(v, "received_at", o->received_at_us))
                return -1;
        if (po_avro_get_field(v, "customer", &f))
                return -1;
        if (!o->has_customer) {
                if (avro_value_set_branch(&f, 0, &b) || avro_value_set_null(&b))
                        return -1;
        } else if (avro_value_set_branch(&f, 1, &b) ||
                   set_opt_str(&b, "id", o->customer_id) ||
                   set_opt_str(&b, "tier", o->customer_tier) ||
                   set_opt_str(&b, "email", o->customer_email)) {
                return -1;
        }
        if (po_avro_get_field(v, "tax_mode", &f) ||
            avro_value_set_enum(&f, o->tax_mode == PO_TAX_INCLUSIVE))
                return -1;
        if (po_avro_get_field(v, "lines", &arr))
                return -1;
        for (i = 0; i < o->line_count; i++) {
                const po_order_line_t *l = &o->lines[i];

                if (avro_value_append(&arr, &e, NULL) ||
                    set_str(&e, "line_id", l->line_id) || set_str(&e, "sku", l->sku) ||
                    set_str(&e, "category", l->category) ||
                    set_long(&e, "unit_price", l->unit_price) ||
                    set_long(&e, "quantity", l->quantity) ||
                    set_long(&e, "tax_rate_ppm", l->tax_rate_ppm) ||
                    set_opt_long(&e, "unit_cost", l->has_unit_cost, l->unit_cost))
                        return -1;
        }
        if (po_avro_get_field(v, "requested_codes", &arr))
                return -1;
        for (i = 0; i < o->code_count; i++)
                if (avro_value_append(&arr, &e, NULL) ||
                    avro_value_set_string(&e, o->codes[i]))
                        return -1;
        if (po_avro_get_field(v, "attributes", &arr))
                return -1;
        for (i = 0; i < o->attr_count; i++)
                if (avro_value_add(&arr, o->attrs[i].key, &e, NULL, NULL) ||
                    avro_value_set_string(&e, o->attrs[i].value))
                        return -1;
        return 0;
}

/* A string field as set_str writes it: NULL is "". */
static void wire_str0(po_wire_t *w, const char *s)
{
        po_wire_str(w, s ? s : "", s ? strlen(s) : 0);
}

/* Attribute keys given twice: avro-c's map keeps one entry (the first
 * place, the last value); the generic path writes that. */
static int attrs_repeat(const po_order_t *o)
{
        size_t i, j;

        if (o->attr_count > 64)
                return 1; /* not worth the quadratic check: the generic path */
        for (i = 0; i < o->attr_count; i++)
                for (j = 0; j < i; j++)
                        if (strcmp(o->attrs[i].key, o->attrs[j].key) == 0)
                                return 1;
        return 0;
}

void po_order_wire(po_wire_t *w, const po_order_t *o)
{
        size_t i;

        wire_str0(w, o->channel);
        wire_str0(w, o->account);
        wire_str0(w, o->external_id);
        wire_str0(w, o->order_id);
        po_wire_long(w, o->has_customer != 0);
        if (o->has_customer) {
                po_wire_opt_cstr(w, o->customer_id);
                po_wire_opt_cstr(w, o->customer_tier);
                po_wire_opt_cstr(w, o->customer_email);
        }
        po_wire_cstr_in(w, o->currency, sizeof(o->currency));
        po_wire_long(w, o->tax_mode == PO_TAX_INCLUSIVE);
        po_wire_block(w, o->line_count);
        for (i = 0; i < o->line_count; i++) {
                const po_order_line_t *l = &o->lines[i];

                wire_str0(w, l->line_id);
                wire_str0(w, l->sku);
                wire_str0(w, l->category);
                po_wire_long(w, l->unit_price);
                po_wire_long(w, l->quantity);
                po_wire_long(w, l->tax_rate_ppm);
                po_wire_opt_long(w, l->has_unit_cost, l->unit_cost);
        }
        po_wire_block_end(w);
        po_wire_block(w, o->code_count);
        for (i = 0; i < o->code_count; i++)
                po_wire_cstr(w, o->codes[i]);
        po_wire_block_end(w);
        po_wire_long(w, o->placed_at_us);
        po_wire_long(w, o->received_at_us);
        for (i = 0; i < o->attr_count; i++)
                if (!o->attrs[i].key || !o->attrs[i].value)
                        w->fallback = 1;
        if (w->fallback || attrs_repeat(o)) {
                w->fallback = 1;
                return;
        }
        po_wire_block(w, o->attr_count);
        for (i = 0; i < o->attr_count; i++) {
                po_wire_cstr(w, o->attrs[i].key);
                po_wire_cstr(w, o->attrs[i].value);
        }
        po_wire_block_end(w);
}

/* A string copied into the arena, NUL-terminated. */
const char *po_rd_arena_str(po_rd_t *r, po_arena_t *a, size_t *len)
{
        size_t n;
        const char *s = po_rd_str(r, &n);
        char *c = po_rd_arena_items(r, a, n + 1, 1);

        if (!c)
                return NULL;
        memcpy(c, s, n);
        if (len)
                *len = n;
        return c;
}

void *po_rd_arena_items(po_rd_t *r, po_arena_t *a, size_t n, size_t size)
{
        size_t bytes = (n ? n : 1) * size;
        void *p = r->bail ? NULL : po_arena_alloc(a, bytes);

        if (!p) {
                r->bail = 1;
                return NULL;
        }
        memset(p, 0, bytes);
        return p;
}

const char *po_rd_arena_opt_str(po_rd_t *r, po_arena_t *a)
{
        return po_rd_index(r, 2) ? po_rd_arena_str(r, a, NULL) : NULL;
}

void po_order_wire_read(po_rd_t *r, po_order_t *o, size_t max_lines, size_t max_codes,
                        size_t max_attrs)
{
        po_arena_t *a = &o->arena;
        const char *cur;
        size_t n, i, j;

        o->channel = po_rd_arena_str(r, a, NULL);
        o->account = po_rd_arena_str(r, a, NULL);
        o->external_id = po_rd_arena_str(r, a, NULL);
        o->order_id = po_rd_arena_str(r, a, NULL);
        o->has_customer = po_rd_index(r, 2);
        if (o->has_customer) {
                o->customer_id = po_rd_arena_opt_str(r, a);
                o->customer_tier = po_rd_arena_opt_str(r, a);
                o->customer_email = po_rd_arena_opt_str(r, a);
        }
        cur = po_rd_str(r, &n);
        if (r->bail || n != 3) {
                r->bail = 1;
                return;
        }
        memcpy(o->currency, cur, 3);
        o->currency[3] = '\0';
        o->tax_mode = po_rd_index(r, 2) == 1 ? PO_TAX_INCLUSIVE : PO_TAX_EXCLUSIVE;
        n = po_rd_count(r, max_lines);
        o->lines = po_rd_arena_items(r, a, n, sizeof(*o->lines));
        for (i = 0; i < n && !r->bail; i++) {
                po_order_line_t *l = &o->lines[i];

                l->line_id = po_rd_arena_str(r, a, NULL);
                l->sku = po_rd_arena_str(r, a, NULL);
                l->category = po_rd_arena_str(r, a, NULL);
                l->unit_price = po_rd_long(r);
                l->quantity = po_rd_long(r);
                l->tax_rate_ppm = po_rd_long(r);
                l->has_unit_cost = po_rd_index(r, 2);
                l->unit_cost = l->has_unit_cost ? po_rd_long(r) : 0;
        }
        po_rd_end(r, n);
        o->line_count = n;
        n = po_rd_count(r, max_codes);
        o->codes = po_rd_arena_items(r, a, n, sizeof(*o->codes));
        for (i = 0; i < n && !r->bail; i++)
                o->codes[i] = po_rd_arena_str(r, a, NULL);
        po_rd_end(r, n);
        o->code_count = n;
        o->placed_at_us = po_rd_long(r);
        o->received_at_us = po_rd_long(r);
        /* Keys given twice are one entry for avro-c: checked pairwise, so
         * only for a few (a larger map takes the generic path). */
        n = po_rd_count(r, max_attrs < 64 ? max_attrs : 64);
        o->attrs = po_rd_arena_items(r, a, n, sizeof(*o->attrs));
        for (i = 0; i < n && !r->bail; i++) {
                o->attrs[i].key = po_rd_arena_str(r, a, NULL);
                o->attrs[i].value = po_rd_arena_str(r, a, NULL);
                for (j = 0; j < i && !r->bail; j++)
                        if (strcmp(o->attrs[i].key, o->attrs[j].key) == 0)
                                r->bail = 1;
        }
        po_rd_end(r, n);
        o->attr_count = n;
}

static void order_wire(po_wire_t *w, const void *what)
{
        po_order_wire(w, what);
}

po_err_t po_order_encode(po_avro_t *avro, const po_order_t *o, po_dynbuf_t *out,
                         char *errstr, size_t errstr_size)
{
        avro_value_t v;
        po_err_t err;

        if (po_avro_wire_encode(avro, "Order", PO_ORDER_LAYOUT, order_wire, o, out, &err))
                return err;

        err = po_avro_value_new(avro, "Order", 0, &v);
        if (err) {
                snprintf(errstr, errstr_size, "cannot create an Order value");
                return err;
        }
        if (po_order_avro_fill(&v, o)) {
                snprintf(errstr, errstr_size, "order %s does not fit the schema: %s",
                         o->order_id ? o->order_id : "?", avro_strerror());
                avro_value_decref(&v);
                return PO_ERR_INVALID_ARG;
        }
        err = po_avro_encode(avro, "Order", &v, out, errstr, errstr_size);
        avro_value_decref(&v);
        return err;
}

/* A string field copied into the arena; NULL for a null union branch. */
static int get_str(po_order_t *o, avro_value_t *rec, const char *name, const char **out)
{
        avro_value_t f, b;
        const char *s;
        size_t size;
        int disc;

        *out = NULL;
        if (po_avro_get_field(rec, name, &f))
                return -1;
        if (avro_value_get_type(&f) == AVRO_UNION) {
                if (avro_value_get_discriminant(&f, &disc) ||
                    avro_value_get_current_branch(&f, &b))
                        return -1;
                if (disc == 0)
                        return 0;
                f = b;
        }
        if (avro_value_get_string(&f, &s, &size) || size == 0)
                return -1;
        *out = po_arena_strndup(&o->arena, s, size - 1);
        return *out ? 0 : -1;
}

static int get_long(avro_value_t *rec, const char *name, int *present, int64_t *out)
{
        avro_value_t f, b;
        int disc;

        if (present)
                *present = 0;
        if (po_avro_get_field(rec, name, &f))
                return -1;
        if (avro_value_get_type(&f) == AVRO_UNION) {
                if (avro_value_get_discriminant(&f, &disc) ||
                    avro_value_get_current_branch(&f, &b))
                        return -1;
                if (disc == 0)
                        return 0;
                f = b;
        }
        if (present)
                *present = 1;
        return avro_value_get_long(&f, out);
}

int po_order_avro_read(po_order_t *o, avro_value_t *v)
{
        avro_value_t f, b, e;
        const char *cur = NULL;
        size_t n, i;
        int disc, mode;

        if (get_str(o, v, "channel", &o->channel) ||
            get_str(o, v, "account", &o->account) ||
            get_str(o, v, "external_id", &o->external_id) ||
            get_str(o, v, "order_id", &o->order_id) || get_str(o, v, "currency", &cur) ||
            get_long(v, "placed_at", NULL, &o->placed_at_us) ||
            get_long(v, "received_at", NULL, &o->received_at_us))
                return -1;
        if (strlen(cur) != 3)
                return -1;
        memcpy(o->currency, cur, 4);
        if (po_avro_get_field(v, "customer", &f) ||
            avro_value_get_discriminant(&f, &disc) ||
            avro_value_get_current_branch(&f, &b))
                return -1;
        o->has_customer = disc == 1;
        if (o->has_customer && (get_str(o, &b, "id", &o->customer_id) ||
                                get_str(o, &b, "tier", &o->customer_tier) ||
                                get_str(o, &b, "email", &o->customer_email)))
                return -1;
        if (po_avro_get_field(v, "tax_mode", &f) || avro_value_get_enum(&f, &mode))
                return -1;
        o->tax_mode = mode == 1 ? PO_TAX_INCLUSIVE : PO_TAX_EXCLUSIVE;
        if (po_avro_get_field(v, "lines", &f) || avro_value_get_size(&f, &n))
                return -1;
        o->lines = po_arena_alloc(&o->arena, (n ? n : 1) * sizeof(*o->lines));
        if (!o->lines)
                return -1;
        for (i = 0; i < n; i++) {
                po_order_line_t *l = &o->lines[i];

                if (avro_value_get_by_index(&f, i, &e, NULL) ||
                    get_str(o, &e, "line_id", &l->line_id) ||
                    get_str(o, &e, "sku", &l->sku) ||
                    get_str(o, &e, "category", &l->category) ||
                    get_long(&e, "unit_price", NULL, &l->unit_price) ||
                    get_long(&e, "quantity", NULL, &l->quantity) ||
                    get_long(&e, "tax_rate_ppm", NULL, &l->tax_rate_ppm) ||
                    get_long(&e, "unit_cost", &l->has_unit_cost, &l->unit_cost))
                        return -1;
        }
        o->line_count = n;
        if (po_avro_get_field(v, "requested_codes", &f) || avro_value_get_size(&f, &n))
                return -1;
        o->codes = po_arena_alloc(&o->arena, (n ? n : 1) * sizeof(*o->codes));
        if (!o->codes)
                return -1;
        for (i = 0; i < n; i++) {
                const char *s;
                size_t size;

                if (avro_value_get_by_index(&f, i, &e, NULL) ||
                    avro_value_get_string(&e, &s, &size) || size == 0)
                        return -1;
                o->codes[i] = po_arena_strndup(&o->arena, s, size - 1);
                if (!o->codes[i])
                        return -1;
        }
        o->code_count = n;
        if (po_avro_get_field(v, "attributes", &f) || avro_value_get_size(&f, &n))
                return -1;
        o->attrs = po_arena_alloc(&o->arena, (n ? n : 1) * sizeof(*o->attrs));
        if (!o->attrs)
                return -1;
        for (i = 0; i < n; i++) {
                const char *key, *s;
                size_t size;

                if (avro_value_get_by_index(&f, i, &e, &key) ||
                    avro_value_get_string(&e, &s, &size) || size == 0)
                        return -1;
                o->attrs[i].key = po_arena_strndup(&o->arena, key, strlen(key));
                o->attrs[i].value = po_arena_strndup(&o->arena, s, size - 1);
                if (!o->attrs[i].key || !o->attrs[i].value)
                        return -1;
        }
        o->attr_count = n;
        return 0;
}

static void order_read(po_rd_t *r, void *what)
{
        po_order_wire_read(r, what, SIZE_MAX, SIZE_MAX, SIZE_MAX);
}

po_err_t po_order_decode(po_avro_t *avro, const void *buf, size_t len, po_order_t *o,
                         char *errstr, size_t errstr_size)
{
        po_order_t before = *o;
        avro_value_t v;
        po_err_t err;

        if (po_avro_wire_decode(avro, "Order", PO_ORDER_LAYOUT, order_read, buf, len, o))
                return PO_OK;
        /* The generic path, on the order as the caller gave it (its arena as
         * the direct reader left it). */
        before.arena = o->arena;
        *o = before;
        err = po_avro_decode(avro, "Order", buf, len, &v, errstr, errstr_size);

        if (err)
                return err;
        if (po_order_avro_read(o, &v)) {
                snprintf(errstr, errstr_size, "an Order message did not read back: %s",
                         avro_strerror());
                err = PO_ERR_BAD_INPUT;
        }
        avro_value_decref(&v);
        return err;
}
