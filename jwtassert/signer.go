package jwtassert

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/cryptosigner"
)

// MinRSABits is the smallest RSA modulus, in bits, that this package accepts.
const MinRSABits = 2048

// Options configure a [Signer].
type Options struct {
	// KeyID is the "kid" header of every assertion and the "kid" of the
	// published JWK. Optional when loading a key, but [Signer.Sign] fails
	// with [ErrMissingKeyID] while it is empty: SMART Backend Services and
	// Epic pick the verification key by kid. [ParseJWK] uses the JWK's own
	// kid when this is empty, [ParsePEM] and [LoadPEMFile] the "kid" PEM
	// header that [EncodePEMWithKeyID] writes.
	KeyID string

	// Algorithm is the JWS algorithm: RS256, RS384, RS512, PS256, PS384,
	// PS512, ES256, ES384, ES512 or EdDSA. It is checked against the key.
	// Optional: when empty it is inferred from the key (RSA → RS384,
	// P-256 → ES256, P-384 → ES384, P-521 → ES512, Ed25519 → EdDSA), or
	// taken from the JWK's "alg" by [ParseJWK].
	Algorithm string

	// JKU, when set, is sent as the "jku" header: the https URL of the JWK
	// Set that holds the public key. Plain http is accepted only for
	// loopback hosts. Optional.
	JKU string
}

// Signer signs JWT client assertions with one private key.
//
// A Signer is immutable after construction and safe for concurrent use by
// multiple goroutines. It holds a private key: printing it with fmt or
// log/slog shows only its algorithm and key ID.
//
// The private key lives only inside js, behind a pointer, so that even a
// dereferenced copy of a Signer printed with fmt shows no key bytes.
type Signer struct {
	pub crypto.PublicKey        // the private key's Public()
	alg jose.SignatureAlgorithm // checked against key
	kid string
	jku string
	js  jose.Signer // go-jose signer; safe for concurrent use (read-only state)
}

// NewSigner returns a Signer for key, which must be an *rsa.PrivateKey of at
// least 2048 bits, an *ecdsa.PrivateKey on P-256, P-384 or P-521, or an
// ed25519.PrivateKey, or any other crypto.Signer (a hardware or cloud KMS
// key, say) whose Public method returns one of the matching public keys.
func NewSigner(key crypto.Signer, opts Options) (*Signer, error) {
	key, pub, err := checkKey(key)
	if err != nil {
		return nil, err
	}
	alg, err := chooseAlgorithm(pub, opts.Algorithm)
	if err != nil {
		return nil, err
	}
	if err := checkJKU(opts.JKU); err != nil {
		return nil, err
	}

	var signingKey any
	switch key.(type) {
	case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey:
		signingKey = key
	default:
		signingKey = cryptosigner.Opaque(key)
	}
	so := (&jose.SignerOptions{}).WithType("JWT")
	if opts.JKU != "" {
		so = so.WithHeader(jose.HeaderKey("jku"), opts.JKU)
	}
	js, err := jose.NewSigner(jose.SigningKey{
		Algorithm: alg,
		Key:       jose.JSONWebKey{Key: signingKey, KeyID: opts.KeyID},
	}, so)
	if err != nil {
		return nil, wrapError(ErrUnsupportedKey, err, "create %s signer", alg)
	}
	return &Signer{pub: pub, alg: alg, kid: opts.KeyID, jku: opts.JKU, js: js}, nil
}

// checkKey validates key and returns it in normal form with its public key.
func checkKey(key crypto.Signer) (crypto.Signer, crypto.PublicKey, error) {
	switch k := key.(type) {
	case nil:
		return nil, nil, newError(ErrNoPrivateKey, "key is nil")
	case *rsa.PrivateKey:
		if k == nil || k.N == nil || k.D == nil || len(k.Primes) < 2 {
			return nil, nil, newError(ErrUnsupportedKey, "incomplete RSA private key")
		}
		if k.N.BitLen() < MinRSABits {
			return nil, nil, newError(ErrWeakKey, "RSA key has %d bits, at least %d are required", k.N.BitLen(), MinRSABits)
		}
		if err := k.Validate(); err != nil {
			return nil, nil, newError(ErrUnsupportedKey, "invalid RSA private key")
		}
	case *ecdsa.PrivateKey:
		if k == nil || k.Curve == nil || k.D == nil || k.X == nil || k.Y == nil {
			return nil, nil, newError(ErrUnsupportedKey, "incomplete ECDSA private key")
		}
		if curveAlgorithm(k.Curve) != "" && !ecdsaConsistent(k) {
			return nil, nil, newError(ErrUnsupportedKey, "invalid ECDSA private key: public point does not match the private scalar")
		}
	case ed25519.PrivateKey:
		if len(k) != ed25519.PrivateKeySize {
			return nil, nil, newError(ErrUnsupportedKey, "Ed25519 private key has %d bytes, want %d", len(k), ed25519.PrivateKeySize)
		}
		if !bytes.Equal(ed25519.NewKeyFromSeed(k.Seed())[ed25519.SeedSize:], k[ed25519.SeedSize:]) {
			return nil, nil, newError(ErrUnsupportedKey, "invalid Ed25519 private key: public half does not match the seed")
		}
	case *ed25519.PrivateKey:
		if k == nil {
			return nil, nil, newError(ErrNoPrivateKey, "key is nil")
		}
		return checkKey(*k)
	}

	pub := key.Public()
	switch p := pub.(type) {
	case *rsa.PublicKey:
		if p == nil || p.N == nil {
			return nil, nil, newError(ErrUnsupportedKey, "incomplete RSA public key")
		}
		if p.N.BitLen() < MinRSABits {
			return nil, nil, newError(ErrWeakKey, "RSA key has %d bits, at least %d are required", p.N.BitLen(), MinRSABits)
		}
	case *ecdsa.PublicKey:
		if p == nil || p.Curve == nil {
			return nil, nil, newError(ErrUnsupportedKey, "incomplete ECDSA public key")
		}
		if curveAlgorithm(p.Curve) == "" {
			return nil, nil, newError(ErrUnsupportedKey, "ECDSA curve %s is not supported (use P-256, P-384 or P-521)", p.Curve.Params().Name)
		}
	case ed25519.PublicKey:
		if len(p) != ed25519.PublicKeySize {
			return nil, nil, newError(ErrUnsupportedKey, "Ed25519 public key has %d bytes, want %d", len(p), ed25519.PublicKeySize)
		}
	default:
		return nil, nil, newError(ErrUnsupportedKey, "key type %T is not supported (use RSA, ECDSA or Ed25519)", pub)
	}
	return key, pub, nil
}

// ecdsaConsistent reports whether k's public point is its private scalar
// times the base point. A JWK can pair any "d" with any "x" and "y"; such a
// key would sign assertions that its published public key cannot verify.
func ecdsaConsistent(k *ecdsa.PrivateKey) bool {
	priv, err := k.ECDH() // derives the public point from the scalar
	if err != nil {
		return false
	}
	pub, err := k.PublicKey.ECDH()
	if err != nil {
		return false
	}
	return priv.PublicKey().Equal(pub)
}

// curveAlgorithm returns the only ES algorithm allowed for c, or "".
func curveAlgorithm(c elliptic.Curve) jose.SignatureAlgorithm {
	switch c {
	case elliptic.P256():
		return jose.ES256
	case elliptic.P384():
		return jose.ES384
	case elliptic.P521():
		return jose.ES512
	}
	return ""
}

// supportedAlgorithms lists, in order, every algorithm a Signer accepts.
var supportedAlgorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512,
	jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512,
	jose.EdDSA,
}

func isSupported(alg jose.SignatureAlgorithm) bool {
	for _, a := range supportedAlgorithms {
		if a == alg {
			return true
		}
	}
	return false
}

// keyKind names pub's key type for error messages.
func keyKind(pub crypto.PublicKey) string {
	switch p := pub.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d-bit", p.N.BitLen())
	case *ecdsa.PublicKey:
		return "ECDSA " + p.Curve.Params().Name
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return fmt.Sprintf("%T", pub)
}

// inferAlgorithm returns the default algorithm for a checked public key.
func inferAlgorithm(pub crypto.PublicKey) jose.SignatureAlgorithm {
	switch p := pub.(type) {
	case *rsa.PublicKey:
		return jose.RS384
	case *ecdsa.PublicKey:
		return curveAlgorithm(p.Curve)
	case ed25519.PublicKey:
		return jose.EdDSA
	}
	return ""
}

// chooseAlgorithm returns want (checked against pub) or, when want is
// empty, the algorithm inferred from pub.
func chooseAlgorithm(pub crypto.PublicKey, want string) (jose.SignatureAlgorithm, error) {
	if want == "" {
		return inferAlgorithm(pub), nil
	}
	alg := jose.SignatureAlgorithm(want)
	if !isSupported(alg) {
		return "", newError(ErrUnsupportedAlgorithm, "algorithm %q is not supported (use one of %s)", want, algorithmList())
	}
	ok := false
	switch p := pub.(type) {
	case *rsa.PublicKey:
		ok = strings.HasPrefix(want, "RS") || strings.HasPrefix(want, "PS")
	case *ecdsa.PublicKey:
		ok = alg == curveAlgorithm(p.Curve)
	case ed25519.PublicKey:
		ok = alg == jose.EdDSA
	}
	if !ok {
		return "", newError(ErrAlgorithmMismatch, "algorithm %s cannot be used with an %s key", want, keyKind(pub))
	}
	return alg, nil
}

func algorithmList() string {
	names := make([]string, len(supportedAlgorithms))
	for i, a := range supportedAlgorithms {
		names[i] = string(a)
	}
	return strings.Join(names, ", ")
}

// checkJKU accepts "" or an absolute https URL (http only for loopback).
func checkJKU(jku string) error {
	if jku == "" {
		return nil
	}
	u, err := url.Parse(jku)
	if err != nil || u.Host == "" {
		return newError(nil, "Options.JKU must be an absolute URL")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
	}
	return newError(nil, "Options.JKU must be an https URL (http only for loopback hosts)")
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// KeyID returns the key ID ("kid"), possibly empty.
func (s *Signer) KeyID() string { return s.kid }

// Algorithm returns the JWS algorithm, such as "ES384".
func (s *Signer) Algorithm() string { return string(s.alg) }

// JKU returns the "jku" header value, possibly empty.
func (s *Signer) JKU() string { return s.jku }

// Public returns the public key. Callers must not modify it.
func (s *Signer) Public() crypto.PublicKey { return s.pub }

// PublicJWK returns the public key as a JWK with "kid", "alg" and
// "use":"sig". It never holds private members.
func (s *Signer) PublicJWK() jose.JSONWebKey {
	return jose.JSONWebKey{Key: s.pub, KeyID: s.kid, Algorithm: string(s.alg), Use: "sig"}
}

// String returns a description with the algorithm and key ID only.
func (s *Signer) String() string {
	if s == nil {
		return "jwtassert.Signer(nil)"
	}
	return fmt.Sprintf("jwtassert.Signer{alg: %s, kid: %q}", s.alg, s.kid)
}

// GoString is like String: the private key is never printed.
func (s *Signer) GoString() string { return s.String() }

// Format implements fmt.Formatter so that every verb, including %+v and
// %#v, prints only the algorithm and key ID.
func (s *Signer) Format(f fmt.State, verb rune) { formatRedacted(f, verb, s.String()) }

// LogValue implements slog.LogValuer: only alg and kid are logged.
func (s *Signer) LogValue() slog.Value {
	if s == nil {
		return slog.StringValue("<nil>")
	}
	return slog.GroupValue(slog.String("alg", string(s.alg)), slog.String("kid", s.kid))
}

// formatRedacted writes str for any verb (quoted for %q).
func formatRedacted(f fmt.State, verb rune, str string) {
	if verb == 'q' {
		fmt.Fprintf(f, "%q", str)
		return
	}
	_, _ = f.Write([]byte(str))
}
