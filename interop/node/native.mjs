// Public native (mobile/desktop) client with @azure/msal-node's PublicClientApplication, nothing but the
// Secret (no credential in it). argv[2]:
//   interactive  acquireTokenInteractive: msal-node's own loopback server at http://localhost:<port> (the
//                Secret's REDIRECT_URI, any port), auth code + PKCE; openBrowser drives chromium as the user
//   device-code  acquireTokenByDeviceCode, the user entering the code in chromium
// Prints {ok: true, claims, id_token} or {ok: false, error}.
import { KNOWN_AUTHORITIES, SECRET, emit, libraryError, require, verifiedClaims } from './common.mjs';
import { browser } from './user.mjs';

const msal = require('@azure/msal-node');
const way = process.argv[2];
const scopes = SECRET.FHIR_DELEGATED_SCOPES.split(' ');
const pca = new msal.PublicClientApplication({
  auth: { clientId: SECRET.AZURE_CLIENT_ID, authority: SECRET.AUTHORITY, knownAuthorities: KNOWN_AUTHORITIES },
});
let user = Promise.resolve(); // the browser, awaited before exit (it removes its profile directory)
try {
  let result;
  if (way === 'interactive') {
    result = await pca.acquireTokenInteractive({
      scopes,
      openBrowser: async (url) => { user = browser(url, 'http://localhost').catch(() => {}); },
      successTemplate: 'Signed in.',
      errorTemplate: 'Sign-in failed.',
    });
  } else {
    result = await pca.acquireTokenByDeviceCode({
      scopes,
      deviceCodeCallback: (r) => { user = browser(r.verificationUri, 'none://', undefined, r.userCode).catch(() => {}); },
    });
  }
  emit({ ok: true, claims: await verifiedClaims(result.accessToken),
    id_token: { aud: result.idTokenClaims.aud, preferred_username: result.idTokenClaims.preferred_username } });
} catch (e) {
  emit({ ok: false, error: libraryError(e) });
}
await user;
