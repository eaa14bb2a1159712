package interop

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/oauthkit/oauthkit/oauthclient"
	"github.com/oauthkit/oauthkit/tokencache"
	"github.com/oauthkit/oauthkit/tokencache/keyring"
	"github.com/oauthkit/oauthkit/tokencache/rediscache"
)

// workerEnv names the environment variable that turns the test binary into
// a worker process: it holds a JSON workerSpec. Secrets travel in it, never
// on the command line, where every user of the machine could read them.
const workerEnv = "OAUTHKIT_WORKER"

// workerTimeout is the worker's own hang guard (-test.timeout). Tests kill
// their workers long before it.
const workerTimeout = 120 * time.Second

// Worker modes.
const (
	// modeOnce gets one token and prints "token <fingerprint>".
	modeOnce = "once"
	// modeRotate prints "started", then Iterations times gets a token,
	// uses it and rejects it (rejectCurrent), so that every round refreshes
	// or adopts through the cache under its lock; it prints "done <n>" at
	// the end.
	modeRotate = "rotate"
	// modeHoldLock takes the cache's lock for the source's key, prints
	// "locked" and blocks until killed.
	modeHoldLock = "hold-lock"
)

// workerSpec tells a worker process what to do. It holds secrets (Secret):
// never print it.
type workerSpec struct {
	TokenURL string   `json:"token_url"`
	ClientID string   `json:"client_id"`
	Secret   string   `json:"secret,omitempty"` // client_secret_basic when set; a public client otherwise
	Scopes   []string `json:"scopes,omitempty"`
	Grant    string   `json:"grant"` // "client_credentials" or "refresh_token"
	// Cache is "file:DIR", "keyring:SERVICE" or "redis:ADDR".
	Cache string `json:"cache"`
	// LockDir is the keyring cache's lock directory.
	LockDir string `json:"lock_dir,omitempty"`
	// LockLease is the Redis lock lease; 0 means the default.
	LockLease  time.Duration `json:"lock_lease,omitempty"`
	Iterations int           `json:"iterations,omitempty"`
	Mode       string        `json:"mode"`
	// ClockOffset is added to the worker's clock (Config.Now), as on a
	// host whose clock is that far ahead (negative: behind).
	ClockOffset time.Duration `json:"clock_offset,omitempty"`
}

// config is the TokenSource configuration of a worker. The parent builds
// the same one to find the cache key or to seed the cache.
func (s workerSpec) config(cache tokencache.Cache) oauthclient.Config {
	cfg := oauthclient.Config{
		TokenURL: s.TokenURL,
		ClientID: s.ClientID,
		Scopes:   s.Scopes,
		Cache:    cache,
	}
	if s.Secret != "" {
		cfg.Auth = oauthclient.ClientSecretBasic{Secret: s.Secret}
	}
	if off := s.ClockOffset; off != 0 {
		cfg.Now = func() time.Time { return time.Now().Add(off) }
	}
	if s.Grant == "refresh_token" {
		// The cache holds the refresh token: the parent seeds it.
		cfg.Grant = oauthclient.RefreshToken{}
		cfg.CacheKey = "interop-refresh-user"
	}
	return cfg
}

// openCache opens the cache the spec names. close releases its resources.
func (s workerSpec) openCache() (c tokencache.Cache, close func(), err error) {
	kind, loc, ok := strings.Cut(s.Cache, ":")
	if !ok || loc == "" {
		return nil, nil, fmt.Errorf("worker: bad cache %q", s.Cache)
	}
	switch kind {
	case "file":
		f, err := tokencache.NewFile(loc)
		if err != nil {
			return nil, nil, err
		}
		return f, func() {}, nil
	case "keyring":
		k, err := keyring.NewWithOptions(loc, keyring.Options{LockDir: s.LockDir})
		if err != nil {
			return nil, nil, err
		}
		return k, func() {}, nil
	case "redis":
		return openRedisCache(loc, &rediscache.Options{LockLease: s.LockLease})
	}
	return nil, nil, fmt.Errorf("worker: unknown cache kind %q", kind)
}

// openRedisCache returns a rediscache.Cache on its own Redis client, as a
// separate process would have. close closes the client.
func openRedisCache(addr string, opts *rediscache.Options) (c *rediscache.Cache, close func(), err error) {
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	r, err := rediscache.New(rdb, opts)
	if err != nil {
		rdb.Close()
		return nil, nil, err
	}
	return r, func() { rdb.Close() }, nil
}

// TestWorkerProcess is the child side of the multi-process tests: it does
// nothing unless OAUTHKIT_WORKER holds a spec (see startWorker).
func TestWorkerProcess(t *testing.T) {
	raw := os.Getenv(workerEnv)
	if raw == "" {
		return
	}
	if err := runWorker(raw, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "worker: %v\n", err)
		os.Exit(1)
	}
	// On success the test simply passes (os.Exit(0) inside a test counts as
	// a failure).
}

// runWorker runs one worker. Its errors never contain secrets (those of
// oauthclient and the caches never do).
func runWorker(raw string, out io.Writer) error {
	var spec workerSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		return errors.New("decode spec: invalid JSON") // the spec holds secrets: no details
	}
	cache, closeCache, err := spec.openCache()
	if err != nil {
		return err
	}
	defer closeCache()
	cfg := spec.config(cache)
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ts, err := oauthclient.NewTokenSource(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), workerTimeout)
	defer cancel()

	switch spec.Mode {
	case modeOnce:
		tok, err := ts.Token(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "token %s\n", fingerprint(tok.AccessToken))
		return nil
	case modeRotate:
		fmt.Fprintln(out, "started")
		for i := range spec.Iterations {
			if err := rejectCurrent(ctx, ts); err != nil {
				return fmt.Errorf("iteration %d: %w", i, err)
			}
		}
		fmt.Fprintf(out, "done %d\n", spec.Iterations)
		return nil
	case modeHoldLock:
		l, ok := cache.(tokencache.Locker)
		if !ok {
			return errors.New("cache has no lock")
		}
		if _, err := l.Lock(ctx, ts.CacheKey()); err != nil {
			return err
		}
		fmt.Fprintln(out, "locked")
		<-ctx.Done() // until killed
		return errors.New("still holding the lock at the time limit")
	}
	return fmt.Errorf("unknown mode %q", spec.Mode)
}

// worker is a running worker process.
type worker struct {
	cmd    *exec.Cmd
	lines  chan string // stdout, line by line; closed at EOF
	stderr *lockedBuffer
	done   chan struct{} // closed when the process has exited
	err    error         // exit error; valid after done
}

// startWorker re-executes the test binary as a worker for spec. The worker
// is killed when the test ends if it is still running.
func startWorker(t testing.TB, spec workerSpec) *worker {
	t.Helper()
	raw, err := json.Marshal(spec)
	if err != nil {
		t.Fatalf("encode worker spec: %v", err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestWorkerProcess$", "-test.count=1", "-test.timeout="+workerTimeout.String())
	cmd.Env = append(os.Environ(), workerEnv+"="+string(raw))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("worker stdout: %v", err)
	}
	w := &worker{cmd: cmd, lines: make(chan string, 64), stderr: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stderr = w.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start worker: %v", err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			w.lines <- sc.Text()
		}
		close(w.lines)
		_, _ = io.Copy(io.Discard, stdout)
		w.err = cmd.Wait()
		close(w.done)
	}()
	t.Cleanup(func() {
		w.kill()
	})
	return w
}

// kill sends SIGKILL and waits for the process to exit. Killing an exited
// worker does nothing.
func (w *worker) kill() {
	select {
	case <-w.done:
		return
	default:
	}
	_ = w.cmd.Process.Signal(syscall.SIGKILL)
	<-w.done
}

// waitLine waits for the next stdout line starting with prefix and returns
// the rest of it; it fails the test if the worker ends first or after
// timeout (a hang guard, not a timing assertion).
func (w *worker) waitLine(t testing.TB, prefix string, timeout time.Duration) string {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case line, ok := <-w.lines:
			if !ok {
				<-w.done
				t.Fatalf("worker ended before printing %q: %v\n%s", prefix, w.err, w.stderr.String())
			}
			if rest, found := strings.CutPrefix(line, prefix); found {
				return strings.TrimSpace(rest)
			}
		case <-timer.C:
			t.Fatalf("worker printed no %q within %v\n%s", prefix, timeout, w.stderr.String())
		}
	}
}

// wait waits for the worker to exit and returns its stdout lines not yet
// read, or an error with its stderr if it failed.
func (w *worker) wait(timeout time.Duration) ([]string, error) {
	var out []string
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case line, ok := <-w.lines:
			if ok {
				out = append(out, line)
				continue
			}
			<-w.done
			if w.err != nil {
				return out, fmt.Errorf("worker: %w\n%s", w.err, w.stderr.String())
			}
			return out, nil
		case <-timer.C:
			w.kill()
			return out, fmt.Errorf("worker still running after %v; killed\n%s", timeout, w.stderr.String())
		}
	}
}

// runWorkers starts n workers for spec at once and waits for all of them.
// It returns each worker's output; a worker that failed fails the test
// (without stopping it, so that callers can report what the server saw).
func runWorkers(t testing.TB, n int, spec workerSpec) [][]string {
	t.Helper()
	specs := make([]workerSpec, n)
	for i := range specs {
		specs[i] = spec
	}
	return runWorkerSpecs(t, specs)
}

// runWorkerSpecs is runWorkers with one spec per worker.
func runWorkerSpecs(t testing.TB, specs []workerSpec) [][]string {
	t.Helper()
	ws := make([]*worker, len(specs))
	for i, spec := range specs {
		ws[i] = startWorker(t, spec)
	}
	outs := make([][]string, len(specs))
	errs := make([]error, len(specs))
	var wg sync.WaitGroup
	for i, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], errs[i] = w.wait(workerTimeout)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("worker %d: %v", i, err)
		}
	}
	return outs
}

// tokenHashes returns the hashes printed by "once" workers.
func tokenHashes(t testing.TB, outs [][]string) []string {
	t.Helper()
	var hs []string
	for i, out := range outs {
		found := false
		for _, line := range out {
			if h, ok := strings.CutPrefix(line, "token "); ok {
				hs = append(hs, h)
				found = true
			}
		}
		if !found {
			t.Fatalf("worker %d printed no token hash", i)
		}
	}
	return hs
}
