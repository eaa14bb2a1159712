package rediscache

import (
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/oauthkit/oauthkit/tokencache"
	"github.com/redis/go-redis/v9"
)

// ErrUnavailable is tokencache.ErrUnavailable, so that errors.Is matches
// either name. It is wrapped by the errors of Load, Store, Delete, Lock,
// LockLease and the Lease methods when Redis cannot be reached or cannot
// serve the request right now: connection refused or reset, timeouts
// (including the caller's context deadline and LockLease's answerWithin), a
// server that is loading, read-only after a failover, or a cluster that is
// down. Callers fall back to their local cache tiers.
var ErrUnavailable = tokencache.ErrUnavailable

// ErrLockLost is tokencache.ErrLockLost, so that errors.Is matches either
// name. It is wrapped by the errors of a Lease (and of Lock's unlock
// function) whose lock is no longer held: its lease ran out (the holder
// stalled for longer than LockLease, or Redis was unreachable for that long)
// and another process may have taken it, or a later lease has written the
// entry.
var ErrLockLost = tokencache.ErrLockLost

// ErrStale is wrapped by the error of Cache.Store (without a lease) when
// another write with a later fence landed between the moment Store took its
// fence and the moment it wrote. That can happen only when EncryptionKey is
// set: the fence is then part of the encrypted entry, so Store takes it in
// one round trip and writes in a second. Store never compares clocks; an
// entry with an older Updated is stored like any other. See "Fencing" in
// the package documentation.
var ErrStale = errors.New("rediscache: a newer entry is stored")

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
	// LockLease/3; Lease.Hold(d) makes it last d plus LockLease. At least
	// 10ms. Optional; the default is 15s.
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

// Cache is a tokencache.Cache, tokencache.Locker and tokencache.LeaseLocker
// backed by Redis, shared by every process configured with the same Redis
// and KeyPrefix.
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
	fences          *fenceMemory // the highest fence seen per key
}

var (
	_ tokencache.Cache       = (*Cache)(nil)
	_ tokencache.Locker      = (*Cache)(nil)
	_ tokencache.LeaseLocker = (*Cache)(nil)
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
		fences:          newFenceMemory(maxRememberedFences),
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

// fenceKey is the Redis key of the fence counter for key.
func (c *Cache) fenceKey(key string) string { return c.prefix + "{" + key + "}:fence" }
