package main

import (
	"bufio"
	"context"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oauthkit/oauthkit/oauthtest"
)

func TestNoDisplay(t *testing.T) {
	env := func(vars map[string]string) func(string) string {
		return func(k string) string { return vars[k] }
	}
	tests := []struct {
		goos string
		vars map[string]string
		want bool
	}{
		{"linux", nil, true},
		{"linux", map[string]string{"DISPLAY": ":0"}, false},
		{"freebsd", map[string]string{"WAYLAND_DISPLAY": "wayland-0"}, false},
		{"darwin", nil, false},
		{"windows", nil, false},
	}
	for _, tt := range tests {
		if got := noDisplay(tt.goos, env(tt.vars)); got != tt.want {
			t.Errorf("noDisplay(%s, %v) = %v, want %v", tt.goos, tt.vars, got, tt.want)
		}
	}
}

// TestDeviceLoginThenToken logs in with login -device through the real
// binary, approving the user code it shows, then gets the stored token.
func TestDeviceLoginThenToken(t *testing.T) {
	srv := oauthtest.NewServer()
	defer srv.Close()
	err := srv.RegisterClient(oauthtest.Client{ID: "cli", AuthMethod: oauthtest.AuthNone,
		GrantTypes: []string{oauthtest.GrantDeviceCode, oauthtest.GrantRefreshToken}})
	if err != nil {
		t.Fatal(err)
	}
	cache := "file:" + filepath.Join(t.TempDir(), "tokens")
	conn := []string{"-fhir-base", srv.FHIRBase(), "-client-id", "cli", "-scope", "patient/Patient.rs offline_access", "-cache", cache}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, cmdArgs("login", conn, "-device")...)
	cmd.Env = baseEnv
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	var lines []string
	shown := false
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if strings.Contains(sc.Text(), "shows the code") || strings.Contains(sc.Text(), "enter the code") {
			shown = true
			break
		}
	}
	if !shown {
		cmd.Wait()
		t.Fatalf("no user code on stderr: %q", lines)
	}
	codes := srv.PendingUserCodes()
	if len(codes) != 1 {
		t.Fatalf("%d pending user codes, want 1", len(codes))
	}
	if !strings.Contains(strings.Join(lines, "\n"), codes[0][:4]) {
		t.Errorf("the user code is not shown: %q", lines)
	}
	if err := srv.ApproveDevice(codes[0], "alice"); err != nil {
		t.Fatal(err)
	}
	tail, _ := io.ReadAll(stderr)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("login -device: %v; stderr: %q", err, tail)
	}
	if !strings.Contains(string(tail), "logged in") {
		t.Errorf("login stderr tail = %q", tail)
	}
	if n := srv.Stats().ByGrant[oauthtest.GrantDeviceCode]; n < 1 {
		t.Fatalf("%d device code polls, want at least 1", n)
	}

	// The stored token is used as is: no further token request.
	before := srv.Stats().TokenRequests
	r := oauthkit(t, nil, cmdArgs("token", conn, "-grant", "refresh_token")...)
	wantCode(t, r, 0, true)
	if strings.TrimSpace(r.stdout) == "" {
		t.Fatal("no token printed")
	}
	if n := srv.Stats().TokenRequests; n != before {
		t.Errorf("%d token requests after the login, want none", n-before)
	}
}

func TestDeviceLoginWithoutEndpoint(t *testing.T) {
	srv := oauthtest.NewServer()
	defer srv.Close()
	r := oauthkit(t, nil, "login", "-device", "-token-url", srv.TokenURL(), "-client-id", "cli")
	wantCode(t, r, 1, true)
	if !strings.Contains(r.stderr, "device_authorization_endpoint") {
		t.Errorf("stderr = %q, want a hint about the device endpoint", r.stderr)
	}
}
