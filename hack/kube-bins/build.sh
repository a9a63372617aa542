#!/usr/bin/env bash
# Builds etcd, kube-apiserver, kube-controller-manager and kubectl from the Go module proxy into
#   ${FHIR_OP_CACHE:-$HOME/.cache/fhir-app-operator}/kube/<version>/
# and does nothing when they are already there. Prints the directory on stdout (last line).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
KUBE_VERSION=${KUBE_VERSION:-$(sed -n 's/^\s*k8s.io\/kubernetes \(v[0-9.]*\).*/\1/p' "$here/go.mod")}
CACHE=${FHIR_OP_CACHE:-$HOME/.cache/fhir-app-operator}
out="$CACHE/kube/$KUBE_VERSION"
bins=(etcd kube-apiserver kube-controller-manager kubectl)
have_all() { for b in "${bins[@]}"; do [ -x "$out/$b" ] || return 1; done; }
if have_all; then echo "$out"; exit 0; fi
command -v go >/dev/null || { echo "build.sh: Go is required to build the Kubernetes binaries (or set KUBEBUILDER_ASSETS)" >&2; exit 1; }
mkdir -p "$out.tmp"
minor=$(echo "$KUBE_VERSION" | cut -d. -f2)
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION \
 -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor \
 -X k8s.io/component-base/version.gitTreeState=clean \
 -X k8s.io/client-go/pkg/version.gitVersion=$KUBE_VERSION \
 -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
start=$(date +%s)
cd "$here"
export CGO_ENABLED=0 GOFLAGS=-mod=mod
echo "build.sh: building Kubernetes $KUBE_VERSION into $out (cold: tens of minutes on 2 cores)" >&2
go build -trimpath -o "$out.tmp/etcd" go.etcd.io/etcd/server/v3 >&2
go build -trimpath -ldflags "$ldflags" -o "$out.tmp/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kubectl >&2
rm -rf "$out" && mv "$out.tmp" "$out"
end=$(date +%s)
echo "build.sh: built in $((end - start)) s:" >&2
ls -l "$out" >&2
echo "$out"
