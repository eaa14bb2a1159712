package oauthclient

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/oauth2"

	"github.com/oauthkit/oauthkit/tokencache"
)

// fetch obtains a usable token: from the persistent cache if another
// process refreshed it, else from the token endpoint under the cache's lock.
func (s *TokenSource) fetch(ctx context.Context, c *call) (*tokenState, error) {
	cur := s.cur.Load()
	var prev *tokencache.Entry
	if cur != nil {
		prev = cur.entry
	}
	// fromCache adopts a token another process stored, or notes the newest
	// entry (its refresh token is the one to redeem).
	fromCache := func() *tokenState {
		e := s.load(ctx)
		if e == nil {
			return nil
		}
		if st := s.adoptable(e, cur, c.background); st != nil {
			return st
		}
		prev = newer(prev, e)
		return nil
	}
	if s.cfg.Cache != nil {
		if st := fromCache(); st != nil {
			return st, nil
		}
		unlock, err := s.lockCache(ctx)
		switch {
		case err != nil && ctx.Err() != nil:
			return nil, fmt.Errorf("oauthclient: wait for cache lock: %w", ctx.Err())
		case err != nil:
			s.log.Warn("oauthclient: cache lock unavailable; fetching without it", "err", err)
		default:
			defer unlock()
			if s.locker != nil { // re-check: the lock holder before us may have stored one
				if st := fromCache(); st != nil {
					return st, nil
				}
			}
		}
	}
	issued := s.cfg.Now()
	raw, err := s.request(ctx, c, prev)
	if err != nil {
		return nil, err
	}
	e := s.newEntry(raw, prev, issued)
	if s.cfg.Cache != nil {
		sctx, cancel := context.WithTimeout(ctx, s.cfg.CacheTimeout)
		err := s.cfg.Cache.Store(sctx, s.key, e)
		cancel()
		if err != nil {
			s.log.Error("oauthclient: could not persist the new token; it is kept in memory", "err", err)
		}
	}
	st := s.newState(e)
	if s.cfg.OnTokenChange != nil {
		t := *st.tok
		s.cfg.OnTokenChange(&t)
	}
	s.log.Debug("oauthclient: new token", "expiry", e.Expiry, "rotated_refresh_token", raw.RefreshToken != "")
	return st, nil
}

func (s *TokenSource) load(ctx context.Context) *tokencache.Entry {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.CacheTimeout)
	defer cancel()
	e, err := s.cfg.Cache.Load(ctx, s.key)
	switch {
	case err == nil:
		return e
	case errors.Is(err, tokencache.ErrNotFound):
		s.log.Debug("oauthclient: cache miss")
	case errors.Is(err, tokencache.ErrCorrupt):
		s.log.Warn("oauthclient: unreadable cache entry ignored", "err", err)
	default:
		s.log.Warn("oauthclient: cache load failed", "err", err)
	}
	return nil
}

// lockCache takes the cache's cross-process lock for this source's key; a
// cache that is not a tokencache.Locker needs none. The returned function
// releases it, logging a failure to do so.
func (s *TokenSource) lockCache(ctx context.Context) (unlock func(), err error) {
	if s.locker == nil {
		return func() {}, nil
	}
	release, err := s.locker.Lock(ctx, s.key)
	if err != nil {
		return nil, err
	}
	return func() {
		if err := release(); err != nil {
			s.log.Warn("oauthclient: release cache lock", "err", err)
		}
	}, nil
}

// adoptable returns the state for a cached entry worth using instead of a
// new request, or nil.
func (s *TokenSource) adoptable(e *tokencache.Entry, cur *tokenState, background bool) *tokenState {
	if e.AccessToken == "" || (cur != nil && cur.entry.AccessToken == e.AccessToken) {
		return nil
	}
	s.mu.Lock()
	rejected := e.AccessToken == s.lastInvalid
	s.mu.Unlock()
	if rejected {
		return nil
	}
	st := s.newState(e)
	now := s.cfg.Now()
	if !st.usable(now) || (background && !st.fresh(now)) {
		return nil
	}
	s.log.Debug("oauthclient: token taken from cache", "expiry", e.Expiry)
	return st
}

// newer returns whichever entry was written last (the cache is the truth
// when several processes share a refresh token).
func newer(a, b *tokencache.Entry) *tokencache.Entry {
	if a == nil || (b != nil && !b.Updated.Before(a.Updated)) {
		return b
	}
	return a
}

// Invalidate drops tok if it is still the current token (a resource server
// rejected it), from memory and from the cache, keeping any refresh token.
// A newer token is never dropped.
func (s *TokenSource) Invalidate(tok *oauth2.Token) {
	if tok == nil {
		return
	}
	if st := s.cur.Load(); st != nil && st.entry.AccessToken == tok.AccessToken {
		s.invalidate(st)
	}
}

func (s *TokenSource) invalidate(st *tokenState) {
	if !s.cur.CompareAndSwap(st, nil) {
		return
	}
	s.mu.Lock()
	s.lastInvalid = st.entry.AccessToken
	s.mu.Unlock()
	s.log.Debug("oauthclient: token rejected by the resource server; dropped")
	if s.cfg.Cache == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Under the cache's lock, so that a refresh in another process cannot
	// land between this read and write (which would put a redeemed refresh
	// token back). Without the lock the entry is left alone: lastInvalid
	// already keeps this process from adopting the rejected token.
	unlock, err := s.lockCache(ctx)
	if err != nil {
		s.log.Warn("oauthclient: cache lock unavailable; rejected token left in cache", "err", err)
		return
	}
	defer unlock()
	e, err := s.cfg.Cache.Load(ctx, s.key)
	if err != nil || e.AccessToken != st.entry.AccessToken {
		return
	}
	if e.RefreshToken == "" {
		err = s.cfg.Cache.Delete(ctx, s.key)
	} else {
		e = e.Clone()
		e.AccessToken, e.Updated = "", s.cfg.Now()
		err = s.cfg.Cache.Store(ctx, s.key, e)
	}
	if err != nil {
		s.log.Warn("oauthclient: could not drop rejected token from cache", "err", err)
	}
}
