// Command bulk-export runs a FHIR Bulk Data export (the $export operation)
// from kick-off to the last downloaded file, as a SMART Backend Services
// client: private_key_jwt, client credentials, and a token bound to the
// FHIR server's origin, so that the files, which a real server keeps on
// another host (a storage bucket with signed URLs), are fetched without it.
//
// Run without arguments, it starts an embedded test server (package
// oauthtest) whose tokens live 4 seconds, whose export takes a few polls,
// throttles one of them with 429 Too Many Requests, and revokes the token
// of one poll mid-export; its files are served by a second server that
// refuses any request carrying an Authorization header:
//
//	$ go run ./examples/bulk-export
//	embedded test server at http://127.0.0.1:45151, files on http://127.0.0.1:39047, tokens live 4s
//	kick-off: 202 Accepted, status at http://127.0.0.1:45151/fhir/bulkstatus/4KpTqoX8zG4qGJ6Z
//	poll 1: 429 Too Many Requests, Retry-After "1": wait 1s
//	poll 2: 202 Accepted (in progress: step 1 of 4), Retry-After "1": wait 1s
//	poll 3: 202 Accepted (in progress: step 2 of 4), Retry-After "Mon, 30 Nov 2026 17:53:24 GMT": wait 1s
//	poll 4: 202 Accepted (in progress: step 3 of 4), Retry-After "1": wait 1s
//	poll 5: 200 OK, manifest of 6 files
//	Patient-1.ndjson: 3 Patient
//	Patient-2.ndjson: 3 Patient
//	Observation-1.ndjson: 3 Observation
//	Observation-2.ndjson: 3 Observation
//	error errors.ndjson: 1 OperationOutcome
//	deleted deleted.ndjson: 1 Bundle
//	deleted the export: 202 Accepted
//	4 files, 12 resources, 1 error, 1 deleted; 2 token requests, 1 401 answer
//	the storage host saw 6 requests, 0 with an Authorization header
//
// The 401 is the revoked token: the client's Transport drops it, gets a
// new one and sends the poll again; the program only counts it.
//
// Against a real server, give its FHIR base URL and your client
// registration, as flags or environment variables (FHIR_BASE, CLIENT_ID,
// PRIVATE_KEY_FILE, KEY_ID, SCOPES, TOKEN_URL):
//
//	go run ./examples/bulk-export \
//		-fhir-base https://fhir.example.org/api/FHIR/R4 \
//		-client-id 0oa1b2c3 -key private.pem -kid key-2025 \
//		-scope "system/*.rs" -group 12345 -type Patient,Observation
//
// Without -token-url the token endpoint is discovered from the server's
// .well-known/smart-configuration. -type sends the kick-off as a POST with
// a Parameters body; -workers sets the number of parallel downloads. A
// server whose manifest says requiresAccessToken: true gets the token only
// for files on the FHIR server's own origin.
//
// The status URL is polled as the server's Retry-After asks (seconds or an
// HTTP-date), never faster than once a second nor slower than once a
// minute. The program never prints tokens, assertions, keys or URL queries
// (signed file URLs carry their signature there). It exits 0 when every
// file was downloaded, 1 otherwise, and 2 on a usage error.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
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

const (
	demoClientID      = "bulk-export-demo"
	demoTokenLifetime = 4 * time.Second
	maxLine           = 64 << 20    // longest NDJSON line (one resource) read
	maxWait           = time.Minute // cap on a server's Retry-After
	maxFailures       = 5           // consecutive 429 and 5xx answers tolerated
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// options are the command-line settings.
type options struct {
	demo.Connection
	tokenURL, group, types string
	workers                int
	verbose                bool
}

// counts are what the program reports at the end.
type counts struct{ files, resources, errors, deleted int }

// run runs the program with args (without the program name) and returns
// its exit code.
func run(args []string, stdout, stderr io.Writer) int {
	opts, err := parseFlags(args, stderr)
	if err != nil {
		return demo.UsageExit("bulk-export", err, stderr)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := runExport(ctx, opts, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "bulk-export:", err)
		return 1
	}
	return 0
}

// runExport sets up the client (and the embedded server without
// -fhir-base), runs the export and prints the totals.
func runExport(ctx context.Context, opts *options, stdout, stderr io.Writer) error {
	var signer *jwtassert.Signer
	var srv *oauthtest.Server
	var err error
	if opts.FHIRBase == "" {
		if srv, signer, err = demo.StartServer(demoClientID, demoTokenLifetime); err != nil {
			return err
		}
		defer srv.Close()
		if err = srv.SetBulkOptions(oauthtest.BulkOptions{Polls: 3, Throttle: http.StatusTooManyRequests, Errors: 1, Deleted: 1, RejectTokenAt: 4}); err != nil {
			return err
		}
		opts.FHIRBase, opts.ClientID = srv.FHIRBase(), demoClientID
		fmt.Fprintf(stdout, "embedded test server at %s, files on %s, tokens live %s\n", srv.URL, srv.StorageURL(), demoTokenLifetime)
	} else if signer, err = opts.LoadSigner(); err != nil {
		return err
	}

	// The OAuth part: a token source bound to the FHIR server's origin,
	// and one *http.Client for everything. Requests to any other origin
	// (the file storage) go out without the token.
	tokenURL := opts.tokenURL
	if tokenURL == "" {
		smart, err := oauthclient.DiscoverSMART(ctx, opts.FHIRBase)
		if err != nil {
			return err
		}
		tokenURL = smart.TokenEndpoint
	}
	var tokens atomic.Int64
	ts, err := oauthclient.NewTokenSource(oauthclient.Config{
		TokenURL:      tokenURL,
		ClientID:      opts.ClientID,
		Auth:          oauthclient.PrivateKeyJWT{Signer: signer},
		Scopes:        strings.Fields(opts.Scope),
		Origins:       []string{opts.FHIRBase},
		Logger:        demo.NewLogger(stderr, opts.verbose),
		OnTokenChange: func(*oauth2.Token) { tokens.Add(1) }, // count it; never print it
	})
	if err != nil {
		return err
	}
	defer ts.Close()
	unauthorized := &count401{}
	client := ts.Client(&http.Client{Transport: unauthorized})

	n, err := export(ctx, client, opts, stdout)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d files, %d resources, %d %s, %d deleted; %d token %s, %d 401 %s\n",
		n.files, n.resources, n.errors, demo.Plural(n.errors, "error", "errors"), n.deleted,
		tokens.Load(), demo.Plural(tokens.Load(), "request", "requests"),
		unauthorized.n.Load(), demo.Plural(unauthorized.n.Load(), "answer", "answers"))
	if srv != nil {
		st := srv.BulkStats()
		fmt.Fprintf(stdout, "the storage host saw %d requests, %d with an Authorization header\n", st.StorageRequests, st.StorageWithAuthorization)
	}
	return nil
}

// parseFlags reads the flags; environment variables supply the defaults.
func parseFlags(args []string, stderr io.Writer) (*options, error) {
	var o options
	fs := flag.NewFlagSet("bulk-export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.FHIRBase, "fhir-base", os.Getenv("FHIR_BASE"), "FHIR base `URL` (env FHIR_BASE); empty: an embedded test server")
	fs.StringVar(&o.ClientID, "client-id", os.Getenv("CLIENT_ID"), "client `ID` of the backend app (env CLIENT_ID)")
	fs.StringVar(&o.KeyFile, "key", os.Getenv("PRIVATE_KEY_FILE"), "private key `file`, PEM (env PRIVATE_KEY_FILE)")
	fs.StringVar(&o.KeyID, "kid", os.Getenv("KEY_ID"), "key `ID` of the key in the registered JWK Set (env KEY_ID)")
	fs.StringVar(&o.Scope, "scope", demo.EnvOr("SCOPES", "system/Patient.rs"), "space-separated `scopes` (env SCOPES)")
	fs.StringVar(&o.tokenURL, "token-url", os.Getenv("TOKEN_URL"), "token endpoint `URL` (env TOKEN_URL); empty: SMART discovery")
	fs.StringVar(&o.group, "group", "", "export the Group with this `id`; empty: a system export")
	fs.StringVar(&o.types, "type", "", "comma-separated resource `types`, sent as a POST Parameters body")
	fs.IntVar(&o.workers, "workers", 4, "parallel downloads")
	fs.BoolVar(&o.verbose, "v", false, "log token fetches and cache decisions (never the tokens)")
	if err := demo.Parse(fs, args); err != nil {
		return nil, err
	}
	if o.workers < 1 {
		return nil, errors.New("-workers must be at least 1")
	}
	return &o, o.Check()
}

// count401 is the base RoundTripper under the OAuth Transport: it counts
// the 401 answers that the Transport recovers from with a new token.
type count401 struct{ n atomic.Int64 }

// RoundTrip sends req with http.DefaultTransport and counts a 401 answer.
func (c *count401) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err == nil && resp.StatusCode == http.StatusUnauthorized {
		c.n.Add(1)
	}
	return resp, err
}

// do sends req; the error of a failed request names its URL without query.
func do(client *http.Client, req *http.Request, accept string) (*http.Response, error) {
	req.Header.Set("Accept", accept)
	resp, err := client.Do(req)
	return resp, oauthclient.RedactURLError(err)
}

// export kicks the export off, polls it, downloads its files and deletes it.
func export(ctx context.Context, client *http.Client, opts *options, out io.Writer) (counts, error) {
	u, method, body := strings.TrimSuffix(opts.FHIRBase, "/")+"/$export", http.MethodGet, io.Reader(nil)
	if opts.group != "" {
		u = strings.TrimSuffix(opts.FHIRBase, "/") + "/Group/" + url.PathEscape(opts.group) + "/$export"
	}
	if opts.types != "" {
		p, _ := json.Marshal(map[string]any{"resourceType": "Parameters", "parameter": []map[string]string{{"name": "_type", "valueString": opts.types}}})
		// A *bytes.Reader makes the request replayable (GetBody), so the
		// Transport can send it again with a new token after a 401.
		method, body = http.MethodPost, bytes.NewReader(p)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return counts{}, err
	}
	req.Header.Set("Prefer", "respond-async")
	if body != nil {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	resp, err := do(client, req, "application/fhir+json")
	if err != nil {
		return counts{}, err
	}
	drain(resp)
	loc, err := resp.Request.URL.Parse(resp.Header.Get("Content-Location"))
	if resp.StatusCode != http.StatusAccepted || err != nil || resp.Header.Get("Content-Location") == "" {
		return counts{}, fmt.Errorf("kick-off: %s without a status URL", demo.StatusText(resp.StatusCode))
	}
	fmt.Fprintf(out, "kick-off: %s, status at %s\n", demo.StatusText(resp.StatusCode), redact(loc.String()))
	defer func() { // tell the server it may delete the files, also after a failure
		req, _ := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodDelete, loc.String(), nil)
		if resp, err := do(client, req, "application/fhir+json"); err == nil {
			drain(resp)
			fmt.Fprintf(out, "deleted the export: %s\n", demo.StatusText(resp.StatusCode))
		}
	}()
	m, err := poll(ctx, client, loc.String(), out)
	if err != nil {
		return counts{}, err
	}
	return downloadAll(ctx, client, m, opts.workers, out)
}

// manifest is the completion manifest of an export.
type manifest struct{ Output, Error, Deleted []entry }

// entry is one file of a manifest.
type entry struct{ Type, URL string }

// poll GETs the status URL as the server's Retry-After asks until the
// export is complete, and returns its manifest.
func poll(ctx context.Context, client *http.Client, status string, out io.Writer) (*manifest, error) {
	for n, failures := 1, 0; ; n++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, status, nil)
		if err != nil {
			return nil, err
		}
		resp, err := do(client, req, "application/json")
		if err != nil {
			return nil, err
		}
		code := resp.StatusCode
		if code == http.StatusOK {
			var m manifest
			err := json.NewDecoder(io.LimitReader(resp.Body, 32<<20)).Decode(&m)
			drain(resp)
			if err != nil {
				return nil, fmt.Errorf("reading the manifest: %w", err)
			}
			fmt.Fprintf(out, "poll %d: 200 OK, manifest of %d files\n", n, len(m.Output)+len(m.Error)+len(m.Deleted))
			return &m, nil
		}
		drain(resp)
		if code != http.StatusAccepted && code != http.StatusTooManyRequests && code < 500 {
			return nil, fmt.Errorf("status request: %s", demo.StatusText(code))
		}
		if failures = failures + 1; code == http.StatusAccepted {
			failures = 0
		} else if failures > maxFailures {
			return nil, fmt.Errorf("status request: %s %d times in a row", demo.StatusText(code), failures)
		}
		// Floored (more after each failure): a missing header or a date
		// rounded down is no busy loop.
		wait := max(oauthclient.ParseRetryAfter(resp.Header, time.Now(), maxWait), time.Duration(max(failures, 1))*time.Second)
		progress := resp.Header.Get("X-Progress")
		if progress != "" {
			progress = fmt.Sprintf(" (%.60s)", progress)
		}
		fmt.Fprintf(out, "poll %d: %s%s, Retry-After %.40q: wait %s\n", n, demo.StatusText(code), progress,
			resp.Header.Get("Retry-After"), wait.Round(time.Second))
		if err := demo.Sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// drain reads what is left of a response body (to reuse the connection)
// and closes it.
func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
}

// redact returns u without query and fragment: signed URLs carry their
// signature there.
func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(invalid URL)"
	}
	p.RawQuery, p.Fragment, p.User = "", "", nil
	return p.String()
}
