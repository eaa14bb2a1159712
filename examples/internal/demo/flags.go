package demo

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/oauthkit/oauthkit/jwtassert"
)

// Connection is where an example sends its requests and the client
// registration it uses there, from the flags -fhir-base, -client-id, -key,
// -kid, -scope and -path, whose defaults come from the environment. An empty
// FHIRBase means the embedded demo server. It is not safe for concurrent
// modification.
type Connection struct {
	FHIRBase string // FHIR base URL; "" for the embedded demo server
	ClientID string // client ID of the backend app
	KeyFile  string // PEM file of the private key
	KeyID    string // key ID of the key in the registered JWK Set
	Scope    string // space-separated scopes
	Path     string // resource path to GET, relative to FHIRBase
}

// AddFlags defines the connection flags on fs; emptyBase says what an
// empty -fhir-base means.
func (c *Connection) AddFlags(fs *flag.FlagSet, emptyBase string) {
	fs.StringVar(&c.FHIRBase, "fhir-base", os.Getenv("FHIR_BASE"), "FHIR base `URL` (env FHIR_BASE); empty: "+emptyBase)
	fs.StringVar(&c.ClientID, "client-id", os.Getenv("CLIENT_ID"), "client `ID` of the backend app (env CLIENT_ID)")
	fs.StringVar(&c.KeyFile, "key", os.Getenv("PRIVATE_KEY_FILE"), "private key `file`, PEM (env PRIVATE_KEY_FILE)")
	fs.StringVar(&c.KeyID, "kid", os.Getenv("KEY_ID"), "key `ID` of the key in the registered JWK Set (env KEY_ID)")
	fs.StringVar(&c.Scope, "scope", EnvOr("SCOPES", "system/Patient.rs"), "space-separated `scopes` (env SCOPES)")
	fs.StringVar(&c.Path, "path", "Patient", "resource `path` to GET, relative to the FHIR base")
}

// Check reports a setting that a real server (-fhir-base) needs and that
// is missing.
func (c *Connection) Check() error {
	if c.FHIRBase == "" {
		return nil
	}
	for _, req := range []struct{ value, name string }{
		{c.ClientID, "-client-id (or CLIENT_ID)"},
		{c.KeyFile, "-key (or PRIVATE_KEY_FILE)"},
		{c.KeyID, "-kid (or KEY_ID)"},
	} {
		if req.value == "" {
			return fmt.Errorf("%s is required with -fhir-base", req.name)
		}
	}
	return nil
}

// LoadSigner loads the private key of KeyFile, with KeyID. Errors name the
// file, never its content.
func (c *Connection) LoadSigner() (*jwtassert.Signer, error) {
	return jwtassert.LoadPEMFile(c.KeyFile, jwtassert.Options{KeyID: c.KeyID})
}

// URL returns the URL of Path on FHIRBase.
func (c *Connection) URL() string {
	return strings.TrimSuffix(c.FHIRBase, "/") + "/" + strings.TrimPrefix(c.Path, "/")
}

// Parse parses args with fs and rejects arguments after the flags.
func Parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// UsageExit returns the exit code for an error of flag parsing: 0 after -h
// (the usage has been printed), else 2, after reporting err on stderr as
// "program: err".
func UsageExit(program string, err error, stderr io.Writer) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintln(stderr, program+":", err)
	return 2
}

// EnvOr returns the environment variable name, or def when it is empty.
func EnvOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
