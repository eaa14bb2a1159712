package oauthclient

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// nopRoundTripper answers every request with 200 without any I/O, so that
// the benchmarks measure the Transport, not the network.
type nopRoundTripper struct{}

func (nopRoundTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
}

// BenchmarkDPoPHotPath compares, in one run, a request through the
// Transport with a bearer token, the same with a DPoP-bound token (one
// proof signed per request), and one bare ES256 signature. The DPoP
// request should cost at most one signature plus the bearer request
// plus 20 %.
func BenchmarkDPoPHotPath(b *testing.B) {
	key := newDPoPKey(b, "ES256")
	source := func(b *testing.B, typ string, dpop bool) *http.Client {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{"access_token": "tok-1", "token_type": typ, "expires_in": 3600})
		}))
		b.Cleanup(srv.Close)
		cfg := Config{TokenURL: srv.URL, ClientID: "c"}
		if dpop {
			cfg.DPoPKey = key
		}
		ts, err := NewTokenSource(cfg)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := ts.Token(context.Background()); err != nil {
			b.Fatal(err)
		}
		return ts.Client(&http.Client{Transport: nopRoundTripper{}})
	}
	run := func(b *testing.B, c *http.Client) {
		req, _ := http.NewRequest("GET", "https://fhir.example/Patient?_id=p1", nil)
		b.ReportAllocs()
		for b.Loop() {
			resp, err := c.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			resp.Body.Close()
		}
	}
	b.Run("bearer", func(b *testing.B) { run(b, source(b, "Bearer", false)) })
	b.Run("dpop", func(b *testing.B) { run(b, source(b, "DPoP", true)) })
	// interleaved runs the three one after the other in every iteration,
	// so that a busy machine slows them alike, and reports the DPoP
	// request's cost over the sum of a signature and a bearer request.
	b.Run("interleaved", func(b *testing.B) {
		bearer, dpop := source(b, "Bearer", false), source(b, "DPoP", true)
		req, _ := http.NewRequest("GET", "https://fhir.example/Patient?_id=p1", nil)
		ek := key.(*ecdsa.PrivateKey)
		sum := sha256.Sum256([]byte("payload"))
		var tBearer, tDPoP, tSign time.Duration
		for b.Loop() {
			t0 := time.Now()
			resp, err := bearer.Do(req)
			t1 := time.Now()
			if err != nil {
				b.Fatal(err)
			}
			resp.Body.Close()
			t2 := time.Now()
			resp, err = dpop.Do(req)
			t3 := time.Now()
			if err != nil {
				b.Fatal(err)
			}
			resp.Body.Close()
			t4 := time.Now()
			if _, err := ek.Sign(rand.Reader, sum[:], nil); err != nil {
				b.Fatal(err)
			}
			t5 := time.Now()
			tBearer, tDPoP, tSign = tBearer+t1.Sub(t0), tDPoP+t3.Sub(t2), tSign+t5.Sub(t4)
		}
		n := float64(b.N)
		b.ReportMetric(float64(tBearer.Nanoseconds())/n, "bearer-ns/op")
		b.ReportMetric(float64(tDPoP.Nanoseconds())/n, "dpop-ns/op")
		b.ReportMetric(float64(tSign.Nanoseconds())/n, "sign-ns/op")
		b.ReportMetric(100*(float64(tDPoP)/float64(tBearer+tSign)-1), "dpop-over-sign+bearer-%")
	})
	b.Run("es256-sign", func(b *testing.B) {
		ek := key.(*ecdsa.PrivateKey)
		sum := sha256.Sum256([]byte("payload"))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ek.Sign(rand.Reader, sum[:], nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}
