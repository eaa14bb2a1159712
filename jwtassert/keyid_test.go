package jwtassert

import (
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPEMKeyIDRoundTrip: a key ID written with EncodePEMWithKeyID is the
// key ID of the Signer that ParsePEM and LoadPEMFile return when
// Options.KeyID is empty; an explicit Options.KeyID wins.
func TestPEMKeyIDRoundTrip(t *testing.T) {
	for _, name := range []string{"P384", "RSA2048", "Ed25519"} {
		t.Run(name, func(t *testing.T) {
			data, err := EncodePEMWithKeyID(testKey(t, name), "k1")
			if err != nil {
				t.Fatal(err)
			}
			block, _ := pem.Decode(data)
			if block == nil || block.Headers["kid"] != "k1" {
				t.Fatalf("PEM block has no kid header k1")
			}
			s, err := ParsePEM(data, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if s.KeyID() != "k1" {
				t.Errorf("ParsePEM kid = %q, want k1", s.KeyID())
			}
			s, err = ParsePEM(data, Options{KeyID: "explicit"})
			if err != nil {
				t.Fatal(err)
			}
			if s.KeyID() != "explicit" {
				t.Errorf("ParsePEM with Options.KeyID: kid = %q, want explicit", s.KeyID())
			}
			path := filepath.Join(t.TempDir(), "key.pem")
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			s, err = LoadPEMFile(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if s.KeyID() != "k1" {
				t.Errorf("LoadPEMFile kid = %q, want k1", s.KeyID())
			}
		})
	}
}

// TestPEMKeyIDRejectsBadKeyID: a key ID that cannot live in a PEM header
// line is refused rather than written as a broken file.
func TestPEMKeyIDRejectsBadKeyID(t *testing.T) {
	for _, kid := range []string{"a\nb", "a\rb", " k1", "k1 ", strings.Repeat("k", 300)} {
		if _, err := EncodePEMWithKeyID(testKey(t, "P256"), kid); !errors.Is(err, ErrUnsupportedKey) {
			t.Errorf("kid #%d: err = %v, want ErrUnsupportedKey", len(kid), err)
		}
	}
	// Empty: no header, as EncodePEM.
	data, err := EncodePEMWithKeyID(testKey(t, "P256"), "")
	if err != nil {
		t.Fatal(err)
	}
	if block, _ := pem.Decode(data); block == nil || len(block.Headers) != 0 {
		t.Error("empty key ID wrote a PEM header")
	}
}

// TestPEMWithoutKeyIDHeader: keys without a kid header still load with an
// empty key ID (Sign then fails with ErrMissingKeyID).
func TestPEMWithoutKeyIDHeader(t *testing.T) {
	data, err := EncodePEM(testKey(t, "P256"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParsePEM(data, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.KeyID() != "" {
		t.Errorf("kid = %q, want empty", s.KeyID())
	}
}

// TestParsePEMReadsKeyIDHeader: a "kid" PEM header written by any tool
// (encoding/pem headers) names the key when Options.KeyID is empty.
func TestParsePEMReadsKeyIDHeader(t *testing.T) {
	data, err := EncodePEM(testKey(t, "P384"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	block.Headers = map[string]string{"kid": "k1"}
	s, err := ParsePEM(pem.EncodeToMemory(block), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.KeyID() != "k1" {
		t.Errorf("kid = %q, want k1", s.KeyID())
	}
}
