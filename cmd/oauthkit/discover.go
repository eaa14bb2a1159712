package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/oauthkit/oauthkit/oauthclient"
)

const discoverExample = `	# SMART configuration of a FHIR server (token_endpoint, authorization_endpoint, …):
	oauthkit discover https://fhir.example.org/api/FHIR/R4

	# RFC 8414 / OpenID Connect metadata of an authorization server:
	oauthkit discover -issuer https://auth.example.com`

func runDiscover(args []string, e *env) error {
	fs := newFlagSet("discover", "[-issuer] URL", discoverExample, e)
	issuer := fs.Bool("issuer", false, "URL is an issuer: read RFC 8414 (or OpenID Connect) metadata instead of the SMART configuration of a FHIR base URL")
	timeout := fs.Duration("timeout", 60*time.Second, "give up after this `duration`")
	if err := parseFlags(fs, args, e); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("want exactly one URL")
	}
	if *timeout <= 0 {
		return usagef("-timeout must be positive")
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	var (
		doc any
		err error
	)
	if *issuer {
		doc, err = oauthclient.DiscoverServer(ctx, fs.Arg(0))
	} else {
		doc, err = oauthclient.DiscoverSMART(ctx, fs.Arg(0))
	}
	if err != nil {
		return explain(ctx, err, *timeout)
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fmt.Errorf("format metadata: %w", err)
	}
	_, err = fmt.Fprintf(e.stdout, "%s\n", b)
	return err
}
