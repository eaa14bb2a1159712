package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/oauthkit/oauthkit/internal/testenv"
	"github.com/oauthkit/oauthkit/oauthtest"
)

// oauthkitStdin is oauthkit with stdin. It never logs the output.
func oauthkitStdin(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	return runOauthkit(t, nil, stdin, args...)
}

// tokenJSON is the output of token -o json.
type tokenJSON struct {
	AccessToken string  `json:"access_token"`
	TokenType   string  `json:"token_type"`
	ExpiresAt   *string `json:"expires_at"`
	Scope       string  `json:"scope"`
	FromCache   bool    `json:"from_cache"`
}

func decodeTokenJSON(t *testing.T, out string) tokenJSON {
	t.Helper()
	var tj tokenJSON
	if err := json.Unmarshal([]byte(out), &tj); err != nil {
		t.Fatalf("token -o json output (%d bytes) is not JSON", len(out))
	}
	return tj
}

func TestTokenOutputFormats(t *testing.T) {
	srv, flags := keyClient(t, "k1")
	cache := "file:" + filepath.Join(t.TempDir(), "tokens")
	args := cmdArgs("token", flags, "-scope", patientScope, "-cache", cache, "-o", "json")
	first := oauthkit(t, nil, args...)
	wantCode(t, first, 0, false)
	a := decodeTokenJSON(t, first.stdout)
	if a.AccessToken == "" || a.TokenType != "Bearer" || a.ExpiresAt == nil || a.FromCache || a.Scope != patientScope {
		t.Fatalf("first run: token %v, type %q, expires_at %v, from_cache %v, scope %q", a.AccessToken != "", a.TokenType, a.ExpiresAt != nil, a.FromCache, a.Scope)
	}
	exp, err := time.Parse(time.RFC3339, *a.ExpiresAt)
	if err != nil || !exp.After(time.Now()) {
		t.Errorf("expires_at %q is not a future RFC 3339 time", *a.ExpiresAt)
	}
	second := oauthkit(t, nil, args...)
	wantCode(t, second, 0, false)
	b := decodeTokenJSON(t, second.stdout)
	if !b.FromCache || b.AccessToken != a.AccessToken || *b.ExpiresAt != *a.ExpiresAt {
		t.Errorf("second run: from_cache %v, same token %v, same expiry %v; want all true", b.FromCache, b.AccessToken == a.AccessToken, *b.ExpiresAt == *a.ExpiresAt)
	}
	h := oauthkit(t, nil, cmdArgs("token", flags, "-scope", patientScope, "-cache", cache, "-o", "header")...)
	wantCode(t, h, 0, false)
	if h.stdout != "Authorization: Bearer "+a.AccessToken+"\n" {
		t.Error("-o header is not the Authorization line of the cached token")
	}
	bare := oauthkit(t, nil, cmdArgs("token", flags, "-scope", patientScope, "-cache", cache)...)
	if bare.stdout != a.AccessToken+"\n" {
		t.Error("default output is not the bare token")
	}
	if n := srv.Stats().TokenRequests; n != 1 {
		t.Errorf("%d token requests, want 1", n)
	}
	noLeak(t, "stderr", first.stderr+second.stderr+h.stderr+bare.stderr, a.AccessToken)
	r := oauthkit(t, nil, cmdArgs("token", flags, "-o", "yaml")...)
	wantCode(t, r, 2, true)
}

// testJWT is an unsigned JWT-shaped token for info.
func testJWT(claims map[string]any) string {
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(map[string]any{"alg": "RS256", "typ": "at+jwt", "kid": "as-1"}) + "." + enc(claims) + ".c2lnbmF0dXJl"
}

func TestInfo(t *testing.T) {
	exp := time.Now().Add(time.Hour).Unix()
	tok := testJWT(map[string]any{"iss": "https://as.example", "sub": "svc", "client_id": "svc", "scope": "system/Patient.rs", "exp": exp})
	r := oauthkitStdin(t, tok+"\n", "info", "-")
	wantCode(t, r, 0, true)
	noLeak(t, "stdout", r.stdout, tok, "c2lnbmF0dXJl")
	var info struct {
		Source    string `json:"source"`
		ExpiresAt string `json:"expires_at"`
		Expired   bool   `json:"expired"`
		Scope     string `json:"scope"`
		JWT       *struct {
			Verified bool           `json:"verified"`
			Header   map[string]any `json:"header"`
			Claims   map[string]any `json:"claims"`
		} `json:"jwt"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &info); err != nil {
		t.Fatal(err)
	}
	if info.Source != "stdin" || info.Expired || info.Scope != "system/Patient.rs" || info.ExpiresAt != time.Unix(exp, 0).UTC().Format(time.RFC3339) {
		t.Errorf("info = %+v", info)
	}
	if info.JWT == nil || info.JWT.Verified || info.JWT.Header["typ"] != "at+jwt" || info.JWT.Claims["client_id"] != "svc" {
		t.Errorf("jwt part missing or marked verified: %+v", info.JWT)
	}

	// The cached token of the connection flags.
	_, flags := keyClient(t, "k1")
	cache := "file:" + filepath.Join(t.TempDir(), "tokens")
	r = oauthkit(t, nil, cmdArgs("info", flags, "-scope", patientScope, "-cache", cache)...)
	wantCode(t, r, 1, true)
	if !strings.Contains(r.stderr, "no token cached") {
		t.Errorf("stderr = %q, want 'no token cached'", r.stderr)
	}
	got := oauthkit(t, nil, cmdArgs("token", flags, "-scope", patientScope, "-cache", cache)...)
	wantCode(t, got, 0, false)
	r = oauthkit(t, nil, cmdArgs("info", flags, "-scope", patientScope, "-cache", cache)...)
	wantCode(t, r, 0, true)
	noLeak(t, "stdout", r.stdout, strings.TrimSpace(got.stdout))
	if !strings.Contains(r.stdout, `"source": "cache"`) || !strings.Contains(r.stdout, `"expires_at"`) || !strings.Contains(r.stdout, patientScope) {
		t.Errorf("cached info lacks source, expiry or scope:\n%s", r.stdout)
	}
}

func TestTestResetLogout(t *testing.T) {
	srv := oauthtest.NewServer()
	defer srv.Close()
	if err := srv.RegisterClient(oauthtest.Client{ID: "svc", Secret: "s3cret", AuthMethod: oauthtest.AuthClientSecretBasic}); err != nil {
		t.Fatal(err)
	}
	env := []string{secretEnv + "=s3cret"}
	conn := []string{"-token-url", srv.TokenURL(), "-client-id", "svc", "-scope", patientScope, "-cache", "file:" + filepath.Join(t.TempDir(), "tokens")}

	wantCode(t, oauthkit(t, env, cmdArgs("test", conn)...), 1, true)
	tok := oauthkit(t, env, cmdArgs("token", conn)...)
	wantCode(t, tok, 0, false)
	wantCode(t, oauthkit(t, env, cmdArgs("test", conn)...), 0, true)
	// Valid for another hour and a half? No: oauthtest tokens live an hour.
	wantCode(t, oauthkit(t, env, cmdArgs("test", conn, "-valid-for", "90m")...), 1, true)
	// Another scope set is another cache entry.
	other := append(append([]string(nil), conn...), "-scope", "system/Observation.rs")
	wantCode(t, oauthkit(t, env, cmdArgs("test", other)...), 1, true)

	r := oauthkit(t, env, cmdArgs("reset", conn)...)
	wantCode(t, r, 0, true)
	wantCode(t, oauthkit(t, env, cmdArgs("test", conn)...), 1, true)
	r = oauthkit(t, env, cmdArgs("reset", conn)...)
	wantCode(t, r, 0, true)
	if !strings.Contains(r.stderr, "nothing was cached") {
		t.Errorf("second reset: stderr = %q", r.stderr)
	}

	// logout revokes, then deletes.
	tok = oauthkit(t, env, cmdArgs("token", conn)...)
	wantCode(t, tok, 0, false)
	wantCode(t, oauthkit(t, env, cmdArgs("logout", conn)...), 2, true) // no revocation endpoint
	r = oauthkit(t, env, cmdArgs("logout", conn, "-revocation-url", srv.RevocationURL())...)
	wantCode(t, r, 0, true)
	noLeak(t, "stderr", r.stderr, strings.TrimSpace(tok.stdout))
	if srv.Stats().Revocations != 1 {
		t.Errorf("%d revocations, want 1", srv.Stats().Revocations)
	}
	wantCode(t, oauthkit(t, env, cmdArgs("test", conn)...), 1, true)
	req, _ := http.NewRequest(http.MethodGet, srv.FHIRBase()+"/Patient", nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(tok.stdout))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the logged-out token still reads: %s", resp.Status)
	}
	// logout discovers the revocation endpoint from -fhir-base.
	fhirConn := []string{"-fhir-base", srv.FHIRBase(), "-client-id", "svc", "-scope", patientScope, "-cache", conn[len(conn)-1]}
	wantCode(t, oauthkit(t, env, cmdArgs("token", fhirConn)...), 0, false)
	wantCode(t, oauthkit(t, env, cmdArgs("logout", fhirConn)...), 0, true)
	if srv.Stats().Revocations != 2 {
		t.Errorf("%d revocations, want 2", srv.Stats().Revocations)
	}
}

func TestRequest(t *testing.T) {
	srv, flags := keyClient(t, "k1")
	// POST _search with a form body from a file.
	body := filepath.Join(t.TempDir(), "search.txt")
	if err := os.WriteFile(body, []byte("_id=p1"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := oauthkit(t, nil, cmdArgs("request", flags, "-scope", patientScope, "-cache", "memory", "-X", "POST", "-d", "@"+body, srv.FHIRBase()+"/Patient/_search")...)
	wantCode(t, r, 0, true)
	if !strings.Contains(r.stdout, `"p1"`) || strings.Contains(r.stdout, `"p2"`) {
		t.Errorf("POST _search did not return just p1:\n%s", r.stdout)
	}

	// Method, repeated headers, a body from stdin, -i.
	type seen struct {
		method, prefer, trace, ctype, body string
		bearer                             bool
	}
	got := make(chan seen, 2)
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		got <- seen{req.Method, req.Header.Get("Prefer"), req.Header.Get("X-Trace"), req.Header.Get("Content-Type"), string(b),
			strings.HasPrefix(req.Header.Get("Authorization"), "Bearer ")}
		w.Header().Set("Content-Location", "http://"+req.Host+"/status/1")
		w.WriteHeader(http.StatusAccepted)
	}))
	defer echo.Close()
	params := `{"resourceType":"Parameters"}`
	r = oauthkitStdin(t, params, cmdArgs("request", flags, "-scope", patientScope, "-cache", "memory", "-i",
		"-H", "Prefer: respond-async", "-H", "X-Trace: 7", "-H", "Content-Type: application/fhir+json", "-d", "@-", echo.URL+"/Group/g1/$export")...)
	wantCode(t, r, 0, true)
	s := <-got
	want := seen{"POST", "respond-async", "7", "application/fhir+json", params, true}
	if s != want {
		t.Errorf("server saw %+v, want %+v", s, want)
	}
	if !strings.Contains(r.stdout, "202 Accepted") || !strings.Contains(r.stdout, "Content-Location: http://") {
		t.Errorf("-i output lacks the status line or Content-Location:\n%s", r.stdout)
	}
	// The Authorization header is oauthkit's.
	r = oauthkit(t, nil, cmdArgs("request", flags, "-H", "Authorization: Bearer x", echo.URL)...)
	wantCode(t, r, 2, true)
}

func TestVersionAndCompletion(t *testing.T) {
	r := oauthkit(t, nil, "version")
	wantCode(t, r, 0, true)
	if !strings.HasPrefix(r.stdout, "oauthkit ") || !strings.Contains(r.stdout, runtime.Version()) {
		t.Errorf("version = %q, want oauthkit and %s", r.stdout, runtime.Version())
	}
	for _, shell := range []string{"bash", "zsh"} {
		t.Run(shell, func(t *testing.T) {
			r := oauthkit(t, nil, "completion", shell)
			wantCode(t, r, 0, true)
			for _, want := range []string{"request", "logout", "-token-url", "-kid", "-o"} {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("%s completion lacks %q", shell, want)
				}
			}
			sh, err := exec.LookPath(shell)
			if err != nil {
				testenv.SkipOrFailInCI(t, "%s not installed: syntax not checked", shell)
				return
			}
			check := exec.Command(sh, "-n")
			check.Stdin = strings.NewReader(r.stdout)
			if out, err := check.CombinedOutput(); err != nil {
				t.Errorf("%s -n: %v: %s", shell, err, out)
			}
		})
	}
	wantCode(t, oauthkit(t, nil, "completion", "fish"), 2, true)
}

func TestHelpListsCommands(t *testing.T) {
	r := oauthkit(t, nil, "help")
	wantCode(t, r, 0, true)
	for _, c := range commands() {
		if !strings.Contains(r.stdout, "\t"+c.name+" ") {
			t.Errorf("help does not list %s", c.name)
		}
	}
	if strings.Contains(r.stdout, "-insecure-http") || strings.Contains(r.stdout, "-secret-file") {
		t.Error("help lists connection flags; they belong to each command's -h")
	}
}

func TestJWKSServe(t *testing.T) {
	dir := t.TempDir()
	a, _ := keygenKey(t, dir, "a.pem", "-kid", "a1")
	b, _ := keygenKey(t, dir, "b.pem", "-kid", "b1", "-alg", "EdDSA")
	wantCode(t, oauthkit(t, nil, "jwks", "-serve", "0.0.0.0:0", a), 2, true)

	cmd := exec.Command(binary, "jwks", "-serve", "127.0.0.1:0", a, b)
	cmd.Env = baseEnv
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(stderr).ReadString('\n')
	if err != nil {
		t.Fatalf("no serving line: %v", err)
	}
	i := strings.Index(line, "http://")
	if i < 0 {
		t.Fatalf("serving line %q has no URL", line)
	}
	u := strings.Fields(line[i:])[0]
	resp, err := http.Get(u + ".well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	set, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Header.Get("Content-Type") != "application/jwk-set+json" {
		t.Errorf("Content-Type = %q", resp.Header.Get("Content-Type"))
	}
	if got := strings.Join(kids(t, string(set)), ","); got != "a1,b1" {
		t.Errorf("served kids %s, want a1,b1", got)
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("after SIGINT: %v", err)
	}
}

// TestVerboseAssertion: -v shows the non-secret parts of each client
// assertion, the key file and kid chosen, and -jku lands in the header.
func TestVerboseAssertion(t *testing.T) {
	_, flags := keyClient(t, "") // kid: the stored one (the thumbprint)
	r := oauthkit(t, nil, cmdArgs("token", flags, "-v", "-cache", "memory", "-jku", "https://app.example/jwks.json")...)
	wantCode(t, r, 0, false)
	tok := strings.TrimSpace(r.stdout)
	noLeak(t, "stderr", r.stderr, tok)
	for _, want := range []string{
		`msg="oauthkit: signing key"`, "file=" + flags[5], "kid_from=", "alg=ES384",
		`msg="oauthkit: client assertion signed"`, "iss=backend", "sub=backend", "aud=http://127.0.0.1", "lifetime=4m0s", "jti_length=32", "jku=https://app.example/jwks.json",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("-v output lacks %q", want)
		}
	}
	if strings.Contains(r.stderr, "client_assertion=") || strings.Contains(r.stderr, "eyJ") {
		t.Error("-v output holds an assertion")
	}
}

// TestMalformedHeaderNotEchoed: a -H value without its colon (a token
// pasted as "Authorization Bearer …") is refused without being printed.
func TestMalformedHeaderNotEchoed(t *testing.T) {
	for _, h := range []string{"X-Api-Key abc-secret-key-123", "Authorization: Bearer abc-secret-key-123"} {
		r := oauthkit(t, nil, "request", "-H", h, "https://fhir.example.test/Patient")
		if r.code != 2 || !strings.Contains(r.stderr, "-H") {
			t.Fatalf("exit %d, stderr %q; want a usage error about -H", r.code, r.stderr)
		}
		if strings.Contains(r.stderr+r.stdout, "abc-secret-key-123") {
			t.Fatalf("the header's value was printed: %d bytes of stderr", len(r.stderr))
		}
	}
}
