// Package oauthtest provides a strict OAuth 2.0 authorization server and a
// small protected FHIR-like resource, started like an [net/http/httptest]
// server, for tests and examples of OAuth clients.
//
// It is not a production server: it keeps everything in memory, approves
// every authorization request without a user interface and uses a
// self-signed certificate. It is strict on purpose: it rejects what a
// careful real server would reject, so that client bugs show up in tests.
//
//	srv := oauthtest.NewServer()
//	defer srv.Close()
//	err := srv.RegisterClient(oauthtest.Client{
//		ID: "svc", Secret: "s3cret", AuthMethod: oauthtest.AuthClientSecretBasic,
//		Scopes: []string{"system/Patient.rs"},
//	})
//	// POST srv.TokenURL() …, then GET srv.FHIRBase() + "/Patient" with the token.
//
// # Endpoints
//
//   - POST /token: grants client_credentials, refresh_token (with rotation
//     and reuse detection), jwt-bearer (RFC 7523 §2.1), token exchange
//     (RFC 8693), password and authorization_code (PKCE S256 required).
//   - GET /authorize: approves at once and redirects with code, state and
//     iss (RFC 9207); the subject is the first user added with AddUser, the
//     user named by login_hint, or "user".
//   - POST /revoke (RFC 7009) and POST /introspect (RFC 7662).
//   - GET /.well-known/oauth-authorization-server (RFC 8414), the same
//     document at /.well-known/openid-configuration, and
//     GET /fhir/.well-known/smart-configuration (SMART App Launch 2.x).
//   - GET /fhir/metadata (no authentication), and the protected
//     GET /fhir/Patient, POST /fhir/Patient/_search (form body; the only
//     search parameter is _id) and GET /fhir/Patient/{id} (p1 and p2 exist).
//
// # Strictness
//
// The token, revocation and introspection endpoints accept only POST with
// an application/x-www-form-urlencoded body, no query parameters, and no
// repeated parameter (except audience and resource in token exchange).
// Unknown parameters are ignored (RFC 6749 §3.1).
//
// Client authentication must use exactly the method the client is
// registered for; two methods in one request are invalid_request. Basic
// credentials are form-decoded after base64 (RFC 6749 §2.3.1), so a secret
// with reserved characters must be form-encoded by the client. Client
// assertions must be signed with RS, PS, ES or EdDSA by a key of the
// client's JWK Set named by the kid header, with iss = sub = client_id, aud
// containing the token endpoint URL, exp at most 5 minutes ahead, iat and
// nbf not in the future (30 s tolerance) and a jti never seen before.
// The assertions of the jwt-bearer grant are checked the same way, except
// that sub names the resource owner; failures are invalid_grant.
//
// Scopes are scope-tokens separated by single spaces. A client registered
// with scopes may request only those. A token with no scope may read every
// Patient; otherwise it needs a SMART scope for Patient (or *) in the
// system/, user/ or patient/ context granting the interaction: search needs
// v1 read or * or a v2 permission with "s"; read needs read, * or "r".
//
// With refresh token rotation (the default), presenting a consumed refresh
// token revokes every access and refresh token descended from the same
// original grant (after the grace period, if one is set; see below). A redeemed authorization code presented again revokes
// what it produced. Token exchange failures about the subject or actor
// token are invalid_request, as RFC 8693 §2.2.2 says.
//
// # Refresh token reuse grace period
//
// SetRefreshReuseGrace relaxes reuse detection the way Okta ("grace period
// for token rotation") and Auth0 ("reuse interval") do: for a short time
// after a refresh token was rotated, presenting it again is answered like a
// fresh rotation (new access and refresh tokens, the family stays alive)
// and counted in Stats.RefreshGraceReuses. It exists for crash safety. A
// client can be killed, or lose its connection, after the server has
// committed a rotation but before the client has persisted the new refresh
// token; on restart it holds only the consumed one. Under strict rotation
// that client's next refresh is answered invalid_grant, its whole token
// family is revoked, and a person must log in again. With a grace period it
// recovers. Tests use it to tell those crash windows apart from true double
// redemption, which is still detected once the period has passed. The
// default is strict (no grace period).
//
// # Testing hooks
//
// SetTokenLifetime, SetRefreshTokenLifetime, SetRotateRefreshTokens,
// SetRefreshReuseGrace, SetOmitExpiresIn, SetTokenDelay and InjectTokenResponses shape the token
// endpoint's answers; SetNow replaces the clock of every expiry check so
// that tests never sleep; RevokeAccessToken and RevokeAll make the resource
// answer invalid_token; Stats and TokenRequestLog tell what happened.
//
// # Concurrency
//
// A Server is safe for concurrent use: one mutex guards its state, and
// Stats can be read at any time. Set Logger before the first request.
//
// # Security considerations
//
// Tokens are 32 random bytes, opaque, and live only in memory. The server
// never logs tokens, secrets or assertions (it logs nothing at all unless
// Logger is set), and its error descriptions never contain them.
// TokenRequestLog records form parameter names, never values. NewServer
// serves plain HTTP on 127.0.0.1, where credentials may travel unencrypted
// because loopback traffic does not leave the host; use NewTLSServer to
// exercise HTTPS. Do not expose either to a network.
package oauthtest
