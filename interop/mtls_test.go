package interop

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/oauthkit/oauthkit/oauthclient"
)

// certPair is a test certificate with its key, as tls.Certificate and PEM.
type certPair struct {
	tls     tls.Certificate
	certPEM string
	keyPEM  string
}

// makeCert issues a certificate for cn, signed by parent (nil: self-signed).
func makeCert(t *testing.T, cn string, parent *certPair, isCA, server bool) *certPair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	if isCA {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
		tmpl.ExtKeyUsage = nil // any: it issues server and client certificates
	}
	issuer, issuerKey := tmpl, any(key)
	if parent != nil {
		issuer, issuerKey = parent.tls.Leaf, parent.tls.PrivateKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, &key.PublicKey, issuerKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return &certPair{
		tls:     tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		certPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		keyPEM:  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})),
	}
}

// TestMTLSInterop: tls_client_auth and self_signed_tls_client_auth at
// oidc-provider's token endpoint behind a node https listener that requests
// client certificates (found through mtls_endpoint_aliases), and the
// certificate-bound token used at a resource that checks the certificate
// thumbprint; the token is refused over a connection without it.
func TestMTLSInterop(t *testing.T) {
	ca := makeCert(t, "interop CA", nil, true, false)
	serverCert := makeCert(t, "127.0.0.1", ca, false, true)
	issued := makeCert(t, "mtls-client", ca, false, false)
	self := makeCert(t, "self-signed-client", nil, false, false)
	selfJWK, err := jose.JSONWebKey{Key: self.tls.Leaf.PublicKey, KeyID: "self-1", Use: "sig", Certificates: []*x509.Certificate{self.tls.Leaf}}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	none := []string{}
	p := startSenderProvider(t, senderOptions{
		AccessTokenTTL: 300,
		TLS:            map[string]string{"cert": serverCert.certPEM, "key": serverCert.keyPEM, "ca": ca.certPEM},
		Clients: []map[string]any{
			{
				"client_id": "mtls-ca", "token_endpoint_auth_method": "tls_client_auth", "tls_client_auth_subject_dn": "CN=mtls-client",
				"tls_client_certificate_bound_access_tokens": true, "grant_types": []string{"client_credentials"},
				"response_types": none, "redirect_uris": none,
			},
			{
				"client_id": "mtls-self", "token_endpoint_auth_method": "self_signed_tls_client_auth",
				"jwks": map[string]any{"keys": []json.RawMessage{selfJWK}},
				"tls_client_certificate_bound_access_tokens": true, "grant_types": []string{"client_credentials"},
				"response_types": none, "redirect_uris": none,
			},
		},
	})
	if p.MTLSBase == "" {
		t.Fatal("interop: server has no https listener")
	}
	tokenURL := mtlsTokenEndpoint(t, p)
	roots := x509.NewCertPool()
	roots.AddCert(ca.tls.Leaf)
	trusting := func() *http.Client {
		return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}}
	}
	for _, tc := range []struct {
		name string
		id   string
		auth oauthclient.ClientAuth
	}{
		{"tls_client_auth", "mtls-ca", oauthclient.TLSClientAuth{Certificate: issued.tls}},
		{"self_signed_tls_client_auth", "mtls-self", oauthclient.SelfSignedTLSClientAuth{Certificate: self.tls}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts, err := oauthclient.NewTokenSource(oauthclient.Config{
				TokenURL: tokenURL, ClientID: tc.id, Auth: tc.auth, HTTPClient: trusting(), Scopes: []string{"system/Patient.rs"},
			})
			if err != nil {
				t.Fatal(err)
			}
			tok, err := ts.Token(context.Background())
			if err != nil {
				t.Fatalf("token: %v", err)
			}
			if status, bound := getPatients(t, ts.Client(trusting()), p.MTLSBase+"/fhir"); status != 200 || bound != "x5t" {
				t.Fatalf("with the certificate: status %d, binding %q", status, bound)
			}
			// The same token over a connection without the certificate.
			req, _ := http.NewRequest(http.MethodGet, p.MTLSBase+"/fhir/Patient", nil)
			req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
			resp, err := trusting().Do(req)
			if err != nil {
				t.Fatal(withoutURL(err))
			}
			drain(resp)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("without the certificate: status %d, want 401", resp.StatusCode)
			}
		})
	}
	st := p.stats(t)
	if n := statInt(st, "resource_mtls_accepted"); n != 2 {
		t.Errorf("resource requests accepted with the bound certificate: %d, want 2", n)
	}
}

// mtlsTokenEndpoint reads the token endpoint alias for mutual TLS from the
// server's discovery document (RFC 8705 §5).
func mtlsTokenEndpoint(t *testing.T, p *senderProvider) string {
	t.Helper()
	resp, err := p.http.Get(p.Issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var meta struct {
		Aliases struct {
			TokenEndpoint string `json:"token_endpoint"`
		} `json:"mtls_endpoint_aliases"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&meta); err != nil {
		t.Fatal(err)
	}
	if meta.Aliases.TokenEndpoint != p.MTLSBase+"/token" {
		t.Fatalf("mtls_endpoint_aliases.token_endpoint %q, want the https listener's", meta.Aliases.TokenEndpoint)
	}
	return meta.Aliases.TokenEndpoint
}
