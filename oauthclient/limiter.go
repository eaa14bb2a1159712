package oauthclient

import (
	"errors"
	"sync"
)

// RefreshLimiter bounds how many background refreshes run at once across
// the token sources that share it. A background refresh can wait, since its
// callers still hold a valid token; waiting refreshes are queued, not
// parked in goroutines, so ten thousand sources whose tokens were obtained
// together cost at most the bound in goroutines and token requests in
// flight. Fetches that callers wait for (no usable token) never wait for
// the limiter: a queued background refresh that a caller comes to need is
// started at once.
//
// A RefreshLimiter is safe for concurrent use. Its zero value is not
// usable; create one with NewRefreshLimiter.
type RefreshLimiter struct {
	max int

	mu      sync.Mutex // guards the fields below
	running int
	queue   []func()
}

// DefaultRefreshLimiter is shared by every TokenSource whose
// Config.RefreshLimiter is nil: 16 background refreshes at once per
// process, enough for a 2-core machine talking to a few token endpoints.
// It is the only state this package shares between sources. Engines that
// serve many tenants may set their own, larger limiter, and should give
// the token endpoint an http.Client whose Transport keeps more idle
// connections per host (MaxIdleConnsPerHost) than net/http's default of 2.
var DefaultRefreshLimiter = NewRefreshLimiter(16)

// NewRefreshLimiter returns a limiter that runs at most n background
// refreshes at once. n must be at least 1.
func NewRefreshLimiter(n int) *RefreshLimiter {
	if n < 1 {
		panic(errors.New("oauthclient: NewRefreshLimiter: n must be at least 1"))
	}
	return &RefreshLimiter{max: n}
}

// submit runs job now if fewer than max jobs run, else queues it (FIFO).
// A job started later runs on the goroutine of one that finished.
func (l *RefreshLimiter) submit(job func()) {
	l.mu.Lock()
	if l.running < l.max {
		l.running++
		l.mu.Unlock()
		go l.work(job)
		return
	}
	l.queue = append(l.queue, job)
	l.mu.Unlock()
}

func (l *RefreshLimiter) work(job func()) {
	for job != nil {
		job()
		l.mu.Lock()
		if len(l.queue) == 0 {
			l.running--
			job = nil
		} else {
			job = l.queue[0]
			l.queue[0] = nil
			l.queue = l.queue[1:]
		}
		l.mu.Unlock()
	}
}
