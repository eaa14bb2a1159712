package oauthtest

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/oauthkit/oauthkit/jwtassert"
)

// Client is a client registration. See [Server.RegisterClient].
type Client struct {
	// ID is the client_id. Required.
	ID string
	// Secret is the shared secret for client_secret_basic and
	// client_secret_post. Required for those methods.
	Secret string
	// JWKS is the client's public JWK Set (JSON). It verifies client
	// assertions (private_key_jwt) and the assertions of the jwt-bearer
	// grant issued by this client. Every key needs a "kid". Required for
	// private_key_jwt; optional otherwise.
	JWKS []byte
	// AuthMethod is the one client authentication method the client must
	// use: AuthClientSecretBasic, AuthClientSecretPost, AuthPrivateKeyJWT,
	// AuthTLSClientAuth, AuthSelfSignedTLSClientAuth or AuthNone (a public
	// client). Required.
	AuthMethod string
	// Scopes are the scopes the client may request. Empty means any scope.
	// Optional.
	Scopes []string
	// GrantTypes are the grant types the client may use (full URNs for
	// jwt-bearer and token exchange). Empty means all. Optional.
	GrantTypes []string
	// RedirectURIs are the redirect URIs allowed at /authorize. A loopback
	// URI (http://127.0.0.1, http://[::1], http://localhost) matches any
	// port (RFC 8252 §7.3). Optional.
	RedirectURIs []string
	// TLSClientAuthSubjectDN is the subject of the client's certificate,
	// as crypto/x509.Name.String prints it, for AuthTLSClientAuth
	// (RFC 8705 §2.1.2). Required for that method.
	TLSClientAuthSubjectDN string
	// CertificateThumbprints are the x5t#S256 values (see
	// CertificateThumbprint) of the self-signed certificates registered for
	// AuthSelfSignedTLSClientAuth (RFC 8705 §2.2). Required for that method.
	CertificateThumbprints []string
}

// String describes c without its secret. Client has value receivers for
// its formatting methods so that a value redacts as well as a pointer.
func (c Client) String() string {
	return fmt.Sprintf("oauthtest.Client{ID:%q Secret:%s AuthMethod:%q Scopes:%q GrantTypes:%q RedirectURIs:%q}",
		c.ID, redactedString(c.Secret), c.AuthMethod, c.Scopes, c.GrantTypes, c.RedirectURIs)
}

// GoString describes c without its secret.
func (c Client) GoString() string { return c.String() }

// Format prints the redacted form for every fmt verb.
func (c Client) Format(f fmt.State, _ rune) { fmt.Fprint(f, c.String()) }

// LogValue prints the redacted form in slog output.
func (c Client) LogValue() slog.Value { return slog.StringValue(c.String()) }

// redactedString stands for a secret in printed output.
func redactedString(s string) string {
	if s == "" {
		return `""`
	}
	return "REDACTED"
}

// registeredClient is a validated, immutable copy of a Client.
type registeredClient struct {
	Client
	jwks jose.JSONWebKeySet
}

// Response is a canned answer for [Server.InjectTokenResponses].
type Response struct {
	// Status is the HTTP status code; 0 means 200.
	Status int
	// Header is copied into the response. Without a Content-Type entry the
	// answer is sent as application/json; to send no Content-Type at all,
	// put the key with a nil value.
	Header http.Header
	// Body is the response body, sent as is.
	Body string
	// Delay is waited before answering (or until the request's context ends).
	Delay time.Duration
}

// String describes r without its body or header values, which may hold
// tokens. Response has value receivers for its formatting methods so that
// a value redacts as well as a pointer.
func (r Response) String() string {
	names := make([]string, 0, len(r.Header))
	for k := range r.Header {
		names = append(names, k)
	}
	slices.Sort(names)
	return fmt.Sprintf("oauthtest.Response{Status:%d Header:%q Body:(%d bytes) Delay:%v}", r.Status, names, len(r.Body), r.Delay)
}

// GoString describes r without its body or header values.
func (r Response) GoString() string { return r.String() }

// Format prints the redacted form for every fmt verb.
func (r Response) Format(f fmt.State, _ rune) { fmt.Fprint(f, r.String()) }

// LogValue prints the redacted form in slog output.
func (r Response) LogValue() slog.Value { return slog.StringValue(r.String()) }

// Stats counts what the server has seen. See [Server.Stats].
type Stats struct {
	TokenRequests        int            // every request to /token, injected ones included
	TokenErrors          int            // /token answers with a status ≥ 400
	ResourceRequests     int            // requests to the protected /fhir/Patient endpoints
	ResourceRejected     int            // of those, answered 400, 401 or 403
	RefreshReuseDetected int            // consumed refresh tokens presented again (outside the reuse grace period)
	RefreshGraceReuses   int            // consumed refresh tokens presented again within the reuse grace period
	Revocations          int            // successful requests to /revoke
	ByGrant              map[string]int // token requests by grant_type parameter
}

// TokenRequest describes one request to /token. It never holds a secret,
// an assertion or a token: only the names of the form parameters.
type TokenRequest struct {
	Time       time.Time // by the server's clock (see SetNow)
	GrantType  string    // the grant_type parameter
	ClientID   string    // as claimed by the request (not necessarily authenticated)
	AuthMethod string    // method(s) detected, joined by "+"; "" if the request named no client
	FormKeys   []string  // sorted names of the form parameters
	Injected   bool      // answered by InjectTokenResponses
	Status     int       // HTTP status of the answer; 0 if the client went away first
	Error      string    // OAuth error code of the answer, if any
}

func validateClient(c Client) (*registeredClient, error) {
	if c.ID == "" {
		return nil, errors.New("oauthtest: client ID is required")
	}
	switch c.AuthMethod {
	case AuthClientSecretBasic, AuthClientSecretPost:
		if c.Secret == "" {
			return nil, fmt.Errorf("oauthtest: client %q: %s needs a Secret", c.ID, c.AuthMethod)
		}
	case AuthPrivateKeyJWT:
		if len(c.JWKS) == 0 {
			return nil, fmt.Errorf("oauthtest: client %q: private_key_jwt needs a JWKS", c.ID)
		}
	case AuthNone:
		if c.Secret != "" {
			return nil, fmt.Errorf("oauthtest: client %q: a public client has no Secret", c.ID)
		}
	case AuthTLSClientAuth, AuthSelfSignedTLSClientAuth:
		if err := validateCertClient(c); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("oauthtest: client %q: unknown AuthMethod %q", c.ID, c.AuthMethod)
	}
	rc := &registeredClient{Client: c}
	rc.Scopes = append([]string(nil), c.Scopes...)
	rc.GrantTypes = append([]string(nil), c.GrantTypes...)
	rc.RedirectURIs = append([]string(nil), c.RedirectURIs...)
	rc.JWKS = append([]byte(nil), c.JWKS...)
	for _, sc := range rc.Scopes {
		if !validScopeToken(sc) {
			return nil, fmt.Errorf("oauthtest: client %q: invalid scope %q", c.ID, sc)
		}
	}
	for _, g := range rc.GrantTypes {
		if !slices.Contains(allGrantTypes, g) {
			return nil, fmt.Errorf("oauthtest: client %q: unknown grant type %q", c.ID, g)
		}
	}
	for _, u := range rc.RedirectURIs {
		pu, err := url.Parse(u)
		if err != nil || !pu.IsAbs() || pu.Fragment != "" || pu.Host == "" {
			return nil, fmt.Errorf("oauthtest: client %q: redirect URI %q must be absolute, without fragment", c.ID, u)
		}
	}
	if len(c.JWKS) > 0 {
		if err := json.Unmarshal(c.JWKS, &rc.jwks); err != nil {
			return nil, fmt.Errorf("oauthtest: client %q: parse JWKS: %w", c.ID, err)
		}
		if len(rc.jwks.Keys) == 0 {
			return nil, fmt.Errorf("oauthtest: client %q: JWKS has no keys", c.ID)
		}
		for i, k := range rc.jwks.Keys {
			if err := checkPublicJWK(k); err != nil {
				return nil, fmt.Errorf("oauthtest: client %q: JWKS key %d: %w", c.ID, i, err)
			}
		}
	}
	return rc, nil
}

func checkPublicJWK(k jose.JSONWebKey) error {
	if k.KeyID == "" {
		return errors.New("missing kid")
	}
	if !k.Valid() {
		return errors.New("invalid key")
	}
	if k.Use != "" && k.Use != "sig" {
		return fmt.Errorf("use %q is not sig", k.Use)
	}
	if k.Algorithm != "" && !slices.Contains(asymmetricAlgNames(), k.Algorithm) {
		return fmt.Errorf("alg %q is not an asymmetric signing algorithm", k.Algorithm)
	}
	switch key := k.Key.(type) {
	case *rsa.PublicKey:
		if key.N.BitLen() < jwtassert.MinRSABits {
			return fmt.Errorf("RSA key shorter than %d bits", jwtassert.MinRSABits)
		}
	case *ecdsa.PublicKey, ed25519.PublicKey:
	default:
		return errors.New("not an RSA, EC or Ed25519 public key")
	}
	return nil
}
