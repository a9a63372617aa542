// What every Node.js consumer shares (see interop/python/common.py): the operator's outputs as a pod sees
// them (the Secret's keys in the environment and as files in SECRET_DIR, the resource app's ConfigMap in
// CONFIGMAP_DIR), the emulator's CA (NODE_EXTRA_CA_CERTS), and the FHIR server's check of a token with
// nothing but the ConfigMap: RS256 signature from JWKS_URI, AUDIENCE and ISSUER.
import { createPublicKey, verify } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

export const require = createRequire(`${process.env.INTEROP_NODE_MODULES}/`);

const readDir = (d) => Object.fromEntries(readdirSync(d).filter((k) => !k.startsWith('.'))
  .map((k) => [k, readFileSync(join(d, k), 'utf8')]));
export const SECRET = readDir(process.env.SECRET_DIR);
export const CONFIGMAP = readDir(process.env.CONFIGMAP_DIR);
export const AUTHORITY = `${SECRET.AZURE_AUTHORITY_HOST.replace(/\/$/, '')}/${SECRET.AZURE_TENANT_ID}`;
/** MSAL's knownAuthorities: the authority's host[:port] (notes §5.2). */
export const KNOWN_AUTHORITIES = [new URL(SECRET.AZURE_AUTHORITY_HOST).host];

const b64 = (s) => Buffer.from(s, 'base64url');

export async function verifiedClaims(token) {
  const [h, p, s] = token.split('.');
  const header = JSON.parse(b64(h));
  const jwks = await (await fetch(CONFIGMAP.JWKS_URI)).json();
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  if (!jwk || header.alg !== 'RS256') throw new Error(`no RS256 key ${header.kid} at JWKS_URI`);
  const key = createPublicKey({ key: jwk, format: 'jwk' });
  if (!verify('RSA-SHA256', Buffer.from(`${h}.${p}`), key, b64(s))) throw new Error('bad signature');
  const claims = JSON.parse(b64(p));
  if (claims.aud !== CONFIGMAP.AUDIENCE) throw new Error(`aud ${claims.aud} is not ${CONFIGMAP.AUDIENCE}`);
  if (claims.iss !== CONFIGMAP.ISSUER) throw new Error(`iss ${claims.iss} is not ${CONFIGMAP.ISSUER}`);
  if (claims.exp * 1000 < Date.now()) throw new Error('expired');
  return claims;
}

/** One JSON line on stdout: what the harness asserts. Claims only, never a token or a secret. */
export const emit = (result) => console.log(JSON.stringify(result));

/** An error from a library as its user sees it. */
export const libraryError = (e) => ({
  type: e?.name, error: e?.errorCode ?? e?.error, message: String(e?.errorMessage ?? e?.message ?? e).slice(0, 1500),
});
