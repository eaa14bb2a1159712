package oauthclient

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauthkit/oauthkit/tokencache"
)

// Refresh moments are spread over the first half of the refresh window,
// so tokens obtained together are not refreshed together.
func TestRefreshMomentsSpread(t *testing.T) {
	tm := timing{window: 0.25, maxWindow: 5 * time.Minute, jitter: jitter}
	issued := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	e := &tokencache.Entry{AccessToken: "a", Expiry: issued.Add(time.Hour), Updated: issued}
	windowStart := issued.Add(time.Hour - 10*time.Second - 5*time.Minute) // 10 s leeway, 5 min window
	lo, hi := time.Duration(1<<62), time.Duration(0)
	for i := 0; i < 2000; i++ {
		d := tm.newState(e, issued).refreshAt.Sub(windowStart)
		if d < 0 || d >= 150*time.Second {
			t.Fatalf("refresh moment %v into the window, want within its first half (150 s)", d)
		}
		lo, hi = min(lo, d), max(hi, d)
	}
	if hi-lo < 120*time.Second {
		t.Fatalf("2000 refresh moments span %v, want most of the window's first half", hi-lo)
	}
}

// A source used during its token's lifetime is refreshed in the background
// before expiry even when no request comes inside the window, so its next
// caller does not wait; a source nobody uses stops asking.
func TestQuietTenantIsRefreshedAheadAndIdleOneStops(t *testing.T) {
	srv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int64) { writeToken(w, n, 2, nil) })
	ts := newTS(t, Config{TokenURL: srv.URL}) // real clock: timers drive the refresh
	defer ts.Close()
	if tok, err := ts.Token(context.Background()); err != nil || tok.AccessToken != "tok-1" {
		t.Fatalf("first Token: %s %v", serial(tok), err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for srv.requests() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("no background refresh for a used token without requests")
		}
		time.Sleep(10 * time.Millisecond)
	}
	waitIdle(t, ts)
	// The second token is never used: after three of its lifetimes no
	// further token request has been made.
	time.Sleep(3 * time.Second)
	if got := srv.requests(); got != 2 {
		t.Fatalf("token requests for an idle source = %d, want 2", got)
	}
	// The next caller gets a token (a fetch, since the idle token expired).
	if _, err := ts.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// Background refreshes of many sources share the limiter's bound; a caller
// that needs a token now never waits behind them.
func TestBackgroundRefreshesShareABound(t *testing.T) {
	clock := newFakeClock()
	var inflight, peak atomic.Int64
	release := make(chan struct{})
	var once sync.Once
	var block atomic.Bool
	srv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		cur := inflight.Add(1)
		defer inflight.Add(-1)
		for {
			p := peak.Load()
			if cur <= p || peak.CompareAndSwap(p, cur) {
				break
			}
		}
		if block.Load() && r.Form.Get("scope") == "background" {
			<-release
		}
		writeToken(w, n, 100, nil)
	})
	// A failure below must not leave handlers blocked (the server's Close
	// would wait for them).
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	lim := NewRefreshLimiter(2)
	var sources []*TokenSource
	for i := 0; i < 20; i++ {
		ts := newTS(t, Config{TokenURL: srv.URL, Now: clock.Now, RefreshLimiter: lim, Scopes: []string{"background"}, CacheKey: "k" + itoa(int64(i))})
		if _, err := ts.Token(context.Background()); err != nil {
			once.Do(func() { close(release) })
			t.Fatal(err)
		}
		sources = append(sources, ts)
	}
	// From now on the background sources' token requests hang until released.
	block.Store(true)
	clock.Advance(80 * time.Second) // every token inside its window
	for _, ts := range sources {
		if _, err := ts.Token(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	// A source with no token needs a fetch now: the limiter is full, but
	// it is not made to wait.
	fg := newTS(t, Config{TokenURL: srv.URL, Now: clock.Now, RefreshLimiter: lim, Scopes: []string{"foreground"}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := fg.Token(ctx); err != nil {
		t.Fatalf("foreground fetch behind a full limiter: %v", err)
	}
	// A queued background refresh whose token expires is started for the
	// caller that needs it.
	clock.Advance(15 * time.Second)
	last := sources[len(sources)-1]
	done := make(chan error, 1)
	go func() { _, err := last.Token(ctx); done <- err }()
	for srv.requests() < 20+1+3 { // 20 first tokens, the foreground one, 2 running + the promoted one
		if ctx.Err() != nil {
			t.Fatal("the promoted refresh was not sent")
		}
		time.Sleep(time.Millisecond)
	}
	once.Do(func() { close(release) })
	if err := <-done; err != nil {
		t.Fatalf("Token on a source whose refresh was queued: %v", err)
	}
	for _, ts := range sources {
		waitIdle(t, ts)
	}
	if p := peak.Load(); p > 4 {
		t.Fatalf("peak token requests in flight = %d, want at most the bound (2) plus the foreground and the promoted fetch", p)
	}
}

// TestAdoptedStateIsTheJudgedOne: a cached entry a background refresh
// judged fresh is published with the refresh moment it was judged by.
// Drawn again, the moment could already have passed, and the source would
// refresh at once, which adopting the current token cannot do: a token
// request.
func TestAdoptedStateIsTheJudgedOne(t *testing.T) {
	clock := newFakeClock()
	ts := newTS(t, Config{TokenURL: "https://as.example.test/token", Now: clock.Now})
	draws := 0
	ts.timing.jitter = func(d time.Duration) time.Duration {
		draws++
		if draws == 1 {
			return d - 1 // the latest moment for the judgement
		}
		return 0 // the earliest for any other draw
	}
	now := clock.Now()
	// A one-hour token in the first half of its refresh window: fresh by
	// the latest moment, stale by the earliest.
	e := &tokencache.Entry{AccessToken: "other-process", TokenType: "Bearer", Updated: now.Add(-56 * time.Minute), Expiry: now.Add(4 * time.Minute)}
	adopt, adopted := ts.adoptable(true)
	if !adopt(e) {
		t.Fatal("the entry was not judged fresh by the latest refresh moment")
	}
	st := adopted(e)
	if st == nil || !st.fresh(now) {
		t.Fatal("the published state is not the one judged fresh")
	}
	if adopted(&tokencache.Entry{AccessToken: "other"}) != nil {
		t.Fatal("a state returned for an entry that was not judged")
	}
}
