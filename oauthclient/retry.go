package oauthclient

import (
	"errors"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// RetryPolicy controls retries of token-endpoint calls. Only temporary
// failures are retried: 5xx, 429, timeouts and connection errors. A 4xx such
// as invalid_client, invalid_grant, invalid_scope or unauthorized_client is
// permanent. Sleeps never outlast the caller's context.
type RetryPolicy struct {
	// MaxAttempts is the most requests for one fetch, the first included.
	// 1 disables retries. Default 5.
	MaxAttempts int
	// InitialInterval is the first backoff delay. Default 250 ms.
	InitialInterval time.Duration
	// MaxInterval caps one backoff delay. Default 10 s.
	MaxInterval time.Duration
	// MaxElapsed caps the time spent retrying one fetch. Default 30 s.
	MaxElapsed time.Duration
	// MaxRetryAfter is the longest Retry-After that is waited for; a longer
	// one ends the fetch with the error (its RetryAfter set). Default 60 s.
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

// newBackOff starts at initial: InitialInterval for a first fetch, the
// current cool-down after failed fetches, so a long outage sees requests at
// an even, growing spacing rather than bursts.
func (p RetryPolicy) newBackOff(initial time.Duration) *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = initial
	b.MaxInterval = p.MaxInterval
	b.MaxElapsedTime = p.MaxElapsed
	b.Multiplier = 2
	b.RandomizationFactor = 0.5
	b.Reset()
	return b
}

// cooldown is the wait after n consecutive failed fetches: the backoff
// schedule without jitter, so an outage sees requests at that rate.
func (p RetryPolicy) cooldown(n int) time.Duration {
	d := p.InitialInterval
	for i := 1; i < n && d < p.MaxInterval; i++ {
		d *= 2
	}
	if d > p.MaxInterval {
		d = p.MaxInterval
	}
	return d
}

// retryable reports whether err is worth another attempt.
func retryable(err error) bool {
	var te *TokenError
	return errors.As(err, &te) && te.Temporary()
}
