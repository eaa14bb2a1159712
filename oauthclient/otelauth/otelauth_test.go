package otelauth_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/oauthkit/oauthkit/oauthclient"
	"github.com/oauthkit/oauthkit/oauthclient/otelauth"
)

// telemetry is an SDK meter and tracer provider recording in memory.
type telemetry struct {
	reader *sdkmetric.ManualReader
	mp     *sdkmetric.MeterProvider
	spans  *tracetest.SpanRecorder
	tp     *sdktrace.TracerProvider
}

func newTelemetry() *telemetry {
	t := &telemetry{reader: sdkmetric.NewManualReader(), spans: tracetest.NewSpanRecorder()}
	t.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(t.reader))
	t.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(t.spans))
	return t
}

// points returns the data points of the named instrument: sums for
// counters, counts for histograms, values for gauges, by attribute set.
func (tm *telemetry) points(t *testing.T, name string) map[attribute.Distinct]float64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := tm.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[attribute.Distinct]float64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					out[p.Attributes.Equivalent()] += float64(p.Value)
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					out[p.Attributes.Equivalent()] += float64(p.Count)
				}
			case metricdata.Gauge[float64]:
				for _, p := range d.DataPoints {
					out[p.Attributes.Equivalent()] = p.Value
				}
			}
		}
	}
	return out
}

func set(kv ...attribute.KeyValue) attribute.Distinct {
	s := attribute.NewSet(kv...)
	return s.Equivalent()
}

// gatedObserver releases the token endpoint once n callers wait.
type gatedObserver struct {
	*otelauth.Observer
	n     int32
	waits atomic.Int32
	all   chan struct{}
}

func (g *gatedObserver) FetchWait(fetchCtx, callerCtx context.Context) {
	g.Observer.FetchWait(fetchCtx, callerCtx)
	if g.waits.Add(1) == g.n {
		close(g.all)
	}
}

// tokenServer answers client_credentials requests after release is
// closed; the first failures requests get a 503.
func tokenServer(t testing.TB, release <-chan struct{}, failures int) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if release != nil {
			<-release
		}
		w.Header().Set("Content-Type", "application/json")
		if int(n.Add(1)) <= failures {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"error":"temporarily_unavailable"}`)
			return
		}
		fmt.Fprintf(w, `{"access_token":"tok-%d","token_type":"Bearer","expires_in":3600}`, n.Load())
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestColdStampedeOneRequestLinkedToEveryCaller(t *testing.T) {
	const callers = 8
	tm := newTelemetry()
	obs := &gatedObserver{Observer: otelauth.New(otelauth.Options{MeterProvider: tm.mp, TracerProvider: tm.tp}), n: callers, all: make(chan struct{})}
	release := make(chan struct{})
	go func() { <-obs.all; close(release) }()
	srv, requests := tokenServer(t, release, 0)
	ts, err := oauthclient.NewTokenSource(oauthclient.Config{
		TokenURL: srv.URL + "/token?tenant=a", ClientID: "engine",
		Auth: oauthclient.ClientSecretBasic{Secret: "s3cr3t-marker"}, Observer: obs,
	})
	if err != nil {
		t.Fatal(err)
	}
	tracer := tm.tp.Tracer("test")
	callerIDs := map[string]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < callers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, span := tracer.Start(context.Background(), "caller")
			defer span.End()
			mu.Lock()
			callerIDs[span.SpanContext().SpanID().String()] = true
			mu.Unlock()
			if _, err := ts.Token(ctx); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := requests.Load(); n != 1 {
		t.Fatalf("%d token requests, want 1", n)
	}

	var fetch, req sdktrace.ReadOnlySpan
	for _, s := range tm.spans.Ended() {
		switch s.Name() {
		case "oauth.client.fetch":
			fetch = s
		case "oauth.client.token_request":
			if req != nil {
				t.Fatal("more than one token request span")
			}
			req = s
		}
	}
	if fetch == nil || req == nil {
		t.Fatal("fetch or token request span missing")
	}
	if req.Parent().SpanID() != fetch.SpanContext().SpanID() {
		t.Error("the token request span is not a child of the fetch span")
	}
	for name, s := range map[string]sdktrace.ReadOnlySpan{"fetch": fetch, "token request": req} {
		linked := map[string]bool{}
		for _, l := range s.Links() {
			linked[l.SpanContext.SpanID().String()] = true
		}
		if len(linked) != callers {
			t.Errorf("%s span links %d callers, want %d", name, len(linked), callers)
		}
		for id := range linked {
			if !callerIDs[id] {
				t.Errorf("%s span links a span that is not a caller", name)
			}
		}
	}
	attrs := map[attribute.Key]attribute.Value{}
	for _, kv := range req.Attributes() {
		attrs[kv.Key] = kv.Value
	}
	if got := attrs["url.full"].AsString(); got != srv.URL+"/token" {
		t.Errorf("url.full = %q, want the token URL without its query", got)
	}
	if attrs["oauth.grant_type"].AsString() != "client_credentials" || attrs["oauth.client_id"].AsString() != "engine" ||
		attrs["oauth.attempt"].AsInt64() != 1 || attrs["http.response.status_code"].AsInt64() != 200 {
		t.Errorf("token request attributes = %v", req.Attributes())
	}
	for _, s := range tm.spans.Ended() {
		for _, kv := range s.Attributes() {
			if v := kv.Value.Emit(); strings.Contains(v, "s3cr3t-marker") || strings.Contains(v, "tok-1") {
				t.Errorf("span %s carries a secret in %s", s.Name(), kv.Key)
			}
		}
		if d := s.Status().Description; strings.Contains(d, "s3cr3t-marker") || strings.Contains(d, "tok-1") {
			t.Errorf("span %s carries a secret in its status", s.Name())
		}
	}

	okSet := set(attribute.String("oauth.grant_type", "client_credentials"), attribute.String("oauth.outcome", "ok"))
	if got := tm.points(t, "oauth.client.token.requests"); len(got) != 1 || got[okSet] != 1 {
		t.Errorf("token.requests = %v, want 1 ok", got)
	}
	if got := tm.points(t, "oauth.client.token.request.duration"); got[okSet] != 1 {
		t.Errorf("token.request.duration count = %v, want 1", got)
	}
	fetched := set(attribute.String("oauth.fetch.outcome", "fetched"), attribute.Bool("oauth.fetch.background", false))
	if got := tm.points(t, "oauth.client.fetches"); len(got) != 1 || got[fetched] != 1 {
		t.Errorf("fetches = %v, want 1 fetched", got)
	}

	reg, err := otelauth.Observe(tm.mp.Meter("test"), ts)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Unregister()
	life := tm.points(t, "oauth.client.token.remaining_lifetime")[set(attribute.Int("oauth.source", 0))]
	if life <= 3000 || life > 3600 {
		t.Errorf("remaining lifetime %v s, want about 3600", life)
	}
}

func TestOutageRequestsFollowBackoff(t *testing.T) {
	tm := newTelemetry()
	obs := otelauth.New(otelauth.Options{MeterProvider: tm.mp, TracerProvider: tm.tp})
	srv, requests := tokenServer(t, nil, 1000)
	ts, err := oauthclient.NewTokenSource(oauthclient.Config{
		TokenURL: srv.URL + "/token", ClientID: "engine", Auth: oauthclient.ClientSecretBasic{Secret: "s"},
		// Delays long enough that the cool-down after the failed fetch (the
		// schedule's next delay, ≥ 100 ms) outlasts the calls below on a
		// busy machine.
		Retry:         &oauthclient.RetryPolicy{MaxAttempts: 3, InitialInterval: 50 * time.Millisecond, MaxInterval: time.Second},
		ErrorCooldown: time.Hour,
		Observer:      obs,
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if _, err := ts.Token(context.Background()); err == nil {
			t.Fatal("token during an outage")
		}
	}
	// One fetch of MaxAttempts requests; the next callers get its error
	// during the cooldown instead of new requests.
	if n := requests.Load(); n != 3 {
		t.Fatalf("server saw %d requests, want 3", n)
	}
	temp := set(attribute.String("oauth.grant_type", "client_credentials"), attribute.String("oauth.outcome", "temporary_error"),
		attribute.String("oauth.error_code", "temporarily_unavailable"))
	if got := tm.points(t, "oauth.client.token.requests"); len(got) != 1 || got[temp] != 3 {
		t.Errorf("token.requests = %v, want 3 temporary errors", got)
	}
	failed := set(attribute.String("oauth.fetch.outcome", "failed"), attribute.Bool("oauth.fetch.background", false))
	if got := tm.points(t, "oauth.client.fetches"); got[failed] != 1 {
		t.Errorf("fetches = %v, want 1 failed", got)
	}
	attempts := map[int64]bool{}
	for _, s := range tm.spans.Ended() {
		if s.Name() == "oauth.client.token_request" {
			for _, kv := range s.Attributes() {
				if kv.Key == "oauth.attempt" {
					attempts[kv.Value.AsInt64()] = true
				}
			}
			if s.Status().Code.String() != "Error" {
				t.Errorf("failed request span status %v", s.Status().Code)
			}
		}
	}
	if len(attempts) != 3 || !attempts[1] || !attempts[3] {
		t.Errorf("token request span attempts = %v, want 1..3", attempts)
	}
	if got := tm.points(t, "oauth.client.token.remaining_lifetime"); len(got) != 0 {
		t.Errorf("remaining lifetime without a token: %v", got)
	}
}
