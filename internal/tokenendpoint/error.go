package tokenendpoint

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
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
// secret or an assertion: every text kept from a response of Post or Do has
// the request's credentials (Request.Secrets) replaced by Redacted and its
// control characters replaced by spaces.
type Error struct {
	// StatusCode is the HTTP status, 0 when no response was received.
	StatusCode int
	// ErrorCode is the "error" member (invalid_client, invalid_grant, …),
	// cut to 64 bytes.
	ErrorCode string
	// ErrorDescription is the "error_description" member, cut to 1024
	// bytes on a character boundary ("…" marks a cut).
	ErrorDescription string
	// ErrorURI is the "error_uri" member, cut to 256 bytes.
	ErrorURI string
	// RetryAfter is the delay the server asked for with Retry-After on a
	// 429 or 503 answer, as RetryAfter parses it: not capped, at most 100
	// years. Callers cap it with their retry policy.
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

// Limits, in bytes, of the server-provided text an Error keeps.
const (
	maxErrorCode        = 64
	maxErrorDescription = 1024
	maxErrorURI         = 256
)

// Printable returns server-provided text fit to print on one line of a log
// or a terminal: sanitized, then cut to at most n bytes on a character
// boundary ("…" marks a cut).
func Printable(s string, n int) string { return clip(sanitize(s), n) }

// sanitize replaces control characters (C0, DEL and C1, which can move a
// terminal's cursor) by spaces and invalid UTF-8 by U+FFFD, so
// server-provided text prints on one line.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

// clip cuts s to at most max bytes on a rune boundary, marking a cut
// with "…".
func clip(s string, max int) string {
	if len(s) <= max {
		return s
	}
	i := max
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}
