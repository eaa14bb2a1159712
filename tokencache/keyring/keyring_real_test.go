package keyring

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"github.com/oauthkit/oauthkit/internal/testenv"
	"strings"
	"testing"
	"time"

	gokeyring "github.com/zalando/go-keyring"

	"github.com/oauthkit/oauthkit/tokencache"
)

// realCache returns a Cache on the real OS keychain under a service name
// unique to this test, removing its items when the test ends. Without a
// usable keychain the test skips, or fails when CI is "true": in CI a skip
// would hide that the keychain code was never run.
func realCache(t *testing.T, opts Options) (*Cache, string) {
	t.Helper()
	b := make([]byte, 8)
	rand.Read(b)
	service := "oauthkit-test-" + hex.EncodeToString(b)
	opts.LockDir = t.TempDir()
	c, err := NewWithOptions(service, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := probe(c, service); err != nil {
		testenv.SkipOrFailInCI(t, "no usable OS keychain (%v); run: scripts/with-keyring.sh go test ./tokencache/keyring", wrapErr("probe", err))
	}
	t.Cleanup(func() { gokeyring.DeleteAll(service) })
	return c, service
}

// probe tries the keychain with a bounded wait: a locked keychain may wait
// for a prompt nobody answers.
func probe(c *Cache, service string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return c.do(ctx, func() error {
		if err := c.kc.Set(service, "probe", "probe"); err != nil {
			return err
		}
		return c.kc.Delete(service, "probe")
	})
}

func TestRealStoreLoadDelete(t *testing.T) {
	c, _ := realCache(t, Options{})
	ctx := context.Background()
	key := tokencache.Key(tokencache.KeyParts{TokenURL: "https://example.org/token", ClientID: "real"})
	if _, err := c.Load(ctx, key); !errors.Is(err, tokencache.ErrNotFound) {
		t.Fatalf("Load of a missing key: %v, want ErrNotFound", err)
	}
	e := bigEntry(0)
	e.Extra = map[string]any{"patient": "123", "n": json.Number("9007199254740993")}
	if err := c.Store(ctx, key, e); err != nil {
		t.Fatal(err)
	}
	got, err := c.Load(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if !sameEntry(got, e) {
		t.Errorf("Load = %v, want %v", got, e)
	}
	if n, ok := got.Extra["n"].(json.Number); !ok || n != "9007199254740993" {
		t.Errorf(`Extra["n"] = %v (%T), want json.Number 9007199254740993`, got.Extra["n"], got.Extra["n"])
	}
	// Overwrite.
	e2 := bigEntry(0)
	if err := c.Store(ctx, key, e2); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Load(ctx, key); err != nil || !sameEntry(got, e2) {
		t.Fatalf("Load after overwrite = %v, %v", got, err)
	}
	if err := c.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, key); err != nil {
		t.Errorf("Delete of a missing key: %v", err)
	}
	if _, err := c.Load(ctx, key); !errors.Is(err, tokencache.ErrNotFound) {
		t.Fatalf("Load after Delete: %v, want ErrNotFound", err)
	}
}

func TestRealChunking(t *testing.T) {
	tests := []struct {
		name    string
		maxSize int
		extras  []int // grow, shrink within chunks, shrink to one item, grow again
	}{
		{"default MaxValueSize", 0, []int{12000, 30000, 4000, 0, 8000}},
		{"MaxValueSize 300", 300, []int{1500, 3000, 600, 0, 1200}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, service := realCache(t, Options{MaxValueSize: tt.maxSize})
			ctx := context.Background()
			const key = "v1-chunked"
			for i, n := range tt.extras {
				e := bigEntry(n)
				if n == 0 {
					e.Extra = nil
				}
				if err := c.Store(ctx, key, e); err != nil {
					t.Fatalf("store %d: %v", i, err)
				}
				got, err := c.Load(ctx, key)
				if err != nil {
					t.Fatalf("store %d: Load: %v", i, err)
				}
				if !sameEntry(got, e) {
					t.Fatalf("store %d: Load returned another entry", i)
				}
				head, err := gokeyring.Get(service, key)
				if err != nil {
					t.Fatal(err)
				}
				want := 0
				if strings.HasPrefix(head, manifestPrefix) {
					m, err := parseManifest(head, c.maxValue)
					if err != nil {
						t.Fatal(err)
					}
					want = m.Chunks
					// No chunk of the other slot survives.
					if _, err := gokeyring.Get(service, chunkName(key, otherSlot(m.Slot), 1)); !errors.Is(err, gokeyring.ErrNotFound) {
						t.Errorf("store %d: old slot still has chunks: %v", i, err)
					}
				}
				if (n > 0) != (want > 0) {
					t.Errorf("store %d: %d chunks for %d extra bytes", i, want, n)
				}
			}
			if err := c.Delete(ctx, key); err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{key, chunkName(key, "a", 1), chunkName(key, "b", 1)} {
				if _, err := gokeyring.Get(service, name); !errors.Is(err, gokeyring.ErrNotFound) {
					t.Errorf("item %s after Delete: %v", name, err)
				}
			}
		})
	}
}
