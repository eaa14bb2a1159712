// Command oauthkit gets, caches and uses OAuth 2.0 tokens from the command
// line, for any OAuth 2.0 authorization server and for SMART Backend
// Services (Epic and other FHIR servers): set up a backend app (generate a
// key, publish its JWK Set), test it (get a token, read a resource) and
// script it (cron, curl) without writing Go.
//
// Install it with:
//
//	go install github.com/oauthkit/oauthkit/cmd/oauthkit@latest
//
// Usage:
//
//	oauthkit <command> [flags] [arguments]
//
// Every command prints its flags and an example with -h; "oauthkit help"
// lists the commands (token, header, get, request, info, test, reset,
// logout, login, keygen, jwks, discover, version, completion), not their
// flags. The exit code is 0 on success, 1 on failure (with one
// "oauthkit: …" line on stderr) and 2 on a usage error.
//
// # Setting up a backend app
//
// keygen writes a new private key (PKCS #8 PEM, mode 0600; it refuses to
// replace an existing file unless -force is given) and prints the public
// JWK Set on stdout. -alg is one of RS256, RS384, RS512, PS256, PS384,
// PS512, ES256, ES384 (the default), ES512 and EdDSA, in any letter case;
// Epic accepts RS384 and ES384.
//
//	oauthkit keygen -alg ES384 -kid k1 -out key.pem > jwks.json
//
// jwks prints the public JWK Set of one or more private key files: the
// document an app's "JWK Set URL" serves. To rotate keys, publish the old
// and the new key together, switch the app to the new one, and drop the
// old one later.
//
//	oauthkit jwks key-2025.pem key-2026.pem > /var/www/html/jwks.json
//
// Key IDs are kept with the keys: keygen stores the key ID in the key file
// as a PEM header ("kid: k1"), and jwks, -key and the library's
// jwtassert.LoadPEMFile read it back, so "oauthkit keygen -kid k1 -out
// key.pem" is followed by "oauthkit jwks key.pem" and "oauthkit token -key
// key.pem" that both use k1 without -kid, and "oauthkit jwks a.pem b.pem"
// publishes each key under its own kid. -kid overrides the stored key ID
// (of a single key). A key without one (made by another tool) gets its
// RFC 7638 JWK thumbprint: the SHA-256 hash of its required public
// members, base64url-encoded without padding, the same in every run and on
// every machine. -key and jwks also read a private JWK (or a JWK Set with
// one private key), whose own kid and alg are used.
//
// jwks -serve ADDR serves the JWK Set over HTTP on a loopback address
// (127.0.0.1:8080, say) until interrupted, for a local test server that
// fetches a JWK Set URL.
//
// # Getting tokens
//
// token prints an access token and nothing else, for $(…) in scripts;
// header prints an "Authorization: Bearer …" line for curl -H; get sends
// an authorized GET and copies the body to stdout (a response outside
// 2xx prints its status line and the start of its body on stderr and
// exits 1):
//
//	TOKEN=$(oauthkit token -fhir-base https://fhir.example.org/api/FHIR/R4 \
//		-client-id abc -key key.pem -kid k1 -scope system/Patient.rs)
//	curl -H "$(oauthkit header -profile epic)" https://fhir.example.org/api/FHIR/R4/Patient/123
//	oauthkit get -profile epic https://fhir.example.org/api/FHIR/R4/Patient?family=Smith
//
// token -o json prints the access token with its type, expires_at
// (RFC 3339, UTC), the granted scope and from_cache (whether it came from
// the cache rather than the token endpoint); -o header is the header
// command's output; -o bare, the default, the token alone.
//
// request sends any request, curl-like: -X METHOD (default GET, or POST
// with a body), -H 'Name: value' (repeatable), -d DATA, -d @FILE or -d @-
// (stdin) for the body (default Content-Type: form-encoded, as curl), and
// -i to print the status line and headers before the body. So a FHIR Bulk
// Data kick-off, whose answer is a 202 with a Content-Location to poll,
// and a POST _search work:
//
//	oauthkit request -profile epic -i -H 'Prefer: respond-async' \
//		https://fhir.example.org/api/FHIR/R4/Group/g1/\$export
//
// Tokens are cached (by default in files under the user cache directory,
// os.UserCacheDir()/oauthkit/tokens), so that a job started every minute
// by cron reuses the token of the last run and asks the token endpoint
// only when it is about to expire; runs that overlap take turns through a
// file lock.
//
// # Looking at the cache
//
// info prints, as JSON, the expiry and scope of the token cached for the
// connection flags, or of a token read from stdin ("oauthkit info -"; an
// argument works too but shows in the process list), and when the access
// token is a JWT (RFC 9068) its decoded header and claims, marked
// unverified. It never prints the token. test exits 0 when the cached
// access token is valid for the requested scopes (for at least -valid-for,
// default 10s), 1 otherwise. reset deletes the cached entry; logout revokes
// it first (RFC 7009) at -revocation-url or the revocation_endpoint of the
// -fhir-base SMART configuration.
//
//	oauthkit test -profile epic || oauthkit token -profile epic > /dev/null
//	oauthkit logout -profile mine -grant refresh_token
//
// # Version and completion
//
// version prints the module version, the VCS revision when known, and the
// Go version oauthkit was built with. completion bash and completion zsh
// print completion scripts:
//
//	source <(oauthkit completion bash)
//
// # Connection flags
//
// token, header, get, request, info, test, reset, logout and login share
// these flags:
//
//	-token-url URL       the token endpoint
//	-fhir-base URL       a FHIR base URL: the token (and authorization) endpoint
//	                     come from its .well-known/smart-configuration
//	-client-id ID        the client ID
//	-key FILE, -kid ID   a private key (PEM or JWK): private_key_jwt client
//	                     authentication (SMART Backend Services), and the
//	                     jwt_bearer assertion; -kid overrides the stored key ID
//	-alg ALG             the key's JWS algorithm (default: inferred from the key)
//	-jku URL             the assertions' jku header: where the JWK Set lives
//	-secret-file FILE    a file holding the client secret (client_secret_basic)
//	-auth METHOD         basic, post, private_key_jwt or none
//	                     (default: basic with a secret, private_key_jwt with -key)
//	-scope SCOPE         repeatable, or several separated by spaces
//	-grant GRANT         client_credentials (default), jwt_bearer (with -subject
//	                     and -key) or refresh_token (after login)
//	-subject SUB         the subject of the jwt_bearer assertion
//	-cache SPEC          memory, file[:DIR] or keyring[:SERVICE]
//	-profile NAME        settings from the configuration file
//	-timeout DURATION    default 60s (login: 5m)
//	-v                   debug lines on stderr: cache, token requests, the key
//	                     file and kid chosen, and per client assertion its alg,
//	                     kid, iss, sub, aud, lifetime and jti length
//	-insecure-http       allow http:// token endpoints on non-loopback hosts
//
// A client secret is never given as a flag value, which other users can
// see in the process list: it comes from -secret-file, or from the
// environment variable OAUTHKIT_CLIENT_SECRET. -secret-file wins over the
// environment variable, which wins over a profile's secret_file.
//
// # Logging in a person
//
// login runs the authorization code grant with PKCE (S256) through a
// redirect listener on 127.0.0.1 (RFC 8252). It prints the authorization
// URL on stderr and opens it in a browser when it can (xdg-open, open or
// rundll32; -no-browser only prints it). The authorization endpoint is
// -auth-url, or the one the SMART configuration of -fhir-base names (the
// "aud" parameter is then the FHIR base URL). The tokens, with the refresh
// token, are stored in the cache (default: the OS keychain,
// keyring:oauthkit). Afterwards "oauthkit token -grant refresh_token"
// with the same client ID, endpoint, scopes and -cache finds them, and
// refreshes the access token when it expires; for -grant refresh_token
// the default cache is the keychain as well.
//
//	oauthkit login -fhir-base https://fhir.example.org/api/FHIR/R4 -client-id abc \
//		-scope "openid fhirUser offline_access patient/Patient.rs"
//	oauthkit token -grant refresh_token -fhir-base https://fhir.example.org/api/FHIR/R4 \
//		-client-id abc -scope "openid fhirUser offline_access patient/Patient.rs"
//
// # Discovery
//
// discover prints the SMART configuration of a FHIR base URL, or with
// -issuer the RFC 8414 (or OpenID Connect) metadata of an authorization
// server, as indented JSON:
//
//	oauthkit discover https://fhir.example.org/api/FHIR/R4
//	oauthkit discover -issuer https://auth.example.com
//
// # Profiles
//
// -profile NAME reads settings from os.UserConfigDir()/oauthkit/config.json
// ($OAUTHKIT_CONFIG overrides the path); flags override them:
//
//	{
//	  "profiles": {
//	    "epic": {
//	      "fhir_base": "https://fhir.example.org/api/FHIR/R4",
//	      "client_id": "abc",
//	      "key": "/home/me/.config/oauthkit/epic-key.pem",
//	      "kid": "k1",
//	      "scopes": ["system/Patient.rs", "system/Observation.rs"],
//	      "cache": "file"
//	    }
//	  }
//	}
//
// Members: token_url, fhir_base, auth_url, client_id, key, kid, alg, jku, auth,
// scopes, grant, subject, cache, secret_file and insecure_http. Unknown
// members are errors. A secret is never stored in the file: members such
// as "client_secret" are refused; use secret_file.
//
// # Security considerations
//
// oauthkit prints no secret except the access token that token and header
// exist to print: client secrets, private keys, client assertions and
// refresh tokens never appear in its output, errors or -v debug lines. Keep
// that in mind when redirecting stdout: a file with a token in it is a
// credential.
//
// Private keys are written with mode 0600; key and secret files should
// stay that way (oauthkit warns about a secret file that others can read).
// The file cache keeps tokens in a 0700 directory with 0600 files; the
// keychain cache is better for long-lived refresh tokens.
//
// Credentials go over plain http:// only to loopback addresses.
// -insecure-http lifts that for the token endpoint (not for get, which
// never sends a token over plain http to another host); it exists for
// test networks and MUST NOT be used in production. Error messages show
// URLs without their query and at most 512 bytes of a failed response.
package main
