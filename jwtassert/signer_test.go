package jwtassert

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"errors"
	"strings"
	"testing"
)

func TestAlgorithmInference(t *testing.T) {
	tests := []struct {
		key  string
		want string
	}{
		{"RSA2048", "RS384"},
		{"P256", "ES256"},
		{"P384", "ES384"},
		{"P521", "ES512"},
		{"Ed25519", "EdDSA"},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			for _, wrap := range []bool{false, true} {
				var key crypto.Signer = testKey(t, tt.key)
				if wrap {
					key = opaqueSigner{key}
				}
				s, err := NewSigner(key, Options{KeyID: "k"})
				if err != nil {
					t.Fatalf("NewSigner(opaque=%v): %v", wrap, err)
				}
				if s.Algorithm() != tt.want {
					t.Errorf("Algorithm() (opaque=%v) = %q, want %q", wrap, s.Algorithm(), tt.want)
				}
			}
		})
	}
}

func TestExplicitAlgorithm(t *testing.T) {
	tests := []struct {
		key  string
		alg  string
		want error // nil: accepted
	}{
		{"RSA2048", "RS256", nil},
		{"RSA2048", "RS384", nil},
		{"RSA2048", "RS512", nil},
		{"RSA2048", "PS256", nil},
		{"RSA2048", "PS384", nil},
		{"RSA2048", "PS512", nil},
		{"P256", "ES256", nil},
		{"P384", "ES384", nil},
		{"P521", "ES512", nil},
		{"Ed25519", "EdDSA", nil},

		{"RSA2048", "ES256", ErrAlgorithmMismatch},
		{"RSA2048", "EdDSA", ErrAlgorithmMismatch},
		{"P256", "ES384", ErrAlgorithmMismatch},
		{"P384", "ES256", ErrAlgorithmMismatch},
		{"P384", "ES512", ErrAlgorithmMismatch},
		{"P521", "ES384", ErrAlgorithmMismatch},
		{"P256", "RS256", ErrAlgorithmMismatch},
		{"Ed25519", "ES256", ErrAlgorithmMismatch},
		{"Ed25519", "PS256", ErrAlgorithmMismatch},

		{"RSA2048", "HS256", ErrUnsupportedAlgorithm},
		{"P256", "none", ErrUnsupportedAlgorithm},
		{"P256", "es256", ErrUnsupportedAlgorithm},
		{"Ed25519", "Ed25519", ErrUnsupportedAlgorithm},
		{"RSA2048", "RSA-OAEP", ErrUnsupportedAlgorithm},
	}
	for _, tt := range tests {
		t.Run(tt.key+"/"+tt.alg, func(t *testing.T) {
			s, err := NewSigner(testKey(t, tt.key), Options{KeyID: "k", Algorithm: tt.alg})
			if tt.want == nil {
				if err != nil {
					t.Fatalf("NewSigner: %v", err)
				}
				if s.Algorithm() != tt.alg {
					t.Errorf("Algorithm() = %q, want %q", s.Algorithm(), tt.alg)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("NewSigner error %v, want %v", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "jwtassert: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestWeakRSA(t *testing.T) {
	weak := testKey(t, "RSA1024")
	tests := []struct {
		name  string
		build func() (*Signer, error)
	}{
		{"NewSigner", func() (*Signer, error) { return NewSigner(weak, Options{KeyID: "w"}) }},
		{"NewSigner RS256", func() (*Signer, error) { return NewSigner(weak, Options{KeyID: "w", Algorithm: "RS256"}) }},
		{"NewSigner opaque", func() (*Signer, error) { return NewSigner(opaqueSigner{weak}, Options{KeyID: "w"}) }},
		{"ParsePEM PKCS1", func() (*Signer, error) { return ParsePEM(pemPKCS1Bytes(t, weak), Options{}) }},
		{"ParsePEM PKCS8", func() (*Signer, error) { return ParsePEM(pemPKCS8Bytes(t, weak), Options{}) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.build()
			if !errors.Is(err, ErrWeakKey) {
				t.Fatalf("error %v, want ErrWeakKey", err)
			}
			if !strings.Contains(err.Error(), "1024 bits") {
				t.Errorf("error %q should give the key size", err)
			}
		})
	}
}

func TestNewSignerInvalid(t *testing.T) {
	var nilRSA *rsa.PrivateKey
	tests := []struct {
		name string
		key  crypto.Signer
		opts Options
		want error
	}{
		{"nil", nil, Options{}, ErrNoPrivateKey},
		{"typed nil RSA", nilRSA, Options{}, ErrUnsupportedKey},
		{"zero RSA", &rsa.PrivateKey{}, Options{}, ErrUnsupportedKey},
		{"zero ECDSA", &ecdsa.PrivateKey{}, Options{}, ErrUnsupportedKey},
		{"P-224", testKey(t, "P224"), Options{}, ErrUnsupportedKey},
		{"opaque P-224", opaqueSigner{testKey(t, "P224")}, Options{}, ErrUnsupportedKey},
		{"JKU http remote", testKey(t, "P256"), Options{JKU: "http://example.com/jwks.json"}, nil},
		{"JKU relative", testKey(t, "P256"), Options{JKU: "/jwks.json"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewSigner(tt.key, tt.opts)
			if err == nil {
				t.Fatalf("NewSigner succeeded (%v), want error", s)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("error %v, want %v", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "jwtassert: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestJKUAccepted(t *testing.T) {
	for _, jku := range []string{"https://example.com/.well-known/jwks.json", "http://127.0.0.1:8080/jwks", "http://localhost/jwks", "http://[::1]/jwks"} {
		s, err := NewSigner(testKey(t, "P256"), Options{KeyID: "k", JKU: jku})
		if err != nil {
			t.Errorf("NewSigner(JKU %q): %v", jku, err)
			continue
		}
		if s.JKU() != jku {
			t.Errorf("JKU() = %q, want %q", s.JKU(), jku)
		}
	}
}

func TestPublicJWK(t *testing.T) {
	for _, name := range []string{"RSA2048", "P384", "Ed25519"} {
		s, err := NewSigner(testKey(t, name), Options{KeyID: "kid-" + name})
		if err != nil {
			t.Fatal(err)
		}
		jwk := s.PublicJWK()
		if !jwk.IsPublic() || !jwk.Valid() {
			t.Errorf("%s: PublicJWK is not a valid public key", name)
		}
		if jwk.KeyID != "kid-"+name || jwk.Algorithm != s.Algorithm() || jwk.Use != "sig" {
			t.Errorf("%s: PublicJWK kid=%q alg=%q use=%q", name, jwk.KeyID, jwk.Algorithm, jwk.Use)
		}
	}
}
