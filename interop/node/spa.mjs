// Public SPA with @azure/msal-browser in chromium: a page served from the Secret's REDIRECT_URI origin runs
// loginRedirect (PKCE, code redeemed cross-origin by the browser), then acquireTokenSilent once the access
// token is within msal-browser's renewal offset (the refresh token, cross-origin again). This program is the
// SPA's web server (a loopback server, stopped at the end) and checks the tokens with the ConfigMap.
// Prints {ok: true, claims, idToken, refreshed} or {ok: false, error: {errorCode, errorMessage}, browser}.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { KNOWN_AUTHORITIES, SECRET, emit, verifiedClaims } from './common.mjs';
import { browser } from './user.mjs';

const redirect = new URL(SECRET.REDIRECT_URI);
const config = {
  auth: { clientId: SECRET.AZURE_CLIENT_ID, authority: SECRET.AUTHORITY, knownAuthorities: KNOWN_AUTHORITIES,
    redirectUri: SECRET.REDIRECT_URI },
  cache: { cacheLocation: 'sessionStorage' },
};
const scopes = SECRET.FHIR_DELEGATED_SCOPES.split(' ');
// The SPA: one page, at the start URL and at the redirect URI.
const page = `<!doctype html><html><head><meta charset="utf-8"><title>SPA</title>
<script src="/msal-browser.js"></script></head><body><pre id="result"></pre><script type="module">
const out = (v) => { document.getElementById('result').textContent = JSON.stringify(v); };
try {
  const pca = new msal.PublicClientApplication(${JSON.stringify(config)});
  await pca.initialize();
  const signedIn = await pca.handleRedirectPromise();
  if (!signedIn) {
    await pca.loginRedirect({ scopes: ${JSON.stringify(scopes)} });
  } else {
    const silent = await pca.acquireTokenSilent({ scopes: ${JSON.stringify(scopes)}, account: signedIn.account });
    out({ ok: true, accessToken: signedIn.accessToken, idToken: { aud: signedIn.idTokenClaims.aud,
      preferred_username: signedIn.idTokenClaims.preferred_username },
      refreshed: { fromCache: silent.fromCache, accessToken: silent.accessToken } });
  }
} catch (e) {
  out({ ok: false, error: { errorCode: e.errorCode, errorMessage: String(e.errorMessage || e.message).slice(0, 1500) } });
}
</script></body></html>`;
const bundle = readFileSync(`${process.env.INTEROP_NODE_MODULES}/@azure/msal-browser/lib/msal-browser.js`);
const server = createServer((req, res) => {
  const path = new URL(req.url, redirect).pathname;
  if (path === '/msal-browser.js') res.writeHead(200, { 'Content-Type': 'text/javascript' }).end(bundle);
  else if (path === '/start' || path === redirect.pathname) res.writeHead(200, { 'Content-Type': 'text/html' }).end(page);
  else res.writeHead(404).end();
});
await new Promise((r) => server.listen(Number(redirect.port || 80), '127.0.0.1', r));
try {
  const seen = await browser(`${redirect.origin}/start`, SECRET.REDIRECT_URI, '#result');
  const r = seen.result ? JSON.parse(seen.result) : { ok: false, error: { errorCode: 'no result' } };
  if (!r.ok) {
    emit({ ok: false, error: r.error, browser: { ...seen, result: undefined } });
  } else {
    emit({ ok: true, claims: await verifiedClaims(r.accessToken), idToken: r.idToken,
      refreshed: { fromCache: r.refreshed.fromCache, newToken: r.refreshed.accessToken !== r.accessToken,
        claims: await verifiedClaims(r.refreshed.accessToken) } });
  }
} finally {
  server.close();
}
