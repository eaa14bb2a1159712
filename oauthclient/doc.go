// Package oauthclient gets, caches and refreshes OAuth 2.0 access tokens
// for Go services, and adds them to outgoing requests with an
// http.RoundTripper.
//
//	signer, _ := jwtassert.LoadPEMFile("key.pem", jwtassert.Options{KeyID: "k1"})
//	ts, _ := oauthclient.NewTokenSource(oauthclient.Config{
//		TokenURL: "https://fhir.example.org/oauth2/token",
//		ClientID: "abc",
//		Auth:     oauthclient.PrivateKeyJWT{Signer: signer},
//		Scopes:   []string{"system/Patient.rs"},
//	})
//	client := ts.Client(nil)
//
// # Grants and client authentication
//
// Grants: ClientCredentials (the default; SMART Backend Services), JWTBearer
// (RFC 7523 §2.1), RefreshToken (rotation-safe), TokenExchange (RFC 8693)
// and Password (legacy, discouraged). Login runs the authorization code
// grant with PKCE through a loopback redirect (RFC 8252) for tools and
// native apps. Static wraps a long-lived token obtained elsewhere.
// The implicit grant is not supported, by design: OAuth 2.1 removes it and a
// Go program cannot receive a URL fragment; use Login instead.
//
// Client authentication: ClientSecretBasic (RFC 6749 §2.3.1, with the
// form-encoding of id and secret that servers expect), ClientSecretPost,
// PrivateKeyJWT (a fresh signed assertion for every request, aud = the
// token URL) and NoClientAuth. Exactly one mechanism is used per request.
//
// # Token lifecycle
//
// A token is fresh until its early-refresh window, which starts
// RefreshWindow (default 25 %) of its lifetime before it stops being used,
// and is never longer than MaxRefreshWindow (default 5 minutes). Inside the
// window callers keep getting the current token at once and one background
// refresh runs; a failed background refresh never replaces a still-valid
// token and is tried again on the backoff schedule. A token stops being
// used ExpiryLeeway before it expires (default a tenth of its lifetime,
// between 1 s and 10 s, at most half of it), and its lifetime counts from
// when the request was sent. So a 1-hour token is refreshed in the
// background at 54m50s and a 4-second token is reused for 2 s, then
// refreshed in the background; neither makes callers wait.
//
// When the server sends no expires_in, the access token is treated as
// opaque but for one thing: if it is a JWT, its exp claim (unverified) is
// read as the expiry. Otherwise the token is used until a resource server
// rejects it with 401, when the Transport fetches a new one.
//
// Token-endpoint calls are retried on 5xx, 429 and network errors with
// exponential backoff and jitter, honouring Retry-After (see RetryPolicy);
// other 4xx errors are permanent. One fetch is in flight per TokenSource
// (and per cache key across processes when the cache is a
// tokencache.Locker); every waiter selects on its own context. After a
// failed fetch, callers get the same error without a new request for a
// cool-down (ErrorCooldown for permanent errors, the backoff schedule for
// temporary ones), so an outage or a wrong secret is not turned into a
// flood of token requests.
//
// # Caching
//
// The current token lives in memory behind an atomic pointer. With
// Config.Cache, tokens are also persisted (file, OS keychain, Redis): a
// process that starts reuses the token an earlier one stored, and a
// rotated refresh token is stored before the new access token is handed
// to anyone. If the store fails, the token is still used from memory and
// the failure is logged (OnTokenChange still fires, so callers can keep the
// refresh token another way).
//
// # Security considerations
//
// Client secrets, private keys, assertions, access and refresh tokens never
// appear in logs, error strings or %v output of this package's types.
// *oauth2.Token (from golang.org/x/oauth2) is the exception: it prints its
// fields with %v, so do not log it.
//
// Credentials and tokens are never sent over plain http:// except to
// loopback addresses. The token endpoint's redirects are never followed.
// The Transport never attaches the token to a redirect that leaves the
// origin of the original request, and retries a request after a 401 only
// once and only when its body can be replayed. Token-endpoint responses are
// read through a 1 MiB limit; discovery documents likewise.
package oauthclient
