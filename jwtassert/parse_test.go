package jwtassert

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

func TestParsePEMFormats(t *testing.T) {
	rsaKey := testKey(t, "RSA2048")
	p256 := testKey(t, "P256")
	p384 := testKey(t, "P384")
	p521 := testKey(t, "P521")
	ed := testKey(t, "Ed25519")

	tests := []struct {
		name    string
		key     crypto.Signer
		pem     []byte
		wantAlg string
	}{
		{"RSA PKCS1", rsaKey, pemPKCS1Bytes(t, rsaKey), "RS384"},
		{"RSA PKCS8", rsaKey, pemPKCS8Bytes(t, rsaKey), "RS384"},
		{"P-256 PKCS8", p256, pemPKCS8Bytes(t, p256), "ES256"},
		{"P-256 SEC1", p256, pemSEC1Bytes(t, p256), "ES256"},
		{"P-384 PKCS8", p384, pemPKCS8Bytes(t, p384), "ES384"},
		{"P-384 SEC1", p384, pemSEC1Bytes(t, p384), "ES384"},
		{"P-521 PKCS8", p521, pemPKCS8Bytes(t, p521), "ES512"},
		{"P-521 SEC1", p521, pemSEC1Bytes(t, p521), "ES512"},
		{"Ed25519 PKCS8", ed, pemPKCS8Bytes(t, ed), "EdDSA"},
		{"SEC1 after EC PARAMETERS", p384, concat(pemECParams(t, p384.Public().(*ecdsa.PublicKey).Curve), pemSEC1Bytes(t, p384)), "ES384"},
		{"after CERTIFICATE", p256, concat(pemCertificate(t, p256), pemPKCS8Bytes(t, p256)), "ES256"},
		{"before CERTIFICATE", rsaKey, concat(pemPKCS1Bytes(t, rsaKey), pemCertificate(t, rsaKey)), "RS384"},
		{"after PUBLIC KEY", ed, concat(pemPublicBytes(t, ed), pemPKCS8Bytes(t, ed)), "EdDSA"},
		{"text around blocks", p256, concat([]byte("Bag Attributes\n  friendlyName: k1\n"), pemPKCS8Bytes(t, p256), []byte("\ntrailer\n")), "ES256"},
		{"CRLF line endings", p384, bytes.ReplaceAll(pemSEC1Bytes(t, p384), []byte("\n"), []byte("\r\n")), "ES384"},
		{"PKCS1 labelled PRIVATE KEY", rsaKey, relabel(pemPKCS1Bytes(t, rsaKey), "PRIVATE KEY"), "RS384"},
		{"PKCS8 labelled EC PRIVATE KEY", p256, relabel(pemPKCS8Bytes(t, p256), "EC PRIVATE KEY"), "ES256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParsePEM(tt.pem, Options{KeyID: "k1"})
			if err != nil {
				t.Fatalf("ParsePEM: %v", err)
			}
			if s.Algorithm() != tt.wantAlg {
				t.Errorf("Algorithm() = %q, want %q", s.Algorithm(), tt.wantAlg)
			}
			if s.KeyID() != "k1" {
				t.Errorf("KeyID() = %q, want k1", s.KeyID())
			}
			if !samePublic(s.Public(), tt.key.Public()) {
				t.Error("Public() does not match the encoded key")
			}
		})
	}
}

func relabel(p []byte, label string) []byte {
	b, _ := pem.Decode(p)
	return pem.EncodeToMemory(&pem.Block{Type: label, Bytes: b.Bytes})
}

func TestParsePEMErrors(t *testing.T) {
	rsaKey := testKey(t, "RSA2048")
	p256 := testKey(t, "P256")
	x25519, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	x25519DER, err := x509.MarshalPKCS8PrivateKey(x25519)
	if err != nil {
		t.Fatal(err)
	}
	p224DER, err := x509.MarshalECPrivateKey(testKey(t, "P224").(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	good := pemPKCS8Bytes(t, p256)
	goodBlock, _ := pem.Decode(good)
	legacyEncrypted := pem.EncodeToMemory(&pem.Block{
		Type:    "RSA PRIVATE KEY",
		Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00112233445566778899AABBCCDDEEFF"},
		Bytes:   x509.MarshalPKCS1PrivateKey(rsaKey.(*rsa.PrivateKey)),
	})
	jwk, err := json.Marshal(jose.JSONWebKey{Key: p256, KeyID: "k1"})
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		in      []byte
		want    error
		wantMsg string
	}{
		{"empty", nil, ErrNoPrivateKey, "no PEM block"},
		{"not PEM", []byte("hello, world"), ErrNoPrivateKey, "no PEM block"},
		{"JWK instead of PEM", jwk, ErrNoPrivateKey, "ParseJWK"},
		{"only certificate", pemCertificate(t, p256), ErrNoPrivateKey, "none of the 1 PEM blocks"},
		{"only public key", pemPublicBytes(t, rsaKey), ErrNoPrivateKey, "none of the 1 PEM blocks"},
		{"EC PARAMETERS only", pemECParams(t, p256.Public().(*ecdsa.PublicKey).Curve), ErrNoPrivateKey, "private key"},
		{"encrypted PKCS8", relabel(good, "ENCRYPTED PRIVATE KEY"), ErrEncryptedKey, "encrypted"},
		{"legacy encrypted PKCS1", legacyEncrypted, ErrEncryptedKey, "encrypted"},
		{"OpenSSH", relabel(good, "OPENSSH PRIVATE KEY"), ErrUnsupportedKey, "ssh-keygen"},
		{"two private keys", concat(good, pemPKCS8Bytes(t, testKey(t, "Ed25519"))), ErrUnsupportedKey, "more than one"},
		{"truncated DER", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: goodBlock.Bytes[:len(goodBlock.Bytes)/2]}), ErrUnsupportedKey, "parse \"PRIVATE KEY\""},
		{"garbage DER", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: bytes.Repeat([]byte{0x42}, 64)}), ErrUnsupportedKey, "parse"},
		{"X25519 PKCS8", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: x25519DER}), ErrUnsupportedKey, "X25519"},
		{"P-224 SEC1", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: p224DER}), ErrUnsupportedKey, "P-224"},
		{"RSA 1024 PKCS1", pemPKCS1Bytes(t, testKey(t, "RSA1024")), ErrWeakKey, "1024 bits"},
		{"RSA 1024 PKCS8", pemPKCS8Bytes(t, testKey(t, "RSA1024")), ErrWeakKey, "1024 bits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParsePEM(tt.in, Options{KeyID: "k1"})
			if err == nil {
				t.Fatalf("ParsePEM succeeded (%v), want error", s)
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("error %q does not wrap %v", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "jwtassert: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not mention %q", err, tt.wantMsg)
			}
			assertNoPEMBody(t, err.Error(), tt.in)
		})
	}
}

// assertNoPEMBody fails if msg contains any base64 line of the PEM input.
func assertNoPEMBody(t *testing.T, msg string, in []byte) {
	t.Helper()
	for _, line := range strings.Split(string(in), "\n") {
		line = strings.TrimSpace(line)
		if len(line) >= 16 && !strings.HasPrefix(line, "-----") && strings.Contains(msg, line) {
			t.Errorf("message quotes %d bytes of the input", len(line))
		}
	}
}

func TestLoadPEMFile(t *testing.T) {
	dir := t.TempDir()
	key := testKey(t, "P384")
	good := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(good, pemSEC1Bytes(t, key), 0o600); err != nil {
		t.Fatal(err)
	}
	certOnly := filepath.Join(dir, "cert.pem")
	if err := os.WriteFile(certOnly, pemCertificate(t, key), 0o600); err != nil {
		t.Fatal(err)
	}
	huge := filepath.Join(dir, "huge.pem")
	if err := os.WriteFile(huge, bytes.Repeat([]byte("A"), maxKeyFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}

	s, err := LoadPEMFile(good, Options{KeyID: "file-key"})
	if err != nil {
		t.Fatalf("LoadPEMFile: %v", err)
	}
	if s.Algorithm() != "ES384" || s.KeyID() != "file-key" || !samePublic(s.Public(), key.Public()) {
		t.Errorf("LoadPEMFile = %v, want ES384 file-key with the written key", s)
	}

	tests := []struct {
		name string
		path string
		want error
	}{
		{"missing", filepath.Join(dir, "missing.pem"), os.ErrNotExist},
		{"no private key", certOnly, ErrNoPrivateKey},
		{"too large", huge, ErrNoPrivateKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadPEMFile(tt.path, Options{})
			if !errors.Is(err, tt.want) {
				t.Fatalf("LoadPEMFile error %v, want %v", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "jwtassert: ") || !strings.Contains(err.Error(), tt.path) {
				t.Errorf("error %q should start with the package name and name the path", err)
			}
		})
	}
}

func marshalJWK(t *testing.T, jwk jose.JSONWebKey) []byte {
	t.Helper()
	b, err := json.Marshal(jwk)
	if err != nil {
		t.Fatalf("marshal JWK: %v", err)
	}
	return b
}

func TestParseJWK(t *testing.T) {
	rsaKey := testKey(t, "RSA2048")
	p256 := testKey(t, "P256")
	p521 := testKey(t, "P521")
	ed := testKey(t, "Ed25519")

	set := func(jwks ...jose.JSONWebKey) []byte {
		b, err := json.Marshal(jose.JSONWebKeySet{Keys: jwks})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	tests := []struct {
		name    string
		in      []byte
		opts    Options
		key     crypto.Signer
		wantKID string
		wantAlg string
	}{
		{"RSA no alg", marshalJWK(t, jose.JSONWebKey{Key: rsaKey, KeyID: "r1"}), Options{}, rsaKey, "r1", "RS384"},
		{"RSA alg from JWK", marshalJWK(t, jose.JSONWebKey{Key: rsaKey, KeyID: "r1", Algorithm: "PS256", Use: "sig"}), Options{}, rsaKey, "r1", "PS256"},
		{"RSA opts win", marshalJWK(t, jose.JSONWebKey{Key: rsaKey, KeyID: "r1", Algorithm: "RS256"}), Options{KeyID: "o1", Algorithm: "PS512"}, rsaKey, "o1", "PS512"},
		{"P-256", marshalJWK(t, jose.JSONWebKey{Key: p256, KeyID: "e1"}), Options{}, p256, "e1", "ES256"},
		{"P-521 alg", marshalJWK(t, jose.JSONWebKey{Key: p521, KeyID: "e5", Algorithm: "ES512"}), Options{}, p521, "e5", "ES512"},
		{"Ed25519", marshalJWK(t, jose.JSONWebKey{Key: ed, KeyID: "d1"}), Options{}, ed, "d1", "EdDSA"},
		{"no kid", marshalJWK(t, jose.JSONWebKey{Key: ed}), Options{}, ed, "", "EdDSA"},
		{"set with one private key", set(
			jose.JSONWebKey{Key: rsaKey.Public(), KeyID: "pub1"},
			jose.JSONWebKey{Key: p256, KeyID: "priv", Algorithm: "ES256"},
			jose.JSONWebKey{Key: ed.Public(), KeyID: "pub2"},
		), Options{}, p256, "priv", "ES256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseJWK(tt.in, tt.opts)
			if err != nil {
				t.Fatalf("ParseJWK: %v", err)
			}
			if s.KeyID() != tt.wantKID || s.Algorithm() != tt.wantAlg {
				t.Errorf("ParseJWK = %v, want kid %q alg %s", s, tt.wantKID, tt.wantAlg)
			}
			if !samePublic(s.Public(), tt.key.Public()) {
				t.Error("Public() does not match the JWK")
			}
		})
	}
}

func TestParseJWKErrors(t *testing.T) {
	rsaKey := testKey(t, "RSA2048")
	p256 := testKey(t, "P256")
	ed := testKey(t, "Ed25519")
	privJWK := marshalJWK(t, jose.JSONWebKey{Key: p256, KeyID: "e1"})

	var withBadD map[string]any
	if err := json.Unmarshal(privJWK, &withBadD); err != nil {
		t.Fatal(err)
	}
	withBadD["d"] = "!!!!not-base64!!!!"
	badD, _ := json.Marshal(withBadD)

	// Private and public members of two different keys: signatures would
	// not verify with the published public key.
	mixed := func(priv, pub []byte, member string) []byte {
		var a, b map[string]any
		if err := json.Unmarshal(priv, &a); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(pub, &b); err != nil {
			t.Fatal(err)
		}
		a[member] = b[member]
		out, _ := json.Marshal(a)
		return out
	}
	otherP256 := marshalJWK(t, jose.JSONWebKey{Key: testKey(t, "P256#2")})
	otherEd := marshalJWK(t, jose.JSONWebKey{Key: testKey(t, "Ed25519#2")})
	edJWK := marshalJWK(t, jose.JSONWebKey{Key: ed, KeyID: "d"})

	tests := []struct {
		name string
		in   []byte
		opts Options
		want error
	}{
		{"empty", nil, Options{}, ErrUnsupportedKey},
		{"invalid JSON", privJWK[:len(privJWK)-5], Options{}, ErrUnsupportedKey},
		{"JSON array", []byte(`[1,2]`), Options{}, ErrUnsupportedKey},
		{"public JWK", marshalJWK(t, jose.JSONWebKey{Key: p256.Public(), KeyID: "e1"}), Options{}, ErrNoPrivateKey},
		{"symmetric", marshalJWK(t, jose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "h1", Algorithm: "HS256"}), Options{}, ErrUnsupportedKey},
		{"use enc", marshalJWK(t, jose.JSONWebKey{Key: rsaKey, KeyID: "r1", Use: "enc"}), Options{}, ErrUnsupportedKey},
		{"JWK alg mismatch", marshalJWK(t, jose.JSONWebKey{Key: rsaKey, KeyID: "r1", Algorithm: "ES256"}), Options{}, ErrAlgorithmMismatch},
		{"JWK alg HS256", marshalJWK(t, jose.JSONWebKey{Key: rsaKey, KeyID: "r1", Algorithm: "HS256"}), Options{}, ErrUnsupportedAlgorithm},
		{"opts alg mismatch", privJWK, Options{Algorithm: "ES384"}, ErrAlgorithmMismatch},
		{"opts alg none", privJWK, Options{Algorithm: "none"}, ErrUnsupportedAlgorithm},
		{"weak RSA", marshalJWK(t, jose.JSONWebKey{Key: testKey(t, "RSA1024"), KeyID: "w"}), Options{}, ErrWeakKey},
		{"unknown kty", []byte(`{"kty":"XYZ","d":"AAAA"}`), Options{}, ErrUnsupportedKey},
		{"bad base64 d", badD, Options{}, ErrUnsupportedKey},
		{"set without private key", []byte(`{"keys":[` + string(marshalJWK(t, jose.JSONWebKey{Key: ed.Public(), KeyID: "p"})) + `]}`), Options{}, ErrNoPrivateKey},
		{"empty set", []byte(`{"keys":[]}`), Options{}, ErrNoPrivateKey},
		{"set with two private keys", []byte(`{"keys":[` + string(privJWK) + `,` + string(marshalJWK(t, jose.JSONWebKey{Key: ed, KeyID: "d"})) + `]}`), Options{}, ErrUnsupportedKey},
		{"keys not array", []byte(`{"keys":{}}`), Options{}, ErrUnsupportedKey},
		{"EC d from another key", mixed(privJWK, otherP256, "d"), Options{}, ErrUnsupportedKey},
		{"Ed25519 x from another key", mixed(edJWK, otherEd, "x"), Options{}, ErrUnsupportedKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseJWK(tt.in, tt.opts)
			if err == nil {
				t.Fatalf("ParseJWK succeeded (%v), want error", s)
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("error %q does not wrap %v", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "jwtassert: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			assertNoJWKSecrets(t, err.Error(), tt.in)
		})
	}
}

// assertNoJWKSecrets fails if msg quotes a private member of a JWK input.
func assertNoJWKSecrets(t *testing.T, msg string, in []byte) {
	t.Helper()
	var m map[string]any
	if json.Unmarshal(in, &m) != nil {
		return
	}
	for _, name := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
		if v, ok := m[name].(string); ok && len(v) >= 4 && strings.Contains(msg, v) {
			t.Errorf("message quotes the %q member", name)
		}
	}
}
