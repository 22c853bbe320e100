/* po_deps: long-lived connections to the stack's servers and cheap probes of
 * each, used for /readyz and by the services at start-up. */
#ifndef PO_DEPS_H
#define PO_DEPS_H

#include <stddef.h>

#include "po/config.h"
#include "po/err.h"

typedef struct po_deps po_deps_t;

enum { PO_DEP_KAFKA, PO_DEP_REDIS, PO_DEP_POSTGRES, PO_DEP_COUNT };

/* Which dependencies a service needs (bit (1 << PO_DEP_x)). */
#define PO_DEPS_ALL ((1u << PO_DEP_COUNT) - 1u)

/* Creates the handles; connects lazily on the first probe. The config is
 * copied. Returns NULL with a message in errstr on failure. */
po_deps_t *po_deps_new(const po_config_t *cfg, unsigned needed, char *errstr,
                       size_t errstr_size);

/* Probes every needed dependency (Kafka metadata, Redis PING, PostgreSQL
 * SELECT 1), reconnecting what is broken. Each probe waits at most
 * timeout_ms. Returns PO_OK when all answered. */
po_err_t po_deps_probe(po_deps_t *deps, int timeout_ms);

/* The dependency's name ("kafka", "redis", "postgres"). */
const char *po_deps_name(int dep);
/* Whether dep is needed, and whether its last probe succeeded. */
int po_deps_needed(const po_deps_t *deps, int dep);
int po_deps_up(const po_deps_t *deps, int dep);
/* The last probe's error for dep ("" when up); owned by deps. */
const char *po_deps_error(const po_deps_t *deps, int dep);

/* Closes every connection and frees deps. Accepts NULL. */
void po_deps_destroy(po_deps_t *deps);

#endif
