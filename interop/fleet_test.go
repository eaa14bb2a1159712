package interop

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/oauthkit/oauthkit/internal/redistest"
	"github.com/oauthkit/oauthkit/oauthclient"
	"github.com/oauthkit/oauthkit/tokencache/rediscache"
)

// These tests run a fleet: worker processes (see worker_test.go) or
// independent TokenSources that share a real redis-server through
// rediscache, against the real oidc-provider.

// hangGuard bounds single calls in the fleet tests. It only catches hangs;
// it is not a performance assertion.
const hangGuard = 30 * time.Second

// newRedisCache returns a rediscache.Cache on its own Redis client, as a
// separate process would have, closed when the test ends.
func newRedisCache(t testing.TB, addr string, opts *rediscache.Options) *rediscache.Cache {
	t.Helper()
	c, closeCache, err := openRedisCache(addr, opts)
	if err != nil {
		t.Fatalf("rediscache.New: %v", err)
	}
	t.Cleanup(closeCache)
	return c
}

// TestRedisSixteenProcesses: sixteen processes started at once share a
// Redis cache: the provider sees one token request and every process uses
// the same token.
func TestRedisSixteenProcesses(t *testing.T) {
	rs := redistest.Start(t)
	p := startProvider(t, ProviderOptions{})
	outs := runWorkers(t, 16, ccSpec(p, "redis:"+rs.Addr))
	allEqual(t, tokenHashes(t, outs), 16)
	if st := p.Stats(t); st.TokenRequests != 1 || st.TokenErrors != 0 {
		t.Errorf("token requests %d, errors %d (%v); want 1, 0", st.TokenRequests, st.TokenErrors, st.TokenErrorsByCode)
	}
}

// TestRedisRotation: four processes share one rotating refresh token from
// oidc-provider through Redis and force many refresh-or-adopt rounds; the
// provider must never see a consumed refresh token again.
func TestRedisRotation(t *testing.T) {
	rs := redistest.Start(t)
	p := startProvider(t, ProviderOptions{})
	runRotation(t, p, "redis:"+rs.Addr, newRedisCache(t, rs.Addr, nil), 4, 15)
}

// skewRounds is how many refresh-or-adopt rounds each process of
// TestRedisRotationClockSkew forces.
const skewRounds = 20

// TestRedisRotationClockSkew: two processes rotate one refresh token from
// oidc-provider through one Redis, and one of them runs with its clock
// (Config.Now) 2 s ahead, as on a host whose clock drifted. Locks, their
// leases and the order of writes come from Redis (fencing tokens), never
// from host clocks, so at least 20 rotations pass with no reuse detection
// and the refresh token left in Redis still works.
//
// Access tokens live 3 s, so the offset is most of a token's lifetime: the
// two processes disagree on whether a cached token is fresh, usable or
// expired.
func TestRedisRotationClockSkew(t *testing.T) {
	rs := redistest.Start(t)
	p := startProvider(t, ProviderOptions{AccessTokenTTL: 3 * time.Second})
	cacheSpec := "redis:" + rs.Addr
	behind := rotationSpec(p, cacheSpec, skewRounds)
	ahead := behind
	ahead.ClockOffset = 2 * time.Second
	runRotationSpecs(t, p, newRedisCache(t, rs.Addr, nil), []workerSpec{behind, ahead})
}

// logRecorder is a slog.Handler that keeps every record as text.
type logRecorder struct {
	mu  sync.Mutex // guards buf and n
	buf bytes.Buffer
	n   int // records at Warn or above
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rec.Level >= slog.LevelWarn {
		r.n++
	}
	fmt.Fprintf(&r.buf, "%s %s", rec.Level, rec.Message)
	rec.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&r.buf, " %s=%v", a.Key, a.Value)
		return true
	})
	r.buf.WriteByte('\n')
	return nil
}

func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *logRecorder) WithGroup(string) slog.Handler      { return r }

func (r *logRecorder) warnings() (int, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n, r.buf.String()
}

// TestRedisDown: the members of a fleet keep getting tokens when Redis
// dies mid-run: each logs a warning and fetches for itself. No call hangs.
func TestRedisDown(t *testing.T) {
	rs := redistest.Start(t)
	p := startProvider(t, ProviderOptions{})
	spec := ccSpec(p, "redis:"+rs.Addr)

	const members = 4
	type member struct {
		ts   *oauthclient.TokenSource
		logs *logRecorder
	}
	fleet := make([]member, members)
	for i := range fleet {
		logs := &logRecorder{}
		cfg := spec.config(newRedisCache(t, rs.Addr, &rediscache.Options{Logger: slog.New(logs)}))
		cfg.Logger = slog.New(logs)
		fleet[i] = member{ts: newTokenSource(t, cfg), logs: logs}
	}

	var (
		mu      sync.Mutex // guards slowest and tokens
		slowest time.Duration
		tokens  []string
	)
	// phase runs rounds of Token + rejectCurrent in every member at once.
	phase := func(name string, rounds int) {
		t.Helper()
		var wg sync.WaitGroup
		for i, m := range fleet {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for r := range rounds {
					ctx, cancel := context.WithTimeout(context.Background(), 2*hangGuard)
					start := time.Now()
					tok, err := m.ts.Token(ctx)
					d := time.Since(start)
					cancel()
					mu.Lock()
					slowest = max(slowest, d)
					if err == nil {
						tokens = append(tokens, tok.AccessToken)
					}
					mu.Unlock()
					if err != nil {
						t.Errorf("%s: member %d, round %d: Token: %v", name, i, r, err)
						return
					}
					if d > hangGuard {
						t.Errorf("%s: member %d, round %d: Token took %v", name, i, r, d)
					}
					start = time.Now()
					ctx, cancel = context.WithTimeout(context.Background(), 2*hangGuard)
					err = rejectCurrent(ctx, m.ts)
					cancel()
					if err != nil {
						t.Errorf("%s: member %d, round %d: reject: %v", name, i, r, err)
						return
					}
					if d := time.Since(start); d > hangGuard {
						t.Errorf("%s: member %d, round %d: reject took %v", name, i, r, d)
					}
				}
			}()
		}
		wg.Wait()
	}

	phase("redis up", 3)
	upRequests := p.Stats(t).TokenRequests
	warnUp := 0
	for _, m := range fleet {
		n, _ := m.logs.warnings()
		warnUp += n
	}

	rs.Kill()
	phase("redis down", 5)
	downRequests := p.Stats(t).TokenRequests - upRequests
	if downRequests < members*5 {
		t.Errorf("%d token requests with Redis down, want at least %d (every member fetches for itself)", downRequests, members*5)
	}
	for i, m := range fleet {
		n, text := m.logs.warnings()
		if n == 0 {
			t.Errorf("member %d logged no warning while Redis was down", i)
		}
		if !strings.Contains(text, "without it") && !strings.Contains(text, "unavailable") {
			t.Errorf("member %d: no warning about the unavailable cache lock", i)
		}
	}

	rs.Restart()
	phase("redis back", 2)

	st := p.Stats(t)
	if st.TokenErrors != 0 {
		t.Errorf("token errors %d (%v), want 0", st.TokenErrors, st.TokenErrorsByCode)
	}
	t.Logf("token requests: %d with Redis up (warnings %d), %d with Redis down, %d in all; slowest Token call %v",
		upRequests, warnUp, downRequests, st.TokenRequests, slowest.Round(time.Millisecond))

	// Nothing secret reached the logs.
	secrets := append([]string{p.Basic.Secret}, tokens...)
	for i, m := range fleet {
		_, text := m.logs.warnings()
		for _, s := range secrets {
			if s != "" && strings.Contains(text, s) {
				t.Fatalf("member %d logged a secret (%s)", i, fingerprint(s))
			}
		}
	}
}

// TestRedisCrashedHolder: a process that holds the fleet lock dies with
// SIGKILL; once its lease runs out, another process gets a token.
func TestRedisCrashedHolder(t *testing.T) {
	rs := redistest.Start(t)
	p := startProvider(t, ProviderOptions{})
	spec := ccSpec(p, "redis:"+rs.Addr)
	key := newTokenSource(t, spec.config(newRedisCache(t, rs.Addr, nil))).CacheKey()
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr})
	t.Cleanup(func() { rdb.Close() })
	lockKey := rediscache.DefaultKeyPrefix + "{" + key + "}:lock"

	holderSpec := spec
	holderSpec.Mode = modeHoldLock
	holderSpec.LockLease = 2 * time.Second
	holder := startWorker(t, holderSpec)
	holder.waitLine(t, "locked", 60*time.Second)
	n, err := rdb.Exists(context.Background(), lockKey).Result()
	if err != nil || n != 1 {
		t.Fatalf("lock key present: %d, %v; want 1", n, err)
	}
	holder.kill()

	start := time.Now()
	outs := runWorkers(t, 1, spec)
	took := time.Since(start)
	tokenHashes(t, outs)
	t.Logf("token after the holder's death in %v (lease %v)", took.Round(time.Millisecond), holderSpec.LockLease)
	if took > 2*hangGuard {
		t.Errorf("token after %v", took)
	}
	if st := p.Stats(t); st.TokenRequests != 1 || st.TokenErrors != 0 {
		t.Errorf("token requests %d, errors %d (%v); want 1, 0", st.TokenRequests, st.TokenErrors, st.TokenErrorsByCode)
	}
}
