"""What every Python consumer shares: the operator's outputs as a pod sees them, and the FHIR
server's check of a token with nothing but the resource app's ConfigMap.

The harness (tests/tests/interop.rs) gives each consumer exactly:
  - the client's Secret, as `envFrom` would (its keys in the environment) and as a volume
    (SECRET_DIR, one file per key);
  - the resource app's ConfigMap as a volume (CONFIGMAP_DIR);
  - the emulator's CA (CA_FILE; REQUESTS_CA_BUNDLE for `requests`, which azure-core and MSAL use).
The private-cloud settings (authority host from the Secret, instance discovery off) are in the code.
"""
import json
import os
import ssl
import sys

import jwt


def read_dir(var):
    d = os.environ[var]
    return {k: open(os.path.join(d, k)).read() for k in os.listdir(d) if not k.startswith(".")}


SECRET = read_dir("SECRET_DIR")
CONFIGMAP = read_dir("CONFIGMAP_DIR")
CA_FILE = os.environ["CA_FILE"]
AUTHORITY = SECRET["AZURE_AUTHORITY_HOST"].rstrip("/") + "/" + SECRET["AZURE_TENANT_ID"]


def verified_claims(access_token):
    """The FHIR server's view: signature from the ConfigMap's JWKS_URI, audience and issuer from it."""
    jwks = jwt.PyJWKClient(CONFIGMAP["JWKS_URI"], ssl_context=ssl.create_default_context(cafile=CA_FILE))
    key = jwks.get_signing_key_from_jwt(access_token)
    return jwt.decode(access_token, key.key, algorithms=["RS256"], audience=CONFIGMAP["AUDIENCE"],
                      issuer=CONFIGMAP["ISSUER"])


def emit(**result):
    """One JSON line on stdout: what the harness asserts. Never a token or a secret, only claims."""
    print(json.dumps(result, sort_keys=True))
    sys.stdout.flush()


def library_error(e):
    """An exception from a library, as its user sees it (type and message; AADSTS codes included)."""
    return {"type": type(e).__name__, "message": str(e)[:1500]}
