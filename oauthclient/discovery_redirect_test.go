package oauthclient

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/oauth2"
)

// redirectingServer answers every request with a 302 to target(path, query).
func redirectingServer(t *testing.T, tls bool, target func(r *http.Request) string) *httptest.Server {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, target(r), http.StatusFound) })
	srv := httptest.NewUnstartedServer(h)
	if tls {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv
}

// metadataServer is a plain-http server that serves SMART and RFC 8414
// documents naming its own endpoints and counts the requests it gets.
func metadataServer(t *testing.T, hits *atomic.Int32) *httptest.Server {
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"issuer":"`+srv.URL+`","token_endpoint":"`+srv.URL+`/token"}`)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestDiscoverRefusesRedirectThatLeavesHTTPS(t *testing.T) {
	key := randomMarker(t)
	var hits atomic.Int32
	plain := metadataServer(t, &hits)
	tlsSrv := redirectingServer(t, true, func(r *http.Request) string {
		return plain.URL + r.URL.Path + "?subscription-key=" + key
	})
	var userCalls atomic.Int32
	clients := map[string]*http.Client{
		"default policy": tlsSrv.Client(),
		"permissive caller policy": func() *http.Client {
			c := *tlsSrv.Client()
			c.CheckRedirect = func(*http.Request, []*http.Request) error { userCalls.Add(1); return nil }
			return &c
		}(),
	}
	discover := map[string]func(ctx context.Context, u string) error{
		"DiscoverSMART":  func(ctx context.Context, u string) error { _, err := DiscoverSMART(ctx, u+"/fhir"); return err },
		"DiscoverServer": func(ctx context.Context, u string) error { _, err := DiscoverServer(ctx, u); return err },
	}
	for cname, client := range clients {
		for dname, d := range discover {
			t.Run(dname+" with "+cname, func(t *testing.T) {
				before := client.CheckRedirect
				ctx := context.WithValue(t.Context(), oauth2.HTTPClient, client)
				err := d(ctx, tlsSrv.URL)
				if !errors.Is(err, ErrDiscovery) || !errors.Is(err, ErrInsecureURL) {
					t.Errorf("err = %v, want ErrDiscovery and ErrInsecureURL", hideMarker(err, key))
				}
				if err != nil && strings.Contains(err.Error(), key) {
					t.Error("error text holds the query of the redirect target")
				}
				if (client.CheckRedirect == nil) != (before == nil) {
					t.Error("the caller's http.Client was changed")
				}
			})
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the plain-http server got %d requests", n)
	}
	if n := userCalls.Load(); n != 0 {
		t.Errorf("the caller's redirect policy was asked %d times about a refused redirect", n)
	}
}

func TestDiscoverRedirectPolicy(t *testing.T) {
	var hits atomic.Int32
	plainDoc := metadataServer(t, &hits)
	tlsDoc := newDiscoveryServer(t, func(b string) map[string]string {
		return map[string]string{"/fhir/.well-known/smart-configuration": `{"token_endpoint":"` + b + `/token"}`}
	})
	to := func(base string) func(*http.Request) string {
		return func(r *http.Request) string { return base + r.URL.Path }
	}
	localhost := strings.Replace(plainDoc.URL, "127.0.0.1", "localhost", 1)
	tests := []struct {
		name    string
		from    *httptest.Server
		wantErr error // nil: success
	}{
		{"https to https", redirectingServer(t, true, to(tlsDoc.URL)), nil},
		{"https to https to http", redirectingServer(t, true, to(redirectingServer(t, true, to(plainDoc.URL)).URL)), ErrInsecureURL},
		{"https to http loopback", redirectingServer(t, true, to(plainDoc.URL)), ErrInsecureURL},
		{"http loopback to http loopback", redirectingServer(t, false, to(localhost)), nil},
		{"http loopback to https", redirectingServer(t, false, to(tlsDoc.URL)), nil},
		{"http loopback to http remote", redirectingServer(t, false, to("http://fhir.example.invalid")), ErrInsecureURL},
		{"http loopback to ftp", redirectingServer(t, false, to("ftp://127.0.0.1")), ErrDiscovery},
		{"redirect loop", redirectingServer(t, true, func(r *http.Request) string { return r.URL.String() }), ErrDiscovery},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := discoveryContext(t, tlsDoc)
			c, err := DiscoverSMART(ctx, tt.from.URL+"/fhir")
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("DiscoverSMART: %v", err)
				}
				if c.TokenEndpoint == "" {
					t.Error("no token endpoint")
				}
				return
			}
			if !errors.Is(err, ErrDiscovery) || !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestDiscoverAppliesCallersRedirectPolicyAfterItsOwn(t *testing.T) {
	tlsDoc := newDiscoveryServer(t, func(b string) map[string]string {
		return map[string]string{"/fhir/.well-known/smart-configuration": `{"token_endpoint":"` + b + `/token"}`}
	})
	from := redirectingServer(t, true, func(r *http.Request) string { return tlsDoc.URL + r.URL.Path })
	errCaller := errors.New("caller refuses redirects")
	var calls atomic.Int32
	client := *tlsDoc.Client()
	client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		calls.Add(1)
		if req.URL.Host != tlsDoc.Listener.Addr().String() || len(via) != 1 {
			t.Errorf("caller's policy asked about an unexpected redirect (%d before)", len(via))
		}
		return errCaller
	}
	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, &client)
	if _, err := DiscoverSMART(ctx, from.URL+"/fhir"); !errors.Is(err, errCaller) || !errors.Is(err, ErrDiscovery) {
		t.Errorf("err = %v, want the caller's policy error", err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("caller's policy asked %d times, want 1", n)
	}
}

func TestDiscoveryErrorsOmitURLQueries(t *testing.T) {
	key := randomMarker(t)
	ds := newDiscoveryServer(t, func(string) map[string]string { return nil })
	ctx := discoveryContext(t, ds)
	_, err := DiscoverSMART(ctx, ds.URL+"/fhir?subscription-key="+key)
	if !errors.Is(err, ErrDiscovery) {
		t.Errorf("DiscoverSMART: err = %v, want ErrDiscovery", hideMarker(err, key))
	}
	if err != nil && strings.Contains(err.Error(), key) {
		t.Error("DiscoverSMART error holds the query of the FHIR base")
	}
	issuer := "https://as.example.org/t"
	_, err = ParseServerMetadata([]byte(`{"issuer":"`+issuer+`?code=`+key+`"}`), issuer)
	if !errors.Is(err, ErrDiscovery) {
		t.Errorf("ParseServerMetadata: err = %v, want ErrDiscovery", hideMarker(err, key))
	}
	if err != nil && strings.Contains(err.Error(), key) {
		t.Error("ParseServerMetadata error holds the query of the document's issuer")
	}
}

func TestDiscoverSMARTKeepsBaseQuery(t *testing.T) {
	key := randomMarker(t)
	ds := newDiscoveryServer(t, func(b string) map[string]string {
		return map[string]string{"/fhir/.well-known/smart-configuration": `{"token_endpoint":"` + b + `/token"}`}
	})
	if _, err := DiscoverSMART(discoveryContext(t, ds), ds.URL+"/fhir/?subscription-key="+key); err != nil {
		t.Fatalf("DiscoverSMART: %v", hideMarker(err, key))
	}
	if got := ds.requested(); len(got) != 1 || got[0] != "/fhir/.well-known/smart-configuration" {
		t.Errorf("requested %q", got)
	}
	ds.mu.Lock()
	defer ds.mu.Unlock()
	if len(ds.queries) != 1 || ds.queries[0] != "subscription-key="+key {
		t.Error("the FHIR base's query did not reach the server with the well-known request")
	}
}

// hideMarker returns the text of err with marker replaced, fit to print.
func hideMarker(err error, marker string) string {
	if err == nil {
		return "<nil>"
	}
	return strings.ReplaceAll(err.Error(), marker, "(marker)")
}

// randomMarker returns a fresh string that no server text contains by chance.
func randomMarker(t *testing.T) string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
