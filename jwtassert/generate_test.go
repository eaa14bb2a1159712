package jwtassert

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"testing"
)

func TestGenerateKey(t *testing.T) {
	tests := []struct {
		alg  string
		want string // key description
	}{
		{"RS256", "RSA 2048"}, {"RS384", "RSA 2048"}, {"RS512", "RSA 2048"},
		{"PS256", "RSA 2048"}, {"PS384", "RSA 2048"}, {"PS512", "RSA 2048"},
		{"ES256", "P-256"}, {"ES384", "P-384"}, {"ES512", "P-521"},
		{"EdDSA", "Ed25519"},
	}
	for _, tt := range tests {
		t.Run(tt.alg, func(t *testing.T) {
			key, err := GenerateKey(tt.alg)
			if err != nil {
				t.Fatalf("GenerateKey: %v", err)
			}
			if got := describe(key); got != tt.want {
				t.Errorf("GenerateKey(%s) made a %s key, want %s", tt.alg, got, tt.want)
			}

			// EncodePEM → ParsePEM round trip, with the requested algorithm.
			p, err := EncodePEM(key)
			if err != nil {
				t.Fatalf("EncodePEM: %v", err)
			}
			s, err := ParsePEM(p, Options{KeyID: "k", Algorithm: tt.alg})
			if err != nil {
				t.Fatalf("ParsePEM(EncodePEM(key)): %v", err)
			}
			if !samePublic(s.Public(), key.Public()) || s.Algorithm() != tt.alg {
				t.Errorf("round trip gave %v with a different key", s)
			}
		})
	}
}

func describe(k crypto.Signer) string {
	switch k := k.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() == 2048 {
			return "RSA 2048"
		}
		return "RSA other"
	case *ecdsa.PrivateKey:
		return k.Curve.Params().Name
	case ed25519.PrivateKey:
		return "Ed25519"
	}
	return "unknown"
}

func TestGenerateKeyUnsupported(t *testing.T) {
	for _, alg := range []string{"", "HS256", "none", "es256", "RSA-OAEP"} {
		if _, err := GenerateKey(alg); !errors.Is(err, ErrUnsupportedAlgorithm) {
			t.Errorf("GenerateKey(%q) error %v, want ErrUnsupportedAlgorithm", alg, err)
		}
	}
}

func TestEncodePEMErrors(t *testing.T) {
	ed := testKey(t, "Ed25519").(ed25519.PrivateKey)
	if p, err := EncodePEM(&ed); err != nil || len(p) == 0 {
		t.Errorf("EncodePEM(*ed25519.PrivateKey): %v", err)
	}
	tests := []struct {
		name string
		key  crypto.Signer
		want error
	}{
		{"nil", nil, ErrUnsupportedKey},
		{"opaque", opaqueSigner{testKey(t, "P256")}, ErrUnsupportedKey},
		{"weak RSA", testKey(t, "RSA1024"), ErrWeakKey},
		{"P-224", testKey(t, "P224"), ErrUnsupportedKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := EncodePEM(tt.key); !errors.Is(err, tt.want) {
				t.Errorf("EncodePEM error %v, want %v", err, tt.want)
			}
		})
	}
}
