package oauthtest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzTokenEndpoint checks that no form body or Authorization header makes
// the token endpoint panic or answer anything but a JSON token or error.
func FuzzTokenEndpoint(f *testing.F) {
	f.Add("grant_type=client_credentials", "Basic YzpzZWNyZXQ=")
	f.Add("grant_type=client_credentials&client_id=c&client_secret=secret", "")
	f.Add("grant_type=refresh_token&refresh_token=abc", "Basic YzpzZWNyZXQ=")
	f.Add("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=a.b.c", "")
	f.Add("grant_type=client_credentials&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=e30.e30.sig", "")
	f.Add("grant_type=authorization_code&code=x&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&code_verifier=v&client_id=p", "")
	f.Add("scope=%20%20&grant_type=password&username=u&password=p", "Basic %%%")
	f.Add("%zz", "Bearer x")
	f.Fuzz(func(t *testing.T, body, auth string) {
		s := newState() // no listener: the handler is called directly
		s.URL = "http://127.0.0.1:1"
		if err := s.RegisterClient(Client{ID: "c", Secret: "secret", AuthMethod: AuthClientSecretBasic}); err != nil {
			t.Fatal(err)
		}
		if err := s.RegisterClient(Client{ID: "p", AuthMethod: AuthNone, RedirectURIs: []string{"http://127.0.0.1/cb"}}); err != nil {
			t.Fatal(err)
		}
		h := s.routes()
		req := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusUnauthorized:
		default:
			t.Fatalf("status %d", rec.Code)
		}
		var v map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
			t.Fatalf("answer is not JSON: %v", err)
		}
		if rec.Code != http.StatusOK && v["error"] == nil {
			t.Fatal("error answer without error code")
		}
	})
}

// FuzzScopeAllowsPatient checks the SMART scope matcher against a few
// invariants on arbitrary scope strings.
func FuzzScopeAllowsPatient(f *testing.F) {
	for _, s := range []string{"system/Patient.rs", "patient/*.read", "user/Patient.cruds?x=y", "system/Patient.sr", "a/b.c", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		scopes, oerr := splitScope(raw)
		if oerr != nil {
			return
		}
		for _, sc := range scopes {
			if !validScopeToken(sc) {
				t.Fatalf("splitScope returned an invalid token")
			}
			ok := scopeAllowsPatient([]string{sc}, 's')
			if ok && !strings.Contains(sc, "Patient.") && !strings.Contains(sc, "*.") {
				t.Fatalf("scope %q allows Patient search", sc)
			}
		}
		if len(scopes) == 0 && !scopeAllowsPatient(scopes, 'r') {
			t.Fatal("no scope must allow")
		}
	})
}
