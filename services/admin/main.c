/* admin: the admin API and UI, and checkout validation.
 * For now the shared service skeleton: it connects, reports health on
 * /healthz, /readyz and /metrics, and exits cleanly on SIGTERM. */
#include "po/service.h"

int main(int argc, char **argv)
{
        static const po_service_def_t def = {
            .name = "admin",
            .port_env = "PROMO_ADMIN_HTTP_PORT",
            .default_port = 58080,
            .deps = PO_DEPS_ALL,
        };

        return po_service_main(&def, argc, argv);
}
