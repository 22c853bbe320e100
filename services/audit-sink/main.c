/* audit-sink: stores usage events and dead letters in PostgreSQL.
 * For now the shared service skeleton: it connects, reports health on
 * /healthz, /readyz and /metrics, and exits cleanly on SIGTERM. */
#include "po/service.h"

int main(int argc, char **argv)
{
        static const po_service_def_t def = {
            .name = "audit-sink",
            .port_env = "PROMO_AUDIT_SINK_HTTP_PORT",
            .default_port = 58084,
            .deps = (1u << PO_DEP_KAFKA) | (1u << PO_DEP_POSTGRES),
        };

        return po_service_main(&def, argc, argv);
}
