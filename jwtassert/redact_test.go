package jwtassert

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"testing"
)

// secretForms returns encodings of k's private scalar(s) that must never
// appear in output.
func secretForms(t *testing.T, k crypto.Signer, pemBytes []byte) []string {
	t.Helper()
	var raws [][]byte
	var ints []*big.Int
	switch k := k.(type) {
	case *rsa.PrivateKey:
		ints = append(ints, k.D, k.Primes[0], k.Primes[1])
	case *ecdsa.PrivateKey:
		ints = append(ints, k.D)
	case ed25519.PrivateKey:
		raws = append(raws, k.Seed())
	}
	for _, n := range ints {
		raws = append(raws, n.Bytes())
	}
	var forms []string
	for _, r := range raws {
		forms = append(forms,
			base64.RawURLEncoding.EncodeToString(r),
			base64.StdEncoding.EncodeToString(r),
			hex.EncodeToString(r),
			fmt.Sprint(r)[:40], // a Go byte-slice dump prefix
		)
	}
	for _, n := range ints {
		forms = append(forms, n.String()[:40])
	}
	// Every full base64 line of the PEM body.
	for _, line := range strings.Split(string(pemBytes), "\n") {
		if len(line) == 64 {
			forms = append(forms, line)
		}
	}
	return forms
}

func TestRedaction(t *testing.T) {
	for _, name := range []string{"RSA2048", "P384", "Ed25519"} {
		t.Run(name, func(t *testing.T) {
			key := testKey(t, name)
			pemBytes := pemPKCS8Bytes(t, key)
			s, err := ParsePEM(pemBytes, Options{KeyID: "kid-" + name, JKU: "https://client.example/jwks"})
			if err != nil {
				t.Fatal(err)
			}
			ks, err := NewKeySet(s)
			if err != nil {
				t.Fatal(err)
			}

			var outputs []string
			for _, v := range []any{s, ks, *s} {
				for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
					outputs = append(outputs, fmt.Sprintf(verb, v))
				}
				outputs = append(outputs, fmt.Sprint(v), fmt.Sprintln(v), fmt.Sprintf("%v", []any{v}))
			}
			var buf bytes.Buffer
			for _, h := range []slog.Handler{slog.NewTextHandler(&buf, nil), slog.NewJSONHandler(&buf, nil)} {
				slog.New(h).Info("loaded", "signer", s, "keyset", ks)
			}
			outputs = append(outputs, buf.String())

			forms := secretForms(t, key, pemBytes)
			for i, out := range outputs {
				for _, f := range forms {
					if strings.Contains(out, f) {
						t.Fatalf("output %d (%d bytes) contains private key material", i, len(out))
					}
				}
			}
			for i, out := range outputs[:2] {
				if !strings.Contains(out, "kid-"+name) || !strings.Contains(out, s.Algorithm()) {
					t.Errorf("output %d = %q, want kid and alg", i, out)
				}
			}
			if log := buf.String(); !strings.Contains(log, "signer.kid=kid-"+name) || !strings.Contains(log, `"alg":"`+s.Algorithm()+`"`) {
				t.Errorf("slog output = %q, want alg and kid attributes", log)
			}
		})
	}
}
