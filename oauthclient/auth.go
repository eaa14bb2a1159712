package oauthclient

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"time"

	"github.com/oauthkit/oauthkit/jwtassert"
)

// AssertionSigner signs JWT assertions. *jwtassert.Signer and
// *jwtassert.KeySet implement it.
type AssertionSigner interface {
	Sign(c jwtassert.Claims) (string, error)
}

// AuthRequest is a token-endpoint request being built, handed to a
// ClientAuth to add client authentication.
type AuthRequest struct {
	ClientID string
	TokenURL string
	Form     url.Values
	Header   http.Header
	Now      time.Time
}

// String describes r without its credentials: form values and headers are
// listed by name only. AuthRequest has value receivers for its formatting
// methods so that a value redacts as well as a pointer.
func (r AuthRequest) String() string {
	return fmt.Sprintf("oauthclient.AuthRequest{ClientID:%q TokenURL:%q Form:%v Header:%v}", r.ClientID, redactURL(r.TokenURL), names(r.Form), names(r.Header))
}

// GoString describes r without its credentials.
func (r AuthRequest) GoString() string { return r.String() }

// Format prints the redacted form for every fmt verb.
func (r AuthRequest) Format(f fmt.State, _ rune) { fmt.Fprint(f, r.String()) }

// LogValue prints the redacted form in slog output.
func (r AuthRequest) LogValue() slog.Value { return slog.StringValue(r.String()) }

// names returns the sorted keys of m.
func names[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// ClientAuth authenticates the client at the token endpoint (RFC 6749 §2.3).
// Exactly one mechanism is applied to each request.
// Implementations must be safe for concurrent use.
type ClientAuth interface {
	// Apply adds the client's credentials to r.
	Apply(r *AuthRequest) error
}

// ClientSecretBasic sends the client ID and secret in an HTTP Basic
// Authorization header, each form-encoded first (RFC 6749 §2.3.1).
type ClientSecretBasic struct {
	// Secret is the client secret. Required.
	Secret string
}

// Apply implements ClientAuth.
func (a ClientSecretBasic) Apply(r *AuthRequest) error {
	if a.Secret == "" {
		return errors.New("oauthclient: ClientSecretBasic: empty secret")
	}
	cred := url.QueryEscape(r.ClientID) + ":" + url.QueryEscape(a.Secret)
	r.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(cred)))
	r.Form.Del("client_id")
	return nil
}

func (a ClientSecretBasic) validate() error {
	if a.Secret == "" {
		return errors.New("oauthclient: ClientSecretBasic.Secret is required")
	}
	return nil
}

// String redacts the secret.
func (a ClientSecretBasic) String() string { return "ClientSecretBasic{Secret:REDACTED}" }

// GoString redacts the secret.
func (a ClientSecretBasic) GoString() string { return a.String() }

// Format redacts the secret for every fmt verb.
func (a ClientSecretBasic) Format(f fmt.State, _ rune) { fmt.Fprint(f, a.String()) }

// LogValue redacts the secret in slog output.
func (a ClientSecretBasic) LogValue() slog.Value { return slog.StringValue(a.String()) }

// ClientSecretPost sends client_id and client_secret in the form body.
type ClientSecretPost struct {
	// Secret is the client secret. Required.
	Secret string
}

// Apply implements ClientAuth.
func (a ClientSecretPost) Apply(r *AuthRequest) error {
	if a.Secret == "" {
		return errors.New("oauthclient: ClientSecretPost: empty secret")
	}
	r.Form.Set("client_id", r.ClientID)
	r.Form.Set("client_secret", a.Secret)
	return nil
}

func (a ClientSecretPost) validate() error {
	if a.Secret == "" {
		return errors.New("oauthclient: ClientSecretPost.Secret is required")
	}
	return nil
}

// String redacts the secret.
func (a ClientSecretPost) String() string { return "ClientSecretPost{Secret:REDACTED}" }

// GoString redacts the secret.
func (a ClientSecretPost) GoString() string { return a.String() }

// Format redacts the secret for every fmt verb.
func (a ClientSecretPost) Format(f fmt.State, _ rune) { fmt.Fprint(f, a.String()) }

// LogValue redacts the secret in slog output.
func (a ClientSecretPost) LogValue() slog.Value { return slog.StringValue(a.String()) }

// ClientAssertionType is the client_assertion_type of private_key_jwt.
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// PrivateKeyJWT authenticates with a signed JWT (RFC 7523 §2.2,
// OpenID Connect private_key_jwt, SMART Backend Services): iss = sub =
// client ID, aud = the token URL, a fresh jti for every request.
type PrivateKeyJWT struct {
	// Signer signs the assertion. Required.
	Signer AssertionSigner
	// Audience overrides the aud claim. Optional; default the token URL.
	Audience string
	// Lifetime of the assertion. Optional; default jwtassert.DefaultLifetime
	// (4 minutes). At most MaxAssertionLifetime unless AllowLongLifetime.
	Lifetime time.Duration
	// AllowLongLifetime allows a Lifetime over MaxAssertionLifetime, for
	// servers known to accept it. Epic and SMART Backend Services reject
	// such assertions, answering only invalid_client. Optional.
	AllowLongLifetime bool
}

// MaxAssertionLifetime is the longest client assertion lifetime
// PrivateKeyJWT accepts without AllowLongLifetime: SMART Backend Services
// (and Epic) reject assertions whose exp is more than five minutes ahead.
const MaxAssertionLifetime = 5 * time.Minute

// keyIDer is implemented by signers that know their key ID
// (*jwtassert.Signer).
type keyIDer interface{ KeyID() string }

// currentSigner is implemented by key sets (*jwtassert.KeySet).
type currentSigner interface{ Current() *jwtassert.Signer }

// Apply implements ClientAuth.
func (a PrivateKeyJWT) Apply(r *AuthRequest) error {
	if a.Signer == nil {
		return errors.New("oauthclient: PrivateKeyJWT: nil Signer")
	}
	if err := a.checkLifetime(); err != nil {
		return err
	}
	aud := a.Audience
	if aud == "" {
		aud = r.TokenURL
	}
	jws, err := a.Signer.Sign(jwtassert.Claims{Issuer: r.ClientID, Subject: r.ClientID, Audience: aud, Lifetime: a.Lifetime, Now: r.Now})
	if err != nil {
		return fmt.Errorf("oauthclient: sign client assertion: %w", err)
	}
	r.Form.Set("client_id", r.ClientID)
	r.Form.Set("client_assertion_type", ClientAssertionType)
	r.Form.Set("client_assertion", jws)
	return nil
}

// validate checks the signer and lifetime when the TokenSource is built, so
// that a missing key ID or a lifetime the server would reject fails at once
// rather than at the first token request.
func (a PrivateKeyJWT) validate() error {
	if a.Signer == nil || isNilPointer(a.Signer) {
		return errors.New("oauthclient: PrivateKeyJWT.Signer is required")
	}
	if err := a.checkLifetime(); err != nil {
		return err
	}
	kid, known := "", false
	switch s := a.Signer.(type) {
	case currentSigner:
		if cur := s.Current(); cur != nil {
			kid = cur.KeyID()
		}
		known = true
	case keyIDer:
		kid, known = s.KeyID(), true
	}
	if known && kid == "" {
		return fmt.Errorf("oauthclient: PrivateKeyJWT.Signer has no key ID; servers pick the verification key by kid: %w", jwtassert.ErrMissingKeyID)
	}
	return nil
}

// checkLifetime refuses a lifetime over MaxAssertionLifetime unless
// AllowLongLifetime is set.
func (a PrivateKeyJWT) checkLifetime() error {
	if a.Lifetime > MaxAssertionLifetime && !a.AllowLongLifetime {
		return fmt.Errorf("oauthclient: PrivateKeyJWT.Lifetime %s is over %s, which SMART Backend Services and Epic reject (set AllowLongLifetime to send it anyway)", a.Lifetime, MaxAssertionLifetime)
	}
	return nil
}

// NoClientAuth sends only client_id (public clients, RFC 6749 §2.1), or
// nothing when the client ID is empty.
type NoClientAuth struct{}

// Apply implements ClientAuth.
func (NoClientAuth) Apply(r *AuthRequest) error {
	if r.ClientID != "" {
		r.Form.Set("client_id", r.ClientID)
	}
	return nil
}
