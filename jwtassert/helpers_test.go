package jwtassert

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"sync"
	"testing"
	"time"
)

// Test keys are generated once per test binary: RSA generation is slow
// under the race detector.
var (
	keysMu sync.Mutex
	keys   = map[string]crypto.Signer{}
)

// testKey returns a cached key: "RSA2048", "RSA1024", "P256", "P384",
// "P521", "P224" or "Ed25519". Other names get fresh keys of the same kind
// with the suffix ignored after '#' (for example "P256#2").
func testKey(t testing.TB, name string) crypto.Signer {
	t.Helper()
	keysMu.Lock()
	defer keysMu.Unlock()
	if k, ok := keys[name]; ok {
		return k
	}
	kind := name
	for i := range name {
		if name[i] == '#' {
			kind = name[:i]
			break
		}
	}
	var (
		k   crypto.Signer
		err error
	)
	switch kind {
	case "RSA2048":
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	case "RSA1024":
		k, err = rsa.GenerateKey(rand.Reader, 1024)
	case "P224":
		k, err = ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	case "P256":
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "P384":
		k, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "P521":
		k, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case "Ed25519":
		_, k, err = ed25519.GenerateKey(rand.Reader)
	default:
		t.Fatalf("unknown test key %q", name)
	}
	if err != nil {
		t.Fatalf("generate %s: %v", name, err)
	}
	keys[name] = k
	return k
}

// Encoders for each PEM format.
func pemPKCS1Bytes(t testing.TB, k crypto.Signer) []byte {
	t.Helper()
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k.(*rsa.PrivateKey))})
}

func pemPKCS8Bytes(t testing.TB, k crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatalf("MarshalPKCS8PrivateKey: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func pemSEC1Bytes(t testing.TB, k crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(k.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatalf("MarshalECPrivateKey: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}

func pemPublicBytes(t testing.TB, k crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		t.Fatalf("MarshalPKIXPublicKey: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// pemECParams returns the "EC PARAMETERS" block openssl writes before a
// SEC 1 key (the named curve OID).
func pemECParams(t testing.TB, curve elliptic.Curve) []byte {
	t.Helper()
	oids := map[string][]byte{
		"P-256": {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07},
		"P-384": {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22},
		"P-521": {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23},
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: oids[curve.Params().Name]})
}

// pemCertificate returns a self-signed certificate for k.
func pemCertificate(t testing.TB, k crypto.Signer) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "jwtassert test"},
		NotBefore:    time.Unix(1700000000, 0),
		NotAfter:     time.Unix(1900000000, 0),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatalf("CreateCertificate: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func concat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// opaqueSigner hides the concrete key type, like a KMS or HSM key.
type opaqueSigner struct{ crypto.Signer }

// samePublic reports whether a and b are equal public keys.
func samePublic(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}
