#!/usr/bin/env bash
# Builds helm from the Go module proxy into
#   ${FHIR_OP_CACHE:-$HOME/.cache/fhir-app-operator}/helm/<version>/helm
# and does nothing when it is already there. Prints the binary's path on stdout (last line).
# Binaries are never committed; the versions are pinned here (newest on the proxy when chosen:
# `go list -m -versions helm.sh/helm/v3`, `... helm.sh/helm/v4`).
#   hack/helm/build.sh        Helm 3 (HELM_VERSION overrides)
#   hack/helm/build.sh v4     Helm 4, cached beside it
set -euo pipefail
. "$(dirname "$0")/../lib/go-tool.sh"
if [ "${1:-}" = v4 ]; then
  HELM_VERSION=v4.3.2
  # Helm 4 reads the Kubernetes version of its client-go from the build info; only its own version is
  # stamped, as helm's Makefile does.
  go_tool helm "$HELM_VERSION" "helm.sh/helm/v4/cmd/helm@$HELM_VERSION" \
    -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION"
  exit
fi
HELM_VERSION=${HELM_VERSION:-v3.22.0}
# Stamp what helm's own Makefile stamps: its version, and the Kubernetes version of its client-go
# (otherwise `helm template`/`lint` assume Kubernetes v1.20 and refuse a chart's kubeVersion).
# helm v3.22.0 requires k8s.io/client-go v0.37.x, i.e. Kubernetes 1.37.
K8S_MINOR=${HELM_K8S_MINOR:-37}
go_tool helm "$HELM_VERSION" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" \
  -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION \
    -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$K8S_MINOR \
    -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$K8S_MINOR"
