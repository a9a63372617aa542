"""Confidential web app: MSAL Python's ConfidentialClientApplication signs a user in with the
authorization-code flow and PKCE (initiate_auth_code_flow / acquire_token_by_auth_code_flow), the
user in chromium on the emulator's pages, the redirect landing on a loopback server at the Secret's
REDIRECT_URI; then acquire_token_silent once the access token counts as expired (a refresh token).

Prints {"ok": true, "pkce", "scope", "claims" (verified with the ConfigMap), "id_token", "refreshed": {...}}
or {"ok": false, "error": {"error", "error_description"}, "browser": {...}} as MSAL reports it.
"""
import urllib.parse

import msal

from common import SECRET, emit, verified_claims
from user import sign_in

scopes = SECRET["FHIR_DELEGATED_SCOPES"].split()
app = msal.ConfidentialClientApplication(SECRET["AZURE_CLIENT_ID"], client_credential=SECRET["AZURE_CLIENT_SECRET"],
                                         authority=SECRET["AUTHORITY"], instance_discovery=False)
flow = app.initiate_auth_code_flow(scopes, redirect_uri=SECRET["REDIRECT_URI"])
query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(flow["auth_uri"]).query))
pkce = query.get("code_challenge_method") == "S256" and bool(query.get("code_challenge"))
auth_response, seen = sign_in(flow["auth_uri"], SECRET["REDIRECT_URI"])
if auth_response is None:
    emit(ok=False, error={"error": "no redirect"}, browser=seen)
    raise SystemExit(0)
result = app.acquire_token_by_auth_code_flow(flow, auth_response)
if "access_token" not in result:
    emit(ok=False, error={"error": result.get("error"), "error_description": result.get("error_description", "")[:1500]},
         browser=seen)
    raise SystemExit(0)
first = result["access_token"]
accounts = app.get_accounts()
# MSAL counts an access token within 5 minutes of its expiry as expired; the harness's emulator issues
# short-lived ones, so this goes to the token endpoint with the refresh token.
silent = app.acquire_token_silent(scopes, account=accounts[0]) if accounts else None
refreshed = None
if silent and "access_token" in silent:
    refreshed = {"token_source": silent.get("token_source"), "new_token": silent["access_token"] != first,
                 "claims": verified_claims(silent["access_token"])}
emit(ok=True, pkce=pkce, scope=result.get("scope"), claims=verified_claims(first),
     id_token={k: result["id_token_claims"].get(k) for k in ("aud", "preferred_username", "tid", "oid")},
     has_refresh_token=bool(result.get("refresh_token")), accounts=len(accounts), refreshed=refreshed,
     consent_shown=seen.get("consentShown"))
