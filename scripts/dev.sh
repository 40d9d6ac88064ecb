#!/usr/bin/env bash
# Runs keygate locally against a Keycloak with the demo realm: the first command to try.
#
#   scripts/dev.sh                   keygate alone
#   scripts/dev.sh --example notes   the notes example application inside keygate (examples/notes)
#
# 0. checks (and on Debian installs) its prerequisites: scripts/install.sh --for dev,
# 1. starts Keycloak on 127.0.0.1:8180 with keycloak/keygate-realm.json (scripts/keycloak.sh start;
#    a Keycloak that already runs is reused; on a fresh machine it is fetched once, which takes a while),
# 2. builds keygate (cargo build, debug),
# 3. runs keygate in the foreground on http://127.0.0.1:8000 with the SQLite file keygate.db in the
#    repo root (gitignored), password login enabled and RUST_LOG=info.
#
# Ctrl-C stops keygate. Keycloak keeps running for the next start; stop it with
#   scripts/keycloak.sh stop
#
# Overrides: KEYGATE_BIND, KEYGATE_DATABASE_URL, KEYGATE_PASSWORD_LOGIN and RUST_LOG from the caller's
# environment win over the defaults above.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

log() { echo "dev.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

# Checks in well under a second (installs on Debian, as root or through passwordless sudo, what is
# missing) cargo, Java 17+, Maven, curl, unzip, libpq-dev and pkg-config; fails at once otherwise.
scripts/install.sh --for dev

BIND=${KEYGATE_BIND:-127.0.0.1:8000}
URL=http://$BIND

# Fail early, before the slow steps, when something already listens on keygate's port.
if curl -s -o /dev/null --max-time 2 "$URL/" 2>/dev/null; then
  die "something already listens on $URL (another scripts/dev.sh?); stop it or set KEYGATE_BIND"
fi

scripts/keycloak.sh start >/dev/null
eval "$(scripts/keycloak.sh env)"

case "${1:-}" in
  "")
    log "building keygate (cargo build)"
    cargo build --bin keygate
    BIN=$ROOT/target/debug/keygate
    ;;
  --example)
    [ -n "${2:-}" ] && [ -f "examples/$2/main.rs" ] || die "--example needs one of: $(ls examples | tr '\n' ' ')"
    log "building the $2 example (cargo build --example $2)"
    cargo build --example "$2"
    BIN=$ROOT/target/debug/examples/$2
    ;;
  *) die "unknown arguments: $*; see the top of scripts/dev.sh" ;;
esac
[ -x "$BIN" ] || die "cargo build did not produce $BIN"

export KEYGATE_BIND=$BIND
export KEYGATE_DATABASE_URL=${KEYGATE_DATABASE_URL:-$ROOT/keygate.db}
export KEYGATE_PASSWORD_LOGIN=${KEYGATE_PASSWORD_LOGIN:-true}
export RUST_LOG=${RUST_LOG:-info}
# The Keycloak client's redirect URIs admit http://127.0.0.1:<any port>/login/callback, so the public
# URL defaults to the bound address (KEYGATE_PUBLIC_URL unset).

cat <<EOF

  keygate:         $URL
  demo users:      alice / alice-password (keygate-admin role)
                   bob / bob-password
  Keycloak admin:  $KEYCLOAK_ADMIN_URL/admin/  (admin / admin)
  database:        $KEYGATE_DATABASE_URL (SQLite)

  Ctrl-C stops keygate; Keycloak keeps running (stop it with: scripts/keycloak.sh stop).

EOF

exec "$BIN"
