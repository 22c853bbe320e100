/* po_service: what every service shares: configuration, logging, dependency
 * probes, the metrics registry, the /healthz /readyz /metrics endpoint, and
 * the termination flag set by SIGTERM and SIGINT.
 *
 * A service with work of its own (a stage) creates a po_service_t and calls
 * po_service_tick from its poll loop; a skeleton service calls
 * po_service_main, which does only that. */
#ifndef PO_SERVICE_H
#define PO_SERVICE_H

#include "po/config.h"
#include "po/deps.h"
#include "po/metrics.h"

typedef struct po_service_def {
        const char *name;     /* e.g. "validator"; also the log prefix */
        const char *port_env; /* env variable of the health port */
        int default_port;     /* health port when port_env is unset */
        unsigned deps;        /* dependencies needed, bits of 1 << PO_DEP_x */
} po_service_def_t;

typedef struct po_service po_service_t;

/* Loads the configuration, creates the dependency handles and the metrics
 * registry, opens the health endpoint and installs the SIGTERM/SIGINT
 * handlers. Does not probe yet. def must outlive the service. Returns NULL
 * with a message in errstr on failure. */
po_service_t *po_service_new(const po_service_def_t *def, char *errstr,
                             size_t errstr_size);

/* Serves waiting health requests (waiting at most timeout_ms) and re-probes
 * the dependencies when the probe interval (2 s) has passed. */
void po_service_tick(po_service_t *svc, int timeout_ms);

/* Probes the dependencies now. Returns 1 when every one answers. */
int po_service_probe(po_service_t *svc);

/* 1 until SIGTERM or SIGINT arrived (or po_service_request_stop). */
int po_service_running(void);
void po_service_request_stop(void);

/* Readiness beyond the dependency probes, set by the work loop (e.g. a stage
 * without partitions yet is not ready). why is copied; NULL when ok. */
void po_service_set_work_ready(po_service_t *svc, int ok, const char *why);

po_metrics_t *po_service_metrics(po_service_t *svc);
const po_config_t *po_service_config(const po_service_t *svc);
const char *po_service_name(const po_service_t *svc);

/* Appends to body what the health endpoint serves for path ("/healthz",
 * "/readyz", "/metrics") and returns its HTTP status (404 for any other
 * path), for a service that serves HTTP itself (the admin). Reads the
 * service's state: call it from the thread that ticks the service. */
int po_service_render(po_service_t *svc, const char *path, po_dynbuf_t *body);

/* Closes everything. Accepts NULL. */
void po_service_destroy(po_service_t *svc);

/* Runs a skeleton service until a termination signal. Options:
 *   --check   probe the dependencies once, print the result, exit 0 when all
 *             answer and 1 when not (for scripts and tests)
 * Returns the process exit status. */
int po_service_main(const po_service_def_t *def, int argc, char **argv);

#endif
