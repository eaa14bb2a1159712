package jwtassert

import (
	"crypto/rand"
	"encoding/base64"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
)

// DefaultLifetime is the assertion lifetime used when Claims.Lifetime is
// zero. Epic and SMART Backend Services reject assertions that live more
// than five minutes.
const DefaultLifetime = 4 * time.Minute

// jtiBytes is the number of random bytes in each "jti" (192 bits).
const jtiBytes = 24

// Claims are the claims of one client assertion (RFC 7523 §3).
type Claims struct {
	// Issuer is the "iss" claim: the client ID for client authentication.
	// Required.
	Issuer string

	// Subject is the "sub" claim: the client ID for client authentication,
	// the user or service for the JWT bearer grant. Required.
	Subject string

	// Audience is the "aud" claim, sent as a single string: the token
	// endpoint URL. Required.
	Audience string

	// Lifetime sets "exp" to "iat" plus Lifetime, rounded down to whole
	// seconds. Zero means DefaultLifetime; otherwise it must be at least one
	// second. Optional.
	Lifetime time.Duration

	// Now is the issue time ("iat"). Zero means time.Now(). Optional.
	Now time.Time

	// Extra holds additional claims. They cannot replace iss, sub, aud,
	// exp, iat or jti. Optional.
	Extra map[string]any
}

// reservedClaims are set by Sign and cannot come from Claims.Extra.
var reservedClaims = []string{"iss", "sub", "aud", "exp", "iat", "jti"}

// Sign returns a compact JWS client assertion. Its header holds "alg",
// "kid", "typ":"JWT" and, when configured, "jku"; its claims are "iss",
// "sub", "aud", "exp", "iat" and a fresh random "jti" (192 bits from
// crypto/rand, base64url) on every call, plus Claims.Extra. No "nbf" is
// sent.
//
// The returned assertion is a credential: do not log it.
func (s *Signer) Sign(c Claims) (string, error) {
	if s == nil || s.js == nil {
		return "", newError(ErrNoPrivateKey, "Sign called on a nil or zero Signer")
	}
	if s.kid == "" {
		return "", newError(ErrMissingKeyID, "Signer has no key ID; set Options.KeyID (SMART Backend Services and Epic require a \"kid\" header)")
	}
	switch {
	case c.Issuer == "":
		return "", newError(nil, "Claims.Issuer is required")
	case c.Subject == "":
		return "", newError(nil, "Claims.Subject is required")
	case c.Audience == "":
		return "", newError(nil, "Claims.Audience is required")
	case c.Lifetime < 0 || (c.Lifetime > 0 && c.Lifetime < time.Second):
		return "", newError(nil, "Claims.Lifetime must be zero (default %s) or at least one second", DefaultLifetime)
	}
	for _, name := range reservedClaims {
		if _, ok := c.Extra[name]; ok {
			return "", newError(nil, "Claims.Extra cannot set the %q claim", name)
		}
	}

	lifetime := c.Lifetime
	if lifetime == 0 {
		lifetime = DefaultLifetime
	}
	now := c.Now
	if now.IsZero() {
		now = time.Now()
	}
	jti, err := newJTI()
	if err != nil {
		return "", err
	}

	iat := now.Unix()
	claims := make(map[string]any, len(c.Extra)+len(reservedClaims))
	for k, v := range c.Extra {
		claims[k] = v
	}
	claims["iss"] = c.Issuer
	claims["sub"] = c.Subject
	claims["aud"] = c.Audience
	claims["iat"] = iat
	claims["exp"] = iat + int64(lifetime/time.Second)
	claims["jti"] = jti

	token, err := jwt.Signed(s.js).Claims(claims).Serialize()
	if err != nil {
		return "", wrapError(nil, err, "sign %s assertion", s.alg)
	}
	return token, nil
}

// newJTI returns jtiBytes random bytes, base64url-encoded without padding.
func newJTI() (string, error) {
	b := make([]byte, jtiBytes)
	if _, err := rand.Read(b); err != nil {
		return "", wrapError(nil, err, "generate jti")
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
