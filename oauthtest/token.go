package oauthtest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"
)

// maxBodyBytes bounds every request body the server reads.
const maxBodyBytes = 1 << 20

// accessToken is what the server remembers about an issued access token.
type accessToken struct {
	clientID string
	subject  string
	scopes   []string
	issued   time.Time
	expiry   time.Time
	family   uint64 // refresh token family; 0 if none
	revoked  bool
	audience []string // token exchange audience and resource
	actor    string   // token exchange actor's subject
	jkt      string   // DPoP key thumbprint the token is bound to; "" if none
	x5t      string   // certificate thumbprint (RFC 8705) the token is bound to; "" if none
}

// refreshToken is what the server remembers about an issued refresh token.
type refreshToken struct {
	clientID string
	subject  string
	scopes   []string // scopes of the original grant
	issued   time.Time
	expiry   time.Time
	family   uint64
	used     bool      // consumed by rotation
	usedAt   time.Time // when it was first consumed
	revoked  bool
	jkt      string // DPoP key thumbprint the token is bound to; "" if none
}

// tokenResponse is the RFC 6749 §5.1 success body.
type tokenResponse struct {
	AccessToken     string `json:"access_token"`
	TokenType       string `json:"token_type"`
	ExpiresIn       *int64 `json:"expires_in,omitempty"`
	Scope           string `json:"scope,omitempty"`
	RefreshToken    string `json:"refresh_token,omitempty"`
	IssuedTokenType string `json:"issued_token_type,omitempty"`
}

// oauthError is an RFC 6749 §5.2 error answer. desc never holds a secret.
type oauthError struct {
	status int
	code   string
	desc   string
	basic  bool // add WWW-Authenticate: Basic (client tried Basic auth)
}

func (e *oauthError) Error() string { return e.code + ": " + e.desc }

func errRequest(format string, a ...any) *oauthError {
	return &oauthError{status: http.StatusBadRequest, code: "invalid_request", desc: fmt.Sprintf(format, a...)}
}

func errClient(basic bool, format string, a ...any) *oauthError {
	return &oauthError{status: http.StatusUnauthorized, code: "invalid_client", desc: fmt.Sprintf(format, a...), basic: basic}
}

func errGrant(format string, a ...any) *oauthError {
	return &oauthError{status: http.StatusBadRequest, code: "invalid_grant", desc: fmt.Sprintf(format, a...)}
}

func errCode(code, format string, a ...any) *oauthError {
	return &oauthError{status: http.StatusBadRequest, code: code, desc: fmt.Sprintf(format, a...)}
}

func writeOAuthError(w http.ResponseWriter, e *oauthError) {
	h := w.Header()
	if e.status == http.StatusMethodNotAllowed {
		h.Set("Allow", http.MethodPost) // every OAuth endpoint here accepts POST only
	}
	if e.basic {
		h.Set("WWW-Authenticate", `Basic realm="oauthtest"`)
	}
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	writeJSON(w, e.status, "application/json", map[string]string{"error": e.code, "error_description": e.desc})
}

func writeJSON(w http.ResponseWriter, status int, contentType string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "oauthtest: encode response", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// newOpaqueToken returns 32 random bytes, base64url without padding.
func newOpaqueToken() string { return randomID(32) }

// randomID returns n random bytes, base64url without padding.
func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b)
}

// wait sleeps d or until ctx ends; it reports whether d elapsed.
func wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// readForm reads a bounded application/x-www-form-urlencoded body. It does
// not check the Content-Type.
func readForm(r *http.Request) (url.Values, *oauthError) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if err != nil {
		return nil, errRequest("read request body")
	}
	if len(body) > maxBodyBytes {
		return nil, errRequest("request body too large")
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, errRequest("malformed form body")
	}
	return form, nil
}

// checkFormRequest applies the rules shared by /token, /revoke and
// /introspect: POST, a form body, no query parameters, no repeated
// parameters (except those listed in repeatable).
func checkFormRequest(r *http.Request, form url.Values, repeatable ...string) *oauthError {
	if r.Method != http.MethodPost {
		return &oauthError{status: http.StatusMethodNotAllowed, code: "invalid_request", desc: "method must be POST"}
	}
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return errRequest("content type must be application/x-www-form-urlencoded")
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return errRequest("charset must be UTF-8")
	}
	if r.URL.RawQuery != "" {
		return errRequest("parameters must be sent in the request body, not the URL")
	}
	for k, v := range form {
		if len(v) > 1 && !slices.Contains(repeatable, k) {
			return errRequest("parameter %q is repeated", k)
		}
	}
	return nil
}

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	form, formErr := readForm(r)
	entry := TokenRequest{
		GrantType:  form.Get("grant_type"),
		ClientID:   claimedClientID(r, form),
		AuthMethod: strings.Join(detectAuthMethods(r, form), "+"),
	}
	for k := range form {
		entry.FormKeys = append(entry.FormKeys, k)
	}
	sort.Strings(entry.FormKeys)

	s.mu.Lock()
	entry.Time = s.now()
	s.stats.TokenRequests++
	if entry.GrantType != "" {
		s.stats.ByGrant[entry.GrantType]++
	}
	var inj *Response
	if len(s.injected) > 0 {
		inj = &s.injected[0]
		s.injected = s.injected[1:]
	}
	delay := s.tokenDelay
	s.mu.Unlock()

	if inj != nil {
		entry.Injected = true
		if !wait(r.Context(), inj.Delay) {
			s.recordToken(entry, 0, "")
			return
		}
		status := inj.Status
		if status == 0 {
			status = http.StatusOK
		}
		h := w.Header()
		for k, v := range inj.Header {
			h[k] = v
		}
		if _, ok := h["Content-Type"]; !ok {
			h.Set("Content-Type", "application/json")
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, inj.Body)
		s.recordToken(entry, status, "")
		return
	}

	if !wait(r.Context(), delay) {
		s.recordToken(entry, 0, "")
		return
	}
	if formErr == nil {
		formErr = checkFormRequest(r, form, "audience", "resource")
	}
	if formErr != nil {
		writeOAuthError(w, formErr)
		s.recordToken(entry, formErr.status, formErr.code)
		return
	}
	s.mu.Lock()
	jkt, dpopHeader, oerr := s.dpopTokenLocked(r, form)
	s.mu.Unlock()
	var resp *tokenResponse
	if oerr == nil {
		resp, oerr = s.grant(r, form)
	}
	if oerr != nil {
		for k, v := range dpopHeader {
			w.Header()[k] = v
		}
		writeOAuthError(w, oerr)
		s.recordToken(entry, oerr.status, oerr.code)
		return
	}
	s.mu.Lock()
	s.bindDPoPLocked(resp, jkt)
	s.bindCertLocked(r, resp)
	s.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, "application/json", resp)
	s.recordToken(entry, http.StatusOK, "")
}

func (s *Server) recordToken(entry TokenRequest, status int, code string) {
	entry.Status, entry.Error = status, code
	s.mu.Lock()
	if status >= 400 {
		s.stats.TokenErrors++
	}
	s.requests = append(s.requests, entry)
	s.mu.Unlock()
	s.logInfo("oauthtest: token request", "grant_type", entry.GrantType, "client_id", entry.ClientID,
		"auth_method", entry.AuthMethod, "status", status, "error", code, "injected", entry.Injected)
}

// issueParams describes a token response to mint.
type issueParams struct {
	client      *registeredClient
	subject     string
	scopes      []string // access token scopes
	grantScopes []string // refresh token scopes; nil means scopes
	family      uint64   // 0 with withRefresh starts a new family
	withRefresh bool
	audience    []string
	actor       string
	issuedType  string
}

// issueLocked mints an access token (and a refresh token if asked).
// s.mu must be held.
func (s *Server) issueLocked(p issueParams) *tokenResponse {
	now := s.now()
	at := newOpaqueToken()
	s.access[at] = &accessToken{
		clientID: p.client.ID, subject: p.subject, scopes: p.scopes,
		issued: now, expiry: now.Add(s.tokenLifetime), family: p.family,
		audience: p.audience, actor: p.actor,
	}
	resp := &tokenResponse{AccessToken: at, TokenType: "Bearer", Scope: strings.Join(p.scopes, " "), IssuedTokenType: p.issuedType}
	if !s.omitExpiresIn {
		secs := int64(s.tokenLifetime / time.Second)
		if secs < 0 {
			secs = 0
		}
		resp.ExpiresIn = &secs
	}
	if p.withRefresh {
		if p.family == 0 {
			p.family = s.newFamilyLocked()
			s.access[at].family = p.family
		}
		gs := p.grantScopes
		if gs == nil {
			gs = p.scopes
		}
		resp.RefreshToken = s.newRefreshLocked(p.client.ID, p.subject, gs, p.family)
	}
	return resp
}

func (s *Server) newFamilyLocked() uint64 {
	s.nextFamily++
	return s.nextFamily
}

func (s *Server) newRefreshLocked(clientID, subject string, scopes []string, family uint64) string {
	now := s.now()
	rt := newOpaqueToken()
	s.refresh[rt] = &refreshToken{
		clientID: clientID, subject: subject, scopes: scopes,
		issued: now, expiry: now.Add(s.refreshLifetime), family: family,
	}
	return rt
}

// revokeFamilyLocked revokes every access and refresh token of a family.
func (s *Server) revokeFamilyLocked(family uint64) {
	if family == 0 {
		return
	}
	for _, a := range s.access {
		if a.family == family {
			a.revoked = true
		}
	}
	for _, rt := range s.refresh {
		if rt.family == family {
			rt.revoked = true
		}
	}
}

// IssueRefreshToken mints a refresh token for a registered client, as if
// the subject had granted the scopes earlier. It starts a new token family.
func (s *Server) IssueRefreshToken(clientID, subject string, scopes []string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.clients[clientID]
	if c == nil {
		return "", fmt.Errorf("oauthtest: issue refresh token: unknown client %q", clientID)
	}
	for _, sc := range scopes {
		if !validScopeToken(sc) {
			return "", fmt.Errorf("oauthtest: issue refresh token: invalid scope %q", sc)
		}
	}
	if e := checkScopesAllowed(c, scopes); e != nil {
		return "", fmt.Errorf("oauthtest: issue refresh token: %s", e.desc)
	}
	return s.newRefreshLocked(clientID, subject, slices.Clone(scopes), s.newFamilyLocked()), nil
}

// RevokeAccessToken makes the resource reject tok with invalid_token.
// Unknown tokens are ignored.
func (s *Server) RevokeAccessToken(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.access[tok]; a != nil {
		a.revoked = true
	}
}

// RevokeAll revokes every access token issued so far. Refresh tokens stay
// valid, so a client can get a new access token.
func (s *Server) RevokeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.access {
		a.revoked = true
	}
}

// activeAccessLocked returns the access token if it is known, not revoked
// and not expired, with a description of why not otherwise.
func (s *Server) activeAccessLocked(tok string) (*accessToken, string) {
	a := s.access[tok]
	switch {
	case a == nil:
		return nil, "the access token is unknown"
	case a.revoked:
		return nil, "the access token was revoked"
	case !s.now().Before(a.expiry):
		return nil, "the access token expired"
	}
	return a, ""
}
