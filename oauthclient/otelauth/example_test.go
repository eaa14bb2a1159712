package otelauth_test

import (
	"context"
	"fmt"
	"log"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/oauthkit/oauthkit/oauthclient"
	"github.com/oauthkit/oauthkit/oauthclient/otelauth"
	"github.com/oauthkit/oauthkit/oauthtest"
)

// Token-endpoint metrics of a token source, read with the SDK's manual
// reader (in a service: the exporter of your choice).
func Example() {
	srv := oauthtest.NewServer()
	defer srv.Close()
	if err := srv.RegisterClient(oauthtest.Client{ID: "engine", Secret: "s", AuthMethod: oauthtest.AuthClientSecretBasic}); err != nil {
		log.Fatal(err)
	}
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))

	ts, err := oauthclient.NewTokenSource(oauthclient.Config{
		TokenURL: srv.TokenURL(),
		ClientID: "engine",
		Auth:     oauthclient.ClientSecretBasic{Secret: "s"},
		Observer: otelauth.New(otelauth.Options{MeterProvider: mp}), // global TracerProvider
	})
	if err != nil {
		log.Fatal(err)
	}
	reg, err := otelauth.Observe(mp.Meter("example"), ts)
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Unregister()
	for i := 0; i < 3; i++ { // one request; then the token from memory
		if _, err := ts.Token(context.Background()); err != nil {
			log.Fatal(err)
		}
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		log.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				if m.Name == "oauth.client.token.requests" {
					for _, p := range d.DataPoints {
						outcome, _ := p.Attributes.Value("oauth.outcome")
						grant, _ := p.Attributes.Value("oauth.grant_type")
						fmt.Printf("%s %s=%s %s: %d\n", m.Name, "grant", grant.AsString(), outcome.AsString(), p.Value)
					}
				}
			case metricdata.Gauge[float64]:
				for _, p := range d.DataPoints {
					fmt.Printf("%s: about %.0f minutes\n", m.Name, p.Value/60)
				}
			}
		}
	}
	// The two instruments come from two meters, in no fixed order.

	// Unordered output:
	// oauth.client.token.requests grant=client_credentials ok: 1
	// oauth.client.token.remaining_lifetime: about 60 minutes
}
