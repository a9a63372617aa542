#!/usr/bin/env bash
# Installs what the browser sign-in script (interop/browser/signin.mjs) needs, once per machine, for the
# emulator's browser test (emulator/tests/browser.rs) and the interop consumers:
# Debian's chromium (apt) and playwright-core pinned by package-lock.json (npm ci), cached outside
# the repository in ${FHIR_OP_CACHE:-$HOME/.cache/fhir-app-operator}/npm/<lockfile hash>/.
# No browser is downloaded: playwright drives /usr/bin/chromium. Prints the node_modules folder.
# FHIR_OP_SKIP_BROWSER=1 skips it all (the test then skips, loudly).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if [ "${FHIR_OP_SKIP_BROWSER:-0}" = 1 ]; then
  echo "browser-deps: FHIR_OP_SKIP_BROWSER=1, not installing chromium or playwright-core" >&2
  exit 0
fi
if [ ! -x /usr/bin/chromium ]; then
  echo "browser-deps: installing Debian's chromium" >&2
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >&2
fi
hash="$(sha256sum "$here/package-lock.json" | cut -c1-16)"
dir="${FHIR_OP_CACHE:-$HOME/.cache/fhir-app-operator}/npm/$hash"
if [ ! -f "$dir/node_modules/playwright-core/package.json" ]; then
  echo "browser-deps: npm ci into $dir" >&2
  mkdir -p "$dir"
  cp "$here/package.json" "$here/package-lock.json" "$dir/"
  # playwright-core has no install script; --ignore-scripts keeps it that way.
  (cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --ignore-scripts --no-audit --no-fund >&2)
fi
echo "$dir/node_modules"
