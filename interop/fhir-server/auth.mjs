// Authorization of a validated token, as the open-source microsoft/fhir-server decides it:
// - the token's `roles` (an app's app roles, or the signed-in user's role assignments) map to data
//   actions by roles.json (src/Microsoft.Health.Fhir.Shared.Web/roles.json); permissions are the union;
// - a delegated token (it has `scp`) that carries SMART clinical scopes is also limited by them,
//   checked by @asymmetrik/sof-scope-checker (the check node-fhir-server-core's SMART middleware uses).
//   Scope values are read as the OSS server's SmartClinicalScopesMiddleware reads them: `/`, `$` or `.`
//   after patient|user|system, `*` or `all` for every type, v1 levels (read, write, *, all) or v2
//   letters (cruds): Entra carries `patient/Patient.rs` as `patient.Patient.rs` in `scp`, and the
//   middleware's regex (microsoft/fhir-server src/Microsoft.Health.Fhir.Api/Features/SMART/
//   SmartClinicalScopesMiddleware.cs) takes `/`, `$` or `.` and URL-decodes `%2f` first;
// - with FHIR_USER_CLAIM configured, a delegated token must carry that claim and is limited to the
//   signed-in user's compartment (fhir-user.mjs).
import { createRequire } from 'node:module';
import { compartmentOf, outsideCompartment } from './fhir-user.mjs';

const require = createRequire(`${process.env.FHIR_SERVER_NODE_MODULES}/`);
const scopeChecker = require('@asymmetrik/sof-scope-checker');

/** roles.json: dataActions and notDataActions per role. */
export const ROLES = {
  globalReader: { actions: ['read', 'resourceValidate'] },
  globalExporter: { actions: ['read', 'export'] },
  globalConverter: { actions: ['read', 'convertData'] },
  globalImporter: { actions: ['read', 'import'] },
  globalWriter: { actions: ['*'], not: ['hardDelete', 'editProfileDefinitions'] },
  globalAdmin: { actions: ['*'] },
  smartUser: { actions: ['*', 'smart'] },
};

/**
 * The data action a request needs, the FHIR resource type it touches, and its SMART v2 interaction
 * (`r` read by id, `s` search, `c` create, `u` update, `d` delete).
 */
export function requested(method, path) {
  const [, , type = '*', id = ''] = path.split('/');
  const resource = type.startsWith('$') || type === '' ? '*' : type;
  if (path.includes('$export')) return { action: 'export', resource, interaction: 's' };
  if (id === '_search' || ((method === 'GET' || method === 'HEAD') && id === '')) return { action: 'read', resource, interaction: 's' };
  if (method === 'GET' || method === 'HEAD') return { action: 'read', resource, interaction: 'r' };
  if (method === 'DELETE') return { action: 'delete', resource, interaction: 'd' };
  return { action: 'write', resource, interaction: method === 'POST' ? 'c' : 'u' };
}

const roleAllows = (role, action) => {
  const r = ROLES[role];
  return !!r && (r.actions.includes(action) || r.actions.includes('*')) && !(r.not ?? []).includes(action);
};

const CLINICAL = /^(patient|user|system)[/$.](\*|all|[A-Za-z]+)\.(read|write|\*|all|[cruds]+)$/;

/** A token's SMART clinical scopes in the SMART v1 form sof-scope-checker reads (`patient/*.read`). */
export function clinicalScopes(scp) {
  const out = [];
  for (const raw of String(scp ?? '').split(' ')) {
    const m = CLINICAL.exec(decodeURIComponent(raw));
    if (!m) continue;
    const [, ctx, type, level] = m;
    const t = type === 'all' ? '*' : type;
    let levels;
    if (level === 'all' || level === '*') levels = ['*'];
    else if (level === 'read' || level === 'write') levels = [level];
    else levels = [...(/[rs]/.test(level) ? ['read'] : []), ...(/[cud]/.test(level) ? ['write'] : [])];
    for (const l of levels) out.push(`${ctx}/${t}.${l}`);
  }
  return out;
}

// v1 levels as v2 letters: SmartClinicalScopesMiddleware reads `read` as r+s and `write` as c+u+d.
const V1_LETTERS = { read: 'rs', write: 'cud', '*': 'cruds', all: 'cruds' };

/** The v2 letters the token's clinical scopes grant on `resource` (v1 levels widened to theirs). */
export function grantedLetters(scp, resource) {
  let letters = '';
  for (const raw of String(scp ?? '').split(' ')) {
    const m = CLINICAL.exec(decodeURIComponent(raw));
    if (!m) continue;
    const [, , type, level] = m;
    if (type === '*' || type === 'all' || type === resource) letters += V1_LETTERS[level] ?? level;
  }
  return letters;
}

/**
 * {allowed, reason, roles, scopes, compartment}: whether `claims` may do `method path`. `fhirUser`
 * ({claim, attribute}: FHIR_USER_CLAIM and FHIR_USER_EXTENSION_ATTRIBUTE), when the server requires the
 * claim: a delegated token without it is refused, and one with it gets the user's `compartment`
 * (searches are narrowed to it by the stores). App-only tokens are unaffected.
 */
export function authorize(claims, method, path, fhirUser = undefined) {
  const { action, resource, interaction } = requested(method, path);
  const roles = Array.isArray(claims.roles) ? claims.roles : [];
  if (!roles.some((r) => roleAllows(r, action))) {
    return { allowed: false, reason: `the token's roles [${roles.join(', ')}] do not allow '${action}'` };
  }
  const delegated = typeof claims.scp === 'string';
  const scopes = delegated ? clinicalScopes(claims.scp) : [];
  if (scopes.length > 0) {
    const { error } = scopeChecker(resource, action === 'read' || action === 'export' ? 'read' : 'write', scopes);
    if (error) {
      return { allowed: false, reason: `the token's SMART scopes [${scopes.join(' ')}] do not allow '${action}' on ${resource}` };
    }
    // SMART v2 splits read into r (by id) and s (search, and $export): patient/Patient.r cannot search (AHDS
    // "SMART on FHIR" page; microsoft/fhir-server SmartClinicalScopesMiddleware keeps the letters).
    if (!grantedLetters(claims.scp, resource).includes(interaction)) {
      return { allowed: false, reason: `the token's SMART scopes [${claims.scp}] do not grant '${interaction}' on ${resource}` };
    }
  }
  if (!delegated || !fhirUser?.claim) return { allowed: true, roles, scopes };
  const { compartment, reason } = compartmentOf(claims, fhirUser);
  const outside = compartment && outsideCompartment(compartment, resource, path.split('/')[3]);
  if (reason || outside) return { allowed: false, reason: reason || outside };
  return { allowed: true, roles, scopes, compartment };
}

/**
 * SMART App Launch discovery (`.well-known/smart-configuration`) from the authority's OpenID
 * configuration: its authorize and token endpoints (the v2.0 ones, where scopes such as
 * `{audience}/patient.Patient.read` can be asked for), PKCE with S256, what this server supports.
 */
export function smartConfiguration(v2) {
  return {
    issuer: v2.issuer,
    jwks_uri: v2.jwks_uri,
    authorization_endpoint: v2.authorization_endpoint,
    token_endpoint: v2.token_endpoint,
    token_endpoint_auth_methods_supported: ['client_secret_post', 'client_secret_basic', 'private_key_jwt'],
    grant_types_supported: ['authorization_code', 'client_credentials', 'refresh_token'],
    scopes_supported: ['openid', 'profile', 'offline_access', 'fhirUser', 'launch', 'launch/patient'],
    response_types_supported: ['code'],
    code_challenge_methods_supported: ['S256'],
    capabilities: ['launch-standalone', 'client-public', 'client-confidential-symmetric',
      'sso-openid-connect', 'permission-patient', 'permission-user', 'permission-offline', 'permission-v1'],
  };
}
