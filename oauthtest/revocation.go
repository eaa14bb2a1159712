package oauthtest

import (
	"net/http"
	"net/url"
	"strings"
)

// clientForEndpointLocked runs the checks shared by /revoke and /introspect:
// a POST form request and an authenticated (or identified public) client.
// Client assertions may be addressed to the token URL or to endpoint.
func (s *Server) clientForEndpointLocked(r *http.Request, form url.Values, endpoint string) (*registeredClient, *oauthError) {
	if oerr := checkFormRequest(r, form); oerr != nil {
		return nil, oerr
	}
	c, oerr := s.authenticateClientLocked(r, form, []string{s.TokenURL(), endpoint})
	if oerr != nil {
		return nil, oerr
	}
	if c == nil {
		return nil, errClient(false, "client authentication required")
	}
	if form.Get("token") == "" {
		return nil, errRequest("token is required")
	}
	return c, nil
}

// handleRevoke implements token revocation (RFC 7009). Revoking a refresh
// token revokes its whole family, access tokens included. Unknown tokens
// are answered 200.
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	form, oerr := readForm(r)
	s.mu.Lock()
	var c *registeredClient
	if oerr == nil {
		c, oerr = s.clientForEndpointLocked(r, form, s.RevocationURL())
	}
	if oerr == nil {
		oerr = s.revokeLocked(c, form.Get("token"), form.Get("token_type_hint"))
	}
	if oerr == nil {
		s.stats.Revocations++
	}
	s.mu.Unlock()
	if oerr != nil {
		s.logInfo("oauthtest: revocation rejected", "error", oerr.code)
		writeOAuthError(w, oerr)
		return
	}
	s.logInfo("oauthtest: revocation", "client_id", c.ID)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

func (s *Server) revokeLocked(c *registeredClient, tok, hint string) *oauthError {
	switch hint {
	case "", "access_token", "refresh_token":
	default:
		return errCode("unsupported_token_type", "token_type_hint must be access_token or refresh_token")
	}
	// The hint only orders the lookup; both kinds are tried (RFC 7009 §2.1).
	if rt := s.refresh[tok]; rt != nil {
		if rt.clientID != c.ID {
			return errCode("unauthorized_client", "the token was issued to another client")
		}
		rt.revoked = true
		s.revokeFamilyLocked(rt.family)
		return nil
	}
	if a := s.access[tok]; a != nil {
		if a.clientID != c.ID {
			return errCode("unauthorized_client", "the token was issued to another client")
		}
		a.revoked = true
	}
	return nil
}

// introspection is the RFC 7662 §2.2 answer.
type introspection struct {
	Active    bool     `json:"active"`
	Scope     string   `json:"scope,omitempty"`
	ClientID  string   `json:"client_id,omitempty"`
	Sub       string   `json:"sub,omitempty"`
	Exp       int64    `json:"exp,omitempty"`
	Iat       int64    `json:"iat,omitempty"`
	Iss       string   `json:"iss,omitempty"`
	Aud       []string `json:"aud,omitempty"`
	TokenType string   `json:"token_type,omitempty"`
	Act       *actor   `json:"act,omitempty"`
}

type actor struct {
	Sub string `json:"sub"`
}

// handleIntrospect implements token introspection (RFC 7662) for access
// and refresh tokens. Any authenticated client may introspect any token.
func (s *Server) handleIntrospect(w http.ResponseWriter, r *http.Request) {
	form, oerr := readForm(r)
	s.mu.Lock()
	var resp introspection
	if oerr == nil {
		_, oerr = s.clientForEndpointLocked(r, form, s.IntrospectionURL())
	}
	if oerr == nil {
		resp = s.introspectLocked(form.Get("token"))
	}
	s.mu.Unlock()
	if oerr != nil {
		writeOAuthError(w, oerr)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, "application/json", resp)
}

func (s *Server) introspectLocked(tok string) introspection {
	if a, _ := s.activeAccessLocked(tok); a != nil {
		resp := introspection{
			Active: true, Scope: strings.Join(a.scopes, " "), ClientID: a.clientID, Sub: a.subject,
			Exp: a.expiry.Unix(), Iat: a.issued.Unix(), Iss: s.Issuer(), Aud: a.audience, TokenType: "Bearer",
		}
		if a.actor != "" {
			resp.Act = &actor{Sub: a.actor}
		}
		return resp
	}
	if rt := s.refresh[tok]; rt != nil && !rt.revoked && !rt.used && s.now().Before(rt.expiry) {
		return introspection{
			Active: true, Scope: strings.Join(rt.scopes, " "), ClientID: rt.clientID, Sub: rt.subject,
			Exp: rt.expiry.Unix(), Iat: rt.issued.Unix(), Iss: s.Issuer(), TokenType: "refresh_token",
		}
	}
	return introspection{Active: false}
}
