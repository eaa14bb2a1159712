package rediscache

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/oauthkit/oauthkit/internal/redistest"
	"github.com/oauthkit/oauthkit/tokencache"
	"github.com/redis/go-redis/v9"
)

const testKey = "v1-0123456789abcdef"

func sameEntry(a, b *tokencache.Entry) bool {
	return a.AccessToken == b.AccessToken && a.TokenType == b.TokenType &&
		a.RefreshToken == b.RefreshToken && a.Expiry.Equal(b.Expiry) &&
		a.Scope == b.Scope && a.Updated.Equal(b.Updated) &&
		reflect.DeepEqual(a.Extra, b.Extra)
}

func TestStoreLoadDelete(t *testing.T) {
	srv := redistest.Start(t)
	c := newCache(t, srv, nil)
	now := time.Now().Round(time.Microsecond)
	tests := []struct {
		name string
		e    *tokencache.Entry
	}{
		{"access token only", &tokencache.Entry{AccessToken: "at-1", TokenType: "Bearer", Expiry: now.Add(time.Hour), Updated: now}},
		{"with refresh token", &tokencache.Entry{AccessToken: "at-2", RefreshToken: "rt-2", TokenType: "Bearer", Expiry: now.Add(time.Hour), Updated: now.Add(time.Second)}},
		{"no expiry", &tokencache.Entry{AccessToken: "at-3", Updated: now.Add(2 * time.Second)}},
		{"scope and extra", &tokencache.Entry{AccessToken: "at-4", Scope: "system/Patient.rs", Extra: map[string]any{"patient": "123"}, Expiry: now.Add(time.Minute), Updated: now.Add(3 * time.Second)}},
	}
	ctx := testCtx(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := c.Store(ctx, testKey, tt.e); err != nil {
				t.Fatalf("Store: %v", err)
			}
			got, err := c.Load(ctx, testKey)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if !sameEntry(got, tt.e) {
				t.Errorf("Load = %v, want %v", got, tt.e)
			}
		})
	}
	if err := c.Delete(ctx, testKey); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := c.Load(ctx, testKey); !errors.Is(err, tokencache.ErrNotFound) {
		t.Errorf("Load after Delete: err = %v, want ErrNotFound", err)
	}
	if err := c.Delete(ctx, testKey); err != nil {
		t.Errorf("Delete of a missing key: %v", err)
	}
}

func TestStoreZeroUpdatedIsStamped(t *testing.T) {
	srv := redistest.Start(t)
	c := newCache(t, srv, nil)
	fixed := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	c.now = func() time.Time { return fixed }
	ctx := testCtx(t)
	e := &tokencache.Entry{AccessToken: "at", Expiry: fixed.Add(time.Hour)}
	if err := c.Store(ctx, testKey, e); err != nil {
		t.Fatalf("Store: %v", err)
	}
	if !e.Updated.IsZero() {
		t.Errorf("Store changed the caller's entry")
	}
	got, err := c.Load(ctx, testKey)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if !got.Updated.Equal(fixed) {
		t.Errorf("Updated = %v, want %v", got.Updated, fixed)
	}
}

func TestStoreTTL(t *testing.T) {
	srv := redistest.Start(t)
	rdb := newClient(t, srv)
	c, err := New(rdb, &Options{RefreshTokenTTL: 48 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	c.now = func() time.Time { return now }
	const slack = time.Minute // Redis time passes while the test runs
	tests := []struct {
		name    string
		e       *tokencache.Entry
		wantTTL time.Duration // -1: no expiry
	}{
		{"access token", &tokencache.Entry{AccessToken: "a", Expiry: now.Add(time.Hour)}, time.Hour},
		{"refresh token", &tokencache.Entry{AccessToken: "a", RefreshToken: "r", Expiry: now.Add(time.Hour)}, time.Hour + 48*time.Hour},
		{"no expiry", &tokencache.Entry{AccessToken: "a"}, -1},
		{"already expired", &tokencache.Entry{AccessToken: "a", Expiry: now.Add(-time.Hour)}, time.Second},
		{"expired with refresh token", &tokencache.Entry{AccessToken: "a", RefreshToken: "r", Expiry: now.Add(-time.Hour)}, 47 * time.Hour},
	}
	ctx := testCtx(t)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := fmt.Sprintf("ttl-%d", i)
			if err := c.Store(ctx, key, tt.e); err != nil {
				t.Fatalf("Store: %v", err)
			}
			pttl, err := rdb.PTTL(ctx, c.entryKey(key)).Result()
			if err != nil {
				t.Fatalf("PTTL: %v", err)
			}
			if tt.wantTTL < 0 {
				if pttl != -1 {
					t.Errorf("PTTL = %v, want no expiry", pttl)
				}
				return
			}
			if pttl > tt.wantTTL || pttl <= max(tt.wantTTL-slack, 0) {
				t.Errorf("PTTL = %v, want about %v", pttl, tt.wantTTL)
			}
		})
	}
}

func TestLoadForeignValues(t *testing.T) {
	srv := redistest.Start(t)
	rdb := newClient(t, srv)
	c, err := New(rdb, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	tests := []struct {
		name  string
		plant func(key string) error
	}{
		{"string value", func(k string) error { return rdb.Set(ctx, k, "hello", 0).Err() }},
		{"list value", func(k string) error { return rdb.RPush(ctx, k, "x").Err() }},
		{"not JSON", func(k string) error { return rdb.HSet(ctx, k, "v", "garbage", "u", "1").Err() }},
		{"unknown version", func(k string) error { return rdb.HSet(ctx, k, "v", `{"v":99}`).Err() }},
		{"sealed without key", func(k string) error { return rdb.HSet(ctx, k, "v", "\x01aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa").Err() }},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := fmt.Sprintf("foreign-%d", i)
			if err := tt.plant(c.entryKey(key)); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Load(ctx, key); !errors.Is(err, tokencache.ErrCorrupt) {
				t.Errorf("Load: err = %v, want ErrCorrupt", err)
			}
			// A Store replaces what cannot be read.
			e := &tokencache.Entry{AccessToken: "fresh", Updated: time.Now()}
			if err := c.Store(ctx, key, e); err != nil {
				t.Fatalf("Store over foreign value: %v", err)
			}
			if got, err := c.Load(ctx, key); err != nil || got.AccessToken != "fresh" {
				t.Errorf("Load after Store: err = %v", err)
			}
		})
	}
}

func TestInvalidKeys(t *testing.T) {
	srv := redistest.Start(t)
	c := newCache(t, srv, nil)
	ctx := testCtx(t)
	for _, key := range []string{"", "a{b}", "a}b", "with space", ".hidden", strings.Repeat("k", 201)} {
		if _, err := c.Load(ctx, key); err == nil || errors.Is(err, tokencache.ErrNotFound) {
			t.Errorf("Load(%q): err = %v, want invalid key", key, err)
		}
		if err := c.Store(ctx, key, &tokencache.Entry{AccessToken: "a"}); err == nil {
			t.Errorf("Store(%q) succeeded", key)
		}
		if err := c.Delete(ctx, key); err == nil {
			t.Errorf("Delete(%q) succeeded", key)
		}
		if _, err := c.Lock(ctx, key); err == nil {
			t.Errorf("Lock(%q) succeeded", key)
		}
	}
	if err := c.Store(ctx, testKey, nil); err == nil {
		t.Error("Store(nil) succeeded")
	}
}

func TestNewValidatesOptions(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	defer rdb.Close()
	secretKey := []byte("0123456789abcdef0123456789abcdefXYZ") // 35 bytes
	randomKey := make([]byte, 32)
	rand.Read(randomKey)
	tests := []struct {
		name   string
		client redis.UniversalClient
		opts   *Options
		ok     bool
	}{
		{"nil options", rdb, nil, true},
		{"zero options", rdb, &Options{}, true},
		{"nil client", nil, nil, false},
		{"brace in prefix", rdb, &Options{KeyPrefix: "a{b"}, false},
		{"tiny lease", rdb, &Options{LockLease: time.Millisecond}, false},
		{"negative lease", rdb, &Options{LockLease: -time.Second}, false},
		{"negative poll", rdb, &Options{LockPoll: -time.Second}, false},
		{"negative refresh TTL", rdb, &Options{RefreshTokenTTL: -time.Second}, false},
		{"AES-128 key", rdb, &Options{EncryptionKey: secretKey[:16]}, true},
		{"AES-192 key", rdb, &Options{EncryptionKey: secretKey[:24]}, true},
		{"AES-256 key", rdb, &Options{EncryptionKey: secretKey[:32]}, true},
		{"random AES-256 key", rdb, &Options{KeyPrefix: "p:", EncryptionKey: randomKey, Logger: slog.Default()}, true},
		{"short key", rdb, &Options{EncryptionKey: secretKey[:20]}, false},
		{"long key", rdb, &Options{EncryptionKey: secretKey}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var key []byte
			if tt.opts != nil {
				key = tt.opts.EncryptionKey
				// Options, as a value and as a pointer, print and log
				// without the key.
				for _, v := range []any{*tt.opts, tt.opts} {
					for what, s := range renderings(v) {
						if leaksKey(s, key) || leaksKey(s, secretKey[:16]) {
							t.Errorf("%s of %T shows the encryption key", what, v)
						} else if len(key) > 0 && what != "slog" && !strings.Contains(s, "REDACTED") {
							t.Errorf("%s of %T = %s, want the key shown as REDACTED", what, v, s)
						}
					}
				}
			}
			c, err := New(tt.client, tt.opts)
			if (err == nil) != tt.ok {
				t.Fatalf("New: err = %v, want ok=%v", err, tt.ok)
			}
			if err != nil {
				if !strings.HasPrefix(err.Error(), "rediscache: ") || leaksKey(err.Error(), key) || leaksKey(err.Error(), secretKey[:16]) {
					t.Errorf("error %q lacks the package prefix or shows the key", err)
				}
				return
			}
			// So does the Cache, as a value (which holds the expanded
			// key) and as a pointer.
			for _, v := range []any{*c, c} {
				for what, s := range renderings(v) {
					if leaksKey(s, key) || leaksKey(s, secretKey[:16]) {
						t.Errorf("%s of %T shows the encryption key", what, v)
					}
				}
			}
		})
	}
}

// renderings returns v as the fmt verbs and slog's JSON and text handlers
// print it.
func renderings(v any) map[string]string {
	out := make(map[string]string)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		out[verb] = fmt.Sprintf(verb, v)
	}
	var js, txt bytes.Buffer
	slog.New(slog.NewJSONHandler(&js, nil)).Info("msg", "v", v)
	slog.New(slog.NewTextHandler(&txt, nil)).Info("msg", "v", v)
	out["slog"] = js.String() + txt.String()
	return out
}

// leaksKey reports whether s contains key in any usual rendering: raw,
// decimal list, Go syntax, hex or base64.
func leaksKey(s string, key []byte) bool {
	if len(key) == 0 {
		return false
	}
	for _, r := range []string{
		string(key),
		strings.Trim(fmt.Sprint(key), "[]"),
		strings.TrimSuffix(strings.TrimPrefix(fmt.Sprintf("%#v", key), "[]byte{"), "}"),
		hex.EncodeToString(key),
		strings.ToUpper(hex.EncodeToString(key)),
		base64.StdEncoding.EncodeToString(key),
		base64.RawStdEncoding.EncodeToString(key),
		base64.URLEncoding.EncodeToString(key),
		base64.RawURLEncoding.EncodeToString(key),
	} {
		if strings.Contains(s, r) {
			return true
		}
	}
	return false
}

func TestCacheString(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer rdb.Close()
	c, err := New(rdb, &Options{KeyPrefix: "fleet:", EncryptionKey: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	want := `rediscache.Cache{KeyPrefix:"fleet:" Encrypted:true LockLease:15s}`
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if got := fmt.Sprintf(verb, c); got != want {
			t.Errorf("%s of *Cache = %s, want %s", verb, got, want)
		}
		if got := fmt.Sprintf(verb, *c); got != want {
			t.Errorf("%s of Cache = %s, want %s", verb, got, want)
		}
	}
	if got := fmt.Sprint((*Cache)(nil)); got != "<nil>" {
		t.Errorf("Sprint of a nil *Cache = %s, want <nil>", got)
	}
	o := Options{KeyPrefix: "fleet:", EncryptionKey: make([]byte, 32)}
	wantOpts := `rediscache.Options{KeyPrefix:"fleet:" LockLease:0s LockPoll:0s EncryptionKey:REDACTED(32 bytes) RefreshTokenTTL:0s Logger:false}`
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if got := fmt.Sprintf(verb, o); got != wantOpts {
			t.Errorf("%s of Options = %s, want %s", verb, got, wantOpts)
		}
		if got := fmt.Sprintf(verb, &o); got != wantOpts {
			t.Errorf("%s of *Options = %s, want %s", verb, got, wantOpts)
		}
	}
}

func TestKeysUseHashTags(t *testing.T) {
	c, err := New(redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}), &Options{KeyPrefix: "p:"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.entryKey(testKey), "p:{"+testKey+"}"; got != want {
		t.Errorf("entryKey = %q, want %q", got, want)
	}
	if got, want := c.lockKey(testKey), "p:{"+testKey+"}:lock"; got != want {
		t.Errorf("lockKey = %q, want %q", got, want)
	}
}

// TestCluster runs the cache against a one-node Redis Cluster through a
// ClusterClient, and checks that an entry and its lock share a slot.
func TestCluster(t *testing.T) {
	srv := redistest.Start(t, "--cluster-enabled", "yes")
	ctx := testCtx(t)
	admin := newClient(t, srv)
	if err := admin.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", "0", "16383").Err(); err != nil {
		t.Fatalf("assign slots: %v", err)
	}
	eventually(t, "cluster state ok", func() bool {
		info, err := admin.ClusterInfo(ctx).Result()
		return err == nil && strings.Contains(info, "cluster_state:ok")
	})
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{srv.Addr}})
	t.Cleanup(func() { _ = cc.Close() })
	c, err := New(cc, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{testKey, "a", "v1-ffff"} {
		es, err1 := admin.ClusterKeySlot(ctx, c.entryKey(key)).Result()
		ls, err2 := admin.ClusterKeySlot(ctx, c.lockKey(key)).Result()
		if err1 != nil || err2 != nil || es != ls {
			t.Errorf("key %q: entry slot %d, lock slot %d (%v, %v)", key, es, ls, err1, err2)
		}
	}
	exerciseCache(t, c)
}

// TestSentinel runs the cache through a Sentinel failover client.
func TestSentinel(t *testing.T) {
	master := redistest.Start(t)
	sentinel := redistest.StartSentinel(t, master, "tokens")
	fc := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: "tokens", SentinelAddrs: []string{sentinel.Addr}})
	t.Cleanup(func() { _ = fc.Close() })
	c, err := New(fc, nil)
	if err != nil {
		t.Fatal(err)
	}
	exerciseCache(t, c)
}

// exerciseCache stores, loads, locks and unlocks through c.
func exerciseCache(t *testing.T, c *Cache) {
	t.Helper()
	ctx := testCtx(t)
	e := &tokencache.Entry{AccessToken: "at", RefreshToken: "rt", Expiry: time.Now().Add(time.Hour), Updated: time.Now()}
	if err := c.Store(ctx, testKey, e); err != nil {
		t.Fatalf("Store: %v", err)
	}
	if got, err := c.Load(ctx, testKey); err != nil || !sameEntry(got, e) {
		t.Fatalf("Load = %v, %v", got, err)
	}
	unlock, err := c.Lock(ctx, testKey)
	if err != nil {
		t.Fatalf("Lock: %v", err)
	}
	if err := unlock(); err != nil {
		t.Fatalf("unlock: %v", err)
	}
	if err := c.Delete(ctx, testKey); err != nil {
		t.Fatalf("Delete: %v", err)
	}
}
