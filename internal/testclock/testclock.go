// Package testclock is a settable clock for tests, to pass as
// oauthclient.Config.Now or oauthtest.Server.SetNow so that tests of
// expiry never sleep through real lifetimes. A Clock is safe for
// concurrent use.
package testclock

import (
	"sync"
	"time"
)

// Clock stands still until Advance moves it.
type Clock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

// New returns a clock that reads start.
func New(start time.Time) *Clock { return &Clock{t: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
