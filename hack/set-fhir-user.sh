#!/usr/bin/env bash
# Sets a directory user's fhirUser: what provisioning does for each user of a FhirResourceApp with
# spec.smart.fhirUserClaim (README, "Who signed in: the fhirUser claim"). The value lives on the user,
# in the directory extension the operator created; the operator maps it into the tokens.
#
#   hack/set-fhir-user.sh <namespace> <FhirResourceApp> <user: UPN or object ID> <value, e.g. Practitioner/123>
#
# The extension's full name is read from the FhirResourceApp's status.fhirUser.extensionAttribute, then
#   PATCH {GRAPH_URL}/users/{user}  {"extension_<appId without dashes>_fhirUser": "<value>"}
# (Graph: 204; the caller needs User.ReadWrite.All). Environment: KUBECTL (default kubectl), GRAPH_URL
# (default https://graph.microsoft.com/v1.0), GRAPH_TOKEN (default: `az account get-access-token
# --resource-type ms-graph`), CA_FILE (a CA to trust, e.g. the emulator's). The same with az alone:
#   az rest --method PATCH --url https://graph.microsoft.com/v1.0/users/<user> \
#     --headers Content-Type=application/json --body '{"<extension attribute>": "Practitioner/123"}'
set -euo pipefail
[ $# -eq 4 ] || { sed -n '6p' "$0" | sed 's/^# *//'; exit 2; }
namespace=$1 app=$2 user=$3 value=$4
kubectl=${KUBECTL:-kubectl}
graph=${GRAPH_URL:-https://graph.microsoft.com/v1.0}

attribute=$("$kubectl" get fhirresourceapp -n "$namespace" "$app" -o jsonpath='{.status.fhirUser.extensionAttribute}')
if [ -z "$attribute" ]; then
  echo "FhirResourceApp $namespace/$app has no status.fhirUser.extensionAttribute: is spec.smart.fhirUserClaim true," >&2
  echo "and its FhirUserClaim condition True? (kubectl describe fhirresourceapp -n $namespace $app)" >&2
  exit 1
fi
token=${GRAPH_TOKEN:-$(az account get-access-token --resource-type ms-graph --query accessToken -o tsv)}
body=$(python3 -c 'import json, sys; print(json.dumps({sys.argv[1]: sys.argv[2]}))' "$attribute" "$value")
answer=$(mktemp); trap 'rm -f "$answer"' EXIT
status=$(curl -sS ${CA_FILE:+--cacert "$CA_FILE"} -o "$answer" -w '%{http_code}' -X PATCH \
  -H "Authorization: Bearer $token" -H 'Content-Type: application/json' --data "$body" "$graph/users/$user")
[ "$status" = 204 ] || { echo "PATCH $graph/users/$user: $status $(cat "$answer")" >&2; exit 1; }
echo "  $user: $attribute = $value"
