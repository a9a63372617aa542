#!/usr/bin/env bash
# Installs the interoperability suite's consumers (tests/tests/interop.rs), once per lockfile, into a
# cache outside the repository, ${FHIR_OP_CACHE:-$HOME/.cache/fhir-app-operator}/interop/:
#   python/<hash of interop/python/requirements.txt>/  a venv, pip install --require-hashes
#   node/<hash of interop/node/package-lock.json>/     npm ci (no install scripts)
#   fhir-server/<hash of interop/fhir-server/package-lock.json>/  the same, for the test FHIR server and fhirclient
#   go/<hash of interop/go/{go.mod,go.sum,*.go}>/      go build (modules checked against go.sum)
# and the browser (hack/browser/install.sh: Debian's chromium + playwright-core; no browser download).
# Prints lines a shell (or the test) can read: INTEROP_PYTHON=…, INTEROP_NODE_MODULES=…, INTEROP_GO=…, FHIR_SERVER_NODE_MODULES=…, BROWSER_NODE_MODULES=…
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cache="${FHIR_OP_CACHE:-$HOME/.cache/fhir-app-operator}/interop"
key() { sha256sum "$1" | cut -c1-16; }

req="$root/interop/python/requirements.txt"
py="$cache/python/$(key "$req")"
if [ ! -x "$py/bin/python" ] || [ ! -f "$py/.complete" ]; then
  echo "interop: pip install --require-hashes into $py" >&2
  rm -rf "$py"; mkdir -p "$(dirname "$py")"
  python3 -m venv "$py" >&2
  "$py/bin/python" -m pip install -q --disable-pip-version-check --no-input --require-hashes --only-binary=:all: -r "$req" >&2
  touch "$py/.complete"
fi

# npm ci of interop/<dir>'s lockfile into cache/<name>/<hash>/ (no install scripts); prints node_modules.
npm_ci() {
  local lock="$root/interop/$1/package-lock.json" nm
  nm="$cache/$2/$(key "$lock")"
  if [ ! -f "$nm/.complete" ]; then
    echo "interop: npm ci into $nm" >&2
    rm -rf "$nm"; mkdir -p "$nm"
    cp "$root/interop/$1/package.json" "$lock" "$nm/"
    (cd "$nm" && npm ci --ignore-scripts --no-audit --no-fund >&2)
    touch "$nm/.complete"
  fi
  echo "$nm/node_modules"
}
nm="$(npm_ci node node)"
# The FHIR server (node-fhir-server-core, jose) and the SMART app's fhirclient: tests/tests/fhir_server.rs.
fsnm="$(npm_ci fhir-server fhir-server)"

gobin="$cache/go/$(cat "$root"/interop/go/go.mod "$root"/interop/go/go.sum "$root"/interop/go/*.go | sha256sum | cut -c1-16)"
if [ ! -x "$gobin/interop-go" ]; then
  echo "interop: go build into $gobin" >&2
  mkdir -p "$gobin"
  (cd "$root/interop/go" && GOFLAGS=-mod=readonly go build -trimpath -o "$gobin/interop-go.tmp" . >&2)
  mv "$gobin/interop-go.tmp" "$gobin/interop-go"
fi

browser="$(bash "$root/hack/browser/install.sh")"
echo "INTEROP_PYTHON=$py/bin/python"
echo "INTEROP_NODE_MODULES=$nm"
echo "INTEROP_GO=$gobin/interop-go"
echo "FHIR_SERVER_NODE_MODULES=$fsnm"
echo "BROWSER_NODE_MODULES=$browser"
