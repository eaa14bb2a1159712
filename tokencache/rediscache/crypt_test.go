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
		sealed, err := c.seal([]byte(`{"v":1}`), "k")
		if err != nil {
			t.Fatal(err)
		}
		plain, err := c.open(sealed, "k")
		if err != nil || string(plain) != `{"v":1}` {
			t.Errorf("%d-byte key: open = %q, %v", n, plain, err)
		}
		again, _ := c.seal([]byte(`{"v":1}`), "k")
		if bytes.Equal(sealed, again) {
			t.Errorf("%d-byte key: two seals are equal; nonce not random", n)
		}
	}
}

// FuzzOpen checks that no stored value makes Load's decryption panic or
// fail with anything but ErrCorrupt.
func FuzzOpen(f *testing.F) {
	c, err := New(redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}), &Options{EncryptionKey: make([]byte, 32)})
	if err != nil {
		f.Fatal(err)
	}
	sealed, err := c.seal([]byte(`{"v":1,"access_token":"x"}`), "k")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sealed)
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Add([]byte(`{"v":1}`))
	f.Add(sealed[:len(sealed)-1])
	f.Fuzz(func(t *testing.T, b []byte) {
		plain, err := c.open(b, "k")
		if err != nil {
			if !errors.Is(err, tokencache.ErrCorrupt) {
				t.Fatalf("open: err = %v, want ErrCorrupt", err)
			}
			return
		}
		if _, err := tokencache.Decode(plain); err != nil && !errors.Is(err, tokencache.ErrCorrupt) {
			t.Fatalf("Decode: err = %v, want ErrCorrupt", err)
		}
	})
}
