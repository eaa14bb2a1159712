package oauthclient

import (
	"strings"

	"encoding/base64"
	"encoding/json"
	"fmt"
	"github.com/oauthkit/oauthkit/internal/testclock"
	"golang.org/x/oauth2"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func newFakeClock() *testclock.Clock {
	return testclock.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
}

// tokenServer is an httptest token endpoint that counts requests and
// answers through a per-test handler.
type tokenServer struct {
	*httptest.Server
	n      atomic.Int64
	handle func(w http.ResponseWriter, r *http.Request, n int64)
}

func newTokenServer(t *testing.T, handle func(w http.ResponseWriter, r *http.Request, n int64)) *tokenServer {
	t.Helper()
	ts := &tokenServer{handle: handle}
	ts.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := ts.n.Add(1)
		if err := r.ParseForm(); err != nil {
			t.Errorf("token server: bad form: %v", err)
		}
		ts.handle(w, r, n)
	}))
	t.Cleanup(ts.Close)
	return ts
}

func (ts *tokenServer) requests() int64 { return ts.n.Load() }

// writeToken answers a token response with access token "tok-N".
func writeToken(w http.ResponseWriter, n int64, expiresIn int, extra map[string]any) {
	m := map[string]any{"access_token": fmt.Sprintf("tok-%d", n), "token_type": "Bearer"}
	if expiresIn > 0 {
		m["expires_in"] = expiresIn
	}
	for k, v := range extra {
		m[k] = v
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(m)
}

func writeError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": "test " + code})
}

func newTS(t *testing.T, cfg Config) *TokenSource {
	t.Helper()
	if cfg.ClientID == "" {
		cfg.ClientID = "client-1"
	}
	if cfg.Auth == nil {
		cfg.Auth = ClientSecretBasic{Secret: "s3cret-value"}
	}
	ts, err := NewTokenSource(cfg)
	if err != nil {
		t.Fatalf("NewTokenSource: %v", err)
	}
	return ts
}

// fastRetry keeps retry tests quick.
var fastRetry = &RetryPolicy{InitialInterval: 10 * time.Millisecond, MaxInterval: 50 * time.Millisecond}

func itoa(n int64) string { return fmt.Sprint(n) }

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// serial names a token of tokenServer ("tok-N") by its number, so that
// failure messages never print a token.
func serial(tok any) string {
	var at string
	switch t := tok.(type) {
	case string:
		at = t
	case *oauth2.Token:
		if t == nil {
			return "no token"
		}
		at = t.AccessToken
	}
	if n, ok := strings.CutPrefix(at, "tok-"); ok {
		return "token #" + n
	}
	return fmt.Sprintf("a token of length %d", len(at))
}
