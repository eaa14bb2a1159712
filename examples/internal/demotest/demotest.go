// Package demotest holds the test helpers shared by the tests of the
// runnable examples: running a program in-process, checking that its output
// holds no secret, clearing the environment, a stand-in for a real server
// and the usage errors every example reports. It is not a public API.
package demotest

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
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

// CheckNoSecrets fails if output looks like it holds a JWT or a key. It
// reports the size of the output, never the output.
func CheckNoSecrets(t *testing.T, output string) {
	t.Helper()
	for _, bad := range []string{"eyJ", "PRIVATE KEY", "Bearer "} {
		if strings.Contains(output, bad) {
			t.Errorf("output contains %q (%d bytes of output)", bad, len(output))
		}
	}
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
