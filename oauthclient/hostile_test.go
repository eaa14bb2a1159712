package oauthclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestHostileTokenEndpoint drives a TokenSource against token endpoints that
// misbehave in every way seen in the field (or imaginable). Each failure must
// be a *TokenError carrying the right sentinel, must not echo the client
// secret or a token the server sent, and must leave no goroutine behind.
func TestHostileTokenEndpoint(t *testing.T) {
	const (
		secret      = "hostile-client-secret-7f3a9c1e"
		servedToken = "hostile-access-token-5b8e21d0"
	)
	// tokenBody is a token response around servedToken with the given extra
	// JSON members (already encoded, each starting with a comma).
	tokenBody := func(members string) string {
		return `{"access_token":"` + servedToken + `","token_type":"Bearer"` + members + `}`
	}
	jsonReply := func(status int, body string) func(string, <-chan struct{}) http.HandlerFunc {
		return func(string, <-chan struct{}) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(status)
				io.WriteString(w, body)
			}
		}
	}

	tests := []struct {
		name string
		// handler answers the token endpoint; other is the URL of a second
		// server that must never be contacted.
		handler func(other string, quit <-chan struct{}) http.HandlerFunc
		// stall: the endpoint stops answering; bounded by the HTTP client's
		// timeout. wantTemporary: the error says a retry may help.
		stall, wantTemporary bool
		// wantErr is the sentinel the error must wrap; nil with wantOK false
		// means only "a *TokenError".
		wantErr error
		// wantCode is the expected OAuth error code, if any.
		wantCode string
		// wantOK: the response is usable; wantLifetime is the expected
		// expiry relative to the request (0: no expiry).
		wantOK       bool
		wantLifetime time.Duration
	}{
		{name: "HTML 502 page", wantErr: ErrMalformedResponse, wantTemporary: true,
			handler: func(string, <-chan struct{}) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "text/html; charset=utf-8")
					w.WriteHeader(http.StatusBadGateway)
					io.WriteString(w, "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>")
				}
			}},
		{name: "truncated JSON", wantErr: ErrMalformedResponse,
			handler: jsonReply(200, `{"access_token":"`+servedToken+`","token_type":"Bea`)},
		{name: "10 MB body streamed", wantErr: ErrResponseTooLarge,
			handler: func(string, <-chan struct{}) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "application/json")
					io.WriteString(w, `{"access_token":"`+servedToken+`","token_type":"Bearer","padding":"`)
					chunk := bytes.Repeat([]byte("A"), 64<<10)
					for i := 0; i < 160; i++ { // 10 MiB
						if _, err := w.Write(chunk); err != nil {
							return // the client hung up, as it should
						}
					}
					io.WriteString(w, `"}`)
				}
			}},
		{name: "missing access_token", wantErr: ErrMalformedResponse,
			handler: jsonReply(200, `{"token_type":"Bearer","expires_in":3600}`)},
		{name: "token_type mac", wantErr: ErrUnsupportedTokenType,
			handler: jsonReply(200, `{"access_token":"`+servedToken+`","token_type":"mac","expires_in":3600,"mac_key":"k","mac_algorithm":"hmac-sha-256"}`)},
		{name: "missing token_type", wantErr: ErrMalformedResponse,
			handler: jsonReply(200, `{"access_token":"`+servedToken+`","expires_in":3600}`)},
		{name: "expires_in negative", wantErr: ErrMalformedResponse,
			handler: jsonReply(200, tokenBody(`,"expires_in":-3600`))},
		{name: "expires_in huge", wantErr: ErrMalformedResponse,
			handler: jsonReply(200, tokenBody(`,"expires_in":1e30`))},
		{name: "expires_in float is truncated", wantOK: true, wantLifetime: 299 * time.Second,
			handler: jsonReply(200, tokenBody(`,"expires_in":299.5`))},
		{name: "expires_in string", wantOK: true, wantLifetime: 300 * time.Second,
			handler: jsonReply(200, tokenBody(`,"expires_in":"300"`))},
		{name: "expires_in not a number", wantErr: ErrMalformedResponse,
			handler: jsonReply(200, tokenBody(`,"expires_in":"abc"`))},
		{name: "expires_in missing", wantOK: true, wantLifetime: 0,
			handler: jsonReply(200, tokenBody(``))},
		{name: "headers then stall", stall: true,
			handler: func(_ string, quit <-chan struct{}) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					io.Copy(io.Discard, r.Body) // so the server notices the client leave
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusOK)
					io.WriteString(w, `{"access_token":"`+servedToken[:len(servedToken)-4])
					w.(http.Flusher).Flush()
					select { // until the client gives up
					case <-r.Context().Done():
					case <-quit:
					}
				}
			}},
		{name: "stall before headers", stall: true, wantTemporary: true,
			handler: func(_ string, quit <-chan struct{}) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					io.Copy(io.Discard, r.Body)
					select {
					case <-r.Context().Done():
					case <-quit:
					}
				}
			}},
		{name: "307 to another server", wantErr: ErrTokenEndpointRedirect,
			handler: func(other string, _ <-chan struct{}) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					http.Redirect(w, r, other+"/steal", http.StatusTemporaryRedirect)
				}
			}},
		{name: "302 to another server", wantErr: ErrTokenEndpointRedirect,
			handler: func(other string, _ <-chan struct{}) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					http.Redirect(w, r, other+"/steal", http.StatusFound)
				}
			}},
		{name: "200 with an error member", wantCode: "invalid_request",
			handler: jsonReply(200, `{"error":"invalid_request","error_description":"no"}`)},
		{name: "200 with error and access_token", wantCode: "server_error",
			handler: jsonReply(200, `{"error":"server_error","access_token":"`+servedToken+`","token_type":"Bearer"}`)},
		{name: "duplicate keys", wantErr: ErrMalformedResponse,
			handler: jsonReply(200, `{"access_token":"`+servedToken+`","token_type":"Bearer","access_token":"other"}`)},
		{name: "JSON array", wantErr: ErrMalformedResponse,
			handler: jsonReply(200, `[`+tokenBody(``)+`]`)},
		{name: "null", wantErr: ErrMalformedResponse, handler: jsonReply(200, `null`)},
		{name: "empty 200", wantErr: ErrMalformedResponse, handler: jsonReply(200, ``)},
		{name: "trailing garbage", wantErr: ErrMalformedResponse,
			handler: jsonReply(200, tokenBody(``)+`{"x":1}`)},
		{name: "access_token not a string", wantErr: ErrMalformedResponse,
			handler: jsonReply(200, `{"access_token":{"value":"`+servedToken+`"},"token_type":"Bearer"}`)},
		{name: "deeply nested extra member", wantErr: ErrMalformedResponse,
			handler: jsonReply(200, `{"access_token":"`+servedToken+`","token_type":"Bearer","x":`+strings.Repeat("[", 20000)+strings.Repeat("]", 19999)+`}`)},
		{name: "400 with HTML", wantErr: ErrMalformedResponse,
			handler: func(string, <-chan struct{}) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "text/html")
					w.WriteHeader(http.StatusBadRequest)
					io.WriteString(w, "<h1>Bad Request</h1>"+servedToken)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := runtime.NumGoroutine()

			var otherHits atomic.Int64
			other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				otherHits.Add(1)
				writeToken(w, 1, 3600, nil)
			}))
			quit := make(chan struct{})
			srv := httptest.NewServer(tt.handler(other.URL, quit))
			tr := &http.Transport{}
			timeout := 30 * time.Second // a bound, not an expectation
			if tt.stall {
				timeout = 300 * time.Millisecond
			}
			var logs bytes.Buffer
			clock := newFakeClock()
			ts, err := NewTokenSource(Config{
				TokenURL:   srv.URL + "/token",
				ClientID:   "hostile-client",
				Auth:       ClientSecretBasic{Secret: secret},
				HTTPClient: &http.Client{Transport: tr, Timeout: timeout},
				Retry:      &RetryPolicy{MaxAttempts: 2, InitialInterval: 10 * time.Millisecond},
				Now:        clock.Now,
				Logger:     slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			})
			if err != nil {
				t.Fatalf("NewTokenSource: %v", err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			tok, err := ts.Token(ctx)
			cancel()

			switch {
			case tt.wantOK:
				if err != nil {
					t.Fatalf("Token: %v", err)
				}
				if tok.AccessToken != servedToken {
					t.Errorf("access token of length %d, want the served one (length %d)", len(tok.AccessToken), len(servedToken))
				}
				var want time.Time
				if tt.wantLifetime > 0 {
					want = clock.Now().Add(tt.wantLifetime)
				}
				if !tok.Expiry.Equal(want) {
					t.Errorf("Expiry = %v, want %v", tok.Expiry, want)
				}
			default:
				if err == nil {
					t.Fatalf("Token succeeded (token of length %d); want an error", len(tok.AccessToken))
				}
				if errors.Is(err, context.DeadlineExceeded) && !tt.stall {
					t.Fatalf("Token gave up on its own deadline: %v", err)
				}
				var te *TokenError
				if !errors.As(err, &te) {
					t.Fatalf("error %T is not a *TokenError: %v", err, err)
				}
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Errorf("error %q does not wrap %q", err, tt.wantErr)
				}
				if te.ErrorCode != tt.wantCode {
					t.Errorf("ErrorCode = %q, want %q", te.ErrorCode, tt.wantCode)
				}
				// A stall after the headers of a 200 is not asserted either
				// way: the status says success, the body never came.
				if te.Temporary() != tt.wantTemporary && !(tt.stall && !tt.wantTemporary) {
					t.Errorf("Temporary() = %v, want %v: %v", te.Temporary(), tt.wantTemporary, err)
				}
				if !strings.HasPrefix(err.Error(), "oauthclient: ") {
					t.Errorf("error text does not start with the package name: %q", err)
				}
				for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
					text := fmt.Sprintf(verb, err)
					for _, s := range []string{secret, servedToken[:len(servedToken)-4]} {
						if strings.Contains(text, s) {
							t.Errorf("error printed with %s contains a secret or token (%d bytes)", verb, len(s))
						}
					}
					if len(text) > 2048 {
						t.Errorf("error printed with %s is %d bytes long", verb, len(text))
					}
				}
			}
			if n := otherHits.Load(); n != 0 {
				t.Errorf("the redirect target saw %d requests; credentials must not follow a redirect", n)
			}
			if strings.Contains(logs.String(), secret) || strings.Contains(logs.String(), servedToken) {
				t.Errorf("log output contains a secret or token")
			}

			close(quit)
			srv.Close()
			other.Close()
			tr.CloseIdleConnections()
			http.DefaultTransport.(*http.Transport).CloseIdleConnections()
			// One goroutine of slack: goroutines of earlier tests (an
			// idle keep-alive connection of http.DefaultTransport, a
			// server's accept loop) may still be winding down and be
			// replaced in the count by one of ours exiting a little later;
			// a leaked connection costs at least two (read and write loop),
			// a leaked fetch at least one plus its connection.
			const slack = 1
			after := waitGoroutines(before+slack, 5*time.Second)
			if after > before+slack {
				t.Errorf("goroutines: %d before, %d after; leaked:\n%s", before, after, goroutineDump())
			}
		})
	}
}

// waitGoroutines polls until at most want goroutines run or d has passed,
// and returns the last count.
func waitGoroutines(want int, d time.Duration) int {
	deadline := time.Now().Add(d)
	for {
		n := runtime.NumGoroutine()
		if n <= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func goroutineDump() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}
