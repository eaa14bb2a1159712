package oauthclient

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"

	"github.com/oauthkit/oauthkit/internal/tokenendpoint"
	"github.com/oauthkit/oauthkit/tokencache"
)

// tokenState is an immutable snapshot of one access token, with what the
// hot path needs precomputed: the Authorization header value and the
// instants at which it enters its refresh window and stops being used.
//
// The fields the hot path reads (flags, the header value and holders) come
// first, so that they share one cache line. A Transport that holds the
// state (see hold) does not read it at all while it stays hot: with
// thousands of sources, each request then touches one cold line, the
// Transport's own.
type tokenState struct {
	// flags holds flagTimed, flagUsed, flagStale and flagConfirmed.
	flags atomic.Uint32
	hdr   [1]string // precomputed Authorization value (header()), never modified
	ath   string    // DPoP-bound token: its hash for the proofs' ath claim; "" otherwise
	// holders are the Transports that may send this state without reading
	// it (Transport.fast); when the state stops being hot, release takes
	// it back from each of them.
	holders [2]atomic.Pointer[Transport]

	entry     *tokencache.Entry
	tok       *oauth2.Token
	refreshAt time.Time
	expireAt  time.Time
	// timer fires at refreshAt (real clock only); set before the state is
	// published, stopped when it is replaced; guarded by armedTimers.mu.
	timer *time.Timer
	mu    sync.Mutex // serializes hold and release
	// Pads the struct to 192 bytes, a size class whose objects start on
	// 64-byte boundaries, so the hot fields above share one cache line.
	_ [56]byte
}

// Bits of tokenState.flags.
const (
	// flagTimed: a timer marks the state stale at refreshAt (or it never
	// goes stale), so the hot path need not read the clock.
	flagTimed = 1 << iota
	// flagUsed: a caller got this token; only a used token is refreshed
	// ahead of expiry when no request comes during its refresh window.
	flagUsed
	// flagStale: refreshAt has passed.
	flagStale
	// flagConfirmed: a resource server answered a request carrying this
	// token with anything but 401, so a later rejection means the token
	// went bad, not that it never worked.
	flagConfirmed
)

// hot reports whether the hot path may return st with one atomic load:
// timed, used and not yet stale.
func (st *tokenState) hot() bool {
	return st.flags.Load()&(flagTimed|flagUsed|flagStale) == flagTimed|flagUsed
}

// markUsed records that a caller got st.
func (st *tokenState) markUsed() {
	if st.flags.Load()&flagUsed == 0 {
		st.flags.Or(flagUsed)
	}
}

func (st *tokenState) used() bool      { return st.flags.Load()&flagUsed != 0 }
func (st *tokenState) confirmed() bool { return st.flags.Load()&flagConfirmed != 0 }

func (st *tokenState) fresh(now time.Time) bool {
	return st.refreshAt.IsZero() || now.Before(st.refreshAt)
}

func (st *tokenState) usable(now time.Time) bool {
	return st.expireAt.IsZero() || now.Before(st.expireAt)
}

// confirm records that the token was accepted; one atomic load once it is.
func (st *tokenState) confirm() {
	if st.flags.Load()&flagConfirmed == 0 {
		st.flags.Or(flagConfirmed)
	}
}

// header is the Authorization value as a header map value. Taking it does
// not read st: it only points into it.
func (st *tokenState) header() []string { return st.hdr[:] }

// retire marks st stale (replaced, or past its refresh moment), stops its
// timer and takes it back from the Transports holding it.
func (st *tokenState) retire() {
	st.flags.Or(flagStale)
	st.stop()
	st.release()
}

// untime stops st's timer and makes the hot path read the clock for st
// again, as for a source with Config.Now: nothing will mark it stale.
func (st *tokenState) untime() {
	st.stop()
	st.flags.And(^uint32(flagTimed))
	st.release()
}

// stop stops st's timer, if any.
func (st *tokenState) stop() {
	if st != nil {
		armedTimers.disarm(st)
	}
}

// hold lets t send st without reading it while st stays hot. Only a hot,
// confirmed bearer state can be held (a DPoP-bound one needs a proof per
// request, an unconfirmed one may still be rejected), and by at most
// len(holders) Transports; others read it per request. hold and release
// take st.mu, and every flag change that ends hotness happens before
// release: a Transport never holds a state after release returned.
func (st *tokenState) hold(t *Transport) {
	if st.ath != "" || st.flags.Load()&flagConfirmed == 0 || !st.hot() {
		return
	}
	free := false
	for i := range st.holders {
		if p := st.holders[i].Load(); p == nil || p == t {
			free = true
		}
	}
	if !free {
		return // full: checked without the lock, since most calls end here
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.hot() {
		return
	}
	for i := range st.holders {
		if p := st.holders[i].Load(); p == nil || p == t {
			st.holders[i].Store(t)
			t.fast.Store(st)
			return
		}
	}
}

// release takes st back from the Transports holding it.
func (st *tokenState) release() {
	st.mu.Lock()
	defer st.mu.Unlock()
	for i := range st.holders {
		if t := st.holders[i].Load(); t != nil {
			t.fast.CompareAndSwap(st, nil)
		}
	}
}

// newTokenState returns a state for tok with the Authorization value auth.
func newTokenState(tok *oauth2.Token, auth string) *tokenState {
	st := &tokenState{tok: tok}
	st.hdr[0] = auth
	return st
}

// timing holds the lifetime rules of Config.
type timing struct {
	window    float64       // RefreshWindow
	maxWindow time.Duration // MaxRefreshWindow
	leeway    time.Duration // ExpiryLeeway (0: automatic)
	// jitter returns a random duration in [0, d); nil: none.
	jitter func(d time.Duration) time.Duration
}

// newState computes the header and the refresh and expiry instants. The
// lifetime counts from e.Updated (when the request was sent); the refresh
// window is RefreshWindow of that whole lifetime (capped), ending where the
// leeway before expiry begins. The refresh moment is drawn uniformly from
// the first half of the window, so tokens obtained together (a restart, a
// deploy) are refreshed spread out, and their successors stay spread.
func (t timing) newState(e *tokencache.Entry, now time.Time) *tokenState {
	st := newTokenState(tokenFromEntry(e), "Bearer "+e.AccessToken)
	st.entry = e
	if isDPoPType(e.TokenType) {
		st.hdr[0], st.ath = "DPoP "+e.AccessToken, accessTokenHash(e.AccessToken)
	}
	if !e.Expiry.IsZero() {
		lifetime := e.Expiry.Sub(e.Updated)
		if e.Updated.IsZero() || lifetime <= 0 {
			lifetime = e.Expiry.Sub(now)
		}
		lifetime = max(lifetime, 0)
		// Wall-clock instants (Round(0) drops the monotonic reading): the
		// monotonic clock stops while the machine sleeps, the token's
		// expiry at the server does not.
		st.expireAt = e.Expiry.Round(0).Add(-t.leewayFor(lifetime))
		window := min(time.Duration(float64(lifetime)*t.window), t.maxWindow)
		st.refreshAt = st.expireAt.Add(-window)
		if t.jitter != nil && window >= 2 {
			st.refreshAt = st.refreshAt.Add(t.jitter(window / 2))
		}
	}
	return st
}

// leewayFor is how long before expiry a token of the given lifetime stops
// being used: ExpiryLeeway, or a tenth of the lifetime clamped to 1–10 s;
// never more than half the lifetime.
func (t timing) leewayFor(lifetime time.Duration) time.Duration {
	l := t.leeway
	if l == 0 {
		l = min(max(lifetime/10, time.Second), 10*time.Second)
	}
	return min(l, lifetime/2)
}

// entryFromResponse turns a token response into a cache entry. The expiry
// counts from issued, when the request was sent, so transit time is on the
// safe side.
func entryFromResponse(raw *tokenendpoint.Token, issued time.Time) *tokencache.Entry {
	e := &tokencache.Entry{AccessToken: raw.AccessToken, TokenType: raw.TokenType, RefreshToken: raw.RefreshToken, Scope: raw.Scope, Updated: issued}
	switch {
	case raw.HasExpiresIn:
		e.Expiry = issued.Add(time.Duration(raw.ExpiresIn) * time.Second)
	default:
		e.Expiry = jwtExpiry(raw.AccessToken)
	}
	if len(raw.Extra) > 0 || raw.IDToken != "" || raw.IssuedTokenType != "" {
		e.Extra = make(map[string]any, len(raw.Extra)+2)
		for k, v := range raw.Extra {
			e.Extra[k] = v
		}
		if raw.IDToken != "" {
			e.Extra["id_token"] = raw.IDToken
		}
		if raw.IssuedTokenType != "" {
			e.Extra["issued_token_type"] = raw.IssuedTokenType
		}
	}
	return e
}

// handedOut is the token Login and DeviceLogin return for a token
// response: a DPoP-bound one names its key (Extra("dpop_jkt")), so that
// Seed can refuse it for a source with another key.
func handedOut(raw *tokenendpoint.Token, issued time.Time, p *dpopProver) *oauth2.Token {
	e := entryFromResponse(raw, issued)
	if p != nil && isDPoPType(e.TokenType) {
		e.Thumbprint = p.jkt
	}
	return tokenFromEntry(e)
}

// tokenFromEntry is the *oauth2.Token for a cache entry: token type
// normalised to "Bearer", scope and the extra members in Extra, and the
// thumbprint of the DPoP key a bound token belongs to as Extra("dpop_jkt").
func tokenFromEntry(e *tokencache.Entry) *oauth2.Token {
	typ := "Bearer"
	if e.TokenType != "" && !strings.EqualFold(e.TokenType, "bearer") {
		typ = e.TokenType
	}
	tok := &oauth2.Token{AccessToken: e.AccessToken, TokenType: typ, RefreshToken: e.RefreshToken, Expiry: e.Expiry}
	if len(e.Extra) == 0 && e.Scope == "" && e.Thumbprint == "" {
		return tok
	}
	extra := make(map[string]any, len(e.Extra)+2)
	for k, v := range e.Extra {
		extra[k] = v
	}
	if e.Scope != "" {
		extra["scope"] = e.Scope
	}
	if e.Thumbprint != "" {
		extra["dpop_jkt"] = e.Thumbprint
	}
	return tok.WithExtra(extra)
}

// jwtExpiry reads the exp claim of an access token that is a JWT. It is
// used only when the server sent no expires_in; the token is not verified
// and nothing else is read from it. Zero when absent.
func jwtExpiry(tok string) time.Time {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 || len(parts[1]) > 8<<10 {
		return time.Time{}
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}
	}
	var claims struct {
		Exp json.Number `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return time.Time{}
	}
	f, err := claims.Exp.Float64()
	if err != nil || f <= 0 || f > 1e11 {
		return time.Time{}
	}
	return time.Unix(int64(f), 0)
}
