#!/usr/bin/env bash
# Installs, idempotently, every tool the build and the test layers need, and only what is missing:
#   - rustup target wasm32-unknown-unknown
#   - Debian chromium + chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver; same version)
#   - wasm-pack 0.15.1                        (cargo install --locked)
#   - wasm-bindgen-cli == wasm-bindgen in Cargo.lock (cargo install --force, WITHOUT --locked)
#   - npm dev deps from package-lock.json     (npm ci: playwright-core, binaryen for wasm-opt,
#                                              vite + typescript for the consumer app's check,
#                                              dexie and idb-keyval for the benchmarks,
#                                              selenium-webdriver for the three-engine tests)
#   - Debian firefox-esr, webkit2gtk-driver (WebKitWebDriver + MiniBrowser), xvfb + xauth
#   - geckodriver 0.37.1                      (cargo install --locked, from crates.io)
#   - tools/package-check npm deps             (npm ci: publint, attw, typedoc + TypeScript 5,
#                                              fake-indexeddb for the Node quickstart)
#
# Non-interactive (CI=true, no stdin); runs as root or with passwordless sudo. Prints one line per
# tool. Takes well under 2 s when everything is present. Only package registries are reachable on
# this machine kind: nothing here downloads a prebuilt binary (see shared/TOOLCHAIN.md).
# It exports nothing: the Makefile puts node_modules/.bin and ~/.cargo/bin first on PATH.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

WASM_PACK_VERSION="0.15.1"
GECKODRIVER_VERSION="0.37.1"
WASM_TARGET="wasm32-unknown-unknown"
CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
# Our own lookups see the same tools the Makefile will use.
export PATH="$ROOT/node_modules/.bin:$CARGO_BIN:$PATH"
export DEBIAN_FRONTEND=noninteractive

say() { printf '%-24s %s\n' "$1" "$2"; }
die() { printf 'bootstrap: error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo -n env DEBIAN_FRONTEND=noninteractive "$@"
  else
    die "need root or sudo to run: $*"
  fi
}

# Prints the version of a `tool --version` ("tool 1.2.3 (...)" -> "1.2.3"), or nothing.
tool_version() {
  command -v "$1" >/dev/null 2>&1 || return 0
  "$1" --version 2>/dev/null | awk 'NR == 1 { print $2 }'
}

# ---------------------------------------------------------------------------------------------
# 1. rustup target
command -v rustup >/dev/null 2>&1 || die "rustup not found (expected in $CARGO_BIN)"
if rustup target list --installed 2>/dev/null | grep -qx "$WASM_TARGET"; then
  say "$WASM_TARGET" "present"
else
  rustup target add "$WASM_TARGET" >&2
  say "$WASM_TARGET" "installed"
fi

# ---------------------------------------------------------------------------------------------
# 2. chromium + chromium-driver from Debian (matched versions; never a downloaded driver)
apt_missing=()
for pkg in chromium chromium-driver; do
  status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
  [ "$status" = "install ok installed" ] || apt_missing+=("$pkg")
done
[ -x /usr/bin/chromium ] || apt_missing+=(chromium)
[ -x /usr/bin/chromedriver ] || apt_missing+=(chromium-driver)
if [ "${#apt_missing[@]}" -eq 0 ]; then
  say "chromium" "present"
  say "chromium-driver" "present"
else
  # de-duplicate
  mapfile -t apt_missing < <(printf '%s\n' "${apt_missing[@]}" | sort -u)
  as_root apt-get update -q >&2
  as_root apt-get install -y -q chromium chromium-driver </dev/null >&2
  [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] \
    || die "apt-get install chromium chromium-driver did not provide /usr/bin/chromium and /usr/bin/chromedriver"
  for pkg in chromium chromium-driver; do
    if printf '%s\n' "${apt_missing[@]}" | grep -qx "$pkg"; then say "$pkg" "installed"; else say "$pkg" "present"; fi
  done
fi

# ---------------------------------------------------------------------------------------------
# 3. wasm-pack
if [ "$(tool_version wasm-pack)" = "$WASM_PACK_VERSION" ]; then
  say "wasm-pack" "present ($WASM_PACK_VERSION)"
else
  cargo install --locked wasm-pack --version "=$WASM_PACK_VERSION" </dev/null >&2
  [ "$(tool_version wasm-pack)" = "$WASM_PACK_VERSION" ] \
    || die "wasm-pack on PATH is '$(command -v wasm-pack)' $(tool_version wasm-pack), not $WASM_PACK_VERSION"
  say "wasm-pack" "installed ($WASM_PACK_VERSION)"
fi

# ---------------------------------------------------------------------------------------------
# 4. wasm-bindgen-cli at exactly the wasm-bindgen version locked in Cargo.lock
[ -f Cargo.lock ] || die "Cargo.lock not found in $ROOT (it must be committed)"
WB_VERSION="$(awk '
  /^\[\[package\]\]/ { in_wb = 0 }
  /^name = "wasm-bindgen"$/ { in_wb = 1; next }
  in_wb && /^version = / { gsub(/"/, "", $3); print $3; exit }
' Cargo.lock)"
[ -n "$WB_VERSION" ] || die "no wasm-bindgen package found in Cargo.lock"
if [ "$(tool_version wasm-bindgen)" = "$WB_VERSION" ] \
   && [ "$(tool_version wasm-bindgen-test-runner)" = "$WB_VERSION" ]; then
  say "wasm-bindgen-cli" "present ($WB_VERSION)"
else
  # No --locked: wasm-bindgen-cli's own lockfile pins a crate the registry no longer serves.
  cargo install --force wasm-bindgen-cli --version "=$WB_VERSION" </dev/null >&2
  [ "$(tool_version wasm-bindgen)" = "$WB_VERSION" ] \
    || die "wasm-bindgen on PATH is '$(command -v wasm-bindgen)' $(tool_version wasm-bindgen), not $WB_VERSION"
  say "wasm-bindgen-cli" "installed ($WB_VERSION)"
fi

# ---------------------------------------------------------------------------------------------
# 5. npm dev dependencies (playwright-core, binaryen's wasm-opt, vite, typescript, the benchmark
#    baselines), reinstalled when package-lock changes
command -v npm >/dev/null 2>&1 || die "npm not found"
[ -f package-lock.json ] || die "package-lock.json not found in $ROOT"
STAMP="node_modules/.bootstrap-lock.sha256"
lock_sum="$(sha256sum package-lock.json | awk '{ print $1 }')"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$lock_sum" ] \
   && [ -x node_modules/.bin/wasm-opt ] && [ -f node_modules/playwright-core/package.json ] \
   && [ -x node_modules/.bin/vite ] && [ -x node_modules/.bin/tsc ] \
   && [ -f node_modules/dexie/package.json ] && [ -f node_modules/idb-keyval/package.json ] \
   && [ -f node_modules/selenium-webdriver/package.json ]; then
  say "npm dev deps" "present"
else
  npm ci --no-audit --no-fund --loglevel=error </dev/null >&2
  printf '%s\n' "$lock_sum" > "$STAMP"
  say "npm dev deps" "installed"
fi
# Never Debian's wasm-opt (binaryen 108 produces broken wasm): the npm one must come first on PATH.
[ "$(command -v wasm-opt)" = "$ROOT/node_modules/.bin/wasm-opt" ] \
  || die "wasm-opt resolves to $(command -v wasm-opt), expected $ROOT/node_modules/.bin/wasm-opt"

# ---------------------------------------------------------------------------------------------
# 6. The other two engines, from Debian: Firefox ESR, and WebKitGTK's WebDriver (WebKitWebDriver,
#    which drives WebKitGTK's MiniBrowser) with Xvfb for its display (scripts/with-xvfb.sh).
#    xauth is what xvfb-run needs to hand the display to the command.
apt_missing=()
for pkg in firefox-esr webkit2gtk-driver xvfb xauth; do
  status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
  [ "$status" = "install ok installed" ] || apt_missing+=("$pkg")
done
if [ "${#apt_missing[@]}" -eq 0 ]; then
  say "firefox-esr" "present ($(firefox-esr --version 2>/dev/null | awk '{ print $3 }'))"
  say "webkit2gtk-driver, xvfb" "present"
else
  as_root apt-get update -q >&2
  as_root apt-get install -y -q --no-install-recommends "${apt_missing[@]}" </dev/null >&2
  [ -x /usr/bin/firefox-esr ] && [ -x /usr/bin/WebKitWebDriver ] && command -v xvfb-run >/dev/null 2>&1 \
    || die "apt-get install ${apt_missing[*]} did not provide firefox-esr, WebKitWebDriver and xvfb-run"
  say "${apt_missing[*]}" "installed"
fi

# ---------------------------------------------------------------------------------------------
# 7. geckodriver from crates.io at a pinned version (never a downloaded binary)
if [ "$(tool_version geckodriver)" = "$GECKODRIVER_VERSION" ]; then
  say "geckodriver" "present ($GECKODRIVER_VERSION)"
else
  cargo install --locked geckodriver --version "=$GECKODRIVER_VERSION" </dev/null >&2
  [ "$(tool_version geckodriver)" = "$GECKODRIVER_VERSION" ] \
    || die "geckodriver on PATH is '$(command -v geckodriver)' $(tool_version geckodriver), not $GECKODRIVER_VERSION"
  say "geckodriver" "installed ($GECKODRIVER_VERSION)"
fi

# ---------------------------------------------------------------------------------------------
# 8. the package checks' tools (tools/package-check: publint, @arethetypeswrong/cli, typedoc with
#    its TypeScript 5, fake-indexeddb), kept apart from the root's TypeScript 7
TOOLS_DIR="tools/package-check"
TOOLS_STAMP="$TOOLS_DIR/node_modules/.bootstrap-lock.sha256"
tools_sum="$(sha256sum "$TOOLS_DIR/package-lock.json" | awk '{ print $1 }')"
if [ -f "$TOOLS_STAMP" ] && [ "$(cat "$TOOLS_STAMP")" = "$tools_sum" ] \
   && [ -x "$TOOLS_DIR/node_modules/.bin/publint" ] && [ -x "$TOOLS_DIR/node_modules/.bin/attw" ] \
   && [ -x "$TOOLS_DIR/node_modules/.bin/typedoc" ] && [ -f "$TOOLS_DIR/node_modules/fake-indexeddb/package.json" ]; then
  say "package-check tools" "present"
else
  (cd "$TOOLS_DIR" && npm ci --no-audit --no-fund --loglevel=error </dev/null >&2)
  printf '%s\n' "$tools_sum" > "$TOOLS_STAMP"
  say "package-check tools" "installed"
fi
