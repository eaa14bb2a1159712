package tokencache

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestMemoryLoadStoreDelete(t *testing.T) {
	ctx := context.Background()
	m := NewMemory()
	if _, err := m.Load(ctx, "k"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Load of a missing key: %v, want ErrNotFound", err)
	}
	e := sampleEntries()[1]
	if err := m.Store(ctx, "k", e); err != nil {
		t.Fatal(err)
	}
	got, err := m.Load(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if !entriesEqual(got, e) {
		t.Errorf("Load = %v, want %v", got, e)
	}
	if err := m.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if err := m.Delete(ctx, "k"); err != nil {
		t.Fatalf("Delete of a missing key: %v", err)
	}
	if _, err := m.Load(ctx, "k"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Load after Delete: %v, want ErrNotFound", err)
	}
	if err := m.Store(ctx, "k", nil); err == nil {
		t.Error("Store(nil) succeeded")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := m.Store(cctx, "k", e); !errors.Is(err, context.Canceled) {
		t.Errorf("Store with a cancelled context: %v", err)
	}
}

func TestMemoryCopies(t *testing.T) {
	ctx := context.Background()
	m := NewMemory()
	e := &Entry{AccessToken: "at1", Extra: map[string]any{"nested": map[string]any{"a": "1"}, "list": []any{"x"}}}
	if err := m.Store(ctx, "k", e); err != nil {
		t.Fatal(err)
	}
	// Changing the stored-from entry must not change the cache.
	e.AccessToken = "changed"
	e.Extra["nested"].(map[string]any)["a"] = "changed"
	e.Extra["list"].([]any)[0] = "changed"
	got, err := m.Load(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if got.AccessToken != "at1" || got.Extra["nested"].(map[string]any)["a"] != "1" || got.Extra["list"].([]any)[0] != "x" {
		t.Fatal("Store did not copy the entry")
	}
	// Changing a loaded entry must not change the cache either.
	got.Extra["nested"].(map[string]any)["a"] = "changed"
	got.Extra["new"] = true
	again, _ := m.Load(ctx, "k")
	if again.Extra["nested"].(map[string]any)["a"] != "1" || again.Extra["new"] != nil {
		t.Fatal("Load did not copy the entry")
	}
}

func TestMemoryConcurrentUse(t *testing.T) {
	ctx := context.Background()
	m := NewMemory()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 50 {
				e := &Entry{AccessToken: "at", Expiry: time.Unix(int64(i*100+j), 0), Extra: map[string]any{"i": i}}
				if err := m.Store(ctx, "k", e); err != nil {
					t.Error(err)
				}
				if got, err := m.Load(ctx, "k"); err != nil || got.AccessToken != "at" {
					t.Error("Load failed")
				}
			}
		}()
	}
	wg.Wait()
}

// testLockExclusion runs n goroutines that each take the lock for one key
// iter times and check that nobody else is inside.
func testLockExclusion(t *testing.T, l Locker, n, iter int) {
	t.Helper()
	ctx := context.Background()
	var (
		mu     sync.Mutex // guards inside, total
		inside int
		total  int
		wg     sync.WaitGroup
	)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range iter {
				unlock, err := l.Lock(ctx, "v1-key")
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				inside++
				if inside != 1 {
					t.Error("two holders of one lock")
				}
				mu.Unlock()
				time.Sleep(100 * time.Microsecond) // widen the window
				mu.Lock()
				inside--
				total++
				mu.Unlock()
				if err := unlock(); err != nil {
					t.Error(err)
				}
				if err := unlock(); err != nil {
					t.Errorf("second unlock: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	if total != n*iter {
		t.Errorf("%d critical sections, want %d", total, n*iter)
	}
}

// testLockCancel checks that a Lock waiting for a held lock returns when
// its context is cancelled, and that other keys are independent.
func testLockCancel(t *testing.T, holder, waiter Locker) {
	t.Helper()
	ctx := context.Background()
	unlock, err := holder.Lock(ctx, "v1-held")
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()

	other, err := waiter.Lock(ctx, "v1-other")
	if err != nil {
		t.Fatalf("lock on another key: %v", err)
	}
	other()

	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		u, err := waiter.Lock(cctx, "v1-held")
		if err == nil {
			u()
		}
		done <- err
	}()
	time.Sleep(20 * time.Millisecond) // let the waiter start waiting
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Lock after cancel: %v, want context.Canceled", err)
	}

	if _, err := waiter.Lock(cctx, "v1-free"); !errors.Is(err, context.Canceled) {
		t.Errorf("Lock with a done context: %v, want context.Canceled", err)
	}

	// Once released, the lock can be taken again.
	unlock()
	u, err := waiter.Lock(ctx, "v1-held")
	if err != nil {
		t.Fatalf("Lock after unlock: %v", err)
	}
	u()
}

func TestMemoryLock(t *testing.T) {
	m := NewMemory()
	t.Run("exclusion", func(t *testing.T) { testLockExclusion(t, m, 8, 25) })
	t.Run("cancel", func(t *testing.T) { testLockCancel(t, m, m) })
	if n := len(m.locks.m); n != 0 {
		t.Errorf("%d per-key locks left in the map", n)
	}
}
