#!/usr/bin/env bash
# Builds the judges (the ecosystem's own code run on this project's artefacts) from the Go module proxy:
#   argocd-health  Argo CD's health-script runtime (github.com/argoproj/argo-cd/v3/util/lua)
#   kstatus        sigs.k8s.io/cli-utils/pkg/kstatus/status.Compute (upstream kstatus)
#   flux-health    Flux's own health assessment: its kstatus fork (github.com/fluxcd/cli-utils) and its
#                  healthCheckExprs CEL evaluator (github.com/fluxcd/pkg/runtime/cel)
# into ${FHIR_OP_CACHE:-$HOME/.cache/fhir-app-operator}/judges/<hash of this module>/ and does nothing
# when they are already there. Prints the directory on stdout (last line). Binaries are never committed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
CACHE=${FHIR_OP_CACHE:-$HOME/.cache/fhir-app-operator}
bins=(argocd-health kstatus flux-health)
# The recipe's hash: go.mod, go.sum, every .go file and this script.
hash=$(cd "$here" && cat build.sh go.mod go.sum $(find . -name '*.go' | LC_ALL=C sort) | sha256sum | cut -c1-16)
out="$CACHE/judges/$hash"
have_all() { for b in "${bins[@]}"; do [ -x "$out/$b" ] || return 1; done; }
if have_all; then echo "$out"; exit 0; fi
command -v go >/dev/null || { echo "hack/judges/build.sh: Go is required to build the judges" >&2; exit 1; }
mkdir -p "$CACHE/judges"
tmp=$(mktemp -d "$CACHE/judges/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
start=$(date +%s)
# Argo CD v3.6 needs Go 1.27; the go command fetches that toolchain from the Go module proxy
# (module golang.org/toolchain) when the machine's Go is older. The machine's GOTOOLCHAIN=local is
# overridden for this build only.
toolchain=$(sed -n 's/^toolchain \(go[0-9.]*\)$/\1/p' "$here/go.mod")
echo "hack/judges/build.sh: building ${bins[*]} into $out with $toolchain (cold: several minutes on 2 cores)" >&2
cd "$here"
GOTOOLCHAIN=$toolchain CGO_ENABLED=0 GOFLAGS=-mod=readonly \
  go build -trimpath -ldflags "-s -w" -o "$tmp/" "${bins[@]/#/./}" >&2
rm -rf "$out" && mv "$tmp" "$out" && trap - EXIT
echo "hack/judges/build.sh: built in $(( $(date +%s) - start )) s" >&2
echo "$out"
