package main

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/oauthkit/oauthkit/examples/internal/demotest"
)

// runProgram runs the program in-process and returns its exit code and
// output, which must hold no secret.
func runProgram(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return demotest.Run(t, run, args...)
}

// shortTokens makes the embedded server issue 2-second tokens until the
// test ends. oauthclient stops using a token its leeway before expiry (a
// tenth of its lifetime, at least 1 s, at most half of it), so a 2-second
// token is used for 1 s.
func shortTokens(t *testing.T) {
	t.Helper()
	old := demoTokenLifetime
	demoTokenLifetime = 2 * time.Second
	t.Cleanup(func() { demoTokenLifetime = old })
}

var requestLine = regexp.MustCompile(`^request (\d+): 200 OK, 2 patients, token (fetched|reused)$`)

func TestDemoRefreshesAcrossTokenLifetimes(t *testing.T) {
	demotest.ClearEnv(t)
	shortTokens(t)
	// 12 requests 125 ms apart (1.375 s) span more than the usable part
	// of a 2 s token (1 s), so a second token is needed; the first one
	// serves at least the second request.
	const requests = 12
	code, stdout, stderr := runProgram(t, "-requests", strconv.Itoa(requests), "-interval", "125ms")
	if code != 0 {
		t.Fatalf("exit code %d, stderr:\n%s", code, stderr)
	}
	if !strings.HasPrefix(stdout, "embedded test server at ") || !strings.Contains(stdout, ", tokens live 2s\n") {
		t.Errorf("output does not start with the embedded server and its 2s tokens:\n%s", stdout)
	}
	fetched, reused := 0, 0
	var summary, serverLine string
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		switch m := requestLine.FindStringSubmatch(line); {
		case m != nil && m[2] == "fetched":
			fetched++
		case m != nil:
			reused++
		case strings.HasPrefix(line, "the server counted"):
			serverLine = line
		case strings.Contains(line, " requests, "):
			summary = line
		}
	}
	if fetched+reused != requests {
		t.Errorf("%d request lines, want %d; output:\n%s", fetched+reused, requests, stdout)
	}
	if fetched < 2 || reused < 1 {
		t.Errorf("%d fetched, %d reused; want at least 2 fetched and 1 reused; output:\n%s", fetched, reused, stdout)
	}
	var n, tokens int
	if _, err := fmt.Sscanf(summary, "%d requests, %d token request", &n, &tokens); err != nil || n != requests || tokens < fetched {
		t.Errorf("summary %q: want %d requests and at least %d token requests", summary, requests, fetched)
	}
	var serverTokens, serverPatients int
	if _, err := fmt.Sscanf(serverLine, "the server counted %d token requests and %d Patient requests", &serverTokens, &serverPatients); err != nil ||
		serverPatients != requests || serverTokens < fetched {
		t.Errorf("server line %q: want %d Patient requests and at least %d token requests", serverLine, requests, fetched)
	}
}

func TestRealServer(t *testing.T) {
	tests := []struct {
		name string
		env  bool // settings from the environment rather than flags
	}{
		{"flags", false},
		{"environment", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			demotest.ClearEnv(t)
			srv, keyFile := demotest.RealServer(t, "RS384", "system/Patient.rs")
			args := []string{"-requests", "3", "-interval", "0"}
			if tt.env {
				t.Setenv("FHIR_BASE", srv.FHIRBase())
				t.Setenv("CLIENT_ID", "app")
				t.Setenv("PRIVATE_KEY_FILE", keyFile)
				t.Setenv("KEY_ID", "k1")
				t.Setenv("SCOPES", "system/Patient.rs")
			} else {
				args = append(args, "-fhir-base", srv.FHIRBase(), "-client-id", "app", "-key", keyFile, "-kid", "k1", "-scope", "system/Patient.rs")
			}
			code, stdout, stderr := runProgram(t, args...)
			if code != 0 {
				t.Fatalf("exit code %d, stderr:\n%s", code, stderr)
			}
			want := "request 1: 200 OK, 2 patients, token fetched\n" +
				"request 2: 200 OK, 2 patients, token reused\n" +
				"request 3: 200 OK, 2 patients, token reused\n" +
				"3 requests, 1 token request\n"
			if stdout != want {
				t.Errorf("output:\n%s\nwant:\n%s", stdout, want)
			}
			if st := srv.Stats(); st.TokenRequests != 1 || st.ResourceRequests != 3 {
				t.Errorf("server saw %d token and %d resource requests, want 1 and 3", st.TokenRequests, st.ResourceRequests)
			}
		})
	}
}

func TestNon200ExitsOne(t *testing.T) {
	demotest.ClearEnv(t)
	// The client may only read Observations: GET Patient is forbidden.
	srv, keyFile := demotest.RealServer(t, "RS384", "system/Observation.rs")
	code, stdout, stderr := runProgram(t, "-fhir-base", srv.FHIRBase(), "-client-id", "app", "-key", keyFile, "-kid", "k1",
		"-scope", "system/Observation.rs", "-requests", "3", "-interval", "0")
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if want := "request 1: 403 Forbidden, token fetched\n"; stdout != want {
		t.Errorf("output %q, want %q", stdout, want)
	}
	if !strings.Contains(stderr, "403 Forbidden") {
		t.Errorf("stderr %q does not name the status", stderr)
	}
}

// TestVerboseHoldsNoSecret runs the demo with debug logs, which
// runProgram checks for secrets like the rest of the output.
func TestVerboseHoldsNoSecret(t *testing.T) {
	demotest.ClearEnv(t)
	code, _, stderr := runProgram(t, "-v", "-requests", "2", "-interval", "0")
	if code != 0 {
		t.Fatalf("exit code %d, stderr:\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "level=DEBUG") {
		t.Errorf("-v logged no debug line (%d bytes on stderr)", len(stderr))
	}
}

func TestUsage(t *testing.T) {
	tests := []demotest.UsageTest{
		{Name: "help", Args: []string{"-h"}, WantCode: 0, WantErr: "-fhir-base"},
		{Name: "zero requests", Args: []string{"-requests", "0"}, WantCode: 2, WantErr: "-requests"},
		{Name: "negative interval", Args: []string{"-interval", "-1s"}, WantCode: 2, WantErr: "-interval"},
		{Name: "argument", Args: []string{"extra"}, WantCode: 2, WantErr: "unexpected argument"},
		{Name: "unknown flag", Args: []string{"-nope"}, WantCode: 2, WantErr: "-nope"},
		{Name: "missing key file", Args: []string{"-fhir-base", "https://fhir.example.org/R4", "-client-id", "app", "-key", filepath.Join(t.TempDir(), "missing.pem"), "-kid", "k1"}, WantCode: 1, WantErr: "missing.pem"},
	}
	tests = append(tests, demotest.RegistrationUsageTests()...)
	demotest.CheckUsage(t, run, func(t *testing.T) { demotest.ClearEnv(t) }, tests)
}
