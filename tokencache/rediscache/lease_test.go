package rediscache

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauthkit/oauthkit/internal/redistest"
	"github.com/oauthkit/oauthkit/tokencache"
	"github.com/redis/go-redis/v9"
)

// silentServer returns the address of a listener that accepts TCP
// connections and never answers, as a hung Redis would.
func silentServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	var mu sync.Mutex // guards conns
	var conns []net.Conn
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return l.Addr().String()
}

// TestLeaseSequence runs what a token source does with a lease: take it,
// re-check the cache, hold it for a request, store the result, unlock.
// The entry stored before the lease was taken loads in the re-check.
func TestLeaseSequence(t *testing.T) {
	srv := redistest.Start(t)
	c := newCache(t, srv, nil)
	other := newCache(t, srv, nil)
	ctx := testCtx(t)
	// Another host stored an entry through its lease.
	l0, err := other.LockLease(ctx, testKey, time.Second)
	if err != nil {
		t.Fatalf("LockLease: %v", err)
	}
	if err := l0.Store(ctx, numbered(0, time.Now())); err != nil {
		t.Fatalf("Store: %v", err)
	}
	if err := l0.Unlock(); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	l, err := c.LockLease(ctx, testKey, time.Second)
	if err != nil {
		t.Fatalf("LockLease: %v", err)
	}
	// The re-check under the lock finds the other host's entry, although
	// its fence is older than this lease's.
	wantStored(t, c, 0)
	if err := l.Hold(ctx, 30*time.Second); err != nil {
		t.Fatalf("Hold: %v", err)
	}
	if err := l.Store(ctx, numbered(1, time.Now())); err != nil {
		t.Fatalf("Store: %v", err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	if err := l.Unlock(); err != nil {
		t.Errorf("second Unlock: %v", err)
	}
	wantStored(t, other, 1)
	// The lock is free again.
	l2, err := other.LockLease(ctx, testKey, time.Second)
	if err != nil {
		t.Fatalf("LockLease after Unlock: %v", err)
	}
	if err := l2.Unlock(); err != nil {
		t.Errorf("Unlock: %v", err)
	}
}

// TestHoldOutlastsRedisStall holds a 300ms lease for a 1.5s request, then
// stalls Redis for twice the lease while another host waits for the lock:
// the first host's lock survives the stall, and the other host gets the
// lock only after the first releases it.
func TestHoldOutlastsRedisStall(t *testing.T) {
	srv := redistest.Start(t, "--enable-debug-command", "yes")
	rdb := newClient(t, srv)
	ctx := testCtx(t)
	const leaseLen = 300 * time.Millisecond
	first := newCache(t, srv, &Options{LockLease: leaseLen})
	second := newCache(t, srv, &Options{LockLease: leaseLen, LockPoll: 5 * time.Millisecond})
	l, err := first.LockLease(ctx, testKey, time.Second)
	if err != nil {
		t.Fatalf("LockLease: %v", err)
	}
	held := l.(*lease).value
	if err := l.Hold(ctx, 1500*time.Millisecond); err != nil {
		t.Fatalf("Hold: %v", err)
	}

	// The second host waits for the lock from now on.
	var released atomic.Bool // set right before the first host unlocks
	type result struct {
		err           error
		beforeRelease bool
	}
	acquired := make(chan result, 1)
	go func() {
		l2, err := second.LockLease(ctx, testKey, 0)
		r := result{err: err, beforeRelease: !released.Load()}
		if err == nil {
			_ = l2.Unlock()
		}
		acquired <- r
	}()

	// Stall Redis for twice the lease, from a client of its own.
	if err := rdb.Do(ctx, "DEBUG", "SLEEP", "0.6").Err(); err != nil {
		t.Fatalf("DEBUG SLEEP: %v", err)
	}
	if got, err := rdb.Get(ctx, first.lockKey(testKey)).Result(); err != nil || got != held {
		t.Errorf("after the stall the first lease does not hold the lock (err %v)", err)
	}
	if err := l.Store(ctx, numbered(1, time.Now())); err != nil {
		t.Errorf("Store through the held lease: %v", err)
	}
	released.Store(true)
	if err := l.Unlock(); err != nil {
		t.Errorf("Unlock: %v (the lock was lost)", err)
	}
	r := <-acquired
	if r.err != nil {
		t.Fatalf("second LockLease: %v", r.err)
	}
	if r.beforeRelease {
		t.Error("the second host took the lock before the first released it")
	}
}

// TestHoldLockLost takes over a held lock behind its holder's back: Hold
// finds out and fails with ErrLockLost.
func TestHoldLockLost(t *testing.T) {
	srv := redistest.Start(t)
	rdb := newClient(t, srv)
	c := newCache(t, srv, nil)
	ctx := testCtx(t)
	l, err := c.LockLease(ctx, testKey, time.Second)
	if err != nil {
		t.Fatalf("LockLease: %v", err)
	}
	if err := rdb.Set(ctx, c.lockKey(testKey), "someone-else", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if err := l.Hold(ctx, time.Second); !errors.Is(err, tokencache.ErrLockLost) {
		t.Errorf("Hold: err = %v, want ErrLockLost", err)
	}
	if got, _ := rdb.Get(ctx, c.lockKey(testKey)).Result(); got != "someone-else" {
		t.Errorf("Hold changed another owner's lock")
	}
	if err := l.Unlock(); !errors.Is(err, ErrLockLost) {
		t.Errorf("Unlock: err = %v, want ErrLockLost", err)
	}
}

// leaseLostByRenewal takes a lease whose lock key Redis then drops (as a
// failover can) and waits until renewal has noticed.
func leaseLostByRenewal(t *testing.T) (*redistest.Server, tokencache.Lease) {
	srv := redistest.Start(t)
	rdb := newClient(t, srv)
	var logs logBuffer
	c := newCache(t, srv, &Options{LockLease: 300 * time.Millisecond, Logger: logs.logger()})
	ctx := testCtx(t)
	l, err := c.LockLease(ctx, testKey, time.Second)
	if err != nil {
		t.Fatalf("LockLease: %v", err)
	}
	if err := rdb.Del(ctx, c.lockKey(testKey)).Err(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "renewal notices the lost lock", func() bool {
		return strings.Contains(logs.String(), "lock lost")
	})
	return srv, l
}

// TestLeaseLostByRenewal lets renewal find the lock lost to a later
// lease: Store asks Redis, which refuses it (a higher fence was issued);
// with Redis stopped, Hold fails with ErrLockLost without asking it.
func TestLeaseLostByRenewal(t *testing.T) {
	srv, l := leaseLostByRenewal(t)
	ctx := testCtx(t)
	later, err := newCache(t, srv, nil).LockLease(ctx, testKey, time.Second)
	if err != nil {
		t.Fatalf("second LockLease: %v", err)
	}
	defer later.Unlock()
	if err := l.Store(ctx, numbered(1, time.Now())); !errors.Is(err, tokencache.ErrLockLost) || errors.Is(err, ErrUnavailable) {
		t.Errorf("Store after a later lease: err = %v, want ErrLockLost only", err)
	}
	srv.Kill()
	if err := l.Hold(ctx, time.Second); !errors.Is(err, tokencache.ErrLockLost) || errors.Is(err, ErrUnavailable) {
		t.Errorf("Hold: err = %v, want ErrLockLost only", err)
	}
}

// TestLeaseLostWithoutSuccessorStillStores: Redis dropped the lock key
// (a failover) while the holder was refreshing and nobody took the lock
// since. Renewal notices the loss, but Store still writes the rotated
// refresh token: no later fence exists, and losing it would leave the
// fleet with one already redeemed.
func TestLeaseLostWithoutSuccessorStillStores(t *testing.T) {
	srv, l := leaseLostByRenewal(t)
	ctx := testCtx(t)
	e := numbered(7, time.Now())
	if err := l.Store(ctx, e); err != nil {
		t.Fatalf("Store with no later fence: %v", err)
	}
	got, err := newCache(t, srv, nil).Load(ctx, testKey)
	if err != nil || got.RefreshToken != e.RefreshToken {
		t.Fatalf("Load: %v; stored refresh token kept: %v", err, err == nil && got.RefreshToken == e.RefreshToken)
	}
	if err := l.Unlock(); !errors.Is(err, ErrLockLost) {
		t.Errorf("Unlock: err = %v, want ErrLockLost", err)
	}
	if err := l.Store(ctx, e); !errors.Is(err, ErrLockLost) {
		t.Errorf("Store after Unlock: err = %v, want ErrLockLost", err)
	}
}

// TestStaleLeaseCannotWriteAfterDelete: a lease whose lock was taken over
// cannot write its token back after the later holder's entry was deleted
// (a revocation): the fence counter outlives the entry.
func TestStaleLeaseCannotWriteAfterDelete(t *testing.T) {
	srv := redistest.Start(t)
	rdb := newClient(t, srv)
	c := newCache(t, srv, &Options{LockLease: 300 * time.Millisecond})
	ctx := testCtx(t)
	stale, err := c.LockLease(ctx, testKey, time.Second)
	if err != nil {
		t.Fatalf("LockLease: %v", err)
	}
	if err := rdb.Del(ctx, c.lockKey(testKey)).Err(); err != nil {
		t.Fatal(err)
	}
	other := newCache(t, srv, nil)
	later, err := other.LockLease(ctx, testKey, time.Second)
	if err != nil {
		t.Fatalf("second LockLease: %v", err)
	}
	if err := later.Store(ctx, numbered(2, time.Now())); err != nil {
		t.Fatal(err)
	}
	later.Unlock()
	if err := other.Delete(ctx, testKey); err != nil {
		t.Fatal(err)
	}
	if err := stale.Store(ctx, numbered(1, time.Now())); !errors.Is(err, tokencache.ErrLockLost) {
		t.Fatalf("stale Store after Delete: err = %v, want ErrLockLost", err)
	}
	if _, err := newCache(t, srv, nil).Load(ctx, testKey); !errors.Is(err, tokencache.ErrNotFound) {
		t.Fatalf("Load after Delete: %v, want ErrNotFound (the stale token written back)", err)
	}
}

// TestHoldRedisDown: with Redis gone, Hold cannot confirm the lock.
func TestHoldRedisDown(t *testing.T) {
	srv := redistest.Start(t)
	c := newCache(t, srv, nil)
	ctx := testCtx(t)
	l, err := c.LockLease(ctx, testKey, time.Second)
	if err != nil {
		t.Fatalf("LockLease: %v", err)
	}
	srv.Kill()
	if err := l.Hold(ctx, time.Second); !errors.Is(err, tokencache.ErrUnavailable) {
		t.Errorf("Hold: err = %v, want ErrUnavailable", err)
	}
	if err := l.Store(ctx, numbered(1, time.Now())); !errors.Is(err, tokencache.ErrUnavailable) {
		t.Errorf("Store: err = %v, want ErrUnavailable", err)
	}
	if err := l.Unlock(); !errors.Is(err, tokencache.ErrUnavailable) {
		t.Errorf("Unlock: err = %v, want ErrUnavailable", err)
	}
}

// TestLockLeaseUnresponsiveRedis points the cache at a server that accepts
// connections and never answers: LockLease gives up after answerWithin,
// long before the caller's deadline, with ErrUnavailable.
func TestLockLeaseUnresponsiveRedis(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: silentServer(t), ReadTimeout: time.Minute, WriteTimeout: time.Minute, Protocol: 2})
	t.Cleanup(func() { _ = rdb.Close() })
	c, err := New(rdb, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := c.LockLease(ctx, testKey, 200*time.Millisecond)
	if ctx.Err() != nil {
		t.Errorf("LockLease returned only when its context ended")
	}
	if err == nil {
		_ = l.Unlock()
		t.Fatal("LockLease succeeded against a server that never answers")
	}
	if !errors.Is(err, tokencache.ErrUnavailable) || !errors.Is(err, ErrUnavailable) {
		t.Errorf("LockLease: err = %v, want ErrUnavailable", err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("LockLease: err = %v looks like the caller's deadline", err)
	}
}

// TestLockLeaseBusy: a lock that stays busy makes LockLease wait until its
// context is done, with the context's error alone, although each attempt is
// bounded by answerWithin.
func TestLockLeaseBusy(t *testing.T) {
	srv := redistest.Start(t)
	a := newCache(t, srv, nil)
	b := newCache(t, srv, nil)
	l, err := a.LockLease(testCtx(t), testKey, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
	defer cancel()
	_, err = b.LockLease(ctx, testKey, 100*time.Millisecond)
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrUnavailable) {
		t.Errorf("LockLease on a busy key: err = %v, want DeadlineExceeded only", err)
	}
}
