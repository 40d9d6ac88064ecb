#!/usr/bin/env bash
# A local Keycloak for keygate development and tests (loopback only, dev mode, H2 database).
#
#   scripts/keycloak.sh start    download (once), unpack, import keycloak/keygate-realm.json, start, wait
#   scripts/keycloak.sh stop     stop the instance this script started
#   scripts/keycloak.sh reset    stop, wipe the dev database, start with a freshly imported realm
#   scripts/keycloak.sh status   exit 0 when the keygate realm answers
#   scripts/keycloak.sh env      print `export ...` lines for eval "$(scripts/keycloak.sh env)"
#
# The distribution lives in ${KEYGATE_CACHE:-$HOME/.cache/keygate}, outside the repo.
#
# Redirect URIs, found empirically on Keycloak 26.5.6: a registered redirect URI WITHOUT a port on
# 127.0.0.1, [::1] or localhost matches that host on ANY port (RFC 8252 loopback rule), so
# "http://127.0.0.1/login/callback" accepts http://127.0.0.1:<any port>/login/callback but not other
# paths, and "http://localhost/login/callback" does the same for localhost. A registered port is exact
# ("http://127.0.0.1:8000/login/callback" rejects :45678). Only a trailing "*" is a wildcard:
# "http://127.0.0.1:*/login/callback" matches nothing, "http://127.0.0.1:*" matches any port and path
# but not the port-less URI, and "http://127.0.0.1*" even accepts http://127.0.0.1.evil.example/.
# post.logout.redirect.uris follows the same rules: "http://127.0.0.1/*" = any port, any path (and no
# path); "http://127.0.0.1/" = only the root on any port.
set -euo pipefail

KEYCLOAK_VERSION=26.5.6

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${KEYGATE_CACHE:-${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}/.cache/keygate}
KC_HOME=$CACHE/keycloak-$KEYCLOAK_VERSION
ZIP=$CACHE/keycloak-quarkus-dist-$KEYCLOAK_VERSION.zip
REALM_FILE=$ROOT/keycloak/keygate-realm.json
PIDFILE=$CACHE/keycloak.pid
LOG=$CACHE/keycloak.log
HASHFILE=$CACHE/keycloak-$KEYCLOAK_VERSION.realm.sha256

HOST=127.0.0.1
PORT=8180
MGMT_PORT=${KEYCLOAK_MANAGEMENT_PORT:-9000}
BASE=http://$HOST:$PORT
REALM=keygate
ISSUER=$BASE/realms/$REALM
DISCOVERY=$ISSUER/.well-known/openid-configuration
CLIENT_ID=keygate
CLIENT_SECRET=keygate-dev-secret
ADMIN_USER="admin"
ADMIN_PASSWORD="admin"
START_TIMEOUT=${KEYCLOAK_START_TIMEOUT:-180}

log() { echo "keycloak.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

realm_answers() {
  [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$DISCOVERY" 2>/dev/null || true)" = 200 ]
}

# Prints the pid of the instance this script started, if it is still running.
our_pid() {
  [ -f "$PIDFILE" ] || return 1
  local pid
  pid=$(cat "$PIDFILE" 2>/dev/null || true)
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  # Guard against a recycled pid: the process must be a Keycloak (kc.sh or its java).
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qiE 'keycloak|kc\.sh' || return 1
  echo "$pid"
}

pick_java_home() {
  # Keycloak 26 needs Java 17, 21 or 25. Prefer JAVA_HOME / the default java, else a JDK under /usr/lib/jvm.
  if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then
    return 0
  fi
  if command -v java >/dev/null 2>&1; then
    local major
    major=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)
    if [ -n "$major" ] && [ "$major" -ge 17 ]; then
      return 0
    fi
  fi
  local jdk
  for jdk in /usr/lib/jvm/java-17-openjdk-* /usr/lib/jvm/java-21-openjdk-* /usr/lib/jvm/temurin-25-*; do
    if [ -x "$jdk/bin/java" ]; then
      export JAVA_HOME=$jdk
      log "using JAVA_HOME=$JAVA_HOME"
      return 0
    fi
  done
  die "no Java 17+ found (apt-get install -y openjdk-17-jre-headless)"
}

ensure_distribution() {
  mkdir -p "$CACHE"
  if [ ! -x "$KC_HOME/bin/kc.sh" ]; then
    if [ ! -s "$ZIP" ]; then
      command -v mvn >/dev/null 2>&1 || die "mvn is needed to fetch Keycloak (apt-get install -y maven)"
      log "fetching org.keycloak:keycloak-quarkus-dist:$KEYCLOAK_VERSION:zip with Maven"
      mvn -B -q dependency:copy \
        -Dartifact="org.keycloak:keycloak-quarkus-dist:$KEYCLOAK_VERSION:zip" \
        -DoutputDirectory="$CACHE" >&2
      [ -s "$ZIP" ] || die "Maven did not produce $ZIP"
    fi
    log "unpacking $ZIP into $CACHE"
    local tmp
    tmp=$(mktemp -d "$CACHE/unpack.XXXXXX")
    unzip -q "$ZIP" -d "$tmp"
    rm -rf "$KC_HOME"
    mv "$tmp/keycloak-$KEYCLOAK_VERSION" "$KC_HOME"
    rm -rf "$tmp"
  fi
}

# --import-realm skips a realm that already exists. When the realm file changed since the last
# successful import, wipe the dev database (data/h2) so that the new file is what Keycloak imports.
prepare_import() {
  local want have
  want=$(sha256sum "$REALM_FILE" | cut -d' ' -f1)
  have=$(cat "$HASHFILE" 2>/dev/null || true)
  if [ "$want" != "$have" ]; then
    if [ -d "$KC_HOME/data/h2" ]; then
      log "realm file differs from the last one imported (or reset): wiping $KC_HOME/data/h2"
    fi
    rm -rf "$KC_HOME/data/h2" "$HASHFILE"
  fi
  mkdir -p "$KC_HOME/data/import"
  rm -f "$KC_HOME/data/import/"*.json
  cp "$REALM_FILE" "$KC_HOME/data/import/keygate-realm.json"
  echo "$want"
}

print_summary() {
  cat <<EOF
Keycloak $KEYCLOAK_VERSION is up at $BASE
  issuer:         $ISSUER
  client:         $CLIENT_ID / $CLIENT_SECRET
  demo users:     alice / alice-password (keygate-admin), bob / bob-password
  master admin:   $ADMIN_USER / $ADMIN_PASSWORD ($BASE/admin/)
  log:            $LOG
  environment:    eval "\$(scripts/keycloak.sh env)"
EOF
}

cmd_start() {
  [ -f "$REALM_FILE" ] || die "missing $REALM_FILE"
  local want pid
  want=$(sha256sum "$REALM_FILE" | cut -d' ' -f1)

  if realm_answers; then
    if pid=$(our_pid) && [ "$want" != "$(cat "$HASHFILE" 2>/dev/null || true)" ]; then
      log "realm file changed since this instance imported it: restarting (pid $pid)"
      cmd_stop
    else
      if ! our_pid >/dev/null; then
        log "reusing a Keycloak that already answers on $BASE (not started by this script)"
        if [ "$want" != "$(cat "$HASHFILE" 2>/dev/null || true)" ]; then
          log "warning: it may serve an older keygate realm than $REALM_FILE"
        fi
      else
        log "reusing the running Keycloak (pid $(our_pid)) on $BASE"
      fi
      print_summary
      return 0
    fi
  fi

  if pid=$(our_pid); then
    log "a Keycloak started earlier (pid $pid) is running but the realm does not answer: stopping it"
    cmd_stop
  fi
  if curl -s -o /dev/null --max-time 3 "$BASE/" 2>/dev/null; then
    die "something else listens on $BASE but does not serve realm $REALM; stop it first"
  fi

  pick_java_home
  ensure_distribution
  want=$(prepare_import)

  : >"$LOG"
  log "starting Keycloak $KEYCLOAK_VERSION on $BASE (log: $LOG)"
  local started=$SECONDS
  (
    cd "$KC_HOME"
    export KC_BOOTSTRAP_ADMIN_USERNAME=$ADMIN_USER KC_BOOTSTRAP_ADMIN_PASSWORD=$ADMIN_PASSWORD
    exec setsid nohup bin/kc.sh start-dev \
      --http-host="$HOST" --http-port="$PORT" \
      --http-management-port="$MGMT_PORT" --http-management-host="$HOST" \
      --hostname-strict=false \
      --import-realm --health-enabled=true \
      </dev/null >>"$LOG" 2>&1
  ) &
  pid=$!
  echo "$pid" >"$PIDFILE"

  while ! realm_answers; do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "Keycloak exited during start-up; last lines of $LOG:"
      tail -n 60 "$LOG" >&2
      rm -f "$PIDFILE"
      exit 1
    fi
    if [ $((SECONDS - started)) -ge "$START_TIMEOUT" ]; then
      log "Keycloak did not serve $DISCOVERY within ${START_TIMEOUT}s; last lines of $LOG:"
      tail -n 60 "$LOG" >&2
      cmd_stop || true
      exit 1
    fi
    sleep 2
  done
  echo "$want" >"$HASHFILE"
  log "ready after $((SECONDS - started))s (pid $pid)"
  print_summary
}

cmd_stop() {
  local pid
  if ! pid=$(our_pid); then
    rm -f "$PIDFILE"
    if realm_answers; then
      log "a Keycloak answers on $BASE but was not started by this script; leaving it alone"
    else
      log "not running"
    fi
    return 0
  fi
  log "stopping Keycloak (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "still running after 30s: killing its process group"
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  # kc.sh forwards TERM to java; wait until the port is free as well.
  for _ in $(seq 1 40); do
    curl -s -o /dev/null --max-time 1 "$BASE/" 2>/dev/null || break
    sleep 0.5
  done
  rm -f "$PIDFILE"
  log "stopped"
}

cmd_status() {
  if realm_answers; then
    echo "Keycloak realm $REALM answers at $ISSUER"
  else
    echo "Keycloak realm $REALM does not answer at $ISSUER" >&2
    exit 1
  fi
}

cmd_env() {
  cat <<EOF
export KEYGATE_ISSUER_URL=$ISSUER
export KEYGATE_CLIENT_ID=$CLIENT_ID
export KEYGATE_CLIENT_SECRET=$CLIENT_SECRET
export KEYCLOAK_ADMIN_URL=$BASE
export KEYCLOAK_ADMIN_USER=$ADMIN_USER
export KEYCLOAK_ADMIN_PASSWORD=$ADMIN_PASSWORD
EOF
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  reset)
    cmd_stop
    rm -f "$HASHFILE"
    cmd_start
    ;;
  status) cmd_status ;;
  env) cmd_env ;;
  *)
    echo "usage: $0 start|stop|reset|status|env" >&2
    exit 2
    ;;
esac
