package oauthclient

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
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
	cfg     Config // defaults applied
	key     string
	log     *slog.Logger
	timing  timing
	sched   *schedule
	tier    *tier
	fetcher *fetcher
	hc      *http.Client
	limiter *RefreshLimiter
	origins []string // parsed Config.Origins (nil: any)
	obs     Observer
	timers  bool // real clock: a timer marks each token stale at its refresh moment

	cur        atomic.Pointer[tokenState]
	refreshing atomic.Bool // a fetch is in flight: hint for the hot path

	mu          sync.Mutex // guards the fields below
	flight      *flight
	failErr     error     // last failure, handed out until failUntil
	failUntil   time.Time //
	bgNext      time.Time // no background refresh before this
	rejected    string    // access token a resource server rejected: never adopted again
	rejects     int       // consecutive gated rejections
	rejectGate  time.Time // no gated replacement before this
	healedAt    time.Time // last immediate replacement of a token that had worked
	rejectSched *schedule // the rejections' backoff (see schedule)
	closed      bool      // Close was called
}

// flight is one fetch shared by its waiters.
type flight struct {
	ctx        context.Context // from Observer.FetchStart; parent of the fetch's context
	done       chan struct{}   // closed when st and err are set
	gone       chan struct{}   // closed when the last waiter of a foreground fetch left
	background bool
	started    atomic.Bool // run has begun (a background flight may wait in the limiter)
	waiters    int         // guarded by TokenSource.mu
	left       bool        // gone is closed; guarded by TokenSource.mu
	st         *tokenState
	err        error
}

// NewTokenSource validates cfg and returns a TokenSource. No request is
// made until the first Token call.
func NewTokenSource(cfg Config) (*TokenSource, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	timers := cfg.Now == nil
	cfg = cfg.withDefaults()
	s := &TokenSource{
		timers:      timers,
		limiter:     cfg.RefreshLimiter,
		cfg:         cfg,
		log:         cfg.Logger,
		hc:          tokenHTTPClient(cfg.HTTPClient, cfg.Auth),
		timing:      timing{window: cfg.RefreshWindow, maxWindow: cfg.MaxRefreshWindow, leeway: cfg.ExpiryLeeway, jitter: jitter},
		sched:       newSchedule(*cfg.Retry),
		rejectSched: newSchedule(*cfg.Retry),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.limiter == nil {
		s.limiter = DefaultRefreshLimiter
	}
	s.obs = cfg.Observer
	if s.obs == nil {
		s.obs = noObserver{}
	}
	s.origins, _ = parseOrigins(cfg.Origins) // validated; empty, not nil, when unbound
	s.key = cfg.CacheKey
	if s.key == "" {
		s.key = cacheKey(&cfg)
	}
	s.fetcher = &fetcher{cfg: &s.cfg, hc: s.hc, sched: s.sched, log: s.log, obs: s.obs}
	var err error
	if s.fetcher.dpop, err = newDPoPProver(cfg.DPoPKey); err != nil {
		return nil, err
	}
	if s.fetcher.dpop != nil {
		s.fetcher.dpop.now = cfg.Now
	}
	s.tier = &tier{cache: cfg.Cache, key: s.key, timeout: cfg.CacheTimeout, lockWait: cfg.FetchTimeout / 2, log: s.log, obs: s.obs}
	if rg, ok := cfg.Grant.(refreshGrant); ok {
		s.tier.rotating = true
		if rt := rg.initialRefreshToken(); rt != "" {
			s.tier.newest = &tokencache.Entry{RefreshToken: rt}
		}
	}
	if l, ok := cfg.Cache.(tokencache.LeaseLocker); ok {
		s.tier.leases = l
	} else if l, ok := cfg.Cache.(tokencache.Locker); ok {
		s.tier.locker = l
	}
	return s, nil
}

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

// state is the hot path shared by Token and the Transport. With the real
// clock, a fresh token that was used before costs two atomic loads and no
// clock read: a timer marks it stale at its refresh moment.
func (s *TokenSource) state(ctx context.Context) (*tokenState, error) {
	if st := s.cur.Load(); st != nil {
		if st.hot() {
			return st, nil
		}
		st.markUsed()
		now := s.cfg.Now()
		if st.fresh(now) {
			return st, nil
		}
		if st.usable(now) {
			if f := s.backgroundRefresh(now); f != nil {
				s.obs.FetchWait(f.ctx, ctx) // an observer links the refresh to this request
			}
			return st, nil
		}
	}
	st, err := s.wait(ctx)
	if err != nil {
		return nil, err
	}
	st.markUsed()
	return st, nil
}

// backgroundRefresh starts the one background refresh, if none runs and
// none failed too recently, and returns it (nil if it started none).
func (s *TokenSource) backgroundRefresh(now time.Time) *flight {
	if s.refreshing.Load() {
		return nil
	}
	var f *flight
	s.mu.Lock()
	if s.flight == nil && !s.closed && !now.Before(s.bgNext) {
		f = s.startLocked(true)
		s.log.Debug("oauthclient: token inside early-refresh window; refreshing in background")
	}
	s.mu.Unlock()
	return f
}

// wait returns a usable token, joining (or starting) the one fetch.
func (s *TokenSource) wait(ctx context.Context) (*tokenState, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		s.mu.Lock()
		now := s.cfg.Now()
		if st := s.cur.Load(); st != nil && st.usable(now) {
			s.mu.Unlock()
			return st, nil
		}
		f := s.flight
		if f != nil && f.background && f.started.CompareAndSwap(false, true) {
			go s.run(f) // a caller needs it now: never wait in the limiter
		}
		if f != nil && f.left {
			// Abandoned by its callers and about to end: wait for it, then
			// start afresh (never two token requests at once).
			s.mu.Unlock()
			select {
			case <-f.done:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if f == nil {
			if s.closed {
				s.mu.Unlock()
				return nil, ErrClosed
			}
			if s.failErr != nil && now.Before(s.failUntil) {
				err := s.failErr
				s.mu.Unlock()
				return nil, err
			}
			f = s.startLocked(false)
		}
		f.waiters++
		s.mu.Unlock()
		s.obs.FetchWait(f.ctx, ctx)
		select {
		case <-f.done:
			if f.err != nil {
				return nil, f.err
			}
			return f.st, nil
		case <-ctx.Done():
			s.mu.Lock()
			f.waiters--
			if f.waiters == 0 && !f.background && !f.left {
				f.left = true
				close(f.gone)
			}
			s.mu.Unlock()
			return nil, ctx.Err()
		}
	}
}

// startLocked starts a fetch; s.mu must be held.
func (s *TokenSource) startLocked(background bool) *flight {
	f := &flight{done: make(chan struct{}), background: background}
	f.ctx = s.obs.FetchStart(context.Background(), FetchEvent{Background: background, Grant: grantName(s.cfg.Grant), TokenURL: redactURL(s.cfg.TokenURL), ClientID: s.cfg.ClientID})
	if !background {
		f.gone = make(chan struct{})
	}
	s.flight = f
	s.refreshing.Store(true)
	if background {
		s.limiter.submit(func() {
			if f.started.CompareAndSwap(false, true) {
				s.run(f)
			}
		})
	} else {
		f.started.Store(true)
		go s.run(f)
	}
	return f
}

// publish makes st the current token (nil: none), arming its refresh
// timer and stopping the replaced one's; s.mu must be held.
func (s *TokenSource) publish(st *tokenState) {
	if st != nil && s.timers && !s.closed { // a closed source refreshes nothing: no timer
		if st.refreshAt.IsZero() {
			st.flags.Or(flagTimed) // never stale
		} else if d := st.refreshAt.Sub(s.cfg.Now()); d > 0 {
			armedTimers.arm(st, d, func() { s.refreshMoment(st) })
			st.flags.Or(flagTimed)
		}
	}
	if old := s.cur.Swap(st); old != nil {
		old.retire() // no Transport keeps sending a replaced token
	}
}

// refreshMoment runs when st enters its refresh window: the hot path then
// reads the clock again, and a token that was used is refreshed now in the
// background, even if no request comes before it expires (no stall for a
// quiet tenant). An unused one is left to expire: an idle source makes no
// token requests.
func (s *TokenSource) refreshMoment(st *tokenState) {
	st.retire()
	if st.used() && s.cur.Load() == st {
		s.backgroundRefresh(s.cfg.Now())
	}
}

// run performs one fetch through the persistent tier and settles its
// outcome: a new current token, or a failure with its cool-down.
func (s *TokenSource) run(f *flight) {
	ctx, cancel := context.WithTimeout(f.ctx, s.cfg.FetchTimeout)
	defer cancel()
	s.mu.Lock()
	closed := s.closed && f.background && f.waiters == 0
	s.mu.Unlock()
	if closed {
		s.finish(f, nil, false, errAbandoned)
		return
	}
	adopt, adopted := s.adoptable(f.background)
	e, fetched, err := s.tier.obtain(ctx, obtainRequest{adopt: adopt, gone: f.gone}, s.fetcher)
	var st *tokenState
	if err == nil {
		if st = adopted(e); st == nil {
			st = s.timing.newState(e, s.cfg.Now())
		}
		if !st.usable(s.cfg.Now()) {
			st, err = nil, ErrExpiredOnArrival
		}
	}
	if err == nil && fetched {
		if s.cfg.OnTokenChange != nil {
			t := *st.tok
			s.cfg.OnTokenChange(&t)
		}
		s.log.Debug("oauthclient: new token", "expiry", e.Expiry, "refresh_token", e.RefreshToken != "")
	}
	s.finish(f, st, fetched, err)
}

// finish settles f's outcome: a new current token, or a failure with its
// cool-down, and wakes its waiters.
func (s *TokenSource) finish(f *flight, st *tokenState, fetched bool, err error) {
	s.mu.Lock()
	res := FetchResult{Outcome: FetchFailed, Err: err}
	switch {
	case err == nil:
		now := s.cfg.Now()
		res.Outcome = FetchCached
		if fetched {
			res.Outcome = FetchFetched
		}
		if !st.entry.Expiry.IsZero() {
			res.Lifetime = st.entry.Expiry.Sub(st.entry.Updated)
		}
		if old := s.cur.Load(); old != nil && !old.entry.Expiry.IsZero() && old.entry.Expiry.After(now) {
			res.LeadTime = old.entry.Expiry.Sub(now)
		}
		s.publish(st)
		s.failErr, s.bgNext = nil, time.Time{}
		s.sched.reset()
	case errors.Is(err, errAbandoned):
		res.Outcome = FetchAbandoned
		if ab, ok := err.(*abandonedRetry); ok {
			s.failErr, s.failUntil = ab.last, ab.until
		}
	default:
		wait := s.cfg.ErrorCooldown
		if retryable(err) || errors.Is(err, context.DeadlineExceeded) {
			wait = s.sched.next(retryAfterOf(err))
		}
		now := s.cfg.Now()
		if f.background {
			s.bgNext = now.Add(wait)
		}
		if !f.background || f.waiters > 0 {
			s.failErr, s.failUntil = err, now.Add(wait)
		}
		s.log.Warn("oauthclient: token fetch failed", "background", f.background, "err", err, "next_attempt_in", wait)
	}
	if s.flight == f {
		s.flight = nil
		s.refreshing.Store(false)
	}
	f.st, f.err = st, err
	s.mu.Unlock()
	s.obs.FetchEnd(f.ctx, res)
	close(f.done)
}

// adoptable returns the rule for taking a cached entry instead of asking
// the token endpoint: it must hold an access token other than the current
// and the rejected one, be usable now and, for a background refresh, fresh.
func (s *TokenSource) adoptable(background bool) (adopt func(*tokencache.Entry) bool, adopted func(*tokencache.Entry) *tokenState) {
	cur := s.cur.Load()
	s.mu.Lock()
	rejected := s.rejected
	s.mu.Unlock()
	// The state adopt judged is the one published: its refresh moment is
	// drawn once, so a token found fresh is not stale when published.
	var judged *tokenState
	adopt = func(e *tokencache.Entry) bool {
		if e.AccessToken == "" || e.AccessToken == rejected || (cur != nil && cur.entry.AccessToken == e.AccessToken) {
			return false
		}
		now := s.cfg.Now()
		st := s.timing.newState(e, now)
		ok := st.usable(now) && (!background || st.fresh(now))
		if ok {
			judged = st
		}
		return ok
	}
	adopted = func(e *tokencache.Entry) *tokenState {
		if judged != nil && judged.entry == e {
			return judged
		}
		return nil
	}
	return adopt, adopted
}

// Close stops the source from making token requests: a valid token is
// still returned from memory, but no background refresh starts and an
// expired token gives ErrClosed. It waits for a fetch in flight (at most
// FetchTimeout), so that a rotated refresh token is persisted and a cache
// lock released before the process exits. Safe to call more than once.
func (s *TokenSource) Close() error {
	s.mu.Lock()
	s.closed = true
	f := s.flight
	if st := s.cur.Load(); st != nil {
		st.untime() // no timer marks it stale now: the clock decides
	}
	s.mu.Unlock()
	if f != nil {
		if f.started.CompareAndSwap(false, true) {
			go s.run(f) // queued in the limiter: end it now
		}
		<-f.done
	}
	return nil
}
