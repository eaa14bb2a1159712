package oauthclient_test

import (
	"context"
	"net/http"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauthkit/oauthkit/internal/benchkit"
	"github.com/oauthkit/oauthkit/oauthclient"
)

// The cohort-refresh scenario of the multi-tenant benchmarks (see
// tenancy_bench_test.go).

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
			rts[i] = &oauthclient.Transport{Source: srcs[i], Base: leaveRoundTripper{benchkit.NewNop()}}
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
