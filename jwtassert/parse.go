package jwtassert

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// maxKeyFileSize bounds how much of a key file LoadPEMFile reads.
const maxKeyFileSize = 1 << 20

// PEM block types.
const (
	pemPKCS1     = "RSA PRIVATE KEY"
	pemPKCS8     = "PRIVATE KEY"
	pemSEC1      = "EC PRIVATE KEY"
	pemEncrypted = "ENCRYPTED PRIVATE KEY"
	pemOpenSSH   = "OPENSSH PRIVATE KEY"
)

// pemKeyIDHeader is the PEM header that stores a key's key ID with it.
const pemKeyIDHeader = "kid"

// ParsePEM returns a Signer for the private key in pemBytes.
//
// Accepted blocks: PKCS #1 "RSA PRIVATE KEY", PKCS #8 "PRIVATE KEY" (RSA,
// ECDSA or Ed25519) and SEC 1 "EC PRIVATE KEY". Other blocks before or
// after the key ("EC PARAMETERS", "CERTIFICATE", public keys) are skipped.
// Input with more than one private key is rejected as ambiguous. Encrypted
// keys fail with [ErrEncryptedKey]; input without a private key fails with
// [ErrNoPrivateKey].
//
// When opts.KeyID is empty, the key ID is the private key block's "kid"
// header (as written by [EncodePEMWithKeyID]), if it has one.
func ParsePEM(pemBytes []byte, opts Options) (*Signer, error) {
	key, kid, err := parsePEMKey(pemBytes)
	if err != nil {
		return nil, err
	}
	if opts.KeyID == "" {
		opts.KeyID = kid
	}
	return NewSigner(key, opts)
}

// LoadPEMFile reads the file at path (at most 1 MiB) and parses it with
// [ParsePEM]. Errors name the path but never quote the file's contents.
func LoadPEMFile(path string, opts Options) (*Signer, error) {
	data, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	s, err := ParsePEM(data, opts)
	clear(data)
	if err != nil {
		var ke *keyError
		if errors.As(err, &ke) && ke.file == "" {
			ke.file = path
		}
		return nil, err
	}
	return s, nil
}

func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, wrapError(nil, err, "load key")
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, wrapError(nil, err, "load key")
	}
	if len(data) > maxKeyFileSize {
		return nil, &keyError{file: path, kind: ErrNoPrivateKey, msg: "file is larger than 1 MiB; not a key file"}
	}
	return data, nil
}

// parsePEMKey returns the single private key in data and the value of
// its block's "kid" header.
func parsePEMKey(data []byte) (crypto.Signer, string, error) {
	var (
		key    crypto.Signer
		kid    string
		blocks int
		rest   = data
	)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		blocks++
		switch block.Type {
		case pemPKCS1, pemPKCS8, pemSEC1:
		case pemEncrypted:
			return nil, "", newError(ErrEncryptedKey, "PEM block %d is an encrypted PKCS #8 key; decrypt it first", blocks)
		case pemOpenSSH:
			return nil, "", newError(ErrUnsupportedKey, "PEM block %d is an OpenSSH key; convert it with \"ssh-keygen -p -m PKCS8 -f FILE\"", blocks)
		default:
			continue // certificates, public keys, EC PARAMETERS, …
		}
		if strings.Contains(block.Headers["Proc-Type"], "ENCRYPTED") {
			return nil, "", newError(ErrEncryptedKey, "PEM block %d is an encrypted %q key; decrypt it first", blocks, block.Type)
		}
		if key != nil {
			return nil, "", newError(ErrUnsupportedKey, "more than one private key in PEM input")
		}
		k, err := parsePrivateDER(block.Type, block.Bytes)
		if err != nil {
			return nil, "", err
		}
		key, kid = k, strings.TrimSpace(block.Headers[pemKeyIDHeader])
	}
	if key != nil {
		return key, kid, nil
	}
	if blocks == 0 {
		msg := "no PEM block found"
		if t := bytes.TrimSpace(data); len(t) > 0 && t[0] == '{' {
			msg += " (the input looks like JSON; use ParseJWK for JWKs)"
		}
		return nil, "", newError(ErrNoPrivateKey, "%s", msg)
	}
	return nil, "", newError(ErrNoPrivateKey, "none of the %d PEM blocks is a private key", blocks)
}

// parsePrivateDER parses der by the parser its PEM label names, falling back
// to the other two formats (labels are sometimes wrong).
func parsePrivateDER(label string, der []byte) (crypto.Signer, error) {
	pkcs8 := func(b []byte) (any, error) { return x509.ParsePKCS8PrivateKey(b) }
	pkcs1 := func(b []byte) (any, error) { return x509.ParsePKCS1PrivateKey(b) }
	sec1 := func(b []byte) (any, error) { return x509.ParseECPrivateKey(b) }

	var parsers []func([]byte) (any, error)
	switch label {
	case pemPKCS1:
		parsers = append(parsers, pkcs1, pkcs8, sec1)
	case pemSEC1:
		parsers = append(parsers, sec1, pkcs8, pkcs1)
	default:
		parsers = append(parsers, pkcs8, pkcs1, sec1)
	}
	var firstErr error
	for _, p := range parsers {
		k, err := p(der)
		if err == nil {
			return asSigner(k)
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	// x509 error text describes ASN.1 structure, never key bytes.
	return nil, wrapError(ErrUnsupportedKey, firstErr, "parse %q block", label)
}

// asSigner converts a parsed private key to a crypto.Signer this package
// supports.
func asSigner(k any) (crypto.Signer, error) {
	switch k := k.(type) {
	case *rsa.PrivateKey:
		return k, nil
	case *ecdsa.PrivateKey:
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	case *ecdh.PrivateKey:
		return nil, newError(ErrUnsupportedKey, "%s key-agreement keys cannot sign (use Ed25519 or ECDSA)", curveName(k.Curve()))
	}
	return nil, newError(ErrUnsupportedKey, "private key type %T is not supported (use RSA, ECDSA or Ed25519)", k)
}

func curveName(c ecdh.Curve) string {
	switch c {
	case ecdh.X25519():
		return "X25519"
	case ecdh.P256():
		return "P-256 ECDH"
	case ecdh.P384():
		return "P-384 ECDH"
	case ecdh.P521():
		return "P-521 ECDH"
	}
	return "ECDH"
}

// ParseJWK returns a Signer for a private JWK, or for the only private key
// in a JWK Set ({"keys":[…]}; public keys in the set are ignored).
//
// The key ID and algorithm come from the JWK's "kid" and "alg" unless opts
// sets them: opts wins, but an algorithm that does not fit the key is an
// error either way. A JWK with "use" other than "sig", a symmetric ("oct")
// key or a public-only JWK is rejected.
func ParseJWK(jwkJSON []byte, opts Options) (*Signer, error) {
	jwk, err := parsePrivateJWK(jwkJSON)
	if err != nil {
		return nil, err
	}
	if opts.KeyID == "" {
		opts.KeyID = jwk.KeyID
	}
	if opts.Algorithm == "" {
		opts.Algorithm = jwk.Algorithm
	}
	return NewSigner(jwk.Key.(crypto.Signer), opts)
}

// parsePrivateJWK returns the single private signing JWK in data; its Key
// is a crypto.Signer.
func parsePrivateJWK(data []byte) (*jose.JSONWebKey, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, jsonError(err)
	}
	rawKeys, isSet := top["keys"]
	if !isSet {
		return parseOneJWK(data, "JWK")
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(rawKeys, &set.Keys); err != nil {
		return nil, newError(ErrUnsupportedKey, "JWK Set member \"keys\" is not an array")
	}
	var found *jose.JSONWebKey
	for i, raw := range set.Keys {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, newError(ErrUnsupportedKey, "JWK Set key %d is not an object", i)
		}
		if !hasPrivateMembers(m) {
			continue
		}
		if found != nil {
			return nil, newError(ErrUnsupportedKey, "JWK Set holds more than one private key")
		}
		k, err := parseOneJWK(raw, "JWK Set key "+strconv.Itoa(i))
		if err != nil {
			return nil, err
		}
		found = k
	}
	if found == nil {
		return nil, newError(ErrNoPrivateKey, "JWK Set holds no private key")
	}
	return found, nil
}

// hasPrivateMembers reports whether a JWK object has secret members.
func hasPrivateMembers(m map[string]json.RawMessage) bool {
	for _, name := range []string{"d", "k", "p", "q", "dp", "dq", "qi", "priv"} {
		if _, ok := m[name]; ok {
			return true
		}
	}
	return false
}

func parseOneJWK(data []byte, what string) (*jose.JSONWebKey, error) {
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(data); err != nil {
		if errors.Is(err, jose.ErrUnsupportedKeyType) {
			return nil, newError(ErrUnsupportedKey, "%s has an unsupported key type", what)
		}
		return nil, joseParseError(err, what)
	}
	if !jwk.Valid() {
		return nil, newError(ErrUnsupportedKey, "%s is incomplete", what)
	}
	if jwk.Use != "" && jwk.Use != "sig" {
		return nil, newError(ErrUnsupportedKey, "%s has \"use\" %q, want \"sig\"", what, jwk.Use)
	}
	switch jwk.Key.(type) {
	case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey:
		return &jwk, nil
	case []byte:
		return nil, newError(ErrUnsupportedKey, "%s is a symmetric key; client assertions need an asymmetric key", what)
	}
	if jwk.IsPublic() {
		return nil, newError(ErrNoPrivateKey, "%s is a public key", what)
	}
	return nil, newError(ErrUnsupportedKey, "%s has an unsupported key type", what)
}

// jsonError describes a JSON syntax error by offset only: the standard
// library's message quotes a character of the input.
func jsonError(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return newError(ErrUnsupportedKey, "JWK is not valid JSON (error at byte %d)", se.Offset)
	}
	return newError(ErrUnsupportedKey, "JWK is not a JSON object")
}

// joseParseError keeps go-jose's own messages (fixed text) and base64
// errors (an offset), and hides anything else, which may quote input.
func joseParseError(err error, what string) error {
	var ce base64.CorruptInputError
	switch {
	case strings.HasPrefix(err.Error(), "go-jose/go-jose: "):
		return wrapError(ErrUnsupportedKey, err, "parse %s", what)
	case errors.As(err, &ce):
		return newError(ErrUnsupportedKey, "parse %s: a member is not valid base64url (error at byte %d)", what, int64(ce))
	}
	return newError(ErrUnsupportedKey, "parse %s: malformed member", what)
}
