package oauthtest

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
)

// Mutual TLS (RFC 8705). A server started by NewMTLSServer asks every
// client for a certificate (without requiring one). A token request made
// over a connection with a client certificate gets an access token bound
// to it (cnf "x5t#S256"), which the resource then accepts only over a
// connection presenting the same certificate.

// NewMTLSServer starts a Server over HTTPS on 127.0.0.1 that requests a
// client certificate on every connection; [Server.HTTPClient] trusts its
// certificate. Close it when done.
func NewMTLSServer() *Server {
	s := newState()
	s.ts = httptest.NewUnstartedServer(s.routes())
	s.URL = "https://" + s.ts.Listener.Addr().String()
	s.ts.TLS = &tls.Config{ClientAuth: tls.RequestClientCert, MinVersion: tls.VersionTLS12}
	s.ts.TLS.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		// Name the CAs of SetClientCAs in the certificate request, as
		// servers do; certificates are still checked by the server itself.
		s.mu.Lock()
		pool := s.clientCAs
		s.mu.Unlock()
		if pool == nil {
			return nil, nil
		}
		c := s.ts.TLS.Clone()
		c.GetConfigForClient, c.ClientCAs = nil, pool
		return c, nil
	}
	s.ts.StartTLS()
	return s
}

// CertificateThumbprint is the RFC 8705 §3.1 x5t#S256 value of a
// certificate: base64url SHA-256 of its DER encoding.
func CertificateThumbprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// peerThumbprint is the x5t#S256 of the client certificate of r's
// connection, "" when it presented none.
func peerThumbprint(r *http.Request) string {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return ""
	}
	return CertificateThumbprint(r.TLS.PeerCertificates[0])
}

// certBindingLocked checks that a certificate-bound access token is
// presented over a connection with its certificate. It returns the error
// code and description, "" when the request may go on. s.mu must be held.
func (s *Server) certBindingLocked(r *http.Request, a *accessToken) (code, desc string) {
	if a.x5t == "" {
		return "", ""
	}
	if subtle.ConstantTimeCompare([]byte(a.x5t), []byte(peerThumbprint(r))) != 1 {
		return "invalid_token", "the access token is bound to a client certificate this connection did not present"
	}
	return "", ""
}

// bindCertLocked binds the access token of resp to the client certificate
// of r's connection, if it presented one. s.mu must be held.
func (s *Server) bindCertLocked(r *http.Request, resp *tokenResponse) {
	if resp == nil {
		return
	}
	if x5t := peerThumbprint(r); x5t != "" {
		if a := s.access[resp.AccessToken]; a != nil {
			a.x5t = x5t
		}
	}
}

// Client authentication methods of RFC 8705 §2.
const (
	AuthTLSClientAuth           = "tls_client_auth"
	AuthSelfSignedTLSClientAuth = "self_signed_tls_client_auth"
)

func validateCertClient(c Client) error {
	switch {
	case c.Secret != "":
		return fmt.Errorf("oauthtest: client %q: %s has no Secret", c.ID, c.AuthMethod)
	case c.AuthMethod == AuthTLSClientAuth && c.TLSClientAuthSubjectDN == "":
		return fmt.Errorf("oauthtest: client %q: tls_client_auth needs TLSClientAuthSubjectDN", c.ID)
	case c.AuthMethod == AuthSelfSignedTLSClientAuth && len(c.CertificateThumbprints) == 0:
		return fmt.Errorf("oauthtest: client %q: self_signed_tls_client_auth needs CertificateThumbprints", c.ID)
	}
	return nil
}

// SetClientCAs sets the CAs whose client certificates tls_client_auth
// accepts (with the registered subject DN).
func (s *Server) SetClientCAs(pool *x509.CertPool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clientCAs = pool
}

// certClientLocked authenticates a request of a client registered for
// certificate authentication. ok is false when the request names no
// such client (the other methods then apply). s.mu must be held.
func (s *Server) certClientLocked(r *http.Request, form url.Values) (c *registeredClient, oerr *oauthError, ok bool) {
	c = s.clients[form.Get("client_id")]
	if c == nil || (c.AuthMethod != AuthTLSClientAuth && c.AuthMethod != AuthSelfSignedTLSClientAuth) {
		return nil, nil, false
	}
	if r.Header.Get("Authorization") != "" || form.Has("client_secret") || form.Has("client_assertion") {
		return nil, errRequest("more than one client authentication method used (RFC 6749 §2.3)"), true
	}
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return nil, errClient(false, "client certificate required (%s)", c.AuthMethod), true
	}
	leaf := r.TLS.PeerCertificates[0]
	if c.AuthMethod == AuthSelfSignedTLSClientAuth {
		if !slices.Contains(c.CertificateThumbprints, CertificateThumbprint(leaf)) {
			return nil, errClient(false, "unregistered client certificate"), true
		}
		return c, nil, true
	}
	if s.clientCAs == nil {
		return nil, errClient(false, "no CA is trusted for tls_client_auth"), true
	}
	inter := x509.NewCertPool()
	for _, ic := range r.TLS.PeerCertificates[1:] {
		inter.AddCert(ic)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: s.clientCAs, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, CurrentTime: s.now()}); err != nil {
		return nil, errClient(false, "client certificate not issued by a trusted CA"), true
	}
	if leaf.Subject.String() != c.TLSClientAuthSubjectDN {
		return nil, errClient(false, "client certificate subject does not match the registration"), true
	}
	return c, nil, true
}
