/* The admin service on the real stack: every endpoint of docs/openapi.json,
 * with bad input, wrong roles, missing, bad and revoked tokens, conflicts,
 * rate limits, validation results against hand-computed amounts, the
 * publish to promo.codes observed on the topic, and the OpenAPI document
 * compared with the server's route table both ways. Responses are checked
 * for the fields the document marks required. */
#include <arpa/inet.h>
#include <check.h>
#include <sys/prctl.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "po/avro.h"
#include "po/messages.h"
#include "it.h"

#ifndef PROMO_SOURCE_DIR
#define PROMO_SOURCE_DIR "."
#endif

/* The suite's fixture: one admin process and a token per role. */
static struct {
        pid_t pid;
        int port;
        char tok_admin[64], tok_marketer[64], tok_analyst[64], tok_checkout[64],
            tok_rl[64];
        char run[32]; /* unique per run: codes, customers */
        json_t *doc;  /* docs/openapi.json */
        PGconn *pg;
        redisContext *rc;
} fx;

typedef struct resp {
        int status;
        char *body;
        size_t len;
        char retry_after[32];
        char ctype[128];
} resp_t;

static void sleep_ms(long ms)
{
        nanosleep(
            &(struct timespec){.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L},
            NULL);
}

static long long mono_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The value of header name ("\nName:", matched without case). */
static void header(const char *head, const char *name, char *out, size_t size)
{
        const char *p;
        size_t n, len = strlen(name);

        for (p = head; *p && strncasecmp(p, name, len) != 0; p++)
                ;
        if (!*p)
                p = NULL;

        out[0] = '\0';
        if (!p)
                return;
        p += strlen(name);
        while (*p == ' ')
                p++;
        n = strcspn(p, "\r\n");
        snprintf(out, size, "%.*s", (int)(n < size - 1 ? n : size - 1), p);
}

/* One request on its own connection. Returns the status (-1 on failure). */
static int http(int port, const char *method, const char *path, const char *token,
                const char *body, size_t body_len, resp_t *out)
{
        struct sockaddr_in a = {.sin_family = AF_INET};
        char head[1024], *buf = NULL, *sep;
        size_t n = 0, cap = 0;
        ssize_t r;
        int fd = socket(AF_INET, SOCK_STREAM, 0);

        memset(out, 0, sizeof(*out));
        out->status = -1;
        a.sin_port = htons((uint16_t)port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
                close(fd);
                return -1;
        }
        snprintf(head, sizeof(head),
                 "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s%s%s"
                 "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                 method, path, token ? "Authorization: Bearer " : "", token ? token : "",
                 token ? "\r\n" : "", body ? body_len : 0);
        if (send(fd, head, strlen(head), MSG_NOSIGNAL) < 0 ||
            (body && body_len && send(fd, body, body_len, MSG_NOSIGNAL) < 0)) {
                close(fd);
                return -1;
        }
        for (;;) {
                if (cap - n < 65536) {
                        cap = cap ? 2 * cap : 131072;
                        buf = realloc(buf, cap + 1);
                }
                r = recv(fd, buf + n, cap - n, 0);
                if (r <= 0)
                        break;
                n += (size_t)r;
        }
        close(fd);
        if (!buf)
                return -1;
        buf[n] = '\0';
        sep = strstr(buf, "\r\n\r\n");
        if (!sep || sscanf(buf, "HTTP/1.%*d %d", &out->status) != 1) {
                free(buf);
                return -1;
        }
        *sep = '\0';
        header(buf, "\nRetry-After:", out->retry_after, sizeof(out->retry_after));
        header(buf, "\nContent-Type:", out->ctype, sizeof(out->ctype));
        out->len = n - (size_t)(sep + 4 - buf);
        out->body = malloc(out->len + 1);
        memcpy(out->body, sep + 4, out->len);
        out->body[out->len] = '\0';
        free(buf);
        return out->status;
}

/* A request whose answer is JSON; *status gets the HTTP status. */
static json_t *call(const char *method, const char *path, const char *token, int *status,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static json_t *call(const char *method, const char *path, const char *token, int *status,
                    const char *fmt, ...)
{
        char *body = NULL;
        resp_t rs;
        json_t *j;
        va_list ap;

        if (fmt) {
                int n;

                va_start(ap, fmt);
                n = vsnprintf(NULL, 0, fmt, ap);
                va_end(ap);
                body = malloc((size_t)n + 1);
                va_start(ap, fmt);
                vsnprintf(body, (size_t)n + 1, fmt, ap);
                va_end(ap);
        }
        *status = http(fx.port, method, path, token, body, body ? strlen(body) : 0, &rs);
        free(body);
        j = rs.len ? json_loadb(rs.body, rs.len, 0, NULL) : NULL;
        free(rs.body);
        return j;
}

/* ---- OpenAPI: required fields of responses ---- */

static json_t *schema_of(json_t *s)
{
        const char *ref = json_string_value(json_object_get(s, "$ref"));

        if (ref && strncmp(ref, "#/components/schemas/", 21) == 0)
                return json_object_get(
                    json_object_get(json_object_get(fx.doc, "components"), "schemas"),
                    ref + 21);
        return s;
}

/* Asserts v has every field schema marks required, recursively. */
static void conform(json_t *schema, json_t *v, const char *where)
{
        json_t *s = schema_of(schema), *req, *props, *e, *ps;
        const char *k;
        size_t i;

        ck_assert_msg(s != NULL, "%s: no schema", where);
        if (json_is_null(v))
                return;
        if (json_is_array(v) && json_object_get(s, "items")) {
                json_array_foreach(v, i, e)
                    conform(json_object_get(s, "items"), e, where);
                return;
        }
        if (!json_is_object(v))
                return;
        req = json_object_get(s, "required");
        json_array_foreach(req, i, e)
        {
                ck_assert_msg(json_object_get(v, json_string_value(e)) != NULL,
                              "%s: required field %s missing", where,
                              json_string_value(e));
        }
        props = json_object_get(s, "properties");
        json_object_foreach(v, k, e)
        {
                ps = json_object_get(props, k);
                if (ps)
                        conform(ps, e, where);
        }
}

static void conform_to(const char *schema, json_t *v)
{
        char ref[128];
        json_t *s;

        snprintf(ref, sizeof(ref), "#/components/schemas/%s", schema);
        s = json_pack("{s:s}", "$ref", ref);
        conform(s, v, schema);
        json_decref(s);
}

/* ---- fixture ---- */

static void make_token(const char *role, char *out, size_t size)
{
        char cmd[1024];
        FILE *p;

        snprintf(cmd, sizeof(cmd), "'%s/admin' token create --name %s-%s --role %s",
                 getenv("PROMO_BIN_DIR"), role, fx.run, role);
        p = popen(cmd, "r");
        ck_assert(p != NULL);
        ck_assert(fgets(out, (int)size, p) != NULL);
        out[strcspn(out, "\n")] = '\0';
        ck_assert_int_eq(pclose(p), 0);
        ck_assert_int_eq(strncmp(out, "po_", 3), 0);
}

static void setup(void)
{
        char path[512], port_s[16];
        json_error_t je;
        resp_t rs;
        int i;

        snprintf(fx.run, sizeof(fx.run), "T%ld%d", (long)time(NULL) % 1000000,
                 getpid() % 1000);
        snprintf(path, sizeof(path), "%s/docs/openapi.json", PROMO_SOURCE_DIR);
        fx.doc = json_load_file(path, 0, &je);
        ck_assert_msg(fx.doc != NULL, "%s: %s", path, je.text);
        fx.pg =
            PQconnectdb(getenv("PROMO_PG_DSN") ? getenv("PROMO_PG_DSN")
                                               : "host=127.0.0.1 port=55432 dbname=promo "
                                                 "user=promo");
        ck_assert_int_eq(PQstatus(fx.pg), CONNECTION_OK);
        {
                const char *url = getenv("PROMO_REDIS_URL");
                char host[64] = "127.0.0.1";
                int rport = 56379;

                if (url)
                        sscanf(url, "%63[^:]:%d", host, &rport);
                fx.rc = redisConnect(host, rport);
                ck_assert(fx.rc && !fx.rc->err);
        }
        fx.port = it_free_port();
        snprintf(path, sizeof(path), "%s/admin", getenv("PROMO_BIN_DIR"));
        snprintf(port_s, sizeof(port_s), "%d", fx.port);
        fx.pid = fork();
        if (fx.pid < 0) /* no Check call in a child: CK_FORK=no shares its messages */
                ck_abort_msg("fork failed");
        if (fx.pid == 0) {
                /* A test that fails leaves no service behind. */
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                setenv("PROMO_ADMIN_HTTP_PORT", port_s, 1);
                setenv("PROMO_ADMIN_RL_CUSTOMER_MAX", "3", 1);
                setenv("PROMO_ADMIN_RL_TOKEN_MAX", "20", 1);
                setenv("PROMO_ADMIN_TOKEN_CACHE_MS", "500", 1);
                execl(path, path, (char *)NULL);
                _exit(127);
        }
        for (i = 0; i < 200; i++) {
                if (http(fx.port, "GET", "/readyz", NULL, NULL, 0, &rs) == 200) {
                        free(rs.body);
                        break;
                }
                free(rs.body);
                sleep_ms(100);
        }
        ck_assert_msg(i < 200, "admin did not become ready");
        make_token("admin", fx.tok_admin, sizeof(fx.tok_admin));
        make_token("marketer", fx.tok_marketer, sizeof(fx.tok_marketer));
        make_token("analyst", fx.tok_analyst, sizeof(fx.tok_analyst));
        make_token("checkout", fx.tok_checkout, sizeof(fx.tok_checkout));
        make_token("checkout", fx.tok_rl, sizeof(fx.tok_rl));
}

static void teardown(void)
{
        int st = 0, i;

        if (fx.pid > 0) {
                kill(fx.pid, SIGTERM);
                for (i = 0; i < 100 && waitpid(fx.pid, &st, WNOHANG) == 0; i++)
                        sleep_ms(50);
                if (i == 100) {
                        kill(fx.pid, SIGKILL);
                        waitpid(fx.pid, &st, 0);
                }
        }
        /* What the tests wrote behind the pipeline's back goes, so that
         * promo-reconcile still holds on this stack afterwards: usage rows
         * without an event on promo.usage, a Redis counter set by hand. */
        if (fx.pg && PQstatus(fx.pg) == CONNECTION_OK) {
                char q[256];
                PGresult *r;

                snprintf(q, sizeof(q),
                         "DELETE FROM usage_events WHERE event_id IN ('e1-%s', 'e2-%s', "
                         "'e3-%s')",
                         fx.run, fx.run, fx.run);
                r = PQexec(fx.pg, q);
                PQclear(r);
        }
        if (fx.rc && !fx.rc->err) {
                redisReply *rep =
                    redisCommand(fx.rc, "DEL promo:usage:total:LIM-%s", fx.run);

                freeReplyObject(rep);
        }
        json_decref(fx.doc);
        PQfinish(fx.pg);
        redisFree(fx.rc);
}

static char *sql1(const char *q)
{
        PGresult *r = PQexec(fx.pg, q);
        char *v = NULL;

        ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK ||
                          PQresultStatus(r) == PGRES_COMMAND_OK,
                      "%s: %s", q, PQresultErrorMessage(r));
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
                v = strdup(PQgetvalue(r, 0, 0));
        PQclear(r);
        return v;
}

/* ---- the route table and the document ---- */

START_TEST(openapi_matches_routes)
{
        json_t *paths = json_object_get(fx.doc, "paths"), *item, *op;
        const admin_route_t *routes;
        const char *p, *m;
        size_t n, i, documented = 0;
        char method[16];

        routes = admin_routes(&n);
        ck_assert_int_gt(n, 20);
        /* Every route is documented, with the same roles. */
        for (i = 0; i < n; i++) {
                json_t *roles, *e;
                unsigned doc_roles = 0;
                size_t k;

                snprintf(method, sizeof(method), "%s", routes[i].method);
                for (k = 0; method[k]; k++)
                        method[k] = (char)(method[k] - 'A' + 'a');
                op = json_object_get(json_object_get(paths, routes[i].path), method);
                ck_assert_msg(op != NULL, "route %s %s is not in docs/openapi.json",
                              routes[i].method, routes[i].path);
                roles = json_object_get(op, "x-roles");
                json_array_foreach(roles, k, e) doc_roles |=
                    admin_role_parse(json_string_value(e));
                ck_assert_msg(doc_roles == routes[i].roles, "%s %s: roles differ",
                              routes[i].method, routes[i].path);
        }
        /* Every documented operation is a route. */
        json_object_foreach(paths, p, item)
        {
                json_object_foreach(item, m, op)
                {
                        int found = 0;

                        for (i = 0; i < n; i++)
                                if (strcasecmp(routes[i].method, m) == 0 &&
                                    strcmp(routes[i].path, p) == 0)
                                        found = 1;
                        ck_assert_msg(found, "%s %s is documented but not routed", m, p);
                        documented++;
                }
        }
        ck_assert_int_eq(documented, n);
}
END_TEST

/* The live server answers every documented operation (no 404/405). */
START_TEST(openapi_served)
{
        json_t *paths = json_object_get(fx.doc, "paths"), *item, *op;
        const char *p, *m;
        resp_t rs;

        json_object_foreach(paths, p, item)
        {
                json_object_foreach(item, m, op)
                {
                        char path[256], method[16];
                        const char *brace = strchr(p, '{');
                        size_t k;

                        if (brace)
                                snprintf(path, sizeof(path), "%.*s%s%s", (int)(brace - p),
                                         p,
                                         strstr(p, "{file}") ? "index.html"
                                         : strstr(p, "{id}") ? "999999999"
                                                             : "NOSUCHCODE",
                                         strchr(brace, '}') + 1);
                        else
                                snprintf(path, sizeof(path), "%s", p);
                        snprintf(method, sizeof(method), "%s", m);
                        for (k = 0; method[k]; k++)
                                method[k] = (char)(method[k] - 'a' + 'A');
                        http(fx.port, method, path, NULL, NULL, 0, &rs);
                        ck_assert_msg(rs.status != 405, "%s %s -> 405", method, path);
                        if (strncmp(p, "/v1/", 4) == 0 && strcmp(p, "/v1/openapi.json"))
                                ck_assert_msg(rs.status == 401,
                                              "%s %s without token -> %d", method, path,
                                              rs.status);
                        free(rs.body);
                }
        }
        http(fx.port, "PATCH", "/v1/codes", fx.tok_admin, NULL, 0, &rs);
        ck_assert_int_eq(rs.status, 405);
        free(rs.body);
        http(fx.port, "GET", "/v1/nothing", fx.tok_admin, NULL, 0, &rs);
        ck_assert_int_eq(rs.status, 404);
        free(rs.body);
        http(fx.port, "GET", "/v1/openapi.json", NULL, NULL, 0, &rs);
        ck_assert_int_eq(rs.status, 200);
        ck_assert(strstr(rs.body, "\"openapi\"") != NULL);
        free(rs.body);
        http(fx.port, "GET", "/metrics", NULL, NULL, 0, &rs);
        ck_assert_int_eq(rs.status, 200);
        ck_assert(strstr(rs.body, "promo_dependency_up") != NULL);
        free(rs.body);
        http(fx.port, "GET", "/healthz", NULL, NULL, 0, &rs);
        ck_assert_int_eq(rs.status, 200);
        free(rs.body);
        http(fx.port, "GET", "/ui/../../etc/passwd", NULL, NULL, 0, &rs);
        ck_assert_int_eq(rs.status, 404);
        free(rs.body);
        http(fx.port, "GET", "/ui/.hidden", NULL, NULL, 0, &rs);
        ck_assert_int_eq(rs.status, 404);
        free(rs.body);
}
END_TEST

/* ---- auth and tokens ---- */

START_TEST(auth_and_roles)
{
        int st;
        json_t *j;
        resp_t rs;

        j = call("GET", "/v1/me", NULL, &st, NULL);
        ck_assert_int_eq(st, 401);
        ck_assert_str_eq(json_string_value(json_object_get(j, "error")), "unauthorized");
        conform_to("Error", j);
        json_decref(j);
        j = call("GET", "/v1/me", "po_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", &st,
                 NULL);
        ck_assert_int_eq(st, 401);
        json_decref(j);
        j = call("GET", "/v1/me", "garbage", &st, NULL);
        ck_assert_int_eq(st, 401);
        json_decref(j);
        http(fx.port, "GET", "/v1/me", NULL, NULL, 0, &rs);
        free(rs.body);
        j = call("GET", "/v1/me", fx.tok_analyst, &st, NULL);
        ck_assert_int_eq(st, 200);
        conform_to("Me", j);
        ck_assert_str_eq(json_string_value(json_object_get(j, "role")), "analyst");
        json_decref(j);
        /* Roles per route. */
        j = call("POST", "/v1/codes", fx.tok_analyst, &st, "{}");
        ck_assert_int_eq(st, 403);
        ck_assert_str_eq(json_string_value(json_object_get(j, "error")), "forbidden");
        json_decref(j);
        j = call("GET", "/v1/codes", fx.tok_checkout, &st, NULL);
        ck_assert_int_eq(st, 403);
        json_decref(j);
        j = call("POST", "/v1/validate", fx.tok_marketer, &st, "{}");
        ck_assert_int_eq(st, 403);
        json_decref(j);
        j = call("GET", "/v1/tokens", fx.tok_marketer, &st, NULL);
        ck_assert_int_eq(st, 403);
        json_decref(j);
        j = call("POST", "/v1/dlq/replay", fx.tok_analyst, &st, "{}");
        ck_assert_int_eq(st, 403);
        json_decref(j);
        j = call("GET", "/v1/codes", fx.tok_analyst, &st, NULL);
        ck_assert_int_eq(st, 200);
        json_decref(j);
}
END_TEST

START_TEST(tokens_crud_and_revocation)
{
        int st, i;
        json_t *j, *items, *e;
        char tok[64], path[64], q[512], *v;
        long long id;

        j = call("POST", "/v1/tokens", fx.tok_admin, &st,
                 "{\"name\":\"t-%s\",\"role\":\"boss\"}", fx.run);
        ck_assert_int_eq(st, 422);
        conform_to("Error", j);
        ck_assert_str_eq(json_string_value(json_object_get(
                             json_array_get(json_object_get(j, "fields"), 0), "field")),
                         "role");
        json_decref(j);
        j = call("POST", "/v1/tokens", fx.tok_admin, &st,
                 "{\"name\":\"t-%s\",\"role\":\"analyst\",\"x\":1}", fx.run);
        ck_assert_int_eq(st, 422);
        json_decref(j);
        j = call("POST", "/v1/tokens", fx.tok_admin, &st,
                 "{\"name\":\"t-%s\",\"role\":\"analyst\"}", fx.run);
        ck_assert_int_eq(st, 201);
        conform_to("TokenCreated", j);
        snprintf(tok, sizeof(tok), "%s", json_string_value(json_object_get(j, "token")));
        id = json_integer_value(json_object_get(j, "id"));
        json_decref(j);
        /* Stored hashed: the secret is nowhere in the table. */
        snprintf(q, sizeof(q),
                 "SELECT count(*) FROM admin_tokens WHERE token_sha256 = '%s'"
                 " OR name = '%s'",
                 tok, tok);
        v = sql1(q);
        ck_assert_str_eq(v, "0");
        free(v);
        j = call("GET", "/v1/me", tok, &st, NULL);
        ck_assert_int_eq(st, 200);
        json_decref(j);
        j = call("GET", "/v1/tokens", fx.tok_admin, &st, NULL);
        ck_assert_int_eq(st, 200);
        conform_to("TokenList", j);
        items = json_object_get(j, "items");
        ck_assert_int_gt(json_array_size(items), 3);
        json_array_foreach(items, i, e)
            ck_assert(json_object_get(e, "token") == NULL &&
                      json_object_get(e, "token_sha256") == NULL);
        json_decref(j);
        /* Revoked through the API: refused at once. */
        snprintf(path, sizeof(path), "/v1/tokens/%lld", id);
        j = call("DELETE", path, fx.tok_admin, &st, NULL);
        ck_assert_int_eq(st, 204);
        json_decref(j);
        j = call("GET", "/v1/me", tok, &st, NULL);
        ck_assert_int_eq(st, 401);
        json_decref(j);
        j = call("DELETE", path, fx.tok_admin, &st, NULL);
        ck_assert_int_eq(st, 404);
        json_decref(j);
        /* Audited: who created and revoked it. */
        snprintf(q, sizeof(q),
                 "SELECT string_agg(action || ':' || actor, ',' ORDER BY id) FROM "
                 "admin_changes"
                 " WHERE entity = 'token' AND entity_id = '%lld'",
                 id);
        v = sql1(q);
        snprintf(q, sizeof(q), "create:admin-%s,revoke:admin-%s", fx.run, fx.run);
        ck_assert_str_eq(v, q);
        free(v);
        /* Revoked by another process (straight in the table): refused within
         * the cache time (500 ms here). */
        j = call("POST", "/v1/tokens", fx.tok_admin, &st,
                 "{\"name\":\"t2-%s\",\"role\":\"analyst\"}", fx.run);
        snprintf(tok, sizeof(tok), "%s", json_string_value(json_object_get(j, "token")));
        id = json_integer_value(json_object_get(j, "id"));
        json_decref(j);
        j = call("GET", "/v1/me", tok, &st, NULL);
        ck_assert_int_eq(st, 200);
        json_decref(j);
        snprintf(q, sizeof(q),
                 "UPDATE admin_tokens SET revoked_at = now() WHERE id = %lld", id);
        free(sql1(q));
        sleep_ms(700);
        j = call("GET", "/v1/me", tok, &st, NULL);
        ck_assert_int_eq(st, 401);
        json_decref(j);
}
END_TEST

/* ---- codes ---- */

#define create(token, st, fmt, code) call("POST", "/v1/codes", token, st, fmt, code)

START_TEST(codes_crud)
{
        char code[64], path[128], q[512], *v;
        int st;
        json_t *j, *f;
        long long ver;

        snprintf(code, sizeof(code), "CRUD-%s", fx.run);
        j = create(
            fx.tok_marketer, &st,
            "{\"code\":\" %s \",\"type\":\"percentage\",\"value\":1500,"
            "\"description\":\"spring sale\",\"channels\":[\"web\",\"pos\"],"
            "\"min_spend\":1000,\"currency\":\"EUR\",\"usage_limit\":100,"
            "\"per_customer_limit\":2,\"tiers\":[\"gold\"],\"tier_values\":{\"gold\":"
            "2000},\"targets\":{\"categories\":[\"shoes\"],\"low_stock_max\":5,"
            "\"max_margin_bp\":4000},\"combinable\":true,\"priority\":3,"
            "\"timezone\":\"Europe/Paris\",\"starts_at_local\":\"2026-03-29T01:30\","
            "\"expires_at_local\":\"2026-10-25T02:30\"}",
            code);
        ck_assert_int_eq(st, 201);
        conform_to("Code", j);
        ck_assert_str_eq(json_string_value(json_object_get(j, "code")), code);
        /* 01:30 CET = 00:30Z; 02:30 on the fall-back night is ambiguous:
         * the earlier instant, 02:30 CEST = 00:30Z. */
        ck_assert_str_eq(json_string_value(json_object_get(j, "starts_at")),
                         "2026-03-29T00:30:00Z");
        ck_assert_str_eq(json_string_value(json_object_get(j, "expires_at")),
                         "2026-10-25T00:30:00Z");
        ck_assert_str_eq(json_string_value(json_object_get(j, "timezone")),
                         "Europe/Paris");
        ck_assert_int_eq(json_integer_value(
                             json_object_get(json_object_get(j, "tier_values"), "gold")),
                         2000);
        snprintf(q, sizeof(q), "marketer-%s", fx.run);
        ck_assert_str_eq(json_string_value(json_object_get(j, "created_by")), q);
        ver = json_integer_value(json_object_get(j, "version"));
        json_decref(j);
        /* Exists: 409. */
        j = create(fx.tok_marketer, &st,
                   "{\"code\":\"%s\",\"type\":\"fixed\",\"value\":5,"
                   "\"currency\":\"EUR\"}",
                   code);
        ck_assert_int_eq(st, 409);
        ck_assert_str_eq(json_string_value(json_object_get(j, "error")), "conflict");
        json_decref(j);
        /* Field errors. */
        j = create(
            fx.tok_marketer, &st,
            "{\"code\":\"%s\",\"type\":\"percentage\",\"value\":10001,\"bogus\":1,"
            "\"max_discount\":5,\"starts_at\":\"yesterday\",\"timezone\":\"Mars/Base\"}",
            "ab");
        ck_assert_int_eq(st, 422);
        conform_to("Error", j);
        f = json_object_get(j, "fields");
        {
                const char *want[] = {"bogus", "code", "value", "currency", "timezone"};
                size_t k, i;
                json_t *e;

                for (k = 0; k < sizeof(want) / sizeof(want[0]); k++) {
                        int found = 0;

                        json_array_foreach(f, i, e) found |=
                            strcmp(json_string_value(json_object_get(e, "field")),
                                   want[k]) == 0;
                        ck_assert_msg(found, "no field error for %s", want[k]);
                }
        }
        json_decref(j);
        j = create(fx.tok_marketer, &st,
                   "{\"code\":\"%s\",\"type\":\"percentage\",\"value\":1,\"timezone\":"
                   "\"Europe/Paris\",\"starts_at_local\":\"2026-03-29T02:30\"}",
                   "GAPCODE");
        ck_assert_int_eq(st, 422);
        ck_assert_str_eq(json_string_value(json_object_get(
                             json_array_get(json_object_get(j, "fields"), 0), "field")),
                         "starts_at_local");
        json_decref(j);
        j = call("POST", "/v1/codes", fx.tok_marketer, &st, "[1,2]");
        ck_assert_int_eq(st, 400);
        ck_assert_str_eq(json_string_value(json_object_get(j, "error")), "bad_json");
        json_decref(j);
        j = call("POST", "/v1/codes", fx.tok_marketer, &st, "{\"code\":");
        ck_assert_int_eq(st, 400);
        json_decref(j);
        /* Read, with stats. */
        snprintf(path, sizeof(path), "/v1/codes/%s", code);
        j = call("GET", path, fx.tok_analyst, &st, NULL);
        ck_assert_int_eq(st, 200);
        conform_to("Code", j);
        ck_assert(json_object_get(j, "stats") != NULL);
        ck_assert_str_eq(json_string_value(json_object_get(j, "description")),
                         "spring sale");
        json_decref(j);
        j = call("GET", "/v1/codes/NOPE-NOT-THERE", fx.tok_analyst, &st, NULL);
        ck_assert_int_eq(st, 404);
        json_decref(j);
        /* List with search and filters. */
        snprintf(path, sizeof(path), "/v1/codes?q=crud-%s&status=active&channel=web",
                 fx.run);
        j = call("GET", path, fx.tok_analyst, &st, NULL);
        ck_assert_int_eq(st, 200);
        conform_to("CodeList", j);
        ck_assert_int_eq(json_integer_value(json_object_get(j, "total")), 1);
        json_decref(j);
        snprintf(path, sizeof(path), "/v1/codes?q=%s&channel=mobile", fx.run);
        j = call("GET", path, fx.tok_analyst, &st, NULL);
        ck_assert_int_eq(json_integer_value(json_object_get(j, "total")), 0);
        json_decref(j);
        j = call("GET", "/v1/codes?q=spring%20sale&type=percentage&limit=1",
                 fx.tok_analyst, &st, NULL);
        ck_assert_int_eq(st, 200);
        ck_assert_int_ge(json_integer_value(json_object_get(j, "total")), 1);
        ck_assert_int_le(json_array_size(json_object_get(j, "items")), 1);
        json_decref(j);
        j = call("GET", "/v1/codes?limit=0", fx.tok_analyst, &st, NULL);
        ck_assert_int_eq(st, 422);
        json_decref(j);
        j = call("GET", "/v1/codes?sort=x", fx.tok_analyst, &st, NULL);
        ck_assert_int_eq(st, 422);
        json_decref(j);
        /* Update: optimistic version. */
        snprintf(path, sizeof(path), "/v1/codes/%s", code);
        j = call(
            "PUT", path, fx.tok_marketer, &st,
            "{\"type\":\"fixed\",\"value\":700,\"currency\":\"EUR\",\"version\":%lld}",
            ver - 1);
        ck_assert_int_eq(st, 409);
        json_decref(j);
        j = call("PUT", path, fx.tok_marketer, &st,
                 "{\"type\":\"fixed\",\"value\":700,\"currency\":\"EUR\"}");
        ck_assert_int_eq(st, 422);
        json_decref(j);
        j = call(
            "PUT", path, fx.tok_marketer, &st,
            "{\"code\":\"OTHER\",\"type\":\"fixed\",\"value\":700,\"currency\":\"EUR\","
            "\"version\":%lld}",
            ver);
        ck_assert_int_eq(st, 422);
        json_decref(j);
        j = call("PUT", path, fx.tok_marketer, &st,
                 "{\"type\":\"fixed\",\"value\":700,\"currency\":\"EUR\",\"description\":"
                 "\"flat\",\"version\":%lld}",
                 ver);
        ck_assert_int_eq(st, 200);
        conform_to("Code", j);
        ck_assert_int_gt(json_integer_value(json_object_get(j, "version")), ver);
        ck_assert_int_eq(json_integer_value(json_object_get(j, "value")), 700);
        ck_assert(json_object_get(j, "channels") == NULL);
        json_decref(j);
        /* Pause, resume, archive. */
        snprintf(path, sizeof(path), "/v1/codes/%s/pause", code);
        j = call("POST", path, fx.tok_marketer, &st, NULL);
        ck_assert_int_eq(st, 200);
        ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "paused");
        json_decref(j);
        snprintf(path, sizeof(path), "/v1/codes/%s/resume", code);
        j = call("POST", path, fx.tok_marketer, &st, NULL);
        ck_assert_int_eq(st, 200);
        ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "active");
        json_decref(j);
        snprintf(path, sizeof(path), "/v1/codes/%s/archive", code);
        j = call("POST", path, fx.tok_admin, &st, NULL);
        ck_assert_int_eq(st, 200);
        ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "archived");
        json_decref(j);
        snprintf(path, sizeof(path), "/v1/codes/%s/resume", code);
        j = call("POST", path, fx.tok_marketer, &st, NULL);
        ck_assert_int_eq(st, 409);
        json_decref(j);
        j = call("POST", "/v1/codes/NOPE-NOT-THERE/pause", fx.tok_marketer, &st, NULL);
        ck_assert_int_eq(st, 404);
        json_decref(j);
        /* Every change audited with actor, before and after. */
        snprintf(q, sizeof(q),
                 "SELECT string_agg(action || ':' || (before IS NOT NULL)::text || ':' ||"
                 " (after->>'status'), ',' ORDER BY id) FROM admin_changes"
                 " WHERE entity = 'code' AND entity_id = '%s'",
                 code);
        v = sql1(q);
        ck_assert_str_eq(v, "create:false:active,update:true:active,pause:true:paused,"
                            "resume:true:active,archive:true:archived");
        free(v);
        snprintf(path, sizeof(path), "/v1/audit?entity=code&entity_id=%s", code);
        j = call("GET", path, fx.tok_analyst, &st, NULL);
        ck_assert_int_eq(st, 200);
        conform_to("AuditList", j);
        ck_assert_int_eq(json_integer_value(json_object_get(j, "total")), 5);
        json_decref(j);
        {
                resp_t rs;

                snprintf(path, sizeof(path), "/v1/audit?entity_id=%s&format=csv", code);
                http(fx.port, "GET", path, fx.tok_analyst, NULL, 0, &rs);
                ck_assert_int_eq(rs.status, 200);
                ck_assert(strncmp(rs.ctype, "text/csv", 8) == 0);
                ck_assert(strncmp(rs.body,
                                  "id,actor,action,entity,entity_id,before,after,at",
                                  48) == 0);
                ck_assert(strstr(rs.body, "archive") != NULL);
                free(rs.body);
        }
}
END_TEST

/* promo.codes carries the definition (key = code) and Redis has it. */
START_TEST(codes_published)
{
        char code[64], errstr[512], key[128];
        rd_kafka_conf_t *c = rd_kafka_conf_new();
        rd_kafka_t *rk;
        rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(3);
        po_avro_t *avro = po_avro_new(errstr, sizeof(errstr));
        int p, st, found = 0;
        json_t *j;
        long long ver, deadline;
        redisReply *rep;

        snprintf(code, sizeof(code), "PUB-%s", fx.run);
        rd_kafka_conf_set(c, "bootstrap.servers",
                          getenv("PROMO_KAFKA_BROKERS") ? getenv("PROMO_KAFKA_BROKERS")
                                                        : "127.0.0.1:59092",
                          errstr, sizeof(errstr));
        rd_kafka_conf_set(c, "group.id", "check-admin", errstr, sizeof(errstr));
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, errstr, sizeof(errstr));
        ck_assert(rk != NULL);
        for (p = 0; p < 3; p++) {
                int64_t lo, hi;

                ck_assert_int_eq(rd_kafka_query_watermark_offsets(rk, "promo.codes", p,
                                                                  &lo, &hi, 5000),
                                 0);
                rd_kafka_topic_partition_list_add(parts, "promo.codes", p)->offset = hi;
        }
        rd_kafka_assign(rk, parts);
        j = create(
            fx.tok_marketer, &st,
            "{\"code\":\"%s\",\"type\":\"fixed\",\"value\":250,\"currency\":\"USD\"}",
            code);
        ck_assert_int_eq(st, 201);
        ver = json_integer_value(json_object_get(j, "version"));
        json_decref(j);
        /* In Redis before the response. */
        snprintf(key, sizeof(key), "promo:code:%s", code);
        rep = redisCommand(fx.rc, "HGET %s v", key);
        ck_assert(rep && rep->type == REDIS_REPLY_STRING);
        ck_assert_int_eq(atoll(rep->str), ver);
        freeReplyObject(rep);
        deadline = mono_us() + 10000000;
        while (!found && mono_us() < deadline) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
                po_arena_t arena;
                po_codedef_t cd;

                if (!m)
                        continue;
                if (!m->err && m->key_len == strlen(code) &&
                    memcmp(m->key, code, m->key_len) == 0) {
                        po_arena_init(&arena, 1 << 20);
                        ck_assert_int_eq(po_codedef_decode(avro, m->payload, m->len,
                                                           &arena, &cd, errstr,
                                                           sizeof(errstr)),
                                         0);
                        ck_assert_str_eq(cd.def.code, code);
                        ck_assert_int_eq(cd.def.value, 250);
                        ck_assert_int_eq(cd.def.type, PO_CODE_FIXED);
                        ck_assert_int_eq(cd.version, ver);
                        po_arena_release(&arena);
                        found = 1;
                }
                rd_kafka_message_destroy(m);
        }
        ck_assert_msg(found, "%s not seen on promo.codes", code);
        rd_kafka_topic_partition_list_destroy(parts);
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        po_avro_destroy(avro);
}
END_TEST

/* ---- validate ---- */

static const char cart_fmt[] =
    "{\"currency\":\"USD\",\"channel\":\"web\",%s\"lines\":[{\"id\":\"l1\",\"sku\":\"%"
    "s\","
    "\"category\":\"shoes\",\"unit_price\":1999,\"quantity\":2,\"tax_rate_ppm\":82500}],"
    "\"codes\":[%s],\"now\":\"2026-11-24T10:00:00Z\"}";

START_TEST(validate_prices_like_the_spec)
{
        char c10[64], cfix[64], cust[96], codes[400], sku[64], q[512], cart[2048];
        int st;
        json_t *j, *e;
        redisReply *rep;

        snprintf(c10, sizeof(c10), "SAVE10-%s", fx.run);
        snprintf(cfix, sizeof(cfix), "FIX-%s", fx.run);
        snprintf(sku, sizeof(sku), "SKU-%s", fx.run);
        snprintf(cust, sizeof(cust), "\"customer\":{\"id\":\"vc-%s\"},", fx.run);
        json_decref(create(fx.tok_marketer, &st,
                           "{\"code\":\"%s\",\"type\":\"percentage\",\"value\":1000}",
                           c10));
        ck_assert_int_eq(st, 201);
        json_decref(
            create(fx.tok_marketer, &st,
                   "{\"code\":\"%s\",\"type\":\"fixed\",\"value\":500,\"currency\":"
                   "\"USD\",\"min_spend\":5000}",
                   cfix));
        ck_assert_int_eq(st, 201);
        /* PRICING_SPEC.md section 8's example: 10 % of 3998 = 399.8 -> 400;
         * tax 8.25 % of 3598 = 296.835 -> 297, before 329.835 -> 330. */
        snprintf(codes, sizeof(codes), "\"%s\",\"%s\",\"nope-%s\"", c10, cfix, fx.run);
        snprintf(cart, sizeof(cart), cart_fmt, cust, sku, codes);
        j = call("POST", "/v1/validate", fx.tok_checkout, &st, "%s", cart);
        ck_assert_int_eq(st, 200);
        conform_to("ValidateResult", j);
        ck_assert_int_eq(json_integer_value(json_object_get(j, "subtotal")), 3998);
        ck_assert_int_eq(json_integer_value(json_object_get(j, "discount_total")), 400);
        ck_assert_int_eq(json_integer_value(json_object_get(j, "tax_total")), 297);
        ck_assert_int_eq(json_integer_value(json_object_get(j, "tax_total_before")), 330);
        ck_assert_int_eq(json_integer_value(json_object_get(j, "grand_total")), 3895);
        e = json_array_get(json_object_get(j, "applied"), 0);
        ck_assert_str_eq(json_string_value(json_object_get(e, "code")), c10);
        e = json_object_get(j, "rejected");
        ck_assert_int_eq(json_array_size(e), 2);
        ck_assert_str_eq(
            json_string_value(json_object_get(json_array_get(e, 0), "reason")),
            "MIN_SPEND_NOT_MET");
        ck_assert_str_eq(
            json_string_value(json_object_get(json_array_get(e, 1), "reason")),
            "UNKNOWN_CODE");
        json_decref(j);
        /* Never reserves. */
        snprintf(q, sizeof(q), "promo:usage:total:%s", c10);
        rep = redisCommand(fx.rc, "GET %s", q);
        ck_assert(rep && (rep->type == REDIS_REPLY_NIL || atoll(rep->str) == 0));
        freeReplyObject(rep);
        /* Live stock: 1 unit of a SKU not looked up yet, 2 ordered ->
         * unavailable. */
        strncat(sku, "-S", sizeof(sku) - strlen(sku) - 1);
        snprintf(q, sizeof(q), "INSERT INTO inventory (sku, stock) VALUES ('%s', 1)",
                 sku);
        free(sql1(q));
        snprintf(codes, sizeof(codes), "\"%s\"", c10);
        snprintf(cart, sizeof(cart), cart_fmt, "", sku, codes);
        j = call("POST", "/v1/validate", fx.tok_checkout, &st, "%s", cart);
        ck_assert_int_eq(st, 200);
        ck_assert_str_eq(
            json_string_value(json_object_get(
                json_array_get(json_object_get(j, "rejected"), 0), "reason")),
            "ITEM_UNAVAILABLE");
        json_decref(j);
        /* Live usage: the counter at the limit -> USAGE_LIMIT_REACHED. */
        {
                char lim[64], sku2[80];

                snprintf(lim, sizeof(lim), "LIM-%s", fx.run);
                snprintf(sku2, sizeof(sku2), "%s-2", sku);
                json_decref(
                    create(fx.tok_marketer, &st,
                           "{\"code\":\"%s\",\"type\":\"percentage\",\"value\":500,"
                           "\"usage_limit\":3}",
                           lim));
                rep = redisCommand(fx.rc, "SET promo:usage:total:%s 3", lim);
                freeReplyObject(rep);
                snprintf(codes, sizeof(codes), "\"%s\"", lim);
                snprintf(cart, sizeof(cart), cart_fmt, "", sku2, codes);
                j = call("POST", "/v1/validate", fx.tok_checkout, &st, "%s", cart);
                ck_assert_int_eq(st, 200);
                ck_assert_str_eq(
                    json_string_value(json_object_get(
                        json_array_get(json_object_get(j, "rejected"), 0), "reason")),
                    "USAGE_LIMIT_REACHED");
                json_decref(j);
        }
        /* Definitions or usage from the client: refused. */
        j = call(
            "POST", "/v1/validate", fx.tok_checkout, &st,
            "{\"currency\":\"USD\",\"lines\":[],\"codes\":[\"A\"],\"definitions\":[]}");
        ck_assert_int_eq(st, 422);
        ck_assert_str_eq(json_string_value(json_object_get(
                             json_array_get(json_object_get(j, "fields"), 0), "field")),
                         "definitions");
        json_decref(j);
        /* A case that breaks the spec: field error. */
        j = call(
            "POST", "/v1/validate", fx.tok_checkout, &st,
            "{\"currency\":\"USD\",\"lines\":[{\"id\":\"l1\",\"sku\":\"S\",\"category\":"
            "\"c\",\"unit_price\":-1,\"quantity\":1,\"tax_rate_ppm\":0}],\"codes\":["
            "\"ABC\"]}");
        ck_assert_int_eq(st, 422);
        ck_assert_str_eq(json_string_value(json_object_get(
                             json_array_get(json_object_get(j, "fields"), 0), "field")),
                         "lines[0].unit_price");
        json_decref(j);
}
END_TEST

/* The pipelined read falls back to the validator's path when Redis lacks
 * something: a code that exists only in PostgreSQL (the source of truth) is
 * found and priced, and with the usage marker gone the counters are rebuilt
 * before anything is answered; the answers are those of the fast path. */
START_TEST(validate_falls_back_when_redis_lacks_data)
{
        char code[64], sku[64], codes[128], q[512], cart[2048];
        int st;
        json_t *j, *a;
        redisReply *rep;

        snprintf(code, sizeof(code), "PGONLY-%s", fx.run);
        snprintf(sku, sizeof(sku), "SKU-FB-%s", fx.run);
        snprintf(q, sizeof(q),
                 "INSERT INTO codes (code, definition, status, version) VALUES ('%s', "
                 "'{\"code\": \"%s\", \"status\": \"active\", \"type\": "
                 "\"percentage\", \"value\": 2500}', 'active', 1)",
                 code, code);
        free(sql1(q));
        rep = redisCommand(fx.rc, "DEL promo:code:%s", code);
        freeReplyObject(rep);
        snprintf(codes, sizeof(codes), "\"%s\"", code);
        snprintf(cart, sizeof(cart), cart_fmt, "", sku, codes);
        /* 2 x 19.99 = 39.98; 25 % = 9.995 -> 10.00 (half up). */
        j = call("POST", "/v1/validate", fx.tok_checkout, &st, "%s", cart);
        ck_assert_int_eq(st, 200);
        a = json_array_get(json_object_get(j, "applied"), 0);
        ck_assert_str_eq(json_string_value(json_object_get(a, "code")), code);
        ck_assert_int_eq(json_integer_value(json_object_get(a, "amount")), 1000);
        json_decref(j);
        /* The marker gone (a Redis that lost its data): rebuilt, same answer. */
        rep = redisCommand(fx.rc, "DEL promo:usage:ready");
        freeReplyObject(rep);
        j = call("POST", "/v1/validate", fx.tok_checkout, &st, "%s", cart);
        ck_assert_int_eq(st, 200);
        a = json_array_get(json_object_get(j, "applied"), 0);
        ck_assert_int_eq(json_integer_value(json_object_get(a, "amount")), 1000);
        json_decref(j);
        rep = redisCommand(fx.rc, "EXISTS promo:usage:ready");
        ck_assert(rep && rep->type == REDIS_REPLY_INTEGER && rep->integer == 1);
        freeReplyObject(rep);
}
END_TEST

START_TEST(validate_rate_limits_and_attempts_log)
{
        char cust[96], cart[2048], codes[128], sku[64], errstr[512], want[128];
        rd_kafka_conf_t *c = rd_kafka_conf_new();
        rd_kafka_t *rk;
        rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(3);
        int st, i, p, seen = 0;
        resp_t rs;
        json_t *j;
        long long deadline;

        rd_kafka_conf_set(c, "bootstrap.servers",
                          getenv("PROMO_KAFKA_BROKERS") ? getenv("PROMO_KAFKA_BROKERS")
                                                        : "127.0.0.1:59092",
                          errstr, sizeof(errstr));
        rd_kafka_conf_set(c, "group.id", "check-admin", errstr, sizeof(errstr));
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, errstr, sizeof(errstr));
        ck_assert(rk != NULL);
        for (p = 0; p < 3; p++) {
                int64_t lo, hi;

                ck_assert_int_eq(rd_kafka_query_watermark_offsets(rk, "checkout.attempts",
                                                                  p, &lo, &hi, 5000),
                                 0);
                rd_kafka_topic_partition_list_add(parts, "checkout.attempts", p)->offset =
                    hi;
        }
        rd_kafka_assign(rk, parts);
        snprintf(sku, sizeof(sku), "RL-%s", fx.run);
        snprintf(codes, sizeof(codes), "\"GUESS-%s\"", fx.run);
        /* Per customer: 3 failed attempts allowed in the window. */
        snprintf(cust, sizeof(cust), "\"customer\":{\"id\":\"rl-%s\"},", fx.run);
        snprintf(cart, sizeof(cart), cart_fmt, cust, sku, codes);
        for (i = 0; i < 3; i++) {
                j = call("POST", "/v1/validate", fx.tok_checkout, &st, "%s", cart);
                ck_assert_int_eq(st, 200);
                json_decref(j);
        }
        http(fx.port, "POST", "/v1/validate", fx.tok_checkout, cart, strlen(cart), &rs);
        ck_assert_int_eq(rs.status, 429);
        ck_assert_int_gt(atoi(rs.retry_after), 0);
        ck_assert(strstr(rs.body, "rate_limited") != NULL);
        free(rs.body);
        /* Another customer is not affected. */
        snprintf(cust, sizeof(cust), "\"customer\":{\"id\":\"rl2-%s\"},", fx.run);
        snprintf(cart, sizeof(cart), cart_fmt, cust, sku, codes);
        j = call("POST", "/v1/validate", fx.tok_checkout, &st, "%s", cart);
        ck_assert_int_eq(st, 200);
        json_decref(j);
        /* Per client (token): 20 failed attempts, anonymous carts. */
        snprintf(cart, sizeof(cart), cart_fmt, "", sku, codes);
        for (i = 0; i < 20; i++) {
                j = call("POST", "/v1/validate", fx.tok_rl, &st, "%s", cart);
                ck_assert_int_eq(st, 200);
                json_decref(j);
        }
        http(fx.port, "POST", "/v1/validate", fx.tok_rl, cart, strlen(cart), &rs);
        ck_assert_int_eq(rs.status, 429);
        ck_assert(rs.retry_after[0] != '\0');
        free(rs.body);
        /* Every attempt is on checkout.attempts, the 429 too. */
        snprintf(want, sizeof(want), "\"customer_id\":\"rl-%s\"", fx.run);
        deadline = mono_us() + 10000000;
        while (seen < 4 && mono_us() < deadline) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);

                if (!m)
                        continue;
                if (!m->err && m->payload) {
                        char *s = strndup(m->payload, m->len);

                        if (strstr(s, want)) {
                                seen++;
                                if (seen == 4)
                                        ck_assert(strstr(s, "\"rate_limited\"") != NULL);
                        }
                        free(s);
                }
                rd_kafka_message_destroy(m);
        }
        ck_assert_int_eq(seen, 4);
        rd_kafka_topic_partition_list_destroy(parts);
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
}
END_TEST

/* ---- generation ---- */

static int in_alphabet(const char *s)
{
        for (; *s; s++)
                if (!strchr("ABCDEFGHJKMNPQRSTUVWXYZ23456789", *s))
                        return 0;
        return 1;
}

START_TEST(generation_bulk)
{
        char prefix[64], q[512], *v;
        int st;
        size_t i, k;
        json_t *j, *codes, *e;

        snprintf(prefix, sizeof(prefix), "B%s-", fx.run);
        j = call("POST", "/v1/codes/bulk", fx.tok_marketer, &st,
                 "{\"prefix\":\"%s\",\"length\":8,\"count\":2000,\"template\":{\"type\":"
                 "\"percentage\",\"value\":500,\"description\":\"bulk test\"}}",
                 prefix);
        ck_assert_int_eq(st, 201);
        conform_to("BulkResult", j);
        codes = json_object_get(j, "codes");
        ck_assert_int_eq(json_integer_value(json_object_get(j, "count")), 2000);
        ck_assert_int_eq(json_array_size(codes), 2000);
        json_array_foreach(codes, i, e)
        {
                const char *s = json_string_value(e);

                ck_assert_int_eq(strncmp(s, prefix, strlen(prefix)), 0);
                ck_assert_int_eq(strlen(s), strlen(prefix) + 8);
                ck_assert(in_alphabet(s + strlen(prefix)));
                for (k = 0; k < i; k += 97) /* a sample of pairs; the DB checks all */
                        ck_assert_str_ne(s, json_string_value(json_array_get(codes, k)));
        }
        json_decref(j);
        snprintf(q, sizeof(q),
                 "SELECT count(DISTINCT code) FROM codes WHERE code LIKE '%s%%'"
                 " AND description = 'bulk test' AND created_by = 'marketer-%s'",
                 prefix, fx.run);
        v = sql1(q);
        ck_assert_str_eq(v, "2000");
        free(v);
        snprintf(q, sizeof(q),
                 "SELECT jsonb_array_length(after->'codes') FROM admin_changes WHERE"
                 " action = 'generate_bulk' AND entity_id LIKE '%s%%'",
                 prefix);
        v = sql1(q);
        ck_assert_str_eq(v, "2000");
        free(v);
        /* Bad requests. */
        j = call("POST", "/v1/codes/bulk", fx.tok_marketer, &st,
                 "{\"prefix\":\"a b\",\"length\":2,\"count\":0,\"template\":{\"type\":"
                 "\"percentage\",\"value\":50000}}");
        ck_assert_int_eq(st, 422);
        {
                const char *want[] = {"prefix", "length", "count", "template.value"};
                size_t w;

                for (w = 0; w < 4; w++) {
                        int found = 0;

                        json_array_foreach(json_object_get(j, "fields"), i, e) found |=
                            strcmp(json_string_value(json_object_get(e, "field")),
                                   want[w]) == 0;
                        ck_assert_msg(found, "no field error for %s", want[w]);
                }
        }
        json_decref(j);
        j = call("POST", "/v1/codes/bulk", fx.tok_marketer, &st,
                 "{\"length\":4,\"count\":100000,\"template\":{\"type\":\"percentage\","
                 "\"value\":5}}");
        ck_assert_int_eq(st, 422); /* 31^4 is too small for 100000 */
        json_decref(j);
        j = call("POST", "/v1/codes/bulk", fx.tok_analyst, &st, "{}");
        ck_assert_int_eq(st, 403);
        json_decref(j);
}
END_TEST

START_TEST(generation_vip)
{
        char q[1024], path[128];
        int st;
        size_t i;
        json_t *j, *codes, *e;
        long long prev = 1000000;

        snprintf(q, sizeof(q),
                 "INSERT INTO customers (customer_id, orders_count, total_spend,"
                 " last_order_at, engagement) VALUES ('vip-%s', 40, 400000,"
                 " now() - interval '73 days', 60)",
                 fx.run);
        free(sql1(q));
        j = call("POST", "/v1/codes/vip", fx.tok_marketer, &st,
                 "{\"top\":10000,\"prefix\":\"V%s-\",\"length\":6,\"template\":{\"type\":"
                 "\"percentage\",\"value\":2000}}",
                 fx.run);
        ck_assert_int_eq(st, 201);
        conform_to("VipResult", j);
        codes = json_object_get(j, "codes");
        ck_assert_int_ge(json_array_size(codes), 1);
        json_array_foreach(codes, i, e)
        {
                long long score = json_integer_value(json_object_get(e, "score"));

                ck_assert_int_le(score, prev); /* best first */
                prev = score;
                if (strcmp(json_string_value(json_object_get(e, "customer_id")), q) == 0)
                        break;
                snprintf(path, sizeof(path), "vip-%s", fx.run);
                if (strcmp(json_string_value(json_object_get(e, "customer_id")), path) ==
                    0) {
                        /* docs/admin.md: recency (365 - 73) * 250 / 365 = 200,
                         * frequency 40 * 5 = 200, spend 400000 * 250 / 10^6 = 100,
                         * engagement 60 * 5 / 2 = 150: 650. */
                        ck_assert_int_eq(score, 650);
                        snprintf(
                            q, sizeof(q),
                            "SELECT definition->>'customer_id' FROM codes WHERE code = "
                            "'%s'",
                            json_string_value(json_object_get(e, "code")));
                        {
                                char *v = sql1(q);

                                ck_assert_str_eq(v, path);
                                free(v);
                        }
                        prev = -1000; /* found; stop checking */
                        break;
                }
        }
        ck_assert_msg(prev == -1000, "the VIP customer was not among the codes");
        json_decref(j);
        j = call(
            "POST", "/v1/codes/vip", fx.tok_marketer, &st,
            "{\"top\":1,\"length\":6,\"template\":{\"type\":\"percentage\",\"value\":1,"
            "\"customer_id\":\"x\"}}");
        ck_assert_int_eq(st, 422);
        json_decref(j);
}
END_TEST

/* ---- reads ---- */

START_TEST(reads_usage_dashboard_redemptions)
{
        char code[64], q[2048], path[256];
        int st;
        json_t *j, *e;
        size_t i;
        int found = 0;
        resp_t rs;

        snprintf(code, sizeof(code), "USE-%s", fx.run);
        json_decref(create(fx.tok_marketer, &st,
                           "{\"code\":\"%s\",\"type\":\"percentage\",\"value\":1000}",
                           code));
        ck_assert_int_eq(st, 201);
        snprintf(
            q, sizeof(q),
            "INSERT INTO usage_events (event_id, order_id, channel, account, code,"
            " customer_id, outcome, reason, value_applied, currency, occurred_at) VALUES"
            " ('e1-%s', 'o1', 'kiosk-%s', 'a', '%s', 'c1', 'applied', NULL, 400, 'USD',"
            " now() - interval '5 minutes'),"
            " ('e2-%s', 'o2', 'kiosk-%s', 'a', '%s', 'c2', 'rejected', 'EXPIRED', 0,"
            " 'USD', now() - interval '4 minutes'),"
            " ('e3-%s', 'o3', 'kiosk-%s', 'a', '%s', NULL, 'applied', NULL, 250, 'USD',"
            " now() - interval '3 minutes')",
            fx.run, fx.run, code, fx.run, fx.run, code, fx.run, fx.run, code);
        free(sql1(q));
        snprintf(path, sizeof(path), "/v1/usage?code=%s", code);
        j = call("GET", path, fx.tok_analyst, &st, NULL);
        ck_assert_int_eq(st, 200);
        conform_to("UsageList", j);
        ck_assert_int_eq(json_integer_value(json_object_get(j, "total")), 3);
        json_decref(j);
        snprintf(path, sizeof(path), "/v1/usage?code=%s&outcome=rejected", code);
        j = call("GET", path, fx.tok_analyst, &st, NULL);
        ck_assert_int_eq(json_integer_value(json_object_get(j, "total")), 1);
        ck_assert_str_eq(json_string_value(json_object_get(
                             json_array_get(json_object_get(j, "items"), 0), "reason")),
                         "EXPIRED");
        json_decref(j);
        snprintf(path, sizeof(path), "/v1/usage?code=%s&format=csv", code);
        http(fx.port, "GET", path, fx.tok_analyst, NULL, 0, &rs);
        ck_assert_int_eq(rs.status, 200);
        ck_assert(strncmp(rs.body, "event_id,order_id,channel", 25) == 0);
        {
                int lines = 0;
                const char *p;

                for (p = rs.body; *p; p++)
                        lines += *p == '\n';
                ck_assert_int_eq(lines, 4);
        }
        free(rs.body);
        j = call("GET", "/v1/usage?outcome=maybe&from=never", fx.tok_analyst, &st, NULL);
        ck_assert_int_eq(st, 422);
        ck_assert_int_eq(json_array_size(json_object_get(j, "fields")), 2);
        json_decref(j);
        /* Dashboard: the kiosk channel's totals. */
        j = call("GET", "/v1/dashboard?minutes=30", fx.tok_analyst, &st, NULL);
        ck_assert_int_eq(st, 200);
        conform_to("Dashboard", j);
        json_array_foreach(json_object_get(j, "by_channel"), i, e)
        {
                char ch[64];

                snprintf(ch, sizeof(ch), "kiosk-%s", fx.run);
                if (strcmp(json_string_value(json_object_get(e, "channel")), ch) != 0)
                        continue;
                found = 1;
                ck_assert_int_eq(json_integer_value(json_object_get(e, "applied")), 2);
                ck_assert_int_eq(json_integer_value(json_object_get(e, "rejected")), 1);
                ck_assert_int_eq(json_integer_value(json_object_get(e, "discount")), 650);
        }
        ck_assert(found);
        ck_assert_int_le(json_array_size(json_object_get(j, "recent")), 20);
        json_decref(j);
        j = call("GET", "/v1/dashboard?minutes=0", fx.tok_analyst, &st, NULL);
        ck_assert_int_eq(st, 422);
        json_decref(j);
        /* Redemptions of the code by hour. */
        snprintf(path, sizeof(path), "/v1/codes/%s/redemptions?bucket=hour", code);
        j = call("GET", path, fx.tok_analyst, &st, NULL);
        ck_assert_int_eq(st, 200);
        conform_to("Redemptions", j);
        {
                long long applied = 0, rejected = 0, discount = 0;

                json_array_foreach(json_object_get(j, "series"), i, e)
                {
                        applied += json_integer_value(json_object_get(e, "applied"));
                        rejected += json_integer_value(json_object_get(e, "rejected"));
                        discount += json_integer_value(json_object_get(e, "discount"));
                }
                ck_assert_int_eq(applied, 2);
                ck_assert_int_eq(rejected, 1);
                ck_assert_int_eq(discount, 650);
        }
        json_decref(j);
        snprintf(path, sizeof(path), "/v1/codes/%s/redemptions?bucket=week", code);
        j = call("GET", path, fx.tok_analyst, &st, NULL);
        ck_assert_int_eq(st, 422);
        json_decref(j);
}
END_TEST

/* A real dead letter on validator.dlq, listed by priority and replayed to
 * its source topic (promo.selftest), once. */
START_TEST(dlq_list_and_replay)
{
        char errstr[512], source[128], value[64], q[2048], path[64];
        rd_kafka_conf_t *c = rd_kafka_conf_new();
        rd_kafka_t *prod, *cons;
        rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
        po_avro_t *avro = po_avro_new(errstr, sizeof(errstr));
        po_deadletter_t dl;
        po_dynbuf_t enc;
        rd_kafka_message_t *m;
        const char *brokers = getenv("PROMO_KAFKA_BROKERS")
                                  ? getenv("PROMO_KAFKA_BROKERS")
                                  : "127.0.0.1:59092";
        int64_t lo, hi, prio_prev = INT64_MAX;
        int st, found = 0;
        json_t *j, *e;
        size_t i;
        long long deadline;

        snprintf(value, sizeof(value), "replay-me-%s", fx.run);
        po_deadletter_init(&dl);
        dl.stage = "validator";
        dl.source_topic = "promo.selftest";
        dl.partition = 0;
        dl.offset = 0;
        dl.reason_code = "TEST";
        dl.error = "a test dead letter";
        dl.attempts = 1;
        dl.priority = 4000000000000LL;
        dl.original_value = value;
        dl.original_value_len = strlen(value);
        po_dynbuf_init(&enc, 1 << 20);
        ck_assert_int_eq(
            po_avro_encode_deadletter(avro, &dl, &enc, errstr, sizeof(errstr)), 0);
        rd_kafka_conf_set(c, "bootstrap.servers", brokers, errstr, sizeof(errstr));
        prod = rd_kafka_new(RD_KAFKA_PRODUCER, c, errstr, sizeof(errstr));
        ck_assert(prod != NULL);
        ck_assert_int_eq(rd_kafka_producev(
                             prod, RD_KAFKA_V_TOPIC("validator.dlq"),
                             RD_KAFKA_V_PARTITION(0), RD_KAFKA_V_VALUE(enc.data, enc.len),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                         0);
        ck_assert_int_eq(rd_kafka_flush(prod, 10000), 0);
        ck_assert_int_eq(
            rd_kafka_query_watermark_offsets(prod, "validator.dlq", 0, &lo, &hi, 5000),
            0);
        snprintf(source, sizeof(source), "validator.dlq:0:%lld", (long long)hi - 1);
        snprintf(
            q, sizeof(q),
            "INSERT INTO dead_letters (source, stage, reason, error, attempts, priority,"
            " source_topic, source_partition, source_offset, original_value) VALUES"
            " ('%s', 'validator', 'TEST', 'a test dead letter', 1, 4000000000000,"
            " 'promo.selftest', 0, 0, 'x')",
            source);
        free(sql1(q));
        j = call("GET", "/v1/dlq?stage=validator&limit=1000", fx.tok_analyst, &st, NULL);
        ck_assert_int_eq(st, 200);
        conform_to("DlqList", j);
        json_array_foreach(json_object_get(j, "items"), i, e)
        {
                int64_t pr = json_integer_value(json_object_get(e, "priority"));

                ck_assert_int_le(pr, prio_prev);
                prio_prev = pr;
                if (strcmp(json_string_value(json_object_get(e, "source")), source) == 0)
                        found = 1;
        }
        ck_assert(found);
        json_decref(j);
        /* Replay: the original bytes on promo.selftest. */
        ck_assert_int_eq(
            rd_kafka_query_watermark_offsets(prod, "promo.selftest", 0, &lo, &hi, 5000),
            0);
        j = call("POST", "/v1/dlq/replay", fx.tok_marketer, &st, "{\"source\":\"%s\"}",
                 source);
        ck_assert_msg(st == 200, "replay -> %d", st);
        conform_to("ReplayResult", j);
        ck_assert_str_eq(json_string_value(json_object_get(j, "topic")),
                         "promo.selftest");
        json_decref(j);
        c = rd_kafka_conf_new();
        rd_kafka_conf_set(c, "bootstrap.servers", brokers, errstr, sizeof(errstr));
        rd_kafka_conf_set(c, "group.id", "check-admin", errstr, sizeof(errstr));
        cons = rd_kafka_new(RD_KAFKA_CONSUMER, c, errstr, sizeof(errstr));
        rd_kafka_topic_partition_list_add(parts, "promo.selftest", 0)->offset = hi;
        rd_kafka_assign(cons, parts);
        found = 0;
        deadline = mono_us() + 10000000;
        while (!found && mono_us() < deadline) {
                m = rd_kafka_consumer_poll(cons, 200);
                if (!m)
                        continue;
                if (!m->err && m->len == strlen(value) &&
                    memcmp(m->payload, value, m->len) == 0)
                        found = 1;
                rd_kafka_message_destroy(m);
        }
        ck_assert_msg(found, "the replayed value did not reach promo.selftest");
        /* Once only; audited; bad and unknown sources. */
        j = call("POST", "/v1/dlq/replay", fx.tok_marketer, &st, "{\"source\":\"%s\"}",
                 source);
        ck_assert_int_eq(st, 409);
        json_decref(j);
        snprintf(
            q, sizeof(q),
            "SELECT count(*) FROM admin_changes WHERE action = 'replay' AND entity_id = "
            "'%s'",
            source);
        {
                char *v = sql1(q);

                ck_assert_str_eq(v, "1");
                free(v);
        }
        j = call("POST", "/v1/dlq/replay", fx.tok_marketer, &st,
                 "{\"source\":\"validator.dlq:0:999999999\"}");
        ck_assert_int_eq(st, 404);
        json_decref(j);
        j = call("POST", "/v1/dlq/replay", fx.tok_marketer, &st,
                 "{\"source\":\"nonsense\"}");
        ck_assert_int_eq(st, 422);
        json_decref(j);
        snprintf(path, sizeof(path), "/v1/dlq?limit=%d", 5000);
        j = call("GET", path, fx.tok_analyst, &st, NULL);
        ck_assert_int_eq(st, 422);
        json_decref(j);
        rd_kafka_topic_partition_list_destroy(parts);
        rd_kafka_consumer_close(cons);
        rd_kafka_destroy(cons);
        rd_kafka_destroy(prod);
        po_dynbuf_release(&enc);
        po_avro_destroy(avro);
}
END_TEST

START_TEST(hostile_input)
{
        size_t n = (1u << 20) + 100;
        char *big = malloc(n);
        resp_t rs;

        memset(big, ' ', n);
        big[0] = '{';
        big[n - 1] = '}';
        http(fx.port, "POST", "/v1/codes", fx.tok_marketer, big, n, &rs);
        ck_assert_int_eq(rs.status, 413);
        free(rs.body);
        free(big);
        http(fx.port, "POST", "/v1/codes/XYZ/pause", fx.tok_marketer, "{}", 2, &rs);
        ck_assert_int_eq(rs.status, 400);
        free(rs.body);
        http(fx.port, "GET", "/v1/codes/%00%2e%2e", fx.tok_analyst, NULL, 0, &rs);
        ck_assert_int_eq(rs.status, 404);
        free(rs.body);
        http(fx.port, "DELETE", "/v1/tokens/-1", fx.tok_admin, NULL, 0, &rs);
        ck_assert_int_eq(rs.status, 404);
        free(rs.body);
        http(fx.port, "GET", "/v1/codes?offset=99999999999999999999", fx.tok_analyst,
             NULL, 0, &rs);
        ck_assert_int_eq(rs.status, 422);
        free(rs.body);
}
END_TEST

/* The runner's last test: SIGTERM ends the server cleanly (exit 0). */
START_TEST(sigterm_exits_zero)
{
        int st = -1, i;

        kill(fx.pid, SIGTERM);
        for (i = 0; i < 100 && waitpid(fx.pid, &st, WNOHANG) == 0; i++)
                sleep_ms(50);
        ck_assert_msg(i < 100, "admin did not exit within 5 s of SIGTERM");
        ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        fx.pid = 0;
}
END_TEST

int main(void)
{
        Suite *s = suite_create("admin");
        TCase *tc = tcase_create("api");
        SRunner *sr;
        int failed;

        tcase_add_unchecked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 300);
        tcase_add_test(tc, openapi_matches_routes);
        tcase_add_test(tc, openapi_served);
        tcase_add_test(tc, auth_and_roles);
        tcase_add_test(tc, tokens_crud_and_revocation);
        tcase_add_test(tc, codes_crud);
        tcase_add_test(tc, codes_published);
        tcase_add_test(tc, validate_prices_like_the_spec);
        tcase_add_test(tc, validate_falls_back_when_redis_lacks_data);
        tcase_add_test(tc, validate_rate_limits_and_attempts_log);
        tcase_add_test(tc, generation_bulk);
        tcase_add_test(tc, generation_vip);
        tcase_add_test(tc, reads_usage_dashboard_redemptions);
        tcase_add_test(tc, dlq_list_and_replay);
        tcase_add_test(tc, hostile_input);
        tcase_add_test(tc, sigterm_exits_zero);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_set_fork_status(sr, CK_NOFORK);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
