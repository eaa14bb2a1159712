// Package rediscache is a token cache and fleet-wide lock kept in Redis, for
// many processes or hosts that share one OAuth client registration.
//
// With a *Cache as a token source's cache, the fleet makes one token request
// per token lifetime instead of one per process, and a rotating refresh token
// is redeemed once across the fleet: the source takes a fenced lease on its
// cache key (LockLease), re-reads the cache (another host may have refreshed
// already), and only if it must, confirms and extends the lease for the
// request (Lease.Hold), asks the token endpoint, stores the result through
// the lease (Lease.Store) and unlocks.
//
//	rdb := redis.NewClient(&redis.Options{Addr: "redis.internal:6379", TLSConfig: &tls.Config{}})
//	cache, err := rediscache.New(rdb, &rediscache.Options{EncryptionKey: key})
//
// Any redis.UniversalClient works: a single node (*redis.Client), Sentinel
// (redis.NewFailoverClient) or Cluster (redis.NewClusterClient), on Redis 5
// or later. The client's own options (timeouts, retries, pool size, TLS,
// credentials) apply to every call.
//
// # Keys and values
//
// For the cache key K (which must satisfy tokencache.ValidateKey; keys from
// tokencache.Key always do), the entry lives in the hash KeyPrefix+"{K}",
// the lock in the string KeyPrefix+"{K}:lock" and the fence counter in
// KeyPrefix+"{K}:fence". The braces make K the Redis Cluster hash tag, so
// the three always share a slot. The hash holds the entry encoded by
// tokencache.Encode (encrypted when Options.EncryptionKey is set) in field
// "v", the fence of the write that stored it in field "f", and
// Entry.Updated and Entry.Expiry in Unix microseconds in fields "u" and "x".
// The lock's value is a random 128-bit owner and the lease's fence,
// "owner:fence".
//
// An entry's Redis key expires with its access token, or, if it holds a
// refresh token, Options.RefreshTokenTTL (30 days by default) later; an
// entry whose Expiry is zero never expires. Lifetimes are at least one
// second. A fence counter expires 90 days after its last use.
//
// # Fencing
//
// Writes are ordered by fencing tokens that Redis issues, never by clocks:
// Entry.Updated is stored but compared by nobody, so hosts whose clocks
// disagree by any amount store and read each other's entries alike.
//
// A fence is a number from the key's fence counter, issued in the same Lua
// script that takes the lock (LockLease) or, for a write without a lease,
// that writes (Cache.Store). Each fence is higher than every fence issued
// for the key before it and higher than the stored entry's: a counter that
// is missing (first use, expired, lost with Redis's data, or overwritten
// with garbage) starts again above the stored entry's fence and above the
// Redis server's clock in microseconds, so that fences issued after Redis
// lost its data are still higher than those issued before (unless the
// server that issues them has a clock that is behind the one that issued
// those; the clock chooses only where a lost counter restarts, never the
// order of two writes).
//
// Lease.Store writes the entry with the lease's fence unless the stored
// entry has a higher one, that is, unless a later lease (or a later
// Cache.Store) has written the key since this lease was taken; then it
// writes nothing and returns an error wrapping ErrLockLost. It needs no
// lock to be held: a holder whose lease ran out while nobody else wrote
// still stores the token it obtained.
//
// Cache.Store, without a lease, takes a new fence and writes with it in
// one script: an unlocked write is the newest at the time it is made. It is
// meant for writes made when the lock could not be taken (Redis was
// unavailable for locking) and for seeding the cache. With EncryptionKey set
// the fence is sealed into the entry, so Cache.Store takes it in one round
// trip and writes in a second; a write with a later fence in between makes
// it write nothing and return an error wrapping ErrStale. Delete removes the
// entry but not the counter.
//
// # Locking
//
// LockLease takes a lease-based lock: in one script, if the lock key is
// free, it issues the lease's fence and sets the lock with PX LockLease.
// Waiters poll with exponential backoff and jitter and give up when their
// context is done. Each round trip of LockLease, Hold and Lease.Store is
// bounded by answerWithin: a Redis that accepts connections but does not
// answer makes them fail with ErrUnavailable after answerWithin, not when
// the caller's context ends.
//
// While held, the lease (Options.LockLease, 15s by default) is renewed every
// third of its length by a compare-owner-then-extend script that never
// shortens the lock. Lease.Hold(ctx, d), called right before a refresh
// request is sent with d its hard deadline, confirms in one round trip that
// the lock is still this lease's and makes it last at least d plus
// LockLease from then, however renewals fare afterwards. When a renewal or
// Hold finds the lock gone or taken over, the lease is lost: renewal logs a
// warning, and Hold, Lease.Store and Unlock fail with ErrLockLost without a
// round trip. Unlock is a compare-owner-then-DEL script, so a holder never
// extends or deletes a lock that has passed to someone else. A holder that
// dies stops renewing; its lock frees itself when the lease (or a Hold)
// runs out.
//
// Lock, the tokencache.Locker method, takes the same lock without
// answerWithin and returns the lease's Unlock; it remains for older callers.
//
// What is guaranteed, as long as Redis keeps its data (no failover to a
// replica that missed writes, no restart without persistence):
//
//   - Nothing depends on host clocks.
//   - Two leases on one key are never held at the same time, except that a
//     holder stalled (or cut off from Redis) for longer than its lease may
//     still act while the next holder holds it.
//   - A holder whose lease was lost never overwrites an entry written by a
//     later lease: Lease.Store is fenced.
//   - A holder that called Hold(d) before sending a request keeps the lock
//     for d even if Redis stalls or cannot be reached meanwhile, so no
//     other host sends a request with the same refresh token within that
//     request's deadline.
//
// What remains possible under Redis failover: a replica promoted before the
// lock key (or the counter) was replicated to it can grant a second lease
// while the first holder still works, so two holders may redeem the same
// refresh token. Fencing on Lease.Store still keeps the newest lease's
// entry whenever the entry and the counter replicated; the rotation reuse
// detection of the authorization server is the last line of defence.
//
// # Failure modes
//
// When Redis is unreachable, restarting, loading its data set, read-only
// during a failover, or part of a cluster that is down, Load, Store, Delete,
// Lock, LockLease and the lease's Hold, Store and Unlock return errors
// wrapping ErrUnavailable (which is tokencache.ErrUnavailable); the calling
// token source then falls back to its process-local tiers. They do not hang:
// every call returns when its context is done, even with a client that
// ignores context deadlines (redis.Options.ContextTimeoutEnabled unset, the
// default; the abandoned command then ends with the client's own timeouts,
// and a lock taken by it after its caller gave up is released), and the
// lock's round trips return after answerWithin. Calls made without a
// deadline are bounded by the client's dial and read timeouts and retries
// (by default, with connection refused, well under a second in all). A
// waiter in LockLease returns at once on such an error instead of polling
// on; a waiter whose context ends while Redis answers but the lock stays
// busy gets the context's error alone.
//
// Values that cannot be used are misses, never panics: a value that is not
// an encoded entry, an unknown format version, an entry without a valid
// fence field, a value stored in the clear when an EncryptionKey is set (or
// the reverse), a value that does not decrypt with the configured key, and
// an entry rolled back to an older fence (see "Security considerations") all
// make Load return an error wrapping tokencache.ErrCorrupt. The next
// successful Store replaces them.
//
// Entries written by earlier versions of this package, which had no fence
// field and sealed encrypted entries for their key alone, load as misses
// (ErrCorrupt) and are replaced by the next write; the tokens they held are
// requested again (a refresh token in them is not used). Do not run earlier
// and current versions against one Redis at the same time: earlier versions
// order writes by clocks and ignore fences.
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
//     its cache key and its fence, so a ciphertext moved to another key, or
//     given another fence in the clear "f" field, does not decrypt.
//   - Rollback: each Cache remembers, per cache key, the highest fence it
//     has read or written (for up to 10,000 keys; beyond that it forgets
//     some), and Load refuses an entry with a lower fence (ErrCorrupt,
//     "rolled back"). Someone with write access who copies an older entry's
//     fields back (an older, already redeemed refresh token, which would
//     trip reuse detection) is refused by every process that saw the newer
//     entry; a process that never did (a new one) cannot tell. Without
//     EncryptionKey the fence field can be edited freely, so this protection
//     needs encryption.
//   - The lock, the counter and the fence field are not encrypted; they hold
//     no secrets.
//   - Connect with TLS (redis.Options.TLSConfig) unless Redis is on the same
//     host, and authenticate with a Redis ACL user restricted to the key
//     prefix and to the commands used here: HMGET, DEL, EVAL, EVALSHA (the
//     scripts call TYPE, EXISTS, GET, SET, HGET, HSET, DEL, PTTL, PEXPIRE
//     and TIME).
//   - Encryption does not stop someone with write access from deleting
//     entries or holding locks; ACLs do.
//
// The String, GoString, Format and LogValue methods of Cache and Options
// (values and pointers alike), the errors of this package and its log
// records never contain tokens or the encryption key; log records name
// cache keys, which are hashes.
package rediscache
