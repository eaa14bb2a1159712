package oauthclient_test

// Multi-tenant benchmarks: many token sources in one process, one per
// tenant (client ID), as an integration engine serving many customers runs
// them.
//
//	go test -run='^$' -bench='MultiTenantHotPath' -benchmem ./oauthclient
//	go test -run='^$' -bench='CohortRefresh|QuietTenant' -benchtime=1x ./oauthclient
//
// BenchmarkMultiTenantHotPath{,Parallel} are ns/op benchmarks over 1,
// 1,000 and 10,000 sources; BenchmarkMultiTenantInterleaved times the
// libraries in alternating blocks. BenchmarkCohortRefresh and
// BenchmarkQuietTenant run real-time scenarios (about 4.5 minutes and 40 s
// in all) and report their outcome with b.ReportMetric.

import (
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/metrics"
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

// tenantServer is a token endpoint for many clients: every client ID with
// the bench secret gets a Bearer token after delay. It counts requests per
// client and keeps a gauge of requests in flight with its peak.
type tenantServer struct {
	*httptest.Server
	inflight, peak atomic.Int64
	mu             sync.Mutex // guards perClient
	perClient      map[string]int
}

func newTenantServer(b *testing.B, delay time.Duration, expiresIn int) *tenantServer {
	b.Helper()
	ts := &tenantServer{perClient: map[string]int{}}
	var issued atomic.Int64
	ts.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := ts.inflight.Add(1)
		defer ts.inflight.Add(-1)
		for p := ts.peak.Load(); n > p && !ts.peak.CompareAndSwap(p, n); p = ts.peak.Load() {
		}
		id, secret, ok := r.BasicAuth()
		if !ok || secret != benchSecret || r.PostFormValue("grant_type") != "client_credentials" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":"invalid_request"}`)
			return
		}
		ts.mu.Lock()
		ts.perClient[id]++
		ts.mu.Unlock()
		time.Sleep(delay)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"access_token": "at-" + strconv.FormatInt(issued.Add(1), 10),
			"token_type":   "Bearer",
			"expires_in":   expiresIn,
		})
	}))
	b.Cleanup(ts.Close)
	return ts
}

// counts returns the requests made so far per client ID.
func (ts *tenantServer) counts() map[string]int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	m := make(map[string]int, len(ts.perClient))
	for k, v := range ts.perClient {
		m[k] = v
	}
	return m
}

func tenantID(i int) string { return "tenant-" + strconv.Itoa(i) }

// tenantHTTPClient is the token endpoint client shared by all sources of a
// benchmark, keeping idle connections for idle concurrent requests.
func tenantHTTPClient(b *testing.B, idle int) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = idle
	tr.MaxIdleConnsPerHost = idle
	b.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// newTenant returns tenant i's source with default timing; obs and
// limiter may be nil.
func newTenant(b *testing.B, ts *tenantServer, i int, hc *http.Client, lim *oauthclient.RefreshLimiter, obs oauthclient.Observer) *oauthclient.TokenSource {
	b.Helper()
	src, err := oauthclient.NewTokenSource(oauthclient.Config{
		TokenURL:       ts.URL + "/token",
		ClientID:       tenantID(i),
		Auth:           oauthclient.ClientSecretBasic{Secret: benchSecret},
		HTTPClient:     hc,
		RefreshLimiter: lim,
		Observer:       obs,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { src.Close() })
	return src
}

// newXTenant returns x/oauth2's client-credentials source for tenant i.
func newXTenant(ts *tenantServer, i int, hc *http.Client) oauth2.TokenSource {
	cfg := clientcredentials.Config{ClientID: tenantID(i), ClientSecret: benchSecret, TokenURL: ts.URL + "/token", AuthStyle: oauth2.AuthStyleInHeader}
	return oauth2.ReuseTokenSource(nil, cfg.TokenSource(context.WithValue(context.Background(), oauth2.HTTPClient, hc)))
}

// forEach runs fn(0) … fn(n-1) from conc goroutines and fails b on the
// first error.
func forEach(b *testing.B, n, conc int, fn func(i int) error) {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, conc)
	for range conc {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				if err := fn(i); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
}

// hotFleets builds n tenants per library, each holding a valid one-hour
// token, plus n limit transports, all over a no-op base, in a shuffled
// order (so that consecutive requests do not touch neighbouring memory).
func hotFleets(b *testing.B, n int) map[string][]http.RoundTripper {
	b.Helper()
	ts := newTenantServer(b, 0, 3600)
	hc := tenantHTTPClient(b, 64)
	nop := benchNop()
	fleets := map[string][]http.RoundTripper{}
	for _, name := range hotPathNames {
		fleets[name] = make([]http.RoundTripper, n)
	}
	forEach(b, n, 32, func(i int) error {
		src := newTenant(b, ts, i, hc, nil, nil)
		xsrc := newXTenant(ts, i, hc)
		if _, err := src.Token(context.Background()); err != nil {
			return err
		}
		if _, err := xsrc.Token(); err != nil {
			return err
		}
		fleets["ours"][i] = &oauthclient.Transport{Source: src, Base: nop}
		fleets["xoauth2"][i] = &oauth2.Transport{Source: xsrc, Base: nop}
		fleets["limit"][i] = newLimitTransport("limit-"+strconv.Itoa(i), nop)
		return nil
	})
	perm := rand.Perm(n)
	for name, f := range fleets {
		shuffled := make([]http.RoundTripper, n)
		for i, j := range perm {
			shuffled[i] = f[j]
		}
		fleets[name] = shuffled
	}
	if sum := len(ts.counts()); sum != n {
		b.Fatalf("warm-up reached %d clients, want %d", sum, n)
	}
	return fleets
}

// BenchmarkMultiTenantHotPath sends requests round-robin over 1, 1,000 and
// 10,000 sources, each holding a valid one-hour token: the per-request cost
// when the token states no longer fit in the CPU caches.
func BenchmarkMultiTenantHotPath(b *testing.B) { benchMultiTenant(b, false) }

// BenchmarkMultiTenantHotPathParallel is BenchmarkMultiTenantHotPath from
// GOMAXPROCS goroutines, each starting at its own random source.
func BenchmarkMultiTenantHotPathParallel(b *testing.B) { benchMultiTenant(b, true) }

func benchMultiTenant(b *testing.B, parallel bool) {
	for _, n := range []int{1, 1000, 10000} {
		b.Run("sources="+strconv.Itoa(n), func(b *testing.B) {
			fleets := hotFleets(b, n)
			for _, name := range hotPathNames {
				rts := fleets[name]
				b.Run(name, func(b *testing.B) {
					req := hotPathRequest(b)
					b.ReportAllocs()
					b.ResetTimer()
					if !parallel {
						i := 0
						for range b.N {
							if _, err := rts[i].RoundTrip(req); err != nil {
								b.Fatal(err)
							}
							if i++; i == len(rts) {
								i = 0
							}
						}
						return
					}
					b.RunParallel(func(pb *testing.PB) {
						i := rand.IntN(len(rts))
						for pb.Next() {
							if _, err := rts[i].RoundTrip(req); err != nil {
								b.Error(err)
								return
							}
							if i++; i == len(rts) {
								i = 0
							}
						}
					})
				})
			}
		})
	}
}

// BenchmarkMultiTenantInterleaved sends blocks of 256 requests through
// ours, x/oauth2 and limit in turn (rotating which goes first), over 1 and
// 10,000 sources, timing each block, so that all three see the same
// machine load even when it changes from second to second. It reports the
// time per request of each (ours-ns, xoauth2-ns, limit-ns) and the ratios
// to limit; ns/op is the time of one block of each. "parallel" does the
// same from GOMAXPROCS goroutines, each timing its own blocks.
func BenchmarkMultiTenantInterleaved(b *testing.B) {
	const block = 256
	for _, n := range []int{1, 10000} {
		for _, parallel := range []bool{false, true} {
			name := "sources=" + strconv.Itoa(n) + "/serial"
			if parallel {
				name = "sources=" + strconv.Itoa(n) + "/parallel"
			}
			b.Run(name, func(b *testing.B) {
				fleets := hotFleets(b, n)
				var mu sync.Mutex
				var spent [3]time.Duration
				run := func(next func() bool) {
					req := hotPathRequest(b)
					var local [3]time.Duration
					var idx [3]int
					for k := range idx {
						idx[k] = rand.IntN(n)
					}
					for round := 0; next(); round++ {
						for j := range hotPathNames {
							k := (round + j) % len(hotPathNames)
							rts, i := fleets[hotPathNames[k]], idx[k]
							start := time.Now()
							for range block {
								rts[i].RoundTrip(req)
								if i++; i == n {
									i = 0
								}
							}
							local[k] += time.Since(start)
							idx[k] = i
						}
					}
					mu.Lock()
					for k := range spent {
						spent[k] += local[k]
					}
					mu.Unlock()
				}
				b.ResetTimer()
				if parallel {
					b.RunParallel(func(pb *testing.PB) { run(pb.Next) })
				} else {
					left := b.N
					run(func() bool { left--; return left >= 0 })
				}
				reqs := float64(b.N) * block
				for k, name := range hotPathNames {
					b.ReportMetric(float64(spent[k])/reqs, name+"-ns")
				}
				b.ReportMetric(float64(spent[0])/float64(spent[2]), "ours/limit")
				b.ReportMetric(float64(spent[1])/float64(spent[2]), "xoauth2/limit")
			})
		}
	}
}

// nopObserver implements oauthclient.Observer doing nothing; the
// benchmark observers embed it and override what they count.
type nopObserver struct{}

func (nopObserver) FetchStart(ctx context.Context, _ oauthclient.FetchEvent) context.Context {
	return ctx
}
func (nopObserver) FetchWait(context.Context, context.Context)                  {}
func (nopObserver) FetchEnd(context.Context, oauthclient.FetchResult)           {}
func (nopObserver) TokenRequest(context.Context, oauthclient.TokenRequestEvent) {}
func (nopObserver) CacheLoad(context.Context, oauthclient.CacheEvent)           {}
func (nopObserver) LockWait(context.Context, oauthclient.LockEvent)             {}
func (nopObserver) Replay(context.Context, oauthclient.ReplayEvent)             {}

// bgKey marks the context of a background refresh in cohortObserver.
type bgKey struct{}

// cohortRecorder records, per tenant, when each background refresh
// started (its refresh moment) and ended, and counts callers that waited
// for a token.
type cohortRecorder struct {
	waits atomic.Int64

	mu     sync.Mutex // guards the fields below
	starts [][]time.Time
	ends   [][]time.Time
	leads  [][]time.Duration // FetchResult.LeadTime per end
	done   int               // tenants with two refreshes ended
}

// cohortObserver reports tenant i's events to rec.
type cohortObserver struct {
	nopObserver
	rec *cohortRecorder
	i   int
}

func (o cohortObserver) FetchStart(ctx context.Context, e oauthclient.FetchEvent) context.Context {
	if !e.Background {
		return ctx
	}
	o.rec.mu.Lock()
	o.rec.starts[o.i] = append(o.rec.starts[o.i], time.Now())
	o.rec.mu.Unlock()
	return context.WithValue(ctx, bgKey{}, true)
}

func (o cohortObserver) FetchWait(context.Context, context.Context) { o.rec.waits.Add(1) }

func (o cohortObserver) FetchEnd(ctx context.Context, r oauthclient.FetchResult) {
	if ctx.Value(bgKey{}) == nil || r.Outcome != oauthclient.FetchFetched {
		return
	}
	o.rec.mu.Lock()
	o.rec.leads[o.i] = append(o.rec.leads[o.i], r.LeadTime)
	if o.rec.ends[o.i] = append(o.rec.ends[o.i], time.Now()); len(o.rec.ends[o.i]) == 2 {
		o.rec.done++
	}
	o.rec.mu.Unlock()
}

// cycle returns the first and last start of the tenants' c-th background
// refresh (from 0), the last end, the least time the replaced token had
// left when its successor arrived, and how many arrived after the replaced
// token's expiry (a caller then needed the token and started the queued
// refresh itself).
func (r *cohortRecorder) cycle(c int) (first, last, lastEnd time.Time, minLead time.Duration, late int) {
	minLead = time.Duration(1 << 62)
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.starts {
		if len(r.starts[i]) > c {
			if s := r.starts[i][c]; first.IsZero() || s.Before(first) {
				first = s
			}
			last = maxTime(last, r.starts[i][c])
		}
		if len(r.ends[i]) > c {
			lastEnd = maxTime(lastEnd, r.ends[i][c])
			minLead = min(minLead, r.leads[i][c])
			if r.leads[i][c] == 0 {
				late++
			}
		}
	}
	return first, last, lastEnd, minLead, late
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// tenantTraffic sends, from workers goroutines each cycling through all of
// rts from its own offset, batch requests every interval until stop is
// closed, and returns the latency each request spent in its transport.
func tenantTraffic(rts []http.RoundTripper, workers, batch int, interval time.Duration, stop <-chan struct{}) []time.Duration {
	var mu sync.Mutex
	var all []time.Duration
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			tm := &reqTiming{}
			req, _ := http.NewRequestWithContext(context.WithValue(context.Background(), timingKey{}, tm), http.MethodGet, "https://fhir.example.test/Patient", nil)
			var local []time.Duration
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for i := w * len(rts) / workers; ; {
				select {
				case <-stop:
					mu.Lock()
					all = append(all, local...)
					mu.Unlock()
					return
				case <-tick.C:
				}
				for range batch {
					tm.start = time.Now()
					if _, err := rts[i].RoundTrip(req); err != nil {
						local = append(local, time.Hour) // counted as slow
					} else {
						local = append(local, tm.sent.Sub(tm.start))
					}
					if i++; i == len(rts) {
						i = 0
					}
				}
			}
		})
	}
	wg.Wait()
	return all
}

// peakGoroutines samples runtime.NumGoroutine every 10 ms until stop is
// closed and returns the highest sample.
func peakGoroutines(stop <-chan struct{}) int {
	peak := runtime.NumGoroutine()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return peak
		case <-tick.C:
			peak = max(peak, runtime.NumGoroutine())
		}
	}
}

// runtimeHist reads a runtime/metrics histogram (cumulative since start).
func runtimeHist(name string) *metrics.Float64Histogram {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64Histogram {
		return nil
	}
	return s[0].Value.Float64Histogram()
}

// histSince returns, for the samples of histogram name recorded since
// before, the upper bound of the highest non-empty bucket in ms and how
// many samples lie in buckets from 50 ms up.
func histSince(name string, before *metrics.Float64Histogram) (maxMS float64, over50 uint64) {
	after := runtimeHist(name)
	if after == nil || before == nil {
		return 0, 0
	}
	for i, c := range after.Counts {
		if c -= before.Counts[i]; c == 0 {
			continue
		}
		maxMS = min(after.Buckets[i+1], 3600) * 1000
		if after.Buckets[i] >= 0.05 {
			over50 += c
		}
	}
	return maxMS, over50
}

// BenchmarkCohortRefresh runs 10,000 tenants whose tokens were obtained
// together through two refresh cycles: 64 s tokens (a 16 s refresh window,
// refresh moments drawn from its first 8 s), a token endpoint that takes
// 100 ms, one RefreshLimiter of 128 for all (at most 1,280 refreshes a
// second), and 4 goroutines sending 10 requests every 5 ms each, cycling
// through all tenants over a no-op base. Run with -benchtime=1x.
//
// The setup cold-fetches the tokens (not timed): "cohort" 1,000 at a time,
// so their issue times span about 2 s (issue-span-s) and 10,000 refreshes
// fall due within about 10 s; "cohort-paced" 128 at a time, spanning about
// 8 s. Both run until every tenant has been refreshed twice. "floor" sends
// the same traffic for 45 s with one-hour tokens that are not refreshed:
// the latency noise floor.
//
// Metrics: peak token requests in flight at the endpoint (peak-inflight),
// peak goroutines above the count before the traffic (peak-goroutines),
// callers that waited for a token (waits), token requests, the latency
// each request spent in its transport (p99-ms, max-ms, slow-reqs ≥ 50 ms),
// and per cycle N the span of the refresh moments (cN-span-s), that span
// as a fraction of the window (cN-span/window) and of its first half
// (cN-span/half), the time from the first refresh moment to the last new
// token (cN-done-s), the least time a replaced token had left when its
// successor arrived (cN-min-lead-s) and the refreshes that arrived after
// it expired (cN-late). To tell a slow request caused by the source from
// one caused by a saturated machine, it also reports from runtime/metrics
// the longest time a runnable goroutine waited for a CPU (sched-max-ms,
// bucket upper bound), how many such waits of 50 ms or more the runtime
// sampled (sched-slow) and the longest GC pause (gc-pause-max-ms).
func BenchmarkCohortRefresh(b *testing.B) {
	b.Run("cohort", func(b *testing.B) { runCohort(b, 64, 1000, 0) })
	b.Run("cohort-paced", func(b *testing.B) { runCohort(b, 64, 128, 0) })
	b.Run("floor", func(b *testing.B) { runCohort(b, 3600, 1000, 45*time.Second) })
}

// runCohort runs the scenario with expiresIn-second tokens, cold-fetched
// coldBatch at a time, for dur, or until every tenant was refreshed twice
// when dur is 0.
func runCohort(b *testing.B, expiresIn, coldBatch int, dur time.Duration) {
	const (
		tenants = 10000
		limit   = 128
		delay   = 100 * time.Millisecond
	)
	var added []time.Duration
	var peakIn, peakG, waits, tokenReqs int64
	var schedMax, gcMax float64
	var schedSlow uint64
	for range b.N {
		b.StopTimer()
		ts := newTenantServer(b, delay, expiresIn)
		hc := tenantHTTPClient(b, 2*limit)
		lim := oauthclient.NewRefreshLimiter(limit)
		rec := &cohortRecorder{starts: make([][]time.Time, tenants), ends: make([][]time.Time, tenants), leads: make([][]time.Duration, tenants)}
		srcs := make([]*oauthclient.TokenSource, tenants)
		rts := make([]http.RoundTripper, tenants)
		for i := range srcs {
			srcs[i] = newTenant(b, ts, i, hc, lim, cohortObserver{rec: rec, i: i})
			rts[i] = &oauthclient.Transport{Source: srcs[i], Base: leaveRoundTripper{benchNop()}}
		}
		coldStart := time.Now()
		forEach(b, tenants, coldBatch, func(i int) error { _, err := srcs[i].Token(context.Background()); return err })
		issueSpan := time.Since(coldStart)
		rec.waits.Store(0)
		ts.peak.Store(0)
		before := tenants
		// Let the goroutines of the setup (its fetches, the connections
		// beyond the idle pool) end, or their exit distorts the count.
		runtime.GC()
		time.Sleep(time.Second)
		baseline := runtime.NumGoroutine()
		stop, sampled := make(chan struct{}), make(chan int, 1)
		go func() { sampled <- peakGoroutines(stop) }()
		traffic := make(chan []time.Duration, 1)
		schedBefore, gcBefore := runtimeHist(schedLatencies), runtimeHist(gcPauses)
		b.StartTimer()
		go func() { traffic <- tenantTraffic(rts, 4, 10, 5*time.Millisecond, stop) }()
		if dur > 0 {
			time.Sleep(dur)
		} else {
			for deadline := time.Now().Add(4 * time.Duration(expiresIn) * time.Second); ; time.Sleep(100 * time.Millisecond) {
				rec.mu.Lock()
				done := rec.done
				rec.mu.Unlock()
				if done == tenants {
					break
				}
				if time.Now().After(deadline) {
					b.Errorf("only %d of %d tenants were refreshed twice", done, tenants)
					break
				}
			}
		}
		close(stop)
		added = append(added, <-traffic...)
		b.StopTimer()
		m, n := histSince(schedLatencies, schedBefore)
		schedMax, schedSlow = max(schedMax, m), schedSlow+n
		m, _ = histSince(gcPauses, gcBefore)
		gcMax = max(gcMax, m)
		peakG = max(peakG, int64(<-sampled-baseline))
		peakIn = max(peakIn, ts.peak.Load())
		waits += rec.waits.Load()
		for _, c := range ts.counts() {
			tokenReqs += int64(c)
		}
		tokenReqs -= int64(before)
		if dur == 0 {
			window := time.Duration(expiresIn) * time.Second / 4
			for c := range 2 {
				first, last, lastEnd, minLead, late := rec.cycle(c)
				p := "c" + strconv.Itoa(c+1)
				b.ReportMetric((last.Sub(first)).Seconds(), p+"-span-s")
				b.ReportMetric(float64(last.Sub(first))/float64(window), p+"-span/window")
				b.ReportMetric(float64(last.Sub(first))/float64(window/2), p+"-span/half")
				b.ReportMetric(lastEnd.Sub(first).Seconds(), p+"-done-s")
				b.ReportMetric(minLead.Seconds(), p+"-min-lead-s")
				b.ReportMetric(float64(late), p+"-late")
			}
			b.ReportMetric(issueSpan.Seconds(), "issue-span-s")
		}
		b.StartTimer()
	}
	slices.Sort(added)
	var slow int
	for _, d := range added {
		if d >= 50*time.Millisecond {
			slow++
		}
	}
	b.ReportMetric(float64(peakIn), "peak-inflight")
	b.ReportMetric(float64(peakG), "peak-goroutines")
	b.ReportMetric(float64(waits)/float64(b.N), "waits")
	b.ReportMetric(float64(tokenReqs)/float64(b.N), "token-reqs")
	b.ReportMetric(float64(len(added))/float64(b.N), "reqs")
	b.ReportMetric(float64(benchQuantile(added, 0.99))/float64(time.Millisecond), "p99-ms")
	b.ReportMetric(float64(benchQuantile(added, 1))/float64(time.Millisecond), "max-ms")
	b.ReportMetric(float64(slow)/float64(b.N), "slow-reqs")
	b.ReportMetric(schedMax, "sched-max-ms")
	b.ReportMetric(float64(schedSlow)/float64(b.N), "sched-slow")
	b.ReportMetric(gcMax, "gc-pause-max-ms")
}

// Runtime histograms read by runCohort: how long runnable goroutines
// waited for a CPU (sampled by the runtime), and stop-the-world pauses
// for GC.
const (
	schedLatencies = "/sched/latencies:seconds"
	gcPauses       = "/sched/pauses/total/gc:seconds"
)

// quietObserver counts, per tenant, the callers that waited for a token.
type quietObserver struct {
	nopObserver
	waits *atomic.Int64
}

func (o quietObserver) FetchWait(context.Context, context.Context) { o.waits.Add(1) }

// useOncePerPeriod makes one request through each of rts in each of
// periods consecutive periods, all starting now: at a random moment of
// each period, or, with steady, at a random moment of the first and then
// exactly one period apart.
func useOncePerPeriod(rts []http.RoundTripper, period time.Duration, periods int, steady bool) {
	start := time.Now()
	var wg sync.WaitGroup
	for _, rt := range rts {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodGet, "https://fhir.example.test/Patient", nil)
			phase := rand.N(period)
			for k := range periods {
				if !steady {
					phase = rand.N(period)
				}
				time.Sleep(time.Until(start.Add(time.Duration(k)*period + phase)))
				rt.RoundTrip(req)
			}
		})
	}
	wg.Wait()
}

// BenchmarkQuietTenant runs 100 tenants whose tokens are usable for 2 s
// (ours: expires_in=3 less its 1 s leeway; x/oauth2: expires_in=12 less
// its fixed 10 s). Run with -benchtime=1x.
//
// "random": each tenant sends one request at a random moment of each 2 s
// period, for 4 periods, so two requests are 0 to 4 s apart. "steady":
// each tenant sends 4 requests 1.8 s apart (0.9 of the usable lifetime)
// from a random first moment. The first request's token fetch is not
// counted: waits counts the other requests that waited for a token (ours:
// Observer.FetchWait; x/oauth2: its token requests, each of which a caller
// waits for), out of the 300 in uses.
//
// "idle-after-one-use": each tenant gets one token, is used once, then
// stays idle for two 3 s lifetimes. The used token is refreshed once ahead
// of its expiry (idle-refreshes, 100 expected); idle-extra-reqs counts the
// token requests beyond that one per tenant (0 expected: the unused
// successor is left to expire).
func BenchmarkQuietTenant(b *testing.B) {
	for _, pattern := range []string{"random", "steady"} {
		b.Run(pattern+"/ours", func(b *testing.B) {
			runQuiet(b, 3, pattern == "steady", true, func(ts *tenantServer, i int, hc *http.Client, lim *oauthclient.RefreshLimiter, waits *atomic.Int64) http.RoundTripper {
				return &oauthclient.Transport{Source: newTenant(b, ts, i, hc, lim, quietObserver{waits: waits}), Base: benchNop()}
			})
		})
		b.Run(pattern+"/xoauth2", func(b *testing.B) {
			runQuiet(b, 12, pattern == "steady", false, func(ts *tenantServer, i int, hc *http.Client, _ *oauthclient.RefreshLimiter, _ *atomic.Int64) http.RoundTripper {
				return &oauth2.Transport{Source: newXTenant(ts, i, hc), Base: benchNop()}
			})
		})
	}
	b.Run("idle-after-one-use/ours", func(b *testing.B) {
		const tenants = 100
		var refreshes, extra int64
		for range b.N {
			ts := newTenantServer(b, 0, 3)
			hc := tenantHTTPClient(b, 16)
			lim := oauthclient.NewRefreshLimiter(16)
			rts := make([]http.RoundTripper, tenants)
			for i := range rts {
				rts[i] = &oauthclient.Transport{Source: newTenant(b, ts, i, hc, lim, nil), Base: benchNop()}
			}
			useOncePerPeriod(rts, time.Millisecond, 1, false)
			time.Sleep(2 * 3 * time.Second)
			for _, c := range ts.counts() {
				refreshes += int64(c - 1)
				extra += int64(max(0, c-2))
			}
		}
		b.ReportMetric(float64(refreshes)/float64(b.N), "idle-refreshes")
		b.ReportMetric(float64(extra)/float64(b.N), "idle-extra-reqs")
	})
}

// runQuiet runs one "random" or "steady" scenario: 100 tenants from
// newRT, tokens of expiresIn seconds, 4 periods. With observed,
// waits are counted by the observer newRT was given, else as token
// requests.
func runQuiet(b *testing.B, expiresIn int, steady, observed bool, newRT func(ts *tenantServer, i int, hc *http.Client, lim *oauthclient.RefreshLimiter, waits *atomic.Int64) http.RoundTripper) {
	const (
		tenants = 100
		periods = 4
	)
	period := 2 * time.Second
	if steady {
		period = 1800 * time.Millisecond
	}
	var waits, tokenReqs int64
	for range b.N {
		ts := newTenantServer(b, 0, expiresIn)
		hc := tenantHTTPClient(b, 16)
		lim := oauthclient.NewRefreshLimiter(16)
		seen := make([]atomic.Int64, tenants)
		rts := make([]http.RoundTripper, tenants)
		for i := range rts {
			rts[i] = newRT(ts, i, hc, lim, &seen[i])
		}
		useOncePerPeriod(rts, period, periods, steady)
		counts := ts.counts()
		for i := range seen {
			w := int64(counts[tenantID(i)])
			if observed {
				w = seen[i].Load()
			}
			waits += max(0, w-1)
			tokenReqs += int64(counts[tenantID(i)])
		}
	}
	b.ReportMetric(float64(waits)/float64(b.N), "waits")
	b.ReportMetric(float64(tokenReqs)/float64(b.N), "token-reqs")
	b.ReportMetric(tenants*(periods-1), "uses")
}
