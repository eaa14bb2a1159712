package oauthtest

import (
	"net"
	"net/http"
	"net/url"
	"regexp"
	"time"
)

// codeLifetime is how long an authorization code can be redeemed.
const codeLifetime = 60 * time.Second

// authCode is what the server remembers about an authorization code.
type authCode struct {
	clientID    string
	redirectURI string
	challenge   string // S256 code_challenge
	scopes      []string
	subject     string
	expiry      time.Time
	family      uint64 // tokens issued from the code
	used        bool
}

// s256Challenge matches BASE64URL(SHA256(verifier)) without padding.
var s256Challenge = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

// handleAuthorize implements the authorization endpoint (RFC 6749 §4.1.1)
// with PKCE S256 required. It approves every valid request at once, for the
// first user added (or login_hint, or "user").
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "oauthtest: /authorize accepts GET only", http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	clientID, redirect := q.Get("client_id"), q.Get("redirect_uri")

	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.clients[clientID]
	switch {
	case len(q["client_id"]) > 1 || len(q["redirect_uri"]) > 1:
		s.authorizePage(w, "client_id or redirect_uri repeated")
		return
	case c == nil:
		s.authorizePage(w, "unknown or missing client_id")
		return
	case redirect == "":
		s.authorizePage(w, "redirect_uri is required")
		return
	case !redirectAllowed(c.RedirectURIs, redirect):
		s.authorizePage(w, "redirect_uri is not registered for this client")
		return
	}

	fail := func(code, desc string) {
		s.logInfo("oauthtest: authorization request rejected", "client_id", clientID, "error", code)
		redirectWith(w, r, redirect, url.Values{"error": {code}, "error_description": {desc}}, q, s.Issuer())
	}
	for k, v := range q {
		if len(v) > 1 {
			fail("invalid_request", "parameter "+k+" is repeated")
			return
		}
	}
	if rt := q.Get("response_type"); rt != "code" {
		if rt == "" {
			fail("invalid_request", "response_type is required")
		} else {
			fail("unsupported_response_type", "only response_type=code is supported")
		}
		return
	}
	if oerr := checkGrantAllowed(c, GrantAuthorizationCode); oerr != nil {
		fail("unauthorized_client", oerr.desc)
		return
	}
	if q.Get("code_challenge_method") != "S256" {
		fail("invalid_request", "code_challenge_method must be S256")
		return
	}
	if !s256Challenge.MatchString(q.Get("code_challenge")) {
		fail("invalid_request", "code_challenge must be a base64url S256 hash (43 characters)")
		return
	}
	scopes, oerr := splitScope(q.Get("scope"))
	if oerr == nil {
		oerr = checkScopesAllowed(c, scopes)
	}
	if oerr != nil {
		fail(oerr.code, oerr.desc)
		return
	}
	subject := "user"
	if s.firstUser != "" {
		subject = s.firstUser
	}
	if h := q.Get("login_hint"); h != "" {
		if _, ok := s.users[h]; !ok {
			fail("access_denied", "unknown login_hint user")
			return
		}
		subject = h
	}
	code := newOpaqueToken()
	s.codes[code] = &authCode{
		clientID: c.ID, redirectURI: redirect, challenge: q.Get("code_challenge"),
		scopes: scopes, subject: subject, expiry: s.now().Add(codeLifetime),
		family: s.newFamilyLocked(),
	}
	s.logInfo("oauthtest: authorization approved", "client_id", clientID)
	redirectWith(w, r, redirect, url.Values{"code": {code}}, q, s.Issuer())
}

// authorizePage answers 400 when the redirect URI cannot be trusted
// (RFC 6749 §4.1.2.1: never redirect then).
func (s *Server) authorizePage(w http.ResponseWriter, msg string) {
	s.logInfo("oauthtest: authorization request rejected", "reason", msg)
	http.Error(w, "oauthtest: "+msg, http.StatusBadRequest)
}

// redirectWith sends a 302 to redirect with params, the request's state
// and the issuer (RFC 9207) added to its query.
func redirectWith(w http.ResponseWriter, r *http.Request, redirect string, params, req url.Values, issuer string) {
	u, _ := url.Parse(redirect) // validated by redirectAllowed
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	if st := req.Get("state"); st != "" {
		q.Set("state", st)
	}
	q.Set("iss", issuer)
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// redirectAllowed reports whether requested matches a registered redirect
// URI exactly or, for loopback http URIs, in everything but the port.
func redirectAllowed(registered []string, requested string) bool {
	qu, err := url.Parse(requested)
	if err != nil || !qu.IsAbs() || qu.Fragment != "" || qu.User != nil {
		return false
	}
	for _, reg := range registered {
		if reg == requested {
			return true
		}
		ru, err := url.Parse(reg)
		if err != nil || ru.Scheme != "http" || qu.Scheme != "http" || !isLoopbackHost(ru.Hostname()) {
			continue
		}
		if ru.Hostname() == qu.Hostname() && ru.EscapedPath() == qu.EscapedPath() && ru.RawQuery == qu.RawQuery {
			return true
		}
	}
	return false
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
