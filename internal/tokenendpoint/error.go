package tokenendpoint

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// Sentinel causes carried in Error.Err.
var (
	// ErrMalformed: the token endpoint answered something that is not a
	// valid token response (not JSON, truncated, missing members, …).
	ErrMalformed = errors.New("malformed token response")
	// ErrBodyTooLarge: the response body exceeded MaxBodySize.
	ErrBodyTooLarge = errors.New("token response body too large")
	// ErrUnsupportedTokenType: the token_type is not one this client can use.
	ErrUnsupportedTokenType = errors.New("unsupported token_type")
	// ErrRedirect: the token endpoint answered with a redirect, which is
	// never followed (credentials must not travel to another URL).
	ErrRedirect = errors.New("token endpoint redirected; not followed")
)

// Error describes a failed token-endpoint call: an RFC 6749 §5.2 error
// response, an HTTP failure with a non-OAuth body, a malformed response or a
// network error. Its text never contains the response body, a token, a
// secret or an assertion.
type Error struct {
	// StatusCode is the HTTP status, 0 when no response was received.
	StatusCode int
	// ErrorCode is the "error" member (invalid_client, invalid_grant, …).
	ErrorCode string
	// ErrorDescription is the "error_description" member, truncated to 256
	// bytes and stripped of control characters.
	ErrorDescription string
	// ErrorURI is the "error_uri" member.
	ErrorURI string
	// RetryAfter is the delay the server asked for with Retry-After, if any.
	RetryAfter time.Duration
	// Err is the underlying cause, if any (network error, ErrMalformed, …).
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("oauthclient: token endpoint")
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, ": status %d", e.StatusCode)
	}
	if e.ErrorCode != "" {
		fmt.Fprintf(&b, ": %s", e.ErrorCode)
		if e.ErrorDescription != "" {
			fmt.Fprintf(&b, " (%s)", e.ErrorDescription)
		}
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// Temporary reports whether retrying later may succeed: a 5xx or 429
// response, or a network error or timeout before a response arrived.
func (e *Error) Temporary() bool {
	if e.StatusCode == 429 || e.StatusCode >= 500 {
		return true
	}
	if e.Err == nil || errors.Is(e.Err, ErrMalformed) || errors.Is(e.Err, ErrBodyTooLarge) ||
		errors.Is(e.Err, ErrUnsupportedTokenType) || errors.Is(e.Err, ErrRedirect) {
		return false
	}
	// A network failure, also one that cut a response body short.
	var ne net.Error
	return errors.As(e.Err, &ne) || errors.Is(e.Err, io.ErrUnexpectedEOF) || e.StatusCode == 0
}

// sanitize keeps a server-provided string short and printable.
func sanitize(s string, max int) string {
	if len(s) > max {
		s = s[:max] + "…"
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}
