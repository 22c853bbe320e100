/* API tokens: "po_" + 32 random bytes (getrandom) in base64url, stored only
 * as their SHA-256 (admin_tokens.token_sha256, hex). A lookup is cached in
 * memory for PROMO_ADMIN_TOKEN_CACHE_MS (default 2000): a token revoked by
 * another admin process stops working within that time; one revoked through
 * this process's API at once (its cache entry is dropped). */
#include <errno.h>
#include <microhttpd.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "admin.h"
#include "po/log.h"

#define TOKEN_CACHE_MAX 4096
#define TOKEN_PREFIX "po_"
#define TOKEN_CHARS 43 /* base64url of 32 bytes, unpadded */

int admin_random(void *buf, size_t len)
{
        unsigned char *p = buf;

        while (len > 0) {
                ssize_t n = getrandom(p, len, 0);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -1;
                }
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

static void sha256_hex(const char *s, size_t len, char hex[65])
{
        static const char digits[] = "0123456789abcdef";
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int n = 0, i;

        if (!EVP_Digest(s, len, md, &n, EVP_sha256(), NULL) || n != 32) {
                hex[0] = '\0';
                return;
        }
        for (i = 0; i < 32; i++) {
                hex[2 * i] = digits[md[i] >> 4];
                hex[2 * i + 1] = digits[md[i] & 15];
        }
        hex[64] = '\0';
}

static void base64url(const unsigned char *in, size_t len, char *out)
{
        static const char a[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        size_t i, o = 0;

        for (i = 0; i + 2 < len; i += 3) {
                unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];

                out[o++] = a[v >> 18 & 63];
                out[o++] = a[v >> 12 & 63];
                out[o++] = a[v >> 6 & 63];
                out[o++] = a[v & 63];
        }
        if (len - i == 1) {
                unsigned v = (unsigned)in[i] << 16;

                out[o++] = a[v >> 18 & 63];
                out[o++] = a[v >> 12 & 63];
        } else if (len - i == 2) {
                unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;

                out[o++] = a[v >> 18 & 63];
                out[o++] = a[v >> 12 & 63];
                out[o++] = a[v >> 6 & 63];
        }
        out[o] = '\0';
}

int admin_token_create(PGconn *pg, const char *name, const char *role,
                       const char *created_by, char *token, size_t token_size,
                       int64_t *id, char *errstr, size_t errstr_size)
{
        unsigned char raw[32];
        char sha[65];
        const char *p[4];
        PGresult *res;

        if (token_size < sizeof(TOKEN_PREFIX) + TOKEN_CHARS ||
            admin_random(raw, sizeof(raw))) {
                snprintf(errstr, errstr_size, "no randomness");
                return -1;
        }
        memcpy(token, TOKEN_PREFIX, sizeof(TOKEN_PREFIX) - 1);
        base64url(raw, sizeof(raw), token + sizeof(TOKEN_PREFIX) - 1);
        sha256_hex(token, strlen(token), sha);
        p[0] = name;
        p[1] = role;
        p[2] = sha;
        p[3] = created_by;
        res =
            PQexecParams(pg,
                         "INSERT INTO admin_tokens (name, role, token_sha256, created_by)"
                         " VALUES ($1, $2, $3, $4) RETURNING id",
                         4, NULL, p, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                snprintf(errstr, errstr_size, "%s", PQresultErrorMessage(res));
                errstr[strcspn(errstr, "\n")] = '\0';
                PQclear(res);
                return -1;
        }
        *id = atoll(PQgetvalue(res, 0, 0));
        PQclear(res);
        return 0;
}

/* ---- the cache ---- */

static int cache_find(admin_t *app, const char *sha, admin_who_t *who)
{
        int64_t now = admin_mono_ms();
        size_t i;
        int found = 0;

        pthread_mutex_lock(&app->tok_mu);
        for (i = 0; i < app->ntokens; i++) {
                admin_token_entry_t *e = &app->tokens[i];

                if (strcmp(e->sha, sha) != 0)
                        continue;
                if (e->expires_ms > now) {
                        who->token_id = e->id;
                        snprintf(who->name, sizeof(who->name), "%s", e->name);
                        who->role = e->role;
                        found = 1;
                } else {
                        app->tokens[i] = app->tokens[--app->ntokens];
                }
                break;
        }
        pthread_mutex_unlock(&app->tok_mu);
        return found;
}

static void cache_put(admin_t *app, const char *sha, const admin_who_t *who)
{
        admin_token_entry_t *e;

        if (app->set.token_cache_ms <= 0)
                return;
        pthread_mutex_lock(&app->tok_mu);
        if (app->ntokens == app->cap_tokens) {
                size_t cap = app->cap_tokens ? 2 * app->cap_tokens : 64;
                admin_token_entry_t *n = cap <= TOKEN_CACHE_MAX
                                             ? realloc(app->tokens, cap * sizeof(*n))
                                             : NULL;

                if (!n) {
                        app->ntokens = 0; /* full: start over */
                } else {
                        app->tokens = n;
                        app->cap_tokens = cap;
                }
        }
        if (app->ntokens < app->cap_tokens) {
                e = &app->tokens[app->ntokens++];
                snprintf(e->sha, sizeof(e->sha), "%s", sha);
                e->id = who->token_id;
                snprintf(e->name, sizeof(e->name), "%s", who->name);
                e->role = who->role;
                e->expires_ms = admin_mono_ms() + app->set.token_cache_ms;
        }
        pthread_mutex_unlock(&app->tok_mu);
}

void admin_auth_forget(admin_t *app, int64_t token_id)
{
        size_t i;

        pthread_mutex_lock(&app->tok_mu);
        for (i = 0; i < app->ntokens;) {
                if (app->tokens[i].id == token_id)
                        app->tokens[i] = app->tokens[--app->ntokens];
                else
                        i++;
        }
        pthread_mutex_unlock(&app->tok_mu);
}

int admin_auth(admin_req_t *r, unsigned allowed)
{
        const char *h =
            MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Authorization");
        const char *tok;
        char sha[65];
        PGresult *res;

        if (!h || strncmp(h, "Bearer ", 7) != 0) {
                admin_error(r, 401, "unauthorized",
                            "an Authorization: Bearer <token> header is required");
                return -1;
        }
        tok = h + 7;
        if (strlen(tok) != sizeof(TOKEN_PREFIX) - 1 + TOKEN_CHARS ||
            strncmp(tok, TOKEN_PREFIX, sizeof(TOKEN_PREFIX) - 1) != 0) {
                admin_error(r, 401, "unauthorized", "unknown or revoked token");
                return -1;
        }
        sha256_hex(tok, strlen(tok), sha);
        if (!cache_find(r->app, sha, &r->who)) {
                const char *p[1] = {sha};

                if (admin_worker_pg(r))
                        return -1;
                res = admin_pg(r,
                               "SELECT id, name, role FROM admin_tokens"
                               " WHERE token_sha256 = $1 AND revoked_at IS NULL",
                               1, p, NULL);
                if (!res)
                        return -1;
                if (PQntuples(res) != 1) {
                        PQclear(res);
                        admin_count(r->app, "promo_admin_auth_failures_total",
                                    "Requests with an unknown or revoked token.", NULL,
                                    1);
                        admin_error(r, 401, "unauthorized", "unknown or revoked token");
                        return -1;
                }
                r->who.token_id = atoll(PQgetvalue(res, 0, 0));
                snprintf(r->who.name, sizeof(r->who.name), "%s", PQgetvalue(res, 0, 1));
                r->who.role = admin_role_parse(PQgetvalue(res, 0, 2));
                PQclear(res);
                cache_put(r->app, sha, &r->who);
        }
        if (!(r->who.role & allowed)) {
                admin_error(r, 403, "forbidden", "the role %s may not %s %s",
                            admin_role_name(r->who.role) ? admin_role_name(r->who.role)
                                                         : "?",
                            r->method, r->path);
                return -1;
        }
        return 0;
}

/* ---- handlers ---- */

void h_me(admin_req_t *r)
{
        admin_reply_json(r, 200,
                         json_pack("{s:s, s:s}", "name", r->who.name, "role",
                                   admin_role_name(r->who.role)));
}

#define TS_SQL(col)                                                                      \
        "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

void h_tokens_list(admin_req_t *r)
{
        PGresult *res;
        json_t *items;
        int i;

        if (admin_worker_pg(r))
                return;
        res = admin_pg(
            r,
            "SELECT id, name, role, " TS_SQL("created_at") ", created_by, " TS_SQL(
                "revoked_at") " FROM admin_tokens ORDER BY id",
            0, NULL, NULL);
        if (!res)
                return;
        items = json_array();
        for (i = 0; i < PQntuples(res); i++)
                json_array_append_new(
                    items, json_pack("{s:I, s:s, s:s, s:s, s:s, s:o}", "id",
                                     (json_int_t)atoll(PQgetvalue(res, i, 0)), "name",
                                     PQgetvalue(res, i, 1), "role", PQgetvalue(res, i, 2),
                                     "created_at", PQgetvalue(res, i, 3), "created_by",
                                     PQgetvalue(res, i, 4), "revoked_at",
                                     PQgetisnull(res, i, 5)
                                         ? json_null()
                                         : json_string(PQgetvalue(res, i, 5))));
        PQclear(res);
        admin_reply_json(r, 200, json_pack("{s:o}", "items", items));
}

void h_tokens_create(admin_req_t *r)
{
        json_t *in = admin_body_json(r), *name, *role;
        admin_fields_t f;
        const char *k;
        json_t *v;
        char token[64], errstr[300], idtxt[24], *after = NULL;
        int64_t id;

        if (!in)
                return;
        admin_fields_init(&f);
        name = json_object_get(in, "name");
        role = json_object_get(in, "role");
        if (!json_is_string(name) || json_string_length(name) < 1 ||
            json_string_length(name) > 100 ||
            strlen(json_string_value(name)) != json_string_length(name))
                admin_field(&f, "name", "required: a string of 1..100 characters");
        if (!json_is_string(role) || !admin_role_parse(json_string_value(role)))
                admin_field(&f, "role", "must be admin, marketer, analyst or checkout");
        json_object_foreach(in, k,
                            v) if (strcmp(k, "name") != 0 && strcmp(k, "role") != 0)
            admin_field(&f, k, "unknown field");
        if (admin_fields_count(&f)) {
                admin_error_fields(r, &f, "the token is not valid");
                goto out;
        }
        if (admin_worker_pg(r) || admin_pg_begin(r))
                goto out;
        if (admin_token_create(r->w->pg, json_string_value(name), json_string_value(role),
                               r->who.name, token, sizeof(token), &id, errstr,
                               sizeof(errstr))) {
                admin_pg_rollback(r);
                admin_error(r, 503, "unavailable", "postgres: %s", errstr);
                goto out;
        }
        snprintf(idtxt, sizeof(idtxt), "%lld", (long long)id);
        v = json_pack("{s:I, s:O, s:O}", "id", (json_int_t)id, "name", name, "role",
                      role);
        after = v ? json_dumps(v, JSON_COMPACT) : NULL;
        json_decref(v);
        if (!after || admin_audit(r, "create", "token", idtxt, NULL, after) ||
            admin_pg_commit(r)) {
                admin_pg_rollback(r);
                if (r->status < 400)
                        admin_error(r, 503, "unavailable", "postgres");
                goto out;
        }
        po_log_info("token %lld (%s, %s) created by %s", (long long)id,
                    json_string_value(name), json_string_value(role), r->who.name);
        admin_reply_json(r, 201,
                         json_pack("{s:I, s:s}", "id", (json_int_t)id, "token", token));
out:
        free(after);
        admin_fields_release(&f);
        json_decref(in);
}

void h_tokens_revoke(admin_req_t *r)
{
        const char *p[1] = {r->params[0]};
        char *end;
        long long id = strtoll(r->params[0], &end, 10);
        PGresult *res;
        char before[400];

        if (*end || id <= 0) {
                admin_error(r, 404, "not_found", "no token %.64s", r->params[0]);
                return;
        }
        if (admin_worker_pg(r) || admin_pg_begin(r))
                return;
        res =
            admin_pg(r,
                     "UPDATE admin_tokens SET revoked_at = now()"
                     " WHERE id = $1::bigint AND revoked_at IS NULL"
                     " RETURNING json_build_object('id', id, 'name', name, 'role', role)",
                     1, p, NULL);
        if (!res) {
                admin_pg_rollback(r);
                return;
        }
        if (PQntuples(res) != 1) {
                PQclear(res);
                admin_pg_rollback(r);
                admin_error(r, 404, "not_found", "no active token %lld", id);
                return;
        }
        snprintf(before, sizeof(before), "%s", PQgetvalue(res, 0, 0));
        PQclear(res);
        if (admin_audit(r, "revoke", "token", r->params[0], before, NULL) ||
            admin_pg_commit(r)) {
                admin_pg_rollback(r);
                return;
        }
        admin_auth_forget(r->app, id);
        po_log_info("token %lld revoked by %s", id, r->who.name);
        r->status = 204;
        r->ctype = NULL;
}
