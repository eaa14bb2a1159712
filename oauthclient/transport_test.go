package oauthclient

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// resourceServer accepts only the tokens in valid and records what it saw.
type resourceServer struct {
	*httptest.Server
	requests atomic.Int64
	lastAuth atomic.Value // string
}

func newResourceServer(t *testing.T, handler http.HandlerFunc) *resourceServer {
	rs := &resourceServer{}
	rs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rs.requests.Add(1)
		rs.lastAuth.Store(r.Header.Get("Authorization"))
		handler(w, r)
	}))
	t.Cleanup(rs.Close)
	return rs
}

func TestTransportAddsTokenAndNeverMutatesRequest(t *testing.T) {
	srv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		writeToken(w, n, 3600, map[string]any{"token_type": "bearer"})
	})
	ts := newTS(t, Config{TokenURL: srv.URL})
	rs := newResourceServer(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	req, _ := http.NewRequest("GET", rs.URL+"/fhir/Patient", nil)
	req.Header.Set("Accept", "application/fhir+json")
	resp, err := ts.Client(nil).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := rs.lastAuth.Load(); got != "Bearer tok-1" {
		t.Fatalf("Authorization = %q (token_type must be normalised to Bearer)", got)
	}
	if req.Header.Get("Authorization") != "" || len(req.Header) != 1 {
		t.Fatal("caller's request was mutated")
	}
}

func TestTransport401Replay(t *testing.T) {
	tests := []struct {
		name        string
		challenge   string // WWW-Authenticate on the 401; "-" for none
		status      int
		body        func() (*http.Request, error)
		wantRetry   bool
		wantStatus  int
		wantTokReqs int64
	}{
		{name: "invalid_token GET", challenge: `Bearer realm="fhir", error="invalid_token", error_description="expired"`, status: 401, wantRetry: true, wantStatus: 200, wantTokReqs: 2},
		{name: "bare 401 without challenge", challenge: "-", status: 401, wantRetry: true, wantStatus: 200, wantTokReqs: 2},
		{name: "DPoP and Bearer challenges", challenge: `DPoP algs="ES256", Bearer error="invalid_token"`, status: 401, wantRetry: true, wantStatus: 200, wantTokReqs: 2},
		{name: "401 other error is not retried", challenge: `Bearer error="invalid_request"`, status: 401, wantStatus: 401, wantTokReqs: 1},
		{name: "403 insufficient_scope returned as is", challenge: `Bearer error="insufficient_scope", scope="system/Patient.rs"`, status: 403, wantStatus: 403, wantTokReqs: 1},
		{name: "replayable POST body", challenge: `Bearer error="invalid_token"`, status: 401, wantRetry: true, wantStatus: 200, wantTokReqs: 2,
			body: func() (*http.Request, error) {
				return http.NewRequest("POST", "", strings.NewReader("name=smith"))
			}},
		{name: "non-replayable body is not retried", challenge: `Bearer error="invalid_token"`, status: 401, wantStatus: 401, wantTokReqs: 1,
			body: func() (*http.Request, error) {
				r, err := http.NewRequest("POST", "", io.NopCloser(strings.NewReader("name=smith")))
				return r, err
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int64) { writeToken(w, n, 3600, nil) })
			ts := newTS(t, Config{TokenURL: srv.URL})
			var bodies []string
			rs := newResourceServer(t, func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				bodies = append(bodies, string(b))
				if r.Header.Get("Authorization") == "Bearer tok-1" {
					if tt.challenge != "-" {
						w.Header().Set("WWW-Authenticate", tt.challenge)
					}
					w.WriteHeader(tt.status)
					return
				}
				io.WriteString(w, "ok")
			})
			req, _ := http.NewRequest("GET", rs.URL+"/fhir/Patient", nil)
			if tt.body != nil {
				var err error
				if req, err = tt.body(); err != nil {
					t.Fatal(err)
				}
				req.URL, _ = req.URL.Parse(rs.URL + "/fhir/Patient/_search")
				req.Host = req.URL.Host
			}
			resp, err := ts.Client(nil).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if got := srv.requests(); got != tt.wantTokReqs {
				t.Errorf("token requests = %d, want %d", got, tt.wantTokReqs)
			}
			wantReqs := int64(1)
			if tt.wantRetry {
				wantReqs = 2
			}
			if got := rs.requests.Load(); got != wantReqs {
				t.Errorf("resource requests = %d, want %d", got, wantReqs)
			}
			if tt.body != nil && tt.wantRetry && (len(bodies) != 2 || bodies[1] != "name=smith") {
				t.Errorf("replayed body = %q", bodies)
			}
		})
	}
}

func TestCompareAndInvalidateKeepsNewerToken(t *testing.T) {
	srv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int64) { writeToken(w, n, 3600, nil) })
	ts := newTS(t, Config{TokenURL: srv.URL})
	old, _ := ts.Token(context.Background())
	ts.Invalidate(old)
	fresh, _ := ts.Token(context.Background())
	if fresh.AccessToken == old.AccessToken {
		t.Fatal("invalidated token still served")
	}
	ts.Invalidate(old) // stale rejection: must not drop the newer token
	again, _ := ts.Token(context.Background())
	if again.AccessToken != fresh.AccessToken || srv.requests() != 2 {
		t.Fatalf("newer token dropped by a stale invalidation (requests=%d)", srv.requests())
	}
}

func TestRedirectsNeverCarryTokenAcrossOrigins(t *testing.T) {
	srv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int64) { writeToken(w, n, 3600, nil) })
	ts := newTS(t, Config{TokenURL: srv.URL})
	other := newResourceServer(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "other") })
	origin := newResourceServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/same":
			http.Redirect(w, r, "/final", http.StatusFound)
		case "/cross":
			http.Redirect(w, r, other.URL+"/final", http.StatusFound)
		case "/final":
			io.WriteString(w, "final")
		}
	})
	client := ts.Client(nil)
	resp, err := client.Get(origin.URL + "/same")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := origin.lastAuth.Load(); got != "Bearer tok-1" {
		t.Errorf("same-origin redirect lost the token: %q", got)
	}
	resp, err = client.Get(origin.URL + "/cross")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if other.requests.Load() != 1 {
		t.Fatal("cross-origin redirect not followed")
	}
	if got := other.lastAuth.Load(); got != "" {
		t.Fatalf("token sent across origins: Authorization present (%d bytes)", len(got.(string)))
	}
}

func TestTransportRefusesPlainHTTPToRemoteHost(t *testing.T) {
	srv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int64) { writeToken(w, n, 3600, nil) })
	ts := newTS(t, Config{TokenURL: srv.URL})
	closed := false
	body := &trackBody{Reader: strings.NewReader("x"), closed: &closed}
	req, _ := http.NewRequest("POST", "http://fhir.example.org/Patient", body)
	_, err := (&Transport{Source: ts, Base: failRT{t}}).RoundTrip(req)
	if !errors.Is(err, ErrInsecureURL) {
		t.Fatalf("got %v, want ErrInsecureURL", err)
	}
	if !closed {
		t.Fatal("request body not closed on the error path")
	}
	if srv.requests() != 0 {
		t.Fatal("fetched a token for an insecure URL")
	}
}

func TestTransportClosesBodyWhenTokenFails(t *testing.T) {
	srv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int64) { writeError(w, 401, "invalid_client") })
	ts := newTS(t, Config{TokenURL: srv.URL})
	closed := false
	req, _ := http.NewRequest("POST", "http://127.0.0.1:1/x", &trackBody{Reader: strings.NewReader("x"), closed: &closed})
	_, err := (&Transport{Source: ts, Base: failRT{t}}).RoundTrip(req)
	var te *TokenError
	if !errors.As(err, &te) || !closed {
		t.Fatalf("err=%v closed=%v", err, closed)
	}
}

func TestStaticSource(t *testing.T) {
	st, err := NewStatic("long-lived-notifier-token")
	if err != nil {
		t.Fatal(err)
	}
	rs := newResourceServer(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	resp, err := st.Client(nil).Get(rs.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if rs.lastAuth.Load() != "Bearer long-lived-notifier-token" {
		t.Fatal("static token not sent")
	}
	if _, err := NewStatic(""); err == nil {
		t.Fatal("empty static token accepted")
	}
}

type trackBody struct {
	io.Reader
	closed *bool
}

func (b *trackBody) Close() error { *b.closed = true; return nil }

type failRT struct{ t *testing.T }

func (f failRT) RoundTrip(*http.Request) (*http.Response, error) {
	f.t.Error("base transport called")
	return nil, errors.New("unexpected")
}

func TestStaticSourceIsNotRetriedWithTheSameToken(t *testing.T) {
	st, _ := NewStatic("revoked-long-lived-token")
	rs := newResourceServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		w.WriteHeader(401)
	})
	resp, err := st.Client(nil).Get(rs.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || rs.requests.Load() != 1 {
		t.Fatalf("status %d after %d requests; want the 401 after 1", resp.StatusCode, rs.requests.Load())
	}
}

// TestRejectedTokenDroppedWithOneShotBodies: a 401 invalid_token drops the
// token even when the request's body cannot be sent again (the 401 is
// returned): a client whose requests all stream their bodies would
// otherwise send the rejected token forever.
func TestRejectedTokenDroppedWithOneShotBodies(t *testing.T) {
	srv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int64) { writeToken(w, n, 3600, nil) })
	ts := newTS(t, Config{TokenURL: srv.URL})
	rs := newResourceServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.Header.Get("Authorization") == "Bearer tok-1" {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			w.WriteHeader(http.StatusUnauthorized)
		}
	})
	client := ts.Client(nil)
	var codes []int
	for range 3 {
		req, _ := http.NewRequest(http.MethodPost, rs.URL+"/fhir/Binary", io.NopCloser(strings.NewReader("chunk")))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		codes = append(codes, resp.StatusCode)
	}
	if codes[0] != http.StatusUnauthorized || codes[1] != http.StatusOK || codes[2] != http.StatusOK || srv.requests() != 2 {
		t.Fatalf("statuses %v with %d token requests; want [401 200 200] with 2", codes, srv.requests())
	}
}
