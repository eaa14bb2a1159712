package rediscache

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Fences. Every lease and every write without a lease gets a fence from a
// per-key counter in Redis, KeyPrefix+"{K}:fence", inside the script that
// takes the lock or writes. The entry keeps the fence of the write that made
// it in field "f"; a fenced write is refused when the stored fence is higher.
const (
	// fenceCounterTTL is how long a fence counter lives after its last use.
	// A counter that is missing restarts above both the stored entry's fence
	// and the Redis server's clock in microseconds (see fenceLua), so its
	// expiry never lets a fence go backwards.
	fenceCounterTTL = 90 * 24 * time.Hour
	// maxFence bounds fences so that Lua's doubles hold them exactly.
	maxFence = 1<<53 - 1
	// maxRememberedFences bounds the fence memory of one Cache.
	maxRememberedFences = 10000
)

// fenceLua is the start of every script that reads or issues fences.
//
// validFence(s) is s as a fence (an integer in [1, 2^53)), or nil.
// storedFence(ek) is the fence of the entry in ek (0: none or unreadable).
// counterFence(ck) is the last fence issued from the counter ck, or nil.
// nextFence(ck, ek, ttl) issues the next fence from the counter ck: one more
// than the larger of the counter and the stored entry's fence. A counter
// that is missing (first use, expired, lost with Redis's data) starts at the
// server's clock in microseconds, so that fences issued after Redis lost its
// data are still higher than those remembered by running processes.
// string.format('%d') writes integers exactly (tostring would round them).
const fenceLua = `
local function validFence(s)
  local n = tonumber(s)
  if n and n >= 1 and n <= 9007199254740991 and n == math.floor(n) then return n end
  return nil
end
local function storedFence(ek)
  if redis.call('TYPE', ek)['ok'] ~= 'hash' then return 0 end
  return validFence(redis.call('HGET', ek, 'f')) or 0
end
local function counterFence(ck)
  if redis.call('TYPE', ck)['ok'] ~= 'string' then return nil end
  return validFence(redis.call('GET', ck))
end
local function nextFence(ck, ek, ttl)
  local f = counterFence(ck)
  if not f then
    local t = redis.call('TIME')
    f = tonumber(t[1]) * 1000000 + tonumber(t[2])
  end
  f = math.max(f, storedFence(ek)) + 1
  if f > 9007199254740991 then return redis.error_reply('fence counter exhausted') end
  redis.call('SET', ck, string.format('%d', f), 'PX', ttl)
  return f
end
`

// reserveScript issues a fence for a write that is prepared outside Redis
// (an encrypted entry binds its fence).
//
// KEYS[1] fence counter, KEYS[2] entry key; ARGV[1] counter TTL in ms.
// Returns the fence.
var reserveScript = redis.NewScript(fenceLua + `
return nextFence(KEYS[1], KEYS[2], ARGV[1])
`)

// reserveFence issues a fence for a write to key.
func (c *Cache) reserveFence(ctx context.Context, key string, within time.Duration) (int64, error) {
	return roundTrip(ctx, within, func(ctx context.Context) (int64, error) {
		return reserveScript.Run(ctx, c.client, []string{c.fenceKey(key), c.entryKey(key)},
			fenceCounterTTL.Milliseconds()).Int64()
	}, nil)
}

// parseFence parses a stored fence field; ok is false for anything that is
// not a fence.
func parseFence(s string) (f int64, ok bool) {
	f, err := strconv.ParseInt(s, 10, 64)
	if err != nil || f < 1 || f > maxFence {
		return 0, false
	}
	return f, true
}

// fenceMemory remembers, per cache key, the highest fence a Cache has read
// or written, so that Load can refuse an entry rolled back to an older
// fence. It holds at most limit keys: beyond that it forgets an arbitrary one,
// whose next entry is then accepted as if first seen. Safe for concurrent
// use.
type fenceMemory struct {
	limit int
	mu    sync.Mutex       // guards seen
	seen  map[string]int64 // cache key → highest fence seen
}

func newFenceMemory(limit int) *fenceMemory {
	return &fenceMemory{limit: limit, seen: make(map[string]int64)}
}

// observe records that fence f of key was read or written. It returns the
// highest fence seen before, and whether f is at least that (f is then
// remembered); a lower f is not.
func (m *fenceMemory) observe(key string, f int64) (highest int64, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	highest, known := m.seen[key]
	if f < highest {
		return highest, false
	}
	if !known && len(m.seen) >= m.limit {
		for k := range m.seen { // map order is random: forget any one
			delete(m.seen, k)
			break
		}
	}
	m.seen[key] = f
	return highest, true
}
