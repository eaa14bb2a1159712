package tokenendpoint

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"mime"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// MaxBodySize is the most of a token-endpoint response body that is read.
const MaxBodySize = 1 << 20

// maxExpiresIn bounds expires_in (100 years) so expiry arithmetic cannot
// overflow.
const maxExpiresIn = 100 * 365 * 24 * 3600

// Token is a parsed successful token response (RFC 6749 §5.1).
type Token struct {
	AccessToken     string
	TokenType       string // as sent; checked to be Bearer or DPoP (any case), or N_A
	RefreshToken    string
	Scope           string
	IDToken         string
	IssuedTokenType string // RFC 8693
	// ExpiresIn is the lifetime in seconds; HasExpiresIn is false when the
	// member was absent, null or 0.
	ExpiresIn    int64
	HasExpiresIn bool
	// Extra holds the members not listed above.
	Extra map[string]any
}

var known = map[string]bool{
	"access_token": true, "token_type": true, "refresh_token": true, "scope": true,
	"id_token": true, "issued_token_type": true, "expires_in": true,
}

// Parse interprets a token-endpoint response. status is the HTTP status,
// contentType the Content-Type header. A non-2xx status, or a 2xx body with
// an "error" member, yields an *Error carrying the RFC 6749 §5.2 members.
// Everything else that is not a usable token yields an *Error wrapping
// ErrMalformed or ErrUnsupportedTokenType. Parse knows no request, so it
// cannot redact echoed credentials: use Response.Parse for an answer of
// Post.
func Parse(status int, contentType string, body []byte) (*Token, error) {
	return parse(status, contentType, body, nil)
}

// Parse interprets the response as Parse does, with every credential of
// the request that produced it (Request.Secrets) replaced by Redacted in
// all text the error keeps. On a 429 or 503 answer the error's RetryAfter
// is set from the Retry-After header (see RetryAfter), whose HTTP-date form
// is read against now.
func (resp *Response) Parse(now time.Time) (*Token, error) {
	tok, err := parse(resp.StatusCode, resp.Header.Get("Content-Type"), resp.Body, resp.red)
	if e, ok := err.(*Error); ok && (resp.StatusCode == 429 || resp.StatusCode == 503) {
		e.RetryAfter, _ = RetryAfter(resp.Header, now)
	}
	return tok, err
}

func parse(status int, contentType string, body []byte, rd *redactor) (*Token, error) {
	if len(body) > MaxBodySize {
		return nil, &Error{StatusCode: status, Err: ErrBodyTooLarge}
	}
	members, perr := decodeMembers(contentType, body, rd)
	if status < 200 || status > 299 {
		e := &Error{StatusCode: status}
		if perr == nil {
			fillError(e, members, rd)
		}
		if e.ErrorCode == "" {
			e.Err = fmt.Errorf("%w: HTTP %d with a non-OAuth body (%s)", ErrMalformed, status, describeType(contentType, rd))
		}
		return nil, e
	}
	if perr != nil {
		return nil, &Error{StatusCode: status, Err: perr}
	}
	if _, ok := members["error"]; ok {
		e := &Error{StatusCode: status}
		fillError(e, members, rd)
		if e.ErrorCode == "" {
			e.Err = fmt.Errorf("%w: non-string error member", ErrMalformed)
		}
		return nil, e
	}
	t, err := toToken(members, rd)
	if err != nil {
		return nil, &Error{StatusCode: status, Err: err}
	}
	return t, nil
}

func describeType(ct string, rd *redactor) string {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt == "" {
		return "no usable content type"
	}
	return rd.clean(mt, 64)
}

// decodeMembers decodes a JSON object (rejecting duplicate members) or a
// form-encoded body into a member map.
func decodeMembers(contentType string, body []byte, rd *redactor) (map[string]any, error) {
	mt, _, _ := mime.ParseMediaType(contentType)
	trimmed := bytes.TrimSpace(body)
	if mt == "application/x-www-form-urlencoded" || mt == "text/plain" && len(trimmed) > 0 && trimmed[0] != '{' {
		vals, err := url.ParseQuery(string(trimmed))
		if err != nil {
			return nil, fmt.Errorf("%w: bad form encoding", ErrMalformed)
		}
		m := make(map[string]any, len(vals))
		for k, v := range vals {
			if len(v) != 1 {
				return nil, fmt.Errorf("%w: member %q repeated", ErrMalformed, rd.clean(k, 64))
			}
			m[k] = v[0]
		}
		return m, nil
	}
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, fmt.Errorf("%w: body is not a JSON object (%s)", ErrMalformed, describeType(contentType, rd))
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.UseNumber()
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("%w: invalid JSON", ErrMalformed)
	}
	m := make(map[string]any)
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%w: invalid JSON", ErrMalformed)
		}
		k, _ := kt.(string)
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("%w: invalid JSON", ErrMalformed)
		}
		if _, dup := m[k]; dup {
			return nil, fmt.Errorf("%w: member %q appears twice", ErrMalformed, rd.clean(k, 64))
		}
		m[k] = v
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("%w: invalid JSON", ErrMalformed)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after JSON object", ErrMalformed)
	}
	if _, err := dec.Token(); err == nil {
		return nil, fmt.Errorf("%w: trailing data after JSON object", ErrMalformed)
	}
	return m, nil
}

// fillError copies the RFC 6749 §5.2 members into e, cleaned by rd. A
// registered error code is kept as it is, so that callers can branch on
// it even when a short credential happens to occur in it.
func fillError(e *Error, m map[string]any, rd *redactor) {
	code, _ := m["error"].(string)
	desc, _ := m["error_description"].(string)
	uri, _ := m["error_uri"].(string)
	if registeredErrorCodes[code] {
		e.ErrorCode = code
	} else {
		e.ErrorCode = rd.clean(code, maxErrorCode)
	}
	e.ErrorDescription = rd.clean(desc, maxErrorDescription)
	e.ErrorURI = rd.clean(uri, maxErrorURI)
}

// RegisteredErrorCode reports whether code is one of registeredErrorCodes:
// safe to keep as sent, since it cannot hold a credential.
func RegisteredErrorCode(code string) bool { return registeredErrorCodes[code] }

// registeredErrorCodes are the token-endpoint error codes of RFC 6749
// §5.2, RFC 7009, RFC 8628, RFC 8693, RFC 8707 and RFC 9449 (and the
// authorization-endpoint codes some servers also send).
var registeredErrorCodes = map[string]bool{
	"invalid_request": true, "invalid_client": true, "invalid_grant": true, "unauthorized_client": true,
	"unsupported_grant_type": true, "invalid_scope": true, "unsupported_token_type": true,
	"authorization_pending": true, "slow_down": true, "access_denied": true, "expired_token": true,
	"invalid_target": true, "invalid_dpop_proof": true, "use_dpop_nonce": true,
	"server_error": true, "temporarily_unavailable": true, "invalid_token": true, "insufficient_scope": true,
}

func stringMember(m map[string]any, name string) (string, error) {
	v, ok := m[name]
	if !ok || v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%w: %s is not a string", ErrMalformed, name)
	}
	return s, nil
}

func toToken(m map[string]any, rd *redactor) (*Token, error) {
	t := &Token{}
	var err error
	for _, f := range []struct {
		name string
		dst  *string
	}{
		{"access_token", &t.AccessToken}, {"token_type", &t.TokenType}, {"refresh_token", &t.RefreshToken},
		{"scope", &t.Scope}, {"id_token", &t.IDToken}, {"issued_token_type", &t.IssuedTokenType},
	} {
		if *f.dst, err = stringMember(m, f.name); err != nil {
			return nil, err
		}
	}
	if t.AccessToken == "" {
		return nil, fmt.Errorf("%w: access_token missing or empty", ErrMalformed)
	}
	if t.TokenType == "" {
		return nil, fmt.Errorf("%w: token_type missing or empty", ErrMalformed)
	}
	if !strings.EqualFold(t.TokenType, "bearer") && !strings.EqualFold(t.TokenType, "DPoP") && !(t.IssuedTokenType != "" && strings.EqualFold(t.TokenType, "N_A")) {
		return nil, fmt.Errorf("%w %q (only Bearer and DPoP are supported)", ErrUnsupportedTokenType, rd.clean(t.TokenType, 32))
	}
	if t.ExpiresIn, t.HasExpiresIn, err = expiresIn(m["expires_in"]); err != nil {
		return nil, err
	}
	for k, v := range m {
		if !known[k] {
			if t.Extra == nil {
				t.Extra = make(map[string]any)
			}
			t.Extra[k] = v
		}
	}
	return t, nil
}

// expiresIn accepts a JSON number or a decimal string; fractions are
// truncated; 0 or absent means unknown; negative, non-finite or absurdly
// large values are errors.
func expiresIn(v any) (int64, bool, error) {
	var f float64
	switch x := v.(type) {
	case nil:
		return 0, false, nil
	case json.Number:
		var err error
		if f, err = strconv.ParseFloat(string(x), 64); err != nil {
			return 0, false, fmt.Errorf("%w: expires_in is not a number", ErrMalformed)
		}
	case string:
		var err error
		if f, err = strconv.ParseFloat(strings.TrimSpace(x), 64); err != nil {
			return 0, false, fmt.Errorf("%w: expires_in is not a number", ErrMalformed)
		}
	default:
		return 0, false, fmt.Errorf("%w: expires_in is not a number", ErrMalformed)
	}
	switch {
	case math.IsNaN(f) || math.IsInf(f, 0):
		return 0, false, fmt.Errorf("%w: expires_in is not finite", ErrMalformed)
	case f < 0:
		return 0, false, fmt.Errorf("%w: expires_in is negative", ErrMalformed)
	case f > maxExpiresIn:
		return 0, false, fmt.Errorf("%w: expires_in is larger than 100 years", ErrMalformed)
	case f < 1:
		return 0, false, nil
	}
	return int64(f), true, nil
}
