package tokenendpoint

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// Redacted replaces a credential in text kept from a response.
const Redacted = "[REDACTED]"

// credentialParams are the form parameters whose values are credentials:
// client authentication, grants (RFC 6749, 7523, 8628, 8693, PKCE) and the
// token of a revocation request (RFC 7009).
var credentialParams = []string{
	"client_secret", "client_assertion", "assertion", "refresh_token",
	"subject_token", "actor_token", "password", "code", "code_verifier",
	"device_code", "token",
}

// credentialHeaders are the request headers whose values are credentials.
var credentialHeaders = []string{"Authorization", "Proxy-Authorization", "Dpop"}

// Secrets returns every credential r sends, each once, empty values left
// out: the values of the form parameters client_secret, client_assertion,
// assertion, refresh_token, subject_token, actor_token, password, code,
// code_verifier, device_code and token; the values of the Authorization,
// Proxy-Authorization and DPoP headers and their part after the scheme;
// and for Basic authorization the decoded "user:password", the user and
// the password, each as sent and URL-decoded. The result holds secrets:
// never log or print it.
func (r *Request) Secrets() []string {
	var out []string
	add := func(s string) {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	for _, k := range credentialParams {
		for _, v := range r.Form[k] {
			add(v)
		}
	}
	keys := make([]string, 0, len(r.Header))
	for k := range r.Header {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !slices.Contains(credentialHeaders, http.CanonicalHeaderKey(k)) {
			continue
		}
		for _, v := range r.Header[k] {
			add(v)
			scheme, cred, _ := strings.Cut(strings.TrimSpace(v), " ")
			cred = strings.TrimSpace(cred)
			add(cred)
			if !strings.EqualFold(scheme, "Basic") {
				continue
			}
			raw, err := base64.StdEncoding.DecodeString(cred)
			if err != nil {
				continue
			}
			add(string(raw))
			user, pass, _ := strings.Cut(string(raw), ":")
			for _, p := range []string{user, pass} {
				add(p)
				if q, err := url.QueryUnescape(p); err == nil {
					add(q)
				}
				if q, err := url.PathUnescape(p); err == nil {
					add(q)
				}
			}
		}
	}
	return out
}

// Redact returns text with every credential r sends (see Secrets), and
// their URL-encoded and JSON-escaped forms, replaced by Redacted.
func (r *Request) Redact(text string) string {
	return newRedactor(r.Secrets()).redact(text)
}

// redactor removes a request's credentials from text. A nil *redactor
// removes nothing.
type redactor struct {
	forms []string // every secret in every form it may be echoed in
}

// newRedactor prepares secrets for redaction; it returns nil when there
// are none.
func newRedactor(secrets []string) *redactor {
	var forms []string
	for _, s := range secrets {
		j := jsonEscape(s, false)
		// Some JSON encoders also escape "/" as "\/".
		for _, f := range []string{s, url.QueryEscape(s), url.PathEscape(s), j, jsonEscape(s, true), strings.ReplaceAll(j, "/", `\/`)} {
			if f != "" && !slices.Contains(forms, f) {
				forms = append(forms, f)
			}
		}
	}
	if len(forms) == 0 {
		return nil
	}
	return &redactor{forms: forms}
}

// jsonEscape returns s as it appears inside a JSON string.
func jsonEscape(s string, escapeHTML bool) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(escapeHTML)
	if enc.Encode(s) != nil {
		return s
	}
	out := strings.TrimSuffix(b.String(), "\n")
	return out[1 : len(out)-1]
}

// redact replaces every occurrence of a secret in s by Redacted; runs of
// overlapping or adjacent occurrences become one Redacted.
func (rd *redactor) redact(s string) string {
	if rd == nil || s == "" {
		return s
	}
	var mask []bool
	for _, f := range rd.forms {
		for i := 0; i+len(f) <= len(s); {
			j := strings.Index(s[i:], f)
			if j < 0 {
				break
			}
			if mask == nil {
				mask = make([]bool, len(s))
			}
			start := i + j
			for k := start; k < start+len(f); k++ {
				mask[k] = true
			}
			i = start + len(f)
		}
	}
	if mask == nil {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case !mask[i]:
			b.WriteByte(s[i])
		case i == 0 || !mask[i-1]:
			b.WriteString(Redacted)
		}
	}
	return b.String()
}

// clean makes server-provided text fit to keep in an error: credentials
// removed, control characters replaced, cut to at most max bytes. It
// redacts before sanitizing (a credential holding a control character)
// and after (text that became a credential once sanitized), and before
// cutting, so a cut never leaves the start of a credential.
func (rd *redactor) clean(s string, max int) string {
	return clip(rd.redact(sanitize(rd.redact(s))), max)
}

// redactedError is an error whose text had credentials removed. It does
// not unwrap: every error in the original chain still holds them, and a
// caller could take one out with errors.As and log it. errors.Is still
// matches sentinels of the original chain (context.DeadlineExceeded,
// io.ErrUnexpectedEOF, …), which hold no credentials.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string        { return e.msg }
func (e *redactedError) Is(target error) bool { return errors.Is(e.err, target) }

// wrap returns err, or an error whose text holds none of the credentials
// and that matches err's sentinels with errors.Is.
func (rd *redactor) wrap(err error) error {
	if rd == nil || err == nil {
		return err
	}
	msg := err.Error()
	if red := rd.redact(msg); red != msg {
		return &redactedError{msg: red, err: err}
	}
	return err
}

// RedactURL returns raw with user information and fragment removed and a
// query replaced by "REDACTED": queries carry gateway keys and other
// secrets. The result is safe to log. A URL that does not parse becomes a
// placeholder.
func RedactURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	if u.RawQuery != "" || u.ForceQuery {
		u.RawQuery, u.ForceQuery = "REDACTED", false
	}
	u.Fragment, u.RawFragment, u.User = "", "", nil
	return u.String()
}

// RedactURLError returns err with the URL of a *url.Error (as returned by
// http.Client.Do) passed through RedactURL; other errors are returned as
// they are.
func RedactURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		c := *ue
		c.URL = RedactURL(ue.URL)
		return &c
	}
	return err
}
