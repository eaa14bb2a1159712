package oauthclient_test

// Benchmarks of oauthclient against golang.org/x/oauth2, side by side in one
// run: every benchmark has the sub-benchmarks "ours" (this package) and
// "xoauth2" (golang.org/x/oauth2); BenchmarkExpiryBoundary also has a
// "static" baseline, and the hot-path benchmarks a "limit" transport that
// does only what any correct token transport must (benchkit.Limit).
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
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/oauthkit/oauthkit/internal/benchkit"
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

// hotPathNames are the sub-benchmarks of the hot-path benchmarks, in order.
var hotPathNames = []string{"ours", "xoauth2", "limit"}

// hotPathTransports returns, for each library and for benchkit.Limit, a
// transport over a no-op base whose token source already holds a valid
// one-hour token.
func hotPathTransports(b *testing.B) map[string]http.RoundTripper {
	b.Helper()
	ts := newBenchTokenServer(b, 0, 3600, 0)
	ours := newOurs(b, ts)
	xsrc := newXOAuth2(b, ts)
	nop := benchkit.NewNop()
	rts := map[string]http.RoundTripper{
		"ours":    &oauthclient.Transport{Source: ours, Base: nop},
		"xoauth2": &oauth2.Transport{Source: xsrc, Base: nop},
		"limit":   benchkit.NewLimit("limit-token", nop),
	}
	// Pre-warm both sources and check that each transport sets the header.
	req := benchkit.Request(b)
	for name, rt := range map[string]http.RoundTripper{
		"ours":    &oauthclient.Transport{Source: ours, Base: benchkit.CheckBearer{}},
		"xoauth2": &oauth2.Transport{Source: xsrc, Base: benchkit.CheckBearer{}},
		"limit":   benchkit.NewLimit("limit-token", benchkit.CheckBearer{}),
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

// BenchmarkHotPath measures one RoundTrip with a valid cached token over a
// no-op base transport: the per-request cost each library adds, next to
// the lower bound (limit).
func BenchmarkHotPath(b *testing.B) { benchkit.HotPath(b, hotPathTransports(b), hotPathNames, false) }

// BenchmarkHotPathParallel is BenchmarkHotPath from GOMAXPROCS goroutines
// sharing one transport: x/oauth2 takes a mutex per request, ours an atomic
// load.
func BenchmarkHotPathParallel(b *testing.B) {
	benchkit.HotPath(b, hotPathTransports(b), hotPathNames, true)
}

// BenchmarkHotPathBoundOrigins is BenchmarkHotPath for a Transport bound
// to the request's origin (Origins set), next to an unbound one.
func BenchmarkHotPathBoundOrigins(b *testing.B) {
	ours := newOurs(b, newBenchTokenServer(b, 0, 3600, 0))
	rts := map[string]http.RoundTripper{
		"unbound": &oauthclient.Transport{Source: ours, Base: benchkit.NewNop()},
		"bound":   &oauthclient.Transport{Source: ours, Base: benchkit.NewNop(), Origins: oauthclient.OriginList{"https://fhir.example.test"}},
	}
	benchkit.HotPath(b, rts, []string{"unbound", "bound"}, false)
}
