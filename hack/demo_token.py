"""Reads the service client's Secret and asks the token endpoint for a FHIR token with it."""
import base64, json, os, ssl, subprocess, sys, urllib.parse, urllib.request

namespace, client, kubectl = sys.argv[1], sys.argv[2], sys.argv[3]
secrets = json.loads(subprocess.check_output(
    [kubectl, "get", "secrets", "-n", namespace, "-l", f"fhirapps.io/owner-kind=FhirClientApp,fhirapps.io/owner-name={client}", "-o", "json"]))["items"]
if not secrets:
    sys.exit(f"no Secret of FhirClientApp {client} found")
env = {k: base64.b64decode(v).decode() for k, v in secrets[0]["data"].items()}
form = urllib.parse.urlencode({
    "grant_type": "client_credentials",
    "client_id": env["AZURE_CLIENT_ID"],
    "client_secret": env["AZURE_CLIENT_SECRET"],
    "scope": env["FHIR_SCOPE"],
}).encode()
ctx = ssl.create_default_context(cafile=os.environ["CA_FILE"])
with urllib.request.urlopen(urllib.request.Request(env["TOKEN_ENDPOINT"], data=form), context=ctx) as r:
    token = json.load(r)["access_token"]
payload = token.split(".")[1]
claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
print(f"  POST {env['TOKEN_ENDPOINT']} (scope {env['FHIR_SCOPE']}): 200")
print(f"  aud   = {claims.get('aud')}")
print(f"  iss   = {claims.get('iss')}")
print(f"  roles = {claims.get('roles')}")
if claims.get("aud") != env["FHIR_AUDIENCE"]:
    sys.exit(f"unexpected audience {claims.get('aud')!r}, wanted {env['FHIR_AUDIENCE']!r}")
