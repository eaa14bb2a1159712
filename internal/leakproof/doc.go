// Package leakproof proves, for the whole module at once, that secrets
// (client secrets, private keys, assertions, access, refresh, subject and
// actor tokens, passwords, API gateway keys) do not leak into printed
// values, errors, logs or command-line output. It holds two tests and the
// probe that the first one runs.
//
// # Printed values
//
// TestPrintedValuesHideSecrets finds every exported type and every New…
// constructor of every importable package of the module by parsing its
// non-test Go files (internal packages, main packages and testdata are left
// out), so a type added later is covered without editing the test. It
// generates a program in a temporary directory inside this package, which
// calls Probe with the list, and runs it with go run.
//
// Probe builds a populated value of each type by reflection. Every string
// whose field name says secret (secret, token, password, assertion, key,
// credential, private, proof, cookie, authorization, bearer, code verifier;
// but not names of identifiers such as KeyID or TokenType), every []byte
// so named, and every value in a url.Values or http.Header gets its own
// marker, "SECRETmarker0001" and so on. Strings named …URL get
// "https://h.example/p?key=" and a marker, as an API gateway key would
// sit. Fields holding private keys (*rsa.PrivateKey, *ecdsa.PrivateKey,
// ed25519.PrivateKey, crypto.Signer) get generated keys, whose private
// scalars are then looked for in decimal, hex and base64. An interface
// field gets each of the module's types implementing it in turn (variants
// of the value), so Config is printed with every Grant and ClientAuth.
// Constructors are called with populated arguments when one of them holds
// a secret, and their results are printed as well.
//
// Each value and a pointer to it are printed with %v, %+v, %#v, %s, %q and
// %x and through log/slog's JSON and text handlers. A fixture type with an
// unredacted secret is probed too: the test fails if the checker misses it,
// and if it flags a fixture that redacts.
//
// A failure is a subtest named after the type (or the constructor, with
// "()"), with one line per set of leaked places, such as
//
//	printing oauthclient.AuthRequest with %v, %+v shows the secrets planted at .Form[K0], .Header[Authorization]
//
// which says which verbs printed the marker planted in which field. The
// markers are fake, so naming them is safe. Planted places that are not
// secret for one type are listed, with the reason, in the test's exempt
// table.
//
// # Flows against a hostile server
//
// TestHostileServerFlowsHideSecrets runs every flow against a server that
// echoes every credential it receives (form members, Basic credentials,
// assertions, the Authorization and DPoP headers, query values and other
// headers) into every text it answers with: RFC 6749 error members, a
// WWW-Authenticate header, an HTML error page, a redirect Location, other
// response headers, and unexpected members of a successful answer. The
// subtests are named flow/grant/client-authentication/mode, the flows being
// a TokenSource's Token and its Client calling a resource that echoes the
// bearer token back (with an API gateway key in the resource URL), Revoke,
// Login (driven through its browser hook), discovery, and the oauthkit
// command built from cmd/oauthkit. Each secret is random per run and
// failure lines name it by label ("client secret", "refresh token
// (issued)", "client_assertion (as sent)"), never by value, together with
// where it showed: a returned error (with %v or %+v), the Debug log, the
// Login instructions, or the command's standard output or error.
//
// The net/http client quotes the request URL in its *url.Error; the API
// gateway key of a resource URL is therefore looked for only in the error
// the Transport returned, not in that wrapper.
package leakproof
