package oauthclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestTokenErrorIsOwnType: TokenError is a struct of this package, so
// that its fields are documented here.
func TestTokenErrorIsOwnType(t *testing.T) {
	typ := reflect.TypeOf(TokenError{})
	if got, want := typ.PkgPath(), "github.com/oauthkit/oauthkit/oauthclient"; got != want {
		t.Fatalf("TokenError is declared in %s, want %s", got, want)
	}
	for _, f := range []string{"StatusCode", "ErrorCode", "ErrorDescription", "ErrorURI", "RetryAfter", "Err"} {
		if _, ok := typ.FieldByName(f); !ok {
			t.Errorf("TokenError has no field %s", f)
		}
	}
}

// TestTokenErrorFromTokenEndpoint: a failed token request yields a
// *TokenError with the server's fields, reachable with errors.As.
func TestTokenErrorFromTokenEndpoint(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		code      string
		retry     string
		temporary bool
	}{
		{"invalid_client", http.StatusUnauthorized, "invalid_client", "", false},
		{"rate limited", http.StatusTooManyRequests, "slow_down", "7", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int64) {
				if tt.retry != "" {
					w.Header().Set("Retry-After", tt.retry)
				}
				writeError(w, tt.status, tt.code)
			})
			ts := newTS(t, Config{TokenURL: srv.URL, Retry: &RetryPolicy{MaxAttempts: 1}})
			_, err := ts.Token(context.Background())
			var te *TokenError
			if !errors.As(err, &te) {
				t.Fatalf("err %T is not a *TokenError", err)
			}
			if te.StatusCode != tt.status || te.ErrorCode != tt.code || te.ErrorDescription != "test "+tt.code || te.Temporary() != tt.temporary {
				t.Errorf("TokenError{%d %q %q temporary=%v}, want {%d %q %q temporary=%v}",
					te.StatusCode, te.ErrorCode, te.ErrorDescription, te.Temporary(), tt.status, tt.code, "test "+tt.code, tt.temporary)
			}
			if tt.retry != "" && te.RetryAfter != 7*time.Second {
				t.Errorf("RetryAfter = %v, want 7s", te.RetryAfter)
			}
		})
	}
}

// TestTokenErrorMalformedUnwraps: the cause of a malformed response stays
// reachable through the converted error.
func TestTokenErrorMalformedUnwraps(t *testing.T) {
	srv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"token_type":"Bearer"}`)
	})
	ts := newTS(t, Config{TokenURL: srv.URL, Retry: &RetryPolicy{MaxAttempts: 1}})
	_, err := ts.Token(context.Background())
	var te *TokenError
	if !errors.As(err, &te) || !errors.Is(err, ErrMalformedResponse) || te.Temporary() {
		t.Fatalf("err = %v, want a permanent *TokenError wrapping ErrMalformedResponse", err)
	}
}

// TestReauthErrorOnePrefix: a rejected refresh token reads as one
// message with one package prefix.
func TestReauthErrorOnePrefix(t *testing.T) {
	srv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		writeError(w, http.StatusBadRequest, "invalid_grant")
	})
	ts := newTS(t, Config{TokenURL: srv.URL, Grant: RefreshToken{Token: "rt-1"}})
	_, err := ts.Token(context.Background())
	var te *TokenError
	if !errors.Is(err, ErrReauthRequired) || !errors.As(err, &te) {
		t.Fatalf("err = %v, want ErrReauthRequired and *TokenError", err)
	}
	if n := strings.Count(err.Error(), "oauthclient:"); n != 1 {
		t.Errorf("error text has %d package prefixes, want 1: %s", n, err)
	}
	if !strings.Contains(err.Error(), "invalid_grant") {
		t.Errorf("error text lacks the error code: %s", err)
	}
}
