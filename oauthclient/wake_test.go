package oauthclient

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/oauthkit/oauthkit/tokencache"
)

// TestLifetimeInstantsAreWallClock: a token's refresh and expiry instants
// carry no monotonic reading, so comparing them with time.Now() compares
// wall clocks. With a monotonic reading, a machine that slept past the
// expiry would still find the token fresh (the monotonic clock stops
// during a suspend).
func TestLifetimeInstantsAreWallClock(t *testing.T) {
	now := time.Now() // with a monotonic reading
	e := &tokencache.Entry{AccessToken: "a", TokenType: "Bearer", Expiry: now.Add(time.Hour), Updated: now}
	st := timing{window: 0.1, maxWindow: time.Hour}.newState(e, now)
	for name, at := range map[string]time.Time{"refreshAt": st.refreshAt, "expireAt": st.expireAt} {
		if strings.Contains(at.String(), "m=") {
			t.Errorf("%s has a monotonic reading: %s", name, at)
		}
	}
}

// simulateSleep makes the timer watcher see the wall clock run ahead of
// the monotonic one by the returned function's argument, as after a
// suspend, and checks every 10 ms; undone at the end of the test.
func simulateSleep(t *testing.T) func(time.Duration) {
	var ahead atomic.Int64
	w := armedTimers
	w.mu.Lock()
	read, every := w.read, w.every
	w.read = func() clockReading {
		r := read()
		r.wall = r.wall.Add(time.Duration(ahead.Load()))
		return r
	}
	w.every = 10 * time.Millisecond
	w.mu.Unlock()
	t.Cleanup(func() {
		w.mu.Lock()
		w.read, w.every = read, every
		w.mu.Unlock()
	})
	return func(d time.Duration) { ahead.Add(int64(d)) }
}

// TestSleepPastRefreshMomentRefreshes: a machine that sleeps past a used
// token's refresh moment (here: the wall clock jumps two hours while the
// monotonic clock, and so the runtime's timers, stood still) lets the held
// token go and refreshes at once, instead of sending it until its
// 55-minute timer finally fires.
func TestSleepPastRefreshMomentRefreshes(t *testing.T) {
	sleep := simulateSleep(t)
	srv, ts := lifetimeSource(t, 3600)
	rec := &authRecorder{}
	tr := &Transport{Source: ts, Base: rec}
	sendAuth(t, tr, rec)
	if tr.fast.Load() == nil {
		t.Fatal("token not held")
	}
	time.Sleep(50 * time.Millisecond) // some ticks without a jump: nothing happens
	if srv.requests() != 1 || tr.fast.Load() == nil {
		t.Fatalf("without a jump: %d token requests, held %v", srv.requests(), tr.fast.Load() != nil)
	}
	sleep(2 * time.Hour)
	waitForToken(t, srv, ts, "Bearer tok-2", 5*time.Second)
	if got := sendAuth(t, tr, rec); got != "Bearer tok-2" {
		t.Fatalf("after the jump the Transport sent %q", got)
	}
}

// TestSleepFiresOnlyDueTimersOfUsedTokens: a jump short of the refresh
// moment fires nothing; a jump past it refreshes a used token, and an
// unused one (seeded, never handed out) is left to expire: the idle-source
// rule holds after a sleep.
func TestSleepFiresOnlyDueTimersOfUsedTokens(t *testing.T) {
	sleep := simulateSleep(t)
	srvUsed, used := lifetimeSource(t, 3600)
	srvIdle, idle := lifetimeSource(t, 3600)
	if _, err := used.Token(t.Context()); err != nil {
		t.Fatal(err)
	}
	seeded := &oauth2.Token{AccessToken: "seeded", TokenType: "Bearer", Expiry: time.Now().Add(time.Hour)}
	if err := idle.Seed(t.Context(), seeded); err != nil {
		t.Fatal(err)
	}
	sleep(10 * time.Minute) // short of the refresh moments (54m50s or later)
	time.Sleep(100 * time.Millisecond)
	if srvUsed.requests() != 1 {
		t.Fatalf("a jump short of the refresh moment refreshed: %d token requests", srvUsed.requests())
	}
	sleep(2 * time.Hour)
	deadline := time.Now().Add(5 * time.Second)
	for srvUsed.requests() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the used token was not refreshed after the jump")
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	if srvIdle.requests() != 0 {
		t.Fatalf("the unused token was refreshed after the jump (%d token requests)", srvIdle.requests())
	}
	if idle.cur.Load().hot() {
		t.Fatal("the unused token is still hot after its refresh moment passed")
	}
}
