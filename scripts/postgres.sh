#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for keygate's tests (Debian's postgresql package).
#
#   scripts/postgres.sh start    initdb (once) and start on 127.0.0.1:5433; create role + database
#   scripts/postgres.sh stop     stop it
#   scripts/postgres.sh status   exit 0 when the test database accepts connections
#   scripts/postgres.sh url      print the connection URL
#
# Trust authentication on loopback, fsync off: for tests only, never for real data.
# The role `keygate` owns `keygate_test` and has CREATEDB, so tests may create scratch databases.
#
# The cluster lives in $KEYGATE_CACHE/postgres (default ~/.cache/keygate/postgres). When run as root,
# the server runs as the `postgres` OS user, which cannot enter root's home (/root is mode 700); then
# the cluster goes to /var/tmp/keygate-postgres instead (override either with KEYGATE_PG_DIR).
set -euo pipefail

CACHE=${KEYGATE_CACHE:-${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}/.cache/keygate}
HOST=127.0.0.1
PORT=5433
DB=keygate_test
DB_USER=keygate
DB_PASSWORD=keygate
URL="postgres://$DB_USER:$DB_PASSWORD@$HOST:$PORT/$DB"

log() { echo "postgres.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

pg_bindir() {
  local d
  # shellcheck disable=SC2012
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
  [ -n "$d" ] && [ -x "$d/initdb" ] && echo "$d"
}

ensure_installed() {
  if [ -z "$(pg_bindir)" ]; then
    [ "$(id -u)" = 0 ] || die "PostgreSQL is not installed (sudo apt-get install -y postgresql)"
    log "installing Debian's postgresql package"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y postgresql >&2 || { apt-get update >&2 && apt-get install -y postgresql >&2; }
  fi
  BIN=$(pg_bindir) || die "no /usr/lib/postgresql/*/bin/initdb after installing postgresql"
}

# Runs a command as the cluster's OS user (postgres when we are root, else ourselves).
as_pg() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

choose_dir() {
  if [ -n "${KEYGATE_PG_DIR:-}" ]; then
    PGROOT=$KEYGATE_PG_DIR
  else
    PGROOT=$CACHE/postgres
    if [ "$(id -u)" = 0 ]; then
      mkdir -p "$CACHE"
      if ! runuser -u postgres -- test -x "$CACHE" 2>/dev/null; then
        PGROOT=/var/tmp/keygate-postgres
      fi
    fi
  fi
  DATA=$PGROOT/data
  RUNDIR=$PGROOT/run
  LOG=$PGROOT/postgres.log
}

psql_admin() {
  "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$HOST" -p "$PORT" -U postgres -d postgres "$@"
}

db_answers() {
  command -v psql >/dev/null 2>&1 || [ -n "${BIN:-}" ] || return 1
  PGPASSWORD=$DB_PASSWORD PGCONNECT_TIMEOUT=3 "${BIN:-/usr/bin}/psql" -X -q -At \
    "$URL" -c 'select 1' >/dev/null 2>&1
}

ours_running() {
  [ -f "$DATA/postmaster.pid" ] && as_pg "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

cmd_start() {
  ensure_installed
  choose_dir

  if ours_running; then
    log "reusing the running cluster in $DATA"
  elif "$BIN/pg_isready" -q -h "$HOST" -p "$PORT" 2>/dev/null; then
    if db_answers; then
      log "reusing a PostgreSQL that already serves $DB on $HOST:$PORT (not started by this script)"
      echo "$URL"
      return 0
    fi
    die "something else listens on $HOST:$PORT; stop it or free the port"
  else
    if [ ! -f "$DATA/PG_VERSION" ]; then
      log "creating a cluster in $DATA"
      rm -rf "$DATA"
      mkdir -p "$DATA" "$RUNDIR"
      [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$PGROOT"
      chmod 700 "$DATA"
      as_pg "$BIN/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 --locale=C >"$PGROOT/initdb.log" 2>&1 ||
        { cat "$PGROOT/initdb.log" >&2; die "initdb failed"; }
      as_pg tee -a "$DATA/postgresql.conf" >/dev/null <<EOF

# keygate test cluster (scripts/postgres.sh): loopback only, durability off
listen_addresses = '$HOST'
port = $PORT
unix_socket_directories = '$RUNDIR'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
log_min_messages = warning
EOF
      as_pg tee "$DATA/pg_hba.conf" >/dev/null <<EOF
# keygate test cluster: trust on the local socket and IPv4 loopback only
local all all trust
host  all all 127.0.0.1/32 trust
EOF
    fi
    mkdir -p "$RUNDIR"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$RUNDIR" "$PGROOT"
    log "starting PostgreSQL ($("$BIN/postgres" --version | awk '{print $3}')) on $HOST:$PORT (log: $LOG)"
    [ "$(id -u)" = 0 ] && { touch "$LOG"; chown postgres:postgres "$LOG"; }
    # setsid: keep the server out of the caller's process group and terminal.
    if ! as_pg setsid -w "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start >/dev/null </dev/null; then
      tail -n 40 "$LOG" >&2 || true
      die "pg_ctl start failed"
    fi
  fi

  psql_admin <<EOF
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$DB_USER') THEN
    CREATE ROLE $DB_USER LOGIN CREATEDB PASSWORD '$DB_PASSWORD';
  END IF;
END
\$\$;
EOF
  if [ "$(psql_admin -At -c "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != 1 ]; then
    psql_admin -c "CREATE DATABASE $DB OWNER $DB_USER"
  fi
  db_answers || die "cannot connect to $URL"
  # Each PostgreSQL test makes a scratch database (keygate_t_*); drop those of earlier runs.
  local stale
  stale=$(psql_admin -At -c "SELECT datname FROM pg_database WHERE datname LIKE 'keygate\_t\_%'")
  if [ -n "$stale" ]; then
    log "dropping $(echo "$stale" | wc -l) scratch database(s) of earlier test runs"
    for db in $stale; do psql_admin -q -c "DROP DATABASE IF EXISTS \"$db\"" >/dev/null || true; done
  fi
  log "ready: $URL"
  echo "$URL"
}

cmd_stop() {
  BIN=$(pg_bindir) || { log "PostgreSQL is not installed"; return 0; }
  choose_dir
  if ours_running; then
    as_pg "$BIN/pg_ctl" -D "$DATA" -w -t 60 -m fast stop >/dev/null
    log "stopped"
  else
    log "not running"
  fi
}

cmd_status() {
  BIN=$(pg_bindir || true)
  if db_answers; then
    echo "PostgreSQL answers at $URL"
  else
    echo "PostgreSQL does not answer at $URL" >&2
    exit 1
  fi
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  url) echo "$URL" ;;
  *)
    echo "usage: $0 start|stop|status|url" >&2
    exit 2
    ;;
esac
