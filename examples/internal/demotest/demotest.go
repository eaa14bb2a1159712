// Package demotest holds the test helpers shared by the tests of the
// runnable examples: running a program in-process, checking that its output
// holds no secret, clearing the environment, a stand-in for a real server
// and the usage errors every example reports. It is not a public API.
package demotest

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/oauthkit/oauthkit/jwtassert"
	"github.com/oauthkit/oauthkit/oauthtest"
)

// RunFunc is an example's run function: it runs the program with args
// (without the program name) and returns its exit code.
type RunFunc func(args []string, stdout, stderr io.Writer) int

// registrationEnv are the environment variables of demo.Connection.
var registrationEnv = []string{"FHIR_BASE", "CLIENT_ID", "PRIVATE_KEY_FILE", "KEY_ID", "SCOPES"}

// ClearEnv makes a test independent of the caller's environment: it empties
// the variables every example reads and the extra ones, until the test ends.
func ClearEnv(t *testing.T, extra ...string) {
	t.Helper()
	for _, name := range append(registrationEnv, extra...) {
		t.Setenv(name, "")
	}
}

// Run runs the program in-process, checks its output with CheckNoSecrets
// and returns its exit code and output.
func Run(t *testing.T, run RunFunc, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut)
	CheckNoSecrets(t, out.String()+errOut.String())
	return code, out.String(), errOut.String()
}

// CheckNoSecrets fails if output looks like it holds a JWT, a key or a
// token. It reports the size of the output, never the output.
func CheckNoSecrets(t testing.TB, output string) {
	t.Helper()
	if err := findSecret(output); err != nil {
		t.Errorf("%v (%d bytes of output)", err, len(output))
	}
}

// tokenLike matches a run of base64url characters as long as an opaque
// token (oauthtest's are 43 characters: 32 random bytes), a refresh token,
// or a part of a JWT. The examples print nothing of the kind: no token,
// hash or cache key.
var tokenLike = regexp.MustCompile(`[A-Za-z0-9_-]{40,}`)

// tempDirName matches the name of a directory that os.MkdirTemp made in
// the temporary directory (as t.TempDir does, from the test's name), which
// the examples print as their cache directory.
var tempDirName = regexp.MustCompile(regexp.QuoteMeta(filepath.Clean(os.TempDir())+string(filepath.Separator)) + `[^/\\\s]+`)

// findSecret returns an error naming what in output looks like a secret,
// without quoting it.
func findSecret(output string) error {
	for _, bad := range []string{"eyJ", "PRIVATE KEY", "Bearer "} {
		if strings.Contains(output, bad) {
			return fmt.Errorf("output contains %q", bad)
		}
	}
	output = tempDirName.ReplaceAllString(output, "TEMPDIR")
	if loc := tokenLike.FindStringIndex(output); loc != nil {
		return fmt.Errorf("output contains a token-like run of %d base64url characters", loc[1]-loc[0])
	}
	return nil
}

// RealServer starts an oauthtest server (one-hour tokens), registers the
// backend client "app" with a key of algorithm alg (key ID "k1") allowed
// scopes, and returns it with the path of the client's PEM key file. The
// server is closed when the test ends.
func RealServer(t *testing.T, alg string, scopes ...string) (*oauthtest.Server, string) {
	t.Helper()
	key, err := jwtassert.GenerateKey(alg)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jwtassert.NewSigner(key, jwtassert.Options{KeyID: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := jwtassert.JWKS(signer)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, err := jwtassert.EncodePEM(key)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "private.pem")
	if err := os.WriteFile(keyFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	srv := oauthtest.NewServer()
	t.Cleanup(srv.Close)
	err = srv.RegisterClient(oauthtest.Client{ID: "app", JWKS: jwks, AuthMethod: oauthtest.AuthPrivateKeyJWT, Scopes: scopes})
	if err != nil {
		t.Fatal(err)
	}
	return srv, keyFile
}
