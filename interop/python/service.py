"""Service (daemon) clients: a token for the FHIR server by client credentials, with Microsoft's
libraries given only the operator's Secret. argv[1] names the way:

  env-credential      azure-identity EnvironmentCredential (secret, or certificate via AZURE_CLIENT_CERTIFICATE_PATH)
  env-defaults        EnvironmentCredential() with no settings at all (Entra itself, or hack/as-azure.sh)
  client-certificate  azure-identity CertificateCredential (Python's name for ClientCertificateCredential) from the Secret's client-certificate.pem
  workload-identity   azure-identity WorkloadIdentityCredential (AZURE_FEDERATED_TOKEN_FILE)
  msal-secret         msal ConfidentialClientApplication.acquire_token_for_client with AZURE_CLIENT_SECRET
  msal-certificate    the same with the Secret's tls.key / tls.crt (thumbprint computed by the app)

Prints {"ok": true, "claims": {...verified by the ConfigMap...}} or {"ok": false, "error": {...}}.
"""
import os
import sys

from common import AUTHORITY, SECRET, emit, library_error, verified_claims

way = sys.argv[1]
scope = SECRET["FHIR_SCOPE"]
try:
    if way in ("env-credential", "env-defaults", "client-certificate", "workload-identity"):
        from azure.identity import CertificateCredential, EnvironmentCredential, WorkloadIdentityCredential

        # A private cloud: the authority host comes from AZURE_AUTHORITY_HOST (the Secret), and there is no
        # login.microsoftonline.com to ask for instance discovery.
        if way == "env-credential":
            cred = EnvironmentCredential(disable_instance_discovery=True)
        elif way == "env-defaults":
            cred = EnvironmentCredential()
        elif way == "client-certificate":
            cred = CertificateCredential(
                SECRET["AZURE_TENANT_ID"], SECRET["AZURE_CLIENT_ID"],
                certificate_path=os.path.join(os.environ["SECRET_DIR"], "client-certificate.pem"),
                authority=SECRET["AZURE_AUTHORITY_HOST"], disable_instance_discovery=True)
        else:
            cred = WorkloadIdentityCredential(disable_instance_discovery=True)
        token = cred.get_token(scope).token
        library = "azure-identity"
    else:
        import msal

        if way == "msal-secret":
            credential = SECRET["AZURE_CLIENT_SECRET"]
        else:
            from cryptography import x509
            from cryptography.hazmat.primitives import hashes

            cert = x509.load_pem_x509_certificate(SECRET["tls.crt"].encode())
            credential = {"private_key": SECRET["tls.key"], "thumbprint": cert.fingerprint(hashes.SHA1()).hex()}
        app = msal.ConfidentialClientApplication(SECRET["AZURE_CLIENT_ID"], client_credential=credential,
                                                 authority=AUTHORITY, instance_discovery=False)
        result = app.acquire_token_for_client([scope])
        if "access_token" not in result:
            emit(ok=False, error={"type": "msal", "error": result.get("error"),
                                  "message": result.get("error_description", "")[:1500]})
            sys.exit(0)
        token = result["access_token"]
        library = "msal"
    emit(ok=True, library=library, claims=verified_claims(token))
except Exception as e:  # the library's own report is the result
    emit(ok=False, error=library_error(e))
