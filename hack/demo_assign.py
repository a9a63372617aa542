"""Gives a directory user an app role on the FHIR API, as an administrator would in Graph
(POST /servicePrincipals/{id}/appRoleAssignedTo): the one place make demo lets its user in. With
appRoleAssignmentRequired on the resource app's service principal, this is also what lets the user
get a token for the FHIR API at all.

argv: the resource app's appId, the user's UPN, the role value. Env: AZURE_AUTHORITY_HOST (the
emulator's base URL), GRAPH_URL, AZURE_TENANT_ID, CA_FILE (what the emulator printed)."""
import json, os, ssl, sys, urllib.parse, urllib.request

app_id, upn, role = sys.argv[1:4]
ctx = ssl.create_default_context(cafile=os.environ["CA_FILE"])
base = os.environ["AZURE_AUTHORITY_HOST"].rstrip("/")
tid = os.environ["AZURE_TENANT_ID"]


def call(method, url, body=None, token=None):
    req = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body is not None else b"" if method == "POST" else None)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, context=ctx) as r:
        return json.load(r)


# The emulator's stand-in for an administrator's sign-in (emulator/README.md).
token = call("POST", f"{base}/_emulator/tenants/{tid}/admin-token")["access_token"]
graph = os.environ["GRAPH_URL"].rstrip("/")
q = lambda f: urllib.parse.quote(f)
user = call("GET", f"{graph}/users/{q(upn)}", token=token)
flt = q(f"appId eq '{app_id}'")
sp = call("GET", f"{graph}/servicePrincipals?$filter={flt}", token=token)["value"][0]
role_id = next(r["id"] for r in sp["appRoles"] if r["value"] == role)
call("POST", f"{graph}/servicePrincipals/{sp['id']}/appRoleAssignedTo",
     {"principalId": user["id"], "resourceId": sp["id"], "appRoleId": role_id}, token=token)
print(f"  {upn} holds {role} on the FHIR API ({app_id})")
