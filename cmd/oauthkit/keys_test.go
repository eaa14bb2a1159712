package main

import (
	"crypto"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// privateMembers are the JWK members that hold private key material.
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "k", "oth"}

// parseJWKS decodes a JWK Set printed by oauthkit, checks that no key
// has private members and returns the keys as generic maps and as JWKs.
func parseJWKS(t *testing.T, out string) ([]map[string]any, jose.JSONWebKeySet) {
	t.Helper()
	var raw struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatalf("output is not a JWK Set: %v", err)
	}
	for i, k := range raw.Keys {
		for _, m := range privateMembers {
			if _, ok := k[m]; ok {
				t.Fatalf("key %d has private member %q", i, m)
			}
		}
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(out), &set); err != nil {
		t.Fatalf("JWK Set: %v", err)
	}
	return raw.Keys, set
}

func jwkThumbprint(t *testing.T, k jose.JSONWebKey) string {
	t.Helper()
	sum, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(sum)
}

// TestThumbprintRFC7638 checks the key ID code against the example of
// RFC 7638 §3.1.
func TestThumbprintRFC7638(t *testing.T) {
	const (
		n    = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
		e    = "AQAB"
		want = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
	)
	nb, err := base64.RawURLEncoding.DecodeString(n)
	if err != nil {
		t.Fatal(err)
	}
	eb, err := base64.RawURLEncoding.DecodeString(e)
	if err != nil {
		t.Fatal(err)
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(nb), E: int(new(big.Int).SetBytes(eb).Int64())}
	got, err := thumbprint(pub)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("thumbprint = %q, want %q", got, want)
	}
}

func TestKeygen(t *testing.T) {
	tests := []struct {
		alg, kty string
	}{
		{"ES384", "EC"},
		{"ES256", "EC"},
		{"RS384", "RSA"},
		{"PS256", "RSA"},
		{"EdDSA", "OKP"},
	}
	for _, tt := range tests {
		t.Run(tt.alg, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "key.pem")
			r := oauthkit(t, nil, "keygen", "-alg", tt.alg, "-kid", "k1", "-out", path)
			wantCode(t, r, 0, true)
			if runtime.GOOS != "windows" {
				fi, err := os.Stat(path)
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode().Perm() != 0o600 {
					t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
				}
			}
			pemBytes, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(pemBytes), "-----BEGIN PRIVATE KEY-----") {
				t.Errorf("key file is not a PKCS #8 PEM")
			}
			if strings.Contains(r.stdout+r.stderr, "PRIVATE KEY") {
				t.Errorf("keygen printed the private key")
			}
			keys, _ := parseJWKS(t, r.stdout)
			if len(keys) != 1 {
				t.Fatalf("%d keys, want 1", len(keys))
			}
			if keys[0]["kid"] != "k1" || keys[0]["alg"] != tt.alg || keys[0]["kty"] != tt.kty || keys[0]["use"] != "sig" {
				t.Errorf("key = kid %v alg %v kty %v use %v, want k1 %s %s sig", keys[0]["kid"], keys[0]["alg"], keys[0]["kty"], keys[0]["use"], tt.alg, tt.kty)
			}

			// jwks prints the same public key.
			r2 := oauthkit(t, nil, "jwks", "-kid", "k1", "-alg", tt.alg, path)
			wantCode(t, r2, 0, true)
			if r2.stdout != r.stdout {
				t.Errorf("jwks output differs from keygen's")
			}
		})
	}
}

func TestKeygenRefusesOverwrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key.pem")
	wantCode(t, oauthkit(t, nil, "keygen", "-out", path), 0, true)
	first, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	r := oauthkit(t, nil, "keygen", "-out", path)
	wantCode(t, r, 1, true)
	if !strings.Contains(r.stderr, "already exists") || r.stdout != "" {
		t.Errorf("stderr = %q, stdout %d bytes; want 'already exists' and no output", r.stderr, len(r.stdout))
	}
	if again, _ := os.ReadFile(path); string(again) != string(first) {
		t.Fatal("the existing key was changed")
	}

	if runtime.GOOS != "windows" {
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	wantCode(t, oauthkit(t, nil, "keygen", "-force", "-out", path), 0, true)
	replaced, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(replaced) == string(first) {
		t.Error("-force did not replace the key")
	}
	if fi, _ := os.Stat(path); runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("replaced key file mode %v, want 0600", fi.Mode().Perm())
	}
	if matches, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*tmp*")); len(matches) != 0 {
		t.Errorf("temporary files left behind: %v", matches)
	}
}

func TestJWKSThumbprintKeyID(t *testing.T) {
	dir := t.TempDir()
	k1, k2 := filepath.Join(dir, "k1.pem"), filepath.Join(dir, "k2.pem")
	gen := oauthkit(t, nil, "keygen", "-alg", "RS384", "-out", k1)
	wantCode(t, gen, 0, true)
	wantCode(t, oauthkit(t, nil, "keygen", "-alg", "ES256", "-out", k2), 0, true)

	// Without -kid the key ID is the RFC 7638 thumbprint, the same in
	// keygen and jwks, and stable across runs.
	_, genSet := parseJWKS(t, gen.stdout)
	if want := jwkThumbprint(t, genSet.Keys[0]); genSet.Keys[0].KeyID != want {
		t.Errorf("keygen kid %q, want the thumbprint %q", genSet.Keys[0].KeyID, want)
	}
	r := oauthkit(t, nil, "jwks", k1, k2)
	wantCode(t, r, 0, true)
	_, set := parseJWKS(t, r.stdout)
	if len(set.Keys) != 2 {
		t.Fatalf("%d keys, want 2", len(set.Keys))
	}
	for i, k := range set.Keys {
		if want := jwkThumbprint(t, k); k.KeyID != want {
			t.Errorf("key %d: kid %q, want the thumbprint %q", i, k.KeyID, want)
		}
		if !k.IsPublic() {
			t.Errorf("key %d is not public", i)
		}
	}
	if set.Keys[0].KeyID != genSet.Keys[0].KeyID || set.Keys[0].Algorithm != "RS384" || set.Keys[1].Algorithm != "ES256" {
		t.Errorf("keys = %s/%s, %s/%s", set.Keys[0].KeyID, set.Keys[0].Algorithm, set.Keys[1].KeyID, set.Keys[1].Algorithm)
	}
	if again := oauthkit(t, nil, "jwks", k1, k2); again.stdout != r.stdout {
		t.Error("jwks output is not stable")
	}
}

func TestJWKSErrors(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "key.pem")
	wantCode(t, oauthkit(t, nil, "keygen", "-alg", "ES384", "-out", key), 0, true)
	notKey := filepath.Join(dir, "not-a-key.pem")
	if err := os.WriteFile(notKey, []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"missing file", []string{"jwks", filepath.Join(dir, "nope.pem")}, 1, "nope.pem"},
		{"not a key", []string{"jwks", notKey}, 1, "oauthkit: "},
		{"wrong algorithm", []string{"jwks", "-alg", "RS256", key}, 1, "oauthkit: "},
		{"kid with two keys", []string{"jwks", "-kid", "a", key, key}, 2, "single key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := oauthkit(t, nil, tt.args...)
			wantCode(t, r, tt.code, true)
			if !strings.Contains(r.stderr, tt.want) || strings.Count(strings.TrimSpace(r.stderr), "\n") > 1 {
				t.Errorf("stderr = %q, want one or two lines with %q", r.stderr, tt.want)
			}
		})
	}
}
