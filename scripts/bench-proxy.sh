#!/usr/bin/env bash
# Benchmark of keygate against oauth2-proxy, side by side (not a test). Loopback only; about five
# minutes with the defaults.
#
#   scripts/bench-proxy.sh
#   SKIP_KEYGATE=1 DURATION=3s ROUNDS=1 scripts/bench-proxy.sh     the oauth2-proxy half alone, quickly
#
# In one run, on the same machine, against the same Keycloak and the same upstream:
#   - the upstream: nginx (single process, no access log) on a free loopback port, GET /hello → 200;
#   - oauth2-proxy v7.15.6 (built once into ~/.cache/keygate/bin with `go install`), configured as
#     keygate is: Keycloak realm keygate, client keygate, PKCE S256, cookie sessions, bearer tokens
#     verified locally (--skip-jwt-bearer-tokens), proxy prefix /login so that its callback is the
#     /login/callback the Keycloak client admits; alice signs in through the code flow with curl;
#   - keygate (unless SKIP_KEYGATE=1): release build, KEYGATE_UPSTREAM = the same nginx, alice signs in
#     through the password form (KEYGATE_PASSWORD_LOGIN=true).
# Rows, each for keygate and for oauth2-proxy, the two interleaved round by round:
#   forward-auth, session cookie    keygate GET /auth          oauth2-proxy GET /login/auth
#   forward-auth, bearer token      the same with Authorization: Bearer <alice's access token>
#   proxied GET /hello, session cookie
#   proxied GET /hello, bearer token
# and once GET /hello on nginx directly. Bearer tokens come from the password grant, a fresh one for
# every wrk run (Keycloak's access tokens live 5 minutes). For each: req/s, p99 and the CPU seconds
# per 1,000 requests of the measured server process (utime+stime from /proc/<pid>/stat around the
# run; nginx's own CPU is not in the proxied rows). ROUNDS rounds per row and side after a warm-up;
# the table shows the median round (by req/s). The table also goes to artifacts/bench-proxy.txt,
# wrk's full output to artifacts/bench-proxy-wrk.log.
#
#   DURATION=10s  WARMUP=2s  THREADS=1  CONNECTIONS=64  ROUNDS=3   wrk -t -c -d --latency, rounds per row
#   SKIP_KEYGATE=1                                                 measure oauth2-proxy and nginx only
#
# Every measured request must answer 2xx: a run with non-2xx answers or socket errors is flagged
# in the table and the script exits 1. Servers log at warn or less; their logs are in the temp dir
# and shown on failure.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
THREADS=${THREADS:-1}
CONNECTIONS=${CONNECTIONS:-64}
ROUNDS=${ROUNDS:-3}
SKIP_KEYGATE=${SKIP_KEYGATE:-0}
OAUTH2_PROXY_VERSION=v7.15.6
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
TOOLS_BIN=${XDG_CACHE_HOME:-$HOME/.cache}/keygate/bin
OUT_DIR=$ROOT/artifacts
OUT=$OUT_DIR/bench-proxy.txt
RAW=$OUT_DIR/bench-proxy-wrk.log

log() { echo "bench-proxy.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

command -v wrk >/dev/null 2>&1 || die "wrk is not installed (sudo apt-get install -y wrk)"
command -v curl >/dev/null 2>&1 || die "curl is not installed (sudo apt-get install -y curl)"
command -v python3 >/dev/null 2>&1 || die "python3 is needed to pick free ports"
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || die "nginx is not installed (sudo apt-get install -y nginx-light)"
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer, not '$ROUNDS'"
CLK_TCK=$(getconf CLK_TCK)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/keygate-bench-proxy.XXXXXX")
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
    for f in "$WORK"/*.log; do
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

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_http NAME PID URL: waits up to 10s until URL answers 200 while PID lives.
wait_http() {
  local name=$1 pid=$2 url=$3
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || die "$name exited during start-up"
    if [ "$(curl -s -o /dev/null -w '%{http_code}' "$url")" = 200 ]; then
      return 0
    fi
    sleep 0.1
  done
  die "$name did not answer GET $url within 10s"
}

# ---- builds ---------------------------------------------------------------------------------------
if [ "$SKIP_KEYGATE" != 1 ]; then
  log "building keygate (cargo build --release)"
  cargo build --release --bin keygate
  BIN=$ROOT/target/release/keygate
  [ -x "$BIN" ] || die "cargo build --release did not produce $BIN"
fi

OAUTH2_PROXY=$TOOLS_BIN/oauth2-proxy
if [ ! -x "$OAUTH2_PROXY" ]; then
  [ -x "$GO" ] || die "go is needed to build oauth2-proxy (not found; set GO=/path/to/go)"
  log "building oauth2-proxy $OAUTH2_PROXY_VERSION into $TOOLS_BIN (go install, once)"
  mkdir -p "$TOOLS_BIN"
  GOBIN=$TOOLS_BIN "$GO" install "github.com/oauth2-proxy/oauth2-proxy/v7@$OAUTH2_PROXY_VERSION"
  [ -x "$OAUTH2_PROXY" ] || die "go install did not produce $OAUTH2_PROXY"
fi

# ---- Keycloak -------------------------------------------------------------------------------------
if ! scripts/keycloak.sh status >/dev/null 2>&1; then
  started_keycloak=1
fi
scripts/keycloak.sh start >/dev/null
eval "$(scripts/keycloak.sh env)"
TOKEN_URL=$KEYGATE_ISSUER_URL/protocol/openid-connect/token

access_token() {
  local body token
  body=$(curl -s --max-time 10 "$TOKEN_URL" \
    -d grant_type=password -d client_id="$KEYGATE_CLIENT_ID" -d client_secret="$KEYGATE_CLIENT_SECRET" \
    -d username=alice -d password=alice-password -d scope=openid) || die "POST $TOKEN_URL failed"
  token=$(printf '%s' "$body" | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
  [ -n "$token" ] || die "no access_token from $TOKEN_URL: ${body:0:300}"
  printf '%s' "$token"
}

# ---- upstream: nginx ------------------------------------------------------------------------------
NGINX_PORT=$(free_port)
mkdir -p "$WORK/nginx"
cat >"$WORK/nginx.conf" <<EOF
daemon off;
master_process off;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/client_body;
  proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fastcgi;
  uwsgi_temp_path $WORK/nginx/uwsgi;
  scgi_temp_path $WORK/nginx/scgi;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location = /hello {
      default_type text/plain;
      return 200 "hello\n";
    }
    location / {
      return 404;
    }
  }
}
EOF
"$NGINX" -p "$WORK/nginx" -e "$WORK/nginx-error.log" -c "$WORK/nginx.conf" >"$WORK/nginx.log" 2>&1 &
pids+=($!)
NGINX_PID=$!
UPSTREAM=http://127.0.0.1:$NGINX_PORT
wait_http nginx "$NGINX_PID" "$UPSTREAM/hello"
log "nginx pid $NGINX_PID on $UPSTREAM"

# ---- oauth2-proxy ---------------------------------------------------------------------------------
O2P_PORT=$(free_port)
O2P=http://127.0.0.1:$O2P_PORT
# The flags are also printed in the table's header.
O2P_FLAGS=(
  --provider=keycloak-oidc
  --oidc-issuer-url="$KEYGATE_ISSUER_URL"
  --client-id="$KEYGATE_CLIENT_ID"
  --code-challenge-method=S256
  --upstream="$UPSTREAM/"
  --http-address="127.0.0.1:$O2P_PORT"
  --redirect-url="$O2P/login/callback"
  --proxy-prefix=/login
  --email-domain='*'
  --cookie-secure=false
  --skip-jwt-bearer-tokens=true
  --set-xauthrequest=true
  --request-logging=false
  --auth-logging=false
)
COOKIE_SECRET=$(head -c 32 /dev/urandom | base64 | tr -- '+/' '-_')
OAUTH2_PROXY_CLIENT_SECRET=$KEYGATE_CLIENT_SECRET OAUTH2_PROXY_COOKIE_SECRET=$COOKIE_SECRET \
  "$OAUTH2_PROXY" "${O2P_FLAGS[@]}" >"$WORK/oauth2-proxy.log" 2>&1 &
pids+=($!)
O2P_PID=$!
wait_http oauth2-proxy "$O2P_PID" "$O2P/ping"
log "oauth2-proxy pid $O2P_PID on $O2P"

# Signs alice in at oauth2-proxy through the authorization-code flow, as a browser would; sets
# $o2p_cookie to the Cookie header value of its session (one cookie, or _0, _1… when split).
o2p_sign_in() {
  local jar=$WORK/o2p-jar.txt url page action code
  rm -f "$jar"
  url=$(curl -s -o /dev/null -w '%{redirect_url}' -c "$jar" -b "$jar" "$O2P/login/start?rd=/hello")
  [[ $url == "$KEYGATE_ISSUER_URL"/* ]] || die "GET $O2P/login/start did not redirect to Keycloak (got '$url')"
  page=$(curl -s -c "$jar" -b "$jar" "$url")
  action=$(printf '%s' "$page" | tr '\n' ' ' | grep -o '<form[^>]*id="kc-form-login"[^>]*>' |
    sed -n 's/.*action="\([^"]*\)".*/\1/p' | sed 's/&amp;/\&/g' | head -n1)
  [ -n "$action" ] || die "no login form on Keycloak's page ${url%%\?*}"
  url=$(curl -s -o /dev/null -w '%{redirect_url}' -c "$jar" -b "$jar" \
    -d username=alice -d password=alice-password -d credentialId= "$action")
  [[ $url == "$O2P/login/callback?"* ]] || die "Keycloak's login form did not redirect to oauth2-proxy's callback (got '$url')"
  code=$(curl -s -o "$WORK/callback.body" -w '%{http_code} %{redirect_url}' -c "$jar" -b "$jar" "$url")
  [ "$code" = "302 $O2P/hello" ] ||
    die "oauth2-proxy's callback answered '$code': $(head -c 300 "$WORK/callback.body")"
  o2p_cookie=$(awk '$6 ~ /^_oauth2_proxy(_[0-9]+)?$/ { printf "%s%s=%s", sep, $6, $7; sep = "; " }' "$jar")
  [ -n "$o2p_cookie" ] || die "oauth2-proxy's callback set no _oauth2_proxy cookie"
}

# ---- keygate --------------------------------------------------------------------------------------
KEYGATE_PID=
if [ "$SKIP_KEYGATE" != 1 ]; then
  logfile=$WORK/keygate.log
  env -u KEYGATE_PUBLIC_URL \
    KEYGATE_BIND=127.0.0.1:0 \
    KEYGATE_DATABASE_URL="$WORK/keygate.db" \
    KEYGATE_UPSTREAM="$UPSTREAM" \
    KEYGATE_PASSWORD_LOGIN=true \
    RUST_LOG=warn,keygate::app=info \
    "$BIN" >"$logfile" 2>&1 &
  pids+=($!)
  KEYGATE_PID=$!
  kg_port=
  for _ in $(seq 1 100); do
    kill -0 "$KEYGATE_PID" 2>/dev/null || die "keygate exited during start-up"
    kg_port=$(sed -n 's/.*keygate listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$logfile" | head -n1)
    if [ -n "$kg_port" ] && [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$kg_port/healthz")" = 200 ]; then
      break
    fi
    kg_port=
    sleep 0.1
  done
  [ -n "$kg_port" ] || die "keygate did not answer GET /healthz within 10s"
  KG=http://127.0.0.1:$kg_port
  log "keygate pid $KEYGATE_PID on $KG"
fi

# Signs alice in at keygate through the password form, as a browser would; sets $kg_cookie.
kg_sign_in() {
  local jar=$WORK/kg-jar.txt page csrf code session
  rm -f "$jar"
  page=$(curl -s -c "$jar" -b "$jar" "$KG/login")
  csrf=$(printf '%s' "$page" | sed -n 's/.*name="csrf_token" value="\([^"]*\)".*/\1/p' | head -n1)
  [ -n "$csrf" ] || die "no CSRF token on $KG/login (is KEYGATE_PASSWORD_LOGIN on?)"
  code=$(curl -s -o /dev/null -w '%{http_code}' -c "$jar" -b "$jar" \
    --data-urlencode "csrf_token=$csrf" -d username=alice -d password=alice-password -d next=/hello \
    "$KG/login/password")
  [ "$code" = 303 ] || die "password sign-in at $KG answered $code"
  session=$(awk '$6 == "keygate_session" { print $7 }' "$jar")
  [ -n "$session" ] || die "sign-in at $KG set no keygate_session cookie"
  kg_cookie="keygate_session=$session"
}

# ---- measuring ------------------------------------------------------------------------------------
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

# cpu_ticks PID: utime + stime of the process (all its threads), in clock ticks.
cpu_ticks() {
  local stat
  stat=$(cat "/proc/$1/stat") || die "process $1 is gone"
  # Fields after "(comm)": state is field 3, utime 14, stime 15.
  awk '{ print $12 + $13 }' <<<"${stat##*) }"
}

# Auth header for a side: "cookie" or "bearer" (a fresh token). Sets the array $hdr.
auth_header() {
  local side=$1 auth=$2
  if [ "$auth" = bearer ]; then
    hdr=(-H "Authorization: Bearer $(access_token)")
  elif [ "$side" = keygate ]; then
    hdr=(-H "Cookie: $kg_cookie")
  else
    hdr=(-H "Cookie: $o2p_cookie")
  fi
}

# check LABEL URL EXPECTED_BODY [curl args...]: one request must answer 2xx (and, when EXPECTED_BODY
# is not empty, that body).
check() {
  local label=$1 url=$2 body=$3 code
  shift 3
  code=$(curl -s -o "$WORK/check.body" -w '%{http_code}' "$@" "$url")
  if [[ $code != 2?? ]] || { [ -n "$body" ] && [ "$(cat "$WORK/check.body")" != "$body" ]; }; then
    log "$label: GET $url answered $code: $(head -c 300 "$WORK/check.body")"
    failed_run=1
  fi
}

# run_wrk LABEL PID URL [wrk args...]: one measured round; sets $r_rps $r_p99 $r_cpu (CPU-s per
# 1,000 requests of PID) $r_bad (non-2xx + socket errors).
run_wrk() {
  local label=$1 pid=$2 url=$3
  shift 3
  local before after out line requests duration_us p99 non2xx sockerr
  before=$(cpu_ticks "$pid")
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$WORK/report.lua" "$@" "$url")
  after=$(cpu_ticks "$pid")
  {
    echo "=== $label: wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency $url"
    echo "$out"
    echo "CPU of pid $pid: $((after - before)) ticks at $CLK_TCK/s"
    echo
  } >>"$RAW"
  line=$(grep '^BENCH ' <<<"$out" | tail -n1)
  [ -n "$line" ] || die "$label: no summary from wrk (see $RAW)"
  # shellcheck disable=SC2001  # one sed with groups reads better than six expansions
  read -r requests duration_us _ p99 non2xx sockerr < <(
    sed 's/^BENCH requests=\([0-9]*\) duration_us=\([0-9]*\) p50_us=\([0-9]*\) p99_us=\([0-9]*\) non2xx=\([0-9]*\) socket_errors=\([0-9]*\)$/\1 \2 \3 \4 \5 \6/' <<<"$line")
  r_rps=$(awk -v r="$requests" -v d="$duration_us" 'BEGIN { printf "%.0f", r / (d / 1e6) }')
  r_p99=$p99
  r_cpu=$(awk -v t="$((after - before))" -v hz="$CLK_TCK" -v r="$requests" \
    'BEGIN { if (r > 0) printf "%.4f", t / hz / r * 1000; else print "nan" }')
  r_bad=$((non2xx + sockerr))
  if [ "$r_bad" != 0 ]; then
    log "$label: $non2xx non-2xx, $sockerr socket errors"
    failed_run=1
  fi
  log "$label: $r_rps req/s, p99 $(awk -v v="$p99" 'BEGIN { printf "%.2f", v / 1000 }')ms, $r_cpu CPU-s/1000"
}

# median_round "rps p99 cpu bad" lines on stdin → the line of the median round by req/s (the lower
# middle one for an even count), with bad summed over all rounds.
median_round() {
  sort -n -k1,1 | awk '{ line[NR] = $0; bad += $4 } END {
    split(line[int((NR + 1) / 2)], f, " "); print f[1], f[2], f[3], bad }'
}

# measure_pair ROW PATH_KEYGATE PATH_O2P AUTH EXPECTED_BODY: warms up and checks both sides, then runs
# ROUNDS rounds, keygate and oauth2-proxy alternating; sets kg_res and o2p_res ("rps p99 cpu bad").
measure_pair() {
  local row=$1 kg_path=$2 o2p_path=$3 auth=$4 body=$5 side base path pid round
  local kg_rounds='' o2p_rounds='' sides=(oauth2-proxy)
  [ "$SKIP_KEYGATE" = 1 ] || sides=(keygate oauth2-proxy)
  for side in "${sides[@]}"; do
    if [ "$side" = keygate ]; then base=$KG path=$kg_path; else base=$O2P path=$o2p_path; fi
    auth_header "$side" "$auth"
    check "$row [$side]" "$base$path" "$body" "${hdr[@]}"
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" "${hdr[@]}" "$base$path" >/dev/null
  done
  for round in $(seq 1 "$ROUNDS"); do
    for side in "${sides[@]}"; do
      if [ "$side" = keygate ]; then base=$KG path=$kg_path pid=$KEYGATE_PID; else base=$O2P path=$o2p_path pid=$O2P_PID; fi
      auth_header "$side" "$auth"
      run_wrk "$row [$side, round $round/$ROUNDS]" "$pid" "$base$path" "${hdr[@]}"
      if [ "$side" = keygate ]; then
        kg_rounds+="$r_rps $r_p99 $r_cpu $r_bad"$'\n'
      else
        o2p_rounds+="$r_rps $r_p99 $r_cpu $r_bad"$'\n'
      fi
    done
  done
  o2p_res=$(printf '%s' "$o2p_rounds" | median_round)
  kg_res=
  [ -z "$kg_rounds" ] || kg_res=$(printf '%s' "$kg_rounds" | median_round)
}

# check_denied LABEL URL EXPECTED: without credentials URL must answer EXPECTED ("401"), or anything
# but 2xx when EXPECTED is "not-2xx": the measured endpoints really check the session or token.
check_denied() {
  local label=$1 url=$2 expected=$3 code
  code=$(curl -s -o /dev/null -w '%{http_code}' "$url")
  if { [ "$expected" = not-2xx ] && [[ $code == 2?? ]]; } || { [ "$expected" != not-2xx ] && [ "$code" != "$expected" ]; }; then
    log "$label: GET $url without credentials answered $code (expected $expected)"
    failed_run=1
  fi
}

mkdir -p "$OUT_DIR"
: >"$RAW"

o2p_sign_in
check "oauth2-proxy session" "$O2P/login/auth" "" -H "Cookie: $o2p_cookie"
check "oauth2-proxy session" "$O2P/hello" "hello" -H "Cookie: $o2p_cookie"
[ "$failed_run" = 0 ] || die "alice's oauth2-proxy session does not pass GET /login/auth and GET /hello"
log "oauth2-proxy: alice signed in (${#o2p_cookie}-byte Cookie header)"
check_denied "oauth2-proxy" "$O2P/login/auth" 401
check_denied "oauth2-proxy" "$O2P/hello" not-2xx
if [ "$SKIP_KEYGATE" != 1 ]; then
  kg_sign_in
  log "keygate: alice signed in"
  check_denied "keygate" "$KG/auth" 401
  check_denied "keygate" "$KG/hello" not-2xx
fi

# Upstream directly, once (ROUNDS rounds, the median).
check "upstream direct" "$UPSTREAM/hello" "hello"
wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" "$UPSTREAM/hello" >/dev/null
direct_rounds=
for round in $(seq 1 "$ROUNDS"); do
  run_wrk "GET /hello upstream direct [nginx, round $round/$ROUNDS]" "$NGINX_PID" "$UPSTREAM/hello"
  direct_rounds+="$r_rps $r_p99 $r_cpu $r_bad"$'\n'
done
read -r direct_rps direct_p99 direct_cpu direct_bad < <(printf '%s' "$direct_rounds" | median_round)

rows=()
# add_row LABEL PROXIED(0|1): formats kg_res / o2p_res into a table row.
add_row() {
  local label=$1 proxied=$2
  rows+=("$(awk -v l="$label" -v kg="$kg_res" -v o="$o2p_res" -v proxied="$proxied" -v direct="$direct_rps" '
    function ms(us) { return sprintf("%.2fms", us / 1000) }
    BEGIN {
      no = split(o, O, " "); nk = split(kg, K, " ")
      kr = nk ? sprintf("%d", K[1]) : "-"; kp = nk ? ms(K[2]) : "-"; kc = nk ? sprintf("%.3f", K[3]) : "-"
      ratio = nk ? sprintf("%.2fx", K[1] / O[1]) : "-"
      kd = (proxied && nk) ? sprintf("%.2fx", K[1] / direct) : "-"
      od = proxied ? sprintf("%.2fx", O[1] / direct) : "-"
      bad = (nk ? K[4] : 0) + O[4]
      note = bad ? sprintf("  !! %d non-2xx or socket errors", bad) : ""
      printf "%-28s %9s %9s %7s %10s %10s %8s %8s %7s %7s%s", l, kr, O[1], ratio, kp, ms(O[2]), kc, sprintf("%.3f", O[3]), kd, od, note
    }')")
}

measure_pair "forward-auth, session" /auth /login/auth cookie ""
add_row "forward-auth, session" 0
measure_pair "forward-auth, bearer" /auth /login/auth bearer ""
add_row "forward-auth, bearer" 0
measure_pair "GET /hello proxied, session" /hello /hello cookie hello
add_row "GET /hello proxied, session" 1
measure_pair "GET /hello proxied, bearer" /hello /hello bearer hello
add_row "GET /hello proxied, bearer" 1

direct_note=
[ "$direct_bad" = 0 ] || direct_note="  !! $direct_bad non-2xx or socket errors"
{
  echo "keygate vs oauth2-proxy $OAUTH2_PROXY_VERSION, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  if [ "$SKIP_KEYGATE" = 1 ]; then
    echo "keygate not measured (SKIP_KEYGATE=1)"
  else
    echo "keygate commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD 2>/dev/null || echo ' + uncommitted changes'), release build"
  fi
  echo "$(nproc) CPUs shared by wrk, the proxies, nginx and Keycloak; wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency after a ${WARMUP} warm-up, median of $ROUNDS round(s) by req/s"
  echo "oauth2-proxy ${O2P_FLAGS[*]} (client secret and a random cookie secret from the environment)"
  echo "upstream: nginx $("$NGINX" -v 2>&1 | sed 's|.*nginx/||'), one process, GET /hello → 200 \"hello\""
  echo "CPU-s/1k: CPU seconds (user+system) of the measured proxy per 1,000 requests; vs direct: req/s over the upstream's direct req/s"
  echo
  printf '%-28s %9s %9s %7s %10s %10s %8s %8s %7s %7s\n' "" keygate oauth2-px kg/o2p keygate oauth2-px keygate oauth2-px keygate oauth2-px
  printf '%-28s %9s %9s %7s %10s %10s %8s %8s %7s %7s\n' row req/s req/s ratio p99 p99 CPU-s/1k CPU-s/1k "vs dir" "vs dir"
  printf '%s\n' "${rows[@]}"
  echo
  awk -v rps="$direct_rps" -v p99="$direct_p99" -v cpu="$direct_cpu" -v note="$direct_note" \
    'BEGIN { printf "GET /hello on the upstream directly: %d req/s, p99 %.2fms, %.3f CPU-s/1k (nginx)%s\n", rps, p99 / 1000, cpu, note }'
} | tee "$OUT"
log "written to ${OUT#"$ROOT"/} (wrk output: ${RAW#"$ROOT"/})"

if [ "$failed_run" = 1 ]; then
  die "some requests did not answer 2xx; the figures above do not measure the intended path"
fi
