package rediscache

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/oauthkit/oauthkit/tokencache"
	"github.com/redis/go-redis/v9"
)

// Hash fields of a stored entry.
const (
	fieldValue   = "v" // the encoded (and possibly encrypted) entry
	fieldUpdated = "u" // Entry.Updated, Unix microseconds (informational)
	fieldExpiry  = "x" // Entry.Expiry, Unix microseconds (0: none)
	fieldFence   = "f" // the fence of the write that stored the entry
)

// storeScript writes an entry with a fence: with a given fence, unless a
// higher one was issued since (the counter, which Delete leaves in place,
// or the stored entry's); with fence 0, with the next fence from the
// counter (an unlocked write is the newest when it is made). Anything else
// under the key (a foreign value, stray fields) is replaced.
//
// KEYS[1] entry key, KEYS[2] fence counter; ARGV: value, updated, expiry,
// entry TTL in ms (0: none), fence (0: issue one), counter TTL in ms.
// Returns the fence written, or 0 when refused.
var storeScript = redis.NewScript(fenceLua + `
local f = tonumber(ARGV[5])
if f == 0 then
  f = nextFence(KEYS[2], KEYS[1], ARGV[6])
elseif storedFence(KEYS[1]) > f or (counterFence(KEYS[2]) or 0) > f then
  return 0
end
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('DEL', KEYS[1]) end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'u', ARGV[2], 'x', ARGV[3], 'f', string.format('%d', f))
local ttl = tonumber(ARGV[4])
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
return f
`)

// Load returns the entry stored under key. It returns an error wrapping
// tokencache.ErrNotFound when there is none, tokencache.ErrCorrupt when the
// stored value does not decode or decrypt or was rolled back to a fence
// lower than one this Cache has already read or written for key (treat it
// as a miss), and ErrUnavailable when Redis cannot be reached.
func (c *Cache) Load(ctx context.Context, key string) (*tokencache.Entry, error) {
	if err := tokencache.ValidateKey(key); err != nil {
		return nil, fmt.Errorf("rediscache: load: %w", err)
	}
	vals, err := call(ctx, func() ([]any, error) {
		return c.client.HMGet(ctx, c.entryKey(key), fieldValue, fieldFence).Result()
	}, nil)
	switch {
	case redis.HasErrorPrefix(err, "WRONGTYPE"):
		return nil, fmt.Errorf("rediscache: load: %w: not an entry", tokencache.ErrCorrupt)
	case err != nil:
		return nil, wrapRedisErr("load", err)
	case len(vals) != 2 || vals[0] == nil:
		return nil, fmt.Errorf("rediscache: load: %w", tokencache.ErrNotFound)
	}
	v, _ := vals[0].(string)
	f, _ := vals[1].(string)
	e, fence, err := c.decode(key, []byte(v), f)
	if err != nil {
		return nil, fmt.Errorf("rediscache: load: %w", err)
	}
	if highest, ok := c.fences.observe(key, fence); !ok {
		return nil, fmt.Errorf("rediscache: load: %w: entry rolled back to fence %d after fence %d was seen", tokencache.ErrCorrupt, fence, highest)
	}
	return e, nil
}

// decode turns the stored fields of key's entry (value v, fence field f)
// into an entry and its fence. Every failure wraps tokencache.ErrCorrupt.
func (c *Cache) decode(key string, v []byte, f string) (*tokencache.Entry, int64, error) {
	fence, ok := parseFence(f)
	switch {
	case c.aead != nil:
		if isSealed(v) && !ok {
			return nil, 0, fmt.Errorf("%w: encrypted entry without a valid fence", tokencache.ErrCorrupt)
		}
		var err error
		if v, err = c.open(v, key, fence); err != nil {
			return nil, 0, err
		}
	case isSealed(v):
		return nil, 0, fmt.Errorf("%w: entry is encrypted and no EncryptionKey is set", tokencache.ErrCorrupt)
	case !ok:
		return nil, 0, fmt.Errorf("%w: entry without a valid fence (written by an earlier version?)", tokencache.ErrCorrupt)
	}
	e, err := tokencache.Decode(v)
	if err != nil {
		return nil, 0, err
	}
	return e, fence, nil
}

// Store saves e under key as the newest entry: in the same script it takes
// the next fence from the key's fence counter and writes the entry with it,
// so that the entry stays in place until a later lease or a later Store
// writes. It does not compare clocks: an entry with an older Updated than
// the stored one is written all the same.
//
// Store is for writes made without the lock (the lock was unavailable, or
// the cache is being seeded); a lock holder writes through its Lease, whose
// Store cannot overwrite a later lease's entry. With EncryptionKey set the
// fence is sealed into the entry, so Store takes it in a first round trip
// and writes in a second; if a write with a later fence lands in between,
// Store writes nothing and returns an error wrapping ErrStale.
//
// An entry whose Updated is zero is stored with Updated set to the current
// time. The Redis key expires when the access token does, plus
// RefreshTokenTTL if e holds a refresh token, and never if e.Expiry is zero;
// at least one second from now.
func (c *Cache) Store(ctx context.Context, key string, e *tokencache.Entry) error {
	var fence int64
	if c.aead != nil {
		if err := checkStore(key, e); err != nil {
			return err
		}
		var err error
		if fence, err = c.reserveFence(ctx, key, 0); err != nil {
			return wrapRedisErr("store", err)
		}
	}
	written, err := c.write(ctx, key, e, fence, 0)
	if err != nil {
		return err
	}
	if !written {
		return fmt.Errorf("rediscache: store: %w", ErrStale)
	}
	return nil
}

// checkStore validates the arguments of a Store.
func checkStore(key string, e *tokencache.Entry) error {
	if err := tokencache.ValidateKey(key); err != nil {
		return fmt.Errorf("rediscache: store: %w", err)
	}
	if e == nil {
		return errors.New("rediscache: store: nil entry")
	}
	return nil
}

// write stores e under key with fence (0: the next fence, issued by the
// script; only without encryption) in one round trip bounded by within (0:
// by ctx alone). It reports false when a higher fence is stored.
func (c *Cache) write(ctx context.Context, key string, e *tokencache.Entry, fence int64, within time.Duration) (bool, error) {
	if err := checkStore(key, e); err != nil {
		return false, err
	}
	now := c.now()
	if e.Updated.IsZero() {
		e = e.Clone()
		e.Updated = now
	}
	b, err := tokencache.Encode(e)
	if err != nil {
		return false, fmt.Errorf("rediscache: store: %w", err)
	}
	if c.aead != nil {
		if fence == 0 {
			return false, errors.New("rediscache: store: encrypted entry without a fence")
		}
		if b, err = c.seal(b, key, fence); err != nil {
			return false, fmt.Errorf("rediscache: store: %w", err)
		}
	}
	var ttl time.Duration
	if !e.Expiry.IsZero() {
		ttl = e.Expiry.Sub(now)
		if e.RefreshToken != "" {
			ttl += c.refreshTokenTTL
		}
		ttl = max(ttl, minTTL)
	}
	written, err := roundTrip(ctx, within, func(ctx context.Context) (int64, error) {
		return storeScript.Run(ctx, c.client, []string{c.entryKey(key), c.fenceKey(key)},
			b, micros(e.Updated), micros(e.Expiry), ttl.Milliseconds(),
			strconv.FormatInt(fence, 10), fenceCounterTTL.Milliseconds()).Int64()
	}, nil)
	if err != nil {
		return false, wrapRedisErr("store", err)
	}
	if written == 0 {
		return false, nil
	}
	c.fences.observe(key, written)
	return true, nil
}

// Delete removes the entry under key. The fence counter stays, so entries
// stored later still get higher fences than any before. Deleting a missing
// key is not an error.
func (c *Cache) Delete(ctx context.Context, key string) error {
	if err := tokencache.ValidateKey(key); err != nil {
		return fmt.Errorf("rediscache: delete: %w", err)
	}
	_, err := call(ctx, func() (int64, error) { return c.client.Del(ctx, c.entryKey(key)).Result() }, nil)
	if err != nil {
		return wrapRedisErr("delete", err)
	}
	return nil
}
