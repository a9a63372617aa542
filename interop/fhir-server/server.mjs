// A real FHIR server for the tests: @asymmetrik/node-fhir-server-core (its routes, its passport hook,
// its OperationOutcomes), an in-memory Patient store, and authentication configured only from the
// operator's ConfigMap: FhirServer__Security__Authentication__Authority / __Audience, read from the
// environment (envFrom) or from CONFIGMAP_DIR (the ConfigMap as a volume). The authority's discovery
// document gives the issuer and JWKS, as microsoft/fhir-server's JwtBearer setup does; jose validates.
// Authorization: auth.mjs (roles.json's meaning, SMART scopes for delegated tokens).
//
// Server settings (not authentication): PORT (0 = any), HOST (default 127.0.0.1), SEED_PATIENTS (JSON
// array of Patient resources), FHIR_SERVER_NODE_MODULES (the installed packages),
// FhirServer__Security__EnableAadSmartOnFhirProxy (true: microsoft/fhir-server's SMART proxy,
// smart-proxy.mjs; default false).
// Prints one JSON line when listening: {"listening": port, "base": ".../4_0_1"}.
import { createRequire } from 'node:module';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { authorize, smartConfiguration } from './auth.mjs';
import { smartProxy } from './smart-proxy.mjs';

const require = createRequire(`${process.env.FHIR_SERVER_NODE_MODULES}/`);
const { initialize, constants, ServerError } = require('@asymmetrik/node-fhir-server-core');
const { Strategy: BearerStrategy } = require('passport-http-bearer');
const express = require('express');
const jose = await import(require.resolve('jose'));

/** A ConfigMap key: from the environment (envFrom) or the mounted ConfigMap. */
function setting(key, fallback = undefined) {
  if (process.env[key]) return process.env[key];
  const file = process.env.CONFIGMAP_DIR && join(process.env.CONFIGMAP_DIR, key);
  if (file && existsSync(file)) return readFileSync(file, 'utf8');
  if (fallback !== undefined) return fallback;
  throw new Error(`${key} is not set: give the server the operator's ConfigMap (envFrom or CONFIGMAP_DIR)`);
}

const authority = setting('FhirServer__Security__Authentication__Authority').replace(/\/$/, '');
const audience = setting('FhirServer__Security__Authentication__Audience');
// What ASP.NET's JwtBearer does with an Authority: its OpenID discovery document names the issuer
// and the keys tokens must carry.
const discovery = await (await fetch(`${authority}/.well-known/openid-configuration`)).json();
if (!discovery.issuer || !discovery.jwks_uri) {
  throw new Error(`no issuer/jwks_uri in ${authority}/.well-known/openid-configuration`);
}
const keys = jose.createRemoteJWKSet(new URL(discovery.jwks_uri));
// SMART apps sign users in at the v2.0 endpoints (the only ones that take scopes), whatever token
// version the resource app asks for.
const v2 = authority.endsWith('/v2.0') ? discovery
  : await (await fetch(`${authority}/v2.0/.well-known/openid-configuration`)).json();

/** Validates the bearer token (signature, issuer, audience, lifetime); its claims, or why not. */
async function validate(token) {
  try {
    const { payload } = await jose.jwtVerify(token, keys, {
      issuer: discovery.issuer, audience, algorithms: ['RS256'],
    });
    return { claims: payload };
  } catch (e) {
    return { reason: `${e.code ?? e.name}: ${e.message}` };
  }
}

const forbidden = (text) => new ServerError(text, {
  statusCode: 403, issue: [{ severity: 'error', code: 'forbidden', details: { text } }],
});

// passport-http-bearer under the server's own `auth.strategy` hook: 401 with WWW-Authenticate
// (error="invalid_token") for a token that does not validate, 403 OperationOutcome for one that
// lacks the role or scope for this request.
const strategy = new BearerStrategy({ passReqToCallback: true }, (req, token, done) => {
  validate(token).then(({ claims, reason }) => {
    if (!claims) return done(null, false, reason);
    const decision = authorize(claims, req.method, req.path);
    if (!decision.allowed) return done(forbidden(decision.reason));
    return done(null, { claims, ...decision });
  }, done);
});

const patients = new Map();
for (const p of JSON.parse(process.env.SEED_PATIENTS || '[]')) patients.set(p.id, p);
let next = 1;
const patientService = {
  searchById: async ({ id }) => patients.get(id),
  search: async () => ({
    resourceType: 'Bundle', type: 'searchset', total: patients.size,
    entry: [...patients.values()].map((resource) => ({ resource })),
  }),
  create: async (args, { req }) => {
    const id = `p${Date.now().toString(36)}${next++}`;
    patients.set(id, { ...req.body, resourceType: 'Patient', id });
    return { id };
  },
  update: async ({ id }, { req }) => {
    const created = !patients.has(id);
    patients.set(id, { ...req.body, resourceType: 'Patient', id });
    return { id, created };
  },
};

// An empty Observation store: a second resource type, so a scope for one type can be seen refusing another.
const observationService = {
  search: async () => ({ resourceType: 'Bundle', type: 'searchset', total: 0, entry: [] }),
};

const { VERSIONS } = constants;
const app = express();
const cors = (res) => res.set('Access-Control-Allow-Origin', '*');
// microsoft/fhir-server's SMART proxy, off unless enabled as there (its appsettings default is true).
const proxied = setting('FhirServer__Security__EnableAadSmartOnFhirProxy', 'false').toLowerCase() === 'true';
if (proxied) app.use(`/${VERSIONS['4_0_1']}/AadSmartOnFhirProxy`, smartProxy(VERSIONS['4_0_1'], v2));
// SMART App Launch discovery at the FHIR base (where fhirclient looks: {iss}/.well-known/...); with the
// proxy on, its authorize and token endpoints are the proxy's.
app.get(['/.well-known/smart-configuration', `/${VERSIONS['4_0_1']}/.well-known/smart-configuration`], (req, res) => {
  const proxy = `${req.protocol}://${req.get('host')}/${VERSIONS['4_0_1']}/AadSmartOnFhirProxy`;
  const endpoints = proxied ? { authorization_endpoint: `${proxy}/authorize`, token_endpoint: `${proxy}/token` } : {};
  cors(res).json({ ...smartConfiguration(v2), ...endpoints });
});
const config = {
  auth: { strategy: { name: 'bearer', service: new URL('./strategy.cjs', import.meta.url).pathname, useSession: false } },
  server: {
    port: Number(process.env.PORT ?? 0),
    corsOptions: { maxAge: 86400 },
  },
  logging: { level: 'warn' },
  profiles: {
    patient: { service: patientService, versions: [VERSIONS['4_0_1']] },
    observation: { service: observationService, versions: [VERSIONS['4_0_1']] },
  },
};
// The server's hook loads `require(path.resolve(config.auth.strategy.service)).strategy`.
globalThis.__fhirServerStrategy = strategy;
const server = initialize(config, app);
server.listen(config.server.port, process.env.HOST ?? '127.0.0.1', () => {
  const { port } = server.app.address();
  console.log(JSON.stringify({ listening: port, base: `http://127.0.0.1:${port}/${VERSIONS['4_0_1']}`,
    issuer: discovery.issuer, audience }));
});
