/* admin: the admin service's internals, shared by its modules (server,
 * routes, auth, codes, generation, validate, reads). Not a public API: the
 * executable and its integration test (check_admin, which compares the
 * route table with docs/openapi.json) link them as one library.
 *
 * Threads: libmicrohttpd runs a pool of PROMO_ADMIN_THREADS worker threads;
 * each request borrows one admin_worker_t (its own Redis and PostgreSQL
 * connections, pricing context and Avro codec) from a pool of as many
 * workers as threads, so no connection is ever shared. The main thread
 * probes the dependencies, renders /healthz /readyz /metrics, and a Kafka
 * thread serves the shared producer's delivery reports. */
#ifndef ADMIN_H
#define ADMIN_H

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "po/avro.h"
#include "po/calcjson.h"
#include "po/dynbuf.h"
#include "po/err.h"
#include "po/pricing.h"
#include "po/refdata.h"
#include "po/service.h"
#include "po/usage.h"

#define ADMIN_BODY_MAX (1u << 20) /* request bodies; larger is 413 */
#define ADMIN_MAX_PARAMS 4

/* Roles, as bits of a route's allowed set. */
enum {
        ADMIN_ROLE_ADMIN = 1u << 0,
        ADMIN_ROLE_MARKETER = 1u << 1,
        ADMIN_ROLE_ANALYST = 1u << 2,
        ADMIN_ROLE_CHECKOUT = 1u << 3,
};
#define ADMIN_ROLES_READ (ADMIN_ROLE_ADMIN | ADMIN_ROLE_MARKETER | ADMIN_ROLE_ANALYST)
#define ADMIN_ROLES_WRITE (ADMIN_ROLE_ADMIN | ADMIN_ROLE_MARKETER)

/* "admin", "marketer", "analyst", "checkout" for one role bit; NULL else. */
const char *admin_role_name(unsigned role);
/* The role bit of a name, 0 when unknown. */
unsigned admin_role_parse(const char *name);

/* A delivery waiter: the opaque of produced messages whose delivery a
 * request waits for (the delivery thread decrements pending). */
typedef struct admin_wait {
        pthread_mutex_t mu;
        pthread_cond_t cv;
        size_t pending, failed;
        char error[200]; /* the first failure */
} admin_wait_t;

void admin_wait_init(admin_wait_t *w);
void admin_wait_release(admin_wait_t *w);
/* Waits until nothing is pending or timeout_ms passed. Returns 0 when every
 * message was delivered, -1 otherwise (error says why). */
int admin_wait_done(admin_wait_t *w, int timeout_ms);

/* A code definition as /v1/validate last read it from Redis: the entry's
 * text and the definition JSON the case gets from it (po_codedef_from_json
 * then po_codedef_to_json), reused while the entry's text is the same. */
typedef struct admin_defcache {
        char code[PO_PRICING_CODE_MAX + 1];
        char *text; /* malloc'd; NULL = empty slot */
        size_t len;
        json_t *def;
} admin_defcache_t;

#define ADMIN_DEFCACHE_SIZE 64

typedef struct admin_worker {
        redisContext *rc;
        PGconn *pg;
        po_usage_t usage;
        po_calcjson_t *cj;
        po_avro_t *avro;
        po_refdata_stats_t stats;
        int busy;
        /* /v1/validate's buffers, kept between requests: the Redis pipeline
         * then the attempt record; the pricing result; the definitions. */
        po_dynbuf_t vbuf, vout;
        admin_defcache_t defcache[ADMIN_DEFCACHE_SIZE];
        unsigned defcache_next;
} admin_worker_t;

/* Frees what /v1/validate keeps in w (validate.c). */
void admin_worker_validate_release(admin_worker_t *w);

/* A cached token lookup. */
typedef struct admin_token_entry {
        char sha[65];
        int64_t id;
        char name[101];
        unsigned role;
        int64_t expires_ms; /* monotonic */
} admin_token_entry_t;

typedef struct admin_settings {
        int threads;
        char bind[64];
        char ui_dir[1024];
        int token_cache_ms;
        int rl_window_s;
        int64_t rl_token_max, rl_customer_max;
        po_stacking_t stacking;
        po_rounding_t rounding;
        const char *codes_topic, *attempts_topic;
} admin_settings_t;

typedef struct admin {
        po_service_t *svc;
        const po_config_t *cfg;
        admin_settings_t set;
        rd_kafka_t *producer;
        /* Workers: one per libmicrohttpd thread. */
        pthread_mutex_t pool_mu;
        pthread_cond_t pool_cv;
        admin_worker_t *workers;
        int nworkers;
        /* Token cache. */
        pthread_mutex_t tok_mu;
        admin_token_entry_t *tokens;
        size_t ntokens, cap_tokens;
        /* Metrics (po_metrics is single-threaded) and the health snapshots
         * the main thread renders. */
        pthread_mutex_t met_mu;
        po_dynbuf_t health[3]; /* /healthz, /readyz, /metrics */
        int health_status[3];
        /* docs/openapi.json, read at start. */
        char *openapi;
        size_t openapi_len;
} admin_t;

/* ---- requests ---- */

typedef struct admin_who {
        int64_t token_id;
        char name[101];
        unsigned role;
} admin_who_t;

typedef struct admin_req {
        admin_t *app;
        void *conn; /* struct MHD_Connection */
        const char *method, *path;
        char params[ADMIN_MAX_PARAMS][256]; /* path parameters, in order */
        const char *body;
        size_t body_len;
        admin_who_t who;
        admin_worker_t *w; /* borrowed for the request; NULL for public routes */
        /* The response. */
        int status;
        const char *ctype;
        po_dynbuf_t out;
        char retry_after[24]; /* "" = no Retry-After header */
        char disposition[160];
} admin_req_t;

typedef void (*admin_handler_fn)(admin_req_t *r);

typedef struct admin_route {
        const char *method;
        const char *path; /* OpenAPI template: "/v1/codes/{code}" */
        unsigned roles;   /* 0 = public (no token) */
        admin_handler_fn handler;
} admin_route_t;

/* The server's route table (every path and method it serves). */
const admin_route_t *admin_routes(size_t *count);

/* Finds the route of method + path. Returns it with r->params filled, or
 * NULL with *path_known = 1 when the path exists under another method. */
const admin_route_t *admin_route_match(const char *method, const char *path,
                                       admin_req_t *r, int *path_known);

/* ---- responses ---- */

/* Field errors of a 422. */
typedef struct admin_fields {
        json_t *list; /* array of {field, message} */
} admin_fields_t;

void admin_fields_init(admin_fields_t *f);
void admin_fields_release(admin_fields_t *f);
void admin_field(admin_fields_t *f, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
size_t admin_fields_count(const admin_fields_t *f);

/* Sets the error response {"error": code, "message": ...}. */
void admin_error(admin_req_t *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Sets a 422 validation response with f's fields (f is emptied). */
void admin_error_fields(admin_req_t *r, admin_fields_t *f, const char *message);
/* Sets a JSON response from obj (stolen). */
void admin_reply_json(admin_req_t *r, int status, json_t *obj);

/* The value of query parameter name, or NULL. */
const char *admin_query(admin_req_t *r, const char *name);
/* Fails (422 with fields) when the query has a parameter not in allowed
 * (NULL-terminated). Returns 0 when every parameter is known. */
int admin_query_check(admin_req_t *r, const char *const *allowed);
/* Integer query parameter lo..hi, default def when absent; adds a field
 * error when it does not parse. */
int64_t admin_query_int(admin_req_t *r, admin_fields_t *f, const char *name, int64_t def,
                        int64_t lo, int64_t hi);
/* RFC 3339 query parameter; NULL when absent, "" (with a field error) when bad. */
const char *admin_query_time(admin_req_t *r, admin_fields_t *f, const char *name);

/* Parses the body as a JSON object; on failure sets 400 bad_json and
 * returns NULL. */
json_t *admin_body_json(admin_req_t *r);

/* ---- dependencies of a worker ---- */

/* Connects what is broken. Returns 0, or -1 with 503 set on r. */
int admin_worker_redis(admin_req_t *r);
int admin_worker_pg(admin_req_t *r);

/* PQexecParams on the worker's connection; returns the result when its
 * status is PGRES_TUPLES_OK or PGRES_COMMAND_OK, else logs, sets 503 (or
 * 409 for a unique violation when conflict_msg is given) and returns NULL. */
PGresult *admin_pg(admin_req_t *r, const char *sql, int n, const char *const *params,
                   const char *conflict_msg);
/* BEGIN / COMMIT / ROLLBACK. admin_pg_begin and _commit set 503 on failure. */
int admin_pg_begin(admin_req_t *r);
int admin_pg_commit(admin_req_t *r);
void admin_pg_rollback(admin_req_t *r);

/* Writes one admin_changes row (actor = the token's name) in the current
 * transaction. before / after are JSON texts or NULL. Returns 0 or -1. */
int admin_audit(admin_req_t *r, const char *action, const char *entity,
                const char *entity_id, const char *before, const char *after);

/* Produces key/value to topic through the shared producer; with w, the
 * delivery is counted in w (the caller waits with admin_wait_done); without,
 * fire and forget (dropped when the queue is full). Returns 0 or -1. */
int admin_produce(admin_t *app, const char *topic, const char *key, size_t key_len,
                  const void *value, size_t len, admin_wait_t *w);

/* Adds to a counter of the service's metrics (thread-safe). */
void admin_count(admin_t *app, const char *name, const char *help, const char *labels,
                 uint64_t delta);
void admin_observe_us(admin_t *app, const char *name, const char *help, uint64_t us);

/* Microseconds since the epoch; monotonic milliseconds. */
int64_t admin_now_us(void);
int64_t admin_mono_ms(void);
/* Formats an instant in microseconds as "2026-11-24T10:00:00Z" (with
 * ".ffffff" when it has a fraction). */
void admin_fmt_time(int64_t us, char *buf, size_t size);

/* ---- handlers (one module each) ---- */

/* auth.c */
/* Authenticates r from its Authorization header and checks role against
 * allowed. Returns 0, or -1 with 401 / 403 set. */
int admin_auth(admin_req_t *r, unsigned allowed);
/* Evicts a token from the cache (revocation). */
void admin_auth_forget(admin_t *app, int64_t token_id);
/* Creates a token: fills token (po_ + 43 characters + NUL, 47 bytes) and
 * *id. Returns 0, or -1 with errstr. Runs in the current transaction of pg. */
int admin_token_create(PGconn *pg, const char *name, const char *role,
                       const char *created_by, char *token, size_t token_size,
                       int64_t *id, char *errstr, size_t errstr_size);
/* Random bytes from getrandom(2). Returns 0 or -1. */
int admin_random(void *buf, size_t len);
void h_me(admin_req_t *r);
void h_tokens_list(admin_req_t *r);
void h_tokens_create(admin_req_t *r);
void h_tokens_revoke(admin_req_t *r);

/* codes.c */
void h_codes_list(admin_req_t *r);
void h_codes_create(admin_req_t *r);
void h_codes_get(admin_req_t *r);
void h_codes_update(admin_req_t *r);
void h_codes_pause(admin_req_t *r);
void h_codes_resume(admin_req_t *r);
void h_codes_archive(admin_req_t *r);

/* The spec definition (section 3) built from a code input (or a template
 * when template is set: no code, no version), validated field by field.
 * On success *spec is the definition's JSON object (code set unless
 * template), *description, *timezone are borrowed from in (NULL when
 * absent). Field errors go to f; the time-zone conversions use the worker's
 * PostgreSQL. Returns 0 when f got no error. */
int admin_code_input(admin_req_t *r, json_t *in, int is_put, int is_template,
                     admin_fields_t *f, json_t **spec, const char **description,
                     const char **timezone, int64_t *version);

/* gen.c */
void h_codes_bulk(admin_req_t *r);
void h_codes_vip(admin_req_t *r);

/* validate.c */
void h_validate(admin_req_t *r);

/* reads.c */
void h_redemptions(admin_req_t *r);
void h_dashboard(admin_req_t *r);
void h_usage(admin_req_t *r);
void h_audit(admin_req_t *r);
void h_dlq(admin_req_t *r);
void h_dlq_replay(admin_req_t *r);

/* server.c */
void h_healthz(admin_req_t *r);
void h_readyz(admin_req_t *r);
void h_metrics(admin_req_t *r);
void h_openapi(admin_req_t *r);
void h_ui_index(admin_req_t *r);
void h_ui_file(admin_req_t *r);

#endif
