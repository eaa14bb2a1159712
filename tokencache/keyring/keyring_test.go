package keyring

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gokeyring "github.com/zalando/go-keyring"

	"github.com/oauthkit/oauthkit/tokencache"
)

func newTestCache(t *testing.T, limit, maxValue int) (*Cache, *fakeKeychain) {
	t.Helper()
	c, err := NewWithOptions("oauthkit-test", Options{MaxValueSize: maxValue, LockDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	f := newFake(limit)
	c.kc = f
	return c, f
}

// randomText returns n bytes of incompressible text made at test time.
func randomText(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)[:n]
}

func bigEntry(n int) *tokencache.Entry {
	return &tokencache.Entry{
		AccessToken:  "at-" + randomText(40),
		TokenType:    "Bearer",
		RefreshToken: "rt-" + randomText(40),
		Expiry:       time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
		Extra:        map[string]any{"id_token": randomText(n)},
	}
}

func sameEntry(a, b *tokencache.Entry) bool {
	x, err1 := tokencache.Encode(a)
	y, err2 := tokencache.Encode(b)
	return err1 == nil && err2 == nil && string(x) == string(y)
}

func TestStoreLoadSizes(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name      string
		extra     int
		minChunks int
		maxChunks int
	}{
		{"small, one item", 0, 0, 0},
		{"just over the limit", 2000, 1, 2},
		{"many chunks", 20000, 10, 20},
		{"large", 200000, 100, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, f := newTestCache(t, 2000, 0)
			key := tokencache.Key(tokencache.KeyParts{TokenURL: "https://example.org/token", ClientID: tt.name})
			e := bigEntry(tt.extra)
			if tt.extra == 0 {
				e.Extra = nil
			}
			if err := c.Store(ctx, key, e); err != nil {
				t.Fatal(err)
			}
			if n := len(f.users("oauthkit-test")) - 1; n < tt.minChunks || n > tt.maxChunks {
				t.Errorf("%d chunk items, want %d to %d", n, tt.minChunks, tt.maxChunks)
			}
			got, err := c.Load(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			if !sameEntry(got, e) {
				t.Errorf("Load = %v, want %v", got, e)
			}
			if err := c.Delete(ctx, key); err != nil {
				t.Fatal(err)
			}
			if items := f.users("oauthkit-test"); len(items) != 0 {
				t.Errorf("items left after Delete: %q", items)
			}
			if _, err := c.Load(ctx, key); !errors.Is(err, tokencache.ErrNotFound) {
				t.Errorf("Load after Delete: %v, want ErrNotFound", err)
			}
		})
	}
}

func TestOverwriteRemovesUnusedChunks(t *testing.T) {
	ctx := context.Background()
	c, f := newTestCache(t, 2000, 0)
	const key = "v1-k"
	sizes := []int{30000, 60000, 5000, 0, 40000, 3000, 0}
	for i, n := range sizes {
		e := bigEntry(n)
		if n == 0 {
			e.Extra = nil
		}
		if err := c.Store(ctx, key, e); err != nil {
			t.Fatalf("store %d: %v", i, err)
		}
		got, err := c.Load(ctx, key)
		if err != nil || !sameEntry(got, e) {
			t.Fatalf("store %d: Load = %v, %v", i, got, err)
		}
		want := 1
		if head, _ := f.Get("oauthkit-test", key); strings.HasPrefix(head, manifestPrefix) {
			m, err := parseManifest(head, c.maxValue)
			if err != nil {
				t.Fatal(err)
			}
			want += m.Chunks
		}
		if items := f.users("oauthkit-test"); len(items) != want {
			t.Errorf("store %d: %d items, want %d", i, len(items), want)
		}
	}
}

func TestFailedStoreKeepsPreviousEntry(t *testing.T) {
	ctx := context.Background()
	for _, prevSize := range []int{0, 10000} {
		for _, failAt := range []string{"#a2", "#b2", "#a1", "#b1", "head"} {
			t.Run(fmt.Sprintf("previous %d, failing %s", prevSize, failAt), func(t *testing.T) {
				c, f := newTestCache(t, 2000, 0)
				const key = "v1-k"
				prev := bigEntry(prevSize)
				if err := c.Store(ctx, key, prev); err != nil {
					t.Fatal(err)
				}
				before := len(f.users("oauthkit-test"))
				// Store writes the new chunks into the slot the previous
				// entry does not use; an item of the other slot is never
				// written, so failing it must not fail the Store.
				oldSlot, _, err := c.chunkSlot(key)
				if err != nil {
					t.Fatal(err)
				}
				wantFail := failAt == "head" || strings.HasPrefix(failAt, "#"+otherSlot(oldSlot))
				f.failSet = func(user string) error {
					if user == key+failAt || (failAt == "head" && user == key) {
						return errors.New("org.freedesktop.DBus.Error.NoReply")
					}
					return nil
				}
				next := bigEntry(20000)
				err = c.Store(ctx, key, next)
				f.failSet = nil
				if !wantFail {
					if err != nil {
						t.Fatalf("Store failed on an item it should not write: %v", err)
					}
					got, err := c.Load(ctx, key)
					if err != nil || !sameEntry(got, next) {
						t.Fatalf("new entry not stored: %v, %v", got, err)
					}
					head, _ := f.Get("oauthkit-test", key)
					m, err := parseManifest(head, c.maxValue)
					if err != nil {
						t.Fatal(err)
					}
					if items := len(f.users("oauthkit-test")); items != 1+m.Chunks {
						t.Errorf("%d items after Store, want %d", items, 1+m.Chunks)
					}
					return
				}
				if err == nil {
					t.Fatal("Store succeeded although writing one of its items failed")
				}
				if strings.Contains(err.Error(), next.AccessToken) {
					t.Error("error text contains the token")
				}
				got, err := c.Load(ctx, key)
				if err != nil || !sameEntry(got, prev) {
					t.Fatalf("previous entry not intact: %v, %v", got, err)
				}
				if after := len(f.users("oauthkit-test")); after != before {
					t.Errorf("%d items after the failed Store, %d before", after, before)
				}
			})
		}
	}
}

func TestLoadCorrupt(t *testing.T) {
	ctx := context.Background()
	const key = "v1-k"
	goodHead := func(t *testing.T, c *Cache, f *fakeKeychain) manifest {
		if err := c.Store(ctx, key, bigEntry(10000)); err != nil {
			t.Fatal(err)
		}
		head, _ := f.Get("oauthkit-test", key)
		m, err := parseManifest(head, c.maxValue)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	tests := []struct {
		name  string
		setup func(t *testing.T, c *Cache, f *fakeKeychain)
	}{
		{"foreign value", func(t *testing.T, c *Cache, f *fakeKeychain) {
			f.Set("oauthkit-test", key, "secret-value-of-another-program")
		}},
		{"bad manifest", func(t *testing.T, c *Cache, f *fakeKeychain) {
			f.Set("oauthkit-test", key, manifestPrefix+"{secret-value")
		}},
		{"huge chunk count", func(t *testing.T, c *Cache, f *fakeKeychain) {
			m := goodHead(t, c, f)
			m.Chunks = 1 << 30
			f.Set("oauthkit-test", key, m.head())
		}},
		{"missing chunk", func(t *testing.T, c *Cache, f *fakeKeychain) {
			m := goodHead(t, c, f)
			f.Delete("oauthkit-test", chunkName(key, m.Slot, 2))
		}},
		{"changed chunk", func(t *testing.T, c *Cache, f *fakeKeychain) {
			m := goodHead(t, c, f)
			f.Set("oauthkit-test", chunkName(key, m.Slot, 1), "secret-value")
		}},
		{"not gzip", func(t *testing.T, c *Cache, f *fakeKeychain) {
			chunks := []string{base64.StdEncoding.EncodeToString([]byte("secret-value"))}
			sum := sha256.Sum256([]byte(chunks[0]))
			m := manifest{V: 1, Slot: "a", Chunks: 1, Len: len(chunks[0]), SHA256: hex.EncodeToString(sum[:]), Encoding: encodingGzipBase64}
			f.Set("oauthkit-test", chunkName(key, "a", 1), chunks[0])
			f.Set("oauthkit-test", key, m.head())
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, f := newTestCache(t, 2000, 0)
			tt.setup(t, c, f)
			_, err := c.Load(ctx, key)
			if !errors.Is(err, tokencache.ErrCorrupt) {
				t.Fatalf("Load: %v, want ErrCorrupt", err)
			}
			if strings.Contains(err.Error(), "secret-value") {
				t.Error("error text contains the stored value")
			}
			// A corrupt entry can be overwritten and deleted.
			if err := c.Store(ctx, key, bigEntry(0)); err != nil {
				t.Fatal(err)
			}
			if err := c.Delete(ctx, key); err != nil {
				t.Fatal(err)
			}
			if items := f.users("oauthkit-test"); len(items) != 0 {
				t.Errorf("items left after Delete: %q", items)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name        string
		err         error
		unavailable bool
	}{
		{"no service", errors.New("The name org.freedesktop.secrets was not provided by any .service files"), true},
		{"no bus", errors.New("dbus: couldn't determine address of session bus"), true},
		{"unsupported platform", gokeyring.ErrUnsupportedPlatform, true},
		{"too big", gokeyring.ErrSetDataTooBig, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, f := newTestCache(t, 1<<20, 0)
			f.failSet = func(string) error { return tt.err }
			err := c.Store(ctx, "v1-k", &tokencache.Entry{AccessToken: "secret-token"})
			if err == nil {
				t.Fatal("Store succeeded")
			}
			var ue *UnavailableError
			if got := errors.As(err, &ue); got != tt.unavailable || errors.Is(err, ErrUnavailable) != tt.unavailable ||
				errors.Is(err, tokencache.ErrUnavailable) != tt.unavailable { // what token sources fall back on
				t.Errorf("unavailable = %v, want %v (%v)", got, tt.unavailable, err)
			}
			if !errors.Is(err, tt.err) || !strings.HasPrefix(err.Error(), "tokencache/keyring: store: ") {
				t.Errorf("error %q does not wrap the keychain error", err)
			}
			if strings.Contains(err.Error(), "secret-token") {
				t.Error("error text contains the token")
			}
			if tt.unavailable && runtime.GOOS == "linux" && !strings.Contains(err.Error(), "gnome-keyring") {
				t.Errorf("error %q does not say what to install", err)
			}
		})
	}

	c, _ := newTestCache(t, 2000, 0)
	if _, err := c.Load(ctx, "v1-missing"); !errors.Is(err, tokencache.ErrNotFound) {
		t.Errorf("Load of a missing key: %v, want ErrNotFound", err)
	}
	if err := c.Delete(ctx, "v1-missing"); err != nil {
		t.Errorf("Delete of a missing key: %v", err)
	}
	for _, key := range []string{"", "a#1", "a/b", ".x"} {
		if err := c.Store(ctx, key, bigEntry(0)); err == nil {
			t.Errorf("Store(%q) succeeded", key)
		}
	}
	if err := c.Store(ctx, "v1-k", nil); err == nil {
		t.Error("Store(nil) succeeded")
	}
}

func TestOptions(t *testing.T) {
	if _, err := NewWithOptions("", Options{}); err == nil {
		t.Error("empty service accepted")
	}
	if _, err := NewWithOptions("s", Options{MaxValueSize: 100}); err == nil {
		t.Error("tiny MaxValueSize accepted")
	}
	c := New("")
	if _, err := c.Load(context.Background(), "v1-k"); err == nil {
		t.Error(`New("").Load succeeded`)
	}
	if c := New("s"); c.maxValue != DefaultMaxValueSize || c.err != nil {
		t.Errorf("New: maxValue %d, err %v", c.maxValue, c.err)
	}
}

func TestContextWhileKeychainBlocks(t *testing.T) {
	c, f := newTestCache(t, 2000, 0)
	entered := make(chan struct{})
	f.block = make(chan struct{})
	f.onGet = sync.OnceFunc(func() { close(entered) })
	defer close(f.block)
	// hangGuard only ends a test that would otherwise hang; it is not a
	// timing assertion.
	const hangGuard = 20 * time.Second

	// Cancel only once Load is inside the blocked keychain call.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := c.Load(ctx, "v1-k")
		done <- err
	}()
	<-entered
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Load: %v, want context.Canceled", err)
		}
	case <-time.After(hangGuard):
		t.Fatal("Load did not return after its context was cancelled while the keychain blocked")
	}

	// The blocked operation still holds the keychain: the next one waits
	// for it, and gives up when its own (live) context expires.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	go func() { done <- c.Store(ctx2, "v1-k", bigEntry(0)) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Store: %v, want context.DeadlineExceeded", err)
		}
	case <-time.After(hangGuard):
		t.Fatal("Store did not return when its context expired while the keychain was busy")
	}
}

func TestConcurrentUse(t *testing.T) {
	ctx := context.Background()
	c, _ := newTestCache(t, 2000, 0)
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 10 {
				key := fmt.Sprintf("v1-k%d", j%2)
				if err := c.Store(ctx, key, bigEntry((i+j)%3*4000)); err != nil {
					t.Error(err)
					return
				}
				if _, err := c.Load(ctx, key); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestLock(t *testing.T) {
	ctx := context.Background()
	c, _ := newTestCache(t, 2000, 0)
	unlock, err := c.Lock(ctx, "v1-k")
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	if _, err := c.Lock(cctx, "v1-k"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("second Lock: %v, want DeadlineExceeded", err)
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	if err := unlock(); err != nil {
		t.Errorf("second unlock: %v", err)
	}
	unlock, err = c.Lock(ctx, "v1-k")
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	if _, err := c.Lock(ctx, "a#b"); err == nil {
		t.Error("Lock of an invalid key succeeded")
	}
}

var _ interface {
	tokencache.Cache
	tokencache.Locker
} = (*Cache)(nil)

func TestSessionBusKnown(t *testing.T) {
	tests := []struct {
		name  string
		env   string
		files []string
		want  bool
	}{
		{"address set", "unix:path=/tmp/dbus-x", nil, true},
		{"autolaunch only", "autolaunch:", nil, false},
		{"nothing", "", nil, false},
		{"systemd user bus", "", []string{"/run/user/1000/bus"}, true},
		{"address file", "", []string{"/run/user/1000/dbus-session"}, true},
		{"another user's bus", "", []string{"/run/user/0/bus"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string {
				if k == "DBUS_SESSION_BUS_ADDRESS" {
					return tt.env
				}
				return ""
			}
			exists := func(name string) bool { return slices.Contains(tt.files, name) }
			if got := sessionBusKnown(getenv, exists, 1000); got != tt.want {
				t.Errorf("sessionBusKnown = %v, want %v", got, tt.want)
			}
		})
	}
	// Without a bus, the real keychain is reported unavailable without
	// launching one.
	if runtime.GOOS == "linux" && !fileExists(fmt.Sprintf("/run/user/%d/bus", os.Getuid())) &&
		!fileExists(fmt.Sprintf("/run/user/%d/dbus-session", os.Getuid())) {
		t.Setenv("DBUS_SESSION_BUS_ADDRESS", "")
		_, err := New("oauthkit-test").Load(context.Background(), "v1-k")
		if !errors.Is(err, ErrUnavailable) || !errors.Is(err, errNoSessionBus) {
			t.Errorf("Load without a session bus: %v, want ErrUnavailable", err)
		}
	}
}
