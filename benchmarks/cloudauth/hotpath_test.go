package cloudauth

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"cloud.google.com/go/auth"
	"cloud.google.com/go/auth/httptransport"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/oauthkit/oauthkit/internal/benchkit"
	"github.com/oauthkit/oauthkit/internal/reqcopy"
	"github.com/oauthkit/oauthkit/oauthclient"
)

const (
	benchClientID = "bench-client"
	benchSecret   = "bench-secret"
)

// names are the sub-benchmarks, in order: oauthclient, cloud.google.com/go/auth
// through its httptransport middleware and through a minimal transport,
// golang.org/x/oauth2, and the lower bound.
var names = []string{"ours", "cloudauth", "cloudauth-min", "xoauth2", "limit"}

// newTokenServer issues one-hour Bearer tokens to the bench client.
func newTokenServer(b *testing.B) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id, secret, ok := r.BasicAuth(); !ok || id != benchClientID || secret != benchSecret {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"access_token": "server-token", "token_type": "Bearer", "expires_in": 3600})
	}))
	b.Cleanup(srv.Close)
	return srv
}

// fixedProvider is an auth.TokenProvider that returns the same one-hour
// token, so that only auth.NewCachedTokenProvider's cache is measured.
type fixedProvider struct{ tok *auth.Token }

func (p fixedProvider) Token(context.Context) (*auth.Token, error) { return p.tok, nil }

// minimalCloudTransport sets the Authorization header from an
// auth.TokenProvider with nothing else: no universe-domain check, and a
// shallow request copy instead of http.Request.Clone.
type minimalCloudTransport struct {
	tp   auth.TokenProvider
	base http.RoundTripper
}

func (t minimalCloudTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	tok, err := t.tp.Token(req.Context())
	if err != nil {
		return nil, err
	}
	return t.base.RoundTrip(reqcopy.With(req, "Authorization", []string{"Bearer " + tok.Value}))
}

// transports returns each sub-benchmark's transport over base, holding a
// valid one-hour token.
func transports(b *testing.B, srv *httptest.Server, base http.RoundTripper) map[string]http.RoundTripper {
	b.Helper()
	hc := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone(), Timeout: 30 * time.Second}
	ours, err := oauthclient.NewTokenSource(oauthclient.Config{
		TokenURL: srv.URL + "/token", ClientID: benchClientID,
		Auth: oauthclient.ClientSecretBasic{Secret: benchSecret}, HTTPClient: hc,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ours.Close() })
	cc := clientcredentials.Config{ClientID: benchClientID, ClientSecret: benchSecret, TokenURL: srv.URL + "/token", AuthStyle: oauth2.AuthStyleInHeader}
	xsrc := oauth2.ReuseTokenSource(nil, cc.TokenSource(context.WithValue(context.Background(), oauth2.HTTPClient, hc)))
	cached := auth.NewCachedTokenProvider(fixedProvider{&auth.Token{Value: "cloud-token", Type: "Bearer", Expiry: time.Now().Add(time.Hour)}}, nil)
	cloud := &http.Client{Transport: base}
	if err := httptransport.AddAuthorizationMiddleware(cloud, auth.NewCredentials(&auth.CredentialsOptions{TokenProvider: cached})); err != nil {
		b.Fatal(err)
	}
	return map[string]http.RoundTripper{
		"ours":          &oauthclient.Transport{Source: ours, Base: base},
		"cloudauth":     cloud.Transport,
		"cloudauth-min": minimalCloudTransport{tp: cached, base: base},
		"xoauth2":       &oauth2.Transport{Source: xsrc, Base: base},
		"limit":         benchkit.NewLimit("limit-token", base),
	}
}

// hotPath returns the transports over a no-op base, after one checked
// request through each (which also fetches the first token).
func hotPath(b *testing.B) map[string]http.RoundTripper {
	b.Helper()
	srv := newTokenServer(b)
	warm := func(rts map[string]http.RoundTripper) map[string]http.RoundTripper {
		for name, rt := range rts {
			if _, err := rt.RoundTrip(benchkit.Request(b)); err != nil {
				b.Fatalf("%s: warm-up: %v", name, err)
			}
		}
		return rts
	}
	warm(transports(b, srv, benchkit.CheckBearer{}))
	// The same sources again over the no-op base: build them anew and warm
	// them the same way, since a transport's base cannot be swapped.
	return warm(transports(b, srv, benchkit.NewNop()))
}

// BenchmarkHotPath measures one RoundTrip with a valid cached token over
// a no-op base transport, per library.
func BenchmarkHotPath(b *testing.B) { benchkit.HotPath(b, hotPath(b), names, false) }

// BenchmarkHotPathParallel is BenchmarkHotPath from GOMAXPROCS goroutines
// sharing one transport per library.
func BenchmarkHotPathParallel(b *testing.B) { benchkit.HotPath(b, hotPath(b), names, true) }
