// A SMART on FHIR app built with fhirclient (SMART client-js), standalone launch in Debian's chromium:
// its launch page calls FHIR.oauth2.authorize with the FHIR server as `iss` (fhirclient reads the
// server's .well-known/smart-configuration: the emulator's endpoints, PKCE S256), the user signs in and
// consents on the emulator's pages, and the redirect page (FHIR.oauth2.ready: the code redeemed by the
// browser) shows who signed in (client.getFhirUser(): the id token's fhirUser claim), reads the Patient
// PATIENT_ID, the user's own resource (client.user.read()) and OTHER_RESOURCE (e.g. another
// Practitioner), and tries to create a Patient.
// This program is the app's web server, on the origin of the Secret's REDIRECT_URI (a SPA redirect).
// env SECRET_DIR (the Public client's Secret), FHIR_SERVER_NODE_MODULES, PATIENT_ID, and the user's part
// (USER_NAME, USER_PASSWORD, BROWSER_NODE_MODULES, SIGNIN_SCRIPT; interop/node/user.mjs); LAUNCH (below);
// OTHER_RESOURCE (optional, e.g. Practitioner/prac-2).
// `node smart-app.mjs serve` only serves the app (for a person: make demo with DEMO_KEEP=1).
// Prints {ok, fhirUser, patient, user, other, write, idToken: {fhirUser}, token: {scp, roles, aud, fhirUser}}
// (claims, never a token; each read as {status, id} or {status, error}) or {ok: false, ...}.
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { browser } from '../node/user.mjs';

const require = createRequire(`${process.env.FHIR_SERVER_NODE_MODULES}/`);
const SECRET = Object.fromEntries(readdirSync(process.env.SECRET_DIR).filter((k) => !k.startsWith('.'))
  .map((k) => [k, readFileSync(join(process.env.SECRET_DIR, k), 'utf8')]));
const redirect = new URL(SECRET.REDIRECT_URI);
// The scopes as the operator mapped them (FHIR_DELEGATED_SCOPES: `{audience}/patient.Patient.read`, …)
// and OpenID Connect's own; fhirclient passes them on as they are.
// With LAUNCH (a JSON launch context such as {"patient": "pat-1"}), an EHR launch as microsoft/fhir-server's
// SMART proxy takes it: `launch` = base64url of that JSON; the proxy returns its fields with the token.
const launch = process.env.LAUNCH ? Buffer.from(process.env.LAUNCH).toString('base64url') : undefined;
const settings = {
  iss: SECRET.FHIR_URL, clientId: SECRET.AZURE_CLIENT_ID, redirectUri: SECRET.REDIRECT_URI,
  scope: `openid profile offline_access ${SECRET.FHIR_DELEGATED_SCOPES}`, pkceMode: 'required',
  ...(launch ? { launch } : {}),
};
const page = `<!doctype html><html><head><meta charset="utf-8"><title>SMART app</title>
<script src="/fhir-client.js"></script></head><body><h1>SMART app</h1><p id="who"></p><pre id="result"></pre><script>
const out = (v) => { document.getElementById('result').textContent = JSON.stringify(v); };
(async () => {
  try {
    if (location.pathname === '/launch') {
      await FHIR.oauth2.authorize(${JSON.stringify(settings)});
      return;
    }
    const client = await FHIR.oauth2.ready();
    // Who signed in: the id token's fhirUser claim (null without one), shown as a person sees it.
    const fhirUser = client.getFhirUser() || null;
    document.getElementById('who').textContent = fhirUser ? 'Signed in as ' + fhirUser : 'Signed in (no fhirUser)';
    // A FHIR read's status and resource, or the status and the OperationOutcome's text on refusal.
    const attempt = async (read) => {
      try {
        const r = await read();
        return { status: 200, resourceType: r.resourceType, id: r.id, name: r.name };
      } catch (e) {
        const m = String(e && e.message || e);
        let error = m.slice(0, 500);
        try { const o = JSON.parse(m.slice(m.indexOf('{'))); error = o.issue[0].diagnostics || o.issue[0].details.text; } catch (_) {}
        return { status: e.status || e.statusCode || 0, error };
      }
    };
    // The patient in context when the launch gave one, else the one this app is told to read.
    const patient = await attempt(() => client.patient.id ? client.patient.read()
      : client.request('Patient/${process.env.PATIENT_ID || 'pat-1'}'));
    // The user's own resource (fhirclient's client.user.read(): the fhirUser reference), and another's.
    const user = fhirUser ? await attempt(() => client.user.read()) : null;
    const other = ${JSON.stringify(process.env.OTHER_RESOURCE || '')};
    const otherRead = other ? await attempt(() => client.request(other)) : null;
    let write;
    try {
      const created = await client.create({ resourceType: 'Patient', name: [{ family: 'Written', given: ['By', 'SMART'] }] });
      write = { status: 201, id: created && created.id };
    } catch (e) {
      write = { status: e.status || e.statusCode, message: String(e.message).slice(0, 500) };
    }
    // The access token's claims (what the FHIR server authorized), not the token.
    const c = JSON.parse(atob(client.state.tokenResponse.access_token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')));
    const idToken = client.getIdToken() || {};
    out({ ok: true, fhirUser, patient, user, other: otherRead, write,
      context: { patient: client.patient.id || null, scope: client.state.tokenResponse.scope || null },
      idToken: { fhirUser: idToken.fhirUser || null },
      token: { scp: c.scp, roles: c.roles, aud: c.aud, oid: c.oid, fhirUser: c.fhirUser || null } });
  } catch (e) {
    out({ ok: false, error: String(e && e.message || e).slice(0, 1500) });
  }
})();
</script></body></html>`;
const bundle = readFileSync(require.resolve('fhirclient/build/fhir-client.js'));
const server = createServer((req, res) => {
  const path = new URL(req.url, redirect).pathname;
  if (path === '/fhir-client.js') res.writeHead(200, { 'Content-Type': 'text/javascript' }).end(bundle);
  else if (path === '/launch' || path === redirect.pathname) res.writeHead(200, { 'Content-Type': 'text/html' }).end(page);
  else res.writeHead(404).end();
});
await new Promise((r) => server.listen(Number(redirect.port || 80), '127.0.0.1', r));
if (process.argv[2] === 'serve') {
  console.log(JSON.stringify({ launch: `${redirect.origin}/launch` }));
} else {
  try {
    const seen = await browser(`${redirect.origin}/launch`, SECRET.REDIRECT_URI, '#result');
    const r = seen.result ? JSON.parse(seen.result) : { ok: false, error: 'no result' };
    console.log(JSON.stringify({ ...r, browser: { ...seen, result: undefined } }));
  } finally {
    server.close();
  }
}
