package oauthclient

import (
	"errors"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/oauthkit/oauthkit/tokencache"
)

// RetryPolicy controls retries of token-endpoint calls and the waits after
// failed fetches. Only temporary failures are retried: 5xx, 429, timeouts
// and connection errors. A 4xx such as invalid_client, invalid_grant,
// invalid_scope or unauthorized_client is permanent. Sleeps never outlast
// the caller's context.
type RetryPolicy struct {
	// MaxAttempts is the most requests for one fetch, the first included.
	// 1 disables retries. Default 5.
	MaxAttempts int
	// InitialInterval is the first backoff delay. Default 250 ms.
	InitialInterval time.Duration
	// MaxInterval caps one backoff delay, and so the wait between fetches
	// during an outage. Default 10 s.
	MaxInterval time.Duration
	// MaxElapsed caps the time spent retrying one fetch. Default 30 s.
	MaxElapsed time.Duration
	// MaxRetryAfter caps how long a server's Retry-After (either form) is
	// honoured, within a fetch and between fetches. Default 60 s.
	MaxRetryAfter time.Duration
}

// DefaultRetryPolicy is used when Config.Retry is nil: 5 attempts,
// exponential backoff from 250 ms (factor 2, ±50 % jitter, at most 10 s per
// wait, 30 s in all), Retry-After honoured up to 60 s.
var DefaultRetryPolicy = RetryPolicy{
	MaxAttempts:     5,
	InitialInterval: 250 * time.Millisecond,
	MaxInterval:     10 * time.Second,
	MaxElapsed:      30 * time.Second,
	MaxRetryAfter:   60 * time.Second,
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	d := DefaultRetryPolicy
	if p.MaxAttempts > 0 {
		d.MaxAttempts = p.MaxAttempts
	}
	if p.InitialInterval > 0 {
		d.InitialInterval = p.InitialInterval
	}
	if p.MaxInterval > 0 {
		d.MaxInterval = p.MaxInterval
	}
	if p.MaxElapsed > 0 {
		d.MaxElapsed = p.MaxElapsed
	}
	if p.MaxRetryAfter > 0 {
		d.MaxRetryAfter = p.MaxRetryAfter
	}
	return d
}

// capRetryAfter limits a server's Retry-After to the policy: the one place
// where it is capped, whichever form it came in.
func (p RetryPolicy) capRetryAfter(d time.Duration) time.Duration {
	return max(0, min(d, p.MaxRetryAfter))
}

// schedule is a backoff schedule (cenkalti/backoff). A source has two, of
// the same policy: one for the token endpoint (a retry inside a fetch, a
// failed fetch; a successful fetch resets it) and one for tokens that
// resource servers reject (reset only when a token worked: a successful
// fetch proves nothing about whether the next token will be accepted). So
// the token endpoint sees requests at an even, growing spacing during an
// outage, never bursts at the callers' rate. Safe for concurrent use.
type schedule struct {
	pol RetryPolicy
	mu  sync.Mutex // guards b
	b   *backoff.ExponentialBackOff
}

func newSchedule(p RetryPolicy) *schedule {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = p.InitialInterval
	b.MaxInterval = p.MaxInterval
	b.MaxElapsedTime = 0 // the schedule never stops; fetches stop by MaxAttempts and MaxElapsed
	b.Multiplier = 2
	b.RandomizationFactor = 0.5
	b.Reset()
	return &schedule{pol: p, b: b}
}

// next returns the delay before the next attempt, at least retryAfter
// (capped by the policy).
func (s *schedule) next(retryAfter time.Duration) time.Duration {
	s.mu.Lock()
	d := s.b.NextBackOff()
	s.mu.Unlock()
	return max(d, s.pol.capRetryAfter(retryAfter))
}

// reset starts the schedule over after a success.
func (s *schedule) reset() {
	s.mu.Lock()
	s.b.Reset()
	s.mu.Unlock()
}

// retryable reports whether err is worth another attempt.
func retryable(err error) bool {
	var te *TokenError
	if errors.As(err, &te) {
		return te.Temporary()
	}
	return errors.Is(err, ErrExpiredOnArrival) || errors.Is(err, ErrLockTimeout) ||
		errors.Is(err, tokencache.ErrLockLost) || errors.Is(err, tokencache.ErrUnavailable)
}

// retryAfterOf returns the Retry-After a failed token request carried.
func retryAfterOf(err error) time.Duration {
	var te *TokenError
	if errors.As(err, &te) {
		return te.RetryAfter
	}
	return 0
}
