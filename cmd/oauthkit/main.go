package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// command is one subcommand of oauthkit.
type command struct {
	name    string
	summary string
	run     func(args []string, env *env) error
}

// env carries what a command may touch: its output streams and the
// process environment (injectable for tests).
type env struct {
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	stdin  io.Reader // nil: none
}

// usageError is a mistake on the command line: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// errHelpShown: -h was given and the usage has been printed; exit 0.
var errHelpShown = errors.New("help shown")

func commands() []command {
	return []command{
		{"token", "print an access token (for $(…) in scripts), or -o json with its expiry", runToken},
		{"header", "print an \"Authorization: Bearer …\" header line (and a DPoP proof line with -dpop-key)", runHeader},
		{"get", "GET a URL with a token; the body goes to stdout", runGet},
		{"request", "send any request with a token, curl-like (-X, -H, -d, -i)", runRequest},
		{"info", "show a token's expiry, scope and (unverified) JWT claims", runInfo},
		{"test", "exit 0 if the cached token is valid for the scopes, 1 if not", runTest},
		{"reset", "delete the cached token", runReset},
		{"logout", "revoke the cached token at the server and delete it", runLogout},
		{"login", "log a person in (authorization code + PKCE) and keep the refresh token", runLogin},
		{"keygen", "generate a private key and print its public JWK Set", runKeygen},
		{"jwks", "print (or -serve) the public JWK Set of private key files", runJWKS},
		{"discover", "print a server's SMART configuration or RFC 8414 metadata", runDiscover},
		{"version", "print the oauthkit and Go versions", runVersion},
		{"completion", "print a bash or zsh completion script", runCompletion},
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the command line args (without the program name) and
// returns the exit code: 0 on success, 1 on failure, 2 on a usage error.
func run(args []string, stdout, stderr io.Writer) int {
	return runEnv(args, &env{stdout: stdout, stderr: stderr, getenv: os.Getenv, stdin: os.Stdin})
}

func runEnv(args []string, e *env) int {
	if len(args) == 0 {
		printUsage(e.stderr)
		return 2
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			// "oauthkit help token" is "oauthkit token -h".
			return runEnv([]string{args[1], "-h"}, e)
		}
		printUsage(e.stdout)
		return 0
	}
	for _, c := range commands() {
		if c.name != name {
			continue
		}
		err := c.run(args[1:], e)
		var ue *usageError
		switch {
		case err == nil:
			return 0
		case errors.Is(err, errHelpShown):
			return 0
		case errors.As(err, &ue):
			fmt.Fprintf(e.stderr, "oauthkit %s: %s\nRun 'oauthkit %s -h' for usage.\n", name, ue.msg, name)
			return 2
		default:
			fmt.Fprintf(e.stderr, "oauthkit: %s\n", cleanMessage(err))
			return 1
		}
	}
	fmt.Fprintf(e.stderr, "oauthkit: unknown command %q\nRun 'oauthkit help' for usage.\n", name)
	return 2
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, `oauthkit gets, caches and uses OAuth 2.0 tokens from the command line.

Usage:

	oauthkit <command> [flags] [arguments]

Commands:

`)
	for _, c := range commands() {
		fmt.Fprintf(w, "\t%-10s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Run 'oauthkit <command> -h' for the flags and an example of each command.

Examples:

	oauthkit keygen -alg ES384 -kid k1 -out key.pem > jwks.json
	oauthkit token -token-url https://fhir.example.org/oauth2/token \
		-client-id abc -key key.pem -kid k1 -scope system/Patient.rs
	oauthkit get -profile epic https://fhir.example.org/api/FHIR/R4/Patient/123
`)
}

// newFlagSet returns a FlagSet for a command whose usage shows synopsis,
// the flags and example.
func newFlagSet(name, synopsis, example string, e *env) *flag.FlagSet {
	fs := flag.NewFlagSet("oauthkit "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: oauthkit %s %s\n\nFlags:\n", name, synopsis)
		fs.PrintDefaults()
		fmt.Fprintf(w, "\nExample:\n\n%s\n", example)
	}
	return fs
}

// parseFlags parses args; -h prints the usage to stdout and yields
// errHelpShown, a bad flag yields a usageError (the flag package has
// already printed its message).
func parseFlags(fs *flag.FlagSet, args []string, e *env) error {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.SetOutput(e.stderr)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(e.stdout)
		fs.Usage()
		fs.SetOutput(e.stderr)
		return errHelpShown
	default:
		return &usageError{msg: err.Error()}
	}
}

// oneLine keeps an error message on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
