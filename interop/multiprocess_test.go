package interop

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	gokeyring "github.com/zalando/go-keyring"
	"golang.org/x/oauth2"

	"github.com/oauthkit/oauthkit/internal/testenv"
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
	specs := make([]workerSpec, workers)
	for i := range specs {
		specs[i] = rotationSpec(p, cacheSpec, rounds)
	}
	runRotationSpecs(t, p, cache, specs)
}

// rotationSpec is the spec of a worker that forces rounds
// refresh-or-adopt rounds with the provider's App client through the
// cache cacheSpec names.
func rotationSpec(p *Provider, cacheSpec string, rounds int) workerSpec {
	return workerSpec{
		TokenURL:   p.TokenURL,
		ClientID:   p.App.ID,
		Secret:     p.App.Secret,
		Grant:      "refresh_token",
		Cache:      cacheSpec,
		Mode:       modeRotate,
		Iterations: rounds,
	}
}

// runRotationSpecs is runRotation with one rotationSpec per worker, which
// may differ in anything but the client and the cache.
func runRotationSpecs(t *testing.T, p *Provider, cache tokencache.Cache, specs []workerSpec) {
	t.Helper()
	spec := specs[0]
	spec.ClockOffset = 0
	seedRefreshToken(t, spec, cache, p.RefreshToken(t, p.App.ID))
	before := p.Stats(t)

	runWorkerSpecs(t, specs)

	st := p.Stats(t)
	refreshes := st.TokenRequestsByGrant["refresh_token"] - before.TokenRequestsByGrant["refresh_token"]
	rounds := 0
	for _, s := range specs {
		rounds = max(rounds, s.Iterations)
	}
	t.Logf("%d processes, up to %d rounds each: %d refresh token grants, %d refresh tokens consumed, %d reuse detections",
		len(specs), rounds, refreshes, st.RefreshTokensConsumed-before.RefreshTokensConsumed, st.RefreshTokenReuse)
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
	t.Errorf("reuse detections %d, grants revoked %d, token errors %d (%v); want 0",
		st.RefreshTokenReuse, st.GrantsRevoked, st.TokenErrors, st.TokenErrorsByCode)
}

// pausingFile is a file cache (with its lock) whose first Store of an
// entry without an access token, the write an Invalidate that rewrites the
// cache would make, waits until release is closed; paused is closed when it
// starts waiting.
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
// it. Process A drops it first; if that rewrites the cache entry, the write
// is slow. Meanwhile process B drops it too, redeems the refresh token and
// stores the rotated one. Whatever A writes, and whenever: it must not put
// the consumed refresh token back (the next refresh would be a reuse, and
// the server would revoke the whole grant), and A's next token is B's.
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

	aDone := make(chan error, 1)
	go func() { aDone <- rejectCurrent(ctx, a) }()
	// A either pauses in its write to the cache or returns without one.
	aErr := error(nil)
	aReturned := false
	select {
	case <-slow.paused:
	case aErr = <-aDone:
		aReturned = true
	}

	bDone := make(chan error, 1)
	go func() {
		if err := rejectCurrent(ctx, b); err != nil {
			bDone <- err
			return
		}
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
	if !aReturned {
		aErr = <-aDone
	}
	if aErr != nil {
		t.Fatalf("A: reject: %v", aErr)
	}
	if bErr != nil {
		t.Fatalf("B: Token: %v", bErr)
	}
	before := srv.Stats().ByGrant[oauthtest.GrantRefreshToken]
	newA, err := a.Token(ctx)
	if err != nil {
		t.Fatalf("A: Token after B's refresh: %v", err)
	}
	newB, err := b.Token(ctx)
	if err != nil {
		t.Fatalf("B: Token: %v", err)
	}
	if newA.AccessToken != newB.AccessToken || newA.AccessToken == tokA.AccessToken {
		t.Error("A did not adopt the token B refreshed")
	}
	if after := srv.Stats().ByGrant[oauthtest.GrantRefreshToken]; after != before {
		t.Errorf("A made %d refresh token grants after B's refresh, want 0 (adopt B's token)", after-before)
	}

	c := newTokenSource(t, spec.config(newFile()))
	if err := forceRefresh(ctx, c); err != nil {
		t.Errorf("refresh with the cached refresh token: %v", err)
	}
	if st := srv.Stats(); st.RefreshReuseDetected != 0 {
		t.Errorf("refresh token reuse detected %d times: a consumed refresh token was written back over a newer entry", st.RefreshReuseDetected)
	}
}
