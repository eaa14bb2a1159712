package interop

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/oauthkit/oauthkit/oauthclient"
	"github.com/oauthkit/oauthkit/oauthtest"
	"github.com/oauthkit/oauthkit/tokencache"
)

// killRounds is how many workers TestKillDuringRefresh kills per mode.
const killRounds = 25

// TestKillDuringRefresh kills a process that rotates a refresh token
// through a file cache with SIGKILL at a random moment, 25 times in a row,
// against oauthtest. After every kill the cache must decode and its
// refresh token must still work.
//
// Some kills land after the worker sent a refresh request and before it
// persisted the refresh token the answer carried: the server rotates (it
// processes a request whose sender died, as real servers do), and the
// cache keeps the consumed token. With a reuse grace period (as Okta and
// Auth0 offer) the next refresh recovers; with strict rotation it is
// answered invalid_grant, the family is revoked and a person must log in
// again. The test counts those kills; every other kill must cost nothing.
//
// Every token request goes through a tokenRecorder: the workers through
// one listener, each round's checking TokenSource through its own. After a
// kill the test waits until the dead worker's connections are closed, so a
// request it sent just before it died has been answered before the cache
// is read; otherwise that request could reach the server after the
// checker's, and the consumed refresh token would be the checker's new one.
// Each checking TokenSource is closed at the end of its round, so that none
// refreshes in the background later.
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

			rec := newTokenRecorder(t, srv.TokenURL())
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("token requests:\n%s", formatExchanges(rec.exchanges()))
				}
			})
			dir := filepath.Join(t.TempDir(), "tokens")
			spec := workerSpec{
				TokenURL: rec.listen(t, "worker"),
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
			checker := spec
			checker.TokenURL = rec.listen(t, "login")
			seedRefreshToken(t, checker, cache, issue())
			key := newTokenSource(t, checker.config(cache)).CacheKey()
			spec.Iterations = 1_000_000 // until killed

			// check refreshes with what the cache holds, through a
			// TokenSource of its own, closed afterwards.
			check := func(sender string) error {
				checker.TokenURL = rec.listen(t, sender)
				ts := newTokenSource(t, checker.config(cache))
				defer ts.Close()
				return forceRefresh(context.Background(), ts)
			}

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
				rec.waitClosed(t, "worker")
				rec.mark(fmt.Sprintf("round %d: worker killed", round))

				if _, err := cache.Load(ctx, key); err != nil {
					t.Fatalf("round %d: cache entry after the kill: %v", round, err)
				}
				before := srv.Stats().ByGrant[oauthtest.GrantRefreshToken]
				err := check(fmt.Sprintf("checker %d", round))
				switch {
				case err == nil:
				case tt.grace == 0 && errors.Is(err, oauthclient.ErrReauthRequired):
					// Killed between the server's commit and the local
					// fsync; the family is revoked. Log in again.
					hits++
					seedRefreshToken(t, checker, cache, issue())
					if err := check(fmt.Sprintf("login %d", round)); err != nil {
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
			log := rec.exchanges()
			st := srv.Stats()
			invalidGrants := 0
			for _, r := range srv.TokenRequestLog() {
				if r.Error == "invalid_grant" {
					invalidGrants++
				}
			}
			twice := redeemedTwice(log)
			if tt.grace > 0 {
				t.Logf("grace %v: %d kills, %d refresh token grants, %d refresh tokens redeemed twice, %d reuses within grace (kills between the server's commit and the local fsync)",
					tt.grace, killRounds, st.ByGrant[oauthtest.GrantRefreshToken], len(twice), st.RefreshGraceReuses)
				if st.RefreshReuseDetected != 0 || invalidGrants != 0 {
					t.Errorf("reuse detected %d times, invalid_grant %d times; want 0", st.RefreshReuseDetected, invalidGrants)
				}
			} else {
				t.Logf("strict rotation: %d of %d kills landed between the server's commit and the local fsync (reuse detected %d times, %d refresh token grants)",
					hits, killRounds, st.RefreshReuseDetected, st.ByGrant[oauthtest.GrantRefreshToken])
				// One invalid_grant per kill inside the window: the
				// checker's, for the refresh token the killed worker had
				// redeemed. Nothing else may be rejected.
				if invalidGrants != hits || st.RefreshReuseDetected != hits || len(twice) != hits {
					t.Errorf("invalid_grant %d times, reuse detected %d times, refresh tokens redeemed twice %d; want %d (one per kill inside the window)",
						invalidGrants, st.RefreshReuseDetected, len(twice), hits)
				}
			}
			// A refresh token is redeemed twice only across a kill: first
			// by the worker that died before it persisted the answer, then
			// by the next round's checker. Never by two live holders.
			for n, exs := range twice {
				first, second := exs[0], exs[1]
				if len(exs) != 2 || first.Sender != "worker" || first.Status != http.StatusOK || second.Sender == "worker" {
					t.Errorf("refresh token RT#%d redeemed %d times: %v; want twice, by a killed worker and then by the checker", n, len(exs), exs)
				}
			}
		})
	}
}
