package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oauthkit/oauthkit/oauthtest"
)

// TestLoginThenRefresh logs in through the real binary, acting as the
// browser, then gets tokens with the stored refresh token.
func TestLoginThenRefresh(t *testing.T) {
	tests := []struct {
		name      string
		endpoints func(*oauthtest.Server) (login, token []string)
	}{
		{"explicit endpoints", func(srv *oauthtest.Server) ([]string, []string) {
			return []string{"-token-url", srv.TokenURL(), "-auth-url", srv.AuthorizeURL()}, []string{"-token-url", srv.TokenURL()}
		}},
		{"SMART discovery", func(srv *oauthtest.Server) ([]string, []string) {
			return []string{"-fhir-base", srv.FHIRBase()}, []string{"-fhir-base", srv.FHIRBase()}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := oauthtest.NewServer()
			defer srv.Close()
			loginEndpoints, tokenEndpoints := tt.endpoints(srv)
			testLoginThenRefresh(t, srv, loginEndpoints, tokenEndpoints)
		})
	}
}

func testLoginThenRefresh(t *testing.T, srv *oauthtest.Server, loginEndpoints, tokenEndpoints []string) {
	const scopes = "patient/Patient.rs offline_access"
	err := srv.RegisterClient(oauthtest.Client{
		ID: "cli", AuthMethod: oauthtest.AuthNone,
		RedirectURIs: []string{"http://127.0.0.1/callback"},
	})
	if err != nil {
		t.Fatal(err)
	}
	cache := "file:" + filepath.Join(t.TempDir(), "tokens")
	conn := append(tokenEndpoints, "-client-id", "cli", "-scope", scopes, "-cache", cache)

	// Before the login there is no refresh token: a clear error.
	r := oauthkit(t, nil, cmdArgs("token", conn, "-grant", "refresh_token")...)
	wantCode(t, r, 1, true)
	if !strings.Contains(r.stderr, "oauthkit login") {
		t.Errorf("stderr = %q, want a hint to run oauthkit login", r.stderr)
	}
	if n := srv.Stats().TokenRequests; n != 0 {
		t.Errorf("%d token requests before login, want 0", n)
	}

	login(t, cmdArgs("login", append(loginEndpoints, conn[len(tokenEndpoints):]...), "-no-browser"))
	if n := srv.Stats().ByGrant[oauthtest.GrantAuthorizationCode]; n != 1 {
		t.Fatalf("%d authorization_code token requests, want 1", n)
	}

	// The stored access token is still fresh: no request at all.
	first := oauthkit(t, nil, cmdArgs("token", conn, "-grant", "refresh_token")...)
	wantCode(t, first, 0, true)
	tok1 := strings.TrimSpace(first.stdout)
	if tok1 == "" {
		t.Fatal("no token printed")
	}
	if n := srv.Stats().TokenRequests; n != 1 {
		t.Errorf("%d token requests, want 1 (the login's)", n)
	}

	// Once the resource server rejects that token, get redeems the
	// refresh token and retries.
	srv.RevokeAccessToken(tok1)
	g := oauthkit(t, nil, cmdArgs("get", conn, "-grant", "refresh_token", srv.FHIRBase()+"/Patient/p1")...)
	wantCode(t, g, 0, true)
	if n := srv.Stats().ByGrant[oauthtest.GrantRefreshToken]; n != 1 {
		t.Errorf("%d refresh_token requests, want 1", n)
	}

	// The new token (and rotated refresh token) were persisted.
	second := oauthkit(t, nil, cmdArgs("token", conn, "-grant", "refresh_token")...)
	wantCode(t, second, 0, true)
	if tok2 := strings.TrimSpace(second.stdout); tok2 == "" || tok2 == tok1 {
		t.Error("token after the refresh is empty or the revoked one")
	}
	st := srv.Stats()
	if st.TokenRequests != 2 || st.RefreshReuseDetected != 0 {
		t.Errorf("%d token requests, %d refresh token reuses; want 2, 0", st.TokenRequests, st.RefreshReuseDetected)
	}
}

// login runs oauthkit login, follows the authorization URL it prints
// like a browser would, and waits for it to exit 0.
func login(t *testing.T, args []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = baseEnv
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stdout strings.Builder
	cmd.Stdout = &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	var authURL string
	var lines []string
	for sc.Scan() {
		line := sc.Text()
		lines = append(lines, line)
		if u := strings.TrimSpace(line); strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://") {
			authURL = u
			break
		}
	}
	if authURL == "" {
		cmd.Wait()
		t.Fatalf("no authorization URL on stderr: %q", lines)
	}
	// The rest of stderr, read while the browser part runs.
	rest := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(stderr)
		rest <- string(b)
	}()

	// The "browser": GET the authorization URL; oauthtest approves and
	// redirects to the loopback listener, which answers 200.
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, authURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		// Without the URL: it holds the authorization code.
		t.Fatalf("browser: %v", withoutURL(err))
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Login complete") {
		t.Errorf("browser got %s: %q", resp.Status, body)
	}
	if !strings.HasPrefix(resp.Request.URL.String(), "http://127.0.0.1:") {
		t.Errorf("browser ended at %s, want the loopback redirect", resp.Request.URL.Redacted())
	}

	tail := <-rest
	if err := cmd.Wait(); err != nil {
		t.Fatalf("login: %v; stderr: %q", err, tail)
	}
	if !strings.Contains(tail, "logged in") {
		t.Errorf("login stderr tail = %q", tail)
	}
	if stdout.Len() != 0 {
		t.Errorf("login printed %d bytes on stdout, want none", stdout.Len())
	}
}
