package tokenendpoint

import (
	"errors"
	"strings"
	"testing"
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
			if msg := err.Error(); len(msg) > 1024 {
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
