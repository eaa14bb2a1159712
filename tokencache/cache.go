package tokencache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"
)

// ErrNotFound is returned by Cache.Load when no entry is stored under a key.
var ErrNotFound = errors.New("tokencache: not found")

// ErrCorrupt is returned (wrapped) when a stored entry cannot be decoded:
// a truncated or foreign file, an unknown format version. Callers treat it as
// a cache miss.
var ErrCorrupt = errors.New("tokencache: corrupt entry")

// Cache stores token entries under opaque keys (see Key). Implementations
// must be safe for concurrent use by multiple goroutines.
type Cache interface {
	// Load returns the entry stored under key, or an error wrapping
	// ErrNotFound when there is none.
	Load(ctx context.Context, key string) (*Entry, error)
	// Store replaces the entry under key. A failed Store leaves the previous
	// entry intact.
	Store(ctx context.Context, key string, e *Entry) error
	// Delete removes the entry under key. Deleting a missing key is not an
	// error.
	Delete(ctx context.Context, key string) error
}

// Locker is implemented by caches that can serialise token requests across
// processes (and, for shared caches, across hosts). Lock blocks until the
// lock for key is held or ctx is done; the returned unlock function releases
// it and is safe to call more than once.
type Locker interface {
	Lock(ctx context.Context, key string) (unlock func() error, err error)
}

// ErrUnavailable is wrapped by the errors of caches and locks whose backing
// service cannot answer right now (a Redis that is down, restarting or did
// not answer in time, a locked keychain). Token sources fall back to their
// process-local state and say so in a warning.
var ErrUnavailable = errors.New("tokencache: cache unavailable")

// ErrLockLost is wrapped by the errors of a Lease whose lock is no longer
// held: its lease ran out (the holder stalled, or the lock service could not
// be reached to renew it) and another process may have taken it.
var ErrLockLost = errors.New("tokencache: lock lost")

// LeaseLocker is implemented by shared caches whose lock is a lease that can
// run out while its holder still works (Redis). Writes made through the
// Lease are fenced: they are ordered by a fencing token the lock service
// issues with each lease, never by host clocks, so the newest lock holder's
// write always wins and a holder whose lease ran out cannot overwrite it.
// Token sources prefer LeaseLocker to Locker when a cache has both.
type LeaseLocker interface {
	// LockLease takes the lock for key, waiting while another holder has it,
	// until ctx is done (the error then wraps ctx.Err()). answerWithin bounds
	// each round trip to the lock service: one that does not answer in time
	// makes LockLease fail at once with an error wrapping ErrUnavailable
	// (0: no bound beyond ctx).
	LockLease(ctx context.Context, key string, answerWithin time.Duration) (Lease, error)
}

// Lease is a held lock on one cache key. Its methods are safe for
// concurrent use.
type Lease interface {
	// Hold makes sure the lock is still held and stays held for at least d
	// from the call even if no renewal succeeds (a refresh request is about
	// to be sent that must not overlap another holder's). It fails with an
	// error wrapping ErrLockLost if the lock was lost, or ErrUnavailable if
	// that cannot be confirmed; the caller must then not send.
	Hold(ctx context.Context, d time.Duration) error
	// Store writes e under the lease's key, fenced by the lease: it fails
	// with an error wrapping ErrLockLost, and writes nothing, if a later
	// lease has written the key since this one was taken.
	Store(ctx context.Context, e *Entry) error
	// Unlock releases the lock if still held. Calling it again does nothing.
	Unlock() error
}

// Entry is one cached token: what a token endpoint granted, plus the refresh
// token that may have come with it. Entries hold secrets: String, GoString
// and LogValue redact them.
type Entry struct {
	// AccessToken is the access token. Secret.
	AccessToken string
	// TokenType is the token type as the server sent it (usually "Bearer").
	TokenType string
	// RefreshToken is the refresh token, if any. Secret.
	RefreshToken string
	// Expiry is when the access token expires; the zero time means it does
	// not expire.
	Expiry time.Time
	// Scope is the scope the server granted, space-separated.
	Scope string
	// Extra holds other members of the token response worth keeping
	// (issued_token_type, patient, id_token, …).
	Extra map[string]any
	// Updated is when the entry was written, by the writer's clock. It is
	// informational: no cache orders writes by it (host clocks disagree).
	Updated time.Time
	// Thumbprint is the RFC 7638 JWK SHA-256 thumbprint (base64url) of the
	// DPoP key the tokens were requested with (RFC 9449), empty for tokens
	// obtained without DPoP. A DPoP-bound access token, and a refresh token
	// that may be bound, are usable only with that key. Not secret.
	Thumbprint string
}

// Clone returns a deep copy of e (nil for nil): the maps and slices that
// JSON decoding puts in Extra (map[string]any, []any, and also []string) are
// copied at every depth, so that the copy shares no mutable value with e.
// Other values in Extra are copied as they are.
func (e *Entry) Clone() *Entry {
	if e == nil {
		return nil
	}
	c := *e
	if e.Extra != nil {
		c.Extra = make(map[string]any, len(e.Extra))
		for k, v := range e.Extra {
			c.Extra[k] = cloneValue(v)
		}
	}
	return &c
}

// cloneValue returns a deep copy of the maps and slices JSON decoding makes;
// other values are returned as they are. Nil maps and slices stay nil.
func cloneValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		if v == nil {
			return v
		}
		m := make(map[string]any, len(v))
		for k, x := range v {
			m[k] = cloneValue(x)
		}
		return m
	case []any:
		if v == nil {
			return v
		}
		s := make([]any, len(v))
		for i, x := range v {
			s[i] = cloneValue(x)
		}
		return s
	case []string:
		return slices.Clone(v)
	default:
		return v
	}
}

// Valid reports whether e holds an access token that has not expired at now.
func (e *Entry) Valid(now time.Time) bool {
	return e != nil && e.AccessToken != "" && (e.Expiry.IsZero() || now.Before(e.Expiry))
}

func redacted(s string) string {
	if s == "" {
		return `""`
	}
	return "REDACTED"
}

// String describes e without its secrets. Entry has value receivers for
// its formatting methods so that an Entry value redacts as well as a pointer.
func (e Entry) String() string {
	exp := "never"
	if !e.Expiry.IsZero() {
		exp = e.Expiry.UTC().Format(time.RFC3339)
	}
	bound := ""
	if e.Thumbprint != "" {
		bound = fmt.Sprintf(" Thumbprint:%q", e.Thumbprint)
	}
	return fmt.Sprintf("tokencache.Entry{AccessToken:%s TokenType:%q RefreshToken:%s Expiry:%s Scope:%q%s}",
		redacted(e.AccessToken), e.TokenType, redacted(e.RefreshToken), exp, e.Scope, bound)
}

// GoString is like String, so %#v does not print secrets either.
func (e Entry) GoString() string { return e.String() }

// Format makes every fmt verb (%v, %+v, %#v, %s) print the redacted form.
func (e Entry) Format(f fmt.State, verb rune) { fmt.Fprint(f, e.String()) }

// LogValue implements slog.LogValuer with secrets redacted.
func (e Entry) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("token_type", e.TokenType),
		slog.Bool("has_refresh_token", e.RefreshToken != ""),
		slog.Time("expiry", e.Expiry),
		slog.String("scope", e.Scope),
	)
}
