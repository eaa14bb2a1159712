package oauthclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"

	"github.com/oauthkit/oauthkit/tokencache"
)

// Source is anything that yields tokens for a context: *TokenSource,
// Static, or an adapter around another library's token source.
type Source interface {
	Token(ctx context.Context) (*oauth2.Token, error)
}

// TokenSource gets, caches and refreshes tokens for one client
// configuration. It is safe for concurrent use by multiple goroutines.
//
// A token is in one of three states. Fresh: returned from memory with one
// atomic load. Inside the early-refresh window (the last RefreshWindow of its
// lifetime): returned at once while exactly one background refresh runs.
// Expired or missing: callers wait, each on its own context, for one shared
// fetch, which first consults the persistent cache (another process may
// have refreshed), then takes the cache's cross-process lock if it has one,
// re-checks, requests a token, persists it and calls OnTokenChange before
// any caller gets it.
type TokenSource struct {
	cfg    Config
	key    string
	retry  RetryPolicy
	hc     *http.Client
	log    *slog.Logger
	locker tokencache.Locker

	cur        atomic.Pointer[tokenState]
	refreshing atomic.Bool // a fetch is in flight: hint for the hot path

	mu          sync.Mutex // guards the fields below
	inflight    *call
	fails       int       // consecutive failed fetches
	failErr     error     // last failure, handed out until failUntil
	failUntil   time.Time //
	bgNext      time.Time // no background refresh before this
	lastInvalid string    // access token a resource server rejected
	closed      bool      // Close was called
}

// tokenState is an immutable snapshot of the current token.
type tokenState struct {
	entry     *tokencache.Entry
	tok       *oauth2.Token
	header    []string // precomputed Authorization value
	refreshAt time.Time
	expireAt  time.Time
}

func (st *tokenState) fresh(now time.Time) bool {
	return st.refreshAt.IsZero() || now.Before(st.refreshAt)
}

func (st *tokenState) usable(now time.Time) bool {
	return st.expireAt.IsZero() || now.Before(st.expireAt)
}

// call is one fetch shared by its waiters.
type call struct {
	done       chan struct{}
	background bool
	waiters    int           // guarded by TokenSource.mu
	sleeping   bool          // in a retry backoff; guarded by TokenSource.mu
	abandoned  bool          // guarded by TokenSource.mu
	lastErr    error         // last failed attempt; guarded by TokenSource.mu
	wake       chan struct{} // closed when abandoned
	st         *tokenState
	err        error
}

var errAbandoned = errors.New("oauthclient: fetch abandoned by all callers")

// NewTokenSource validates cfg and returns a TokenSource. No request is
// made until the first Token call.
func NewTokenSource(cfg Config) (*TokenSource, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &TokenSource{cfg: cfg, hc: tokenHTTPClient(cfg.HTTPClient), log: cfg.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if cfg.Retry != nil {
		s.retry = cfg.Retry.withDefaults()
	} else {
		s.retry = DefaultRetryPolicy
	}
	s.key = cfg.CacheKey
	if s.key == "" {
		s.key = cacheKey(&cfg)
	}
	if l, ok := cfg.Cache.(tokencache.Locker); ok {
		s.locker = l
	}
	return s, nil
}

// cacheKey derives the cache key from everything that makes tokens differ.
func cacheKey(c *Config) string {
	p := tokencache.KeyParts{TokenURL: c.TokenURL, ClientID: c.ClientID, Grant: c.Grant.CacheID(), Scopes: c.Scopes}
	var rest []string
	for k, vs := range c.EndpointParams {
		switch k {
		case "audience":
			p.Audience = append(p.Audience, vs...)
		case "resource":
			p.Resource = append(p.Resource, vs...)
		default:
			for _, v := range vs {
				rest = append(rest, url.QueryEscape(k)+"="+url.QueryEscape(v))
			}
		}
	}
	sort.Strings(rest)
	p.Extra = strings.Join(rest, "&")
	return tokencache.Key(p)
}

// CacheKey returns the key under which this source stores its token.
func (s *TokenSource) CacheKey() string { return s.key }

// String describes the source without secrets.
func (s *TokenSource) String() string {
	return fmt.Sprintf("oauthclient.TokenSource{TokenURL:%q ClientID:%q Grant:%T}", s.cfg.TokenURL, s.cfg.ClientID, s.cfg.Grant)
}

// GoString describes the source without secrets.
func (s *TokenSource) GoString() string { return s.String() }

// Format prints the redacted form for every fmt verb.
func (s *TokenSource) Format(f fmt.State, _ rune) { fmt.Fprint(f, s.String()) }

// LogValue prints the redacted form in slog output.
func (s *TokenSource) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Token returns a valid token, from memory when possible. It honours ctx:
// a cancelled caller returns ctx.Err() at once even while a fetch it shares
// with others goes on. The returned token is a copy; note that
// *oauth2.Token prints its secrets with %v.
func (s *TokenSource) Token(ctx context.Context) (*oauth2.Token, error) {
	st, err := s.state(ctx)
	if err != nil {
		return nil, err
	}
	t := *st.tok
	return &t, nil
}

// state is the hot path shared by Token and the Transport.
func (s *TokenSource) state(ctx context.Context) (*tokenState, error) {
	if st := s.cur.Load(); st != nil {
		now := s.cfg.Now()
		if st.fresh(now) {
			return st, nil
		}
		if st.usable(now) {
			s.backgroundRefresh(now)
			return st, nil
		}
	}
	return s.wait(ctx)
}

func (s *TokenSource) backgroundRefresh(now time.Time) {
	if s.refreshing.Load() {
		return
	}
	s.mu.Lock()
	if s.inflight == nil && !s.closed && !now.Before(s.bgNext) {
		s.startLocked(true)
		s.log.Debug("oauthclient: token inside early-refresh window; refreshing in background")
	}
	s.mu.Unlock()
}

func (s *TokenSource) wait(ctx context.Context) (*tokenState, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	now := s.cfg.Now()
	if st := s.cur.Load(); st != nil && st.usable(now) {
		s.mu.Unlock()
		return st, nil
	}
	c := s.inflight
	if c == nil {
		if s.closed {
			s.mu.Unlock()
			return nil, ErrClosed
		}
		if s.failErr != nil && now.Before(s.failUntil) {
			err := s.failErr
			s.mu.Unlock()
			return nil, err
		}
		c = s.startLocked(false)
	}
	c.waiters++
	s.mu.Unlock()
	select {
	case <-c.done:
		if c.err != nil {
			return nil, c.err
		}
		return c.st, nil
	case <-ctx.Done():
		s.mu.Lock()
		c.waiters--
		if c.sleeping {
			s.abandonLocked(c)
		}
		last := c.lastErr
		s.mu.Unlock()
		if last != nil {
			return nil, fmt.Errorf("oauthclient: %w (last token endpoint error: %w)", ctx.Err(), last)
		}
		return nil, ctx.Err()
	}
}

// Close stops the source from making token requests: a valid token is
// still returned from memory, but no background refresh starts and an
// expired token gives ErrClosed. It waits for a fetch in flight (at most
// FetchTimeout), so that a rotated refresh token is persisted and a cache
// lock released before the process exits. Safe to call more than once.
func (s *TokenSource) Close() error {
	s.mu.Lock()
	s.closed = true
	c := s.inflight
	s.mu.Unlock()
	if c != nil {
		<-c.done
	}
	return nil
}

// startLocked starts a fetch; s.mu must be held.
func (s *TokenSource) startLocked(background bool) *call {
	c := &call{done: make(chan struct{}), wake: make(chan struct{}), background: background}
	s.inflight = c
	s.refreshing.Store(true)
	go s.run(c)
	return c
}

// abandonLocked detaches c when nobody waits for it any more, so that a
// retry backoff does not outlive its callers and the next caller starts
// afresh. A token request already on the wire is never abandoned (a
// rotated refresh token must not be lost). s.mu must be held.
func (s *TokenSource) abandonLocked(c *call) {
	if c.background || c.waiters > 0 || c.abandoned {
		return
	}
	c.abandoned = true
	close(c.wake)
	if s.inflight == c {
		s.inflight = nil
		s.refreshing.Store(false)
	}
}

// backoff waits d between attempts of c, after lastErr; it returns
// errAbandoned when every caller has gone, or ctx's error.
func (s *TokenSource) backoff(ctx context.Context, c *call, d time.Duration, lastErr error) error {
	s.mu.Lock()
	c.lastErr = lastErr
	s.abandonLocked(c)
	if c.abandoned {
		s.mu.Unlock()
		return errAbandoned
	}
	c.sleeping = true
	s.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	var err error
	select {
	case <-ctx.Done():
		err = ctx.Err()
	case <-c.wake:
		err = errAbandoned
	case <-t.C:
	}
	s.mu.Lock()
	c.sleeping = false
	s.mu.Unlock()
	return err
}

func (s *TokenSource) run(c *call) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.FetchTimeout)
	defer cancel()
	st, err := s.fetch(ctx, c)
	s.mu.Lock()
	now := s.cfg.Now()
	switch {
	case err == nil:
		s.cur.Store(st)
		s.fails, s.failErr, s.bgNext = 0, nil, time.Time{}
	case errors.Is(err, errAbandoned):
	default:
		s.fails++
		wait := s.cfg.ErrorCooldown
		if retryable(err) || errors.Is(err, context.DeadlineExceeded) {
			wait = s.retry.cooldown(s.fails)
		}
		var te *TokenError
		if errors.As(err, &te) && te.RetryAfter > wait {
			wait = te.RetryAfter
		}
		if c.background {
			s.bgNext = now.Add(wait)
		}
		if !c.background || c.waiters > 0 {
			s.failErr, s.failUntil = err, now.Add(wait)
		}
		s.log.Warn("oauthclient: token fetch failed", "background", c.background, "err", err, "next_attempt_in", wait)
	}
	if s.inflight == c {
		s.inflight = nil
		s.refreshing.Store(false)
	}
	c.st, c.err = st, err
	s.mu.Unlock()
	close(c.done)
}

// Seed makes tok the current token and persists it (with its refresh
// token) to the cache, as if it had just been fetched: for tokens obtained
// elsewhere, such as by Login.
func (s *TokenSource) Seed(ctx context.Context, tok *oauth2.Token) error {
	if tok == nil || tok.AccessToken == "" && tok.RefreshToken == "" {
		return errors.New("oauthclient: Seed: empty token")
	}
	e := &tokencache.Entry{AccessToken: tok.AccessToken, TokenType: tok.TokenType, RefreshToken: tok.RefreshToken, Expiry: tok.Expiry, Updated: s.cfg.Now()}
	if sc, ok := tok.Extra("scope").(string); ok {
		e.Scope = sc
	}
	if s.cfg.Cache != nil {
		if err := s.cfg.Cache.Store(ctx, s.key, e); err != nil {
			return fmt.Errorf("oauthclient: Seed: %w", err)
		}
	}
	if e.AccessToken != "" {
		s.cur.Store(s.newState(e))
	}
	return nil
}

// Client returns a copy of base (nil: a new client) whose Transport adds
// this source's token, over base.Transport (nil: http.DefaultTransport).
func (s *TokenSource) Client(base *http.Client) *http.Client { return wrapClient(base, s) }

// wrapClient copies base (nil: a new client) with a Transport for src over
// base.Transport (nil: http.DefaultTransport).
func wrapClient(base *http.Client, src Source) *http.Client {
	var c http.Client
	if base != nil {
		c = *base
	}
	rt := c.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	c.Transport = &Transport{Source: src, Base: rt}
	return &c
}

// OAuth2 adapts the source to golang.org/x/oauth2's TokenSource interface
// (whose Token has no context: it uses context.Background()).
func (s *TokenSource) OAuth2() oauth2.TokenSource { return oauth2Source{s} }

type oauth2Source struct{ s *TokenSource }

func (o oauth2Source) Token() (*oauth2.Token, error) { return o.s.Token(context.Background()) }

func (o oauth2Source) String() string             { return o.s.String() }
func (o oauth2Source) GoString() string           { return o.s.String() }
func (o oauth2Source) Format(f fmt.State, _ rune) { fmt.Fprint(f, o.s.String()) }
func (o oauth2Source) LogValue() slog.Value       { return slog.StringValue(o.s.String()) }
