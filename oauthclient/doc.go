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
// A token stops being used ExpiryLeeway before it expires (default a tenth
// of its lifetime, between 1 s and 10 s, at most half of it), and its
// lifetime counts from when the request was sent. Its early-refresh window
// is RefreshWindow (default 25 %) of its whole lifetime, at most
// MaxRefreshWindow (default 5 minutes), ending where the leeway begins. The
// token's refresh moment is drawn uniformly from the first half of that
// window, so tokens obtained together (a restart, a deploy) are refreshed
// spread out and stay spread. From its refresh moment on, callers keep
// getting the current token at once while one background refresh runs; a
// failed background refresh never replaces a still-valid token and is
// tried again on the backoff schedule. So a 1-hour token is refreshed in the
// background between 54m50s and 57m20s and a 4-second token between 2 s and
// 2.5 s; neither makes callers wait.
//
// The rule for sources nobody is asking: a token that was handed out during
// its lifetime is refreshed at its refresh moment by a timer (a runtime
// timer, not a goroutine) even if no request comes, so the next caller of a
// quiet tenant does not wait; a token nobody used is left to expire, so an
// idle source makes no token requests until it is used again. With the real
// clock the hot path reads no clock at all: the timer marks the token stale
// at its refresh moment. With Config.Now set (tests), the clock is read on
// every call and no timer runs. A Transport whose bearer token was accepted
// once holds it and sends it with one atomic load, without reading the
// token's state; the token takes itself back from it at its refresh moment,
// when it is replaced (a new token, Seed, Invalidate, a 401) and at Close.
// Lifetimes are wall-clock instants, since a token's expiry at the server
// does not stop while a laptop sleeps; the runtime's timers do stop, so
// while any refresh timer is armed one goroutine per process compares the
// wall clock with the monotonic one every second and, after a sleep (or
// the clock set forward), fires the timers whose refresh moment passed.
//
// Background refreshes of all sources that share a RefreshLimiter
// (DefaultRefreshLimiter unless Config.RefreshLimiter is set) run at most
// its bound at once, queued rather than parked in goroutines; a fetch that
// callers wait for never waits for the limiter. Engines serving many
// tenants should also give the token endpoint an http.Client whose
// Transport keeps more idle connections per host than net/http's default
// of 2.
//
// When the server sends no expires_in, the access token is treated as
// opaque but for one thing: if it is a JWT, its exp claim (unverified) is
// read as the expiry. Otherwise the token is used until a resource server
// rejects it with 401, when the Transport fetches a new one.
//
// Token-endpoint calls are retried on 5xx, 429 and network errors with
// exponential backoff and jitter, honouring Retry-After up to
// RetryPolicy.MaxRetryAfter whichever its form; other 4xx errors are
// permanent. One backoff schedule serves retries and the waits between
// failed fetches; a successful fetch starts it over. Tokens a resource
// server keeps rejecting follow a second schedule of the same policy,
// which only a token that worked starts over: a token that never worked,
// or one that worked but draws a Transport's 401 within a minute of the
// last such replacement (a flaky gateway), is replaced on that schedule,
// and callers get the 401 meanwhile. A token that worked is otherwise
// replaced at once (revoked), and always on Invalidate. A token that arrives already expired counts
// as a failed fetch. One fetch is in flight per TokenSource
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
// read through a 1 MiB limit; discovery documents likewise. Hosts are
// compared as net/http dials them (IDNA ASCII form). Config.Origins binds a
// source's token to the resource servers it is for: the Transport then sends
// every request for another origin without it. Text kept from a token
// endpoint's answer is stripped of every credential the request sent.
//
// # The persistent tier and its guarantees
//
// The newest refresh token lives in one place per source, apart from the
// access token: a 401, Invalidate or a cache that cannot be written never
// makes the source fall back to an older refresh token. With a
// tokencache.LeaseLocker (Redis), writes are fenced by the lock service
// rather than ordered by host clocks, and right before a refresh token is
// sent the lease is extended to the request's deadline (Lease.Hold); a
// holder that cannot confirm its lease does not send. A cache that does not
// answer within CacheTimeout is not read or locked for 30 s (with a
// warning); a new refresh token is still written to it. A cache key names whose token it is; a shared cache without an
// identity the grant can name needs Config.CacheKey.
//
// # Sender-constrained tokens
//
// With Config.DPoPKey, every token request and every request through the
// Transport carries a fresh DPoP proof (RFC 9449: jti, htm, htu without
// query, iat, ath, and the server's nonce when one is known); a
// use_dpop_nonce answer is retried once, at the token endpoint with a new
// client assertion, at a resource only if the body can be replayed. Nonces
// are remembered per origin. Cache entries record the key's thumbprint: a
// source with another key never uses a bound access or refresh token from
// the cache (ErrDPoPKeyMismatch). A Bearer answer to a DPoP request is used
// as a bearer token (RFC 9449 §5). TLSClientAuth and SelfSignedTLSClientAuth
// (RFC 8705) authenticate with a client certificate, which the token
// endpoint client and Client present, so certificate-bound tokens work end
// to end.
package oauthclient
