#!/usr/bin/env bash
# make demo: a real control plane, the Entra ID emulator and the operator, all on loopback;
# applies examples/demo/, waits until everything is Ready, shows the results, proves the service
# client's Secret obtains a token, starts a FHIR server configured from the ConfigMap alone and ends
# with the service client reading a Patient from it with nothing but its Secret. DEMO_KEEP=1 leaves it
# all running, with the SMART app and the web app, whose URLs it prints. The FHIR API maps the fhirUser claim:
# the demo clinician gets a value (as provisioning would, hack/set-fhir-user.sh), and the SMART app, signed in
# in Chromium when it is installed, shows who signed in.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
demo="$root/.demo"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Building (first run: the Kubernetes binaries take ~10 minutes)"
bash hack/kube-bins/build.sh >/dev/null
# The FHIR server, the SMART app's fhirclient, azure-identity and msal-node (by lockfile, cached).
set -a; eval "$(bash hack/interop/install.sh 2>/dev/null | grep -E '^(INTEROP_PYTHON|INTEROP_NODE_MODULES|FHIR_SERVER_NODE_MODULES|BROWSER_NODE_MODULES)=')"; set +a
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
# The operator's app holds the least privilege plus the two consent permissions the examples opt into, and
# the policy permission for the fhirUser claim (docs/permissions.md);
# a directory user can sign in to the demo's apps from a browser (emulator/README.md, "Users sign in");
# its certificate also names Entra's, Graph's and ARM's hosts, for hack/as-azure.sh (docs/interop.md).
target/debug/entra-emulator --listen 127.0.0.1:0 --state-file "$demo/emulator-state.json" \
  --ca-file "$demo/emulator-ca.pem" --permission Application.ReadWrite.OwnedBy --permission Application.Read.All \
  --permission AppRoleAssignment.ReadWrite.All --permission DelegatedPermissionGrant.ReadWrite.All \
  --permission Policy.ReadWrite.ApplicationConfiguration \
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
# The fhirUser claim mapped for the API's tokens and the user-facing clients' ID tokens.
kubectl wait -n fhir-demo --for=condition=FhirUserClaim fhirresourceapps/fhir-server \
  fhirclientapps/smart-spa fhirclientapps/clinician-portal --timeout=120s | sed 's/^/  /'

step "The demo clinician's fhirUser, set as provisioning sets it (hack/set-fhir-user.sh: Graph PATCH /users)"
# The emulator's admin token holds User.ReadWrite.All; in a real tenant: az account get-access-token.
GRAPH_TOKEN=$(curl -sSf --cacert "$CA_FILE" -X POST "$emu_admin/admin-token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])') \
  KUBECTL="$bins/kubectl" CA_FILE="$CA_FILE" bash hack/set-fhir-user.sh fhir-demo fhir-server clinician@contoso.example Practitioner/dr-demo

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

# A client's Secret and the ConfigMap as files, as a pod mounts them.
mount() { # <kind: secret|configmap> <name> <dir>
  mkdir -p "$3"
  kubectl get -n fhir-demo "$1" "$2" -o json | python3 -c '
import json, sys, base64, os
o = json.load(sys.stdin); d = sys.argv[1]
for k, v in o.get("data", {}).items():
    open(os.path.join(d, k), "w").write(base64.b64decode(v).decode() if o["kind"] == "Secret" else v)' "$3"
}
mount configmap fhir-server-fhir-auth "$demo/configmap"
for c in nightly-export clinician-portal smart-spa; do mount secret "$c-fhir-client" "$demo/secrets/$c"; done

step "A FHIR server configured from the ConfigMap alone"
fhir_url=$(cat "$demo/secrets/nightly-export/FHIR_URL")
CONFIGMAP_DIR="$demo/configmap" NODE_EXTRA_CA_CERTS="$CA_FILE" PORT="$(python3 -c 'import sys,urllib.parse;print(urllib.parse.urlsplit(sys.argv[1]).port)' "$fhir_url")" \
  SEED_RESOURCES='[{"resourceType":"Patient","id":"pat-1","name":[{"family":"Chalmers","given":["Peter"]}],"birthDate":"1974-12-25"},
    {"resourceType":"Practitioner","id":"dr-demo","name":[{"family":"Clinician","given":["Demo"],"prefix":["Dr"]}]},
    {"resourceType":"Practitioner","id":"dr-other","name":[{"family":"Colleague","given":["Other"],"prefix":["Dr"]}]}]' \
  node interop/fhir-server/server.mjs >"$demo/fhir-server.out" 2>"$demo/fhir-server.log" &
echo $! >>"$demo/pids"
for _ in $(seq 100); do grep -qs listening "$demo/fhir-server.out" && break; sleep 0.1; done
grep -q listening "$demo/fhir-server.out" || { cat "$demo/fhir-server.log"; exit 1; }
python3 -c 'import json,sys; v=json.load(open(sys.argv[1])); print("  %s: issuer %s, audience %s, fhirUser claim %s" % (v["base"], v["issuer"], v["audience"], v["fhirUserClaim"]))' "$demo/fhir-server.out"

step "The service client reads a Patient from the FHIR server with nothing but its Secret"
(set -a; source <(for f in "$demo"/secrets/nightly-export/[A-Z]*; do echo "$(basename "$f")=$(printf %q "$(cat "$f")")"; done); set +a
 SECRET_DIR="$demo/secrets/nightly-export" CONFIGMAP_DIR="$demo/configmap" REQUESTS_CA_BUNDLE="$CA_FILE" \
   "$INTEROP_PYTHON" interop/python/fhir_service.py read:pat-1 write) | python3 -c '
import json, sys
r = json.load(sys.stdin)
if not r.get("ok"): sys.exit(f"  failed: {r}")
for c in r["calls"]:
    print("  %-12s -> %s %s %s" % (c["call"], c["status"], c.get("resourceType") or "", c.get("id") or c.get("error") or ""))
if r["calls"][0]["status"] != 200: sys.exit("  the Patient was not read")'

step "The SMART app (fhirclient, standalone launch) signs the demo clinician in and shows who signed in"
if [ -n "${BROWSER_NODE_MODULES:-}" ]; then
  SECRET_DIR="$demo/secrets/smart-spa" CONFIGMAP_DIR="$demo/configmap" NODE_EXTRA_CA_CERTS="$CA_FILE" PATIENT_ID=pat-1 \
    OTHER_RESOURCE=Practitioner/dr-other USER_NAME=clinician@contoso.example USER_PASSWORD=Demo-Passw0rd \
    SIGNIN_SCRIPT="$root/interop/browser/signin.mjs" node interop/fhir-server/smart-app.mjs 2>"$demo/smart-app.log" | python3 -c '
import json, sys
r = json.loads(sys.stdin.read().strip().splitlines()[-1])
if not r.get("ok"): sys.exit(f"  failed: {r}")
print("  Signed in as %s   (client.getFhirUser(), from the ID token; the access token carries %s)" % (r["fhirUser"], r["token"]["fhirUser"]))
show = lambda what, c: print("  %-34s -> %s %s" % (what, c["status"], c.get("id") or c.get("error") or ""))
show("client.user.read()", r["user"] or {"status": "-", "error": "no fhirUser"})
show("Practitioner/dr-other", r["other"])
show("Patient/pat-1", r["patient"])
if r["fhirUser"] != "Practitioner/dr-demo": sys.exit("  the SMART app did not learn who signed in")'
else
  echo "  skipped: Chromium is not installed (make browser-deps); DEMO_KEEP=1 serves the app for your browser"
fi

if [ "${DEMO_KEEP:-0}" = 1 ]; then
  step "Apps a person can sign in to (user clinician@contoso.example, password Demo-Passw0rd)"
  for app in smart-app:smart-spa web-app:clinician-portal; do
    SECRET_DIR="$demo/secrets/${app#*:}" CONFIGMAP_DIR="$demo/configmap" NODE_EXTRA_CA_CERTS="$CA_FILE" PATIENT_ID=pat-1 \
      node "interop/fhir-server/${app%%:*}.mjs" serve >"$demo/${app%%:*}.out" 2>"$demo/${app%%:*}.log" &
    echo $! >>"$demo/pids"
  done
  sleep 1
  echo "  SMART app (fhirclient, standalone launch): http://localhost:3000/launch"
  echo "  web app (msal-node, acting for the user):  http://localhost:3001/"
  echo "  (the emulator's certificate is from its own CA, $CA_FILE: accept it in the browser or import it)"
fi

step "No credential value in the operator's log"
leaks=0
for s in $(kubectl get secrets -n fhir-demo -l app.kubernetes.io/managed-by=fhir-app-operator -o name); do
  v=$(kubectl get -n fhir-demo "$s" -o jsonpath='{.data.AZURE_CLIENT_SECRET}' | base64 -d)
  [ -n "$v" ] && grep -qF -- "$v" "$demo/operator.log" && { echo "  LEAK: $s's secret is in the log"; leaks=1; }
done
[ $leaks = 0 ] && echo "  checked $(wc -l <"$demo/operator.log") log lines: none"
echo; echo "Logs: $demo/operator.log, $demo/emulator.log"
exit $leaks
