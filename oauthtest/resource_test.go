package oauthtest_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestResource(t *testing.T) {
	e := newEnv(t)
	tok := func(scope string) func() string { return func() string { return e.token(t, scope) } }
	tests := []struct {
		name       string
		method     string
		path       string
		auth       func() string // Authorization header value; "" for none
		body       string
		wantStatus int
		wantAuthn  string // WWW-Authenticate (prefix)
		wantTotal  float64
	}{
		{name: "no token", path: "/Patient", auth: func() string { return "" }, wantStatus: 401,
			wantAuthn: `Bearer realm="oauthtest"`},
		{name: "unknown token", path: "/Patient", auth: func() string { return "Bearer abcdef" }, wantStatus: 401,
			wantAuthn: `Bearer realm="oauthtest", error="invalid_token", error_description="the access token is unknown"`},
		{name: "basic scheme", path: "/Patient", auth: func() string { return "Basic YTpi" }, wantStatus: 401,
			wantAuthn: `Bearer realm="oauthtest"`},
		{name: "malformed bearer", path: "/Patient", auth: func() string { return "Bearer a b" }, wantStatus: 400,
			wantAuthn: `Bearer realm="oauthtest", error="invalid_request"`},
		{name: "no scope", path: "/Patient", auth: func() string { return "Bearer " + tok("")() }, wantStatus: 200, wantTotal: 2},
		{name: "lower-case scheme", path: "/Patient", auth: func() string { return "bearer " + tok("")() }, wantStatus: 200, wantTotal: 2},
		{name: "system/Patient.rs", path: "/Patient", auth: func() string { return "Bearer " + tok("system/Patient.rs")() }, wantStatus: 200, wantTotal: 2},
		{name: "system/Patient.read", path: "/Patient", auth: func() string { return "Bearer " + tok("system/Patient.read")() }, wantStatus: 200, wantTotal: 2},
		{name: "system/*.rs", path: "/Patient", auth: func() string { return "Bearer " + tok("system/*.rs")() }, wantStatus: 200, wantTotal: 2},
		{name: "user/Patient.cruds", path: "/Patient", auth: func() string { return "Bearer " + tok("user/Patient.cruds")() }, wantStatus: 200, wantTotal: 2},
		{name: "Observation only", path: "/Patient", auth: func() string { return "Bearer " + tok("system/Observation.rs")() }, wantStatus: 403,
			wantAuthn: `Bearer realm="oauthtest", error="insufficient_scope"`},
		{name: "read-only scope cannot search", path: "/Patient", auth: func() string { return "Bearer " + tok("system/Patient.r")() }, wantStatus: 403,
			wantAuthn: `Bearer realm="oauthtest", error="insufficient_scope"`},
		{name: "read-only scope can read", path: "/Patient/p1", auth: func() string { return "Bearer " + tok("system/Patient.r")() }, wantStatus: 200},
		{name: "write scope", path: "/Patient/p1", auth: func() string { return "Bearer " + tok("system/Patient.write")() }, wantStatus: 403,
			wantAuthn: `Bearer realm="oauthtest", error="insufficient_scope"`},
		{name: "missing patient", path: "/Patient/p9", auth: func() string { return "Bearer " + tok("")() }, wantStatus: 404},
		{name: "token in query", path: "/Patient?access_token=abc", auth: func() string { return "" }, wantStatus: 400,
			wantAuthn: `Bearer realm="oauthtest", error="invalid_request"`},
		{name: "search by _id", path: "/Patient?_id=p2", auth: func() string { return "Bearer " + tok("")() }, wantStatus: 200, wantTotal: 1},
		{name: "POST _search", method: http.MethodPost, path: "/Patient/_search", body: "_id=p1", auth: func() string { return "Bearer " + tok("")() },
			wantStatus: 200, wantTotal: 1},
		{name: "metadata needs no token", path: "/metadata", auth: func() string { return "" }, wantStatus: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			req, err := http.NewRequest(method, e.srv.FHIRBase()+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if tt.body != "" {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			if a := tt.auth(); a != "" {
				req.Header.Set("Authorization", a)
			}
			r := e.do(t, req)
			if r.status != tt.wantStatus {
				t.Fatalf("status %d, want %d", r.status, tt.wantStatus)
			}
			if got := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, tt.wantAuthn) || (tt.wantAuthn == "" && got != "") {
				t.Errorf("WWW-Authenticate = %q, want prefix %q", got, tt.wantAuthn)
			}
			if tt.wantAuthn == `Bearer realm="oauthtest"` && r.header.Get("WWW-Authenticate") != tt.wantAuthn {
				t.Errorf("WWW-Authenticate = %q, want exactly %q", r.header.Get("WWW-Authenticate"), tt.wantAuthn)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/fhir+json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if tt.wantTotal != 0 && (r.body["resourceType"] != "Bundle" || r.body["type"] != "searchset" || r.body["total"] != tt.wantTotal) {
				t.Errorf("bundle resourceType=%v type=%v total=%v", r.body["resourceType"], r.body["type"], r.body["total"])
			}
		})
	}
}

func TestResourceExpiryAndRevocation(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name   string
		revoke func(tok string)
		want   string
	}{
		{"expired", func(string) {
			e.srv.SetNow(func() time.Time { return time.Now().Add(time.Hour + time.Second) })
		}, "the access token expired"},
		{"revoked one", func(tok string) { e.srv.RevokeAccessToken(tok) }, "the access token was revoked"},
		{"revoked all", func(string) { e.srv.RevokeAll() }, "the access token was revoked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer e.srv.SetNow(nil)
			tok := e.token(t, "")
			if got := e.resourceStatus(t, tok); got != http.StatusOK {
				t.Fatalf("status %d before", got)
			}
			tt.revoke(tok)
			req, _ := http.NewRequest(http.MethodGet, e.srv.FHIRBase()+"/Patient/p1", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			r := e.do(t, req)
			want := `Bearer realm="oauthtest", error="invalid_token", error_description="` + tt.want + `"`
			if r.status != http.StatusUnauthorized || r.header.Get("WWW-Authenticate") != want {
				t.Fatalf("status %d, WWW-Authenticate %q", r.status, r.header.Get("WWW-Authenticate"))
			}
		})
	}
	t.Run("short lifetime applies to next tokens", func(t *testing.T) {
		e.srv.SetTokenLifetime(time.Minute)
		defer e.srv.SetTokenLifetime(time.Hour)
		r := e.post(t, e.srv.TokenURL(), cc(), basicAuth("basic", basicSecret))
		if r.body["expires_in"] != float64(60) {
			t.Fatalf("expires_in = %v", r.body["expires_in"])
		}
		e.srv.SetNow(func() time.Time { return time.Now().Add(61 * time.Second) })
		defer e.srv.SetNow(nil)
		if got := e.resourceStatus(t, r.str("access_token")); got != http.StatusUnauthorized {
			t.Fatalf("status %d", got)
		}
	})
	t.Run("omit expires_in", func(t *testing.T) {
		e.srv.SetOmitExpiresIn(true)
		defer e.srv.SetOmitExpiresIn(false)
		r := e.post(t, e.srv.TokenURL(), cc(), basicAuth("basic", basicSecret))
		if _, ok := r.body["expires_in"]; ok || r.status != http.StatusOK {
			t.Fatalf("%v; expires_in present: %v", r, ok)
		}
	})
}

func TestRevocation(t *testing.T) {
	e := newEnv(t)
	revoke := func(t *testing.T, form url.Values, mod func(*http.Request)) result {
		return e.post(t, e.srv.RevocationURL(), form, mod)
	}
	auth := basicAuth("basic", basicSecret)

	t.Run("access token", func(t *testing.T) {
		tok := e.token(t, "")
		if r := revoke(t, url.Values{"token": {tok}, "token_type_hint": {"access_token"}}, auth); r.status != http.StatusOK {
			t.Fatalf("got %v", r)
		}
		if e.resourceStatus(t, tok) != http.StatusUnauthorized {
			t.Error("revoked token accepted")
		}
	})
	t.Run("refresh token revokes family", func(t *testing.T) {
		rt, _ := e.srv.IssueRefreshToken("basic", "alice", nil)
		r1 := e.refresh(t, rt, "")
		if r := revoke(t, url.Values{"token": {r1.str("refresh_token")}}, auth); r.status != http.StatusOK {
			t.Fatalf("got %v", r)
		}
		if e.resourceStatus(t, r1.str("access_token")) != http.StatusUnauthorized {
			t.Error("access token of revoked family accepted")
		}
		if r := e.refresh(t, r1.str("refresh_token"), ""); r.str("error") != "invalid_grant" {
			t.Errorf("revoked refresh token: %v", r)
		}
	})
	tests := []struct {
		name       string
		form       url.Values
		mod        func(*http.Request)
		wantStatus int
		wantError  string
	}{
		{"unknown token", url.Values{"token": {"nope"}}, auth, 200, ""},
		{"no client auth", url.Values{"token": {"nope"}}, nil, 401, "invalid_client"},
		{"missing token", url.Values{}, auth, 400, "invalid_request"},
		{"bad hint", url.Values{"token": {"nope"}, "token_type_hint": {"id_token"}}, auth, 400, "unsupported_token_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r := revoke(t, tt.form, tt.mod); r.status != tt.wantStatus || r.str("error") != tt.wantError {
				t.Fatalf("got %v, want %d %q", r, tt.wantStatus, tt.wantError)
			}
		})
	}
	t.Run("token of another client", func(t *testing.T) {
		tok := e.token(t, "")
		r := revoke(t, url.Values{"token": {tok}, "client_id": {"post"}, "client_secret": {postSecret}}, nil)
		if r.str("error") != "unauthorized_client" || e.resourceStatus(t, tok) != http.StatusOK {
			t.Fatalf("got %v", r)
		}
	})
	if got := e.srv.Stats().Revocations; got != 3 {
		t.Errorf("Revocations = %d, want 3", got)
	}
}

func TestIntrospection(t *testing.T) {
	e := newEnv(t)
	auth := basicAuth("basic", basicSecret)
	tok := e.token(t, "system/Patient.rs")
	revoked := e.token(t, "")
	e.srv.RevokeAccessToken(revoked)
	rt, _ := e.srv.IssueRefreshToken("basic", "alice", []string{"offline_access"})

	r := e.post(t, e.srv.IntrospectionURL(), url.Values{"token": {tok}}, auth)
	if r.body["active"] != true || r.body["scope"] != "system/Patient.rs" || r.body["client_id"] != "basic" ||
		r.body["sub"] != "basic" || r.body["exp"] == nil {
		t.Errorf("active access token: active=%v scope=%v client_id=%v sub=%v exp=%v",
			r.body["active"], r.body["scope"], r.body["client_id"], r.body["sub"], r.body["exp"])
	}
	r = e.post(t, e.srv.IntrospectionURL(), url.Values{"token": {rt}, "token_type_hint": {"refresh_token"}}, auth)
	if r.body["active"] != true || r.body["sub"] != "alice" {
		t.Errorf("refresh token: active=%v sub=%v", r.body["active"], r.body["sub"])
	}
	for _, inactive := range []string{revoked, "unknown"} {
		r = e.post(t, e.srv.IntrospectionURL(), url.Values{"token": {inactive}}, auth)
		if r.status != http.StatusOK || r.raw != `{"active":false}` {
			t.Errorf("inactive token: %v %d", r, len(r.raw))
		}
	}
	if r = e.post(t, e.srv.IntrospectionURL(), url.Values{"token": {tok}}, nil); r.str("error") != "invalid_client" {
		t.Errorf("without client auth: %v", r)
	}
}
