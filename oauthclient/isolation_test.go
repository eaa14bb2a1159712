package oauthclient

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/oauthkit/oauthkit/tokencache"
)

// Two users exchanging their own tokens for the same audience over one
// shared cache each get their own token.
func TestExchangeCacheKeyNamesTheSubject(t *testing.T) {
	srv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		writeToken(w, n, 3600, map[string]any{"issued_token_type": TokenTypeAccessToken, "subject_seen": r.Form.Get("subject_token")})
	})
	cache := tokencache.NewMemory()
	newExchange := func(subject string) *TokenSource {
		return newTS(t, Config{TokenURL: srv.URL, Cache: cache, Grant: TokenExchange{SubjectToken: subject, Audience: []string{"api"}}})
	}
	alice, bob := newExchange("alice-subject-token"), newExchange("bob-subject-token")
	if alice.CacheKey() == bob.CacheKey() {
		t.Fatal("two subjects share a cache key")
	}
	ta, err := alice.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tb, err := bob.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if ta.AccessToken == tb.AccessToken || tb.Extra("subject_seen") != "bob-subject-token" || srv.requests() != 2 {
		t.Fatalf("bob got %s (alice %s) after %d token requests; want his own token", serial(tb), serial(ta), srv.requests())
	}
	// The actor token is part of the identity too.
	a1 := newTS(t, Config{TokenURL: srv.URL, Cache: cache, Grant: TokenExchange{SubjectToken: "s", ActorToken: "actor-1"}})
	a2 := newTS(t, Config{TokenURL: srv.URL, Cache: cache, Grant: TokenExchange{SubjectToken: "s", ActorToken: "actor-2"}})
	if a1.CacheKey() == a2.CacheKey() {
		t.Fatal("two actors share a cache key")
	}
}

// Per-user refresh-token sources over one shared cache never collide, and
// the key holds no secret.
func TestRefreshTokenCacheKeyNamesTheFamily(t *testing.T) {
	cache := tokencache.NewMemory()
	a := newTS(t, Config{TokenURL: "https://as.example/token", Cache: cache, Grant: RefreshToken{Token: "family-a-refresh"}})
	b := newTS(t, Config{TokenURL: "https://as.example/token", Cache: cache, Grant: RefreshToken{Token: "family-b-refresh"}})
	if a.CacheKey() == b.CacheKey() {
		t.Fatal("two refresh-token families share a cache key")
	}
	if id := (RefreshToken{Token: "family-a-refresh"}).CacheID(); strings.Contains(id, "family-a-refresh") {
		t.Fatal("CacheID holds the refresh token")
	}
}

// Where no identity can be derived, a shared cache needs an explicit key.
func TestSharedCacheWithoutIdentityNeedsCacheKey(t *testing.T) {
	static, _ := NewStatic("subject")
	upstream := newTS(t, Config{TokenURL: "https://as.example/token"})
	cache := tokencache.NewMemory()
	for _, tc := range []struct {
		name  string
		grant Grant
		key   string
		ok    bool
	}{
		{"refresh token without token", RefreshToken{}, "", false},
		{"refresh token without token, named", RefreshToken{}, "user-42", true},
		{"exchange from a static source", TokenExchange{SubjectSource: static}, "", false},
		{"exchange from a keyed source", TokenExchange{SubjectSource: upstream}, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewTokenSource(Config{TokenURL: "https://as.example/token", ClientID: "c", Grant: tc.grant, Cache: cache, CacheKey: tc.key})
			if (err == nil) != tc.ok {
				t.Fatalf("NewTokenSource: err = %v, want ok=%t", err, tc.ok)
			}
		})
	}
}

// recorder is a base RoundTripper that notes which hosts got a token.
type recorder struct {
	mu   sync.Mutex
	auth map[string]string
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.auth[req.URL.Host] = req.Header.Get("Authorization")
	r.mu.Unlock()
	return &http.Response{StatusCode: 200, Body: http.NoBody, Header: http.Header{}, Request: req}, nil
}

// A redirect to a lookalike host (U+0130, which strings.ToLower folds into
// ASCII "i") is another origin: it gets no token.
func TestRedirectToLookalikeHostGetsNoToken(t *testing.T) {
	src, _ := NewStatic("lookalike-secret-token")
	rec := &recorder{auth: map[string]string{}}
	tr := &Transport{Source: src, Base: rec}
	first, _ := http.NewRequest(http.MethodGet, "https://iexample.test/a", nil)
	if _, err := tr.RoundTrip(first); err != nil {
		t.Fatal(err)
	}
	second, _ := http.NewRequest(http.MethodGet, "https://\u0130example.test/b", nil)
	second.Response = &http.Response{Request: first}
	if _, err := tr.RoundTrip(second); err != nil {
		t.Fatal(err)
	}
	if rec.auth["iexample.test"] == "" {
		t.Fatal("the first request carried no token")
	}
	if got := rec.auth["\u0130example.test"]; got != "" {
		t.Fatal("the token was sent to a lookalike host on a redirect")
	}
	// Hosts that differ only in ASCII case are one origin.
	third, _ := http.NewRequest(http.MethodGet, "https://IEXAMPLE.test/c", nil)
	third.Response = &http.Response{Request: first}
	if _, err := tr.RoundTrip(third); err != nil {
		t.Fatal(err)
	}
	if rec.auth["IEXAMPLE.test"] == "" {
		t.Fatal("a same-origin redirect lost the token")
	}
}

// Gateway keys in URL queries appear in no %v output and no log line.
func TestURLQueryNeverPrinted(t *testing.T) {
	const key = "gateway-key-7f3a9c"
	srv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int64) { writeToken(w, n, 3600, nil) })
	var logs bytes.Buffer
	cfg := Config{TokenURL: srv.URL + "/token?subscription-key=" + key, ClientID: "c", Auth: ClientSecretPost{Secret: "s3cret-value"},
		Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	ts := newTS(t, cfg)
	if _, err := ts.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	for _, v := range []any{cfg, &cfg, ts, ts.OAuth2()} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
			fmt.Fprintf(&out, verb+"\n", v)
		}
		slog.New(slog.NewTextHandler(&out, nil)).Info("x", "v", v)
	}
	if strings.Contains(out.String(), key) {
		t.Fatal("a URL query appears in formatted output")
	}
	if strings.Contains(logs.String(), key) {
		t.Fatal("a URL query appears in a debug log line")
	}
	if !strings.Contains(logs.String(), "token request") {
		t.Fatal("the debug log has no token request line")
	}
}

// An AuthRequest holding credentials prints none of them.
func TestAuthRequestPrintsNoSecret(t *testing.T) {
	const secret = "auth-request-secret-91b2"
	for _, auth := range []ClientAuth{ClientSecretBasic{Secret: secret}, ClientSecretPost{Secret: secret}} {
		ar := &AuthRequest{ClientID: "c", TokenURL: "https://as.example/token", Form: url.Values{}, Header: http.Header{}}
		if err := auth.Apply(ar); err != nil {
			t.Fatal(err)
		}
		basic := base64.StdEncoding.EncodeToString([]byte("c:" + secret))
		var out bytes.Buffer
		for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
			fmt.Fprintf(&out, verb+"\n", ar)
			fmt.Fprintf(&out, verb+"\n", *ar)
		}
		slog.New(slog.NewJSONHandler(&out, nil)).Info("x", "ar", ar)
		if s := out.String(); strings.Contains(s, secret) || strings.Contains(s, basic) {
			t.Fatalf("%T: formatted AuthRequest shows the credential", auth)
		}
	}
}
