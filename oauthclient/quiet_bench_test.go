package oauthclient_test

import (
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauthkit/oauthkit/internal/benchkit"
	"github.com/oauthkit/oauthkit/oauthclient"
	"golang.org/x/oauth2"
)

// The quiet-tenant scenario of the multi-tenant benchmarks (see
// tenancy_bench_test.go).

// waitedAtLeast is the time from which a request counts as one that waited
// for a token: the scenarios' token endpoint takes 100 ms, a request that
// finds a usable token takes microseconds.
const waitedAtLeast = 50 * time.Millisecond

// useOncePerPeriod makes one request through each of rts in each of
// periods consecutive periods, all starting now: at a random moment of
// each period, or, with steady, at a random moment of the first and then
// exactly one period apart. It returns how many requests after each
// transport's first took waitedAtLeast or more.
func useOncePerPeriod(rts []http.RoundTripper, period time.Duration, periods int, steady bool) int64 {
	start := time.Now()
	var waited atomic.Int64
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
				began := time.Now()
				rt.RoundTrip(req)
				if k > 0 && time.Since(began) >= waitedAtLeast {
					waited.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return waited.Load()
}

// BenchmarkQuietTenant runs 100 tenants whose tokens are usable for 2 s
// (ours: expires_in=3 less its 1 s leeway; x/oauth2: expires_in=12 less
// its fixed 10 s), against a token endpoint that takes 100 ms. Run with
// -benchtime=1x.
//
// "random": each tenant sends one request at a random moment of each 2 s
// period, for 4 periods, so two requests are 0 to 4 s apart. "steady":
// each tenant sends 4 requests 1.8 s apart (0.9 of the usable lifetime)
// from a random first moment. waits counts the requests after each
// tenant's first (300 in all: uses) that took 50 ms or more, so waited
// for a token; the same measure for both libraries.
//
// "idle-after-one-use": each tenant gets one token, is used once, then
// stays idle for two 3 s lifetimes. The used token is refreshed once ahead
// of its expiry (idle-refreshes, 100 expected); idle-extra-reqs counts the
// token requests beyond that one per tenant (0 expected: the unused
// successor is left to expire).
func BenchmarkQuietTenant(b *testing.B) {
	ours := func(b *testing.B) quietTransport {
		return func(ts *tenantServer, i int, hc *http.Client, lim *oauthclient.RefreshLimiter) http.RoundTripper {
			return &oauthclient.Transport{Source: newTenant(b, ts, i, hc, lim, nil), Base: benchkit.NewNop()}
		}
	}
	for _, pattern := range []string{"random", "steady"} {
		b.Run(pattern+"/ours", func(b *testing.B) {
			runQuiet(b, 3, pattern == "steady", ours(b))
		})
		b.Run(pattern+"/xoauth2", func(b *testing.B) {
			runQuiet(b, 12, pattern == "steady", func(ts *tenantServer, i int, hc *http.Client, _ *oauthclient.RefreshLimiter) http.RoundTripper {
				return &oauth2.Transport{Source: newXTenant(ts, i, hc), Base: benchkit.NewNop()}
			})
		})
	}
	// With a realistic leeway (a tenth of a 20-s lifetime), one request
	// every 0.85 lifetimes: every token is used while it is usable, so the
	// chain of early refreshes never breaks.
	b.Run("steady-20s/ours", func(b *testing.B) {
		runQuietPeriod(b, 20, 17*time.Second, true, ours(b))
	})
	b.Run("idle-after-one-use/ours", func(b *testing.B) {
		const tenants = 100
		var refreshes, extra int64
		for range b.N {
			ts := newTenantServer(b, 100*time.Millisecond, 3)
			hc := tenantHTTPClient(b, 16)
			lim := oauthclient.NewRefreshLimiter(16)
			rts := make([]http.RoundTripper, tenants)
			for i := range rts {
				rts[i] = ours(b)(ts, i, hc, lim)
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

// quietTransport returns tenant i's transport.
type quietTransport func(ts *tenantServer, i int, hc *http.Client, lim *oauthclient.RefreshLimiter) http.RoundTripper

// runQuiet runs one "random" or "steady" scenario: 100 tenants from
// newRT, tokens of expiresIn seconds, 4 periods.
func runQuiet(b *testing.B, expiresIn int, steady bool, newRT quietTransport) {
	period := 2 * time.Second
	if steady {
		period = 1800 * time.Millisecond
	}
	runQuietPeriod(b, expiresIn, period, steady, newRT)
}

// runQuietPeriod is runQuiet with one request per tenant every period.
func runQuietPeriod(b *testing.B, expiresIn int, period time.Duration, steady bool, newRT quietTransport) {
	const (
		tenants = 100
		periods = 4
	)
	var waits, tokenReqs int64
	for range b.N {
		ts := newTenantServer(b, 100*time.Millisecond, expiresIn)
		hc := tenantHTTPClient(b, 16)
		lim := oauthclient.NewRefreshLimiter(16)
		rts := make([]http.RoundTripper, tenants)
		for i := range rts {
			rts[i] = newRT(ts, i, hc, lim)
		}
		waits += useOncePerPeriod(rts, period, periods, steady)
		for _, c := range ts.counts() {
			tokenReqs += int64(c)
		}
	}
	b.ReportMetric(float64(waits)/float64(b.N), "waits")
	b.ReportMetric(float64(tokenReqs)/float64(b.N), "token-reqs")
	b.ReportMetric(tenants*(periods-1), "uses")
}
