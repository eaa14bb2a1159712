package tokenendpoint

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	const js = "application/json"
	tests := []struct {
		name      string
		status    int
		ctype     string
		body      string
		wantErr   error  // errors.Is target, nil for success
		wantCode  string // OAuth error code
		wantExp   int64
		wantHasEx bool
		check     func(t *testing.T, tok *Token)
	}{
		{name: "json", status: 200, ctype: js, body: `{"access_token":"a","token_type":"Bearer","expires_in":3600}`, wantExp: 3600, wantHasEx: true},
		{name: "lowercase bearer", status: 200, ctype: js, body: `{"access_token":"a","token_type":"bearer","expires_in":60}`, wantExp: 60, wantHasEx: true},
		{name: "expires_in string", status: 200, ctype: js, body: `{"access_token":"a","token_type":"Bearer","expires_in":"300"}`, wantExp: 300, wantHasEx: true},
		{name: "expires_in float truncated", status: 200, ctype: js, body: `{"access_token":"a","token_type":"Bearer","expires_in":299.9}`, wantExp: 299, wantHasEx: true},
		{name: "expires_in missing", status: 200, ctype: js, body: `{"access_token":"a","token_type":"Bearer"}`},
		{name: "expires_in null", status: 200, ctype: js, body: `{"access_token":"a","token_type":"Bearer","expires_in":null}`},
		{name: "expires_in zero is unknown", status: 200, ctype: js, body: `{"access_token":"a","token_type":"Bearer","expires_in":0}`},
		{name: "expires_in negative", status: 200, ctype: js, body: `{"access_token":"a","token_type":"Bearer","expires_in":-5}`, wantErr: ErrMalformed},
		{name: "expires_in huge", status: 200, ctype: js, body: `{"access_token":"a","token_type":"Bearer","expires_in":1e300}`, wantErr: ErrMalformed},
		{name: "expires_in word", status: 200, ctype: js, body: `{"access_token":"a","token_type":"Bearer","expires_in":"soon"}`, wantErr: ErrMalformed},
		{name: "expires_in bool", status: 200, ctype: js, body: `{"access_token":"a","token_type":"Bearer","expires_in":true}`, wantErr: ErrMalformed},
		{name: "missing access_token", status: 200, ctype: js, body: `{"token_type":"Bearer"}`, wantErr: ErrMalformed},
		{name: "empty access_token", status: 200, ctype: js, body: `{"access_token":"","token_type":"Bearer"}`, wantErr: ErrMalformed},
		{name: "access_token number", status: 200, ctype: js, body: `{"access_token":5,"token_type":"Bearer"}`, wantErr: ErrMalformed},
		{name: "missing token_type", status: 200, ctype: js, body: `{"access_token":"a"}`, wantErr: ErrMalformed},
		{name: "mac token_type", status: 200, ctype: js, body: `{"access_token":"a","token_type":"mac"}`, wantErr: ErrUnsupportedTokenType},
		{name: "N_A with issued_token_type", status: 200, ctype: js, body: `{"access_token":"a","token_type":"N_A","issued_token_type":"urn:ietf:params:oauth:token-type:jwt"}`},
		{name: "N_A alone", status: 200, ctype: js, body: `{"access_token":"a","token_type":"N_A"}`, wantErr: ErrUnsupportedTokenType},
		{name: "duplicate member", status: 200, ctype: js, body: `{"access_token":"a","token_type":"Bearer","access_token":"b"}`, wantErr: ErrMalformed},
		{name: "truncated json", status: 200, ctype: js, body: `{"access_token":"a","token_ty`, wantErr: ErrMalformed},
		{name: "trailing garbage", status: 200, ctype: js, body: `{"access_token":"a","token_type":"Bearer"} {}`, wantErr: ErrMalformed},
		{name: "json array", status: 200, ctype: js, body: `[{"access_token":"a"}]`, wantErr: ErrMalformed},
		{name: "html 200", status: 200, ctype: "text/html", body: `<html>hello</html>`, wantErr: ErrMalformed},
		{name: "form encoded", status: 200, ctype: "application/x-www-form-urlencoded", body: `access_token=a&token_type=bearer&expires_in=60&scope=x+y`, wantExp: 60, wantHasEx: true,
			check: func(t *testing.T, tok *Token) {
				if tok.Scope != "x y" {
					t.Errorf("scope = %q", tok.Scope)
				}
			}},
		{name: "json without content type", status: 200, ctype: "", body: `{"access_token":"a","token_type":"Bearer"}`},
		{name: "unknown members kept", status: 200, ctype: js, body: `{"access_token":"a","token_type":"Bearer","patient":"123","need_patient_banner":true}`,
			check: func(t *testing.T, tok *Token) {
				if tok.Extra["patient"] != "123" || tok.Extra["need_patient_banner"] != true {
					t.Errorf("extra = %v", tok.Extra)
				}
				if _, ok := tok.Extra["access_token"]; ok {
					t.Error("known member in Extra")
				}
			}},
		{name: "refresh and scope", status: 200, ctype: js, body: `{"access_token":"a","token_type":"Bearer","refresh_token":"r","scope":"s"}`,
			check: func(t *testing.T, tok *Token) {
				if tok.RefreshToken != "r" || tok.Scope != "s" {
					t.Errorf("got %q %q", tok.RefreshToken, tok.Scope)
				}
			}},
		{name: "200 with error member", status: 200, ctype: js, body: `{"error":"invalid_grant","error_description":"nope"}`, wantCode: "invalid_grant"},
		{name: "400 invalid_client", status: 400, ctype: js, body: `{"error":"invalid_client","error_description":"bad secret","error_uri":"https://e/x"}`, wantCode: "invalid_client"},
		{name: "401 form error", status: 401, ctype: "application/x-www-form-urlencoded", body: `error=invalid_client`, wantCode: "invalid_client"},
		{name: "502 html page", status: 502, ctype: "text/html", body: `<html><body>Bad gateway</body></html>`, wantErr: ErrMalformed},
		{name: "500 empty", status: 500, ctype: "", body: ``, wantErr: ErrMalformed},
		{name: "too large", status: 200, ctype: js, body: `{"access_token":"` + strings.Repeat("a", MaxBodySize) + `","token_type":"Bearer"}`, wantErr: ErrBodyTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := Parse(tt.status, tt.ctype, []byte(tt.body))
			if tt.wantErr == nil && tt.wantCode == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if tok.ExpiresIn != tt.wantExp || tok.HasExpiresIn != tt.wantHasEx {
					t.Errorf("expires_in = %d/%v, want %d/%v", tok.ExpiresIn, tok.HasExpiresIn, tt.wantExp, tt.wantHasEx)
				}
				if tt.check != nil {
					tt.check(t, tok)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not *Error", err)
			}
			if e.StatusCode != tt.status {
				t.Errorf("StatusCode = %d, want %d", e.StatusCode, tt.status)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v is not %v", err, tt.wantErr)
			}
			if e.ErrorCode != tt.wantCode {
				t.Errorf("ErrorCode = %q, want %q", e.ErrorCode, tt.wantCode)
			}
			if len(err.Error()) > 600 {
				t.Errorf("error text is %d bytes long; must not carry the body", len(err.Error()))
			}
		})
	}
}

func TestTemporary(t *testing.T) {
	tests := []struct {
		e    *Error
		want bool
	}{
		{&Error{StatusCode: 503}, true},
		{&Error{StatusCode: 500}, true},
		{&Error{StatusCode: 429}, true},
		{&Error{StatusCode: 400, ErrorCode: "invalid_grant"}, false},
		{&Error{StatusCode: 401, ErrorCode: "invalid_client"}, false},
		{&Error{Err: errors.New("connection refused")}, true},
		{&Error{StatusCode: 200, Err: ErrMalformed}, false},
		{&Error{Err: ErrRedirect, StatusCode: 302}, false},
	}
	for _, tt := range tests {
		if got := tt.e.Temporary(); got != tt.want {
			t.Errorf("%v: Temporary() = %v, want %v", tt.e, got, tt.want)
		}
	}
}

func TestDoDoesNotFollowRedirectsAndLimitsBody(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("credentials followed a redirect to another host")
	}))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/redirect":
			http.Redirect(w, r, other.URL+"/token", http.StatusTemporaryRedirect)
		case "/huge":
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"access_token":"`))
			chunk := []byte(strings.Repeat("x", 64<<10))
			for i := 0; i < 160; i++ { // 10 MiB
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		case "/slow":
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(503)
		}
	}))
	defer srv.Close()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	_, err := Do(t.Context(), client, &Request{URL: srv.URL + "/redirect"}, time.Now)
	if !errors.Is(err, ErrRedirect) {
		t.Errorf("redirect: got %v", err)
	}
	_, err = Do(t.Context(), client, &Request{URL: srv.URL + "/huge"}, time.Now)
	if !errors.Is(err, ErrBodyTooLarge) {
		t.Errorf("huge: got %v", err)
	}
	_, err = Do(t.Context(), client, &Request{URL: srv.URL + "/slow"}, time.Now)
	var e *Error
	if !errors.As(err, &e) || e.RetryAfter != 7*time.Second || !e.Temporary() {
		t.Errorf("503: got %#v", err)
	}
}
