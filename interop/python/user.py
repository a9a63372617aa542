"""The user's side of an interactive sign-in: a loopback server at the app's redirect URI, and
Debian's chromium (interop/browser/signin.mjs) on the emulator's sign-in pages.

env USER_NAME, USER_PASSWORD, BROWSER_NODE_MODULES, SIGNIN_SCRIPT; CONSENT (accept, the default, or cancel).
"""
import http.server
import json
import os
import socket
import subprocess
import tempfile
import signal
import threading
import time
import urllib.parse


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def browser(url, callback, otc=None):
    """Runs the browser as the user; its JSON result (landed / page / consentShown)."""
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        arg = {"url": url, "callback": callback, "user": os.environ["USER_NAME"],
               "password": os.environ["USER_PASSWORD"], "consent": os.environ.get("CONSENT", "accept"),
               "userDataDir": profile, "otc": otc}
        out = subprocess.run(["node", os.environ["SIGNIN_SCRIPT"], json.dumps(arg)], capture_output=True,
                             text=True, timeout=90)
        if out.returncode != 0:
            raise RuntimeError(f"browser failed: {out.stderr[-1500:]}")
        return json.loads(out.stdout.strip().splitlines()[-1])


def sign_in(auth_uri, redirect_uri):
    """Opens auth_uri in the browser; returns (the query the loopback server at redirect_uri received,
    or None, and the browser's result). redirect_uri is http://localhost:PORT/path or http://127.0.0.1:..."""
    u = urllib.parse.urlsplit(redirect_uri)
    got = {}

    class Callback(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            q = urllib.parse.urlsplit(self.path)
            if q.path == (u.path or "/"):
                got.update(dict(urllib.parse.parse_qsl(q.query)))
            body = b"<html><body><p id='result'>You may close this window.</p></body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # the query holds the authorization code: not logged
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", u.port or 80), Callback)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = browser(auth_uri, redirect_uri)
    finally:
        server.shutdown()
        server.server_close()
    return (got or None), result


def stop_browser(pid_file, grace=30):
    """Waits for the browser whose PID is in pid_file to finish (it closes itself), else stops it."""
    try:
        pid = int(open(pid_file).read())
    except (OSError, ValueError):
        return
    deadline = time.time() + grace
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.kill(pid, signal.SIGTERM)
