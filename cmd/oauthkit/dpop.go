package main

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"strings"

	"github.com/oauthkit/oauthkit/oauthclient"
)

// dpopKeyUsage documents -dpop-key.
const dpopKeyUsage = "sender-constrain tokens with DPoP (RFC 9449), signing proofs with the private key in `file` " +
	"(PEM; make one with 'oauthkit keygen -alg ES256 -out dpop.pem'); header then also prints the DPoP proof line for -url"

const dpopHeaderExample = `	# A DPoP-bound token: both header lines, the proof made for this request:
	oauthkit header -profile epic -dpop-key dpop.pem -url https://fhir.example.org/api/FHIR/R4/Patient/123`

// loadDPoPKey reads the DPoP private key in path (PKCS #8, SEC 1 or
// PKCS #1 PEM); "" gives no key. Errors name the file, never its contents.
func loadDPoPKey(path string) (crypto.Signer, error) {
	if path == "" {
		return nil, nil
	}
	data, err := readKeyFile(path)
	if err != nil {
		return nil, fmt.Errorf("-dpop-key: %w", err)
	}
	defer clear(data)
	for rest := data; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			return nil, fmt.Errorf("-dpop-key: %s holds no PEM private key", path)
		}
		var key any
		switch block.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("-dpop-key: %s: the %s block does not parse", path, block.Type)
		}
		signer, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("-dpop-key: %s: unsupported key type", path)
		}
		return signer, nil
	}
}

// runHeaderDPoP is the header command: as runHeader without -dpop-key;
// with it, an "Authorization: DPoP …" line and a "DPoP: <proof>" line for
// a -method request to -url (a proof is bound to one request).
func runHeaderDPoP(args []string, e *env) error {
	if !hasFlag(args, "dpop-key") {
		return runHeader(args, e)
	}
	fs := newFlagSet("header", connSynopsis+" -dpop-key FILE -url URL", dpopHeaderExample, e)
	cf := addConnFlags(fs, false)
	target := fs.String("url", "", "`URL` of the request the DPoP proof is for (required with -dpop-key)")
	method := fs.String("method", http.MethodGet, "HTTP `method` of the request the DPoP proof is for")
	if err := parseFlags(fs, args, e); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *target == "" {
		return usagef("-url is required with -dpop-key: a DPoP proof is made for one request")
	}
	return withTokenSource(cf, e, func(ctx context.Context, ts *oauthclient.TokenSource) error {
		tok, err := ts.Token(ctx)
		if err != nil {
			return err
		}
		proof, err := ts.DPoPProof(ctx, strings.ToUpper(*method), *target)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(e.stdout, "Authorization: %s %s\nDPoP: %s\n", tok.Type(), tok.AccessToken, proof)
		return err
	})
}

// hasFlag reports whether args set the flag name (-name or --name, with
// or without =value) before a "--".
func hasFlag(args []string, name string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if t := strings.TrimLeft(a, "-"); t != a && (t == name || strings.HasPrefix(t, name+"=")) {
			return true
		}
	}
	return false
}
