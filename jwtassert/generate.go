package jwtassert

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// GenerateKey returns a new private key for alg: a 2048-bit RSA key for
// RS256, RS384, RS512, PS256, PS384 and PS512; P-256 for ES256, P-384 for
// ES384, P-521 for ES512; Ed25519 for EdDSA.
func GenerateKey(alg string) (crypto.Signer, error) {
	var (
		key crypto.Signer
		err error
	)
	switch jose.SignatureAlgorithm(alg) {
	case jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512:
		key, err = rsa.GenerateKey(rand.Reader, MinRSABits)
	case jose.ES256:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.ES384:
		key, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case jose.ES512:
		key, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case jose.EdDSA:
		_, key, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, newError(ErrUnsupportedAlgorithm, "algorithm %q is not supported (use one of %s)", alg, algorithmList())
	}
	if err != nil {
		return nil, wrapError(nil, err, "generate %s key", alg)
	}
	return key, nil
}

// EncodePEM returns key as a PKCS #8 "PRIVATE KEY" PEM block. It accepts the
// key types NewSigner accepts, except opaque crypto.Signers (hardware or
// KMS keys), whose private part cannot be exported.
//
// The result holds the private key: write it only to a file with mode 0600.
func EncodePEM(key crypto.Signer) ([]byte, error) {
	return EncodePEMWithKeyID(key, "")
}

// maxPEMKeyID bounds a key ID stored in a PEM header.
const maxPEMKeyID = 256

// EncodePEMWithKeyID is like [EncodePEM] and stores kid with the key as the
// PEM header "kid: …" (RFC 1421 headers, as encoding/pem writes them), so
// that [ParsePEM] and [LoadPEMFile] sign with that key ID when
// Options.KeyID is empty. An empty kid writes no header. A kid with control
// characters, leading or trailing spaces, or more than 256 bytes fails with
// [ErrUnsupportedKey].
//
// The result holds the private key: write it only to a file with mode 0600.
func EncodePEMWithKeyID(key crypto.Signer, kid string) ([]byte, error) {
	if len(kid) > maxPEMKeyID || kid != strings.TrimSpace(kid) ||
		strings.ContainsFunc(kid, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return nil, newError(ErrUnsupportedKey, "key ID cannot be stored in a PEM header (control characters, surrounding spaces or more than %d bytes)", maxPEMKeyID)
	}
	if k, ok := key.(*ed25519.PrivateKey); ok && k != nil {
		key = *k
	}
	switch key.(type) {
	case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey:
	default:
		return nil, newError(ErrUnsupportedKey, "cannot export a %T key as PEM", key)
	}
	if _, _, err := checkKey(key); err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, wrapError(ErrUnsupportedKey, err, "encode PKCS #8 key")
	}
	block := &pem.Block{Type: pemPKCS8, Bytes: der}
	if kid != "" {
		block.Headers = map[string]string{pemKeyIDHeader: kid}
	}
	out := pem.EncodeToMemory(block)
	clear(der)
	return out, nil
}
