// Command epic-backend shows a SMART Backend Services client, the way Epic
// and other FHIR servers expect server-to-server integrations to connect:
// the client authenticates with a JWT signed by its private key
// (private_key_jwt, RS384), gets an access token with the client credentials
// grant, and uses it until it expires, when it quietly gets another one.
//
// Run without arguments, it starts an embedded test authorization server
// (package oauthtest) whose tokens live 3 seconds, generates an RS384 key,
// registers the key's public JWK Set with the server (the document you would
// serve at Epic's "JWK Set URL"), and reads Patients every 500 ms for 8
// seconds. Each line says whether the request needed a new token:
//
//	$ go run ./examples/epic-backend
//	embedded test server at http://127.0.0.1:44211, tokens live 3s
//	request 1: 200 OK, 2 patients, token fetched
//	request 2: 200 OK, 2 patients, token reused
//	…
//	request 16: 200 OK, 2 patients, token reused
//	16 requests, 5 token requests
//	the server counted 5 token requests and 16 Patient requests
//
// -requests and -interval change the number of requests and the pause
// between them; -v logs each token request and cache decision to stderr.
//
// The program never waits for a token inside a token's lifetime: a token is
// refreshed in the background shortly before it expires (see the package
// documentation of oauthclient, "Token lifecycle"), so the line that reports
// a fetch may belong to a request that still carried the previous token.
//
// Against a real server, give its FHIR base URL and your client
// registration, as flags or environment variables:
//
//	go run ./examples/epic-backend \
//		-fhir-base https://fhir.example.org/api/FHIR/R4 \
//		-client-id 0oa1b2c3 -key private.pem -kid key-2025 \
//		-scope "system/Patient.rs" -path "Patient?family=Smith"
//
// FHIR_BASE, CLIENT_ID, PRIVATE_KEY_FILE, KEY_ID and SCOPES (space-separated)
// stand for -fhir-base, -client-id, -key, -kid and -scope. The token endpoint
// is discovered from the server's .well-known/smart-configuration.
//
// The program never prints tokens, assertions or keys. It exits 0 when every
// request was answered 200 OK, 1 otherwise, and 2 on a usage error.
package main

import (
	"context"
	"encoding/json"
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

	"github.com/oauthkit/oauthkit/jwtassert"
	"github.com/oauthkit/oauthkit/oauthclient"
	"github.com/oauthkit/oauthkit/oauthtest"
)

// Settings of the embedded demo server.
const (
	demoClientID      = "epic-backend-demo"
	demoKeyID         = "demo-key-1"
	demoTokenLifetime = 3 * time.Second
)

// maxBundleSize bounds the FHIR response read to count its Patients.
const maxBundleSize = 32 << 20

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// options are the command-line settings.
type options struct {
	fhirBase string
	clientID string
	keyFile  string
	keyID    string
	scope    string
	path     string
	requests int
	interval time.Duration
	verbose  bool
}

// run runs the program with args (without the program name) and returns its
// exit code.
func run(args []string, stdout, stderr io.Writer) int {
	opts, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "epic-backend:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	logLevel := slog.LevelWarn
	if opts.verbose {
		logLevel = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: logLevel}))

	var (
		signer     *jwtassert.Signer
		httpClient = &http.Client{Timeout: 30 * time.Second}
		srv        *oauthtest.Server
	)
	if opts.fhirBase == "" {
		srv, signer, err = startDemoServer()
		if err != nil {
			fmt.Fprintln(stderr, "epic-backend:", err)
			return 1
		}
		defer srv.Close()
		opts.fhirBase, opts.clientID = srv.FHIRBase(), demoClientID
		fmt.Fprintf(stdout, "embedded test server at %s, tokens live %s\n", srv.URL, demoTokenLifetime)
	} else {
		signer, err = jwtassert.LoadPEMFile(opts.keyFile, jwtassert.Options{KeyID: opts.keyID})
		if err != nil {
			fmt.Fprintln(stderr, "epic-backend:", err)
			return 1
		}
	}

	tokenRequests, err := pull(ctx, opts, signer, httpClient, logger, stdout)
	if err != nil {
		fmt.Fprintln(stderr, "epic-backend:", err)
		return 1
	}
	fmt.Fprintf(stdout, "%d %s, %d token %s\n", opts.requests, plural(int64(opts.requests), "request", "requests"),
		tokenRequests, plural(tokenRequests, "request", "requests"))
	if srv != nil {
		st := srv.Stats()
		fmt.Fprintf(stdout, "the server counted %d token %s and %d Patient %s\n",
			st.TokenRequests, plural(int64(st.TokenRequests), "request", "requests"),
			st.ResourceRequests, plural(int64(st.ResourceRequests), "request", "requests"))
	}
	return 0
}

// parseFlags reads the flags; environment variables supply the defaults.
func parseFlags(args []string, stderr io.Writer) (*options, error) {
	var o options
	fs := flag.NewFlagSet("epic-backend", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.fhirBase, "fhir-base", os.Getenv("FHIR_BASE"), "FHIR base `URL` (env FHIR_BASE); empty: an embedded test server")
	fs.StringVar(&o.clientID, "client-id", os.Getenv("CLIENT_ID"), "client `ID` of the backend app (env CLIENT_ID)")
	fs.StringVar(&o.keyFile, "key", os.Getenv("PRIVATE_KEY_FILE"), "private key `file`, PEM (env PRIVATE_KEY_FILE)")
	fs.StringVar(&o.keyID, "kid", os.Getenv("KEY_ID"), "key `ID` of the key in the registered JWK Set (env KEY_ID)")
	fs.StringVar(&o.scope, "scope", envOr("SCOPES", "system/Patient.rs"), "space-separated `scopes` (env SCOPES)")
	fs.StringVar(&o.path, "path", "Patient", "resource `path` to GET, relative to the FHIR base")
	fs.IntVar(&o.requests, "requests", 16, "number of requests")
	fs.DurationVar(&o.interval, "interval", 500*time.Millisecond, "pause between requests")
	fs.BoolVar(&o.verbose, "v", false, "log token fetches and cache decisions (never the tokens)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.requests < 1 {
		return nil, errors.New("-requests must be at least 1")
	}
	if o.interval < 0 {
		return nil, errors.New("-interval must not be negative")
	}
	if o.fhirBase != "" {
		for _, req := range []struct{ value, name string }{
			{o.clientID, "-client-id (or CLIENT_ID)"},
			{o.keyFile, "-key (or PRIVATE_KEY_FILE)"},
			{o.keyID, "-kid (or KEY_ID)"},
		} {
			if req.value == "" {
				return nil, fmt.Errorf("%s is required with -fhir-base", req.name)
			}
		}
	}
	return &o, nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// startDemoServer starts the embedded authorization server and registers a
// backend client with a freshly generated RS384 key, as an administrator
// would register an app at Epic.
func startDemoServer() (*oauthtest.Server, *jwtassert.Signer, error) {
	key, err := jwtassert.GenerateKey("RS384")
	if err != nil {
		return nil, nil, err
	}
	signer, err := jwtassert.NewSigner(key, jwtassert.Options{KeyID: demoKeyID})
	if err != nil {
		return nil, nil, err
	}
	// The public JWK Set: what Epic fetches from the app's "JWK Set URL".
	jwks, err := jwtassert.JWKS(signer)
	if err != nil {
		return nil, nil, err
	}
	srv := oauthtest.NewServer()
	srv.SetTokenLifetime(demoTokenLifetime)
	err = srv.RegisterClient(oauthtest.Client{
		ID:         demoClientID,
		JWKS:       jwks,
		AuthMethod: oauthtest.AuthPrivateKeyJWT,
		Scopes:     []string{"system/Patient.rs"},
	})
	if err != nil {
		srv.Close()
		return nil, nil, err
	}
	return srv, signer, nil
}

// pull discovers the token endpoint, then GETs the resource opts.requests
// times, printing one line per request. It returns the number of tokens
// obtained.
func pull(ctx context.Context, opts *options, signer *jwtassert.Signer, httpClient *http.Client, logger *slog.Logger, out io.Writer) (int64, error) {
	// DiscoverSMART takes its HTTP client from the context, like
	// golang.org/x/oauth2 does.
	smart, err := oauthclient.DiscoverSMART(context.WithValue(ctx, oauth2.HTTPClient, httpClient), opts.fhirBase)
	if err != nil {
		return 0, err
	}

	var tokens atomic.Int64
	ts, err := oauthclient.NewTokenSource(oauthclient.Config{
		TokenURL:   smart.TokenEndpoint,
		ClientID:   opts.clientID,
		Auth:       oauthclient.PrivateKeyJWT{Signer: signer},
		Scopes:     strings.Fields(opts.scope),
		HTTPClient: httpClient,
		Logger:     logger,
		// Called once for every token obtained. The token itself is a
		// secret: count it, never print it.
		OnTokenChange: func(*oauth2.Token) { tokens.Add(1) },
	})
	if err != nil {
		return 0, err
	}
	// From here on, client is an ordinary *http.Client: it gets, reuses
	// and refreshes tokens on its own.
	client := ts.Client(httpClient)
	target := strings.TrimSuffix(opts.fhirBase, "/") + "/" + strings.TrimPrefix(opts.path, "/")

	var seen int64
	for i := 1; i <= opts.requests; i++ {
		if i > 1 {
			if err := sleep(ctx, opts.interval); err != nil {
				return tokens.Load(), err
			}
		}
		status, patients, err := getPatients(ctx, client, target)
		if err != nil {
			return tokens.Load(), fmt.Errorf("request %d: %w", i, err)
		}
		how := "token reused"
		if n := tokens.Load(); n > seen {
			how, seen = "token fetched", n
		}
		if status != http.StatusOK {
			fmt.Fprintf(out, "request %d: %s, %s\n", i, statusText(status), how)
			return tokens.Load(), fmt.Errorf("request %d: GET %s: %s", i, opts.path, statusText(status))
		}
		fmt.Fprintf(out, "request %d: %s, %d patients, %s\n", i, statusText(status), patients, how)
	}
	return tokens.Load(), nil
}

// getPatients GETs url and counts the Patient resources of the search
// Bundle (or 1 for a single Patient) in a 200 answer.
func getPatients(ctx context.Context, client *http.Client, url string) (status, patients int, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Accept", "application/fhir+json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxBundleSize))
		return resp.StatusCode, 0, nil
	}
	var body struct {
		ResourceType string `json:"resourceType"`
		Entry        []struct {
			Resource struct {
				ResourceType string `json:"resourceType"`
			} `json:"resource"`
		} `json:"entry"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxBundleSize)).Decode(&body); err != nil {
		return resp.StatusCode, 0, fmt.Errorf("reading the FHIR response: %w", err)
	}
	if body.ResourceType == "Patient" {
		return resp.StatusCode, 1, nil
	}
	for _, e := range body.Entry {
		if e.Resource.ResourceType == "Patient" {
			patients++
		}
	}
	return resp.StatusCode, patients, nil
}

func statusText(code int) string {
	return fmt.Sprintf("%d %s", code, http.StatusText(code))
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
