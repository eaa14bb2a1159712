package oauthtest

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/go-jose/go-jose/v4/jwt"
)

// Token type identifiers of RFC 8693 §3.
const (
	TokenTypeAccessToken  = "urn:ietf:params:oauth:token-type:access_token"
	TokenTypeRefreshToken = "urn:ietf:params:oauth:token-type:refresh_token"
)

// grant authenticates the client and runs the requested grant.
func (s *Server) grant(r *http.Request, form url.Values) (*tokenResponse, *oauthError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, oerr := s.authenticateClientLocked(r, form, []string{s.TokenURL()})
	if oerr != nil {
		return nil, oerr
	}
	gt := form.Get("grant_type")
	if gt == "" {
		return nil, errRequest("grant_type is required")
	}
	if !slices.Contains(allGrantTypes, gt) {
		return nil, errCode("unsupported_grant_type", "unsupported grant_type")
	}
	if c == nil && gt != GrantJWTBearer {
		return nil, errClient(false, "client authentication required")
	}
	if c != nil {
		if oerr := checkGrantAllowed(c, gt); oerr != nil {
			return nil, oerr
		}
	}
	scopes, oerr := parseScope(form)
	if oerr != nil {
		return nil, oerr
	}
	return s.runGrantLocked(c, gt, form, scopes)
}

// runGrantLocked runs grant gt for client c (nil only for a jwt-bearer
// grant without client authentication), however it authenticated. s.mu
// must be held.
func (s *Server) runGrantLocked(c *registeredClient, gt string, form url.Values, scopes []string) (*tokenResponse, *oauthError) {
	switch gt {
	case GrantClientCredentials:
		return s.clientCredentialsLocked(c, scopes)
	case GrantRefreshToken:
		return s.refreshLocked(c, form, scopes)
	case GrantJWTBearer:
		return s.jwtBearerLocked(c, form, scopes)
	case GrantTokenExchange:
		return s.tokenExchangeLocked(c, form, scopes)
	case GrantPassword:
		return s.passwordLocked(c, form, scopes)
	case GrantDeviceCode:
		return s.deviceGrantLocked(c, form)
	default: // GrantAuthorizationCode
		return s.authorizationCodeLocked(c, form, scopes)
	}
}

func checkGrantAllowed(c *registeredClient, gt string) *oauthError {
	if len(c.GrantTypes) > 0 && !slices.Contains(c.GrantTypes, gt) {
		return errCode("unauthorized_client", "client may not use this grant type")
	}
	return nil
}

// parseScope parses the scope parameter strictly (RFC 6749 §3.3):
// scope-tokens separated by single spaces.
func parseScope(form url.Values) ([]string, *oauthError) {
	if !form.Has("scope") {
		return nil, nil
	}
	return splitScope(form.Get("scope"))
}

func splitScope(raw string) ([]string, *oauthError) {
	if raw == "" {
		return nil, nil
	}
	var out []string
	for _, sc := range strings.Split(raw, " ") {
		if !validScopeToken(sc) {
			return nil, errCode("invalid_scope", "malformed scope (RFC 6749 §3.3)")
		}
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	return out, nil
}

func validScopeToken(sc string) bool {
	if sc == "" {
		return false
	}
	for i := 0; i < len(sc); i++ {
		b := sc[i]
		if b < 0x21 || b > 0x7e || b == '"' || b == '\\' {
			return false
		}
	}
	return true
}

func checkScopesAllowed(c *registeredClient, scopes []string) *oauthError {
	if len(c.Scopes) == 0 {
		return nil
	}
	for _, sc := range scopes {
		if !slices.Contains(c.Scopes, sc) {
			return errCode("invalid_scope", "scope %q is not allowed for this client", sc)
		}
	}
	return nil
}

func subset(sub, of []string) bool {
	for _, x := range sub {
		if !slices.Contains(of, x) {
			return false
		}
	}
	return true
}

func (s *Server) clientCredentialsLocked(c *registeredClient, scopes []string) (*tokenResponse, *oauthError) {
	if c.AuthMethod == AuthNone {
		return nil, errCode("unauthorized_client", "client_credentials needs a confidential client")
	}
	if oerr := checkScopesAllowed(c, scopes); oerr != nil {
		return nil, oerr
	}
	return s.issueLocked(issueParams{client: c, subject: c.ID, scopes: scopes}), nil
}

func (s *Server) refreshLocked(c *registeredClient, form url.Values, scopes []string) (*tokenResponse, *oauthError) {
	raw := form.Get("refresh_token")
	if raw == "" {
		return nil, errRequest("refresh_token is required")
	}
	rt := s.refresh[raw]
	switch {
	case rt == nil:
		return nil, errGrant("unknown refresh token")
	case rt.clientID != c.ID:
		return nil, errGrant("refresh token was issued to another client")
	case rt.revoked:
		return nil, errGrant("refresh token was revoked")
	case rt.used && s.reuseGrace > 0 && s.now().Before(rt.usedAt.Add(s.reuseGrace)):
		// Within the grace period: answered below like a fresh rotation.
		if !s.now().Before(rt.expiry) {
			return nil, errGrant("refresh token expired")
		}
		s.stats.RefreshGraceReuses++
		s.logInfo("oauthtest: consumed refresh token presented again within the reuse grace period", "client_id", c.ID)
	case rt.used:
		s.stats.RefreshReuseDetected++
		s.revokeFamilyLocked(rt.family)
		s.logInfo("oauthtest: refresh token reuse detected; family revoked", "client_id", c.ID)
		return nil, errGrant("refresh token was already used; its token family is revoked")
	case !s.now().Before(rt.expiry):
		return nil, errGrant("refresh token expired")
	}
	if scopes == nil {
		scopes = rt.scopes
	} else if !subset(scopes, rt.scopes) {
		return nil, errCode("invalid_scope", "requested scope exceeds the original grant")
	}
	if oerr := checkScopesAllowed(c, scopes); oerr != nil {
		return nil, oerr
	}
	p := issueParams{client: c, subject: rt.subject, scopes: scopes, family: rt.family}
	if s.rotate {
		if !rt.used {
			rt.used, rt.usedAt = true, s.now()
		}
		p.withRefresh = true
		p.grantScopes = rt.scopes
	}
	return s.issueLocked(p), nil
}

func (s *Server) jwtBearerLocked(c *registeredClient, form url.Values, scopes []string) (*tokenResponse, *oauthError) {
	raw := form.Get("assertion")
	if raw == "" {
		return nil, errRequest("assertion is required")
	}
	tok, err := jwt.ParseSigned(raw, asymmetricAlgs)
	if err != nil {
		return nil, errGrant("assertion: not a compact JWS with an asymmetric algorithm (RS/PS/ES/EdDSA)")
	}
	if c == nil {
		var unverified jwt.Claims
		if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil || unverified.Issuer == "" {
			return nil, errGrant("assertion: malformed claims or missing iss")
		}
		if c = s.clients[unverified.Issuer]; c == nil {
			return nil, errGrant("assertion: unknown issuer")
		}
		if oerr := checkGrantAllowed(c, GrantJWTBearer); oerr != nil {
			return nil, oerr
		}
	}
	if len(c.jwks.Keys) == 0 {
		return nil, errGrant("assertion: issuer has no registered keys")
	}
	claims, desc := s.verifyAssertionLocked(tok, c, []string{s.TokenURL()})
	if desc != "" {
		return nil, errGrant("assertion: %s", desc)
	}
	if claims.Subject == "" {
		return nil, errGrant("assertion: sub required")
	}
	if oerr := checkScopesAllowed(c, scopes); oerr != nil {
		return nil, oerr
	}
	return s.issueLocked(issueParams{client: c, subject: claims.Subject, scopes: scopes}), nil
}

func (s *Server) tokenExchangeLocked(c *registeredClient, form url.Values, scopes []string) (*tokenResponse, *oauthError) {
	// RFC 8693 §2.2.2: an invalid subject or actor token is invalid_request.
	subjTok, subjType := form.Get("subject_token"), form.Get("subject_token_type")
	if subjTok == "" || subjType == "" {
		return nil, errRequest("subject_token and subject_token_type are required")
	}
	if subjType != TokenTypeAccessToken {
		return nil, errRequest("unsupported subject_token_type")
	}
	subj, why := s.activeAccessLocked(subjTok)
	if subj == nil {
		return nil, errRequest("subject_token: %s", why)
	}
	var actor string
	if form.Has("actor_token") || form.Has("actor_token_type") {
		actTok, actType := form.Get("actor_token"), form.Get("actor_token_type")
		if actTok == "" || actType == "" {
			return nil, errRequest("actor_token and actor_token_type go together")
		}
		if actType != TokenTypeAccessToken {
			return nil, errRequest("unsupported actor_token_type")
		}
		act, why := s.activeAccessLocked(actTok)
		if act == nil {
			return nil, errRequest("actor_token: %s", why)
		}
		actor = act.subject
	}
	if rt := form.Get("requested_token_type"); rt != "" && rt != TokenTypeAccessToken {
		return nil, errRequest("unsupported requested_token_type")
	}
	var audience []string
	for _, res := range form["resource"] {
		u, err := url.Parse(res)
		if err != nil || !u.IsAbs() || u.Fragment != "" {
			return nil, errCode("invalid_target", "resource must be an absolute URI without fragment")
		}
		audience = append(audience, res)
	}
	for _, aud := range form["audience"] {
		if aud == "" {
			return nil, errCode("invalid_target", "empty audience")
		}
		audience = append(audience, aud)
	}
	if scopes == nil {
		scopes = subj.scopes
	} else if len(subj.scopes) > 0 && !subset(scopes, subj.scopes) {
		return nil, errCode("invalid_scope", "requested scope exceeds the subject token's scope")
	}
	if oerr := checkScopesAllowed(c, scopes); oerr != nil {
		return nil, oerr
	}
	return s.issueLocked(issueParams{
		client: c, subject: subj.subject, scopes: scopes,
		audience: audience, actor: actor, issuedType: TokenTypeAccessToken,
	}), nil
}

func (s *Server) passwordLocked(c *registeredClient, form url.Values, scopes []string) (*tokenResponse, *oauthError) {
	user, pass := form.Get("username"), form.Get("password")
	if user == "" || !form.Has("password") {
		return nil, errRequest("username and password are required")
	}
	want, ok := s.users[user]
	if !ok || subtle.ConstantTimeCompare([]byte(pass), []byte(want)) != 1 {
		return nil, errGrant("wrong username or password")
	}
	if oerr := checkScopesAllowed(c, scopes); oerr != nil {
		return nil, oerr
	}
	return s.issueLocked(issueParams{client: c, subject: user, scopes: scopes, withRefresh: true}), nil
}

// authorizationCodeLocked redeems a code. A scope parameter is ignored
// (RFC 6749 §3.1): the scopes are those of the authorization request.
func (s *Server) authorizationCodeLocked(c *registeredClient, form url.Values, _ []string) (*tokenResponse, *oauthError) {
	code, redirect, verifier := form.Get("code"), form.Get("redirect_uri"), form.Get("code_verifier")
	if code == "" || redirect == "" || verifier == "" {
		return nil, errRequest("code, redirect_uri and code_verifier are required")
	}
	ac := s.codes[code]
	if ac == nil {
		return nil, errGrant("unknown authorization code")
	}
	if ac.used {
		// RFC 6749 §4.1.2: revoke what the code already produced.
		s.revokeFamilyLocked(ac.family)
		return nil, errGrant("authorization code was already used; tokens issued from it are revoked")
	}
	ac.used = true // single use, whether or not this attempt succeeds
	switch {
	case ac.clientID != c.ID:
		return nil, errGrant("authorization code was issued to another client")
	case !s.now().Before(ac.expiry):
		return nil, errGrant("authorization code expired")
	case redirect != ac.redirectURI:
		return nil, errGrant("redirect_uri differs from the authorization request")
	case !validVerifier(verifier):
		return nil, errGrant("code_verifier must be 43-128 unreserved characters (RFC 7636 §4.1)")
	}
	sum := sha256.Sum256([]byte(verifier))
	got := base64.RawURLEncoding.EncodeToString(sum[:])
	if subtle.ConstantTimeCompare([]byte(got), []byte(ac.challenge)) != 1 {
		return nil, errGrant("PKCE verification failed")
	}
	return s.issueLocked(issueParams{client: c, subject: ac.subject, scopes: ac.scopes, family: ac.family, withRefresh: true}), nil
}

func validVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for i := 0; i < len(v); i++ {
		b := v[i]
		ok := b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z' || b >= '0' && b <= '9' ||
			b == '-' || b == '.' || b == '_' || b == '~'
		if !ok {
			return false
		}
	}
	return true
}
