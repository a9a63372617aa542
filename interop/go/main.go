// Service (daemon) clients with Go's azidentity, given only the operator's Secret (see
// interop/python/common.py for what the harness hands over). The argument (after an optional --):
//
//	env-credential      azidentity.NewEnvironmentCredential (secret, or AZURE_CLIENT_CERTIFICATE_PATH)
//	client-certificate  azidentity.NewClientCertificateCredential from the Secret's client-certificate.pem
//	workload-identity   azidentity.NewWorkloadIdentityCredential (AZURE_FEDERATED_TOKEN_FILE)
//
// The authority host comes from AZURE_AUTHORITY_HOST (the Secret), instance discovery is off, and the
// emulator's CA is the only one trusted (SSL_CERT_FILE). The token is checked as the FHIR server would,
// with nothing but the resource app's ConfigMap. Prints {"ok": true, "claims": {...}} or {"ok": false, "error"}.
package main

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/golang-jwt/jwt/v5"
)

func readDir(env string) map[string]string {
	d := os.Getenv(env)
	out := map[string]string{}
	entries, _ := os.ReadDir(d)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		b, _ := os.ReadFile(filepath.Join(d, e.Name()))
		out[e.Name()] = string(b)
	}
	return out
}

func emit(v map[string]any) {
	b, _ := json.Marshal(v)
	fmt.Println(string(b))
}

// verifiedClaims checks the RS256 signature with the ConfigMap's JWKS_URI and its AUDIENCE and ISSUER.
func verifiedClaims(token string, cm map[string]string) (jwt.MapClaims, error) {
	resp, err := http.Get(cm["JWKS_URI"])
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var jwks struct {
		Keys []struct{ Kid, N, E string } `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&jwks); err != nil {
		return nil, err
	}
	claims := jwt.MapClaims{}
	_, err = jwt.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		for _, k := range jwks.Keys {
			if k.Kid == t.Header["kid"] {
				n, _ := base64.RawURLEncoding.DecodeString(k.N)
				e, _ := base64.RawURLEncoding.DecodeString(k.E)
				return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}, nil
			}
		}
		return nil, fmt.Errorf("no key %v at JWKS_URI", t.Header["kid"])
	}, jwt.WithValidMethods([]string{"RS256"}), jwt.WithAudience(cm["AUDIENCE"]), jwt.WithIssuer(cm["ISSUER"]))
	return claims, err
}

func main() {
	secret, cm := readDir("SECRET_DIR"), readDir("CONFIGMAP_DIR")
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	way := args[0]
	var cred azcore.TokenCredential
	var err error
	switch way {
	case "env-credential":
		cred, err = azidentity.NewEnvironmentCredential(&azidentity.EnvironmentCredentialOptions{DisableInstanceDiscovery: true})
	case "client-certificate":
		pem, rerr := os.ReadFile(filepath.Join(os.Getenv("SECRET_DIR"), "client-certificate.pem"))
		if rerr != nil {
			err = rerr
			break
		}
		certs, key, perr := azidentity.ParseCertificates(pem, nil)
		if perr != nil {
			err = perr
			break
		}
		cred, err = azidentity.NewClientCertificateCredential(secret["AZURE_TENANT_ID"], secret["AZURE_CLIENT_ID"], certs, key,
			&azidentity.ClientCertificateCredentialOptions{DisableInstanceDiscovery: true})
	case "workload-identity":
		cred, err = azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{DisableInstanceDiscovery: true})
	default:
		err = fmt.Errorf("unknown way %q", way)
	}
	if err != nil {
		emit(map[string]any{"ok": false, "error": map[string]any{"type": "construct", "message": err.Error()}})
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{secret["FHIR_SCOPE"]}})
	if err != nil {
		emit(map[string]any{"ok": false, "error": map[string]any{"type": "GetToken", "message": err.Error()}})
		return
	}
	claims, err := verifiedClaims(tok.Token, cm)
	if err != nil {
		emit(map[string]any{"ok": false, "error": map[string]any{"type": "verify", "message": err.Error()}})
		return
	}
	emit(map[string]any{"ok": true, "library": "azidentity", "claims": claims})
}
