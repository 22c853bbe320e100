/* validator: checks each order's codes and reserves redemptions.
 * For now the shared service skeleton: it connects, reports health on
 * /healthz, /readyz and /metrics, and exits cleanly on SIGTERM. */
#include "po/service.h"

int main(int argc, char **argv)
{
        static const po_service_def_t def = {
            .name = "validator",
            .port_env = "PROMO_VALIDATOR_HTTP_PORT",
            .default_port = 58082,
            .deps = PO_DEPS_ALL,
        };

        return po_service_main(&def, argc, argv);
}
