package main

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/oauthkit/oauthkit/oauthclient"
	"github.com/oauthkit/oauthkit/oauthtest"
)

// keygenKey runs "oauthkit keygen" into dir and returns the key path and
// the printed JWK Set.
func keygenKey(t *testing.T, dir, name string, args ...string) (string, string) {
	t.Helper()
	path := filepath.Join(dir, name)
	r := oauthkit(t, nil, append([]string{"keygen", "-out", path}, args...)...)
	wantCode(t, r, 0, true)
	return path, r.stdout
}

func kids(t *testing.T, jwks string) []string {
	t.Helper()
	_, set := parseJWKS(t, jwks)
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.KeyID)
	}
	return out
}

// TestKeygenKeyIDRemembered: "keygen -kid k1" stores the kid with the key;
// "jwks key.pem" publishes k1 and "token -key key.pem" signs with k1,
// both without -kid.
func TestKeygenKeyIDRemembered(t *testing.T) {
	dir := t.TempDir()
	key, gen := keygenKey(t, dir, "k.pem", "-kid", "k1")
	r := oauthkit(t, nil, "jwks", key)
	wantCode(t, r, 0, true)
	if got := kids(t, r.stdout); len(got) != 1 || got[0] != "k1" {
		t.Fatalf("jwks kids = %v, want [k1]", got)
	}
	srv := oauthtest.NewServer()
	defer srv.Close()
	if err := srv.RegisterClient(oauthtest.Client{ID: "backend", JWKS: []byte(gen), AuthMethod: oauthtest.AuthPrivateKeyJWT}); err != nil {
		t.Fatal(err)
	}
	r = oauthkit(t, nil, "token", "-token-url", srv.TokenURL(), "-client-id", "backend", "-key", key, "-cache", "memory")
	wantCode(t, r, 0, true)
}

// TestJWKSEachKeyOwnKeyID: several key files publish each key with its own
// remembered kid.
func TestJWKSEachKeyOwnKeyID(t *testing.T) {
	dir := t.TempDir()
	a, _ := keygenKey(t, dir, "a.pem", "-kid", "2025")
	b, _ := keygenKey(t, dir, "b.pem", "-kid", "2026", "-alg", "RS384")
	r := oauthkit(t, nil, "jwks", a, b)
	wantCode(t, r, 0, true)
	if got := strings.Join(kids(t, r.stdout), ","); got != "2025,2026" {
		t.Errorf("kids = %s, want 2025,2026", got)
	}
}

// TestAlgCaseInsensitive: -alg accepts any letter case.
func TestAlgCaseInsensitive(t *testing.T) {
	dir := t.TempDir()
	key, _ := keygenKey(t, dir, "k.pem", "-alg", "es384", "-kid", "k1")
	r := oauthkit(t, nil, "jwks", "-alg", "es384", key)
	wantCode(t, r, 0, true)
	_, set := parseJWKS(t, r.stdout)
	if set.Keys[0].Algorithm != "ES384" {
		t.Errorf("alg = %q, want ES384", set.Keys[0].Algorithm)
	}
	key2, _ := keygenKey(t, dir, "e.pem", "-alg", "eddsa", "-kid", "k2")
	r = oauthkit(t, nil, "jwks", "-alg", "EDDSA", key2)
	wantCode(t, r, 0, true)
}

// TestKeyFileJWK: -key (and jwks) accept a private JWK file.
func TestKeyFileJWK(t *testing.T) {
	dir := t.TempDir()
	pemKey, gen := keygenKey(t, dir, "k.pem", "-kid", "jwk-1")
	// The same key as a private JWK.
	r := oauthkit(t, nil, "jwks", pemKey)
	wantCode(t, r, 0, true)
	signer := loadTestSigner(t, pemKey)
	priv, err := (&jose.JSONWebKey{Key: signer, KeyID: "jwk-1", Algorithm: "ES384", Use: "sig"}).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	jwkPath := filepath.Join(dir, "k.jwk")
	if err := os.WriteFile(jwkPath, priv, 0o600); err != nil {
		t.Fatal(err)
	}
	srv := oauthtest.NewServer()
	defer srv.Close()
	if err := srv.RegisterClient(oauthtest.Client{ID: "backend", JWKS: []byte(gen), AuthMethod: oauthtest.AuthPrivateKeyJWT}); err != nil {
		t.Fatal(err)
	}
	r = oauthkit(t, nil, "token", "-token-url", srv.TokenURL(), "-client-id", "backend", "-key", jwkPath, "-cache", "memory")
	wantCode(t, r, 0, true)
	r = oauthkit(t, nil, "jwks", jwkPath)
	wantCode(t, r, 0, true)
	if got := kids(t, r.stdout); len(got) != 1 || got[0] != "jwk-1" {
		t.Errorf("jwks of a JWK file: kids %v, want [jwk-1]", got)
	}
}

// TestErrorsNameFlagsWithOnePrefix: failures print one "oauthkit:" line
// that names flags, never Go fields, and no second package prefix.
func TestErrorsNameFlagsWithOnePrefix(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"plain http token URL", []string{"token", "-token-url", "http://as.example/token", "-client-id", "c", "-cache", "memory"}, "-token-url"},
		{"plain http FHIR base", []string{"discover", "http://fhir.example/r4"}, "https"},
		{"plain http FHIR base in token", []string{"token", "-fhir-base", "http://fhir.example/r4", "-client-id", "c", "-cache", "memory"}, "-fhir-base"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := oauthkit(t, nil, tt.args...)
			wantCode(t, r, 1, true)
			if strings.Count(r.stderr, "oauthkit:") != 1 || !strings.HasPrefix(r.stderr, "oauthkit: ") {
				t.Errorf("stderr is not one 'oauthkit:' line: %q", r.stderr)
			}
			for _, bad := range []string{"oauthclient:", "jwtassert:", "tokencache:", "Config."} {
				if strings.Contains(r.stderr, bad) {
					t.Errorf("stderr contains %q: %q", bad, r.stderr)
				}
			}
			if !strings.Contains(r.stderr, tt.want) {
				t.Errorf("stderr lacks %q: %q", tt.want, r.stderr)
			}
		})
	}
}

// TestRefreshTokenMissingIsNotReLogin: with no token of 'oauthkit login'
// under these settings (say, another scope set) the error says so; it
// does not claim a refresh token was rejected.
func TestRefreshTokenMissingIsNotReLogin(t *testing.T) {
	srv := oauthtest.NewServer()
	defer srv.Close()
	cache := "file:" + filepath.Join(t.TempDir(), "tokens")
	r := oauthkit(t, nil, "token", "-grant", "refresh_token", "-token-url", srv.TokenURL(), "-client-id", "cli", "-scope", "openid", "-cache", cache)
	wantCode(t, r, 1, true)
	if strings.Contains(r.stderr, "rejected") || strings.Contains(r.stderr, "log in again") {
		t.Errorf("stderr claims a rejected refresh token: %q", r.stderr)
	}
	if !strings.Contains(r.stderr, "no token") || !strings.Contains(r.stderr, "scope") {
		t.Errorf("stderr does not say that nothing is cached for these settings: %q", r.stderr)
	}
	if srv.Stats().TokenRequests != 0 {
		t.Errorf("%d token requests, want 0", srv.Stats().TokenRequests)
	}
}

// debugLine drops the time of a -v line.
var debugTime = regexp.MustCompile(`^time=\S+ `)

// TestVerboseLinesClean: -v prints no line twice in a row and no empty
// attribute such as error="".
func TestVerboseLinesClean(t *testing.T) {
	_, flags := keyClient(t, "k1")
	cache := "file:" + filepath.Join(t.TempDir(), "tokens")
	r := oauthkit(t, nil, cmdArgs("token", flags, "-v", "-scope", patientScope, "-cache", cache)...)
	wantCode(t, r, 0, false)
	tok := strings.TrimSpace(r.stdout)
	noLeak(t, "stderr", r.stderr, tok)
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if len(lines) < 2 || !strings.Contains(r.stderr, "oauthkit") {
		t.Fatalf("-v printed %d lines; want the debug log", len(lines))
	}
	prev := ""
	for _, line := range lines {
		l := debugTime.ReplaceAllString(line, "")
		if l == prev {
			t.Errorf("line repeated: %s", l)
		}
		if strings.Contains(l, `=""`) {
			t.Errorf("empty attribute: %s", l)
		}
		prev = l
	}
}

// loadTestSigner reads a PEM private key written by keygen.
func loadTestSigner(t *testing.T, path string) crypto.Signer {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatal("no PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k.(crypto.Signer)
}

// TestExplainReauth: "log in again" only for a refresh token the server
// rejected; a missing one says nothing is cached for these settings.
func TestExplainReauth(t *testing.T) {
	ctx := context.Background()
	rejected := fmt.Errorf("wrapped: %w", errors.Join(oauthclient.ErrReauthRequired, &oauthclient.TokenError{StatusCode: 400, ErrorCode: "invalid_grant"}))
	msg := cleanMessage(explain(ctx, rejected, time.Minute))
	if !strings.Contains(msg, "rejected (invalid_grant); log in again") {
		t.Errorf("rejected: %q", msg)
	}
	missing := explain(ctx, oauthclient.ErrReauthRequired, time.Minute)
	if msg := cleanMessage(missing); strings.Contains(msg, "log in again") || !strings.Contains(msg, "scope set") {
		t.Errorf("missing: %q", msg)
	}
	if !errors.Is(missing, oauthclient.ErrReauthRequired) {
		t.Error("the explained error lost its sentinel")
	}
}
