// Package demo is the shared plumbing of the runnable examples in
// examples/: the flags that name a real server and client registration,
// the embedded demo server, the FHIR request that counts Patients and a few
// formatting helpers. It is not a public API: the examples import it so that
// each main.go shows the OAuth part (discovery, the TokenSource, its cache)
// and little else.
//
// # Security considerations
//
// Nothing here prints a token, an assertion or a key: errors name files and
// settings, never their content. The embedded server listens on 127.0.0.1
// only and its key is generated at start and never written anywhere.
package demo
