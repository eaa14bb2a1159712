package rediscache

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// call runs fn, which makes one Redis call with ctx, and returns its result,
// or ctx's error as soon as ctx is done. A client created without
// ContextTimeoutEnabled ignores context deadlines once a command is sent and
// waits for its own ReadTimeout and retries instead; call keeps such a call
// from holding up the caller. An abandoned fn runs on until the client's
// timeouts end it; then, if it succeeded, abandoned (if not nil) is given
// its result to undo it.
func call[T any](ctx context.Context, fn func() (T, error), abandoned func(T)) (T, error) {
	if ctx.Done() == nil {
		return fn()
	}
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := fn()
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		if abandoned != nil {
			go func() {
				if r := <-ch; r.err == nil {
					abandoned(r.v)
				}
			}()
		}
		var zero T
		return zero, ctx.Err()
	}
}

// errNoAnswer is the error of a round trip that Redis did not answer within
// its bound (answerWithin) while the caller's context was still live. It is
// not a context error, so that callers do not take it for their own
// deadline.
type errNoAnswer time.Duration

func (e errNoAnswer) Error() string {
	return fmt.Sprintf("no answer within %v", time.Duration(e))
}

// roundTrip is call with each round trip bounded by within as well as by
// ctx (within <= 0: by ctx alone). When within runs out first, the error is
// an errNoAnswer.
func roundTrip[T any](ctx context.Context, within time.Duration, fn func(context.Context) (T, error), abandoned func(T)) (T, error) {
	if within <= 0 {
		return call(ctx, func() (T, error) { return fn(ctx) }, abandoned)
	}
	rctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	v, err := call(rctx, func() (T, error) { return fn(rctx) }, abandoned)
	if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) && rctx.Err() != nil {
		return v, errNoAnswer(within)
	}
	return v, err
}

// micros returns t as a decimal count of Unix microseconds, clamped to
// [0, 2^53) so that Lua compares it exactly; the zero time is 0.
func micros(t time.Time) string {
	if t.IsZero() {
		return "0"
	}
	us := min(max(t.UnixMicro(), 0), 1<<53-1)
	return strconv.FormatInt(us, 10)
}

// wrapRedisErr wraps err from a Redis call for op, adding ErrUnavailable
// when the error means Redis cannot serve requests right now. Server error
// replies do not repeat command arguments, so err carries no secrets.
func wrapRedisErr(op string, err error) error {
	if unavailable(err) {
		return fmt.Errorf("rediscache: %s: %w: %w", op, ErrUnavailable, err)
	}
	return fmt.Errorf("rediscache: %s: %w", op, err)
}

// unavailable reports whether err means Redis is down or temporarily unable
// to serve: any transport error or timeout, and the server replies sent
// while loading, during a failover or while a cluster is down.
func unavailable(err error) bool {
	var rerr redis.Error
	if !errors.As(err, &rerr) {
		return true // dial, read, write, pool, closed-client, context and no-answer errors
	}
	for _, p := range []string{"LOADING", "READONLY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "BUSY", "max number of clients"} {
		if redis.HasErrorPrefix(err, p) {
			return true
		}
	}
	return false
}
