package interop

import (
	"context"
	"errors"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gokeyring "github.com/zalando/go-keyring"
	"golang.org/x/oauth2"

	"github.com/oauthkit/oauthkit/internal/testenv"
	"github.com/oauthkit/oauthkit/oauthclient"
	"github.com/oauthkit/oauthkit/oauthtest"
	"github.com/oauthkit/oauthkit/tokencache"
)

// These tests run the SDK in several real processes (the test binary
// re-executed as a worker, see worker_test.go) that share one persistent
// cache, as cron jobs, CLI runs and fleet members do.

// ccSpec is a worker spec for the provider's client_credentials client with
// client_secret_basic.
func ccSpec(p *Provider, cache string) workerSpec {
	return workerSpec{
		TokenURL: p.TokenURL,
		ClientID: p.Basic.ID,
		Secret:   p.Basic.Secret,
		Scopes:   []string{"system/Patient.rs"},
		Grant:    "client_credentials",
		Cache:    cache,
		Mode:     modeOnce,
	}
}

// allEqual fails the test unless every hash is the same.
func allEqual(t testing.TB, hashes []string, want int) {
	t.Helper()
	if len(hashes) != want {
		t.Fatalf("got %d token hashes, want %d", len(hashes), want)
	}
	for i, h := range hashes {
		if h != hashes[0] {
			t.Errorf("worker %d got token %s, worker 0 got %s; want the same token", i, h, hashes[0])
		}
	}
}

// TestFileCacheNineProcesses: eight processes started at once and a ninth
// after them share a file cache: the provider sees one token request and
// every process uses the same token.
func TestFileCacheNineProcesses(t *testing.T) {
	p := startProvider(t, ProviderOptions{})
	dir := filepath.Join(t.TempDir(), "tokens")
	spec := ccSpec(p, "file:"+dir)

	outs := runWorkers(t, 8, spec)
	outs = append(outs, runWorkers(t, 1, spec)...)
	allEqual(t, tokenHashes(t, outs), 9)

	st := p.Stats(t)
	if st.TokenRequests != 1 || st.TokenErrors != 0 {
		t.Errorf("token requests %d, errors %d (%v); want 1, 0", st.TokenRequests, st.TokenErrors, st.TokenErrorsByCode)
	}

	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o700 {
		t.Errorf("cache directory mode %v, want 0700", got)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var jsonFiles int
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if !info.Mode().IsRegular() {
			t.Errorf("%s: not a regular file (%v)", e.Name(), info.Mode())
			continue
		}
		if got := info.Mode().Perm(); got != 0o600 {
			t.Errorf("%s: mode %v, want 0600", e.Name(), got)
		}
		if strings.HasSuffix(e.Name(), ".json") {
			jsonFiles++
		}
	}
	if jsonFiles != 1 {
		t.Errorf("%d cache entries in %s, want 1", jsonFiles, dir)
	}
}

// requireKeyring skips (fails under CI=true) unless a Secret Service (or
// another OS keychain) accepts a write and a delete.
func requireKeyring(t *testing.T) {
	t.Helper()
	service := "oauthkit-interop-probe-" + randomHex(t, 8)
	done := make(chan error, 1)
	go func() { // a locked keychain may wait for a prompt nobody answers
		err := gokeyring.Set(service, "probe", "probe")
		if err == nil {
			err = gokeyring.Delete(service, "probe")
		}
		done <- err
	}()
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		err = errors.New("no answer within 30s")
	}
	if err == nil {
		return
	}
	testenv.SkipOrFailInCI(t, "no usable OS keychain (%v); run: scripts/with-keyring.sh go test ./interop -run Keyring", err)
}

// TestKeyringTwoRuns: two runs of a command, one after the other, keep
// their token in the OS keychain: the provider sees one token request.
func TestKeyringTwoRuns(t *testing.T) {
	requireKeyring(t)
	p := startProvider(t, ProviderOptions{})
	service := "oauthkit-interop-" + randomHex(t, 8)
	t.Cleanup(func() {
		if err := gokeyring.DeleteAll(service); err != nil {
			t.Errorf("delete keychain items: %v", err)
		}
	})
	spec := ccSpec(p, "keyring:"+service)
	spec.LockDir = t.TempDir()

	outs := runWorkers(t, 1, spec)
	outs = append(outs, runWorkers(t, 1, spec)...)
	allEqual(t, tokenHashes(t, outs), 2)
	if st := p.Stats(t); st.TokenRequests != 1 || st.TokenErrors != 0 {
		t.Errorf("token requests %d, errors %d (%v); want 1, 0", st.TokenRequests, st.TokenErrors, st.TokenErrorsByCode)
	}
}

// seedRefreshToken stores rt in cache under the key spec's workers use.
// Once the cache holds a refresh token it is the truth: workers are
// configured without one and always redeem the newest one stored.
func seedRefreshToken(t testing.TB, spec workerSpec, cache tokencache.Cache, rt string) {
	t.Helper()
	ts := newTokenSource(t, spec.config(cache))
	if err := ts.Seed(context.Background(), &oauth2.Token{RefreshToken: rt}); err != nil {
		t.Fatalf("Seed: %v", err)
	}
}

// forceRefresh makes ts redeem the refresh token in its cache at least once:
// it takes the current token (perhaps adopted from the cache), rejects it
// and asks again.
func forceRefresh(ctx context.Context, ts *oauthclient.TokenSource) error {
	tok, err := ts.Token(ctx)
	if err != nil {
		return err
	}
	ts.Invalidate(tok)
	_, err = ts.Token(ctx)
	return err
}

// TestTwoProcessesRotateRefreshToken: two processes share one rotating
// refresh token from oidc-provider through a file cache and force 50
// refresh-or-adopt rounds between them; the provider must never see a
// consumed refresh token again.
func TestTwoProcessesRotateRefreshToken(t *testing.T) {
	p := startProvider(t, ProviderOptions{})
	dir := filepath.Join(t.TempDir(), "tokens")
	cache, err := tokencache.NewFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	runRotation(t, p, "file:"+dir, cache, 2, 25)
}

// runRotation seeds cache (which workers open as cacheSpec) with a refresh
// token of the provider's App client, runs workers processes that each
// force rounds refresh-or-adopt rounds through it, and checks that the
// provider never saw a consumed refresh token again and that the refresh
// token left in the cache still works.
func runRotation(t *testing.T, p *Provider, cacheSpec string, cache tokencache.Cache, workers, rounds int) {
	t.Helper()
	spec := workerSpec{
		TokenURL: p.TokenURL,
		ClientID: p.App.ID,
		Secret:   p.App.Secret,
		Grant:    "refresh_token",
		Cache:    cacheSpec,
		Mode:     modeRotate,
	}
	seedRefreshToken(t, spec, cache, p.RefreshToken(t, p.App.ID))
	before := p.Stats(t)

	spec.Iterations = rounds
	runWorkers(t, workers, spec)

	st := p.Stats(t)
	refreshes := st.TokenRequestsByGrant["refresh_token"] - before.TokenRequestsByGrant["refresh_token"]
	t.Logf("%d rounds in %d processes: %d refresh token grants", workers*rounds, workers, refreshes)
	if refreshes < rounds {
		t.Errorf("refresh token grants = %d, want at least %d", refreshes, rounds)
	}
	checkNoReuse(t, st)
	if t.Failed() {
		return
	}

	// The refresh token left in the cache still works.
	ts := newTokenSource(t, spec.config(cache))
	if err := forceRefresh(context.Background(), ts); err != nil {
		t.Fatalf("refresh with the cached refresh token: %v", err)
	}
	after := p.Stats(t)
	if after.TokenRequestsByGrant["refresh_token"] <= st.TokenRequestsByGrant["refresh_token"] {
		t.Errorf("final refresh: refresh grants %d → %d, want one more",
			st.TokenRequestsByGrant["refresh_token"], after.TokenRequestsByGrant["refresh_token"])
	}
	checkNoReuse(t, after)
}

// checkNoReuse fails the test if the provider saw a consumed refresh token
// again, revoked a grant or answered a token request with an error.
func checkNoReuse(t testing.TB, st Stats) {
	t.Helper()
	if st.RefreshTokenReuse == 0 && st.GrantsRevoked == 0 && st.TokenErrors == 0 {
		return
	}
	hint := ""
	if st.RefreshTokenReuse != 0 {
		hint = "; a consumed refresh token came back from the shared cache, see TestInvalidateRacesRefreshInAnotherProcess " +
			"(TokenSource.Invalidate rewrites the cache entry without the cache's Locker)"
	}
	t.Errorf("reuse detections %d, grants revoked %d, token errors %d (%v); want 0%s",
		st.RefreshTokenReuse, st.GrantsRevoked, st.TokenErrors, st.TokenErrorsByCode, hint)
}

// killRounds is how many workers TestKillDuringRefresh kills per mode.
const killRounds = 25

// TestKillDuringRefresh kills a process that rotates a refresh token
// through a file cache with SIGKILL at a random moment, 25 times in a row,
// against oauthtest. After every kill the cache must decode and its
// refresh token must still work.
//
// Some kills land after the server committed a rotation and before the
// client persisted the new refresh token: the cache then holds the consumed
// one. With a reuse grace period (as Okta and Auth0 offer) the next refresh
// recovers; with strict rotation it is answered invalid_grant, and the test
// only reports how often that happened.
func TestKillDuringRefresh(t *testing.T) {
	tests := []struct {
		name  string
		grace time.Duration
	}{
		{"grace", 5 * time.Second},
		{"strict", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := oauthtest.NewServer()
			t.Cleanup(srv.Close)
			secret := randomSecret(t)
			if err := srv.RegisterClient(oauthtest.Client{ID: "cron", Secret: secret, AuthMethod: oauthtest.AuthClientSecretBasic}); err != nil {
				t.Fatal(err)
			}
			srv.SetTokenLifetime(2 * time.Second)
			srv.SetRefreshReuseGrace(tt.grace)
			issue := func() string {
				t.Helper()
				rt, err := srv.IssueRefreshToken("cron", "svc", nil)
				if err != nil {
					t.Fatal(err)
				}
				return rt
			}

			dir := filepath.Join(t.TempDir(), "tokens")
			spec := workerSpec{
				TokenURL: srv.TokenURL(),
				ClientID: "cron",
				Secret:   secret,
				Grant:    "refresh_token",
				Cache:    "file:" + dir,
				Mode:     modeRotate,
			}
			cache, err := tokencache.NewFile(dir)
			if err != nil {
				t.Fatal(err)
			}
			seedRefreshToken(t, spec, cache, issue())
			key := newTokenSource(t, spec.config(cache)).CacheKey()
			spec.Iterations = 1_000_000 // until killed

			ctx := context.Background()
			hits := 0
			for round := range killRounds {
				w := startWorker(t, spec)
				w.waitLine(t, "started", 60*time.Second)
				time.Sleep(time.Duration(20+mrand.IntN(281)) * time.Millisecond)
				w.kill()
				if ws, ok := w.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
					t.Fatalf("round %d: worker ended before it was killed: %v\n%s", round, w.err, w.stderr.String())
				}

				drainTokenRequests(t, srv)
				if _, err := cache.Load(ctx, key); err != nil {
					t.Fatalf("round %d: cache entry after the kill: %v", round, err)
				}
				before := srv.Stats().ByGrant[oauthtest.GrantRefreshToken]
				ts := newTokenSource(t, spec.config(cache))
				err := forceRefresh(ctx, ts)
				switch {
				case err == nil:
				case tt.grace == 0 && errors.Is(err, oauthclient.ErrReauthRequired):
					// Killed between the server's commit and the local
					// fsync; the family is revoked. Log in again.
					hits++
					seedRefreshToken(t, spec, cache, issue())
					if err := forceRefresh(ctx, newTokenSource(t, spec.config(cache))); err != nil {
						t.Fatalf("round %d: refresh after a new login: %v", round, err)
					}
				default:
					t.Fatalf("round %d: refresh with the cached refresh token: %v", round, err)
				}
				if after := srv.Stats().ByGrant[oauthtest.GrantRefreshToken]; after <= before {
					t.Fatalf("round %d: no refresh token grant after the kill", round)
				}
			}

			if names, err := filepath.Glob(filepath.Join(dir, ".*.tmp-*")); err == nil {
				t.Logf("temporary files left in the cache directory by killed writers: %d", len(names))
			}
			st := srv.Stats()
			invalidGrants := 0
			for _, r := range srv.TokenRequestLog() {
				if r.Error == "invalid_grant" {
					invalidGrants++
				}
			}
			if tt.grace > 0 {
				t.Logf("grace %v: %d kills, %d refresh token grants, %d reuses within grace (kills between the server's commit and the local fsync)",
					tt.grace, killRounds, st.ByGrant[oauthtest.GrantRefreshToken], st.RefreshGraceReuses)
				if st.RefreshReuseDetected != 0 || invalidGrants != 0 {
					t.Errorf("reuse detected %d times, invalid_grant %d times; want 0", st.RefreshReuseDetected, invalidGrants)
				}
				return
			}
			t.Logf("strict rotation: %d of %d kills landed between the server's commit and the local fsync (reuse detected %d times, %d refresh token grants)",
				hits, killRounds, st.RefreshReuseDetected, st.ByGrant[oauthtest.GrantRefreshToken])
			if invalidGrants != hits || st.RefreshReuseDetected != hits {
				t.Errorf("invalid_grant %d times, reuse detected %d times; want %d (one per kill inside the window)", invalidGrants, st.RefreshReuseDetected, hits)
			}
		})
	}
}

// drainTokenRequests waits until srv has answered every token request it
// has started, so that a request a killed worker sent just before it died
// is processed before the test looks at the cache. The limit is a hang
// guard.
func drainTokenRequests(t testing.TB, srv *oauthtest.Server) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		answered := len(srv.TokenRequestLog())
		if srv.Stats().TokenRequests == answered {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("oauthtest still answering token requests after 30s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// pausingFile is a file cache (with its lock) whose next Store of an entry
// without an access token, the write Invalidate makes, waits until release
// is closed; paused is closed when it starts waiting.
type pausingFile struct {
	*tokencache.File
	once    sync.Once
	paused  chan struct{}
	release chan struct{}
}

func (f *pausingFile) Store(ctx context.Context, key string, e *tokencache.Entry) error {
	if e.AccessToken == "" && e.RefreshToken != "" {
		f.once.Do(func() {
			close(f.paused)
			<-f.release
		})
	}
	return f.File.Store(ctx, key, e)
}

// TestInvalidateRacesRefreshInAnotherProcess: two processes (two File
// caches on one directory, which exclude each other through flock as
// processes do) hold the same access token when a resource server rejects
// it. Process A reads the cache entry to drop the rejected token and is
// slow to write it back; meanwhile process B drops it too, redeems the
// refresh token and stores the rotated one. A's late write must not put the
// consumed refresh token back: the next refresh would be a reuse, and the
// server would revoke the whole grant.
func TestInvalidateRacesRefreshInAnotherProcess(t *testing.T) {
	srv := oauthtest.NewServer()
	t.Cleanup(srv.Close)
	secret := randomSecret(t)
	if err := srv.RegisterClient(oauthtest.Client{ID: "fleet", Secret: secret, AuthMethod: oauthtest.AuthClientSecretBasic}); err != nil {
		t.Fatal(err)
	}
	rt, err := srv.IssueRefreshToken("fleet", "svc", nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "tokens")
	spec := workerSpec{TokenURL: srv.TokenURL(), ClientID: "fleet", Secret: secret, Grant: "refresh_token"}
	newFile := func() *tokencache.File {
		f, err := tokencache.NewFile(dir)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	seedRefreshToken(t, spec, newFile(), rt)
	ctx := context.Background()

	slow := &pausingFile{File: newFile(), paused: make(chan struct{}), release: make(chan struct{})}
	a := newTokenSource(t, spec.config(slow))
	b := newTokenSource(t, spec.config(newFile()))
	tokA, err := a.Token(ctx) // refreshes
	if err != nil {
		t.Fatalf("A: Token: %v", err)
	}
	tokB, err := b.Token(ctx) // adopts A's token from the cache
	if err != nil {
		t.Fatalf("B: Token: %v", err)
	}
	if tokA.AccessToken != tokB.AccessToken {
		t.Fatal("B did not adopt A's token")
	}

	aDone := make(chan struct{})
	go func() {
		defer close(aDone)
		a.Invalidate(tokA)
	}()
	<-slow.paused // A has read the entry and is about to write it back

	bDone := make(chan error, 1)
	go func() {
		b.Invalidate(tokB)
		_, err := b.Token(ctx) // redeems the refresh token
		bDone <- err
	}()
	// Let B finish first if it can. If B waits for A (a cache lock held
	// across A's read and write), release A after a while instead.
	var bErr error
	select {
	case bErr = <-bDone:
		close(slow.release)
	case <-time.After(2 * time.Second):
		close(slow.release)
		bErr = <-bDone
	}
	<-aDone
	if bErr != nil {
		t.Fatalf("B: Token: %v", bErr)
	}

	c := newTokenSource(t, spec.config(newFile()))
	if err := forceRefresh(ctx, c); err != nil {
		t.Errorf("refresh with the cached refresh token: %v", err)
	}
	if st := srv.Stats(); st.RefreshReuseDetected != 0 {
		t.Errorf("refresh token reuse detected %d times: TokenSource.Invalidate wrote a consumed refresh token "+
			"back over a newer entry (its read-check-write in oauthclient runs without the cache's Locker)", st.RefreshReuseDetected)
	}
}
