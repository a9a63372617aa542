// Confidential web app with @azure/msal-node: getAuthCodeUrl with PKCE (CryptoProvider.generatePkceCodes),
// the user in chromium, the redirect on a loopback server at the Secret's REDIRECT_URI, acquireTokenByCode;
// then acquireTokenSilent once the access token is within msal-node's renewal offset (a refresh token).
// Prints {ok: true, pkce, claims, idToken, refreshed} or {ok: false, error, browser}.
import { KNOWN_AUTHORITIES, SECRET, emit, libraryError, require, verifiedClaims } from './common.mjs';
import { signIn } from './user.mjs';

const msal = require('@azure/msal-node');
const scopes = SECRET.FHIR_DELEGATED_SCOPES.split(' ');
const redirectUri = SECRET.REDIRECT_URI;
const app = new msal.ConfidentialClientApplication({
  auth: { clientId: SECRET.AZURE_CLIENT_ID, authority: SECRET.AUTHORITY, clientSecret: SECRET.AZURE_CLIENT_SECRET,
    knownAuthorities: KNOWN_AUTHORITIES },
});
const { verifier, challenge } = await new msal.CryptoProvider().generatePkceCodes();
const url = await app.getAuthCodeUrl({ scopes, redirectUri, codeChallenge: challenge, codeChallengeMethod: 'S256' });
const [query, seen] = await signIn(url, redirectUri);
if (!query?.code) {
  emit({ ok: false, error: { error: query?.error, error_description: query?.error_description?.slice(0, 1500) }, browser: seen });
  process.exit(0);
}
try {
  const first = await app.acquireTokenByCode({ code: query.code, scopes, redirectUri, codeVerifier: verifier });
  const silent = await app.acquireTokenSilent({ account: first.account, scopes });
  emit({
    ok: true,
    pkce: new URL(url).searchParams.get('code_challenge_method') === 'S256',
    claims: await verifiedClaims(first.accessToken),
    idToken: { aud: first.idTokenClaims.aud, preferred_username: first.idTokenClaims.preferred_username },
    refreshed: { fromCache: silent.fromCache, newToken: silent.accessToken !== first.accessToken,
      claims: await verifiedClaims(silent.accessToken) },
  });
} catch (e) {
  emit({ ok: false, error: libraryError(e), browser: seen });
}
