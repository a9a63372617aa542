"""Public native (mobile/desktop) client: MSAL Python's PublicClientApplication with nothing but the
Secret (no credential in it). argv[1]:

  interactive  acquire_token_interactive: MSAL's own loopback server at http://localhost:<port> (the
               Secret's REDIRECT_URI, any port), auth code + PKCE, the desktop's browser ($BROWSER) as the user
  device-code  initiate_device_flow / acquire_token_by_device_flow, the user entering the code in chromium
  with-secret  the same client as a ConfidentialClientApplication sending a secret (it must be refused):
               $PUBLIC_CLIENT_SECRET, one an administrator added to the app out of band

Prints {"ok": true, "claims", "id_token"} or {"ok": false, "error": {"error", "error_description"}}.
"""
import logging
import os
import sys
import threading
import urllib.parse

import msal

from common import SECRET, emit, verified_claims
from user import browser, free_port, sign_in, stop_browser

logging.basicConfig(level=os.environ.get("LOG_LEVEL", "WARNING"), format="%(asctime)s %(name)s %(message)s")
way = sys.argv[1]
scopes = SECRET["FHIR_DELEGATED_SCOPES"].split()
registered = urllib.parse.urlsplit(SECRET["REDIRECT_URI"])
assert registered.scheme == "http" and registered.hostname == "localhost" and not registered.port, registered
extra = {}
if way == "interactive":
    app = msal.PublicClientApplication(SECRET["AZURE_CLIENT_ID"], authority=SECRET["AUTHORITY"], instance_discovery=False)
    pid_file = os.path.join(os.environ["HOME"], "browser.pid")
    os.environ["BROWSER_PID_FILE"] = pid_file  # the desktop's browser, $BROWSER, is interop/browser/open-url
    try:
        result = app.acquire_token_interactive(scopes, timeout=90)
    finally:
        stop_browser(pid_file)
elif way == "device-code":
    app = msal.PublicClientApplication(SECRET["AZURE_CLIENT_ID"], authority=SECRET["AUTHORITY"], instance_discovery=False)
    flow = app.initiate_device_flow(scopes)
    seen = {}
    user = threading.Thread(target=lambda: seen.update(browser(flow["verification_uri"], "none://", otc=flow["user_code"])))
    user.start()
    result = app.acquire_token_by_device_flow(flow)
    user.join()
    extra["browser"] = seen
else:
    app = msal.ConfidentialClientApplication(SECRET["AZURE_CLIENT_ID"], client_credential=os.environ["PUBLIC_CLIENT_SECRET"],
                                             authority=SECRET["AUTHORITY"], instance_discovery=False)
    redirect = f"http://localhost:{free_port()}"
    flow = app.initiate_auth_code_flow(scopes, redirect_uri=redirect)
    auth_response, extra["browser"] = sign_in(flow["auth_uri"], redirect)
    result = app.acquire_token_by_auth_code_flow(flow, auth_response or {})
if "access_token" not in result:
    emit(ok=False, error={"error": result.get("error"), "error_description": result.get("error_description", "")[:1500]},
         **extra)
else:
    emit(ok=True, claims=verified_claims(result["access_token"]), scope=result.get("scope"),
         id_token={k: result["id_token_claims"].get(k) for k in ("aud", "preferred_username")}, **extra)
