package tokenendpoint

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

func FuzzParse(f *testing.F) {
	f.Add(200, "application/json", []byte(`{"access_token":"a","token_type":"Bearer","expires_in":3600,"refresh_token":"r","scope":"system/Patient.rs"}`))
	f.Add(200, "application/json;charset=UTF-8", []byte(`{"access_token":"eyJ.x.y","token_type":"bearer","expires_in":"299","patient":"123"}`))
	f.Add(200, "application/x-www-form-urlencoded", []byte(`access_token=a&token_type=bearer&expires_in=60`))
	f.Add(400, "application/json", []byte(`{"error":"invalid_client","error_description":"Client authentication failed"}`))
	f.Add(502, "text/html", []byte(`<html><body><h1>502 Bad Gateway</h1></body></html>`))
	f.Add(200, "application/json", []byte(`{"access_token":"a","token_type":"Bearer","access_token":"b"}`))
	f.Add(200, "application/json", []byte(`{"access_token":"a","token_type":"N_A","issued_token_type":"urn:ietf:params:oauth:token-type:jwt"}`))
	f.Add(200, "", []byte(`{"access_token":`))
	f.Fuzz(func(t *testing.T, status int, ctype string, body []byte) {
		tok, err := Parse(status, ctype, body)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error is not *Error: %T", err)
			}
			if msg := err.Error(); len(msg) > 1536 {
				t.Fatalf("error text too long: %d", len(msg))
			}
			return
		}
		if status < 200 || status > 299 {
			t.Fatalf("status %d parsed as success", status)
		}
		if tok.AccessToken == "" || tok.TokenType == "" {
			t.Fatal("success without access_token or token_type")
		}
		if !strings.EqualFold(tok.TokenType, "bearer") && tok.IssuedTokenType == "" {
			t.Fatalf("unsupported token_type accepted")
		}
		if tok.ExpiresIn < 0 || tok.HasExpiresIn != (tok.ExpiresIn > 0) {
			t.Fatalf("bad expires_in %d/%v", tok.ExpiresIn, tok.HasExpiresIn)
		}
	})
}

func FuzzRetryAfter(f *testing.F) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).Unix()
	f.Add("120", now)
	f.Add("0", now)
	f.Add("99999999999999999999999999", now)
	f.Add("Fri, 31 Dec 9999 23:59:59 GMT", now)
	f.Add("Thu, 01 Jan 1970 00:00:00 GMT", now)
	f.Add("Friday, 02-Jan-26 03:05:05 GMT", now)
	f.Add("Fri Jan  2 03:06:05 2026", now)
	f.Add("Fri, 31 Dec 9999 23:59:59 GMT", int64(-1<<62))
	f.Add("-1", now)
	f.Add("soon", now)
	f.Fuzz(func(t *testing.T, v string, nowUnix int64) {
		h := http.Header{"Retry-After": {v}}
		d, ok := RetryAfter(h, time.Unix(nowUnix, 0))
		if d < 0 || d > maxRetryAfter {
			t.Fatalf("RetryAfter = %v, outside [0, 100 years]", d)
		}
		if !ok && d != 0 {
			t.Fatalf("RetryAfter = %v for an unusable value", d)
		}
		if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil && n >= 0 && n < 1<<32 && isDigits(strings.TrimSpace(v)) {
			if want := min(time.Duration(n)*time.Second, maxRetryAfter); !ok || d != want {
				t.Fatalf("RetryAfter(%d seconds) = %v, %v", n, d, ok)
			}
		}
	})
}

func FuzzRedact(f *testing.F) {
	f.Add("refresh token rt-123 rejected", "rt-123", "cs")
	f.Add("ababab", "abab", "b")
	f.Add("x%2By", "x+y", "")
	f.Add("a\\u003cb", "a<b", "a")
	f.Add(`\u00e9\/`, "é/", "/")
	f.Fuzz(func(t *testing.T, text, s1, s2 string) {
		r := &Request{Form: url.Values{"refresh_token": {s1}, "client_secret": {s2}}}
		out := r.Redact(text)
		for i, s := range []string{s1, s2} {
			// A secret with a bracket, or one inside the marker itself,
			// can be formed by the marker and its neighbours.
			if s == "" || strings.ContainsAny(s, "[]") || strings.Contains(Redacted, s) {
				continue
			}
			if strings.Contains(out, s) {
				t.Fatalf("secret #%d left in the redacted text", i)
			}
		}
		if s1 == "" && s2 == "" && out != text {
			t.Fatal("text changed without secrets")
		}
	})
}

func FuzzResponseParse(f *testing.F) {
	f.Add(400, "application/json", []byte(`{"error":"invalid_grant","error_description":"refresh token rt-1 was already used"}`), "rt-1")
	f.Add(400, "application/json", []byte(`{"error":"bad cs-2","error_uri":"https://e.example/?s=cs%2D2"}`), "cs-2")
	f.Add(200, "application/json", []byte(`{"access_token":"a","token_type":"cs-3"}`), "cs-3")
	f.Add(400, "application/json", []byte(`{"error":"x","error_description":"a\nb"}`), "a b")
	f.Fuzz(func(t *testing.T, status int, ctype string, body []byte, secret string) {
		resp := &Response{StatusCode: status, Header: http.Header{"Content-Type": {ctype}}, Body: body,
			red: newRedactor((&Request{Form: url.Values{"client_secret": {secret}}}).Secrets())}
		_, err := resp.Parse(time.Now())
		var e *Error
		if err == nil || !errors.As(err, &e) || secret == "" || strings.ContainsAny(secret, "[]…") || strings.Contains(Redacted, secret) {
			return
		}
		for i, s := range []string{e.ErrorDescription, e.ErrorURI} {
			if strings.Contains(s, secret) {
				t.Fatalf("secret left in member #%d", i)
			}
		}
		if !registeredErrorCodes[e.ErrorCode] && strings.Contains(e.ErrorCode, secret) {
			t.Fatal("secret left in the error code")
		}
	})
}
