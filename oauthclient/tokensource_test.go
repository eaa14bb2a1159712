package oauthclient

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/oauthkit/oauthkit/tokencache"
)

func TestOneFetchForManyGoroutines(t *testing.T) {
	release := make(chan struct{})
	srv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		<-release
		writeToken(w, n, 3600, nil)
	})
	ts := newTS(t, Config{TokenURL: srv.URL})
	const N = 1000
	var wg sync.WaitGroup
	var started sync.WaitGroup
	errs := make(chan error, N)
	tokens := make(chan string, N)
	for i := 0; i < N; i++ {
		wg.Add(1)
		started.Add(1)
		go func() {
			defer wg.Done()
			started.Done()
			tok, err := ts.Token(context.Background())
			if err != nil {
				errs <- err
				return
			}
			tokens <- tok.AccessToken
		}()
	}
	started.Wait()
	close(release)
	wg.Wait()
	close(errs)
	close(tokens)
	for err := range errs {
		t.Fatalf("Token: %v", err)
	}
	for tok := range tokens {
		if tok != "tok-1" {
			t.Fatalf("got %s, want token #1", serial(tok))
		}
	}
	if got := srv.requests(); got != 1 {
		t.Fatalf("token requests = %d, want 1", got)
	}
}

func TestWaiterCancelReturnsPromptlyWhileFetchContinues(t *testing.T) {
	release := make(chan struct{})
	srv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		<-release
		writeToken(w, n, 3600, nil)
	})
	ts := newTS(t, Config{TokenURL: srv.URL})
	other := make(chan error, 1)
	go func() {
		_, err := ts.Token(context.Background())
		other <- err
	}()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := ts.Token(ctx)
		done <- err
	}()
	for srv.requests() == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller got %v, want context.Canceled", err)
	}
	close(release)
	if err := <-other; err != nil {
		t.Fatalf("other caller: %v", err)
	}
	if srv.requests() != 1 {
		t.Fatalf("requests = %d, want 1", srv.requests())
	}
}

func TestShortLivedTokenIsReused(t *testing.T) {
	clock := newFakeClock()
	srv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int64) { writeToken(w, n, 4, nil) })
	ts := newTS(t, Config{TokenURL: srv.URL, Now: clock.Now})
	ctx := context.Background()
	for i := 0; i < 100; i++ {
		tok, err := ts.Token(ctx)
		if err != nil || tok.AccessToken != "tok-1" {
			t.Fatalf("call %d: %s %v", i, serial(tok), err)
		}
	}
	clock.Advance(1900 * time.Millisecond) // still fresh: 4 s token, 1 s leeway, 1 s window
	if tok, _ := ts.Token(ctx); tok.AccessToken != "tok-1" {
		t.Fatal("token not reused within its fresh period")
	}
	if srv.requests() != 1 {
		t.Fatalf("4-second token: %d requests for 101 calls, want 1", srv.requests())
	}
}

func TestTokenStates(t *testing.T) {
	clock := newFakeClock()
	var fail atomic.Bool
	bgStarted := make(chan struct{}, 10)
	srv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		bgStarted <- struct{}{}
		if fail.Load() {
			writeError(w, 400, "invalid_client")
			return
		}
		writeToken(w, n, 100, nil)
	})
	// 100 s token: leeway 10 s, window 25 s → fresh until 65–77.5 s (the
	// refresh moment is drawn from the first half of the window), usable
	// until 90 s.
	ts := newTS(t, Config{TokenURL: srv.URL, Now: clock.Now, ErrorCooldown: time.Second})
	ctx := context.Background()
	if tok, err := ts.Token(ctx); err != nil || tok.AccessToken != "tok-1" {
		t.Fatalf("first: %s %v", serial(tok), err)
	}
	<-bgStarted
	clock.Advance(64 * time.Second)
	if tok, _ := ts.Token(ctx); tok.AccessToken != "tok-1" || srv.requests() != 1 {
		t.Fatalf("fresh state: %s, %d requests", serial(tok), srv.requests())
	}

	// Window: the current token comes back at once, one background refresh fails.
	fail.Store(true)
	clock.Advance(14 * time.Second)
	for i := 0; i < 50; i++ {
		if tok, err := ts.Token(ctx); err != nil || tok.AccessToken != "tok-1" {
			t.Fatalf("window call %d: %s %v", i, serial(tok), err)
		}
	}
	<-bgStarted
	waitIdle(t, ts)
	if srv.requests() != 2 {
		t.Fatalf("window: %d requests, want 2 (exactly one background refresh)", srv.requests())
	}
	if tok, err := ts.Token(ctx); err != nil || tok.AccessToken != "tok-1" {
		t.Fatalf("a failed background refresh replaced the valid token: %s %v", serial(tok), err)
	}
	// The background refresh is tried again after its cool-down, and succeeds.
	fail.Store(false)
	clock.Advance(2 * time.Second)
	ts.Token(ctx)
	<-bgStarted
	waitIdle(t, ts)
	if tok, _ := ts.Token(ctx); tok.AccessToken != "tok-3" {
		t.Fatalf("after background refresh: %s, want token #3", serial(tok))
	}

	// Expired: callers wait for a fetch.
	clock.Advance(200 * time.Second)
	if tok, err := ts.Token(ctx); err != nil || tok.AccessToken != "tok-4" {
		t.Fatalf("expired: %s %v", serial(tok), err)
	}
}

// waitIdle waits for an in-flight fetch to finish.
func waitIdle(t *testing.T, ts *TokenSource) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for ts.refreshing.Load() {
		if time.Now().After(deadline) {
			t.Fatal("fetch did not finish")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name      string
		fails     int
		status    int
		code      string
		header    map[string]string
		wantReqs  int64
		wantErr   bool
		wantCode  string
		minElapse time.Duration
	}{
		{name: "3x503 then success", fails: 3, status: 503, wantReqs: 4},
		{name: "500 then success", fails: 1, status: 500, wantReqs: 2},
		{name: "429 retry-after", fails: 1, status: 429, header: map[string]string{"Retry-After": "1"}, wantReqs: 2, minElapse: time.Second},
		{name: "invalid_client is permanent", fails: 100, status: 401, code: "invalid_client", wantReqs: 1, wantErr: true, wantCode: "invalid_client"},
		{name: "invalid_scope is permanent", fails: 100, status: 400, code: "invalid_scope", wantReqs: 1, wantErr: true, wantCode: "invalid_scope"},
		{name: "unauthorized_client is permanent", fails: 100, status: 400, code: "unauthorized_client", wantReqs: 1, wantErr: true, wantCode: "unauthorized_client"},
		{name: "outage gives up after max attempts", fails: 100, status: 503, wantReqs: 5, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int64) {
				if n <= int64(tt.fails) {
					for k, v := range tt.header {
						w.Header().Set(k, v)
					}
					if tt.code != "" {
						writeError(w, tt.status, tt.code)
					} else {
						w.Header().Set("Content-Type", "text/html")
						w.WriteHeader(tt.status)
						w.Write([]byte("<html>unavailable</html>"))
					}
					return
				}
				writeToken(w, n, 3600, nil)
			})
			ts := newTS(t, Config{TokenURL: srv.URL, Retry: fastRetry})
			start := time.Now()
			tok, err := ts.Token(context.Background())
			if elapsed := time.Since(start); elapsed < tt.minElapse {
				t.Errorf("retried after %v, want at least %v", elapsed, tt.minElapse)
			}
			if got := srv.requests(); got != tt.wantReqs {
				t.Errorf("requests = %d, want %d", got, tt.wantReqs)
			}
			if tt.wantErr {
				var te *TokenError
				if !errors.As(err, &te) {
					t.Fatalf("error %v is not *TokenError", err)
				}
				if te.ErrorCode != tt.wantCode {
					t.Errorf("ErrorCode = %q, want %q", te.ErrorCode, tt.wantCode)
				}
				return
			}
			if err != nil || tok.AccessToken == "" {
				t.Fatalf("Token: %v", err)
			}
		})
	}
}

func TestRetryNeverOutlivesCallerContext(t *testing.T) {
	srv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		w.Header().Set("Retry-After", "30")
		w.WriteHeader(503)
	})
	ts := newTS(t, Config{TokenURL: srv.URL})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := ts.Token(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want deadline exceeded", err)
	}
	// The shared fetch sleeping out Retry-After ends once nobody waits.
	waitIdle(t, ts)
	if srv.requests() != 1 {
		t.Fatalf("requests = %d, want 1", srv.requests())
	}
}

func TestPermanentErrorCooldown(t *testing.T) {
	clock := newFakeClock()
	srv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int64) { writeError(w, 401, "invalid_client") })
	ts := newTS(t, Config{TokenURL: srv.URL, Now: clock.Now})
	for i := 0; i < 50; i++ {
		_, err := ts.Token(context.Background())
		var te *TokenError
		if !errors.As(err, &te) || te.ErrorCode != "invalid_client" {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if srv.requests() != 1 {
		t.Fatalf("50 callers within the cool-down made %d requests, want 1", srv.requests())
	}
	clock.Advance(6 * time.Second)
	ts.Token(context.Background())
	if srv.requests() != 2 {
		t.Fatalf("after the cool-down: %d requests, want 2", srv.requests())
	}
}

func TestOutageRequestsFollowBackoffNotRequestRate(t *testing.T) {
	clock := newFakeClock()
	srv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int64) { w.WriteHeader(503) })
	ts := newTS(t, Config{TokenURL: srv.URL, Now: clock.Now, Retry: &RetryPolicy{MaxAttempts: 1, InitialInterval: time.Second, MaxInterval: 8 * time.Second}})
	// 10,000 requests over 20 simulated seconds.
	for i := 0; i < 10000; i++ {
		ts.Token(context.Background())
		clock.Advance(2 * time.Millisecond)
	}
	// Cool-downs 1, 2, 4, 8, 8 s … → about 6 fetches in 20 s.
	if got := srv.requests(); got > 8 || got < 3 {
		t.Fatalf("token requests during outage = %d, want the backoff schedule (3..8)", got)
	}
}

func TestRefreshTokenRotation(t *testing.T) {
	var mu sync.Mutex
	valid := map[string]bool{"rt-0": true}
	reuse := 0
	srv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		mu.Lock()
		defer mu.Unlock()
		rt := r.PostForm.Get("refresh_token")
		if r.PostForm.Get("grant_type") != "refresh_token" || !valid[rt] {
			reuse++
			writeError(w, 400, "invalid_grant")
			return
		}
		delete(valid, rt)
		next := "rt-" + string(rune('0'+n))
		valid[next] = true
		writeToken(w, n, 60, map[string]any{"refresh_token": next})
	})
	cache := tokencache.NewMemory()
	var changes []string
	var ts *TokenSource
	clock := newFakeClock()
	ts = newTS(t, Config{TokenURL: srv.URL, Grant: RefreshToken{Token: "rt-0"}, Cache: cache, Now: clock.Now, OnTokenChange: func(tok *oauth2.Token) {
		e, err := cache.Load(context.Background(), ts.CacheKey())
		if err != nil || e.RefreshToken != tok.RefreshToken {
			t.Errorf("OnTokenChange before the refresh token was persisted")
		}
		changes = append(changes, tok.RefreshToken)
	}})
	for i := 0; i < 3; i++ {
		if _, err := ts.Token(context.Background()); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		clock.Advance(2 * time.Minute)
	}
	if reuse != 0 || len(changes) != 3 || changes[2] != "rt-3" {
		t.Fatalf("reuse=%d changes=%d", reuse, len(changes))
	}
	// The server forgets the grant: ErrReauthRequired, wrapped with the TokenError.
	mu.Lock()
	valid = map[string]bool{}
	mu.Unlock()
	_, err := ts.Token(context.Background())
	var te *TokenError
	if !errors.Is(err, ErrReauthRequired) || !errors.As(err, &te) || te.ErrorCode != "invalid_grant" {
		t.Fatalf("got %v, want ErrReauthRequired wrapping invalid_grant", err)
	}
	if srv.requests() != 4 {
		t.Fatalf("invalid_grant was retried: %d requests", srv.requests())
	}
}

func TestSecondSourceReusesCachedToken(t *testing.T) {
	srv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int64) { writeToken(w, n, 3600, nil) })
	cache := tokencache.NewMemory()
	a := newTS(t, Config{TokenURL: srv.URL, Cache: cache, Scopes: []string{"b", "a"}})
	b := newTS(t, Config{TokenURL: srv.URL, Cache: cache, Scopes: []string{"a", "b"}})
	c := newTS(t, Config{TokenURL: srv.URL, Cache: cache, Scopes: []string{"a"}})
	ta, _ := a.Token(context.Background())
	tb, _ := b.Token(context.Background())
	tc, _ := c.Token(context.Background())
	if ta.AccessToken != tb.AccessToken {
		t.Error("same configuration did not share the cached token")
	}
	if tc.AccessToken == ta.AccessToken {
		t.Error("different scopes shared a token")
	}
	if srv.requests() != 2 {
		t.Fatalf("requests = %d, want 2", srv.requests())
	}
}

func TestBasicAuthEncodesIDAndSecret(t *testing.T) {
	const id, secret = "id:with%special", "p@ss:w+rd&="
	srv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		u, p, ok := r.BasicAuth()
		if !ok || u != "id%3Awith%25special" || p != "p%40ss%3Aw%2Brd%26%3D" {
			t.Errorf("basic credentials not form-encoded: ok=%v", ok)
		}
		if r.PostForm.Has("client_id") || r.PostForm.Has("client_secret") {
			t.Error("basic auth also sent credentials in the form")
		}
		if r.PostForm.Get("scope") != "system/Patient.rs system/Observation.rs" {
			t.Errorf("scope = %q", r.PostForm.Get("scope"))
		}
		writeToken(w, n, 60, nil)
	})
	ts := newTS(t, Config{TokenURL: srv.URL, ClientID: id, Auth: ClientSecretBasic{Secret: secret}, Scopes: []string{"system/Patient.rs", "system/Observation.rs"}})
	if _, err := ts.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestClientSecretPostAndNone(t *testing.T) {
	for _, tt := range []struct {
		name       string
		auth       ClientAuth
		wantSecret bool
	}{
		{"post", ClientSecretPost{Secret: "sec"}, true},
		{"none", NoClientAuth{}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int64) {
				if r.Header.Get("Authorization") != "" {
					t.Error("Authorization header sent")
				}
				if r.PostForm.Get("client_id") != "client-1" || (r.PostForm.Get("client_secret") == "sec") != tt.wantSecret {
					t.Errorf("form: client_id=%q has secret=%v", r.PostForm.Get("client_id"), r.PostForm.Has("client_secret"))
				}
				writeToken(w, n, 60, nil)
			})
			ts := newTS(t, Config{TokenURL: srv.URL, Auth: tt.auth})
			if _, err := ts.Token(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"ok https", Config{TokenURL: "https://as.example/token", ClientID: "c"}, true},
		{"ok loopback http", Config{TokenURL: "http://127.0.0.1:8080/token", ClientID: "c"}, true},
		{"ok localhost http", Config{TokenURL: "http://localhost/token", ClientID: "c"}, true},
		{"ok ipv6 loopback", Config{TokenURL: "http://[::1]:9/token", ClientID: "c"}, true},
		{"missing token url", Config{ClientID: "c"}, false},
		{"missing client id", Config{TokenURL: "https://as.example/token"}, false},
		{"plain http", Config{TokenURL: "http://as.example/token", ClientID: "c"}, false},
		{"plain http allowed", Config{TokenURL: "http://as.example/token", ClientID: "c", InsecureAllowHTTP: true}, true},
		{"relative", Config{TokenURL: "/token", ClientID: "c"}, false},
		{"userinfo", Config{TokenURL: "https://u:p@as.example/token", ClientID: "c"}, false},
		{"ftp", Config{TokenURL: "ftp://as.example/token", ClientID: "c"}, false},
		{"nil signer", Config{TokenURL: "https://as.example/token", ClientID: "c", Auth: PrivateKeyJWT{}}, false},
		{"empty secret", Config{TokenURL: "https://as.example/token", ClientID: "c", Auth: ClientSecretBasic{}}, false},
		{"jwt bearer without subject", Config{TokenURL: "https://as.example/token", ClientID: "c", Grant: JWTBearer{}}, false},
		{"refresh token from Seed", Config{TokenURL: "https://as.example/token", ClientID: "c", Grant: RefreshToken{}}, true},
		{"secret in endpoint params", Config{TokenURL: "https://as.example/token", ClientID: "c", EndpointParams: map[string][]string{"client_secret": {"x"}}}, false},
		{"bad refresh window", Config{TokenURL: "https://as.example/token", ClientID: "c", RefreshWindow: 1.5}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewTokenSource(tt.cfg)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if errors.Is(err, ErrInsecureURL) != (tt.name == "plain http") {
				t.Errorf("ErrInsecureURL mismatch: %v", err)
			}
		})
	}
}

func TestJWTExpiryUsedWithoutExpiresIn(t *testing.T) {
	clock := newFakeClock()
	exp := clock.Now().Add(10 * time.Minute).Unix()
	// A JWT-shaped access token with only an exp claim (unsigned; only exp is read).
	payload := `{"exp":` + itoa(exp) + `}`
	jwt := "eyJhbGciOiJub25lIn0." + b64(payload) + ".sig"
	srv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"access_token":"` + jwt + `","token_type":"Bearer"}`))
	})
	ts := newTS(t, Config{TokenURL: srv.URL, Now: clock.Now})
	tok, err := ts.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if tok.Expiry.Unix() != exp {
		t.Fatalf("expiry %v, want exp claim %d", tok.Expiry, exp)
	}
}

func TestCloseWaitsForFetchAndStopsRefreshing(t *testing.T) {
	clock := newFakeClock()
	release := make(chan struct{})
	srv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		if n == 2 {
			<-release
		}
		writeToken(w, n, 100, nil)
	})
	ts := newTS(t, Config{TokenURL: srv.URL, Now: clock.Now})
	if _, err := ts.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	clock.Advance(78 * time.Second) // inside the window (past its jittered start): a background refresh starts and blocks
	ts.Token(context.Background())
	for srv.requests() < 2 {
		time.Sleep(time.Millisecond)
	}
	closed := make(chan struct{})
	go func() { ts.Close(); close(closed) }()
	select {
	case <-closed:
		t.Fatal("Close returned while a fetch was in flight")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	<-closed
	if tok, err := ts.Token(context.Background()); err != nil || tok.AccessToken != "tok-2" {
		t.Fatalf("valid token after Close: %s %v", serial(tok), err)
	}
	clock.Advance(78 * time.Second) // window again: no refresh after Close
	ts.Token(context.Background())
	clock.Advance(200 * time.Second) // expired
	if _, err := ts.Token(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("expired after Close: %v, want ErrClosed", err)
	}
	if srv.requests() != 2 {
		t.Fatalf("requests after Close: %d", srv.requests())
	}
}

// hangingCache never answers until its context ends, like a Redis that
// stopped responding.
type hangingCache struct{ calls atomic.Int64 }

func (h *hangingCache) Load(ctx context.Context, _ string) (*tokencache.Entry, error) {
	h.calls.Add(1)
	<-ctx.Done()
	return nil, ctx.Err()
}

func (h *hangingCache) Store(ctx context.Context, _ string, _ *tokencache.Entry) error {
	h.calls.Add(1)
	<-ctx.Done()
	return ctx.Err()
}

func (h *hangingCache) Delete(ctx context.Context, _ string) error { return nil }

func TestHungCacheCostsATokenRequestNotAStall(t *testing.T) {
	srv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int64) { writeToken(w, n, 3600, nil) })
	cache := &hangingCache{}
	ts := newTS(t, Config{TokenURL: srv.URL, Cache: cache, CacheTimeout: 20 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tok, err := ts.Token(ctx)
	if err != nil || tok.AccessToken != "tok-1" {
		t.Fatalf("Token with a hung cache: %v", err)
	}
	// The Load timed out: the cache is left alone for a while (no lock, no
	// Store), so the hung cache costs one CacheTimeout, not three.
	if cache.calls.Load() != 1 || srv.requests() != 1 {
		t.Fatalf("cache calls %d (want the one Load), token requests %d", cache.calls.Load(), srv.requests())
	}
}

// TestCloseRealClockDropsExpiredToken: with the real clock, a token's
// refresh timer marks it stale. Close stops that timer, so the token must
// not stay hot for the Token hot path or a Transport's remembered state:
// once it expires, both give ErrClosed instead of sending it.
func TestCloseRealClockDropsExpiredToken(t *testing.T) {
	srv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		writeToken(w, n, 2, nil)
	})
	ts := newTS(t, Config{TokenURL: srv.URL})
	sent := 0
	tr := &Transport{Source: ts, Base: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		sent++
		return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: r}, nil
	})}
	req, _ := http.NewRequest(http.MethodGet, "https://api.example.test/x", nil)
	for range 2 { // the second request takes the remembered state
		if _, err := tr.RoundTrip(req); err != nil {
			t.Fatal(err)
		}
	}
	tok, err := ts.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ts.Close()
	time.Sleep(time.Until(tok.Expiry) + 100*time.Millisecond)
	if _, err := ts.Token(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Token after Close and expiry: %v, want ErrClosed", err)
	}
	if _, err := tr.RoundTrip(req); !errors.Is(err, ErrClosed) {
		t.Fatalf("RoundTrip after Close and expiry: %v, want ErrClosed", err)
	}
	if sent != 2 || srv.requests() != 1 {
		t.Fatalf("sent %d requests with %d token requests, want 2 and 1", sent, srv.requests())
	}
}
