package oauthclient_test

// Benchmarks of oauthclient against golang.org/x/oauth2, side by side in one
// run: every benchmark has the sub-benchmarks "ours" (this package) and
// "xoauth2" (golang.org/x/oauth2); BenchmarkExpiryBoundary also has a
// "static" baseline, and the hot-path benchmarks a "limit" transport that
// does only what any correct token transport must (limitTransport).
// The multi-tenant benchmarks are in tenancy_bench_test.go.
//
//	go test -run='^$' -bench='HotPath' -benchmem ./oauthclient
//	go test -run='^$' -bench='ExpiryBoundary|Outage|ColdStampede' -benchtime=1x ./oauthclient
//
// BenchmarkHotPath and BenchmarkHotPathParallel are ordinary ns/op
// benchmarks. BenchmarkExpiryBoundary, BenchmarkOutage and
// BenchmarkColdStampede run a fixed real-time scenario per iteration and
// report its outcome with b.ReportMetric; their ns/op is the scenario's wall
// time. Run them with -benchtime=1x (they work with any b.N, reporting the
// worst latency over all iterations and the mean of the counts).
//
// All servers are httptest servers on 127.0.0.1. x/oauth2 uses
// clientcredentials with AuthStyleInHeader (the same client_secret_basic as
// ours): its default auto-detection would send a second request after every
// failed one, which would not be a fair count.

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/oauthkit/oauthkit/oauthclient"
)

const (
	benchClientID = "bench-client"
	benchSecret   = "bench-secret"
)

// benchTokenServer is a plain token endpoint: it counts requests, waits
// delay, then answers status (if set) with a JSON error, or issues a new
// Bearer token with the given expires_in.
type benchTokenServer struct {
	*httptest.Server
	hits atomic.Int64
}

func newBenchTokenServer(b *testing.B, delay time.Duration, expiresIn int, status int) *benchTokenServer {
	b.Helper()
	ts := &benchTokenServer{}
	var issued atomic.Int64
	ts.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts.hits.Add(1)
		if r.Method != http.MethodPost {
			http.Error(w, "method", http.StatusMethodNotAllowed)
			return
		}
		if id, secret, ok := r.BasicAuth(); !ok || id != benchClientID || secret != benchSecret {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":"invalid_client"}`)
			return
		}
		if r.PostFormValue("grant_type") != "client_credentials" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":"unsupported_grant_type"}`)
			return
		}
		if delay > 0 {
			time.Sleep(delay)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if status != 0 {
			w.WriteHeader(status)
			io.WriteString(w, `{"error":"temporarily_unavailable"}`)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{
			"access_token": "at-" + strconv.FormatInt(issued.Add(1), 10),
			"token_type":   "Bearer",
			"expires_in":   expiresIn,
		})
	}))
	b.Cleanup(ts.Close)
	return ts
}

// newBenchResourceServer answers 200 to any request with a Bearer token and
// 401 otherwise.
func newBenchResourceServer(b *testing.B) *httptest.Server {
	b.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := r.Header.Get("Authorization"); len(h) < len("Bearer x") || h[:7] != "Bearer " {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		io.WriteString(w, "ok")
	}))
	b.Cleanup(srv.Close)
	return srv
}

// benchHTTPTransport is a private connection pool, so neither library
// shares connections with the other or with http.DefaultTransport.
func benchHTTPTransport(b *testing.B) *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 512
	tr.MaxIdleConnsPerHost = 512
	b.Cleanup(tr.CloseIdleConnections)
	return tr
}

// newOurs returns a client-credentials TokenSource for ts with default
// settings apart from the token endpoint's connection pool.
func newOurs(b *testing.B, ts *benchTokenServer) *oauthclient.TokenSource {
	b.Helper()
	src, err := oauthclient.NewTokenSource(oauthclient.Config{
		TokenURL:   ts.URL + "/token",
		ClientID:   benchClientID,
		Auth:       oauthclient.ClientSecretBasic{Secret: benchSecret},
		HTTPClient: &http.Client{Transport: benchHTTPTransport(b), Timeout: 30 * time.Second},
	})
	if err != nil {
		b.Fatal(err)
	}
	return src
}

// newXOAuth2 returns x/oauth2's client-credentials source for ts: a
// ReuseTokenSource (clientcredentials wraps it itself) with the default
// 10 s expiry delta.
func newXOAuth2(b *testing.B, ts *benchTokenServer) oauth2.TokenSource {
	b.Helper()
	cfg := clientcredentials.Config{
		ClientID:     benchClientID,
		ClientSecret: benchSecret,
		TokenURL:     ts.URL + "/token",
		AuthStyle:    oauth2.AuthStyleInHeader,
	}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: benchHTTPTransport(b), Timeout: 30 * time.Second})
	return oauth2.ReuseTokenSource(nil, cfg.TokenSource(ctx))
}

// benchNopRoundTripper answers every request with the same response without
// any I/O, so the hot-path benchmarks measure only the token transports.
type benchNopRoundTripper struct{ resp *http.Response }

func (n benchNopRoundTripper) RoundTrip(*http.Request) (*http.Response, error) { return n.resp, nil }

// benchAuthCheckRoundTripper fails unless the request carries one Bearer header.
type benchAuthCheckRoundTripper struct{}

func (benchAuthCheckRoundTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	if v := r.Header.Values("Authorization"); len(v) != 1 || len(v[0]) < len("Bearer x") || v[0][:7] != "Bearer " {
		return nil, errors.New("no Bearer Authorization header")
	}
	return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody}, nil
}

// limitTransport is the lower bound for any token transport: it does only
// what a correct one must do per request (RoundTripper contract: never
// modify the caller's request): a shallow copy of the request with its own
// header map, an Authorization value computed once, and the base call. It
// looks up no token, so it never expires and never refreshes.
type limitTransport struct {
	header []string // "Bearer …", computed once, never modified
	base   http.RoundTripper
}

func newLimitTransport(token string, base http.RoundTripper) *limitTransport {
	return &limitTransport{header: []string{"Bearer " + token}, base: base}
}

func (t *limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r := new(http.Request)
	*r = *req
	h := make(http.Header, len(req.Header)+1)
	for k, v := range req.Header {
		h[k] = v
	}
	h["Authorization"] = t.header
	r.Header = h
	return t.base.RoundTrip(r)
}

// hotPathNames are the sub-benchmarks of the hot-path benchmarks, in order.
var hotPathNames = []string{"ours", "xoauth2", "limit"}

// benchNop is a no-op base transport answering 200.
func benchNop() benchNopRoundTripper {
	return benchNopRoundTripper{resp: &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody}}
}

// hotPathTransports returns, for each library and for limitTransport, a
// transport over a no-op base whose token source already holds a valid
// one-hour token.
func hotPathTransports(b *testing.B) map[string]http.RoundTripper {
	b.Helper()
	ts := newBenchTokenServer(b, 0, 3600, 0)
	ours := newOurs(b, ts)
	xsrc := newXOAuth2(b, ts)
	nop := benchNop()
	rts := map[string]http.RoundTripper{
		"ours":    &oauthclient.Transport{Source: ours, Base: nop},
		"xoauth2": &oauth2.Transport{Source: xsrc, Base: nop},
		"limit":   newLimitTransport("limit-token", nop),
	}
	// Pre-warm both sources and check that each transport sets the header.
	req := hotPathRequest(b)
	for name, rt := range map[string]http.RoundTripper{
		"ours":    &oauthclient.Transport{Source: ours, Base: benchAuthCheckRoundTripper{}},
		"xoauth2": &oauth2.Transport{Source: xsrc, Base: benchAuthCheckRoundTripper{}},
		"limit":   newLimitTransport("limit-token", benchAuthCheckRoundTripper{}),
	} {
		if _, err := rt.RoundTrip(req); err != nil {
			b.Fatalf("%s: pre-warm: %v", name, err)
		}
	}
	if n := ts.hits.Load(); n != 2 {
		b.Fatalf("pre-warm made %d token requests, want 2", n)
	}
	return rts
}

func hotPathRequest(b *testing.B) *http.Request {
	req, err := http.NewRequest(http.MethodGet, "https://fhir.example.test/api/FHIR/R4/Patient?_id=42", nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Accept", "application/fhir+json")
	return req
}

// BenchmarkHotPath measures one RoundTrip with a valid cached token over a
// no-op base transport: the per-request cost each library adds, next to
// the lower bound (limit).
func BenchmarkHotPath(b *testing.B) {
	rts := hotPathTransports(b)
	for _, name := range hotPathNames {
		rt := rts[name]
		b.Run(name, func(b *testing.B) {
			req := hotPathRequest(b)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := rt.RoundTrip(req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkHotPathParallel is BenchmarkHotPath from GOMAXPROCS goroutines
// sharing one transport: x/oauth2 takes a mutex per request, ours an atomic
// load.
func BenchmarkHotPathParallel(b *testing.B) {
	rts := hotPathTransports(b)
	for _, name := range hotPathNames {
		rt := rts[name]
		b.Run(name, func(b *testing.B) {
			req := hotPathRequest(b)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := rt.RoundTrip(req); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// timingKey carries a *reqTiming in a request's context.
type timingKey struct{}

// reqTiming records when a request entered the token transport and when it
// left it for the network.
type reqTiming struct{ start, sent time.Time }

// enterRoundTripper stamps reqTiming.start and calls the token transport.
type enterRoundTripper struct{ next http.RoundTripper }

func (t enterRoundTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	if tm, ok := r.Context().Value(timingKey{}).(*reqTiming); ok {
		tm.start = time.Now()
	}
	return t.next.RoundTrip(r)
}

// leaveRoundTripper, the token transport's base, stamps reqTiming.sent: the
// time between start and sent is the latency the token transport added
// (waiting for a token included).
type leaveRoundTripper struct{ base http.RoundTripper }

func (t leaveRoundTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	if tm, ok := r.Context().Value(timingKey{}).(*reqTiming); ok {
		tm.sent = time.Now()
	}
	return t.base.RoundTrip(r)
}

// steadyResult is the outcome of one steady-traffic scenario.
type steadyResult struct {
	added []time.Duration // latency added by the token transport, per request
	errs  int64           // transport errors and non-200 answers
}

// benchQuantile returns the q-quantile of the sorted durations d.
func benchQuantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[min(len(d)-1, int(q*float64(len(d))))]
}

// runSteady sends requests from workers goroutines, each one every
// interval, for dur, and records the latency the token transport added.
func runSteady(client *http.Client, url string, workers int, interval, dur time.Duration) steadyResult {
	var (
		mu  sync.Mutex
		res steadyResult
		wg  sync.WaitGroup
	)
	deadline := time.Now().Add(dur)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local steadyResult
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for time.Now().Before(deadline) {
				tm := &reqTiming{}
				req, _ := http.NewRequestWithContext(context.WithValue(context.Background(), timingKey{}, tm), http.MethodGet, url, nil)
				resp, err := client.Do(req)
				added := time.Since(tm.start)
				if !tm.sent.IsZero() {
					added = tm.sent.Sub(tm.start)
				}
				local.added = append(local.added, added)
				if err != nil {
					local.errs++
				} else {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						local.errs++
					}
				}
				<-tick.C
			}
			mu.Lock()
			res.added = append(res.added, local.added...)
			res.errs += local.errs
			mu.Unlock()
		}()
	}
	wg.Wait()
	return res
}

// BenchmarkExpiryBoundary sends steady traffic (8 goroutines, one request
// every 2 ms each) for 3.5 s through each library's transport while tokens
// are usable for 1 s and the token endpoint takes 100 ms, so the run
// crosses at least three token lifetimes. It reports the worst latency
// added to a request (max-ms/req), its 99th percentile (p99-ms/req), the
// requests delayed by 50 ms or more (slow-reqs), the token requests made
// (token-reqs) and the requests sent (reqs) and failed (errs).
// Run with -benchtime=1x.
//
// Both libraries get tokens usable for 1 s under their default settings:
//   - x/oauth2 treats a token as expired 10 s (its fixed expiryDelta) before
//     its expiry, so its endpoint answers expires_in=11: usable for 1 s, then
//     every caller blocks on the ReuseTokenSource mutex during the fetch.
//   - ours stops using a token ExpiryLeeway before its expiry, by default a
//     tenth of the lifetime but at least 1 s and at most half of it, so its
//     endpoint answers expires_in=2: usable for 1 s as well. Its default
//     RefreshWindow (a quarter of the lifetime, 0.5 s) starts one background
//     refresh 0.5 s after issue, so it makes more token requests in the same
//     time; that is the price of never blocking a request.
//
// A third sub-benchmark, static, sends the same traffic through
// oauthclient.Transport with a Static source, which never refreshes: its
// latencies are the noise floor of the machine and of this harness.
func BenchmarkExpiryBoundary(b *testing.B) {
	const (
		workers  = 8
		interval = 2 * time.Millisecond
		dur      = 3500 * time.Millisecond
		delay    = 100 * time.Millisecond
		// slowAdded is the added latency from which a request counts in
		// slow-reqs: half the token endpoint's delay.
		slowAdded = 50 * time.Millisecond
	)
	cases := []struct {
		name      string
		expiresIn int
		transport func(b *testing.B, ts *benchTokenServer, base http.RoundTripper) http.RoundTripper
	}{
		{"ours", 2, func(b *testing.B, ts *benchTokenServer, base http.RoundTripper) http.RoundTripper {
			src := newOurs(b, ts)
			if _, err := src.Token(context.Background()); err != nil {
				b.Fatal(err)
			}
			return &oauthclient.Transport{Source: src, Base: base}
		}},
		{"xoauth2", 11, func(b *testing.B, ts *benchTokenServer, base http.RoundTripper) http.RoundTripper {
			src := newXOAuth2(b, ts)
			if _, err := src.Token(); err != nil {
				b.Fatal(err)
			}
			return &oauth2.Transport{Source: src, Base: base}
		}},
		{"static", 0, func(b *testing.B, _ *benchTokenServer, base http.RoundTripper) http.RoundTripper {
			src, err := oauthclient.NewStatic("static-token")
			if err != nil {
				b.Fatal(err)
			}
			return &oauthclient.Transport{Source: src, Base: base}
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			var added []time.Duration
			var tokenReqs, errs int64
			for range b.N {
				b.StopTimer()
				ts := newBenchTokenServer(b, delay, c.expiresIn, 0)
				rs := newBenchResourceServer(b)
				client := &http.Client{Transport: enterRoundTripper{c.transport(b, ts, leaveRoundTripper{benchHTTPTransport(b)})}}
				ts.hits.Store(0) // the pre-warm fetch is not counted
				b.StartTimer()
				res := runSteady(client, rs.URL+"/Patient", workers, interval, dur)
				tokenReqs += ts.hits.Load()
				added = append(added, res.added...)
				errs += res.errs
			}
			slices.Sort(added)
			var slow int
			for _, d := range added {
				if d >= slowAdded {
					slow++
				}
			}
			b.ReportMetric(float64(benchQuantile(added, 1))/float64(time.Millisecond), "max-ms/req")
			b.ReportMetric(float64(benchQuantile(added, 0.99))/float64(time.Millisecond), "p99-ms/req")
			b.ReportMetric(float64(slow)/float64(b.N), "slow-reqs")
			b.ReportMetric(float64(tokenReqs)/float64(b.N), "token-reqs")
			b.ReportMetric(float64(len(added))/float64(b.N), "reqs")
			b.ReportMetric(float64(errs)/float64(b.N), "errs")
		})
	}
}

// BenchmarkOutage sends 10,000 resource requests while the token endpoint
// answers 503 to everything, and reports the token endpoint hits per 10,000
// requests (token-reqs/10k) and per second (token-reqs/s). Each request has
// a 50 ms budget, its own context deadline, for both libraries: x/oauth2's
// Token has no context, so for it the deadline only bounds the resource
// request, exactly as http.Client.Timeout would (which is not used because
// it makes the client call x/oauth2's deprecated CancelRequest, which logs).
// 200 goroutines send the requests, so the run lasts a few seconds even
// when every request waits its full 50 ms.
// Run with -benchtime=1x.
//
// Ours shares one fetch among all waiters, retries it on the default
// backoff schedule (250 ms doubling, jittered) and, between fetches, hands
// out the last error for the cooldown; x/oauth2 makes one token request per
// resource request.
func BenchmarkOutage(b *testing.B) {
	const (
		total   = 10000
		workers = 200
		budget  = 50 * time.Millisecond
	)
	cases := []struct {
		name   string
		client func(b *testing.B, ts *benchTokenServer, base http.RoundTripper) *http.Client
	}{
		{"ours", func(b *testing.B, ts *benchTokenServer, base http.RoundTripper) *http.Client {
			src := newOurs(b, ts)
			return &http.Client{Transport: &oauthclient.Transport{Source: src, Base: base}}
		}},
		{"xoauth2", func(b *testing.B, ts *benchTokenServer, base http.RoundTripper) *http.Client {
			src := newXOAuth2(b, ts)
			return &http.Client{Transport: &oauth2.Transport{Source: src, Base: base}}
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			var tokenReqs, ok int64
			var elapsed time.Duration
			for range b.N {
				b.StopTimer()
				ts := newBenchTokenServer(b, 0, 0, http.StatusServiceUnavailable)
				rs := newBenchResourceServer(b)
				client := c.client(b, ts, benchHTTPTransport(b))
				var left, okN atomic.Int64
				left.Store(total)
				var wg sync.WaitGroup
				b.StartTimer()
				start := time.Now()
				for range workers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for left.Add(-1) >= 0 {
							ctx, cancel := context.WithTimeout(context.Background(), budget)
							req, _ := http.NewRequestWithContext(ctx, http.MethodGet, rs.URL+"/Patient", nil)
							resp, err := client.Do(req)
							if err == nil {
								io.Copy(io.Discard, resp.Body)
								resp.Body.Close()
								if resp.StatusCode == http.StatusOK {
									okN.Add(1)
								}
							}
							cancel()
						}
					}()
				}
				wg.Wait()
				elapsed += time.Since(start)
				tokenReqs += ts.hits.Load()
				ok += okN.Load()
			}
			b.ReportMetric(float64(tokenReqs)*10000/float64(total)/float64(b.N), "token-reqs/10k")
			b.ReportMetric(float64(tokenReqs)/elapsed.Seconds(), "token-reqs/s")
			b.ReportMetric(float64(ok)/float64(b.N), "ok-reqs")
		})
	}
}

// BenchmarkColdStampede starts 1,000 goroutines that call Token at once on
// a source with no token, against an endpoint that takes 20 ms, and reports
// the token requests made (token-reqs) and the calls that failed (errs).
func BenchmarkColdStampede(b *testing.B) {
	const (
		callers = 1000
		delay   = 20 * time.Millisecond
	)
	cases := []struct {
		name  string
		token func(b *testing.B, ts *benchTokenServer) func() error
	}{
		{"ours", func(b *testing.B, ts *benchTokenServer) func() error {
			src := newOurs(b, ts)
			return func() error { _, err := src.Token(context.Background()); return err }
		}},
		{"xoauth2", func(b *testing.B, ts *benchTokenServer) func() error {
			src := newXOAuth2(b, ts)
			return func() error { _, err := src.Token(); return err }
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			ts := newBenchTokenServer(b, delay, 3600, 0)
			var errs atomic.Int64
			for range b.N {
				b.StopTimer()
				token := c.token(b, ts)
				startGate := make(chan struct{})
				var ready, wg sync.WaitGroup
				for range callers {
					wg.Add(1)
					ready.Add(1)
					go func() {
						defer wg.Done()
						ready.Done()
						<-startGate
						if token() != nil {
							errs.Add(1)
						}
					}()
				}
				ready.Wait()
				b.StartTimer()
				close(startGate)
				wg.Wait()
			}
			b.ReportMetric(float64(ts.hits.Load())/float64(b.N), "token-reqs")
			b.ReportMetric(float64(errs.Load())/float64(b.N), "errs")
		})
	}
}
