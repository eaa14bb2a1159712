package rediscache_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/oauthkit/oauthkit/tokencache"
	"github.com/oauthkit/oauthkit/tokencache/rediscache"
	"github.com/redis/go-redis/v9"
)

// New connects lazily: creating a Cache does not talk to Redis. Printing it
// never shows the encryption key.
func ExampleNew() {
	key := make([]byte, 32) // in production: 32 random bytes from a secret store
	if _, err := rand.Read(key); err != nil {
		log.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()
	cache, err := rediscache.New(rdb, &rediscache.Options{
		KeyPrefix:     "billing:",
		EncryptionKey: key,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(cache)
	// Output: rediscache.Cache{KeyPrefix:"billing:" Encrypted:true LockLease:15s}
}

// The pattern a token source follows with a shared cache: look, take a
// fenced lease, look again, hold the lease for the request, fetch only if
// still needed, store through the lease, unlock. It needs a Redis server,
// so this example is compiled but not run.
func ExampleCache_LockLease() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", ContextTimeoutEnabled: true})
	defer rdb.Close()
	cache, err := rediscache.New(rdb, nil)
	if err != nil {
		log.Fatal(err)
	}
	key := tokencache.Key(tokencache.KeyParts{TokenURL: "https://auth.example.org/token", ClientID: "abc"})

	if e, err := cache.Load(ctx, key); err == nil && e.Valid(time.Now()) {
		fmt.Println("another host already has a token")
		return
	}
	lease, err := cache.LockLease(ctx, key, time.Second)
	if errors.Is(err, tokencache.ErrUnavailable) {
		fmt.Println("Redis is down or hung: fall back to a process-local cache")
		return
	} else if err != nil {
		log.Fatal(err)
	}
	defer lease.Unlock()
	if e, err := cache.Load(ctx, key); err == nil && e.Valid(time.Now()) {
		fmt.Println("refreshed by another host while we waited")
		return
	}
	const requestDeadline = 30 * time.Second
	if err := lease.Hold(ctx, requestDeadline); err != nil {
		fmt.Println("lock lost or unconfirmed: do not send the refresh token")
		return
	}
	fresh := &tokencache.Entry{AccessToken: "…from the token endpoint…", Expiry: time.Now().Add(time.Hour)}
	if err := lease.Store(ctx, fresh); errors.Is(err, tokencache.ErrLockLost) {
		fmt.Println("a later lease stored a newer token; use that one")
	}
}
