# Shared settings for the project's scripts. Source it; do not run it.
# Every port is fixed, documented in README.md, and away from system defaults.
PROMO_ROOT=${PROMO_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
PROMO_STACK_DIR=${PROMO_STACK_DIR:-$PROMO_ROOT/.stack}
PROMO_CACHE_DIR=${PROMO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/promo-oms}
PROMO_PG_PORT=${PROMO_PG_PORT:-55432}
PROMO_REDIS_PORT=${PROMO_REDIS_PORT:-56379}
PROMO_KAFKA_PORT=${PROMO_KAFKA_PORT:-59092}
PROMO_KAFKA_CONTROLLER_PORT=${PROMO_KAFKA_CONTROLLER_PORT:-59093}
PROMO_KAFKA_VERSION=3.7.1
PROMO_BUILD_DIR=${PROMO_BUILD_DIR:-$PROMO_ROOT/build}

# What the services and tests read to find the stack.
export PROMO_KAFKA_BROKERS=${PROMO_KAFKA_BROKERS:-127.0.0.1:$PROMO_KAFKA_PORT}
export PROMO_REDIS_URL=${PROMO_REDIS_URL:-127.0.0.1:$PROMO_REDIS_PORT}
export PROMO_PG_DSN=${PROMO_PG_DSN:-host=127.0.0.1 port=$PROMO_PG_PORT dbname=promo user=promo}

log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }
die() { log "error: $*"; exit 1; }
