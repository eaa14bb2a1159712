package tokenendpoint

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// testSecret returns a fresh random credential with characters that change
// under URL and JSON escaping.
func testSecret(t *testing.T, prefix string) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return prefix + hex.EncodeToString(b) + `/+"<é&=`
}

// leaks reports whether out holds any 12-byte window of secret (the whole
// secret when it is shorter), so a truncated echo counts as a leak too.
func leaks(out, secret string) bool {
	const w = 12
	if len(secret) <= w {
		return strings.Contains(out, secret)
	}
	for i := 0; i+w <= len(secret); i++ {
		if strings.Contains(out, secret[i:i+w]) {
			return true
		}
	}
	return false
}

// jsonEscaped is s as it appears inside a JSON string literal.
func jsonEscaped(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

// echoed names every credential an echoing server can see in a request and
// how it finds it there.
var echoed = []struct {
	name string
	get  func(r *http.Request) string
}{
	{"client_secret", formValue("client_secret")},
	{"client_assertion", formValue("client_assertion")},
	{"assertion", formValue("assertion")},
	{"refresh_token", formValue("refresh_token")},
	{"subject_token", formValue("subject_token")},
	{"actor_token", formValue("actor_token")},
	{"password", formValue("password")},
	{"code", formValue("code")},
	{"code_verifier", formValue("code_verifier")},
	{"device_code", formValue("device_code")},
	{"token", formValue("token")},
	{"authorization header", func(r *http.Request) string { return r.Header.Get("Authorization") }},
	{"basic blob", func(r *http.Request) string { return strings.TrimPrefix(r.Header.Get("Authorization"), "Basic ") }},
	{"basic user, encoded", func(r *http.Request) string { u, _ := basicParts(r); return u }},
	{"basic password, encoded", func(r *http.Request) string { _, p := basicParts(r); return p }},
	{"basic user", func(r *http.Request) string { u, _ := basicParts(r); u, _ = url.QueryUnescape(u); return u }},
	{"basic password", func(r *http.Request) string { _, p := basicParts(r); p, _ = url.QueryUnescape(p); return p }},
	{"dpop proof", func(r *http.Request) string { return r.Header.Get("DPoP") }},
}

func formValue(name string) func(*http.Request) string {
	return func(r *http.Request) string { return r.PostForm.Get(name) }
}

func basicParts(r *http.Request) (user, pass string) {
	raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(r.Header.Get("Authorization"), "Basic "))
	user, pass, _ = strings.Cut(string(raw), ":")
	return user, pass
}

// echoPlaces are the places of a response an echoed credential is put in.
var echoPlaces = []struct {
	name  string
	write func(w http.ResponseWriter, v string)
}{
	{"error_description", func(w http.ResponseWriter, v string) {
		writeJSONError(w, map[string]string{"error": "invalid_grant", "error_description": "The credential " + v + " was rejected."})
	}},
	{"error_description, long prefix", func(w http.ResponseWriter, v string) {
		writeJSONError(w, map[string]string{"error": "invalid_grant", "error_description": strings.Repeat("generic text ", 78) + v})
	}},
	{"error_description, JSON-escaped", func(w http.ResponseWriter, v string) {
		writeJSONError(w, map[string]string{"error": "invalid_grant", "error_description": `{"rejected":"` + jsonEscaped(v) + `"}`})
	}},
	{"error_description, URL-encoded", func(w http.ResponseWriter, v string) {
		writeJSONError(w, map[string]string{"error": "invalid_grant", "error_description": "rejected=" + url.QueryEscape(v)})
	}},
	{"error", func(w http.ResponseWriter, v string) {
		writeJSONError(w, map[string]string{"error": v})
	}},
	{"error_uri", func(w http.ResponseWriter, v string) {
		writeJSONError(w, map[string]string{"error": "invalid_client", "error_uri": "https://errors.example/?rejected=" + url.QueryEscape(v) + "&raw=" + v})
	}},
	{"unsupported token_type", func(w http.ResponseWriter, v string) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"access_token": "t", "token_type": v})
	}},
	{"duplicate member name", func(w http.ResponseWriter, v string) {
		w.Header().Set("Content-Type", "application/json")
		k := jsonEscaped(v)
		fmt.Fprintf(w, `{"%s":1,"%s":2}`, k, k)
	}},
	{"HTML 500 body", func(w http.ResponseWriter, v string) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(500)
		fmt.Fprintf(w, "<html><body><h1>Internal error</h1><pre>%s</pre></body></html>", v)
	}},
	{"HTML 400 body", func(w http.ResponseWriter, v string) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(400)
		fmt.Fprintf(w, "<html><body>bad request: %s</body></html>", v)
	}},
}

func writeJSONError(w http.ResponseWriter, m map[string]string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(400)
	json.NewEncoder(w).Encode(m)
}

// renderings are the ways an error reaches a person: its text, fmt verbs
// and structured logs.
func renderings(err error) map[string]string {
	var jsonLog, textLog bytes.Buffer
	for _, h := range []slog.Handler{slog.NewJSONHandler(&jsonLog, nil), slog.NewTextHandler(&textLog, nil)} {
		l := slog.New(h)
		l.Warn("token request failed", "err", err)
		l.Warn("token request failed", slog.Any("error", err))
		var e *Error
		if errors.As(err, &e) {
			l.Warn("token request failed", "code", e.ErrorCode, "description", e.ErrorDescription, "uri", e.ErrorURI, "cause", e.Err)
		}
	}
	return map[string]string{
		"Error()": err.Error(), "%v": fmt.Sprintf("%v", err), "%+v": fmt.Sprintf("%+v", err),
		"%#v": fmt.Sprintf("%#v", err), "%s": fmt.Sprintf("%s", err), "%q": fmt.Sprintf("%q", err),
		"slog JSON": jsonLog.String(), "slog text": textLog.String(),
	}
}

func TestDoRedactsEchoedCredentials(t *testing.T) {
	clientID := testSecret(t, "client:")
	clientSecret := testSecret(t, "cs-")
	form := url.Values{"grant_type": {"refresh_token"}, "scope": {"system/Patient.rs"}}
	for _, name := range []string{"client_assertion", "assertion", "refresh_token", "subject_token", "actor_token",
		"password", "code", "code_verifier", "device_code", "token"} {
		form.Set(name, testSecret(t, name+"-"))
	}
	form.Set("client_secret", clientSecret)
	basic := base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(clientID) + ":" + url.QueryEscape(clientSecret)))
	header := http.Header{"Authorization": {"Basic " + basic}, "Dpop": {testSecret(t, "eyJ")}}

	var echo func(*http.Request) string
	var place func(http.ResponseWriter, string)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			t.Errorf("server: parse form: %v", err)
		}
		place(w, echo(r))
	}))
	defer srv.Close()

	for _, cred := range echoed {
		for _, pl := range echoPlaces {
			t.Run(cred.name+" in "+pl.name, func(t *testing.T) {
				var secret string
				echo = func(r *http.Request) string { secret = cred.get(r); return secret }
				place = pl.write
				_, err := Do(t.Context(), srv.Client(), &Request{URL: srv.URL, Form: form, Header: header}, time.Now)
				if err == nil {
					t.Fatal("Do succeeded; want an error")
				}
				if secret == "" {
					t.Fatal("the server saw no such credential")
				}
				for how, out := range renderings(err) {
					if leaks(out, secret) {
						t.Errorf("the echoed %s shows in %s of the error", cred.name, how)
					}
				}
			})
		}
	}
}

func TestParseKeepsLongErrorDescription(t *testing.T) {
	const reason = "The refresh token was already used."
	desc := "The provided authorization grant (e.g., authorization code, resource owner credentials) or refresh token " +
		"is invalid, expired, revoked, does not match the redirection URI used in the authorization request, " +
		"or was issued to another client. " + reason
	body, _ := json.Marshal(map[string]string{"error": "invalid_grant", "error_description": desc})
	_, err := Parse(400, "application/json", body)
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not *Error", err)
	}
	if e.ErrorDescription != desc {
		t.Errorf("ErrorDescription lost its end: %d of %d bytes kept", len(e.ErrorDescription), len(desc))
	}
	if !strings.Contains(err.Error(), reason) {
		t.Errorf("error text %q does not give the reason", err)
	}
}

func TestParseCutsLongErrorDescription(t *testing.T) {
	for _, tt := range []struct {
		name string
		desc string
	}{
		{"ASCII", strings.Repeat("a", 5000)},
		{"two-byte runes", "x" + strings.Repeat("é", 2000)},
		{"three-byte runes", strings.Repeat("€", 1000)},
		{"four-byte runes", "ab" + strings.Repeat("𝄞", 600)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			body, _ := json.Marshal(map[string]string{"error": "invalid_request", "error_description": tt.desc})
			_, err := Parse(400, "application/json", body)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not *Error", err)
			}
			d := strings.TrimSuffix(e.ErrorDescription, "…")
			if len(d) > 1024 || len(d) < 1020 {
				t.Errorf("kept %d bytes, want 1021–1024", len(d))
			}
			if !utf8.ValidString(d) || strings.ContainsRune(d, utf8.RuneError) {
				t.Error("description was cut inside a rune")
			}
			if !strings.HasPrefix(tt.desc, d) {
				t.Error("kept text is not a prefix of the description")
			}
			if !strings.HasSuffix(e.ErrorDescription, "…") {
				t.Error("a cut description does not end with an ellipsis")
			}
		})
	}
}

func TestParseSanitizesErrorMembers(t *testing.T) {
	body, _ := json.Marshal(map[string]string{"error": "invalid\x1b[31m_grant", "error_description": "line1\nline2\r\x00\x7fend", "error_uri": "https://e/\tx"})
	_, err := Parse(400, "application/json", body)
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not *Error", err)
	}
	for _, s := range []string{e.ErrorCode, e.ErrorDescription, e.ErrorURI, err.Error()} {
		if strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
			t.Errorf("control character kept in %q", s)
		}
	}
	if e.ErrorDescription != "line1 line2   end" {
		t.Errorf("ErrorDescription = %q", e.ErrorDescription)
	}
}

func TestRequestSecrets(t *testing.T) {
	basic := base64.StdEncoding.EncodeToString([]byte("my%3Aclient:s%2Bcr+t"))
	r := &Request{
		Form: url.Values{
			"grant_type": {"refresh_token"}, "client_id": {"public-id"}, "scope": {"openid"},
			"refresh_token": {"rt-1"}, "client_secret": {"cs-1"}, "code": {""}, "token": {"rt-1"},
		},
		Header: http.Header{"Authorization": {"Basic " + basic}, "Dpop": {"proof-1"}, "Accept": {"application/json"}},
	}
	got := r.Secrets()
	want := []string{"cs-1", "rt-1", "proof-1", "Basic " + basic, basic, "my%3Aclient:s%2Bcr+t",
		"my%3Aclient", "my:client", "s%2Bcr+t", "s+cr t", "s+cr+t"}
	for i, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("secret #%d missing", i)
		}
	}
	for i, s := range got {
		if s == "" || s == "public-id" || s == "openid" || s == "refresh_token" || s == "application/json" {
			t.Errorf("secret #%d is not a credential", i)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d secrets, want %d", len(got), len(want))
	}
}

func TestRequestSecretsOfBearerAuthorization(t *testing.T) {
	r := &Request{Header: http.Header{"authorization": {"DPoP at-1"}}}
	got := r.Secrets()
	if !slices.Equal(got, []string{"DPoP at-1", "at-1"}) {
		t.Errorf("got %d secrets, want the header value and its credential", len(got))
	}
}

func TestRequestRedact(t *testing.T) {
	r := &Request{Form: url.Values{"client_secret": {"ab"}, "code": {"b"}, "password": {""}, "code_verifier": {"x y/z"}}}
	tests := []struct{ in, want string }{
		{"", ""},
		{"nothing here", "nothing here"},
		{"xabx", "x" + Redacted + "x"},
		{"abab", Redacted},
		{"b", Redacted},
		{"cab", "c" + Redacted},
		{"v=x+y%2Fz;", "v=" + Redacted + ";"},
		{"v=x%20y%2Fz;", "v=" + Redacted + ";"},
		{"x y/z", Redacted},
		{"x y\\/z", Redacted},
	}
	for i, tt := range tests {
		if got := r.Redact(tt.in); got != tt.want {
			t.Errorf("case %d: redacted text differs from the expected one", i)
		}
	}
	if got := (&Request{}).Redact("no secrets"); got != "no secrets" {
		t.Error("a request without credentials changed the text")
	}
}

func TestRegisteredErrorCodeSurvivesShortSecret(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSONError(w, map[string]string{"error": "invalid_grant", "error_description": "grant a rejected"})
	}))
	defer srv.Close()
	form := url.Values{"grant_type": {"authorization_code"}, "code": {"a"}}
	_, err := Do(t.Context(), srv.Client(), &Request{URL: srv.URL, Form: form}, time.Now)
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not *Error", err)
	}
	if e.ErrorCode != "invalid_grant" {
		t.Errorf("ErrorCode = %q, want invalid_grant", e.ErrorCode)
	}
	if strings.Contains(e.ErrorDescription, "a") {
		t.Error("the short credential is left in the description")
	}
}

func TestPostRedactsNetworkErrors(t *testing.T) {
	secret := testSecret(t, "cs-")
	// A server that answers with a broken status line echoing the secret;
	// net/http quotes the line in its error.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		defer conn.Close()
		buf.WriteString(r.PostForm.Get("client_secret") + "\r\n\r\n")
		buf.Flush()
	}))
	defer srv.Close()
	form := url.Values{"grant_type": {"client_credentials"}, "client_secret": {secret}}
	_, err := Post(t.Context(), srv.Client(), &Request{URL: srv.URL + "/token?subscription-key=k1", Form: form})
	if err == nil {
		t.Fatal("Post succeeded; want an error")
	}
	for how, out := range renderings(err) {
		if leaks(out, secret) {
			t.Errorf("the echoed secret shows in %s of the error", how)
		}
		if strings.Contains(out, "k1") {
			t.Errorf("the URL query shows in %s of the error", how)
		}
	}
	var e *Error
	if !errors.As(err, &e) || !e.Temporary() {
		t.Errorf("a broken response is not a temporary *Error: %v", err)
	}
	// Nor does any error reachable by unwrapping (a caller taking the
	// *url.Error out to check Timeout and logging it).
	for inner := errors.Unwrap(err); inner != nil; inner = errors.Unwrap(inner) {
		if leaks(inner.Error(), secret) {
			t.Errorf("the echoed secret shows in a wrapped %T", inner)
		}
	}
	var ue *url.Error
	if errors.As(err, &ue) && leaks(ue.Error(), secret) {
		t.Error("the echoed secret shows in the *url.Error errors.As finds")
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"https://as.example.org/token", "https://as.example.org/token"},
		{"https://u:p@as.example.org/token?key=k#frag", "https://as.example.org/token?REDACTED"},
		{"https://as.example.org/token?", "https://as.example.org/token?REDACTED"},
		{"https://as.example.org/%zz", "(unparsable URL)"},
	}
	for i, tt := range tests {
		if got := RedactURL(tt.in); got != tt.want {
			t.Errorf("RedactURL of case %d differs from the expected one", i)
		}
	}
}
