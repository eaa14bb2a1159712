package oauthtest

import (
	"crypto"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// DPoP (RFC 9449) support. A token request that carries a valid DPoP
// proof gets DPoP-bound tokens: token_type "DPoP", the access token bound
// to the proof key's thumbprint (cnf.jkt), and for public clients the
// refresh token too. The resource then accepts that access token only as
// "Authorization: DPoP …" with a valid proof of the same key.

// DPoPAlgs are the proof algorithms the server accepts.
var DPoPAlgs = []string{"ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512", "EdDSA"}

// dpopIATWindow is how far a proof's iat may lie from the server's clock.
const dpopIATWindow = 60 * time.Second

// dpopState is the server's DPoP configuration and replay memory; guarded
// by Server.mu.
type dpopState struct {
	tokenNonce    bool                 // the token endpoint requires a nonce
	resourceNonce bool                 // the resource requires a nonce
	nonce         string               // the nonce currently accepted
	seen          map[string]time.Time // jkt + "\x00" + jti → iat, for replay detection
}

// SetDPoPNonceRequired makes the token endpoint and/or the resource
// require a server-provided nonce in DPoP proofs (RFC 9449 §8, §9): a
// proof without the current nonce is answered use_dpop_nonce with a
// DPoP-Nonce header. The default is no nonce.
func (s *Server) SetDPoPNonceRequired(token, resource bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dpop.tokenNonce, s.dpop.resourceNonce = token, resource
	if s.dpop.nonce == "" {
		s.dpop.nonce = newOpaqueToken()
	}
}

// RotateDPoPNonce replaces the accepted nonce: proofs carrying the old one
// are answered use_dpop_nonce with the new one.
func (s *Server) RotateDPoPNonce() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dpop.nonce = newOpaqueToken()
}

// dpopError is a refused proof: the OAuth error code, a description (never
// a secret), and the nonce to send back for use_dpop_nonce.
type dpopError struct {
	code  string
	desc  string
	nonce string
}

// dpopClaims are the claims of a proof.
type dpopClaims struct {
	JTI   string      `json:"jti"`
	HTM   string      `json:"htm"`
	HTU   string      `json:"htu"`
	IAT   json.Number `json:"iat"`
	ATH   string      `json:"ath"`
	Nonce string      `json:"nonce"`
}

// checkDPoPLocked verifies the DPoP proof of r for the endpoint at htu.
// accessToken is the token the proof must be bound to (ath), "" at the
// token endpoint; nonce tells whether a nonce is required. It returns the
// key's thumbprint, "" when r carries no proof. s.mu must be held.
func (s *Server) checkDPoPLocked(r *http.Request, htu, accessToken string, nonce bool) (string, *dpopError) {
	vals := r.Header.Values("DPoP")
	if len(vals) == 0 {
		return "", nil
	}
	bad := func(desc string) (string, *dpopError) {
		return "", &dpopError{code: "invalid_dpop_proof", desc: desc}
	}
	if len(vals) > 1 {
		return bad("more than one DPoP header")
	}
	algs := make([]jose.SignatureAlgorithm, len(DPoPAlgs))
	for i, a := range DPoPAlgs {
		algs[i] = jose.SignatureAlgorithm(a)
	}
	jws, err := jose.ParseSignedCompact(vals[0], algs)
	if err != nil || len(jws.Signatures) != 1 {
		return bad("the DPoP proof is not a JWS with one signature of an accepted algorithm")
	}
	h := jws.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != "dpop+jwt" {
		return bad("the DPoP proof's typ is not dpop+jwt")
	}
	if h.JSONWebKey == nil || !h.JSONWebKey.Valid() || !h.JSONWebKey.IsPublic() {
		return bad("the DPoP proof has no public jwk")
	}
	payload, err := jws.Verify(h.JSONWebKey)
	if err != nil {
		return bad("the DPoP proof's signature does not verify")
	}
	var c dpopClaims
	if json.Unmarshal(payload, &c) != nil {
		return bad("the DPoP proof's claims are not a JSON object")
	}
	iat, err := c.IAT.Int64()
	now := s.now()
	switch {
	case c.JTI == "" || len(c.JTI) > 256:
		return bad("the DPoP proof has no usable jti")
	case c.HTM != r.Method:
		return bad("the DPoP proof's htm does not match the request method")
	case !sameHTU(c.HTU, htu):
		return bad("the DPoP proof's htu does not match the request URI")
	case err != nil:
		return bad("the DPoP proof has no numeric iat")
	case time.Unix(iat, 0).Before(now.Add(-dpopIATWindow)) || time.Unix(iat, 0).After(now.Add(dpopIATWindow)):
		return bad("the DPoP proof's iat is outside the accepted window")
	}
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		if subtle.ConstantTimeCompare([]byte(c.ATH), []byte(base64.RawURLEncoding.EncodeToString(sum[:]))) != 1 {
			return bad("the DPoP proof's ath does not match the access token")
		}
	}
	tp, err := h.JSONWebKey.Thumbprint(crypto.SHA256)
	if err != nil {
		return bad("the DPoP proof's jwk has no thumbprint")
	}
	jkt := base64.RawURLEncoding.EncodeToString(tp)
	if nonce && c.Nonce != s.dpop.nonce {
		return "", &dpopError{code: "use_dpop_nonce", desc: "a DPoP nonce is required", nonce: s.dpop.nonce}
	}
	if s.dpop.seen == nil {
		s.dpop.seen = make(map[string]time.Time)
	}
	for k, t := range s.dpop.seen {
		if t.Before(now.Add(-2 * dpopIATWindow)) {
			delete(s.dpop.seen, k)
		}
	}
	key := jkt + "\x00" + c.JTI
	if _, replay := s.dpop.seen[key]; replay {
		return bad("the DPoP proof's jti was used before")
	}
	s.dpop.seen[key] = time.Unix(iat, 0)
	return jkt, nil
}

// sameHTU compares a proof's htu with the endpoint's URI, ignoring query
// and fragment and the case of scheme and host (RFC 9449 §4.3).
func sameHTU(got, want string) bool {
	g, err := url.Parse(got)
	if err != nil {
		return false
	}
	w, err := url.Parse(want)
	if err != nil {
		return false
	}
	return strings.EqualFold(g.Scheme, w.Scheme) && strings.EqualFold(g.Host, w.Host) && g.EscapedPath() == w.EscapedPath()
}

// dpopTokenLocked checks the proof of a token request before the grant
// runs: a bad proof, a missing nonce, or a refresh token bound to another
// key is refused. It returns the thumbprint to bind the new tokens to ("":
// no proof). s.mu must be held.
func (s *Server) dpopTokenLocked(r *http.Request, form url.Values) (string, http.Header, *oauthError) {
	jkt, derr := s.checkDPoPLocked(r, s.TokenURL(), "", s.dpop.tokenNonce)
	if derr != nil {
		h := http.Header{}
		if derr.nonce != "" {
			h.Set("DPoP-Nonce", derr.nonce)
		}
		return "", h, &oauthError{status: http.StatusBadRequest, code: derr.code, desc: derr.desc}
	}
	if form.Get("grant_type") == GrantRefreshToken {
		if rt := s.refresh[form.Get("refresh_token")]; rt != nil && rt.jkt != "" && rt.jkt != jkt {
			return "", nil, errGrant("the refresh token is bound to another DPoP key")
		}
	}
	return jkt, nil, nil
}

// bindDPoPLocked binds the tokens of resp to jkt: the access token always,
// the refresh token for public clients (RFC 9449 §5). s.mu must be held.
func (s *Server) bindDPoPLocked(resp *tokenResponse, jkt string) {
	if jkt == "" || resp == nil {
		return
	}
	if a := s.access[resp.AccessToken]; a != nil {
		a.jkt = jkt
		resp.TokenType = "DPoP"
	}
	if resp.RefreshToken == "" {
		return
	}
	if rt := s.refresh[resp.RefreshToken]; rt != nil {
		if c := s.clients[rt.clientID]; c != nil && c.AuthMethod == AuthNone {
			rt.jkt = jkt
		}
	}
}

// dpopResourceLocked checks a resource request's token binding. dpop tells
// whether the request used the DPoP scheme. It returns "" when the request
// may go on, and otherwise the error code, a description and the nonce to
// send back. s.mu must be held.
func (s *Server) dpopResourceLocked(r *http.Request, a *accessToken, tok string, dpop bool) (code, desc, nonce string) {
	if !dpop {
		if a.jkt != "" {
			return "invalid_token", "the access token is DPoP-bound: use the DPoP scheme with a proof", ""
		}
		return "", "", ""
	}
	if r.Header.Get("DPoP") == "" {
		return "invalid_dpop_proof", "DPoP scheme without a DPoP proof", ""
	}
	jkt, derr := s.checkDPoPLocked(r, s.URL+r.URL.Path, tok, s.dpop.resourceNonce)
	if derr != nil {
		return derr.code, derr.desc, derr.nonce
	}
	if a.jkt == "" || subtle.ConstantTimeCompare([]byte(a.jkt), []byte(jkt)) != 1 {
		return "invalid_token", "the access token is not bound to the DPoP proof's key", ""
	}
	return "", "", ""
}

// bindingError checks a's sender constraint (DPoP; a certificate, see
// mtls.go) for a resource request and reports whether it fails, filling
// the error code, description and nonce. s.mu must be held.
func (s *Server) bindingError(r *http.Request, a *accessToken, tok string, dpop bool, code, desc, nonce *string) bool {
	if c, d, n := s.dpopResourceLocked(r, a, tok, dpop); c != "" {
		*code, *desc, *nonce = c, d, n
		return true
	}
	if c, d := s.certBindingLocked(r, a); c != "" {
		*code, *desc = c, d
		return true
	}
	return false
}
