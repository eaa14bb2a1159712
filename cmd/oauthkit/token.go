package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"

	"github.com/oauthkit/oauthkit/internal/tokenendpoint"
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
	oauthkit token -grant refresh_token -profile mine

	# As JSON, with the expiry and whether it came from the cache:
	oauthkit token -profile epic -o json | jq -r .expires_at`

const headerExample = `	curl -H "$(oauthkit header -profile epic)" https://fhir.example.org/api/FHIR/R4/Patient/123
` + dpopHeaderExample

func runToken(args []string, e *env) error {
	return printToken(args, e, "token", tokenExample, true)
}

func runHeader(args []string, e *env) error {
	return printToken(args, e, "header", headerExample, false)
}

// tokenOutput is what "token -o json" prints.
type tokenOutput struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	// ExpiresAt is RFC 3339 in UTC; null when the server gave no lifetime.
	ExpiresAt *string `json:"expires_at"`
	// Scope is the granted scope, when the server said.
	Scope string `json:"scope,omitempty"`
	// FromCache: the token was cached (memory, file or keychain), not
	// fetched by this run.
	FromCache bool `json:"from_cache"`
}

// printToken gets a token and prints it in the -o format (header: an
// Authorization header line; the header command has no -o).
//
// The header command (withFormat false) also prints, with -dpop-key, a
// "DPoP: <proof>" line for a -method request to -url: a proof is bound to
// one request.
func printToken(args []string, e *env, name, example string, withFormat bool) error {
	synopsis := connSynopsis
	if !withFormat {
		synopsis += " [-dpop-key FILE -url URL [-method METHOD]]"
	}
	fs := newFlagSet(name, synopsis, example, e)
	cf := addConnFlags(fs, false)
	format := "header"
	var target, method string
	if withFormat {
		fs.StringVar(&format, "o", "bare", "output `format`: bare (the access token alone), header (an Authorization header line) or json (token, token_type, expires_at, scope, from_cache)")
	} else {
		fs.StringVar(&target, "url", "", "`URL` of the request the DPoP proof is for (required with -dpop-key)")
		fs.StringVar(&method, "method", http.MethodGet, "HTTP `method` of the request the DPoP proof is for")
	}
	if err := parseFlags(fs, args, e); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	switch format {
	case "bare", "header", "json":
	default:
		return usagef("unknown -o %q (want bare, header or json)", format)
	}
	proof := format == "header" && cf.dpopKey != ""
	switch {
	case proof && withFormat:
		return usagef("-o header with -dpop-key: use the header command, which adds the DPoP proof line (-url)")
	case proof && target == "":
		return usagef("-url is required with -dpop-key: a DPoP proof is made for one request")
	case !proof && target != "":
		return usagef("-url goes with -dpop-key: it names the request a DPoP proof is for")
	}
	// The token this command fetched, if it fetched one: a background
	// refresh may report another one concurrently.
	var fetched atomic.Pointer[string]
	cf.onTokenChange = func(t *oauth2.Token) { fetched.CompareAndSwap(nil, &t.AccessToken) }
	return withTokenSource(cf, e, func(ctx context.Context, ts *oauthclient.TokenSource) error {
		tok, err := ts.Token(ctx)
		if err != nil {
			return err
		}
		switch format {
		case "header":
			if _, err = fmt.Fprintf(e.stdout, "Authorization: %s %s\n", tok.Type(), tok.AccessToken); err == nil && proof {
				var p string
				if p, err = ts.DPoPProof(ctx, strings.ToUpper(method), target); err == nil {
					_, err = fmt.Fprintf(e.stdout, "DPoP: %s\n", p)
				}
			}
		case "json":
			out := tokenOutput{AccessToken: tok.AccessToken, TokenType: tok.Type(), FromCache: fetched.Load() == nil || *fetched.Load() != tok.AccessToken}
			if !tok.Expiry.IsZero() {
				at := tok.Expiry.UTC().Format(time.RFC3339)
				out.ExpiresAt = &at
			}
			out.Scope, _ = tok.Extra("scope").(string)
			var b []byte
			if b, err = json.MarshalIndent(out, "", "  "); err == nil {
				_, err = fmt.Fprintf(e.stdout, "%s\n", b)
			}
		default:
			_, err = fmt.Fprintln(e.stdout, tok.AccessToken)
		}
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
	defer ts.Close()
	return explain(ctx, fn(ctx, ts), s.timeout)
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

// printable returns server-provided s on one line (see
// tokenendpoint.Printable) with runs of spaces folded, cut to at most n
// bytes.
func printable(s string, n int) string {
	return strings.Join(strings.Fields(tokenendpoint.Printable(s, n)), " ")
}
