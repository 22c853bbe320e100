/* po_config: where a service finds the stack. Read from the environment with
 * the defaults of scripts/env.sh, so a service started by hand on the local
 * stack needs no flags. */
#ifndef PO_CONFIG_H
#define PO_CONFIG_H

#include <stddef.h>

#include "po/err.h"

typedef struct po_config {
        char kafka_brokers[256]; /* PROMO_KAFKA_BROKERS, default 127.0.0.1:59092 */
        char redis_host[128];    /* host part of PROMO_REDIS_URL, default 127.0.0.1 */
        int redis_port;          /* port part of PROMO_REDIS_URL, default 56379 */
        char pg_dsn[512];        /* PROMO_PG_DSN, a libpq conninfo string */
        int http_port;           /* health/metrics port; 0 = none */
} po_config_t;

/* Fills cfg from the environment. http_port comes from the variable named
 * port_env (e.g. "PROMO_VALIDATOR_HTTP_PORT") or default_http_port.
 * Returns PO_ERR_BAD_INPUT with a message in errstr when a value does not
 * parse or does not fit (never truncated silently). */
po_err_t po_config_load(po_config_t *cfg, const char *port_env, int default_http_port,
                        char *errstr, size_t errstr_size);

/* Parses a decimal TCP port 1..65535 (0 allowed when allow_zero) from s.
 * Returns PO_OK and sets *out, or PO_ERR_BAD_INPUT. */
po_err_t po_config_parse_port(const char *s, int allow_zero, int *out);

/* The environment variable name, or def when it is unset or empty (a
 * service's topic names, modes and paths). */
const char *po_env_or(const char *name, const char *def);

#endif
