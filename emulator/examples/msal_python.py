"""MSAL Python against the emulator: the authorization-code flow (initiate_auth_code_flow /
acquire_token_by_auth_code_flow), a silent refresh, and the device-code flow, for a user
signing in on the emulator's pages (filled in here with `requests`, as a browser would).

    entra-emulator --permission Application.ReadWrite.All \
        --user 'clinician@contoso.example:Demo-Passw0rd:Dr Demo' > emulator.env &
    pip install msal
    REQUESTS_CA_BUNDLE=$(sed -n 's/^CA_FILE=//p' emulator.env) python3 msal_python.py emulator.env

REQUESTS_CA_BUNDLE, when set in the environment, wins over `verify=` in requests (and so in MSAL);
point it at the emulator's CA. Checked with msal 1.39.0.
"""
import re
import sys
import threading
import time
import urllib.parse
import uuid

import msal
import requests

USER, PASSWORD = "clinician@contoso.example", "Demo-Passw0rd"
env = {k: v.strip().strip("'") for k, v in (l.split("=", 1) for l in open(sys.argv[1]) if "=" in l)}
AUTH, TID, GRAPH = env["AZURE_AUTHORITY_HOST"], env["AZURE_TENANT_ID"], env["GRAPH_URL"]
AUTHORITY = f"{AUTH}{TID}"


def graph_setup():
    """A FHIR API exposing user_impersonation, a web app with a secret, a public desktop app."""
    s = requests.Session()
    tok = s.post(f"{AUTHORITY}/oauth2/v2.0/token", data={
        "grant_type": "client_credentials", "client_id": env["AZURE_CLIENT_ID"],
        "client_secret": env["AZURE_CLIENT_SECRET"], "scope": "https://graph.microsoft.com/.default"}).json()
    h = {"Authorization": f"Bearer {tok['access_token']}"}
    post = lambda path, body: s.post(f"{GRAPH}{path}", headers=h, json=body).json()
    scope = {"id": str(uuid.uuid4()), "value": "user_impersonation", "type": "User", "isEnabled": True,
             "adminConsentDisplayName": "Access the FHIR server", "adminConsentDescription": "d"}
    api = post("/applications", {"displayName": "fhir-server", "identifierUris": ["https://fhir.contoso.example"],
                                 "api": {"requestedAccessTokenVersion": 2, "oauth2PermissionScopes": [scope]}})
    post("/servicePrincipals", {"appId": api["appId"]})
    web = post("/applications", {"displayName": "clinician-portal", "web": {"redirectUris": ["http://localhost/callback"]}})
    post("/servicePrincipals", {"appId": web["appId"]})
    secret = post(f"/applications/{web['id']}/addPassword", {})["secretText"]
    desktop = post("/applications", {"displayName": "desktop", "isFallbackPublicClient": True,
                                     "publicClient": {"redirectUris": ["http://localhost"]}})
    post("/servicePrincipals", {"appId": desktop["appId"]})
    return web["appId"], secret, desktop["appId"]


def fill_in(browser, page):
    """Signs in on the sign-in page, then accepts the consent page; the last response."""
    req = lambda r: re.search(r'name="req" value="([^"]+)"', r.text).group(1)
    r = browser.post(f"{AUTHORITY}/login", data={"req": req(page), "login": USER, "passwd": PASSWORD}, allow_redirects=False)
    if 'id="permissions"' in r.text:
        r = browser.post(f"{AUTHORITY}/consent", data={"req": req(r), "accept": "true"}, allow_redirects=False)
    return r


SCOPES = ["https://fhir.contoso.example/user_impersonation"]
web_id, web_secret, desktop_id = graph_setup()

app = msal.ConfidentialClientApplication(web_id, client_credential=web_secret, authority=AUTHORITY, instance_discovery=False)
flow = app.initiate_auth_code_flow(SCOPES, redirect_uri="http://localhost:5555/callback")
browser = requests.Session()
done = fill_in(browser, browser.get(flow["auth_uri"], allow_redirects=False))
redirect = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(done.headers["Location"]).query))
result = app.acquire_token_by_auth_code_flow(flow, redirect)
assert "access_token" in result, result
print("authorization code:", result["id_token_claims"]["preferred_username"], result["scope"])
account = app.get_accounts()[0]
refreshed = app.acquire_token_silent(SCOPES, account=account, force_refresh=True)
assert refreshed and "access_token" in refreshed, refreshed
print("silent refresh: ok")

public = msal.PublicClientApplication(desktop_id, authority=AUTHORITY, instance_discovery=False)
device = public.initiate_device_flow(SCOPES)
print(device["message"])


def user_enters_the_code():
    time.sleep(1)
    b = requests.Session()
    fill_in(b, b.post(device["verification_uri"], data={"otc": device["user_code"]}))


threading.Thread(target=user_enters_the_code).start()
result = public.acquire_token_by_device_flow(device)
assert "access_token" in result, result
print("device code:", result["id_token_claims"]["preferred_username"])
