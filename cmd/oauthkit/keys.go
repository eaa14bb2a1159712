package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/oauthkit/oauthkit/jwtassert"
)

// maxKeyFileSize bounds a private key file, as jwtassert.LoadPEMFile does.
const maxKeyFileSize = 1 << 20

// algorithms lists the JWS algorithms oauthkit signs with, as spelt in JWS.
var algorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// algList is algorithms for messages.
const algList = "RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512 or EdDSA"

// normalizeAlg returns the JWS spelling of alg, matched without regard to
// letter case ("es384" is ES384, "eddsa" is EdDSA); flag names the flag
// for the usage error of an unknown one. An empty alg stays empty.
func normalizeAlg(alg, flag string) (string, error) {
	if alg == "" {
		return "", nil
	}
	for _, a := range algorithms {
		if strings.EqualFold(a, alg) {
			return a, nil
		}
	}
	return "", usagef("unsupported %s %q (want %s)", flag, alg, algList)
}

// keyChoice is a loaded key: the signer, its file, and where its key ID
// came from (for -v).
type keyChoice struct {
	signer    *jwtassert.Signer
	file      string
	kidSource string
}

// loadSigner loads a private key file: PEM (PKCS #1, PKCS #8, SEC 1) or a
// private JWK (or a JWK Set holding one private key). The key ID is kid
// when given, else the one stored with the key (the "kid" PEM header that
// 'oauthkit keygen' writes, or the JWK's kid), else the key's RFC 7638 JWK
// thumbprint (SHA-256, base64url) that 'oauthkit jwks' publishes for it.
// The file is read once.
func loadSigner(path, kid, alg, jku string) (*keyChoice, error) {
	alg, err := normalizeAlg(alg, "-alg")
	if err != nil {
		return nil, err
	}
	data, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	defer clear(data)
	parse := jwtassert.ParsePEM
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] == '{' {
		parse = jwtassert.ParseJWK
	}
	opts := jwtassert.Options{KeyID: kid, Algorithm: alg, JKU: jku}
	s, err := parse(data, opts)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	c := &keyChoice{signer: s, file: path, kidSource: "-kid"}
	switch {
	case kid != "":
	case s.KeyID() != "":
		c.kidSource = "stored with the key"
	default:
		// No key ID anywhere: the thumbprint, on a signer parsed again
		// from the same bytes (a Signer's key ID is fixed).
		if opts.KeyID, err = thumbprint(s.Public()); err != nil {
			return nil, err
		}
		if c.signer, err = parse(data, opts); err != nil {
			return nil, fmt.Errorf("key file %s: %w", path, err)
		}
		c.kidSource = "JWK thumbprint"
	}
	return c, nil
}

// readKeyFile reads a private key file of at most maxKeyFileSize bytes.
// Errors name the file, never its contents.
func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load key: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	if len(data) > maxKeyFileSize {
		clear(data)
		return nil, fmt.Errorf("key file %s: larger than %d bytes; not a key file", path, maxKeyFileSize)
	}
	return data, nil
}
