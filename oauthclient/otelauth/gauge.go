package otelauth

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/oauthkit/oauthkit/oauthclient"
)

// keySource numbers the sources of one Observe call.
const keySource = attribute.Key("oauth.source")

// Observe registers the gauge oauth.client.token.remaining_lifetime
// (seconds until the in-memory token expires; negative once it has) for
// sources on meter, each with the attribute oauth.source = its position
// in sources. A source without a token, or whose token has no known
// expiry, reports nothing. Unregister the returned registration when the
// sources are closed.
func Observe(meter metric.Meter, sources ...*oauthclient.TokenSource) (metric.Registration, error) {
	return observe(meter, time.Now, sources)
}

func observe(meter metric.Meter, now func() time.Time, sources []*oauthclient.TokenSource) (metric.Registration, error) {
	g, err := meter.Float64ObservableGauge("oauth.client.token.remaining_lifetime",
		metric.WithDescription("Time until the in-memory access token expires."), metric.WithUnit("s"))
	if err != nil {
		return nil, err
	}
	sets := make([]metric.ObserveOption, len(sources))
	for i := range sources {
		sets[i] = metric.WithAttributes(keySource.Int(i))
	}
	return meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		t := now()
		for i, s := range sources {
			if exp, ok := s.Expiry(); ok {
				o.ObserveFloat64(g, exp.Sub(t).Seconds(), sets[i])
			}
		}
		return nil
	}, g)
}
