// Package rediscache is a token cache and fleet-wide lock kept in Redis, for
// many processes or hosts that share one OAuth client registration.
//
// With a *Cache as a token source's cache, the fleet makes one token request
// per token lifetime instead of one per process, and a rotating refresh token
// is redeemed exactly once across the fleet: the source takes the lock for
// its cache key, re-reads the cache (another host may have refreshed
// already), asks the token endpoint only if it must, stores the result and
// unlocks.
//
//	rdb := redis.NewClient(&redis.Options{Addr: "redis.internal:6379", TLSConfig: &tls.Config{}})
//	cache, err := rediscache.New(rdb, &rediscache.Options{EncryptionKey: key})
//
// Any redis.UniversalClient works: a single node (*redis.Client), Sentinel
// (redis.NewFailoverClient) or Cluster (redis.NewClusterClient). The client's
// own options (timeouts, retries, pool size, TLS, credentials) apply to
// every call.
//
// # Keys and values
//
// For the cache key K (which must satisfy tokencache.ValidateKey; keys from
// tokencache.Key always do), the entry lives in the hash
// KeyPrefix+"{K}" and the lock in the string KeyPrefix+"{K}:lock". The braces
// make K the Redis Cluster hash tag, so an entry and its lock always share a
// slot. The hash holds the entry encoded by tokencache.Encode (encrypted when
// Options.EncryptionKey is set) in field "v", and Entry.Updated and
// Entry.Expiry in Unix microseconds in fields "u" and "x".
//
// An entry's Redis key expires with its access token, or, if it holds a
// refresh token, Options.RefreshTokenTTL (30 days by default) later; an
// entry whose Expiry is zero never expires. Lifetimes are at least one
// second.
//
// # Fencing
//
// Store never replaces a newer entry with an older one. A Lua script compares,
// atomically with the write, the stored Updated (then, if equal, Expiry) with
// the offered entry's and refuses an older entry with an error wrapping
// ErrStale; an equal one is written. This protects against a holder that
// stalled past its lease (a long GC pause, a suspended VM) and writes after
// another holder already stored a newer token. The comparison uses the
// writers' clocks, so hosts must keep them reasonably synchronised (NTP). An
// entry whose Updated is zero is stamped with the current time. Delete
// removes the fence along with the entry.
//
// # Locking
//
// Lock is a lease-based lock: SET NX PX with a random 128-bit owner.
// Waiters poll with exponential backoff and jitter and give up when their
// context is done. While held, the lease (Options.LockLease, 15s by default)
// is renewed every third of its length by a compare-owner-then-PEXPIRE
// script, and unlock is a compare-owner-then-DEL script, so a holder never
// extends or deletes a lock that has passed to someone else. A holder that
// dies stops renewing; its lock frees itself when the lease runs out.
//
// A lease lock is not a perfect mutex: a holder paused for longer than the
// lease, or cut off from Redis for that long, loses the lock while it still
// believes it holds it (renewal then logs a warning and unlock returns
// ErrLockLost). Fencing in Store keeps such a holder from overwriting the
// newer token. Against a refresh token redeemed twice, the authorization
// server's refresh-token rotation (reuse detection) is the last line.
//
// # Failure modes
//
// When Redis is unreachable, restarting, loading its data set, read-only
// during a failover, or part of a cluster that is down, Load, Store, Delete
// and Lock return errors wrapping ErrUnavailable; the calling token source
// then falls back to its process-local tiers. They do not hang: every call
// returns when its context is done, even with a client that ignores context
// deadlines (redis.Options.ContextTimeoutEnabled unset, the default; the
// abandoned command then ends with the client's own timeouts, and a lock
// taken by it after its caller gave up is released). Calls made without a
// deadline are bounded by the client's dial and read timeouts and retries
// (by default, with connection refused, well under a second in all). A
// waiter in Lock returns at once on such an error instead of polling on; a
// waiter whose context ends while Redis answers but the lock stays busy gets
// the context's error alone.
//
// Values that cannot be used are misses, never panics: a value that is not an
// encoded entry, an unknown format version, a value stored in the clear when
// an EncryptionKey is set (or the reverse), and a value that does not decrypt
// with the configured key all make Load return an error wrapping
// tokencache.ErrCorrupt. The next successful Store replaces them.
//
// When Redis loses data (a restart without persistence, a failover before
// replication, eviction under maxmemory), processes re-request tokens: the
// cost is extra token requests, not wrong tokens. A refresh token lost this
// way is lost for the fleet; a person may have to log in again. Configure
// persistence and a noeviction policy if that matters, and give the cache a
// Redis (or database) of its own.
//
// # Security considerations
//
// A shared Redis is a wider trust zone than a file readable only by one
// user: everyone who can read it can read the fleet's tokens, and everyone
// who can write it can plant tokens or hold the lock. Therefore:
//
//   - Set Options.EncryptionKey (32 random bytes, from a secret store, the
//     same on every host) so that entries at rest, in backups and in
//     replication streams are AES-256-GCM encrypted. Each entry is bound to
//     its cache key, so a ciphertext moved to another key does not decrypt.
//     The lock and the fencing fields are not encrypted; they hold no
//     secrets.
//   - Connect with TLS (redis.Options.TLSConfig) unless Redis is on the same
//     host, and authenticate with a Redis ACL user restricted to the key
//     prefix and to the commands used here: HGET, DEL, SET, EVAL, EVALSHA
//     (the scripts call TYPE, HMGET, HSET, PEXPIRE, GET, DEL).
//   - Encryption does not stop someone with write access from deleting
//     entries or holding locks; ACLs do.
//
// The String, GoString, Format and LogValue methods of Cache and Options
// (values and pointers alike), the errors of this package and its log
// records never contain tokens or the encryption key; log records name
// cache keys, which are hashes.
package rediscache
