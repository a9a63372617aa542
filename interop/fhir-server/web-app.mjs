// A Confidential web app acting for a signed-in user, with @azure/msal-node and the client's Secret:
// `/` sends the user to sign in (getAuthCodeUrl, PKCE), REDIRECT_URI redeems the code
// (acquireTokenByCode) and calls the FHIR server (FHIR_URL) as the user: it reads Patient PATIENT_ID,
// searches Patient, tries to create one, searches Observation and reads OTHER_RESOURCE (if set), and
// shows what the server answered and the fhirUser claim of the ID token and of the access token.
// env SECRET_DIR, CONFIGMAP_DIR (for interop/node/common.mjs), INTEROP_NODE_MODULES (msal-node),
// PATIENT_ID, and the user's part (interop/node/user.mjs).
// `node web-app.mjs serve` only serves it (for a person: make demo with DEMO_KEEP=1).
// Prints {ok, patient, search, write, other, otherResource, idToken: {fhirUser}, token: {scp, roles, aud, fhirUser}}
// (claims, never a token) or {ok: false, ...}.
import { createServer } from 'node:http';
import { KNOWN_AUTHORITIES, SECRET, require } from '../node/common.mjs';
import { browser } from '../node/user.mjs';

const msal = require('@azure/msal-node');
const scopes = SECRET.FHIR_DELEGATED_SCOPES.split(' ');
const redirectUri = SECRET.REDIRECT_URI;
const redirect = new URL(redirectUri);
const app = new msal.ConfidentialClientApplication({
  auth: { clientId: SECRET.AZURE_CLIENT_ID, authority: SECRET.AUTHORITY, clientSecret: SECRET.AZURE_CLIENT_SECRET,
    knownAuthorities: KNOWN_AUTHORITIES },
});
const base = SECRET.FHIR_URL.replace(/\/$/, '');
const patientId = process.env.PATIENT_ID || 'pat-1';
let verifier;

/** The FHIR server's answer: status and the resource's id or its OperationOutcome's text. */
async function fhir(token, method, path, body) {
  const r = await fetch(`${base}/${path}`, { method, body: body && JSON.stringify(body),
    headers: { Authorization: `Bearer ${token}`, Accept: 'application/fhir+json', 'Content-Type': 'application/fhir+json' } });
  const json = await r.json().catch(() => ({}));
  const issue = json.issue?.[0];
  return { status: r.status, id: json.id, name: json.name, ids: json.entry?.map((e) => e.resource.id),
    error: issue?.diagnostics ?? issue?.details?.text };
}

async function signedIn(code) {
  const t = await app.acquireTokenByCode({ code, scopes, redirectUri, codeVerifier: verifier });
  const patient = await fhir(t.accessToken, 'GET', `Patient/${patientId}`);
  const search = await fhir(t.accessToken, 'GET', 'Patient');
  const write = await fhir(t.accessToken, 'POST', 'Patient', { resourceType: 'Patient', name: [{ family: 'Written' }] });
  const other = await fhir(t.accessToken, 'GET', 'Observation');
  const otherResource = process.env.OTHER_RESOURCE ? await fhir(t.accessToken, 'GET', process.env.OTHER_RESOURCE) : null;
  const c = JSON.parse(Buffer.from(t.accessToken.split('.')[1], 'base64url'));
  // The fhirUser claim as MSAL hands the ID token's claims over (idTokenClaims), and in the API's token.
  return { ok: true, user: t.account?.username, patient, search, write, other, otherResource,
    idToken: { fhirUser: t.idTokenClaims?.fhirUser ?? null },
    token: { scp: c.scp, roles: c.roles, aud: c.aud, fhirUser: c.fhirUser ?? null } };
}

const server = createServer(async (req, res) => {
  const u = new URL(req.url, redirectUri);
  const html = (v) => res.writeHead(200, { 'Content-Type': 'text/html' })
    .end(`<!doctype html><title>Web app</title><h1>Web app</h1><pre id="result">${JSON.stringify(v, null, 1)
      .replace(/</g, '&lt;')}</pre>`);
  try {
    if (u.pathname === '/') {
      const pkce = await new msal.CryptoProvider().generatePkceCodes();
      verifier = pkce.verifier;
      const url = await app.getAuthCodeUrl({ scopes, redirectUri, codeChallenge: pkce.challenge, codeChallengeMethod: 'S256' });
      res.writeHead(302, { Location: url }).end();
    } else if (u.pathname === redirect.pathname && u.searchParams.get('code')) {
      html(await signedIn(u.searchParams.get('code')));
    } else if (u.pathname === redirect.pathname) {
      html({ ok: false, error: u.searchParams.get('error'), error_description: u.searchParams.get('error_description') });
    } else {
      res.writeHead(404).end();
    }
  } catch (e) {
    html({ ok: false, error: e.errorCode ?? e.name, message: String(e.errorMessage ?? e.message).slice(0, 1500) });
  }
});
await new Promise((r) => server.listen(Number(redirect.port || 80), '127.0.0.1', r));
if (process.argv[2] === 'serve') {
  console.log(JSON.stringify({ start: `${redirect.origin}/` }));
} else {
  try {
    const seen = await browser(`${redirect.origin}/`, redirectUri, '#result');
    const r = seen.result ? JSON.parse(seen.result) : { ok: false, error: 'no result' };
    console.log(JSON.stringify({ ...r, browser: { ...seen, result: undefined } }));
  } finally {
    server.close();
  }
}
