// Package interop proves the oauthkit SDK against a real, certified
// authorization server: the OpenID provider `oidc-provider` (pinned in
// provider/package.json), run by Node.js next to a small FHIR-like protected
// resource.
//
// The package holds only tests. Each test starts its own server process with
// startProvider, which writes a configuration (token lifetimes, the client
// registrations with their public keys and secrets), runs
// `node provider/server.mjs config.json`, waits for its READY line and stops it
// when the test ends. The server exits by itself when its standard input
// closes, so a test binary that dies leaves nothing behind.
//
// # Running
//
// Install the server's dependencies once, then run the tests:
//
//	npm ci --prefix interop/provider
//	go test -race ./interop
//
// Without Node.js or the installed dependencies the tests skip, except when the
// environment variable CI is "true", where they fail instead.
//
// # What the server offers
//
//   - client authentication with client_secret_basic, client_secret_post and
//     private_key_jwt (RS384 and ES384 keys generated at test time and
//     registered with the JWK Set that jwtassert publishes for them);
//   - the client_credentials, authorization_code (with PKCE), refresh_token
//     (always rotated, with reuse detection that revokes the grant),
//     RFC 7523 jwt-bearer and RFC 8693 token-exchange grants;
//   - revocation, introspection and discovery from oidc-provider itself;
//   - GET /fhir/Patient, which accepts only live opaque access tokens and
//     answers 401 with `WWW-Authenticate: Bearer error="invalid_token"`
//     otherwise, and /fhir/.well-known/smart-configuration;
//   - test controls under /test/: counters (/test/stats), failure injection
//     for the token endpoint (/test/fail) and immediate token revocation
//     (/test/revoke).
//
// A first refresh token is obtained through the real authorization code flow
// with PKCE: the test acts as the browser against oidc-provider's development
// login and consent pages.
//
// # Security considerations
//
// Every key, secret and token used here is generated for one test run and
// lives only in memory and in the test's temporary directory. The server
// listens on 127.0.0.1 only and its test controls are unauthenticated, so it
// must never be exposed beyond the loopback interface. Tests never print
// tokens or secrets; they report lengths and error codes instead.
package interop
