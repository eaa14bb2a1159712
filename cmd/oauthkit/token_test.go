package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oauthkit/oauthkit/oauthtest"
)

const patientScope = "system/Patient.rs"

// keyClient starts an oauthtest server with a private_key_jwt client
// whose key oauthkit generated, and returns the server and the flags
// that connect to it. Without kid, the key ID is the thumbprint.
func keyClient(t *testing.T, kid string) (*oauthtest.Server, []string) {
	t.Helper()
	srv := oauthtest.NewServer()
	t.Cleanup(srv.Close)
	key := filepath.Join(t.TempDir(), "key.pem")
	args := []string{"keygen", "-alg", "ES384", "-out", key}
	if kid != "" {
		args = append(args, "-kid", kid)
	}
	gen := oauthkit(t, nil, args...)
	wantCode(t, gen, 0, true)
	err := srv.RegisterClient(oauthtest.Client{
		ID: "backend", JWKS: []byte(gen.stdout), AuthMethod: oauthtest.AuthPrivateKeyJWT,
		Scopes: []string{patientScope, "system/Observation.rs"},
	})
	if err != nil {
		t.Fatal(err)
	}
	flags := []string{"-token-url", srv.TokenURL(), "-client-id", "backend", "-key", key}
	if kid != "" {
		flags = append(flags, "-kid", kid)
	}
	return srv, flags
}

func cmdArgs(cmd string, flags []string, more ...string) []string {
	return append(append([]string{cmd}, flags...), more...)
}

func TestTokenCachedAcrossRuns(t *testing.T) {
	for _, kid := range []string{"k1", ""} {
		name := "kid " + kid
		if kid == "" {
			name = "thumbprint kid"
		}
		t.Run(name, func(t *testing.T) {
			srv, flags := keyClient(t, kid)
			cache := "file:" + filepath.Join(t.TempDir(), "tokens")
			args := cmdArgs("token", flags, "-scope", patientScope, "-cache", cache)

			first := oauthkit(t, nil, args...)
			wantCode(t, first, 0, true)
			second := oauthkit(t, nil, args...)
			wantCode(t, second, 0, true)

			tok := strings.TrimSuffix(first.stdout, "\n")
			if tok == "" || strings.ContainsAny(tok, " \n") {
				t.Fatalf("stdout is not one token line (%d bytes)", len(first.stdout))
			}
			if second.stdout != first.stdout {
				t.Error("the second run printed another token")
			}
			if n := srv.Stats().TokenRequests; n != 1 {
				t.Errorf("%d token requests, want 1 (the second run must use the cache)", n)
			}
			noLeak(t, "stderr", first.stderr+second.stderr, tok)

			// The header command prints the same cached token.
			h := oauthkit(t, nil, cmdArgs("header", flags, "-scope", patientScope, "-cache", cache)...)
			wantCode(t, h, 0, true)
			if h.stdout != "Authorization: Bearer "+tok+"\n" {
				t.Errorf("header output is not 'Authorization: Bearer <token>' (%d bytes)", len(h.stdout))
			}
			if n := srv.Stats().TokenRequests; n != 1 {
				t.Errorf("%d token requests after header, want 1", n)
			}
		})
	}
}

func TestTokenMemoryCacheAndScopes(t *testing.T) {
	srv, flags := keyClient(t, "k1")
	// Scopes: repeated and space-separated.
	r := oauthkit(t, nil, cmdArgs("token", flags, "-scope", patientScope, "-scope", "system/Observation.rs", "-cache", "memory")...)
	wantCode(t, r, 0, true)
	r = oauthkit(t, nil, cmdArgs("token", flags, "-scope", patientScope+" system/Observation.rs", "-cache", "memory")...)
	wantCode(t, r, 0, true)
	if n := srv.Stats().TokenRequests; n != 2 {
		t.Errorf("%d token requests, want 2 (memory cache dies with the process)", n)
	}
	// A scope the client may not have: the server's error, exit 1.
	r = oauthkit(t, nil, cmdArgs("token", flags, "-scope", "system/*.cruds", "-cache", "memory")...)
	wantCode(t, r, 1, true)
	if !strings.HasPrefix(r.stderr, "oauthkit: ") || !strings.Contains(r.stderr, "invalid_scope") {
		t.Errorf("stderr = %q, want an 'oauthkit: …invalid_scope…' line", r.stderr)
	}
}

func TestTokenDefaultFileCache(t *testing.T) {
	srv, flags := keyClient(t, "k1")
	args := cmdArgs("token", flags, "-scope", patientScope)
	a := oauthkit(t, nil, args...)
	wantCode(t, a, 0, true)
	b := oauthkit(t, nil, args...)
	wantCode(t, b, 0, true)
	if a.stdout != b.stdout || srv.Stats().TokenRequests != 1 {
		t.Errorf("default cache: same token %v, %d token requests; want true, 1", a.stdout == b.stdout, srv.Stats().TokenRequests)
	}
}

func TestGet(t *testing.T) {
	srv, flags := keyClient(t, "k1")
	cache := "file:" + filepath.Join(t.TempDir(), "tokens")
	conn := append(flags, "-scope", patientScope, "-cache", cache)

	r := oauthkit(t, nil, cmdArgs("get", conn, srv.FHIRBase()+"/Patient")...)
	wantCode(t, r, 0, true)
	var bundle struct {
		ResourceType string `json:"resourceType"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &bundle); err != nil || bundle.ResourceType != "Bundle" {
		t.Errorf("stdout is not a FHIR Bundle (resourceType %q, err %v)", bundle.ResourceType, err)
	}

	r = oauthkit(t, nil, cmdArgs("get", conn, srv.FHIRBase()+"/Patient/p1")...)
	wantCode(t, r, 0, true)

	r = oauthkit(t, nil, cmdArgs("get", conn, srv.FHIRBase()+"/Patient/nobody")...)
	wantCode(t, r, 1, true)
	if r.stdout != "" || !strings.HasPrefix(r.stderr, "oauthkit: GET ") || !strings.Contains(r.stderr, "404") {
		t.Errorf("404: stdout %d bytes, stderr %q; want no stdout and 'oauthkit: GET … 404'", len(r.stdout), r.stderr)
	}

	// A token without Patient scope: 403 from the resource server.
	r = oauthkit(t, nil, cmdArgs("get", append(flags, "-scope", "system/Observation.rs", "-cache", "memory"), srv.FHIRBase()+"/Patient")...)
	wantCode(t, r, 1, true)
	if !strings.Contains(r.stderr, "403") || !strings.Contains(r.stderr, "insufficient_scope") {
		t.Errorf("403: stderr = %q", r.stderr)
	}
	if n := srv.Stats().TokenRequests; n != 2 {
		t.Errorf("%d token requests, want 2", n)
	}
}

func TestGetShowsOnlyTheStartOfAnErrorBody(t *testing.T) {
	_, flags := keyClient(t, "k1")
	big := strings.Repeat("x", 100<<10)
	res := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
			t.Error("request without a Bearer token")
		}
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(big))
	}))
	defer res.Close()
	r := oauthkit(t, nil, cmdArgs("get", append(flags, "-cache", "memory"), res.URL+"/thing?secret-query=1")...)
	wantCode(t, r, 1, false)
	if len(r.stderr) > 2*maxErrorBody || !strings.Contains(r.stderr, "401 Unauthorized") {
		t.Errorf("stderr has %d bytes (want at most %d) and says 401: %v", len(r.stderr), 2*maxErrorBody, strings.Contains(r.stderr, "401 Unauthorized"))
	}
	if strings.Contains(r.stderr, "secret-query") {
		t.Error("stderr shows the URL's query")
	}
}

func TestGetTransportErrorHidesQuery(t *testing.T) {
	_, flags := keyClient(t, "k1")
	// Nothing listens on port 1: the request fails in the transport,
	// whose error names the URL.
	const secret = "SECRET123"
	for _, verbose := range []bool{false, true} {
		args := append(flags, "-cache", "memory")
		if verbose {
			args = append(args, "-v")
		}
		r := oauthkit(t, nil, cmdArgs("get", args, "http://127.0.0.1:1/x?access_token="+secret)...)
		wantCode(t, r, 1, false)
		if !strings.Contains(r.stderr, "\noauthkit: GET http://127.0.0.1:1/x?…: ") && !strings.HasPrefix(r.stderr, "oauthkit: GET http://127.0.0.1:1/x?…: ") {
			t.Errorf("-v %v: stderr has no 'oauthkit: GET http://127.0.0.1:1/x?…: ' line (%d bytes)", verbose, len(r.stderr))
		}
		noLeak(t, "stdout", r.stdout, secret)
		noLeak(t, "stderr", r.stderr, secret)
	}
}

func TestClientSecret(t *testing.T) {
	const secret = "s3cret-Value+with/reserved=chars"
	srv := oauthtest.NewServer()
	defer srv.Close()
	for _, c := range []oauthtest.Client{
		{ID: "basic", Secret: secret, AuthMethod: oauthtest.AuthClientSecretBasic},
		{ID: "post", Secret: secret, AuthMethod: oauthtest.AuthClientSecretPost},
	} {
		if err := srv.RegisterClient(c); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wrongFile := filepath.Join(dir, "wrong")
	if err := os.WriteFile(wrongFile, []byte("wrong-"+secret), 0o600); err != nil {
		t.Fatal(err)
	}
	envSecret := []string{secretEnv + "=" + secret}
	tests := []struct {
		name string
		env  []string
		args []string
		code int
		want string // in stderr
	}{
		{"basic from env", envSecret, []string{"-client-id", "basic"}, 0, "level=DEBUG"},
		{"post from env", envSecret, []string{"-client-id", "post", "-auth", "post"}, 0, "level=DEBUG"},
		{"basic from file", nil, []string{"-client-id", "basic", "-secret-file", secretFile}, 0, "level=DEBUG"},
		{"file wins over env", []string{secretEnv + "=wrong"}, []string{"-client-id", "post", "-auth", "post", "-secret-file", secretFile}, 0, "level=DEBUG"},
		{"wrong secret", nil, []string{"-client-id", "basic", "-secret-file", wrongFile}, 1, "invalid_client"},
		{"wrong method", envSecret, []string{"-client-id", "post"}, 1, "invalid_client"},
		{"missing file", nil, []string{"-client-id", "basic", "-secret-file", filepath.Join(dir, "nope")}, 1, "nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, cmd := range []string{"token", "header"} {
				args := cmdArgs(cmd, []string{"-token-url", srv.TokenURL(), "-cache", "memory", "-v"}, tt.args...)
				r := oauthkit(t, tt.env, args...)
				// The secret must never show, even in -v debug output.
				noLeak(t, "stdout", r.stdout, secret)
				noLeak(t, "stderr", r.stderr, secret)
				wantCode(t, r, tt.code, !strings.Contains(r.stderr, secret))
				if !strings.Contains(r.stderr, tt.want) {
					t.Errorf("%s: stderr lacks %q", cmd, tt.want)
				}
				if tt.code == 0 {
					tok := strings.TrimPrefix(strings.TrimSuffix(r.stdout, "\n"), "Authorization: Bearer ")
					noLeak(t, "stderr", r.stderr, tok)
				}
			}
		})
	}
}

func TestProfile(t *testing.T) {
	srv, flags := keyClient(t, "k1")
	// flags = -token-url URL -client-id backend -key PATH -kid k1
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.json")
	cfg := map[string]any{"profiles": map[string]any{
		"backend": map[string]any{
			"token_url": flags[1], "client_id": flags[3], "key": flags[5], "kid": flags[7],
			"scopes": []string{patientScope}, "cache": "file:" + filepath.Join(dir, "tokens"),
		},
		"leaky": map[string]any{"token_url": flags[1], "client_id": "x", "client_secret": "do-not-store"},
		"typo":  map[string]any{"token_url": flags[1], "client_id": "x", "scope": "a"},
	}}
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"OAUTHKIT_CONFIG=" + cfgPath}

	a := oauthkit(t, env, "token", "-profile", "backend")
	wantCode(t, a, 0, true)
	g := oauthkit(t, env, "get", "-profile", "backend", srv.FHIRBase()+"/Patient/p1")
	wantCode(t, g, 0, true)
	if n := srv.Stats().TokenRequests; n != 1 {
		t.Errorf("%d token requests, want 1 (profile cache shared by token and get)", n)
	}
	// A flag overrides the profile: another scope, another token.
	o := oauthkit(t, env, "token", "-profile", "backend", "-scope", "system/Observation.rs")
	wantCode(t, o, 0, true)
	if o.stdout == a.stdout || srv.Stats().TokenRequests != 2 {
		t.Errorf("-scope did not override the profile's scopes")
	}

	for _, tt := range []struct{ profile, want string }{
		{"leaky", "never store a secret"},
		{"typo", `unknown member "scope"`},
		{"absent", `profile "absent" not found`},
	} {
		r := oauthkit(t, env, "token", "-profile", tt.profile)
		wantCode(t, r, 1, true)
		if !strings.Contains(r.stderr, tt.want) {
			t.Errorf("profile %s: stderr = %q, want %q", tt.profile, r.stderr, tt.want)
		}
		noLeak(t, "stderr", r.stderr, "do-not-store")
	}
}

func TestTokenFromFHIRBase(t *testing.T) {
	srv, flags := keyClient(t, "k1")
	// Replace -token-url by -fhir-base: the token endpoint is discovered.
	flags = append([]string{"-fhir-base", srv.FHIRBase()}, flags[2:]...)
	r := oauthkit(t, nil, cmdArgs("get", flags, "-scope", patientScope, "-cache", "memory", srv.FHIRBase()+"/Patient")...)
	wantCode(t, r, 0, true)
	if n := srv.Stats().TokenRequests; n != 1 {
		t.Errorf("%d token requests, want 1", n)
	}
}

func TestDiscover(t *testing.T) {
	srv := oauthtest.NewServer()
	defer srv.Close()
	tests := []struct {
		name string
		args []string
	}{
		{"smart", []string{"discover", srv.FHIRBase()}},
		{"issuer", []string{"discover", "-issuer", srv.Issuer()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := oauthkit(t, nil, tt.args...)
			wantCode(t, r, 0, true)
			var doc struct {
				TokenEndpoint         string `json:"token_endpoint"`
				AuthorizationEndpoint string `json:"authorization_endpoint"`
			}
			if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
				t.Fatalf("stdout is not JSON: %v", err)
			}
			if doc.TokenEndpoint != srv.TokenURL() || doc.AuthorizationEndpoint != srv.AuthorizeURL() {
				t.Errorf("endpoints %q, %q; want %q, %q", doc.TokenEndpoint, doc.AuthorizationEndpoint, srv.TokenURL(), srv.AuthorizeURL())
			}
			if !strings.Contains(r.stdout, "\n  \"token_endpoint\"") {
				t.Error("output is not indented")
			}
		})
	}
	r := oauthkit(t, nil, "discover", srv.URL+"/nothing-here")
	wantCode(t, r, 1, true)
	if !strings.HasPrefix(r.stderr, "oauthkit: ") {
		t.Errorf("stderr = %q", r.stderr)
	}
}

func TestJWTBearerGrant(t *testing.T) {
	srv := oauthtest.NewServer()
	defer srv.Close()
	key := filepath.Join(t.TempDir(), "key.pem")
	gen := oauthkit(t, nil, "keygen", "-alg", "RS384", "-kid", "k1", "-out", key)
	wantCode(t, gen, 0, true)
	for _, c := range []oauthtest.Client{
		{ID: "public", JWKS: []byte(gen.stdout), AuthMethod: oauthtest.AuthNone},
		{ID: "signed", JWKS: []byte(gen.stdout), AuthMethod: oauthtest.AuthPrivateKeyJWT},
	} {
		if err := srv.RegisterClient(c); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		args []string
	}{
		{"assertion only", []string{"-client-id", "public"}},
		{"assertion and private_key_jwt", []string{"-client-id", "signed", "-auth", "private_key_jwt"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := cmdArgs("get", []string{"-token-url", srv.TokenURL(), "-key", key, "-kid", "k1", "-cache", "memory",
				"-grant", "jwt_bearer", "-subject", "alice", "-scope", "user/Patient.rs"}, tt.args...)
			r := oauthkit(t, nil, append(args, srv.FHIRBase()+"/Patient/p1")...)
			wantCode(t, r, 0, true)
		})
	}
	if n := srv.Stats().ByGrant[oauthtest.GrantJWTBearer]; n != 2 {
		t.Errorf("%d jwt-bearer token requests, want 2", n)
	}
}

func TestSecretFileReadableByOthers(t *testing.T) {
	if filepath.Separator != '/' {
		t.Skip("file modes are Unix")
	}
	const secret = "another-s3cret"
	srv := oauthtest.NewServer()
	defer srv.Close()
	if err := srv.RegisterClient(oauthtest.Client{ID: "c", Secret: secret, AuthMethod: oauthtest.AuthClientSecretBasic}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, []byte(secret), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	r := oauthkit(t, nil, "token", "-token-url", srv.TokenURL(), "-client-id", "c", "-secret-file", path, "-cache", "memory")
	noLeak(t, "output", r.stdout+r.stderr, secret)
	wantCode(t, r, 0, false)
	if !strings.Contains(r.stderr, "readable by other users") {
		t.Errorf("no warning about the secret file's mode")
	}
}
