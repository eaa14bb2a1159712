package interop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"sync"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// publicJWKS builds a JWK Set holding the public half of a PKCS #8 key.
func publicJWKS(keyPEM []byte, keyID, alg string) ([]byte, error) {
	key, err := parsePKCS8(keyPEM)
	if err != nil {
		return nil, err
	}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key: key.Public(), KeyID: keyID, Algorithm: alg, Use: "sig",
	}}}
	return json.Marshal(set)
}

// parsePKCS8 decodes a PEM "PRIVATE KEY" block.
func parsePKCS8(keyPEM []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(keyPEM)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("interop: no PKCS #8 PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("interop: parse key: %w", err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, errors.New("interop: key is not a signer")
	}
	return s, nil
}

// testKeys are the client keys, generated once per test binary run: RSA
// key generation is slow under the race detector, and every server is a
// separate world anyway.
type testKeys struct {
	rs384, es384, jwtBearer []byte
}

var (
	keysOnce     sync.Once
	sharedKeySet testKeys
)

func sharedKeys(t testing.TB) testKeys {
	t.Helper()
	keysOnce.Do(func() {
		sharedKeySet = testKeys{
			rs384:     generatePEM(t, "RS384"),
			es384:     generatePEM(t, "ES384"),
			jwtBearer: generatePEM(t, "RS384"),
		}
	})
	if sharedKeySet.rs384 == nil || sharedKeySet.es384 == nil || sharedKeySet.jwtBearer == nil {
		t.Fatal("interop: test key generation failed earlier")
	}
	return sharedKeySet
}

// generatePEM makes a fresh private key for alg, as PKCS #8 PEM.
func generatePEM(t testing.TB, alg string) []byte {
	t.Helper()
	var (
		key any
		err error
	)
	switch alg {
	case "RS384":
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ES384":
		key, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	default:
		t.Fatalf("interop: no key generator for %s", alg)
	}
	if err != nil {
		t.Fatalf("interop: generate %s key: %v", alg, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("interop: marshal key: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// signAssertion signs an RFC 7523 JWT with c's key using go-jose.
func signAssertion(t testing.TB, c Client, claims map[string]any) string {
	t.Helper()
	key, err := parsePKCS8(c.KeyPEM)
	if err != nil {
		t.Fatalf("%v", err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{
		Algorithm: jose.SignatureAlgorithm(c.Alg),
		Key:       jose.JSONWebKey{Key: key, KeyID: c.KeyID},
	}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatalf("interop: signer: %v", err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatalf("interop: claims: %v", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatalf("interop: sign: %v", err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		t.Fatalf("interop: serialize: %v", err)
	}
	return s
}
