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
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/oauthkit/oauthkit/internal/benchkit"
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
	nop := benchkit.NewNop()
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
		fleets["limit"][i] = benchkit.NewLimit("limit-"+strconv.Itoa(i), nop)
		return nil
	})
	// One request through every transport first, so that each is measured
	// in its steady state: a Transport holds its token once the first
	// answer came back (the other two have nothing to warm).
	warm := benchkit.Request(b)
	for name, f := range fleets {
		for _, rt := range f {
			if _, err := rt.RoundTrip(warm); err != nil {
				b.Fatalf("%s: warm-up: %v", name, err)
			}
		}
	}
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
					req := benchkit.Request(b)
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
					req := benchkit.Request(b)
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
