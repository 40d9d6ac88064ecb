#!/usr/bin/env bash
# Runs keygate's whole test suite against a real Keycloak and PostgreSQL on loopback.
#
# First runs scripts/install.sh, which checks in seconds (and on Debian installs, as root or through
# passwordless sudo) what the suite needs: Java, Maven, chromium, PostgreSQL, Node.js and
# tests/browser's npm packages; it fails at once, saying what is missing, before the long build.
#
# Starts Keycloak (scripts/keycloak.sh) and PostgreSQL (scripts/postgres.sh) unless they already run,
# and stops at exit only what it started (KEYGATE_KEEP_SERVICES=1 keeps them running anyway).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/install.sh

started_keycloak=0
started_postgres=0
cleanup() {
  local rc=$?
  if [ "${KEYGATE_KEEP_SERVICES:-0}" != 1 ]; then
    if [ "$started_keycloak" = 1 ]; then scripts/keycloak.sh stop || true; fi
    if [ "$started_postgres" = 1 ]; then scripts/postgres.sh stop || true; fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if ! scripts/keycloak.sh status >/dev/null 2>&1; then
  started_keycloak=1
fi
scripts/keycloak.sh start

if ! scripts/postgres.sh status >/dev/null 2>&1; then
  started_postgres=1
fi
scripts/postgres.sh start >/dev/null

eval "$(scripts/keycloak.sh env)"
KEYGATE_TEST_POSTGRES_URL=$(scripts/postgres.sh url)
export KEYGATE_TEST_POSTGRES_URL

mkdir -p artifacts
export KEYGATE_ARTIFACTS_DIR="$PWD/artifacts"

cargo test --locked
# The API reference: a broken link or a public item without docs fails the run.
RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps

if [ -f tests/browser/run.mjs ]; then
  node tests/browser/run.mjs
fi
