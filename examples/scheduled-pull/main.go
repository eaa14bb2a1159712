// Command scheduled-pull shows a data pull started by cron every few minutes
// that reuses the token an earlier run obtained, instead of asking the token
// endpoint for a new one every time (Epic and others rate-limit token
// requests). The token lives in a persistent cache: a tokencache.File in the
// user's cache directory, or the OS keychain with -cache keyring.
//
// Each run does what a new process does: it opens the cache, builds a new
// oauthclient.TokenSource over it and GETs {FHIR base}/Patient. The
// TokenSource finds the earlier run's token in the cache and uses it while it
// is valid; the file cache's lock also keeps two overlapping runs from both
// fetching a token.
//
// Run without arguments, it starts an embedded test authorization server
// (package oauthtest) and runs the job three times in this one process, each
// time with a new cache handle and a new TokenSource, exactly as three cron
// invocations would; the server's token request counter shows that only the
// first run asked for a token:
//
//	$ go run ./examples/scheduled-pull
//	embedded test server at http://127.0.0.1:38371; each run is what one cron invocation does
//	token cache: files in /tmp/scheduled-pull-55600101 (temporary)
//	run 1: token fetched; GET Patient: 200 OK, 2 patients
//	run 2: token reused from cache; GET Patient: 200 OK, 2 patients
//	run 3: token reused from cache; GET Patient: 200 OK, 2 patients
//	3 runs, 1 token request
//
// -runs changes the number of runs; -cache-dir the cache directory (default a
// temporary one; "default" for tokencache.DefaultDir()); -cache keyring uses
// the OS keychain (on a Linux machine without a desktop session, run it under
// scripts/with-keyring.sh).
//
// Against a real server it runs the job once, which is what a crontab such
// as this one does every five minutes:
//
//	FHIR_BASE=https://fhir.example.org/api/FHIR/R4
//	CLIENT_ID=0oa1b2c3
//	PRIVATE_KEY_FILE=/etc/pull/private.pem
//	KEY_ID=key-2025
//	*/5 * * * * /usr/local/bin/scheduled-pull
//
// The flags and environment variables are those of examples/epic-backend:
// -fhir-base (FHIR_BASE), -client-id (CLIENT_ID), -key (PRIVATE_KEY_FILE),
// -kid (KEY_ID) and -scope (SCOPES). The token is cached in
// tokencache.DefaultDir() unless -cache-dir or -cache keyring says otherwise;
// the output says whether the token was fetched or reused (the TokenSource's
// OnTokenChange hook is called only when a token is fetched).
//
// The program never prints tokens, assertions or keys. It exits 0 on success,
// 1 on failure and 2 on a usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"

	"github.com/oauthkit/oauthkit/examples/internal/demo"
	"github.com/oauthkit/oauthkit/jwtassert"
	"github.com/oauthkit/oauthkit/oauthclient"
	"github.com/oauthkit/oauthkit/tokencache"
	"github.com/oauthkit/oauthkit/tokencache/keyring"
)

// keyringService is the OS keychain service name of -cache keyring.
const keyringService = "oauthkit-scheduled-pull"

// demoClientID is the client ID at the embedded demo server.
const demoClientID = "scheduled-pull-demo"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// options are the command-line settings.
type options struct {
	demo.Connection // -fhir-base, -client-id, -key, -kid, -scope, -path
	cache           string
	cacheDir        string
	runs            int
	verbose         bool
}

// run runs the program with args (without the program name) and returns its
// exit code.
func run(args []string, stdout, stderr io.Writer) int {
	opts, err := parseFlags(args, stderr)
	if err != nil {
		return demo.UsageExit("scheduled-pull", err, stderr)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	j := &job{
		Connection: opts.Connection,
		httpClient: &http.Client{Timeout: 30 * time.Second},
		logger:     demo.NewLogger(stderr, opts.verbose),
	}
	if opts.FHIRBase == "" {
		err = runDemo(ctx, opts, j, stdout)
	} else {
		err = once(ctx, opts, j, stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "scheduled-pull:", err)
		if errors.Is(err, keyring.ErrUnavailable) {
			fmt.Fprintln(stderr, "scheduled-pull: on a Linux machine without a desktop session, try:\n\tscripts/with-keyring.sh go run ./examples/scheduled-pull -cache keyring")
		}
		return 1
	}
	return 0
}

// parseFlags reads the flags; environment variables supply the defaults.
func parseFlags(args []string, stderr io.Writer) (*options, error) {
	var o options
	fs := flag.NewFlagSet("scheduled-pull", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o.AddFlags(fs, "demo mode with an embedded test server")
	fs.StringVar(&o.cache, "cache", "file", "token cache: file or keyring (the OS keychain)")
	fs.StringVar(&o.cacheDir, "cache-dir", "", "`directory` of the file cache; \"default\": tokencache.DefaultDir() (default: a temporary directory in demo mode, tokencache.DefaultDir() otherwise)")
	fs.IntVar(&o.runs, "runs", 3, "number of runs in demo mode")
	fs.BoolVar(&o.verbose, "v", false, "log cache hits and token fetches (never the tokens)")
	if err := demo.Parse(fs, args); err != nil {
		return nil, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case o.cache != "file" && o.cache != "keyring":
		return nil, fmt.Errorf("-cache must be file or keyring, not %q", o.cache)
	case o.cache == "keyring" && o.cacheDir != "":
		return nil, errors.New("-cache-dir applies to -cache file only")
	case o.runs < 1:
		return nil, errors.New("-runs must be at least 1")
	case o.FHIRBase != "" && set["runs"]:
		return nil, errors.New("-runs applies to the demo mode only: with -fhir-base the program runs once, as cron would start it")
	}
	return &o, o.Check()
}

// runDemo runs the job opts.runs times against an embedded test server.
func runDemo(ctx context.Context, opts *options, j *job, out io.Writer) error {
	srv, signer, err := demo.StartServer(demoClientID, 0)
	if err != nil {
		return err
	}
	defer srv.Close()
	j.signer, j.FHIRBase, j.ClientID = signer, srv.FHIRBase(), demoClientID
	fmt.Fprintf(out, "embedded test server at %s; each run is what one cron invocation does\n", srv.URL)

	newCache, desc, tempDir, err := chooseCache(opts, true)
	if err != nil {
		return err
	}
	j.newCache = newCache
	fmt.Fprintf(out, "token cache: %s\n", desc)
	// The demo server's port changes every time, and with it the cache
	// key: its token is useless after the demo. A temporary directory is
	// removed; in a lasting store the entry is deleted.
	cleanup := demo.DeleteEntry
	if tempDir != "" {
		defer os.RemoveAll(tempDir)
		cleanup = func(tokencache.Cache, string) {}
	}

	var lastKey string
	var lastCache tokencache.Cache
	defer func() {
		if lastCache != nil {
			cleanup(lastCache, lastKey)
		}
	}()
	for i := 1; i <= opts.runs; i++ {
		before := srv.Stats().TokenRequests
		res, err := j.run(ctx)
		if err != nil {
			return fmt.Errorf("run %d: %w", i, err)
		}
		lastCache, lastKey = res.cache, res.cacheKey
		// The server's counter, not the client, tells what happened.
		how := "token reused from cache"
		if srv.Stats().TokenRequests > before {
			how = "token fetched"
		}
		fmt.Fprintf(out, "run %d: %s; GET %s: %s\n", i, how, j.Path, res.summary)
	}
	n := srv.Stats().TokenRequests
	fmt.Fprintf(out, "%d runs, %d token %s\n", opts.runs, n, demo.Plural(n, "request", "requests"))
	return nil
}

// once runs the job once against a real server: one cron invocation.
func once(ctx context.Context, opts *options, j *job, out io.Writer) error {
	var err error
	j.signer, err = opts.LoadSigner()
	if err != nil {
		return err
	}
	if j.newCache, _, _, err = chooseCache(opts, false); err != nil {
		return err
	}
	res, err := j.run(ctx)
	if err != nil {
		return err
	}
	how := "token reused from cache"
	if res.fetched {
		how = "token fetched"
	}
	fmt.Fprintf(out, "%s; GET %s: %s\n", how, j.Path, res.summary)
	return nil
}

// chooseCache returns the constructor of the token cache that -cache and
// -cache-dir select, and its description. Without -cache-dir the file cache
// is in tokencache.DefaultDir(), or, in demo mode, in a new temporary
// directory, returned as tempDir for the caller to remove.
func chooseCache(opts *options, demoMode bool) (newCache func() (tokencache.Cache, error), desc, tempDir string, err error) {
	switch {
	case opts.cache == "keyring":
		newCache = func() (tokencache.Cache, error) { return keyring.New(keyringService), nil }
		return newCache, fmt.Sprintf("OS keychain, service %q", keyringService), "", nil
	case opts.cacheDir == "" && demoMode:
		dir, err := os.MkdirTemp("", "scheduled-pull-")
		if err != nil {
			return nil, "", "", err
		}
		return fileCache(dir), "files in " + dir + " (temporary)", dir, nil
	}
	dir := opts.cacheDir
	if dir == "" || dir == "default" {
		if dir, err = tokencache.DefaultDir(); err != nil {
			return nil, "", "", err
		}
	}
	return fileCache(dir), "files in " + dir, "", nil
}

func fileCache(dir string) func() (tokencache.Cache, error) {
	return func() (tokencache.Cache, error) { return tokencache.NewFile(dir) }
}

// job is what one invocation of the scheduled pull needs.
type job struct {
	demo.Connection // where to pull from, as whom
	signer          *jwtassert.Signer
	httpClient      *http.Client
	logger          *slog.Logger
	newCache        func() (tokencache.Cache, error)
}

// result is the outcome of one run.
type result struct {
	fetched  bool   // a token was fetched (OnTokenChange was called)
	summary  string // "200 OK, 2 patients"
	cache    tokencache.Cache
	cacheKey string
}

// run is one invocation, as a new process would do it: open the cache,
// build a TokenSource over it, GET the resource.
func (j *job) run(ctx context.Context) (*result, error) {
	cache, err := j.newCache()
	if err != nil {
		return nil, err
	}
	smart, err := oauthclient.DiscoverSMART(context.WithValue(ctx, oauth2.HTTPClient, j.httpClient), j.FHIRBase)
	if err != nil {
		return nil, err
	}
	var fetched atomic.Bool
	ts, err := oauthclient.NewTokenSource(oauthclient.Config{
		TokenURL:   smart.TokenEndpoint,
		ClientID:   j.ClientID,
		Auth:       oauthclient.PrivateKeyJWT{Signer: j.signer},
		Scopes:     strings.Fields(j.Scope),
		Cache:      cache,
		Origins:    []string{j.FHIRBase}, // the token goes to this FHIR server only
		HTTPClient: j.httpClient,
		Logger:     j.logger,
		// Called only when a token is fetched, never for one found in
		// the cache. The token is a secret: note the event, never print it.
		OnTokenChange: func(*oauth2.Token) { fetched.Store(true) },
	})
	if err != nil {
		return nil, err
	}
	// A process exits after its run: Close lets a token request in flight
	// finish, so that its token is stored and the cache lock released.
	defer ts.Close()
	// A cache that cannot be read would not stop the pull (the TokenSource
	// logs the failure and fetches a token), but every run would then ask
	// for a new token: fail clearly instead.
	if err := checkCache(ctx, cache, ts.CacheKey()); err != nil {
		return nil, err
	}

	status, patients, err := demo.GetPatients(ctx, ts.Client(j.httpClient), j.URL())
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", j.Path, demo.StatusText(status))
	}
	return &result{
		fetched:  fetched.Load(),
		summary:  fmt.Sprintf("%s, %d %s", demo.StatusText(status), patients, demo.Plural(patients, "patient", "patients")),
		cache:    cache,
		cacheKey: ts.CacheKey(),
	}, nil
}

// checkCache reads key from cache, bounded in time (a locked keychain may
// wait for an unlock prompt), and reports an error unless the entry is there,
// missing or unreadable (which the TokenSource treats as a miss).
func checkCache(ctx context.Context, cache tokencache.Cache, key string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err := cache.Load(ctx, key)
	if err == nil || errors.Is(err, tokencache.ErrNotFound) || errors.Is(err, tokencache.ErrCorrupt) {
		return nil
	}
	return fmt.Errorf("token cache unusable: %w", err)
}
