package oauthtest_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/oauthkit/oauthkit/oauthtest"
)

func TestInjectTokenResponses(t *testing.T) {
	e := newEnv(t)
	e.srv.InjectTokenResponses(
		oauthtest.Response{Status: 503, Header: http.Header{"Retry-After": {"1"}}, Body: `{"error":"temporarily_unavailable"}`},
		oauthtest.Response{Body: `{"access_token":"canned","token_type":"Bearer","expires_in":5}`},
	)
	want := []struct {
		status int
		check  func(result) bool
	}{
		{503, func(r result) bool {
			return r.header.Get("Retry-After") == "1" && r.str("error") == "temporarily_unavailable"
		}},
		{200, func(r result) bool {
			return r.header.Get("Content-Type") == "application/json" && r.body["expires_in"] == float64(5)
		}},
		{401, func(r result) bool { return r.str("error") == "invalid_client" }}, // normal processing again
	}
	for i, w := range want {
		r := e.post(t, e.srv.TokenURL(), cc(), nil)
		if r.status != w.status || !w.check(r) {
			t.Fatalf("request %d: %v", i+1, r)
		}
	}
	st := e.srv.Stats()
	if st.TokenRequests != 3 || st.TokenErrors != 2 || st.ByGrant["client_credentials"] != 3 {
		t.Errorf("stats %+v", st)
	}
	log := e.srv.TokenRequestLog()
	if len(log) != 3 || !log[0].Injected || !log[1].Injected || log[2].Injected || log[2].Error != "invalid_client" {
		t.Errorf("log %+v", log)
	}
}

func TestTokenDelayHonoursContext(t *testing.T) {
	e := newEnv(t)
	e.srv.SetTokenDelay(time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for e.srv.Stats().TokenRequests == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.srv.TokenURL(), strings.NewReader(cc().Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	basicAuth("basic", basicSecret)(req)
	if _, err := e.srv.HTTPClient().Do(req); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	e.srv.SetTokenDelay(0)
	e.srv.Close() // waits for the delayed handler to return
	if log := e.srv.TokenRequestLog(); len(log) != 1 || log[0].Status != 0 {
		t.Errorf("log %+v", log)
	}
}

func TestStats(t *testing.T) {
	e := newEnv(t)
	tok := e.token(t, "")
	e.post(t, e.srv.TokenURL(), url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"x"}}, basicAuth("basic", basicSecret))
	e.resourceStatus(t, tok)
	e.resourceStatus(t, "bogus")
	st := e.srv.Stats()
	want := oauthtest.Stats{TokenRequests: 2, TokenErrors: 1, ResourceRequests: 2, ResourceRejected: 1}
	if st.TokenRequests != want.TokenRequests || st.TokenErrors != want.TokenErrors ||
		st.ResourceRequests != want.ResourceRequests || st.ResourceRejected != want.ResourceRejected {
		t.Errorf("stats %+v, want %+v", st, want)
	}
	if bg := e.srv.Stats().ByGrant; bg["client_credentials"] != 1 || bg["password"] != 1 || len(bg) != 2 {
		t.Errorf("ByGrant %v", bg)
	}
}

func TestMetadata(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{
		"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration", "/fhir/.well-known/smart-configuration",
	} {
		t.Run(path, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, e.srv.URL+path, nil)
			r := e.do(t, req)
			if r.status != 200 || r.str("issuer") != e.srv.Issuer() || r.str("token_endpoint") != e.srv.TokenURL() ||
				r.str("authorization_endpoint") != e.srv.AuthorizeURL() || r.str("revocation_endpoint") != e.srv.RevocationURL() ||
				r.str("introspection_endpoint") != e.srv.IntrospectionURL() {
				t.Fatalf("endpoints wrong: %s", r.raw)
			}
			var doc struct {
				AuthMethods []string `json:"token_endpoint_auth_methods_supported"`
				Algs        []string `json:"token_endpoint_auth_signing_alg_values_supported"`
				PKCE        []string `json:"code_challenge_methods_supported"`
				Caps        []string `json:"capabilities"`
			}
			if err := json.Unmarshal([]byte(r.raw), &doc); err != nil {
				t.Fatal(err)
			}
			joined := fmt.Sprint(doc.AuthMethods, doc.Algs, doc.PKCE)
			for _, w := range []string{"private_key_jwt", "RS384", "ES384", "[S256]"} {
				if !strings.Contains(joined, w) {
					t.Errorf("missing %s in %s", w, joined)
				}
			}
			if strings.HasPrefix(path, "/fhir") && !strings.Contains(fmt.Sprint(doc.Caps), "client-confidential-asymmetric") {
				t.Errorf("capabilities %v", doc.Caps)
			}
		})
	}
}

func TestRegisterClientValidation(t *testing.T) {
	srv := oauthtest.NewServer()
	defer srv.Close()
	key := newTestKey(t, "k1")
	jwksOf := func(k jose.JSONWebKey) []byte {
		b, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		c    oauthtest.Client
		ok   bool
	}{
		{"valid jwt client", oauthtest.Client{ID: "a", AuthMethod: "private_key_jwt", JWKS: key.jwks(t)}, true},
		{"missing ID", oauthtest.Client{Secret: "s", AuthMethod: "client_secret_basic"}, false},
		{"unknown method", oauthtest.Client{ID: "a", Secret: "s", AuthMethod: "tls_client_auth"}, false},
		{"basic without secret", oauthtest.Client{ID: "a", AuthMethod: "client_secret_basic"}, false},
		{"jwt without JWKS", oauthtest.Client{ID: "a", AuthMethod: "private_key_jwt"}, false},
		{"malformed JWKS", oauthtest.Client{ID: "a", AuthMethod: "private_key_jwt", JWKS: []byte(`{"keys":[{`)}, false},
		{"private key in JWKS", oauthtest.Client{ID: "a", AuthMethod: "private_key_jwt", JWKS: jwksOf(jose.JSONWebKey{Key: key.priv, KeyID: "k"})}, false},
		{"symmetric key in JWKS", oauthtest.Client{ID: "a", AuthMethod: "private_key_jwt", JWKS: jwksOf(jose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "k"})}, false},
		{"key without kid", oauthtest.Client{ID: "a", AuthMethod: "private_key_jwt", JWKS: jwksOf(jose.JSONWebKey{Key: &key.priv.PublicKey})}, false},
		{"short RSA key", oauthtest.Client{ID: "a", AuthMethod: "private_key_jwt", JWKS: jwksOf(jose.JSONWebKey{Key: &small.PublicKey, KeyID: "k"})}, false},
		{"unknown grant", oauthtest.Client{ID: "a", AuthMethod: "none", GrantTypes: []string{"implicit"}}, false},
		{"relative redirect", oauthtest.Client{ID: "a", AuthMethod: "none", RedirectURIs: []string{"/cb"}}, false},
		{"public with secret", oauthtest.Client{ID: "a", Secret: "s", AuthMethod: "none"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := srv.RegisterClient(tt.c); (err == nil) != tt.ok {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func TestConcurrentUse(t *testing.T) {
	e := newEnv(t)
	const n = 16
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPost, e.srv.TokenURL(), strings.NewReader(cc().Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			basicAuth("basic", basicSecret)(req)
			resp, err := e.srv.HTTPClient().Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			var body struct {
				AccessToken string `json:"access_token"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			req, _ = http.NewRequest(http.MethodGet, e.srv.FHIRBase()+"/Patient", nil)
			req.Header.Set("Authorization", "Bearer "+body.AccessToken)
			resp, err = e.srv.HTTPClient().Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("resource status %d", resp.StatusCode)
			}
			_ = e.srv.Stats()
		}()
	}
	wg.Wait()
	if st := e.srv.Stats(); st.TokenRequests != n || st.ResourceRequests != n || st.ResourceRejected != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestTLSServer(t *testing.T) {
	srv := oauthtest.NewTLSServer()
	defer srv.Close()
	if !strings.HasPrefix(srv.URL, "https://127.0.0.1:") || strings.HasSuffix(srv.URL, "/") {
		t.Fatalf("URL %q", srv.URL)
	}
	if err := srv.RegisterClient(oauthtest.Client{ID: "c", Secret: "s", AuthMethod: "client_secret_post"}); err != nil {
		t.Fatal(err)
	}
	resp, err := srv.HTTPClient().PostForm(srv.TokenURL(), url.Values{
		"grant_type": {"client_credentials"}, "client_id": {"c"}, "client_secret": {"s"},
	})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

func TestNothingSecretIsLoggedOrRecorded(t *testing.T) {
	e := newEnv(t)
	var buf bytes.Buffer
	e.srv.Logger = slog.New(slog.NewTextHandler(&buf, nil))
	rt, _ := e.srv.IssueRefreshToken("basic", "alice", nil)
	r := e.refresh(t, rt, "")
	assertion := e.jwtAuth(t, cc())
	e.post(t, e.srv.TokenURL(), assertion, nil)
	e.post(t, e.srv.TokenURL(), url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"wonderland"}},
		basicAuth("post", postSecret))
	e.resourceStatus(t, r.str("access_token"))
	e.post(t, e.srv.RevocationURL(), url.Values{"token": {r.str("refresh_token")}}, basicAuth("basic", basicSecret))

	recorded := buf.String() + fmt.Sprintf("%+v", e.srv.TokenRequestLog())
	if buf.Len() == 0 {
		t.Error("Logger received nothing")
	}
	for name, secret := range map[string]string{
		"basic secret": basicSecret, "post secret": postSecret, "password": "wonderland",
		"refresh token": rt, "new refresh token": r.str("refresh_token"), "access token": r.str("access_token"),
		"assertion": assertion.Get("client_assertion"),
	} {
		if strings.Contains(recorded, secret) {
			t.Errorf("the %s appears in the log", name)
		}
	}
}

// TestMethodNotAllowed: the token, revocation and introspection endpoints
// accept POST only and say so in the Allow header.
func TestMethodNotAllowed(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name string
		url  string
	}{
		{"token", e.srv.TokenURL()},
		{"revocation", e.srv.RevocationURL()},
		{"introspection", e.srv.IntrospectionURL()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, tt.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			r := e.do(t, req)
			if r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != http.MethodPost || r.str("error") != "invalid_request" {
				t.Errorf("GET: %v, Allow %q; want 405 invalid_request, Allow POST", r, r.header.Get("Allow"))
			}
		})
	}
}
