package main

import (
	"bytes"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/go-jose/go-jose/v4"

	"github.com/oauthkit/oauthkit/jwtassert"
)

const jwksExample = `	# Publish the keys (current and next) at the app's "JWK Set URL":
	oauthkit jwks key-2025.pem key-2026.pem > /var/www/jwks.json

	# One key with a chosen key ID and algorithm:
	oauthkit jwks -kid k1 -alg RS384 key.pem`

func runJWKS(args []string, e *env) error {
	fs := newFlagSet("jwks", "[-kid ID] [-alg ALG] key.pem [more.pem …]", jwksExample, e)
	kid := fs.String("kid", "", "key `ID` (only with a single key; default: the key's RFC 7638 JWK thumbprint)")
	alg := fs.String("alg", "", "JWS `algorithm` to publish (default: RS384 for RSA, ES256/ES384/ES512 by curve, EdDSA)")
	if err := parseFlags(fs, args, e); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("no key file given")
	}
	if *kid != "" && fs.NArg() > 1 {
		return usagef("-kid names a single key; without it each key's ID is its JWK thumbprint")
	}
	signers := make([]*jwtassert.Signer, 0, fs.NArg())
	for _, path := range fs.Args() {
		s, err := loadSigner(path, *kid, *alg)
		if err != nil {
			return err
		}
		signers = append(signers, s)
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
