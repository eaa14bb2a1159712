package interop

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauthkit/oauthkit/oauthclient"
)

// lifecycleTTL is the lifetime of every token in the lifecycle tests: short
// enough that a few real lifetimes pass within one test.
const lifecycleTTL = 4 * time.Second

// lifecycleOptions starts a server whose tokens live lifecycleTTL.
var lifecycleOptions = ProviderOptions{
	AccessTokenTTL:       lifecycleTTL,
	ClientCredentialsTTL: lifecycleTTL,
}

// lifecycleTimeout bounds every call a lifecycle test waits on; it protects
// against a hang and is not a performance assertion.
const lifecycleTimeout = 60 * time.Second

// newLifecycleSource returns a client_credentials TokenSource for the
// client_secret_basic registration, with secret as its client secret.
// edit, when not nil, adjusts the configuration first.
func newLifecycleSource(t *testing.T, p *Provider, secret string, edit func(*oauthclient.Config)) *oauthclient.TokenSource {
	t.Helper()
	cfg := oauthclient.Config{
		TokenURL: p.TokenURL,
		ClientID: p.Basic.ID,
		Auth:     oauthclient.ClientSecretBasic{Secret: secret},
		Scopes:   []string{"system/Patient.rs"},
	}
	if edit != nil {
		edit(&cfg)
	}
	return newTokenSource(t, cfg)
}

// lifecycleTransport is an http.Transport of the test's own, closed when the
// test ends.
func lifecycleTransport(t *testing.T) *http.Transport {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

// lifecycleStatusCounter is the base RoundTripper under the SDK's Transport:
// it counts every raw response by status, including the ones the SDK's
// Transport swallows when it retries after a 401. It is safe for concurrent
// use.
type lifecycleStatusCounter struct {
	base http.RoundTripper

	mu       sync.Mutex // guards byStatus
	byStatus map[int]int
}

func (c *lifecycleStatusCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(req)
	if err == nil {
		c.mu.Lock()
		if c.byStatus == nil {
			c.byStatus = map[int]int{}
		}
		c.byStatus[resp.StatusCode]++
		c.mu.Unlock()
	}
	return resp, err
}

// count returns how many raw responses had the given status.
func (c *lifecycleStatusCounter) count(status int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byStatus[status]
}

// lifecycleAttempt is one token-endpoint exchange as the SDK's HTTP client
// saw it.
type lifecycleAttempt struct {
	sent     time.Time // before the request was written
	answered time.Time // after the response headers arrived
	status   int
}

// lifecycleAttemptLog is the RoundTripper of the token endpoint's HTTP
// client: it records when each token request was sent and answered. It is
// safe for concurrent use.
type lifecycleAttemptLog struct {
	base http.RoundTripper

	mu       sync.Mutex // guards attempts
	attempts []lifecycleAttempt
}

func (l *lifecycleAttemptLog) RoundTrip(req *http.Request) (*http.Response, error) {
	a := lifecycleAttempt{sent: time.Now()}
	resp, err := l.base.RoundTrip(req)
	a.answered = time.Now()
	if err == nil {
		a.status = resp.StatusCode
	}
	l.mu.Lock()
	l.attempts = append(l.attempts, a)
	l.mu.Unlock()
	return resp, err
}

func (l *lifecycleAttemptLog) all() []lifecycleAttempt {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]lifecycleAttempt(nil), l.attempts...)
}

// TestLifecycleColdStampede: a thousand goroutines ask a cold TokenSource
// for a token at the same moment; the server sees exactly one token request
// and every caller gets that token.
//
// The SDK's clock is frozen at the start, so no caller that happens to be
// scheduled late finds the token inside its early-refresh window: the count
// does not depend on how fast the machine runs the goroutines.
func TestLifecycleColdStampede(t *testing.T) {
	const callers = 1000
	p := startProvider(t, lifecycleOptions)
	clock := newFakeClock()
	ts := newLifecycleSource(t, p, p.Basic.Secret, func(c *oauthclient.Config) { c.Now = clock.Now })

	ctx, cancel := context.WithTimeout(context.Background(), lifecycleTimeout)
	defer cancel()
	start := make(chan struct{})
	tokens := make([]string, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := 0; i < callers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			tok, err := ts.Token(ctx)
			if err != nil {
				errs[i] = err
				return
			}
			tokens[i] = tok.AccessToken
		}()
	}
	close(start)
	wg.Wait()

	failed := 0
	for i, err := range errs {
		if err != nil {
			if failed == 0 {
				t.Errorf("caller %d: Token: %v", i, err)
			}
			failed++
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d callers failed", failed, callers)
	}
	distinct := map[string]bool{}
	for _, tok := range tokens {
		distinct[tok] = true
	}
	if len(distinct) != 1 || tokens[0] == "" {
		t.Errorf("callers got %d distinct tokens (first: %s), want one", len(distinct), fingerprint(tokens[0]))
	}
	st := p.Stats(t)
	if st.TokenRequests != 1 || st.TokenErrors != 0 {
		t.Errorf("token requests %d, errors %d (%v); want 1, 0", st.TokenRequests, st.TokenErrors, st.TokenErrorsByCode)
	}
}

// TestLifecycleSteadyTraffic sends steady traffic through TokenSource.Client
// for three token lifetimes. The resource server answers 401 invalid_token
// to an expired token, so a single 401 means a request went out with an
// expired token; refreshes must happen ahead of expiry, in the background,
// with a handful of token requests.
func TestLifecycleSteadyTraffic(t *testing.T) {
	const (
		workers  = 8
		interval = 50 * time.Millisecond
		duration = 3 * lifecycleTTL
	)
	p := startProvider(t, lifecycleOptions)
	ts := newLifecycleSource(t, p, p.Basic.Secret, nil)
	raw := &lifecycleStatusCounter{base: lifecycleTransport(t)}
	client := ts.Client(&http.Client{Transport: raw})

	var sent, ok atomic.Int64
	var mu sync.Mutex // guards bad
	bad := map[string]int{}
	record := func(what string) {
		mu.Lock()
		bad[what]++
		mu.Unlock()
	}

	ctx, cancel := context.WithTimeout(context.Background(), lifecycleTimeout)
	defer cancel()
	end := time.Now().Add(duration)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for time.Now().Before(end) {
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.FHIRBase+"/Patient", nil)
				if err != nil {
					record("new request: " + err.Error())
					return
				}
				sent.Add(1)
				resp, err := client.Do(req)
				if err != nil {
					record("transport error: " + err.Error())
				} else {
					_ = drain(resp)
					if resp.StatusCode == http.StatusOK {
						ok.Add(1)
					} else {
						record(fmt.Sprintf("status %d", resp.StatusCode))
					}
				}
				select {
				case <-tick.C:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	wg.Wait()

	if n := sent.Load(); n == 0 || ok.Load() != n {
		t.Errorf("%d of %d requests answered 200; the others: %v", ok.Load(), n, bad)
	}
	if n := raw.count(http.StatusUnauthorized); n != 0 {
		t.Errorf("resource server answered 401 %d times (the Transport retried them); want none", n)
	}
	st := p.Stats(t)
	if st.ResourceUnauthorized != 0 || int64(st.ResourceRequests) != sent.Load() {
		t.Errorf("server saw %d resource requests, %d of them 401; want %d, 0", st.ResourceRequests, st.ResourceUnauthorized, sent.Load())
	}
	if st.TokenRequests < 3 || st.TokenRequests > 8 || st.TokenErrors != 0 {
		t.Errorf("token requests %d, errors %d (%v); want 3–8, 0", st.TokenRequests, st.TokenErrors, st.TokenErrorsByCode)
	}
	t.Logf("%d resource requests, %d token requests in %v", sent.Load(), st.TokenRequests, duration)
}

// TestLifecycle503Then200: the token endpoint answers 503 three times, then
// issues a token; Token succeeds after exactly four requests.
func TestLifecycle503Then200(t *testing.T) {
	p := startProvider(t, lifecycleOptions)
	p.Fail(t, 3, http.StatusServiceUnavailable, 0)
	ts := newLifecycleSource(t, p, p.Basic.Secret, nil)

	ctx, cancel := context.WithTimeout(context.Background(), lifecycleTimeout)
	defer cancel()
	tok, err := ts.Token(ctx)
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	if tok.AccessToken == "" {
		t.Fatalf("Token returned an empty access token")
	}
	st := p.Stats(t)
	if st.TokenRequests != 4 || st.InjectedFailures != 3 || st.TokenResponsesByStatus["200"] != 1 {
		t.Errorf("token requests %d (injected failures %d, responses %v); want 4 (3, one 200)", st.TokenRequests, st.InjectedFailures, st.TokenResponsesByStatus)
	}
}

// TestLifecycle429RetryAfter: a 429 with "Retry-After: 1" is retried no
// sooner than one second after it arrived, and the caller gets its token.
func TestLifecycle429RetryAfter(t *testing.T) {
	p := startProvider(t, lifecycleOptions)
	p.Fail(t, 1, http.StatusTooManyRequests, 1)
	attempts := &lifecycleAttemptLog{base: lifecycleTransport(t)}
	ts := newLifecycleSource(t, p, p.Basic.Secret, func(c *oauthclient.Config) {
		c.HTTPClient = &http.Client{Transport: attempts, Timeout: 30 * time.Second}
	})

	ctx, cancel := context.WithTimeout(context.Background(), lifecycleTimeout)
	defer cancel()
	tok, err := ts.Token(ctx)
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	if tok.AccessToken == "" {
		t.Fatalf("Token returned an empty access token")
	}

	got := attempts.all()
	if len(got) != 2 || got[0].status != http.StatusTooManyRequests || got[1].status != http.StatusOK {
		statuses := make([]int, len(got))
		for i, a := range got {
			statuses[i] = a.status
		}
		t.Fatalf("token request statuses %v, want [429 200]", statuses)
	}
	if gap := got[1].sent.Sub(got[0].answered); gap < time.Second {
		t.Errorf("retry sent %v after the 429 arrived, want at least 1s (Retry-After: 1)", gap)
	}
	st := p.Stats(t)
	if st.TokenRequests != 2 || st.InjectedFailures != 1 {
		t.Errorf("token requests %d (injected failures %d), want 2 (1)", st.TokenRequests, st.InjectedFailures)
	}
}

// TestLifecycleWrongSecretStorm: a wrong client secret is a permanent
// invalid_client *TokenError that does not reveal the secret. One caller
// causes exactly one token request (no retry); fifty callers sharing a
// TokenSource cause at most a few, not one per caller.
func TestLifecycleWrongSecretStorm(t *testing.T) {
	const callers = 50
	p := startProvider(t, lifecycleOptions)
	wrong := randomSecret(t)
	ctx, cancel := context.WithTimeout(context.Background(), lifecycleTimeout)
	defer cancel()

	// checkErr fails the test unless err is a permanent invalid_client
	// *TokenError without the secret in its text.
	checkErr := func(caller int, err error) {
		t.Helper()
		if err == nil {
			t.Fatalf("caller %d: Token succeeded with a wrong secret", caller)
		}
		assertNoSecret(t, err, wrong)
		var te *oauthclient.TokenError
		if !errors.As(err, &te) {
			t.Fatalf("caller %d: Token: %v (%T), want *oauthclient.TokenError", caller, err, err)
		}
		if te.ErrorCode != "invalid_client" || te.Temporary() {
			t.Fatalf("caller %d: Token: %v (code %q, temporary %v), want permanent invalid_client", caller, err, te.ErrorCode, te.Temporary())
		}
	}

	_, err := newLifecycleSource(t, p, wrong, nil).Token(ctx)
	checkErr(0, err)
	if st := p.Stats(t); st.TokenRequests != 1 || st.InjectedFailures != 0 || st.TokenErrorsByCode["invalid_client"] != 1 {
		t.Errorf("one caller: token requests %d (injected failures %d, errors %v), want 1 (0, one invalid_client)", st.TokenRequests, st.InjectedFailures, st.TokenErrorsByCode)
	}
	p.ResetStats(t)

	ts := newLifecycleSource(t, p, wrong, nil)
	start := make(chan struct{})
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := 0; i < callers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			tok, err := ts.Token(ctx)
			if err == nil && tok != nil {
				err = errors.New("unexpected token")
			}
			errs[i] = err
		}()
	}
	close(start)
	wg.Wait()

	for i, err := range errs {
		checkErr(i, err)
	}
	st := p.Stats(t)
	if st.TokenRequests < 1 || st.TokenRequests > 3 {
		t.Errorf("token requests %d for %d callers, want 1–3", st.TokenRequests, callers)
	}
	if st.TokenErrorsByCode["invalid_client"] != st.TokenRequests {
		t.Errorf("token errors by code %v, want invalid_client for each of %d requests", st.TokenErrorsByCode, st.TokenRequests)
	}
}

// TestLifecycleRevokedTokenHeals: the server revokes the access token a
// client is using; the client's next request still succeeds, after one
// transparent 401 and one new token.
//
// The SDK's clock is frozen, so no early refresh adds a token request: the
// only new token is the one the revocation forces.
func TestLifecycleRevokedTokenHeals(t *testing.T) {
	p := startProvider(t, lifecycleOptions)
	clock := newFakeClock()
	ts := newLifecycleSource(t, p, p.Basic.Secret, func(c *oauthclient.Config) { c.Now = clock.Now })
	raw := &lifecycleStatusCounter{base: lifecycleTransport(t)}
	client := ts.Client(&http.Client{Transport: raw})

	mustReadPatient(t, p, client)
	ctx, cancel := context.WithTimeout(context.Background(), lifecycleTimeout)
	defer cancel()
	before, err := ts.Token(ctx)
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	if !p.RevokeToken(t, before.AccessToken) {
		t.Fatalf("RevokeToken: token unknown to the server")
	}
	mustReadPatient(t, p, client)

	if n, okN := raw.count(http.StatusUnauthorized), raw.count(http.StatusOK); n != 1 || okN != 2 {
		t.Errorf("raw responses: %d × 401, %d × 200; want 1, 2", n, okN)
	}
	after, err := ts.Token(ctx)
	if err != nil {
		t.Fatalf("Token after revocation: %v", err)
	}
	if after.AccessToken == before.AccessToken {
		t.Errorf("TokenSource still holds the revoked token")
	}
	st := p.Stats(t)
	if st.TokenRequests != 2 || st.ResourceRequests != 3 || st.ResourceUnauthorized != 1 {
		t.Errorf("token requests %d, resource requests %d, resource 401s %d; want 2, 3, 1", st.TokenRequests, st.ResourceRequests, st.ResourceUnauthorized)
	}
}
