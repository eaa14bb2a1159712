package oauthtest_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/oauthkit/oauthkit/oauthtest"
)

// clientCert makes a client certificate for cn signed by parent (nil:
// self-signed); isCA makes a CA.
func clientCert(t *testing.T, cn string, parent *tls.Certificate, isCA bool) tls.Certificate {
	t.Helper()
	c, err := oauthtest.NewClientCertificate(cn, parent, isCA)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// mtlsClient is an HTTP client of srv that presents cert (none if nil).
func mtlsClient(srv *oauthtest.Server, cert *tls.Certificate) *http.Client {
	tr := srv.HTTPClient().Transport.(*http.Transport).Clone()
	if cert != nil {
		c := *cert
		tr.TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c, nil }
	}
	return &http.Client{Transport: tr}
}

func ccToken(t *testing.T, c *http.Client, srv *oauthtest.Server, id string) (int, map[string]any) {
	t.Helper()
	return postForm(t, c, srv.TokenURL(), url.Values{"grant_type": {"client_credentials"}, "client_id": {id}})
}

// postForm posts form to endpoint with c and returns the status and the
// decoded JSON answer.
func postForm(t *testing.T, c *http.Client, endpoint string, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := c.PostForm(endpoint, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&m)
	return resp.StatusCode, m
}

// TestMTLSClientAuthentication: tls_client_auth accepts a certificate of a
// trusted CA with the registered subject; self_signed_tls_client_auth a
// registered certificate; anything else is invalid_client.
func TestMTLSClientAuthentication(t *testing.T) {
	srv := oauthtest.NewMTLSServer()
	defer srv.Close()
	ca := clientCert(t, "CA", nil, true)
	pool := x509.NewCertPool()
	pool.AddCert(ca.Leaf)
	srv.SetClientCAs(pool)
	good := clientCert(t, "client-a", &ca, false)
	otherSubject := clientCert(t, "client-b", &ca, false)
	otherCA := clientCert(t, "other CA", nil, true)
	foreign := clientCert(t, "client-a", &otherCA, false)
	self := clientCert(t, "self", nil, false)
	for _, c := range []oauthtest.Client{
		{ID: "ca", AuthMethod: oauthtest.AuthTLSClientAuth, TLSClientAuthSubjectDN: "CN=client-a"},
		{ID: "self", AuthMethod: oauthtest.AuthSelfSignedTLSClientAuth, CertificateThumbprints: []string{oauthtest.CertificateThumbprint(self.Leaf)}},
	} {
		if err := srv.RegisterClient(c); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name   string
		id     string
		cert   *tls.Certificate
		status int
	}{
		{"CA-issued", "ca", &good, 200},
		{"other subject", "ca", &otherSubject, 401},
		{"other CA", "ca", &foreign, 401},
		{"no certificate", "ca", nil, 401},
		{"self-signed", "self", &self, 200},
		{"unregistered self-signed", "self", &good, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := ccToken(t, mtlsClient(srv, tc.cert), srv, tc.id)
			if status != tc.status || (status == 401 && body["error"] != "invalid_client") {
				t.Fatalf("status %d, error %v; want %d", status, body["error"], tc.status)
			}
		})
	}
	for _, c := range []oauthtest.Client{
		{ID: "x", AuthMethod: oauthtest.AuthTLSClientAuth},
		{ID: "y", AuthMethod: oauthtest.AuthSelfSignedTLSClientAuth},
		{ID: "z", AuthMethod: oauthtest.AuthTLSClientAuth, TLSClientAuthSubjectDN: "CN=z", Secret: "s"},
	} {
		if err := srv.RegisterClient(c); err == nil || !strings.HasPrefix(err.Error(), "oauthtest: ") {
			t.Errorf("registration %s: got %v", c.ID, err)
		}
	}
}

// selfSignedClient starts an mTLS server with client "self" registered for
// self_signed_tls_client_auth with the certificate self; other is a
// certificate of nobody's.
func selfSignedClient(t *testing.T) (srv *oauthtest.Server, self, other tls.Certificate) {
	srv = oauthtest.NewMTLSServer()
	t.Cleanup(srv.Close)
	self = clientCert(t, "self", nil, false)
	other = clientCert(t, "other", nil, false)
	if err := srv.RegisterClient(oauthtest.Client{ID: "self", AuthMethod: oauthtest.AuthSelfSignedTLSClientAuth, CertificateThumbprints: []string{oauthtest.CertificateThumbprint(self.Leaf)}}); err != nil {
		t.Fatal(err)
	}
	return srv, self, other
}

// TestMTLSBoundToken: a token issued over a connection with a client
// certificate is accepted only over a connection with that certificate.
func TestMTLSBoundToken(t *testing.T) {
	srv, self, other := selfSignedClient(t)
	_, body := ccToken(t, mtlsClient(srv, &self), srv, "self")
	tok, _ := body["access_token"].(string)
	if tok == "" {
		t.Fatal("no token")
	}
	for _, tc := range []struct {
		name   string
		cert   *tls.Certificate
		status int
	}{{"same certificate", &self, 200}, {"other certificate", &other, 401}, {"no certificate", nil, 401}} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, srv.FHIRBase()+"/Patient", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := mtlsClient(srv, tc.cert).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
		})
	}
}

// TestMTLSClientRevokesAndIntrospects: a client that authenticates with
// its certificate can revoke and introspect its tokens like any other;
// without the certificate, or with another client's, it cannot.
func TestMTLSClientRevokesAndIntrospects(t *testing.T) {
	srv, self, other := selfSignedClient(t)
	c := mtlsClient(srv, &self)
	status, m := ccToken(t, c, srv, "self")
	if status != 200 {
		t.Fatalf("token: %d", status)
	}
	tok, _ := m["access_token"].(string)
	post := func(c *http.Client, endpoint string) (int, map[string]any) {
		t.Helper()
		return postForm(t, c, endpoint, url.Values{"client_id": {"self"}, "token": {tok}})
	}
	for name, c := range map[string]*http.Client{"no certificate": mtlsClient(srv, nil), "another certificate": mtlsClient(srv, &other)} {
		if status, _ := post(c, srv.IntrospectionURL()); status != http.StatusUnauthorized {
			t.Errorf("introspect with %s: %d, want 401", name, status)
		}
		if status, _ := post(c, srv.RevocationURL()); status != http.StatusUnauthorized {
			t.Errorf("revoke with %s: %d, want 401", name, status)
		}
	}
	if status, m := post(c, srv.IntrospectionURL()); status != 200 || m["active"] != true {
		t.Fatalf("introspect: %d active=%v", status, m["active"])
	}
	if status, _ := post(c, srv.RevocationURL()); status != 200 {
		t.Fatalf("revoke: %d", status)
	}
	if status, m := post(c, srv.IntrospectionURL()); status != 200 || m["active"] != false {
		t.Fatalf("introspect after revoke: %d active=%v", status, m["active"])
	}
}

// TestMTLSClientDeviceAuthorization: a client that authenticates with its
// certificate can start the device flow; without it, it cannot.
func TestMTLSClientDeviceAuthorization(t *testing.T) {
	srv, self, _ := selfSignedClient(t)
	form := url.Values{"client_id": {"self"}}
	if status, m := postForm(t, mtlsClient(srv, &self), srv.DeviceAuthorizationURL(), form); status != http.StatusOK || m["device_code"] == nil {
		t.Fatalf("with the certificate: %d, device_code present %v", status, m["device_code"] != nil)
	}
	if status, _ := postForm(t, mtlsClient(srv, nil), srv.DeviceAuthorizationURL(), form); status != http.StatusUnauthorized {
		t.Fatalf("without the certificate: %d, want 401", status)
	}
}
