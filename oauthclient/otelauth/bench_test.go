package otelauth_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/oauthkit/oauthkit/oauthclient"
	"github.com/oauthkit/oauthkit/oauthclient/otelauth"
)

// okTransport answers every request 200 with an empty body, so that the
// benchmark measures the Transport, not a network.
type okTransport struct{}

func (okTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
}

// BenchmarkTransportRoundTrip compares a Transport round trip with a fresh
// token without an observer and with an otelauth Observer (on SDK
// providers) in the same run; run it with -benchmem: the allocations are
// equal because the hot path calls no observer method.
//
//	go test -run '^$' -bench TransportRoundTrip -benchmem ./oauthclient/otelauth/
func BenchmarkTransportRoundTrip(b *testing.B) {
	srv, _ := tokenServer(b, nil, 0)
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	tp := sdktrace.NewTracerProvider()
	for _, bc := range []struct {
		name string
		obs  oauthclient.Observer
	}{
		{"no-observer", nil},
		{"otelauth", otelauth.New(otelauth.Options{MeterProvider: mp, TracerProvider: tp})},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ts, err := oauthclient.NewTokenSource(oauthclient.Config{
				TokenURL: srv.URL + "/token", ClientID: "engine",
				Auth: oauthclient.ClientSecretBasic{Secret: "s"}, Observer: bc.obs,
			})
			if err != nil {
				b.Fatal(err)
			}
			client := &http.Client{Transport: &oauthclient.Transport{Source: ts, Base: okTransport{}}}
			req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, "http://127.0.0.1/fhir/Patient", nil)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := ts.Token(context.Background()); err != nil { // warm: the token is fresh from now on
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				resp, err := client.Transport.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
}

// TestRoundTripAllocationsEqual checks the benchmark's claim: an observer
// adds no allocation to a round trip with a fresh token.
func TestRoundTripAllocationsEqual(t *testing.T) {
	srv, _ := tokenServer(t, nil, 0)
	allocs := func(obs oauthclient.Observer) float64 {
		ts, err := oauthclient.NewTokenSource(oauthclient.Config{
			TokenURL: srv.URL + "/token", ClientID: "engine", Auth: oauthclient.ClientSecretBasic{Secret: "s"}, Observer: obs,
		})
		if err != nil {
			t.Fatal(err)
		}
		tr := &oauthclient.Transport{Source: ts, Base: okTransport{}}
		req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1/fhir/Patient", strings.NewReader(""))
		req.Body, req.GetBody = nil, nil
		if _, err := ts.Token(context.Background()); err != nil {
			t.Fatal(err)
		}
		return testing.AllocsPerRun(200, func() {
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		})
	}
	tm := newTelemetry()
	without := allocs(nil)
	with := allocs(otelauth.New(otelauth.Options{MeterProvider: tm.mp, TracerProvider: tm.tp}))
	if with > without {
		t.Errorf("round trip allocations: %v with the observer, %v without", with, without)
	}
}
