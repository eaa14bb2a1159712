package oauthclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/oauthkit/oauthkit/internal/testclock"
	"github.com/oauthkit/oauthkit/tokencache"
)

// rotatingServer is a strict rotating-refresh-token endpoint: every refresh
// token is valid once; redeeming a used one is reuse (counted) and
// invalid_grant.
type rotatingServer struct {
	*tokenServer
	mu      sync.Mutex
	valid   map[string]bool // refresh tokens not yet redeemed
	used    map[string]bool
	reuse   atomic.Int64
	revoked []string
}

func newRotatingServer(t *testing.T, initial string, lifetime int) *rotatingServer {
	rs := &rotatingServer{valid: map[string]bool{initial: true}, used: map[string]bool{}}
	rs.tokenServer = newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		switch r.URL.Path {
		case "/revoke":
			rs.mu.Lock()
			rs.revoked = append(rs.revoked, r.Form.Get("token"))
			rs.mu.Unlock()
			return
		}
		rt := r.Form.Get("refresh_token")
		rs.mu.Lock()
		ok := rs.valid[rt]
		if ok {
			delete(rs.valid, rt)
			rs.used[rt] = true
			rs.valid[fmt.Sprintf("rt-%d", n)] = true
		} else if rs.used[rt] {
			rs.reuse.Add(1)
		}
		rs.mu.Unlock()
		if !ok {
			writeError(w, http.StatusBadRequest, "invalid_grant")
			return
		}
		writeToken(w, n, lifetime, map[string]any{"refresh_token": fmt.Sprintf("rt-%d", n)})
	})
	return rs
}

// failingCache fails every call, as a Redis that is down or a locked
// keychain would.
type failingCache struct{}

func (failingCache) Load(context.Context, string) (*tokencache.Entry, error) {
	return nil, errors.New("cache down")
}
func (failingCache) Store(context.Context, string, *tokencache.Entry) error {
	return errors.New("cache down")
}
func (failingCache) Delete(context.Context, string) error { return errors.New("cache down") }

// Dropping an access token (a 401, Invalidate) never drops the rotated
// refresh token that came with it, with no cache or a failing one.
func TestInvalidateKeepsRotatedRefreshToken(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cache tokencache.Cache
	}{{"no cache", nil}, {"failing cache", failingCache{}}} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRotatingServer(t, "rt-0", 3600)
			ts := newTS(t, Config{TokenURL: srv.URL, Grant: RefreshToken{Token: "rt-0"}, Cache: tc.cache, CacheKey: "k"})
			tok, err := ts.Token(context.Background())
			if err != nil {
				t.Fatalf("first Token: %v", err)
			}
			ts.Invalidate(tok)
			tok2, err := ts.Token(context.Background())
			if err != nil {
				t.Fatalf("Token after Invalidate: %v", err)
			}
			if tok2.AccessToken != "tok-2" || srv.reuse.Load() != 0 {
				t.Fatalf("got %s, reuse detections %d; want token #2 and none", serial(tok2), srv.reuse.Load())
			}
		})
	}
}

// A 401 through the Transport heals with the rotated refresh token.
func TestTransport401KeepsRotatedRefreshToken(t *testing.T) {
	srv := newRotatingServer(t, "rt-0", 3600)
	var calls atomic.Int64
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 2 { // the second call is rejected once
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer api.Close()
	ts := newTS(t, Config{TokenURL: srv.URL, Grant: RefreshToken{Token: "rt-0"}})
	c := ts.Client(nil)
	for i := 0; i < 3; i++ {
		resp, err := c.Get(api.URL)
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("call %d: status %d", i, resp.StatusCode)
		}
	}
	if srv.reuse.Load() != 0 || srv.requests() != 2 {
		t.Fatalf("token requests %d, reuse detections %d; want 2 and 0", srv.requests(), srv.reuse.Load())
	}
}

// Seed of a refresh-only token without a cache keeps it: the next Token
// redeems it and Revoke revokes it. Seed also lifts a reauth cool-down.
func TestSeedRefreshOnlyTokenWithoutCache(t *testing.T) {
	srv := newRotatingServer(t, "rt-seed", 3600)
	ts := newTS(t, Config{TokenURL: srv.URL, Grant: RefreshToken{}, RevocationURL: srv.URL + "/revoke"})
	if _, err := ts.Token(context.Background()); !errors.Is(err, ErrReauthRequired) {
		t.Fatalf("Token before Seed: %v, want ErrReauthRequired", err)
	}
	if err := ts.Seed(context.Background(), &oauth2.Token{RefreshToken: "rt-seed"}); err != nil {
		t.Fatalf("Seed: %v", err)
	}
	tok, err := ts.Token(context.Background())
	if err != nil || tok.AccessToken == "" {
		t.Fatalf("Token after Seed: %v", err)
	}
	if err := ts.Revoke(context.Background()); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.revoked) != 1 || srv.revoked[0] != fmt.Sprintf("rt-%d", srv.requests()-1) {
		t.Fatalf("revoked %d tokens, want the newest refresh token", len(srv.revoked))
	}
}

// A pointer to a grant behaves like the grant.
func TestPointerGrantKeepsBehaviour(t *testing.T) {
	srv := newRotatingServer(t, "rt-0", 3600)
	ts := newTS(t, Config{TokenURL: srv.URL, Grant: &RefreshToken{Token: "unknown"}})
	_, err := ts.Token(context.Background())
	var te *TokenError
	if !errors.Is(err, ErrReauthRequired) || !errors.As(err, &te) {
		t.Fatalf("err = %v, want ErrReauthRequired and *TokenError", err)
	}
	if _, err := NewTokenSource(Config{TokenURL: srv.URL, ClientID: "c", Grant: &JWTBearer{}}); err == nil {
		t.Fatal("NewTokenSource accepted a *JWTBearer without Signer")
	}
	if _, err := NewTokenSource(Config{TokenURL: srv.URL, ClientID: "c", Auth: &ClientSecretBasic{}}); err == nil {
		t.Fatal("NewTokenSource accepted a *ClientSecretBasic without Secret")
	}
}

// A Retry-After far in the future never disables the source for longer than
// the retry policy allows.
func TestRetryAfterIsCapped(t *testing.T) {
	for _, ra := range []string{"Fri, 31 Dec 9999 23:59:59 GMT", "86400", "999999999999"} {
		t.Run(ra, func(t *testing.T) {
			clock := newFakeClock()
			srv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int64) {
				if n == 1 {
					w.Header().Set("Retry-After", ra)
					writeError(w, http.StatusServiceUnavailable, "temporarily_unavailable")
					return
				}
				writeToken(w, n, 3600, nil)
			})
			pol := &RetryPolicy{MaxAttempts: 1, MaxRetryAfter: 2 * time.Second}
			ts := newTS(t, Config{TokenURL: srv.URL, Now: clock.Now, Retry: pol})
			if _, err := ts.Token(context.Background()); err == nil {
				t.Fatal("first Token: no error")
			}
			clock.Advance(pol.MaxRetryAfter + time.Second)
			if _, err := ts.Token(context.Background()); err != nil {
				t.Fatalf("Token after the capped wait: %v", err)
			}
			if srv.requests() != 2 {
				t.Fatalf("token requests = %d, want 2", srv.requests())
			}
		})
	}
}

// A resource server that always answers 401 sees the token endpoint called
// at the backoff schedule, not once per API call.
func Test401StormFollowsBackoff(t *testing.T) {
	clock := newFakeClock()
	srv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int64) { writeToken(w, n, 3600, nil) })
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer api.Close()
	ts := newTS(t, Config{TokenURL: srv.URL, Now: clock.Now})
	c := ts.Client(nil)
	for i := 0; i < 200; i++ {
		resp, err := c.Get(api.URL)
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("call %d: status %d, want the 401", i, resp.StatusCode)
		}
	}
	// The clock stands still: one token, one replacement after the first
	// rejection, then nothing until the backoff delay has passed.
	if got := srv.requests(); got != 2 {
		t.Fatalf("token requests for 200 rejected calls = %d, want 2", got)
	}
	clock.Advance(DefaultRetryPolicy.MaxInterval + time.Second)
	resp, err := c.Get(api.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := srv.requests(); got != 3 {
		t.Fatalf("token requests after the backoff delay = %d, want 3", got)
	}
}

// blockingLocker is a cache whose lock never comes: a stopped holder.
type blockingLocker struct {
	*tokencache.Memory
	release chan struct{}
}

func (b *blockingLocker) Lock(ctx context.Context, key string) (func() error, error) {
	<-b.release // ignores ctx, like a stuck lock service
	return func() error { return nil }, nil
}

// The 401 path honours the request's context, whatever the cache does.
func Test401PathHonoursRequestContext(t *testing.T) {
	srv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int64) { writeToken(w, n, 3600, nil) })
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer api.Close()
	cache := &blockingLocker{Memory: tokencache.NewMemory(), release: make(chan struct{})}
	defer close(cache.release)
	ts := newTS(t, Config{TokenURL: srv.URL, CacheKey: "k"})
	// Prime memory with a token, then put the cache with the stuck lock behind it.
	if _, err := ts.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Every bound but the request's context is an hour or more, so only
	// honouring that context ends the call within the guard below.
	ts2 := newTS(t, Config{TokenURL: srv.URL, CacheKey: "k", Cache: cache, FetchTimeout: time.Hour, CacheTimeout: time.Hour})
	tok, _ := ts.Token(context.Background())
	if err := ts2.Seed(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, api.URL, nil)
	type result struct {
		status int
		err    error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := ts2.Client(nil).Do(req)
		if err != nil {
			done <- result{0, err}
			return
		}
		resp.Body.Close()
		done <- result{resp.StatusCode, nil}
	}()
	select {
	case r := <-done:
		// Either the original 401 (no other token could be had in time) or
		// the request's own deadline.
		if r.err != nil && !errors.Is(r.err, context.DeadlineExceeded) || r.err == nil && r.status != http.StatusUnauthorized {
			t.Fatalf("got status %d, error %v; want the 401 or the request's deadline", r.status, r.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("RoundTrip did not return on its request's context with the cache lock stuck")
	}
}

// A token that is already expired when it arrives is a failed fetch: the
// source backs off instead of asking again on every call.
func TestExpiredOnArrivalBacksOff(t *testing.T) {
	clock := newFakeClock()
	past := clock.Now().Add(-time.Hour).Unix()
	jwt := b64(`{"alg":"none"}`) + "." + b64(fmt.Sprintf(`{"exp":%d}`, past)) + ".sig"
	srv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer"}`, jwt)
	})
	ts := newTS(t, Config{TokenURL: srv.URL, Now: clock.Now, Retry: fastRetry})
	var lastErr error
	for i := 0; i < 100; i++ {
		_, lastErr = ts.Token(context.Background())
	}
	if lastErr == nil {
		t.Fatal("an expired token was handed out")
	}
	if got := srv.requests(); got > 5 {
		t.Fatalf("token requests for 100 calls = %d, want at most one fetch's attempts", got)
	}
}

// A lock that gets no answer costs a token request, not a failure: the
// lock wait is bounded so that the fetch still has time to run.
func TestStuckLockCostsATokenRequest(t *testing.T) {
	srv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int64) { writeToken(w, n, 3600, nil) })
	cache := &blockingLocker{Memory: tokencache.NewMemory(), release: make(chan struct{})}
	defer close(cache.release)
	ts := newTS(t, Config{TokenURL: srv.URL, Cache: cache, FetchTimeout: 2 * time.Second, CacheTimeout: 100 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tok, err := ts.Token(ctx)
	if err != nil || tok.AccessToken != "tok-1" {
		t.Fatalf("Token with a stuck lock: %v", err)
	}
}

// slowLoadCache hangs on Load (a Redis that stopped answering reads) and
// counts the Stores it gets.
type slowLoadCache struct {
	tokencache.Memory
	stores atomic.Int64
}

func (c *slowLoadCache) Load(ctx context.Context, _ string) (*tokencache.Entry, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func (c *slowLoadCache) Store(context.Context, string, *tokencache.Entry) error {
	c.stores.Add(1)
	return nil
}

// A cache that did not answer is skipped for a while, but a rotated refresh
// token is still written to it: other processes must not redeem the old one.
func TestRotatedRefreshTokenReachesASlowCache(t *testing.T) {
	srv := newRotatingServer(t, "rt-0", 3600)
	cache := &slowLoadCache{}
	ts := newTS(t, Config{TokenURL: srv.URL, Grant: RefreshToken{Token: "rt-0"}, Cache: cache, CacheTimeout: 50 * time.Millisecond})
	if _, err := ts.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := cache.stores.Load(); got != 1 {
		t.Fatalf("stores of the rotated refresh token = %d, want 1", got)
	}
}

// rejectingAPI answers 401 invalid_token when reject(n) for the n-th
// request (from 1), else 200.
func rejectingAPI(t *testing.T, reject func(n int64) bool) *httptest.Server {
	var n atomic.Int64
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if reject(n.Add(1)) {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	t.Cleanup(api.Close)
	return api
}

// rejectionFixture returns a fake clock, a token server of one-hour
// tokens, a source on that clock, its client and a rejectingAPI.
func rejectionFixture(t *testing.T, reject func(n int64) bool) (*testclock.Clock, *tokenServer, *TokenSource, *http.Client, *httptest.Server) {
	clock := newFakeClock()
	srv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int64) { writeToken(w, n, 3600, nil) })
	api := rejectingAPI(t, reject)
	ts := newTS(t, Config{TokenURL: srv.URL, Now: clock.Now})
	return clock, srv, ts, ts.Client(nil), api
}

// A resource server that rejects every token (an audience changed by a
// deploy) gets replacements at a growing backoff while time passes, not
// one per backoff's first step: a successful token request does not start
// the schedule over, only a token that worked does.
func Test401StormBackoffGrowsOverTime(t *testing.T) {
	clock, srv, _, c, api := rejectionFixture(t, func(int64) bool { return true })
	for range 120 { // one call every 500 ms for a minute
		resp, err := c.Get(api.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		clock.Advance(500 * time.Millisecond)
	}
	// Growing delays (250 ms ±50 %, doubling, at most 10 s ±50 %) fit
	// about 11 replacements into a minute, 18 at the very most; starting
	// over after each successful token request gave 121 (two per call).
	if got := srv.requests(); got > 20 {
		t.Fatalf("token requests in a minute of rejections = %d, want at most 20", got)
	}
}

// A flaky gateway that rejects every tenth request, tokens that work
// included, does not make every tenth request cost a token request: a
// token that worked is replaced at once only if no such replacement
// happened in the last minute; else the backoff applies.
func TestFlakyGatewayDoesNotHammerTheTokenEndpoint(t *testing.T) {
	clock, srv, _, c, api := rejectionFixture(t, func(n int64) bool { return n%10 == 0 })
	ok := 0
	for range 600 { // ten calls a second for a minute
		resp, err := c.Get(api.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			ok++
		}
		clock.Advance(100 * time.Millisecond)
	}
	// Measured: 12 (before: 67, one per rejection).
	if got := srv.requests(); got > 20 {
		t.Fatalf("token requests in a minute = %d (%d calls answered 200), want at most 20", got, ok)
	}
	if ok < 520 {
		t.Fatalf("%d of 600 calls answered 200, want at least 520", ok)
	}
}

// A token that worked and is then revoked is still replaced at once, and
// so is its successor's successor a minute later.
func TestRevokedWorkingTokenReplacedAtOnce(t *testing.T) {
	clock := newFakeClock()
	srv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int64) { writeToken(w, n, 3600, nil) })
	var revoked sync.Map
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := revoked.Load(r.Header.Get("Authorization")); ok {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	t.Cleanup(api.Close)
	ts := newTS(t, Config{TokenURL: srv.URL, Now: clock.Now})
	c := ts.Client(nil)
	get := func() int {
		resp, err := c.Get(api.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for k := 1; k <= 3; k++ {
		if code := get(); code != http.StatusOK {
			t.Fatalf("round %d: status %d before revocation", k, code)
		}
		revoked.Store("Bearer tok-"+itoa(int64(k)), true)
		if code := get(); code != http.StatusOK || srv.requests() != int64(k+1) {
			t.Fatalf("round %d: status %d, %d token requests; want 200 after one replacement", k, code, srv.requests())
		}
		clock.Advance(61 * time.Second)
	}
}

// Invalidate of a token that worked drops it at once however often it is
// called: the caller knows the token is bad (a rotation test, a revocation
// seen by its own client); only the Transport's own 401s are limited.
func TestInvalidateOfWorkingTokenAlwaysDrops(t *testing.T) {
	clock, srv, ts, c, api := rejectionFixture(t, func(int64) bool { return false })
	for k := int64(1); k <= 5; k++ {
		resp, err := c.Get(api.URL) // the token works
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		tok, err := ts.Token(t.Context())
		if err != nil || tok.AccessToken != "tok-"+itoa(k) {
			t.Fatalf("round %d: %s %v", k, serial(tok), err)
		}
		ts.Invalidate(tok)
		clock.Advance(time.Second)
	}
	if _, err := ts.Token(t.Context()); err != nil || srv.requests() != 6 {
		t.Fatalf("%d token requests after 5 invalidations, want 6 (%v)", srv.requests(), err)
	}
}

// Callers with short deadlines during an outage do not outpace the
// backoff: when the last one leaves while the fetch waits to retry, the
// failure and the rest of that wait become a cool-down, instead of the
// next caller sending a new request at once.
func TestShortDeadlinesKeepTheBackoff(t *testing.T) {
	clock := newFakeClock()
	srv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		writeError(w, http.StatusServiceUnavailable, "temporarily_unavailable")
	})
	ts := newTS(t, Config{TokenURL: srv.URL, Now: clock.Now, Retry: &RetryPolicy{InitialInterval: 2 * time.Second, MaxInterval: 4 * time.Second}})
	var last error
	for range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		_, last = ts.Token(ctx)
		cancel()
		if last == nil {
			t.Fatal("token during an outage")
		}
	}
	// The clock stands still: one request, then the cool-down of its retry.
	if n := srv.requests(); n != 1 {
		t.Fatalf("token requests from 20 short-deadline callers = %d, want 1", n)
	}
	var te *TokenError
	if !errors.As(last, &te) || te.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("a caller during the cool-down got %v, want the 503", last)
	}
	clock.Advance(5 * time.Second) // past the retry's moment
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	ts.Token(ctx)
	if n := srv.requests(); n != 2 {
		t.Fatalf("token requests after the wait = %d, want 2", n)
	}
}
