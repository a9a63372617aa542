#!/usr/bin/env bash
# make demo: bring up a real control plane on loopback and show that it is usable.
set -euo pipefail
cd "$(dirname "$0")/.."
bash hack/kube-bins/build.sh >/dev/null
cargo build -q -p kube-local
bins=$(target/debug/kube-local bins --no-build)
demo_dir="$PWD/.demo"
target/debug/kube-local down --dir "$demo_dir" 2>/dev/null || true
eval "$(target/debug/kube-local up --dir "$demo_dir" | tail -n 1)"
trap 'target/debug/kube-local down --dir "$demo_dir"' EXIT
kubectl() { "$bins/kubectl" "$@"; }
echo "== kubectl version"
kubectl version
echo "== namespaces"
kubectl get namespaces
echo "== create and read back a ConfigMap"
kubectl create configmap demo --from-literal=hello=world
kubectl get configmap demo -o jsonpath='{.data.hello}{"\n"}'
