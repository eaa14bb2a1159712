package oauthtest

import (
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// ClientAssertionType is the client_assertion_type of private_key_jwt (RFC 7523 §2.2).
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

const (
	// maxAssertionLifetime is how far in the future an assertion's exp may be.
	maxAssertionLifetime = 5 * time.Minute
	// clockSkew is the tolerance for iat and nbf in the future.
	clockSkew = 30 * time.Second
)

// asymmetricAlgs are the JWS algorithms accepted in assertions.
var asymmetricAlgs = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512,
	jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512,
	jose.EdDSA,
}

func asymmetricAlgNames() []string {
	out := make([]string, len(asymmetricAlgs))
	for i, a := range asymmetricAlgs {
		out[i] = string(a)
	}
	return out
}

// basicCredentials parses an Authorization: Basic header. present reports
// whether the request used the Basic scheme at all.
func basicCredentials(r *http.Request) (id, secret string, present bool, err *oauthError) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", "", false, nil
	}
	scheme, payload, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Basic") {
		return "", "", false, nil
	}
	raw, derr := base64.StdEncoding.DecodeString(strings.TrimSpace(payload))
	if derr != nil {
		return "", "", true, errClient(true, "malformed Basic credentials")
	}
	u, p, ok := strings.Cut(string(raw), ":")
	if !ok {
		return "", "", true, errClient(true, "malformed Basic credentials")
	}
	// RFC 6749 §2.3.1: both are application/x-www-form-urlencoded first.
	id, e1 := url.QueryUnescape(u)
	secret, e2 := url.QueryUnescape(p)
	if e1 != nil || e2 != nil || id == "" {
		return "", "", true, errClient(true, "malformed Basic credentials (RFC 6749 §2.3.1 form-encoding)")
	}
	return id, secret, true, nil
}

// detectAuthMethods names the client authentication mechanisms present in
// a request, for the log.
func detectAuthMethods(r *http.Request, form url.Values) []string {
	var m []string
	if _, _, present, _ := basicCredentials(r); present {
		m = append(m, AuthClientSecretBasic)
	}
	if form.Has("client_secret") {
		m = append(m, AuthClientSecretPost)
	}
	if form.Has("client_assertion") || form.Has("client_assertion_type") {
		m = append(m, AuthPrivateKeyJWT)
	}
	if len(m) == 0 && form.Has("client_id") {
		m = append(m, AuthNone)
	}
	return m
}

// claimedClientID returns the client the request claims to be, unverified,
// for the log.
func claimedClientID(r *http.Request, form url.Values) string {
	if id, _, present, err := basicCredentials(r); present && err == nil {
		return id
	}
	if id := form.Get("client_id"); id != "" {
		return id
	}
	if a := form.Get("client_assertion"); a != "" {
		if tok, err := jwt.ParseSigned(a, asymmetricAlgs); err == nil {
			var c jwt.Claims
			if tok.UnsafeClaimsWithoutVerification(&c) == nil {
				return c.Issuer
			}
		}
	}
	return ""
}

// authenticateClientLocked authenticates the client of a /token, /revoke,
// /introspect or /device_authorization request, by its certificate if it
// is registered for that. It returns a nil client and no error if the
// request names no client at all. audiences are the accepted assertion
// audiences. s.mu must be held.
func (s *Server) authenticateClientLocked(r *http.Request, form url.Values, audiences []string) (*registeredClient, *oauthError) {
	if c, oerr, cert := s.certClientLocked(r, form); cert {
		return c, oerr
	}
	basicID, basicSecret, hasBasic, basicErr := basicCredentials(r)
	if !hasBasic && r.Header.Get("Authorization") != "" {
		return nil, errClient(false, "unsupported Authorization scheme for client authentication")
	}
	hasPost := form.Has("client_secret")
	hasJWT := form.Has("client_assertion") || form.Has("client_assertion_type")
	n := 0
	for _, b := range []bool{hasBasic, hasPost, hasJWT} {
		if b {
			n++
		}
	}
	if n > 1 {
		return nil, errRequest("more than one client authentication method used (RFC 6749 §2.3)")
	}
	formID, hasFormID := form.Get("client_id"), form.Has("client_id")
	if hasFormID && formID == "" {
		return nil, errRequest("empty client_id")
	}

	switch {
	case hasBasic:
		if basicErr != nil {
			return nil, basicErr
		}
		if hasFormID && formID != basicID {
			return nil, errRequest("client_id does not match the Basic credentials")
		}
		return s.checkSecretLocked(basicID, basicSecret, AuthClientSecretBasic)
	case hasPost:
		if !hasFormID {
			return nil, errRequest("client_secret without client_id")
		}
		return s.checkSecretLocked(formID, form.Get("client_secret"), AuthClientSecretPost)
	case hasJWT:
		return s.checkClientAssertionLocked(form, formID, hasFormID, audiences)
	case hasFormID:
		c := s.clients[formID]
		if c == nil {
			return nil, errClient(false, "unknown client")
		}
		if c.AuthMethod != AuthNone {
			return nil, errClient(false, "client authentication required: client is registered for %s", c.AuthMethod)
		}
		return c, nil
	}
	return nil, nil
}

func (s *Server) checkSecretLocked(id, secret, method string) (*registeredClient, *oauthError) {
	basic := method == AuthClientSecretBasic
	c := s.clients[id]
	if c == nil {
		return nil, errClient(basic, "unknown client")
	}
	if c.AuthMethod != method {
		return nil, errClient(basic, "client is registered for %s, not %s", c.AuthMethod, method)
	}
	if subtle.ConstantTimeCompare([]byte(secret), []byte(c.Secret)) != 1 {
		return nil, errClient(basic, "wrong client secret")
	}
	return c, nil
}

func (s *Server) checkClientAssertionLocked(form url.Values, formID string, hasFormID bool, audiences []string) (*registeredClient, *oauthError) {
	if !form.Has("client_assertion") || !form.Has("client_assertion_type") {
		return nil, errRequest("client_assertion and client_assertion_type go together")
	}
	if form.Get("client_assertion_type") != ClientAssertionType {
		return nil, errClient(false, "unsupported client_assertion_type")
	}
	tok, err := jwt.ParseSigned(form.Get("client_assertion"), asymmetricAlgs)
	if err != nil {
		return nil, errClient(false, "client assertion: not a compact JWS with an asymmetric algorithm (RS/PS/ES/EdDSA)")
	}
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil || unverified.Issuer == "" {
		return nil, errClient(false, "client assertion: malformed claims or missing iss")
	}
	if hasFormID && formID != unverified.Issuer {
		return nil, errClient(false, "client assertion: iss does not match client_id")
	}
	c := s.clients[unverified.Issuer]
	if c == nil {
		return nil, errClient(false, "client assertion: unknown client")
	}
	if c.AuthMethod != AuthPrivateKeyJWT {
		return nil, errClient(false, "client is registered for %s, not private_key_jwt", c.AuthMethod)
	}
	claims, desc := s.verifyAssertionLocked(tok, c, audiences)
	if desc != "" {
		return nil, errClient(false, "client assertion: %s", desc)
	}
	if claims.Subject != c.ID {
		return nil, errClient(false, "client assertion: sub must equal iss (the client_id)")
	}
	return c, nil
}

// verifyAssertionLocked checks a JWT assertion issued by client c: the
// signature by a key of c's JWKS chosen by kid, iss, aud, exp, nbf, iat and
// a jti never seen before (which it then remembers). It returns a
// description of the first failure, or "". s.mu must be held.
func (s *Server) verifyAssertionLocked(tok *jwt.JSONWebToken, c *registeredClient, audiences []string) (*jwt.Claims, string) {
	if len(tok.Headers) != 1 {
		return nil, "exactly one signature required"
	}
	h := tok.Headers[0]
	if h.KeyID == "" {
		return nil, "kid header required"
	}
	keys := c.jwks.Key(h.KeyID)
	if len(keys) == 0 {
		return nil, "no registered key has this kid"
	}
	var payload json.RawMessage
	verified := false
	for _, k := range keys {
		if k.Algorithm != "" && k.Algorithm != h.Algorithm {
			continue
		}
		if err := tok.Claims(k.Key, &payload); err == nil {
			verified = true
			break
		}
	}
	if !verified {
		return nil, "signature verification failed"
	}
	var claims jwt.Claims
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, "malformed claims"
	}
	now := s.now()
	switch {
	case claims.Issuer != c.ID:
		return nil, "iss must be the client_id"
	case !audienceAccepted(claims.Audience, audiences):
		return nil, "aud must contain the token endpoint URL"
	case claims.Expiry == nil:
		return nil, "exp required"
	case !claims.Expiry.Time().After(now):
		return nil, "expired"
	case claims.Expiry.Time().Sub(now) > maxAssertionLifetime:
		return nil, "exp more than 5 minutes ahead"
	case claims.NotBefore != nil && claims.NotBefore.Time().After(now.Add(clockSkew)):
		return nil, "not valid yet (nbf)"
	case claims.IssuedAt != nil && claims.IssuedAt.Time().After(now.Add(clockSkew)):
		return nil, "iat in the future"
	case claims.ID == "":
		return nil, "jti required"
	}
	key := c.ID + "\x00" + claims.ID
	if _, seen := s.seenJTI[key]; seen {
		return nil, "jti already used (replay)"
	}
	for k, exp := range s.seenJTI {
		if exp.Before(now) {
			delete(s.seenJTI, k)
		}
	}
	s.seenJTI[key] = claims.Expiry.Time()
	return &claims, ""
}

func audienceAccepted(aud jwt.Audience, accepted []string) bool {
	for _, a := range accepted {
		if aud.Contains(a) {
			return true
		}
	}
	return false
}
