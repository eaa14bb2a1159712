package oauthclient

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/oauthkit/oauthkit/jwtassert"
	"github.com/oauthkit/oauthkit/tokencache"
)

// Grant type URNs.
const (
	GrantTypeJWTBearer     = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	GrantTypeTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	TokenTypeAccessToken   = "urn:ietf:params:oauth:token-type:access_token"
	TokenTypeRefreshToken  = "urn:ietf:params:oauth:token-type:refresh_token"
	TokenTypeIDToken       = "urn:ietf:params:oauth:token-type:id_token"
	TokenTypeJWT           = "urn:ietf:params:oauth:token-type:jwt"
)

// GrantRequest is what a Grant sees when it builds a token request.
type GrantRequest struct {
	ClientID string
	TokenURL string
	Scopes   []string
	Now      time.Time
	// Previous is the newest entry known for this source (memory or cache),
	// nil if none. The RefreshToken grant takes its refresh token from here.
	Previous *tokencache.Entry
}

// String describes r without secrets (the previous entry redacts its
// tokens; the token URL loses its query). GrantRequest has value receivers
// for its formatting methods so that a value redacts as well as a pointer.
func (r GrantRequest) String() string {
	prev := "nil"
	if r.Previous != nil {
		prev = r.Previous.String()
	}
	return fmt.Sprintf("oauthclient.GrantRequest{ClientID:%q TokenURL:%q Scopes:%q Previous:%s}", r.ClientID, redactURL(r.TokenURL), r.Scopes, prev)
}

// GoString describes r without secrets.
func (r GrantRequest) GoString() string { return r.String() }

// Format prints the redacted form for every fmt verb.
func (r GrantRequest) Format(f fmt.State, _ rune) { fmt.Fprint(f, r.String()) }

// LogValue prints the redacted form in slog output.
func (r GrantRequest) LogValue() slog.Value { return slog.StringValue(r.String()) }

// Grant is an OAuth 2.0 authorization grant: it fills in the form members
// of a token request (grant_type and the grant's own parameters). Grants
// must be safe for concurrent use. The implementations in this package are
// ClientCredentials, JWTBearer, RefreshToken, TokenExchange and Password.
type Grant interface {
	// Form returns the grant's form members for one request. It is called
	// once per attempt, so assertions are fresh on every retry.
	Form(ctx context.Context, r *GrantRequest) (url.Values, error)
	// CacheID distinguishes cache entries of different grants of the same
	// client (the grant type and, e.g., the subject). It holds no secret.
	CacheID() string
}

// keyedGrant is implemented by grants whose cache identity depends on a
// token they carry; identityKnown is false when they carry none, so that a
// shared cache needs an explicit Config.CacheKey.
type keyedGrant interface{ identityKnown() bool }

// refreshGrant is implemented by the refresh token grant (value or
// pointer): its tokens come from a refresh token that may rotate.
type refreshGrant interface{ initialRefreshToken() string }

// digest is a one-way, domain-separated digest of a credential, for cache
// identities: it says whose token an entry is without holding the secret.
func digest(secret string) string {
	sum := sha256.Sum256([]byte("oauthkit grant identity\x00" + secret))
	return hex.EncodeToString(sum[:])
}

// ClientCredentials is the client credentials grant (RFC 6749 §4.4), the
// grant of SMART Backend Services. The default Grant.
type ClientCredentials struct{}

// Form implements Grant.
func (ClientCredentials) Form(context.Context, *GrantRequest) (url.Values, error) {
	return url.Values{"grant_type": {"client_credentials"}}, nil
}

// CacheID implements Grant.
func (ClientCredentials) CacheID() string { return "client_credentials" }

// JWTBearer is the JWT bearer authorization grant (RFC 7523 §2.1): a signed
// assertion that names the subject the token is for. Client authentication
// (Config.Auth) is optional and may be combined with it.
type JWTBearer struct {
	// Signer signs the assertion. Required.
	Signer AssertionSigner
	// Subject is the sub claim: the user or service the token is for. Required.
	Subject string
	// Issuer is the iss claim. Optional; default the client ID.
	Issuer string
	// Audience is the aud claim. Optional; default the token URL.
	Audience string
	// Lifetime of the assertion. Optional; default jwtassert.DefaultLifetime.
	Lifetime time.Duration
	// Claims are extra claims. Optional.
	Claims map[string]any
}

// Form implements Grant.
func (g JWTBearer) Form(_ context.Context, r *GrantRequest) (url.Values, error) {
	if g.Signer == nil {
		return nil, errors.New("oauthclient: JWTBearer: nil Signer")
	}
	iss, aud := g.Issuer, g.Audience
	if iss == "" {
		iss = r.ClientID
	}
	if aud == "" {
		aud = r.TokenURL
	}
	jws, err := g.Signer.Sign(jwtassert.Claims{Issuer: iss, Subject: g.Subject, Audience: aud, Lifetime: g.Lifetime, Now: r.Now, Extra: g.Claims})
	if err != nil {
		return nil, fmt.Errorf("oauthclient: sign jwt-bearer assertion: %w", err)
	}
	return url.Values{"grant_type": {GrantTypeJWTBearer}, "assertion": {jws}}, nil
}

func (g JWTBearer) validate() error {
	if g.Signer == nil || g.Subject == "" {
		return errors.New("oauthclient: JWTBearer needs a Signer and a Subject")
	}
	return nil
}

// CacheID implements Grant.
func (g JWTBearer) CacheID() string { return "jwt-bearer\x00" + g.Subject }

// RefreshToken is the refresh token grant (RFC 6749 §6), rotation-safe: a
// refresh token returned by the server replaces the old one in the cache
// before the new access token is handed out; one refresh is in flight per
// cache key (and per machine or fleet with a tokencache.Locker).
type RefreshToken struct {
	// Token is the initial refresh token. Optional when the cache already
	// holds one (for example after Login); a newer one in the cache wins.
	Token string
}

// Form implements Grant.
func (g RefreshToken) Form(_ context.Context, r *GrantRequest) (url.Values, error) {
	rt := g.Token
	if r.Previous != nil && r.Previous.RefreshToken != "" {
		rt = r.Previous.RefreshToken
	}
	if rt == "" {
		return nil, ErrReauthRequired
	}
	return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, nil
}

// CacheID implements Grant: a one-way digest of the initial refresh token
// names the grant family, so per-user sources never share an entry.
func (g RefreshToken) CacheID() string {
	if g.Token == "" {
		return "refresh_token"
	}
	return "refresh_token\x00" + digest(g.Token)
}

func (g RefreshToken) identityKnown() bool         { return g.Token != "" }
func (g RefreshToken) initialRefreshToken() string { return g.Token }

// String redacts the token.
func (g RefreshToken) String() string { return "RefreshToken{Token:REDACTED}" }

// GoString redacts the token.
func (g RefreshToken) GoString() string { return g.String() }

// Format redacts the token for every fmt verb.
func (g RefreshToken) Format(f fmt.State, _ rune) { fmt.Fprint(f, g.String()) }

// LogValue redacts the token in slog output.
func (g RefreshToken) LogValue() slog.Value { return slog.StringValue(g.String()) }

// TokenExchange is the token exchange grant (RFC 8693): trade a subject
// token (for example an EHR-issued token) for a token for another audience.
type TokenExchange struct {
	// SubjectToken is the token to exchange. Required unless SubjectSource is set.
	SubjectToken string
	// SubjectSource supplies the subject token (its access token) on each
	// request. Optional; takes precedence over SubjectToken.
	SubjectSource Source
	// SubjectTokenType. Optional; default TokenTypeAccessToken.
	SubjectTokenType string
	// ActorToken and ActorTokenType (delegation). Optional.
	ActorToken     string
	ActorTokenType string
	// Audience and Resource name the target service(s). Optional.
	Audience []string
	Resource []string
	// RequestedTokenType. Optional.
	RequestedTokenType string
}

// Form implements Grant.
func (g TokenExchange) Form(ctx context.Context, _ *GrantRequest) (url.Values, error) {
	subj := g.SubjectToken
	if g.SubjectSource != nil {
		t, err := g.SubjectSource.Token(ctx)
		if err != nil {
			return nil, fmt.Errorf("oauthclient: token exchange: subject token: %w", err)
		}
		subj = t.AccessToken
	}
	if subj == "" {
		return nil, errors.New("oauthclient: token exchange: no subject token")
	}
	typ := g.SubjectTokenType
	if typ == "" {
		typ = TokenTypeAccessToken
	}
	v := url.Values{"grant_type": {GrantTypeTokenExchange}, "subject_token": {subj}, "subject_token_type": {typ}}
	if g.ActorToken != "" {
		at := g.ActorTokenType
		if at == "" {
			at = TokenTypeAccessToken
		}
		v.Set("actor_token", g.ActorToken)
		v.Set("actor_token_type", at)
	}
	for _, a := range g.Audience {
		v.Add("audience", a)
	}
	for _, r := range g.Resource {
		v.Add("resource", r)
	}
	if g.RequestedTokenType != "" {
		v.Set("requested_token_type", g.RequestedTokenType)
	}
	return v, nil
}

func (g TokenExchange) validate() error {
	if g.SubjectToken == "" && g.SubjectSource == nil {
		return errors.New("oauthclient: TokenExchange needs SubjectToken or SubjectSource")
	}
	return nil
}

// CacheID implements Grant. It names whose token the exchange yields: a
// one-way digest of the subject and actor tokens (or the subject source's
// own cache key), never the tokens themselves.
func (g TokenExchange) CacheID() string {
	subject := "subject:" + digest(g.SubjectToken)
	if g.SubjectSource != nil {
		subject = "subject-source:"
		if k, ok := g.SubjectSource.(interface{ CacheKey() string }); ok {
			subject += k.CacheKey()
		}
	}
	actor := ""
	if g.ActorToken != "" {
		actor = digest(g.ActorToken)
	}
	return strings.Join([]string{"token-exchange", subject, g.SubjectTokenType, actor, g.ActorTokenType,
		strings.Join(g.Audience, " "), strings.Join(g.Resource, " "), g.RequestedTokenType}, "\x00")
}

func (g TokenExchange) identityKnown() bool {
	if g.SubjectSource == nil {
		return true
	}
	k, ok := g.SubjectSource.(interface{ CacheKey() string })
	return ok && k.CacheKey() != ""
}

// String redacts the tokens.
func (g TokenExchange) String() string {
	return fmt.Sprintf("TokenExchange{SubjectToken:REDACTED Audience:%q Resource:%q}", g.Audience, g.Resource)
}

// GoString redacts the tokens.
func (g TokenExchange) GoString() string { return g.String() }

// Format redacts the tokens for every fmt verb.
func (g TokenExchange) Format(f fmt.State, _ rune) { fmt.Fprint(f, g.String()) }

// LogValue redacts the tokens in slog output.
func (g TokenExchange) LogValue() slog.Value { return slog.StringValue(g.String()) }

// Password is the resource owner password credentials grant (RFC 6749
// §4.3). Discouraged: it exposes the user's password to the client and is
// removed in OAuth 2.1. Use it only for legacy servers that offer nothing
// else. The password is never logged.
type Password struct {
	Username string
	Password string
}

// Form implements Grant.
func (g Password) Form(context.Context, *GrantRequest) (url.Values, error) {
	if g.Username == "" {
		return nil, errors.New("oauthclient: Password grant: empty username")
	}
	return url.Values{"grant_type": {"password"}, "username": {g.Username}, "password": {g.Password}}, nil
}

// CacheID implements Grant.
func (g Password) CacheID() string { return "password\x00" + g.Username }

// String redacts the password.
func (g Password) String() string {
	return fmt.Sprintf("Password{Username:%q Password:REDACTED}", g.Username)
}

// GoString redacts the password.
func (g Password) GoString() string { return g.String() }

// Format redacts the password for every fmt verb.
func (g Password) Format(f fmt.State, _ rune) { fmt.Fprint(f, g.String()) }

// LogValue redacts the password in slog output.
func (g Password) LogValue() slog.Value { return slog.StringValue(g.String()) }
