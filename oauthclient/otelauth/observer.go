package otelauth

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/oauthkit/oauthkit/oauthclient"
)

// scope is the instrumentation scope name of the meter and tracer.
const scope = "github.com/oauthkit/oauthkit/oauthclient/otelauth"

// Attribute keys.
const (
	keyGrant      = attribute.Key("oauth.grant_type")
	keyOutcome    = attribute.Key("oauth.outcome")
	keyErrorCode  = attribute.Key("oauth.error_code")
	keyClientID   = attribute.Key("oauth.client_id")
	keyAttempt    = attribute.Key("oauth.attempt")
	keyFetch      = attribute.Key("oauth.fetch.outcome")
	keyBackground = attribute.Key("oauth.fetch.background")
	keyCache      = attribute.Key("oauth.cache.result")
	keyLock       = attribute.Key("oauth.lock.outcome")
	keyReplay     = attribute.Key("oauth.replay.outcome")
	keyURL        = attribute.Key("url.full")
	keyStatus     = attribute.Key("http.response.status_code")
)

// Options configures New.
type Options struct {
	// MeterProvider provides the meter. Optional; default the global one
	// (otel.GetMeterProvider).
	MeterProvider metric.MeterProvider
	// TracerProvider provides the tracer. Optional; default the global
	// one (otel.GetTracerProvider).
	TracerProvider trace.TracerProvider
}

// Observer records oauthclient events as OpenTelemetry metrics and spans.
// Put it in oauthclient.Config.Observer. Safe for concurrent use; one
// Observer may serve many token sources.
type Observer struct {
	tracer trace.Tracer

	requests    metric.Int64Counter
	reqDuration metric.Float64Histogram
	fetches     metric.Int64Counter
	leadTime    metric.Float64Histogram
	cacheLoads  metric.Int64Counter
	lockWait    metric.Float64Histogram
	replays     metric.Int64Counter
}

var _ oauthclient.Observer = (*Observer)(nil)

// New returns an Observer recording with the providers of o. Instruments
// that cannot be created are reported to otel.Handle and left out.
func New(o Options) *Observer {
	mp, tp := o.MeterProvider, o.TracerProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	m := mp.Meter(scope)
	ob := &Observer{tracer: tp.Tracer(scope)}
	var err error
	handle := func(e error) {
		if e != nil {
			otel.Handle(e)
		}
	}
	ob.requests, err = m.Int64Counter("oauth.client.token.requests",
		metric.WithDescription("Token-endpoint requests."), metric.WithUnit("{request}"))
	handle(err)
	ob.reqDuration, err = m.Float64Histogram("oauth.client.token.request.duration",
		metric.WithDescription("Duration of token-endpoint requests."), metric.WithUnit("s"))
	handle(err)
	ob.fetches, err = m.Int64Counter("oauth.client.fetches",
		metric.WithDescription("Token fetches, each shared by every caller waiting for it."), metric.WithUnit("{fetch}"))
	handle(err)
	ob.leadTime, err = m.Float64Histogram("oauth.client.token.refresh.lead_time",
		metric.WithDescription("How long before the replaced token's expiry a new token arrived."), metric.WithUnit("s"))
	handle(err)
	ob.cacheLoads, err = m.Int64Counter("oauth.client.cache.loads",
		metric.WithDescription("Loads from the persistent token cache."), metric.WithUnit("{load}"))
	handle(err)
	ob.lockWait, err = m.Float64Histogram("oauth.client.lock.wait.duration",
		metric.WithDescription("Waits for the token cache's cross-process lock."), metric.WithUnit("s"))
	handle(err)
	ob.replays, err = m.Int64Counter("oauth.client.replays",
		metric.WithDescription("401 answers handled by the Transport."), metric.WithUnit("{response}"))
	handle(err)
	return ob
}

// fetchState is one fetch's span and the span contexts of its callers.
type fetchState struct {
	span       trace.Span
	background bool

	mu      sync.Mutex // guards callers
	callers []trace.Link
}

type fetchKey struct{}

// FetchStart implements oauthclient.Observer: it starts the fetch span.
func (o *Observer) FetchStart(ctx context.Context, e oauthclient.FetchEvent) context.Context {
	ctx, span := o.tracer.Start(ctx, "oauth.client.fetch",
		trace.WithNewRoot(),
		trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(keyGrant.String(e.Grant), keyURL.String(withoutQuery(e.TokenURL)),
			keyClientID.String(e.ClientID), keyBackground.Bool(e.Background)))
	return context.WithValue(ctx, fetchKey{}, &fetchState{span: span, background: e.Background})
}

// maxLinks bounds the caller links of one fetch (and of each of its token
// request spans); the OpenTelemetry SDK keeps 128 by default.
const maxLinks = 128

// FetchWait implements oauthclient.Observer: it links the fetch span to
// the caller's span.
func (o *Observer) FetchWait(fetchCtx, callerCtx context.Context) {
	sc := trace.SpanContextFromContext(callerCtx)
	if !sc.IsValid() {
		return
	}
	l := trace.Link{SpanContext: sc}
	if fs, ok := fetchCtx.Value(fetchKey{}).(*fetchState); ok {
		fs.mu.Lock()
		// Bounded like the SDK's default link limit: an outage can keep
		// thousands of callers waiting on one fetch.
		keep := len(fs.callers) < maxLinks
		if keep {
			fs.callers = append(fs.callers, l)
		}
		fs.mu.Unlock()
		if keep {
			fs.span.AddLink(l)
		}
	}
}

// FetchEnd implements oauthclient.Observer: it ends the fetch span and
// counts the fetch.
func (o *Observer) FetchEnd(fetchCtx context.Context, e oauthclient.FetchResult) {
	background := false
	if fs, ok := fetchCtx.Value(fetchKey{}).(*fetchState); ok {
		background = fs.background
		fs.span.SetAttributes(keyFetch.String(e.Outcome))
		if e.Err != nil {
			fs.span.SetStatus(codes.Error, e.Err.Error())
		}
		fs.span.End()
	}
	o.fetches.Add(fetchCtx, 1, metric.WithAttributes(keyFetch.String(e.Outcome), keyBackground.Bool(background)))
	if e.LeadTime > 0 {
		o.leadTime.Record(fetchCtx, e.LeadTime.Seconds())
	}
}

// TokenRequest implements oauthclient.Observer: it records the request's
// span (a child of the fetch span) and metrics.
func (o *Observer) TokenRequest(fetchCtx context.Context, e oauthclient.TokenRequestEvent) {
	attrs := []attribute.KeyValue{keyGrant.String(e.Grant), keyOutcome.String(e.Outcome)}
	if e.ErrorCode != "" {
		attrs = append(attrs, keyErrorCode.String(e.ErrorCode))
	}
	o.requests.Add(fetchCtx, 1, metric.WithAttributes(attrs...))
	o.reqDuration.Record(fetchCtx, e.Duration.Seconds(), metric.WithAttributes(attrs[:2]...))

	var links []trace.Link
	if fs, ok := fetchCtx.Value(fetchKey{}).(*fetchState); ok {
		fs.mu.Lock()
		links = append(links, fs.callers...)
		fs.mu.Unlock()
	}
	start := e.Start
	if start.IsZero() {
		start = time.Now().Add(-e.Duration)
	}
	_, span := o.tracer.Start(fetchCtx, "oauth.client.token_request",
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithTimestamp(start),
		trace.WithLinks(links...),
		trace.WithAttributes(append(attrs,
			keyURL.String(withoutQuery(e.TokenURL)), keyClientID.String(e.ClientID),
			keyAttempt.Int(e.Attempt), keyStatus.Int(e.StatusCode))...))
	if e.Outcome != oauthclient.RequestOK {
		desc := e.Outcome
		if e.ErrorCode != "" {
			desc += ": " + e.ErrorCode
		} else if e.StatusCode != 0 {
			desc += ": status " + strconv.Itoa(e.StatusCode)
		}
		span.SetStatus(codes.Error, desc)
	}
	span.End(trace.WithTimestamp(start.Add(e.Duration)))
}

// withoutQuery cuts the query (or its redaction marker) and fragment
// from a URL.
func withoutQuery(u string) string {
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		return u[:i]
	}
	return u
}

// CacheLoad implements oauthclient.Observer.
func (o *Observer) CacheLoad(ctx context.Context, e oauthclient.CacheEvent) {
	result := "miss"
	switch {
	case e.Failed:
		result = "failed"
	case e.Hit:
		result = "hit"
	}
	o.cacheLoads.Add(ctx, 1, metric.WithAttributes(keyCache.String(result)))
}

// LockWait implements oauthclient.Observer.
func (o *Observer) LockWait(ctx context.Context, e oauthclient.LockEvent) {
	o.lockWait.Record(ctx, e.Wait.Seconds(), metric.WithAttributes(keyLock.String(e.Outcome)))
}

// Replay implements oauthclient.Observer.
func (o *Observer) Replay(ctx context.Context, e oauthclient.ReplayEvent) {
	o.replays.Add(ctx, 1, metric.WithAttributes(keyReplay.String(e.Outcome)))
}
