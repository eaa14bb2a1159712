package cloudauth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"cloud.google.com/go/auth"
	"cloud.google.com/go/auth/httptransport"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

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
	return withHeader(req, []string{"Bearer " + tok.Value}, t.base)
}

// limitTransport does only what any correct token transport must: copy
// the request and its header map, set an Authorization value computed
// once, call the base.
type limitTransport struct {
	header []string
	base   http.RoundTripper
}

func (t limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return withHeader(req, t.header, t.base)
}

func withHeader(req *http.Request, hdr []string, base http.RoundTripper) (*http.Response, error) {
	return base.RoundTrip(reqcopy.With(req, "Authorization", hdr))
}

// nopTransport answers 200 without I/O.
type nopTransport struct{ resp *http.Response }

func (n nopTransport) RoundTrip(*http.Request) (*http.Response, error) { return n.resp, nil }

// checkTransport fails unless the request carries one Bearer header.
type checkTransport struct{}

func (checkTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if v := r.Header.Values("Authorization"); len(v) != 1 || len(v[0]) < len("Bearer x") || v[0][:7] != "Bearer " {
		return nil, errors.New("cloudauth: no Bearer Authorization header")
	}
	return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody}, nil
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
		"limit":         limitTransport{header: []string{"Bearer limit-token"}, base: base},
	}
}

// hotPath returns the transports over a no-op base, after one checked
// request through each (which also fetches the first token).
func hotPath(b *testing.B) map[string]http.RoundTripper {
	b.Helper()
	srv := newTokenServer(b)
	for name, rt := range transports(b, srv, checkTransport{}) {
		if _, err := rt.RoundTrip(request(b)); err != nil {
			b.Fatalf("%s: warm-up: %v", name, err)
		}
	}
	// The same sources again over the no-op base: build them anew and warm
	// them the same way, since a transport's base cannot be swapped.
	rts := transports(b, srv, nopTransport{resp: &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody}})
	for name, rt := range rts {
		if _, err := rt.RoundTrip(request(b)); err != nil {
			b.Fatalf("%s: warm-up: %v", name, err)
		}
	}
	return rts
}

func request(b *testing.B) *http.Request {
	req, err := http.NewRequest(http.MethodGet, "https://fhir.example.test/api/FHIR/R4/Patient?_id=42", nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Accept", "application/fhir+json")
	return req
}

// BenchmarkHotPath measures one RoundTrip with a valid cached token over
// a no-op base transport, per library.
func BenchmarkHotPath(b *testing.B) {
	rts := hotPath(b)
	for _, name := range names {
		rt := rts[name]
		b.Run(name, func(b *testing.B) {
			req := request(b)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := rt.RoundTrip(req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkHotPathParallel is BenchmarkHotPath from GOMAXPROCS goroutines
// sharing one transport per library.
func BenchmarkHotPathParallel(b *testing.B) {
	rts := hotPath(b)
	for _, name := range names {
		rt := rts[name]
		b.Run(name, func(b *testing.B) {
			req := request(b)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := rt.RoundTrip(req); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
