package oauthclient

import (
	"errors"
	"strings"
	"time"

	"github.com/oauthkit/oauthkit/internal/tokenendpoint"
	"github.com/oauthkit/oauthkit/tokencache"
)

// TokenError describes a failed token-endpoint call: an RFC 6749 §5.2
// error response, an HTTP failure with a body that is not an OAuth error, a
// malformed response or a network error. Check for it with errors.As:
//
//	var te *oauthclient.TokenError
//	if errors.As(err, &te) && te.ErrorCode == "invalid_client" { … }
//
// Its text never contains a secret, a token, an assertion or the response
// body: every text kept from a response has the request's credentials
// replaced and its control characters replaced by spaces.
type TokenError struct {
	// StatusCode is the HTTP status of the answer, 0 when no answer
	// arrived (a network error or timeout).
	StatusCode int
	// ErrorCode is the "error" member (invalid_client, invalid_grant,
	// invalid_scope, …), at most 64 bytes; empty when the body was not an
	// OAuth error response.
	ErrorCode string
	// ErrorDescription is the "error_description" member, at most 1024
	// bytes ("…" marks a cut).
	ErrorDescription string
	// ErrorURI is the "error_uri" member, at most 256 bytes.
	ErrorURI string
	// RetryAfter is the delay the server asked for with Retry-After on a 429
	// or 503 answer, as sent (not capped by the RetryPolicy); 0 if none.
	RetryAfter time.Duration
	// Err is the underlying cause, if any: a network error,
	// ErrMalformedResponse, ErrResponseTooLarge, ErrUnsupportedTokenType
	// or ErrTokenEndpointRedirect.
	Err error
}

// Error describes the failure on one line, starting "oauthclient: token
// endpoint".
func (e *TokenError) Error() string { return "oauthclient: " + e.detail() }

// detail is the text of Error without the package prefix.
func (e *TokenError) detail() string {
	s := e.endpointError().Error()
	if rest, ok := strings.CutPrefix(s, "oauthclient: "); ok {
		return rest
	}
	return s
}

// Unwrap returns the underlying cause, Err.
func (e *TokenError) Unwrap() error { return e.Err }

// Temporary reports whether retrying later may succeed: a 5xx or 429
// answer, or a network error or timeout before an answer arrived. Malformed
// responses, redirects and other 4xx answers are permanent.
func (e *TokenError) Temporary() bool { return e.endpointError().Temporary() }

// endpointError is e as the internal token-endpoint error, whose logic
// classifies and formats it.
func (e *TokenError) endpointError() *tokenendpoint.Error {
	return &tokenendpoint.Error{StatusCode: e.StatusCode, ErrorCode: e.ErrorCode, ErrorDescription: e.ErrorDescription,
		ErrorURI: e.ErrorURI, RetryAfter: e.RetryAfter, Err: e.Err}
}

// tokenError converts the internal token-endpoint error in err's chain, if
// any, into a *TokenError; other errors are returned as they are. It is
// applied where this package receives errors from internal/tokenendpoint.
func tokenError(err error) error {
	var ee *tokenendpoint.Error
	if err == nil || !errors.As(err, &ee) {
		return err
	}
	te := &TokenError{StatusCode: ee.StatusCode, ErrorCode: ee.ErrorCode, ErrorDescription: ee.ErrorDescription,
		ErrorURI: ee.ErrorURI, RetryAfter: ee.RetryAfter, Err: ee.Err}
	if err == error(ee) {
		return te
	}
	// A wrapped one keeps its text; the chain leads to the converted error.
	return &convertedError{msg: err.Error(), te: te}
}

// convertedError keeps the text of an error whose token-endpoint cause was
// converted by tokenError.
type convertedError struct {
	msg string
	te  *TokenError
}

func (e *convertedError) Error() string { return e.msg }
func (e *convertedError) Unwrap() error { return e.te }

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

func (e *reauthError) Error() string {
	return "oauthclient: refresh token rejected; log in again: " + e.te.detail()
}
func (e *reauthError) Unwrap() []error { return []error{ErrReauthRequired, e.te} }
