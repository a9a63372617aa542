#!/usr/bin/env bash
# make demo: a real control plane, the Entra ID emulator and the operator, all on loopback;
# applies examples/demo/, waits until everything is Ready, shows the results and proves the
# service client's Secret obtains a token. DEMO_KEEP=1 leaves it all running afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
demo="$root/.demo"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Building (first run: the Kubernetes binaries take ~10 minutes)"
bash hack/kube-bins/build.sh >/dev/null
cargo build -q -p kube-local -p entra-emulator -p fhir-app-operator
bins=$(target/debug/kube-local bins --no-build)
kubectl() { "$bins/kubectl" "$@"; }

# A previous demo's leftovers.
target/debug/kube-local down --dir "$demo/cluster" 2>/dev/null || true
[ -f "$demo/pids" ] && xargs -r kill 2>/dev/null <"$demo/pids" || true
rm -rf "$demo" && mkdir -p "$demo"

cleanup() {
  if [ "${DEMO_KEEP:-0}" = 1 ]; then
    echo; echo "Left running (DEMO_KEEP=1). Stop with: make demo-down"; return
  fi
  [ -f "$demo/pids" ] && xargs -r kill 2>/dev/null <"$demo/pids" || true
  target/debug/kube-local down --dir "$demo/cluster" >/dev/null 2>&1 || true
}
trap cleanup EXIT

step "Starting the control plane"
eval "$(target/debug/kube-local up --dir "$demo/cluster" | tail -n 1)"
kubectl version 2>/dev/null | sed 's/^/  /'

step "Starting the Entra ID emulator"
# The operator's app holds the least privilege plus the two consent permissions the examples opt into;
# a directory user can sign in to the demo's apps from a browser (emulator/README.md, "Users sign in");
# its certificate also names Entra's, Graph's and ARM's hosts, for hack/as-azure.sh (docs/interop.md).
target/debug/entra-emulator --listen 127.0.0.1:0 --state-file "$demo/emulator-state.json" \
  --ca-file "$demo/emulator-ca.pem" --permission Application.ReadWrite.OwnedBy --permission Application.Read.All \
  --permission AppRoleAssignment.ReadWrite.All --permission DelegatedPermissionGrant.ReadWrite.All \
  --user "clinician@contoso.example:Demo-Passw0rd:Dr Demo Clinician" \
  --hostname login.microsoftonline.com --hostname graph.microsoft.com --hostname management.azure.com \
  >"$demo/emulator.env" 2>"$demo/emulator.log" &
echo $! >>"$demo/pids"
for _ in $(seq 100); do grep -q '^CA_FILE=' "$demo/emulator.env" && break; sleep 0.1; done
grep -q '^CA_FILE=' "$demo/emulator.env" || { cat "$demo/emulator.log"; exit 1; }
set -a; source "$demo/emulator.env"; set +a
echo "  Graph: $GRAPH_URL   tenant: $AZURE_TENANT_ID"
# The FHIR API requires assignment (the FhirResourceApp's default): the demo user signs in as a member of
# the group examples/demo/10-fhir-server.yaml assigns globalReader to, by that group's object ID.
emu_admin="${AZURE_AUTHORITY_HOST%/}/_emulator/tenants/$AZURE_TENANT_ID"
curl -sSf --cacert "$CA_FILE" -H 'content-type: application/json' -o /dev/null "$emu_admin/groups" \
  -d '{"display_name": "fhir-readers", "object_id": "0d3c1b2a-7e6f-4a5b-9c8d-1e2f3a4b5c6d"}'
curl -sSf --cacert "$CA_FILE" -H 'content-type: application/json' -o /dev/null "$emu_admin/users" \
  -d '{"user_principal_name": "clinician@contoso.example", "password": "Demo-Passw0rd",
       "display_name": "Dr Demo Clinician", "groups": ["fhir-readers"]}'

step "Installing the CRDs and starting the operator"
kubectl apply --server-side -f crds/ | sed 's/^/  /'
kubectl wait --for=condition=Established crd --all --timeout=60s >/dev/null
# emulator.env holds AZURE_* and FHIR_OP_* (sourced above), the names the operator reads.
FHIR_OP_HTTP_ADDR=127.0.0.1:0 target/debug/fhir-app-operator >"$demo/operator.log" 2>&1 &
echo $! >>"$demo/pids"

step "Applying examples/demo/"
kubectl create namespace fhir-demo --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl apply -n fhir-demo -f examples/demo/ | sed 's/^/  /'

step "Waiting until every app is Ready"
kubectl wait -n fhir-demo --for=condition=Ready fhirresourceapps,fhirclientapps --all --timeout=180s | sed 's/^/  /'
kubectl get -n fhir-demo fhirresourceapps,fhirclientapps

step "What the FHIR server reads (ConfigMap for envFrom)"
for c in $(kubectl get configmaps -n fhir-demo -l app.kubernetes.io/managed-by=fhir-app-operator -o name); do
  echo "  $c"
  kubectl get -n fhir-demo "$c" -o go-template='{{range $k, $v := .data}}    {{$k}}={{$v}}{{"\n"}}{{end}}'
done

step "Secrets written by the operator (values masked)"
for s in $(kubectl get secrets -n fhir-demo -l app.kubernetes.io/managed-by=fhir-app-operator -o name); do
  echo "  $s"
  kubectl get -n fhir-demo "$s" -o json | python3 -c '
import json, sys, base64
data = json.load(sys.stdin).get("data", {})
for k in sorted(data):
    v = base64.b64decode(data[k]).decode()
    shown = v if k in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "FHIR_URL", "FHIR_AUDIENCE", "FHIR_SCOPE", "TOKEN_ENDPOINT", "AZURE_AUTHORITY_HOST",
                       "AUTHORITY", "AUTHORIZE_ENDPOINT", "FHIR_DELEGATED_SCOPES", "REDIRECT_URI") else "*" * 8
    print(f"    {k}={shown}")'
done

step "The service client gets a token with nothing but its Secret"
python3 hack/demo_token.py fhir-demo nightly-export "$bins/kubectl"

step "No credential value in the operator's log"
leaks=0
for s in $(kubectl get secrets -n fhir-demo -l app.kubernetes.io/managed-by=fhir-app-operator -o name); do
  v=$(kubectl get -n fhir-demo "$s" -o jsonpath='{.data.AZURE_CLIENT_SECRET}' | base64 -d)
  [ -n "$v" ] && grep -qF -- "$v" "$demo/operator.log" && { echo "  LEAK: $s's secret is in the log"; leaks=1; }
done
[ $leaks = 0 ] && echo "  checked $(wc -l <"$demo/operator.log") log lines: none"
echo; echo "Logs: $demo/operator.log, $demo/emulator.log"
exit $leaks
