// Authorization of a validated token, as the open-source microsoft/fhir-server decides it:
// - the token's `roles` (an app's app roles, or the signed-in user's role assignments) map to data
//   actions by roles.json (src/Microsoft.Health.Fhir.Shared.Web/roles.json); permissions are the union;
// - a delegated token (it has `scp`) that carries SMART clinical scopes is also limited by them,
//   checked by @asymmetrik/sof-scope-checker (the check node-fhir-server-core's SMART middleware uses).
//   Scope values are read as the OSS server's SmartClinicalScopesMiddleware reads them: `/`, `$` or `.`
//   after patient|user|system, `*` or `all` for every type, v1 levels (read, write, *, all) or v2
//   letters (cruds).
import { createRequire } from 'node:module';

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

/** The data action a request needs, and the FHIR resource type it touches. */
export function requested(method, path) {
  const [, , type = '*', id = ''] = path.split('/');
  const resource = type.startsWith('$') || type === '' ? '*' : type;
  if (path.includes('$export')) return { action: 'export', resource };
  if (method === 'GET' || method === 'HEAD' || id === '_search') return { action: 'read', resource };
  if (method === 'DELETE') return { action: 'delete', resource };
  return { action: 'write', resource };
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

/** {allowed, reason, roles, scopes}: whether `claims` may do `method path`. */
export function authorize(claims, method, path) {
  const { action, resource } = requested(method, path);
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
  }
  return { allowed: true, roles, scopes };
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
