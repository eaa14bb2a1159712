package demotest

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// opaqueToken returns a token as oauthtest issues them: 32 random bytes,
// base64url without padding.
func opaqueToken() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// recorder is a testing.TB that records Errorf calls. Other methods are
// not called by CheckNoSecrets.
type recorder struct {
	testing.TB
	errors []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func TestCheckNoSecrets(t *testing.T) {
	tok := opaqueToken()
	cacheDir := filepath.Join(os.TempDir(), "TestDemoDefaultDirLeavesNoEntry1234567890", "001", "oauthkit", "tokens")
	tests := []struct {
		name   string
		output string
		secret bool
	}{
		{"demo output", "run 1: token fetched; GET Patient: 200 OK, 2 patients\n3 runs, 1 token request\n", false},
		{"temporary cache directory", "token cache: files in " + cacheDir + "\n", false},
		{"opaque token", "token: " + tok + "\n", true},
		{"opaque token in a URL", "GET https://fhir.example.org/Patient?access_token=" + tok, true},
		{"opaque token in a log line", `level=DEBUG msg="token fetched" token=` + tok, true},
		{"opaque token after a cache directory", "token cache: files in " + cacheDir + " " + tok, true},
		{"JWT", "assertion eyJhbGciOiJFUzM4NCJ9.e30.c2ln", true},
		{"Authorization header", "Authorization: Bearer x", true},
		{"PEM key", "-----BEGIN PRIVATE KEY-----", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &recorder{}
			CheckNoSecrets(r, tt.output)
			if got := len(r.errors) != 0; got != tt.secret {
				t.Fatalf("CheckNoSecrets reported a secret: %v, want %v", got, tt.secret)
			}
			for _, msg := range r.errors {
				if strings.Contains(msg, tok) {
					t.Error("the failure message quotes the token")
				}
			}
		})
	}
}
