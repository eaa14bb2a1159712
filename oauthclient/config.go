package oauthclient

import (
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"reflect"
	"time"

	"golang.org/x/oauth2"

	"github.com/oauthkit/oauthkit/tokencache"
)

// Config configures a TokenSource. The zero value of every optional field
// is a sensible default.
type Config struct {
	// TokenURL is the token endpoint. It must be https, or http to a
	// loopback address. Required.
	TokenURL string
	// ClientID is the OAuth client identifier. Required.
	ClientID string
	// Auth authenticates the client: ClientSecretBasic, ClientSecretPost,
	// PrivateKeyJWT, TLSClientAuth, SelfSignedTLSClientAuth or
	// NoClientAuth. Optional; default NoClientAuth.
	Auth ClientAuth
	// Grant obtains tokens: ClientCredentials, JWTBearer, RefreshToken,
	// TokenExchange or Password. Optional; default ClientCredentials.
	Grant Grant
	// Scopes requested, sent space-separated. Optional.
	Scopes []string
	// EndpointParams are extra form members sent with every token request
	// (audience, resource, …). Optional. They must not carry credentials.
	EndpointParams url.Values
	// Cache is the persistent tier (file, OS keychain, Redis) behind the
	// in-memory token. If it also implements tokencache.Locker, token
	// requests are serialised across processes. Optional; default memory only.
	Cache tokencache.Cache
	// CacheKey overrides the cache key derived from token URL, client ID,
	// grant (with a one-way digest of the subject, actor or initial refresh
	// token that says whose token it is), scopes and endpoint parameters.
	// Required with a Cache when the grant names no user of its own
	// (RefreshToken without Token, filled by Seed after Login; TokenExchange
	// whose SubjectSource has no cache key): it must then name whose token
	// it is, so that two users never share an entry. Optional otherwise.
	CacheKey string
	// OnTokenChange is called with every newly obtained token, after it has
	// been persisted to Cache and before any caller receives it. It must not
	// block for long. Optional.
	OnTokenChange func(*oauth2.Token)
	// Logger receives debug lines (cache hits, fetches, retries) and
	// warnings. Secrets are never logged. Optional; default silent.
	Logger *slog.Logger
	// HTTPClient is used for the token endpoint. It is copied and set not to
	// follow redirects. Optional; default a client over http.DefaultTransport
	// with a 30 s timeout.
	HTTPClient *http.Client
	// Now is the clock. Optional; default time.Now.
	Now func() time.Time
	// RefreshWindow is the fraction of a token's lifetime, before it
	// expires, during which callers still get the current token while one
	// background refresh runs. Optional; default 0.25, and never more than
	// MaxRefreshWindow before expiry.
	RefreshWindow float64
	// MaxRefreshWindow caps the early-refresh window. Optional; default 5 minutes.
	MaxRefreshWindow time.Duration
	// ExpiryLeeway is how long before its expiry a token stops being used,
	// covering server clocks that count whole seconds and request transit.
	// Optional; default a tenth of the lifetime, at least 1 s, at most 10 s,
	// and never more than half the lifetime.
	ExpiryLeeway time.Duration
	// Retry controls token-endpoint retries. Optional; nil = DefaultRetryPolicy.
	Retry *RetryPolicy
	// ErrorCooldown is how long callers get the last permanent error
	// (invalid_client, invalid_grant, …) without a new token request.
	// Optional; default 5 s.
	ErrorCooldown time.Duration
	// FetchTimeout bounds a background refresh and a fetch shared by
	// several callers, cache lock wait included: at most half of it is spent
	// waiting for a lock another process holds. Optional; default 60 s.
	FetchTimeout time.Duration
	// CacheTimeout bounds one Load or Store of Cache and each round trip of
	// a lease lock (tokencache.LeaseLocker), so that a hung shared cache (a
	// Redis that stopped answering) costs a token request, not a stall.
	// Waiting for a lock that another live holder has is bounded by half of
	// FetchTimeout instead, since it may wait for that holder's token
	// request. Optional; default 5 s.
	CacheTimeout time.Duration
	// RefreshLimiter bounds background refreshes shared with other
	// sources. Optional; default DefaultRefreshLimiter (16 at once per
	// process).
	RefreshLimiter *RefreshLimiter
	// Origins binds the token to the resource servers it is for: when set,
	// the Transport of Client adds the token only to requests whose origin
	// (scheme, host and port; any path in an entry is ignored) is listed,
	// and sends every other request without it, so a URL from a response
	// (a Bulk Data file on a storage host, a Bundle link to another server)
	// never receives it. Optional; empty: any https or loopback origin, as
	// golang.org/x/oauth2 does (set it whenever the resource server is known).
	Origins []string
	// Observer receives fetch, token-request, cache, lock and 401 events
	// for metrics and traces (see package oauthclient/otelauth). Optional.
	Observer Observer
	// RevocationURL is the RFC 7009 revocation endpoint used by Revoke.
	// Optional.
	RevocationURL string
	// InsecureAllowHTTP allows plain http:// token and revocation URLs to
	// non-loopback hosts. It MUST NOT be used outside tests on isolated networks.
	InsecureAllowHTTP bool
	// DPoPKey, when set, sender-constrains tokens with DPoP (RFC 9449):
	// every token request and every request of the Transport carries a
	// fresh proof signed with it (ECDSA P-256/384/521 → ES256/384/512,
	// Ed25519 → EdDSA, RSA → PS256), with the server's last nonce; a
	// use_dpop_nonce answer is retried once with the new nonce. A server
	// that answers a DPoP request with a Bearer token issued an unbound
	// token: it is used as a bearer token (RFC 9449 §5 leaves that to the
	// client). Cache entries record the key's thumbprint: a source with
	// another key (or none) never uses a DPoP-bound access token from the
	// cache and never sends a refresh token obtained with another key
	// (ErrDPoPKeyMismatch). Without a key, a DPoP-bound token is refused
	// (ErrDPoPNotConfigured). Optional; nil: bearer tokens.
	DPoPKey crypto.Signer
}

// String describes the configuration without secrets: no credentials, and
// URLs without their query (API gateways put keys there).
func (c Config) String() string {
	return fmt.Sprintf("oauthclient.Config{TokenURL:%q ClientID:%q Auth:%T Grant:%T Scopes:%q}", redactURL(c.TokenURL), c.ClientID, c.Auth, c.Grant, c.Scopes)
}

// GoString describes the configuration without secrets.
func (c Config) GoString() string { return c.String() }

// Format prints the redacted form for every fmt verb.
func (c Config) Format(f fmt.State, _ rune) { fmt.Fprint(f, c.String()) }

// LogValue prints the redacted form in slog output.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }

// validator is implemented by grants and client authentications that can
// check their own fields; values and pointers both satisfy it.
type validator interface{ validate() error }

// validate checks c; it changes nothing (defaults are applied by
// withDefaults).
func (c *Config) validate() error {
	if c.TokenURL == "" {
		return errors.New("oauthclient: Config.TokenURL is required")
	}
	if err := checkURL(c.TokenURL, c.InsecureAllowHTTP); err != nil {
		return fieldError("Config.TokenURL", err)
	}
	if c.RevocationURL != "" {
		if err := checkURL(c.RevocationURL, c.InsecureAllowHTTP); err != nil {
			return fieldError("Config.RevocationURL", err)
		}
	}
	if c.ClientID == "" {
		return errors.New("oauthclient: Config.ClientID is required")
	}
	for _, v := range []any{c.Auth, c.Grant} {
		if v == nil {
			continue
		}
		if isNilPointer(v) {
			return fmt.Errorf("oauthclient: Config: nil %T", v)
		}
		if cv, ok := v.(validator); ok {
			if err := cv.validate(); err != nil {
				return err
			}
		}
	}
	for k := range c.EndpointParams {
		switch k {
		case "client_secret", "client_assertion", "password", "refresh_token", "assertion", "subject_token", "actor_token", "code", "code_verifier":
			return fmt.Errorf("oauthclient: Config.EndpointParams must not carry %q; use Auth or Grant", k)
		}
	}
	if _, err := parseOrigins(c.Origins); err != nil {
		return err
	}
	if c.RefreshWindow < 0 || c.RefreshWindow >= 1 {
		return errors.New("oauthclient: Config.RefreshWindow must be in [0, 1)")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"MaxRefreshWindow", c.MaxRefreshWindow}, {"ExpiryLeeway", c.ExpiryLeeway}, {"ErrorCooldown", c.ErrorCooldown}, {"FetchTimeout", c.FetchTimeout}, {"CacheTimeout", c.CacheTimeout}} {
		if d.v < 0 {
			return fmt.Errorf("oauthclient: Config.%s must not be negative", d.name)
		}
	}
	if c.Cache != nil && c.CacheKey == "" {
		if g, ok := c.Grant.(keyedGrant); ok && !g.identityKnown() {
			return fmt.Errorf("oauthclient: Config.CacheKey is required with a Cache for %T without a token of its own: it must name whose token it is (for example the user's ID), so that two users never share an entry", c.Grant)
		}
	}
	return nil
}

// withDefaults returns c with every unset optional field at its default:
// the one place defaults are chosen.
func (c Config) withDefaults() Config {
	if c.Auth == nil {
		c.Auth = NoClientAuth{}
	}
	if c.Grant == nil {
		c.Grant = ClientCredentials{}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.RefreshWindow == 0 {
		c.RefreshWindow = 0.25
	}
	if c.MaxRefreshWindow == 0 {
		c.MaxRefreshWindow = 5 * time.Minute
	}
	if c.ErrorCooldown == 0 {
		c.ErrorCooldown = 5 * time.Second
	}
	if c.FetchTimeout == 0 {
		c.FetchTimeout = 60 * time.Second
	}
	if c.CacheTimeout == 0 {
		c.CacheTimeout = 5 * time.Second
	}
	if c.Retry != nil {
		p := c.Retry.withDefaults()
		c.Retry = &p
	} else {
		p := DefaultRetryPolicy
		c.Retry = &p
	}
	return c
}

// isNilPointer reports whether v is a typed nil pointer.
func isNilPointer(v any) bool {
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}

// tokenHTTPClient copies c (or builds a default with a 30 s timeout) for
// token-endpoint requests authenticated by auth: it presents the client
// certificate of TLSClientAuth and SelfSignedTLSClientAuth, and follows no
// redirect. The one place a token, login or device-login client is made.
func tokenHTTPClient(c *http.Client, auth ClientAuth) *http.Client {
	var hc http.Client
	if c != nil {
		hc = *c
	} else {
		hc.Timeout = 30 * time.Second
	}
	if ca, ok := auth.(certificateAuth); ok {
		hc.Transport = transportWithCertificate(hc.Transport, ca.certificate())
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &hc
}
