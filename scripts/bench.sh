#!/usr/bin/env bash
# Benchmark of keygate's request hot paths (not a test). Loopback only, about two minutes.
#
#   scripts/bench.sh
#
# Builds keygate in release mode, starts Keycloak if it does not answer yet (and stops it again at the
# end unless KEYGATE_KEEP_SERVICES=1), gets an access token for alice with the password grant, and
# measures with wrk, each after a short warm-up:
#   (a) GET /healthz                          the bare endpoint: HTTP + actix overhead
#   (b) GET /api/me  Authorization: Bearer    validated-token cache on (the default), same process
#   (c) GET /api/me  Authorization: Bearer    a second keygate with KEYGATE_TOKEN_CACHE=false
#   (d) GET /api/me  session cookie only      the browser path: a signed-in session, no TOKEN cookie
#   (e) GET /api/me  session + TOKEN cookies  the browser path as a browser sends it after sign-in
#   (f) GET /        session cookie           the home page of a signed-in browser
# (the sessions sign in with the password form, as a browser would) and prints req/s, p50, p99 and the ratio of req/s to the bare endpoint. The table also goes to
# artifacts/bench.txt, wrk's full output to artifacts/bench-wrk.log.
#
#   DURATION=10s  WARMUP=2s  THREADS=2  CONNECTIONS=64   wrk parameters (wrk -t -c -d --latency)
#
# Every measured request must answer 2xx: a run with non-2xx answers or socket errors is flagged
# in the table and the script exits 1. Both keygates log at RUST_LOG=warn (access logs would
# dominate the measurement); their logs are in the temp dir and shown on failure.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
OUT_DIR=$ROOT/artifacts
OUT=$OUT_DIR/bench.txt
RAW=$OUT_DIR/bench-wrk.log

log() { echo "bench.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

command -v wrk >/dev/null 2>&1 || die "wrk is not installed (sudo apt-get install -y wrk)"
command -v curl >/dev/null 2>&1 || die "curl is not installed (sudo apt-get install -y curl)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/keygate-bench.XXXXXX")
started_keycloak=0
pids=()
failed_run=0

cleanup() {
  local rc=$?
  local pid
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [ "$rc" != 0 ]; then
    local f
    for f in "$WORK"/keygate-*.log; do
      [ -s "$f" ] || continue
      log "last lines of $(basename "$f"):"
      tail -n 30 "$f" >&2
    done
  fi
  rm -rf "$WORK"
  if [ "$started_keycloak" = 1 ] && [ "${KEYGATE_KEEP_SERVICES:-0}" != 1 ]; then
    scripts/keycloak.sh stop || true
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "building keygate (cargo build --release)"
cargo build --release --bin keygate
BIN=$ROOT/target/release/keygate
[ -x "$BIN" ] || die "cargo build --release did not produce $BIN"

if ! scripts/keycloak.sh status >/dev/null 2>&1; then
  started_keycloak=1
fi
scripts/keycloak.sh start >/dev/null
eval "$(scripts/keycloak.sh env)"
TOKEN_URL=$KEYGATE_ISSUER_URL/protocol/openid-connect/token

# Starts keygate on a port the kernel picks (KEYGATE_BIND=127.0.0.1:0) with a fresh SQLite file;
# extra VAR=value arguments go to its environment. Sets $port to where it listens.
start_keygate() {
  local name=$1
  shift
  local logfile=$WORK/keygate-$name.log
  env -u KEYGATE_PUBLIC_URL \
    KEYGATE_BIND=127.0.0.1:0 \
    KEYGATE_DATABASE_URL="$WORK/$name.db" \
    RUST_LOG=warn,keygate::app=info \
    "$@" "$BIN" >"$logfile" 2>&1 &
  pids+=($!)
  local pid=$!
  port=
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || die "keygate ($name) exited during start-up"
    port=$(sed -n 's/.*keygate listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$logfile" | head -n1)
    if [ -n "$port" ] && [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/healthz")" = 200 ]; then
      log "keygate ($name) pid $pid on http://127.0.0.1:$port"
      return 0
    fi
    sleep 0.1
  done
  die "keygate ($name) did not answer GET /healthz within 10s"
}

access_token() {
  local body token
  body=$(curl -s --max-time 10 "$TOKEN_URL" \
    -d grant_type=password -d client_id="$KEYGATE_CLIENT_ID" -d client_secret="$KEYGATE_CLIENT_SECRET" \
    -d username=alice -d password=alice-password -d scope=openid) || die "POST $TOKEN_URL failed"
  token=$(printf '%s' "$body" | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
  [ -n "$token" ] || die "no access_token from $TOKEN_URL: ${body:0:300}"
  printf '%s' "$token"
}

# Signs alice in at keygate $1 through the password form, as a browser would; sets $session and
# $token_cookie to the cookies it got.
sign_in() {
  local base=$1 jar=$WORK/jar.txt page csrf code
  rm -f "$jar"
  page=$(curl -s -c "$jar" -b "$jar" "$base/login")
  csrf=$(printf '%s' "$page" | sed -n 's/.*name="csrf_token" value="\([^"]*\)".*/\1/p' | head -n1)
  [ -n "$csrf" ] || die "no CSRF token on $base/login (is KEYGATE_PASSWORD_LOGIN on?)"
  code=$(curl -s -o /dev/null -w '%{http_code}' -c "$jar" -b "$jar" \
    --data-urlencode "csrf_token=$csrf" -d username=alice -d password=alice-password -d next=/ \
    "$base/login/password")
  [ "$code" = 303 ] || die "password sign-in at $base answered $code"
  session=$(awk '$6 == "keygate_session" { print $7 }' "$jar")
  token_cookie=$(awk '$6 == "TOKEN" { print $7 }' "$jar")
  [ -n "$session" ] && [ -n "$token_cookie" ] || die "sign-in at $base set no session or TOKEN cookie"
}

# wrk's done() hook prints one machine-readable line; latencies are in microseconds.
cat >"$WORK/report.lua" <<'EOF'
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d non2xx=%d socket_errors=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
EOF

rows=()
bare_rps=
# measure LABEL URL [wrk args...]: warm up, check one request, measure, append a row.
measure() {
  local label=$1 url=$2
  shift 2
  local code
  code=$(curl -s -o "$WORK/check.body" -w '%{http_code}' "$@" "$url")
  if [ "$code" != 200 ]; then
    log "$label: GET $url answered $code: $(head -c 300 "$WORK/check.body")"
    failed_run=1
  fi
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" "$@" "$url" >/dev/null
  local out
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$WORK/report.lua" "$@" "$url")
  {
    echo "=== $label: wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency $url"
    echo "$out"
    echo
  } >>"$RAW"
  local line requests duration_us p50 p99 non2xx sockerr
  line=$(grep '^BENCH ' <<<"$out" | tail -n1)
  [ -n "$line" ] || die "$label: no summary from wrk (see $RAW)"
  read -r requests duration_us p50 p99 non2xx sockerr < <(
    sed 's/^BENCH requests=\([0-9]*\) duration_us=\([0-9]*\) p50_us=\([0-9]*\) p99_us=\([0-9]*\) non2xx=\([0-9]*\) socket_errors=\([0-9]*\)$/\1 \2 \3 \4 \5 \6/' <<<"$line")
  local rps note=
  rps=$(awk -v r="$requests" -v d="$duration_us" 'BEGIN { printf "%.0f", r / (d / 1e6) }')
  [ -n "$bare_rps" ] || bare_rps=$rps
  if [ "$non2xx" != 0 ] || [ "$sockerr" != 0 ]; then
    note="  !! $non2xx non-2xx, $sockerr socket errors"
    failed_run=1
  fi
  rows+=("$(awk -v l="$label" -v rps="$rps" -v p50="$p50" -v p99="$p99" -v bare="$bare_rps" -v note="$note" \
    'BEGIN { printf "%-34s %10d %9.2fms %9.2fms %7.2fx%s", l, rps, p50 / 1000, p99 / 1000, rps / bare, note }')")
  log "$label: $rps req/s, p50 $(awk -v v="$p50" 'BEGIN { printf "%.2f", v / 1000 }')ms, p99 $(awk -v v="$p99" 'BEGIN { printf "%.2f", v / 1000 }')ms"
}

mkdir -p "$OUT_DIR"
: >"$RAW"

start_keygate cached KEYGATE_PASSWORD_LOGIN=true
CACHED=http://127.0.0.1:$port
start_keygate nocache KEYGATE_TOKEN_CACHE=false
NOCACHE=http://127.0.0.1:$port

measure "GET /healthz (bare)" "$CACHED/healthz"
# A fresh token for each bearer run, so that a long DURATION cannot outlive Keycloak's 5-minute tokens.
token=$(access_token)
measure "GET /api/me (bearer, cache on)" "$CACHED/api/me" -H "Authorization: Bearer $token"
token=$(access_token)
measure "GET /api/me (bearer, cache off)" "$NOCACHE/api/me" -H "Authorization: Bearer $token"
sign_in "$CACHED"
measure "GET /api/me (session cookie)" "$CACHED/api/me" -H "Cookie: keygate_session=$session"
measure "GET /api/me (session + TOKEN)" "$CACHED/api/me" \
  -H "Cookie: keygate_session=$session; TOKEN=$token_cookie"
measure "GET / (session cookie)" "$CACHED/" -H "Cookie: keygate_session=$session"

{
  echo "keygate request-path benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD 2>/dev/null || echo ' + uncommitted changes'), release build, $(nproc) CPUs (wrk, keygate and Keycloak share them)"
  echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency, after a ${WARMUP} warm-up each; (c) runs on a second keygate with KEYGATE_TOKEN_CACHE=false"
  echo
  printf '%-34s %10s %11s %11s %8s\n' endpoint req/s p50 p99 ratio
  printf '%s\n' "${rows[@]}"
} | tee "$OUT"
log "written to ${OUT#"$ROOT"/} (wrk output: ${RAW#"$ROOT"/})"

if [ "$failed_run" = 1 ]; then
  die "some requests did not answer 2xx; the figures above do not measure the intended path"
fi
