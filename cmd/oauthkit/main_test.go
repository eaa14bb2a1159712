package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// binary is the oauthkit executable built by TestMain.
var binary string

// baseEnv is the environment of every oauthkit process: the caller's,
// without OAUTHKIT_* variables, with private home, cache and config
// directories so that no test touches the user's own files.
var baseEnv []string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "oauthkit-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "oauthkit")
	gotool, err := exec.LookPath("go")
	if err != nil {
		gotool = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	build := exec.Command(gotool, "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build oauthkit:", err)
		return 1
	}
	home := filepath.Join(dir, "home")
	for _, v := range os.Environ() {
		if strings.HasPrefix(v, "OAUTHKIT_") || strings.HasPrefix(v, "XDG_") || strings.HasPrefix(v, "HOME=") {
			continue
		}
		baseEnv = append(baseEnv, v)
	}
	baseEnv = append(baseEnv,
		"HOME="+home,
		"XDG_CACHE_HOME="+filepath.Join(home, "cache"),
		"XDG_CONFIG_HOME="+filepath.Join(home, "config"),
	)
	return m.Run()
}

// result is what one oauthkit process did.
type result struct {
	stdout, stderr string
	code           int
}

// oauthkit runs the binary with args and extra environment variables
// ("NAME=value"). It never logs the output: it may hold tokens.
func oauthkit(t *testing.T, env []string, args ...string) result {
	t.Helper()
	return runOauthkit(t, env, "", args...)
}

// runOauthkit runs the binary with extra environment variables and stdin.
func runOauthkit(t *testing.T, env []string, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(append([]string(nil), baseEnv...), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("oauthkit %s: %v", args[0], err)
		}
		code = ee.ExitCode()
	}
	return result{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

// wantCode fails the test if r did not exit with code; on failure it
// shows stderr only when it cannot hold a secret (the caller says so).
func wantCode(t *testing.T, r result, code int, showStderr bool) {
	t.Helper()
	if r.code == code {
		return
	}
	if showStderr {
		t.Fatalf("exit code %d, want %d; stderr: %s", r.code, code, r.stderr)
	}
	t.Fatalf("exit code %d, want %d (stderr: %d bytes)", r.code, code, len(r.stderr))
}

// noLeak fails if any of secrets appears in s. It names the secret only
// by its index.
func noLeak(t *testing.T, what, s string, secrets ...string) {
	t.Helper()
	for i, sec := range secrets {
		if sec != "" && strings.Contains(s, sec) {
			t.Errorf("%s contains secret #%d", what, i)
		}
	}
}

func TestUsage(t *testing.T) {
	// inStdout and inStderr must appear in the stream; empty, the stream
	// must be empty.
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		code     int
		inStdout string
		inStderr string
	}{
		{"no arguments", nil, nil, 2, "", "Usage:"},
		{"unknown command", []string{"frobnicate"}, nil, 2, "", `unknown command "frobnicate"`},
		{"help", []string{"help"}, nil, 0, "Commands:", ""},
		{"help command", []string{"help", "token"}, nil, 0, "Example:", ""},
		{"token -h", []string{"token", "-h"}, nil, 0, "-token-url", ""},
		{"get -h", []string{"get", "-h"}, nil, 0, "Example:", ""},
		{"login -h", []string{"login", "-h"}, nil, 0, "-no-browser", ""},
		{"keygen -h", []string{"keygen", "-h"}, nil, 0, "Example:", ""},
		{"jwks -h", []string{"jwks", "-h"}, nil, 0, "Example:", ""},
		{"discover -h", []string{"discover", "-h"}, nil, 0, "Example:", ""},
		{"unknown flag", []string{"token", "-bogus"}, nil, 2, "", "flag provided but not defined: -bogus"},
		{"secret flag does not exist", []string{"token", "-secret", "x"}, nil, 2, "", "not defined"},
		{"no token URL", []string{"token", "-client-id", "c"}, nil, 2, "", "-token-url or -fhir-base is required"},
		{"no client ID", []string{"token", "-token-url", "https://as.example/token"}, nil, 2, "", "-client-id is required"},
		{"bad grant", []string{"token", "-token-url", "https://as.example/token", "-client-id", "c", "-grant", "implicit"}, nil, 2, "", "unknown -grant"},
		{"jwt_bearer without subject", []string{"token", "-token-url", "https://as.example/token", "-client-id", "c", "-grant", "jwt_bearer", "-key", "k.pem"}, nil, 2, "", "needs -subject and -key"},
		{"secret and key", []string{"token", "-token-url", "https://as.example/token", "-client-id", "c", "-key", "k.pem"}, map[string]string{secretEnv: "s"}, 2, "", "choose with -auth"},
		{"post without secret", []string{"token", "-token-url", "https://as.example/token", "-client-id", "c", "-auth", "post"}, nil, 2, "", "needs a client secret"},
		{"bad cache", []string{"token", "-token-url", "https://as.example/token", "-client-id", "c", "-cache", "redis"}, nil, 2, "", "unknown -cache"},
		{"refresh in memory", []string{"token", "-token-url", "https://as.example/token", "-client-id", "c", "-grant", "refresh_token", "-cache", "memory"}, nil, 2, "", "persistent -cache"},
		{"extra argument", []string{"token", "-token-url", "https://as.example/token", "-client-id", "c", "extra"}, nil, 2, "", "unexpected argument"},
		{"get without URL", []string{"get", "-token-url", "https://as.example/token", "-client-id", "c"}, nil, 2, "", "want exactly one URL"},
		{"get relative URL", []string{"get", "-token-url", "https://as.example/token", "-client-id", "c", "/fhir/Patient"}, nil, 2, "", "not an absolute"},
		{"jwks without key", []string{"jwks"}, nil, 2, "", "no key file"},
		{"keygen without -out", []string{"keygen"}, nil, 2, "", "-out is required"},
		{"keygen bad alg", []string{"keygen", "-alg", "HS256", "-out", "k.pem"}, nil, 2, "", "unsupported -alg"},
		{"discover without URL", []string{"discover"}, nil, 2, "", "want exactly one URL"},
		{"login without auth URL", []string{"login", "-token-url", "https://as.example/token", "-client-id", "c"}, nil, 2, "", "-auth-url or -fhir-base"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			getenv := func(k string) string { return tt.env[k] }
			code := runEnv(tt.args, &env{stdout: &stdout, stderr: &stderr, getenv: getenv})
			if code != tt.code {
				t.Fatalf("exit code %d, want %d; stderr: %s", code, tt.code, stderr.String())
			}
			wantStream(t, "stdout", stdout.String(), tt.inStdout)
			wantStream(t, "stderr", stderr.String(), tt.inStderr)
		})
	}
}

// wantStream fails if got lacks want, or, for an empty want, if got is
// not empty.
func wantStream(t *testing.T, name, got, want string) {
	t.Helper()
	switch {
	case want == "" && got != "":
		t.Errorf("%s is not empty:\n%s", name, got)
	case !strings.Contains(got, want):
		t.Errorf("%s lacks %q:\n%s", name, want, got)
	}
}

// TestUsageBinary checks the exit codes of the real process.
func TestUsageBinary(t *testing.T) {
	r := oauthkit(t, nil, "token", "-client-id", "c")
	wantCode(t, r, 2, true)
	if !strings.HasPrefix(r.stderr, "oauthkit token: ") {
		t.Errorf("stderr = %q, want an 'oauthkit token: ' line", r.stderr)
	}
	r = oauthkit(t, nil, "help")
	wantCode(t, r, 0, true)
}
