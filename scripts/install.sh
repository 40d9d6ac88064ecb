#!/usr/bin/env bash
# Checks, and installs where it can, what keygate's scripts need on a Debian machine.
#
#   scripts/install.sh               install what the tests need (scripts/test.sh runs this first)
#   scripts/install.sh --for dev     only what scripts/dev.sh needs (no chromium, postgresql, Node.js)
#   scripts/install.sh --check       only report; exit 1 when something is missing (combines with --for)
#
# Test set: cargo (Rust 1.85+, from rustup: never installed here), Java 17+, maven, curl, unzip
# (scripts/keycloak.sh), libpq-dev and pkg-config (diesel's postgres feature), Debian's chromium at
# /usr/bin/chromium (tests/browser; KEYGATE_CHROMIUM overrides the path), postgresql (initdb under
# /usr/lib/postgresql/*/bin, scripts/postgres.sh), nginx (the forward-auth tests), Node.js 20+ and npm, and tests/browser/node_modules
# (`npm ci` when missing or older than package-lock.json). The dev set stops at pkg-config.
#
# Missing Debian packages are installed with apt-get (as root, or through `sudo -n`), after one
# `apt-get update`; when nothing is missing it runs no apt-get at all and takes well under a second.
# When it cannot install (not root and no passwordless sudo, or no apt-get) it fails at once and
# prints the command to run.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export DEBIAN_FRONTEND=noninteractive

RUST_MIN=1.85
NODE_MIN=20
BROWSER_DIR=tests/browser
CHROMIUM=${KEYGATE_CHROMIUM:-/usr/bin/chromium}
# Java packages to try, first available wins (Keycloak 26 runs on 17, 21 and 25; bookworm has 17,
# trixie only 21 and 25). default-jre-headless is the last resort.
JAVA_PACKAGES=(openjdk-17-jre-headless openjdk-21-jre-headless openjdk-25-jre-headless)

log() { echo "install.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
  sed -n '2,6s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
  exit 2
}

check_only=0
profile="test"
while [ $# -gt 0 ]; do
  case "$1" in
    --check) check_only=1 ;;
    --for)
      [ $# -ge 2 ] || usage
      profile=$2
      shift
      ;;
    --for=*) profile=${1#--for=} ;;
    -h | --help) usage ;;
    *) usage ;;
  esac
  shift
done
case "$profile" in
  dev | test) ;;
  *) die "unknown --for '$profile' (dev or test)" ;;
esac

# "1.95.0" >= "1.85"? (numeric, field by field)
version_ge() {
  [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]
}

pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

# Same rule as scripts/keycloak.sh's pick_java_home: JAVA_HOME, a java 17+ on PATH, or a JDK in /usr/lib/jvm.
have_java17() {
  if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then return 0; fi
  if command -v java >/dev/null 2>&1; then
    local major
    major=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)
    if [ -n "$major" ] && [ "$major" -ge 17 ]; then return 0; fi
  fi
  compgen -G '/usr/lib/jvm/java-17-openjdk-*/bin/java' >/dev/null ||
    compgen -G '/usr/lib/jvm/java-21-openjdk-*/bin/java' >/dev/null ||
    compgen -G '/usr/lib/jvm/temurin-25-*/bin/java' >/dev/null
}

# The first of JAVA_PACKAGES that apt knows (from the package lists as they are now).
java_package() {
  local pkg candidate
  for pkg in "${JAVA_PACKAGES[@]}"; do
    candidate=$(apt-cache policy "$pkg" 2>/dev/null | sed -n 's/^ *Candidate: *//p')
    if [ -n "$candidate" ] && [ "$candidate" != "(none)" ]; then
      echo "$pkg"
      return 0
    fi
  done
  echo default-jre-headless
}

node_major() { node -v 2>/dev/null | sed -n 's/^v\([0-9]*\).*/\1/p'; }

# --- what is missing -------------------------------------------------------------------------------
fatal=()   # things apt-get cannot fix
need=()    # Debian packages to install (the Java one is resolved later: JAVA placeholder)

if ! command -v cargo >/dev/null 2>&1; then
  msg="cargo not found: install Rust $RUST_MIN or newer with rustup (https://rustup.rs:"
  msg+=" curl --proto '=https' -sSf https://sh.rustup.rs | sh), then open a new shell;"
  msg+=" Debian's cargo package is too old for keygate's crates"
  fatal+=("$msg")
else
  cargo_version=$(cargo --version 2>/dev/null | awk '{print $2}')
  if [ -z "$cargo_version" ] || ! version_ge "${cargo_version%%-*}" "$RUST_MIN"; then
    fatal+=("cargo ${cargo_version:-?} is older than $RUST_MIN: run \`rustup update stable\`")
  fi
fi

have_java17 || need+=(JAVA)
command -v mvn >/dev/null 2>&1 || need+=(maven)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v unzip >/dev/null 2>&1 || need+=(unzip)
pkg_installed libpq-dev || need+=(libpq-dev)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)

if [ "$profile" = test ]; then
  # Debian's own browser build, which apt-get installs as package chromium (/usr/bin/chromium).
  [ -x "$CHROMIUM" ] || need+=(chromium)
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
  # The forward-auth tests run a real nginx (auth_request) started on loopback by the test.
  [ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || need+=(nginx)
  if ! command -v node >/dev/null 2>&1; then
    need+=(nodejs)
  else
    major=$(node_major)
    if [ -z "$major" ] || [ "$major" -lt "$NODE_MIN" ]; then
      msg="Node.js $(node -v 2>/dev/null || echo '?') is older than $NODE_MIN (playwright-core in"
      msg+=" $BROWSER_DIR needs $NODE_MIN+): install Node.js $NODE_MIN+ (Debian 13's nodejs, or NodeSource)"
      fatal+=("$msg")
    fi
  fi
  command -v npm >/dev/null 2>&1 || need+=(npm)
fi

# tests/browser's npm packages: npm ci writes node_modules/.package-lock.json, so a missing one or one
# older than package-lock.json means `npm ci` is due.
npm_due=0
MARKER=$BROWSER_DIR/node_modules/.package-lock.json
if [ "$profile" = test ] && [ -f "$BROWSER_DIR/package-lock.json" ]; then
  if [ ! -f "$MARKER" ] || [ "$BROWSER_DIR/package-lock.json" -nt "$MARKER" ]; then npm_due=1; fi
fi

# The package names as apt-get should see them (JAVA resolved against the current package lists).
resolve_packages() {
  local out=() pkg
  for pkg in "${need[@]}"; do
    if [ "$pkg" = JAVA ]; then out+=("$(java_package)"); else out+=("$pkg"); fi
  done
  echo "${out[*]}"
}

SUDO=()
can_install=1
why_not=
if ! command -v apt-get >/dev/null 2>&1; then
  can_install=0
  why_not="no apt-get on this machine"
elif [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
  else
    can_install=0
    why_not="not root and no passwordless sudo"
  fi
fi

report_missing() {
  local f
  for f in "${fatal[@]+"${fatal[@]}"}"; do log "missing: $f"; done
  if [ "${#need[@]}" -gt 0 ]; then
    local pkgs
    pkgs=$(resolve_packages)
    log "missing Debian packages: $pkgs"
    log "install them with:"
    local sudo=sudo
    [ "$(id -u)" = 0 ] && sudo=
    log "  ${sudo:+$sudo }apt-get update && ${sudo:+$sudo }DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $pkgs"
  fi
  if [ "$npm_due" = 1 ]; then
    log "missing: $BROWSER_DIR/node_modules (absent or older than package-lock.json): (cd $BROWSER_DIR && npm ci)"
  fi
}

if [ "${#fatal[@]}" -gt 0 ]; then
  report_missing
  die "cannot continue: fix the above, then run $0 again"
fi

if [ "$check_only" = 1 ]; then
  if [ "${#need[@]}" -gt 0 ] || [ "$npm_due" = 1 ]; then
    report_missing
    exit 1
  fi
  log "all prerequisites for scripts/$profile.sh are present"
  exit 0
fi

if [ "${#need[@]}" -gt 0 ]; then
  if [ "$can_install" = 0 ]; then
    report_missing
    die "cannot install ($why_not): run the command above, then run $0 again"
  fi
  log "installing what is missing (${need[*]/#JAVA/Java 17+}); apt-get update first"
  "${SUDO[@]}" apt-get update >&2 || die "apt-get update failed"
  read -r -a pkgs <<<"$(resolve_packages)"
  log "apt-get install ${pkgs[*]}"
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${pkgs[@]}" >&2 || die "apt-get install ${pkgs[*]} failed"
  hash -r

  # Verify what the other scripts rely on, with the message that explains a mismatch.
  have_java17 || die "no Java 17+ after installing ${pkgs[*]} (keycloak.sh needs 17, 21 or 25)"
  if [ "$profile" = test ]; then
    [ -x "$CHROMIUM" ] || die "no $CHROMIUM after installing chromium (tests/browser needs Debian's chromium there)"
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null ||
      die "no /usr/lib/postgresql/*/bin/initdb after installing postgresql"
    major=$(node_major)
    if [ -z "$major" ] || [ "$major" -lt "$NODE_MIN" ]; then
      die "this Debian's nodejs is $(node -v 2>/dev/null || echo '?'), older than $NODE_MIN (playwright-core in" \
        "$BROWSER_DIR needs $NODE_MIN+): install Node.js $NODE_MIN+ (e.g. NodeSource), then run $0 again"
    fi
  fi
  log "installed ${pkgs[*]}"
fi

if [ "$npm_due" = 1 ]; then
  log "npm ci in $BROWSER_DIR"
  (cd "$BROWSER_DIR" && npm ci --no-audit --no-fund >&2) || die "npm ci in $BROWSER_DIR failed"
  touch "$MARKER"
fi

log "all prerequisites for scripts/$profile.sh are present"
