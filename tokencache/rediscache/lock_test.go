package rediscache

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauthkit/oauthkit/internal/redistest"
	"github.com/oauthkit/oauthkit/tokencache"
	"github.com/redis/go-redis/v9"
)

// TestLockMutualExclusion has 8 goroutines, each with its own client (as
// separate hosts would), take the same lock 20 times each and do a
// non-atomic read-modify-write in Redis under it.
func TestLockMutualExclusion(t *testing.T) {
	srv := redistest.Start(t)
	ctx := testCtx(t)
	const workers, rounds = 8, 20
	var inside, overlaps atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		rdb := newClient(t, srv)
		c, err := New(rdb, &Options{LockPoll: 2 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				unlock, err := c.Lock(ctx, testKey)
				if err != nil {
					errs <- fmt.Errorf("Lock: %w", err)
					return
				}
				if inside.Add(1) != 1 {
					overlaps.Add(1)
				}
				n, err := rdb.Get(ctx, "counter").Int()
				if err != nil && !errors.Is(err, redis.Nil) {
					errs <- err
				}
				if err := rdb.Set(ctx, "counter", n+1, 0).Err(); err != nil {
					errs <- err
				}
				inside.Add(-1)
				if err := unlock(); err != nil {
					errs <- fmt.Errorf("unlock: %w", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := overlaps.Load(); n != 0 {
		t.Errorf("%d overlapping critical sections", n)
	}
	n, err := newClient(t, srv).Get(ctx, "counter").Int()
	if err != nil || n != workers*rounds {
		t.Errorf("counter = %d (%v), want %d", n, err, workers*rounds)
	}
}

// TestLockRenewal holds a lock for several leases and checks it is still
// held, then that unlock releases it and may be repeated.
func TestLockRenewal(t *testing.T) {
	srv := redistest.Start(t)
	rdb := newClient(t, srv)
	const lease = 750 * time.Millisecond
	c, err := New(rdb, &Options{LockLease: lease})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	unlock, err := c.Lock(ctx, testKey)
	if err != nil {
		t.Fatalf("Lock: %v", err)
	}
	owner, err := rdb.Get(ctx, c.lockKey(testKey)).Result()
	if id, fence, ok := strings.Cut(owner, ":"); err != nil || !ok || len(id) != 32 {
		t.Fatalf("lock value is not owner:fence with a 32-digit owner (%v)", err)
	} else if _, ok := parseFence(fence); !ok {
		t.Fatalf("lock value has no valid fence")
	}
	time.Sleep(3 * lease)
	if got, err := rdb.Get(ctx, c.lockKey(testKey)).Result(); err != nil || got != owner {
		t.Fatalf("after 3 leases the lock is not held by its owner (err %v)", err)
	}
	if ok, err := rdb.SetNX(ctx, c.lockKey(testKey), "intruder", time.Minute).Result(); err != nil || ok {
		t.Fatalf("another owner took the held lock (err %v)", err)
	}
	if err := unlock(); err != nil {
		t.Fatalf("unlock: %v", err)
	}
	if n, err := rdb.Exists(ctx, c.lockKey(testKey)).Result(); err != nil || n != 0 {
		t.Errorf("lock key still exists after unlock (err %v)", err)
	}
	if err := unlock(); err != nil {
		t.Errorf("second unlock: %v", err)
	}
}

// TestLockLost takes over a held lock behind its holder's back: renewal
// logs a warning, unlock reports ErrLockLost and leaves the new owner's
// lock alone.
func TestLockLost(t *testing.T) {
	srv := redistest.Start(t)
	rdb := newClient(t, srv)
	var logs logBuffer
	c, err := New(rdb, &Options{LockLease: 300 * time.Millisecond, Logger: logs.logger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	unlock, err := c.Lock(ctx, testKey)
	if err != nil {
		t.Fatalf("Lock: %v", err)
	}
	if err := rdb.Set(ctx, c.lockKey(testKey), "someone-else", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "renewal notices the lost lock", func() bool {
		return strings.Contains(logs.String(), "lock lost")
	})
	if err := unlock(); !errors.Is(err, ErrLockLost) {
		t.Errorf("unlock: err = %v, want ErrLockLost", err)
	}
	if got, _ := rdb.Get(ctx, c.lockKey(testKey)).Result(); got != "someone-else" {
		t.Errorf("unlock removed another owner's lock")
	}
}

func TestLockHonoursContext(t *testing.T) {
	srv := redistest.Start(t)
	a := newCache(t, srv, nil)
	b := newCache(t, srv, nil)
	unlock, err := a.Lock(testCtx(t), testKey)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = b.Lock(ctx, testKey)
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrUnavailable) {
		t.Errorf("Lock on a busy key: err = %v, want DeadlineExceeded only", err)
	}
}

const helperEnv = "REDISCACHE_TEST_HELPER_ADDR"

// TestHelperProcess is not a test: TestLockCrashedHolder runs the test
// binary with it as a lock holder that is then killed.
func TestHelperProcess(t *testing.T) {
	addr := os.Getenv(helperEnv)
	if addr == "" {
		return // not started as a helper process of TestLockCrashedHolder
	}
	c, err := New(redis.NewClient(&redis.Options{Addr: addr}), &Options{LockLease: 500 * time.Millisecond})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	if _, err := c.Lock(context.Background(), testKey); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("locked")
	time.Sleep(time.Hour) // renewing, until killed
}

// TestLockCrashedHolder kills a holder process with SIGKILL while it holds
// the lock (renewal stops with it) and checks that a waiter gets the lock
// once the lease runs out.
func TestLockCrashedHolder(t *testing.T) {
	srv := redistest.Start(t)
	rdb := newClient(t, srv)
	c, err := New(rdb, nil)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), helperEnv+"="+srv.Addr)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "locked" {
		t.Fatalf("helper process said %q (%v)", line, err)
	}
	ctx := testCtx(t)
	if n, err := rdb.Exists(ctx, c.lockKey(testKey)).Result(); err != nil || n != 1 {
		t.Fatalf("helper's lock not in Redis (err %v)", err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	unlock, err := c.Lock(ctx, testKey)
	if err != nil {
		t.Fatalf("Lock after the holder crashed: %v", err)
	}
	if err := unlock(); err != nil {
		t.Errorf("unlock: %v", err)
	}
}

// TestRedisDown kills Redis and checks that every operation fails with
// ErrUnavailable instead of hanging, then that the cache recovers when
// Redis is back.
func TestRedisDown(t *testing.T) {
	srv := redistest.Start(t)
	c := newCache(t, srv, &Options{LockLease: time.Second})
	ctx := testCtx(t)
	unlockHeld, err := c.Lock(ctx, "held")
	if err != nil {
		t.Fatal(err)
	}
	e := &tokencache.Entry{AccessToken: "a", Updated: time.Now()}
	srv.Kill()
	ops := []struct {
		name string
		op   func(context.Context) error
	}{
		{"Load", func(ctx context.Context) error { _, err := c.Load(ctx, testKey); return err }},
		{"Store", func(ctx context.Context) error { return c.Store(ctx, testKey, e) }},
		{"Delete", func(ctx context.Context) error { return c.Delete(ctx, testKey) }},
		{"Lock", func(ctx context.Context) error { _, err := c.Lock(ctx, testKey); return err }},
		{"unlock", func(context.Context) error { return unlockHeld() }},
	}
	for _, o := range ops {
		t.Run(o.name, func(t *testing.T) {
			if err := o.op(testCtx(t)); !errors.Is(err, ErrUnavailable) {
				t.Errorf("err = %v, want ErrUnavailable", err)
			}
		})
	}
	srv.Restart()
	eventually(t, "Store succeeds after Redis restarts", func() bool {
		return c.Store(ctx, testKey, e) == nil
	})
}

// TestRedisUnresponsive points the cache at a server that accepts
// connections and never answers: calls end with the caller's deadline,
// with ErrUnavailable, although the client's own timeouts are far longer.
func TestRedisUnresponsive(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: silentServer(t), ReadTimeout: time.Minute, WriteTimeout: time.Minute, Protocol: 2})
	t.Cleanup(func() { _ = rdb.Close() })
	c, err := New(rdb, nil)
	if err != nil {
		t.Fatal(err)
	}
	ops := []struct {
		name string
		op   func(context.Context) error
	}{
		{"Load", func(ctx context.Context) error { _, err := c.Load(ctx, testKey); return err }},
		{"Store", func(ctx context.Context) error { return c.Store(ctx, testKey, &tokencache.Entry{AccessToken: "a"}) }},
		{"Lock", func(ctx context.Context) error { _, err := c.Lock(ctx, testKey); return err }},
		{"LockLease", func(ctx context.Context) error { _, err := c.LockLease(ctx, testKey, 0); return err }},
	}
	for _, o := range ops {
		t.Run(o.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			err := o.op(ctx)
			if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("err = %v, want ErrUnavailable and DeadlineExceeded", err)
			}
		})
	}
}
