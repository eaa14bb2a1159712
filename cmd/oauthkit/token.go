package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"unicode"

	"golang.org/x/oauth2"

	"github.com/oauthkit/oauthkit/oauthclient"
)

const connSynopsis = "[-profile NAME] (-token-url URL | -fhir-base URL) -client-id ID [-key key.pem [-kid ID] | -secret-file FILE] [-scope S …] [flags]"

const tokenExample = `	# SMART Backend Services / Epic: a signed client assertion (private_key_jwt).
	# The token is cached in the user cache directory: a cron job run every
	# minute asks the server only when the last token is about to expire.
	TOKEN=$(oauthkit token -fhir-base https://fhir.example.org/api/FHIR/R4 \
		-client-id abc -key key.pem -kid k1 -scope system/Patient.rs)

	# A client secret, read from a file (never given on the command line):
	oauthkit token -token-url https://auth.example.com/token -client-id abc \
		-secret-file ~/.config/oauthkit/abc.secret -scope "read write"

	# After 'oauthkit login': a fresh access token from the stored refresh token:
	oauthkit token -grant refresh_token -profile mine`

const headerExample = `	curl -H "$(oauthkit header -profile epic)" https://fhir.example.org/api/FHIR/R4/Patient/123`

const getExample = `	oauthkit get -profile epic https://fhir.example.org/api/FHIR/R4/Patient?family=Smith

	oauthkit get -token-url https://auth.example.com/token -client-id abc -key key.pem \
		-scope system/Patient.rs https://fhir.example.com/fhir/Patient/p1 | jq .`

// defaultAccept asks FHIR servers (which may default to XML) for JSON.
const defaultAccept = "application/fhir+json, application/json;q=0.9, */*;q=0.8"

// maxErrorBody is how much of a failed response's body is shown.
const maxErrorBody = 512

func runToken(args []string, e *env) error {
	return printToken(args, e, "token", tokenExample, func(tok *oauth2.Token) string { return tok.AccessToken })
}

func runHeader(args []string, e *env) error {
	return printToken(args, e, "header", headerExample, func(tok *oauth2.Token) string {
		return "Authorization: " + tok.Type() + " " + tok.AccessToken
	})
}

// printToken gets a token and prints format(tok) on stdout.
func printToken(args []string, e *env, name, example string, format func(*oauth2.Token) string) error {
	fs := newFlagSet(name, connSynopsis, example, e)
	cf := addConnFlags(fs, false)
	if err := parseFlags(fs, args, e); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	return withTokenSource(cf, e, func(ctx context.Context, ts *oauthclient.TokenSource) error {
		tok, err := ts.Token(ctx)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(e.stdout, format(tok))
		return err
	})
}

// withTokenSource merges the connection flags with the profile, builds
// the token source and calls fn with it, all under one context bounded by
// -timeout. Errors the user can act on are explained.
func withTokenSource(cf *connFlags, e *env, fn func(ctx context.Context, ts *oauthclient.TokenSource) error) error {
	s, err := cf.settings(e)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	ts, _, err := s.tokenSource(ctx, e)
	if err != nil {
		return explain(ctx, err, s.timeout)
	}
	return explain(ctx, fn(ctx, ts), s.timeout)
}

func runGet(args []string, e *env) error {
	fs := newFlagSet("get", connSynopsis+" URL", getExample, e)
	cf := addConnFlags(fs, false)
	accept := fs.String("accept", defaultAccept, "Accept header `value`")
	if err := parseFlags(fs, args, e); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("want exactly one URL")
	}
	target := fs.Arg(0)
	if u, err := url.Parse(target); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return usagef("%q is not an absolute http(s) URL", redactURL(target))
	}
	return withTokenSource(cf, e, func(ctx context.Context, ts *oauthclient.TokenSource) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
		if err != nil {
			return fmt.Errorf("GET %s: %w", redactURL(target), withoutURL(err))
		}
		if *accept != "" {
			req.Header.Set("Accept", *accept)
		}
		resp, err := ts.Client(nil).Do(req)
		if err != nil {
			return fmt.Errorf("GET %s: %w", redactURL(target), withoutURL(err))
		}
		defer resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
			msg := fmt.Sprintf("GET %s: %s", redactURL(target), resp.Status)
			if c := resp.Header.Get("WWW-Authenticate"); c != "" {
				msg += " (WWW-Authenticate: " + printable(c, 200) + ")"
			}
			if body := printable(string(b), maxErrorBody); body != "" {
				msg += ": " + body
			}
			return fmt.Errorf("%s", msg)
		}
		if _, err := io.Copy(e.stdout, resp.Body); err != nil {
			return fmt.Errorf("GET %s: read body: %w", redactURL(target), withoutURL(err))
		}
		return nil
	})
}

// withoutURL strips the *url.Error wrappers that net/http puts around
// request errors: their message repeats the whole URL, query (which may
// carry credentials) included. What they wrap stays in the chain.
func withoutURL(err error) error {
	for {
		ue, ok := err.(*url.Error)
		if !ok {
			return err
		}
		err = ue.Err
	}
}

// redactURL drops user information and the query, which may carry
// credentials, from a URL for messages.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid URL)"
	}
	u.User = nil
	if u.RawQuery != "" {
		u.RawQuery = "…"
	}
	u.Fragment = ""
	return u.String()
}

// printable returns s on one line with control characters removed, cut
// to at most n bytes.
func printable(s string, n int) string {
	if len(s) > n {
		s = strings.ToValidUTF8(s[:n], "") + "…"
	}
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}
