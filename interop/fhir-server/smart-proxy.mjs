// The SMART on FHIR proxy of microsoft/fhir-server (AadSmartOnFhirProxyController), as its source
// behaves (shared notes, fhir-facts §6.3), for FhirServer__Security__EnableAadSmartOnFhirProxy=true:
// - GET  {base}/AadSmartOnFhirProxy/authorize: the app's state and launch wrapped into `state`, its
//   redirect_uri replaced by {base}/AadSmartOnFhirProxy/callback/{base64url(redirect_uri)}, then to the
//   authority's authorize endpoint; code_challenge is not forwarded;
// - GET  {base}/AadSmartOnFhirProxy/callback/{enc}: back to the app with the code (wrapped with the
//   launch context) and its own state;
// - POST {base}/AadSmartOnFhirProxy/token: the code redeemed at the authority **by the server** (no
//   Origin, no code_verifier; the app's client secret passed on if it sent one), the launch context
//   added to the answer.
// One difference: scopes are passed on as the app sends them (the operator's Entra names); the real
// proxy rewrites `patient/*.read` to `{aud}/patient$*.read` on a v2.0 authority.
import { createRequire } from 'node:module';

const require = createRequire(`${process.env.FHIR_SERVER_NODE_MODULES}/`);
const express = require('express');

const b64 = (s) => Buffer.from(s).toString('base64url');
const unb64 = (s) => Buffer.from(s, 'base64url').toString();

/** The proxy's routes under `/{version}/AadSmartOnFhirProxy`, for the authority's v2.0 document `v2`. */
export function smartProxy(version, v2) {
  const router = express.Router();
  const callback = (req, redirectUri) =>
    `${req.protocol}://${req.get('host')}/${version}/AadSmartOnFhirProxy/callback/${b64(redirectUri)}`;
  router.get('/authorize', (req, res) => {
    const q = req.query;
    const state = b64(JSON.stringify({ s: q.state, l: q.launch ?? b64('{}') }));
    const to = new URL(v2.authorization_endpoint);
    for (const [k, v] of Object.entries({ response_type: q.response_type, client_id: q.client_id,
      redirect_uri: callback(req, q.redirect_uri), scope: q.scope, state })) to.searchParams.set(k, v);
    res.redirect(302, to.toString());
  });
  router.get('/callback/:enc', (req, res) => {
    const app = new URL(unb64(req.params.enc));
    const { code, state, error, error_description: desc } = req.query;
    const wrapped = JSON.parse(unb64(String(state ?? b64('{}'))));
    if (error) {
      app.searchParams.set('error', error);
      if (desc) app.searchParams.set('error_description', desc);
    } else {
      app.searchParams.set('code', b64(JSON.stringify({ code, l: wrapped.l })));
    }
    if (wrapped.s !== undefined) app.searchParams.set('state', wrapped.s);
    res.redirect(302, app.toString());
  });
  router.post('/token', express.urlencoded({ extended: false }), async (req, res) => {
    res.set('Access-Control-Allow-Origin', '*');
    const f = { ...req.body };
    const basic = /^Basic (.+)$/.exec(req.get('authorization') ?? '');
    if (basic) {
      [f.client_id, f.client_secret] = Buffer.from(basic[1], 'base64').toString().split(':').map(decodeURIComponent);
    }
    let launch = {};
    const form = new URLSearchParams();
    if (f.grant_type === 'authorization_code') {
      const { code, l } = JSON.parse(unb64(f.code));
      launch = JSON.parse(unb64(l ?? b64('{}')));
      for (const [k, v] of Object.entries({ grant_type: 'authorization_code', code,
        redirect_uri: callback(req, f.redirect_uri), client_id: f.client_id })) form.set(k, v);
      if (f.client_secret) form.set('client_secret', f.client_secret);
    } else {
      for (const [k, v] of Object.entries(f)) form.set(k, v);
    }
    const r = await fetch(v2.token_endpoint, { method: 'POST', body: form });
    const body = await r.json();
    if (r.ok) {
      for (const k of ['patient', 'encounter', 'practitioner', 'need_patient_banner', 'smart_style_url']) {
        if (launch[k] !== undefined) body[k] = launch[k];
      }
      body.client_id = f.client_id;
    }
    res.status(r.status).json(body);
  });
  return router;
}
