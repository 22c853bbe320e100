#!/usr/bin/env bash
# The admin UI's browser tests (CTest: browser_admin_ui, label integration,
# fixture stack). Starts the real admin (build/bin/admin, or $PROMO_BIN_DIR)
# on a free port with tokens of each role made by `admin token create`, and
# the pipeline services (intake-normalizer, validator, calculator, audit-sink)
# so an order using the code created in the browser flows through to the
# dashboard; then runs `node --test` (Debian's chromium through
# playwright-core) and stops everything it started, by pid.
#
#   tests/browser/run.sh [node --test arguments...]
#
# Needs the stack (scripts/stack up) and `npm ci --prefix tests/browser`
# (scripts/deps does it). PROMO_UI_TEST_KEEP=1 leaves the logs in place.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PROMO_ROOT=$(cd "$here/../.." && pwd)
. "$PROMO_ROOT/scripts/env.sh"
bin=${PROMO_BIN_DIR:-$PROMO_BUILD_DIR/bin}
[ -x "$bin/admin" ] || die "no $bin/admin (build first, or set PROMO_BIN_DIR)"
[ -x /usr/bin/chromium ] || die "no /usr/bin/chromium (scripts/deps installs Debian's chromium)"
[ -d "$here/node_modules/playwright-core" ] ||
  die "playwright-core is not installed: PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix tests/browser"

work=$(mktemp -d "${TMPDIR:-/tmp}/promo-ui-test.XXXXXX")
pids=()
cleanup() {
  local rc=$? p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "$rc" != 0 ] || [ "${PROMO_UI_TEST_KEEP:-0}" = 1 ]; then
    for f in "$work"/*.log; do
      [ -s "$f" ] || continue
      echo "--- last lines of $f" >&2
      tail -n 30 "$f" >&2
    done
    log "logs kept in $work"
  else
    rm -rf "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

wait_ready() { # name port pid
  local i
  for i in $(seq 1 300); do
    if ! kill -0 "$3" 2>/dev/null; then die "$1 exited during start-up (see $work/$1.log)"; fi
    if curl -fsS -o /dev/null "http://127.0.0.1:$2/readyz" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  die "$1 not ready on port $2 within 30 s"
}

run=$(date +%s)-$$
export PROMO_INSTANCE="uitest-$run" PROMO_STAGE_BATCH_MS=20
export PROMO_INTAKE_PROFILES="$PROMO_ROOT/deploy/intake-profiles.conf"

# The admin: schema, tokens of every role (each printed once), the server.
"$bin/promo-migrate" >"$work/migrate.log" 2>&1 || die "promo-migrate failed (see $work/migrate.log)"
token() { "$bin/admin" token create --name "ui-$1-$run" --role "$1" 2>>"$work/tokens.log" | tail -n 1; }
export UI_TEST_MARKETER_TOKEN UI_TEST_ANALYST_TOKEN UI_TEST_CHECKOUT_TOKEN UI_TEST_ADMIN_TOKEN
UI_TEST_MARKETER_TOKEN=$(token marketer)
UI_TEST_ANALYST_TOKEN=$(token analyst)
UI_TEST_CHECKOUT_TOKEN=$(token checkout)
UI_TEST_ADMIN_TOKEN=$(token admin)
for t in "$UI_TEST_MARKETER_TOKEN" "$UI_TEST_ANALYST_TOKEN" "$UI_TEST_CHECKOUT_TOKEN" "$UI_TEST_ADMIN_TOKEN"; do
  case "$t" in po_*) ;; *) die "admin token create did not print a token (see $work/tokens.log)" ;; esac
done

admin_port=$(free_port)
PROMO_ADMIN_HTTP_PORT=$admin_port PROMO_ADMIN_UI_DIR="$PROMO_ROOT/services/admin/ui" \
  "$bin/admin" >"$work/admin.log" 2>&1 &
pids+=($!)
wait_ready admin "$admin_port" "$!"

# The pipeline, each service on a health port of its own.
for svc in intake-normalizer validator calculator audit-sink; do
  port=$(free_port)
  PROMO_INTAKE_HTTP_PORT=$port PROMO_VALIDATOR_HTTP_PORT=$port PROMO_CALCULATOR_HTTP_PORT=$port \
    PROMO_AUDIT_SINK_HTTP_PORT=$port "$bin/$svc" >"$work/$svc.log" 2>&1 &
  pids+=($!)
  wait_ready "$svc" "$port" "$!"
done

export UI_TEST_BASE_URL="http://127.0.0.1:$admin_port" UI_TEST_RUN="$run" UI_TEST_WORK="$work"
export PROMO_BIN_DIR="$bin" PROMO_PG_DSN PROMO_KAFKA_BROKERS
log "admin on $UI_TEST_BASE_URL, pipeline up; running the browser tests"
cd "$here"
node --test --test-concurrency=1 --test-reporter=spec "$@" ./*.test.mjs
