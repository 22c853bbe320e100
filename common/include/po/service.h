/* po_service: the skeleton every service shares: configuration, logging,
 * dependency probes, the health/metrics endpoint, and a poll loop that runs
 * until SIGTERM or SIGINT. Later stages plug their work in through tick. */
#ifndef PO_SERVICE_H
#define PO_SERVICE_H

#include "po/deps.h"

typedef struct po_service_def {
        const char *name;     /* e.g. "validator"; also the log prefix */
        const char *port_env; /* env variable of the health port */
        int default_port;     /* health port when port_env is unset */
        unsigned deps;        /* dependencies needed, bits of 1 << PO_DEP_x */
} po_service_def_t;

/* Runs the service until a termination signal. Options:
 *   --check   probe the dependencies once, print the result, exit 0 when all
 *             answer and 1 when not (for scripts and tests)
 * Returns the process exit status. */
int po_service_main(const po_service_def_t *def, int argc, char **argv);

#endif
