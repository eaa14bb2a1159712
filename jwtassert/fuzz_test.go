package jwtassert

import (
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// checkParsed asserts the contract of a parse result: an error with the
// package prefix, or a Signer whose assertions verify with its public key.
func checkParsed(t *testing.T, s *Signer, err error) {
	t.Helper()
	if err != nil {
		if s != nil {
			t.Fatal("both a Signer and an error")
		}
		if !strings.HasPrefix(err.Error(), "jwtassert: ") {
			t.Fatalf("error %q lacks the package prefix", err)
		}
		return
	}
	token, err := s.Sign(Claims{Issuer: "c", Subject: "c", Audience: "https://as.example/token"})
	if err != nil {
		t.Fatalf("Sign with a parsed key: %v", err)
	}
	verify(t, token, s.Algorithm(), s.Public())
	if _, err := JWKS(s); err != nil {
		t.Fatalf("JWKS of a parsed key: %v", err)
	}
}

func FuzzParsePEM(f *testing.F) {
	rsaKey := testKey(f, "RSA2048")
	p256 := testKey(f, "P256")
	p384 := testKey(f, "P384")
	p521 := testKey(f, "P521")
	ed := testKey(f, "Ed25519")

	seeds := [][]byte{
		pemPKCS1Bytes(f, rsaKey),
		pemPKCS8Bytes(f, rsaKey),
		pemPKCS8Bytes(f, p256),
		pemSEC1Bytes(f, p256),
		pemSEC1Bytes(f, p384),
		pemSEC1Bytes(f, p521),
		pemPKCS8Bytes(f, ed),
		concat(pemCertificate(f, p256), pemPKCS8Bytes(f, p256)),
		pemPublicBytes(f, rsaKey),
		pemPKCS1Bytes(f, testKey(f, "RSA1024")),
		pemSEC1Bytes(f, testKey(f, "P224")),
	}
	good := pemPKCS8Bytes(f, p384)
	block, _ := pem.Decode(good)
	seeds = append(seeds,
		good[:len(good)/2], // truncated PEM
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: block.Bytes[:len(block.Bytes)-7]}),
		pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: block.Bytes}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: block.Bytes}),
		pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: block.Bytes}),
		[]byte("-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n"),
		[]byte("-----BEGIN EC PRIVATE KEY-----\nMAA=\n-----END EC PRIVATE KEY-----\n"),
		[]byte(`{"kty":"EC"}`),
		nil,
	)
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParsePEM(data, Options{KeyID: "fuzz"})
		checkParsed(t, s, err)
	})
}

func FuzzParseJWK(f *testing.F) {
	jwk := func(k jose.JSONWebKey) []byte {
		b, err := json.Marshal(k)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	rsaKey := testKey(f, "RSA2048")
	p256 := testKey(f, "P256")
	ed := testKey(f, "Ed25519")
	privP256 := jwk(jose.JSONWebKey{Key: p256, KeyID: "e", Algorithm: "ES256", Use: "sig"})

	seeds := [][]byte{
		jwk(jose.JSONWebKey{Key: rsaKey, KeyID: "r", Algorithm: "PS384"}),
		privP256,
		jwk(jose.JSONWebKey{Key: testKey(f, "P384"), KeyID: "e3"}),
		jwk(jose.JSONWebKey{Key: testKey(f, "P521"), KeyID: "e5"}),
		jwk(jose.JSONWebKey{Key: ed, KeyID: "d"}),
		jwk(jose.JSONWebKey{Key: ed.Public(), KeyID: "pub"}),
		jwk(jose.JSONWebKey{Key: []byte("0123456789abcdef"), KeyID: "h", Algorithm: "HS256"}),
		jwk(jose.JSONWebKey{Key: testKey(f, "RSA1024"), KeyID: "weak"}),
		[]byte(`{"keys":[` + string(jwk(jose.JSONWebKey{Key: rsaKey.Public(), KeyID: "p"})) + `,` + string(privP256) + `]}`),
		[]byte(`{"keys":[]}`),
		[]byte(`{"keys":{}}`),
		[]byte(`{"kty":"RSA","n":"AQAB","e":"AQAB","d":"AQAB","p":"AQ","q":"AQ"}`),
		[]byte(`{"kty":"OKP","crv":"Ed25519","d":"AAAA","x":"AAAA"}`),
		[]byte(`{"kty":"EC","crv":"P-256","d":"!!","x":"","y":""}`),
		privP256[:len(privP256)/2],
		[]byte(`null`),
		[]byte(`[]`),
		nil,
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseJWK(data, Options{})
		if err == nil && s.KeyID() == "" {
			// Parsed keys without a kid cannot sign; give them one.
			s, err = ParseJWK(data, Options{KeyID: "fuzz"})
		}
		checkParsed(t, s, err)
	})
}
