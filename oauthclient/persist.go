package oauthclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/oauthkit/oauthkit/tokencache"
)

// tier is the persistent tier of a TokenSource: the Cache, its lock, and
// the newest refresh token. The newest entry this process knows lives here,
// in one place, apart from the access-token state: dropping an access token
// (a 401, Invalidate) never drops its refresh token, and a cache that
// cannot be written (Redis down, keychain locked) never makes the source
// fall back to an older refresh token. Safe for concurrent use.
type tier struct {
	cache    tokencache.Cache // nil: memory only
	locker   tokencache.Locker
	leases   tokencache.LeaseLocker
	key      string
	timeout  time.Duration // CacheTimeout: one Load, Store or lock round trip
	lockWait time.Duration // how long to wait for a lock another holder has
	rotating bool          // the grant redeems refresh tokens
	log      *slog.Logger
	obs      Observer

	mu      sync.Mutex        // guards newest, unsaved and downUntil
	newest  *tokencache.Entry // newest entry known, with its refresh token
	unsaved bool              // newest has not reached the cache
	// downUntil: the cache did not answer within timeout; until then it is
	// skipped (load, lock and store), so that a hung cache costs one
	// timeout per cacheRetry, not one per operation.
	downUntil time.Time
}

// obtainRequest is what the state machine asks of the tier for one fetch.
type obtainRequest struct {
	// adopt reports whether a cached entry may be used instead of a token
	// request (another process refreshed it).
	adopt func(*tokencache.Entry) bool
	// gone is closed when no caller waits any more (nil: background).
	gone <-chan struct{}
}

// obtain returns a usable entry: one another process stored, or a new one
// from the token endpoint, persisted before it is returned. fetched tells
// which. Order: load, lock, re-check, hold, request, store, unlock.
func (t *tier) obtain(ctx context.Context, r obtainRequest, f *fetcher) (e *tokencache.Entry, fetched bool, err error) {
	var lease tokencache.Lease
	if adopt := r.adopt; adopt != nil {
		// Never adopt an access token bound to another DPoP key.
		r.adopt = func(e *tokencache.Entry) bool { return f.boundHere(e) && adopt(e) }
	}
	if t.cache != nil && t.up() {
		if e := t.check(ctx, r.adopt, ""); e != nil {
			return e, false, nil
		}
		if !t.up() {
			// The load just timed out: no lock either.
		} else if lease, err = t.lock(ctx); err != nil {
			return nil, false, err
		}
		if lease != nil {
			defer t.unlock(lease)
			if e := t.check(ctx, r.adopt, "under the lock"); e != nil {
				return e, false, nil
			}
		}
	}
	prev := t.latest()
	req := fetchRequest{prev: prev, gone: r.gone}
	if lease != nil {
		req.hold = func(ctx context.Context) error { return t.hold(ctx, lease) }
	}
	raw, issued, err := f.fetch(ctx, req)
	if err != nil {
		return nil, false, err
	}
	e = entryFromResponse(raw, issued)
	e.Thumbprint = f.thumbprint()
	if t.rotating && e.RefreshToken == "" && prev != nil {
		e.RefreshToken = prev.RefreshToken
	}
	t.save(ctx, lease, e)
	return e, true, nil
}

// check loads the cached entry, makes it the newest known unless this
// process holds a newer one it could not save, and returns it if adopt
// accepts it.
func (t *tier) check(ctx context.Context, adopt func(*tokencache.Entry) bool, when string) *tokencache.Entry {
	e := t.load(ctx, when)
	if e == nil {
		return nil
	}
	t.mu.Lock()
	if !t.unsaved {
		t.newest = e
	}
	t.mu.Unlock()
	if adopt != nil && adopt(e) {
		t.log.Debug("oauthclient: token taken from cache", "expiry", e.Expiry)
		return e
	}
	return nil
}

// load reads the entry; when says which read it is in log lines.
func (t *tier) load(ctx context.Context, when string) *tokencache.Entry {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	e, err := t.cache.Load(ctx, t.key)
	t.noteTimeout(ctx, err)
	t.obs.CacheLoad(ctx, CacheEvent{Hit: err == nil, Failed: err != nil && !errors.Is(err, tokencache.ErrNotFound)})
	switch {
	case err == nil:
		return e
	case errors.Is(err, tokencache.ErrNotFound):
		if when == "" {
			t.log.Debug("oauthclient: cache miss")
		} else {
			t.log.Debug("oauthclient: cache miss " + when)
		}
	case errors.Is(err, tokencache.ErrCorrupt):
		t.log.Warn("oauthclient: unreadable cache entry ignored", "err", err)
	default:
		t.log.Warn("oauthclient: cache load failed", "err", err)
	}
	return nil
}

// lock takes the cache's cross-process lock. It returns a nil Lease, and
// no error, when the fetch should go on without the lock (a cache with no
// lock, a lock service that does not answer, or a busy lock for a grant
// that cannot redeem anything twice); an error when it must stop.
func (t *tier) lock(ctx context.Context) (tokencache.Lease, error) {
	if t.leases == nil && t.locker == nil {
		return nil, nil
	}
	lctx, cancel := context.WithTimeout(ctx, t.lockWait)
	defer cancel()
	start := time.Now()
	var lease tokencache.Lease
	var err error
	if t.leases != nil {
		lease, err = t.leases.LockLease(lctx, t.key, t.timeout)
	} else {
		lease, err = lockFunc(lctx, t.locker, t.cache, t.key)
	}
	ev := LockEvent{Wait: time.Since(start), Outcome: LockFailed}
	switch {
	case err == nil:
		ev.Outcome = LockAcquired
	case errors.Is(err, tokencache.ErrUnavailable):
		ev.Outcome = LockUnavailable
	case lctx.Err() != nil && ctx.Err() == nil:
		ev.Outcome = LockTimeout
	}
	t.obs.LockWait(ctx, ev)
	if errors.Is(err, tokencache.ErrUnavailable) {
		t.markDown()
	}
	switch {
	case err == nil:
		return lease, nil
	case ctx.Err() != nil:
		return nil, fmt.Errorf("oauthclient: wait for cache lock: %w", ctx.Err())
	case errors.Is(err, tokencache.ErrUnavailable):
		t.log.Warn("oauthclient: cache lock unavailable; fetching without it", "err", err)
		return nil, nil
	case lctx.Err() != nil && t.rotating:
		return nil, ErrLockTimeout
	case lctx.Err() != nil:
		t.log.Warn("oauthclient: cache lock held elsewhere for too long; fetching without it", "waited", t.lockWait)
		return nil, nil
	case t.rotating:
		// A refresh token is never redeemed without a lock that could not
		// be taken for a reason other than unavailability (an untrusted
		// lock file, a refused key): another holder may be redeeming it.
		return nil, fmt.Errorf("oauthclient: cache lock: %w", err)
	default:
		t.log.Warn("oauthclient: cache lock failed; fetching without it", "err", err)
		return nil, nil
	}
}

// hold makes sure the lease still holds, and will for the rest of the
// fetch, right before a refresh token is sent.
func (t *tier) hold(ctx context.Context, lease tokencache.Lease) error {
	d := t.lockWait * 2
	if dl, ok := ctx.Deadline(); ok {
		d = time.Until(dl)
	}
	hctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	if err := lease.Hold(hctx, d); err != nil {
		return fmt.Errorf("oauthclient: refresh token not sent: cache lock not confirmed: %w", err)
	}
	return nil
}

func (t *tier) unlock(lease tokencache.Lease) {
	if err := lease.Unlock(); err != nil {
		t.log.Warn("oauthclient: release cache lock", "err", err)
	}
}

// save makes e the newest entry and persists it, through the lease when
// one is held (a fenced write). A failure is logged and e stays the newest
// in memory; the next fetch redeems its refresh token, not an older one.
// The write is not cancelled with ctx: a rotated refresh token must reach
// the cache even if the fetch's deadline passed meanwhile.
func (t *tier) save(ctx context.Context, lease tokencache.Lease, e *tokencache.Entry) {
	t.remember(e)
	if t.cache == nil {
		return
	}
	if !t.up() && e.RefreshToken == "" {
		// The cache did not answer moments ago; an access token alone is
		// not worth another wait. A refresh token is: another process must
		// not redeem the one it replaced.
		t.log.Warn("oauthclient: cache not answering; the new token is kept in memory")
		return
	}
	if err := t.store(context.WithoutCancel(ctx), lease, e); err != nil {
		t.log.Error("oauthclient: could not persist the new token; it is kept in memory", "err", err)
	}
}

// remember makes e the newest entry, not yet saved.
func (t *tier) remember(e *tokencache.Entry) {
	t.mu.Lock()
	t.newest, t.unsaved = e, true
	t.mu.Unlock()
}

// store writes e, through the lease when one is held (a fenced write),
// bounded by the cache timeout, and marks it saved.
func (t *tier) store(ctx context.Context, lease tokencache.Lease, e *tokencache.Entry) error {
	sctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	var err error
	if lease != nil {
		err = lease.Store(sctx, e)
	} else {
		err = t.cache.Store(sctx, t.key, e)
	}
	t.noteTimeout(sctx, err)
	if err != nil {
		return err
	}
	t.mu.Lock()
	if t.newest == e {
		t.unsaved = false
	}
	t.mu.Unlock()
	return nil
}

// cacheRetry is how long a cache that did not answer within CacheTimeout
// is left alone before it is tried again.
const cacheRetry = 30 * time.Second

// up reports whether the cache is worth asking now.
func (t *tier) up() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.downUntil.IsZero() || time.Now().After(t.downUntil)
}

// noteTimeout marks the cache down when an operation with ctx (bounded by
// timeout) ended because the cache did not answer in time.
func (t *tier) noteTimeout(ctx context.Context, err error) {
	if err != nil && (errors.Is(err, tokencache.ErrUnavailable) || errors.Is(ctx.Err(), context.DeadlineExceeded)) {
		t.markDown()
	}
}

func (t *tier) markDown() {
	t.mu.Lock()
	first := t.downUntil.IsZero() || time.Now().After(t.downUntil)
	t.downUntil = time.Now().Add(cacheRetry)
	t.mu.Unlock()
	if first {
		t.log.Warn("oauthclient: cache not answering; using memory only for a while", "retry_in", cacheRetry)
	}
}

// seed makes e the newest entry and stores it, returning the cache's error.
func (t *tier) seed(ctx context.Context, e *tokencache.Entry) error {
	t.remember(e)
	if t.cache == nil {
		return nil
	}
	return t.store(ctx, nil, e)
}

// latest returns the newest entry known in memory (nil if none).
func (t *tier) latest() *tokencache.Entry {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.newest
}

// current returns the newest entry, consulting the cache first.
func (t *tier) current(ctx context.Context) *tokencache.Entry {
	if t.cache != nil {
		t.check(ctx, nil, "")
	}
	return t.latest()
}

// forget drops the newest entry from memory and the cache.
func (t *tier) forget(ctx context.Context) error {
	t.mu.Lock()
	t.newest, t.unsaved = nil, false
	t.mu.Unlock()
	if t.cache == nil {
		return nil
	}
	return t.cache.Delete(ctx, t.key)
}

// lockFunc takes a plain tokencache.Locker's lock as a Lease. The lock is
// taken in its own goroutine so that a Locker that ignores ctx (a stuck
// lock service) cannot hold the fetch past ctx; a lock it gets after ctx
// ended is released at once.
func lockFunc(ctx context.Context, l tokencache.Locker, c tokencache.Cache, key string) (tokencache.Lease, error) {
	type result struct {
		unlock func() error
		err    error
	}
	ch := make(chan result, 1)
	go func() {
		u, err := l.Lock(ctx, key)
		ch <- result{u, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, r.err
		}
		return &lockerLease{cache: c, key: key, unlock: r.unlock}, nil
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.err == nil {
				r.unlock()
			}
		}()
		return nil, ctx.Err()
	}
}

// lockerLease is the Lease of a lock that cannot be lost while its holder
// lives (an flock the kernel keeps until the process exits): Hold has
// nothing to check and Store is the cache's Store.
type lockerLease struct {
	cache  tokencache.Cache
	key    string
	unlock func() error
}

func (l *lockerLease) Hold(context.Context, time.Duration) error { return nil }

func (l *lockerLease) Store(ctx context.Context, e *tokencache.Entry) error {
	return l.cache.Store(ctx, l.key, e)
}

func (l *lockerLease) Unlock() error { return l.unlock() }
