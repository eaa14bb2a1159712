package rediscache

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/oauthkit/oauthkit/tokencache"
	"github.com/redis/go-redis/v9"
)

// ErrUnavailable is wrapped by the errors of Load, Store, Delete, Lock and
// unlock when Redis cannot be reached or cannot serve the request right now:
// connection refused or reset, timeouts (including the caller's context
// deadline), a server that is loading, read-only after a failover, or a
// cluster that is down. Callers fall back to their local cache tiers.
var ErrUnavailable = errors.New("rediscache: redis unavailable")

// ErrStale is wrapped by the error of Store when the entry already stored
// under the key is newer than the one offered (see "Fencing" in the package
// documentation). The stored entry is left alone; Load returns it.
var ErrStale = errors.New("rediscache: a newer entry is stored")

// ErrLockLost is wrapped by the error of an unlock function when the lock
// was no longer held: its lease expired (the holder stalled for longer than
// LockLease, or Redis was unreachable for that long) and another process may
// have taken it.
var ErrLockLost = errors.New("rediscache: lock lost")

// Defaults for Options.
const (
	DefaultKeyPrefix       = "oauthkit:"
	DefaultLockLease       = 15 * time.Second
	DefaultLockPoll        = 20 * time.Millisecond
	DefaultRefreshTokenTTL = 30 * 24 * time.Hour

	// maxLockPoll caps the interval between a waiter's attempts (unless
	// LockPoll itself is larger).
	maxLockPoll = 500 * time.Millisecond
	// minLockLease is the shortest lease accepted.
	minLockLease = 10 * time.Millisecond
	// minTTL is the shortest lifetime given to a stored entry.
	minTTL = time.Second
)

// Options configure a Cache. The zero value (or a nil *Options) selects the
// defaults.
type Options struct {
	// KeyPrefix is prepended to every Redis key the cache uses. It must not
	// contain '{' or '}' (they would change the Redis Cluster hash tag).
	// Optional; the default is "oauthkit:".
	KeyPrefix string
	// LockLease is how long a lock stays held if its holder stops renewing
	// it (a crashed process). While held, the lease is renewed every
	// LockLease/3. At least 10ms. Optional; the default is 15s.
	LockLease time.Duration
	// LockPoll is the first interval between a waiter's attempts to take a
	// busy lock; it doubles, with jitter, up to 500ms. Optional; the default
	// is 20ms.
	LockPoll time.Duration
	// EncryptionKey, if set, encrypts entries at rest with AES-GCM. It must
	// be 32 bytes (AES-256; 16 or 24 bytes select AES-128 or AES-192). Every
	// process of the fleet needs the same key. Entries that do not decrypt
	// with it load as misses (ErrCorrupt). Optional but recommended; secret.
	EncryptionKey []byte
	// RefreshTokenTTL is how long an entry holding a refresh token lives in
	// Redis past its access token's expiry. Optional; the default is 30 days.
	RefreshTokenTTL time.Duration
	// Logger receives warnings (a lock lost, a failed lease renewal). It
	// never receives tokens or keys. Optional; nil discards them.
	Logger *slog.Logger
}

// String describes o without its encryption key. Options has value
// receivers for its formatting methods so that an Options value redacts as
// well as a pointer.
func (o Options) String() string {
	key := "nil"
	if len(o.EncryptionKey) > 0 {
		key = fmt.Sprintf("REDACTED(%d bytes)", len(o.EncryptionKey))
	}
	return fmt.Sprintf("rediscache.Options{KeyPrefix:%q LockLease:%v LockPoll:%v EncryptionKey:%s RefreshTokenTTL:%v Logger:%t}",
		o.KeyPrefix, o.LockLease, o.LockPoll, key, o.RefreshTokenTTL, o.Logger != nil)
}

// GoString is like String, so %#v does not print the key either.
func (o Options) GoString() string { return o.String() }

// Format makes every fmt verb (%v, %+v, %#v, %s) print String.
func (o Options) Format(f fmt.State, verb rune) { fmt.Fprint(f, o.String()) }

// LogValue implements slog.LogValuer without the encryption key.
func (o Options) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("key_prefix", o.KeyPrefix),
		slog.Duration("lock_lease", o.LockLease),
		slog.Duration("lock_poll", o.LockPoll),
		slog.Bool("has_encryption_key", len(o.EncryptionKey) > 0),
		slog.Duration("refresh_token_ttl", o.RefreshTokenTTL),
	)
}

// Cache is a tokencache.Cache and tokencache.Locker backed by Redis, shared
// by every process configured with the same Redis and KeyPrefix.
//
// A Cache is safe for concurrent use by multiple goroutines. Create it with
// New; the zero value is not usable.
type Cache struct {
	client          redis.UniversalClient
	prefix          string
	lease           time.Duration
	poll            time.Duration
	maxPoll         time.Duration
	refreshTokenTTL time.Duration
	aead            cipher.AEAD // nil when entries are stored in the clear
	log             *slog.Logger
	now             func() time.Time
}

var (
	_ tokencache.Cache  = (*Cache)(nil)
	_ tokencache.Locker = (*Cache)(nil)
)

// New returns a Cache that keeps entries and locks in Redis through client,
// which may be a single-node (*redis.Client), Sentinel (failover) or Cluster
// client. A nil opts selects the defaults. New fails for a nil client and for
// invalid options; the error never contains the encryption key.
func New(client redis.UniversalClient, opts *Options) (*Cache, error) {
	if client == nil {
		return nil, errors.New("rediscache: new: nil client")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	c := &Cache{
		client:          client,
		prefix:          o.KeyPrefix,
		lease:           o.LockLease,
		poll:            o.LockPoll,
		refreshTokenTTL: o.RefreshTokenTTL,
		log:             o.Logger,
		now:             time.Now,
	}
	if c.prefix == "" {
		c.prefix = DefaultKeyPrefix
	}
	if strings.ContainsAny(c.prefix, "{}") {
		return nil, errors.New("rediscache: new: KeyPrefix must not contain '{' or '}'")
	}
	switch {
	case c.lease == 0:
		c.lease = DefaultLockLease
	case c.lease < minLockLease:
		return nil, fmt.Errorf("rediscache: new: LockLease %v is shorter than %v", c.lease, minLockLease)
	}
	switch {
	case c.poll == 0:
		c.poll = DefaultLockPoll
	case c.poll < 0:
		return nil, fmt.Errorf("rediscache: new: negative LockPoll %v", c.poll)
	}
	c.maxPoll = max(maxLockPoll, c.poll)
	switch {
	case c.refreshTokenTTL == 0:
		c.refreshTokenTTL = DefaultRefreshTokenTTL
	case c.refreshTokenTTL < 0:
		return nil, fmt.Errorf("rediscache: new: negative RefreshTokenTTL %v", c.refreshTokenTTL)
	}
	if len(o.EncryptionKey) > 0 {
		switch len(o.EncryptionKey) {
		case 16, 24, 32:
		default:
			return nil, fmt.Errorf("rediscache: new: EncryptionKey is %d bytes, want 32 (or 16 or 24)", len(o.EncryptionKey))
		}
		block, err := aes.NewCipher(o.EncryptionKey) // copies the key
		if err != nil {
			return nil, fmt.Errorf("rediscache: new: encryption key: %w", err)
		}
		if c.aead, err = cipher.NewGCM(block); err != nil {
			return nil, fmt.Errorf("rediscache: new: encryption key: %w", err)
		}
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// String describes c without its encryption key. Cache has value receivers
// for its formatting methods so that a Cache value (which holds the
// expanded key) prints this too, not its fields; fmt prints a nil *Cache as
// "<nil>".
func (c Cache) String() string {
	return fmt.Sprintf("rediscache.Cache{KeyPrefix:%q Encrypted:%t LockLease:%v}", c.prefix, c.aead != nil, c.lease)
}

// GoString is like String.
func (c Cache) GoString() string { return c.String() }

// Format makes every fmt verb print String.
func (c Cache) Format(f fmt.State, verb rune) { fmt.Fprint(f, c.String()) }

// LogValue implements slog.LogValuer without the encryption key.
func (c Cache) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("key_prefix", c.prefix),
		slog.Bool("encrypted", c.aead != nil),
		slog.Duration("lock_lease", c.lease),
	)
}

// entryKey is the Redis key of the entry for key. The cache key, which
// tokencache.ValidateKey restricts to [A-Za-z0-9._-], is the Redis Cluster
// hash tag, so the entry and its lock share a slot.
func (c *Cache) entryKey(key string) string { return c.prefix + "{" + key + "}" }

// lockKey is the Redis key of the lock for key.
func (c *Cache) lockKey(key string) string { return c.prefix + "{" + key + "}:lock" }

// Hash fields of a stored entry.
const (
	fieldValue   = "v" // the encoded (and possibly encrypted) entry
	fieldUpdated = "u" // Entry.Updated, Unix microseconds
	fieldExpiry  = "x" // Entry.Expiry, Unix microseconds (0: none)
)

// storeScript writes an entry unless the stored one is newer. Unix
// microseconds stay exact in Lua's doubles until the year 2255.
//
// KEYS[1] entry key; ARGV: value, updated, expiry, TTL in ms (0: none).
// Returns 1 when written, 0 when refused.
var storeScript = redis.NewScript(`
local t = redis.call('TYPE', KEYS[1])['ok']
if t == 'hash' then
  local cur = redis.call('HMGET', KEYS[1], 'u', 'x')
  local u = tonumber(cur[1])
  if u then
    local nu = tonumber(ARGV[2])
    if u > nu then return 0 end
    if u == nu and (tonumber(cur[2]) or 0) > tonumber(ARGV[3]) then return 0 end
  end
end
if t ~= 'none' then redis.call('DEL', KEYS[1]) end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'u', ARGV[2], 'x', ARGV[3])
local ttl = tonumber(ARGV[4])
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
`)

// Load returns the entry stored under key. It returns an error wrapping
// tokencache.ErrNotFound when there is none, tokencache.ErrCorrupt when the
// stored value does not decode or decrypt (treat it as a miss), and
// ErrUnavailable when Redis cannot be reached.
func (c *Cache) Load(ctx context.Context, key string) (*tokencache.Entry, error) {
	if err := tokencache.ValidateKey(key); err != nil {
		return nil, fmt.Errorf("rediscache: load: %w", err)
	}
	b, err := call(ctx, func() ([]byte, error) {
		return c.client.HGet(ctx, c.entryKey(key), fieldValue).Bytes()
	}, nil)
	switch {
	case errors.Is(err, redis.Nil):
		return nil, fmt.Errorf("rediscache: load: %w", tokencache.ErrNotFound)
	case redis.HasErrorPrefix(err, "WRONGTYPE"):
		return nil, fmt.Errorf("rediscache: load: %w: not an entry", tokencache.ErrCorrupt)
	case err != nil:
		return nil, wrapRedisErr("load", err)
	}
	if c.aead != nil {
		if b, err = c.open(b, key); err != nil {
			return nil, fmt.Errorf("rediscache: load: %w", err)
		}
	} else if isSealed(b) {
		return nil, fmt.Errorf("rediscache: load: %w: entry is encrypted and no EncryptionKey is set", tokencache.ErrCorrupt)
	}
	e, err := tokencache.Decode(b)
	if err != nil {
		return nil, fmt.Errorf("rediscache: load: %w", err)
	}
	return e, nil
}

// Store saves e under key unless a newer entry is stored there, in which
// case it returns an error wrapping ErrStale. An entry whose Updated is zero
// is stored with Updated set to the current time. The Redis key expires when
// the access token does, plus RefreshTokenTTL if e holds a refresh token, and
// never if e.Expiry is zero; at least one second from now.
func (c *Cache) Store(ctx context.Context, key string, e *tokencache.Entry) error {
	if err := tokencache.ValidateKey(key); err != nil {
		return fmt.Errorf("rediscache: store: %w", err)
	}
	if e == nil {
		return errors.New("rediscache: store: nil entry")
	}
	now := c.now()
	if e.Updated.IsZero() {
		e = e.Clone()
		e.Updated = now
	}
	b, err := tokencache.Encode(e)
	if err != nil {
		return fmt.Errorf("rediscache: store: %w", err)
	}
	if c.aead != nil {
		if b, err = c.seal(b, key); err != nil {
			return fmt.Errorf("rediscache: store: %w", err)
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
	n, err := call(ctx, func() (int, error) {
		return storeScript.Run(ctx, c.client, []string{c.entryKey(key)},
			b, micros(e.Updated), micros(e.Expiry), ttl.Milliseconds()).Int()
	}, nil)
	if err != nil {
		return wrapRedisErr("store", err)
	}
	if n == 0 {
		return fmt.Errorf("rediscache: store: %w", ErrStale)
	}
	return nil
}

// Delete removes the entry under key, and with it the fencing record:
// after a Delete, any entry may be stored. Deleting a missing key is not an
// error.
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
		return true // dial, read, write, pool, closed-client and context errors
	}
	for _, p := range []string{"LOADING", "READONLY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "BUSY", "max number of clients"} {
		if redis.HasErrorPrefix(err, p) {
			return true
		}
	}
	return false
}
