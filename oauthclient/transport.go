package oauthclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"

	"golang.org/x/oauth2"

	"github.com/oauthkit/oauthkit/internal/reqcopy"
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
// body can be replayed (no body, or GetBody set). With Origins set, it
// adds the token only to requests for those origins. As with
// http.Transport, its fields must not change once it has sent a request:
// it remembers the token it sends, so a Transport given another Source
// would keep sending the old source's token; make a new Transport instead.
type Transport struct {
	// The fields every request reads come first and fill one cache line;
	// the struct is padded to 128 bytes, whose size class starts objects on
	// 64-byte boundaries.

	// fast is a hot, confirmed bearer token state this Transport holds (see
	// tokenState.hold): it sends it without reading it, and the state takes
	// itself back when it stops being hot. With thousands of sources, a
	// request then touches one cold cache line, this one.
	fast atomic.Pointer[tokenState]
	// last is the token state this Transport sent last: while it is hot
	// (fresh, used, not replaced) the next request takes it without asking
	// the source.
	last atomic.Pointer[tokenState]
	// origins are the parsed Origins: set by TokenSource.Client from
	// Config.Origins, else parsed from Origins at the first request;
	// &anyOrigin when unbound, so that the hot path tells that by address.
	origins atomic.Pointer[[]string]

	// Base sends the requests. Optional; default http.DefaultTransport.
	Base http.RoundTripper
	// Source supplies tokens. Required.
	Source Source
	// Origins, if set, are the only origins (scheme, host, port; paths
	// ignored) that receive the token; requests to others are sent without
	// it. Optional; TokenSource.Client uses Config.Origins instead.
	Origins OriginList

	// allowedURL is the scheme and host of the last request that origins
	// allowed: a bound Transport compares two strings per request instead
	// of working out the origin (IDNA conversion, allocations) again.
	allowedURL atomic.Pointer[[2]string]

	_ [40]byte
}

// String describes t: its source (this package's sources print without
// secrets; any other only by its type, since it may hold a token), its
// base transport's type and its origins without URL queries.
func (t *Transport) String() string {
	var src any = fmt.Sprintf("%T", t.Source)
	switch t.Source.(type) {
	case authSource, *oauth2Adapter:
		src = t.Source
	}
	return fmt.Sprintf("oauthclient.Transport{Source:%v Base:%T Origins:%v}", src, t.Base, t.Origins)
}

// GoString is String.
func (t *Transport) GoString() string { return t.String() }

// Format prints String for every fmt verb.
func (t *Transport) Format(f fmt.State, _ rune) { fmt.Fprint(f, t.String()) }

// LogValue prints String in slog output.
func (t *Transport) LogValue() slog.Value { return slog.StringValue(t.String()) }

// hooks is implemented by TokenSource: the Transport reports 401s to its
// observer and logs token decisions to its logger.
type hooks interface {
	hooks() (Observer, *slog.Logger)
}

func (s *TokenSource) hooks() (Observer, *slog.Logger) { return s.obs, s.log }

func (t *Transport) hooks() (Observer, *slog.Logger) {
	if h, ok := t.Source.(hooks); ok {
		return h.hooks()
	}
	return noObserver{}, nil
}

// anyOrigin is Transport.origins of an unbound Transport; noOrigin that of
// one whose Origins do not parse (it sends the token nowhere).
var anyOrigin, noOrigin []string

// allowed reports whether req's origin may receive the token.
func (t *Transport) allowed(req *http.Request) bool {
	o := t.origins.Load()
	if o == nil {
		o = &anyOrigin
		if len(t.Origins) > 0 {
			list, err := parseOrigins(t.Origins)
			if o = &list; err != nil {
				o = &noOrigin
			}
		}
		t.origins.Store(o)
	}
	if o == &anyOrigin {
		return true
	}
	if a := t.allowedURL.Load(); a != nil && a[0] == req.URL.Scheme && a[1] == req.URL.Host {
		return true // the same scheme and host as an allowed request: the same origin
	}
	if o != &noOrigin && allowedOrigin(req.URL, *o) {
		t.allowedURL.Store(&[2]string{req.URL.Scheme, req.URL.Host})
		return true
	}
	if _, log := t.hooks(); log != nil && log.Enabled(req.Context(), slog.LevelDebug) {
		log.Debug("oauthclient: request to an origin the token is not bound to; sent without the token", "url", redactURL(req.URL.String()))
	}
	return false
}

// authSource is implemented by the sources of this package (TokenSource,
// Static): a typed fast path with a precomputed header, and
// compare-and-reject for exactly the token that was sent.
type authSource interface {
	// current returns the token to send.
	current(ctx context.Context) (*tokenState, error)
	// reject reports a 401 for st and whether another token may be tried.
	reject(st *tokenState) bool
}

func (s *TokenSource) current(ctx context.Context) (*tokenState, error) { return s.state(ctx) }

func (t *Transport) base() http.RoundTripper {
	if t.Base != nil {
		return t.Base
	}
	return http.DefaultTransport
}

func (t *Transport) current(ctx context.Context) (*tokenState, error) {
	if as, ok := t.Source.(authSource); ok {
		return as.current(ctx)
	}
	tok, err := t.Source.Token(ctx)
	if err != nil {
		return nil, err
	}
	if tok == nil || tok.AccessToken == "" {
		return nil, errors.New("oauthclient: Transport: source returned no token")
	}
	return newTokenState(tok, "Bearer "+tok.AccessToken), nil
}

func (t *Transport) reject(st *tokenState) bool {
	if as, ok := t.Source.(authSource); ok {
		return as.reject(st)
	}
	if inv, ok := t.Source.(interface{ Invalidate(*oauth2.Token) }); ok {
		inv.Invalidate(st.tok)
		return true
	}
	return false
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.Source == nil {
		closeBody(req)
		return nil, errors.New("oauthclient: Transport.Source is nil")
	}
	// (The length and Response tests keep the usual case, a first request
	// through an unbound Transport, free of calls.)
	if req.Response != nil && !sameOrigin(req) || t.origins.Load() != &anyOrigin && !t.allowed(req) {
		// A redirect to another origin, or an origin the token is not bound
		// to: send it, but never with the token.
		return t.base().RoundTrip(req)
	}
	if req.URL.Scheme != "https" && !secureTarget(req.URL) {
		if req.Response != nil {
			return t.base().RoundTrip(req)
		}
		closeBody(req)
		return nil, ErrInsecureURL
	}
	if st := t.fast.Load(); st != nil {
		// A held state is a hot bearer token that worked: send it without
		// reading it.
		resp, err := t.base().RoundTrip(withAuth(req, st.header()))
		if err != nil || resp.StatusCode != http.StatusUnauthorized {
			return resp, err
		}
		return t.unauthorized(req, st, resp)
	}
	st := t.last.Load()
	if st == nil || !st.hot() {
		var err error
		if st, err = t.current(req.Context()); err != nil {
			closeBody(req)
			return nil, err
		}
		t.last.Store(st)
	}
	resp, err := t.send(withAuth(req, st.header()), st, req)
	if err != nil {
		return resp, err
	}
	if resp.StatusCode != http.StatusUnauthorized {
		st.confirm()
		st.hold(t)
		return resp, nil
	}
	return t.unauthorized(req, st, resp)
}

// unauthorized handles a 401 to req sent with st: if the token was
// rejected and req can be sent again, it drops st and replays req once
// with the next token.
func (t *Transport) unauthorized(req *http.Request, st *tokenState, resp *http.Response) (*http.Response, error) {
	obs, _ := t.hooks()
	ctx := req.Context()
	if !tokenRejected(resp.Header) {
		obs.Replay(ctx, ReplayEvent{Outcome: ReplayNotReplayable})
		return resp, nil
	}
	// The token is dropped whether or not this request can be sent again:
	// else a client whose requests all have one-shot bodies would send the
	// rejected token forever.
	dropped := t.reject(st)
	if !replayable(req) {
		obs.Replay(ctx, ReplayEvent{Outcome: ReplayNotReplayable})
		return resp, nil
	}
	if !dropped {
		obs.Replay(ctx, ReplayEvent{Outcome: ReplayNoNewToken})
		return resp, nil
	}
	st2, err := t.current(ctx)
	if err != nil || st2.hdr[0] == st.hdr[0] {
		obs.Replay(ctx, ReplayEvent{Outcome: ReplayNoNewToken})
		return resp, nil // no other token to try: the original 401 stands
	}
	r2, ok := replay(req, st2.header())
	if !ok {
		obs.Replay(ctx, ReplayEvent{Outcome: ReplayNotReplayable})
		return resp, nil
	}
	drain(resp)
	resp, err = t.send(r2, st2, req)
	switch {
	case err == nil && resp.StatusCode != http.StatusUnauthorized:
		st2.confirm()
		t.last.Store(st2)
		st2.hold(t)
		obs.Replay(ctx, ReplayEvent{Outcome: ReplayOK})
	case err == nil:
		obs.Replay(ctx, ReplayEvent{Outcome: ReplayRejected})
	}
	return resp, err
}

// replay returns a copy of req with the Authorization value hdr and a new
// body from GetBody; false if the body cannot be had again.
func replay(req *http.Request, hdr []string) (*http.Request, bool) {
	r := withAuth(req, hdr)
	if req.GetBody != nil && req.Body != nil && req.Body != http.NoBody {
		body, err := req.GetBody()
		if err != nil {
			return nil, false
		}
		r.Body = body
	}
	return r, true
}

// drain reads a little of a response body (to reuse the connection) and
// closes it.
func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// withAuth copies req (shallowly, with its own header map) and sets the
// Authorization header to hdr, which is shared and never modified.
func withAuth(req *http.Request, hdr []string) *http.Request {
	return reqcopy.With(req, "Authorization", hdr)
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

// wrapClient copies base (nil: a new client) with a Transport for src over
// base.Transport (nil: http.DefaultTransport).
func wrapClient(base *http.Client, src Source, origins []string) *http.Client {
	var c http.Client
	if base != nil {
		c = *base
	}
	rt := c.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	if cert, ok := certificateOf(src); ok {
		rt = transportWithCertificate(rt, cert) // certificate-bound tokens (RFC 8705 §3)
	}
	t := &Transport{Source: src, Base: rt}
	if len(origins) > 0 {
		t.origins.Store(&origins)
	} else {
		t.origins.Store(&anyOrigin)
	}
	c.Transport = t
	return &c
}
