package rediscache

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/oauthkit/oauthkit/internal/redistest"
	"github.com/oauthkit/oauthkit/tokencache"
	"github.com/redis/go-redis/v9"
)

func randomKey(t testing.TB, n int) []byte {
	t.Helper()
	k := make([]byte, n)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func TestEncryptionAtRest(t *testing.T) {
	srv := redistest.Start(t)
	rdb := newClient(t, srv)
	key := randomKey(t, 32)
	c, err := New(rdb, &Options{EncryptionKey: key})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	at := "access-" + string(randomHex(t))
	rt := "refresh-" + string(randomHex(t))
	e := &tokencache.Entry{AccessToken: at, RefreshToken: rt, Scope: "openid", Expiry: time.Now().Add(time.Hour), Updated: time.Now()}
	if err := c.Store(ctx, testKey, e); err != nil {
		t.Fatalf("Store: %v", err)
	}
	raw, err := rdb.HGet(ctx, c.entryKey(testKey), fieldValue).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{at, rt, "openid"} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("stored value contains a %d-byte secret in the clear", len(secret))
		}
	}
	got, err := c.Load(ctx, testKey)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if !sameEntry(got, e) {
		t.Errorf("Load returned a different entry: %v", got)
	}

	// Every way of reading it wrongly is a miss (ErrCorrupt), not a panic.
	other, err := New(rdb, &Options{EncryptionKey: randomKey(t, 32)})
	if err != nil {
		t.Fatal(err)
	}
	clear, err := New(rdb, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := rdb.HSet(ctx, c.entryKey("moved"), fieldValue, raw).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.HSet(ctx, c.entryKey("short"), fieldValue, raw[:20]).Err(); err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(raw)
	flipped[len(flipped)-1] ^= 1
	if err := rdb.HSet(ctx, c.entryKey("flipped"), fieldValue, flipped).Err(); err != nil {
		t.Fatal(err)
	}
	if err := clear.Store(ctx, "plain", &tokencache.Entry{AccessToken: "p", Updated: time.Now()}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		c    *Cache
		key  string
	}{
		{"wrong key", other, testKey},
		{"no key", clear, testKey},
		{"moved to another key", c, "moved"},
		{"truncated", c, "short"},
		{"altered", c, "flipped"},
		{"stored in the clear", c, "plain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.c.Load(ctx, tt.key)
			if !errors.Is(err, tokencache.ErrCorrupt) {
				t.Fatalf("Load: err = %v, want ErrCorrupt", err)
			}
			if bytes.Contains([]byte(err.Error()), key) {
				t.Error("error contains the encryption key")
			}
		})
	}
}

func randomHex(t testing.TB) []byte {
	const digits = "0123456789abcdef"
	b := randomKey(t, 16)
	for i := range b {
		b[i] = digits[b[i]%16]
	}
	return b
}

func TestSealOpenKeySizes(t *testing.T) {
	for _, n := range []int{16, 24, 32} {
		c, err := New(redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}), &Options{EncryptionKey: randomKey(t, n)})
		if err != nil {
			t.Fatalf("%d-byte key: %v", n, err)
		}
		sealed, err := c.seal([]byte(`{"v":1}`), "k", 7)
		if err != nil {
			t.Fatal(err)
		}
		plain, err := c.open(sealed, "k", 7)
		if err != nil || string(plain) != `{"v":1}` {
			t.Errorf("%d-byte key: open = %q, %v", n, plain, err)
		}
		again, _ := c.seal([]byte(`{"v":1}`), "k", 7)
		if bytes.Equal(sealed, again) {
			t.Errorf("%d-byte key: two seals are equal; nonce not random", n)
		}
		// The fence and the key are bound: "k1" with fence 7 and "k" with
		// fence 17 must not be confused either.
		for _, other := range []struct {
			key   string
			fence int64
		}{{"k", 8}, {"k", 17}, {"k1", 7}, {"k", 0}} {
			if _, err := c.open(sealed, other.key, other.fence); !errors.Is(err, tokencache.ErrCorrupt) {
				t.Errorf("%d-byte key: open for key %q fence %d: err = %v, want ErrCorrupt", n, other.key, other.fence, err)
			}
		}
	}
}

// TestOpenLegacyEntry: an entry sealed by the earlier format (version 1,
// bound to the key alone) is a miss, not a panic.
func TestOpenLegacyEntry(t *testing.T) {
	c, err := New(redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}), &Options{EncryptionKey: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	nonce := make([]byte, nonceSize)
	legacy := append([]byte{legacySealedVersion}, nonce...)
	legacy = c.aead.Seal(legacy, nonce, []byte(`{"v":1,"access_token":"x"}`), []byte("oauthkit rediscache entry v1\x00k"))
	for _, f := range []string{"", "1"} {
		if _, _, err := c.decode("k", legacy, f); !errors.Is(err, tokencache.ErrCorrupt) {
			t.Errorf("decode of a legacy entry (fence %q): err = %v, want ErrCorrupt", f, err)
		}
	}
}

// FuzzOpen checks that no stored value makes Load's decryption panic or
// fail with anything but ErrCorrupt, and that a value sealed for one fence
// opens for that fence only.
func FuzzOpen(f *testing.F) {
	c, err := New(redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}), &Options{EncryptionKey: make([]byte, 32)})
	if err != nil {
		f.Fatal(err)
	}
	sealed, err := c.seal([]byte(`{"v":1,"access_token":"x"}`), "k", 1)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sealed, int64(1))
	f.Add(sealed, int64(2))
	f.Add([]byte{}, int64(0))
	f.Add([]byte{1}, int64(1))
	f.Add([]byte{2}, int64(1))
	f.Add([]byte(`{"v":1}`), int64(1))
	f.Add(sealed[:len(sealed)-1], int64(1))
	f.Add(sealed, int64(maxFence))
	f.Fuzz(func(t *testing.T, b []byte, fence int64) {
		plain, err := c.open(b, "k", fence)
		if err != nil {
			if !errors.Is(err, tokencache.ErrCorrupt) {
				t.Fatalf("open: err = %v, want ErrCorrupt", err)
			}
		} else if _, err := tokencache.Decode(plain); err != nil && !errors.Is(err, tokencache.ErrCorrupt) {
			t.Fatalf("Decode: err = %v, want ErrCorrupt", err)
		}
		// Round trip: b sealed with fence opens with fence and no other.
		s, err := c.seal(b, "k", fence)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := c.open(s, "k", fence); err != nil || !bytes.Equal(got, b) {
			t.Fatalf("open of a value sealed for fence %d: err = %v, equal = %t", fence, err, bytes.Equal(got, b))
		}
		if _, err := c.open(s, "k", fence^1); !errors.Is(err, tokencache.ErrCorrupt) {
			t.Fatalf("open for fence %d of a value sealed for fence %d: err = %v, want ErrCorrupt", fence^1, fence, err)
		}
	})
}

// FuzzDecodeStored feeds arbitrary stored fields (value and fence) to the
// decoding behind Load, with and without an EncryptionKey: it never panics,
// fails only with ErrCorrupt, and accepts an entry only with a valid fence.
func FuzzDecodeStored(f *testing.F) {
	sealedCache, err := New(redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}), &Options{EncryptionKey: make([]byte, 32)})
	if err != nil {
		f.Fatal(err)
	}
	clearCache, err := New(redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}), nil)
	if err != nil {
		f.Fatal(err)
	}
	plain := []byte(`{"v":1,"access_token":"x","expiry":"2030-01-01T00:00:00Z"}`)
	sealed, err := sealedCache.seal(plain, "k", 42)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sealed, "42")
	f.Add(sealed, "43")
	f.Add(sealed, "")
	f.Add(sealed, "4.2e1")
	f.Add(plain, "42")
	f.Add(plain, "0")
	f.Add(plain, "-1")
	f.Add(plain, "9007199254740992")
	f.Add([]byte{}, "1")
	f.Add([]byte{1, 2, 3}, "1")
	f.Fuzz(func(t *testing.T, v []byte, fs string) {
		for name, c := range map[string]*Cache{"encrypted": sealedCache, "clear": clearCache} {
			e, fence, err := c.decode("k", v, fs)
			if err != nil {
				if !errors.Is(err, tokencache.ErrCorrupt) {
					t.Fatalf("%s: decode: err = %v, want ErrCorrupt", name, err)
				}
				continue
			}
			if want, ok := parseFence(fs); !ok || fence != want || e == nil {
				t.Fatalf("%s: decode accepted fence field %q as %d", name, fs, fence)
			}
		}
	})
}
