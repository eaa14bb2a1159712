package oauthclient

import (
	"errors"

	"github.com/oauthkit/oauthkit/internal/tokenendpoint"
	"github.com/oauthkit/oauthkit/tokencache"
)

// TokenError describes a failed token-endpoint call (RFC 6749 §5.2): the
// HTTP status, the OAuth error code and description, the Retry-After delay,
// and the underlying cause. Temporary reports whether a retry may help (5xx,
// 429, network errors). Its text never contains a secret, a token, an
// assertion or the response body. Check for it with errors.As.
type TokenError = tokenendpoint.Error

// Sentinel errors, checked with errors.Is.
var (
	// ErrReauthRequired: the refresh token was rejected (invalid_grant) or
	// there is none; a person must log in again. It is wrapped in the
	// *TokenError when the server rejected the token.
	ErrReauthRequired = errors.New("oauthclient: refresh token rejected or missing; log in again")
	// ErrMalformedResponse: the token endpoint answered something that is
	// not a valid token response.
	ErrMalformedResponse = tokenendpoint.ErrMalformed
	// ErrResponseTooLarge: the token response exceeded 1 MiB.
	ErrResponseTooLarge = tokenendpoint.ErrBodyTooLarge
	// ErrUnsupportedTokenType: the server issued a token type other than Bearer.
	ErrUnsupportedTokenType = tokenendpoint.ErrUnsupportedTokenType
	// ErrTokenEndpointRedirect: the token endpoint answered with a redirect,
	// which is never followed so credentials cannot leak to another URL.
	ErrTokenEndpointRedirect = tokenendpoint.ErrRedirect
	// ErrInsecureURL: credentials or tokens would travel over plain http://
	// to a host that is not a loopback address.
	ErrInsecureURL = errors.New("oauthclient: refusing to send credentials over plain http to a non-loopback host")
	// ErrClosed: the TokenSource was closed and has no valid token.
	ErrClosed = errors.New("oauthclient: token source closed")
	// ErrExpiredOnArrival: the token endpoint issued a token that had
	// already expired when it arrived (its JWT exp in the past, or a token
	// endpoint slower than the token lifetime; check the clocks). It counts
	// as a failed fetch: the source backs off before asking again.
	ErrExpiredOnArrival = errors.New("oauthclient: token already expired on arrival")
	// ErrLockTimeout: another process held the cache lock for longer than
	// half of Config.FetchTimeout. A rotating refresh token is never
	// redeemed without the lock, so the fetch fails (temporarily) instead;
	// other grants fetch without the lock.
	ErrLockTimeout = errors.New("oauthclient: timed out waiting for the cache lock held by another process")
	// ErrLockLost: the cache lock was lost before a refresh token could be
	// sent (its lease ran out); the token was not sent.
	ErrLockLost = tokencache.ErrLockLost
	// ErrNoRevocationEndpoint: Revoke was called without a revocation URL.
	ErrNoRevocationEndpoint = errors.New("oauthclient: no revocation endpoint configured")
)

// reauth marks a rejected refresh token: errors.Is(err, ErrReauthRequired)
// and errors.As(err, **TokenError) both hold.
type reauthError struct{ te *TokenError }

func (e *reauthError) Error() string   { return "oauthclient: log in again: " + e.te.Error() }
func (e *reauthError) Unwrap() []error { return []error{ErrReauthRequired, e.te} }
