package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/oauthkit/oauthkit/examples/internal/demotest"
	"github.com/oauthkit/oauthkit/internal/redistest"
)

// clearEnv makes the tests independent of the caller's environment.
func clearEnv(t *testing.T) {
	t.Helper()
	demotest.ClearEnv(t, "REDIS_ADDR", "REDIS_USERNAME", "REDIS_PASSWORD")
}

// runProgram runs the program in-process and returns its exit code and
// output, which must hold no secret.
func runProgram(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return demotest.Run(t, run, args...)
}

var (
	workerLine  = regexp.MustCompile(`^worker (\d+): (\d+) requests?, 200 OK; tokens: (\d+) fetched itself, (\d+) from the fleet cache$`)
	summaryLine = regexp.MustCompile(`^fleet: (\d+) workers?, (\d+) requests?, (\d+) token requests?$`)
)

// fleetOutput is the parsed output of a successful run.
type fleetOutput struct {
	workers       int // worker lines
	requests      int // requests, summed over the worker lines
	fetched       int // tokens fetched, summed over the worker lines
	fromCache     int // tokens taken from the cache, summed over the worker lines
	selfFetchers  int // workers that fetched at least one token
	tokenRequests int // from the summary line
}

// parseOutput checks that every worker made perRequest requests and that
// the summary line agrees with the worker lines.
func parseOutput(t *testing.T, stdout string, workers, perWorker int) fleetOutput {
	t.Helper()
	var o fleetOutput
	summary := false
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		if m := workerLine.FindStringSubmatch(line); m != nil {
			o.workers++
			if id, _ := strconv.Atoi(m[1]); id != o.workers {
				t.Errorf("line %q: want worker %d", line, o.workers)
			}
			n, _ := strconv.Atoi(m[2])
			if n != perWorker {
				t.Errorf("line %q: want %d requests", line, perWorker)
			}
			fetched, _ := strconv.Atoi(m[3])
			fromCache, _ := strconv.Atoi(m[4])
			if fetched+fromCache == 0 {
				t.Errorf("line %q: a worker that made requests used no token", line)
			}
			o.requests += n
			o.fetched += fetched
			o.fromCache += fromCache
			if fetched > 0 {
				o.selfFetchers++
			}
			continue
		}
		if m := summaryLine.FindStringSubmatch(line); m != nil {
			summary = true
			w, _ := strconv.Atoi(m[1])
			n, _ := strconv.Atoi(m[2])
			o.tokenRequests, _ = strconv.Atoi(m[3])
			if w != workers || n != workers*perWorker {
				t.Errorf("summary %q: want %d workers and %d requests", line, workers, workers*perWorker)
			}
		}
	}
	if o.workers != workers || !summary {
		t.Fatalf("%d worker lines (want %d), summary line found: %t; output:\n%s", o.workers, workers, summary, stdout)
	}
	return o
}

// redisKeys returns the token entries and locks in Redis at addr: every key
// but the fence counters, which rediscache keeps after a Delete (they order
// the writes to a key and expire 90 days after their last use; they hold no
// token).
func redisKeys(t *testing.T, addr string) []string {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	all, err := rdb.Keys(context.Background(), "*").Result()
	if err != nil {
		t.Fatalf("KEYS: %v", err)
	}
	var keys []string
	for _, k := range all {
		if !strings.HasSuffix(k, "}:fence") {
			keys = append(keys, k)
		}
	}
	return keys
}

// writeKeyFile writes a file of n random bytes.
func writeKeyFile(t *testing.T, n int) string {
	t.Helper()
	key := make([]byte, n)
	rand.Read(key)
	name := filepath.Join(t.TempDir(), "fleet.key")
	if err := os.WriteFile(name, key, 0o600); err != nil {
		t.Fatal(err)
	}
	return name
}

// shortTokens makes the embedded server issue 2-second tokens until the
// test ends.
func shortTokens(t *testing.T) {
	t.Helper()
	old := demoTokenLifetime
	demoTokenLifetime = 2 * time.Second
	t.Cleanup(func() { demoTokenLifetime = old })
}

// minTokenAge is a lower bound on the age of the fleet's cached token when
// any worker asks for a new one. A token from shortTokens lives 2 s;
// oauthclient stops using it 1 s before it expires (its leeway: a tenth of
// the lifetime, at least 1 s, at most half) and refreshes it in the
// background during the last quarter of its lifetime before that (0.5 s),
// so no worker asks for a new token while the cached one is younger than
// 0.5 s. The bound leaves a margin.
const minTokenAge = 400 * time.Millisecond

func TestDemo(t *testing.T) {
	tests := []struct {
		name       string
		keyFile    bool // -encryption-key-file
		wantCipher string
	}{
		{"clear", false, "entries not encrypted"},
		{"encrypted", true, "entries encrypted (AES-256-GCM)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			shortTokens(t)
			rds := redistest.Start(t)
			// Five requests 250 ms apart, the workers' starts spread
			// over 250 ms: the run outlasts the usable second of the
			// first token.
			const workers, requests = 8, 5
			args := []string{"-redis", rds.Addr, "-workers", strconv.Itoa(workers), "-requests", strconv.Itoa(requests), "-interval", "250ms"}
			if tt.keyFile {
				args = append(args, "-encryption-key-file", writeKeyFile(t, 32))
			}
			start := time.Now()
			code, stdout, stderr := runProgram(t, args...)
			elapsed := time.Since(start)
			if code != 0 {
				t.Fatalf("exit code %d, stderr:\n%s", code, stderr)
			}
			if stderr != "" {
				t.Errorf("stderr:\n%s", stderr)
			}
			if !strings.Contains(stdout, ", tokens live 2s\n") {
				t.Errorf("output does not name the embedded server's 2s tokens:\n%s", stdout)
			}
			if want := "fleet cache: Redis at " + rds.Addr + `, key prefix "oauthkit:", ` + tt.wantCipher; !strings.Contains(stdout, want) {
				t.Errorf("output does not contain %q:\n%s", want, stdout)
			}
			o := parseOutput(t, stdout, workers, requests)

			// One token request per token lifetime for the whole fleet,
			// not one per worker: the number of token requests the
			// server saw is bounded by the run's duration, whatever the
			// number of workers.
			maxTokens := 1 + int(elapsed/minTokenAge)
			if o.tokenRequests < 1 || o.tokenRequests > maxTokens {
				t.Errorf("%d token requests for %d workers in %v, want between 1 and %d; output:\n%s",
					o.tokenRequests, workers, elapsed.Round(time.Millisecond), maxTokens, stdout)
			}
			// Each token was fetched by one worker; the others took it
			// from the cache.
			if o.fetched > o.tokenRequests {
				t.Errorf("workers fetched %d tokens, the server saw %d token requests; output:\n%s", o.fetched, o.tokenRequests, stdout)
			}
			if o.fromCache < workers-o.selfFetchers {
				t.Errorf("%d tokens from the fleet cache, want at least %d; output:\n%s", o.fromCache, workers-o.selfFetchers, stdout)
			}
			t.Logf("%d workers, %d requests, %d token requests in %v", workers, o.requests, o.tokenRequests, elapsed.Round(time.Millisecond))

			// The demo's token is useless afterwards: the demo deletes
			// it. No worker leaves the lock held.
			if keys := redisKeys(t, rds.Addr); len(keys) != 0 {
				t.Errorf("keys left in Redis: %q", keys)
			}
		})
	}
}

// TestVerboseHoldsNoSecret runs the demo with debug logs, which
// runProgram checks for secrets like the rest of the output.
func TestVerboseHoldsNoSecret(t *testing.T) {
	clearEnv(t)
	rds := redistest.Start(t)
	code, _, stderr := runProgram(t, "-v", "-redis", rds.Addr, "-workers", "2", "-requests", "2", "-interval", "0",
		"-encryption-key-file", writeKeyFile(t, 32))
	if code != 0 {
		t.Fatalf("exit code %d, stderr:\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "level=DEBUG") {
		t.Errorf("-v logged no debug line (%d bytes on stderr)", len(stderr))
	}
}

func TestNoRedis(t *testing.T) {
	clearEnv(t)
	// A port nobody listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	l.Close()

	tests := []struct {
		name string
		args []string
		env  string // REDIS_ADDR
	}{
		{"flag", []string{"-redis", addr}, ""},
		{"environment", nil, addr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			t.Setenv("REDIS_ADDR", tt.env)
			code, stdout, stderr := runProgram(t, tt.args...)
			if code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
			if stdout != "" {
				t.Errorf("output without Redis:\n%s", stdout)
			}
			want := fmt.Sprintf("fleet: no Redis at %s: start one with \"redis-server --port %s\" or pass -redis\n", addr, port)
			if !strings.HasPrefix(stderr, want) {
				t.Errorf("stderr:\n%s\nwant it to start with:\n%s", stderr, want)
			}
		})
	}
}

// TestRealServer runs a fleet whose workers all start at once against a
// server issuing one-hour tokens: one worker fetches the token, the others
// take it from Redis. A second fleet finds it there and fetches nothing.
func TestRealServer(t *testing.T) {
	clearEnv(t)
	rds := redistest.Start(t)
	srv, keyFile := demotest.RealServer(t, "ES384", "system/Patient.rs")
	const workers, requests = 6, 3
	args := []string{
		"-redis", rds.Addr, "-workers", strconv.Itoa(workers), "-requests", strconv.Itoa(requests), "-interval", "0",
		"-fhir-base", srv.FHIRBase(), "-client-id", "app", "-key", keyFile, "-kid", "k1",
		"-encryption-key-file", writeKeyFile(t, 32),
	}
	for run, want := range []struct {
		tokenRequests, fetched, fromCache int
	}{
		{1, 1, workers - 1},
		{0, 0, workers},
	} {
		code, stdout, stderr := runProgram(t, args...)
		if code != 0 {
			t.Fatalf("run %d: exit code %d, stderr:\n%s", run+1, code, stderr)
		}
		if stderr != "" {
			t.Errorf("run %d: stderr:\n%s", run+1, stderr)
		}
		o := parseOutput(t, stdout, workers, requests)
		if o.tokenRequests != want.tokenRequests || o.fetched != want.fetched || o.fromCache != want.fromCache {
			t.Errorf("run %d: %d token requests, %d tokens fetched, %d from the fleet cache; want %d, %d, %d; output:\n%s",
				run+1, o.tokenRequests, o.fetched, o.fromCache, want.tokenRequests, want.fetched, want.fromCache, stdout)
		}
	}
	if st := srv.Stats(); st.TokenRequests != 1 || st.ResourceRequests != 2*workers*requests {
		t.Errorf("server saw %d token and %d resource requests, want 1 and %d", st.TokenRequests, st.ResourceRequests, 2*workers*requests)
	}
	// A real fleet's token stays in Redis for the next run; the lock
	// is free.
	if keys := redisKeys(t, rds.Addr); len(keys) != 1 || strings.HasSuffix(keys[0], ":lock") {
		t.Errorf("keys in Redis: %q, want one token entry", keys)
	}
}

func TestNon200ExitsOne(t *testing.T) {
	clearEnv(t)
	rds := redistest.Start(t)
	// The client may only read Observations: GET Patient is forbidden.
	srv, keyFile := demotest.RealServer(t, "ES384", "system/Observation.rs")
	code, stdout, stderr := runProgram(t, "-redis", rds.Addr, "-workers", "2", "-requests", "2", "-interval", "0",
		"-fhir-base", srv.FHIRBase(), "-client-id", "app", "-key", keyFile, "-kid", "k1", "-scope", "system/Observation.rs")
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	for _, want := range []string{"worker 1: 0 requests, then failed\n", "worker 2: 0 requests, then failed\n", "fleet: 2 workers, 0 requests, 1 token request\n"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output does not contain %q:\n%s", want, stdout)
		}
	}
	if !strings.Contains(stderr, "fleet: worker 1: request 1: GET Patient: 403 Forbidden") {
		t.Errorf("stderr does not name the status:\n%s", stderr)
	}
}

func TestUsage(t *testing.T) {
	tests := []demotest.UsageTest{
		{Name: "help", Args: []string{"-h"}, WantCode: 0, WantErr: "-encryption-key-file"},
		{Name: "zero workers", Args: []string{"-workers", "0"}, WantCode: 2, WantErr: "-workers"},
		{Name: "zero requests", Args: []string{"-requests", "0"}, WantCode: 2, WantErr: "-requests"},
		{Name: "negative interval", Args: []string{"-interval", "-1s"}, WantCode: 2, WantErr: "-interval"},
		{Name: "empty redis", Args: []string{"-redis", ""}, WantCode: 2, WantErr: "-redis"},
		{Name: "brace in prefix", Args: []string{"-key-prefix", "a{b}:"}, WantCode: 2, WantErr: "-key-prefix"},
		{Name: "argument", Args: []string{"extra"}, WantCode: 2, WantErr: "unexpected argument"},
		{Name: "unknown flag", Args: []string{"-nope"}, WantCode: 2, WantErr: "-nope"},
		{Name: "missing encryption key", Args: append([]string{"-encryption-key-file", filepath.Join(t.TempDir(), "missing.key")}, demotest.RealArgs()...), WantCode: 1, WantErr: "missing.key"},
		{Name: "short encryption key", Args: []string{"-encryption-key-file", writeKeyFile(t, 16)}, WantCode: 1, WantErr: "holds 16 bytes, want 32"},
		{Name: "long encryption key", Args: []string{"-encryption-key-file", writeKeyFile(t, 1<<16)}, WantCode: 1, WantErr: "holds more than 32 bytes, want 32"},
	}
	tests = append(tests, demotest.RegistrationUsageTests()...)
	demotest.CheckUsage(t, run, clearEnv, tests)
}
