package oauthtest_test

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/oauthkit/oauthkit/oauthtest"
)

func (e *env) refresh(t *testing.T, rt, scope string) result {
	t.Helper()
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	if scope != "" {
		form.Set("scope", scope)
	}
	return e.post(t, e.srv.TokenURL(), form, basicAuth("basic", basicSecret))
}

// resourceStatus GETs /fhir/Patient with tok and returns the status.
func (e *env) resourceStatus(t *testing.T, tok string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.srv.FHIRBase()+"/Patient", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	return e.do(t, req).status
}

func TestRefreshRotationAndReuse(t *testing.T) {
	e := newEnv(t)
	rt0, err := e.srv.IssueRefreshToken("basic", "alice", []string{"system/Patient.rs", "offline_access"})
	if err != nil {
		t.Fatal(err)
	}
	r1 := e.refresh(t, rt0, "")
	if r1.status != http.StatusOK || r1.str("refresh_token") == "" || r1.str("refresh_token") == rt0 {
		t.Fatalf("first refresh: %v (new refresh token: %v)", r1, r1.str("refresh_token") != "")
	}
	if got := r1.str("scope"); got != "system/Patient.rs offline_access" {
		t.Errorf("scope = %q", got)
	}
	r2 := e.refresh(t, r1.str("refresh_token"), "system/Patient.rs")
	if r2.status != http.StatusOK || r2.str("scope") != "system/Patient.rs" {
		t.Fatalf("narrowing refresh: %v scope=%q", r2, r2.str("scope"))
	}
	if e.resourceStatus(t, r2.str("access_token")) != http.StatusOK {
		t.Fatal("fresh access token rejected")
	}
	if r := e.refresh(t, r2.str("refresh_token"), "system/*.rs"); r.str("error") != "invalid_scope" {
		t.Fatalf("widening refresh: %v", r)
	}
	// The failed widening did not consume the token; now reuse an old one.
	if r := e.refresh(t, rt0, ""); r.str("error") != "invalid_grant" {
		t.Fatalf("reuse: %v", r)
	}
	if got := e.srv.Stats().RefreshReuseDetected; got != 1 {
		t.Errorf("RefreshReuseDetected = %d", got)
	}
	if r := e.refresh(t, r2.str("refresh_token"), ""); r.str("error") != "invalid_grant" {
		t.Fatalf("family member after reuse: %v", r)
	}
	for i, tok := range []string{r1.str("access_token"), r2.str("access_token")} {
		if got := e.resourceStatus(t, tok); got != http.StatusUnauthorized {
			t.Errorf("access token %d of revoked family: status %d", i+1, got)
		}
	}
}

func TestRefreshRules(t *testing.T) {
	e := newEnv(t)
	issue := func() string {
		rt, err := e.srv.IssueRefreshToken("basic", "alice", nil)
		if err != nil {
			t.Fatal(err)
		}
		return rt
	}
	t.Run("unknown", func(t *testing.T) {
		if r := e.refresh(t, "not-a-token", ""); r.str("error") != "invalid_grant" {
			t.Fatalf("got %v", r)
		}
	})
	t.Run("other client", func(t *testing.T) {
		r := e.post(t, e.srv.TokenURL(), url.Values{
			"grant_type": {"refresh_token"}, "refresh_token": {issue()}, "client_id": {"post"}, "client_secret": {postSecret},
		}, nil)
		if r.str("error") != "invalid_grant" {
			t.Fatalf("got %v", r)
		}
	})
	t.Run("expired", func(t *testing.T) {
		rt := issue()
		e.srv.SetNow(func() time.Time { return time.Now().Add(25 * time.Hour) })
		defer e.srv.SetNow(nil)
		if r := e.refresh(t, rt, ""); r.str("error") != "invalid_grant" {
			t.Fatalf("got %v", r)
		}
	})
	t.Run("rotation off", func(t *testing.T) {
		e.srv.SetRotateRefreshTokens(false)
		defer e.srv.SetRotateRefreshTokens(true)
		rt := issue()
		for i := range 2 {
			r := e.refresh(t, rt, "")
			if r.status != http.StatusOK || r.str("refresh_token") != "" {
				t.Fatalf("use %d: %v, refresh_token returned: %v", i+1, r, r.str("refresh_token") != "")
			}
		}
	})
	t.Run("unknown client for IssueRefreshToken", func(t *testing.T) {
		if _, err := e.srv.IssueRefreshToken("ghost", "alice", nil); err == nil {
			t.Fatal("no error")
		}
	})
}

func TestJWTBearerGrant(t *testing.T) {
	e := newEnv(t)
	grantClaims := func(mod func(*jwt.Claims)) string {
		c := assertionClaims(e.srv, "jwt")
		c.Subject = "alice"
		mod(&c)
		return sign(t, e.jwtKey.priv, jose.ES256, "k1", c)
	}
	replayed := grantClaims(func(*jwt.Claims) {})
	tests := []struct {
		name       string
		assertion  string
		clientAuth bool
		wantError  string
	}{
		{"with client auth", grantClaims(func(*jwt.Claims) {}), true, ""},
		{"without client auth", replayed, false, ""},
		{"replayed", replayed, false, "invalid_grant"},
		{"wrong aud", grantClaims(func(c *jwt.Claims) { c.Audience = jwt.Audience{"https://x.example/token"} }), false, "invalid_grant"},
		{"exp too far", grantClaims(func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(time.Now().Add(time.Hour)) }), true, "invalid_grant"},
		{"missing sub", grantClaims(func(c *jwt.Claims) { c.Subject = "" }), true, "invalid_grant"},
		{"unknown issuer", grantClaims(func(c *jwt.Claims) { c.Issuer = "ghost" }), false, "invalid_grant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form := url.Values{"grant_type": {oauthtest.GrantJWTBearer}, "assertion": {tt.assertion}, "scope": {"system/Patient.rs"}}
			if tt.clientAuth {
				form = e.jwtAuth(t, form)
			}
			r := e.post(t, e.srv.TokenURL(), form, nil)
			if r.str("error") != tt.wantError {
				t.Fatalf("got %v, want %q", r, tt.wantError)
			}
			if tt.wantError != "" {
				return
			}
			if r.str("refresh_token") != "" {
				t.Error("jwt-bearer returned a refresh token")
			}
			in := e.post(t, e.srv.IntrospectionURL(), url.Values{"token": {r.str("access_token")}}, basicAuth("basic", basicSecret))
			if in.body["sub"] != "alice" || in.body["client_id"] != "jwt" {
				t.Errorf("introspection sub=%v client_id=%v", in.body["sub"], in.body["client_id"])
			}
		})
	}
}

func TestTokenExchange(t *testing.T) {
	e := newEnv(t)
	subject := e.token(t, "system/Patient.rs system/*.rs")
	revoked := e.token(t, "")
	e.srv.RevokeAccessToken(revoked)
	exchange := func(mod func(url.Values)) result {
		form := url.Values{
			"grant_type":         {oauthtest.GrantTokenExchange},
			"subject_token":      {subject},
			"subject_token_type": {oauthtest.TokenTypeAccessToken},
		}
		mod(form)
		return e.post(t, e.srv.TokenURL(), form, basicAuth("basic", basicSecret))
	}
	tests := []struct {
		name      string
		mod       func(url.Values)
		wantError string
	}{
		{"plain", func(url.Values) {}, ""},
		{"audience, resources, actor, narrower scope", func(f url.Values) {
			f["audience"] = []string{"api-a", "api-b"}
			f["resource"] = []string{"https://api.example/a", "https://api.example/b"}
			f.Set("actor_token", e.token(t, ""))
			f.Set("actor_token_type", oauthtest.TokenTypeAccessToken)
			f.Set("requested_token_type", oauthtest.TokenTypeAccessToken)
			f.Set("scope", "system/Patient.rs")
		}, ""},
		{"wider scope", func(f url.Values) { f.Set("scope", "system/Observation.rs") }, "invalid_scope"},
		{"unknown subject token", func(f url.Values) { f.Set("subject_token", "nope") }, "invalid_request"},
		{"revoked subject token", func(f url.Values) { f.Set("subject_token", revoked) }, "invalid_request"},
		{"refresh token type", func(f url.Values) { f.Set("subject_token_type", oauthtest.TokenTypeRefreshToken) }, "invalid_request"},
		{"missing type", func(f url.Values) { f.Del("subject_token_type") }, "invalid_request"},
		{"actor without type", func(f url.Values) { f.Set("actor_token", subject) }, "invalid_request"},
		{"unsupported requested type", func(f url.Values) { f.Set("requested_token_type", "urn:x:id_token") }, "invalid_request"},
		{"resource with fragment", func(f url.Values) { f.Set("resource", "https://api.example/a#x") }, "invalid_target"},
		{"relative resource", func(f url.Values) { f.Set("resource", "/a") }, "invalid_target"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := exchange(tt.mod)
			if r.str("error") != tt.wantError {
				t.Fatalf("got %v, want %q", r, tt.wantError)
			}
			if tt.wantError == "" && r.str("issued_token_type") != oauthtest.TokenTypeAccessToken {
				t.Errorf("issued_token_type = %q", r.str("issued_token_type"))
			}
		})
	}
}

func TestPasswordGrant(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name, user, pass, wantError string
	}{
		{"ok", "alice", "wonderland", ""},
		{"wrong password", "alice", "nope", "invalid_grant"},
		{"unknown user", "bob", "wonderland", "invalid_grant"},
		{"missing username", "", "x", "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.post(t, e.srv.TokenURL(), url.Values{"grant_type": {"password"}, "username": {tt.user}, "password": {tt.pass}},
				basicAuth("basic", basicSecret))
			if r.str("error") != tt.wantError {
				t.Fatalf("got %v, want %q", r, tt.wantError)
			}
			if tt.wantError == "" && r.str("refresh_token") == "" {
				t.Error("no refresh token")
			}
		})
	}
}

// noRedirect is a client that returns redirects instead of following them.
func (e *env) noRedirect() *http.Client {
	c := *e.srv.HTTPClient()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// authorize performs GET /authorize and returns the status and Location.
func (e *env) authorize(t *testing.T, q url.Values) (int, *url.URL) {
	t.Helper()
	resp, err := e.noRedirect().Get(e.srv.AuthorizeURL() + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := resp.Location()
	return resp.StatusCode, loc
}

const verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"

func challenge(v string) string {
	sum := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func authQuery(mod func(url.Values)) url.Values {
	q := url.Values{
		"response_type": {"code"}, "client_id": {"public"}, "redirect_uri": {"http://127.0.0.1:5555/cb"},
		"code_challenge": {challenge(verifier)}, "code_challenge_method": {"S256"}, "state": {"xyz"}, "scope": {"patient/Patient.rs"},
	}
	if mod != nil {
		mod(q)
	}
	return q
}

func TestAuthorizeRequests(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name       string
		mod        func(url.Values)
		wantStatus int
		wantError  string // in the redirect; "" with 302 means a code
	}{
		{"ok loopback any port", nil, http.StatusFound, ""},
		{"ok exact https", func(q url.Values) { q.Set("redirect_uri", "https://app.example/cb") }, http.StatusFound, ""},
		{"plain method", func(q url.Values) { q.Set("code_challenge_method", "plain") }, http.StatusFound, "invalid_request"},
		{"no challenge", func(q url.Values) { q.Del("code_challenge"); q.Del("code_challenge_method") }, http.StatusFound, "invalid_request"},
		{"token response type", func(q url.Values) { q.Set("response_type", "token") }, http.StatusFound, "unsupported_response_type"},
		{"unknown login_hint", func(q url.Values) { q.Set("login_hint", "mallory") }, http.StatusFound, "access_denied"},
		{"unregistered redirect", func(q url.Values) { q.Set("redirect_uri", "https://evil.example/cb") }, http.StatusBadRequest, ""},
		{"loopback other path", func(q url.Values) { q.Set("redirect_uri", "http://127.0.0.1:5555/other") }, http.StatusBadRequest, ""},
		{"https port change", func(q url.Values) { q.Set("redirect_uri", "https://app.example:8443/cb") }, http.StatusBadRequest, ""},
		{"unknown client", func(q url.Values) { q.Set("client_id", "ghost") }, http.StatusBadRequest, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, loc := e.authorize(t, authQuery(tt.mod))
			if status != tt.wantStatus {
				t.Fatalf("status %d, want %d", status, tt.wantStatus)
			}
			if status != http.StatusFound {
				return
			}
			got := loc.Query()
			if got.Get("error") != tt.wantError || got.Get("state") != "xyz" || got.Get("iss") != e.srv.Issuer() {
				t.Fatalf("redirect error=%q state=%q iss=%q", got.Get("error"), got.Get("state"), got.Get("iss"))
			}
			if (tt.wantError == "") != (got.Get("code") != "") {
				t.Errorf("code present: %v", got.Get("code") != "")
			}
		})
	}
}

func TestAuthorizationCodeGrant(t *testing.T) {
	e := newEnv(t)
	code := func(t *testing.T) string {
		_, loc := e.authorize(t, authQuery(nil))
		return loc.Query().Get("code")
	}
	redeem := func(t *testing.T, code, redirect, v string) result {
		return e.post(t, e.srv.TokenURL(), url.Values{
			"grant_type": {"authorization_code"}, "client_id": {"public"}, "code": {code},
			"redirect_uri": {redirect}, "code_verifier": {v},
		}, nil)
	}
	const redirect = "http://127.0.0.1:5555/cb"

	t.Run("good verifier, then reuse", func(t *testing.T) {
		c := code(t)
		r := redeem(t, c, redirect, verifier)
		if r.status != http.StatusOK || r.str("refresh_token") == "" || r.str("scope") != "patient/Patient.rs" {
			t.Fatalf("got %v scope=%q", r, r.str("scope"))
		}
		if e.resourceStatus(t, r.str("access_token")) != http.StatusOK {
			t.Fatal("access token rejected")
		}
		if r2 := redeem(t, c, redirect, verifier); r2.str("error") != "invalid_grant" {
			t.Fatalf("reuse: %v", r2)
		}
		if e.resourceStatus(t, r.str("access_token")) != http.StatusUnauthorized {
			t.Error("access token from a reused code still accepted")
		}
		in := e.post(t, e.srv.IntrospectionURL(), url.Values{"token": {r.str("access_token")}}, basicAuth("basic", basicSecret))
		if in.body["active"] != false {
			t.Error("token from reused code still active")
		}
	})
	tests := []struct {
		name, redirect, verifier string
		clock                    time.Duration
	}{
		{"wrong verifier", redirect, strings.Repeat("a", 43), 0},
		{"short verifier", redirect, "abc", 0},
		{"other redirect_uri", "http://127.0.0.1:6666/cb", verifier, 0},
		{"expired code", redirect, verifier, 61 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := code(t)
			if tt.clock != 0 {
				e.srv.SetNow(func() time.Time { return time.Now().Add(tt.clock) })
				defer e.srv.SetNow(nil)
			}
			if r := redeem(t, c, tt.redirect, tt.verifier); r.str("error") != "invalid_grant" {
				t.Fatalf("got %v", r)
			}
		})
	}
	t.Run("login_hint subject", func(t *testing.T) {
		e.srv.AddUser("bob", "builder")
		_, loc := e.authorize(t, authQuery(func(q url.Values) { q.Set("login_hint", "bob") }))
		r := redeem(t, loc.Query().Get("code"), redirect, verifier)
		in := e.post(t, e.srv.IntrospectionURL(), url.Values{"token": {r.str("access_token")}}, basicAuth("basic", basicSecret))
		if in.body["sub"] != "bob" {
			t.Errorf("sub = %v", in.body["sub"])
		}
	})
}
