package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	gokeyring "github.com/zalando/go-keyring"

	"github.com/oauthkit/oauthkit/examples/internal/demotest"
	"github.com/oauthkit/oauthkit/internal/testenv"
)

// isolate makes a test independent of the caller's environment and keeps
// the user's cache directory (tokens, lock files) out of it.
func isolate(t *testing.T) (cacheHome string) {
	t.Helper()
	demotest.ClearEnv(t)
	cacheHome = t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cacheHome)
	return cacheHome
}

// runProgram runs the program in-process and returns its exit code and
// output, which must hold no secret.
func runProgram(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return demotest.Run(t, run, args...)
}

// runLines returns the "run N: …" lines of the demo output.
func runLines(stdout string) []string {
	var lines []string
	for _, line := range strings.Split(stdout, "\n") {
		if strings.HasPrefix(line, "run ") {
			lines = append(lines, line)
		}
	}
	return lines
}

// checkDemoOutput checks that the first run fetched a token and the others
// reused it.
func checkDemoOutput(t *testing.T, stdout string, runs int) {
	t.Helper()
	var want []string
	for i := 1; i <= runs; i++ {
		how := "token reused from cache"
		if i == 1 {
			how = "token fetched"
		}
		want = append(want, "run "+strconv.Itoa(i)+": "+how+"; GET Patient: 200 OK, 2 patients")
	}
	if got := runLines(stdout); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("run lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if summary := strconv.Itoa(runs) + " runs, 1 token request\n"; !strings.HasSuffix(stdout, summary) {
		t.Errorf("output does not end with %q:\n%s", summary, stdout)
	}
}

func TestDemoFileCache(t *testing.T) {
	tests := []struct {
		name string
		args []string
		runs int
	}{
		{"default", nil, 3},
		{"five runs", []string{"-runs", "5"}, 5},
		{"cache dir", []string{"-cache-dir", filepath.Join(t.TempDir(), "tokens")}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolate(t)
			code, stdout, stderr := runProgram(t, tt.args...)
			if code != 0 {
				t.Fatalf("exit code %d, stderr:\n%s", code, stderr)
			}
			checkDemoOutput(t, stdout, tt.runs)
			if stderr != "" {
				t.Errorf("stderr: %s", stderr)
			}
		})
	}
}

// TestVerboseHoldsNoSecret runs the demo with debug logs, which
// runProgram checks for secrets like the rest of the output.
func TestVerboseHoldsNoSecret(t *testing.T) {
	isolate(t)
	code, stdout, stderr := runProgram(t, "-v", "-runs", "2")
	if code != 0 {
		t.Fatalf("exit code %d, stderr:\n%s", code, stderr)
	}
	checkDemoOutput(t, stdout, 2)
	if !strings.Contains(stderr, "level=DEBUG") {
		t.Errorf("-v logged no debug line (%d bytes on stderr)", len(stderr))
	}
}

func TestDemoDefaultDirLeavesNoEntry(t *testing.T) {
	cacheHome := isolate(t)
	code, stdout, stderr := runProgram(t, "-cache-dir", "default", "-runs", "2")
	if code != 0 {
		t.Fatalf("exit code %d, stderr:\n%s", code, stderr)
	}
	checkDemoOutput(t, stdout, 2)
	dir := filepath.Join(cacheHome, "oauthkit", "tokens")
	if !strings.Contains(stdout, "token cache: files in "+dir+"\n") {
		t.Errorf("output does not name the cache directory %s:\n%s", dir, stdout)
	}
	// The demo server's token is useless afterwards: the demo deletes it.
	if entries, _ := filepath.Glob(filepath.Join(dir, "*.json")); len(entries) != 0 {
		t.Errorf("entries left behind: %v", entries)
	}
}

// keyringUsable reports whether an OS keychain can be written to, with a
// bounded wait: a locked keychain may wait for a prompt nobody answers.
func keyringUsable() error {
	b := make([]byte, 8)
	rand.Read(b)
	service := "oauthkit-scheduled-pull-test-" + hex.EncodeToString(b)
	done := make(chan error, 1)
	go func() {
		if err := gokeyring.Set(service, "probe", "probe"); err != nil {
			done <- err
			return
		}
		done <- gokeyring.Delete(service, "probe")
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		return errors.New("keychain probe timed out")
	}
}

func TestDemoKeyring(t *testing.T) {
	if err := keyringUsable(); err != nil {
		testenv.SkipOrFailInCI(t, "no usable OS keychain (%v); run: scripts/with-keyring.sh go test ./examples/scheduled-pull", err)
	}
	isolate(t)
	code, stdout, stderr := runProgram(t, "-cache", "keyring")
	if code != 0 {
		t.Fatalf("exit code %d, stderr:\n%s", code, stderr)
	}
	checkDemoOutput(t, stdout, 3)
}

func TestKeyringUnavailable(t *testing.T) {
	if os.Getenv("OAUTHKIT_TEST_NO_KEYCHAIN") == "" {
		// The D-Bus session connection is made once per process, so the
		// case without a keychain runs in a child process of its own.
		cmd := exec.Command(os.Args[0], "-test.run=^TestKeyringUnavailable$", "-test.count=1")
		cmd.Env = append(os.Environ(), "OAUTHKIT_TEST_NO_KEYCHAIN=1",
			// A session bus address that leads nowhere: no Secret Service.
			"DBUS_SESSION_BUS_ADDRESS=unix:path="+t.TempDir()+"/no-bus")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		return
	}
	isolate(t)
	code, stdout, stderr := runProgram(t, "-cache", "keyring")
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if len(runLines(stdout)) != 0 {
		t.Errorf("runs reported without a keychain:\n%s", stdout)
	}
	for _, want := range []string{"token cache unusable", "scripts/with-keyring.sh"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not contain %q:\n%s", want, stderr)
		}
	}
}

// TestCronInvocations runs the program three times against one server, as
// cron would: the first invocation fetches a token, the others reuse it.
func TestCronInvocations(t *testing.T) {
	tests := []struct {
		name     string
		cacheDir bool // -cache-dir instead of tokencache.DefaultDir()
	}{
		{"default dir", false},
		{"cache dir", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cacheHome := isolate(t)
			srv, keyFile := demotest.RealServer(t, "ES384", "system/Patient.rs")
			args := []string{"-fhir-base", srv.FHIRBase(), "-client-id", "app", "-key", keyFile, "-kid", "k1"}
			dir := filepath.Join(cacheHome, "oauthkit", "tokens")
			if tt.cacheDir {
				dir = filepath.Join(t.TempDir(), "pull-tokens")
				args = append(args, "-cache-dir", dir)
			}
			for i, want := range []string{
				"token fetched; GET Patient: 200 OK, 2 patients\n",
				"token reused from cache; GET Patient: 200 OK, 2 patients\n",
				"token reused from cache; GET Patient: 200 OK, 2 patients\n",
			} {
				code, stdout, stderr := runProgram(t, args...)
				if code != 0 {
					t.Fatalf("invocation %d: exit code %d, stderr:\n%s", i+1, code, stderr)
				}
				if stdout != want {
					t.Errorf("invocation %d: output %q, want %q", i+1, stdout, want)
				}
			}
			if st := srv.Stats(); st.TokenRequests != 1 || st.ResourceRequests != 3 {
				t.Errorf("server saw %d token and %d resource requests, want 1 and 3", st.TokenRequests, st.ResourceRequests)
			}
			if entries, _ := filepath.Glob(filepath.Join(dir, "*.json")); len(entries) != 1 {
				t.Errorf("cache entries in %s: %v, want 1", dir, entries)
			}
		})
	}
}

func TestUsage(t *testing.T) {
	tests := []demotest.UsageTest{
		{Name: "help", Args: []string{"-h"}, WantCode: 0, WantErr: "-cache-dir"},
		{Name: "unknown cache", Args: []string{"-cache", "redis"}, WantCode: 2, WantErr: "-cache must be file or keyring"},
		{Name: "keyring with dir", Args: []string{"-cache", "keyring", "-cache-dir", "/tmp/x"}, WantCode: 2, WantErr: "-cache-dir applies"},
		{Name: "zero runs", Args: []string{"-runs", "0"}, WantCode: 2, WantErr: "-runs"},
		{Name: "runs with a real server", Args: append([]string{"-runs", "2"}, demotest.RealArgs()...), WantCode: 2, WantErr: "demo mode only"},
		{Name: "argument", Args: []string{"extra"}, WantCode: 2, WantErr: "unexpected argument"},
	}
	tests = append(tests, demotest.RegistrationUsageTests()...)
	demotest.CheckUsage(t, run, func(t *testing.T) { isolate(t) }, tests)
}
