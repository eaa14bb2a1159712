package oauthtest_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/oauthkit/oauthkit/oauthtest"
)

const (
	basicSecret = "b+s%c/ret" // needs form-encoding in Basic credentials
	postSecret  = "post-secret"
)

// testKey is an ES256 key with its kid.
type testKey struct {
	kid  string
	priv *ecdsa.PrivateKey
}

func newTestKey(t testing.TB, kid string) testKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{kid: kid, priv: k}
}

func (k testKey) jwks(t testing.TB) []byte {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key: &k.priv.PublicKey, KeyID: k.kid, Algorithm: string(jose.ES256), Use: "sig",
	}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sign signs claims with key (ES256, kid header unless kid is "").
func sign(t testing.TB, key any, alg jose.SignatureAlgorithm, kid string, claims any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func newJTI() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// assertionClaims are valid client assertion claims for client id.
func assertionClaims(srv *oauthtest.Server, id string) jwt.Claims {
	now := time.Now()
	return jwt.Claims{
		Issuer: id, Subject: id, Audience: jwt.Audience{srv.TokenURL()},
		Expiry: jwt.NewNumericDate(now.Add(4 * time.Minute)), IssuedAt: jwt.NewNumericDate(now),
		ID: newJTI(),
	}
}

// env is a server with one client per authentication method.
type env struct {
	srv    *oauthtest.Server
	jwtKey testKey
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := oauthtest.NewServer()
	t.Cleanup(srv.Close)
	e := &env{srv: srv, jwtKey: newTestKey(t, "k1")}
	clients := []oauthtest.Client{
		{ID: "basic", Secret: basicSecret, AuthMethod: oauthtest.AuthClientSecretBasic},
		{ID: "post", Secret: postSecret, AuthMethod: oauthtest.AuthClientSecretPost},
		{ID: "jwt", JWKS: e.jwtKey.jwks(t), AuthMethod: oauthtest.AuthPrivateKeyJWT},
		{ID: "public", AuthMethod: oauthtest.AuthNone, RedirectURIs: []string{"http://127.0.0.1/cb", "https://app.example/cb"}},
		{
			ID: "limited", Secret: postSecret, AuthMethod: oauthtest.AuthClientSecretPost,
			Scopes: []string{"system/Patient.rs"}, GrantTypes: []string{oauthtest.GrantClientCredentials},
		},
	}
	for _, c := range clients {
		if err := srv.RegisterClient(c); err != nil {
			t.Fatal(err)
		}
	}
	srv.AddUser("alice", "wonderland")
	return e
}

// result is a decoded answer. Its String never shows tokens.
type result struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (r result) str(k string) string { s, _ := r.body[k].(string); return s }

func (r result) String() string {
	return "status " + http.StatusText(r.status) + " error=" + r.str("error") + " (" + r.str("error_description") + ")"
}

// post sends form to u; mod may change the request.
func (e *env) post(t *testing.T, u string, form url.Values, mod func(*http.Request)) result {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if mod != nil {
		mod(req)
	}
	return e.do(t, req)
}

func (e *env) do(t *testing.T, req *http.Request) result {
	t.Helper()
	resp, err := e.srv.HTTPClient().Do(req)
	if err != nil {
		t.Fatalf("request failed: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := result{status: resp.StatusCode, header: resp.Header, raw: string(b)}
	_ = json.Unmarshal(b, &r.body)
	return r
}

func basicAuth(id, secret string) func(*http.Request) {
	return func(r *http.Request) { r.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret)) }
}

// token gets a client_credentials token for the "basic" client.
func (e *env) token(t *testing.T, scope string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}}
	if scope != "" {
		form.Set("scope", scope)
	}
	r := e.post(t, e.srv.TokenURL(), form, basicAuth("basic", basicSecret))
	if r.status != http.StatusOK || r.str("access_token") == "" {
		t.Fatalf("client_credentials: %v", r)
	}
	return r.str("access_token")
}

func (e *env) jwtAuth(t *testing.T, form url.Values) url.Values {
	t.Helper()
	form.Set("client_assertion_type", oauthtest.ClientAssertionType)
	form.Set("client_assertion", sign(t, e.jwtKey.priv, jose.ES256, "k1", assertionClaims(e.srv, "jwt")))
	return form
}

func cc() url.Values { return url.Values{"grant_type": {"client_credentials"}} }

func TestClientAuthentication(t *testing.T) {
	e := newEnv(t)
	otherKey := newTestKey(t, "k1")
	tests := []struct {
		name       string
		form       func() url.Values
		mod        func(*http.Request)
		wantStatus int
		wantError  string
		wantBasic  bool // WWW-Authenticate: Basic expected
	}{
		{name: "basic ok", form: cc, mod: basicAuth("basic", basicSecret), wantStatus: 200},
		{name: "basic wrong secret", form: cc, mod: basicAuth("basic", "nope"), wantStatus: 401, wantError: "invalid_client", wantBasic: true},
		{name: "basic secret not form-encoded", form: cc, mod: func(r *http.Request) { r.SetBasicAuth("basic", basicSecret) },
			wantStatus: 401, wantError: "invalid_client", wantBasic: true},
		{name: "basic unknown client", form: cc, mod: basicAuth("ghost", "x"), wantStatus: 401, wantError: "invalid_client", wantBasic: true},
		{name: "basic client_id mismatch", form: func() url.Values { f := cc(); f.Set("client_id", "post"); return f },
			mod: basicAuth("basic", basicSecret), wantStatus: 400, wantError: "invalid_request"},
		{name: "post ok", form: func() url.Values {
			f := cc()
			f.Set("client_id", "post")
			f.Set("client_secret", postSecret)
			return f
		}, wantStatus: 200},
		{name: "post wrong secret", form: func() url.Values {
			f := cc()
			f.Set("client_id", "post")
			f.Set("client_secret", "nope")
			return f
		}, wantStatus: 401, wantError: "invalid_client"},
		{name: "basic client using post", form: func() url.Values {
			f := cc()
			f.Set("client_id", "basic")
			f.Set("client_secret", basicSecret)
			return f
		}, wantStatus: 401, wantError: "invalid_client"},
		{name: "post client using basic", form: cc, mod: basicAuth("post", postSecret), wantStatus: 401, wantError: "invalid_client", wantBasic: true},
		{name: "private_key_jwt ok", form: func() url.Values { return e.jwtAuth(t, cc()) }, wantStatus: 200},
		{name: "private_key_jwt wrong key", form: func() url.Values {
			f := cc()
			f.Set("client_assertion_type", oauthtest.ClientAssertionType)
			f.Set("client_assertion", sign(t, otherKey.priv, jose.ES256, "k1", assertionClaims(e.srv, "jwt")))
			return f
		}, wantStatus: 401, wantError: "invalid_client"},
		{name: "none ok", form: func() url.Values {
			return url.Values{"grant_type": {"password"}, "client_id": {"public"}, "username": {"alice"}, "password": {"wonderland"}}
		}, wantStatus: 200},
		{name: "none for confidential client", form: func() url.Values { f := cc(); f.Set("client_id", "basic"); return f },
			wantStatus: 401, wantError: "invalid_client"},
		{name: "public client cannot use client_credentials", form: func() url.Values { f := cc(); f.Set("client_id", "public"); return f },
			wantStatus: 400, wantError: "unauthorized_client"},
		{name: "no client at all", form: cc, wantStatus: 401, wantError: "invalid_client"},
		{name: "basic and post at once", form: func() url.Values {
			f := cc()
			f.Set("client_id", "basic")
			f.Set("client_secret", basicSecret)
			return f
		}, mod: basicAuth("basic", basicSecret), wantStatus: 400, wantError: "invalid_request"},
		{name: "basic and assertion at once", form: func() url.Values { return e.jwtAuth(t, cc()) },
			mod: basicAuth("basic", basicSecret), wantStatus: 400, wantError: "invalid_request"},
		{name: "json body", form: cc, mod: func(r *http.Request) {
			basicAuth("basic", basicSecret)(r)
			r.Header.Set("Content-Type", "application/json")
		}, wantStatus: 400, wantError: "invalid_request"},
		{name: "parameters in query", form: cc, mod: func(r *http.Request) {
			basicAuth("basic", basicSecret)(r)
			r.URL.RawQuery = "scope=x"
		}, wantStatus: 400, wantError: "invalid_request"},
		{name: "repeated parameter", form: func() url.Values { f := cc(); f.Add("grant_type", "client_credentials"); return f },
			mod: basicAuth("basic", basicSecret), wantStatus: 400, wantError: "invalid_request"},
		{name: "GET", form: cc, mod: func(r *http.Request) {
			basicAuth("basic", basicSecret)(r)
			r.Method = http.MethodGet
		}, wantStatus: 405, wantError: "invalid_request"},
		{name: "unknown grant", form: func() url.Values { return url.Values{"grant_type": {"implicit"}} },
			mod: basicAuth("basic", basicSecret), wantStatus: 400, wantError: "unsupported_grant_type"},
		{name: "grant not allowed", form: func() url.Values {
			return url.Values{"grant_type": {"password"}, "client_id": {"limited"}, "client_secret": {postSecret}, "username": {"alice"}, "password": {"wonderland"}}
		}, wantStatus: 400, wantError: "unauthorized_client"},
		{name: "scope not allowed", form: func() url.Values {
			return url.Values{"grant_type": {"client_credentials"}, "client_id": {"limited"}, "client_secret": {postSecret}, "scope": {"system/*.rs"}}
		}, wantStatus: 400, wantError: "invalid_scope"},
		{name: "malformed scope", form: func() url.Values { f := cc(); f.Set("scope", "a  b"); return f },
			mod: basicAuth("basic", basicSecret), wantStatus: 400, wantError: "invalid_scope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.post(t, e.srv.TokenURL(), tt.form(), tt.mod)
			if r.status != tt.wantStatus || r.str("error") != tt.wantError {
				t.Fatalf("got %v, want %d %q", r, tt.wantStatus, tt.wantError)
			}
			if got := strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Basic"); got != tt.wantBasic {
				t.Errorf("WWW-Authenticate = %q", r.header.Get("WWW-Authenticate"))
			}
			if r.header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control = %q", r.header.Get("Cache-Control"))
			}
			if r.status == http.StatusOK {
				if r.str("token_type") != "Bearer" || len(r.str("access_token")) != 43 || r.body["expires_in"] != float64(3600) {
					t.Errorf("token response: token_type=%q len(access_token)=%d expires_in=%v",
						r.str("token_type"), len(r.str("access_token")), r.body["expires_in"])
				}
			}
			if strings.Contains(r.raw, basicSecret) || strings.Contains(r.raw, postSecret) {
				t.Error("response contains a client secret")
			}
		})
	}
}

func TestClientAssertionChecks(t *testing.T) {
	e := newEnv(t)
	replayed := sign(t, e.jwtKey.priv, jose.ES256, "k1", assertionClaims(e.srv, "jwt"))
	if r := e.post(t, e.srv.TokenURL(), url.Values{
		"grant_type": {"client_credentials"}, "client_assertion_type": {oauthtest.ClientAssertionType}, "client_assertion": {replayed},
	}, nil); r.status != http.StatusOK {
		t.Fatalf("first use: %v", r)
	}
	hmacKey := make([]byte, 32)
	_, _ = rand.Read(hmacKey)

	claims := func(mod func(*jwt.Claims)) jwt.Claims {
		c := assertionClaims(e.srv, "jwt")
		mod(&c)
		return c
	}
	es := func(c jwt.Claims) string { return sign(t, e.jwtKey.priv, jose.ES256, "k1", c) }
	tests := []struct {
		name      string
		assertion func() string
		wantOK    bool
	}{
		{"valid", func() string { return es(claims(func(*jwt.Claims) {})) }, true},
		{"aud array containing token URL", func() string {
			return es(claims(func(c *jwt.Claims) { c.Audience = jwt.Audience{"https://other.example", e.srv.TokenURL()} }))
		}, true},
		{"bad signature", func() string {
			raw := es(claims(func(*jwt.Claims) {}))
			i := strings.LastIndexByte(raw, '.')
			sig, _ := base64.RawURLEncoding.DecodeString(raw[i+1:])
			sig[0] ^= 0xff
			return raw[:i+1] + base64.RawURLEncoding.EncodeToString(sig)
		}, false},
		{"wrong aud", func() string { return es(claims(func(c *jwt.Claims) { c.Audience = jwt.Audience{e.srv.Issuer()} })) }, false},
		{"aud with trailing slash", func() string {
			return es(claims(func(c *jwt.Claims) { c.Audience = jwt.Audience{e.srv.TokenURL() + "/"} }))
		}, false},
		{"exp too far", func() string {
			return es(claims(func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(time.Now().Add(10 * time.Minute)) }))
		}, false},
		{"exp missing", func() string { return es(claims(func(c *jwt.Claims) { c.Expiry = nil })) }, false},
		{"expired", func() string {
			return es(claims(func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(time.Now().Add(-time.Minute)) }))
		}, false},
		{"iat in the future", func() string {
			return es(claims(func(c *jwt.Claims) { c.IssuedAt = jwt.NewNumericDate(time.Now().Add(3 * time.Minute)) }))
		}, false},
		{"jti missing", func() string { return es(claims(func(c *jwt.Claims) { c.ID = "" })) }, false},
		{"jti replayed", func() string { return replayed }, false},
		{"sub differs from iss", func() string { return es(claims(func(c *jwt.Claims) { c.Subject = "someone" })) }, false},
		{"missing kid", func() string { return sign(t, e.jwtKey.priv, jose.ES256, "", claims(func(*jwt.Claims) {})) }, false},
		{"unknown kid", func() string { return sign(t, e.jwtKey.priv, jose.ES256, "k2", claims(func(*jwt.Claims) {})) }, false},
		{"HS256", func() string { return sign(t, hmacKey, jose.HS256, "k1", claims(func(*jwt.Claims) {})) }, false},
		{"not a JWT", func() string { return "abc.def" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.post(t, e.srv.TokenURL(), url.Values{
				"grant_type":            {"client_credentials"},
				"client_assertion_type": {oauthtest.ClientAssertionType},
				"client_assertion":      {tt.assertion()},
			}, nil)
			if tt.wantOK {
				if r.status != http.StatusOK {
					t.Fatalf("got %v, want 200", r)
				}
				return
			}
			if r.status != http.StatusUnauthorized || r.str("error") != "invalid_client" {
				t.Fatalf("got %v, want 401 invalid_client", r)
			}
		})
	}

	t.Run("wrong assertion type", func(t *testing.T) {
		f := e.jwtAuth(t, cc())
		f.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:saml2-bearer")
		if r := e.post(t, e.srv.TokenURL(), f, nil); r.str("error") != "invalid_client" {
			t.Fatalf("got %v", r)
		}
	})
	t.Run("client_id must match iss", func(t *testing.T) {
		f := e.jwtAuth(t, cc())
		f.Set("client_id", "basic")
		if r := e.post(t, e.srv.TokenURL(), f, nil); r.str("error") != "invalid_client" {
			t.Fatalf("got %v", r)
		}
	})
}
