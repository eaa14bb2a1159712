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
	"github.com/oauthkit/oauthkit/oauthtest"
)

// demoClientID is the client the embedded demo server registers.
const demoClientID = "epic-backend-demo"

// demoTokenLifetime is how long the embedded demo server's tokens live.
// The tests shorten it to run faster.
var demoTokenLifetime = 3 * time.Second

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// options are the command-line settings.
type options struct {
	demo.Connection // -fhir-base, -client-id, -key, -kid, -scope, -path
	requests        int
	interval        time.Duration
	verbose         bool
}

// run runs the program with args (without the program name) and returns its
// exit code.
func run(args []string, stdout, stderr io.Writer) int {
	opts, err := parseFlags(args, stderr)
	if err != nil {
		return demo.UsageExit("epic-backend", err, stderr)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	logger := demo.NewLogger(stderr, opts.verbose)

	var (
		signer     *jwtassert.Signer
		httpClient = &http.Client{Timeout: 30 * time.Second}
		srv        *oauthtest.Server
	)
	if opts.FHIRBase == "" {
		srv, signer, err = demo.StartServer(demoClientID, demoTokenLifetime)
		if err != nil {
			fmt.Fprintln(stderr, "epic-backend:", err)
			return 1
		}
		defer srv.Close()
		opts.FHIRBase, opts.ClientID = srv.FHIRBase(), demoClientID
		fmt.Fprintf(stdout, "embedded test server at %s, tokens live %s\n", srv.URL, demoTokenLifetime)
	} else if signer, err = opts.LoadSigner(); err != nil {
		fmt.Fprintln(stderr, "epic-backend:", err)
		return 1
	}

	tokenRequests, err := pull(ctx, opts, signer, httpClient, logger, stdout)
	if err != nil {
		fmt.Fprintln(stderr, "epic-backend:", err)
		return 1
	}
	fmt.Fprintf(stdout, "%d %s, %d token %s\n", opts.requests, demo.Plural(opts.requests, "request", "requests"),
		tokenRequests, demo.Plural(tokenRequests, "request", "requests"))
	if srv != nil {
		st := srv.Stats()
		fmt.Fprintf(stdout, "the server counted %d token %s and %d Patient %s\n",
			st.TokenRequests, demo.Plural(st.TokenRequests, "request", "requests"),
			st.ResourceRequests, demo.Plural(st.ResourceRequests, "request", "requests"))
	}
	return 0
}

// parseFlags reads the flags; environment variables supply the defaults.
func parseFlags(args []string, stderr io.Writer) (*options, error) {
	var o options
	fs := flag.NewFlagSet("epic-backend", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o.AddFlags(fs, "an embedded test server")
	fs.IntVar(&o.requests, "requests", 16, "number of requests")
	fs.DurationVar(&o.interval, "interval", 500*time.Millisecond, "pause between requests")
	fs.BoolVar(&o.verbose, "v", false, "log token fetches and cache decisions (never the tokens)")
	if err := demo.Parse(fs, args); err != nil {
		return nil, err
	}
	switch {
	case o.requests < 1:
		return nil, errors.New("-requests must be at least 1")
	case o.interval < 0:
		return nil, errors.New("-interval must not be negative")
	}
	return &o, o.Check()
}

// pull discovers the token endpoint, then GETs the resource opts.requests
// times, printing one line per request. It returns the number of tokens
// obtained.
func pull(ctx context.Context, opts *options, signer *jwtassert.Signer, httpClient *http.Client, logger *slog.Logger, out io.Writer) (int64, error) {
	// DiscoverSMART takes its HTTP client from the context, like
	// golang.org/x/oauth2 does.
	smart, err := oauthclient.DiscoverSMART(context.WithValue(ctx, oauth2.HTTPClient, httpClient), opts.FHIRBase)
	if err != nil {
		return 0, err
	}

	var tokens atomic.Int64
	ts, err := oauthclient.NewTokenSource(oauthclient.Config{
		TokenURL:   smart.TokenEndpoint,
		ClientID:   opts.ClientID,
		Auth:       oauthclient.PrivateKeyJWT{Signer: signer},
		Scopes:     strings.Fields(opts.Scope),
		Origins:    []string{opts.FHIRBase}, // the token goes to this FHIR server only
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

	var seen int64
	for i := 1; i <= opts.requests; i++ {
		if i > 1 {
			if err := demo.Sleep(ctx, opts.interval); err != nil {
				return tokens.Load(), err
			}
		}
		status, patients, err := demo.GetPatients(ctx, client, opts.URL())
		if err != nil {
			return tokens.Load(), fmt.Errorf("request %d: %w", i, err)
		}
		how := "token reused"
		if n := tokens.Load(); n > seen {
			how, seen = "token fetched", n
		}
		if status != http.StatusOK {
			fmt.Fprintf(out, "request %d: %s, %s\n", i, demo.StatusText(status), how)
			return tokens.Load(), fmt.Errorf("request %d: GET %s: %s", i, opts.Path, demo.StatusText(status))
		}
		fmt.Fprintf(out, "request %d: %s, %d patients, %s\n", i, demo.StatusText(status), patients, how)
	}
	return tokens.Load(), nil
}
