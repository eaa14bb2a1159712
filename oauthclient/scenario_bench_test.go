package oauthclient_test

import (
	"context"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauthkit/oauthkit/oauthclient"
	"golang.org/x/oauth2"
)

// The real-time scenario benchmarks against golang.org/x/oauth2: expiry
// boundary, outage and cold stampede (see bench_test.go for how to run them).

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
