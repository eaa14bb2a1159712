package oauthclient

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// Observer receives events from a TokenSource and its Transport, for
// metrics and traces; package oauthclient/otelauth implements it with
// OpenTelemetry, and this package imports no telemetry library itself.
//
// Methods are called synchronously by the goroutine doing the work (some
// with the source's mutex held): they must be quick, must not call back
// into the source, and must be safe for concurrent use. Events carry no
// secrets: URLs lose their query and errors are the redacted ones callers
// get. No method is called on the hot path (a fresh token from memory), so
// an observer adds nothing to it.
type Observer interface {
	// FetchStart is called when a fetch begins: callers wait for a token,
	// or a background refresh starts. It returns the context the fetch
	// runs with (for example one holding a span); ctx is the fetch's own
	// context, detached from every caller's.
	FetchStart(ctx context.Context, e FetchEvent) context.Context
	// FetchWait is called for each caller that waits for the fetch, the
	// one that started it included, and for the request that set off a
	// background refresh (which does not wait), with that caller's
	// context: a trace links the fetch to every request that waited for
	// it or set it off. It is not a count of waits.
	FetchWait(fetchCtx, callerCtx context.Context)
	// FetchEnd is called once when the fetch is over.
	FetchEnd(fetchCtx context.Context, e FetchResult)
	// TokenRequest is called after each token-endpoint request of a fetch.
	TokenRequest(fetchCtx context.Context, e TokenRequestEvent)
	// CacheLoad is called after each load from the persistent cache.
	CacheLoad(ctx context.Context, e CacheEvent)
	// LockWait is called after each attempt to take the cache's lock.
	LockWait(ctx context.Context, e LockEvent)
	// Replay is called when the Transport got a 401 for a token.
	Replay(ctx context.Context, e ReplayEvent)
}

// FetchEvent describes a fetch that begins.
type FetchEvent struct {
	// Background is true for an early refresh no caller waits for.
	Background bool
	// Grant is the grant's cache identity prefix, e.g. "client_credentials".
	Grant string
	// TokenURL is the token endpoint without its query.
	TokenURL string
	// ClientID is the client identifier.
	ClientID string
}

// Outcomes of a fetch (FetchResult.Outcome).
const (
	FetchFetched   = "fetched"   // a new token from the token endpoint
	FetchCached    = "cached"    // a token another process stored
	FetchFailed    = "failed"    // an error, handed to the waiting callers
	FetchAbandoned = "abandoned" // every caller left during a retry backoff
)

// FetchResult describes how a fetch ended.
type FetchResult struct {
	// Outcome is FetchFetched, FetchCached, FetchFailed or FetchAbandoned.
	Outcome string
	// Err is the error callers got, if any (secrets redacted).
	Err error
	// Lifetime is the new token's lifetime (0: unknown or no token).
	Lifetime time.Duration
	// LeadTime is how long before the replaced token's expiry the new one
	// arrived (0: there was no usable token to replace).
	LeadTime time.Duration
}

// Outcomes of one token request (TokenRequestEvent.Outcome).
const (
	RequestOK        = "ok"
	RequestTemporary = "temporary_error" // retried, or worth retrying later
	RequestPermanent = "permanent_error" // invalid_client, invalid_grant, …
)

// TokenRequestEvent describes one token-endpoint request.
type TokenRequestEvent struct {
	// Grant is the grant_type sent.
	Grant string
	// TokenURL is the token endpoint without its query.
	TokenURL string
	// ClientID is the client identifier.
	ClientID string
	// Attempt counts the requests of this fetch, from 1.
	Attempt int
	// Start is when the request was sent; Duration how long it took.
	Start    time.Time
	Duration time.Duration
	// StatusCode is the HTTP status (0: no response).
	StatusCode int
	// Outcome is RequestOK, RequestTemporary or RequestPermanent.
	Outcome string
	// ErrorCode is the OAuth error code, if any (invalid_client, …).
	ErrorCode string
}

// CacheEvent describes one load from the persistent cache.
type CacheEvent struct {
	// Hit is true when an entry was found (usable or not).
	Hit bool
	// Failed is true when the cache could not answer (not a miss).
	Failed bool
}

// Outcomes of a lock attempt (LockEvent.Outcome).
const (
	LockAcquired    = "acquired"
	LockUnavailable = "unavailable" // the lock service did not answer: fetched without it
	LockTimeout     = "timeout"     // another holder kept it too long
	LockFailed      = "failed"
)

// LockEvent describes one attempt to take the cache's lock.
type LockEvent struct {
	// Wait is how long the attempt took.
	Wait time.Duration
	// Outcome is LockAcquired, LockUnavailable, LockTimeout or LockFailed.
	Outcome string
}

// Outcomes of a 401 at the Transport (ReplayEvent.Outcome).
const (
	ReplayOK            = "replayed"          // sent again with a new token, accepted
	ReplayRejected      = "replayed_rejected" // sent again, rejected again
	ReplayNoNewToken    = "no_new_token"      // no other token to try (backoff, static token)
	ReplayNotReplayable = "not_replayable"    // the body cannot be sent again, or not a token error
)

// ReplayEvent describes a 401 the Transport handled.
type ReplayEvent struct {
	// Outcome is one of the Replay… constants.
	Outcome string
}

// noObserver is the Observer of a source that was given none.
type noObserver struct{}

func (noObserver) FetchStart(ctx context.Context, _ FetchEvent) context.Context { return ctx }
func (noObserver) FetchWait(context.Context, context.Context)                   {}
func (noObserver) FetchEnd(context.Context, FetchResult)                        {}
func (noObserver) TokenRequest(context.Context, TokenRequestEvent)              {}
func (noObserver) CacheLoad(context.Context, CacheEvent)                        {}
func (noObserver) LockWait(context.Context, LockEvent)                          {}
func (noObserver) Replay(context.Context, ReplayEvent)                          {}

// String describes e; its token URL is printed without a query even if a
// caller filled the event in by hand. The formatting methods have value
// receivers so that a value redacts as well as a pointer.
func (e FetchEvent) String() string {
	return fmt.Sprintf("oauthclient.FetchEvent{Background:%t Grant:%q TokenURL:%q ClientID:%q}", e.Background, e.Grant, redactURL(e.TokenURL), e.ClientID)
}

// GoString is String.
func (e FetchEvent) GoString() string { return e.String() }

// Format prints String for every fmt verb.
func (e FetchEvent) Format(f fmt.State, _ rune) { fmt.Fprint(f, e.String()) }

// LogValue prints String in slog output.
func (e FetchEvent) LogValue() slog.Value { return slog.StringValue(e.String()) }

// String describes e; its token URL is printed without a query.
func (e TokenRequestEvent) String() string {
	return fmt.Sprintf("oauthclient.TokenRequestEvent{Grant:%q TokenURL:%q ClientID:%q Attempt:%d Duration:%v StatusCode:%d Outcome:%q ErrorCode:%q}",
		e.Grant, redactURL(e.TokenURL), e.ClientID, e.Attempt, e.Duration, e.StatusCode, e.Outcome, e.ErrorCode)
}

// GoString is String.
func (e TokenRequestEvent) GoString() string { return e.String() }

// Format prints String for every fmt verb.
func (e TokenRequestEvent) Format(f fmt.State, _ rune) { fmt.Fprint(f, e.String()) }

// LogValue prints String in slog output.
func (e TokenRequestEvent) LogValue() slog.Value { return slog.StringValue(e.String()) }
