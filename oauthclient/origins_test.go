package oauthclient

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// A source bound to its resource server's origin never sends its token to
// another origin: not on a direct request, not after a redirect from the
// bound origin, and not on a 401 replay.
func TestBoundOriginsKeepTheTokenHome(t *testing.T) {
	srv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int64) { writeToken(w, n, 3600, nil) })
	var foreignAuth atomic.Int64
	foreign := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			foreignAuth.Add(1)
		}
		// A storage host that answers 401 must not trigger a token replay.
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer foreign.Close()
	var homeAuth atomic.Int64
	home := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			homeAuth.Add(1)
		}
		if strings.HasPrefix(r.URL.Path, "/redirect") {
			http.Redirect(w, r, foreign.URL+"/file.ndjson", http.StatusFound)
		}
	}))
	defer home.Close()
	ts := newTS(t, Config{TokenURL: srv.URL, Origins: []string{home.URL + "/fhir"}})
	c := ts.Client(nil)
	for _, u := range []string{home.URL + "/fhir/Patient", foreign.URL + "/file.ndjson", home.URL + "/redirect"} {
		resp, err := c.Get(u)
		if err != nil {
			t.Fatalf("GET: %v", err)
		}
		resp.Body.Close()
	}
	if foreignAuth.Load() != 0 {
		t.Fatalf("the foreign origin received the token %d times", foreignAuth.Load())
	}
	if homeAuth.Load() != 2 {
		t.Fatalf("the bound origin received the token %d times, want 2", homeAuth.Load())
	}
	if srv.requests() != 1 {
		t.Fatalf("token requests = %d, want 1 (no replay for a foreign 401)", srv.requests())
	}
	if _, err := NewTokenSource(Config{TokenURL: srv.URL, ClientID: "c", Origins: []string{"not a url"}}); err == nil {
		t.Fatal("NewTokenSource accepted an origin that is not a URL")
	}
}

// TestBoundTransportRemembersOnlyTheAllowedHost: after a request to an
// allowed origin, requests to another host, another port or another
// scheme of that host still get no token.
func TestBoundTransportRemembersOnlyTheAllowedHost(t *testing.T) {
	_, ts := lifetimeSource(t, 3600)
	rec := &authRecorder{}
	tr := &Transport{Source: ts, Base: rec, Origins: OriginList{"https://api.example.test"}}
	send := func(u string) string {
		t.Helper()
		rec.last.Store("")
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		if _, err := tr.RoundTrip(req); err != nil && !errors.Is(err, ErrInsecureURL) {
			t.Fatal(err)
		}
		s, _ := rec.last.Load().(string)
		return s
	}
	for range 2 { // the second request takes the remembered host
		if got := send("https://api.example.test/fhir/Patient"); got != "Bearer tok-1" {
			t.Fatalf("allowed origin: %q", got)
		}
	}
	for _, u := range []string{"https://api.example.test:8443/x", "https://apı.example.test/x", "https://api.example.test.evil/x", "http://api.example.test/x"} {
		if got := send(u); got != "" {
			t.Errorf("%s carried the token", u)
		}
	}
	if got := send("https://API.example.test:443/x"); got != "Bearer tok-1" {
		t.Errorf("the allowed origin spelled otherwise: %q", got)
	}
}
