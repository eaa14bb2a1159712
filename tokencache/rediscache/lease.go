package rediscache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oauthkit/oauthkit/tokencache"
)

// lease is a held lock with its fence; see LockLease. Its methods are safe
// for concurrent use.
type lease struct {
	c       *Cache
	key     string // the cache key, safe to log
	lockKey string
	value   string // the lock's value while held: owner:fence
	fence   int64
	within  time.Duration // bound of each round trip (0: ctx alone)

	lost     atomic.Bool   // set once the lock is known lost, or released
	released atomic.Bool   // set by Unlock
	stop     chan struct{} // closed by Unlock to stop renew
	done     chan struct{} // closed when renew has returned
	once     sync.Once
}

var _ tokencache.Lease = (*lease)(nil)

// Hold confirms in one round trip that the lock is still held and makes it
// last at least d plus LockLease from now (never shorter than it already
// does), so that it stays held for a request whose hard deadline is d even
// if no renewal succeeds meanwhile (Redis stalls, or cannot be reached). It
// returns an error wrapping ErrLockLost if the lock is no longer held, and
// one wrapping ErrUnavailable if Redis does not answer (within the
// LockLease answerWithin, or before ctx is done); the caller must then not
// send the request. Once the lease is known lost, Hold fails without a
// round trip.
func (l *lease) Hold(ctx context.Context, d time.Duration) error {
	if l.lost.Load() {
		return fmt.Errorf("rediscache: hold: %w", ErrLockLost)
	}
	want := max(d, 0) + l.c.lease
	held, err := roundTrip(ctx, l.within, func(ctx context.Context) (int, error) {
		return extendScript.Run(ctx, l.c.client, []string{l.lockKey}, l.value, want.Milliseconds()).Int()
	}, nil)
	switch {
	case err != nil:
		if !unavailable(err) {
			// Not a transport failure (the lock key holds something
			// else): the lock cannot be ours.
			return fmt.Errorf("rediscache: hold: %w: %w", ErrLockLost, err)
		}
		return wrapRedisErr("hold", err)
	case held == 0:
		l.lost.Store(true)
		return fmt.Errorf("rediscache: hold: %w", ErrLockLost)
	}
	return nil
}

// Store writes e under the lease's key with the lease's fence, unless a
// higher fence was issued since (a later lease, or a later unlocked Store,
// even one whose entry was deleted again): then it writes nothing and
// returns an error wrapping ErrLockLost. It does not compare clocks, and it
// does not need the lock to be held still: a holder whose lock went away
// (its lease ran out, or Redis dropped the key) while nobody else took a
// fence keeps the token it obtained, even when renewal already noticed the
// loss; Redis decides. After Unlock, Store fails with ErrLockLost without a
// round trip. Otherwise it is like Cache.Store.
func (l *lease) Store(ctx context.Context, e *tokencache.Entry) error {
	if e == nil {
		return errors.New("rediscache: store: nil entry")
	}
	if l.released.Load() {
		return fmt.Errorf("rediscache: store: %w", ErrLockLost)
	}
	written, err := l.c.write(ctx, l.key, e, l.fence, l.within)
	if err != nil {
		return err
	}
	if !written {
		l.lost.Store(true)
		return fmt.Errorf("rediscache: store: %w: a later lease has written the entry", ErrLockLost)
	}
	return nil
}

// Unlock stops renewal and releases the lock if this lease still holds it.
// It returns an error wrapping ErrLockLost if the lock had been lost, or
// ErrUnavailable if Redis could not be reached (the lease then runs out on
// its own). Only the first call does anything; later ones return nil.
func (l *lease) Unlock() error {
	var err error
	l.once.Do(func() { err = l.release() })
	return err
}

func (l *lease) release() error {
	l.released.Store(true)
	close(l.stop)
	<-l.done
	if l.lost.Swap(true) {
		return fmt.Errorf("rediscache: unlock: %w", ErrLockLost)
	}
	n, err := l.c.release(l.lockKey, l.value)
	switch {
	case err != nil:
		return wrapRedisErr("unlock", err)
	case n == 0:
		return fmt.Errorf("rediscache: unlock: %w", ErrLockLost)
	}
	return nil
}

// renew extends the lease every lease/3 until stop is closed or the lock is
// found lost. A failed renewal (Redis unreachable) is retried at the next
// tick: the lease may still be running.
func (l *lease) renew() {
	defer close(l.done)
	every := l.c.lease / 3
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), every)
		held, err := call(ctx, func() (int, error) {
			return extendScript.Run(ctx, l.c.client, []string{l.lockKey}, l.value, l.c.lease.Milliseconds()).Int()
		}, nil)
		cancel()
		switch {
		case err != nil:
			l.c.log.Warn("rediscache: lock lease renewal failed", "key", l.key, "err", err)
		case held == 0:
			l.lost.Store(true)
			l.c.log.Warn("rediscache: lock lost while held; its lease expired", "key", l.key)
			return
		}
	}
}
