#!/usr/bin/env bash
# Checks the image `make image` built, then runs it as a pod would run it (its entrypoint, its user,
# nothing but its own files) against a local control plane and the Entra ID emulator, until
# examples/demo/ is Ready. buildah's chroot isolation shares the host network, so loopback works.
#
# Env: IMAGE as for hack/image/build.sh, TAG (default: the workspace version).
set -euo pipefail
cd "$(dirname "$0")/../.."
fail() { echo "hack/image/smoke.sh: $*" >&2; exit 1; }
tag=${TAG:-$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)}
image=${IMAGE:-ghcr.io/fhir-app-operator/fhir-app-operator}:$tag
buildah inspect --type image "$image" >/dev/null 2>&1 || fail "$image not found; run make image first"

echo "== $image: config and contents"
buildah inspect --type image "$image" | python3 -c '
import json, sys
c = json.load(sys.stdin)["OCIv1"]["config"]
assert c.get("User") == "65532:65532", c.get("User")
assert c.get("Entrypoint") == ["/fhir-app-operator"], c.get("Entrypoint")
labels = c.get("Labels") or {}
for k in ("version", "revision", "created", "source", "licenses"):
    assert labels.get("org.opencontainers.image." + k), "missing label " + k
print("  user", c["User"], " entrypoint", c["Entrypoint"][0], " version", labels["org.opencontainers.image.version"],
      " revision", labels["org.opencontainers.image.revision"][:12])'

work=$(mktemp -d)
ctr=$(buildah from --quiet "$image")
emulator_pid=""
cleanup() {
  set +e # clean up everything, whatever failed
  [ -n "${run_pid:-}" ] && kill "$run_pid" 2>/dev/null && wait "$run_pid" 2>/dev/null
  [ -n "$emulator_pid" ] && kill "$emulator_pid" 2>/dev/null
  buildah rm "$ctr" >/dev/null 2>&1
  target/debug/kube-local down --dir "$work/cluster" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

files=$(cd "$(buildah mount "$ctr")" && find . -type f | sort | tr '\n' ' ')
buildah umount "$ctr" >/dev/null
[ "$files" = "./etc/ssl/certs/ca-certificates.crt ./fhir-app-operator " ] || fail "unexpected files in the image: $files"
echo "  files: $files"

echo "== Control plane, emulator, CRDs"
cargo build -q -p kube-local -p entra-emulator
bins=$(target/debug/kube-local bins --no-build)
kubectl() { "$bins/kubectl" "$@"; }
eval "$(target/debug/kube-local up --dir "$work/cluster" | tail -n 1)"
# The permissions examples/demo/ opts into (admin consent, app-role assignment), as in make demo.
target/debug/entra-emulator --listen 127.0.0.1:0 --ca-file "$work/emulator-ca.pem" \
  --permission Application.ReadWrite.OwnedBy --permission Application.Read.All \
  --permission AppRoleAssignment.ReadWrite.All --permission DelegatedPermissionGrant.ReadWrite.All \
  >"$work/emulator.env" 2>"$work/emulator.log" &
emulator_pid=$!
for _ in $(seq 100); do grep -q '^CA_FILE=' "$work/emulator.env" && break; sleep 0.1; done
grep -q '^CA_FILE=' "$work/emulator.env" || { cat "$work/emulator.log"; fail "the emulator did not start"; }
kubectl apply --server-side -f crds/ >/dev/null
kubectl wait --for=condition=Established crd --all --timeout=60s >/dev/null

echo "== The image's entrypoint against them"
# What a pod gets mounted: a kubeconfig with everything inline and the emulator's CA, readable by
# the image's user.
mkdir -m 0755 "$work/config"
kubectl config view --flatten --minify >"$work/config/kubeconfig"
cp "$work/emulator-ca.pem" "$work/config/ca.pem"
chmod 0444 "$work/config/"*
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
env=(-e KUBECONFIG=/config/kubeconfig -e FHIR_OP_EXTRA_CA_FILE=/config/ca.pem -e "FHIR_OP_HTTP_ADDR=127.0.0.1:$port")
# shellcheck source=/dev/null # written by the emulator above
set -a && source "$work/emulator.env" && set +a
# On buildah's command line (it has no --env-file): the emulator's throwaway secret only.
for k in AZURE_TENANT_ID AZURE_CLIENT_ID AZURE_CLIENT_SECRET AZURE_AUTHORITY_HOST FHIR_OP_GRAPH_URL; do
  env+=(-e "$k=${!k}")
done
touch "$work/started"
buildah run --isolation chroot -v "$work/config:/config:ro" "${env[@]}" "$ctr" -- /fhir-app-operator \
  >"$work/operator.log" 2>&1 &
run_pid=$!
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$port/readyz" >/dev/null || ! kill -0 "$run_pid" 2>/dev/null && break
  sleep 0.2
done
curl -sf "http://127.0.0.1:$port/readyz" >/dev/null || { cat "$work/operator.log"; fail "/readyz never answered"; }
# The operator is a descendant of our buildah process (comm is cut to 15 characters).
pid=$(ps -e -o pid=,ppid=,comm= | awk -v root="$run_pid" '{ p[$1] = $2; c[$1] = $3 }
  END { for (x in c) if (c[x] == "fhir-app-operat") { y = x; while (y in p && y != root) y = p[y]; if (y == root) print x } }')
[ -n "$pid" ] || fail "cannot find the operator process under buildah run"
uid=$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")
[ "$uid" = 65532 ] || fail "the operator runs as uid $uid, not the image's 65532"
echo "  /readyz ok, running as uid $uid"

kubectl create namespace fhir-demo >/dev/null
kubectl apply -n fhir-demo -f examples/demo/ >/dev/null
if ! kubectl wait -n fhir-demo --for=condition=Ready fhirresourceapps,fhirclientapps --all --timeout=120s | sed 's/^/  /'; then
  kubectl get -n fhir-demo fhirresourceapps,fhirclientapps -o yaml | grep -A3 'type: Ready' || true
  tail -n 20 "$work/operator.log"
  fail "examples/demo/ did not become Ready"
fi
# The chart's readOnlyRootFilesystem: while it reconciled, nothing was written in the image's files
# but what buildah run itself puts there (as the kubelet does: hosts, resolv.conf, hostname, mounts).
written=$(cd "$(buildah mount "$ctr")" && find . \( -path ./proc -o -path ./sys -o -path ./dev \) -prune \
  -o -newer "$work/started" -print | grep -vxE '\.|\./etc|\./etc/(hosts|resolv\.conf|hostname)|\./config|\./run|\./run/\.containerenv' || true)
buildah umount "$ctr" >/dev/null
[ -z "$written" ] || fail "the operator wrote to its root filesystem: $written"
echo "  nothing written to the root filesystem"
grep -qF -- "$AZURE_CLIENT_SECRET" "$work/operator.log" && fail "the operator's secret is in its log"
echo "image smoke test passed: $image"
