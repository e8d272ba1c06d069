#!/bin/sh
# The image's entrypoint: the spec (written from the template on first start), the store
# reachable and migrated, then `retrainer serve` (no arguments) or any retrainer command
# (`docker compose run --rm retrainer train weather --deploy`).
#
# Environment (compose sets these):
#   RETRAINER_CONFIG      spec path (default /srv/retrainer/retrainer.yaml; written by
#                         `retrainer init` when missing: the commented weather example)
#   RETRAINER_STORE       store URL, e.g. postgresql+psycopg://retrainer:pw@db:5432/retrainer
#   RETRAINER_ARTIFACTS   artifact folder or URL (default /srv/retrainer/artifacts)
#   RETRAINER_API_TOKEN   bearer token of the mutating routes (serve refuses 0.0.0.0 without)
#   RETRAINER_HOST        interface to bind (default 0.0.0.0), RETRAINER_PORT (default 8000)
#   RETRAINER_STORE_WAIT  seconds to wait for the store to answer (default 60)
set -eu

export RETRAINER_CONFIG="${RETRAINER_CONFIG:-/srv/retrainer/retrainer.yaml}"
export RETRAINER_ARTIFACTS="${RETRAINER_ARTIFACTS:-/srv/retrainer/artifacts}"
wait_s="${RETRAINER_STORE_WAIT:-60}"

say() { echo "entrypoint: $*" >&2; }

if [ ! -f "$RETRAINER_CONFIG" ]; then
  say "no spec at $RETRAINER_CONFIG: writing the example (mount your own retrainer.yaml there)"
  retrainer init "$RETRAINER_CONFIG" >/dev/null
fi

# `db upgrade` creates or migrates the schema. Exit 1 is a store that does not answer yet
# (retried until RETRAINER_STORE_WAIT); exit 2 is a bad spec or URL (no retry).
start=$(date +%s)
while :; do
  rc=0
  out=$(retrainer db upgrade 2>&1) || rc=$?
  [ "$rc" -eq 0 ] && break
  if [ "$rc" -ne 1 ]; then
    echo "$out" >&2
    say "retrainer db upgrade exited $rc (a bad spec or store URL): not retrying"
    exit "$rc"
  fi
  if [ $(($(date +%s) - start)) -ge "$wait_s" ]; then
    echo "$out" >&2
    say "the store did not become ready within ${wait_s}s (RETRAINER_STORE_WAIT); giving up"
    exit "$rc"
  fi
  sleep 1
done
say "$out"

if [ $# -eq 0 ] || [ "$1" = serve ]; then
  [ $# -gt 0 ] && shift
  exec retrainer serve --host "${RETRAINER_HOST:-0.0.0.0}" --port "${RETRAINER_PORT:-8000}" "$@"
fi
exec retrainer "$@"
