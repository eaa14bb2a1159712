package oauthclient

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
)

// TLSClientAuth authenticates the client with a certificate issued by a CA
// the authorization server trusts (RFC 8705 §2.1, tls_client_auth): the
// token requests send client_id and no secret, over connections that
// present Certificate. The token source's HTTP client, and the client of
// TokenSource.Client, present it, so certificate-bound access tokens (RFC
// 8705 §3) work at resource servers. Use the mtls_endpoint_aliases token
// endpoint when the server publishes one (RFC 8705 §5).
//
// The certificate is presented only when the HTTP client's Transport is an
// *http.Transport (or nil); a custom RoundTripper must present it itself.
// The client of TokenSource.Client presents it to every server that asks
// for one (it names the client, but is no secret): restrict the token with
// Config.Origins as usual.
type TLSClientAuth struct {
	// Certificate is the client certificate with its private key (for
	// example from tls.LoadX509KeyPair). Required.
	Certificate tls.Certificate
}

// SelfSignedTLSClientAuth authenticates the client with a self-signed
// certificate registered with the authorization server (RFC 8705 §2.2,
// self_signed_tls_client_auth). It works as TLSClientAuth does.
type SelfSignedTLSClientAuth struct {
	// Certificate is the self-signed client certificate with its private
	// key. Required.
	Certificate tls.Certificate
}

// certificateAuth is implemented by the client authentications that
// present a TLS client certificate.
type certificateAuth interface {
	certificate() tls.Certificate
}

func (a TLSClientAuth) certificate() tls.Certificate           { return a.Certificate }
func (a SelfSignedTLSClientAuth) certificate() tls.Certificate { return a.Certificate }

// Apply implements ClientAuth: it sends client_id; the certificate is
// presented by the connection.
func (a TLSClientAuth) Apply(r *AuthRequest) error { return applyCertificate(r, a.Certificate) }

// Apply implements ClientAuth: it sends client_id; the certificate is
// presented by the connection.
func (a SelfSignedTLSClientAuth) Apply(r *AuthRequest) error {
	return applyCertificate(r, a.Certificate)
}

func applyCertificate(r *AuthRequest, cert tls.Certificate) error {
	if err := checkCertificate(cert); err != nil {
		return err
	}
	r.Form.Set("client_id", r.ClientID)
	return nil
}

func (a TLSClientAuth) validate() error { return checkCertificate(a.Certificate) }

func (a SelfSignedTLSClientAuth) validate() error { return checkCertificate(a.Certificate) }

func checkCertificate(cert tls.Certificate) error {
	if len(cert.Certificate) == 0 || cert.PrivateKey == nil {
		return errors.New("oauthclient: TLS client authentication: Certificate needs a certificate and its private key")
	}
	return nil
}

// String describes the authentication without the private key.
func (a TLSClientAuth) String() string { return describeCertificate("TLSClientAuth", a.Certificate) }

// GoString describes the authentication without the private key.
func (a TLSClientAuth) GoString() string { return a.String() }

// Format prints the redacted form for every fmt verb.
func (a TLSClientAuth) Format(f fmt.State, _ rune) { fmt.Fprint(f, a.String()) }

// LogValue prints the redacted form in slog output.
func (a TLSClientAuth) LogValue() slog.Value { return slog.StringValue(a.String()) }

// String describes the authentication without the private key.
func (a SelfSignedTLSClientAuth) String() string {
	return describeCertificate("SelfSignedTLSClientAuth", a.Certificate)
}

// GoString describes the authentication without the private key.
func (a SelfSignedTLSClientAuth) GoString() string { return a.String() }

// Format prints the redacted form for every fmt verb.
func (a SelfSignedTLSClientAuth) Format(f fmt.State, _ rune) { fmt.Fprint(f, a.String()) }

// LogValue prints the redacted form in slog output.
func (a SelfSignedTLSClientAuth) LogValue() slog.Value { return slog.StringValue(a.String()) }

func describeCertificate(name string, cert tls.Certificate) string {
	subject := "none"
	if cert.Leaf != nil {
		subject = cert.Leaf.Subject.String()
	} else if len(cert.Certificate) > 0 {
		subject = "unparsed"
	}
	return fmt.Sprintf("oauthclient.%s{Certificate:{Subject:%q PrivateKey:REDACTED}}", name, subject)
}

// transportWithCertificate returns a clone of rt (nil: http.DefaultTransport)
// that presents cert, or rt itself when it is not an *http.Transport.
func transportWithCertificate(rt http.RoundTripper, cert tls.Certificate) http.RoundTripper {
	if rt == nil {
		rt = http.DefaultTransport
	}
	t, ok := rt.(*http.Transport)
	if !ok {
		return rt
	}
	t = t.Clone()
	if t.TLSClientConfig == nil {
		t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	// Always present it: Go would otherwise send no certificate when it
	// does not chain to a CA the server names, which a self-signed one
	// (RFC 8705 §2.2) never does.
	t.TLSClientConfig.Certificates = nil
	t.TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	return t
}

// certificateOf returns the client certificate a source's client
// authentication presents, if any.
func certificateOf(src Source) (tls.Certificate, bool) {
	s, ok := src.(*TokenSource)
	if !ok {
		return tls.Certificate{}, false
	}
	ca, ok := s.cfg.Auth.(certificateAuth)
	if !ok {
		return tls.Certificate{}, false
	}
	return ca.certificate(), true
}
