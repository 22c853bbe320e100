/* The read endpoints the UI needs (redemptions of a code, dashboard, usage
 * and audit trails with CSV export, dead letters) and the DLQ replay, which
 * reuses po_dlq (the promo-dlq command's logic). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "po/dlq.h"
#include "po/log.h"

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
#define CSV_MAX_ROWS 100000
#define REPLAY_TIMEOUT_MS 15000

/* ---- CSV ---- */

/* One CSV field (RFC 4180 quoting). A field an office suite would run as a
 * formula (= + - @ first) gets a leading apostrophe. */
static void csv_field(po_dynbuf_t *b, const char *s, int first)
{
        const char *p;
        int formula, quote;

        if (!first)
                po_dynbuf_add(b, ",", 1);
        if (!s)
                return;
        formula =
            s[0] && strchr("=+-@", s[0]) && !(s[0] == '-' && s[1] >= '0' && s[1] <= '9');
        quote = formula || strpbrk(s, ",\"\r\n") != NULL;
        if (!quote) {
                po_dynbuf_add(b, s, strlen(s));
                return;
        }
        po_dynbuf_add(b, formula ? "\"'" : "\"", formula ? 2 : 1);
        for (p = s; *p; p++) {
                if (*p == '"')
                        po_dynbuf_add(b, "\"\"", 2);
                else
                        po_dynbuf_add(b, p, 1);
        }
        po_dynbuf_add(b, "\"", 1);
}

/* The result as CSV: a header of the column names, then the rows. */
static void reply_csv(admin_req_t *r, PGresult *res, const char *name)
{
        int i, j, cols = PQnfields(res);

        po_dynbuf_reset(&r->out);
        for (j = 0; j < cols; j++)
                csv_field(&r->out, PQfname(res, j), j == 0);
        po_dynbuf_add(&r->out, "\r\n", 2);
        for (i = 0; i < PQntuples(res); i++) {
                for (j = 0; j < cols; j++)
                        csv_field(&r->out,
                                  PQgetisnull(res, i, j) ? NULL : PQgetvalue(res, i, j),
                                  j == 0);
                po_dynbuf_add(&r->out, "\r\n", 2);
        }
        r->status = 200;
        r->ctype = "text/csv; charset=utf-8";
        snprintf(r->disposition, sizeof(r->disposition),
                 "attachment; filename=\"%s.csv\"", name);
}

/* ---- helpers ---- */

static json_t *str_or_null(PGresult *res, int i, int j)
{
        return PQgetisnull(res, i, j) ? json_null() : json_string(PQgetvalue(res, i, j));
}

static json_t *int_of(PGresult *res, int i, int j)
{
        return json_integer(PQgetisnull(res, i, j) ? 0 : atoll(PQgetvalue(res, i, j)));
}

static json_t *usage_row(PGresult *res, int i)
{
        static const char *const names[] = {"event_id", "order_id",    "channel",
                                            "account",  "code",        "customer_id",
                                            "outcome",  "reason",      "value_applied",
                                            "currency", "occurred_at", "recorded_at"};
        json_t *o = json_object();
        int j;

        for (j = 0; j < 12; j++)
                json_object_set_new(o, names[j],
                                    j == 8 ? int_of(res, i, j) : str_or_null(res, i, j));
        return o;
}

#define USAGE_COLS                                                                       \
        "event_id, order_id, channel, account, code, customer_id, outcome, reason,"      \
        " value_applied, currency, " TS("occurred_at") " AS occurred_at, " TS(           \
            "recorded_at") " AS recorded_at"

/* A normalized code from a query parameter (NULL when absent). */
static const char *query_code(admin_req_t *r, admin_fields_t *f, const char *name,
                              char *buf, size_t size)
{
        const char *s = admin_query(r, name);
        size_t n;

        if (!s)
                return NULL;
        n = po_code_normalize(s, strlen(s), buf, size);
        if (n >= size || !po_code_is_valid(buf, n)) {
                admin_field(f, name, "must be 3..64 characters of A-Z 0-9 - _");
                return NULL;
        }
        return buf;
}

static const char *query_str(admin_req_t *r, admin_fields_t *f, const char *name)
{
        const char *s = admin_query(r, name);

        if (s && strlen(s) > 200) {
                admin_field(f, name, "at most 200 characters");
                return NULL;
        }
        return s;
}

static int query_csv(admin_req_t *r, admin_fields_t *f)
{
        const char *s = admin_query(r, "format");

        if (s && strcmp(s, "json") != 0 && strcmp(s, "csv") != 0)
                admin_field(f, "format", "must be json or csv");
        return s && strcmp(s, "csv") == 0;
}

/* ---- handlers ---- */

void h_redemptions(admin_req_t *r)
{
        static const char *const allowed[] = {"bucket", "from", "to", NULL};
        char code[PO_PRICING_CODE_MAX + 2];
        const char *bucket = admin_query(r, "bucket"), *from, *to, *p[4];
        size_t n =
            po_code_normalize(r->params[0], strlen(r->params[0]), code, sizeof(code));
        admin_fields_t f;
        PGresult *res = NULL;
        json_t *series;
        int i;

        if (admin_query_check(r, allowed))
                return;
        admin_fields_init(&f);
        if (n >= sizeof(code) || !po_code_is_valid(code, n)) {
                admin_error(r, 404, "not_found", "no code %.64s", r->params[0]);
                goto out;
        }
        if (!bucket)
                bucket = "hour";
        if (strcmp(bucket, "hour") != 0 && strcmp(bucket, "day") != 0)
                admin_field(&f, "bucket", "must be hour or day");
        from = admin_query_time(r, &f, "from");
        to = admin_query_time(r, &f, "to");
        if (admin_fields_count(&f)) {
                admin_error_fields(r, &f, "bad query");
                goto out;
        }
        if (admin_worker_pg(r))
                goto out;
        p[0] = code;
        res = admin_pg(r, "SELECT 1 FROM codes WHERE code = $1", 1, p, NULL);
        if (!res)
                goto out;
        if (PQntuples(res) != 1) {
                admin_error(r, 404, "not_found", "no code %s", code);
                goto out;
        }
        PQclear(res);
        p[1] = bucket;
        p[2] = from;
        p[3] = to;
        /* Default window: 7 days of hours or 90 days of days, up to now. */
        res = admin_pg(
            r,
            "SELECT " TS("date_trunc($2, occurred_at AT TIME ZONE 'UTC') AT TIME ZONE "
                         "'UTC'") " AS t, count(*) FILTER (WHERE outcome = 'applied'),"
                                  " count(*) FILTER (WHERE outcome = 'rejected'),"
                                  " coalesce(sum(value_applied) FILTER (WHERE outcome = "
                                  "'applied'), 0)"
                                  " FROM usage_events WHERE code = $1"
                                  " AND occurred_at >= coalesce($3::timestamptz, now() - "
                                  "CASE $2 WHEN 'hour'"
                                  " THEN interval '7 days' ELSE interval '90 days' END)"
                                  " AND occurred_at < coalesce($4::timestamptz, now() + "
                                  "interval '1 minute')"
                                  " GROUP BY 1 ORDER BY 1 LIMIT 10000",
            4, p, NULL);
        if (!res)
                goto out;
        series = json_array();
        for (i = 0; i < PQntuples(res); i++)
                json_array_append_new(
                    series, json_pack("{s:s, s:o, s:o, s:o}", "t", PQgetvalue(res, i, 0),
                                      "applied", int_of(res, i, 1), "rejected",
                                      int_of(res, i, 2), "discount", int_of(res, i, 3)));
        admin_reply_json(r, 200,
                         json_pack("{s:s, s:s, s:o}", "code", code, "bucket", bucket,
                                   "series", series));
out:
        PQclear(res);
        admin_fields_release(&f);
}

void h_dashboard(admin_req_t *r)
{
        static const char *const allowed[] = {"minutes", NULL};
        admin_fields_t f;
        char mins[24], since[40];
        const char *p[1] = {mins};
        PGresult *res[4] = {NULL, NULL, NULL, NULL};
        json_t *totals, *by, *series, *recent;
        int64_t minutes;
        int i, k;

        if (admin_query_check(r, allowed))
                return;
        admin_fields_init(&f);
        minutes = admin_query_int(r, &f, "minutes", 60, 1, 10080);
        if (admin_fields_count(&f)) {
                admin_error_fields(r, &f, "bad query");
                goto out;
        }
        if (admin_worker_pg(r))
                goto out;
        snprintf(mins, sizeof(mins), "%lld", (long long)minutes);
        admin_fmt_time((admin_now_us() / 1000000 - minutes * 60) * 1000000, since,
                       sizeof(since));
#define SINCE " occurred_at >= now() - make_interval(mins => $1::int)"
#define COUNTS                                                                           \
        " count(*) FILTER (WHERE outcome = 'applied'), count(*) FILTER (WHERE outcome =" \
        " 'rejected'), coalesce(sum(value_applied) FILTER (WHERE outcome = 'applied'), " \
        "0)"
        res[0] =
            admin_pg(r, "SELECT" COUNTS " FROM usage_events WHERE" SINCE, 1, p, NULL);
        res[1] = res[0]
                     ? admin_pg(r,
                                "SELECT channel," COUNTS " FROM usage_events WHERE" SINCE
                                " GROUP BY channel ORDER BY channel",
                                1, p, NULL)
                     : NULL;
        /* Minutes for up to 3 hours, hours beyond. */
        res[2] =
            res[1]
                ? admin_pg(
                      r,
                      "SELECT " TS(
                          "date_trunc(CASE WHEN $1::int <= 180 THEN "
                          "'minute' ELSE 'hour' END, occurred_at AT "
                          "TIME ZONE 'UTC') AT TIME ZONE 'UTC'") ","
                                                                 " channel, count(*) "
                                                                 "FILTER (WHERE outcome "
                                                                 "= 'applied'),"
                                                                 " count(*) FILTER "
                                                                 "(WHERE outcome = "
                                                                 "'rejected')"
                                                                 " FROM usage_events "
                                                                 "WHERE" SINCE
                                                                 " GROUP BY 1, 2 ORDER "
                                                                 "BY 1, 2 LIMIT 20000",
                      1, p, NULL)
                : NULL;
        res[3] = res[2] ? admin_pg(r,
                                   "SELECT " USAGE_COLS " FROM usage_events"
                                   " ORDER BY occurred_at DESC, event_id LIMIT 20",
                                   0, NULL, NULL)
                        : NULL;
        if (!res[3])
                goto out;
        totals = json_pack("{s:o, s:o, s:o}", "applied", int_of(res[0], 0, 0), "rejected",
                           int_of(res[0], 0, 1), "discount", int_of(res[0], 0, 2));
        by = json_array();
        for (i = 0; i < PQntuples(res[1]); i++)
                json_array_append_new(by, json_pack("{s:s, s:o, s:o, s:o}", "channel",
                                                    PQgetvalue(res[1], i, 0), "applied",
                                                    int_of(res[1], i, 1), "rejected",
                                                    int_of(res[1], i, 2), "discount",
                                                    int_of(res[1], i, 3)));
        series = json_array();
        for (i = 0; i < PQntuples(res[2]); i++)
                json_array_append_new(
                    series,
                    json_pack("{s:s, s:s, s:o, s:o}", "t", PQgetvalue(res[2], i, 0),
                              "channel", PQgetvalue(res[2], i, 1), "applied",
                              int_of(res[2], i, 2), "rejected", int_of(res[2], i, 3)));
        recent = json_array();
        for (i = 0; i < PQntuples(res[3]); i++)
                json_array_append_new(recent, usage_row(res[3], i));
        admin_reply_json(r, 200,
                         json_pack("{s:s, s:o, s:o, s:o, s:o}", "since", since, "totals",
                                   totals, "by_channel", by, "series", series, "recent",
                                   recent));
out:
        for (k = 0; k < 4; k++)
                PQclear(res[k]);
        admin_fields_release(&f);
}

/* What every filtered list (usage, audit) does once its six filters are in
 * p[0..5]: the page options, the page's rows (ORDER BY order, with $7 and $8
 * as LIMIT and OFFSET), then either CSV or {"items": [row(...)], "total"}. */
static void reply_page(admin_req_t *r, admin_fields_t *f, int csv, const char **p,
                       const char *cols, const char *from_where, const char *order,
                       const char *csv_name, json_t *(*row)(PGresult *res, int i))
{
        char lim[24], off[24], sql[1400];
        PGresult *res = NULL, *cnt = NULL;
        int64_t limit, offset;
        json_t *items;
        int i;

        limit = admin_query_int(r, f, "limit", csv ? CSV_MAX_ROWS : 50, 1,
                                csv ? CSV_MAX_ROWS : 1000);
        offset = admin_query_int(r, f, "offset", 0, 0, INT32_MAX);
        if (admin_fields_count(f)) {
                admin_error_fields(r, f, "bad query");
                return;
        }
        if (admin_worker_pg(r))
                return;
        snprintf(lim, sizeof(lim), "%lld", (long long)limit);
        snprintf(off, sizeof(off), "%lld", (long long)offset);
        p[6] = lim;
        p[7] = off;
        snprintf(sql, sizeof(sql),
                 "SELECT %s FROM %s ORDER BY %s LIMIT $7::bigint OFFSET $8::bigint", cols,
                 from_where, order);
        res = admin_pg(r, sql, 8, p, NULL);
        if (!res)
                return;
        if (csv) {
                reply_csv(r, res, csv_name);
                goto out;
        }
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", from_where);
        cnt = admin_pg(r, sql, 6, p, NULL);
        if (!cnt)
                goto out;
        items = json_array();
        for (i = 0; i < PQntuples(res); i++)
                json_array_append_new(items, row(res, i));
        admin_reply_json(
            r, 200, json_pack("{s:o, s:o}", "items", items, "total", int_of(cnt, 0, 0)));
out:
        PQclear(res);
        PQclear(cnt);
}

void h_usage(admin_req_t *r)
{
        static const char *const allowed[] = {
            "code", "channel", "outcome", "customer_id", "from",
            "to",   "limit",   "offset",  "format",      NULL};
        static const char from_where[] =
            "usage_events"
            " WHERE ($1::text IS NULL OR code = $1) AND ($2::text IS NULL OR channel = "
            "$2)"
            " AND ($3::text IS NULL OR outcome = $3)"
            " AND ($4::text IS NULL OR customer_id = $4)"
            " AND ($5::timestamptz IS NULL OR occurred_at >= $5::timestamptz)"
            " AND ($6::timestamptz IS NULL OR occurred_at < $6::timestamptz)";
        char code[PO_PRICING_CODE_MAX + 2];
        const char *p[8];
        admin_fields_t f;
        int csv;

        if (admin_query_check(r, allowed))
                return;
        admin_fields_init(&f);
        csv = query_csv(r, &f);
        p[0] = query_code(r, &f, "code", code, sizeof(code));
        p[1] = query_str(r, &f, "channel");
        p[2] = admin_query(r, "outcome");
        if (p[2] && strcmp(p[2], "applied") != 0 && strcmp(p[2], "rejected") != 0)
                admin_field(&f, "outcome", "must be applied or rejected");
        p[3] = query_str(r, &f, "customer_id");
        p[4] = admin_query_time(r, &f, "from");
        p[5] = admin_query_time(r, &f, "to");
        reply_page(r, &f, csv, p, USAGE_COLS, from_where, "occurred_at DESC, event_id",
                   "usage", usage_row);
        admin_fields_release(&f);
}

static json_t *audit_row(PGresult *res, int i)
{
        json_t *before = PQgetisnull(res, i, 5)
                             ? json_null()
                             : json_loads(PQgetvalue(res, i, 5), 0, NULL);
        json_t *after = PQgetisnull(res, i, 6)
                            ? json_null()
                            : json_loads(PQgetvalue(res, i, 6), 0, NULL);

        return json_pack("{s:o, s:s, s:s, s:s, s:s, s:o, s:o, s:s}", "id",
                         int_of(res, i, 0), "actor", PQgetvalue(res, i, 1), "action",
                         PQgetvalue(res, i, 2), "entity", PQgetvalue(res, i, 3),
                         "entity_id", PQgetvalue(res, i, 4), "before",
                         before ? before : json_null(), "after",
                         after ? after : json_null(), "at", PQgetvalue(res, i, 7));
}

void h_audit(admin_req_t *r)
{
        static const char *const allowed[] = {"actor",  "action", "entity", "entity_id",
                                              "from",   "to",     "limit",  "offset",
                                              "format", NULL};
        static const char from_where[] =
            "admin_changes"
            " WHERE ($1::text IS NULL OR actor = $1) AND ($2::text IS NULL OR action = "
            "$2)"
            " AND ($3::text IS NULL OR entity = $3)"
            " AND ($4::text IS NULL OR entity_id = $4)"
            " AND ($5::timestamptz IS NULL OR at >= $5::timestamptz)"
            " AND ($6::timestamptz IS NULL OR at < $6::timestamptz)";
        const char *p[8];
        admin_fields_t f;
        int csv;

        if (admin_query_check(r, allowed))
                return;
        admin_fields_init(&f);
        csv = query_csv(r, &f);
        p[0] = query_str(r, &f, "actor");
        p[1] = query_str(r, &f, "action");
        p[2] = query_str(r, &f, "entity");
        p[3] = query_str(r, &f, "entity_id");
        p[4] = admin_query_time(r, &f, "from");
        p[5] = admin_query_time(r, &f, "to");
        reply_page(r, &f, csv, p,
                   "id, actor, action, entity, entity_id, before::text AS before,"
                   " after::text AS after, to_char(at AT TIME ZONE 'UTC',"
                   " 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS at",
                   from_where, "id DESC", "audit", audit_row);
        admin_fields_release(&f);
}

void h_dlq(admin_req_t *r)
{
        static const char *const allowed[] = {"stage", "limit", "offset", NULL};
        char lim[24], off[24];
        const char *p[3];
        admin_fields_t f;
        PGresult *res = NULL, *cnt = NULL;
        int64_t limit, offset;
        json_t *items;
        int i;

        if (admin_query_check(r, allowed))
                return;
        admin_fields_init(&f);
        p[0] = query_str(r, &f, "stage");
        limit = admin_query_int(r, &f, "limit", 50, 1, 1000);
        offset = admin_query_int(r, &f, "offset", 0, 0, INT32_MAX);
        if (admin_fields_count(&f)) {
                admin_error_fields(r, &f, "bad query");
                goto out;
        }
        if (admin_worker_pg(r))
                goto out;
        snprintf(lim, sizeof(lim), "%lld", (long long)limit);
        snprintf(off, sizeof(off), "%lld", (long long)offset);
        p[1] = lim;
        p[2] = off;
        res =
            admin_pg(r,
                     "SELECT source, stage, reason, error, attempts, priority, " TS(
                         "first_failure_at") ", " TS("last_failure_at") ", "
                                                                        "source_topic,"
                                                                        " " TS("replayed_"
                                                                               "at") " FR"
                                                                                     "OM "
                                                                                     "dea"
                                                                                     "d_"
                                                                                     "let"
                                                                                     "ter"
                                                                                     "s"
                                                                                     " WH"
                                                                                     "ERE"
                                                                                     " $"
                                                                                     "1::"
                                                                                     "tex"
                                                                                     "t "
                                                                                     "IS "
                                                                                     "NUL"
                                                                                     "L "
                                                                                     "OR "
                                                                                     "sta"
                                                                                     "ge "
                                                                                     "= "
                                                                                     "$1"
                                                                                     " OR"
                                                                                     "DER"
                                                                                     " BY"
                                                                                     " pr"
                                                                                     "ior"
                                                                                     "ity"
                                                                                     " DE"
                                                                                     "SC,"
                                                                                     " fi"
                                                                                     "rst"
                                                                                     "_fa"
                                                                                     "ilu"
                                                                                     "re_"
                                                                                     "at "
                                                                                     "NUL"
                                                                                     "LS "
                                                                                     "LAS"
                                                                                     "T, "
                                                                                     "sou"
                                                                                     "rce"
                                                                                     " LI"
                                                                                     "MIT"
                                                                                     " $"
                                                                                     "2::"
                                                                                     "big"
                                                                                     "int"
                                                                                     " OF"
                                                                                     "FSE"
                                                                                     "T "
                                                                                     "$3:"
                                                                                     ":bi"
                                                                                     "gin"
                                                                                     "t",
                     3, p, NULL);
        cnt = res ? admin_pg(r,
                             "SELECT count(*) FROM dead_letters"
                             " WHERE $1::text IS NULL OR stage = $1",
                             1, p, NULL)
                  : NULL;
        if (!cnt)
                goto out;
        items = json_array();
        for (i = 0; i < PQntuples(res); i++)
                json_array_append_new(
                    items,
                    json_pack(
                        "{s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o}", "source",
                        PQgetvalue(res, i, 0), "stage", PQgetvalue(res, i, 1), "reason",
                        PQgetvalue(res, i, 2), "error", PQgetvalue(res, i, 3), "attempts",
                        int_of(res, i, 4), "priority", int_of(res, i, 5),
                        "first_failure_at", str_or_null(res, i, 6), "last_failure_at",
                        str_or_null(res, i, 7), "source_topic", str_or_null(res, i, 8),
                        "replayed_at", str_or_null(res, i, 9)));
        admin_reply_json(
            r, 200, json_pack("{s:o, s:o}", "items", items, "total", int_of(cnt, 0, 0)));
out:
        PQclear(res);
        PQclear(cnt);
        admin_fields_release(&f);
}

/* "<topic>:<partition>:<offset>" -> topic and position. */
static int parse_source(const char *s, char *topic, size_t size, po_dlq_pos_t *pos)
{
        const char *c2 = strrchr(s, ':'), *c1;
        size_t n;

        if (!c2 || c2 == s)
                return -1;
        for (c1 = c2 - 1; c1 > s && *c1 != ':'; c1--)
                ;
        if (*c1 != ':' || c1 == s)
                return -1;
        n = (size_t)(c1 - s);
        if (n >= size)
                return -1;
        memcpy(topic, s, n);
        topic[n] = '\0';
        return po_dlq_topic_valid(topic) && po_dlq_parse_pos(c1 + 1, pos) == PO_OK ? 0
                                                                                   : -1;
}

void h_dlq_replay(admin_req_t *r)
{
        json_t *in = admin_body_json(r), *src, *v;
        char topic[256], errstr[512], before[600];
        const char *k, *p[2];
        po_dlq_pos_t pos;
        po_dlq_select_t sel = {0};
        po_dlq_snapshot_t snap;
        po_dlq_replay_item_t item;
        po_dlq_read_opts_t ro = {0};
        const po_dlq_entry_t *e;
        admin_fields_t f;
        PGresult *res = NULL;
        char *after = NULL;

        po_dlq_snapshot_init(&snap);
        admin_fields_init(&f);
        if (!in)
                goto out;
        json_object_foreach(in, k, v) if (strcmp(k, "source") != 0)
            admin_field(&f, k, "unknown field");
        src = json_object_get(in, "source");
        if (!json_is_string(src) ||
            parse_source(json_string_value(src), topic, sizeof(topic), &pos))
                admin_field(&f, "source", "required: <dlq topic>:<partition>:<offset>");
        if (admin_fields_count(&f)) {
                admin_error_fields(r, &f, "the replay request is not valid");
                goto out;
        }
        if (admin_worker_pg(r) || admin_pg_begin(r))
                goto out;
        p[0] = json_string_value(src);
        p[1] = r->who.name;
        res = admin_pg(
            r,
            "SELECT json_build_object('source', source, 'stage', stage, 'reason',"
            " reason, 'source_topic', source_topic, 'replayed_at', replayed_at)"
            "::text, replayed_at IS NOT NULL FROM dead_letters"
            " WHERE source = $1 FOR UPDATE",
            1, p, NULL);
        if (!res)
                goto fail;
        if (PQntuples(res) != 1) {
                admin_error(r, 404, "not_found", "no dead letter %s", p[0]);
                goto fail;
        }
        if (strcmp(PQgetvalue(res, 0, 1), "t") == 0) {
                admin_error(r, 409, "conflict", "%s was already replayed", p[0]);
                goto fail;
        }
        snprintf(before, sizeof(before), "%s", PQgetvalue(res, 0, 0));
        PQclear(res);
        res = NULL;
        /* The original bytes come from the dead-letter topic, as promo-dlq. */
        sel.at = &pos;
        sel.at_count = 1;
        ro.brokers = r->app->cfg->kafka_brokers;
        ro.topic = topic;
        ro.select = &sel;
        ro.keep_payload = 1;
        ro.timeout_ms = REPLAY_TIMEOUT_MS;
        if (po_dlq_read(r->w->avro, &ro, &snap, errstr, sizeof(errstr))) {
                admin_error(r, 503, "unavailable", "kafka: reading %s: %s", topic,
                            errstr);
                goto fail;
        }
        e = po_dlq_find(&snap, pos);
        if (!e || !e->decoded) {
                admin_error(r, e ? 409 : 404, e ? "conflict" : "not_found",
                            e ? "%s is not a DeadLetter: it cannot be replayed"
                              : "%s is no longer in the topic",
                            p[0]);
                goto fail;
        }
        memset(&item, 0, sizeof(item));
        item.entry = e;
        if (po_dlq_replay(r->app->cfg->kafka_brokers, topic, &item, 1, 0,
                          REPLAY_TIMEOUT_MS, errstr, sizeof(errstr))) {
                admin_error(r, 503, "unavailable", "kafka: replay: %s", errstr);
                goto fail;
        }
        v = json_pack("{s:s, s:s, s:i, s:I}", "source", p[0], "topic", e->dl.source_topic,
                      "partition", (int)item.partition, "offset",
                      (json_int_t)item.offset);
        after = v ? json_dumps(v, JSON_COMPACT) : NULL;
        json_decref(v);
        res = admin_pg(r,
                       "UPDATE dead_letters SET replayed_at = now(), replayed_by = $2"
                       " WHERE source = $1",
                       2, p, NULL);
        if (!res || !after ||
            admin_audit(r, "replay", "dead_letter", p[0], before, after) ||
            admin_pg_commit(r))
                goto fail;
        po_log_info("dead letter %s replayed to %s by %s", p[0], e->dl.source_topic,
                    r->who.name);
        admin_reply_json(r, 200,
                         json_pack("{s:b, s:s, s:i, s:I}", "replayed", 1, "topic",
                                   e->dl.source_topic, "partition", (int)item.partition,
                                   "offset", (json_int_t)item.offset));
        goto out;
fail:
        admin_pg_rollback(r);
out:
        free(after);
        PQclear(res);
        po_dlq_snapshot_release(&snap);
        admin_fields_release(&f);
        json_decref(in);
}
