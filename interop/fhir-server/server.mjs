// A real FHIR server for the tests: @asymmetrik/node-fhir-server-core (its routes, its passport hook,
// its OperationOutcomes), in-memory Patient, Practitioner and Observation stores, and authentication
// configured only from the operator's ConfigMap: FhirServer__Security__Authentication__Authority /
// __Audience, and FHIR_USER_CLAIM / FHIR_USER_EXTENSION_ATTRIBUTE when the fhirUser claim is on, read
// from the environment (envFrom) or from CONFIGMAP_DIR (the ConfigMap as a volume). The authority's
// discovery document gives the issuer and JWKS, as microsoft/fhir-server's JwtBearer setup does; jose
// validates. Authorization: auth.mjs (roles.json's meaning, SMART scopes for delegated tokens) and
// fhir-user.mjs (the signed-in user's compartment).
//
// Server settings (not authentication): PORT (0 = any), HOST (default 127.0.0.1), SEED_RESOURCES (JSON
// array of Patient, Practitioner and Observation resources), FHIR_SERVER_NODE_MODULES (the installed packages),
// FhirServer__Security__EnableAadSmartOnFhirProxy (true: microsoft/fhir-server's SMART proxy,
// smart-proxy.mjs; default false).
// Prints one JSON line when listening: {"listening": port, "base": ".../4_0_1"}.
import { createRequire } from 'node:module';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { authorize, smartConfiguration } from './auth.mjs';
import { visible } from './fhir-user.mjs';
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
// The fhirUser claim, when the operator maps it (spec.smart.fhirUserClaim): required in delegated tokens
// and the user's compartment (fhir-user.mjs). The extension's full name only makes refusals say what to set.
const fhirUser = {
  claim: setting('FHIR_USER_CLAIM', '').trim(),
  attribute: setting('FHIR_USER_EXTENSION_ATTRIBUTE', '').trim(),
};
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
  statusCode: 403, issue: [{ severity: 'error', code: 'forbidden', details: { text }, diagnostics: text }],
});

// passport-http-bearer under the server's own `auth.strategy` hook: 401 with WWW-Authenticate
// (error="invalid_token") for a token that does not validate, 403 OperationOutcome for one that
// lacks the role or scope for this request.
const strategy = new BearerStrategy({ passReqToCallback: true }, (req, token, done) => {
  validate(token).then(({ claims, reason }) => {
    if (!claims) return done(null, false, reason);
    const decision = authorize(claims, req.method, req.path, fhirUser);
    if (!decision.allowed) return done(forbidden(decision.reason));
    return done(null, { claims, ...decision });
  }, done);
});

// In-memory stores by resource type, seeded from SEED_RESOURCES. Reads and searches keep to the
// signed-in user's compartment when the token has one (fhir-user.mjs); writes go by roles and scopes.
const stores = { Patient: new Map(), Practitioner: new Map(), Observation: new Map() };
for (const r of JSON.parse(process.env.SEED_RESOURCES || '[]')) stores[r.resourceType ?? 'Patient']?.set(r.id, r);
let next = 1;
const outside = (r, c) => forbidden(`the signed-in user (fhirUser ${c.type}/${c.id}) may not read `
  + `${r.resourceType}/${r.id}: it is outside the user's compartment`);

/** A FHIR service over one store: read by id and search for every type, create and update where `writable`. */
function service(type, writable) {
  const store = stores[type];
  const read = {
    searchById: async ({ id }, { req }) => {
      const r = store.get(id);
      const compartment = req.user?.compartment;
      if (r && !visible(r, compartment)) throw outside(r, compartment);
      return r;
    },
    search: async (args, { req }) => {
      const found = [...store.values()].filter((r) => visible(r, req.user?.compartment));
      return { resourceType: 'Bundle', type: 'searchset', total: found.length, entry: found.map((resource) => ({ resource })) };
    },
  };
  if (!writable) return read;
  return {
    ...read,
    create: async (args, { req }) => {
      const id = `${type.slice(0, 3).toLowerCase()}${Date.now().toString(36)}${next++}`;
      store.set(id, { ...req.body, resourceType: type, id });
      return { id };
    },
    update: async ({ id }, { req }) => {
      const created = !store.has(id);
      store.set(id, { ...req.body, resourceType: type, id });
      return { id, created };
    },
  };
}

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
    patient: { service: service('Patient', true), versions: [VERSIONS['4_0_1']] },
    practitioner: { service: service('Practitioner', false), versions: [VERSIONS['4_0_1']] },
    // A second patient-data type, so a scope for one type can be seen refusing another.
    observation: { service: service('Observation', false), versions: [VERSIONS['4_0_1']] },
  },
};
// The server's hook loads `require(path.resolve(config.auth.strategy.service)).strategy`.
globalThis.__fhirServerStrategy = strategy;
const server = initialize(config, app);
server.listen(config.server.port, process.env.HOST ?? '127.0.0.1', () => {
  const { port } = server.app.address();
  console.log(JSON.stringify({ listening: port, base: `http://127.0.0.1:${port}/${VERSIONS['4_0_1']}`,
    issuer: discovery.issuer, audience, fhirUserClaim: fhirUser.claim || null }));
});
