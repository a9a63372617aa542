#!/usr/bin/env bash
# Regenerates go.mod/go.sum of the wrapper module for a Kubernetes version.
# k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with local
# paths; Go ignores replaces of dependencies, so the main module must pin each to v0.X.Y.
set -euo pipefail
KUBE_VERSION=${1:?usage: gen-go-mod.sh v1.X.Y}
cd "$(dirname "$0")"
minor=$(echo "$KUBE_VERSION" | cut -d. -f2); patch=$(echo "$KUBE_VERSION" | cut -d. -f3)
staging_version="v0.${minor}.${patch}"
kmod=$(go mod download -json "k8s.io/kubernetes@${KUBE_VERSION}" | python3 -c 'import json,sys;print(json.load(sys.stdin)["GoMod"])')
go_line=$(grep -E '^go ' "$kmod")
godebug_line=$(grep -E '^godebug ' "$kmod" || true)
etcd_version=$(grep -E 'go.etcd.io/etcd/server/v3 ' "$kmod" | awk '{print $2}')
{
  echo "module fhir-app-operator.invalid/kube-bins"
  echo
  echo "$go_line"
  [ -n "$godebug_line" ] && echo "$godebug_line"
  echo
  echo "tool ("
  echo "	go.etcd.io/etcd/server/v3"
  echo "	k8s.io/kubernetes/cmd/kube-apiserver"
  echo "	k8s.io/kubernetes/cmd/kube-controller-manager"
  echo "	k8s.io/kubernetes/cmd/kubectl"
  echo ")"
  echo
  echo "require ("
  echo "	go.etcd.io/etcd/server/v3 ${etcd_version}"
  echo "	k8s.io/kubernetes ${KUBE_VERSION}"
  echo ")"
  echo
  echo "replace ("
  grep -E '^\s+k8s.io/[a-z0-9-]+ v0\.0\.0$' "$kmod" | awk -v v="$staging_version" '{print "\t" $1 " => " $1 " " v}'
  echo ")"
} > go.mod
rm -f go.sum
GOFLAGS=-mod=mod go mod tidy
echo "generated go.mod for ${KUBE_VERSION} (staging ${staging_version}, etcd ${etcd_version})"
