// Service (daemon) clients with Microsoft's Node.js libraries, given only the operator's Secret. argv[2]:
//   env-credential      @azure/identity EnvironmentCredential (secret, or AZURE_CLIENT_CERTIFICATE_PATH)
//   client-certificate  @azure/identity ClientCertificateCredential from the Secret's client-certificate.pem
//   workload-identity   @azure/identity WorkloadIdentityCredential (AZURE_FEDERATED_TOKEN_FILE)
//   msal-secret         @azure/msal-node ConfidentialClientApplication.acquireTokenByClientCredential
//   msal-certificate    the same with the Secret's tls.key and the certificate's SHA-256 thumbprint
// Prints {ok: true, library, claims} or {ok: false, error}.
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { AUTHORITY, KNOWN_AUTHORITIES, SECRET, emit, libraryError, require, verifiedClaims } from './common.mjs';

const way = process.argv[2];
const scope = SECRET.FHIR_SCOPE;
try {
  let token;
  let library;
  if (['env-credential', 'client-certificate', 'workload-identity'].includes(way)) {
    const id = require('@azure/identity');
    // A private cloud: the authority host is AZURE_AUTHORITY_HOST (from the Secret); no instance discovery.
    const options = { disableInstanceDiscovery: true };
    const cred = way === 'env-credential' ? new id.EnvironmentCredential(options)
      : way === 'client-certificate' ? new id.ClientCertificateCredential(SECRET.AZURE_TENANT_ID, SECRET.AZURE_CLIENT_ID,
        { certificatePath: join(process.env.SECRET_DIR, 'client-certificate.pem') },
        { ...options, authorityHost: SECRET.AZURE_AUTHORITY_HOST })
        : new id.WorkloadIdentityCredential(options);
    token = (await cred.getToken(scope)).token;
    library = '@azure/identity';
  } else {
    const msal = require('@azure/msal-node');
    const auth = { clientId: SECRET.AZURE_CLIENT_ID, authority: AUTHORITY, knownAuthorities: KNOWN_AUTHORITIES };
    if (way === 'msal-secret') auth.clientSecret = SECRET.AZURE_CLIENT_SECRET;
    else {
      const fp = new X509Certificate(SECRET['tls.crt']).fingerprint256.replaceAll(':', '');
      auth.clientCertificate = { thumbprintSha256: fp, privateKey: SECRET['tls.key'] };
    }
    const app = new msal.ConfidentialClientApplication({ auth });
    token = (await app.acquireTokenByClientCredential({ scopes: [scope] })).accessToken;
    library = '@azure/msal-node';
  }
  emit({ ok: true, library, claims: await verifiedClaims(token) });
} catch (e) {
  emit({ ok: false, error: libraryError(e) });
}
