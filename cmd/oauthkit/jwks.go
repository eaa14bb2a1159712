package main

import (
	"bytes"
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/oauthkit/oauthkit/jwtassert"
)

const jwksExample = `	# Publish the keys (current and next) at the app's "JWK Set URL"; each
	# key keeps the kid it was generated with (oauthkit keygen -kid):
	oauthkit jwks key-2025.pem key-2026.pem > /var/www/jwks.json

	# One key with a chosen key ID and algorithm:
	oauthkit jwks -kid k1 -alg RS384 key.pem

	# Serve the JWK Set on this machine, for a local test server:
	oauthkit jwks -serve 127.0.0.1:8080 key.pem`

func runJWKS(args []string, e *env) error {
	fs := newFlagSet("jwks", "[-kid ID] [-alg ALG] [-serve ADDR] key.pem [more.pem …]", jwksExample, e)
	kid := fs.String("kid", "", "key `ID` (only with a single key; default: the kid stored with each key, else its RFC 7638 JWK thumbprint)")
	alg := fs.String("alg", "", "JWS `algorithm` to publish (default: RS384 for RSA, ES256/ES384/ES512 by curve, EdDSA)")
	serve := fs.String("serve", "", "serve the JWK Set over HTTP at `ADDR` (a loopback host:port such as 127.0.0.1:8080) until interrupted, instead of printing it")
	if err := parseFlags(fs, args, e); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("no key file given")
	}
	if *kid != "" && fs.NArg() > 1 {
		return usagef("-kid names a single key; without it each key keeps its stored kid or JWK thumbprint")
	}
	if *serve != "" {
		if err := checkLoopbackAddr(*serve); err != nil {
			return err
		}
	}
	signers := make([]*jwtassert.Signer, 0, fs.NArg())
	for _, path := range fs.Args() {
		kc, err := loadSigner(path, *kid, *alg, "")
		if err != nil {
			return err
		}
		signers = append(signers, kc.signer)
	}
	if *serve != "" {
		return serveJWKS(e, *serve, signers)
	}
	return printJWKS(e, signers...)
}

// printJWKS writes the public JWK Set of signers to stdout, indented.
func printJWKS(e *env, signers ...*jwtassert.Signer) error {
	set, err := jwtassert.JWKS(signers...)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, set, "", "  "); err != nil {
		return fmt.Errorf("format JWK Set: %w", err)
	}
	buf.WriteByte('\n')
	_, err = e.stdout.Write(buf.Bytes())
	return err
}

// checkLoopbackAddr accepts host:port only on a loopback host: the JWK
// Set is public, but a test helper has no business listening on every
// interface.
func checkLoopbackAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return usagef("-serve %q is not host:port", addr)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return usagef("-serve %q: only loopback addresses (127.0.0.1, [::1], localhost); publish the JWK Set with a web server for other hosts", addr)
	}
	return nil
}

// serveJWKS serves the JWK Set of signers at addr (every path) until
// SIGINT or SIGTERM. The listening URL goes to stderr.
func serveJWKS(e *env, addr string, signers []*jwtassert.Signer) error {
	ks, err := jwtassert.NewKeySet(signers[0], signers[1:]...)
	if err != nil {
		return err
	}
	if _, err := ks.JWKS(); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("-serve: %w", err)
	}
	srv := &http.Server{Handler: ks, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	fmt.Fprintf(e.stderr, "oauthkit: serving the JWK Set (kids %v) at http://%s/ ; stop with Ctrl-C\n", ks.KeyIDs(), ln.Addr())
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("-serve: %w", err)
	}
	return nil
}

// thumbprint returns the RFC 7638 JWK thumbprint (SHA-256, base64url
// without padding) of a public key: a key ID that is stable for a key and
// needs no bookkeeping.
func thumbprint(pub crypto.PublicKey) (string, error) {
	sum, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("JWK thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}
