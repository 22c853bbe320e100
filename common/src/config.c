#include "po/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *po_env_or(const char *name, const char *def)
{
        const char *v = getenv(name);

        return v && *v ? v : def;
}

po_err_t po_config_parse_port(const char *s, int allow_zero, int *out)
{
        char *end = NULL;
        long v;

        if (!s || !*s)
                return PO_ERR_BAD_INPUT;
        errno = 0;
        v = strtol(s, &end, 10);
        if (errno || *end != '\0' || v < (allow_zero ? 0 : 1) || v > 65535)
                return PO_ERR_BAD_INPUT;
        *out = (int)v;
        return PO_OK;
}

static po_err_t copy_env(char *dst, size_t dst_size, const char *name, const char *def,
                         char *errstr, size_t errstr_size)
{
        const char *v = getenv(name);
        size_t n;

        if (!v || !*v)
                v = def;
        n = strlen(v);
        if (n >= dst_size) {
                snprintf(errstr, errstr_size, "%s is %zu bytes long; at most %zu allowed",
                         name, n, dst_size - 1);
                return PO_ERR_BAD_INPUT;
        }
        memcpy(dst, v, n + 1);
        return PO_OK;
}

po_err_t po_config_load(po_config_t *cfg, const char *port_env, int default_http_port,
                        char *errstr, size_t errstr_size)
{
        char redis[160];
        char *colon;
        const char *port;
        po_err_t err;

        memset(cfg, 0, sizeof(*cfg));
        err = copy_env(cfg->kafka_brokers, sizeof(cfg->kafka_brokers),
                       "PROMO_KAFKA_BROKERS", "127.0.0.1:59092", errstr, errstr_size);
        if (err)
                return err;
        err = copy_env(cfg->pg_dsn, sizeof(cfg->pg_dsn), "PROMO_PG_DSN",
                       "host=127.0.0.1 port=55432 dbname=promo user=promo", errstr,
                       errstr_size);
        if (err)
                return err;
        err = copy_env(redis, sizeof(redis), "PROMO_REDIS_URL", "127.0.0.1:56379", errstr,
                       errstr_size);
        if (err)
                return err;
        colon = strrchr(redis, ':');
        if (!colon || colon == redis ||
            (size_t)(colon - redis) >= sizeof(cfg->redis_host) ||
            po_config_parse_port(colon + 1, 0, &cfg->redis_port)) {
                snprintf(errstr, errstr_size,
                         "PROMO_REDIS_URL must be host:port, got \"%s\"", redis);
                return PO_ERR_BAD_INPUT;
        }
        memcpy(cfg->redis_host, redis, (size_t)(colon - redis));
        cfg->redis_host[colon - redis] = '\0';

        cfg->http_port = default_http_port;
        port = port_env ? getenv(port_env) : NULL;
        if (port && *port && po_config_parse_port(port, 1, &cfg->http_port)) {
                snprintf(errstr, errstr_size, "%s must be a port 0..65535, got \"%s\"",
                         port_env, port);
                return PO_ERR_BAD_INPUT;
        }
        return PO_OK;
}
