package oauthclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// authRecorder is a base transport that answers status and remembers the
// Authorization value of the last request.
type authRecorder struct {
	status atomic.Int32 // 0: 200
	last   atomic.Value // string
}

func (a *authRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	a.last.Store(r.Header.Get("Authorization"))
	code := int(a.status.Load())
	if code == 0 {
		code = http.StatusOK
	}
	return &http.Response{StatusCode: code, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
}

// lifetimeSource returns a token server issuing tokens that expire in
// expiresIn seconds and a real-clock source of them.
func lifetimeSource(t *testing.T, expiresIn int) (*tokenServer, *TokenSource) {
	srv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		writeToken(w, n, expiresIn, nil)
	})
	// Its own limiter: background refreshes of other tests' sources that
	// still wait in the shared one must not delay this one's.
	return srv, newTS(t, Config{TokenURL: srv.URL, RefreshLimiter: NewRefreshLimiter(4)})
}

// sendAuth sends one GET through rt and returns the Authorization value
// the base saw.
func sendAuth(t *testing.T, tr *Transport, rec *authRecorder) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "https://api.example.test/fhir/Patient", nil)
	if _, err := tr.RoundTrip(req); err != nil {
		t.Fatal(err)
	}
	s, _ := rec.last.Load().(string)
	return s
}

// TestTransportHoldsHotConfirmedStateAndLetsGo: a Transport sends a
// confirmed token without reading its state only while that state is hot;
// replacing the token (Seed, Invalidate), its refresh moment and Close
// each take it back, and the next request carries what the source says.
func TestTransportHoldsHotConfirmedStateAndLetsGo(t *testing.T) {
	_, ts := lifetimeSource(t, 3600)
	rec := &authRecorder{}
	tr := &Transport{Source: ts, Base: rec}

	rec.status.Store(http.StatusForbidden) // not a 401: the token worked
	if got := sendAuth(t, tr, rec); got != "Bearer tok-1" {
		t.Fatalf("first request: %q", got)
	}
	if tr.fast.Load() == nil {
		t.Fatal("a used, confirmed bearer token is not held after the first answer")
	}
	rec.status.Store(0)

	if err := ts.Seed(context.Background(), &oauth2.Token{AccessToken: "seeded", TokenType: "Bearer", Expiry: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if tr.fast.Load() != nil {
		t.Fatal("Seed left the replaced token held")
	}
	if got := sendAuth(t, tr, rec); got != "Bearer seeded" {
		t.Fatalf("after Seed: %q", got)
	}
	if tr.fast.Load() == nil {
		t.Fatal("seeded token not held after it worked")
	}

	ts.Invalidate(&oauth2.Token{AccessToken: "seeded"})
	if tr.fast.Load() != nil {
		t.Fatal("Invalidate left the rejected token held")
	}
	if got := sendAuth(t, tr, rec); got != "Bearer tok-2" {
		t.Fatalf("after Invalidate: %q", got)
	}

	// A redirect to another origin gets no token, held or not.
	first, _ := http.NewRequest(http.MethodGet, "https://api.example.test/a", nil)
	redirected, _ := http.NewRequest(http.MethodGet, "https://other.example.test/b", nil)
	redirected.Response = &http.Response{Request: first}
	if _, err := tr.RoundTrip(redirected); err != nil {
		t.Fatal(err)
	}
	if got, _ := rec.last.Load().(string); got != "" {
		t.Fatalf("redirect to another origin carried %q", got)
	}

	// Nor does plain http to a remote host.
	plain, _ := http.NewRequest(http.MethodGet, "http://api.example.test/fhir/Patient", nil)
	if _, err := tr.RoundTrip(plain); !errors.Is(err, ErrInsecureURL) {
		t.Fatalf("plain http with a held token: %v, want ErrInsecureURL", err)
	}
	// A bound Transport holding the token sends it to its origins only.
	bound := &Transport{Source: ts, Base: rec, Origins: OriginList{"https://api.example.test"}}
	sendAuth(t, bound, rec)
	if bound.fast.Load() == nil {
		t.Fatal("bound Transport does not hold the token")
	}
	elsewhere, _ := http.NewRequest(http.MethodGet, "https://elsewhere.example.test/x", nil)
	if _, err := bound.RoundTrip(elsewhere); err != nil {
		t.Fatal(err)
	}
	if got, _ := rec.last.Load().(string); got != "" {
		t.Fatalf("request outside Origins carried %q", got)
	}

	ts.Close()
	if tr.fast.Load() != nil {
		t.Fatal("Close left the token held: nothing would mark it stale")
	}
	if got := sendAuth(t, tr, rec); got != "Bearer tok-2" {
		t.Fatalf("valid token after Close: %q", got)
	}
	if tr.fast.Load() != nil {
		t.Fatal("a token without its timer was held again after Close")
	}
}

// TestTransportHoldsNothingItMustRead: an unconfirmed token (answered with
// 401), a token from a plain oauth2.TokenSource and a third Transport on
// one state are never held; each still gets its token.
func TestTransportHoldsNothingItMustRead(t *testing.T) {
	_, ts := lifetimeSource(t, 3600)
	rec := &authRecorder{}
	rec.status.Store(http.StatusUnauthorized)
	tr := &Transport{Source: ts, Base: rec}
	sendAuth(t, tr, rec)
	if tr.fast.Load() != nil {
		t.Fatal("a token answered with 401 is held")
	}
	rec.status.Store(0)

	plain := &Transport{Source: FromOAuth2(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "plain"})), Base: rec}
	for range 2 {
		if got := sendAuth(t, plain, rec); got != "Bearer plain" {
			t.Fatalf("plain source: %q", got)
		}
	}
	if plain.fast.Load() != nil {
		t.Fatal("a state built per request is held")
	}

	_, ts2 := lifetimeSource(t, 3600)
	trs := []*Transport{{Source: ts2, Base: rec}, {Source: ts2, Base: rec}, {Source: ts2, Base: rec}}
	for _, tr := range trs {
		for range 2 {
			if got := sendAuth(t, tr, rec); got != "Bearer tok-1" {
				t.Fatalf("shared source: %q", got)
			}
		}
	}
	if trs[0].fast.Load() == nil || trs[1].fast.Load() == nil || trs[2].fast.Load() != nil {
		t.Fatalf("holders: %v %v %v, want the first two only", trs[0].fast.Load() != nil, trs[1].fast.Load() != nil, trs[2].fast.Load() != nil)
	}
}

// TestTransportHeldTokenFollowsRefreshMoment: with the real clock, a held
// token is let go at its refresh moment; the used source refreshes in the
// background and the next request carries the new token, with no request
// waiting for it.
func TestTransportHeldTokenFollowsRefreshMoment(t *testing.T) {
	srv, ts := lifetimeSource(t, 3)
	rec := &authRecorder{}
	tr := &Transport{Source: ts, Base: rec}
	if got := sendAuth(t, tr, rec); got != "Bearer tok-1" {
		t.Fatalf("first: %q", got)
	}
	waitForToken(t, srv, ts, "Bearer tok-2", 10*time.Second)
	if got := sendAuth(t, tr, rec); got != "Bearer tok-2" {
		t.Fatalf("after the refresh moment: %q", got)
	}
}

// waitForToken waits up to d for ts's current token to have the
// Authorization value want, which a background refresh brings.
func waitForToken(t *testing.T, srv *tokenServer, ts *TokenSource, want string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for st := ts.cur.Load(); st == nil || st.hdr[0] != want; st = ts.cur.Load() {
		if time.Now().After(deadline) {
			t.Fatalf("no background refresh to %q within %v (%d token requests)", want, d, srv.requests())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestTransportHoldRace: Transports that hold a token while other
// goroutines replace it never send a replaced token once the replacement
// has returned. Run with -race.
func TestTransportHoldRace(t *testing.T) {
	_, ts := lifetimeSource(t, 3600)
	recs := []*authRecorder{{}, {}}
	trs := []*Transport{{Source: ts, Base: recs[0]}, {Source: ts, Base: recs[1]}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 4 {
		tr := trs[i%2]
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodGet, "https://api.example.test/x", nil)
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := tr.RoundTrip(req); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	// Each round waits until both Transports sent the new token (and so
	// could hold it) before replacing it again, so that holds and
	// replacements keep meeting.
	sentNow := func(want string) {
		deadline := time.Now().Add(10 * time.Second)
		for _, rec := range recs {
			for s, _ := rec.last.Load().(string); s != want; s, _ = rec.last.Load().(string) {
				if time.Now().After(deadline) {
					t.Fatalf("no request carried %q within 10 s", want)
				}
				time.Sleep(50 * time.Microsecond)
			}
		}
	}
	sentNow("Bearer tok-1")
	for k := range 300 {
		want := fmt.Sprintf("Bearer seed-%d", k)
		if err := ts.Seed(context.Background(), &oauth2.Token{AccessToken: want[len("Bearer "):], TokenType: "Bearer", Expiry: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		// What a held Transport sends without asking the source: nothing
		// or the new token, never the replaced one.
		for _, tr := range trs {
			if st := tr.fast.Load(); st != nil && st.hdr[0] != want {
				t.Fatalf("seed %d: a Transport holds %q after Seed returned", k, st.hdr[0])
			}
		}
		sentNow(want)
	}
	close(stop)
	wg.Wait()
}

// TestHeldTokenRejectedLaterIsReplacedOnce: a held token that worked and
// is then rejected (revoked at the server) is dropped at once and the
// request replayed with a new token, which is held in its turn; with a
// body that cannot be replayed the 401 is returned and the next request
// carries the new token.
func TestHeldTokenRejectedLaterIsReplacedOnce(t *testing.T) {
	srv, ts := lifetimeSource(t, 3600)
	var revoked sync.Map
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		auth := r.Header.Get("Authorization")
		if _, ok := revoked.Load(auth); ok {
			h := http.Header{}
			h.Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			return &http.Response{StatusCode: http.StatusUnauthorized, Header: h, Body: http.NoBody, Request: r}, nil
		}
		return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
	})
	tr := &Transport{Source: ts, Base: base}
	get := func() int {
		req, _ := http.NewRequest(http.MethodGet, "https://api.example.test/fhir/Patient", nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode
	}
	for range 3 {
		if code := get(); code != http.StatusOK {
			t.Fatalf("status %d", code)
		}
	}
	if st := tr.fast.Load(); st == nil || st.hdr[0] != "Bearer tok-1" {
		t.Fatal("tok-1 not held")
	}
	revoked.Store("Bearer tok-1", true)
	if code := get(); code != http.StatusOK || srv.requests() != 2 {
		t.Fatalf("after revocation: status %d, %d token requests; want 200 after one replacement", code, srv.requests())
	}
	if st := tr.fast.Load(); st == nil || st.hdr[0] != "Bearer tok-2" {
		t.Fatal("tok-2 not held after it worked")
	}

	revoked.Store("Bearer tok-2", true)
	post, _ := http.NewRequest(http.MethodPost, "https://api.example.test/fhir/Patient", io.NopCloser(strings.NewReader("x")))
	resp, err := tr.RoundTrip(post)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("non-replayable body: %v %v, want the 401", resp, err)
	}
	if tr.fast.Load() != nil {
		t.Fatal("the rejected token is still held")
	}
	if code := get(); code != http.StatusOK || srv.requests() != 3 {
		t.Fatalf("next request: status %d, %d token requests; want 200 with tok-3", code, srv.requests())
	}
}

// leakySource is a user's Source that keeps its token in a field and has
// no printing methods of its own.
type leakySource struct{ token string }

func (l leakySource) Token(context.Context) (*oauth2.Token, error) {
	return &oauth2.Token{AccessToken: l.token}, nil
}

// TestTransportPrintsForeignSourceByType: a Transport prints a Source
// from outside this package by its type only; its fields may hold a token.
func TestTransportPrintsForeignSourceByType(t *testing.T) {
	tr := &Transport{Source: leakySource{token: "user-source-secret"}}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if got := fmt.Sprintf(verb, tr); strings.Contains(got, "user-source-secret") || !strings.Contains(got, "leakySource") {
			t.Errorf("%s: %q", verb, got)
		}
	}
}

// TestClosedSourceArmsNoTimer: a fetch that ends after Close publishes its
// token without a refresh timer, which would keep the source (and the
// timer watcher) alive until its refresh moment.
func TestClosedSourceArmsNoTimer(t *testing.T) {
	release := make(chan struct{})
	srv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		<-release
		writeToken(w, n, 3600, nil)
	})
	ts := newTS(t, Config{TokenURL: srv.URL})
	go ts.Token(context.Background())
	for srv.requests() == 0 {
		time.Sleep(time.Millisecond)
	}
	closed := make(chan struct{})
	go func() { ts.Close(); close(closed) }()
	for { // until Close has begun waiting for the fetch
		ts.mu.Lock()
		c := ts.closed
		ts.mu.Unlock()
		if c {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	<-closed
	st := ts.cur.Load()
	if st == nil {
		t.Fatal("the fetch in flight at Close published nothing")
	}
	armedTimers.mu.Lock()
	_, armed := armedTimers.armed[st]
	armedTimers.mu.Unlock()
	if armed || st.timer != nil {
		t.Fatal("a token published after Close has a refresh timer")
	}
}
