"""A Service client calling the FHIR server with nothing but its Secret: azure-identity's
EnvironmentCredential gets the token (FHIR_SCOPE), `requests` calls FHIR_URL. argv[1:] are the
requests to make, each `read:<Patient id>`, `write` (create a Patient) or `search`.

Prints {"ok": true, "calls": [{"call", "status", "id"?, "error"?}...]}: statuses and the server's
OperationOutcome text, never a token or a secret.
"""
import os
import sys

import requests
from azure.identity import EnvironmentCredential

from common import SECRET, emit, library_error

try:
    token = EnvironmentCredential(disable_instance_discovery=True).get_token(SECRET["FHIR_SCOPE"]).token
except Exception as e:  # the library's own report is the result
    emit(ok=False, error=library_error(e))
    sys.exit(0)
base = SECRET["FHIR_URL"].rstrip("/")
headers = {"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"}
calls = []
for call in sys.argv[1:]:
    if call.startswith("read:"):
        r = requests.get(f"{base}/Patient/{call[5:]}", headers=headers, timeout=30)
    elif call == "write":
        body = {"resourceType": "Patient", "name": [{"family": "Written", "given": ["By", "Service"]}]}
        r = requests.post(f"{base}/Patient", json=body, timeout=30,
                          headers={**headers, "Content-Type": "application/fhir+json"})
    else:
        r = requests.get(f"{base}/Patient", headers=headers, timeout=30)
    out = {"call": call, "status": r.status_code}
    try:
        body = r.json()
        out["id"] = body.get("id")
        out["resourceType"] = body.get("resourceType")
        out["error"] = (body.get("issue") or [{}])[0].get("details", {}).get("text")
    except ValueError:
        out["text"] = r.text[:300]
    if r.headers.get("Location"):
        out["location"] = r.headers["Location"]
    calls.append(out)
emit(ok=True, calls=calls, base=base, client_id=os.environ.get("AZURE_CLIENT_ID"))
