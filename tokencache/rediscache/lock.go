package rediscache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"sync"
	"time"

	"github.com/oauthkit/oauthkit/tokencache"
	"github.com/redis/go-redis/v9"
)

// renewScript extends the lease of a lock its caller still owns.
//
// KEYS[1] lock key; ARGV: owner, lease in ms. Returns 1 if renewed, 0 if the
// lock is held by someone else or by nobody.
var renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`)

// unlockScript deletes a lock its caller still owns.
//
// KEYS[1] lock key; ARGV: owner. Returns 1 if deleted, 0 if the lock is held
// by someone else or by nobody.
var unlockScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// maxUnlockWait bounds how long an unlock function waits for Redis.
const maxUnlockWait = 5 * time.Second

// Lock takes the fleet-wide lock for key: SET NX with a random 128-bit owner
// and a lease of LockLease. While the lock is busy it polls, starting at
// LockPoll and backing off with jitter up to 500ms, until it gets the lock
// or ctx is done (the error then wraps ctx.Err()). If Redis cannot be
// reached it returns an error wrapping ErrUnavailable at once rather than
// keep polling.
//
// While held, a goroutine renews the lease every LockLease/3; if a renewal
// finds the lock taken over, it logs a warning and stops. The returned
// unlock function stops the renewal and deletes the lock if still owned; it
// returns an error wrapping ErrLockLost if the lock had been lost, or
// ErrUnavailable if Redis could not be reached (the lease then expires on its
// own). Calling it again does nothing and returns nil. Always call it: until
// then the lock is renewed.
func (c *Cache) Lock(ctx context.Context, key string) (unlock func() error, err error) {
	if err := tokencache.ValidateKey(key); err != nil {
		return nil, fmt.Errorf("rediscache: lock: %w", err)
	}
	owner, err := newOwner()
	if err != nil {
		return nil, fmt.Errorf("rediscache: lock: %w", err)
	}
	lk := c.lockKey(key)
	delay := c.poll
	var timer *time.Timer
	answered := false // whether Redis has replied to an attempt
	for {
		ok, err := call(ctx, func() (bool, error) {
			return c.client.SetNX(ctx, lk, owner, c.lease).Result()
		}, func(ok bool) {
			if ok { // taken after the caller gave up: give it back
				c.release(lk, owner)
			}
		})
		if err != nil {
			if timer != nil {
				timer.Stop()
			}
			if answered && ctx.Err() != nil {
				// Redis is up; the lock stayed busy until the caller gave up.
				return nil, fmt.Errorf("rediscache: lock: %w", ctx.Err())
			}
			return nil, wrapRedisErr("lock", err)
		}
		answered = true
		if ok {
			break
		}
		// Sleep somewhere in [delay/2, delay] so that waiters spread out.
		d := delay/2 + mrand.N(delay/2+1)
		if timer == nil {
			timer = time.NewTimer(d)
		} else {
			timer.Reset(d)
		}
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, fmt.Errorf("rediscache: lock: %w", ctx.Err())
		case <-timer.C:
		}
		delay = min(delay*2, c.maxPoll)
	}
	if timer != nil {
		timer.Stop()
	}
	h := &heldLock{c: c, key: key, lockKey: lk, owner: owner, stop: make(chan struct{}), done: make(chan struct{})}
	go h.renew()
	return h.unlock, nil
}

// heldLock is one acquired lock. Its unlock method is safe for concurrent
// use.
type heldLock struct {
	c       *Cache
	key     string // the cache key, safe to log
	lockKey string
	owner   string
	stop    chan struct{} // closed by unlock to stop renew
	done    chan struct{} // closed when renew has returned
	once    sync.Once
}

// renew extends the lease every lease/3 until stop is closed or the lock is
// found lost. A failed renewal (Redis unreachable) is retried at the next
// tick: the lease may still be running.
func (h *heldLock) renew() {
	defer close(h.done)
	every := h.c.lease / 3
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), every)
		n, err := call(ctx, func() (int, error) {
			return renewScript.Run(ctx, h.c.client, []string{h.lockKey}, h.owner, h.c.lease.Milliseconds()).Int()
		}, nil)
		cancel()
		switch {
		case err != nil:
			h.c.log.Warn("rediscache: lock lease renewal failed", "key", h.key, "err", err)
		case n == 0:
			h.c.log.Warn("rediscache: lock lost while held; its lease expired", "key", h.key)
			return
		}
	}
}

// unlock stops renewal and releases the lock if this holder still owns it.
// Only the first call does anything.
func (h *heldLock) unlock() error {
	var err error
	h.once.Do(func() { err = h.release() })
	return err
}

func (h *heldLock) release() error {
	close(h.stop)
	<-h.done
	n, err := h.c.release(h.lockKey, h.owner)
	switch {
	case err != nil:
		return wrapRedisErr("unlock", err)
	case n == 0:
		return fmt.Errorf("rediscache: unlock: %w", ErrLockLost)
	}
	return nil
}

// release deletes the lock lockKey if owner holds it, and returns 1 if it
// did. It waits for Redis at most for the lease (the lock frees itself after
// that anyway) and at most maxUnlockWait.
func (c *Cache) release(lockKey, owner string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), min(c.lease, maxUnlockWait))
	defer cancel()
	return call(ctx, func() (int, error) {
		return unlockScript.Run(ctx, c.client, []string{lockKey}, owner).Int()
	}, nil)
}

// newOwner returns a random 128-bit lock owner token in hex.
func newOwner() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random owner: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}
