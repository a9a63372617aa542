#!/usr/bin/env bash
# Builds helm from the Go module proxy into
#   ${FHIR_OP_CACHE:-$HOME/.cache/fhir-app-operator}/helm/<version>/helm
# and does nothing when it is already there. Prints the binary's path on stdout (last line).
# Binaries are never committed; the version is pinned here (newest v3 on the proxy when chosen:
# `go list -m -versions helm.sh/helm/v3`).
set -euo pipefail
HELM_VERSION=${HELM_VERSION:-v3.22.0}
CACHE=${FHIR_OP_CACHE:-$HOME/.cache/fhir-app-operator}
out="$CACHE/helm/$HELM_VERSION"
if [ -x "$out/helm" ]; then echo "$out/helm"; exit 0; fi
command -v go >/dev/null || { echo "hack/helm/build.sh: Go is required to build helm" >&2; exit 1; }
mkdir -p "$CACHE/helm"
tmp=$(mktemp -d "$CACHE/helm/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
start=$(date +%s)
echo "hack/helm/build.sh: building helm $HELM_VERSION into $out" >&2
# Stamp what helm's own Makefile stamps: its version, and the Kubernetes version of its client-go
# (otherwise `helm template`/`lint` assume Kubernetes v1.20 and refuse a chart's kubeVersion).
# helm v3.22.0 requires k8s.io/client-go v0.37.x, i.e. Kubernetes 1.37.
K8S_MINOR=${HELM_K8S_MINOR:-37}
CGO_ENABLED=0 GOBIN="$tmp" go install -trimpath \
  -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION \
    -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$K8S_MINOR \
    -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$K8S_MINOR" \
  "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
mkdir -p "$out"
mv "$tmp/helm" "$out/helm.tmp" && mv "$out/helm.tmp" "$out/helm"
echo "hack/helm/build.sh: built in $(( $(date +%s) - start )) s" >&2
echo "$out/helm"
