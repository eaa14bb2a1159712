package oauthclient

// This file holds what callers hand to a source from outside the fetch
// path: a token a resource server rejected (Invalidate, and the Transport's
// 401 handling) and a token obtained elsewhere (Seed).

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/oauthkit/oauthkit/tokencache"
	"golang.org/x/oauth2"
)

// Invalidate reports that a resource server rejected tok. If tok is still
// the current token it is dropped from memory (never its refresh token), so
// that the next call fetches another, unless tokens that never worked (no
// resource server answered a Transport's request with them but by 401)
// keep being rejected: then replacements follow a backoff schedule, which
// only a token that works starts over, and tok stays in use meanwhile. A
// newer token is never dropped. The cache is not written: the next fetch
// replaces the entry under the cache's lock.
func (s *TokenSource) Invalidate(tok *oauth2.Token) {
	if tok == nil {
		return
	}
	if st := s.cur.Load(); st != nil && st.entry.AccessToken == tok.AccessToken {
		s.drop(st, false)
	}
}

// healEvery is how often the Transport may replace a token that had worked
// at once when a resource server rejects it; more often, the backoff
// applies.
const healEvery = time.Minute

// reject handles a 401 the Transport got for st and reports whether another
// token may be tried now.
func (s *TokenSource) reject(st *tokenState) bool { return s.drop(st, true) }

// drop drops st after a resource server rejected it, unless the backoff
// says to keep it for now; it reports whether another token may be tried
// now. A token that worked is dropped at once when the caller says so
// (Invalidate) and, from the Transport's 401s, at most once per healEvery:
// a gateway that rejects now and then must not cost a token request each
// time.
func (s *TokenSource) drop(st *tokenState, fromTransport bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur.Load() != st {
		return true // already replaced: the caller may try the new one
	}
	now := s.cfg.Now()
	if st.confirmed() && (!fromTransport || s.healedAt.IsZero() || now.Sub(s.healedAt) >= healEvery) {
		// It worked before and this is the first such case in a while: it
		// went bad (revoked), replace it now and start the backoff over.
		s.rejects, s.rejectGate, s.healedAt = 0, time.Time{}, now
		s.rejectSched.reset()
	} else {
		// A token that never worked, or tokens that keep going bad (a
		// gateway that rejects now and then): replacements follow the
		// backoff, and meanwhile the token stays in use.
		if now.Before(s.rejectGate) {
			return false
		}
		s.rejects++
		s.rejectGate = now.Add(s.rejectSched.next(0))
	}
	s.publish(nil)
	s.rejected = st.entry.AccessToken
	s.log.Debug("oauthclient: token rejected by the resource server; dropped", "consecutive", s.rejects)
	return true
}

// Seed makes tok the newest token and persists it (with its refresh token)
// to the cache, as if it had just been fetched: for tokens obtained
// elsewhere, such as by Login. A refresh-only token is kept too, with or
// without a cache. Seed clears any failure the source is backing off from.
// A DPoP-bound token from Login or DeviceLogin (Extra("dpop_jkt")) must
// have been obtained with this source's DPoP key: else ErrDPoPKeyMismatch,
// and nothing is kept.
func (s *TokenSource) Seed(ctx context.Context, tok *oauth2.Token) error {
	if tok == nil || tok.AccessToken == "" && tok.RefreshToken == "" {
		return errors.New("oauthclient: Seed: empty token")
	}
	e := &tokencache.Entry{AccessToken: tok.AccessToken, TokenType: tok.TokenType, RefreshToken: tok.RefreshToken, Expiry: tok.Expiry, Updated: s.cfg.Now()}
	if sc, ok := tok.Extra("scope").(string); ok {
		e.Scope = sc
	}
	if jkt, _ := tok.Extra("dpop_jkt").(string); jkt != "" {
		if jkt != s.fetcher.thumbprint() {
			return fmt.Errorf("oauthclient: Seed: %w", ErrDPoPKeyMismatch)
		}
		e.Thumbprint = jkt
	} else if isDPoPType(e.TokenType) {
		e.Thumbprint = s.fetcher.thumbprint() // bound to this source's key, like a fetched one
	}
	if err := s.tier.seed(ctx, e); err != nil {
		return fmt.Errorf("oauthclient: Seed: %w", err)
	}
	s.mu.Lock()
	s.failErr, s.bgNext, s.rejects, s.rejectGate, s.healedAt = nil, time.Time{}, 0, time.Time{}, time.Time{}
	if e.AccessToken != "" {
		s.publish(s.timing.newState(e, s.cfg.Now()))
	} else {
		s.publish(nil)
	}
	s.mu.Unlock()
	s.sched.reset()
	s.rejectSched.reset()
	return nil
}
