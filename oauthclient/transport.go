package oauthclient

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"

	"golang.org/x/oauth2"
)

// Transport is an http.RoundTripper that adds "Authorization: Bearer …"
// from Source to each request. It is safe for concurrent use.
//
// It never mutates the caller's request (it sends a copy), closes the
// request body on every error path, never attaches the token to a redirect
// that leaves the original request's origin (scheme, host and port) or to
// plain http:// other than loopback, and after a 401 that says
// error="invalid_token" (or a 401 with no challenge at all) it drops exactly
// the token it sent and retries the request once with a new one, when the
// body can be replayed (no body, or GetBody set).
type Transport struct {
	// Source supplies tokens. Required.
	Source Source
	// Base sends the requests. Optional; default http.DefaultTransport.
	Base http.RoundTripper
}

// headerSource is implemented by sources with a precomputed header and
// compare-and-invalidate (TokenSource, Static).
type headerSource interface {
	authHeader(ctx context.Context) (hdr []string, handle any, err error)
	invalidateHandle(handle any)
}

func (s *TokenSource) authHeader(ctx context.Context) ([]string, any, error) {
	st, err := s.state(ctx)
	if err != nil {
		return nil, nil, err
	}
	return st.header, st, nil
}

func (s *TokenSource) invalidateHandle(h any) {
	if st, ok := h.(*tokenState); ok {
		s.invalidate(st)
	}
}

func (t *Transport) base() http.RoundTripper {
	if t.Base != nil {
		return t.Base
	}
	return http.DefaultTransport
}

func (t *Transport) header(ctx context.Context) ([]string, any, error) {
	if hs, ok := t.Source.(headerSource); ok {
		return hs.authHeader(ctx)
	}
	tok, err := t.Source.Token(ctx)
	if err != nil {
		return nil, nil, err
	}
	if tok == nil || tok.AccessToken == "" {
		return nil, nil, errors.New("oauthclient: Transport: source returned no token")
	}
	return []string{"Bearer " + tok.AccessToken}, tok, nil
}

func (t *Transport) invalidate(h any) {
	if hs, ok := t.Source.(headerSource); ok {
		hs.invalidateHandle(h)
		return
	}
	if ts, ok := t.Source.(interface{ Invalidate(*oauth2.Token) }); ok {
		if tok, ok := h.(*oauth2.Token); ok {
			ts.Invalidate(tok)
		}
	}
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.Source == nil {
		closeBody(req)
		return nil, errors.New("oauthclient: Transport.Source is nil")
	}
	if !sameOrigin(req) {
		// A redirect to another origin: send it, but never with the token.
		return t.base().RoundTrip(req)
	}
	if !secureTarget(req) {
		if req.Response != nil {
			return t.base().RoundTrip(req)
		}
		closeBody(req)
		return nil, ErrInsecureURL
	}
	hdr, handle, err := t.header(req.Context())
	if err != nil {
		closeBody(req)
		return nil, err
	}
	resp, err := t.base().RoundTrip(withAuth(req, hdr))
	if err != nil || resp.StatusCode != http.StatusUnauthorized || !tokenRejected(resp.Header) || !replayable(req) {
		return resp, err
	}
	t.invalidate(handle)
	hdr2, _, err := t.header(req.Context())
	if err != nil || hdr2[0] == hdr[0] {
		return resp, nil // no other token to try: the original 401 stands
	}
	r2 := withAuth(req, hdr2)
	if req.GetBody != nil && req.Body != nil && req.Body != http.NoBody {
		body, err := req.GetBody()
		if err != nil {
			return resp, nil
		}
		r2.Body = body
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return t.base().RoundTrip(r2)
}

// withAuth copies req (shallowly, with its own header map) and sets the
// Authorization header to hdr, which is shared and never modified.
func withAuth(req *http.Request, hdr []string) *http.Request {
	r := new(http.Request)
	*r = *req
	h := make(http.Header, len(req.Header)+1)
	for k, v := range req.Header {
		h[k] = v
	}
	h["Authorization"] = hdr
	r.Header = h
	return r
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

func replayable(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

// tokenRejected reports whether a 401 means the token is no good: an
// error="invalid_token" challenge, or no challenge at all.
func tokenRejected(h http.Header) bool {
	vals := h.Values("Www-Authenticate")
	if len(vals) == 0 {
		return true
	}
	for _, c := range ParseWWWAuthenticate(vals) {
		if (strings.EqualFold(c.Scheme, "Bearer") || strings.EqualFold(c.Scheme, "DPoP")) && c.Params["error"] == "invalid_token" {
			return true
		}
	}
	return false
}

// sameOrigin reports whether req is the first of its redirect chain or has
// the same origin as the first.
func sameOrigin(req *http.Request) bool {
	first := req
	for first.Response != nil && first.Response.Request != nil {
		first = first.Response.Request
	}
	if first == req {
		return true
	}
	return origin(first) == origin(req)
}

func origin(r *http.Request) string {
	scheme := strings.ToLower(r.URL.Scheme)
	host := strings.ToLower(r.URL.Hostname())
	port := r.URL.Port()
	if port == "" {
		switch scheme {
		case "https":
			port = "443"
		case "http":
			port = "80"
		}
	}
	return scheme + "://" + host + ":" + port
}

func secureTarget(req *http.Request) bool {
	return strings.EqualFold(req.URL.Scheme, "https") || isLoopback(req.URL.Hostname())
}
