/* intake-normalizer: turns each channel payload of orders.raw into a canonical order.
 * For now the shared service skeleton: it connects, reports health on
 * /healthz, /readyz and /metrics, and exits cleanly on SIGTERM. */
#include "po/service.h"

int main(int argc, char **argv)
{
        static const po_service_def_t def = {
            .name = "intake-normalizer",
            .port_env = "PROMO_INTAKE_HTTP_PORT",
            .default_port = 58081,
            .deps = 1u << PO_DEP_KAFKA,
        };

        return po_service_main(&def, argc, argv);
}
