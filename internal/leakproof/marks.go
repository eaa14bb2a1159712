package leakproof

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/big"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// MarkerPrefix starts every planted marker. Markers are fake secrets, so
// reports may name them; they are unique per planted place.
const MarkerPrefix = "SECRETmarker"

// encodings returns the forms in which the bytes b may show up in printed
// output: as is, hex (the %x verb), base64 (JSON of a []byte) and the
// decimal byte list of %v. Prefixes are used where an encoding of a longer
// value would only contain part of the encoding of b.
func encodings(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	forms := []string{string(b), hex.EncodeToString(b), strings.ToUpper(hex.EncodeToString(b))}
	if n := len(b) / 3 * 3; n >= 6 {
		forms = append(forms,
			base64.StdEncoding.EncodeToString(b[:n]),
			base64.RawURLEncoding.EncodeToString(b[:n]))
	}
	if len(b) >= 8 {
		var dec []string
		for _, c := range b[:min(len(b), 12)] {
			dec = append(dec, strconv.Itoa(int(c)))
		}
		forms = append(forms, strings.Join(dec, " "))
	}
	return forms
}

// bigForms returns the forms of a private scalar: decimal (%v of a
// *big.Int), hex (%x) and the encodings of its big-endian bytes.
func bigForms(d *big.Int) []string {
	forms := []string{d.String(), d.Text(16), strings.ToUpper(d.Text(16))}
	return append(forms, encodings(d.Bytes())[1:]...)
}

// keyMaterial is a generated private key and the forms of its secret part.
type keyMaterial struct {
	kind  string
	key   any
	forms []string
}

// keySet holds one generated key of each supported kind.
type keySet struct {
	rsa, ec, ed *keyMaterial
}

// newKeySet generates an RSA, an ECDSA P-256 and an Ed25519 key.
func newKeySet() (*keySet, error) {
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("leakproof: generate RSA key: %w", err)
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("leakproof: generate ECDSA key: %w", err)
	}
	_, dk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("leakproof: generate Ed25519 key: %w", err)
	}
	rsaForms := bigForms(rk.D)
	for _, p := range rk.Primes {
		rsaForms = append(rsaForms, bigForms(p)...)
	}
	ecBytes, err := ek.Bytes()
	if err != nil {
		return nil, fmt.Errorf("leakproof: ECDSA key bytes: %w", err)
	}
	ecForms := append(bigForms(new(big.Int).SetBytes(ecBytes)), encodings(ecBytes)[1:]...)
	return &keySet{
		rsa: &keyMaterial{kind: "RSA key", key: rk, forms: rsaForms},
		ec:  &keyMaterial{kind: "ECDSA key", key: ek, forms: ecForms},
		ed:  &keyMaterial{kind: "Ed25519 key", key: dk, forms: append(encodings(dk.Seed())[1:], encodings(dk)[1:]...)},
	}, nil
}

// forType returns the key whose Go type is t.
func (k *keySet) forType(t reflect.Type) *keyMaterial {
	switch t {
	case typeRSAKey:
		return k.rsa
	case typeECDSAKey:
		return k.ec
	}
	return k.ed
}

// pick returns one of the keys, by variant.
func (k *keySet) pick(variant int) *keyMaterial {
	return []*keyMaterial{k.ec, k.rsa, k.ed}[variant%3]
}

// plant is one planted secret: where it was put and how it may print.
type plant struct {
	path  string
	forms []string
}

// book records every marker and key planted into one value.
type book struct {
	next   *int // shared counter, so markers are unique across values
	plants []plant
}

// marker returns a fresh marker and records that it was put at path.
func (b *book) marker(path string) string {
	*b.next++
	m := fmt.Sprintf("%s%04d", MarkerPrefix, *b.next)
	b.plants = append(b.plants, plant{path: path, forms: encodings([]byte(m))})
	return m
}

// addKey records that key k was put at path.
func (b *book) addKey(path string, k *keyMaterial) {
	b.plants = append(b.plants, plant{path: path + " (" + k.kind + ")", forms: k.forms})
}

// scan returns, sorted, the paths of the planted secrets found in text.
func (b *book) scan(text string) []string {
	var found []string
	for _, p := range b.plants {
		for _, f := range p.forms {
			if len(f) >= 8 && strings.Contains(text, f) {
				found = append(found, p.path)
				break
			}
		}
	}
	sort.Strings(found)
	return found
}
