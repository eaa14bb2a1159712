package rediscache

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/oauthkit/oauthkit/internal/redistest"
	"github.com/oauthkit/oauthkit/tokencache"
)

// numbered returns the entry with serial number n: its tokens are marked
// with n, so that tests can tell entries apart without printing tokens.
func numbered(n int, now time.Time) *tokencache.Entry {
	return &tokencache.Entry{
		AccessToken:  fmt.Sprintf("at-%d", n),
		RefreshToken: fmt.Sprintf("rt-%d", n),
		TokenType:    "Bearer",
		Expiry:       now.Add(time.Hour),
	}
}

// serial returns the serial number of an entry made by numbered, or -1.
func serial(e *tokencache.Entry) int {
	if e == nil {
		return -1
	}
	n, err := strconv.Atoi(strings.TrimPrefix(e.AccessToken, "at-"))
	if err != nil || e.RefreshToken != fmt.Sprintf("rt-%d", n) {
		return -1
	}
	return n
}

// wantStored fails the test unless c loads the entry with serial n.
func wantStored(t *testing.T, c *Cache, n int) {
	t.Helper()
	got, err := c.Load(testCtx(t), testKey)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if s := serial(got); s != n {
		t.Errorf("stored entry is #%d, want #%d", s, n)
	}
}

// TestWritesIgnoreClockSkew has two hosts whose clocks are 2s apart: the
// one whose clock is behind stores after the other one, and its write,
// the newest, wins.
func TestWritesIgnoreClockSkew(t *testing.T) {
	srv := redistest.Start(t)
	ctx := testCtx(t)
	base := time.Now()
	fast := newCache(t, srv, nil)
	fast.now = func() time.Time { return base.Add(2 * time.Second) }
	slow := newCache(t, srv, nil)
	slow.now = func() time.Time { return base }

	t.Run("lease", func(t *testing.T) {
		l, err := fast.LockLease(ctx, testKey, time.Second)
		if err != nil {
			t.Fatalf("LockLease: %v", err)
		}
		if err := l.Store(ctx, numbered(1, base)); err != nil {
			t.Fatalf("fast host's Store: %v", err)
		}
		if err := l.Unlock(); err != nil {
			t.Fatalf("Unlock: %v", err)
		}
		l, err = slow.LockLease(ctx, testKey, time.Second)
		if err != nil {
			t.Fatalf("LockLease: %v", err)
		}
		if err := l.Store(ctx, numbered(2, base)); err != nil {
			t.Fatalf("slow host's Store after the fast host's: %v", err)
		}
		if err := l.Unlock(); err != nil {
			t.Fatalf("Unlock: %v", err)
		}
		wantStored(t, fast, 2)
	})
	t.Run("unlocked", func(t *testing.T) {
		if err := fast.Store(ctx, testKey, numbered(3, base)); err != nil {
			t.Fatalf("fast host's Store: %v", err)
		}
		if err := slow.Store(ctx, testKey, numbered(4, base)); err != nil {
			t.Fatalf("slow host's Store after the fast host's: %v", err)
		}
		wantStored(t, fast, 4)
	})
}

// TestLeaseStoreAfterLeaseLost has a holder lose its lock, another take it
// and store; the first holder's late write is refused although its clock
// says it is newer.
func TestLeaseStoreAfterLeaseLost(t *testing.T) {
	srv := redistest.Start(t)
	rdb := newClient(t, srv)
	ctx := testCtx(t)
	base := time.Now()
	first := newCache(t, srv, nil)
	first.now = func() time.Time { return base.Add(time.Hour) }
	second := newCache(t, srv, nil)
	second.now = func() time.Time { return base }

	l1, err := first.LockLease(ctx, testKey, time.Second)
	if err != nil {
		t.Fatalf("first LockLease: %v", err)
	}
	// The first lease runs out behind its holder's back.
	if err := rdb.Del(ctx, first.lockKey(testKey)).Err(); err != nil {
		t.Fatal(err)
	}
	l2, err := second.LockLease(ctx, testKey, time.Second)
	if err != nil {
		t.Fatalf("second LockLease: %v", err)
	}
	if err := l2.Store(ctx, numbered(2, base)); err != nil {
		t.Fatalf("second lease's Store: %v", err)
	}
	err = l1.Store(ctx, numbered(1, base))
	if !errors.Is(err, tokencache.ErrLockLost) || !errors.Is(err, ErrLockLost) {
		t.Errorf("first lease's late Store: err = %v, want ErrLockLost", err)
	}
	wantStored(t, first, 2)
	if err := l2.Unlock(); err != nil {
		t.Errorf("second Unlock: %v", err)
	}
	if err := l1.Unlock(); !errors.Is(err, ErrLockLost) {
		t.Errorf("first Unlock: err = %v, want ErrLockLost", err)
	}
}

// TestLoadRefusesRollback copies an older entry's stored fields back over
// a newer one, as someone with write access to Redis could: the cache that
// saw the newer one refuses the older.
func TestLoadRefusesRollback(t *testing.T) {
	for _, encrypted := range []bool{true, false} {
		t.Run(fmt.Sprintf("encrypted=%t", encrypted), func(t *testing.T) {
			srv := redistest.Start(t)
			rdb := newClient(t, srv)
			ctx := testCtx(t)
			var opts Options
			if encrypted {
				opts.EncryptionKey = randomKey(t, 32)
			}
			c := newCache(t, srv, &opts)
			now := time.Now()
			if err := c.Store(ctx, testKey, numbered(1, now)); err != nil {
				t.Fatalf("Store v1: %v", err)
			}
			v1, err := rdb.HGetAll(ctx, c.entryKey(testKey)).Result()
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Store(ctx, testKey, numbered(2, now)); err != nil {
				t.Fatalf("Store v2: %v", err)
			}
			if err := rdb.HSet(ctx, c.entryKey(testKey), v1).Err(); err != nil {
				t.Fatal(err)
			}
			got, err := c.Load(ctx, testKey)
			if !errors.Is(err, tokencache.ErrCorrupt) {
				t.Fatalf("Load of the rolled-back entry: got #%d, err = %v; want ErrCorrupt", serial(got), err)
			}
			if !strings.Contains(err.Error(), "rolled back") {
				t.Errorf("Load: err = %v, want it to say rolled back", err)
			}
			// A newer write is accepted again.
			if err := c.Store(ctx, testKey, numbered(3, now)); err != nil {
				t.Fatalf("Store v3: %v", err)
			}
			wantStored(t, c, 3)
		})
	}
}

// TestLoadRefusesEditedFence edits the clear fence field of an encrypted
// entry: the entry no longer decrypts.
func TestLoadRefusesEditedFence(t *testing.T) {
	srv := redistest.Start(t)
	rdb := newClient(t, srv)
	ctx := testCtx(t)
	key := randomKey(t, 32)
	c := newCache(t, srv, &Options{EncryptionKey: key})
	now := time.Now()
	edits := []struct {
		name string
		edit func(ek string, f int64) error
	}{
		{"raised", func(ek string, f int64) error { return rdb.HSet(ctx, ek, "f", f+1).Err() }},
		{"lowered", func(ek string, f int64) error { return rdb.HSet(ctx, ek, "f", f-1).Err() }},
		{"not a number", func(ek string, f int64) error { return rdb.HSet(ctx, ek, "f", "x").Err() }},
		{"removed", func(ek string, f int64) error { return rdb.HDel(ctx, ek, "f").Err() }},
	}
	for i, tt := range edits {
		t.Run(tt.name, func(t *testing.T) {
			// A fresh cache has seen no fence for the key, so only
			// decryption can refuse the entry.
			fresh := newCache(t, srv, &Options{EncryptionKey: key})
			if err := c.Store(ctx, testKey, numbered(i, now)); err != nil {
				t.Fatalf("Store: %v", err)
			}
			f, _ := rdb.HGet(ctx, c.entryKey(testKey), "f").Int64()
			if err := tt.edit(c.entryKey(testKey), f); err != nil {
				t.Fatal(err)
			}
			for name, cc := range map[string]*Cache{"writer": c, "fresh": fresh} {
				if got, err := cc.Load(ctx, testKey); !errors.Is(err, tokencache.ErrCorrupt) {
					t.Errorf("%s: Load: got #%d, err = %v; want ErrCorrupt", name, serial(got), err)
				}
			}
		})
	}
}

// TestStoreFencing: plain Stores are ordered by the fences Redis issues,
// never by Updated; every write gets a higher fence than the one before,
// also after a Delete and after the fence counter is lost.
func TestStoreFencing(t *testing.T) {
	srv := redistest.Start(t)
	rdb := newClient(t, srv)
	c := newCache(t, srv, nil)
	ctx := testCtx(t)
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var last int64
	// storeAndCheck stores entry n with the given Updated and checks that
	// it is the stored entry, with a higher fence than the last.
	storeAndCheck := func(t *testing.T, n int, updated time.Duration) {
		t.Helper()
		e := numbered(n, t0)
		e.Updated = t0.Add(updated)
		if err := c.Store(ctx, testKey, e); err != nil {
			t.Fatalf("Store: %v", err)
		}
		wantStored(t, c, n)
		f, err := rdb.HGet(ctx, c.entryKey(testKey), fieldFence).Int64()
		if err != nil {
			t.Fatalf("fence field: %v", err)
		}
		if f <= last {
			t.Errorf("fence %d after %d, want higher", f, last)
		}
		last = f
	}
	steps := []struct {
		name    string
		updated time.Duration
	}{
		{"first", 0},
		{"older updated", -time.Second},
		{"much older updated", -24 * time.Hour},
		{"newer updated", time.Hour},
		{"same updated", time.Hour},
	}
	for i, s := range steps {
		t.Run(s.name, func(t *testing.T) { storeAndCheck(t, i, s.updated) })
	}
	t.Run("after delete", func(t *testing.T) {
		if err := c.Delete(ctx, testKey); err != nil {
			t.Fatal(err)
		}
		storeAndCheck(t, 10, -time.Hour)
	})
	t.Run("after the counter is lost", func(t *testing.T) {
		if err := rdb.Del(ctx, c.fenceKey(testKey)).Err(); err != nil {
			t.Fatal(err)
		}
		storeAndCheck(t, 11, 0)
		if err := rdb.Set(ctx, c.fenceKey(testKey), "garbage", 0).Err(); err != nil {
			t.Fatal(err)
		}
		l, err := c.LockLease(ctx, testKey, time.Second)
		if err != nil {
			t.Fatalf("LockLease over a garbage counter: %v", err)
		}
		defer l.Unlock()
		if f := l.(*lease).fence; f <= last {
			t.Errorf("lease fence %d after %d, want higher", f, last)
		}
		if err := l.Store(ctx, numbered(12, t0)); err != nil {
			t.Fatalf("lease Store: %v", err)
		}
		wantStored(t, c, 12)
	})
}

// TestStoreStaleWhileEncrypting: an encrypted Store takes its fence before
// writing; a write with a later fence in between makes it write nothing.
func TestStoreStaleWhileEncrypting(t *testing.T) {
	srv := redistest.Start(t)
	c := newCache(t, srv, &Options{EncryptionKey: randomKey(t, 32)})
	ctx := testCtx(t)
	now := time.Now()
	early, err := c.reserveFence(ctx, testKey, 0)
	if err != nil {
		t.Fatalf("reserveFence: %v", err)
	}
	if err := c.Store(ctx, testKey, numbered(2, now)); err != nil {
		t.Fatalf("Store: %v", err)
	}
	written, err := c.write(ctx, testKey, numbered(1, now), early, 0)
	if err != nil || written {
		t.Errorf("write with the earlier fence: written = %t, err = %v; want refused", written, err)
	}
	wantStored(t, c, 2)
}

func TestFenceMemoryBounded(t *testing.T) {
	m := newFenceMemory(3)
	for i := range 10 {
		if _, ok := m.observe(fmt.Sprint("k", i), int64(i+1)); !ok {
			t.Fatalf("first fence of k%d refused", i)
		}
	}
	if n := len(m.seen); n != 3 {
		t.Errorf("remembers %d keys, want 3", n)
	}
	if _, ok := m.observe("k9", 9); ok {
		t.Error("a fence lower than the one remembered was accepted")
	}
	if _, ok := m.observe("k9", 10); !ok {
		t.Error("the same fence was refused")
	}
}

func TestParseFence(t *testing.T) {
	for s, want := range map[string]bool{"1": true, "9007199254740991": true, "1796059020490269": true,
		"0": false, "-1": false, "": false, "x": false, "1.5": false, "1e3": false, "9007199254740992": false, " 1": false} {
		if _, ok := parseFence(s); ok != want {
			t.Errorf("parseFence(%q) ok = %t, want %t", s, ok, want)
		}
	}
}
