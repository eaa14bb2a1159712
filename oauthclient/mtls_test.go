package oauthclient

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/oauthkit/oauthkit/oauthtest"
)

// testCert makes a client certificate for cn signed by parent (nil:
// self-signed); isCA makes a CA.
func testCert(t *testing.T, cn string, parent *tls.Certificate, isCA bool) tls.Certificate {
	t.Helper()
	c, err := oauthtest.NewClientCertificate(cn, parent, isCA)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestMTLSClientAuthAndBoundTokens: tls_client_auth and
// self_signed_tls_client_auth authenticate with the certificate alone, and
// the certificate-bound token works through ts.Client, which presents the
// same certificate; without it the resource refuses the token.
func TestMTLSClientAuthAndBoundTokens(t *testing.T) {
	srv := oauthtest.NewMTLSServer()
	defer srv.Close()
	ca := testCert(t, "test CA", nil, true)
	pool := x509.NewCertPool()
	pool.AddCert(ca.Leaf)
	srv.SetClientCAs(pool)
	issued := testCert(t, "mtls-client", &ca, false)
	self := testCert(t, "self-signed-client", nil, false)
	register(t, srv, oauthtest.Client{ID: "ca-client", AuthMethod: oauthtest.AuthTLSClientAuth, TLSClientAuthSubjectDN: issued.Leaf.Subject.String()})
	register(t, srv, oauthtest.Client{ID: "self-client", AuthMethod: oauthtest.AuthSelfSignedTLSClientAuth, CertificateThumbprints: []string{oauthtest.CertificateThumbprint(self.Leaf)}})

	for _, tc := range []struct {
		name string
		id   string
		auth ClientAuth
	}{
		{"tls_client_auth", "ca-client", TLSClientAuth{Certificate: issued}},
		{"self_signed_tls_client_auth", "self-client", SelfSignedTLSClientAuth{Certificate: self}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTS(t, Config{TokenURL: srv.TokenURL(), RevocationURL: srv.RevocationURL(), ClientID: tc.id, Auth: tc.auth, HTTPClient: srv.HTTPClient(), Scopes: []string{"system/Patient.rs"}})
			tok, err := ts.Token(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			resp, err := ts.Client(srv.HTTPClient()).Get(srv.FHIRBase() + "/Patient")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("with the certificate: status %d", resp.StatusCode)
			}
			req, _ := http.NewRequest("GET", srv.FHIRBase()+"/Patient", nil)
			req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
			resp, err = srv.HTTPClient().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 401 {
				t.Fatalf("without the certificate: status %d, want 401", resp.StatusCode)
			}
			// Revocation authenticates with the certificate too.
			before := srv.Stats().Revocations
			if err := ts.Revoke(context.Background()); err != nil {
				t.Fatalf("Revoke: %v", err)
			}
			if got := srv.Stats().Revocations - before; got != 1 {
				t.Fatalf("the server counted %d revocations for this Revoke, want 1", got)
			}
		})
	}

	// Another certificate does not authenticate the client.
	ts := newTS(t, Config{TokenURL: srv.TokenURL(), ClientID: "self-client", Auth: SelfSignedTLSClientAuth{Certificate: testCert(t, "other", nil, false)}, HTTPClient: srv.HTTPClient()})
	var te *TokenError
	if _, err := ts.Token(context.Background()); !errors.As(err, &te) || te.ErrorCode != "invalid_client" {
		t.Fatalf("unregistered certificate: got %v", err)
	}
}

// TestMTLSConfigValidation: a certificate without its key is refused.
func TestMTLSConfigValidation(t *testing.T) {
	for _, auth := range []ClientAuth{TLSClientAuth{}, SelfSignedTLSClientAuth{Certificate: tls.Certificate{Certificate: [][]byte{{1}}}}} {
		if _, err := NewTokenSource(Config{TokenURL: "https://as.example/token", ClientID: "c", Auth: auth}); err == nil || !strings.HasPrefix(err.Error(), "oauthclient: ") {
			t.Errorf("%T: got %v", auth, err)
		}
	}
}

// TestMTLSAuthRedacted: printing the authentication never shows the key.
func TestMTLSAuthRedacted(t *testing.T) {
	cert := testCert(t, "printed", nil, false)
	d := cert.PrivateKey.(*ecdsa.PrivateKey).D.String()
	var log strings.Builder
	l := slog.New(slog.NewTextHandler(&log, nil))
	for _, a := range []any{TLSClientAuth{Certificate: cert}, &SelfSignedTLSClientAuth{Certificate: cert}} {
		out := fmt.Sprintf("%v %+v %#v %s", a, a, a, a)
		l.Info("auth", "a", a)
		if strings.Contains(out, d) || strings.Contains(log.String(), d) || !strings.Contains(out, "REDACTED") {
			t.Fatalf("%T printed its private key or no redaction marker", a)
		}
	}
}

// Device login presents the client certificate, as the token source and
// Login do.
func TestDeviceLoginPresentsCertificate(t *testing.T) {
	cert := testCert(t, "device-client", nil, false)
	var certs atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		certs.Add(int64(len(r.TLS.PeerCertificates)))
		writeError(w, http.StatusBadRequest, "invalid_client")
	}))
	srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	srv.StartTLS()
	defer srv.Close()
	_, err := DeviceLogin(context.Background(), DeviceLoginConfig{
		DeviceAuthURL: srv.URL + "/device", TokenURL: srv.URL + "/token", ClientID: "device-client",
		Auth: TLSClientAuth{Certificate: cert}, HTTPClient: srv.Client(),
	})
	if err == nil {
		t.Fatal("DeviceLogin succeeded against a server that refuses it")
	}
	if certs.Load() == 0 {
		t.Fatal("the device authorization request carried no client certificate")
	}
}
