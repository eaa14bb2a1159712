package rediscache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"strconv"
	"time"

	"github.com/oauthkit/oauthkit/tokencache"
	"github.com/redis/go-redis/v9"
)

// acquireScript takes a free lock and, in the same step, issues the lease's
// fence. The lock's value is owner:fence.
//
// KEYS[1] lock key, KEYS[2] fence counter, KEYS[3] entry key; ARGV: owner,
// lease in ms, counter TTL in ms. Returns the fence, or 0 if the lock is
// busy.
var acquireScript = redis.NewScript(fenceLua + `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local f = nextFence(KEYS[2], KEYS[3], ARGV[3])
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. string.format('%d', f), 'PX', ARGV[2])
return f
`)

// extendScript makes a lock its caller still holds last at least a given
// time from now; it never shortens it (a renewal must not undo a Hold).
//
// KEYS[1] lock key; ARGV: lock value, time in ms. Returns 1 if the lock is
// held by the caller, 0 if by someone else or by nobody.
var extendScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
`)

// unlockScript deletes a lock its caller still holds.
//
// KEYS[1] lock key; ARGV: lock value. Returns 1 if deleted, 0 if the lock
// is held by someone else or by nobody.
var unlockScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// maxUnlockWait bounds how long an unlock waits for Redis.
const maxUnlockWait = 5 * time.Second

// LockLease takes the fleet-wide lock for key and returns it as a fenced
// lease (see "Locking" and "Fencing" in the package documentation): SET NX
// with a random 128-bit owner and a lease of LockLease, and, in the same
// script, the next fence from the key's fence counter.
//
// answerWithin bounds each round trip to Redis: an attempt that Redis does
// not answer within it makes LockLease return at once with an error
// wrapping ErrUnavailable (0: no bound beyond ctx). It also bounds each
// round trip of the lease's Hold and Store. While the lock is busy,
// LockLease polls, starting at LockPoll and backing off with jitter up to
// 500ms, until it gets the lock or ctx is done (the error then wraps
// ctx.Err()). If Redis cannot be reached it returns an error wrapping
// ErrUnavailable at once rather than keep polling.
//
// While held, a goroutine renews the lease every LockLease/3, never
// shortening it; if a renewal finds the lock taken over, it logs a warning
// and the lease is lost: Hold, Store and Unlock then fail with ErrLockLost
// without asking Redis. Always call Unlock: until then the lock is renewed.
func (c *Cache) LockLease(ctx context.Context, key string, answerWithin time.Duration) (tokencache.Lease, error) {
	l, err := c.lockLease(ctx, key, answerWithin)
	if err != nil {
		return nil, err
	}
	return l, nil
}

// Lock takes the fleet-wide lock for key, as LockLease does with no
// answerWithin, for callers of tokencache.Locker. The returned unlock
// function is the lease's Unlock. Writes made while holding it with
// Cache.Store are not fenced by the lock; prefer LockLease and Lease.Store.
func (c *Cache) Lock(ctx context.Context, key string) (unlock func() error, err error) {
	l, err := c.lockLease(ctx, key, 0)
	if err != nil {
		return nil, err
	}
	return l.Unlock, nil
}

func (c *Cache) lockLease(ctx context.Context, key string, within time.Duration) (*lease, error) {
	if err := tokencache.ValidateKey(key); err != nil {
		return nil, fmt.Errorf("rediscache: lock: %w", err)
	}
	owner, err := newOwner()
	if err != nil {
		return nil, fmt.Errorf("rediscache: lock: %w", err)
	}
	lk := c.lockKey(key)
	keys := []string{lk, c.fenceKey(key), c.entryKey(key)}
	delay := c.poll
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	answered := false // whether Redis has replied to an attempt
	for {
		fence, err := roundTrip(ctx, within, func(ctx context.Context) (int64, error) {
			return acquireScript.Run(ctx, c.client, keys, owner, c.lease.Milliseconds(), fenceCounterTTL.Milliseconds()).Int64()
		}, func(fence int64) {
			if fence > 0 { // taken after the caller gave up: give it back
				_, _ = c.release(lk, lockValue(owner, fence))
			}
		})
		if err != nil {
			if answered && ctx.Err() != nil {
				// Redis is up; the lock stayed busy until the caller gave up.
				return nil, fmt.Errorf("rediscache: lock: %w", ctx.Err())
			}
			return nil, wrapRedisErr("lock", err)
		}
		answered = true
		if fence > 0 {
			l := &lease{
				c: c, key: key, lockKey: lk, value: lockValue(owner, fence), fence: fence, within: within,
				stop: make(chan struct{}), done: make(chan struct{}),
			}
			go l.renew()
			return l, nil
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
			return nil, fmt.Errorf("rediscache: lock: %w", ctx.Err())
		case <-timer.C:
		}
		delay = min(delay*2, c.maxPoll)
	}
}

// release deletes the lock lockKey if it still has value, and returns 1 if
// it did. It waits for Redis at most for the lease (the lock frees itself
// after that anyway) and at most maxUnlockWait.
func (c *Cache) release(lockKey, value string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), min(c.lease, maxUnlockWait))
	defer cancel()
	return call(ctx, func() (int, error) {
		return unlockScript.Run(ctx, c.client, []string{lockKey}, value).Int()
	}, nil)
}

// lockValue is the value of a held lock: its owner and its lease's fence.
func lockValue(owner string, fence int64) string {
	return owner + ":" + strconv.FormatInt(fence, 10)
}

// newOwner returns a random 128-bit lock owner token in hex.
func newOwner() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random owner: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}
